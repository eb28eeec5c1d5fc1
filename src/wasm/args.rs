//! JS arguments checked before anything else sees them: strings, bytes,
//! booleans and numbers, each with a message naming the argument; and whole
//! checkpoint and tokenizer files given as bytes.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::checkpoint::{Checkpoint, CheckpointBuilder};
use crate::error::Error;
use crate::sampler::SamplerParams;
use crate::tokenizer::Tokenizer;


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
    pub(super) fn performance_now() -> f64;
    fn as_bytes(v: &JsValue, memory: &JsValue) -> JsValue;
    fn type_name(v: &JsValue) -> String;
    /// `length` as a number: js-sys's `u32` would wrap a length over 4 GiB.
    fn byte_length(bytes: &Uint8Array) -> f64;
}

/// A JS number as JS prints it (Infinity, not inf).
pub(super) fn js_number(n: f64) -> String {
    if n.is_infinite() {
        if n > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        format!("{n}")
    }
}

/// What a JS value is, for messages: "the number 123", "null", "a symbol",
/// "an ArrayBuffer".
pub(super) fn describe(v: &JsValue) -> String {
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

pub(super) fn string_arg(v: &JsValue, what: &str) -> Result<String, Error> {
    v.as_string().ok_or_else(|| wrong(what, "a string", v))
}

pub(super) fn number_arg(v: &JsValue, what: &str) -> Result<f64, Error> {
    v.as_f64().ok_or_else(|| wrong(what, "a number", v))
}

/// `true` or `false`; `undefined` (and `null`) mean `default` when there is one.
pub(super) fn bool_arg(v: &JsValue, what: &str, default: Option<bool>) -> Result<bool, Error> {
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
pub(super) fn bytes_arg(v: &JsValue, what: &'static str) -> Result<(Uint8Array, u32), Error> {
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
pub(super) fn copy_into(bytes: &Uint8Array, start: u32, n: u32, dst: &mut Vec<u8>, what: &'static str) -> Result<(), Error> {
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
pub(super) fn bytes_vec(v: &JsValue, what: &'static str) -> Result<Vec<u8>, Error> {
    let (bytes, len) = bytes_arg(v, what)?;
    let mut out = Vec::new();
    copy_into(&bytes, 0, len, &mut out, what)?;
    Ok(out)
}

/// JS numbers are f64; seeds must survive the round trip exactly.
pub(super) const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0; // 2^53 - 1

pub(super) fn seed_from_js(seed: &JsValue) -> Result<u64, Error> {
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
pub(super) fn whole_from_js(v: &JsValue, what: &str) -> Result<f64, Error> {
    let value = number_arg(v, what)?;
    if !(value.is_finite() && value >= 0.0 && value.fract() == 0.0) {
        return Err(Error::Argument(format!("{what} {} is not a whole number ≥ 0", js_number(value))));
    }
    Ok(value)
}

/// A position or a count from JS: a whole number ≥ 0 (huge ones saturate,
/// and the callee says what range it takes).
pub(super) fn index_from_js(v: &JsValue, what: &str) -> Result<usize, Error> {
    Ok(whole_from_js(v, what)? as usize)
}

/// Sampling parameters from JS: temperature and top-p numbers (run.c's
/// clamping follows), the seed a whole number.
pub(super) fn params_from_js(temperature: &JsValue, topp: &JsValue, seed: &JsValue) -> Result<SamplerParams, Error> {
    let temperature = number_arg(temperature, "temperature")?;
    let topp = number_arg(topp, "topp")?;
    SamplerParams::new(temperature, topp, seed_from_js(seed)?)
}

/// A list of token ids: an Array of whole numbers or a typed array of
/// them (checked against the vocabulary by the tokenizer).
pub(super) fn tokens_arg(v: &JsValue, what: &str) -> Result<Vec<u32>, Error> {
    let typed = js_sys::ArrayBuffer::is_view(v) && !v.is_instance_of::<js_sys::DataView>();
    if !(js_sys::Array::is_array(v) || typed) {
        return Err(wrong(what, "an Array of token ids", v));
    }
    let items = js_sys::Array::from(v);
    let mut tokens = Vec::new();
    tokens.try_reserve_exact(items.length() as usize).map_err(|_| Error::Argument(format!("{what} is too long")))?;
    for (i, item) in items.iter().enumerate() {
        let id = item.as_f64().filter(|n| n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(n));
        let Some(id) = id else {
            return Err(Error::Argument(format!("{what}[{i}] must be a token id (a whole number ≥ 0), not {}", describe(&item))));
        };
        tokens.push(id as u32);
    }
    Ok(tokens)
}

/// A token id: a whole number below `vocab_size`.
pub(super) fn token_from_js(v: &JsValue, vocab_size: usize) -> Result<u32, Error> {
    let t = number_arg(v, "token")?;
    if !(t.fract() == 0.0 && t >= 0.0 && t < vocab_size as f64) {
        return Err(Error::Argument(format!(
            "token {} is not in the vocabulary: tokens are whole numbers 0-{}",
            js_number(t),
            vocab_size - 1
        )));
    }
    Ok(t as u32)
}

pub(super) fn steps_from_js(steps: &JsValue) -> Result<i64, Error> {
    let steps = number_arg(steps, "steps")?;
    if steps.is_nan() {
        return Err(Error::Argument("steps is NaN; use 0 for the model's seq_len".into()));
    }
    // like run.c's atoi: fractions truncate; negative and huge values are clamped later
    Ok(steps as i64)
}

// ------------------------------------------------- whole files as arguments

/// A checkpoint from a whole file's bytes: the header checked first, then
/// the file copied into the weights 64 KiB at a time (never whole in wasm
/// memory).
pub(super) fn checkpoint_from_js(bytes: &Uint8Array, len: u32) -> Result<Checkpoint, Error> {
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
pub(super) fn tokenizer_from_js(bytes: &JsValue, vocab_size: Option<usize>) -> Result<Tokenizer, Error> {
    let tokenizer = Tokenizer::from_bytes(&bytes_vec(bytes, "tokenizer")?)?;
    match vocab_size {
        Some(v) if tokenizer.vocab_size() != v => Err(Error::VocabMismatch { tokenizer: tokenizer.vocab_size(), checkpoint: v }),
        _ => Ok(tokenizer),
    }
}

#[wasm_bindgen(inline_js = r#"
// useGpu's options as plain data, read once inside a try (a getter or a
// Proxy that throws means "not options"): [limit names, their values,
// maxPieceBytes], or a string saying what is wrong.
export function gpu_options(o) {
  try {
    if (o === undefined || o === null) return [[], [], undefined];
    if (typeof o !== "object") return "must be an object";
    const names = [], values = [];
    const limits = o.requiredLimits;
    if (limits !== undefined && limits !== null) {
      if (typeof limits !== "object") return "requiredLimits must be an object of WebGPU limit names and numbers";
      for (const name of Object.keys(limits)) {
        const v = limits[name];
        if (typeof v !== "number" || !Number.isFinite(v) || v < 0) return `requiredLimits.${name} must be a number of 0 or more`;
        names.push(String(name));
        values.push(v);
      }
    }
    const piece = o.maxPieceBytes;
    if (piece !== undefined && (typeof piece !== "number" || !Number.isInteger(piece) || piece < 16)) {
      return "maxPieceBytes must be a whole number of 16 or more";
    }
    return [names, values, piece];
  } catch {
    return "could not be read";
  }
}
"#)]
extern "C" {
    fn gpu_options(v: &JsValue) -> JsValue;
}

/// `useGpu`'s options: required limits (WebGPU's names and values), and the most bytes per matrix piece.
pub(super) type GpuOptions = (Vec<(String, f64)>, Option<u64>);

/// `useGpu`'s options: `{ requiredLimits: { name: number }, maxPieceBytes }`
/// (both optional; `undefined` for none): the limits and the piece size.
pub(super) fn gpu_options_arg(v: &JsValue) -> Result<GpuOptions, Error> {
    let parsed = gpu_options(v);
    if let Some(why) = parsed.as_string() {
        return Err(Error::Argument(format!("useGpu's options {why}")));
    }
    let parts = js_sys::Array::from(&parsed);
    let names = js_sys::Array::from(&parts.get(0));
    let values = js_sys::Array::from(&parts.get(1));
    let limits = (0..names.length())
        .map(|i| (names.get(i).as_string().unwrap_or_default(), values.get(i).as_f64().unwrap_or(0.0)))
        .collect();
    Ok((limits, parts.get(2).as_f64().map(|p| p as u64)))
}
