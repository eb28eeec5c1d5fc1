//! Generation loops: run.c's `generate` and `chat`, one token per `step()`.
//!
//! run.c runs its loops to the end; the browser cannot block, so here each
//! loop iteration is one call to `step()`, and the loop state lives in a
//! struct between calls. The token sequence is exactly run.c's.

use crate::error::Result;
use crate::inspect::Inspector;
use crate::sampler::Sampler;
use crate::tokenizer::{TextStream, Tokenizer, BOS, EOS};
use crate::transformer::Transformer;

/// One iteration's outcome: the token it produced and the text that became
/// complete (possibly empty while a UTF-8 character is still incomplete).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub token: u32,
    pub text: String,
}

/// run.c's rule: negative steps are 0, and 0 or more than seq_len is seq_len.
pub fn clamp_steps(steps: i64, seq_len: usize) -> usize {
    let steps = steps.max(0) as u64;
    if steps == 0 || steps > seq_len as u64 {
        seq_len
    } else {
        steps as usize
    }
}

/// The state of run.c's `generate` loop between iterations.
///
/// The loop stops at `steps` positions, or when the model produces BOS. A
/// stop at `steps` is not the end: `Llama::extend` can raise `steps` and the
/// loop goes on with the same KV cache, sampler and text stream, exactly as
/// if it had been given the larger `steps` from the start.
#[derive(Debug, Clone)]
pub(crate) struct Generation {
    pub(crate) prompt_tokens: Vec<u32>,
    pub(crate) steps: usize,
    pub(crate) pos: usize,
    pub(crate) token: u32,
    pub(crate) text: TextStream,
    /// The model produced BOS: the story is over for good (unless undone).
    pub(crate) ended: bool,
    /// The caller's pick for the next sampled token (`Llama::force_next`),
    /// taken by the next step instead of the sampler's.
    pub(crate) chosen: Option<u32>,
}

impl Generation {
    /// Still positions to run (the loop has not stopped).
    pub(crate) fn running(&self) -> bool {
        !self.ended && self.pos < self.steps
    }
}

/// The state of run.c's `chat` loop between iterations.
#[derive(Debug, Clone)]
pub(crate) struct Chat {
    pub(crate) system_prompt: String,
    pub(crate) prompt_tokens: Vec<u32>,
    pub(crate) user_idx: usize,
    /// The loop is waiting for the user's next message.
    pub(crate) user_turn: bool,
    pub(crate) next: u32,
    pub(crate) steps: usize,
    pub(crate) pos: usize,
    pub(crate) text: TextStream,
}

#[derive(Debug, Clone)]
pub(crate) enum Mode {
    Idle,
    Generate(Generation),
    Chat(Chat),
}

/// Llama-2 chat template. The system prompt only goes into the first turn.
pub fn render_chat_prompt(user: &str, system: Option<&str>) -> String {
    match system {
        Some(sys) if !sys.is_empty() => {
            format!("[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST]")
        }
        _ => format!("[INST] {user} [/INST]"),
    }
}

/// How the token after a position was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The prompt's next token: fed, not sampled.
    Prompt,
    /// The sampler's pick.
    Sampled,
    /// The caller's pick (`Llama::force_next`) instead of the sampler's.
    Chosen,
}

/// What followed one position: the token, how it was decided, and the
/// sampler's random state before it (what `Llama::undo` puts back).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outcome {
    pub next: u32,
    pub origin: Origin,
    pub rng: u64,
}

// checkpoint::memory_needed counts this many bytes per position
const _: () = assert!(std::mem::size_of::<Outcome>() == 16);

/// What one loop iteration works with: the model's parts, the open
/// inspector (if any), and the sequence so far (the token fed at each
/// position, and what followed it).
pub(crate) struct Parts<'a> {
    pub transformer: &'a mut Transformer,
    pub tokenizer: &'a Tokenizer,
    pub sampler: &'a mut Sampler,
    pub inspector: Option<&'a mut Inspector>,
    pub tokens: &'a mut Vec<u32>,
    pub outcomes: &'a mut Vec<Outcome>,
    /// The logits of this step are already in the run state (a GPU ran
    /// the forward pass): skip the CPU's.
    pub forwarded: bool,
}

/// The logits of `token` at `pos`: the CPU's forward pass, or what a GPU
/// left in the run state when `forwarded` (the open inspector records
/// them as the GPU's).
fn forward<'t>(
    transformer: &'t mut Transformer,
    inspector: Option<&mut Inspector>,
    forwarded: bool,
    token: u32,
    pos: usize,
) -> Result<&'t mut [f32]> {
    if forwarded {
        if let Some(inspector) = inspector {
            // before the sampler scales them in place
            inspector.gpu_logits(token, pos, &transformer.state.logits);
        }
        Ok(&mut transformer.state.logits)
    } else {
        transformer.forward_with(token, pos, inspector)
    }
}

impl Parts<'_> {
    /// Note which token followed the position just run (and tell the
    /// inspector, if open, after timing the sampler).
    fn record_next(&mut self, outcome: Outcome) {
        self.outcomes.push(outcome);
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspector.next_token(outcome.next, outcome.origin);
        }
    }
}

