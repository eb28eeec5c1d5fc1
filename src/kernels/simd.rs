//! SIMD kernels: the same functions as `scalar`, four lanes at a time, written
//! once over the 4-lane layer in `lanes` (wasm SIMD128 in the browser, SSE2
//! natively). Both run the same sequence of IEEE operations, so the browser
//! and the native CLI compute the same bits; nothing here calls libm (`exp`
//! is a polynomial, tails go through the same polynomial in a padded vector).
//!
//! Sums are split over several f32x4 accumulators, so results differ from the
//! scalar reference by rounding only (tests/kernels.rs compares the two; the
//! parity tests check token parity with run.c).
//!
//! Why these shapes (measured in headless Chromium on the 2-core bench machine,
//! see README "Performance"): big matrices are bound by memory bandwidth, and
//! one row at a time with eight independent accumulators streams fastest;
//! small ones (stories260K, all in cache) are bound by instructions, and two
//! rows per pass sharing each load of `x` wins there.

use super::lanes::*;

/// Load 4 f32s from `s[i..i + 4]`.
///
/// Safety: the caller guarantees `i + 4 <= s.len()`. unaligned loads are allowed.
#[inline(always)]
unsafe fn load(s: &[f32], i: usize) -> v128 {
    debug_assert!(i + 4 <= s.len());
    v128_load(s.as_ptr().add(i) as *const v128)
}

/// Store 4 f32s to `s[i..i + 4]`.
///
/// Safety: the caller guarantees `i + 4 <= s.len()`.
#[inline(always)]
unsafe fn store(s: &mut [f32], i: usize, v: v128) {
    debug_assert!(i + 4 <= s.len());
    v128_store(s.as_mut_ptr().add(i) as *mut v128, v)
}

#[inline(always)]
fn hsum(v: v128) -> f32 {
    f32x4_extract_lane::<0>(v)
        + f32x4_extract_lane::<1>(v)
        + f32x4_extract_lane::<2>(v)
        + f32x4_extract_lane::<3>(v)
}

#[inline(always)]
fn hmax(v: v128) -> f32 {
    let a = f32x4_extract_lane::<0>(v).max(f32x4_extract_lane::<1>(v));
    let b = f32x4_extract_lane::<2>(v).max(f32x4_extract_lane::<3>(v));
    a.max(b)
}

#[inline(always)]
fn madd(acc: v128, a: v128, b: v128) -> v128 {
    f32x4_add(acc, f32x4_mul(a, b))
}

/// Matrices smaller than this (in floats) stay in cache: use the two-row kernel.
const SMALL_MATRIX: usize = 64 * 1024;

/// W (d, n) @ x (n,) -> xout (d,)
pub fn matmul(xout: &mut [f32], x: &[f32], w: &[f32]) {
    matmul_rows(xout, x, w, w.len())
}

/// `matmul` over some rows of a matrix of `whole` floats: the kernel (and so
/// the order of summation) is chosen by the whole matrix's size, so a matrix
/// split between threads gives the same bits as in one piece.
pub fn matmul_rows(xout: &mut [f32], x: &[f32], w: &[f32], whole: usize) {
    let n = x.len();
    let d = xout.len();
    assert_eq!(w.len(), d * n, "matmul: W must be (d, n)");
    if whole < SMALL_MATRIX {
        matmul_two_rows(xout, x, w);
    } else {
        for (out, row) in xout.iter_mut().zip(w.chunks_exact(n)) {
            *out = dot_streaming(row, x);
        }
    }
}

/// One long row . x with eight accumulators: enough independent adds to keep
/// loads in flight while the row streams from memory.
#[inline(always)]
fn dot_streaming(row: &[f32], x: &[f32]) -> f32 {
    let n = x.len().min(row.len());
    let n32 = n & !31;
    let z = f32x4_splat(0.0);
    let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7) = (z, z, z, z, z, z, z, z);
    let mut j = 0;
    while j < n32 {
        // Safety: j + 32 <= n32 <= n, and n <= row.len(), x.len().
        unsafe {
            a0 = madd(a0, load(row, j), load(x, j));
            a1 = madd(a1, load(row, j + 4), load(x, j + 4));
            a2 = madd(a2, load(row, j + 8), load(x, j + 8));
            a3 = madd(a3, load(row, j + 12), load(x, j + 12));
            a4 = madd(a4, load(row, j + 16), load(x, j + 16));
            a5 = madd(a5, load(row, j + 20), load(x, j + 20));
            a6 = madd(a6, load(row, j + 24), load(x, j + 24));
            a7 = madd(a7, load(row, j + 28), load(x, j + 28));
        }
        j += 32;
    }
    while j + 4 <= n {
        // Safety: j + 4 <= n.
        unsafe { a0 = madd(a0, load(row, j), load(x, j)) };
        j += 4;
    }
    let s = f32x4_add(f32x4_add(f32x4_add(a0, a1), f32x4_add(a2, a3)), f32x4_add(f32x4_add(a4, a5), f32x4_add(a6, a7)));
    let mut s = hsum(s);
    for k in j..n {
        s += row[k] * x[k];
    }
    s
}

