//! Repetition in a regulated poem: how it is measured, and the rule the
//! writer holds its poems to.
//!
//! The measures (what `shiren eval` reports for model and real poems alike):
//! - a poem uses one character three times or more;
//! - line 1's last character comes back as a later rhyme foot (last
//!   character of line 2, 4, 6 or 8);
//! - a line holds one character twice, not side by side (年年 and 悠悠, the
//!   reduplicated pairs, are fine).
//!
//! The rule ([`banned`]), checked one character at a time like rhyme and
//! tones: no rhyme foot twice in a poem (line 1's last character counts as
//! one), no character more than twice in a poem, and none twice in one line
//! except as a reduplicated pair. Characters of [`FREE_CHARS`] may stand
//! twice in a line apart (相看不相见): real poems repeat them most (半, 一,
//! 相, 不 …). That list is measured, not chosen: [`free_chars`] over the
//! training poems, printed by `shiren eval --repeat-chars`.
//!
//! Pure functions over characters (or any token type): no model, no I/O.

use std::collections::HashMap;

/// Characters that may stand twice in one line, apart (still twice at most in a poem):
/// those of [`free_chars`] over the Tang training poems at
/// [`FREE_MIN_POEMS`] and [`FREE_MIN_RATE`], as `shiren eval --repeat-chars`
/// prints them.
pub const FREE_CHARS: &[char] = &[
    '半', '一', '相', '于', '非', '如', '同', '求', '即', '种', '无', '也', '为', '枝', '不', '满',
    '狂', '郎',
];

/// A character is measured for [`FREE_CHARS`] only if at least this share of
/// the poems use it (rarer ones are too few to tell).
pub const FREE_MIN_POEMS: f64 = 0.01;
/// ... and it joins the list when at least this share of the poems that use
/// it repeat it (three times, or twice in a line apart): about four times the
/// median character's rate in the Tang training poems (0.4%), where 半, the
/// most repeated, reaches 3.7%.
pub const FREE_MIN_RATE: f64 = 0.015;

/// The tokens the rule forbids next, written into `out` (cleared first).
/// `done`: the poem's finished lines; `line`: the current line so far;
/// `foot`: the next token ends line 2, 4, 6 or 8; `free`: whether a token
/// may repeat (see [`FREE_CHARS`]).
pub fn banned<T: Copy + Eq>(
    done: &[&[T]],
    line: &[T],
    foot: bool,
    free: impl Fn(T) -> bool,
    out: &mut Vec<T>,
) {
    out.clear();
    let all = || done.iter().flat_map(|l| l.iter()).chain(line.iter());
    for (k, &x) in all().enumerate() {
        if out.contains(&x) || all().take(k).any(|&y| y == x) {
            continue; // each token once, at its first use
        }
        let uses = all().filter(|&&y| y == x).count();
        // Twice in the line is fine as a pair (right after itself), or for a free character.
        let in_line = line.contains(&x) && line.last() != Some(&x) && !free(x);
        if uses >= 2 || in_line {
            out.push(x);
        }
    }
    if foot {
        let first_end = done.first().and_then(|l| l.last());
        let feet = done.iter().skip(1).step_by(2).filter_map(|l| l.last());
        for &x in first_end.into_iter().chain(feet) {
            if !out.contains(&x) {
                out.push(x);
            }
        }
    }
}

/// The first place the rule is broken in a poem of these lines, as
/// (line, position) from 1 and the character; `None` if it holds.
pub fn first_break(lines: &[&str], free: impl Fn(char) -> bool) -> Option<(usize, usize, char)> {
    let lines: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let done: Vec<&[char]> = lines[..i].iter().map(|l| &l[..]).collect();
        for (j, &c) in l.iter().enumerate() {
            let foot = i % 2 == 1 && j + 1 == l.len();
            banned(&done, &l[..j], foot, &free, &mut out);
            if out.contains(&c) {
                return Some((i + 1, j + 1, c));
            }
        }
    }
    None
}

/// Whether the poem of these lines uses one character three times or more.
pub fn uses_three(lines: &[&str]) -> bool {
    let mut n: HashMap<char, u32> = HashMap::new();
    lines.iter().flat_map(|l| l.chars()).any(|c| {
        let e = n.entry(c).or_default();
        *e += 1;
        *e >= 3
    })
}

