//! `shiren check`: a poem's 格律, as the checking pages of poetry sites show
//! it. Reads the poems (an argument, a file, or standard input; blank lines
//! between poems), checks each with `prosody::check`, prints the marks and
//! every rule broken, and with `--suggest` asks the model for mending
//! characters. The checking itself is pure (`crate::prosody::check`); this
//! file reads, loads and prints.
//!
//! Exit codes: 0 every poem keeps every rule; 1 some rule is broken; 2 bad
//! input (no recognisable form, mixed scripts, a character that is not Han).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write as _};
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::write::{default_model, TRAIN_HINT};
use super::{Exit, Global};
use crate::checkpoint;
use crate::corpus::convert::{to_simplified, to_traditional, Script};
use crate::corpus::forms::Form;
use crate::prosody::check::{self, Broken, CheckError, Checked};
use crate::prosody::{Lexicon, Tone};
use crate::write::suggest::Suggestion;
use crate::write::{Lm, Writer};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The poem, lines ended by ，or 。 (several: blank lines between) [default: --file, else standard input]
    #[arg(value_name = "POEM", conflicts_with = "file")]
    pub poem: Option<String>,
    /// Read the poems from this file, blank lines between poems (`-`: standard input)
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Check against this form: wujue, qijue, wulv or qilv [default: from the poem's shape]
    #[arg(long, value_name = "FORM")]
    pub form: Option<Form>,
    /// Check a ci against this tune's pattern (浣溪沙): its fixed tones and its rhyme under 词林正韵; `--tune` alone guesses the tune from the line lengths; `shiren tunes` lists the tunes
    #[arg(
        long,
        value_name = "NAME",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with_all = ["form", "suggest", "summary", "corpus"]
    )]
    pub tune: Option<String>,
    /// Which form of the tune, as `shiren tunes NAME` numbers them [default: the one with the ci's line lengths]
    #[arg(long, value_name = "N", requires = "tune")]
    pub variant: Option<usize>,
    /// Print JSON: per poem its marks, rhyme group, rules broken, readings (and suggestions)
    #[arg(long)]
    pub json: bool,
    /// For each character that breaks a rule, the 5 characters the model likes best there that keep the rules
    #[arg(long)]
    pub suggest: bool,
    /// Checkpoint that suggests [default: models/tang-small, the model shipped with the repo]
    #[arg(long, value_name = "DIR", requires = "suggest")]
    pub model: Option<PathBuf>,
    /// Print only the counts over all the poems (for a whole corpus); poems that cannot be checked are counted, not fatal (-v lists them)
    #[arg(long)]
    pub summary: bool,
    /// Check every regulated poem (or every poem of --form) of a chinese-poetry collection, e.g. tang; implies --summary
    #[arg(long, value_enum, value_name = "NAME", conflicts_with_all = ["poem", "file", "suggest"])]
    pub corpus: Option<crate::corpus::Collection>,
}

/// Counts over many poems (`--summary`, and the end of a multi-poem run).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub poems: usize,
    /// Poems that could not be checked (no recognisable form, …).
    pub not_checked: usize,
    /// By form (五绝, 七绝, …).
    pub forms: BTreeMap<String, usize>,
    /// Every rule kept.
    pub ok: usize,
    /// The five tone rules kept (二四六分明, 句末平仄, 三平尾, 粘, 对): eval's `tones%`.
    pub tones_ok: usize,
    /// Poems breaking each rule at least once.
    pub broken: BTreeMap<String, usize>,
}

impl Summary {
    fn add(&mut self, c: &Checked) {
        *self.forms.entry(c.form.to_string()).or_default() += 1;
        self.ok += c.ok as usize;
        self.tones_ok += c.tones_ok as usize;
        let mut seen: Vec<Broken> = c.faults.iter().map(|f| f.rule).collect();
        seen.sort_by_key(|r| *r as u8);
        seen.dedup();
        for r in seen {
            *self.broken.entry(r.name_zh().to_string()).or_default() += 1;
        }
    }

    fn checked(&self) -> usize {
        self.poems - self.not_checked
    }

