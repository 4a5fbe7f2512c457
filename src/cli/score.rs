//! `shiren score FILE`: the model's log-probability, per poem and overall, of
//! every poem in a file as it is: no cleaning rules, no deduplication, no
//! split, no n-grams. Whitespace is removed (the model has no whitespace
//! tokens) and half-width punctuation made full-width; the text is converted
//! to the model's script unless `--no-convert`. The numbers come from
//! `crate::score`; this file reads, prints and nothing else.

use std::io::Write;
use std::path::PathBuf;

use super::Global;
use crate::corpus::clean::normalize;
use crate::corpus::convert::to_script;
use crate::corpus::read::{self, Format, ReadOptions};
use crate::score::{self, PoemScore, Total};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Poems to score: a file or folder (poems.txt `title:content` lines, chinese-poetry JSON, or plain text with blank lines between poems)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Checkpoint to score with: a checkpoint folder, a run folder holding best/, or a PyTorch folder `shiren import` reads [default: models/tang-small, the shipped model]
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Score the text in the script it is written in, instead of converting it to the model's (simplified or traditional) first
    #[arg(long)]
    pub no_convert: bool,
    /// Read the file in this format instead of detecting it
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Print JSON (every poem's numbers and the total) instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(serde::Serialize)]
struct JsonOut<'a> {
    model: String,
    file: String,
    script: crate::corpus::convert::Script,
    converted: bool,
    poems: &'a [PoemScore],
    total: &'a Total,
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    let dir = args
        .model
        .clone()
        .unwrap_or_else(super::write::default_model);
    let loaded = crate::torch::load_any(&dir)?;
    let (model, vocab, script) = (&loaded.model, &loaded.vocab, loaded.meta.script);
    let texts = read_texts(&args, script)?;
    anyhow::ensure!(
        !texts.is_empty(),
        "{}: no poems in it (expected `title:content` lines, chinese-poetry JSON, or text with blank lines between poems)",
        args.file.display()
    );
    let poems = score::score_texts(model, vocab, &texts);
    let total = score::total(&poems);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut json = serde_json::to_string_pretty(&JsonOut {
            model: dir.display().to_string(),
            file: args.file.display().to_string(),
            script,
            converted: !args.no_convert,
            poems: &poems,
            total: &total,
        })?;
        json.push('\n');
        out.write_all(json.as_bytes())?;
    } else {
        out.write_all(table(&args, &dir, &poems, &total).as_bytes())?;
    }
    Ok(())
}

/// Every record of the file(s), whitespace removed, converted unless `--no-convert`;
/// records left empty are skipped.
fn read_texts(
    args: &Args,
    script: crate::corpus::convert::Script,
) -> anyhow::Result<Vec<(String, String)>> {
    let opts = ReadOptions {
        format: args.format,
        skip_bad: false,
    };
    let mut texts = Vec::new();
    for path in read::files_under(&args.file)? {
        let records = read::read_file(&path, &opts)?;
        for r in records.records {
            let text = normalize(&r.text);
            if text.is_empty() {
                continue;
            }
            let text = if args.no_convert {
                text
            } else {
                to_script(&text, script)
            };
            texts.push((r.source, text));
        }
    }
    Ok(texts)
}

fn table(args: &Args, dir: &std::path::Path, poems: &[PoemScore], t: &Total) -> String {
    let mut s = format!(
        "{} scored by {} ({}):\n",
        args.file.display(),
        dir.display(),
        if args.no_convert {
            "text as written".to_string()
        } else {
            "text converted to the model's script".to_string()
        }
    );
    s += &format!(
        "{:>5} {:>6} {:>4} {:>11} {:>9} {:>9}  {}\n",
        "poem", "chars", "unk", "log-prob", "nats/tok", "ppl", "first line"
    );
    for p in poems {
        s += &format!(
            "{:>5} {:>6} {:>4} {:>11.3} {:>9.4} {:>9.2}  {}\n",
            p.index,
            p.chars,
            p.unknown,
            p.log_prob,
            p.loss,
            p.ppl,
            crate::eval::first_line(&p.text)
        );
    }
    s += &format!(
        "{:>5} {:>6} {:>4} {:>11.3} {:>9.4} {:>9.2}  {} poems, {} tokens (characters and END)\n",
        "all", t.chars, t.unknown, t.log_prob, t.loss, t.ppl, t.poems, t.tokens
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("score", args)
    }

    #[test]
    fn score_takes_a_file_and_its_flags() {
        let a = parse(&["p.txt", "--no-convert", "--json"]).unwrap();
        assert_eq!(a.file, PathBuf::from("p.txt"));
        assert!(a.no_convert && a.json && a.model.is_none());
        assert!(parse(&[]).is_err(), "FILE is required");
    }
}
