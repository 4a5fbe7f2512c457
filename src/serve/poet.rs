//! What the web service asks of a poem writer ([`Poet`]), and the helper that
//! lays a written poem out as lines and characters for the page.
//!
//! The service holds one `Arc<dyn Poet>` for its whole life: the model and the
//! lexicon are loaded once, before the first request, and shared by every
//! request thread (writing only reads them). The trait keeps the HTTP layer
//! testable on its own, with a toy writer, and keeps this module free of
//! sampling code: that lives in `write.rs`; [`WriterPoet`] only translates
//! between the API's types and the writer's.
//!
//! Requests that arrive while a batch is being written wait for the next
//! one, and are then written together: each model step is one batched
//! product for every poem of every waiting request, so 64 clients at once
//! cost a few batched steps rather than 64 separate ones. The replies to a
//! batch go out together, so its clients' next requests come back as a
//! burst: the caller that starts a batch first lets the burst land (a few
//! half-milliseconds while the queue keeps growing), so that the first of
//! them does not leave with a batch of one while the rest queue behind it.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::api::{
    ApiError, CharOut, CheckOutcome, CheckResponse, CheckSpec, CheckedOut, LineOut, PoemOut,
    ToneMark, Tones, WriteSpec,
};
use crate::prosody::check;
use crate::prosody::cilin::Cilin;
use crate::prosody::tunes::Cipu;
use crate::prosody::{Lexicon, Tone, ToneMode};
use crate::write::{CharModel, Options, Poem, Request, WriteError, Writer, BATCH};

/// A shared, read-only poem writer.
pub trait Poet: Send + Sync + 'static {
    /// One line about the model, for `/healthz` (cell, size, corpus, training step).
    fn describe(&self) -> String;

    /// Writes `spec.count` poems. Runs on a blocking thread; should give up
    /// with [`ApiError::unavailable`] once `deadline` has passed (checking
    /// before starting is enough: ten poems take milliseconds). Bad input that
    /// only the writer can see (an unknown character) is an
    /// [`ApiError::invalid`].
    fn write(&self, spec: &WriteSpec, deadline: Instant) -> Result<Vec<PoemOut>, ApiError>;

    /// Checks poems' 格律 and, when asked, suggests mending characters.
    /// A writer without a lexicon cannot: the default says so.
    fn check(&self, _spec: &CheckSpec) -> Result<CheckResponse, ApiError> {
        Err(ApiError {
            status: 501,
            message: "this server cannot check poems (it has no tone lexicon)".into(),
        })
    }

    /// The ci tunes offered on the page, most common first (none by default).
    fn tunes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The real writer: any [`CharModel`] (the trained network) with the tone
/// lexicon, behind [`Writer`]'s per-token tables, which are built once here.
pub struct WriterPoet<M: CharModel + Send + Sync + 'static> {
    writer: Writer<'static, M>,
    about: String,
    /// The 词谱 that `form: <tune name>` is looked up in.
    cipu: Cipu,
    queue: Mutex<Queue>,
    /// Signalled when a batch is finished.
    finished: Condvar,
}

/// Requests between the callers and the batch being written.
#[derive(Default)]
struct Queue {
    /// Requests waiting for the next batch: id, request, deadline.
    waiting: Vec<(u64, Request, Instant)>,
    /// Results of finished requests, by id, until their callers take them.
    done: HashMap<u64, Result<Vec<Poem>, ApiError>>,
    /// Whether some caller is writing a batch now.
    busy: bool,
    next_id: u64,
}

/// The most common tunes the page lists.
pub const PAGE_TUNES: usize = 20;

/// While requests keep arriving this often, a new batch waits for them…
const GATHER_STEP: Duration = Duration::from_micros(500);
/// …but no longer than this.
const GATHER_MAX: Duration = Duration::from_millis(4);

