//! wasm SIMD128 kernels: the same functions as `scalar`, four lanes at a time.
//!
//! Sums are split over several f32x4 accumulators, so results differ from the
//! scalar reference by rounding only (tests compare them within a tolerance).

use core::arch::wasm32::*;

/// Load 4 f32s from `s[i..i + 4]`.
///
/// Safety: the caller guarantees `i + 4 <= s.len()`. wasm loads need no alignment.
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

/// W (d, n) @ x (n,) -> xout (d,). Four rows per pass share each load of x.
pub fn matmul(xout: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    let d = xout.len();
    assert_eq!(w.len(), d * n, "matmul: W must be (d, n)");
    let n4 = n & !3;
    let mut i = 0;
    while i + 4 <= d {
        let (r0, r1, r2, r3) = (i * n, (i + 1) * n, (i + 2) * n, (i + 3) * n);
        let (mut a0, mut a1, mut a2, mut a3) =
            (f32x4_splat(0.0), f32x4_splat(0.0), f32x4_splat(0.0), f32x4_splat(0.0));
        let mut j = 0;
        while j < n4 {
            // Safety: j + 4 <= n4 <= n, and row r3 + n <= d * n = w.len().
            unsafe {
                let xv = load(x, j);
                a0 = f32x4_add(a0, f32x4_mul(load(w, r0 + j), xv));
                a1 = f32x4_add(a1, f32x4_mul(load(w, r1 + j), xv));
                a2 = f32x4_add(a2, f32x4_mul(load(w, r2 + j), xv));
                a3 = f32x4_add(a3, f32x4_mul(load(w, r3 + j), xv));
            }
            j += 4;
        }
        let mut s = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
        for j in n4..n {
            s[0] += w[r0 + j] * x[j];
            s[1] += w[r1 + j] * x[j];
            s[2] += w[r2 + j] * x[j];
            s[3] += w[r3 + j] * x[j];
        }
        xout[i..i + 4].copy_from_slice(&s);
        i += 4;
    }
    while i < d {
        xout[i] = dot(&w[i * n..(i + 1) * n], x);
        i += 1;
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
            s0 = f32x4_add(s0, f32x4_mul(load(a, j), load(b, j)));
            s1 = f32x4_add(s1, f32x4_mul(load(a, j + 4), load(b, j + 4)));
        }
        j += 8;
    }
    let mut s = hsum(f32x4_add(s0, s1));
    for j in n8..n {
        s += a[j] * b[j];
    }
    s
}

/// y (n,) += a * x (n,)
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len(), "axpy: lengths differ");
    let n = y.len();
    let n4 = n & !3;
    let av = f32x4_splat(a);
    let mut j = 0;
    while j < n4 {
        // Safety: j + 4 <= n4 <= n = y.len() = x.len().
        unsafe {
            let v = f32x4_add(load(y, j), f32x4_mul(av, load(x, j)));
            store(y, j, v);
        }
        j += 4;
    }
    for j in n4..n {
        y[j] += a * x[j];
    }
}

/// o = weight * x / sqrt(mean(x^2) + 1e-5)
pub fn rmsnorm(o: &mut [f32], x: &[f32], weight: &[f32]) {
    assert!(o.len() == x.len() && x.len() == weight.len(), "rmsnorm: lengths differ");
    let mut ss = dot(x, x);
    ss /= x.len() as f32;
    ss += 1e-5;
    let ss = 1.0 / ss.sqrt();
    let n = x.len();
    let n4 = n & !3;
    let sv = f32x4_splat(ss);
    let mut j = 0;
    while j < n4 {
        // Safety: j + 4 <= n4 <= n, and all three slices have length n.
        unsafe {
            let v = f32x4_mul(load(weight, j), f32x4_mul(sv, load(x, j)));
            store(o, j, v);
        }
        j += 4;
    }
    for j in n4..n {
        o[j] = weight[j] * (ss * x[j]);
    }
}
