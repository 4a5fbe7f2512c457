//! The JSON the web service speaks: what `POST /api/write` accepts, how it is
//! checked, and what comes back. Pure data and validation; no HTTP, no model.
//!
//! A request is checked completely before any work is queued, so a bad one
//! costs nothing and gets one line saying what to change. Every number has a
//! range and every text a length bound ([`Limits`]); unknown fields are
//! errors, so a typo (`temprature`) is reported instead of silently ignored.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::corpus::Form;

/// Bounds on what one request may ask for and on the work the server takes on.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted, in bytes (a full request is ~300 bytes).
    pub max_body_bytes: usize,
    /// Most characters in `begin`.
    pub max_begin_chars: usize,
    /// Most characters in `acrostic` (one line each; 8 fills a 律诗).
    pub max_acrostic_chars: usize,
    /// Most characters in `template` (a 七律 with its punctuation is 64).
    pub max_template_chars: usize,
    /// Most drafts per poem (`best_of`): each costs a whole poem.
    pub max_best_of: usize,
    /// Most characters in the text of `POST /api/check` (a few poems).
    pub max_check_chars: usize,
    /// Most poems per request.
    pub max_count: usize,
    /// Longest free-form poem, in characters.
    pub max_len: usize,
    /// Requests being written at once (a batching writer puts them into one
    /// batch of model steps); the rest wait (within `timeout`).
    pub concurrent: usize,
    /// Time limit for one request, waiting included.
    pub timeout: Duration,
    /// Time a client has to send a request's headers, and then its body: a
    /// connection that sends half a header, or nothing, is closed after it.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Open connections at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Host names the server answers to besides its own address (and
    /// `localhost` on loopback); `*` allows any. Other Host headers get a 421,
    /// so a page on another site cannot reach the server by DNS rebinding.
    pub allow_hosts: Vec<String>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 4096,
            max_begin_chars: 16,
            max_acrostic_chars: 16,
            max_template_chars: 80,
            max_best_of: 8,
            max_check_chars: 400,
            max_count: 10,
            max_len: 200,
            concurrent: 64,
            timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 256,
            allow_hosts: Vec::new(),
        }
    }
}

/// The form a request names, by any of its spellings (see [`Form`]'s `FromStr`).
fn parse_form(s: &str) -> Result<Form, ApiError> {
    s.parse::<Form>().map_err(ApiError::invalid)
}

/// How strictly the 近体诗 tone rules are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tones {
    Off,
    Loose,
    Strict,
}

impl FromStr for Tones {
    type Err = ApiError;
    fn from_str(s: &str) -> Result<Tones, ApiError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Tones::Off),
            "loose" => Ok(Tones::Loose),
            "strict" => Ok(Tones::Strict),
            other => Err(ApiError::invalid(format!(
                "tones `{}` is unknown (use off, loose or strict)",
                clip(other, 20)
            ))),
        }
    }
}

/// `POST /api/write` body, as typed by the client. Every field may be left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteRequest {
    /// The poem starts with these characters.
    pub begin: Option<String>,
    /// 藏头诗: line i starts with character i.
    pub acrostic: Option<String>,
    /// Characters kept where they stand, □ for a free position: `明月□□□，□□□□乡。…`.
    pub template: Option<String>,
    /// What the poem is about: a title read before it (送别).
    pub title: Option<String>,
    /// Words that must appear: `"明月,江"` or `["明月", "江"]` (1 to 4, of 1 or 2 characters).
    pub keywords: Option<Vec<String>>,
    /// Drafts per poem, the likeliest kept [default: `shiren write`'s].
    pub best_of: Option<u64>,
    /// wujue | qijue | wulv | qilv | free (or 五绝 …), or a ci tune's name (浣溪沙) [default: wujue].
    pub form: Option<String>,
    /// Poems to write [default: 1].
    pub count: Option<u64>,
    /// Softmax temperature; 0 = always the likeliest character [default: `shiren write`'s].
    pub temperature: Option<f64>,
    /// Keep only the k likeliest characters; 0 = off [default: `shiren write`'s].
    pub top_k: Option<u64>,
    /// Nucleus sampling mass; 1 = off [default: `shiren write`'s].
    pub top_p: Option<f64>,
    /// Same seed, same poems [default: chosen by the server and returned].
    pub seed: Option<u64>,
    /// Rhyme lines 2, 4 (, 6, 8) in one 平水韵 group [default: on for fixed forms].
    pub rhyme: Option<bool>,
    /// off | loose | strict [default: loose].
    pub tones: Option<String>,
    /// Longest free-form poem, in characters [default and maximum: the server's limit].
    pub max_len: Option<u64>,
}

