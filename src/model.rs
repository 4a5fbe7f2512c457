//! The model: input (token embedding or dense rows) → L recurrent layers
//! (RNN, GRU or LSTM, each with its own weights, dropout between them) → a
//! linear head with softmax cross-entropy, either at every step (the poem
//! language model) or at the last step only (the MNIST classifier).
//!
//! All parameters live in one flat `Vec<f32>` laid out by [`param_table`]
//! (PyTorch's names and shapes), gradients in a second one of the same layout,
//! so the optimizer is one loop and a checkpoint is the table plus the vector.
//! Activations are sized on first use and grow when a batch needs more.
//! Not here: the kernels themselves (`engine/`), the optimizer (`optim.rs`),
//! checkpoints and the training loop (`checkpoint.rs`, `train.rs`).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::engine::dropout::{dropout_forward, dropout_in_place};
use crate::engine::embedding::{
    embedding_add, embedding_backward, embedding_forward, lookup_index, lookup_projection_backward,
    lookup_projection_forward, Lookup, LookupScratch,
};
use crate::engine::gru::{gru_backward, gru_forward, gru_step};
use crate::engine::linear::{
    linear_backward, linear_forward, linear_forward_panels, PANELS_MIN_WIDTH,
};
use crate::engine::lstm::{lstm_backward, lstm_forward, lstm_step};
use crate::engine::matmul::{matmul_a_b, matmul_a_bt, matmul_at_b, Panels};
use crate::engine::rnn::{rnn_backward, rnn_forward, rnn_step};
use crate::engine::softmax_ce::{
    exp_shifted_sum, row_max, softmax_ce_forward, softmax_ce_forward_backward, two_level_log_probs,
};
use crate::engine::{
    dot, rows_matvec_add, CellGrads, CellWeights, Dims, LayerInput, SharedMut, StepCell, StepMatrix,
};
use crate::rng::Rng;

/// The recurrent cell.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    Rnn,
    Gru,
    Lstm,
}

impl Cell {
    /// Gate rows per hidden unit (G in the legend): RNN 1, GRU 3 (r, z, n), LSTM 4 (i, f, g, o).
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cell::Rnn => "rnn",
            Cell::Gru => "gru",
            Cell::Lstm => "lstm",
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Cell {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Cell, ModelError> {
        match s.to_ascii_lowercase().as_str() {
            "rnn" => Ok(Cell::Rnn),
            "gru" => Ok(Cell::Gru),
            "lstm" => Ok(Cell::Lstm),
            _ => Err(ModelError::UnknownCell(s.to_string())),
        }
    }
}

/// What the first recurrent layer reads at each step.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Input {
    /// Token ids below `vocab`, looked up in `embedding.weight: (vocab, embed)`.
    Tokens,
    /// `dim` floats per step, read directly by the first layer's `weight_ih_l0: (G·H, dim)`
    /// (that matrix is the dense projection; `embed` is unused).
    Dense { dim: usize },
}

impl std::fmt::Display for Input {
    /// What one step reads, for messages: "token ids" or "28 values".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Tokens => f.write_str("token ids"),
            Input::Dense { dim } => write!(f, "{dim} values"),
        }
    }
}

/// Where the softmax head reads the top layer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// A distribution over `vocab` tokens at every step (language model).
    EveryStep,
    /// A distribution over `vocab` classes after the last step (sequence classifier).
    LastStep,
}

/// The architecture. Everything needed to rebuild the parameter table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Recurrent cell of every layer.
    pub cell: Cell,
    /// Number of stacked recurrent layers (L), each with its own weights.
    pub layers: usize,
    /// Embedding width (E) for token input; ignored for dense input.
    pub embed: usize,
    /// Hidden units per layer (H).
    pub hidden: usize,
    /// Vocabulary size (V), or the number of classes for a last-step head.
    pub vocab: usize,
    /// Dropout probability on each layer's output that feeds another layer (PyTorch's `dropout=`).
    pub dropout: f32,
    /// Dropout probability on the first layer's input (the embedding, with
    /// its position rows) and on the top layer's output (the rows the head
    /// reads): the two sites `dropout` leaves out, which Zaremba et al.'s
    /// regularised LSTM and PyTorch's word-language-model example drop too.
    /// Token input and every-step head only; 0 (the default, and checkpoints
    /// from before they existed) = none.
    #[serde(default, skip_serializing_if = "is_zero_f32")]
    pub dropout_in: f32,
    #[serde(default, skip_serializing_if = "is_zero_f32")]
    pub dropout_out: f32,
    pub input: Input,
    pub head: Head,
    /// Line, column (and form) embeddings added to each token's (token input
    /// only); absent in checkpoints from before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<Positions>,
    /// The output projection is the embedding itself (`embedding.weight`,
    /// V × E), reached from the top layer through `bottleneck.weight`
    /// (E × H, no bias): logits = E·(W_b·h) + b. Token input and every-step
    /// head only. A character's row is then learned from both where it is
    /// read and where it is predicted, and the head's GEMMs shrink from H to
    /// E columns. Absent (false) in checkpoints from before it existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tied: bool,
    /// Two-level softmax: ids below `shortlist` (the commonest characters, as
    /// the vocabulary orders them by frequency) are predicted directly, the
    /// rest through one more class, "rare" (`rare.weight`, `rare.bias`), and
    /// then among themselves: p(y) = p(rare)·p(y | rare), still a distribution
    /// over the whole vocabulary. Training takes the rare characters' logits
    /// only for the targets that are rare (14% of Tang's tokens past the 1,000
    /// commonest of 6,300), so the head does about a quarter of the work of
    /// one softmax. Token input and every-step head only; 0 (the default, and
    /// checkpoints from before it existed) = one softmax over all ids.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shortlist: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_f32(p: &f32) -> bool {
    *p == 0.0
}

/// Where each input token sits in the poem, as learned embeddings added to
/// the token's: the line it is on, how many characters of that line have been
/// read, and (with `forms`) the form the poem was asked for, all from the text
/// read so far (so the model still sees nothing of what comes next). A
/// recurrent net can count, and can carry a form tag read at the start, but
/// learns both poorly from a few thousand 8-line poems among longer and
/// shorter ones; told them at every step, it ends lines and poems where the
/// form does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Positions {
    /// Rows of the line and column tables; lines and columns from `size − 1` on share the last row.
    pub size: usize,
    /// Token ids that end a line (，。！？；): the line count goes up, the column back to 0.
    pub line_ends: Vec<u32>,
    /// Token ids that are not characters of a line (PAD, BEGIN, END, form tags): they move neither count.
    pub silent: Vec<u32>,
    /// Form tag ids: reading `forms[k]` selects row k + 1 of the form table
    /// for every later step (row 0: no form asked for). Empty: no form table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forms: Vec<u32>,
    /// Token ids that put the place back to line 0, column 0 (the form is
    /// kept). A model trained with titles lists BEGIN here: it reads a
    /// title's characters, then BEGIN, then the poem, whose first line starts
    /// afresh (see `crate::title`). On a sequence that starts with BEGIN a
    /// reset changes nothing, so older models read every poem as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resets: Vec<u32>,
}

impl Positions {
    /// The tables' names and rows: line, column, and form when there are forms.
    fn tables(&self) -> Vec<(&'static str, usize)> {
        let mut t = vec![
            ("line_embedding.weight", self.size),
            ("column_embedding.weight", self.size),
        ];
        if !self.forms.is_empty() {
            t.push(("form_embedding.weight", self.forms.len() + 1));
        }
        t
    }
}

/// Line, column and form of the tokens read so far in one sequence (see [`Positions`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub line: u32,
    pub col: u32,
    /// Row of the form table: 0 until a form tag is read.
    pub form: u32,
}

/// What a token does to the [`Place`]: a character moves the column, a line
/// end moves the line, a silent token nothing, a reset puts line and column
/// back to 0, form tag k (kind `POS_FORM + k`) sets the form.
const POS_CHAR: u8 = 0;
const POS_LINE_END: u8 = 1;
const POS_SILENT: u8 = 2;
const POS_RESET: u8 = 3;
const POS_FORM: u8 = 4;

impl Place {
    /// The place after reading a token of `kind`, and its rows in the line,
    /// column and form tables.
    fn advance(&mut self, kind: u8, size: usize) -> [u32; 3] {
        match kind {
            POS_LINE_END => {
                self.line += 1;
                self.col = 0;
            }
            POS_CHAR => self.col += 1,
            POS_SILENT => {}
            POS_RESET => {
                self.line = 0;
                self.col = 0;
            }
            form => self.form = (form - POS_FORM) as u32 + 1,
        }
        let last = size as u32 - 1;
        [self.line.min(last), self.col.min(last), self.form]
    }
}

impl Default for ModelConfig {
    /// Config S: the original's 2×LSTM-128 over a 6,000-character vocabulary.
    fn default() -> ModelConfig {
        ModelConfig {
            cell: Cell::Lstm,
            layers: 2,
            embed: 128,
            hidden: 128,
            vocab: 6000,
            dropout: 0.0,
            dropout_in: 0.0,
            dropout_out: 0.0,
            input: Input::Tokens,
            head: Head::EveryStep,
            positions: None,
            tied: false,
            shortlist: 0,
        }
    }
}

impl ModelConfig {
    /// Width of the first layer's input: E for tokens, `dim` for dense rows.
    pub fn input_width(&self) -> usize {
        match self.input {
            Input::Tokens => self.embed,
            Input::Dense { dim } => dim,
        }
    }

