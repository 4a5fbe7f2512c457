//! Writing around characters a person keeps: templates and rewritten lines.
//!
//! A template is a poem with holes: `明月□□□，□□□□乡。` keeps 明, 月 and 乡
//! where they stand and lets the writer fill the rest under the rhyme and
//! tone rules; its punctuation fixes the form. Rewriting lines of a poem is
//! the same thing: the other lines are kept whole and the asked ones become
//! holes ([`revise_template`]), so the model reads the lines before as
//! context and the kept feet fix the rhyme group. An acrostic is the special
//! case of one kept character at the head of each line.
//!
//! This file turns the text into a layout and the kept positions; the
//! sampling loop in `write.rs` forces those positions and plans the free
//! ones around them ([`crate::prosody::rules::TonePlan::lock`]).

use super::{Form, LineSpec, Options, Poem, WriteError};
use crate::prosody::check::{self, Broken};
use crate::prosody::tunes::{PatternLine, TuneForm};
use crate::prosody::{is_han, Lexicon, Tone, ToneMode};

/// Characters that mark a free position.
pub const FREE: &[char] = &['□', '?', '_', '＿', '◻', '☐', '〇'];

/// Punctuation that closes a line in a template.
const ENDS: &[char] = &['，', '。', '！', '？', '；', ',', '.', '!', ';'];

/// A parsed template: each line's cells (kept character or free) and its closing mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub lines: Vec<(Vec<Option<char>>, char)>,
}

impl Template {
    /// (lines, characters per line) when every line has the same length.
    pub fn shape(&self) -> Option<(usize, usize)> {
        let len = self.lines.first()?.0.len();
        self.lines
            .iter()
            .all(|l| l.0.len() == len)
            .then_some((self.lines.len(), len))
    }

    /// The regulated form the template's shape is, if any.
    pub fn form(&self) -> Option<Form> {
        let shape = self.shape()?;
        [Form::Wujue, Form::Qijue, Form::Wulv, Form::Qilv]
            .into_iter()
            .find(|f| f.shape() == Some(shape))
    }

    /// Its own layout: each line's length and closing mark (，or 。).
    pub fn layout(&self) -> Vec<LineSpec> {
        self.lines
            .iter()
            .map(|(cells, end)| LineSpec {
                len: cells.len(),
                end: *end,
            })
            .collect()
    }

    /// The kept characters: (line, position, character), from 0.
    pub fn kept(&self) -> impl Iterator<Item = (usize, usize, char)> + '_ {
        self.lines.iter().enumerate().flat_map(|(i, (cells, _))| {
            cells
                .iter()
                .enumerate()
                .filter_map(move |(j, c)| c.map(|c| (i, j, c)))
        })
    }
}

/// Parses a template: Han characters are kept, □ or ? (and _) are free,
/// punctuation or a line break closes a line. A line's mark becomes ，or 。
/// (。 after even lines and at the end, as the fixed forms write them).
pub fn parse(text: &str) -> Result<Template, WriteError> {
    let mut lines: Vec<(Vec<Option<char>>, Option<char>)> = Vec::new();
    let mut cur = Vec::new();
    for c in text.chars() {
        if ENDS.contains(&c) || c == '\n' {
            if !cur.is_empty() {
                let end = (c != '\n').then_some(c);
                lines.push((std::mem::take(&mut cur), end));
            }
        } else if FREE.contains(&c) {
            cur.push(None);
        } else if is_han(c) {
            cur.push(Some(c));
        } else if !c.is_whitespace() {
            return Err(WriteError::BadOption {
                what: format!("template: `{c}` is neither a Han character, □ or ? (a free position), nor punctuation"),
            });
        }
    }
    if !cur.is_empty() {
        lines.push((cur, None));
    }
    if lines.is_empty() {
        return Err(WriteError::EmptyInput { flag: "template" });
    }
    let n = lines.len();
    Ok(Template {
        lines: lines
            .into_iter()
            .enumerate()
            .map(|(i, (cells, end))| {
                let end = match end {
                    Some('。' | '.' | '！' | '!' | '？') => '。',
                    Some(_) => '，',
                    None if i % 2 == 1 || i + 1 == n => '。',
                    None => '，',
                };
                (cells, end)
            })
            .collect(),
    })
}

