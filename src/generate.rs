//! Generation loops: run.c's `generate` and `chat`, one token per `step()`.
//!
//! run.c runs its loops to the end; the browser cannot block, so here each
//! loop iteration is one call to `step()`, and the loop state lives in a
//! struct between calls. The token sequence is exactly run.c's.

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::inspect::{Clock, Phase, Probe};
use crate::kernels::Kernels;
use crate::sampler::{Sampler, SamplerParams};
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
#[derive(Debug, Clone)]
struct Generation {
    prompt_tokens: Vec<u32>,
    steps: usize,
    pos: usize,
    token: u32,
    text: TextStream,
    done: bool,
}

/// The state of run.c's `chat` loop between iterations.
#[derive(Debug, Clone)]
struct Chat {
    system_prompt: String,
    prompt_tokens: Vec<u32>,
    user_idx: usize,
    /// The loop is waiting for the user's next message.
    user_turn: bool,
    next: u32,
    steps: usize,
    pos: usize,
    text: TextStream,
}

#[derive(Debug, Clone)]
enum Mode {
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

/// A model ready to generate: transformer, tokenizer and sampler together.
#[derive(Debug, Clone)]
pub struct Llama {
    pub transformer: Transformer,
    pub tokenizer: Tokenizer,
    sampler: Sampler,
    params: SamplerParams,
    mode: Mode,
    /// BOS, then every token the loop produced (run.c's order).
    tokens: Vec<u32>,
    /// Positions of the current sequence held in the KV cache (0..cached).
    cached: usize,
    /// (cached,) what followed each position: the token and whether it was
    /// forced (a prompt token) rather than sampled. For the inspector's replays.
    outcomes: Vec<(u32, bool)>,
}

impl Llama {
    /// Put a checkpoint and a tokenizer together; their vocabularies must agree.
    pub fn new(checkpoint: Checkpoint, tokenizer: Tokenizer) -> Result<Llama> {
        let vocab_size = checkpoint.config().vocab_size;
        if tokenizer.vocab_size() != vocab_size {
            return Err(Error::VocabMismatch { tokenizer: tokenizer.vocab_size(), checkpoint: vocab_size });
        }
        let seq_len = checkpoint.config().seq_len;
        let transformer = Transformer::new(checkpoint)?;
        let params = SamplerParams { temperature: 1.0, topp: 0.9, seed: 1 };
        // the history of a whole sequence is allocated now (counted in
        // checkpoint::memory_needed), so no step ever grows it
        let too_large = || Error::TooLarge { what: "the token history", bytes: (seq_len as u64 + 1) * 12 };
        let (mut tokens, mut outcomes) = (Vec::new(), Vec::new());
        tokens.try_reserve_exact(seq_len + 1).map_err(|_| too_large())?;
        outcomes.try_reserve_exact(seq_len + 1).map_err(|_| too_large())?;
        Ok(Llama {
            transformer,
            tokenizer,
            sampler: Sampler::new(vocab_size, params)?,
            params,
            mode: Mode::Idle,
            tokens,
            cached: 0,
            outcomes,
        })
    }

    /// Parse both files and put them together.
    pub fn from_bytes(checkpoint: &[u8], tokenizer: &[u8]) -> Result<Llama> {
        let checkpoint = Checkpoint::from_bytes(checkpoint)?;
        let tokenizer = Tokenizer::from_bytes(tokenizer)?;
        Llama::new(checkpoint, tokenizer)
    }

    /// The kernels the model runs (see [`Kernels`]).
    pub fn kernels(&self) -> Kernels {
        self.transformer.kernels()
    }

    /// Run the forward pass and the sampler's softmax with other kernels,
    /// from the next generation on (the KV cache is not reused across kernels).
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.transformer.set_kernels(kernels);
        self.sampler.kernels = kernels;
        self.cached = 0;
    }

    /// The sampler parameters of the current (or last) run, seed included.
    pub fn params(&self) -> SamplerParams {
        self.params
    }

    /// BOS followed by every token produced so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Swap in another tokenizer of the same vocabulary size.
    pub fn set_tokenizer(&mut self, tokenizer: Tokenizer) -> Result<()> {
        let vocab_size = self.transformer.config.vocab_size;
        if tokenizer.vocab_size() != vocab_size {
            return Err(Error::VocabMismatch { tokenizer: tokenizer.vocab_size(), checkpoint: vocab_size });
        }
        self.tokenizer = tokenizer;
        self.mode = Mode::Idle;
        self.forget();
        Ok(())
    }

    /// How many tokens the current generation's prompt has (BOS included);
    /// the steps before that many are prefill, not sampling.
    pub fn prompt_len(&self) -> usize {
        match &self.mode {
            Mode::Generate(g) => g.prompt_tokens.len(),
            _ => 0,
        }
    }

