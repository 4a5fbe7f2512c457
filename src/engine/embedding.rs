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
/// `w: (N, E)`; the distinct `ids` the batch reads from it; and, for the
/// u-th of them, the time-major rows of the layer that read it:
/// `rows[starts[u]..starts[u + 1]]`.
#[derive(Clone, Copy)]
pub struct Lookup<'a> {
    pub w: &'a [f32],
    pub ids: &'a [u32],
    pub starts: &'a [u32],
    pub rows: &'a [u32],
}

impl Lookup<'_> {
    fn rows_of(&self, u: usize) -> &[u32] {
        &self.rows[self.starts[u] as usize..self.starts[u + 1] as usize]
    }
}

/// Fills the index of a [`Lookup`] from `ids: (B, T)` (row-major, as batches
/// store them): the distinct ids in the order the time-major rows first read
/// them, and the rows of each, grouped. `seen: (N)` is scratch that must hold
/// `u32::MAX` everywhere on entry, and does on exit; `slot: (T·B)` scratch.
#[allow(clippy::too_many_arguments)]
pub fn lookup_index(
    ids: &[u32],
    b: usize,
    t: usize,
    seen: &mut [u32],
    slot: &mut Vec<u32>,
    distinct: &mut Vec<u32>,
    starts: &mut Vec<u32>,
    rows: &mut Vec<u32>,
) {
    assert_eq!(ids.len(), b * t, "lookup_index: ids is not (B, T)");
    distinct.clear();
    slot.clear();
    starts.clear();
    for tt in 0..t {
        for bb in 0..b {
            let id = ids[bb * t + tt];
            let s = &mut seen[id as usize];
            if *s == u32::MAX {
                *s = distinct.len() as u32;
                distinct.push(id);
                starts.push(0);
            }
            starts[*s as usize] += 1;
            slot.push(*s);
        }
    }
    for &id in distinct.iter() {
        seen[id as usize] = u32::MAX;
    }
    // counts to starts, then each row into its group
    let mut at = 0;
    for s in starts.iter_mut() {
        (*s, at) = (at, at + *s);
    }
    starts.push(at);
    rows.clear();
    rows.resize(b * t, 0);
    let mut fill = starts.clone();
    for (r, &s) in slot.iter().enumerate() {
        rows[fill[s as usize] as usize] = r as u32;
        fill[s as usize] += 1;
    }
}

/// Distinct rows projected at once: bounds the scratch at this many rows of
/// G·H floats (4 MB for config L) while each GEMM stays large.
const LOOKUP_CHUNK: usize = 512;

/// Scratch of a lookup projection, one chunk of distinct rows at a time: the
/// gathered table rows `x: (chunk, E)`, their projections (forward) or
/// summed gradients (backward) `p: (chunk, G·H)`, and `dx: (chunk, E)`.
#[derive(Default, Clone)]
pub struct LookupScratch {
    x: Vec<f32>,
    p: Vec<f32>,
    dx: Vec<f32>,
}

/// The distinct ids `u0..u1` of `tab` and their rows, gathered into `x: ((u1 − u0), E)`.
fn gather_ids(x: &mut Vec<f32>, tab: &Lookup, u0: usize, u1: usize, e: usize) {
    x.clear();
    for &id in &tab.ids[u0..u1] {
        x.extend_from_slice(&tab.w[id as usize * e..(id as usize + 1) * e]);
    }
}

