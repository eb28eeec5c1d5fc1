//! The logit lens (`Llama::lens`): the residual stream after each layer
//! through the final RMSNorm and the classifier. Its last layer is the
//! model's real logits bit for bit (fp32, the Q8_0 file, quantized on load,
//! both kernel sets); every layer's probabilities are a distribution; and
//! looking changes nothing: not the tokens that follow, not the KV cache, not
//! the inspector's record.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Instant;

use common::{data, generate_cases, GenerateCase};
use llama2_wasm::inspect::{native_clock, Lens, Prediction};
use llama2_wasm::kernels::Kernels;
use llama2_wasm::{Checkpoint, Llama, SamplerParams, Tokenizer};

fn params(c: &GenerateCase) -> SamplerParams {
    SamplerParams::new(c.temperature, c.topp, c.seed).unwrap()
}

fn fp32_cases() -> Vec<GenerateCase> {
    let cases: Vec<_> = generate_cases().into_iter().filter(|c| c.model == "stories260K.bin").collect();
    assert!(cases.len() >= 8, "expected the golden stories260K cases, found {}", cases.len());
    cases
}

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

/// A prediction of the whole vocabulary (k = vocab_size) as (vocab_size,)
/// logits and probabilities by token id.
fn by_token(p: &Prediction, vocab_size: usize) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(p.candidates.len(), vocab_size);
    let (mut logits, mut probs) = (vec![f32::NAN; vocab_size], vec![f32::NAN; vocab_size]);
    for c in &p.candidates {
        logits[c.token as usize] = c.logit;
        probs[c.token as usize] = c.prob;
    }
    (logits, probs)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Run a golden case with the inspector open: each position's live logits.
fn live_logits(llama: &mut Llama, c: &GenerateCase) -> Vec<Vec<f32>> {
    llama.set_inspect(Some(native_clock), false);
    llama.start(&c.prompt, params(c), c.steps).unwrap();
    let mut live = Vec::new();
    while llama.step().unwrap().is_some() {
        let r = llama.record().unwrap();
        assert_eq!(r.pos, live.len());
        live.push(r.logits.clone());
    }
    live
}

/// The lens of `pos`, checked against the live logits of that position:
/// the last layer and the output are those logits bit for bit, every
/// layer's probabilities sum to 1, the top 5 is the head of the full list.
fn check_lens(llama: &mut Llama, pos: usize, live: &[f32], label: &str) -> Lens {
    let c = *llama.config();
    let lens = llama.lens(pos, c.vocab_size).unwrap();
    assert_eq!((lens.pos, lens.token), (pos, llama.tokens()[pos]), "{label}");
    assert_eq!(lens.layers.len(), c.n_layers, "{label}");
    let (last, _) = by_token(&lens.layers[c.n_layers - 1], c.vocab_size);
    assert_eq!(bits(&last), bits(live), "{label}: the last layer's lens is not the logits");
    let (output, _) = by_token(&lens.output, c.vocab_size);
    assert_eq!(bits(&output), bits(live), "{label}: the lens's output is not the logits");
    assert_eq!(lens.output, lens.layers[c.n_layers - 1], "{label}: output and last layer differ");

    let top5 = llama.lens(pos, 5).unwrap();
    for (layer, (p, all)) in lens.layers.iter().zip(&top5.layers).enumerate() {
        let sum: f64 = p.candidates.iter().map(|c| c.prob as f64).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{label} layer {layer}: the probabilities sum to {sum}");
        for w in p.candidates.windows(2) {
            assert!(w[0].prob > w[1].prob || (w[0].prob == w[1].prob && w[0].token < w[1].token), "{label}: order");
        }
        assert_eq!(all.candidates[..], p.candidates[..5], "{label} layer {layer}: top 5");
        let mass: f32 = all.candidates.iter().map(|c| c.prob).sum();
        assert!(mass <= 1.0 + 1e-5, "{label} layer {layer}: top-5 mass {mass}");
        // the token that came: its probability and rank in the full list
        let next = lens.next.unwrap();
        let (prob, rank) = p.next.unwrap();
        assert_eq!(p.candidates[rank - 1].token, next, "{label} layer {layer}: rank of {next}");
        assert_eq!(p.candidates[rank - 1].prob, prob);
        assert_eq!(all.next, p.next);
    }
    // layers differ from each other (a lens that repeated one layer would pass the rest)
    assert_ne!(lens.layers[0], lens.layers[c.n_layers - 1], "{label}");
    lens
}

#[test]
fn the_last_layer_is_the_logits_bit_for_bit() {
    for (variant, mut llama) in variants() {
        for c in fp32_cases() {
            let label = format!("{variant} {:?} t={} seed={}", c.prompt, c.temperature, c.seed);
            let live = live_logits(&mut llama, &c);
            let n = live.len();
            let prompt_len = llama.prompt_len();
            for pos in [0, prompt_len - 1, prompt_len, n / 2, n - 2, n - 1] {
                check_lens(&mut llama, pos, &live[pos], &format!("{label} pos {pos}"));
            }
            // what came after each position is the generation's
            assert_eq!(llama.lens(n - 1, 1).unwrap().next, llama.tokens().get(n).copied());
        }
    }
}