/// A request after checking: every value in range, every text within bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSpec {
    pub begin: String,
    pub acrostic: String,
    pub template: String,
    pub title: String,
    pub keywords: Vec<String>,
    pub best_of: usize,
    pub form: Form,
    /// A ci tune asked for by name in `form` (then `form` is free); the writer looks it up.
    pub tune: Option<String>,
    pub count: usize,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub seed: u64,
    pub rhyme: bool,
    pub tones: Tones,
    pub max_len: usize,
}

/// Largest seed the server hands out, so that a browser's f64 numbers carry it exactly.
pub const MAX_SAFE_SEED: u64 = (1 << 53) - 1;

impl WriteRequest {
    /// Checks every field against `limits`; `fresh_seed` is used when no seed was given.
    pub fn validate(&self, limits: &Limits, fresh_seed: u64) -> Result<WriteSpec, ApiError> {
        let (form, tune) = match &self.form {
            Some(f) => match parse_form(f) {
                Ok(id) => (id, None),
                // Han characters that name no shi form: a ci tune, which the writer checks.
                Err(_) if is_tune_name(f) => (Form::Free, Some(f.trim().to_string())),
                Err(e) => return Err(e),
            },
            None => (Form::Wujue, None),
        };
        let begin = text_field("begin", self.begin.as_deref(), limits.max_begin_chars)?;
        let acrostic = text_field(
            "acrostic",
            self.acrostic.as_deref(),
            limits.max_acrostic_chars,
        )?;
        // The CLI's rules: an acrostic is not empty, and fits a form asked for.
        if self.acrostic.is_some() {
            let asked = self
                .form
                .as_ref()
                .and(form.shape())
                .map(|(lines, _)| (form.name_zh(), lines));
            crate::limits::check_acrostic("acrostic", &acrostic, asked)
                .map_err(ApiError::invalid)?;
        }
        if self.begin.is_some() && begin.is_empty() {
            return Err(ApiError::invalid(
                "begin is empty (give at least one character, or leave it out)",
            ));
        }
        let template = text_field(
            "template",
            self.template.as_deref(),
            limits.max_template_chars,
        )?;
        let title = text_field("title", self.title.as_deref(), crate::title::MAX_TITLE)?;
        let keywords = match &self.keywords {
            None => Vec::new(),
            Some(list) => {
                let words = crate::write::keywords::parse(list)
                    .map_err(|e| ApiError::invalid(e.to_string()))?;
                if words.is_empty() {
                    return Err(ApiError::invalid(
                        "keywords is empty (give 1 to 4 words, or leave it out)",
                    ));
                }
                words
            }
        };
        let best_of = in_range_u(
            "best_of",
            self.best_of,
            crate::write::DEFAULT_DRAFTS as u64,
            1,
            limits.max_best_of as u64,
        )? as usize;
        let given = !begin.is_empty() || !acrostic.is_empty();
        if !template.is_empty() && given {
            return Err(ApiError::invalid(
                "template cannot be combined with begin or acrostic (write those characters into the template)",
            ));
        }
        if tune.is_some() && !acrostic.is_empty() {
            return Err(ApiError::invalid(
                "acrostic cannot be combined with a ci tune (the tune fixes the line count)",
            ));
        }
        if !begin.is_empty() && !acrostic.is_empty() {
            return Err(ApiError::invalid(
                "begin and acrostic cannot both be given (an acrostic fixes each line's first character)",
            ));
        }
        let count = in_range_u("count", self.count, 1, 1, limits.max_count as u64)? as usize;
        // A larger seed comes back as a number JavaScript cannot hold exactly.
        let seed = in_range_u(
            "seed",
            self.seed,
            fresh_seed & MAX_SAFE_SEED,
            0,
            MAX_SAFE_SEED,
        )?;
        // the defaults are `shiren write`'s
        let d = crate::write::Options::default();
        let temperature = in_range_f(
            "temperature",
            self.temperature,
            d.temperature as f64,
            0.0,
            3.0,
        )? as f32;
        let top_k = in_range_u("top_k", self.top_k, d.top_k as u64, 0, 100_000)? as usize;
        let top_p = in_range_f("top_p", self.top_p, d.top_p as f64, 0.01, 1.0)? as f32;
        let max_len = in_range_u(
            "max_len",
            self.max_len,
            limits.max_len as u64,
            1,
            limits.max_len as u64,
        )? as usize;
        let tones = match &self.tones {
            Some(t) => t.parse::<Tones>()?,
            None => Tones::Loose,
        };
        let rhyme = self.rhyme.unwrap_or(form != Form::Free || tune.is_some());
        Ok(WriteSpec {
            begin,
            acrostic,
            template,
            title,
            keywords,
            best_of,
            form,
            tune,
            count,
            temperature,
            top_k,
            top_p,
            seed,
            rhyme,
            tones,
            max_len,
        })
    }
}