    fn render(&self) -> String {
        let pct = |n: usize| 100.0 * n as f64 / self.checked().max(1) as f64;
        let forms: Vec<String> = self.forms.iter().map(|(f, n)| format!("{f} {n}")).collect();
        let broken: Vec<String> = self
            .broken
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let mut s = format!(
            "checked {} poems ({}), {} not checked\n",
            self.checked(),
            forms.join(", "),
            self.not_checked
        );
        s += &format!("keep every rule: {} ({:.1}%)\n", self.ok, pct(self.ok));
        s += &format!(
            "keep the five tone rules (strict: 二四六分明 句末平仄 三平尾 粘 对): {} ({:.1}%)\n",
            self.tones_ok,
            pct(self.tones_ok)
        );
        s += &format!("poems breaking each rule: {}\n", broken.join(", "));
        s
    }
}

#[derive(Serialize)]
struct JsonPoem<'a> {
    #[serde(flatten)]
    checked: &'a Checked,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggestions: Option<&'a [Suggestion]>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonOutcome<'a> {
    Checked(JsonPoem<'a>),
    Error { poem: usize, error: String },
}

/// The lexicons of both scripts, loaded once.
pub struct Lexicons {
    pub simplified: Lexicon,
    pub traditional: Lexicon,
}

impl Lexicons {
    pub fn load(g: &Global) -> anyhow::Result<Lexicons> {
        let dir = crate::cache::data_dir(g.data_dir.as_deref())?;
        let load = |s| Lexicon::load(&dir, s).context("loading the 平水韵 tone and rhyme lexicon");
        Ok(Lexicons {
            simplified: load(Script::Simplified)?,
            traditional: load(Script::Traditional)?,
        })
    }

    /// Checks one poem in whichever script it is written.
    pub fn check(&self, text: &str, form: Option<Form>) -> Result<(Checked, Script), CheckError> {
        let script = check::script_of(text, &self.simplified, &self.traditional)?;
        let lex = self.of(script);
        let twin = check::with_other_script(lex, text);
        Ok((
            check::check(twin.as_ref().unwrap_or(lex), text, form)?,
            script,
        ))
    }

    pub fn of(&self, script: Script) -> &Lexicon {
        match script {
            Script::Simplified => &self.simplified,
            Script::Traditional => &self.traditional,
        }
    }
}

pub fn run(mut args: Args, g: &Global) -> anyhow::Result<()> {
    if let Some(name) = args.tune.clone() {
        return super::check_tune::run(&args, &name, &read_input(&args)?, g);
    }
    let poems = match args.corpus {
        Some(c) => {
            args.summary = true;
            corpus_poems(c, args.form, g)?
        }
        None => check::split_poems(&read_input(&args)?),
    };
    if poems.is_empty() {
        return Err(Exit::BadInput(CheckError::Empty.to_string()).into());
    }
    let lexicons = Lexicons::load(g)?;
    let loaded = match args.suggest {
        true => Some(load_model(args.model.clone())?),
        false => None,
    };
    let lm = loaded.as_ref().map(|l| Lm::new(&l.model, &l.vocab));
    let writer = lm.as_ref().map(|lm| Writer::new(lm, None));

    let mut summary = Summary::default();
    let mut results: Vec<Result<(Checked, Vec<Suggestion>), String>> = Vec::new();
    for text in &poems {
        summary.poems += 1;
        match lexicons.check(text, args.form) {
            Ok((c, script)) => {
                summary.add(&c);
                let sugg = match &writer {
                    Some(w) => {
                        let to_script = |ch: char| convert_char(ch, script);
                        w.suggest(lexicons.of(script), &c, 5, &to_script)
                    }
                    None => Vec::new(),
                };
                results.push(Ok((c, sugg)));
            }
            Err(e) => {
                summary.not_checked += 1;
                results.push(Err(e.to_string()));
            }
        }
    }

    let mut out = std::io::stdout().lock();
    if args.json {
        let mut json = if args.summary {
            serde_json::to_string_pretty(&summary)?
        } else {
            let items: Vec<JsonOutcome> = results
                .iter()
                .enumerate()
                .map(|(k, r)| match r {
                    Ok((c, s)) => JsonOutcome::Checked(JsonPoem {
                        checked: c,
                        suggestions: args.suggest.then_some(s.as_slice()),
                    }),
                    Err(e) => JsonOutcome::Error {
                        poem: k + 1,
                        error: e.clone(),
                    },
                })
                .collect();
            serde_json::to_string_pretty(&items)?
        };
        json.push('\n');
        out.write_all(json.as_bytes())?;
    } else if args.summary {
        out.write_all(summary.render().as_bytes())?;
    } else {
        for (k, r) in results.iter().enumerate() {
            if k > 0 {
                writeln!(out)?;
            }
            if let Ok((c, s)) = r {
                out.write_all(render(c, s).as_bytes())?;
            }
        }
        if poems.len() > 1 {
            writeln!(out)?;
            out.write_all(summary.render().as_bytes())?;
        }
    }
    out.flush()?;
    drop(out);
    // Poems that could not be checked: one line each, and exit 2 (unless only counting).
    let bad: Vec<(usize, &String)> = results
        .iter()
        .enumerate()
        .filter_map(|(k, r)| r.as_ref().err().map(|e| (k, e)))
        .collect();
    if args.summary && g.verbose {
        let mut err = std::io::stderr().lock();
        for (k, e) in &bad {
            writeln!(
                err,
                "shiren: poem {}: not checked: {e}: {}",
                k + 1,
                poems[*k].replace('\n', "")
            )?;
        }
    }
    if !args.summary && !bad.is_empty() {
        let mut err = std::io::stderr().lock();
        for (k, e) in &bad[..bad.len() - 1] {
            writeln!(err, "shiren: poem {}: {e}", k + 1)?;
        }
        let (k, e) = bad[bad.len() - 1];
        let msg = if poems.len() > 1 {
            format!("poem {}: {e}", k + 1)
        } else {
            e.clone()
        };
        return Err(Exit::BadInput(msg).into());
    }
    if summary.ok < summary.checked() || summary.checked() == 0 {
        return Err(Exit::Quiet(1).into());
    }
    Ok(())
}

