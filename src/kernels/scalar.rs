//! Scalar reference kernels: run.c's loops, summing in run.c's order, so the
//! native build reproduces run.c's floats.

/// W (d, n) @ x (n,) -> xout (d,), with d = `xout.len()`, n = `x.len()`.
pub fn matmul(xout: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    assert_eq!(w.len(), xout.len() * n, "matmul: W must be (d, n)");
    for (out, row) in xout.iter_mut().zip(w.chunks_exact(n)) {
        let mut val = 0.0f32;
        for (wi, xi) in row.iter().zip(x) {
            val += wi * xi;
        }
        *out = val;
    }
}

/// `matmul` over some rows of a larger matrix (`whole` floats). The scalar
/// kernel is the same for any size; the SIMD one chooses by `whole`.
pub fn matmul_rows(xout: &mut [f32], x: &[f32], w: &[f32], _whole: usize) {
    matmul(xout, x, w)
}

/// a (n,) . b (n,)
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// y (n,) += a * x (n,)
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len(), "axpy: lengths differ");
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Attention scores of one head, as run.c: att[t] = (q . k_t) / scale, where
/// k_t is `keys[t * stride..][..q.len()]` (the key cache of one kv head).
pub fn attention_scores(att: &mut [f32], q: &[f32], keys: &[f32], stride: usize, scale: f32) {
    let hs = q.len();
    for (t, a) in att.iter_mut().enumerate() {
        *a = dot(q, &keys[t * stride..][..hs]) / scale;
    }
}

/// Weighted sum of one head's values, as run.c: out = Σ_t att[t] * v_t, where
/// v_t is `values[t * stride..][..out.len()]`.
pub fn attention_mix(out: &mut [f32], att: &[f32], values: &[f32], stride: usize) {
    let hs = out.len();
    out.fill(0.0);
    for (t, &a) in att.iter().enumerate() {
        axpy(out, a, &values[t * stride..][..hs]);
    }
}

/// o = weight * x / sqrt(mean(x^2) + 1e-5); `o` may not alias `x` in Rust,
/// so callers that normalise in place copy first.
pub fn rmsnorm(o: &mut [f32], x: &[f32], weight: &[f32]) {
    assert!(o.len() == x.len() && x.len() == weight.len(), "rmsnorm: lengths differ");
    let mut ss = 0.0f32;
    for xi in x {
        ss += xi * xi;
    }
    ss /= x.len() as f32;
    ss += 1e-5;
    let ss = 1.0 / ss.sqrt();
    for ((oi, wi), xi) in o.iter_mut().zip(weight).zip(x) {
        *oi = wi * (ss * xi);
    }
}

/// In-place softmax, subtracting the max for numerical stability.
pub fn softmax(x: &mut [f32]) {
    let Some(&first) = x.first() else { return };
    let max_val = x.iter().fold(first, |m, &v| if v > m { v } else { m });
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - max_val).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// SwiGLU: hb = silu(hb) * hb2, silu(x) = x * σ(x), σ the logistic sigmoid.
pub fn swiglu(hb: &mut [f32], hb2: &[f32]) {
    assert_eq!(hb.len(), hb2.len(), "swiglu: lengths differ");
    for (h, g) in hb.iter_mut().zip(hb2) {
        let val = *h;
        *h = val * (1.0 / (1.0 + (-val).exp())) * g;
    }
}

/// runq.c's `quantize`: x (n,) -> int8 values `q` and one scale per group of
/// `gs`: scale = max|x| / 127, q = round(x / scale) (half away from zero).
pub fn quantize(q: &mut [i8], s: &mut [f32], x: &[f32], gs: usize) {
    assert!(q.len() == x.len() && s.len() * gs == x.len(), "quantize: lengths differ");
    for ((qg, sg), xg) in q.chunks_exact_mut(gs).zip(s.iter_mut()).zip(x.chunks_exact(gs)) {
        let wmax = xg.iter().fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let scale = wmax / 127.0;
        *sg = scale;
        for (qi, xi) in qg.iter_mut().zip(xg) {
            // an all-zero group divides 0 by 0: NaN becomes 0, as in C on x86
            *qi = (xi / scale).round() as i8;
        }
    }
}

