//! From what was asked to what the writer keeps to: the layout of lines,
//! the kept characters (an acrostic's heads, a template's, keyword
//! placements), the title and form tag fed first, and the checks of the
//! input that come before any model step ([`Plan`]).

use super::*;

impl<M: CharModel> Writer<'_, M> {
    /// Turns the options into a layout and the forced tokens, checking the input.
    pub(super) fn plan(&self, opts: &Options) -> Result<Plan, WriteError> {
        let heads = self.input_tokens(&opts.acrostic, "acrostic")?;
        let begin = self.input_tokens(&opts.begin, "begin")?;
        if !heads.is_empty() && !begin.is_empty() {
            return Err(WriteError::BeginAndAcrostic);
        }
        if opts.tune.is_some() && !heads.is_empty() {
            return Err(WriteError::AcrosticAndTune);
        }
        for (&id, c) in heads
            .iter()
            .zip(opts.acrostic.chars().filter(|c| !c.is_whitespace()))
        {
            if !self.chars[id as usize].is_some_and(is_han) {
                return Err(WriteError::NotHan { ch: c });
            }
        }
        if heads.len() > MAX_ACROSTIC {
            return Err(WriteError::TooLong {
                flag: "acrostic",
                len: heads.len(),
                max: MAX_ACROSTIC,
                hint: "",
            });
        }
        let layout: Option<Vec<LineSpec>> = match (&opts.tune, opts.form.shape()) {
            (Some(t), _) => Some(
                t.lines
                    .iter()
                    .map(|l| LineSpec {
                        len: l.len,
                        end: l.end,
                    })
                    .collect(),
            ),
            (None, Some((n, len))) => {
                let n = if heads.is_empty() { n } else { heads.len() };
                Some(
                    (0..n)
                        .map(|i| LineSpec {
                            len,
                            end: if i % 2 == 1 || i + 1 == n {
                                '。'
                            } else {
                                '，'
                            },
                        })
                        .collect(),
                )
            }
            (None, None) => None,
        };
        if let Some(layout) = &layout {
            let cap: usize = layout.iter().map(|l| l.len + 1).sum();
            if begin.len() > cap {
                return Err(WriteError::TooLong {
                    flag: "begin",
                    len: begin.len(),
                    max: cap,
                    hint: ", or write the free form",
                });
            }
            // Each given character must fall where the form has room for it:
            // Han inside a line, punctuation at a line end.
            let slots = layout
                .iter()
                .enumerate()
                .flat_map(|(i, l)| (0..=l.len).map(move |j| (i, j, l.len)));
            for (&t, (i, j, len)) in begin.iter().zip(slots) {
                let han = self.chars[t as usize].is_some_and(is_han);
                if han != (j < len) {
                    return Err(WriteError::BeginDoesNotFit {
                        ch: self.chars[t as usize].unwrap_or('?'),
                        line: i + 1,
                        pos: j + 1,
                        len,
                    });
                }
            }
            for l in layout {
                if !self.ids.contains_key(&l.end) {
                    return Err(WriteError::MissingPunct { ch: l.end });
                }
            }
        } else if let Some(k) = begin.iter().enumerate().position(|(k, &t)| {
            // free verse: a line end first, or right after another, would close an empty line
            let han = |t: u32| self.chars[t as usize].is_some_and(is_han);
            !han(t) && (k == 0 || !han(begin[k - 1]))
        }) {
            return Err(WriteError::BadOption {
                what: format!(
                    "--begin: `{}` at character {} would end an empty line (begin with a character, and put one between two punctuation marks)",
                    self.chars[begin[k] as usize].unwrap_or('?'),
                    k + 1
                ),
            });
        } else if begin.len() >= opts.max_len {
            return Err(WriteError::TooLong {
                flag: "begin",
                len: begin.len(),
                max: opts.max_len.saturating_sub(1),
                hint: ", or raise the maximum length",
            });
        }
        let tag = match &opts.tune {
            None => self.model.form_tag(opts.tag.unwrap_or(opts.form)),
            Some(_) => None,
        };
        // Kept characters: the acrostic's heads, and a template's characters.
        let mut locks: HashMap<(usize, usize), u32> = heads
            .iter()
            .enumerate()
            .map(|(i, &t)| ((i, 0), t))
            .collect();
        if !opts.template.is_empty() {
            for (i, j, c) in template::parse(&opts.template)?.kept() {
                let t = self.token_of(c).ok_or(WriteError::UnknownChar {
                    flag: "template",
                    ch: c,
                    code: c as u32,
                    other: "traditional or simplified",
                })?;
                locks.insert((i, j), t);
            }
        }
        let title = self.title_tokens(&opts.title)?;
        let keywords = self.keyword_tokens(opts, layout.is_some())?;
        Ok(Plan {
            layout,
            ci: opts.tune.clone(),
            heads,
            locks,
            begin,
            tag,
            title,
            score_kept: !keywords.is_empty(),
            keywords,
            max_len: opts.max_len,
            temperature: opts.temperature,
            top_k: opts.top_k,
            top_p: opts.top_p,
        })
    }

    /// A title's tokens and the BEGIN that closes them; an error when the
    /// model does not read titles or the title is not one.
    pub(super) fn title_tokens(&self, title: &str) -> Result<Vec<u32>, WriteError> {
        if title.trim().is_empty() {
            return Ok(Vec::new());
        }
        if !self.model.reads_titles() {
            return Err(WriteError::BadOption {
                what: "title: this model was not trained with titles (`shiren train --titles`); drop the title, or use a model that reads them such as the shipped one".into(),
            });
        }
        if let Some(c) = title.chars().find(|&c| !c.is_whitespace() && !is_han(c)) {
            return Err(WriteError::BadOption {
                what: format!("title: `{c}` is not a Han character (a title is a few Han characters, e.g. 送别)"),
            });
        }
        // A character the model lacks is read as UNK, as rare title characters were in training.
        let mut ids: Vec<u32> = title
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| self.token_of(c).unwrap_or(UNK))
            .collect();
        if ids.len() > crate::title::MAX_TITLE {
            return Err(WriteError::TooLong {
                flag: "title",
                len: ids.len(),
                max: crate::title::MAX_TITLE,
                hint: "",
            });
        }
        ids.push(BEGIN);
        Ok(ids)
    }

    /// The keywords' tokens and tones; an error for a bad list, an unknown
    /// character, or keywords without lines to put them in.
    pub(super) fn keyword_tokens(
        &self,
        opts: &Options,
        has_layout: bool,
    ) -> Result<Vec<keywords::Word>, WriteError> {
        let words = keywords::parse(&opts.keywords)?;
        if words.is_empty() {
            return Ok(Vec::new());
        }
        if !has_layout {
            return Err(WriteError::BadOption {
                what: "keywords need a poem of fixed lines: give a form (--form wujue, qijue, wulv or qilv), a tune or a template".into(),
            });
        }
        words
            .iter()
            .map(|w| {
                self.input_tokens(w, "keywords").map(|ids| {
                    ids.into_iter()
                        .map(|t| (t, self.tone[t as usize]))
                        .collect()
                })
            })
            .collect()
    }

    /// The plans of one poem's drafts: none (every draft writes `plan`)
    /// without keywords; with them, one placement of the keywords per draft.
    pub(super) fn draft_plans(
        &self,
        plan: &Plan,
        opts: &Options,
        rng: &Rng,
    ) -> Result<Vec<Plan>, WriteError> {
        if plan.keywords.is_empty() {
            return Ok(Vec::new());
        }
        let layout = plan.layout.as_deref().unwrap_or(&[]);
        let kept: HashMap<(usize, usize), Option<Tone>> = plan
            .locks
            .iter()
            .map(|(&at, &t)| (at, self.tone[t as usize]))
            .collect();
        let job = self.job(opts, rng.clone());
        let rules = keywords::Rules {
            lines: layout.iter().map(|l| l.len).collect(),
            kept: &kept,
            tones: job.tones,
            pattern: plan
                .ci
                .as_ref()
                .map(|f| f.lines.iter().map(|l| l.tones.clone()).collect()),
        };
        let mut rng = rng.fork(0x4B57);
        let found = keywords::placements(&plan.keywords, &rules, &mut rng, opts.drafts.max(1))?;
        Ok(found
            .into_iter()
            .map(|p| {
                let mut d = plan.clone();
                d.locks.extend(p);
                d
            })
            .collect())
    }

    /// The tokens of user input; whitespace is dropped, unknown characters are an error.
    pub(super) fn input_tokens(
        &self,
        text: &str,
        flag: &'static str,
    ) -> Result<Vec<u32>, WriteError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        if chars.is_empty() {
            return Err(WriteError::EmptyInput { flag });
        }
        chars
            .iter()
            .map(|&c| {
                self.token_of(c).ok_or(WriteError::UnknownChar {
                    flag,
                    ch: c,
                    code: c as u32,
                    other: "traditional or simplified",
                })
            })
            .collect()
    }
}

