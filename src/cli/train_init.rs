//! `shiren train --init-from DIR`: a new run that starts from a model's
//! weights. The run keeps the model's architecture, vocabulary and script
//! (a flag that disagrees is refused, naming both values); the optimizer,
//! step count and schedule start afresh. Characters of the new corpus that
//! the vocabulary lacks are read (and predicted) as UNK: the embedding and
//! the output layer keep their shape, so every learned row keeps its meaning,
//! and the note printed at the start says how much of the corpus that is.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::checkpoint::Loaded;
use crate::corpus::Poem;
use crate::train::TrainConfig;
use crate::vocab::Vocab;

/// `cfg` with the architecture (and script and form tags) of `loaded`;
/// an error when a flag in `flags` asked for another.
pub fn keep_architecture(
    cfg: TrainConfig,
    loaded: &Loaded,
    dir: &Path,
    flags: &Map<String, Value>,
) -> anyhow::Result<TrainConfig> {
    let m = &loaded.model.cfg;
    anyhow::ensure!(
        m.input == crate::model::Input::Tokens && m.head == crate::model::Head::EveryStep,
        "{}: not a poem model (it classifies sequences); pass a model `shiren train` wrote",
        dir.display()
    );
    let arch = json!({
        "cell": m.cell,
        "layers": m.layers,
        "embed": m.embed,
        "hidden": m.hidden,
        "tied": m.tied,
        "shortlist": m.shortlist,
        "positions": m.positions.as_ref().map_or(0, |p| p.size),
        "form_tags": !loaded.vocab.tags().is_empty(),
        "script": loaded.meta.script,
    });
    for (key, want) in arch.as_object().expect("an object") {
        if let Some(given) = flags.get(key) {
            anyhow::ensure!(
                given == want,
                "--{} {} disagrees with the model {} ({key} {want}); a run from --init-from keeps the model's architecture, vocabulary and script: drop the flag, or train from scratch",
                key.replace('_', "-"),
                given.to_string().trim_matches('"'),
                dir.display()
            );
        }
    }
    let mut cfg = cfg
        .merge_json(&arch.to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // A model that reads titles goes on reading them; one that does not may learn to.
    if m.positions.as_ref().is_some_and(|p| !p.resets.is_empty()) {
        cfg.titles = true;
    }
    // Likewise a model with the title vector keeps it.
    if m.positions.as_ref().is_some_and(|p| p.title) {
        anyhow::ensure!(
            flags.get("title_vector") != Some(&Value::Bool(false)),
            "--title-vector false disagrees with the model {} (it has the title vector); a run from --init-from keeps the model's architecture: drop the flag, or train from scratch",
            dir.display()
        );
        cfg.title_vector = true;
    }
    Ok(cfg)
}

/// One line on what the model's vocabulary does not cover in `poems`.
pub fn unknown_note(dir: &Path, vocab: &Vocab, poems: &[Poem]) -> String {
    let (mut total, mut missing) = (0usize, BTreeMap::<char, usize>::new());
    for p in poems {
        for c in p.text.chars() {
            total += 1;
            if vocab.id(c).is_none() {
                *missing.entry(c).or_default() += 1;
            }
        }
    }
    let n: usize = missing.values().sum();
    if n == 0 {
        return format!(
            "init-from {}: every character of the corpus is in the model's vocabulary of {}",
            dir.display(),
            vocab.len()
        );
    }
    let mut common: Vec<(char, usize)> = missing.into_iter().collect();
    common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown: String = common.iter().take(10).map(|(c, _)| *c).collect();
    format!(
        "init-from {}: {n} of {total} characters of the corpus ({:.2}%, {} distinct, commonest {shown}) are not in the model's vocabulary of {} and are read as UNK",
        dir.display(),
        100.0 * n as f64 / total.max(1) as f64,
        common.len(),
        vocab.len()
    )
}
