//! Drawing the next character: temperature, top-k, top-p and a seeded draw
//! over the characters the constraints allow ([`sample`]), and the streaming
//! top-k ([`TopK`]) that keeps the k best logits of a row without sorting it.

use super::END;
use crate::rng::Rng;

/// Samples one token from `cands` (token, logit): temperature, then top-k,
/// then top-p, then a draw from the seeded generator. Temperature 0 takes the
/// likeliest (lowest id on ties). On return `cands` holds the kept tokens with
/// their (unnormalised) probabilities, which the rhyme-group choice reads.
pub fn sample(
    cands: &mut Vec<(u32, f32)>,
    temperature: f32,
    top_k: usize,
    top_p: f32,
    rng: &mut Rng,
) -> u32 {
    debug_assert!(!cands.is_empty());
    // Highest logit first, ties by id, so the order (and the draw) depends only on the inputs.
    let desc = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if temperature == 0.0 {
        // Greedy; leave the winner as the only candidate, with probability 1.
        let best = cands
            .iter()
            .copied()
            .min_by(|a, b| desc(a, b))
            .map_or(END, |c| c.0);
        cands.clear();
        cands.push((best, 1.0));
        return best;
    }
    if top_k > 0 && top_k < cands.len() {
        top_k_in_place(cands, top_k);
    }
    // the order of `desc`, on plain u64 keys (several times faster than the closure)
    cands.sort_unstable_by_key(|&(id, l)| std::cmp::Reverse(rank_key(id, l)));
    // Softmax of logit / T, shifted by the maximum so exp never overflows.
    let max = cands[0].1;
    let mut total = 0f32;
    for c in cands.iter_mut() {
        c.1 = ((c.1 - max) / temperature).exp();
        total += c.1;
    }
    // Top-p: the shortest prefix (most likely first) whose mass reaches p.
    if top_p < 1.0 {
        let mut cum = 0f32;
        let keep = cands
            .iter()
            .position(|c| {
                cum += c.1;
                cum >= top_p * total
            })
            .map_or(cands.len(), |k| k + 1);
        cands.truncate(keep);
        total = cum.min(cands.iter().map(|c| c.1).sum());
    }
    // sample_mult (llm.c): walk the cumulative sum to the coin; rounding can
    // leave the coin past the last bucket, which then takes it.
    let coin = rng.uniform() * total;
    let mut cdf = 0f32;
    for c in cands.iter() {
        cdf += c.1;
        if coin < cdf {
            return c.0;
        }
    }
    cands[cands.len() - 1].0
}

/// Keeps the `k` highest-logit candidates (ties to the lower id), in any order.
/// The selection runs on plain u64 keys, which compare several times faster
/// than (id, f32) pairs through a closure.
pub(super) fn top_k_in_place(cands: &mut Vec<(u32, f32)>, k: usize) {
    if cands.len() > k {
        let mut keys: Vec<u64> = cands.iter().map(|&(id, l)| rank_key(id, l)).collect();
        let n = keys.len();
        keys.select_nth_unstable(n - k);
        cands.clear();
        cands.extend(keys[n - k..].iter().map(|&key| unrank_key(key)));
    }
}

/// The k best (token, logit) pairs of a stream, found exactly with little
/// work: keys go into a buffer of 2k; when it fills, the best k are kept and
/// the smallest of them becomes a floor that later keys must beat. After the
/// first few hundred tokens most of a 6,000-character vocabulary falls below
/// the floor and costs one comparison, where collecting every candidate and
/// selecting afterwards cost more than the rest of a step.
#[derive(Default)]
pub(super) struct TopK {
    /// How many to keep (`usize::MAX`: all).
    k: usize,
    keys: Vec<u64>,
    /// Keys at or below this cannot be among the best k.
    floor: u64,
}

impl TopK {
    pub(super) fn reset(&mut self, k: usize) {
        self.k = if k == 0 { usize::MAX } else { k };
        self.keys.clear();
        self.floor = 0;
    }

    // Called once per vocabulary entry per step: it must inline into the loops.
    #[inline(always)]
    pub(super) fn push(&mut self, id: u32, logit: f32) {
        self.push_if(id, logit, || true);
    }

    /// [`TopK::push`] when `ok()` holds, asked only of a key above the floor
    /// (most of a vocabulary is below it, and cheaper to turn away first).
    #[inline(always)]
    pub(super) fn push_if(&mut self, id: u32, logit: f32, ok: impl FnOnce() -> bool) {
        let key = rank_key(id, logit);
        if (key <= self.floor && self.floor != 0) || !ok() {
            return;
        }
        self.keys.push(key);
        if self.k != usize::MAX && self.keys.len() >= 2 * self.k + 64 {
            self.compact();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keeps the best k, and raises the floor to the smallest of them.
    fn compact(&mut self) {
        let n = self.keys.len();
        if self.k < n {
            self.keys.select_nth_unstable(n - self.k);
            self.floor = self.keys[n - self.k];
            self.keys.drain(..n - self.k);
        }
    }

    /// Writes the best k as (token, logit) pairs into `out`.
    pub(super) fn finish(&mut self, out: &mut Vec<(u32, f32)>) {
        self.compact();
        out.clear();
        out.extend(self.keys.iter().map(|&key| unrank_key(key)));
    }
}

/// A u64 that orders (token, logit) pairs like `desc` reversed: higher logit
/// is larger, and on equal logits the lower id is larger. The f32 bits are
/// made monotone (flip all bits of negatives, the sign bit of positives).
pub(super) fn rank_key(id: u32, logit: f32) -> u64 {
    let b = logit.to_bits();
    let mono = if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    };
    ((mono as u64) << 32) | (u32::MAX - id) as u64
}

pub(super) fn unrank_key(k: u64) -> (u32, f32) {
    let mono = (k >> 32) as u32;
    let b = if mono & 0x8000_0000 != 0 {
        mono & 0x7FFF_FFFF
    } else {
        !mono
    };
    (u32::MAX - k as u32, f32::from_bits(b))
}
