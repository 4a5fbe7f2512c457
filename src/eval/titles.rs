//! Does the model write about its title? Three measurements on test poems
//! that have a title (see [`crate::title`]):
//!
//! - perplexity of each poem read after its own title, after a title drawn
//!   from another test poem, and after none, over the same poem tokens (the
//!   title's own are not scored), so the first two differ only in the title;
//! - a poem written from each title alone, in the form of the real poem of
//!   that title, compared by a TF-IDF cosine over characters (punctuation
//!   excluded) with that real poem and with the real poem of another title:
//!   the mean gap, with a bootstrap 95% interval over the pairs.
//!
//! None of it needs the model to say anything about itself: the second is a
//! plain count of shared characters, weighted by how rare each is across
//! the training poems.

use std::collections::HashMap;

use serde::Serialize;

use super::perplexity;
use crate::batch::Batcher;
use crate::corpus::Form;
use crate::model::Model;
use crate::rng::Rng;
use crate::vocab::Vocab;
use crate::write::{self, CharModel, Writer};

/// The titleless test perplexity of the model shipped before titles, which
/// a title model must stay within 3% of.
pub const BEFORE_TITLES_PPL: f64 = 84.5;

/// What [`measure`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TitleCard {
    /// Test poems with a title, whose perplexities are below.
    pub poems: usize,
    pub ppl_own: f64,
    pub ppl_other: f64,
    pub ppl_none: f64,
    /// (title, real poem) pairs written from and compared.
    pub pairs: usize,
    /// Mean cosine of the written poems with the real poem of their title, and with another's.
    pub cos_own: f64,
    pub cos_other: f64,
    /// Mean of (own − other) per pair, and its bootstrap 95% interval.
    pub gap: f64,
    pub gap_low: f64,
    pub gap_high: f64,
}

/// A permutation of 0..n with no fixed point (n ≥ 2), drawn by `rng`.
pub fn derangement(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut p);
    for k in 0..n {
        if p[k] == k {
            let other = (k + 1) % n;
            p.swap(k, other);
        }
    }
    p
}

/// Inverse document frequencies of characters over `docs` (punctuation excluded).
pub struct Idf {
    idf: HashMap<char, f64>,
    unseen: f64,
}

impl Idf {
    pub fn new<S: AsRef<str>>(docs: &[S]) -> Idf {
        let mut df: HashMap<char, usize> = HashMap::new();
        for d in docs {
            let mut seen: Vec<char> = chars(d.as_ref()).collect();
            seen.sort_unstable();
            seen.dedup();
            for c in seen {
                *df.entry(c).or_default() += 1;
            }
        }
        let n = docs.len() as f64;
        Idf {
            idf: df
                .into_iter()
                .map(|(c, k)| (c, (n / (1.0 + k as f64)).ln().max(0.0)))
                .collect(),
            unseen: (n / 1.0).ln().max(0.0),
        }
    }

    /// TF-IDF vector of a text.
    fn vector(&self, text: &str) -> HashMap<char, f64> {
        let mut v: HashMap<char, f64> = HashMap::new();
        for c in chars(text) {
            *v.entry(c).or_default() += 1.0;
        }
        for (c, x) in v.iter_mut() {
            *x *= self.idf.get(c).copied().unwrap_or(self.unseen);
        }
        v
    }

    /// Cosine of the TF-IDF vectors of two texts (0 when either is empty).
    pub fn cosine(&self, a: &str, b: &str) -> f64 {
        let (va, vb) = (self.vector(a), self.vector(b));
        let dot: f64 = va
            .iter()
            .filter_map(|(c, x)| vb.get(c).map(|y| x * y))
            .sum();
        let norm = |v: &HashMap<char, f64>| v.values().map(|x| x * x).sum::<f64>().sqrt();
        let d = norm(&va) * norm(&vb);
        if d > 0.0 {
            dot / d
        } else {
            0.0
        }
    }
}

/// The Han characters of a text.
fn chars(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().filter(|&c| crate::prosody::is_han(c))
}

