//! How good the poems are: the measures behind `shiren eval`, as pure
//! functions over texts, token batches and prosody reports, and the report
//! card that holds them (printed as a table, written as JSON or markdown).
//!
//! - perplexity per character of a model over batches, as nanoGPT's
//!   `estimate_loss` does it (forward only, masked mean over every batch of a
//!   part); every predicted token counts, punctuation and the END token
//!   included, exactly the events the trainer's loss and [`Ngram`] score;
//! - distinct-n (Li et al. 2016): distinct character n-grams over all n-grams
//!   of a sample, n-grams taken inside lines (punctuation is not a character
//!   of a line);
//! - copying: the share of lines found verbatim in the training part, and the
//!   share of 4-grams never seen there;
//! - prosody tallies from `prosody`'s checks: `form%`, `rhyme%`, `tones%`
//!   (every tone rule held) and `rules%` (share of single rule checks met).
//!
//! [`evaluate`] puts them together on a model, a split and a lexicon already
//! loaded; sampling goes through `write`, exactly as `shiren write` samples.
//! Not here: loading checkpoints and corpora, plotting (the CLI glue in
//! `cli/eval.rs`), and the rules themselves (`prosody::rules`).

use std::collections::HashSet;

use rayon::prelude::*;
use serde::Serialize;

use crate::batch::{Batch, Batcher};
use crate::corpus::{split_lines, Form};
use crate::model::Model;
use crate::ngram::Ngram;
use crate::prosody::repeats::RepeatTally;
use crate::prosody::{check_poem, Lexicon, ToneMode};
use crate::rng::Rng;
use crate::vocab::Vocab;
use crate::write::{self, CharModel, Lm, Writer};

mod card;
mod sweep;
pub mod titles;

use card::render;
pub use sweep::{sweep, sweep_grid, sweep_table, Setting, SweepRow};

// ---------------------------------------------------------------------------
// perplexity

/// Summed loss over a part and what it means per character.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Perplexity {
    /// Negative log-likelihood, nats, summed over predicted tokens.
    pub nll: f64,
    /// Predicted tokens (characters, punctuation and END).
    pub tokens: f64,
}

impl Perplexity {
    pub fn from_sums(nll: f64, tokens: f64) -> Perplexity {
        Perplexity { nll, tokens }
    }

    /// Mean loss per character, nats.
    pub fn loss(&self) -> f64 {
        self.nll / self.tokens.max(1.0)
    }

    /// exp(mean loss per character).
    pub fn ppl(&self) -> f64 {
        self.loss().exp()
    }
}

/// Perplexity of `model` over every batch of a part (no dropout, forward
/// only), summing [`Model::loss`]'s (nats, tokens) the way nanoGPT's
/// `estimate_loss` averages, but over the whole part rather than a sample of
/// `eval_iters` batches, so the figure does not depend on a seed.
pub fn perplexity(model: &mut Model, batches: &[Batch]) -> Perplexity {
    perplexity_with(|b| model.loss(b), batches)
}

/// [`perplexity`] for any scorer returning (summed nats, tokens) per batch.
pub fn perplexity_with(
    mut loss: impl FnMut(&Batch) -> (f64, f64),
    batches: &[Batch],
) -> Perplexity {
    let (mut nll, mut tokens) = (0.0, 0.0);
    for b in batches {
        let (s, n) = loss(b);
        nll += s;
        tokens += n;
    }
    Perplexity { nll, tokens }
}

// ---------------------------------------------------------------------------
// diversity and copying

/// Distinct character n-grams over all n-grams, n-grams inside each line
/// (lines as [`split_lines`] cuts them); 0 when there are none.
pub fn distinct_n<S: AsRef<str>>(poems: &[S], n: usize) -> f64 {
    let mut seen: HashSet<&[char]> = HashSet::new();
    let lines: Vec<Vec<char>> = poems
        .iter()
        .flat_map(|p| {
            split_lines(p.as_ref())
                .into_iter()
                .map(|l| l.chars().collect())
        })
        .collect();
    let mut total = 0usize;
    for l in &lines {
        for g in l.windows(n) {
            total += 1;
            seen.insert(g);
        }
    }
    if total == 0 {
        0.0
    } else {
        seen.len() as f64 / total as f64
    }
}

