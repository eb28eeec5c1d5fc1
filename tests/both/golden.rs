//! run.c's recorded outputs (`tests/golden/*.jsonl`, copied from
//! `../shared/golden` by ./build.sh), parsed here and nowhere else in Rust:
//! natively through `tests/common` (which reads the files) and in the browser
//! by `tests/web` (which embeds them). Included with `#[path]` by both, like
//! `tests/both/mod.rs` it is compiled for both targets.
#![allow(dead_code)]

use serde_json::Value;

/// One JSON value per non-empty line.
pub fn jsonl(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("golden line is JSON")).collect()
}

/// A `generate` case: run.c's (or runq.c's) tokens and stdout for a model,
/// prompt and sampling parameters.
#[derive(Debug)]
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

/// An `encode` case: run.c's `encode(text, bos, eos)`.
pub struct EncodeCase {
    pub tokenizer: String,
    pub text: String,
    pub bos: bool,
    pub eos: bool,
    pub tokens: Vec<u32>,
}

fn string(c: &Value, key: &str) -> String {
    c[key].as_str().unwrap().into()
}

fn tokens(c: &Value) -> Vec<u32> {
    c["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

/// The cases of one `kind` in `runc_parity.jsonl`'s text, each made by `case`.
fn cases<T>(text: &str, kind: &str, case: impl Fn(&Value) -> T) -> Vec<T> {
    jsonl(text).iter().filter(|c| c["kind"] == kind).map(case).collect()
}

/// The `generate` cases of `runc_parity.jsonl`'s text.
pub fn generate_cases(text: &str) -> Vec<GenerateCase> {
    cases(text, "generate", |c| GenerateCase {
        model: string(c, "model"),
        tokenizer: string(c, "tokenizer"),
        prompt: string(c, "prompt"),
        temperature: c["temperature"].as_f64().unwrap(),
        topp: c["topp"].as_f64().unwrap(),
        seed: c["seed"].as_u64().unwrap(),
        steps: c["steps"].as_i64().unwrap(),
        tokens: tokens(c),
        stdout: string(c, "stdout"),
    })
}

/// The `encode` cases of `runc_parity.jsonl`'s text.
pub fn encode_cases(text: &str) -> Vec<EncodeCase> {
    cases(text, "encode", |c| EncodeCase {
        tokenizer: string(c, "tokenizer"),
        text: string(c, "text"),
        bos: c["bos"].as_bool().unwrap(),
        eos: c["eos"].as_bool().unwrap(),
        tokens: tokens(c),
    })
}
