//! `shiren bench`: training tokens/s for configs S and L per cell, batch-1
//! sampling latency, peak RSS, FLOPs per token and GFLOP/s next to the
//! machine's GEMM rate — with PyTorch's reference script alternated run by run
//! in the same session when a Python with torch is available.
//!
//! Each run is a child process (this binary with the hidden `--child` flag, or
//! the Python script) so each peak RSS belongs to one run. Not here: the
//! measurements themselves (`src/bench.rs`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use super::Global;
use crate::bench::{self, median, RunResult};
use crate::model::Cell;

/// The PyTorch reference, shipped inside the binary so `--torch` works from anywhere.
const TORCH_SCRIPT: &str = include_str!("../../benches/reference/torch_bench.py");

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configs to measure: S (embed 128, 2×128), L (embed 256, 2×512) or all
    #[arg(long, default_value = "all", value_name = "S|L|all")]
    pub cfg: String,
    /// Cells to measure: lstm, gru, rnn or all
    #[arg(long, default_value = "all", value_name = "CELL|all")]
    pub cell: String,
    /// Timed training steps per run (batch 64 × 64 steps each)
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub steps: usize,
    /// Untimed warm-up steps per run
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub warmup: usize,
    /// Runs per contender, alternated with PyTorch's; the table reports medians
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub reps: usize,
    /// Characters per sampling run (batch 1, state carried)
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub sample_tokens: usize,
    /// Python with torch installed, for the side-by-side runs [default: $SHIREN_TORCH_PYTHON, else python3 if it has torch]
    #[arg(long, value_name = "PYTHON", env = "SHIREN_TORCH_PYTHON")]
    pub torch: Option<PathBuf>,
    /// Measure shiren only, even when torch is available
    #[arg(long)]
    pub no_torch: bool,
    /// Internal: run one measurement in this process and print it as JSON (train:S:lstm, sample:S:lstm)
    #[arg(long, hide = true, value_name = "KIND:CFG:CELL")]
    pub child: Option<String>,
}

