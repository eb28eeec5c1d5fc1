//! The JavaScript face of the engine: a thin `Model` class over [`Llama`].
//!
//! This is the only module that knows about JS. Every fallible call returns
//! `Result<_, JsError>`, so a bad file or a call in the wrong order becomes a
//! JS `Error` with the engine's message; nothing here can panic on input
//! (a panic would kill the wasm instance and the model loaded in it).

use js_sys::{Array, Float32Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::checkpoint::{self, run_state_bytes, ByteSource, Checkpoint, CheckpointBuilder};
use crate::error::Error;
use crate::generate::Llama;
use crate::inspect::{self, Phase, Probe};
use crate::sampler::SamplerParams;
use crate::tokenizer::Tokenizer;

/// A JS `Uint8Array` as a checkpoint source: tensors are copied straight from
/// JS memory in chunks, so the file never exists twice inside wasm memory.
struct JsBytes<'a>(&'a Uint8Array);

impl ByteSource for JsBytes<'_> {
    fn byte_len(&self) -> u64 {
        self.0.length() as u64
    }
    fn read_into(&self, offset: u64, dst: &mut [u8]) {
        let start = offset as u32;
        self.0.subarray(start, start + dst.len() as u32).copy_to(dst);
    }
}

/// JS numbers are f64; seeds must survive the round trip exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0; // 2^53 - 1

fn seed_from_js(seed: f64) -> Result<u64, Error> {
    if !(seed.is_finite() && seed.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&seed)) {
        return Err(Error::Argument(format!(
            "seed {seed} must be a whole number from 0 to 2^53 - 1 (0 = random)"
        )));
    }
    Ok(seed as u64)
}

/// A position or a count from JS: a whole number ≥ 0 (huge ones saturate,
/// and the callee says what range it takes).
fn index_from_js(value: f64, what: &str) -> Result<usize, Error> {
    if !(value.is_finite() && value >= 0.0 && value.fract() == 0.0) {
        return Err(Error::Argument(format!("{what} {value} is not a whole number ≥ 0")));
    }
    Ok(value as usize)
}

fn steps_from_js(steps: f64) -> Result<i64, Error> {
    if steps.is_nan() {
        return Err(Error::Argument("steps is NaN; use 0 for the model's seq_len".into()));
    }
    // like run.c's atoi: fractions truncate; negative and huge values are clamped later
    Ok(steps as i64)
}

