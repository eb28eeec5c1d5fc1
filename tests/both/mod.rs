//! Checks that run natively (tests/digest.rs, tests/parity.rs) and in the
//! browser (tests/web/) alike; the golden files' parser beside it,
//! tests/both/golden.rs, is shared the same way.
//!
//! The same logits in the browser and natively: fixed cases run through the
//! SIMD kernels, every logit's bits folded into one digest per case. The
//! expected digests live in `tests/both/logits.txt`; the native test
//! (tests/digest.rs) and the browser test (tests/web/kernels.rs) both compare against
//! it, so a kernel that computes one different bit on either side fails.
//!
//! Regenerate after a deliberate change of the SIMD arithmetic with
//! `UPDATE_DIGESTS=1 cargo test --release --test digest`, and say why in the commit.
#![allow(dead_code)]

use llama2_wasm::kernels::Kernels;
use llama2_wasm::sampler::SamplerParams;
use llama2_wasm::{Checkpoint, Llama, Tokenizer, Transformer};

/// The expected digests, `name hex` per line.
pub const EXPECTED: &str = include_str!("logits.txt");

/// FNV-1a over 64 bits: enough to tell any changed bit, no dependency.
pub struct Fnv(pub u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn word(&mut self, w: u32) {
        for b in w.to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub fn floats(&mut self, v: &[f32]) {
        for x in v {
            self.word(x.to_bits());
        }
    }
}

/// A legacy (v0) checkpoint of the stories15M shape with uniform random
/// weights in [-0.05, 0.05) from a fixed xorshift32 stream, built in memory
/// (98 MB); BOS's embedding row is zero, as in the bench's random models.
pub fn random_15m() -> Vec<u8> {
    let (dim, hidden, layers, heads, kv_heads, vocab, seq_len) = (288usize, 768, 6, 6, 6, 32000, 256);
    let head_size = dim / heads;
    let floats = vocab * dim + layers * (2 * dim + 4 * dim * dim + 3 * dim * hidden) + dim + seq_len * head_size;
    let mut bytes = Vec::with_capacity(28 + 4 * floats);
    for f in [dim, hidden, layers, heads, kv_heads, vocab, seq_len] {
        bytes.extend_from_slice(&(f as i32).to_le_bytes());
    }
    let mut state = 0x9e37_79b9u32;
    for i in 0..floats {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let w = if (dim..2 * dim).contains(&i) { 0.0 } else { (state as f32 / 4_294_967_296.0 - 0.5) * 0.1 };
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    bytes
}

/// Greedy decoding from `prompt` (token ids) for `steps` positions through
/// the forward pass alone, folding every position's logits into the digest.
pub fn forward_digest(t: &mut Transformer, prompt: &[u32], steps: usize) -> u64 {
    let mut h = Fnv::new();
    let mut token = prompt[0];
    for pos in 0..steps {
        let logits = t.forward(token, pos).unwrap();
        h.floats(logits);
        // the next token: the prompt's, then the argmax (first on ties)
        token = match prompt.get(pos + 1) {
            Some(&p) => p,
            None => logits.iter().enumerate().fold((0, f32::MIN), |b, (i, &l)| if l > b.1 { (i, l) } else { b }).0 as u32,
        };
    }
    h.0
}

/// Every case's digest with the SIMD kernels: `files` gives a model file's bytes by name.
pub fn digests(files: &dyn Fn(&str) -> Vec<u8>) -> Vec<(&'static str, u64)> {
    let tok = Tokenizer::from_bytes(&files("tok512.bin")).unwrap();
    let prompt = tok.encode("Once upon a time", true, false).unwrap();
    let fp32 = || Checkpoint::from_bytes(&files("stories260K.bin")).unwrap();
    let run = |c: Checkpoint, steps: usize, prompt: &[u32]| {
        let mut t = Transformer::new(c).unwrap();
        t.set_kernels(Kernels::Simd);
        forward_digest(&mut t, prompt, steps)
    };
    let mut out = vec![
        ("stories260K fp32, 200 positions", run(fp32(), 200, &prompt)),
        ("stories260K_q80.bin, 200 positions", run(Checkpoint::from_bytes(&files("stories260K_q80.bin")).unwrap(), 200, &prompt)),
        ("stories260K quantized on load, 200 positions", run(fp32().quantize().unwrap(), 200, &prompt)),
    ];
    // a sampled generation: the probabilities come from the SIMD softmax too
    let mut llama = Llama::new(fp32(), tok, false).unwrap();
    llama.set_kernels(Kernels::Simd);
    llama.generate("Once upon a time", SamplerParams::new(0.8, 0.9, 42).unwrap(), 256).unwrap();
    let mut h = Fnv::new();
    llama.tokens().iter().for_each(|&t| h.word(t));
    out.push(("stories260K sampled t=0.8 p=0.9 s=42, tokens", h.0));
    // the real 15M shape: eight wide heads, gs 64 int8 groups, 32000 logits
    let random = random_15m();
    let bos = [1u32];
    out.push(("random 15M shape fp32, 12 positions", run(Checkpoint::from_bytes(&random).unwrap(), 12, &bos)));
    out.push(("random 15M shape quantized on load, 12 positions", run(Checkpoint::from_bytes(&random).unwrap().quantize().unwrap(), 12, &bos)));
    out
}

/// The cases whose digest differs from `EXPECTED` (or is missing there), as messages.
pub fn mismatches(got: &[(&str, u64)]) -> Vec<String> {
    let expected: Vec<(&str, &str)> = EXPECTED.lines().filter_map(|l| l.rsplit_once(' ')).collect();
    let mut bad = Vec::new();
    for (name, digest) in got {
        let hex = format!("{digest:016x}");
        match expected.iter().find(|(n, _)| n == name) {
            Some((_, want)) if *want == hex => {}
            Some((_, want)) => bad.push(format!("{name}: {hex}, expected {want}")),
            None => bad.push(format!("{name}: {hex}, not in tests/both/logits.txt")),
        }
    }
    if expected.len() != got.len() {
        bad.push(format!("{} digests computed, {} expected", got.len(), expected.len()));
    }
    bad
}

/// runq.c's greedy Q8_0 tokens `golden` (BOS, prompt, generated), fed to the
/// SIMD kernels one by one: wherever our argmax differs from runq.c's next
/// token, the two logits must be a near-tie (within 0.05). Rounding
/// activations to int8 amplifies the float-order difference between SIMD
/// and runq.c's sequential sums, so exact token parity is for the scalar
/// kernels only. Returns how many positions disagreed (for the message).
pub fn q80_teacher_forced(model: &[u8], golden: &[u32], prompt_tokens: usize) -> usize {
    let mut t = Transformer::new(Checkpoint::from_bytes(model).unwrap()).unwrap();
    t.set_kernels(Kernels::Simd);
    let mut disagreed = 0;
    for pos in 0..golden.len() - 1 {
        let logits = t.forward(golden[pos], pos).unwrap();
        let next = golden[pos + 1] as usize;
        if pos + 1 < prompt_tokens {
            continue; // forced prompt tokens, not runq.c's choice
        }
        let best = logits.iter().cloned().fold(f32::MIN, f32::max);
        assert!(best - logits[next] <= 0.05, "pos {pos}: runq.c took {next} at {} vs our best {best}", logits[next]);
        disagreed += (logits[next] < best) as usize;
    }
    disagreed
}
