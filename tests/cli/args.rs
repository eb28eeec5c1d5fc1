//! Arguments: help, usage errors, the flags against run.c, non-UTF-8
//! arguments, `-j` capped at the cores.
use super::*;

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
