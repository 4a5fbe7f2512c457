//! The batch passes through the input and the recurrent layers: the
//! embedding (or dense rows), then each layer's forward, and below it the
//! backward that runs the same layers in reverse, as llm.c pairs them. The
//! kernels themselves are in `engine/`; the head on top is `head.rs`.

use std::ops::Range;

use super::acts::{Acts, LookupIndex};
use super::layout::Layout;
use super::title::{title_backward, title_forward, title_span, TitleSpan};
use super::{Cell, Input, Model, Place};
use crate::engine::dropout::{dropout_forward, dropout_in_place};
use crate::engine::embedding::{
    embedding_add, embedding_backward, embedding_forward, lookup_index, lookup_projection_backward,
    lookup_projection_forward, Lookup,
};
use crate::engine::gru::{gru_backward, gru_forward};
use crate::engine::lstm::{lstm_backward, lstm_forward};
use crate::engine::rnn::{rnn_backward, rnn_forward};
use crate::engine::{CellGrads, Dims, LayerInput};
use crate::rng::Rng;

impl Model {
    /// Runs the recurrent layers over `acts.x0`; dropout only when `rng` is given.
    pub(super) fn forward_layers(&mut self, b: usize, t: usize, mut rng: Option<&mut Rng>) {
        let cfg = &self.cfg;
        let (h, i0) = (cfg.hidden, cfg.input_width());
        let bh = b * h;
        let dropped_in = match rng.as_deref_mut() {
            Some(r) if cfg.dropout_in > 0.0 => {
                let a = &mut self.acts;
                dropout_in_place(
                    &mut a.x0[..t * b * i0],
                    &mut a.x0_mask[..t * b * i0],
                    cfg.dropout_in,
                    r,
                );
                true
            }
            _ => false,
        };
        let lookups = self.projects_lookups();
        for l in 0..cfg.layers {
            let (below, rest) = self.acts.layers.split_at_mut(l);
            let la = &mut rest[0];
            let gh = t * b * cfg.cell.gates() * h;
            let x: LayerInput = if l == 0 && lookups {
                let w_ih = &self.params[self.layout.layers[0][0].clone()];
                let tables = lookup_tables(&self.layout, &self.params, &self.acts.lookup_index);
                let g = cfg.cell.gates() * h;
                lookup_projection_forward(
                    &mut la.gates[..gh],
                    &tables,
                    w_ih,
                    i0,
                    g,
                    &mut self.acts.lookup,
                );
                add_title_gates(
                    &mut la.gates[..gh],
                    &mut self.acts.title_gates,
                    &self.acts.titles,
                    &self.acts.title_u,
                    w_ih,
                    (b, i0, g),
                );
                LayerInput::Projected
            } else if l == 0 {
                LayerInput::Rows(&self.acts.x0[..t * b * i0])
            } else {
                let hb = &below[l - 1].h[bh..(t + 1) * bh];
                match rng.as_deref_mut() {
                    Some(r) if cfg.dropout > 0.0 => {
                        dropout_forward(
                            &mut la.xin[..t * bh],
                            &mut la.mask[..t * bh],
                            hb,
                            cfg.dropout,
                            r,
                        );
                        LayerInput::Rows(&la.xin[..t * bh])
                    }
                    _ => LayerInput::Rows(hb),
                }
            };
            let i = if l == 0 { i0 } else { h };
            let d = Dims { t, b, i, h };
            let w = self.layout.cell(&self.params, l);
            match cfg.cell {
                Cell::Lstm => lstm_forward(
                    &mut la.h[..(t + 1) * bh],
                    &mut la.c[..(t + 1) * bh],
                    &mut la.gates[..gh],
                    x,
                    &w,
                    d,
                ),
                Cell::Gru => gru_forward(
                    &mut la.h[..(t + 1) * bh],
                    &mut la.hn[..t * bh],
                    &mut la.gates[..gh],
                    &mut la.extra[..3 * bh],
                    x,
                    &w,
                    d,
                ),
                Cell::Rnn => rnn_forward(&mut la.h[..(t + 1) * bh], &mut la.gates[..gh], x, &w, d),
            }
        }
        let dropped_out = match rng {
            Some(r) if cfg.dropout_out > 0.0 => {
                let a = &mut self.acts;
                let top = &a.layers[cfg.layers - 1].h[bh..(t + 1) * bh];
                dropout_forward(
                    &mut a.top[bh..(t + 1) * bh],
                    &mut a.top_mask[..t * bh],
                    top,
                    cfg.dropout_out,
                    r,
                );
                true
            }
            _ => false,
        };
        self.acts.in_dropped = dropped_in;
        self.acts.out_dropped = dropped_out;
    }

