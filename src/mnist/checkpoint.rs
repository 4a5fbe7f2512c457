//! The MNIST classifier's checkpoint: a directory holding `config.json`
//! (format, `ModelConfig`, `TrainConfig`), `model.safetensors` (the weights
//! under their `param_table` names), `optim.safetensors` (Adam's moments) and
//! `state.json` (completed epochs, step, RNG, best validation accuracy).
//!
//! A minimal stand-in, kept here because `crate::checkpoint` (the poem
//! checkpoint, which also carries a vocabulary) was not in `main` when this was
//! written; the layout follows the same plan so the two can merge. Loading
//! checks the format first, then the config, then each tensor's name and
//! shape, as llm.c checks its header before reading weights. Every file is
//! written atomically and the step is recorded in each, so a run killed
//! between two files is detected rather than resumed from a mix.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::train::TrainConfig;
use crate::cache::write_atomic;
use crate::model::{param_table, Model, ModelConfig};
use crate::optim::Adam;
use crate::rng::Rng;

/// Written into every file; bump when the layout changes.
pub const FORMAT: &str = "shiren-mnist-1";

/// Progress of a run, saved at the end of each epoch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: String,
    /// Completed epochs.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// The generator as it stands at the start of the next epoch.
    pub rng: Rng,
    /// Best validation accuracy seen so far, in [0, 1].
    pub best_valid_acc: f64,
    /// Training time so far, over all resumed runs, in seconds.
    pub seconds: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    format: String,
    model: ModelConfig,
    train: TrainConfig,
}

/// Everything a checkpoint holds.
pub struct Saved {
    pub model: Model,
    pub train: TrainConfig,
    pub adam: Adam,
    pub state: State,
}

/// Whether `dir` looks like a checkpoint (has its config file).
pub fn exists(dir: &Path) -> bool {
    dir.join("config.json").is_file()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn tensors_file(
    tensors: &[(String, Vec<usize>, &[f32])],
    meta: HashMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, d)| f32_bytes(d)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), b)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, Some(meta))?)
}

fn meta(step: u64) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("step".to_string(), step.to_string()),
    ])
}

/// Writes the checkpoint into `dir` (created if needed), `state.json` last.
pub fn save(
    dir: &Path,
    model: &Model,
    train: &TrainConfig,
    adam: &Adam,
    state: &State,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let config = ConfigFile {
        format: FORMAT.to_string(),
        model: model.cfg.clone(),
        train: train.clone(),
    };
    write_atomic(
        &dir.join("config.json"),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )?;
    write_atomic(
        &dir.join("model.safetensors"),
        &tensors_file(&model.tensors(), meta(state.step))?,
    )?;
    let n = adam.m.len();
    let mut m = meta(state.step);
    m.insert("t".to_string(), adam.t.to_string());
    let moments = [
        ("m".to_string(), vec![n], &adam.m[..]),
        ("v".to_string(), vec![n], &adam.v[..]),
    ];
    write_atomic(&dir.join("optim.safetensors"), &tensors_file(&moments, m)?)?;
    write_atomic(
        &dir.join("state.json"),
        serde_json::to_string_pretty(state)?.as_bytes(),
    )?;
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "{}: cannot read (is this a `shiren mnist train` output folder?)",
            path.display()
        )
    })
}

/// Reads a safetensors file, checks its format and step, and returns the named
/// f32 tensors concatenated in the given order, each checked against its shape.
fn read_tensors(
    path: &Path,
    table: &[(String, Vec<usize>)],
    step: u64,
) -> anyhow::Result<(Vec<f32>, HashMap<String, String>)> {
    let bytes = read(path)?;
    let p = path.display();
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{p}: not a safetensors file"))?;
    let md = header.metadata().clone().unwrap_or_default();
    let format = md.get("format").map(String::as_str).unwrap_or("(none)");
    anyhow::ensure!(format == FORMAT, "{p}: format {format}, expected {FORMAT} (written by another version of shiren; train again)");
    let saved_step = md.get("step").map(String::as_str).unwrap_or("(none)");
    anyhow::ensure!(
        saved_step == step.to_string(),
        "{p}: holds step {saved_step} but state.json says step {step} (the run was killed while saving; train again or restore a copy)"
    );
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{p}: corrupt safetensors file"))?;
    let mut out = Vec::new();
    for (name, shape) in table {
        let t = st
            .tensor(name)
            .with_context(|| format!("{p}: no tensor {name}"))?;
        anyhow::ensure!(
            t.dtype() == Dtype::F32 && t.shape() == &shape[..],
            "{p}: tensor {name} is {:?} {:?}, the config needs F32 {shape:?}",
            t.dtype(),
            t.shape()
        );
        out.extend(
            t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok((out, md))
}

/// Loads the config and state only (cheap; for resolving flags before a resume).
pub fn load_config(dir: &Path) -> anyhow::Result<(ModelConfig, TrainConfig, State)> {
    let path = dir.join("config.json");
    let cfg: ConfigFile = serde_json::from_slice(&read(&path)?)
        .with_context(|| format!("{}: bad config", path.display()))?;
    anyhow::ensure!(
        cfg.format == FORMAT,
        "{}: format {}, expected {FORMAT} (written by another version of shiren; train again)",
        path.display(),
        cfg.format
    );
    let path = dir.join("state.json");
    let state: State = serde_json::from_slice(&read(&path)?)
        .with_context(|| format!("{}: bad state", path.display()))?;
    Ok((cfg.model, cfg.train, state))
}

/// Loads the model (for evaluation).
pub fn load_model(dir: &Path) -> anyhow::Result<(Model, TrainConfig, State)> {
    let (mcfg, train, state) = load_config(dir)?;
    let (params, _) = read_tensors(
        &dir.join("model.safetensors"),
        &param_table(&mcfg),
        state.step,
    )?;
    let model = Model::from_params(mcfg, params)
        .with_context(|| format!("{}: weights do not fit the config", dir.display()))?;
    Ok((model, train, state))
}

/// Loads everything, Adam included (for resuming).
pub fn load(dir: &Path) -> anyhow::Result<Saved> {
    let (model, train, state) = load_model(dir)?;
    let n = model.params.len();
    let table = [("m".to_string(), vec![n]), ("v".to_string(), vec![n])];
    let path = dir.join("optim.safetensors");
    let (mv, md) = read_tensors(&path, &table, state.step)?;
    let t = md
        .get("t")
        .and_then(|t| t.parse().ok())
        .with_context(|| format!("{}: no Adam step count", path.display()))?;
    let mut adam = Adam::new(n, train.weight_decay);
    adam.m.copy_from_slice(&mv[..n]);
    adam.v.copy_from_slice(&mv[n..]);
    adam.t = t;
    Ok(Saved {
        model,
        train,
        adam,
        state,
    })
}