/// The checked input of one `write` call.
#[derive(Clone)]
pub(super) struct Plan {
    pub(super) layout: Option<Vec<LineSpec>>,
    /// Writing a ci: its tune's form (tones per position, rhyme sets).
    pub(super) ci: Option<TuneForm>,
    pub(super) heads: Vec<u32>,
    /// Characters kept at (line, position), from 0: acrostic heads, a template's.
    pub(super) locks: HashMap<(usize, usize), u32>,
    pub(super) begin: Vec<u32>,
    /// Fed after BEGIN: the form's tag.
    pub(super) tag: Option<u32>,
    /// Fed first, after a BEGIN of its own: the title's characters and the
    /// BEGIN that closes them (see [`crate::title`]); empty without a title.
    pub(super) title: Vec<u32>,
    /// Keywords that must appear, each character with its tone.
    pub(super) keywords: Vec<keywords::Word>,
    /// Count the kept characters' own log-probability in the score, so that
    /// drafts with different keyword placements compare on the whole poem.
    pub(super) score_kept: bool,
    pub(super) max_len: usize,
    pub(super) temperature: f32,
    pub(super) top_k: usize,
    pub(super) top_p: f32,
}

/// What a ci position's pattern tone asks of a character (either: anything,
/// even a character of unknown tone).
pub(super) fn ci_req(t: Tone) -> ToneReq {
    match t {
        Tone::Ping => ToneReq::Ping,
        Tone::Ze => ToneReq::Ze,
        Tone::Both => ToneReq::Any,
    }
}

