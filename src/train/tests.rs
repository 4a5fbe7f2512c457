//! The training module's tests: presets and JSON overrides, data tags and
//! titles, the schedule, the time budget, metrics rows and the plot.

use super::budget::{budget_steps, refit_budget};
use super::*;
use crate::corpus::convert::Script;
use crate::corpus::Form;
use crate::corpus::Poem;
use crate::model::Cell;

#[test]
fn form_tags_lead_most_regulated_training_poems_and_no_other_poem() {
    // 400 distinct 五绝 and 400 five-line poems (no tagged form).
    let han: Vec<char> = "山水风月花鸟云天江海春秋日夜人家".chars().collect();
    let line = |k: usize, salt: usize| -> String {
        (0..5)
            .map(|j| han[(k / 16usize.pow(j as u32) + salt * j) % 16])
            .collect()
    };
    let poem = |k: usize, lines: usize| Poem {
        title: String::new(),
        author: String::new(),
        text: (0..lines)
            .map(|i| format!("{}{}", line(k, i), if i % 2 == 0 { '，' } else { '。' }))
            .collect(),
        source: String::new(),
    };
    let poems: Vec<Poem> = (0..400)
        .map(|k| poem(k, 4))
        .chain((0..400).map(|k| poem(k, 5)))
        .collect();
    let data = Data::from_poems(
        &poems,
        None,
        1,
        100,
        true,
        false,
        false,
        "toy".into(),
        Script::Simplified,
    );
    let tag = data
        .vocab
        .tag(Form::Wujue)
        .expect("a tagged vocabulary has 五绝");
    let tags: Vec<u32> = Form::REGULATED
        .iter()
        .filter_map(|f| data.vocab.tag(*f))
        .collect();
    assert_eq!(tags.len(), 4);
    let (mut tagged, mut wujue) = (0, 0);
    for seq in &data.train {
        assert!(
            !seq[1..].iter().any(|t| tags.contains(t)),
            "a tag inside a poem"
        );
        // 4 lines of 6 (5 + punctuation) = 24 characters, plus the tag.
        if seq.len() == 25 || seq.len() == 24 {
            wujue += 1;
            tagged += usize::from(seq[0] == tag);
        } else {
            assert!(!tags.contains(&seq[0]), "a five-line poem was tagged");
        }
    }
    let share = tagged as f64 / wujue as f64;
    assert!((0.75..0.95).contains(&share), "{tagged} of {wujue} tagged");
    assert!(data
        .valid
        .iter()
        .all(|s| !s.iter().any(|t| tags.contains(t))));
    let plain = Data::from_poems(
        &poems,
        None,
        1,
        100,
        false,
        false,
        false,
        "toy".into(),
        Script::Simplified,
    );
    assert!(plain.vocab.tags().is_empty());
    assert_eq!(plain.vocab.len() + 4, data.vocab.len());
}

/// `n` toy poems (distinct up to 4,096), each titled with two characters and `count`
/// (a sequence marker that cleaning drops).
fn titled_poems(n: usize, count: &str) -> Vec<Poem> {
    let han: Vec<char> = HAN.chars().collect();
    (0..n)
        .map(|k| Poem {
            title: format!("{}{}{count}", han[k % 16], han[(k + 1) % 16]),
            author: String::new(),
            text: format!(
                "{}{}{}{}{}，白日依山尽。",
                han[k % 16],
                han[k / 16 % 16],
                han[k / 256 % 16],
                han[(k + 3) % 16],
                han[(k + 5) % 16]
            ),
            source: String::new(),
        })
        .collect()
}

const HAN: &str = "山水风月花鸟云天江海春秋日夜人家";