/// The lines and 4-grams of the training part, to tell copied text from new.
#[derive(Debug, Default)]
pub struct CopyIndex {
    lines: HashSet<String>,
    /// 4-grams inside lines, packed 21 bits per character (exact, no hashing).
    grams: HashSet<u128>,
}

/// Copying figures of one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Copying {
    pub lines: usize,
    /// Lines found verbatim in the training part.
    pub lines_copied: usize,
    pub grams: usize,
    /// 4-grams never seen in the training part.
    pub grams_unseen: usize,
}

impl Copying {
    pub fn copied_pct(&self) -> f64 {
        pct(self.lines_copied, self.lines)
    }
    pub fn unseen_pct(&self) -> f64 {
        pct(self.grams_unseen, self.grams)
    }
}

fn pack4(g: &[char]) -> u128 {
    g.iter().fold(0u128, |acc, &c| (acc << 21) | c as u128)
}

impl CopyIndex {
    pub fn build<S: AsRef<str>>(poems: impl IntoIterator<Item = S>) -> CopyIndex {
        let mut idx = CopyIndex::default();
        for p in poems {
            for l in split_lines(p.as_ref()) {
                let chars: Vec<char> = l.chars().collect();
                idx.grams.extend(chars.windows(4).map(pack4));
                idx.lines.insert(l.to_string());
            }
        }
        idx
    }

    pub fn has_line(&self, line: &str) -> bool {
        self.lines.contains(line)
    }

    /// Lines copied and 4-grams unseen over a sample of poems.
    pub fn copying<S: AsRef<str>>(&self, poems: &[S]) -> Copying {
        let mut c = Copying::default();
        for p in poems {
            for l in split_lines(p.as_ref()) {
                c.lines += 1;
                c.lines_copied += self.lines.contains(l) as usize;
                let chars: Vec<char> = l.chars().collect();
                for g in chars.windows(4) {
                    c.grams += 1;
                    c.grams_unseen += !self.grams.contains(&pack4(g)) as usize;
                }
            }
        }
        c
    }
}

fn pct(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * k as f64 / n as f64
    }
}

// ---------------------------------------------------------------------------
// prosody

/// Counts over a sample of poems meant to be of one form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    pub poems: usize,
    /// Poems of the intended shape (lines × characters).
    pub form_ok: usize,
    /// Feet level and in one 平水韵 group.
    pub rhyme_ok: usize,
    /// Every tone rule held.
    pub tones_ok: usize,
    /// Single tone-rule checks met and made.
    pub rules_met: usize,
    pub rules_made: usize,
}

impl Tally {
    /// Adds one poem. Rhyme and tones are checked on whatever lines it has
    /// when they are 5 or 7 characters alike; a poem of another shape fails
    /// both (and adds no rule checks).
    pub fn add(&mut self, lex: &Lexicon, text: &str, form: Form) {
        self.poems += 1;
        self.form_ok += (Form::of_text(text) == form) as usize;
        if let Ok(r) = check_poem(lex, text) {
            self.rhyme_ok += r.rhyme_ok() as usize;
            self.tones_ok += r.tones_ok() as usize;
            let (met, made) = r.tone_rules_met();
            self.rules_met += met;
            self.rules_made += made;
        }
    }

    pub fn form_pct(&self) -> f64 {
        pct(self.form_ok, self.poems)
    }
    pub fn rhyme_pct(&self) -> f64 {
        pct(self.rhyme_ok, self.poems)
    }
    pub fn tones_pct(&self) -> f64 {
        pct(self.tones_ok, self.poems)
    }
    pub fn rules_pct(&self) -> f64 {
        pct(self.rules_met, self.rules_made)
    }
}

// ---------------------------------------------------------------------------
// the report card

/// Where a row's poems come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Sampled with the form's length and punctuation forced, nothing else.
    Free,
    /// Sampled with the form forced, `--rhyme --tones strict`.
    Strict,
    /// Sampled with no form forced, from the first line of a held-out poem of the form.
    Running,
    /// Sampled as `shiren write --form F` samples by default (its default
    /// temperature, top-k, top-p, drafts, rhyme and repetition rule).
    Default,
    /// Real held-out poems (validation and test parts) of the form.
    Real,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Free,
        Kind::Strict,
        Kind::Running,
        Kind::Default,
        Kind::Real,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Free => "model, form forced",
            Kind::Strict => "model, rhyme + strict tones",
            Kind::Running => "model, free-running",
            Kind::Default => "model, write's defaults",
            Kind::Real => "real held-out",
        }
    }
}