/// Whether line 1's last character is also the last of line 2, 4, 6 or 8.
pub fn first_end_reused(lines: &[&str]) -> bool {
    let Some(first) = lines.first().and_then(|l| l.chars().last()) else {
        return false;
    };
    lines.iter().skip(1).step_by(2).any(|l| l.ends_with(first))
}

/// Whether a line holds one character twice, not side by side.
pub fn line_repeats(line: &str) -> bool {
    let c: Vec<char> = line.chars().collect();
    (0..c.len()).any(|p| (p + 2..c.len()).any(|q| c[p] == c[q]))
}

/// Counts of the three measures over many poems.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct RepeatTally {
    pub poems: usize,
    /// Poems using one character three times or more.
    pub uses_three: usize,
    /// Poems whose line 1 ends on a character used again as a rhyme foot.
    pub first_end_reused: usize,
    pub lines: usize,
    /// Lines with one character twice, not side by side.
    pub line_repeats: usize,
}

impl RepeatTally {
    /// Adds one poem, given as its lines (punctuation dropped).
    pub fn add(&mut self, lines: &[&str]) {
        self.poems += 1;
        self.uses_three += uses_three(lines) as usize;
        self.first_end_reused += first_end_reused(lines) as usize;
        self.lines += lines.len();
        self.line_repeats += lines.iter().filter(|l| line_repeats(l)).count();
    }

    pub fn uses_three_pct(&self) -> f64 {
        pct(self.uses_three, self.poems)
    }
    pub fn first_end_reused_pct(&self) -> f64 {
        pct(self.first_end_reused, self.poems)
    }
    pub fn line_repeats_pct(&self) -> f64 {
        pct(self.line_repeats, self.lines)
    }
}

fn pct(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * k as f64 / n as f64
    }
}

/// One character's repetition in real poems.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CharRepeats {
    pub ch: char,
    /// Poems using it.
    pub poems: usize,
    /// Of those, poems using it three times or more, or twice in a line apart.
    pub repeated: usize,
}

impl CharRepeats {
    pub fn rate(&self) -> f64 {
        self.repeated as f64 / self.poems.max(1) as f64
    }
}

/// The characters real poems repeat: of those used by at least `min_poems`
/// (a share) of the poems, the ones that at least `min_rate` of the poems
/// using them repeat (three times or more, or twice in a line apart).
/// Highest rate first. `poems` are given as their lines.
pub fn free_chars(poems: &[Vec<&str>], min_poems: f64, min_rate: f64) -> Vec<CharRepeats> {
    let mut per: HashMap<char, (usize, usize)> = HashMap::new();
    for lines in poems {
        let mut n: HashMap<char, u32> = HashMap::new();
        let mut apart: Vec<char> = Vec::new();
        for l in lines {
            let c: Vec<char> = l.chars().collect();
            for &x in &c {
                *n.entry(x).or_default() += 1;
            }
            for p in 0..c.len() {
                if (p + 2..c.len()).any(|q| c[q] == c[p]) {
                    apart.push(c[p]);
                }
            }
        }
        for (&x, &k) in &n {
            let e = per.entry(x).or_default();
            e.0 += 1;
            e.1 += (k >= 3 || apart.contains(&x)) as usize;
        }
    }
    let floor = (min_poems * poems.len() as f64).ceil() as usize;
    let mut out: Vec<CharRepeats> = per
        .into_iter()
        .map(|(ch, (poems, repeated))| CharRepeats {
            ch,
            poems,
            repeated,
        })
        .filter(|r| r.poems >= floor.max(1) && r.rate() >= min_rate)
        .collect();
    out.sort_by(|a, b| b.rate().total_cmp(&a.rate()).then(a.ch.cmp(&b.ch)));
    out
}

