//! The 近体诗 tone rules and the rhyme rule, as checks over lines of characters
//! (for `eval` and the tests) and as a position-by-position planner (for the
//! sampler in `write`), both following one reading of the rules.
//!
//! Positions are counted from 1 in the names below, from 0 in code. For a
//! poem of lines of 5 or 7 characters:
//! - 二四六分明 (`Alternation`): within a line, positions 2 and 4 (and 4 and 6
//!   in a seven-character line) have opposite tones;
//! - line ends (`LineEnd`): lines 2, 4, 6, 8 end level (they rhyme); lines 3,
//!   5, 7 end oblique; line 1 may end either way (it may rhyme);
//! - no 三平尾 (`Sanpingwei`): the last three characters of a line are not all level;
//! - 粘 (`Nian`): the 2nd character of line 2k+1 has the tone of line 2k's;
//! - 对 (`Dui`): the two lines of a couplet are opposite at positions 2, 4 (, 6).
//!
//! A character read both ways (`Both`) matches either tone, and so does a
//! character the lexicon does not know: a check fails only on tones it can be
//! sure of. The rhyme rule (`Rhyme`) is separate: the feet of lines 2, 4, 6, 8
//! are level and share one 平水韵 group.
//!
//! Not here: how lines are split out of a poem's text beyond the punctuation
//! below, and anything about models.

use super::{Lexicon, Tone};

/// Which tone rules the sampler enforces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToneMode {
    /// No tone rules.
    #[default]
    Off,
    /// The rules inside each line: 二四六分明 and the line-end tones.
    Loose,
    /// All of them: also 三平尾, 粘 and 对.
    Strict,
}

impl std::str::FromStr for ToneMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(ToneMode::Off),
            "loose" => Ok(ToneMode::Loose),
            "strict" => Ok(ToneMode::Strict),
            _ => Err(format!(
                "unknown tone mode `{s}` (use off, loose or strict)"
            )),
        }
    }
}

/// One rule of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// 二四六分明
    Alternation,
    /// line-end tones
    LineEnd,
    /// no 三平尾
    Sanpingwei,
    /// 粘
    Nian,
    /// 对
    Dui,
    /// 押韵 (not a tone rule)
    Rhyme,
}

impl Rule {
    pub const TONE_RULES: [Rule; 5] = [
        Rule::Alternation,
        Rule::LineEnd,
        Rule::Sanpingwei,
        Rule::Nian,
        Rule::Dui,
    ];

    pub fn name_zh(self) -> &'static str {
        match self {
            Rule::Alternation => "二四六分明",
            Rule::LineEnd => "句末平仄",
            Rule::Sanpingwei => "三平尾",
            Rule::Nian => "粘",
            Rule::Dui => "对",
            Rule::Rhyme => "押韵",
        }
    }
}

/// One application of a rule: where it was checked and whether it held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    pub rule: Rule,
    /// The line checked, from 0 (for 粘 and 对, the later line of the pair).
    pub line: usize,
    /// The first character position (from 0) where it failed, if it failed.
    pub pos: Option<usize>,
    pub ok: bool,
}

/// Every check made on one poem.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// The 平水韵 group the feet share, when the rhyme rule was checked and held.
    pub rhyme_group: Option<u16>,
}

impl Report {
    /// All tone rules held (eval's `tones%`).
    pub fn tones_ok(&self) -> bool {
        self.tone_checks().all(|c| c.ok)
    }

    /// (tone checks met, tone checks made) (eval's `rules%`).
    pub fn tone_rules_met(&self) -> (usize, usize) {
        let n = self.tone_checks().count();
        (self.tone_checks().filter(|c| c.ok).count(), n)
    }

    /// The rhyme rule was checked and held (eval's `rhyme%`).
    pub fn rhyme_ok(&self) -> bool {
        let mut r = self
            .checks
            .iter()
            .filter(|c| c.rule == Rule::Rhyme)
            .peekable();
        r.peek().is_some() && r.all(|c| c.ok)
    }

    /// The checks that failed, in order.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }

    fn tone_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.rule != Rule::Rhyme)
    }
}

/// Why a poem cannot be checked at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error(
        "line {line} has {len} characters; the rules need lines of 5 or 7, all the same length"
    )]
    LineLength { line: usize, len: usize },
    #[error("no lines to check")]
    Empty,
}