/// runq.c's quantized matmul: W (d, n) @ x (n,) -> xout (d,), both int8 in
/// groups of `gs` with one f32 scale per group. Integer dot product per
/// group, then `val += ival * w_scale * x_scale` in float.
pub fn matmul_q8(xout: &mut [f32], xq: &[i8], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
    let n = xq.len();
    assert!(wq.len() == xout.len() * n && ws.len() * gs == wq.len() && xs.len() * gs == n, "matmul_q8: shapes differ");
    for ((out, wrow), wsrow) in xout.iter_mut().zip(wq.chunks_exact(n)).zip(ws.chunks_exact(n / gs)) {
        let mut val = 0.0f32;
        for (((wg, xg), w_scale), x_scale) in wrow.chunks_exact(gs).zip(xq.chunks_exact(gs)).zip(wsrow).zip(xs) {
            let ival: i32 = wg.iter().zip(xg).map(|(&w, &x)| w as i32 * x as i32).sum();
            val += ival as f32 * w_scale * x_scale;
        }
        *out = val;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_by_hand() {
        // W = [[1, 2, 3], [4, 5, 6]], x = [1, 0, -1] -> [1 - 3, 4 - 6]
        let mut out = [0.0; 2];
        matmul(&mut out, &[1.0, 0.0, -1.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(out, [-2.0, -2.0]);
    }

    #[test]
    fn rmsnorm_by_hand() {
        // x = [3, 4]: mean square 12.5, so o = w * x / sqrt(12.50001)
        let mut o = [0.0; 2];
        rmsnorm(&mut o, &[3.0, 4.0], &[1.0, 2.0]);
        let r = 1.0 / (12.5f32 + 1e-5).sqrt();
        assert_eq!(o, [3.0 * r, 2.0 * (4.0 * r)]);
    }

    #[test]
    fn softmax_by_hand() {
        let mut x = [0.0, 2.0f32.ln()]; // e^0 : e^ln2 = 1 : 2
        softmax(&mut x);
        assert!((x[0] - 1.0 / 3.0).abs() < 1e-6 && (x[1] - 2.0 / 3.0).abs() < 1e-6);
        let mut big = [1000.0, 1000.0];
        softmax(&mut big);
        assert_eq!(big, [0.5, 0.5]);
    }

    #[test]
    fn quantize_and_matmul_q8_by_hand() {
        // one group of 4: max |x| = 2.54 -> scale 0.02, q = round(x / 0.02)
        let x = [2.54f32, -1.0, 0.01, 0.0];
        let (mut q, mut s) = ([0i8; 4], [0f32; 1]);
        quantize(&mut q, &mut s, &x, 4);
        assert_eq!(s[0], 2.54 / 127.0);
        assert_eq!(q, [127, -50, 1, 0]); // 0.01 / 0.02 = 0.5 rounds away from zero
        // W = [[1, 2, 3, 4], [-1, 0, 0, 1]] with scale 0.5: ival = 127 - 100 + 3, 0 - 127 + 0
        let mut out = [0f32; 2];
        matmul_q8(&mut out, &q, &s, &[1, 2, 3, 4, -1, 0, 0, 1], &[0.5, 0.5], 4);
        assert_eq!(out, [30.0 * 0.5 * s[0], -127.0 * 0.5 * s[0]]);
        // an all-zero group: scale 0, values 0 (no NaN into the int8s)
        quantize(&mut q, &mut s, &[0.0; 4], 4);
        assert_eq!((q, s[0]), ([0; 4], 0.0));
    }

    #[test]
    fn dot_and_axpy_by_hand() {
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
        let mut y = [1.0, 1.0];
        axpy(&mut y, 2.0, &[3.0, -1.0]);
        assert_eq!(y, [7.0, -1.0]);
    }
}
