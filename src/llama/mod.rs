//! `Llama`: a model ready to generate — transformer, tokenizer and sampler
//! together, run one loop iteration per `step()` (see [`crate::generate`]),
//! with an optional inspector (see [`crate::inspect`] and `inspecting.rs`).

mod backends;
mod choosing;
mod inspecting;

pub use backends::Held;

use crate::checkpoint::{self, Checkpoint, Config, Header};
use crate::error::{Error, Result};
use crate::generate::{chat_step, clamp_steps, generate_step, render_chat_prompt, Chat, Generation, Mode, Outcome, Parts, Step};
use crate::inspect::Inspector;
use crate::kernels::Kernels;
use crate::sampler::{Sampler, SamplerParams};
use crate::tokenizer::{TextStream, Tokenizer};
use crate::transformer::Transformer;

#[derive(Debug, Clone)]
pub struct Llama {
    transformer: Transformer,
    tokenizer: Tokenizer,
    sampler: Sampler,
    /// Open while someone watches (`set_inspect`); `None` costs the forward
    /// pass one test per mark.
    inspector: Option<Box<Inspector>>,
    mode: Mode,
    /// BOS, then every token the loop produced (run.c's order).
    tokens: Vec<u32>,
    /// Positions of the current sequence held in the KV cache (0..cached).
    cached: usize,
    /// (cached,) what followed each position: the token, whether it was the
    /// prompt's, sampled or chosen, and the random state before it. For the
    /// inspector's replays and `undo`.
    outcomes: Vec<Outcome>,
    /// Positions of the sequence the CPU's KV cache holds, and a GPU's
    /// (see `backends.rs`).
    held: Held,
}

/// What a loaded model holds, for display.
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a> {
    pub header: &'a Header,
    /// Q8_0 group size of the weights as loaded (`None`: fp32).
    pub group_size: Option<usize>,
    /// An fp32 file quantized to Q8_0 while loading.
    pub quantized_on_load: bool,
    pub params: u64,
    pub weight_bytes: u64,
    pub state_bytes: u64,
    /// All the model holds: weights as loaded, run state, token history, sampler.
    pub memory_bytes: u64,
}

impl Llama {
    /// Put a checkpoint and a tokenizer together (their vocabularies must
    /// agree), quantizing fp32 weights to Q8_0 first when asked. Every
    /// caller (page, loader, CLI, tests) builds a model here.
    pub fn new(checkpoint: Checkpoint, tokenizer: Tokenizer, quantize: bool) -> Result<Llama> {
        let vocab_size = checkpoint.config().vocab_size;
        if tokenizer.vocab_size() != vocab_size {
            return Err(Error::VocabMismatch { tokenizer: tokenizer.vocab_size(), checkpoint: vocab_size });
        }
        let checkpoint = if quantize { checkpoint.quantize()? } else { checkpoint };
        let seq_len = checkpoint.config().seq_len;
        let transformer = Transformer::new(checkpoint)?;
        let params = SamplerParams { temperature: 1.0, topp: 0.9, seed: 1 };
        // the history of a whole sequence is allocated now (counted in
        // checkpoint::memory_needed), so no step ever grows it
        let too_large = || Error::TooLarge { what: "the token history", bytes: (seq_len as u64 + 1) * (4 + 16) };
        let (mut tokens, mut outcomes) = (Vec::new(), Vec::new());
        tokens.try_reserve_exact(seq_len + 1).map_err(|_| too_large())?;
        outcomes.try_reserve_exact(seq_len + 1).map_err(|_| too_large())?;
        Ok(Llama {
            transformer,
            tokenizer,
            sampler: Sampler::new(vocab_size, params)?,
            inspector: None,
            mode: Mode::Idle,
            tokens,
            cached: 0,
            outcomes,
            held: Held::default(),
        })
    }

    /// Parse both files and put them together.
    pub fn from_bytes(checkpoint: &[u8], tokenizer: &[u8]) -> Result<Llama> {
        Llama::new(Checkpoint::from_bytes(checkpoint)?, Tokenizer::from_bytes(tokenizer)?, false)
    }

    /// The model's shapes.
    pub fn config(&self) -> &Config {
        self.transformer.config()
    }

    /// The transformer (read-only: weights, header, run state).
    pub fn transformer(&self) -> &Transformer {
        &self.transformer
    }