/// Splits a poem's text into lines at ，。！？；、 and newlines, dropping the
/// punctuation and empty pieces.
pub fn split_lines(text: &str) -> Vec<Vec<char>> {
    text.split([
        '，', '。', '！', '？', '；', '、', ',', '.', '!', '?', ';', '\n',
    ])
    .map(|l| l.chars().filter(|c| !c.is_whitespace()).collect::<Vec<_>>())
    .filter(|l| !l.is_empty())
    .collect()
}

/// Checks the tone rules and, when there are at least two lines, the rhyme
/// rule on a poem's text.
pub fn check_poem(lex: &Lexicon, text: &str) -> Result<Report, ShapeError> {
    let lines = split_lines(text);
    let mut report = check_tones(lex, &lines)?;
    let rhyme = check_rhyme(lex, &lines);
    report.checks.extend(rhyme.checks);
    report.rhyme_group = rhyme.rhyme_group;
    Ok(report)
}

/// The five tone rules over lines of equal length 5 or 7.
pub fn check_tones(lex: &Lexicon, lines: &[Vec<char>]) -> Result<Report, ShapeError> {
    let len = shape(lines)?;
    // Unknown characters are given `Both`: no rule can fail on them.
    let tones: Vec<Vec<Tone>> = lines
        .iter()
        .map(|l| {
            l.iter()
                .map(|&c| lex.tone(c).unwrap_or(Tone::Both))
                .collect()
        })
        .collect();
    let keys = key_positions(len);
    let opposite = |a: Tone, b: Tone| a == Tone::Both || b == Tone::Both || a != b;
    let same = |a: Tone, b: Tone| a.fits(b);
    let mut checks = Vec::new();
    for (i, t) in tones.iter().enumerate() {
        let bad = keys.windows(2).find(|w| !opposite(t[w[0]], t[w[1]]));
        checks.push(check(Rule::Alternation, i, bad.map(|w| w[1])));
        if let Some(want) = line_end(i) {
            let ok = t[len - 1].fits(want);
            checks.push(check(Rule::LineEnd, i, (!ok).then_some(len - 1)));
        }
        let three = t[len - 3..].iter().all(|&x| x == Tone::Ping);
        checks.push(check(Rule::Sanpingwei, i, three.then_some(len - 3)));
        if i % 2 == 1 {
            let prev = &tones[i - 1];
            let bad = keys.iter().copied().find(|&j| !opposite(prev[j], t[j]));
            checks.push(check(Rule::Dui, i, bad));
        } else if i > 0 {
            let ok = same(tones[i - 1][1], t[1]);
            checks.push(check(Rule::Nian, i, (!ok).then_some(1)));
        }
    }
    Ok(Report {
        checks,
        rhyme_group: None,
    })
}

/// The rhyme rule: the last characters of lines 2, 4, 6, 8 are level and
/// share one level 平水韵 group. One check per foot after the first, which
/// fails at the first foot that shares no group with the ones before it.
pub fn check_rhyme(lex: &Lexicon, lines: &[Vec<char>]) -> Report {
    let feet: Vec<(usize, char)> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| i % 2 == 1 && !l.is_empty())
        .map(|(i, l)| (i, l[l.len() - 1]))
        .collect();
    let mut checks = Vec::new();
    let Some(&(first_line, first)) = feet.first() else {
        return Report::default();
    };
    // The groups every foot so far shares.
    let mut shared: Vec<u16> = lex.level_groups(first).collect();
    let first_len = lines[first_line].len();
    checks.push(check(
        Rule::Rhyme,
        first_line,
        shared.is_empty().then_some(first_len - 1),
    ));
    for &(i, c) in &feet[1..] {
        let before = !shared.is_empty();
        shared.retain(|&g| lex.level_groups(c).any(|h| h == g));
        let ok = before && !shared.is_empty();
        checks.push(check(Rule::Rhyme, i, (!ok).then_some(lines[i].len() - 1)));
    }
    let ok = checks.iter().all(|c| c.ok);
    // Several groups can hold every foot (逢 is in 一东, 二冬 and 三江); line 1's last
    // character, when it is in one of them, settles which, as a poem rhyming there
    // (首句入韵) is read.
    let line1 = lines.first().and_then(|l| l.last());
    let group = line1
        .and_then(|&c| {
            shared
                .iter()
                .copied()
                .find(|&g| lex.level_groups(c).any(|h| h == g))
        })
        .or(shared.first().copied());
    Report {
        checks,
        rhyme_group: if ok { group } else { None },
    }
}

