//! The model's tests: losses against the f64 reference in
//! `engine/reference.rs`, every gradient by central differences, the
//! sampling step against the batch forward, and the parameter table.

use super::*;
use crate::engine::linear::PANELS_MIN_WIDTH;
use crate::engine::reference::{model_loss_ref, RefInput, RefMasks};
use crate::optim::Adam;

fn tiny(cell: Cell, input: Input, head: Head, vocab: usize) -> ModelConfig {
    ModelConfig {
        cell,
        layers: 2,
        embed: 3,
        hidden: 5,
        vocab,
        dropout: 0.0,
        dropout_in: 0.0,
        dropout_out: 0.0,
        input,
        head,
        positions: None,
        tied: false,
        shortlist: 0,
    }
}

/// Positions over a vocabulary of 7: id 5 ends a line, 0 and 1 are silent,
/// 6 is a form tag; 3 rows, so that the lines and columns of a short batch
/// reach the cap.
fn with_positions(cfg: ModelConfig) -> ModelConfig {
    ModelConfig {
        positions: Some(Positions {
            size: 3,
            line_ends: vec![5],
            silent: vec![0, 1],
            forms: vec![6],
            resets: vec![1],
            title: false,
        }),
        ..cfg
    }
}

/// [`with_positions`] and a title vector: a reset (BEGIN, id 1) after
/// characters (2, 3, 4) takes them as the title, which random batches do often.
fn with_title(cfg: ModelConfig) -> ModelConfig {
    let mut cfg = with_positions(cfg);
    cfg.positions.as_mut().unwrap().title = true;
    cfg
}

/// `title.weight` starts at zero (a model given the vector writes as before);
/// the checks need it random, so that every path carries gradient.
fn randomize_title(model: &mut Model, rng: &mut Rng) {
    if let Some(r) = model.layout.title.clone() {
        for p in &mut model.params[r] {
            *p = rng.normal();
        }
    }
}

