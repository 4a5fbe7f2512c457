//! `shiren train`: settings from a preset (or a resumed checkpoint), then a
//! `--config` JSON file, then flags; the corpus; then `crate::train::train`.
//!
//! This file only resolves what the user typed into a validated
//! [`TrainConfig`] and an encoded corpus; the loop is in `src/train.rs`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{json, Map, Value};

use super::corpus::CorpusArgs;
use super::Global;
use crate::corpus::{self, Collection, LoadOptions, Source};
use crate::train::{self, Data, Options, TrainConfig, PRESETS};
use crate::vocab::Vocab;
use crate::{cache, checkpoint};

/// Train a character language model. Settings come from --preset (or the
/// checkpoint of --resume), then --config, then the flags below; the final
/// settings are printed and saved as <out>/config.json.
// The help text names placeholders such as <out>, which rustdoc would read as HTML.
#[allow(rustdoc::invalid_html_tags)]
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Starting settings: `default` (2×LSTM-512, the best quality for an hour on 2 cores) or `seed` (the original: 2×LSTM-128, Adam 0.01) [default: default]
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(PRESETS), conflicts_with = "resume")]
    pub preset: Option<String>,
    /// JSON file with any of the settings in a run's config.json; flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run folder for config.json, metrics.csv, loss.png, best/ and last/ [default: runs/<cell>-<layers>x<hidden>, or the resumed checkpoint's run folder]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue from a checkpoint folder (e.g. runs/NAME/last) or a run folder (its last/); architecture, vocabulary, batch and seed come from it
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Start a new run from this model's weights (a checkpoint, run or PyTorch folder), with a fresh optimizer: its architecture, vocabulary and script are kept; characters of the corpus it lacks are read as UNK
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    #[command(flatten)]
    pub set: Box<TrainSettings>,
}

/// The settings flags; boxed because they make `Args` large.
#[derive(clap::Args, Debug)]
pub struct TrainSettings {
    /// Recurrent cell [default: lstm]
    #[arg(long, value_name = "CELL", value_parser = clap::builder::PossibleValuesParser::new(["rnn", "gru", "lstm"]))]
    pub cell: Option<String>,
    /// Stacked recurrent layers [default: 2]
    #[arg(long, value_name = "N")]
    pub layers: Option<usize>,
    /// Hidden units per layer [default: 512; seed 128]
    #[arg(long, value_name = "N")]
    pub hidden: Option<usize>,
    /// Character embedding width [default: 256; seed 128]
    #[arg(long, value_name = "N")]
    pub embed: Option<usize>,
    /// Dropout between layers, 0 to <1 [default: 0.2; seed 0]
    #[arg(long, value_name = "P")]
    pub dropout: Option<f32>,
    /// Dropout on the embedding (the first layer's input), 0 to <1 [default: 0]
    #[arg(long, value_name = "P")]
    pub dropout_in: Option<f32>,
    /// Dropout on the top layer's output (what the softmax reads), 0 to <1 [default: 0]
    #[arg(long, value_name = "P")]
    pub dropout_out: Option<f32>,
    /// Poems per batch [default: 32; seed 64]
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Peak learning rate, after warm-up [default: 0.003; seed 0.01]
    #[arg(long, value_name = "LR")]
    pub lr: Option<f32>,
    /// Learning rate at the end of the cosine decay; = --lr for a constant rate [default: --lr/10; seed = --lr]
    #[arg(long, value_name = "LR")]
    pub min_lr: Option<f32>,
    /// Steps of linear learning-rate warm-up [default: 400; seed 0]
    #[arg(long, value_name = "STEPS")]
    pub warmup: Option<u64>,
    /// Passes over the training poems [default: 5; seed 50]
    #[arg(long, value_name = "N")]
    pub epochs: Option<u64>,
    /// Stop after this many optimiser steps, 0 = no limit; the decay ends here [default: 0]
    #[arg(long, value_name = "STEPS")]
    pub max_steps: Option<u64>,
    /// Train for about this many minutes of wall-clock time, evaluations included, 0 = no limit: the step count is set from the speed of the first steps and set again at every evaluation from the speed so far (kept in checkpoints for --resume); the decay ends there. Epochs and --max-steps still cap it (--epochs 0 lifts that) [default: 0]
    #[arg(long, value_name = "MIN")]
    pub minutes: Option<f64>,
    /// Clip gradients to this global L2 norm, 0 = off [default: 1; seed 5]
    #[arg(long, value_name = "NORM")]
    pub clip: Option<f32>,
    /// Decoupled weight decay: 0 = Adam, > 0 = AdamW [default: 0]
    #[arg(long, value_name = "WD")]
    pub weight_decay: Option<f32>,
    /// Seed of the weights, the batch order and dropout [default: 1]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Evaluate and checkpoint every this many steps, 0 = each epoch only [default: 1000; seed 200]
    #[arg(long, value_name = "STEPS")]
    pub eval_interval: Option<u64>,
    /// Validation batches per evaluation, 0 = all [default: 0]
    #[arg(long, value_name = "N")]
    pub eval_iters: Option<usize>,
    /// Log a line and a metrics.csv row every this many steps [default: 20]
    #[arg(long, value_name = "STEPS")]
    pub log_interval: Option<u64>,
    /// Store best/ weights as f16 (half the size, for shipping; last/ stays f32 for --resume)
    #[arg(long)]
    pub half: bool,
    /// Do not lead training poems with their form's tag (五绝 七绝 五律 七律); the default preset tags them
    #[arg(long)]
    pub no_form_tags: bool,
    /// Read each training poem's title before it, so that the model writes for a title it is given (`shiren write --title`); a fifth of the poems stay untitled
    #[arg(long)]
    pub titles: bool,
    /// With --titles, also tell every step the title (the title vector; see docs/checkpoints.md) [default: true]
    #[arg(long, value_name = "BOOL")]
    pub title_vector: Option<bool>,
    /// With --titles, draw the untitled fifth afresh each epoch, so that every poem is also read without its title; false keeps one fixed fifth untitled [default: true]
    #[arg(long, value_name = "BOOL")]
    pub untitled_each_epoch: Option<bool>,
    /// Rows of the line and column embeddings added to each character's, 0 = none [default: 16; seed 0]
    #[arg(long, value_name = "N")]
    pub positions: Option<usize>,
    /// Predict through the embedding (tied weights, via an embed × hidden map) [default: true; seed false]
    #[arg(long, value_name = "BOOL")]
    pub tied: Option<bool>,
    /// Predict the N commonest characters directly and the rest through one shared class (a two-level softmax, faster to train), 0 = one softmax [default: 1000; seed 0]
    #[arg(long, value_name = "N")]
    pub shortlist: Option<usize>,
}

