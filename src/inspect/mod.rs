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
//!
//! A GPU backend runs the forward pass elsewhere (`Llama::step_with_logits`):
//! its record holds the logits only (nothing else is read back from the
//! GPU), is flagged `gpu`, has no attention, no walkthrough and no split of
//! its time into phases, only the whole step's (`step_ms`). Replaying such a
//! position (`inspect_at`) runs it on the CPU and records everything. The logit lens
//! (`lens.rs`, `Llama::lens`) is such a replay too, keeping each layer's
//! residual stream; it needs no inspector open. So is following one number
//! (`follow.rs`, `Llama::follow`): the replay copies one layer's whole
//! vectors, and one element is explained from its inputs and the weights.

mod distribution;
mod follow;
mod lens;
mod stage;
mod timings;

pub use distribution::{distribution, Candidate, Distribution};
pub use follow::{check as check_follow, follow, index_error, layer_error, AttOutput, Attention, Embedding, Follow, Kind, Matmul, Quantized, Rmsnorm, Rope, Swiglu, RMS_EPS};
pub(crate) use follow::{Capture, Kept};
pub use lens::{lens, Lens, LensCandidate, Prediction};
pub use stage::{Snapshot, Stage, SNAPSHOT_VALUES};
#[cfg(not(target_arch = "wasm32"))]
pub use timings::native_clock;
pub use timings::{Clock, Phase, Timings};

use crate::error::{Error, Result};
use crate::generate::Origin;

/// What the inspector recorded of one position (read-only outside).
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub pos: usize,
    /// The token that went in at `pos`.
    pub token: u32,
    /// The token that came next (sampled or forced), when known.
    pub next: Option<u32>,
    /// `next` was a prompt token, not sampled.
    pub forced: bool,
    /// `next` was chosen by the caller (`Llama::force_next`), not sampled.
    pub chosen: bool,
    /// The record was recomputed from the KV cache (`inspect_at`), not live.
    pub replayed: bool,
    /// A GPU ran the forward pass (live, `Llama::step_with_logits`): the
    /// record holds its logits only; `attention` and `snapshots` are empty
    /// and `timings` is all zero (no phase split: see `step_ms`). Replay
    /// the position (`inspect_at`, on the CPU) for those.
    pub gpu: bool,
    /// The whole step in ms: `timings.total()` on the CPU; on a GPU, its
    /// pass from submission until its logits were on the CPU (as the
    /// caller measured it) plus the CPU's part of the step (sampling, text).
    pub step_ms: f64,
    /// (vocab_size,) the logits, before the sampler touched them.
    pub logits: Vec<f32>,
    /// (n_layers, n_heads, pos + 1) attention weights (empty on a GPU record).
    pub attention: Vec<f32>,
    pub timings: Timings,
    /// The walkthrough's vectors, in run.c's order (empty unless tracing).
    pub snapshots: Vec<Snapshot>,
    n_heads: usize,
}

impl Record {
    /// (pos + 1,) attention weights of one layer and head, if recorded
    /// (never on a GPU record).
    pub fn attention(&self, layer: usize, head: usize) -> Option<&[f32]> {
        let t = self.pos + 1;
        let start = (layer.checked_mul(self.n_heads)?.checked_add(head)?).checked_mul(t)?;
        (head < self.n_heads).then(|| self.attention.get(start..start + t)).flatten()
    }
}

/// How a position ran live with the inspector open: its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Live {
    /// On the CPU: the step split into phases.
    Cpu(Timings),
    /// On a GPU: only the whole step, in ms (see [`Record::step_ms`]).
    Gpu(f64),
}

impl Live {
    /// The whole step, in ms.
    pub fn total(&self) -> f64 {
        match self {
            Live::Cpu(t) => t.total(),
            Live::Gpu(ms) => *ms,
        }
    }
}

