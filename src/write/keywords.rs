//! Keywords that must appear: `shiren write --keywords 明月,江,舟`.
//!
//! Each keyword (one or two characters) is kept somewhere in the poem, the
//! way a template keeps characters (see [`super::template`]); where is the
//! writer's choice. [`placements`] draws places at random among those where
//! the rules can still hold: one keyword a line, never at a line's end (so
//! no keyword is a rhyme foot and no 仄 lands where the rhyme wants 平), a
//! character of unknown tone never at a key position (二四六), and under
//! strict tones every kept tone at a key position implying the same chain of
//! 对 and 粘 (and no 三平尾). Each draft of a poem gets its own placement;
//! the drafts are written side by side and the likeliest kept, its score
//! counting the kept characters' own probability, so the model's own
//! probabilities choose the placement. A set of keywords that fits nowhere
//! is an error naming what to change.

use std::collections::HashMap;

use super::WriteError;
use crate::prosody::rules::{key_positions, line_end, line_first_key, strict_start};
use crate::prosody::{Tone, ToneMode};
use crate::rng::Rng;

/// The most keywords a poem takes.
pub const MAX_KEYWORDS: usize = 4;
/// The most characters a keyword has.
pub const MAX_KEYWORD_LEN: usize = 2;

/// Separators between keywords, besides whitespace.
const SEPARATORS: &[char] = &[',', '，', '、', ';', '；', '/'];

/// The keywords in `list` (each entry may hold several, separated by commas
/// or spaces), checked for count and length.
pub fn parse(list: &[String]) -> Result<Vec<String>, WriteError> {
    let words: Vec<String> = list
        .iter()
        .flat_map(|s| s.split(|c: char| c.is_whitespace() || SEPARATORS.contains(&c)))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let bad = |what: String| Err(WriteError::BadOption { what });
    if words.is_empty() {
        return if list.iter().any(|s| !s.is_empty()) {
            Err(WriteError::EmptyInput { flag: "keywords" })
        } else {
            Ok(words)
        };
    }
    if words.len() > MAX_KEYWORDS {
        return bad(format!(
            "keywords: {} given, at most {MAX_KEYWORDS} (drop some)",
            words.len()
        ));
    }
    for w in &words {
        let n = w.chars().count();
        if n > MAX_KEYWORD_LEN {
            return bad(format!(
                "keywords: `{w}` has {n} characters, at most {MAX_KEYWORD_LEN} (split it, e.g. `{}`)",
                split_hint(w)
            ));
        }
        if let Some(c) = w.chars().find(|&c| !crate::prosody::is_han(c)) {
            return bad(format!(
                "keywords: `{c}` in `{w}` is not a Han character (give words of Han characters, separated by commas)"
            ));
        }
    }
    Ok(words)
}

fn split_hint(w: &str) -> String {
    let chars: Vec<char> = w.chars().collect();
    chars
        .chunks(MAX_KEYWORD_LEN)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(",")
}

/// What a placement must respect.
pub struct Rules<'a> {
    /// Characters in each line.
    pub lines: Vec<usize>,
    /// Places already kept (an acrostic's heads, a template's characters), with their tones.
    pub kept: &'a HashMap<(usize, usize), Option<Tone>>,
    /// The tone rules in force (off when none apply).
    pub tones: ToneMode,
    /// A tune's tone at each place (ci), instead of the 近体诗 rules.
    pub pattern: Option<Vec<Vec<Tone>>>,
}

/// One keyword's characters, each with its tone (None: unknown).
pub type Word = Vec<(u32, Option<Tone>)>;

/// A placement: each kept place and its token.
pub type Placement = Vec<((usize, usize), u32)>;

/// Up to `want` different placements of `words`, drawn at random by `rng`;
/// an error when none exists.
pub fn placements(
    words: &[Word],
    rules: &Rules,
    rng: &mut Rng,
    want: usize,
) -> Result<Vec<Placement>, WriteError> {
    let n_lines = rules.lines.len();
    if words.len() > n_lines {
        return Err(WriteError::BadOption {
            what: format!(
                "keywords: {} keywords for {n_lines} lines; each keyword takes a line of its own (give at most {n_lines})",
                words.len()
            ),
        });
    }
    let mut found: Vec<Placement> = Vec::new();
    // Independent draws, so placements differ from the first keyword on;
    // the first draw is exhaustive, so an empty result means none exists.
    for attempt in 0..want.max(1) * 4 {
        let mut cells = Vec::new();
        let mut used = vec![false; n_lines];
        let mut budget = if attempt == 0 { usize::MAX } else { 2_000 };
        if search(words, rules, rng, &mut cells, &mut used, &mut budget) {
            let mut p: Placement = cells.iter().map(|&(i, j, t, _)| ((i, j), t)).collect();
            p.sort();
            if !found.contains(&p) {
                found.push(p);
            }
        } else if attempt == 0 {
            return Err(WriteError::BadOption {
                what: format!(
                    "keywords: no place in this form lets every keyword stand with the {} kept (one keyword a line, none at a line's end); give fewer or shorter keywords, another form, or looser tones",
                    match rules.tones {
                        ToneMode::Off => "rules",
                        _ => "tone rules",
                    }
                ),
            });
        }
        if found.len() >= want.max(1) {
            break;
        }
    }
    Ok(found)
}

