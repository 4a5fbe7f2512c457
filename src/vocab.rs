//! The character vocabulary: ids for characters, ordered by frequency.
//!
//! Ids 0–3 are reserved: PAD (padding, masked out of the loss), BEGIN (fed as
//! the first input of every poem), END (the last target) and UNK (a character
//! the vocabulary does not hold). Characters follow from id 4 in descending
//! frequency, ties by code point, so the same texts always give the same ids.
//! A vocabulary may end with *form tags*: one control token per [`Form`]
//! that training puts after BEGIN to tell the model the form it is reading,
//! and writing feeds to ask for one. A tag is looked up by its `Form`, and
//! `vocab.json` names it by [`Form::name_zh`] (`五律`). A tag is never a
//! character: `char` and `decode` skip it like the specials.
//! The vocabulary is saved as JSON beside a model's weights and loaded back
//! identically: the original project rebuilt it from the data file at
//! generation time and broke whenever the file changed. It knows nothing of
//! poems, batches or models.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;

use crate::corpus::Form;

const FORMAT: &str = "shiren-vocab";
const VERSION: u32 = 1;
const SPECIALS: [&str; 4] = ["<pad>", "<begin>", "<end>", "<unk>"];

/// Errors of reading a vocabulary file.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    #[error("not valid JSON at line {line} column {column}: {msg}")]
    Json {
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("not a shiren vocabulary (format `{0}`, expected `{FORMAT}`)")]
    Format(String),
    #[error("vocabulary version {0} is not supported (this shiren reads version {VERSION}; retrain or upgrade)")]
    Version(u32),
    #[error("entry {index} is `{entry}`, not exactly one character")]
    NotAChar { index: usize, entry: String },
    #[error("character `{0}` appears twice")]
    Duplicate(char),
    #[error("tag `{0}` names no form (tags are 五绝, 七绝, 五律, 七律)")]
    UnknownTag(String),
    #[error("tag `{0}` appears twice")]
    DuplicateTag(String),
    #[error("{chars} characters but {counts} counts")]
    CountsLength { chars: usize, counts: usize },
}

