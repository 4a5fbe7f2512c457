//! An interpolated, modified Kneser–Ney character n-gram language model: the
//! floor that `shiren eval` compares a neural model against.
//!
//! It sees the poems exactly as the neural model does: token ids from the
//! same [`Vocab`](crate::vocab::Vocab), each poem wrapped as `BEGIN c1 … cn
//! END`, and it predicts `c1 … cn END` (punctuation included), so its
//! perplexity and the network's are per character on the same events. At the
//! start of a poem the history is shorter than `order - 1` (no padding with
//! extra BEGINs), as in SRILM and KenLM.
//!
//! The estimate is Chen & Goodman's (1998, "An empirical study of smoothing
//! techniques for language modeling", §3 and §4.1.6):
//!
//! ```text
//! p_k(w | h) = ( max(a(h w) − D_k(a(h w)), 0) + γ(h) · p_{k−1}(w | h') ) / Σ_v a(h v)
//! γ(h)       = D_k(1)·N1(h •) + D_k(2)·N2(h •) + D_k(3+)·N3+(h •)
//! p_0(w)     = 1 / |predictable vocabulary|
//! ```
//!
//! where `h'` drops the oldest character of `h`, `a` is the raw count at the
//! highest order and for n-grams that start with BEGIN (nothing can precede
//! them), and otherwise the number of distinct characters seen before the
//! n-gram (the continuation count); `D_k(r)` comes from the count-of-counts
//! `n_r` of those `a` at order `k`: `Y = n1/(n1 + 2 n2)`, `D(1) = 1 − 2Y
//! n2/n1`, `D(2) = 2 − 3Y n3/n2`, `D(3+) = 3 − 4Y n4/n3`. These are KenLM's
//! choices too. The predictable vocabulary is every id but PAD and BEGIN.
//!
//! Storage is a sorted trie rather than hash maps: the n-grams of each order
//! are sorted by (parent node, character), so node ids are array indices, the
//! children of a node are one contiguous range found by binary search, and the
//! whole 5-gram model of the Tang set (≈ 10M nodes) fits in a few hundred MB
//! and builds in seconds. It is not a general toolkit: no pruning, no ARPA
//! files, no sentence-level scoring beyond the poem.

use rayon::prelude::*;
use thiserror::Error;

/// Ids with a fixed meaning, as pinned for `Vocab` (PAD 0, BEGIN 1, END 2, UNK 3).
const PAD: u32 = 0;
const BEGIN: u32 = 1;
const END: u32 = 2;
const UNK: u32 = 3;

#[derive(Debug, Error, PartialEq)]
pub enum NgramError {
    #[error("n-gram order must be between 1 and 8, got {0}")]
    BadOrder(usize),
    #[error("poem {seq}: token id {id} is outside the vocabulary of {vocab} (encode the text with the model's vocabulary)")]
    BadId { seq: usize, id: u32, vocab: usize },
    #[error("poem {seq}: token id {id} is PAD, BEGIN or END inside a poem (pass poems without boundary tokens)")]
    Boundary { seq: usize, id: u32 },
    #[error("the vocabulary has {0} ids; it needs at least PAD, BEGIN, END and one character")]
    TinyVocab(usize),
    #[error("no poems to train on")]
    Empty,
}

/// The three discounts of one order: for counts 1, 2, and 3 or more.
pub type Discounts = [f64; 3];

/// What a tiny corpus gets when a count-of-counts is zero or the estimate
/// leaves (0, r]: the middle of each range, which keeps every probability
/// positive and the distribution summing to one.
pub const FALLBACK_DISCOUNTS: Discounts = [0.5, 1.0, 1.5];

/// A trained model. Nodes: 0 is the root (empty history); nodes of order `k`
/// occupy `off[k]..off[k + 1]`, sorted by (parent, token).
#[derive(Debug, Clone)]
pub struct Ngram {
    order: usize,
    vocab_size: usize,
    /// `off[k]` is the first node of order `k`, for k = 0..=order+1.
    off: Vec<usize>,
    /// The last character of each node's n-gram.
    token: Vec<u32>,
    /// `a` above: the (adjusted) count of each node as an event.
    count: Vec<u32>,
    /// For nodes of order < `order`: their children are `child[n]..child[n + 1]`.
    child: Vec<u32>,
    /// For nodes of order < `order`: Σ a over children, and γ's numerator.
    ctx_total: Vec<u32>,
    ctx_gamma: Vec<f64>,
    /// `disc[k - 1]` holds the discounts of order k.
    disc: Vec<Discounts>,
}

