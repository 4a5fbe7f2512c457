//! The training loop: settings, learning-rate schedule, evaluation, checkpoints,
//! progress and metrics. The shape follows nanoGPT's `train.py`.
//!
//! One step: take the next batch of the epoch (the epoch's order comes from
//! the seed and the epoch number alone), forward and backward, stop if the loss
//! or the gradient norm is not finite, clip the gradients by global norm, take
//! an Adam(W) step at `lr_at(step)`. Every `eval_interval` steps and at the end
//! of every epoch: the mean validation loss per character (masked on padding),
//! a row in `metrics.csv`, the loss plot, `last/` and, on improvement, `best/`.
//! Because the checkpoint holds the weights, Adam's moments, the RNG and the
//! position within the epoch, a run killed at any moment and resumed from
//! `last/` ends bit for bit where the uninterrupted run ends.
//!
//! What this file is not: it reads no corpus (the CLI does, and hands over
//! encoded sequences in [`Data`]), and it has no numeric kernels.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::batch::{Batch, Batcher};
use crate::checkpoint::{self, AdamSettings, Meta, Precision, Progress};
use crate::corpus::convert::Script;
use crate::corpus::forms::Form;
use crate::corpus::split::{part_of, text_hash, Part};
use crate::corpus::{LoadOptions, Poem};
use crate::model::{Cell, Head, Input, Model, ModelConfig, Positions};
use crate::optim::{clip_grad_norm, Adam};
use crate::rng::Rng;
use crate::vocab::Vocab;

/// Every setting of a run. A JSON file (`--config`) may give any subset; flags
/// override it; unknown keys are errors. Saved in each checkpoint and in the
/// run folder's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    // --- model ---
    /// Recurrent cell: rnn, gru or lstm.
    pub cell: Cell,
    /// Stacked recurrent layers, each with its own weights.
    pub layers: usize,
    /// Width of the character embedding.
    pub embed: usize,
    /// Hidden units per layer.
    pub hidden: usize,
    /// Dropout between layers (0 = none); off during evaluation.
    pub dropout: f32,
    /// Dropout on the embedding (with its position rows) and on the top
    /// layer's output (0 = none; see [`crate::model::ModelConfig::dropout_in`]);
    /// 0 in runs from before they existed.
    #[serde(default)]
    pub dropout_in: f32,
    #[serde(default)]
    pub dropout_out: f32,

    // --- data ---
    /// Which poems, as the corpus flags describe them (e.g. `tang`); a label, resolved by the CLI.
    pub corpus: String,
    /// Script the text is kept in.
    pub script: Script,
    /// Characters seen fewer times in the training split become UNK (a smaller
    /// vocabulary makes the softmax cheaper).
    pub min_count: usize,
    /// Shortest poem kept, in characters, punctuation included.
    pub min_len: usize,
    /// Longest poem kept, in characters (longer ones cost padding and memory).
    pub max_len: usize,
    /// Put a form tag (`五绝` `七绝` `五律` `七律`) after BEGIN in training poems
    /// of those forms, so that the model learns to keep a form it is asked
    /// for; 15% of them, chosen by a hash of the text, stay untagged so that
    /// BEGIN alone still means "any poem".
    pub form_tags: bool,
    /// Read each training poem's title before it (see [`crate::title`]), so
    /// that the model writes for a title it is given; a fifth of the poems
    /// stay untitled. False in runs from before the setting existed.
    #[serde(default)]
    pub titles: bool,
    /// Rows of the line and column embeddings added to each character's
    /// (see [`crate::model::Positions`]); 0 = none. Runs from before the
    /// setting existed had none.
    #[serde(default)]
    pub positions: usize,
    /// Predict through the embedding (see [`crate::model::ModelConfig::tied`]):
    /// fewer weights, and the head's work scales with `embed` instead of `hidden`.
    /// Runs from before the setting existed were untied.
    #[serde(default)]
    pub tied: bool,
    /// Predict the commonest `shortlist` ids directly and the rest through
    /// one shared class (see [`crate::model::ModelConfig::shortlist`]): the
    /// same kind of model, with a head about four times cheaper to train.
    /// 0 = one softmax, as in runs from before the setting existed.
    #[serde(default)]
    pub shortlist: usize,

    // --- optimiser ---
    /// Poems per batch.
    pub batch: usize,
    /// Peak learning rate, reached after the warm-up.
    pub lr: f32,
    /// Learning rate at the end of the cosine decay (= lr for a constant rate).
    pub min_lr: f32,
    /// Steps of linear warm-up from 0 to `lr`.
    pub warmup: u64,
    /// Passes over the training split.
    pub epochs: u64,
    /// Stop after this many steps even if epochs remain (0 = no limit); the decay ends here.
    pub max_steps: u64,
    /// Wall-clock budget in minutes, evaluations included (0 = none): after
    /// [`BUDGET_PROBE_STEPS`] steps the run's step count is set from their
    /// measured speed, and set again at every evaluation from the speed of the
    /// run so far, so a machine that slows down (or speeds up) moves the end
    /// with it; the decay ends there. The count is kept in the checkpoints, so
    /// `--resume` continues the plan. Epochs and `max_steps` still cap it.
    #[serde(default)]
    pub minutes: f64,
    /// Clip gradients to this global L2 norm (0 = no clipping).
    pub clip: f32,
    /// Decoupled weight decay: 0 = Adam, > 0 = AdamW.
    pub weight_decay: f32,

    // --- run ---
    /// Seeds the weights, the batch order of every epoch and dropout.
    pub seed: u64,
    /// Evaluate and checkpoint every this many steps (0 = only at the end of each epoch).
    pub eval_interval: u64,
    /// Validation batches per evaluation (0 = the whole validation split).
    pub eval_iters: usize,
    /// Log a line and a metrics row every this many steps.
    pub log_interval: u64,
    /// Write `last/` at every evaluation (needed for --resume after a kill); off = only at the end.
    pub always_save: bool,
    /// Store `best/` weights as f16 (half the size, for shipping; `last/` stays f32 to resume).
    pub half: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig::preset_default()
    }
}

/// Rows of the default preset's line and column embeddings: a 七律 has 8
/// lines of 7; longer lines and poems share the last row.
pub const POSITIONS: usize = 16;

/// The default preset's shortlist: Tang's 1,000 commonest characters are 86%
/// of its text, and the head's work is least near there (the shortlist plus
/// the rare class for every token, plus the rare ids for the 14% that are rare).
pub const SHORTLIST: usize = 1000;

/// The presets `--preset NAME` accepts.
pub const PRESETS: &[&str] = &["default", "seed"];