/// A template that keeps `poem` except the asked lines (from 1), which become free.
pub fn revise_template(poem: &str, lines: &[usize]) -> Result<String, WriteError> {
    let t = parse(poem).map_err(|e| match e {
        WriteError::EmptyInput { .. } => WriteError::EmptyInput {
            flag: "the poem to rewrite",
        },
        WriteError::BadOption { what } => WriteError::BadOption {
            what: what.replace("template:", "the poem to rewrite:"),
        },
        e => e,
    })?;
    if lines.is_empty() {
        return Err(WriteError::BadOption {
            what: "no line to rewrite was given (say which, counting from 1)".into(),
        });
    }
    if let Some(&bad) = lines.iter().find(|&&k| k == 0 || k > t.lines.len()) {
        return Err(WriteError::BadOption {
            what: format!(
                "line {bad} is out of range: the poem has {} lines (count from 1)",
                t.lines.len()
            ),
        });
    }
    let mut out = String::new();
    for (i, (cells, end)) in t.lines.iter().enumerate() {
        let free = lines.contains(&(i + 1));
        for c in cells {
            match c {
                Some(c) if !free => out.push(*c),
                _ => out.push('□'),
            }
        }
        out.push(*end);
    }
    Ok(out)
}

/// The options with the template's shape applied: a free form takes the
/// template's form (or, for another shape, its layout); a fixed form must
/// hold the template (no more lines, each of the form's length).
pub fn shaped(o: &Options) -> Result<Options, WriteError> {
    if o.template.is_empty() {
        return Ok(o.clone());
    }
    let t = parse(&o.template)?;
    if !o.begin.is_empty() || !o.acrostic.is_empty() || o.tune.is_some() {
        return Err(WriteError::BadOption {
            what: "a template cannot be combined with first words, an acrostic or a tune (write those characters into the template)".into(),
        });
    }
    let mut o = o.clone();
    match o.form.shape() {
        None => match t.form() {
            Some(f) => o.form = f,
            // Another shape: its line lengths alone, like a tune without
            // tones or rhyme sets.
            None => {
                o.tune = Some(TuneForm {
                    count: 0,
                    lines: t
                        .layout()
                        .iter()
                        .map(|l| PatternLine {
                            len: l.len,
                            end: l.end,
                            tones: vec![Tone::Both; l.len],
                            rhyme: None,
                        })
                        .collect(),
                    sets: Vec::new(),
                    example: String::new(),
                })
            }
        },
        Some((n, len)) => {
            if t.lines.len() > n {
                return Err(WriteError::BadOption {
                    what: format!(
                        "the template has {} lines, more than the {n} of {} (shorten it, or let its shape choose the form)",
                        t.lines.len(),
                        o.form.name_zh()
                    ),
                });
            }
            if let Some((i, l)) = t.lines.iter().enumerate().find(|(_, l)| l.0.len() != len) {
                return Err(WriteError::BadOption {
                    what: format!(
                        "line {} of the template has {} characters; {} lines have {len}",
                        i + 1,
                        l.0.len(),
                        o.form.name_zh()
                    ),
                });
            }
        }
    }
    Ok(o)
}