/// The inspector of one model: open while `Llama` holds one. `Llama` drives
/// the steps (`begin_step`, `next_token`, `end_step`); the forward pass
/// writes through a [`Recorder`]; everyone else only reads.
#[derive(Debug, Clone)]
pub struct Inspector {
    clock: Clock,
    /// Take walkthrough snapshots too.
    trace: bool,
    last: f64,
    current: Timings,
    /// The current step ran a forward pass (or took a GPU's logits).
    forwarded: bool,
    /// The current step's logits came from a GPU whose pass took this
    /// many ms (`None`: the CPU's forward pass).
    gpu_ms: Option<f64>,
    /// `record` holds a completed pass.
    recorded: bool,
    record: Record,
    /// (positions,) the time of every position run live since the
    /// generation started (`None`: run before the inspector opened); at
    /// most seq_len entries.
    history: Vec<Option<Live>>,
}

impl Inspector {
    pub fn new(clock: Clock, trace: bool) -> Inspector {
        Inspector {
            clock,
            trace,
            last: 0.0,
            current: Timings::default(),
            forwarded: false,
            gpu_ms: None,
            recorded: false,
            record: Record::default(),
            history: Vec::new(),
        }
    }

    /// Does it keep walkthrough snapshots?
    pub fn tracing(&self) -> bool {
        self.trace
    }

    pub(crate) fn set_tracing(&mut self, on: bool) {
        self.trace = on;
    }

    /// The record of the last position run (live or replayed), once there is one.
    pub fn record(&self) -> Option<&Record> {
        self.recorded.then_some(&self.record)
    }

    /// The live phase timings of `pos`, if it ran on the CPU with the
    /// inspector open (a GPU's step has none: see `live_at`).
    pub fn timings_at(&self, pos: usize) -> Option<Timings> {
        match self.live_at(pos)? {
            Live::Cpu(t) => Some(t),
            Live::Gpu(_) => None,
        }
    }

    /// How `pos` ran live (on which backend, and its time), if it ran with
    /// the inspector open.
    pub fn live_at(&self, pos: usize) -> Option<Live> {
        self.history.get(pos).copied().flatten()
    }

    /// (positions,) how each position of the current text ran live.
    pub fn history(&self) -> &[Option<Live>] {
        &self.history
    }

    // ---------------------------------------------- driven by `Llama`

    /// A step begins: start its clock. `gpu_ms`: a GPU's pass took that
    /// long and left this step's logits (`None`: the CPU runs the pass).
    pub(crate) fn begin_step(&mut self, gpu_ms: Option<f64>) {
        self.current = Timings::default();
        self.forwarded = false;
        self.gpu_ms = gpu_ms;
        self.last = (self.clock)();
    }

    /// Charge the time since the previous boundary to `phase`.
    #[inline]
    pub(crate) fn lap(&mut self, phase: Phase) {
        let now = (self.clock)();
        self.current.ms[phase as usize] += (now - self.last).max(0.0);
        self.last = now;
    }

    /// The token that followed the position just run (after timing the sampler).
    pub(crate) fn next_token(&mut self, next: u32, origin: Origin) {
        self.lap(Phase::Sampling);
        self.outcome(next, origin);
    }

    /// What followed the recorded position (a replay is told afterwards).
    pub(crate) fn outcome(&mut self, next: u32, origin: Origin) {
        self.record.next = Some(next);
        self.record.forced = origin == Origin::Prompt;
        self.record.chosen = origin == Origin::Chosen;
    }

    /// The sequence went back to position `pos` (`Llama::undo`): that
    /// position will run again, so its live timings go; a record of it keeps
    /// its logits and attention (the step that runs it again computes the
    /// same) but no longer knows what followed; a record beyond it goes.
    pub(crate) fn undo(&mut self, pos: usize) {
        self.history.truncate(pos);
        let r = &mut self.record;
        if r.pos > pos {
            self.recorded = false;
        } else if r.pos == pos {
            (r.next, r.forced, r.chosen) = (None, false, false);
        }
    }