/// Depth-first over the keywords, each trying its places in random order.
fn search(
    words: &[Word],
    rules: &Rules,
    rng: &mut Rng,
    cells: &mut Vec<(usize, usize, u32, Option<Tone>)>,
    used: &mut [bool],
    budget: &mut usize,
) -> bool {
    let Some((word, rest)) = words.split_first() else {
        return true;
    };
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let mut spots: Vec<(usize, usize)> = rules
        .lines
        .iter()
        .enumerate()
        .filter(|&(i, _)| !used[i])
        // never the last place of a line: no keyword is a rhyme foot or a line end
        .flat_map(|(i, &len)| (0..len.saturating_sub(word.len())).map(move |j| (i, j)))
        .collect();
    rng.shuffle(&mut spots);
    for (i, j) in spots {
        let free = (0..word.len()).all(|d| !rules.kept.contains_key(&(i, j + d)));
        if !free {
            continue;
        }
        let before = cells.len();
        cells.extend(
            word.iter()
                .enumerate()
                .map(|(d, &(t, tone))| (i, j + d, t, tone)),
        );
        if fits(rules, cells) {
            used[i] = true;
            if search(rest, rules, rng, cells, used, budget) {
                return true;
            }
            used[i] = false;
        }
        cells.truncate(before);
    }
    false
}

