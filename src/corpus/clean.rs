//! Cleaning rules: what a raw record must look like to become a training poem.
//!
//! The rules, in the order they run (each dropped record is counted under the
//! first rule that drops it, so `corpus stats` can report them):
//!
//! 1. `bad-line`: a `poems.txt` line without a colon (only with `--skip-bad`;
//!    otherwise the read stops at it).
//! 2. `error-list`: the collection flags the record itself (its `error/` folder).
//! 3. whitespace is stripped (ASCII, full-width, tabs), and ASCII punctuation
//!    becomes full-width (`,` → `，`, `.` → `。`, `!?;:()` likewise). In text
//!    records a line break survives as '\n' only where the line did not end
//!    with punctuation (lyrics).
//! 4. `notes`: editorial notes are removed. `（…）` is always a note on the word
//!    before it (`遠去更宜長（辛本作「良」）。`), so it goes. `[…]`, `{…}` and `《…》`
//!    go only when they stand alone between clause boundaries (a heading); inside a
//!    verse line they carry the verse itself (`[襟]` is a restored character,
//!    `{山/淪}` a composed glyph, `《易》` a book title), so removing them would
//!    garble the line and the record is dropped instead. Unbalanced brackets drop
//!    the record too.
//! 5. `empty`: nothing is left.
//! 6. `lost-chars`: the record has `□` (a character lost in transmission) or U+FFFD.
//! 7. `too-short` / `too-long`: fewer than `min_len` or more than `max_len`
//!    characters, punctuation included.
//! 8. `duplicate`: exactly the same text as an earlier record (after conversion
//!    to the output script; run by [`super::load`], which sees every file).
//!
//! Script conversion is not done here (see [`super::convert`]).

use super::LoadOptions;

/// The cleaning rules, as counted in [`super::Stats::dropped`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    BadLine,
    ErrorList,
    Notes,
    Empty,
    LostChars,
    TooShort,
    TooLong,
    Duplicate,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::BadLine,
        Rule::ErrorList,
        Rule::Notes,
        Rule::Empty,
        Rule::LostChars,
        Rule::TooShort,
        Rule::TooLong,
        Rule::Duplicate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::BadLine => "bad-line",
            Rule::ErrorList => "error-list",
            Rule::Notes => "notes",
            Rule::Empty => "empty",
            Rule::LostChars => "lost-chars",
            Rule::TooShort => "too-short",
            Rule::TooLong => "too-long",
            Rule::Duplicate => "duplicate",
        }
    }

    /// One line on what the rule drops, for `corpus stats`.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::BadLine => "poems.txt lines without a colon (--skip-bad)",
            Rule::ErrorList => "flagged by the collection's own error list",
            Rule::Notes => "a bracket inside a verse line, or unbalanced",
            Rule::Empty => "nothing left after cleaning",
            Rule::LostChars => "has □ (lost characters)",
            Rule::TooShort => "shorter than --min-len",
            Rule::TooLong => "longer than --max-len",
            Rule::Duplicate => "same text as an earlier record",
        }
    }
}

/// Punctuation that ends a clause: the split points of [`super::split_lines`].
pub fn is_clause_end(c: char) -> bool {
    matches!(c, '，' | '。' | '！' | '？' | '；')
}

/// Punctuation that may end a line of a text record (no '\n' kept after it).
fn is_line_punct(c: char) -> bool {
    is_clause_end(c) || matches!(c, '：' | '、')
}

/// ASCII punctuation to its full-width form; other characters unchanged.
pub fn full_width(c: char) -> char {
    match c {
        ',' => '，',
        '.' => '。',
        '!' => '！',
        '?' => '？',
        ';' => '；',
        ':' => '：',
        '(' => '（',
        ')' => '）',
        '［' => '[',
        '］' => ']',
        '｛' => '{',
        '｝' => '}',
        c => c,
    }
}

/// Whitespace stripped and punctuation made full-width; line breaks kept as '\n'
/// only after a line that did not end with punctuation.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line: String = line
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(full_width)
            .collect();
        if line.is_empty() {
            continue;
        }
        if out.chars().last().is_some_and(|c| !is_line_punct(c)) {
            out.push('\n');
        }
        out.push_str(&line);
    }
    out
}

fn closer(c: char) -> Option<char> {
    match c {
        '（' => Some('）'),
        '[' => Some(']'),
        '{' => Some('}'),
        '《' => Some('》'),
        _ => None,
    }
}

fn is_closer(c: char) -> bool {
    matches!(c, '）' | ']' | '}' | '》')
}

fn is_boundary(c: Option<char>) -> bool {
    c.is_none_or(|c| c == '\n' || is_line_punct(c))
}

