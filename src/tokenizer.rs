//! The Byte Pair Encoding tokenizer: strings <-> token ids, as in run.c.
//!
//! File format (`tokenizer.bin`, little-endian): `max_token_length: i32`, then
//! for each token `score: f32, len: i32, bytes[len]`. The file does not store
//! the vocabulary size; run.c reads as many entries as the checkpoint says.
//! We read entries until the end of the file and compare the count.
//!
//! `encode` gives exactly run.c's ids, but finds the best merge with a heap
//! over a linked list of tokens instead of rescanning every pair each round.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::error::{Error, Result};

pub const BOS: u32 = 1;
pub const EOS: u32 = 2;

/// The longest token a tokenizer.bin may declare (Llama 2's is 27 bytes).
pub const MAX_TOKEN_LENGTH: i32 = 1 << 16;
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
        if let Some(what) = crate::checkpoint::identify_wrong_file(head) {
            return err(what.into());
        }
        if !Tokenizer::looks_like(head) && crate::checkpoint::looks_like_checkpoint(head) {
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
        let i32_at = |at: usize| head.get(at..at + 4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let Some(max) = i32_at(0) else { return false };
        if !(1..=MAX_TOKEN_LENGTH).contains(&max) {
            return false;
        }
        // three whole entries with finite scores and lengths within max
        let mut at = 4;
        for _ in 0..3 {
            let (Some(score), Some(len)) = (i32_at(at), i32_at(at + 4)) else { return false };
            if !f32::from_bits(score as u32).is_finite() || len < 0 || len > max || at + 8 + len as usize > head.len() {
                return false;
            }
            at += 8 + len as usize;
        }
        true
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

    /// run.c's `encode`: text -> token ids, optionally with BOS (1) and EOS (2).
    pub fn encode(&self, text: &str, bos: bool, eos: bool) -> Result<Vec<u32>> {
        let text = text.as_bytes();
        let mut tokens: Vec<u32> = Vec::with_capacity(text.len() + 3);
        if bos {
            tokens.push(BOS);
        }
        // SentencePiece's add_dummy_prefix: a leading space, if there is any text
        if !text.is_empty() {
            match self.id_of(b" ") {
                Some(id) => tokens.push(id),
                None => {
                    return Err(Error::Tokenizer(
                        "the vocabulary has no \" \" token, needed to encode a prompt".into(),
                    ))
                }
            }
        }
        // Every UTF-8 code point becomes its token if the vocabulary has it,
        // else one byte-fallback token per byte (`<0xXX>` is id XX + 3).
        // run.c groups bytes the same way: a code point ends at the next
        // non-continuation byte, or after 4 bytes.
        let mut start = 0;
        while start < text.len() {
            let mut end = start + 1;
            while end < text.len() && (text[end] & 0xC0) == 0x80 && end - start < 4 {
                end += 1;
            }
            let cp = &text[start..end];
            match self.id_of(cp) {
                Some(id) => tokens.push(id),
                None => {
                    for &b in cp {
                        let id = b as u32 + 3;
                        if id as usize >= self.vocab.len() {
                            return Err(Error::Tokenizer(format!(
                                "the vocabulary ({} tokens) has no byte-fallback token for \
                                 byte 0x{b:02X} of the text",
                                self.vocab.len()
                            )));
                        }
                        tokens.push(id);
                    }
                }
            }
            start = end;
        }
        self.merge(&mut tokens);
        if eos {
            tokens.push(EOS);
        }
        Ok(tokens)
    }

    /// Greedy BPE, as run.c: repeatedly merge the adjacent pair whose
    /// concatenation is a token with the highest score (first pair on ties),
    /// until no pair merges. Rather than rescanning all pairs per merge, keep
    /// candidates in a max-heap and the tokens in a linked list; a heap entry
    /// is stale once either of its tokens has changed.
    fn merge(&self, tokens: &mut Vec<u32>) {
        let n = tokens.len();
        if n < 2 {
            return;
        }
        let mut next: Vec<usize> = (1..=n).collect(); // n = end of list
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut version = vec![0u32; n]; // bumped whenever a slot's token changes
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let mut buf: Vec<u8> = Vec::with_capacity(2 * self.max_token_length + 2);

        let candidate = |left: usize, right: usize, toks: &[u32], version: &[u32], buf: &mut Vec<u8>| {
            buf.clear();
            buf.extend_from_slice(self.piece(toks[left]));
            buf.extend_from_slice(self.piece(toks[right]));
            let id = self.id_of(buf)?;
            let score = self.scores[id as usize];
            // run.c starts from best_score = -1e10 and needs a strict improvement
            (score > -1e10).then_some(Merge {
                score,
                left,
                right,
                id,
                versions: (version[left], version[right]),
            })
        };

        for i in 0..n - 1 {
            if let Some(m) = candidate(i, i + 1, tokens, &version, &mut buf) {
                heap.push(m);
            }
        }
        while let Some(m) = heap.pop() {
            let (l, r) = (m.left, m.right);
            let current = alive[l] && alive[r] && next[l] == r && (version[l], version[r]) == m.versions;
            if !current {
                continue;
            }
            // merge r into l
            tokens[l] = m.id;
            version[l] += 1;
            alive[r] = false;
            next[l] = next[r];
            if next[r] < n {
                prev[next[r]] = l;
            }
            if prev[l] < n {
                if let Some(c) = candidate(prev[l], l, tokens, &version, &mut buf) {
                    heap.push(c);
                }
            }
            if next[l] < n {
                if let Some(c) = candidate(l, next[l], tokens, &version, &mut buf) {
                    heap.push(c);
                }
            }
        }
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            out.push(tokens[i]);
            i = next[i];
        }
        *tokens = out;
    }
}

