//! `shiren corpus fetch|stats`, and [`CorpusArgs`], the "which corpus" flags
//! that every command reading poems (train, eval, …) flattens into its own
//! `Args` and resolves with [`CorpusArgs::resolve`].
//!
//! This file is glue: the work is in `crate::corpus`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;

use super::Global;
use crate::batch::Batcher;
use crate::cache;
use crate::corpus::{self, Collection, Form, Format, LoadOptions, Script, Source};
use crate::vocab::Vocab;

/// Which corpus to read and how to clean it. Flatten it into a command's `Args`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct CorpusArgs {
    /// Named collection from chinese-poetry (fetched on first use) [default: tang]
    #[arg(long, value_enum, value_name = "NAME", conflicts_with = "file")]
    pub corpus: Option<Collection>,
    /// Your own poems: a file or folder (chinese-poetry JSON, poems.txt `title:content` lines, or plain text with blank lines between poems)
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Force the format of --file instead of detecting it from extension and content
    #[arg(long, value_enum, value_name = "FORMAT", requires = "file")]
    pub format: Option<Format>,
    /// Script of the poems: simplified (converted with OpenCC) or traditional (as the source has it)
    #[arg(long, value_name = "SCRIPT", default_value = "simplified")]
    pub script: Script,
    /// Drop poems shorter than this many characters, punctuation included
    #[arg(long, value_name = "N", default_value_t = LoadOptions::default().min_len)]
    pub min_len: usize,
    /// Drop poems longer than this many characters, punctuation included (七律 is 64)
    #[arg(long, value_name = "N", default_value_t = LoadOptions::default().max_len)]
    pub max_len: usize,
    /// Characters seen fewer times than this become the unknown token in the vocabulary
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_count: usize,
    /// Skip and count malformed poems.txt lines instead of stopping at the first
    #[arg(long)]
    pub skip_bad: bool,
}

impl Default for CorpusArgs {
    fn default() -> Self {
        let d = LoadOptions::default();
        CorpusArgs {
            corpus: None,
            file: None,
            format: None,
            script: d.script,
            min_len: d.min_len,
            max_len: d.max_len,
            min_count: 1,
            skip_bad: false,
        }
    }
}

impl CorpusArgs {
    /// Checks the flags and turns them into what `corpus::load` takes.
    pub fn resolve(&self) -> anyhow::Result<(Source, LoadOptions)> {
        let source = match &self.file {
            Some(path) => {
                if !path.exists() {
                    return Err(corpus::CorpusError::NotFound {
                        path: path.display().to_string(),
                    }
                    .into());
                }
                Source::File {
                    path: path.clone(),
                    format: self.format,
                }
            }
            None => Source::Collection(self.corpus.unwrap_or(Collection::Tang)),
        };
        anyhow::ensure!(
            self.min_len <= self.max_len,
            "--min-len {} is above --max-len {}: no poem could pass",
            self.min_len,
            self.max_len
        );
        let opts = LoadOptions {
            script: self.script,
            min_len: self.min_len,
            max_len: self.max_len,
            skip_bad: self.skip_bad,
            ..LoadOptions::default()
        };
        Ok((source, opts))
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Fetch chinese-poetry@2.0.1 with npm, verify it and unpack it into the data directory (once)
    Fetch,
    /// Read and clean a corpus and report what each step did
    Stats(StatsArgs),
    /// Build the character vocabulary of a corpus's training part, or check a saved one
    Vocab(VocabArgs),
    /// Write the cleaned, encoded, split corpus for PyTorch: data.safetensors (token ids, offsets), vocab.json, corpus.json
    Export(super::corpus_export::ExportArgs),
}

#[derive(clap::Args, Debug)]
pub struct VocabArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Write the vocabulary as JSON to this file
    #[arg(long, value_name = "FILE", conflicts_with = "check")]
    pub save: Option<PathBuf>,
    /// Read a saved vocabulary (e.g. a checkpoint's vocab.json) and report on it instead of building one
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// (With -v, the first few records each rule dropped are listed by file and line.)
    /// Batch size for the padding figure (poems per batch)
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,
    /// How many of the most frequent characters to list
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub top: usize,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let data_dir = cache::data_dir(g.data_dir.as_deref())?;
    match args.command {
        Cmd::Fetch => fetch(&data_dir),
        Cmd::Stats(a) => stats(&a, &data_dir, g.verbose),
        Cmd::Vocab(a) => vocab(&a, &data_dir),
        Cmd::Export(a) => super::corpus_export::run(&a, &data_dir),
    }
}