impl Args {
    /// The settings the user typed, as JSON keys of [`TrainConfig`]. Corpus
    /// flags count only where they differ from their defaults, so that a
    /// preset or --config value is not overridden by a flag nobody typed.
    fn overrides(&self) -> Map<String, Value> {
        let mut m = Map::new();
        macro_rules! put {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.set.$field {
                    m.insert(stringify!($field).to_string(), json!(v));
                }
            )*};
        }
        put!(cell, layers, hidden, embed, dropout, batch, lr, min_lr, warmup, epochs, max_steps);
        put!(
            positions,
            tied,
            shortlist,
            minutes,
            dropout_in,
            dropout_out,
            title_vector,
            untitled_each_epoch
        );
        put!(
            clip,
            weight_decay,
            seed,
            eval_interval,
            eval_iters,
            log_interval
        );
        if self.set.half {
            m.insert("half".into(), json!(true));
        }
        if self.set.titles {
            m.insert("titles".into(), json!(true));
        }
        if self.set.no_form_tags {
            m.insert("form_tags".into(), json!(false));
        }
        let (c, d) = (&self.corpus, CorpusArgs::default());
        if let Some(path) = &c.file {
            m.insert("corpus".into(), json!(format!("file:{}", path.display())));
        } else if let Some(name) = c.corpus {
            m.insert("corpus".into(), json!(name.name()));
        }
        if c.script != d.script || typed("--script") {
            m.insert("script".into(), json!(c.script));
        }
        if c.min_len != d.min_len || typed("--min-len") {
            m.insert("min_len".into(), json!(c.min_len));
        }
        if c.max_len != d.max_len || typed("--max-len") {
            m.insert("max_len".into(), json!(c.max_len));
        }
        if c.min_count != d.min_count || typed("--min-count") {
            m.insert("min_count".into(), json!(c.min_count));
        }
        m
    }
}

/// Whether `flag` is on this process's command line: the corpus flags have clap
/// defaults, so their values alone cannot tell a typed default from none.
fn typed(flag: &str) -> bool {
    let with_value = format!("{flag}=");
    std::env::args().any(|a| a == flag || a.starts_with(&with_value))
}

