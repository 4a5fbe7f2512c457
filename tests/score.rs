//! `shiren score`, `shiren export --torch` and `shiren import` on the shipped model.

use crate::hay;
use crate::macros::{Dir, TestCommand};

/// The shipped model, from the repository.
fn shipped() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/models/tang-small").to_string()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

shiren_test!(
    score_gives_every_poem_and_the_total,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("poems.txt", hay::POEMS_TXT);
        let out = json(
            &cmd.args(["score", "poems.txt", "--json", "--model", &shipped()])
                .stdout(),
        );
        let poems = out["poems"].as_array().unwrap();
        // every poem of the file, none dropped, none split off
        assert_eq!(poems.len(), 4, "{out}");
        let (mut lp, mut tokens) = (0.0, 0);
        for p in poems {
            let (l, n) = (
                p["log_prob"].as_f64().unwrap(),
                p["tokens"].as_u64().unwrap(),
            );
            assert_eq!(n, p["chars"].as_u64().unwrap() + 1);
            assert!(l < 0.0 && (p["ppl"].as_f64().unwrap() - (-l / n as f64).exp()).abs() < 1e-6);
            lp += l;
            tokens += n;
        }
        let t = &out["total"];
        assert!((t["log_prob"].as_f64().unwrap() - lp).abs() < 1e-6);
        assert_eq!(t["tokens"].as_u64().unwrap(), tokens);
        assert_eq!(
            poems[0]["text"],
            "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
        );
    }
);

shiren_test!(
    score_converts_unless_told_not_to,
    |dir: Dir, mut cmd: TestCommand| {
        // 於 is left alone by --no-convert and made 于 by the conversion
        dir.create(
            "p.txt",
            "青山横北郭，白水绕东城。此地一为别，孤蓬万里征。於是\n",
        );
        let model = shipped();
        let conv = json(
            &cmd.args(["score", "p.txt", "--json", "--model", &model])
                .stdout(),
        );
        let kept = json(
            &dir.command()
                .args([
                    "score",
                    "p.txt",
                    "--json",
                    "--no-convert",
                    "--model",
                    &model,
                ])
                .stdout(),
        );
        let text = |v: &serde_json::Value| v["poems"][0]["text"].as_str().unwrap().to_string();
        assert!(text(&conv).ends_with("于是") && text(&kept).ends_with("於是"));
        assert_ne!(conv["total"]["log_prob"], kept["total"]["log_prob"]);
    }
);

shiren_test!(
    score_of_an_empty_file_is_one_clear_error,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("empty.txt", "\n\n");
        let err = cmd
            .args(["score", "empty.txt", "--model", &shipped()])
            .fails();
        contains_all!(err, "empty.txt", "no poems");
    }
);

shiren_test!(
    an_export_scores_as_the_model_it_came_from,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("poems.txt", hay::POEMS_TXT);
        cmd.args(["export", "--model", &shipped(), "--torch", "t"])
            .stdout();
        for f in [
            "model.safetensors",
            "config.json",
            "vocab.json",
            "modeling_shiren.py",
            "test_vectors.json",
        ] {
            assert!(dir.join("t").join(f).is_file(), "{f}");
        }
        let score = |model: &str| {
            json(
                &dir.command()
                    .args(["score", "poems.txt", "--json", "--model", model])
                    .stdout(),
            )["total"]["log_prob"]
                .as_f64()
                .unwrap()
        };
        // the shipped weights are F16, the export F32 of the same values
        assert_eq!(score("t"), score(&shipped()));
    }
);

shiren_test!(
    import_refuses_a_folder_without_weights_by_name,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create(
            "pt/config.json",
            r#"{"cell": "lstm", "layers": 1, "hidden": 8, "embed": 4}"#,
        );
        std::fs::copy(
            format!("{}/vocab.json", shipped()),
            dir.join("pt/vocab.json"),
        )
        .unwrap();
        dir.create("pt/pytorch_model.bin", "");
        let err = cmd.args(["import", "pt", "--out", "ck"]).fails();
        contains_all!(err, "pt", "pickled", "safetensors.torch.save_file");
    }
);