/// Whether the placed cells can stand with the kept ones under the tone rules.
fn fits(rules: &Rules, cells: &[(usize, usize, u32, Option<Tone>)]) -> bool {
    if rules.tones == ToneMode::Off {
        return true;
    }
    if let Some(pattern) = &rules.pattern {
        // A tune: each place's own tone.
        return cells.iter().all(
            |&(i, j, _, tone)| match pattern.get(i).and_then(|l| l.get(j)) {
                Some(Tone::Ping) | Some(Tone::Ze) => {
                    let want = pattern[i][j];
                    tone.is_some_and(|t| t.fits(want))
                }
                _ => true,
            },
        );
    }
    let Some(&len) = rules.lines.first() else {
        return true;
    };
    if !(len == 5 || len == 7) || rules.lines.iter().any(|&l| l != len) {
        return true;
    }
    let keys = key_positions(len);
    // A character of unknown tone cannot stand where the rules need one.
    if cells
        .iter()
        .any(|&(_, j, _, tone)| tone.is_none() && keys.contains(&j))
    {
        return false;
    }
    let all = rules
        .kept
        .iter()
        .map(|(&(i, j), &t)| (i, j, t))
        .chain(cells.iter().map(|&(i, j, _, t)| (i, j, t)));
    match rules.tones {
        ToneMode::Strict => {
            // Every definite key tone implies the same start of the chain.
            let mut start = None;
            for (i, j, t) in all {
                if let Some(s) = strict_start(len, i, j, t) {
                    if start.is_some_and(|s0| s0 != s) {
                        return false;
                    }
                    start = Some(s);
                }
            }
            // 三平尾: a level character third from the end of a rhyming line,
            // before a level key position, would make three level at the end.
            cells.iter().all(|&(i, j, _, t)| {
                let third =
                    j + 3 == len && line_end(i) == Some(Tone::Ping) && t == Some(Tone::Ping);
                let key_level = start.map(|s| {
                    let first = if i.div_ceil(2) % 2 == 0 {
                        s
                    } else {
                        s.opposite()
                    };
                    let k = keys.len() - 1;
                    (if k % 2 == 0 { first } else { first.opposite() }) == Tone::Ping
                });
                // with the chain not yet fixed, the writer may still make it level: stay clear
                !third || key_level == Some(false)
            })
        }
        _ => {
            // Loose: each line's key tones agree among themselves.
            let mut first: HashMap<usize, Tone> = HashMap::new();
            for (i, j, t) in all {
                if let Some(f) = line_first_key(len, j, t) {
                    if *first.entry(i).or_insert(f) != f {
                        return false;
                    }
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(spec: &[&[Option<Tone>]]) -> Vec<Word> {
        let mut id = 10;
        spec.iter()
            .map(|w| {
                w.iter()
                    .map(|&t| {
                        id += 1;
                        (id, t)
                    })
                    .collect()
            })
            .collect()
    }

    const P: Option<Tone> = Some(Tone::Ping);
    const Z: Option<Tone> = Some(Tone::Ze);

    #[test]
    fn parse_splits_on_commas_and_spaces_and_checks_count_and_length() {
        let p = |s: &str| parse(&[s.to_string()]);
        assert_eq!(p("明月,江，舟").unwrap(), ["明月", "江", "舟"]);
        assert_eq!(p("明月 江").unwrap(), ["明月", "江"]);
        assert!(p("").unwrap().is_empty());
        assert!(matches!(p(" , "), Err(WriteError::EmptyInput { .. })));
        assert!(p("一,二,三,四,五").is_err());
        assert!(p("明月光").unwrap_err().to_string().contains("明月,光"));
        assert!(p("a").is_err());
    }

    #[test]
    fn placements_use_distinct_lines_and_never_a_line_end() {
        let kept = HashMap::new();
        let rules = Rules {
            lines: vec![5; 4],
            kept: &kept,
            tones: ToneMode::Off,
            pattern: None,
        };
        let ws = words(&[&[P, Z], &[P], &[Z], &[P]]);
        let mut rng = Rng::new(3);
        let ps = placements(&ws, &rules, &mut rng, 6).unwrap();
        assert!(ps.len() > 1, "several placements");
        for p in &ps {
            assert_eq!(p.len(), 5);
            assert!(p.iter().all(|&((_, j), _)| j < 4), "{p:?}");
            let mut lines: Vec<usize> = p.iter().map(|&((i, _), _)| i).collect();
            lines.dedup();
            assert_eq!(lines.len(), 4, "{p:?}");
        }
        let five = words(&[&[P] as &[_]; 5]);
        assert!(placements(&five, &rules, &mut rng, 1).is_err());
    }

    #[test]
    fn strict_placements_agree_on_one_chain_and_avoid_unknown_tones_at_keys() {
        let kept = HashMap::new();
        let rules = Rules {
            lines: vec![5; 4],
            kept: &kept,
            tones: ToneMode::Strict,
            pattern: None,
        };
        // two level characters side by side: one of them sits at a key position
        let ws = words(&[&[P, P], &[Z, Z], &[None]]);
        let mut rng = Rng::new(5);
        for p in placements(&ws, &rules, &mut rng, 8).unwrap() {
            let tone = |id: u32| ws.iter().flatten().find(|w| w.0 == id).unwrap().1;
            let mut start = None;
            for &((i, j), t) in &p {
                if tone(t).is_none() {
                    assert!(!key_positions(5).contains(&j), "unknown at a key: {p:?}");
                }
                if let Some(s) = strict_start(5, i, j, tone(t)) {
                    assert!(start.is_none_or(|s0| s0 == s), "{p:?}");
                    start = Some(s);
                }
            }
        }
        // a kept character fixing the chain, and a keyword that cannot follow it:
        // 平 at line 1's 2nd place makes every key of line 2's… only 仄平 pairs fit
        let kept: HashMap<(usize, usize), Option<Tone>> = [((0, 1), P)].into();
        let rules = Rules {
            lines: vec![5; 2],
            kept: &kept,
            tones: ToneMode::Strict,
            pattern: None,
        };
        // line 1 keys (1, 3) are 平 仄, line 2 keys are 仄 平; a keyword `平平平平`
        // cannot be placed (too long anyway), but `平` on line 2 only at 0, 2 or 3
        let one = words(&[&[P], &[P]]);
        for p in placements(&one, &rules, &mut Rng::new(1), 8).unwrap() {
            for &((i, j), _) in &p {
                assert!(!(i == 1 && j == 1), "平 at a 仄 key: {p:?}");
                assert!(!(i == 0 && j == 3), "平 at a 仄 key: {p:?}");
            }
        }
    }

    #[test]
    fn a_tune_pattern_decides_each_place() {
        let kept = HashMap::new();
        let rules = Rules {
            lines: vec![3, 3],
            kept: &kept,
            tones: ToneMode::Strict,
            pattern: Some(vec![
                vec![Tone::Ze, Tone::Ze, Tone::Ping],
                vec![Tone::Both, Tone::Ze, Tone::Ping],
            ]),
        };
        let ws = words(&[&[P]]);
        let ps = placements(&ws, &rules, &mut Rng::new(2), 8).unwrap();
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0][0].0, (1, 0));
        assert!(placements(&words(&[&[P], &[P]]), &rules, &mut Rng::new(2), 1).is_err());
    }
}
