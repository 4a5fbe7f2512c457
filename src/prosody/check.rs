//! Checking a person's poem against the 近体诗 rules, as the 格律检测 pages
//! of poetry sites do: each character's tone, the rhyme group of each foot,
//! and every rule broken, by name and place.
//!
//! The rules themselves are not written again here: the five tone rules and
//! the rhyme verdict come from [`super::rules::check_tones`] and
//! [`super::rules::check_rhyme`] (the ones `eval` scores with and `write` plans
//! by), so a poem passes `shiren check`'s tone rules exactly when it counts
//! toward eval's `tones%`. This module adds what a person needs beyond a
//! verdict: the form (detected or given), line length and line count, which
//! foot is 出韵 and whether it strays only into a 邻韵, 重韵, 孤平, the
//! reading a both-ways character was taken in, and a test for a substitute
//! character (`--suggest` asks the model for candidates and keeps those that
//! [`fits_at`] accepts).
//!
//! Pure functions over text and a [`Lexicon`]: no I/O, no model. A poem is
//! checked against a [`Target`]; today that is one of the four regulated
//! forms, and a ci tune's tone pattern is meant to become another variant.

use serde::Serialize;

use super::rules::{check_rhyme, check_tones, key_positions, line_end, Rule};
use super::{is_han, Lexicon, Tone};
use crate::corpus::convert::{to_simplified, to_traditional, Script};
pub use crate::corpus::forms::Form;

/// What a poem is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A regulated form (五绝, 七绝, 五律, 七律): its shape, the tone rules and rhyme.
    Form(Form),
}

impl Target {
    /// (lines, characters per line).
    pub fn shape(self) -> (usize, usize) {
        match self {
            Target::Form(f) => f.shape().unwrap_or((0, 0)),
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Target::Form(f) => f.name_zh(),
        }
    }
}

/// A rule a poem can break, with the name the hobby uses for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Broken {
    /// 二四六分明: positions 2, 4 (, 6) of a line do not alternate.
    Alternation,
    /// 句末平仄: a rhyming line ends oblique, or line 3, 5, 7 ends level.
    LineEnd,
    /// 三平尾: a line ends in three level characters.
    Sanpingwei,
    /// 失粘: the 2nd character of line 3, 5, 7 differs in tone from the line before's.
    Nian,
    /// 失对: the two lines of a couplet agree at a key position.
    Dui,
    /// 孤平: a line ending level has only one other level character in its
    /// last five (平平仄仄平 written 仄平仄仄平).
    Guping,
    /// 出韵: a foot outside the poem's rhyme group.
    OutOfGroup,
    /// 重韵: the same character at two feet.
    RepeatedFoot,
    /// 句长: a line with the wrong number of characters.
    LineLength,
    /// 句数: the wrong number of lines for the form asked for.
    LineCount,
}

impl Broken {
    /// The five tone rules of eval's `tones%` (the strict reading).
    pub const TONE_RULES: [Broken; 5] = [
        Broken::Alternation,
        Broken::LineEnd,
        Broken::Sanpingwei,
        Broken::Nian,
        Broken::Dui,
    ];

    pub fn name_zh(self) -> &'static str {
        match self {
            Broken::Alternation => "二四六分明",
            Broken::LineEnd => "句末平仄",
            Broken::Sanpingwei => "三平尾",
            Broken::Nian => "失粘",
            Broken::Dui => "失对",
            Broken::Guping => "孤平",
            Broken::OutOfGroup => "出韵",
            Broken::RepeatedFoot => "重韵",
            Broken::LineLength => "句长",
            Broken::LineCount => "句数",
        }
    }

    fn of_rule(r: Rule) -> Broken {
        match r {
            Rule::Alternation => Broken::Alternation,
            Rule::LineEnd => Broken::LineEnd,
            Rule::Sanpingwei => Broken::Sanpingwei,
            Rule::Nian => Broken::Nian,
            Rule::Dui => Broken::Dui,
            Rule::Rhyme => Broken::OutOfGroup,
        }
    }
}

/// One rule broken, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub rule: Broken,
    /// 二四六分明, 失粘, …
    pub name: &'static str,
    /// Line, from 1.
    pub line: usize,
    /// Character within the line, from 1; 0 when the fault is the whole line (句长, 句数).
    pub pos: usize,
    /// The character at `pos`, if any.
    pub ch: Option<char>,
    /// One line saying what is wrong, in the poem's own characters.
    pub why: String,
}

/// How a character read both ways was taken, and the rule that needed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reading {
    pub line: usize,
    pub pos: usize,
    pub ch: char,
    pub tone: Tone,
    /// The rule that holds with this reading.
    pub rule: &'static str,
}

/// One character as checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CharCheck {
    pub ch: char,
    /// `None` when the lexicon does not know the character.
    pub tone: Option<Tone>,
    /// ○ level, ● oblique, ◐ both, ? unknown.
    pub mark: char,
    /// The level rhyme groups of a foot (the last character of a rhyming line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foot: Option<Vec<String>>,
}

