//! Training batches: encoded poems grouped by length, shuffled each epoch.
//!
//! Shapes: B rows (poems) × T steps, row-major. For a poem of n characters
//! c1..cn the row is
//!
//! ```text
//! inputs : BEGIN c1 c2 … cn  PAD …
//! targets: c1    c2 …   END  PAD …
//! mask   : 1     1  … 1  1   0   …
//! ```
//!
//! so each step predicts the next character and the last predicts END. A
//! poem read with its title (see [`crate::title`]) is encoded as the title,
//! BEGIN, then the poem; the title's targets (and the second BEGIN) get mask
//! 0, so the loss is over the poem alone, as without a title. T is
//! the longest poem of the batch plus one. Poems are sorted by length and cut
//! into consecutive batches, so a batch's poems have nearly the same length
//! and padding is a few percent. (The original project meant to do this, but
//! its sort key made the sort a no-op, so its batches were mostly padding.)
//! Each epoch shuffles poems of equal length among themselves and then the
//! order of the batches, from the seeded RNG passed in.

use crate::rng::Rng;
use crate::vocab::Vocab;

/// One batch, all three buffers (B, T) row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub b: usize,
    pub t: usize,
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    /// 1.0 where a target is real, 0.0 on padding.
    pub mask: Vec<f32>,
}

impl Batch {
    /// Builds a batch from encoded poems (no BEGIN/END).
    pub fn from_seqs(seqs: &[&[u32]]) -> Batch {
        let b = seqs.len();
        let t = seqs.iter().map(|s| s.len() + 1).max().unwrap_or(1);
        let mut batch = Batch {
            b,
            t,
            inputs: vec![Vocab::PAD; b * t],
            targets: vec![Vocab::PAD; b * t],
            mask: vec![0.0; b * t],
        };
        for (row, s) in seqs.iter().enumerate() {
            let inputs_b = &mut batch.inputs[row * t..(row + 1) * t];
            inputs_b[0] = Vocab::BEGIN;
            inputs_b[1..=s.len()].copy_from_slice(s);
            let targets_b = &mut batch.targets[row * t..(row + 1) * t];
            targets_b[..s.len()].copy_from_slice(s);
            targets_b[s.len()] = Vocab::END;
            let title = crate::title::prefix_len(s);
            batch.mask[row * t + title..row * t + s.len() + 1].fill(1.0);
        }
        batch
    }

    /// Number of real (unmasked) targets.
    pub fn num_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.0).count()
    }
}

/// Cuts a set of encoded poems into length-bucketed batches, once per epoch.
#[derive(Clone, Debug)]
pub struct Batcher {
    seqs: Vec<Vec<u32>>,
    batch_size: usize,
    /// Indices of `seqs` sorted by length (stable).
    by_len: Vec<usize>,
}