/// Two rows per pass share each load of x (cache-resident matrices).
fn matmul_two_rows(xout: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    let n8 = n & !7;
    let mut rows = w.chunks_exact(n);
    let mut outs = xout.chunks_exact_mut(2);
    for out in &mut outs {
        let (Some(r0), Some(r1)) = (rows.next(), rows.next()) else { break };
        let z = f32x4_splat(0.0);
        let (mut a0, mut a1, mut b0, mut b1) = (z, z, z, z);
        let mut j = 0;
        while j < n8 {
            // Safety: j + 8 <= n8 <= n = x.len() = r0.len() = r1.len().
            unsafe {
                let (x0, x1) = (load(x, j), load(x, j + 4));
                a0 = madd(a0, load(r0, j), x0);
                a1 = madd(a1, load(r0, j + 4), x1);
                b0 = madd(b0, load(r1, j), x0);
                b1 = madd(b1, load(r1, j + 4), x1);
            }
            j += 8;
        }
        let (mut s0, mut s1) = (hsum(f32x4_add(a0, a1)), hsum(f32x4_add(b0, b1)));
        for k in n8..n {
            s0 += r0[k] * x[k];
            s1 += r1[k] * x[k];
        }
        out[0] = s0;
        out[1] = s1;
    }
    // an odd last row
    if let ([out], Some(row)) = (outs.into_remainder(), rows.next()) {
        *out = dot(row, x);
    }
}

/// a (n,) . b (n,)
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    let n = a.len();
    let n8 = n & !7;
    let (mut s0, mut s1) = (f32x4_splat(0.0), f32x4_splat(0.0));
    let mut j = 0;
    while j < n8 {
        // Safety: j + 8 <= n8 <= n = a.len() = b.len().
        unsafe {
            s0 = madd(s0, load(a, j), load(b, j));
            s1 = madd(s1, load(a, j + 4), load(b, j + 4));
        }
        j += 8;
    }
    if j + 4 <= n {
        // Safety: j + 4 <= n.
        unsafe { s0 = madd(s0, load(a, j), load(b, j)) };
        j += 4;
    }
    let mut s = hsum(f32x4_add(s0, s1));
    for k in j..n {
        s += a[k] * b[k];
    }
    s
}

/// Sums of four vectors at once: [Σm0, Σm1, Σm2, Σm3] (a 4x4 transpose + adds).
#[inline(always)]
fn hsum4(m0: v128, m1: v128, m2: v128, m3: v128) -> v128 {
    let u0 = f32x4_add(zip_lo32(m0, m1), zip_hi32(m0, m1));
    let u1 = f32x4_add(zip_lo32(m2, m3), zip_hi32(m2, m3));
    f32x4_add(lo64(u0, u1), hi64(u0, u1))
}

/// Attention scores of one head: att[t] = q . k_t / scale, where k_t is
/// `keys[t * stride..][..q.len()]` (the key cache of one kv head).
/// Four timesteps per pass, so one store writes four scores.
pub fn attention_scores(att: &mut [f32], q: &[f32], keys: &[f32], stride: usize, scale: f32) {
    let hs = q.len();
    let steps = att.len();
    if steps == 0 {
        return;
    }
    assert!((steps - 1) * stride + hs <= keys.len(), "attention_scores: keys too short");
    // the query held in registers for the common head sizes (stories260K
    // has 8, 15M and 42M have 48, 110M 64): the loop over timesteps is
    // then only key loads and arithmetic (measured: the generic loop spends
    // as much on its own bookkeeping as on the 8 products of a small head)
    match hs {
        8 => scores_fixed::<2>(att, q, keys, stride, scale),
        16 => scores_fixed::<4>(att, q, keys, stride, scale),
        32 => scores_fixed::<8>(att, q, keys, stride, scale),
        48 => scores_fixed::<12>(att, q, keys, stride, scale),
        64 => scores_fixed::<16>(att, q, keys, stride, scale),
        _ if hs % 4 == 0 => scores_any(att, q, keys, stride, scale),
        _ => super::scalar::attention_scores(att, q, keys, stride, scale),
    }
}