    /// Is a generation or chat loop running (not finished)?
    pub fn is_running(&self) -> bool {
        match &self.mode {
            Mode::Idle => false,
            Mode::Generate(g) => !g.done,
            Mode::Chat(c) => c.pos < c.steps,
        }
    }

    /// Start run.c's `generate` loop with `prompt`; `steps` counts the prompt
    /// tokens too, and is clamped as run.c clamps it.
    pub fn start(&mut self, prompt: &str, params: SamplerParams, steps: i64) -> Result<()> {
        let prompt_tokens = self.tokenizer.encode(prompt, true, false)?;
        let steps = clamp_steps(steps, self.transformer.config.seq_len);
        self.reset(params);
        self.tokens.push(prompt_tokens[0]);
        self.mode = Mode::Generate(Generation {
            token: prompt_tokens[0],
            prompt_tokens,
            steps,
            pos: 0,
            text: TextStream::new(),
            done: false,
        });
        Ok(())
    }

    /// Start run.c's `chat` loop: the conversation spans up to `steps`
    /// positions; each user message goes in with `chat_user`.
    pub fn start_chat(&mut self, system_prompt: &str, params: SamplerParams, steps: i64) -> Result<()> {
        let steps = clamp_steps(steps, self.transformer.config.seq_len);
        self.reset(params);
        self.mode = Mode::Chat(Chat {
            system_prompt: system_prompt.to_string(),
            prompt_tokens: Vec::new(),
            user_idx: 0,
            user_turn: true,
            next: 0,
            steps,
            pos: 0,
            text: TextStream::new(),
        });
        Ok(())
    }

    /// Give the chat the user's next message (only when it is the user's turn).
    pub fn chat_user(&mut self, user_prompt: &str) -> Result<()> {
        let Mode::Chat(c) = &mut self.mode else {
            return Err(Error::State("not in a chat: call start_chat first"));
        };
        if c.pos >= c.steps {
            return Err(Error::State("the chat has used all its steps: start a new one"));
        }
        if !c.user_turn {
            return Err(Error::State("the assistant is still answering: step until the turn ends"));
        }
        // the system prompt only goes into the very first turn, as in run.c
        let system = if c.pos == 0 { Some(c.system_prompt.as_str()) } else { None };
        let rendered = render_chat_prompt(user_prompt, system);
        c.prompt_tokens = self.tokenizer.encode(&rendered, true, false)?;
        c.user_idx = 0;
        c.user_turn = false;
        Ok(())
    }

    fn reset(&mut self, params: SamplerParams) {
        self.params = params;
        self.sampler.reset(params);
        self.forget();
    }

    /// A new sequence: forget the old one's tokens, and what the inspector
    /// recorded of it.
    fn forget(&mut self) {
        self.tokens.clear();
        self.outcomes.clear();
        self.cached = 0;
        self.mode = Mode::Idle;
        if let Some(probe) = self.transformer.probe.as_deref_mut() {
            probe.history.clear();
            probe.recorded = false;
        }
    }

    /// One iteration of the running loop. `Ok(None)` when the generation is
    /// finished (or, in a chat, when the assistant's turn is over).
    pub fn step(&mut self) -> Result<Option<Step>> {
        if let Some(probe) = self.transformer.probe.as_deref_mut() {
            probe.begin();
        }
        let step = match &mut self.mode {
            Mode::Idle => Err(Error::State("nothing to generate: call start() first")),
            Mode::Generate(g) => {
                let seq = Sequence { tokens: &mut self.tokens, outcomes: &mut self.outcomes };
                generate_step(g, &mut self.transformer, &self.tokenizer, &mut self.sampler, seq)
            }
            Mode::Chat(c) => {
                let seq = Sequence { tokens: &mut self.tokens, outcomes: &mut self.outcomes };
                chat_step(c, &mut self.transformer, &self.tokenizer, &mut self.sampler, seq)
            }
        };
        self.cached = match &self.mode {
            Mode::Generate(g) => g.pos,
            Mode::Chat(c) => c.pos,
            Mode::Idle => 0,
        };
        if let Some(probe) = self.transformer.probe.as_deref_mut() {
            probe.finish(false);
        }
        step
    }

    // ---------------------------------------------------------- inspector

    /// Open the inspector (`Some(clock)`: record each step's logits,
    /// attention and timings; `trace`: walkthrough snapshots too) or close it
    /// (`None`: the forward pass records nothing).
    pub fn set_inspect(&mut self, clock: Option<Clock>, trace: bool) {
        match (clock, self.transformer.probe.as_deref_mut()) {
            (None, _) => self.transformer.probe = None,
            (Some(_), Some(probe)) => probe.trace = trace,
            (Some(clock), None) => self.transformer.probe = Some(Box::new(Probe::new(clock, trace))),
        }
    }

