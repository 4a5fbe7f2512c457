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
//!
//! This file holds the loop ([`train`]); beside it: `config.rs` (settings
//! and presets), `data.rs` (the encoded poems), `budget.rs` (the time
//! budget's step count) and `metrics.rs` (progress, metrics.csv, the plot).

mod budget;
mod config;
mod data;
mod metrics;
#[cfg(test)]
mod tests;

pub use budget::BUDGET_PROBE_STEPS;
pub use config::{TrainConfig, MAX_BATCH, MAX_POEM_CHARS, POSITIONS, PRESETS, SHORTLIST};
pub use data::{encode_tagged, Data};
pub use metrics::{plot_losses, MetricsRow, METRICS_HEADER};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::batch::{Batch, Batcher};
use crate::checkpoint::{self, AdamSettings, Meta, Precision, Progress};
use crate::model::{Model, ModelConfig};
use crate::optim::{clip_grad_norm, Adam};
use crate::progress::Log;
use crate::rng::Rng;
use crate::vocab::Vocab;
use budget::{total_steps, Budget, BUDGET_SKIP_STEPS};
use metrics::Metrics;

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

/// The batches of epoch `epoch`: a function of the data, the seed and the
/// epoch only, so a resumed run sees the same order. The poems are those of
/// [`Data::epoch_train`], whose titles may differ from epoch to epoch.
fn epoch_batches(data: &Data, batch: usize, seed: u64, epoch: u64) -> Vec<Batch> {
    Batcher::new(data.epoch_train(epoch), batch)
        .epoch(&mut Rng::new(seed).fork(0x0E90_C400 + epoch))
}

