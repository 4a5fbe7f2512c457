//! Training and evaluating the row-by-row digit classifier.
//!
//! The loop has the shape of the poem trainer (and nanoGPT's): `lr_at(step)`
//! with a linear warmup and cosine decay, Adam, gradient clipping, a line in
//! `metrics.csv` every `log_every` steps, a validation pass and a checkpoint
//! at the end of every epoch, and resume from that checkpoint. An epoch is
//! one shuffled pass over the training images in full batches.
//!
//! The network is `model::Model` (the engine's LSTM over T = rows steps of
//! D = cols pixels, a linear head on the last step); nothing here computes a
//! gradient itself. Validation uses images held out from the training set, so
//! the test set is touched only by `evaluate` when the user asks.
//!
//! Checkpoints are `crate::checkpoint`'s folders (no vocabulary, `kind:
//! "mnist"`), written as `OUT/last` at the end of every epoch.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::idx::Digits;
use crate::checkpoint::{self, AdamSettings, Precision, ResumeState};
use crate::model::{Cell, Head, Input, Model, ModelConfig};
use crate::optim::{clip_grad_norm, Adam};
use crate::progress::Log;
use crate::rng::Rng;

/// Number of classes: the digits 0-9.
pub const CLASSES: usize = 10;

/// Settings of a training run; saved in the checkpoint, printed at the start.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MnistConfig {
    /// LSTM hidden units per layer.
    pub hidden: usize,
    /// Stacked LSTM layers.
    pub layers: usize,
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch: usize,
    /// Peak Adam learning rate, reached after `warmup` steps.
    pub lr: f32,
    /// The learning rate decays along a cosine to `lr * min_lr_frac` at the last step.
    pub min_lr_frac: f32,
    /// Steps of linear warmup from 0 (Adam's first steps are large otherwise).
    pub warmup: u64,
    /// AdamW decoupled weight decay; 0 is plain Adam.
    pub weight_decay: f32,
    /// Gradients are scaled down to this global norm when larger.
    pub clip: f32,
    /// Training images held out (from the end of the set) for validation.
    pub valid: usize,
    /// Train on only the first N training images (quick trials); 0 = all.
    pub limit: usize,
    /// Seed of initialization and shuffling.
    pub seed: u64,
    /// Steps between lines of metrics.csv.
    pub log_every: u64,
}

impl Default for MnistConfig {
    fn default() -> Self {
        MnistConfig {
            hidden: 128,
            layers: 1,
            epochs: 6,
            batch: 64,
            lr: 3e-3,
            min_lr_frac: 0.02,
            warmup: 100,
            weight_decay: 0.0,
            clip: 5.0,
            valid: 5000,
            limit: 0,
            seed: 1337,
            log_every: 50,
        }
    }
}

impl MnistConfig {
    /// The classifier for images of `rows`×`cols`: an LSTM read over the rows.
    pub fn model_config(&self, cols: usize) -> ModelConfig {
        ModelConfig {
            cell: Cell::Lstm,
            layers: self.layers,
            embed: cols,
            hidden: self.hidden,
            vocab: CLASSES,
            dropout: 0.0,
            dropout_in: 0.0,
            dropout_out: 0.0,
            input: Input::Dense { dim: cols },
            head: Head::LastStep,
            positions: None,
            tied: false,
            shortlist: 0,
        }
    }

    /// Learning rate at optimizer step `step` (0-based) of `total`: the poem
    /// trainer's schedule, decaying to `lr * min_lr_frac`.
    pub fn lr_at(&self, step: u64, total: u64) -> f32 {
        crate::optim::lr_at(
            step,
            total,
            self.warmup,
            self.lr,
            self.lr * self.min_lr_frac,
        )
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.hidden > 0 && self.layers > 0,
            "hidden and layers must be at least 1"
        );
        anyhow::ensure!(self.batch > 0, "batch must be at least 1");
        anyhow::ensure!(
            self.lr > 0.0 && self.lr.is_finite(),
            "learning rate must be a positive number, got {}",
            self.lr
        );
        anyhow::ensure!(self.log_every > 0, "log_every must be at least 1");
        Ok(())
    }
}