/// `attention_scores` for a head of 4 * V floats (the caller checked the bounds).
#[inline(always)]
fn scores_fixed<const V: usize>(att: &mut [f32], q: &[f32], keys: &[f32], stride: usize, scale: f32) {
    assert_eq!(q.len(), 4 * V);
    // Safety: 4 * k + 4 <= 4 * V = q.len().
    let qv: [v128; V] = core::array::from_fn(|k| unsafe { load(q, 4 * k) });
    let steps = att.len();
    let sv = f32x4_splat(scale);
    let mut t = 0;
    while t + 4 <= steps {
        let base = t * stride;
        let z = f32x4_splat(0.0);
        let (mut m0, mut m1, mut m2, mut m3) = (z, z, z, z);
        for (k, &qk) in qv.iter().enumerate() {
            let i = base + 4 * k;
            // Safety: the largest index read, base + 3 * stride + 4 * V - 1,
            // is below (steps - 1) * stride + hs <= keys.len() (checked by
            // the caller) since t + 3 <= steps - 1.
            unsafe {
                m0 = madd(m0, qk, load(keys, i));
                m1 = madd(m1, qk, load(keys, i + stride));
                m2 = madd(m2, qk, load(keys, i + 2 * stride));
                m3 = madd(m3, qk, load(keys, i + 3 * stride));
            }
        }
        // Safety: t + 4 <= steps = att.len().
        unsafe { store(att, t, f32x4_div(hsum4(m0, m1, m2, m3), sv)) };
        t += 4;
    }
    scores_from(t, att, q, keys, stride, scale);
}

/// The scores from timestep `t` on (fewer than four), one dot product each.
fn scores_from(t: usize, att: &mut [f32], q: &[f32], keys: &[f32], stride: usize, scale: f32) {
    for (tt, a) in att.iter_mut().enumerate().skip(t) {
        *a = dot(q, &keys[tt * stride..][..q.len()]) / scale;
    }
}

/// `attention_scores` for any head size that is a multiple of 4.
fn scores_any(att: &mut [f32], q: &[f32], keys: &[f32], stride: usize, scale: f32) {
    let hs = q.len();
    let steps = att.len();
    let sv = f32x4_splat(scale);
    let mut t = 0;
    while t + 4 <= steps {
        let z = f32x4_splat(0.0);
        let (mut m0, mut m1, mut m2, mut m3) = (z, z, z, z);
        let base = t * stride;
        let mut i = 0;
        while i < hs {
            // Safety: i + 4 <= hs = q.len(), and the largest key index,
            // base + 3 * stride + i + 3 < (steps - 1) * stride + hs <= keys.len().
            unsafe {
                let qv = load(q, i);
                m0 = madd(m0, qv, load(keys, base + i));
                m1 = madd(m1, qv, load(keys, base + stride + i));
                m2 = madd(m2, qv, load(keys, base + 2 * stride + i));
                m3 = madd(m3, qv, load(keys, base + 3 * stride + i));
            }
            i += 4;
        }
        // Safety: t + 4 <= steps = att.len().
        unsafe { store(att, t, f32x4_div(hsum4(m0, m1, m2, m3), sv)) };
        t += 4;
    }
    scores_from(t, att, q, keys, stride, scale);
}

