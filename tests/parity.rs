//! Golden tests: our engine against llama2.c's run.c, token for token.
#![cfg(not(target_arch = "wasm32"))]

mod both;
mod common;

use common::{data, encode_cases, generate_cases, jsonl};
use llama2_wasm::kernels::Kernels;
use llama2_wasm::sampler::SamplerParams;
use llama2_wasm::checkpoint::Matrix;
use llama2_wasm::{Checkpoint, Llama, TextStream, Tokenizer};

/// Run one golden generation case with `kernels`; its tokens and text must
/// be the reference program's.
fn assert_reproduces(case: &common::GenerateCase, kernels: Kernels, program: &str) {
    let mut llama = Llama::from_bytes(&data(&case.model), &data(&case.tokenizer)).unwrap();
    llama.set_kernels(kernels);
    let params = SamplerParams::new(case.temperature, case.topp, case.seed).unwrap();
    let text = llama.generate(&case.prompt, params, case.steps).unwrap();
    let label = format!("{kernels:?}: {} prompt={:?} t={} p={} s={}", case.model, case.prompt, case.temperature, case.topp, case.seed);
    assert_eq!(llama.tokens(), &case.tokens[..], "tokens differ from {program}: {label}");
    assert_eq!(text, case.stdout, "text differs from {program}: {label}");
}

/// Both kernel sets give run.c's tokens and text on every fp32 golden case:
/// the scalar reference because it is run.c's arithmetic, SIMD because its
/// rounding differences never flip a choice on these cases.
#[test]
fn every_fp32_generation_matches_run_c() {
    let cases: Vec<_> = generate_cases().into_iter().filter(|c| !c.model.contains("_q80")).collect();
    assert!(cases.len() >= 8, "expected the golden fp32 cases, found {}", cases.len());
    for kernels in [Kernels::Simd, Kernels::Scalar] {
        for case in &cases {
            assert_reproduces(case, kernels, "run.c");
        }
    }
}

/// The scalar kernels are runq.c's arithmetic: every Q8_0 golden generation
/// (recorded from runq.c built `gcc -O3`, as llama2.c's Makefile builds it),
/// token for token and character for character.
#[test]
fn scalar_q80_generation_equals_runq_c() {
    let cases: Vec<_> = generate_cases().into_iter().filter(|c| c.model.contains("_q80")).collect();
    assert!(cases.len() >= 2, "expected the golden Q8_0 cases, found {}", cases.len());
    for case in &cases {
        assert_reproduces(case, Kernels::Scalar, "runq.c");
    }
}

/// The SIMD kernels on Q8_0: runq.c quantizes every activation to int8, which
/// amplifies the last-bit difference between SIMD and sequential sums (a
/// flipped int8 moves a logit by ~1e-2), so near-ties can go the other way.
/// Fed runq.c's own greedy tokens, our argmax agrees with runq.c wherever
/// the top two logits are more than 0.05 apart (the browser runs the same check).
#[test]
fn simd_q80_follows_runq_c_up_to_near_ties() {
    let case = generate_cases().into_iter().find(|c| c.model.contains("_q80") && c.temperature == 0.0).unwrap();
    let prompt = Tokenizer::from_bytes(&data(&case.tokenizer)).unwrap().encode(&case.prompt, true, false).unwrap().len();
    let disagreed = both::q80_teacher_forced(&data(&case.model), &case.tokens, prompt);
    assert!(disagreed < case.tokens.len() / 10, "{disagreed} near-tie disagreements");
}

