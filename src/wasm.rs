//! The JavaScript face of the engine: a thin `Model` class over [`Llama`].
//!
//! This is the only module that knows about JS. A Rust panic (a trap) kills
//! the whole wasm instance and every model in it, and so does a JS exception
//! thrown *through* Rust code (wasm-bindgen's borrow of the object is never
//! released: every later call says "recursive use of an object"). So at this
//! boundary:
//!
//! - every exported function takes its arguments as `JsValue`s and checks
//!   them itself (a string where a string is expected, a `Uint8Array` or an
//!   `ArrayBuffer` for bytes, numbers finite, whole and in range), with a
//!   message naming the argument: no JS value reaches a wasm-bindgen
//!   conversion that could trap or throw (its string glue traps on a
//!   number, its slice glue on an `ArrayBuffer`, its `u32` glue wraps
//!   4294967296 to 0);
//! - every fallible call returns `Result<_, JsError>`;
//! - the only JS called while a model is borrowed is JS's own built-ins on
//!   values this module made (a fresh `Uint8Array` over the caller's bytes),
//!   never a caller's getter;
//! - memory that depends on the input is reserved fallibly (an error, not
//!   an abort).
//!
//! `__crashForTest` and `__setMemoryLimitForTest` exist only for the page's
//! tests (a trap on purpose, and a lower memory limit).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use js_sys::{Array, Float32Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::checkpoint::{self, run_state_bytes, Checkpoint, CheckpointBuilder};
use crate::error::{thousands, Error};
use crate::generate::Llama;
use crate::inspect::{self, Phase, Probe};
use crate::sampler::SamplerParams;
use crate::tokenizer::Tokenizer;

// ------------------------------------------------------------ JS arguments

#[wasm_bindgen(inline_js = r#"
// the clock, captured once: a page that replaces performance.now later
// cannot run its own code inside a step
const perfNow = performance.now.bind(performance);
export function now() { return perfNow(); }

// A fresh Uint8Array over the bytes of a Uint8Array, any other typed array
// or DataView, an ArrayBuffer or a SharedArrayBuffer; undefined for anything
// else. A view of this module's own memory is copied first (it would move
// when the memory grows). Any exception (a getter, a Proxy) means "not bytes".
export function as_bytes(v, memory) {
  try {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) return undefined;
    let u;
    const tag = Object.prototype.toString.call(v);
    if (v instanceof ArrayBuffer || tag === "[object ArrayBuffer]" || tag === "[object SharedArrayBuffer]") u = new Uint8Array(v);
    else if (ArrayBuffer.isView(v)) u = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    else return undefined;
    if (u.buffer === memory.buffer) u = u.slice();
    return u;
  } catch {
    return undefined;
  }
}

export function byte_length(u) { return u.length; }

// An object's constructor name for messages ("" when there is none).
export function type_name(v) {
  try {
    const name = Object.getPrototypeOf(v)?.constructor?.name;
    return typeof name === "string" ? name : "";
  } catch {
    return "";
  }
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = now)]
    fn performance_now() -> f64;
    fn as_bytes(v: &JsValue, memory: &JsValue) -> JsValue;
    fn type_name(v: &JsValue) -> String;
    /// `length` as a number: js-sys's `u32` would wrap a length over 4 GiB.
    fn byte_length(bytes: &Uint8Array) -> f64;
}

/// A JS number as JS prints it (Infinity, not inf).
fn js_number(n: f64) -> String {
    if n.is_infinite() {
        if n > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        format!("{n}")
    }
}

/// What a JS value is, for messages: "the number 123", "null", "a symbol",
/// "an ArrayBuffer".
fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        "undefined".into()
    } else if v.is_null() {
        "null".into()
    } else if let Some(n) = v.as_f64() {
        format!("the number {}", js_number(n))
    } else if let Some(b) = v.as_bool() {
        format!("{b}")
    } else if v.is_string() {
        "a string".into()
    } else if v.is_symbol() {
        "a symbol".into()
    } else if v.is_bigint() {
        "a BigInt".into()
    } else if v.is_function() {
        "a function".into()
    } else {
        match type_name(v) {
            name if name.is_empty() => "an object".into(),
            name if name.starts_with(['A', 'E', 'I', 'O', 'U']) => format!("an {name}"),
            name => format!("a {name}"),
        }
    }
}

