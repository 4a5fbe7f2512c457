//! LSTM layer kernels: `lstm_forward` over T steps of a batch, `lstm_backward`
//! (backpropagation through time, adding into the weight gradients), and
//! `lstm_step` for sampling one step at a time with matrix-vector products.
//!
//! Not here: stacking layers, dropout or the state between calls (`model.rs`).
//! The math is PyTorch's `nn.LSTM` (gate order i, f, g, o; two bias vectors),
//! see the `torch.nn.LSTM` documentation page:
//!
//! ```text
//! i = σ(W_ii x + b_ii + W_hi h + b_hi)     f = σ(W_if x + b_if + W_hf h + b_hf)
//! g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = σ(W_io x + b_io + W_ho h + b_ho)
//! c' = f ⊙ c + i ⊙ g                       h' = o ⊙ tanh(c')
//! ```

use super::matmul::{matmul_a_b, matmul_a_bt, matmul_at_b};
use super::{matvec, sigmoid, CellGrads, CellWeights, Dims};

/// Pre-activation sums for all T·B rows at once, `gates = x·W_ihᵀ + b_ih + b_hh`:
/// the input half of every gate does not depend on the recurrence, so it is one
/// large GEMM instead of T small ones. Shared by the three cells.
pub(crate) fn input_projection(
    gates: &mut [f32],
    x: &[f32],
    w: &CellWeights,
    rows: usize,
    i: usize,
    gh: usize,
    hh_bias: bool,
) {
    matmul_a_bt(gates, x, w.w_ih, rows, gh, i, false);
    for row in gates.chunks_exact_mut(gh) {
        if hh_bias {
            for ((g, a), b) in row.iter_mut().zip(w.b_ih).zip(w.b_hh) {
                *g += a + b;
            }
        } else {
            for (g, a) in row.iter_mut().zip(w.b_ih) {
                *g += a;
            }
        }
    }
}

