//! The WebGPU backend (`useGpu`, `stepAsync`) against the CPU's: logits at
//! every position of run.c's golden generations, the greedy goldens token
//! for token, switching backends mid-generation, a lost device, and the
//! errors that can be made to happen. Headless Chromium gives WebGPU a
//! software adapter (SwiftShader) with `--enable-unsafe-webgpu`
//! (webdriver.json).
//!
//! The bound. Both backends compute the same formulas in f32; they differ
//! in summation order (the GPU's matmul, rmsnorm and softmax add in a tree,
//! the CPU's in four lanes), and in WGSL's exp, sqrt and division, allowed
//! a few ulp where the CPU's are correctly rounded. The test measures, as
//! the yardstick, how far the CPU's own two kernel sets (run.c's scalar
//! loops and the SIMD ones, both correct) drift apart on the same tokens,
//! and prints both. The bound is |gpu - cpu| <= ATOL + RTOL * max|logit|
//! of that position, and NaN or infinity anywhere fails:
//! - fp32: RTOL = 1e-4 (about 100 times the measured GPU-CPU worst case,
//!   1e-6 of the largest logit, and far below a token's margin except at
//!   exact ties);
//! - Q8_0: RTOL = 3e-2. The activations are quantized to int8 before each
//!   matmul; a last-bit difference that moves a value across a rounding
//!   boundary changes its int8 by one (1/127 of its group's scale), and
//!   the layers carry that on: the CPU's scalar and SIMD kernels already
//!   differ by 1.4% of the largest logit on these generations, the GPU
//!   by 1.5%. Twice that is the bound.
//! ATOL = 1e-4 covers logits near 0.
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

use crate::support::*;
use llama2_wasm::wasm::{timing_phases, Model};

const ATOL: f32 = 1e-4;
const RTOL_F32: f32 = 1e-4;
const RTOL_Q80: f32 = 3e-2;

/// `useGpu(options)`, the error's message on failure.
async fn use_gpu(model: &mut Model, options: JsValue) -> Result<(), String> {
    let setting_up = model.use_gpu(options).map_err(message)?;
    wasm_bindgen_futures::JsFuture::from(setting_up).await.map(|_| ()).map_err(js_message)
}

/// A rejection's message (a JavaScript Error).
fn js_message(e: JsValue) -> String {
    e.dyn_into::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_default()
}

async fn gpu_model(file: &str) -> Model {
    let mut model = new_model(model_file(file), TOK512, false).unwrap();
    use_gpu(&mut model, JsValue::UNDEFINED).await.expect("useGpu (is Chromium started with --enable-unsafe-webgpu?)");
    assert_eq!(model.backend(), "webgpu");
    model
}

/// The largest difference of `gpu` from `cpu`, absolute and relative to
/// the largest |cpu| logit; panics on NaN or infinity and outside the bound.
fn compare(gpu: &[f32], cpu: &[f32], rtol: f32, what: &str) -> (f32, f32) {
    assert_eq!(gpu.len(), cpu.len());
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let mut worst = 0.0f32;
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        assert!(g.is_finite(), "{what}: logit {i} is {g} on the GPU");
        let d = (g - c).abs();
        assert!(d <= ATOL + rtol * scale, "{what}: logit {i}: gpu {g}, cpu {c} (max |logit| {scale})");
        worst = worst.max(d);
    }
    (worst, worst / scale)
}

/// The largest difference of `a` from `b`, absolute and relative to the
/// largest |b| logit (no bound: the CPU's two kernel sets, for reference).
fn difference(a: &[f32], b: &[f32]) -> (f32, f32) {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    (worst, worst / scale)
}

