//! The inspector: what one forward pass did, recorded only when asked.
//!
//! With a [`Probe`] attached, the transformer records for the position it
//! runs: the raw logits, the attention weights of every layer and head, the
//! time spent in each part of the step, and (walkthrough) a few values of
//! every intermediate vector, in run.c's order. Without a probe the forward
//! pass only tests an `Option` at each phase boundary.
//!
//! Only the last position is held (its attention is `n_layers * n_heads *
//! (pos + 1)` floats); an earlier position of the current sequence is
//! recomputed on demand from the KV cache (`Llama::inspect_at`), so the
//! inspector's memory does not grow with the text.

use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::sampler::{nucleus, sample_argmax, ProbIndex};

/// A clock in milliseconds from any fixed origin (`performance.now()` in the
/// browser, [`native_clock`] elsewhere).
pub type Clock = fn() -> f64;

/// Milliseconds since the first call, from the OS's monotonic clock.
#[cfg(not(target_arch = "wasm32"))]
pub fn native_clock() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// Where a step's time goes. Each phase boundary in the forward pass adds
/// the time since the previous boundary to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// rmsnorm, then the q, k, v matmuls; and the output matmul wo.
    Projections,
    /// RoPE, scores q·k, softmax and the weighted sum of v: grows with pos.
    Attention,
    /// rmsnorm, w1 and w3, SwiGLU, w2, residual.
    Ffn,
    /// Final rmsnorm and the classifier matmul into the logits.
    Classifier,
    /// Turning logits into the next token.
    Sampling,
    /// Embedding lookup, decoding text, and everything else in `step()`.
    Other,
}

impl Phase {
    pub const ALL: [Phase; 6] =
        [Phase::Projections, Phase::Attention, Phase::Ffn, Phase::Classifier, Phase::Sampling, Phase::Other];

    /// The key JavaScript sees.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Projections => "projections",
            Phase::Attention => "attention",
            Phase::Ffn => "ffn",
            Phase::Classifier => "classifier",
            Phase::Sampling => "sampling",
            Phase::Other => "other",
        }
    }
}

/// Milliseconds per phase of one step (indexed like [`Phase::ALL`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub ms: [f64; 6],
}

impl Timings {
    pub fn get(&self, phase: Phase) -> f64 {
        self.ms[phase as usize]
    }
    /// The whole step: the phases partition it, so this is their sum.
    pub fn total(&self) -> f64 {
        self.ms.iter().sum()
    }
}

/// The vectors of run.c's forward pass, in its order, for the walkthrough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Embedding,
    AttNorm,
    Query,
    Key,
    Value,
    AttWeights,
    AttOutput,
    AttResidual,
    FfnNorm,
    Hidden,
    FfnResidual,
    FinalNorm,
    Logits,
}