/// One sample's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardRow {
    pub form: Form,
    pub kind: Kind,
    pub poems: usize,
    pub form_pct: f64,
    pub rhyme_pct: f64,
    pub tones_pct: f64,
    pub rules_pct: f64,
    /// distinct-1 and distinct-2 over the first `distinct_over` poems, the
    /// same count for every row of a form so that the figures compare.
    pub distinct1: f64,
    pub distinct2: f64,
    pub distinct_over: usize,
    pub copied_lines_pct: f64,
    pub unseen_4grams_pct: f64,
    pub repeats: RepeatRow,
}

/// Repetition in a sample ([`crate::prosody::repeats`]) and, for written poems, the drafts' scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RepeatRow {
    /// Poems using one character three times or more.
    pub uses_three_pct: f64,
    /// Poems whose line 1's last character is used again as a rhyme foot.
    pub first_end_reused_pct: f64,
    /// Lines holding one character twice, not side by side.
    pub line_repeats_pct: f64,
    /// Mean log-probability per chosen character of the kept poems (nats).
    pub score: Option<f64>,
    /// The same over every draft: what single drafts score.
    pub draft_score: Option<f64>,
}

impl RepeatRow {
    /// The repetition measures of `poems` (texts); no scores.
    pub fn of<S: AsRef<str>>(poems: &[S]) -> RepeatRow {
        let mut t = RepeatTally::default();
        for p in poems {
            t.add(&split_lines(p.as_ref()));
        }
        RepeatRow {
            uses_three_pct: t.uses_three_pct(),
            first_end_reused_pct: t.first_end_reused_pct(),
            line_repeats_pct: t.line_repeats_pct(),
            score: None,
            draft_score: None,
        }
    }

    /// With the scores of written poems: kept poems' mean score, and every draft's.
    pub fn with_scores(mut self, poems: &[write::Poem]) -> RepeatRow {
        if poems.is_empty() {
            return self;
        }
        let kept: f64 = poems.iter().map(|p| p.score as f64).sum();
        self.score = Some(kept / poems.len() as f64);
        let all: Vec<f64> = poems
            .iter()
            .flat_map(|p| {
                let d: Vec<f64> = p.drafts.iter().map(|d| d.score as f64).collect();
                if d.is_empty() {
                    vec![p.score as f64]
                } else {
                    d
                }
            })
            .collect();
        self.draft_score = Some(all.iter().sum::<f64>() / all.len() as f64);
        self
    }
}

/// Scores a sample: prosody against `form`, distinct-n over the first
/// `distinct_over` poems, copying against `index`.
pub fn score<S: AsRef<str>>(
    form: Form,
    kind: Kind,
    poems: &[S],
    lex: &Lexicon,
    index: &CopyIndex,
    distinct_over: usize,
) -> CardRow {
    let mut t = Tally::default();
    for p in poems {
        t.add(lex, p.as_ref(), form);
    }
    let head = &poems[..distinct_over.min(poems.len())];
    let c = index.copying(poems);
    CardRow {
        form,
        kind,
        poems: poems.len(),
        form_pct: t.form_pct(),
        rhyme_pct: t.rhyme_pct(),
        tones_pct: t.tones_pct(),
        rules_pct: t.rules_pct(),
        distinct1: distinct_n(head, 1),
        distinct2: distinct_n(head, 2),
        distinct_over: head.len(),
        copied_lines_pct: c.copied_pct(),
        unseen_4grams_pct: c.unseen_pct(),
        repeats: RepeatRow::of(poems),
    }
}

/// Perplexities of one part.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartPerplexity {
    /// `valid` or `test`.
    pub part: String,
    pub poems: usize,
    pub tokens: f64,
    pub model: f64,
    /// Kneser–Ney n-gram baselines trained on the same training part: (order, perplexity).
    pub ngram: Vec<(usize, f64)>,
}

/// Everything `shiren eval` measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Card {
    /// The checkpoint evaluated and what it was trained on.
    pub model: String,
    pub corpus: String,
    pub step: u64,
    /// Poems sampled per form and kind.
    pub samples: usize,
    pub seed: u64,
    pub perplexity: Vec<PartPerplexity>,
    pub rows: Vec<CardRow>,
    /// How the figures were measured, one sentence each.
    pub notes: Vec<String>,
    /// The shipped model's targets, each met or not.
    pub targets: Vec<Target>,
    /// What a title does, for a model trained with titles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub titles: Option<titles::TitleCard>,
}

