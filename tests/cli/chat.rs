//! Chat mode: stdin lines read, bounded, and checked for UTF-8.
use super::*;

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
