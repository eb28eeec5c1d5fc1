//! Steering a generation: choose the next token instead of the sampler
//! (`force_next`), and take the last one back (`undo`).
//!
//! Random numbers. A chosen step still runs the sampler on its logits, so
//! the random generator advances exactly as if the sampler had chosen and
//! only the token differs: a later sampled step sees the random number it
//! would have seen. Choosing at every step the token the sampler would pick
//! therefore gives the run without choosing (run.c's tokens); at
//! temperature 0 nothing is drawn either way. `undo` puts the generator back
//! where it was before the step it takes back, so it is the exact inverse of
//! a step: `undo` then `step` gives the same token again, and `undo`,
//! `force_next(t)`, `step` is the run in which t was chosen there in the
//! first place. A text with choices depends only on the prompt, the
//! settings, the seed and the choices, not on the undos on the way.

use super::Llama;
use crate::error::{Error, Result};
use crate::generate::{text_of, Mode};

impl Llama {
    /// The next `step()` takes `token` instead of the sampler's pick (see
    /// the module's notes for the random numbers); the inspector records it
    /// as chosen. Only in a generation, once its prompt has been read,
    /// while it runs; a second call before that step replaces the choice.
    /// Choosing BOS ends the story, as sampling it would.
    pub fn force_next(&mut self, token: u32) -> Result<()> {
        let vocab_size = self.config().vocab_size;
        if token as usize >= vocab_size {
            return Err(Error::Argument(format!(
                "token {token} is not in the vocabulary: tokens are whole numbers 0-{}",
                vocab_size - 1
            )));
        }
        self.check_force()?;
        if let Mode::Generate(g) = &mut self.mode {
            g.chosen = Some(token);
        }
        Ok(())
    }

    /// Can the next token be chosen (`force_next`)? If not, the error says why.
    pub fn check_force(&self) -> Result<()> {
        let g = match &self.mode {
            Mode::Generate(g) => g,
            Mode::Idle => return Err(Error::State("nothing to generate: call start() first")),
            Mode::Chat(_) => return Err(Error::State("choosing the next token works in a generation, not a chat")),
        };
        if g.ended {
            return Err(Error::State("the story ended (the model produced its end token): undo it, or start a new one"));
        }
        if g.pos >= g.steps {
            let seq_len = self.config().seq_len;
            if g.pos >= seq_len {
                return Err(Error::SeqLenReached(seq_len));
            }
            return Err(Error::State("the generation has used its steps: extend it first"));
        }
        if g.pos + 1 < g.prompt_tokens.len() {
            return Err(Error::InPrompt { next: g.pos + 1, prompt: g.prompt_tokens.len() });
        }
        Ok(())
    }

    /// Take back the last generated token (sampled or chosen): the sequence
    /// goes back one position, and so do the text stream and the sampler's
    /// random state (see the module's notes). The KV cache is not touched:
    /// positions before stay as they are, and the next step runs the
    /// position again (writing the same keys and values). A pending
    /// `force_next` is dropped; the inspector forgets what it timed of that
    /// position and what followed it. Returns the generation's whole text
    /// after the undo, as `step()`'s pieces would have built it (an
    /// unfinished UTF-8 character at its end held back, as `step()` holds
    /// it). Not into the prompt, and not in a chat.
    pub fn undo(&mut self) -> Result<String> {
        self.check_undo()?;
        let (Mode::Generate(g), Some(outcome)) = (&mut self.mode, self.outcomes.pop()) else {
            return Err(Error::State("nothing to undo: generate first"));
        };
        self.tokens.pop();
        g.pos -= 1; // tokens: BOS and one token per position run
        g.token = self.tokens[g.pos];
        g.ended = false;
        g.chosen = None;
        let (stream, text) = text_of(&self.tokenizer, &self.tokens);
        g.text = stream;
        self.sampler.set_rng_state(outcome.rng);
        self.cached = g.pos;
        self.held.clamp(self.cached);
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspector.undo(g.pos);
        }
        Ok(text)
    }

    /// Is there a token to take back (`undo`)? If not, the error says why.
    pub fn check_undo(&self) -> Result<()> {
        let g = match &self.mode {
            Mode::Generate(g) => g,
            Mode::Idle => return Err(Error::State("nothing to undo: generate first")),
            Mode::Chat(_) => return Err(Error::State("undo works in a generation, not a chat")),
        };
        if self.tokens.len() <= g.prompt_tokens.len() {
            return Err(Error::State("nothing to undo: every token so far is the prompt's (undo takes back generated tokens only)"));
        }
        // set_kernels forgets the cache (`cached` = 0): the position would
        // run again with other kernels than the ones before it
        if self.cached != g.pos {
            return Err(Error::State("the kernels changed since this text was generated: start a new one"));
        }
        Ok(())
    }
}