/// A (B, T) batch of random ids; with `masked`, the tail of some rows is padding.
fn batch(b: usize, t: usize, v: usize, masked: bool, rng: &mut Rng) -> Batch {
    let inputs = (0..b * t).map(|_| rng.below(v) as u32).collect();
    let targets = (0..b * t).map(|_| rng.below(v) as u32).collect();
    let mask = (0..b * t)
        .map(|k| {
            if masked && k % t >= t - 1 - (k / t) % 3 {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    Batch {
        b,
        t,
        inputs,
        targets,
        mask,
    }
}

/// Central differences of the f64 reference loss against the model's f32 analytic gradient,
/// for every parameter. Tolerance: the analytic side is f32, so 1e-4 absolute + 1e-3 relative.
fn grad_check(model: &mut Model, loss_at: &dyn Fn(&[f64]) -> f64, what: &str) {
    let p64: Vec<f64> = model.params.iter().map(|&x| x as f64).collect();
    let table = param_table(&model.cfg);
    let mut names = Vec::new();
    for (name, shape) in &table {
        names.extend(std::iter::repeat_n(name.clone(), shape.iter().product()));
    }
    let eps = 1e-6;
    let mut p = p64.clone();
    let mut worst = 0.0f64;
    for k in 0..p.len() {
        p[k] = p64[k] + eps;
        let up = loss_at(&p);
        p[k] = p64[k] - eps;
        let down = loss_at(&p);
        p[k] = p64[k];
        let num = (up - down) / (2.0 * eps);
        let ana = model.grads[k] as f64;
        worst = worst.max((num - ana).abs());
        assert!(
            (num - ana).abs() <= 1e-4 + 1e-3 * num.abs(),
            "{what}: {}[{k}]: numeric {num}, analytic {ana}",
            names[k]
        );
    }
    eprintln!(
        "{what}: {} params, max |numeric − analytic| {worst:e}",
        p.len()
    );
}

/// Forward-backward of a token model on a random (B, T) batch: its loss
/// against the f64 reference, then every gradient by finite differences.
/// Returns the model, its gradients filled.
fn check_token_model(cfg: &ModelConfig, b: usize, t: usize, masked: bool, seed: u64) -> Model {
    let mut rng = Rng::new(seed);
    let mut model = Model::new(cfg.clone(), &mut rng);
    randomize_title(&mut model, &mut rng);
    let mut bt = batch(b, t, cfg.vocab, masked, &mut rng);
    if model.layout.title.is_some() {
        // at least one title: BEGIN 2 3 BEGIN
        bt.inputs[..4].copy_from_slice(&[1, 2, 3, 1]);
    }
    model.zero_grad();
    let (sum, count) = model.forward_backward(&bt, &mut rng);
    let f = |p: &[f64]| {
        model_loss_ref(
            cfg,
            p,
            RefInput::Tokens(&bt.inputs),
            &bt.targets,
            &bt.mask,
            b,
            t,
            &RefMasks::default(),
        )
    };
    let want = f(&model.params.iter().map(|&x| x as f64).collect::<Vec<_>>());
    let what = format!("{} B={b} T={t} masked={masked}", cfg.cell);
    assert!(
        (sum / count - want).abs() < 1e-5,
        "{what}: loss {} vs reference {want}",
        sum / count
    );
    grad_check(&mut model, &f, &what);
    model
}

/// The head projects rows of width ≥ PANELS_MIN_WIDTH through panels and
/// narrower ones through the plain weight; the gradient checks' tiny
/// models take the second way, so the first is checked here, by the loss.
#[test]
fn wide_heads_loss_matches_the_reference() {
    let wide = PANELS_MIN_WIDTH;
    let untied = ModelConfig {
        layers: 1,
        hidden: wide,
        ..tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 11)
    };
    let tied = ModelConfig {
        embed: wide,
        tied: true,
        ..tiny(Cell::Gru, Input::Tokens, Head::EveryStep, 11)
    };
    let split = |cfg: &ModelConfig| ModelConfig {
        shortlist: 4,
        ..cfg.clone()
    };
    for cfg in [split(&untied), split(&tied), untied, tied] {
        let mut rng = Rng::new(5);
        let mut model = Model::new(cfg.clone(), &mut rng);
        let bt = batch(3, 4, cfg.vocab, true, &mut rng);
        let (sum, count) = model.loss(&bt);
        let p64: Vec<f64> = model.params.iter().map(|&x| x as f64).collect();
        let want = model_loss_ref(
            &cfg,
            &p64,
            RefInput::Tokens(&bt.inputs),
            &bt.targets,
            &bt.mask,
            3,
            4,
            &RefMasks::default(),
        );
        assert!(
            (sum / count - want).abs() < 1e-5,
            "tied {} shortlist {}: loss {} vs reference {want}",
            cfg.tied,
            cfg.shortlist,
            sum / count
        );
    }
}

#[test]
fn token_model_gradients_match_finite_differences() {
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        // B = 16 splits the batch across threads (engine::for_row_parts), and its
        // 128 rows split the head too
        for (b, t, masked) in [(3, 4, false), (3, 4, true), (16, 8, true)] {
            check_token_model(
                &tiny(cell, Input::Tokens, Head::EveryStep, 7),
                b,
                t,
                masked,
                1,
            );
        }
    }
}

#[test]
fn position_embedding_gradients_match_finite_differences() {
    for cell in [Cell::Lstm, Cell::Gru] {
        for (b, t, masked) in [(3, 7, false), (16, 8, true)] {
            let cfg = with_positions(tiny(cell, Input::Tokens, Head::EveryStep, 7));
            let model = check_token_model(&cfg, b, t, masked, 11);
            // every table is used: the loss moves when it does
            for r in model.layout.positions.clone() {
                assert!(model.grads[r].iter().any(|&g| g.abs() > 1e-6));
            }
        }
    }
}

#[test]
fn title_vector_gradients_match_finite_differences() {
    // the lookup projection's path (no input dropout); the dropout test
    // above takes the embedded rows' path with a title too
    for (cell, tied, shortlist) in [
        (Cell::Lstm, false, 0),
        (Cell::Gru, true, 3),
        (Cell::Rnn, true, 0),
    ] {
        for (b, t, masked) in [(3, 7, false), (16, 8, true)] {
            let cfg = ModelConfig {
                tied,
                shortlist,
                ..with_title(tiny(cell, Input::Tokens, Head::EveryStep, 7))
            };
            let model = check_token_model(&cfg, b, t, masked, 13);
            assert!(
                model.acts.titles.iter().any(Option::is_some),
                "no title in the batch"
            );
            let r = model.layout.title.clone().expect("a title vector");
            assert!(model.grads[r].iter().any(|&g| g.abs() > 1e-6));
        }
    }
}

#[test]
fn learning_titles_adds_a_zero_title_map_that_changes_no_loss() {
    let cfg = with_positions(tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 7));
    let mut rng = Rng::new(4);
    let mut old = Model::new(cfg, &mut rng);
    let mut bt = batch(4, 9, 7, true, &mut rng);
    bt.inputs[..4].copy_from_slice(&[1, 2, 3, 1]);
    let (want, _) = old.loss(&bt);
    let before: Vec<(String, Vec<f32>)> = old
        .tensors()
        .into_iter()
        .map(|(n, _, v)| (n, v.to_vec()))
        .collect();
    let mut new = old.learning_titles(1, true);
    assert!(new.cfg.positions.as_ref().unwrap().title);
    let tensors = new.tensors();
    assert_eq!(tensors.len(), before.len() + 1);
    for (name, _, v) in &tensors {
        match before.iter().find(|(n, _)| n == name) {
            Some((_, old_v)) => assert_eq!(old_v, v, "{name} changed"),
            None => assert!(name == "title.weight" && v.iter().all(|&x| x == 0.0)),
        }
    }
    let (got, _) = new.loss(&bt);
    assert_eq!(got, want);
    // the map, once moved, changes the loss
    randomize_title(&mut new, &mut rng);
    assert_ne!(new.loss(&bt).0, want);
}

