//! Browser tests: the `Model` class as JavaScript sees it, running the
//! SIMD128 kernels, against run.c's golden outputs.
//! Run with `wasm-pack test --headless --chrome` (after ./build.sh copied the
//! reference files into www/models and tests/golden).
#![cfg(target_arch = "wasm32")]

use js_sys::Uint8Array;
use llama2_wasm::kernels::scalar;
use llama2_wasm::wasm::{Model, ModelLoader};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const STORIES260K: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/stories260K.bin"));
const STORIES260K_V1: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/stories260K_v1.bin"));
const STORIES260K_Q80: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/stories260K_q80.bin"));
const TOK512: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/tok512.bin"));
const GOLDEN: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/runc_parity.jsonl"));

fn js(bytes: &[u8]) -> Uint8Array {
    Uint8Array::from(bytes)
}

fn model_file(name: &str) -> &'static [u8] {
    match name {
        "stories260K.bin" => STORIES260K,
        "stories260K_v1.bin" => STORIES260K_V1,
        "stories260K_q80.bin" => STORIES260K_Q80,
        "tok512.bin" => TOK512,
        other => panic!("no embedded file {other}"),
    }
}

/// The message of the JS Error a call threw.
fn message(e: wasm_bindgen::JsError) -> String {
    let v: JsValue = e.into();
    v.dyn_into::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_default()
}

/// Run one golden generation case through `start` and `step`; the text.
fn run_case(model: &mut Model, c: &serde_json::Value) -> String {
    let arg = |k: &str| c[k].as_f64().unwrap();
    model.start(c["prompt"].as_str().unwrap(), arg("temperature"), arg("topp"), arg("seed"), arg("steps")).unwrap();
    let mut text = String::new();
    while let Some(piece) = model.step().unwrap() {
        text.push_str(&piece);
    }
    text
}

