//! Arbitrary text through encode with the real 32000-token Llama 2 tokenizer
//! (copied to www/models by ./build.sh), then decoded back as a stream.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llama2_wasm::{TextStream, Tokenizer};
use std::sync::OnceLock;

static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let t = TOKENIZER.get_or_init(|| {
        let bytes = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../www/models/tokenizer.bin"));
        Tokenizer::from_bytes(bytes).expect("tokenizer.bin parses")
    });
    let text = String::from_utf8_lossy(data);
    let ids = t.encode(&text, true, false).expect("the Llama 2 vocabulary encodes any text");
    assert!(ids.iter().all(|&id| (id as usize) < t.vocab_size()));
    let mut s = TextStream::new();
    let mut out = String::new();
    for w in ids.windows(2) {
        out.push_str(&s.push(t.decode(w[0], w[1])));
    }
    out.push_str(&s.finish());
    // byte fallback and whole-character streaming give the text back
    // (control bytes are dropped as run.c's safe_printf drops them)
    if !text.chars().any(|c| c.is_control() || c == '\u{FFFD}') && !text.starts_with(' ') && !text.is_empty() {
        assert_eq!(out, text);
    }
});
