//! Files into models: `ModelLoader` (a checkpoint streamed in as its bytes
//! arrive), `fileInfo` (what a file is, from its first bytes) and
//! `tokenizerInfo`.

use wasm_bindgen::prelude::*;

use super::args::{bool_arg, bytes_arg, copy_into, index_from_js, js_number, number_arg, tokenizer_from_js, MAX_SAFE_INTEGER};
use super::model::Model;
use super::object::Fields;
use super::testing::{crash_point, CRASH_PUSH};
use crate::checkpoint::{self, CheckpointBuilder};
use crate::error::{thousands, Error};
use crate::llama::Llama;
use crate::tokenizer::Tokenizer;

/// Loads a checkpoint as its bytes arrive (a download or a file being read):
/// `new ModelLoader(firstBytes, totalSize)` checks the header and allocates
/// the weights, `push(chunk)` converts each chunk straight into them, and
/// `finish(tokenizer)` gives the `Model`. The file is never held whole in
/// memory beside the weights.
///
/// What is pushed must be the file the loader was opened with: its first
/// bytes must equal `firstBytes`, and all of it exactly `totalSize` bytes.
/// A `finish` whose tokenizer is refused (unreadable, or another
/// vocabulary) leaves the loader and its weights as they were, for another
/// `finish` with the right tokenizer.
#[wasm_bindgen]
pub struct ModelLoader {
    builder: Option<CheckpointBuilder>,
    /// The first bytes the loader was opened with (at most 256).
    head: Vec<u8>,
    size: u64,
    quantize: bool,
    /// Reused for each piece of a chunk copied into wasm memory.
    buffer: Vec<u8>,
}

/// Chunks are copied into wasm memory this much at a time.
const PIECE: u32 = 1 << 20;

#[wasm_bindgen]
impl ModelLoader {
    /// `head`: the file's first 256 bytes (all of it if shorter), a
    /// `Uint8Array` or `ArrayBuffer`; `size`: its length in bytes;
    /// `quantize` (optional): load an fp32 file as Q8_0.
    #[wasm_bindgen(constructor)]
    pub fn new(head: &JsValue, size: &JsValue, quantize: &JsValue) -> Result<ModelLoader, JsError> {
        console_error_panic_hook::set_once();
        let (bytes, len) = bytes_arg(head, "head")?;
        let size = number_arg(size, "size")?;
        if !(size.is_finite() && size >= 0.0 && size.fract() == 0.0 && size <= MAX_SAFE_INTEGER) {
            return Err(Error::Argument(format!("file size {} is not a byte count", js_number(size))).into());
        }
        let quantize = bool_arg(quantize, "quantize", Some(false))?;
        let mut head = Vec::new();
        copy_into(&bytes, 0, len.min(256), &mut head, "the checkpoint's header")?;
        let builder = CheckpointBuilder::new(&head, size as u64)?;
        Ok(ModelLoader { builder: Some(builder), head, size: size as u64, quantize, buffer: Vec::new() })
    }