impl TrainConfig {
    /// Best quality for the time on two cores: the target is a Tang validation
    /// perplexity ≤ 0.55× a Kneser–Ney trigram's within 60 minutes. Five epochs
    /// of Tang are 12M tokens: 40 minutes at 5,000 tokens/s (the engine's goal
    /// for this size, 1.3× PyTorch), an hour at 3,300. Tied: four epochs reached
    /// validation perplexity 115.3 in 49 minutes, against 129.7 in 54 untied.
    pub fn preset_default() -> TrainConfig {
        TrainConfig {
            cell: Cell::Lstm,
            layers: 2,
            embed: 256,
            hidden: 512,
            // 0.2 against the overfitting that starts past 3.5 epochs: at the same
            // 2,627 steps it beat 0.1 at every evaluation (validation 118.9 vs 120.4)
            dropout: 0.2,
            // the embedding's and the top layer's output at 0.2 each, or the
            // output's alone, trailed at every evaluation to step 1,000 (see docs/training.md)
            dropout_in: 0.0,
            dropout_out: 0.0,
            corpus: "tang".into(),
            script: Script::Simplified,
            min_count: 2,
            min_len: LoadOptions::default().min_len,
            max_len: LoadOptions::default().max_len,
            form_tags: true,
            titles: false,
            positions: POSITIONS,
            tied: true,
            shortlist: SHORTLIST,
            // 32 rather than 64: twice the updates for the same tokens, at about the same
            // speed. In the hour: validation 184.4 / 241.5 at epoch 1, 105.0 / 118.9 at
            // the end, test 0.54× the trigram (see docs/training.md)
            batch: 32,
            lr: 3e-3,
            min_lr: 3e-4,
            // the same 12,800 poems as 200 steps of 64
            warmup: 400,
            epochs: 5,
            max_steps: 0,
            minutes: 0.0,
            clip: 1.0,
            weight_decay: 0.0,
            seed: 1,
            // the tokens of 500 steps of 64, as before the batch halved
            eval_interval: 1000,
            eval_iters: 0,
            log_interval: 20,
            always_save: true,
            half: false,
        }
    }

    /// The original project's settings: 2×LSTM-128, embedding 128, batch 64,
    /// Adam at a constant 0.01, 50 epochs. Clipping at 5 is a guard it lacked.
    pub fn preset_seed() -> TrainConfig {
        TrainConfig {
            embed: 128,
            hidden: 128,
            dropout: 0.0,
            dropout_in: 0.0,
            dropout_out: 0.0,
            batch: 64,
            lr: 0.01,
            min_lr: 0.01,
            warmup: 0,
            epochs: 50,
            clip: 5.0,
            form_tags: false,
            positions: 0,
            tied: false,
            shortlist: 0,
            // An epoch is ~700 steps: checkpoint within it, so a kill loses little.
            eval_interval: 200,
            ..TrainConfig::preset_default()
        }
    }

    pub fn preset(name: &str) -> Option<TrainConfig> {
        match name {
            "default" => Some(TrainConfig::preset_default()),
            "seed" => Some(TrainConfig::preset_seed()),
            _ => None,
        }
    }

    /// Applies a JSON object of settings over `self`; unknown keys and wrong
    /// types are errors naming the key.
    pub fn merge_json(&self, text: &str) -> Result<TrainConfig, String> {
        let over: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let serde_json::Value::Object(over) = over else {
            return Err("expected a JSON object of settings, like {\"lr\": 0.003}".into());
        };
        let mut base = serde_json::to_value(self).expect("TrainConfig serialises");
        let obj = base.as_object_mut().expect("TrainConfig is an object");
        for (k, v) in over {
            obj.insert(k, v);
        }
        serde_json::from_value(base).map_err(|e| e.to_string())
    }

    /// Settings a resumed run must share with its checkpoint: they fix the
    /// architecture, the vocabulary, or the batch order.
    pub const LOCKED: &'static [&'static str] = &[
        "cell",
        "layers",
        "embed",
        "hidden",
        "corpus",
        "script",
        "min_count",
        "min_len",
        "max_len",
        "form_tags",
        "titles",
        "positions",
        "tied",
        "shortlist",
        "batch",
        "seed",
    ];

    /// The first locked setting on which `new` disagrees with the checkpoint's
    /// `old`, as (key, old value, new value).
    pub fn resume_conflict(
        old: &TrainConfig,
        new: &TrainConfig,
    ) -> Option<(String, String, String)> {
        let (a, b) = (
            serde_json::to_value(old).unwrap(),
            serde_json::to_value(new).unwrap(),
        );
        TrainConfig::LOCKED.iter().find_map(|k| {
            let (x, y) = (&a[*k], &b[*k]);
            (x != y).then(|| (k.to_string(), x.to_string(), y.to_string()))
        })
    }

    /// Problems that would make the run meaningless, as one line.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (self.layers == 0, "layers must be at least 1"),
            (self.embed == 0, "embed must be at least 1"),
            (self.hidden == 0, "hidden must be at least 1"),
            (self.batch == 0, "batch must be at least 1"),
            (
                self.epochs == 0 && self.max_steps == 0 && self.minutes == 0.0,
                "epochs, max_steps or minutes must be positive",
            ),
            (
                !(self.minutes >= 0.0 && self.minutes.is_finite()),
                "minutes must be 0 (no budget) or positive",
            ),
            (
                !(self.lr > 0.0 && self.lr.is_finite()),
                "lr must be a positive number",
            ),
            (
                !(self.min_lr >= 0.0 && self.min_lr <= self.lr),
                "min_lr must be between 0 and lr",
            ),
            (
                !(0.0..1.0).contains(&self.dropout),
                "dropout must be in [0, 1)",
            ),
            (
                !(0.0..1.0).contains(&self.dropout_in),
                "dropout_in must be in [0, 1)",
            ),
            (
                !(0.0..1.0).contains(&self.dropout_out),
                "dropout_out must be in [0, 1)",
            ),
            (
                self.clip.is_nan() || self.clip < 0.0,
                "clip must be 0 (off) or positive",
            ),
            (
                self.weight_decay.is_nan() || self.weight_decay < 0.0,
                "weight_decay must be 0 (Adam) or positive (AdamW)",
            ),
            (self.log_interval == 0, "log_interval must be at least 1"),
            (
                self.layers > crate::model::MAX_LAYERS,
                "layers must be at most 64",
            ),
            (
                self.hidden > crate::model::MAX_WIDTH || self.embed > crate::model::MAX_WIDTH,
                "hidden and embed must be at most 65536",
            ),
            (self.batch > MAX_BATCH, "batch must be at most 65536"),
            (
                self.max_len > MAX_POEM_CHARS,
                "max_len must be at most 100000 characters",
            ),
        ];
        match checks.iter().find(|(bad, _)| *bad) {
            Some((_, msg)) => Err(msg.to_string()),
            None => Ok(()),
        }
    }

    /// The language model these settings describe, over `vocab`.
    pub fn model_config(&self, vocab: &Vocab) -> ModelConfig {
        ModelConfig {
            cell: self.cell,
            layers: self.layers,
            embed: self.embed,
            hidden: self.hidden,
            vocab: vocab.len(),
            dropout: self.dropout,
            dropout_in: self.dropout_in,
            dropout_out: self.dropout_out,
            input: Input::Tokens,
            head: Head::EveryStep,
            positions: (self.positions > 0).then(|| Positions {
                size: self.positions,
                line_ends: vocab.line_ends(),
                silent: vocab.silent(),
                forms: vocab.tag_ids(),
                resets: if self.titles {
                    vec![Vocab::BEGIN]
                } else {
                    Vec::new()
                },
            }),
            tied: self.tied,
            // a shortlist as long as the vocabulary is one softmax
            shortlist: if self.shortlist < vocab.len() {
                self.shortlist
            } else {
                0
            },
        }
    }

    /// Learning rate for optimiser step `step` (counting from 0) of `total`:
    /// linear warm-up to `lr`, then cosine decay to `min_lr` at `total`.
    pub fn lr_at(&self, step: u64, total: u64) -> f32 {
        if step < self.warmup {
            return self.lr * (step + 1) as f32 / self.warmup as f32;
        }
        if step >= total || total <= self.warmup {
            return self.min_lr;
        }
        let progress = (step - self.warmup) as f64 / (total - self.warmup) as f64;
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        (self.min_lr as f64 + coeff * (self.lr - self.min_lr) as f64) as f32
    }
}