impl<M: CharModel + Send + Sync + 'static> WriterPoet<M> {
    /// Takes the model and lexicon for the rest of the process. The writer
    /// borrows both; since they must live as long as the server does, they
    /// are leaked once (a few MB) rather than kept in a self-referential struct.
    pub fn new(model: M, lexicon: Option<Lexicon>, about: impl Into<String>) -> WriterPoet<M> {
        let model: &'static M = Box::leak(Box::new(model));
        let lexicon: Option<&'static Lexicon> = lexicon.map(|l| &*Box::leak(Box::new(l)));
        WriterPoet {
            writer: Writer::new(model, lexicon),
            about: about.into(),
            cipu: Cipu::default(),
            queue: Mutex::new(Queue::default()),
            finished: Condvar::new(),
        }
    }

    /// Offers the tunes of `cipu` (`form` may then name one), rhymed by `cilin`.
    pub fn with_tunes(mut self, cipu: Cipu, cilin: &Cilin) -> WriterPoet<M> {
        self.cipu = cipu;
        self.writer = self.writer.with_cilin(cilin);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The lock is never held while writing, so a poisoned queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes everything waiting (up to [`BATCH`] poems, and at least one
    /// request) as one batch, with the queue unlocked meanwhile.
    fn write_waiting<'q>(&'q self, mut q: MutexGuard<'q, Queue>) -> MutexGuard<'q, Queue> {
        q.busy = true;
        let start = Instant::now();
        loop {
            let (seen, poems) = (
                q.waiting.len(),
                q.waiting.iter().map(|w| w.1.count).sum::<usize>(),
            );
            if poems >= BATCH || start.elapsed() >= GATHER_MAX {
                break;
            }
            drop(q);
            std::thread::sleep(GATHER_STEP);
            q = self.lock();
            if q.waiting.len() == seen {
                break;
            }
        }
        let mut take = 0;
        let mut poems = 0;
        while take < q.waiting.len() && (take == 0 || poems + q.waiting[take].1.count <= BATCH) {
            poems += q.waiting[take].1.count;
            take += 1;
        }
        let batch: Vec<(u64, Request, Instant)> = q.waiting.drain(..take).collect();
        drop(q);
        let now = Instant::now();
        let (late, live): (Vec<_>, Vec<_>) = batch.into_iter().partition(|b| now > b.2);
        let reqs: Vec<Request> = live.iter().map(|b| b.1.clone()).collect();
        let results = catch_unwind(AssertUnwindSafe(|| self.writer.write_requests(&reqs)));
        let mut q = self.lock();
        q.busy = false;
        for (id, ..) in late {
            let e = ApiError::unavailable("ran out of time before writing (try again)");
            q.done.insert(id, Err(e));
        }
        match results {
            Ok(results) => {
                for ((id, ..), r) in live.into_iter().zip(results) {
                    q.done.insert(id, r.map_err(web_error));
                }
            }
            Err(_) => {
                for (id, ..) in live {
                    let e = ApiError::internal("the writer failed on this request (a bug: please report it with the request)");
                    q.done.insert(id, Err(e));
                }
            }
        }
        self.finished.notify_all();
        q
    }
}

impl<M: CharModel + Send + Sync + 'static> Poet for WriterPoet<M>
where
    Writer<'static, M>: Send + Sync,
{
    fn describe(&self) -> String {
        self.about.clone()
    }

    fn check(&self, spec: &CheckSpec) -> Result<CheckResponse, ApiError> {
        let lex = self.writer.lexicon().ok_or_else(|| ApiError {
            status: 501,
            message: "this server cannot check poems (it has no tone lexicon)".into(),
        })?;
        let poems: Vec<CheckOutcome> = spec
            .poems
            .iter()
            .map(|text| (text, check::with_other_script(lex, text)))
            .map(
                |(text, twin)| match check::check(twin.as_ref().unwrap_or(lex), text, spec.form) {
                    Ok(c) => {
                        let suggestions = match spec.suggest {
                            true => self.writer.suggest(lex, &c, 5, &|ch| ch),
                            false => Vec::new(),
                        };
                        CheckOutcome::Checked(Box::new(CheckedOut {
                            checked: c,
                            suggestions,
                        }))
                    }
                    Err(e) => CheckOutcome::Error {
                        error: e.to_string(),
                    },
                },
            )
            .collect();
        let ok = poems
            .iter()
            .all(|p| matches!(p, CheckOutcome::Checked(c) if c.checked.ok));
        Ok(CheckResponse { poems, ok })
    }

    fn tunes(&self) -> Vec<String> {
        self.cipu
            .tunes
            .iter()
            .take(PAGE_TUNES)
            .map(|t| t.name.clone())
            .collect()
    }

    fn write(&self, spec: &WriteSpec, deadline: Instant) -> Result<Vec<PoemOut>, ApiError> {
        if Instant::now() > deadline {
            return Err(ApiError::unavailable(
                "ran out of time before writing (try again)",
            ));
        }
        // As `shiren write --seed` does: poem k from its own stream forked from
        // the seed, so the page, the API and the command line agree.
        let mut opts = options(spec);
        if let Some(name) = &spec.tune {
            let (_, form) = self
                .cipu
                .form(name, 1)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
            opts.tune = Some(form.clone());
        }
        let req = Request {
            opts,
            count: spec.count,
            seed: spec.seed,
        };
        let mut q = self.lock();
        let id = q.next_id;
        q.next_id += 1;
        q.waiting.push((id, req, deadline));
        // Whoever finds no batch running writes the next one, for everyone waiting.
        loop {
            if let Some(r) = q.done.remove(&id) {
                return r.map(|poems| poems.into_iter().map(poem_out).collect());
            }
            q = if q.busy {
                self.finished
                    .wait(q)
                    .unwrap_or_else(PoisonError::into_inner)
            } else {
                self.write_waiting(q)
            };
        }
    }
}

/// The writer's options for a checked request.
pub fn options(spec: &WriteSpec) -> Options {
    Options {
        begin: spec.begin.clone(),
        acrostic: spec.acrostic.clone(),
        template: spec.template.clone(),
        title: spec.title.clone(),
        keywords: spec.keywords.clone(),
        drafts: spec.best_of,
        form: spec.form,
        tune: None,
        temperature: spec.temperature,
        top_k: spec.top_k,
        top_p: spec.top_p,
        max_len: spec.max_len,
        rhyme: spec.rhyme,
        tones: match spec.tones {
            Tones::Off => ToneMode::Off,
            Tones::Loose => ToneMode::Loose,
            Tones::Strict => ToneMode::Strict,
        },
        tag: None,
        ..Options::default()
    }
}

/// Every writer error is about what was asked (an unknown character, a begin
/// that does not fit the form), so it is a 422; its message names command-line
/// flags, which on the web are JSON fields.
fn web_error(e: WriteError) -> ApiError {
    let msg = e.to_string().replace("--", "");
    ApiError::invalid(msg)
}

fn tone_mark(t: Tone) -> ToneMark {
    match t {
        Tone::Ping => ToneMark::Ping,
        Tone::Ze => ToneMark::Ze,
        Tone::Both => ToneMark::Either,
    }
}

/// The writer's poem in the API's shape.
pub fn poem_out(p: Poem) -> PoemOut {
    PoemOut {
        text: p.text,
        lines: p
            .lines
            .into_iter()
            .map(|l| LineOut {
                text: l.text,
                punct: l.end,
                chars: l
                    .chars
                    .into_iter()
                    .map(|c| CharOut {
                        c: c.ch,
                        tone: c.tone.map(tone_mark),
                        rhyme: c.foot,
                    })
                    .collect(),
            })
            .collect(),
        rhyme_group: p.rhyme_group,
        notes: p.notes,
    }
}

/// Whether `c` closes a line in the writer's output.
pub fn is_line_end(c: char) -> bool {
    matches!(c, '，' | '。' | '！' | '？' | '；' | '、' | '\n')
}

/// Splits a poem's text into lines (each keeping its closing punctuation
/// apart) and marks each character with `tone_of` and each rhyme foot: the
/// last character of every line index for which `is_foot` holds.
pub fn lay_out(
    text: &str,
    tone_of: impl Fn(char) -> Option<ToneMark>,
    is_foot: impl Fn(usize) -> bool,
) -> PoemOut {
    let mut lines: Vec<LineOut> = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, punct: String, lines: &mut Vec<LineOut>| {
        if cur.is_empty() && punct.trim().is_empty() {
            return;
        }
        let i = lines.len();
        let n = cur.chars().count();
        let chars = cur
            .chars()
            .enumerate()
            .map(|(j, c)| CharOut {
                c,
                tone: tone_of(c),
                rhyme: j + 1 == n && is_foot(i),
            })
            .collect();
        lines.push(LineOut {
            text: std::mem::take(cur),
            punct: punct.trim().to_string(),
            chars,
        });
    };
    for c in text.chars() {
        if is_line_end(c) {
            flush(&mut cur, c.to_string(), &mut lines);
        } else if !c.is_whitespace() {
            cur.push(c);
        }
    }
    flush(&mut cur, String::new(), &mut lines);
    // Lines broken by a newline rather than punctuation (lyrics) keep their break.
    let mut text = String::new();
    for (i, l) in lines.iter().enumerate() {
        text.push_str(&l.text);
        text.push_str(&l.punct);
        if l.punct.is_empty() && i + 1 < lines.len() {
            text.push('\n');
        }
    }
    PoemOut {
        text,
        lines,
        rhyme_group: None,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::{parse_request, Limits};
    use std::time::Duration;

    use crate::write::testing::Uniform;

    const LEVEL: &str = "东风中同红空春秋";
    const OBLIQUE: &str = "白日尽入海欲里目上去夏冬";

    fn poet() -> WriterPoet<Uniform> {
        let chars = format!("{LEVEL}{OBLIQUE}，。").chars().collect();
        let lex = Lexicon::from_groups(&[("一东", Tone::Ping, LEVEL), ("仄", Tone::Ze, OBLIQUE)]);
        WriterPoet::new(Uniform(chars), Some(lex), "uniform")
    }

    fn ask(p: &WriterPoet<Uniform>, json: &str) -> Result<Vec<PoemOut>, ApiError> {
        let spec = parse_request(json.as_bytes())?.validate(&Limits::default(), 1)?;
        p.write(&spec, Instant::now() + Duration::from_secs(5))
    }

    #[test]
    fn concurrent_requests_batched_together_get_what_each_would_get_alone() {
        let p = poet();
        let req = |k: usize| match k % 4 {
            0 => format!(r#"{{"acrostic":"春夏秋冬","form":"wujue","seed":{k}}}"#),
            1 => format!(r#"{{"form":"qilv","tones":"strict","count":2,"seed":{k}}}"#),
            2 => format!(r#"{{"begin":"东风","form":"free","max_len":20,"seed":{k}}}"#),
            _ => format!(r#"{{"acrostic":"龘","seed":{k}}}"#), // unknown to the model
        };
        let alone: Vec<Result<Vec<String>, String>> = (0..24)
            .map(|k| {
                ask(&p, &req(k))
                    .map(|ps| ps.into_iter().map(|p| p.text).collect())
                    .map_err(|e| e.message)
            })
            .collect();
        let together: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..24)
                .map(|k| {
                    let (p, r) = (&p, req(k));
                    s.spawn(move || {
                        ask(p, &r)
                            .map(|ps| ps.into_iter().map(|p| p.text).collect())
                            .map_err(|e| e.message)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(together, alone);
        assert!(alone[3].as_ref().unwrap_err().contains('龘'));
        assert_eq!(alone[1].as_ref().unwrap().len(), 2);
        let q = p.lock();
        assert!(q.waiting.is_empty() && q.done.is_empty() && !q.busy);
    }

    #[test]
    fn writer_poet_writes_acrostics_with_marks() {
        let p = poet();
        let poems = ask(
            &p,
            r#"{"acrostic":"春夏秋冬","form":"wujue","count":2,"seed":3}"#,
        )
        .unwrap();
        assert_eq!(poems.len(), 2);
        for poem in &poems {
            let heads: String = poem.lines.iter().map(|l| l.chars[0].c).collect();
            assert_eq!(heads, "春夏秋冬");
            assert!(poem.lines.iter().all(|l| l.chars.len() == 5));
            let feet: Vec<usize> = (0..4).filter(|&i| poem.lines[i].chars[4].rhyme).collect();
            assert!(feet.contains(&1) && feet.contains(&3), "{poem:?}");
            for c in poem.lines.iter().flat_map(|l| &l.chars) {
                let want = if LEVEL.contains(c.c) {
                    ToneMark::Ping
                } else {
                    ToneMark::Ze
                };
                assert_eq!(c.tone, Some(want), "{}", c.c);
            }
        }
        let again = ask(
            &p,
            r#"{"acrostic":"春夏秋冬","form":"wujue","count":2,"seed":3}"#,
        )
        .unwrap();
        assert_eq!(again, poems);
    }

    #[test]
    fn writer_errors_become_422s_in_the_api_words() {
        let e = ask(&poet(), r#"{"acrostic":"春龘"}"#).unwrap_err();
        assert_eq!(e.status, 422);
        assert!(
            e.message.contains('龘') && !e.message.contains("--"),
            "{}",
            e.message
        );
        let spec = parse_request(b"{}")
            .unwrap()
            .validate(&Limits::default(), 1)
            .unwrap();
        let e = poet()
            .write(&spec, Instant::now() - Duration::from_millis(1))
            .unwrap_err();
        assert_eq!(e.status, 503, "{}", e.message);
    }

    #[test]
    fn lay_out_splits_lines_and_marks_feet() {
        let tone = |c: char| match c {
            '白' | '入' | '目' | '上' | '一' => Some(ToneMark::Ze),
            '层' => Some(ToneMark::Either),
            '？' => unreachable!("punctuation is never looked up"),
            _ => Some(ToneMark::Ping),
        };
        let p = lay_out(
            "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
            tone,
            |i| i % 2 == 1,
        );
        assert_eq!(p.lines.len(), 4);
        assert_eq!(p.lines[1].text, "黄河入海流");
        assert_eq!(p.lines[1].punct, "。");
        assert_eq!(p.text, "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。");
        let feet: Vec<char> = p
            .lines
            .iter()
            .flat_map(|l| &l.chars)
            .filter(|c| c.rhyme)
            .map(|c| c.c)
            .collect();
        assert_eq!(feet, ['流', '楼']);
        assert_eq!(p.lines[0].chars[0].tone, Some(ToneMark::Ze));
        assert_eq!(p.lines[3].chars[3].tone, Some(ToneMark::Either));
    }

    #[test]
    fn lay_out_keeps_an_unfinished_last_line_and_skips_blank_ones() {
        let p = lay_out("春风\n\n秋月", |_| None, |_| true);
        assert_eq!(p.lines.len(), 2);
        assert_eq!(p.lines[1].text, "秋月");
        assert_eq!(p.lines[1].punct, "");
        assert!(p.lines[1].chars[1].rhyme);
        assert_eq!(p.text, "春风\n秋月");
    }
}
