//! export.py's Q8_0 rule, to quantize an fp32 model on load.

use super::model::{Checkpoint, Config, Matrix};
use crate::error::{Error, Result};

/// The group size for quantizing an fp32 model on load, as export.py picks
/// it: the largest power of two up to 64 that divides `dim` and `hidden_dim`.
pub fn default_group_size(c: &Config) -> usize {
    let mut gs = 64;
    while c.dim % gs != 0 || c.hidden_dim % gs != 0 {
        gs /= 2;
    }
    gs
}

/// export.py's Q8_0 rule for one matrix: per group of `gs` values,
/// scale = max|w| / 127 and q = round(w / scale), ties to even (torch.round).
pub fn quantize_q80(w: &[f32], gs: usize) -> Result<(Vec<i8>, Vec<f32>)> {
    let (mut q, mut s) = (Vec::new(), Vec::new());
    let too_large = || Error::TooLarge { what: "the int8 copy of the weights", bytes: (w.len() + w.len() / gs * 4) as u64 };
    q.try_reserve_exact(w.len()).map_err(|_| too_large())?;
    s.try_reserve_exact(w.len() / gs).map_err(|_| too_large())?;
    for group in w.chunks_exact(gs) {
        let wmax = group.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = wmax / 127.0;
        s.push(scale);
        // an all-zero group divides 0 by 0: NaN, which becomes 0
        q.extend(group.iter().map(|v| (v / scale).round_ties_even() as i8));
    }
    Ok((q, s))
}

impl Checkpoint {
    /// Quantize an fp32 checkpoint to Q8_0 (export.py's rule and group size
    /// choice), one matrix at a time so the fp32 copy of each is freed as
    /// soon as it is converted. A Q8_0 checkpoint is returned as it is.
    ///
    /// Refused when the group size export.py's rule picks would not make the
    /// model smaller (dim or hidden_dim odd: group size 1 costs a 4-byte
    /// scale per int8 value), and when memory runs out (an error, with the
    /// fp32 model given up: quantizing replaces it matrix by matrix).
    pub fn quantize(mut self) -> Result<Checkpoint> {
        if self.weights.group_size().is_some() {
            return Ok(self);
        }
        let c = self.header.config;
        let gs = default_group_size(&c);
        if gs < 2 {
            return Err(Error::Checkpoint(format!(
                "int8 needs a group size of at least 2, but the largest power of two dividing dim {} and hidden_dim {} is {gs}: \
                 int8 values with a 4-byte scale each would be larger than fp32; run this model as fp32",
                c.dim, c.hidden_dim
            )));
        }
        for m in self.weights.matrices_mut() {
            if let Matrix::F32(w) = m {
                let (q, s) = quantize_q80(w, gs)?;
                *m = Matrix::Q8 { q, s, group_size: gs };
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_q80_rule_rounds_half_to_even() {
        // max 127 -> scale 1: 2.5 -> 2, 3.5 -> 4, -0.5 -> -0 (ties to even, as torch.round)
        let (q, s) = quantize_q80(&[127.0, 2.5, 3.5, -0.5], 4).unwrap();
        assert_eq!((q, s), (vec![127, 2, 4, 0], vec![1.0]));
    }

    #[test]
    fn group_size_for_quantize_on_load() {
        let c = |dim, hidden_dim| Config { dim, hidden_dim, n_layers: 1, n_heads: 1, n_kv_heads: 1, vocab_size: 1, seq_len: 1 };
        assert_eq!(default_group_size(&c(64, 172)), 4); // stories260K
        assert_eq!(default_group_size(&c(288, 768)), 32); // stories15M
        assert_eq!(default_group_size(&c(768, 2048)), 64); // stories110M
    }

}
