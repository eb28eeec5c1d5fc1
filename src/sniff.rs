//! "What is this file?", from its first bytes, before anything is parsed:
//! the files people drop by mistake, the start of a `tokenizer.bin`, the
//! export formats' magic. Both loaders ask here first, so a tokenizer given
//! as a checkpoint (or a GGUF file given as either) is named for what it is
//! instead of failing on some field. Whether a legacy header is valid is the
//! checkpoint's own question: [`crate::checkpoint::looks_like_checkpoint`].

/// `0x616b3432`, "ak42" in little-endian bytes: the export formats' magic.
pub const MAGIC: u32 = 0x616b_3432;

/// The longest token a tokenizer.bin may declare (Llama 2's is 27 bytes).
pub const MAX_TOKEN_LENGTH: i32 = 1 << 16;

/// The little-endian i32 at byte `at`, if the bytes reach that far.
pub(crate) fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Files people drop by mistake, recognised by their first bytes: what the
/// file is and what to do instead. `None` when it is none of these.
pub fn identify_wrong_file(head: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(&head[..head.len().min(64)]).trim_start().to_ascii_lowercase();
    if head.starts_with(b"GGUF") {
        Some("this is a GGUF file (llama.cpp's format), not a llama2.c checkpoint; export the model with llama2.c's export.py")
    } else if head.starts_with(b"PK\x03\x04") {
        Some("this is a zip archive, probably a PyTorch .pt/.pth file; convert it with llama2.c's export.py")
    } else if head.len() > 8 && head[8] == b'{' && u64::from_le_bytes(head[..8].try_into().unwrap_or([0xff; 8])) < 1 << 32 {
        Some("this is a safetensors file (Hugging Face); convert it with llama2.c's export.py")
    } else if text.starts_with("<!doctype") || text.starts_with("<html") || text.starts_with("<?xml") {
        Some("this is an HTML page saved as a file (a failed download?), not a model")
    } else if head.starts_with(b"version https://git-lfs") {
        Some("this is a Git LFS pointer, not the model itself; download the file's real content")
    } else {
        None
    }
}

/// Does this start with the export formats' magic (versions 1 and 2)?
pub fn looks_like_export(head: &[u8]) -> bool {
    i32_at(head, 0).is_some_and(|magic| magic as u32 == MAGIC)
}

/// Does this look like the start of a `tokenizer.bin`: a small positive
/// max_token_length, then a few (score, len, bytes) entries that parse?
pub fn looks_like_tokenizer(head: &[u8]) -> bool {
    let Some(max) = i32_at(head, 0) else { return false };
    if !(1..=MAX_TOKEN_LENGTH).contains(&max) {
        return false;
    }
    // three whole entries with finite scores and lengths within max
    let mut at = 4;
    for _ in 0..3 {
        let (Some(score), Some(len)) = (i32_at(head, at), i32_at(head, at + 4)) else { return false };
        if !f32::from_bits(score as u32).is_finite() || len < 0 || len > max || at + 8 + len as usize > head.len() {
            return false;
        }
        at += 8 + len as usize;
    }
    true
}
