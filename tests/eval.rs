//! `eval::evaluate` end to end on a tiny model trained here for a few steps,
//! a toy corpus of the four forms and a toy lexicon: the card has every part
//! and row, the model's perplexity is the one its step-by-step probabilities
//! give, forced forms come out in shape, and `--rhyme --tones strict` samples
//! pass the checks that score them.

use shiren::batch::Batcher;
use shiren::corpus::{part_of, Form, Part};
use shiren::eval::{evaluate, EvalSettings, Kind, Split};
use shiren::model::{Model, ModelConfig};
use shiren::optim::Adam;
use shiren::prosody::{Lexicon, Tone};
use shiren::rng::Rng;
use shiren::vocab::Vocab;

const PING_A: &str = "东风中同红空"; // 上平一东
const PING_B: &str = "先天年前边烟"; // 下平一先
const ZE: &str = "白日尽入海欲里目上一落去"; // oblique

fn lexicon() -> Lexicon {
    Lexicon::from_groups(&[
        ("上平一东", Tone::Ping, PING_A),
        ("下平一先", Tone::Ping, PING_B),
        ("仄", Tone::Ze, ZE),
    ])
}

/// Random poems of the four shapes over the lexicon's characters.
fn corpus(n: usize) -> Vec<String> {
    let chars: Vec<char> = [PING_A, PING_B, ZE].concat().chars().collect();
    let mut rng = Rng::new(5);
    (0..n)
        .map(|i| {
            let (lines, width) = Form::REGULATED[i % 4].shape().unwrap();
            let mut s = String::new();
            for l in 0..lines {
                for _ in 0..width {
                    s.push(chars[rng.below(chars.len())]);
                }
                s.push(if l % 2 == 0 { '，' } else { '。' });
            }
            s
        })
        .collect()
}

fn split(poems: Vec<String>) -> Split {
    let mut s = Split::default();
    for p in poems {
        match part_of(&p) {
            Part::Train => s.train.push(p),
            Part::Valid => s.valid.push(p),
            Part::Test => s.test.push(p),
        }
    }
    s
}

/// exp(mean −ln p) of `c1 … cn END` after BEGIN, one [`Model::step`] at a time.
fn stepwise_perplexity(model: &Model, seqs: &[Vec<u32>]) -> f64 {
    let v = model.cfg.vocab;
    let (mut nll, mut n) = (0.0f64, 0usize);
    let mut logits = vec![0f32; v];
    for s in seqs {
        let mut state = model.new_state(1);
        let inputs = std::iter::once(Vocab::BEGIN).chain(s.iter().copied());
        let targets = s.iter().copied().chain(std::iter::once(Vocab::END));
        for (x, y) in inputs.zip(targets) {
            model.step(&mut state, &[x], &mut logits);
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
            nll -= logits[y as usize] as f64 - max - z.ln();
            n += 1;
        }
    }
    (nll / n as f64).exp()
}