/// Whether `s` could name a ci tune: 2 to 12 Han characters (and ・ between aliases).
fn is_tune_name(s: &str) -> bool {
    let s = s.trim();
    let n = s.chars().count();
    (2..=12).contains(&n) && s.chars().all(|c| crate::prosody::is_han(c) || c == '・')
}

/// Trims a text field and bounds it; rejects control characters and inner whitespace
/// (a poem never contains a space, so one in the input is a mistake worth naming).
fn text_field(name: &str, value: Option<&str>, max: usize) -> Result<String, ApiError> {
    let s = value.unwrap_or("").trim();
    let n = s.chars().count();
    if n > max {
        return Err(ApiError::invalid(format!(
            "{name} has {n} characters, more than the limit of {max}"
        )));
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(format!(
            "{name} contains {} (give Chinese characters only, without spaces)",
            describe_char(c)
        )));
    }
    Ok(s.to_string())
}

fn in_range_u(name: &str, v: Option<u64>, default: u64, lo: u64, hi: u64) -> Result<u64, ApiError> {
    let v = v.unwrap_or(default);
    if v < lo || v > hi {
        return Err(ApiError::invalid(format!(
            "{name} {v} is out of range (use {lo} to {hi})"
        )));
    }
    Ok(v)
}

fn in_range_f(name: &str, v: Option<f64>, default: f64, lo: f64, hi: f64) -> Result<f64, ApiError> {
    let v = v.unwrap_or(default);
    if !(v.is_finite() && v >= lo && v <= hi) {
        return Err(ApiError::invalid(format!(
            "{name} {v} is out of range (use {lo} to {hi})"
        )));
    }
    Ok(v)
}

/// A character as an error message shows it: printable ones quoted, others by code point.
pub fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("`{c}` (U+{:04X})", c as u32)
    }
}

/// The first `n` characters of `s`, so an error never echoes a huge input back.
pub fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().nth(n).is_some() {
        out.push('…');
    }
    out
}

/// The tone of one character as the page marks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToneMark {
    #[serde(rename = "平")]
    Ping,
    #[serde(rename = "仄")]
    Ze,
    /// The character has both a level and an oblique reading.
    #[serde(rename = "either")]
    Either,
}

/// One character of a written poem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharOut {
    pub c: char,
    /// `null` when the lexicon does not know the character.
    pub tone: Option<ToneMark>,
    /// True for the last character of a rhyming line.
    pub rhyme: bool,
}

