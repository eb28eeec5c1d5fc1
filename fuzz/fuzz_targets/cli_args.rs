//! Any argument vector for the CLI: the bytes split at NULs into arguments
//! (argv[0] included, non-UTF-8 allowed, as `std::env::args_os` can give).
//! Errors are fine; panics are not, and a parsed `-j` is always in range.
#![no_main]
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use llama2_wasm::cli::{self, Command};

fuzz_target!(|data: &[u8]| {
    let argv: Vec<OsString> = data.split(|&b| b == 0).map(|arg| OsString::from_vec(arg.to_vec())).collect();
    match cli::parse_args(&argv) {
        Ok(Command::Run(args)) => {
            assert!((1..=cli::MAX_THREADS).contains(&args.threads));
            let (threads, _) = cli::cap_threads(args.threads, 2);
            assert!((1..=2).contains(&threads));
        }
        Ok(Command::Help) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
