//! The interactive prompt (`shiren write -i`, `shiren chat`): type first
//! words and get a poem; commands change the form, write an acrostic,
//! rewrite a line of the last poem, check a pasted poem. The settings persist
//! from poem to poem, starting from the flags given with `-i`.
//!
//! On a terminal, lines are read with rustyline (editing, history kept in
//! the data dir); otherwise plain lines from standard input, with no prompt
//! printed, so a script can pipe commands in and read poems out. Errors get
//! one line and the prompt goes on; piped input that met an error exits 1.

use std::io::{BufRead, IsTerminal, Write as _};

use anyhow::Context;

use super::check::render as render_check;
use super::write::{default_model, render_text, resolve, Args, WriteSettings, TRAIN_HINT};
use super::{Exit, Global};
use crate::checkpoint;
use crate::prosody::{check, Lexicon, ToneMode};
use crate::write::{template, Form, Lm, Poem, Writer};

const HELP: &str = "\
type first words (明月) and get a poem, or a command:
  acrostic 春夏秋冬     an acrostic: each line starts with one character
  template 明月□□□，…  keep the given characters, fill the □ (or ?)
  rewrite 3            rewrite line 3 of the last poem (rewrite 3,4 for two)
  check 床前明月光，…   check a poem's 格律 (check alone: the last poem)
  title 送别           what the next poems are about (title alone: none)
  keywords 明月,江     words the next poems must hold (keywords alone: none)
  form qijue           wujue, qijue, wulv, qilv or free
  tones strict         off, loose or strict
  rhyme on             on or off
  seed 7               the next poem's seed
  settings             show the settings
  help                 this list
  quit                 leave (or Ctrl-D)";

/// What one line of input asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Begin(String),
    Acrostic(String),
    Template(String),
    Rewrite(Vec<usize>),
    Check(String),
    Title(String),
    Keywords(String),
    Form(Form),
    Tones(ToneMode),
    Rhyme(bool),
    Seed(u64),
    Settings,
    Help,
    Quit,
    Nothing,
}

/// Parses one line; an error is the one line to print.
fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Command::Nothing);
    }
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    // First words: anything that does not start with an ASCII command word.
    if !word.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Ok(Command::Begin(line.to_string()));
    }
    let need = |what: &str| -> Result<&str, String> {
        if rest.is_empty() {
            Err(format!(
                "`{word}` needs {what} (type help for the commands)"
            ))
        } else {
            Ok(rest)
        }
    };
    Ok(match word.to_ascii_lowercase().as_str() {
        "quit" | "exit" | "q" => Command::Quit,
        "help" | "h" => Command::Help,
        "settings" => Command::Settings,
        "acrostic" => {
            Command::Acrostic(need("the head characters, e.g. acrostic 春夏秋冬")?.into())
        }
        "template" => {
            Command::Template(need("a template, e.g. template 明月□□□，□□□□乡。")?.into())
        }
        "check" => Command::Check(rest.into()),
        "rewrite" | "line" => {
            let lines: Result<Vec<usize>, _> = need("a line number, e.g. rewrite 3")?
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::parse)
                .collect();
            Command::Rewrite(lines.map_err(|_| {
                format!("`{rest}` is not a line number (e.g. rewrite 3, or rewrite 3,4)")
            })?)
        }
        "title" => Command::Title(rest.into()),
        "keywords" => Command::Keywords(rest.into()),
        "form" => Command::Form(need("a form: wujue, qijue, wulv, qilv or free")?.parse()?),
        "tones" => Command::Tones(need("off, loose or strict")?.parse()?),
        "rhyme" => Command::Rhyme(match need("on or off")? {
            "on" | "yes" | "1" => true,
            "off" | "no" | "0" => false,
            other => return Err(format!("rhyme `{other}`: use on or off")),
        }),
        "seed" => Command::Seed(
            need("a number")?
                .parse()
                .map_err(|_| format!("seed `{rest}` is not a whole number"))?,
        ),
        _ => {
            return Err(format!(
                "unknown command `{word}` (type help for the commands)"
            ))
        }
    })
}

/// The prompt's state: the settings for the next poem and the last poem.
struct Session<'a> {
    writer: Writer<'a, Lm<'a>>,
    lex: &'a Lexicon,
    s: WriteSettings,
    last: Option<Poem>,
}

