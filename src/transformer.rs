//! The Transformer: weights + run state, and the forward pass of run.c.

use crate::checkpoint::{run_state_bytes, Checkpoint, Config, Header, Weights, MEMORY_LIMIT};
use crate::error::{Error, Result};
use crate::kernels::{attention_mix, attention_scores, matmul, rmsnorm, softmax, swiglu};

/// Activations of the current position, and the KV cache of all positions.
#[derive(Debug, Clone)]
pub struct RunState {
    pub x: Vec<f32>,           // (dim,) activation at current time stamp
    pub xb: Vec<f32>,          // (dim,) same, but inside a residual branch
    pub xb2: Vec<f32>,         // (dim,) an additional buffer just for convenience
    pub hb: Vec<f32>,          // (hidden_dim,) buffer for hidden dimension in the ffn
    pub hb2: Vec<f32>,         // (hidden_dim,)
    pub q: Vec<f32>,           // (dim,) query
    pub att: Vec<f32>,         // (n_heads, seq_len) attention scores/weights
    pub logits: Vec<f32>,      // (vocab_size,) output logits
    pub key_cache: Vec<f32>,   // (layer, seq_len, kv_dim)
    pub value_cache: Vec<f32>, // (layer, seq_len, kv_dim)
    rope_cos: Vec<f32>,        // (head_size / 2,) RoPE rotation of the current position
    rope_sin: Vec<f32>,        // (head_size / 2,)
}

/// A zeroed buffer, or an error instead of an allocation abort.
fn zeros(n: usize, what: &'static str) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::TooLarge { what, bytes: n as u64 * 4 })?;
    v.resize(n, 0.0);
    Ok(v)
}