/// One target of the shipped model and where this model stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub what: String,
    pub value: String,
    pub met: bool,
}

/// The targets of issue 5 checked against perplexities and rows: test
/// perplexity at most 0.55× the trigram's; free-running form% at least 90
/// on 七绝 and 五律; with rhyme and strict tones, rhyme% ≥ 98 and tones% ≥ 95
/// on every form; lines copied (form forced) no more than 6% and no more than
/// the real poems' own rate; distinct-2 (form forced) within 10% of the real
/// poems'. A target whose figures are missing is left out.
pub fn targets(perplexity: &[PartPerplexity], rows: &[CardRow]) -> Vec<Target> {
    let mut t = Vec::new();
    if let Some(p) = perplexity.iter().find(|p| p.part == "test") {
        if let Some(&(_, kn3)) = p.ngram.iter().find(|&&(n, _)| n == 3) {
            let r = p.model / kn3;
            t.push(Target {
                what: "test perplexity ≤ 0.55× the KN trigram's".into(),
                value: format!("{r:.2}×"),
                met: r <= 0.55,
            });
        }
    }
    let row = |form: Form, kind: Kind| {
        rows.iter()
            .find(|r| r.form == form && r.kind == kind && r.poems > 0)
    };
    for form in [Form::Qijue, Form::Wulv] {
        if let Some(r) = row(form, Kind::Running) {
            t.push(Target {
                what: format!("{} free-running form% ≥ 90", form.name_zh()),
                value: format!("{:.1}", r.form_pct),
                met: r.form_pct >= 90.0,
            });
        }
    }
    for form in Form::REGULATED {
        if let Some(r) = row(form, Kind::Strict) {
            t.push(Target {
                what: format!(
                    "{} rhyme + strict tones: rhyme% ≥ 98, tones% ≥ 95",
                    form.name_zh()
                ),
                value: format!("{:.1} / {:.1}", r.rhyme_pct, r.tones_pct),
                met: r.rhyme_pct >= 98.0 && r.tones_pct >= 95.0,
            });
        }
    }
    for form in Form::REGULATED {
        let (Some(m), Some(real)) = (row(form, Kind::Free), row(form, Kind::Real)) else {
            continue;
        };
        t.push(Target {
            what: format!(
                "{} lines copied ≤ 6% and ≤ real ({:.1}%)",
                form.name_zh(),
                real.copied_lines_pct
            ),
            value: format!("{:.1}%", m.copied_lines_pct),
            met: m.copied_lines_pct <= 6.0 && m.copied_lines_pct <= real.copied_lines_pct,
        });
        let rel = (m.distinct2 - real.distinct2) / real.distinct2.max(1e-9);
        t.push(Target {
            what: format!(
                "{} distinct-2 within 10% of real ({:.3})",
                form.name_zh(),
                real.distinct2
            ),
            value: format!("{:.3} ({:+.1}%)", m.distinct2, 100.0 * rel),
            met: rel.abs() <= 0.10,
        });
    }
    t.extend(default_targets(rows));
    t
}

/// How far over the real poems' rate a repetition rate may go.
pub const REPEAT_SLACK: f64 = 1.5;