/// Characters ↔ ids. See the module doc for the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    /// chars[i] has id i + 4.
    chars: Vec<char>,
    /// How often each char was seen when the vocabulary was built.
    counts: Vec<u64>,
    min_count: usize,
    index: HashMap<char, u32>,
    /// The forms that have a tag; tag k has id 4 + chars.len() + k.
    tags: Vec<Form>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabFile {
    format: String,
    version: u32,
    specials: Vec<String>,
    min_count: usize,
    chars: Vec<String>,
    counts: Vec<u64>,
    /// Absent in files written before tags existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

impl Vocab {
    pub const PAD: u32 = 0;
    pub const BEGIN: u32 = 1;
    pub const END: u32 = 2;
    pub const UNK: u32 = 3;
    /// Ids below this are the specials.
    pub const NUM_SPECIAL: u32 = 4;

    /// Counts the characters of `texts` and keeps those seen at least `min_count` times.
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>, min_count: usize) -> Vocab {
        let mut freq: HashMap<char, u64> = HashMap::new();
        for t in texts {
            for c in t.chars() {
                *freq.entry(c).or_insert(0) += 1;
            }
        }
        let mut by_freq: Vec<(char, u64)> = freq
            .into_iter()
            .filter(|&(_, n)| n >= min_count.max(1) as u64)
            .collect();
        by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let (chars, counts) = by_freq.into_iter().unzip();
        Vocab::from_parts(chars, counts, min_count)
    }

    fn from_parts(chars: Vec<char>, counts: Vec<u64>, min_count: usize) -> Vocab {
        let index = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32 + Self::NUM_SPECIAL))
            .collect();
        Vocab {
            chars,
            counts,
            min_count,
            index,
            tags: Vec::new(),
        }
    }

    /// The same vocabulary with a tag for each of these forms after the
    /// characters (replacing any it had).
    pub fn with_tags(mut self, tags: &[Form]) -> Vocab {
        self.tags = tags.to_vec();
        self
    }

    /// The id of `form`'s tag, if this vocabulary has one.
    pub fn tag(&self, form: Form) -> Option<u32> {
        let k = self.tags.iter().position(|&t| t == form)?;
        Some((Self::NUM_SPECIAL as usize + self.chars.len() + k) as u32)
    }

    /// The forms that have a tag, in id order.
    pub fn tags(&self) -> &[Form] {
        &self.tags
    }

    /// Ids of the punctuation that ends a line of verse (，。！？；) in this vocabulary.
    pub fn line_ends(&self) -> Vec<u32> {
        (Self::NUM_SPECIAL..)
            .zip(&self.chars)
            .filter(|&(_, &c)| crate::corpus::clean::is_clause_end(c))
            .map(|(id, _)| id)
            .collect()
    }

    /// Ids that are not characters of a line: PAD, BEGIN, END and the tags.
    pub fn silent(&self) -> Vec<u32> {
        [Self::PAD, Self::BEGIN, Self::END]
            .into_iter()
            .chain(self.tag_ids())
            .collect()
    }

    /// Ids of the tags, in order.
    pub fn tag_ids(&self) -> Vec<u32> {
        let first = Self::NUM_SPECIAL + self.chars.len() as u32;
        (first..first + self.tags.len() as u32).collect()
    }

    /// Number of ids, specials and tags included (the model's vocabulary size).
    pub fn len(&self) -> usize {
        self.chars.len() + Self::NUM_SPECIAL as usize + self.tags.len()
    }

    /// Never true: the specials are always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The characters, in id order (id 4 first).
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// How often the character with `id` was seen at build time (0 for specials).
    pub fn count(&self, id: u32) -> u64 {
        id.checked_sub(Self::NUM_SPECIAL)
            .and_then(|i| self.counts.get(i as usize).copied())
            .unwrap_or(0)
    }

    pub fn min_count(&self) -> usize {
        self.min_count
    }

    pub fn id(&self, c: char) -> Option<u32> {
        self.index.get(&c).copied()
    }

    /// The character of an id; `None` for the specials and out-of-range ids.
    pub fn char(&self, id: u32) -> Option<char> {
        id.checked_sub(Self::NUM_SPECIAL)
            .and_then(|i| self.chars.get(i as usize).copied())
    }

    pub fn is_special(id: u32) -> bool {
        id < Self::NUM_SPECIAL
    }

    /// Ids of the text's characters; unknown ones become UNK. No BEGIN or END.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.chars()
            .map(|c| self.id(c).unwrap_or(Self::UNK))
            .collect()
    }

    /// The text of the ids, skipping specials (and ids beyond the vocabulary).
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter().filter_map(|&id| self.char(id)).collect()
    }

    pub fn to_json(&self) -> String {
        let file = VocabFile {
            format: FORMAT.to_string(),
            version: VERSION,
            specials: SPECIALS.iter().map(|s| s.to_string()).collect(),
            min_count: self.min_count,
            chars: self.chars.iter().map(|c| c.to_string()).collect(),
            counts: self.counts.clone(),
            tags: self.tags.iter().map(|f| f.name_zh().to_string()).collect(),
        };
        serde_json::to_string(&file).expect("a vocabulary always serialises")
    }

    pub fn from_json(s: &str) -> Result<Vocab, VocabError> {
        let file: VocabFile = serde_json::from_str(s).map_err(|e| VocabError::Json {
            line: e.line(),
            column: e.column(),
            msg: crate::corpus::read::json_message(&e),
        })?;
        if file.format != FORMAT {
            return Err(VocabError::Format(file.format));
        }
        if file.version != VERSION {
            return Err(VocabError::Version(file.version));
        }
        if file.chars.len() != file.counts.len() {
            return Err(VocabError::CountsLength {
                chars: file.chars.len(),
                counts: file.counts.len(),
            });
        }
        let mut chars = Vec::with_capacity(file.chars.len());
        let mut seen = std::collections::HashSet::new();
        for (index, entry) in file.chars.iter().enumerate() {
            let mut it = entry.chars();
            let (Some(c), None) = (it.next(), it.next()) else {
                return Err(VocabError::NotAChar {
                    index,
                    entry: entry.clone(),
                });
            };
            if !seen.insert(c) {
                return Err(VocabError::Duplicate(c));
            }
            chars.push(c);
        }
        let mut tags = Vec::with_capacity(file.tags.len());
        for name in &file.tags {
            let form = match name.parse::<Form>() {
                Ok(f) if f != Form::Free => f,
                _ => return Err(VocabError::UnknownTag(name.clone())),
            };
            if tags.contains(&form) {
                return Err(VocabError::DuplicateTag(name.clone()));
            }
            tags.push(form);
        }
        Ok(Vocab::from_parts(chars, file.counts, file.min_count).with_tags(&tags))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        crate::cache::write_atomic(path, self.to_json().as_bytes())?;
        Ok(())
    }

    pub fn load(path: &Path) -> anyhow::Result<Vocab> {
        let s = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the vocabulary", path.display()))?;
        Vocab::from_json(&s).map_err(|e| {
            anyhow::anyhow!("{}: {e} (the vocabulary file is damaged; copy it again from the checkpoint or retrain)", path.display())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_characters_are_never_characters_and_round_trip() {
        let v = Vocab::build(["山山水"], 1).with_tags(&[Form::Wujue, Form::Qijue]);
        assert_eq!(v.len(), 4 + 2 + 2);
        assert_eq!(v.tag(Form::Wujue), Some(6));
        assert_eq!(v.tag(Form::Qijue), Some(7));
        assert_eq!(v.tag(Form::Wulv), None);
        // The file names each tag by its form's Chinese name.
        assert!(v.to_json().contains(r#""tags":["五绝","七绝"]"#));
        assert_eq!(v.char(6), None);
        assert_eq!(v.decode(&[6, 4, 5]), "山水");
        let back = Vocab::from_json(&v.to_json()).unwrap();
        assert_eq!(back, v);
        // A file from before tags has none.
        let plain = Vocab::build(["山山水"], 1);
        assert!(!plain.to_json().contains("tags"));
        assert_eq!(Vocab::from_json(&plain.to_json()).unwrap().tags().len(), 0);
    }

    #[test]
    fn a_tag_that_names_no_form_or_comes_twice_is_refused() {
        let json = Vocab::build(["山山水"], 1)
            .with_tags(&[Form::Wujue])
            .to_json();
        for (tags, want) in [
            (r#"["山"]"#, "names no form"),
            (r#"["自由"]"#, "names no form"),
            (r#"["五绝","五絕"]"#, "appears twice"),
        ] {
            let bad = json.replace(r#"["五绝"]"#, tags);
            let err = Vocab::from_json(&bad).unwrap_err().to_string();
            assert!(err.contains(want), "{tags}: {err}");
        }
    }

    #[test]
    fn line_ends_are_the_punctuation_it_has_and_silent_ids_the_non_characters() {
        // 山 ×3, ， ×2, 。 ×1: ids 4, 5, 6; no ！？；
        let v = Vocab::build(["山，山，山。"], 1).with_tags(&[Form::Wujue]);
        assert_eq!(v.line_ends(), [5, 6]);
        assert_eq!(v.silent(), [Vocab::PAD, Vocab::BEGIN, Vocab::END, 7]);
        assert!(!v.silent().contains(&Vocab::UNK), "UNK is a character");
        assert_eq!(v.tag_ids(), [7]);
    }

    #[test]
    fn ids_follow_frequency_after_the_specials() {
        let v = Vocab::build(["山山山水水月", "月水山"], 1);
        assert_eq!(v.len(), 4 + 3);
        assert_eq!(v.id('山'), Some(4));
        // 山 4 times, 水 3, 月 2.
        assert_eq!(v.id('水'), Some(5));
        assert_eq!(v.id('月'), Some(6));
        assert_eq!(v.char(4), Some('山'));
        assert_eq!(v.char(Vocab::PAD), None);
        assert_eq!(v.char(99), None);
        assert_eq!(v.count(4), 4);
    }

    #[test]
    fn ties_are_broken_by_code_point() {
        let a = Vocab::build(["乙甲"], 1);
        let b = Vocab::build(["甲乙"], 1);
        assert_eq!(a, b);
        assert_eq!(a.char(4), Some('乙')); // U+4E59 before 甲 U+7532
    }

    #[test]
    fn min_count_drops_rare_chars_to_unk() {
        let v = Vocab::build(["山山水"], 2);
        assert_eq!(v.len(), 5);
        assert_eq!(v.encode("山水"), vec![4, Vocab::UNK]);
        assert_eq!(
            v.decode(&[Vocab::BEGIN, 4, Vocab::UNK, 4, Vocab::END]),
            "山山"
        );
        assert!(Vocab::is_special(Vocab::UNK) && !Vocab::is_special(4));
    }

    #[test]
    fn json_round_trip_is_identical() {
        let v = Vocab::build(["白日依山尽，黄河入海流。\n"], 1);
        let json = v.to_json();
        let back = Vocab::from_json(&json).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.to_json(), json);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vocab.json");
        v.save(&p).unwrap();
        assert_eq!(Vocab::load(&p).unwrap(), v);
    }

    #[test]
    fn bad_files_are_named_errors() {
        assert!(matches!(
            Vocab::from_json("{"),
            Err(VocabError::Json { .. })
        ));
        let v = Vocab::build(["山水"], 1).to_json();
        let dup = v.replace("\"水\"", "\"山\"");
        assert!(matches!(
            Vocab::from_json(&dup),
            Err(VocabError::Duplicate('山'))
        ));
        let two = v.replace("\"水\"", "\"水水\"");
        assert!(matches!(
            Vocab::from_json(&two),
            Err(VocabError::NotAChar { index: 1, .. })
        ));
        let ver = v.replace("\"version\":1", "\"version\":9");
        assert!(matches!(
            Vocab::from_json(&ver),
            Err(VocabError::Version(9))
        ));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vocab.json");
        std::fs::write(&p, "not json").unwrap();
        let msg = Vocab::load(&p).unwrap_err().to_string();
        assert!(
            msg.contains("vocab.json") && msg.contains("line 1"),
            "{msg}"
        );
    }
}