    /// Width of the rows the output projection reads: E when tied, else H.
    pub fn head_width(&self) -> usize {
        if self.tied {
            self.embed
        } else {
            self.hidden
        }
    }

    /// An upper bound on [`Self::num_params`] in checked arithmetic, without
    /// building the table: `None` when it overflows. Called before any other
    /// size is trusted.
    pub fn checked_num_params(&self) -> Option<usize> {
        let (g, h) = (self.cell.gates(), self.hidden);
        let mut n = 0usize;
        let add = |n: usize, dims: &[usize]| -> Option<usize> {
            n.checked_add(dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?)
        };
        if self.input == Input::Tokens {
            n = add(n, &[self.vocab, self.embed])?;
            if let Some(p) = &self.positions {
                let rows = p.size.checked_mul(2)?.checked_add(p.forms.len() + 1)?;
                n = add(n, &[rows, self.embed])?;
            }
        }
        let gh = g.checked_mul(h)?;
        let per_layer = |i: usize| gh.checked_mul(i.checked_add(h)?.checked_add(2)?);
        if self.layers > 0 {
            n = n.checked_add(per_layer(self.input_width())?)?;
            n = n.checked_add(per_layer(h)?.checked_mul(self.layers - 1)?)?;
        }
        n = add(n, &[self.head_width().max(self.embed), h])?;
        n = add(n, &[self.vocab, 2])?;
        add(n, &[self.head_width(), 1])
    }

    /// Total number of parameters (the length of `Model::params`).
    pub fn num_params(&self) -> usize {
        param_table(self)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Multiply-adds per token of a forward pass (for FLOP counts: ×2 for FLOPs, ×3 for fwd+bwd).
    /// With a shortlist, an upper bound: the head is counted as one softmax.
    pub fn macs_per_token(&self) -> usize {
        let (g, h) = (self.cell.gates(), self.hidden);
        let rec: usize = (0..self.layers)
            .map(|l| g * h * (if l == 0 { self.input_width() } else { h } + h))
            .sum();
        let head = match self.head {
            Head::EveryStep if self.tied => self.vocab * self.embed + self.embed * h,
            Head::EveryStep => self.vocab * h,
            Head::LastStep => 0,
        };
        rec + head
    }

    /// Checks the sizes are usable (all positive, dropout in [0, 1)).
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |what: &str, v: String| Err(ModelError::BadConfig(format!("{what} = {v}")));
        // Sizes first, before anything is sized from them: a damaged config.json
        // (`"hidden": 1000000000000`) must be refused, not allocated.
        let pos_size = self.positions.as_ref().map_or(1, |p| p.size);
        for (what, v, most) in [
            ("layers", self.layers, MAX_LAYERS),
            ("hidden", self.hidden, MAX_WIDTH),
            ("embed", self.embed, MAX_WIDTH),
            ("input width", self.input_width(), MAX_WIDTH),
            ("vocab", self.vocab, MAX_VOCAB),
            ("positions.size", pos_size, MAX_WIDTH),
        ] {
            if v > most {
                return bad(what, format!("{v} (at most {most})"));
            }
        }
        match self.checked_num_params() {
            Some(n) if n <= MAX_PARAMS => {}
            n => {
                let n = n.map_or("more than 2^64".into(), |n| n.to_string());
                return bad(
                    "size",
                    format!("{n} parameters (at most {MAX_PARAMS}, 1 GiB of f32; use fewer layers or a smaller hidden/embed)"),
                );
            }
        }
        if self.layers == 0 {
            return bad("layers", "0 (need at least 1)".into());
        }
        if self.hidden == 0 {
            return bad("hidden", "0 (need at least 1)".into());
        }
        if self.vocab == 0 {
            return bad("vocab", "0 (need at least 1)".into());
        }
        if self.input_width() == 0 {
            return bad("input width", "0 (set embed, or the dense dim)".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", format!("{} (must be in [0, 1))", self.dropout));
        }
        for (what, p) in [
            ("dropout_in", self.dropout_in),
            ("dropout_out", self.dropout_out),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(what, format!("{p} (must be in [0, 1))"));
            }
            if p > 0.0 && (self.input != Input::Tokens || self.head != Head::EveryStep) {
                return bad(
                    what,
                    "given for a model without token input and an every-step head".into(),
                );
            }
        }
        if self.tied && (self.input != Input::Tokens || self.head != Head::EveryStep) {
            return bad(
                "tied",
                "true for a model without token input and an every-step head".into(),
            );
        }
        if self.shortlist > 0 {
            if self.input != Input::Tokens || self.head != Head::EveryStep {
                return bad(
                    "shortlist",
                    "given for a model without token input and an every-step head".into(),
                );
            }
            if self.shortlist >= self.vocab {
                let (s, v) = (self.shortlist, self.vocab);
                return bad(
                    "shortlist",
                    format!("{s} (must be below the vocabulary's {v}, or 0 for one softmax)"),
                );
            }
        }
        if self.tied && self.embed == 0 {
            return bad("embed", "0 (a tied projection needs at least 1)".into());
        }
        if let Some(p) = &self.positions {
            if self.input != Input::Tokens {
                return bad("positions", "given for dense input (tokens only)".into());
            }
            if p.size == 0 {
                return bad("positions.size", "0 (need at least 1)".into());
            }
            let most = (u8::MAX - POS_FORM) as usize;
            if p.forms.len() > most {
                let n = p.forms.len();
                return bad("positions.forms", format!("{n} tags (at most {most})"));
            }
            if let Some(id) = p
                .line_ends
                .iter()
                .chain(&p.silent)
                .chain(&p.forms)
                .chain(&p.resets)
                .find(|&&id| id as usize >= self.vocab)
            {
                return bad(
                    "positions",
                    format!("names token {id}, outside the vocabulary of {}", self.vocab),
                );
            }
        }
        Ok(())
    }
}

/// Upper bounds [`ModelConfig::validate`] holds every config to, far above any
/// useful char-RNN (config L has 512 hidden units, ~8 M parameters) and far
/// below what would exhaust memory before a clear error could be printed.
pub const MAX_LAYERS: usize = 64;
pub const MAX_WIDTH: usize = 1 << 16;
pub const MAX_VOCAB: usize = 1 << 21;
/// 2^28 parameters: 1 GiB as f32; training holds four such copies.
pub const MAX_PARAMS: usize = 1 << 28;

/// Errors building a model from stored parts.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("expected {expected} parameters for this config, found {found} (the checkpoint's config.json and model.safetensors disagree)")]
    ParamCount { expected: usize, found: usize },
    #[error("bad model config: {0}")]
    BadConfig(String),
    #[error("unknown cell `{0}` (expected rnn, gru or lstm)")]
    UnknownCell(String),
}

/// Per token id, what it does to a [`Place`]; empty without positions.
fn pos_kinds(cfg: &ModelConfig) -> Vec<u8> {
    let Some(p) = &cfg.positions else {
        return Vec::new();
    };
    let mut kinds = vec![POS_CHAR; cfg.vocab];
    for &id in &p.silent {
        kinds[id as usize] = POS_SILENT;
    }
    for &id in &p.line_ends {
        kinds[id as usize] = POS_LINE_END;
    }
    for (k, &id) in p.forms.iter().enumerate() {
        kinds[id as usize] = POS_FORM + k as u8;
    }
    for &id in &p.resets {
        kinds[id as usize] = POS_RESET;
    }
    kinds
}

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
struct Layout {
    embedding: Option<Range<usize>>,
    /// line, column (and form) tables; empty without positions
    positions: Vec<Range<usize>>,
    /// per layer: w_ih, w_hh, b_ih, b_hh
    layers: Vec<[Range<usize>; 4]>,
    /// tied: the map from the top layer to the embedding's width
    bottleneck: Option<Range<usize>>,
    /// the output projection: its own tensor, or the embedding when tied
    proj_w: Range<usize>,
    proj_b: Range<usize>,
    /// with a shortlist: the rare class's row and bias
    rare_w: Option<Range<usize>>,
    rare_b: Option<Range<usize>>,
    total: usize,
}

impl Layout {
    fn new(cfg: &ModelConfig) -> Layout {
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
            layers,
            bottleneck,
            proj_w,
            proj_b,
            rare_w,
            rare_b,
            total: off,
        }
    }

    fn cell<'a>(&self, p: &'a [f32], l: usize) -> CellWeights<'a> {
        let r = &self.layers[l];
        CellWeights {
            w_ih: &p[r[0].clone()],
            w_hh: &p[r[1].clone()],
            b_ih: &p[r[2].clone()],
            b_hh: &p[r[3].clone()],
        }
    }
}

/// Per-layer activations, time-major.
#[derive(Default, Clone)]
struct LayerActs {
    /// (T+1, B, H): initial state then h_1..h_T
    h: Vec<f32>,
    /// LSTM: c, (T+1, B, H). GRU: W_hn h + b_hn, (T, B, H). RNN: unused.
    c: Vec<f32>,
    /// (T, B, G·H): gate activations, then their gradients in the backward
    gates: Vec<f32>,
    /// GRU: hidden-side gradients (T, B, 3H) in the backward, and (B, 3H) scratch in the forward
    extra: Vec<f32>,
    /// layers > 0 with dropout: the dropped input (T, B, H) and its mask
    xin: Vec<f32>,
    mask: Vec<f32>,
}

