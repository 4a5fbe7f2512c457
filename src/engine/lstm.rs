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

use super::fastmath::{sigmoid_slice, tanh_slice};
use super::matmul::{matmul_a_b, matmul_a_panels, matmul_at_b, Panels};
use super::{
    for_row_parts, rows_matvec_add, CellGrads, CellWeights, Dims, LayerInput, SharedMut, StepCell,
};

/// Pre-activation sums for all T·B rows at once, `gates = x·W_ihᵀ + b_ih + b_hh`:
/// the input half of every gate does not depend on the recurrence, so it is one
/// large GEMM instead of T small ones. Shared by the three cells.
///
/// The rows are shared among the threads; each fills its rows with the bias and
/// then adds its product into them, so the bias costs no pass of its own over
/// the (T·B, G·H) result (32 MB for config L) on one thread. Given
/// [`LayerInput::Projected`], the gates hold the product already and only
/// the bias is added.
pub(crate) fn input_projection(
    gates: &mut [f32],
    x: LayerInput,
    w: &CellWeights,
    rows: usize,
    i: usize,
    gh: usize,
    hh_bias: bool,
) {
    assert_eq!(
        gates.len(),
        rows * gh,
        "input_projection: gates is not (rows, G·H)"
    );
    let bias: Vec<f32> = if hh_bias {
        w.b_ih.iter().zip(w.b_hh).map(|(a, b)| a + b).collect()
    } else {
        w.b_ih.to_vec()
    };
    let x = match x {
        LayerInput::Rows(x) => x,
        LayerInput::Projected => {
            let g_sh = SharedMut::new(gates);
            for_row_parts(rows, |r0, r1| {
                // SAFETY: each part writes only its own rows r0..r1
                let part = unsafe { g_sh.range(r0 * gh..r1 * gh) };
                for row in part.chunks_exact_mut(gh) {
                    for (g, b) in row.iter_mut().zip(&bias) {
                        *g += b;
                    }
                }
            });
            return;
        }
    };
    assert_eq!(x.len(), rows * i, "input_projection: x is not (rows, I)");
    // as panels, W_ih is copied once here, not repacked by gemm for every block of rows
    let w_ih_t = Panels::of_transposed(w.w_ih, gh, i);
    let g_sh = SharedMut::new(gates);
    for_row_parts(rows, |r0, r1| {
        // SAFETY: each part writes only its own rows r0..r1
        let part = unsafe { g_sh.range(r0 * gh..r1 * gh) };
        for row in part.chunks_exact_mut(gh) {
            row.copy_from_slice(&bias);
        }
        matmul_a_panels(part, &x[r0 * i..r1 * i], &w_ih_t, r1 - r0, true);
    });
}

/// Column sums of `dpre: (rows, N)` added into `db: (N)`, and into `db2` as
/// well when given (LSTM and RNN add the same sums to both biases: one pass
/// over the 32 MB of `dpre` instead of two). The columns are shared among the
/// threads; done on one thread, two passes were 1.3% of a config-L step.
pub(crate) fn add_column_sums(db: &mut [f32], db2: Option<&mut [f32]>, dpre: &[f32]) {
    let n = db.len();
    if n == 0 {
        return;
    }
    assert_eq!(dpre.len() % n, 0, "add_column_sums: dpre is not (rows, N)");
    if let Some(d2) = &db2 {
        assert_eq!(
            d2.len(),
            n,
            "add_column_sums: the two bias gradients differ in length"
        );
    }
    let parts = super::matmul::threads().min(n / 64).max(1);
    let width = n.div_ceil(parts);
    // columns c0.. of every row of dpre, summed into `out`
    let add_rows = |c0: usize, out: &mut [f32]| {
        for row in dpre.chunks_exact(n) {
            for (d, v) in out.iter_mut().zip(&row[c0..]) {
                *d += v;
            }
        }
    };
    let mut sums = vec![0.0f32; n];
    if parts == 1 {
        add_rows(0, &mut sums);
    } else {
        rayon::scope(|s| {
            for (p, out) in sums.chunks_mut(width).enumerate() {
                let add_rows = &add_rows;
                s.spawn(move |_| add_rows(p * width, out));
            }
        });
    }
    for d in std::iter::once(db).chain(db2) {
        for (x, v) in d.iter_mut().zip(&sums) {
            *x += v;
        }
    }
}

