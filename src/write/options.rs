//! What a caller asks the writer for ([`Options`], with the defaults `shiren
//! write` uses and their limits), and what can go wrong ([`WriteError`]).

use serde::Serialize;

use crate::prosody::tunes::TuneForm;
use crate::prosody::ToneMode;

use super::Form;

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
    /// Characters kept where they stand, □ or ? for the free positions (see [`template`](super::template)).
    pub template: String,
    /// What the poem is about, read before it by a model trained with titles
    /// (see [`crate::title`]); empty: no title.
    pub title: String,
    /// Words that must appear, each kept where the drafts' likeliest
    /// placement puts it (see [`keywords`](super::keywords)).
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
    /// Hold regulated poems to the repetition rule of [`repeats`](crate::prosody::repeats): no rhyme
    /// foot twice, no character more than twice, none twice in a line.
    pub repeats: bool,
    /// Drafts written per poem, side by side; the one with the highest
    /// [`Poem::score`](super::Poem::score) is kept (1: the first draft, as written).
    pub drafts: usize,
    /// Keep every draft's text and score in [`Poem::drafts`](super::Poem::drafts).
    pub all_drafts: bool,
}

/// Drafts per poem by default (see `docs/quality.md` for the sweep behind it).
pub const DEFAULT_DRAFTS: usize = 2;

/// The most drafts per poem (each costs a whole poem).
pub const MAX_DRAFTS: usize = 64;

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
            temperature: 1.1,
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
