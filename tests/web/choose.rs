//! Choosing the next token (`forceNext`) and taking it back (`undo`)
//! through the JS glue, as a page calls them: the sampler's own pick chosen
//! at every step is run.c's run; undo then the same choice gives the same
//! logits bit for bit; bad arguments and wrong moments throw.
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

use crate::glue::{assign, call, greedy_tokens, n, s};
use crate::support::*;

fn tokens(model: &JsValue) -> Vec<u32> {
    call(model, "tokens", &[]).unwrap().unchecked_into::<js_sys::Uint32Array>().to_vec()
}

fn flag(model: &JsValue, key: &str) -> bool {
    get(model, key).as_bool().unwrap_or_else(|| panic!("{key} is not a boolean"))
}

fn logits(model: &JsValue) -> Vec<u32> {
    let l: js_sys::Float32Array = call(model, "logits", &[]).unwrap().unchecked_into();
    l.to_vec().iter().map(|x| x.to_bits()).collect()
}

#[wasm_bindgen_test]
fn choosing_the_samplers_pick_reproduces_run_c() {
    for c in generate_cases().iter().filter(|c| c.model == "stories260K.bin") {
        let model: JsValue = new_model(STORIES260K, TOK512, false).unwrap().into();
        let args = [s(&c.prompt), n(c.temperature), n(c.topp), n(c.seed as f64), n(c.steps as f64)];
        call(&model, "start", &args).unwrap();
        let mut text = String::new();
        loop {
            if flag(&model, "canForceNext") {
                let next = c.tokens[tokens(&model).len()];
                call(&model, "forceNext", &[n(next as f64)]).unwrap();
            }
            let piece = call(&model, "step", &[]).unwrap();
            match piece.as_string() {
                Some(p) => text.push_str(&p),
                None => break,
            }
        }
        assert_eq!(tokens(&model), c.tokens, "{c:?}");
        assert_eq!(text, c.stdout);
    }
}

#[wasm_bindgen_test]
fn undo_then_the_same_choice_gives_the_same_logits() {
    let model: JsValue = new_model(STORIES260K, TOK512, false).unwrap().into();
    assign(&model, "inspect", &JsValue::TRUE).unwrap();
    call(&model, "start", &[s("Once upon a time"), n(1.0), n(0.9), n(5.0), n(40.0)]).unwrap();
    let (mut texts, mut live) = (vec![String::new()], Vec::new());
    while let Some(piece) = call(&model, "step", &[]).unwrap().as_string() {
        texts.push(format!("{}{piece}", texts.last().unwrap()));
        live.push(logits(&model));
    }
    let run = tokens(&model);
    assert_eq!(run.len(), 41);
    assert!(!flag(&model, "canForceNext") && flag(&model, "canUndo"));
    // back to the end of the prompt (5 tokens)
    for len in (5..41).rev() {
        let text = call(&model, "undo", &[]).unwrap().as_string().unwrap();
        assert_eq!(text, texts[len - 1], "undo to {len} tokens");
        assert_eq!(tokens(&model), run[..len]);
        assert!(flag(&model, "canForceNext") && flag(&model, "running"));
    }
    assert!(!flag(&model, "canUndo"));
    let msg = call(&model, "undo", &[]).unwrap_err();
    assert!(msg.contains("nothing to undo: every token so far is the prompt's"), "{msg}");
    // done again by choosing the same tokens: the same logits, recorded as chosen
    let mut text = texts[4].clone();
    for pos in 4..40 {
        call(&model, "forceNext", &[n(run[pos + 1] as f64)]).unwrap();
        text.push_str(&call(&model, "step", &[]).unwrap().as_string().unwrap());
        assert_eq!(logits(&model), live[pos], "position {pos}");
        let top = call(&model, "topk", &[n(3.0)]).unwrap();
        assert_eq!(get(&top, "chosen").as_bool(), Some(true));
        assert_eq!(num(&top, "next"), run[pos + 1] as f64);
    }
    assert_eq!((tokens(&model), &text), (run.clone(), texts.last().unwrap()));
    // undo, then step(): the random numbers were put back, so the same token comes
    call(&model, "undo", &[]).unwrap();
    let top = call(&model, "topk", &[n(3.0)]).unwrap();
    assert!(get(&top, "next").is_undefined(), "after undo the record knows no next token");
    call(&model, "step", &[]).unwrap();
    assert_eq!(tokens(&model), run);
    let top = call(&model, "topk", &[n(3.0)]).unwrap();
    assert_eq!(get(&top, "chosen").as_bool(), Some(false));
}

#[wasm_bindgen_test]
fn force_next_and_undo_refuse_with_their_messages() {
    let model: JsValue = new_model(STORIES260K, TOK512, false).unwrap().into();
    let refused = |method: &str, args: &[JsValue], want: &str| {
        let msg = call(&model, method, args).expect_err(want);
        assert!(msg.contains(want), "{method}({args:?}): {msg}");
        assert!(!msg.contains("unreachable") && !msg.contains("recursive use"), "{msg}");
    };
    refused("forceNext", &[n(5.0)], "nothing to generate: call start() first");
    refused("undo", &[], "nothing to undo: generate first");
    assert!(!flag(&model, "canForceNext") && !flag(&model, "canUndo"));
    let symbol: JsValue = js_sys::Symbol::for_("x").into();
    for (arg, want) in [
        (n(512.0), "token 512 is not in the vocabulary: tokens are whole numbers 0-511"),
        (n(4294967296.0), "token 4294967296 is not in the vocabulary"),
        (n(-1.0), "token -1 is not in the vocabulary"),
        (n(1.5), "token 1.5 is not in the vocabulary"),
        (n(f64::NAN), "token NaN is not in the vocabulary"),
        (s("5"), "token must be a number, not a string"),
        (JsValue::UNDEFINED, "token must be a number, not undefined"),
        (JsValue::NULL, "token must be a number, not null"),
        (symbol, "token must be a number, not a symbol"),
    ] {
        refused("forceNext", &[arg], want);
    }
    call(&model, "start", &[s("Once upon a time"), n(0.0), n(0.9), n(1.0), n(24.0)]).unwrap();
    refused("forceNext", &[n(5.0)], "the next token is still the prompt's (token 1 of 5, BOS included)");
    refused("undo", &[], "nothing to undo: every token so far is the prompt's");
    while !call(&model, "step", &[]).unwrap().is_undefined() {}
    refused("forceNext", &[n(5.0)], "the generation has used its steps: extend it first");
    call(&model, "startChat", &[s(""), n(0.0), n(0.9), n(1.0), n(0.0)]).unwrap();
    refused("forceNext", &[n(5.0)], "choosing the next token works in a generation, not a chat");
    refused("undo", &[], "undo works in a generation, not a chat");
    // none of it hurt the model
    assert_eq!(greedy_tokens(&model).len(), 25);
    let want = greedy_tokens(&model);
    call(&model, "undo", &[]).unwrap();
    call(&model, "step", &[]).unwrap();
    assert_eq!(tokens(&model), want);
}
