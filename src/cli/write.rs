//! `shiren write`: what the user typed (`Args`), how it becomes checked
//! settings (`resolve`), and printing. The sampling itself is `crate::write`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::Global;
use crate::checkpoint;
use crate::corpus::convert::Script;
use crate::prosody::{Lexicon, ToneMode};
use crate::write::{template, CharModel, Form, Options, Poem, Tunes, Writer};

/// The model shipped with the repository, relative to the working directory.
pub const DEFAULT_MODEL: &str = "models/tang-small";

/// The shipped model: `models/tang-small` under the working directory when it is
/// there, else in the source tree this binary was built from (so `shiren write`
/// works from any folder after `cargo install --path .` or `cargo run`).
pub fn default_model() -> PathBuf {
    let here = PathBuf::from(DEFAULT_MODEL);
    if here.is_dir() {
        return here;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MODEL);
    if built.is_dir() {
        built
    } else {
        here
    }
}

/// How the shipped model is made (quoted when it is missing).
pub const TRAIN_HINT: &str = "scripts/train_shipped_model.sh";

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Checkpoint directory to write with [default: models/tang-small, the model shipped with the repo]
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// The poem starts with these characters (punctuation allowed where a line ends)
    #[arg(long, value_name = "TEXT")]
    pub begin: Option<String>,
    /// 藏头诗: line i starts with the i-th character; the line count follows the text
    #[arg(long, value_name = "TEXT")]
    pub acrostic: Option<String>,
    /// Form: wujue (五绝 4×5), qijue (七绝 4×7), wulv (五律 8×5), qilv (七律 8×7) or free [default: free; qijue lines with --acrostic]
    #[arg(long, value_name = "FORM")]
    pub form: Option<Form>,
    /// Write to a ci tune's most common line pattern in the Song ci collection (e.g. 浣溪沙)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["form", "acrostic"])]
    pub tune: Option<String>,
    /// Number of poems
    #[arg(long, short = 'n', default_value_t = 1, value_name = "N")]
    pub count: usize,
    /// Softmax temperature (0: always the likeliest character)
    #[arg(long, default_value_t = 0.8, value_name = "T")]
    pub temperature: f32,
    /// Sample among the K likeliest allowed characters (0: all)
    #[arg(long, default_value_t = 200, value_name = "K")]
    pub top_k: usize,
    /// Sample among the likeliest characters whose probability adds up to P (1: all)
    #[arg(long, default_value_t = 1.0, value_name = "P")]
    pub top_p: f32,
    /// Random seed; the same seed writes the same poems [default: from the clock, shown with --verbose]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Free form: the most characters per poem, punctuation included
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub max_len: usize,
    /// Rhyme lines 2, 4, 6, 8 in one 平水韵 group [default: on for wujue, qijue, wulv, qilv]
    #[arg(long, overrides_with = "no_rhyme")]
    pub rhyme: bool,
    /// Do not enforce rhyme
    #[arg(long, overrides_with = "rhyme")]
    pub no_rhyme: bool,
    /// Tone rules: off, loose (二四六分明 and line-end tones) or strict (also 三平尾, 粘, 对)
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

/// The checked settings of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub model: PathBuf,
    pub opts: Options,
    pub tune: Option<String>,
    pub count: usize,
    pub seed: u64,
    pub json: bool,
}

/// Checks what the user typed and fills in the defaults that depend on other flags.
pub fn resolve(args: &Args) -> anyhow::Result<Settings> {
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
    let form = args.form.unwrap_or(if !acrostic.is_empty() {
        Form::Qijue
    } else {
        template_form.unwrap_or(Form::Free)
    });
    let regulated = form.shape().is_some() && args.tune.is_none();
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
        anyhow::ensure!(
            !acrostic.trim().is_empty(),
            "--acrostic is empty (give one character per line)"
        );
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    Ok(Settings {
        model: args.model.clone().unwrap_or_else(default_model),
        opts: Options {
            begin: args.begin.clone().unwrap_or_default(),
            acrostic,
            template,
            form,
            tune: None,
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            max_len: args.max_len,
            rhyme,
            tones: args.tones,
            tag: None,
        },
        tune: args.tune.clone(),
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

#[derive(Serialize)]
struct JsonOut<'a> {
    seed: u64,
    poems: &'a [Poem],
}

/// Writes and prints the poems of `s` with any model.
pub fn write_with<M: CharModel>(
    model: &M,
    script: Script,
    mut s: Settings,
    g: &Global,
) -> anyhow::Result<()> {
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    if let Some(name) = &s.tune {
        let package = corpus_package(&data_dir)?;
        let tunes = Tunes::load(&package).context("reading the Song ci tunes")?;
        s.opts.tune = Some(tunes.pattern(name)?.to_vec());
    }
    let lex = if s.opts.rhyme || s.opts.tones != ToneMode::Off {
        Some(
            Lexicon::load(&data_dir, script)
                .context("loading the 平水韵 tone and rhyme lexicon")?,
        )
    } else {
        None
    };
    let writer = Writer::new(model, lex.as_ref());
    let t0 = std::time::Instant::now();
    let poems = writer.write_many(&s.opts, s.count, s.seed)?;
    let elapsed = t0.elapsed();
    // Kept characters that break a rule are always worth a line; the rest of the notes with -v.
    if !s.opts.template.is_empty() && !g.verbose {
        let mut err = std::io::stderr().lock();
        for (k, p) in poems.iter().enumerate() {
            for n in p.notes.iter().filter(|n| n.starts_with("the kept")) {
                writeln!(err, "shiren: poem {}: {n}", k + 1)?;
            }
        }
    }
    if g.verbose {
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "shiren: seed {} ({} poems in {:.1} ms)",
            s.seed,
            poems.len(),
            elapsed.as_secs_f64() * 1e3
        )?;
        for (k, p) in poems.iter().enumerate() {
            for n in &p.notes {
                writeln!(err, "shiren: poem {}: {n}", k + 1)?;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if s.json {
        // Serialise first, so that a closed pipe surfaces as an io::Error (exit 0).
        let mut json = serde_json::to_string_pretty(&JsonOut {
            seed: s.seed,
            poems: &poems,
        })?;
        json.push('\n');
        out.write_all(json.as_bytes())?;
    } else {
        out.write_all(render_text(&poems).as_bytes())?;
    }
    out.flush()?;
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

/// The unpacked chinese-poetry package, for the ci tunes.
fn corpus_package(data_dir: &Path) -> anyhow::Result<PathBuf> {
    crate::corpus::fetch::ensure_package(data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: Args,
        }
        Cli::try_parse_from(std::iter::once("write").chain(args.iter().copied())).map(|c| c.a)
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
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--form", "sonnet"]).is_err());
        assert!(parse(&["--tones", "tight"]).is_err());
        assert!(parse(&["--tune", "浣溪沙", "--form", "qijue"]).is_err());
        let e = resolve(&parse(&["--begin", " "]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("--begin is empty"), "{e}");
        let e = resolve(&parse(&["--count", "0"]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("--count"), "{e}");
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
        };
        let s = render_text(&[
            poem(vec![line("白日依山尽", "，"), line("黄河入海流", "。")]),
            poem(vec![line("床前明月光", "，")]),
        ]);
        assert_eq!(s, "白日依山尽，\n黄河入海流。\n\n床前明月光，\n");
    }
}
