//! What a run records while it trains: the rows of metrics.csv and the loss
//! plot drawn from them. (Its progress lines or bar are `crate::progress`.)

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// One row of metrics.csv; training rows leave the validation columns empty and vice versa.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsRow {
    pub step: u64,
    pub epoch: f64,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub tok_s: Option<f64>,
    pub lr: f32,
}

pub const METRICS_HEADER: &str = "step,epoch,train_loss,val_loss,val_ppl,tok_s,lr";

impl MetricsRow {
    pub(super) fn to_csv(&self) -> String {
        let opt =
            |x: Option<f64>, digits: usize| x.map_or(String::new(), |v| format!("{v:.digits$}"));
        format!(
            "{},{:.4},{},{},{},{},{:e}",
            self.step,
            self.epoch,
            opt(self.train_loss, 5),
            opt(self.val_loss, 5),
            opt(self.val_loss.map(f64::exp), 3),
            opt(self.tok_s, 0),
            self.lr
        )
    }

    pub(super) fn parse(line: &str) -> Option<MetricsRow> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 7 {
            return None;
        }
        let opt = |s: &str| {
            if s.is_empty() {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        Some(MetricsRow {
            step: f[0].parse().ok()?,
            epoch: f[1].parse().ok()?,
            train_loss: opt(f[2])?,
            val_loss: opt(f[3])?,
            tok_s: opt(f[5])?,
            lr: f[6].parse().ok()?,
        })
    }
}

pub(super) struct Metrics {
    path: PathBuf,
    rows: Vec<MetricsRow>,
    file: std::fs::File,
}

impl Metrics {
    /// Starts metrics.csv, or on resume keeps the rows up to the checkpoint's
    /// step (rows written after it, before a kill, will be written again).
    pub(super) fn open(path: &Path, step: u64, resume: bool) -> anyhow::Result<Metrics> {
        let mut rows = Vec::new();
        let mut text = format!("{METRICS_HEADER}\n");
        if resume {
            if let Ok(old) = std::fs::read_to_string(path) {
                // The kept rows are copied as they were written: printed
                // again from the parsed (rounded) loss, a perplexity could
                // come out one digit off the straight run's.
                for line in old.lines().skip(1) {
                    if let Some(r) = MetricsRow::parse(line).filter(|r| r.step <= step) {
                        rows.push(r);
                        text.push_str(line);
                        text.push('\n');
                    }
                }
            }
        }
        crate::cache::write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot append", path.display()))?;
        Ok(Metrics {
            path: path.to_path_buf(),
            rows,
            file,
        })
    }

    pub(super) fn push(&mut self, row: MetricsRow) -> anyhow::Result<()> {
        writeln!(self.file, "{}", row.to_csv())
            .with_context(|| format!("{}: cannot append", self.path.display()))?;
        self.rows.push(row);
        Ok(())
    }

    /// Writes the loss plot; a failure is reported but never stops training.
    pub(super) fn plot(&self, png: &Path) {
        if let Err(e) = plot_losses(png, &self.rows) {
            eprintln!("shiren: {}: cannot draw the loss plot: {e}", png.display());
        }
    }
}

/// Training and validation loss (nats per character) against the step, as a PNG.
pub fn plot_losses(png: &Path, rows: &[MetricsRow]) -> crate::plot::PlotResult {
    use crate::plot::{lines, Line};
    use plotters::style::{BLUE, RED};
    let train: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r.step as f64, r.train_loss?)))
        .collect();
    let val: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r.step as f64, r.val_loss?)))
        .collect();
    if train.is_empty() && val.is_empty() {
        return Ok(());
    }
    let all = || train.iter().chain(&val);
    let x_max = all().map(|p| p.0).fold(1.0, f64::max);
    // The first steps' loss (ln V ≈ 8.7) would flatten the curve: scale to the later part.
    let skip = train.len() / 20;
    let ys = || train.iter().skip(skip).chain(&val).map(|p| p.1);
    let (y_min, y_max) = (
        ys().fold(f64::INFINITY, f64::min),
        ys().fold(f64::NEG_INFINITY, f64::max),
    );
    let pad = ((y_max - y_min) * 0.05).max(0.01);
    let series = [
        Line {
            label: "train".into(),
            points: train,
            color: BLUE,
            width: 1,
            dots: false,
        },
        Line {
            label: "validation".into(),
            points: val,
            color: RED,
            width: 2,
            dots: true,
        },
    ];
    lines(
        png,
        "shiren: loss per character (nats)",
        ("step", "nats per character"),
        x_max,
        (y_min - pad)..(y_max + pad),
        &series,
    )
}
