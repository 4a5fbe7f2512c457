//! The poems: fetching the chinese-poetry collection, reading the three
//! source formats, cleaning, script conversion and tagging by form.
//!
//! One call, [`load`], runs the whole pipeline, like nanoGPT's `prepare.py`:
//! read every record of a [`Source`] ([`read`]), clean it and drop the bad
//! ones ([`clean`]), convert the survivors to the chosen script
//! ([`convert`]), then drop exact duplicates. Every step counts what it
//! did into [`Stats`], so `shiren corpus stats` can say how many records each
//! rule dropped. This module knows nothing of vocabularies, batches or models.

pub mod clean;
pub mod convert;
pub mod fetch;
pub mod forms;
pub mod read;
pub mod split;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use clean::Rule;
pub use convert::Script;
pub use forms::{split_lines, Form};
pub use read::Format;
pub use split::{part_of, split, Part};

/// One cleaned poem.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Poem {
    pub title: String,
    pub author: String,
    /// Cleaned, in the chosen script, full-width punctuation, e.g.
    /// "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。". Records from plain-text
    /// files may keep '\n' where a line ended without punctuation (lyrics).
    pub text: String,
    /// Where it came from: `path#index` (JSON), `path:line` (text formats).
    pub source: String,
}

/// The named collections inside the chinese-poetry package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Collection {
    /// 全唐诗: 57,607 Tang poems (traditional characters)
    Tang,
    /// 全宋诗: the Song shi (traditional characters)
    Song,
    /// 全宋词: 21,053 Song ci (simplified characters)
    Songci,
    /// 唐诗三百首: 320 Tang poems
    Tang300,
    /// 诗经: the Book of Songs
    Shijing,
    /// 楚辞: the Songs of Chu
    Chuci,
    /// 元曲: Yuan qu
    Yuanqu,
    /// 花间集: Five Dynasties ci
    Huajianji,
}

impl Collection {
    pub const ALL: [Collection; 8] = [
        Collection::Tang,
        Collection::Song,
        Collection::Songci,
        Collection::Tang300,
        Collection::Shijing,
        Collection::Chuci,
        Collection::Yuanqu,
        Collection::Huajianji,
    ];

    /// The name used on the command line (`--corpus tang`).
    pub fn name(self) -> &'static str {
        match self {
            Collection::Tang => "tang",
            Collection::Song => "song",
            Collection::Songci => "songci",
            Collection::Tang300 => "tang300",
            Collection::Shijing => "shijing",
            Collection::Chuci => "chuci",
            Collection::Yuanqu => "yuanqu",
            Collection::Huajianji => "huajianji",
        }
    }

    /// Folder under the package's `dist/`, and the file-name test for its poem files.
    fn layout(self) -> (&'static str, fn(&str) -> bool) {
        match self {
            Collection::Tang => ("quantangshi", |n| {
                n.starts_with("poet.tang.") && n.ends_with(".json")
            }),
            Collection::Song => ("quantangshi", |n| {
                n.starts_with("poet.song.") && n.ends_with(".json")
            }),
            Collection::Songci => ("songci", |n| {
                n.starts_with("ci.song.") && n.ends_with(".json")
            }),
            Collection::Tang300 => ("quantangshi", |n| n == "唐诗三百首.json"),
            Collection::Shijing => ("shijing", |n| n == "shijing.json"),
            Collection::Chuci => ("chuci", |n| n == "chuci.json"),
            Collection::Yuanqu => ("yuanqu", |n| n == "yuanqu.json"),
            Collection::Huajianji => ("wudaishici/huajianji", |n| n.ends_with("-juan.json")),
        }
    }

    /// The package's `dist/` folders the collections need (what fetch unpacks).
    pub fn dist_folders() -> &'static [&'static str] {
        &[
            "quantangshi",
            "songci",
            "shijing",
            "chuci",
            "yuanqu",
            "wudaishici",
            // Per-poem tone strings, used by the prosody module.
            "strains",
        ]
    }

    /// The poem files of this collection inside an unpacked `package/` dir, sorted.
    pub fn files(self, package: &Path) -> Result<Vec<PathBuf>, CorpusError> {
        let (dir, keep) = self.layout();
        let dir = package.join("dist").join(dir);
        let mut files = read::list_dir(&dir)?
            .into_iter()
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(keep))
            .collect::<Vec<_>>();
        files.sort();
        if files.is_empty() {
            return Err(CorpusError::NoFiles {
                path: dir.display().to_string(),
            });
        }
        Ok(files)
    }
}

