//! The writer's tests: constraints, drafts, titles and keywords, the batched
//! model, the sampler, on toy models and a toy lexicon.
use super::cursor::log_sum_exp;
use super::sample::{rank_key, top_k_in_place, unrank_key};
use super::*;
use crate::model::{Model, State as ModelState};
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
const PING_A: &str = "东风中同红空通宫翁"; // 一东
const PING_B: &str = "先天年前边烟千川仙"; // 一先
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
            // A level end of line 1 rhymes with the feet (首句入韵).
            let first_end = *lines[0].last().unwrap();
            if l.tone(first_end) == Some(Tone::Ping) {
                let g = r.rhyme_group.unwrap();
                assert!(l.rhyme_groups(first_end).contains(&g), "{}", p.text);
            }
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
            // and a title vector for the LSTM: two rows below read a title
            resets: if cell == Cell::Lstm {
                vec![BEGIN]
            } else {
                Vec::new()
            },
            title: cell == Cell::Lstm,
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
        let mut model = Model::new(cfg, &mut Rng::new(3));
        // the title map starts at zero: made random, so that it counts
        let mut off = 0;
        let sizes: Vec<(String, usize)> = (model.tensors().into_iter())
            .map(|(name, _, v)| (name, v.len()))
            .collect();
        for (name, len) in sizes {
            if name == "title.weight" {
                let mut rng = Rng::new(5);
                model.params[off..off + len]
                    .iter_mut()
                    .for_each(|p| *p = rng.normal());
            }
            off += len;
        }
        let lm = Lm::new(&model, &vocab);
        let v = lm.vocab_size();
        // Six rows (the few-row kernel), and the six again and again past
        // STEP_GEMM_MIN_ROWS, so the batched step runs GEMMs.
        let six: [&[u32]; 6] = [
            &[BEGIN, 7, comma, 4],
            &[BEGIN, 5, BEGIN, 6],
            &[BEGIN, comma, 10, 11],
            &[BEGIN, 4, 4, 4],
            &[BEGIN, 11, 7, BEGIN],
            &[BEGIN, 6, 9, 8],
        ];
        for n in [6, crate::engine::STEP_GEMM_MIN_ROWS + 2] {
            let seqs: Vec<&[u32]> = six.iter().copied().cycle().take(n).collect();
            if n > 6 {
                assert!(seqs.len() >= crate::engine::STEP_GEMM_MIN_ROWS);
            }
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
                // each row's state, taken back from the batch, steps on as the lone one does
                let (mut next_alone, mut next_row) = (vec![0f32; v], vec![0f32; v]);
                lm.step(&mut st.clone(), 4, &mut next_alone);
                lm.step(&mut rows[r].clone(), 4, &mut next_row);
                let after = (next_alone.iter().zip(&next_row))
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    after < 1e-5,
                    "{cell:?} {n} rows, row {r}: the state after differs by {after}"
                );
                let diff = alone
                    .iter()
                    .zip(&batched[r * v..(r + 1) * v])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    diff < 1e-5,
                    "{cell:?} {n} rows, row {r}: max difference {diff}"
                );
            }
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
                check_tones(&l, &lines).unwrap().tones_ok() && check_rhyme(&l, &lines).rhyme_ok(),
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
                p.rhyme_group.is_none() && p.lines.iter().all(|x| x.chars.iter().all(|c| !c.foot))
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

/// [`toy`]'s bigram, plus a term that depends on every token fed so far (its
/// state), so a row stepped with another row's state draws otherwise; it
/// counts the BEGINs it is fed.
struct History {
    bigram: Bigram,
    begins: std::sync::atomic::AtomicUsize,
}

impl CharModel for History {
    type State = Vec<u32>;
    fn vocab_size(&self) -> usize {
        self.bigram.vocab_size()
    }
    fn char_of(&self, id: u32) -> Option<char> {
        self.bigram.char_of(id)
    }
    fn initial_state(&self) -> Vec<u32> {
        Vec::new()
    }
    fn step(&self, fed: &mut Vec<u32>, t: u32, logits: &mut [f32]) {
        use std::sync::atomic::Ordering::Relaxed;
        self.begins.fetch_add((t == BEGIN) as usize, Relaxed);
        fed.push(t);
        let h = fed.iter().fold(17u64, |h, &x| {
            h.wrapping_mul(1_000_003).wrapping_add(x as u64 + 1)
        });
        self.bigram.step(&mut (), t, logits);
        for (i, l) in logits.iter_mut().enumerate() {
            *l += (h.wrapping_mul(2 * i as u64 + 1) >> 54) as f32 / 256.0;
        }
    }
}

#[test]
fn rows_fed_the_same_tokens_are_stepped_once_and_write_what_they_would_alone() {
    use std::sync::atomic::Ordering::Relaxed;
    let m = History {
        bigram: toy(),
        begins: Default::default(),
    };
    let l = lex();
    let w = Writer::new(&m, Some(&l));
    let o = Options {
        acrostic: "东先山白".into(),
        drafts: 4,
        ..opts(Form::Wujue)
    };
    let all = w.write_many(&o, 6, 3).unwrap();
    // 24 rows start from BEGIN (and again after a dead end): far fewer BEGINs are stepped
    let begins = m.begins.load(Relaxed);
    assert!(begins < 12, "{begins} BEGINs stepped for 24 rows");
    // each poem is what it is written alone or in a run of another size
    let base = Rng::new(3);
    for (k, p) in all.iter().enumerate() {
        assert_eq!(
            &w.write(&o, &mut base.fork(k as u64)).unwrap(),
            p,
            "poem {k}"
        );
        assert_eq!(&w.write_many(&o, k + 1, 3).unwrap()[k], p, "poem {k}");
    }
}
