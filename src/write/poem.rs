//! What the writer gives back: a [`Poem`], its lines and characters marked
//! for display, its score, and its drafts when asked for.

use serde::Serialize;

use crate::prosody::{Tone, ToneMode};

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
    /// when [`Options::all_drafts`](super::Options::all_drafts) asks for them).
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
