//! The output projection `y = x·Wᵀ + b` (PyTorch `nn.Linear` layout, `W: (V, H)`).
//! Not here: the softmax and loss (`softmax_ce.rs`); the model runs both in
//! chunks of rows so the (T·B, V) logits never exist all at once.

use super::matmul::{matmul_a_b, matmul_a_bt, matmul_a_panels, matmul_at_b, Panels};

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

/// `out = x·Wᵀ` with `W` given as the panels of `Wᵀ`
/// ([`Panels::of_transposed`]`(w, V, H)`), for a caller that projects many
/// chunks of rows through one weight: given `W` itself, gemm repacks all of
/// it for every chunk, which made the head's forward product (V = 6,000,
/// H = 512, 512 rows) about a fifth slower. Without the bias: the softmax
/// after it adds the bias to each row while the row is in cache
/// (`softmax_ce.rs`), which saves a pass over the whole (N, V) output.
pub fn linear_forward_panels(out: &mut [f32], x: &[f32], wt: &Panels, n: usize) {
    matmul_a_panels(out, x, wt, n, false);
}

/// Narrowest input width H at which [`linear_forward_panels`] pays for its
/// panels. One thread, 512 rows, V = 6,000, GFLOP/s panels / gemm's own
/// packing of `W`: H = 128 40 / 47, H = 256 about equal, H = 512 53 / 44.
pub const PANELS_MIN_WIDTH: usize = 256;

/// `dw += doutᵀ·x` and `dx (+)= dout·W` (`accumulate_dx`). The bias's
/// gradient, the sum of `dout`'s rows, is not taken here: the softmax that
/// makes `dout` adds each row to it while the row is in cache
/// (`softmax_ce::softmax_ce_forward_backward`), instead of a pass over all of
/// `dout` more.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    dx: &mut [f32],
    dw: &mut [f32],
    dout: &[f32],
    x: &[f32],
    w: &[f32],
    n: usize,
    h: usize,
    v: usize,
    accumulate_dx: bool,
) {
    matmul_at_b(dw, dout, x, v, h, n, true);
    matmul_a_b(dx, dout, w, n, h, v, accumulate_dx);
}
