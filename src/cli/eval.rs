//! `shiren eval`: the report card of a checkpoint — perplexity against
//! Kneser–Ney baselines on the same split, and form, rhyme, tones, diversity
//! and copying of what it writes, beside the real held-out poems.
//!
//! This file is glue: it resolves the flags, rebuilds the checkpoint's split,
//! samples through `write`, and renders (table, JSON, markdown, plots). The
//! measures themselves are pure functions in `crate::eval` and `crate::ngram`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use super::Global;
use crate::checkpoint;
use crate::corpus::{self, Collection, LoadOptions, Source};
use crate::eval::{self, Card, CardRow, EvalSettings, Kind, Split};
use crate::plot::PlotResult;
use crate::prosody::Lexicon;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint to evaluate: a checkpoint folder, or a run folder holding best/ (or last/) [default: models/tang-small, the shipped model]
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Poems sampled per form and kind (form forced, rhyme + strict tones, free-running), 1 to 100000
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub samples: usize,
    /// Seed of the sampling and of the held-out poems picked
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Orders of the Kneser–Ney n-gram baselines, comma-separated (none: `--ngram ''`)
    #[arg(long, value_name = "N,…", default_value = "3,5", value_delimiter = ',')]
    pub ngram: Vec<String>,
    /// Sampling temperature, as `shiren write --temperature`; 1 samples the model's own distribution (the write's-defaults rows use write's own settings)
    #[arg(long, value_name = "T", default_value_t = crate::eval::TEMPERATURE)]
    pub temperature: f32,
    /// Sample among the k likeliest characters, as `shiren write --top-k` (0: all)
    #[arg(long, value_name = "K", default_value_t = crate::write::Options::default().top_k)]
    pub top_k: usize,
    /// Poems per batch when measuring the model's perplexity
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch: usize,
    /// Evaluate on this collection instead of the one in the checkpoint's config
    #[arg(long, value_enum, value_name = "NAME", conflicts_with = "file")]
    pub corpus: Option<Collection>,
    /// Evaluate on this file or folder of poems instead of the checkpoint's corpus
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Print the report card as JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Also write a markdown report with plots (PNG files beside it)
    #[arg(long, value_name = "FILE.md")]
    pub report: Option<PathBuf>,
    /// Only measure which characters the training poems (5- and 7-character forms) repeat often enough to be let repeat, and print them
    #[arg(long)]
    pub repeat_chars: bool,
    /// Only run the sweep of sampling settings behind write's defaults (--samples poems per form and setting; 200 takes minutes) and print it as a markdown table
    #[arg(long, conflicts_with = "repeat_chars")]
    pub sweep: bool,
    /// With --sweep: only these settings, each TEMPERATURE:TOP_K:TOP_P:DRAFTS, comma-separated (as 1:200:1:2,1.1:200:1:4)
    #[arg(
        long,
        value_name = "T:K:P:D,…",
        value_delimiter = ',',
        requires = "sweep"
    )]
    pub settings: Vec<eval::Setting>,
}

/// Validated settings.
struct Resolved {
    checkpoint: PathBuf,
    /// The trainer's metrics.csv beside the checkpoint, if there is one.
    metrics: Option<PathBuf>,
    eval: EvalSettings,
}

