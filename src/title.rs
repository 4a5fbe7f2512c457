//! Titles: what a poem is about, read by the model before the poem.
//!
//! A model trained with titles (`shiren train --titles`) reads
//!
//! ```text
//! BEGIN 送 友 人 BEGIN [form tag] 青 山 横 北 郭 ， … END
//! ```
//!
//! the title's characters between two BEGINs, then the poem as before. The
//! second BEGIN resets the line and column rows (see
//! [`crate::model::Positions::resets`]), so the poem's first line is counted
//! from 0 whatever the title's length; the loss is taken on the poem alone
//! (see [`crate::batch::Batch::from_seqs`]). A share of training poems keeps
//! no title ([`TITLELESS_PERCENT`]), so that a bare BEGIN still means "any
//! poem" and writing without a title stays as good as before.
//!
//! The corpus's titles need cleaning before they say what a poem is about:
//! about one Tang title in seven carries a count (`芙蓉樓送辛漸二首 一`: 二首, and
//! the poem's number after a space), some a note in brackets, and a few are
//! long official titles (`奉和聖製從蓬萊向興慶閣道中留春雨中春望之作應制`).
//! [`clean`] drops the counts and numbers, keeps a sub-title (`江頭四詠
//! 丁香` → `江頭四詠丁香`), keeps Han characters only, and gives no title
//! for lost ones (失題, 句) and for those still over [`MAX_TITLE`]
//! characters; `shiren corpus stats` prints what it did to a corpus.

use crate::corpus::split::text_hash;
use crate::vocab::Vocab;

/// The most characters a title may have, in training and when writing.
pub const MAX_TITLE: usize = 16;

/// Percent of training poems read without their title (chosen by a hash of the text).
pub const TITLELESS_PERCENT: u64 = 20;

/// Chinese numerals, as poem numbers and counts are written.
const NUMERALS: &[char] = &[
    '一', '二', '三', '四', '五', '六', '七', '八', '九', '十', '百', '千', '〇', '○', '零', '两',
    '兩',
];

/// Titles that say the real one is lost, or that the text is a fragment.
const NO_TITLE: &[&str] = &["失题", "失題", "句", "残句", "殘句", "题", "題", "诗", "詩"];

fn is_han(c: char) -> bool {
    crate::prosody::is_han(c) && !matches!(c, '○' | '〇')
}

/// What [`clean`] did to one title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleaned {
    /// Kept as it was (Han characters only).
    Kept,
    /// Kept after a count, number, note or mark was removed.
    Trimmed,
    /// No title: empty, lost (失題), a fragment (句) or a number alone.
    Lost,
    /// No title: still over [`MAX_TITLE`] characters after trimming.
    TooLong,
}

/// The title a poem is read with, from its corpus title (already in the
/// chosen script, see [`crate::corpus::clean::clean_title`]).
pub fn clean(raw: &str) -> Option<String> {
    clean_how(raw).0
}

/// [`clean`] and what it did.
pub fn clean_how(raw: &str) -> (Option<String>, Cleaned) {
    // Brackets hold notes (（在宣州）, （題擬）): drop them with their content.
    let mut text = String::with_capacity(raw.len());
    let mut depth = 0usize;
    for c in raw.chars() {
        match c {
            '（' | '(' | '〔' | '[' | '【' => depth += 1,
            '）' | ')' | '〕' | ']' | '】' => depth = depth.saturating_sub(1),
            _ if depth == 0 => text.push(c),
            _ => {}
        }
    }
    // After a space comes the poem's number (`宮詞百首 八十三`) or a sub-title
    // (`江頭四詠 丁香`); a number is dropped, a sub-title kept.
    let mut parts: Vec<&str> = text.split_whitespace().collect();
    parts.retain(|p| !is_number(p));
    let mut title = String::new();
    for p in parts {
        title.push_str(&strip_counts(p));
    }
    let title: String = title.chars().filter(|&c| is_han(c)).collect();
    let how = if title.is_empty() || NO_TITLE.contains(&title.as_str()) {
        return (None, Cleaned::Lost);
    } else if title == raw {
        Cleaned::Kept
    } else {
        Cleaned::Trimmed
    };
    if title.chars().count() > MAX_TITLE {
        return (None, Cleaned::TooLong);
    }
    (Some(title), how)
}