    /// Backpropagates `acts.dh` (dL/dh of the top layer, (T, B, H)) through the layers into
    /// the grads, and into the embedding for token input.
    pub(super) fn backward_layers(&mut self, b: usize, t: usize, tokens: Option<&[u32]>) {
        let cfg = self.cfg.clone();
        let (h, i0) = (cfg.hidden, cfg.input_width());
        let bh = b * h;
        let gh = t * b * cfg.cell.gates() * h;
        self.acts.dh2.resize(t * bh, 0.0);
        let lookups = tokens.is_some() && self.projects_lookups();
        if tokens.is_some() && !lookups {
            self.acts.dx0.resize(t * b * i0, 0.0);
        }
        for l in (0..cfg.layers).rev() {
            let (below, rest) = self.acts.layers.split_at_mut(l);
            let la = &mut rest[0];
            let dropped = l > 0 && cfg.dropout > 0.0;
            let x = if l == 0 && lookups {
                LayerInput::Projected
            } else if l == 0 {
                LayerInput::Rows(&self.acts.x0[..t * b * i0])
            } else if dropped {
                LayerInput::Rows(&la.xin[..t * bh])
            } else {
                LayerInput::Rows(&below[l - 1].h[bh..(t + 1) * bh])
            };
            let i = if l == 0 { i0 } else { h };
            let d = Dims { t, b, i, h };
            let w = self.layout.cell(&self.params, l);
            let r = &self.layout.layers[l];
            // split the grads vector into this layer's four tensors (they are adjacent, in order)
            let (gw, rest_g) = self.grads[r[0].start..r[3].end].split_at_mut(r[0].len());
            let (gwh, rest_g) = rest_g.split_at_mut(r[1].len());
            let (gbi, gbh) = rest_g.split_at_mut(r[2].len());
            let mut g = CellGrads {
                dw_ih: gw,
                dw_hh: gwh,
                db_ih: gbi,
                db_hh: gbh,
            };
            let dx: Option<&mut [f32]> = if l > 0 {
                Some(&mut self.acts.dh2[..t * bh])
            } else if tokens.is_some() && !lookups {
                Some(&mut self.acts.dx0[..t * b * i0])
            } else {
                None
            };
            let dh = &mut self.acts.dh[..t * bh];
            match cfg.cell {
                Cell::Lstm => lstm_backward(
                    dx,
                    &mut g,
                    dh,
                    &mut la.gates[..gh],
                    &la.h[..(t + 1) * bh],
                    &la.c[..(t + 1) * bh],
                    x,
                    &w,
                    d,
                ),
                Cell::Gru => gru_backward(
                    dx,
                    &mut g,
                    dh,
                    &mut la.gates[..gh],
                    &mut la.extra[..gh],
                    &la.hn[..t * bh],
                    &la.h[..(t + 1) * bh],
                    x,
                    &w,
                    d,
                ),
                Cell::Rnn => rnn_backward(
                    dx,
                    &mut g,
                    dh,
                    &mut la.gates[..gh],
                    &la.h[..(t + 1) * bh],
                    x,
                    &w,
                    d,
                ),
            }
            if l > 0 {
                if dropped {
                    for (v, m) in self.acts.dh2[..t * bh].iter_mut().zip(&la.mask[..t * bh]) {
                        *v *= m;
                    }
                }
                std::mem::swap(&mut self.acts.dh, &mut self.acts.dh2);
            } else if lookups {
                // the gates hold the input side's pre-activation gradients: on to
                // W_ih and the tables, each distinct row once
                let tables = lookup_tables(&self.layout, &self.params, &self.acts.lookup_index);
                let table_ranges: Vec<Range<usize>> = (self.layout.embedding.iter())
                    .chain(&self.layout.positions)
                    .cloned()
                    .collect();
                let (lo, hi) = self.grads.split_at_mut(r[0].start);
                let du = title_du_from_gates(
                    (&self.acts.titles, &self.acts.title_u),
                    &mut hi[..r[0].len()],
                    &la.gates[..gh],
                    w.w_ih,
                    b,
                    t,
                    i0,
                );
                let mut dtables = ranges_mut(lo, &table_ranges);
                lookup_projection_backward(
                    &mut hi[..r[0].len()],
                    &mut dtables,
                    &la.gates[..gh],
                    &tables,
                    w.w_ih,
                    i0,
                    cfg.cell.gates() * h,
                    &mut self.acts.lookup,
                );
                self.title_backward_all(&du);
            }
        }
        if let (Some(tokens), Some(r), false) = (tokens, &self.layout.embedding, lookups) {
            if self.acts.in_dropped {
                let n = t * b * i0;
                let Acts { dx0, x0_mask, .. } = &mut self.acts;
                for (d, m) in dx0[..n].iter_mut().zip(&x0_mask[..n]) {
                    *d *= m;
                }
            }
            embedding_backward(
                &mut self.grads[r.clone()],
                &self.acts.dx0[..t * b * i0],
                tokens,
                b,
                t,
                i0,
            );
            // x0 = token row + one row per position table: each gets the same gradient
            let dx0 = &self.acts.dx0[..t * b * i0];
            for (r, ids) in self.layout.positions.iter().zip(&self.acts.places) {
                embedding_backward(&mut self.grads[r.clone()], dx0, &ids[..b * t], b, t, i0);
            }
            // u was added to x0 from each title's reset on: du = the sum of those rows' gradients
            let mut du = vec![
                0.0f32;
                if self.layout.title.is_some() {
                    b * i0
                } else {
                    0
                }
            ];
            for (bb, span) in self.acts.titles.iter().enumerate() {
                let Some(span) = span else { continue };
                let d = &mut du[bb * i0..(bb + 1) * i0];
                for tt in span.from..t {
                    let row = &dx0[(tt * b + bb) * i0..(tt * b + bb + 1) * i0];
                    d.iter_mut().zip(row).for_each(|(d, g)| *d += g);
                }
            }
            self.title_backward_all(&du);
        }
    }