fn resolve(a: &Args) -> anyhow::Result<Resolved> {
    let most = crate::limits::MAX_POEMS;
    anyhow::ensure!(
        (1..=most).contains(&a.samples),
        "--samples {} is out of range (use 1 to {most}; the report's numbers settle within a few thousand)",
        a.samples
    );
    let dir = &a.model.clone().unwrap_or_else(super::write::default_model);
    if !dir.is_dir() {
        match a.model {
            Some(_) => anyhow::bail!(
                "{}: no such checkpoint folder (pass the folder `shiren train --out` wrote)",
                dir.display()
            ),
            None => anyhow::bail!(
                "{}: the shipped model is missing (pass --model DIR, or make it: {})",
                dir.display(),
                super::write::TRAIN_HINT
            ),
        }
    }
    // A run folder holds best/ and last/; a checkpoint folder holds config.json.
    let Some(checkpoint) = checkpoint::find_in(dir, &["best", "last"]) else {
        anyhow::bail!("{}", checkpoint::not_found(dir));
    };
    let metrics = [
        checkpoint.join("metrics.csv"),
        checkpoint.join("..").join("metrics.csv"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    let orders = a
        .ngram
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| match s.trim().parse::<usize>() {
            Ok(n) if (1..=8).contains(&n) => Ok(n),
            _ => Err(anyhow::anyhow!(
                "--ngram {s}: orders are whole numbers from 1 to 8"
            )),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(a.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(
        a.temperature >= 0.0 && a.temperature.is_finite(),
        "--temperature must be 0 or more, got {}",
        a.temperature
    );
    let eval = EvalSettings {
        samples: a.samples,
        seed: a.seed,
        orders,
        batch: a.batch,
        temperature: a.temperature,
        top_k: a.top_k,
        ..EvalSettings::default()
    };
    Ok(Resolved {
        checkpoint,
        metrics,
        eval,
    })
}

/// The checkpoint's corpus, as its train config names it (`tang`, or
/// `file:PATH`), unless a flag overrides it.
fn source_of(a: &Args, train: &serde_json::Value) -> anyhow::Result<Source> {
    if let Some(path) = &a.file {
        anyhow::ensure!(
            path.exists(),
            "--file {}: no such file or folder",
            path.display()
        );
        return Ok(Source::File {
            path: path.clone(),
            format: None,
        });
    }
    if let Some(c) = a.corpus {
        return Ok(Source::Collection(c));
    }
    let label = train
        .get("corpus")
        .and_then(|v| v.as_str())
        .unwrap_or("tang");
    if let Some(path) = label.strip_prefix("file:") {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.exists(),
            "the checkpoint was trained on {}, which is not here (pass --file PATH or --corpus NAME)",
            path.display()
        );
        return Ok(Source::File { path, format: None });
    }
    Collection::ALL.into_iter().find(|c| c.name() == label).map(Source::Collection).ok_or_else(|| {
        anyhow::anyhow!("the checkpoint was trained on `{label}`, which is not a collection this shiren knows (pass --corpus NAME or --file PATH)")
    })
}

/// How the trainer loaded its corpus, from its config (defaults where a key is missing).
fn load_options(meta: &checkpoint::Meta) -> LoadOptions {
    let d = LoadOptions::default();
    let num = |key: &str, default: usize| {
        meta.train
            .get(key)
            .and_then(|v| v.as_u64())
            .map_or(default, |n| n as usize)
    };
    LoadOptions {
        script: meta.script,
        min_len: num("min_len", d.min_len),
        max_len: num("max_len", d.max_len),
        ..d
    }
}

/// The poems of each part.
fn split(poems: Vec<corpus::Poem>) -> Split {
    let [train, valid, test] = corpus::split(poems, |p| p.text.as_str());
    let texts = |ps: Vec<corpus::Poem>| ps.into_iter().map(|p| p.text).collect();
    Split {
        test_titles: test.iter().map(|p| crate::title::clean(&p.title)).collect(),
        train: texts(train),
        valid: texts(valid),
        test: texts(test),
    }
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let set = resolve(&args)?;
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    let t0 = Instant::now();
    let say = |msg: &str| {
        if g.verbose {
            eprintln!("shiren: eval: {msg} ({:.1} s)", t0.elapsed().as_secs_f64());
        }
    };
    let loaded = checkpoint::load(&set.checkpoint)
        .with_context(|| format!("loading {}", set.checkpoint.display()))?;
    let (mut model, vocab, meta) = (loaded.model, loaded.vocab, loaded.meta);
    let source = source_of(&args, &meta.train)?;
    let corpus = corpus::load(&source, &load_options(&meta), &data_dir)?;
    let data = split(corpus.poems);
    anyhow::ensure!(
        !data.train.is_empty(),
        "{source}: no training poems after the split (is it the checkpoint's corpus?)"
    );
    say(&format!(
        "split {} / {} / {} poems",
        data.train.len(),
        data.valid.len(),
        data.test.len()
    ));
    if args.repeat_chars {
        print!("{}", repeat_chars(&data.train));
        return Ok(());
    }
    let lex = Lexicon::load(&data_dir, meta.script)?;
    say("lexicon loaded");
    if args.sweep {
        let grid = match args.settings.is_empty() {
            true => eval::sweep_grid(),
            false => args.settings.clone(),
        };
        return sweep(&model, &vocab, &lex, &data, &set.eval, &grid, &say);
    }
    let mut card = eval::evaluate(&mut model, &vocab, &lex, &data, &set.eval, &say)?;
    card.model = set.checkpoint.display().to_string();
    card.corpus = meta.corpus.clone();
    if args.file.is_some() || args.corpus.is_some() {
        // Name what was measured, not what the model was trained on.
        card.corpus = format!("evaluated on {source} (model trained on {})", meta.corpus);
        card.notes.insert(0, format!("{source}: read and cleaned as a training corpus, converted to the model's script, split 90/5/5 by a hash of each poem; perplexity is over its valid and test parts, the n-grams are trained on its train part (to score every poem of a file as it is, use `shiren score FILE`)"));
    }
    card.step = meta.step;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        print!("{}", card.to_text());
    }
    if let Some(md) = &args.report {
        write_report(md, &card, set.metrics.as_deref())?;
    }
    say("done");
    Ok(())
}

/// `--sweep`: each setting of `grid` against held-out poems.
fn sweep(
    model: &crate::model::Model,
    vocab: &crate::vocab::Vocab,
    lex: &Lexicon,
    data: &Split,
    set: &EvalSettings,
    grid: &[eval::Setting],
    say: &dyn Fn(&str),
) -> anyhow::Result<()> {
    use crate::write::{Lm, Writer};
    let mut rng = crate::rng::Rng::new(set.seed);
    let real: Vec<(corpus::Form, Vec<String>)> = corpus::Form::REGULATED
        .iter()
        .map(|&f| {
            let mut p: Vec<String> = data
                .valid
                .iter()
                .chain(&data.test)
                .filter(|t| corpus::Form::of_text(t) == f)
                .cloned()
                .collect();
            rng.shuffle(&mut p);
            (f, p)
        })
        .collect();
    let index = eval::CopyIndex::build(&data.train);
    let lm = Lm::new(model, vocab);
    let writer = Writer::new(&lm, Some(lex));
    let rows = eval::sweep(&writer, &real, &index, grid, set.samples, set.seed, say)?;
    println!(
        "{} poems per form and setting (五绝 七绝 五律 七律, means over the forms; `worst form` is the form furthest below the real poems' distinct-2), seed {}\n",
        set.samples, set.seed
    );
    print!("{}", eval::sweep_table(&rows));
    Ok(())
}

/// The characters the regulated training poems repeat often, as a table and
/// as the Rust list `prosody::repeats::FREE_CHARS` holds.
fn repeat_chars(train: &[String]) -> String {
    use crate::prosody::repeats::{free_chars, FREE_MIN_POEMS, FREE_MIN_RATE};
    let poems: Vec<Vec<&str>> = train
        .iter()
        .filter(|t| corpus::Form::of_text(t) != corpus::Form::Free)
        .map(|t| corpus::split_lines(t))
        .collect();
    let found = free_chars(&poems, FREE_MIN_POEMS, FREE_MIN_RATE);
    let mut s = format!(
        "{} regulated training poems; characters in at least {:.1}% of them that at least {:.1}% of their poems repeat (3+ uses, or twice in a line apart)\n\nchar  poems  repeated  rate\n",
        poems.len(),
        100.0 * FREE_MIN_POEMS,
        100.0 * FREE_MIN_RATE
    );
    for r in &found {
        s += &format!(
            "{}    {:>6}  {:>8}  {:.1}%\n",
            r.ch,
            r.poems,
            r.repeated,
            100.0 * r.rate()
        );
    }
    let list: Vec<String> = found.iter().map(|r| format!("'{}'", r.ch)).collect();
    s += &format!("\nFREE_CHARS: &[char] = &[{}];\n", list.join(", "));
    s
}

// ---------------------------------------------------------------------------
// the markdown report and its plots

fn write_report(md: &Path, card: &Card, metrics: Option<&Path>) -> anyhow::Result<()> {
    let stem = md
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("eval")
        .to_string();
    let dir = md
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
    let mut images = Vec::new();
    if let Some(csv) = metrics {
        let text =
            std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
        let curve = parse_metrics(&text);
        let png = format!("{stem}-perplexity.png");
        let kn: Vec<(usize, f64)> = card
            .perplexity
            .iter()
            .find(|p| p.part == "valid")
            .map_or(Vec::new(), |p| p.ngram.clone());
        if !curve.is_empty() {
            plot_curve(&dir.join(&png), &curve, &kn).map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot draw the perplexity plot: {e}",
                    dir.join(&png).display()
                )
            })?;
            images.push((
                "perplexity per character against the training step".to_string(),
                png,
            ));
        }
    }
    let png = format!("{stem}-forms.png");
    plot_forms(&dir.join(&png), &card.rows).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot draw the per-form plot: {e}",
            dir.join(&png).display()
        )
    })?;
    images.push((
        "rhyme% and tones% per form: model (form forced, rhyme + strict tones) and real poems"
            .to_string(),
        png,
    ));
    std::fs::write(md, card.to_markdown(&images))
        .with_context(|| format!("{}: cannot write the report", md.display()))?;
    Ok(())
}

