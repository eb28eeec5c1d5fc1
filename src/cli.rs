//! The native CLI's arguments (`src/bin/llama2.rs`), kept apart from its I/O
//! so that they can be unit-tested and fuzzed (`fuzz/fuzz_targets/cli_args.rs`).
//!
//! Flags and defaults are run.c's: `llama2 <checkpoint> [-flag value]...`,
//! plus `-q`, `-j`, `-k` and `-h`/`--help`. Everything that stops the CLI is
//! a [`CliError`], printed once, by `main`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::error::Error;
use crate::kernels::Kernels;
use crate::parallel::MAX_HELPERS;

pub const USAGE: &str = "\
Usage:   llama2 <checkpoint> [options]
Example: llama2 model.bin -n 256 -i \"Once upon a time\"
Options:
  -t <float>  temperature in [0,inf], default 1.0
  -p <float>  p value in top-p (nucleus) sampling in [0,1] default 0.9
  -s <int>    random seed, default: a random one
  -n <int>    number of steps to run for, default 256. 0 = max_seq_len
  -i <string> input prompt
  -z <string> optional path to custom tokenizer (default tokenizer.bin)
  -m <string> mode: generate|chat, default: generate
  -y <string> (optional) system prompt in chat mode
  -q <int>    1 = run an fp32 checkpoint as int8 (Q8_0, quantized on load), default 0
  -j <int>    threads sharing each large matmul, default 1 (run.c without OpenMP);
              at most the machine's cores
  -k <string> kernels: simd|scalar, default simd (SSE2 on x86-64: the browser's
              SIMD128 arithmetic, same logits); scalar = run.c's and runq.c's
              loops, token-exact with them
  -h, --help  print this help";

/// The longest line read from stdin in chat mode (the system prompt and each
/// user message), in bytes without the newline. A longer line is an error:
/// the input is read through `take()`, never unbounded.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The largest tokenizer file read (Llama 2's `tokenizer.bin` is 434 KB, a
/// 128k-token vocabulary would be a few MB); a larger one is refused before reading.
pub const MAX_TOKENIZER_BYTES: u64 = 64 << 20;

/// The checkpoint is streamed into the builder in chunks of this size.
pub const CHUNK_BYTES: usize = 1 << 20;

/// The most `-j` accepts: the caller and every helper thread.
pub const MAX_THREADS: usize = MAX_HELPERS + 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Generate,
    Chat,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub checkpoint: PathBuf,
    pub tokenizer: PathBuf,
    pub temperature: f64,
    pub topp: f64,
    /// 0 = a random seed, as in run.c
    pub seed: u64,
    pub steps: i64,
    pub prompt: Option<String>,
    pub mode: Mode,
    pub system_prompt: Option<String>,
    pub quantize: bool,
    pub threads: usize,
    pub kernels: Kernels,
}

impl Args {
    /// run.c's defaults for `checkpoint`.
    pub fn new(checkpoint: PathBuf) -> Args {
        Args {
            checkpoint,
            tokenizer: "tokenizer.bin".into(),
            temperature: 1.0,
            topp: 0.9,
            seed: 0,
            steps: 256,
            prompt: None,
            mode: Mode::Generate,
            system_prompt: None,
            quantize: false,
            threads: 1,
            kernels: Kernels::default(),
        }
    }
}