/// Splits the training images into (train, validation): the last `valid` go to validation.
pub fn split_valid(train: &Digits, cfg: &MnistConfig) -> anyhow::Result<(Digits, Digits)> {
    let n = if cfg.limit > 0 {
        cfg.limit.min(train.len())
    } else {
        train.len()
    };
    anyhow::ensure!(
        cfg.valid < n,
        "holding out {} validation images leaves none of the {n} to train on (hold out fewer)",
        cfg.valid
    );
    let all = train.head(n);
    let cut = n - cfg.valid;
    let (a, b): (Vec<usize>, Vec<usize>) = ((0..cut).collect(), (cut..n).collect());
    Ok((all.select(&a), all.select(&b)))
}

/// The result of running a model over a set of digits.
#[derive(Clone, Debug, Serialize)]
pub struct Eval {
    pub n: usize,
    pub correct: usize,
    /// Mean cross-entropy, nats.
    pub loss: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: [[usize; CLASSES]; CLASSES],
    /// For each image, the predicted class and its probability.
    #[serde(skip)]
    pub predictions: Vec<(u8, f32)>,
}

impl Eval {
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.n.max(1) as f64
    }
}

/// Forward only, over `d` in batches of `batch`.
pub fn evaluate(model: &mut Model, d: &Digits, batch: usize) -> Eval {
    let mut ev = Eval {
        n: d.len(),
        correct: 0,
        loss: 0.0,
        confusion: [[0; CLASSES]; CLASSES],
        predictions: Vec::with_capacity(d.len()),
    };
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut probs = vec![0f32; batch * CLASSES];
    let idx: Vec<usize> = (0..d.len()).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let b = chunk.len();
        d.fill_batch(chunk, &mut x, &mut y);
        model.predict_dense(&x, b, d.rows, &mut probs[..b * CLASSES]);
        for (i, &label) in y.iter().enumerate() {
            let p = &probs[i * CLASSES..(i + 1) * CLASSES];
            let pred = (0..CLASSES)
                .max_by(|&a, &c| p[a].total_cmp(&p[c]))
                .unwrap_or(0);
            ev.loss -= (p[label as usize].max(1e-30) as f64).ln();
            ev.confusion[label as usize][pred] += 1;
            ev.correct += (pred == label as usize) as usize;
            ev.predictions.push((pred as u8, p[pred]));
        }
    }
    ev.loss /= ev.n.max(1) as f64;
    ev
}

/// config.json's `kind` for a digit classifier.
pub const KIND: &str = "mnist";

/// Progress of a run, saved at the end of each epoch (state.json).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Completed epochs.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// The generator as it stands at the start of the next epoch.
    pub rng: Rng,
    /// Best validation accuracy seen so far, in [0, 1].
    pub best_valid_acc: f64,
    /// Training time so far, over all resumed runs, in seconds.
    pub seconds: f64,
    /// Adam's scalars; its moments are in optim.safetensors.
    pub adam: AdamSettings,
}

impl ResumeState for State {
    fn step(&self) -> u64 {
        self.step
    }
    fn adam(&self) -> &AdamSettings {
        &self.adam
    }
}

/// A classifier's config.json: the shared header and the run's settings.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    kind: String,
    model: ModelConfig,
    step: u64,
    train: MnistConfig,
}

/// Everything a checkpoint holds.
pub struct Saved {
    pub model: Model,
    pub train: MnistConfig,
    pub adam: Adam,
    pub state: State,
}

/// The checkpoint `dir` means: `dir` itself, or the run folder's `last/`.
pub fn find_checkpoint(dir: &Path) -> Option<PathBuf> {
    checkpoint::find_in(dir, &["last"])
}

/// Writes the checkpoint `dir` (replacing it whole, so a kill leaves the old
/// one or the new); `state.adam` must be `adam`'s.
fn save_checkpoint(
    dir: &Path,
    model: &Model,
    train: &MnistConfig,
    adam: &Adam,
    state: &State,
) -> anyhow::Result<()> {
    let header = Header {
        format: checkpoint::FORMAT.to_string(),
        version: checkpoint::VERSION,
        kind: KIND.to_string(),
        model: model.cfg.clone(),
        step: state.step,
        train: train.clone(),
    };
    checkpoint::write_dir(
        dir,
        &header,
        model,
        Precision::F32,
        None,
        Some((adam, state)),
    )?;
    Ok(())
}

