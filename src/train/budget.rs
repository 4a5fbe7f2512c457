//! The time budget (`minutes`): how many steps a run takes when only the
//! clock limits it, first from a timed probe of its first steps, then refitted
//! at each evaluation to the speed of the run so far.

use super::TrainConfig;

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
pub(super) fn steps_that_fit(minutes: f64, elapsed_s: f64, per_step_s: f64) -> u64 {
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