#[test]
fn a_title_is_the_characters_before_a_reset_and_counts_from_it() {
    let kinds = pos_kinds(&with_title(tiny(
        Cell::Rnn,
        Input::Tokens,
        Head::EveryStep,
        7,
    )));
    // BEGIN 3 4 BEGIN tag 2 , 3 … : the title is 3 4, from the second BEGIN
    let span = title::title_span(&[1, 3, 4, 1, 6, 2, 5, 3], &kinds).unwrap();
    assert_eq!((span.ids, span.from), (vec![3, 4], 3));
    // a poem read without its title has none, however many characters follow
    assert_eq!(title::title_span(&[1, 6, 2, 3, 5, 4, 0, 0], &kinds), None);
    // silent tokens and tags are not title characters; a later reset keeps the first title
    let span = title::title_span(&[0, 6, 4, 4, 0, 3, 1, 2, 1, 3], &kinds).unwrap();
    assert_eq!((span.ids, span.from), (vec![4, 4, 3], 6));
}

#[test]
fn tied_projection_gradients_match_finite_differences() {
    // the embedding's gradient now comes from both ends of the model
    for cell in [Cell::Lstm, Cell::Rnn] {
        for (b, t, masked) in [(3, 4, true), (16, 8, true)] {
            let base = tiny(cell, Input::Tokens, Head::EveryStep, 7);
            let cfg = ModelConfig {
                tied: true,
                ..with_positions(base)
            };
            let model = check_token_model(&cfg, b, t, masked, 5);
            assert!(model.layout.bottleneck.is_some());
            assert_eq!(model.layout.proj_w, model.layout.embedding.clone().unwrap());
        }
    }
    // a tied model has no proj.weight, and fewer weights
    let cfg = tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 50);
    let tied = ModelConfig {
        tied: true,
        ..cfg.clone()
    };
    let names: Vec<String> = param_table(&tied).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"bottleneck.weight".to_string()));
    assert!(!names.contains(&"proj.weight".to_string()));
    assert_eq!(cfg.num_params() - tied.num_params(), 50 * 5 - 3 * 5);
    // only a token model with an every-step head can tie
    let dense = ModelConfig {
        tied: true,
        ..tiny(Cell::Lstm, Input::Dense { dim: 4 }, Head::LastStep, 3)
    };
    assert!(dense.validate().is_err());
}