impl Stage {
    /// The variable's name in run.c.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Embedding => "x",
            Stage::AttNorm => "xb",
            Stage::Query => "q",
            Stage::Key => "k",
            Stage::Value => "v",
            Stage::AttWeights => "att",
            Stage::AttOutput => "xb",
            Stage::AttResidual => "x",
            Stage::FfnNorm => "xb",
            Stage::Hidden => "hb",
            Stage::FfnResidual => "x",
            Stage::FinalNorm => "x",
            Stage::Logits => "logits",
        }
    }

    /// The shape in the config's terms.
    pub fn shape(self) -> &'static str {
        match self {
            Stage::Embedding | Stage::AttNorm | Stage::Query | Stage::AttOutput => "(dim,)",
            Stage::AttResidual | Stage::FfnNorm | Stage::FfnResidual | Stage::FinalNorm => "(dim,)",
            Stage::Key | Stage::Value => "(kv_dim,)",
            Stage::AttWeights => "(pos + 1,)",
            Stage::Hidden => "(hidden_dim,)",
            Stage::Logits => "(vocab_size,)",
        }
    }

    /// One line on what happened, as the comments of run.c's `forward` say it.
    pub fn explain(self) -> &'static str {
        match self {
            Stage::Embedding => "copy the token's row of the embedding table into x",
            Stage::AttNorm => "attention rmsnorm: x scaled to unit RMS, times this layer's rms_att_weight",
            Stage::Query => "q = wq @ xb, then RoPE rotates each pair by an angle set by pos",
            Stage::Key => "k = wk @ xb, RoPE-rotated, stored in the KV cache at pos",
            Stage::Value => "v = wv @ xb, stored in the KV cache at pos",
            Stage::AttWeights => "head 0: softmax over positions 0..pos of q·k / sqrt(head_size)",
            Stage::AttOutput => "each head's attention-weighted sum of the cached v vectors",
            Stage::AttResidual => "x += wo @ xb: the attention block's output joins the residual stream",
            Stage::FfnNorm => "ffn rmsnorm of x, times rms_ffn_weight",
            Stage::Hidden => "hb = silu(w1 @ xb) * (w3 @ xb): the SwiGLU hidden layer",
            Stage::FfnResidual => "x += w2 @ hb: the feed-forward block's output joins the residual stream",
            Stage::FinalNorm => "final rmsnorm of x, times rms_final_weight",
            Stage::Logits => "logits = wcls @ x: one score per vocabulary token",
        }
    }
}

/// How many leading values a walkthrough snapshot keeps.
pub const SNAPSHOT_VALUES: usize = 8;

/// One vector of the walkthrough: where it was, its first values and its size.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub stage: Stage,
    /// The layer, or `None` before the first and after the last.
    pub layer: Option<usize>,
    /// Its length.
    pub len: usize,
    /// Its first [`SNAPSHOT_VALUES`] values.
    pub values: Vec<f32>,
    /// Root mean square of all its values.
    pub rms: f32,
}

/// Records what the forward pass does, for one position at a time.
#[derive(Debug, Clone)]
pub struct Probe {
    clock: Clock,
    /// Take walkthrough snapshots too.
    pub trace: bool,
    last: f64,
    current: Timings,
    forwarded: bool,
    n_heads: usize,
    // ---- the record of the last position run
    /// Is there a record at all?
    pub recorded: bool,
    pub pos: usize,
    /// The token that went in at `pos`.
    pub token: u32,
    /// The token that came next (sampled or forced), when known.
    pub next: Option<u32>,
    /// `next` was a prompt token, not sampled.
    pub forced: bool,
    /// The record was recomputed from the KV cache (`inspect_at`), not live.
    pub replayed: bool,
    /// (vocab_size,) the logits, before the sampler touched them.
    pub logits: Vec<f32>,
    /// (n_layers, n_heads, pos + 1) attention weights.
    pub attention: Vec<f32>,
    pub timings: Timings,
    pub snapshots: Vec<Snapshot>,
    /// (positions,) the timings of every position run live since the
    /// generation started (`None`: run before the inspector opened); at
    /// most seq_len entries.
    pub history: Vec<Option<Timings>>,
}

impl Probe {
    pub fn new(clock: Clock, trace: bool) -> Probe {
        Probe {
            clock,
            trace,
            last: 0.0,
            current: Timings::default(),
            forwarded: false,
            n_heads: 0,
            recorded: false,
            pos: 0,
            token: 0,
            next: None,
            forced: false,
            replayed: false,
            logits: Vec::new(),
            attention: Vec::new(),
            timings: Timings::default(),
            snapshots: Vec::new(),
            history: Vec::new(),
        }
    }

    /// A step begins: start its clock.
    pub fn begin(&mut self) {
        self.current = Timings::default();
        self.forwarded = false;
        self.last = (self.clock)();
    }

    /// Charge the time since the previous boundary to `phase`.
    #[inline]
    pub fn lap(&mut self, phase: Phase) {
        let now = (self.clock)();
        self.current.ms[phase as usize] += (now - self.last).max(0.0);
        self.last = now;
    }

