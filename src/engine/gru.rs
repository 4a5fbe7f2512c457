//! GRU layer kernels: `gru_forward`, `gru_backward` and `gru_step`.
//!
//! Not here: stacking, dropout, state between calls (`model.rs`). The math is
//! PyTorch's `nn.GRU` (gate order r, z, n; the reset gate multiplies the whole
//! hidden term of n, bias included), see the `torch.nn.GRU` documentation page:
//!
//! ```text
//! r = σ(W_ir x + b_ir + W_hr h + b_hr)     z = σ(W_iz x + b_iz + W_hz h + b_hz)
//! n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
//! h' = (1 − z) ⊙ n + z ⊙ h
//! ```

use super::fastmath::{sigmoid_slice, tanh_slice};
use super::lstm::{finish_backward_split, input_projection};
use super::matmul::{matmul_a_panels, Panels};
use super::{
    for_row_parts, rows_matvec_add, CellGrads, CellWeights, Dims, LayerInput, SharedMut, StepCell,
};

/// Forward over T steps.
///
/// `h_all: (T+1, B, H)`: slot 0 holds the initial state, slots 1..=T receive h_t.
/// `hn: (T, B, H)` receives `W_hn h + b_hn` (the backward needs it for dr).
/// `gates: (T, B, 3H)` receives r, z, n after activation. `x: (T, B, I)`.
/// `hh: (B, 3H)` is scratch for the recurrent product.
#[allow(clippy::too_many_arguments)]
pub fn gru_forward(
    h_all: &mut [f32],
    hn: &mut [f32],
    gates: &mut [f32],
    hh: &mut [f32],
    x: LayerInput,
    w: &CellWeights,
    d: Dims,
) {
    let Dims { t: tt, b, i, h } = d;
    let (bh, g3) = (b * h, 3 * h);
    assert_eq!(
        h_all.len(),
        (tt + 1) * bh,
        "gru_forward: h_all is not (T+1, B, H)"
    );
    assert_eq!(hn.len(), tt * bh, "gru_forward: hn is not (T, B, H)");
    assert_eq!(
        gates.len(),
        tt * b * g3,
        "gru_forward: gates is not (T, B, 3H)"
    );
    assert_eq!(hh.len(), b * g3, "gru_forward: hh is not (B, 3H)");
    x.check(tt * b * i, "gru_forward");
    // b_hh stays out of the input projection: its n part sits inside r ⊙ (…)
    input_projection(gates, x, w, tt * b, i, g3, false);
    let (h_sh, hn_sh, g_sh, hh_sh) = (
        SharedMut::new(h_all),
        SharedMut::new(hn),
        SharedMut::new(gates),
        SharedMut::new(hh),
    );
    let w_hh_t = Panels::of_transposed(w.w_hh, g3, h);
    for_row_parts(b, |b0, b1| {
        let nb = b1 - b0;
        let rows = |t: usize, width: usize| (t * b + b0) * width..(t * b + b1) * width;
        // SAFETY: this worker only touches rows b0..b1 of each buffer
        let hh = unsafe { hh_sh.range(rows(0, g3)) };
        for t in 0..tt {
            let (h_prev, h_next, hn_t, gates_t) = unsafe {
                (
                    h_sh.range(rows(t, h)),
                    h_sh.range(rows(t + 1, h)),
                    hn_sh.range(rows(t, h)),
                    g_sh.range(rows(t, g3)),
                )
            };
            for row in hh.chunks_exact_mut(g3) {
                row.copy_from_slice(w.b_hh);
            }
            matmul_a_panels(hh, h_prev, &w_hh_t, nb, true);
            gru_pointwise_step(gates_t, hn_t, hh, h_prev, h_next, h);
        }
    });
}

crate::simd_fn! {
    /// [`gru_pointwise`] over the B rows of one step.
    fn gru_pointwise_step(gates_t: &mut [f32], hn_t: &mut [f32], hh: &[f32], h_prev: &[f32], h_next: &mut [f32], h: usize) {
        let rows = gates_t.chunks_exact_mut(3 * h).zip(hn_t.chunks_exact_mut(h)).zip(hh.chunks_exact(3 * h)).zip(h_prev.chunks_exact(h)).zip(h_next.chunks_exact_mut(h));
        for ((((g_b, hn_b), hh_b), hp), hnext) in rows {
            gru_pointwise(g_b, hn_b, hh_b, hp, hnext, h);
        }
    }
}