#[test]
fn two_level_head_gradients_match_finite_differences() {
    // ids 3.. are rare: about half the random targets take the second level
    for (cell, tied) in [(Cell::Lstm, false), (Cell::Gru, true), (Cell::Rnn, true)] {
        for (b, t, masked) in [(3, 4, true), (16, 8, true)] {
            let cfg = ModelConfig {
                tied,
                shortlist: 3,
                ..with_positions(tiny(cell, Input::Tokens, Head::EveryStep, 7))
            };
            let model = check_token_model(&cfg, b, t, masked, 9);
            for r in [&model.layout.rare_w, &model.layout.rare_b] {
                let r = r.clone().expect("a shortlist adds the rare class");
                assert!(model.grads[r].iter().any(|&g| g.abs() > 1e-6));
            }
        }
    }
    // the rare class adds one row and one bias
    let base = tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 50);
    let split = ModelConfig {
        shortlist: 10,
        ..base.clone()
    };
    assert_eq!(split.num_params() - base.num_params(), 5 + 1);
    for bad in [50, 60] {
        let cfg = ModelConfig {
            shortlist: bad,
            ..base.clone()
        };
        assert!(cfg.validate().is_err(), "shortlist {bad} of 50");
    }
    let dense = ModelConfig {
        shortlist: 2,
        ..tiny(Cell::Lstm, Input::Dense { dim: 4 }, Head::LastStep, 3)
    };
    assert!(dense.validate().is_err());
}

#[test]
fn a_reset_puts_line_and_column_back_and_keeps_the_form() {
    let cfg = with_positions(tiny(Cell::Rnn, Input::Tokens, Head::EveryStep, 7));
    let kinds = pos_kinds(&cfg);
    let mut place = Place::default();
    // a title of two characters, BEGIN, the form tag, a character, a
    // line end, BEGIN again
    let got: Vec<[u32; 3]> = [3u32, 4, 1, 6, 3, 5, 1]
        .iter()
        .map(|&id| place.advance(kinds[id as usize], 3))
        .collect();
    let want = [
        [0, 1, 0],
        [0, 2, 0],
        [0, 0, 0],
        [0, 0, 1],
        [0, 1, 1],
        [1, 0, 1],
        [0, 0, 1],
    ];
    assert_eq!(got, want);
}

#[test]
fn places_count_lines_and_characters_read() {
    let cfg = with_positions(tiny(Cell::Rnn, Input::Tokens, Head::EveryStep, 7));
    let kinds = pos_kinds(&cfg);
    let mut place = Place::default();
    // BEGIN, the form tag, two characters, a line end, a character, PAD,
    // then past the cap
    let got: Vec<[u32; 3]> = [1u32, 6, 3, 4, 5, 3, 0, 5, 5, 2, 3, 3]
        .iter()
        .map(|&id| place.advance(kinds[id as usize], 3))
        .collect();
    let want: Vec<[u32; 3]> = [
        [0, 0, 0],
        [0, 0, 1],
        [0, 1, 1],
        [0, 2, 1],
        [1, 0, 1],
        [1, 1, 1],
        [1, 1, 1],
        [2, 0, 1],
        [2, 0, 1],
        [2, 1, 1],
        [2, 2, 1],
        [2, 2, 1],
    ]
    .to_vec();
    assert_eq!(got, want);
    // id 2 is not silent here, so it counted as a character above
    assert_eq!(
        place,
        Place {
            line: 3,
            col: 3,
            form: 1,
            since_reset: 6,
            titled: false
        }
    );
}

#[test]
fn dense_classifier_gradients_match_finite_differences() {
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        let cfg = tiny(cell, Input::Dense { dim: 4 }, Head::LastStep, 3);
        let mut rng = Rng::new(2);
        let mut model = Model::new(cfg.clone(), &mut rng);
        let (b, t) = (3, 5);
        let x: Vec<f32> = (0..b * t * 4).map(|_| rng.normal()).collect();
        let labels = vec![0u32, 2, 1];
        model.zero_grad();
        let (sum, _) = model.forward_backward_dense(&x, &labels, b, t, &mut rng);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let none = RefMasks::default();
        let f =
            |p: &[f64]| model_loss_ref(&cfg, p, RefInput::Dense(&x64), &labels, &[], b, t, &none);
        let want = f(&model.params.iter().map(|&v| v as f64).collect::<Vec<_>>());
        assert!(
            (sum / b as f64 - want).abs() < 1e-5,
            "{cell}: loss {} vs reference {want}",
            sum / b as f64
        );
        grad_check(&mut model, &f, &format!("{cell} dense"));
        // predictions are the softmax of the same logits
        let mut probs = vec![0.0f32; b * 3];
        model.predict_dense(&x, b, t, &mut probs);
        let nll: f64 = labels
            .iter()
            .enumerate()
            .map(|(k, &l)| -(probs[k * 3 + l as usize] as f64).ln())
            .sum();
        assert!(
            (nll - sum).abs() < 1e-4,
            "predict_dense disagrees with the loss: {nll} vs {sum}"
        );
    }
}