/// Whether `s` is a number alone: 十一, 第三, 其二, 之一.
fn is_number(s: &str) -> bool {
    let s = s
        .strip_prefix('第')
        .or_else(|| s.strip_prefix('其'))
        .or_else(|| s.strip_prefix('之'))
        .unwrap_or(s);
    let s = s
        .strip_suffix('首')
        .or_else(|| s.strip_suffix('章'))
        .unwrap_or(s);
    !s.is_empty() && s.chars().all(|c| NUMERALS.contains(&c))
}

/// `s` without counts: 二首, 十首, 其二, 并序.
fn strip_counts(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut k = 0;
    while k < chars.len() {
        // N首 (and N章): numerals followed by 首
        let run = chars[k..]
            .iter()
            .take_while(|c| NUMERALS.contains(c))
            .count();
        if run > 0 && matches!(chars.get(k + run), Some('首')) {
            k += run + 1;
            continue;
        }
        // 其N at the end
        if chars[k] == '其' && k + 1 < chars.len() {
            let tail = &chars[k + 1..];
            if tail.iter().all(|c| NUMERALS.contains(c)) {
                break;
            }
        }
        // 并序 / 並序 / 并引 at the end
        if matches!(chars[k], '并' | '並')
            && k + 2 == chars.len()
            && matches!(chars[k + 1], '序' | '引')
        {
            break;
        }
        out.push(chars[k]);
        k += 1;
    }
    out
}

/// Whether a training poem is read without its title: [`TITLELESS_PERCENT`]
/// of them, by digits of the text's hash that neither the split nor the form
/// tags use.
pub fn untitled(text: &str) -> bool {
    (text_hash(text) >> 32) / 100 % 100 < TITLELESS_PERCENT
}

/// Whether a training poem is read without its title in epoch `epoch`, when
/// the untitled share is drawn afresh each epoch
/// ([`TrainConfig::untitled_each_epoch`](crate::train::TrainConfig::untitled_each_epoch)):
/// [`TITLELESS_PERCENT`] of the poems in each epoch, a different set each time, so
/// that every poem also teaches the model to write without a title. `hash` is the
/// poem's [`text_hash`].
pub fn untitled_in_epoch(hash: u64, epoch: u64) -> bool {
    crate::rng::Rng::new(hash)
        .fork(0x717E_0000 ^ epoch)
        .below(100)
        < TITLELESS_PERCENT as usize
}

/// The ids read before the poem: the title's characters and the BEGIN that
/// closes them (the batch puts the first BEGIN); nothing for no title.
/// Characters the vocabulary lacks are read as UNK.
pub fn prefix(vocab: &Vocab, title: Option<&str>) -> Vec<u32> {
    match title {
        Some(t) if !t.is_empty() => {
            let mut ids = vocab.encode(t);
            ids.push(Vocab::BEGIN);
            ids
        }
        _ => Vec::new(),
    }
}

/// How many ids of an encoded sequence are title (the title and its closing
/// BEGIN); 0 for a sequence without one. Their targets are not scored.
pub fn prefix_len(seq: &[u32]) -> usize {
    seq.iter()
        .position(|&id| id == Vocab::BEGIN)
        .map_or(0, |k| k + 1)
}

/// What [`clean`] did to a corpus's titles, for `shiren corpus stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub kept: usize,
    pub trimmed: usize,
    pub lost: usize,
    pub too_long: usize,
}