/// Feed each golden generation's tokens to both backends' forward pass
/// and compare the logits at every position; also the CPU's SIMD kernels
/// against its scalar ones (run.c's loops), the yardstick of how far two
/// correct f32 summation orders drift apart on this model.
async fn logits_match(file: &str, rtol: f32) -> usize {
    let mut cpu = new_model(model_file(file), TOK512, false).unwrap();
    let mut scalar = new_model(model_file(file), TOK512, false).unwrap();
    scalar.set_kernels_with("scalar").unwrap();
    let mut gpu = gpu_model(file).await;
    let (mut abs, mut rel, mut ref_abs, mut ref_rel, mut n) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0);
    let mut cases: Vec<_> = generate_cases().into_iter().filter(|c| c.model.starts_with("stories260K")).collect();
    // the logits at a position depend only on the tokens up to it: each
    // distinct generation once, and a prefix shared with the one before
    // (sorted) is not run again (the KV caches hold it)
    cases.sort_by(|a, b| a.tokens.cmp(&b.tokens));
    cases.dedup_by(|a, b| a.tokens == b.tokens);
    let mut previous: &[u32] = &[];
    for c in &cases {
        let shared = c.tokens.iter().zip(previous).take_while(|(a, b)| a == b).count();
        for (pos, &token) in c.tokens.iter().enumerate().take(c.tokens.len() - 1).skip(shared) {
            let (t, p) = (JsValue::from(token), JsValue::from(pos as f64));
            let want = cpu.forward_for_test(t.clone(), p.clone()).await.unwrap();
            let reference = scalar.forward_for_test(t.clone(), p.clone()).await.unwrap();
            let got = gpu.forward_for_test(t, p).await.unwrap();
            let (a, r) = compare(&got, &want, rtol, &format!("{file}, {:?} seed {}, position {pos}", c.prompt, c.seed));
            let (ra, rr) = difference(&reference, &want);
            (abs, rel, ref_abs, ref_rel, n) = (abs.max(a), rel.max(r), ref_abs.max(ra), ref_rel.max(rr), n + 1);
        }
        previous = &c.tokens;
    }
    console_log!(
        "{file}: {n} positions; GPU vs CPU (simd128): worst |gpu - cpu| {abs:e}, relative to max|logit| {rel:e}; \
         CPU scalar vs simd128: {ref_abs:e}, relative {ref_rel:e}"
    );
    n
}

#[wasm_bindgen_test]
async fn fp32_logits_match_the_cpu_at_every_golden_position() {
    let n = logits_match("stories260K.bin", RTOL_F32).await;
    assert!(n > 1000, "only {n} positions");
}

#[wasm_bindgen_test]
async fn q80_logits_match_the_cpu_at_every_golden_position() {
    let n = logits_match("stories260K_q80.bin", RTOL_Q80).await;
    assert!(n > 1000, "only {n} positions");
}

/// A random model of stories15M's shape (6 layers, dim 288, 32000 tokens),
/// fp32 and quantized on load: the logits at 24 positions of a fixed token
/// sequence, within the same bounds. The classifier (9.2 M weights, 37 MB)
/// and the embedding table are what stories260K never exercises: large
/// buffers, many workgroups.
#[wasm_bindgen_test]
async fn random_15m_logits_match_the_cpu() {
    let checkpoint = random_15m();
    for (quantize, rtol) in [(false, RTOL_F32), (true, RTOL_Q80)] {
        let mut cpu = new_model(&checkpoint, TOKENIZER, quantize).unwrap();
        let mut gpu = new_model(&checkpoint, TOKENIZER, quantize).unwrap();
        use_gpu(&mut gpu, JsValue::UNDEFINED).await.unwrap();
        let (mut abs, mut rel) = (0.0f32, 0.0f32);
        for pos in 0..24u32 {
            // BOS, then tokens spread over the whole vocabulary
            let token = if pos == 0 { 1 } else { (pos * 7919 + 13) % 32000 };
            let (t, p) = (JsValue::from(token), JsValue::from(pos as f64));
            let want = cpu.forward_for_test(t.clone(), p.clone()).await.unwrap();
            let got = gpu.forward_for_test(t, p).await.unwrap();
            let (a, r) = compare(&got, &want, rtol, &format!("random 15M (quantized: {quantize}), position {pos}"));
            (abs, rel) = (abs.max(a), rel.max(r));
        }
        console_log!("random 15M (quantized on load: {quantize}): 24 positions; worst |gpu - cpu| {abs:e}, relative to max|logit| {rel:e}");
    }
}

