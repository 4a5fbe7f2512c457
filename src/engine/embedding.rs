//! Token embedding: a row lookup forward, a scatter-add backward.
//! Not here: checking that ids are below V (the model does, once per batch).

/// `out: (T, B, E)` time-major; `tokens: (B, T)` row-major as batches store them; `w: (V, E)`.
pub fn embedding_forward(out: &mut [f32], tokens: &[u32], w: &[f32], b: usize, t: usize, e: usize) {
    assert_eq!(
        out.len(),
        t * b * e,
        "embedding_forward: out is not (T, B, E)"
    );
    assert_eq!(
        tokens.len(),
        b * t,
        "embedding_forward: tokens is not (B, T)"
    );
    for tt in 0..t {
        for bb in 0..b {
            let id = tokens[bb * t + tt] as usize;
            out[(tt * b + bb) * e..(tt * b + bb + 1) * e].copy_from_slice(&w[id * e..(id + 1) * e]);
        }
    }
}

/// `dw: (V, E)` += the rows of `dout: (T, B, E)` at each token's id.
pub fn embedding_backward(
    dw: &mut [f32],
    dout: &[f32],
    tokens: &[u32],
    b: usize,
    t: usize,
    e: usize,
) {
    assert_eq!(
        dout.len(),
        t * b * e,
        "embedding_backward: dout is not (T, B, E)"
    );
    assert_eq!(
        tokens.len(),
        b * t,
        "embedding_backward: tokens is not (B, T)"
    );
    for tt in 0..t {
        for bb in 0..b {
            let id = tokens[bb * t + tt] as usize;
            let src = &dout[(tt * b + bb) * e..(tt * b + bb + 1) * e];
            for (d, s) in dw[id * e..(id + 1) * e].iter_mut().zip(src) {
                *d += s;
            }
        }
    }
}

/// `out: (T, B, E)` += the rows of `w` at `ids: (B, T)`: a second table (of
/// positions) added onto the token embedding.
pub fn embedding_add(out: &mut [f32], ids: &[u32], w: &[f32], b: usize, t: usize, e: usize) {
    assert_eq!(out.len(), t * b * e, "embedding_add: out is not (T, B, E)");
    assert_eq!(ids.len(), b * t, "embedding_add: ids is not (B, T)");
    for tt in 0..t {
        for bb in 0..b {
            let id = ids[bb * t + tt] as usize;
            let dst = &mut out[(tt * b + bb) * e..(tt * b + bb + 1) * e];
            for (d, s) in dst.iter_mut().zip(&w[id * e..(id + 1) * e]) {
                *d += s;
            }
        }
    }
}

/// One table of a lookup projection (see [`lookup_projection_forward`]):
/// `w: (N, E)`, the distinct `ids` the batch reads from it, and `slot: (T·B)`,
/// for each time-major row of the layer, the index into `ids` of the row it reads.
#[derive(Clone, Copy)]
pub struct Lookup<'a> {
    pub w: &'a [f32],
    pub ids: &'a [u32],
    pub slot: &'a [u32],
}

/// The distinct ids of `ids: (B, T)` (row-major, as batches store them) in the
/// order the time-major rows first read them, into `distinct`, and each
/// time-major row's index among them, into `slot: (T·B)`. `seen: (N)` is
/// scratch that must hold `u32::MAX` everywhere on entry, and does on exit.
pub fn distinct_ids(
    ids: &[u32],
    b: usize,
    t: usize,
    seen: &mut [u32],
    distinct: &mut Vec<u32>,
    slot: &mut Vec<u32>,
) {
    assert_eq!(ids.len(), b * t, "distinct_ids: ids is not (B, T)");
    distinct.clear();
    slot.clear();
    for tt in 0..t {
        for bb in 0..b {
            let id = ids[bb * t + tt];
            let s = &mut seen[id as usize];
            if *s == u32::MAX {
                *s = distinct.len() as u32;
                distinct.push(id);
            }
            slot.push(*s);
        }
    }
    for &id in distinct.iter() {
        seen[id as usize] = u32::MAX;
    }
}

/// Per-table scratch of a lookup projection, kept from the forward for the
/// backward: each table's gathered rows `x: (U, E)`, and `p: (U, G·H)`, their
/// projections forward and their summed gradients backward; `dx: (U, E)`.
#[derive(Default, Clone)]
pub struct LookupScratch {
    x: Vec<Vec<f32>>,
    p: Vec<Vec<f32>>,
    dx: Vec<f32>,
}

