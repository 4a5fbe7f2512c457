//! 词谱: each ci tune's pattern, derived from the ci written to it, and the
//! check of a ci against a pattern.
//!
//! A tune's ci are grouped by their line lengths (a line is a run of Han
//! characters up to ，。、；：！？). The most common grouping is the tune's
//! main form (正体), the next common ones its variants (又一体). For each
//! form and each position, the tone the poets kept: 平 when at least
//! [`TONE_MAJORITY`] of the characters there of definite tone are level, 仄
//! when that many are oblique, otherwise either (中). The rhyme positions are
//! the line ends whose feet share a 词林正韵 class (see [`super::cilin`]) in
//! at least [`RHYME_SHARE`] of the ci, joined into rhyme sets (a tune that
//! changes rhyme, like 菩萨蛮, has several); each set rhymes level or oblique
//! by the majority of its feet.
//!
//! Pure functions over given texts and the lexicon: reading the corpus is
//! `songci.rs`, writing to a pattern is `write`, printing is `cli/tunes.rs`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::cilin::{Cilin, Class, NUM_CLASSES};
use super::{is_han, Lexicon, Tone};
use crate::corpus::convert::to_simplified;

/// Tunes with fewer ci than this get no pattern: too few to tell a kept tone from chance.
pub const MIN_CI: usize = 20;
/// A line-length grouping is a variant when it has this many ci…
pub const VARIANT_MIN_CI: usize = 5;
/// …and this share of the tune's ci (the main form needs neither).
pub const VARIANT_MIN_SHARE: f64 = 0.05;
/// At most this many forms per tune (the main one included).
pub const MAX_VARIANTS: usize = 6;
/// A position is 平 (or 仄) when this share of its characters of definite tone are.
pub const TONE_MAJORITY: f64 = 0.85;
/// Two line ends rhyme when their feet share a 词林正韵 class in this share of the ci.
pub const RHYME_SHARE: f64 = 0.5;

/// One line of a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternLine {
    /// Characters in the line.
    pub len: usize,
    /// Its closing punctuation: ， inside a stanza, 。 at a sentence end.
    pub end: char,
    /// Per position: `Ping` (平), `Ze` (仄), or `Both` (either, 中).
    pub tones: Vec<Tone>,
    /// The rhyme set its last character belongs to (an index into `TuneForm::sets`), if it rhymes.
    pub rhyme: Option<usize>,
}

/// One form of a tune (its main form or a variant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuneForm {
    /// How many of the tune's ci have this form's line lengths.
    pub count: usize,
    pub lines: Vec<PatternLine>,
    /// The tone of each rhyme set's feet: `Ping` or `Ze`.
    pub sets: Vec<Tone>,
    /// The first ci of this form, as the corpus has it (lines and their punctuation).
    pub example: String,
}

/// A tune: its name as the corpus gives it (aliases joined by ・) and its forms, most common first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tune {
    pub name: String,
    /// Ci of this tune in the texts it was derived from.
    pub count: usize,
    pub forms: Vec<TuneForm>,
}

/// The derived 词谱 of every tune with at least [`MIN_CI`] ci, most ci first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cipu {
    pub tunes: Vec<Tune>,
}

/// Errors of looking a tune up or checking a ci, each naming the value and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TuneError {
    #[error("unknown tune `{name}`{close}")]
    UnknownTune { name: String, close: String },
    #[error("tune {name} has {forms} form(s), so there is no form {variant} (pick 1 to {forms})")]
    UnknownVariant {
        name: String,
        variant: usize,
        forms: usize,
    },
    #[error("the ci has no lines (give its text with punctuation)")]
    Empty,
    #[error("the ci's lines have {got} characters; {name} has lines of {want} (check the text and its punctuation, or name another tune)")]
    Shape {
        name: String,
        got: String,
        want: String,
    },
    #[error("no tune has lines of {got} characters (name the tune, or check the punctuation)")]
    NoTuneFits { got: String },
}