/// The poems of a collection whose shape is `form` (any regulated form when `None`).
fn corpus_poems(
    c: crate::corpus::Collection,
    form: Option<Form>,
    g: &Global,
) -> anyhow::Result<Vec<String>> {
    let dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    let source = crate::corpus::Source::Collection(c);
    let corpus = crate::corpus::load(&source, &crate::corpus::LoadOptions::default(), &dir)?;
    Ok(corpus
        .poems
        .into_iter()
        .map(|p| p.text)
        .filter(|t| match (form, Form::of_text(t)) {
            (Some(f), g) => f == g,
            (None, g) => g != Form::Free,
        })
        .collect())
}

fn read_input(args: &Args) -> anyhow::Result<String> {
    if let Some(p) = &args.poem {
        return Ok(p.clone());
    }
    match &args.file {
        Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(path).map_err(|e| {
            Exit::BadInput(format!(
                "{}: {e} (give a UTF-8 text file of poems, blank lines between them)",
                path.display()
            ))
            .into()
        }),
        _ => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(Exit::BadInput(
                    "no poem given (pass it as an argument, with --file, or on standard input)"
                        .into(),
                )
                .into());
            }
            let mut s = String::new();
            stdin
                .read_to_string(&mut s)
                .map_err(|e| Exit::BadInput(format!("standard input: {e} (give UTF-8 text)")))?;
            Ok(s)
        }
    }
}

fn load_model(dir: Option<PathBuf>) -> anyhow::Result<checkpoint::Loaded> {
    let shipped = dir.is_none();
    let mut dir = dir.unwrap_or_else(default_model);
    if let Some(found) = checkpoint::find_in(&dir, &["best"]) {
        dir = found;
    }
    if !dir.join("model.safetensors").is_file() {
        anyhow::bail!(
            "no model at {} for --suggest (train it with `{TRAIN_HINT}`{})",
            dir.display(),
            if shipped { ", or pass --model DIR" } else { "" }
        );
    }
    checkpoint::load(&dir)
}

/// `c` in `script`, when it has a one-character form there.
fn convert_char(c: char, script: Script) -> char {
    let mut buf = [0u8; 4];
    let one = c.encode_utf8(&mut buf);
    let s = match script {
        Script::Simplified => to_simplified(one),
        Script::Traditional => to_traditional(one),
    };
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(o), None) => o,
        _ => c,
    }
}

