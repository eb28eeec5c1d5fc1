//! Following one number (`Llama::follow`): every stage's `value` is the
//! forward pass's own number bit for bit (the walkthrough's first values,
//! the logits, the attention rows, the KV cache, and every other element
//! through the next stage's copy of its input); each explanation adds up
//! (in-order sums within rounding of the SIMD kernels' result, exactly
//! with the scalar kernels and for Q8_0); looking changes nothing; bad
//! arguments are refused with their messages.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::HashMap;
use std::time::Instant;

use common::data;
use llama2_wasm::inspect::{native_clock, Follow, Kind, Matmul, Stage, RMS_EPS};
use llama2_wasm::kernels::Kernels;
use llama2_wasm::{Checkpoint, Llama, SamplerParams, Tokenizer};

/// stories260K as fp32, as the Q8_0 file, and quantized on load.
fn variants() -> Vec<(&'static str, Llama)> {
    let tok = || Tokenizer::from_bytes(&data("tok512.bin")).unwrap();
    let fp32 = || Checkpoint::from_bytes(&data("stories260K.bin")).unwrap();
    vec![
        ("fp32", Llama::new(fp32(), tok(), false).unwrap()),
        ("Q8_0 file", Llama::new(Checkpoint::from_bytes(&data("stories260K_q80.bin")).unwrap(), tok(), false).unwrap()),
        ("quantized on load", Llama::new(fp32(), tok(), true).unwrap()),
    ]
}

fn greedy() -> SamplerParams {
    SamplerParams::new(0.0, 0.9, 1).unwrap()
}