fn wrong(what: &str, expected: &str, v: &JsValue) -> Error {
    Error::Argument(format!("{what} must be {expected}, not {}", describe(v)))
}

fn string_arg(v: &JsValue, what: &str) -> Result<String, Error> {
    v.as_string().ok_or_else(|| wrong(what, "a string", v))
}

fn number_arg(v: &JsValue, what: &str) -> Result<f64, Error> {
    v.as_f64().ok_or_else(|| wrong(what, "a number", v))
}

/// `true` or `false`; `undefined` (and `null`) mean `default` when there is one.
fn bool_arg(v: &JsValue, what: &str, default: Option<bool>) -> Result<bool, Error> {
    match (v.as_bool(), default) {
        (Some(b), _) => Ok(b),
        (None, Some(d)) if v.is_null() || v.is_undefined() => Ok(d),
        _ => Err(wrong(what, "true or false", v)),
    }
}

/// Bytes larger than this cannot be a checkpoint wasm32 can hold, or a tokenizer.
const MAX_BYTES: f64 = 4_294_967_295.0;

/// A `Uint8Array` (or `ArrayBuffer`, or any typed array / DataView) as a
/// fresh `Uint8Array` this module made, with its length.
fn bytes_arg(v: &JsValue, what: &'static str) -> Result<(Uint8Array, u32), Error> {
    let bytes = as_bytes(v, &wasm_bindgen::memory());
    if bytes.is_undefined() {
        return Err(wrong(what, "a Uint8Array or an ArrayBuffer", v));
    }
    let bytes = Uint8Array::unchecked_from_js(bytes);
    let len = byte_length(&bytes);
    if !(0.0..=MAX_BYTES).contains(&len) {
        return Err(Error::TooLarge { what, bytes: len as u64 });
    }
    Ok((bytes, len as u32))
}

/// Copy `bytes[start..start + n]` into `dst` (cleared first), fallibly.
fn copy_into(bytes: &Uint8Array, start: u32, n: u32, dst: &mut Vec<u8>, what: &'static str) -> Result<(), Error> {
    dst.clear();
    dst.try_reserve_exact(n as usize).map_err(|_| Error::TooLarge { what, bytes: n as u64 })?;
    dst.resize(n as usize, 0);
    let part = bytes.subarray(start, start + n);
    if part.length() != n {
        return Err(Error::State("the bytes changed while they were being read (was the buffer detached?)"));
    }
    part.copy_to(dst);
    Ok(())
}

/// A whole `Uint8Array` / `ArrayBuffer` argument copied into wasm memory.
fn bytes_vec(v: &JsValue, what: &'static str) -> Result<Vec<u8>, Error> {
    let (bytes, len) = bytes_arg(v, what)?;
    let mut out = Vec::new();
    copy_into(&bytes, 0, len, &mut out, what)?;
    Ok(out)
}

/// JS numbers are f64; seeds must survive the round trip exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0; // 2^53 - 1

fn seed_from_js(seed: &JsValue) -> Result<u64, Error> {
    let seed = number_arg(seed, "seed")?;
    if !(seed.is_finite() && seed.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&seed)) {
        return Err(Error::Argument(format!(
            "seed {} must be a whole number from 0 to 2^53 - 1 (0 = random)",
            js_number(seed)
        )));
    }
    Ok(seed as u64)
}

/// A whole number ≥ 0 from JS, as f64 (callers compare it with their range).
fn whole_from_js(v: &JsValue, what: &str) -> Result<f64, Error> {
    let value = number_arg(v, what)?;
    if !(value.is_finite() && value >= 0.0 && value.fract() == 0.0) {
        return Err(Error::Argument(format!("{what} {} is not a whole number ≥ 0", js_number(value))));
    }
    Ok(value)
}

/// A position or a count from JS: a whole number ≥ 0 (huge ones saturate,
/// and the callee says what range it takes).
fn index_from_js(v: &JsValue, what: &str) -> Result<usize, Error> {
    Ok(whole_from_js(v, what)? as usize)
}

/// Sampling parameters from JS: temperature and top-p numbers (run.c's
/// clamping follows), the seed a whole number.
fn params_from_js(temperature: &JsValue, topp: &JsValue, seed: &JsValue) -> Result<SamplerParams, Error> {
    let temperature = number_arg(temperature, "temperature")?;
    let topp = number_arg(topp, "topp")?;
    SamplerParams::new(temperature, topp, seed_from_js(seed)?)
}