/// The encoded corpus a run trains on.
pub struct Data {
    pub vocab: Vocab,
    /// Training poems, encoded without BEGIN/END; those of a tagged form start with its tag.
    pub train: Vec<Vec<u32>>,
    /// Validation poems, encoded without BEGIN/END and untagged, so that
    /// validation perplexity is over the characters alone, as in `shiren eval`.
    pub valid: Vec<Vec<u32>>,
    /// Description of the corpus, stored in checkpoints.
    pub corpus: String,
    pub script: Script,
}

impl Data {
    /// Splits poems by [`part_of`] (test poems are left out), builds the
    /// vocabulary from the training split unless one is given (a resumed run
    /// keeps its checkpoint's), and encodes. Poems over `max_len` characters are
    /// dropped. With `form_tags`, a new vocabulary gets the [`FORM_TAGS`] (a
    /// given one keeps whatever tags it has) and training poems are tagged.
    /// With `titles`, training poems are led by their cleaned title (see
    /// [`crate::title`]); validation poems never are, so validation
    /// perplexity stays the titleless one.
    #[allow(clippy::too_many_arguments)]
    pub fn from_poems(
        poems: &[Poem],
        vocab: Option<Vocab>,
        min_count: usize,
        max_len: usize,
        form_tags: bool,
        titles: bool,
        corpus: String,
        script: Script,
    ) -> Data {
        let kept = poems.iter().filter(|p| p.text.chars().count() <= max_len);
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        let mut train_titles = Vec::new();
        for p in kept {
            match part_of(&p.text) {
                Part::Train => {
                    train.push(p.text.as_str());
                    train_titles.push(
                        (titles && !crate::title::untitled(&p.text))
                            .then(|| crate::title::clean(&p.title))
                            .flatten(),
                    );
                }
                Part::Valid => valid.push(p.text.as_str()),
                Part::Test => {}
            }
        }
        let vocab = vocab.unwrap_or_else(|| {
            let v = Vocab::build(train.iter().copied(), min_count);
            if form_tags {
                v.with_tags(&FORM_TAGS.map(Form::name_zh))
            } else {
                v
            }
        });
        Data {
            train: train
                .iter()
                .zip(&train_titles)
                .map(|(t, title)| {
                    let mut ids = crate::title::prefix(&vocab, title.as_deref());
                    ids.extend(encode_tagged(&vocab, t));
                    ids
                })
                .collect(),
            valid: valid.iter().map(|t| vocab.encode(t)).collect(),
            vocab,
            corpus,
            script,
        }
    }
}

/// The forms that get a tag token, by their names (`Form::name_zh`).
pub const FORM_TAGS: [Form; 4] = [Form::Wujue, Form::Qijue, Form::Wulv, Form::Qilv];

/// Percent of the poems of a tagged form left untagged (see [`TrainConfig::form_tags`]).
const UNTAGGED_PERCENT: u64 = 15;

/// The poem's ids, led by its form's tag when the vocabulary has one for it
/// and the poem is not among the untagged share. The share is picked by the
/// high half of the split's hash, which the split (low digits) does not use.
pub fn encode_tagged(vocab: &Vocab, text: &str) -> Vec<u32> {
    let mut ids = Vec::with_capacity(text.len() / 3 + 1);
    let untagged = (text_hash(text) >> 32) % 100 < UNTAGGED_PERCENT;
    if !untagged {
        ids.extend(vocab.tag(Form::of_text(text).name_zh()));
    }
    ids.extend(vocab.encode(text));
    ids
}