/// Splits a ci into lines: runs of Han characters, each with its closing
/// punctuation (，、；： as ，; 。！？ as 。). Text in brackets (editors'
/// notes) is dropped. `None` when the text is damaged: a □ or other
/// non-Han character inside a line, which would shift every position after it.
pub fn split_lines(text: &str) -> Option<Vec<(Vec<char>, char)>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '（' | '(' | '【' | '[' | '《' => depth += 1,
            '）' | ')' | '】' | ']' | '》' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            c if is_han(c) => line.push(c),
            '。' | '！' | '？' | '.' | '!' | '?' | '，' | '、' | '；' | '：' | ',' | ';' | ':' =>
            {
                let end = if matches!(c, '。' | '！' | '？' | '.' | '!' | '?') {
                    '。'
                } else {
                    '，'
                };
                if !line.is_empty() {
                    out.push((std::mem::take(&mut line), end));
                } else if let Some(last) = out.last_mut() {
                    // "……。" or "？」。": the stronger mark wins.
                    if end == '。' {
                        last.1 = '。';
                    }
                }
            }
            c if c.is_whitespace() || "“”‘’「」『』…—·・".contains(c) => {}
            _ => return None,
        }
    }
    if !line.is_empty() {
        out.push((line, '。'));
    }
    Some(out)
}

/// A ci split into lines: each line's characters and closing punctuation.
type Lines = Vec<(Vec<char>, char)>;

/// The line lengths of a split ci, as one key.
fn lengths(lines: &[(Vec<char>, char)]) -> Vec<usize> {
    lines.iter().map(|l| l.0.len()).collect()
}

/// Bit set of the rhyme classes of a character (38 classes fit in a u64).
fn class_mask(lex: &Lexicon, cl: &Cilin, c: char) -> u64 {
    cl.classes(lex, c)
        .iter()
        .fold(0, |m, k| m | 1u64 << k.index())
}

/// A tune name as the table keys it: simplified, trimmed.
fn key(name: &str) -> String {
    to_simplified(name.trim())
}