impl Ngram {
    /// Trains on `seqs` (encoded poems without BEGIN/END) with discounts
    /// estimated from the counts.
    pub fn train(order: usize, seqs: &[Vec<u32>], vocab_size: usize) -> Result<Ngram, NgramError> {
        Ngram::train_with(order, seqs, vocab_size, None)
    }

    /// As [`Ngram::train`], with fixed discounts per order (for tests and
    /// ablations) when `fixed` is given; `fixed[k - 1]` is order k's.
    pub fn train_with(
        order: usize,
        seqs: &[Vec<u32>],
        vocab_size: usize,
        fixed: Option<&[Discounts]>,
    ) -> Result<Ngram, NgramError> {
        if !(1..=8).contains(&order) {
            return Err(NgramError::BadOrder(order));
        }
        if vocab_size < 4 {
            return Err(NgramError::TinyVocab(vocab_size));
        }
        if seqs.is_empty() {
            return Err(NgramError::Empty);
        }
        for (s, seq) in seqs.iter().enumerate() {
            for &id in seq {
                if id as usize >= vocab_size {
                    return Err(NgramError::BadId {
                        seq: s,
                        id,
                        vocab: vocab_size,
                    });
                }
                if id == PAD || id == BEGIN || id == END {
                    return Err(NgramError::Boundary { seq: s, id });
                }
            }
        }

        // The stream of all poems, each as BEGIN c1 … cn END, with each
        // position's offset inside its poem (an n-gram of order k ends at i
        // when pos[i] >= k − 1; position 0, BEGIN, is context, never an event).
        let n_tok: usize = seqs.iter().map(|s| s.len() + 2).sum();
        let mut stream = Vec::with_capacity(n_tok);
        let mut pos = Vec::with_capacity(n_tok);
        for seq in seqs {
            stream.push(BEGIN);
            stream.extend_from_slice(seq);
            stream.push(END);
            pos.extend(0..seq.len() as u32 + 2);
        }

        let mut off = vec![0usize, 1];
        let mut token = vec![0u32];
        let mut count = vec![0u32];
        let mut parent = vec![0u32];
        let mut begins = vec![false];
        // Node of the n-gram of the previous order ending at each position
        // (order 0: the root everywhere).
        let mut prev = vec![0u32; n_tok];
        let mut cur = vec![u32::MAX; n_tok];
        for k in 1..=order {
            // (parent node, token) of every n-gram of order k in the stream.
            let mut keys: Vec<(u64, u32)> = (0..n_tok)
                .into_par_iter()
                .filter(|&i| pos[i] as usize + 1 >= k)
                .map(|i| {
                    let p = if k == 1 { 0 } else { prev[i - 1] };
                    (((p as u64) << 32) | stream[i] as u64, i as u32)
                })
                .collect();
            if keys.is_empty() {
                break;
            }
            keys.par_sort_unstable();
            let first = token.len();
            let mut last_key = u64::MAX;
            for &(key, i) in &keys {
                if key != last_key {
                    last_key = key;
                    let p = (key >> 32) as u32;
                    let t = key as u32;
                    token.push(t);
                    count.push(0);
                    parent.push(p);
                    begins.push(if k == 1 {
                        t == BEGIN
                    } else {
                        begins[p as usize]
                    });
                }
                let n = token.len() - 1;
                if pos[i as usize] >= 1 {
                    count[n] += 1;
                }
                cur[i as usize] = n as u32;
            }
            off.push(token.len());

            // Continuation counts of order k − 1: each distinct n-gram of
            // order k is one distinct left extension of its suffix (the
            // (k − 1)-gram ending at the same position).
            if k >= 2 {
                for n in off[k - 1]..off[k] {
                    if !begins[n] {
                        count[n] = 0;
                    }
                }
                let mut seen = vec![false; token.len() - first];
                for &(_, i) in &keys {
                    let n = cur[i as usize] as usize;
                    if !seen[n - first] {
                        seen[n - first] = true;
                        let s = prev[i as usize] as usize;
                        if !begins[s] {
                            count[s] += 1;
                        }
                    }
                }
            }
            std::mem::swap(&mut prev, &mut cur);
        }
        drop((stream, pos, prev, cur));
        // Orders longer than every poem have no n-grams.
        while off.len() < order + 2 {
            off.push(token.len());
        }

        // Discounts per order from count-of-counts of the (adjusted) counts.
        let mut disc = Vec::with_capacity(order);
        for k in 1..=order {
            if let Some(fixed) = fixed {
                disc.push(fixed[(k - 1).min(fixed.len() - 1)]);
                continue;
            }
            let mut nr = [0u64; 5];
            for &c in &count[off[k]..off[k + 1]] {
                if (1..=4).contains(&c) {
                    nr[c as usize] += 1;
                }
            }
            disc.push(estimate_discounts(nr[1], nr[2], nr[3], nr[4]));
        }

        // Child ranges: the nodes are sorted by (order, parent, token), and
        // parents by id, so node n's children follow those of node n − 1.
        let n_ctx = off[order];
        let mut child = vec![0u32; n_ctx + 1];
        for &p in &parent[1..] {
            child[p as usize + 1] += 1;
        }
        child[0] = 1;
        for n in 1..=n_ctx {
            child[n] += child[n - 1];
        }
        let mut ctx_total = vec![0u32; n_ctx];
        let mut ctx_gamma = vec![0f64; n_ctx];
        for k in 1..=order {
            let d = disc[k - 1];
            for n in off[k]..off[k + 1] {
                let c = count[n];
                if c > 0 {
                    let p = parent[n] as usize;
                    ctx_total[p] += c;
                    ctx_gamma[p] += d[(c.min(3) - 1) as usize];
                }
            }
        }

        Ok(Ngram {
            order,
            vocab_size,
            off,
            token,
            count,
            child,
            ctx_total,
            ctx_gamma,
            disc,
        })
    }