/// One line: its characters and the punctuation that closes it (，or 。, or nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineOut {
    pub text: String,
    pub punct: String,
    pub chars: Vec<CharOut>,
}

/// One poem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoemOut {
    /// The whole poem with its punctuation, on one line.
    pub text: String,
    pub lines: Vec<LineOut>,
    /// Name of the 平水韵 group the feet rhyme in, when rhyme was applied.
    pub rhyme_group: Option<String>,
    /// What the writer had to relax to finish this poem (another rhyme group, looser tones).
    pub notes: Vec<String>,
}

/// `POST /api/write` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteResponse {
    pub poems: Vec<PoemOut>,
    pub form: Form,
    /// The seed used: send it back to get the same poems.
    pub seed: u64,
    pub elapsed_ms: f64,
}

/// One entry of `GET /api/forms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormInfo {
    pub id: Form,
    pub name: String,
    pub lines: Option<usize>,
    pub chars: Option<usize>,
}

/// `GET /api/forms` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormsResponse {
    pub forms: Vec<FormInfo>,
    pub default: Form,
}

impl FormsResponse {
    pub fn all() -> FormsResponse {
        FormsResponse {
            forms: Form::ALL
                .into_iter()
                .map(|f| FormInfo {
                    id: f,
                    name: f.full_name_zh().to_string(),
                    lines: f.shape().map(|s| s.0),
                    chars: f.shape().map(|s| s.1),
                })
                .collect(),
            default: Form::Wujue,
        }
    }
}

/// What went wrong, as an HTTP status and one line for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    /// 400: the body is not a request at all (not JSON, wrong types, unknown fields).
    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }
    /// 422: a well-formed request asking for something impossible.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 422,
            message: message.into(),
        }
    }
    /// 503: the server is too busy or ran out of time; try again.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 503,
            message: message.into(),
        }
    }
    /// 500: a fault of the server, not of the request.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            message: message.into(),
        }
    }
}

/// The body of every error response: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /api/check` body: `{"text": "床前明月光，…", "form": "wujue", "suggest": true}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckRequest {
    /// One poem, or several separated by blank lines.
    pub text: String,
    /// wujue | qijue | wulv | qilv [default: detected from the shape].
    pub form: Option<String>,
    /// Ask the model for 5 characters that mend each broken position [default: false].
    pub suggest: bool,
}

/// A checked `POST /api/check` request.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub poems: Vec<String>,
    pub form: Option<Form>,
    pub suggest: bool,
}

/// Most poems in one `POST /api/check`.
pub const MAX_CHECK_POEMS: usize = 10;

impl CheckRequest {
    pub fn validate(&self, limits: &Limits) -> Result<CheckSpec, ApiError> {
        let n = self.text.chars().count();
        if self.text.trim().is_empty() {
            return Err(ApiError::invalid(
                "text is empty (give a poem, lines ended by ，or 。)",
            ));
        }
        if n > limits.max_check_chars {
            return Err(ApiError::invalid(format!(
                "text has {n} characters, more than the limit of {}",
                limits.max_check_chars
            )));
        }
        if let Some(c) = self
            .text
            .chars()
            .find(|&c| c.is_control() && c != '\n' && c != '\r')
        {
            return Err(ApiError::invalid(format!(
                "text contains {} (give the poem's characters and punctuation)",
                describe_char(c)
            )));
        }
        let poems = crate::prosody::check::split_poems(&self.text);
        if poems.len() > MAX_CHECK_POEMS {
            return Err(ApiError::invalid(format!(
                "text holds {} poems, more than the limit of {MAX_CHECK_POEMS}",
                poems.len()
            )));
        }
        let form = match self.form.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => match parse_form(f)? {
                Form::Free => {
                    return Err(ApiError::invalid(
                        "form `free` has no rules to check (use wujue, qijue, wulv or qilv, or leave it out)",
                    ))
                }
                regulated => Some(regulated),
            },
        };
        Ok(CheckSpec {
            poems,
            form,
            suggest: self.suggest,
        })
    }
}