/// Mean and bootstrap 95% interval (2.5th and 97.5th percentiles of
/// `resamples` resampled means) of `xs`.
pub fn bootstrap_mean(xs: &[f64], resamples: usize, rng: &mut Rng) -> (f64, f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| xs[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    (mean, at(0.025), at(0.975))
}

/// Perplexities of `poems` (title, text) read after their own titles, after
/// the titles of `other[k]`, and after none.
pub fn perplexities(
    model: &mut Model,
    vocab: &Vocab,
    poems: &[(String, String)],
    other: &[usize],
    batch: usize,
    seed: u64,
) -> (f64, f64, f64) {
    let mut run = |titles: Vec<Option<&str>>| {
        let seqs: Vec<Vec<u32>> = poems
            .iter()
            .zip(titles)
            .map(|((_, text), title)| {
                let mut ids = crate::title::prefix(vocab, title);
                ids.extend(vocab.encode(text));
                ids
            })
            .collect();
        let batches = Batcher::new(seqs, batch.max(1)).epoch(&mut Rng::new(seed));
        perplexity(model, &batches).ppl()
    };
    let own = run(poems.iter().map(|p| Some(p.0.as_str())).collect());
    let shuffled = run(other.iter().map(|&k| Some(poems[k].0.as_str())).collect());
    let none = run(vec![None; poems.len()]);
    (own, shuffled, none)
}

/// Writes a poem from each title of `pairs` (in its real poem's form, with
/// write's defaults) and compares it with its own real poem and with
/// another's: per pair, cos(written, own) − cos(written, other).
pub fn similarity<M: CharModel + Sync>(
    writer: &Writer<M>,
    idf: &Idf,
    pairs: &[(String, String)],
    other: &[usize],
    seed: u64,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let reqs: Vec<write::Request> = pairs
        .iter()
        .enumerate()
        .map(|(k, (title, text))| write::Request {
            opts: write::Options {
                title: title.clone(),
                form: Form::of_text(text),
                rhyme: true,
                ..write::Options::default()
            },
            count: 1,
            seed: seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        })
        .collect();
    let mut out = Vec::with_capacity(pairs.len());
    for (k, r) in writer.write_requests(&reqs).into_iter().enumerate() {
        let poem = r?.pop().map(|p| p.text).unwrap_or_default();
        out.push((
            idf.cosine(&poem, &pairs[k].1),
            idf.cosine(&poem, &pairs[other[k]].1),
        ));
    }
    Ok(out)
}

/// All three measurements over the test poems `test` (title, text): the
/// perplexities over every titled one, the similarity over up to `pairs`
/// of those in a regulated form. `train` gives the IDF weights.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    model: &mut Model,
    vocab: &Vocab,
    lex: Option<&crate::prosody::Lexicon>,
    train: &[String],
    test: &[(Option<String>, String)],
    pairs: usize,
    batch: usize,
    seed: u64,
) -> anyhow::Result<TitleCard> {
    let titled: Vec<(String, String)> = test
        .iter()
        .filter_map(|(t, text)| t.clone().map(|t| (t, text.clone())))
        .collect();
    anyhow::ensure!(
        titled.len() >= 2,
        "fewer than 2 test poems have a title; nothing to compare"
    );
    let mut rng = Rng::new(seed);
    let other = derangement(titled.len(), &mut rng);
    let (ppl_own, ppl_other, ppl_none) = perplexities(model, vocab, &titled, &other, batch, seed);

    let mut chosen: Vec<(String, String)> = titled
        .iter()
        .filter(|(_, text)| Form::REGULATED.contains(&Form::of_text(text)))
        .cloned()
        .collect();
    rng.shuffle(&mut chosen);
    chosen.truncate(pairs);
    anyhow::ensure!(
        chosen.len() >= 2,
        "fewer than 2 titled test poems are in a regulated form; nothing to write"
    );
    let other = derangement(chosen.len(), &mut rng);
    let idf = Idf::new(train);
    let net = write::Lm::new(model, vocab);
    let writer = Writer::new(&net, lex);
    let cos = similarity(&writer, &idf, &chosen, &other, seed)?;
    let gaps: Vec<f64> = cos.iter().map(|(a, b)| a - b).collect();
    let (gap, gap_low, gap_high) = bootstrap_mean(&gaps, 2000, &mut rng);
    let n = cos.len() as f64;
    Ok(TitleCard {
        poems: titled.len(),
        ppl_own,
        ppl_other,
        ppl_none,
        pairs: cos.len(),
        cos_own: cos.iter().map(|c| c.0).sum::<f64>() / n,
        cos_other: cos.iter().map(|c| c.1).sum::<f64>() / n,
        gap,
        gap_low,
        gap_high,
    })
}

