//! `Sha256`: the digest of a file as its chunks stream by, for the page's
//! model library (each stored file is recorded with it and checked when it
//! is loaded again, never read whole).

use wasm_bindgen::prelude::*;

use super::args::{bytes_arg, copy_into};
use crate::error::Error;
use crate::sha256;

/// `new Sha256()`, `update(bytes)` as many times as there are chunks (a
/// `Uint8Array` or `ArrayBuffer`; any typed array or `DataView` hashes the
/// bytes it views), then `hex()`: the 64 lowercase hex digits `sha256sum`
/// prints. After `hex()` the object is finished: `update` and `hex` are
/// errors.
#[wasm_bindgen]
pub struct Sha256 {
    /// `None` once `hex()` has given the digest.
    sha: Option<sha256::Sha256>,
    /// Reused for each piece of a chunk copied into wasm memory.
    buffer: Vec<u8>,
}

/// Chunks are copied into wasm memory this much at a time.
const PIECE: u32 = 1 << 20;

const FINISHED: Error = Error::State("this Sha256 has already given its digest (hex()): make a new one for other bytes");

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

#[wasm_bindgen]
impl Sha256 {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha256 {
        console_error_panic_hook::set_once();
        Sha256 { sha: Some(sha256::Sha256::new()), buffer: Vec::new() }
    }

    /// The next bytes (a `Uint8Array` or `ArrayBuffer`). A wrong argument,
    /// or bytes that cannot be read, is an error that leaves the digest as
    /// it was.
    pub fn update(&mut self, bytes: &JsValue) -> Result<(), JsError> {
        let sha = self.sha.as_mut().ok_or(FINISHED)?;
        let (bytes, len) = bytes_arg(bytes, "bytes")?;
        // all of the chunk or none of it: a copy failing halfway (a buffer
        // detached) must not leave a digest of part of it
        let mut next = sha.clone();
        let mut at = 0;
        while at < len {
            let n = (len - at).min(PIECE);
            copy_into(&bytes, at, n, &mut self.buffer, "a chunk to hash")?;
            next.update(&self.buffer);
            at += n;
        }
        *sha = next;
        Ok(())
    }

    /// The digest of all the bytes given to `update`, as 64 lowercase hex
    /// digits; the object is finished.
    pub fn hex(&mut self) -> Result<String, JsError> {
        let sha = self.sha.take().ok_or(FINISHED)?;
        self.buffer = Vec::new();
        Ok(sha256::hex(&sha.finish()))
    }
}