/// The targets of the default writing settings, per form: each repetition
/// rate at most [`REPEAT_SLACK`]× the real poems' (where the real rate is 0,
/// at most one poem or line in the sample); distinct-2 within 10% of the real
/// poems'; the kept drafts' mean log-probability above single drafts'.
pub fn default_targets(rows: &[CardRow]) -> Vec<Target> {
    let mut t = Vec::new();
    let row = |form: Form, kind: Kind| {
        rows.iter()
            .find(|r| r.form == form && r.kind == kind && r.poems > 0)
    };
    for form in Form::REGULATED {
        let (Some(m), Some(real)) = (row(form, Kind::Default), row(form, Kind::Real)) else {
            continue;
        };
        let name = form.name_zh();
        let (mr, rr) = (&m.repeats, &real.repeats);
        let lines = m.poems * form.shape().map_or(1, |(n, _)| n);
        for (what, got, want, unit) in [
            (
                "poems using a character 3+ times",
                mr.uses_three_pct,
                rr.uses_three_pct,
                m.poems,
            ),
            (
                "line 1's end reused as a rhyme foot",
                mr.first_end_reused_pct,
                rr.first_end_reused_pct,
                m.poems,
            ),
            (
                "lines repeating a character apart",
                mr.line_repeats_pct,
                rr.line_repeats_pct,
                lines,
            ),
        ] {
            let limit = (REPEAT_SLACK * want).max(100.0 / unit.max(1) as f64);
            t.push(Target {
                what: format!("{name} defaults: {what} ≤ {REPEAT_SLACK}× real ({want:.1}%)"),
                value: format!("{got:.1}%"),
                met: got <= limit + 1e-9,
            });
        }
        let rel = (m.distinct2 - real.distinct2) / real.distinct2.max(1e-9);
        t.push(Target {
            what: format!(
                "{name} defaults: distinct-2 within 10% of real ({:.3})",
                real.distinct2
            ),
            value: format!("{:.3} ({:+.1}%)", m.distinct2, 100.0 * rel),
            met: rel.abs() <= 0.10,
        });
        if let (Some(kept), Some(single)) = (mr.score, mr.draft_score) {
            t.push(Target {
                what: format!("{name} defaults: kept poems' log-prob per char above single drafts' ({single:.3})"),
                value: format!("{kept:.3} ({:+.3})", kept - single),
                met: kept > single,
            });
        }
    }
    t
}

// ---------------------------------------------------------------------------
// the whole evaluation

/// The poems of each part, filtered as the trainer filtered them.
#[derive(Clone, Debug, Default)]
pub struct Split {
    pub train: Vec<String>,
    pub valid: Vec<String>,
    pub test: Vec<String>,
    /// Each test poem's cleaned title (see [`crate::title::clean`]), when it has one.
    pub test_titles: Vec<Option<String>>,
}

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct EvalSettings {
    /// Poems per form and kind (the real rows hold at most this many).
    pub samples: usize,
    pub seed: u64,
    /// Orders of the Kneser–Ney baselines.
    pub orders: Vec<usize>,
    /// Poems per batch for the model's perplexity.
    pub batch: usize,
    /// Sampling settings, as `shiren write` takes them.
    pub temperature: f32,
    pub top_k: usize,
    /// Free-running: the most characters a poem may have.
    pub max_len: usize,
    /// (title, real poem) pairs written from for the title's effect (a model trained with titles).
    pub title_pairs: usize,
}

/// Sampling temperature of the report card's plain rows: 1, the model's own
/// distribution (the one perplexity scores). The "write's defaults" rows
/// sample as `shiren write` does, drafts and repetition rule included.
pub const TEMPERATURE: f32 = 1.0;

impl Default for EvalSettings {
    fn default() -> EvalSettings {
        let w = write::Options::default();
        EvalSettings {
            samples: 1000,
            seed: 1,
            orders: vec![3, 5],
            batch: 64,
            temperature: TEMPERATURE,
            top_k: w.top_k,
            max_len: w.max_len,
            title_pairs: 500,
        }
    }
}