impl std::fmt::Display for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What to read: a named collection (fetched on demand), or a user's file or folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Collection(Collection),
    /// `format: None` detects it from the extension and content.
    File {
        path: PathBuf,
        format: Option<Format>,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Collection(c) => write!(f, "--corpus {c}"),
            Source::File { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// How to read and clean. `Default` is what `shiren corpus stats` uses.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// Script of the output text (default simplified).
    pub script: Script,
    /// Records with fewer characters (punctuation included) are dropped.
    pub min_len: usize,
    /// Records with more characters (punctuation included) are dropped. 七律 is
    /// 64; the default keeps ~97% of the Tang set (the original's 79 kept ~85%).
    pub max_len: usize,
    /// Drop exact duplicates of the cleaned text (keeps the first).
    pub dedup: bool,
    /// A malformed `poems.txt` line is counted and skipped instead of stopping the run.
    pub skip_bad: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            script: Script::Simplified,
            min_len: 5,
            max_len: 200,
            dedup: true,
            skip_bad: false,
        }
    }
}

/// What the pipeline did, step by step.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Files read.
    pub files: usize,
    /// Records read (poems, lines of poems.txt, blank-line records of text).
    pub read: usize,
    /// Records dropped by each rule, in the order the rules run; every rule is listed.
    pub dropped: Vec<(Rule, usize)>,
    /// Records kept.
    pub kept: usize,
    /// Form of every record read (whitespace and punctuation normalised, nothing
    /// removed or dropped): the collection's own shares, comparable to published figures.
    pub forms_read: Vec<(Form, usize)>,
    /// The first few dropped records of each rule, by source (`path#index`,
    /// `path:line`), so a user can look at what a rule took.
    pub examples: Vec<(Rule, String)>,
}

/// How many dropped records of each rule [`Stats::examples`] keeps.
pub const EXAMPLES_PER_RULE: usize = 3;

impl Stats {
    /// How many records `rule` dropped.
    pub fn dropped_by(&self, rule: Rule) -> usize {
        self.dropped
            .iter()
            .find(|(r, _)| *r == rule)
            .map_or(0, |(_, n)| *n)
    }

    /// The example sources kept for `rule`.
    pub fn examples_of(&self, rule: Rule) -> Vec<&str> {
        self.examples
            .iter()
            .filter(|(r, _)| *r == rule)
            .map(|(_, s)| s.as_str())
            .collect()
    }

    fn add_example(&mut self, rule: Rule, source: String) {
        if self.examples_of(rule).len() < EXAMPLES_PER_RULE {
            self.examples.push((rule, source));
        }
    }

    /// "duplicate 955, lost-chars 730, …" for messages; rules that dropped nothing are left out.
    pub fn dropped_summary(&self) -> String {
        let parts: Vec<String> = self
            .dropped
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{} {n}", r.name()))
            .collect();
        if parts.is_empty() {
            "nothing dropped".to_string()
        } else {
            format!("dropped {}", parts.join(", "))
        }
    }
}

/// The cleaned poems and the counts of how they were obtained.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    pub poems: Vec<Poem>,
    pub stats: Stats,
}

