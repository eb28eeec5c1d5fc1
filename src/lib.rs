//! llama2.c's `run.c` in Rust, for the browser (wasm32 + SIMD128) and natively.
//!
//! Read it in run.c's order: [`checkpoint`] (config and weights from bytes;
//! [`sniff`] says what a file is),
//! [`kernels`] and [`transformer`] (the forward pass), [`tokenizer`],
//! [`sampler`], [`generate`] (the generate and chat loops), [`llama`] (all of
//! them put together), and [`inspect`]
//! (what a step did, for the page's inspector); [`sha256`] checks the files
//! the page stores. The `wasm` module is the only one that knows about
//! JavaScript, besides [`gpu`] (the forward pass on WebGPU, browser only).

// The threaded build (nightly, shared memory) sleeps helpers with the wasm
// futex instructions, still unstable in core::arch::wasm32.
#![cfg_attr(all(target_arch = "wasm32", target_feature = "atomics"), feature(stdarch_wasm_atomic_wait))]

pub mod checkpoint;
pub mod cli;
pub mod error;
pub mod generate;
pub mod inspect;
pub mod kernels;
pub mod llama;
pub mod parallel;
pub mod sampler;
pub mod sha256;
pub mod sniff;
pub mod tokenizer;
pub mod transformer;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

// WebGPU through web-sys's unstable bindings (.cargo/config.toml turns them on)
#[cfg(all(target_arch = "wasm32", web_sys_unstable_apis))]
pub mod gpu;

pub use checkpoint::{Checkpoint, Config, Header};
pub use error::{Error, Result};
pub use generate::Step;
pub use llama::Llama;
pub use sampler::{Sampler, SamplerParams};
pub use tokenizer::{TextStream, Tokenizer};
pub use transformer::Transformer;