#[test]
fn titles_lead_most_training_poems_between_two_begins_and_never_validation() {
    let han: Vec<char> = HAN.chars().collect();
    let poems = titled_poems(600, "二首 一");
    let data = Data::from_poems(
        &poems,
        None,
        1,
        100,
        false,
        true,
        false,
        "toy".into(),
        Script::Simplified,
    );
    let cfg = TrainConfig {
        titles: true,
        ..TrainConfig::default()
    };
    assert_eq!(
        cfg.model_config(&data.vocab).positions.unwrap().resets,
        [Vocab::BEGIN]
    );
    let mut titled = 0;
    for seq in &data.train {
        let k = crate::title::prefix_len(seq);
        if k > 0 {
            titled += 1;
            // the cleaned title (two characters, no count), then BEGIN
            assert_eq!(k, 3, "{seq:?}");
            let title = data.vocab.decode(&seq[..2]);
            assert!(han.contains(&title.chars().next().unwrap()), "{title}");
            let poem = data.vocab.decode(&seq[k..]);
            assert!(poem.ends_with("白日依山尽。"), "{poem}");
        }
    }
    let share = titled as f64 / data.train.len() as f64;
    assert!((0.7..0.9).contains(&share), "{share}");
    assert!(data.valid.iter().all(|s| !s.contains(&Vocab::BEGIN)));
    // a batch scores the poem and END, not the title
    let seq = data
        .train
        .iter()
        .find(|s| crate::title::prefix_len(s) > 0)
        .unwrap();
    let b = crate::batch::Batch::from_seqs(&[seq.as_slice()]);
    assert_eq!(b.num_tokens(), seq.len() - 3 + 1);
}

#[test]
fn the_untitled_fifth_is_drawn_afresh_each_epoch_or_stays_fixed() {
    let poems = titled_poems(2000, "");
    let data = |each| {
        let d = Data::from_poems(
            &poems,
            None,
            1,
            100,
            false,
            true,
            each,
            "toy".into(),
            Script::Simplified,
        );
        let titled = |e| -> Vec<bool> {
            d.epoch_train(e)
                .iter()
                .map(|s| crate::title::prefix_len(s) > 0)
                .collect()
        };
        (titled(0), titled(1), d)
    };
    let share = |t: &[bool]| t.iter().filter(|&&x| !x).count() as f64 / t.len() as f64;
    // drawn each epoch: every poem carries its title in `train`; a fifth goes without in
    // each epoch, a different fifth each time, and the poems are the same otherwise
    let (a, b, d) = data(true);
    assert!(d.train.iter().all(|s| crate::title::prefix_len(s) > 0));
    for t in [&a, &b] {
        assert!((0.15..0.25).contains(&share(t)), "{}", share(t));
    }
    let both = a.iter().zip(&b).filter(|(x, y)| !**x && !**y).count() as f64 / a.len() as f64;
    assert!(both < 0.08, "{both}");
    for (with, e) in d.train.iter().zip(d.epoch_train(1)) {
        assert!(with.ends_with(&e));
    }
    // fixed: every epoch is `train` itself, its untitled fifth the same
    let (a, b, d) = data(false);
    assert_eq!(a, b);
    assert!((0.15..0.25).contains(&share(&a)), "{}", share(&a));
    assert_eq!(d.epoch_train(3), d.train);
}

#[test]
fn lr_warms_up_linearly_then_decays_by_cosine_to_min_lr() {
    let cfg = TrainConfig {
        lr: 1.0,
        min_lr: 0.1,
        warmup: 10,
        ..TrainConfig::default()
    };
    assert_eq!(cfg.lr_at(0, 110), 0.1);
    assert_eq!(cfg.lr_at(4, 110), 0.5);
    assert_eq!(cfg.lr_at(10, 110), 1.0);
    assert!((cfg.lr_at(60, 110) - 0.55).abs() < 1e-6);
    assert!((cfg.lr_at(109, 110) - 0.1).abs() < 1e-3);
    assert_eq!(cfg.lr_at(500, 110), 0.1);
    let constant = TrainConfig::preset_seed();
    assert_eq!(constant.lr_at(0, 100), 0.01);
    assert_eq!(constant.lr_at(77, 100), 0.01);
}