/// One line as checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineCheck {
    pub text: String,
    /// The punctuation that closed it in the input (may be empty).
    pub end: String,
    pub chars: Vec<CharCheck>,
}

/// Everything found about one poem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub target: Target,
    /// 五绝, 七绝, …
    pub form: &'static str,
    /// Whether the form was detected (rather than given).
    pub detected: bool,
    pub lines: Vec<LineCheck>,
    /// The poem's rhyme group: the one its feet share, or the one most of them are in.
    pub rhyme_group: Option<String>,
    pub faults: Vec<Fault>,
    pub readings: Vec<Reading>,
    /// What was not checked, or allowed with a remark (首句 in a 邻韵).
    pub notes: Vec<String>,
    /// The five tone rules held (the strict reading, as eval's `tones%`).
    pub tones_ok: bool,
    /// Every rule held.
    pub ok: bool,
}

/// Why a poem cannot be checked at all (`shiren check` exits 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("no poem to check (give the text as an argument, a file, or on standard input)")]
    Empty,
    #[error("no recognisable form: {n} lines of {lens} characters (the rules know 4 or 8 lines of 5 or 7: 五绝 七绝 五律 七律; pass --form to choose one)")]
    NoForm { n: usize, lens: String },
    #[error("line {line}: `{ch}` (U+{code:04X}) is not a Chinese character (write the poem in Han characters, lines ended by ，。)", code = *ch as u32)]
    NotHan { line: usize, ch: char },
    #[error("the poem mixes traditional ({trad}) and simplified ({simp}) characters (write it in one script)")]
    MixedScripts { trad: char, simp: char },
    #[error("form `{0}` has no rules to check (use wujue, qijue, wulv or qilv)")]
    NotRegulated(&'static str),
}

/// Characters that split a poem into lines; the same set as [`super::rules::split_lines`].
const LINE_ENDS: &[char] = &[
    '，', '。', '！', '？', '；', '、', ',', '.', '!', '?', ';', '\n',
];

/// Quotation marks and brackets a pasted poem may carry; dropped before checking.
const QUOTES: &[char] = &[
    '「', '」', '『', '』', '“', '”', '‘', '’', '《', '》', '〈', '〉', '"', '\'',
];

/// The lines of a poem with the punctuation that closed each; the lines are
/// those of [`super::rules::split_lines`].
pub fn lines_with_ends(text: &str) -> Vec<(Vec<char>, String)> {
    let mut out: Vec<(Vec<char>, String)> = Vec::new();
    let mut cur = Vec::new();
    for c in text.chars() {
        if LINE_ENDS.contains(&c) {
            if cur.is_empty() {
                if let Some(last) = out.last_mut() {
                    if c != '\n' {
                        last.1.push(c);
                    }
                }
            } else {
                let end = if c == '\n' {
                    String::new()
                } else {
                    c.to_string()
                };
                out.push((std::mem::take(&mut cur), end));
            }
        } else if !c.is_whitespace() && !QUOTES.contains(&c) {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push((cur, String::new()));
    }
    out
}

/// Splits input holding several poems: blank lines separate them.
pub fn split_poems(input: &str) -> Vec<String> {
    let mut poems = Vec::new();
    let mut cur = String::new();
    for line in input.lines() {
        if line.trim().is_empty() {
            if !cur.trim().is_empty() {
                poems.push(std::mem::take(&mut cur));
            }
            cur.clear();
        } else {
            cur.push_str(line.trim());
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        poems.push(cur);
    }
    poems
}

/// The script a poem is written in. A character only the traditional
/// lexicon knows, whose simplified form is another character that turns back
/// into it, is traditional (風 ↔ 风); the other way round, simplified. Some
/// characters are at home in both (后, 里, and 乾 of 乾坤, which simplified
/// text keeps), so a poem counts as mixed only when each script has at least
/// two characters of its own; otherwise the larger side decides.
pub fn script_of(text: &str, simp: &Lexicon, trad: &Lexicon) -> Result<Script, CheckError> {
    let (mut t, mut s): (Vec<char>, Vec<char>) = (Vec::new(), Vec::new());
    for c in text.chars().filter(|&c| is_han(c)) {
        let own = |known: &Lexicon, there: fn(&str) -> String, back: fn(&str) -> String| {
            known.tone(c).is_none()
                && convert_one(c, there).is_some_and(|o| o != c && convert_one(o, back) == Some(c))
        };
        if own(simp, to_simplified, to_traditional) && !t.contains(&c) {
            t.push(c);
        }
        if own(trad, to_traditional, to_simplified) && !s.contains(&c) {
            s.push(c);
        }
    }
    if t.len() >= 2 && s.len() >= 2 {
        return Err(CheckError::MixedScripts {
            trad: t[0],
            simp: s[0],
        });
    }
    Ok(if t.len() > s.len() {
        Script::Traditional
    } else {
        Script::Simplified
    })
}

/// `c` converted by `f`, when that gives one character.
fn convert_one(c: char, f: fn(&str) -> String) -> Option<char> {
    let s = f(c.encode_utf8(&mut [0u8; 4]));
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(o), None) => Some(o),
        _ => None,
    }
}