fn check(rule: Rule, line: usize, failed_at: Option<usize>) -> Check {
    Check {
        rule,
        line,
        pos: failed_at,
        ok: failed_at.is_none(),
    }
}

fn shape(lines: &[Vec<char>]) -> Result<usize, ShapeError> {
    let len = lines.first().ok_or(ShapeError::Empty)?.len();
    for (i, l) in lines.iter().enumerate() {
        if l.len() != len || !(len == 5 || len == 7) {
            return Err(ShapeError::LineLength {
                line: i + 1,
                len: l.len(),
            });
        }
    }
    Ok(len)
}

/// Positions 2, 4 (, 6) counted from 0.
pub fn key_positions(len: usize) -> &'static [usize] {
    if len >= 7 {
        &[1, 3, 5]
    } else {
        &[1, 3]
    }
}

/// The tone line `i` (from 0) must end on: none for the first line, level for
/// the rhyming lines 2, 4, …, oblique for lines 3, 5, ….
pub fn line_end(i: usize) -> Option<Tone> {
    match i {
        0 => None,
        i if i % 2 == 1 => Some(Tone::Ping),
        _ => Some(Tone::Ze),
    }
}

/// The tone of line `i`'s first key position (its 2nd character) that a
/// definite `tone` at position `j` implies (二四六 alternate); `None` when
/// `j` is no key position or the tone is both-ways or unknown.
pub fn line_first_key(len: usize, j: usize, tone: Option<Tone>) -> Option<Tone> {
    let t = tone.filter(|&t| t != Tone::Both)?;
    let k = key_positions(len).iter().position(|&p| p == j)?;
    Some(if k % 2 == 0 { t } else { t.opposite() })
}

/// The tone of line 1's 2nd character that a definite `tone` at line `i`,
/// position `j` implies when 对 and 粘 chain the lines (strict): lines 1..8
/// carry s, !s, !s, s, s, !s, !s, s.
pub fn strict_start(len: usize, i: usize, j: usize, tone: Option<Tone>) -> Option<Tone> {
    let first = line_first_key(len, j, tone)?;
    Some(if i.div_ceil(2) % 2 == 0 {
        first
    } else {
        first.opposite()
    })
}

/// Plans tones while a poem is written left to right, so that whatever the
/// sampler picks within [`ToneReq`] the finished poem passes [`check_tones`].
///
/// In strict mode the tones of positions 2, 4, 6 of every line follow from
/// the tone of line 1's 2nd character (对 and 粘 chain them), so the planner
/// keeps that one tone (`start`) and derives the rest. In loose mode each
/// line's 2nd character starts its own chain. A character read both ways is
/// taken in the reading the plan needs; at a free key position it is taken
/// as level. Unknown characters are kept out of key positions and line ends
/// with a requirement, so the plan never rests on a guess.
#[derive(Clone, Debug)]
pub struct TonePlan {
    mode: ToneMode,
    len: usize,
    /// The tone taken for each key position of the current line so far.
    line_keys: [Option<Tone>; 3],
    /// Tone taken for the 2nd character of line 1 (strict).
    start: Option<Tone>,
    /// Tones taken for the current line, by position (for 三平尾).
    line: Vec<Tone>,
    /// Loose mode: the first key tone each line's kept characters fix (see `lock`).
    locked: Vec<Option<Tone>>,
}

/// What the next character's tone must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToneReq {
    /// Anything, including characters of unknown tone.
    Any,
    /// A character of known tone, either one (a free key position).
    Known,
    /// Level or both.
    Ping,
    /// Oblique or both.
    Ze,
}

impl ToneReq {
    /// Whether a character of tone `t` (None: unknown) meets this requirement.
    pub fn allows(self, t: Option<Tone>) -> bool {
        match (self, t) {
            (ToneReq::Any, _) => true,
            (_, None) => false,
            (ToneReq::Known, Some(_)) => true,
            (ToneReq::Ping, Some(t)) => t.fits(Tone::Ping),
            (ToneReq::Ze, Some(t)) => t.fits(Tone::Ze),
        }
    }
}