#[test]
fn json_overrides_keep_the_rest_and_reject_unknown_keys() {
    let base = TrainConfig::preset_seed();
    let c = base
        .merge_json(r#"{"hidden": 256, "cell": "gru"}"#)
        .unwrap();
    assert_eq!(
        (c.hidden, c.cell, c.embed, c.lr),
        (256, Cell::Gru, 128, 0.01)
    );
    let err = base.merge_json(r#"{"hiden": 256}"#).unwrap_err();
    assert!(err.contains("unknown field `hiden`"), "{err}");
    let err = base.merge_json(r#"{"hidden": "big"}"#).unwrap_err();
    assert!(err.contains("invalid type"), "{err}");
    assert!(base.merge_json("[1]").is_err());
    // The saved form reads back to the same settings.
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(TrainConfig::default().merge_json(&text).unwrap(), c);
}

#[test]
fn resume_conflicts_name_the_key_and_both_values() {
    let a = TrainConfig::preset_default();
    let b = TrainConfig {
        hidden: 256,
        lr: 1e-4,
        ..a.clone()
    };
    assert_eq!(
        TrainConfig::resume_conflict(&a, &b),
        Some(("hidden".into(), "512".into(), "256".into()))
    );
    let c = TrainConfig {
        lr: 1e-4,
        epochs: 9,
        dropout: 0.3,
        ..a.clone()
    };
    assert_eq!(TrainConfig::resume_conflict(&a, &c), None);
}

#[test]
fn total_steps_takes_the_smaller_limit() {
    let mut cfg = TrainConfig {
        epochs: 3,
        max_steps: 0,
        ..TrainConfig::default()
    };
    assert_eq!(total_steps(&cfg, 10, 0), 30);
    cfg.max_steps = 25;
    assert_eq!(total_steps(&cfg, 10, 0), 25);
    assert_eq!(total_steps(&cfg, 10, 20), 20);
    assert_eq!(total_steps(&cfg, 10, 40), 25);
    cfg.epochs = 0;
    assert_eq!(total_steps(&cfg, 10, 0), 25);
    cfg.max_steps = 0;
    assert_eq!(total_steps(&cfg, 10, 0), u64::MAX, "a budget not yet fixed");
    assert_eq!(total_steps(&cfg, 10, 7), 7);
}

#[test]
fn a_time_budget_counts_the_steps_that_fit() {
    let cfg = TrainConfig {
        minutes: 10.0,
        ..TrainConfig::default()
    };
    // 600 s, 60 used: 540 × 0.98 = 529.2 s left at 2 s/step without evaluations
    assert_eq!(
        budget_steps(&cfg, 35, 60.0, 2.0, 4000.0, 0.0, 500),
        35 + 264
    );
    // evaluating 12,000 tokens (3 steps' worth, a step's time) every 100 steps
    let per = 2.0 + 2.0 / 100.0;
    let want = 35 + (529.2 / per) as u64;
    assert_eq!(
        budget_steps(&cfg, 35, 60.0, 2.0, 4000.0, 12000.0, 100),
        want
    );
    // over budget already: one more step, not zero (which would mean "none")
    assert_eq!(budget_steps(&cfg, 35, 700.0, 2.0, 4000.0, 0.0, 500), 36);
}

#[test]
fn a_time_budget_is_refitted_to_the_speed_so_far() {
    let cfg = TrainConfig {
        minutes: 10.0,
        ..TrainConfig::default()
    };
    // 300 steps in 300 s: 294 s left at 1 s/step and a 10 s evaluation per 100 steps
    assert_eq!(refit_budget(&cfg, 300, 300.0, 1.0, 10.0, 100), 300 + 267);
    // the same point on a machine that now runs twice as slow: half the steps left
    assert_eq!(refit_budget(&cfg, 300, 300.0, 2.0, 20.0, 100), 300 + 133);
    // no time left: the run ends at this evaluation
    assert_eq!(refit_budget(&cfg, 300, 650.0, 1.0, 10.0, 100), 300);
}

#[test]
fn metrics_rows_round_trip_through_csv() {
    let r = MetricsRow {
        step: 5,
        epoch: 0.25,
        train_loss: Some(3.5),
        val_loss: None,
        tok_s: Some(1234.0),
        lr: 3e-3,
    };
    assert_eq!(MetricsRow::parse(&r.to_csv()), Some(r));
    let v = MetricsRow {
        step: 9,
        epoch: 1.0,
        train_loss: None,
        val_loss: Some(2.0),
        tok_s: None,
        lr: 1e-4,
    };
    let line = v.to_csv();
    assert!(line.contains(",7.389,"), "{line}");
    assert_eq!(MetricsRow::parse(&line), Some(v));
}

#[test]
fn plot_is_written_with_or_without_text() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<MetricsRow> = (1..50)
        .map(|i| MetricsRow {
            step: i,
            epoch: i as f64 / 10.0,
            train_loss: Some(5.0 / i as f64),
            val_loss: (i % 10 == 0).then_some(5.5 / i as f64),
            tok_s: Some(1.0),
            lr: 1e-3,
        })
        .collect();
    let png = dir.path().join("loss.png");
    plot_losses(&png, &rows).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
}