impl TitleCard {
    /// The title targets, each met or not; `test_ppl` is the perplexity of
    /// the whole test part (no titles), else that of the titled poems without theirs.
    pub fn targets(&self, test_ppl: Option<f64>) -> Vec<super::Target> {
        let ratio = self.ppl_own / self.ppl_other;
        let none = test_ppl.unwrap_or(self.ppl_none);
        let drift = none / BEFORE_TITLES_PPL - 1.0;
        vec![
            super::Target {
                what: "perplexity after the poem's own title ≤ 0.95× after another's".into(),
                value: format!("{:.1} / {:.1} = {ratio:.3}×", self.ppl_own, self.ppl_other),
                met: ratio <= 0.95,
            },
            super::Target {
                what: format!("titleless test perplexity within 3% of {BEFORE_TITLES_PPL} (or lower)"),
                value: format!("{none:.1} ({:+.1}%)", 100.0 * drift),
                met: drift <= 0.03,
            },
            super::Target {
                what: "poems written from a title are closer to its real poem (TF-IDF cosine gap, 95% interval above 0)".into(),
                value: format!(
                    "{:+.4} [{:+.4}, {:+.4}] over {} pairs",
                    self.gap, self.gap_low, self.gap_high, self.pairs
                ),
                met: self.gap_low > 0.0,
            },
        ]
    }

    /// Lines for the report card.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "{} titled test poems: perplexity {:.1} after their own title, {:.1} after another poem's, {:.1} with none",
                self.poems, self.ppl_own, self.ppl_other, self.ppl_none
            ),
            format!(
                "{} poems written from a test title alone: TF-IDF cosine {:.4} with that title's real poem, {:.4} with another's; gap {:+.4}, bootstrap 95% interval [{:+.4}, {:+.4}]",
                self.pairs, self.cos_own, self.cos_other, self.gap, self.gap_low, self.gap_high
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derangement_moves_every_index() {
        for n in 2..40 {
            let p = derangement(n, &mut Rng::new(n as u64));
            let mut sorted = p.clone();
            sorted.sort();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            assert!(p.iter().enumerate().all(|(k, &x)| k != x), "{p:?}");
        }
    }

    #[test]
    fn cosine_is_one_for_the_same_text_and_weighs_rare_characters_more() {
        let docs = ["山水", "山月", "山风", "江雪"];
        let idf = Idf::new(&docs);
        assert!((idf.cosine("山水，", "山水。") - 1.0).abs() < 1e-9);
        assert_eq!(idf.cosine("", "山"), 0.0);
        // 雪 is rarer than 山, so sharing it counts more
        assert!(idf.cosine("山雪", "江雪") > idf.cosine("山雪", "山风"));
        // 山 is in every document but one: idf ln(4/4) = 0, so sharing only it counts nothing
        assert_eq!(idf.cosine("山", "山"), 0.0);
    }

    #[test]
    fn the_bootstrap_interval_holds_the_mean_and_narrows_with_more_data() {
        let mut rng = Rng::new(1);
        let xs: Vec<f64> = (0..400).map(|k| (k % 7) as f64 - 2.0).collect();
        let (m, lo, hi) = bootstrap_mean(&xs, 1000, &mut rng);
        assert!(lo < m && m < hi, "{lo} {m} {hi}");
        let few = &xs[..40];
        let (_, lo2, hi2) = bootstrap_mean(few, 1000, &mut rng);
        assert!(hi2 - lo2 > hi - lo);
    }
}