impl Batcher {
    /// `seqs` are encoded poems without BEGIN/END; `batch_size` rows per batch
    /// (the last batch of an epoch may have fewer).
    ///
    /// # Panics
    /// If `batch_size` is 0 (the CLI checks its flag before calling).
    pub fn new(seqs: Vec<Vec<u32>>, batch_size: usize) -> Batcher {
        assert!(batch_size > 0, "batch size must be at least 1");
        let mut by_len: Vec<usize> = (0..seqs.len()).collect();
        by_len.sort_by_key(|&i| seqs[i].len());
        Batcher {
            seqs,
            batch_size,
            by_len,
        }
    }

    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        self.seqs.len().div_ceil(self.batch_size)
    }

    /// One epoch: every poem exactly once, in batches of similar length, shuffled.
    pub fn epoch(&self, rng: &mut Rng) -> Vec<Batch> {
        // Shuffle within runs of equal length: batch contents change each epoch
        // while every batch's padding stays what `padding_fraction` reports.
        let mut order = self.by_len.clone();
        let mut start = 0;
        while start < order.len() {
            let len = self.seqs[order[start]].len();
            let end = start
                + order[start..]
                    .iter()
                    .take_while(|&&i| self.seqs[i].len() == len)
                    .count();
            rng.shuffle(&mut order[start..end]);
            start = end;
        }
        let mut batches: Vec<Batch> = order
            .chunks(self.batch_size)
            .map(|idx| {
                let rows: Vec<&[u32]> = idx.iter().map(|&i| self.seqs[i].as_slice()).collect();
                Batch::from_seqs(&rows)
            })
            .collect();
        rng.shuffle(&mut batches);
        batches
    }

    /// Real targets per epoch (each poem's characters plus its END).
    pub fn num_tokens(&self) -> usize {
        self.seqs.iter().map(|s| s.len() + 1).sum()
    }

    /// Share of an epoch's B×T positions that are padding (the same every epoch).
    pub fn padding_fraction(&self) -> f64 {
        let cells: usize = self
            .by_len
            .chunks(self.batch_size)
            .map(|idx| {
                idx.len()
                    * idx
                        .iter()
                        .map(|&i| self.seqs[i].len() + 1)
                        .max()
                        .unwrap_or(0)
            })
            .sum();
        if cells == 0 {
            return 0.0;
        }
        1.0 - self.num_tokens() as f64 / cells as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_shifted_padded_and_masked() {
        let b = Batch::from_seqs(&[&[10, 11, 12], &[20]]);
        assert_eq!((b.b, b.t), (2, 4));
        assert_eq!(b.inputs, [1, 10, 11, 12, 1, 20, 0, 0]);
        assert_eq!(b.targets, [10, 11, 12, 2, 20, 2, 0, 0]);
        assert_eq!(b.mask, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(b.num_tokens(), 6);
    }

    fn seqs(n: usize, rng: &mut Rng) -> Vec<Vec<u32>> {
        (0..n)
            .map(|i| {
                let len = 5 + rng.below(60);
                (0..len).map(|j| 4 + ((i + j) % 50) as u32).collect()
            })
            .collect()
    }

    #[test]
    fn an_epoch_holds_every_poem_once_with_little_padding() {
        let mut rng = Rng::new(1);
        let s = seqs(1000, &mut rng);
        let batcher = Batcher::new(s.clone(), 32);
        let batches = batcher.epoch(&mut rng);
        assert_eq!(batches.len(), batcher.num_batches());
        let mut seen: Vec<Vec<u32>> = Vec::new();
        let mut cells = 0;
        for b in &batches {
            assert!(b.b <= 32);
            assert_eq!(b.inputs.len(), b.b * b.t);
            cells += b.b * b.t;
            for r in 0..b.b {
                let row = &b.targets[r * b.t..(r + 1) * b.t];
                let n = row.iter().position(|&x| x == Vocab::END).unwrap();
                seen.push(row[..n].to_vec());
            }
        }
        let tokens: usize = batches.iter().map(|b| b.num_tokens()).sum();
        assert_eq!(tokens, batcher.num_tokens());
        let pad = 1.0 - tokens as f64 / cells as f64;
        assert!((pad - batcher.padding_fraction()).abs() < 1e-12);
        assert!(pad < 0.05, "padding {pad}");
        let mut expected = s;
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn epochs_are_shuffled_by_the_seed() {
        let mut rng = Rng::new(2);
        let batcher = Batcher::new(seqs(300, &mut rng), 16);
        let a = batcher.epoch(&mut Rng::new(5));
        let b = batcher.epoch(&mut Rng::new(5));
        let c = batcher.epoch(&mut Rng::new(6));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn unsorted_batches_would_pad_far_more() {
        // What the original's no-op sort gave: random order, heavy padding.
        let mut rng = Rng::new(3);
        let s = seqs(1000, &mut rng);
        let random: usize = s
            .chunks(32)
            .map(|c| c.len() * c.iter().map(|x| x.len() + 1).max().unwrap())
            .sum();
        let tokens: usize = s.iter().map(|x| x.len() + 1).sum();
        let random_pad = 1.0 - tokens as f64 / random as f64;
        let bucketed = Batcher::new(s, 32).padding_fraction();
        assert!(
            random_pad > 0.3 && bucketed < random_pad / 10.0,
            "{random_pad} vs {bucketed}"
        );
    }
}
