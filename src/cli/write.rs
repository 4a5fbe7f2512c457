//! `shiren write`: what the user typed (`Args`), how it becomes checked
//! settings (`resolve`), and printing. The sampling itself is `crate::write`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Global;
use crate::checkpoint;
use crate::corpus::convert::Script;
use crate::prosody::songci::Songci;
use crate::prosody::{Lexicon, ToneMode};
use crate::write::{template, CharModel, Form, Options, Poem, Writer};

/// The model shipped with the repository, relative to the working directory.
pub const DEFAULT_MODEL: &str = "models/tang-small";

/// The shipped model: `models/tang-small` under the working directory when it is
/// there, else in the source tree this binary was built from (so `shiren write`
/// works from any folder after `cargo install --path .` or `cargo run`).
pub fn default_model() -> PathBuf {
    shipped(DEFAULT_MODEL).unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
}

/// The ci model shipped with the repository: the Tang model fine-tuned on the Song ci.
pub const DEFAULT_CI_MODEL: &str = "models/songci-small";

/// What `--tune` writes with when no `--model` is given: the shipped ci model
/// (found as [`default_model`] is), else the shipped model.
pub fn default_ci_model() -> PathBuf {
    shipped(DEFAULT_CI_MODEL).unwrap_or_else(default_model)
}

/// `rel` under the working directory, else in the source tree this binary was built from.
fn shipped(rel: &str) -> Option<PathBuf> {
    let here = PathBuf::from(rel);
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    [here, built].into_iter().find(|p| p.is_dir())
}

/// How the shipped model is made (quoted when it is missing).
pub const TRAIN_HINT: &str = "scripts/train_shipped_model.sh";

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Checkpoint directory to write with [default: models/tang-small, the model shipped with the repo; with --tune, models/songci-small]
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// The poem starts with these characters (punctuation allowed where a line ends)
    #[arg(long, value_name = "TEXT")]
    pub begin: Option<String>,
    /// 藏头诗: line i starts with the i-th character; the line count follows the text
    #[arg(long, value_name = "TEXT")]
    pub acrostic: Option<String>,
    /// What the poem is about: a title the model reads before writing (送别, 秋夜思乡; at most 16 characters)
    #[arg(long, value_name = "TITLE")]
    pub title: Option<String>,
    /// Words that must appear (1 to 4, of 1 or 2 characters, comma-separated: 明月,江,舟); the writer picks their places, keeping rhyme and tones
    #[arg(long, value_name = "WORDS")]
    pub keywords: Option<String>,
    /// Form: wujue (五绝 4×5), qijue (七绝 4×7), wulv (五律 8×5), qilv (七律 8×7) or free [default: free; qijue with --acrostic or --keywords]
    #[arg(long, value_name = "FORM")]
    pub form: Option<Form>,
    /// Write a ci to a tune (e.g. 浣溪沙): its lines, its tones under --tones, its rhyme under 词林正韵; `shiren tunes` lists them
    #[arg(long, value_name = "NAME", conflicts_with_all = ["form", "acrostic"])]
    pub tune: Option<String>,
    /// Which form of the tune: 1 its main form (正体), 2… its variants (又一体) as `shiren tunes NAME` numbers them
    #[arg(long, value_name = "N", default_value_t = 1, requires = "tune")]
    pub variant: usize,
    /// Number of poems
    #[arg(long, short = 'n', default_value_t = 1, value_name = "N")]
    pub count: usize,
    /// Softmax temperature (0: always the likeliest character)
    #[arg(long, default_value_t = Options::default().temperature, value_name = "T")]
    pub temperature: f32,
    /// Sample among the K likeliest allowed characters (0: all)
    #[arg(long, default_value_t = Options::default().top_k, value_name = "K")]
    pub top_k: usize,
    /// Sample among the likeliest characters whose probability adds up to P (1: all)
    #[arg(long, default_value_t = Options::default().top_p, value_name = "P")]
    pub top_p: f32,
    /// Drafts written per poem; the one with the highest mean log-probability per character is kept
    #[arg(long, default_value_t = crate::write::DEFAULT_DRAFTS, value_name = "N")]
    pub best_of: usize,
    /// With --json: every --best-of draft's text and score under each poem
    #[arg(long, requires = "json")]
    pub all_drafts: bool,
    /// Repetition in 5- and 7-character lines: limit (no rhyme foot twice, no character three times in a poem or twice in a line, save 年年-like pairs and common function characters) or allow
    #[arg(long, value_enum, default_value_t = Repeats::Limit, value_name = "MODE")]
    pub repeats: Repeats,
    /// Random seed; the same seed writes the same poems [default: from the clock, shown with --verbose]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Free form: the most characters per poem, punctuation included (1 to 10000)
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub max_len: usize,
    /// Rhyme lines 2, 4, 6, 8 in one 平水韵 group, or a tune's rhyme lines by 词林正韵 [default: on for wujue, qijue, wulv, qilv and tunes]
    #[arg(long, overrides_with = "no_rhyme")]
    pub rhyme: bool,
    /// Do not enforce rhyme
    #[arg(long, overrides_with = "rhyme")]
    pub no_rhyme: bool,
    /// Tone rules: off, loose (二四六分明 and line-end tones; for a tune, its tones at even positions and line ends) or strict (also 三平尾, 粘, 对; for a tune, all its fixed tones)
    #[arg(long, default_value = "off", value_name = "MODE")]
    pub tones: ToneMode,
    /// Print JSON (poems with per-character tones and rhyme feet) instead of text
    #[arg(long)]
    pub json: bool,
    /// Keep these characters where they stand and fill the rest: □ or ? is a free position, punctuation ends a line (明月□□□，□□□□乡。…); the form follows the shape
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["begin", "acrostic", "tune", "revise"])]
    pub template: Option<String>,
    /// Rewrite lines of this poem (chosen with --line), keeping the others, their rhyme group and tones
    #[arg(long, value_name = "POEM", conflicts_with_all = ["begin", "acrostic", "tune"])]
    pub revise: Option<String>,
    /// The line(s) of --revise to rewrite, counted from 1: --line 3, or --lines 3,4
    #[arg(
        long = "line",
        visible_alias = "lines",
        value_name = "N[,M]",
        value_delimiter = ',',
        requires = "revise"
    )]
    pub lines: Vec<usize>,
    /// Drafts to offer (another name for --count, for --revise and --template)
    #[arg(long, value_name = "N", conflicts_with = "count")]
    pub drafts: Option<usize>,
    /// The interactive prompt: type first words, get a poem; `help` lists the commands (without a terminal, reads lines from standard input)
    #[arg(short = 'i', long)]
    pub interactive: bool,
}

