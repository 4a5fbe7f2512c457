//! The training loop end to end on tiny corpora made here: resuming after a
//! kill ends bit for bit where the uninterrupted run ends, divergence stops the
//! run and keeps the last good checkpoint, a run folder is not overwritten,
//! and the run leaves metrics.csv, loss.png and loadable checkpoints.

use std::path::Path;

use crate::macros::{Dir, TestCommand};
use shiren::checkpoint;
use shiren::corpus::convert::Script;
use shiren::rng::Rng;
use shiren::train::{train, Data, Options, TrainConfig};
use shiren::vocab::Vocab;

/// Poems of 5-character lines over a small alphabet with a learnable pattern
/// (each character is followed by the next one of the alphabet, mostly).
fn tiny_data(n_train: usize, n_valid: usize) -> Data {
    let alphabet: Vec<char> = "春花秋月夜山水风云雨".chars().collect();
    let mut rng = Rng::new(42);
    let poem = |rng: &mut Rng| {
        let lines = 2 + rng.below(3);
        let mut s = String::new();
        for l in 0..lines {
            let mut c = rng.below(alphabet.len());
            for _ in 0..5 {
                s.push(alphabet[c]);
                c = if rng.uniform() < 0.8 {
                    (c + 1) % alphabet.len()
                } else {
                    rng.below(alphabet.len())
                };
            }
            s.push(if l % 2 == 0 { '，' } else { '。' });
        }
        s
    };
    let train_texts: Vec<String> = (0..n_train).map(|_| poem(&mut rng)).collect();
    let valid_texts: Vec<String> = (0..n_valid).map(|_| poem(&mut rng)).collect();
    let vocab = Vocab::build(train_texts.iter().map(|s| s.as_str()), 1);
    Data {
        train: train_texts.iter().map(|t| vocab.encode(t)).collect(),
        valid: valid_texts.iter().map(|t| vocab.encode(t)).collect(),
        each_epoch: None,
        vocab,
        corpus: "tiny test corpus".into(),
        script: Script::Simplified,
    }
}

fn tiny_config() -> TrainConfig {
    TrainConfig {
        layers: 2,
        embed: 8,
        hidden: 12,
        // Dropout makes the run depend on the RNG state, which the checkpoint must carry.
        dropout: 0.1,
        batch: 4,
        lr: 0.01,
        min_lr: 0.001,
        warmup: 3,
        epochs: 3,
        max_steps: 0,
        clip: 1.0,
        // Not a multiple of log_interval: a checkpoint can fall between two log rows.
        eval_interval: 3,
        eval_iters: 0,
        log_interval: 2,
        ..TrainConfig::default()
    }
}

fn opts(out: &Path) -> Options {
    Options {
        out: out.to_path_buf(),
        quiet: true,
        ..Options::default()
    }
}

/// Final weights and Adam moments of a run folder's last/ checkpoint.
fn final_state(out: &Path) -> (Vec<f32>, Vec<f32>, Vec<f32>, u64) {
    let loaded = checkpoint::load(&out.join("last")).unwrap();
    let (adam, progress) = checkpoint::load_resume(&out.join("last"), &loaded.model).unwrap();
    (loaded.model.params, adam.m, adam.v, progress.step)
}

/// The metrics without the timing column, which legitimately differs.
fn metrics_without_timing(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(5);
            f.join(",")
        })
        .collect()
}

#[test]
fn killed_and_resumed_runs_end_bit_for_bit_where_the_straight_run_ends() {
    let data = tiny_data(30, 6);
    let cfg = tiny_config();
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    let s = train(&cfg, &data, &opts(&straight)).unwrap();
    // 30 poems in batches of 4: 8 batches per epoch, 3 epochs.
    assert_eq!(s.steps, 24);
    let want = final_state(&straight);
    assert_eq!(want.3, 24);

    // Killed mid-epoch between checkpoints, at a checkpoint, and in the last epoch.
    for kill_at in [7, 10, 22] {
        let out = dir.path().join(format!("killed{kill_at}"));
        let o = Options {
            stop_after: Some(kill_at),
            ..opts(&out)
        };
        train(&cfg, &data, &o).unwrap();
        let saved = checkpoint::load_meta(&out.join("last")).unwrap().step;
        assert!(
            saved <= kill_at && saved > 0,
            "checkpoint at {saved}, killed at {kill_at}"
        );
        let o = Options {
            resume: Some(out.join("last")),
            ..opts(&out)
        };
        let r = train(&cfg, &data, &o).unwrap();
        assert_eq!(r.steps, 24);
        let got = final_state(&out);
        assert!(
            got.0 == want.0,
            "weights differ after a kill at step {kill_at}"
        );
        assert!(
            got.1 == want.1 && got.2 == want.2,
            "Adam moments differ after a kill at step {kill_at}"
        );
        assert_eq!(
            metrics_without_timing(&out),
            metrics_without_timing(&straight),
            "kill at {kill_at}"
        );
        assert_eq!(r.best_val_loss, s.best_val_loss);
        assert!(!r.data_changed);
    }
}

