//! Where a step's time goes: the phases of the forward pass and a clock.

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