fn parse_list<T>(
    s: &str,
    all: &[T],
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> anyhow::Result<Vec<T>>
where
    T: Clone,
{
    if s.eq_ignore_ascii_case("all") {
        return Ok(all.to_vec());
    }
    s.split(',')
        .map(|p| parse(p.trim()).with_context(|| format!("unknown {what} `{p}`")))
        .collect()
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    if let Some(child) = &args.child {
        return run_child(child, &args);
    }
    let cfgs = parse_list(
        &args.cfg,
        &["S", "L"],
        |s| {
            bench::config(s, Cell::Lstm).map(|_| {
                if s.eq_ignore_ascii_case("s") {
                    "S"
                } else {
                    "L"
                }
            })
        },
        "config (expected S, L or all)",
    )?;
    let cells = parse_list(
        &args.cell,
        &[Cell::Lstm, Cell::Gru, Cell::Rnn],
        |s| s.parse().ok(),
        "cell (expected lstm, gru, rnn or all)",
    )?;
    if args.steps == 0 || args.reps == 0 || args.sample_tokens == 0 {
        bail!("--steps, --reps and --sample-tokens must be at least 1");
    }
    let python = if args.no_torch {
        None
    } else {
        find_torch(args.torch.clone())?
    };
    let script = match &python {
        Some(_) => {
            let dir = tempfile::tempdir()
                .context("cannot create a temporary directory for the torch script")?;
            let path = dir.path().join("torch_bench.py");
            std::fs::write(&path, TORCH_SCRIPT)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some((dir, path))
        }
        None => None,
    };
    let threads = g.threads.unwrap_or_else(rayon::current_num_threads);
    crate::engine::matmul::set_threads(threads);
    let peak = bench::gemm_peak_gflops();
    println!("shiren bench: {threads} threads, batch {} × length {}, {} timed steps after {} warm-up, {} runs each (medians)", bench::B, bench::T, args.steps, args.warmup, args.reps);
    println!("peak GEMM rate through engine::matmul (1024×2048×512): {peak:.1} GFLOP/s");
    match &python {
        Some(p) => println!("PyTorch: {} (runs alternated with shiren's)", p.display()),
        None => println!("PyTorch: not found (pass --torch PYTHON for side-by-side ratios)"),
    }
    println!();
    println!(
        "{:<4} {:<5} {:>10} {:>10} {:>6} {:>8} {:>8} {:>6} {:>9} {:>8}",
        "cfg",
        "cell",
        "shiren",
        "pytorch",
        "ratio",
        "RSS MB",
        "torch MB",
        "RSS",
        "MFLOP/tok",
        "GFLOP/s"
    );
    let exe =
        std::env::current_exe().context("cannot find this executable to run the bench children")?;
    let child_common = |kind: &str, cfg: &str, cell: Cell| {
        let mut c = Command::new(&exe);
        c.args([
            "--threads",
            &threads.to_string(),
            "bench",
            "--child",
            &format!("{kind}:{cfg}:{cell}"),
        ]);
        c.args([
            "--steps",
            &args.steps.to_string(),
            "--warmup",
            &args.warmup.to_string(),
            "--sample-tokens",
            &args.sample_tokens.to_string(),
            "--reps",
            &args.reps.to_string(),
        ]);
        c
    };
    let torch_cmd = |kind: &str, cfg: &str, cell: Cell| {
        let (py, (_, path)) = (python.as_ref().unwrap(), script.as_ref().unwrap());
        let mut c = Command::new(py);
        let (n, w) = if kind == "train" {
            (args.steps, args.warmup)
        } else {
            (args.sample_tokens, args.reps)
        };
        c.arg(path)
            .args([kind, cfg, cell.name(), &n.to_string(), &w.to_string()]);
        c
    };
    for &cfg_name in &cfgs {
        for &cell in &cells {
            let cfg = bench::config(cfg_name, cell).expect("checked above");
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..args.reps {
                ours.push(run_json(child_common("train", cfg_name, cell))?);
                if python.is_some() {
                    theirs.push(run_json(torch_cmd("train", cfg_name, cell))?);
                }
            }
            let tok = median(&mut ours.iter().map(|r| r.tok_s).collect::<Vec<_>>());
            let rss = median(&mut ours.iter().map(|r| r.rss_mb).collect::<Vec<_>>());
            let ttok = median(&mut theirs.iter().map(|r| r.tok_s).collect::<Vec<_>>());
            let trss = median(&mut theirs.iter().map(|r| r.rss_mb).collect::<Vec<_>>());
            let flops = bench::train_flops_per_token(&cfg);
            println!(
                "{:<4} {:<5} {:>10.0} {:>10} {:>6} {:>8.0} {:>8} {:>6} {:>9.2} {:>8.1}",
                cfg_name,
                cell.name(),
                tok,
                opt(ttok, 0),
                ratio(tok, ttok, "×"),
                rss,
                opt(trss, 0),
                ratio(trss, rss, "×↓"),
                flops / 1e6,
                tok * flops / 1e9
            );
        }
    }
    println!();
    println!("sampling, batch 1, state carried (ms per character, softmax and draw included);");
    println!(
        "f16: the same model with weights exact in half precision, as `train --half` saves them:"
    );
    for &cell in &cells {
        let (mut ours, mut half, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.reps {
            let r = run_json(child_common("sample", "S", cell))?;
            ours.push(r.sample_ms_per_tok);
            half.push(r.sample_f16_ms_per_tok);
            if python.is_some() {
                theirs.push(run_json(torch_cmd("sample", "S", cell))?.sample_ms_per_tok);
            }
        }
        let (m, mh, tm) = (median(&mut ours), median(&mut half), median(&mut theirs));
        println!(
            "S    {:<5} shiren {:.4}, f16 {:.4}   pytorch {}   ({} faster, f16 {})",
            cell.name(),
            m,
            mh,
            opt(tm, 4),
            ratio(tm, m, "×"),
            ratio(tm, mh, "×")
        );
    }
    println!();
    decode_rows(args.reps, g)?;
    println!();
    println!("ratio = shiren/pytorch tokens/s (higher is better); RSS = pytorch/shiren peak memory; the machine is shared, so expect noise");
    Ok(())
}

/// Writing speed of the shipped model as `shiren write --form qilv` writes
/// (its defaults, rhyme on when the lexicon is cached): poems per second one
/// poem per call (batch 1), 64 per call (batch 64), and 64 per call with the
/// default drafts. Medians of `reps` runs.
fn decode_rows(reps: usize, g: &Global) -> anyhow::Result<()> {
    use crate::write::{Form, Lm, Options, Writer, DEFAULT_DRAFTS};
    let dir = super::write::default_model();
    if !dir.join(crate::checkpoint::MODEL_FILE).is_file() {
        println!("decode: no shipped model at {}; skipped", dir.display());
        return Ok(());
    }
    let loaded = crate::checkpoint::load(&dir)?;
    let lm = Lm::new(&loaded.model, &loaded.vocab);
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    let lex = crate::prosody::Lexicon::load(&data_dir, loaded.meta.script).ok();
    let writer = Writer::new(&lm, lex.as_ref());
    let opts = |drafts| Options {
        form: Form::Qilv,
        rhyme: lex.is_some(),
        drafts,
        ..Options::default()
    };
    println!(
        "decode: the shipped model writing 七律 at write's defaults (rhyme {}), poems/s (ms per poem):",
        if lex.is_some() { "on" } else { "off: no lexicon cached" }
    );
    let cases = [
        ("batch 1, 1 draft".to_string(), 1, 1, 16),
        ("batch 64, 1 draft".to_string(), 64, 1, 1),
        (
            format!("batch 1, {DEFAULT_DRAFTS} drafts (default)"),
            1,
            DEFAULT_DRAFTS,
            16,
        ),
        (
            format!("batch 64, {DEFAULT_DRAFTS} drafts (default)"),
            64,
            DEFAULT_DRAFTS,
            1,
        ),
    ];
    for (label, n, drafts, calls) in cases {
        let mut rates = Vec::new();
        for r in 0..reps.max(1) {
            let t0 = std::time::Instant::now();
            for c in 0..calls {
                writer.write_many(&opts(drafts), n, (r * calls + c) as u64)?;
            }
            rates.push((n * calls) as f64 / t0.elapsed().as_secs_f64());
        }
        let m = median(&mut rates);
        println!("  {label:<28} {m:>8.1} poems/s ({:.2} ms)", 1e3 / m);
    }
    Ok(())
}

fn opt(v: f64, digits: usize) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.digits$}")
    }
}

