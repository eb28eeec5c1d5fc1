//! The kernels in the browser: the scalar reference selectable at run time,
//! and SIMD128 computing the native SSE2 kernels' bits.
use wasm_bindgen_test::*;

use crate::both;
use crate::support::*;

/// The scalar reference selected at run time (`model.kernels = "scalar"`)
/// gives run.c's tokens on every fp32 golden case too; a wrong name is an error.
#[wasm_bindgen_test]
fn scalar_kernels_are_selectable_and_match_run_c() {
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    assert_eq!(model.kernels(), "simd128");
    let msg = message(model.set_kernels_with("avx512").unwrap_err());
    assert!(msg.contains("unknown kernels") && msg.contains("simd or scalar"), "{msg}");
    model.set_kernels_with("scalar").unwrap();
    assert_eq!(model.kernels(), "scalar");
    assert_eq!(get(&model.config().unwrap(), "kernels").as_string().as_deref(), Some("scalar"));
    let mut n = 0;
    for c in generate_cases().iter().filter(|c| c.model == "stories260K.bin") {
        assert_reproduces(&mut model, c, "scalar tokens");
        n += 1;
    }
    assert!(n >= 6, "only {n} golden cases ran");
}

/// The browser's SIMD128 kernels compute the very bits the native SSE2
/// kernels recorded in tests/both/logits.txt (stories260K fp32, Q8_0 file and
/// quantize-on-load, a sampled run, a random 15M-shaped model fp32 and int8).
#[wasm_bindgen_test]
fn simd128_logits_equal_the_native_digests() {
    let got = both::digests(&|name| model_file(name).to_vec());
    let bad = both::mismatches(&got);
    assert!(bad.is_empty(), "browser logits differ from the native ones:\n{}", bad.join("\n"));
}
