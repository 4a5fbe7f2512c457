//! Test helpers shared by every integration-test module.
//!
//! `shiren_test!(name, |dir: Dir, cmd: TestCommand| { … })` defines a test that
//! gets a fresh temporary directory and a ready `shiren` command whose data
//! directory is inside it (so no test touches the user's cache), as ripgrep's
//! `rgtest!` does. `eqnice!` compares strings and prints both in fenced blocks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh temporary directory, deleted when the test ends.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::Builder::new()
                .prefix("shiren-test-")
                .tempdir()
                .expect("temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `path` inside the directory.
    pub fn join(&self, path: &str) -> PathBuf {
        self.path().join(path)
    }

    /// Writes a file (creating folders), returning its path.
    pub fn create(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// The data directory the test command uses (`<dir>/data`).
    pub fn data_dir(&self) -> PathBuf {
        self.join("data")
    }

    /// A `shiren` command run in this directory, with its data dir inside it.
    pub fn command(&self) -> TestCommand {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shiren"));
        cmd.current_dir(self.path())
            .env("SHIREN_DATA", self.data_dir())
            .env_remove("RUST_BACKTRACE");
        TestCommand { cmd }
    }

    /// A `shiren` command that uses the real data directory ($SHIREN_DATA, else
    /// ~/.cache/shiren), for `#[ignore]`d tests on the real corpus: fetched data
    /// is then shared between runs instead of fetched into each temp dir.
    pub fn command_real_data(&self) -> TestCommand {
        let mut c = self.command();
        c.cmd.env_remove("SHIREN_DATA");
        if let Some(d) = std::env::var_os("SHIREN_DATA") {
            c.cmd.env("SHIREN_DATA", d);
        }
        c
    }
}

/// A `shiren` command with assertions on its outcome.
pub struct TestCommand {
    pub cmd: Command,
}

impl TestCommand {
    pub fn args<I, S>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg(&mut self, arg: impl AsRef<std::ffi::OsStr>) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    pub fn env(&mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> &mut TestCommand {
        self.cmd.env(k, v);
        self
    }

    pub fn output(&mut self) -> Output {
        self.cmd.output().expect("running the shiren binary")
    }

    /// Runs it, insists on success, returns stdout.
    pub fn stdout(&mut self) -> String {
        let out = self.output();
        assert!(
            out.status.success(),
            "expected success from {:?}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs it, insists on failure with exactly one line on stderr and no panic;
    /// returns that line.
    pub fn fails(&mut self) -> String {
        let out = self.output();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "expected failure from {:?}\nstdout:\n{}",
            self.cmd,
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
        assert!(lines[0].starts_with("shiren: "), "{stderr}");
        lines[0].to_string()
    }
}

/// Defines a test with a fresh [`Dir`] and its [`TestCommand`].
#[macro_export]
macro_rules! shiren_test {
    ($(#[$attr:meta])* $name:ident, $fun:expr) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            let dir = $crate::macros::Dir::new();
            let cmd = dir.command();
            #[allow(clippy::redundant_closure_call)]
            ($fun)(dir, cmd);
        }
    };
}

/// `assert_eq!` for text, printing both sides in fenced blocks.
#[macro_export]
macro_rules! eqnice {
    ($expected:expr, $got:expr) => {{
        let expected: &str = &$expected;
        let got: &str = &$got;
        if expected != got {
            panic!("\nexpected:\n```\n{expected}\n```\ngot:\n```\n{got}\n```\n");
        }
    }};
}

/// Asserts that `haystack` contains every needle, printing it otherwise.
#[macro_export]
macro_rules! contains_all {
    ($haystack:expr, $($needle:expr),+ $(,)?) => {{
        let h: &str = &$haystack;
        $( assert!(h.contains($needle), "expected {:?} in:\n{}", $needle, h); )+
    }};
}
