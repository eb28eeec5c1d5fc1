//! The JavaScript face of the engine: a thin `Model` class over [`Llama`].
//!
//! This is the only module that knows about JS. Every fallible call returns
//! `Result<_, JsError>`, so a bad file or a call in the wrong order becomes a
//! JS `Error` with the engine's message; nothing here can panic on input
//! (a panic would kill the wasm instance and the model loaded in it).

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::checkpoint::{self, run_state_bytes, ByteSource, Checkpoint, CheckpointBuilder};
use crate::error::Error;
use crate::generate::Llama;
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

fn steps_from_js(steps: f64) -> Result<i64, Error> {
    if steps.is_nan() {
        return Err(Error::Argument("steps is NaN; use 0 for the model's seq_len".into()));
    }
    // like run.c's atoi: fractions truncate; negative and huge values are clamped later
    Ok(steps as i64)
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
            checkpoint = checkpoint.quantize();
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
        set(&o, "kernels", JsValue::from_str(crate::kernels::KERNELS))?;
        Ok(o.into())
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
            checkpoint = checkpoint.quantize();
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
