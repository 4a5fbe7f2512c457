//! The report card as text and markdown: the perplexity, sample and target
//! tables, and what the title does.

use std::fmt::Write as _;

use super::*;

/// A repetition row's cells in the card and the sweep: the three shares and the score.
pub(super) fn repeat_cells(r: &RepeatRow) -> [String; 4] {
    [
        format!("{:.1}", r.uses_three_pct),
        format!("{:.1}", r.first_end_reused_pct),
        format!("{:.1}", r.line_repeats_pct),
        r.score.map_or("-".into(), |x| format!("{x:.3}")),
    ]
}

impl Card {
    /// The perplexity table as plain text (`md` = markdown pipes).
    fn perplexity_table(&self, md: bool) -> String {
        let orders: Vec<usize> = self
            .perplexity
            .first()
            .map(|p| p.ngram.iter().map(|&(n, _)| n).collect())
            .unwrap_or_default();
        let mut head = vec![
            "part".to_string(),
            "poems".into(),
            "chars".into(),
            "model".into(),
        ];
        head.extend(orders.iter().map(|n| format!("KN {n}-gram")));
        head.push("model / KN 3".into());
        let mut rows = Vec::new();
        for p in &self.perplexity {
            let mut r = vec![
                p.part.clone(),
                p.poems.to_string(),
                format!("{:.0}", p.tokens),
                format!("{:.1}", p.model),
            ];
            r.extend(p.ngram.iter().map(|&(_, x)| format!("{x:.1}")));
            let kn3 = p.ngram.iter().find(|&&(n, _)| n == 3).map(|&(_, x)| x);
            r.push(kn3.map_or("-".into(), |k| format!("{:.2}×", p.model / k)));
            rows.push(r);
        }
        render(&head, &rows, md)
    }

    fn sample_table(&self, md: bool) -> String {
        let head: Vec<String> = [
            "form",
            "poems",
            "form%",
            "rhyme%",
            "tones%",
            "rules%",
            "distinct-1",
            "distinct-2",
            "copied lines%",
            "unseen 4-grams%",
            "3+ uses%",
            "line-1 end as foot%",
            "line repeats%",
            "log-prob/char",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    format!("{} {}", r.form.name_zh(), r.kind.label()),
                    r.poems.to_string(),
                    format!("{:.1}", r.form_pct),
                    format!("{:.1}", r.rhyme_pct),
                    format!("{:.1}", r.tones_pct),
                    format!("{:.1}", r.rules_pct),
                    format!("{:.3}", r.distinct1),
                    format!("{:.3}", r.distinct2),
                    format!("{:.1}", r.copied_lines_pct),
                    format!("{:.1}", r.unseen_4grams_pct),
                ]
                .into_iter()
                .chain(repeat_cells(&r.repeats))
                .collect()
            })
            .collect();
        render(&head, &rows, md)
    }

    fn target_table(&self, md: bool) -> String {
        let head = vec!["target".to_string(), "this model".into(), "met".into()];
        let rows: Vec<Vec<String>> = self
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.what.clone(),
                    t.value.clone(),
                    if t.met { "yes" } else { "no" }.into(),
                ]
            })
            .collect();
        render(&head, &rows, md)
    }

    /// The table printed on stdout.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model {} (step {}), {}",
            self.model, self.step, self.corpus
        );
        let _ = writeln!(
            s,
            "\nperplexity per character (punctuation and END included)\n"
        );
        s.push_str(&self.perplexity_table(false));
        let _ = writeln!(
            s,
            "\n{} poems per form and kind; distinct-n over the same count per form\n",
            self.samples
        );
        s.push_str(&self.sample_table(false));
        if let Some(t) = &self.titles {
            let _ = writeln!(s, "\nwhat the title does\n");
            for l in t.lines() {
                let _ = writeln!(s, "{l}");
            }
        }
        let _ = writeln!(s, "\ntargets of the shipped model\n");
        s.push_str(&self.target_table(false));
        s.push('\n');
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        s
    }

    /// The markdown report; `images` are (caption, relative path) pairs.
    pub fn to_markdown(&self, images: &[(String, String)]) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# shiren eval: {}\n", self.model);
        let _ = writeln!(
            s,
            "Step {}, trained on {}. Seed {}.\n",
            self.step, self.corpus, self.seed
        );
        let _ = writeln!(s, "## Perplexity per character\n");
        let _ = writeln!(s, "Punctuation and the END token count as characters, for the model and the Kneser–Ney baselines alike.\n");
        s.push_str(&self.perplexity_table(true));
        let _ = writeln!(s, "\n## Samples and real poems, per form\n");
        let _ = writeln!(s, "{} poems per form and kind.\n", self.samples);
        s.push_str(&self.sample_table(true));
        let _ = writeln!(s);
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        if let Some(t) = &self.titles {
            let _ = writeln!(s, "\n## What the title does\n");
            for l in t.lines() {
                let _ = writeln!(s, "- {l}");
            }
        }
        let _ = writeln!(s, "\n## Targets of the shipped model\n");
        s.push_str(&self.target_table(true));
        for (cap, path) in images {
            let _ = writeln!(s, "\n![{cap}]({path})");
        }
        s
    }
}

/// A table with columns padded to the widest cell (counting a CJK
/// character as two columns), or a markdown pipe table.
pub(super) fn render(head: &[String], rows: &[Vec<String>], md: bool) -> String {
    let width = |s: &str| {
        s.chars()
            .map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 })
            .sum::<usize>()
    };
    let mut out = String::new();
    if md {
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}|", vec!["---"; head.len()].join("|"));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        return out;
    }
    let mut w: Vec<usize> = head.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(width(c));
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(w[i] - width(c));
            // Text columns left-aligned, numbers right-aligned.
            if i == 0 {
                let _ = write!(l, "{c}{pad}  ");
            } else {
                let _ = write!(l, "{pad}{c}  ");
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(head));
    for r in rows {
        let _ = writeln!(out, "{}", line(r));
    }
    out
}