impl Data {
    /// SHA-256 (hex) of the encoded training and validation poems, in order.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [&self.train, &self.valid] {
            h.update((part.len() as u64).to_le_bytes());
            for seq in part {
                h.update((seq.len() as u32).to_le_bytes());
                for id in seq {
                    h.update(id.to_le_bytes());
                }
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How to run, beyond the settings.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Run folder: config.json, metrics.csv, loss.png, best/, last/.
    pub out: PathBuf,
    /// Continue from this checkpoint (normally `<out>/last`).
    pub resume: Option<PathBuf>,
    /// Start from these weights instead of a fresh init (a new run: fresh
    /// optimizer, step 0); its vocabulary must be the data's.
    pub init_from: Option<(ModelConfig, Vec<f32>)>,
    /// No bar and no log lines (tests).
    pub quiet: bool,
    /// Stop right after this step without any end-of-run work, as a kill would
    /// (tests of resuming).
    pub stop_after: Option<u64>,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    pub steps: u64,
    pub tokens: u64,
    pub best_val_loss: Option<f64>,
    pub last_val_loss: Option<f64>,
    /// Mean training loss of the last logged interval (nats per character).
    pub last_train_loss: f64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    /// A resumed run found other training data than its checkpoint was trained on.
    pub data_changed: bool,
}

/// Training diverged: the message names the step and the checkpoint to go back to.
#[derive(Debug, thiserror::Error)]
#[error("training diverged at step {step} (epoch {epoch}): {what} is {value}; the last good checkpoint is {kept}: resume from it with a lower learning rate (now {lr}) or with gradient clipping")]
pub struct Diverged {
    pub step: u64,
    pub epoch: u64,
    pub what: &'static str,
    pub value: f64,
    pub lr: f32,
    pub kept: String,
}

/// A new run's folder already holds one: resume that run, or write elsewhere.
#[derive(Debug, thiserror::Error)]
#[error("{out}: already holds a run (its last checkpoint is {last}); resume it, or train into another folder")]
pub struct RunExists {
    pub out: String,
    pub last: String,
}

/// The run's length in steps from epochs, `max_steps` and a fixed time
/// budget (`budget_steps`, 0 while not yet fixed), whichever is smallest;
/// unbounded while only the time budget limits it and is not yet fixed.
fn total_steps(cfg: &TrainConfig, batches_per_epoch: usize, budget_steps: u64) -> u64 {
    [
        cfg.epochs * batches_per_epoch as u64,
        cfg.max_steps,
        budget_steps,
    ]
    .into_iter()
    .filter(|&n| n > 0)
    .min()
    .unwrap_or(u64::MAX)
}

/// Steps a run with a time budget times before fixing its length (after
/// `BUDGET_SKIP_STEPS` untimed ones, whose page faults and cold caches
/// are not the run's speed).
pub const BUDGET_PROBE_STEPS: u64 = 30;
const BUDGET_SKIP_STEPS: u64 = 5;

/// The step count that ends a run with `cfg.minutes` of wall-clock time:
/// `step` steps done after `elapsed_s` seconds, at `step_s` seconds per
/// training step, with evaluations of `val_tokens` tokens (a forward pass,
/// costed at a third of a training step's time per token) every
/// `eval_every` steps, and 2% kept in hand for checkpoints and noise.
fn budget_steps(
    cfg: &TrainConfig,
    step: u64,
    elapsed_s: f64,
    step_s: f64,
    tokens_per_step: f64,
    val_tokens: f64,
    eval_every: u64,
) -> u64 {
    let eval_s = val_tokens / tokens_per_step.max(1.0) * step_s / 3.0;
    let per_step = step_s + eval_s / eval_every.max(1) as f64;
    step + steps_that_fit(cfg.minutes, elapsed_s, per_step).max(1)
}

/// Steps of `per_step_s` seconds that fit in what is left of `minutes` after
/// `elapsed_s` seconds, with 2% of it kept in hand for checkpoints and noise.
fn steps_that_fit(minutes: f64, elapsed_s: f64, per_step_s: f64) -> u64 {
    let left = (minutes * 60.0 - elapsed_s).max(0.0) * 0.98;
    (left / per_step_s.max(1e-9)) as u64
}

/// The step count that ends a run with `cfg.minutes` of wall-clock time, set
/// again at an evaluation from the run's own record: `step` steps done after
/// `elapsed_s` seconds (evaluations included), training at `step_s` seconds
/// per step on average, and evaluations (with their checkpoints) taking
/// `eval_s` seconds each, every `eval_every` steps. `step` itself when no
/// time is left: the run ends at this evaluation.
fn refit_budget(
    cfg: &TrainConfig,
    step: u64,
    elapsed_s: f64,
    step_s: f64,
    eval_s: f64,
    eval_every: u64,
) -> u64 {
    let per_step = step_s + eval_s / eval_every.max(1) as f64;
    step + steps_that_fit(cfg.minutes, elapsed_s, per_step)
}

/// The batches of epoch `epoch`: a function of the seed and the epoch only,
/// so a resumed run sees the same order.
fn epoch_batches(batcher: &Batcher, seed: u64, epoch: u64) -> Vec<Batch> {
    batcher.epoch(&mut Rng::new(seed).fork(0x0E90_C400 + epoch))
}

/// Mean validation loss per character (nats) over `batches`; None without any.
fn evaluate(model: &mut Model, batches: &[Batch]) -> Option<f64> {
    let (mut sum, mut count) = (0.0, 0.0);
    for b in batches {
        let (s, c) = model.loss(b);
        sum += s;
        count += c;
    }
    (count > 0.0).then(|| sum / count)
}

/// Most poems per batch, and the longest poem (in characters) a run may keep:
/// far past any use, short of sizes whose buffers cannot be allocated.
pub const MAX_BATCH: usize = 1 << 16;
pub const MAX_POEM_CHARS: usize = 100_000;

/// Trains per `cfg` on `data`, writing into `opts.out`.
pub fn train(cfg: &TrainConfig, data: &Data, opts: &Options) -> anyhow::Result<Summary> {
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("bad setting: {e}"))?;
    anyhow::ensure!(
        !data.train.is_empty(),
        "no training poems (the corpus is empty after filtering; loosen the corpus filters or max_len)"
    );
    let out = &opts.out;
    let (last_dir, best_dir) = (out.join("last"), out.join("best"));
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create the run folder", out.display()))?;
    // Held to the end of the run; a second trainer on this folder stops here.
    let _lock = crate::limits::RunLock::take(out)?;
    // The sizes, and the memory a batch of the longest poems needs, before any allocation.
    let model_cfg = match &opts.resume {
        Some(dir) => checkpoint::load_meta(dir)?.model,
        None => cfg.model_config(&data.vocab),
    };
    model_cfg
        .validate()
        .map_err(|e| anyhow::anyhow!("bad setting: {e}"))?;
    let longest = data
        .train
        .iter()
        .chain(&data.valid)
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    crate::limits::check_memory(
        &format!(
            "a batch of {} poems of up to {longest} characters",
            cfg.batch
        ),
        crate::limits::train_step_bytes(&model_cfg, cfg.batch, longest + 2),
        "lower --batch or --max-len, or use a smaller model",
    )?;

    // --- model, optimiser and position: fresh or from the checkpoint ---
    let (mut model, mut adam, mut progress) = match &opts.resume {
        Some(dir) => {
            let loaded = checkpoint::load(dir)?;
            anyhow::ensure!(
                loaded.vocab.to_json() == data.vocab.to_json(),
                "{}: the data was encoded with another vocabulary than the checkpoint's (resume with the checkpoint's vocab.json)",
                dir.display()
            );
            let (adam, progress) = checkpoint::load_resume(dir, &loaded.model)?;
            let mut model = loaded.model;
            model.cfg.dropout = cfg.dropout;
            model.cfg.dropout_in = cfg.dropout_in;
            model.cfg.dropout_out = cfg.dropout_out;
            (model, adam, progress)
        }
        None => {
            checkpoint::recover(&last_dir)?;
            if last_dir.join(checkpoint::CONFIG_FILE).exists() {
                return Err(RunExists {
                    out: out.display().to_string(),
                    last: last_dir.display().to_string(),
                }
                .into());
            }
            let model = match &opts.init_from {
                Some((mc, params)) => {
                    anyhow::ensure!(
                        mc.vocab == data.vocab.len(),
                        "the starting model's vocabulary has {} ids, the data's {} (encode the corpus with the model's vocab.json)",
                        mc.vocab,
                        data.vocab.len()
                    );
                    let mut m = Model::from_params(mc.clone(), params.clone())?;
                    m.cfg.dropout = cfg.dropout;
                    m.cfg.dropout_in = cfg.dropout_in;
                    m.cfg.dropout_out = cfg.dropout_out;
                    // A model that learns titles reads BEGIN as the reset that ends one;
                    // the starting model read every sequence from a first BEGIN, which a
                    // reset leaves as it was, so its weights keep their meaning.
                    if let (true, Some(p)) = (cfg.titles, m.cfg.positions.as_mut()) {
                        p.resets = vec![Vocab::BEGIN];
                    }
                    m
                }
                None => Model::new(cfg.model_config(&data.vocab), &mut Rng::new(cfg.seed)),
            };
            let adam = Adam::new(model.params.len(), cfg.weight_decay);
            let progress = Progress {
                step: 0,
                epoch: 0,
                position: 0,
                best_val_loss: None,
                rng: Rng::new(cfg.seed).fork(0xD80F),
                tokens: 0,
                elapsed_s: 0.0,
                log_loss: 0.0,
                log_tokens: 0.0,
                data_sha256: String::new(),
                budget_steps: 0,
                adam: AdamSettings {
                    beta1: 0.0,
                    beta2: 0.0,
                    eps: 0.0,
                    weight_decay: 0.0,
                    t: 0,
                },
            };
            (model, adam, progress)
        }
    };
    // Weight decay may change on resume; the moments stay.
    adam.weight_decay = cfg.weight_decay;
    let data_sha256 = data.fingerprint();
    let data_note = (opts.resume.is_some() && progress.data_sha256 != data_sha256).then(|| {
        format!(
            "note: these {} training poems differ from those the checkpoint was trained on (the corpus or its cleaning changed); the run goes on, but will not end where an uninterrupted run would",
            data.train.len()
        )
    });
    progress.data_sha256 = data_sha256;

