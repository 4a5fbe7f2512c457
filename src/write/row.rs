//! One poem in the batch: its draw stream and the constraints it is under
//! ([`Job`], loosened one step at a time at a dead end), and its row of the
//! batched loop ([`DraftRow`]: the model state, the prefix still to feed, the
//! cursor that chooses).

use super::*;

/// One poem's draw stream and the constraints it is under now.
#[derive(Clone)]
pub(super) struct Job {
    pub(super) rng: Rng,
    pub(super) notes: Vec<String>,
    pub(super) tones: ToneMode,
    pub(super) rhyme: bool,
    /// Rhyme groups given up on after a dead end.
    pub(super) excluded: Vec<u16>,
    /// Writing a ci: rhyme groups are 词林正韵 classes.
    pub(super) ci: bool,
    /// The repetition rule is in force (regulated lines only).
    pub(super) repeats: bool,
}

impl Job {
    /// Loosens one constraint after a dead end: another rhyme group, then
    /// looser tones, then no rhyme; with nothing left to loosen, an error.
    pub(super) fn back_off(
        &mut self,
        lex: Option<&Lexicon>,
        dead: DeadEnd,
    ) -> Result<(), WriteError> {
        let (line, pos) = (dead.line + 1, dead.pos + 1);
        if let (Some(g), true) = (dead.group, self.excluded.len() < 3) {
            let name = match (self.ci, lex) {
                (true, _) => Class::from_index(g as usize).name(),
                (false, Some(l)) => l.group_name(g).to_string(),
                (false, None) => String::new(),
            };
            self.notes.push(format!(
                "no character fits line {line}, position {pos} in rhyme group {name}; trying another group"
            ));
            self.excluded.push(g);
        } else if self.tones != ToneMode::Off && !(dead.foot && self.rhyme) {
            let looser = if self.tones == ToneMode::Strict {
                ToneMode::Loose
            } else {
                ToneMode::Off
            };
            self.notes.push(
                format!("no character fits line {line}, position {pos} under {:?} tones; relaxing to {looser:?}", self.tones)
                    .to_lowercase(),
            );
            self.tones = looser;
        } else if self.rhyme {
            self.notes.push(format!(
                "no rhyming character fits line {line}, position {pos}; writing without rhyme"
            ));
            self.rhyme = false;
        } else {
            return Err(WriteError::NoCandidates { line, pos });
        }
        Ok(())
    }
}

/// One poem being written: its constraints and draws, its place in the
/// poem, the model's state, and what it feeds next.
pub(super) struct DraftRow<'p, M: CharModel> {
    pub(super) plan: &'p Plan,
    pub(super) job: Job,
    pub(super) cur: Cursor,
    pub(super) state: M::State,
    /// The token to feed at the next step; `None` once the poem is done.
    pub(super) feed: Option<u32>,
    /// Prefix tokens still to feed after BEGIN (a title and its BEGIN, the form tag), last first.
    pub(super) prefix: Vec<u32>,
    /// Which request of [`Writer::write_requests`] the poem is for.
    pub(super) request: usize,
    /// The tokens fed so far, as an id shared by the rows of one run that
    /// were fed the same ones (so are in the same state): 0 before the
    /// first, [`UNIQUE`] once no other row shares them.
    pub(super) hist: u32,
    pub(super) poem: Option<Result<Poem, WriteError>>,
}

impl<'p, M: CharModel> DraftRow<'p, M> {
    pub(super) fn new(w: &Writer<M>, plan: &'p Plan, job: Job, request: usize) -> DraftRow<'p, M> {
        DraftRow {
            plan,
            cur: Cursor::new(w, plan, &job),
            job,
            state: w.model.initial_state(),
            feed: Some(BEGIN),
            // popped from the end: the title, its closing BEGIN, then the tag
            prefix: plan
                .tag
                .into_iter()
                .chain(plan.title.iter().rev().copied())
                .collect(),
            request,
            hist: 0,
            poem: None,
        }
    }

    /// Whether the choice after the token about to be fed reads logits:
    /// not when it is a prefix token or forced by the plan.
    pub(super) fn needs_logits(&self, w: &Writer<M>) -> bool {
        // The cursor has already moved past the token being fed.
        self.prefix.is_empty()
            && match self.cur.forced(w, self.plan) {
                None => true,
                Some(_) => self.plan.score_kept && self.cur.at_lock(self.plan),
            }
    }

    /// Takes the logits after the last token fed and decides what comes next.
    pub(super) fn advance(&mut self, w: &Writer<M>, logits: &[f32]) {
        if let Some(t) = self.prefix.pop() {
            self.feed = Some(t);
            return;
        }
        self.feed = None;
        match self.cur.choose(w, self.plan, logits, &mut self.job) {
            Step::Feed(t) => self.feed = Some(t),
            Step::Done => {
                let mut poem = self.cur.finish(w, self.plan, &self.job);
                if let (Some(lex), false) = (w.lex, self.plan.locks.is_empty()) {
                    let kept: Vec<(usize, usize)> = self.plan.locks.keys().copied().collect();
                    poem.notes.extend(template::kept_faults(lex, &poem, &kept));
                }
                self.poem = Some(Ok(poem));
            }
            // Each dead end loosens one constraint or fails, so this ends.
            Step::Dead(dead) => match self.job.back_off(w.lex, dead) {
                Ok(()) => *self = DraftRow::new(w, self.plan, self.job.clone(), self.request),
                Err(e) => self.poem = Some(Err(e)),
            },
        }
    }
}