    /// The step is over: if it ran a position, its timings become the
    /// record's, and (unless it was a replay) that position's in `history`.
    /// A GPU's step keeps only its whole time (no phase split).
    pub(crate) fn end_step(&mut self, replay: bool) {
        self.lap(Phase::Other);
        if !self.forwarded {
            return;
        }
        let live = match self.gpu_ms {
            Some(ms) if self.record.gpu => Live::Gpu(ms.max(0.0) + self.current.total()),
            _ => Live::Cpu(self.current),
        };
        (self.record.timings, self.record.step_ms) = match live {
            Live::Cpu(t) => (t, t.total()),
            Live::Gpu(ms) => (Timings::default(), ms),
        };
        self.record.replayed = replay;
        let pos = self.record.pos;
        // (a history that cannot grow loses this position's timings
        // rather than aborting: it is at most seq_len small records)
        let room = self.history.len() > pos || self.history.try_reserve(pos + 1 - self.history.len()).is_ok();
        if !replay && room {
            if self.history.len() <= pos {
                self.history.resize(pos + 1, None);
            }
            self.history[pos] = Some(live);
        }
    }

    /// A new sequence: nothing recorded of it yet.
    pub(crate) fn forget(&mut self) {
        self.history.clear();
        self.recorded = false;
    }

    // ---------------------------------------- driven by the forward pass

    /// A forward pass starts at `pos`: make room for its attention weights.
    fn begin_forward(&mut self, token: u32, pos: usize, n_layers: usize, n_heads: usize) -> Result<()> {
        // checked: a crafted header can make layers x heads x positions
        // overflow usize on wasm32 even when the KV cache fits
        let too_large = || Error::TooLarge {
            what: "the inspector's attention record",
            bytes: n_layers as u64 * n_heads as u64 * (pos as u64 + 1) * 4,
        };
        let n = n_layers.checked_mul(n_heads).and_then(|lh| lh.checked_mul(pos + 1)).ok_or_else(too_large)?;
        let r = &mut self.record;
        if n > r.attention.capacity() {
            r.attention.try_reserve_exact(n - r.attention.len()).map_err(|_| too_large())?;
        }
        r.attention.resize(n, 0.0);
        self.forwarded = true;
        self.recorded = false; // until the pass completes
        r.n_heads = n_heads;
        (r.pos, r.token, r.next, r.forced, r.chosen, r.replayed, r.gpu) = (pos, token, None, false, false, false, false);
        r.snapshots.clear();
        Ok(())
    }

    /// A GPU ran `token` at `pos` (the step `begin_step` was told of):
    /// record its `logits`, before the sampler touches them; nothing else
    /// was read back (no attention, no walkthrough).
    pub(crate) fn gpu_logits(&mut self, token: u32, pos: usize, logits: &[f32]) {
        self.lap(Phase::Other);
        self.forwarded = true;
        let r = &mut self.record;
        r.attention.clear();
        r.snapshots.clear();
        r.n_heads = 0;
        (r.pos, r.token, r.next, r.forced, r.chosen, r.replayed, r.gpu) = (pos, token, None, false, false, false, true);
        r.logits.clear();
        r.logits.extend_from_slice(logits);
        self.recorded = true;
    }

    /// A walkthrough snapshot of `v`, when tracing.
    fn snapshot(&mut self, stage: Stage, layer: Option<usize>, v: &[f32]) {
        if self.trace {
            self.record.snapshots.push(Snapshot::of(stage, layer, v));
        }
    }
}

/// The forward pass's handle on whoever watches it: the inspector (`None`
/// when it is closed, so each mark costs one test), the logit lens's copy
/// of the residual stream, and the copy of one layer's vectors for
/// following one number (`None` unless asked: one test each). Marks name
/// the phase that just ended and the vectors worth showing at that point.
pub struct Recorder<'a> {
    inspector: Option<&'a mut Inspector>,
    /// (n_layers, dim) x after each layer, for the logit lens.
    residuals: Option<&'a mut [f32]>,
    /// One layer's whole vectors, for `follow`.
    capture: Option<&'a mut Capture>,
}

