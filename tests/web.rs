//! Browser tests: the `Model` class as JavaScript sees it, running the
//! SIMD128 kernels, against run.c's golden outputs.
//! Run with `wasm-pack test --headless --chrome` (after ./build.sh copied the
//! reference files into www/models and tests/golden).
#![cfg(target_arch = "wasm32")]

use js_sys::Uint8Array;
use llama2_wasm::wasm::{Model, ModelLoader};
use wasm_bindgen::{JsCast, JsError, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod both;

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

fn new_model(checkpoint: &[u8], tokenizer: &[u8], quantize: bool) -> Result<Model, wasm_bindgen::JsError> {
    Model::new(&js(checkpoint).into(), &js(tokenizer).into(), &quantize.into())
}

fn new_loader(head: &[u8], size: f64) -> Result<ModelLoader, wasm_bindgen::JsError> {
    ModelLoader::new(&js(head).into(), &size.into(), &JsValue::UNDEFINED)
}

/// The Model API with Rust types, for the tests that are not about the JS
/// boundary itself (the exports take `JsValue`s and check them).
trait RustTypes {
    fn start_with(&mut self, prompt: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError>;
    fn start_chat_with(&mut self, system: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError>;
    fn chat_user_with(&mut self, message: &str) -> Result<(), JsError>;
    fn encode_with(&self, text: &str) -> Result<Vec<u32>, JsError>;
    fn set_kernels_with(&mut self, name: &str) -> Result<(), JsError>;
    fn set_inspect_with(&mut self, on: bool);
    fn set_walkthrough_with(&mut self, on: bool);
    fn inspect_at_with(&mut self, pos: f64) -> Result<(), JsError>;
    fn topk_with(&self, k: f64) -> Result<JsValue, JsError>;
    fn attention_with(&self, layer: usize, head: usize) -> Result<Vec<f32>, JsError>;
    fn timings_with(&self, pos: Option<f64>) -> Result<JsValue, JsError>;
}

impl RustTypes for Model {
    fn start_with(&mut self, prompt: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError> {
        self.start(&prompt.into(), &temperature.into(), &topp.into(), &seed.into(), &steps.into())
    }
    fn start_chat_with(&mut self, system: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError> {
        self.start_chat(&system.into(), &temperature.into(), &topp.into(), &seed.into(), &steps.into())
    }
    fn chat_user_with(&mut self, message: &str) -> Result<(), JsError> {
        self.chat_user(&message.into())
    }
    fn encode_with(&self, text: &str) -> Result<Vec<u32>, JsError> {
        self.encode(&text.into())
    }
    fn set_kernels_with(&mut self, name: &str) -> Result<(), JsError> {
        self.set_kernels(&name.into())
    }
    fn set_inspect_with(&mut self, on: bool) {
        assert!(self.set_inspect(&on.into()).is_ok());
    }
    fn set_walkthrough_with(&mut self, on: bool) {
        assert!(self.set_walkthrough(&on.into()).is_ok());
    }
    fn inspect_at_with(&mut self, pos: f64) -> Result<(), JsError> {
        self.inspect_at(&pos.into())
    }
    fn topk_with(&self, k: f64) -> Result<JsValue, JsError> {
        self.topk(&k.into())
    }
    fn attention_with(&self, layer: usize, head: usize) -> Result<Vec<f32>, JsError> {
        self.attention(&(layer as f64).into(), &(head as f64).into())
    }
    fn timings_with(&self, pos: Option<f64>) -> Result<JsValue, JsError> {
        self.timings(&pos.map_or(JsValue::UNDEFINED, JsValue::from_f64))
    }
}

trait LoaderRustTypes {
    fn push_with(&mut self, chunk: &[u8]) -> Result<(), JsError>;
    fn finish_with(&mut self, tokenizer: &Uint8Array) -> Result<Model, JsError>;
}

impl LoaderRustTypes for ModelLoader {
    fn push_with(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.push(&js(chunk).into())
    }
    fn finish_with(&mut self, tokenizer: &Uint8Array) -> Result<Model, JsError> {
        self.finish(tokenizer)
    }
}

/// The message of the JS Error a call threw.
fn message(e: JsError) -> String {
    let v: JsValue = e.into();
    v.dyn_into::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_default()
}

/// Run one golden generation case through `start` and `step`; the text.
fn run_case(model: &mut Model, c: &serde_json::Value) -> String {
    let arg = |k: &str| c[k].as_f64().unwrap();
    model.start_with(c["prompt"].as_str().unwrap(), arg("temperature"), arg("topp"), arg("seed"), arg("steps")).unwrap();
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
        let mut model = new_model(model_file(model_name), model_file(c["tokenizer"].as_str().unwrap()), false).unwrap();
        let text = run_case(&mut model, &c);
        let want: Vec<u32> = c["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
        assert_eq!(model.tokens(), want, "tokens differ for {line}");
        assert_eq!(text, c["stdout"].as_str().unwrap());
        n += 1;
    }
    assert!(n >= 8, "only {n} golden cases ran");
}

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
    for line in GOLDEN.lines().filter(|l| l.contains("\"stories260K.bin\"") && l.contains("\"generate\"")) {
        let c: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = run_case(&mut model, &c);
        let want: Vec<u32> = c["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
        assert_eq!(model.tokens(), want, "scalar tokens differ for {line}");
        assert_eq!(text, c["stdout"].as_str().unwrap());
        n += 1;
    }
    assert!(n >= 6, "only {n} golden cases ran");
}

#[wasm_bindgen_test]
fn config_reports_the_header() {
    let model = new_model(STORIES260K_V1, TOK512, false).unwrap();
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
    let msg = message(new_model(truncated, TOK512, false).err().unwrap());
    assert!(msg.contains("1,056,539") && msg.contains("1,056,540"), "{msg}");
    let msg = message(new_model(&[], TOK512, false).err().unwrap());
    assert!(msg.contains("too short"), "{msg}");
    let msg = message(new_model(STORIES260K, &TOK512[..101], false).err().unwrap());
    assert!(msg.contains("truncated"), "{msg}");

    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    let msg = message(model.step().err().unwrap());
    assert!(msg.contains("start"), "{msg}");
    let msg = message(model.start_with("", 1.0, 0.9, f64::NAN, 10.0).err().unwrap());
    assert!(msg.contains("seed"), "{msg}");
    let msg = message(model.start_with("", f64::NAN, 0.9, 1.0, 10.0).err().unwrap());
    assert!(msg.contains("temperature"), "{msg}");
    // the model still works after the errors
    model.start_with("Once", 0.0, 0.9, 1.0, 5.0).unwrap();
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
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    model.start_with("", 1.0, 0.9, 0.0, 20.0).unwrap();
    let seed = model.seed();
    assert!(seed >= 1.0 && seed <= 9_007_199_254_740_991.0);
    while model.step().unwrap().is_some() {}
    let first = model.tokens();
    // the reported seed reproduces the run
    model.start_with("", 1.0, 0.9, seed, 20.0).unwrap();
    while model.step().unwrap().is_some() {}
    assert_eq!(model.tokens(), first);
}

#[wasm_bindgen_test]
fn model_loader_streams_chunks_into_the_same_model() {
    let mut loader = new_loader(&STORIES260K[..256], STORIES260K.len() as f64).unwrap();
    for chunk in STORIES260K.chunks(65_537) {
        loader.push_with(chunk).unwrap();
    }
    let mut streamed = loader.finish_with(&js(TOK512)).unwrap();
    assert!(message(loader.finish_with(&js(TOK512)).err().unwrap()).contains("already finished"));
    let mut whole = new_model(STORIES260K, TOK512, false).unwrap();
    for m in [&mut streamed, &mut whole] {
        m.start_with("Once upon a time", 0.0, 0.9, 1.0, 40.0).unwrap();
        while m.step().unwrap().is_some() {}
    }
    assert_eq!(streamed.tokens(), whole.tokens());
    // a bad header fails at once, before any chunk
    let msg = message(new_loader(&STORIES260K[..256], 1000.0).err().unwrap());
    assert!(msg.contains("1,000") && msg.contains("1,056,540"), "{msg}");
}

/// Q8_0 through the Model class with the SIMD int8 kernel: quantize-on-load
/// of the fp32 file gives the same model, and runq.c's greedy tokens are
/// followed up to near-ties (exact parity is the scalar kernels', natively).
#[wasm_bindgen_test]
fn q80_models_run_in_the_browser() {
    for line in GOLDEN.lines().filter(|l| l.contains("_q80")) {
        let c: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut file = new_model(STORIES260K_Q80, TOK512, false).unwrap();
        let mut on_load = new_model(STORIES260K, TOK512, true).unwrap();
        run_case(&mut file, &c);
        run_case(&mut on_load, &c);
        assert_eq!(file.tokens(), on_load.tokens());
        if c["temperature"].as_f64() == Some(0.0) {
            // fed runq.c's greedy tokens, our argmax differs only at near-ties
            let want: Vec<u32> = c["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
            let prompt = new_model(STORIES260K_Q80, TOK512, false).unwrap().encode_with(c["prompt"].as_str().unwrap()).unwrap().len();
            both::q80_teacher_forced(STORIES260K_Q80, &want, prompt);
        }
        let cfg = on_load.config().unwrap();
        let get = |k: &str| js_sys::Reflect::get(&cfg, &JsValue::from_str(k)).unwrap();
        assert_eq!(get("group_size").as_f64(), Some(4.0));
        assert_eq!(get("quantized_on_load").as_bool(), Some(true));
        assert_eq!(get("weight_bytes").as_f64(), Some(521_472.0));
    }
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
        let mut model = new_model(STORIES260K, TOK512, false).unwrap();
        // closed: no record, and the message says how to open it
        assert!(message(model.topk_with(10.0).unwrap_err()).contains("inspect = true"));
        model.set_inspect_with(true);
        model.start_with("Once upon a time", temperature, topp, 11.0, 40.0).unwrap();
        let mut sampled = 0;
        while model.step().unwrap().is_some() {
            let logits = model.logits().unwrap();
            let top = model.topk_with(10.0).unwrap();
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
        let none: js_sys::Array = get(&model.topk_with(0.0).unwrap(), "candidates").into();
        assert_eq!(none.length(), 0);
        let all: js_sys::Array = get(&model.topk_with(1e12).unwrap(), "candidates").into();
        assert_eq!(all.length(), 512);
        for bad in [f64::NAN, -1.0, 2.5, f64::INFINITY] {
            assert!(message(model.topk_with(bad).unwrap_err()).contains("whole number"), "k = {bad}");
        }
    }
}

#[wasm_bindgen_test]
fn inspector_replays_chat_positions_as_they_ran() {
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    model.set_inspect_with(true);
    model.start_chat_with("", 1.0, 0.9, 3.0, 0.0).unwrap();
    model.chat_user_with("Hi").unwrap();
    let mut live = Vec::new();
    while model.step().unwrap().is_some() {
        let t = model.topk_with(3.0).unwrap();
        live.push((num(&t, "next"), get(&t, "forced").as_bool().unwrap(), model.logits().unwrap()));
    }
    assert!(live.len() > 5);
    for (pos, (next, forced, logits)) in live.iter().enumerate() {
        model.inspect_at_with(pos as f64).unwrap();
        let t = model.topk_with(3.0).unwrap();
        assert_eq!((num(&t, "next"), get(&t, "forced").as_bool().unwrap()), (*next, *forced), "position {pos}");
        assert_eq!(&model.logits().unwrap(), logits);
    }
    // a new conversation forgets the old record
    model.start_chat_with("", 1.0, 0.9, 3.0, 0.0).unwrap();
    assert_eq!(model.inspected_position(), None);
    assert!(message(model.topk_with(3.0).unwrap_err()).contains("nothing recorded"));
}

#[wasm_bindgen_test]
fn inspector_attention_rows_sum_to_one() {
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    model.set_inspect_with(true);
    model.start_with("Once upon a time", 0.0, 0.9, 1.0, 24.0).unwrap();
    let mut steps = 0;
    while model.step().unwrap().is_some() {
        let pos = model.inspected_position().unwrap();
        assert_eq!(pos, steps);
        let all = model.attention_all().unwrap().to_vec();
        assert_eq!(all.len(), 5 * 8 * (pos + 1)); // stories260K: 5 layers, 8 heads
        for layer in 0..5 {
            for head in 0..8 {
                let row = model.attention_with(layer, head).unwrap();
                assert_eq!(row.len(), pos + 1);
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "layer {layer} head {head}: {sum}");
                assert_eq!(&all[(layer * 8 + head) * (pos + 1)..][..pos + 1], &row[..]);
            }
        }
        steps += 1;
    }
    assert!(message(model.attention_with(5, 0).unwrap_err()).contains("layers 0-4 and heads 0-7"));
    // an earlier position, recomputed from the KV cache, equals what was live
    model.inspect_at_with(3.0).unwrap();
    assert_eq!(model.inspected_position(), Some(3));
    assert_eq!(model.attention_with(0, 0).unwrap().len(), 4);
    assert!(message(model.inspect_at_with(1e9).unwrap_err()).contains("has not been generated"));
    assert!(message(model.inspect_at_with(-1.0).unwrap_err()).contains("whole number"));
}

#[wasm_bindgen_test]
fn inspector_timings_add_up_to_the_step() {
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    model.set_inspect_with(true);
    model.start_with("Once upon a time", 1.0, 0.9, 5.0, 0.0).unwrap();
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
        let t = model.timings_with(None).unwrap();
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
    // structure only: how much of the wall time the engine's clock covers
    // depends on the machine's load, so that ratio is the bench's to print
    // (a busy fresh clone once measured 193 of 230 ms); the engine's clock
    // runs inside the step, so it cannot exceed the step's wall time beyond
    // the browser's clock resolution (0.1 ms unless cross-origin isolated)
    assert!(outside > 0.0 && engine > 0.0);
    assert!(engine <= outside + 0.2 * totals.len() as f64, "engine {engine} ms within measured {outside} ms");

    // each position keeps its live timings: timings(pos) and timingsAll()
    let all = model.timings_all();
    let phases = llama2_wasm::wasm::timing_phases();
    assert_eq!(phases, ["projections", "attention", "ffn", "classifier", "sampling", "other"]);
    assert_eq!(all.len(), totals.len() * phases.len());
    for (pos, total) in totals.iter().enumerate() {
        assert_eq!(num(&model.timings_with(Some(pos as f64)).unwrap(), "total"), *total);
        let row: f64 = all[pos * 6..][..6].iter().sum();
        assert!((row - total).abs() < 1e-9);
    }
    assert!(model.timings_with(Some(1e6)).unwrap().is_undefined());
    assert!(message(model.timings_with(Some(-1.0)).unwrap_err()).contains("whole number"));
}

#[wasm_bindgen_test]
fn inspector_walkthrough_lists_the_forward_pass() {
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    model.set_walkthrough_with(true);
    assert!(model.inspect());
    model.start_with("", 0.0, 0.9, 1.0, 4.0).unwrap();
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
    model.set_inspect_with(false);
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

// ---------------------------------------------------------------- the JS boundary
//
// These call the exports through their JavaScript glue (the class's own
// methods, `Reflect.apply`), as a page does: what matters is that no JS
// value can make the glue or the engine trap, and that a refused call leaves
// the model working. (A trap here would kill this test instance: the tests
// after it fail too.)

fn n(x: f64) -> JsValue {
    JsValue::from_f64(x)
}

fn s(x: &str) -> JsValue {
    JsValue::from_str(x)
}

/// An `ArrayBuffer` holding `bytes`.
fn buffer(bytes: &[u8]) -> JsValue {
    js(bytes).buffer().into()
}

fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
}

/// `obj[method](...args)` through the JS glue; the message of what it threw.
fn call(obj: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let f: js_sys::Function = get(obj, method).dyn_into().unwrap_or_else(|_| panic!("no method {method}"));
    let list = js_sys::Array::new();
    for a in args {
        list.push(a);
    }
    js_sys::Reflect::apply(&f, obj, &list).map_err(|e| js_message(&e))
}

/// `new class(...args)` through the JS glue.
fn construct(class: &JsValue, args: &[JsValue]) -> Result<JsValue, String> {
    let list = js_sys::Array::new();
    for a in args {
        list.push(a);
    }
    js_sys::Reflect::construct(class.unchecked_ref::<js_sys::Function>(), &list).map_err(|e| js_message(&e))
}

/// `obj[key] = value` through a setter of the glue.
fn assign(obj: &JsValue, key: &str, value: &JsValue) -> Result<(), String> {
    js_sys::Reflect::set(obj, &s(key), value).map(|_| ()).map_err(|e| js_message(&e))
}

/// A greedy run of 24 steps from "Once upon a time" through the JS methods: its tokens.
fn greedy_tokens(model: &JsValue) -> Vec<u32> {
    call(model, "start", &[s("Once upon a time"), n(0.0), n(0.9), n(1.0), n(24.0)]).unwrap();
    while !call(model, "step", &[]).unwrap().is_undefined() {}
    let tokens: js_sys::Uint32Array = call(model, "tokens", &[]).unwrap().dyn_into().unwrap();
    tokens.to_vec()
}

/// A tokenizer.bin: max_token_length, then (score, len, bytes) per token.
fn tokenizer_bytes(max_token_length: i32, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = max_token_length.to_le_bytes().to_vec();
    for (i, piece) in pieces.iter().enumerate() {
        out.extend_from_slice(&(i as f32).to_le_bytes());
        out.extend_from_slice(&(piece.len() as i32).to_le_bytes());
        out.extend_from_slice(piece);
    }
    out
}

/// tok512.bin with another max_token_length in its header (the tokens are unchanged).
fn tok512_with_max_token_length(max: i32) -> Vec<u8> {
    let mut bytes = TOK512.to_vec();
    bytes[..4].copy_from_slice(&max.to_le_bytes());
    bytes
}

#[wasm_bindgen_test]
fn every_model_method_checks_its_js_arguments_and_the_model_survives() {
    let model: JsValue = new_model(STORIES260K, TOK512, false).unwrap().into();
    let want = greedy_tokens(&model);
    assert_eq!(want.len(), 25);
    assign(&model, "inspect", &JsValue::TRUE).unwrap();
    greedy_tokens(&model); // a record to read
    let symbol: JsValue = js_sys::Symbol::for_("x").into();
    let cases: Vec<(&str, Vec<JsValue>, &str)> = vec![
        ("setTokenizer", vec![JsValue::NULL], "tokenizer must be a Uint8Array or an ArrayBuffer, not null"),
        ("setTokenizer", vec![JsValue::UNDEFINED], "tokenizer must be a Uint8Array or an ArrayBuffer, not undefined"),
        ("setTokenizer", vec![s("tok512.bin")], "tokenizer must be a Uint8Array or an ArrayBuffer, not a string"),
        ("start", vec![n(123.0), n(0.0), n(0.9), n(1.0), n(10.0)], "prompt must be a string, not the number 123"),
        ("start", vec![s("x"), s("0.5"), n(0.9), n(1.0), n(10.0)], "temperature must be a number, not a string"),
        ("start", vec![s("x"), n(0.0), JsValue::NULL, n(1.0), n(10.0)], "topp must be a number, not null"),
        ("start", vec![s("x"), n(0.0), n(0.9), n(1.5), n(10.0)], "seed 1.5 must be a whole number"),
        ("start", vec![s("x"), n(0.0), n(0.9), n(1.0)], "steps must be a number, not undefined"),
        ("encode", vec![n(5.0)], "text must be a string, not the number 5"),
        ("startChat", vec![n(5.0), n(0.0), n(0.9), n(1.0), n(0.0)], "system prompt must be a string, not the number 5"),
        ("chatUser", vec![symbol.clone()], "message must be a string, not a symbol"),
        ("attention", vec![n(4294967296.0), n(0.0)], "no layer 4294967296 head 0: this model has layers 0-4 and heads 0-7"),
        ("attention", vec![n(f64::NAN), n(f64::NAN)], "no layer NaN head NaN: this model has layers 0-4 and heads 0-7"),
        ("attention", vec![JsValue::UNDEFINED, JsValue::UNDEFINED], "no layer undefined head undefined: this model has layers 0-4 and heads 0-7"),
        ("attention", vec![n(-1.0), n(0.0)], "layers 0-4 and heads 0-7"),
        ("attention", vec![n(0.5), n(0.0)], "layers 0-4 and heads 0-7"),
        ("attention", vec![n(0.0), n(8.0)], "no layer 0 head 8"),
        ("piece", vec![n(512.0)], "token 512 is not in the vocabulary: tokens are whole numbers 0-511"),
        ("piece", vec![n(4294967297.0)], "token 4294967297 is not in the vocabulary"),
        ("piece", vec![s("1")], "token must be a number, not a string"),
        ("topk", vec![s("10")], "k must be a number, not a string"),
        ("topk", vec![n(f64::NAN)], "k NaN is not a whole number"),
        ("inspectAt", vec![JsValue::UNDEFINED], "position must be a number, not undefined"),
        ("inspectAt", vec![n(4294967296.0)], "position 4294967296 has not been generated yet: positions 0 to 23"),
        ("timings", vec![s("x")], "position must be a number, not a string"),
    ];
    for (method, args, want_msg) in &cases {
        let msg = call(&model, method, args).expect_err(&format!("{method}({args:?}) was accepted"));
        assert!(msg.contains(want_msg), "{method}({args:?}): {msg}");
        assert!(!msg.contains("unreachable") && !msg.contains("recursive use"), "{method}: {msg}");
    }
    for (key, value, want_msg) in [
        ("kernels", n(5.0), "kernels must be a string, not the number 5"),
        ("kernels", s("avx512"), "unknown kernels"),
        ("inspect", s("yes"), "inspect must be true or false, not a string"),
        ("walkthrough", JsValue::NULL, "walkthrough must be true or false, not null"),
    ] {
        let msg = assign(&model, key, &value).expect_err(key);
        assert!(msg.contains(want_msg), "{key} = {value:?}: {msg}");
    }
    // the valid calls still answer as before
    assert_eq!(call(&model, "attention", &[n(4.0), n(7.0)]).map(|a| a.unchecked_into::<js_sys::Float32Array>().length()), Ok(24));
    assert_eq!(call(&model, "piece", &[n(511.0)]).map(|p| p.is_string()), Ok(true));
    assert!(call(&model, "timings", &[]).unwrap().is_object());
    // the model was never hurt: the same tokens as before any of it
    assign(&model, "inspect", &JsValue::FALSE).unwrap();
    assert_eq!(greedy_tokens(&model), want);

    // bytes as ArrayBuffers: the constructor and setTokenizer accept them
    let class = get(&model, "constructor");
    let from_buffers = construct(&class, &[buffer(STORIES260K), buffer(TOK512)]).unwrap();
    assert_eq!(greedy_tokens(&from_buffers), want);
    call(&model, "setTokenizer", &[buffer(TOK512)]).unwrap();
    assert_eq!(greedy_tokens(&model), want);
    // and a DataView, or a view of part of a larger buffer
    let padded = [&[7u8; 3][..], TOK512].concat();
    let view = js_sys::DataView::new(&js(&padded).buffer(), 3, TOK512.len());
    call(&model, "setTokenizer", &[view.into()]).unwrap();
    assert_eq!(greedy_tokens(&model), want);
    for (args, want_msg) in [
        (vec![buffer(STORIES260K), JsValue::NULL], "tokenizer must be a Uint8Array or an ArrayBuffer, not null"),
        (vec![JsValue::UNDEFINED, buffer(TOK512)], "checkpoint must be a Uint8Array or an ArrayBuffer, not undefined"),
        (vec![buffer(STORIES260K), buffer(TOK512), s("yes")], "quantize must be true or false, not a string"),
        (vec![js_sys::Array::new().into(), buffer(TOK512)], "checkpoint must be a Uint8Array or an ArrayBuffer, not an Array"),
    ] {
        let msg = construct(&class, &args).expect_err(want_msg);
        assert!(msg.contains(want_msg), "{msg}");
    }
}

#[wasm_bindgen_test]
fn a_wrong_tokenizer_at_finish_leaves_the_loader_and_its_weights_usable() {
    let whole: JsValue = new_model(STORIES260K, TOK512, false).unwrap().into();
    let want = greedy_tokens(&whole);
    let mut loader = new_loader(&STORIES260K[..256], STORIES260K.len() as f64).unwrap();
    let (first, rest) = STORIES260K.split_at(500_000);
    loader.push_with(first).unwrap();
    // not all bytes yet: refused, and the loader takes the rest
    let msg = message(loader.finish_with(&js(TOK512)).err().unwrap());
    assert!(msg.contains("ended after 500,000 of its 1,056,540 bytes"), "{msg}");
    loader.push_with(rest).unwrap();
    // another vocabulary, then no tokenizer at all, then garbage: each refused, nothing consumed
    let small = tokenizer_bytes(16, &[b"<unk>", b"<s>", b"</s>", b" ", b"a"]);
    let msg = message(loader.finish_with(&js(&small)).err().unwrap());
    assert!(msg.contains("the tokenizer has 5 tokens but the checkpoint's vocabulary has 512"), "{msg}");
    let msg = message(loader.finish(&JsValue::NULL).err().unwrap());
    assert!(msg.contains("tokenizer must be a Uint8Array or an ArrayBuffer, not null"), "{msg}");
    let msg = message(loader.finish_with(&js(b"not a tokenizer at all")).err().unwrap());
    assert!(msg.contains("invalid tokenizer"), "{msg}");
    assert_eq!(loader.received(), STORIES260K.len() as f64);
    // the right one: the model, from the bytes streamed once
    let model: JsValue = loader.finish_with(&js(TOK512)).unwrap().into();
    assert_eq!(greedy_tokens(&model), want);
    assert!(message(loader.finish_with(&js(TOK512)).err().unwrap()).contains("already finished"));
}

#[wasm_bindgen_test]
fn the_loader_refuses_bytes_that_are_not_the_file_it_was_opened_for() {
    // a v1 body after a legacy head: the first byte differs from the head
    let mut loader = new_loader(&STORIES260K[..256], STORIES260K.len() as f64).unwrap();
    let v1 = &STORIES260K_V1[..STORIES260K.len().min(STORIES260K_V1.len())];
    let msg = message(loader.push_with(v1).err().unwrap());
    assert!(msg.contains("byte 0 pushed differs from the header this loader was opened with"), "{msg}");
    // one byte changed inside the head, pushed in small chunks
    let mut changed = STORIES260K[..256].to_vec();
    changed[100] ^= 1;
    loader.push_with(&changed[..64]).unwrap();
    let msg = message(loader.push_with(&changed[64..]).err().unwrap());
    assert!(msg.contains("byte 100 pushed differs"), "{msg}");
    assert_eq!(loader.received(), 64.0);
    // not bytes at all
    let msg = message(loader.push(&JsValue::from_f64(3.0)).err().unwrap());
    assert!(msg.contains("chunk must be a Uint8Array or an ArrayBuffer, not the number 3"), "{msg}");
    // the right bytes (an ArrayBuffer is fine), then one too many
    loader.push(&buffer(&STORIES260K[64..])).unwrap();
    let msg = message(loader.push_with(&[0]).err().unwrap());
    assert!(msg.contains("1,056,541 bytes were pushed, more than the 1,056,540"), "{msg}");
    let model: JsValue = loader.finish_with(&js(TOK512)).unwrap().into();
    let whole: JsValue = new_model(STORIES260K, TOK512, false).unwrap().into();
    assert_eq!(greedy_tokens(&model), greedy_tokens(&whole));

    // the constructor's own arguments
    for (head, size, quantize, want_msg) in [
        (JsValue::NULL, n(1.0), JsValue::UNDEFINED, "head must be a Uint8Array or an ArrayBuffer, not null"),
        (buffer(&STORIES260K[..256]), s("1056540"), JsValue::UNDEFINED, "size must be a number, not a string"),
        (buffer(&STORIES260K[..256]), n(f64::INFINITY), JsValue::UNDEFINED, "file size Infinity is not a byte count"),
        (buffer(&STORIES260K[..256]), n(1056540.0), n(1.0), "quantize must be true or false, not the number 1"),
    ] {
        let msg = message(ModelLoader::new(&head, &size, &quantize).err().unwrap());
        assert!(msg.contains(want_msg), "{msg}");
    }
    let ok = ModelLoader::new(&buffer(&STORIES260K[..256]), &n(STORIES260K.len() as f64), &JsValue::TRUE);
    assert!(ok.is_ok());
}

#[wasm_bindgen_test]
fn file_info_and_tokenizer_info_follow_the_engine_parsers() {
    use llama2_wasm::wasm::{file_info, memory_limit, set_memory_limit_for_test, tokenizer_info};
    let kind = |head: &[u8], size: usize| {
        let info = file_info(&buffer(head), &n(size as f64)).unwrap();
        (get(&info, "kind").as_string().unwrap(), get(&info, "error").as_string())
    };
    assert_eq!(kind(&STORIES260K[..256], STORIES260K.len()), ("checkpoint".into(), None));
    assert_eq!(kind(&TOK512[..256], TOK512.len()).0, "tokenizer");
    // any max_token_length the tokenizer parser takes (1..=65536) is a tokenizer
    for max in [1025, 2000, 65536] {
        let tok = tok512_with_max_token_length(max);
        assert_eq!(kind(&tok[..256], tok.len()), ("tokenizer".into(), None), "max_token_length {max}");
        let model: JsValue = new_model(STORIES260K, &tok, false).unwrap().into();
        assert_eq!(greedy_tokens(&model).len(), 25);
    }
    assert_eq!(kind(&tok512_with_max_token_length(65537)[..256], TOK512.len()).0, "unknown");
    for (head, size, want_msg) in [
        (JsValue::NULL, n(5.0), "head must be a Uint8Array or an ArrayBuffer, not null"),
        (buffer(&STORIES260K[..256]), n(f64::NAN), "file size NaN is not a byte count"),
        (buffer(&STORIES260K[..256]), JsValue::UNDEFINED, "size must be a number, not undefined"),
    ] {
        let msg = message(file_info(&head, &size).err().unwrap());
        assert!(msg.contains(want_msg), "{msg}");
    }
    // a whole tokenizer against a checkpoint's vocabulary
    let info = tokenizer_info(&buffer(TOK512), &n(512.0)).unwrap();
    assert_eq!(num(&info, "vocab_size"), 512.0);
    let msg = message(tokenizer_info(&buffer(TOK512), &n(32000.0)).err().unwrap());
    assert!(msg.contains("the tokenizer has 512 tokens but the checkpoint's vocabulary has 32,000"), "{msg}");
    assert!(message(tokenizer_info(&JsValue::UNDEFINED, &JsValue::UNDEFINED).err().unwrap()).contains("not undefined"));

    // the memory limit, and the test-only setter
    assert_eq!(memory_limit(), (4u64 << 30) as f64 - (256u64 << 20) as f64);
    set_memory_limit_for_test(&n(1_000_000.0)).unwrap();
    let info = file_info(&buffer(&STORIES260K[..256]), &n(STORIES260K.len() as f64)).unwrap();
    assert!(get(&info, "error").as_string().unwrap().contains("more than this engine can hold"));
    set_memory_limit_for_test(&n(0.0)).unwrap();
    assert_eq!(memory_limit(), (4u64 << 30) as f64 - (256u64 << 20) as f64);
    assert!(set_memory_limit_for_test(&n(-1.0)).is_err());
    // what a model holds, for the page's "free the old one first"
    let model = new_model(STORIES260K, TOK512, false).unwrap();
    let cfg = model.config().unwrap();
    assert!(num(&cfg, "memory_bytes") > num(&cfg, "weight_bytes") + num(&cfg, "state_bytes"));
}

#[wasm_bindgen_test]
fn thread_exports_check_their_arguments() {
    use llama2_wasm::wasm::{enable_threads, set_min_parallel, thread_helper, thread_helper_failed};
    for (what, msg) in [
        ("enableThreads", message(enable_threads(&s("2")).err().unwrap())),
        ("setMinParallel", message(set_min_parallel(&n(f64::NAN)).err().unwrap())),
        ("threadHelper", message(thread_helper(&JsValue::NULL).err().unwrap())),
        ("threadHelperFailed", message(thread_helper_failed(&n(-1.0)).err().unwrap())),
    ] {
        assert!(msg.contains("must be a number") || msg.contains("whole number"), "{what}: {msg}");
    }
}