/// Run a golden case with `stepAsync`; the text.
async fn run_case_async(model: &mut Model, c: &crate::golden::GenerateCase) -> String {
    model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, c.steps as f64).unwrap();
    let mut text = String::new();
    while let Some(piece) = model.step_async().await.unwrap() {
        text.push_str(&piece);
    }
    text
}

/// The greedy goldens token for token through `stepAsync`, fp32 and Q8_0
/// (`limit`: at most that many cases per model).
async fn goldens_through_step_async(options: JsValue, limit: usize) {
    let mut n = 0;
    for file in ["stories260K.bin", "stories260K_q80.bin"] {
        let mut model = new_model(model_file(file), TOK512, false).unwrap();
        use_gpu(&mut model, options.clone()).await.unwrap();
        for c in generate_cases().iter().filter(|c| c.model == file && c.temperature == 0.0).take(limit) {
            let text = run_case_async(&mut model, c).await;
            assert_eq!(model.tokens(), c.tokens, "stepAsync on the GPU: {c:?}");
            assert_eq!(text, c.stdout);
            n += 1;
        }
    }
    assert!(n >= 2, "only {n} greedy cases");
}

#[wasm_bindgen_test]
async fn greedy_goldens_token_for_token_through_step_async() {
    goldens_through_step_async(JsValue::UNDEFINED, usize::MAX).await;
}

/// Matrices cut into pieces of 1 KiB (a few rows each, the classifier
/// into many): the same tokens.
#[wasm_bindgen_test]
async fn matrices_in_pieces_give_the_same_tokens() {
    let options = js_sys::Object::new();
    Reflect::set(&options, &"maxPieceBytes".into(), &1024.into()).unwrap();
    goldens_through_step_async(options.into(), 1).await;
}

/// Hand the generation from one backend to the other (and back) at a few
/// steps: the KV cache follows (uploaded to the GPU, run again on the CPU),
/// so the greedy tokens are run.c's.
#[wasm_bindgen_test]
async fn switching_backends_mid_generation_keeps_the_tokens() {
    let c = generate_cases().into_iter().find(|c| c.model == "stories260K.bin" && c.temperature == 0.0 && !c.prompt.is_empty()).unwrap();
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, c.steps as f64).unwrap();
    let mut text = String::new();
    let mut n = 0;
    loop {
        // CPU for 7 steps, GPU for 11, ...: changes inside the prompt and after it
        match n % 18 {
            0 => model.use_cpu(),
            7 => use_gpu(&mut model, JsValue::UNDEFINED).await.unwrap(),
            _ => {}
        }
        let piece = if model.backend() == "cpu" { model.step().unwrap() } else { model.step_async().await.unwrap() };
        let Some(piece) = piece else { break };
        text.push_str(&piece);
        n += 1;
    }
    assert_eq!(model.tokens(), c.tokens);
    assert_eq!(text, c.stdout);
    // (a new start with the GPU on: the greedy goldens test runs case after case on one model)
}