    let train_cfg_json = serde_json::to_value(cfg).expect("TrainConfig serialises");
    crate::cache::write_atomic(
        &out.join("config.json"),
        serde_json::to_string_pretty(cfg)
            .expect("TrainConfig serialises")
            .as_bytes(),
    )?;
    let mut meta = Meta::new(
        model.cfg.clone(),
        train_cfg_json,
        data.script,
        data.corpus.clone(),
    );

    let batcher = Batcher::new(data.train.clone(), cfg.batch);
    let n_batches = batcher.num_batches();
    let mut total = total_steps(cfg, n_batches, progress.budget_steps);
    let mut val_batches =
        Batcher::new(data.valid.clone(), cfg.batch).epoch(&mut Rng::new(cfg.seed).fork(0x7A11));
    if cfg.eval_iters > 0 {
        val_batches.truncate(cfg.eval_iters);
    }

    let mut metrics = Metrics::open(
        &out.join("metrics.csv"),
        progress.step,
        opts.resume.is_some(),
    )?;
    let log = Log::new(opts.quiet, total, progress.step);
    if let Some(dir) = &opts.resume {
        log.line(&if progress.step >= total {
            format!(
                "resuming {} at step {}: the run is already finished ({total} steps), nothing left to do",
                dir.display(),
                progress.step
            )
        } else if total == u64::MAX {
            format!("resuming {} from step {}", dir.display(), progress.step)
        } else {
            format!(
                "resuming {} from step {} of {total}",
                dir.display(),
                progress.step
            )
        });
    }
    log.line(&format!(
        "training {} poems ({} tokens, {} batches/epoch), validating on {} poems; {} parameters; {}",
        data.train.len(),
        batcher.num_tokens(),
        n_batches,
        data.valid.len(),
        model.params.len(),
        if total == u64::MAX {
            format!(
                "steps: as many as fit in {} min (counted after step {})",
                cfg.minutes,
                progress.step + BUDGET_SKIP_STEPS + BUDGET_PROBE_STEPS
            )
        } else {
            format!("{total} steps")
        }
    ));
    if let Some(note) = &data_note {
        log.line(note);
    }
    if val_batches.is_empty() {
        log.line("note: no validation poems (the split set none aside from so small a corpus); best/ is not written, last/ is");
    }

    let mut batches = epoch_batches(&batcher, cfg.seed, progress.epoch);
    let mut last_val = None;
    let mut int_start = Instant::now();
    let mut last_train_loss = f64::NAN;
    let run_start = Instant::now();
    let elapsed_before = progress.elapsed_s;
    let mut eval_time = 0.0;
    let start_step = progress.step;
    // (clock, eval_time, tokens) when the time budget's probe began
    let mut probe_start = None;
    let mut evals_here = 0u32;
    let eval_every = if cfg.eval_interval > 0 {
        cfg.eval_interval.min(n_batches as u64)
    } else {
        n_batches as u64
    };