#[test]
fn evaluate_a_tiny_trained_model() {
    let data = split(corpus(600));
    assert!(!data.valid.is_empty() && !data.test.is_empty());
    let vocab = Vocab::build(data.train.iter().map(|s| s.as_str()), 1);
    let cfg = ModelConfig {
        embed: 16,
        hidden: 32,
        layers: 1,
        vocab: vocab.len(),
        ..ModelConfig::default()
    };
    let mut rng = Rng::new(1);
    let mut model = Model::new(cfg, &mut rng);
    let mut adam = Adam::new(model.params.len(), 0.0);
    let batches =
        Batcher::new(data.train.iter().map(|t| vocab.encode(t)).collect(), 32).epoch(&mut rng);
    for b in batches.iter().cycle().take(30) {
        model.zero_grad();
        model.forward_backward(b, &mut rng);
        let (params, grads) = (&mut model.params, &model.grads);
        adam.step(params, grads, 1e-2);
    }

    let lex = lexicon();
    let set = EvalSettings {
        samples: 12,
        orders: vec![2, 3],
        ..EvalSettings::default()
    };
    let card = evaluate(&mut model, &vocab, &lex, &data, &set, &|_| {}).unwrap();

    // Perplexity: both parts, the model's figure is what its own step-by-step
    // probabilities give, and a few steps of training beat the uniform guess.
    assert_eq!(
        card.perplexity
            .iter()
            .map(|p| p.part.as_str())
            .collect::<Vec<_>>(),
        ["valid", "test"]
    );
    let valid_ids: Vec<Vec<u32>> = data.valid.iter().map(|t| vocab.encode(t)).collect();
    let want = stepwise_perplexity(&model, &valid_ids);
    let got = card.perplexity[0].model;
    assert!(
        (got - want).abs() <= 1e-3 * want,
        "batched {got} vs stepwise {want}"
    );
    let tokens: usize = valid_ids.iter().map(|s| s.len() + 1).sum();
    assert_eq!(card.perplexity[0].tokens, tokens as f64);
    for p in &card.perplexity {
        assert!(p.model > 1.0 && p.model < vocab.len() as f64, "{p:?}");
        assert_eq!(p.ngram.iter().map(|&(n, _)| n).collect::<Vec<_>>(), [2, 3]);
        assert!(
            p.ngram.iter().all(|&(_, x)| x.is_finite() && x > 1.0),
            "{p:?}"
        );
    }

    // Rows: every form, every kind, in order.
    assert_eq!(card.rows.len(), Form::REGULATED.len() * Kind::ALL.len());
    for (i, r) in card.rows.iter().enumerate() {
        let n = Kind::ALL.len();
        assert_eq!((r.form, r.kind), (Form::REGULATED[i / n], Kind::ALL[i % n]));
        let group = &card.rows[i / n * n..i / n * n + n];
        let smallest = group
            .iter()
            .map(|r| r.poems)
            .filter(|&n| n > 0)
            .min()
            .unwrap();
        assert_eq!(r.distinct_over, r.poems.min(smallest), "{r:?}");
        match r.kind {
            Kind::Free | Kind::Strict | Kind::Default => {
                assert_eq!(r.poems, 12);
                assert_eq!(r.form_pct, 100.0, "{r:?}");
            }
            Kind::Running => assert!(r.poems == 12 || r.poems == 0),
            Kind::Real => {
                let held = data
                    .valid
                    .iter()
                    .chain(&data.test)
                    .filter(|t| Form::of_text(t) == r.form)
                    .count();
                assert_eq!(r.poems, held.min(12));
                assert_eq!(r.form_pct, 100.0);
            }
        }
        if r.kind == Kind::Strict {
            assert_eq!(
                (r.rhyme_pct, r.tones_pct, r.rules_pct),
                (100.0, 100.0, 100.0),
                "{r:?}"
            );
        }
        assert!((0.0..=1.0).contains(&r.distinct1) && (0.0..=1.0).contains(&r.distinct2));
    }

    // Targets: perplexity, two free-running forms, four strict, four × (copying, distinct),
    // four × write's defaults (three repetition rates, distinct-2, drafts' log-prob).
    assert_eq!(
        card.targets.len(),
        1 + 2 + 4 + 8 + 4 * 5,
        "{:#?}",
        card.targets
    );
    assert!(
        card.targets[3..7].iter().all(|t| t.met),
        "{:#?}",
        card.targets
    );

    // The renderings carry the figures.
    let text = card.to_text();
    assert!(
        text.contains("KN 3-gram") && text.contains("七律 model, rhyme + strict tones"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::to_value(&card).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 20);
    assert_eq!(json["rows"][1]["kind"], "strict");
    let md = card.to_markdown(&[("plot".into(), "x.png".into())]);
    assert!(md.contains("| part |") && md.contains("![plot](x.png)"));
}

/// Kneser–Ney baselines on the real Tang split as the default preset sees it
/// (simplified, poems of at most 128 characters, vocabulary of characters
/// seen twice in training). Measured 2026-11: unigram 702, bigram 245,
/// trigram 196, 4-gram 182, 5-gram 178 per character on the validation part;
/// the issue quotes 627 / 256 / 233 for its own split and cleaning.
#[test]
#[ignore = "needs the real corpus (fetched)"]
fn kneser_ney_on_the_real_tang_split() {
    use shiren::corpus::{load, Collection, LoadOptions, Source};
    use shiren::ngram::Ngram;
    let data_dir = shiren::cache::data_dir(None).unwrap();
    let corpus = load(
        &Source::Collection(Collection::Tang),
        &LoadOptions::default(),
        &data_dir,
    )
    .unwrap();
    let texts: Vec<String> = corpus
        .poems
        .into_iter()
        .map(|p| p.text)
        .filter(|t| t.chars().count() <= 128)
        .collect();
    let data = split(texts);
    let vocab = Vocab::build(data.train.iter().map(|s| s.as_str()), 2);
    let enc = |v: &[String]| v.iter().map(|t| vocab.encode(t)).collect::<Vec<_>>();
    let (train, valid) = (enc(&data.train), enc(&data.valid));
    let ppl: Vec<f64> = (1..=5)
        .map(|n| {
            Ngram::train(n, &train, vocab.len())
                .unwrap()
                .perplexity(&valid)
        })
        .collect();
    eprintln!("Kneser–Ney perplexity, orders 1..=5, validation part: {ppl:.1?}");
    assert!(ppl.windows(2).all(|w| w[1] < w[0]), "{ppl:?}");
    assert!((150.0..300.0).contains(&ppl[2]), "trigram {}", ppl[2]);
}

// --- the command line ---

use crate::macros::{Dir, TestCommand};

shiren_test!(
    missing_model_is_one_clear_error,
    |_dir: Dir, mut cmd: TestCommand| {
        let err = cmd.args(["eval", "--model", "no-such-run"]).fails();
        contains_all!(err, "no-such-run", "no such checkpoint folder");
    }
);

shiren_test!(
    a_folder_that_is_no_checkpoint_is_named,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("empty/notes.txt", "");
        let err = cmd.args(["eval", "--model", "empty"]).fails();
        contains_all!(err, "empty", "neither a checkpoint", "best/");
    }
);