impl Cipu {
    /// Derives the patterns from `(tune, text)` pairs (simplified script, as
    /// the Song ci collection is). Tunes named 失调名 (tune lost) are skipped.
    pub fn derive<'t>(
        lex: &Lexicon,
        cl: &Cilin,
        ci: impl IntoIterator<Item = (&'t str, &'t str)>,
    ) -> Cipu {
        // tune → line lengths → the ci's lines
        let mut by_tune: HashMap<String, HashMap<Vec<usize>, Vec<Lines>>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for (tune, text) in ci {
            let name = key(tune);
            if name.is_empty() || name == "失调名" {
                continue;
            }
            let Some(lines) = split_lines(text) else {
                continue;
            };
            if lines.is_empty() {
                continue;
            }
            if !by_tune.contains_key(&name) {
                order.push(name.clone());
            }
            by_tune
                .entry(name)
                .or_default()
                .entry(lengths(&lines))
                .or_default()
                .push(lines);
        }
        let mut tunes: Vec<Tune> = order
            .into_iter()
            .filter_map(|name| {
                let groups = by_tune.remove(&name)?;
                let count: usize = groups.values().map(Vec::len).sum();
                if count < MIN_CI {
                    return None;
                }
                let mut groups: Vec<(Vec<usize>, Vec<Lines>)> = groups.into_iter().collect();
                // Most ci first; ties to fewer lines, then shorter lines, so the order is stable.
                groups.sort_by(|a, b| {
                    b.1.len()
                        .cmp(&a.1.len())
                        .then(a.0.len().cmp(&b.0.len()))
                        .then(a.0.cmp(&b.0))
                });
                let forms: Vec<TuneForm> = groups
                    .iter()
                    .enumerate()
                    .filter(|(k, g)| {
                        *k == 0
                            || (g.1.len() >= VARIANT_MIN_CI
                                && g.1.len() as f64 >= VARIANT_MIN_SHARE * count as f64)
                    })
                    .take(MAX_VARIANTS)
                    .map(|(_, g)| derive_form(lex, cl, &g.1))
                    .collect();
                Some(Tune { name, count, forms })
            })
            .collect();
        tunes.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
        Cipu { tunes }
    }

    /// Derives the patterns as [`Cipu::derive`] does, after splitting the
    /// split 平水韵 groups between their 部 by the rhymes of these same ci
    /// (see [`Cilin::refine`]); returns the refined table with the patterns.
    pub fn build<'t>(
        lex: &Lexicon,
        ci: impl IntoIterator<Item = (&'t str, &'t str)> + Clone,
    ) -> (Cilin, Cipu) {
        let mut cl = Cilin::new(lex);
        let first = Cipu::derive(lex, &cl, ci.clone());
        cl.refine(lex, &first.rhymes(ci.clone()));
        let cipu = Cipu::derive(lex, &cl, ci);
        (cl, cipu)
    }

    /// The characters that rhyme together in each ci that fits one of its
    /// tune's forms: one entry per rhyme set, with its side (true: level).
    pub fn rhymes<'t>(
        &self,
        ci: impl IntoIterator<Item = (&'t str, &'t str)>,
    ) -> Vec<(Vec<char>, bool)> {
        let by_name: HashMap<&str, &Tune> =
            self.tunes.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut out = Vec::new();
        for (tune, text) in ci {
            let k = key(tune);
            let Some(t) = by_name.get(k.as_str()) else {
                continue;
            };
            let Some(lines) = split_lines(text) else {
                continue;
            };
            let lens = lengths(&lines);
            let Some(f) = t
                .forms
                .iter()
                .find(|f| f.lines.iter().map(|l| l.len).eq(lens.iter().copied()))
            else {
                continue;
            };
            for (s, &tone) in f.sets.iter().enumerate() {
                let feet: Vec<char> = lines
                    .iter()
                    .zip(&f.lines)
                    .filter(|(_, p)| p.rhyme == Some(s))
                    .map(|((l, _), _)| l[l.len() - 1])
                    .collect();
                out.push((feet, tone == Tone::Ping));
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.tunes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tunes.is_empty()
    }

    /// Tune `name`, in either script: its full name (望江南・忆江南) or any
    /// one of its aliases (忆江南). An unknown name gets close names.
    pub fn tune(&self, name: &str) -> Result<&Tune, TuneError> {
        let k = key(name);
        if let Some(t) = self.tunes.iter().find(|t| t.name == k) {
            return Ok(t);
        }
        if !k.is_empty() {
            if let Some(t) = self
                .tunes
                .iter()
                .find(|t| t.name.split('・').any(|part| part == k))
            {
                return Ok(t);
            }
        }
        Err(TuneError::UnknownTune {
            name: name.trim().to_string(),
            close: self.close_names(&k),
        })
    }

    /// Form `variant` (1: the main form) of tune `name`.
    pub fn form(&self, name: &str, variant: usize) -> Result<(&Tune, &TuneForm), TuneError> {
        let t = self.tune(name)?;
        match variant.checked_sub(1).and_then(|v| t.forms.get(v)) {
            Some(f) => Ok((t, f)),
            None => Err(TuneError::UnknownVariant {
                name: t.name.clone(),
                variant,
                forms: t.forms.len(),
            }),
        }
    }

    /// " (close names: …)" by characters in common, then ci; or the most common tunes.
    fn close_names(&self, k: &str) -> String {
        let mut close: Vec<(usize, usize, &str)> = self
            .tunes
            .iter()
            .map(|t| {
                let common = t.name.chars().filter(|c| k.contains(*c)).count();
                (common, t.count, t.name.as_str())
            })
            .filter(|x| x.0 > 0)
            .collect();
        close.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
        let names: Vec<&str> = close.iter().take(6).map(|x| x.2).collect();
        if names.is_empty() {
            let top: Vec<&str> = self.tunes.iter().take(6).map(|t| t.name.as_str()).collect();
            format!(
                " (common tunes: {}; `shiren tunes` lists them all)",
                top.join("、")
            )
        } else {
            format!(" (close names: {})", names.join("、"))
        }
    }

    /// The tune and form whose line lengths are those of `text`: of the
    /// forms that fit, the one with the most ci.
    pub fn guess(&self, text: &str) -> Result<(&Tune, &TuneForm), TuneError> {
        let lines = split_lines(text).unwrap_or_default();
        if lines.is_empty() {
            return Err(TuneError::Empty);
        }
        let want = lengths(&lines);
        self.tunes
            .iter()
            .flat_map(|t| t.forms.iter().map(move |f| (t, f)))
            .filter(|(_, f)| f.lines.iter().map(|l| l.len).eq(want.iter().copied()))
            .max_by(|a, b| a.1.count.cmp(&b.1.count).then(b.0.name.cmp(&a.0.name)))
            .ok_or_else(|| TuneError::NoTuneFits {
                got: lens_text(&want),
            })
    }
}

fn lens_text(lens: &[usize]) -> String {
    lens.iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One form from the ci that share its line lengths (at least one).
fn derive_form(lex: &Lexicon, cl: &Cilin, ci: &[Vec<(Vec<char>, char)>]) -> TuneForm {
    let first = &ci[0];
    let n = first.len();
    // Line ends: 。 where most ci close a sentence there.
    let ends: Vec<char> = (0..n)
        .map(|i| {
            let full = ci.iter().filter(|c| c[i].1 == '。').count();
            if 2 * full > ci.len() || i + 1 == n {
                '。'
            } else {
                '，'
            }
        })
        .collect();
    let mut lines: Vec<PatternLine> = (0..n)
        .map(|i| {
            let len = first[i].0.len();
            let tones = (0..len)
                .map(|j| {
                    let (mut ping, mut ze) = (0usize, 0usize);
                    for c in ci {
                        match lex.tone(c[i].0[j]) {
                            Some(Tone::Ping) => ping += 1,
                            Some(Tone::Ze) => ze += 1,
                            _ => {}
                        }
                    }
                    kept_tone(ping, ze)
                })
                .collect();
            PatternLine {
                len,
                end: ends[i],
                tones,
                rhyme: None,
            }
        })
        .collect();
    // Rhyme: which pairs of line ends share a class in most ci.
    let masks: Vec<Vec<u64>> = ci
        .iter()
        .map(|c| {
            c.iter()
                .map(|(l, _)| class_mask(lex, cl, l[l.len() - 1]))
                .collect()
        })
        .collect();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for a in 0..n {
        for b in a + 1..n {
            let (mut both, mut shared) = (0usize, 0usize);
            for m in &masks {
                if m[a] != 0 && m[b] != 0 {
                    both += 1;
                    shared += usize::from(m[a] & m[b] != 0);
                }
            }
            if both > 0 && shared as f64 >= RHYME_SHARE * both as f64 {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut sets: Vec<Tone> = Vec::new();
    let mut set_of_root: HashMap<usize, usize> = HashMap::new();
    let roots: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
    for (line, &r) in lines.iter_mut().zip(&roots) {
        if roots.iter().filter(|&&k| k == r).count() < 2 {
            continue;
        }
        let s = *set_of_root.entry(r).or_insert_with(|| {
            sets.push(Tone::Both);
            sets.len() - 1
        });
        line.rhyme = Some(s);
    }
    // Each set rhymes on the side most of its feet are on.
    for (s, tone) in sets.iter_mut().enumerate() {
        let (mut ping, mut ze) = (0usize, 0usize);
        for c in ci {
            for (i, l) in lines.iter().enumerate() {
                if l.rhyme == Some(s) {
                    match lex.tone(c[i].0[l.len - 1]) {
                        Some(Tone::Ping) => ping += 1,
                        Some(Tone::Ze) => ze += 1,
                        _ => {}
                    }
                }
            }
        }
        *tone = if ping >= ze { Tone::Ping } else { Tone::Ze };
        // A rhyme foot takes its set's tone, whatever the vote at that position said.
        for l in lines.iter_mut().filter(|l| l.rhyme == Some(s)) {
            let last = l.len - 1;
            l.tones[last] = *tone;
        }
    }
    let example = first
        .iter()
        .map(|(l, e)| l.iter().chain(std::iter::once(e)).collect::<String>())
        .collect();
    TuneForm {
        count: ci.len(),
        lines,
        sets,
        example,
    }
}

/// The tone a position keeps, from its counts of level and oblique characters.
fn kept_tone(ping: usize, ze: usize) -> Tone {
    let n = (ping + ze) as f64;
    if n == 0.0 {
        Tone::Both
    } else if ping as f64 >= TONE_MAJORITY * n {
        Tone::Ping
    } else if ze as f64 >= TONE_MAJORITY * n {
        Tone::Ze
    } else {
        Tone::Both
    }
}

impl TuneForm {
    /// The tone line `i`, position `j` must have under `mode` (both from 0):
    /// strict keeps every fixed tone; loose only those at even positions
    /// (2, 4, 6, … counted from 1, as 二四六分明) and at line ends; off none.
    /// `Both` means either.
    pub fn tone_at(&self, mode: super::ToneMode, i: usize, j: usize) -> Tone {
        let Some(l) = self.lines.get(i) else {
            return Tone::Both;
        };
        let t = l.tones.get(j).copied().unwrap_or(Tone::Both);
        match mode {
            super::ToneMode::Strict => t,
            super::ToneMode::Loose if j % 2 == 1 || j + 1 == l.len => t,
            _ => Tone::Both,
        }
    }

    /// Line lengths, e.g. "7 7 7 7 7 7".
    pub fn shape(&self) -> String {
        lens_text(&self.lines.iter().map(|l| l.len).collect::<Vec<_>>())
    }

    /// Whether the set's feet rhyme level (平韵); `None` for a set index out of range.
    pub fn set_tone(&self, s: usize) -> Option<Tone> {
        self.sets.get(s).copied()
    }

    /// 平韵, 仄韵, or 平仄换韵 when the sets differ in tone (换韵 of one
    /// tone shows as several sets of that tone).
    pub fn rhyme_kind(&self) -> &'static str {
        let ping = self.sets.contains(&Tone::Ping);
        let ze = self.sets.contains(&Tone::Ze);
        match (ping, ze, self.sets.len()) {
            (_, _, 0) => "不押韵",
            (true, false, 1) => "平韵",
            (false, true, 1) => "仄韵",
            (true, false, _) => "平韵换韵",
            (false, true, _) => "仄韵换韵",
            _ => "平仄换韵",
        }
    }

    /// The pattern as text, one line per verse: ○ 平, ● 仄, ◐ either, then
    /// the punctuation, then 韵 (and the set's letter when there are several) at a rhyme.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            for t in &l.tones {
                s.push(match t {
                    Tone::Ping => '○',
                    Tone::Ze => '●',
                    Tone::Both => '◐',
                });
            }
            s.push(l.end);
            if let Some(r) = l.rhyme {
                s.push_str(" 韵");
                if self.sets.len() > 1 {
                    s.push(char::from(b'A' + (r % 26) as u8));
                }
                s.push_str(if self.sets[r] == Tone::Ping {
                    "(平)"
                } else {
                    "(仄)"
                });
            }
            s.push('\n');
        }
        s
    }
}

/// One position of a checked ci that breaks the pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Miss {
    /// Line and position, from 0.
    pub line: usize,
    pub pos: usize,
    pub ch: char,
    /// What the pattern wants there: a tone, or (for rhyme) the set's class.
    pub want: String,
}