/// Removes editorial notes (see the module doc); `None` when removal would garble.
pub fn remove_notes(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_closer(c) {
            return None; // a closer with no opener
        }
        let Some(close) = closer(c) else {
            out.push(c);
            i += 1;
            continue;
        };
        // Find the matching closer, counting nested openers of the same kind.
        let mut depth = 0;
        let mut end = None;
        for (j, &d) in chars.iter().enumerate().skip(i) {
            if d == c {
                depth += 1;
            } else if d == close {
                depth -= 1;
                if depth == 0 {
                    end = Some(j);
                    break;
                }
            }
        }
        let end = end?;
        if c != '（' {
            let before = out.chars().last();
            let after = chars.get(end + 1).copied();
            if !(is_boundary(before) && is_boundary(after)) {
                return None;
            }
        }
        i = end + 1;
    }
    Some(tidy(&out))
}

/// After removals: no punctuation at the start of the text or of a line, and no
/// punctuation straight after a clause end (`一。（注）。` → `一。`).
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let prev = out.chars().last();
        if is_line_punct(c)
            && (prev.is_none() || prev == Some('\n') || prev.is_some_and(is_clause_end))
        {
            continue;
        }
        if c == '\n' && (prev.is_none() || prev == Some('\n')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Runs rules 3–7 on one record. `Err` is the rule that dropped it.
pub fn clean(text: &str, opts: &LoadOptions) -> Result<String, Rule> {
    let text = normalize(text);
    let Some(text) = remove_notes(&text) else {
        return Err(Rule::Notes);
    };
    if text.is_empty() {
        return Err(Rule::Empty);
    }
    if text.contains(['□', '\u{FFFD}']) {
        return Err(Rule::LostChars);
    }
    let n = text.chars().count();
    if n < opts.min_len {
        return Err(Rule::TooShort);
    }
    if n > opts.max_len {
        return Err(Rule::TooLong);
    }
    Ok(text)
}

/// A title: whitespace stripped, notes removed when that is clean.
pub fn clean_title(title: &str) -> String {
    let t = normalize(title).replace('\n', " ");
    remove_notes(&t).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions::default()
    }

    #[test]
    fn whitespace_goes_and_ascii_punctuation_becomes_full_width() {
        assert_eq!(
            clean(" 白日依山尽, 黄河入海流.\t欲穷千里目!更上一层楼? ", &opts()).unwrap(),
            "白日依山尽，黄河入海流。欲穷千里目！更上一层楼？"
        );
        assert_eq!(
            clean("一二三四五\u{3000}六七八九十", &opts()).unwrap(),
            "一二三四五六七八九十"
        );
    }

    #[test]
    fn lyrics_keep_line_breaks_only_where_no_punctuation_ends_the_line() {
        assert_eq!(
            clean("春眠不觉晓\n处处闻啼鸟，\n夜来风雨声\n花落知多少", &opts()).unwrap(),
            "春眠不觉晓\n处处闻啼鸟，夜来风雨声\n花落知多少"
        );
    }

    #[test]
    fn parenthesised_notes_are_removed() {
        assert_eq!(
            clean(
                "遠去更宜長（辛本作「良」）。白旗獨角(京本作「却」)引前程。",
                &opts()
            )
            .unwrap(),
            "遠去更宜長。白旗獨角引前程。"
        );
    }

    #[test]
    fn brackets_standing_alone_are_removed_inside_a_line_they_drop_the_record() {
        assert_eq!(
            clean("《序》，白日依山尽，黄河入海流。", &opts()).unwrap(),
            "白日依山尽，黄河入海流。"
        );
        assert_eq!(
            clean("[副歌]\n一二三四五\n六七八九十", &opts()).unwrap(),
            "一二三四五\n六七八九十"
        );
        for garbled in [
            "停杯試北望，還欲淚沾[襟]。",
            "蕃近風多{孛支}，河渾磧半淹。",
            "聖人造，作《易》變爻辭。",
            "白日依山尽（黄河入海流。",
            "白日依山尽）黄河入海流。",
        ] {
            assert_eq!(
                clean(garbled, &opts()).unwrap_err(),
                Rule::Notes,
                "{garbled}"
            );
        }
    }

    #[test]
    fn lost_characters_drop_the_record() {
        assert_eq!(
            clean("綬吐芽猶嫩，冰□已鏤津。", &opts()).unwrap_err(),
            Rule::LostChars
        );
    }

    #[test]
    fn length_limits_and_empty() {
        assert_eq!(clean("一二三。", &opts()).unwrap_err(), Rule::TooShort);
        assert_eq!(clean(" \t ", &opts()).unwrap_err(), Rule::Empty);
        assert_eq!(clean("（只有注）", &opts()).unwrap_err(), Rule::Empty);
        let long = "一二三四五，".repeat(40);
        assert_eq!(clean(&long, &opts()).unwrap_err(), Rule::TooLong);
        let mut o = opts();
        o.max_len = 1000;
        assert!(clean(&long, &o).is_ok());
        // 七律 (64 characters) fits the default comfortably.
        assert!(clean(&"一二三四五六七，".repeat(8), &opts()).is_ok());
    }
}