#[derive(Default, Clone)]
struct Acts {
    /// (T, B, I0): the first layer's input (embeddings, or the transposed dense rows)
    x0: Vec<f32>,
    layers: Vec<LayerActs>,
    /// with `dropout_in` while training: x0's mask (T, B, E) (x0 is dropped in
    /// place); with `dropout_out`: the top layer's dropped output laid out as
    /// its h buffer ((T+1, B, H), the first B rows unused) and its mask (T, B, H)
    in_dropped: bool,
    out_dropped: bool,
    x0_mask: Vec<f32>,
    top: Vec<f32>,
    top_mask: Vec<f32>,
    /// (T, B, H) twice: dL/dh of the layer being differentiated, and of the one below
    dh: Vec<f32>,
    dh2: Vec<f32>,
    /// (T, B, E): dL/dx0 for the embedding
    dx0: Vec<f32>,
    /// per thread: the head's scratch
    head: Vec<HeadScratch>,
    /// per thread, with a shortlist: the targets as each level sees them
    rare: Vec<RareScratch>,
    /// with a shortlist: its rows and the rare class's, packed together
    short: ShortHead,
    /// the projection's weight as gemm reads it, rebuilt at each call of a head
    /// at least [`PANELS_MIN_WIDTH`] wide
    proj_t: Panels,
    /// tied head: the top layer's rows mapped to the embedding's width, and their gradient
    z: Vec<f32>,
    dz: Vec<f32>,
    /// time-major copies of targets and mask, (T·B)
    targets: Vec<u32>,
    mask: Vec<f32>,
    /// per position table, (B, T) like the inputs: each token's row in it
    places: [Vec<u32>; 3],
    /// the first layer's lookup projection (see [`Model::projects_lookups`]): per
    /// table, the tokens' first and then each position table's, which ids the
    /// batch reads and which rows read each; scratch for [`lookup_index`]
    /// (`seen` is all `u32::MAX` between calls) and for the projection
    lookup_index: Vec<LookupIndex>,
    lookup_seen: Vec<u32>,
    lookup_slot: Vec<u32>,
    lookup: LookupScratch,
}

/// One table's part of a batch's lookup projection, as [`Lookup`] reads it.
#[derive(Default, Clone)]
struct LookupIndex {
    ids: Vec<u32>,
    starts: Vec<u32>,
    rows: Vec<u32>,
}

/// One thread's scratch for the head: gathered rows, their logits, and (past the first
/// thread) its own gradient of `proj.weight` and `proj.bias`, laid out as in the params.
#[derive(Default, Clone)]
struct HeadScratch {
    x: Vec<f32>,
    dh: Vec<f32>,
    logits: Vec<f32>,
    targets: Vec<u32>,
    rows: Vec<usize>,
    grads: Vec<f32>,
}

/// The head over a run of rows on one thread: gathers the unmasked rows in chunks of
/// [`HEAD_ROWS`], projects, applies the softmax loss and, when `scale` is given, its
/// backward into `grads` and `dh` (rows of masked positions get 0). Returns the loss sum.
#[allow(clippy::too_many_arguments)]
fn head_rows(
    hs: &mut HeadScratch,
    grads: (&mut [f32], &mut [f32]),
    mut dh: Option<&mut [f32]>,
    x: &[f32],
    targets: &[u32],
    mask: &[f32],
    pw: &[f32],
    pw_t: Option<&Panels>,
    pb: &[f32],
    h: usize,
    v: usize,
    scale: Option<f32>,
) -> f64 {
    let (gw, gb) = grads;
    if let Some(d) = dh.as_deref_mut() {
        d.fill(0.0);
    }
    hs.rows.clear();
    hs.rows
        .extend((0..targets.len()).filter(|&r| mask[r] != 0.0));
    let cap = HEAD_ROWS.min(hs.rows.len());
    hs.x.resize(cap * h, 0.0);
    hs.dh.resize(cap * h, 0.0);
    hs.logits.resize(cap * v, 0.0);
    let mut loss = 0.0;
    let ones = [1.0f32; HEAD_ROWS];
    for chunk in hs.rows.chunks(HEAD_ROWS) {
        let n = chunk.len();
        hs.targets.clear();
        for (k, &r) in chunk.iter().enumerate() {
            hs.x[k * h..(k + 1) * h].copy_from_slice(&x[r * h..(r + 1) * h]);
            hs.targets.push(targets[r]);
        }
        let (xg, logits) = (&hs.x[..n * h], &mut hs.logits[..n * v]);
        // the logits without the bias: both softmax kernels add it
        match pw_t {
            Some(pt) => linear_forward_panels(logits, xg, pt, n),
            None => matmul_a_bt(logits, xg, pw, n, v, h, false),
        }
        // masks may weight tokens; the gathered rows keep their weights
        let mk: Vec<f32> = chunk.iter().map(|&r| mask[r]).collect();
        let mk = if mk.iter().all(|&m| m == 1.0) {
            &ones[..n]
        } else {
            &mk[..]
        };
        let (Some(s), Some(d)) = (scale, dh.as_deref_mut()) else {
            loss += softmax_ce_forward(logits, pb, &hs.targets, mk, v);
            continue;
        };
        // logits → their gradient, and the bias's gradient summed on the way
        loss += softmax_ce_forward_backward(logits, pb, &hs.targets, mk, v, s, gb);
        let dhg = &mut hs.dh[..n * h];
        linear_backward(dhg, gw, logits, xg, pw, n, h, v, false);
        for (k, &r) in chunk.iter().enumerate() {
            d[r * h..(r + 1) * h].copy_from_slice(&dhg[k * h..(k + 1) * h]);
        }
    }
    loss
}

/// One thread's scratch for a two-level head (see [`ModelConfig::shortlist`]):
/// each row's target among the shortlist and the rare class, and the rare
/// rows' targets among the rare ids, with a mask that keeps only those rows.
#[derive(Default, Clone)]
struct RareScratch {
    short_targets: Vec<u32>,
    rare_targets: Vec<u32>,
    rare_mask: Vec<f32>,
    dh: Vec<f32>,
}

/// The first level of a two-level head: the shortlist's rows of the
/// projection followed by `rare.weight`, and their biases, so that one
/// softmax of S + 1 columns covers it; `t` is their panels for wide rows.
#[derive(Default, Clone)]
struct ShortHead {
    w: Vec<f32>,
    b: Vec<f32>,
    t: Panels,
}

/// A projection as [`head_rows`] reads it: weight (rows, width), its panels
/// when the rows are wide enough for them, and the bias.
type Proj<'a> = (&'a [f32], Option<&'a Panels>, &'a [f32]);

/// [`head_rows`] for a two-level head, as two runs of it: every row through
/// the shortlist and the rare class (`short`: S + 1 outputs), then the rows
/// whose target is rare through the rare ids (`rare`: V − S outputs), whose
/// −log p(y | rare) adds to the first run's −log p(rare). `grads` (when
/// `scale` is given) is laid out [short weight | short bias | rare weight |
/// rare bias].
#[allow(clippy::too_many_arguments)]
fn split_rows(
    hs: &mut HeadScratch,
    rs: &mut RareScratch,
    grads: &mut [f32],
    mut dh: Option<&mut [f32]>,
    x: &[f32],
    targets: &[u32],
    mask: &[f32],
    short: Proj,
    rare: Proj,
    w: usize,
    scale: Option<f32>,
) -> f64 {
    let s1 = short.2.len();
    let (s, n_rare) = (s1 - 1, rare.2.len());
    rs.short_targets.clear();
    rs.rare_targets.clear();
    rs.rare_mask.clear();
    for (&y, &m) in targets.iter().zip(mask) {
        let y = y as usize;
        let is_rare = y >= s;
        rs.short_targets.push(if is_rare { s } else { y } as u32);
        rs.rare_targets.push(if is_rare { y - s } else { 0 } as u32);
        rs.rare_mask.push(if is_rare { m } else { 0.0 });
    }
    let (sg, rg): (&mut [f32], &mut [f32]) = if scale.is_some() {
        grads.split_at_mut(s1 * (w + 1))
    } else {
        (&mut [], &mut [])
    };
    let (sw, sb) = sg.split_at_mut(sg.len().min(s1 * w));
    let (rw, rb) = rg.split_at_mut(rg.len().min(n_rare * w));
    let (short_targets, rare_targets) = (&rs.short_targets[..], &rs.rare_targets[..]);
    let mut loss = head_rows(
        hs,
        (sw, sb),
        dh.as_deref_mut(),
        x,
        short_targets,
        mask,
        short.0,
        short.1,
        short.2,
        w,
        s1,
        scale,
    );
    let rare_dh = dh.is_some().then(|| {
        rs.dh.resize(x.len(), 0.0);
        &mut rs.dh[..]
    });
    loss += head_rows(
        hs,
        (rw, rb),
        rare_dh,
        x,
        rare_targets,
        &rs.rare_mask,
        rare.0,
        rare.1,
        rare.2,
        w,
        n_rare,
        scale,
    );
    if let Some(d) = dh {
        add_into(d, &rs.dh);
    }
    loss
}

