//! `ModelLoader` (a checkpoint streamed in chunks) and the file checks the
//! page makes before loading: `fileInfo`, `tokenizerInfo`, the memory limit.
use llama2_wasm::wasm::ModelLoader;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

use crate::glue::{buffer, greedy_tokens, n, s};
use crate::support::*;

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