impl Session<'_> {
    /// Runs one command; `Ok(None)` leaves the prompt.
    fn run(&mut self, cmd: Command) -> anyhow::Result<Option<String>> {
        let o = &mut self.s.opts;
        Ok(Some(match cmd {
            Command::Quit => return Ok(None),
            Command::Nothing => String::new(),
            Command::Help => format!("{HELP}\n"),
            Command::Settings => format!(
                "form {}, tones {}, rhyme {}, seed {}, title {}, keywords {}\n",
                format!("{:?}", o.form).to_lowercase(),
                format!("{:?}", o.tones).to_lowercase(),
                if o.rhyme { "on" } else { "off" },
                self.s.seed,
                if o.title.is_empty() { "none" } else { &o.title },
                if o.keywords.is_empty() {
                    "none".to_string()
                } else {
                    o.keywords.join(",")
                }
            ),
            Command::Title(t) => {
                o.title = t;
                match o.title.is_empty() {
                    true => "no title\n".into(),
                    false => format!("title {}\n", o.title),
                }
            }
            Command::Keywords(k) => {
                // Checked now, so a bad list is named at once rather than at the next poem.
                let words = crate::write::keywords::parse(&[k])?;
                if !words.is_empty() && o.form == Form::Free {
                    o.form = Form::Qijue;
                    o.rhyme = true;
                }
                o.keywords = words;
                match o.keywords.is_empty() {
                    true => "no keywords\n".into(),
                    false => format!(
                        "keywords {} (form {})\n",
                        o.keywords.join(","),
                        o.form.name_zh()
                    ),
                }
            }
            Command::Form(f) => {
                o.form = f;
                o.rhyme = f.shape().is_some();
                format!(
                    "form {} (rhyme {})\n",
                    f.name_zh(),
                    if o.rhyme { "on" } else { "off" }
                )
            }
            Command::Tones(t) => {
                o.tones = t;
                format!("tones {t:?}\n").to_lowercase()
            }
            Command::Rhyme(r) => {
                o.rhyme = r;
                format!("rhyme {}\n", if r { "on" } else { "off" })
            }
            Command::Seed(n) => {
                self.s.seed = n;
                format!("seed {n}\n")
            }
            Command::Begin(text) => self.write(|o| o.begin = text)?,
            Command::Acrostic(text) => self.write(|o| o.acrostic = text)?,
            Command::Template(text) => self.write(|o| o.template = text)?,
            Command::Rewrite(lines) => {
                let last = self
                    .last
                    .as_ref()
                    .context("no poem to rewrite yet (type first words first)")?;
                let t = template::revise_template(&last.text, &lines)?;
                self.write(|o| o.template = t)?
            }
            Command::Check(text) => {
                let text = match (text.is_empty(), &self.last) {
                    (false, _) => text,
                    (true, Some(p)) => p.text.clone(),
                    (true, None) => anyhow::bail!("nothing to check (paste a poem after `check`)"),
                };
                let twin = check::with_other_script(self.lex, &text);
                let c = check::check(twin.as_ref().unwrap_or(self.lex), &text, None)?;
                render_check(&c, &[])
            }
        }))
    }

    /// Writes one poem with the settings, changed by `edit` for this poem only.
    fn write(&mut self, edit: impl FnOnce(&mut crate::write::Options)) -> anyhow::Result<String> {
        let mut o = self.s.opts.clone();
        edit(&mut o);
        if !o.acrostic.is_empty() && o.form == Form::Free {
            o.form = Form::Qijue;
            o.rhyme = true;
        }
        if !o.template.is_empty() {
            // The template's own shape decides, whatever form the prompt is set to.
            o.form = template::parse(&o.template)?.form().unwrap_or(Form::Free);
            o.rhyme = o.form.shape().is_some() && self.s.opts.rhyme;
        }
        let poems = self.writer.write_many(&o, 1, self.s.seed)?;
        self.s.seed = self.s.seed.wrapping_add(1);
        let poem = poems
            .into_iter()
            .next()
            .context("the writer returned no poem")?;
        let mut out = render_text(std::slice::from_ref(&poem));
        for n in poem.notes.iter().filter(|n| n.starts_with("the kept")) {
            out += &format!("({n})\n");
        }
        self.last = Some(poem);
        out.push('\n'); // a blank line after each poem
        Ok(out)
    }
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let mut s = resolve(&args)?;
    s.count = 1;
    let dir = s.model.clone();
    let dir = checkpoint::find_in(&dir, &["best"]).unwrap_or(dir);
    anyhow::ensure!(
        dir.join("model.safetensors").is_file(),
        "no model at {} (train it with `{TRAIN_HINT}`{})",
        dir.display(),
        if args.model.is_none() && dir == default_model() {
            ", or pass --model DIR"
        } else {
            ""
        }
    );
    let loaded = checkpoint::load(&dir)?;
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    let lex = Lexicon::load(&data_dir, loaded.meta.script)
        .context("loading the 平水韵 tone and rhyme lexicon")?;
    let lm = Lm::new(&loaded.model, &loaded.vocab);
    let mut session = Session {
        writer: Writer::new(&lm, Some(&lex)),
        lex: &lex,
        s,
        last: None,
    };
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        terminal(&mut session, &data_dir)
    } else {
        piped(&mut session, stdin.lock())
    }
}