/// `beginStep()` / `endStep()`, the halves of `stepAsync` that leave the
/// model free while the GPU works: calls in between work, a second pass
/// or an early `endStep` is refused, a pass made stale by a new start is
/// refused, and the greedy golden still comes out token for token.
#[wasm_bindgen_test]
async fn begin_and_end_step_leave_the_model_free_meanwhile() {
    use wasm_bindgen_futures::JsFuture;
    let c = generate_cases().into_iter().find(|c| c.model == "stories260K.bin" && c.temperature == 0.0).unwrap();
    let mut model = gpu_model("stories260K.bin").await;
    model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, c.steps as f64).unwrap();
    let mut text = String::new();
    // a pass made stale: started at position 3, then the generation starts again
    for _ in 0..3 {
        model.step_async().await.unwrap();
    }
    let stale = model.begin_step().unwrap();
    model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, c.steps as f64).unwrap();
    JsFuture::from(stale).await.unwrap();
    let err = message(model.end_step().unwrap_err());
    assert!(err.contains("changed while the GPU ran"), "{err}");
    let mut n = 0;
    loop {
        let pass = model.begin_step().unwrap();
        if n < 3 {
            // the model answers while the GPU works; a second pass does not start
            assert!(model.token_count() > 0);
            let err = message(model.begin_step().unwrap_err());
            assert!(err.contains("still on its way"), "{err}");
            // (nothing settles before this code awaits: the same on any GPU)
            let err = message(model.end_step().unwrap_err());
            assert!(err.contains("has not finished"), "{err}");
        }
        JsFuture::from(pass).await.unwrap();
        let Some(piece) = model.end_step().unwrap() else { break };
        text.push_str(&piece);
        n += 1;
    }
    assert_eq!(model.tokens(), c.tokens);
    assert_eq!(text, c.stdout);
    // finished: endStep says what step() says
    JsFuture::from(model.begin_step().unwrap()).await.unwrap();
    assert_eq!(model.end_step().unwrap(), None);
}

/// `useGpu()` borrows nothing while the GPU is set up: the model generates
/// on the CPU meanwhile (run.c's tokens), the GPU takes over once the
/// Promise resolved, and `useCpu()` or a second `useGpu()` before that
/// cancels the first (its Promise says so; the model stays usable).
#[wasm_bindgen_test]
async fn the_model_works_while_use_gpu_is_on_its_way() {
    use wasm_bindgen_futures::JsFuture;
    let c = generate_cases().into_iter().find(|c| c.model == "stories260K.bin" && c.temperature == 0.0).unwrap();
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, c.steps as f64).unwrap();
    let setting_up = model.use_gpu(JsValue::UNDEFINED).unwrap();
    let mut text = String::new();
    for _ in 0..10 {
        text.push_str(&model.step().unwrap().unwrap());
    }
    assert_eq!(model.backend(), "cpu", "not before the Promise resolved");
    JsFuture::from(setting_up).await.unwrap();
    assert_eq!(model.backend(), "webgpu");
    while let Some(piece) = model.step_async().await.unwrap() {
        text.push_str(&piece);
    }
    assert_eq!(model.tokens(), c.tokens);
    assert_eq!(text, c.stdout);

    // cancelled by useCpu(), and by a second useGpu()
    let first = model.use_gpu(JsValue::UNDEFINED).unwrap();
    model.use_cpu();
    let err = js_message(JsFuture::from(first).await.unwrap_err());
    assert!(err.starts_with("useGpu() was cancelled"), "{err}");
    assert_eq!(model.backend(), "cpu");
    let first = model.use_gpu(JsValue::UNDEFINED).unwrap();
    let second = model.use_gpu(JsValue::UNDEFINED).unwrap();
    assert!(js_message(JsFuture::from(first).await.unwrap_err()).starts_with("useGpu() was cancelled"));
    JsFuture::from(second).await.unwrap();
    assert_eq!(model.backend(), "webgpu");
    // the second one's GPU runs: the first 8 positions of the golden
    model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, c.steps as f64).unwrap();
    for _ in 0..8 {
        model.step_async().await.unwrap();
    }
    assert_eq!(model.tokens(), c.tokens[..9]);
}