/// What [`check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CiReport {
    /// Positions with a fixed tone in the pattern and a character of definite tone.
    pub tones_checked: usize,
    /// Of those, the ones whose character fits.
    pub tones_kept: usize,
    pub tone_misses: Vec<Miss>,
    /// Positions the pattern leaves free (either tone) with a character of definite tone.
    pub tones_free: usize,
    /// Rhyme positions, and those whose foot is in its set's class.
    pub rhymes_checked: usize,
    pub rhymes_kept: usize,
    pub rhyme_misses: Vec<Miss>,
    /// The class each rhyme set was found in, by set (`None`: no foot agreed on one).
    pub classes: Vec<Option<String>>,
}

impl CiReport {
    pub fn ok(&self) -> bool {
        self.tone_misses.is_empty() && self.rhyme_misses.is_empty()
    }
}

/// Checks a ci against one form of its tune: each fixed-tone position whose
/// character has a definite tone (a character read both ways fits either;
/// one the lexicon does not know is not counted), and each rhyme position:
/// per rhyme set, the 词林正韵 class on the set's side shared by the most
/// feet is the set's; a foot outside it (or unknown to the lexicon) misses.
pub fn check(
    lex: &Lexicon,
    cl: &Cilin,
    name: &str,
    form: &TuneForm,
    text: &str,
) -> Result<CiReport, TuneError> {
    let lines = split_lines(text).unwrap_or_default();
    if lines.is_empty() {
        return Err(TuneError::Empty);
    }
    let got = lengths(&lines);
    if !form.lines.iter().map(|l| l.len).eq(got.iter().copied()) {
        return Err(TuneError::Shape {
            name: name.to_string(),
            got: lens_text(&got),
            want: form.shape(),
        });
    }
    let mut r = CiReport::default();
    for (i, ((l, _), p)) in lines.iter().zip(&form.lines).enumerate() {
        for (j, (&c, &want)) in l.iter().zip(&p.tones).enumerate() {
            let Some(t) = lex.tone(c) else { continue };
            if t == Tone::Both {
                continue;
            }
            if want == Tone::Both {
                r.tones_free += 1;
                continue;
            }
            r.tones_checked += 1;
            if t == want {
                r.tones_kept += 1;
            } else {
                r.tone_misses.push(Miss {
                    line: i,
                    pos: j,
                    ch: c,
                    want: want.mark().to_string(),
                });
            }
        }
    }
    for (s, &tone) in form.sets.iter().enumerate() {
        let feet: Vec<(usize, char, u64)> = lines
            .iter()
            .zip(&form.lines)
            .enumerate()
            .filter(|(_, (_, p))| p.rhyme == Some(s))
            .map(|(i, (l, _))| {
                let c = l.0[l.0.len() - 1];
                (i, c, class_mask(lex, cl, c))
            })
            .collect();
        let best = (0..NUM_CLASSES)
            .filter(|&k| Class::from_index(k).tone() == tone)
            .map(|k| (feet.iter().filter(|f| f.2 >> k & 1 == 1).count(), k))
            .filter(|&(n, _)| n > 0)
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        r.classes
            .push(best.map(|(_, k)| Class::from_index(k).name()));
        for &(i, c, m) in &feet {
            r.rhymes_checked += 1;
            match best {
                Some((_, k)) if m >> k & 1 == 1 => r.rhymes_kept += 1,
                _ => r.rhyme_misses.push(Miss {
                    line: i,
                    pos: lines[i].0.len() - 1,
                    ch: c,
                    want: best.map_or_else(
                        || format!("{}韵", tone.mark()),
                        |(_, k)| Class::from_index(k).name(),
                    ),
                }),
            }
        }
    }
    Ok(r)
}