#[test]
fn a_time_budget_is_kept_in_the_checkpoints_and_the_run_ends_where_its_plan_says() {
    let data = tiny_data(30, 6);
    // Only the budget limits the run: 3 s of this tiny model is thousands of
    // steps on a quiet machine, and still well past step 40 on one slowed
    // tenfold by other work (0.3 s was not: a CI run beside a build fixed 36).
    let cfg = TrainConfig {
        epochs: 0,
        minutes: 0.05,
        eval_interval: 40,
        ..tiny_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // Stopped at step 43, after the probe (steps 5–35) set the count, with
    // the last checkpoint at 40: the resume must find the count there.
    let o = Options {
        stop_after: Some(43),
        ..opts(&out)
    };
    train(&cfg, &data, &o).unwrap();
    let last = out.join("last");
    let loaded = checkpoint::load(&last).unwrap();
    let (_, progress) = checkpoint::load_resume(&last, &loaded.model).unwrap();
    assert_eq!(progress.step, 40);
    assert!(
        progress.budget_steps > 40,
        "the budget was not set by step 40: {}",
        progress.budget_steps
    );
    let o = Options {
        resume: Some(last.clone()),
        ..opts(&out)
    };
    // The resumed run sets the count again at each evaluation, from its own speed;
    // wherever that lands, the run ends there and its last checkpoint says so.
    let r = train(&cfg, &data, &o).unwrap();
    assert!(r.steps > 43, "the resumed run did not go on: {}", r.steps);
    let loaded = checkpoint::load(&last).unwrap();
    let (_, progress) = checkpoint::load_resume(&last, &loaded.model).unwrap();
    assert_eq!(progress.step, r.steps);
    assert_eq!(
        progress.budget_steps, r.steps,
        "the run did not end at the count it planned"
    );
}

#[test]
fn resuming_on_changed_data_is_noticed() {
    let data = tiny_data(30, 6);
    let cfg = tiny_config();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    train(
        &cfg,
        &data,
        &Options {
            stop_after: Some(7),
            ..opts(&out)
        },
    )
    .unwrap();
    let mut fewer = tiny_data(30, 6);
    fewer.train.pop();
    let o = Options {
        resume: Some(out.join("last")),
        ..opts(&out)
    };
    assert!(train(&cfg, &fewer, &o).unwrap().data_changed);
}

#[test]
fn a_run_learns_and_leaves_metrics_plot_and_loadable_checkpoints() {
    let data = tiny_data(40, 8);
    let cfg = TrainConfig {
        epochs: 6,
        dropout: 0.0,
        ..tiny_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let s = train(&cfg, &data, &opts(&out)).unwrap();
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = metrics.lines();
    assert_eq!(
        lines.next(),
        Some("step,epoch,train_loss,val_loss,val_ppl,tok_s,lr")
    );
    let val: Vec<f64> = lines
        .filter_map(|l| l.split(',').nth(3)?.parse().ok())
        .collect();
    assert!(val.len() >= 6, "an evaluation per epoch at least: {val:?}");
    assert!(
        val.last().unwrap() < &(val[0] - 0.2),
        "validation loss did not fall: {val:?}"
    );
    let best_logged = val.iter().copied().reduce(f64::min).unwrap();
    assert!(
        (s.best_val_loss.unwrap() - best_logged).abs() < 1e-5,
        "{s:?} vs {val:?}"
    );
    assert_eq!(&std::fs::read(out.join("loss.png")).unwrap()[1..4], b"PNG");
    let best = checkpoint::load(&out.join("best")).unwrap();
    assert_eq!(best.meta.val_loss, s.best_val_loss);
    assert_eq!(best.vocab.to_json(), data.vocab.to_json());
    let saved: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved, cfg);
    assert_eq!(
        serde_json::from_value::<TrainConfig>(best.meta.train).unwrap(),
        cfg
    );
}

#[test]
fn divergence_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let data = tiny_data(30, 6);
    let cfg = TrainConfig {
        eval_interval: 2,
        ..tiny_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    train(
        &cfg,
        &data,
        &Options {
            stop_after: Some(5),
            ..opts(&out)
        },
    )
    .unwrap();
    let before = checkpoint::load(&out.join("last")).unwrap();
    assert_eq!(before.meta.step, 4);

    // An absurd learning rate sends the weights to infinity within a step or two.
    let wild = TrainConfig {
        lr: 1e38,
        min_lr: 1e38,
        clip: 0.0,
        ..cfg
    };
    let o = Options {
        resume: Some(out.join("last")),
        ..opts(&out)
    };
    let err = train(&wild, &data, &o).unwrap_err().to_string();
    assert!(err.starts_with("training diverged at step"), "{err}");
    assert!(
        err.contains(&out.join("last").display().to_string()),
        "{err}"
    );
    let after = checkpoint::load(&out.join("last")).unwrap();
    assert_eq!(after.meta.step, 4);
    assert!(
        after.model.params == before.model.params,
        "the last good checkpoint was overwritten"
    );
}

#[test]
fn a_finished_run_folder_is_not_overwritten_by_a_fresh_run() {
    let data = tiny_data(12, 4);
    let cfg = TrainConfig {
        epochs: 1,
        ..tiny_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    train(&cfg, &data, &opts(&out)).unwrap();
    let err = train(&cfg, &data, &opts(&out)).unwrap_err().to_string();
    // The library names the checkpoint to resume; the command line adds the flag.
    let last = out.join("last").display().to_string();
    assert!(
        err.contains("already holds a run") && err.contains(&last),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// `shiren train`, the binary

/// A poems.txt of `n` synthetic 五绝-shaped poems over a small alphabet.
fn poems_txt(n: usize) -> String {
    let alphabet: Vec<char> = "春花秋月夜山水风云雨江天白日黄河".chars().collect();
    let mut rng = Rng::new(7);
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&format!("题{i}:"));
        for l in 0..4 {
            let mut c = rng.below(alphabet.len());
            for _ in 0..5 {
                out.push(alphabet[c]);
                c = if rng.uniform() < 0.7 {
                    (c + 1) % alphabet.len()
                } else {
                    rng.below(alphabet.len())
                };
            }
            out.push(if l % 2 == 0 { '，' } else { '。' });
        }
        out.push('\n');
    }
    out
}

/// Small settings for the binary; one thread so the run is the same on any machine.
const TINY: &[&str] = &[
    "train",
    "--file",
    "poems.txt",
    "--cell",
    "gru",
    "--layers",
    "1",
    "--hidden",
    "16",
    "--embed",
    "8",
    "--batch",
    "4",
    "--epochs",
    "3",
    "--eval-interval",
    "7",
    "--log-interval",
    "5",
    "--min-count",
    "1",
    "--threads",
    "1",
];

shiren_test!(
    train_resumes_after_kill_9_and_ends_where_a_straight_run_ends,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("poems.txt", poems_txt(200));
        cmd.args(TINY).args(["--out", "straight"]).stdout();

        let mut child = dir.command().cmd;
        let mut child = child
            .args(TINY)
            .args(["--out", "killed"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill it as soon as a checkpoint exists: whenever that lands (mid-run,
        // mid-write, or after the end), the resumed run must end the same.
        let start = std::time::Instant::now();
        while !dir.join("killed/last/config.json").exists() && start.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        dir.command()
            // the run folder: its last/ is the checkpoint resumed
            .args(["train", "--resume", "killed", "--threads", "1"])
            .stdout();

        for file in [
            "last/model.safetensors",
            "last/optim.safetensors",
            "best/model.safetensors",
        ] {
            let a = std::fs::read(dir.join("straight").join(file)).unwrap();
            let b = std::fs::read(dir.join("killed").join(file)).unwrap();
            assert!(
                a == b,
                "{file} differs between the straight and the killed+resumed run"
            );
        }
        assert_eq!(
            metrics_without_timing(&dir.join("killed")),
            metrics_without_timing(&dir.join("straight"))
        );
        assert_eq!(
            &std::fs::read(dir.join("straight/loss.png")).unwrap()[1..4],
            b"PNG"
        );
    }
);

shiren_test!(
    settings_errors_are_one_line_naming_the_problem,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("poems.txt", poems_txt(40));
        dir.create("bad.json", r#"{"hidden": 16, "learning_rate": 0.1}"#);
        let err = cmd.args(TINY).args(["--config", "bad.json"]).fails();
        assert!(
            err.contains("bad.json") && err.contains("unknown field `learning_rate`"),
            "{err}"
        );
        let err = dir.command().args(["train", "--resume", "nowhere"]).fails();
        assert!(err.contains("nowhere: no checkpoint here"), "{err}");
    }
);
