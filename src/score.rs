//! Scoring given text: the log-probability the model gives each token of each
//! poem, read as training reads it (`BEGIN c1 … cn`, predicting `c1 … cn END`).
//!
//! This is what `shiren score` prints and what `shiren export --torch` writes
//! as test vectors. It runs the sampler's one-step path ([`Model::step_with`])
//! over many poems side by side, so it needs no batches, no split and no
//! n-grams: every poem given is scored, as given. Not here: reading and
//! converting files (`cli/score.rs`), perplexity over a split (`eval.rs`).

use rayon::prelude::*;

use crate::model::Model;
use crate::vocab::Vocab;

/// Poems stepped side by side on one thread.
const ROWS: usize = 32;

/// ln p of every target of every sequence: `out[i][k]` = ln p(y_k | BEGIN,
/// `seqs[i][..k]`) with y = `seqs[i]` followed by END, so `out[i]` has
/// `seqs[i].len() + 1` entries. `seqs` hold ids without BEGIN/END (a form
/// tag, when given, is the first id). Computed in f64 from the f32 logits.
pub fn token_log_probs(model: &Model, seqs: &[Vec<u32>]) -> Vec<Vec<f64>> {
    // Poems of similar length side by side, so few steps read padding.
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| seqs[i].len());
    let chunks: Vec<&[usize]> = order.chunks(ROWS).collect();
    let scored: Vec<Vec<(usize, Vec<f64>)>> = chunks
        .par_iter()
        .map(|rows| score_rows(model, seqs, rows))
        .collect();
    let mut out = vec![Vec::new(); seqs.len()];
    for (i, lp) in scored.into_iter().flatten() {
        out[i] = lp;
    }
    out
}

/// [`token_log_probs`] of the sequences `rows` name, stepped as one batch.
fn score_rows(model: &Model, seqs: &[Vec<u32>], rows: &[usize]) -> Vec<(usize, Vec<f64>)> {
    let (b, v) = (rows.len(), model.cfg.vocab);
    let two_level = model.cfg.shortlist > 0;
    let wt = model.step_weights();
    let mut state = model.new_state(b);
    let mut logits = vec![0.0f32; b * v];
    let steps = rows.iter().map(|&i| seqs[i].len() + 1).max().unwrap_or(0);
    let mut out: Vec<(usize, Vec<f64>)> = rows
        .iter()
        .map(|&i| (i, Vec::with_capacity(seqs[i].len() + 1)))
        .collect();
    let mut tokens = vec![Vocab::PAD; b];
    for t in 0..steps {
        for (r, &i) in rows.iter().enumerate() {
            let s = &seqs[i];
            tokens[r] = match t {
                0 => Vocab::BEGIN,
                _ => s.get(t - 1).copied().unwrap_or(Vocab::PAD),
            };
        }
        model.step_with(Some(&wt), &mut state, &tokens, Some(&mut logits));
        for (r, &i) in rows.iter().enumerate() {
            let s = &seqs[i];
            if t > s.len() {
                continue;
            }
            let y = s.get(t).copied().unwrap_or(Vocab::END) as usize;
            let row = &logits[r * v..(r + 1) * v];
            // a two-level head's step already gives log-probabilities
            let lp = if two_level {
                row[y] as f64
            } else {
                row[y] as f64 - log_sum_exp(row)
            };
            out[r].1.push(lp);
        }
    }
    out
}

/// ln Σ exp(x), in f64.
fn log_sum_exp(x: &[f32]) -> f64 {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    m + x.iter().map(|&l| (l as f64 - m).exp()).sum::<f64>().ln()
}

/// One poem's score.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PoemScore {
    /// 1-based position in the input.
    pub index: usize,
    /// Where it was read (`path:line` or `path#n`).
    pub source: String,
    /// The text as scored (after whitespace removal and any conversion).
    pub text: String,
    /// Characters of the text (punctuation included).
    pub chars: usize,
    /// Predicted tokens: the characters and END.
    pub tokens: usize,
    /// Characters the model's vocabulary lacks (read and scored as UNK).
    pub unknown: usize,
    /// Σ ln p over the tokens, in nats.
    pub log_prob: f64,
    /// −log_prob / tokens: nats per token.
    pub loss: f64,
    /// exp(loss).
    pub ppl: f64,
}

