//! `shiren corpus fetch`: the chinese-poetry collection, by its pinned npm package.
//!
//! The package is fetched with the npm client (`npm pack chinese-poetry@2.0.1`)
//! into a temporary folder, checked against its published sha512 integrity,
//! and unpacked in Rust (tar + flate2) into `<data_dir>/chinese-poetry-2.0.1/`
//! through [`crate::cache::install_dir`], so an interrupted fetch leaves
//! nothing that a later run takes for whole, and a second fetch does nothing.
//! Only the `dist/` folders the collections and the prosody module use are
//! unpacked (about 260 MB of the 360 MB), and the 85 MB tarball is not kept.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::Collection;
use crate::cache;

pub const PACKAGE: &str = "chinese-poetry";
pub const VERSION: &str = "2.0.1";
/// The integrity npm publishes for chinese-poetry@2.0.1.
pub const INTEGRITY: &str =
    "sha512-KtYARvV7CWNtax0na9+Jn6PlhGgSoid7PWyDzXI4KsCEm2odZcqEQyval5koaLygZnM/EQ3lfJ//25K8p3uHNg==";

/// Where the unpacked package lives under `data_dir` (`…/package` holds `dist/`).
pub fn install_path(data_dir: &Path) -> PathBuf {
    data_dir.join(format!("{PACKAGE}-{VERSION}"))
}

/// Fetches, verifies and unpacks the package if it is not cached yet; returns
/// the `package/` folder (it has `dist/…`).
pub fn ensure_package(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dest = install_path(data_dir);
    cache::install_dir(&dest, |tmp| {
        // The tarball goes to a scratch folder beside the cache (same disk) and is
        // deleted when this returns: only the unpacked files are kept.
        let scratch = tempfile::Builder::new()
            .prefix(".chinese-poetry-tarball-")
            .tempdir_in(data_dir)
            .with_context(|| format!("{}: cannot create a temporary folder", data_dir.display()))?;
        let spec = format!("{PACKAGE}@{VERSION}");
        let out = cache::run_tool(
            scratch.path(),
            "npm",
            &["pack", &spec, "--silent"],
            "install Node.js with npm, then run `shiren corpus fetch` again",
        )?;
        let name = out
            .lines()
            .map(str::trim)
            .rfind(|l| l.ends_with(".tgz"))
            .unwrap_or("chinese-poetry-2.0.1.tgz")
            .to_string();
        let tarball = scratch.path().join(&name);
        anyhow::ensure!(
            tarball.is_file(),
            "`npm pack {spec}` wrote no {name} in {} (run it by hand to see why)",
            scratch.path().display()
        );
        cache::verify(&tarball, INTEGRITY)?;
        unpack(&tarball, tmp, Collection::dist_folders())
    })?;
    Ok(dest.join("package"))
}

/// Unpacks the package's top-level files and the named `dist/` folders of a
/// verified tarball into `into`. Entries outside `package/` or with `..` are refused.
pub fn unpack(tarball: &Path, into: &Path, dist_folders: &[&str]) -> anyhow::Result<()> {
    let file = std::fs::File::open(tarball).with_context(|| tarball.display().to_string())?;
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut n = 0usize;
    for entry in archive
        .entries()
        .with_context(|| format!("{}: not a tar.gz archive", tarball.display()))?
    {
        let mut entry = entry.with_context(|| format!("{}: corrupt archive", tarball.display()))?;
        let path = entry.path()?.into_owned();
        let parts: Vec<String> = path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let wanted = match parts.as_slice() {
            [top, _file] => top == "package",
            [top, dist, folder, ..] => {
                top == "package" && dist == "dist" && dist_folders.iter().any(|f| f == folder)
            }
            _ => false,
        };
        if !wanted || parts.iter().any(|p| p == "..") {
            continue;
        }
        // `unpack_in` refuses paths that would escape `into`.
        entry
            .unpack_in(into)
            .with_context(|| format!("{}: cannot unpack {}", tarball.display(), path.display()))?;
        n += 1;
    }
    anyhow::ensure!(
        n > 0,
        "{}: no package files in the archive",
        tarball.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a small .tgz shaped like the npm package.
    fn tiny_tarball(path: &Path) {
        let f = std::fs::File::create(path).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, body) in [
            ("package/package.json", "{}"),
            ("package/dist/quantangshi/poet.tang.0.json", "[]"),
            ("package/dist/rank/big.json", "[]"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn unpacks_only_the_wanted_folders() {
        let dir = tempfile::tempdir().unwrap();
        let tgz = dir.path().join("p.tgz");
        tiny_tarball(&tgz);
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(&tgz, &out, &["quantangshi"]).unwrap();
        assert!(out.join("package/package.json").is_file());
        assert!(out
            .join("package/dist/quantangshi/poet.tang.0.json")
            .is_file());
        assert!(!out.join("package/dist/rank").exists());
    }

    #[test]
    fn a_cached_package_is_not_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = install_path(dir.path()).join("package");
        std::fs::create_dir_all(&pkg).unwrap();
        // No npm is run: the folder is there, so this returns at once.
        assert_eq!(ensure_package(dir.path()).unwrap(), pkg);
    }
}