/// The side rhyme set `s` rhymes on for a ci (true: level); `None` for shi,
/// whose rhyme groups are all level.
pub(super) fn set_level(plan: &Plan, s: usize) -> Option<bool> {
    plan.ci
        .as_ref()
        .map(|f| f.set_tone(s).is_none_or(|t| t == Tone::Ping))
}

/// The common line length when every line has 5 or 7 characters, all the same.
pub(super) fn regulated_len(layout: &[LineSpec]) -> Option<usize> {
    let len = layout.first()?.len;
    (matches!(len, 5 | 7) && layout.iter().all(|l| l.len == len)).then_some(len)
}

pub(super) fn check_options(o: &Options) -> Result<(), WriteError> {
    let bad = |what: String| Err(WriteError::BadOption { what });
    if !(o.temperature >= 0.0 && o.temperature.is_finite()) {
        return bad(format!(
            "temperature must be 0 or more, got {}",
            o.temperature
        ));
    }
    if !(o.top_p > 0.0 && o.top_p <= 1.0) {
        return bad(format!("top_p must be in (0, 1], got {}", o.top_p));
    }
    if o.max_len == 0 {
        return bad("max_len must be at least 1".into());
    }
    if let Some(t) = &o.tune {
        let broken = t.lines.iter().any(|l| {
            l.len == 0 || l.tones.len() != l.len || l.rhyme.is_some_and(|s| s >= t.sets.len())
        });
        if t.lines.is_empty() || broken {
            return bad(
                "the tune's pattern is empty or broken (rebuild it with `shiren tunes`)".into(),
            );
        }
    }
    Ok(())
}
