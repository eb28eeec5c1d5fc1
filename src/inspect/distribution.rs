//! The next-token distribution of a recorded position, as the sampler saw it.

use crate::sampler::Sampler;

/// One of the most likely next tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub token: u32,
    /// Probability after temperature (softmax of logits / temperature; at
    /// temperature 0, where the sampler takes the argmax, softmax of the logits).
    pub prob: f32,
    pub logit: f32,
    /// Could the sampler have picked it (inside the top-p nucleus; at
    /// temperature 0 only the argmax)?
    pub kept: bool,
}

/// The next-token distribution of one position, as the sampler saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// The `k` most likely tokens, most likely first (ties: lower id first).
    pub candidates: Vec<Candidate>,
    /// How many tokens the sampler could pick from (1 when greedy, the whole
    /// vocabulary without top-p).
    pub nucleus: usize,
    /// Their total probability.
    pub nucleus_mass: f32,
    /// The token that came next (when asked about): its probability and
    /// 1-based rank, also when it is not among the candidates.
    pub next: Option<(f32, usize)>,
}

/// The top `k` of `logits` as `sampler` sees them (its
/// [`Sampler::probabilities`] and [`Sampler::choices`]), so the
/// probabilities are the ones it drew from; `next`: the token that came.
pub fn distribution(sampler: &Sampler, logits: &[f32], k: usize, next: Option<u32>) -> Distribution {
    let n = logits.len();
    let mut probs = logits.to_vec();
    sampler.probabilities(&mut probs);
    let top = top_k(&probs, k);

    // which tokens the sampler could have picked
    let (choices, nucleus_mass) = sampler.choices(logits, &probs);
    let candidates = top
        .iter()
        .map(|&(prob, token)| Candidate {
            token,
            prob,
            logit: logits[token as usize],
            kept: choices.as_ref().map_or(true, |ids| ids.contains(&token)),
        })
        .collect();
    let nucleus = choices.map_or(n, |ids| ids.len());
    let next = next.and_then(|t| rank(&probs, t));
    Distribution { candidates, nucleus, nucleus_mass, next }
}

/// The `k` largest of `probs` as (probability, token), by probability
/// descending, then token id ascending: one pass with a small sorted list.
pub(crate) fn top_k(probs: &[f32], k: usize) -> Vec<(f32, u32)> {
    let k = k.min(probs.len());
    let mut top: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    for (i, &p) in probs.iter().enumerate() {
        if k == 0 || p.is_nan() || (top.len() == k && p <= top[k - 1].0) {
            continue; // NaN (a broken checkpoint) never enters: it would break the order
        }
        let at = top.partition_point(|c| c.0 >= p);
        top.insert(at, (p, i as u32));
        top.truncate(k);
    }
    top
}

/// Token `t`'s probability and 1-based rank in [`top_k`]'s order (more
/// likely ones, then equal ones with a lower id); `None` outside `probs`.
pub(crate) fn rank(probs: &[f32], t: u32) -> Option<(f32, usize)> {
    let p = *probs.get(t as usize)?;
    let above = probs.iter().enumerate().filter(|&(i, &q)| q > p || (q == p && i < t as usize)).count();
    Some((p, above + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::SamplerParams;

    fn distribution(temperature: f32, topp: f32, logits: &[f32], k: usize, next: Option<u32>) -> Distribution {
        let sampler = Sampler::new(logits.len(), SamplerParams { temperature, topp, seed: 1 }).unwrap();
        super::distribution(&sampler, logits, k, next)
    }

    #[test]
    fn distribution_is_the_samplers() {
        let logits = [1.0f32, 3.0, 2.0, 3.0, -1.0];
        // greedy: softmax at temperature 1, only the first argmax is kept
        let d = distribution(0.0, 0.9, &logits, 3, Some(3));
        assert_eq!(d.next.map(|(_, rank)| rank), Some(2)); // after its tie, token 1
        let ids: Vec<u32> = d.candidates.iter().map(|c| c.token).collect();
        assert_eq!(ids, vec![1, 3, 2]); // tie 1 / 3: lower id first
        assert_eq!(d.candidates.iter().map(|c| c.kept).collect::<Vec<_>>(), vec![true, false, false]);
        assert_eq!(d.nucleus, 1);
        let z: f32 = logits.iter().map(|l| (l - 3.0).exp()).sum();
        assert!((d.candidates[0].prob - 1.0 / z).abs() < 1e-6);
        assert_eq!(d.candidates[2].logit, 2.0);

        // temperature 2, top-p 0.5: probs ∝ exp(l / 2); nucleus = the two 3.0s
        let d = distribution(2.0, 0.5, &logits, 5, Some(4));
        assert_eq!(d.next, Some((d.candidates[4].prob, 5)));
        let z: f32 = logits.iter().map(|l| ((l - 3.0) / 2.0).exp()).sum();
        assert!((d.candidates[0].prob - 1.0 / z).abs() < 1e-6);
        assert_eq!(d.nucleus, 2);
        assert_eq!(d.candidates.iter().filter(|c| c.kept).count(), 2);
        assert!((d.nucleus_mass - 2.0 / z).abs() < 1e-6);
        let total: f32 = d.candidates.iter().map(|c| c.prob).sum();
        assert!((total - 1.0).abs() < 1e-5);

        // nothing asked, or NaN logits: no panic, no NaN in the list
        assert!(distribution(1.0, 0.9, &logits, 0, Some(1)).candidates.is_empty());
        let d = distribution(1.0, 0.9, &[f32::NAN, 1.0, 2.0], 3, None);
        assert!(d.candidates.iter().all(|c| !c.prob.is_nan()));

        // no top-p: everything could be drawn
        let d = distribution(1.0, 1.0, &logits, 2, None);
        assert_eq!(d.next, None);
        assert_eq!(d.nucleus, 5);
        assert!(d.candidates.iter().all(|c| c.kept));
        assert_eq!(d.candidates.len(), 2);
    }
}
