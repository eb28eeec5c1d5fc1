//! run.c's `encode`, with the best merge found by a heap instead of a
//! rescan of every pair each round.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{Tokenizer, BOS, EOS};
use crate::error::{Error, Result};

impl Tokenizer {
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
}
