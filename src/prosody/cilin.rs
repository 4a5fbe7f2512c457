//! 词林正韵: the 19 rhyme sections (部) that ci rhyme by, as a mapping from
//! the 106 平水韵 groups the lexicon already has.
//!
//! Source: 戈载《词林正韵》(1821), as tabulated in 龙榆生《唐宋词格律》
//! (上海古籍出版社, 1978), 附录 "词韵简编". Each 部 merges some 平水韵 groups;
//! 部 1–14 hold level (平) and oblique (上, 去) groups, 部 15–19 only
//! entering (入) groups. A ci rhymes within one 部, level with level, and on
//! oblique feet 上 and 去 rhyme together (上去通押) while 入 rhymes only with
//! 入. So a rhyme *class* here is a 部 plus a side: level, or oblique (上去
//! in 部 1–14, 入 in 部 15–19).
//!
//! Nine 平水韵 groups are split between two 部 (marked 半 in the source:
//! 九佳 十灰 十三元 and their 上 and 去 partners). The split goes character
//! by character and the lexicon does not record it. [`Cilin::refine`] takes
//! it from the poets: a character of a split group goes to the 部 its rhyme
//! partners in the Song ci point to (开 rhymes with 怀, which is not 第三部,
//! so 开 is 第五部; 回 rhymes with 归, which is only 第三部). A character with
//! too few such partners stays in both 部, the one place where the mapping is
//! looser than the book.
//!
//! Pure data and lookups by group name; no I/O.

use std::collections::HashMap;

use super::{Lexicon, Tone};

/// Which part of the 平水韵 table a group is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    ShangPing,
    XiaPing,
    Shang,
    Qu,
    Ru,
}

/// 部 (1–19) of each group of a section, in the table's order (一东 is
/// ordinal 1). Two entries: the group is split between two 部 (半).
const SHANG_PING: [&[u8]; 15] = [
    &[1],     // 一东
    &[1],     // 二冬
    &[2],     // 三江
    &[3],     // 四支
    &[3],     // 五微
    &[4],     // 六鱼
    &[4],     // 七虞
    &[3],     // 八齐
    &[5, 10], // 九佳 (半)
    &[3, 5],  // 十灰 (半)
    &[6],     // 十一真
    &[6],     // 十二文
    &[6, 7],  // 十三元 (半)
    &[7],     // 十四寒
    &[7],     // 十五删
];
const XIA_PING: [&[u8]; 15] = [
    &[7],  // 一先
    &[8],  // 二萧
    &[8],  // 三肴
    &[8],  // 四豪
    &[9],  // 五歌
    &[10], // 六麻
    &[2],  // 七阳
    &[11], // 八庚
    &[11], // 九青
    &[11], // 十蒸
    &[12], // 十一尤
    &[13], // 十二侵
    &[14], // 十三覃
    &[14], // 十四盐
    &[14], // 十五咸
];
const SHANG: [&[u8]; 29] = [
    &[1],    // 一董
    &[1],    // 二肿
    &[2],    // 三讲
    &[3],    // 四纸
    &[3],    // 五尾
    &[4],    // 六语
    &[4],    // 七麌
    &[3],    // 八荠
    &[5],    // 九蟹
    &[3, 5], // 十贿 (半)
    &[6],    // 十一轸
    &[6],    // 十二吻
    &[6, 7], // 十三阮 (半)
    &[7],    // 十四旱
    &[7],    // 十五潸
    &[7],    // 十六铣
    &[8],    // 十七筱
    &[8],    // 十八巧
    &[8],    // 十九皓
    &[9],    // 二十哿
    &[10],   // 二十一马
    &[2],    // 二十二养
    &[11],   // 二十三梗
    &[11],   // 二十四迥
    &[12],   // 二十五有
    &[13],   // 二十六寝
    &[14],   // 二十七感
    &[14],   // 二十八琰
    &[14],   // 二十九豏
];
const QU: [&[u8]; 30] = [
    &[1],     // 一送
    &[1],     // 二宋
    &[2],     // 三绛
    &[3],     // 四寘
    &[3],     // 五未
    &[4],     // 六御
    &[4],     // 七遇
    &[3],     // 八霁
    &[3, 5],  // 九泰 (半)
    &[5, 10], // 十卦 (半)
    &[3, 5],  // 十一队 (半)
    &[6],     // 十二震
    &[6],     // 十三问
    &[6, 7],  // 十四愿 (半)
    &[7],     // 十五翰
    &[7],     // 十六谏
    &[7],     // 十七霰
    &[8],     // 十八啸
    &[8],     // 十九效
    &[8],     // 二十号
    &[9],     // 二十一箇
    &[10],    // 二十二祃
    &[2],     // 二十三漾
    &[11],    // 二十四敬
    &[11],    // 二十五径
    &[12],    // 二十六宥
    &[13],    // 二十七沁
    &[14],    // 二十八勘
    &[14],    // 二十九艳
    &[14],    // 三十陷
];
const RU: [&[u8]; 17] = [
    &[15], // 一屋
    &[15], // 二沃
    &[16], // 三觉
    &[17], // 四质
    &[18], // 五物
    &[18], // 六月
    &[18], // 七曷
    &[18], // 八黠
    &[18], // 九屑
    &[16], // 十药
    &[17], // 十一陌
    &[17], // 十二锡
    &[17], // 十三职
    &[17], // 十四缉
    &[19], // 十五合
    &[18], // 十六叶
    &[19], // 十七洽
];