/// The validation batches every evaluation runs over: the first `eval_iters`
/// (all when 0) of one fixed shuffle.
fn validation_batches(cfg: &TrainConfig, data: &Data) -> Vec<Batch> {
    let mut batches =
        Batcher::new(data.valid.clone(), cfg.batch).epoch(&mut Rng::new(cfg.seed).fork(0x7A11));
    if cfg.eval_iters > 0 {
        batches.truncate(cfg.eval_iters);
    }
    batches
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

/// Trains per `cfg` on `data`, writing into `opts.out`.
pub fn train(cfg: &TrainConfig, data: &Data, opts: &Options) -> anyhow::Result<Summary> {
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("bad setting: {e}"))?;
    anyhow::ensure!(
        !data.train.is_empty(),
        "no training poems (the corpus is empty after filtering; loosen the corpus filters or max_len)"
    );
    let out = &opts.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create the run folder", out.display()))?;
    // Held to the end of the run; a second trainer on this folder stops here.
    let _lock = crate::limits::RunLock::take(out)?;
    check_sizes(cfg, data, opts)?;

    let (mut model, mut adam, mut progress) = start_run(cfg, data, opts, &out.join("last"))?;
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
    let saves = Checkpoints::open(cfg, data, &model, out)?;

    // this epoch's poems, for the counts in the opening lines (batches per epoch never change)
    let batcher = Batcher::new(data.epoch_train(progress.epoch), cfg.batch);
    let n_batches = batcher.num_batches();
    let mut total = total_steps(cfg, n_batches, progress.budget_steps);
    let val_batches = validation_batches(cfg, data);

    let metrics = Metrics::open(
        &out.join("metrics.csv"),
        progress.step,
        opts.resume.is_some(),
    )?;
    let log = Log::new(opts.quiet, total, progress.step);
    let params = model.params.len();
    let opening = opening_lines(cfg, data, opts, &progress, total, &batcher, params);
    for line in opening.iter().chain(&data_note) {
        log.line(line);
    }
    if val_batches.is_empty() {
        log.line("note: no validation poems (the split set none aside from so small a corpus); best/ is not written, last/ is");
    }
    let mut r = Reports {
        log,
        metrics,
        saves,
        plot: out.join("loss.png"),
    };

    let mut batches = epoch_batches(data, cfg.batch, cfg.seed, progress.epoch);
    let mut last_val = None;
    let mut int_start = Instant::now();
    let mut last_train_loss = f64::NAN;
    let eval_every = match cfg.eval_interval {
        0 => n_batches as u64,
        every => every.min(n_batches as u64),
    };
    let mut budget = Budget::start(&progress, eval_every);

    while progress.step < total {
        if progress.position >= batches.len() {
            progress.epoch += 1;
            progress.position = 0;
            batches = epoch_batches(data, cfg.batch, cfg.seed, progress.epoch);
        }
        let batch = &batches[progress.position];
        let lr = cfg.lr_at(progress.step, total);
        model.zero_grad();
        let (loss_sum, count) = model.forward_backward(batch, &mut progress.rng);
        let loss = loss_sum / count.max(1.0);
        if !loss.is_finite() {
            return Err(r.saves.diverged(&progress, "the loss", loss, lr));
        }
        let norm = grad_norm(&mut model.grads, cfg.clip);
        if !norm.is_finite() {
            return Err(r.saves.diverged(&progress, "the gradient norm", norm, lr));
        }
        adam.step(&mut model.params, &model.grads, lr);
        progress.step += 1;
        progress.position += 1;
        progress.tokens += count as u64;
        progress.log_loss += loss_sum;
        progress.log_tokens += count;

        if let Some(step_s) = budget.probe(cfg, &mut progress, &val_batches) {
            total = total_steps(cfg, n_batches, progress.budget_steps);
            r.log.set_total(total);
            r.log.line(&budget_line(cfg, &progress, step_s, total));
        }
        let epoch_done = progress.position == batches.len();
        let mut finished = progress.step == total;
        let epoch_f = progress.epoch as f64 + progress.position as f64 / batches.len() as f64;
        let at = At { epoch_f, lr, norm };
        if progress.step % cfg.log_interval == 0 || finished {
            let secs = int_start.elapsed().as_secs_f64().max(1e-9);
            last_train_loss = train_interval(&r.log, &mut r.metrics, &mut progress, cfg, secs, at)?;
            int_start = Instant::now();
        }
        if opts.stop_after == Some(progress.step) {
            return Ok(Summary {
                data_changed: data_note.is_some(),
                ..summary(&progress, last_val, last_train_loss, budget.elapsed_s())
            });
        }

        let eval_due = (cfg.eval_interval > 0 && progress.step % cfg.eval_interval == 0)
            || epoch_done
            || finished;
        if eval_due {
            let t0 = Instant::now();
            let val = evaluate(&mut model, &val_batches);
            if let Some(val) = val.filter(|v| !v.is_finite()) {
                return Err(r.saves.diverged(&progress, "the validation loss", val, lr));
            }
            last_val = val;
            if cfg.minutes > 0.0 && progress.budget_steps > 0 && !finished {
                let eval_s = t0.elapsed().as_secs_f64();
                total = refit_budget(
                    cfg,
                    &mut budget,
                    &mut progress,
                    n_batches,
                    total,
                    eval_s,
                    &r.log,
                );
                finished = progress.step == total;
            }
            progress.elapsed_s = budget.elapsed_s();
            let save_last = cfg.always_save || finished;
            record_eval(&mut r, &model, &adam, &mut progress, val, at, save_last)?;
            // Restart the throughput clock so evaluation does not count as training time.
            budget.eval_done(t0.elapsed().as_secs_f64());
            int_start = Instant::now();
        }
    }
    r.log.finish();
    let s = Summary {
        data_changed: data_note.is_some(),
        ..summary(&progress, last_val, last_train_loss, budget.elapsed_s())
    };
    r.log.line(&done_line(&s, out));
    Ok(s)
}

/// What a run reports to after each step and evaluation.
struct Reports<'a> {
    log: Log,
    metrics: Metrics,
    saves: Checkpoints<'a>,
    /// the loss plot, redrawn at every evaluation
    plot: PathBuf,
}