#[test]
fn step_weights_give_the_plain_steps_logits_at_batch_1_and_above() {
    // Batch 1 reads the half-precision copy, which exists only for weights
    // exact in f16; batch 4 reads the transposed copy through a GEMM.
    for (cell, round) in [
        (Cell::Lstm, true),
        (Cell::Gru, true),
        (Cell::Rnn, true),
        (Cell::Lstm, false),
    ] {
        let cfg = ModelConfig {
            cell,
            layers: 2,
            embed: 8,
            hidden: 20,
            vocab: 13,
            tied: cell == Cell::Gru,
            ..ModelConfig::default()
        };
        let mut rng = Rng::new(11);
        let mut model = Model::new(cfg, &mut rng);
        if round {
            for p in &mut model.params {
                *p = half::f16::from_f32(*p).to_f32();
            }
        }
        for b in [1, crate::engine::STEP_GEMM_MIN_ROWS] {
            let wt = model.step_weights();
            let (mut plain, mut fast) = (model.new_state(b), model.new_state(b));
            let (mut want, mut got) = (vec![0.0f32; b * 13], vec![0.0f32; b * 13]);
            for t in 0..6u32 {
                let tokens: Vec<u32> = (0..b as u32).map(|r| (t * 5 + r * 3) % 13).collect();
                model.step(&mut plain, &tokens, &mut want);
                model.step_with(Some(&wt), &mut fast, &tokens, Some(&mut got));
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "{cell} b {b} t {t}: {g} vs {w}");
                }
            }
            let has_half = wt.half.get().is_some_and(|h| h.is_some());
            assert_eq!(has_half, b == 1 && round, "{cell} b {b} rounded {round}");
            assert_eq!(wt.t.get().is_some(), b > 1, "{cell} b {b}");
        }
    }
}

#[test]
fn step_reproduces_the_batch_forward() {
    for (cell, shortlist) in [
        (Cell::Lstm, 0),
        (Cell::Gru, 0),
        (Cell::Rnn, 0),
        (Cell::Lstm, 4),
        (Cell::Gru, 6),
    ] {
        let cfg = ModelConfig {
            cell,
            shortlist,
            layers: 3,
            embed: 6,
            hidden: 9,
            vocab: 11,
            positions: (cell != Cell::Rnn).then(|| Positions {
                size: 4,
                line_ends: vec![7, 8],
                silent: vec![0, 1, 2],
                forms: if cell == Cell::Lstm {
                    vec![9, 10]
                } else {
                    Vec::new()
                },
                resets: vec![1],
                title: cell != Cell::Gru,
            }),
            tied: cell == Cell::Gru,
            ..ModelConfig::default()
        };
        let mut rng = Rng::new(3);
        let mut model = Model::new(cfg.clone(), &mut rng);
        randomize_title(&mut model, &mut rng);
        let (b, t) = (5, 12);
        let mut bt = batch(b, t, 11, false, &mut rng);
        // a title (BEGIN 3 4 BEGIN) in a row of its own; the rest are random
        bt.inputs[..4].copy_from_slice(&[1, 3, 4, 1]);
        let (want, _) = model.loss(&bt);
        let mut state = model.new_state(b);
        let mut logits = vec![0.0f32; b * 11];
        let mut got = 0.0f64;
        for tt in 0..t {
            let tokens: Vec<u32> = (0..b).map(|bb| bt.inputs[bb * t + tt]).collect();
            model.step(&mut state, &tokens, &mut logits);
            if shortlist > 0 {
                // a two-level head's step gives log-probabilities
                for row in logits.chunks_exact(11) {
                    let total: f64 = row.iter().map(|&l| (l as f64).exp()).sum();
                    assert!((total - 1.0).abs() < 1e-5, "{cell}: Σ p = {total}");
                }
            }
            softmax_rows(&mut logits, 11);
            for bb in 0..b {
                got -= (logits[bb * 11 + bt.targets[bb * t + tt] as usize] as f64).ln();
            }
        }
        assert!(
            (got - want).abs() < 1e-4 * want,
            "{cell} shortlist {shortlist}: step loss {got} vs forward loss {want}"
        );
    }
}