/// A lost device rejects the step with what to do; `useCpu()` then goes on
/// with the same generation (the CPU runs the GPU's positions again).
#[wasm_bindgen_test]
async fn a_lost_device_rejects_and_the_cpu_goes_on() {
    let c = generate_cases().into_iter().find(|c| c.model == "stories260K.bin" && c.temperature == 0.0).unwrap();
    let mut model = gpu_model("stories260K.bin").await;
    model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, c.steps as f64).unwrap();
    let mut text = String::new();
    for _ in 0..20 {
        text.push_str(&model.step_async().await.unwrap().unwrap());
    }
    model.lose_gpu_for_test();
    let err = message(model.step_async().await.unwrap_err());
    assert!(err.contains("useCpu()"), "{err}");
    // still refused, with the same reason, until the caller decides
    assert_eq!(message(model.step_async().await.unwrap_err()), err);
    assert_eq!(model.backend(), "webgpu");
    model.use_cpu();
    assert_eq!(model.backend(), "cpu");
    assert!(model.gpu_adapter().is_undefined());
    while let Some(piece) = model.step().unwrap() {
        text.push_str(&piece);
    }
    assert_eq!(model.tokens(), c.tokens);
    assert_eq!(text, c.stdout);
}

/// Limits the adapter does not have: rejected, naming the limit and both
/// values; the model stays on the CPU and works.
#[wasm_bindgen_test]
async fn limits_too_small_name_the_limit_and_both_values() {
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    let options = js_sys::Object::new();
    let limits = js_sys::Object::new();
    Reflect::set(&limits, &"maxStorageBufferBindingSize".into(), &1e15.into()).unwrap();
    Reflect::set(&options, &"requiredLimits".into(), &limits).unwrap();
    let err = use_gpu(&mut model, options.into()).await.unwrap_err();
    assert!(err.contains("maxStorageBufferBindingSize") && err.contains("1,000,000,000,000,000"), "{err}");
    assert!(err.contains("run on the CPU"), "{err}");
    assert_eq!(model.backend(), "cpu");
    let c = &generate_cases()[0];
    assert_reproduces(&mut model, c, "tokens after a refused useGpu");

    let limits = js_sys::Object::new();
    Reflect::set(&limits, &"maxWarpDrive".into(), &1.into()).unwrap();
    let options = js_sys::Object::new();
    Reflect::set(&options, &"requiredLimits".into(), &limits).unwrap();
    assert!(use_gpu(&mut model, options.into()).await.unwrap_err().contains("no limit named maxWarpDrive"));
    assert_eq!(use_gpu(&mut model, 5.into()).await.unwrap_err(), "invalid argument: useGpu's options must be an object");
}

/// A browser without WebGPU (navigator.gpu hidden for this test).
#[wasm_bindgen_test]
async fn no_webgpu_says_so() {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap();
    let hide = js_sys::Object::new();
    Reflect::set(&hide, &"value".into(), &JsValue::UNDEFINED).unwrap();
    Reflect::set(&hide, &"configurable".into(), &true.into()).unwrap();
    let navigator_object: &js_sys::Object = navigator.unchecked_ref();
    js_sys::Object::define_property(navigator_object, &"gpu".into(), &hide);
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    let err = use_gpu(&mut model, JsValue::UNDEFINED).await.unwrap_err();
    let found = llama2_wasm::wasm::find_gpu().await.map_err(message);
    Reflect::delete_property(navigator_object, &"gpu".into()).unwrap();
    assert!(err.starts_with("this browser has no WebGPU"), "{err}");
    // findGpu (the page asks it first) says the same
    assert_eq!(found.unwrap_err(), err);
    let info = llama2_wasm::wasm::find_gpu().await.map_err(message).unwrap();
    // (SwiftShader here: google, swiftshader; the strings are whatever the browser says)
    assert!(Reflect::get(&info, &"architecture".into()).unwrap().is_string(), "{info:?}");
    assert_eq!(model.backend(), "cpu");
}