/// Why the CLI stops early. `main` prints `error: {self}` on stderr (with
/// the usage after a bad command line) and exits with 1, except for `Closed`.
#[derive(Debug)]
pub enum CliError {
    /// A bad command line.
    Usage(String),
    /// A `-k` the engine does not know (its own message), also a bad command line.
    Kernels(Error),
    /// `what` ("checkpoint" or "tokenizer") at `path` could not be opened.
    Open { what: &'static str, path: PathBuf, error: io::Error },
    /// `what` at `path` could not be read.
    Read { what: &'static str, path: PathBuf, error: io::Error },
    /// `what` at `path` is `kind` ("a directory", "a FIFO (named pipe)"...).
    NotAFile { what: &'static str, path: PathBuf, kind: &'static str },
    /// The tokenizer at `path` is `bytes` long, over [`MAX_TOKENIZER_BYTES`].
    TokenizerTooLarge { path: PathBuf, bytes: u64 },
    /// The engine refused the file at `path`.
    File { path: PathBuf, error: Error },
    /// The engine refused anything else.
    Engine(Error),
    /// Chat mode: stdin could not be read.
    Stdin(io::Error),
    /// Chat mode: a line of stdin over [`MAX_LINE_BYTES`].
    LineTooLong,
    /// Chat mode: a line of stdin that is not UTF-8.
    LineNotUtf8,
    /// stdout could not be written.
    Output(io::Error),
    /// stdout was closed by its reader (`llama2 … | head`): not an error, exit 0.
    Closed,
}

impl CliError {
    /// A bad command line: the usage follows the message.
    pub fn shows_usage(&self) -> bool {
        matches!(self, CliError::Usage(_) | CliError::Kernels(_))
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> CliError {
        CliError::Engine(e)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(msg) => f.write_str(msg),
            CliError::Kernels(e) | CliError::Engine(e) => write!(f, "{e}"),
            CliError::Open { what, path, error } => write!(f, "couldn't open {what} {}: {error}", path.display()),
            CliError::Read { what, path, error } => write!(f, "couldn't read {what} {}: {error}", path.display()),
            CliError::NotAFile { what, path, kind } => {
                write!(f, "{what} {} is {kind}, not a file; give the path of the {what} file", path.display())
            }
            CliError::TokenizerTooLarge { path, bytes } => write!(
                f,
                "tokenizer {} is {bytes} bytes; a tokenizer file is at most {} MiB (Llama 2's is 434 KB): is it a tokenizer?",
                path.display(),
                MAX_TOKENIZER_BYTES >> 20
            ),
            CliError::File { path, error } => write!(f, "{}: {error}", path.display()),
            CliError::Stdin(e) => write!(f, "couldn't read stdin: {e}"),
            CliError::LineTooLong => {
                write!(f, "a line of input is longer than {MAX_LINE_BYTES} bytes, the most read in chat mode")
            }
            CliError::LineNotUtf8 => f.write_str("a line of input is not UTF-8 text (the model reads UTF-8)"),
            CliError::Output(e) => write!(f, "couldn't write the output: {e}"),
            CliError::Closed => f.write_str("stdout was closed"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h` or `--help`: the usage on stdout, exit 0.
    Help,
    Run(Args),
}

fn is_help(arg: &OsStr) -> bool {
    arg == "-h" || arg == "--help"
}

/// Parse `argv` (with the program name first, as `std::env::args_os` gives
/// it). Paths stay `OsString`s, so any path the system accepts works; the
/// prompt and system prompt must be UTF-8 (they are tokenized as UTF-8 text,
/// and replacing bytes would run the model on a prompt nobody wrote).
/// `-h`/`--help` anywhere a flag may stand wins over any error.
pub fn parse_args(argv: &[OsString]) -> Result<Command, CliError> {
    let Some(first) = argv.get(1) else { return Err(CliError::Usage("missing <checkpoint>".into())) };
    if is_help(first) {
        return Ok(Command::Help);
    }
    let mut a = Args::new(PathBuf::from(first));
    let mut error: Option<CliError> = None;
    let mut i = 2;
    while i < argv.len() {
        let flag = argv[i].as_os_str();
        if is_help(flag) {
            return Ok(Command::Help);
        }
        if error.is_none() {
            if let Err(e) = apply(&mut a, flag, argv.get(i + 1).map(OsString::as_os_str)) {
                error = Some(e);
            }
        }
        i += 2;
    }
    match error {
        Some(e) => Err(e),
        None => Ok(Command::Run(a)),
    }
}

/// One `flag value` pair.
fn apply(a: &mut Args, flag: &OsStr, value: Option<&OsStr>) -> Result<(), CliError> {
    let usage = CliError::Usage;
    let name = flag.to_string_lossy();
    let Some(flag) = flag.to_str().filter(|f| f.len() == 2 && f.starts_with('-') && "tpsnizmyqjk".contains(&f[1..])) else {
        return Err(usage(format!("unknown option {name:?}")));
    };
    let value = value.ok_or_else(|| usage(format!("{flag} needs a value")))?;
    let shown = value.to_string_lossy();
    let text = |what: &str| value.to_str().ok_or_else(|| usage(format!("{flag} expects {what}, got {shown:?}, which is not UTF-8")));
    let num = |what: &str| usage(format!("{flag} expects {what}, got {shown:?}"));
    match flag {
        "-t" => a.temperature = text("a number")?.parse().map_err(|_| num("a number"))?,
        "-p" => a.topp = text("a number")?.parse().map_err(|_| num("a number"))?,
        // run.c reads the seed with atoi: a negative seed wraps to a large unsigned one
        "-s" => {
            let v = text("an integer")?;
            a.seed = v.parse::<u64>().or_else(|_| v.parse::<i64>().map(|s| s as u64)).map_err(|_| num("an integer"))?
        }
        "-n" => a.steps = text("an integer")?.parse().map_err(|_| num("an integer"))?,
        "-i" => a.prompt = Some(text("the prompt as UTF-8 text")?.to_string()),
        "-z" => a.tokenizer = PathBuf::from(value),
        "-m" => {
            a.mode = match text("generate or chat")? {
                "generate" => Mode::Generate,
                "chat" => Mode::Chat,
                other => return Err(usage(format!("unknown mode {other:?}: use generate or chat"))),
            }
        }
        "-y" => a.system_prompt = Some(text("the system prompt as UTF-8 text")?.to_string()),
        "-q" => a.quantize = text("0 or 1")?.parse::<i64>().map_err(|_| num("0 or 1"))? != 0,
        "-j" => {
            a.threads = text("a whole number of threads")?.parse().map_err(|_| num("a whole number of threads"))?;
            if !(1..=MAX_THREADS).contains(&a.threads) {
                return Err(usage(format!("-j takes 1 to {MAX_THREADS} threads")));
            }
        }
        "-k" => a.kernels = Kernels::parse(text("simd or scalar")?).map_err(CliError::Kernels)?,
        _ => unreachable!("checked above"),
    }
    Ok(())
}

/// `-j` capped at the machine's cores (more threads than cores only take
/// turns, and each matmul waits for the slowest): the threads to use and, if
/// reduced, the note for stderr.
pub fn cap_threads(threads: usize, cores: usize) -> (usize, Option<String>) {
    let cores = cores.max(1);
    if threads <= cores {
        return (threads, None);
    }
    let plural = if cores == 1 { "core" } else { "cores" };
    (cores, Some(format!("-j {threads} reduced to {cores}: this machine has {cores} {plural}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, CliError> {
        let argv: Vec<OsString> = std::iter::once("llama2").chain(args.iter().copied()).map(OsString::from).collect();
        parse_args(&argv)
    }

    fn run(args: &[&str]) -> Args {
        match parse(args) {
            Ok(Command::Run(a)) => a,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse(args) {
            Err(e) => {
                assert!(e.shows_usage(), "{e}");
                e.to_string()
            }
            other => panic!("{args:?} gave {other:?}, expected an error"),
        }
    }

    #[test]
    fn defaults_are_run_c_s() {
        assert_eq!(run(&["m.bin"]), Args::new("m.bin".into()));
        let a = Args::new("m.bin".into());
        assert_eq!((a.temperature, a.topp, a.seed, a.steps), (1.0, 0.9, 0, 256));
        assert_eq!(a.tokenizer, PathBuf::from("tokenizer.bin"));
        assert_eq!((a.mode, a.quantize, a.threads, a.prompt, a.system_prompt), (Mode::Generate, false, 1, None, None));
    }

    #[test]
    fn every_flag() {
        let a = run(&[
            "m.bin", "-t", "0.5", "-p", "0.25", "-s", "42", "-n", "7", "-i", "Once", "-z", "tok.bin", "-m", "chat",
            "-y", "sys", "-q", "1", "-j", "2", "-k", "scalar",
        ]);
        assert_eq!(a.checkpoint, PathBuf::from("m.bin"));
        assert_eq!((a.temperature, a.topp, a.seed, a.steps), (0.5, 0.25, 42, 7));
        assert_eq!(a.prompt.as_deref(), Some("Once"));
        assert_eq!(a.tokenizer, PathBuf::from("tok.bin"));
        assert_eq!(a.mode, Mode::Chat);
        assert_eq!(a.system_prompt.as_deref(), Some("sys"));
        assert!(a.quantize);
        assert_eq!(a.threads, 2);
        assert_eq!(a.kernels, Kernels::Scalar);
        assert_eq!(run(&["m.bin", "-m", "generate"]).mode, Mode::Generate);
        assert!(!run(&["m.bin", "-q", "0"]).quantize);
        assert_eq!(run(&["m.bin", "-n", "-3"]).steps, -3); // run.c: negative = 0 = seq_len
        assert_eq!(run(&["m.bin", "-j", &MAX_THREADS.to_string()]).threads, MAX_THREADS);
        if crate::kernels::HAS_SIMD {
            assert_eq!(run(&["m.bin", "-k", "simd"]).kernels, Kernels::Simd);
        }
        // the last of a repeated flag wins, as in run.c
        assert_eq!(run(&["m.bin", "-n", "1", "-n", "2"]).steps, 2);
    }

    #[test]
    fn negative_seed_wraps_like_atoi() {
        assert_eq!(run(&["m.bin", "-s", "-1"]).seed, u64::MAX);
    }

    #[test]
    fn values_may_look_like_flags() {
        let a = run(&["m.bin", "-i", "-h", "-y", "--help"]);
        assert_eq!(a.prompt.as_deref(), Some("-h"));
        assert_eq!(a.system_prompt.as_deref(), Some("--help"));
    }

    #[test]
    fn help() {
        for args in [&["-h"][..], &["--help"], &["m.bin", "-h"], &["m.bin", "-n", "5", "--help"], &["m.bin", "-x", "1", "-h"], &["m.bin", "-h", "-n"]] {
            assert!(matches!(parse(args), Ok(Command::Help)), "{args:?}");
        }
        assert!(USAGE.contains("-h, --help") && USAGE.contains("-k <string>"));
    }

    #[test]
    fn bad_values() {
        assert_eq!(err(&[]), "missing <checkpoint>");
        assert_eq!(err(&["m.bin", "-t", "hot"]), "-t expects a number, got \"hot\"");
        assert_eq!(err(&["m.bin", "-p", ""]), "-p expects a number, got \"\"");
        assert_eq!(err(&["m.bin", "-s", "1.5"]), "-s expects an integer, got \"1.5\"");
        assert_eq!(err(&["m.bin", "-n", "ten"]), "-n expects an integer, got \"ten\"");
        assert_eq!(err(&["m.bin", "-m", "talk"]), "unknown mode \"talk\": use generate or chat");
        assert_eq!(err(&["m.bin", "-q", "yes"]), "-q expects 0 or 1, got \"yes\"");
        assert_eq!(err(&["m.bin", "-j", "0"]), format!("-j takes 1 to {MAX_THREADS} threads"));
        assert_eq!(err(&["m.bin", "-j", &(MAX_THREADS + 1).to_string()]), format!("-j takes 1 to {MAX_THREADS} threads"));
        assert_eq!(err(&["m.bin", "-j", "-1"]), "-j expects a whole number of threads, got \"-1\"");
        assert!(err(&["m.bin", "-k", "avx"]).contains("unknown kernels \"avx\""));
        assert_eq!(err(&["m.bin", "-x", "1"]), "unknown option \"-x\"");
        assert_eq!(err(&["m.bin", "--steps", "1"]), "unknown option \"--steps\"");
        assert_eq!(err(&["m.bin", "-", "1"]), "unknown option \"-\"");
        assert_eq!(err(&["m.bin", "n", "1"]), "unknown option \"n\"");
        assert_eq!(err(&["m.bin", "-n"]), "-n needs a value");
        assert_eq!(err(&["m.bin", "-i", "x", "-z"]), "-z needs a value");
        // the first error is the one reported
        assert_eq!(err(&["m.bin", "-t", "a", "-p", "b"]), "-t expects a number, got \"a\"");
    }

    #[cfg(unix)]
    #[test]
    fn paths_are_bytes_but_prompts_are_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(b"caf\xe9".to_vec());
        let argv = vec!["llama2".into(), bad(), "-z".into(), bad()];
        match parse_args(&argv) {
            Ok(Command::Run(a)) => {
                assert_eq!(a.checkpoint.as_os_str(), bad());
                assert_eq!(a.tokenizer.as_os_str(), bad());
            }
            other => panic!("{other:?}"),
        }
        for flag in ["-i", "-y", "-n", "-m", "-k"] {
            let e = parse_args(&["llama2".into(), "m.bin".into(), flag.into(), bad()]).unwrap_err().to_string();
            assert!(e.starts_with(flag) && e.contains("not UTF-8") && e.contains("caf\u{fffd}"), "{e}");
        }
        let e = parse_args(&["llama2".into(), "m.bin".into(), bad(), "1".into()]).unwrap_err().to_string();
        assert_eq!(e, "unknown option \"caf\u{fffd}\"");
    }

    #[test]
    fn threads_capped_at_cores() {
        assert_eq!(cap_threads(2, 2), (2, None));
        assert_eq!(cap_threads(1, 8), (1, None));
        assert_eq!(cap_threads(16, 2), (2, Some("-j 16 reduced to 2: this machine has 2 cores".into())));
        assert_eq!(cap_threads(4, 1), (1, Some("-j 4 reduced to 1: this machine has 1 core".into())));
        assert_eq!(cap_threads(3, 0).0, 1);
    }
}