/// Weighted sum of one head's values: out = Σ_t att[t] * v_t, where v_t is
/// `values[t * stride..][..out.len()]`. Eight output floats at a time stay in
/// registers over all timesteps.
pub fn attention_mix(out: &mut [f32], att: &[f32], values: &[f32], stride: usize) {
    let hs = out.len();
    let steps = att.len();
    out.fill(0.0);
    if steps == 0 {
        return;
    }
    assert!((steps - 1) * stride + hs <= values.len(), "attention_mix: values too short");
    if hs % 4 != 0 {
        return super::scalar::attention_mix(out, att, values, stride);
    }
    let mut i = 0;
    while i < hs {
        let two = i + 8 <= hs;
        let (mut a0, mut a1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for (t, &a) in att.iter().enumerate() {
            let av = f32x4_splat(a);
            let at = t * stride + i;
            // Safety: at + 4 (or + 8 when `two`) <= (steps - 1) * stride + hs <= values.len().
            unsafe {
                a0 = madd(a0, av, load(values, at));
                if two {
                    a1 = madd(a1, av, load(values, at + 4));
                }
            }
        }
        // Safety: i + 4 (or + 8 when `two`) <= hs = out.len().
        unsafe {
            store(out, i, a0);
            if two {
                store(out, i + 4, a1);
            }
        }
        i += if two { 8 } else { 4 };
    }
}

/// o = weight * x / sqrt(mean(x^2) + 1e-5)
pub fn rmsnorm(o: &mut [f32], x: &[f32], weight: &[f32]) {
    assert!(o.len() == x.len() && x.len() == weight.len(), "rmsnorm: lengths differ");
    let ss = 1.0 / (dot(x, x) / x.len() as f32 + 1e-5).sqrt();
    let n = x.len();
    let n4 = n & !3;
    let sv = f32x4_splat(ss);
    let mut j = 0;
    while j < n4 {
        // Safety: j + 4 <= n4 <= n, and all three slices have length n.
        unsafe { store(o, j, f32x4_mul(load(weight, j), f32x4_mul(sv, load(x, j)))) };
        j += 4;
    }
    for k in n4..n {
        o[k] = weight[k] * (ss * x[k]);
    }
}

/// e^x for four lanes: Cephes' expf (Cody-Waite range reduction to
/// [-ln2/2, ln2/2], a degree-6 polynomial, then 2^n into the exponent bits).
/// About 1 ulp from libm's expf; inputs are clamped to [-87.3, 88.3] so the
/// exponent arithmetic never leaves the normal range (e^-87.3 ≈ 1e-38 where
/// libm would give a denormal or 0: nothing a probability can tell apart).
///
/// Written for what V8 emits on x64 (measured: softmax was 20% of a
/// stories260K step): `pmin`/`pmax` are one instruction each where wasm's
/// NaN-propagating `min`/`max` are about eight, and n = round(x·log2 e) comes
/// from adding 1.5·2^23, which both rounds to nearest-even (as `nearest`
/// does) and leaves n in the low mantissa bits, instead of `nearest` plus a
/// saturating float-to-int conversion (another eight or so).
#[inline(always)]
fn exp4(x: v128) -> v128 {
    // pmax(x, lo) = x < lo ? lo : x, so a NaN stays NaN
    let x = f32x4_pmin(f32x4_pmax(x, f32x4_splat(-87.336_55)), f32x4_splat(88.376_26));
    // z = 1.5·2^23 + n exactly (|x·log2 e| <= 128 << 2^22): n = z - 1.5·2^23
    const ROUND: f32 = 12_582_912.0;
    let z = f32x4_add(f32x4_mul(x, f32x4_splat(core::f32::consts::LOG2_E)), f32x4_splat(ROUND));
    let n = f32x4_sub(z, f32x4_splat(ROUND));
    let r = f32x4_sub(x, f32x4_mul(n, f32x4_splat(0.693_359_4)));
    let r = f32x4_sub(r, f32x4_mul(n, f32x4_splat(-2.121_944_4e-4)));
    let mut p = f32x4_splat(1.987_569_1e-4);
    p = madd(f32x4_splat(1.398_2e-3), p, r);
    p = madd(f32x4_splat(8.333_452e-3), p, r);
    p = madd(f32x4_splat(4.166_579_6e-2), p, r);
    p = madd(f32x4_splat(1.666_666_5e-1), p, r);
    p = madd(f32x4_splat(5.000_000_1e-1), p, r);
    p = f32x4_add(madd(r, p, f32x4_mul(r, r)), f32x4_splat(1.0));
    // p * 2^n: add n to the exponent field. z's low 9 bits are n mod 2^9
    // (1.5·2^23's are zero), so z << 23 is n << 23 in two's complement.
    i32x4_add(p, i32x4_shl(z, 23))
}

/// In-place softmax, subtracting the max for numerical stability.
pub fn softmax(x: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let n4 = n & !3;
    let mut mv = f32x4_splat(x[0]);
    let mut j = 0;
    while j < n4 {
        // Safety: j + 4 <= n4 <= n = x.len().
        // pmax(mv, v) = mv < v ? v : mv: run.c's `if (x[i] > max_val)`, one instruction
        unsafe { mv = f32x4_pmax(mv, load(x, j)) };
        j += 4;
    }
    let mut max_val = hmax(mv);
    for &v in &x[n4..] {
        max_val = max_val.max(v);
    }
    let (maxv, mut sumv) = (f32x4_splat(max_val), f32x4_splat(0.0));
    let mut j = 0;
    while j < n4 {
        // Safety: j + 4 <= n4 <= n = x.len().
        unsafe {
            let e = exp4(f32x4_sub(load(x, j), maxv));
            store(x, j, e);
            sumv = f32x4_add(sumv, e);
        }
        j += 4;
    }
    let mut sum = hsum(sumv);
    if n4 < n {
        // the last n % 4 scores through the same polynomial, in a padded
        // vector (padding lanes hold max_val; their e^0 is not summed)
        let mut tail = [max_val; 4];
        tail[..n - n4].copy_from_slice(&x[n4..]);
        // Safety: tail has 4 floats.
        unsafe {
            let e = exp4(f32x4_sub(load(&tail, 0), maxv));
            store(&mut tail, 0, e);
        }
        for (v, e) in x[n4..].iter_mut().zip(tail) {
            *v = e;
            sum += e;
        }
    }
    let s = f32x4_splat(sum);
    let mut j = 0;
    while j < n4 {
        // Safety: j + 4 <= n4 <= n = x.len().
        unsafe { store(x, j, f32x4_div(load(x, j), s)) };
        j += 4;
    }
    for v in &mut x[n4..] {
        *v /= sum;
    }
}

/// SwiGLU: hb = silu(hb) * hb2, silu(x) = x * σ(x) = x / (1 + e^-x).
pub fn swiglu(hb: &mut [f32], hb2: &[f32]) {
    assert_eq!(hb.len(), hb2.len(), "swiglu: lengths differ");
    let n = hb.len();
    let n4 = n & !3;
    let one = f32x4_splat(1.0);
    let mut j = 0;
    while j < n4 {
        // Safety: j + 4 <= n4 <= n = hb.len() = hb2.len().
        unsafe {
            let v = load(hb, j);
            let sig = f32x4_div(one, f32x4_add(one, exp4(f32x4_neg(v))));
            store(hb, j, f32x4_mul(f32x4_mul(v, sig), load(hb2, j)));
        }
        j += 4;
    }
    if n4 < n {
        // the last n % 4 through the same polynomial (libm's expf would
        // differ between the browser and native), in padded vectors
        let (mut h, mut g) = ([0.0f32; 4], [0.0f32; 4]);
        h[..n - n4].copy_from_slice(&hb[n4..]);
        g[..n - n4].copy_from_slice(&hb2[n4..]);
        // Safety: h and g have 4 floats.
        unsafe {
            let v = load(&h, 0);
            let sig = f32x4_div(one, f32x4_add(one, exp4(f32x4_neg(v))));
            store(&mut h, 0, f32x4_mul(f32x4_mul(v, sig), load(&g, 0)));
        }
        hb[n4..].copy_from_slice(&h[..n - n4]);
    }
}

/// runq.c's quantize (no SIMD needed: once per input vector); re-exported.
pub use super::scalar::quantize;

/// Integer dot product of one group: Σ w[k] * x[k] over int8 values, exact
/// in i32 (so the result equals the scalar reference bit for bit).
///
/// 16 bytes at a time: i8 x i8 -> i16 products (low and high halves), the
/// two halves added as i16 (|x| <= 127 after `quantize`, so a pair sums to at
/// most 2 * 127 * 128 < 2^15), then widened pairwise into i32 lanes.
#[inline(always)]
fn dot_i8(w: &[i8], x: &[i8]) -> i32 {
    let (acc, k) = dot_i8_lanes(w, x);
    let n = w.len().min(x.len());
    let mut s = i32x4_extract_lane::<0>(acc)
        + i32x4_extract_lane::<1>(acc)
        + i32x4_extract_lane::<2>(acc)
        + i32x4_extract_lane::<3>(acc);
    for j in k..n {
        s += w[j] as i32 * x[j] as i32;
    }
    s
}

/// The products of `dot_i8` summed into four i32 lanes (not yet added
/// together), and how many leading values that covered (a multiple of 4).
#[inline(always)]
fn dot_i8_lanes(w: &[i8], x: &[i8]) -> (v128, usize) {
    let n = w.len().min(x.len());
    let mut acc = i32x4_splat(0);
    let mut k = 0;
    while k + 16 <= n {
        // Safety: k + 16 <= n <= w.len(), x.len(); unaligned loads are allowed.
        unsafe {
            let wv = v128_load(w.as_ptr().add(k) as *const v128);
            let xv = v128_load(x.as_ptr().add(k) as *const v128);
            let pairs = i16x8_add(i16x8_extmul_low_i8x16(wv, xv), i16x8_extmul_high_i8x16(wv, xv));
            acc = i32x4_add(acc, i32x4_extadd_pairwise_i16x8(pairs));
        }
        k += 16;
    }
    while k + 4 <= n {
        // Safety: k + 4 <= n; a 4-byte load into the low lane, the rest zero.
        unsafe {
            let wv = v128_load32_zero(w.as_ptr().add(k) as *const u32);
            let xv = v128_load32_zero(x.as_ptr().add(k) as *const u32);
            acc = i32x4_add(acc, i32x4_extadd_pairwise_i16x8(i16x8_extmul_low_i8x16(wv, xv)));
        }
        k += 4;
    }
    (acc, k)
}

/// The products of int8 weights `w` and i16-widened activations `x`, summed
/// into four i32 lanes; `w.len()` is a multiple of 16. Exact: each lane adds
/// pairs of products of at most 128 * 127.
#[inline(always)]
fn dot_i8_i16(w: &[i8], x: &[i16]) -> v128 {
    assert!(w.len() == x.len() && w.len() % 16 == 0, "dot_i8_i16: lengths");
    let mut acc = i32x4_splat(0);
    let mut k = 0;
    while k < w.len() {
        // Safety: k + 16 <= w.len() = x.len(); unaligned loads are allowed.
        unsafe {
            let wv = v128_load(w.as_ptr().add(k) as *const v128);
            let x0 = v128_load(x.as_ptr().add(k) as *const v128);
            let x1 = v128_load(x.as_ptr().add(k + 8) as *const v128);
            acc = i32x4_add(acc, i32x4_dot_i16x8(i16x8_extend_low_i8x16(wv), x0));
            acc = i32x4_add(acc, i32x4_dot_i16x8(i16x8_extend_high_i8x16(wv), x1));
        }
        k += 16;
    }
    acc
}

/// runq.c's quantized matmul: W (d, n) @ x (n,) -> xout (d,), int8 in groups
/// of `gs` with one scale each. The integer part is exact, and the float
/// part runs in runq.c's order, so this equals the scalar reference exactly.
///
/// On x86-64 CPUs with AVX2 (checked once per call, cached by std) the
/// integer dot products of groups of 16+ run 16 weights per instruction
/// instead of 8: integer sums are exact in any grouping, so the bits are
/// the same as SSE2's and the browser's (the logits digests check it).
pub fn matmul_q8(xout: &mut [f32], xq: &[i8], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // Safety: the CPU has AVX2 (just checked).
        return unsafe { matmul_q8_avx2(xout, xq, xs, wq, ws, gs) };
    }
    matmul_q8_with(xout, xq, xs, wq, ws, gs, dot_i8_i16)
}