/// On the CPU `stepAsync` is `step`. With the inspector open the GPU runs
/// too (a greedy golden token for token), each step recording the GPU's
/// logits: `topk` is the CPU's top-k for the same position (logits within
/// the bound; the same tokens except at near-ties), attention is refused
/// as not read back, timings are the whole step only, and `inspectAt(pos)`
/// of a position the GPU ran replays it on the CPU: the attention of a
/// CPU-only run exactly.
#[wasm_bindgen_test]
async fn step_async_on_the_cpu_and_with_the_inspector() {
    let c = generate_cases().into_iter().find(|c| c.model == "stories260K.bin" && c.temperature > 0.0).unwrap();
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    assert_eq!(model.backend(), "cpu");
    assert_eq!(run_case_async(&mut model, &c).await, c.stdout);
    assert_eq!(model.tokens(), c.tokens);
    use_gpu(&mut model, JsValue::UNDEFINED).await.unwrap();
    let info = model.gpu_adapter();
    console_log!("adapter: {:?}", js_sys::JSON::stringify(&info).unwrap());
    assert!(num(&info, "bytes") > 0.0);

    let g = generate_cases().into_iter().find(|c| c.model == "stories260K.bin" && c.temperature == 0.0 && !c.prompt.is_empty()).unwrap();
    // the CPU alone, inspected, step for step beside the GPU
    let mut cpu = new_model(STORIES260K, TOK512, false).unwrap();
    cpu.set_inspect_with(true);
    model.set_inspect_with(true);
    model.start_with(&g.prompt, g.temperature, g.topp, g.seed as f64, g.steps as f64).unwrap();
    cpu.start_with(&g.prompt, g.temperature, g.topp, g.seed as f64, g.steps as f64).unwrap();
    let mut text = String::new();
    let (mut pos, mut near_ties) = (0usize, 0);
    loop {
        let piece = model.step_async().await.unwrap();
        assert_eq!(cpu.step().unwrap(), piece, "position {pos}");
        let Some(piece) = piece else { break };
        text.push_str(&piece);
        assert_eq!(model.record_backend().as_deref(), Some("webgpu"));
        assert_eq!(cpu.record_backend().as_deref(), Some("cpu"));
        let (gpu_logits, cpu_logits) = (model.logits().unwrap(), cpu.logits().unwrap());
        compare(&gpu_logits, &cpu_logits, RTOL_F32, &format!("the inspector's logits at {pos}"));
        let scale = cpu_logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let bound = ATOL + RTOL_F32 * scale;
        let (gt, ct) = (model.topk_with(10.0).unwrap(), cpu.topk_with(10.0).unwrap());
        assert_eq!(get(&gt, "backend"), "webgpu");
        for key in ["pos", "token", "next"] {
            assert_eq!(num(&gt, key), num(&ct, key), "{key} at {pos}");
        }
        assert_eq!(get(&gt, "forced"), get(&ct, "forced"));
        let (gc, cc): (js_sys::Array, js_sys::Array) = (get(&gt, "candidates").into(), get(&ct, "candidates").into());
        assert_eq!(gc.length(), 10);
        for i in 0..10 {
            let (a, b) = (gc.get(i), cc.get(i));
            let (ta, tb) = (num(&a, "token") as usize, num(&b, "token") as usize);
            assert!((num(&a, "logit") - num(&b, "logit")).abs() as f32 <= 2.0 * bound, "rank {i} at {pos}");
            if ta != tb {
                // a near-tie: on the CPU the GPU's token is as likely, within the bound
                assert!((cpu_logits[ta] - cpu_logits[tb]).abs() <= 2.0 * bound, "rank {i} at {pos}: {ta} vs {tb}");
                near_ties += 1;
            }
        }
        // what the GPU does not read back: said, not made up
        let err = message(model.attention_with(0, 0).unwrap_err());
        assert!(err.contains("not read back from the GPU") && err.contains("inspectAt"), "{err}");
        assert!(message(model.attention_all().unwrap_err()).contains("inspectAt"));
        let t = model.timings_with(None).unwrap();
        assert_eq!(get(&t, "backend"), "webgpu");
        assert!(num(&t, "total") >= 0.0 && get(&t, "attention").is_undefined());
        assert_eq!(get(&model.timings_with(Some(pos as f64)).unwrap(), "backend"), "webgpu");
        assert_eq!(get(&cpu.timings_with(None).unwrap(), "backend"), "cpu");
        pos += 1;
    }
    assert_eq!(model.tokens(), g.tokens, "the greedy golden with the inspector open");
    assert_eq!(text, g.stdout);
    console_log!("{pos} GPU records; {near_ties} near-ties in their top-10s");
    // no phases for the GPU's positions
    assert!(model.timings_all().iter().all(|v| v.is_nan()));
    assert_eq!(model.timings_all().len(), pos * timing_phases().len());
    // a replay runs on the CPU: attention as a CPU-only run has it, exactly
    for p in [pos - 1, 0, 3, pos / 2] {
        model.inspect_at_with(p as f64).unwrap();
        cpu.inspect_at_with(p as f64).unwrap();
        assert_eq!(model.record_backend().as_deref(), Some("cpu"));
        assert_eq!(model.attention_all().unwrap().to_vec(), cpu.attention_all().unwrap().to_vec(), "position {p}");
        assert_eq!(model.logits().unwrap(), cpu.logits().unwrap(), "replayed logits at {p}");
        let t = model.timings_with(None).unwrap();
        assert_eq!(get(&t, "backend"), "cpu");
        assert!(num(&t, "attention") >= 0.0);
        assert_eq!(get(&model.topk_with(3.0).unwrap(), "replayed"), true);
    }
    // and the CPU still steps with the inspector open
    model.start_with(&g.prompt, g.temperature, g.topp, g.seed as f64, g.steps as f64).unwrap();
    assert!(model.step().unwrap().is_some());
    assert_eq!(model.record_backend().as_deref(), Some("cpu"));
}

