//! The sweep behind `shiren write`'s defaults (`shiren eval --sweep`): each
//! setting of temperature, top-k, top-p and drafts, scored on variety,
//! repetition, likelihood and copying beside the real poems.

use super::*;

/// One setting of the sweep: `shiren write`'s sampling flags.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Setting {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub drafts: usize,
}

/// The settings `shiren eval --sweep` tries: temperature with one draft and
/// with four, then top-p, top-k and the draft count one at a time.
pub fn sweep_grid() -> Vec<Setting> {
    let s = |temperature, top_k, top_p, drafts| Setting {
        temperature,
        top_k,
        top_p,
        drafts,
    };
    let mut g = Vec::new();
    for t in [0.7, 0.8, 0.9, 1.0, 1.1] {
        g.push(s(t, 200, 1.0, 1));
        g.push(s(t, 200, 1.0, 4));
    }
    g.extend([
        s(1.0, 200, 1.0, 2),
        s(1.0, 200, 1.0, 8),
        s(1.0, 200, 0.95, 4),
        s(1.0, 200, 0.9, 4),
        s(1.0, 50, 1.0, 4),
        s(1.0, 0, 1.0, 4),
    ]);
    g
}

impl std::str::FromStr for Setting {
    type Err = String;
    /// `T:K:P:D`, as `1.1:200:1:4` (temperature, top-k, top-p, drafts).
    fn from_str(s: &str) -> Result<Setting, String> {
        let bad =
            || format!("setting `{s}` is not TEMPERATURE:TOP_K:TOP_P:DRAFTS (as 1.1:200:1:4)");
        let parts: Vec<&str> = s.trim().split(':').collect();
        let [t, k, p, d] = parts[..] else {
            return Err(bad());
        };
        let st = Setting {
            temperature: t.parse().map_err(|_| bad())?,
            top_k: k.parse().map_err(|_| bad())?,
            top_p: p.parse().map_err(|_| bad())?,
            drafts: d.parse().map_err(|_| bad())?,
        };
        let ok = (0.0..=10.0).contains(&st.temperature)
            && st.top_p > 0.0
            && st.top_p <= 1.0
            && (1..=crate::write::MAX_DRAFTS).contains(&st.drafts);
        if ok {
            Ok(st)
        } else {
            Err(format!(
                "setting `{s}`: temperature 0 to 10, top-p in (0, 1], drafts 1 to {}",
                crate::write::MAX_DRAFTS
            ))
        }
    }
}

/// One line of the sweep: the means over the four forms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepRow {
    /// `None` for the real poems' line.
    pub setting: Option<Setting>,
    pub distinct1: f64,
    pub distinct2: f64,
    /// distinct-2 against the real poems', per form, then averaged (%).
    pub distinct2_vs_real_pct: f64,
    /// The form furthest below the real poems' distinct-2 (%): the target
    /// holds for every form, so this is the column the defaults are chosen by.
    pub worst_distinct2_vs_real_pct: f64,
    pub repeats: RepeatRow,
    pub copied_lines_pct: f64,
    /// Seconds the setting took to write (the machine is shared: a guide).
    pub seconds: f64,
}