/// Resolves preset/checkpoint → --config → flags into the final settings.
pub fn resolve(args: &Args) -> anyhow::Result<TrainConfig> {
    let (base, from) = match &args.resume {
        Some(dir) => {
            let meta = checkpoint::load_meta(dir)?;
            let cfg: TrainConfig = serde_json::from_value(meta.train).map_err(|e| {
                anyhow::anyhow!(
                    "{}: its training settings do not parse ({e}); it was written by another shiren",
                    dir.join(checkpoint::CONFIG_FILE).display()
                )
            })?;
            (cfg, Some(dir))
        }
        None => {
            let name = args.preset.as_deref().unwrap_or("default");
            (
                TrainConfig::preset(name).expect("clap checked the preset"),
                None,
            )
        }
    };
    let mut cfg = base.clone();
    let mut min_lr_given = false;
    if let Some(file) = &args.config {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{}: cannot read the settings file", file.display()))?;
        min_lr_given = serde_json::from_str::<Map<String, Value>>(&text)
            .is_ok_and(|m| m.contains_key("min_lr"));
        cfg = cfg.merge_json(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (keys are those of a run's config.json)",
                file.display()
            )
        })?;
    }
    let flags = args.overrides();
    cfg = cfg
        .merge_json(&Value::Object(flags.clone()).to_string())
        .map_err(|e| anyhow::anyhow!("bad flag value: {e}"))?;
    if cfg.lr != base.lr && !min_lr_given && !flags.contains_key("min_lr") {
        // Keep the schedule's shape: the floor moves with the peak.
        cfg.min_lr = (base.min_lr as f64 * cfg.lr as f64 / base.lr as f64) as f32;
    }
    if let Some(dir) = from {
        if let Some((key, old, new)) = TrainConfig::resume_conflict(&base, &cfg) {
            let said = if flags.contains_key(&key) {
                format!("--{} {}", key.replace('_', "-"), new.trim_matches('"'))
            } else {
                format!("`{key}: {new}` in --config")
            };
            anyhow::bail!(
                "{said} disagrees with the checkpoint {} ({key} {old}); a resumed run keeps its architecture, corpus, batch and seed: drop it, or start a new run with another --out",
                dir.display()
            );
        }
    }
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("bad setting: {e}"))?;
    Ok(cfg)
}

/// The corpus named by `cfg.corpus`: a collection name, or `file:PATH`.
fn source_of(cfg: &TrainConfig, args: &CorpusArgs) -> anyhow::Result<Source> {
    if let Some(path) = cfg.corpus.strip_prefix("file:") {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.exists(),
            "{}: no such corpus file or folder",
            path.display()
        );
        return Ok(Source::File {
            path,
            format: args.format,
        });
    }
    <Collection as clap::ValueEnum>::from_str(&cfg.corpus, true)
        .map(Source::Collection)
        .map_err(|_| {
            anyhow::anyhow!(
                "unknown corpus `{}` (one of {}, or file:PATH)",
                cfg.corpus,
                Collection::ALL.map(|c| c.name()).join(", ")
            )
        })
}