/// A lexicon that also knows the poem's characters of the other script, by
/// the readings of their counterparts (乾 by 干's in a simplified lexicon),
/// so a stray character of the other script is checked rather than unknown;
/// `None` when the lexicon knows every character already.
pub fn with_other_script(lex: &Lexicon, text: &str) -> Option<Lexicon> {
    let mut extra: Vec<(char, char)> = Vec::new();
    for c in text.chars().filter(|&c| is_han(c) && lex.tone(c).is_none()) {
        let twin = [to_simplified, to_traditional]
            .into_iter()
            .filter_map(|f| convert_one(c, f))
            .find(|&o| lex.tone(o).is_some());
        if let Some(o) = twin.filter(|_| !extra.iter().any(|e| e.0 == c)) {
            extra.push((c, o));
        }
    }
    if extra.is_empty() {
        return None;
    }
    let mut out = lex.clone();
    for (c, o) in extra {
        let groups = lex.rhyme_groups(o).to_vec();
        if groups.is_empty() {
            out.add_char(c, lex.tone(o).unwrap_or(Tone::Both), None);
        }
        for g in groups {
            // Each group brings its own tone: a level and an oblique group make Both again.
            out.add_char(c, lex.group_tone(g).unwrap_or(Tone::Both), Some(g));
        }
    }
    Some(out)
}

/// The form of `lines`: the one given, or the one whose shape they have
/// (line count 4 or 8, the most common line length 5 or 7).
pub fn detect(lines: &[Vec<char>], given: Option<Form>) -> Result<Target, CheckError> {
    if lines.is_empty() {
        return Err(CheckError::Empty);
    }
    if let Some(f) = given {
        return match f.shape() {
            Some(_) => Ok(Target::Form(f)),
            None => Err(CheckError::NotRegulated(f.name())),
        };
    }
    let n = lines.len();
    let mut counts = [0usize; 2];
    for l in lines {
        match l.len() {
            5 => counts[0] += 1,
            7 => counts[1] += 1,
            _ => {}
        }
    }
    let len = if counts[1] > counts[0] { 7 } else { 5 };
    let form = Form::ALL.into_iter().find(|f| f.shape() == Some((n, len)));
    match form {
        Some(f) if counts[0] + counts[1] > 0 && counts[(len == 7) as usize] * 2 > n => {
            Ok(Target::Form(f))
        }
        _ => {
            let lens: Vec<String> = lines.iter().map(|l| l.len().to_string()).collect();
            Err(CheckError::NoForm {
                n,
                lens: lens.join(", "),
            })
        }
    }
}

/// The mark a tone is printed with.
pub fn mark(t: Option<Tone>) -> char {
    match t {
        Some(Tone::Ping) => '○',
        Some(Tone::Ze) => '●',
        Some(Tone::Both) => '◐',
        None => '?',
    }
}

/// Checks one poem's text in the lexicon's script (see [`script_of`]).
pub fn check(lex: &Lexicon, text: &str, form: Option<Form>) -> Result<Checked, CheckError> {
    let split = lines_with_ends(text);
    let lines: Vec<Vec<char>> = split.iter().map(|(l, _)| l.clone()).collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(&ch) = l.iter().find(|&&c| !is_han(c)) {
            return Err(CheckError::NotHan { line: i + 1, ch });
        }
    }
    let target = detect(&lines, form)?;
    let mut c = check_lines(lex, &lines, target);
    c.detected = form.is_none();
    for (l, (_, end)) in c.lines.iter_mut().zip(&split) {
        l.end = end.clone();
    }
    Ok(c)
}