/// `--repeats`: hold regulated lines to the repetition rule, or not.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeats {
    Limit,
    Allow,
}

pub use crate::write::MAX_DRAFTS;

/// The checked settings of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSettings {
    pub model: PathBuf,
    pub opts: Options,
    pub tune: Option<String>,
    /// The tune's form, from 1.
    pub variant: usize,
    pub count: usize,
    pub seed: u64,
    pub json: bool,
}

/// Checks what the user typed and fills in the defaults that depend on other flags.
pub fn resolve(args: &Args) -> anyhow::Result<WriteSettings> {
    let count = args.drafts.unwrap_or(args.count);
    let flag = if args.drafts.is_some() {
        "--drafts"
    } else {
        "--count"
    };
    anyhow::ensure!(count >= 1, "{flag} must be at least 1");
    anyhow::ensure!(
        count <= 100_000,
        "{flag} {count} is more than 100000 (write in batches)"
    );
    anyhow::ensure!(
        (1..=MAX_DRAFTS).contains(&args.best_of),
        "--best-of {} is outside 1..={MAX_DRAFTS} (each draft costs a whole poem)",
        args.best_of
    );
    anyhow::ensure!(
        (1..=10_000).contains(&args.max_len),
        "--max-len {} is out of range (use 1 to 10000 characters)",
        args.max_len
    );
    let acrostic = args.acrostic.clone().unwrap_or_default();
    // A rewrite is a template: the kept lines whole, the asked ones free.
    let template = match (&args.template, &args.revise) {
        (Some(t), _) => t.clone(),
        (None, Some(poem)) => template::revise_template(poem, &args.lines)?,
        (None, None) => String::new(),
    };
    let template_form = match template.is_empty() {
        true => None,
        false => template::parse(&template)?.form(),
    };
    // An acrostic without a form gets 七言 lines, so that the heads lead lines
    // of a poem; a template's shape gives its form.
    let keyworded = args.keywords.is_some() && template_form.is_none();
    let form = args.form.unwrap_or(if !acrostic.is_empty() || keyworded {
        Form::Qijue
    } else {
        template_form.unwrap_or(Form::Free)
    });
    let regulated = form.shape().is_some() || args.tune.is_some();
    let rhyme = if args.no_rhyme {
        false
    } else {
        args.rhyme || regulated
    };
    if let Some(b) = &args.begin {
        anyhow::ensure!(
            !b.trim().is_empty(),
            "--begin is empty (give at least one character)"
        );
    }
    if args.acrostic.is_some() {
        let asked = args
            .form
            .and_then(|f| f.shape().map(|(lines, _)| (f.name_zh(), lines)));
        crate::limits::check_acrostic("--acrostic", &acrostic, asked)
            .map_err(anyhow::Error::msg)?;
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    Ok(WriteSettings {
        model: args.model.clone().unwrap_or_else(|| match args.tune {
            Some(_) => default_ci_model(),
            None => default_model(),
        }),
        opts: Options {
            begin: args.begin.clone().unwrap_or_default(),
            acrostic,
            template,
            title: args.title.clone().unwrap_or_default(),
            keywords: args.keywords.iter().cloned().collect(),
            form,
            tune: None,
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            max_len: args.max_len,
            rhyme,
            tones: args.tones,
            tag: None,
            repeats: args.repeats == Repeats::Limit,
            drafts: args.best_of,
            all_drafts: args.all_drafts,
        },
        tune: args.tune.clone(),
        variant: args.variant,
        count,
        seed,
        json: args.json,
    })
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    if args.interactive {
        return super::chat::run(args, g);
    }
    let mut s = resolve(&args)?;
    // A run folder (runs/NAME) holds its best checkpoint in best/.
    if let Some(found) = checkpoint::find_in(&s.model, &["best"]) {
        s.model = found;
    }
    if !s.model.join("model.safetensors").is_file() {
        let shipped = args.model.is_none();
        anyhow::bail!(
            "no model at {}{} (train it with `{TRAIN_HINT}`{})",
            s.model.display(),
            if shipped {
                ", the shipped model's place"
            } else {
                ""
            },
            if shipped {
                ", or pass --model DIR"
            } else {
                ", or pass another --model DIR"
            },
        );
    }
    let loaded = checkpoint::load(&s.model)?;
    let lm = crate::write::Lm::new(&loaded.model, &loaded.vocab);
    write_with(&lm, loaded.meta.script, s, g)
}

/// Writes and prints the poems of `s` with any model.
pub fn write_with<M: CharModel>(
    model: &M,
    script: Script,
    mut s: WriteSettings,
    g: &Global,
) -> anyhow::Result<()> {
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    let songci = match &s.tune {
        Some(name) => {
            let songci = Songci::load(&data_dir)?;
            let (tune, form) = songci.cipu.form(name, s.variant)?;
            s.opts.tune = Some(form.clone());
            // The Song ci's titles are their tunes: a model that reads titles is told the tune.
            if s.opts.title.is_empty() && model.reads_titles() {
                s.opts.title = tune.name.split('・').next().unwrap_or_default().to_string();
            }
            Some(songci)
        }
        None => None,
    };
    let lex = if s.opts.rhyme || s.opts.tones != ToneMode::Off {
        Some(
            Lexicon::load(&data_dir, script)
                .context("loading the 平水韵 tone and rhyme lexicon")?,
        )
    } else {
        None
    };
    let mut writer = Writer::new(model, lex.as_ref());
    if let Some(songci) = &songci {
        writer = writer.with_cilin(&songci.cilin);
    }
    let t0 = std::time::Instant::now();
    // Each poem is printed as soon as its batch is written, so `--count 100000`
    // shows its first poems at once and holds one batch, not every poem.
    let mut out = std::io::stdout().lock();
    let mut written = 0usize;
    writer.write_each(&s.opts, s.count, s.seed, |poem| -> anyhow::Result<()> {
        // Kept characters that break a rule are always worth a line; the rest of the notes with -v.
        for n in &poem.notes {
            if g.verbose || (!s.opts.template.is_empty() && n.starts_with("the kept")) {
                eprintln!("shiren: poem {}: {n}", written + 1);
            }
        }
        if s.json {
            // as serde_json's pretty printer nests it: 4 spaces at this depth
            let json = serde_json::to_string_pretty(&poem)?;
            if written == 0 {
                write!(out, "{{\n  \"seed\": {},\n  \"poems\": [\n", s.seed)?;
            } else {
                out.write_all(b",\n")?;
            }
            for (i, line) in json.lines().enumerate() {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                write!(out, "    {line}")?;
            }
        } else {
            if written > 0 {
                out.write_all(b"\n")?;
            }
            out.write_all(render_text(std::slice::from_ref(&poem)).as_bytes())?;
            out.flush()?;
        }
        written += 1;
        Ok(())
    })?;
    if s.json {
        out.write_all(b"\n  ]\n}\n")?;
    }
    out.flush()?;
    if g.verbose {
        eprintln!(
            "shiren: seed {} ({} poems in {:.1} ms)",
            s.seed,
            written,
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// One line per verse, a blank line between poems.
pub fn render_text(poems: &[Poem]) -> String {
    let mut s = String::new();
    for (k, p) in poems.iter().enumerate() {
        if k > 0 {
            s.push('\n');
        }
        for l in &p.lines {
            s.push_str(&l.text);
            s.push_str(&l.end);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("write", args)
    }

    #[test]
    fn defaults_depend_on_the_form() {
        let s = resolve(&parse(&["--form", "qijue", "--seed", "3"]).unwrap()).unwrap();
        assert!(s.opts.rhyme, "rhyme is on for regulated forms");
        assert_eq!((s.opts.form, s.seed, s.count), (Form::Qijue, 3, 1));
        assert_eq!(s.model, default_model());
        let s = resolve(&parse(&["--form", "qijue", "--no-rhyme"]).unwrap()).unwrap();
        assert!(!s.opts.rhyme);
        let s = resolve(&parse(&[]).unwrap()).unwrap();
        assert!(!s.opts.rhyme && s.opts.form == Form::Free);
        let s = resolve(&parse(&["--acrostic", "春夏秋冬"]).unwrap()).unwrap();
        assert_eq!(s.opts.form, Form::Qijue);
        assert!(s.opts.rhyme);
        let s = resolve(&parse(&["--form", "wulv", "--tones", "strict"]).unwrap()).unwrap();
        assert_eq!(s.opts.tones, ToneMode::Strict);
        let s = resolve(&parse(&["--tune", "如梦令", "--variant", "2"]).unwrap()).unwrap();
        assert!(s.opts.rhyme, "a tune rhymes by default");
        assert_eq!((s.tune.as_deref(), s.variant), (Some("如梦令"), 2));
        let s = resolve(&parse(&["--tune", "如梦令", "--no-rhyme"]).unwrap()).unwrap();
        assert!(!s.opts.rhyme);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--form", "sonnet"]).is_err());
        assert!(parse(&["--tones", "tight"]).is_err());
        assert!(parse(&["--tune", "浣溪沙", "--form", "qijue"]).is_err());
        assert!(
            parse(&["--variant", "2"]).is_err(),
            "--variant needs --tune"
        );
        let e = resolve(&parse(&["--begin", " "]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("--begin is empty"), "{e}");
        let e = resolve(&parse(&["--count", "0"]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("--count"), "{e}");
        let e = resolve(&parse(&["--max-len", "1000000000"]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("use 1 to 10000"), "{e}");
    }

    #[test]
    fn missing_model_names_the_training_command() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        let args = parse(&["--model", missing.to_str().unwrap()]).unwrap();
        let g = Global {
            data_dir: Some(dir.path().to_path_buf()),
            threads: None,
            verbose: false,
        };
        let e = run(args, &g).unwrap_err().to_string();
        assert!(e.contains("no model at") && e.contains(TRAIN_HINT), "{e}");
    }

    #[test]
    fn text_output_is_one_verse_per_line_with_blank_lines_between_poems() {
        let line = |t: &str, e: &str| crate::write::Line {
            text: t.into(),
            end: e.into(),
            chars: Vec::new(),
        };
        let poem = |lines| Poem {
            text: String::new(),
            lines,
            rhyme_group: None,
            tones: ToneMode::Off,
            rhyme: false,
            notes: Vec::new(),
            score: 0.0,
            drafts: Vec::new(),
        };
        let s = render_text(&[
            poem(vec![line("白日依山尽", "，"), line("黄河入海流", "。")]),
            poem(vec![line("床前明月光", "，")]),
        ]);
        assert_eq!(s, "白日依山尽，\n黄河入海流。\n\n床前明月光，\n");
    }
}