impl Stats {
    pub fn of<'a>(titles: impl IntoIterator<Item = &'a str>) -> Stats {
        let mut s = Stats::default();
        for t in titles {
            match clean_how(t).1 {
                Cleaned::Kept => s.kept += 1,
                Cleaned::Trimmed => s.trimmed += 1,
                Cleaned::Lost => s.lost += 1,
                Cleaned::TooLong => s.too_long += 1,
            }
        }
        s
    }

    pub fn total(&self) -> usize {
        self.kept + self.trimmed + self.lost + self.too_long
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.total().max(1) as f64;
        let pct = |k: usize| 100.0 * k as f64 / n;
        write!(
            f,
            "titles: {} kept as they were ({:.1}%), {} trimmed of counts, numbers and notes ({:.1}%), {} lost or fragments ({:.1}%), {} over {MAX_TITLE} characters ({:.1}%); the last two are read without a title",
            self.kept,
            pct(self.kept),
            self.trimmed,
            pct(self.trimmed),
            self.lost,
            pct(self.lost),
            self.too_long,
            pct(self.too_long)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_numbers_and_notes_go_and_sub_titles_stay() {
        let cases = [
            ("送友人", Some("送友人")),
            ("芙蓉楼送辛渐二首 一", Some("芙蓉楼送辛渐")),
            ("宫词百首 八十三", Some("宫词")),
            ("江头四咏 丁香", Some("江头四咏丁香")),
            ("题开元寺水阁（在宣州）", Some("题开元寺水阁")),
            ("胡笳十八拍 第十五拍", Some("胡笳十八拍第十五拍")),
            ("秋兴八首 其一", Some("秋兴")),
            ("自京赴奉先县咏怀五百字并序", Some("自京赴奉先县咏怀五百字")),
            ("失题", None),
            ("句", None),
            ("诗 十九", None),
            ("", None),
            ("奉和圣制从蓬莱向兴庆阁道中留春雨中春望之作应制", None),
        ];
        for (raw, want) in cases {
            assert_eq!(clean(raw).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn stats_count_each_outcome() {
        let s = Stats::of(["送友人", "宫词百首 八", "失题", &"长".repeat(MAX_TITLE + 1)]);
        assert_eq!(
            s,
            Stats {
                kept: 1,
                trimmed: 1,
                lost: 1,
                too_long: 1
            }
        );
    }

    #[test]
    fn the_prefix_is_the_title_then_begin_and_its_length_is_found_again() {
        let v = Vocab::build(["送友人，青山横北郭。"], 1);
        let p = prefix(&v, Some("送友人"));
        assert_eq!(p.len(), 4);
        assert_eq!(p[3], Vocab::BEGIN);
        assert_eq!(v.decode(&p), "送友人");
        let mut seq = p.clone();
        seq.extend(v.encode("青山"));
        assert_eq!(prefix_len(&seq), 4);
        assert_eq!(prefix_len(&v.encode("青山")), 0);
        assert!(prefix(&v, None).is_empty());
        assert!(prefix(&v, Some("")).is_empty());
    }

    #[test]
    fn each_epoch_a_different_fifth_goes_untitled() {
        let n = 10_000u64;
        let hashes: Vec<u64> = (0..n).map(|i| text_hash(&format!("诗{i}"))).collect();
        let drawn = |e| -> Vec<bool> { hashes.iter().map(|&h| untitled_in_epoch(h, e)).collect() };
        let (a, b) = (drawn(0), drawn(1));
        for d in [&a, &b] {
            let pct = 100.0 * d.iter().filter(|&&u| u).count() as f64 / n as f64;
            assert!((pct - TITLELESS_PERCENT as f64).abs() < 2.0, "{pct}%");
        }
        // independent draws: about 4% in both, not the same fifth twice
        let both = a.iter().zip(&b).filter(|(x, y)| **x && **y).count() as f64 / n as f64;
        assert!((0.02..0.06).contains(&both), "{both}");
        // over ten epochs most poems are read without their title at least once (1 − 0.8¹⁰ ≈ 89%)
        let once = hashes
            .iter()
            .filter(|&&h| (0..10).any(|e| untitled_in_epoch(h, e)))
            .count() as f64
            / n as f64;
        assert!((0.85..0.93).contains(&once), "{once}");
    }

    #[test]
    fn about_a_fifth_of_poems_go_untitled() {
        let n = 10_000;
        let k = (0..n).filter(|i| untitled(&format!("诗{i}"))).count();
        let pct = 100.0 * k as f64 / n as f64;
        assert!((pct - TITLELESS_PERCENT as f64).abs() < 2.0, "{pct}%");
    }
}