/// Number of rhyme classes: 19 部 × (level, oblique); 部 15–19 have no level side.
pub const NUM_CLASSES: usize = 38;

/// A rhyme class: 部 `bu` (1–19) on the level side or the oblique side.
/// As an id (`index`): (bu − 1) · 2 + (oblique as usize).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Class {
    pub bu: u8,
    pub level: bool,
}

impl Class {
    pub fn index(self) -> usize {
        (self.bu as usize - 1) * 2 + usize::from(!self.level)
    }

    pub fn from_index(i: usize) -> Class {
        Class {
            bu: (i / 2 + 1) as u8,
            level: i % 2 == 0,
        }
    }

    /// The tone of the feet of this class.
    pub fn tone(self) -> Tone {
        if self.level {
            Tone::Ping
        } else {
            Tone::Ze
        }
    }

    /// e.g. 第七部平, 第四部上去, 第十七部入.
    pub fn name(self) -> String {
        let side = match (self.level, self.bu >= 15) {
            (true, _) => "平",
            (false, false) => "上去",
            (false, true) => "入",
        };
        format!("第{}部{side}", numeral(self.bu as usize))
    }
}

/// 1–30 as Chinese numerals (一 … 十九 … 三十).
fn numeral(n: usize) -> String {
    const D: [&str; 10] = ["", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => D[n].to_string(),
        10..=19 => format!("十{}", D[n - 10]),
        _ => format!("{}十{}", D[n / 10], D[n % 10]),
    }
}

/// Reads a Chinese ordinal at the start of `s` (一 … 三十); returns it and the rest.
fn parse_ordinal(s: &str) -> Option<(usize, &str)> {
    let digit = |c: char| {
        "一二三四五六七八九"
            .chars()
            .position(|d| d == c)
            .map(|p| p + 1)
    };
    let mut n = 0;
    let mut cur = 0;
    let mut seen = false;
    let mut rest = s;
    for (i, c) in s.char_indices() {
        if let Some(d) = digit(c) {
            cur = d;
        } else if c == '十' {
            n += if cur == 0 { 10 } else { cur * 10 };
            cur = 0;
        } else {
            rest = &s[i..];
            break;
        }
        seen = true;
        rest = &s[i + c.len_utf8()..];
    }
    (seen && n + cur > 0).then_some((n + cur, rest))
}