/// One poem as text: a heading, each line with its marks and feet, the rules
/// broken with their places, the readings taken, the suggestions.
pub fn render(c: &Checked, suggestions: &[Suggestion]) -> String {
    let mut s = String::new();
    let how = if c.detected {
        "by its shape"
    } else {
        "as asked"
    };
    s += &format!("{} ({how})", c.form);
    if let Some(g) = &c.rhyme_group {
        s += &format!(" · rhyme group {g}");
    }
    s.push('\n');
    let width = c.lines.iter().map(|l| l.chars.len()).max().unwrap_or(0);
    for l in &c.lines {
        let pad = "\u{3000}".repeat(width.saturating_sub(l.chars.len()));
        let end = if l.end.is_empty() {
            "\u{3000}".to_string()
        } else {
            l.end.chars().take(1).collect()
        };
        let marks: String = l.chars.iter().map(|x| x.mark).collect();
        s += &format!("  {}{end}{pad}  {marks}", l.text);
        if let Some(last) = l.chars.last() {
            if let Some(groups) = &last.foot {
                let g = if groups.is_empty() {
                    "no level group".to_string()
                } else {
                    groups.join(" / ")
                };
                s += &format!(
                    "{}  {} {g}",
                    " ".repeat(width.saturating_sub(l.chars.len())),
                    last.ch
                );
            }
        }
        s.push('\n');
    }
    for f in &c.faults {
        let place = match (f.pos, f.ch) {
            (0, _) | (_, None) => format!("line {}", f.line),
            (p, Some(ch)) => format!("line {}, char {p} {ch}", f.line),
        };
        s += &format!("  ✗ {place}: {} — {}\n", f.name, f.why);
    }
    for r in &c.readings {
        let t = match r.tone {
            Tone::Ping => "level 平",
            Tone::Ze => "oblique 仄",
            Tone::Both => "either",
        };
        s += &format!(
            "  ◐ line {}, char {} {} read {t}: keeps {}\n",
            r.line, r.pos, r.ch, r.rule
        );
    }
    for n in &c.notes {
        s += &format!("  note: {n}\n");
    }
    for sg in suggestions {
        let opts: Vec<String> = sg
            .options
            .iter()
            .map(|(ch, p)| format!("{ch} {:.1}%", 100.0 * p))
            .collect();
        let opts = if opts.is_empty() {
            "(none of the model's likeliest fit)".to_string()
        } else {
            opts.join("  ")
        };
        s += &format!("  → line {}, char {} {}: {opts}\n", sg.line, sg.pos, sg.ch);
    }
    if c.ok {
        s += "keeps every rule\n";
    } else {
        let mut names: Vec<&str> = Vec::new();
        for f in &c.faults {
            if !names.contains(&f.name) {
                names.push(f.name);
            }
        }
        s += &format!(
            "breaks {} {} ({})\n",
            c.faults.len(),
            if c.faults.len() == 1 { "rule" } else { "rules" },
            names.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("check", args)
    }

    #[test]
    fn flags_parse_and_clash_where_they_should() {
        let a = parse(&["床前明月光", "--form", "wujue", "--json"]).unwrap();
        assert_eq!((a.form, a.json), (Some(Form::Wujue), true));
        assert!(parse(&["--form", "sonnet"]).is_err());
        assert!(parse(&["x", "--file", "y"]).is_err(), "a poem and a file");
        assert!(parse(&["--model", "m"]).is_err(), "--model needs --suggest");
    }

    #[test]
    fn the_summary_counts_forms_rules_and_failures() {
        let lex = crate::prosody::check::tests_lexicon();
        let mut s = Summary::default();
        for t in [
            "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
            "白日依山尽，黄河入海目。欲穷千里目，更上一层楼。",
        ] {
            s.poems += 1;
            s.add(&check::check(&lex, t, None).unwrap());
        }
        s.poems += 1;
        s.not_checked += 1;
        assert_eq!((s.checked(), s.ok, s.tones_ok), (2, 1, 1));
        let r = s.render();
        assert!(r.contains("checked 2 poems (五绝 2), 1 not checked"), "{r}");
        assert!(r.contains("keep every rule: 1 (50.0%)"), "{r}");
        assert!(r.contains("句末平仄 1"), "{r}");
    }
}
