//! Shared by the native tests: where the reference files are, and the golden
//! cases recorded from llama2.c's run.c (parsed by tests/both/golden.rs,
//! which the browser tests share).
#![allow(dead_code)]

use std::path::PathBuf;

#[path = "../both/golden.rs"]
mod golden;
pub use golden::{EncodeCase, GenerateCase};

/// A reference file: `www/models/` and `tests/golden/` are filled by
/// `./build.sh` from `../shared`; `../shared` itself is the fallback.
pub fn data(name: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("www/models").join(name),
        root.join("tests/golden").join(name),
        root.join("../shared/models").join(name),
        root.join("../shared/golden").join(name),
    ];
    for path in &candidates {
        if let Ok(bytes) = std::fs::read(path) {
            return bytes;
        }
    }
    panic!("reference file {name} not found in www/models, tests/golden or ../shared: run ./build.sh first");
}

fn text(name: &str) -> String {
    String::from_utf8(data(name)).expect("golden file is UTF-8")
}

/// A golden JSON Lines file, one value per line.
pub fn jsonl(name: &str) -> Vec<serde_json::Value> {
    golden::jsonl(&text(name))
}

pub fn generate_cases() -> Vec<GenerateCase> {
    golden::generate_cases(&text("runc_parity.jsonl"))
}

pub fn encode_cases() -> Vec<EncodeCase> {
    golden::encode_cases(&text("runc_parity.jsonl"))
}
