// Types of the llama2-wasm package: the high-level Llama2 class (lib/llama2.js)
// and the low-level classes of the wasm build (pkg/llama2_wasm.d.ts, made by
// wasm-bindgen).

/** A checkpoint or tokenizer: a URL, a File or Blob, bytes, a ReadableStream, a file path (Node.js), or "stored:<name>". */
export type ModelSource = string | URL | Blob | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array>;

export interface LoadOptions {
  /** The llama2.c checkpoint (legacy, export v1, or Q8_0 export v2). */
  checkpoint: ModelSource;
  /** Its tokenizer.bin (vocabulary of the checkpoint's size). */
  tokenizer: ModelSource;
  /** Quantize fp32 weights to Q8_0 on load: a quarter of the memory, faster. Default false. */
  int8?: boolean;
  /** Threads for the matmuls (1-16): needs a cross-origin isolated page; default: the cores up to 4, for models that gain from them. */
  threads?: number;
  /** Record what the inspector shows (see Llama2.inspect). Default false: recording costs a little per token. */
  inspect?: boolean;
  /** Run the engine in a dedicated Worker. Default: true where Workers exist (browsers), false in Node.js. */
  worker?: boolean;
  /** Bytes of the checkpoint read so far. */
  onProgress?: (loaded: number, total: number, file: string) => void;
  /** Stops the load within one chunk. */
  signal?: AbortSignal;
}

export interface SamplingOptions {
  /** 0 = greedy; default 1.0 (run.c's). */
  temperature?: number;
  /** Nucleus sampling, 0-1; default 0.9. */
  topp?: number;
  /** 0 = random (default); the same seed gives the same text. */
  seed?: number;
  /** Positions in all, prompt included, as run.c's -n; 0 = the model's seq_len; default 256. */
  steps?: number;
  /** Stops the run within one step. */
  signal?: AbortSignal;
}

export interface ChatOptions extends SamplingOptions {
  /** The system prompt (first turn only). */
  system?: string;
  /** Start a new conversation instead of going on with this one. */
  restart?: boolean;
}

/** Text pieces as they come; `text()` waits for the whole. */
export interface TextStream extends AsyncIterable<string> {
  text(): Promise<string>;
}

/** The model's facts (the demo page's model card). */
export interface ModelInfo {
  name: string;
  tokenizer: string;
  version: number;
  dim: number;
  hidden_dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  vocab_size: number;
  seq_len: number;
  shared_classifier: boolean;
  params: number;
  group_size: number;
  quantized_on_load: boolean;
  weight_bytes: number;
  state_bytes: number;
  memory_bytes: number;
  kernels: string;
  threads: number;
  threadsNote: string;
  worker: boolean;
  [key: string]: unknown;
}

export interface Candidate {
  token: number;
  /** The token's text. */
  text: string;
  /** Probability after temperature. */
  prob: number;
  logit: number;
  /** Inside the top-p nucleus the sampler drew from. */
  kept: boolean;
}

export interface TopK {
  pos: number;
  token: number;
  /** The token that came next (absent at the newest position before it is sampled). */
  next?: number;
  forced: boolean;
  temperature: number;
  topp: number;
  nucleus: number;
  nucleusMass: number;
  nextProb?: number;
  nextRank?: number;
  candidates: Candidate[];
}

export declare class Llama2 {
  private constructor();
  /** Load a model: `await Llama2.load({ checkpoint, tokenizer })`. */
  static load(options: LoadOptions): Promise<Llama2>;
  readonly info: ModelInfo;
  /** run.c's generation from `prompt`, piece by piece. */
  generate(prompt: string, options?: SamplingOptions): TextStream;
  /** The whole text of generate(). */
  complete(prompt: string, options?: SamplingOptions): Promise<string>;
  /** Go on from where the last generate() stopped, in the same KV cache (steps: more positions). */
  continue(options?: { steps?: number; signal?: AbortSignal }): TextStream;
  /** The assistant's answer in run.c's chat template, going on with the conversation. */
  chat(message: string, options?: ChatOptions): TextStream;
  /** run.c's encode(text, bos=1, eos=0). */
  tokenize(text: string): Promise<number[]>;
  /** The text of token ids, as a generation prints them. */
  decode(ids: ArrayLike<number>): Promise<string>;
  /** The token ids of the sequence so far. */
  tokens(): Promise<number[]>;
  /** The inspector's data (load with inspect: true). */
  inspect(what: "topk", options?: { k?: number; pos?: number }): Promise<TopK>;
  inspect(what: "attention", options?: { layer?: number; head?: number; pos?: number }): Promise<number[]>;
  inspect(what: "timings", options?: { pos?: number }): Promise<Record<string, number> | undefined>;
  /** Bytes of wasm memory of the engine the model runs in. */
  memoryBytes(): Promise<number>;
  /** Free the model (and its Worker). */
  dispose(): Promise<void>;
}

/** run.c's defaults. */
export declare const DEFAULTS: Readonly<{ temperature: number; topp: number; seed: number; steps: number }>;

// the low-level API the demo page drives (call init() first)
export { default as init, Model, ModelLoader, Sha256, fileInfo, tokenizerInfo, memoryLimit, timingPhases } from "./pkg/llama2_wasm.js";