/// Errors of reading and cleaning. Each names the file (and line or byte) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: no such file or folder (check the path, or name a collection instead)")]
    NotFound { path: String },
    #[error("{path}: no poem files found (expected *.json, *.txt or plain text files)")]
    NoFiles { path: String },
    #[error("{path}:{line}:{column}: not valid JSON: {msg} (fix the file, or fetch the corpus again with `shiren corpus fetch`)")]
    Json {
        path: String,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("{path}: JSON without poems: no record has `paragraphs` or `content` (expected chinese-poetry JSON, an array of {{title, author, paragraphs}})")]
    WrongShape { path: String },
    #[error("{path}: not a regular file (a device, FIFO or socket cannot be read as a corpus; give a file or folder of poems)")]
    NotRegular { path: String },
    #[error("{path}: larger than {max} bytes, more than any poem collection (the whole Tang collection is ~60 MB); split it or give the right file")]
    TooLarge { path: String, max: u64 },
    #[error("{path}: not UTF-8 at byte {offset} (convert it first, e.g. `iconv -f GBK -t UTF-8`)")]
    NotUtf8 { path: String, offset: usize },
    #[error("{path}:{line}: expected `title:content`, found no ':' (fix the line, or skip bad lines to drop it)")]
    BadLine { path: String, line: usize },
    #[error("{what}: no records read (is it empty? expected poems as JSON, `title:content` lines or blank-line-separated text)")]
    Empty { what: String },
    #[error("{what}: cleaning left no poems: read {read}, {summary} (see `shiren corpus stats`; loosen the length limits)")]
    AllDropped {
        what: String,
        read: usize,
        summary: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Reads, cleans and converts `source`. A named collection is fetched into
/// `data_dir` first if it is not there yet.
pub fn load(source: &Source, opts: &LoadOptions, data_dir: &Path) -> anyhow::Result<Corpus> {
    let (files, format, errors) = match source {
        Source::Collection(c) => {
            if !fetch::install_path(data_dir).is_dir() {
                eprintln!("shiren: {c} needs the chinese-poetry collection: fetching it with npm (85 MB, once)");
            }
            let package = fetch::ensure_package(data_dir)?;
            let files = c.files(&package)?;
            let errors = read::error_ids(&package.join("dist").join(c.layout().0).join("error"))?;
            (files, Some(Format::ChinesePoetryJson), errors)
        }
        Source::File { path, format } => {
            let walk = read::walk(path)?;
            if walk.skipped > 0 {
                eprintln!(
                    "shiren: {}: skipped {} entries that are not regular files inside the folder (FIFOs, devices, links out of it or in circles)",
                    path.display(),
                    walk.skipped
                );
            }
            let files = walk.files;
            let errors = if path.is_dir() {
                read::error_ids(&path.join("error"))?
            } else {
                HashSet::new()
            };
            (files, *format, errors)
        }
    };
    let opts_read = read::ReadOptions {
        format,
        skip_bad: opts.skip_bad,
    };
    // Files are independent: read and clean them in parallel, keeping file order.
    let per_file: Vec<Result<FileOut, CorpusError>> = files
        .par_iter()
        .map(|path| {
            let out = read::read_file(path, &opts_read)?;
            Ok(clean_file(out, opts, &errors))
        })
        .collect();
    let mut stats = Stats {
        files: files.len(),
        dropped: Rule::ALL.iter().map(|r| (*r, 0)).collect(),
        forms_read: Form::ALL.iter().map(|f| (*f, 0)).collect(),
        ..Stats::default()
    };
    let mut poems = Vec::new();
    for out in per_file {
        let out = out?;
        stats.read += out.read;
        for (i, n) in out.dropped.iter().enumerate() {
            stats.dropped[i].1 += n;
        }
        for (i, n) in out.forms.iter().enumerate() {
            stats.forms_read[i].1 += n;
        }
        for (rule, source) in out.examples {
            stats.add_example(rule, source);
        }
        poems.extend(out.poems);
    }
    if stats.read == 0 {
        return Err(CorpusError::Empty {
            what: source.to_string(),
        }
        .into());
    }
    if opts.dedup {
        // text → source of its first occurrence, to name it in the examples.
        let mut first: HashMap<String, String> = HashMap::with_capacity(poems.len());
        let mut dups = Vec::new();
        poems.retain(|p| match first.get(&p.text) {
            Some(orig) => {
                dups.push(format!("{} (same as {orig})", p.source));
                false
            }
            None => {
                first.insert(p.text.clone(), p.source.clone());
                true
            }
        });
        let i = Rule::ALL
            .iter()
            .position(|r| *r == Rule::Duplicate)
            .unwrap();
        stats.dropped[i].1 += dups.len();
        for d in dups {
            stats.add_example(Rule::Duplicate, d);
        }
    }
    stats.kept = poems.len();
    if poems.is_empty() {
        return Err(CorpusError::AllDropped {
            what: source.to_string(),
            read: stats.read,
            summary: stats.dropped_summary(),
        }
        .into());
    }
    Ok(Corpus { poems, stats })
}

struct FileOut {
    read: usize,
    dropped: [usize; Rule::ALL.len()],
    forms: [usize; Form::ALL.len()],
    poems: Vec<Poem>,
    /// Up to EXAMPLES_PER_RULE sources per rule.
    examples: Vec<(Rule, String)>,
}

impl FileOut {
    fn drop_record(&mut self, rule: Rule, source: &str) {
        let i = Rule::ALL.iter().position(|r| *r == rule).unwrap();
        self.dropped[i] += 1;
        if self.dropped[i] <= EXAMPLES_PER_RULE {
            self.examples.push((rule, source.to_string()));
        }
    }
}

fn clean_file(out: read::FileRecords, opts: &LoadOptions, errors: &HashSet<String>) -> FileOut {
    let mut res = FileOut {
        read: out.records.len() + out.bad_lines.len(),
        dropped: [0; Rule::ALL.len()],
        forms: [0; Form::ALL.len()],
        poems: Vec::with_capacity(out.records.len()),
        examples: Vec::new(),
    };
    for source in &out.bad_lines {
        res.drop_record(Rule::BadLine, source);
    }
    for rec in out.records {
        // The collection's own shape, before any note is removed or record dropped.
        res.forms[Form::of_text(&clean::normalize(&rec.text)) as usize] += 1;
        if rec.id.as_ref().is_some_and(|id| errors.contains(id)) {
            res.drop_record(Rule::ErrorList, &rec.source);
            continue;
        }
        match clean::clean(&rec.text, opts) {
            Err(rule) => res.drop_record(rule, &rec.source),
            Ok(text) => res.poems.push(Poem {
                title: convert::to_script(&clean::clean_title(&rec.title), opts.script),
                author: convert::to_script(rec.author.trim(), opts.script),
                text: convert::to_script(&text, opts.script),
                source: rec.source,
            }),
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn load_cleans_converts_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "q/poet.tang.0.json",
            r#"[{"title":"登鸛雀樓","author":"王之渙","id":"1",
                 "paragraphs":["白日依山盡，黃河入海流。","欲窮千里目，更上一層樓。"]},
                {"title":"又","author":"王之渙","id":"2",
                 "paragraphs":["白日依山盡，黃河入海流。","欲窮千里目，更上一層樓。"]},
                {"title":"疑","author":"無名","id":"3","paragraphs":["黃鶯啼綠樹，流水繞孤村。"]}]"#,
        );
        write(dir.path(), "q/error/poet.tang.0.json", r#"[{"id":"3"}]"#);
        let src = Source::File {
            path: dir.path().join("q"),
            format: None,
        };
        let c = load(&src, &LoadOptions::default(), dir.path()).unwrap();
        assert_eq!(c.poems.len(), 1);
        let p = &c.poems[0];
        assert_eq!(p.text, "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。");
        assert_eq!(
            (p.title.as_str(), p.author.as_str()),
            ("登鹳雀楼", "王之涣")
        );
        assert!(p.source.ends_with("poet.tang.0.json#0"), "{}", p.source);
        assert_eq!((c.stats.read, c.stats.kept), (3, 1));
        assert_eq!(c.stats.dropped_by(Rule::Duplicate), 1);
        let dup = c.stats.examples_of(Rule::Duplicate);
        assert!(
            dup.len() == 1 && dup[0].contains("#1 (same as ") && dup[0].ends_with("#0)"),
            "{dup:?}"
        );
        assert!(c.stats.examples_of(Rule::ErrorList)[0].ends_with("#2"));
        assert_eq!(c.stats.dropped_by(Rule::ErrorList), 1);
        assert_eq!(c.stats.forms_read[Form::Wujue as usize], (Form::Wujue, 2));

        let trad = LoadOptions {
            script: Script::Traditional,
            ..LoadOptions::default()
        };
        let c = load(&src, &trad, dir.path()).unwrap();
        assert_eq!(
            c.poems[0].text,
            "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。"
        );
    }

    #[test]
    fn an_empty_folder_and_an_emptied_corpus_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("none")).unwrap();
        let none = Source::File {
            path: dir.path().join("none"),
            format: None,
        };
        let msg = load(&none, &LoadOptions::default(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no poem files"), "{msg}");
        let p = write(dir.path(), "short.txt", "春已归\n\n花落\n");
        let short = Source::File {
            path: p,
            format: None,
        };
        let msg = load(&short, &LoadOptions::default(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("too-short 2"), "{msg}");
    }
}
