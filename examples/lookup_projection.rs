//! The first layer's input side of a training step, two ways, alternated in one
//! process so that a shared machine's drift hits both alike: the embedded rows
//! projected one by one (the path of a model with dropout on its input), and the
//! lookup projection (`engine::embedding::lookup_projection_forward` and
//! `_backward`: each distinct table row projected once).
//!
//! cargo run --release --example lookup_projection
use shiren::engine::embedding::*;
use shiren::engine::matmul::*;
use shiren::rng::Rng;
use std::time::Instant;

fn main() {
    for &(name, b, t, vocab_used, npos) in &[
        ("L random", 64usize, 64usize, 6000usize, 0usize),
        ("Tang-like", 32, 64, 1100, 3),
    ] {
        let (e, gh, v) = (256usize, 2048usize, 6000usize);
        let rows = b * t;
        let mut rng = Rng::new(1);
        let mut rnd = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform() - 0.5).collect() };
        let emb = rnd(v * e);
        let pos: Vec<Vec<f32>> = [16usize, 16, 5][..npos]
            .iter()
            .map(|&n| rnd(n * e))
            .collect();
        let w_ih = rnd(gh * e);
        let dpre = rnd(rows * gh);
        let mut rng2 = Rng::new(2);
        let tokens: Vec<u32> = (0..rows)
            .map(|_| ((rng2.uniform() * vocab_used as f32) as u32).min(vocab_used as u32 - 1))
            .collect();
        let pids: Vec<Vec<u32>> = [16u32, 16, 5][..npos]
            .iter()
            .map(|&n| {
                (0..rows)
                    .map(|_| ((rng2.uniform() * n as f32) as u32).min(n - 1))
                    .collect()
            })
            .collect();
        let mut gates = vec![0f32; rows * gh];
        let mut x0 = vec![0f32; rows * e];
        let mut dx0 = vec![0f32; rows * e];
        let mut dw = vec![0f32; gh * e];
        let mut demb = vec![0f32; v * e];
        let mut dpos: Vec<Vec<f32>> = pos.iter().map(|p| vec![0f32; p.len()]).collect();
        let bias = vec![0.1f32; gh];
        let mut seen = vec![u32::MAX; v];
        let mut slot = Vec::new();
        let mut idx: Vec<[Vec<u32>; 3]> = (0..1 + npos).map(|_| Default::default()).collect();
        let mut scratch = LookupScratch::default();
        let (mut to, mut tn) = (Vec::new(), Vec::new());
        for it in 0..24 {
            for which in [it % 2, 1 - it % 2] {
                let t0 = Instant::now();
                if which == 0 {
                    embedding_forward(&mut x0, &tokens, &emb, b, t, e);
                    for (p, ids) in pos.iter().zip(&pids) {
                        embedding_add(&mut x0, ids, p, b, t, e);
                    }
                    for row in gates.chunks_exact_mut(gh) {
                        row.copy_from_slice(&bias);
                    }
                    let wt = Panels::of_transposed(&w_ih, gh, e);
                    matmul_a_panels(&mut gates, &x0, &wt, rows, true);
                    matmul_at_b(&mut dw, &dpre, &x0, gh, e, rows, true);
                    matmul_a_b(&mut dx0, &dpre, &w_ih, rows, e, gh, false);
                    embedding_backward(&mut demb, &dx0, &tokens, b, t, e);
                    for (dp, ids) in dpos.iter_mut().zip(&pids) {
                        embedding_backward(dp, &dx0, ids, b, t, e);
                    }
                } else {
                    let cols = std::iter::once(&tokens).chain(pids.iter());
                    for (k, ids) in cols.enumerate() {
                        let [d, s, r] = &mut idx[k];
                        lookup_index(ids, b, t, &mut seen, &mut slot, d, s, r);
                    }
                    let ws = std::iter::once(&emb[..]).chain(pos.iter().map(|p| &p[..]));
                    let tabs: Vec<Lookup> = ws
                        .zip(&idx)
                        .map(|(w, [ids, starts, rows])| Lookup {
                            w,
                            ids,
                            starts,
                            rows,
                        })
                        .collect();
                    lookup_projection_forward(&mut gates, &tabs, &w_ih, e, gh, &mut scratch);
                    for row in gates.chunks_exact_mut(gh) {
                        for (g, bb) in row.iter_mut().zip(&bias) {
                            *g += bb;
                        }
                    }
                    let mut dts: Vec<&mut [f32]> = std::iter::once(&mut demb[..])
                        .chain(dpos.iter_mut().map(|p| &mut p[..]))
                        .collect();
                    lookup_projection_backward(
                        &mut dw,
                        &mut dts,
                        &dpre,
                        &tabs,
                        &w_ih,
                        e,
                        gh,
                        &mut scratch,
                    );
                }
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                if it >= 4 {
                    if which == 0 {
                        to.push(ms)
                    } else {
                        tn.push(ms)
                    }
                }
            }
        }
        to.sort_by(|a, b| a.partial_cmp(b).unwrap());
        tn.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let distinct = idx[0][0].len();
        println!("{name}: rows {rows}, distinct tokens {distinct}: old median {:.1} ms, new median {:.1} ms, new/old {:.2} (old range {:.1}–{:.1}, new {:.1}–{:.1})",
            to[to.len()/2], tn[tn.len()/2], tn[tn.len()/2]/to[to.len()/2], to[0], to[to.len()-1], tn[0], tn[tn.len()-1]);
    }
}