/// Activations and state update for one row: `g_b: (3H)` input sums in, r z n out;
/// `hh_b: (3H)` the hidden sums (with b_hh); `hn_b: (H)` receives the n part of them.
#[inline(always)]
fn gru_pointwise(
    g_b: &mut [f32],
    hn_b: &mut [f32],
    hh_b: &[f32],
    hp: &[f32],
    hnext: &mut [f32],
    h: usize,
) {
    // in passes with one transcendental each, so every pass vectorises (see `fastmath`)
    let (rz, gn) = g_b.split_at_mut(2 * h);
    for (g, a) in rz.iter_mut().zip(&hh_b[..2 * h]) {
        *g += a;
    }
    sigmoid_slice(rz);
    let (r, z) = rz.split_at(h);
    let (r, z, gn, hn_b, hp, hnext) = (
        &r[..h],
        &z[..h],
        &mut gn[..h],
        &mut hn_b[..h],
        &hp[..h],
        &mut hnext[..h],
    );
    hn_b.copy_from_slice(&hh_b[2 * h..3 * h]);
    for j in 0..h {
        gn[j] += r[j] * hn_b[j];
    }
    tanh_slice(gn);
    for j in 0..h {
        hnext[j] = (1.0 - z[j]) * gn[j] + z[j] * hp[j];
    }
}

/// Backward through T steps; adds into `g` and overwrites `dx`.
///
/// `dh: (T, B, H)` dL/dh_t from above, consumed. `gates: (T, B, 3H)` activations in,
/// input-side pre-activation gradients out. `dgh: (T, B, 3H)` scratch for the
/// hidden-side gradients (they differ from the input side in the n rows: × r).
/// `hn`, `h_all`, `x`: the forward's caches and input.
///
/// ```text
/// dn = dh ⊙ (1−z)   dz = dh ⊙ (h_{t−1} − n)   dh_{t−1} += dh ⊙ z
/// dpre_n = dn ⊙ (1−n²)   dpre_z = dz ⊙ z(1−z)   dr = dpre_n ⊙ hn   dpre_r = dr ⊙ r(1−r)
/// input side [dpre_r, dpre_z, dpre_n]; hidden side [dpre_r, dpre_z, dpre_n ⊙ r]
/// dh_{t−1} += hidden side · W_hh
/// ```
#[allow(clippy::too_many_arguments)]
pub fn gru_backward(
    dx: Option<&mut [f32]>,
    g: &mut CellGrads,
    dh: &mut [f32],
    gates: &mut [f32],
    dgh: &mut [f32],
    hn: &[f32],
    h_all: &[f32],
    x: LayerInput,
    w: &CellWeights,
    d: Dims,
) {
    let Dims { t: tt, b, i, h } = d;
    let (bh, g3) = (b * h, 3 * h);
    assert_eq!(dh.len(), tt * bh, "gru_backward: dh is not (T, B, H)");
    assert_eq!(
        gates.len(),
        tt * b * g3,
        "gru_backward: gates is not (T, B, 3H)"
    );
    assert_eq!(
        dgh.len(),
        tt * b * g3,
        "gru_backward: dgh is not (T, B, 3H)"
    );
    assert_eq!(hn.len(), tt * bh, "gru_backward: hn is not (T, B, H)");
    assert_eq!(
        h_all.len(),
        (tt + 1) * bh,
        "gru_backward: h_all is not (T+1, B, H)"
    );
    let (dh_sh, g_sh, dgh_sh) = (
        SharedMut::new(dh),
        SharedMut::new(gates),
        SharedMut::new(dgh),
    );
    let w_hh = Panels::of(w.w_hh, g3, h);
    for_row_parts(b, |b0, b1| {
        let nb = b1 - b0;
        let rows = |t: usize, width: usize| (t * b + b0) * width..(t * b + b1) * width;
        let mut direct = vec![0.0f32; nb * h];
        for t in (0..tt).rev() {
            // SAFETY: this worker only touches rows b0..b1 of each step
            let (gates_t, dgh_t, dh_t) = unsafe {
                (
                    g_sh.range(rows(t, g3)),
                    dgh_sh.range(rows(t, g3)),
                    dh_sh.range(rows(t, h)),
                )
            };
            gru_backward_pointwise_step(
                gates_t,
                dgh_t,
                &mut direct,
                dh_t,
                &h_all[rows(t, h)],
                &hn[rows(t, h)],
                h,
            );
            if t > 0 {
                let dh_prev = unsafe { dh_sh.range(rows(t - 1, h)) };
                for (a, v) in dh_prev.iter_mut().zip(&direct) {
                    *a += v;
                }
                matmul_a_panels(dh_prev, dgh_t, &w_hh, nb, true);
            }
        }
    });
    finish_backward_split(dx, g, gates, dgh, h_all, x, w, tt * b, i, h, g3);
}

