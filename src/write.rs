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

pub mod keywords;
pub mod suggest;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::corpus::convert::{to_simplified, to_traditional};
use crate::model::{Model, State as ModelState, StepWeights};
use crate::prosody::cilin::{Cilin, Class, NUM_CLASSES};
use crate::prosody::repeats;
use crate::prosody::rules::{TonePlan, ToneReq};
use crate::prosody::tunes::TuneForm;
use crate::prosody::{is_han, Lexicon, Tone, ToneMode};
use crate::rng::Rng;
use crate::vocab::Vocab;

/// Special token ids, the vocabulary's.
pub const PAD: u32 = Vocab::PAD;
pub const BEGIN: u32 = Vocab::BEGIN;
pub const END: u32 = Vocab::END;
pub const UNK: u32 = Vocab::UNK;

/// A character-level language model, one step at a time.
/// `Sync` and a `Send` state so that the rows of a batch can pick their next
/// tokens on all cores.
pub trait CharModel: Sync {
    /// Whatever the model carries from one character to the next (h, c).
    type State: Send;
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

/// Errors of writing, each naming the bad value and what to do instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("{flag} is empty (give at least one character)")]
    EmptyInput { flag: &'static str },
    #[error("{flag} has {len} characters, more than the {max} this form holds (shorten it{hint})")]
    TooLong {
        flag: &'static str,
        len: usize,
        max: usize,
        hint: &'static str,
    },
    #[error("{flag}: the model does not know `{ch}` (U+{code:04X}), nor its {other} form; use another character")]
    UnknownChar {
        flag: &'static str,
        ch: char,
        code: u32,
        other: &'static str,
    },
    #[error("acrostic: `{ch}` is not a Han character (give one Han character per line)")]
    NotHan { ch: char },
    #[error("begin: `{ch}` does not fit line {line}, position {pos} of the form (a line has {len} characters, then ，or 。)")]
    BeginDoesNotFit {
        ch: char,
        line: usize,
        pos: usize,
        len: usize,
    },
    #[error("first words and an acrostic cannot be combined (the acrostic already fixes each line's first character)")]
    BeginAndAcrostic,
    #[error("an acrostic and a tune cannot be combined (the tune fixes the line count)")]
    AcrosticAndTune,
    #[error("the model's vocabulary has no `{ch}`, which a fixed form needs at line ends (write the free form instead)")]
    MissingPunct { ch: char },
    #[error("{what}")]
    BadOption { what: String },
    #[error("no character of the model's vocabulary can stand at line {line}, position {pos}, even with every constraint relaxed")]
    NoCandidates { line: usize, pos: usize },
}

/// The shape asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// No fixed shape: stop at the end token or `max_len`.
    #[default]
    Free,
    /// 五绝: 4 lines of 5.
    Wujue,
    /// 七绝: 4 lines of 7.
    Qijue,
    /// 五律: 8 lines of 5.
    Wulv,
    /// 七律: 8 lines of 7.
    Qilv,
}

impl Form {
    /// (lines, characters per line) of the regulated forms.
    pub fn shape(self) -> Option<(usize, usize)> {
        match self {
            Form::Free => None,
            Form::Wujue => Some((4, 5)),
            Form::Qijue => Some((4, 7)),
            Form::Wulv => Some((8, 5)),
            Form::Qilv => Some((8, 7)),
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Form::Free => "自由",
            Form::Wujue => "五绝",
            Form::Qijue => "七绝",
            Form::Wulv => "五律",
            Form::Qilv => "七律",
        }
    }
}

impl std::str::FromStr for Form {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "free" | "自由" => Ok(Form::Free),
            "wujue" | "五绝" | "五絕" => Ok(Form::Wujue),
            "qijue" | "七绝" | "七絕" => Ok(Form::Qijue),
            "wulv" | "五律" => Ok(Form::Wulv),
            "qilv" | "七律" => Ok(Form::Qilv),
            _ => Err(format!(
                "unknown form `{s}` (use wujue, qijue, wulv, qilv or free)"
            )),
        }
    }
}

/// One line of a fixed layout: its length in characters and its closing punctuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct LineSpec {
    pub len: usize,
    pub end: char,
}

/// What to write. `Default` gives a free poem at the CLI's default settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The poem starts with these characters (may run over line ends, with punctuation).
    pub begin: String,
    /// 藏头诗: line i starts with the i-th character; the line count follows the text.
    pub acrostic: String,
    /// Characters kept where they stand, □ or ? for the free positions (see [`template`]).
    pub template: String,
    /// What the poem is about, read before it by a model trained with titles
    /// (see [`crate::title`]); empty: no title.
    pub title: String,
    /// Words that must appear, each kept where the drafts' likeliest
    /// placement puts it (see [`keywords`]).
    pub keywords: Vec<String>,
    pub form: Form,
    /// A ci tune's form (its lines, tones and rhyme sets, see
    /// [`crate::prosody::tunes`]); overrides `form`. Its tones apply under
    /// `tones`, its rhyme sets (by 词林正韵) under `rhyme`.
    pub tune: Option<TuneForm>,
    /// Softmax temperature; 0 means always the likeliest allowed character.
    pub temperature: f32,
    /// Keep only the k likeliest allowed characters (0: all).
    pub top_k: usize,
    /// Keep the smallest set of likeliest characters whose probability reaches p (1: all).
    pub top_p: f32,
    /// Free mode: the most characters (punctuation included) a poem may have.
    pub max_len: usize,
    /// Rhyme the feet of lines 2, 4, 6, 8 (regulated forms only).
    pub rhyme: bool,
    pub tones: ToneMode,
    /// Ask the model for this form with its tag, when it has one; `None`: the
    /// form being written. Free-running evaluation sets it with `form: Free`,
    /// so that the model alone keeps (or breaks) the form it was asked for.
    pub tag: Option<Form>,
    /// Hold regulated poems to the repetition rule of [`repeats`]: no rhyme
    /// foot twice, no character more than twice, none twice in a line.
    pub repeats: bool,
    /// Drafts written per poem, side by side; the one with the highest
    /// [`Poem::score`] is kept (1: the first draft, as written).
    pub drafts: usize,
    /// Keep every draft's text and score in [`Poem::drafts`].
    pub all_drafts: bool,
}

/// Drafts per poem by default (see `docs/quality.md` for the sweep behind it).
pub const DEFAULT_DRAFTS: usize = 4;

impl Default for Options {
    fn default() -> Options {
        Options {
            begin: String::new(),
            acrostic: String::new(),
            template: String::new(),
            title: String::new(),
            keywords: Vec::new(),
            form: Form::Free,
            tune: None,
            // write's defaults, chosen by `shiren eval --sweep` (docs/quality.md):
            // the likeliest drafts among settings as varied as real poems
            temperature: 1.0,
            top_k: 200,
            top_p: 1.0,
            max_len: 128,
            rhyme: false,
            tones: ToneMode::Off,
            tag: None,
            repeats: true,
            drafts: DEFAULT_DRAFTS,
            all_drafts: false,
        }
    }
}

/// The most characters an acrostic may have (lines of a poem).
pub const MAX_ACROSTIC: usize = 32;

/// One written character, marked for display and scoring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CharMark {
    pub ch: char,
    /// Its classical tone, when a lexicon was given and knows it.
    pub tone: Option<Tone>,
    /// It stands at a rhyme foot (last character of lines 2, 4, 6, 8 of a regulated poem).
    pub foot: bool,
}

/// One verse: its characters and its closing punctuation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    /// The characters without the closing punctuation.
    pub text: String,
    /// The closing punctuation (empty at the end of an unfinished free poem or a line break).
    pub end: String,
    pub chars: Vec<CharMark>,
}

/// A written poem with what was enforced to write it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Poem {
    /// The whole text, punctuation included.
    pub text: String,
    pub lines: Vec<Line>,
    /// The 平水韵 group the feet were held to, if rhyme was enforced.
    pub rhyme_group: Option<String>,
    /// The tone rules in force when the poem was finished (after any backoff).
    pub tones: ToneMode,
    /// Whether rhyme was in force when it was finished.
    pub rhyme: bool,
    /// What was relaxed on the way (printed with --verbose).
    pub notes: Vec<String>,
    /// Mean log-probability (nats) of the characters the sampler chose, under
    /// the model's own distribution (temperature 1, no masks): the score
    /// that picks the best of several drafts. Given characters (--begin,
    /// acrostic heads) and the form's punctuation do not count.
    pub score: f32,
    /// Every draft of this poem with its score, the kept one included (only
    /// when [`Options::all_drafts`] asks for them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drafts: Vec<Draft>,
}

