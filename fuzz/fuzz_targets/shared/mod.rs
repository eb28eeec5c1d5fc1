//! Pieces the fuzz targets share (included with `#[path]`: not a target itself).

/// A tokenizer: <unk> <s> </s>, the 256 byte tokens, then merges up to `vocab`.
pub fn tokenizer(vocab: usize, shift: usize) -> Vec<u8> {
    let mut tok = 16i32.to_le_bytes().to_vec();
    let mut entry = |score: f32, piece: &[u8]| {
        tok.extend_from_slice(&score.to_le_bytes());
        tok.extend_from_slice(&(piece.len() as i32).to_le_bytes());
        tok.extend_from_slice(piece);
    };
    entry(0.0, b"<unk>");
    entry(0.0, b"<s>");
    entry(0.0, b"</s>");
    for b in 0..=255u8 {
        entry(0.0, format!("<0x{b:02X}>").as_bytes());
    }
    let pieces: [&[u8]; 8] = [b" ", b"a", b"ab", b" a", b"b", b"ba", b"aa", b"bb"];
    for i in 259..vocab {
        entry(i as f32, pieces[(i - 259 + shift) % 8]);
    }
    tok
}
