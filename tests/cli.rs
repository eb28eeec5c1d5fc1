//! The native CLI (`src/bin/llama2.rs`) run as a program on real files: help,
//! usage errors, non-UTF-8 arguments, closed and full stdout, `-j` capping,
//! files that are not files, streamed loading, and bounded stdin lines.
//!
//! Every run is wrapped in `ulimit -v` and a timeout, so a regression that
//! reads without bound fails here instead of taking the machine down.
//! `LLAMA2_BIN=/path/to/llama2` runs these tests against another build.

mod common;

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

#[test]
fn help_goes_to_stdout_with_exit_0() {
    for args in [&["-h"][..], &["--help"], &["model.bin", "-n", "5", "--help"], &["model.bin", "-h"]] {
        let o = run(args);
        expect(&o, 0);
        assert!(stdout(&o).starts_with("Usage:   llama2 <checkpoint> [options]"), "{args:?}: {}", stdout(&o));
        assert!(stdout(&o).contains("-k <string>") && stdout(&o).contains("-h, --help"));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}

#[test]
fn usage_errors_go_to_stderr_with_exit_1() {
    for (args, msg) in [
        (&[][..], "error: missing <checkpoint>"),
        (&["model.bin", "-x", "1"], "error: unknown option \"-x\""),
        (&["model.bin", "-n"], "error: -n needs a value"),
        (&["model.bin", "-k", "avx"], "error: invalid argument: unknown kernels \"avx\""),
        (&["model.bin", "-j", "0"], "error: -j takes 1 to 16 threads"),
    ] {
        let o = run(args);
        expect(&o, 1);
        assert_eq!(stdout(&o), "", "{args:?}");
        assert!(stderr(&o).starts_with(msg), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("\n\nUsage:   llama2"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn flags_still_work_and_match_run_c() {
    let (_dir, m, t) = model("flags");
    let case = common::generate_cases()
        .into_iter()
        .find(|c| c.model == "stories260K.bin" && c.temperature == 0.0)
        .expect("a greedy stories260K golden");
    for kernels in ["scalar", "simd"] {
        let mut args = vec![m.clone().into_os_string(), os("-z"), t.clone().into_os_string()];
        for a in ["-t", "0", "-p", &case.topp.to_string(), "-s", &case.seed.to_string(), "-n", &case.steps.to_string(), "-j", "2", "-k", kernels] {
            args.push(a.into());
        }
        args.extend([os("-i"), os(&case.prompt)]);
        let o = run(&args);
        expect(&o, 0);
        assert_eq!(stdout(&o), format!("{}\n", case.stdout), "-k {kernels}"); // the golden is stored without run.c's last newline
        assert!(stderr(&o).contains("achieved tok/s: "), "{}", stderr(&o));
    }
}

#[cfg(unix)]
#[test]
fn non_utf8_prompt_is_an_error_not_a_panic() {
    use std::os::unix::ffi::OsStringExt;
    let (_dir, m, t) = model("utf8prompt");
    for flag in ["-i", "-y"] {
        let o = run([m.clone().into_os_string(), os("-z"), t.clone().into_os_string(), os(flag), OsString::from_vec(b"caf\xe9".to_vec())]);
        expect(&o, 1);
        assert!(stderr(&o).starts_with(&format!("error: {flag} expects ")), "{}", stderr(&o));
        assert!(stderr(&o).contains("not UTF-8"), "{}", stderr(&o));
    }
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_work() {
    use std::os::unix::ffi::OsStringExt;
    let dir = scratch("utf8path");
    let m = copy(&dir, "stories260K.bin", OsString::from_vec(b"mod\xe8le.bin".to_vec()));
    let t = copy(&dir, "tok512.bin", OsString::from_vec(b"tok\xff.bin".to_vec()));
    let o = run([m.into_os_string(), os("-z"), t.into_os_string(), os("-n"), os("20"), os("-t"), os("0"), os("-i"), os("Once")]);
    expect(&o, 0);
    assert!(stdout(&o).starts_with("Once upon a time"), "{}", stdout(&o));
    // and a missing one is named, lossily
    let o = run([dir.join(OsString::from_vec(b"missing\xff.bin".to_vec())).into_os_string()]);
    expect(&o, 1);
    assert!(stderr(&o).contains("missing\u{fffd}.bin"), "{}", stderr(&o));
}

/// A reader that closes stdout mid-run ends the CLI quietly with exit 0.
#[test]
fn closed_stdout_ends_quietly() {
    let (_dir, m, t) = model("pipe");
    // chat: wait until it asks for the system prompt, close stdout, answer:
    // its next write ("User: ") meets the closed pipe, deterministically
    let mut child = command([m.clone().into_os_string(), os("-z"), t.clone().into_os_string(), os("-m"), os("chat")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut asked = [0u8; 32];
    out.read_exact(&mut asked).unwrap();
    assert_eq!(&asked, b"Enter system prompt (optional): ");
    drop(out);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\nOnce upon a time\n").unwrap();
    drop(stdin);
    let o = finish(child);
    expect(&o, 0);
    assert_eq!(stderr(&o), "");

    // generate, read 10 bytes (`| head -c 10`)
    let mut child = command([m.into_os_string(), os("-z"), t.into_os_string(), os("-n"), os("0")]).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let o = finish(child);
    expect(&o, 0);
    assert!(!stderr(&o).contains("error"), "{}", stderr(&o));
}

#[test]
fn write_errors_are_reported() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("no /dev/full here: skipped");
        return;
    };
    let (_dir, m, t) = model("full");
    let o = finish(command([m.into_os_string(), os("-z"), t.into_os_string(), os("-n"), os("20")]).stdout(full).spawn().unwrap());
    expect(&o, 1);
    assert!(stderr(&o).contains("error: couldn't write the output: No space left on device"), "{}", stderr(&o));
}

#[test]
fn threads_capped_at_the_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 16 {
        eprintln!("{cores} cores: -j 16 is not reduced here; skipped");
        return;
    }
    let (_dir, m, t) = model("threads");
    let o = run([m.into_os_string(), os("-z"), t.into_os_string(), os("-n"), os("20"), os("-j"), os("16")]);
    expect(&o, 0);
    let s = if cores == 1 { "" } else { "s" };
    assert!(stderr(&o).starts_with(&format!("-j 16 reduced to {cores}: this machine has {cores} core{s}\n")), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn files_that_are_not_files_are_refused() {
    let (dir, m, t) = model("notfiles");
    let fifo = dir.join("fifo");
    let have_fifo = Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    let mut cases = vec![
        (os("/dev/zero"), None, "error: checkpoint /dev/zero is a character device, not a file"),
        (dir.clone().into_os_string(), None, "is a directory, not a file"),
        (m.clone().into_os_string(), Some(os("/dev/zero")), "error: tokenizer /dev/zero is a character device, not a file"),
        (m.clone().into_os_string(), Some(dir.clone().into_os_string()), "error: tokenizer"),
    ];
    if have_fifo {
        cases.push((fifo.clone().into_os_string(), Some(t.into_os_string()), "is a FIFO (named pipe), not a file"));
        cases.push((m.into_os_string(), Some(fifo.into_os_string()), "is a FIFO (named pipe), not a file"));
    }
    for (checkpoint, tokenizer, msg) in cases {
        let mut args = vec![checkpoint];
        args.extend(tokenizer.into_iter().flat_map(|t| [os("-z"), t]));
        let start = Instant::now();
        let o = run(&args);
        expect(&o, 1);
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
        assert!(start.elapsed() < Duration::from_secs(10), "{args:?} took {:?}", start.elapsed());
    }
}

/// A 4 GiB file (sparse: nothing is written) with stories260K's header is
/// refused from its header and length alone, without being read.
#[test]
fn a_large_wrong_file_is_refused_before_reading() {
    let dir = scratch("large");
    let path = dir.join("big.bin");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&common::data("stories260K.bin")[..256]).unwrap();
    f.set_len(4 << 30).unwrap();
    drop(f);
    let start = Instant::now();
    let o = run([path.into_os_string()]);
    let took = start.elapsed();
    expect(&o, 1);
    assert!(
        stderr(&o).contains("invalid checkpoint: the file is 4,294,967,296 bytes but its header needs 1,056,540"),
        "{}",
        stderr(&o)
    );
    assert!(took < Duration::from_secs(5), "took {took:?}: was the file read?");
}

#[test]
fn a_large_tokenizer_is_refused_before_reading() {
    let (dir, m, _) = model("bigtok");
    let path = dir.join("tokenizer.bin");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len((64 << 20) + 1).unwrap();
    let o = run([m.into_os_string(), os("-z"), path.into_os_string()]);
    expect(&o, 1);
    assert!(stderr(&o).contains("is 67108865 bytes; a tokenizer file is at most 64 MiB"), "{}", stderr(&o));
}

/// Loading streams the file into the weights: the peak resident memory
/// is about the weights once, not the file plus the weights.
#[test]
fn loading_peaks_at_the_weights_once() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("no /usr/bin/time: skipped");
        return;
    }
    // a legacy header for a 4-layer dim-1024 model with tok512's vocabulary:
    // ~160 MB of zero weights (sparse, so nothing is written)
    let dir = scratch("rss");
    let mut head = Vec::new();
    for v in [1024i32, 2048, 4, 8, 8, 512, 32] {
        head.extend(v.to_le_bytes());
    }
    let len = checkpoint::expected_file_size(&checkpoint::parse_header(&head).unwrap()).unwrap();
    let path = dir.join("zeros.bin");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&head).unwrap();
    f.set_len(len).unwrap();
    drop(f);
    let t = copy(&dir, "tok512.bin", "tok512.bin");
    let mut c = Command::new("/usr/bin/time");
    c.arg("-v").arg(bin()).arg(&path).arg("-z").arg(&t).args(["-n", "3", "-t", "0"]);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let o = finish(c.spawn().unwrap());
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let kb: u64 = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .unwrap_or_else(|| panic!("no peak RSS in {err}"))
        .parse()
        .unwrap();
    let peak = kb * 1024;
    let allowed = len + len / 4 + (32 << 20);
    assert!(peak < allowed, "peak RSS {peak} bytes for a {len}-byte checkpoint (allowed {allowed})");
}

#[test]
fn chat_reads_lines() {
    let (_dir, m, t) = model("chat");
    let mut child = command([m.into_os_string(), os("-z"), t.into_os_string(), os("-m"), os("chat"), os("-n"), os("60"), os("-s"), os("1")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"be brief\r\nhello\n").unwrap();
    let o = finish(child);
    expect(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("Enter system prompt (optional): User: Assistant: "), "{out}");
}

/// A stdin line without end is refused at 64 KiB, read through `take`.
#[test]
fn chat_lines_are_bounded() {
    let (_dir, m, t) = model("longline");
    let mut child = command([m.into_os_string(), os("-z"), t.into_os_string(), os("-m"), os("chat"), os("-y"), os("")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // 100 KiB and no newline, with stdin left open: the CLI must not wait for more
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(&vec![b'a'; 100 << 10]); // fails once the CLI has exited
    let o = finish(child);
    drop(stdin);
    expect(&o, 1);
    assert!(stderr(&o).contains("error: a line of input is longer than 65536 bytes"), "{}", stderr(&o));
}

#[test]
fn chat_non_utf8_line_is_an_error() {
    let (_dir, m, t) = model("chatutf8");
    let mut child = command([m.into_os_string(), os("-z"), t.into_os_string(), os("-m"), os("chat"), os("-y"), os("")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"caf\xe9\n").unwrap();
    let o = finish(child);
    expect(&o, 1);
    assert!(stderr(&o).contains("error: a line of input is not UTF-8"), "{}", stderr(&o));
}
