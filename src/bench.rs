//! `shiren bench`'s measurements: training tokens/s on configs S and L, batch-1
//! sampling latency, peak RSS, FLOPs per token and the machine's GEMM rate.
//! Like nanoGPT's `bench.py` it is a cut-down training loop (random tokens,
//! Adam at 0.01) over the same shapes as `benches/reference/torch_bench.py`,
//! so the two can be alternated in one session (`cli/bench.rs` does that, one
//! child process per run so each run's peak RSS is its own).
//! Not here: process handling and the table (`cli/bench.rs`).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::engine::matmul::matmul_a_bt;
use crate::model::{softmax_rows, Cell, Model, ModelConfig};
use crate::optim::Adam;
use crate::rng::Rng;

/// Batch size and sequence length of both configs (the original's).
pub const B: usize = 64;
pub const T: usize = 64;

/// Config S (the original: embed 128, 2×128) or L (embed 256, 2×512), vocab 6,000.
pub fn config(name: &str, cell: Cell) -> Option<ModelConfig> {
    let (embed, hidden) = match name {
        "S" | "s" => (128, 128),
        "L" | "l" => (256, 512),
        _ => return None,
    };
    Some(ModelConfig {
        cell,
        layers: 2,
        embed,
        hidden,
        vocab: 6000,
        ..ModelConfig::default()
    })
}

/// One measured run, printed as one JSON line by the child process.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RunResult {
    pub fw: String,
    pub cfg: String,
    pub cell: String,
    #[serde(default)]
    pub tok_s: f64,
    #[serde(default)]
    pub step_ms: f64,
    #[serde(default)]
    pub loss: f64,
    #[serde(default)]
    pub sample_ms_per_tok: f64,
    /// The same with the weights exact in f16 (absent from PyTorch's runs).
    #[serde(default)]
    pub sample_f16_ms_per_tok: f64,
    pub rss_mb: f64,
}

/// Training throughput: `warmup` untimed steps, then `steps` timed ones.
pub fn train(name: &str, cfg: &ModelConfig, steps: usize, warmup: usize) -> RunResult {
    let mut rng = Rng::new(42);
    let mut model = Model::new(cfg.clone(), &mut rng);
    let mut adam = Adam::new(model.params.len(), 0.0);
    let v = cfg.vocab;
    let mut t0 = Instant::now();
    let mut last = 0.0;
    for step in 0..warmup + steps {
        if step == warmup {
            t0 = Instant::now();
        }
        let d: Vec<u32> = (0..B * (T + 1)).map(|_| rng.below(v) as u32).collect();
        let mut inputs = Vec::with_capacity(B * T);
        let mut targets = Vec::with_capacity(B * T);
        for row in d.chunks_exact(T + 1) {
            inputs.extend_from_slice(&row[..T]);
            targets.extend_from_slice(&row[1..]);
        }
        let batch = Batch {
            b: B,
            t: T,
            inputs,
            targets,
            mask: vec![1.0; B * T],
        };
        model.zero_grad();
        let (sum, count) = model.forward_backward(&batch, &mut rng);
        adam.step(&mut model.params, &model.grads, 0.01);
        last = sum / count;
    }
    let secs = t0.elapsed().as_secs_f64();
    RunResult {
        fw: "shiren".into(),
        cfg: name.into(),
        cell: cfg.cell.to_string(),
        tok_s: (steps * B * T) as f64 / secs,
        step_ms: secs * 1000.0 / steps as f64,
        loss: last,
        rss_mb: peak_rss_mb(),
        ..RunResult::default()
    }
}

/// Sampling latency at batch 1 with state carried: median over `reps` runs of `ntok`
/// characters (after one warm-up run), in ms per character, softmax and draw
/// included, stepping as the writer does (with [`Model::step_weights`]). Measured
/// twice: with the weights as initialised (f32), then rounded to f16, as a
/// checkpoint saved with `--half` (the shipped model) holds them.
pub fn sample(name: &str, cfg: &ModelConfig, ntok: usize, reps: usize) -> RunResult {
    let mut rng = Rng::new(42);
    let mut model = Model::new(cfg.clone(), &mut rng);
    let f32_ms = sample_ms(&model, ntok, reps, &mut rng);
    for p in &mut model.params {
        *p = half::f16::from_f32(*p).to_f32();
    }
    let f16_ms = sample_ms(&model, ntok, reps, &mut rng);
    RunResult {
        fw: "shiren".into(),
        cfg: name.into(),
        cell: cfg.cell.to_string(),
        sample_ms_per_tok: f32_ms,
        sample_f16_ms_per_tok: f16_ms,
        rss_mb: peak_rss_mb(),
        ..RunResult::default()
    }
}

fn sample_ms(model: &Model, ntok: usize, reps: usize, rng: &mut Rng) -> f64 {
    let v = model.cfg.vocab;
    let wt = model.step_weights();
    let mut logits = vec![0.0f32; v];
    let mut times = Vec::new();
    // on a pool thread, as the writer runs (see `Writer::run`)
    rayon::scope(|_| {
        for _ in 0..reps + 1 {
            let t0 = Instant::now();
            let mut state = model.new_state(1);
            let mut tok = 1u32;
            for _ in 0..ntok {
                model.step_with(Some(&wt), &mut state, &[tok], Some(&mut logits));
                softmax_rows(&mut logits, v);
                let u = rng.uniform();
                let mut acc = 0.0;
                tok = (v - 1) as u32;
                for (k, p) in logits.iter().enumerate() {
                    acc += p;
                    if acc > u {
                        tok = k as u32;
                        break;
                    }
                }
            }
            times.push(t0.elapsed().as_secs_f64() * 1000.0 / ntok as f64);
        }
    });
    median(&mut times[1..].to_vec())
}

/// Peak resident set size of this process in MB (VmHWM from /proc/self/status; 0 where absent).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The GEMM rate this machine reaches through `engine::matmul` on a large square-ish
/// product (1024×2048×512, about the shape of config L's weight gradients), in GFLOP/s.
pub fn gemm_peak_gflops() -> f64 {
    let (m, n, k) = (1024, 2048, 512);
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; n * k];
    let mut out = vec![0.0f32; m * n];
    matmul_a_bt(&mut out, &a, &b, m, n, k, false);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        matmul_a_bt(&mut out, &a, &b, m, n, k, false);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    2.0 * (m * n * k) as f64 / best / 1e9
}

/// FLOPs per trained token: forward 2 per multiply-add, backward twice that (dX and dW).
pub fn train_flops_per_token(cfg: &ModelConfig) -> f64 {
    6.0 * cfg.macs_per_token() as f64
}

/// Median of a non-empty list (mean of the middle two for even lengths); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_and_medians() {
        let s = config("S", Cell::Lstm).unwrap();
        assert_eq!((s.embed, s.hidden, s.vocab), (128, 128, 6000));
        assert!(config("M", Cell::Lstm).is_none());
        // S: 2 layers × 4·128·(128+128) + 6000·128 multiply-adds per token
        assert_eq!(s.macs_per_token(), 2 * 4 * 128 * 256 + 6000 * 128);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
        assert!(peak_rss_mb() > 0.0);
    }
}
