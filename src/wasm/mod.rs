//! The JavaScript face of the engine: a thin `Model` class over [`Llama`](crate::Llama).
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
//!
//! One file per thing it exports: [`model`] (the `Model` class: load,
//! generate, chat), [`gpu`] (`Model`'s WebGPU backend: `useGpu`,
//! `stepAsync`), [`inspector`] (`Model`'s inspector methods), [`loader`]
//! (`ModelLoader`, `fileInfo`, `tokenizerInfo`), [`sha256`] (`Sha256`, a
//! stored file's digest as it streams), [`threads`] (the threaded build's
//! glue), [`testing`] (test-only hooks). [`args`] checks every JS
//! argument and [`object`] builds every JS object the API returns.

mod args;
mod gpu;
mod inspector;
mod loader;
mod model;
mod object;
mod sha256;
mod testing;
mod threads;

use wasm_bindgen::prelude::*;

pub use gpu::find_gpu;
pub use inspector::timing_phases;
pub use loader::{file_info, tokenizer_info, ModelLoader};
pub use model::Model;
pub use sha256::Sha256;
pub use testing::{crash_for_test, set_memory_limit_for_test};
pub use threads::*;

/// The most memory one model may take in this engine (bytes; in wasm32,
/// 4 GiB less 256 MiB for the page). Weights, KV cache and activations of
/// every model loaded in one engine share it: compare with `fileInfo`'s
/// `memory_bytes` and `config().memory_bytes` before loading another.
#[wasm_bindgen(js_name = memoryLimit)]
pub fn memory_limit() -> f64 {
    crate::checkpoint::memory_limit() as f64
}