/// (step, train perplexity, validation perplexity) from the trainer's
/// metrics.csv (`step,epoch,train_loss,val_loss,…`); rows that do not parse are skipped.
fn parse_metrics(text: &str) -> Vec<(f64, Option<f64>, Option<f64>)> {
    let mut lines = text.lines();
    let Some(head) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = head.split(',').collect();
    let col = |name: &str| cols.iter().position(|c| c.trim() == name);
    let (Some(step), train, val) = (col("step"), col("train_loss"), col("val_loss")) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: Option<usize>| {
                i.and_then(|i| f.get(i))
                    .and_then(|s| s.trim().parse::<f64>().ok())
            };
            let s = num(Some(step))?;
            Some((s, num(train).map(f64::exp), num(val).map(f64::exp)))
        })
        .collect()
}

/// Train and validation perplexity against the step, with the n-gram
/// baselines' validation perplexity as flat lines.
fn plot_curve(
    png: &Path,
    curve: &[(f64, Option<f64>, Option<f64>)],
    kn: &[(usize, f64)],
) -> PlotResult {
    use crate::plot::{lines, Line};
    use plotters::style::{BLUE, CYAN, GREEN, MAGENTA, RED};
    let train: Vec<(f64, f64)> = curve
        .iter()
        .filter_map(|&(s, t, _)| Some((s, t?)))
        .collect();
    let val: Vec<(f64, f64)> = curve
        .iter()
        .filter_map(|&(s, _, v)| Some((s, v?)))
        .collect();
    let x_max = curve.iter().map(|c| c.0).fold(1.0, f64::max);
    // The first steps sit near the vocabulary size; scale to the rest.
    let skip = train.len() / 10;
    let ys: Vec<f64> = train
        .iter()
        .skip(skip)
        .map(|p| p.1)
        .chain(val.iter().map(|p| p.1))
        .chain(kn.iter().map(|k| k.1))
        .collect();
    let y_min = ys.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let y_max = ys
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(y_min * 1.1);
    let line = |label: String, points, color, width| Line {
        label,
        points,
        color,
        width,
        dots: false,
    };
    let mut series = vec![
        line("train".into(), train, BLUE, 1),
        line("validation".into(), val, RED, 2),
    ];
    for (i, &(n, p)) in kn.iter().enumerate() {
        let color = [GREEN, MAGENTA, CYAN][i % 3];
        let label = format!("Kneser-Ney {n}-gram (validation)");
        series.push(line(label, vec![(0.0, p), (x_max, p)], color, 1));
    }
    lines(
        png,
        "perplexity per character",
        ("step", "perplexity"),
        x_max,
        (y_min * 0.9)..(y_max * 1.05),
        &series,
    )
}