    while progress.step < total {
        if progress.position >= batches.len() {
            progress.epoch += 1;
            progress.position = 0;
            batches = epoch_batches(&batcher, cfg.seed, progress.epoch);
        }
        let batch = &batches[progress.position];
        let lr = cfg.lr_at(progress.step, total);
        model.zero_grad();
        let (loss_sum, count) = model.forward_backward(batch, &mut progress.rng);
        let loss = loss_sum / count.max(1.0);
        let kept = || {
            if last_dir.join(checkpoint::CONFIG_FILE).exists() {
                last_dir.display().to_string()
            } else {
                "none (no checkpoint was written yet)".to_string()
            }
        };
        if !loss.is_finite() {
            return Err(Diverged {
                step: progress.step,
                epoch: progress.epoch,
                what: "the loss",
                value: loss,
                lr,
                kept: kept(),
            }
            .into());
        }
        let norm = if cfg.clip > 0.0 {
            clip_grad_norm(&mut model.grads, cfg.clip) as f64
        } else {
            model
                .grads
                .iter()
                .map(|g| (*g as f64) * (*g as f64))
                .sum::<f64>()
                .sqrt()
        };
        if !norm.is_finite() {
            return Err(Diverged {
                step: progress.step,
                epoch: progress.epoch,
                what: "the gradient norm",
                value: norm,
                lr,
                kept: kept(),
            }
            .into());
        }
        adam.step(&mut model.params, &model.grads, lr);
        progress.step += 1;
        progress.position += 1;
        progress.tokens += count as u64;
        progress.log_loss += loss_sum;
        progress.log_tokens += count;

        if cfg.minutes > 0.0 && progress.budget_steps == 0 {
            let done_here = progress.step - start_step;
            if done_here == BUDGET_SKIP_STEPS {
                probe_start = Some((Instant::now(), eval_time, progress.tokens));
            } else if let (Some((t0, e0, k0)), true) = (
                probe_start,
                done_here == BUDGET_SKIP_STEPS + BUDGET_PROBE_STEPS,
            ) {
                let step_s = (t0.elapsed().as_secs_f64() - (eval_time - e0)).max(1e-9)
                    / BUDGET_PROBE_STEPS as f64;
                let tokens_per_step = (progress.tokens - k0) as f64 / BUDGET_PROBE_STEPS as f64;
                let val_tokens: f64 = val_batches
                    .iter()
                    .map(|b| b.mask.iter().sum::<f32>() as f64)
                    .sum();
                let elapsed = elapsed_before + run_start.elapsed().as_secs_f64();
                progress.budget_steps = budget_steps(
                    cfg,
                    progress.step,
                    elapsed,
                    step_s,
                    tokens_per_step,
                    val_tokens,
                    eval_every,
                );
                total = total_steps(cfg, n_batches, progress.budget_steps);
                log.set_total(total);
                log.line(&format!(
                    "time budget: {} min at {:.2} s/step (steps {}–{}) → {} steps in all{}",
                    cfg.minutes,
                    step_s,
                    progress.step - BUDGET_PROBE_STEPS,
                    progress.step,
                    progress.budget_steps,
                    if total < progress.budget_steps {
                        format!("; the epochs end sooner, at step {total}")
                    } else {
                        "; the learning-rate decay ends there".into()
                    }
                ));
            }
        }
        let epoch_done = progress.position == batches.len();
        let mut finished = progress.step == total;
        let epoch_f = progress.epoch as f64 + progress.position as f64 / batches.len() as f64;
        if progress.step % cfg.log_interval == 0 || finished {
            let secs = int_start.elapsed().as_secs_f64().max(1e-9);
            last_train_loss = progress.log_loss / progress.log_tokens.max(1.0);
            let tok_s = progress.log_tokens / secs;
            metrics.push(Row {
                step: progress.step,
                epoch: epoch_f,
                train_loss: Some(last_train_loss),
                val_loss: None,
                tok_s: Some(tok_s),
                lr,
            })?;
            log.progress(
                progress.step,
                &format!(
                    "epoch {}/{} loss {:.4} {:.0} tok/s lr {:.2e}",
                    progress.epoch + 1,
                    cfg.epochs.max(1),
                    last_train_loss,
                    tok_s,
                    lr
                ),
            );
            log.line(&format!(
                "step {:>6} | epoch {:>6.3} | loss {:.4} | {:>6.0} tok/s | lr {:.2e} | |g| {:.3}",
                progress.step, epoch_f, last_train_loss, tok_s, lr, norm
            ));
            (progress.log_loss, progress.log_tokens) = (0.0, 0.0);
            int_start = Instant::now();
        }
        if opts.stop_after == Some(progress.step) {
            return Ok(Summary {
                data_changed: data_note.is_some(),
                ..summary(
                    &progress,
                    last_val,
                    last_train_loss,
                    elapsed_before,
                    run_start,
                    eval_time,
                )
            });
        }

        let eval_due = (cfg.eval_interval > 0 && progress.step % cfg.eval_interval == 0)
            || epoch_done
            || finished;
        if eval_due {
            let t0 = Instant::now();
            let val = evaluate(&mut model, &val_batches);
            if let Some(val) = val.filter(|v| !v.is_finite()) {
                return Err(Diverged {
                    step: progress.step,
                    epoch: progress.epoch,
                    what: "the validation loss",
                    value: val,
                    lr,
                    kept: kept(),
                }
                .into());
            }
            last_val = val;
            if cfg.minutes > 0.0 && progress.budget_steps > 0 && !finished {
                // the probe's 30 steps cannot foresee a neighbour's load: fit the
                // rest of the budget to the speed of all the run so far
                let eval_s = t0.elapsed().as_secs_f64();
                let now_s = run_start.elapsed().as_secs_f64();
                let step_s =
                    (now_s - eval_time - eval_s) / (progress.step - start_step).max(1) as f64;
                let per_eval = (eval_time + eval_s) / f64::from(evals_here + 1);
                let budget = refit_budget(
                    cfg,
                    progress.step,
                    elapsed_before + now_s,
                    step_s,
                    per_eval,
                    eval_every,
                );
                if budget != progress.budget_steps {
                    progress.budget_steps = budget;
                    let new_total = total_steps(cfg, n_batches, budget);
                    if new_total != total {
                        total = new_total;
                        log.set_total(total);
                        log.line(&format!(
                            "time budget: {:.2} s/step and {:.1} s per evaluation so far → {} steps in all",
                            step_s, per_eval, total
                        ));
                    }
                    finished = progress.step == total;
                }
            }
            let improved = val.is_some_and(|v| progress.best_val_loss.is_none_or(|b| v < b));
            if improved {
                progress.best_val_loss = val;
            }
            progress.elapsed_s = elapsed_before + run_start.elapsed().as_secs_f64() - eval_time;
            if val.is_some() {
                metrics.push(Row {
                    step: progress.step,
                    epoch: epoch_f,
                    train_loss: None,
                    val_loss: val,
                    tok_s: None,
                    lr,
                })?;
            }
            meta.step = progress.step;
            meta.val_loss = val;
            meta.best_val_loss = progress.best_val_loss;
            meta.model = model.cfg.clone();
            if improved {
                let mut m = meta.clone();
                let resume = if cfg.half {
                    m.precision = Precision::F16;
                    None
                } else {
                    Some((&adam, &progress))
                };
                checkpoint::save(&best_dir, &model, &data.vocab, &m, resume)?;
            }
            if cfg.always_save || finished {
                checkpoint::save(
                    &last_dir,
                    &model,
                    &data.vocab,
                    &meta,
                    Some((&adam, &progress)),
                )?;
            }
            metrics.plot(&out.join("loss.png"));
            if let Some(val) = val {
                log.line(&format!(
                    "eval step {}: val loss {:.4} nats/char, perplexity {:.2}{}",
                    progress.step,
                    val,
                    val.exp(),
                    if improved { " (best)" } else { "" }
                ));
            }
            // Restart the throughput clock so evaluation does not count as training time.
            eval_time += t0.elapsed().as_secs_f64();
            evals_here += 1;
            int_start = Instant::now();
        }
    }
    log.finish();
    let s = Summary {
        data_changed: data_note.is_some(),
        ..summary(
            &progress,
            last_val,
            last_train_loss,
            elapsed_before,
            run_start,
            eval_time,
        )
    };
    log.line(&format!(
        "done: {} steps, {} tokens, {:.0} tok/s; best val loss {} nats/char (perplexity {}); checkpoints in {}",
        s.steps,
        s.tokens,
        s.tokens_per_s,
        s.best_val_loss.map_or("-".into(), |v| format!("{v:.4}")),
        s.best_val_loss.map_or("-".into(), |v| format!("{:.2}", v.exp())),
        out.display()
    ));
    Ok(s)
}

fn summary(
    p: &Progress,
    last_val: Option<f64>,
    last_train: f64,
    before: f64,
    start: Instant,
    eval_s: f64,
) -> Summary {
    let elapsed = before + start.elapsed().as_secs_f64() - eval_s;
    Summary {
        steps: p.step,
        tokens: p.tokens,
        best_val_loss: p.best_val_loss,
        last_val_loss: last_val,
        last_train_loss: last_train,
        tokens_per_s: p.tokens as f64 / elapsed.max(1e-9),
        elapsed_s: elapsed,
        data_changed: false,
    }
}

// ---------------------------------------------------------------------------
// progress output

/// The indicatif bar on a terminal, plain log lines otherwise.
struct Log {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Log {
    fn new(quiet: bool, total: u64, at: u64) -> Log {
        if quiet {
            return Log { bar: None, quiet };
        }
        let bar = indicatif::ProgressBar::new(total);
        if bar.is_hidden() {
            return Log { bar: None, quiet };
        }
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} {msg} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_position(at);
        bar.reset_eta();
        Log {
            bar: Some(bar),
            quiet,
        }
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(bar) => bar.println(s),
            None if !self.quiet => eprintln!("{s}"),
            None => {}
        }
    }

    fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    fn progress(&self, pos: u64, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
            bar.set_message(msg.to_string());
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

// ---------------------------------------------------------------------------
// metrics.csv and the loss plot

/// One row of metrics.csv; training rows leave the validation columns empty and vice versa.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub step: u64,
    pub epoch: f64,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub tok_s: Option<f64>,
    pub lr: f32,
}

pub const METRICS_HEADER: &str = "step,epoch,train_loss,val_loss,val_ppl,tok_s,lr";

