//! Two backends, one sequence: which positions each KV cache holds.
//!
//! The CPU runs the forward pass inside `step()`. A GPU backend (the
//! browser's WebGPU, `src/gpu`) runs it elsewhere with a KV cache of its
//! own, and hands the logits to `step_with_logits`: sampling, tokens and
//! text stay here, on the CPU, exactly as in `step()`. Each cache holds
//! positions 0..n of the current sequence ([`Held`]); a backend that is
//! behind catches up before it runs the next position: the CPU by running
//! the missing positions again (`catch_up_cpu`: the tokens are known, and
//! the values are then exactly those of a run on the CPU alone); the GPU by
//! uploading them from the CPU's cache (after the CPU caught up). So either
//! backend can take over at any step, and the GPU's cache is never read
//! back (a lost GPU cannot be read anyway).

use super::Llama;
use crate::error::{Error, Result};
use crate::generate::{Mode, Step};

/// How many positions of the current sequence each KV cache holds: at most
/// `cached` (the positions run), and whichever backend ran the last step
/// holds them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub cpu: usize,
    pub gpu: usize,
}

impl Held {
    /// After positions were forgotten (`undo`, a new sequence): none held beyond `cached`.
    pub(super) fn clamp(&mut self, cached: usize) {
        self.cpu = self.cpu.min(cached);
        self.gpu = self.gpu.min(cached);
    }
}

impl Llama {
    /// The token and position the next `step()` runs the forward pass on;
    /// `None` when it runs none (the generation is over, or in a chat it is
    /// the user's turn).
    pub fn next_forward(&self) -> Option<(u32, usize)> {
        match &self.mode {
            Mode::Idle => None,
            Mode::Generate(g) => (!g.ended && g.pos < g.steps).then_some((g.token, g.pos)),
            Mode::Chat(c) => (!c.user_turn && c.pos < c.steps).then(|| {
                // chat_step's choice of the token to feed
                let token = if c.user_idx < c.prompt_tokens.len() { c.prompt_tokens[c.user_idx] } else { c.next };
                (token, c.pos)
            }),
        }
    }

    /// Which positions each backend's KV cache holds.
    pub fn held(&self) -> Held {
        self.held
    }

    /// A GPU backend now holds positions 0..n (it uploaded or ran them).
    pub fn set_gpu_held(&mut self, n: usize) {
        self.held.gpu = n.min(self.cached);
    }

    /// Make the CPU's KV cache hold positions 0..pos, running again on the
    /// CPU the positions a GPU ran (the token fed at position p is
    /// `tokens[p]`, in both loops). Nothing to do, one comparison, when the
    /// CPU ran them itself.
    pub fn catch_up_cpu(&mut self, pos: usize) -> Result<()> {
        let pos = pos.min(self.cached);
        while self.held.cpu < pos {
            let p = self.held.cpu;
            self.transformer.forward(self.tokens[p], p)?;
            self.held.cpu = p + 1;
        }
        Ok(())
    }

    /// One `step()` whose forward pass a GPU ran: `logits` (vocab_size,)
    /// are those of `next_forward()`'s token and position. The sampler,
    /// tokens and text go on exactly as in `step()`. With the inspector
    /// open it records the position as the GPU's (see
    /// [`crate::inspect::Record`]'s `gpu`): these logits, what followed,
    /// no attention, and as time only the whole step: `gpu_ms` (the GPU's
    /// pass as the caller measured it, submission to logits on the CPU)
    /// plus this call's sampling. `inspect_at` replays it on the CPU.
    pub fn step_with_logits(&mut self, logits: &[f32], gpu_ms: f64) -> Result<Option<Step>> {
        if self.next_forward().is_none() {
            return self.step();
        }
        let state = &mut self.transformer.state;
        if logits.len() != state.logits.len() {
            return Err(Error::Argument(format!("{} logits given; the vocabulary has {}", logits.len(), state.logits.len())));
        }
        state.logits.copy_from_slice(logits);
        let step = self.run_step(Some(gpu_ms));
        self.held.gpu = self.cached;
        self.held.clamp(self.cached);
        step
    }
}

impl Llama {
    /// One forward pass of `token` at `pos` outside any generation, on the
    /// CPU (tests and benchmarks compare it with a GPU's): the current
    /// sequence ends, and position `pos` of the CPU's KV cache is
    /// overwritten (positions 0..pos are whatever earlier calls left).
    pub fn forward_alone(&mut self, token: u32, pos: usize) -> Result<&[f32]> {
        self.forget();
        Ok(self.transformer.forward(token, pos)?)
    }

    /// `forward_alone`'s bookkeeping for a GPU's forward pass: the current sequence ends.
    pub fn end_sequence(&mut self) {
        self.forget();
    }
}
