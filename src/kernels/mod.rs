//! The hot loops: matmul (nearly all the time), plus the small vector ops of
//! attention and normalisation, and the transcendental functions of RoPE.
//!
//! Two sets of the same functions, chosen at run time by [`Kernels`]:
//! - `scalar` is the reference: run.c's loops in run.c's order of summation,
//!   with the platform's libm. Natively it reproduces run.c's (and runq.c's)
//!   floats, so `llama2 -k scalar` is token-exact with them.
//! - `simd` is written once over a 4-lane vector layer (`lanes`): wasm
//!   SIMD128 in the browser, SSE2 on x86-64. The same lane operations in the
//!   same order on both, and libm's functions taken from one crate (`libm`)
//!   on both, so the browser and the native CLI compute identical logits.
//!   Elsewhere (other CPUs, wasm without simd128) `simd` is not available.
//!
//! tests/kernels.rs compares the two sets natively and in the browser.

mod lanes;
pub mod scalar;

#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
pub mod simd;

/// Without a vector layer for this target, "simd" cannot be chosen; the name
/// still resolves so that [`Kernels`] compiles everywhere.
#[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
pub mod simd {
    pub use super::scalar::*;
}

use crate::error::{Error, Result};

/// Which set of kernels a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// Four lanes at a time (SIMD128 in the browser, SSE2 natively); the
    /// default where available. Same bits on every target that has it.
    Simd,
    /// run.c's sequential loops and the platform's libm: the reference.
    Scalar,
}

