//! Native CLI mirroring llama2.c's `run`: same flags, same defaults, the text
//! to stdout and `achieved tok/s: X` to stderr. Arguments are parsed in
//! `llama2_wasm::cli`; this file does the I/O.
//!
//!     cargo run --release --bin llama2 -- model.bin -z tokenizer.bin -n 256 -i "Once upon a time"
//!
//! Exit codes: 0 on success, after `-h`/`--help`, and when stdout is closed
//! early (`llama2 … | head`: the reader has all it wanted); 1 for a usage
//! error, a bad file, or a failed read or write (the message on stderr).

use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use llama2_wasm::checkpoint::CheckpointBuilder;
use llama2_wasm::cli::{self, Args, CliError, Command, Mode, CHUNK_BYTES, MAX_LINE_BYTES, MAX_TOKENIZER_BYTES, USAGE};
use llama2_wasm::sampler::SamplerParams;
use llama2_wasm::{Checkpoint, Llama, Tokenizer};

/// stdout, flushed after every piece (the text streams as it is generated),
/// with write errors as [`CliError`]s instead of panics or silence.
struct Out(io::StdoutLock<'static>);

impl Out {
    fn write(&mut self, text: &str) -> Result<(), CliError> {
        self.0.write_all(text.as_bytes()).and_then(|()| self.0.flush()).map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => CliError::Closed,
            _ => CliError::Output(e),
        })
    }
}

/// A note or error on stderr; a failure to write it has nowhere to go.
fn note(msg: &str) {
    let _ = writeln!(io::stderr(), "{msg}");
}

/// Open `path` if it is a regular file (not a directory, device, FIFO or
/// socket: those are refused before opening, so a FIFO cannot block us and
/// `/dev/zero` is not read forever); the file and its length.
fn open_file(path: &Path, what: &'static str) -> Result<(File, u64), CliError> {
    let only_files = |meta: std::fs::Metadata| match file_kind(&meta) {
        Some(kind) => Err(CliError::NotAFile { what, path: path.into(), kind }),
        None => Ok(meta),
    };
    let open_error = |error| CliError::Open { what, path: path.into(), error };
    only_files(std::fs::metadata(path).map_err(open_error)?)?;
    let file = File::open(path).map_err(open_error)?;
    // what was opened, in case the path changed in between
    let meta = only_files(file.metadata().map_err(|error| CliError::Read { what, path: path.into(), error })?)?;
    Ok((file, meta.len()))
}

/// What a path that is not a regular file is, or `None` for a regular file.
fn file_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Read into `buf` until it is full or the file ends; the bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The checkpoint, validated from its first 256 bytes and its length before
/// anything is allocated, then streamed in 1 MiB chunks straight into the
/// weights: loading peaks at the weights plus one chunk, not twice the file.
fn load_checkpoint(path: &Path) -> Result<Checkpoint, CliError> {
    let (mut file, len) = open_file(path, "checkpoint")?;
    let mut read = |buf: &mut [u8]| {
        read_up_to(&mut file, buf).map_err(|error| CliError::Read { what: "checkpoint", path: path.into(), error })
    };
    let in_file = |error| CliError::File { path: path.into(), error };
    let mut head = [0u8; 256];
    let n = read(&mut head)?;
    let mut builder = CheckpointBuilder::new(&head[..n], len).map_err(in_file)?;
    builder.push(&head[..n]).map_err(in_file)?;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let n = read(&mut chunk)?;
        if n == 0 {
            break;
        }
        builder.push(&chunk[..n]).map_err(in_file)?;
    }
    builder.finish().map_err(in_file)
}