/// One candidate of a poem written with several drafts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Draft {
    pub text: String,
    pub score: f32,
    /// The draft kept as the poem (the highest score; the first on ties).
    pub kept: bool,
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
        let per_batch = (BATCH / n_drafts).max(1);
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
                    rows.push(Row::new(
                        self,
                        pick(&plan, plans, d),
                        self.job(opts, draft_rng(rng, d)),
                        slot,
                    ));
                }
            }
            let mut drafts: Vec<Vec<Result<Poem, WriteError>>> = vec![Vec::new(); end - start];
            for chunk in rows.chunks_mut(BATCH) {
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
                rows.push(Row::new(self, pick(plan, dp, d), job, slots.len()));
            }
            slots.push(*q);
        }
        let mut drafts: Vec<Vec<Result<Poem, WriteError>>> = vec![Vec::new(); slots.len()];
        for chunk in rows.chunks_mut(BATCH) {
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
        let mut rows: Vec<Row<'_, M>> = (0..opts.drafts.max(1))
            .map(|d| {
                let p = pick(&plan, &plans, d);
                Row::new(self, p, self.job(opts, draft_rng(rng, d)), 0)
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
    fn run(&self, rows: &mut [Row<'_, M>]) -> Vec<(usize, Result<Poem, WriteError>)> {
        // The loop runs on a pool thread, so that a step's products split in
        // two hand the other half straight to the other worker: from outside
        // the pool each split is a trip through rayon's injector with two
        // thread wake-ups (measured at batch 1: 0.29 → 0.19 ms per character).
        rayon::scope(|_| self.run_on_pool(rows))
    }

    fn run_on_pool(&self, rows: &mut [Row<'_, M>]) -> Vec<(usize, Result<Poem, WriteError>)> {
        let v = self.model.vocab_size();
        let mut logits = vec![0f32; rows.len() * v];
        let mut tokens = Vec::with_capacity(rows.len());
        loop {
            tokens.clear();
            tokens.extend(rows.iter().filter_map(|r| r.feed));
            if tokens.is_empty() {
                break;
            }
            let n = tokens.len();
            // When every row's next token is forced, no row needs logits.
            let need = rows
                .iter()
                .any(|r| r.feed.is_some() && r.needs_logits(self));
            let mut states: Vec<&mut M::State> = rows
                .iter_mut()
                .filter(|r| r.feed.is_some())
                .map(|r| &mut r.state)
                .collect();
            let out = need.then(|| &mut logits[..n * v]);
            self.model.step_rows(&mut states, &tokens, out);
            // Each row draws from its own stream, so the order does not matter.
            let fed: Vec<&mut Row<'_, M>> = rows.iter_mut().filter(|r| r.feed.is_some()).collect();
            if n >= PARALLEL_MIN_ROWS && crate::engine::matmul::threads() > 1 {
                fed.into_par_iter()
                    .zip(logits.par_chunks_exact(v))
                    .for_each(|(row, l)| row.advance(self, l));
            } else {
                for (row, l) in fed.into_iter().zip(logits.chunks_exact(v)) {
                    row.advance(self, l);
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

    /// Turns the options into a layout and the forced tokens, checking the input.
    fn plan(&self, opts: &Options) -> Result<Plan, WriteError> {
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
    fn title_tokens(&self, title: &str) -> Result<Vec<u32>, WriteError> {
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
    fn keyword_tokens(
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
    fn draft_plans(&self, plan: &Plan, opts: &Options, rng: &Rng) -> Result<Vec<Plan>, WriteError> {
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
    fn input_tokens(&self, text: &str, flag: &'static str) -> Result<Vec<u32>, WriteError> {
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

/// The trained network with its vocabulary, as a [`CharModel`]. Each
/// sequence carries its own batch-of-one state; [`CharModel::step_rows`]
/// gathers the rows into one batch for a single [`Model::step`] and scatters
/// them back, so a batched engine step serves many poems at once.
pub struct Lm<'a> {
    pub model: &'a Model,
    pub vocab: &'a Vocab,
    /// The model's weights as steps read them fastest (transposed for
    /// batched steps, half precision when exact), made once here.
    wt: StepWeights,
    /// The batched state of the last step, kept for the next: a fresh one is
    /// megabytes of zeroed pages every step.
    spare: std::sync::Mutex<Option<ModelState>>,
}

impl<'a> Lm<'a> {
    pub fn new(model: &'a Model, vocab: &'a Vocab) -> Lm<'a> {
        Lm {
            model,
            vocab,
            wt: model.step_weights(),
            spare: Default::default(),
        }
    }
}

impl CharModel for Lm<'_> {
    type State = ModelState;
    fn vocab_size(&self) -> usize {
        self.model.cfg.vocab
    }
    fn char_of(&self, id: u32) -> Option<char> {
        self.vocab.char(id)
    }
    fn form_tag(&self, form: Form) -> Option<u32> {
        self.vocab.tag(form.name_zh())
    }
    fn reads_titles(&self) -> bool {
        self.model
            .cfg
            .positions
            .as_ref()
            .is_some_and(|p| p.resets.contains(&BEGIN))
    }
    fn logits_are_log_probs(&self) -> bool {
        self.model.cfg.shortlist > 0
    }
    fn initial_state(&self) -> ModelState {
        self.model.new_state(1)
    }
    fn step(&self, state: &mut ModelState, token: u32, logits: &mut [f32]) {
        self.model.step(state, &[token], logits);
    }
    fn step_rows(
        &self,
        states: &mut [&mut ModelState],
        tokens: &[u32],
        logits: Option<&mut [f32]>,
    ) {
        let b = states.len();
        if b == 1 {
            return self
                .model
                .step_with(Some(&self.wt), states[0], tokens, logits);
        }
        let h = self.model.cfg.hidden;
        let spare = self.spare.lock().map(|mut s| s.take()).unwrap_or(None);
        let mut batch = match spare {
            Some(s) if s.batch == b => s,
            _ => self.model.new_state(b),
        };
        // (layers) × (b, H) ← b × (layers) × (1, H), and back after the step.
        for (r, s) in states.iter().enumerate() {
            for (dst, src) in batch.h.iter_mut().zip(&s.h) {
                dst[r * h..(r + 1) * h].copy_from_slice(src);
            }
            for (dst, src) in batch.c.iter_mut().zip(&s.c) {
                dst[r * h..(r + 1) * h].copy_from_slice(src);
            }
            batch.places[r] = s.places[0];
        }
        self.model
            .step_with(Some(&self.wt), &mut batch, tokens, logits);
        for (r, s) in states.iter_mut().enumerate() {
            for (src, dst) in batch.h.iter().zip(&mut s.h) {
                dst.copy_from_slice(&src[r * h..(r + 1) * h]);
            }
            for (src, dst) in batch.c.iter().zip(&mut s.c) {
                dst.copy_from_slice(&src[r * h..(r + 1) * h]);
            }
            s.places[0] = batch.places[r];
        }
        if let Ok(mut s) = self.spare.lock() {
            *s = Some(batch);
        }
    }
}

/// Poems written side by side in one batch of model steps.
pub const BATCH: usize = 256;

/// Rows from which choosing the next tokens is spread over the cores (each
/// choice is a pass over the vocabulary: tens of microseconds).
const PARALLEL_MIN_ROWS: usize = 8;

/// One poem's draw stream and the constraints it is under now.
#[derive(Clone)]
struct Job {
    rng: Rng,
    notes: Vec<String>,
    tones: ToneMode,
    rhyme: bool,
    /// Rhyme groups given up on after a dead end.
    excluded: Vec<u16>,
    /// Writing a ci: rhyme groups are 词林正韵 classes.
    ci: bool,
    /// The repetition rule is in force (regulated lines only).
    repeats: bool,
}

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

impl Job {
    /// Loosens one constraint after a dead end: another rhyme group, then
    /// looser tones, then no rhyme; with nothing left to loosen, an error.
    fn back_off(&mut self, lex: Option<&Lexicon>, dead: DeadEnd) -> Result<(), WriteError> {
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
struct Row<'p, M: CharModel> {
    plan: &'p Plan,
    job: Job,
    cur: Cursor,
    state: M::State,
    /// The token to feed at the next step; `None` once the poem is done.
    feed: Option<u32>,
    /// Prefix tokens still to feed after BEGIN (a title and its BEGIN, the form tag), last first.
    prefix: Vec<u32>,
    /// Which request of [`Writer::write_requests`] the poem is for.
    request: usize,
    poem: Option<Result<Poem, WriteError>>,
}

impl<'p, M: CharModel> Row<'p, M> {
    fn new(w: &Writer<M>, plan: &'p Plan, job: Job, request: usize) -> Row<'p, M> {
        Row {
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
            poem: None,
        }
    }

    /// Whether the choice after the token about to be fed reads logits:
    /// not when it is a prefix token or forced by the plan.
    fn needs_logits(&self, w: &Writer<M>) -> bool {
        // The cursor has already moved past the token being fed.
        self.prefix.is_empty()
            && match self.cur.forced(w, self.plan) {
                None => true,
                Some(_) => self.plan.score_kept && self.cur.at_lock(self.plan),
            }
    }

    /// Takes the logits after the last token fed and decides what comes next.
    fn advance(&mut self, w: &Writer<M>, logits: &[f32]) {
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
                Ok(()) => *self = Row::new(w, self.plan, self.job.clone(), self.request),
                Err(e) => self.poem = Some(Err(e)),
            },
        }
    }
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

/// Where one try at a poem stands.
struct Cursor {
    /// The common line length of a regulated poem (0 for free verse and ci).
    line_len: usize,
    /// Characters each rhyme set's first-foot group must have (every foot its own, when possible).
    n_feet: Vec<usize>,
    tone_plan: TonePlan,
    /// The group each rhyme set is held to, once chosen: one set for shi,
    /// the tune's sets for ci (each a 词林正韵 class).
    groups: Vec<Option<u16>>,
    feet: Vec<u32>,
    out: Vec<u32>,
    /// Line and position (from 0) of the next character.
    i: usize,
    j: usize,
    best: TopK,
    cands: Vec<(u32, f32)>,
    /// What the repetition rule forbids at the cursor, as a list and as bits by token.
    banned: Vec<u32>,
    ban: Vec<u64>,
    /// The rule left nothing at the cursor and was set aside there.
    relaxed: bool,
    /// Summed log-probability of the chosen tokens, and how many.
    logp: f64,
    chosen: usize,
}

impl Cursor {
    fn new<M: CharModel>(w: &Writer<M>, plan: &Plan, job: &Job) -> Cursor {
        let layout = plan.layout.as_deref();
        // A ci's tones and rhymes come from its tune, not from the 近体诗 rules.
        let line_len = match plan.ci {
            Some(_) => 0,
            None => layout.and_then(regulated_len).unwrap_or(0),
        };
        let mut n_feet: Vec<usize> = match &plan.ci {
            Some(f) => (0..f.sets.len())
                .map(|s| f.lines.iter().filter(|l| l.rhyme == Some(s)).count())
                .collect(),
            None => vec![layout.map_or(0, |l| l.len()) / 2],
        };
        // Groups for the first foot need a character for every foot; if no
        // group is that large in this vocabulary, any group with one will do.
        let (_, members) = w.rhyme_tables(plan.ci.is_some());
        for (s, n) in n_feet.iter_mut().enumerate() {
            let level = set_level(plan, s);
            let fits = |n: usize| {
                (0..members.len() as u16).any(|g| w.group_usable(g, &job.excluded, n, level))
            };
            if job.rhyme && !fits(*n) {
                *n = 1;
            }
        }
        // Kept characters steer the plan before writing starts: their tones
        // fix the key positions around them, and kept feet fix the group.
        let mut tone_plan = TonePlan::new(job.tones, line_len);
        let mut locks: Vec<(&(usize, usize), &u32)> = plan.locks.iter().collect();
        locks.sort();
        for (&(i, j), &t) in &locks {
            tone_plan.lock(i, j, w.tone[t as usize]);
        }
        // The group: one every kept foot is in, preferring one a kept first
        // line's end is in too (蛇 is in 四支 and 六麻: beside 花 it is 六麻).
        let group = if job.rhyme && line_len > 0 {
            let groups_at = |i: usize| {
                plan.locks
                    .get(&(i, line_len - 1))
                    .map(|&t| &w.token_groups[t as usize])
            };
            let feet: Vec<&Vec<u16>> = (1..).step_by(2).take(64).filter_map(groups_at).collect();
            let head = groups_at(0);
            feet.first().and_then(|first| {
                let ok = |g: &&u16| !job.excluded.contains(g);
                let shared: Vec<u16> = first
                    .iter()
                    .filter(ok)
                    .filter(|g| feet.iter().all(|f| f.contains(g)))
                    .copied()
                    .collect();
                shared
                    .iter()
                    .find(|g| head.is_some_and(|h| h.contains(g)))
                    .or(shared.first())
                    .or_else(|| first.iter().find(ok))
                    .copied()
            })
        } else {
            None
        };
        Cursor {
            line_len,
            // A kept foot's group holds the first (shi's only) rhyme set.
            groups: (0..n_feet.len())
                .map(|s| if s == 0 { group } else { None })
                .collect(),
            n_feet,
            tone_plan,
            feet: Vec::new(),
            out: Vec::new(),
            i: 0,
            j: 0,
            best: TopK::default(),
            cands: Vec::with_capacity(w.han.len()),
            banned: Vec::new(),
            ban: if job.repeats {
                vec![0; w.chars.len().div_ceil(64)]
            } else {
                Vec::new()
            },
            relaxed: false,
            logp: 0.0,
            chosen: 0,
        }
    }

    /// One step of the generation loop, given the logits of the next token.
    fn choose<M: CharModel>(
        &mut self,
        w: &Writer<M>,
        plan: &Plan,
        logits: &[f32],
        job: &mut Job,
    ) -> Step {
        let layout = plan.layout.as_deref();
        let (i, j) = (self.i, self.j);
        // Where are we: a character inside line i, or its closing punctuation?
        let slot = match layout {
            Some(l) if i >= l.len() => return Step::Done,
            Some(l) if j == l[i].len => Slot::Punct,
            Some(_) => Slot::Char,
            None if self.out.len() >= plan.max_len => return Step::Done,
            None => Slot::Char,
        };
        let set = if matches!(slot, Slot::Char) {
            self.foot_set(plan, job, i, j)
        } else {
            None
        };
        let is_foot = set.is_some();
        let s = set.unwrap_or(0);
        let level = set_level(plan, s);
        let forced = self.forced(w, plan);
        let token = match forced {
            Some(t) => {
                let c = w.chars[t as usize].unwrap_or('?');
                let mut note = |n: String| {
                    if !job.notes.contains(&n) {
                        job.notes.push(n);
                    }
                };
                // The user's own characters may break the rules the rest keeps: say so.
                if matches!(slot, Slot::Char) && layout.is_some() && job.tones != ToneMode::Off {
                    let req = self.tone_plan.req(i, j);
                    if !req.allows(w.tone[t as usize]) {
                        note(format!(
                            "the given `{c}` at line {}, position {} breaks the tone rules ({}); the rest of the poem keeps them",
                            i + 1,
                            j + 1,
                            match req {
                                ToneReq::Ping => "平 wanted",
                                ToneReq::Ze => "仄 wanted",
                                _ => "tone unknown",
                            }
                        ));
                    }
                }
                if is_foot && w.token_groups[t as usize].is_empty() {
                    note(format!(
                        "the given `{c}` ends line {} but is in no level (平) rhyme group; the other feet rhyme among themselves",
                        i + 1
                    ));
                }
                if plan.score_kept && matches!(slot, Slot::Char) && self.at_lock(plan) {
                    // Kept keywords count in the score, so placements compare.
                    self.logp += if w.model.logits_are_log_probs() {
                        logits[t as usize] as f64
                    } else {
                        logits[t as usize] as f64 - log_sum_exp(logits)
                    };
                    self.chosen += 1;
                }
                if is_foot {
                    // A foot the user wrote: it picks the group if none is chosen yet.
                    let gs = &w.rhyme_tables(plan.ci.is_some()).0[t as usize];
                    match self.groups[s] {
                        None => {
                            self.groups[s] = gs.iter().copied().find(|&g| {
                                !job.excluded.contains(&g)
                                    && level
                                        .is_none_or(|lv| Class::from_index(g as usize).level == lv)
                            })
                        }
                        Some(g) if !gs.contains(&g) => job.notes.push(
                            "the given text's rhyme foot is outside the chosen rhyme group".into(),
                        ),
                        Some(_) => {}
                    }
                    self.feet.push(t);
                }
                t
            }
            None => {
                // 1. The allowed characters at this position, with their logits.
                self.allowed(w, plan, logits, job, set);
                if self.relaxed {
                    job.notes.push(format!(
                        "no character fits line {}, position {} without repeating one; repetition allowed there",
                        i + 1,
                        j + 1
                    ));
                }
                if self.cands.is_empty() {
                    return Step::Dead(DeadEnd {
                        line: i,
                        pos: j,
                        group: if is_foot { self.groups[s] } else { None },
                        foot: is_foot,
                    });
                }
                // 2–5. Temperature, top-k, top-p, then a seeded draw.
                let token = sample(
                    &mut self.cands,
                    plan.temperature,
                    plan.top_k,
                    plan.top_p,
                    &mut job.rng,
                );
                // The draft's score: the model's own log-probability of the choice.
                self.logp += if w.model.logits_are_log_probs() {
                    logits[token as usize] as f64
                } else {
                    logits[token as usize] as f64 - log_sum_exp(logits)
                };
                self.chosen += 1;
                if is_foot && self.groups[s].is_none() {
                    self.groups[s] =
                        w.choose_group(token, &self.cands, &job.excluded, self.n_feet[s], level);
                }
                if is_foot {
                    self.feet.push(token);
                }
                token
            }
        };
        // 6. Append, and move on.
        if token == END {
            return Step::Done;
        }
        self.out.push(token);
        let han = w.chars[token as usize].is_some_and(is_han);
        match slot {
            Slot::Punct => (self.i, self.j) = (i + 1, 0),
            Slot::Char if layout.is_none() => {
                if han {
                    self.j += 1;
                } else {
                    (self.i, self.j) = (i + 1, 0);
                    if !plan.heads.is_empty() && self.i >= plan.heads.len() {
                        return Step::Done; // a free acrostic ends with its last head's line
                    }
                }
            }
            Slot::Char => {
                if !han {
                    // Unreachable through `plan`, which checks where given punctuation falls.
                    return Step::Dead(DeadEnd {
                        line: i,
                        pos: j,
                        group: None,
                        foot: false,
                    });
                }
                self.tone_plan.place(i, j, w.tone[token as usize]);
                self.j += 1;
            }
        }
        let done = match layout {
            Some(l) => self.i >= l.len(),
            None => self.out.len() >= plan.max_len,
        };
        if done {
            Step::Done
        } else {
            Step::Feed(token)
        }
    }

    /// A token the plan forces at the cursor: the user's first words, a
    /// kept character (an acrostic's head, a template's), the form's punctuation.
    /// Whether the next place holds a kept character (not begin text or punctuation).
    fn at_lock(&self, plan: &Plan) -> bool {
        self.out.len() >= plan.begin.len() && plan.locks.contains_key(&(self.i, self.j))
    }

    fn forced<M: CharModel>(&self, w: &Writer<M>, plan: &Plan) -> Option<u32> {
        let (i, j) = (self.i, self.j);
        if self.out.len() < plan.begin.len() {
            Some(plan.begin[self.out.len()])
        } else if let Some(&t) = plan.locks.get(&(i, j)) {
            Some(t)
        } else {
            match plan.layout.as_deref() {
                Some(l) if i < l.len() && j == l[i].len => Some(w.ids[&l[i].end]),
                _ => None,
            }
        }
    }

    /// The rhyme set of line `i`, position `j` (from 0) when it is a rhyme
    /// foot under `job`: set 0 at the ends of lines 2, 4, … of a regulated
    /// poem; the tune's set at a ci's rhyme positions.
    fn foot_set(&self, plan: &Plan, job: &Job, i: usize, j: usize) -> Option<usize> {
        if !job.rhyme {
            return None;
        }
        match &plan.ci {
            Some(f) => f
                .lines
                .get(i)
                .filter(|l| j + 1 == l.len)
                .and_then(|l| l.rhyme),
            None => (self.line_len > 0 && i % 2 == 1 && j + 1 == self.line_len).then_some(0),
        }
    }

    /// Fills `cands` with the tokens allowed next and their logits; `set`:
    /// the rhyme set when this position is a foot.
    fn allowed<M: CharModel>(
        &mut self,
        w: &Writer<M>,
        plan: &Plan,
        logits: &[f32],
        job: &Job,
        set: Option<usize>,
    ) {
        let is_foot = set.is_some();
        let s = set.unwrap_or(0);
        let level = set_level(plan, s);
        let (token_groups, members) = w.rhyme_tables(plan.ci.is_some());
        let (i, j) = (self.i, self.j);
        // Greedy is top-1; otherwise only the top k can be drawn, so only they are kept.
        let k = if plan.temperature == 0.0 {
            1
        } else {
            plan.top_k
        };
        self.best.reset(k);
        self.cands.clear();
        if plan.layout.is_none() {
            // Free: Han or punctuation, no punctuation twice in a row, the end
            // token only after a finished line (and after every acrostic head).
            let after_punct = self
                .out
                .last()
                .is_none_or(|&t| !w.chars[t as usize].is_some_and(is_han));
            for (id, &l) in logits.iter().enumerate() {
                let ok = if id as u32 == END {
                    !self.out.is_empty() && after_punct && i >= plan.heads.len()
                } else {
                    w.free_ok[id] && (!after_punct || w.chars[id].is_some_and(is_han))
                };
                if ok {
                    self.best.push(id as u32, l);
                }
            }
            self.best.finish(&mut self.cands);
            return;
        }
        let req = match &plan.ci {
            Some(f) => ci_req(f.tone_at(job.tones, i, j)),
            None => self.tone_plan.req(i, j),
        };
        // The precomputed list for this tone requirement, or the rhyme group's members.
        // A tune may have no rhyme set at all: `get`, not an index.
        let pool: &[u32] = match (is_foot, self.groups.get(s).copied().flatten()) {
            (true, Some(g)) => &members[g as usize],
            _ => &w.by_req[req_index(req)],
        };
        // The repetition rule is one more mask; where it leaves nothing, it is
        // set aside for this position (and noted) rather than failing the poem.
        let rule = job.repeats && self.line_len > 0;
        if rule {
            let at_foot = i % 2 == 1 && j + 1 == self.line_len;
            self.fill_banned(w, at_foot);
        }
        self.relaxed = false;
        for pass in 0..2 {
            let strict = rule && pass == 0 && !self.banned.is_empty();
            for &id in pool {
                let t = id as usize;
                if is_foot {
                    let gs = &token_groups[t];
                    if !req.allows(w.tone[t]) || gs.is_empty() {
                        continue;
                    }
                    if self.groups[s].is_none()
                        && !gs
                            .iter()
                            .any(|&g| w.group_usable(g, &job.excluded, self.n_feet[s], level))
                    {
                        continue;
                    }
                    if self.feet.contains(&id) {
                        continue; // no foot twice, unless nothing else is left (below)
                    }
                }
                if strict && self.is_banned(id) {
                    continue;
                }
                self.best.push(id, logits[t]);
            }
            if !self.best.is_empty() || !strict {
                break;
            }
            self.relaxed = true;
            self.best.reset(k);
        }
        if self.best.is_empty() && is_foot && self.groups[s].is_some() {
            for &id in &self.feet {
                self.best.push(id, logits[id as usize]);
            }
        }
        self.best.finish(&mut self.cands);
    }

    fn finish<M: CharModel>(&self, w: &Writer<M>, plan: &Plan, job: &Job) -> Poem {
        let group = if job.rhyme && plan.ci.is_none() {
            self.groups[0]
        } else {
            None
        };
        let mut poem = w.finish(&self.out, self.line_len, group, job.tones, job.rhyme);
        if let (Some(f), true) = (&plan.ci, job.rhyme) {
            // A ci's feet are its tune's rhyme positions; its classes are named per set.
            for (l, p) in poem.lines.iter_mut().zip(&f.lines) {
                if p.rhyme.is_some() && l.chars.len() == p.len {
                    if let Some(m) = l.chars.last_mut() {
                        m.foot = true;
                    }
                }
            }
            let names: Vec<String> = self
                .groups
                .iter()
                .flatten()
                .map(|&g| Class::from_index(g as usize).name())
                .collect();
            poem.rhyme_group = (!names.is_empty()).then(|| names.join("、"));
        }
        poem.notes = job.notes.clone();
        poem.score = if self.chosen == 0 {
            0.0
        } else {
            (self.logp / self.chosen as f64) as f32
        };
        poem
    }

    /// Sets `banned` and its bits to what the repetition rule forbids next.
    fn fill_banned<M: CharModel>(&mut self, w: &Writer<M>, foot: bool) {
        for &t in &self.banned {
            self.ban[t as usize / 64] &= !(1u64 << (t % 64));
        }
        let mut lines: Vec<&[u32]> = self
            .out
            .split(|&t| !w.chars[t as usize].is_some_and(is_han))
            .collect();
        let line = lines.pop().unwrap_or(&[]);
        repeats::banned(
            &lines,
            line,
            foot,
            |t| w.may_repeat[t as usize],
            &mut self.banned,
        );
        for &t in &self.banned {
            self.ban[t as usize / 64] |= 1u64 << (t % 64);
        }
    }

    fn is_banned(&self, t: u32) -> bool {
        self.ban[t as usize / 64] >> (t % 64) & 1 != 0
    }
}

/// log Σ exp(row), for models whose logits are not log-probabilities.
fn log_sum_exp(row: &[f32]) -> f64 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
}

/// The checked input of one `write` call.
#[derive(Clone)]
struct Plan {
    layout: Option<Vec<LineSpec>>,
    /// Writing a ci: its tune's form (tones per position, rhyme sets).
    ci: Option<TuneForm>,
    heads: Vec<u32>,
    /// Characters kept at (line, position), from 0: acrostic heads, a template's.
    locks: HashMap<(usize, usize), u32>,
    begin: Vec<u32>,
    /// Fed after BEGIN: the form's tag.
    tag: Option<u32>,
    /// Fed first, after a BEGIN of its own: the title's characters and the
    /// BEGIN that closes them (see [`crate::title`]); empty without a title.
    title: Vec<u32>,
    /// Keywords that must appear, each character with its tone.
    keywords: Vec<keywords::Word>,
    /// Count the kept characters' own log-probability in the score, so that
    /// drafts with different keyword placements compare on the whole poem.
    score_kept: bool,
    max_len: usize,
    temperature: f32,
    top_k: usize,
    top_p: f32,
}

/// What a ci position's pattern tone asks of a character (either: anything,
/// even a character of unknown tone).
fn ci_req(t: Tone) -> ToneReq {
    match t {
        Tone::Ping => ToneReq::Ping,
        Tone::Ze => ToneReq::Ze,
        Tone::Both => ToneReq::Any,
    }
}

/// The side rhyme set `s` rhymes on for a ci (true: level); `None` for shi,
/// whose rhyme groups are all level.
fn set_level(plan: &Plan, s: usize) -> Option<bool> {
    plan.ci
        .as_ref()
        .map(|f| f.set_tone(s).is_none_or(|t| t == Tone::Ping))
}

/// The common line length when every line has 5 or 7 characters, all the same.
fn regulated_len(layout: &[LineSpec]) -> Option<usize> {
    let len = layout.first()?.len;
    (matches!(len, 5 | 7) && layout.iter().all(|l| l.len == len)).then_some(len)
}

fn check_options(o: &Options) -> Result<(), WriteError> {
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

/// Samples one token from `cands` (token, logit): temperature, then top-k,
/// then top-p, then a draw from the seeded generator. Temperature 0 takes the
/// likeliest (lowest id on ties). On return `cands` holds the kept tokens with
/// their (unnormalised) probabilities, which the rhyme-group choice reads.
pub fn sample(
    cands: &mut Vec<(u32, f32)>,
    temperature: f32,
    top_k: usize,
    top_p: f32,
    rng: &mut Rng,
) -> u32 {
    debug_assert!(!cands.is_empty());
    // Highest logit first, ties by id, so the order (and the draw) depends only on the inputs.
    let desc = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if temperature == 0.0 {
        // Greedy; leave the winner as the only candidate, with probability 1.
        let best = cands
            .iter()
            .copied()
            .min_by(|a, b| desc(a, b))
            .map_or(END, |c| c.0);
        cands.clear();
        cands.push((best, 1.0));
        return best;
    }
    if top_k > 0 && top_k < cands.len() {
        top_k_in_place(cands, top_k);
    }
    cands.sort_unstable_by(desc);
    // Softmax of logit / T, shifted by the maximum so exp never overflows.
    let max = cands[0].1;
    let mut total = 0f32;
    for c in cands.iter_mut() {
        c.1 = ((c.1 - max) / temperature).exp();
        total += c.1;
    }
    // Top-p: the shortest prefix (most likely first) whose mass reaches p.
    if top_p < 1.0 {
        let mut cum = 0f32;
        let keep = cands
            .iter()
            .position(|c| {
                cum += c.1;
                cum >= top_p * total
            })
            .map_or(cands.len(), |k| k + 1);
        cands.truncate(keep);
        total = cum.min(cands.iter().map(|c| c.1).sum());
    }
    // sample_mult (llm.c): walk the cumulative sum to the coin; rounding can
    // leave the coin past the last bucket, which then takes it.
    let coin = rng.uniform() * total;
    let mut cdf = 0f32;
    for c in cands.iter() {
        cdf += c.1;
        if coin < cdf {
            return c.0;
        }
    }
    cands[cands.len() - 1].0
}

/// Keeps the `k` highest-logit candidates (ties to the lower id), in any order.
/// The selection runs on plain u64 keys, which compare several times faster
/// than (id, f32) pairs through a closure.
fn top_k_in_place(cands: &mut Vec<(u32, f32)>, k: usize) {
    if cands.len() > k {
        let mut keys: Vec<u64> = cands.iter().map(|&(id, l)| rank_key(id, l)).collect();
        let n = keys.len();
        keys.select_nth_unstable(n - k);
        cands.clear();
        cands.extend(keys[n - k..].iter().map(|&key| unrank_key(key)));
    }
}

/// The k best (token, logit) pairs of a stream, found exactly with little
/// work: keys go into a buffer of 2k; when it fills, the best k are kept and
/// the smallest of them becomes a floor that later keys must beat. After the
/// first few hundred tokens most of a 6,000-character vocabulary falls below
/// the floor and costs one comparison, where collecting every candidate and
/// selecting afterwards cost more than the rest of a step.
#[derive(Default)]
struct TopK {
    /// How many to keep (`usize::MAX`: all).
    k: usize,
    keys: Vec<u64>,
    /// Keys at or below this cannot be among the best k.
    floor: u64,
}

impl TopK {
    fn reset(&mut self, k: usize) {
        self.k = if k == 0 { usize::MAX } else { k };
        self.keys.clear();
        self.floor = 0;
    }

    // Called once per vocabulary entry per step: it must inline into the loops.
    #[inline(always)]
    fn push(&mut self, id: u32, logit: f32) {
        let key = rank_key(id, logit);
        if key <= self.floor && self.floor != 0 {
            return;
        }
        self.keys.push(key);
        if self.k != usize::MAX && self.keys.len() >= 2 * self.k + 64 {
            self.compact();
        }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keeps the best k, and raises the floor to the smallest of them.
    fn compact(&mut self) {
        let n = self.keys.len();
        if self.k < n {
            self.keys.select_nth_unstable(n - self.k);
            self.floor = self.keys[n - self.k];
            self.keys.drain(..n - self.k);
        }
    }

    /// Writes the best k as (token, logit) pairs into `out`.
    fn finish(&mut self, out: &mut Vec<(u32, f32)>) {
        self.compact();
        out.clear();
        out.extend(self.keys.iter().map(|&key| unrank_key(key)));
    }
}

/// A u64 that orders (token, logit) pairs like `desc` reversed: higher logit
/// is larger, and on equal logits the lower id is larger. The f32 bits are
/// made monotone (flip all bits of negatives, the sign bit of positives).
fn rank_key(id: u32, logit: f32) -> u64 {
    let b = logit.to_bits();
    let mono = if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    };
    ((mono as u64) << 32) | (u32::MAX - id) as u64
}

fn unrank_key(k: u64) -> (u32, f32) {
    let mono = (k >> 32) as u32;
    let b = if mono & 0x8000_0000 != 0 {
        mono & 0x7FFF_FFFF
    } else {
        !mono
    };
    (u32::MAX - k as u32, f32::from_bits(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prosody::rules::{check_rhyme, check_tones};

    /// A bigram model over a fixed character list: the logit of `b` after `a`
    /// is a fixed random number, so the choices vary but are fixed for a seed.
    /// Its state is the last token, which `step` is given anyway.
    /// Token ids 0..4 are the specials; 4 is '，', 5 is '。'.
    struct Bigram {
        chars: Vec<char>,
        table: Vec<f32>,
    }

    impl Bigram {
        fn new(text: &str) -> Bigram {
            let mut chars = vec!['\0'; 4];
            chars.extend(['，', '。']);
            chars.extend(text.chars());
            let v = chars.len();
            let mut rng = Rng::new(42);
            let table = (0..v * v).map(|_| 3.0 * rng.normal()).collect();
            Bigram { chars, table }
        }
    }

    impl CharModel for Bigram {
        type State = ();
        fn vocab_size(&self) -> usize {
            self.chars.len()
        }
        fn char_of(&self, id: u32) -> Option<char> {
            (id >= 4)
                .then(|| self.chars.get(id as usize).copied())
                .flatten()
        }
        fn initial_state(&self) {}
        fn step(&self, _: &mut (), t: u32, logits: &mut [f32]) {
            let v = self.chars.len();
            logits.copy_from_slice(&self.table[t as usize * v..(t as usize + 1) * v]);
        }
    }

    /// Level groups with a few characters each, plus oblique characters, plus
    /// 看 read both ways, plus 龘 which the lexicon does not know.
    const PING_A: &str = "东风中同红空"; // 一东
    const PING_B: &str = "先天年前边烟"; // 一先
    const PING_C: &str = "山间还闲关"; // 十五删
    const ZE: &str = "白日尽入海欲里目上一去见古月雪";
    const OTHER: &str = "看龘";

    fn lex() -> Lexicon {
        Lexicon::from_groups(&[
            ("一东", Tone::Ping, PING_A),
            ("一先", Tone::Ping, PING_B),
            ("十五删", Tone::Ping, PING_C),
            ("仄", Tone::Ze, ZE),
            ("十四寒", Tone::Ping, "看"),
            ("十五翰", Tone::Ze, "看"),
        ])
    }

    fn toy() -> Bigram {
        Bigram::new(&format!("{PING_A}{PING_B}{PING_C}{ZE}{OTHER}"))
    }

    fn opts(form: Form) -> Options {
        Options {
            form,
            temperature: 1.0,
            drafts: 1,
            ..Options::default()
        }
    }

    fn lines_of(p: &Poem) -> Vec<Vec<char>> {
        p.lines.iter().map(|l| l.text.chars().collect()).collect()
    }

    #[test]
    fn each_form_has_its_shape_and_punctuation() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        for form in [Form::Wujue, Form::Qijue, Form::Wulv, Form::Qilv] {
            let (n, len) = form.shape().unwrap();
            for p in w.write_many(&opts(form), 20, 1).unwrap() {
                assert_eq!(p.lines.len(), n, "{}", p.text);
                for (i, line) in p.lines.iter().enumerate() {
                    assert_eq!(line.chars.len(), len, "{}", p.text);
                    assert!(line.text.chars().all(is_han), "{}", p.text);
                    assert_eq!(line.end, if i % 2 == 1 { "。" } else { "，" }, "{}", p.text);
                }
                assert_eq!(p.text.chars().count(), n * (len + 1));
                assert!(!p.text.contains(['\0', ' ', '\u{fffd}']));
            }
        }
    }

    #[test]
    fn acrostic_heads_start_each_line_and_set_the_line_count() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        let o = Options {
            acrostic: "东风白日月".into(),
            ..opts(Form::Qijue)
        };
        for p in w.write_many(&o, 10, 3).unwrap() {
            let heads: String = p
                .lines
                .iter()
                .map(|l| l.text.chars().next().unwrap())
                .collect();
            assert_eq!(heads, "东风白日月");
            assert_eq!(
                p.lines.last().unwrap().end,
                "。",
                "odd line count still ends with 。"
            );
            assert!(p.lines.iter().all(|l| l.chars.len() == 7));
        }
        // Free acrostic: the model decides line lengths, the heads still lead.
        let o = Options {
            acrostic: "东风".into(),
            ..opts(Form::Free)
        };
        for p in w.write_many(&o, 10, 3).unwrap() {
            assert!(
                p.lines.len() <= 2 && p.lines[0].text.starts_with('东'),
                "{}",
                p.text
            );
        }
    }

    #[test]
    fn strict_rhymed_poems_pass_the_lexicons_checks() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        for form in [Form::Wujue, Form::Qijue, Form::Wulv, Form::Qilv] {
            let o = Options {
                rhyme: true,
                tones: ToneMode::Strict,
                ..opts(form)
            };
            for p in w.write_many(&o, 30, 7).unwrap() {
                let lines = lines_of(&p);
                let tones = check_tones(&l, &lines).unwrap();
                assert!(
                    tones.tones_ok(),
                    "{}: {:?}",
                    p.text,
                    tones.failures().collect::<Vec<_>>()
                );
                let r = check_rhyme(&l, &lines);
                assert!(r.rhyme_ok(), "{}", p.text);
                assert_eq!(
                    p.rhyme_group.as_deref(),
                    Some(l.group_name(r.rhyme_group.unwrap()))
                );
                // (this toy vocabulary is small enough to run out of unrepeated characters)
                assert!(
                    p.notes.iter().all(|n| n.contains("repetition allowed")),
                    "{:?}",
                    p.notes
                );
                // Characters of unknown tone (龘) only at positions no rule looks at.
                for line in &lines {
                    let n = line.len();
                    for j in [1, 3, n - 1].into_iter().chain((n == 7).then_some(5)) {
                        assert!(l.tone(line[j]).is_some(), "{}", p.text);
                    }
                }
                let feet: Vec<bool> = p
                    .lines
                    .iter()
                    .map(|l| l.chars.last().unwrap().foot)
                    .collect();
                assert_eq!(
                    feet,
                    (0..p.lines.len()).map(|i| i % 2 == 1).collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn the_repetition_rule_holds_in_every_form_unless_noted() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        for form in [Form::Wujue, Form::Qijue, Form::Wulv, Form::Qilv] {
            let broken = |o: &Options| {
                let poems = w.write_many(o, 40, 7).unwrap();
                let mut unnoted = 0;
                let mut broken = 0;
                for p in &poems {
                    let lines: Vec<&str> = p.lines.iter().map(|l| l.text.as_str()).collect();
                    let noted = p.notes.iter().any(|n| n.contains("repetition allowed"));
                    let b = repeats::first_break(&lines, repeats::is_free);
                    assert!(
                        !o.repeats || noted || b.is_none(),
                        "{form:?}: {b:?} in {}",
                        p.text
                    );
                    unnoted += !noted as usize;
                    broken += b.is_some() as usize;
                }
                (unnoted, broken)
            };
            let o = Options {
                rhyme: true,
                ..opts(form)
            };
            let (unnoted, _) = broken(&o);
            assert!(
                unnoted >= 10,
                "{form:?}: the rule backed off in {} of 40",
                40 - unnoted
            );
            // the rule is what keeps them clean: without it this toy model repeats
            let (_, without) = broken(&Options {
                repeats: false,
                ..o.clone()
            });
            assert!(without > 0, "{form:?}");
        }
    }

    #[test]
    fn drafts_are_seeded_and_the_kept_one_scores_highest() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        let o = Options {
            rhyme: true,
            drafts: 4,
            all_drafts: true,
            ..opts(Form::Qijue)
        };
        let a = w.write_many(&o, 6, 5).unwrap();
        assert_eq!(a, w.write_many(&o, 6, 5).unwrap());
        let single = w
            .write_many(
                &Options {
                    drafts: 1,
                    all_drafts: false,
                    ..o.clone()
                },
                6,
                5,
            )
            .unwrap();
        for (p, one) in a.iter().zip(&single) {
            assert_eq!(p.drafts.len(), 4);
            let max = p.drafts.iter().map(|d| d.score).fold(f32::MIN, f32::max);
            assert_eq!(p.score, max, "{:?}", p.drafts);
            let kept: Vec<&Draft> = p.drafts.iter().filter(|d| d.kept).collect();
            assert_eq!(kept.len(), 1);
            assert_eq!(
                (kept[0].text.as_str(), kept[0].score),
                (p.text.as_str(), p.score)
            );
            // draft 0 is the poem one draft writes
            assert_eq!(
                (p.drafts[0].text.as_str(), p.drafts[0].score),
                (one.text.as_str(), one.score)
            );
            assert!(p.score >= one.score && one.score < 0.0);
        }
        // the score is the mean log-probability of the chosen characters
        let logp = |p: &Poem| {
            let mut prev = BEGIN;
            let mut sum = 0f64;
            let mut n = 0;
            let mut logits = vec![0f32; m.vocab_size()];
            for c in p.text.chars() {
                let t = w.token_of(c).unwrap();
                m.step(&mut (), prev, &mut logits);
                if is_han(c) {
                    sum += logits[t as usize] as f64 - log_sum_exp(&logits);
                    n += 1;
                }
                prev = t;
            }
            sum / n as f64
        };
        for p in &single {
            assert!(
                (logp(p) - p.score as f64).abs() < 1e-4,
                "{} vs {}",
                logp(p),
                p.score
            );
        }
    }

    #[test]
    fn same_seed_same_poems_and_other_seeds_differ() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        let o = Options {
            rhyme: true,
            tones: ToneMode::Strict,
            top_p: 0.9,
            ..opts(Form::Qilv)
        };
        let a = w.write_many(&o, 5, 11).unwrap();
        let b = w.write_many(&o, 5, 11).unwrap();
        let c = w.write_many(&o, 5, 12).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Poem k does not depend on how many are written, nor on being written
        // in a batch or alone (for a model whose rows do not interact).
        assert_eq!(w.write_many(&o, 2, 11).unwrap()[..], a[..2]);
        let base = Rng::new(11);
        for (k, p) in a.iter().enumerate() {
            assert_eq!(&w.write(&o, &mut base.fork(k as u64)).unwrap(), p);
        }
    }

    #[test]
    fn free_mode_stops_at_max_len_or_end_and_never_emits_specials() {
        let m = toy();
        let w = Writer::new(&m, None);
        let o = Options {
            max_len: 30,
            ..opts(Form::Free)
        };
        for p in w.write_many(&o, 30, 5).unwrap() {
            let n = p.text.chars().count();
            assert!((1..=30).contains(&n), "{n}");
            assert!(
                p.text.chars().all(|c| is_han(c) || "，。".contains(c)),
                "{}",
                p.text
            );
            assert!(!p.text.contains("，，") && !p.text.starts_with('，'));
        }
    }

    #[test]
    fn begin_is_kept_and_may_cross_line_ends() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        let o = Options {
            begin: "白日入海东，月".into(),
            ..opts(Form::Wujue)
        };
        let p = w.write(&o, &mut Rng::new(1)).unwrap();
        assert!(p.text.starts_with("白日入海东，月"), "{}", p.text);
        assert_eq!(p.lines.len(), 4);
        // Traditional input finds the simplified character: 東 → 东.
        let o = Options {
            begin: "東風".into(),
            ..opts(Form::Wujue)
        };
        assert!(w
            .write(&o, &mut Rng::new(1))
            .unwrap()
            .text
            .starts_with("东风"));
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        let mut rng = Rng::new(1);
        let err = |o: Options| w.write(&o, &mut Rng::new(1)).unwrap_err();
        let e = err(Options {
            begin: "春".into(),
            ..opts(Form::Wujue)
        });
        assert!(matches!(e, WriteError::UnknownChar { ch: '春', .. }), "{e}");
        assert!(e.to_string().contains("`春`"));
        assert!(matches!(
            err(Options {
                acrostic: "  ".into(),
                ..opts(Form::Qijue)
            }),
            WriteError::EmptyInput { flag: "acrostic" }
        ));
        assert!(matches!(
            err(Options {
                begin: "东".repeat(25),
                ..opts(Form::Wujue)
            }),
            WriteError::TooLong { flag: "begin", .. }
        ));
        assert!(matches!(
            err(Options {
                acrostic: "东".repeat(33),
                ..opts(Form::Qijue)
            }),
            WriteError::TooLong {
                flag: "acrostic",
                ..
            }
        ));
        assert!(matches!(
            err(Options {
                acrostic: "东，".into(),
                ..opts(Form::Qijue)
            }),
            WriteError::NotHan { ch: '，' }
        ));
        assert!(matches!(
            err(Options {
                begin: "东风白日，".into(),
                ..opts(Form::Wujue)
            }),
            WriteError::BeginDoesNotFit {
                ch: '，',
                line: 1,
                pos: 5,
                ..
            }
        ));
        assert!(matches!(
            err(Options {
                begin: "东风白日月天".into(),
                ..opts(Form::Wujue)
            }),
            WriteError::BeginDoesNotFit {
                ch: '天',
                line: 1,
                pos: 6,
                ..
            }
        ));
        assert!(matches!(
            err(Options {
                begin: "东".into(),
                acrostic: "风".into(),
                ..opts(Form::Wujue)
            }),
            WriteError::BeginAndAcrostic
        ));
        assert!(matches!(
            err(Options {
                top_p: 0.0,
                ..opts(Form::Wujue)
            }),
            WriteError::BadOption { .. }
        ));
        assert!(matches!(
            err(Options {
                temperature: -1.0,
                ..opts(Form::Wujue)
            }),
            WriteError::BadOption { .. }
        ));
        assert!(w.write(&opts(Form::Wujue), &mut rng).is_ok());
    }

    #[test]
    fn impossible_constraints_back_off_with_notes_instead_of_failing() {
        // Only level characters: strict tones cannot be met (positions 2 and 4 alternate).
        let m = Bigram::new("东风中同红空先天年");
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        let o = Options {
            rhyme: true,
            tones: ToneMode::Strict,
            ..opts(Form::Qijue)
        };
        let p = w.write(&o, &mut Rng::new(2)).unwrap();
        assert_eq!(p.lines.len(), 4);
        assert_eq!(p.tones, ToneMode::Off);
        assert!(
            p.notes.iter().any(|n| n.contains("relaxing")),
            "{:?}",
            p.notes
        );
        // Rhyme alone still holds: the groups have enough characters.
        assert!(check_rhyme(&l, &lines_of(&p)).rhyme_ok(), "{}", p.text);
        // No level rhyme characters at all: rhyme is dropped with a note.
        let m = Bigram::new("白日尽入海欲里目");
        let w = Writer::new(&m, Some(&l));
        let p = w.write(&o, &mut Rng::new(2)).unwrap();
        assert!(
            !p.rhyme && p.notes.iter().any(|n| n.contains("without rhyme")),
            "{:?}",
            p.notes
        );
        // No lexicon: a note, and the poem is written anyway.
        let w = Writer::new(&m, None);
        let p = w.write(&o, &mut Rng::new(2)).unwrap();
        assert!(p.notes.iter().any(|n| n.contains("no tone lexicon")));
    }

    /// The trained network's batched rows give what stepping each alone gives,
    /// and a tiny random LSTM or GRU writes a well-formed rhymed 五绝 through it.
    #[test]
    fn lm_rows_match_single_steps_and_write_a_form() {
        use crate::model::{Cell, ModelConfig};
        let text = format!("{PING_A}{PING_B}{PING_C}{ZE}，。");
        let vocab = Vocab::build([text.as_str()], 1);
        let comma = vocab.id('，').unwrap();
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            // line and column embeddings for two of the cells: each row carries its place
            let positions = (cell != Cell::Rnn).then(|| crate::model::Positions {
                size: 3,
                line_ends: vocab.line_ends(),
                silent: vocab.silent(),
                forms: vocab.tag_ids(),
                resets: Vec::new(),
            });
            let cfg = ModelConfig {
                cell,
                layers: 2,
                embed: 8,
                hidden: 12,
                vocab: vocab.len(),
                positions,
                // and a tied projection for one: its bottleneck's transpose is used too
                tied: cell == Cell::Gru,
                ..ModelConfig::default()
            };
            let model = Model::new(cfg, &mut Rng::new(3));
            let lm = Lm::new(&model, &vocab);
            let v = lm.vocab_size();
            // Six rows: past STEP_GEMM_MIN_ROWS, so the batched step runs GEMMs.
            let seqs: [&[u32]; 6] = [
                &[BEGIN, 7, comma, 4],
                &[BEGIN, 5, 5, 6],
                &[BEGIN, comma, 10, 11],
                &[BEGIN, 4, 4, 4],
                &[BEGIN, 11, 7, comma],
                &[BEGIN, 6, 9, 8],
            ];
            assert!(seqs.len() >= crate::engine::STEP_GEMM_MIN_ROWS);
            let mut rows: Vec<ModelState> = (0..seqs.len()).map(|_| lm.initial_state()).collect();
            let mut batched = vec![0f32; seqs.len() * v];
            for t in 0..4 {
                let tokens: Vec<u32> = seqs.iter().map(|s| s[t]).collect();
                let mut refs: Vec<&mut ModelState> = rows.iter_mut().collect();
                lm.step_rows(&mut refs, &tokens, Some(&mut batched));
            }
            for (r, seq) in seqs.iter().enumerate() {
                let mut st = lm.initial_state();
                let mut alone = vec![0f32; v];
                for &t in seq.iter() {
                    lm.step(&mut st, t, &mut alone);
                }
                let diff = alone
                    .iter()
                    .zip(&batched[r * v..(r + 1) * v])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(diff < 1e-5, "{cell:?} row {r}: max difference {diff}");
            }
            let l = lex();
            let w = Writer::new(&lm, Some(&l));
            let o = Options {
                rhyme: true,
                tones: ToneMode::Strict,
                ..opts(Form::Wujue)
            };
            for p in w.write_many(&o, 8, 1).unwrap() {
                let lines = lines_of(&p);
                assert_eq!(lines.len(), 4, "{}", p.text);
                assert!(
                    check_tones(&l, &lines).unwrap().tones_ok()
                        && check_rhyme(&l, &lines).rhyme_ok(),
                    "{}",
                    p.text
                );
            }
        }
    }

    /// Records the tokens it is fed; a tag for 七绝 only.
    struct Recorder(std::sync::Mutex<Vec<u32>>, Bigram);

    impl CharModel for Recorder {
        type State = ();
        fn vocab_size(&self) -> usize {
            self.1.vocab_size()
        }
        fn char_of(&self, id: u32) -> Option<char> {
            self.1.char_of(id)
        }
        fn form_tag(&self, form: Form) -> Option<u32> {
            (form == Form::Qijue).then_some(PAD)
        }
        fn initial_state(&self) {}
        fn step(&self, s: &mut (), t: u32, logits: &mut [f32]) {
            self.0.lock().unwrap().push(t);
            self.1.step(s, t, logits);
        }
    }

    #[test]
    fn a_form_tag_is_fed_after_begin_when_asked_for_and_never_written() {
        let rec = Recorder(Default::default(), toy());
        let w = Writer::new(&rec, None);
        let fed = |o: &Options| {
            rec.0.lock().unwrap().clear();
            w.write(o, &mut Rng::new(1)).unwrap();
            rec.0.lock().unwrap().clone()
        };
        assert_eq!(&fed(&opts(Form::Qijue))[..2], &[BEGIN, PAD]);
        assert_ne!(fed(&opts(Form::Wujue))[1], PAD);
        let running = Options {
            tag: Some(Form::Qijue),
            max_len: 20,
            ..opts(Form::Free)
        };
        let f = fed(&running);
        assert_eq!(&f[..2], &[BEGIN, PAD]);
        assert!(!f[2..].contains(&PAD));
    }

    /// A [`Recorder`] that reads titles.
    struct TitledRecorder(Recorder);

    impl CharModel for TitledRecorder {
        type State = ();
        fn vocab_size(&self) -> usize {
            self.0.vocab_size()
        }
        fn char_of(&self, id: u32) -> Option<char> {
            self.0.char_of(id)
        }
        fn form_tag(&self, form: Form) -> Option<u32> {
            self.0.form_tag(form)
        }
        fn reads_titles(&self) -> bool {
            true
        }
        fn initial_state(&self) {}
        fn step(&self, s: &mut (), t: u32, logits: &mut [f32]) {
            self.0.step(s, t, logits)
        }
    }

    #[test]
    fn a_title_is_fed_between_two_begins_before_the_tag() {
        let rec = TitledRecorder(Recorder(Default::default(), toy()));
        let w = Writer::new(&rec, None);
        let o = Options {
            title: "东 风".into(),
            ..opts(Form::Qijue)
        };
        w.write(&o, &mut Rng::new(1)).unwrap();
        let fed = rec.0 .0.lock().unwrap().clone();
        let (dong, feng) = (w.token_of('东').unwrap(), w.token_of('风').unwrap());
        assert_eq!(&fed[..5], &[BEGIN, dong, feng, BEGIN, PAD]);
        assert!(!fed[5..].contains(&BEGIN));
        // a model without titles refuses one; a bad title is named
        let plain = Recorder(Default::default(), toy());
        let e = Writer::new(&plain, None)
            .write(&o, &mut Rng::new(1))
            .unwrap_err();
        assert!(e.to_string().contains("not trained with titles"), "{e}");
        for (bad, says) in [
            ("东,风", "not a Han character"),
            ("东东东东东东东东东东东东东东东东东", "more than the 16"),
        ] {
            let o = Options {
                title: bad.into(),
                ..opts(Form::Qijue)
            };
            let e = w.write(&o, &mut Rng::new(1)).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn keywords_always_appear_and_strict_rules_hold_in_every_form() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        for form in [Form::Wujue, Form::Qijue, Form::Wulv, Form::Qilv] {
            for (words, tones) in [
                (vec!["东风", "月"], ToneMode::Strict),
                (vec!["山", "日", "天"], ToneMode::Strict),
                (vec!["海", "白日", "东", "年"], ToneMode::Loose),
            ] {
                let o = Options {
                    keywords: vec![words.join(",")],
                    rhyme: true,
                    tones,
                    drafts: 3,
                    ..opts(form)
                };
                for p in w.write_many(&o, 6, 7).unwrap() {
                    for k in &words {
                        let found = p.lines.iter().any(|line| line.text.contains(k));
                        assert!(found, "{form:?} {k} missing: {}", p.text);
                    }
                    let lines = lines_of(&p);
                    assert_eq!(lines.len(), form.shape().unwrap().0, "{}", p.text);
                    if tones == ToneMode::Strict {
                        assert!(
                            check_tones(&l, &lines).unwrap().tones_ok()
                                && check_rhyme(&l, &lines).rhyme_ok(),
                            "{form:?}: {} {:?}",
                            p.text,
                            p.notes
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn keywords_that_fit_nowhere_or_without_lines_are_errors() {
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        let err = |o: Options| w.write(&o, &mut Rng::new(1)).unwrap_err().to_string();
        let five = Options {
            keywords: vec!["东,风,中,同,红".into()],
            ..opts(Form::Wujue)
        };
        assert!(err(five).contains("at most 4"));
        let free = Options {
            keywords: vec!["东".into()],
            ..opts(Form::Free)
        };
        assert!(err(free).contains("need a poem of fixed lines"));
        // an acrostic of two lines leaves two lines for three keywords
        let crowded = Options {
            keywords: vec!["东,风,中".into()],
            acrostic: "山天".into(),
            ..opts(Form::Wujue)
        };
        assert!(err(crowded).contains("each keyword takes a line"));
        let unknown = Options {
            keywords: vec!["龙".into()],
            ..opts(Form::Wujue)
        };
        assert!(err(unknown).contains("does not know `龙`"));
    }

    #[test]
    fn streaming_top_k_matches_a_full_sort() {
        let mut rng = Rng::new(6);
        let mut best = TopK::default();
        for (n, k) in [
            (6000, 200),
            (10, 3),
            (500, 1),
            (300, 0),
            (1000, 999),
            (0, 5),
        ] {
            let cands: Vec<(u32, f32)> = (0..n as u32)
                .map(|i| (i, (2.0 * rng.normal()).round() / 2.0))
                .collect();
            let mut want = cands.clone();
            want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            if k > 0 {
                want.truncate(k);
            }
            best.reset(k);
            for &(id, l) in &cands {
                best.push(id, l);
            }
            let mut got = Vec::new();
            best.finish(&mut got);
            got.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(got, want, "n {n} k {k}");
        }
    }

    #[test]
    fn top_k_matches_a_full_sort() {
        let mut rng = Rng::new(4);
        for (n, k, spread) in [
            (10, 3, 1.0),
            (6000, 200, 3.0),
            (500, 499, 0.0),
            (300, 7, 1e-6),
            (50, 10, 1e30),
        ] {
            let cands: Vec<(u32, f32)> = (0..n as u32)
                .map(|i| (i, (spread * rng.normal()).round_ties_even() / 4.0)) // many ties
                .collect();
            let mut want = cands.clone();
            want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            want.truncate(k);
            let mut got = cands.clone();
            top_k_in_place(&mut got, k);
            got.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(got, want, "n {n} k {k} spread {spread}");
        }
    }

    #[test]
    fn rank_key_orders_like_logits_then_ids_and_round_trips() {
        let xs = [
            (5u32, -3.5f32),
            (1, -0.0),
            (2, 0.0),
            (3, 1e-30),
            (4, 7.25),
            (0, 7.25),
            (9, f32::NEG_INFINITY),
        ];
        for &(i, a) in &xs {
            assert_eq!(unrank_key(rank_key(i, a)), (i, a));
            for &(j, b) in &xs {
                let want = a.total_cmp(&b).then(j.cmp(&i));
                assert_eq!(
                    rank_key(i, a).cmp(&rank_key(j, b)),
                    want,
                    "{a} {i} vs {b} {j}"
                );
            }
        }
    }

    #[test]
    fn sample_respects_top_k_top_p_and_temperature_zero() {
        let mut rng = Rng::new(9);
        let base = vec![(10, 1.0), (11, 3.0), (12, 2.0), (13, -5.0)];
        assert_eq!(sample(&mut base.clone(), 0.0, 0, 1.0, &mut rng), 11);
        for _ in 0..200 {
            let t = sample(&mut base.clone(), 1.0, 2, 1.0, &mut rng);
            assert!(t == 11 || t == 12, "top-k 2 gave {t}");
            // p(11) = e^3 / (e^3 + e^2 + e + e^-5) ≈ 0.665 < 0.7: top-p 0.7 keeps 11 and 12.
            let t = sample(&mut base.clone(), 1.0, 0, 0.7, &mut rng);
            assert!(t == 11 || t == 12, "top-p gave {t}");
            assert_eq!(sample(&mut base.clone(), 1.0, 0, 0.5, &mut rng), 11);
        }
        // The draw follows the probabilities: 11 about two thirds of the time.
        let n = 20_000;
        let hits = (0..n)
            .filter(|_| sample(&mut base.clone(), 1.0, 0, 1.0, &mut rng) == 11)
            .count();
        assert!((hits as f64 / n as f64 - 0.665).abs() < 0.02, "{hits}");
    }

    /// A form typed from a 词谱: one row per line, 平 仄 or 中 (either) per
    /// position, and the line's rhyme set.
    fn tune_form(rows: &[(&str, Option<usize>)], sets: &[Tone]) -> TuneForm {
        use crate::prosody::tunes::PatternLine;
        let lines = rows
            .iter()
            .map(|&(p, rhyme)| PatternLine {
                len: p.chars().count(),
                end: if rhyme.is_some() { '。' } else { '，' },
                tones: p
                    .chars()
                    .map(|c| match c {
                        '平' => Tone::Ping,
                        '仄' => Tone::Ze,
                        _ => Tone::Both,
                    })
                    .collect(),
                rhyme,
            })
            .collect();
        TuneForm {
            count: 0,
            lines,
            sets: sets.to_vec(),
            example: String::new(),
        }
    }

    /// Three tunes as 龙榆生《唐宋词格律》 gives them: 浣溪沙 (level rhyme),
    /// 如梦令 (oblique rhyme, 上去通押), 菩萨蛮 (four rhyme sets, 仄 平 仄 平).
    fn standard_tunes() -> Vec<(&'static str, TuneForm)> {
        let (p, z) = (Tone::Ping, Tone::Ze);
        let r = Some(0);
        vec![
            (
                "浣溪沙",
                tune_form(
                    &[
                        ("中仄中平中仄平", r),
                        ("中平中仄仄平平", r),
                        ("中平中仄仄平平", r),
                        ("中仄中平平仄仄", None),
                        ("中平中仄仄平平", r),
                        ("中平中仄仄平平", r),
                    ],
                    &[p],
                ),
            ),
            (
                "如梦令",
                tune_form(
                    &[
                        ("中仄中平中仄", r),
                        ("中仄中平中仄", r),
                        ("中仄仄平平", None),
                        ("中仄中平中仄", r),
                        ("平仄", r),
                        ("平仄", r),
                        ("中仄中平中仄", r),
                    ],
                    &[z],
                ),
            ),
            (
                "菩萨蛮",
                tune_form(
                    &[
                        ("中平中仄平平仄", Some(0)),
                        ("中平中仄平平仄", Some(0)),
                        ("中仄仄平平", Some(1)),
                        ("中平中仄平", Some(1)),
                        ("中平平仄仄", Some(2)),
                        ("中仄平平仄", Some(2)),
                        ("中仄仄平平", Some(3)),
                        ("中平中仄平", Some(3)),
                    ],
                    &[z, p, z, p],
                ),
            ),
        ]
    }

    /// The toy characters in real 平水韵 groups, so that 词林正韵 applies:
    /// 一东 (第一部), 一先 and 十五删 (both 第七部), 上声四纸 and 去声四寘
    /// (第三部, 上去通押), 入声六月 (第十八部).
    fn ci_lex() -> Lexicon {
        Lexicon::from_groups(&[
            ("上平声一东", Tone::Ping, PING_A),
            ("下平声一先", Tone::Ping, PING_B),
            ("上平声十五删", Tone::Ping, PING_C),
            ("上声四纸", Tone::Ze, "里海古"),
            ("去声四寘", Tone::Ze, "欲见去上"),
            ("入声六月", Tone::Ze, "月雪白日入目一尽"),
            ("上平声十四寒", Tone::Ping, "看"),
            ("去声十五翰", Tone::Ze, "看"),
        ])
    }

    #[test]
    fn ci_under_strict_tones_keep_every_fixed_tone_and_rhyme_in_one_bu() {
        let m = toy();
        let l = ci_lex();
        let cl = Cilin::new(&l);
        let w = Writer::new(&m, Some(&l));
        for (name, form) in standard_tunes() {
            let o = Options {
                tune: Some(form.clone()),
                rhyme: true,
                tones: ToneMode::Strict,
                ..opts(Form::Free)
            };
            for p in w.write_many(&o, 30, 3).unwrap() {
                assert!(
                    p.notes.is_empty() && p.tones == ToneMode::Strict,
                    "{name} {}: {:?}",
                    p.text,
                    p.notes
                );
                assert_eq!(p.lines.len(), form.lines.len(), "{name} {}", p.text);
                // Checked here against the form itself, not through prosody::tunes::check.
                let mut feet: Vec<Vec<Class>> = vec![Vec::new(); form.sets.len()];
                let mut first_foot = vec![true; form.sets.len()];
                for (line, want) in p.lines.iter().zip(&form.lines) {
                    let chars: Vec<char> = line.text.chars().collect();
                    assert_eq!(chars.len(), want.len, "{name} {}", p.text);
                    assert_eq!(line.end.chars().next(), Some(want.end));
                    for (&c, &t) in chars.iter().zip(&want.tones) {
                        if t != Tone::Both {
                            let got = l.tone(c);
                            assert!(
                                got.is_some_and(|g| g.fits(t)),
                                "{name} {}: {c} is not {t:?}",
                                p.text
                            );
                        }
                    }
                    let last = line.chars.last().unwrap();
                    assert_eq!(last.foot, want.rhyme.is_some(), "{name} {}", p.text);
                    if let Some(s) = want.rhyme {
                        let level = form.sets[s] == Tone::Ping;
                        let classes: Vec<Class> = cl
                            .classes(&l, last.ch)
                            .into_iter()
                            .filter(|k| k.level == level)
                            .collect();
                        if std::mem::take(&mut first_foot[s]) {
                            feet[s] = classes;
                        } else {
                            feet[s].retain(|k| classes.contains(k));
                        }
                        assert!(
                            !feet[s].is_empty(),
                            "{name} {}: {} leaves set {s}'s 部",
                            p.text,
                            last.ch
                        );
                    }
                }
                let want: Vec<String> = feet.iter().map(|f| f[0].name()).collect();
                let got = p.rhyme_group.clone().unwrap_or_default();
                for n in &want {
                    assert!(got.contains(n.as_str()), "{name}: {got} vs {want:?}");
                }
            }
        }
    }

    #[test]
    fn ci_tones_loose_and_off_and_rhyme_off() {
        let m = toy();
        let l = ci_lex();
        let w = Writer::new(&m, Some(&l));
        let form = standard_tunes().remove(1).1; // 如梦令
        for tones in [ToneMode::Loose, ToneMode::Off] {
            let o = Options {
                tune: Some(form.clone()),
                rhyme: false,
                tones,
                ..opts(Form::Free)
            };
            for p in w.write_many(&o, 20, 5).unwrap() {
                assert!(
                    p.rhyme_group.is_none()
                        && p.lines.iter().all(|x| x.chars.iter().all(|c| !c.foot))
                );
                for (line, want) in p.lines.iter().zip(&form.lines) {
                    for (j, (c, &t)) in line.chars.iter().zip(&want.tones).enumerate() {
                        let kept = j % 2 == 1 || j + 1 == want.len;
                        if tones == ToneMode::Loose && kept && t != Tone::Both {
                            assert!(c.tone.is_some_and(|g| g.fits(t)), "{}", p.text);
                        }
                    }
                }
            }
        }
        // Off writes something that breaks the pattern somewhere: the masks above did the work.
        let o = Options {
            tune: Some(form.clone()),
            tones: ToneMode::Off,
            ..opts(Form::Free)
        };
        let broken = w.write_many(&o, 20, 5).unwrap().iter().any(|p| {
            p.lines.iter().zip(&form.lines).any(|(line, want)| {
                line.chars
                    .iter()
                    .zip(&want.tones)
                    .any(|(c, &t)| t != Tone::Both && !c.tone.is_some_and(|g| g.fits(t)))
            })
        });
        assert!(broken);
        // A form without rhyme sets (a rare variant) writes with rhyme on.
        let mut plain = form.clone();
        plain.sets.clear();
        plain.lines.iter_mut().for_each(|l| l.rhyme = None);
        let o = Options {
            tune: Some(plain),
            rhyme: true,
            tones: ToneMode::Strict,
            ..opts(Form::Free)
        };
        let p = w.write(&o, &mut Rng::new(3)).unwrap();
        assert!(p.rhyme_group.is_none() && p.lines.len() == 7, "{}", p.text);
        // A broken form is refused with one line.
        let mut bad = form.clone();
        bad.lines[0].rhyme = Some(5);
        let e = w
            .write(
                &Options {
                    tune: Some(bad),
                    ..opts(Form::Free)
                },
                &mut Rng::new(1),
            )
            .unwrap_err();
        assert!(e.to_string().contains("tune's pattern"), "{e}");
    }
    #[test]
    fn given_text_that_breaks_the_rules_is_noted_and_the_rest_keeps_them() {
        // 春眠不觉晓，处处闻啼鸟。 as --form wujue --tones strict: the foot 鸟 is
        // 仄 and rhymes with nothing, yet no note said so
        let m = toy();
        let l = lex();
        let w = Writer::new(&m, Some(&l));
        let o = Options {
            begin: "白日尽入海，白日尽入月。".into(),
            rhyme: true,
            tones: ToneMode::Strict,
            ..opts(Form::Wujue)
        };
        for p in w.write_many(&o, 5, 4).unwrap() {
            let notes = p.notes.join(" | ");
            assert!(
                notes.contains("the given `月` ends line 2 but is in no level (平) rhyme group"),
                "{notes}"
            );
            assert!(notes.contains("breaks the tone rules"), "{notes}");
            // the foot written by the sampler still rhymes in the reported group
            let foot = p.lines[3].text.chars().last().unwrap();
            let group = p.rhyme_group.clone().expect("a rhyme group for line 4");
            let members = match group.as_str() {
                "一东" => PING_A,
                "一先" => PING_B,
                "十五删" => PING_C,
                other => panic!("group {other}"),
            };
            assert!(members.contains(foot), "{foot} not in {group}: {}", p.text);
        }
    }
}
