//! Where each tensor sits in the flat parameter vector: [`param_table`]
//! (PyTorch's names and shapes, in order) and [`Layout`], its ranges as the
//! passes index them. Gradients and both Adam moments share this layout.

use std::ops::Range;

use super::config::{Input, ModelConfig};
use crate::engine::CellWeights;

/// One row per tensor: its safetensors key (PyTorch's name) and shape. Params,
/// grads and both Adam moments follow this order.
pub fn param_table(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (g, h) = (cfg.cell.gates(), cfg.hidden);
    let mut t = Vec::new();
    if cfg.input == Input::Tokens {
        t.push(("embedding.weight".to_string(), vec![cfg.vocab, cfg.embed]));
        if let Some(p) = &cfg.positions {
            for (name, rows) in p.tables() {
                t.push((name.to_string(), vec![rows, cfg.embed]));
            }
            if p.title {
                t.push(("title.weight".to_string(), vec![cfg.embed, cfg.embed]));
            }
        }
    }
    for l in 0..cfg.layers {
        let i = if l == 0 { cfg.input_width() } else { h };
        t.push((format!("rnn.weight_ih_l{l}"), vec![g * h, i]));
        t.push((format!("rnn.weight_hh_l{l}"), vec![g * h, h]));
        t.push((format!("rnn.bias_ih_l{l}"), vec![g * h]));
        t.push((format!("rnn.bias_hh_l{l}"), vec![g * h]));
    }
    if cfg.tied {
        t.push(("bottleneck.weight".to_string(), vec![cfg.embed, h]));
    } else {
        t.push(("proj.weight".to_string(), vec![cfg.vocab, h]));
    }
    t.push(("proj.bias".to_string(), vec![cfg.vocab]));
    if cfg.shortlist > 0 {
        t.push(("rare.weight".to_string(), vec![1, cfg.head_width()]));
        t.push(("rare.bias".to_string(), vec![1]));
    }
    t
}

/// Where each tensor sits in the flat vector.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) embedding: Option<Range<usize>>,
    /// line, column (and form) tables; empty without positions
    pub(super) positions: Vec<Range<usize>>,
    /// the title vector's map `title.weight` (see `title.rs`)
    pub(super) title: Option<Range<usize>>,
    /// per layer: w_ih, w_hh, b_ih, b_hh
    pub(super) layers: Vec<[Range<usize>; 4]>,
    /// tied: the map from the top layer to the embedding's width
    pub(super) bottleneck: Option<Range<usize>>,
    /// the output projection: its own tensor, or the embedding when tied
    pub(super) proj_w: Range<usize>,
    pub(super) proj_b: Range<usize>,
    /// with a shortlist: the rare class's row and bias
    pub(super) rare_w: Option<Range<usize>>,
    pub(super) rare_b: Option<Range<usize>>,
    pub(super) total: usize,
}

impl Layout {
    pub(super) fn new(cfg: &ModelConfig) -> Layout {
        let mut ranges = Vec::new();
        let mut off = 0;
        for (_, shape) in param_table(cfg) {
            let n: usize = shape.iter().product();
            ranges.push(off..off + n);
            off += n;
        }
        let mut it = ranges.into_iter();
        let embedding = if cfg.input == Input::Tokens {
            it.next()
        } else {
            None
        };
        let positions = cfg
            .positions
            .iter()
            .flat_map(|p| p.tables())
            .map(|_| it.next().unwrap())
            .collect();
        let title = cfg
            .positions
            .as_ref()
            .filter(|p| p.title)
            .map(|_| it.next().unwrap());
        let layers = (0..cfg.layers)
            .map(|_| {
                [
                    it.next().unwrap(),
                    it.next().unwrap(),
                    it.next().unwrap(),
                    it.next().unwrap(),
                ]
            })
            .collect();
        let (bottleneck, proj_w) = if cfg.tied {
            let b = it.next().unwrap();
            (Some(b), embedding.clone().unwrap())
        } else {
            (None, it.next().unwrap())
        };
        let proj_b = it.next().unwrap();
        let (rare_w, rare_b) = (it.next(), it.next());
        Layout {
            embedding,
            positions,
            title,
            layers,
            bottleneck,
            proj_w,
            proj_b,
            rare_w,
            rare_b,
            total: off,
        }
    }

    pub(super) fn cell<'a>(&self, p: &'a [f32], l: usize) -> CellWeights<'a> {
        let r = &self.layers[l];
        CellWeights {
            w_ih: &p[r[0].clone()],
            w_hh: &p[r[1].clone()],
            b_ih: &p[r[2].clone()],
            b_hh: &p[r[3].clone()],
        }
    }
}