/// The 部 of a 平水韵 group, by its name in either script (上平声一东,
/// 上平聲一東, 去声十一队 …); empty for a name that is not a table group.
pub fn bu_of_group(name: &str) -> &'static [u8] {
    let sections = [
        ("上平声", Section::ShangPing),
        ("上平聲", Section::ShangPing),
        ("下平声", Section::XiaPing),
        ("下平聲", Section::XiaPing),
        ("上声", Section::Shang),
        ("上聲", Section::Shang),
        ("去声", Section::Qu),
        ("去聲", Section::Qu),
        ("入声", Section::Ru),
        ("入聲", Section::Ru),
    ];
    let Some((section, rest)) = sections
        .iter()
        .find_map(|(p, s)| name.strip_prefix(p).map(|r| (*s, r)))
    else {
        return &[];
    };
    let Some((ord, tail)) = parse_ordinal(rest) else {
        return &[];
    };
    if tail.chars().count() != 1 {
        return &[];
    }
    let table: &[&'static [u8]] = match section {
        Section::ShangPing => &SHANG_PING,
        Section::XiaPing => &XIA_PING,
        Section::Shang => &SHANG,
        Section::Qu => &QU,
        Section::Ru => &RU,
    };
    table.get(ord - 1).copied().unwrap_or(&[])
}

/// The rhyme classes of each 平水韵 group of a lexicon, by group id, built
/// once (a lookup per character is then a few table reads).
#[derive(Clone, Debug, Default)]
pub struct Cilin {
    by_group: Vec<Vec<Class>>,
    /// (character, split group) → the one 部 the character's rhymes put it in.
    split: HashMap<(char, u16), u8>,
}

/// A split-group character is put in one 部 when it has at least this many
/// telling rhyme partners…
pub const SPLIT_MIN_VOTES: usize = 3;
/// …and this share of them point to that 部.
pub const SPLIT_MAJORITY: f64 = 0.75;

impl Cilin {
    pub fn new(lex: &Lexicon) -> Cilin {
        let by_group = (0..lex.num_groups() as u16)
            .map(|g| {
                let level = lex.group_tone(g) == Some(Tone::Ping);
                bu_of_group(lex.group_name(g))
                    .iter()
                    .map(|&bu| Class { bu, level })
                    .collect()
            })
            .collect();
        Cilin {
            by_group,
            split: HashMap::new(),
        }
    }

    /// Number of 平水韵 groups this table was built for.
    pub fn num_groups(&self) -> usize {
        self.by_group.len()
    }

    /// Characters of split groups put in one 部 by [`Cilin::refine`].
    pub fn num_split(&self) -> usize {
        self.split.len()
    }

    /// Decides the 部 of split-group characters from `rhymes`: sets of
    /// characters that rhyme together in real ci, each with its side (true:
    /// level). For a character in a group split between 部 a and b, a partner
    /// whose classes on that side hold a but not b votes a, and the other way
    /// round; partners in neither or both do not vote. Only the table's own
    /// classes vote, in one pass: letting decided characters vote again
    /// cascades, because the Song poets often rhymed the two halves together
    /// (晏殊's 浣溪沙 rhymes 杯 台 回 来 徊), and 回 ended up in 第五部.
    pub fn refine(&mut self, lex: &Lexicon, rhymes: &[(Vec<char>, bool)]) {
        // With no split decided yet, `classes` gives the table's own classes.
        self.split.clear();
        let mut votes: HashMap<(char, u16), HashMap<u8, usize>> = HashMap::new();
        let mut told: HashMap<(char, u16), usize> = HashMap::new();
        for (chars, level) in rhymes {
            let classes: Vec<Vec<Class>> = chars
                .iter()
                .map(|&c| {
                    let mut v = self.classes(lex, c);
                    v.retain(|k| k.level == *level);
                    v
                })
                .collect();
            for (x, &c) in chars.iter().enumerate() {
                for &g in lex.rhyme_groups(c) {
                    let bu = self.by_group.get(g as usize).map_or(&[][..], |v| &v[..]);
                    if bu.len() != 2 || bu[0].level != *level {
                        continue;
                    }
                    let (a, b) = (bu[0].bu, bu[1].bu);
                    for (y, other) in classes.iter().enumerate() {
                        if y == x || chars[y] == c {
                            continue;
                        }
                        let has = |n: u8| other.iter().any(|k| k.bu == n);
                        let vote = match (has(a), has(b)) {
                            (true, false) => a,
                            (false, true) => b,
                            _ => continue,
                        };
                        *votes.entry((c, g)).or_default().entry(vote).or_default() += 1;
                        *told.entry((c, g)).or_default() += 1;
                    }
                }
            }
        }
        let mut split = HashMap::new();
        for (key, by_bu) in votes {
            let n = told[&key];
            if let Some((&bu, &k)) = by_bu
                .iter()
                .max_by_key(|(b, k)| (**k, std::cmp::Reverse(**b)))
            {
                if n >= SPLIT_MIN_VOTES && k as f64 >= SPLIT_MAJORITY * n as f64 {
                    split.insert(key, bu);
                }
            }
        }
        self.split = split;
    }