/// Forward over T steps.
///
/// `h_all: (T+1, B, H)` and `c_all: (T+1, B, H)`: slot 0 holds the initial
/// state on entry (zeros for training), slots 1..=T receive h_t and c_t.
/// `gates: (T, B, 4H)` receives the gates after activation, order i, f, g, o
/// (and holds the input projection on entry, given [`LayerInput::Projected`]).
/// `x: (T, B, I)`. Weights per [`CellWeights`] with G = 4.
pub fn lstm_forward(
    h_all: &mut [f32],
    c_all: &mut [f32],
    gates: &mut [f32],
    x: LayerInput,
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
    x.check(tt * b * i, "lstm_forward");
    input_projection(gates, x, w, tt * b, i, g4, true);
    // the recurrent half, one (B', H)·(H, 4H) GEMM per step for each thread's rows B'
    let (h_sh, c_sh, g_sh) = (
        SharedMut::new(h_all),
        SharedMut::new(c_all),
        SharedMut::new(gates),
    );
    let w_hh_t = Panels::of_transposed(w.w_hh, g4, h);
    for_row_parts(b, |b0, b1| {
        let nb = b1 - b0;
        for t in 0..tt {
            let rows = |t: usize, width: usize| (t * b + b0) * width..(t * b + b1) * width;
            // SAFETY: this worker only touches rows b0..b1 of each step; the ranges below are disjoint
            let (h_prev, h_next, c_prev, c_next, gates_t) = unsafe {
                (
                    h_sh.range(rows(t, h)),
                    h_sh.range(rows(t + 1, h)),
                    c_sh.range(rows(t, h)),
                    c_sh.range(rows(t + 1, h)),
                    g_sh.range(rows(t, g4)),
                )
            };
            matmul_a_panels(gates_t, h_prev, &w_hh_t, nb, true);
            lstm_pointwise_step(gates_t, c_prev, c_next, h_next, h);
        }
    });
}

crate::simd_fn! {
    /// Gate activations and the state update for one step of all B rows:
    /// `gates_t: (B, 4H)` pre-activations in, activations out; `c_prev`, `c_next`, `h_next: (B, H)`.
    fn lstm_pointwise_step(gates_t: &mut [f32], c_prev: &[f32], c_next: &mut [f32], h_next: &mut [f32], h: usize) {
        let rows = gates_t.chunks_exact_mut(4 * h).zip(c_prev.chunks_exact(h)).zip(c_next.chunks_exact_mut(h)).zip(h_next.chunks_exact_mut(h));
        for (((g_b, cp), cn), hn) in rows {
            lstm_pointwise(g_b, cp, cn, hn, h);
        }
    }
}

/// One row of [`lstm_pointwise_step`]: `g_b: (4H)`, `cp`, `cn`, `hn: (H)`.
/// In passes with one transcendental each, so every pass vectorises (see `fastmath`).
#[inline(always)]
fn lstm_pointwise(g_b: &mut [f32], cp: &[f32], cn: &mut [f32], hn: &mut [f32], h: usize) {
    let (if_, rest) = g_b.split_at_mut(2 * h);
    let (gg, go) = rest.split_at_mut(h);
    sigmoid_slice(if_);
    tanh_slice(gg);
    sigmoid_slice(go);
    let (gi, gf) = if_.split_at(h);
    let (gi, gf, gg, go, cp, cn) = (
        &gi[..h],
        &gf[..h],
        &gg[..h],
        &go[..h],
        &cp[..h],
        &mut cn[..h],
    );
    let hn = &mut hn[..h];
    for j in 0..h {
        let c = gf[j] * cp[j] + gi[j] * gg[j];
        cn[j] = c;
        hn[j] = c;
    }
    tanh_slice(hn);
    for j in 0..h {
        hn[j] *= go[j];
    }
}

/// Backward through T steps; adds into `g` and overwrites `dx`.
///
/// `dx: (T, B, I)` receives dL/dx (skipped when `None`, for the first layer of a token model it is
/// still needed by the embedding). `dh: (T, B, H)` is dL/dh_t from above, and is consumed.
/// `gates: (T, B, 4H)` holds the forward's activations on entry and the pre-activation
/// gradients on exit (reused in place to save a buffer of the same size); given
/// [`LayerInput::Projected`], dW_ih is left to the caller, who reads them there.
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
    x: LayerInput,
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
    x.check(tt * b * i, "lstm_backward");
    let (dh_sh, g_sh) = (SharedMut::new(dh), SharedMut::new(gates));
    let w_hh = Panels::of(w.w_hh, g4, h);
    for_row_parts(b, |b0, b1| {
        let nb = b1 - b0;
        let mut dc_next = vec![0.0f32; nb * h];
        let mut tc = vec![0.0f32; nb * h];
        let rows = |t: usize, width: usize| (t * b + b0) * width..(t * b + b1) * width;
        for t in (0..tt).rev() {
            // SAFETY: this worker only touches rows b0..b1 of each step
            let (gates_t, dh_t) = unsafe { (g_sh.range(rows(t, g4)), dh_sh.range(rows(t, h))) };
            let (c_t, c_p) = (&c_all[rows(t + 1, h)], &c_all[rows(t, h)]);
            lstm_backward_pointwise_step(gates_t, &mut dc_next, &mut tc, c_t, c_p, dh_t, h);
            if t > 0 {
                // dh_{t-1} += dpre_t · W_hh, added into the upstream gradient of step t-1
                let dh_prev = unsafe { dh_sh.range(rows(t - 1, h)) };
                matmul_a_panels(dh_prev, gates_t, &w_hh, nb, true);
            }
        }
    });
    finish_backward(dx, g, gates, h_all, x, w, tt * b, i, h, g4, g4);
}