/// A possible merge: ordered by score, then by position (leftmost first),
/// which is the order run.c's linear scan picks them in. Positions keep their
/// order as slots merge, so the original slot index is a valid tie-breaker.
struct Merge {
    score: f32,
    left: usize,
    right: usize,
    id: u32,
    versions: (u32, u32),
}

impl PartialEq for Merge {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Merge {}
impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Merge {
    fn cmp(&self, other: &Self) -> Ordering {
        // scores are never NaN here (NaN > -1e10 is false, so never queued)
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
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

/// Turns decoded token bytes into text, across token boundaries.
///
/// Byte-fallback tokens can split one UTF-8 character over several tokens;
/// we hold an incomplete tail until the rest arrives, so callers only ever
/// see whole characters. Like run.c's `safe_printf`, a single-byte piece
/// that is an unprintable ASCII control byte (not whitespace) is dropped.
#[derive(Debug, Default, Clone)]
pub struct TextStream {
    pending: Vec<u8>, // at most 3 bytes of an unfinished character
}

impl TextStream {
    pub fn new() -> TextStream {
        TextStream::default()
    }

    /// Add one decoded piece; returns the text that is now complete.
    pub fn push(&mut self, piece: &[u8]) -> String {
        if let [b] = piece {
            let printable = (0x20..0x7f).contains(b) || matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
            if *b < 0x80 && !printable {
                return String::new();
            }
        }
        self.pending.extend_from_slice(piece);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // from_utf8 just said this prefix is valid, so this never falls back
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // incomplete character at the end: keep it for later
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        // bytes that can never be valid: show that something was there
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
        out
    }

    /// End of text: an unfinished character becomes U+FFFD, visibly.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tokenizer file from (score, piece) pairs.
    pub(crate) fn tokenizer_bytes(entries: &[(f32, &[u8])]) -> Vec<u8> {
        let max = entries.iter().map(|e| e.1.len()).max().unwrap_or(1).max(1) as i32;
        let mut b = max.to_le_bytes().to_vec();
        for (score, piece) in entries {
            b.extend_from_slice(&score.to_le_bytes());
            b.extend_from_slice(&(piece.len() as i32).to_le_bytes());
            b.extend_from_slice(piece);
        }
        b
    }

    #[test]
    fn byte_tokens() {
        assert_eq!(parse_byte_token(b"<0x0A>"), Some(10));
        assert_eq!(parse_byte_token(b"<0xff>"), Some(255));
        assert_eq!(parse_byte_token(b"<0x0A"), None);
        assert_eq!(parse_byte_token(b"hello!"), None);
    }

    #[test]
    fn merges_pick_highest_score_then_leftmost() {
        // vocab: 0 <unk>, 1 <s>, 2 </s>, 3 " ", 4 "a", 5 "b", 6 "ab", 7 " a", 8 "aba"
        let bytes = tokenizer_bytes(&[
            (0.0, b"<unk>"),
            (0.0, b"<s>"),
            (0.0, b"</s>"),
            (-1.0, b" "),
            (-1.0, b"a"),
            (-1.0, b"b"),
            (5.0, b"ab"),
            (1.0, b" a"),
            (6.0, b"aba"),
        ]);
        let t = Tokenizer::from_bytes(&bytes).unwrap();
        // [<s>, " ", a, b, a, b]: " a" scores 1, both "ab" 5: the leftmost "ab" wins
        // -> [<s>, " ", ab, a, b]: now "aba" (6) beats "ab" (5)
        // -> [<s>, " ", aba, b]: nothing merges further
        assert_eq!(t.encode("abab", true, false).unwrap(), vec![1, 3, 8, 5]);
        assert_eq!(t.encode("", true, true).unwrap(), vec![1, 2]);
    }

    #[test]
    fn text_stream_joins_split_characters() {
        let mut s = TextStream::new();
        let heart = "♥".as_bytes(); // 3 bytes
        assert_eq!(s.push(&heart[..1]), "");
        assert_eq!(s.push(&heart[1..2]), "");
        assert_eq!(s.push(&heart[2..]), "♥");
        assert_eq!(s.push(b" ok"), " ok");
        assert_eq!(s.push(&[0x07]), ""); // BEL is dropped as run.c's safe_printf does
        assert_eq!(s.push(b"\n"), "\n");
        assert_eq!(s.push(&[0xF0, 0x9F]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
        assert_eq!(s.push(&[0xFF, b'x']), "\u{FFFD}x");
    }
}
