//! What the web service asks of a poem writer ([`Poet`]), and the helper that
//! lays a written poem out as lines and characters for the page.
//!
//! The service holds one `Arc<dyn Poet>` for its whole life: the model and the
//! lexicon are loaded once, before the first request, and shared by every
//! request thread (writing only reads them). The trait keeps the HTTP layer
//! testable on its own, with a toy writer, and keeps this module free of
//! sampling code: that lives in `write.rs`.

use std::time::Instant;

use super::api::{ApiError, CharOut, LineOut, PoemOut, ToneMark, WriteSpec};

/// A shared, read-only poem writer.
pub trait Poet: Send + Sync + 'static {
    /// One line about the model, for `/healthz` (cell, size, corpus, training step).
    fn describe(&self) -> String;

    /// Writes `spec.count` poems. Runs on a blocking thread; should give up
    /// with [`ApiError::unavailable`] once `deadline` has passed (checking
    /// between poems is enough: one poem takes milliseconds). Bad input that
    /// only the writer can see (an unknown character) is an
    /// [`ApiError::invalid`].
    fn write(&self, spec: &WriteSpec, deadline: Instant) -> Result<Vec<PoemOut>, ApiError>;
}

/// Whether `c` closes a line in the writer's output.
pub fn is_line_end(c: char) -> bool {
    matches!(c, '，' | '。' | '！' | '？' | '；' | '、' | '\n')
}

/// Splits a poem's text into lines (each keeping its closing punctuation
/// apart) and marks each character with `tone_of` and each rhyme foot: the
/// last character of every line index for which `is_foot` holds.
pub fn lay_out(
    text: &str,
    tone_of: impl Fn(char) -> Option<ToneMark>,
    is_foot: impl Fn(usize) -> bool,
) -> PoemOut {
    let mut lines: Vec<LineOut> = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, punct: String, lines: &mut Vec<LineOut>| {
        if cur.is_empty() && punct.trim().is_empty() {
            return;
        }
        let i = lines.len();
        let n = cur.chars().count();
        let chars = cur
            .chars()
            .enumerate()
            .map(|(j, c)| CharOut {
                c,
                tone: tone_of(c),
                rhyme: j + 1 == n && is_foot(i),
            })
            .collect();
        lines.push(LineOut {
            text: std::mem::take(cur),
            punct: punct.trim().to_string(),
            chars,
        });
    };
    for c in text.chars() {
        if is_line_end(c) {
            flush(&mut cur, c.to_string(), &mut lines);
        } else if !c.is_whitespace() {
            cur.push(c);
        }
    }
    flush(&mut cur, String::new(), &mut lines);
    // Lines broken by a newline rather than punctuation (lyrics) keep their break.
    let mut text = String::new();
    for (i, l) in lines.iter().enumerate() {
        text.push_str(&l.text);
        text.push_str(&l.punct);
        if l.punct.is_empty() && i + 1 < lines.len() {
            text.push('\n');
        }
    }
    PoemOut {
        text,
        lines,
        rhyme_group: None,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lay_out_splits_lines_and_marks_feet() {
        let tone = |c: char| match c {
            '白' | '入' | '目' | '上' | '一' => Some(ToneMark::Ze),
            '层' => Some(ToneMark::Either),
            '？' => unreachable!("punctuation is never looked up"),
            _ => Some(ToneMark::Ping),
        };
        let p = lay_out(
            "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
            tone,
            |i| i % 2 == 1,
        );
        assert_eq!(p.lines.len(), 4);
        assert_eq!(p.lines[1].text, "黄河入海流");
        assert_eq!(p.lines[1].punct, "。");
        assert_eq!(p.text, "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。");
        let feet: Vec<char> = p
            .lines
            .iter()
            .flat_map(|l| &l.chars)
            .filter(|c| c.rhyme)
            .map(|c| c.c)
            .collect();
        assert_eq!(feet, ['流', '楼']);
        assert_eq!(p.lines[0].chars[0].tone, Some(ToneMark::Ze));
        assert_eq!(p.lines[3].chars[3].tone, Some(ToneMark::Either));
    }

    #[test]
    fn lay_out_keeps_an_unfinished_last_line_and_skips_blank_ones() {
        let p = lay_out("春风\n\n秋月", |_| None, |_| true);
        assert_eq!(p.lines.len(), 2);
        assert_eq!(p.lines[1].text, "秋月");
        assert_eq!(p.lines[1].punct, "");
        assert!(p.lines[1].chars[1].rhyme);
        assert_eq!(p.text, "春风\n秋月");
    }
}
