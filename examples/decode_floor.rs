//! The floor under one poem's writing time on this machine: a sampling step
//! must read every weight of the model once (the LSTM layers, the bottleneck
//! and the head; half precision for the shipped model), so a 七律 of 66 steps
//! (BEGIN, its form tag, 56 characters, 8 marks) reads the weights 66 times
//! whatever the arithmetic costs. This reads a buffer the size of the shipped
//! weights 66 times, split across the threads as the sampling kernels split
//! their products, adding its bytes and doing nothing else, and prints the
//! median of 30 such "poems" next to the bandwidth it reached.
//!
//! cargo run --release --example decode_floor
use std::time::Instant;

/// Steps of one 七律: BEGIN, the form tag, 8 lines of 7 characters and their marks.
const STEPS: usize = 66;

/// Adds the words of `w`, eight lanes at a time: a stand-in for a kernel that
/// reads each weight once and is as cheap as reading can be (it vectorises to
/// wide loads and integer adds).
fn read_all(w: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    for c in w.chunks_exact(8) {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(x);
        }
    }
    acc.iter().fold(0, |s, &a| s.wrapping_add(a))
}

fn main() -> anyhow::Result<()> {
    let path = std::path::Path::new("models/tang-small/model.safetensors");
    let bytes = std::fs::metadata(path)?.len() as usize;
    let words: Vec<u64> = (0..bytes / 8).map(|i| (i * 7919) as u64).collect();
    let threads = rayon::current_num_threads();
    let per = words.len().div_ceil(threads);
    let mut check = 0u64;
    let mut times = Vec::new();
    for _ in 0..30 {
        let t0 = Instant::now();
        for _ in 0..STEPS {
            check = check.wrapping_add(
                rayon::broadcast(|ctx| {
                    let lo = (ctx.index() * per).min(words.len());
                    read_all(&words[lo..(lo + per).min(words.len())])
                })
                .into_iter()
                .sum::<u64>(),
            );
        }
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "threads {threads}: reading {:.1} MB {STEPS} times takes {median:.1} ms (median of 30; {:.1} GB/s) [{check}]",
        bytes as f64 / 1e6,
        (bytes * STEPS) as f64 / median / 1e6
    );
    Ok(())
}
