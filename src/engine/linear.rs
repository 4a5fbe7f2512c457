//! The output projection `y = x·Wᵀ + b` (PyTorch `nn.Linear` layout, `W: (V, H)`).
//! Not here: the softmax and loss (`softmax_ce.rs`); the model runs both in
//! chunks of rows so the (T·B, V) logits never exist all at once.

use super::matmul::{matmul_a_b, matmul_a_bt, matmul_at_b};

/// `out: (N, V)`, `x: (N, H)`, `w: (V, H)`, `bias: (V)`.
pub fn linear_forward(
    out: &mut [f32],
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    n: usize,
    h: usize,
    v: usize,
) {
    for row in out.chunks_exact_mut(v) {
        row.copy_from_slice(bias);
    }
    matmul_a_bt(out, x, w, n, v, h, true);
}

/// `dw += doutᵀ·x`, `dbias += Σ_rows dout`, and `dx (+)= dout·W` (`accumulate_dx`).
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    dx: &mut [f32],
    dw: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    x: &[f32],
    w: &[f32],
    n: usize,
    h: usize,
    v: usize,
    accumulate_dx: bool,
) {
    matmul_at_b(dw, dout, x, v, h, n, true);
    for row in dout.chunks_exact(v) {
        for (d, g) in dbias.iter_mut().zip(row) {
            *d += g;
        }
    }
    matmul_a_b(dx, dout, w, n, h, v, accumulate_dx);
}