/// The first layer's input projection for token input, without forming the
/// input: `gates: (T·B, G·H)` := Σ_k (w_k · W_ihᵀ)[the row's id in table k],
/// `W_ih: (G·H, E)`, no bias (the cell adds it).
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
    let n_rows = tables[0].rows.len();
    assert_eq!(
        gates.len(),
        n_rows * gh,
        "lookup_projection_forward: gates is not (T·B, G·H)"
    );
    assert_eq!(
        w_ih.len(),
        gh * e,
        "lookup_projection_forward: w_ih is not (G·H, E)"
    );
    let w_t = super::matmul::Panels::of_transposed(w_ih, gh, e);
    let g_sh = super::SharedMut::new(gates);
    for (k, tab) in tables.iter().enumerate() {
        assert_eq!(
            tab.rows.len(),
            n_rows,
            "lookup_projection_forward: tables differ in rows"
        );
        for u0 in (0..tab.ids.len()).step_by(LOOKUP_CHUNK) {
            let u1 = (u0 + LOOKUP_CHUNK).min(tab.ids.len());
            gather_ids(&mut s.x, tab, u0, u1, e);
            s.p.resize((u1 - u0) * gh, 0.0);
            let (x, p_sh) = (&s.x, super::SharedMut::new(&mut s.p[..(u1 - u0) * gh]));
            super::for_row_parts(u1 - u0, |a, b| {
                // SAFETY: each part writes only its own rows a..b
                let part = unsafe { p_sh.range(a * gh..b * gh) };
                super::matmul::matmul_a_panels(part, &x[a * e..b * e], &w_t, b - a, false);
            });
            let p = &s.p;
            // each row reads one id of a table: the ids' rows never overlap
            super::for_row_parts(u1 - u0, |a, b| {
                for u in a..b {
                    let src = &p[u * gh..(u + 1) * gh];
                    for &r in tab.rows_of(u0 + u) {
                        let r = r as usize;
                        // SAFETY: row r reads id u0 + u alone in this table
                        let row = unsafe { g_sh.range(r * gh..(r + 1) * gh) };
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
    }
}

/// Backward of [`lookup_projection_forward`], with the same tables:
/// `dpre: (T·B, G·H)` the gradient of its output. Adds into `dw_ih: (G·H, E)`
/// and into each table's gradient `dtables[k]: (N_k, E)`.
///
/// ```text
/// D_k[u] = Σ_{rows r reading id u of table k} dpre[r]
/// dW_ih += Σ_k D_kᵀ · X_k     dw_k[id u] += (D_k · W_ih)[u]     (X_k: the table rows read)
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
    let n_rows = tables[0].rows.len();
    assert_eq!(
        dpre.len(),
        n_rows * gh,
        "lookup_projection_backward: dpre is not (T·B, G·H)"
    );
    assert_eq!(
        dtables.len(),
        tables.len(),
        "lookup_projection_backward: one gradient per table"
    );
    for (tab, dt) in tables.iter().zip(dtables.iter_mut()) {
        for u0 in (0..tab.ids.len()).step_by(LOOKUP_CHUNK) {
            let (u1, n) = {
                let u1 = (u0 + LOOKUP_CHUNK).min(tab.ids.len());
                (u1, u1 - u0)
            };
            s.p.resize(n * gh, 0.0);
            let p_sh = super::SharedMut::new(&mut s.p[..n * gh]);
            super::for_row_parts(n, |a, b| {
                for u in a..b {
                    // SAFETY: each part sums into its own ids' rows a..b
                    let sum = unsafe { p_sh.range(u * gh..(u + 1) * gh) };
                    sum.fill(0.0);
                    for &r in tab.rows_of(u0 + u) {
                        let r = r as usize;
                        for (d, v) in sum.iter_mut().zip(&dpre[r * gh..(r + 1) * gh]) {
                            *d += v;
                        }
                    }
                }
            });
            gather_ids(&mut s.x, tab, u0, u1, e);
            super::matmul::matmul_at_b(dw_ih, &s.p[..n * gh], &s.x, gh, e, n, true);
            s.dx.resize(n * e, 0.0);
            super::matmul::matmul_a_b(&mut s.dx, &s.p[..n * gh], w_ih, n, e, gh, false);
            for (&id, g) in tab.ids[u0..u1].iter().zip(s.dx.chunks_exact(e)) {
                let dst = &mut dt[id as usize * e..(id as usize + 1) * e];
                for (a, v) in dst.iter_mut().zip(g) {
                    *a += v;
                }
            }
        }
    }
}
