//! The Byte Pair Encoding tokenizer: strings <-> token ids, as in run.c.
//!
//! File format (`tokenizer.bin`, little-endian): `max_token_length: i32`, then
//! for each token `score: f32, len: i32, bytes[len]`. The file does not store
//! the vocabulary size; run.c reads as many entries as the checkpoint says.
//! We read entries until the end of the file and compare the count.
//!
//! Here: loading and `decode`. [`encode`](Tokenizer::encode) (in `encode.rs`)
//! gives exactly run.c's ids, but finds the best merge with a heap over a
//! linked list of tokens instead of rescanning every pair each round.
//! [`TextStream`] (in `stream.rs`) joins decoded pieces into whole characters.

mod encode;
mod stream;

use std::collections::HashMap;

use crate::checkpoint::looks_like_checkpoint;
use crate::error::{Error, Result};
use crate::sniff::{identify_wrong_file, looks_like_tokenizer};

pub use crate::sniff::MAX_TOKEN_LENGTH;
pub use stream::TextStream;

pub const BOS: u32 = 1;
pub const EOS: u32 = 2;

/// The most tokens a tokenizer.bin may hold (Llama 2 has 32,000, Llama 3 128,256).
pub const MAX_TOKENS: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: Vec<Vec<u8>>,            // (vocab_size,) token bytes
    scores: Vec<f32>,               // (vocab_size,) merge priority
    lookup: HashMap<Vec<u8>, u32>,  // run.c's sorted_vocab + bsearch
    max_token_length: usize,
}

impl Tokenizer {
    /// Parse a `tokenizer.bin`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tokenizer> {
        let err = |msg: String| Err(Error::Tokenizer(msg));
        let head = &bytes[..bytes.len().min(256)];
        if let Some(what) = identify_wrong_file(head) {
            return err(what.into());
        }
        if !looks_like_tokenizer(head) && looks_like_checkpoint(head) {
            return err("this is a model checkpoint, not a tokenizer".into());
        }
        if bytes.len() < 4 {
            return err(format!(
                "the file is {} bytes, too short for its 4-byte header",
                bytes.len()
            ));
        }
        let max_token_length = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if !(1..=MAX_TOKEN_LENGTH).contains(&max_token_length) {
            return err(format!(
                "max_token_length is {max_token_length}; expected a small positive number \
                 (is this a llama2.c tokenizer.bin?)"
            ));
        }
        // first pass: validate every entry and count them, so that the
        // tables are allocated once, fallibly, before any token is copied
        let mut entries: Vec<(f32, std::ops::Range<usize>)> = Vec::new();
        let mut at = 4usize;
        while at < bytes.len() {
            let i = entries.len();
            if i == MAX_TOKENS {
                return err(format!(
                    "it holds more than {} tokens (at byte {} of {}); llama2.c tokenizers hold one per vocabulary entry: \
                     the file is corrupt or has something appended",
                    crate::error::thousands(MAX_TOKENS as u64),
                    crate::error::thousands(at as u64),
                    crate::error::thousands(bytes.len() as u64)
                ));
            }
            if bytes.len() - at < 8 {
                return err(format!(
                    "truncated: token {i} at byte {at} needs an 8-byte score and length, \
                     but only {} bytes are left",
                    bytes.len() - at
                ));
            }
            let b = &bytes[at..at + 8];
            let score = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let len = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            at += 8;
            if !score.is_finite() {
                return err(format!("token {i} has the merge score {score}; scores must be finite numbers"));
            }
            if len < 0 || len > max_token_length {
                return err(format!(
                    "token {i} claims {len} bytes, outside 0..={max_token_length} \
                     (max_token_length); the file is corrupt or not a tokenizer"
                ));
            }
            let len = len as usize;
            if bytes.len() - at < len {
                return err(format!(
                    "truncated: token {i} needs {len} bytes at byte {at}, only {} left",
                    bytes.len() - at
                ));
            }
            entries.push((score, at..at + len));
            at += len;
        }
        if entries.is_empty() {
            return err("the file holds no tokens".into());
        }
        let n = entries.len();
        let too_large = || Error::TooLarge { what: "the tokenizer's tables", bytes: n as u64 * 64 + bytes.len() as u64 };
        let (mut vocab, mut scores) = (Vec::new(), Vec::new());
        vocab.try_reserve_exact(n).map_err(|_| too_large())?;
        scores.try_reserve_exact(n).map_err(|_| too_large())?;
        for (score, range) in entries {
            vocab.push(bytes[range].to_vec());
            scores.push(score);
        }
        if !vocab.iter().any(|piece| piece == b" ") {
            return err("it has no \" \" token, which run.c puts before every prompt (the dummy prefix)".into());
        }
        let mut lookup = HashMap::new();
        lookup.try_reserve(n).map_err(|_| too_large())?;
        for (id, piece) in vocab.iter().enumerate() {
            // run.c bsearches a sorted copy; with duplicate strings we keep the first id
            lookup.entry(piece.clone()).or_insert(id as u32);
        }
        Ok(Tokenizer { vocab, scores, lookup, max_token_length: max_token_length as usize })
    }

    /// Does this look like the start of a `tokenizer.bin`: a small positive
    /// max_token_length, then a few (score, len, bytes) entries that parse?
    pub fn looks_like(head: &[u8]) -> bool {
        looks_like_tokenizer(head)
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn max_token_length(&self) -> usize {
        self.max_token_length
    }

    /// The raw bytes of a token (as stored in the file).
    pub fn piece(&self, token: u32) -> &[u8] {
        self.vocab.get(token as usize).map_or(&[], |v| v.as_slice())
    }

    pub fn score(&self, token: u32) -> f32 {
        self.scores.get(token as usize).copied().unwrap_or(f32::NEG_INFINITY)
    }

    fn id_of(&self, s: &[u8]) -> Option<u32> {
        self.lookup.get(s).copied()
    }

    /// run.c's `decode`: the bytes to print when `token` follows `prev_token`.
    /// After BOS the leading space of a piece is dropped (SentencePiece's dummy
    /// prefix); `<0xXX>` pieces stand for the raw byte XX.
    pub fn decode(&self, prev_token: u32, token: u32) -> &[u8] {
        let mut piece = self.piece(token);
        if prev_token == BOS && piece.first() == Some(&b' ') {
            piece = &piece[1..];
        }
        if let Some(b) = parse_byte_token(piece) {
            return &BYTE_PIECES[b as usize..b as usize + 1];
        }
        piece
    }
}

