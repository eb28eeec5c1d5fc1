//! The header: parsed and validated from the file's first bytes, before
//! anything else is read or allocated.

use super::model::{Config, Header};
use crate::error::{Error, Result};
use crate::sniff::{i32_at, identify_wrong_file, looks_like_export, looks_like_tokenizer, MAGIC};

pub(super) const LEGACY_HEADER_BYTES: usize = 7 * 4;
pub(super) const EXPORT_HEADER_BYTES: usize = 256;

impl Header {
    /// Bytes the header itself takes at the start of the file.
    pub(super) fn bytes_in_file(&self) -> u64 {
        (if self.version == 0 { LEGACY_HEADER_BYTES } else { EXPORT_HEADER_BYTES }) as u64
    }
}

/// Parse and validate the header from the first bytes of the file
/// (pass at least 256 bytes when the file has them).
pub fn parse_header(head: &[u8]) -> Result<Header> {
    if let Some(what) = identify_wrong_file(head) {
        return Err(Error::Checkpoint(what.into()));
    }
    if head.len() < LEGACY_HEADER_BYTES {
        return Err(Error::Checkpoint(format!(
            "the file is only {} bytes, too short for even a header (28 bytes)",
            head.len()
        )));
    }
    // the i-th i32 of the header; in bounds: each use follows a length check
    let word = |i: usize| i32_at(head, 4 * i).unwrap_or_default();
    if word(0) as u32 == MAGIC {
        if head.len() < EXPORT_HEADER_BYTES {
            return Err(Error::Checkpoint(format!(
                "the file has the \"ak42\" export magic but is only {} bytes, \
                 shorter than its 256-byte header",
                head.len()
            )));
        }
        let version = word(1);
        if version != 1 && version != 2 {
            return Err(Error::UnsupportedVersion(version));
        }
        let fields: [i32; 7] = std::array::from_fn(|i| word(2 + i));
        let shared = match head[36] {
            0 => false,
            1 => true,
            b => {
                return Err(Error::Checkpoint(format!(
                    "the shared-classifier byte is {b}, expected 0 or 1"
                )))
            }
        };
        let config = validate_config(fields, false)?;
        let group_size = if version == 2 {
            // an i32 right after the shared-classifier byte (unaligned)
            let gs = i32_at(head, 37).unwrap_or_default();
            Some(validate_group_size(gs, &config)?)
        } else {
            None
        };
        Ok(Header { config, version: version as u32, shared_classifier: shared, group_size })
    } else {
        let fields: [i32; 7] = std::array::from_fn(word);
        // legacy: a negative vocab_size flags an unshared classifier
        let shared = fields[5] > 0;
        let config = validate_config(fields, true).map_err(|e| {
            // not a legacy header: say so plainly if it is a tokenizer
            if looks_like_tokenizer(head) {
                Error::Checkpoint("this is a tokenizer (tokenizer.bin), not a checkpoint".into())
            } else {
                e
            }
        })?;
        Ok(Header { config, version: 0, shared_classifier: shared, group_size: None })
    }
}

/// Does this look like a checkpoint at all (magic, or a plausible legacy
/// header)? Used to tell dropped files apart by content, not by name.
pub fn looks_like_checkpoint(head: &[u8]) -> bool {
    looks_like_export(head) || parse_header(head).is_ok()
}

/// A Q8_0 group must be positive and fit whole rows: it divides `dim` and
/// `hidden_dim` (the two row lengths of every matrix).
fn validate_group_size(gs: i32, c: &Config) -> Result<usize> {
    if gs <= 0 {
        return Err(Error::Checkpoint(format!("the Q8_0 group size is {gs}; it must be positive")));
    }
    let gs = gs as usize;
    for (name, n) in [("dim", c.dim), ("hidden_dim", c.hidden_dim)] {
        if n % gs != 0 {
            return Err(Error::Checkpoint(format!(
                "the Q8_0 group size {gs} does not divide {name} {n}: a group may not straddle a matrix row"
            )));
        }
    }
    Ok(gs)
}

fn validate_config(f: [i32; 7], legacy: bool) -> Result<Config> {
    const NAMES: [&str; 7] =
        ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
    let mut v = [0usize; 7];
    for i in 0..7 {
        let x = if legacy && i == 5 { f[i].unsigned_abs() as i64 } else { f[i] as i64 };
        if x <= 0 {
            return Err(Error::Checkpoint(format!(
                "{} is {} in the header; it must be positive (is this a llama2.c checkpoint?)",
                NAMES[i], f[i]
            )));
        }
        v[i] = x as usize;
    }
    let c = Config {
        dim: v[0],
        hidden_dim: v[1],
        n_layers: v[2],
        n_heads: v[3],
        n_kv_heads: v[4],
        vocab_size: v[5],
        seq_len: v[6],
    };
    if c.dim % c.n_heads != 0 {
        return Err(Error::Checkpoint(format!(
            "dim {} is not divisible by n_heads {}",
            c.dim, c.n_heads
        )));
    }
    if c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0 {
        return Err(Error::Checkpoint(format!(
            "n_heads {} is not a multiple of n_kv_heads {}",
            c.n_heads, c.n_kv_heads
        )));
    }
    if c.vocab_size < 3 {
        return Err(Error::Checkpoint(format!(
            "vocab_size is {}; llama2.c models need at least 3 tokens (<unk>, <s> = 1, </s> = 2)",
            c.vocab_size
        )));
    }
    if c.head_size() % 2 != 0 {
        return Err(Error::Checkpoint(format!(
            "head size {} (dim {} / n_heads {}) is odd; RoPE rotates pairs",
            c.head_size(),
            c.dim,
            c.n_heads
        )));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{expected_file_size, Checkpoint};

    fn legacy_header(f: [i32; 7]) -> Vec<u8> {
        f.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn stories260k_sizes() {
        let h = parse_header(&legacy_header([64, 172, 5, 8, 4, 512, 512])).unwrap();
        assert_eq!(h.config.kv_dim(), 32);
        assert_eq!(h.config.kv_mul(), 2);
        assert!(h.shared_classifier);
        assert_eq!(expected_file_size(&h).unwrap(), 1_056_540);
    }

    #[test]
    fn negative_vocab_means_separate_classifier() {
        let h = parse_header(&legacy_header([64, 172, 5, 8, 4, -512, 512])).unwrap();
        assert!(!h.shared_classifier);
        assert_eq!(h.config.vocab_size, 512);
        assert_eq!(expected_file_size(&h).unwrap(), 1_056_540 + 512 * 64 * 4);
    }

    #[test]
    fn absurd_dims_are_an_error_not_an_allocation() {
        let h = legacy_header([i32::MAX - 1, i32::MAX, i32::MAX, 2, 1, i32::MIN, i32::MAX]);
        assert!(Checkpoint::from_bytes(&h).is_err());
    }
}
