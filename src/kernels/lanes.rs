//! The 4-lane vector layer the SIMD kernels are written in: the few wasm
//! SIMD128 operations they use, under wasm's own names.
//!
//! - On wasm32 with `simd128` these *are* `core::arch::wasm32`'s intrinsics.
//! - On x86-64 each is written with SSE2 (x86-64's baseline: every x86-64
//!   CPU has it, so there is no runtime detection) to give exactly the lanes
//!   wasm's specification gives. The kernels therefore run the same sequence
//!   of IEEE operations on both, and the native CLI computes the same bits as
//!   the browser (tests/kernels.rs and the logits digest test prove it).
//!
//! Where SSE2 and wasm differ in an edge case, the edge is named: `pmin`/
//! `pmax` take their operands in wasm's order (SSE's `minps a, b` returns b
//! unless a < b), and int8 products are formed from sign-extended i16s
//! because SSE2 has no 8-bit multiply. Only the operations the kernels need
//! are here; add one only with the same lane semantics on both targets.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use core::arch::wasm32::{
    f32x4_add, f32x4_convert_i32x4, f32x4_div, f32x4_extract_lane, f32x4_mul, f32x4_neg, f32x4_pmax, f32x4_pmin,
    f32x4_splat, f32x4_sub, i16x8_add, i16x8_extend_high_i8x16, i16x8_extend_low_i8x16, i16x8_extmul_high_i8x16,
    i16x8_extmul_low_i8x16, i32x4_add, i32x4_dot_i16x8, i32x4_extadd_pairwise_i16x8, i32x4_extract_lane,
    i32x4_shl, i32x4_splat, v128, v128_load, v128_load32_zero, v128_store,
};

/// Interleave the low halves: [a0, b0, a1, b1] (32-bit lanes).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn zip_lo32(a: v128, b: v128) -> v128 {
    core::arch::wasm32::i32x4_shuffle::<0, 4, 1, 5>(a, b)
}

/// Interleave the high halves: [a2, b2, a3, b3] (32-bit lanes).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn zip_hi32(a: v128, b: v128) -> v128 {
    core::arch::wasm32::i32x4_shuffle::<2, 6, 3, 7>(a, b)
}

/// The low 64 bits of each: [a0, a1, b0, b1] (32-bit lanes).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn lo64(a: v128, b: v128) -> v128 {
    core::arch::wasm32::i32x4_shuffle::<0, 1, 4, 5>(a, b)
}

/// The high 64 bits of each: [a2, a3, b2, b3] (32-bit lanes).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn hi64(a: v128, b: v128) -> v128 {
    core::arch::wasm32::i32x4_shuffle::<2, 3, 6, 7>(a, b)
}

#[cfg(target_arch = "x86_64")]
pub use sse2::*;

/// SSE2 with wasm SIMD128's lane semantics. Each function is one or a few
/// instructions; `v128` is a plain 128-bit register viewed as f32 or integer
/// lanes as the operation needs (the casts between views cost nothing).
#[cfg(target_arch = "x86_64")]
#[allow(non_camel_case_types)]
mod sse2 {
    use core::arch::x86_64::*;

    /// 128 bits, like wasm's `v128`: four f32s, four i32s, eight i16s or sixteen i8s.
    #[derive(Clone, Copy, Debug)]
    pub struct v128(__m128i);

    // SSE2 is part of x86-64, so these intrinsics are always available; the
    // `unsafe` blocks below are only for calling them (no memory is touched
    // except by the load/store functions, whose callers promise the bounds).

    impl v128 {
        /// An SSE register as a `v128` (for the x86-only AVX2 kernels).
        #[inline(always)]
        pub fn from_sse(v: __m128i) -> v128 {
            v128(v)
        }
    }

    #[inline(always)]
    fn ps(v: v128) -> __m128 {
        unsafe { _mm_castsi128_ps(v.0) }
    }
    #[inline(always)]
    fn si(v: __m128) -> v128 {
        v128(unsafe { _mm_castps_si128(v) })
    }

    /// Load 16 bytes. Safety: `p` points at 16 readable bytes (no alignment needed).
    #[inline(always)]
    pub unsafe fn v128_load(p: *const v128) -> v128 {
        v128(_mm_loadu_si128(p as *const __m128i))
    }

    /// Store 16 bytes. Safety: `p` points at 16 writable bytes (no alignment needed).
    #[inline(always)]
    pub unsafe fn v128_store(p: *mut v128, v: v128) {
        _mm_storeu_si128(p as *mut __m128i, v.0)
    }

    /// Load 4 bytes into the low lane, the rest zero. Safety: `p` points at 4 readable bytes.
    #[inline(always)]
    pub unsafe fn v128_load32_zero(p: *const u32) -> v128 {
        v128(_mm_cvtsi32_si128(p.read_unaligned() as i32))
    }