impl<'a> Recorder<'a> {
    pub fn new(inspector: Option<&'a mut Inspector>) -> Recorder<'a> {
        Recorder { inspector, residuals: None, capture: None }
    }

    /// A pass that keeps x after each layer in `residuals` (n_layers, dim),
    /// for the logit lens (no inspector).
    pub fn residuals(residuals: &'a mut [f32]) -> Recorder<'a> {
        Recorder { inspector: None, residuals: Some(residuals), capture: None }
    }

    /// A pass that copies one layer's vectors into `capture`, for following
    /// one number (no inspector).
    pub(crate) fn capture(capture: &'a mut Capture) -> Recorder<'a> {
        Recorder { inspector: None, residuals: None, capture: Some(capture) }
    }

    /// The pass starts (what came before it in the step was `Other`).
    pub fn begin(&mut self, token: u32, pos: usize, n_layers: usize, n_heads: usize) -> Result<()> {
        match self.inspector.as_deref_mut() {
            Some(i) => {
                i.lap(Phase::Other);
                i.begin_forward(token, pos, n_layers, n_heads)
            }
            None => Ok(()),
        }
    }

    /// `phase` ended here; these vectors (of `layer`) are its results.
    #[inline]
    pub fn mark(&mut self, phase: Phase, layer: Option<usize>, vectors: &[(Stage, &[f32])]) {
        if let Some(i) = self.inspector.as_deref_mut() {
            i.lap(phase);
        }
        self.vectors(layer, vectors);
    }

    /// Walkthrough snapshots without a phase boundary.
    #[inline]
    pub fn vectors(&mut self, layer: Option<usize>, vectors: &[(Stage, &[f32])]) {
        if let Some(i) = self.inspector.as_deref_mut() {
            for &(stage, v) in vectors {
                i.snapshot(stage, layer, v);
            }
        }
        if let Some(c) = self.capture.as_deref_mut() {
            for &(stage, v) in vectors {
                c.stage_vector(stage, layer, v);
            }
        }
    }

    /// Vectors the walkthrough does not show (q before RoPE, a matmul's
    /// output before a residual addition...), for following one number.
    #[inline]
    pub(crate) fn keep(&mut self, layer: Option<usize>, vectors: &[(Kept, &[f32])]) {
        if let Some(c) = self.capture.as_deref_mut() {
            for &(kept, v) in vectors {
                c.kept_vector(kept, layer, v);
            }
        }
    }

    /// One head's attention weights over positions 0..=pos (head 0's are
    /// also the walkthrough's `att`).
    #[inline]
    pub fn attention(&mut self, layer: usize, head: usize, weights: &[f32]) {
        if let Some(i) = self.inspector.as_deref_mut() {
            let (t, r) = (weights.len(), &mut i.record);
            r.attention[(layer * r.n_heads + head) * t..][..t].copy_from_slice(weights);
            if head == 0 {
                i.snapshot(Stage::AttWeights, Some(layer), weights);
            }
        }
        if let Some(c) = self.capture.as_deref_mut() {
            c.attention_row(layer, head, weights);
        }
    }

    /// x after layer `layer`: the residual stream the logit lens reads.
    #[inline]
    pub fn residual(&mut self, layer: usize, x: &[f32]) {
        if let Some(r) = self.residuals.as_deref_mut() {
            r[layer * x.len()..][..x.len()].copy_from_slice(x);
        }
    }

    /// The pass completed with these logits (the classifier's time ends here).
    pub fn end(&mut self, logits: &[f32]) {
        if let Some(i) = self.inspector.as_deref_mut() {
            i.record.logits.clear();
            i.record.logits.extend_from_slice(logits);
            i.recorded = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 ms per reading (a counter of each test's own thread).
    fn fake_clock() -> f64 {
        thread_local!(static T: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
        T.with(|t| {
            t.set(t.get() + 1);
            t.get() as f64
        })
    }

    #[test]
    fn inspector_partitions_time_and_keeps_attention_rows() {
        let mut p = Inspector::new(fake_clock, false);
        p.begin_step(None);
        p.begin_forward(5, 2, 2, 3).unwrap();
        p.lap(Phase::Projections);
        p.lap(Phase::Attention);
        p.lap(Phase::Attention);
        Recorder::new(Some(&mut p)).attention(1, 2, &[0.5, 0.25, 0.25]);
        Recorder::new(Some(&mut p)).end(&[0.0, 1.0]);
        p.end_step(false);
        let r = p.record().unwrap();
        assert_eq!(r.timings.get(Phase::Projections), 1.0);
        assert_eq!(r.timings.get(Phase::Attention), 2.0);
        assert_eq!(r.timings.get(Phase::Other), 1.0);
        assert_eq!(r.timings.total(), 4.0);
        assert_eq!(r.attention(1, 2), Some(&[0.5, 0.25, 0.25][..]));
        assert_eq!(r.attention(1, 3), None);
        assert_eq!(r.attention(2, 0), None);
        assert_eq!(p.timings_at(2), Some(r.timings));
        // sizes that overflow are an error, not a panic or a wrapped length
        assert!(matches!(p.begin_forward(0, usize::MAX / 2, 3, 3), Err(Error::TooLarge { .. })));
        assert_eq!(p.timings_at(1), None);
        // a step that ran no position keeps the last record's timings
        Recorder::new(Some(&mut p)).end(&[0.0, 1.0]);
        p.begin_step(None);
        p.end_step(false);
        assert_eq!(p.record().unwrap().timings.total(), 4.0);
        // a replay's timings are the record's but not the position's
        p.begin_step(None);
        p.begin_forward(5, 2, 2, 3).unwrap();
        p.end_step(true);
        assert_eq!(p.record.timings.total(), 1.0);
        assert!(p.record.replayed);
        assert_eq!(p.timings_at(2).unwrap().total(), 4.0);
    }

    #[test]
    fn a_gpu_step_keeps_its_logits_and_only_its_whole_time() {
        let mut p = Inspector::new(fake_clock, true);
        // a CPU step at position 0 first: its record has attention
        p.begin_step(None);
        p.begin_forward(5, 0, 2, 3).unwrap();
        Recorder::new(Some(&mut p)).end(&[0.0, 1.0]);
        p.end_step(false);
        assert!(!p.record().unwrap().gpu && p.record().unwrap().attention(0, 0).is_some());
        // then the GPU's position 1 (its pass took 10 ms)
        p.begin_step(Some(10.0));
        p.gpu_logits(7, 1, &[2.0, -1.0]);
        p.next_token(3, Origin::Chosen);
        p.end_step(false);
        let r = p.record().unwrap();
        assert!(r.gpu && !r.replayed && r.chosen && !r.forced);
        assert_eq!((r.pos, r.token, r.next), (1, 7, Some(3)));
        assert_eq!(r.logits, [2.0, -1.0]);
        assert!(r.attention.is_empty() && r.snapshots.is_empty());
        assert_eq!(r.attention(0, 0), None);
        // the GPU's 10 ms and the three readings on the CPU (1 ms each); no phases
        assert_eq!(r.timings, Timings::default());
        assert_eq!(r.step_ms, 13.0);
        assert_eq!(p.live_at(1), Some(Live::Gpu(13.0)));
        assert_eq!(p.timings_at(1), None);
        assert!(matches!(p.live_at(0), Some(Live::Cpu(_))));
        // a CPU step after it is the CPU's again
        p.begin_step(None);
        p.begin_forward(3, 2, 2, 3).unwrap();
        Recorder::new(Some(&mut p)).end(&[0.0, 1.0]);
        p.end_step(false);
        let r = p.record().unwrap();
        assert!(!r.gpu && r.attention(1, 2).is_some());
        assert_eq!(r.step_ms, r.timings.total());
    }
}