/// The first layer's input projection for token input, without forming the
/// input: `gates: (T·B, G·H)` := Σ_k (w_k · W_ihᵀ)[slot_k], `W_ih: (G·H, E)`,
/// no bias (the cell adds it).
///
/// Why: the input row of a token model is a sum of table rows (the token's
/// embedding, and its position rows), so its projection is the sum of the
/// projected rows, and a batch reads far fewer distinct rows than it has
/// rows: 44% for Tang poems in batches of 32, 72% for random tokens at
/// config L. Projecting each distinct row once shrinks the input
/// projection's GEMM, and the backward's two (dW_ih and dx), by as much.
pub fn lookup_projection_forward(
    gates: &mut [f32],
    tables: &[Lookup],
    w_ih: &[f32],
    e: usize,
    gh: usize,
    s: &mut LookupScratch,
) {
    assert!(!tables.is_empty(), "lookup_projection_forward: no tables");
    let rows = tables[0].slot.len();
    assert_eq!(
        gates.len(),
        rows * gh,
        "lookup_projection_forward: gates is not (T·B, G·H)"
    );
    assert_eq!(
        w_ih.len(),
        gh * e,
        "lookup_projection_forward: w_ih is not (G·H, E)"
    );
    s.x.resize_with(tables.len(), Vec::new);
    s.p.resize_with(tables.len(), Vec::new);
    let w_t = super::matmul::Panels::of_transposed(w_ih, gh, e);
    for (k, tab) in tables.iter().enumerate() {
        assert_eq!(
            tab.slot.len(),
            rows,
            "lookup_projection_forward: tables differ in rows"
        );
        let u = tab.ids.len();
        let x = &mut s.x[k];
        x.clear();
        for &id in tab.ids {
            x.extend_from_slice(&tab.w[id as usize * e..(id as usize + 1) * e]);
        }
        s.p[k].resize(u * gh, 0.0);
        let (x, p_sh) = (&*x, super::SharedMut::new(&mut s.p[k]));
        super::for_row_parts(u, |u0, u1| {
            // SAFETY: each part writes only its own rows u0..u1
            let part = unsafe { p_sh.range(u0 * gh..u1 * gh) };
            super::matmul::matmul_a_panels(part, &x[u0 * e..u1 * e], &w_t, u1 - u0, false);
        });
    }
    let p = &s.p;
    let g_sh = super::SharedMut::new(gates);
    super::for_row_parts(rows, |r0, r1| {
        // SAFETY: each part writes only its own rows r0..r1
        let part = unsafe { g_sh.range(r0 * gh..r1 * gh) };
        for (r, row) in (r0..r1).zip(part.chunks_exact_mut(gh)) {
            for (k, tab) in tables.iter().enumerate() {
                let src = &p[k][tab.slot[r] as usize * gh..(tab.slot[r] as usize + 1) * gh];
                if k == 0 {
                    row.copy_from_slice(src);
                } else {
                    for (d, v) in row.iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
        }
    });
}

/// Backward of [`lookup_projection_forward`], after it with the same tables
/// and scratch: `dpre: (T·B, G·H)` the gradient of its output. Adds into
/// `dw_ih: (G·H, E)` and into each table's gradient `dtables[k]: (N_k, E)`.
///
/// ```text
/// D_k[u] = Σ_{r: slot_k[r] = u} dpre[r]     dW_ih += Σ_k D_kᵀ · X_k     dw_k[ids_k[u]] += (D_k · W_ih)[u]
/// ```
#[allow(clippy::too_many_arguments)]
pub fn lookup_projection_backward(
    dw_ih: &mut [f32],
    dtables: &mut [&mut [f32]],
    dpre: &[f32],
    tables: &[Lookup],
    w_ih: &[f32],
    e: usize,
    gh: usize,
    s: &mut LookupScratch,
) {
    let rows = tables[0].slot.len();
    assert_eq!(
        dpre.len(),
        rows * gh,
        "lookup_projection_backward: dpre is not (T·B, G·H)"
    );
    assert_eq!(
        dtables.len(),
        tables.len(),
        "lookup_projection_backward: one gradient per table"
    );
    assert!(
        s.x.len() >= tables.len(),
        "lookup_projection_backward: the forward did not run"
    );
    for (p, tab) in s.p.iter_mut().zip(tables) {
        p.clear();
        p.resize(tab.ids.len() * gh, 0.0);
    }
    // the sums by slot, with the columns shared among the threads: one pass
    // over dpre for all tables, and no two threads write one element
    let parts = super::matmul::threads().min(gh / 64).max(1);
    let sums: Vec<super::SharedMut> = s.p.iter_mut().map(|p| super::SharedMut::new(p)).collect();
    let add = |c0: usize, c1: usize| {
        for (r, src) in dpre.chunks_exact(gh).enumerate() {
            for (tab, sum) in tables.iter().zip(&sums) {
                let at = tab.slot[r] as usize * gh;
                // SAFETY: columns c0..c1 of every row belong to this part alone
                let dst = unsafe { sum.range(at + c0..at + c1) };
                for (d, v) in dst.iter_mut().zip(&src[c0..c1]) {
                    *d += v;
                }
            }
        }
    };
    if parts == 1 {
        add(0, gh);
    } else {
        rayon::scope(|sc| {
            for q in 0..parts {
                let add = &add;
                sc.spawn(move |_| add(gh * q / parts, gh * (q + 1) / parts));
            }
        });
    }
    for (k, tab) in tables.iter().enumerate() {
        let u = tab.ids.len();
        let (d, x) = (&s.p[k], &s.x[k]);
        super::matmul::matmul_at_b(dw_ih, d, x, gh, e, u, true);
        s.dx.resize(u * e, 0.0);
        super::matmul::matmul_a_b(&mut s.dx, d, w_ih, u, e, gh, false);
        let dt = &mut *dtables[k];
        for (&id, g) in tab.ids.iter().zip(s.dx.chunks_exact(e)) {
            for (a, v) in dt[id as usize * e..(id as usize + 1) * e].iter_mut().zip(g) {
                *a += v;
            }
        }
    }
}