/// Notes on kept characters that break a rule in force: the character stays,
/// the rest of the poem was written around it, and the person is told.
pub fn kept_faults(lex: &Lexicon, poem: &Poem, kept: &[(usize, usize)]) -> Vec<String> {
    let lines: Vec<Vec<char>> = poem
        .lines
        .iter()
        .map(|l| l.text.chars().collect())
        .collect();
    let Ok(target) = check::detect(&lines, None) else {
        return Vec::new();
    };
    let in_force = |r: Broken| match r {
        Broken::Alternation | Broken::LineEnd => poem.tones != ToneMode::Off,
        Broken::Sanpingwei | Broken::Nian | Broken::Dui => poem.tones == ToneMode::Strict,
        Broken::OutOfGroup | Broken::RepeatedFoot => poem.rhyme,
        _ => false,
    };
    check::check_lines(lex, &lines, target)
        .faults
        .iter()
        .filter(|f| f.pos > 0 && in_force(f.rule) && kept.contains(&(f.line - 1, f.pos - 1)))
        .map(|f| {
            format!(
                "the kept {} at line {}, position {} breaks {}: {}",
                f.ch.unwrap_or('?'),
                f.line,
                f.pos,
                f.name,
                f.why
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_keep_characters_and_fix_the_form() {
        let t = parse("明月□□□，□□□□乡。\n□□??□，□□□□□").unwrap();
        assert_eq!(t.form(), Some(Form::Wujue));
        let kept: Vec<_> = t.kept().collect();
        assert_eq!(kept, [(0, 0, '明'), (0, 1, '月'), (1, 4, '乡')]);
        let ends: String = t.layout().iter().map(|l| l.end).collect();
        assert_eq!(ends, "，。，。");
        let t = parse("明月□□□，□□□□乡。").unwrap();
        assert_eq!((t.form(), t.shape()), (None, Some((2, 5))));
        assert!(matches!(
            parse("明月a□□"),
            Err(WriteError::BadOption { what }) if what.contains("`a`")
        ));
        assert!(matches!(parse(" ，\n"), Err(WriteError::EmptyInput { .. })));
    }

    #[test]
    fn a_template_must_fit_a_given_form() {
        let o = |t: &str, form| Options {
            template: t.into(),
            form,
            ..Options::default()
        };
        let s = shaped(&o("明月□□□，□□□□乡。□□□□□，□□□□□。", Form::Free)).unwrap();
        assert_eq!(s.form, Form::Wujue);
        let s = shaped(&o("明月□□□，□□□□乡。", Form::Free)).unwrap();
        assert_eq!(s.tune.map(|t| t.lines.len()), Some(2));
        let s = shaped(&o("明月□□□，□□□□乡。", Form::Wulv)).unwrap();
        assert_eq!((s.form, s.tune), (Form::Wulv, None));
        let e = shaped(&o(&"□□□□□，".repeat(5), Form::Wujue)).unwrap_err();
        assert!(e.to_string().contains("5 lines, more than the 4"), "{e}");
        let e = shaped(&o("明月□□□□□，", Form::Wujue)).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 1 of the template has 7 characters"),
            "{e}"
        );
        let e = shaped(&Options {
            acrostic: "春".into(),
            ..o("明月□□□，", Form::Free)
        })
        .unwrap_err();
        assert!(e.to_string().contains("cannot be combined"), "{e}");
    }

    use crate::write::testing::Uniform;

    const LEVEL: &str = "东风中同红空春秋天年前烟山间";
    const OBLIQUE: &str = "白日尽入海欲里目上去见古月雪夏";

    fn toy() -> (Uniform, Lexicon) {
        use crate::prosody::Tone;
        let chars = format!("{LEVEL}{OBLIQUE}花家沙蛇时诗，。")
            .chars()
            .collect();
        let lex = Lexicon::from_groups(&[
            ("四支", Tone::Ping, "蛇时诗"),
            ("六麻", Tone::Ping, "花家沙蛇"),
            ("平", Tone::Ping, LEVEL),
            ("仄", Tone::Ze, OBLIQUE),
        ]);
        (Uniform(chars), lex)
    }

    #[test]
    fn a_kept_character_late_in_the_poem_steers_the_tones_before_it() {
        // 日 (oblique) at line 4's 2nd position: strict 粘 and 对 chain every
        // key position to it, including line 1's, written before it.
        let (m, lex) = toy();
        let w = crate::write::Writer::new(&m, Some(&lex));
        let o = Options {
            template: "□□□□□，□□□□□。□□□□□，□日□□□。".into(),
            tones: ToneMode::Strict,
            rhyme: true,
            temperature: 1.0,
            ..Options::default()
        };
        for p in w.write_many(&o, 40, 9).unwrap() {
            let lines: Vec<Vec<char>> = p.lines.iter().map(|l| l.text.chars().collect()).collect();
            assert_eq!(lines[3][1], '日', "{}", p.text);
            let r = crate::prosody::rules::check_tones(&lex, &lines).unwrap();
            assert!(
                r.tones_ok(),
                "{}: {:?}",
                p.text,
                r.failures().collect::<Vec<_>>()
            );
            assert!(kept_faults(&lex, &p, &[(3, 1)]).is_empty(), "{}", p.text);
        }
    }

    #[test]
    fn kept_feet_choose_the_group_they_share_with_a_kept_first_line() {
        // 蛇 is in 四支 and 六麻; with 花 ending line 1, line 2 must rhyme in 六麻.
        let (m, lex) = toy();
        let w = crate::write::Writer::new(&m, Some(&lex));
        let o = Options {
            template: "□□□□花，□□□□□。□□□□□，□□□□蛇。".into(),
            rhyme: true,
            temperature: 1.0,
            ..Options::default()
        };
        for p in w.write_many(&o, 20, 4).unwrap() {
            let foot = p.lines[1].text.chars().last().unwrap();
            assert!(!"时诗".contains(foot), "{}", p.text);
            assert_eq!(p.rhyme_group.as_deref(), Some("六麻"), "{}", p.text);
        }
    }

    #[test]
    fn revising_frees_the_asked_lines_only() {
        let poem = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。";
        assert_eq!(
            revise_template(poem, &[3]).unwrap(),
            "白日依山尽，黄河入海流。□□□□□，更上一层楼。"
        );
        assert_eq!(
            revise_template(poem, &[1, 4]).unwrap(),
            "□□□□□，黄河入海流。欲穷千里目，□□□□□。"
        );
        let e = revise_template(poem, &[5]).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 5 is out of range: the poem has 4 lines"),
            "{e}"
        );
        assert!(revise_template(poem, &[]).is_err());
        assert!(revise_template(poem, &[0]).is_err());
    }
}
