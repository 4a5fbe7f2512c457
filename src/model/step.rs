//! Sampling, one character at a time: [`Model::step`] carries a [`State`]
//! (h, and c for LSTM, per layer) and writes the next logits, reading the
//! weights directly or through [`StepWeights`], copies laid out for speed.
//! Not here: the sampler that turns logits into characters (`write`).

use std::ops::Range;
use std::sync::OnceLock;

use super::title::title_step;
use super::{Cell, Model, Place};
use crate::engine::gru::gru_step;
use crate::engine::lstm::lstm_step;
use crate::engine::rnn::rnn_step;
use crate::engine::softmax_ce::{exp_shifted_sum, row_max, two_level_log_probs};
use crate::engine::{dot, rows_matvec_add, StepCell, StepMatrix};

/// Copies of a model's weights for sampling (see [`Model::step_weights`]),
/// each made on first use: one poem needs only the half-precision copy, many
/// side by side only the transposed one.
#[derive(Debug, Default)]
pub struct StepWeights {
    /// The weight matrices transposed to (in, out), laid out like the parameters.
    pub(super) t: OnceLock<Vec<f32>>,
    /// All parameters in half precision, kept only when every one is exact
    /// in f16 (a checkpoint stored at F16), so that reading them is lossless.
    pub(super) half: OnceLock<Option<Vec<half::f16>>>,
}

/// The carried state for [`Model::step`]: per layer h (and c for LSTM), each (batch, H).
#[derive(Clone, Debug)]
pub struct State {
    pub batch: usize,
    pub h: Vec<Vec<f32>>,
    pub c: Vec<Vec<f32>>,
    /// Per sequence, where it is in its poem (models with positions).
    pub places: Vec<Place>,
    /// Per sequence, with a title vector (see `title.rs`): the embedding rows
    /// of the characters read so far while no title has been, summed, and u,
    /// (batch, E) each; empty without one.
    title_sum: Vec<f32>,
    title_u: Vec<f32>,
    x: Vec<f32>,
    scratch: Vec<f32>,
}

impl State {
    /// Copies sequence `from_row` of `from` (a state of the same model) into
    /// row `row` of this one: the layers' h and c, the place and the title.
    pub fn copy_row(&mut self, row: usize, from: &State, from_row: usize) {
        let copy = |dst: &mut Vec<f32>, src: &Vec<f32>| {
            let w = dst.len() / self.batch;
            dst[row * w..(row + 1) * w].copy_from_slice(&src[from_row * w..(from_row + 1) * w]);
        };
        for (dst, src) in self.h.iter_mut().zip(&from.h) {
            copy(dst, src);
        }
        for (dst, src) in self.c.iter_mut().zip(&from.c) {
            copy(dst, src);
        }
        copy(&mut self.title_sum, &from.title_sum);
        copy(&mut self.title_u, &from.title_u);
        self.places[row] = from.places[from_row];
    }
}

impl Model {
    /// A zero state for `batch` sequences sampled side by side.
    pub fn new_state(&self, batch: usize) -> State {
        let (h, l) = (self.cfg.hidden, self.cfg.layers);
        let width = self.cfg.input_width().max(h);
        let titled = self.layout.title.is_some();
        State {
            batch,
            h: vec![vec![0.0; batch * h]; l],
            c: if self.cfg.cell == Cell::Lstm {
                vec![vec![0.0; batch * h]; l]
            } else {
                Vec::new()
            },
            places: vec![Place::default(); batch],
            title_sum: vec![0.0; if titled { batch * self.cfg.embed } else { 0 }],
            title_u: vec![0.0; if titled { batch * self.cfg.embed } else { 0 }],
            x: vec![0.0; batch * width],
            scratch: vec![0.0; batch * (8 * h).max(self.cfg.embed)],
        }
    }

    /// The weights as [`Model::step_with`] reads them fastest: transposed,
    /// for GEMM steps, and in half precision, for steps of fewer rows than
    /// [`crate::engine::STEP_GEMM_MIN_ROWS`] (which stream every weight from
    /// memory once per character), when that is exact. Copies made once per model (not per step), kept apart from
    /// `params` so training never updates one and not the other; pass them
    /// only to the model they were made for.
    pub fn step_weights(&self) -> StepWeights {
        StepWeights::default()
    }