/// Measures `model` on `data`: perplexity of the validation and test parts
/// beside Kneser–Ney baselines trained on the training part, then for each
/// form the three kinds of samples and the real held-out poems, scored with
/// `lex`. `say` hears progress. The card's model, corpus and step are left
/// for the caller to fill in.
pub fn evaluate(
    model: &mut Model,
    vocab: &Vocab,
    lex: &Lexicon,
    data: &Split,
    set: &EvalSettings,
    say: &dyn Fn(&str),
) -> anyhow::Result<Card> {
    // --- perplexity: the model and the n-gram baselines on the same parts ---
    let encode = |texts: &[String]| texts.iter().map(|t| vocab.encode(t)).collect::<Vec<_>>();
    let train_ids = encode(&data.train);
    let mut ngrams = Vec::new();
    for &n in &set.orders {
        ngrams.push(Ngram::train(n, &train_ids, vocab.len())?);
    }
    drop(train_ids);
    say("n-gram baselines trained");
    let mut parts = Vec::new();
    for (part, texts) in [("valid", &data.valid), ("test", &data.test)] {
        if texts.is_empty() {
            continue;
        }
        let ids = encode(texts);
        let batches = Batcher::new(ids.clone(), set.batch.max(1)).epoch(&mut Rng::new(set.seed));
        let p = perplexity(model, &batches);
        let ngram = set
            .orders
            .iter()
            .zip(&ngrams)
            .map(|(&n, lm)| (n, lm.perplexity(&ids)))
            .collect();
        parts.push(PartPerplexity {
            part: part.into(),
            poems: texts.len(),
            tokens: p.tokens,
            model: p.ppl(),
            ngram,
        });
        say(&format!("{part} perplexity measured"));
    }
    drop(ngrams);

    // --- samples and real poems per form ---
    let index = CopyIndex::build(&data.train);
    let net = Lm::new(model, vocab);
    let writer = Writer::new(&net, Some(lex));
    let held_out: Vec<&String> = data.valid.iter().chain(&data.test).collect();
    let mut rows = Vec::new();
    let mut rng = Rng::new(set.seed);
    for form in Form::REGULATED {
        let mut real: Vec<&str> = held_out
            .iter()
            .filter(|t| Form::of_text(t) == form)
            .map(|t| t.as_str())
            .collect();
        rng.shuffle(&mut real);
        real.truncate(set.samples);
        // Free-running prompts: first lines the model can read (a character
        // it maps to UNK could not be given to `write`).
        let prompts: Vec<String> = real
            .iter()
            .map(|t| first_line(t))
            .filter(|l| l.chars().all(|c| vocab.id(c).is_some()))
            .collect();
        let mut kinds: Vec<(Kind, Vec<String>)> = Vec::new();
        let mut written = Vec::new();
        for kind in [Kind::Free, Kind::Strict, Kind::Running, Kind::Default] {
            let seed = rng.next_u64();
            let poems = sample(&writer, set, form, kind, &prompts, seed)?;
            kinds.push((kind, poems.iter().map(|p| p.text.clone()).collect()));
            if kind == Kind::Default {
                written = poems;
            }
        }
        kinds.push((Kind::Real, real.iter().map(|s| s.to_string()).collect()));
        let over = kinds
            .iter()
            .map(|(_, p)| p.len())
            .filter(|&n| n > 0)
            .min()
            .unwrap_or(0);
        for (kind, poems) in &kinds {
            let mut row = score(form, *kind, poems, lex, &index, over);
            if *kind == Kind::Default {
                row.repeats = row.repeats.with_scores(&written);
            }
            rows.push(row);
        }
        say(&format!("{} sampled and scored", form.name_zh()));
    }
    let mut targets = targets(&parts, &rows);
    drop(writer);
    drop(net);
    let reads_titles = model
        .cfg
        .positions
        .as_ref()
        .is_some_and(|p| p.resets.contains(&Vocab::BEGIN));
    let titles = if reads_titles && !data.test_titles.is_empty() {
        let test: Vec<(Option<String>, String)> = data
            .test_titles
            .iter()
            .cloned()
            .zip(data.test.iter().cloned())
            .collect();
        let card = titles::measure(
            model,
            vocab,
            Some(lex),
            &data.train,
            &test,
            set.title_pairs,
            set.batch,
            set.seed,
        )?;
        let test_ppl = parts.iter().find(|p| p.part == "test").map(|p| p.model);
        targets.extend(card.targets(test_ppl));
        say("the title's effect measured");
        Some(card)
    } else {
        None
    };
    Ok(Card {
        model: String::new(),
        corpus: String::new(),
        step: 0,
        samples: set.samples,
        seed: set.seed,
        perplexity: parts,
        rows,
        notes: notes(set),
        targets,
        titles,
    })
}

/// Slices of a sample written side by side (about the cores of a laptop).
const SLICES: usize = 8;