#[wasm_bindgen]
extern "C" {
    /// The inspector's clock: `performance.now()` (a page, a worker or Node).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

// The inspector's objects are built on the JS side from packed numbers: one
// call instead of a Reflect.set per field, which costs more than a step of a
// small model. The slices are views into wasm memory, read at once.
#[wasm_bindgen(inline_js = r#"
export function topk_object(head, cands, text) {
  const candidates = [];
  for (let i = 0; i * 4 < cands.length; i++) {
    const o = i * 4;
    candidates.push({ token: cands[o], text: text[i], prob: cands[o + 1], logit: cands[o + 2], kept: cands[o + 3] === 1 });
  }
  return { pos: head[0], token: head[1], next: head[2] < 0 ? undefined : head[2], forced: head[3] === 1,
    replayed: head[4] === 1, temperature: head[5], topp: head[6], nucleus: head[7], nucleusMass: head[8],
    nextProb: head[10] < 0 ? undefined : head[9], nextRank: head[10] < 0 ? undefined : head[10], candidates };
}
export function named_object(names, values) {
  const o = {};
  names.split(",").forEach((name, i) => (o[name] = values[i]));
  return o;
}
"#)]
extern "C" {
    fn topk_object(head: &[f64], cands: &[f64], texts: &Array) -> JsValue;
    fn named_object(names: &str, values: &[f64]) -> JsValue;
}

fn set(obj: &Object, key: &str, value: JsValue) -> Result<(), JsError> {
    Reflect::set(obj, &JsValue::from_str(key), &value)
        .map(|_| ())
        .map_err(|_| JsError::new("could not build the config object"))
}

/// A loaded model: construct it from the checkpoint and tokenizer bytes,
/// `start()` a generation, then call `step()` until it returns `undefined`.
#[wasm_bindgen]
pub struct Model {
    llama: Llama,
}

#[wasm_bindgen]
impl Model {
    /// `new Model(checkpoint, tokenizer)`: both `Uint8Array`s. Throws an
    /// `Error` with a readable message when either is invalid or they do not
    /// belong together.
    ///
    /// `quantize` (optional, default false): load an fp32 checkpoint as Q8_0
    /// (export.py's rule), a quarter of the weight memory and faster.
    #[wasm_bindgen(constructor)]
    pub fn new(checkpoint: &Uint8Array, tokenizer: &Uint8Array, quantize: Option<bool>) -> Result<Model, JsError> {
        console_error_panic_hook::set_once();
        let mut checkpoint = Checkpoint::from_source(&JsBytes(checkpoint))?;
        if quantize == Some(true) {
            checkpoint = checkpoint.quantize()?;
        }
        let tokenizer = Tokenizer::from_bytes(&tokenizer.to_vec())?;
        Ok(Model { llama: Llama::new(checkpoint, tokenizer)? })
    }

    /// Reset and start a new generation, run.c's `generate` loop: `steps`
    /// counts the prompt tokens too; 0 means seq_len. Out-of-range values are
    /// clamped as run.c clamps them (temperature < 0 → 0, topp outside
    /// [0, 1] → 0.9, steps < 0 or > seq_len → seq_len); seed 0 draws one.
    pub fn start(&mut self, prompt: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError> {
        let params = SamplerParams::new(temperature, topp, seed_from_js(seed)?)?;
        self.llama.start(prompt, params, steps_from_js(steps)?)?;
        Ok(())
    }

    /// The next piece of text (possibly `""` while a UTF-8 character is
    /// incomplete), or `undefined` when the generation is finished.
    pub fn step(&mut self) -> Result<Option<String>, JsError> {
        Ok(self.llama.step()?.map(|s| s.text))
    }

    /// BOS followed by every token produced so far (a copy).
    pub fn tokens(&self) -> Vec<u32> {
        self.llama.tokens().to_vec()
    }

    /// The seed of the current generation (the drawn one when 0 was asked).
    #[wasm_bindgen(getter)]
    pub fn seed(&self) -> f64 {
        self.llama.params().seed as f64
    }

    /// The header as a plain object: the seven fields, `version` (0 legacy,
    /// 1 or 2 export), `shared_classifier`, `group_size` (Q8_0 group size, 0
    /// for fp32 weights), `quantized_on_load`, and sizes for display.
    pub fn config(&self) -> Result<JsValue, JsError> {
        let t = &self.llama.transformer;
        let c = &t.config;
        let o = Object::new();
        for (key, value) in [
            ("dim", c.dim),
            ("hidden_dim", c.hidden_dim),
            ("n_layers", c.n_layers),
            ("n_heads", c.n_heads),
            ("n_kv_heads", c.n_kv_heads),
            ("vocab_size", c.vocab_size),
            ("seq_len", c.seq_len),
        ] {
            set(&o, key, JsValue::from_f64(value as f64))?;
        }
        set(&o, "version", JsValue::from_f64(t.header.version as f64))?;
        set(&o, "shared_classifier", JsValue::from_bool(t.header.shared_classifier))?;
        let group_size = t.weights.group_size.unwrap_or(0);
        set(&o, "group_size", JsValue::from_f64(group_size as f64))?;
        set(&o, "quantized_on_load", JsValue::from_bool(t.header.group_size.is_none() && group_size > 0))?;
        set(&o, "params", JsValue::from_f64(t.param_count() as f64))?;
        set(&o, "weight_bytes", JsValue::from_f64(t.weights.bytes() as f64))?;
        set(&o, "state_bytes", JsValue::from_f64(run_state_bytes(c).unwrap_or(0) as f64))?;
        set(&o, "kernels", JsValue::from_str(self.llama.kernels().name()))?;
        Ok(o.into())
    }

    /// The kernels the model runs: "simd128" (the default) or "scalar"
    /// (run.c's loops, the reference; slower). From the next generation on.
    #[wasm_bindgen(getter)]
    pub fn kernels(&self) -> String {
        self.llama.kernels().name().into()
    }

    #[wasm_bindgen(setter)]
    pub fn set_kernels(&mut self, name: &str) -> Result<(), JsError> {
        self.llama.set_kernels(crate::kernels::Kernels::parse(name)?);
        Ok(())
    }

    /// run.c's `encode(text, bos=1, eos=0)`, for inspection.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, JsError> {
        Ok(self.llama.tokenizer.encode(text, true, false)?)
    }

    /// Start run.c's chat loop (Llama-2 `[INST]` template); then `chatUser`
    /// for each user message and `step()` until `undefined` ends the turn.
    #[wasm_bindgen(js_name = startChat)]
    pub fn start_chat(&mut self, system_prompt: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError> {
        let params = SamplerParams::new(temperature, topp, seed_from_js(seed)?)?;
        self.llama.start_chat(system_prompt, params, steps_from_js(steps)?)?;
        Ok(())
    }

    /// The user's next chat message.
    #[wasm_bindgen(js_name = chatUser)]
    pub fn chat_user(&mut self, message: &str) -> Result<(), JsError> {
        Ok(self.llama.chat_user(message)?)
    }

    /// Replace the tokenizer (same vocabulary size), keeping the weights.
    #[wasm_bindgen(js_name = setTokenizer)]
    pub fn set_tokenizer(&mut self, tokenizer: &Uint8Array) -> Result<(), JsError> {
        let tokenizer = Tokenizer::from_bytes(&tokenizer.to_vec())?;
        Ok(self.llama.set_tokenizer(tokenizer)?)
    }

    /// Number of tokens so far (BOS included): `tokens().length` without the copy.
    #[wasm_bindgen(getter, js_name = tokenCount)]
    pub fn token_count(&self) -> usize {
        self.llama.tokens().len()
    }

    /// Number of prompt tokens of the current generation (BOS included);
    /// tokens beyond these were sampled.
    #[wasm_bindgen(getter, js_name = promptLength)]
    pub fn prompt_length(&self) -> usize {
        self.llama.prompt_len()
    }

    /// Is a generation (or a chat with steps left) running?
    #[wasm_bindgen(getter)]
    pub fn running(&self) -> bool {
        self.llama.is_running()
    }

    // ------------------------------------------------------------ inspector

    /// The inspector: `model.inspect = true` makes every following `step()`
    /// record its logits, attention weights and timings (read them with
    /// `topk`, `attention`, `timings`); `false` (the default) records nothing.
    #[wasm_bindgen(getter)]
    pub fn inspect(&self) -> bool {
        self.llama.transformer.probe.is_some()
    }

    #[wasm_bindgen(setter)]
    pub fn set_inspect(&mut self, on: bool) {
        let trace = on && self.walkthrough();
        self.llama.set_inspect(on.then_some(performance_now as inspect::Clock), trace);
    }

    /// Walkthrough: also keep a few values of every vector of the forward
    /// pass (`trace()`). Setting it opens the inspector.
    #[wasm_bindgen(getter)]
    pub fn walkthrough(&self) -> bool {
        self.llama.transformer.probe.as_ref().is_some_and(|p| p.trace)
    }

    #[wasm_bindgen(setter)]
    pub fn set_walkthrough(&mut self, on: bool) {
        if on || self.inspect() {
            self.llama.set_inspect(Some(performance_now), on);
        }
    }

    /// The position the inspector's record is of (`undefined` before any).
    #[wasm_bindgen(getter, js_name = inspectedPosition)]
    pub fn inspected_position(&self) -> Option<usize> {
        self.llama.probe().map(|p| p.pos)
    }

    /// Record position `pos` of the current text again: it is recomputed
    /// from the KV cache (one forward pass, nothing sampled, nothing
    /// changed), so earlier tokens can be inspected without storing them.
    #[wasm_bindgen(js_name = inspectAt)]
    pub fn inspect_at(&mut self, pos: f64) -> Result<(), JsError> {
        Ok(self.llama.inspect_at(index_from_js(pos, "position")?)?)
    }

    /// The next-token distribution of the recorded position: `{ pos, token,
    /// next, nextProb, nextRank, forced, replayed, temperature, topp,
    /// nucleus, nucleusMass, candidates: [{ token, text, prob, logit, kept }] }`,
    /// the `k` most likely first; `nextRank` (1 = most likely) and
    /// `nextProb` place the token that came even outside the `k`. `prob`
    /// is after temperature (softmax of the logits at temperature 0, where
    /// the sampler takes the top one); `kept`: inside the top-p nucleus the
    /// sampler drew from; `next`: the token that came.
    pub fn topk(&self, k: f64) -> Result<JsValue, JsError> {
        let k = index_from_js(k, "k")?.min(self.llama.transformer.config.vocab_size);
        let probe = self.record()?;
        let params = self.llama.params();
        let d = inspect::distribution(self.llama.kernels(), &probe.logits, params.temperature, params.topp, k, probe.next);
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let head = [
            probe.pos as f64,
            probe.token as f64,
            probe.next.map_or(-1.0, |t| t as f64),
            flag(probe.forced),
            flag(probe.replayed),
            params.temperature as f64,
            params.topp as f64,
            d.nucleus as f64,
            d.nucleus_mass as f64,
            d.next.map_or(f64::NAN, |(p, _)| p as f64),
            d.next.map_or(-1.0, |(_, rank)| rank as f64),
        ];
        let mut cands = Vec::with_capacity(d.candidates.len() * 4);
        let texts = Array::new();
        for c in &d.candidates {
            cands.extend([c.token as f64, c.prob as f64, c.logit as f64, flag(c.kept)]);
            texts.push(&JsValue::from_str(&self.piece(c.token)));
        }
        Ok(topk_object(&head, &cands, &texts))
    }

    /// (vocab_size,) the recorded position's logits, before sampling (a copy).
    pub fn logits(&self) -> Result<Vec<f32>, JsError> {
        Ok(self.record()?.logits.clone())
    }

    /// (pos + 1,) attention weights of one layer and head at the recorded
    /// position, over positions 0..=pos (a copy; each row sums to 1).
    pub fn attention(&self, layer: usize, head: usize) -> Result<Vec<f32>, JsError> {
        let probe = self.record()?;
        let c = &self.llama.transformer.config;
        probe.attention(layer, head).map(<[f32]>::to_vec).ok_or_else(|| {
            Error::Argument(format!(
                "no layer {layer} head {head}: this model has layers 0-{} and heads 0-{}",
                c.n_layers - 1,
                c.n_heads - 1
            ))
            .into()
        })
    }

    /// (n_layers, n_heads, pos + 1) every attention row of the recorded
    /// position in one copy.
    #[wasm_bindgen(js_name = attentionAll)]
    pub fn attention_all(&self) -> Result<Float32Array, JsError> {
        Ok(Float32Array::from(&self.record()?.attention[..]))
    }

    /// Milliseconds a step spent in each part: `{ projections (rmsnorm +
    /// q, k, v, o matmuls), attention (RoPE, scores, softmax, weighted sum),
    /// ffn, classifier, sampling, other, total }`; the parts add up to
    /// `total`. Without `pos`: the recorded step (a replay has no sampling).
    /// With `pos`: that position as it ran live with the inspector open, or
    /// `undefined` when it ran while the inspector was closed.
    pub fn timings(&self, pos: Option<f64>) -> Result<JsValue, JsError> {
        let t = match pos {
            None => self.record()?.timings,
            Some(pos) => {
                let pos = index_from_js(pos, "position")?;
                let Some(probe) = self.llama.transformer.probe.as_deref() else {
                    return Err(Error::State("the inspector is closed: set model.inspect = true, then step()").into());
                };
                match probe.timings_at(pos) {
                    Some(t) => t,
                    None => return Ok(JsValue::UNDEFINED),
                }
            }
        };
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).chain(["total"]).collect();
        let values: Vec<f64> = Phase::ALL.iter().map(|&p| t.get(p)).chain([t.total()]).collect();
        Ok(named_object(&names.join(","), &values))
    }

    /// (positions, 6) the live timings of every position of the current
    /// text, in `timings()`'s order without `total`; NaN for positions run
    /// while the inspector was closed. Empty when it is closed.
    #[wasm_bindgen(js_name = timingsAll)]
    pub fn timings_all(&self) -> Vec<f64> {
        let Some(probe) = self.llama.transformer.probe.as_deref() else { return Vec::new() };
        probe.history.iter().flat_map(|t| t.map_or([f64::NAN; 6], |t| t.ms)).collect()
    }

    /// The walkthrough of the recorded position (needs `walkthrough = true`
    /// before the step): run.c's forward pass in order, `[{ name, layer,
    /// shape, length, values (first 8), rms, explain }]`.
    pub fn trace(&self) -> Result<Array, JsError> {
        let probe = self.record()?;
        let out = Array::new();
        for s in &probe.snapshots {
            let o = Object::new();
            set(&o, "name", s.stage.name().into())?;
            set(&o, "layer", s.layer.map_or(JsValue::UNDEFINED, |l| JsValue::from_f64(l as f64)))?;
            set(&o, "shape", s.stage.shape().into())?;
            set(&o, "length", JsValue::from_f64(s.len as f64))?;
            set(&o, "values", Float32Array::from(&s.values[..]).into())?;
            set(&o, "rms", s.rms.into())?;
            set(&o, "explain", s.stage.explain().into())?;
            out.push(&o);
        }
        Ok(out)
    }

    /// A token's text for display: its vocabulary piece, with a raw-byte
    /// token (`<0x0A>`) as its character when that byte is one on its own
    /// (ASCII); other byte tokens keep their `<0xE2>` name.
    pub fn piece(&self, token: u32) -> String {
        let tok = &self.llama.tokenizer;
        if token as usize >= tok.vocab_size() {
            return String::new();
        }
        match std::str::from_utf8(tok.decode(0, token)) {
            Ok(text) => text.to_string(),
            Err(_) => String::from_utf8_lossy(tok.piece(token)).into_owned(),
        }
    }

    fn record(&self) -> Result<&Probe, Error> {
        match self.llama.probe() {
            Some(p) => Ok(p),
            None if self.inspect() => Err(Error::State("nothing recorded yet: step() or inspectAt(pos) first")),
            None => Err(Error::State("the inspector is closed: set model.inspect = true, then step()")),
        }
    }
}

/// Loads a checkpoint as its bytes arrive (a download or a file being read):
/// `new ModelLoader(firstBytes, totalSize)` checks the header and allocates
/// the weights, `push(chunk)` converts each chunk straight into them, and
/// `finish(tokenizer)` gives the `Model`. The file is never held whole in
/// memory beside the weights.
#[wasm_bindgen]
pub struct ModelLoader {
    builder: Option<CheckpointBuilder>,
    quantize: bool,
}

#[wasm_bindgen]
impl ModelLoader {
    /// `head`: the file's first 256 bytes (all of it if shorter); `size`: its
    /// length; `quantize` (optional): load an fp32 file as Q8_0.
    #[wasm_bindgen(constructor)]
    pub fn new(head: &[u8], size: f64, quantize: Option<bool>) -> Result<ModelLoader, JsError> {
        console_error_panic_hook::set_once();
        if !(size.is_finite() && size >= 0.0 && size.fract() == 0.0) {
            return Err(Error::Argument(format!("file size {size} is not a byte count")).into());
        }
        Ok(ModelLoader { builder: Some(CheckpointBuilder::new(head, size as u64)?), quantize: quantize == Some(true) })
    }

    /// The next bytes of the file, from its very first byte on, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        let builder = self.builder.as_mut().ok_or(Error::State("this loader has already finished"))?;
        Ok(builder.push(chunk)?)
    }

    /// Bytes pushed so far.
    #[wasm_bindgen(getter)]
    pub fn received(&self) -> f64 {
        self.builder.as_ref().map_or(0.0, |b| b.received() as f64)
    }

    /// All bytes pushed: build the model with this tokenizer.
    pub fn finish(&mut self, tokenizer: &Uint8Array) -> Result<Model, JsError> {
        let builder = self.builder.take().ok_or(Error::State("this loader has already finished"))?;
        let tokenizer = Tokenizer::from_bytes(&tokenizer.to_vec())?;
        let mut checkpoint = builder.finish()?;
        if self.quantize {
            checkpoint = checkpoint.quantize()?;
        }
        Ok(Model { llama: Llama::new(checkpoint, tokenizer)? })
    }
}