/// One poem checked, with suggestions when asked.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedOut {
    #[serde(flatten)]
    pub checked: crate::prosody::check::Checked,
    pub suggestions: Vec<crate::write::suggest::Suggestion>,
}

/// A poem that could not be checked at all, in place of its result.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CheckOutcome {
    Checked(Box<CheckedOut>),
    Error { error: String },
}

/// `POST /api/check` answer: one outcome per poem, in order.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResponse {
    pub poems: Vec<CheckOutcome>,
    /// Every poem keeps every rule.
    pub ok: bool,
}

/// Parses `POST /api/check`'s body.
pub fn parse_check(body: &[u8]) -> Result<CheckRequest, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("malformed request: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::malformed(format!(
            "malformed request: expected a JSON object like {{\"text\":\"床前明月光，…\"}}, found {}",
            kind(&value)
        )));
    };
    let mut r = CheckRequest::default();
    for (key, v) in &map {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "text" => r.text = string(key, v)?,
            "form" => r.form = Some(string(key, v)?),
            "suggest" => r.suggest = v.as_bool().ok_or_else(|| wrong(key, "true or false", v))?,
            other => {
                return Err(ApiError::malformed(format!(
                    "malformed request: unknown field `{}` (the fields are text, form, suggest)",
                    clip(other, 30)
                )))
            }
        }
    }
    Ok(r)
}

/// The fields `POST /api/write` knows, for the message about an unknown one.
const FIELDS: &str =
    "begin, acrostic, template, title, keywords, form, count, best_of, temperature, top_k, top_p, seed, rhyme, tones, max_len";

/// Parses a request body field by field, so a wrong type names its field
/// (serde's derived message gives only a column).
pub fn parse_request(body: &[u8]) -> Result<WriteRequest, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        // An empty body means "all defaults", so `curl -X POST` writes a poem.
        return Ok(WriteRequest::default());
    }
    let value: Fields = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("malformed request: {e}")))?;
    let map = match value {
        Fields::Object(map) => map,
        Fields::Other(value) => {
            return Err(ApiError::malformed(format!(
                "malformed request: expected a JSON object like {{\"acrostic\":\"春夏秋冬\"}}, found {}",
                kind(&value)
            )))
        }
    };
    // serde_json keeps the last of two equal keys; a proxy or another parser
    // may keep the first, so the two would not agree on what was asked.
    let mut seen = std::collections::HashSet::new();
    if let Some((key, _)) = map.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        return Err(ApiError::malformed(format!(
            "malformed request: field `{}` is given twice",
            clip(key, 30)
        )));
    }
    let mut r = WriteRequest::default();
    for (key, v) in &map {
        if v.is_null() {
            continue; // null means "the default", as a missing field does
        }
        match key.as_str() {
            "begin" => r.begin = Some(string(key, v)?),
            "acrostic" => r.acrostic = Some(string(key, v)?),
            "template" => r.template = Some(string(key, v)?),
            "title" => r.title = Some(string(key, v)?),
            "keywords" => {
                r.keywords = Some(match v {
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| wrong(key, "a string or an array of strings", v))
                        })
                        .collect::<Result<_, _>>()?,
                    _ => vec![string(key, v)?],
                })
            }
            "best_of" => r.best_of = Some(whole(key, v)?),
            "form" => r.form = Some(string(key, v)?),
            "tones" => r.tones = Some(string(key, v)?),
            "count" => r.count = Some(whole(key, v)?),
            "top_k" => r.top_k = Some(whole(key, v)?),
            "seed" => r.seed = Some(whole(key, v)?),
            "max_len" => r.max_len = Some(whole(key, v)?),
            "temperature" => r.temperature = Some(number(key, v)?),
            "top_p" => r.top_p = Some(number(key, v)?),
            "rhyme" => r.rhyme = Some(v.as_bool().ok_or_else(|| wrong(key, "true or false", v))?),
            other => {
                return Err(ApiError::malformed(format!(
                    "malformed request: unknown field `{}` (the fields are {FIELDS})",
                    clip(other, 30)
                )))
            }
        }
    }
    Ok(r)
}

