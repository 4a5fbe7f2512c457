//! `shiren train --init-from`: a new run from the shipped model's weights.

use crate::macros::{Dir, TestCommand};

fn shipped() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/models/tang-small").to_string()
}

/// Four poems, one with a character (龘) the shipped vocabulary lacks.
const POEMS: &str = "静夜思:床前明月光，疑是地上霜。举头望明月，低头思故乡。
春晓：春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。
龘:龘龘龘龘龘，白日依山尽。黄河入海流，欲穷千里目。
登楼:更上一层楼，白日依山尽。黄河入海流，欲穷千里目。
";

fn total_loss(dir: &Dir, model: &str) -> f64 {
    let out = dir
        .command()
        .args(["score", "p.txt", "--json", "--model", model])
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["total"]["loss"].as_f64().unwrap()
}

shiren_test!(
    init_from_starts_at_the_models_weights_and_resumes,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("p.txt", POEMS);
        // a learning rate too small to move the weights: the run's model is the shipped one
        let out = cmd
            .args([
                "train",
                "--init-from",
                &shipped(),
                "--file",
                "p.txt",
                "--out",
                "run",
            ])
            .args(["--max-steps", "2", "--eval-interval", "2", "--batch", "2"])
            .args(["--lr", "1e-9", "--warmup", "1"])
            .output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        contains_all!(stderr, "5 of 96 characters", "commonest 龘", "read as UNK");
        let (start, end) = (total_loss(&dir, &shipped()), total_loss(&dir, "run/last"));
        assert!(
            (start - end).abs() < 1e-3,
            "shipped {start}, after 2 steps {end}"
        );
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("run/last/config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["model"]["hidden"], 384);
        assert_eq!(cfg["step"], 2);
        // and the run resumes like any other
        dir.command()
            .args(["train", "--resume", "run", "--max-steps", "4"])
            .output();
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("run/last/config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["step"], 4);
    }
);

shiren_test!(
    init_from_refuses_another_architecture_by_name,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("p.txt", POEMS);
        let err = cmd
            .args([
                "train",
                "--init-from",
                &shipped(),
                "--file",
                "p.txt",
                "--hidden",
                "64",
            ])
            .fails();
        contains_all!(err, "--hidden 64", "hidden 384", "--init-from keeps");
    }
);

shiren_test!(
    init_from_keeps_the_title_vector,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("p.txt", POEMS);
        let err = cmd
            .args(["train", "--init-from", &shipped(), "--file", "p.txt"])
            .args(["--title-vector", "false"])
            .fails();
        contains_all!(
            err,
            "--title-vector false",
            "has the title vector",
            "--init-from keeps"
        );
    }
);