/// Checks lines of Han characters against `target`.
pub fn check_lines(lex: &Lexicon, lines: &[Vec<char>], target: Target) -> Checked {
    let (n, len) = target.shape();
    let tone = |c: char| lex.tone(c);
    let at = |i: usize, j: usize| lines.get(i).and_then(|l| l.get(j)).copied();
    let mut faults = Vec::new();
    let mut notes = Vec::new();
    let fault = |rule: Broken, line: usize, pos: usize, why: String| Fault {
        rule,
        name: rule.name_zh(),
        line: line + 1,
        pos: if pos == usize::MAX { 0 } else { pos + 1 },
        ch: if pos == usize::MAX {
            None
        } else {
            at(line, pos)
        },
        why,
    };
    const WHOLE: usize = usize::MAX;

    // --- shape ---
    if lines.len() != n {
        faults.push(fault(
            Broken::LineCount,
            lines.len().min(n).saturating_sub(1),
            WHOLE,
            format!(
                "{} has {n} lines, this poem {}",
                target.name_zh(),
                lines.len()
            ),
        ));
    }
    let mut shape_ok = lines.len() == n;
    for (i, l) in lines.iter().enumerate() {
        if l.len() != len {
            shape_ok = false;
            faults.push(fault(
                Broken::LineLength,
                i,
                WHOLE,
                format!("{} characters, {} wants {len}", l.len(), target.name_zh()),
            ));
        }
    }

    // --- the five tone rules (rules::check_tones), where every line has the form's length ---
    let name = |c: char| -> String {
        match tone(c) {
            Some(t) => format!("{c}({})", t.mark()),
            None => format!("{c}(?)"),
        }
    };
    let mut tones_ok = shape_ok;
    if lines.iter().all(|l| l.len() == len) && !lines.is_empty() {
        if let Ok(report) = check_tones(lex, lines) {
            tones_ok &= report.tones_ok();
            for ch in report.failures() {
                let (i, j) = (ch.line, ch.pos.unwrap_or(0));
                let c = lines[i][j];
                let why = match ch.rule {
                    Rule::Alternation => {
                        let k = key_positions(len);
                        let prev = k[k.iter().position(|&p| p == j).unwrap_or(1) - 1];
                        format!(
                            "{} and {} should differ in tone",
                            name(lines[i][prev]),
                            name(c)
                        )
                    }
                    Rule::LineEnd => match line_end(i) {
                        Some(Tone::Ping) => {
                            format!("{} ends a rhyming line: it must be level", name(c))
                        }
                        _ => format!(
                            "{} ends a line that does not rhyme: it must be oblique",
                            name(c)
                        ),
                    },
                    Rule::Sanpingwei => {
                        let tail: String = lines[i][len - 3..].iter().collect();
                        format!("{tail} are all level")
                    }
                    Rule::Nian => format!(
                        "{} should match line {}'s {}",
                        name(c),
                        i,
                        name(lines[i - 1][j])
                    ),
                    Rule::Dui => format!(
                        "{} should oppose line {}'s {}",
                        name(c),
                        i,
                        name(lines[i - 1][j])
                    ),
                    Rule::Rhyme => String::new(),
                };
                faults.push(fault(Broken::of_rule(ch.rule), i, j, why));
            }
        }
        // 孤平, in every line that ends level.
        for (i, l) in lines.iter().enumerate() {
            if let Some(j) = guping(lex, l) {
                faults.push(fault(
                    Broken::Guping,
                    i,
                    j,
                    format!(
                        "{}: besides the foot only one level character in {}",
                        name(l[j]),
                        l[len - 5..].iter().collect::<String>()
                    ),
                ));
            }
        }
    } else if !lines.is_empty() {
        notes.push("tone rules not checked: the lines are not all of the form's length".into());
    }

    // --- rhyme: the verdict of rules::check_rhyme, then which foot strays and where to ---
    let feet: Vec<usize> = (0..lines.len())
        .filter(|&i| i % 2 == 1 && !lines[i].is_empty())
        .collect();
    let verdict = check_rhyme(lex, lines);
    let group = verdict.rhyme_group.or_else(|| {
        // The level group most feet are in; ties go to the earlier foot's.
        let mut best: Option<(usize, u16)> = None;
        for &i in &feet {
            let c = *lines[i].last().unwrap_or(&' ');
            for g in lex.level_groups(c) {
                let n = feet
                    .iter()
                    .filter(|&&k| {
                        lines[k]
                            .last()
                            .is_some_and(|&f| lex.level_groups(f).any(|h| h == g))
                    })
                    .count();
                if best.is_none_or(|(m, _)| n > m) {
                    best = Some((n, g));
                }
            }
        }
        best.map(|(_, g)| g)
    });
    let gname = |g: u16| lex.group_name(g).to_string();
    let mut rhyming: Vec<usize> = Vec::new();
    if !verdict.rhyme_ok() {
        for &i in &feet {
            let c = *lines[i].last().unwrap_or(&' ');
            let groups: Vec<u16> = lex.level_groups(c).collect();
            if group.is_some_and(|g| groups.contains(&g)) {
                rhyming.push(i);
                continue;
            }
            let why = match (group, groups.is_empty()) {
                (_, true) => match tone(c) {
                    Some(Tone::Ze) => format!("{c} is oblique: a foot must be a level rhyme"),
                    _ => format!("{c} is in no level rhyme group"),
                },
                (Some(g), false) => {
                    let near = groups.iter().find(|&&h| neighbours(lex, g, h));
                    let names: Vec<String> = groups.iter().map(|&h| gname(h)).collect();
                    match near {
                        Some(&h) => format!(
                            "{c} is in {}, a 邻韵 of {} (neighbouring, not the same group)",
                            gname(h),
                            gname(g)
                        ),
                        None => format!("{c} is in {}, not {}", names.join(" / "), gname(g)),
                    }
                }
                (None, false) => format!("{c} shares no group with the other feet"),
            };
            faults.push(fault(Broken::OutOfGroup, i, lines[i].len() - 1, why));
        }
    } else {
        rhyming.extend(&feet);
    }
    // Line 1 may rhyme: when it ends level, in the group (or a 邻韵, allowed there).
    if let (Some(g), Some(first)) = (group, lines.first().filter(|l| !l.is_empty())) {
        let c = first[first.len() - 1];
        let groups: Vec<u16> = lex.level_groups(c).collect();
        if groups.contains(&g) && tone(c).is_some_and(|t| t.fits(Tone::Ping)) {
            rhyming.insert(0, 0);
        } else if let Some(&h) = groups.iter().find(|&&h| neighbours(lex, g, h)) {
            if tone(c) == Some(Tone::Ping) {
                notes.push(format!(
                    "line 1 ends in {c} of {}, a 邻韵 of {}: allowed in the first line",
                    gname(h),
                    gname(g)
                ));
            }
        } else if tone(c) == Some(Tone::Ping) && !groups.is_empty() {
            faults.push(fault(
                Broken::OutOfGroup,
                0,
                first.len() - 1,
                format!(
                    "{c} ends line 1 level but is in {}, not {}",
                    groups
                        .iter()
                        .map(|&h| gname(h))
                        .collect::<Vec<_>>()
                        .join(" / "),
                    gname(g)
                ),
            ));
        }
    }
    // 重韵: a character at two rhyming feet.
    for (k, &i) in rhyming.iter().enumerate() {
        let c = lines[i][lines[i].len() - 1];
        if let Some(&first) = rhyming[..k]
            .iter()
            .find(|&&e| lines[e][lines[e].len() - 1] == c)
        {
            faults.push(fault(
                Broken::RepeatedFoot,
                i,
                lines[i].len() - 1,
                format!("{c} already rhymes line {}", first + 1),
            ));
        }
    }

    // --- marks, feet, readings ---
    let is_foot = |i: usize| feet.contains(&i) || rhyming.contains(&i);
    let checked_lines: Vec<LineCheck> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| LineCheck {
            text: l.iter().collect(),
            end: String::new(),
            chars: l
                .iter()
                .enumerate()
                .map(|(j, &c)| CharCheck {
                    ch: c,
                    tone: tone(c),
                    mark: mark(tone(c)),
                    foot: (j + 1 == l.len() && is_foot(i))
                        .then(|| lex.level_groups(c).map(gname).collect()),
                })
                .collect(),
        })
        .collect();
    let readings = readings(lex, lines, rhyming.first() == Some(&0));
    faults.sort_by_key(|f| (f.line, f.pos));
    let ok = faults.is_empty();
    Checked {
        target,
        form: target.name_zh(),
        detected: false,
        lines: checked_lines,
        rhyme_group: group.map(gname),
        faults,
        readings,
        notes,
        tones_ok: tones_ok && !lines.is_empty(),
        ok,
    }
}