/// After an evaluation whose validation loss is `val`: the best loss so far,
/// a metrics row, `best/` on improvement and `last/` when `save_last`, the
/// plot and a log line.
fn record_eval(
    r: &mut Reports,
    model: &Model,
    adam: &Adam,
    progress: &mut Progress,
    val: Option<f64>,
    at: At,
    save_last: bool,
) -> anyhow::Result<()> {
    let improved = val.is_some_and(|v| progress.best_val_loss.is_none_or(|b| v < b));
    if improved {
        progress.best_val_loss = val;
    }
    if val.is_some() {
        r.metrics.push(MetricsRow {
            step: progress.step,
            epoch: at.epoch_f,
            train_loss: None,
            val_loss: val,
            tok_s: None,
            lr: at.lr,
        })?;
    }
    r.saves
        .save(model, adam, progress, val, improved, save_last)?;
    r.metrics.plot(&r.plot);
    if let Some(val) = val {
        r.log.line(&format!(
            "eval step {}: val loss {:.4} nats/char, perplexity {:.2}{}",
            progress.step,
            val,
            val.exp(),
            if improved { " (best)" } else { "" }
        ));
    }
    Ok(())
}

/// A time-budgeted run after an evaluation of `eval_s` seconds: the step
/// count refitted to the time measured so far (said when it changes the
/// run's length). Returns the run's total steps.
fn refit_budget(
    cfg: &TrainConfig,
    budget: &mut Budget,
    progress: &mut Progress,
    n_batches: usize,
    total: u64,
    eval_s: f64,
    log: &Log,
) -> u64 {
    let (steps, step_s, per_eval) = budget.refit(cfg, progress.step, eval_s);
    if steps == progress.budget_steps {
        return total;
    }
    progress.budget_steps = steps;
    let new_total = total_steps(cfg, n_batches, steps);
    if new_total != total {
        log.set_total(new_total);
        log.line(&format!(
            "time budget: {:.2} s/step and {:.1} s per evaluation so far → {} steps in all",
            step_s, per_eval, new_total
        ));
    }
    new_total
}

/// The line that says what the time budget's probe fixed.
fn budget_line(cfg: &TrainConfig, progress: &Progress, step_s: f64, total: u64) -> String {
    format!(
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
    )
}

/// The line a finished run ends with.
fn done_line(s: &Summary, out: &Path) -> String {
    format!(
        "done: {} steps, {} tokens, {:.0} tok/s; best val loss {} nats/char (perplexity {}); checkpoints in {}",
        s.steps,
        s.tokens,
        s.tokens_per_s,
        s.best_val_loss.map_or("-".into(), |v| format!("{v:.4}")),
        s.best_val_loss.map_or("-".into(), |v| format!("{:.2}", v.exp())),
        out.display()
    )
}

/// Where the loop is within a step, for its reports.
#[derive(Clone, Copy)]
struct At {
    /// epochs done, fractional
    epoch_f: f64,
    lr: f32,
    /// the gradients' global norm, before any clipping
    norm: f64,
}