    pub fn order(&self) -> usize {
        self.order
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The discounts (counts 1, 2, 3+) used at order `k` (1-based).
    pub fn discounts(&self, k: usize) -> Discounts {
        self.disc[k - 1]
    }

    /// Number of distinct n-grams stored at order `k`.
    pub fn num_ngrams(&self, k: usize) -> usize {
        self.off[k + 1] - self.off[k]
    }

    /// The child of `node` for `tok`, if that n-gram was seen.
    fn find_child(&self, node: usize, tok: u32) -> Option<usize> {
        if node >= self.child.len() - 1 {
            return None;
        }
        let (lo, hi) = (self.child[node] as usize, self.child[node + 1] as usize);
        self.token[lo..hi].binary_search(&tok).ok().map(|j| lo + j)
    }

    /// Context nodes for the suffixes of `history` of length 0, 1, … while
    /// they were seen with a following character; `history` is everything
    /// before the predicted position, BEGIN included.
    fn contexts(&self, history: &[u32]) -> Vec<usize> {
        let m = history.len().min(self.order - 1);
        let mut ctx = Vec::with_capacity(m + 1);
        'len: for j in 0..=m {
            let mut node = 0usize;
            for &t in &history[history.len() - j..] {
                match self.find_child(node, t) {
                    Some(n) => node = n,
                    None => break 'len,
                }
            }
            if self.ctx_total[node] == 0 {
                break;
            }
            ctx.push(node);
        }
        ctx
    }

    fn prob_in(&self, ctx: &[usize], w: u32) -> f64 {
        let mut p = 1.0 / (self.vocab_size - 2) as f64;
        for (j, &h) in ctx.iter().enumerate() {
            let a = self.find_child(h, w).map_or(0, |n| self.count[n]);
            let d = if a == 0 {
                0.0
            } else {
                self.disc[j][(a.min(3) - 1) as usize]
            };
            let total = self.ctx_total[h] as f64;
            p = ((a as f64 - d).max(0.0) + self.ctx_gamma[h] * p) / total;
        }
        p
    }

    /// p(w | history). `history` holds the ids before `w`, starting with BEGIN
    /// at the start of a poem; only the last `order − 1` are used. PAD and
    /// BEGIN have probability zero.
    pub fn prob(&self, history: &[u32], w: u32) -> f64 {
        if w == PAD || w == BEGIN || w as usize >= self.vocab_size {
            return 0.0;
        }
        self.prob_in(&self.contexts(history), w)
    }

    /// p(· | history) over the whole vocabulary (zeros at PAD and BEGIN).
    pub fn distribution(&self, history: &[u32]) -> Vec<f64> {
        let ctx = self.contexts(history);
        (0..self.vocab_size as u32)
            .map(|w| {
                if w == PAD || w == BEGIN {
                    0.0
                } else {
                    self.prob_in(&ctx, w)
                }
            })
            .collect()
    }

