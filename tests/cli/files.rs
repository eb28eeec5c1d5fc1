//! Files: things that are not files, large wrong files refused before
//! reading, streamed loading.
use super::*;

#[cfg(unix)]
#[test]
fn files_that_are_not_files_are_refused() {
    let (dir, m, t) = model("notfiles");
    let fifo = dir.join("fifo");
    let have_fifo = Command::new("mkfifo").arg(&fifo).status().map_or(false, |s| s.success());
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