    /// The title vectors' gradients into `title.weight` and the embedding, from du (B, E).
    fn title_backward_all(&mut self, du: &[f32]) {
        let (Some(tr), Some(er)) = (self.layout.title.clone(), self.layout.embedding.clone())
        else {
            return;
        };
        let e = self.cfg.embed;
        // the embedding comes first in the layout
        let (lo, hi) = self.grads.split_at_mut(tr.start);
        let (demb, dw_t) = (&mut lo[er], &mut hi[..tr.len()]);
        let w_t = &self.params[tr];
        for (bb, span) in self.acts.titles.iter().enumerate() {
            let Some(span) = span else { continue };
            title_backward(
                dw_t,
                demb,
                &du[bb * e..(bb + 1) * e],
                &self.acts.title_mean[bb * e..(bb + 1) * e],
                w_t,
                &span.ids,
            );
        }
    }

    /// Fills `acts.x0` from token ids (B, T).
    pub(super) fn embed(&mut self, tokens: &[u32], b: usize, t: usize) {
        let r = self
            .layout
            .embedding
            .clone()
            .expect("token input needs Input::Tokens");
        let v = self.cfg.vocab as u32;
        if let Some(&bad) = tokens.iter().find(|&&id| id >= v) {
            panic!("token id {bad} is outside the vocabulary of {v} (the batch and the model's vocab disagree)");
        }
        let e = self.cfg.embed;
        let lookups = self.projects_lookups();
        self.title_vectors(tokens, b, t);
        let Acts {
            x0,
            places,
            titles,
            title_u,
            ..
        } = &mut self.acts;
        if let Some(p) = &self.cfg.positions {
            for ids in places.iter_mut() {
                ids.resize(b * t, 0);
            }
            for bb in 0..b {
                let mut place = Place::default();
                for tt in 0..t {
                    let k = bb * t + tt;
                    let rows = place.advance(self.pos_kind[tokens[k] as usize], p.size);
                    for (ids, row) in places.iter_mut().zip(rows) {
                        ids[k] = row;
                    }
                }
            }
        }
        let n_pos = self.layout.positions.len();
        if lookups {
            let a = &mut self.acts;
            a.lookup_index.resize_with(1 + n_pos, LookupIndex::default);
            let tables = self.layout.embedding.iter().chain(&self.layout.positions);
            let widest = tables.map(|r| r.len() / e).max().unwrap_or(0);
            if a.lookup_seen.len() < widest {
                a.lookup_seen.resize(widest, u32::MAX);
            }
            let columns = std::iter::once(tokens).chain(a.places.iter().map(|p| &p[..b * t]));
            for (k, ids) in columns.take(1 + n_pos).enumerate() {
                let x = &mut a.lookup_index[k];
                lookup_index(
                    ids,
                    b,
                    t,
                    &mut a.lookup_seen,
                    &mut a.lookup_slot,
                    &mut x.ids,
                    &mut x.starts,
                    &mut x.rows,
                );
            }
            return;
        }
        let x0 = &mut x0[..t * b * e];
        embedding_forward(x0, tokens, &self.params[r], b, t, e);
        for (r, ids) in self.layout.positions.iter().zip(places.iter()) {
            embedding_add(x0, &ids[..b * t], &self.params[r.clone()], b, t, e);
        }
        for (bb, span) in titles.iter().enumerate() {
            let Some(span) = span else { continue };
            let u = &title_u[bb * e..(bb + 1) * e];
            for tt in span.from..t {
                let row = &mut x0[(tt * b + bb) * e..(tt * b + bb + 1) * e];
                row.iter_mut().zip(u).for_each(|(x, u)| *x += u);
            }
        }
    }

