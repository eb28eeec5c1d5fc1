//! The Sampler: logits -> next token id, exactly as run.c samples.
//!
//! temperature 0 is greedy argmax; otherwise the logits are divided by the
//! temperature, softmaxed, and one coin from run.c's xorshift64* generator
//! picks a token: from the whole distribution when `topp` is <= 0 or >= 1,
//! else from the smallest set of most likely tokens whose mass exceeds topp.

use crate::error::{Error, Result};
use crate::kernels::Kernels;

/// run.c's `random_u32`: xorshift64* (https://en.wikipedia.org/wiki/Xorshift#xorshift*).
pub fn random_u32(state: &mut u64) -> u32 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
}

/// run.c's `random_f32`: a float in [0, 1) from the top 24 bits.
pub fn random_f32(state: &mut u64) -> f32 {
    (random_u32(state) >> 8) as f32 / 16_777_216.0
}

/// A token id with its probability, for the top-p sort.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProbIndex {
    pub prob: f32,
    pub index: u32,
}

/// Generation parameters after run.c's clamping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerParams {
    pub temperature: f32,
    pub topp: f32,
    /// The seed actually used (never 0: 0 asks for a random one).
    pub seed: u64,
}

impl SamplerParams {
    /// Clamp as run.c's `main` does: a negative temperature is 0 (greedy),
    /// `topp` outside [0, 1] is 0.9. A seed of 0 draws a random seed.
    /// NaN is not something run.c can be given on its command line; we refuse it.
    pub fn new(temperature: f64, topp: f64, seed: u64) -> Result<SamplerParams> {
        if temperature.is_nan() {
            return Err(Error::Argument("temperature is NaN; use 0 for greedy or e.g. 1.0".into()));
        }
        if topp.is_nan() {
            return Err(Error::Argument("topp is NaN; use a value in [0, 1], e.g. 0.9".into()));
        }
        let temperature = if temperature < 0.0 { 0.0 } else { temperature as f32 };
        let topp = if !(0.0..=1.0).contains(&topp) { 0.9 } else { topp as f32 };
        let seed = if seed == 0 { random_seed() } else { seed };
        Ok(SamplerParams { temperature, topp, seed })
    }
}

