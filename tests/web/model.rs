//! Generation through the `Model` class: run.c's golden outputs (also
//! continued with `extend`), the config, readable errors, seeds, Q8_0 models.
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

use crate::both;
use crate::support::*;

#[wasm_bindgen_test]
fn generation_matches_run_c_through_the_model_class() {
    let mut n = 0;
    for c in generate_cases().iter().filter(|c| !c.model.contains("_q80")) {
        let mut model = new_model(model_file(&c.model), model_file(&c.tokenizer), false).unwrap();
        assert_reproduces(&mut model, c, "tokens");
        n += 1;
    }
    assert!(n >= 8, "only {n} golden cases ran");
}

/// `start` with fewer steps, run to the end, then `extend` with the rest:
/// run.c's tokens and text, split inside the prompt, at its end and in the
/// middle of the story.
#[wasm_bindgen_test]
fn a_continued_generation_matches_run_c_through_the_model_class() {
    let mut n = 0;
    for c in generate_cases().iter().filter(|c| !c.model.contains("_q80")) {
        let mut model = new_model(model_file(&c.model), model_file(&c.tokenizer), false).unwrap();
        let prompt_len = model.encode_with(&c.prompt).unwrap().len() as f64;
        let positions = (c.tokens.len() - 1) as f64;
        for a in [prompt_len - 1.0, prompt_len, (positions / 2.0).floor()].into_iter().filter(|&a| a >= 1.0) {
            model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, a).unwrap();
            let mut text = String::new();
            while let Some(piece) = model.step().unwrap() {
                text.push_str(&piece);
            }
            assert!(!model.running() && model.can_extend());
            model.extend_with(c.steps as f64 - a).unwrap();
            assert!(model.running());
            while let Some(piece) = model.step().unwrap() {
                text.push_str(&piece);
            }
            assert_eq!(model.tokens(), c.tokens, "split at {a}: {c:?}");
            assert_eq!(text, c.stdout, "split at {a}: {c:?}");
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} splits ran");
}

/// What cannot continue throws why (and `canExtend` is false), and the
/// model goes on working.
#[wasm_bindgen_test]
fn extend_says_why_it_cannot_continue() {
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    assert!(!model.can_extend());
    assert_eq!(message(model.extend_with(10.0).unwrap_err()), "nothing to continue: generate first");
    let ended = generate_cases().into_iter().find(|c| c.tokens.last() == Some(&1) && c.steps as usize + 1 > c.tokens.len()).unwrap();
    run_case(&mut model, &ended);
    assert!(!model.can_extend());
    assert_eq!(
        message(model.extend_with(10.0).unwrap_err()),
        "the story ended (the model produced its end token): start a new one"
    );
    model.start_with(&"a ".repeat(600), 0.0, 0.9, 1.0, 0.0).unwrap();
    while model.step().unwrap().is_some() {}
    assert!(!model.can_extend());
    assert_eq!(
        message(model.extend_with(0.0).unwrap_err()),
        "the generation reached seq_len (512 positions): nothing more fits"
    );
    model.start_chat_with("", 0.0, 0.9, 1.0, 0.0).unwrap();
    assert!(!model.can_extend());
    assert!(message(model.extend_with(10.0).unwrap_err()).contains("chatUser"));
    let c = &generate_cases()[1];
    assert_reproduces(&mut model, c, "tokens after the refused calls");
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

/// Q8_0 through the Model class with the SIMD int8 kernel: quantize-on-load
/// of the fp32 file gives the same model, and runq.c's greedy tokens are
/// followed up to near-ties (exact parity is the scalar kernels', natively).
#[wasm_bindgen_test]
fn q80_models_run_in_the_browser() {
    for c in generate_cases().iter().filter(|c| c.model.contains("_q80")) {
        let mut file = new_model(STORIES260K_Q80, TOK512, false).unwrap();
        let mut on_load = new_model(STORIES260K, TOK512, true).unwrap();
        run_case(&mut file, c);
        run_case(&mut on_load, c);
        assert_eq!(file.tokens(), on_load.tokens());
        if c.temperature == 0.0 {
            // fed runq.c's greedy tokens, our argmax differs only at near-ties
            let prompt = new_model(STORIES260K_Q80, TOK512, false).unwrap().encode_with(&c.prompt).unwrap().len();
            both::q80_teacher_forced(STORIES260K_Q80, &c.tokens, prompt);
        }
        let cfg = on_load.config().unwrap();
        let get = |k: &str| js_sys::Reflect::get(&cfg, &JsValue::from_str(k)).unwrap();
        assert_eq!(get("group_size").as_f64(), Some(4.0));
        assert_eq!(get("quantized_on_load").as_bool(), Some(true));
        assert_eq!(get("weight_bytes").as_f64(), Some(521_472.0));
    }
}
