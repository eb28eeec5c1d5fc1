//! The engine's API behind the page's `Model` class, driven by sequences of
//! calls decoded from the input: start / step / chat / the inspector
//! (inspect_at, top-k, attention rows, timings) / kernels / tokenizer swaps /
//! choosing the next token, undo, the logit lens, following one number,
//! with arguments anywhere in their range and beyond (NaN, infinities,
//! huge positions and counts, arbitrary text). src/wasm.rs only checks JS
//! types and turns numbers into these arguments, so a panic here is a trap
//! that would kill the page's engine. Errors are fine; after any sequence
//! the model must still generate.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "shared/mod.rs"]
mod shared;
use llama2_wasm::inspect::{self, native_clock};
use llama2_wasm::kernels::Kernels;
use llama2_wasm::sampler::SamplerParams;
use llama2_wasm::{Checkpoint, Llama, Tokenizer};

/// Reads the input front to back; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    /// A number as JavaScript could pass it: ordinary values and the edges.
    fn number(&mut self) -> f64 {
        const EDGES: [f64; 12] = [0.0, 1.0, -1.0, 0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-30, 1e30, -0.0, 4294967296.0, 9007199254740991.0];
        match self.byte() {
            b @ 0..=11 => EDGES[b as usize],
            b => b as f64 / 64.0 - 0.5,
        }
    }
    /// A position, count or index: small, or huge.
    fn index(&mut self) -> usize {
        match self.byte() {
            255 => usize::MAX,
            254 => u32::MAX as usize,
            _ => self.u16() as usize % 64,
        }
    }
    fn text(&mut self) -> String {
        let n = self.byte() as usize % 48;
        let take = n.min(self.0.len());
        let (t, rest) = self.0.split_at(take);
        self.0 = rest;
        String::from_utf8_lossy(t).into_owned()
    }
    fn params(&mut self) -> Option<SamplerParams> {
        let (temperature, topp) = (self.number(), self.number());
        SamplerParams::new(temperature, topp, self.u16() as u64).ok()
    }
    /// Steps as the page passes them (f64 truncated like run.c's atoi).
    fn steps(&mut self) -> i64 {
        let s = self.number();
        if s.is_nan() { 0 } else { s as i64 }
    }
}


fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    // a tiny legacy checkpoint: its shape from the first bytes, small finite weights
    let small = |b: u8, max: i32| 1 + (b as i32) % max;
    let n_heads = small(input.byte(), 4);
    let n_kv_heads = (n_heads / small(input.byte(), n_heads)).max(1);
    let head_size = 2 * small(input.byte(), 4);
    let dim = n_heads * head_size;
    let hidden = small(input.byte(), 24);
    let layers = small(input.byte(), 3);
    let vocab = 260 + (input.byte() as i32) % 8; // the 256 byte tokens, and " " among the merges
    let seq_len = small(input.byte(), 24);
    let shared = input.byte() % 2 == 0;
    let header = [dim, hidden, layers, n_heads, n_kv_heads, if shared { vocab } else { -vocab }, seq_len];
    let (d, h, l, v, s) = (dim as usize, hidden as usize, layers as usize, vocab as usize, seq_len as usize);
    let kv_dim = d * n_kv_heads as usize / n_heads as usize;
    let floats = v * d + l * (2 * d + 2 * d * d + 2 * d * kv_dim + 3 * d * h) + d + s * head_size as usize
        + if shared { 0 } else { v * d };
    let mut bytes: Vec<u8> = header.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ input.u16() as u64;
    for _ in 0..floats {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let w = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5;
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    let Ok(checkpoint) = Checkpoint::from_bytes(&bytes) else { return };
    let quantize = input.byte() % 2 == 0;
    let Ok(tok) = Tokenizer::from_bytes(&shared::tokenizer(v, 0)) else { return };
    let Ok(mut llama) = Llama::new(checkpoint, tok, quantize) else { return };

    // the calls
    for _ in 0..64 {
        if input.0.is_empty() {
            break;
        }
        match input.byte() % 16 {
            0 => {
                let prompt = input.text();
                if let Some(p) = input.params() {
                    let _ = llama.start(&prompt, p, input.steps());
                }
            }
            1 => {
                let _ = llama.step();
            }
            2 => {
                let system = input.text();
                if let Some(p) = input.params() {
                    let _ = llama.start_chat(&system, p, input.steps());
                }
            }
            3 => {
                let _ = llama.chat_user(&input.text());
            }
            4 => {
                let on = input.byte();
                llama.set_inspect((on % 3 != 0).then_some(native_clock as inspect::Clock), on % 2 == 0);
            }
            5 => {
                let _ = llama.inspect_at(input.index());
            }
            6 => {
                // Model.topk(k): k saturates at the vocabulary
                let k = input.index().min(llama.config().vocab_size);
                if let Some(d) = llama.distribution(k) {
                    assert!(d.candidates.len() <= k);
                    for c in &d.candidates {
                        let _ = llama.tokenizer().decode(0, c.token);
                        let _ = llama.tokenizer().piece(c.token);
                    }
                }
            }
            7 => {
                let (layer, head) = (input.index(), input.index());
                if let Some(p) = llama.record() {
                    let row = p.attention(layer, head);
                    let c = llama.config();
                    assert_eq!(row.is_some(), layer < c.n_layers && head < c.n_heads);
                    if let Some(row) = row {
                        assert_eq!(row.len(), p.pos + 1);
                    }
                    let _ = p.timings;
                    let _ = &p.snapshots;
                }
            }
            8 => {
                let pos = input.index();
                if let Some(p) = llama.inspector() {
                    let _ = p.timings_at(pos);
                }
            }
            9 => llama.set_kernels(if input.byte() % 2 == 0 { Kernels::Scalar } else { Kernels::default() }),
            10 => {
                // the same vocabulary (other merges), or another one: refused
                let other = v + (input.byte() as usize % 3);
                if let Ok(t) = Tokenizer::from_bytes(&shared::tokenizer(other, input.byte() as usize)) {
                    let refused = llama.set_tokenizer(t).is_err();
                    assert_eq!(refused, other != v);
                }
            }
            11 => {
                // Model.forceNext(token): a token the JS check let through (< vocab), or not
                let token = input.index().min(u32::MAX as usize) as u32;
                let can = llama.check_force().is_ok();
                assert_eq!(llama.force_next(token).is_ok(), can && (token as usize) < llama.config().vocab_size);
            }
            12 => {
                let before = llama.tokens().len();
                let can = llama.check_undo().is_ok();
                assert_eq!(llama.undo().is_ok(), can);
                assert_eq!(llama.tokens().len(), if can { before - 1 } else { before });
            }
            13 => {
                let (pos, k) = (input.index(), input.index());
                if let Ok(lens) = llama.lens(pos, k) {
                    let c = llama.config();
                    assert_eq!(lens.layers.len(), c.n_layers);
                    let bits = |p: &inspect::Prediction| p.candidates.iter().map(|c| (c.token, c.logit.to_bits())).collect::<Vec<_>>();
                    assert_eq!(bits(&lens.output), bits(&lens.layers[c.n_layers - 1]), "the last layer is the output");
                    assert!(lens.layers.iter().all(|p| p.candidates.len() <= k.min(c.vocab_size)));
                }
            }
            14 => {
                // Model.follow: any stage, a layer or none, any position and index;
                // accepted exactly when the position is cached and check_follow agrees
                let stage = inspect::Stage::ALL[input.byte() as usize % inspect::Stage::ALL.len()];
                let layer = (input.byte() % 4 != 0).then(|| input.index());
                let (pos, index) = (input.index(), input.index());
                let valid = pos < llama.cached_positions() && inspect::check_follow(llama.config(), pos, stage, layer, index).is_ok();
                match llama.follow(pos, stage, layer, index) {
                    Ok(f) => {
                        assert!(valid, "follow accepted {stage:?} {layer:?} {index} at {pos}");
                        assert_eq!((f.pos, f.stage, f.layer, f.index), (pos, stage, layer, index));
                        let bits = |x: f32| x.to_bits();
                        match &f.kind {
                            // Q8_0 (quantize = true) is summed in the kernel's own order
                            inspect::Kind::Matmul(m) if m.quantized.is_some() => assert_eq!(bits(m.sum), bits(m.dot)),
                            inspect::Kind::AttOutput(o) => assert_eq!(o.partial_sums.last().map(|&x| bits(x)), Some(bits(f.value))),
                            _ => {}
                        }
                    }
                    Err(_) => assert!(!valid, "follow refused {stage:?} {layer:?} {index} at {pos}"),
                }
            }
            _ => {
                for _ in 0..input.byte() % 32 {
                    if !matches!(llama.step(), Ok(Some(_))) {
                        break;
                    }
                }
            }
        }
    }
    // whatever happened, the model still generates
    let params = SamplerParams::new(0.0, 0.9, 1).unwrap();
    llama.start("ab", params, 4).expect("start after the sequence");
    let mut steps = 0;
    while llama.step().expect("step after the sequence").is_some() {
        steps += 1;
    }
    // four positions, and perhaps the flush of a split UTF-8 character at the end
    assert!(steps <= 5 && llama.tokens().len() <= 5, "{steps} steps, {} tokens", llama.tokens().len());
});
