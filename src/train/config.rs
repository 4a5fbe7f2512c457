//! A run's settings: [`TrainConfig`] with its defaults and presets, the
//! JSON file merged over them, and the checks before a run or a resume.

use serde::{Deserialize, Serialize};

use crate::corpus::convert::Script;
use crate::corpus::LoadOptions;
use crate::model::{Cell, Head, Input, ModelConfig, Positions};
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
    /// With `titles`, also tell every step the title through the title
    /// vector (see `model/title.rs`). Runs from before the setting existed
    /// had none; new runs have it unless it is turned off.
    #[serde(default = "runs_before_had_none")]
    pub title_vector: bool,
    /// With `titles`, draw the untitled fifth afresh each epoch (see
    /// [`crate::title::untitled_in_epoch`]), so that every poem also teaches the
    /// model to write without a title; otherwise one fixed fifth stays untitled,
    /// as in runs from before the setting existed. Trained from scratch with
    /// titles, the fixed fifth left titleless test perplexity 5.5% worse than a
    /// model that never saw titles (see docs/training.md).
    #[serde(default)]
    pub untitled_each_epoch: bool,
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
    /// [`BUDGET_PROBE_STEPS`](super::BUDGET_PROBE_STEPS) steps the run's step count is set from their
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

fn runs_before_had_none() -> bool {
    false
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
            title_vector: true,
            untitled_each_epoch: true,
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
        "title_vector",
        "untitled_each_epoch",
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
                title: self.titles && self.title_vector,
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
        crate::optim::lr_at(step, total, self.warmup, self.lr, self.min_lr)
    }
}

/// Most poems per batch, and the longest poem (in characters) a run may keep:
/// far past any use, short of sizes whose buffers cannot be allocated.
pub const MAX_BATCH: usize = 1 << 16;
pub const MAX_POEM_CHARS: usize = 100_000;