#[test]
fn dropout_changes_training_loss_but_not_evaluation() {
    let cfg = ModelConfig {
        dropout: 0.5,
        ..tiny(Cell::Lstm, Input::Tokens, Head::EveryStep, 7)
    };
    let mut rng = Rng::new(4);
    let mut model = Model::new(cfg, &mut rng);
    let bt = batch(3, 4, 7, false, &mut rng);
    let (a, _) = model.loss(&bt);
    let (b, _) = model.loss(&bt);
    assert_eq!(a, b);
    let (c, _) = model.forward_backward(&bt, &mut rng);
    assert_ne!(a, c);
    assert!(model.grads.iter().all(|g| g.is_finite()));
}

#[test]
fn dropout_gradients_match_finite_differences_of_the_same_masks() {
    // the masks come from the rng, so a fixed seed gives the same masks for every evaluation
    let cfg = ModelConfig {
        dropout: 0.3,
        ..tiny(Cell::Gru, Input::Tokens, Head::EveryStep, 7)
    };
    let mut rng = Rng::new(5);
    let mut model = Model::new(cfg, &mut rng);
    let bt = batch(2, 3, 7, true, &mut rng);
    model.zero_grad();
    model.forward_backward(&bt, &mut Rng::new(9));
    let ana = model.grads.clone();
    let params = model.params.clone();
    let eps = 1e-2f32;
    // layer-1 weights sit behind the dropout; check a spread of them in f32 with a loose tolerance
    let r = model.layout.layers[1][0].clone();
    for k in r.step_by(7) {
        let mut at = |v: f32| {
            model.params.copy_from_slice(&params);
            model.params[k] = v;
            let (s, c) = model.forward_backward(&bt, &mut Rng::new(9));
            s / c
        };
        let num = (at(params[k] + eps) - at(params[k] - eps)) / (2.0 * eps as f64);
        assert!(
            (num - ana[k] as f64).abs() < 2e-3 + 2e-2 * num.abs(),
            "[{k}] numeric {num} analytic {}",
            ana[k]
        );
    }
}

