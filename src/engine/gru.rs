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

use super::lstm::{finish_backward_split, input_projection, matvec_add};
use super::matmul::{matmul_a_b, matmul_a_bt};
use super::{sigmoid, CellGrads, CellWeights, Dims};

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
    x: &[f32],
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
    assert_eq!(x.len(), tt * b * i, "gru_forward: x is not (T, B, I)");
    // b_hh stays out of the input projection: its n part sits inside r ⊙ (…)
    input_projection(gates, x, w, tt * b, i, g3, false);
    for t in 0..tt {
        let (h_prev, h_next) = h_all.split_at_mut((t + 1) * bh);
        let h_prev = &h_prev[t * bh..];
        for row in hh.chunks_exact_mut(g3) {
            row.copy_from_slice(w.b_hh);
        }
        matmul_a_bt(hh, h_prev, w.w_hh, b, g3, h, true);
        let gates_t = &mut gates[t * b * g3..(t + 1) * b * g3];
        let hn_t = &mut hn[t * bh..(t + 1) * bh];
        for bb in 0..b {
            gru_pointwise(
                &mut gates_t[bb * g3..(bb + 1) * g3],
                &mut hn_t[bb * h..(bb + 1) * h],
                &hh[bb * g3..(bb + 1) * g3],
                &h_prev[bb * h..(bb + 1) * h],
                &mut h_next[bb * h..(bb + 1) * h],
                h,
            );
        }
    }
}

/// Activations and state update for one row: `g_b: (3H)` input sums in, r z n out;
/// `hh_b: (3H)` the hidden sums (with b_hh); `hn_b: (H)` receives the n part of them.
#[inline]
fn gru_pointwise(
    g_b: &mut [f32],
    hn_b: &mut [f32],
    hh_b: &[f32],
    hp: &[f32],
    hnext: &mut [f32],
    h: usize,
) {
    let (gr, rest) = g_b.split_at_mut(h);
    let (gz, gn) = rest.split_at_mut(h);
    for j in 0..h {
        let r = sigmoid(gr[j] + hh_b[j]);
        let z = sigmoid(gz[j] + hh_b[h + j]);
        let hnv = hh_b[2 * h + j];
        let n = (gn[j] + r * hnv).tanh();
        hnext[j] = (1.0 - z) * n + z * hp[j];
        gr[j] = r;
        gz[j] = z;
        gn[j] = n;
        hn_b[j] = hnv;
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
    x: &[f32],
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
    for t in (0..tt).rev() {
        let gates_t = &mut gates[t * b * g3..(t + 1) * b * g3];
        let dgh_t = &mut dgh[t * b * g3..(t + 1) * b * g3];
        let h_p = &h_all[t * bh..(t + 1) * bh];
        let (dh_before, dh_rest) = dh.split_at_mut(t * bh);
        let dh_t = &dh_rest[..bh];
        let dh_prev = if t > 0 {
            Some(&mut dh_before[(t - 1) * bh..])
        } else {
            None
        };
        let mut direct = vec![0.0f32; if t > 0 { bh } else { 0 }];
        for bb in 0..b {
            let g_b = &mut gates_t[bb * g3..(bb + 1) * g3];
            let gh_b = &mut dgh_t[bb * g3..(bb + 1) * g3];
            for j in 0..h {
                let k = bb * h + j;
                let (r, z, n) = (g_b[j], g_b[h + j], g_b[2 * h + j]);
                let dhv = dh_t[k];
                let dn = dhv * (1.0 - z);
                let dz = dhv * (h_p[k] - n);
                if t > 0 {
                    direct[k] = dhv * z;
                }
                let dpre_n = dn * (1.0 - n * n);
                let dpre_z = dz * z * (1.0 - z);
                let dr = dpre_n * hn[t * bh + k];
                let dpre_r = dr * r * (1.0 - r);
                g_b[j] = dpre_r;
                g_b[h + j] = dpre_z;
                g_b[2 * h + j] = dpre_n;
                gh_b[j] = dpre_r;
                gh_b[h + j] = dpre_z;
                gh_b[2 * h + j] = dpre_n * r;
            }
        }
        if let Some(dh_prev) = dh_prev {
            for (a, v) in dh_prev.iter_mut().zip(&direct) {
                *a += v;
            }
            matmul_a_b(dh_prev, dgh_t, w.w_hh, b, h, g3, true);
        }
    }
    finish_backward_split(dx, g, gates, dgh, h_all, x, w, tt * b, i, h, g3);
}

/// One step for sampling: `h: (B, H)` updated in place, `x: (B, I)`, `scratch: (6H)`.
#[allow(clippy::too_many_arguments)]
pub fn gru_step(
    h: &mut [f32],
    scratch: &mut [f32],
    x: &[f32],
    w: &CellWeights,
    b: usize,
    i: usize,
    hd: usize,
) {
    assert_eq!(h.len(), b * hd, "gru_step: h is not (B, H)");
    assert_eq!(x.len(), b * i, "gru_step: x is not (B, I)");
    assert_eq!(scratch.len(), 7 * hd, "gru_step: scratch is not (7H)");
    let (gx, rest) = scratch.split_at_mut(3 * hd);
    let (gh, rest) = rest.split_at_mut(3 * hd);
    for bb in 0..b {
        let h_b = &mut h[bb * hd..(bb + 1) * hd];
        gx.copy_from_slice(w.b_ih);
        matvec_add(gx, w.w_ih, &x[bb * i..(bb + 1) * i]);
        gh.copy_from_slice(w.b_hh);
        matvec_add(gh, w.w_hh, h_b);
        let hp = h_b.to_vec();
        gru_pointwise(gx, rest, gh, &hp, h_b, hd);
    }
}
