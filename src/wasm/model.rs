//! The `Model` class: a model loaded from checkpoint and tokenizer bytes,
//! and run.c's generate and chat loops, one `step()` at a time. Its
//! inspector methods are in `inspector.rs`.

use wasm_bindgen::prelude::*;

use super::gpu::GpuSlot;
use super::args::{bool_arg, bytes_arg, checkpoint_from_js, params_from_js, steps_from_js, string_arg, token_from_js, tokenizer_from_js, tokens_arg};
use super::object::Fields;
use super::testing::{crash_point, CRASH_STEP};
use crate::kernels::Kernels;
use crate::llama::Llama;

/// A loaded model: construct it from the checkpoint and tokenizer bytes,
/// `start()` a generation, then call `step()` until it returns `undefined`.
#[wasm_bindgen]
pub struct Model {
    pub(super) llama: Llama,
    /// The WebGPU backend, when `useGpu()` turned it on (see `gpu.rs`).
    #[cfg_attr(not(web_sys_unstable_apis), allow(dead_code))]
    pub(super) gpu: GpuSlot,
}

#[wasm_bindgen]
impl Model {
    /// `new Model(checkpoint, tokenizer, quantize?)`: the two files as
    /// `Uint8Array`s or `ArrayBuffer`s. Throws an `Error` with a readable
    /// message when either is invalid or they do not belong together.
    ///
    /// `quantize` (optional, default false): load an fp32 checkpoint as Q8_0
    /// (export.py's rule), a quarter of the weight memory and faster.
    #[wasm_bindgen(constructor)]
    pub fn new(checkpoint: &JsValue, tokenizer: &JsValue, quantize: &JsValue) -> Result<Model, JsError> {
        console_error_panic_hook::set_once();
        let (bytes, len) = bytes_arg(checkpoint, "checkpoint")?;
        let quantize = bool_arg(quantize, "quantize", Some(false))?;
        let tokenizer = tokenizer_from_js(tokenizer, None)?;
        let checkpoint = checkpoint_from_js(&bytes, len)?;
        Ok(Model { llama: Llama::new(checkpoint, tokenizer, quantize)?, gpu: GpuSlot::default() })
    }

    /// Reset and start a new generation, run.c's `generate` loop: `steps`
    /// counts the prompt tokens too; 0 means seq_len. Out-of-range values are
    /// clamped as run.c clamps them (temperature < 0 → 0, topp outside
    /// [0, 1] → 0.9, steps < 0 or > seq_len → seq_len); seed 0 draws one.
    pub fn start(&mut self, prompt: &JsValue, temperature: &JsValue, topp: &JsValue, seed: &JsValue, steps: &JsValue) -> Result<(), JsError> {
        let prompt = string_arg(prompt, "prompt")?;
        let params = params_from_js(temperature, topp, seed)?;
        self.llama.start(&prompt, params, steps_from_js(steps)?)?;
        Ok(())
    }

    /// Go on with the current generation for `steps` more positions from
    /// where it stopped (by its steps, or because `step()` was no longer
    /// called), reusing its KV cache and sampler: then `step()` until
    /// `undefined` again. `steps` is read as `start` reads it (0, negative
    /// or more than fit: up to seq_len). Throws when nothing can continue: no
    /// generation, a chat, a story that ended with its end token, seq_len
    /// reached.
    pub fn extend(&mut self, steps: &JsValue) -> Result<(), JsError> {
        self.llama.extend(steps_from_js(steps)?)?;
        Ok(())
    }

    /// Whether `extend` would accept: a generation that stopped (or is
    /// running) below seq_len and did not end with its end token.
    #[wasm_bindgen(getter, js_name = canExtend)]
    pub fn can_extend(&self) -> bool {
        self.llama.check_extend().is_ok()
    }

    /// The next piece of text (possibly `""` while a UTF-8 character is
    /// incomplete), or `undefined` when the generation is finished.
    pub fn step(&mut self) -> Result<Option<String>, JsError> {
        crash_point(CRASH_STEP);
        Ok(self.llama.step()?.map(|s| s.text))
    }

    /// Choose the next token: the next `step()` takes `token` (a whole
    /// number below the vocabulary size) instead of the sampler's pick, and
    /// the inspector records it as `chosen`. The sampler still draws its
    /// random number for that step, so the random numbers of later steps
    /// are those of a run without the choice (choosing the sampler's own
    /// pick changes nothing). Throws inside the prompt (step through it
    /// first), before `start`, in a chat, and once the generation has
    /// finished (its steps: `extend`; its end token: `undo` or start again).
    /// To replace a token that was just sampled: `undo()`, `forceNext(t)`,
    /// `step()`.
    #[wasm_bindgen(js_name = forceNext)]
    pub fn force_next(&mut self, token: &JsValue) -> Result<(), JsError> {
        let token = token_from_js(token, self.llama.config().vocab_size)?;
        Ok(self.llama.force_next(token)?)
    }