    /// Negative log-likelihood (nats) of one poem `c1 … cn END` after BEGIN,
    /// and its number of predicted tokens (n + 1).
    pub fn seq_nll(&self, seq: &[u32]) -> (f64, usize) {
        let mut s = Vec::with_capacity(seq.len() + 2);
        s.push(BEGIN);
        s.extend(seq.iter().map(|&id| {
            if (id as usize) < self.vocab_size {
                id
            } else {
                UNK
            }
        }));
        s.push(END);
        let nll = (1..s.len()).map(|i| -self.prob(&s[..i], s[i]).ln()).sum();
        (nll, s.len() - 1)
    }

    /// Summed negative log-likelihood (nats) and token count over poems, the
    /// same pair [`Model::loss`](crate::model::Model::loss) returns.
    pub fn loss(&self, seqs: &[Vec<u32>]) -> (f64, f64) {
        seqs.par_iter()
            .map(|s| {
                let (nll, n) = self.seq_nll(s);
                (nll, n as f64)
            })
            .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// exp(mean NLL per predicted character) over poems.
    pub fn perplexity(&self, seqs: &[Vec<u32>]) -> f64 {
        let (nll, n) = self.loss(seqs);
        (nll / n.max(1.0)).exp()
    }
}

/// Chen & Goodman's modified-KN discounts from the count-of-counts n1..n4,
/// each falling back to [`FALLBACK_DISCOUNTS`] when undefined or outside
/// (0, r): KenLM accepts D(r) = r, but then an n-gram seen r times gets no
/// more probability than an unseen one, which a tiny corpus easily triggers.
pub fn estimate_discounts(n1: u64, n2: u64, n3: u64, n4: u64) -> Discounts {
    let (n1, n2, n3, n4) = (n1 as f64, n2 as f64, n3 as f64, n4 as f64);
    let y = n1 / (n1 + 2.0 * n2);
    let est = [
        1.0 - 2.0 * y * n2 / n1,
        2.0 - 3.0 * y * n3 / n2,
        3.0 - 4.0 * y * n4 / n3,
    ];
    let mut d = FALLBACK_DISCOUNTS;
    for r in 0..3 {
        if est[r].is_finite() && est[r] > 0.0 && est[r] < (r + 1) as f64 {
            d[r] = est[r];
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    // Toy vocabulary: 0 PAD, 1 BEGIN, 2 END, 3 UNK, 4 a, 5 b, 6 c, 7 d.
    const V: usize = 8;
    const A: u32 = 4;
    const B: u32 = 5;
    const C: u32 = 6;
    const D: u32 = 7;

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() <= 1e-12 * (1.0 + y.abs())
    }

    #[test]
    fn bigram_by_hand() {
        // Poems "ab" and "ac", i.e. streams BEGIN a b END and BEGIN a c END,
        // bigram model, discounts D(1) = 0.5, D(2) = 1.0, D(3+) = 1.5.
        // Predictable ids: 2..=7 (6 of them), so p0 = 1/6.
        //
        // Bigram counts (raw, highest order): BEGIN a 2; a b 1; a c 1; b END 1; c END 1.
        // Unigram continuation counts (distinct predecessors): a {BEGIN} 1,
        // b {a} 1, c {a} 1, END {b, c} 2; Σ = 5;
        // γ(root) = 0.5·3 (count 1: a, b, c) + 1.0·1 (count 2: END) = 2.5.
        //   p1(a) = p1(b) = (1 − 0.5 + 2.5/6)/5 = (11/12)/5 = 11/60
        //   p1(END) = (2 − 1.0 + 2.5/6)/5 = (17/12)/5 = 17/60
        //   p1(d) = p1(UNK) = (2.5/6)/5 = 1/12          (sum: 33/60 + 17/60 + 10/60 = 1)
        // Context a: children b 1, c 1; Σ = 2, γ(a) = 0.5 + 0.5 = 1.
        //   p(b | a) = (1 − 0.5 + 1·11/60)/2 = (41/60)/2 = 41/120
        //   p(a | a) = (0 + 1·11/60)/2 = 11/120
        //   p(END | a) = (17/60)/2 = 17/120
        // Context BEGIN: child a 2; Σ = 2, γ = 1.0.
        //   p(a | BEGIN) = (2 − 1.0 + 1.0·11/60)/2 = (71/60)/2 = 71/120
        let seqs = vec![vec![A, B], vec![A, C]];
        let lm = Ngram::train_with(2, &seqs, V, Some(&[[0.5, 1.0, 1.5]])).unwrap();
        // The unigram level, reached from a context never seen (d).
        assert!(close(lm.prob(&[D], A), 11.0 / 60.0));
        assert!(close(lm.prob(&[D], END), 17.0 / 60.0));
        assert!(close(lm.prob(&[D], D), 1.0 / 12.0));
        assert!(close(lm.prob(&[D], UNK), 1.0 / 12.0));
        assert!(close(lm.prob(&[BEGIN, A], B), 41.0 / 120.0));
        assert!(close(lm.prob(&[BEGIN, A], A), 11.0 / 120.0));
        assert!(close(lm.prob(&[BEGIN, A], END), 17.0 / 120.0));
        assert!(close(lm.prob(&[BEGIN], A), 71.0 / 120.0));
        assert_eq!(lm.prob(&[BEGIN], BEGIN), 0.0);
        assert_eq!(lm.prob(&[BEGIN], PAD), 0.0);
    }

    #[test]
    fn trigram_by_hand_with_begin_raw_counts() {
        // Poems "ab", "ab", "cb": BEGIN a b END ×2, BEGIN c b END. Trigram,
        // discounts 0.5 at every order; 6 predictable ids, p0 = 1/6.
        //
        // Order 2, continuation counts except those starting with BEGIN (raw):
        //   BEGIN a 2 (raw), BEGIN c 1 (raw), a b {BEGIN} 1, c b {BEGIN} 1, b END {a, c} 2.
        // Order 1 continuation counts: a {BEGIN} 1, c {BEGIN} 1, b {a, c} 2, END {b} 1; Σ 5;
        //   γ(root) = 0.5·4 = 2.
        //   p1(b) = (2 − 0.5 + 2/6)/5 = (11/6)/5 = 11/30
        // Context b (order-2 children): END 2; Σ 2, γ = 0.5.
        //   p2(b | b) = (0 + 0.5·11/30)/2 = 11/120
        // Context a: child b 1; Σ 1, γ 0.5.
        //   p2(b | a) = (1 − 0.5 + 0.5·11/30)/1 = 0.5 + 11/60 = 41/60
        // Context BEGIN a (trigram, raw): child b 2; Σ 2, γ = 0.5.
        //   p3(b | BEGIN a) = (2 − 0.5 + 0.5·41/60)/2 = (1.5 + 41/120)/2 = 221/240
        let seqs = vec![vec![A, B], vec![A, B], vec![C, B]];
        let lm = Ngram::train_with(3, &seqs, V, Some(&[[0.5, 0.5, 0.5]])).unwrap();
        assert!(close(lm.prob(&[D, B], B), 11.0 / 120.0));
        assert!(close(lm.prob(&[D, A], B), 41.0 / 60.0));
        assert!(close(lm.prob(&[BEGIN, A], B), 221.0 / 240.0));
        assert_eq!(lm.num_ngrams(1), 5); // BEGIN (context only), a, b, c, END
        assert_eq!(lm.num_ngrams(2), 5);
        assert_eq!(lm.num_ngrams(3), 4); // BEGIN a b, BEGIN c b, a b END, c b END
    }

    #[test]
    fn discounts_from_count_of_counts() {
        // n1 = 10, n2 = 4, n3 = 2, n4 = 1: Y = 10/18 = 5/9;
        // D1 = 1 − 2·(5/9)·(4/10) = 1 − 4/9 = 5/9
        // D2 = 2 − 3·(5/9)·(2/4) = 2 − 5/6 = 7/6
        // D3 = 3 − 4·(5/9)·(1/2) = 3 − 10/9 = 17/9
        let d = estimate_discounts(10, 4, 2, 1);
        assert!(
            close(d[0], 5.0 / 9.0) && close(d[1], 7.0 / 6.0) && close(d[2], 17.0 / 9.0),
            "{d:?}"
        );
        // No count-of-count at 3 or 4: D2 would be 2 (no better than unseen), D3 undefined.
        let d = estimate_discounts(10, 4, 0, 0);
        assert!(
            close(d[0], 5.0 / 9.0)
                && d[1] == FALLBACK_DISCOUNTS[1]
                && d[2] == FALLBACK_DISCOUNTS[2],
            "{d:?}"
        );
    }

    /// A corpus with enough structure for every count-of-count to be non-zero.
    fn toy_corpus() -> Vec<Vec<u32>> {
        let mut rng = crate::rng::Rng::new(7);
        (0..200)
            .map(|_| {
                let n = 1 + rng.below(9);
                let mut s = vec![A + rng.below(4) as u32];
                for _ in 1..n {
                    // Mostly a cycle a→b→c→d→a with noise.
                    let last = *s.last().unwrap();
                    let next = if rng.uniform() < 0.7 {
                        A + (last - A + 1) % 4
                    } else {
                        A + rng.below(4) as u32
                    };
                    s.push(next);
                }
                s
            })
            .collect()
    }

    #[test]
    fn distributions_sum_to_one() {
        let seqs = toy_corpus();
        for order in 1..=5 {
            let lm = Ngram::train(order, &seqs, V).unwrap();
            for h in [
                &[BEGIN][..],
                &[BEGIN, A],
                &[A, B, C],
                &[D, D, D, D, D],
                &[C, A, END],
                &[UNK, A],
                &[],
            ] {
                let dist = lm.distribution(h);
                let sum: f64 = dist.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-12,
                    "order {order}, history {h:?}: sum {sum}"
                );
                assert!(
                    dist[2..].iter().all(|&p| p > 0.0),
                    "order {order}: {dist:?}"
                );
            }
        }
    }

    #[test]
    fn unigram_and_bigram_sanity() {
        // Unigram: a appears 5 times, b 2, c 1; higher counts, higher probability,
        // and the history does not matter.
        let seqs = vec![vec![A, A, A, B], vec![A, A, B, C]];
        let lm = Ngram::train(1, &seqs, V).unwrap();
        let (pa, pb, pc, pd) = (
            lm.prob(&[], A),
            lm.prob(&[], B),
            lm.prob(&[], C),
            lm.prob(&[], D),
        );
        assert!(
            pa > pb && pb > pc && pc > pd && pd > 0.0,
            "{pa} {pb} {pc} {pd}"
        );
        assert_eq!(lm.prob(&[BEGIN, C], A), pa);
        // Bigram on the cycle corpus: after c the model expects d.
        let lm = Ngram::train(2, &toy_corpus(), V).unwrap();
        let dist = lm.distribution(&[A, C]);
        let best = (0..V).max_by(|&x, &y| dist[x].total_cmp(&dist[y])).unwrap();
        assert_eq!(best as u32, D);
        // A higher order fits its own training data better.
        let seqs = toy_corpus();
        let ppl: Vec<f64> = (1..=4)
            .map(|n| Ngram::train(n, &seqs, V).unwrap().perplexity(&seqs))
            .collect();
        assert!(ppl.windows(2).all(|w| w[1] < w[0]), "{ppl:?}");
        assert!(ppl[0] < 6.0, "{ppl:?}"); // below uniform over 6 ids
    }

    #[test]
    fn perplexity_is_exp_mean_nll() {
        let seqs = vec![vec![A, B], vec![A, C]];
        let lm = Ngram::train_with(2, &seqs, V, Some(&[[0.5, 1.0, 1.5]])).unwrap();
        // Poem "ab": p(a|BEGIN) = 71/120, p(b|a) = 41/120 (see bigram_by_hand),
        // p(END | b) = (1 − 0.5 + 0.5·17/60)/1 = 0.5 + 17/120 = 77/120.
        let (nll, n) = lm.seq_nll(&[A, B]);
        assert_eq!(n, 3);
        let want = -(71.0f64 / 120.0).ln() - (41.0f64 / 120.0).ln() - (77.0f64 / 120.0).ln();
        assert!(close(nll, want), "{nll} vs {want}");
        let ppl = lm.perplexity(&[vec![A, B]]);
        assert!(close(ppl, (nll / 3.0).exp()));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            Ngram::train(0, &[vec![A]], V).unwrap_err(),
            NgramError::BadOrder(0)
        );
        assert_eq!(Ngram::train(2, &[], V).unwrap_err(), NgramError::Empty);
        assert_eq!(
            Ngram::train(2, &[vec![A, 9]], V).unwrap_err(),
            NgramError::BadId {
                seq: 0,
                id: 9,
                vocab: V
            }
        );
        assert_eq!(
            Ngram::train(2, &[vec![A, END]], V).unwrap_err(),
            NgramError::Boundary { seq: 0, id: END }
        );
    }
}
