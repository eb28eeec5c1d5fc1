//! The SIMD kernels against the scalar reference, natively (SSE2) and in the
//! browser (SIMD128): the same test file, run by `cargo test` and by
//! `wasm-pack test --headless --chrome`.
#![cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]

use llama2_wasm::kernels::{scalar, simd};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Pseudo-random test vectors (xorshift, no dependency).
fn vector(n: usize, seed: &mut u64) -> Vec<f32> {
    (0..n).map(|_| llama2_wasm::sampler::random_f32(seed) * 2.0 - 1.0).collect()
}

/// Equal up to rounding: 1e-5 relative, plus 1e-5 absolute (sums of
/// products of ±1 values of length up to 768 lose a few ulps when reordered).
fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{what}[{i}]: simd {x} vs scalar {y}");
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn simd_kernels_agree_with_scalar() {
    let mut s = 7u64;
    // sizes with and without tails (not multiples of 4, 8, or of the row block)
    for &(d, n) in &[(1, 1), (3, 5), (4, 4), (7, 9), (64, 64), (172, 64), (64, 172), (33, 288), (768, 288)] {
        let w = vector(d * n, &mut s);
        let x = vector(n, &mut s);
        let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
        simd::matmul(&mut a, &x, &w);
        scalar::matmul(&mut b, &x, &w);
        assert_close(&a, &b, &format!("matmul {d}x{n}"));

        let y = vector(n, &mut s);
        assert_close(&[simd::dot(&x, &y)], &[scalar::dot(&x, &y)], "dot");


        let (mut oa, mut ob) = (vec![0.0; n], vec![0.0; n]);
        simd::rmsnorm(&mut oa, &x, &y);
        scalar::rmsnorm(&mut ob, &x, &y);
        assert_close(&oa, &ob, "rmsnorm");

        // softmax over logits-like values, including large spreads, and
        // spreads past exp's clamp at -87.3 (e^-300 is 0 in libm)
        for scale in [40.0, 150.0] {
            let logits: Vec<f32> = x.iter().map(|v| v * scale).collect();
            let (mut pa, mut pb) = (logits.clone(), logits.clone());
            simd::softmax(&mut pa);
            scalar::softmax(&mut pb);
            assert_close(&pa, &pb, &format!("softmax, spread {scale}"));
        }

        let h: Vec<f32> = x.iter().map(|v| v * 12.0).collect();
        let (mut ha, mut hb) = (h.clone(), h.clone());
        simd::swiglu(&mut ha, &y);
        scalar::swiglu(&mut hb, &y);
        assert_close(&ha, &hb, "swiglu");
    }
    // attention over a strided KV cache: head sizes with a fixed-size kernel
    // (8, 16, 32, 48, 64), the any-multiple-of-4 loop (12) and the scalar fallback (6)
    for &(hs, steps, stride) in
        &[(8usize, 13usize, 32usize), (16, 3, 16), (32, 4, 64), (48, 37, 288), (64, 9, 64), (12, 7, 24), (6, 5, 12)]
    {
        let q = vector(hs, &mut s);
        let cache = vector((steps - 1) * stride + hs, &mut s);
        let (mut a, mut b) = (vec![0.0; steps], vec![0.0; steps]);
        simd::attention_scores(&mut a, &q, &cache, stride, (hs as f32).sqrt());
        scalar::attention_scores(&mut b, &q, &cache, stride, (hs as f32).sqrt());
        assert_close(&a, &b, &format!("attention_scores hs={hs}"));
        let (mut oa, mut ob) = (vec![1.0; hs], vec![2.0; hs]);
        simd::attention_mix(&mut oa, &b, &cache, stride);
        scalar::attention_mix(&mut ob, &b, &cache, stride);
        assert_close(&oa, &ob, &format!("attention_mix hs={hs}"));
    }
    // the big-matrix (streaming) path of matmul: 32000 x 288, as a classifier
    let (d, n) = (32000, 288);
    let w = vector(d * n, &mut s);
    let x = vector(n, &mut s);
    let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
    simd::matmul(&mut a, &x, &w);
    scalar::matmul(&mut b, &x, &w);
    assert_close(&a, &b, "matmul 32000x288");
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn simd_int8_kernel_equals_scalar_exactly() {
    let mut s = 11u64;
    for &(d, n, gs) in &[(3usize, 8usize, 4usize), (5, 64, 64), (17, 172, 4), (9, 288, 32), (33, 768, 64), (4, 48, 16), (2, 24, 8), (3, 1376, 32)] {
        let w = vector(d * n, &mut s);
        let x = vector(n, &mut s);
        let (wq, ws) = llama2_wasm::checkpoint::quantize_q80(&w, gs).unwrap();
        let (mut xq, mut xs) = (vec![0i8; n], vec![0f32; n / gs]);
        scalar::quantize(&mut xq, &mut xs, &x, gs);
        let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
        simd::matmul_q8(&mut a, &xq, &xs, &wq, &ws, gs);
        scalar::matmul_q8(&mut b, &xq, &xs, &wq, &ws, gs);
        assert_eq!(a, b, "matmul_q8 {d}x{n} gs {gs}");
        // natively on an AVX2 CPU matmul_q8 takes the 256-bit path: the
        // 4-lane one (the browser's arithmetic) must give the same bits
        simd::matmul_q8_baseline(&mut a, &xq, &xs, &wq, &ws, gs);
        assert_eq!(a, b, "matmul_q8 (4-lane path) {d}x{n} gs {gs}");
    }
    // the extremes: a file's weights may hold -128 (export.py never writes
    // it), activations are within ±127: no i16 or i32 lane may overflow
    for gs in [4usize, 16, 64] {
        let (d, n) = (3, 256);
        let wq: Vec<i8> = (0..d * n).map(|i| if i % 3 == 0 { 127 } else { -128 }).collect();
        let xq: Vec<i8> = (0..n).map(|i| if i % 2 == 0 { -127 } else { 127 }).collect();
        let (ws, xs) = (vec![1.0f32; d * n / gs], vec![1.0f32; n / gs]);
        let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
        simd::matmul_q8(&mut a, &xq, &xs, &wq, &ws, gs);
        scalar::matmul_q8(&mut b, &xq, &xs, &wq, &ws, gs);
        assert_eq!(a, b, "extremes, gs {gs}");
        let all_min = vec![-128i8; d * n];
        let x_min = vec![-127i8; n];
        simd::matmul_q8(&mut a, &x_min, &xs, &all_min, &ws, gs);
        assert_eq!(a, vec![(128 * 127 * n) as f32; d], "all -128 x -127, gs {gs}");
    }
}