#[test]
fn every_position_with_both_kernel_sets() {
    let c = &fp32_cases()[1]; // greedy "Once upon a time"
    for kernels in [Kernels::Simd, Kernels::Scalar] {
        let mut llama = Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap();
        llama.set_kernels(kernels);
        let live = live_logits(&mut llama, c);
        assert_eq!(llama.tokens(), &c.tokens[..], "{kernels:?}");
        for (pos, logits) in live.iter().enumerate() {
            let lens = check_lens(&mut llama, pos, logits, &format!("{kernels:?} pos {pos}"));
            // greedy: the output's top token is the one that came
            assert_eq!(lens.output.next.unwrap().1, 1, "{kernels:?} pos {pos}");
        }
    }
}

#[test]
fn looking_changes_nothing() {
    for c in fp32_cases().iter().filter(|c| c.temperature > 0.0) {
        let model = || Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap();
        let (mut plain, mut looked) = (model(), model());
        plain.start(&c.prompt, params(c), c.steps).unwrap();
        looked.start(&c.prompt, params(c), c.steps).unwrap();
        looked.set_inspect(Some(native_clock), false);
        let (mut text_plain, mut text_looked) = (String::new(), String::new());
        for i in 0.. {
            let (a, b) = (plain.step().unwrap(), looked.step().unwrap());
            assert_eq!(a, b, "step {i}");
            let Some(b) = b else { break };
            text_plain.push_str(&a.unwrap().text);
            text_looked.push_str(&b.text);
            if i % 5 == 4 {
                let state = &looked.transformer().state;
                let (keys, values) = (bits(&state.key_cache), bits(&state.value_cache));
                let record = looked.record().unwrap().clone();
                for pos in [i, i / 2, 0] {
                    looked.lens(pos, 5).unwrap();
                }
                let state = &looked.transformer().state;
                assert!(bits(&state.key_cache) == keys && bits(&state.value_cache) == values, "the KV cache changed");
                let after = looked.record().unwrap();
                assert_eq!((after.pos, &after.logits, after.next), (record.pos, &record.logits, record.next));
                assert!(!after.replayed, "the lens replaced the inspector's record");
            }
        }
        assert_eq!(looked.tokens(), &c.tokens[..]);
        assert_eq!((&text_plain, &text_looked), (&c.stdout, &c.stdout));
        assert_eq!(looked.sampler().rng_state(), plain.sampler().rng_state());
    }
}

#[test]
fn refusals_name_the_positions() {
    let mut llama = Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap();
    let err = llama.lens(0, 5).unwrap_err().to_string();
    assert_eq!(err, "invalid argument: position 0 has not been generated yet, nor has any other (generate first)");
    llama.start("Once upon a time", SamplerParams::new(0.0, 0.9, 1).unwrap(), 10).unwrap();
    while llama.step().unwrap().is_some() {}
    let err = llama.lens(10, 5).unwrap_err().to_string();
    assert_eq!(err, "invalid argument: position 10 has not been generated yet: positions 0 to 9 can be inspected");
    assert!(llama.lens(usize::MAX, 5).is_err());
    // k = 0 and k beyond the vocabulary: an empty list, the whole vocabulary
    assert!(llama.lens(9, 0).unwrap().layers.iter().all(|p| p.candidates.is_empty()));
    assert_eq!(llama.lens(9, usize::MAX).unwrap().output.candidates.len(), 512);
    // the kernels changed: the cache is forgotten, nothing to look at
    llama.set_kernels(Kernels::Scalar);
    assert!(llama.lens(0, 5).unwrap_err().to_string().contains("nor has any other"));
}

/// The cost of one lens call against one step, on a big model:
/// `LENS_MODEL=path/to/a-32000-vocab.bin cargo test --release --test lens -- --ignored --nocapture`
/// (with www/models/tokenizer.bin; e.g. the bench's random 110M shape).
#[test]
#[ignore]
fn cost_of_a_lens_call() {
    let path = std::env::var("LENS_MODEL").expect("LENS_MODEL=path of a checkpoint");
    let mut llama = Llama::from_bytes(&std::fs::read(path).unwrap(), &data("tokenizer.bin")).unwrap();
    llama.start("", SamplerParams::new(0.0, 0.9, 1).unwrap(), 33).unwrap();
    let t = Instant::now();
    while llama.step().unwrap().is_some() {}
    let step = t.elapsed().as_secs_f64() * 1000.0 / 32.0;
    let mut each = Vec::new();
    for pos in [8, 16, 24, 31, 31] {
        let t = Instant::now();
        llama.lens(pos, 5).unwrap();
        each.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let c = llama.config();
    println!(
        "dim {} layers {} vocab {}: step {step:.1} ms, lens {:.1?} ms ({:.1}x a step)",
        c.dim,
        c.n_layers,
        c.vocab_size,
        each,
        each.iter().sum::<f64>() / each.len() as f64 / step
    );
}
