//! Standard output closed or full.
use super::*;

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
