//! Following one number through the `Model` class (`follow(pos, stage,
//! layer, index)`), called through the JS glue as a page calls it: every
//! stage's `value` is the walkthrough's (`trace()`, whose entries carry the
//! stage `id` it takes) and `logits()`'s bit for bit (fp32, the Q8_0 file,
//! quantized on load), the explanations add up, looking changes nothing,
//! and bad arguments throw.
use js_sys::{Array, Float32Array, Int32Array, Int8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

use crate::glue::{call, greedy_tokens, n, s};
use crate::support::*;

fn floats(o: &JsValue, key: &str) -> Vec<f32> {
    get(o, key).dyn_into::<Float32Array>().unwrap_or_else(|_| panic!("{key} is not a Float32Array")).to_vec()
}

/// A JS number that came from an f32, as that f32.
fn f32_of(o: &JsValue, key: &str) -> f32 {
    let x = num(o, key);
    assert_eq!(x as f32 as f64, x, "{key} is not an f32");
    x as f32
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `follow` through the glue: layer `None` passes `undefined`.
fn follow(model: &JsValue, pos: usize, id: &str, layer: Option<f64>, index: usize) -> Result<JsValue, String> {
    let layer = layer.map_or(JsValue::UNDEFINED, n);
    call(model, "follow", &[n(pos as f64), s(id), layer, n(index as f64)])
}

/// A matmul object adds up: its running sum ends at `sum`; Q8_0's equals
/// the engine's `dot` exactly, fp32's within the SIMD kernel's rounding.
fn check_matmul(m: &JsValue, what: &str) {
    let (weights, input, products, partial) = (floats(m, "weights"), floats(m, "input"), floats(m, "products"), floats(m, "partialSums"));
    let k = input.len();
    assert!(k > 0 && weights.len() == k && products.len() == k && partial.len() == k, "{what}");
    assert_eq!(partial[k - 1], f32_of(m, "sum"), "{what}");
    let (sum, dot) = (f32_of(m, "sum"), f32_of(m, "dot"));
    let q = get(m, "quantized");
    if q.is_undefined() {
        for j in 0..k {
            assert_eq!(products[j], weights[j] * input[j], "{what} product {j}");
        }
        let scale: f32 = products.iter().map(|p| p.abs()).sum();
        assert!((sum - dot).abs() <= 1e-5 * scale + 1e-7, "{what}: sum {sum} vs dot {dot}");
    } else {
        let gs = num(&q, "groupSize") as usize;
        let (wq, xq) = (get(&q, "weightsQ").dyn_into::<Int8Array>().unwrap(), get(&q, "inputQ").dyn_into::<Int8Array>().unwrap());
        let dots = get(&q, "groupDots").dyn_into::<Int32Array>().unwrap().to_vec();
        let (wq, xq) = (wq.to_vec(), xq.to_vec());
        assert_eq!((wq.len(), xq.len(), dots.len() * gs), (k, k, k), "{what}");
        for (g, &d) in dots.iter().enumerate() {
            let exact: i32 = (g * gs..(g + 1) * gs).map(|j| wq[j] as i32 * xq[j] as i32).sum();
            assert_eq!(exact, d, "{what} group {g}");
        }
        assert_eq!(sum.to_bits(), dot.to_bits(), "{what}: Q8_0 sums in the kernel's order");
    }
}

/// The kind each stage is explained as.
fn kind_of(id: &str) -> &'static str {
    match id {
        "embedding" => "embedding",
        "attNorm" | "ffnNorm" | "finalNorm" => "rmsnorm",
        "query" | "key" | "value" | "attResidual" | "ffnResidual" | "logits" => "matmul",
        "hidden" => "swiglu",
        "attWeights" => "attention",
        "attOutput" => "attOutput",
        other => panic!("unknown stage {other}"),
    }
}

#[wasm_bindgen_test]
fn follow_gives_the_walkthrough_values_bit_for_bit() {
    for (variant, checkpoint, quantize) in [
        ("fp32", STORIES260K, false),
        ("Q8_0 file", STORIES260K_Q80, false),
        ("quantized on load", STORIES260K, true),
    ] {
        let mut rust = new_model(checkpoint, TOK512, quantize).unwrap();
        rust.set_walkthrough_with(true);
        rust.start_with("Once upon a time", 1.0, 0.9, 42.0, 20.0).unwrap();
        while rust.step().unwrap().is_some() {}
        let model: JsValue = rust.into();
        for pos in [0usize, 6, 19] {
            call(&model, "inspectAt", &[n(pos as f64)]).unwrap();
            let trace = Array::from(&call(&model, "trace", &[]).unwrap());
            let logits = call(&model, "logits", &[]).unwrap().dyn_into::<Float32Array>().unwrap().to_vec();
            assert_eq!(trace.length(), 1 + 5 * 10 + 2);
            for entry in trace.iter() {
                let id = get(&entry, "id").as_string().unwrap();
                let layer = get(&entry, "layer").as_f64();
                let (values, length) = (floats(&entry, "values"), num(&entry, "length") as usize);
                for i in (0..values.len()).chain([length - 1]) {
                    let what = format!("{variant} pos {pos} {id} layer {layer:?} index {i}");
                    let f = follow(&model, pos, &id, layer, i).unwrap_or_else(|e| panic!("{what}: {e}"));
                    let value = f32_of(&f, "value");
                    if let Some(&v) = values.get(i) {
                        assert_eq!(value.to_bits(), v.to_bits(), "{what}: not the walkthrough's value");
                    }
                    assert_eq!(get(&f, "stage").as_string().unwrap(), id);
                    assert_eq!(get(&f, "name"), get(&entry, "name"));
                    assert_eq!(get(&f, "layer").as_f64(), layer);
                    assert_eq!((num(&f, "pos"), num(&f, "index")), (pos as f64, i as f64));
                    let kind = get(&f, "kind").as_string().unwrap();
                    assert_eq!(kind, kind_of(&id), "{what}");
                    match kind.as_str() {
                        "matmul" => {
                            check_matmul(&f, &what);
                            let x_before = get(&f, "xBefore").as_f64();
                            let rope = get(&f, "rope");
                            if let Some(x) = x_before {
                                assert_eq!((x as f32 + f32_of(&f, "dot")).to_bits(), value.to_bits(), "{what}");
                            } else if !rope.is_undefined() {
                                assert_eq!(f32_of(&rope, "rotated").to_bits(), value.to_bits(), "{what}");
                                assert_eq!(f32_of(&rope, "own"), f32_of(&f, "dot"), "{what}");
                            } else {
                                assert_eq!(f32_of(&f, "dot").to_bits(), value.to_bits(), "{what}");
                            }
                            if id == "logits" {
                                assert_eq!(value.to_bits(), logits[i].to_bits(), "{what}: not logits()");
                            }
                            assert_eq!(get(&f, "quantized").is_undefined(), variant == "fp32", "{what}");
                        }
                        "swiglu" => {
                            check_matmul(&get(&f, "w1"), &what);
                            check_matmul(&get(&f, "w3"), &what);
                            let rel = (f32_of(&f, "recomputed") - value).abs() / value.abs().max(1e-6);
                            assert!(rel < 1e-5, "{what}: silu * w3 is off by {rel}");
                        }
                        "rmsnorm" => {
                            let input = floats(&f, "input");
                            assert_eq!(input[i], f32_of(&f, "x"), "{what}");
                            let (w, inv) = (f32_of(&f, "weight"), f32_of(&f, "invRms"));
                            assert!((w * (inv * input[i]) - value).abs() <= 1e-5 * value.abs() + 1e-7, "{what}");
                        }
                        "embedding" => assert_eq!(floats(&f, "row")[i].to_bits(), value.to_bits(), "{what}"),
                        "attention" => {
                            let weights = floats(&f, "weights");
                            assert_eq!((weights.len(), weights[i]), (pos + 1, value), "{what}");
                            assert!((f32_of(&f, "recomputed") - value).abs() < 1e-5, "{what}");
                        }
                        _ => {
                            let partial = floats(&f, "partialSums");
                            assert_eq!(partial[pos].to_bits(), value.to_bits(), "{what}: the weighted sum");
                        }
                    }
                }
            }
        }
    }
}

#[wasm_bindgen_test]
fn trace_ids_name_each_stage() {
    let mut model = new_model(STORIES260K, TOK512, false).unwrap();
    model.set_walkthrough_with(true);
    model.start_with("", 0.0, 0.9, 1.0, 3.0).unwrap();
    model.step().unwrap();
    let ids: Vec<(String, Option<f64>)> = model
        .trace()
        .unwrap()
        .iter()
        .map(|e| (get(&e, "id").as_string().unwrap(), get(&e, "layer").as_f64()))
        .collect();
    let layer = ["attNorm", "query", "key", "value", "attWeights", "attOutput", "attResidual", "ffnNorm", "hidden", "ffnResidual"];
    let mut want = vec![("embedding".to_string(), None)];
    for l in 0..5 {
        want.extend(layer.iter().map(|id| (id.to_string(), Some(l as f64))));
    }
    want.extend([("finalNorm".to_string(), None), ("logits".to_string(), None)]);
    assert_eq!(ids, want);
}

#[wasm_bindgen_test]
fn follow_changes_nothing_that_follows() {
    let mut plain = new_model(STORIES260K, TOK512, false).unwrap();
    let mut looked = new_model(STORIES260K, TOK512, false).unwrap();
    plain.start_with("Once upon a time", 1.0, 0.9, 7.0, 40.0).unwrap();
    looked.start_with("Once upon a time", 1.0, 0.9, 7.0, 40.0).unwrap();
    looked.set_inspect_with(true);
    let looked: JsValue = looked.into();
    for i in 0usize.. {
        let (a, b) = (plain.step().unwrap(), call(&looked, "step", &[]).unwrap());
        assert_eq!(a, b.as_string(), "step {i}");
        if a.is_none() {
            break;
        }
        if i % 6 == 5 {
            let before = call(&looked, "logits", &[]).unwrap().dyn_into::<Float32Array>().unwrap().to_vec();
            follow(&looked, i, "hidden", Some(2.0), 7).unwrap();
            follow(&looked, i / 2, "logits", None, 100).unwrap();
            let after = call(&looked, "logits", &[]).unwrap().dyn_into::<Float32Array>().unwrap().to_vec();
            assert_eq!(bits(&after), bits(&before), "the inspector's record changed");
        }
    }
    let tokens = call(&looked, "tokens", &[]).unwrap().dyn_into::<js_sys::Uint32Array>().unwrap().to_vec();
    assert_eq!(plain.tokens(), tokens);
}

#[wasm_bindgen_test]
fn follow_arguments_are_checked() {
    let model: JsValue = new_model(STORIES260K, TOK512, false).unwrap().into();
    let msg = call(&model, "follow", &[n(0.0), s("logits"), JsValue::UNDEFINED, n(0.0)]).unwrap_err();
    assert!(msg.contains("position 0 has not been generated yet, nor has any other (generate first)"), "{msg}");
    let want = greedy_tokens(&model);
    let u = JsValue::UNDEFINED;
    for (args, want_msg) in [
        (vec![u.clone(), s("logits"), u.clone(), n(0.0)], "position must be a number, not undefined"),
        (vec![n(-1.0), s("logits"), u.clone(), n(0.0)], "position -1 is not a whole number"),
        (vec![n(4294967296.0), s("logits"), u.clone(), n(0.0)], "position 4294967296 has not been generated yet: positions 0 to 23"),
        (vec![n(24.0), s("logits"), u.clone(), n(0.0)], "position 24 has not been generated yet: positions 0 to 23"),
        (vec![n(0.0), n(3.0), u.clone(), n(0.0)], "stage must be a string, not the number 3"),
        (vec![n(0.0), u.clone(), u.clone(), n(0.0)], "stage must be a string, not undefined"),
        (vec![n(0.0), s("xb"), u.clone(), n(0.0)], "no stage \"xb\": the stages are embedding, attNorm, query"),
        (vec![n(0.0), s("Logits"), u.clone(), n(0.0)], "no stage \"Logits\""),
        (vec![n(0.0), s("query"), u.clone(), n(0.0)], "stage query is inside each layer: give a layer, 0 to 4"),
        (vec![n(0.0), s("query"), JsValue::NULL, n(0.0)], "stage query is inside each layer"),
        (vec![n(0.0), s("logits"), n(0.0), n(0.0)], "stage logits is outside the layers: give no layer"),
        (vec![n(0.0), s("embedding"), n(4294967296.0), n(0.0)], "stage embedding is outside the layers: give no layer"),
        (vec![n(0.0), s("query"), n(5.0), n(0.0)], "no layer 5: this model has layers 0 to 4"),
        (vec![n(0.0), s("query"), n(4294967296.0), n(0.0)], "no layer 4294967296: this model has layers 0 to 4"),
        (vec![n(0.0), s("query"), n(1e300), n(0.0)], ": this model has layers 0 to 4"),
        (vec![n(0.0), s("query"), n(-1.0), n(0.0)], "layer -1 is not a whole number"),
        (vec![n(0.0), s("query"), n(0.5), n(0.0)], "layer 0.5 is not a whole number"),
        (vec![n(0.0), s("query"), s("0"), n(0.0)], "layer must be a number, not a string"),
        (vec![n(0.0), s("query"), n(0.0), n(64.0)], "index 64 is outside query (q, 64 values (dim,)): indices are 0 to 63"),
        (vec![n(3.0), s("attWeights"), n(0.0), n(4.0)], "index 4 is outside attWeights (att, 4 values (pos + 1,)): indices are 0 to 3"),
        (vec![n(0.0), s("logits"), u.clone(), n(4294967296.0)], "index 4294967296 is outside logits (logits, 512 values (vocab_size,))"),
        (vec![n(0.0), s("logits"), u.clone(), n(f64::INFINITY)], "index Infinity is not a whole number"),
        (vec![n(0.0), s("logits"), u.clone(), n(f64::NAN)], "index NaN is not a whole number"),
        (vec![n(0.0), s("logits"), u.clone(), u.clone()], "index must be a number, not undefined"),
        (vec![n(0.0), s("logits")], "index must be a number, not undefined"),
        // a wrong layer is said before a wrong index
        (vec![n(0.0), s("query"), u.clone(), n(1e9)], "stage query is inside each layer"),
    ] {
        let msg = call(&model, "follow", &args).expect_err(want_msg);
        assert!(msg.contains(want_msg), "follow({args:?}): {msg}");
        assert!(!msg.contains("unreachable") && !msg.contains("recursive use"), "{msg}");
    }
    // the last of each range is fine; no inspector needed
    assert!(call(&model, "follow", &[n(23.0), s("attWeights"), n(4.0), n(23.0)]).is_ok());
    assert!(call(&model, "follow", &[n(23.0), s("logits"), JsValue::NULL, n(511.0)]).is_ok());
    assert_eq!(get(&model, "inspect").as_bool(), Some(false));
    assert_eq!(greedy_tokens(&model), want, "the model still generates as before");
}
