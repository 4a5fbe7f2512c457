//! `shiren corpus export DIR`: the cleaned, encoded, split corpus for PyTorch
//! (see `crate::dataset` for the files). Glue only.

use std::path::PathBuf;

use anyhow::Context as _;

use super::corpus::CorpusArgs;
use crate::corpus;
use crate::dataset;
use crate::train::encode_tagged;
use crate::vocab::Vocab;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Folder to write data.safetensors, vocab.json, corpus.json and train/valid/test.txt into
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Encode with this vocabulary (e.g. a model's vocab.json, to fine-tune it) instead of building one from the training part
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
    /// Build the vocabulary without form tags and leave training poems untagged [default: tagged, as `shiren train` does]
    #[arg(long)]
    pub no_form_tags: bool,
}

pub fn run(a: &ExportArgs, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let (source, opts) = a.corpus.resolve()?;
    let c = corpus::load(&source, &opts, data_dir).with_context(|| format!("reading {source}"))?;
    let mut texts = corpus::split(c.poems.into_iter().map(|p| p.text), |t| t.as_str());
    let vocab = match &a.vocab {
        Some(path) => Vocab::load(path)?,
        None => {
            let v = Vocab::build(texts[0].iter().map(String::as_str), a.corpus.min_count);
            if a.no_form_tags {
                v
            } else {
                v.with_tags(&crate::corpus::Form::REGULATED)
            }
        }
    };
    let parts: [dataset::Part; 3] = std::array::from_fn(|k| {
        let ids = texts[k]
            .iter()
            .map(|t| match k {
                0 if !a.no_form_tags => encode_tagged(&vocab, t),
                _ => vocab.encode(t),
            })
            .collect();
        dataset::Part {
            texts: std::mem::take(&mut texts[k]),
            ids,
        }
    });
    let info = serde_json::json!({
        "corpus": source.to_string(),
        "script": opts.script,
        "min_len": opts.min_len,
        "max_len": opts.max_len,
        "min_count": a.corpus.min_count,
        "form_tags": !a.no_form_tags,
    });
    dataset::write(&a.out, &parts, &vocab, info)?;
    println!(
        "{source} → {}: vocabulary {}, train {} / valid {} / test {} poems, {} training tokens",
        a.out.display(),
        vocab.len(),
        parts[0].ids.len(),
        parts[1].ids.len(),
        parts[2].ids.len(),
        parts[0].ids.iter().map(Vec::len).sum::<usize>()
    );
    Ok(())
}