/// Grouped bars: for each form, rhyme% and tones% of the forced-form
/// samples, the rhyme + strict tones samples and the real poems.
fn plot_forms(png: &Path, rows: &[CardRow]) -> PlotResult {
    use plotters::prelude::*;
    let kinds = [Kind::Free, Kind::Strict, Kind::Real];
    let colors = [
        RGBColor(120, 160, 220),
        RGBColor(40, 90, 180),
        RGBColor(230, 150, 60),
    ];
    let text = crate::plot::font_available();
    let root = crate::plot::canvas(png)?;
    let caption = "rhyme% (left) and tones% (right) per form";
    // x: form i occupies [i, i + 1); rhyme bars then tones bars.
    let mut chart = crate::plot::builder(&root, caption, 45)
        .build_cartesian_2d(0f64..corpus::Form::REGULATED.len() as f64, 0f64..100f64)?;
    if text {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(corpus::Form::REGULATED.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.26 && i < corpus::Form::REGULATED.len() {
                    corpus::Form::REGULATED[i].name().to_string()
                } else {
                    String::new()
                }
            })
            .y_desc("%")
            .draw()?;
    }
    let w = 0.8 / (2 * kinds.len()) as f64;
    for (fi, form) in corpus::Form::REGULATED.iter().enumerate() {
        for (metric, value) in [
            (0usize, (|r: &CardRow| r.rhyme_pct) as fn(&CardRow) -> f64),
            (1, |r: &CardRow| r.tones_pct),
        ] {
            for (ki, kind) in kinds.iter().enumerate() {
                let Some(r) = rows.iter().find(|r| r.form == *form && r.kind == *kind) else {
                    continue;
                };
                let x0 = fi as f64 + 0.1 + (metric * kinds.len() + ki) as f64 * w;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + w * 0.9, value(r))],
                    colors[ki].filled(),
                )))?;
            }
        }
    }
    if text {
        for (ki, kind) in kinds.iter().enumerate() {
            let c = colors[ki];
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
                .label(kind.label())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
        }
        crate::plot::legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_csv_becomes_perplexities() {
        let csv = "step,epoch,train_loss,val_loss,val_ppl,tok_s,lr\n10,0.1,2.00000,,,5000,1e-3\n20,0.2,,1.00000,2.718,,1e-3\nbad\n";
        let c = parse_metrics(csv);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].0, 10.0);
        assert!((c[0].1.unwrap() - 2f64.exp()).abs() < 1e-9 && c[0].2.is_none());
        assert!(c[1].1.is_none() && (c[1].2.unwrap() - 1f64.exp()).abs() < 1e-9);
    }

    #[test]
    fn plots_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let curve = vec![
            (0.0, Some(900.0), None),
            (10.0, Some(300.0), Some(280.0)),
            (20.0, Some(200.0), Some(210.0)),
        ];
        plot_curve(&dir.path().join("c.png"), &curve, &[(3, 233.0), (5, 220.0)]).unwrap();
        let row = |form, kind| CardRow {
            form,
            kind,
            poems: 10,
            form_pct: 100.0,
            rhyme_pct: 50.0,
            tones_pct: 20.0,
            rules_pct: 80.0,
            distinct1: 0.5,
            distinct2: 0.9,
            distinct_over: 10,
            copied_lines_pct: 1.0,
            unseen_4grams_pct: 90.0,
            repeats: Default::default(),
        };
        let rows: Vec<CardRow> = corpus::Form::REGULATED
            .iter()
            .flat_map(|&f| Kind::ALL.map(|k| row(f, k)))
            .collect();
        plot_forms(&dir.path().join("f.png"), &rows).unwrap();
        for f in ["c.png", "f.png"] {
            let bytes = std::fs::read(dir.path().join(f)).unwrap();
            assert!(bytes.starts_with(b"\x89PNG"), "{f}");
        }
    }
}