/// A random non-zero seed from the platform (crypto.getRandomValues in the
/// browser). run.c uses the clock; any non-zero value is as good.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    loop {
        if getrandom::getrandom(&mut b).is_err() {
            // no entropy source: fall back to a fixed, documented seed
            return 0x5EED;
        }
        // keep it within 2^53 so JavaScript numbers can hold it exactly
        let s = u64::from_le_bytes(b) & ((1 << 53) - 1);
        if s != 0 {
            return s;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Sampler {
    vocab_size: usize,
    probindex: Vec<ProbIndex>, // (vocab_size,) buffer used in top-p sampling
    /// The run's temperature, top-p and seed (the seed as given, not the rng's state).
    params: SamplerParams,
    rng_state: u64,
    /// The softmax of the model's kernels (run.c's expf for the scalar reference).
    kernels: Kernels,
}

impl Sampler {
    pub fn new(vocab_size: usize, params: SamplerParams) -> Result<Sampler> {
        let mut probindex = Vec::new();
        probindex
            .try_reserve_exact(vocab_size)
            .map_err(|_| Error::TooLarge { what: "the sampler's buffer", bytes: vocab_size as u64 * 8 })?;
        probindex.resize(vocab_size, ProbIndex::default());
        Ok(Sampler { vocab_size, probindex, params, rng_state: params.seed, kernels: Kernels::default() })
    }

    /// Restart with new parameters, keeping the buffer.
    pub fn reset(&mut self, params: SamplerParams) {
        self.params = params;
        self.rng_state = params.seed;
    }

    /// The parameters of the current (or last) run, seed included.
    pub fn params(&self) -> SamplerParams {
        self.params
    }

    /// The random generator's state: what the next draw starts from.
    pub fn rng_state(&self) -> u64 {
        self.rng_state
    }

    /// Put the random generator back to a state `rng_state` gave (an undone
    /// step's draws are then drawn again, the same).
    pub fn set_rng_state(&mut self, state: u64) {
        self.rng_state = state;
    }

    /// Softmax with these kernels from now on.
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// Does `sample` take the argmax of these logits instead of drawing?
    fn greedy(&self, logits: &[f32]) -> bool {
        self.params.temperature == 0.0 || underflows(logits, self.params.temperature)
    }

    /// Turn logits into the probabilities `sample` draws from, in place:
    /// softmax(logits / temperature). When greedy there is no draw; this is
    /// then the softmax at temperature 1, for display.
    pub fn probabilities(&self, logits: &mut [f32]) {
        if !self.greedy(logits) {
            for l in logits.iter_mut() {
                *l /= self.params.temperature;
            }
        }
        self.kernels.softmax(logits);
    }

    /// Sample the next token from the logits (which are overwritten with
    /// probabilities, as in run.c).
    pub fn sample(&mut self, logits: &mut [f32]) -> u32 {
        let logits = &mut logits[..self.vocab_size];
        if self.greedy(logits) {
            return sample_argmax(logits);
        }
        self.probabilities(logits);
        let coin = random_f32(&mut self.rng_state);
        let topp = self.params.topp;
        if topp <= 0.0 || topp >= 1.0 {
            sample_mult(logits, coin)
        } else {
            sample_topp(logits, topp, &mut self.probindex, coin)
        }
    }

    /// The tokens `sample` could return, given the `logits` and the
    /// `probs` that [`Sampler::probabilities`] made of them: the argmax
    /// when greedy, the top-p nucleus, or (`None`) any token without top-p;
    /// with their total probability.
    pub fn choices(&self, logits: &[f32], probs: &[f32]) -> (Option<Vec<u32>>, f32) {
        let topp = self.params.topp;
        if self.greedy(logits) {
            let best = sample_argmax(logits);
            (Some(vec![best]), probs.get(best as usize).copied().unwrap_or(0.0))
        } else if topp <= 0.0 || topp >= 1.0 {
            (None, probs.iter().sum())
        } else {
            let mut buf = vec![ProbIndex::default(); probs.len()];
            match nucleus(probs, topp, &mut buf) {
                Some((last, mass)) => (Some(buf[..=last].iter().map(|p| p.index).collect()), mass),
                None => (Some(vec![sample_argmax(probs)]), 0.0),
            }
        }
    }
}

/// Is the temperature so small that logits / temperature overflows f32
/// (e.g. 1e-38 with logits near 10)? run.c would then softmax infinities
/// into NaN and print <unk> forever; the limit of sampling as the
/// temperature goes to 0 is the argmax, so that is what such runs get.
fn underflows(logits: &[f32], temperature: f32) -> bool {
    let max_abs = logits.iter().fold(0.0f32, |m, l| m.max(l.abs()));
    !(max_abs / temperature).is_finite()
}

/// Index of the largest value (the first one on ties).
pub fn sample_argmax(probabilities: &[f32]) -> u32 {
    let mut max_i = 0;
    let mut max_p = probabilities[0];
    for (i, &p) in probabilities.iter().enumerate().skip(1) {
        if p > max_p {
            max_i = i;
            max_p = p;
        }
    }
    max_i as u32
}

/// Multinomial sample: the first index whose CDF exceeds the coin in [0, 1).
pub fn sample_mult(probabilities: &[f32], coin: f32) -> u32 {
    let mut cdf = 0.0f32;
    for (i, &p) in probabilities.iter().enumerate() {
        cdf += p;
        if coin < cdf {
            return i as u32;
        }
    }
    (probabilities.len() - 1) as u32 // in case of rounding errors
}

/// Top-p ("nucleus") sampling, as run.c: sample within the nucleus that
/// [`nucleus`] finds.
fn sample_topp(probabilities: &[f32], topp: f32, probindex: &mut [ProbIndex], coin: f32) -> u32 {
    let Some((last_idx, cumulative_prob)) = nucleus(probabilities, topp, probindex) else {
        // only possible with NaN probabilities (a broken checkpoint) or a
        // one-token vocabulary; run.c would read past its buffer here
        return sample_argmax(probabilities);
    };
    // sample from the truncated list
    let r = coin * cumulative_prob;
    let mut cdf = 0.0f32;
    for pi in &probindex[..=last_idx] {
        cdf += pi.prob;
        if r < cdf {
            return pi.index;
        }
    }
    probindex[last_idx].index // in case of rounding errors
}

/// run.c's top-p nucleus: drop tokens below (1 - topp) / (n - 1) first (they
/// cannot be part of it), sort the rest by descending probability into
/// `probindex`, and cut where the cumulative mass exceeds topp. Returns the
/// index of the nucleus's last entry and its mass; `None` when nothing is
/// above the cutoff.
fn nucleus(probabilities: &[f32], topp: f32, probindex: &mut [ProbIndex]) -> Option<(usize, f32)> {
    let n = probabilities.len();
    let cutoff = (1.0 - topp) / (n - 1) as f32;
    let mut n0 = 0;
    for (i, &p) in probabilities.iter().enumerate() {
        if p >= cutoff {
            probindex[n0] = ProbIndex { prob: p, index: i as u32 };
            n0 += 1;
        }
    }
    if n0 == 0 {
        return None;
    }
    let kept = &mut probindex[..n0];
    // descending; stable, so equal probabilities keep index order
    kept.sort_by(|a, b| b.prob.partial_cmp(&a.prob).unwrap_or(std::cmp::Ordering::Equal));

    // truncate the list where cumulative probability exceeds topp
    let mut cumulative_prob = 0.0f32;
    let mut last_idx = n0 - 1; // in case of rounding errors consider all elements
    for (i, pi) in kept.iter().enumerate() {
        cumulative_prob += pi.prob;
        if cumulative_prob > topp {
            last_idx = i;
            break; // we've exceeded topp by including last_idx
        }
    }
    Some((last_idx, cumulative_prob))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_matches_run_c() {
        // run.c's random_u32 from state 42, three times (values from a
        // separate 64-bit implementation of the same recurrence)
        let mut s = 42u64;
        let got: Vec<u32> = (0..3).map(|_| random_u32(&mut s)).collect();
        assert_eq!(got, vec![1456360119, 3359763283, 3393612768]);
        assert_eq!(s, 142435135655313518);
        // random_f32 keeps the top 24 bits: (1456360119 >> 8) / 2^24
        let mut s = 42u64;
        assert_eq!(random_f32(&mut s), (1456360119u32 >> 8) as f32 / 16777216.0);
    }

    #[test]
    fn clamps_like_run_c() {
        let p = SamplerParams::new(-1.0, 1.5, 7).unwrap();
        assert_eq!((p.temperature, p.topp, p.seed), (0.0, 0.9, 7));
        let p = SamplerParams::new(0.8, -0.1, 7).unwrap();
        assert_eq!(p.topp, 0.9);
        assert_ne!(SamplerParams::new(1.0, 0.9, 0).unwrap().seed, 0);
        assert!(SamplerParams::new(f64::NAN, 0.9, 1).is_err());
    }

    #[test]
    fn argmax_first_on_ties_and_mult_cdf() {
        assert_eq!(sample_argmax(&[0.1, 0.5, 0.5, 0.2]), 1);
        let probs = [0.25, 0.25, 0.5];
        assert_eq!(sample_mult(&probs, 0.0), 0);
        assert_eq!(sample_mult(&probs, 0.3), 1);
        assert_eq!(sample_mult(&probs, 0.99), 2);
    }

    #[test]
    fn topp_keeps_the_nucleus() {
        let probs = [0.05, 0.6, 0.05, 0.3];
        let mut buf = vec![ProbIndex::default(); 4];
        // topp 0.8: sorted 0.6 (idx 1), 0.3 (idx 3) -> cumulative 0.9 > 0.8 at i=1
        // r = coin * 0.9; coin 0.5 -> r 0.45 < 0.6 -> idx 1; coin 0.9 -> 0.81 -> idx 3
        assert_eq!(sample_topp(&probs, 0.8, &mut buf, 0.5), 1);
        assert_eq!(sample_topp(&probs, 0.8, &mut buf, 0.9), 3);
        // NaN probabilities (a broken checkpoint) must not panic
        let nan = [f32::NAN; 4];
        assert_eq!(sample_topp(&nan, 0.8, &mut buf, 0.5), 0);
        let mut one = vec![ProbIndex::default(); 1];
        assert_eq!(sample_topp(&[1.0], 0.8, &mut one, 0.5), 0);
    }
}