    /// Each sequence's title (see `title.rs`), t̄ and u; none without a title vector.
    fn title_vectors(&mut self, tokens: &[u32], b: usize, t: usize) {
        let a = &mut self.acts;
        a.titles.clear();
        let (Some(tr), Some(er)) = (&self.layout.title, &self.layout.embedding) else {
            return;
        };
        let e = self.cfg.embed;
        a.title_mean.resize(b * e, 0.0);
        a.title_u.resize(b * e, 0.0);
        for bb in 0..b {
            let span = title_span(&tokens[bb * t..(bb + 1) * t], &self.pos_kind);
            let (u, mean) = (
                &mut a.title_u[bb * e..(bb + 1) * e],
                &mut a.title_mean[bb * e..(bb + 1) * e],
            );
            match &span {
                Some(s) => title_forward(
                    u,
                    mean,
                    &self.params[er.clone()],
                    &self.params[tr.clone()],
                    &s.ids,
                ),
                None => {
                    u.fill(0.0);
                    mean.fill(0.0);
                }
            }
            a.titles.push(span);
        }
    }

    /// Whether the first layer projects each distinct table row once
    /// (`engine::embedding::lookup_projection_forward`) instead of the
    /// embedded rows: for token input, unless dropout on the embedding
    /// makes every row its own.
    pub(super) fn projects_lookups(&self) -> bool {
        self.cfg.input == Input::Tokens && self.cfg.dropout_in == 0.0
    }

    /// Fills `acts.x0` from dense rows (B, T, D), transposing to time-major.
    pub(super) fn dense_input(&mut self, x: &[f32], b: usize, t: usize) {
        let dim = match self.cfg.input {
            Input::Dense { dim } => dim,
            Input::Tokens => panic!("dense input given to a token model"),
        };
        assert_eq!(
            x.len(),
            b * t * dim,
            "dense input is not (B, T, D) = ({b}, {t}, {dim})"
        );
        for bb in 0..b {
            for tt in 0..t {
                self.acts.x0[(tt * b + bb) * dim..(tt * b + bb + 1) * dim]
                    .copy_from_slice(&x[(bb * t + tt) * dim..(bb * t + tt + 1) * dim]);
            }
        }
    }
}

