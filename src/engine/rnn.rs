//! Elman RNN layer kernels (tanh): `rnn_forward`, `rnn_backward`, `rnn_step`.
//!
//! Not here: stacking, dropout, state between calls (`model.rs`). The math is
//! PyTorch's `nn.RNN` with `nonlinearity='tanh'`:
//!
//! ```text
//! h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
//! ```

use super::lstm::{finish_backward_split, input_projection, matvec_add};
use super::matmul::{matmul_a_b, matmul_a_bt};
use super::{CellGrads, CellWeights, Dims};

/// Forward over T steps. `h_all: (T+1, B, H)` (slot 0 the initial state),
/// `pre: (T, B, H)` scratch for the pre-activation sums, `x: (T, B, I)`.
pub fn rnn_forward(h_all: &mut [f32], pre: &mut [f32], x: &[f32], w: &CellWeights, d: Dims) {
    let Dims { t: tt, b, i, h } = d;
    let bh = b * h;
    assert_eq!(
        h_all.len(),
        (tt + 1) * bh,
        "rnn_forward: h_all is not (T+1, B, H)"
    );
    assert_eq!(pre.len(), tt * bh, "rnn_forward: pre is not (T, B, H)");
    assert_eq!(x.len(), tt * b * i, "rnn_forward: x is not (T, B, I)");
    input_projection(pre, x, w, tt * b, i, h, true);
    for t in 0..tt {
        let (h_prev, h_next) = h_all.split_at_mut((t + 1) * bh);
        let h_prev = &h_prev[t * bh..];
        let pre_t = &mut pre[t * bh..(t + 1) * bh];
        matmul_a_bt(pre_t, h_prev, w.w_hh, b, h, h, true);
        for (hn, p) in h_next[..bh].iter_mut().zip(pre_t.iter()) {
            *hn = p.tanh();
        }
    }
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
    x: &[f32],
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
    for t in (0..tt).rev() {
        let pre_t = &mut pre[t * bh..(t + 1) * bh];
        let h_t = &h_all[(t + 1) * bh..(t + 2) * bh];
        for ((p, hv), dv) in pre_t.iter_mut().zip(h_t).zip(&dh[t * bh..(t + 1) * bh]) {
            *p = dv * (1.0 - hv * hv);
        }
        if t > 0 {
            matmul_a_b(&mut dh[(t - 1) * bh..t * bh], pre_t, w.w_hh, b, h, h, true);
        }
    }
    finish_backward_split(dx, g, pre, pre, h_all, x, w, tt * b, i, h, h);
}

/// One step for sampling: `h: (B, H)` in place, `x: (B, I)`, `scratch: (H)`.
pub fn rnn_step(
    h: &mut [f32],
    scratch: &mut [f32],
    x: &[f32],
    w: &CellWeights,
    b: usize,
    i: usize,
    hd: usize,
) {
    assert_eq!(h.len(), b * hd, "rnn_step: h is not (B, H)");
    assert_eq!(x.len(), b * i, "rnn_step: x is not (B, I)");
    assert_eq!(scratch.len(), hd, "rnn_step: scratch is not (H)");
    for bb in 0..b {
        let h_b = &mut h[bb * hd..(bb + 1) * hd];
        for (s, (a, c)) in scratch.iter_mut().zip(w.b_ih.iter().zip(w.b_hh)) {
            *s = a + c;
        }
        matvec_add(scratch, w.w_ih, &x[bb * i..(bb + 1) * i]);
        matvec_add(scratch, w.w_hh, h_b);
        for (hv, s) in h_b.iter_mut().zip(scratch.iter()) {
            *hv = s.tanh();
        }
    }
}