/// 孤平 in one line (王力《诗词格律》): a line ending level whose
/// second-to-last key position is oblique (the 平平仄仄平 / 仄仄平平仄仄平
/// type) must keep two level characters besides the foot in its last five;
/// with only one, that one stands alone. Returns the position (from 0) where
/// a level character would mend it. Both-ways and unknown characters may be level, so
/// they never make 孤平.
pub fn guping(lex: &Lexicon, line: &[char]) -> Option<usize> {
    let len = line.len();
    if len < 5 {
        return None;
    }
    let t = |j: usize| lex.tone(line[j]);
    if t(len - 1) != Some(Tone::Ping) || t(len - 2) != Some(Tone::Ze) {
        return None;
    }
    let maybe_level = (len - 5..len - 1)
        .filter(|&j| t(j) != Some(Tone::Ze))
        .count();
    if maybe_level > 1 {
        return None;
    }
    // The place a level character would mend it: position 1 (五言) or 3 (七言)
    // of the pattern, or, when that one is level already, the first oblique
    // one before the fixed oblique key.
    (len - 5..len - 2).find(|&j| t(j) == Some(Tone::Ze))
}

/// Whether level groups `a` and `b` are 邻韵: different groups that poets
/// may borrow between (a first line may end in one). The families, by the
/// last character of the group names: 东冬, 江阳, 支微齐, 鱼虞, 佳灰, 真文元,
/// 元寒删先, 萧肴豪, 庚青蒸, 覃盐咸.
pub fn neighbours(lex: &Lexicon, a: u16, b: u16) -> bool {
    const FAMILIES: &[&str] = &[
        "东冬",
        "江阳",
        "支微齐",
        "鱼虞",
        "佳灰",
        "真文元",
        "元寒删先",
        "萧肴豪",
        "庚青蒸",
        "覃盐咸",
    ];
    let key = |g: u16| -> Option<char> {
        let name = lex.group_name(g);
        let last = name.chars().last()?;
        to_simplified(&last.to_string()).chars().next()
    };
    match (key(a), key(b)) {
        (Some(x), Some(y)) if a != b => FAMILIES
            .iter()
            .any(|f| f.contains(x) && f.contains(y) && x != y),
        _ => false,
    }
}

