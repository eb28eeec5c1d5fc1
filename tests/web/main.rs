//! Browser tests: the `Model` class as JavaScript sees it, running the
//! SIMD128 kernels, against run.c's golden outputs. One test binary (each
//! tests/*.rs is its own wasm build), a module per subject:
//! `model` (generation, continued with `extend`, config, errors, Q8_0),
//! `kernels` (the scalar choice, the native digests), `inspector`, `lens`
//! (the logit lens), `follow` (following one number), `choose` (`forceNext`
//! and `undo`), `loader`
//! (streaming, file and tokenizer info), `boundary` (every JS argument checked, thread exports), `sha256`
//! (the `Sha256` class the page's model library checks files with); `support`
//! holds the embedded files and the Rust-typed calls, `glue` the calls
//! through the JS glue.
//! Run with `wasm-pack test --headless --chrome` (after ./build.sh copied the
//! reference files into www/models and tests/golden).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "../both/mod.rs"]
mod both;
#[path = "../both/golden.rs"]
mod golden;

mod glue;
mod support;

mod gpu;

mod boundary;
mod choose;
mod follow;
mod inspector;
mod lens;
mod kernels;
mod loader;
mod model;
mod sha256;