crate::simd_fn! {
    /// The pointwise part of one backward step over B' rows: `gates_t: (B', 4H)` activations
    /// in, pre-activation gradients out; `dc_next: (B', H)` carried; `c_t`, `c_p`, `dh_t: (B', H)`;
    /// `tc: (B', H)` scratch for tanh(c_t).
    fn lstm_backward_pointwise_step(gates_t: &mut [f32], dc_next: &mut [f32], tc: &mut [f32], c_t: &[f32], c_p: &[f32], dh_t: &[f32], h: usize) {
        tc.copy_from_slice(c_t);
        tanh_slice(tc);
        let rows = gates_t.chunks_exact_mut(4 * h).zip(dc_next.chunks_exact_mut(h)).zip(tc.chunks_exact(h)).zip(c_p.chunks_exact(h)).zip(dh_t.chunks_exact(h));
        for ((((g_b, dcn), tcr), cp), dht) in rows {
            let (gi, rest) = g_b.split_at_mut(h);
            let (gf, rest) = rest.split_at_mut(h);
            let (gg, go) = rest.split_at_mut(h);
            let (gi, gf, gg, go) = (&mut gi[..h], &mut gf[..h], &mut gg[..h], &mut go[..h]);
            let (dcn, tcr, cp, dht) = (&mut dcn[..h], &tcr[..h], &cp[..h], &dht[..h]);
            for j in 0..h {
                let (ig, fg, gv, og) = (gi[j], gf[j], gg[j], go[j]);
                let (tcv, dhv) = (tcr[j], dht[j]);
                let dc = dcn[j] + dhv * og * (1.0 - tcv * tcv);
                dcn[j] = dc * fg;
                gi[j] = dc * gv * ig * (1.0 - ig);
                gf[j] = dc * cp[j] * fg * (1.0 - fg);
                gg[j] = dc * ig * (1.0 - gv * gv);
                go[j] = dhv * tcv * og * (1.0 - og);
            }
        }
    }
}

/// The parts of a cell's backward that cover all T·B rows at once: weight
/// gradients as one GEMM each (instead of one per step), bias sums and dx.
/// `dpre_x: (T·B, G·H)` feeds the input weights, `dpre_h` (same shape) the hidden ones.
/// Given [`LayerInput::Projected`] there is no x: dW_ih is the caller's, and dx must be `None`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_backward_split(
    dx: Option<&mut [f32]>,
    g: &mut CellGrads,
    dpre_x: &[f32],
    dpre_h: &[f32],
    h_all: &[f32],
    x: LayerInput,
    w: &CellWeights,
    rows: usize,
    i: usize,
    h: usize,
    gh: usize,
) {
    let h_prev = &h_all[..rows * h];
    matmul_at_b(g.dw_hh, dpre_h, h_prev, gh, h, rows, true);
    if let LayerInput::Rows(x) = x {
        matmul_at_b(g.dw_ih, dpre_x, x, gh, i, rows, true);
    }
    if std::ptr::eq(dpre_x, dpre_h) {
        add_column_sums(g.db_ih, Some(&mut *g.db_hh), dpre_x);
    } else {
        add_column_sums(g.db_ih, None, dpre_x);
        add_column_sums(g.db_hh, None, dpre_h);
    }
    if let Some(dx) = dx {
        assert!(
            matches!(x, LayerInput::Rows(_)),
            "backward: dx asked of a projected input"
        );
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
    x: LayerInput,
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
/// `scratch: (B, 5H)`. The products go through [`rows_matvec_add`]: per-row
/// matrix-vector products at small B, one GEMM per weight matrix above.
#[allow(clippy::too_many_arguments)]
pub fn lstm_step(
    h: &mut [f32],
    c: &mut [f32],
    scratch: &mut [f32],
    x: &[f32],
    w: &StepCell,
    b: usize,
    i: usize,
    hd: usize,
) {
    assert_eq!(h.len(), b * hd, "lstm_step: h is not (B, H)");
    assert_eq!(c.len(), b * hd, "lstm_step: c is not (B, H)");
    assert_eq!(x.len(), b * i, "lstm_step: x is not (B, I)");
    assert_eq!(
        scratch.len(),
        b * 5 * hd,
        "lstm_step: scratch is not (B, 5H)"
    );
    let (gates, cp) = scratch.split_at_mut(b * 4 * hd);
    for row in gates.chunks_exact_mut(4 * hd) {
        for (s, (a, bi)) in row.iter_mut().zip(w.b_ih.iter().zip(w.b_hh)) {
            *s = a + bi;
        }
    }
    rows_matvec_add(gates, x, w.w_ih, b);
    rows_matvec_add(gates, h, w.w_hh, b);
    cp.copy_from_slice(c);
    lstm_pointwise_step(gates, cp, c, h, hd);
}
