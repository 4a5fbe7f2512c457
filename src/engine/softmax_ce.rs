//! Softmax with masked cross-entropy, fused: the forward turns logits into
//! probabilities in place and returns the masked loss; the backward turns
//! probabilities into logit gradients in place (probability minus one-hot,
//! times the mask and the upstream scale).
//! Not here: the projection that makes the logits (`linear.rs`).

/// `logits: (N, V)` → probabilities in place. `targets: (N)`, `mask: (N)` with 1 for a real
/// token and 0 for padding. Returns Σ mask·(−log p[target]) in nats (f64 to sum many rows exactly).
pub fn softmax_ce_forward(logits: &mut [f32], targets: &[u32], mask: &[f32], v: usize) -> f64 {
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
    let mut total = 0.0f64;
    for ((row, &tg), &m) in logits.chunks_exact_mut(v).zip(targets).zip(mask) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let shifted_target = row[tg as usize] - max;
        let mut sum = 0.0f32;
        for x in row.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        let inv = 1.0 / sum;
        for x in row.iter_mut() {
            *x *= inv;
        }
        if m != 0.0 {
            // −log p = log Σ exp(l − max) − (l_target − max): exact even where p underflows
            total += ((sum as f64).ln() - shifted_target as f64) * m as f64;
        }
    }
    total
}

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
