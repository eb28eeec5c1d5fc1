//! The native CLI (`src/bin/llama2.rs`) run as a program on real files: help,
//! usage errors, non-UTF-8 arguments, closed and full stdout, `-j` capping,
//! files that are not files, streamed loading, and bounded stdin lines.
//!
//! Every run is wrapped in `ulimit -v` and a timeout, so a regression that
//! reads without bound fails here instead of taking the machine down.
//! `LLAMA2_BIN=/path/to/llama2` runs these tests against another build.

#[path = "../common/mod.rs"]
mod common;

// the tests, by subject; this file is their harness
mod args;
mod chat;
mod files;
mod output;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use llama2_wasm::checkpoint;

/// The address space each run may use: ample for these tiny models.
const MAX_VIRTUAL_KB: u64 = 3 << 20;
const TIMEOUT: Duration = Duration::from_secs(60);

fn bin() -> PathBuf {
    std::env::var_os("LLAMA2_BIN").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_BIN_EXE_llama2").into())
}

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("llama2-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// A reference file copied into `dir`, under `name` (may be non-UTF-8).
fn copy(dir: &Path, file: &str, name: impl Into<OsString>) -> PathBuf {
    let path = dir.join(name.into());
    std::fs::write(&path, common::data(file)).unwrap();
    path
}

/// The CLI with `args`, under the memory cap; stdin, stdout and stderr
/// as given.
fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("ulimit -v {MAX_VIRTUAL_KB} && exec \"$0\" \"$@\"")).arg(bin());
    c.args(args.into_iter().map(Into::into));
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Wait for `child`, killing it after [`TIMEOUT`]; its output.
fn finish(mut child: Child) -> Output {
    let start = Instant::now();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        if let Some(s) = out.as_mut() {
            let _ = s.read_to_end(&mut o);
        }
        o
    });
    let err_reader = std::thread::spawn(move || {
        let mut e = Vec::new();
        if let Some(s) = err.as_mut() {
            let _ = s.read_to_end(&mut e);
        }
        e
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("llama2 still running after {TIMEOUT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: reader.join().unwrap(), stderr: err_reader.join().unwrap() }
}

fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    finish(command(args).spawn().unwrap())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or_else(|| panic!("killed by a signal: {:?}\nstderr: {}", o.status, stderr(o)))
}

/// Exit code `want`, and never a panic.
fn expect(o: &Output, want: i32) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "panicked:\n{err}");
    assert_eq!(code(o), want, "exit code; stderr:\n{err}");
}

/// stories260K.bin and tok512.bin in a scratch directory.
fn model(test: &str) -> (Scratch, PathBuf, PathBuf) {
    let dir = scratch(test);
    let m = copy(&dir, "stories260K.bin", "stories260K.bin");
    let t = copy(&dir, "tok512.bin", "tok512.bin");
    (dir, m, t)
}

fn os(s: &str) -> OsString {
    s.into()
}