shiren_test!(
    bad_ngram_order_is_refused_before_any_work,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("run/best/config.json", "{}");
        dir.create("run/best/model.safetensors", "");
        let err = cmd
            .args(["eval", "--model", "run", "--ngram", "3,9"])
            .fails();
        contains_all!(err, "--ngram 9", "1 to 8");
    }
);

/// The whole command on a model trained here for a few steps on poems made
/// here; only the 平水韵 table comes from the real data directory.
#[test]
#[ignore = "needs the rhyme table (fetched)"]
fn eval_command_end_to_end() {
    let dir = Dir::new();
    let text: String = corpus(400).iter().map(|p| format!("{p}\n\n")).collect();
    dir.create("poems.txt", text);
    let train = |c: &mut TestCommand| {
        c.args([
            "train",
            "--file",
            "poems.txt",
            "--format",
            "text",
            "--preset",
            "seed",
        ])
        .args([
            "--hidden",
            "16",
            "--embed",
            "16",
            "--max-steps",
            "20",
            "--eval-interval",
            "10",
        ])
        .args(["--out", "run"])
        .stdout()
    };
    train(&mut dir.command_real_data());
    let out = dir
        .command_real_data()
        .args([
            "eval",
            "--model",
            "run",
            "--samples",
            "10",
            "--ngram",
            "2,3",
            "--json",
        ])
        .args(["--report", "report/card.md"])
        .stdout();
    let card: serde_json::Value = serde_json::from_str(&out).unwrap();
    let header = card["corpus"].as_str().unwrap();
    assert!(!header.contains("evaluated on"), "{header}");
    // --file names the file in the header, and says how it was measured
    let on_file = dir
        .command_real_data()
        .args(["eval", "--model", "run", "--samples", "2", "--ngram", "2"])
        .args(["--file", "poems.txt"])
        .stdout();
    let first = on_file.lines().next().unwrap();
    contains_all!(first, "evaluated on poems.txt", "model trained on");
    contains_all!(on_file, "split 90/5/5", "shiren score FILE");
    assert_eq!(card["rows"].as_array().unwrap().len(), 20, "{out}");
    assert_eq!(card["perplexity"].as_array().unwrap().len(), 2, "{out}");
    assert!(card["perplexity"][0]["model"].as_f64().unwrap() > 1.0);
    let md = std::fs::read_to_string(dir.join("report/card.md")).unwrap();
    contains_all!(
        md,
        "| part |",
        "![",
        "card-forms.png",
        "card-perplexity.png"
    );
    for png in ["card-forms.png", "card-perplexity.png"] {
        assert!(std::fs::read(dir.join("report").join(png))
            .unwrap()
            .starts_with(b"\x89PNG"));
    }
}

/// The free characters of the repetition rule are the ones the corpus gives.
#[test]
#[ignore = "needs the real corpus (fetched)"]
fn the_free_characters_are_measured_on_the_corpus() {
    use shiren::prosody::repeats::FREE_CHARS;
    let out = Dir::new()
        .command_real_data()
        .args(["eval", "--repeat-chars"])
        .stdout();
    let want: Vec<String> = FREE_CHARS.iter().map(|c| format!("'{c}'")).collect();
    let want = format!("FREE_CHARS: &[char] = &[{}];", want.join(", "));
    contains_all!(out, &want);
}