/// `matmul_q8` on the 4-lane layer alone (SSE2 natively): for tests, which
/// compare it with the AVX2 path and the scalar reference.
pub fn matmul_q8_baseline(xout: &mut [f32], xq: &[i8], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
    matmul_q8_with(xout, xq, xs, wq, ws, gs, dot_i8_i16)
}

/// `matmul_q8` compiled for AVX2, with its 256-bit integer dot product.
///
/// Safety: the caller checked that the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn matmul_q8_avx2(xout: &mut [f32], xq: &[i8], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
    matmul_q8_with(xout, xq, xs, wq, ws, gs, |w, x| {
        // Safety: this function only runs where AVX2 is available.
        unsafe { dot_i8_i16_avx2(w, x) }
    })
}

/// `dot_i8_i16` sixteen weights at a time: sign-extend 16 int8 weights to
/// i16 (`vpmovsxbw`), multiply-add pairs with the widened activations
/// (`vpmaddwd`, exact as in `dot_i8_i16`), then fold the eight i32 lanes to
/// four (lane i + lane i + 4; the group's total is the same integer).
///
/// Safety: the CPU has AVX2; `w.len() == x.len()`, a multiple of 16 (asserted).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot_i8_i16_avx2(w: &[i8], x: &[i16]) -> v128 {
    use core::arch::x86_64::*;
    assert!(w.len() == x.len() && w.len() % 16 == 0, "dot_i8_i16: lengths");
    let mut acc = _mm256_setzero_si256();
    let mut k = 0;
    while k < w.len() {
        // Safety: k + 16 <= w.len() = x.len(): 16 bytes of w, 32 bytes of x; unaligned loads.
        let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.as_ptr().add(k) as *const __m128i));
        let xv = _mm256_loadu_si256(x.as_ptr().add(k) as *const __m256i);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(wv, xv));
        k += 16;
    }
    let four = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc));
    v128::from_sse(four)
}