/// What a file is, from its first bytes (256 are enough) and its size, before
/// reading the rest: `{ kind: "checkpoint" | "tokenizer" | "unknown", error?,
/// version?, vocab_size?, memory_bytes? }`. A checkpoint whose header is
/// invalid, whose size does not match, or which cannot fit in memory has
/// `error` set, so a page can refuse it without reading gigabytes.
#[wasm_bindgen(js_name = fileInfo)]
pub fn file_info(head: &Uint8Array, size: f64) -> Result<JsValue, JsError> {
    let head = head.to_vec();
    let o = Object::new();
    let size = if size.is_finite() && size >= 0.0 { size as u64 } else { 0 };
    if let Some(what) = checkpoint::identify_wrong_file(&head) {
        set(&o, "kind", "unknown".into())?;
        set(&o, "error", JsValue::from_str(what))?;
    } else if checkpoint::looks_like_checkpoint(&head) {
        set(&o, "kind", "checkpoint".into())?;
        match checkpoint::check(&head, size) {
            Ok(h) => {
                set(&o, "version", JsValue::from_f64(h.version as f64))?;
                set(&o, "vocab_size", JsValue::from_f64(h.config.vocab_size as f64))?;
                let bytes = checkpoint::memory_needed(&h).unwrap_or(0);
                set(&o, "memory_bytes", JsValue::from_f64(bytes as f64))?;
            }
            Err(e) => set(&o, "error", JsValue::from_str(&e.to_string()))?,
        }
    } else if Tokenizer::looks_like(&head) {
        set(&o, "kind", "tokenizer".into())?;
    } else {
        set(&o, "kind", "unknown".into())?;
        let msg = "this file is neither a llama2.c checkpoint (.bin from export.py or the \
                   legacy format) nor a llama2.c tokenizer.bin";
        set(&o, "error", JsValue::from_str(msg))?;
    }
    Ok(o.into())
}