impl TonePlan {
    /// A plan for lines of `len` characters (5 or 7; other lengths get no tone rules).
    pub fn new(mode: ToneMode, len: usize) -> TonePlan {
        let mode = if len == 5 || len == 7 {
            mode
        } else {
            ToneMode::Off
        };
        TonePlan {
            mode,
            len,
            line_keys: [None; 3],
            start: None,
            line: Vec::with_capacity(len),
            locked: Vec::new(),
        }
    }

    pub fn mode(&self) -> ToneMode {
        self.mode
    }

    /// The requirement at line `i`, position `j` (both from 0). Call in order.
    pub fn req(&self, i: usize, j: usize) -> ToneReq {
        if self.mode == ToneMode::Off {
            return ToneReq::Any;
        }
        let len = self.len;
        let keys = key_positions(len);
        if let Some(k) = keys.iter().position(|&p| p == j) {
            return match self.key_tone(i, k) {
                Some(t) => to_req(t),
                None => ToneReq::Known,
            };
        }
        if j == len - 1 {
            let end = line_end(i);
            if self.mode == ToneMode::Strict && i == 0 {
                // Line 1 may end either way, unless the two before it are level;
                // either way in a tone the lexicon knows, as a level end rhymes.
                let three = self.line[len - 3] == Tone::Ping && self.line[len - 2] == Tone::Ping;
                return if three { ToneReq::Ze } else { ToneReq::Known };
            }
            return end.map_or(ToneReq::Known, to_req);
        }
        if self.mode == ToneMode::Strict && j == len - 3 && line_end(i) == Some(Tone::Ping) {
            // Position len-2 is a key position; if it and the end are level, this one must not be.
            let k = keys.len() - 1;
            if self.key_tone(i, k) == Some(Tone::Ping) {
                return ToneReq::Ze;
            }
        }
        ToneReq::Any
    }

    /// The tone key position `k` of line `i` must have, if already decided.
    fn key_tone(&self, i: usize, k: usize) -> Option<Tone> {
        let first = match self.mode {
            ToneMode::Strict => {
                // 对 flips, 粘 keeps: lines 1,2,3,4,5,6,7,8 → s, !s, !s, s, s, !s, !s, s.
                self.start.map(|s| {
                    if i.div_ceil(2) % 2 == 0 {
                        s
                    } else {
                        s.opposite()
                    }
                })
            }
            _ => self.line_keys[0].or_else(|| self.locked.get(i).copied().flatten()),
        };
        first.map(|t| if k % 2 == 0 { t } else { t.opposite() })
    }

    /// Tells the plan, before writing, that line `i`, position `j` holds a
    /// kept character of `tone` (a template's, a line not being rewritten),
    /// so that the key positions written before it agree with it: in strict
    /// mode the first definite key it meets fixes the whole chain, in loose
    /// mode it fixes its own line's. Both-ways and unknown tones fix nothing.
    pub fn lock(&mut self, i: usize, j: usize, tone: Option<Tone>) {
        let Some(first) = line_first_key(self.len, j, tone) else {
            return;
        };
        match self.mode {
            ToneMode::Strict if self.start.is_none() => {
                self.start = strict_start(self.len, i, j, tone);
            }
            ToneMode::Loose => {
                if self.locked.len() <= i {
                    self.locked.resize(i + 1, None);
                }
                self.locked[i].get_or_insert(first);
            }
            _ => {}
        }
    }

    /// Records the character placed at line `i`, position `j` (tone None:
    /// unknown), resolving a both-ways character to the reading the plan needs.
    pub fn place(&mut self, i: usize, j: usize, tone: Option<Tone>) {
        if self.mode == ToneMode::Off {
            return;
        }
        if j == 0 {
            self.line.clear();
            self.line_keys = [None; 3];
        }
        let req = self.req(i, j);
        let keys = key_positions(self.len);
        let key = keys.iter().position(|&p| p == j);
        let taken = match (tone, req) {
            (Some(Tone::Both), ToneReq::Ping) => Tone::Ping,
            (Some(Tone::Both), ToneReq::Ze) => Tone::Ze,
            (Some(Tone::Both), _) if key.is_some() => Tone::Ping,
            (Some(t), _) => t,
            // Unknown: counts as "not surely level" for 三平尾; at a key position
            // (only reachable through forced input) take the planned tone.
            (None, ToneReq::Ping) => Tone::Ping,
            (None, ToneReq::Ze) => Tone::Ze,
            (None, _) if key.is_some() => Tone::Ping,
            (None, _) => Tone::Both,
        };
        self.line.push(taken);
        if let Some(k) = key {
            self.line_keys[k] = Some(taken);
            if self.mode == ToneMode::Strict && i == 0 && k == 0 {
                self.start = Some(taken);
            }
        }
    }
}