    #[inline(always)]
    pub fn f32x4_splat(a: f32) -> v128 {
        si(unsafe { _mm_set1_ps(a) })
    }
    #[inline(always)]
    pub fn f32x4_add(a: v128, b: v128) -> v128 {
        si(unsafe { _mm_add_ps(ps(a), ps(b)) })
    }
    #[inline(always)]
    pub fn f32x4_sub(a: v128, b: v128) -> v128 {
        si(unsafe { _mm_sub_ps(ps(a), ps(b)) })
    }
    #[inline(always)]
    pub fn f32x4_mul(a: v128, b: v128) -> v128 {
        si(unsafe { _mm_mul_ps(ps(a), ps(b)) })
    }
    #[inline(always)]
    pub fn f32x4_div(a: v128, b: v128) -> v128 {
        si(unsafe { _mm_div_ps(ps(a), ps(b)) })
    }
    /// Flip the sign bit (NaNs included), as wasm's `f32x4.neg`.
    #[inline(always)]
    pub fn f32x4_neg(a: v128) -> v128 {
        v128(unsafe { _mm_xor_si128(a.0, _mm_set1_epi32(i32::MIN)) })
    }
    /// wasm's pseudo-minimum: `b < a ? b : a` per lane. SSE's `minps x, y`
    /// is `x < y ? x : y`, so the operands swap.
    #[inline(always)]
    pub fn f32x4_pmin(a: v128, b: v128) -> v128 {
        si(unsafe { _mm_min_ps(ps(b), ps(a)) })
    }
    /// wasm's pseudo-maximum: `a < b ? b : a` per lane (`maxps b, a`).
    #[inline(always)]
    pub fn f32x4_pmax(a: v128, b: v128) -> v128 {
        si(unsafe { _mm_max_ps(ps(b), ps(a)) })
    }
    /// i32 lanes to f32, rounding to nearest (as wasm).
    #[inline(always)]
    pub fn f32x4_convert_i32x4(a: v128) -> v128 {
        si(unsafe { _mm_cvtepi32_ps(a.0) })
    }
    #[inline(always)]
    pub fn f32x4_extract_lane<const N: usize>(a: v128) -> f32 {
        // a store and a load of one lane; LLVM turns this into a shuffle
        let lanes: [f32; 4] = unsafe { core::mem::transmute(a.0) };
        lanes[N]
    }

    #[inline(always)]
    pub fn i32x4_splat(a: i32) -> v128 {
        v128(unsafe { _mm_set1_epi32(a) })
    }
    #[inline(always)]
    pub fn i32x4_add(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_add_epi32(a.0, b.0) })
    }
    /// Shift each i32 lane left by `n` (0 to 31, as the kernels use it).
    #[inline(always)]
    pub fn i32x4_shl(a: v128, n: u32) -> v128 {
        debug_assert!(n < 32); // wasm takes n mod 32; SSE gives 0 for n >= 32
        v128(unsafe { _mm_sll_epi32(a.0, _mm_cvtsi32_si128(n as i32)) })
    }
    #[inline(always)]
    pub fn i32x4_extract_lane<const N: usize>(a: v128) -> i32 {
        let lanes: [i32; 4] = unsafe { core::mem::transmute(a.0) };
        lanes[N]
    }
    /// Lane i = a[2i] * b[2i] + a[2i+1] * b[2i+1] over i16s (SSE2's `pmaddwd`).
    #[inline(always)]
    pub fn i32x4_dot_i16x8(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_madd_epi16(a.0, b.0) })
    }
    /// Lane i = a[2i] + a[2i+1], i16 to i32 (`pmaddwd` with ones: exact).
    #[inline(always)]
    pub fn i32x4_extadd_pairwise_i16x8(a: v128) -> v128 {
        v128(unsafe { _mm_madd_epi16(a.0, _mm_set1_epi16(1)) })
    }

    #[inline(always)]
    pub fn i16x8_add(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_add_epi16(a.0, b.0) })
    }
    /// Sign-extend the low eight i8 lanes to i16: each byte paired with
    /// itself, then an arithmetic shift right by 8.
    #[inline(always)]
    pub fn i16x8_extend_low_i8x16(a: v128) -> v128 {
        v128(unsafe { _mm_srai_epi16::<8>(_mm_unpacklo_epi8(a.0, a.0)) })
    }
    /// Sign-extend the high eight i8 lanes to i16.
    #[inline(always)]
    pub fn i16x8_extend_high_i8x16(a: v128) -> v128 {
        v128(unsafe { _mm_srai_epi16::<8>(_mm_unpackhi_epi8(a.0, a.0)) })
    }
    /// The low eight i8 lanes multiplied into i16s (exact: |i8 x i8| <= 2^14).
    #[inline(always)]
    pub fn i16x8_extmul_low_i8x16(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_mullo_epi16(i16x8_extend_low_i8x16(a).0, i16x8_extend_low_i8x16(b).0) })
    }
    /// The high eight i8 lanes multiplied into i16s.
    #[inline(always)]
    pub fn i16x8_extmul_high_i8x16(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_mullo_epi16(i16x8_extend_high_i8x16(a).0, i16x8_extend_high_i8x16(b).0) })
    }

    /// [a0, b0, a1, b1] (32-bit lanes).
    #[inline(always)]
    pub fn zip_lo32(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_unpacklo_epi32(a.0, b.0) })
    }
    /// [a2, b2, a3, b3] (32-bit lanes).
    #[inline(always)]
    pub fn zip_hi32(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_unpackhi_epi32(a.0, b.0) })
    }
    /// [a0, a1, b0, b1] (32-bit lanes).
    #[inline(always)]
    pub fn lo64(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_unpacklo_epi64(a.0, b.0) })
    }
    /// [a2, a3, b2, b3] (32-bit lanes).
    #[inline(always)]
    pub fn hi64(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_unpackhi_epi64(a.0, b.0) })
    }
}