/// With the lookup projection, u reaches the first layer as W_ih·u, added to
/// the input side of the gates (T, B, G) from each title's reset on.
fn add_title_gates(
    gates: &mut [f32],
    title_gates: &mut Vec<f32>,
    titles: &[Option<TitleSpan>],
    title_u: &[f32],
    w_ih: &[f32],
    (b, i0, g): (usize, usize, usize),
) {
    if titles.iter().all(Option::is_none) {
        return;
    }
    let t = gates.len() / (b * g);
    title_gates.resize(b * g, 0.0);
    for (bb, span) in titles.iter().enumerate() {
        let Some(span) = span else { continue };
        let u = &title_u[bb * i0..(bb + 1) * i0];
        let wu = &mut title_gates[bb * g..(bb + 1) * g];
        for (o, row) in wu.iter_mut().zip(w_ih.chunks_exact(i0)) {
            *o = crate::engine::dot(row, u);
        }
        for tt in span.from..t {
            let row = &mut gates[(tt * b + bb) * g..(tt * b + bb + 1) * g];
            row.iter_mut().zip(&*wu).for_each(|(x, w)| *x += w);
        }
    }
}

/// The backward of [`add_title_gates`]: from the gates' input-side gradients
/// `dg` (T, B, G), S = their sum over a title's steps, `dW_ih += S ⊗ u`; returns
/// du = W_ihᵀ·S per sequence (B, E), zero for sequences without a title.
fn title_du_from_gates(
    (titles, title_u): (&[Option<TitleSpan>], &[f32]),
    dw_ih: &mut [f32],
    dg: &[f32],
    w_ih: &[f32],
    b: usize,
    t: usize,
    i0: usize,
) -> Vec<f32> {
    if titles.iter().all(Option::is_none) {
        return Vec::new();
    }
    let mut du = vec![0.0f32; b * i0];
    let g = w_ih.len() / i0;
    let mut s = vec![0.0f32; g];
    for (bb, span) in titles.iter().enumerate() {
        let Some(span) = span else { continue };
        s.fill(0.0);
        for tt in span.from..t {
            let row = &dg[(tt * b + bb) * g..(tt * b + bb + 1) * g];
            s.iter_mut().zip(row).for_each(|(s, d)| *s += d);
        }
        let u = &title_u[bb * i0..(bb + 1) * i0];
        let d = &mut du[bb * i0..(bb + 1) * i0];
        for ((&sg, w_row), dw_row) in s
            .iter()
            .zip(w_ih.chunks_exact(i0))
            .zip(dw_ih.chunks_exact_mut(i0))
        {
            for ((dv, &w), (dw, &uv)) in d.iter_mut().zip(w_row).zip(dw_row.iter_mut().zip(u)) {
                *dv += sg * w;
                *dw += sg * uv;
            }
        }
    }
    du
}

/// The first layer's lookup tables: the token embedding, then each position
/// table, with the index [`Model::embed`] built for the batch.
fn lookup_tables<'a>(
    layout: &Layout,
    params: &'a [f32],
    index: &'a [LookupIndex],
) -> Vec<Lookup<'a>> {
    let ranges = layout.embedding.iter().chain(&layout.positions);
    ranges
        .zip(index)
        .map(|(r, x)| Lookup {
            w: &params[r.clone()],
            ids: &x.ids,
            starts: &x.starts,
            rows: &x.rows,
        })
        .collect()
}

/// Disjoint ranges of `v`, in increasing order, as mutable slices.
fn ranges_mut<'a>(mut v: &'a mut [f32], ranges: &[Range<usize>]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for r in ranges {
        assert!(
            r.start >= at,
            "ranges_mut: ranges overlap or are out of order"
        );
        let (_, rest) = std::mem::take(&mut v).split_at_mut(r.start - at);
        let (this, rest) = rest.split_at_mut(r.len());
        out.push(this);
        v = rest;
        at = r.end;
    }
    out
}