impl Tokenizer {
    /// The text of a token sequence as run.c prints a generation of it: each
    /// token decoded after the one before it (so the first piece after BOS
    /// loses its leading space), BOS itself printing nothing, and bytes
    /// joined into whole UTF-8 characters (an incomplete one at the end
    /// shows as U+FFFD). Tokens outside the vocabulary are an error.
    pub fn decode_all(&self, tokens: &[u32]) -> Result<String> {
        let mut text = TextStream::new();
        let mut out = String::new();
        let mut prev = 0; // not BOS: a sequence that does not start with BOS keeps its first space
        for (i, &token) in tokens.iter().enumerate() {
            if token as usize >= self.vocab_size() {
                return Err(Error::Argument(format!(
                    "token {token} (at index {i}) is not in the vocabulary: tokens are whole numbers 0-{}",
                    self.vocab_size() - 1
                )));
            }
            if token != BOS {
                out.push_str(&text.push(self.decode(prev, token)));
            }
            prev = token;
        }
        out.push_str(&text.finish());
        Ok(out)
    }
}

/// One byte per possible value: what `<0xXX>` tokens decode to.
static BYTE_PIECES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// `<0x0A>` -> Some(0x0A).
fn parse_byte_token(piece: &[u8]) -> Option<u8> {
    if piece.len() == 6 && piece.starts_with(b"<0x") && piece[5] == b'>' {
        let hex = std::str::from_utf8(&piece[3..5]).ok()?;
        u8::from_str_radix(hex, 16).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokens() {
        assert_eq!(parse_byte_token(b"<0x0A>"), Some(10));
        assert_eq!(parse_byte_token(b"<0xff>"), Some(255));
        assert_eq!(parse_byte_token(b"<0x0A"), None);
        assert_eq!(parse_byte_token(b"hello!"), None);
    }
}
