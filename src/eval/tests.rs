//! The report card's measures on made-up poems, and a tiny model evaluated end to end.

use super::*;

#[test]
fn perplexity_of_a_hand_computable_model() {
    // A "model" that gives every target probability 1/4 has loss ln 4 per
    // token and perplexity 4, whatever the batch sizes; one that gives 1/2
    // on one batch (3 tokens) and 1/8 on another (1 token) has mean loss
    // (3 ln 2 + ln 8)/4 = 6 ln 2 / 4 = 1.5 ln 2, perplexity 2^1.5.
    let b1 = Batch::from_seqs(&[&[4, 5][..]]); // targets 4 5 END: 3 tokens
    let b2 = Batch::from_seqs(&[&[][..]]); // target END: 1 token
    let uniform = |b: &Batch| {
        let n = b.mask.iter().sum::<f32>() as f64;
        (n * 4f64.ln(), n)
    };
    let p = perplexity_with(uniform, &[b1.clone(), b2.clone()]);
    assert_eq!(p.tokens, 4.0);
    assert!((p.ppl() - 4.0).abs() < 1e-12);
    let mut calls = 0;
    let skewed = |b: &Batch| {
        calls += 1;
        let n = b.mask.iter().sum::<f32>() as f64;
        let p = if n == 3.0 { 0.5f64 } else { 0.125 };
        (-n * p.ln(), n)
    };
    let p = perplexity_with(skewed, &[b1, b2]);
    assert_eq!(calls, 2);
    assert!((p.loss() - 1.5 * 2f64.ln()).abs() < 1e-12);
    assert!((p.ppl() - 2f64.powf(1.5)).abs() < 1e-12);
}

#[test]
fn first_line_keeps_its_punctuation() {
    assert_eq!(first_line("白日依山尽，黄河入海流。"), "白日依山尽，");
    assert_eq!(first_line("无标点"), "无标点");
}

#[test]
fn distinct_n_on_a_toy_set() {
    // Lines 白日白日 and 白云: unigrams 白 日 白 日 白 云 → 3 distinct of 6;
    // bigrams 白日 日白 白日 | 白云 → 3 distinct of 4.
    let poems = ["白日白日，白云。"];
    assert!((distinct_n(&poems, 1) - 0.5).abs() < 1e-12);
    assert!((distinct_n(&poems, 2) - 0.75).abs() < 1e-12);
    // Punctuation is not a character: bigrams never span a line break.
    assert_eq!(distinct_n(&["一，二。"], 2), 0.0);
    assert_eq!(distinct_n::<&str>(&[], 1), 0.0);
}

#[test]
fn copy_rate_on_a_toy_set() {
    let train = ["白日依山尽，黄河入海流。", "欲穷千里目，更上一层楼。"];
    let idx = CopyIndex::build(train);
    assert!(idx.has_line("黄河入海流") && !idx.has_line("黄河入海"));
    // Lines: 白日依山尽 (copied), 黄河入海深 (new). 4-grams: 白日依山, 日依山尽
    // (seen), 黄河入海 (seen), 河入海深 (unseen): 1 unseen of 4.
    let c = idx.copying(&["白日依山尽，黄河入海深。"]);
    assert_eq!(
        c,
        Copying {
            lines: 2,
            lines_copied: 1,
            grams: 4,
            grams_unseen: 1
        }
    );
    assert_eq!(c.copied_pct(), 50.0);
    assert_eq!(c.unseen_pct(), 25.0);
    // A 4-gram across two training lines is not seen: 山尽黄河 spans 尽，黄.
    let c = idx.copying(&["依山尽黄河"]);
    assert_eq!((c.grams, c.grams_unseen), (2, 2));
}

/// Just the characters of 王之涣《登鹳雀楼》, with their 平水韵 readings.
fn lexicon() -> Lexicon {
    use crate::prosody::Tone;
    Lexicon::from_groups(&[
        ("下平十一尤", Tone::Ping, "流楼"),
        ("平", Tone::Ping, "依山黄河穷千层更"),
        ("仄", Tone::Ze, "白日尽入海欲里目上一更"), // 更: gēng 平 and gèng 仄
    ])
}

const DENG_GUANQUE_LOU: &str = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。";

#[test]
fn prosody_tally_on_real_and_broken_poems() {
    let lex = lexicon();
    let mut t = Tally::default();
    t.add(&lex, DENG_GUANQUE_LOU, Form::Wujue);
    assert_eq!((t.poems, t.form_ok, t.rhyme_ok, t.tones_ok), (1, 1, 1, 1));
    assert!(t.rules_made > 0 && t.rules_met == t.rules_made);

    // Lines 3–4 replaced by lines 1–2: line 3 starts 仄仄 after line 2's
    // 平平, so 粘 breaks at line 3 (index 2), position 2 (index 1), and
    // nothing else does.
    let broken = "白日依山尽，黄河入海流。白日依山尽，黄河入海流。";
    let report = check_poem(&lex, broken).unwrap();
    let fails: Vec<_> = report.failures().map(|c| (c.rule, c.line, c.pos)).collect();
    assert_eq!(fails, [(crate::prosody::Rule::Nian, 2, Some(1))]);
    let mut u = Tally::default();
    u.add(&lex, broken, Form::Wujue);
    assert_eq!((u.form_ok, u.rhyme_ok, u.tones_ok), (1, 1, 0));
    assert_eq!(u.rules_met + 1, u.rules_made);

    // Wrong shape for the form asked: form fails, the poem is still checked.
    t.add(&lex, DENG_GUANQUE_LOU, Form::Qijue);
    assert_eq!((t.poems, t.form_ok, t.rhyme_ok), (2, 1, 2));
    assert_eq!(t.form_pct(), 50.0);
    // Lines of 3 cannot be checked: rhyme and tones fail, no rule checks added.
    let made = t.rules_made;
    t.add(&lex, "白日依，黄河流。", Form::Wujue);
    assert_eq!((t.rhyme_ok, t.tones_ok, t.rules_made), (2, 2, made));
    assert!((t.rhyme_pct() - 200.0 / 3.0).abs() < 1e-9);
}

