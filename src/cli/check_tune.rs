//! `shiren check --tune 浣溪沙`: a ci against its tune's pattern, as derived
//! from the Song ci (see `crate::prosody::tunes`): each place whose pattern
//! fixes a tone, and each rhyme foot under 词林正韵. The form of the tune is
//! `--variant N`, else the one whose line lengths the ci has; `--tune` with
//! no name takes the most common tune with a form of those lengths. The checking
//! itself is `tunes::check`; this file picks the form and prints.
//!
//! Exit codes as `shiren check`: 0 every rule kept, 1 a tone or rhyme
//! missed, 2 bad input (an unknown tune, a ci of no form of it).

use std::io::Write as _;

use serde::Serialize;

use super::check::Args;
use super::{Exit, Global};
use crate::corpus::convert::to_simplified;
use crate::prosody::songci::Songci;
use crate::prosody::tunes::{self, CiReport, Tune, TuneForm};
use crate::prosody::Tone;

#[derive(Serialize)]
struct JsonCi<'a> {
    tune: &'a str,
    variant: usize,
    shape: String,
    ok: bool,
    #[serde(flatten)]
    report: &'a CiReport,
}

/// The form of `tune` to check `text` against: variant `asked` (from 1), else
/// the first (most common) whose line lengths the text has.
fn pick<'t>(
    tune: &'t Tune,
    asked: Option<usize>,
    text: &str,
) -> Result<(usize, &'t TuneForm), String> {
    if let Some(v) = asked {
        return v
            .checked_sub(1)
            .and_then(|k| tune.forms.get(k))
            .map(|f| (v, f))
            .ok_or_else(|| {
                format!(
                    "--variant {v}: {} has {} form(s) (`shiren tunes {}` lists them)",
                    tune.name,
                    tune.forms.len(),
                    tune.name
                )
            });
    }
    let want: Vec<usize> = crate::prosody::rules::split_lines(text)
        .iter()
        .map(|l| l.len())
        .collect();
    tune.forms
        .iter()
        .enumerate()
        .find(|(_, f)| f.lines.iter().map(|l| l.len).eq(want.iter().copied()))
        .map(|(k, f)| (k + 1, f))
        .ok_or_else(|| {
            let shapes: Vec<String> = tune.forms.iter().take(4).map(|f| f.shape()).collect();
            format!(
                "the ci's lines ({}) fit no form of {} (its forms: {}); check the line breaks, or pass --variant N",
                want.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" "),
                tune.name,
                shapes.join("; ")
            )
        })
}

/// The text report: the pattern and the ci line by line, then each miss.
fn render(name: &str, variant: usize, form: &TuneForm, text: &str, r: &CiReport) -> String {
    let mut s = format!("{name} (form {variant}, {})", form.shape());
    let classes: Vec<String> = r.classes.iter().flatten().cloned().collect();
    if !classes.is_empty() {
        s += &format!(" · rhyme {}", classes.join(", "));
    }
    s.push('\n');
    let lines = crate::prosody::rules::split_lines(text);
    for (l, p) in lines.iter().zip(&form.lines) {
        let text: String = l.iter().collect();
        let pattern: String = p
            .tones
            .iter()
            .map(|t| match t {
                Tone::Ping => '○',
                Tone::Ze => '●',
                Tone::Both => '◐',
            })
            .collect();
        let pad = "\u{3000}".repeat(12usize.saturating_sub(l.len()));
        let foot = if p.rhyme.is_some() { "  韵" } else { "" };
        s += &format!("  {text}{pad}  {pattern}{foot}\n");
    }
    let misses = [
        (&r.tone_misses, "the tune wants"),
        (&r.rhyme_misses, "rhyme foot outside"),
    ];
    for (list, what) in misses {
        for m in list {
            let (line, pos) = (m.line + 1, m.pos + 1);
            s += &format!(
                "  ✗ line {line}, char {pos} {}: {what} {}
",
                m.ch, m.want
            );
        }
    }
    s += &format!(
        "tones kept at {} of {} fixed places; rhyme at {} of {} feet\n",
        r.tones_kept, r.tones_checked, r.rhymes_kept, r.rhymes_checked
    );
    s
}

pub fn run(args: &Args, name: &str, text: &str, g: &Global) -> anyhow::Result<()> {
    let text = to_simplified(text.trim());
    if text.is_empty() {
        return Err(Exit::BadInput(
            "no ci given (pass it as an argument, with --file, or on standard input)".into(),
        )
        .into());
    }
    let dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    let songci = Songci::load(&dir)?;
    // No name: the most common tune with a form of the ci's line lengths.
    let tune = match name.trim() {
        "" => songci.cipu.guess(&text).map(|(t, _)| t),
        name => songci.cipu.tune(name),
    }
    .map_err(|e| Exit::BadInput(e.to_string()))?;
    let (variant, form) = pick(tune, args.variant, &text).map_err(Exit::BadInput)?;
    let report = tunes::check(&songci.lex, &songci.cilin, &tune.name, form, &text)
        .map_err(|e| Exit::BadInput(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let j = JsonCi {
            tune: &tune.name,
            variant,
            shape: form.shape(),
            ok: report.ok(),
            report: &report,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        out.write_all(render(&tune.name, variant, form, &text, &report).as_bytes())?;
    }
    out.flush()?;
    if !report.ok() {
        return Err(Exit::Quiet(1).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prosody::tunes::PatternLine;

    fn line(len: usize, rhyme: bool) -> PatternLine {
        PatternLine {
            len,
            end: if rhyme { '。' } else { '，' },
            tones: vec![Tone::Both; len],
            rhyme: rhyme.then_some(0),
        }
    }

    fn tune() -> Tune {
        let form = |lens: &[usize]| TuneForm {
            count: 1,
            lines: lens.iter().map(|&n| line(n, true)).collect(),
            sets: vec![Tone::Ping],
            example: String::new(),
        };
        Tune {
            name: "测试".into(),
            count: 2,
            forms: vec![form(&[7, 7, 7]), form(&[3, 3, 7])],
        }
    }

    #[test]
    fn the_form_is_the_one_with_the_cis_line_lengths_or_the_one_asked_for() {
        let t = tune();
        assert_eq!(
            pick(&t, None, "一二三，四五六，一二三四五六七。")
                .unwrap()
                .0,
            2
        );
        assert_eq!(
            pick(&t, Some(1), "一二三，四五六，一二三四五六七。")
                .unwrap()
                .0,
            1
        );
        let e = pick(&t, Some(3), "一二三。").unwrap_err();
        assert!(e.contains("2 form(s)"), "{e}");
        let e = pick(&t, None, "一二三四五。").unwrap_err();
        assert!(
            e.contains("fit no form of 测试") && e.contains("(5)"),
            "{e}"
        );
    }
}