    /// The step is over: if it ran a position, its timings become the
    /// record's, and (unless it was a replay) that position's in `history`.
    pub fn finish(&mut self, replay: bool) {
        self.lap(Phase::Other);
        if self.forwarded {
            self.timings = self.current;
            // (a history that cannot grow loses this position's timings
            // rather than aborting: it is at most seq_len small records)
            let room = self.history.len() > self.pos
                || self.history.try_reserve(self.pos + 1 - self.history.len()).is_ok();
            if !replay && room {
                if self.history.len() <= self.pos {
                    self.history.resize(self.pos + 1, None);
                }
                self.history[self.pos] = Some(self.current);
            }
        }
    }

    /// The live timings of `pos`, if it ran with the probe attached.
    pub fn timings_at(&self, pos: usize) -> Option<Timings> {
        self.history.get(pos).copied().flatten()
    }

    /// A forward pass starts at `pos`: make room for its attention weights.
    pub fn begin_forward(&mut self, token: u32, pos: usize, n_layers: usize, n_heads: usize) -> Result<()> {
        // checked: a crafted header can make layers x heads x positions
        // overflow usize on wasm32 even when the KV cache fits
        let too_large = || Error::TooLarge {
            what: "the inspector's attention record",
            bytes: n_layers as u64 * n_heads as u64 * (pos as u64 + 1) * 4,
        };
        let n = n_layers
            .checked_mul(n_heads)
            .and_then(|lh| lh.checked_mul(pos + 1))
            .ok_or_else(too_large)?;
        if n > self.attention.capacity() {
            self.attention
                .try_reserve_exact(n - self.attention.len())
                .map_err(|_| too_large())?;
        }
        self.attention.resize(n, 0.0);
        self.n_heads = n_heads;
        self.forwarded = true;
        self.recorded = false; // until the pass completes
        self.pos = pos;
        self.token = token;
        self.next = None;
        self.forced = false;
        self.replayed = false;
        self.snapshots.clear();
        Ok(())
    }

    /// One head's attention weights over positions 0..=pos.
    #[inline]
    pub fn attention_row(&mut self, layer: usize, head: usize, weights: &[f32]) {
        let t = weights.len();
        self.attention[(layer * self.n_heads + head) * t..][..t].copy_from_slice(weights);
    }

    /// A walkthrough snapshot of `v`, when tracing.
    #[inline]
    pub fn snapshot(&mut self, stage: Stage, layer: Option<usize>, v: &[f32]) {
        if !self.trace {
            return;
        }
        let sum_sq: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
        self.snapshots.push(Snapshot {
            stage,
            layer,
            len: v.len(),
            values: v[..v.len().min(SNAPSHOT_VALUES)].to_vec(),
            rms: (sum_sq / v.len().max(1) as f64).sqrt() as f32,
        });
    }

    /// The pass completed with these logits.
    pub fn end_forward(&mut self, logits: &[f32]) {
        self.logits.clear();
        self.logits.extend_from_slice(logits);
        self.recorded = true;
    }

    /// (pos + 1,) attention weights of one layer and head, if recorded.
    pub fn attention(&self, layer: usize, head: usize) -> Option<&[f32]> {
        let t = self.pos + 1;
        let start = (layer.checked_mul(self.n_heads)?.checked_add(head)?).checked_mul(t)?;
        (self.recorded && head < self.n_heads).then(|| self.attention.get(start..start + t)).flatten()
    }
}

/// Charge time to `phase` when a probe is attached (the forward pass's hook).
#[inline]
pub fn lap(probe: &mut Option<&mut Probe>, phase: Phase) {
    if let Some(p) = probe {
        p.lap(phase);
    }
}

/// A walkthrough snapshot when a probe is attached and tracing.
#[inline]
pub fn snapshot(probe: &mut Option<&mut Probe>, stage: Stage, layer: Option<usize>, v: &[f32]) {
    if let Some(p) = probe {
        p.snapshot(stage, layer, v);
    }
}