/// A request body: an object's fields in order, duplicates kept, or any other JSON value.
enum Fields {
    Object(Vec<(String, serde_json::Value)>),
    Other(serde_json::Value),
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, serde_json::Value>()? {
                    out.push(kv);
                }
                Ok(Fields::Object(out))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element::<serde_json::Value>()? {
                    out.push(v);
                }
                Ok(Fields::Other(serde_json::Value::Array(out)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Fields, E> {
                Ok(Fields::Other(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Fields, E> {
                Ok(Fields::Other(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Fields, E> {
                Ok(Fields::Other(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Fields, E> {
                Ok(Fields::Other(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Fields, E> {
                Ok(Fields::Other(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Fields, E> {
                Ok(Fields::Other(serde_json::Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

fn string(key: &str, v: &serde_json::Value) -> Result<String, ApiError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| wrong(key, "a string", v))
}

fn whole(key: &str, v: &serde_json::Value) -> Result<u64, ApiError> {
    v.as_u64()
        .ok_or_else(|| wrong(key, "a whole number, 0 or more", v))
}

fn number(key: &str, v: &serde_json::Value) -> Result<f64, ApiError> {
    v.as_f64().ok_or_else(|| wrong(key, "a number", v))
}

fn wrong(key: &str, want: &str, v: &serde_json::Value) -> ApiError {
    ApiError::malformed(format!(
        "malformed request: {key} must be {want}, found {}",
        clip(&v.to_string(), 30)
    ))
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<WriteSpec, ApiError> {
        parse_request(json.as_bytes())?.validate(&Limits::default(), 7)
    }

    #[test]
    fn defaults_fill_an_empty_request() {
        let s = spec("").unwrap();
        assert_eq!(s.form, Form::Wujue);
        assert_eq!(s.count, 1);
        assert_eq!(s.seed, 7);
        assert!(s.rhyme);
        assert_eq!(s.tones, Tones::Loose);
        assert!(!spec(r#"{"form":"free"}"#).unwrap().rhyme);
    }

    #[test]
    fn title_keywords_and_best_of_are_taken_and_checked() {
        let s = spec(r#"{"title":"送别","keywords":"明月,江","best_of":2}"#).unwrap();
        assert_eq!(
            (s.title.as_str(), s.keywords.clone(), s.best_of),
            ("送别", vec!["明月".to_string(), "江".to_string()], 2)
        );
        let s = spec(r#"{"keywords":["明月","江"]}"#).unwrap();
        assert_eq!(s.keywords, ["明月", "江"]);
        assert_eq!(s.best_of, crate::write::DEFAULT_DRAFTS);
        for (json, says) in [
            (r#"{"keywords":"一,二,三,四,五"}"#, "at most 4"),
            (r#"{"keywords":"明月光"}"#, "at most 2"),
            (r#"{"keywords":""}"#, "keywords"),
            (r#"{"keywords":[1]}"#, "keywords"),
            (r#"{"title":"送 别"}"#, "title"),
            (r#"{"title":"一二三四五六七八九十一二三四五六七"}"#, "title"),
            (r#"{"best_of":0}"#, "best_of"),
            (r#"{"best_of":99}"#, "best_of"),
        ] {
            let e = spec(json).unwrap_err();
            assert!(e.message.contains(says), "{json}: {}", e.message);
            assert!(e.status == 422 || e.status == 400, "{json}: {}", e.status);
        }
    }

    #[test]
    fn forms_parse_by_id_and_chinese_name() {
        assert_eq!(spec(r#"{"form":"QIJUE"}"#).unwrap().form, Form::Qijue);
        assert_eq!(spec(r#"{"form":"七律"}"#).unwrap().form, Form::Qilv);
        assert_eq!(spec(r#"{"form":"五言律诗"}"#).unwrap().form, Form::Wulv);
        let e = spec(r#"{"form":"sonnet"}"#).unwrap_err();
        assert_eq!(e.status, 422);
        assert!(e.message.contains("`sonnet`"), "{}", e.message);
        // Han that names no form is a ci tune, rhymed by default; the writer looks it up.
        let s = spec(r#"{"form":"浣溪沙"}"#).unwrap();
        assert_eq!(
            (s.form, s.tune.as_deref(), s.rhyme),
            (Form::Free, Some("浣溪沙"), true)
        );
        assert!(spec(r#"{"form":"浣溪沙","acrostic":"春夏"}"#).is_err());
        assert!(spec(r#"{"form":"浣<b>"}"#).is_err());
    }

    #[test]
    fn out_of_range_values_name_the_field_and_range() {
        for (json, field) in [
            (r#"{"count":0}"#, "count"),
            (r#"{"count":11}"#, "count"),
            (r#"{"temperature":-0.5}"#, "temperature"),
            (r#"{"temperature":9.5}"#, "temperature"),
            (r#"{"top_p":1.5}"#, "top_p"),
            (r#"{"top_k":1000000}"#, "top_k"),
            (r#"{"max_len":100000}"#, "max_len"),
            (r#"{"tones":"very"}"#, "tones"),
        ] {
            let e = spec(json).unwrap_err();
            assert_eq!(e.status, 422, "{json}");
            assert!(e.message.starts_with(field), "{json}: {}", e.message);
        }
    }

    #[test]
    fn malformed_bodies_are_400() {
        for (json, needle) in [
            ("{", "EOF"),
            ("[1,2]", "found an array"),
            (r#"{"count":"3"}"#, "count must be a whole number"),
            (r#"{"temprature":1}"#, "unknown field `temprature`"),
            (r#"{"count":-1}"#, "found -1"),
            (r#"{"rhyme":"yes"}"#, "rhyme must be true or false"),
            ("\u{0}", "malformed"),
        ] {
            let e = spec(json).unwrap_err();
            assert_eq!(e.status, 400, "{json}");
            assert!(
                e.message.contains(needle) && !e.message.contains('\n'),
                "{json}: {}",
                e.message
            );
        }
        assert_eq!(
            parse_request(br#"{"count":null}"#).unwrap(),
            WriteRequest::default()
        );
    }

    #[test]
    fn texts_are_bounded_and_checked() {
        let long = "春".repeat(17);
        let e = spec(&format!(r#"{{"acrostic":"{long}"}}"#)).unwrap_err();
        assert!(e.message.contains("17 characters"), "{}", e.message);
        let e = spec(r#"{"begin":"春 风"}"#).unwrap_err();
        assert!(e.message.contains("U+0020"), "{}", e.message);
        let e = spec(r#"{"begin":"春风","acrostic":"春夏"}"#).unwrap_err();
        assert!(e.message.contains("both"), "{}", e.message);
        assert_eq!(spec(r#"{"begin":" 明月 "}"#).unwrap().begin, "明月");
    }

    #[test]
    fn seeds_pass_through_and_fresh_ones_fit_a_double() {
        // a larger one would come back as a number JavaScript cannot hold
        assert_eq!(
            spec(r#"{"seed":9007199254740991}"#).unwrap().seed,
            MAX_SAFE_SEED
        );
        let e = spec(r#"{"seed":18446744073709551615}"#).unwrap_err();
        assert!(
            e.message.contains("use 0 to 9007199254740991"),
            "{}",
            e.message
        );
        let s = parse_request(b"{}")
            .unwrap()
            .validate(&Limits::default(), u64::MAX)
            .unwrap();
        assert_eq!(s.seed, MAX_SAFE_SEED);
    }

    #[test]
    fn tone_marks_serialise_as_the_page_expects() {
        let c = CharOut {
            c: '春',
            tone: Some(ToneMark::Ping),
            rhyme: true,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"c":"春","tone":"平","rhyme":true}"#
        );
        assert_eq!(
            serde_json::to_string(&ToneMark::Either).unwrap(),
            r#""either""#
        );
        assert_eq!(clip("春夏秋冬", 2), "春夏…");
    }
}
