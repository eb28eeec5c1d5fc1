//! One error type for everything a file or a caller can get wrong.
//!
//! Every message is meant to be read by the person who dropped the file or
//! called the API: it says what was expected and what was found, with numbers.
//! The wasm layer turns these into JS `Error`s; the CLI prints them.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The checkpoint file is not something we can run.
    Checkpoint(String),
    /// The checkpoint's bytes do not match what its header describes.
    CheckpointSize { actual: u64, expected: u64 },
    /// An export-format checkpoint of a version we do not run.
    UnsupportedVersion(i32),
    /// The tokenizer file is malformed.
    Tokenizer(String),
    /// Tokenizer and checkpoint disagree about the vocabulary.
    VocabMismatch { tokenizer: usize, checkpoint: usize },
    /// A run-time argument that cannot be used (after run.c's clamping).
    Argument(String),
    /// The header asks for more memory than we can (or will) allocate.
    TooLarge { what: &'static str, bytes: u64 },
    /// An API call made in the wrong order (e.g. `step` before `start`).
    State(&'static str),
    /// `extend` on a generation that already holds all `seq_len` positions.
    SeqLenReached(usize),
    /// `force_next` while the next token is still the prompt's: token
    /// `next` of a prompt of `prompt` tokens.
    InPrompt { next: usize, prompt: usize },
    /// More helper threads asked for than the pool takes (`max`).
    TooManyHelpers { asked: usize, max: usize },
    /// Helper threads asked for before they have all started.
    HelpersNotStarted { asked: usize, started: usize },
    /// A helper thread died (a trap in its Worker, a panic natively).
    HelperDied,
    /// A helper thread asked for an index outside 1..=`max`.
    HelperIndex { index: usize, max: usize },
    /// A second helper thread asked for an index already taken.
    HelperTaken(usize),
    /// A helper thread's part of a job panicked (natively).
    HelperPanicked(usize),
    /// The WebGPU backend cannot start or run (no WebGPU, no adapter, a
    /// kernel that does not compile, out of GPU memory, the device lost).
    Gpu(String),
    /// The GPU's `limit` is `have`; `what` needs `need`.
    GpuLimit { limit: String, have: f64, need: f64, what: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// 1056540 -> "1,056,540": byte counts are easier to compare with separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Checkpoint(msg) => write!(f, "invalid checkpoint: {msg}"),
            Error::CheckpointSize { actual, expected } => write!(
                f,
                "invalid checkpoint: the file is {} bytes but its header needs {} \
                 (truncated or not a llama2.c checkpoint?)",
                thousands(*actual),
                thousands(*expected)
            ),
            Error::UnsupportedVersion(v) => write!(
                f,
                "invalid checkpoint: export format version {v} is unknown \
                 (supported: legacy v0, export version 1 (fp32) and 2 (Q8_0))"
            ),
            Error::Tokenizer(msg) => write!(f, "invalid tokenizer: {msg}"),
            Error::VocabMismatch { tokenizer, checkpoint } => write!(
                f,
                "the tokenizer has {} tokens but the checkpoint's vocabulary has {}: \
                 they do not belong together",
                thousands(*tokenizer as u64),
                thousands(*checkpoint as u64)
            ),
            Error::Argument(msg) => write!(f, "invalid argument: {msg}"),
            Error::TooLarge { what, bytes } => write!(
                f,
                "{what} would need {} bytes, more than this engine can hold",
                thousands(*bytes)
            ),
            Error::State(msg) => f.write_str(msg),
            Error::SeqLenReached(seq_len) => write!(
                f,
                "the generation reached seq_len ({} positions): nothing more fits",
                thousands(*seq_len as u64)
            ),
            Error::InPrompt { next, prompt } => write!(
                f,
                "the next token is still the prompt's (token {next} of {prompt}, BOS included): \
                 step() through the prompt first, then choose"
            ),
            Error::TooManyHelpers { asked, max } => write!(f, "{asked} helper threads asked for; at most {max}"),
            Error::HelpersNotStarted { asked, started } => {
                write!(f, "{asked} helper threads asked for, but only {started} have started")
            }
            Error::HelperDied => f.write_str("a helper thread has died; threads stay off"),
            Error::HelperIndex { index, max } => write!(f, "helper index {index} must be 1 to {max}"),
            Error::HelperTaken(index) => write!(f, "helper index {index} is already taken"),
            Error::HelperPanicked(index) => write!(f, "helper {index} panicked"),
            Error::Gpu(msg) => f.write_str(msg),
            Error::GpuLimit { limit, have, need, what } => write!(
                f,
                "this GPU's WebGPU limit {limit} is {}, but {what} needs {}: run on the CPU",
                thousands(*have as u64),
                thousands(*need as u64)
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1056540), "1,056,540");
    }

    #[test]
    fn size_message_names_both_numbers() {
        let e = Error::CheckpointSize { actual: 1040384, expected: 1056540 };
        let msg = e.to_string();
        assert!(msg.contains("1,040,384") && msg.contains("1,056,540"), "{msg}");
    }
}