/// Column sums of `dpre: (rows, N)` added into `db: (N)`.
pub(crate) fn add_column_sums(db: &mut [f32], dpre: &[f32]) {
    for row in dpre.chunks_exact(db.len()) {
        for (d, v) in db.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// Forward over T steps.
///
/// `h_all: (T+1, B, H)` and `c_all: (T+1, B, H)`: slot 0 holds the initial
/// state on entry (zeros for training), slots 1..=T receive h_t and c_t.
/// `gates: (T, B, 4H)` receives the gates after activation, order i, f, g, o.
/// `x: (T, B, I)`. Weights per [`CellWeights`] with G = 4.
pub fn lstm_forward(
    h_all: &mut [f32],
    c_all: &mut [f32],
    gates: &mut [f32],
    x: &[f32],
    w: &CellWeights,
    d: Dims,
) {
    let Dims { t: tt, b, i, h } = d;
    let (bh, g4) = (b * h, 4 * h);
    assert_eq!(
        h_all.len(),
        (tt + 1) * bh,
        "lstm_forward: h_all is not (T+1, B, H)"
    );
    assert_eq!(
        c_all.len(),
        (tt + 1) * bh,
        "lstm_forward: c_all is not (T+1, B, H)"
    );
    assert_eq!(
        gates.len(),
        tt * b * g4,
        "lstm_forward: gates is not (T, B, 4H)"
    );
    assert_eq!(x.len(), tt * b * i, "lstm_forward: x is not (T, B, I)");
    input_projection(gates, x, w, tt * b, i, g4, true);
    for t in 0..tt {
        let (h_prev, h_next) = h_all.split_at_mut((t + 1) * bh);
        let h_prev = &h_prev[t * bh..];
        let (c_prev, c_next) = c_all.split_at_mut((t + 1) * bh);
        let c_prev = &c_prev[t * bh..];
        let gates_t = &mut gates[t * b * g4..(t + 1) * b * g4];
        // the recurrent half: one (B, H)·(H, 4H) GEMM per step
        matmul_a_bt(gates_t, h_prev, w.w_hh, b, g4, h, true);
        for bb in 0..b {
            let g_b = &mut gates_t[bb * g4..(bb + 1) * g4];
            let cp = &c_prev[bb * h..(bb + 1) * h];
            let cn = &mut c_next[bb * h..(bb + 1) * h];
            let hn = &mut h_next[bb * h..(bb + 1) * h];
            lstm_pointwise(g_b, cp, cn, hn, h);
        }
    }
}

/// Gate activations and the state update for one row: `g_b: (4H)` pre-activations in, activations out.
#[inline]
fn lstm_pointwise(g_b: &mut [f32], cp: &[f32], cn: &mut [f32], hn: &mut [f32], h: usize) {
    let (gi, rest) = g_b.split_at_mut(h);
    let (gf, rest) = rest.split_at_mut(h);
    let (gg, go) = rest.split_at_mut(h);
    for j in 0..h {
        let ig = sigmoid(gi[j]);
        let fg = sigmoid(gf[j]);
        let gg_ = gg[j].tanh();
        let og = sigmoid(go[j]);
        let c = fg * cp[j] + ig * gg_;
        cn[j] = c;
        hn[j] = og * c.tanh();
        gi[j] = ig;
        gf[j] = fg;
        gg[j] = gg_;
        go[j] = og;
    }
}

/// Backward through T steps; adds into `g` and overwrites `dx`.
///
/// `dx: (T, B, I)` receives dL/dx (skipped when `None`, for the first layer of a token model it is
/// still needed by the embedding). `dh: (T, B, H)` is dL/dh_t from above, and is consumed.
/// `gates: (T, B, 4H)` holds the forward's activations on entry and the pre-activation
/// gradients on exit (reused in place to save a buffer of the same size).
/// `h_all`, `c_all`, `x`: the forward's caches and input.
///
/// Local derivatives, with tc = tanh(c_t) recomputed from `c_all`:
/// ```text
/// dc = dc_next + dh ⊙ o ⊙ (1 − tc²)     dc_next ← dc ⊙ f
/// di = dc ⊙ g ⊙ i(1−i)   df = dc ⊙ c_{t−1} ⊙ f(1−f)   dg = dc ⊙ i ⊙ (1−g²)   do = dh ⊙ tc ⊙ o(1−o)
/// dh_{t−1} += [di df dg do] · W_hh
/// ```
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    dx: Option<&mut [f32]>,
    g: &mut CellGrads,
    dh: &mut [f32],
    gates: &mut [f32],
    h_all: &[f32],
    c_all: &[f32],
    x: &[f32],
    w: &CellWeights,
    d: Dims,
) {
    let Dims { t: tt, b, i, h } = d;
    let (bh, g4) = (b * h, 4 * h);
    assert_eq!(dh.len(), tt * bh, "lstm_backward: dh is not (T, B, H)");
    assert_eq!(
        gates.len(),
        tt * b * g4,
        "lstm_backward: gates is not (T, B, 4H)"
    );
    assert_eq!(
        h_all.len(),
        (tt + 1) * bh,
        "lstm_backward: h_all is not (T+1, B, H)"
    );
    assert_eq!(
        c_all.len(),
        (tt + 1) * bh,
        "lstm_backward: c_all is not (T+1, B, H)"
    );
    assert_eq!(x.len(), tt * b * i, "lstm_backward: x is not (T, B, I)");
    let mut dc_next = vec![0.0f32; bh];
    for t in (0..tt).rev() {
        let gates_t = &mut gates[t * b * g4..(t + 1) * b * g4];
        let c_t = &c_all[(t + 1) * bh..(t + 2) * bh];
        let c_p = &c_all[t * bh..(t + 1) * bh];
        let dh_t = &dh[t * bh..(t + 1) * bh];
        for bb in 0..b {
            let g_b = &mut gates_t[bb * g4..(bb + 1) * g4];
            let (gi, rest) = g_b.split_at_mut(h);
            let (gf, rest) = rest.split_at_mut(h);
            let (gg, go) = rest.split_at_mut(h);
            for j in 0..h {
                let k = bb * h + j;
                let (ig, fg, gg_, og) = (gi[j], gf[j], gg[j], go[j]);
                let tc = c_t[k].tanh();
                let dhv = dh_t[k];
                let dc = dc_next[k] + dhv * og * (1.0 - tc * tc);
                dc_next[k] = dc * fg;
                gi[j] = dc * gg_ * ig * (1.0 - ig);
                gf[j] = dc * c_p[k] * fg * (1.0 - fg);
                gg[j] = dc * ig * (1.0 - gg_ * gg_);
                go[j] = dhv * tc * og * (1.0 - og);
            }
        }
        if t > 0 {
            // dh_{t-1} += dpre_t · W_hh, added into the upstream gradient of step t-1
            let dh_prev = &mut dh[(t - 1) * bh..t * bh];
            matmul_a_b(dh_prev, gates_t, w.w_hh, b, h, g4, true);
        }
    }
    finish_backward(dx, g, gates, h_all, x, w, tt * b, i, h, g4, g4);
}

/// The parts of a cell's backward that cover all T·B rows at once: weight
/// gradients as one GEMM each (instead of one per step), bias sums and dx.
/// `dpre_x: (T·B, G·H)` feeds the input weights, `dpre_h` (same shape) the hidden ones.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_backward_split(
    dx: Option<&mut [f32]>,
    g: &mut CellGrads,
    dpre_x: &[f32],
    dpre_h: &[f32],
    h_all: &[f32],
    x: &[f32],
    w: &CellWeights,
    rows: usize,
    i: usize,
    h: usize,
    gh: usize,
) {
    let h_prev = &h_all[..rows * h];
    matmul_at_b(g.dw_hh, dpre_h, h_prev, gh, h, rows, true);
    matmul_at_b(g.dw_ih, dpre_x, x, gh, i, rows, true);
    add_column_sums(g.db_ih, dpre_x);
    add_column_sums(g.db_hh, dpre_h);
    if let Some(dx) = dx {
        assert_eq!(dx.len(), rows * i, "backward: dx is not (T, B, I)");
        matmul_a_b(dx, dpre_x, w.w_ih, rows, i, gh, false);
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_backward(
    dx: Option<&mut [f32]>,
    g: &mut CellGrads,
    dpre: &[f32],
    h_all: &[f32],
    x: &[f32],
    w: &CellWeights,
    rows: usize,
    i: usize,
    h: usize,
    gh: usize,
    _g4: usize,
) {
    finish_backward_split(dx, g, dpre, dpre, h_all, x, w, rows, i, h, gh);
}

/// One step for sampling: `h, c: (B, H)` updated in place, `x: (B, I)`,
/// `scratch: (4H)`. Matrix-vector products per row: at B = 1 a GEMM's packing
/// would cost more than the arithmetic.
#[allow(clippy::too_many_arguments)]
pub fn lstm_step(
    h: &mut [f32],
    c: &mut [f32],
    scratch: &mut [f32],
    x: &[f32],
    w: &CellWeights,
    b: usize,
    i: usize,
    hd: usize,
) {
    assert_eq!(h.len(), b * hd, "lstm_step: h is not (B, H)");
    assert_eq!(c.len(), b * hd, "lstm_step: c is not (B, H)");
    assert_eq!(x.len(), b * i, "lstm_step: x is not (B, I)");
    assert_eq!(scratch.len(), 4 * hd, "lstm_step: scratch is not (4H)");
    for bb in 0..b {
        let h_b = &mut h[bb * hd..(bb + 1) * hd];
        let c_b = &mut c[bb * hd..(bb + 1) * hd];
        for (s, (a, bi)) in scratch.iter_mut().zip(w.b_ih.iter().zip(w.b_hh)) {
            *s = a + bi;
        }
        matvec_add(scratch, w.w_ih, &x[bb * i..(bb + 1) * i]);
        matvec_add(scratch, w.w_hh, h_b);
        let cp = c_b.to_vec();
        lstm_pointwise(scratch, &cp, c_b, h_b, hd);
    }
}

/// `out += W·x`.
pub(crate) fn matvec_add(out: &mut [f32], w: &[f32], x: &[f32]) {
    matvec(out, w, x, true);
}