// ---------------------------------------------------------------- threads
// The threaded build (www/pkg-threads: shared memory, built by build.sh with
// nightly Rust) runs each large matmul on the page's thread plus helper Web
// Workers; see `parallel` and www/engine.js. The single-threaded build has
// the same functions, so the page needs no second code path.

/// Whether this build was compiled with shared memory and can take helpers.
#[wasm_bindgen(js_name = threadsSupported)]
pub fn threads_supported() -> bool {
    cfg!(target_feature = "atomics")
}

/// Threads that share each large matmul now (1 = this thread alone).
#[wasm_bindgen]
pub fn threads() -> usize {
    crate::parallel::threads()
}

/// Helpers that have entered their loop (www/engine.js waits for all).
#[wasm_bindgen(js_name = threadsJoined)]
pub fn threads_joined() -> usize {
    crate::parallel::joined()
}

/// Hand parts of each large matmul to the first `helpers` helpers (0 = off).
#[wasm_bindgen(js_name = enableThreads)]
pub fn enable_threads(helpers: f64) -> Result<usize, JsError> {
    let helpers = index_from_js(helpers, "helpers")?;
    crate::parallel::enable(helpers).map_err(|e| JsError::new(&e))
}

/// Split matmuls of at least `weights` weights (default 65,536; tests use 0
/// so that even stories260K's small matrices go through the helpers).
#[wasm_bindgen(js_name = setMinParallel)]
pub fn set_min_parallel(weights: f64) -> Result<(), JsError> {
    crate::parallel::set_min_parallel(index_from_js(weights, "weights")?);
    Ok(())
}

/// A helper Worker's whole life: take part `index` (1, 2, ...) of every
/// matmul. Never returns in the threaded build unless the index is out of
/// range or taken (an error); an error in the single-threaded build.
#[wasm_bindgen(js_name = threadHelper)]
pub fn thread_helper(index: f64) -> Result<(), JsError> {
    let index = index_from_js(index, "helper index")?;
    if !threads_supported() {
        return Err(JsError::new("this wasm build has no threads (use www/pkg-threads)"));
    }
    Err(JsError::new(&crate::parallel::helper_loop(index)))
}

/// A helper Worker caught a trap inside `threadHelper`: its parts are
/// computed by the page's thread from now on (threading stops, nothing hangs).
#[wasm_bindgen(js_name = threadHelperFailed)]
pub fn thread_helper_failed(index: f64) {
    if let Ok(index) = index_from_js(index, "helper index") {
        crate::parallel::helper_failed(index);
    }
}

/// Parts of matmuls computed by helpers so far (tests: the threads did work).
#[wasm_bindgen(js_name = helperParts)]
pub fn helper_parts() -> f64 {
    crate::parallel::helper_parts() as f64
}
