//! The logit lens through the `Model` class (`lens(pos, k)`): its last
//! layer and `final` are `logits()` bit for bit (fp32, the Q8_0 file,
//! quantized on load), each layer a distribution; looking changes nothing;
//! bad arguments throw through the JS glue.
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

use crate::glue::{call, greedy_tokens, n, s};
use crate::support::*;

/// The candidates of a lens entry: (token, prob, logit) in order.
fn candidates(list: &JsValue) -> Vec<(u32, f64, f32)> {
    js_sys::Array::from(list)
        .iter()
        .map(|c| {
            assert!(get(&c, "text").is_string());
            (num(&c, "token") as u32, num(&c, "prob"), num(&c, "logit") as f32)
        })
        .collect()
}

/// (vocab_size,) logits by token id from a list of every token.
fn by_token(list: &[(u32, f64, f32)]) -> Vec<u32> {
    let mut logits = vec![f32::NAN.to_bits(); list.len()];
    for &(token, _, logit) in list {
        logits[token as usize] = logit.to_bits();
    }
    logits
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[wasm_bindgen_test]
fn lens_last_layer_is_the_logits_bit_for_bit() {
    for (variant, checkpoint, quantize) in [
        ("fp32", STORIES260K, false),
        ("Q8_0 file", STORIES260K_Q80, false),
        ("quantized on load", STORIES260K, true),
    ] {
        for (temperature, seed) in [(0.0, 1.0), (1.0, 42.0)] {
            let what = format!("{variant} t={temperature}");
            let mut model = new_model(checkpoint, TOK512, quantize).unwrap();
            model.set_inspect_with(true);
            model.start_with("Once upon a time", temperature, 0.9, seed, 30.0).unwrap();
            let mut live = Vec::new();
            while model.step().unwrap().is_some() {
                live.push(model.logits().unwrap());
            }
            assert_eq!(live.len(), 30);
            for pos in [0usize, 4, 15, 29] {
                let lens = model.lens_with(pos as f64, 1e12).unwrap();
                assert_eq!((num(&lens, "pos"), num(&lens, "token")), (pos as f64, model.tokens()[pos] as f64));
                assert_eq!(num(&lens, "next"), model.tokens()[pos + 1] as f64);
                let layers = js_sys::Array::from(&get(&lens, "layers"));
                assert_eq!(layers.length(), 5, "{what}");
                let last = candidates(&get(&layers.get(4), "candidates"));
                assert_eq!(last.len(), 512);
                assert_eq!(by_token(&last), bits(&live[pos]), "{what} pos {pos}: the last layer is not logits()");
                let fin = candidates(&get(&lens, "final"));
                assert_eq!(fin, last, "{what} pos {pos}: final differs from the last layer");
                for layer in layers.iter() {
                    let list = candidates(&get(&layer, "candidates"));
                    let sum: f64 = list.iter().map(|c| c.1).sum();
                    assert!((sum - 1.0).abs() < 1e-4, "{what} pos {pos}: layer sums to {sum}");
                    let rank = num(&layer, "nextRank") as usize;
                    assert_eq!(list[rank - 1].0 as f64, num(&lens, "next"));
                    assert_eq!(list[rank - 1].1, num(&layer, "nextProb"));
                }
                // five per layer: the head of the full list
                let top5 = model.lens_with(pos as f64, 5.0).unwrap();
                let first = candidates(&get(&js_sys::Array::from(&get(&top5, "layers")).get(0), "candidates"));
                assert_eq!(first[..], candidates(&get(&layers.get(0), "candidates"))[..5]);
                // what inspectAt(pos) then logits() gives
                model.inspect_at_with(pos as f64).unwrap();
                assert_eq!(bits(&model.logits().unwrap()), bits(&live[pos]));
            }
        }
    }
}

#[wasm_bindgen_test]
fn looking_changes_nothing_that_follows() {
    let mut plain = new_model(STORIES260K, TOK512, false).unwrap();
    let mut looked = new_model(STORIES260K, TOK512, false).unwrap();
    plain.start_with("Once upon a time", 1.0, 0.9, 7.0, 60.0).unwrap();
    looked.start_with("Once upon a time", 1.0, 0.9, 7.0, 60.0).unwrap();
    looked.set_inspect_with(true);
    for i in 0.. {
        let (a, b) = (plain.step().unwrap(), looked.step().unwrap());
        assert_eq!(a, b, "step {i}");
        if b.is_none() {
            break;
        }
        if i % 6 == 5 {
            let (at, logits) = (looked.inspected_position(), looked.logits().unwrap());
            looked.lens_with(i as f64, 5.0).unwrap();
            looked.lens_with((i / 2) as f64, 3.0).unwrap();
            // the inspector's record is the one before
            assert_eq!((looked.inspected_position(), looked.logits().unwrap()), (at, logits));
        }
    }
    assert_eq!(plain.tokens(), looked.tokens());
}

#[wasm_bindgen_test]
fn lens_arguments_are_checked() {
    let model: JsValue = new_model(STORIES260K, TOK512, false).unwrap().into();
    let msg = call(&model, "lens", &[n(0.0), n(5.0)]).unwrap_err();
    assert!(msg.contains("position 0 has not been generated yet, nor has any other (generate first)"), "{msg}");
    let want = greedy_tokens(&model);
    for (args, want_msg) in [
        (vec![JsValue::UNDEFINED, n(5.0)], "position must be a number, not undefined"),
        (vec![s("0"), n(5.0)], "position must be a number, not a string"),
        (vec![n(-1.0), n(5.0)], "position -1 is not a whole number"),
        (vec![n(f64::NAN), n(5.0)], "position NaN is not a whole number"),
        (vec![n(4294967296.0), n(5.0)], "position 4294967296 has not been generated yet: positions 0 to 23"),
        (vec![n(24.0), n(5.0)], "position 24 has not been generated yet: positions 0 to 23"),
        (vec![n(0.0), s("5")], "k must be a number, not a string"),
        (vec![n(0.0), JsValue::NULL], "k must be a number, not null"),
        (vec![n(0.0), n(2.5)], "k 2.5 is not a whole number"),
        (vec![n(0.0)], "k must be a number, not undefined"),
    ] {
        let msg = call(&model, "lens", &args).expect_err(want_msg);
        assert!(msg.contains(want_msg), "lens({args:?}): {msg}");
        assert!(!msg.contains("unreachable") && !msg.contains("recursive use"), "{msg}");
    }
    // k = 0 and a huge k: empty lists, the whole vocabulary; no inspector needed
    let none = call(&model, "lens", &[n(23.0), n(0.0)]).unwrap();
    assert_eq!(js_sys::Array::from(&get(&none, "final")).length(), 0);
    let all = call(&model, "lens", &[n(23.0), n(1e300)]).unwrap();
    assert_eq!(js_sys::Array::from(&get(&all, "final")).length(), 512);
    assert_eq!(get(&model, "inspect").as_bool(), Some(false));
    assert_eq!(greedy_tokens(&model), want, "the model still generates as before");
}