fn steps_from_js(steps: &JsValue) -> Result<i64, Error> {
    let steps = number_arg(steps, "steps")?;
    if steps.is_nan() {
        return Err(Error::Argument("steps is NaN; use 0 for the model's seq_len".into()));
    }
    // like run.c's atoi: fractions truncate; negative and huge values are clamped later
    Ok(steps as i64)
}

// ------------------------------------------------------------ test hooks

/// Test-only: where `__crashForTest` makes the engine trap (0 = nowhere).
static CRASH_AT: AtomicU32 = AtomicU32::new(0);
const CRASH_STEP: u32 = 1;
const CRASH_PUSH: u32 = 2;

/// Trap here if a test armed a crash at this point (one atomic load).
#[inline(always)]
fn crash_point(at: u32) {
    if CRASH_AT.load(Relaxed) == at && CRASH_AT.compare_exchange(at, 0, Relaxed, Relaxed).is_ok() {
        console_error_panic_hook::set_once();
        core::arch::wasm32::unreachable();
    }
}

/// TEST ONLY (the page's tests of what happens when the engine dies): make
/// this wasm instance trap, as a Rust panic would. `"now"` traps in this
/// call; `"step"` arms the next `Model.step()` and `"push"` the next
/// `ModelLoader.push()` to trap while their object is borrowed (the state
/// in which every later call says "recursive use of an object"). Anything
/// else is an error.
#[wasm_bindgen(js_name = __crashForTest)]
pub fn crash_for_test(when: &JsValue) -> Result<(), JsError> {
    match string_arg(when, "when")?.as_str() {
        "now" => {
            console_error_panic_hook::set_once();
            core::arch::wasm32::unreachable()
        }
        "step" => CRASH_AT.store(CRASH_STEP, Relaxed),
        "push" => CRASH_AT.store(CRASH_PUSH, Relaxed),
        other => return Err(Error::Argument(format!("__crashForTest takes \"now\", \"step\" or \"push\", not {other:?}")).into()),
    }
    Ok(())
}

/// TEST ONLY: lower the memory a model may take in this instance
/// (`checkpoint::memory_limit`), so the page's "free the old model first"
/// path can be tested with small models. 0 restores the default.
#[wasm_bindgen(js_name = __setMemoryLimitForTest)]
pub fn set_memory_limit_for_test(bytes: &JsValue) -> Result<(), JsError> {
    let bytes = whole_from_js(bytes, "bytes")?;
    checkpoint::set_memory_limit(bytes.min(u64::MAX as f64) as u64);
    Ok(())
}

/// The most memory one model may take in this engine (bytes; in wasm32,
/// 4 GiB less 256 MiB for the page). Weights, KV cache and activations of
/// every model loaded in one engine share it: compare with `fileInfo`'s
/// `memory_bytes` and `config().memory_bytes` before loading another.
/// The names of `timingsAll()`'s columns, in order: the keys of
/// `timings()` without `total` (the phases a step's time is split into).
#[wasm_bindgen(js_name = timingPhases)]
pub fn timing_phases() -> Vec<String> {
    Phase::ALL.iter().map(|p| p.name().to_string()).collect()
}

