//! Suggestions from the model for a person's poem: at each character that
//! breaks a rule, the characters the model likes best in that context that
//! would keep the rules ([`crate::prosody::check::fits_at`] decides which).
//!
//! The model reads the poem from its start, as it would have written it, so
//! each position's probabilities come from the characters before it (the
//! form's tag first, when the model has one). The rules come from `prosody`;
//! this file only runs the model and ranks.

use serde::Serialize;

use super::{CharModel, Writer, BEGIN, UNK};
use crate::prosody::check::{fault_positions, fits_at, Checked, Target};
use crate::prosody::{is_han, Lexicon};

/// Characters offered at one broken position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suggestion {
    /// Line and character, from 1.
    pub line: usize,
    pub pos: usize,
    /// The character there now.
    pub ch: char,
    /// The model's likeliest characters that keep the rules, with its
    /// probability of each at this position, best first.
    pub options: Vec<(char, f32)>,
}

/// How far down the model's ranking to look for characters that fit.
const SEARCH: usize = 3000;

impl<M: CharModel> Writer<'_, M> {
    /// Up to `k` suggestions for every position where `checked` found a
    /// broken rule. `lex` is the lexicon of the poem's script and
    /// `to_script` turns the model's characters into that script.
    pub fn suggest(
        &self,
        lex: &Lexicon,
        checked: &Checked,
        k: usize,
        to_script: &dyn Fn(char) -> char,
    ) -> Vec<Suggestion> {
        let lines: Vec<Vec<char>> = checked
            .lines
            .iter()
            .map(|l| l.chars.iter().map(|c| c.ch).collect())
            .collect();
        let wanted = fault_positions(checked);
        if wanted.is_empty() {
            return Vec::new();
        }
        let probs = self.probabilities(checked, &wanted);
        let target: Target = checked.target;
        wanted
            .iter()
            .zip(probs)
            .map(|(&(i, j), p)| {
                let mut ranked: Vec<(u32, f32)> =
                    self.han.iter().map(|&id| (id, p[id as usize])).collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let mut options = Vec::new();
                for &(id, prob) in ranked.iter().take(SEARCH) {
                    let Some(c) = self.chars[id as usize].map(to_script) else {
                        continue;
                    };
                    // A character of unknown tone would pass every rule without keeping any.
                    if c == lines[i][j]
                        || !is_han(c)
                        || lex.tone(c).is_none()
                        || options.iter().any(|o: &(char, f32)| o.0 == c)
                    {
                        continue;
                    }
                    if fits_at(lex, &lines, target, checked, i, j, c) {
                        options.push((c, prob));
                        if options.len() == k {
                            break;
                        }
                    }
                }
                Suggestion {
                    line: i + 1,
                    pos: j + 1,
                    ch: lines[i][j],
                    options,
                }
            })
            .collect()
    }

    /// The model's next-character probabilities at each wanted (line,
    /// position), reading the poem from its start.
    fn probabilities(&self, checked: &Checked, wanted: &[(usize, usize)]) -> Vec<Vec<f32>> {
        let v = self.model.vocab_size();
        let mut state = self.model.initial_state();
        let mut logits = vec![0f32; v];
        let mut out = vec![Vec::new(); wanted.len()];
        let form = match checked.target {
            Target::Form(f) => f.shape().and_then(|s| {
                [
                    super::Form::Wujue,
                    super::Form::Qijue,
                    super::Form::Wulv,
                    super::Form::Qilv,
                ]
                .into_iter()
                .find(|w| w.shape() == Some(s))
            }),
        };
        self.model.step(&mut state, BEGIN, &mut logits);
        if let Some(tag) = form.and_then(|f| self.model.form_tag(f)) {
            self.model.step(&mut state, tag, &mut logits);
        }
        let n = checked.lines.len();
        for (i, line) in checked.lines.iter().enumerate() {
            for (j, c) in line.chars.iter().enumerate() {
                for (slot, &(wi, wj)) in out.iter_mut().zip(wanted) {
                    if (wi, wj) == (i, j) {
                        *slot = softmax(&logits);
                    }
                }
                let t = self.token_of(c.ch).unwrap_or(UNK);
                self.model.step(&mut state, t, &mut logits);
            }
            let end = match line.end.chars().next() {
                Some(e) => e,
                None if i % 2 == 1 || i + 1 == n => '。',
                None => '，',
            };
            if let Some(t) = self.token_of(end) {
                self.model.step(&mut state, t, &mut logits);
            }
        }
        out
    }
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let total: f32 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= total);
    p
}
