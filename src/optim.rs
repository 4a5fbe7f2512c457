//! Adam and AdamW over the flat parameter vector (one loop, as in llm.c's
//! `gpt2_update`), clipping of the gradient by its global L2 norm, and the
//! learning-rate schedule both trainers (poems and MNIST) follow.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Adam (Kingma & Ba, 2015) with bias correction; with `weight_decay > 0` it is
/// AdamW (Loshchilov & Hutter, 2019): the decay `lr·wd·θ` is applied to the
/// weights directly, not through the moments, as in PyTorch's `AdamW`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// 0 = Adam, > 0 = AdamW's decoupled decay.
    pub weight_decay: f32,
    /// First and second moments, same layout as the parameters.
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Steps taken so far.
    pub t: u64,
}

impl Adam {
    /// PyTorch's defaults: β1 0.9, β2 0.999, ε 1e-8.
    pub fn new(n: usize, weight_decay: f32) -> Adam {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One update: θ ← θ − lr·(m̂/(√v̂ + ε) + wd·θ).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32) {
        assert!(
            params.len() == self.m.len() && grads.len() == self.m.len(),
            "Adam::step: params, grads and moments differ in length"
        );
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let bc1 = 1.0 - (b1 as f64).powi(self.t.min(i32::MAX as u64) as i32);
        let bc2 = 1.0 - (b2 as f64).powi(self.t.min(i32::MAX as u64) as i32);
        // fold the bias corrections into the step size and ε (same result, fewer divisions)
        let step = (lr as f64 * bc2.sqrt() / bc1) as f32;
        let eps = (self.eps as f64 * bc2.sqrt()) as f32;
        let decay = lr * self.weight_decay;
        // independent per element, so chunks go to all cores (8M parameters at config L)
        const CHUNK: usize = 1 << 15;
        params
            .par_chunks_mut(CHUNK)
            .zip(grads.par_chunks(CHUNK))
            .zip(self.m.par_chunks_mut(CHUNK))
            .zip(self.v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *p -= step * *m / (v.sqrt() + eps) + decay * *p;
                }
            });
    }
}

/// Scales `grads` so that their global L2 norm is at most `max_norm`; returns the norm
/// before clipping (NaN or infinite if a gradient is, so the caller can stop).
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let norm = grads
        .iter()
        .map(|&g| (g as f64) * (g as f64))
        .sum::<f64>()
        .sqrt() as f32;
    if norm.is_finite() && norm > max_norm && max_norm > 0.0 {
        let s = max_norm / (norm + 1e-6);
        for g in grads.iter_mut() {
            *g *= s;
        }
    }
    norm
}

/// Learning rate for optimiser step `step` (counting from 0) of `total`, as
/// nanoGPT's `get_lr`: a linear warm-up over `warmup` steps to `lr`, then a
/// cosine decay to `min_lr` at `total`, and `min_lr` from there on.
pub fn lr_at(step: u64, total: u64, warmup: u64, lr: f32, min_lr: f32) -> f32 {
    if step < warmup {
        return lr * (step + 1) as f32 / warmup as f32;
    }
    if step >= total || total <= warmup {
        return min_lr;
    }
    let progress = (step - warmup) as f64 / (total - warmup) as f64;
    let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    (min_lr as f64 + coeff * (lr - min_lr) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_warms_up_then_follows_a_cosine_to_the_floor() {
        // warmup 10 of 110 steps, 1.0 → 0.1: the cosine's midpoint is step 60
        assert_eq!(lr_at(0, 110, 10, 1.0, 0.1), 0.1);
        assert_eq!(lr_at(9, 110, 10, 1.0, 0.1), 1.0);
        assert_eq!(lr_at(10, 110, 10, 1.0, 0.1), 1.0);
        assert!((lr_at(60, 110, 10, 1.0, 0.1) - 0.55).abs() < 1e-6);
        assert!((lr_at(109, 110, 10, 1.0, 0.1) - 0.1).abs() < 1e-3);
        assert_eq!(lr_at(110, 110, 10, 1.0, 0.1), 0.1);
        assert_eq!(lr_at(500, 110, 10, 1.0, 0.1), 0.1);
        // no warmup starts at the peak; a run no longer than its warmup ends at the floor
        assert_eq!(lr_at(0, 100, 0, 1.0, 0.1), 1.0);
        assert_eq!(lr_at(5, 5, 10, 1.0, 0.1), 0.6);
        assert_eq!(lr_at(12, 8, 10, 1.0, 0.1), 0.1);
        // min_lr = lr is a constant rate
        assert_eq!(lr_at(77, 100, 0, 0.01, 0.01), 0.01);
    }

    #[test]
    fn adam_matches_a_hand_computed_step() {
        // two steps by hand, θ0 = [1, −2], g = [0.5, −0.1] then [0.2, 0.3], lr 0.1
        let mut a = Adam::new(2, 0.0);
        let mut p = vec![1.0f32, -2.0];
        a.step(&mut p, &[0.5, -0.1], 0.1);
        // step 1: m̂ = g, v̂ = g², update = lr·g/(|g| + ε) ≈ lr·sign(g)
        assert!((p[0] - 0.9).abs() < 1e-6, "{p:?}");
        assert!((p[1] - -1.9).abs() < 1e-6, "{p:?}");
        a.step(&mut p, &[0.2, 0.3], 0.1);
        let want = |p0: f64, g1: f64, g2: f64| {
            let m = 0.9 * (0.1 * g1) + 0.1 * g2;
            let v = 0.999 * (0.001 * g1 * g1) + 0.001 * g2 * g2;
            let (mh, vh) = (m / (1.0 - 0.81), v / (1.0 - 0.999f64.powi(2)));
            p0 - 0.1 * mh / (vh.sqrt() + 1e-8)
        };
        let (w0, w1) = (want(0.9, 0.5, 0.2), want(-1.9, -0.1, 0.3));
        assert!((p[0] as f64 - w0).abs() < 1e-6, "{} vs {w0}", p[0]);
        assert!((p[1] as f64 - w1).abs() < 1e-6, "{} vs {w1}", p[1]);
        assert_eq!(a.t, 2);
    }

    #[test]
    fn adamw_decays_weights_directly() {
        let mut a = Adam::new(1, 0.5);
        let mut p = vec![2.0f32];
        a.step(&mut p, &[0.0], 0.1);
        // zero gradient: only the decoupled decay acts, θ ← θ − lr·wd·θ
        assert!((p[0] - (2.0 - 0.1 * 0.5 * 2.0)).abs() < 1e-6, "{}", p[0]);
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut g = vec![3.0f32, 4.0];
        let n = clip_grad_norm(&mut g, 1.0);
        assert!((n - 5.0).abs() < 1e-6);
        assert!(
            (g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5,
            "{g:?}"
        );
        let mut small = vec![0.3f32, 0.4];
        assert!((clip_grad_norm(&mut small, 1.0) - 0.5).abs() < 1e-6);
        assert_eq!(small, vec![0.3, 0.4]);
        let mut bad = vec![f32::NAN, 1.0];
        assert!(clip_grad_norm(&mut bad, 1.0).is_nan());
    }
}