/// Dropout on the embedding and the top layer's output (with and without
/// dropout between the layers): the f64 reference, given the masks the
/// forward drew, against the loss and every gradient.
#[test]
fn input_and_output_dropout_gradients_match_the_reference_with_the_same_masks() {
    let base = |cell| ModelConfig {
        dropout_in: 0.4,
        dropout_out: 0.3,
        ..tiny(cell, Input::Tokens, Head::EveryStep, 7)
    };
    let cases = [
        (
            ModelConfig {
                dropout: 0.3,
                tied: true,
                ..with_title(base(Cell::Lstm))
            },
            3,
            4,
        ),
        (
            ModelConfig {
                dropout_in: 0.0,
                ..base(Cell::Rnn)
            },
            2,
            5,
        ),
        (
            ModelConfig {
                dropout_out: 0.0,
                tied: true,
                ..base(Cell::Lstm)
            },
            2,
            5,
        ),
        // 128 rows: the head splits over threads, with a shortlist
        (
            ModelConfig {
                shortlist: 3,
                ..base(Cell::Gru)
            },
            16,
            8,
        ),
    ];
    for (cfg, b, t) in cases {
        let mut rng = Rng::new(11);
        let mut model = Model::new(cfg.clone(), &mut rng);
        randomize_title(&mut model, &mut rng);
        let bt = batch(b, t, cfg.vocab, true, &mut rng);
        model.zero_grad();
        let (sum, count) = model.forward_backward(&bt, &mut rng);
        let (n0, n) = (t * b * cfg.input_width(), t * b * cfg.hidden);
        let a = &model.acts;
        assert_eq!(a.in_dropped, cfg.dropout_in > 0.0);
        assert_eq!(a.out_dropped, cfg.dropout_out > 0.0);
        let site = |on: bool, m: &[f32], n: usize| match on {
            true => m[..n].to_vec(),
            false => Vec::new(),
        };
        let input = site(a.in_dropped, &a.x0_mask, n0);
        let output = site(a.out_dropped, &a.top_mask, n);
        let between: Vec<Vec<f32>> = (1..cfg.layers)
            .map(|l| match cfg.dropout > 0.0 {
                true => a.layers[l].mask[..n].to_vec(),
                false => Vec::new(),
            })
            .collect();
        for m in [&input, &output] {
            assert!(m.is_empty() || m.contains(&0.0) && m.iter().any(|&v| v > 1.0));
        }
        let masks = RefMasks {
            input: &input,
            between: between.iter().map(|v| &v[..]).collect(),
            output: &output,
        };
        let f = |p: &[f64]| {
            model_loss_ref(
                &cfg,
                p,
                RefInput::Tokens(&bt.inputs),
                &bt.targets,
                &bt.mask,
                b,
                t,
                &masks,
            )
        };
        let want = f(&model.params.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let what = format!(
            "{} dropout in {} out {} B={b} T={t}",
            cfg.cell, cfg.dropout_in, cfg.dropout_out
        );
        assert!(
            (sum / count - want).abs() < 1e-5,
            "{what}: loss {} vs reference {want}",
            sum / count
        );
        grad_check(&mut model, &f, &what);
        // evaluation draws no masks
        let (l1, _) = model.loss(&bt);
        assert!(!model.acts.in_dropped && !model.acts.out_dropped);
        let undropped = model_loss_ref(
            &cfg,
            &model.params.iter().map(|&x| x as f64).collect::<Vec<_>>(),
            RefInput::Tokens(&bt.inputs),
            &bt.targets,
            &bt.mask,
            b,
            t,
            &RefMasks::default(),
        );
        assert!((l1 / count - undropped).abs() < 1e-5, "{what}: eval loss");
    }
    let dense = tiny(Cell::Lstm, Input::Dense { dim: 4 }, Head::LastStep, 3);
    for (p_in, p_out) in [(0.1, 0.0), (0.0, 0.1)] {
        let bad = ModelConfig {
            dropout_in: p_in,
            dropout_out: p_out,
            ..dense.clone()
        };
        assert!(bad.validate().is_err());
    }
}

#[test]
fn memorises_a_tiny_corpus() {
    // three short "poems" over an 8-symbol alphabet, learned to near-zero loss; each
    // starts with its own symbol (given as the first input) so every target is determined
    let seqs: [&[u32]; 3] = [
        &[4, 5, 6, 7, 4, 5, 6],
        &[5, 7, 6, 4, 6, 7, 7],
        &[6, 4, 4, 5, 7, 5, 4],
    ];
    let t = 7;
    let mut inputs = Vec::new();
    let mut targets = Vec::new();
    for s in seqs {
        inputs.extend_from_slice(s);
        targets.extend_from_slice(&s[1..]);
        targets.push(2); // END
    }
    let bt = Batch {
        b: 3,
        t,
        inputs,
        targets,
        mask: vec![1.0; 3 * t],
    };
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        let cfg = ModelConfig {
            cell,
            layers: 2,
            embed: 8,
            hidden: 24,
            vocab: 8,
            ..ModelConfig::default()
        };
        let mut rng = Rng::new(6);
        let mut model = Model::new(cfg, &mut rng);
        let mut adam = Adam::new(model.params.len(), 0.0);
        for _ in 0..300 {
            model.zero_grad();
            model.forward_backward(&bt, &mut rng);
            adam.step(&mut model.params, &model.grads, 0.01);
        }
        let (s, c) = model.loss(&bt);
        assert!(
            s / c < 0.05,
            "{cell}: loss per token after 300 steps is {}",
            s / c
        );
    }
}

#[test]
fn from_params_checks_the_count_and_tensors_follow_the_table() {
    let cfg = ModelConfig::default();
    let model = Model::new(cfg.clone(), &mut Rng::new(0));
    assert_eq!(model.params.len(), cfg.num_params());
    let names: Vec<String> = model.tensors().into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names[..3],
        ["embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    );
    assert_eq!(names.last().unwrap(), "proj.bias");
    // forget-gate bias starts at 1 (b_ih) + 0 (b_hh)
    let b_ih = model.tensors()[3].2;
    assert_eq!(&b_ih[128..256], &[1.0; 128][..]);
    assert!(Model::from_params(cfg.clone(), vec![0.0; 5]).is_err());
    let again = Model::new(cfg.clone(), &mut Rng::new(0));
    assert_eq!(
        model.params, again.params,
        "init is not deterministic from the rng"
    );
    assert!(Model::from_params(cfg, model.params.clone()).is_ok());
    assert!("gru".parse::<Cell>().is_ok() && "xyz".parse::<Cell>().is_err());
}