/// All poems together: sums, and loss and perplexity per token over all of them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Total {
    pub poems: usize,
    pub chars: usize,
    pub tokens: usize,
    pub unknown: usize,
    pub log_prob: f64,
    pub loss: f64,
    pub ppl: f64,
}

/// Scores `texts` ((source, text) pairs) with `model`, characters mapped through `vocab`.
pub fn score_texts(model: &Model, vocab: &Vocab, texts: &[(String, String)]) -> Vec<PoemScore> {
    let seqs: Vec<Vec<u32>> = texts.iter().map(|(_, t)| vocab.encode(t)).collect();
    let lps = token_log_probs(model, &seqs);
    texts
        .iter()
        .zip(&seqs)
        .zip(lps)
        .enumerate()
        .map(|(k, (((source, text), ids), lp))| {
            let log_prob: f64 = lp.iter().sum();
            let tokens = lp.len();
            let loss = -log_prob / tokens as f64;
            PoemScore {
                index: k + 1,
                source: source.clone(),
                text: text.clone(),
                chars: ids.len(),
                tokens,
                unknown: ids.iter().filter(|&&id| id == Vocab::UNK).count(),
                log_prob,
                loss,
                ppl: loss.exp(),
            }
        })
        .collect()
}

/// The sums over `poems`.
pub fn total(poems: &[PoemScore]) -> Total {
    let mut t = Total {
        poems: poems.len(),
        ..Total::default()
    };
    for p in poems {
        t.chars += p.chars;
        t.tokens += p.tokens;
        t.unknown += p.unknown;
        t.log_prob += p.log_prob;
    }
    if t.tokens > 0 {
        t.loss = -t.log_prob / t.tokens as f64;
        t.ppl = t.loss.exp();
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Batch;
    use crate::model::{Cell, ModelConfig, Positions};
    use crate::rng::Rng;

    /// The per-token log-probs sum to the batch forward's loss, poem by poem,
    /// for a plain and a two-level head, with positions and a tied head.
    #[test]
    fn token_log_probs_sum_to_the_forward_loss_of_each_poem() {
        for (cell, shortlist, tied) in [(Cell::Lstm, 0, false), (Cell::Gru, 5, true)] {
            let cfg = ModelConfig {
                cell,
                shortlist,
                tied,
                layers: 2,
                embed: 6,
                hidden: 10,
                vocab: 12,
                positions: Some(Positions {
                    size: 4,
                    line_ends: vec![4],
                    silent: vec![0, 1, 2, 11],
                    forms: vec![11],
                    resets: Vec::new(),
                    title: false,
                }),
                ..ModelConfig::default()
            };
            let model_rng = &mut Rng::new(7);
            let mut model = Model::new(cfg, model_rng);
            // more poems than one thread's rows, of many lengths
            let seqs: Vec<Vec<u32>> = (0..ROWS + 9)
                .map(|i| {
                    let mut s: Vec<u32> = (0..1 + i % 13)
                        .map(|k| 3 + ((i * 7 + k) % 9) as u32)
                        .collect();
                    if i % 4 == 0 {
                        s.insert(0, 11);
                    }
                    s
                })
                .collect();
            let got = token_log_probs(&model, &seqs);
            for (s, lp) in seqs.iter().zip(&got) {
                assert_eq!(lp.len(), s.len() + 1);
                let (want, n) = model.loss(&Batch::from_seqs(&[s]));
                assert_eq!(n as usize, s.len() + 1);
                let sum: f64 = -lp.iter().sum::<f64>();
                assert!(
                    (sum - want).abs() < 1e-4,
                    "{cell} shortlist {shortlist}: {s:?}: steps {sum} vs forward {want}"
                );
            }
        }
    }

    #[test]
    fn total_is_per_token_over_all_poems() {
        let p = |log_prob: f64, tokens: usize| PoemScore {
            index: 1,
            source: String::new(),
            text: String::new(),
            chars: tokens - 1,
            tokens,
            unknown: 1,
            log_prob,
            loss: 0.0,
            ppl: 0.0,
        };
        let t = total(&[p(-10.0, 4), p(-2.0, 2)]);
        assert_eq!((t.poems, t.chars, t.tokens, t.unknown), (2, 4, 6, 2));
        assert!((t.loss - 2.0).abs() < 1e-12 && (t.ppl - 2f64.exp()).abs() < 1e-9);
    }
}
