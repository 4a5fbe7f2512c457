//! How often a two-level head's rare part could be skipped while sampling:
//! a step needs no rare logits when the k-th best shortlist log-probability
//! is above log p(rare), the rare class's whole mass (then no rare character
//! can enter the top k). Walks 100 sequences of 40 characters from the
//! shipped model at temperature 1, seed 1, and counts such steps for a few k.
//!
//! cargo run --release --example rare_skip
use shiren::checkpoint;
use shiren::rng::Rng;

fn main() {
    let loaded = checkpoint::load(std::path::Path::new("models/tang-small")).unwrap();
    let m = &loaded.model;
    let (v, s) = (m.cfg.vocab, m.cfg.shortlist);
    let first = 6; // past the specials and the two line ends
    for k in [200usize, 50, 20] {
        let mut rng = Rng::new(1);
        let (mut skippable, mut steps) = (0, 0);
        for _ in 0..100 {
            let mut state = m.new_state(1);
            let mut token = shiren::vocab::Vocab::BEGIN;
            let mut logits = vec![0f32; v];
            for _ in 0..40 {
                m.step(&mut state, &[token], &mut logits);
                // the logits are log-probabilities: log p(rare) = logsumexp of the rare part
                let rare = &logits[s..];
                let max = rare.iter().copied().fold(f32::MIN, f32::max);
                let log_rare = max + rare.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
                let mut short = logits[first..s].to_vec();
                short.sort_by(|a, b| b.total_cmp(a));
                steps += 1;
                skippable += (short[k - 1] > log_rare) as usize;
                // draw the next character from the whole distribution
                let coin = rng.uniform();
                let mut cdf = 0f32;
                let next = logits
                    .iter()
                    .position(|x| {
                        cdf += x.exp();
                        cdf > coin
                    })
                    .unwrap_or(v - 1);
                token = next.max(first) as u32;
            }
        }
        println!(
            "top-k {k}: the rare part could be skipped at {skippable} of {steps} steps ({:.1}%)",
            100.0 * skippable as f64 / steps as f64
        );
    }
}
