//! The model's architecture as stored in a checkpoint's config.json:
//! [`ModelConfig`] with its cell, input, head and [`Positions`], the bounds
//! [`ModelConfig::validate`] holds it to, and [`Place`], the line, column and
//! form each token's position rows come from. Not here: where each tensor
//! sits in the flat parameters (`layout.rs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::param_table;

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
    /// The title vector (see `model/title.rs`): the mean of the title's
    /// embedding rows, mapped by `title.weight` (E × E), added to every step's
    /// input from the reset that ends the title on. False (the default, and
    /// checkpoints from before it existed): the title is only read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub title: bool,
}

impl Positions {
    /// The tables' names and rows: line, column, and form when there are forms.
    pub(super) fn tables(&self) -> Vec<(&'static str, usize)> {
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
    /// Characters read since the last reset (or the start): at a reset, a title's length.
    pub since_reset: u32,
    /// Whether a title has been read (models with a title vector; see `model/title.rs`).
    pub titled: bool,
}

/// What a token does to the [`Place`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PosKind {
    /// A character moves the column.
    Char,
    /// A line end moves to the next line's column 0.
    LineEnd,
    /// Padding, BEGIN, END and the like leave the place as it is.
    Silent,
    /// A reset (BEGIN after a title) puts line and column back to 0.
    Reset,
    /// Form tag k sets the form to row k + 1 of the form table.
    Form(u8),
}

impl Place {
    /// The place after reading a token of `kind`, and its rows in the line,
    /// column and form tables.
    pub(super) fn advance(&mut self, kind: PosKind, size: usize) -> [u32; 3] {
        match kind {
            PosKind::LineEnd => {
                self.line += 1;
                self.col = 0;
            }
            PosKind::Char => {
                self.col += 1;
                self.since_reset += 1;
            }
            PosKind::Silent => {}
            PosKind::Reset => {
                self.line = 0;
                self.col = 0;
                self.since_reset = 0;
            }
            PosKind::Form(k) => self.form = k as u32 + 1,
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
                if p.title {
                    n = add(n, &[self.embed, self.embed])?;
                }
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
            let most = u8::MAX as usize + 1;
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
pub(super) fn pos_kinds(cfg: &ModelConfig) -> Vec<PosKind> {
    let Some(p) = &cfg.positions else {
        return Vec::new();
    };
    let mut kinds = vec![PosKind::Char; cfg.vocab];
    for &id in &p.silent {
        kinds[id as usize] = PosKind::Silent;
    }
    for &id in &p.line_ends {
        kinds[id as usize] = PosKind::LineEnd;
    }
    // validate() holds the tags to what a u8 counts
    for (k, &id) in p.forms.iter().enumerate() {
        kinds[id as usize] = PosKind::Form(k as u8);
    }
    for &id in &p.resets {
        kinds[id as usize] = PosKind::Reset;
    }
    kinds
}