impl Row {
    fn to_csv(&self) -> String {
        let opt =
            |x: Option<f64>, digits: usize| x.map_or(String::new(), |v| format!("{v:.digits$}"));
        format!(
            "{},{:.4},{},{},{},{},{:e}",
            self.step,
            self.epoch,
            opt(self.train_loss, 5),
            opt(self.val_loss, 5),
            opt(self.val_loss.map(f64::exp), 3),
            opt(self.tok_s, 0),
            self.lr
        )
    }

    fn parse(line: &str) -> Option<Row> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 7 {
            return None;
        }
        let opt = |s: &str| {
            if s.is_empty() {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        Some(Row {
            step: f[0].parse().ok()?,
            epoch: f[1].parse().ok()?,
            train_loss: opt(f[2])?,
            val_loss: opt(f[3])?,
            tok_s: opt(f[5])?,
            lr: f[6].parse().ok()?,
        })
    }
}

struct Metrics {
    path: PathBuf,
    rows: Vec<Row>,
    file: std::fs::File,
}

impl Metrics {
    /// Starts metrics.csv, or on resume keeps the rows up to the checkpoint's
    /// step (rows written after it, before a kill, will be written again).
    fn open(path: &Path, step: u64, resume: bool) -> anyhow::Result<Metrics> {
        let mut rows = Vec::new();
        let mut text = format!("{METRICS_HEADER}\n");
        if resume {
            if let Ok(old) = std::fs::read_to_string(path) {
                // The kept rows are copied as they were written: printed
                // again from the parsed (rounded) loss, a perplexity could
                // come out one digit off the straight run's.
                for line in old.lines().skip(1) {
                    if let Some(r) = Row::parse(line).filter(|r| r.step <= step) {
                        rows.push(r);
                        text.push_str(line);
                        text.push('\n');
                    }
                }
            }
        }
        crate::cache::write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot append", path.display()))?;
        Ok(Metrics {
            path: path.to_path_buf(),
            rows,
            file,
        })
    }

    fn push(&mut self, row: Row) -> anyhow::Result<()> {
        writeln!(self.file, "{}", row.to_csv())
            .with_context(|| format!("{}: cannot append", self.path.display()))?;
        self.rows.push(row);
        Ok(())
    }