/// TIMING (run with `-- --include-ignored`): `step()` and `stepAsync()`
/// per token for stories260K and a random model of stories15M's shape. On
/// SwiftShader this is a CPU emulating a GPU: not GPU speed.
#[wasm_bindgen_test]
#[ignore]
async fn timings_step_vs_step_async() {
    for (name, checkpoint, tokenizer) in [("stories260K", STORIES260K.to_vec(), TOK512), ("random 15M", random_15m(), TOKENIZER)] {
        let mut model = new_model(&checkpoint, tokenizer, false).unwrap();
        let steps = 64.0;
        model.start_with("", 0.0, 0.9, 1.0, steps).unwrap();
        let t0 = now();
        while model.step().unwrap().is_some() {}
        let cpu = (now() - t0) / steps;
        use_gpu(&mut model, JsValue::UNDEFINED).await.unwrap();
        model.start_with("", 0.0, 0.9, 1.0, steps).unwrap();
        model.step_async().await.unwrap(); // the first submission compiles on some drivers
        let t0 = now();
        while model.step_async().await.unwrap().is_some() {}
        let gpu = (now() - t0) / (steps - 1.0);
        console_log!("{name}: step {cpu:.2} ms/token, stepAsync {gpu:.2} ms/token ({steps} positions)");
    }
}

fn now() -> f64 {
    js_sys::Date::now()
}

const TOKENIZER: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/tokenizer.bin"));

/// bench/make-checkpoints.mjs's random 15M-shaped checkpoint (legacy v0,
/// shared classifier, xorshift32 weights in [-0.05, 0.05), BOS's embedding 0).
fn random_15m() -> Vec<u8> {
    let fields: [i32; 7] = [288, 768, 6, 6, 6, 32000, 256];
    let [dim, hidden, layers, heads, _, vocab, seq_len] = fields.map(|v| v as usize);
    let floats = vocab * dim + layers * (2 * dim + 4 * dim * dim + 3 * dim * hidden) + dim + seq_len * (dim / heads);
    let mut out: Vec<u8> = fields.iter().flat_map(|v| v.to_le_bytes()).collect();
    out.reserve(floats * 4);
    let mut state: u32 = 0x9e3779b9;
    for i in 0..floats {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let v = if (dim..2 * dim).contains(&i) { 0.0 } else { (state as f64 / 4294967296.0 - 0.5) as f32 * 0.1 };
        out.extend(v.to_le_bytes());
    }
    out
}