/// Quantizing the fp32 file on load (export.py's rule, group size 4 chosen
/// the same way) gives exactly the int8 values and scales of the shipped
/// Q8_0 file, and so runq.c's generations.
#[test]
fn quantize_on_load_equals_the_exported_q80_file() {
    let on_load = Checkpoint::from_bytes(&data("stories260K.bin")).unwrap().quantize().unwrap();
    let file = Checkpoint::from_bytes(&data("stories260K_q80.bin")).unwrap();
    assert_eq!(file.header.group_size, Some(4));
    assert_eq!(on_load.weights.group_size(), Some(4));
    assert_eq!(on_load.weights.wq, file.weights.wq);
    assert_eq!(on_load.weights.w2, file.weights.w2);
    assert_eq!(on_load.weights.token_embedding_table, file.weights.token_embedding_table);
    assert_eq!(on_load.weights.rms_final_weight, file.weights.rms_final_weight);
    // about a quarter of the fp32 bytes
    let fp32 = Checkpoint::from_bytes(&data("stories260K.bin")).unwrap().weights.bytes();
    let q8 = on_load.weights.bytes();
    assert!(q8 * 100 <= fp32 * 51, "Q8_0 {q8} bytes vs fp32 {fp32}"); // group size 4: 1 + 4/4 bytes per value
    for case in generate_cases().into_iter().filter(|c| c.model.contains("_q80")) {
        let tok = Tokenizer::from_bytes(&data(&case.tokenizer)).unwrap();
        let params = SamplerParams::new(case.temperature, case.topp, case.seed).unwrap();
        let checkpoint = Checkpoint::from_bytes(&data("stories260K.bin")).unwrap();
        let mut on_load = Llama::new(checkpoint, tok.clone(), true).unwrap();
        let mut from_file = Llama::from_bytes(&data(&case.model), &data(&case.tokenizer)).unwrap();
        on_load.generate(&case.prompt, params, case.steps).unwrap();
        from_file.generate(&case.prompt, params, case.steps).unwrap();
        assert_eq!(on_load.tokens(), from_file.tokens(), "quantized on load: {:?}", case.prompt);
    }
}

#[test]
fn every_encode_matches_run_c() {
    let cases = encode_cases();
    assert!(cases.len() >= 8);
    for c in cases {
        let tok = Tokenizer::from_bytes(&data(&c.tokenizer)).unwrap();
        let got = tok.encode(&c.text, c.bos, c.eos).unwrap();
        assert_eq!(got, c.tokens, "encode({:?}) with {}", c.text, c.tokenizer);
    }
}

#[test]
fn logits_match_run_c_at_every_prompt_position() {
    let rows = jsonl("runc_logits_stories260K.jsonl");
    assert!(!rows.is_empty());
    for kernels in [Kernels::Simd, Kernels::Scalar] {
        let mut t = llama2_wasm::Transformer::new(Checkpoint::from_bytes(&data("stories260K.bin")).unwrap()).unwrap();
        t.set_kernels(kernels);
        let mut worst = 0.0f32;
        for row in &rows {
            let pos = row["pos"].as_u64().unwrap() as usize;
            let token = row["token"].as_u64().unwrap() as u32;
            let want: Vec<f32> = row["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let got = t.forward(token, pos).unwrap();
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // run.c printed %.6g (at most 5e-6 relative off); the scalar
                // kernels are run.c's arithmetic, so only that rounding is
                // allowed; SIMD sums in another order: 1e-4 more
                let tol = match kernels {
                    Kernels::Scalar => 6e-6 * w.abs() + 1e-7,
                    Kernels::Simd => 1e-4 + w.abs() * 1e-5,
                };
                assert!((g - w).abs() <= tol, "{kernels:?} pos {pos} logit {i}: {g} vs run.c {w}");
                worst = worst.max((g - w).abs());
            }
        }
        eprintln!("{kernels:?}: largest logit difference from run.c: {worst:e}");
    }
}

#[test]
fn v1_file_loads_the_same_weights_as_v0() {
    let v0 = Checkpoint::from_bytes(&data("stories260K.bin")).unwrap();
    let v1 = Checkpoint::from_bytes(&data("stories260K_v1.bin")).unwrap();
    assert_eq!(v0.header.config, v1.header.config);
    assert_eq!((v0.header.version, v1.header.version), (0, 1));
    assert_eq!(v0.weights.wq, v1.weights.wq);
    assert_eq!(v0.weights.w2, v1.weights.w2);
    assert_eq!(v0.weights.rms_final_weight, v1.weights.rms_final_weight);
    assert_eq!(v0.weights.token_embedding_table, v1.weights.token_embedding_table);
}