#[wasm_bindgen(js_name = memoryLimit)]
pub fn memory_limit() -> f64 {
    checkpoint::memory_limit() as f64
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
  return Object.fromEntries(names.split(",").map((name, i) => [name, values[i]]));
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

/// A checkpoint from a whole file's bytes: the header checked first, then
/// the file copied into the weights 64 KiB at a time (never whole in wasm
/// memory).
fn checkpoint_from_js(bytes: &Uint8Array, len: u32) -> Result<Checkpoint, Error> {
    let mut chunk = Vec::new();
    copy_into(bytes, 0, len.min(256), &mut chunk, "the checkpoint's header")?;
    let mut builder = CheckpointBuilder::new(&chunk, len as u64)?;
    while builder.received() < len as u64 {
        let at = builder.received() as u32;
        copy_into(bytes, at, (len - at).min(1 << 16), &mut chunk, "a chunk of the checkpoint")?;
        builder.push(&chunk)?;
    }
    builder.finish()
}

/// A tokenizer from its bytes; with `vocab_size`, it must have that many tokens.
fn tokenizer_from_js(bytes: &JsValue, vocab_size: Option<usize>) -> Result<Tokenizer, Error> {
    let tokenizer = Tokenizer::from_bytes(&bytes_vec(bytes, "tokenizer")?)?;
    match vocab_size {
        Some(v) if tokenizer.vocab_size() != v => Err(Error::VocabMismatch { tokenizer: tokenizer.vocab_size(), checkpoint: v }),
        _ => Ok(tokenizer),
    }
}

/// A loaded model: construct it from the checkpoint and tokenizer bytes,
/// `start()` a generation, then call `step()` until it returns `undefined`.
#[wasm_bindgen]
pub struct Model {
    llama: Llama,
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
        let mut checkpoint = checkpoint_from_js(&bytes, len)?;
        if quantize {
            checkpoint = checkpoint.quantize()?;
        }
        Ok(Model { llama: Llama::new(checkpoint, tokenizer)? })
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

    /// The next piece of text (possibly `""` while a UTF-8 character is
    /// incomplete), or `undefined` when the generation is finished.
    pub fn step(&mut self) -> Result<Option<String>, JsError> {
        crash_point(CRASH_STEP);
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
    /// for fp32 weights), `quantized_on_load`, and sizes for display:
    /// `params`, `weight_bytes`, `state_bytes`, and `memory_bytes` (all the
    /// model holds: weights as loaded, run state, token history, sampler).
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
        // memory_needed counts the weights as the header stores them; these are as loaded
        let file_weights = checkpoint::weight_bytes(&t.header).unwrap_or(0);
        let rest = checkpoint::memory_needed(&t.header).unwrap_or(0).saturating_sub(file_weights);
        set(&o, "memory_bytes", JsValue::from_f64((rest + t.weights.bytes() as u64) as f64))?;
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
    pub fn set_kernels(&mut self, name: &JsValue) -> Result<(), JsError> {
        let name = string_arg(name, "kernels")?;
        self.llama.set_kernels(crate::kernels::Kernels::parse(&name)?);
        Ok(())
    }

    /// run.c's `encode(text, bos=1, eos=0)`, for inspection.
    pub fn encode(&self, text: &JsValue) -> Result<Vec<u32>, JsError> {
        Ok(self.llama.tokenizer.encode(&string_arg(text, "text")?, true, false)?)
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
    pub fn set_inspect(&mut self, on: &JsValue) -> Result<(), JsError> {
        let on = bool_arg(on, "inspect", None)?;
        let trace = on && self.walkthrough();
        self.llama.set_inspect(on.then_some(performance_now as inspect::Clock), trace);
        Ok(())
    }

    /// Walkthrough: also keep a few values of every vector of the forward
    /// pass (`trace()`). Setting it opens the inspector.
    #[wasm_bindgen(getter)]
    pub fn walkthrough(&self) -> bool {
        self.llama.transformer.probe.as_ref().is_some_and(|p| p.trace)
    }

    #[wasm_bindgen(setter)]
    pub fn set_walkthrough(&mut self, on: &JsValue) -> Result<(), JsError> {
        let on = bool_arg(on, "walkthrough", None)?;
        if on || self.inspect() {
            self.llama.set_inspect(Some(performance_now), on);
        }
        Ok(())
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
    pub fn inspect_at(&mut self, pos: &JsValue) -> Result<(), JsError> {
        let pos = whole_from_js(pos, "position")?;
        if !self.inspect() {
            return Err(Error::State("the inspector is closed: open it (inspect = true) first").into());
        }
        let cached = self.llama.cached_positions();
        if pos >= cached as f64 {
            return Err(Error::Argument(format!(
                "position {} has not been generated yet: positions 0 to {} can be inspected",
                js_number(pos),
                cached as i64 - 1
            ))
            .into());
        }
        Ok(self.llama.inspect_at(pos as usize)?)
    }

    /// The next-token distribution of the recorded position: `{ pos, token,
    /// next, nextProb, nextRank, forced, replayed, temperature, topp,
    /// nucleus, nucleusMass, candidates: [{ token, text, prob, logit, kept }] }`,
    /// the `k` most likely first (k: a whole number; more than the
    /// vocabulary means all of it); `nextRank` (1 = most likely) and
    /// `nextProb` place the token that came even outside the `k`. `prob`
    /// is after temperature (softmax of the logits at temperature 0, where
    /// the sampler takes the top one); `kept`: inside the top-p nucleus the
    /// sampler drew from; `next`: the token that came.
    pub fn topk(&self, k: &JsValue) -> Result<JsValue, JsError> {
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
            texts.push(&JsValue::from_str(&self.piece_text(c.token)));
        }
        Ok(topk_object(&head, &cands, &texts))
    }

    /// (vocab_size,) the recorded position's logits, before sampling (a copy).
    pub fn logits(&self) -> Result<Vec<f32>, JsError> {
        Ok(self.record()?.logits.clone())
    }

    /// (pos + 1,) attention weights of one layer and head at the recorded
    /// position, over positions 0..=pos (a copy; each row sums to 1).
    /// `layer` and `head` are whole numbers within the model's; anything
    /// else is an error naming the valid ranges.
    pub fn attention(&self, layer: &JsValue, head: &JsValue) -> Result<Vec<f32>, JsError> {
        let c = &self.llama.transformer.config;
        let range = |v: &JsValue, n: usize| v.as_f64().filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < n as f64);
        let (Some(l), Some(h)) = (range(layer, c.n_layers), range(head, c.n_heads)) else {
            let show = |v: &JsValue| v.as_f64().map_or_else(|| describe(v), js_number);
            return Err(Error::Argument(format!(
                "no layer {} head {}: this model has layers 0-{} and heads 0-{} (whole numbers)",
                show(layer),
                show(head),
                c.n_layers - 1,
                c.n_heads - 1
            ))
            .into());
        };
        let probe = self.record()?;
        probe
            .attention(l as usize, h as usize)
            .map(<[f32]>::to_vec)
            .ok_or_else(|| Error::State("the record holds no attention for this layer and head").into())
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
    /// `total`. Without `pos` (or `undefined`): the recorded step (a replay
    /// has no sampling). With `pos`: that position as it ran live with the
    /// inspector open, or `undefined` when it ran while the inspector was
    /// closed (or has not run).
    pub fn timings(&self, pos: &JsValue) -> Result<JsValue, JsError> {
        let t = if pos.is_undefined() || pos.is_null() {
            self.record()?.timings
        } else {
            let pos = index_from_js(pos, "position")?;
            let Some(probe) = self.llama.transformer.probe.as_deref() else {
                return Err(Error::State("the inspector is closed: set model.inspect = true, then step()").into());
            };
            match probe.timings_at(pos) {
                Some(t) => t,
                None => return Ok(JsValue::UNDEFINED),
            }
        };
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).chain(["total"]).collect();
        let values: Vec<f64> = Phase::ALL.iter().map(|&p| t.get(p)).chain([t.total()]).collect();
        Ok(named_object(&names.join(","), &values))
    }

    /// (positions, phases) the live timings of every position of the current
    /// text, one row per position with its columns in `timingPhases()`'s
    /// order (`timings()`'s keys without `total`); NaN for positions run
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
    /// (ASCII); other byte tokens keep their `<0xE2>` name. `token`: a whole
    /// number below the vocabulary size.
    pub fn piece(&self, token: &JsValue) -> Result<String, JsError> {
        let t = number_arg(token, "token")?;
        let n = self.llama.tokenizer.vocab_size();
        if !(t.fract() == 0.0 && t >= 0.0 && t < n as f64) {
            return Err(Error::Argument(format!(
                "token {} is not in the vocabulary: tokens are whole numbers 0-{}",
                js_number(t),
                n - 1
            ))
            .into());
        }
        Ok(self.piece_text(t as u32))
    }

    fn piece_text(&self, token: u32) -> String {
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
///
/// What is pushed must be the file the loader was opened with: its first
/// bytes must equal `firstBytes`, and all of it exactly `totalSize` bytes.
/// A `finish` whose tokenizer is refused (unreadable, or another
/// vocabulary) leaves the loader and its weights as they were, for another
/// `finish` with the right tokenizer.
#[wasm_bindgen]
pub struct ModelLoader {
    builder: Option<CheckpointBuilder>,
    /// The first bytes the loader was opened with (at most 256).
    head: Vec<u8>,
    size: u64,
    quantize: bool,
    /// Reused for each piece of a chunk copied into wasm memory.
    buffer: Vec<u8>,
}

/// Chunks are copied into wasm memory this much at a time.
const PIECE: u32 = 1 << 20;

#[wasm_bindgen]
impl ModelLoader {
    /// `head`: the file's first 256 bytes (all of it if shorter), a
    /// `Uint8Array` or `ArrayBuffer`; `size`: its length in bytes;
    /// `quantize` (optional): load an fp32 file as Q8_0.
    #[wasm_bindgen(constructor)]
    pub fn new(head: &JsValue, size: &JsValue, quantize: &JsValue) -> Result<ModelLoader, JsError> {
        console_error_panic_hook::set_once();
        let (bytes, len) = bytes_arg(head, "head")?;
        let size = number_arg(size, "size")?;
        if !(size.is_finite() && size >= 0.0 && size.fract() == 0.0 && size <= MAX_SAFE_INTEGER) {
            return Err(Error::Argument(format!("file size {} is not a byte count", js_number(size))).into());
        }
        let quantize = bool_arg(quantize, "quantize", Some(false))?;
        let mut head = Vec::new();
        copy_into(&bytes, 0, len.min(256), &mut head, "the checkpoint's header")?;
        let builder = CheckpointBuilder::new(&head, size as u64)?;
        Ok(ModelLoader { builder: Some(builder), head, size: size as u64, quantize, buffer: Vec::new() })
    }

    /// The next bytes of the file (a `Uint8Array` or `ArrayBuffer`), from
    /// its very first byte on, in order.
    pub fn push(&mut self, chunk: &JsValue) -> Result<(), JsError> {
        crash_point(CRASH_PUSH);
        let builder = self.builder.as_mut().ok_or(Error::State("this loader has already finished"))?;
        let (bytes, len) = bytes_arg(chunk, "chunk")?;
        let arriving = builder.received() + len as u64;
        if arriving > self.size {
            return Err(Error::Checkpoint(format!(
                "{} bytes were pushed, more than the {} bytes the loader was opened for",
                thousands(arriving),
                thousands(self.size)
            ))
            .into());
        }
        let mut at = 0;
        while at < len {
            let n = (len - at).min(PIECE);
            copy_into(&bytes, at, n, &mut self.buffer, "a chunk of the checkpoint")?;
            // the header part must be the very head the loader checked
            let received = builder.received();
            if received < self.head.len() as u64 {
                let start = received as usize;
                let end = (start + n as usize).min(self.head.len());
                if let Some(i) = (start..end).find(|&i| self.buffer[i - start] != self.head[i]) {
                    return Err(Error::Checkpoint(format!(
                        "byte {i} pushed differs from the header this loader was opened with: \
                         push the same file, from its first byte"
                    ))
                    .into());
                }
            }
            builder.push(&self.buffer)?;
            at += n;
        }
        if self.buffer.capacity() > PIECE as usize {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Bytes pushed so far.
    #[wasm_bindgen(getter)]
    pub fn received(&self) -> f64 {
        self.builder.as_ref().map_or(0.0, |b| b.received() as f64)
    }

    /// All bytes pushed: build the model with this tokenizer (a `Uint8Array`
    /// or `ArrayBuffer`). A file not yet complete, or a tokenizer that is
    /// refused (unreadable, or of another vocabulary size), is an error that
    /// leaves the loader as it was.
    pub fn finish(&mut self, tokenizer: &JsValue) -> Result<Model, JsError> {
        let builder = self.builder.as_ref().ok_or(Error::State("this loader has already finished"))?;
        if builder.received() != self.size {
            return Err(Error::Checkpoint(format!(
                "the file ended after {} of its {} bytes",
                thousands(builder.received()),
                thousands(self.size)
            ))
            .into());
        }
        let tokenizer = tokenizer_from_js(tokenizer, Some(builder.header().config.vocab_size))?;
        let builder = self.builder.take().ok_or(Error::State("this loader has already finished"))?;
        self.buffer = Vec::new();
        let mut checkpoint = builder.finish()?;
        if self.quantize {
            checkpoint = checkpoint.quantize()?;
        }
        Ok(Model { llama: Llama::new(checkpoint, tokenizer)? })
    }
}

/// What a file is, from its first bytes (256 are enough; a `Uint8Array` or
/// `ArrayBuffer`) and its size, before reading the rest: `{ kind:
/// "checkpoint" | "tokenizer" | "unknown", error?, version?, vocab_size?,
/// memory_bytes? }`. The engine's own checks: a checkpoint whose header is
/// invalid, whose size does not match, or which cannot fit in memory has
/// `error` set, so a page can refuse it without reading gigabytes; a
/// tokenizer is what the tokenizer parser accepts the start of.
#[wasm_bindgen(js_name = fileInfo)]
pub fn file_info(head: &JsValue, size: &JsValue) -> Result<JsValue, JsError> {
    console_error_panic_hook::set_once();
    // the first 64 KiB at most: what the checks read is far less
    let (bytes, len) = bytes_arg(head, "head")?;
    let mut head = Vec::new();
    copy_into(&bytes, 0, len.min(1 << 16), &mut head, "the file's first bytes")?;
    let size = number_arg(size, "size")?;
    if !(size.is_finite() && size >= 0.0 && size.fract() == 0.0) {
        return Err(Error::Argument(format!("file size {} is not a byte count", js_number(size))).into());
    }
    let size = size as u64;
    let o = Object::new();
    let checked = checkpoint::check(&head, size);
    // a legacy header and a tokenizer's first entries can look alike: a
    // header that is valid for exactly this file's length decides
    let checkpoint = checkpoint::looks_like_checkpoint(&head) && (checked.is_ok() || !Tokenizer::looks_like(&head));
    if let Some(what) = checkpoint::identify_wrong_file(&head) {
        set(&o, "kind", "unknown".into())?;
        set(&o, "error", JsValue::from_str(what))?;
    } else if checkpoint {
        set(&o, "kind", "checkpoint".into())?;
        match checked {
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

/// A whole tokenizer file checked by the engine's parser: `{ vocab_size,
/// max_token_length }`, or the parser's error. With `vocabSize` (a
/// checkpoint's), a tokenizer of another size is an error too, so a page
/// can refuse the pair before streaming the checkpoint.
#[wasm_bindgen(js_name = tokenizerInfo)]
pub fn tokenizer_info(bytes: &JsValue, vocab_size: &JsValue) -> Result<JsValue, JsError> {
    console_error_panic_hook::set_once();
    let vocab_size = if vocab_size.is_undefined() || vocab_size.is_null() {
        None
    } else {
        Some(index_from_js(vocab_size, "vocabSize")?)
    };
    let tokenizer = tokenizer_from_js(bytes, vocab_size)?;
    let o = Object::new();
    set(&o, "vocab_size", JsValue::from_f64(tokenizer.vocab_size() as f64))?;
    set(&o, "max_token_length", JsValue::from_f64(tokenizer.max_token_length() as f64))?;
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
pub fn enable_threads(helpers: &JsValue) -> Result<usize, JsError> {
    let helpers = index_from_js(helpers, "helpers")?;
    Ok(crate::parallel::enable(helpers)?)
}

/// Split matmuls of at least `weights` weights (default 65,536; tests use 0
/// so that even stories260K's small matrices go through the helpers).
#[wasm_bindgen(js_name = setMinParallel)]
pub fn set_min_parallel(weights: &JsValue) -> Result<(), JsError> {
    crate::parallel::set_min_parallel(index_from_js(weights, "weights")?);
    Ok(())
}

/// A helper Worker's whole life: take part `index` (1, 2, ...) of every
/// matmul. Never returns in the threaded build unless the index is out of
/// range or taken (an error); an error in the single-threaded build.
#[wasm_bindgen(js_name = threadHelper)]
pub fn thread_helper(index: &JsValue) -> Result<(), JsError> {
    let index = index_from_js(index, "helper index")?;
    if !threads_supported() {
        return Err(JsError::new("this wasm build has no threads (use www/pkg-threads)"));
    }
    Err(crate::parallel::helper_loop(index).into())
}

/// A helper Worker caught a trap inside `threadHelper`: its parts are
/// computed by the page's thread from now on (threading stops, nothing hangs).
#[wasm_bindgen(js_name = threadHelperFailed)]
pub fn thread_helper_failed(index: &JsValue) -> Result<(), JsError> {
    crate::parallel::helper_failed(index_from_js(index, "helper index")?);
    Ok(())
}

/// Parts of matmuls computed by helpers so far (tests: the threads did work).
#[wasm_bindgen(js_name = helperParts)]
pub fn helper_parts() -> f64 {
    crate::parallel::helper_parts() as f64
}
