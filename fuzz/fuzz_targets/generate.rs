//! Tiny models from fuzz bytes: a legacy header with small dimensions taken
//! from the first bytes, weights from the rest (cycled, any float including
//! NaN and infinity), a byte-level tokenizer of the same vocabulary; then a
//! few generated tokens with fuzzed sampling parameters.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "shared/mod.rs"]
mod shared;
use llama2_wasm::sampler::SamplerParams;
use llama2_wasm::{Checkpoint, Llama, Tokenizer};

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let small = |b: u8, max: i32| 1 + (b as i32) % max;
    let n_heads = small(data[0], 4);
    let n_kv_heads = n_heads / small(data[1], n_heads).max(1);
    let head_size = 2 * small(data[2], 4);
    let dim = n_heads * head_size;
    let hidden = small(data[3], 24);
    let layers = small(data[4], 3);
    let vocab = 259 + (data[5] as i32) % 8; // room for the 256 byte-fallback tokens
    let seq_len = small(data[6], 16);
    let shared = data[7] % 2 == 0;
    let header = [dim, hidden, layers, n_heads, n_kv_heads.max(1), if shared { vocab } else { -vocab }, seq_len];
    let (d, h, l, v, s) = (dim as usize, hidden as usize, layers as usize, vocab as usize, seq_len as usize);
    let kv_dim = d * n_kv_heads.max(1) as usize / n_heads as usize;
    let floats = v * d + l * (2 * d + 2 * d * d + 2 * d * kv_dim + 3 * d * h) + d + s * head_size as usize
        + if shared { 0 } else { v * d };
    let mut bytes: Vec<u8> = header.iter().flat_map(|x| x.to_le_bytes()).collect();
    let weights = &data[16..];
    if weights.is_empty() {
        return;
    }
    bytes.extend(weights.iter().cycle().take(floats * 4));
    let Ok(checkpoint) = Checkpoint::from_bytes(&bytes) else { return };

    // a tokenizer: <unk> <s> </s>, the 256 byte tokens, then a few merges
    let tok = shared::tokenizer(vocab as usize, 0);
    let Ok(tokenizer) = Tokenizer::from_bytes(&tok) else { return };
    let Ok(mut llama) = Llama::new(checkpoint, tokenizer, data[8] % 2 == 0) else { return };
    let temperature = data[9] as f64 / 64.0 - 0.5;
    let topp = data[10] as f64 / 128.0 - 0.5;
    let Ok(params) = SamplerParams::new(temperature, topp, 1 + data[11] as u64) else { return };
    let _ = llama.generate("ab a", params, data[12] as i64 % 20);
});