fn fetch(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let dest = corpus::fetch::install_path(data_dir);
    let was_there = dest.is_dir();
    if !was_there {
        writeln!(
            out,
            "fetching chinese-poetry@{} with npm (85 MB, once)",
            corpus::fetch::VERSION
        )?;
    }
    let package = corpus::fetch::ensure_package(data_dir)
        .with_context(|| format!("fetching chinese-poetry@{}", corpus::fetch::VERSION))?;
    if was_there {
        writeln!(
            out,
            "chinese-poetry {} already in {}",
            corpus::fetch::VERSION,
            package.display()
        )?;
    } else {
        writeln!(
            out,
            "fetched chinese-poetry {} into {} in {:.1}s",
            corpus::fetch::VERSION,
            package.display(),
            start.elapsed().as_secs_f64()
        )?;
    }
    Ok(())
}

fn stats(a: &StatsArgs, data_dir: &std::path::Path, verbose: bool) -> anyhow::Result<()> {
    let (source, opts) = a.corpus.resolve()?;
    let start = Instant::now();
    let c = corpus::load(&source, &opts, data_dir).with_context(|| format!("reading {source}"))?;
    let elapsed = start.elapsed().as_secs_f64();
    // Written with `?` so a closed pipe (`| head`) ends quietly instead of panicking.
    let mut out = std::io::stdout().lock();
    let s = &c.stats;
    let script = match opts.script {
        Script::Simplified => "simplified",
        Script::Traditional => "traditional",
    };
    writeln!(out, "corpus      {source} ({script}, {} files)", s.files)?;
    writeln!(out, "read        {:>8}", s.read)?;
    for (rule, n) in &s.dropped {
        writeln!(
            out,
            "  dropped   {n:>8}  {:<11} {}",
            rule.name(),
            rule.describe()
        )?;
        if verbose {
            for e in s.examples_of(*rule) {
                writeln!(out, "{:>32}e.g. {e}", "")?;
            }
        }
    }
    writeln!(out, "kept        {:>8}", s.kept)?;
    let titles = crate::title::Stats::of(c.poems.iter().map(|p| p.title.as_str()));
    writeln!(out, "{titles}")?;
    let [train, valid, test] = corpus::split(c.poems.iter().map(|p| p.text.as_str()), |t| *t);
    writeln!(
        out,
        "split       train {} / valid {} / test {}",
        train.len(),
        valid.len(),
        test.len()
    )?;
    // The padding an epoch of the training part would carry, bucketed by length.
    let v = Vocab::build(train.iter().copied(), a.corpus.min_count);
    let batcher = Batcher::new(train.iter().map(|t| v.encode(t)).collect(), a.batch_size);
    writeln!(
        out,
        "padding     {:.1}% of an epoch at batch size {} ({} batches, {} target tokens)",
        100.0 * batcher.padding_fraction(),
        a.batch_size,
        batcher.num_batches(),
        batcher.num_tokens()
    )?;

    let mut freq: HashMap<char, usize> = HashMap::new();
    let mut han = 0usize;
    for p in &c.poems {
        for ch in p.text.chars().filter(|&ch| is_han(ch)) {
            han += 1;
            *freq.entry(ch).or_insert(0) += 1;
        }
    }
    writeln!(out, "han chars   {han:>8}")?;
    writeln!(out, "distinct    {:>8}", freq.len())?;

    let mut forms = [0usize; Form::ALL.len()];
    for p in &c.poems {
        forms[Form::of_text(&p.text) as usize] += 1;
    }
    writeln!(
        out,
        "forms       {:>8}  {:>7}  {:>7}",
        "kept", "of kept", "of read"
    )?;
    for f in Form::ALL {
        let read_n = s.forms_read[f as usize].1;
        writeln!(
            out,
            "  {}      {:>8}  {:>6.1}%  {:>6.1}%",
            // In a corpus, poems of no fixed form are the other poems (古诗, 词).
            if f == Form::Free {
                "其他"
            } else {
                f.name_zh()
            },
            forms[f as usize],
            100.0 * forms[f as usize] as f64 / s.kept.max(1) as f64,
            100.0 * read_n as f64 / s.read.max(1) as f64
        )?;
    }
    let mut top: Vec<(char, usize)> = freq.into_iter().collect();
    top.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let list: Vec<String> = top
        .iter()
        .take(a.top)
        .map(|(ch, n)| format!("{ch}{n}"))
        .collect();
    writeln!(out, "top chars   {}", list.join(" "))?;
    writeln!(out, "elapsed     {elapsed:.2}s")?;
    Ok(())
}

