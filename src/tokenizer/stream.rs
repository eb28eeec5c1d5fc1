//! Decoded token bytes -> text, whole characters at a time.

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
