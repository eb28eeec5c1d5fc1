//! The hot loops: matmul (nearly all the time), plus the small vector ops of
//! attention and normalisation.
//!
//! `scalar` is the reference: the loops of run.c, in run.c's order of
//! summation. `simd128` has the same functions with wasm SIMD128 and is
//! chosen at compile time when the target has `simd128` (set in
//! `.cargo/config.toml`). Browser tests compare the two.

pub mod scalar;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use simd128::{attention_mix, attention_scores, matmul, matmul_q8, matmul_rows, quantize, rmsnorm, softmax, swiglu};

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub use scalar::{attention_mix, attention_scores, matmul, matmul_q8, matmul_rows, quantize, rmsnorm, softmax, swiglu};

/// Which kernels this build runs, for display and benchmarks.
pub const KERNELS: &str = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
    "simd128"
} else {
    "scalar"
};