/// Generate `steps` positions (sampled, so later positions attend over varied text).
fn generate(llama: &mut Llama, steps: i64) {
    llama.start("Once upon a time", SamplerParams::new(1.0, 0.9, 42).unwrap(), steps).unwrap();
    while llama.step().unwrap().is_some() {}
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every stage of the walkthrough in order, with its layer.
fn stages(n_layers: usize) -> Vec<(Stage, Option<usize>)> {
    let mut all = vec![(Stage::Embedding, None)];
    for l in 0..n_layers {
        all.extend(Stage::ALL.iter().filter(|s| s.in_layer()).map(|&s| (s, Some(l))));
    }
    all.extend([(Stage::FinalNorm, None), (Stage::Logits, None)]);
    all
}

fn matmul(f: &Follow) -> &Matmul {
    match &f.kind {
        Kind::Matmul(m) => m,
        other => panic!("{:?}: not a matmul: {}", f.stage, other.name()),
    }
}

/// `a` and `b` equal, bit for bit when `exact`, else within `tol`.
fn close(a: f32, b: f32, exact: bool, tol: f32, what: &str) {
    if exact {
        assert_eq!(a.to_bits(), b.to_bits(), "{what}: {a} != {b}");
    } else {
        assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
    }
}

/// A matmul's explanation adds up: the shapes, each product, the running
/// sum, and the sum against the forward pass's `dot` (exactly for Q8_0 and
/// the scalar kernels; within the rounding of another order for SIMD fp32).
fn check_matmul(m: &Matmul, scalar: bool, what: &str) {
    let n = m.input.len();
    assert!(n > 0 && m.weights.len() == n && m.products.len() == n && m.partial_sums.len() == n, "{what}");
    assert_eq!(m.sum.to_bits(), m.partial_sums[n - 1].to_bits(), "{what}");
    match &m.quantized {
        None => {
            let mut val = 0.0f32;
            for j in 0..n {
                assert_eq!(m.products[j].to_bits(), (m.weights[j] * m.input[j]).to_bits(), "{what} product {j}");
                val += m.products[j];
                assert_eq!(val.to_bits(), m.partial_sums[j].to_bits(), "{what} partial sum {j}");
            }
            let scale: f32 = m.products.iter().map(|p| p.abs()).sum();
            close(m.sum, m.dot, scalar, 1e-5 * scale + 1e-7, &format!("{what}: in-order sum vs the engine's"));
        }
        Some(q) => {
            let gs = q.group_size;
            assert!(q.weights_q.len() == n && q.input_q.len() == n && q.group_dots.len() == n / gs, "{what}");
            assert!(q.weight_scales.len() == n / gs && q.input_scales.len() == n / gs, "{what}");
            // the row dequantized; the input quantized to within half a step
            let mut val = 0.0f32;
            for g in 0..n / gs {
                let (ws, xs) = (q.weight_scales[g], q.input_scales[g]);
                let mut ival = 0;
                for j in g * gs..(g + 1) * gs {
                    assert_eq!(m.weights[j], q.weights_q[j] as f32 * ws, "{what} weight {j}");
                    assert!((q.input_q[j] as f32 * xs - m.input[j]).abs() <= xs * 0.5001, "{what} input {j}");
                    ival += q.weights_q[j] as i32 * q.input_q[j] as i32;
                    assert_eq!(m.products[j], (q.weights_q[j] as i32 * q.input_q[j] as i32) as f32 * ws * xs);
                }
                assert_eq!(ival, q.group_dots[g], "{what} group {g}");
                // runq.c's float total, group by group: the partial sum at each group's end
                val += ival as f32 * ws * xs;
                assert_eq!(val.to_bits(), m.partial_sums[(g + 1) * gs - 1].to_bits(), "{what} group {g}");
            }
            // the kernel's own order: its number exactly, with either kernel set
            assert_eq!(m.sum.to_bits(), m.dot.to_bits(), "{what}: Q8_0 in-order sum vs the engine's");
        }
    }
}

/// The explanation of `f` is consistent with itself and its value (with
/// run.c's arithmetic: exact when `scalar`).
fn check_explanation(f: &Follow, scalar: bool) {
    let what = format!("{:?} layer {:?} index {}", f.stage, f.layer, f.index);
    let i = f.index;
    match &f.kind {
        Kind::Embedding(e) => {
            assert_eq!(f.stage, Stage::Embedding);
            assert_eq!(e.token, f.token);
            assert_eq!(e.row[i].to_bits(), f.value.to_bits(), "{what}");
            if let Some((q, s)) = e.quantized {
                assert_eq!((q as f32 * s).to_bits(), f.value.to_bits(), "{what}");
            }
        }
        Kind::Rmsnorm(r) => {
            assert!(matches!(f.stage, Stage::AttNorm | Stage::FfnNorm | Stage::FinalNorm));
            assert_eq!(r.x.to_bits(), r.input[i].to_bits());
            let ss = r.input.iter().fold(0.0f32, |s, x| s + x * x);
            assert_eq!(ss.to_bits(), r.sum_squares.to_bits(), "{what}");
            assert_eq!(r.mean_square, r.sum_squares / r.input.len() as f32);
            assert_eq!((r.eps, r.rms, r.inv_rms), (RMS_EPS, (r.mean_square + RMS_EPS).sqrt(), 1.0 / r.rms));
            close(r.recomputed, f.value, scalar, 1e-5 * f.value.abs() + 1e-7, &format!("{what}: run.c's formula"));
        }
        Kind::Matmul(m) => {
            check_matmul(m, scalar, &what);
            assert_eq!(m.row, i);
            let expected = match f.stage {
                Stage::Query | Stage::Key | Stage::Value => &["wq", "wk", "wv"][..],
                Stage::AttResidual => &["wo"],
                Stage::FfnResidual => &["w2"],
                Stage::Logits => &["wcls"],
                other => panic!("{other:?} is not a matmul"),
            };
            assert!(expected.contains(&m.matrix), "{what}: {}", m.matrix);
            assert_eq!(m.x_before.is_some(), matches!(f.stage, Stage::AttResidual | Stage::FfnResidual), "{what}");
            assert_eq!(m.rope.is_some(), matches!(f.stage, Stage::Query | Stage::Key), "{what}");
            if let Some(x) = m.x_before {
                assert_eq!((x + m.dot).to_bits(), f.value.to_bits(), "{what}: x_before + dot");
            } else if let Some(r) = &m.rope {
                assert_eq!(r.own.to_bits(), m.dot.to_bits(), "{what}");
                assert_eq!(r.partner_index, i ^ 1);
                assert_eq!(r.rotated.to_bits(), f.value.to_bits(), "{what}: RoPE");
                // a rotation keeps the pair's length (to rounding)
                assert!((r.cos * r.cos + r.sin * r.sin - 1.0).abs() < 1e-5);
                let freq = 1.0 / 10000f32.powf((2 * r.pair) as f32 / 8.0); // head_size 8
                assert!((r.freq - freq).abs() <= 1e-6 * freq, "{what}: RoPE frequency");
            } else {
                assert_eq!(m.dot.to_bits(), f.value.to_bits(), "{what}: dot is the value");
            }
        }
        Kind::Swiglu(s) => {
            assert_eq!(f.stage, Stage::Hidden);
            assert_eq!((s.w1.matrix, s.w3.matrix, s.w1.row, s.w3.row), ("w1", "w3", i, i));
            check_matmul(&s.w1, scalar, &format!("{what} w1"));
            check_matmul(&s.w3, scalar, &format!("{what} w3"));
            assert_eq!(bits(&s.w1.input), bits(&s.w3.input));
            assert_eq!(s.silu, s.w1.dot * s.sigmoid);
            close(s.recomputed, f.value, scalar, 1e-5 * f.value.abs() + 1e-7, &format!("{what}: silu * w3"));
        }
        Kind::Attention(a) => {
            assert_eq!(f.stage, Stage::AttWeights);
            assert_eq!(a.head, 0);
            assert_eq!(a.weights.len(), f.pos + 1);
            assert_eq!(a.weights[i].to_bits(), f.value.to_bits());
            let dot = *a.partial_sums.last().unwrap();
            close(dot / a.scale, a.scores[i], scalar, 1e-5 * a.scores[i].abs().max(1.0), &format!("{what}: q.k / sqrt(head_size)"));
            close(a.recomputed, f.value, scalar, 1e-5, &format!("{what}: softmax"));
            assert!((a.weights.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        Kind::AttOutput(o) => {
            assert_eq!(f.stage, Stage::AttOutput);
            assert_eq!((o.head, o.offset), (i / 8, i % 8));
            assert_eq!(o.kv_head, o.head / 2); // stories260K: 8 heads share 4 kv heads
            assert_eq!(o.weights.len(), f.pos + 1);
            let mut sum = 0.0f32;
            for t in 0..=f.pos {
                assert_eq!(o.products[t], o.weights[t] * o.values[t]);
                sum += o.products[t];
                assert_eq!(sum.to_bits(), o.partial_sums[t].to_bits());
            }
            // both kernel sets add the terms in this order
            assert_eq!(sum.to_bits(), f.value.to_bits(), "{what}: the weighted sum");
        }
    }
}

/// Every stage's whole vector at `pos`, assembled from the follows of
/// element 0: each stage's vector is the next stage's input (or the
/// recorded logits, attention and KV cache).
fn vectors(llama: &mut Llama, pos: usize) -> HashMap<(Stage, Option<usize>), Vec<f32>> {
    let c = *llama.config();
    // the whole input vector of element 0 of `stage`
    let mut input = |stage, layer| match llama.follow(pos, stage, layer, 0).unwrap().kind {
        Kind::Embedding(e) => e.row,
        Kind::Rmsnorm(r) => r.input,
        Kind::Matmul(m) => m.input,
        Kind::Swiglu(s) => s.w1.input,
        _ => unreachable!(),
    };
    let mut v = HashMap::new();
    let mut x = input(Stage::Embedding, None);
    v.insert((Stage::Embedding, None), x.clone());
    for l in 0..c.n_layers {
        let l1 = Some(l);
        assert_eq!(bits(&input(Stage::AttNorm, l1)), bits(&x), "x entering layer {l}");
        v.insert((Stage::AttNorm, l1), input(Stage::Query, l1));
        v.insert((Stage::AttOutput, l1), input(Stage::AttResidual, l1));
        v.insert((Stage::AttResidual, l1), input(Stage::FfnNorm, l1));
        v.insert((Stage::FfnNorm, l1), input(Stage::Hidden, l1));
        v.insert((Stage::Hidden, l1), input(Stage::FfnResidual, l1));
        x = if l + 1 < c.n_layers { input(Stage::AttNorm, Some(l + 1)) } else { input(Stage::FinalNorm, None) };
        v.insert((Stage::FfnResidual, l1), x.clone());
    }
    v.insert((Stage::FinalNorm, None), input(Stage::Logits, None));
    // k and v as the replay left them in the KV cache
    let (kv, state) = (c.kv_dim(), &llama.transformer().state);
    for l in 0..c.n_layers {
        let at = (l * c.seq_len + pos) * kv;
        v.insert((Stage::Key, Some(l)), state.key_cache[at..][..kv].to_vec());
        v.insert((Stage::Value, Some(l)), state.value_cache[at..][..kv].to_vec());
    }
    v
}

/// Follow every element of every stage at `pos` (indices: the first 8,
/// and a few more) and compare each with the forward pass's own numbers.
fn check_position(llama: &mut Llama, pos: usize, scalar: bool, label: &str) {
    let c = *llama.config();
    llama.inspect_at(pos).unwrap();
    let record = llama.record().unwrap().clone();
    let vectors = vectors(llama, pos);
    for s in &record.snapshots {
        let len = s.stage.len(&c, pos);
        assert_eq!(len, s.len, "{label}");
        let mut indices: Vec<usize> = (0..s.values.len()).collect();
        indices.extend([len / 3 + 1, len / 2, len - 1].into_iter().filter(|&i| i >= s.values.len() && i < len));
        indices.dedup();
        for i in indices {
            let f = llama.follow(pos, s.stage, s.layer, i).unwrap();
            let what = format!("{label} pos {pos} {:?} layer {:?} index {i}", s.stage, s.layer);
            assert_eq!((f.pos, f.token, f.stage, f.layer, f.index), (pos, record.token, s.stage, s.layer, i), "{what}");
            if let Some(&first) = s.values.get(i) {
                assert_eq!(f.value.to_bits(), first.to_bits(), "{what}: not the walkthrough's value");
            }
            let whole = match s.stage {
                Stage::Logits => Some(&record.logits[..]),
                Stage::AttWeights => record.attention(s.layer.unwrap(), 0),
                _ => vectors.get(&(s.stage, s.layer)).map(|v| &v[..]),
            };
            if let Some(whole) = whole {
                assert_eq!(f.value.to_bits(), whole[i].to_bits(), "{what}: not the vector's value");
            }
            // the inputs are the stages before
            match &f.kind {
                Kind::AttOutput(o) => {
                    assert_eq!(bits(&o.weights), bits(record.attention(s.layer.unwrap(), o.head).unwrap()), "{what}");
                }
                Kind::Matmul(m) if s.stage == Stage::Logits => {
                    assert_eq!(bits(&m.input), bits(&vectors[&(Stage::FinalNorm, None)]), "{what}");
                }
                _ => {}
            }
            check_explanation(&f, scalar);
        }
    }
}

#[test]
fn every_stage_is_the_forward_pass_own_number() {
    for (variant, mut llama) in variants() {
        for kernels in [Kernels::Simd, Kernels::Scalar] {
            llama.set_kernels(kernels);
            llama.set_inspect(Some(native_clock), true);
            generate(&mut llama, 24);
            for pos in [0, 1, 7, 23] {
                check_position(&mut llama, pos, kernels == Kernels::Scalar, &format!("{variant} {kernels:?}"));
            }
        }
    }
}

#[test]
fn every_logit_of_a_position() {
    for (variant, mut llama) in variants() {
        llama.set_inspect(Some(native_clock), false);
        generate(&mut llama, 12);
        llama.inspect_at(11).unwrap();
        let logits = llama.record().unwrap().logits.clone();
        for (i, &logit) in logits.iter().enumerate() {
            let f = llama.follow(11, Stage::Logits, None, i).unwrap();
            assert_eq!(f.value.to_bits(), logit.to_bits(), "{variant} logit {i}");
            check_explanation(&f, false);
        }
    }
}

#[test]
fn residual_stages_add_the_stream_before_them() {
    let mut llama = Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap();
    generate(&mut llama, 10);
    let c = *llama.config();
    for i in [0, 13, 63] {
        let mut x = llama.follow(9, Stage::Embedding, None, i).unwrap().value;
        for l in 0..c.n_layers {
            let att = llama.follow(9, Stage::AttResidual, Some(l), i).unwrap();
            assert_eq!(matmul(&att).x_before, Some(x), "layer {l} index {i}");
            let ffn = llama.follow(9, Stage::FfnResidual, Some(l), i).unwrap();
            assert_eq!(matmul(&ffn).x_before, Some(att.value), "layer {l} index {i}");
            x = ffn.value;
        }
        match llama.follow(9, Stage::FinalNorm, None, i).unwrap().kind {
            Kind::Rmsnorm(r) => assert_eq!(r.x, x),
            _ => unreachable!(),
        }
    }
}

#[test]
fn looking_changes_nothing() {
    let model = || Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap();
    let (mut plain, mut looked) = (model(), model());
    let params = SamplerParams::new(1.0, 0.9, 7).unwrap();
    plain.start("Once upon a time", params, 40).unwrap();
    looked.start("Once upon a time", params, 40).unwrap();
    looked.set_inspect(Some(native_clock), true);
    let c = *looked.config();
    for i in 0.. {
        let (a, b) = (plain.step().unwrap(), looked.step().unwrap());
        assert_eq!(a, b, "step {i}");
        if b.is_none() {
            break;
        }
        if i % 5 == 4 {
            let state = &looked.transformer().state;
            let (keys, values) = (bits(&state.key_cache), bits(&state.value_cache));
            let record = looked.record().unwrap().clone();
            for (stage, layer) in stages(c.n_layers) {
                looked.follow(i / 2, stage, layer, 0).unwrap();
            }
            let state = &looked.transformer().state;
            assert!(bits(&state.key_cache) == keys && bits(&state.value_cache) == values, "the KV cache changed");
            let after = looked.record().unwrap();
            assert_eq!((after.pos, &after.logits, &after.snapshots), (record.pos, &record.logits, &record.snapshots));
        }
    }
    assert_eq!(looked.tokens(), plain.tokens());
    assert_eq!(looked.sampler().rng_state(), plain.sampler().rng_state());
}

#[test]
fn stage_ids_are_unique_and_parse_back() {
    let ids: Vec<&str> = Stage::ALL.iter().map(|s| s.id()).collect();
    assert_eq!(
        ids,
        [
            "embedding",
            "attNorm",
            "query",
            "key",
            "value",
            "attWeights",
            "attOutput",
            "attResidual",
            "ffnNorm",
            "hidden",
            "ffnResidual",
            "finalNorm",
            "logits"
        ]
    );
    for s in Stage::ALL {
        assert_eq!(Stage::from_id(s.id()), Ok(s));
    }
    let err = Stage::from_id("xb").unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid argument: no stage \"xb\": the stages are embedding, attNorm, query, key, value, attWeights, \
         attOutput, attResidual, ffnNorm, hidden, ffnResidual, finalNorm, logits"
    );
}

#[test]
fn refusals_name_the_ranges() {
    let mut llama = Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap();
    let err = |llama: &mut Llama, pos, stage, layer, index| llama.follow(pos, stage, layer, index).unwrap_err().to_string();
    assert_eq!(
        err(&mut llama, 0, Stage::Logits, None, 0),
        "invalid argument: position 0 has not been generated yet, nor has any other (generate first)"
    );
    llama.start("Once upon a time", greedy(), 10).unwrap();
    while llama.step().unwrap().is_some() {}
    for (pos, stage, layer, index, want) in [
        (10, Stage::Logits, None, 0, "position 10 has not been generated yet: positions 0 to 9 can be inspected"),
        (usize::MAX, Stage::Logits, None, 0, "position 18446744073709551615 has not been generated yet"),
        (9, Stage::Query, None, 0, "stage query is inside each layer: give a layer, 0 to 4"),
        (9, Stage::Logits, Some(0), 0, "stage logits is outside the layers: give no layer"),
        (9, Stage::Embedding, Some(4), 0, "stage embedding is outside the layers: give no layer"),
        (9, Stage::Hidden, Some(5), 0, "no layer 5: this model has layers 0 to 4"),
        (9, Stage::Hidden, Some(usize::MAX), 0, "no layer 18446744073709551615: this model has layers 0 to 4"),
        (9, Stage::Query, Some(0), 64, "index 64 is outside query (q, 64 values (dim,)): indices are 0 to 63"),
        (9, Stage::Key, Some(0), 32, "index 32 is outside key (k, 32 values (kv_dim,)): indices are 0 to 31"),
        (9, Stage::Hidden, Some(4), 172, "index 172 is outside hidden (hb, 172 values (hidden_dim,)): indices are 0 to 171"),
        (9, Stage::AttWeights, Some(0), 10, "index 10 is outside attWeights (att, 10 values (pos + 1,)): indices are 0 to 9"),
        (3, Stage::AttWeights, Some(0), 4, "index 4 is outside attWeights (att, 4 values (pos + 1,)): indices are 0 to 3"),
        (9, Stage::Logits, None, 512, "index 512 is outside logits (logits, 512 values (vocab_size,)): indices are 0 to 511"),
        (9, Stage::Logits, None, usize::MAX, "index 18446744073709551615 is outside logits"),
    ] {
        let msg = err(&mut llama, pos, stage, layer, index);
        assert!(msg.starts_with("invalid argument: ") && msg.contains(want), "{stage:?} {layer:?} {index}: {msg}");
    }
    // the last of each range is fine
    assert!(llama.follow(9, Stage::AttWeights, Some(4), 9).is_ok());
    assert!(llama.follow(9, Stage::Logits, None, 511).is_ok());
    // other kernels: the cache is forgotten, nothing to follow
    llama.set_kernels(Kernels::Scalar);
    assert!(err(&mut llama, 0, Stage::Logits, None, 0).contains("nor has any other"));
}

/// The cost of one follow call against one step, on a big model:
/// `FOLLOW_MODEL=path/to/a-32000-vocab.bin cargo test --release --test follow -- --ignored --nocapture`
/// (with www/models/tokenizer.bin; e.g. the bench's random 110M shape).
#[test]
#[ignore]
fn cost_of_a_follow_call() {
    let path = std::env::var("FOLLOW_MODEL").expect("FOLLOW_MODEL=path of a checkpoint");
    let mut llama = Llama::from_bytes(&std::fs::read(path).unwrap(), &data("tokenizer.bin")).unwrap();
    llama.start("", greedy(), 33).unwrap();
    let t = Instant::now();
    while llama.step().unwrap().is_some() {}
    let step = t.elapsed().as_secs_f64() * 1000.0 / 32.0;
    let c = *llama.config();
    for (stage, layer, index) in [
        (Stage::Embedding, None, 5),
        (Stage::Query, Some(6), 100),
        (Stage::AttWeights, Some(6), 10),
        (Stage::AttOutput, Some(6), 100),
        (Stage::Hidden, Some(6), 1000),
        (Stage::FfnResidual, Some(c.n_layers - 1), 700),
        (Stage::Logits, None, 31999.min(c.vocab_size - 1)),
    ] {
        let mut each = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            llama.follow(31, stage, layer, index).unwrap();
            each.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let ms = each.iter().cloned().fold(f64::INFINITY, f64::min);
        println!("{stage:?}: {ms:.1} ms ({:.2} steps)", ms / step);
    }
    println!("dim {} hidden {} layers {} vocab {}: step {step:.1} ms", c.dim, c.hidden_dim, c.n_layers, c.vocab_size);
}
