//! The command line: clap definitions of what the user typed, and the glue
//! that turns them into validated settings and calls the library.
//!
//! Each subcommand has its own file holding its `Args` (what the user typed,
//! with help text giving units and defaults), its `run`, and its tests. Errors
//! are printed once, as `shiren: <error chain on one line>`.
//!
//! Exit codes: 0 success; 1 an error (bad input, a failed fetch, a corrupt
//! checkpoint: the message says what to do); 2 a usage error (bad flag).
//! `shiren check` differs, as a checker should: 1 means a rule is broken,
//! 2 that the input cannot be checked (see [`Exit`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bench;
pub mod chat;
pub mod check;
pub mod check_tune;
pub mod corpus;
pub mod corpus_export;
pub mod eval;
pub mod export;
pub mod hints;
pub mod import;
pub mod mnist;
pub mod score;
pub mod serve;
pub mod train;
pub mod train_init;
pub mod tunes;
pub mod write;

/// 诗人 — learns to write Chinese classical poetry with a character-level RNN, on the CPU.
#[derive(Parser, Debug)]
#[command(name = "shiren", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Where fetched data (corpus, rhyme table, MNIST) is cached [default: $SHIREN_DATA, else ~/.cache/shiren]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Worker threads for the numeric kernels [default: all cores]
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Say more about what is happening (backoffs, counts, timings) on stderr
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fetch the chinese-poetry collection and report on a corpus
    Corpus(corpus::Args),
    /// Train a character language model on a corpus
    Train(train::Args),
    /// Write poems: first words, acrostics, templates, rewritten lines, fixed forms, rhyme and tones
    Write(write::Args),
    /// Check a poem's 格律: tones, rhyme, 粘 and 对, 孤平, with the model's suggestions
    Check(check::Args),
    /// The interactive prompt (the same as `shiren write -i`)
    Chat(write::Args),
    /// Report card of a model: perplexity, form, rhyme, tones, diversity, copying
    Eval(eval::Args),
    /// Log-probability and perplexity of every poem in a file, as it is
    Score(score::Args),
    /// Write a model for PyTorch: weights, config, vocabulary, module, test vectors
    Export(export::Args),
    /// Read a PyTorch model (safetensors state dict, config, vocabulary) as a checkpoint
    Import(import::Args),
    /// Measure training and sampling speed, with PyTorch side by side when installed
    Bench(bench::Args),
    /// The course's other model: an LSTM reading MNIST digits row by row
    Mnist(mnist::Args),
    /// Serve a web page that writes poems
    Serve(serve::Args),
    /// Ci tunes and their patterns (词谱), derived from the Song ci
    Tunes(tunes::Args),
}

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout with exit 0, and usage errors on
            // stderr with exit 2; those quote what was typed, so escape it.
            if e.use_stderr() {
                let text = e.render().to_string();
                let lines: Vec<String> = text.lines().map(escape_controls).collect();
                let _ = writeln!(std::io::stderr(), "{}", lines.join("\n").trim_end());
            } else {
                let _ = e.print();
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match dispatch(cli).map_err(hints::with_flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            match err.downcast_ref::<Exit>() {
                Some(Exit::Quiet(code)) => return ExitCode::from(*code),
                Some(Exit::BadInput(msg)) => {
                    let _ = writeln!(std::io::stderr(), "shiren: {}", escape_controls(msg));
                    return ExitCode::from(2);
                }
                None => {}
            }
            let _ = writeln!(std::io::stderr(), "shiren: {}", one_line(&err));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, as `{err:#}` writes them, less any
/// cause the line already holds (an io::Error quoted in its wrapper's message
/// and then chained as its source said "Permission denied" twice), with
/// control characters from the input escaped so none reaches the terminal.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if msg.contains(&s) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&s);
    }
    escape_controls(&msg)
}

/// `s` with each control character (ESC, newlines, …) written as an escape (`\u{1b}`).
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    if let Some(n) = cli.global.threads {
        crate::limits::check_threads(n)?;
        // Ignore the error when a pool already exists (tests call `dispatch` repeatedly).
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let g = &cli.global;
    match cli.command {
        Command::Corpus(a) => corpus::run(a, g),
        Command::Train(a) => train::run(a, g),
        Command::Write(a) => write::run(a, g),
        Command::Check(a) => check::run(a, g),
        Command::Chat(a) => chat::run(a, g),
        Command::Eval(a) => eval::run(a, g),
        Command::Score(a) => score::run(a, g),
        Command::Export(a) => export::run(a, g),
        Command::Import(a) => import::run(a, g),
        Command::Bench(a) => bench::run(a, g),
        Command::Mnist(a) => mnist::run(a, g),
        Command::Serve(a) => serve::run(a, g),
        Command::Tunes(a) => tunes::run(a, g),
    }
}

/// An outcome with its own exit code, returned as an error so that it
/// passes through `?` and `dispatch` like one.
#[derive(Debug, thiserror::Error)]
pub enum Exit {
    /// Nothing more to print: exit with this code (`shiren check` found a broken rule: 1).
    #[error("exit status {0}")]
    Quiet(u8),
    /// Input that cannot be checked: print the line, exit 2.
    #[error("{0}")]
    BadInput(String),
}

/// A closed stdout (`shiren write | head`) is not an error, as in ripgrep.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Parses `args` (without the program name) into a subcommand's flags, as
/// the `shiren NAME` subcommand would: the tests of each subcommand's flags.
#[cfg(test)]
pub(crate) fn parse_args<A: clap::Args>(
    name: &'static str,
    args: &[&str],
) -> Result<A, clap::Error> {
    let cmd = A::augment_args(clap::Command::new(name));
    let m = cmd.try_get_matches_from(std::iter::once(name).chain(args.iter().copied()))?;
    A::from_arg_matches(&m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn errors_print_each_cause_once_and_no_control_characters() {
        #[derive(Debug, thiserror::Error)]
        #[error("{path}: {source}")]
        struct Io {
            path: String,
            source: std::io::Error,
        }
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err = anyhow::Error::new(Io {
            path: "poems.txt".into(),
            source: io,
        })
        .context("reading the corpus");
        let line = one_line(&err);
        assert_eq!(line.matches("ermission denied").count(), 1, "{line}");
        assert!(
            line.starts_with("reading the corpus: poems.txt: "),
            "{line}"
        );
        let err = anyhow::anyhow!("unknown tune `\x1b[31m红\n`");
        assert_eq!(one_line(&err), "unknown tune `\\u{1b}[31m红\\n`");
    }
}