fn vocab(a: &VocabArgs, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(path) = &a.check {
        let v = Vocab::load(path)?;
        let first: String = v.chars().iter().take(20).collect();
        writeln!(
            out,
            "{}: {} ids ({} characters + 4 reserved), min count {}, most frequent {first}",
            path.display(),
            v.len(),
            v.chars().len(),
            v.min_count()
        )?;
        return Ok(());
    }
    let (source, opts) = a.corpus.resolve()?;
    let c = corpus::load(&source, &opts, data_dir).with_context(|| format!("reading {source}"))?;
    // Built from the training part only, as `train` does, so validation measures unseen text honestly.
    let [train, _, _] = corpus::split(c.poems.iter().map(|p| p.text.as_str()), |t| *t);
    let v = Vocab::build(train.iter().copied(), a.corpus.min_count);
    let all: Vec<u32> = c.poems.iter().flat_map(|p| v.encode(&p.text)).collect();
    let unk = all.iter().filter(|&&id| id == Vocab::UNK).count();
    writeln!(
        out,
        "vocabulary  {} ids ({} characters + 4 reserved) from {} training poems, min count {}",
        v.len(),
        v.chars().len(),
        train.len(),
        a.corpus.min_count
    )?;
    writeln!(
        out,
        "unknown     {:.3}% of all characters",
        100.0 * unk as f64 / all.len().max(1) as f64
    )?;
    if let Some(path) = &a.save {
        v.save(path)?;
        writeln!(out, "saved       {}", path.display())?;
    }
    Ok(())
}

/// CJK unified ideographs (with extension A and the compatibility block).
pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        c: CorpusArgs,
    }

    #[test]
    fn corpus_args_default_to_tang_and_resolve_options() {
        let t = T::try_parse_from(["t"]).unwrap();
        assert_eq!(t.c, CorpusArgs::default());
        let (src, opts) = t.c.resolve().unwrap();
        assert_eq!(src, Source::Collection(Collection::Tang));
        assert_eq!(opts, LoadOptions::default());
        let t = T::try_parse_from([
            "t",
            "--corpus",
            "songci",
            "--script",
            "traditional",
            "--max-len",
            "80",
        ])
        .unwrap();
        let (src, opts) = t.c.resolve().unwrap();
        assert_eq!(src, Source::Collection(Collection::Songci));
        assert_eq!((opts.script, opts.max_len), (Script::Traditional, 80));
    }

    #[test]
    fn corpus_and_file_exclude_each_other_and_a_missing_file_is_named() {
        assert!(T::try_parse_from(["t", "--corpus", "tang", "--file", "x"]).is_err());
        assert!(T::try_parse_from(["t", "--format", "text"]).is_err());
        let t = T::try_parse_from(["t", "--file", "/no/such/poems.txt", "--format", "poems-txt"])
            .unwrap();
        let msg = t.c.resolve().unwrap_err().to_string();
        assert!(
            msg.contains("/no/such/poems.txt") && msg.contains("no such file"),
            "{msg}"
        );
    }
}