/// `dst += src`, element by element.
fn add_into(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
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

/// Two disjoint ranges of `v`, `a` before `b`, as two mutable slices.
fn two_mut(v: &mut [f32], a: Range<usize>, b: Range<usize>) -> (&mut [f32], &mut [f32]) {
    assert!(
        a.end <= b.start,
        "two_mut: ranges overlap or are out of order"
    );
    let (lo, hi) = v.split_at_mut(b.start);
    (&mut lo[a], &mut hi[..b.len()])
}

/// Rows of the head processed at once: bounds the logits buffer at ROWS×V
/// floats while keeping each GEMM large enough to run at full speed.
const HEAD_ROWS: usize = 512;

/// A recurrent model with its parameters, gradients and activation buffers.
pub struct Model {
    pub cfg: ModelConfig,
    pub params: Vec<f32>,
    pub grads: Vec<f32>,
    layout: Layout,
    acts: Acts,
    /// Per token id, what it does to a [`Place`] (empty without positions).
    pos_kind: Vec<u8>,
}

/// Copies of a model's weights for sampling (see [`Model::step_weights`]),
/// each made on first use: one poem needs only the half-precision copy, many
/// side by side only the transposed one.
#[derive(Debug, Default)]
pub struct StepWeights {
    /// The weight matrices transposed to (in, out), laid out like the parameters.
    t: OnceLock<Vec<f32>>,
    /// All parameters in half precision, kept only when every one is exact
    /// in f16 (a checkpoint stored at F16), so that reading them is lossless.
    half: OnceLock<Option<Vec<half::f16>>>,
}

/// The carried state for [`Model::step`]: per layer h (and c for LSTM), each (batch, H).
#[derive(Clone, Debug)]
pub struct State {
    pub batch: usize,
    pub h: Vec<Vec<f32>>,
    pub c: Vec<Vec<f32>>,
    /// Per sequence, where it is in its poem (models with positions).
    pub places: Vec<Place>,
    x: Vec<f32>,
    scratch: Vec<f32>,
}

impl Model {
    /// A freshly initialised model, deterministic from `rng`: PyTorch's init
    /// (embedding N(0, 1); recurrent and projection weights and biases uniform
    /// in ±1/√H) except that the LSTM forget-gate bias starts at 1, so early
    /// training does not forget everything.
    ///
    /// # Panics
    /// On a config that [`ModelConfig::validate`] rejects (callers validate user input first).
    pub fn new(cfg: ModelConfig, rng: &mut Rng) -> Model {
        if let Err(e) = cfg.validate() {
            panic!("Model::new: {e}");
        }
        crate::engine::tune_allocator();
        let layout = Layout::new(&cfg);
        let mut params = vec![0.0f32; layout.total];
        if let Some(r) = &layout.embedding {
            for p in &mut params[r.clone()] {
                *p = rng.normal();
            }
        }
        // Three N(0, 1) rows summed would triple the first layer's input
        // variance; the position rows start smaller and grow as they are useful.
        for r in &layout.positions {
            for p in &mut params[r.clone()] {
                *p = 0.5 * rng.normal();
            }
        }
        let bound = 1.0 / (cfg.hidden as f32).sqrt();
        let uniform = |s: &mut [f32], rng: &mut Rng| {
            for p in s {
                *p = (2.0 * rng.uniform() - 1.0) * bound;
            }
        };
        for (l, r) in layout.layers.iter().enumerate() {
            for rr in r {
                uniform(&mut params[rr.clone()], rng);
            }
            if cfg.cell == Cell::Lstm {
                // forget gate rows are H..2H in both biases; their sum starts at 1
                let h = cfg.hidden;
                let _ = l;
                params[r[2].start + h..r[2].start + 2 * h].fill(1.0);
                params[r[3].start + h..r[3].start + 2 * h].fill(0.0);
            }
        }
        match &layout.bottleneck {
            // Tied, the output rows are the N(0, 1) embedding rows, √E times
            // longer than an untied projection's: a bottleneck smaller by √E
            // starts the logits as spread as the untied model's.
            Some(r) => {
                uniform(&mut params[r.clone()], rng);
                let shrink = 1.0 / (cfg.embed as f32).sqrt();
                params[r.clone()].iter_mut().for_each(|p| *p *= shrink);
            }
            None => uniform(&mut params[layout.proj_w.clone()], rng),
        }
        uniform(&mut params[layout.proj_b.clone()], rng);
        // the rare class's row starts like the rows it competes with
        if let (Some(w), Some(b)) = (&layout.rare_w, &layout.rare_b) {
            if cfg.tied {
                params[w.clone()].iter_mut().for_each(|p| *p = rng.normal());
            } else {
                uniform(&mut params[w.clone()], rng);
            }
            uniform(&mut params[b.clone()], rng);
        }
        let grads = vec![0.0f32; layout.total];
        Model {
            pos_kind: pos_kinds(&cfg),
            cfg,
            params,
            grads,
            layout,
            acts: Acts::default(),
        }
    }

    /// A model around stored parameters (from a checkpoint).
    pub fn from_params(cfg: ModelConfig, params: Vec<f32>) -> Result<Model, ModelError> {
        cfg.validate()?;
        crate::engine::tune_allocator();
        let layout = Layout::new(&cfg);
        if params.len() != layout.total {
            return Err(ModelError::ParamCount {
                expected: layout.total,
                found: params.len(),
            });
        }
        let grads = vec![0.0f32; layout.total];
        Ok(Model {
            pos_kind: pos_kinds(&cfg),
            cfg,
            params,
            grads,
            layout,
            acts: Acts::default(),
        })
    }

    /// Each tensor's name, shape and values, in [`param_table`] order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut off = 0;
        param_table(&self.cfg)
            .into_iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let s = &self.params[off..off + n];
                off += n;
                (name, shape, s)
            })
            .collect()
    }

    pub fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }

    /// Each input token's (line, column, form) rows, as the forward adds them
    /// to its embedding: the place after reading that token. Empty without positions.
    pub fn places(&self, tokens: &[u32]) -> Vec<[u32; 3]> {
        let Some(p) = &self.cfg.positions else {
            return Vec::new();
        };
        let mut place = Place::default();
        tokens
            .iter()
            .map(|&id| place.advance(self.pos_kind[id as usize], p.size))
            .collect()
    }

    /// Sizes every activation buffer for (B, T); buffers only grow, so length-bucketed batches reuse them.
    fn prepare(&mut self, b: usize, t: usize) {
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
                Cell::Gru => la.c.resize(t * b * h, 0.0),
                Cell::Rnn => la.c.clear(),
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

    /// Runs the recurrent layers over `acts.x0`; dropout only when `rng` is given.
    fn forward_layers(&mut self, b: usize, t: usize, mut rng: Option<&mut Rng>) {
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
                    &mut la.c[..t * bh],
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
    fn backward_layers(&mut self, b: usize, t: usize, tokens: Option<&[u32]>) {
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
                    &la.c[..t * bh],
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
        }
    }

    /// Fills `acts.x0` from token ids (B, T).
    fn embed(&mut self, tokens: &[u32], b: usize, t: usize) {
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
        let Acts { x0, places, .. } = &mut self.acts;
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
    }

    /// Whether the first layer projects each distinct table row once
    /// (`engine::embedding::lookup_projection_forward`) instead of the
    /// embedded rows: for token input, unless dropout on the embedding
    /// makes every row its own.
    fn projects_lookups(&self) -> bool {
        self.cfg.input == Input::Tokens && self.cfg.dropout_in == 0.0
    }

    /// Fills `acts.x0` from dense rows (B, T, D), transposing to time-major.
    fn dense_input(&mut self, x: &[f32], b: usize, t: usize) {
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

    /// The head over `rows` rows of the top layer starting at row `first` of its h buffer
    /// (time-major), with `acts.targets`/`acts.mask` per row. Returns the masked loss sum;
    /// when `scale` is given, also backpropagates (dL = scale · dloss) into the head's grads
    /// and writes dL/dh for those rows into `acts.dh` at row `dh_first` (0 for masked rows).
    ///
    /// The rows are split into one contiguous part per thread, each with its own scratch
    /// and, past the first, its own copy of the head's gradients, summed at the end; masked
    /// rows (padding) are skipped by gathering the unmasked ones into chunks.
    /// A tied head first maps all the rows to the embedding's width (`z`), and
    /// afterwards takes the gradient for `z` back through that map.
    fn head(&mut self, first: usize, rows: usize, dh_first: usize, scale: Option<f32>) -> f64 {
        let (h, v, s) = (self.cfg.hidden, self.cfg.vocab, self.cfg.shortlist);
        // width of the rows the projection reads
        let w = self.cfg.head_width();
        let top = self.cfg.layers - 1;
        let parts = crate::engine::matmul::threads().min(rows / 64).max(1);
        let Acts {
            layers,
            out_dropped,
            top: top_drop,
            dh,
            head,
            rare,
            targets,
            mask,
            z,
            dz,
            proj_t,
            short,
            ..
        } = &mut self.acts;
        head.resize_with(parts, HeadScratch::default);
        rare.resize_with(parts, RareScratch::default);
        let pw = &self.params[self.layout.proj_w.clone()];
        let pb = &self.params[self.layout.proj_b.clone()];
        // narrow rows project faster through gemm's own packing of the weight
        let panels = w >= PANELS_MIN_WIDTH;
        // with a shortlist, `proj_t` holds the rare rows' panels only, and
        // `short` the shortlist's rows followed by the rare class's row
        let split = (s > 0).then(|| {
            let (rw, rb) = (
                &self.params[self.layout.rare_w.clone().unwrap()],
                &self.params[self.layout.rare_b.clone().unwrap()],
            );
            short.w.clear();
            short.w.extend_from_slice(&pw[..s * w]);
            short.w.extend_from_slice(rw);
            short.b.clear();
            short.b.extend_from_slice(&pb[..s]);
            short.b.extend_from_slice(rb);
            if panels {
                short.t.set_transposed(&short.w, s + 1, w);
                proj_t.set_transposed(&pw[s * w..], v - s, w);
            }
            &*short
        });
        let pw_t = match (panels, split.is_some()) {
            (false, _) => None,
            (true, true) => Some(&*proj_t),
            (true, false) => {
                proj_t.set_transposed(pw, v, w);
                Some(&*proj_t)
            }
        };
        // what the head reads: the top layer's output, dropped while training with dropout_out
        let top_rows = if *out_dropped {
            &top_drop[..]
        } else {
            &layers[top].h[..]
        };
        let x_top = &top_rows[first * h..(first + rows) * h];
        let (x_all, dh_sh, dh_first_w) = match &self.layout.bottleneck {
            Some(r) => {
                z.resize(rows * w, 0.0);
                dz.resize(rows * w, 0.0);
                let z = &mut z[..rows * w];
                matmul_a_bt(z, x_top, &self.params[r.clone()], rows, w, h, false);
                (&z[..], SharedMut::new(dz), 0)
            }
            None => (x_top, SharedMut::new(dh), dh_first),
        };
        let (gw0, gb0) = two_mut(
            &mut self.grads,
            self.layout.proj_w.clone(),
            self.layout.proj_b.clone(),
        );
        // Without a shortlist, part 0 adds into the model's grads and the
        // others into their own zeroed copies; with one, every part has its own
        // copy (its shortlist rows are packed apart from the weight's).
        let mut own = split.is_none().then_some((gw0, gb0));
        let copy_len = if split.is_some() {
            (v + 1) * (w + 1)
        } else {
            v * w + v
        };
        let (targets, mask) = (&targets[..], &mask[..]);
        let mut losses = vec![0.0f64; parts];
        rayon::scope(|sc| {
            for (p, ((hs, rs), loss)) in head
                .iter_mut()
                .zip(rare.iter_mut())
                .zip(losses.iter_mut())
                .enumerate()
            {
                let (r0, r1) = (rows * p / parts, rows * (p + 1) / parts);
                let own_grads = if p == 0 { own.take() } else { None };
                let work = move || {
                    let mut copy = std::mem::take(&mut hs.grads);
                    if scale.is_some() && own_grads.is_none() {
                        copy.clear();
                        copy.resize(copy_len, 0.0);
                    }
                    let run = || {
                        // SAFETY: part p only writes rows dh_first_w + r0 .. dh_first_w + r1
                        let dh_part = scale.map(|_| unsafe {
                            dh_sh.range((dh_first_w + r0) * w..(dh_first_w + r1) * w)
                        });
                        let (x, tg, mk) = (&x_all[r0 * w..r1 * w], &targets[r0..r1], &mask[r0..r1]);
                        match (split, own_grads) {
                            (Some(sh), _) => {
                                let short = (&sh.w[..], panels.then_some(&sh.t), &sh.b[..]);
                                let rest = (&pw[s * w..], pw_t, &pb[s..]);
                                split_rows(
                                    hs, rs, &mut copy, dh_part, x, tg, mk, short, rest, w, scale,
                                )
                            }
                            (None, Some(g)) => {
                                head_rows(hs, g, dh_part, x, tg, mk, pw, pw_t, pb, w, v, scale)
                            }
                            (None, None) => {
                                let at = copy.len().min(v * w);
                                let (gw, gb) = copy.split_at_mut(at);
                                head_rows(
                                    hs,
                                    (gw, gb),
                                    dh_part,
                                    x,
                                    tg,
                                    mk,
                                    pw,
                                    pw_t,
                                    pb,
                                    w,
                                    v,
                                    scale,
                                )
                            }
                        }
                    };
                    // one part alone may still split its GEMMs across threads
                    *loss = if parts > 1 {
                        crate::engine::matmul::serial(run)
                    } else {
                        run()
                    };
                    hs.grads = copy;
                };
                if parts == 1 {
                    work();
                } else {
                    sc.spawn(move |_| work());
                }
            }
        });
        if scale.is_some() {
            let (gw, gb) = two_mut(
                &mut self.grads,
                self.layout.proj_w.clone(),
                self.layout.proj_b.clone(),
            );
            if split.is_some() {
                let (mut grw, mut grb) = (vec![0.0f32; w], 0.0f32);
                let (gw_s, gw_t) = gw.split_at_mut(s * w);
                let (gb_s, gb_t) = gb.split_at_mut(s);
                for hs in &head[..parts] {
                    // [shortlist rows + rare row | their biases | rare ids' rows | their biases]
                    let (sw, rest) = hs.grads.split_at((s + 1) * w);
                    let (sb, rest) = rest.split_at(s + 1);
                    let (tw, tb) = rest.split_at((v - s) * w);
                    add_into(gw_s, &sw[..s * w]);
                    add_into(&mut grw, &sw[s * w..]);
                    add_into(gb_s, &sb[..s]);
                    grb += sb[s];
                    add_into(gw_t, tw);
                    add_into(gb_t, tb);
                }
                add_into(&mut self.grads[self.layout.rare_w.clone().unwrap()], &grw);
                self.grads[self.layout.rare_b.clone().unwrap()][0] += grb;
            } else {
                for hs in &head[1..parts] {
                    let (ew, eb) = hs.grads.split_at(v * w);
                    add_into(gw, ew);
                    add_into(gb, eb);
                }
            }
            // tied: dz → dh of the top layer, and the bottleneck's gradient
            if let Some(r) = &self.layout.bottleneck {
                let (dz, wb) = (&dz[..rows * w], &self.params[r.clone()]);
                matmul_a_b(
                    &mut dh[dh_first * h..(dh_first + rows) * h],
                    dz,
                    wb,
                    rows,
                    h,
                    w,
                    false,
                );
                matmul_at_b(&mut self.grads[r.clone()], dz, x_top, w, h, rows, true);
            }
        }
        losses.iter().sum()
    }

    /// Copies (B, T) targets and mask to time-major, returning the token count.
    fn set_targets(&mut self, targets: &[u32], mask: &[f32], b: usize, t: usize) -> f64 {
        let v = self.cfg.vocab as u32;
        self.acts.targets.resize(b * t, 0);
        self.acts.mask.resize(b * t, 0.0);
        let mut count = 0.0f64;
        for bb in 0..b {
            for tt in 0..t {
                let m = mask[bb * t + tt];
                let tg = targets[bb * t + tt];
                // padding targets may be anything; only a real target must be a valid id
                assert!(
                    m == 0.0 || tg < v,
                    "target id {tg} is outside the vocabulary of {v}"
                );
                self.acts.targets[tt * b + bb] = if m == 0.0 { 0 } else { tg };
                self.acts.mask[tt * b + bb] = m;
                count += m as f64;
            }
        }
        count
    }

    fn check_batch(&self, batch: &Batch) {
        let n = batch.b * batch.t;
        assert!(
            batch.inputs.len() == n && batch.targets.len() == n && batch.mask.len() == n,
            "batch buffers are not (B, T) = ({}, {})",
            batch.b,
            batch.t
        );
        assert_eq!(
            self.cfg.head,
            Head::EveryStep,
            "token batches need Head::EveryStep"
        );
    }

    /// Forward and backward over a batch: adds d(mean loss over unmasked tokens)/dparams
    /// into `grads` and returns (sum of token losses in nats, token count).
    pub fn forward_backward(&mut self, batch: &Batch, rng: &mut Rng) -> (f64, f64) {
        self.check_batch(batch);
        let (b, t, h) = (batch.b, batch.t, self.cfg.hidden);
        self.prepare(b, t);
        self.embed(&batch.inputs, b, t);
        self.forward_layers(b, t, Some(rng));
        let count = self.set_targets(&batch.targets, &batch.mask, b, t);
        if count == 0.0 {
            return (0.0, 0.0);
        }
        self.acts.dh.resize(t * b * h, 0.0);
        // rows of the top h buffer start after the initial state (row B)
        let loss = self.head(b, t * b, 0, Some((1.0 / count) as f32));
        if self.acts.out_dropped {
            let Acts { dh, top_mask, .. } = &mut self.acts;
            for (d, m) in dh[..t * b * h].iter_mut().zip(&top_mask[..t * b * h]) {
                *d *= m;
            }
        }
        self.backward_layers(b, t, Some(&batch.inputs));
        (loss, count)
    }

    /// Forward only, without dropout: (sum of token losses in nats, token count).
    pub fn loss(&mut self, batch: &Batch) -> (f64, f64) {
        self.check_batch(batch);
        let (b, t) = (batch.b, batch.t);
        self.prepare(b, t);
        self.embed(&batch.inputs, b, t);
        self.forward_layers(b, t, None);
        let count = self.set_targets(&batch.targets, &batch.mask, b, t);
        let loss = self.head(b, t * b, 0, None);
        (loss, count)
    }

    /// Classifier training step on dense rows `x: (B, T, D)` with one label per sequence:
    /// adds d(mean loss over B)/dparams into `grads`; returns (loss sum, correct predictions).
    pub fn forward_backward_dense(
        &mut self,
        x: &[f32],
        labels: &[u32],
        b: usize,
        t: usize,
        rng: &mut Rng,
    ) -> (f64, usize) {
        assert_eq!(
            self.cfg.head,
            Head::LastStep,
            "forward_backward_dense needs Head::LastStep"
        );
        assert_eq!(labels.len(), b, "labels is not (B)");
        let classes = self.cfg.vocab as u32;
        if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
            panic!("label {bad} is outside the {classes} classes of this model");
        }
        let h = self.cfg.hidden;
        self.prepare(b, t);
        self.dense_input(x, b, t);
        self.forward_layers(b, t, Some(rng));
        let ones = vec![1.0f32; b];
        self.acts.targets.clear();
        self.acts.targets.extend_from_slice(labels);
        self.acts.mask.clear();
        self.acts.mask.extend_from_slice(&ones);
        let correct = self.count_correct(b, t, labels);
        self.acts.dh.resize(t * b * h, 0.0);
        self.acts.dh[..t * b * h].fill(0.0);
        // the last step's rows: top h buffer rows T·B..(T+1)·B, dh rows (T−1)·B..T·B
        let loss = self.head(t * b, b, (t - 1) * b, Some(1.0 / b as f32));
        self.backward_layers(b, t, None);
        (loss, correct)
    }

    fn count_correct(&mut self, b: usize, t: usize, labels: &[u32]) -> usize {
        let mut probs = vec![0.0f32; b * self.cfg.vocab];
        self.last_step_logits(b, t, &mut probs);
        let v = self.cfg.vocab;
        probs
            .chunks_exact(v)
            .zip(labels)
            .filter(|(row, &l)| {
                let best = row
                    .iter()
                    .enumerate()
                    .fold(0, |bi, (i, &x)| if x > row[bi] { i } else { bi });
                best == l as usize
            })
            .count()
    }

    fn last_step_logits(&self, b: usize, t: usize, out: &mut [f32]) {
        let (h, v) = (self.cfg.hidden, self.cfg.vocab);
        let top = &self.acts.layers[self.cfg.layers - 1].h[t * b * h..(t + 1) * b * h];
        linear_forward(
            out,
            top,
            &self.params[self.layout.proj_w.clone()],
            &self.params[self.layout.proj_b.clone()],
            b,
            h,
            v,
        );
    }

    /// Class probabilities `probs: (B, classes)` for dense rows `x: (B, T, D)`, no dropout.
    pub fn predict_dense(&mut self, x: &[f32], b: usize, t: usize, probs: &mut [f32]) {
        assert_eq!(probs.len(), b * self.cfg.vocab, "probs is not (B, classes)");
        self.prepare(b, t);
        self.dense_input(x, b, t);
        self.forward_layers(b, t, None);
        self.last_step_logits(b, t, probs);
        softmax_rows(probs, self.cfg.vocab);
    }

    /// A zero state for `batch` sequences sampled side by side.
    pub fn new_state(&self, batch: usize) -> State {
        let (h, l) = (self.cfg.hidden, self.cfg.layers);
        let width = self.cfg.input_width().max(h);
        State {
            batch,
            h: vec![vec![0.0; batch * h]; l],
            c: if self.cfg.cell == Cell::Lstm {
                vec![vec![0.0; batch * h]; l]
            } else {
                Vec::new()
            },
            places: vec![Place::default(); batch],
            x: vec![0.0; batch * width],
            scratch: vec![0.0; batch * (8 * h).max(self.cfg.embed)],
        }
    }

    /// The weights as [`Model::step_with`] reads them fastest: transposed,
    /// for batched steps, and in half precision, for steps at batch 1 (which
    /// stream every weight from memory once per character), when that is
    /// exact. Copies made once per model (not per step), kept apart from
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
    /// batched steps faster, and steps at batch 1 too when the weights are
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
                let rows = places[bb].advance(self.pos_kind[id as usize], p.size);
                for (r, row) in self.layout.positions.iter().zip(rows) {
                    let at = r.start + row as usize * e;
                    for (xv, w) in xb.iter_mut().zip(&self.params[at..at + e]) {
                        *xv += w;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reference::{model_loss_ref, RefInput, RefMasks};
    use crate::optim::Adam;

    fn tiny(cell: Cell, input: Input, head: Head, vocab: usize) -> ModelConfig {
        ModelConfig {
            cell,
            layers: 2,
            embed: 3,
            hidden: 5,
            vocab,
            dropout: 0.0,
            dropout_in: 0.0,
            dropout_out: 0.0,
            input,
            head,
            positions: None,
            tied: false,
            shortlist: 0,
        }
    }

    /// Positions over a vocabulary of 7: id 5 ends a line, 0 and 1 are silent,
    /// 6 is a form tag; 3 rows, so that the lines and columns of a short batch
    /// reach the cap.
    fn with_positions(cfg: ModelConfig) -> ModelConfig {
        ModelConfig {
            positions: Some(Positions {
                size: 3,
                line_ends: vec![5],
                silent: vec![0, 1],
                forms: vec![6],
                resets: vec![1],
            }),
            ..cfg
        }
    }

    /// A (B, T) batch of random ids; with `masked`, the tail of some rows is padding.
    fn batch(b: usize, t: usize, v: usize, masked: bool, rng: &mut Rng) -> Batch {
        let inputs = (0..b * t).map(|_| rng.below(v) as u32).collect();
        let targets = (0..b * t).map(|_| rng.below(v) as u32).collect();
        let mask = (0..b * t)
            .map(|k| {
                if masked && k % t >= t - 1 - (k / t) % 3 {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        Batch {
            b,
            t,
            inputs,
            targets,
            mask,
        }
    }

    /// Central differences of the f64 reference loss against the model's f32 analytic gradient,
    /// for every parameter. Tolerance: the analytic side is f32, so 1e-4 absolute + 1e-3 relative.
    fn grad_check(model: &mut Model, loss_at: &dyn Fn(&[f64]) -> f64, what: &str) {
        let p64: Vec<f64> = model.params.iter().map(|&x| x as f64).collect();
        let table = param_table(&model.cfg);
        let mut names = Vec::new();
        for (name, shape) in &table {
            names.extend(std::iter::repeat_n(name.clone(), shape.iter().product()));
        }
        let eps = 1e-6;
        let mut p = p64.clone();
        let mut worst = 0.0f64;
        for k in 0..p.len() {
            p[k] = p64[k] + eps;
            let up = loss_at(&p);
            p[k] = p64[k] - eps;
            let down = loss_at(&p);
            p[k] = p64[k];
            let num = (up - down) / (2.0 * eps);
            let ana = model.grads[k] as f64;
            worst = worst.max((num - ana).abs());
            assert!(
                (num - ana).abs() <= 1e-4 + 1e-3 * num.abs(),
                "{what}: {}[{k}]: numeric {num}, analytic {ana}",
                names[k]
            );
        }
        eprintln!(
            "{what}: {} params, max |numeric − analytic| {worst:e}",
            p.len()
        );
    }

    /// Forward-backward of a token model on a random (B, T) batch: its loss
    /// against the f64 reference, then every gradient by finite differences.
    /// Returns the model, its gradients filled.
    fn check_token_model(cfg: &ModelConfig, b: usize, t: usize, masked: bool, seed: u64) -> Model {
        let mut rng = Rng::new(seed);
        let mut model = Model::new(cfg.clone(), &mut rng);
        let bt = batch(b, t, cfg.vocab, masked, &mut rng);
        model.zero_grad();
        let (sum, count) = model.forward_backward(&bt, &mut rng);
        let f = |p: &[f64]| {
            model_loss_ref(
                cfg,
                p,
                RefInput::Tokens(&bt.inputs),
                &bt.targets,
                &bt.mask,
                b,
                t,
                &RefMasks::default(),
            )
        };
        let want = f(&model.params.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let what = format!("{} B={b} T={t} masked={masked}", cfg.cell);
        assert!(
            (sum / count - want).abs() < 1e-5,
            "{what}: loss {} vs reference {want}",
            sum / count
        );
        grad_check(&mut model, &f, &what);
        model
    }

    /// The head projects rows of width ≥ PANELS_MIN_WIDTH through panels and
    /// narrower ones through the plain weight; the gradient checks' tiny
    /// models take the second way, so the first is checked here, by the loss.
    #[test]
    fn wide_heads_loss_matches_the_reference() {
        let wide = PANELS_MIN_WIDTH;
        let untied = ModelConfig {
            layers: 1,
            hidden: wide,
            ..tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 11)
        };
        let tied = ModelConfig {
            embed: wide,
            tied: true,
            ..tiny(Cell::Gru, Input::Tokens, Head::EveryStep, 11)
        };
        let split = |cfg: &ModelConfig| ModelConfig {
            shortlist: 4,
            ..cfg.clone()
        };
        for cfg in [split(&untied), split(&tied), untied, tied] {
            let mut rng = Rng::new(5);
            let mut model = Model::new(cfg.clone(), &mut rng);
            let bt = batch(3, 4, cfg.vocab, true, &mut rng);
            let (sum, count) = model.loss(&bt);
            let p64: Vec<f64> = model.params.iter().map(|&x| x as f64).collect();
            let want = model_loss_ref(
                &cfg,
                &p64,
                RefInput::Tokens(&bt.inputs),
                &bt.targets,
                &bt.mask,
                3,
                4,
                &RefMasks::default(),
            );
            assert!(
                (sum / count - want).abs() < 1e-5,
                "tied {} shortlist {}: loss {} vs reference {want}",
                cfg.tied,
                cfg.shortlist,
                sum / count
            );
        }
    }

    #[test]
    fn token_model_gradients_match_finite_differences() {
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            // B = 16 splits the batch across threads (engine::for_row_parts), and its
            // 128 rows split the head too
            for (b, t, masked) in [(3, 4, false), (3, 4, true), (16, 8, true)] {
                check_token_model(
                    &tiny(cell, Input::Tokens, Head::EveryStep, 7),
                    b,
                    t,
                    masked,
                    1,
                );
            }
        }
    }

    #[test]
    fn position_embedding_gradients_match_finite_differences() {
        for cell in [Cell::Lstm, Cell::Gru] {
            for (b, t, masked) in [(3, 7, false), (16, 8, true)] {
                let cfg = with_positions(tiny(cell, Input::Tokens, Head::EveryStep, 7));
                let model = check_token_model(&cfg, b, t, masked, 11);
                // every table is used: the loss moves when it does
                for r in model.layout.positions.clone() {
                    assert!(model.grads[r].iter().any(|&g| g.abs() > 1e-6));
                }
            }
        }
    }

    #[test]
    fn tied_projection_gradients_match_finite_differences() {
        // the embedding's gradient now comes from both ends of the model
        for cell in [Cell::Lstm, Cell::Rnn] {
            for (b, t, masked) in [(3, 4, true), (16, 8, true)] {
                let base = tiny(cell, Input::Tokens, Head::EveryStep, 7);
                let cfg = ModelConfig {
                    tied: true,
                    ..with_positions(base)
                };
                let model = check_token_model(&cfg, b, t, masked, 5);
                assert!(model.layout.bottleneck.is_some());
                assert_eq!(model.layout.proj_w, model.layout.embedding.clone().unwrap());
            }
        }
        // a tied model has no proj.weight, and fewer weights
        let cfg = tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 50);
        let tied = ModelConfig {
            tied: true,
            ..cfg.clone()
        };
        let names: Vec<String> = param_table(&tied).into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"bottleneck.weight".to_string()));
        assert!(!names.contains(&"proj.weight".to_string()));
        assert_eq!(cfg.num_params() - tied.num_params(), 50 * 5 - 3 * 5);
        // only a token model with an every-step head can tie
        let dense = ModelConfig {
            tied: true,
            ..tiny(Cell::Lstm, Input::Dense { dim: 4 }, Head::LastStep, 3)
        };
        assert!(dense.validate().is_err());
    }

    #[test]
    fn two_level_head_gradients_match_finite_differences() {
        // ids 3.. are rare: about half the random targets take the second level
        for (cell, tied) in [(Cell::Lstm, false), (Cell::Gru, true), (Cell::Rnn, true)] {
            for (b, t, masked) in [(3, 4, true), (16, 8, true)] {
                let cfg = ModelConfig {
                    tied,
                    shortlist: 3,
                    ..with_positions(tiny(cell, Input::Tokens, Head::EveryStep, 7))
                };
                let model = check_token_model(&cfg, b, t, masked, 9);
                for r in [&model.layout.rare_w, &model.layout.rare_b] {
                    let r = r.clone().expect("a shortlist adds the rare class");
                    assert!(model.grads[r].iter().any(|&g| g.abs() > 1e-6));
                }
            }
        }
        // the rare class adds one row and one bias
        let base = tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 50);
        let split = ModelConfig {
            shortlist: 10,
            ..base.clone()
        };
        assert_eq!(split.num_params() - base.num_params(), 5 + 1);
        for bad in [50, 60] {
            let cfg = ModelConfig {
                shortlist: bad,
                ..base.clone()
            };
            assert!(cfg.validate().is_err(), "shortlist {bad} of 50");
        }
        let dense = ModelConfig {
            shortlist: 2,
            ..tiny(Cell::Lstm, Input::Dense { dim: 4 }, Head::LastStep, 3)
        };
        assert!(dense.validate().is_err());
    }

    #[test]
    fn a_reset_puts_line_and_column_back_and_keeps_the_form() {
        let cfg = with_positions(tiny(Cell::Rnn, Input::Tokens, Head::EveryStep, 7));
        let kinds = pos_kinds(&cfg);
        let mut place = Place::default();
        // a title of two characters, BEGIN, the form tag, a character, a
        // line end, BEGIN again
        let got: Vec<[u32; 3]> = [3u32, 4, 1, 6, 3, 5, 1]
            .iter()
            .map(|&id| place.advance(kinds[id as usize], 3))
            .collect();
        let want = [
            [0, 1, 0],
            [0, 2, 0],
            [0, 0, 0],
            [0, 0, 1],
            [0, 1, 1],
            [1, 0, 1],
            [0, 0, 1],
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn places_count_lines_and_characters_read() {
        let cfg = with_positions(tiny(Cell::Rnn, Input::Tokens, Head::EveryStep, 7));
        let kinds = pos_kinds(&cfg);
        let mut place = Place::default();
        // BEGIN, the form tag, two characters, a line end, a character, PAD,
        // then past the cap
        let got: Vec<[u32; 3]> = [1u32, 6, 3, 4, 5, 3, 0, 5, 5, 2, 3, 3]
            .iter()
            .map(|&id| place.advance(kinds[id as usize], 3))
            .collect();
        let want: Vec<[u32; 3]> = [
            [0, 0, 0],
            [0, 0, 1],
            [0, 1, 1],
            [0, 2, 1],
            [1, 0, 1],
            [1, 1, 1],
            [1, 1, 1],
            [2, 0, 1],
            [2, 0, 1],
            [2, 1, 1],
            [2, 2, 1],
            [2, 2, 1],
        ]
        .to_vec();
        assert_eq!(got, want);
        // id 2 is not silent here, so it counted as a character above
        assert_eq!(
            place,
            Place {
                line: 3,
                col: 3,
                form: 1
            }
        );
    }

    #[test]
    fn dense_classifier_gradients_match_finite_differences() {
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            let cfg = tiny(cell, Input::Dense { dim: 4 }, Head::LastStep, 3);
            let mut rng = Rng::new(2);
            let mut model = Model::new(cfg.clone(), &mut rng);
            let (b, t) = (3, 5);
            let x: Vec<f32> = (0..b * t * 4).map(|_| rng.normal()).collect();
            let labels = vec![0u32, 2, 1];
            model.zero_grad();
            let (sum, _) = model.forward_backward_dense(&x, &labels, b, t, &mut rng);
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let none = RefMasks::default();
            let f = |p: &[f64]| {
                model_loss_ref(&cfg, p, RefInput::Dense(&x64), &labels, &[], b, t, &none)
            };
            let want = f(&model.params.iter().map(|&v| v as f64).collect::<Vec<_>>());
            assert!(
                (sum / b as f64 - want).abs() < 1e-5,
                "{cell}: loss {} vs reference {want}",
                sum / b as f64
            );
            grad_check(&mut model, &f, &format!("{cell} dense"));
            // predictions are the softmax of the same logits
            let mut probs = vec![0.0f32; b * 3];
            model.predict_dense(&x, b, t, &mut probs);
            let nll: f64 = labels
                .iter()
                .enumerate()
                .map(|(k, &l)| -(probs[k * 3 + l as usize] as f64).ln())
                .sum();
            assert!(
                (nll - sum).abs() < 1e-4,
                "predict_dense disagrees with the loss: {nll} vs {sum}"
            );
        }
    }

    #[test]
    fn step_weights_give_the_plain_steps_logits_at_batch_1_and_above() {
        // Batch 1 reads the half-precision copy, which exists only for weights
        // exact in f16; batch 4 reads the transposed copy through a GEMM.
        for (cell, round) in [
            (Cell::Lstm, true),
            (Cell::Gru, true),
            (Cell::Rnn, true),
            (Cell::Lstm, false),
        ] {
            let cfg = ModelConfig {
                cell,
                layers: 2,
                embed: 8,
                hidden: 20,
                vocab: 13,
                tied: cell == Cell::Gru,
                ..ModelConfig::default()
            };
            let mut rng = Rng::new(11);
            let mut model = Model::new(cfg, &mut rng);
            if round {
                for p in &mut model.params {
                    *p = half::f16::from_f32(*p).to_f32();
                }
            }
            for b in [1, crate::engine::STEP_GEMM_MIN_ROWS] {
                let wt = model.step_weights();
                let (mut plain, mut fast) = (model.new_state(b), model.new_state(b));
                let (mut want, mut got) = (vec![0.0f32; b * 13], vec![0.0f32; b * 13]);
                for t in 0..6u32 {
                    let tokens: Vec<u32> = (0..b as u32).map(|r| (t * 5 + r * 3) % 13).collect();
                    model.step(&mut plain, &tokens, &mut want);
                    model.step_with(Some(&wt), &mut fast, &tokens, Some(&mut got));
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() < 1e-5, "{cell} b {b} t {t}: {g} vs {w}");
                    }
                }
                let has_half = wt.half.get().is_some_and(|h| h.is_some());
                assert_eq!(has_half, b == 1 && round, "{cell} b {b} rounded {round}");
                assert_eq!(wt.t.get().is_some(), b > 1, "{cell} b {b}");
            }
        }
    }

    #[test]
    fn step_reproduces_the_batch_forward() {
        for (cell, shortlist) in [
            (Cell::Lstm, 0),
            (Cell::Gru, 0),
            (Cell::Rnn, 0),
            (Cell::Lstm, 4),
            (Cell::Gru, 6),
        ] {
            let cfg = ModelConfig {
                cell,
                shortlist,
                layers: 3,
                embed: 6,
                hidden: 9,
                vocab: 11,
                positions: (cell != Cell::Rnn).then(|| Positions {
                    size: 4,
                    line_ends: vec![7, 8],
                    silent: vec![0, 1, 2],
                    forms: if cell == Cell::Lstm {
                        vec![9, 10]
                    } else {
                        Vec::new()
                    },
                    resets: vec![1],
                }),
                tied: cell == Cell::Gru,
                ..ModelConfig::default()
            };
            let mut rng = Rng::new(3);
            let mut model = Model::new(cfg.clone(), &mut rng);
            let (b, t) = (5, 12);
            let bt = batch(b, t, 11, false, &mut rng);
            let (want, _) = model.loss(&bt);
            let mut state = model.new_state(b);
            let mut logits = vec![0.0f32; b * 11];
            let mut got = 0.0f64;
            for tt in 0..t {
                let tokens: Vec<u32> = (0..b).map(|bb| bt.inputs[bb * t + tt]).collect();
                model.step(&mut state, &tokens, &mut logits);
                if shortlist > 0 {
                    // a two-level head's step gives log-probabilities
                    for row in logits.chunks_exact(11) {
                        let total: f64 = row.iter().map(|&l| (l as f64).exp()).sum();
                        assert!((total - 1.0).abs() < 1e-5, "{cell}: Σ p = {total}");
                    }
                }
                softmax_rows(&mut logits, 11);
                for bb in 0..b {
                    got -= (logits[bb * 11 + bt.targets[bb * t + tt] as usize] as f64).ln();
                }
            }
            assert!(
                (got - want).abs() < 1e-4 * want,
                "{cell} shortlist {shortlist}: step loss {got} vs forward loss {want}"
            );
        }
    }

    #[test]
    fn dropout_changes_training_loss_but_not_evaluation() {
        let cfg = ModelConfig {
            dropout: 0.5,
            ..tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 7)
        };
        let mut rng = Rng::new(4);
        let mut model = Model::new(cfg, &mut rng);
        let bt = batch(3, 4, 7, false, &mut rng);
        let (a, _) = model.loss(&bt);
        let (b, _) = model.loss(&bt);
        assert_eq!(a, b);
        let (c, _) = model.forward_backward(&bt, &mut rng);
        assert_ne!(a, c);
        assert!(model.grads.iter().all(|g| g.is_finite()));
    }

    #[test]
    fn dropout_gradients_match_finite_differences_of_the_same_masks() {
        // the masks come from the rng, so a fixed seed gives the same masks for every evaluation
        let cfg = ModelConfig {
            dropout: 0.3,
            ..tiny(Cell::Gru, Input::Tokens, Head::EveryStep, 7)
        };
        let mut rng = Rng::new(5);
        let mut model = Model::new(cfg, &mut rng);
        let bt = batch(2, 3, 7, true, &mut rng);
        model.zero_grad();
        model.forward_backward(&bt, &mut Rng::new(9));
        let ana = model.grads.clone();
        let params = model.params.clone();
        let eps = 1e-2f32;
        // layer-1 weights sit behind the dropout; check a spread of them in f32 with a loose tolerance
        let r = model.layout.layers[1][0].clone();
        for k in r.step_by(7) {
            let mut at = |v: f32| {
                model.params.copy_from_slice(&params);
                model.params[k] = v;
                let (s, c) = model.forward_backward(&bt, &mut Rng::new(9));
                s / c
            };
            let num = (at(params[k] + eps) - at(params[k] - eps)) / (2.0 * eps as f64);
            assert!(
                (num - ana[k] as f64).abs() < 2e-3 + 2e-2 * num.abs(),
                "[{k}] numeric {num} analytic {}",
                ana[k]
            );
        }
    }

    /// Dropout on the embedding and the top layer's output (with and without
    /// dropout between the layers): the f64 reference, given the masks the
    /// forward drew, against the loss and every gradient.
    #[test]
    fn input_and_output_dropout_gradients_match_the_reference_with_the_same_masks() {
        let base = |cell| ModelConfig {
            dropout_in: 0.4,
            dropout_out: 0.3,
            ..tiny(cell, Input::Tokens, Head::EveryStep, 7)
        };
        let cases = [
            (
                ModelConfig {
                    dropout: 0.3,
                    tied: true,
                    ..with_positions(base(Cell::Lstm))
                },
                3,
                4,
            ),
            (
                ModelConfig {
                    dropout_in: 0.0,
                    ..base(Cell::Rnn)
                },
                2,
                5,
            ),
            (
                ModelConfig {
                    dropout_out: 0.0,
                    tied: true,
                    ..base(Cell::Lstm)
                },
                2,
                5,
            ),
            // 128 rows: the head splits over threads, with a shortlist
            (
                ModelConfig {
                    shortlist: 3,
                    ..base(Cell::Gru)
                },
                16,
                8,
            ),
        ];
        for (cfg, b, t) in cases {
            let mut rng = Rng::new(11);
            let mut model = Model::new(cfg.clone(), &mut rng);
            let bt = batch(b, t, cfg.vocab, true, &mut rng);
            model.zero_grad();
            let (sum, count) = model.forward_backward(&bt, &mut rng);
            let (n0, n) = (t * b * cfg.input_width(), t * b * cfg.hidden);
            let a = &model.acts;
            assert_eq!(a.in_dropped, cfg.dropout_in > 0.0);
            assert_eq!(a.out_dropped, cfg.dropout_out > 0.0);
            let site = |on: bool, m: &[f32], n: usize| match on {
                true => m[..n].to_vec(),
                false => Vec::new(),
            };
            let input = site(a.in_dropped, &a.x0_mask, n0);
            let output = site(a.out_dropped, &a.top_mask, n);
            let between: Vec<Vec<f32>> = (1..cfg.layers)
                .map(|l| match cfg.dropout > 0.0 {
                    true => a.layers[l].mask[..n].to_vec(),
                    false => Vec::new(),
                })
                .collect();
            for m in [&input, &output] {
                assert!(m.is_empty() || m.contains(&0.0) && m.iter().any(|&v| v > 1.0));
            }
            let masks = RefMasks {
                input: &input,
                between: between.iter().map(|v| &v[..]).collect(),
                output: &output,
            };
            let f = |p: &[f64]| {
                model_loss_ref(
                    &cfg,
                    p,
                    RefInput::Tokens(&bt.inputs),
                    &bt.targets,
                    &bt.mask,
                    b,
                    t,
                    &masks,
                )
            };
            let want = f(&model.params.iter().map(|&x| x as f64).collect::<Vec<_>>());
            let what = format!(
                "{} dropout in {} out {} B={b} T={t}",
                cfg.cell, cfg.dropout_in, cfg.dropout_out
            );
            assert!(
                (sum / count - want).abs() < 1e-5,
                "{what}: loss {} vs reference {want}",
                sum / count
            );
            grad_check(&mut model, &f, &what);
            // evaluation draws no masks
            let (l1, _) = model.loss(&bt);
            assert!(!model.acts.in_dropped && !model.acts.out_dropped);
            let undropped = model_loss_ref(
                &cfg,
                &model.params.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                RefInput::Tokens(&bt.inputs),
                &bt.targets,
                &bt.mask,
                b,
                t,
                &RefMasks::default(),
            );
            assert!((l1 / count - undropped).abs() < 1e-5, "{what}: eval loss");
        }
        let dense = tiny(Cell::Lstm, Input::Dense { dim: 4 }, Head::LastStep, 3);
        for (p_in, p_out) in [(0.1, 0.0), (0.0, 0.1)] {
            let bad = ModelConfig {
                dropout_in: p_in,
                dropout_out: p_out,
                ..dense.clone()
            };
            assert!(bad.validate().is_err());
        }
    }

    #[test]
    fn memorises_a_tiny_corpus() {
        // three short "poems" over an 8-symbol alphabet, learned to near-zero loss; each
        // starts with its own symbol (given as the first input) so every target is determined
        let seqs: [&[u32]; 3] = [
            &[4, 5, 6, 7, 4, 5, 6],
            &[5, 7, 6, 4, 6, 7, 7],
            &[6, 4, 4, 5, 7, 5, 4],
        ];
        let t = 7;
        let mut inputs = Vec::new();
        let mut targets = Vec::new();
        for s in seqs {
            inputs.extend_from_slice(s);
            targets.extend_from_slice(&s[1..]);
            targets.push(2); // END
        }
        let bt = Batch {
            b: 3,
            t,
            inputs,
            targets,
            mask: vec![1.0; 3 * t],
        };
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            let cfg = ModelConfig {
                cell,
                layers: 2,
                embed: 8,
                hidden: 24,
                vocab: 8,
                ..ModelConfig::default()
            };
            let mut rng = Rng::new(6);
            let mut model = Model::new(cfg, &mut rng);
            let mut adam = Adam::new(model.params.len(), 0.0);
            for _ in 0..300 {
                model.zero_grad();
                model.forward_backward(&bt, &mut rng);
                adam.step(&mut model.params, &model.grads, 0.01);
            }
            let (s, c) = model.loss(&bt);
            assert!(
                s / c < 0.05,
                "{cell}: loss per token after 300 steps is {}",
                s / c
            );
        }
    }

    #[test]
    fn from_params_checks_the_count_and_tensors_follow_the_table() {
        let cfg = ModelConfig::default();
        let model = Model::new(cfg.clone(), &mut Rng::new(0));
        assert_eq!(model.params.len(), cfg.num_params());
        let names: Vec<String> = model.tensors().into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(
            names[..3],
            ["embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0"]
        );
        assert_eq!(names.last().unwrap(), "proj.bias");
        // forget-gate bias starts at 1 (b_ih) + 0 (b_hh)
        let b_ih = model.tensors()[3].2;
        assert_eq!(&b_ih[128..256], &[1.0; 128][..]);
        assert!(Model::from_params(cfg.clone(), vec![0.0; 5]).is_err());
        let again = Model::new(cfg.clone(), &mut Rng::new(0));
        assert_eq!(
            model.params, again.params,
            "init is not deterministic from the rng"
        );
        assert!(Model::from_params(cfg, model.params.clone()).is_ok());
        assert!("gru".parse::<Cell>().is_ok() && "xyz".parse::<Cell>().is_err());
    }
}