    /// The parameters with every weight matrix transposed to (in, out).
    fn transposed_weights(&self) -> Vec<f32> {
        let mut t = vec![0.0f32; self.params.len()];
        let mut transpose = |r: Range<usize>, rows: usize| {
            let cols = r.len() / rows;
            let (src, dst) = (&self.params[r.clone()], &mut t[r]);
            for (j, row) in src.chunks_exact(cols).enumerate() {
                for (q, &v) in row.iter().enumerate() {
                    dst[q * rows + j] = v;
                }
            }
        };
        let gates = self.cfg.cell.gates() * self.cfg.hidden;
        for r in &self.layout.layers {
            transpose(r[0].clone(), gates);
            transpose(r[1].clone(), gates);
        }
        // tied, proj_w is the embedding: its transpose sits where it does
        transpose(self.layout.proj_w.clone(), self.cfg.vocab);
        if let Some(r) = &self.layout.bottleneck {
            transpose(r.clone(), self.cfg.embed);
        }
        t
    }

    /// The parameters in half precision if every one is exact there.
    fn half_weights(&self) -> Option<Vec<half::f16>> {
        // the slice conversions use F16C (per element, half checks the CPU every time)
        use half::slice::HalfFloatSliceExt;
        let mut half = vec![half::f16::ZERO; self.params.len()];
        half.convert_from_f32_slice(&self.params);
        let mut back = [0.0f32; 4096];
        for (h, p) in half.chunks(4096).zip(self.params.chunks(4096)) {
            let back = &mut back[..h.len()];
            h.convert_to_f32_slice(back);
            if back != p {
                return None;
            }
        }
        Some(half)
    }

    /// Layer `l`'s weights for a sampling step of `b` rows.
    fn step_cell<'a>(&'a self, wt: Option<&'a StepWeights>, b: usize, l: usize) -> StepCell<'a> {
        let r = &self.layout.layers[l];
        StepCell {
            w_ih: self.step_matrix(wt, b, r[0].clone()),
            w_hh: self.step_matrix(wt, b, r[1].clone()),
            b_ih: &self.params[r[2].clone()],
            b_hh: &self.params[r[3].clone()],
        }
    }