/// The reading taken for each both-ways character where a tone rule looked
/// at it: at a line end the tone the line must end on; at a key position
/// the tone its neighbour in the line, its couplet partner or its 粘 partner
/// needs; in the last three, oblique when the other two are level.
fn readings(lex: &Lexicon, lines: &[Vec<char>], first_rhymes: bool) -> Vec<Reading> {
    let mut out = Vec::new();
    let t = |i: usize, j: usize| -> Option<Tone> {
        lines
            .get(i)
            .and_then(|l| l.get(j))
            .and_then(|&c| lex.tone(c))
            .filter(|&t| t != Tone::Both)
    };
    for (i, l) in lines.iter().enumerate() {
        let len = l.len();
        if len != 5 && len != 7 {
            continue;
        }
        let keys = key_positions(len);
        for (j, &c) in l.iter().enumerate() {
            if lex.tone(c) != Some(Tone::Both) {
                continue;
            }
            let got: Option<(Tone, &'static str)> = if j + 1 == len {
                match line_end(i) {
                    Some(Tone::Ping) => Some((Tone::Ping, "押韵")),
                    Some(_) => Some((Tone::Ze, "句末平仄")),
                    None if first_rhymes => Some((Tone::Ping, "押韵")),
                    None => None,
                }
            } else if let Some(k) = keys.iter().position(|&p| p == j) {
                let side = [k.checked_sub(1), Some(k + 1)]
                    .into_iter()
                    .flatten()
                    .filter_map(|k2| keys.get(k2))
                    .find_map(|&p| t(i, p));
                let partner = if i % 2 == 1 { Some(i - 1) } else { Some(i + 1) };
                let nian = if i % 2 == 0 {
                    i.checked_sub(1)
                } else {
                    Some(i + 1)
                };
                side.map(|s| (s.opposite(), "二四六分明"))
                    .or_else(|| partner.and_then(|p| t(p, j)).map(|s| (s.opposite(), "对")))
                    .or_else(|| nian.and_then(|p| t(p, j)).map(|s| (s, "粘")))
            } else if j + 3 >= len {
                let others = (len - 3..len)
                    .filter(|&x| x != j)
                    .all(|x| t(i, x) == Some(Tone::Ping));
                others.then_some((Tone::Ze, "三平尾"))
            } else {
                None
            };
            if let Some((tone, rule)) = got {
                out.push(Reading {
                    line: i + 1,
                    pos: j + 1,
                    ch: c,
                    tone,
                    rule,
                });
            }
        }
    }
    out
}

/// Whether `c` at (`line`, `pos`) (from 0) would keep every rule the poem's
/// character there breaks, and break none the poem keeps: the test a
/// suggestion must pass.
pub fn fits_at(
    lex: &Lexicon,
    lines: &[Vec<char>],
    target: Target,
    before: &Checked,
    line: usize,
    pos: usize,
    c: char,
) -> bool {
    let mut trial = lines.to_vec();
    match trial.get_mut(line).and_then(|l| l.get_mut(pos)) {
        Some(slot) => *slot = c,
        None => return false,
    }
    let after = check_lines(lex, &trial, target);
    let key = |f: &Fault| (f.rule, f.line, f.pos);
    after.faults.iter().all(|f| {
        (f.line, f.pos) != (line + 1, pos + 1) && before.faults.iter().any(|b| key(b) == key(f))
    })
}

/// The positions (line, pos, from 0) of characters that break a rule.
pub fn fault_positions(c: &Checked) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = c
        .faults
        .iter()
        .filter(|f| f.pos > 0)
        .map(|f| (f.line - 1, f.pos - 1))
        .collect();
    out.dedup();
    out
}

/// The lines as [`check`] sees them: no punctuation, quotes or spaces.
pub fn plain_lines(text: &str) -> Vec<Vec<char>> {
    lines_with_ends(text).into_iter().map(|(l, _)| l).collect()
}