#[wasm_bindgen_test]
fn generation_matches_run_c_through_the_model_class() {
    let mut n = 0;
    for line in GOLDEN.lines().filter(|l| !l.trim().is_empty()) {
        let c: serde_json::Value = serde_json::from_str(line).unwrap();
        let model_name = c["model"].as_str().unwrap_or("");
        if c["kind"] != "generate" || model_name.contains("_q80") {
            continue;
        }
        let mut model = Model::new(&js(model_file(model_name)), &js(model_file(c["tokenizer"].as_str().unwrap())), None).unwrap();
        let text = run_case(&mut model, &c);
        let want: Vec<u32> = c["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
        assert_eq!(model.tokens(), want, "tokens differ for {line}");
        assert_eq!(text, c["stdout"].as_str().unwrap());
        n += 1;
    }
    assert!(n >= 8, "only {n} golden cases ran");
}

#[wasm_bindgen_test]
fn config_reports_the_header() {
    let model = Model::new(&js(STORIES260K_V1), &js(TOK512), None).unwrap();
    let cfg = model.config().unwrap();
    let get = |k: &str| js_sys::Reflect::get(&cfg, &JsValue::from_str(k)).unwrap();
    assert_eq!(get("dim").as_f64(), Some(64.0));
    assert_eq!(get("n_kv_heads").as_f64(), Some(4.0));
    assert_eq!(get("vocab_size").as_f64(), Some(512.0));
    assert_eq!(get("version").as_f64(), Some(1.0));
    assert_eq!(get("shared_classifier").as_bool(), Some(true));
    assert_eq!(get("kernels").as_string().as_deref(), Some("simd128"));
}

#[wasm_bindgen_test]
fn bad_inputs_throw_readable_errors() {
    let truncated = &STORIES260K[..STORIES260K.len() - 1];
    let msg = message(Model::new(&js(truncated), &js(TOK512), None).err().unwrap());
    assert!(msg.contains("1,056,539") && msg.contains("1,056,540"), "{msg}");
    let msg = message(Model::new(&js(&[]), &js(TOK512), None).err().unwrap());
    assert!(msg.contains("too short"), "{msg}");
    let msg = message(Model::new(&js(STORIES260K), &js(&TOK512[..101]), None).err().unwrap());
    assert!(msg.contains("truncated"), "{msg}");

    let mut model = Model::new(&js(STORIES260K), &js(TOK512), None).unwrap();
    let msg = message(model.step().err().unwrap());
    assert!(msg.contains("start"), "{msg}");
    let msg = message(model.start("", 1.0, 0.9, f64::NAN, 10.0).err().unwrap());
    assert!(msg.contains("seed"), "{msg}");
    let msg = message(model.start("", f64::NAN, 0.9, 1.0, 10.0).err().unwrap());
    assert!(msg.contains("temperature"), "{msg}");
    // the model still works after the errors
    model.start("Once", 0.0, 0.9, 1.0, 5.0).unwrap();
    let mut steps = 0;
    while model.step().unwrap().is_some() {
        steps += 1;
    }
    // steps = 5 forward passes: BOS plus five tokens
    assert_eq!(steps, 5);
    assert_eq!(model.tokens().len(), 6);
}

#[wasm_bindgen_test]
fn seed_zero_draws_a_random_seed_and_reports_it() {
    let mut model = Model::new(&js(STORIES260K), &js(TOK512), None).unwrap();
    model.start("", 1.0, 0.9, 0.0, 20.0).unwrap();
    let seed = model.seed();
    assert!(seed >= 1.0 && seed <= 9_007_199_254_740_991.0);
    while model.step().unwrap().is_some() {}
    let first = model.tokens();
    // the reported seed reproduces the run
    model.start("", 1.0, 0.9, seed, 20.0).unwrap();
    while model.step().unwrap().is_some() {}
    assert_eq!(model.tokens(), first);
}

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

#[wasm_bindgen_test]
fn simd_kernels_agree_with_scalar() {
    use llama2_wasm::kernels::simd128;
    let mut s = 7u64;
    // sizes with and without tails (not multiples of 4, 8, or of the row block)
    for &(d, n) in &[(1, 1), (3, 5), (4, 4), (7, 9), (64, 64), (172, 64), (64, 172), (33, 288), (768, 288)] {
        let w = vector(d * n, &mut s);
        let x = vector(n, &mut s);
        let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
        simd128::matmul(&mut a, &x, &w);
        scalar::matmul(&mut b, &x, &w);
        assert_close(&a, &b, &format!("matmul {d}x{n}"));

        let y = vector(n, &mut s);
        assert_close(&[simd128::dot(&x, &y)], &[scalar::dot(&x, &y)], "dot");


        let (mut oa, mut ob) = (vec![0.0; n], vec![0.0; n]);
        simd128::rmsnorm(&mut oa, &x, &y);
        scalar::rmsnorm(&mut ob, &x, &y);
        assert_close(&oa, &ob, "rmsnorm");

        // softmax over logits-like values, including large spreads, and
        // spreads past exp's clamp at -87.3 (e^-300 is 0 in libm)
        for scale in [40.0, 150.0] {
            let logits: Vec<f32> = x.iter().map(|v| v * scale).collect();
            let (mut pa, mut pb) = (logits.clone(), logits.clone());
            simd128::softmax(&mut pa);
            scalar::softmax(&mut pb);
            assert_close(&pa, &pb, &format!("softmax, spread {scale}"));
        }

        let h: Vec<f32> = x.iter().map(|v| v * 12.0).collect();
        let (mut ha, mut hb) = (h.clone(), h.clone());
        simd128::swiglu(&mut ha, &y);
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
        simd128::attention_scores(&mut a, &q, &cache, stride, (hs as f32).sqrt());
        scalar::attention_scores(&mut b, &q, &cache, stride, (hs as f32).sqrt());
        assert_close(&a, &b, &format!("attention_scores hs={hs}"));
        let (mut oa, mut ob) = (vec![1.0; hs], vec![2.0; hs]);
        simd128::attention_mix(&mut oa, &b, &cache, stride);
        scalar::attention_mix(&mut ob, &b, &cache, stride);
        assert_close(&oa, &ob, &format!("attention_mix hs={hs}"));
    }
    // the big-matrix (streaming) path of matmul: 32000 x 288, as a classifier
    let (d, n) = (32000, 288);
    let w = vector(d * n, &mut s);
    let x = vector(n, &mut s);
    let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
    simd128::matmul(&mut a, &x, &w);
    scalar::matmul(&mut b, &x, &w);
    assert_close(&a, &b, "matmul 32000x288");
}

#[wasm_bindgen_test]
fn model_loader_streams_chunks_into_the_same_model() {
    let mut loader = ModelLoader::new(&STORIES260K[..256], STORIES260K.len() as f64, None).unwrap();
    for chunk in STORIES260K.chunks(65_537) {
        loader.push(chunk).unwrap();
    }
    let mut streamed = loader.finish(&js(TOK512)).unwrap();
    assert!(message(loader.finish(&js(TOK512)).err().unwrap()).contains("already finished"));
    let mut whole = Model::new(&js(STORIES260K), &js(TOK512), None).unwrap();
    for m in [&mut streamed, &mut whole] {
        m.start("Once upon a time", 0.0, 0.9, 1.0, 40.0).unwrap();
        while m.step().unwrap().is_some() {}
    }
    assert_eq!(streamed.tokens(), whole.tokens());
    // a bad header fails at once, before any chunk
    let msg = message(ModelLoader::new(&STORIES260K[..256], 1000.0, None).err().unwrap());
    assert!(msg.contains("1,000") && msg.contains("1,056,540"), "{msg}");
}

/// Q8_0 through the Model class with the SIMD int8 kernel: the same tokens as
/// the native engine (see tests/parity.rs for how far they follow runq.c),
/// and quantize-on-load of the fp32 file gives the same model.
#[wasm_bindgen_test]
fn q80_models_run_in_the_browser() {
    for line in GOLDEN.lines().filter(|l| l.contains("_q80")) {
        let c: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut file = Model::new(&js(STORIES260K_Q80), &js(TOK512), None).unwrap();
        let mut on_load = Model::new(&js(STORIES260K), &js(TOK512), Some(true)).unwrap();
        run_case(&mut file, &c);
        run_case(&mut on_load, &c);
        assert_eq!(file.tokens(), on_load.tokens());
        let want: Vec<u32> = c["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
        let same = file.tokens().iter().zip(&want).take_while(|(a, b)| a == b).count();
        let needed = if c["temperature"].as_f64() == Some(0.0) { 186 } else { 39 };
        assert!(same >= needed, "only {same} tokens follow runq.c");
        let cfg = on_load.config().unwrap();
        let get = |k: &str| js_sys::Reflect::get(&cfg, &JsValue::from_str(k)).unwrap();
        assert_eq!(get("group_size").as_f64(), Some(4.0));
        assert_eq!(get("quantized_on_load").as_bool(), Some(true));
        assert_eq!(get("weight_bytes").as_f64(), Some(521_472.0));
    }
}

#[wasm_bindgen_test]
fn simd_int8_kernel_equals_scalar_exactly() {
    use llama2_wasm::kernels::simd128;
    let mut s = 11u64;
    for &(d, n, gs) in &[(3usize, 8usize, 4usize), (5, 64, 64), (17, 172, 4), (9, 288, 32), (33, 768, 64), (4, 48, 16), (2, 24, 8)] {
        let w = vector(d * n, &mut s);
        let x = vector(n, &mut s);
        let (wq, ws) = llama2_wasm::checkpoint::quantize_q80(&w, gs);
        let (mut xq, mut xs) = (vec![0i8; n], vec![0f32; n / gs]);
        scalar::quantize(&mut xq, &mut xs, &x, gs);
        let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
        simd128::matmul_q8(&mut a, &xq, &xs, &wq, &ws, gs);
        scalar::matmul_q8(&mut b, &xq, &xs, &wq, &ws, gs);
        assert_eq!(a, b, "matmul_q8 {d}x{n} gs {gs}");
    }
    // the extremes: a file's weights may hold -128 (export.py never writes
    // it), activations are within ±127: no i16 or i32 lane may overflow
    for gs in [4usize, 16, 64] {
        let (d, n) = (3, 256);
        let wq: Vec<i8> = (0..d * n).map(|i| if i % 3 == 0 { 127 } else { -128 }).collect();
        let xq: Vec<i8> = (0..n).map(|i| if i % 2 == 0 { -127 } else { 127 }).collect();
        let (ws, xs) = (vec![1.0f32; d * n / gs], vec![1.0f32; n / gs]);
        let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
        simd128::matmul_q8(&mut a, &xq, &xs, &wq, &ws, gs);
        scalar::matmul_q8(&mut b, &xq, &xs, &wq, &ws, gs);
        assert_eq!(a, b, "extremes, gs {gs}");
        let all_min = vec![-128i8; d * n];
        let x_min = vec![-127i8; n];
        simd128::matmul_q8(&mut a, &x_min, &xs, &all_min, &ws, gs);
        assert_eq!(a, vec![(128 * 127 * n) as f32; d], "all -128 x -127, gs {gs}");
    }
}

// ---------------------------------------------------------------- inspector

fn get(o: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(o, &JsValue::from_str(key)).unwrap()
}

fn num(o: &JsValue, key: &str) -> f64 {
    get(o, key).as_f64().unwrap_or_else(|| panic!("{key} is not a number"))
}

#[wasm_bindgen_test]
fn inspector_topk_is_a_softmax_of_the_logits() {
    for (temperature, topp) in [(0.0, 0.9), (1.0, 0.9), (0.7, 0.5)] {
        let mut model = Model::new(&js(STORIES260K), &js(TOK512), None).unwrap();
        // closed: no record, and the message says how to open it
        assert!(message(model.topk(10.0).unwrap_err()).contains("inspect = true"));
        model.set_inspect(true);
        model.start("Once upon a time", temperature, topp, 11.0, 40.0).unwrap();
        let mut sampled = 0;
        while model.step().unwrap().is_some() {
            let logits = model.logits().unwrap();
            let top = model.topk(10.0).unwrap();
            let cands: js_sys::Array = get(&top, "candidates").into();
            assert_eq!(cands.length(), 10);
            // softmax of logits / temperature, computed here in f64
            let t = if temperature == 0.0 { 1.0 } else { temperature };
            let max = logits.iter().map(|&l| l as f64 / t).fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logits.iter().map(|&l| (l as f64 / t - max).exp()).sum();
            let mut sum = 0.0;
            for c in cands.iter() {
                let id = num(&c, "token") as usize;
                let expected = (logits[id] as f64 / t - max).exp() / z;
                assert!((num(&c, "prob") - expected).abs() < 1e-5, "token {id}");
                assert_eq!(num(&c, "logit") as f32, logits[id]);
                sum += num(&c, "prob");
            }
            assert!(sum <= 1.0 + 1e-5, "top-10 mass {sum}");
            let first = cands.get(0);
            assert!(!get(&first, "text").as_string().unwrap().is_empty() || num(&first, "token") < 3.0);
            if !get(&top, "forced").as_bool().unwrap() {
                sampled += 1;
                if temperature == 0.0 {
                    assert_eq!(num(&top, "next"), num(&first, "token"), "greedy: the sampled token is the top-1");
                    assert_eq!(num(&top, "nucleus"), 1.0);
                }
            }
        }
        assert!(sampled > 20);
        // any k JavaScript can pass: an answer or an error, never a panic
        let none: js_sys::Array = get(&model.topk(0.0).unwrap(), "candidates").into();
        assert_eq!(none.length(), 0);
        let all: js_sys::Array = get(&model.topk(1e12).unwrap(), "candidates").into();
        assert_eq!(all.length(), 512);
        for bad in [f64::NAN, -1.0, 2.5, f64::INFINITY] {
            assert!(message(model.topk(bad).unwrap_err()).contains("whole number"), "k = {bad}");
        }
    }
}

#[wasm_bindgen_test]
fn inspector_replays_chat_positions_as_they_ran() {
    let mut model = Model::new(&js(STORIES260K), &js(TOK512), None).unwrap();
    model.set_inspect(true);
    model.start_chat("", 1.0, 0.9, 3.0, 0.0).unwrap();
    model.chat_user("Hi").unwrap();
    let mut live = Vec::new();
    while model.step().unwrap().is_some() {
        let t = model.topk(3.0).unwrap();
        live.push((num(&t, "next"), get(&t, "forced").as_bool().unwrap(), model.logits().unwrap()));
    }
    assert!(live.len() > 5);
    for (pos, (next, forced, logits)) in live.iter().enumerate() {
        model.inspect_at(pos as f64).unwrap();
        let t = model.topk(3.0).unwrap();
        assert_eq!((num(&t, "next"), get(&t, "forced").as_bool().unwrap()), (*next, *forced), "position {pos}");
        assert_eq!(&model.logits().unwrap(), logits);
    }
    // a new conversation forgets the old record
    model.start_chat("", 1.0, 0.9, 3.0, 0.0).unwrap();
    assert_eq!(model.inspected_position(), None);
    assert!(message(model.topk(3.0).unwrap_err()).contains("nothing recorded"));
}

#[wasm_bindgen_test]
fn inspector_attention_rows_sum_to_one() {
    let mut model = Model::new(&js(STORIES260K), &js(TOK512), None).unwrap();
    model.set_inspect(true);
    model.start("Once upon a time", 0.0, 0.9, 1.0, 24.0).unwrap();
    let mut steps = 0;
    while model.step().unwrap().is_some() {
        let pos = model.inspected_position().unwrap();
        assert_eq!(pos, steps);
        let all = model.attention_all().unwrap().to_vec();
        assert_eq!(all.len(), 5 * 8 * (pos + 1)); // stories260K: 5 layers, 8 heads
        for layer in 0..5 {
            for head in 0..8 {
                let row = model.attention(layer, head).unwrap();
                assert_eq!(row.len(), pos + 1);
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "layer {layer} head {head}: {sum}");
                assert_eq!(&all[(layer * 8 + head) * (pos + 1)..][..pos + 1], &row[..]);
            }
        }
        steps += 1;
    }
    assert!(message(model.attention(5, 0).unwrap_err()).contains("layers 0-4 and heads 0-7"));
    // an earlier position, recomputed from the KV cache, equals what was live
    model.inspect_at(3.0).unwrap();
    assert_eq!(model.inspected_position(), Some(3));
    assert_eq!(model.attention(0, 0).unwrap().len(), 4);
    assert!(message(model.inspect_at(1e9).unwrap_err()).contains("has not been generated"));
    assert!(message(model.inspect_at(-1.0).unwrap_err()).contains("whole number"));
}

#[wasm_bindgen_test]
fn inspector_timings_add_up_to_the_step() {
    let mut model = Model::new(&js(STORIES260K), &js(TOK512), None).unwrap();
    model.set_inspect(true);
    model.start("Once upon a time", 1.0, 0.9, 5.0, 0.0).unwrap();
    let perf: web_sys_like::Performance = get(&js_sys::global().into(), "performance").unchecked_into();
    let (mut engine, mut outside) = (0.0, 0.0);
    let mut totals = Vec::new();
    loop {
        let t0 = perf.now();
        let more = model.step().unwrap().is_some();
        let ms = perf.now() - t0;
        if !more {
            break;
        }
        let t = model.timings(None).unwrap();
        totals.push(num(&t, "total"));
        let parts: f64 = ["projections", "attention", "ffn", "classifier", "sampling", "other"]
            .iter()
            .map(|k| {
                let v = num(&t, k);
                assert!(v >= 0.0, "{k} = {v}");
                v
            })
            .sum();
        assert!((parts - num(&t, "total")).abs() < 1e-9);
        engine += parts;
        outside += ms;
    }
    // the browser's clock is coarse (0.1 ms unless cross-origin isolated), so
    // compare sums over the whole generation (512 steps)
    assert!(outside > 0.0);
    assert!((engine - outside).abs() <= 0.15 * outside + 1.0, "engine {engine} ms, measured {outside} ms");

    // each position keeps its live timings: timings(pos) and timingsAll()
    let all = model.timings_all();
    assert_eq!(all.len(), totals.len() * 6);
    for (pos, total) in totals.iter().enumerate() {
        assert_eq!(num(&model.timings(Some(pos as f64)).unwrap(), "total"), *total);
        let row: f64 = all[pos * 6..][..6].iter().sum();
        assert!((row - total).abs() < 1e-9);
    }
    assert!(model.timings(Some(1e6)).unwrap().is_undefined());
    assert!(message(model.timings(Some(-1.0)).unwrap_err()).contains("whole number"));
}

#[wasm_bindgen_test]
fn inspector_walkthrough_lists_the_forward_pass() {
    let mut model = Model::new(&js(STORIES260K), &js(TOK512), None).unwrap();
    model.set_walkthrough(true);
    assert!(model.inspect());
    model.start("", 0.0, 0.9, 1.0, 4.0).unwrap();
    model.step().unwrap();
    let trace = model.trace().unwrap();
    assert_eq!(trace.length(), 1 + 5 * 10 + 2);
    let first = trace.get(0);
    assert_eq!(get(&first, "name").as_string().unwrap(), "x");
    assert_eq!(num(&first, "length"), 64.0);
    let last = trace.get(trace.length() - 1);
    assert_eq!(get(&last, "name").as_string().unwrap(), "logits");
    let values: js_sys::Float32Array = get(&last, "values").into();
    assert_eq!(values.to_vec(), model.logits().unwrap()[..8].to_vec());
    // closing the inspector stops recording
    model.set_inspect(false);
    model.step().unwrap();
    assert!(model.trace().is_err());
}

mod web_sys_like {
    use wasm_bindgen::prelude::*;
    #[wasm_bindgen]
    extern "C" {
        /// `performance`, without pulling in web-sys for one method.
        pub type Performance;
        #[wasm_bindgen(method)]
        pub fn now(this: &Performance) -> f64;
    }
}