/// Lines from a pipe: no prompt, no banner; an error is one line on stderr,
/// and the run exits 1 at the end if any line failed.
fn piped(session: &mut Session, input: impl BufRead) -> anyhow::Result<()> {
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for line in input.lines() {
        let line = line.context("reading standard input (give UTF-8 lines)")?;
        match parse(&line)
            .map_err(anyhow::Error::msg)
            .and_then(|c| session.run(c))
        {
            Ok(Some(text)) => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            Ok(None) => break,
            Err(e) => {
                failed = true;
                out.flush()?;
                eprintln!("shiren: {e:#}");
            }
        }
    }
    if failed {
        return Err(Exit::Quiet(1).into());
    }
    Ok(())
}

/// A terminal: rustyline's editing and history (kept in the data dir).
fn terminal(session: &mut Session, data_dir: &std::path::Path) -> anyhow::Result<()> {
    use rustyline::error::ReadlineError;
    let mut rl = rustyline::DefaultEditor::new().context("starting the line editor")?;
    let history = data_dir.join("prompt_history.txt");
    let _ = rl.load_history(&history);
    println!("诗人 · type first words for a poem, help for the commands, quit to leave");
    loop {
        match rl.readline("诗> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                }
                match parse(&line)
                    .map_err(anyhow::Error::msg)
                    .and_then(|c| session.run(c))
                {
                    Ok(Some(text)) => print!("{text}"),
                    Ok(None) => break,
                    Err(e) => eprintln!("shiren: {e:#}"),
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading the terminal"),
        }
    }
    let _ = std::fs::create_dir_all(data_dir);
    let _ = rl.save_history(&history);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_unknown_ones_are_named() {
        assert_eq!(parse("明月"), Ok(Command::Begin("明月".into())));
        assert_eq!(parse("  "), Ok(Command::Nothing));
        assert_eq!(parse("form qijue"), Ok(Command::Form(Form::Qijue)));
        assert_eq!(parse("tones strict"), Ok(Command::Tones(ToneMode::Strict)));
        assert_eq!(parse("rewrite 3,4"), Ok(Command::Rewrite(vec![3, 4])));
        assert_eq!(parse("QUIT"), Ok(Command::Quit));
        assert_eq!(parse("check"), Ok(Command::Check(String::new())));
        assert_eq!(parse("rhyme off"), Ok(Command::Rhyme(false)));
        assert_eq!(parse("title 送别"), Ok(Command::Title("送别".into())));
        assert_eq!(parse("title"), Ok(Command::Title(String::new())));
        assert_eq!(
            parse("keywords 明月,江"),
            Ok(Command::Keywords("明月,江".into()))
        );
        let e = parse("fly away").unwrap_err();
        assert!(
            e.contains("unknown command `fly`") && e.contains("help"),
            "{e}"
        );
        assert!(parse("form sonnet").unwrap_err().contains("sonnet"));
        assert!(parse("rewrite x")
            .unwrap_err()
            .contains("not a line number"));
        assert!(parse("acrostic").unwrap_err().contains("needs"));
    }
}