    /// The matrix at `r` of the parameters for a step of `b` rows, with the
    /// copy of `wt` that such a step reads (made now if this is its first use).
    fn step_matrix<'a>(
        &'a self,
        wt: Option<&'a StepWeights>,
        b: usize,
        r: Range<usize>,
    ) -> StepMatrix<'a> {
        let batched = b >= crate::engine::STEP_GEMM_MIN_ROWS;
        let (mut t, mut half) = (None, None);
        if let Some(w) = wt {
            if batched {
                t = Some(&w.t.get_or_init(|| self.transposed_weights())[r.clone()]);
            } else {
                half = w
                    .half
                    .get_or_init(|| self.half_weights())
                    .as_ref()
                    .map(|h| &h[r.clone()]);
            }
        }
        StepMatrix {
            w: &self.params[r],
            wt: t,
            half,
        }
    }

    /// One step of sampling: reads `tokens: (batch)`, advances `state`, writes `logits: (batch, vocab)`.
    /// Matrix-vector products at small batch (packing would dominate), GEMMs from
    /// [`crate::engine::STEP_GEMM_MIN_ROWS`] rows (many poems written side by side).
    pub fn step(&self, state: &mut State, tokens: &[u32], logits: &mut [f32]) {
        self.step_with(None, state, tokens, Some(logits))
    }

    /// [`Model::step`] given this model's [`Model::step_weights`], which make
    /// batched steps faster, and steps of a few rows too when the weights are
    /// exact in half precision; without `logits` (the caller knows the next
    /// tokens already) the output projection, most of a step's work, is skipped.
    pub fn step_with(
        &self,
        wt: Option<&StepWeights>,
        state: &mut State,
        tokens: &[u32],
        logits: Option<&mut [f32]>,
    ) {
        let (b, h, v) = (state.batch, self.cfg.hidden, self.cfg.vocab);
        assert_eq!(tokens.len(), b, "step: tokens is not (batch)");
        if let Some(l) = &logits {
            assert_eq!(l.len(), b * v, "step: logits is not (batch, vocab)");
        }
        let e = self.cfg.embed;
        let emb = &self.params[self
            .layout
            .embedding
            .clone()
            .expect("step needs Input::Tokens")];
        let State {
            h: hs,
            c: cs,
            places,
            title_sum,
            title_u,
            x,
            scratch,
            ..
        } = state;
        for (bb, &id) in tokens.iter().enumerate() {
            assert!(
                (id as usize) < v,
                "token id {id} is outside the vocabulary of {v}"
            );
            let xb = &mut x[bb * e..(bb + 1) * e];
            xb.copy_from_slice(&emb[id as usize * e..(id as usize + 1) * e]);
            if let Some(p) = &self.cfg.positions {
                let (kind, read) = (self.pos_kind[id as usize], places[bb].since_reset);
                let rows = places[bb].advance(kind, p.size);
                for (r, row) in self.layout.positions.iter().zip(rows) {
                    let at = r.start + row as usize * e;
                    for (xv, w) in xb.iter_mut().zip(&self.params[at..at + e]) {
                        *xv += w;
                    }
                }
                if let Some(tr) = &self.layout.title {
                    let u = &mut title_u[bb * e..(bb + 1) * e];
                    let row = &emb[id as usize * e..(id as usize + 1) * e];
                    let sum = &mut title_sum[bb * e..(bb + 1) * e];
                    let w_t = &self.params[tr.clone()];
                    title_step(sum, u, &mut places[bb], (kind, read), row, w_t);
                    xb.iter_mut().zip(&*u).for_each(|(x, u)| *x += u);
                }
            }
        }
        for l in 0..self.cfg.layers {
            let i = if l == 0 { e } else { h };
            let w = self.step_cell(wt, b, l);
            let (below, rest) = hs.split_at_mut(l);
            let input: &[f32] = if l == 0 { &x[..b * e] } else { &below[l - 1] };
            let h_l = &mut rest[0];
            match self.cfg.cell {
                Cell::Lstm => lstm_step(
                    h_l,
                    &mut cs[l],
                    &mut scratch[..b * 5 * h],
                    input,
                    &w,
                    b,
                    i,
                    h,
                ),
                Cell::Gru => gru_step(h_l, &mut scratch[..b * 8 * h], input, &w, b, i, h),
                Cell::Rnn => rnn_step(h_l, &mut scratch[..b * h], input, &w, b, i, h),
            }
        }
        let Some(logits) = logits else { return };
        let mut top: &[f32] = &hs[self.cfg.layers - 1];
        if let Some(r) = &self.layout.bottleneck {
            // the cells are done with the scratch: it holds z = W_b·h
            let z = &mut scratch[..b * e];
            z.fill(0.0);
            rows_matvec_add(z, top, self.step_matrix(wt, b, r.clone()), b);
            top = z;
        }
        let pb = &self.params[self.layout.proj_b.clone()];
        for out in logits.chunks_exact_mut(v) {
            out.copy_from_slice(pb);
        }
        let pw = self.step_matrix(wt, b, self.layout.proj_w.clone());
        rows_matvec_add(logits, top, pw, b);
        if let (Some(rw), Some(rb)) = (&self.layout.rare_w, &self.layout.rare_b) {
            let (rw, rb) = (&self.params[rw.clone()], self.params[rb.start]);
            let w = self.cfg.head_width();
            for (row, x) in logits.chunks_exact_mut(v).zip(top.chunks_exact(w)) {
                two_level_log_probs(row, rb + dot(rw, x), self.cfg.shortlist);
            }
        }
    }
}

crate::simd_fn! {
    /// Softmax of each row of `x: (N, V)` in place (vectorised exp: libm's
    /// costs 40 µs over a 6,000-character row, a sampling step's fifth).
pub fn softmax_rows(x: &mut [f32], v: usize) {
    for row in x.chunks_exact_mut(v) {
        let max = row_max(row);
        let inv = 1.0 / exp_shifted_sum(row, max);
        for p in row.iter_mut() {
            *p *= inv;
        }
    }
}
}