    /// Whether `forceNext` would accept now (a generation past its prompt,
    /// still running).
    #[wasm_bindgen(getter, js_name = canForceNext)]
    pub fn can_force_next(&self) -> bool {
        self.llama.check_force().is_ok()
    }

    /// Take back the last generated token (sampled or chosen): the text,
    /// `tokens()`, the position and the sampler's random state go back to
    /// what they were before its step, so `step()` then gives the same token
    /// again and `forceNext(t)` + `step()` gives the run where t was chosen
    /// there. Nothing is recomputed (the next `step()` runs that position
    /// again, one forward pass). Returns the whole text of the generation
    /// after the undo, as `step()`'s pieces built it: replace the text
    /// shown with it. Throws when no generated token is left (the prompt
    /// cannot be undone), before `start`, in a chat, and after `kernels`
    /// changed.
    pub fn undo(&mut self) -> Result<String, JsError> {
        Ok(self.llama.undo()?)
    }

    /// Whether `undo` would accept now.
    #[wasm_bindgen(getter, js_name = canUndo)]
    pub fn can_undo(&self) -> bool {
        self.llama.check_undo().is_ok()
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
    /// for fp32 weights), `quantized_on_load`, and sizes for display:
    /// `params`, `weight_bytes`, `state_bytes`, and `memory_bytes` (all the
    /// model holds: weights as loaded, run state, token history, sampler).
    pub fn config(&self) -> Result<JsValue, JsError> {
        let s = self.llama.summary();
        let (h, c) = (s.header, &s.header.config);
        Ok(Fields::new()
            .num("dim", c.dim)
            .num("hidden_dim", c.hidden_dim)
            .num("n_layers", c.n_layers)
            .num("n_heads", c.n_heads)
            .num("n_kv_heads", c.n_kv_heads)
            .num("vocab_size", c.vocab_size)
            .num("seq_len", c.seq_len)
            .num("version", h.version)
            .flag("shared_classifier", h.shared_classifier)
            .num("group_size", s.group_size.unwrap_or(0))
            .flag("quantized_on_load", s.quantized_on_load)
            .num("params", s.params)
            .num("weight_bytes", s.weight_bytes)
            .num("state_bytes", s.state_bytes)
            .num("memory_bytes", s.memory_bytes)
            .text("kernels", self.llama.kernels().name())
            .build())
    }

    /// The kernels the model runs: "simd128" (the default) or "scalar"
    /// (run.c's loops, the reference; slower). From the next generation on.
    #[wasm_bindgen(getter)]
    pub fn kernels(&self) -> String {
        self.llama.kernels().name().into()
    }

    #[wasm_bindgen(setter)]
    pub fn set_kernels(&mut self, name: &JsValue) -> Result<(), JsError> {
        let name = string_arg(name, "kernels")?;
        self.llama.set_kernels(Kernels::parse(&name)?);
        Ok(())
    }

    /// run.c's `encode(text, bos=1, eos=0)`, for inspection.
    pub fn encode(&self, text: &JsValue) -> Result<Vec<u32>, JsError> {
        Ok(self.llama.tokenizer().encode(&string_arg(text, "text")?, true, false)?)
    }

    /// The text of token ids (an Array or a typed array), as a generation
    /// of them prints: the inverse of `encode` (BOS prints nothing).
    pub fn decode(&self, tokens: &JsValue) -> Result<String, JsError> {
        Ok(self.llama.tokenizer().decode_all(&tokens_arg(tokens, "tokens")?)?)
    }

    /// Start run.c's chat loop (Llama-2 `[INST]` template); then `chatUser`
    /// for each user message and `step()` until `undefined` ends the turn.
    #[wasm_bindgen(js_name = startChat)]
    pub fn start_chat(&mut self, system_prompt: &JsValue, temperature: &JsValue, topp: &JsValue, seed: &JsValue, steps: &JsValue) -> Result<(), JsError> {
        let system_prompt = string_arg(system_prompt, "system prompt")?;
        let params = params_from_js(temperature, topp, seed)?;
        self.llama.start_chat(&system_prompt, params, steps_from_js(steps)?)?;
        Ok(())
    }

    /// The user's next chat message.
    #[wasm_bindgen(js_name = chatUser)]
    pub fn chat_user(&mut self, message: &JsValue) -> Result<(), JsError> {
        Ok(self.llama.chat_user(&string_arg(message, "message")?)?)
    }

    /// Replace the tokenizer (same vocabulary size), keeping the weights.
    #[wasm_bindgen(js_name = setTokenizer)]
    pub fn set_tokenizer(&mut self, tokenizer: &JsValue) -> Result<(), JsError> {
        let tokenizer = tokenizer_from_js(tokenizer, None)?;
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

    /// Has the generation positions left to run (false once it stopped at
    /// its steps or its end token, true again after `extend`), or the chat
    /// steps left?
    #[wasm_bindgen(getter)]
    pub fn running(&self) -> bool {
        self.llama.is_running()
    }
}
