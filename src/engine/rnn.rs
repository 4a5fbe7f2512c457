//! Elman RNN layer kernels (tanh): `rnn_forward`, `rnn_backward`, `rnn_step`.
//!
//! Not here: stacking, dropout, state between calls (`model.rs`). The math is
//! PyTorch's `nn.RNN` with `nonlinearity='tanh'`:
//!
//! ```text
//! h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
//! ```

use super::fastmath::tanh;
use super::lstm::{finish_backward_split, input_projection};
use super::matmul::{matmul_a_panels, Panels};
use super::{
    for_row_parts, rows_matvec_add, CellGrads, CellWeights, Dims, LayerInput, SharedMut, StepCell,
};

/// Forward over T steps. `h_all: (T+1, B, H)` (slot 0 the initial state),
/// `pre: (T, B, H)` scratch for the pre-activation sums, `x: (T, B, I)`.
pub fn rnn_forward(h_all: &mut [f32], pre: &mut [f32], x: LayerInput, w: &CellWeights, d: Dims) {
    let Dims { t: tt, b, i, h } = d;
    let bh = b * h;
    assert_eq!(
        h_all.len(),
        (tt + 1) * bh,
        "rnn_forward: h_all is not (T+1, B, H)"
    );
    assert_eq!(pre.len(), tt * bh, "rnn_forward: pre is not (T, B, H)");
    x.check(tt * b * i, "rnn_forward");
    input_projection(pre, x, w, tt * b, i, h, true);
    let (h_sh, p_sh) = (SharedMut::new(h_all), SharedMut::new(pre));
    let w_hh_t = Panels::of_transposed(w.w_hh, h, h);
    for_row_parts(b, |b0, b1| {
        let nb = b1 - b0;
        let rows = |t: usize| (t * b + b0) * h..(t * b + b1) * h;
        for t in 0..tt {
            // SAFETY: this worker only touches rows b0..b1 of each step
            let (h_prev, h_next, pre_t) = unsafe {
                (
                    h_sh.range(rows(t)),
                    h_sh.range(rows(t + 1)),
                    p_sh.range(rows(t)),
                )
            };
            matmul_a_panels(pre_t, h_prev, &w_hh_t, nb, true);
            tanh_into(h_next, pre_t);
        }
    });
}

/// Backward through T steps; adds into `g`, overwrites `dx`. `dh: (T, B, H)` consumed;
/// `pre: (T, B, H)` receives the pre-activation gradients `dpre = dh ⊙ (1 − h²)`
/// (h read from `h_all`), then `dh_{t−1} += dpre · W_hh`.
#[allow(clippy::too_many_arguments)]
pub fn rnn_backward(
    dx: Option<&mut [f32]>,
    g: &mut CellGrads,
    dh: &mut [f32],
    pre: &mut [f32],
    h_all: &[f32],
    x: LayerInput,
    w: &CellWeights,
    d: Dims,
) {
    let Dims { t: tt, b, i, h } = d;
    let bh = b * h;
    assert_eq!(dh.len(), tt * bh, "rnn_backward: dh is not (T, B, H)");
    assert_eq!(pre.len(), tt * bh, "rnn_backward: pre is not (T, B, H)");
    assert_eq!(
        h_all.len(),
        (tt + 1) * bh,
        "rnn_backward: h_all is not (T+1, B, H)"
    );
    let (dh_sh, p_sh) = (SharedMut::new(dh), SharedMut::new(pre));
    let w_hh = Panels::of(w.w_hh, h, h);
    for_row_parts(b, |b0, b1| {
        let nb = b1 - b0;
        let rows = |t: usize| (t * b + b0) * h..(t * b + b1) * h;
        for t in (0..tt).rev() {
            // SAFETY: this worker only touches rows b0..b1 of each step
            let (pre_t, dh_t) = unsafe { (p_sh.range(rows(t)), dh_sh.range(rows(t))) };
            let h_t = &h_all[rows(t + 1)];
            for ((p, hv), dv) in pre_t.iter_mut().zip(h_t).zip(dh_t.iter()) {
                *p = dv * (1.0 - hv * hv);
            }
            if t > 0 {
                let dh_prev = unsafe { dh_sh.range(rows(t - 1)) };
                matmul_a_panels(dh_prev, pre_t, &w_hh, nb, true);
            }
        }
    });
    finish_backward_split(dx, g, pre, pre, h_all, x, w, tt * b, i, h, h);
}

/// One step for sampling: `h: (B, H)` in place, `x: (B, I)`, `scratch: (B, H)`;
/// products as in [`super::lstm::lstm_step`].
#[allow(clippy::too_many_arguments)]
pub fn rnn_step(
    h: &mut [f32],
    scratch: &mut [f32],
    x: &[f32],
    w: &StepCell,
    b: usize,
    i: usize,
    hd: usize,
) {
    assert_eq!(h.len(), b * hd, "rnn_step: h is not (B, H)");
    assert_eq!(x.len(), b * i, "rnn_step: x is not (B, I)");
    assert_eq!(scratch.len(), b * hd, "rnn_step: scratch is not (B, H)");
    for row in scratch.chunks_exact_mut(hd) {
        for (s, (a, c)) in row.iter_mut().zip(w.b_ih.iter().zip(w.b_hh)) {
            *s = a + c;
        }
    }
    rows_matvec_add(scratch, x, w.w_ih, b);
    rows_matvec_add(scratch, h, w.w_hh, b);
    tanh_into(h, scratch);
}

crate::simd_fn! {
    /// `out = tanh(x)` element-wise.
    fn tanh_into(out: &mut [f32], x: &[f32]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = tanh(v);
        }
    }
}
