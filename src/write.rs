//! Writing poems: sampling characters from a model under form, rhyme and tone
//! constraints.
//!
//! The heart is one commented step, `Cursor::choose`, run for every poem by
//! the loop in `Writer::run`, in the shape of nanoGPT's `generate`: step the
//! model (all poems in one batch), turn the constraints at this position
//! into the set of allowed characters, scale by temperature, keep the top k,
//! keep the top p, sample with the seeded generator, append. Everything the
//! constraints need per character (is it Han, its tone, its rhyme groups) is
//! computed once per model and lexicon in [`Writer::new`], so a step costs
//! one model step plus one pass over the allowed characters.
//!
//! Any model that maps a state and a token to next-token logits can write:
//! [`CharModel`] is implemented for the trained network and, in the tests,
//! for a bigram table. Not here: loading checkpoints or the lexicon, and
//! printing (that is `cli/write.rs`); the rules themselves (`prosody`).
//!
//! This file holds the writer and its batched loop; `options.rs` what a
//! caller asks for, `poem.rs` what it gets back; `plan.rs` turns the
//! options into a plan, `row.rs` holds one poem's constraints and backoff,
//! `cursor.rs` chooses each character, `sample.rs` draws it, `lm.rs` is the
//! trained model as a [`CharModel`].

mod cursor;
pub mod keywords;
mod lm;
mod options;
mod plan;
mod poem;
mod row;
mod sample;
pub mod suggest;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;

use rayon::prelude::*;

use crate::corpus::convert::{to_simplified, to_traditional};
pub use crate::corpus::Form;
use crate::prosody::cilin::{Cilin, Class, NUM_CLASSES};
use crate::prosody::repeats;
use crate::prosody::rules::{TonePlan, ToneReq};
use crate::prosody::tunes::TuneForm;
use crate::prosody::{is_han, Lexicon, Tone, ToneMode};
use crate::rng::Rng;
use crate::vocab::Vocab;

use cursor::Cursor;
/// Special token ids, the vocabulary's.
pub use lm::Lm;
pub use options::{LineSpec, Options, WriteError, DEFAULT_DRAFTS, MAX_ACROSTIC, MAX_DRAFTS};
use plan::{check_options, ci_req, regulated_len, set_level, Plan};
pub use poem::{CharMark, Draft, Line, Poem};
use row::{DraftRow, Job};
pub use sample::sample;
use sample::TopK;

pub const PAD: u32 = Vocab::PAD;
pub const BEGIN: u32 = Vocab::BEGIN;
pub const END: u32 = Vocab::END;
pub const UNK: u32 = Vocab::UNK;

/// A character-level language model, one step at a time.
/// `Sync` and a `Send` state so that the rows of a batch can pick their next
/// tokens on all cores.
pub trait CharModel: Sync {
    /// Whatever the model carries from one character to the next (h, c).
    type State: Send + Clone;
    /// Number of token ids (logits per step), specials included.
    fn vocab_size(&self) -> usize;
    /// The character of token `id`; `None` for the specials (pad, begin, end, unknown) and tags.
    fn char_of(&self, id: u32) -> Option<char>;
    /// The token that asks for `form`, fed after BEGIN, if the model was
    /// trained with form tags (see `TrainConfig::form_tags`).
    fn form_tag(&self, _form: Form) -> Option<u32> {
        None
    }
    /// Whether the model was trained with titles (see [`crate::title`]), so
    /// that a title may be fed before BEGIN.
    fn reads_titles(&self) -> bool {
        false
    }
    /// Whether the logits [`CharModel::step`] writes are log-probabilities
    /// already (a two-level head writes them so); if not, drafts' scores
    /// normalise each row.
    fn logits_are_log_probs(&self) -> bool {
        false
    }
    /// The state before the first token.
    fn initial_state(&self) -> Self::State;
    /// Feeds `token`, advancing `state`, and writes the logits of the next token.
    fn step(&self, state: &mut Self::State, token: u32, logits: &mut [f32]);
    /// Feeds one token to each of many sequences and writes their next
    /// logits (rows × vocab), or skips them when `logits` is `None` (every
    /// next token is forced). The default steps the rows one by one; a model
    /// that runs a batch faster than its rows overrides it (see [`Lm`]).
    fn step_rows(
        &self,
        states: &mut [&mut Self::State],
        tokens: &[u32],
        logits: Option<&mut [f32]>,
    ) {
        let v = self.vocab_size();
        let mut scratch = Vec::new();
        let logits = logits.unwrap_or_else(|| {
            scratch.resize(states.len() * v, 0.0);
            &mut scratch
        });
        for ((s, &t), row) in states
            .iter_mut()
            .zip(tokens)
            .zip(logits.chunks_exact_mut(v))
        {
            self.step(s, t, row);
        }
    }
}