    /// The sampler (read-only: its parameters and random state).
    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Sizes and formats, for display.
    pub fn summary(&self) -> Summary<'_> {
        let t = &self.transformer;
        let header = &t.header;
        let weight_bytes = t.weights.bytes() as u64;
        // memory_needed counts the weights as the header stores them; these are as loaded
        let file_weights = checkpoint::weight_bytes(header).unwrap_or(0);
        let rest = checkpoint::memory_needed(header).unwrap_or(0).saturating_sub(file_weights);
        Summary {
            header,
            group_size: t.weights.group_size(),
            quantized_on_load: header.group_size.is_none() && t.weights.group_size().is_some(),
            params: t.param_count(),
            weight_bytes,
            state_bytes: checkpoint::run_state_bytes(self.config()).unwrap_or(0),
            memory_bytes: rest + weight_bytes,
        }
    }

    /// The kernels the model runs (see [`Kernels`]).
    pub fn kernels(&self) -> Kernels {
        self.transformer.kernels()
    }

    /// Run the forward pass and the sampler's softmax with other kernels,
    /// from the next generation on (the KV cache is not reused across kernels).
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.transformer.set_kernels(kernels);
        self.sampler.set_kernels(kernels);
        self.cached = 0;
        self.held = Held::default();
    }

    /// The sampler parameters of the current (or last) run, seed included.
    pub fn params(&self) -> SamplerParams {
        self.sampler.params()
    }

    /// BOS followed by every token produced so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Swap in another tokenizer of the same vocabulary size.
    pub fn set_tokenizer(&mut self, tokenizer: Tokenizer) -> Result<()> {
        let vocab_size = self.config().vocab_size;
        if tokenizer.vocab_size() != vocab_size {
            return Err(Error::VocabMismatch { tokenizer: tokenizer.vocab_size(), checkpoint: vocab_size });
        }
        self.tokenizer = tokenizer;
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
            Mode::Generate(g) => g.running(),
            Mode::Chat(c) => c.pos < c.steps,
        }
    }

    /// Start run.c's `generate` loop with `prompt`; `steps` counts the prompt
    /// tokens too, and is clamped as run.c clamps it.
    pub fn start(&mut self, prompt: &str, params: SamplerParams, steps: i64) -> Result<()> {
        let prompt_tokens = self.tokenizer.encode(prompt, true, false)?;
        let steps = clamp_steps(steps, self.config().seq_len);
        self.reset(params);
        self.tokens.push(prompt_tokens[0]);
        self.mode = Mode::Generate(Generation {
            token: prompt_tokens[0],
            prompt_tokens,
            steps,
            pos: 0,
            text: TextStream::new(),
            ended: false,
            chosen: None,
        });
        Ok(())
    }

    /// Go on with the current generation for `steps` more positions from
    /// the one it has reached (0, or more than fit: up to seq_len), reusing
    /// its KV cache: only the new positions cost a forward pass. Whether it
    /// stopped at its steps or the caller stopped stepping, it continues
    /// from its last token with the same sampler (the random numbers go on
    /// where they were), so `start(.., a)`, run to the end, then `extend(b)`
    /// gives exactly the tokens and text of `start(.., a + b)`. Inside the
    /// prompt, the prompt's tokens go on being fed.
    pub fn extend(&mut self, steps: i64) -> Result<()> {
        self.check_extend()?;
        let seq_len = self.config().seq_len;
        if let Mode::Generate(g) = &mut self.mode {
            // run.c's clamp, counted from here: 0 or too many means up to seq_len
            g.steps = g.pos + clamp_steps(steps, seq_len - g.pos);
        }
        Ok(())
    }

    /// Can the current generation go on (`extend`)? If not, the error says why.
    pub fn check_extend(&self) -> Result<()> {
        let seq_len = self.config().seq_len;
        let g = match &self.mode {
            Mode::Generate(g) => g,
            Mode::Idle => return Err(Error::State("nothing to continue: generate first")),
            Mode::Chat(_) => {
                return Err(Error::State("a chat goes on with the user's next message (chatUser), not extend"))
            }
        };
        if g.ended {
            return Err(Error::State("the story ended (the model produced its end token): start a new one"));
        }
        if g.pos >= seq_len {
            return Err(Error::SeqLenReached(seq_len));
        }
        // set_kernels forgets the cache (`cached` = 0): other kernels would
        // continue from keys and values they did not compute
        if self.cached != g.pos {
            return Err(Error::State("the kernels changed since this text was generated: start a new one"));
        }
        Ok(())
    }

    /// Start run.c's `chat` loop: the conversation spans up to `steps`
    /// positions; each user message goes in with `chat_user`.
    pub fn start_chat(&mut self, system_prompt: &str, params: SamplerParams, steps: i64) -> Result<()> {
        let steps = clamp_steps(steps, self.config().seq_len);
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
        self.sampler.reset(params);
        self.forget();
    }

    /// A new sequence: forget the old one's tokens, and what the inspector
    /// recorded of it.
    fn forget(&mut self) {
        self.tokens.clear();
        self.outcomes.clear();
        self.cached = 0;
        self.held = Held::default();
        self.mode = Mode::Idle;
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspector.forget();
        }
    }

    /// One iteration of the running loop. `Ok(None)` when the generation is
    /// finished (or, in a chat, when the assistant's turn is over).
    pub fn step(&mut self) -> Result<Option<Step>> {
        let forward = self.next_forward();
        if let Some((_, pos)) = forward {
            // positions a GPU ran are not in the CPU's cache yet
            self.catch_up_cpu(pos)?;
        }
        let step = self.run_step(None);
        if forward.is_some() {
            self.held.cpu = self.cached;
        }
        self.held.clamp(self.cached);
        step
    }

    /// `step()`'s loop iteration; `gpu_ms`: a GPU already put this step's
    /// logits into the run state, its pass taking that many ms (`None`:
    /// the CPU runs the forward pass).
    fn run_step(&mut self, gpu_ms: Option<f64>) -> Result<Option<Step>> {
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspector.begin_step(gpu_ms);
        }
        let parts = Parts {
            transformer: &mut self.transformer,
            tokenizer: &self.tokenizer,
            sampler: &mut self.sampler,
            inspector: self.inspector.as_deref_mut(),
            tokens: &mut self.tokens,
            outcomes: &mut self.outcomes,
            forwarded: gpu_ms.is_some(),
        };
        let step = match &mut self.mode {
            Mode::Idle => Err(Error::State("nothing to generate: call start() first")),
            Mode::Generate(g) => generate_step(g, parts),
            Mode::Chat(c) => chat_step(c, parts),
        };
        self.cached = match &self.mode {
            Mode::Generate(g) => g.pos,
            Mode::Chat(c) => c.pos,
            Mode::Idle => 0,
        };
        if let Some(inspector) = self.inspector.as_deref_mut() {
            inspector.end_step(false);
        }
        step
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