/// One of the most likely next tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub token: u32,
    /// Probability after temperature (softmax of logits / temperature; at
    /// temperature 0, where the sampler takes the argmax, softmax of the logits).
    pub prob: f32,
    pub logit: f32,
    /// Could the sampler have picked it (inside the top-p nucleus; at
    /// temperature 0 only the argmax)?
    pub kept: bool,
}

/// The next-token distribution of one position, as the sampler saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// The `k` most likely tokens, most likely first (ties: lower id first).
    pub candidates: Vec<Candidate>,
    /// How many tokens the sampler could pick from (1 when greedy, the whole
    /// vocabulary without top-p).
    pub nucleus: usize,
    /// Their total probability.
    pub nucleus_mass: f32,
    /// The token that came next (when asked about): its probability and
    /// 1-based rank, also when it is not among the candidates.
    pub next: Option<(f32, usize)>,
}

/// The top `k` of `logits` after temperature, and what top-p keeps: the
/// same arithmetic as [`crate::Sampler::sample`], so the probabilities are
/// the ones the sampler drew from.
pub fn distribution(kernels: Kernels, logits: &[f32], temperature: f32, topp: f32, k: usize, next: Option<u32>) -> Distribution {
    let n = logits.len();
    let mut probs = logits.to_vec();
    if temperature != 0.0 && !crate::sampler::underflows(logits, temperature) {
        for p in probs.iter_mut() {
            *p /= temperature;
        }
    }
    kernels.softmax(&mut probs);

    // the k largest, by (probability desc, id asc): one pass with a small sorted list
    let k = k.min(n);
    let mut top: Vec<ProbIndex> = Vec::with_capacity(k + 1);
    for (i, &p) in probs.iter().enumerate() {
        if k == 0 || p.is_nan() || (top.len() == k && p <= top[k - 1].prob) {
            continue; // NaN (a broken checkpoint) never enters: it would break the order
        }
        let at = top.partition_point(|c| c.prob >= p);
        top.insert(at, ProbIndex { prob: p, index: i as u32 });
        top.truncate(k);
    }

    // which tokens the sampler could have picked
    let (nucleus_ids, nucleus_mass): (Option<Vec<u32>>, f32) = if temperature == 0.0 {
        let best = sample_argmax(logits);
        (Some(vec![best]), probs.get(best as usize).copied().unwrap_or(0.0))
    } else if topp <= 0.0 || topp >= 1.0 {
        (None, probs.iter().sum())
    } else {
        let mut buf = vec![ProbIndex::default(); n];
        match nucleus(&probs, topp, &mut buf) {
            Some((last, mass)) => (Some(buf[..=last].iter().map(|p| p.index).collect()), mass),
            None => (Some(vec![sample_argmax(&probs)]), 0.0),
        }
    };
    let candidates = top
        .iter()
        .map(|c| Candidate {
            token: c.index,
            prob: c.prob,
            logit: logits[c.index as usize],
            kept: nucleus_ids.as_ref().map_or(true, |ids| ids.contains(&c.index)),
        })
        .collect();
    let nucleus = nucleus_ids.map_or(n, |ids| ids.len());
    // the next token's rank in the same order: more likely ones, then equal ones with a lower id
    let next = next.filter(|&t| (t as usize) < n).map(|t| {
        let p = probs[t as usize];
        let above = probs.iter().enumerate().filter(|&(i, &q)| q > p || (q == p && i < t as usize)).count();
        (p, above + 1)
    });
    Distribution { candidates, nucleus, nucleus_mass, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_is_the_samplers() {
        let logits = [1.0f32, 3.0, 2.0, 3.0, -1.0];
        // greedy: softmax at temperature 1, only the first argmax is kept
        let d = distribution(Kernels::default(), &logits, 0.0, 0.9, 3, Some(3));
        assert_eq!(d.next.map(|(_, rank)| rank), Some(2)); // after its tie, token 1
        let ids: Vec<u32> = d.candidates.iter().map(|c| c.token).collect();
        assert_eq!(ids, vec![1, 3, 2]); // tie 1 / 3: lower id first
        assert_eq!(d.candidates.iter().map(|c| c.kept).collect::<Vec<_>>(), vec![true, false, false]);
        assert_eq!(d.nucleus, 1);
        let z: f32 = logits.iter().map(|l| (l - 3.0).exp()).sum();
        assert!((d.candidates[0].prob - 1.0 / z).abs() < 1e-6);
        assert_eq!(d.candidates[2].logit, 2.0);

        // temperature 2, top-p 0.5: probs ∝ exp(l / 2); nucleus = the two 3.0s
        let d = distribution(Kernels::default(), &logits, 2.0, 0.5, 5, Some(4));
        assert_eq!(d.next, Some((d.candidates[4].prob, 5)));
        let z: f32 = logits.iter().map(|l| ((l - 3.0) / 2.0).exp()).sum();
        assert!((d.candidates[0].prob - 1.0 / z).abs() < 1e-6);
        assert_eq!(d.nucleus, 2);
        assert_eq!(d.candidates.iter().filter(|c| c.kept).count(), 2);
        assert!((d.nucleus_mass - 2.0 / z).abs() < 1e-6);
        let total: f32 = d.candidates.iter().map(|c| c.prob).sum();
        assert!((total - 1.0).abs() < 1e-5);

        // nothing asked, or NaN logits: no panic, no NaN in the list
        assert!(distribution(Kernels::default(), &logits, 1.0, 0.9, 0, Some(1)).candidates.is_empty());
        let d = distribution(Kernels::default(), &[f32::NAN, 1.0, 2.0], 1.0, 0.9, 3, None);
        assert!(d.candidates.iter().all(|c| !c.prob.is_nan()));

        // no top-p: everything could be drawn
        let d = distribution(Kernels::default(), &logits, 1.0, 1.0, 2, None);
        assert_eq!(d.next, None);
        assert_eq!(d.nucleus, 5);
        assert!(d.candidates.iter().all(|c| c.kept));
        assert_eq!(d.candidates.len(), 2);
    }

    #[test]
    fn probe_partitions_time_and_keeps_attention_rows() {
        fn fake_clock() -> f64 {
            use std::sync::atomic::{AtomicU64, Ordering};
            static T: AtomicU64 = AtomicU64::new(0);
            T.fetch_add(1, Ordering::Relaxed) as f64 // 1 ms per reading
        }
        let mut p = Probe::new(fake_clock, false);
        p.begin();
        p.begin_forward(5, 2, 2, 3).unwrap();
        p.lap(Phase::Projections);
        p.lap(Phase::Attention);
        p.lap(Phase::Attention);
        p.attention_row(1, 2, &[0.5, 0.25, 0.25]);
        p.end_forward(&[0.0, 1.0]);
        p.finish(false);
        assert_eq!(p.timings.get(Phase::Projections), 1.0);
        assert_eq!(p.timings.get(Phase::Attention), 2.0);
        assert_eq!(p.timings.get(Phase::Other), 1.0);
        assert_eq!(p.timings.total(), 4.0);
        assert_eq!(p.attention(1, 2), Some(&[0.5, 0.25, 0.25][..]));
        assert_eq!(p.attention(1, 3), None);
        assert_eq!(p.attention(2, 0), None);
        assert_eq!(p.timings_at(2), Some(p.timings));
        // sizes that overflow are an error, not a panic or a wrapped length
        assert!(matches!(p.begin_forward(0, usize::MAX / 2, 3, 3), Err(Error::TooLarge { .. })));
        assert_eq!(p.timings_at(1), None);
        // a step that ran no position keeps the last record's timings
        p.begin();
        p.finish(false);
        assert_eq!(p.timings.total(), 4.0);
        // a replay's timings are the record's but not the position's
        p.begin();
        p.begin_forward(5, 2, 2, 3).unwrap();
        p.finish(true);
        assert_eq!(p.timings.total(), 1.0);
        assert_eq!(p.timings_at(2).unwrap().total(), 4.0);
    }
}