/// `count` poems of `opts` written side by side in `SLICES` slices, each
/// with its own seed, so the poems depend on the seed and the number of
/// slices (fixed here), not on the threads.
pub fn write_sliced<M: CharModel + Sync>(
    writer: &Writer<M>,
    opts: &write::Options,
    count: usize,
    seed: u64,
) -> anyhow::Result<Vec<write::Poem>> {
    let slices = SLICES.min(count.max(1));
    let per = count.div_ceil(slices);
    let parts: Vec<Vec<write::Poem>> = (0..slices)
        .into_par_iter()
        .map(|i| {
            let n = per.min(count.saturating_sub(i * per));
            Ok(writer.write_many(opts, n, seed ^ (i as u64).wrapping_mul(0x9E37_79B9))?)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(parts.concat())
}

/// `set.samples` poems of `form` and `kind`; free-running poems start from
/// the `prompts` in turn (none when there are none).
fn sample<M: CharModel + Sync>(
    writer: &Writer<M>,
    set: &EvalSettings,
    form: Form,
    kind: Kind,
    prompts: &[String],
    seed: u64,
) -> anyhow::Result<Vec<write::Poem>> {
    let wform = form;
    // The report card's own kinds sample the model plainly: one draft, no
    // repetition rule, at the card's temperature.
    let mut opts = write::Options {
        temperature: set.temperature,
        top_k: set.top_k,
        max_len: set.max_len,
        repeats: false,
        drafts: 1,
        top_p: 1.0,
        ..write::Options::default()
    };
    match kind {
        Kind::Default => {
            // As `shiren write --form F` writes: its defaults, rhyme on.
            let opts = write::Options {
                form: wform,
                rhyme: true,
                all_drafts: true,
                ..write::Options::default()
            };
            write_sliced(writer, &opts, set.samples, seed)
        }
        Kind::Free | Kind::Strict => {
            opts.form = wform;
            (opts.rhyme, opts.tones) = if kind == Kind::Strict {
                (true, ToneMode::Strict)
            } else {
                (false, ToneMode::Off)
            };
            write_sliced(writer, &opts, set.samples, seed)
        }
        Kind::Running => {
            if prompts.is_empty() {
                return Ok(Vec::new());
            }
            opts.form = write::Form::Free;
            // A model trained with form tags is told the form, and nothing forces it.
            opts.tag = Some(wform);
            // One request per prompt, written side by side, one slice per core.
            let reqs: Vec<write::Request> = (0..set.samples)
                .map(|k| write::Request {
                    opts: write::Options {
                        begin: prompts[k % prompts.len()].clone(),
                        ..opts.clone()
                    },
                    count: 1,
                    seed: seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                })
                .collect();
            let per = reqs.len().div_ceil(SLICES).max(1);
            let parts: Vec<Vec<write::Poem>> = reqs
                .par_chunks(per)
                .map(|slice| {
                    let mut poems = Vec::with_capacity(slice.len());
                    for r in writer.write_requests(slice) {
                        poems.extend(r?);
                    }
                    Ok(poems)
                })
                .collect::<anyhow::Result<_>>()?;
            Ok(parts.concat())
        }
        // The real rows are the held-out poems themselves, not samples.
        Kind::Real => Ok(Vec::new()),
    }
}

/// The first line of a poem with its punctuation: the free-running prompt.
pub fn first_line(text: &str) -> String {
    let end = text
        .char_indices()
        .find(|&(_, c)| crate::corpus::clean::is_clause_end(c))
        .map_or(text.len(), |(i, c)| i + c.len_utf8());
    text[..end].to_string()
}

fn notes(set: &EvalSettings) -> Vec<String> {
    vec![
        "perplexity: exp of the mean loss per predicted token over every poem of the part (not a sample of batches); punctuation and END count as characters for the model and the n-grams alike".into(),
        "n-gram baselines: interpolated modified Kneser–Ney, trained on the checkpoint's training part with its vocabulary".into(),
        format!("sampling as `shiren write` does (same masks), at temperature {} and top-k {}; form forced: line lengths and punctuation only; rhyme + strict tones: also --rhyme --tones strict", set.temperature, set.top_k),
        "free-running: no form forced; the prompt is the form's tag (for a model trained with form tags) and the first line (with its comma) of a held-out poem of the form whose characters the model knows, and form% says whether the model kept to that form; the prompt line counts in copying".into(),
        "real held-out: validation and test poems of the form (at most the sample size); rhyme% and tones% count a poem whose lines are not all 5 or all 7 characters as failing".into(),
        "copying is against the training part: lines found verbatim, 4-grams (inside lines) never seen".into(),
        {
            let d = write::Options::default();
            format!("write's defaults: temperature {}, top-k {}, top-p {}, {} drafts kept by mean log-probability per character, rhyme on, repetition rule on, tones off; the other model rows use one draft and no repetition rule", d.temperature, d.top_k, d.top_p, d.drafts)
        },
        "repetition: 3+ uses = poems using one character three times or more; line-1 end as foot = poems whose line 1 ends on a character used again as a rhyme foot; line repeats = lines holding a character twice, not side by side (年年 is fine); log-prob/char = mean log-probability per chosen character of the kept poems".into(),
    ]
}

#[cfg(test)]
mod tests;