/// The small lexicon of this module's tests, for other modules' tests.
#[cfg(test)]
pub(crate) fn tests_lexicon() -> Lexicon {
    tests::lex()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tones of the test poems' characters from the 平水韵 table. 看 and 思
    /// are read both ways; 霜 and 乡 rhyme in 七阳, 光 too; 江 is its 邻韵.
    pub(crate) fn lex() -> Lexicon {
        Lexicon::from_groups(&[
            ("下平声七阳", Tone::Ping, "光霜乡阳长香凉"),
            ("上平声三江", Tone::Ping, "江窗"),
            ("下平声十一尤", Tone::Ping, "流楼愁舟头秋游"),
            ("下平声八庚", Tone::Ping, "明城声行生平"),
            ("上平声四支", Tone::Ping, "思时"),
            ("去声四寘", Tone::Ze, "思"),
            ("平", Tone::Ping, "依山黄河穷千层登鹳雀前人来床疑低"),
            (
                "仄",
                Tone::Ze,
                "白日尽入海欲里目更上一去见古者不是地举望月故",
            ),
            ("上平声十四寒", Tone::Ping, "看"),
            ("去声十五翰", Tone::Ze, "看"),
        ])
    }

    fn run(text: &str) -> Checked {
        check(&lex(), text, None).unwrap()
    }

    fn rules_of(c: &Checked) -> Vec<(Broken, usize, usize)> {
        c.faults.iter().map(|f| (f.rule, f.line, f.pos)).collect()
    }

    #[test]
    fn deng_guanque_lou_keeps_every_rule() {
        let c = run("白日依山尽，黄河入海流。欲穷千里目，更上一层楼。");
        assert!(c.ok && c.tones_ok, "{:?}", c.faults);
        assert_eq!(c.form, "五绝");
        assert_eq!(c.rhyme_group.as_deref(), Some("下平声十一尤"));
        let marks: String = c.lines[1].chars.iter().map(|x| x.mark).collect();
        assert_eq!(marks, "○○●●○");
        assert_eq!(c.lines[1].end, "。");
        assert!(c.lines[1].chars[4].foot.is_some() && c.lines[0].chars[4].foot.is_none());
    }

    #[test]
    fn jing_ye_si_is_a_gujue_and_breaks_named_rules() {
        // 李白《静夜思》: 平平平仄平 / 平仄仄仄平 / 仄平仄平仄 / 平平◐仄平.
        let c = run("床前明月光，疑是地上霜。举头望明月，低头思故乡。");
        assert!(!c.ok && !c.tones_ok);
        let got = rules_of(&c);
        // 疑是地上霜: 是 and 上 both oblique.
        assert!(got.contains(&(Broken::Alternation, 2, 4)), "{got:?}");
        // 举头: 头 is level, line 2's 是 oblique: 失粘.
        assert!(got.contains(&(Broken::Nian, 3, 2)), "{got:?}");
        // 低头 against 举头: both level at position 2: 失对.
        assert!(got.contains(&(Broken::Dui, 4, 2)), "{got:?}");
        // The rhyme holds: 霜 乡 in 七阳, and 光 makes line 1 rhyme too.
        assert!(!got.iter().any(|g| g.0 == Broken::OutOfGroup), "{got:?}");
        assert!(c.lines[0].chars[4].foot.is_some());
        let f = c.faults.iter().find(|f| f.rule == Broken::Nian).unwrap();
        assert_eq!(f.ch, Some('头'));
        assert!(f.why.contains("是"), "{}", f.why);
        // 思 (both ways) stands at no key position and no line end: no reading is claimed.
        assert!(c.readings.is_empty(), "{:?}", c.readings);
        // 看 at line 2's 2nd position: 海 (仄) at its 4th makes it level for 二四六分明.
        let c = run("白日依山尽，黄看入海流。欲穷千里目，更上一层楼。");
        assert!(c.tones_ok, "{:?}", c.faults);
        assert_eq!(
            c.readings,
            [Reading {
                line: 2,
                pos: 2,
                ch: '看',
                tone: Tone::Ping,
                rule: "二四六分明"
            }]
        );
    }

    #[test]
    fn a_first_line_in_the_one_group_of_several_the_feet_share_is_not_out_of_group() {
        // 逢 and 釭 are in 一东 and 三江, 窗 only in 三江: the poem rhymes in 三江.
        let lex = Lexicon::from_groups(&[
            ("上平声一东", Tone::Ping, "逢釭"),
            ("上平声三江", Tone::Ping, "逢釭窗"),
            ("平", Tone::Ping, "依山黄河穷千层"),
            ("仄", Tone::Ze, "白日入海欲里目更上一"),
        ]);
        let c = check(
            &lex,
            "白日依山窗，黄河入海逢。欲穷千里目，更上一层釭。",
            None,
        )
        .unwrap();
        assert!(
            !rules_of(&c).iter().any(|r| r.0 == Broken::OutOfGroup),
            "{:?}",
            c.faults
        );
        assert_eq!(c.rhyme_group.as_deref(), Some("上平声三江"));
    }

    #[test]
    fn out_of_group_names_a_neighbouring_group_and_repeats_are_found() {
        // 楼 → 江 (三江, 邻韵 of 七阳? no: 江阳 is one family, 七阳 and 三江).
        let c = run("白日依山尽，黄河入海乡。欲穷千里目，更上一层江。");
        let f = c
            .faults
            .iter()
            .find(|f| f.rule == Broken::OutOfGroup)
            .unwrap();
        assert_eq!((f.line, f.pos, f.ch), (4, 5, Some('江')));
        assert!(
            f.why.contains("邻韵") && f.why.contains("上平声三江"),
            "{}",
            f.why
        );
        let c = run("白日依山尽，黄河入海流。欲穷千里目，更上一层流。");
        assert!(
            rules_of(&c).contains(&(Broken::RepeatedFoot, 4, 5)),
            "{:?}",
            c.faults
        );
        let c = run("白日依山尽，黄河入海流。欲穷千里目，更上一层明。");
        let f = c
            .faults
            .iter()
            .find(|f| f.rule == Broken::OutOfGroup)
            .unwrap();
        assert!(
            !f.why.contains("邻韵") && f.why.contains("下平声八庚"),
            "{}",
            f.why
        );
    }

    #[test]
    fn guping_needs_a_second_level_character() {
        let l = lex();
        // 平平仄仄平 written 仄平仄仄平: 孤平 at position 1.
        let line: Vec<char> = "白河入海流".chars().collect();
        assert_eq!(guping(&l, &line), Some(0));
        // 平仄仄仄平 (疑是地上霜): position 1 is level, so the mend is at position 2.
        let line: Vec<char> = "河日入海流".chars().collect();
        assert_eq!(guping(&l, &line), Some(1));
        // 仄平平仄平 (拗救) keeps two level characters: no 孤平.
        let line: Vec<char> = "白河山海流".chars().collect();
        assert_eq!(guping(&l, &line), None);
        // 仄仄仄平平 is a standard pattern, not 孤平.
        let line: Vec<char> = "白日入山流".chars().collect();
        assert_eq!(guping(&l, &line), None);
        // Seven characters: 仄仄平平仄仄平 written 仄仄仄平仄仄平.
        let line: Vec<char> = "白日入山海上流".chars().collect();
        assert_eq!(guping(&l, &line), Some(2));
        let c = run("白日依山尽，白河入海流。欲穷千里目，更上一层楼。");
        assert!(
            rules_of(&c).contains(&(Broken::Guping, 2, 1)),
            "{:?}",
            c.faults
        );
    }

    #[test]
    fn shape_is_detected_or_named() {
        let c = check(
            &lex(),
            "白日依山尽，黄河入海流。欲穷千里，更上一层楼。",
            None,
        )
        .unwrap();
        assert!(
            rules_of(&c).contains(&(Broken::LineLength, 3, 0)),
            "{:?}",
            c.faults
        );
        assert!(!c.tones_ok && !c.notes.is_empty());
        let e = check(&lex(), "白日依山尽，黄河入海流。", None).unwrap_err();
        assert!(matches!(e, CheckError::NoForm { n: 2, .. }), "{e}");
        assert!(e.to_string().contains("--form"));
        let c = check(&lex(), "白日依山尽，黄河入海流。", Some(Form::Wujue)).unwrap();
        assert!(rules_of(&c).iter().any(|f| f.0 == Broken::LineCount));
        let e = check(
            &lex(),
            "白日依山尽，黄河入海流a。欲穷千里目，更上一层楼。",
            None,
        )
        .unwrap_err();
        assert_eq!(e, CheckError::NotHan { line: 2, ch: 'a' });
        assert_eq!(check(&lex(), " ，。", None).unwrap_err(), CheckError::Empty);
        assert!(matches!(
            check(&lex(), "白日", Some(Form::Free)),
            Err(CheckError::NotRegulated(_))
        ));
    }

    #[test]
    fn lines_with_ends_agree_with_the_rules_splitter() {
        for text in [
            "白日依山尽，黄河入海流。欲穷千里目！更上一层楼？",
            "床前明月光\n疑是地上霜\n\n举头望明月。，低头思故乡",
        ] {
            let ours: Vec<Vec<char>> = lines_with_ends(text).into_iter().map(|x| x.0).collect();
            assert_eq!(ours, super::super::rules::split_lines(text));
        }
        let l = lines_with_ends("「白日依山尽，」黄河入海流。");
        assert_eq!(l[0].1, "，");
        assert_eq!(l[1].0.iter().collect::<String>(), "黄河入海流");
        assert_eq!(split_poems("a\nb\n\n\nc\n").len(), 2);
    }

    #[test]
    fn a_suggestion_must_mend_the_fault_and_break_nothing_new() {
        let l = lex();
        let text = "床前明月光，疑是地上霜。举头望明月，低头思故乡。";
        let lines = plain_lines(text);
        let c = check(&l, text, None).unwrap();
        let t = c.target;
        // 上 (line 2, position 4) breaks 二四六: a level character there mends it.
        assert!(fits_at(&l, &lines, t, &c, 1, 3, '山'));
        assert!(!fits_at(&l, &lines, t, &c, 1, 3, '月'));
        assert!(fault_positions(&c).contains(&(1, 3)));
        assert!(!fits_at(&l, &lines, t, &c, 9, 3, '山'));
    }

    #[test]
    fn scripts_are_told_apart_and_mixing_them_is_refused() {
        let simp = Lexicon::from_groups(&[("上平声一东", Tone::Ping, "东风")]);
        let trad = Lexicon::from_groups(&[("上平聲一東", Tone::Ping, "東風")]);
        assert_eq!(script_of("东风月", &simp, &trad), Ok(Script::Simplified));
        assert_eq!(script_of("東風月", &simp, &trad), Ok(Script::Traditional));
        assert_eq!(
            script_of("東風东风", &simp, &trad),
            Err(CheckError::MixedScripts {
                trad: '東',
                simp: '东'
            })
        );
        // One character of the other script is a stray, not a mix: 乾 of 乾坤 in simplified text.
        assert_eq!(script_of("東风风", &simp, &trad), Ok(Script::Simplified));
        let twin = with_other_script(&simp, "東风").expect("東 is learnt from 东");
        assert_eq!(twin.tone('東'), Some(Tone::Ping));
        assert_eq!(twin.level_groups('東').collect::<Vec<_>>(), vec![0]);
        assert!(with_other_script(&simp, "东风").is_none());
        assert!(neighbours(&lex(), 0, 1) && !neighbours(&lex(), 0, 2) && !neighbours(&lex(), 0, 0));
        assert!(neighbours(&trad_groups(), 0, 1));
    }

    fn trad_groups() -> Lexicon {
        Lexicon::from_groups(&[
            ("上平聲一東", Tone::Ping, "東"),
            ("上平聲二冬", Tone::Ping, "冬"),
        ])
    }
}
