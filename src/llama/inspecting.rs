//! The inspector's side of `Llama`: open and close it, read what it
//! recorded, and replay an earlier position from the KV cache (to record
//! it, to look through the logit lens, or to follow one number).

use super::Llama;
use crate::error::{Error, Result};
use crate::inspect::{distribution, follow, lens, Clock, Distribution, Follow, Inspector, Lens, Record, Stage};

impl Llama {
    /// Open the inspector (`Some(clock)`: record each step's logits,
    /// attention and timings; `trace`: walkthrough snapshots too) or close it
    /// (`None`: the forward pass records nothing).
    pub fn set_inspect(&mut self, clock: Option<Clock>, trace: bool) {
        match (clock, self.inspector.as_deref_mut()) {
            (None, _) => self.inspector = None,
            (Some(_), Some(inspector)) => inspector.set_tracing(trace),
            (Some(clock), None) => self.inspector = Some(Box::new(Inspector::new(clock, trace))),
        }
    }

    /// The open inspector, if any.
    pub fn inspector(&self) -> Option<&Inspector> {
        self.inspector.as_deref()
    }

    /// The inspector's record of the last position run (live or replayed).
    pub fn record(&self) -> Option<&Record> {
        self.inspector()?.record()
    }

    /// The recorded position's `k` most likely next tokens and the nucleus,
    /// with the current sampler's temperature and top-p.
    pub fn distribution(&self, k: usize) -> Option<Distribution> {
        let r = self.record()?;
        Some(distribution(&self.sampler, &r.logits, k, r.next))
    }

    /// Positions of the current sequence that `inspect_at` can replay.
    pub fn cached_positions(&self) -> usize {
        self.cached
    }

    /// Run position `pos` of the current sequence again, recording it: the
    /// KV cache holds positions 0..pos unchanged, so the logits and attention
    /// are exactly those of the original step (and position `pos` of the
    /// cache is rewritten with the same values). Nothing is sampled. Always
    /// on the CPU: a position a GPU ran (its record had logits only) gets
    /// its attention and phase timings here, the CPU's cache catching up
    /// first (exactly a CPU-only run's values).
    pub fn inspect_at(&mut self, pos: usize) -> Result<()> {
        if self.inspector.is_none() {
            return Err(Error::State("the inspector is closed: open it (inspect = true) first"));
        }
        if pos >= self.cached {
            return Err(not_generated(pos, self.cached));
        }
        // positions a GPU ran are not in the CPU's cache yet
        self.catch_up_cpu(pos)?;
        let Some(inspector) = self.inspector.as_deref_mut() else {
            return Err(Error::State("the inspector is closed: open it (inspect = true) first"));
        };
        let token = self.tokens[pos];
        let outcome = *self.outcomes.get(pos).ok_or(Error::State("this position did not complete"))?;
        inspector.begin_step(None);
        self.transformer.forward_with(token, pos, Some(&mut *inspector))?;
        inspector.end_step(true);
        inspector.outcome(outcome.next, outcome.origin);
        Ok(())
    }

    /// The logit lens of position `pos` of the current sequence (see
    /// [`crate::inspect::lens`]): the `k` most likely next tokens after each
    /// layer, at temperature 1, and of the model's output; the last layer's
    /// equal the output bit for bit. A replay of that position, as
    /// `inspect_at` does (one forward pass, plus n_layers classifier
    /// matmuls); it needs no inspector, leaves the inspector's record as it
    /// was, and changes no token, random number or value of the KV cache.
    pub fn lens(&mut self, pos: usize, k: usize) -> Result<Lens> {
        if pos >= self.cached {
            return Err(not_generated(pos, self.cached));
        }
        self.catch_up_cpu(pos)?;
        let next = self.outcomes.get(pos).map(|o| o.next);
        lens(&mut self.transformer, self.tokens[pos], pos, next, k)
    }

    /// How element `index` of `stage`'s vector at position `pos` was
    /// computed from its inputs (see [`crate::inspect::follow`]): `layer`
    /// for the stages inside the layers, `None` for the embedding, the
    /// final RMSNorm and the logits. Its `value` is the forward pass's, bit
    /// for bit. A replay of that position, as `lens` does (one forward pass
    /// and a few vector copies); it needs no inspector, leaves the
    /// inspector's record as it was, and changes no token, random number or
    /// value of the KV cache.
    pub fn follow(&mut self, pos: usize, stage: Stage, layer: Option<usize>, index: usize) -> Result<Follow> {
        if pos >= self.cached {
            return Err(not_generated(pos, self.cached));
        }
        // positions a GPU ran are not in the CPU's cache yet
        self.catch_up_cpu(pos)?;
        follow(&mut self.transformer, self.tokens[pos], pos, stage, layer, index)
    }
}

/// The refusal of a position the KV cache does not hold (yet).
pub(super) fn not_generated(pos: usize, cached: usize) -> Error {
    if cached == 0 {
        return Error::Argument(format!("position {pos} has not been generated yet, nor has any other (generate first)"));
    }
    Error::Argument(format!(
        "position {pos} has not been generated yet: positions 0 to {} can be inspected",
        cached - 1
    ))
}
