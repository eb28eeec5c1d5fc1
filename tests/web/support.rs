//! The browser tests' fixtures: the reference files embedded at compile
//! time, and the `Model` / `ModelLoader` API with Rust types.
use js_sys::Uint8Array;
use llama2_wasm::wasm::{Model, ModelLoader};
use wasm_bindgen::{JsCast, JsError, JsValue};

use crate::golden::{self, GenerateCase};

pub const STORIES260K: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/stories260K.bin"));
pub const STORIES260K_V1: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/stories260K_v1.bin"));
pub const STORIES260K_Q80: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/stories260K_q80.bin"));
pub const TOK512: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/tok512.bin"));
const GOLDEN: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/runc_parity.jsonl"));

/// run.c's recorded generations (tests/both/golden.rs parses them).
pub fn generate_cases() -> Vec<GenerateCase> {
    golden::generate_cases(GOLDEN)
}

pub fn js(bytes: &[u8]) -> Uint8Array {
    Uint8Array::from(bytes)
}

pub fn model_file(name: &str) -> &'static [u8] {
    match name {
        "stories260K.bin" => STORIES260K,
        "stories260K_v1.bin" => STORIES260K_V1,
        "stories260K_q80.bin" => STORIES260K_Q80,
        "tok512.bin" => TOK512,
        other => panic!("no embedded file {other}"),
    }
}

pub fn new_model(checkpoint: &[u8], tokenizer: &[u8], quantize: bool) -> Result<Model, wasm_bindgen::JsError> {
    Model::new(&js(checkpoint).into(), &js(tokenizer).into(), &quantize.into())
}

pub fn new_loader(head: &[u8], size: f64) -> Result<ModelLoader, wasm_bindgen::JsError> {
    ModelLoader::new(&js(head).into(), &size.into(), &JsValue::UNDEFINED)
}

/// The Model API with Rust types, for the tests that are not about the JS
/// boundary itself (the exports take `JsValue`s and check them).
pub trait RustTypes {
    fn start_with(&mut self, prompt: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError>;
    fn start_chat_with(&mut self, system: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError>;
    fn chat_user_with(&mut self, message: &str) -> Result<(), JsError>;
    fn extend_with(&mut self, steps: f64) -> Result<(), JsError>;
    fn encode_with(&self, text: &str) -> Result<Vec<u32>, JsError>;
    fn set_kernels_with(&mut self, name: &str) -> Result<(), JsError>;
    fn set_inspect_with(&mut self, on: bool);
    fn set_walkthrough_with(&mut self, on: bool);
    fn inspect_at_with(&mut self, pos: f64) -> Result<(), JsError>;
    fn topk_with(&self, k: f64) -> Result<JsValue, JsError>;
    fn attention_with(&self, layer: usize, head: usize) -> Result<Vec<f32>, JsError>;
    fn timings_with(&self, pos: Option<f64>) -> Result<JsValue, JsError>;
    fn lens_with(&mut self, pos: f64, k: f64) -> Result<JsValue, JsError>;
}

impl RustTypes for Model {
    fn start_with(&mut self, prompt: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError> {
        self.start(&prompt.into(), &temperature.into(), &topp.into(), &seed.into(), &steps.into())
    }
    fn start_chat_with(&mut self, system: &str, temperature: f64, topp: f64, seed: f64, steps: f64) -> Result<(), JsError> {
        self.start_chat(&system.into(), &temperature.into(), &topp.into(), &seed.into(), &steps.into())
    }
    fn chat_user_with(&mut self, message: &str) -> Result<(), JsError> {
        self.chat_user(&message.into())
    }
    fn encode_with(&self, text: &str) -> Result<Vec<u32>, JsError> {
        self.encode(&text.into())
    }
    fn extend_with(&mut self, steps: f64) -> Result<(), JsError> {
        self.extend(&steps.into())
    }
    fn set_kernels_with(&mut self, name: &str) -> Result<(), JsError> {
        self.set_kernels(&name.into())
    }
    fn set_inspect_with(&mut self, on: bool) {
        assert!(self.set_inspect(&on.into()).is_ok());
    }
    fn set_walkthrough_with(&mut self, on: bool) {
        assert!(self.set_walkthrough(&on.into()).is_ok());
    }
    fn inspect_at_with(&mut self, pos: f64) -> Result<(), JsError> {
        self.inspect_at(&pos.into())
    }
    fn topk_with(&self, k: f64) -> Result<JsValue, JsError> {
        self.topk(&k.into())
    }
    fn attention_with(&self, layer: usize, head: usize) -> Result<Vec<f32>, JsError> {
        self.attention(&(layer as f64).into(), &(head as f64).into())
    }
    fn timings_with(&self, pos: Option<f64>) -> Result<JsValue, JsError> {
        self.timings(&pos.map_or(JsValue::UNDEFINED, JsValue::from_f64))
    }
    fn lens_with(&mut self, pos: f64, k: f64) -> Result<JsValue, JsError> {
        self.lens(&pos.into(), &k.into())
    }
}

pub trait LoaderRustTypes {
    fn push_with(&mut self, chunk: &[u8]) -> Result<(), JsError>;
    fn finish_with(&mut self, tokenizer: &Uint8Array) -> Result<Model, JsError>;
}

impl LoaderRustTypes for ModelLoader {
    fn push_with(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.push(&js(chunk).into())
    }
    fn finish_with(&mut self, tokenizer: &Uint8Array) -> Result<Model, JsError> {
        self.finish(tokenizer)
    }
}

/// The message of the JS Error a call threw.
pub fn message(e: JsError) -> String {
    let v: JsValue = e.into();
    v.dyn_into::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_default()
}

/// Run one golden generation case through `start` and `step`; the text.
pub fn run_case(model: &mut Model, c: &GenerateCase) -> String {
    model.start_with(&c.prompt, c.temperature, c.topp, c.seed as f64, c.steps as f64).unwrap();
    let mut text = String::new();
    while let Some(piece) = model.step().unwrap() {
        text.push_str(&piece);
    }
    text
}

/// Run a golden case: run.c's tokens and text, or fail naming `what` and the case.
pub fn assert_reproduces(model: &mut Model, c: &GenerateCase, what: &str) {
    let text = run_case(model, c);
    assert_eq!(model.tokens(), c.tokens, "{what} differ for {c:?}");
    assert_eq!(text, c.stdout);
}

pub fn get(o: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(o, &JsValue::from_str(key)).unwrap()
}

pub fn num(o: &JsValue, key: &str) -> f64 {
    get(o, key).as_f64().unwrap_or_else(|| panic!("{key} is not a number"))
}