/// Whether `c` may repeat under the rule.
pub fn is_free(c: char) -> bool {
    FREE_CHARS.contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn banned_after(done: &[&str], line: &str, foot: bool, free: &[char]) -> Vec<char> {
        let done: Vec<Vec<char>> = done.iter().map(|l| chars(l)).collect();
        let done: Vec<&[char]> = done.iter().map(|l| &l[..]).collect();
        let mut out = Vec::new();
        banned(&done, &chars(line), foot, |c| free.contains(&c), &mut out);
        out.sort();
        out
    }

    #[test]
    fn a_character_twice_in_a_line_only_as_a_pair() {
        // 春 just written: 春春 is a pair, so 春 may follow; 风 may not come back apart.
        assert_eq!(banned_after(&[], "风吹春", false, &[]), ['吹', '风']);
        // after the pair, 春 has had its two uses
        assert_eq!(banned_after(&[], "春春", false, &[]), ['春']);
        // a free character may come back in its line (见 may not), still twice at most
        assert_eq!(banned_after(&[], "见不", false, &['不']), ['见']);
        assert_eq!(banned_after(&[], "不见不", false, &['不']), ['不', '见']);
    }

    #[test]
    fn at_most_twice_in_a_poem_and_no_foot_twice() {
        let done = ["白日依山尽", "黄河入海流"];
        // 日 once before: fine; 山 twice: banned
        assert_eq!(banned_after(&done, "山", false, &[]), ['山']);
        // at line 4's foot: line 1's end 尽 and line 2's foot 流 are out
        let done = ["白日依山尽", "黄河入海流", "欲穷千里目"];
        assert_eq!(
            banned_after(&done, "更上楼", true, &[]),
            ['上', '尽', '更', '流']
        );
        // a free character is still no second foot
        assert_eq!(
            banned_after(&done, "更上楼", true, &['流']),
            ['上', '尽', '更', '流']
        );
        // not at a foot, they are allowed
        assert_eq!(banned_after(&done, "更上楼", false, &[]), ['上', '更']);
    }

    #[test]
    fn first_break_finds_the_place() {
        assert_eq!(first_break(&["白日依山尽", "黄河入海流"], |_| false), None);
        assert_eq!(
            first_break(&["满城秋草五云峰", "海月西南十二峰"], |_| {
                false
            }),
            Some((2, 7, '峰'))
        );
        assert_eq!(
            first_break(&["孤窗冷月满窗书"], |_| false),
            Some((1, 6, '窗'))
        );
        assert_eq!(first_break(&["孤窗冷月满窗书"], |c| c == '窗'), None);
        assert_eq!(first_break(&["年年岁岁花相似"], |_| false), None);
    }

    #[test]
    fn the_measures_count_what_they_say() {
        assert!(uses_three(&["春风春", "春"]));
        assert!(!uses_three(&["年年", "岁岁"]));
        assert!(first_end_reused(&["满城秋草五云峰", "海月西南十二峰"]));
        assert!(!first_end_reused(&["白日依山尽", "黄河入海流", "尽"]));
        assert!(line_repeats("孤窗冷月满窗书"));
        assert!(!line_repeats("年年岁岁花相似"));
        let mut t = RepeatTally::default();
        t.add(&["孤窗冷月满窗书", "年年岁岁花相似"]);
        assert_eq!(
            (t.poems, t.lines, t.line_repeats, t.uses_three),
            (1, 2, 1, 0)
        );
        assert_eq!(t.line_repeats_pct(), 50.0);
    }

    #[test]
    fn free_chars_are_the_often_repeated_among_the_common() {
        // 不 repeats in 2 of its 3 poems; 月 in none; 雁 repeats but is rare.
        let poems: Vec<Vec<&str>> = vec![
            vec!["不见不闻", "月明"],
            vec!["不知", "不语不"],
            vec!["不寐", "月落"],
            vec!["雁雁飞雁", "秋"],
            vec!["月出", "花开"],
            vec!["花落", "水流"],
        ];
        let got = free_chars(&poems, 0.3, 0.5);
        assert_eq!(got.iter().map(|r| r.ch).collect::<Vec<_>>(), ['不']);
        assert_eq!((got[0].poems, got[0].repeated), (3, 2));
        assert!(free_chars(&poems, 0.1, 0.5).iter().any(|r| r.ch == '雁'));
    }
}