/// One iteration of run.c's `generate` loop.
pub(crate) fn generate_step(g: &mut Generation, mut m: Parts) -> Result<Option<Step>> {
    if g.ended {
        return Ok(None);
    }
    if g.pos >= g.steps {
        // At seq_len nothing can follow: an unfinished UTF-8 character is
        // shown now (as U+FFFD). Below it, `extend` may bring its missing
        // bytes, so they stay pending: the text of a run continued is then
        // exactly that of one longer run (the character appears whole after
        // the continuation, not split or replaced).
        if g.pos >= m.transformer.config().seq_len {
            return Ok(flush(&mut g.text, g.token));
        }
        return Ok(None);
    }
    // forward the transformer to get logits for the next token
    let logits = forward(m.transformer, m.inspector.as_deref_mut(), m.forwarded, g.token, g.pos)?;
    // advance the state machine
    let rng = m.sampler.rng_state();
    let (next, origin) = if g.pos + 1 < g.prompt_tokens.len() {
        // if we are still processing the input prompt, force the next prompt token
        (g.prompt_tokens[g.pos + 1], Origin::Prompt)
    } else {
        // otherwise sample the next token from the logits
        let sampled = m.sampler.sample(logits);
        // ... unless the caller chose it: the sampler has drawn its random
        // number all the same, so a later sampled step sees the one it would have
        match g.chosen.take() {
            Some(token) => (token, Origin::Chosen),
            None => (sampled, Origin::Sampled),
        }
    };
    m.record_next(Outcome { next, origin, rng });
    g.pos += 1;
    m.tokens.push(next);
    // data-dependent terminating condition: the BOS (=1) token delimits sequences
    if next == BOS {
        g.ended = true;
        return Ok(flush(&mut g.text, next));
    }
    let text = g.text.push(m.tokenizer.decode(g.token, next));
    g.token = next;
    Ok(Some(Step { token: next, text }))
}

/// The text stream of a generation of `tokens` (BOS first, no BOS after
/// it) as its steps leave it, and the text they gave: each token decoded
/// after the one before, an unfinished UTF-8 character held back. What
/// `Llama::undo` rebuilds the stream from (at most seq_len small pieces).
pub(crate) fn text_of(tokenizer: &Tokenizer, tokens: &[u32]) -> (TextStream, String) {
    let mut stream = TextStream::new();
    let mut text = String::new();
    for pair in tokens.windows(2) {
        text.push_str(&stream.push(tokenizer.decode(pair[0], pair[1])));
    }
    (stream, text)
}

/// The end of a generation: any unfinished UTF-8 character, made visible.
fn flush(text: &mut TextStream, token: u32) -> Option<Step> {
    let rest = text.finish();
    (!rest.is_empty()).then_some(Step { token, text: rest })
}

/// One iteration of run.c's `chat` loop. Returns `Ok(None)` when it is the
/// user's turn (call `chat_user`) or the conversation is out of steps.
///
/// run.c feeds the assistant's final EOS back in and samples once more before
/// asking the user, printing that sample; we run that iteration too (so the
/// tokens and random numbers stay identical) but do not show its text.
pub(crate) fn chat_step(c: &mut Chat, mut m: Parts) -> Result<Option<Step>> {
    if c.user_turn || c.pos >= c.steps {
        return Ok(flush(&mut c.text, c.next));
    }
    // determine the token to pass into the transformer next
    let token = if c.user_idx < c.prompt_tokens.len() {
        let t = c.prompt_tokens[c.user_idx];
        c.user_idx += 1;
        t
    } else {
        c.next
    };
    // EOS (=2) token ends the Assistant turn
    let eos_fed = token == EOS;
    m.tokens.push(token);
    let logits = forward(m.transformer, m.inspector.as_deref_mut(), m.forwarded, token, c.pos)?;
    let rng = m.sampler.rng_state();
    c.next = m.sampler.sample(logits);
    let outcome = if c.user_idx < c.prompt_tokens.len() {
        Outcome { next: c.prompt_tokens[c.user_idx], origin: Origin::Prompt, rng }
    } else {
        Outcome { next: c.next, origin: Origin::Sampled, rng }
    };
    m.record_next(outcome);
    c.pos += 1;
    let mut text = String::new();
    if c.user_idx >= c.prompt_tokens.len() && c.next != EOS && !eos_fed {
        // the Assistant is responding, so print its output
        text = c.text.push(m.tokenizer.decode(token, c.next));
    }
    if eos_fed {
        c.user_turn = true;
        text.push_str(&c.text.finish());
    }
    Ok(Some(Step { token: c.next, text }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_clamped_like_run_c() {
        assert_eq!(clamp_steps(-5, 512), 512); // negative -> 0 -> seq_len
        assert_eq!(clamp_steps(0, 512), 512);
        assert_eq!(clamp_steps(600, 512), 512);
        assert_eq!(clamp_steps(256, 512), 256);
    }

    #[test]
    fn chat_template() {
        assert_eq!(render_chat_prompt("hi", None), "[INST] hi [/INST]");
        assert_eq!(render_chat_prompt("hi", Some("")), "[INST] hi [/INST]");
        assert_eq!(
            render_chat_prompt("hi", Some("be brief")),
            "[INST] <<SYS>>\nbe brief\n<</SYS>>\n\nhi [/INST]"
        );
    }
}