/// A model and a lexicon, with everything the constraints need per token
/// computed once: which tokens may stand inside a line, their tones, their
/// level rhyme groups.
pub struct Writer<'a, M: CharModel> {
    model: &'a M,
    lex: Option<&'a Lexicon>,
    ids: HashMap<char, u32>,
    chars: Vec<Option<char>>,
    /// Han characters: allowed inside a line.
    han: Vec<u32>,
    /// Han characters by the requirement they meet: index by `req_index`.
    by_req: [Vec<u32>; 4],
    /// Level rhyme groups of each token (empty for most).
    token_groups: Vec<Vec<u16>>,
    /// Tokens in each level group (by group id; empty for oblique groups).
    group_members: Vec<Vec<u32>>,
    /// For ci: the 词林正韵 classes of each token (see [`Class::index`]), and the tokens of each class.
    token_classes: Vec<Vec<u16>>,
    class_members: Vec<Vec<u32>>,
    tone: Vec<Option<Tone>>,
    /// Free mode: Han plus sentence punctuation and line breaks.
    free_ok: Vec<bool>,
    /// Characters the repetition rule lets repeat ([`repeats::FREE_CHARS`]).
    may_repeat: Vec<bool>,
}

/// Punctuation the free mode may write, and which of it closes a line.
const FREE_PUNCT: &[char] = &['，', '。', '！', '？', '；', '、', '：', '\n'];

fn req_index(r: ToneReq) -> usize {
    match r {
        ToneReq::Any => 0,
        ToneReq::Known => 1,
        ToneReq::Ping => 2,
        ToneReq::Ze => 3,
    }
}

/// Where the sampler is in the poem.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// A character inside the current line.
    Char,
    /// The closing punctuation of line `i`.
    Punct,
}

/// Why an attempt could not go on: nothing allowed at (line, pos), and the
/// rhyme group that was in force there, if any.
struct DeadEnd {
    line: usize,
    pos: usize,
    group: Option<u16>,
    foot: bool,
}