/// The checkpoint folder in `dir`, or a one-line error naming what is missing.
fn checkpoint_in(dir: &Path) -> anyhow::Result<PathBuf> {
    find_checkpoint(dir).with_context(|| {
        format!(
            "{}: cannot read (no classifier checkpoint in {} or its last/; train one with `shiren mnist train --out {}`)",
            dir.join(checkpoint::CONFIG_FILE).display(),
            dir.display(),
            dir.display()
        )
    })
}

/// Loads the model, its settings and progress (for evaluation).
pub fn load_model(dir: &Path) -> anyhow::Result<(Model, MnistConfig, State)> {
    let dir = checkpoint_in(dir)?;
    let header: Header = checkpoint::read_config(&dir, KIND)?;
    let model = checkpoint::read_model(&dir, &header.model)?;
    let state = checkpoint::read_state(&dir)?;
    Ok((model, header.train, state))
}

/// Loads everything, Adam included (for resuming).
pub fn load_checkpoint(dir: &Path) -> anyhow::Result<Saved> {
    let dir = checkpoint_in(dir)?;
    let header: Header = checkpoint::read_config(&dir, KIND)?;
    let model = checkpoint::read_model(&dir, &header.model)?;
    let (adam, state) = checkpoint::read_resume(&dir, &model)?;
    Ok(Saved {
        model,
        train: header.train,
        adam,
        state,
    })
}

/// How a run reports as it goes.
pub struct Progress {
    /// Draw an indicatif bar on stderr (plain lines when it is no terminal);
    /// false: say nothing.
    pub bar: bool,
}

/// What a finished run reports.
pub struct Summary {
    pub model: Model,
    pub valid: Eval,
    pub state: State,
}