/// Writes `samples` poems of each form at each setting (rhyme on, the
/// repetition rule on, as `shiren write --form F` does) and measures them
/// against `real` (held-out poems of each form, at least `samples` each).
pub fn sweep<M: CharModel + Sync>(
    writer: &Writer<M>,
    real: &[(Form, Vec<String>)],
    index: &CopyIndex,
    grid: &[Setting],
    samples: usize,
    seed: u64,
    say: &dyn Fn(&str),
) -> anyhow::Result<Vec<SweepRow>> {
    let n = real.len().max(1) as f64;
    let mean_row = |rows: &[(CardRow, f64)], setting, seconds| {
        let avg = |f: &dyn Fn(&CardRow) -> f64| rows.iter().map(|(r, _)| f(r)).sum::<f64>() / n;
        let vs_real = || {
            rows.iter()
                .map(|(r, real_d2)| 100.0 * (r.distinct2 - real_d2) / real_d2.max(1e-9))
        };
        let avg_opt = |f: &dyn Fn(&RepeatRow) -> Option<f64>| {
            let v: Vec<f64> = rows.iter().filter_map(|(r, _)| f(&r.repeats)).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        SweepRow {
            setting,
            distinct1: avg(&|r| r.distinct1),
            distinct2: avg(&|r| r.distinct2),
            distinct2_vs_real_pct: vs_real().sum::<f64>() / n,
            worst_distinct2_vs_real_pct: vs_real().fold(0.0, f64::min),
            repeats: RepeatRow {
                uses_three_pct: avg(&|r| r.repeats.uses_three_pct),
                first_end_reused_pct: avg(&|r| r.repeats.first_end_reused_pct),
                line_repeats_pct: avg(&|r| r.repeats.line_repeats_pct),
                score: avg_opt(&|r| r.score),
                draft_score: avg_opt(&|r| r.draft_score),
            },
            copied_lines_pct: avg(&|r| r.copied_lines_pct),
            seconds,
        }
    };
    let lex = Lexicon::default();
    let reals: Vec<(CardRow, f64)> = real
        .iter()
        .map(|(form, poems)| {
            let head = &poems[..samples.min(poems.len())];
            let r = score(*form, Kind::Real, head, &lex, index, head.len());
            let d2 = r.distinct2;
            (r, d2)
        })
        .collect();
    let mut out = vec![mean_row(&reals, None, 0.0)];
    for (k, st) in grid.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let mut rows = Vec::new();
        for ((form, _), (real_row, _)) in real.iter().zip(&reals) {
            let opts = write::Options {
                form: *form,
                rhyme: true,
                temperature: st.temperature,
                top_k: st.top_k,
                top_p: st.top_p,
                drafts: st.drafts,
                all_drafts: true,
                ..write::Options::default()
            };
            let poems = write_sliced(writer, &opts, samples, seed ^ k as u64)?;
            let texts: Vec<&str> = poems.iter().map(|p| p.text.as_str()).collect();
            let mut r = score(
                *form,
                Kind::Default,
                &texts,
                &lex,
                index,
                real_row.distinct_over,
            );
            r.repeats = r.repeats.with_scores(&poems);
            rows.push((r, real_row.distinct2));
        }
        let secs = t0.elapsed().as_secs_f64();
        out.push(mean_row(&rows, Some(*st), secs));
        say(&format!(
            "sweep {}/{}: {st:?} ({secs:.1} s)",
            k + 1,
            grid.len()
        ));
    }
    Ok(out)
}

/// The sweep as a markdown table, the real poems first.
pub fn sweep_table(rows: &[SweepRow]) -> String {
    let head: Vec<String> = [
        "temperature",
        "top-k",
        "top-p",
        "drafts",
        "distinct-1",
        "distinct-2",
        "d-2 vs real",
        "worst form",
        "3+ uses%",
        "line-1 end as foot%",
        "line repeats%",
        "log-prob/char kept",
        "log-prob/char drafts",
        "copied lines%",
        "seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let opt = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.3}"));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = match r.setting {
                Some(s) => vec![
                    format!("{}", s.temperature),
                    format!("{}", s.top_k),
                    format!("{}", s.top_p),
                    format!("{}", s.drafts),
                ],
                None => vec!["real poems".into(), "".into(), "".into(), "".into()],
            };
            v.extend([
                format!("{:.3}", r.distinct1),
                format!("{:.3}", r.distinct2),
                format!("{:+.1}%", r.distinct2_vs_real_pct),
                format!("{:+.1}%", r.worst_distinct2_vs_real_pct),
            ]);
            v.extend(super::card::repeat_cells(&r.repeats));
            v.extend([
                opt(r.repeats.draft_score),
                format!("{:.1}", r.copied_lines_pct),
                format!("{:.0}", r.seconds),
            ]);
            v
        })
        .collect();
    render(&head, &body, true)
}