    /// Writes the loss plot; a failure is reported but never stops training.
    fn plot(&self, png: &Path) {
        if let Err(e) = plot_losses(png, &self.rows) {
            eprintln!("shiren: {}: cannot draw the loss plot: {e}", png.display());
        }
    }
}

/// Training and validation loss (nats per character) against the step, as a PNG.
pub fn plot_losses(png: &Path, rows: &[Row]) -> crate::plot::PlotResult {
    use crate::plot::{lines, Line};
    use plotters::style::{BLUE, RED};
    let train: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r.step as f64, r.train_loss?)))
        .collect();
    let val: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r.step as f64, r.val_loss?)))
        .collect();
    if train.is_empty() && val.is_empty() {
        return Ok(());
    }
    let all = || train.iter().chain(&val);
    let x_max = all().map(|p| p.0).fold(1.0, f64::max);
    // The first steps' loss (ln V ≈ 8.7) would flatten the curve: scale to the later part.
    let skip = train.len() / 20;
    let ys = || train.iter().skip(skip).chain(&val).map(|p| p.1);
    let (y_min, y_max) = (
        ys().fold(f64::INFINITY, f64::min),
        ys().fold(f64::NEG_INFINITY, f64::max),
    );
    let pad = ((y_max - y_min) * 0.05).max(0.01);
    let series = [
        Line {
            label: "train".into(),
            points: train,
            color: BLUE,
            width: 1,
            dots: false,
        },
        Line {
            label: "validation".into(),
            points: val,
            color: RED,
            width: 2,
            dots: true,
        },
    ];
    lines(
        png,
        "shiren: loss per character (nats)",
        ("step", "nats per character"),
        x_max,
        (y_min - pad)..(y_max + pad),
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_tags_lead_most_regulated_training_poems_and_no_other_poem() {
        // 400 distinct 五绝 and 400 five-line poems (no tagged form).
        let han: Vec<char> = "山水风月花鸟云天江海春秋日夜人家".chars().collect();
        let line = |k: usize, salt: usize| -> String {
            (0..5)
                .map(|j| han[(k / 16usize.pow(j as u32) + salt * j) % 16])
                .collect()
        };
        let poem = |k: usize, lines: usize| Poem {
            title: String::new(),
            author: String::new(),
            text: (0..lines)
                .map(|i| format!("{}{}", line(k, i), if i % 2 == 0 { '，' } else { '。' }))
                .collect(),
            source: String::new(),
        };
        let poems: Vec<Poem> = (0..400)
            .map(|k| poem(k, 4))
            .chain((0..400).map(|k| poem(k, 5)))
            .collect();
        let data = Data::from_poems(
            &poems,
            None,
            1,
            100,
            true,
            false,
            "toy".into(),
            Script::Simplified,
        );
        let tag = data
            .vocab
            .tag("五绝")
            .expect("a tagged vocabulary has 五绝");
        let tags: Vec<u32> = FORM_TAGS
            .iter()
            .filter_map(|f| data.vocab.tag(f.name_zh()))
            .collect();
        assert_eq!(tags.len(), 4);
        let (mut tagged, mut wujue) = (0, 0);
        for seq in &data.train {
            assert!(
                !seq[1..].iter().any(|t| tags.contains(t)),
                "a tag inside a poem"
            );
            // 4 lines of 6 (5 + punctuation) = 24 characters, plus the tag.
            if seq.len() == 25 || seq.len() == 24 {
                wujue += 1;
                tagged += usize::from(seq[0] == tag);
            } else {
                assert!(!tags.contains(&seq[0]), "a five-line poem was tagged");
            }
        }
        let share = tagged as f64 / wujue as f64;
        assert!((0.75..0.95).contains(&share), "{tagged} of {wujue} tagged");
        assert!(data
            .valid
            .iter()
            .all(|s| !s.iter().any(|t| tags.contains(t))));
        let plain = Data::from_poems(
            &poems,
            None,
            1,
            100,
            false,
            false,
            "toy".into(),
            Script::Simplified,
        );
        assert!(plain.vocab.tags().is_empty());
        assert_eq!(plain.vocab.len() + 4, data.vocab.len());
    }

    #[test]
    fn titles_lead_most_training_poems_between_two_begins_and_never_validation() {
        let han: Vec<char> = "山水风月花鸟云天江海春秋日夜人家".chars().collect();
        let poems: Vec<Poem> = (0..600)
            .map(|k| Poem {
                title: format!("{}{}二首 一", han[k % 16], han[(k + 1) % 16]),
                author: String::new(),
                text: format!(
                    "{}{}{}{}{}，白日依山尽。",
                    han[k % 16],
                    han[k / 16 % 16],
                    han[k / 256 % 16],
                    han[(k + 3) % 16],
                    han[(k + 5) % 16]
                ),
                source: String::new(),
            })
            .collect();
        let data = Data::from_poems(
            &poems,
            None,
            1,
            100,
            false,
            true,
            "toy".into(),
            Script::Simplified,
        );
        let cfg = TrainConfig {
            titles: true,
            ..TrainConfig::default()
        };
        assert_eq!(
            cfg.model_config(&data.vocab).positions.unwrap().resets,
            [Vocab::BEGIN]
        );
        let mut titled = 0;
        for seq in &data.train {
            let k = crate::title::prefix_len(seq);
            if k > 0 {
                titled += 1;
                // the cleaned title (two characters, no count), then BEGIN
                assert_eq!(k, 3, "{seq:?}");
                let title = data.vocab.decode(&seq[..2]);
                assert!(han.contains(&title.chars().next().unwrap()), "{title}");
                let poem = data.vocab.decode(&seq[k..]);
                assert!(poem.ends_with("白日依山尽。"), "{poem}");
            }
        }
        let share = titled as f64 / data.train.len() as f64;
        assert!((0.7..0.9).contains(&share), "{share}");
        assert!(data.valid.iter().all(|s| !s.contains(&Vocab::BEGIN)));
        // a batch scores the poem and END, not the title
        let seq = data
            .train
            .iter()
            .find(|s| crate::title::prefix_len(s) > 0)
            .unwrap();
        let b = crate::batch::Batch::from_seqs(&[seq.as_slice()]);
        assert_eq!(b.num_tokens(), seq.len() - 3 + 1);
    }

    #[test]
    fn lr_warms_up_linearly_then_decays_by_cosine_to_min_lr() {
        let cfg = TrainConfig {
            lr: 1.0,
            min_lr: 0.1,
            warmup: 10,
            ..TrainConfig::default()
        };
        assert_eq!(cfg.lr_at(0, 110), 0.1);
        assert_eq!(cfg.lr_at(4, 110), 0.5);
        assert_eq!(cfg.lr_at(10, 110), 1.0);
        assert!((cfg.lr_at(60, 110) - 0.55).abs() < 1e-6);
        assert!((cfg.lr_at(109, 110) - 0.1).abs() < 1e-3);
        assert_eq!(cfg.lr_at(500, 110), 0.1);
        let constant = TrainConfig::preset_seed();
        assert_eq!(constant.lr_at(0, 100), 0.01);
        assert_eq!(constant.lr_at(77, 100), 0.01);
    }

    #[test]
    fn json_overrides_keep_the_rest_and_reject_unknown_keys() {
        let base = TrainConfig::preset_seed();
        let c = base
            .merge_json(r#"{"hidden": 256, "cell": "gru"}"#)
            .unwrap();
        assert_eq!(
            (c.hidden, c.cell, c.embed, c.lr),
            (256, Cell::Gru, 128, 0.01)
        );
        let err = base.merge_json(r#"{"hiden": 256}"#).unwrap_err();
        assert!(err.contains("unknown field `hiden`"), "{err}");
        let err = base.merge_json(r#"{"hidden": "big"}"#).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        assert!(base.merge_json("[1]").is_err());
        // The saved form reads back to the same settings.
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(TrainConfig::default().merge_json(&text).unwrap(), c);
    }

    #[test]
    fn resume_conflicts_name_the_key_and_both_values() {
        let a = TrainConfig::preset_default();
        let b = TrainConfig {
            hidden: 256,
            lr: 1e-4,
            ..a.clone()
        };
        assert_eq!(
            TrainConfig::resume_conflict(&a, &b),
            Some(("hidden".into(), "512".into(), "256".into()))
        );
        let c = TrainConfig {
            lr: 1e-4,
            epochs: 9,
            dropout: 0.3,
            ..a.clone()
        };
        assert_eq!(TrainConfig::resume_conflict(&a, &c), None);
    }

    #[test]
    fn total_steps_takes_the_smaller_limit() {
        let mut cfg = TrainConfig {
            epochs: 3,
            max_steps: 0,
            ..TrainConfig::default()
        };
        assert_eq!(total_steps(&cfg, 10, 0), 30);
        cfg.max_steps = 25;
        assert_eq!(total_steps(&cfg, 10, 0), 25);
        assert_eq!(total_steps(&cfg, 10, 20), 20);
        assert_eq!(total_steps(&cfg, 10, 40), 25);
        cfg.epochs = 0;
        assert_eq!(total_steps(&cfg, 10, 0), 25);
        cfg.max_steps = 0;
        assert_eq!(total_steps(&cfg, 10, 0), u64::MAX, "a budget not yet fixed");
        assert_eq!(total_steps(&cfg, 10, 7), 7);
    }

    #[test]
    fn a_time_budget_counts_the_steps_that_fit() {
        let cfg = TrainConfig {
            minutes: 10.0,
            ..TrainConfig::default()
        };
        // 600 s, 60 used: 540 × 0.98 = 529.2 s left at 2 s/step without evaluations
        assert_eq!(
            budget_steps(&cfg, 35, 60.0, 2.0, 4000.0, 0.0, 500),
            35 + 264
        );
        // evaluating 12,000 tokens (3 steps' worth, a step's time) every 100 steps
        let per = 2.0 + 2.0 / 100.0;
        let want = 35 + (529.2 / per) as u64;
        assert_eq!(
            budget_steps(&cfg, 35, 60.0, 2.0, 4000.0, 12000.0, 100),
            want
        );
        // over budget already: one more step, not zero (which would mean "none")
        assert_eq!(budget_steps(&cfg, 35, 700.0, 2.0, 4000.0, 0.0, 500), 36);
    }

    #[test]
    fn a_time_budget_is_refitted_to_the_speed_so_far() {
        let cfg = TrainConfig {
            minutes: 10.0,
            ..TrainConfig::default()
        };
        // 300 steps in 300 s: 294 s left at 1 s/step and a 10 s evaluation per 100 steps
        assert_eq!(refit_budget(&cfg, 300, 300.0, 1.0, 10.0, 100), 300 + 267);
        // the same point on a machine that now runs twice as slow: half the steps left
        assert_eq!(refit_budget(&cfg, 300, 300.0, 2.0, 20.0, 100), 300 + 133);
        // no time left: the run ends at this evaluation
        assert_eq!(refit_budget(&cfg, 300, 650.0, 1.0, 10.0, 100), 300);
    }

    #[test]
    fn metrics_rows_round_trip_through_csv() {
        let r = Row {
            step: 5,
            epoch: 0.25,
            train_loss: Some(3.5),
            val_loss: None,
            tok_s: Some(1234.0),
            lr: 3e-3,
        };
        assert_eq!(Row::parse(&r.to_csv()), Some(r));
        let v = Row {
            step: 9,
            epoch: 1.0,
            train_loss: None,
            val_loss: Some(2.0),
            tok_s: None,
            lr: 1e-4,
        };
        let line = v.to_csv();
        assert!(line.contains(",7.389,"), "{line}");
        assert_eq!(Row::parse(&line), Some(v));
    }

    #[test]
    fn plot_is_written_with_or_without_text() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<Row> = (1..50)
            .map(|i| Row {
                step: i,
                epoch: i as f64 / 10.0,
                train_loss: Some(5.0 / i as f64),
                val_loss: (i % 10 == 0).then_some(5.5 / i as f64),
                tok_s: Some(1.0),
                lr: 1e-3,
            })
            .collect();
        let png = dir.path().join("loss.png");
        plot_losses(&png, &rows).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
