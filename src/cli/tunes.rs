//! `shiren tunes`: the ci tunes and their patterns (词谱) as derived from the
//! Song ci collection, and how well those patterns hold on held-out ci.
//!
//! Glue only: the derivation and the check are `crate::prosody::tunes`, the
//! reading is `crate::prosody::songci`.

use std::io::Write as _;

use super::Global;
use crate::prosody::songci::Songci;
use crate::prosody::tunes::{self, Cipu, Tune, MIN_CI, RHYME_SHARE, TONE_MAJORITY};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A tune to show (simplified or traditional, or one of its aliases, e.g. 浣溪沙); none: list the tunes
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Measure the patterns on held-out ci: derive from all but every 10th ci of each tune, check those of the 20 most common tunes
    #[arg(long, conflicts_with = "name")]
    pub held_out: bool,
    /// Print the derived patterns as JSON (all tunes, or the one named)
    #[arg(long)]
    pub json: bool,
    /// List only the N most common tunes (0: all)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub top: usize,
}

/// Held-out ci: every this-many-th ci of each tune.
pub const HELD_OUT_EVERY: usize = 10;
/// Held-out ci are checked for this many of the most common tunes.
pub const HELD_OUT_TUNES: usize = 20;

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    let songci = Songci::load(&data_dir)?;
    let mut out = std::io::stdout().lock();
    if args.held_out {
        let pairs: Vec<(&str, &str)> = songci
            .ci
            .iter()
            .map(|(t, x)| (t.as_str(), x.as_str()))
            .collect();
        let (_, h) = tunes::held_out(&songci.lex, &pairs, HELD_OUT_EVERY, HELD_OUT_TUNES);
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&h)?)?;
        } else {
            out.write_all(render_held_out(&h).as_bytes())?;
        }
        return Ok(());
    }
    let cipu = &songci.cipu;
    match &args.name {
        Some(name) => {
            let t = cipu.tune(name)?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(t)?)?;
            } else {
                out.write_all(render_tune(t).as_bytes())?;
            }
        }
        None => {
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(cipu)?)?;
            } else {
                out.write_all(render_list(cipu, songci.ci.len(), args.top).as_bytes())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Pads `s` to `width` terminal columns (a Han character takes two).
fn pad(s: &str, width: usize) -> String {
    let w: usize = s
        .chars()
        .map(|c| {
            if crate::prosody::is_han(c) || c == '・' {
                2
            } else {
                1
            }
        })
        .sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// One line per tune: rank, name, ci, forms, the main form's line lengths and rhyme.
pub fn render_list(cipu: &Cipu, total_ci: usize, top: usize) -> String {
    let mut s = format!(
        "{} tunes with at least {MIN_CI} ci (of {total_ci} Song ci); `shiren tunes NAME` shows one\n",
        cipu.len()
    );
    s.push_str(&format!(
        "{:>4}  {}{:>5}  {:>5}  {}  main form (line lengths)\n",
        "#",
        pad("tune", 28),
        "ci",
        "forms",
        pad("rhyme", 10)
    ));
    let n = if top == 0 { cipu.len() } else { top };
    for (k, t) in cipu.tunes.iter().take(n).enumerate() {
        let f = &t.forms[0];
        s.push_str(&format!(
            "{:>4}  {}{:>5}  {:>5}  {}  {}\n",
            k + 1,
            pad(&t.name, 28),
            t.count,
            t.forms.len(),
            pad(f.rhyme_kind(), 10),
            f.shape()
        ));
    }
    s
}

/// A tune's forms: each with its line lengths, count, rhyme, pattern and first ci.
pub fn render_tune(t: &Tune) -> String {
    let mut s = format!(
        "{}: {} ci in the Song ci collection, {} form(s) (write one with --variant N)\n",
        t.name,
        t.count,
        t.forms.len()
    );
    s.push_str(&format!(
        "○ 平  ● 仄  ◐ either (neither tone kept by {:.0}% of the poets)  韵 rhyme, A B … when the rhyme changes\n",
        TONE_MAJORITY * 100.0
    ));
    for (k, f) in t.forms.iter().enumerate() {
        s.push_str(&format!(
            "\n体 {}{}: lines of {}, {} ci ({:.0}%), {}\n",
            k + 1,
            if k == 0 { " (正体)" } else { "" },
            f.shape(),
            f.count,
            100.0 * f.count as f64 / t.count.max(1) as f64,
            f.rhyme_kind()
        ));
        s.push_str(&f.render());
        s.push_str(&format!("e.g. {}\n", f.example));
    }
    s
}

pub fn render_held_out(h: &tunes::HeldOut) -> String {
    format!(
        "held-out ci of the {} most common tunes (every {HELD_OUT_EVERY}th ci, not used to derive the patterns): {} ci, {} with the line lengths of one of their tune's forms\n\
         positions whose tone the pattern accepts: {:.1}% (of {} with a character of definite tone; {} of them free)\n\
         tones kept where the pattern fixes one: {:.1}% ({} of {})\n\
         rhyme positions in their set's 词林正韵 class: {:.1}% ({} of {})\n\
         (a position is fixed at {:.0}% agreement; line ends rhyme when their feet share a class in {:.0}% of the ci)\n",
        h.tunes,
        h.ci,
        h.fitted,
        100.0 * h.position_rate(),
        h.tones_checked + h.tones_free,
        h.tones_free,
        100.0 * h.tone_rate(),
        h.tones_kept,
        h.tones_checked,
        100.0 * h.rhyme_rate(),
        h.rhymes_kept,
        h.rhymes_checked,
        TONE_MAJORITY * 100.0,
        RHYME_SHARE * 100.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("tunes", args)
    }

    #[test]
    fn flags_parse_and_conflict() {
        let a = parse(&["浣溪沙"]).unwrap();
        assert_eq!(a.name.as_deref(), Some("浣溪沙"));
        assert!(parse(&["--held-out"]).unwrap().held_out);
        assert!(parse(&["浣溪沙", "--held-out"]).is_err());
        assert_eq!(parse(&["--top", "20"]).unwrap().top, 20);
        assert!(parse(&["--top", "-1"]).is_err());
    }

    #[test]
    fn names_are_padded_by_terminal_columns() {
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("浣溪沙", 8), "浣溪沙  ");
        assert_eq!(pad("浣溪沙", 2), "浣溪沙");
    }
}
