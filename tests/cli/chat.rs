//! Chat mode: stdin lines read, bounded, and checked for UTF-8.
use super::*;

/// The CLI on stories260K in chat mode with `flags`, stdin piped; keep the
/// directory until the child has finished.
fn chat(test: &str, flags: &[&str]) -> (Scratch, Child) {
    let (dir, m, t) = model(test);
    let mut args = vec![m.into_os_string(), os("-z"), t.into_os_string(), os("-m"), os("chat")];
    args.extend(flags.iter().map(|f| os(f)));
    (dir, command(args).stdin(Stdio::piped()).spawn().unwrap())
}

#[test]
fn chat_reads_lines() {
    let (_dir, mut child) = chat("chat", &["-n", "60", "-s", "1"]);
    child.stdin.take().unwrap().write_all(b"be brief\r\nhello\n").unwrap();
    let o = finish(child);
    expect(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("Enter system prompt (optional): User: Assistant: "), "{out}");
}

/// A stdin line without end is refused at 64 KiB, read through `take`.
#[test]
fn chat_lines_are_bounded() {
    let (_dir, mut child) = chat("longline", &["-y", ""]);
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
    let (_dir, mut child) = chat("chatutf8", &["-y", ""]);
    child.stdin.take().unwrap().write_all(b"caf\xe9\n").unwrap();
    let o = finish(child);
    expect(&o, 1);
    assert!(stderr(&o).contains("error: a line of input is not UTF-8"), "{}", stderr(&o));
}
