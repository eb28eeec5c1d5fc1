//! The JS boundary: every export checks its JavaScript arguments.
//!
//! These call the exports through their JavaScript glue (the class's own
//! methods, `Reflect.apply`), as a page does: what matters is that no JS
//! value can make the glue or the engine trap, and that a refused call leaves
//! the model working. (A trap here would kill this test instance: the tests
//! after it fail too.)
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

use crate::glue::{assign, buffer, call, construct, greedy_tokens, n, s};
use crate::support::*;

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
        ("extend", vec![s("10")], "steps must be a number, not a string"),
        ("extend", vec![], "steps must be a number, not undefined"),
        ("extend", vec![n(f64::NAN)], "steps is NaN; use 0 for the model's seq_len"),
        ("extend", vec![JsValue::NULL], "steps must be a number, not null"),
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
        ("follow", vec![n(0.0), symbol.clone(), JsValue::UNDEFINED, n(0.0)], "stage must be a string, not a symbol"),
        ("follow", vec![n(0.0), s("query"), s("1"), n(0.0)], "layer must be a number, not a string"),
        ("follow", vec![n(0.0), s("logits"), JsValue::NULL, n(4294967297.0)], "index 4294967297 is outside logits"),
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
    // and continues through the glue: 24 positions, then 5 more, are a run of 29
    assert_eq!(get(&model, "running").as_bool(), Some(false));
    call(&model, "extend", &[n(5.0)]).unwrap();
    assert_eq!(get(&model, "running").as_bool(), Some(true));
    while !call(&model, "step", &[]).unwrap().is_undefined() {}
    let continued: js_sys::Uint32Array = call(&model, "tokens", &[]).unwrap().dyn_into().unwrap();
    call(&model, "start", &[s("Once upon a time"), n(0.0), n(0.9), n(1.0), n(29.0)]).unwrap();
    while !call(&model, "step", &[]).unwrap().is_undefined() {}
    let whole: js_sys::Uint32Array = call(&model, "tokens", &[]).unwrap().dyn_into().unwrap();
    assert_eq!((continued.length(), continued.to_vec()), (30, whole.to_vec()));

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