impl RunState {
    pub fn new(c: &Config) -> Result<RunState> {
        let bytes = run_state_bytes(c)?;
        if bytes >= MEMORY_LIMIT {
            return Err(Error::TooLarge { what: "the KV cache and activations", bytes });
        }
        let kv = c.n_layers * c.seq_len * c.kv_dim();
        Ok(RunState {
            x: zeros(c.dim, "activations")?,
            xb: zeros(c.dim, "activations")?,
            xb2: zeros(c.dim, "activations")?,
            hb: zeros(c.hidden_dim, "activations")?,
            hb2: zeros(c.hidden_dim, "activations")?,
            q: zeros(c.dim, "activations")?,
            att: zeros(c.n_heads * c.seq_len, "attention scores")?,
            logits: zeros(c.vocab_size, "logits")?,
            key_cache: zeros(kv, "the KV cache")?,
            value_cache: zeros(kv, "the KV cache")?,
            rope_cos: zeros(c.head_size() / 2, "activations")?,
            rope_sin: zeros(c.head_size() / 2, "activations")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Transformer {
    pub header: Header,
    pub config: Config,
    pub weights: Weights,
    pub state: RunState,
    /// (head_size / 2,) RoPE frequency of each pair: 1 / 10000^(2i / head_size)
    rope_freq: Vec<f32>,
}

impl Transformer {
    pub fn new(checkpoint: Checkpoint) -> Result<Transformer> {
        let config = checkpoint.header.config;
        let state = RunState::new(&config)?;
        let head_size = config.head_size();
        let rope_freq = (0..head_size)
            .step_by(2)
            .map(|head_dim| 1.0 / 10000.0f32.powf(head_dim as f32 / head_size as f32))
            .collect();
        Ok(Transformer { header: checkpoint.header, config, weights: checkpoint.weights, state, rope_freq })
    }

    /// Number of parameters held (the classifier counted once when shared).
    pub fn param_count(&self) -> u64 {
        crate::checkpoint::param_count(&self.header)
    }

    /// Run one token at one position; returns the logits for the next token.
    /// Fills position `pos` of the KV cache, and reads positions 0..=pos.
    pub fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        let p = &self.config;
        if token as usize >= p.vocab_size {
            return Err(Error::Argument(format!("token {token} is outside the vocabulary ({})", p.vocab_size)));
        }
        if pos >= p.seq_len {
            return Err(Error::Argument(format!("position {pos} is beyond seq_len {}", p.seq_len)));
        }
        let w = &self.weights;
        let s = &mut self.state;
        let dim = p.dim;
        let kv_dim = p.kv_dim();
        let kv_mul = p.kv_mul(); // integer multiplier of the kv sharing in multiquery
        let hidden_dim = p.hidden_dim;
        let head_size = p.head_size();
        let seq_len = p.seq_len;

        // copy the token embedding into x
        s.x.copy_from_slice(&w.token_embedding_table[token as usize * dim..][..dim]);

        // RoPE: the rotation angle depends only on (pos, pair index within a
        // head), so compute cos/sin once per position instead of per layer
        for (i, freq) in self.rope_freq.iter().enumerate() {
            let val = pos as f32 * freq;
            s.rope_cos[i] = val.cos();
            s.rope_sin[i] = val.sin();
        }

        // forward all the layers
        for l in 0..p.n_layers {
            // attention rmsnorm
            rmsnorm(&mut s.xb, &s.x, &w.rms_att_weight[l * dim..][..dim]);

            // key and value point to the kv cache at this position
            let loff = l * seq_len * kv_dim; // kv cache layer offset for convenience
            let kv_at = loff + pos * kv_dim;
            // qkv matmuls for this position
            matmul(&mut s.q, &s.xb, &w.wq[l * dim * dim..][..dim * dim]);
            matmul(&mut s.key_cache[kv_at..][..kv_dim], &s.xb, &w.wk[l * dim * kv_dim..][..dim * kv_dim]);
            matmul(&mut s.value_cache[kv_at..][..kv_dim], &s.xb, &w.wv[l * dim * kv_dim..][..dim * kv_dim]);

            // RoPE relative positional encoding: complex-valued rotate q and k in each head
            let k = &mut s.key_cache[kv_at..][..kv_dim];
            for i in (0..dim).step_by(2) {
                let pair = (i % head_size) / 2;
                let (fcr, fci) = (s.rope_cos[pair], s.rope_sin[pair]);
                let (v0, v1) = (s.q[i], s.q[i + 1]);
                s.q[i] = v0 * fcr - v1 * fci;
                s.q[i + 1] = v0 * fci + v1 * fcr;
                if i < kv_dim {
                    let (v0, v1) = (k[i], k[i + 1]);
                    k[i] = v0 * fcr - v1 * fci;
                    k[i + 1] = v0 * fci + v1 * fcr;
                }
            }

            // multihead attention: iterate over all heads
            let scale = (head_size as f32).sqrt();
            let keys = &s.key_cache[loff..][..seq_len * kv_dim];
            let values = &s.value_cache[loff..][..seq_len * kv_dim];
            for h in 0..p.n_heads {
                // the query vector for this head
                let q = &s.q[h * head_size..][..head_size];
                // attention scores for this head, timesteps 0..=pos
                let att = &mut s.att[h * seq_len..][..pos + 1];
                // which kv head this query head reads (grouped-query attention)
                let kv_head = (h / kv_mul) * head_size;
                // score_t = q . k_t / sqrt(head_size)
                attention_scores(att, q, &keys[kv_head..], kv_dim, scale);
                // softmax the scores to get attention weights, from 0..pos inclusively
                softmax(att);
                // weighted sum of the values, into xb
                let xb = &mut s.xb[h * head_size..][..head_size];
                attention_mix(xb, att, &values[kv_head..], kv_dim);
            }

            // final matmul to get the output of the attention
            matmul(&mut s.xb2, &s.xb, &w.wo[l * dim * dim..][..dim * dim]);
            // residual connection back into x
            for (x, d) in s.x.iter_mut().zip(&s.xb2) {
                *x += d;
            }

            // ffn rmsnorm
            rmsnorm(&mut s.xb, &s.x, &w.rms_ffn_weight[l * dim..][..dim]);

            // PyTorch: self.w2(F.silu(self.w1(x)) * self.w3(x))
            let ffn = l * dim * hidden_dim;
            matmul(&mut s.hb, &s.xb, &w.w1[ffn..][..dim * hidden_dim]);
            matmul(&mut s.hb2, &s.xb, &w.w3[ffn..][..dim * hidden_dim]);
            // SwiGLU non-linearity: silu(x) = x * σ(x), times the w3 gate
            swiglu(&mut s.hb, &s.hb2);
            // final matmul to get the output of the ffn
            matmul(&mut s.xb, &s.hb, &w.w2[ffn..][..hidden_dim * dim]);
            // residual connection
            for (x, d) in s.x.iter_mut().zip(&s.xb) {
                *x += d;
            }
        }

        // final rmsnorm (into xb: Rust does not let o alias x; same numbers)
        rmsnorm(&mut s.xb, &s.x, &w.rms_final_weight);
        // classifier into logits
        matmul(&mut s.logits, &s.xb, w.wcls());
        Ok(&mut s.logits)
    }
}