    /// The next bytes of the file (a `Uint8Array` or `ArrayBuffer`), from
    /// its very first byte on, in order.
    pub fn push(&mut self, chunk: &JsValue) -> Result<(), JsError> {
        crash_point(CRASH_PUSH);
        let builder = self.builder.as_mut().ok_or(Error::State("this loader has already finished"))?;
        let (bytes, len) = bytes_arg(chunk, "chunk")?;
        let arriving = builder.received() + len as u64;
        if arriving > self.size {
            return Err(Error::Checkpoint(format!(
                "{} bytes were pushed, more than the {} bytes the loader was opened for",
                thousands(arriving),
                thousands(self.size)
            ))
            .into());
        }
        let mut at = 0;
        while at < len {
            let n = (len - at).min(PIECE);
            copy_into(&bytes, at, n, &mut self.buffer, "a chunk of the checkpoint")?;
            // the header part must be the very head the loader checked
            let received = builder.received();
            if received < self.head.len() as u64 {
                let start = received as usize;
                let end = (start + n as usize).min(self.head.len());
                if let Some(i) = (start..end).find(|&i| self.buffer[i - start] != self.head[i]) {
                    return Err(Error::Checkpoint(format!(
                        "byte {i} pushed differs from the header this loader was opened with: \
                         push the same file, from its first byte"
                    ))
                    .into());
                }
            }
            builder.push(&self.buffer)?;
            at += n;
        }
        if self.buffer.capacity() > PIECE as usize {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Bytes pushed so far.
    #[wasm_bindgen(getter)]
    pub fn received(&self) -> f64 {
        self.builder.as_ref().map_or(0.0, |b| b.received() as f64)
    }

    /// All bytes pushed: build the model with this tokenizer (a `Uint8Array`
    /// or `ArrayBuffer`). A file not yet complete, or a tokenizer that is
    /// refused (unreadable, or of another vocabulary size), is an error that
    /// leaves the loader as it was.
    pub fn finish(&mut self, tokenizer: &JsValue) -> Result<Model, JsError> {
        let builder = self.builder.as_ref().ok_or(Error::State("this loader has already finished"))?;
        if builder.received() != self.size {
            return Err(Error::Checkpoint(format!(
                "the file ended after {} of its {} bytes",
                thousands(builder.received()),
                thousands(self.size)
            ))
            .into());
        }
        let tokenizer = tokenizer_from_js(tokenizer, Some(builder.header().config.vocab_size))?;
        let builder = self.builder.take().ok_or(Error::State("this loader has already finished"))?;
        self.buffer = Vec::new();
        Ok(Model { llama: Llama::new(builder.finish()?, tokenizer, self.quantize)?, gpu: Default::default() })
    }
}

/// What a file is, from its first bytes (256 are enough; a `Uint8Array` or
/// `ArrayBuffer`) and its size, before reading the rest: `{ kind:
/// "checkpoint" | "tokenizer" | "unknown", error?, version?, vocab_size?,
/// memory_bytes? }`. The engine's own checks: a checkpoint whose header is
/// invalid, whose size does not match, or which cannot fit in memory has
/// `error` set, so a page can refuse it without reading gigabytes; a
/// tokenizer is what the tokenizer parser accepts the start of.
#[wasm_bindgen(js_name = fileInfo)]
pub fn file_info(head: &JsValue, size: &JsValue) -> Result<JsValue, JsError> {
    console_error_panic_hook::set_once();
    // the first 64 KiB at most: what the checks read is far less
    let (bytes, len) = bytes_arg(head, "head")?;
    let mut head = Vec::new();
    copy_into(&bytes, 0, len.min(1 << 16), &mut head, "the file's first bytes")?;
    let size = number_arg(size, "size")?;
    if !(size.is_finite() && size >= 0.0 && size.fract() == 0.0) {
        return Err(Error::Argument(format!("file size {} is not a byte count", js_number(size))).into());
    }
    let size = size as u64;
    let checked = checkpoint::check(&head, size);
    // a legacy header and a tokenizer's first entries can look alike: a
    // header that is valid for exactly this file's length decides
    let checkpoint = checkpoint::looks_like_checkpoint(&head) && (checked.is_ok() || !Tokenizer::looks_like(&head));
    let info = if let Some(what) = checkpoint::identify_wrong_file(&head) {
        Fields::new().text("kind", "unknown").text("error", what)
    } else if checkpoint {
        let info = Fields::new().text("kind", "checkpoint");
        match checked {
            Ok(h) => info
                .num("version", h.version)
                .num("vocab_size", h.config.vocab_size)
                .num("memory_bytes", checkpoint::memory_needed(&h).unwrap_or(0)),
            Err(e) => info.text("error", &e.to_string()),
        }
    } else if Tokenizer::looks_like(&head) {
        Fields::new().text("kind", "tokenizer")
    } else {
        let msg = "this file is neither a llama2.c checkpoint (.bin from export.py or the \
                   legacy format) nor a llama2.c tokenizer.bin";
        Fields::new().text("kind", "unknown").text("error", msg)
    };
    Ok(info.build())
}

/// A whole tokenizer file checked by the engine's parser: `{ vocab_size,
/// max_token_length }`, or the parser's error. With `vocabSize` (a
/// checkpoint's), a tokenizer of another size is an error too, so a page
/// can refuse the pair before streaming the checkpoint.
#[wasm_bindgen(js_name = tokenizerInfo)]
pub fn tokenizer_info(bytes: &JsValue, vocab_size: &JsValue) -> Result<JsValue, JsError> {
    console_error_panic_hook::set_once();
    let vocab_size = if vocab_size.is_undefined() || vocab_size.is_null() {
        None
    } else {
        Some(index_from_js(vocab_size, "vocabSize")?)
    };
    let tokenizer = tokenizer_from_js(bytes, vocab_size)?;
    Ok(Fields::new()
        .num("vocab_size", tokenizer.vocab_size())
        .num("max_token_length", tokenizer.max_token_length())
        .build())
}
