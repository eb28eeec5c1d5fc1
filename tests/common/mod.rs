//! Shared by the native tests: where the reference files are, and the golden
//! cases recorded from llama2.c's run.c.
#![allow(dead_code)]

use std::path::PathBuf;

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

pub fn jsonl(name: &str) -> Vec<serde_json::Value> {
    String::from_utf8(data(name))
        .expect("golden file is UTF-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("golden line is JSON"))
        .collect()
}

pub struct GenerateCase {
    pub model: String,
    pub tokenizer: String,
    pub prompt: String,
    pub temperature: f64,
    pub topp: f64,
    pub seed: u64,
    pub steps: i64,
    pub tokens: Vec<u32>,
    pub stdout: String,
}

pub fn generate_cases() -> Vec<GenerateCase> {
    jsonl("runc_parity.jsonl")
        .into_iter()
        .filter(|c| c["kind"] == "generate")
        .map(|c| GenerateCase {
            model: c["model"].as_str().unwrap().into(),
            tokenizer: c["tokenizer"].as_str().unwrap().into(),
            prompt: c["prompt"].as_str().unwrap().into(),
            temperature: c["temperature"].as_f64().unwrap(),
            topp: c["topp"].as_f64().unwrap(),
            seed: c["seed"].as_u64().unwrap(),
            steps: c["steps"].as_i64().unwrap(),
            tokens: c["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect(),
            stdout: c["stdout"].as_str().unwrap().into(),
        })
        .collect()
}