fn to_req(t: Tone) -> ToneReq {
    match t {
        Tone::Ping => ToneReq::Ping,
        Tone::Ze => ToneReq::Ze,
        Tone::Both => ToneReq::Known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters of the test poems with their 平水韵 tones (checked
    /// against the table), as a small lexicon. 看 is read both ways.
    fn lex() -> Lexicon {
        Lexicon::from_groups(&[
            ("下平声十一尤", Tone::Ping, "流楼愁舟头秋游"),
            ("下平声八庚", Tone::Ping, "明城声行生平"),
            ("上平声一东", Tone::Ping, "东风中"),
            ("平", Tone::Ping, "依山黄河穷千层登鹳雀楼前人来"),
            ("仄", Tone::Ze, "白日尽入海欲里目更上一去见古者不"),
            ("上平声十四寒", Tone::Ping, "看"),
            ("去声十五翰", Tone::Ze, "看"),
        ])
    }

    fn lines(text: &str) -> Vec<Vec<char>> {
        split_lines(text)
    }

    #[test]
    fn line_1_settles_the_group_when_the_feet_share_several() {
        // 逢 and 釭 are both in 一东 and 三江; 窗, ending line 1, only in 三江.
        let lex = Lexicon::from_groups(&[
            ("上平声一东", Tone::Ping, "东逢釭"),
            ("上平声三江", Tone::Ping, "江逢釭窗"),
        ]);
        let poem = lines("晓夜多明月在窗，江昏雁落故人逢。谁知秋兴殊狂懒，不得幽姿起夜釭。");
        assert_eq!(check_rhyme(&lex, &poem).rhyme_group, Some(1));
        // Without line 1 in either, the first shared group is kept.
        let poem = lines("晓夜多明月在是，江昏雁落故人逢。谁知秋兴殊狂懒，不得幽姿起夜釭。");
        assert_eq!(check_rhyme(&lex, &poem).rhyme_group, Some(0));
    }

    #[test]
    fn deng_guanque_lou_passes_every_rule() {
        // 王之涣《登鹳雀楼》: 仄仄平平仄，平平仄仄平。仄平平仄仄，仄仄仄平平。
        let r = check_poem(&lex(), "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。").unwrap();
        assert!(r.tones_ok(), "{:?}", r.failures().collect::<Vec<_>>());
        assert!(r.rhyme_ok());
        assert_eq!(r.rhyme_group, Some(0));
        let (met, n) = r.tone_rules_met();
        // 4 alternation + 3 line ends + 4 三平尾 + 2 对 + 1 粘
        assert_eq!((met, n), (14, 14));
    }

    #[test]
    fn broken_nian_fails_at_line_three_position_two() {
        // Line 2 (黄河入海流) has a level 2nd character (河); reordering line 3
        // to 千里欲穷目 puts an oblique one (里) there, which breaks 粘.
        let text = "白日依山尽，黄河入海流。千里欲穷目，更上一层楼。";
        let r = check_poem(&lex(), text).unwrap();
        let fails: Vec<_> = r.failures().collect();
        assert!(
            fails
                .iter()
                .any(|c| c.rule == Rule::Nian && c.line == 2 && c.pos == Some(1)),
            "{fails:?}"
        );
        assert!(!r.tones_ok());
        let (met, n) = r.tone_rules_met();
        assert!(met < n);
    }

    #[test]
    fn each_rule_fails_where_it_should() {
        let l = lex();
        // 二四六: 日 and 山 fine; make positions 2 and 4 both level: 白河依山尽.
        let r = check_tones(&l, &lines("白河依山尽，黄河入海流。")).unwrap();
        assert!(r
            .failures()
            .any(|c| c.rule == Rule::Alternation && c.line == 0 && c.pos == Some(3)));
        // Line 2 must end level: 流 → 目.
        let r = check_tones(&l, &lines("白日依山尽，黄河入海目。")).unwrap();
        assert!(r
            .failures()
            .any(|c| c.rule == Rule::LineEnd && c.line == 1 && c.pos == Some(4)));
        // 三平尾: 黄河依山流 ends 依山流 all level.
        let r = check_tones(&l, &lines("白日依山尽，黄河依山流。")).unwrap();
        assert!(r
            .failures()
            .any(|c| c.rule == Rule::Sanpingwei && c.line == 1 && c.pos == Some(2)));
        // 对: line 2's 2nd character must oppose line 1's: 白日 (仄) vs 黄尽 (仄).
        let r = check_tones(&l, &lines("白日依山尽，黄尽入海流。")).unwrap();
        assert!(r
            .failures()
            .any(|c| c.rule == Rule::Dui && c.line == 1 && c.pos == Some(1)));
        // A both-ways character breaks nothing: 看 at line 2's 2nd position.
        let r = check_tones(&l, &lines("白日依山尽，黄看入海流。")).unwrap();
        assert!(r.tones_ok(), "{:?}", r.failures().collect::<Vec<_>>());
        assert!(check_tones(&l, &lines("白日依山，黄河入海流。")).is_err());
        assert!(check_tones(&l, &[]).is_err());
    }

    #[test]
    fn rhyme_needs_level_feet_of_one_group() {
        let l = lex();
        let ok = check_rhyme(
            &l,
            &lines("白日依山尽，黄河入海流。欲穷千里目，更上一层舟。"),
        );
        assert!(ok.rhyme_ok());
        let bad = check_rhyme(
            &l,
            &lines("白日依山尽，黄河入海流。欲穷千里目，更上一层城。"),
        );
        assert!(!bad.rhyme_ok());
        assert_eq!(
            bad.failures().next().map(|c| (c.line, c.pos)),
            Some((3, Some(4)))
        );
        let oblique = check_rhyme(
            &l,
            &lines("白日依山尽，黄河入海目。欲穷千里目，更上一层目。"),
        );
        assert!(!oblique.rhyme_ok());
        assert!(
            !check_rhyme(&l, &lines("白日依山尽")).rhyme_ok(),
            "no feet: not rhymed"
        );
    }

    /// Every way of filling a poem within the plan's requirements passes the rules.
    #[test]
    fn any_poem_the_plan_allows_passes_check_tones() {
        let l = lex();
        let pool: Vec<char> = "白日依山尽黄河入海流看愁明古".chars().collect();
        let mut rng = crate::rng::Rng::new(5);
        for (mode, len, n) in [
            (ToneMode::Strict, 5, 4),
            (ToneMode::Strict, 7, 8),
            (ToneMode::Strict, 5, 8),
            (ToneMode::Loose, 7, 4),
        ] {
            for _ in 0..300 {
                let mut plan = TonePlan::new(mode, len);
                let mut poem = Vec::new();
                for i in 0..n {
                    let mut line = Vec::new();
                    for j in 0..len {
                        let req = plan.req(i, j);
                        let ok: Vec<char> = pool
                            .iter()
                            .copied()
                            .filter(|&c| req.allows(l.tone(c)))
                            .collect();
                        assert!(!ok.is_empty(), "{mode:?} line {i} pos {j}: {req:?}");
                        let c = ok[rng.below(ok.len())];
                        plan.place(i, j, l.tone(c));
                        line.push(c);
                    }
                    poem.push(line);
                }
                let r = check_tones(&l, &poem).unwrap();
                let fails: Vec<_> = r.failures().collect();
                let text: Vec<String> = poem.iter().map(|x| x.iter().collect()).collect();
                match mode {
                    ToneMode::Strict => assert!(fails.is_empty(), "{text:?}: {fails:?}"),
                    _ => assert!(
                        fails
                            .iter()
                            .all(|c| matches!(c.rule, Rule::Nian | Rule::Dui | Rule::Sanpingwei)),
                        "{text:?}: {fails:?}"
                    ),
                }
            }
        }
    }
}