pub fn run(mut args: Args, g: &Global) -> anyhow::Result<()> {
    // `--resume runs/NAME` means its last/, as `shiren eval --model runs/NAME` means its
    // best/; anything else goes to the loader, whose errors name what is wrong there.
    if let Some(found) = args
        .resume
        .as_deref()
        .and_then(|d| checkpoint::find_in(d, &["last"]))
    {
        args.resume = Some(found);
    }
    let mut cfg = resolve(&args)?;
    let init = match &args.init_from {
        Some(dir) => {
            let loaded = crate::torch::load_any(dir)?;
            cfg = super::train_init::keep_architecture(cfg, &loaded, dir, &args.overrides())?;
            Some(loaded)
        }
        None => None,
    };
    let data_dir = cache::data_dir(g.data_dir.as_deref())?;
    let source = source_of(&cfg, &args.corpus)?;
    let load = LoadOptions {
        script: cfg.script,
        min_len: cfg.min_len,
        max_len: cfg.max_len,
        skip_bad: args.corpus.skip_bad,
        ..LoadOptions::default()
    };
    let corpus = corpus::load(&source, &load, &data_dir)?;
    let vocab = match (&args.resume, &init) {
        (Some(dir), _) => Some(Vocab::load(&dir.join(checkpoint::VOCAB_FILE))?),
        (None, Some(loaded)) => Some(loaded.vocab.clone()),
        (None, None) => None,
    };
    let description = format!(
        "{} ({} poems, {}–{} chars, {:?})",
        source,
        corpus.poems.len(),
        cfg.min_len,
        cfg.max_len,
        cfg.script
    );
    let data = Data::from_poems(
        &corpus.poems,
        vocab,
        cfg.min_count,
        cfg.max_len,
        cfg.form_tags,
        cfg.titles,
        cfg.untitled_each_epoch,
        description,
        cfg.script,
    );
    let out = match (&args.out, &args.resume) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) => dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
        (None, None) => PathBuf::from(format!("runs/{}-{}x{}", cfg.cell, cfg.layers, cfg.hidden)),
    };
    eprintln!(
        "settings: {}",
        serde_json::to_string(&cfg).expect("TrainConfig serialises")
    );
    eprintln!(
        "corpus: {}; vocabulary {} (min count {}); {} training and {} validation poems; run folder {}",
        data.corpus,
        data.vocab.len(),
        cfg.min_count,
        data.train.len(),
        data.valid.len(),
        out.display()
    );
    if let (Some(dir), Some(loaded)) = (&args.init_from, &init) {
        eprintln!(
            "{}",
            super::train_init::unknown_note(dir, &loaded.vocab, &corpus.poems)
        );
    }
    let opts = Options {
        out,
        resume: args.resume.clone(),
        init_from: init.map(|l| (l.model.cfg.clone(), l.model.params)),
        quiet: false,
        stop_after: None,
    };
    train::train(&cfg, &data, &opts)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("train", args)
    }

    fn args(line: &[&str]) -> Args {
        parse(line).unwrap()
    }

    #[test]
    fn flags_override_the_config_file_which_overrides_the_preset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.json");
        std::fs::write(&file, r#"{"hidden": 300, "lr": 0.002, "max_len": 80}"#).unwrap();
        let f = file.to_str().unwrap();
        let cfg = resolve(&args(&[
            "--preset", "seed", "--config", f, "--lr", "0.004", "--cell", "gru",
        ]))
        .unwrap();
        assert_eq!(
            (
                cfg.hidden,
                cfg.lr,
                cfg.cell.to_string(),
                cfg.embed,
                cfg.max_len
            ),
            (300, 0.004, "gru".into(), 128, 80)
        );
        let cfg = resolve(&args(&["--corpus", "tang300", "--max-len", "64"])).unwrap();
        assert_eq!(
            (cfg.corpus.as_str(), cfg.max_len, cfg.hidden),
            ("tang300", 64, 512)
        );
    }

    #[test]
    fn an_unknown_key_in_the_config_file_is_an_error_naming_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.json");
        std::fs::write(&file, r#"{"hiden": 300}"#).unwrap();
        let err = resolve(&args(&["--config", file.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.json") && err.contains("unknown field `hiden`"),
            "{err}"
        );
        for flag in ["--dropout", "--dropout-in", "--dropout-out"] {
            let err = resolve(&args(&[flag, "1.5"])).unwrap_err().to_string();
            let key = flag.trim_start_matches("--").replace('-', "_");
            assert!(err.contains(&format!("{key} must be")), "{flag}: {err}");
        }
        let cfg = resolve(&args(&["--dropout-in", "0.1", "--dropout-out", "0.3"])).unwrap();
        assert_eq!((cfg.dropout_in, cfg.dropout_out), (0.1, 0.3));
    }

    #[test]
    fn resume_refuses_a_flag_that_changes_the_architecture() {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("last");
        let cfg = TrainConfig::preset_seed();
        let vocab = Vocab::build(["春眠不觉晓"], 1);
        let model =
            crate::model::Model::new(cfg.model_config(&vocab), &mut crate::rng::Rng::new(1));
        let meta = checkpoint::Meta::new(
            model.cfg.clone(),
            serde_json::to_value(&cfg).unwrap(),
            cfg.script,
            "t".into(),
        );
        checkpoint::save(&ck, &model, &vocab, &meta, None).unwrap();
        let ck_s = ck.to_str().unwrap();
        let err = resolve(&args(&["--resume", ck_s, "--hidden", "256"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--hidden 256 disagrees with the checkpoint")
                && err.contains("hidden 128"),
            "{err}"
        );
        let ok = resolve(&args(&[
            "--resume", ck_s, "--epochs", "60", "--lr", "0.005",
        ]))
        .unwrap();
        assert_eq!((ok.hidden, ok.epochs, ok.lr), (128, 60, 0.005));
        assert!(parse(&["--resume", ck_s, "--preset", "seed"]).is_err());
    }
}