/// The tokenizer: a regular file of at most [`MAX_TOKENIZER_BYTES`], refused
/// by its size before it is read.
fn load_tokenizer(path: &Path) -> Result<Tokenizer, CliError> {
    let (file, len) = open_file(path, "tokenizer")?;
    let too_large = |bytes: u64| CliError::TokenizerTooLarge { path: path.into(), bytes };
    if len > MAX_TOKENIZER_BYTES {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_TOKENIZER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| CliError::Read { what: "tokenizer", path: path.into(), error })?;
    if bytes.len() as u64 > MAX_TOKENIZER_BYTES {
        return Err(too_large(bytes.len() as u64)); // it grew while we read it
    }
    Tokenizer::from_bytes(&bytes).map_err(|error| CliError::File { path: path.into(), error })
}

/// Prompt on stdout and read one line of at most [`MAX_LINE_BYTES`] (through
/// `take`, so a stdin without newlines cannot fill the memory); `None` at the
/// end of input.
fn read_stdin(out: &mut Out, prompt: &str) -> Result<Option<String>, CliError> {
    out.write(prompt)?;
    let mut line = Vec::new();
    // room for the longest line and its "\r\n"
    let limit = MAX_LINE_BYTES as u64 + 2;
    let n = io::stdin().lock().take(limit).read_until(b'\n', &mut line);
    match n {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(CliError::Stdin(e)),
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > MAX_LINE_BYTES {
        return Err(CliError::LineTooLong);
    }
    String::from_utf8(line).map(Some).map_err(|_| CliError::LineNotUtf8)
}

fn run(a: Args) -> Result<(), CliError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (threads, reduced) = cli::cap_threads(a.threads, cores);
    if let Some(msg) = reduced {
        note(&msg);
    }
    #[cfg(not(target_arch = "wasm32"))]
    llama2_wasm::parallel::start_native(threads - 1);
    let mut checkpoint = load_checkpoint(&a.checkpoint)?;
    if a.quantize {
        checkpoint = checkpoint.quantize().map_err(|error| CliError::File { path: a.checkpoint.clone(), error })?;
    }
    let tokenizer = load_tokenizer(&a.tokenizer)?;
    let mut llama = Llama::new(checkpoint, tokenizer, false)?;
    llama.set_kernels(a.kernels);
    let params = SamplerParams::new(a.temperature, a.topp, a.seed)?;
    let mut out = Out(io::stdout().lock());

    if a.mode == Mode::Chat {
        let system = match &a.system_prompt {
            Some(s) => s.clone(),
            None => read_stdin(&mut out, "Enter system prompt (optional): ")?.unwrap_or_default(),
        };
        llama.start_chat(&system, params, a.steps)?;
        let mut first = true;
        while llama.is_running() {
            let user = match (&a.prompt, first) {
                (Some(p), true) => p.clone(),
                _ => match read_stdin(&mut out, "User: ")? {
                    Some(line) => line,
                    None => break, // end of input ends the conversation
                },
            };
            first = false;
            llama.chat_user(&user)?;
            out.write("Assistant: ")?;
            while let Some(step) = llama.step()? {
                out.write(&step.text)?;
            }
            out.write("\n")?;
        }
        return Ok(());
    }

    let prompt = a.prompt.unwrap_or_default();
    llama.start(&prompt, params, a.steps)?;
    let mut start: Option<Instant> = None; // timer starts after the first iteration, as in run.c
    while let Some(step) = llama.step()? {
        out.write(&step.text)?;
        start.get_or_insert_with(Instant::now);
    }
    out.write("\n")?;
    let pos = llama.tokens().len().saturating_sub(1);
    if let (Some(start), true) = (start, pos > 1) {
        let secs = start.elapsed().as_secs_f64();
        note(&format!("achieved tok/s: {:.6}", (pos - 1) as f64 / secs));
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().collect();
    let result = cli::parse_args(&argv).and_then(|command| match command {
        Command::Help => Out(io::stdout().lock()).write(&format!("{USAGE}\n")),
        Command::Run(args) => run(args),
    });
    match result {
        Ok(()) | Err(CliError::Closed) => ExitCode::SUCCESS,
        Err(e) if e.shows_usage() => {
            note(&format!("error: {e}\n\n{USAGE}"));
            ExitCode::FAILURE
        }
        Err(e) => {
            note(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}