#[test]
fn targets_are_checked_against_the_figures() {
    let row = |form, kind, form_pct, rhyme_pct, tones_pct, d2, copied| CardRow {
        form,
        kind,
        poems: 10,
        form_pct,
        rhyme_pct,
        tones_pct,
        rules_pct: 0.0,
        distinct1: 0.0,
        distinct2: d2,
        distinct_over: 10,
        copied_lines_pct: copied,
        unseen_4grams_pct: 0.0,
        repeats: RepeatRow::default(),
    };
    let rows = vec![
        row(Form::Qijue, Kind::Free, 100.0, 0.0, 0.0, 0.80, 3.0),
        row(Form::Qijue, Kind::Strict, 100.0, 98.0, 95.0, 0.8, 0.0),
        row(Form::Qijue, Kind::Running, 90.0, 0.0, 0.0, 0.0, 0.0),
        row(Form::Qijue, Kind::Real, 100.0, 95.0, 80.0, 0.90, 5.0),
        row(Form::Wulv, Kind::Strict, 100.0, 99.0, 94.9, 0.8, 0.0),
        row(Form::Wulv, Kind::Running, 89.9, 0.0, 0.0, 0.0, 0.0),
    ];
    let ppl = vec![PartPerplexity {
        part: "test".into(),
        poems: 1,
        tokens: 1.0,
        model: 110.0,
        ngram: vec![(3, 200.0), (5, 180.0)],
    }];
    let got: Vec<(String, bool)> = targets(&ppl, &rows)
        .into_iter()
        .map(|t| (t.what, t.met))
        .collect();
    let want = [
        ("test perplexity ≤ 0.55× the KN trigram's", true), // 110/200 = 0.55
        ("七绝 free-running form% ≥ 90", true),
        ("五律 free-running form% ≥ 90", false),
        ("七绝 rhyme + strict tones: rhyme% ≥ 98, tones% ≥ 95", true),
        ("五律 rhyme + strict tones: rhyme% ≥ 98, tones% ≥ 95", false), // tones 94.9
        ("七绝 lines copied ≤ 6% and ≤ real (5.0%)", true),
        ("七绝 distinct-2 within 10% of real (0.900)", false), // 0.80 is 11.1% below
    ];
    let want: Vec<(String, bool)> = want.iter().map(|&(w, m)| (w.to_string(), m)).collect();
    assert_eq!(got, want);
}

#[test]
fn default_targets_hold_repeats_to_the_real_rates() {
    let row = |kind, d2, r: RepeatRow| CardRow {
        form: Form::Qilv,
        kind,
        poems: 1000,
        form_pct: 100.0,
        rhyme_pct: 100.0,
        tones_pct: 0.0,
        rules_pct: 0.0,
        distinct1: 0.0,
        distinct2: d2,
        distinct_over: 1000,
        copied_lines_pct: 0.0,
        unseen_4grams_pct: 0.0,
        repeats: r,
    };
    let real = RepeatRow {
        uses_three_pct: 3.0,
        first_end_reused_pct: 0.8,
        line_repeats_pct: 0.0,
        ..RepeatRow::default()
    };
    let model = RepeatRow {
        uses_three_pct: 4.5,       // exactly 1.5× real: met
        first_end_reused_pct: 1.3, // over 1.2: not met
        line_repeats_pct: 0.0125,  // one line in 8,000, where real has none: met
        score: Some(-4.0),
        draft_score: Some(-4.2),
    };
    let rows = vec![
        row(Kind::Default, 0.70, model),
        row(Kind::Real, 0.771, real),
    ];
    let got: Vec<bool> = default_targets(&rows).iter().map(|t| t.met).collect();
    assert_eq!(
        got,
        [true, false, true, true, true],
        "{:?}",
        default_targets(&rows)
    );
    let worse = RepeatRow {
        score: Some(-4.3),
        line_repeats_pct: 0.05,
        ..model
    };
    let rows = vec![
        row(Kind::Default, 0.60, worse),
        row(Kind::Real, 0.771, real),
    ];
    let got: Vec<bool> = default_targets(&rows).iter().map(|t| t.met).collect();
    assert_eq!(got, [true, false, false, false, false]);
}

#[test]
fn tables_align_and_markdown_has_pipes() {
    let head = vec!["form".to_string(), "n".to_string()];
    let rows = vec![
        vec!["五绝 x".to_string(), "1000".to_string()],
        vec!["a".to_string(), "7".to_string()],
    ];
    let t = render(&head, &rows, false);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "form       n");
    assert_eq!(lines[1], "五绝 x  1000");
    assert_eq!(lines[2], "a          7");
    let m = render(&head, &rows, true);
    assert!(
        m.starts_with("| form | n |\n|---|---|\n| 五绝 x | 1000 |"),
        "{m}"
    );
}

#[test]
fn a_sweep_setting_reads_as_t_k_p_d_and_bad_ones_are_refused() {
    let s: Setting = "1.1:200:1:4".parse().unwrap();
    assert_eq!(
        s,
        Setting {
            temperature: 1.1,
            top_k: 200,
            top_p: 1.0,
            drafts: 4
        }
    );
    for bad in [
        "1.1:200:1",
        "a:200:1:4",
        "1:200:0:4",
        "1:200:1:0",
        "1:200:1:999",
    ] {
        let err = bad.parse::<Setting>().unwrap_err();
        assert!(err.contains(bad), "{bad}: {err}");
    }
}
