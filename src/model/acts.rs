//! The activation buffers of a batch pass ([`Acts`]), time-major and sized
//! for (B, T) on first use; they only grow, so length-bucketed batches reuse
//! them. The head's scratch types live with the head (`head.rs`).

use super::head::{HeadScratch, RareScratch, ShortHead};
use super::title::TitleSpan;
use super::{Cell, Model};
use crate::engine::embedding::LookupScratch;
use crate::engine::matmul::Panels;

/// Per-layer activations, time-major.
#[derive(Default, Clone)]
pub(super) struct LayerActs {
    /// (T+1, B, H): initial state then h_1..h_T
    pub(super) h: Vec<f32>,
    /// LSTM: the cell state, initial then c_1..c_T, (T+1, B, H); other cells: unused
    pub(super) c: Vec<f32>,
    /// GRU: W_hn h_{t-1} + b_hn, kept for the backward, (T, B, H); other cells: unused
    pub(super) hn: Vec<f32>,
    /// (T, B, G·H): gate activations, then their gradients in the backward
    pub(super) gates: Vec<f32>,
    /// GRU: hidden-side gradients (T, B, 3H) in the backward, and (B, 3H) scratch in the forward
    pub(super) extra: Vec<f32>,
    /// layers > 0 with dropout: the dropped input (T, B, H) and its mask
    pub(super) xin: Vec<f32>,
    pub(super) mask: Vec<f32>,
}

#[derive(Default, Clone)]
pub(super) struct Acts {
    /// (T, B, I0): the first layer's input (embeddings, or the transposed dense rows)
    pub(super) x0: Vec<f32>,
    pub(super) layers: Vec<LayerActs>,
    /// with `dropout_in` while training: x0's mask (T, B, E) (x0 is dropped in
    /// place); with `dropout_out`: the top layer's dropped output laid out as
    /// its h buffer ((T+1, B, H), the first B rows unused) and its mask (T, B, H)
    pub(super) in_dropped: bool,
    pub(super) out_dropped: bool,
    pub(super) x0_mask: Vec<f32>,
    pub(super) top: Vec<f32>,
    pub(super) top_mask: Vec<f32>,
    /// (T, B, H) twice: dL/dh of the layer being differentiated, and of the one below
    pub(super) dh: Vec<f32>,
    pub(super) dh2: Vec<f32>,
    /// (T, B, E): dL/dx0 for the embedding
    pub(super) dx0: Vec<f32>,
    /// per thread: the head's scratch
    pub(super) head: Vec<HeadScratch>,
    /// per thread, with a shortlist: the targets as each level sees them
    pub(super) rare: Vec<RareScratch>,
    /// with a shortlist: its rows and the rare class's, packed together
    pub(super) short: ShortHead,
    /// the projection's weight as gemm reads it, rebuilt at each call of a head
    /// at least [`PANELS_MIN_WIDTH`](crate::engine::linear::PANELS_MIN_WIDTH) wide
    pub(super) proj_t: Panels,
    /// tied head: the top layer's rows mapped to the embedding's width, and their gradient
    pub(super) z: Vec<f32>,
    pub(super) dz: Vec<f32>,
    /// time-major copies of targets and mask, (T·B)
    pub(super) targets: Vec<u32>,
    pub(super) mask: Vec<f32>,
    /// per position table, (B, T) like the inputs: each token's row in it
    pub(super) places: [Vec<u32>; 3],
    /// with a title vector (see `title.rs`), per sequence: where its title is,
    /// t̄ and u (B, E), and with the lookup projection W_ih·u (B, G)
    pub(super) titles: Vec<Option<TitleSpan>>,
    pub(super) title_mean: Vec<f32>,
    pub(super) title_u: Vec<f32>,
    pub(super) title_gates: Vec<f32>,
    /// the first layer's lookup projection (see [`Model::projects_lookups`]): per
    /// table, the tokens' first and then each position table's, which ids the
    /// batch reads and which rows read each; scratch for [`lookup_index`](crate::engine::embedding::lookup_index)
    /// (`seen` is all `u32::MAX` between calls) and for the projection
    pub(super) lookup_index: Vec<LookupIndex>,
    pub(super) lookup_seen: Vec<u32>,
    pub(super) lookup_slot: Vec<u32>,
    pub(super) lookup: LookupScratch,
}

/// One table's part of a batch's lookup projection, as [`Lookup`](crate::engine::embedding::Lookup) reads it.
#[derive(Default, Clone)]
pub(super) struct LookupIndex {
    pub(super) ids: Vec<u32>,
    pub(super) starts: Vec<u32>,
    pub(super) rows: Vec<u32>,
}

impl Model {
    /// Sizes every activation buffer for (B, T); buffers only grow, so length-bucketed batches reuse them.
    pub(super) fn prepare(&mut self, b: usize, t: usize) {
        let cfg = &self.cfg;
        let (g, h, i0) = (cfg.cell.gates(), cfg.hidden, cfg.input_width());
        let lookups = self.projects_lookups();
        let a = &mut self.acts;
        if !lookups {
            a.x0.resize(t * b * i0, 0.0);
        }
        a.layers.resize_with(cfg.layers, LayerActs::default);
        for (l, la) in a.layers.iter_mut().enumerate() {
            la.h.resize((t + 1) * b * h, 0.0);
            la.h[..b * h].fill(0.0);
            match cfg.cell {
                Cell::Lstm => {
                    la.c.resize((t + 1) * b * h, 0.0);
                    la.c[..b * h].fill(0.0);
                }
                Cell::Gru => la.hn.resize(t * b * h, 0.0),
                Cell::Rnn => {}
            }
            la.gates.resize(t * b * g * h, 0.0);
            if cfg.cell == Cell::Gru {
                la.extra.resize(t * b * g * h, 0.0);
            }
            if l > 0 && cfg.dropout > 0.0 {
                la.xin.resize(t * b * h, 0.0);
                la.mask.resize(t * b * h, 0.0);
            }
        }
        if cfg.dropout_in > 0.0 {
            a.x0_mask.resize(t * b * i0, 0.0);
        }
        if cfg.dropout_out > 0.0 {
            a.top.resize((t + 1) * b * h, 0.0);
            a.top_mask.resize(t * b * h, 0.0);
        }
        a.in_dropped = false;
        a.out_dropped = false;
    }
}