/// Every `log_interval` steps and at the last: the mean training loss over
/// the interval of `secs` seconds and its speed, as a metrics row, the bar's
/// message and a log line. Starts the next interval's sums; returns the mean.
fn train_interval(
    log: &Log,
    metrics: &mut Metrics,
    progress: &mut Progress,
    cfg: &TrainConfig,
    secs: f64,
    at: At,
) -> anyhow::Result<f64> {
    let At { epoch_f, lr, norm } = at;
    let last_train_loss = progress.log_loss / progress.log_tokens.max(1.0);
    let tok_s = progress.log_tokens / secs;
    metrics.push(MetricsRow {
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
    Ok(last_train_loss)
}

/// Checks the sizes, and the memory a batch of the longest poems needs,
/// before anything is allocated.
fn check_sizes(cfg: &TrainConfig, data: &Data, opts: &Options) -> anyhow::Result<()> {
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
    )
}

/// The lines a run opens with: where a resumed run starts, then what it
/// trains on and for how many steps.
fn opening_lines(
    cfg: &TrainConfig,
    data: &Data,
    opts: &Options,
    progress: &Progress,
    total: u64,
    batcher: &Batcher,
    params: usize,
) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(dir) = &opts.resume {
        lines.push(if progress.step >= total {
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
    lines.push(format!(
        "training {} poems ({} tokens, {} batches/epoch), validating on {} poems; {} parameters; {}",
        data.train.len(),
        batcher.num_tokens(),
        batcher.num_batches(),
        data.valid.len(),
        params,
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
    lines
}

/// The gradients' global norm, and the gradients clipped to `clip` when it is positive.
fn grad_norm(grads: &mut [f32], clip: f32) -> f64 {
    if clip > 0.0 {
        clip_grad_norm(grads, clip) as f64
    } else {
        grads
            .iter()
            .map(|g| (*g as f64) * (*g as f64))
            .sum::<f64>()
            .sqrt()
    }
}

/// Where a run's checkpoints go, and the metadata each carries.
struct Checkpoints<'a> {
    best: PathBuf,
    last: PathBuf,
    meta: Meta,
    vocab: &'a Vocab,
    /// `best/` at F16 and without the optimizer's state
    half: bool,
}

impl<'a> Checkpoints<'a> {
    /// A run's checkpoints in `out`, and its settings written to `out/config.json`.
    fn open(
        cfg: &TrainConfig,
        data: &'a Data,
        model: &Model,
        out: &Path,
    ) -> anyhow::Result<Checkpoints<'a>> {
        let train_cfg_json = serde_json::to_value(cfg).expect("TrainConfig serialises");
        crate::cache::write_atomic(
            &out.join("config.json"),
            serde_json::to_string_pretty(cfg)
                .expect("TrainConfig serialises")
                .as_bytes(),
        )?;
        let meta = Meta::new(
            model.cfg.clone(),
            train_cfg_json,
            data.script,
            data.corpus.clone(),
        );
        Ok(Checkpoints {
            best: out.join("best"),
            last: out.join("last"),
            meta,
            vocab: &data.vocab,
            half: cfg.half,
        })
    }

    /// After an evaluation: `best/` on improvement, and `last/` when `save_last`.
    fn save(
        &mut self,
        model: &Model,
        adam: &Adam,
        progress: &Progress,
        val: Option<f64>,
        improved: bool,
        save_last: bool,
    ) -> anyhow::Result<()> {
        let meta = &mut self.meta;
        meta.step = progress.step;
        meta.val_loss = val;
        meta.best_val_loss = progress.best_val_loss;
        meta.model = model.cfg.clone();
        if improved {
            let mut m = meta.clone();
            let resume = if self.half {
                m.precision = Precision::F16;
                None
            } else {
                Some((adam, progress))
            };
            checkpoint::save(&self.best, model, self.vocab, &m, resume)?;
        }
        if save_last {
            checkpoint::save(&self.last, model, self.vocab, meta, Some((adam, progress)))?;
        }
        Ok(())
    }

    /// Training diverged at `progress`: `what` is `value`; the message names
    /// the last good checkpoint.
    fn diverged(
        &self,
        progress: &Progress,
        what: &'static str,
        value: f64,
        lr: f32,
    ) -> anyhow::Error {
        let kept = if self.last.join(checkpoint::CONFIG_FILE).exists() {
            self.last.display().to_string()
        } else {
            "none (no checkpoint was written yet)".to_string()
        };
        Diverged {
            step: progress.step,
            epoch: progress.epoch,
            what,
            value,
            lr,
            kept,
        }
        .into()
    }
}

/// The model, optimiser and position a run starts from: the checkpoint's
/// when resuming (with this run's dropout), else a fresh init or
/// `opts.init_from`'s weights at step 0, refusing a folder that already
/// holds a run.
fn start_run(
    cfg: &TrainConfig,
    data: &Data,
    opts: &Options,
    last_dir: &Path,
) -> anyhow::Result<(Model, Adam, Progress)> {
    Ok(match &opts.resume {
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
            checkpoint::recover(last_dir)?;
            if last_dir.join(checkpoint::CONFIG_FILE).exists() {
                return Err(RunExists {
                    out: opts.out.display().to_string(),
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
                    // A model that learns titles reads BEGIN as the reset that ends one,
                    // and gains the title vector; the starting model read every sequence
                    // from a first BEGIN, which a reset leaves as it was, and the vector
                    // starts at zero, so its weights keep their meaning.
                    if cfg.titles {
                        m = m.learning_titles(Vocab::BEGIN, cfg.title_vector);
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
                // what Adam is at step 0; a save writes it anew
                adam: AdamSettings::of(&adam),
            };
            (model, adam, progress)
        }
    })
}

/// What the run reports at its end, `elapsed` seconds of training in.
fn summary(p: &Progress, last_val: Option<f64>, last_train: f64, elapsed: f64) -> Summary {
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