    /// The rhyme classes of `c` (several when it has several readings or
    /// sits in a split group), sorted, without repeats; empty when unknown.
    pub fn classes(&self, lex: &Lexicon, c: char) -> Vec<Class> {
        let mut out: Vec<Class> = lex
            .rhyme_groups(c)
            .iter()
            .flat_map(|&g| {
                let one = self.split.get(&(c, g)).copied();
                self.by_group
                    .get(g as usize)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(move |k| one.is_none_or(|b| k.bu == b))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_group_has_a_bu_and_the_bu_are_the_books() {
        assert_eq!(bu_of_group("上平声一东"), &[1]);
        assert_eq!(bu_of_group("上平聲一東"), &[1]);
        assert_eq!(bu_of_group("下平声七阳"), &[2], "阳 joins 江");
        assert_eq!(bu_of_group("上平声三江"), &[2]);
        assert_eq!(bu_of_group("下平声一先"), &[7], "先 joins 寒 删");
        assert_eq!(bu_of_group("上平声十灰"), &[3, 5], "灰 is split");
        assert_eq!(bu_of_group("下平声十四盐"), &[14]);
        assert_eq!(bu_of_group("上声二十八琰"), &[14]);
        assert_eq!(bu_of_group("去声三十陷"), &[14]);
        assert_eq!(bu_of_group("入声十七洽"), &[19]);
        assert_eq!(bu_of_group("入聲十藥"), &[16], "药 joins 觉");
        assert_eq!(bu_of_group("入声十六叶"), &[18]);
        for bad in [
            "",
            "仄",
            "上平声",
            "上平声四十东",
            "上平声一",
            "入声十八东",
            "一东",
        ] {
            assert!(bu_of_group(bad).is_empty(), "{bad}");
        }
        // Every 部 is reached, 15–19 only from 入.
        let mut seen = [false; 20];
        for t in [&SHANG_PING[..], &XIA_PING, &SHANG, &QU] {
            for b in t.iter().flat_map(|b| b.iter()) {
                assert!((1..=14).contains(b));
                seen[*b as usize] = true;
            }
        }
        for b in RU.iter().flat_map(|b| b.iter()) {
            assert!((15..=19).contains(b));
            seen[*b as usize] = true;
        }
        assert!(seen[1..].iter().all(|&s| s));
    }

    #[test]
    fn ordinals_and_class_names() {
        assert_eq!(parse_ordinal("一东"), Some((1, "东")));
        assert_eq!(parse_ordinal("十灰"), Some((10, "灰")));
        assert_eq!(parse_ordinal("十五删"), Some((15, "删")));
        assert_eq!(parse_ordinal("二十九豏"), Some((29, "豏")));
        assert_eq!(parse_ordinal("三十陷"), Some((30, "陷")));
        assert_eq!(parse_ordinal("东"), None);
        assert_eq!(Class { bu: 7, level: true }.name(), "第七部平");
        assert_eq!(
            Class {
                bu: 4,
                level: false
            }
            .name(),
            "第四部上去"
        );
        assert_eq!(
            Class {
                bu: 17,
                level: false
            }
            .name(),
            "第十七部入"
        );
        for i in 0..NUM_CLASSES {
            assert_eq!(Class::from_index(i).index(), i);
        }
    }

    #[test]
    fn shang_and_qu_rhyme_together_but_not_with_ru_or_level() {
        let lex = Lexicon::from_groups(&[
            ("上平声一东", Tone::Ping, "东风"),
            ("上声一董", Tone::Ze, "动"),
            ("去声一送", Tone::Ze, "送梦"),
            ("入声一屋", Tone::Ze, "屋竹"),
            ("下平声一先", Tone::Ping, "先天"),
            ("上平声十四寒", Tone::Ping, "寒看"),
            ("去声十五翰", Tone::Ze, "看"),
            ("上平声十灰", Tone::Ping, "来回"),
        ]);
        let cl = Cilin::new(&lex);
        let one = |c| cl.classes(&lex, c);
        assert_eq!(one('东'), vec![Class { bu: 1, level: true }]);
        // 上 (动) and 去 (送) are one class: 上去通押.
        assert_eq!(one('动'), one('送'));
        assert_eq!(
            one('动'),
            vec![Class {
                bu: 1,
                level: false
            }]
        );
        assert_ne!(one('竹'), one('送'), "入 stays apart");
        assert_eq!(
            one('竹'),
            vec![Class {
                bu: 15,
                level: false
            }]
        );
        // 先 and 寒 are different 平水韵 groups but one 部.
        assert_eq!(one('先'), one('寒'));
        // A character read both ways has both sides.
        assert_eq!(
            one('看'),
            vec![
                Class {
                    bu: 7,
                    level: false
                },
                Class { bu: 7, level: true }
            ]
        );
        assert_eq!(one('来').len(), 2, "split group: both 部");
        assert!(one('月').is_empty());
    }

    #[test]
    fn split_groups_are_split_by_rhyme_partners() {
        let lex = Lexicon::from_groups(&[
            ("上平声十灰", Tone::Ping, "回杯开来台"),
            ("上平声五微", Tone::Ping, "归飞"),
            ("上平声九佳", Tone::Ping, "怀柴"),
            ("下平声六麻", Tone::Ping, "花家"),
            ("上平声四支", Tone::Ping, "时"),
        ]);
        let mut cl = Cilin::new(&lex);
        let set = |s: &str| (s.chars().collect::<Vec<char>>(), true);
        // 回 and 杯 rhyme with 第三部-only 归 飞 时; 开 with 怀 柴 (佳:
        // 第五 or 第十部, not 第三); 柴 with 开 来 (灰: not 第十部) and with
        // 花 once; 来 has two telling partners, 台 none.
        let rhymes = vec![
            set("回归飞"),
            set("杯时归"),
            set("回飞"),
            set("杯飞"),
            set("开怀柴"),
            set("来怀"),
            set("开柴来"),
            set("台开来"),
            set("柴花"),
        ];
        cl.refine(&lex, &rhymes);
        let bu = |c| -> Vec<u8> { cl.classes(&lex, c).iter().map(|k| k.bu).collect() };
        assert_eq!(bu('回'), vec![3]);
        assert_eq!(bu('杯'), vec![3]);
        assert_eq!(bu('开'), vec![5]);
        assert_eq!(bu('柴'), vec![5], "3 votes for 第五部 against 1 for 第十部");
        assert_eq!(bu('来'), vec![3, 5], "too few votes");
        assert_eq!(bu('台'), vec![3, 5], "decided partners do not vote");
        assert_eq!(bu('归'), vec![3], "unsplit groups are untouched");
        assert_eq!(cl.num_split(), 4);
    }
}
