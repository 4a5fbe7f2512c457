//! Softmax with masked cross-entropy, fused: the forward turns logits into
//! probabilities in place and returns the masked loss; the backward turns
//! probabilities into logit gradients in place (probability minus one-hot,
//! times the mask and the upstream scale).
//! Not here: the projection that makes the logits (`linear.rs`).

use super::fastmath::exp;

crate::simd_fn! {
    /// `logits: (N, V)` plus `bias: (V)` → probabilities in place. `targets: (N)`, `mask: (N)`
    /// with 1 for a real token and 0 for padding. Returns `Σ mask·(−log p[target])` in nats (f64
    /// to sum many rows exactly). The bias of the projection that made the logits is added
    /// here, in the pass that finds each row's maximum, rather than in a pass over all
    /// rows of its own (which cost config S 3–4% of its CPU time per step).
pub fn softmax_ce_forward(logits: &mut [f32], bias: &[f32], targets: &[u32], mask: &[f32], v: usize) -> f64 {
    assert_eq!(
        logits.len(),
        targets.len() * v,
        "softmax_ce_forward: logits is not (N, V)"
    );
    assert_eq!(
        mask.len(),
        targets.len(),
        "softmax_ce_forward: mask is not (N)"
    );
    assert_eq!(bias.len(), v, "softmax_ce_forward: bias is not (V)");
    let mut total = 0.0f64;
    for ((row, &tg), &m) in logits.chunks_exact_mut(v).zip(targets).zip(mask) {
        let (sum, nll) = exp_row(row, bias, tg);
        let inv = 1.0 / sum;
        for x in row.iter_mut() {
            *x *= inv;
        }
        if m != 0.0 {
            total += nll * m as f64;
        }
    }
    total
}
}

crate::simd_fn! {
    /// `probs: (N, V)` → dL/dlogits in place: `(p − onehot(target)) · mask · scale`
    /// (scale = 1 / token count for a mean loss).
pub fn softmax_ce_backward(probs: &mut [f32], targets: &[u32], mask: &[f32], v: usize, scale: f32) {
    assert_eq!(
        probs.len(),
        targets.len() * v,
        "softmax_ce_backward: probs is not (N, V)"
    );
    for ((row, &tg), &m) in probs.chunks_exact_mut(v).zip(targets).zip(mask) {
        let s = m * scale;
        if s == 0.0 {
            row.fill(0.0);
            continue;
        }
        for x in row.iter_mut() {
            *x *= s;
        }
        row[tg as usize] -= s;
    }
}
}

crate::simd_fn! {
    /// [`softmax_ce_forward`] and [`softmax_ce_backward`] in one: `logits: (N, V)` + `bias` →
    /// dL/dlogits in place, returning the masked loss sum, and the rows' sum added
    /// to `dbias: (V)` (the gradient of the bias that made the logits). Each row
    /// becomes its gradient and joins the sum while it is still in L1; done apart,
    /// the backward and the bias gradient each read the whole chunk (12 MB at
    /// 512 rows × 6,000) back from memory.
pub fn softmax_ce_forward_backward(logits: &mut [f32], bias: &[f32], targets: &[u32], mask: &[f32], v: usize, scale: f32, dbias: &mut [f32]) -> f64 {
    assert_eq!(
        logits.len(),
        targets.len() * v,
        "softmax_ce_forward_backward: logits is not (N, V)"
    );
    assert_eq!(
        mask.len(),
        targets.len(),
        "softmax_ce_forward_backward: mask is not (N)"
    );
    assert_eq!(bias.len(), v, "softmax_ce_forward_backward: bias is not (V)");
    assert_eq!(dbias.len(), v, "softmax_ce_forward_backward: dbias is not (V)");
    let mut total = 0.0f64;
    for ((row, &tg), &m) in logits.chunks_exact_mut(v).zip(targets).zip(mask) {
        let (sum, nll) = exp_row(row, bias, tg);
        if m != 0.0 {
            total += nll * m as f64;
        }
        // (p − onehot) · s with p = exp / sum
        let s = m * scale;
        let k = s / sum;
        for x in row.iter_mut() {
            *x *= k;
        }
        row[tg as usize] -= s;
        for (d, x) in dbias.iter_mut().zip(row.iter()) {
            *d += x;
        }
    }
    total
}
}

crate::simd_fn! {
    /// A two-level head's logits → log-probabilities over the whole
    /// vocabulary, in place. `row: (V)` holds the logits of every id, `rare`
    /// the logit of the rare class that the ids from `s` on share:
    /// log p(y) = y − lse(row[..s], rare) for y < s, and
    /// (rare − lse(row[..s], rare)) + (y − lse(row[s..])) for the rest.
    /// Sampling reads these as logits: their softmax is the model's distribution.
pub fn two_level_log_probs(row: &mut [f32], rare: f32, s: usize) {
    let (short, rest) = row.split_at_mut(s);
    let m = row_max(short).max(rare);
    let lse_short = m + (sum_exp_shifted(short, m) + exp(rare - m)).ln();
    for x in short.iter_mut() {
        *x -= lse_short;
    }
    let m = row_max(rest);
    let shift = rare - lse_short - (m + sum_exp_shifted(rest, m).ln());
    for x in rest.iter_mut() {
        *x += shift;
    }
}
}