/// Trains a classifier on `train`, validating on `valid` each epoch, writing
/// `metrics.csv` and the checkpoint `last/` into `out`. With `resume`, continues that
/// checkpoint (whose config must already be merged into `cfg`).
pub fn train(
    train: &Digits,
    valid: &Digits,
    cfg: &MnistConfig,
    out: &Path,
    resume: Option<Saved>,
    progress: &Progress,
) -> anyhow::Result<Summary> {
    cfg.validate()?;
    anyhow::ensure!(!train.is_empty(), "no training images");
    let b = cfg.batch.min(train.len());
    let steps_per_epoch = (train.len() / b) as u64;
    let total = steps_per_epoch * cfg.epochs as u64;
    let (mut model, mut adam, mut state) = match resume {
        Some(s) => (s.model, s.adam, s.state),
        None => {
            let mut rng = Rng::new(cfg.seed);
            let model = Model::new(cfg.model_config(train.cols), &mut rng);
            let adam = Adam::new(model.params.len(), cfg.weight_decay);
            let state = State {
                epoch: 0,
                step: 0,
                rng,
                best_valid_acc: 0.0,
                seconds: 0.0,
                adam: AdamSettings::of(&adam),
            };
            (model, adam, state)
        }
    };
    anyhow::ensure!(
        model.cfg.input == (Input::Dense { dim: train.cols }),
        "the model reads {} per step but the images have {} columns",
        model.cfg.input,
        train.cols
    );
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let csv_path = out.join("metrics.csv");
    let mut csv = std::fs::OpenOptions::new()
        .create(true)
        .append(state.step > 0)
        .write(true)
        .truncate(state.step == 0)
        .open(&csv_path)
        .with_context(|| format!("{}: cannot open", csv_path.display()))?;
    if state.step == 0 {
        writeln!(
            csv,
            "step,epoch,lr,train_loss,train_acc,valid_loss,valid_acc,seconds"
        )?;
    }

    let log = Log::new(!progress.bar, total, state.step.min(total));

    let start = Instant::now();
    let seconds_before = state.seconds;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut last_valid = None;
    let (mut win_loss, mut win_correct, mut win_n) = (0.0f64, 0usize, 0usize);
    while state.epoch < cfg.epochs {
        // The shuffle comes from the generator saved at the epoch's start, so
        // a resumed run sees the same order an uninterrupted one would.
        let mut rng = state.rng.clone();
        let mut perm: Vec<usize> = (0..train.len()).collect();
        rng.shuffle(&mut perm);
        for chunk in perm.chunks_exact(b) {
            let lr = cfg.lr_at(state.step, total);
            train.fill_batch(chunk, &mut x, &mut y);
            model.zero_grad();
            let (loss, correct) = model.forward_backward_dense(&x, &y, b, train.rows, &mut rng);
            anyhow::ensure!(
                loss.is_finite(),
                "the loss became {loss} at step {} (lower the learning rate)",
                state.step
            );
            clip_grad_norm(&mut model.grads, cfg.clip);
            adam.step(&mut model.params, &model.grads, lr);
            state.step += 1;
            win_loss += loss;
            win_correct += correct;
            win_n += b;
            if state.step % cfg.log_every == 0 {
                let (l, a) = (win_loss / win_n as f64, win_correct as f64 / win_n as f64);
                let secs = seconds_before + start.elapsed().as_secs_f64();
                writeln!(
                    csv,
                    "{},{},{lr:.6},{l:.5},{a:.5},,,{secs:.1}",
                    state.step, state.epoch
                )?;
                log.progress(
                    state.step,
                    &format!(
                        "epoch {}/{} loss {l:.4} acc {:.2}%",
                        state.epoch + 1,
                        cfg.epochs,
                        100.0 * a
                    ),
                );
                (win_loss, win_correct, win_n) = (0.0, 0, 0);
            }
        }
        state.epoch += 1;
        state.rng = rng;
        let ev = evaluate(&mut model, valid, 500);
        state.best_valid_acc = state.best_valid_acc.max(ev.accuracy());
        state.seconds = seconds_before + start.elapsed().as_secs_f64();
        writeln!(
            csv,
            "{},{},{:.6},,,{:.5},{:.5},{:.1}",
            state.step,
            state.epoch,
            cfg.lr_at(state.step.saturating_sub(1), total),
            ev.loss,
            ev.accuracy(),
            state.seconds
        )?;
        csv.flush()?;
        state.adam = AdamSettings::of(&adam);
        save_checkpoint(&out.join("last"), &model, cfg, &adam, &state)?;
        log.line(&format!(
            "epoch {}/{}: validation accuracy {:.2}%, loss {:.4} ({:.0} s)",
            state.epoch,
            cfg.epochs,
            100.0 * ev.accuracy(),
            ev.loss,
            state.seconds
        ));
        last_valid = Some(ev);
    }
    log.finish();
    let valid = match last_valid {
        Some(ev) => ev,
        None => evaluate(&mut model, valid, 500),
    };
    Ok(Summary {
        model,
        valid,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_warms_up_then_decays_to_the_floor() {
        let cfg = MnistConfig {
            lr: 1.0,
            warmup: 10,
            min_lr_frac: 0.1,
            ..MnistConfig::default()
        };
        assert!((cfg.lr_at(0, 110) - 0.1).abs() < 1e-6);
        assert!((cfg.lr_at(9, 110) - 1.0).abs() < 1e-6);
        assert!((cfg.lr_at(10, 110) - 1.0).abs() < 1e-6);
        assert!((cfg.lr_at(60, 110) - 0.55).abs() < 1e-5);
        assert!((cfg.lr_at(110, 110) - 0.1).abs() < 1e-6);
        assert!(cfg.lr_at(500, 110) >= 0.1 - 1e-6);
    }

    #[test]
    fn validation_split_takes_the_end() {
        let d = Digits {
            rows: 1,
            cols: 1,
            images: (0..10).collect(),
            labels: (0..10).collect(),
        };
        let cfg = MnistConfig {
            valid: 3,
            limit: 8,
            ..MnistConfig::default()
        };
        let (t, v) = split_valid(&d, &cfg).unwrap();
        assert_eq!(t.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(v.labels, vec![5, 6, 7]);
        let all = MnistConfig { valid: 10, ..cfg };
        assert!(split_valid(&d, &MnistConfig { limit: 0, ..all }).is_err());
    }
}