/// Whether this build has the SIMD kernels.
pub const HAS_SIMD: bool = cfg!(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"));

/// The instruction set behind [`Kernels::Simd`] on this target.
const SIMD_NAME: &str = if cfg!(target_arch = "wasm32") { "simd128" } else { "sse2" };

impl Default for Kernels {
    fn default() -> Kernels {
        if HAS_SIMD {
            Kernels::Simd
        } else {
            Kernels::Scalar
        }
    }
}

impl Kernels {
    /// "simd" (or the instruction set's own name, "simd128" / "sse2") or "scalar".
    pub fn parse(name: &str) -> Result<Kernels> {
        match name {
            "scalar" => Ok(Kernels::Scalar),
            "simd" | "simd128" | "sse2" if HAS_SIMD => Ok(Kernels::Simd),
            "simd" | "simd128" | "sse2" => {
                Err(Error::Argument("this build has no SIMD kernels (only x86-64 and wasm32 with simd128 do); use scalar".into()))
            }
            _ => Err(Error::Argument(format!("unknown kernels {name:?}: use simd or scalar"))),
        }
    }

    /// What the model card and the CLI show: "simd128", "sse2" or "scalar".
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Simd => SIMD_NAME,
            Kernels::Scalar => "scalar",
        }
    }

    /// W (d, n) @ x (n,) -> xout (d,), over some rows of a matrix of `whole`
    /// floats (the SIMD kernel is chosen by the whole matrix's size, so a
    /// matrix split between threads gives the same bits as in one piece).
    #[inline]
    pub fn matmul_rows(self, xout: &mut [f32], x: &[f32], w: &[f32], whole: usize) {
        match self {
            Kernels::Simd => simd::matmul_rows(xout, x, w, whole),
            Kernels::Scalar => scalar::matmul_rows(xout, x, w, whole),
        }
    }

    /// W (d, n) @ x (n,) -> xout (d,)
    #[inline]
    pub fn matmul(self, xout: &mut [f32], x: &[f32], w: &[f32]) {
        self.matmul_rows(xout, x, w, w.len())
    }

    /// runq.c's int8 matmul: W (d, n) @ x (n,), both in groups of `gs`.
    #[inline]
    pub fn matmul_q8(self, xout: &mut [f32], xq: &[i8], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
        match self {
            Kernels::Simd => simd::matmul_q8(xout, xq, xs, wq, ws, gs),
            Kernels::Scalar => scalar::matmul_q8(xout, xq, xs, wq, ws, gs),
        }
    }

    /// runq.c's `quantize` (the same code in both sets: once per vector).
    #[inline]
    pub fn quantize(self, q: &mut [i8], s: &mut [f32], x: &[f32], gs: usize) {
        scalar::quantize(q, s, x, gs)
    }

    /// att[t] = q . k_t / scale for one head (see `scalar::attention_scores`).
    #[inline]
    pub fn attention_scores(self, att: &mut [f32], q: &[f32], keys: &[f32], stride: usize, scale: f32) {
        match self {
            Kernels::Simd => simd::attention_scores(att, q, keys, stride, scale),
            Kernels::Scalar => scalar::attention_scores(att, q, keys, stride, scale),
        }
    }

    /// out = Σ_t att[t] * v_t for one head (see `scalar::attention_mix`).
    #[inline]
    pub fn attention_mix(self, out: &mut [f32], att: &[f32], values: &[f32], stride: usize) {
        match self {
            Kernels::Simd => simd::attention_mix(out, att, values, stride),
            Kernels::Scalar => scalar::attention_mix(out, att, values, stride),
        }
    }

    /// o = weight * x / sqrt(mean(x^2) + 1e-5)
    #[inline]
    pub fn rmsnorm(self, o: &mut [f32], x: &[f32], weight: &[f32]) {
        match self {
            Kernels::Simd => simd::rmsnorm(o, x, weight),
            Kernels::Scalar => scalar::rmsnorm(o, x, weight),
        }
    }

    /// In-place softmax (attention weights, and the sampler's probabilities).
    #[inline]
    pub fn softmax(self, x: &mut [f32]) {
        match self {
            Kernels::Simd => simd::softmax(x),
            Kernels::Scalar => scalar::softmax(x),
        }
    }

    /// hb = silu(hb) * hb2
    #[inline]
    pub fn swiglu(self, hb: &mut [f32], hb2: &[f32]) {
        match self {
            Kernels::Simd => simd::swiglu(hb, hb2),
            Kernels::Scalar => scalar::swiglu(hb, hb2),
        }
    }

    /// RoPE's frequency of each pair in a head: 1 / 10000^(2i / head_size), (head_size / 2,).
    pub fn rope_frequencies(self, head_size: usize) -> Vec<f32> {
        (0..head_size)
            .step_by(2)
            .map(|head_dim| 1.0 / self.powf(10000.0, head_dim as f32 / head_size as f32))
            .collect()
    }

    /// RoPE's rotation at `pos`: cos and sin of pos * freq for each pair.
    pub fn rope_rotation(self, pos: usize, freq: &[f32], cos: &mut [f32], sin: &mut [f32]) {
        for ((f, c), s) in freq.iter().zip(cos.iter_mut()).zip(sin.iter_mut()) {
            let val = pos as f32 * f;
            (*c, *s) = match self {
                // one implementation of cosf/sinf for the browser and native
                Kernels::Simd => (libm::cosf(val), libm::sinf(val)),
                // the platform's, as run.c calls them (glibc's natively)
                Kernels::Scalar => (val.cos(), val.sin()),
            };
        }
    }

    fn powf(self, x: f32, y: f32) -> f32 {
        match self {
            Kernels::Simd => libm::powf(x, y),
            Kernels::Scalar => x.powf(y),
        }
    }
}

/// The default kernels' name, for display and benchmarks.
pub const KERNELS: &str = if HAS_SIMD { SIMD_NAME } else { "scalar" };

/// A hint for a weight buffer that every token streams through once,
/// given before its first byte is written: on Linux, ask for transparent
/// huge pages (2 MiB instead of 4 KiB pages: 512 times fewer TLB entries
/// for the matmuls to walk). Nothing elsewhere, or when the kernel says no.
pub fn stream_hint<T>(buf: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn madvise(addr: *mut core::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        const MADV_HUGEPAGE: i32 = 14;
        const HUGE: usize = 2 << 20;
        let (start, bytes) = (buf.as_ptr() as usize, buf.capacity() * core::mem::size_of::<T>());
        // only whole huge pages inside the buffer (madvise wants a page-aligned start)
        let first = (start + HUGE - 1) & !(HUGE - 1);
        let end = (start + bytes) & !(HUGE - 1);
        if end > first {
            // Safety: [first, end) lies inside the buffer's allocation, which
            // outlives the call; MADV_HUGEPAGE changes how pages are backed,
            // never their contents, and a failure (old kernel, THP off) is harmless.
            unsafe { madvise(first as *mut core::ffi::c_void, end - first, MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}