/// Σ exp(row − max), leaving `row` as it is, in `LANES` lanes.
#[inline(always)]
fn sum_exp_shifted(row: &[f32], max: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] += exp(c[k] - max);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&x| exp(x - max)).sum::<f32>()
}

/// `row ← exp(row + bias − max)`; returns the sum of the results and −log p[target].
#[inline(always)]
fn exp_row(row: &mut [f32], bias: &[f32], tg: u32) -> (f32, f64) {
    let max = add_bias_max(row, bias);
    let shifted_target = row[tg as usize] - max;
    let sum = exp_shifted_sum(row, max);
    // −log p = log Σ exp(l − max) − (l_target − max): exact even where p underflows
    (sum, (sum as f64).ln() - shifted_target as f64)
}

/// Lanes of the row reductions: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

/// Largest element, in `LANES` lanes so the loop vectorises (a single running max would not).
#[inline(always)]
pub fn row_max(row: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            m[k] = if c[k] > m[k] { c[k] } else { m[k] };
        }
    }
    let mut best = m.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for &x in rest {
        best = best.max(x);
    }
    best
}

/// `row += bias` and the largest result, in `LANES` lanes.
#[inline(always)]
fn add_bias_max(row: &mut [f32], bias: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    let mut bchunks = bias.chunks_exact(LANES);
    for (c, b) in (&mut chunks).zip(&mut bchunks) {
        for k in 0..LANES {
            c[k] += b[k];
            m[k] = if c[k] > m[k] { c[k] } else { m[k] };
        }
    }
    let mut best = m.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for (x, b) in chunks.into_remainder().iter_mut().zip(bchunks.remainder()) {
        *x += b;
        best = best.max(*x);
    }
    best
}

/// `row ← exp(row − max)` and the sum of the results, in `LANES` lanes.
#[inline(always)]
pub fn exp_shifted_sum(row: &mut [f32], max: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            c[k] = exp(c[k] - max);
            acc[k] += c[k];
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for x in chunks.into_remainder() {
        *x = exp(*x - max);
        sum += *x;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss and gradient in f64, straight from the definitions.
    fn plain(
        logits: &[f32],
        bias: &[f32],
        targets: &[u32],
        mask: &[f32],
        v: usize,
        scale: f32,
    ) -> (f64, Vec<f64>) {
        let mut loss = 0.0;
        let mut grad = Vec::new();
        for ((row, &tg), &m) in logits.chunks_exact(v).zip(targets).zip(mask) {
            let l: Vec<f64> = row
                .iter()
                .zip(bias)
                .map(|(&x, &b)| x as f64 + b as f64)
                .collect();
            let z: f64 = l.iter().map(|x| x.exp()).sum();
            loss += m as f64 * (z.ln() - l[tg as usize]);
            for (j, x) in l.iter().enumerate() {
                let onehot = if j == tg as usize { 1.0 } else { 0.0 };
                grad.push((x.exp() / z - onehot) * (m * scale) as f64);
            }
        }
        (loss, grad)
    }

    #[test]
    fn fused_and_separate_passes_match_the_definitions() {
        // v not a multiple of the lanes; a masked row, a weighted one, large logits
        let v = 37;
        let targets = [3u32, 0, 36, 17];
        let mask = [1.0f32, 0.0, 0.5, 1.0];
        let logits: Vec<f32> = (0..4 * v)
            .map(|i| ((i * 7919 % 101) as f32 / 10.0) - 5.0 + if i % 50 == 0 { 60.0 } else { 0.0 })
            .collect();
        let bias: Vec<f32> = (0..v).map(|j| (j % 5) as f32 * 0.3 - 0.6).collect();
        let scale = 0.25;
        let (want_loss, want_grad) = plain(&logits, &bias, &targets, &mask, v, scale);

        let mut fused = logits.clone();
        let mut dbias = vec![1.0f32; v];
        let loss =
            softmax_ce_forward_backward(&mut fused, &bias, &targets, &mask, v, scale, &mut dbias);
        let mut apart = logits.clone();
        let loss2 = softmax_ce_forward(&mut apart, &bias, &targets, &mask, v);
        softmax_ce_backward(&mut apart, &targets, &mask, v, scale);
        for l in [loss, loss2] {
            assert!(
                (l - want_loss).abs() < 1e-4 * want_loss.abs().max(1.0),
                "{l} vs {want_loss}"
            );
        }
        for (i, w) in want_grad.iter().enumerate() {
            assert!(
                (fused[i] as f64 - w).abs() < 1e-6,
                "fused [{i}] {} vs {w}",
                fused[i]
            );
            assert!(
                (apart[i] as f64 - w).abs() < 1e-6,
                "apart [{i}] {} vs {w}",
                apart[i]
            );
        }
        for (j, &d) in dbias.iter().enumerate() {
            let want = 1.0 + (0..4).map(|r| want_grad[r * v + j]).sum::<f64>();
            assert!((d as f64 - want).abs() < 1e-6, "dbias [{j}] {d} vs {want}");
        }
    }
}
