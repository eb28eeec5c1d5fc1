//! Any bytes as a tokenizer.bin; a parsed one then encodes and decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llama2_wasm::{TextStream, Tokenizer};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tokenizer::from_bytes(data) {
        if let Ok(ids) = t.encode("Once upon a time 🦙", true, true) {
            let mut s = TextStream::new();
            for w in ids.windows(2) {
                let _ = s.push(t.decode(w[0], w[1]));
            }
            let _ = s.finish();
        }
    }
});