/// Acceptance of held-out ci by patterns derived without them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HeldOut {
    /// Tunes measured.
    pub tunes: usize,
    /// Held-out ci, and those whose line lengths fit one of their tune's forms.
    pub ci: usize,
    pub fitted: usize,
    pub tones_checked: usize,
    pub tones_kept: usize,
    /// Positions the patterns leave free (they accept either tone).
    pub tones_free: usize,
    pub rhymes_checked: usize,
    pub rhymes_kept: usize,
}

impl HeldOut {
    /// Of the positions the patterns fix, the share whose character keeps the tone.
    pub fn tone_rate(&self) -> f64 {
        self.tones_kept as f64 / self.tones_checked.max(1) as f64
    }
    /// Of all positions (free ones accept any tone), the share accepted.
    pub fn position_rate(&self) -> f64 {
        (self.tones_kept + self.tones_free) as f64
            / (self.tones_checked + self.tones_free).max(1) as f64
    }
    pub fn rhyme_rate(&self) -> f64 {
        self.rhymes_kept as f64 / self.rhymes_checked.max(1) as f64
    }
}

/// Derives patterns from all but every `every`-th ci of each tune (counted
/// in the order given), then checks the held-out ones of the `top` most
/// common tunes against the form whose line lengths they have. Every
/// position of every held-out ci counts: a miss is a miss even where the
/// poet wrote a known variation the pattern calls fixed.
/// The split groups are split by the rhymes of the same ci the patterns come
/// from (see [`Cipu::build`]), never by held-out ones.
pub fn held_out<'t>(
    lex: &Lexicon,
    ci: &[(&'t str, &'t str)],
    every: usize,
    top: usize,
) -> (Cipu, HeldOut) {
    let every = every.max(2);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut train = Vec::new();
    let mut test = Vec::new();
    for &(tune, text) in ci {
        let k = seen.entry(key(tune)).or_default();
        *k += 1;
        if *k % every == 0 {
            test.push((tune, text));
        } else {
            train.push((tune, text));
        }
    }
    let (cl, cipu) = Cipu::build(lex, train);
    let cl = &cl;
    let mut h = HeldOut::default();
    let top: Vec<&Tune> = cipu.tunes.iter().take(top).collect();
    h.tunes = top.len();
    for (tune, text) in test {
        let k = key(tune);
        let Some(t) = top.iter().find(|t| t.name == k) else {
            continue;
        };
        h.ci += 1;
        let Some(lines) = split_lines(text) else {
            continue;
        };
        let lens = lengths(&lines);
        let Some(form) = t
            .forms
            .iter()
            .find(|f| f.lines.iter().map(|l| l.len).eq(lens.iter().copied()))
        else {
            continue;
        };
        let Ok(r) = check(lex, cl, &t.name, form, text) else {
            continue;
        };
        h.fitted += 1;
        h.tones_checked += r.tones_checked;
        h.tones_kept += r.tones_kept;
        h.tones_free += r.tones_free;
        h.rhymes_checked += r.rhymes_checked;
        h.rhymes_kept += r.rhymes_kept;
    }
    (cipu, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Level and oblique characters of a few groups, with their real 平水韵
    /// groups (so the 词林正韵 mapping applies).
    pub fn lex() -> Lexicon {
        Lexicon::from_groups(&[
            ("上平声十灰", Tone::Ping, "杯台回来哉徊开"),
            ("上平声一东", Tone::Ping, "东风红中空"),
            ("下平声一先", Tone::Ping, "天年前边烟"),
            ("上平声十四寒", Tone::Ping, "寒看"),
            ("上声四纸", Tone::Ze, "水里"),
            ("去声四寘", Tone::Ze, "醉泪地"),
            ("去声十五翰", Tone::Ze, "看"),
            ("入声六月", Tone::Ze, "月雪"),
            ("平", Tone::Ping, "新春花山人无相时阳归香园高明"),
            ("仄", Tone::Ze, "一曲酒去气旧下几夕落小径独白日"),
        ])
    }

    /// A made-up tune 甲 of 7-7-7 lines rhyming lines 1, 2, 3 level (十灰,
    /// which is 第三部 and 第五部, or 一东, 第一部), five ci of it (the first
    /// is 晏殊's), one ci of another shape, one damaged, one of no tune.
    /// 词, 亭 and 西 are unknown to the lexicon.
    fn ci_set() -> Vec<(&'static str, &'static str)> {
        vec![
            ("甲", "一曲新词酒一杯，去年天气旧亭台。夕阳西下几时回。"),
            ("甲", "春水新花酒一杯，春山落日旧时来。花山小径几时回。"),
            ("甲", "白日春花酒一东，花山落日旧时风。春山小径独时红。"),
            ("甲", "一曲春花酒一中，花山落日旧时空。山阳小下几时东。"),
            ("甲", "白日新词酒一杯，春山落日旧亭开。春阳小下几时回。"),
            ("甲", "春花一曲，日落月明。"),
            ("甲", "一□新词酒一杯，去年天气旧亭台。夕阳西下几时回。"),
            ("失调名", "一曲新词酒一杯，去年天气旧亭台。夕阳西下几时回。"),
        ]
    }

    /// The set `copies` times over (MIN_CI is 20).
    fn derive(copies: usize) -> Cipu {
        let set = ci_set();
        let many: Vec<(&str, &str)> = std::iter::repeat_n(set.iter().copied(), copies)
            .flatten()
            .collect();
        Cipu::derive(&lex(), &Cilin::new(&lex()), many)
    }

    #[test]
    fn lines_split_on_punctuation_and_drop_notes_and_damage() {
        let l = split_lines("明月几时有？把酒问青天。转朱阁、低绮户（一作窗），照无眠").unwrap();
        let lens: Vec<(usize, char)> = l.iter().map(|(c, e)| (c.len(), *e)).collect();
        assert_eq!(
            lens,
            vec![(5, '。'), (5, '。'), (3, '，'), (3, '，'), (3, '。')]
        );
        assert!(split_lines("一□新词，去年。").is_none());
        assert_eq!(split_lines("").unwrap(), vec![]);
    }

    #[test]
    fn tones_rhymes_and_variants_are_derived_from_the_ci() {
        let cipu = derive(5);
        assert_eq!(cipu.len(), 1, "失调名 is skipped");
        let t = cipu.tune("甲").unwrap();
        assert_eq!(t.count, 5 * 6, "the damaged ci is not counted");
        // 5 of 30 ci have the other shape: ≥ 5 ci and ≥ 5%, a variant.
        assert_eq!(t.forms.len(), 2);
        let f = &t.forms[0];
        assert_eq!((f.count, f.shape().as_str()), (25, "7 7 7"));
        // By hand: line 1 position 1 is 一 春 白 一 白, 4 of 5 oblique (80%
        // < 85%): either; line 1 position 4 is 词 花 花 花 词, the three
        // known all level: 平; line 2 position 3 is 天 落 落 落 落: either;
        // line 3 position 3 is 西 小 小 小 小: 仄.
        assert_eq!(
            f.render(),
            "◐●○○●●○， 韵(平)\n◐○◐●●○○。 韵(平)\n◐○●●●○○。 韵(平)\n"
        );
        assert_eq!(f.sets, vec![Tone::Ping]);
        assert_eq!(f.rhyme_kind(), "平韵");
        assert_eq!(t.forms[1].shape(), "4 4");
        let e = cipu.form("甲", 3).unwrap_err().to_string();
        assert!(e.contains("no form 3") && e.contains("pick 1 to 2"), "{e}");
        assert!(cipu.form("甲", 0).is_err());
        let e = cipu.tune("乙丙").unwrap_err().to_string();
        assert!(e.contains("unknown tune `乙丙`") && e.contains("甲"), "{e}");
        // 18 ci: too few for a pattern.
        assert!(derive(3).is_empty());
    }

    #[test]
    fn majority_decides_a_kept_tone() {
        assert_eq!(kept_tone(17, 3), Tone::Ping, "85%");
        assert_eq!(kept_tone(16, 4), Tone::Both, "80%");
        assert_eq!(kept_tone(0, 9), Tone::Ze);
        assert_eq!(kept_tone(0, 0), Tone::Both);
    }

    #[test]
    fn a_changing_rhyme_gives_two_sets() {
        // 仄 on lines 1–2 (月 雪: 第十八部入), then 平 on 3–4 (天 年: 第七部平).
        let ci: Vec<(&str, &str)> = (0..20)
            .map(|k| {
                (
                    "乙",
                    if k % 2 == 0 {
                        "花山明月，春花白雪。花山一天，春山小年。"
                    } else {
                        "春山明雪，花山白月。春花一年，花山小前。"
                    },
                )
            })
            .collect();
        let cipu = Cipu::derive(&lex(), &Cilin::new(&lex()), ci);
        let f = &cipu.tune("乙").unwrap().forms[0];
        assert_eq!(f.sets, vec![Tone::Ze, Tone::Ping]);
        assert_eq!(f.rhyme_kind(), "平仄换韵");
        let sets: Vec<Option<usize>> = f.lines.iter().map(|l| l.rhyme).collect();
        assert_eq!(sets, vec![Some(0), Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn a_ci_is_checked_against_its_form_and_tunes_are_guessed() {
        let lx = lex();
        let cl = Cilin::new(&lx);
        let cipu = derive(5);
        let (t, f) = cipu.form("甲", 1).unwrap();
        let good = check(
            &lx,
            &cl,
            &t.name,
            f,
            "白日新词酒一杯，春山落日旧亭开。春阳小下几时回。",
        )
        .unwrap();
        assert!(good.ok(), "{good:?}");
        assert_eq!(good.rhymes_checked, 3);
        assert_eq!(good.classes, vec![Some("第三部平".into())]);
        // 春 at line 1 position 2 (wants 仄), and 泪 (oblique) at a level rhyme.
        let bad = check(
            &lx,
            &cl,
            &t.name,
            f,
            "白春新词酒一杯，春山落日旧亭开。春阳小下几时泪。",
        )
        .unwrap();
        assert_eq!(
            bad.tone_misses
                .iter()
                .map(|m| (m.line, m.pos, m.ch))
                .collect::<Vec<_>>(),
            vec![(0, 1, '春'), (2, 6, '泪')]
        );
        assert_eq!(bad.rhyme_misses.len(), 1);
        assert_eq!(bad.rhyme_misses[0].ch, '泪');
        // 先 is level but of 第七部: the rhyme misses, the tone does not.
        let other = check(
            &lx,
            &cl,
            &t.name,
            f,
            "白日新词酒一杯，春山落日旧亭开。春阳小下几时天。",
        )
        .unwrap();
        assert!(other.tone_misses.is_empty() && other.rhyme_misses.len() == 1);
        let e = check(&lx, &cl, &t.name, f, "白日新词酒一杯，春山。").unwrap_err();
        assert!(
            e.to_string()
                .contains("lines have 7 2 characters; 甲 has lines of 7 7 7"),
            "{e}"
        );
        assert_eq!(cipu.guess("春花一曲，日落月明。").unwrap().1.shape(), "4 4");
        assert!(matches!(
            cipu.guess("春花，日落。"),
            Err(TuneError::NoTuneFits { .. })
        ));
        assert!(matches!(cipu.guess("，。"), Err(TuneError::Empty)));
    }

    #[test]
    fn aliases_and_traditional_names_find_a_tune() {
        let ci: Vec<(&str, &str)> = (0..20)
            .map(|_| ("望江南・忆江南", "春花明月，春花白雪。"))
            .collect();
        let cipu = Cipu::derive(&lex(), &Cilin::new(&lex()), ci);
        assert!(cipu.tune("忆江南").is_ok());
        assert!(cipu.tune("憶江南").is_ok());
        assert!(cipu.tune("望江南・忆江南").is_ok());
        assert!(cipu.tune("江南").is_err());
    }

    #[test]
    fn held_out_ci_are_checked_against_patterns_derived_without_them() {
        let set = ci_set();
        let many: Vec<(&str, &str)> = std::iter::repeat_n(set.iter().copied(), 5)
            .flatten()
            .collect();
        let (cipu, h) = held_out(&lex(), &many, 5, 20);
        assert_eq!(cipu.len(), 1);
        // Every 5th ci of 甲 (30 undamaged + 5 damaged = 35 → 7 held out).
        assert_eq!((h.tunes, h.ci), (1, 7));
        assert!(
            h.fitted >= 5 && h.tone_rate() > 0.9 && h.rhyme_rate() > 0.9,
            "{h:?}"
        );
    }
}
