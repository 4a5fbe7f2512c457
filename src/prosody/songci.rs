//! Reading the Song ci of the fetched chinese-poetry package, and deriving
//! the 词谱 from them (the I/O around [`super::tunes`], which stays pure).
//!
//! `dist/songci/ci.song.N.json` hold 21,053 ci as `{author, paragraphs,
//! rhythmic}`, in simplified script; `rhythmic` is the tune's name. The files
//! are read in the order of N, so held-out splits are the same on every machine.

use std::path::Path;

use anyhow::Context as _;

use super::cilin::Cilin;
use super::tunes::Cipu;
use super::Lexicon;
use crate::corpus::convert::Script;

#[derive(serde::Deserialize)]
struct CiRecord {
    paragraphs: Vec<String>,
    rhythmic: String,
}

/// Every Song ci as (tune, text), in file order.
pub fn read_ci(package: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let dir = package.join("dist/songci");
    let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: cannot list the Song ci", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("ci.song.")?.strip_suffix(".json")?;
            Some((n.parse().ok()?, e.path()))
        })
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no ci.song.N.json files (delete the corpus package folder to refetch it)",
        dir.display()
    );
    let mut out = Vec::new();
    for (_, path) in files {
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        let v: Vec<CiRecord> = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a list of ci records", path.display()))?;
        out.extend(v.into_iter().map(|r| (r.rhythmic, r.paragraphs.concat())));
    }
    Ok(out)
}

/// The Song ci, the simplified lexicon and its 词林正韵 classes, fetched
/// under `data_dir` on first use; what `shiren tunes`, `write --tune` and
/// the web page's tunes are built from.
pub struct Songci {
    pub ci: Vec<(String, String)>,
    pub lex: Lexicon,
    pub cilin: Cilin,
}

impl Songci {
    pub fn load(data_dir: &Path) -> anyhow::Result<Songci> {
        let package = crate::corpus::fetch::ensure_package(data_dir)?;
        let ci = read_ci(&package).context("reading the Song ci")?;
        // The collection is simplified, so the patterns are derived with the simplified lexicon.
        let lex = Lexicon::load(data_dir, Script::Simplified)
            .context("loading the 平水韵 tone and rhyme lexicon")?;
        let cilin = Cilin::new(&lex);
        Ok(Songci { ci, lex, cilin })
    }

    /// The 词谱 of every tune with enough ci.
    pub fn cipu(&self) -> Cipu {
        Cipu::derive(
            &self.lex,
            &self.cilin,
            self.ci.iter().map(|(t, x)| (t.as_str(), x.as_str())),
        )
    }
}
