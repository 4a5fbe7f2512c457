//! The model: input (token embedding or dense rows) → L recurrent layers
//! (RNN, GRU or LSTM, each with its own weights, dropout between them) → a
//! linear head with softmax cross-entropy, either at every step (the poem
//! language model) or at the last step only (the MNIST classifier).
//!
//! All parameters live in one flat `Vec<f32>` laid out by [`param_table`]
//! (PyTorch's names and shapes), gradients in a second one of the same layout,
//! so the optimizer is one loop and a checkpoint is the table plus the vector.
//! Activations are sized on first use and grow when a batch needs more.
//!
//! This file holds [`Model`] and its batch entry points; the rest, in the
//! order a batch flows through it: `config.rs` (the architecture),
//! `layout.rs` (where each tensor sits), `acts.rs` (activation buffers),
//! `layers.rs` (input and recurrent layers, forward then backward),
//! `head.rs` (projection and softmax loss, forward and backward) and
//! `step.rs` (sampling one character at a time).
//! Not here: the kernels themselves (`engine/`), the optimizer (`optim.rs`),
//! checkpoints and the training loop (`checkpoint.rs`, `train.rs`).

mod acts;
mod config;
mod head;
mod layers;
mod layout;
mod step;
#[cfg(test)]
mod tests;
mod title;

pub use config::{
    Cell, Head, Input, ModelConfig, ModelError, Place, Positions, MAX_LAYERS, MAX_PARAMS,
    MAX_VOCAB, MAX_WIDTH,
};
pub use layout::param_table;
pub use step::{softmax_rows, State, StepWeights};

use acts::Acts;
use config::{pos_kinds, PosKind};
use layout::Layout;

use crate::batch::Batch;
use crate::engine::linear::linear_forward;
use crate::rng::Rng;

/// A recurrent model with its parameters, gradients and activation buffers.
pub struct Model {
    pub cfg: ModelConfig,
    pub params: Vec<f32>,
    pub grads: Vec<f32>,
    layout: Layout,
    acts: Acts,
    /// Per token id, what it does to a [`Place`] (empty without positions).
    pos_kind: Vec<PosKind>,
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
        Model::assemble(cfg, layout, params)
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
        Ok(Model::assemble(cfg, layout, params))
    }

    /// This model made to read titles: BEGIN resets the place, and with
    /// `vector` a title vector (see `title.rs`) whose map starts at zero, so
    /// that the model gives every poem read from one BEGIN the same logits as
    /// before. A model that has them already keeps them.
    pub fn learning_titles(self, begin: u32, vector: bool) -> Model {
        let mut cfg = self.cfg.clone();
        let Some(p) = cfg.positions.as_mut() else {
            return self;
        };
        p.resets = vec![begin];
        p.title |= vector;
        let old: std::collections::HashMap<String, &[f32]> = self
            .tensors()
            .into_iter()
            .map(|(name, _, v)| (name, v))
            .collect();
        let mut params = Vec::with_capacity(cfg.num_params());
        for (name, shape) in param_table(&cfg) {
            match old.get(&name) {
                Some(v) => params.extend_from_slice(v),
                None => params.resize(params.len() + shape.iter().product::<usize>(), 0.0),
            }
        }
        let layout = Layout::new(&cfg);
        Model::assemble(cfg, layout, params)
    }

    /// The model of `cfg` laid out as `layout` with weights `params`, zero
    /// gradients, and activations sized at the first pass.
    fn assemble(cfg: ModelConfig, layout: Layout, params: Vec<f32>) -> Model {
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
        let loss = self.head_forward_backward(b, t * b, 0, (1.0 / count) as f32);
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
        let loss = self.head_forward(b, t * b);
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
        let loss = self.head_forward_backward(t * b, b, (t - 1) * b, 1.0 / b as f32);
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
}
