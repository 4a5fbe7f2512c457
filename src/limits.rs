//! The ranges shiren holds the sizes a user can ask for to, checked before
//! anything is allocated from them: worker threads, the memory a training
//! batch needs, poems per run, and the run-folder lock that keeps two
//! trainers from writing one folder.
//!
//! The model's own sizes are bounded in `ModelConfig::validate` (it is what
//! every loaded checkpoint goes through); this file holds the rest, so that
//! the CLI and the web service apply one rule.

use std::path::{Path, PathBuf};

/// Most worker threads: 4× the cores. More only adds switching (1,000
/// threads made 20 poems take 65 s instead of 0.6 s).
pub fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks `--threads N`.
pub fn check_threads(n: usize) -> anyhow::Result<()> {
    let most = max_threads();
    anyhow::ensure!(n > 0, "--threads must be at least 1");
    anyhow::ensure!(
        n <= most,
        "--threads {n} is more than {most} (4 per core on this machine; more threads only slow the kernels down)"
    );
    Ok(())
}

/// Most poems one `shiren write` or `shiren eval` run writes (per form and kind for eval).
pub const MAX_POEMS: usize = 100_000;

/// Memory a run may plan for: half the machine's memory, at least 8 GiB.
pub fn memory_budget() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0);
    (total / 2).max(8 << 30)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Refuses a plan that needs more than [`memory_budget`]: `what` needs `bytes`; `hint` says what to lower.
pub fn check_memory(what: &str, bytes: u64, hint: &str) -> anyhow::Result<()> {
    let budget = memory_budget();
    anyhow::ensure!(
        bytes <= budget,
        "{what} needs about {} of memory, more than the {} shiren plans for on this machine (half of it); {hint}",
        gib(bytes),
        gib(budget)
    );
    Ok(())
}

/// Bytes of activations and logits a training step holds for a batch of
/// `batch` sequences of `steps` tokens: per token, every layer's cached
/// gates, cells and outputs, the embedding row, and logits with their
/// gradient. An estimate within a small factor, to refuse the absurd.
pub fn train_step_bytes(cfg: &crate::model::ModelConfig, batch: usize, steps: usize) -> u64 {
    let per_token = cfg.layers as u64 * (cfg.cell.gates() as u64 + 3) * cfg.hidden as u64
        + cfg.input_width() as u64
        + 2 * cfg.vocab as u64;
    (batch as u64)
        .saturating_mul(steps as u64 + 1)
        .saturating_mul(per_token)
        .saturating_mul(4)
}

/// One rule for `shiren write` and the web service: an acrostic given is not
/// empty, and when a fixed form is asked for as well (`form`: its Chinese
/// name and line count), it has one character per line of that form: a
/// 4-character acrostic is never written as a 4-line "五律". `name` is how
/// the caller spells the field (`--acrostic`, `acrostic`).
pub fn check_acrostic(
    name: &str,
    acrostic: &str,
    form: Option<(&str, usize)>,
) -> Result<(), String> {
    let n = acrostic.chars().filter(|c| !c.is_whitespace()).count();
    if n == 0 {
        return Err(format!(
            "{name} is empty (give one character per line, or leave it out)"
        ));
    }
    match form {
        Some((form, lines)) if lines != n => Err(format!(
            "{name} has {n} characters but a {form} has {lines} lines (give {lines}, or leave out the form to write one line per character)"
        )),
        _ => Ok(()),
    }
}

/// An exclusive lock on a run folder, held while a trainer writes it and
/// released by the OS when the process ends, killed or not.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

/// The lock file inside a run folder; it holds the PID of the trainer.
pub const LOCK_FILE: &str = ".lock";

impl RunLock {
    /// Takes the lock of `run`, or fails at once naming the process that holds it.
    pub fn take(run: &Path) -> anyhow::Result<RunLock> {
        use std::io::{Read, Seek, Write};
        let path = run.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("{}: cannot open the run lock: {e}", path.display()))?;
        match try_lock(&file) {
            Ok(true) => {}
            Ok(false) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                anyhow::bail!(
                    "{}: another shiren (PID {}) is training in this run folder; wait for it to finish or stop it, or pass another --out",
                    run.display(),
                    if pid.is_empty() { "unknown" } else { pid }
                );
            }
            Err(e) => {
                anyhow::bail!("{}: cannot lock the run folder: {e}", path.display())
            }
        }
        // Only the holder writes its PID, so a reader sees the holder's.
        file.set_len(0)?;
        file.seek(std::io::SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(RunLock { _file: file, path })
    }
}

/// An exclusive flock(2) on `file` without waiting: `Ok(false)` when another
/// process holds it. (std's `File::try_lock` is newer than shiren's MSRV.)
#[cfg(unix)]
fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere the folder is not locked.
#[cfg(not(unix))]
fn try_lock(_: &std::fs::File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_past_four_per_core_are_refused() {
        assert!(check_threads(1).is_ok());
        assert!(check_threads(max_threads()).is_ok());
        let e = check_threads(max_threads() + 1).unwrap_err().to_string();
        assert!(e.contains("4 per core"), "{e}");
        assert!(check_threads(1_000_000_000).is_err());
        assert!(check_threads(0).is_err());
    }

    #[test]
    fn an_acrostic_fits_the_form_asked_for_or_is_refused() {
        assert!(check_acrostic("a", "春夏秋冬", Some(("五绝", 4))).is_ok());
        assert!(check_acrostic("a", "春夏秋冬", None).is_ok());
        let e = check_acrostic("--acrostic", "春夏秋冬", Some(("五律", 8))).unwrap_err();
        assert!(e.contains("has 4 characters but a 五律 has 8 lines"), "{e}");
        assert!(check_acrostic("a", " ", None)
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn inputs_read_as_words_in_messages() {
        use crate::model::Input;
        assert_eq!(Input::Dense { dim: 28 }.to_string(), "28 values");
        assert_eq!(Input::Tokens.to_string(), "token ids");
    }

    #[test]
    fn a_run_folder_is_locked_once_and_freed_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::take(dir.path()).unwrap();
        let e = RunLock::take(dir.path()).unwrap_err().to_string();
        let pid = std::process::id().to_string();
        assert!(e.contains(&format!("PID {pid}")), "{e}");
        drop(lock);
        RunLock::take(dir.path()).unwrap();
    }

    #[test]
    fn memory_estimates_refuse_the_absurd_and_pass_the_usual() {
        let cfg = crate::model::ModelConfig {
            hidden: 512,
            embed: 256,
            layers: 3,
            ..Default::default()
        };
        // config L at batch 64 over 200-character poems: about a gigabyte
        let usual = train_step_bytes(&cfg, 64, 200);
        assert!(check_memory("x", usual, "").is_ok(), "{usual}");
        // a one-billion-character line
        let absurd = train_step_bytes(&cfg, 1, 1_000_000_000);
        let e = check_memory("a batch", absurd, "lower --max-len").unwrap_err();
        assert!(e.to_string().contains("lower --max-len"), "{e}");
    }
}