/// Byte-fallback tokens split characters: the stream must put them back together.
#[test]
fn utf8_streams_whole_characters_across_byte_tokens() {
    let tok = Tokenizer::from_bytes(&data("tokenizer.bin")).unwrap();
    let text = "I ♥ 🦙 llamas — naïve";
    let ids = tok.encode(text, true, false).unwrap();
    // the llama emoji has no token: it is four <0xXX> byte tokens
    let bytes: Vec<u32> = "🦙".bytes().map(|b| b as u32 + 3).collect();
    assert!(ids.windows(4).any(|w| w == &bytes[..]), "{ids:?}");
    let mut stream = TextStream::new();
    let mut out = String::new();
    for pair in ids.windows(2) {
        let piece = stream.push(tok.decode(pair[0], pair[1]));
        assert!(!piece.contains('\u{FFFD}'), "a split character leaked as U+FFFD");
        out.push_str(&piece);
    }
    out.push_str(&stream.finish());
    assert_eq!(out, text);
}

#[test]
fn unshared_classifier_and_gqa_run() {
    // stories260K has GQA (8 heads, 4 kv heads). Make an unshared-classifier
    // legacy file from it: negative vocab_size and wcls (= the embedding) appended.
    let mut bytes = data("stories260K.bin");
    bytes[20..24].copy_from_slice(&(-512i32).to_le_bytes());
    let c = Checkpoint::from_bytes(&data("stories260K.bin")).unwrap();
    let Matrix::F32(table) = &c.weights.token_embedding_table else { panic!("fp32 file") };
    for f in table {
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    let unshared = Checkpoint::from_bytes(&bytes).unwrap();
    assert!(!unshared.header.shared_classifier);
    assert!(unshared.weights.wcls.is_some());
    let tok = data("tok512.bin");
    let params = SamplerParams::new(0.0, 0.9, 1).unwrap();
    let mut a = Llama::new(unshared, Tokenizer::from_bytes(&tok).unwrap(), false).unwrap();
    let mut b = Llama::from_bytes(&data("stories260K.bin"), &tok).unwrap();
    assert_eq!(a.generate("Once", params, 40).unwrap(), b.generate("Once", params, 40).unwrap());
}

/// Bytes arriving in chunks of any size (splitting floats and headers) load
/// the same weights as the whole file at once; extra or missing bytes are errors.
#[test]
fn checkpoint_builder_accepts_any_chunking() {
    use llama2_wasm::checkpoint::CheckpointBuilder;
    for name in ["stories260K.bin", "stories260K_v1.bin"] {
        let bytes = data(name);
        let whole = Checkpoint::from_bytes(&bytes).unwrap();
        for chunk in [1usize, 7, 4096, 100_003] {
            let mut b = CheckpointBuilder::new(&bytes[..256], bytes.len() as u64).unwrap();
            for c in bytes.chunks(chunk) {
                b.push(c).unwrap();
            }
            let built = b.finish().unwrap();
            assert_eq!(built.weights.wq, whole.weights.wq, "{name} in chunks of {chunk}");
            assert_eq!(built.weights.token_embedding_table, whole.weights.token_embedding_table);
            assert_eq!(built.weights.rms_final_weight, whole.weights.rms_final_weight);
        }
        let mut b = CheckpointBuilder::new(&bytes[..256], bytes.len() as u64).unwrap();
        b.push(&bytes[..1000]).unwrap();
        assert!(b.finish().unwrap_err().to_string().contains("ended after 1,000"));
        let mut b = CheckpointBuilder::new(&bytes[..256], bytes.len() as u64).unwrap();
        b.push(&bytes).unwrap();
        assert!(b.push(&[0]).unwrap_err().to_string().contains("header needs"));
    }
}


/// `decode_all` is `encode`'s inverse as run.c prints: the tokens of every
/// golden generation decode to the text run.c printed for them, and a token
/// outside the vocabulary is refused by name.
#[test]
fn decode_all_gives_run_cs_text_for_every_golden_generation() {
    let cases = generate_cases();
    assert!(!cases.is_empty());
    for case in &cases {
        let tokenizer = Tokenizer::from_bytes(&data(&case.tokenizer)).unwrap();
        // run.c prints the prompt's pieces too, then what it sampled
        assert_eq!(tokenizer.decode_all(&case.tokens).unwrap(), case.stdout, "{} {:?}", case.model, case.prompt);
    }
    let tokenizer = Tokenizer::from_bytes(&data("tok512.bin")).unwrap();
    let err = tokenizer.decode_all(&[1, 400, 512]).unwrap_err().to_string();
    assert!(err.contains("token 512 (at index 2) is not in the vocabulary"), "{err}");
}