    /// The inspector's record of the last position run (live or replayed).
    pub fn probe(&self) -> Option<&Probe> {
        self.transformer.probe.as_deref().filter(|p| p.recorded)
    }

    /// Positions of the current sequence that `inspect_at` can replay.
    pub fn cached_positions(&self) -> usize {
        self.cached
    }

    /// Run position `pos` of the current sequence again, recording it: the
    /// KV cache holds positions 0..pos unchanged, so the logits and attention
    /// are exactly those of the original step (and position `pos` of the
    /// cache is rewritten with the same values). Nothing is sampled.
    pub fn inspect_at(&mut self, pos: usize) -> Result<()> {
        if self.transformer.probe.is_none() {
            return Err(Error::State("the inspector is closed: open it (inspect = true) first"));
        }
        if pos >= self.cached {
            return Err(Error::Argument(format!(
                "position {pos} has not been generated yet: positions 0 to {} can be inspected",
                self.cached as i64 - 1
            )));
        }
        let token = self.tokens[pos];
        let &(next, forced) = self.outcomes.get(pos).ok_or(Error::State("this position did not complete"))?;
        if let Some(probe) = self.transformer.probe.as_deref_mut() {
            probe.begin();
        }
        self.transformer.forward(token, pos)?;
        if let Some(probe) = self.transformer.probe.as_deref_mut() {
            probe.finish(true);
            probe.next = Some(next);
            probe.forced = forced;
            probe.replayed = true;
        }
        Ok(())
    }

    /// Run a whole generation and return its text (the CLI and tests).
    pub fn generate(&mut self, prompt: &str, params: SamplerParams, steps: i64) -> Result<String> {
        self.start(prompt, params, steps)?;
        let mut out = String::new();
        while let Some(step) = self.step()? {
            out.push_str(&step.text);
        }
        Ok(out)
    }
}

/// The sequence so far: the token fed at each position, and what followed it.
struct Sequence<'a> {
    tokens: &'a mut Vec<u32>,
    outcomes: &'a mut Vec<(u32, bool)>,
}

/// One iteration of run.c's `generate` loop.
fn generate_step(
    g: &mut Generation,
    transformer: &mut Transformer,
    tokenizer: &Tokenizer,
    sampler: &mut Sampler,
    seq: Sequence,
) -> Result<Option<Step>> {
    if g.done {
        return Ok(None);
    }
    if g.pos >= g.steps {
        g.done = true;
        return Ok(flush(&mut g.text, g.token));
    }
    // forward the transformer to get logits for the next token
    let logits = transformer.forward(g.token, g.pos)?;
    // advance the state machine
    let forced = g.pos + 1 < g.prompt_tokens.len();
    let next = if forced {
        // if we are still processing the input prompt, force the next prompt token
        g.prompt_tokens[g.pos + 1]
    } else {
        // otherwise sample the next token from the logits
        sampler.sample(logits)
    };
    record_next(transformer, seq.outcomes, next, forced);
    g.pos += 1;
    seq.tokens.push(next);
    // data-dependent terminating condition: the BOS (=1) token delimits sequences
    if next == BOS {
        g.done = true;
        return Ok(flush(&mut g.text, next));
    }
    let text = g.text.push(tokenizer.decode(g.token, next));
    g.token = next;
    Ok(Some(Step { token: next, text }))
}

/// Note which token followed the position just run (and tell the inspector,
/// if open, after timing the sampler).
fn record_next(transformer: &mut Transformer, outcomes: &mut Vec<(u32, bool)>, next: u32, forced: bool) {
    outcomes.push((next, forced));
    if let Some(probe) = transformer.probe.as_deref_mut() {
        probe.lap(Phase::Sampling);
        probe.next = Some(next);
        probe.forced = forced;
    }
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
fn chat_step(
    c: &mut Chat,
    transformer: &mut Transformer,
    tokenizer: &Tokenizer,
    sampler: &mut Sampler,
    seq: Sequence,
) -> Result<Option<Step>> {
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
    seq.tokens.push(token);
    let logits = transformer.forward(token, c.pos)?;
    c.next = sampler.sample(logits);
    let forced = c.user_idx < c.prompt_tokens.len();
    record_next(transformer, seq.outcomes, if forced { c.prompt_tokens[c.user_idx] } else { c.next }, forced);
    c.pos += 1;
    let mut text = String::new();
    if c.user_idx >= c.prompt_tokens.len() && c.next != EOS && !eos_fed {
        // the Assistant is responding, so print its output
        text = c.text.push(tokenizer.decode(token, c.next));
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