fn ratio(a: f64, b: f64, unit: &str) -> String {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        "-".into()
    } else {
        format!("{:.2}{unit}", a / b)
    }
}

fn run_child(spec: &str, args: &Args) -> anyhow::Result<()> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [kind, cfg_name, cell] = parts[..] else {
        bail!("bad --child `{spec}` (expected KIND:CFG:CELL)")
    };
    let cell: Cell = cell.parse()?;
    let cfg =
        bench::config(cfg_name, cell).with_context(|| format!("unknown config `{cfg_name}`"))?;
    let r = match kind {
        "train" => bench::train(cfg_name, &cfg, args.steps, args.warmup),
        "sample" => bench::sample(cfg_name, &cfg, args.sample_tokens, args.reps),
        _ => bail!("bad --child kind `{kind}` (expected train or sample)"),
    };
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// Runs a child and parses the last line of its stdout as a [`RunResult`].
fn run_json(mut cmd: Command) -> anyhow::Result<RunResult> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("cannot parse the bench output `{line}`"))
}

/// The Python to compare with: the one given (which must import torch), else `python3` if it has torch.
fn find_torch(given: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    let has_torch = |p: &PathBuf| {
        Command::new(p)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    match given {
        Some(p) if has_torch(&p) => Ok(Some(p)),
        Some(p) => bail!(
            "{} cannot import torch (install it with `{} -m pip install torch`, or drop --torch)",
            p.display(),
            p.display()
        ),
        None => {
            let p = PathBuf::from("python3");
            Ok(has_torch(&p).then_some(p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_reject_unknown_names() {
        let cells = parse_list("gru,rnn", &[Cell::Lstm], |s| s.parse().ok(), "cell").unwrap();
        assert_eq!(cells, vec![Cell::Gru, Cell::Rnn]);
        assert_eq!(
            parse_list("all", &[Cell::Lstm], |s| s.parse().ok(), "cell").unwrap(),
            vec![Cell::Lstm]
        );
        let err =
            parse_list("gru,xyz", &[Cell::Lstm], |s| s.parse::<Cell>().ok(), "cell").unwrap_err();
        assert!(err.to_string().contains("unknown cell `xyz`"), "{err}");
        assert_eq!(ratio(4.0, 2.0, "×"), "2.00×");
        assert_eq!(ratio(f64::NAN, 2.0, "×"), "-");
    }
}