impl<'a, M: CharModel> Writer<'a, M> {
    /// Precomputes the per-token tables. `lex` is needed for rhyme and tones;
    /// without it they are skipped (with a note) and no tones are marked.
    pub fn new(model: &'a M, lex: Option<&'a Lexicon>) -> Writer<'a, M> {
        let v = model.vocab_size();
        let chars: Vec<Option<char>> = (0..v as u32)
            .map(|id| match id {
                PAD | BEGIN | END | UNK => None,
                _ => model.char_of(id),
            })
            .collect();
        let mut ids = HashMap::new();
        let mut han = Vec::new();
        let mut by_req: [Vec<u32>; 4] = Default::default();
        let mut token_groups = vec![Vec::new(); v];
        let mut group_members = vec![Vec::new(); lex.map_or(0, |l| l.num_groups())];
        let mut tone = vec![None; v];
        let mut free_ok = vec![false; v];
        let mut may_repeat = vec![false; v];
        for (id, c) in chars.iter().enumerate() {
            let Some(c) = *c else { continue };
            let id32 = id as u32;
            ids.entry(c).or_insert(id32);
            may_repeat[id] = repeats::is_free(c);
            free_ok[id] = is_han(c) || FREE_PUNCT.contains(&c);
            if !is_han(c) {
                continue;
            }
            han.push(id32);
            let t = lex.and_then(|l| l.tone(c));
            tone[id] = t;
            for req in [ToneReq::Any, ToneReq::Known, ToneReq::Ping, ToneReq::Ze] {
                if req.allows(t) {
                    by_req[req_index(req)].push(id32);
                }
            }
            if let Some(l) = lex {
                for g in l.level_groups(c) {
                    token_groups[id].push(g);
                    group_members[g as usize].push(id32);
                }
            }
        }
        let w = Writer {
            model,
            lex,
            ids,
            chars,
            han,
            by_req,
            token_groups,
            group_members,
            token_classes: vec![Vec::new(); v],
            class_members: Vec::new(),
            tone,
            free_ok,
            may_repeat,
        };
        match lex {
            Some(l) => w.with_cilin(&Cilin::new(l)),
            None => w,
        }
    }

    /// The lexicon the writer was built with, if any.
    pub fn lexicon(&self) -> Option<&'a Lexicon> {
        self.lex
    }

    /// Rhymes ci by `cilin` (a 词林正韵 table refined by the corpus, see
    /// [`Cilin::refine`]) instead of the plain one built from the lexicon.
    /// Ignored when it was built for another table of groups.
    pub fn with_cilin(mut self, cilin: &Cilin) -> Writer<'a, M> {
        let Some(lex) = self.lex else { return self };
        if cilin.num_groups() != lex.num_groups() {
            return self;
        }
        self.class_members = vec![Vec::new(); NUM_CLASSES];
        for (id, c) in self.chars.iter().enumerate() {
            self.token_classes[id].clear();
            let Some(c) = *c else { continue };
            if !is_han(c) {
                continue;
            }
            for k in cilin.classes(lex, c) {
                self.token_classes[id].push(k.index() as u16);
                self.class_members[k.index()].push(id as u32);
            }
        }
        self
    }

    /// The token of `c` in this model, trying the other script when the
    /// model does not know it (a simplified model given 風 uses 风).
    pub fn token_of(&self, c: char) -> Option<u32> {
        if let Some(&id) = self.ids.get(&c) {
            return Some(id);
        }
        let mut buf = [0u8; 4];
        let s = c.encode_utf8(&mut buf);
        for other in [to_simplified(s), to_traditional(s)] {
            let mut it = other.chars();
            if let (Some(o), None) = (it.next(), it.next()) {
                if let Some(&id) = self.ids.get(&o) {
                    return Some(id);
                }
            }
        }
        None
    }

    /// Writes `count` poems; poem k draws from its own stream forked from
    /// `seed`, so the same seed gives the same poems.
    pub fn write_many(
        &self,
        opts: &Options,
        count: usize,
        seed: u64,
    ) -> Result<Vec<Poem>, WriteError> {
        let req = Request {
            opts: opts.clone(),
            count,
            seed,
        };
        let mut out = self.write_requests(std::slice::from_ref(&req));
        out.pop().expect("one result per request")
    }

    /// [`Self::write_many`]'s poems, handed to `emit` [`BATCH`] at a time as
    /// each batch is written: memory stays that of one batch whatever `count`
    /// is, and the first poems show at once.
    pub fn write_each<E: From<WriteError>>(
        &self,
        opts: &Options,
        count: usize,
        seed: u64,
        mut emit: impl FnMut(Poem) -> Result<(), E>,
    ) -> Result<(), E> {
        check_options(opts)?;
        // as write_requests: a template's shape becomes the form
        let opts = &template::shaped(opts)?;
        let plan = self.plan(opts)?;
        let base = Rng::new(seed);
        // as write_requests: one row per draft, the poem is the best draft
        let n_drafts = opts.drafts.max(1);
        let per_batch = (run_rows() / n_drafts).max(1);
        for start in (0..count).step_by(per_batch) {
            let end = count.min(start + per_batch);
            let rngs: Vec<Rng> = (start..end).map(|k| base.fork(k as u64)).collect();
            let plans = rngs
                .iter()
                .map(|rng| self.draft_plans(&plan, opts, rng))
                .collect::<Result<Vec<_>, _>>()?;
            let mut rows = Vec::with_capacity((end - start) * n_drafts);
            for (slot, (rng, plans)) in rngs.iter().zip(&plans).enumerate() {
                for d in 0..n_drafts {
                    rows.push(DraftRow::new(
                        self,
                        pick(&plan, plans, d),
                        self.job(opts, draft_rng(rng, d)),
                        slot,
                    ));
                }
            }
            let mut drafts: Vec<Vec<Result<Poem, WriteError>>> = vec![Vec::new(); end - start];
            for chunk in rows.chunks_mut(run_rows()) {
                for (slot, poem) in self.run(chunk) {
                    drafts[slot].push(poem);
                }
            }
            for d in drafts {
                emit(best_draft(d, opts.all_drafts)?)?;
            }
        }
        Ok(())
    }

    /// Many requests' poems written side by side, [`BATCH`] at a time, so that
    /// each model step is one batched product for all of them (the web
    /// service gathers concurrent requests this way). One result per request:
    /// its poems, or its first error.
    pub fn write_requests(&self, reqs: &[Request]) -> Vec<Result<Vec<Poem>, WriteError>> {
        // A template's shape becomes the form (or layout) both the plan and the job see.
        let shaped: Vec<Result<Options, WriteError>> = reqs
            .iter()
            .map(|r| {
                check_options(&r.opts)?;
                template::shaped(&r.opts)
            })
            .collect();
        let plans: Vec<Result<Plan, WriteError>> = shaped
            .iter()
            .map(|o| self.plan(o.as_ref().map_err(Clone::clone)?))
            .collect();
        let mut out: Vec<Result<Vec<Poem>, WriteError>> = plans
            .iter()
            .map(|p| p.as_ref().map(|_| Vec::new()).map_err(Clone::clone))
            .collect();
        // Each poem's draft plans (keyword placements), made before any row borrows them.
        let mut poems = Vec::new();
        for (q, ((r, plan), opts)) in reqs.iter().zip(&plans).zip(&shaped).enumerate() {
            if let (Ok(plan), Ok(opts)) = (plan, opts) {
                let base = Rng::new(r.seed);
                for k in 0..r.count {
                    let rng = base.fork(k as u64);
                    match self.draft_plans(plan, opts, &rng) {
                        Ok(dp) => poems.push((q, rng, dp)),
                        Err(e) => {
                            out[q] = Err(e);
                            break;
                        }
                    }
                }
            }
        }
        poems.retain(|(q, _, _)| out[*q].is_ok());
        // One row per draft of each poem; `slots` says which request each poem is for.
        let mut rows = Vec::new();
        let mut slots = Vec::new();
        for (q, rng, dp) in &poems {
            let (Ok(plan), Ok(opts)) = (&plans[*q], &shaped[*q]) else {
                continue;
            };
            for d in 0..reqs[*q].opts.drafts.max(1) {
                let job = self.job(opts, draft_rng(rng, d));
                rows.push(DraftRow::new(self, pick(plan, dp, d), job, slots.len()));
            }
            slots.push(*q);
        }
        let mut drafts: Vec<Vec<Result<Poem, WriteError>>> = vec![Vec::new(); slots.len()];
        for chunk in rows.chunks_mut(run_rows()) {
            for (slot, poem) in self.run(chunk) {
                drafts[slot].push(poem);
            }
        }
        for (q, d) in slots.into_iter().zip(drafts) {
            match (&mut out[q], best_draft(d, reqs[q].opts.all_drafts)) {
                (Ok(poems), Ok(p)) => poems.push(p),
                (slot @ Ok(_), Err(e)) => *slot = Err(e),
                (Err(_), _) => {}
            }
        }
        out
    }

    /// Writes one poem with `rng`, which is left where the first draft's draws ended.
    pub fn write(&self, opts: &Options, rng: &mut Rng) -> Result<Poem, WriteError> {
        check_options(opts)?;
        let opts = &template::shaped(opts)?;
        let plan = self.plan(opts)?;
        let plans = self.draft_plans(&plan, opts, rng)?;
        let mut rows: Vec<DraftRow<'_, M>> = (0..opts.drafts.max(1))
            .map(|d| {
                let p = pick(&plan, &plans, d);
                DraftRow::new(self, p, self.job(opts, draft_rng(rng, d)), 0)
            })
            .collect();
        let drafts = self.run(&mut rows).into_iter().map(|(_, p)| p).collect();
        *rng = rows[0].job.rng.clone();
        best_draft(drafts, opts.all_drafts)
    }

    /// The constraints one poem starts with, and notes on any that cannot apply.
    fn job(&self, opts: &Options, rng: Rng) -> Job {
        // A tune brings its own tones and rhyme sets, whatever its line lengths.
        let regulated = opts.tune.is_some() || opts.form.shape().is_some();
        let mut job = Job {
            rng,
            notes: Vec::new(),
            tones: if regulated { opts.tones } else { ToneMode::Off },
            rhyme: opts.rhyme && regulated,
            excluded: Vec::new(),
            ci: opts.tune.is_some(),
            repeats: opts.repeats && regulated,
        };
        if (opts.rhyme || opts.tones != ToneMode::Off) && !regulated {
            job.notes
                .push("rhyme and tone rules need lines of 5 or 7 characters; not applied".into());
        }
        if (job.rhyme || job.tones != ToneMode::Off) && self.lex.is_none() {
            job.notes
                .push("no tone lexicon loaded; rhyme and tone rules not applied".into());
            job.rhyme = false;
            job.tones = ToneMode::Off;
        }
        job
    }

    /// Poems side by side until each is done: every row that has a token to
    /// feed is fed in one batched step, then picks its next token from its
    /// row of the logits. A row that meets a dead end loosens its constraints
    /// and starts again from BEGIN inside the same loop. Returns each row's
    /// request index and poem, in row order.
    ///
    /// From [`PART_MIN_ROWS`] rows a thread each, the rows are cut into one
    /// part per thread, and each part runs its own loop on its own thread,
    /// its products unsplit: the threads never wait for each other within a
    /// step, and the choosing and the copying of states run on both at once.
    fn run(&self, rows: &mut [DraftRow<'_, M>]) -> Vec<(usize, Result<Poem, WriteError>)> {
        let parts = crate::engine::matmul::splits()
            .min(rows.len() / PART_MIN_ROWS)
            .max(1);
        if parts == 1 {
            // The loop runs on a pool thread, so that a step's products split in
            // two hand the other half straight to the other worker: from outside
            // the pool each split is a trip through rayon's injector with two
            // thread wake-ups (measured at batch 1: 0.29 → 0.19 ms per character).
            return rayon::scope(|_| self.run_on_pool(rows, true));
        }
        let per = rows.len().div_ceil(parts);
        let mut done: Vec<Vec<(usize, Result<Poem, WriteError>)>> = Vec::new();
        done.resize_with(parts, Vec::new);
        rayon::scope(|s| {
            for (part, out) in rows.chunks_mut(per).zip(done.iter_mut()) {
                s.spawn(move |_| {
                    *out = crate::engine::matmul::serial(|| self.run_on_pool(part, false))
                });
            }
        });
        done.concat()
    }

    fn run_on_pool(
        &self,
        rows: &mut [DraftRow<'_, M>],
        parallel: bool,
    ) -> Vec<(usize, Result<Poem, WriteError>)> {
        let v = self.model.vocab_size();
        let mut logits = vec![0f32; rows.len() * v];
        let mut tokens = Vec::with_capacity(rows.len());
        // Rows that have been fed the same tokens are in the same state, and
        // stay so while they are fed the same token (every row starts with
        // BEGIN, and drafts share their prefix and kept characters): such a
        // group is stepped once, by its first row ("representative"), whose
        // state the others copy and whose logits they read. `slots[f]`: the
        // row in the step (and in `logits`) of the f-th fed row.
        let (mut slots, mut reps, mut members) = (Vec::new(), Vec::new(), Vec::new());
        let mut groups: HashMap<(u32, u32), usize> = HashMap::new();
        let mut next_hist = 1u32;
        loop {
            tokens.clear();
            slots.clear();
            reps.clear();
            groups.clear();
            for (i, r) in rows.iter().enumerate() {
                let Some(t) = r.feed else { continue };
                if r.hist != UNIQUE {
                    if let Some(&slot) = groups.get(&(r.hist, t)) {
                        slots.push(slot);
                        continue;
                    }
                    groups.insert((r.hist, t), tokens.len());
                }
                slots.push(tokens.len());
                reps.push(i);
                tokens.push(t);
            }
            if slots.is_empty() {
                break;
            }
            let n = tokens.len();
            // When every row's next token is forced, no row needs logits.
            let need = rows
                .iter()
                .any(|r| r.feed.is_some() && r.needs_logits(self));
            let mut states: Vec<&mut M::State> = Vec::with_capacity(n);
            let mut want = reps.iter().peekable();
            for (i, r) in rows.iter_mut().enumerate() {
                if want.next_if(|&&q| q == i).is_some() {
                    states.push(&mut r.state);
                }
            }
            let out = need.then(|| &mut logits[..n * v]);
            self.model.step_rows(&mut states, &tokens, out);
            // The others of each group take its state; a group of one is unique from now on.
            members.clear();
            members.resize(n, 0u32);
            for &slot in &slots {
                members[slot] += 1;
            }
            let hists: Vec<u32> = members
                .iter()
                .map(|&m| {
                    if m < 2 {
                        return UNIQUE;
                    }
                    next_hist += 1;
                    next_hist
                })
                .collect();
            let mut f = 0;
            for i in 0..rows.len() {
                if rows[i].feed.is_none() {
                    continue;
                }
                let slot = slots[f];
                f += 1;
                let rep = reps[slot];
                if rep != i {
                    let (before, after) = rows.split_at_mut(i);
                    after[0].state.clone_from(&before[rep].state);
                }
                rows[i].hist = hists[slot];
            }
            // Each row draws from its own stream, so the order does not matter.
            let fed: Vec<&mut DraftRow<'_, M>> =
                rows.iter_mut().filter(|r| r.feed.is_some()).collect();
            let at = |slot: usize| &logits[slot * v..(slot + 1) * v];
            if parallel && slots.len() >= PARALLEL_MIN_ROWS && crate::engine::matmul::threads() > 1
            {
                fed.into_par_iter()
                    .zip(slots.par_iter())
                    .for_each(|(row, &slot)| row.advance(self, at(slot)));
            } else {
                for (row, &slot) in fed.into_iter().zip(&slots) {
                    row.advance(self, at(slot));
                }
            }
        }
        rows.iter_mut()
            .map(|r| {
                let poem = r
                    .poem
                    .take()
                    .expect("a finished row has its poem or an error");
                (r.request, poem)
            })
            .collect()
    }

    /// The rhyme tables in use: 平水韵 level groups for shi, 词林正韵
    /// classes for ci (`ci`): each token's groups, and each group's tokens.
    fn rhyme_tables(&self, ci: bool) -> (&[Vec<u16>], &[Vec<u32>]) {
        if ci {
            (&self.token_classes, &self.class_members)
        } else {
            (&self.token_groups, &self.group_members)
        }
    }

    /// Whether group `g` can still be chosen: not excluded, on the side the
    /// rhyme wants (`level`: ci only; shi groups are all level), and with
    /// enough characters in the vocabulary to give every foot its own.
    fn group_usable(&self, g: u16, excluded: &[u16], n_feet: usize, level: Option<bool>) -> bool {
        let (_, members) = self.rhyme_tables(level.is_some());
        !excluded.contains(&g)
            && level.is_none_or(|lv| Class::from_index(g as usize).level == lv)
            && members[g as usize].len() >= n_feet.max(1)
    }

    /// The rhyme group for the first foot: of the sampled character's groups,
    /// the one the model gives the most probability to at this position.
    fn choose_group(
        &self,
        token: u32,
        cands: &[(u32, f32)],
        excluded: &[u16],
        n_feet: usize,
        level: Option<bool>,
    ) -> Option<u16> {
        let (token_groups, _) = self.rhyme_tables(level.is_some());
        let mass = |g: u16| -> f32 {
            cands
                .iter()
                .filter(|(id, _)| token_groups[*id as usize].contains(&g))
                .map(|(_, p)| *p)
                .sum()
        };
        token_groups[token as usize]
            .iter()
            .copied()
            .filter(|&g| self.group_usable(g, excluded, n_feet, level))
            .max_by(|&a, &b| mass(a).total_cmp(&mass(b)).then(b.cmp(&a)))
    }

    /// Builds the structured result from the written tokens.
    fn finish(
        &self,
        out: &[u32],
        line_len: usize,
        group: Option<u16>,
        tones: ToneMode,
        rhyme: bool,
    ) -> Poem {
        let mut lines = Vec::new();
        let mut cur = Line {
            text: String::new(),
            end: String::new(),
            chars: Vec::new(),
        };
        let mut text = String::new();
        for &t in out {
            let Some(c) = self.chars[t as usize] else {
                continue;
            };
            text.push(c);
            if is_han(c) {
                cur.text.push(c);
                cur.chars.push(CharMark {
                    ch: c,
                    tone: self.tone[t as usize],
                    foot: false,
                });
            } else {
                if c != '\n' {
                    cur.end.push(c);
                }
                lines.push(std::mem::replace(
                    &mut cur,
                    Line {
                        text: String::new(),
                        end: String::new(),
                        chars: Vec::new(),
                    },
                ));
            }
        }
        if !cur.text.is_empty() {
            lines.push(cur);
        }
        if line_len > 0 {
            for (i, l) in lines.iter_mut().enumerate() {
                if i % 2 == 1 && l.chars.len() == line_len {
                    if let Some(m) = l.chars.last_mut() {
                        m.foot = true;
                    }
                }
            }
        }
        Poem {
            text,
            lines,
            rhyme_group: group.and_then(|g| self.lex.map(|l| l.group_name(g).to_string())),
            tones,
            rhyme,
            notes: Vec::new(),
            score: 0.0,
            drafts: Vec::new(),
        }
    }
}

/// Poems written side by side in one batch of model steps (on each thread,
/// when a run is cut into parts: see `Writer::run_rows`).
pub const BATCH: usize = 256;

/// [`Row::hist`] of a row whose fed tokens no other row shares.
pub(super) const UNIQUE: u32 = u32::MAX;

/// Rows per thread from which a run is cut into one part per thread.
const PART_MIN_ROWS: usize = 64;

/// Rows written in one run: a [`BATCH`] for each thread.
fn run_rows() -> usize {
    BATCH * crate::engine::matmul::splits()
}

/// Rows from which choosing the next tokens is spread over the cores (each
/// choice is a pass over the vocabulary: tens of microseconds).
const PARALLEL_MIN_ROWS: usize = 8;

/// Draft `d`'s stream of a poem whose stream is `rng`: draft 0 draws from
/// `rng` itself, so one draft writes what a poem without drafts writes.
/// Draft `d`'s plan: the poem's own, or its keyword placement (one per
/// draft, repeated when fewer placements exist than drafts).
fn pick<'p>(plan: &'p Plan, plans: &'p [Plan], d: usize) -> &'p Plan {
    if plans.is_empty() {
        plan
    } else {
        &plans[d % plans.len()]
    }
}

fn draft_rng(rng: &Rng, d: usize) -> Rng {
    if d == 0 {
        rng.clone()
    } else {
        rng.fork(d as u64)
    }
}

/// The kept draft: the highest score, the first on ties; the first error if
/// every draft failed. With `all`, the kept poem lists every draft.
fn best_draft(drafts: Vec<Result<Poem, WriteError>>, all: bool) -> Result<Poem, WriteError> {
    let best = drafts
        .iter()
        .enumerate()
        .filter_map(|(k, d)| d.as_ref().ok().map(|p| (k, p.score)))
        .fold(None, |acc: Option<(usize, f32)>, (k, sc)| match acc {
            Some((_, b)) if b >= sc => acc,
            _ => Some((k, sc)),
        });
    let Some((kept, _)) = best else {
        return drafts.into_iter().next().expect("at least one draft");
    };
    let list: Vec<Draft> = if all {
        drafts
            .iter()
            .enumerate()
            .filter_map(|(k, d)| {
                d.as_ref().ok().map(|p| Draft {
                    text: p.text.clone(),
                    score: p.score,
                    kept: k == kept,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut poem = drafts
        .into_iter()
        .nth(kept)
        .expect("kept is a draft")
        .expect("kept is a poem");
    poem.drafts = list;
    Ok(poem)
}

/// One call's worth of poems for [`Writer::write_requests`]: `count` poems of
/// `opts`, poem k drawing from its own stream forked from `seed`.
#[derive(Clone, Debug)]
pub struct Request {
    pub opts: Options,
    pub count: usize,
    pub seed: u64,
}

/// What a poem does after choosing: feed this token, stop, or give up this try.
enum Step {
    Feed(u32),
    Done,
    Dead(DeadEnd),
}

#[cfg(test)]
mod tests;