#[inline(always)]
fn matmul_q8_with(
    xout: &mut [f32],
    xq: &[i8],
    xs: &[f32],
    wq: &[i8],
    ws: &[f32],
    gs: usize,
    dot_wide: impl Fn(&[i8], &[i16]) -> v128,
) {
    let n = xq.len();
    assert!(
        wq.len() == xout.len() * n && ws.len() * gs == wq.len() && xs.len() * gs == n,
        "matmul_q8: shapes differ"
    );
    let groups = n / gs;
    // four groups per pass when the vector part covers whole groups: their
    // integer sums land in one i32x4 (a 4x4 transpose-add), are scaled four
    // at a time, then added to `val` one by one, in runq.c's order
    let batch = if gs % 4 == 0 { groups & !3 } else { 0 };
    // groups of 16 or more (real models use 64): x widened to i16 once for
    // all rows, so each row needs one sign extension per weight and
    // i32x4.dot_i16x8_s (one x64 pmaddwd) instead of two i8 extmuls
    let wide = batch > 0 && gs % 16 == 0;
    let x16: Vec<i16> = if wide { xq.iter().map(|&v| v as i16).collect() } else { Vec::new() };
    let lanes = |w: &[i8], at: usize| {
        if wide {
            dot_wide(&w[at..][..gs], &x16[at..][..gs])
        } else {
            dot_i8_lanes(&w[at..][..gs], &xq[at..][..gs]).0
        }
    };
    for ((out, wrow), wsrow) in xout.iter_mut().zip(wq.chunks_exact(n)).zip(ws.chunks_exact(groups)) {
        let mut val = 0.0f32;
        let mut g = 0;
        while g < batch {
            let at = g * gs;
            let (a0, a1, a2, a3) = (lanes(wrow, at), lanes(wrow, at + gs), lanes(wrow, at + 2 * gs), lanes(wrow, at + 3 * gs));
            let ivals = f32x4_convert_i32x4(hsum4_i32(a0, a1, a2, a3)); // exact: |ival| < 2^24
            // Safety: g + 4 <= batch <= groups = wsrow.len() = xs.len().
            let p = unsafe { f32x4_mul(f32x4_mul(ivals, load(wsrow, g)), load(xs, g)) };
            val += f32x4_extract_lane::<0>(p);
            val += f32x4_extract_lane::<1>(p);
            val += f32x4_extract_lane::<2>(p);
            val += f32x4_extract_lane::<3>(p);
            g += 4;
        }
        for g in g..groups {
            let at = g * gs;
            val += dot_i8(&wrow[at..][..gs], &xq[at..][..gs]) as f32 * wsrow[g] * xs[g];
        }
        *out = val;
    }
}

/// [Σm0, Σm1, Σm2, Σm3] of four i32x4 vectors.
#[inline(always)]
fn hsum4_i32(m0: v128, m1: v128, m2: v128, m3: v128) -> v128 {
    let u0 = i32x4_add(zip_lo32(m0, m1), zip_hi32(m0, m1));
    let u1 = i32x4_add(zip_lo32(m2, m3), zip_hi32(m2, m3));
    i32x4_add(lo64(u0, u1), hi64(u0, u1))
}