crate::simd_fn! {
    /// The pointwise part of one backward step over B' rows: `gates_t: (B', 3H)` r z n in,
    /// input-side gradients out; `dgh_t: (B', 3H)` hidden-side gradients out; `direct: (B', H)`
    /// receives dh ⊙ z (the path to h_{t−1} that skips the weights); `dh_t`, `h_p`, `hn_t: (B', H)`.
    fn gru_backward_pointwise_step(gates_t: &mut [f32], dgh_t: &mut [f32], direct: &mut [f32], dh_t: &[f32], h_p: &[f32], hn_t: &[f32], h: usize) {
        let rows = gates_t.chunks_exact_mut(3 * h).zip(dgh_t.chunks_exact_mut(3 * h)).zip(direct.chunks_exact_mut(h))
            .zip(dh_t.chunks_exact(h)).zip(h_p.chunks_exact(h)).zip(hn_t.chunks_exact(h));
        for (((((g_b, gh_b), dir), dhr), hpr), hnr) in rows {
            let (gr, rest) = g_b.split_at_mut(h);
            let (gz, gn) = rest.split_at_mut(h);
            let (ghr, rest) = gh_b.split_at_mut(h);
            let (ghz, ghn) = rest.split_at_mut(h);
            let it = gr.iter_mut().zip(gz.iter_mut()).zip(gn.iter_mut()).zip(ghr.iter_mut()).zip(ghz.iter_mut()).zip(ghn.iter_mut())
                .zip(dir.iter_mut()).zip(dhr).zip(hpr).zip(hnr);
            for (((((((((r_, z_), n_), hr), hz), hnn), dv), &dhv), &hp), &hnv) in it {
                let (r, z, n) = (*r_, *z_, *n_);
                let dn = dhv * (1.0 - z);
                let dz = dhv * (hp - n);
                *dv = dhv * z;
                let dpre_n = dn * (1.0 - n * n);
                let dpre_z = dz * z * (1.0 - z);
                let dpre_r = dpre_n * hnv * r * (1.0 - r);
                *r_ = dpre_r;
                *z_ = dpre_z;
                *n_ = dpre_n;
                *hr = dpre_r;
                *hz = dpre_z;
                *hnn = dpre_n * r;
            }
        }
    }
}

/// One step for sampling: `h: (B, H)` updated in place, `x: (B, I)`,
/// `scratch: (B, 8H)`; products as in [`super::lstm::lstm_step`].
#[allow(clippy::too_many_arguments)]
pub fn gru_step(
    h: &mut [f32],
    scratch: &mut [f32],
    x: &[f32],
    w: &StepCell,
    b: usize,
    i: usize,
    hd: usize,
) {
    assert_eq!(h.len(), b * hd, "gru_step: h is not (B, H)");
    assert_eq!(x.len(), b * i, "gru_step: x is not (B, I)");
    assert_eq!(
        scratch.len(),
        b * 8 * hd,
        "gru_step: scratch is not (B, 8H)"
    );
    let (gx, rest) = scratch.split_at_mut(b * 3 * hd);
    let (gh, rest) = rest.split_at_mut(b * 3 * hd);
    let (hn, hp) = rest.split_at_mut(b * hd);
    for row in gx.chunks_exact_mut(3 * hd) {
        row.copy_from_slice(w.b_ih);
    }
    for row in gh.chunks_exact_mut(3 * hd) {
        row.copy_from_slice(w.b_hh);
    }
    rows_matvec_add(gx, x, w.w_ih, b);
    rows_matvec_add(gh, h, w.w_hh, b);
    hp.copy_from_slice(h);
    gru_pointwise_step(gx, hn, gh, hp, h, hd);
}
