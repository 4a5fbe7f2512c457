//! The time budget (`minutes`): how many steps a run takes when only the
//! clock limits it, first from a timed probe of its first steps, then refitted
//! at each evaluation to the speed of the run so far. [`Budget`] holds the
//! run's clock that both read; the functions below do the arithmetic.

use std::time::Instant;

use super::TrainConfig;
use crate::batch::Batch;
use crate::checkpoint::Progress;

/// The run's clock and the time budget it drives: when this process's part
/// of the run began, how long its evaluations took (they are not training
/// time), and the probe of the first steps that fixes the budget.
pub(super) struct Budget {
    /// The run's training seconds before this process (from the checkpoint).
    elapsed_before: f64,
    run_start: Instant,
    /// Step this process started at.
    start_step: u64,
    /// Steps between evaluations, for their share of the time.
    eval_every: u64,
    /// Seconds this process spent evaluating, and how many times.
    eval_time: f64,
    evals_here: u32,
    /// (clock, eval_time, tokens) when the probe began
    probe_start: Option<(Instant, f64, u64)>,
}

impl Budget {
    /// Starts the clock for a run at `progress` (fresh or resumed).
    pub(super) fn start(progress: &Progress, eval_every: u64) -> Budget {
        Budget {
            elapsed_before: progress.elapsed_s,
            run_start: Instant::now(),
            start_step: progress.step,
            eval_every,
            eval_time: 0.0,
            evals_here: 0,
            probe_start: None,
        }
    }

    /// The run's training seconds so far, evaluations left out.
    pub(super) fn elapsed_s(&self) -> f64 {
        self.elapsed_before + self.run_start.elapsed().as_secs_f64() - self.eval_time
    }

    /// Called after every step: while a time budget is not yet fixed, times
    /// the probe's steps and after the last fixes `progress.budget_steps`.
    /// Returns the seconds per step it was fixed from, when it was.
    pub(super) fn probe(
        &mut self,
        cfg: &TrainConfig,
        progress: &mut Progress,
        val_batches: &[Batch],
    ) -> Option<f64> {
        if !(cfg.minutes > 0.0 && progress.budget_steps == 0) {
            return None;
        }
        let done_here = progress.step - self.start_step;
        if done_here == BUDGET_SKIP_STEPS {
            self.probe_start = Some((Instant::now(), self.eval_time, progress.tokens));
            return None;
        }
        let (Some((t0, e0, k0)), true) = (
            self.probe_start,
            done_here == BUDGET_SKIP_STEPS + BUDGET_PROBE_STEPS,
        ) else {
            return None;
        };
        let step_s = (t0.elapsed().as_secs_f64() - (self.eval_time - e0)).max(1e-9)
            / BUDGET_PROBE_STEPS as f64;
        let tokens_per_step = (progress.tokens - k0) as f64 / BUDGET_PROBE_STEPS as f64;
        let val_tokens: f64 = val_batches
            .iter()
            .map(|b| b.mask.iter().sum::<f32>() as f64)
            .sum();
        let elapsed = self.elapsed_before + self.run_start.elapsed().as_secs_f64();
        progress.budget_steps = budget_steps(
            cfg,
            progress.step,
            elapsed,
            step_s,
            tokens_per_step,
            val_tokens,
            self.eval_every,
        );
        Some(step_s)
    }

    /// At an evaluation that took `eval_s` seconds so far: the budget's step
    /// count refitted to the speed of all this process's steps and
    /// evaluations (the probe's steps cannot foresee a neighbour's load), with
    /// the seconds per step and per evaluation it was fitted from.
    pub(super) fn refit(&self, cfg: &TrainConfig, step: u64, eval_s: f64) -> (u64, f64, f64) {
        let now_s = self.run_start.elapsed().as_secs_f64();
        let step_s = (now_s - self.eval_time - eval_s) / (step - self.start_step).max(1) as f64;
        let per_eval = (self.eval_time + eval_s) / f64::from(self.evals_here + 1);
        let budget = refit_budget(
            cfg,
            step,
            self.elapsed_before + now_s,
            step_s,
            per_eval,
            self.eval_every,
        );
        (budget, step_s, per_eval)
    }

    /// Counts an evaluation of `eval_s` seconds (with its checkpoints) out of the training time.
    pub(super) fn eval_done(&mut self, eval_s: f64) {
        self.eval_time += eval_s;
        self.evals_here += 1;
    }
}

/// The run's length in steps from epochs, `max_steps` and a fixed time
/// budget (`budget_steps`, 0 while not yet fixed), whichever is smallest;
/// unbounded while only the time budget limits it and is not yet fixed.
pub(super) fn total_steps(cfg: &TrainConfig, batches_per_epoch: usize, budget_steps: u64) -> u64 {
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
pub(super) const BUDGET_SKIP_STEPS: u64 = 5;

/// The step count that ends a run with `cfg.minutes` of wall-clock time:
/// `step` steps done after `elapsed_s` seconds, at `step_s` seconds per
/// training step, with evaluations of `val_tokens` tokens (a forward pass,
/// costed at a third of a training step's time per token) every
/// `eval_every` steps, and 2% kept in hand for checkpoints and noise.
pub(super) fn budget_steps(
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
pub(super) fn refit_budget(
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
