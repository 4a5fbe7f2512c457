//! Checkpoints: a model, its vocabulary (when it reads characters) and
//! (optionally) the optimiser state and position that `--resume` needs, as one
//! directory. The poem model and the MNIST classifier share this format; the
//! poem model's own fields ([`Meta`], [`Progress`]) and its [`save`] / [`load`]
//! sit on top of the shared parts ([`write_dir`], [`read_config`],
//! [`read_model`], [`read_resume`]).
//!
//! ```text
//! DIR/config.json         format + version, kind (absent: poems), ModelConfig, step, the kind's own fields
//! DIR/vocab.json          the vocabulary (crate::vocab::Vocab::to_json)             (poems only)
//! DIR/model.safetensors   one tensor per row of model::param_table, PyTorch names, F32 (or F16)
//! DIR/optim.safetensors   Adam's moments as `m.<name>` and `v.<name>`, F32      (resumable only)
//! DIR/state.json          step, Adam's scalars, and where the run stands          (resumable only)
//! ```
//!
//! A checkpoint is written into `.NAME.new` beside its destination and renamed
//! into place only once every file is on disk, so a run killed at any moment
//! (`kill -9`) leaves the previous checkpoint or the new one, never a mix.
//! Loading checks the format version first, then the kind and configuration,
//! then the tensor names and shapes, and reports the first problem as one line
//! naming the file. This module knows nothing about training: the
//! TrainConfig is kept as opaque JSON here and interpreted by `train/`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::corpus::convert::Script;
use crate::model::{param_table, Model, ModelConfig};
use crate::optim::Adam;
use crate::rng::Rng;
use crate::vocab::Vocab;

/// Written into config.json and the safetensors metadata; checked first on load.
pub const FORMAT: &str = "shiren-checkpoint";
/// Bumped whenever a reader of the previous version would misread a new checkpoint.
pub const VERSION: u32 = 1;

pub const CONFIG_FILE: &str = "config.json";
pub const VOCAB_FILE: &str = "vocab.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIM_FILE: &str = "optim.safetensors";
pub const STATE_FILE: &str = "state.json";

/// config.json's `kind` of a poem model. Poem models leave `kind` out (they
/// were the only kind when the format began); other kinds write theirs.
pub const POEMS: &str = "poems";
/// The format of the MNIST checkpoints that shiren wrote before the classifier
/// shared this one; refused with a hint to retrain.
const RETIRED_MNIST_FORMAT: &str = "shiren-mnist-1";

/// How the weights are stored in model.safetensors. Loading always gives f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// Half the size, for a shipped model; not for resuming (rounding changes the run).
    F16,
}

/// What config.json holds: everything needed to rebuild and describe the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] when written by this shiren.
    pub version: u32,
    pub model: ModelConfig,
    /// The `train::TrainConfig` of the run that wrote it (opaque here).
    pub train: serde_json::Value,
    /// Script of the training text; writing and evaluation must use the same.
    pub script: Script,
    /// Human-readable description of the training corpus (collection or file, filters).
    pub corpus: String,
    /// Optimiser steps taken when this checkpoint was written.
    pub step: u64,
    /// Validation loss (nats per character) at this checkpoint, if measured.
    pub val_loss: Option<f64>,
    /// Best validation loss of the run so far.
    pub best_val_loss: Option<f64>,
    /// Storage of model.safetensors.
    pub precision: Precision,
}

impl Meta {
    /// A fresh description with the format fields filled in.
    pub fn new(
        model: ModelConfig,
        train: serde_json::Value,
        script: Script,
        corpus: String,
    ) -> Meta {
        Meta {
            format: FORMAT.to_string(),
            version: VERSION,
            model,
            train,
            script,
            corpus,
            step: 0,
            val_loss: None,
            best_val_loss: None,
            precision: Precision::F32,
        }
    }
}

/// Where a run stands, for `--resume` (state.json). Together with the weights
/// and Adam's moments this is the whole state of a run: resuming from it
/// continues bit for bit as the uninterrupted run would have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Optimiser steps taken.
    pub step: u64,
    /// The epoch in progress, counting from 0.
    pub epoch: u64,
    /// Batches of that epoch already trained on (its order comes from seed and epoch).
    pub position: usize,
    pub best_val_loss: Option<f64>,
    /// The training RNG (dropout masks) after `step` steps.
    pub rng: Rng,
    /// Tokens trained on so far (for reporting).
    pub tokens: u64,
    /// Seconds spent training so far (for reporting).
    pub elapsed_s: f64,
    /// Loss sum and token count since the last logged step, so that a resumed
    /// run logs the same mean training loss as the uninterrupted one.
    #[serde(default)]
    pub log_loss: f64,
    #[serde(default)]
    pub log_tokens: f64,
    /// SHA-256 of the encoded training and validation poems: a resume on other
    /// data (a changed corpus or cleaning) cannot end where the first run would.
    #[serde(default)]
    pub data_sha256: String,
    /// The step count a time budget (`--minutes`) fixed, 0 before or without one.
    #[serde(default)]
    pub budget_steps: u64,
    pub adam: AdamSettings,
}

/// Adam's scalars; its moments live in optim.safetensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamSettings {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub t: u64,
}

impl AdamSettings {
    /// The scalars of `adam`, to save beside its moments.
    pub fn of(adam: &Adam) -> AdamSettings {
        AdamSettings {
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            weight_decay: adam.weight_decay,
            t: adam.t,
        }
    }

    /// Adam with these scalars and the moments `m` and `v`.
    fn with_moments(&self, m: Vec<f32>, v: Vec<f32>) -> Adam {
        Adam {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            m,
            v,
            t: self.t,
        }
    }
}

/// A state.json: whatever a trainer needs to go on, with at least the step
/// (checked against config.json's) and Adam's scalars.
pub trait ResumeState: Serialize + DeserializeOwned {
    /// Optimiser steps taken.
    fn step(&self) -> u64;
    /// Adam's scalars; its moments are in optim.safetensors.
    fn adam(&self) -> &AdamSettings;
}

impl ResumeState for Progress {
    fn step(&self) -> u64 {
        self.step
    }
    fn adam(&self) -> &AdamSettings {
        &self.adam
    }
}

/// A checkpoint as read back.
pub struct Loaded {
    pub model: Model,
    pub vocab: Vocab,
    pub meta: Meta,
}

/// Everything a checkpoint can fail with; each names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{dir}: no checkpoint here (expected a folder with config.json, vocab.json and model.safetensors, such as runs/NAME/best written by `shiren train`)")]
    NotACheckpoint { dir: String },
    #[error("{msg}")]
    NoneYet { msg: String },
    #[error("{path}: missing (the checkpoint is incomplete; copy the whole folder again)")]
    Missing { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {msg} (the file is damaged; copy the checkpoint folder again or use the run's other checkpoint)")]
    Damaged { path: String, msg: String },
    #[error("{path}: checkpoint format `{format}` version {version}, but this shiren reads `{FORMAT}` version {VERSION} (use the shiren that wrote it, or retrain)")]
    Version {
        path: String,
        format: String,
        version: String,
    },
    #[error("{path}: {msg} (config.json and {file} come from different runs; copy the whole checkpoint folder)")]
    Mismatch {
        path: String,
        file: &'static str,
        msg: String,
    },
    #[error("{path}: an MNIST checkpoint in the format of an older shiren, which this one no longer reads (delete the folder and train again with `shiren mnist train`, or train into another --out)")]
    RetiredMnist { path: String },
    #[error("{path}: a checkpoint of a `{found}` model, where a `{want}` model is needed (poem models come from `shiren train`, digit classifiers from `shiren mnist train`)")]
    WrongKind {
        path: String,
        found: String,
        want: String,
    },
    #[error("{path}: model.safetensors holds step {weights} but state.json says step {state} (the folder mixes two saves; resume from an intact copy, or train again)")]
    StepMismatch {
        path: String,
        weights: u64,
        state: u64,
    },
    #[error("{path}: no optimiser state (this checkpoint was saved for use, not to resume; resume from the run's last/ folder)")]
    NotResumable { path: String },
    #[error("{path}: {msg} (config.json is damaged or was edited by hand; copy the checkpoint folder again)")]
    BadConfig { path: String, msg: String },
    #[error("{path}: tensor `{name}` holds {count} non-finite values (NaN or infinity); the run that wrote it diverged or the file is damaged: use another checkpoint or retrain")]
    NonFinite {
        path: String,
        name: String,
        count: usize,
    },
    #[error("{path}: no shiren metadata (written by another program, e.g. safetensors.torch.save_file without metadata); save it with metadata={{\"format\": \"{FORMAT}/{VERSION}\"}} and the tensor names and shapes of config.json")]
    NoMetadata { path: String },
    #[error("{path}: tensor `{name}` is stored as {dtype}; shiren reads F32 and F16 (convert it, e.g. with tensor.float(), and save again)")]
    Dtype {
        path: String,
        name: String,
        dtype: String,
    },
    #[error("{path}: {size} bytes, but config.json's model needs about {need} (config.json and {file} come from different runs; copy the whole checkpoint folder)")]
    Size {
        path: String,
        file: &'static str,
        size: u64,
        need: u64,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn damaged(path: &Path, msg: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Damaged {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// Checkpoint files are regular files of at most a few GiB: a device, a FIFO
/// or an absurd size is refused before it is read.
const MAX_FILE_BYTES: u64 = 8 << 30;

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    if let Ok(m) = std::fs::metadata(path) {
        if !m.is_file() || m.len() > MAX_FILE_BYTES {
            return Err(damaged(
                path,
                if m.is_file() {
                    format!("{} bytes, more than a checkpoint file can hold", m.len())
                } else {
                    "not a regular file".into()
                },
            ));
        }
    }
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::Missing {
                path: path.display().to_string(),
            }
        } else {
            io_err(path)(e)
        }
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    // On disk before the folder is renamed into place, or a crash could publish empty files.
    f.sync_all().map_err(io_err(path))
}

// ---------------------------------------------------------------------------
// safetensors <-> flat f32

/// One key, `format: shiren-checkpoint/1`: safetensors keeps its metadata in a
/// HashMap, so two keys would come out in a different order in every process
/// and identical runs would not give byte-identical files.
fn safetensors_metadata() -> HashMap<String, String> {
    HashMap::from([("format".to_string(), format!("{FORMAT}/{VERSION}"))])
}

/// Serialises named f32 tensors, converting to `precision`.
fn to_safetensors(
    tensors: &[(String, Vec<usize>, &[f32])],
    precision: Precision,
) -> Result<Vec<u8>, String> {
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            let bytes = match precision {
                Precision::F32 => data.iter().flat_map(|x| x.to_le_bytes()).collect(),
                Precision::F16 => data
                    .iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
            };
            (name.clone(), shape.clone(), bytes)
        })
        .collect();
    let dtype = match precision {
        Precision::F32 => Dtype::F32,
        Precision::F16 => Dtype::F16,
    };
    let views = encoded
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize(views, Some(safetensors_metadata())).map_err(|e| e.to_string())
}

/// Reads tensors named and shaped as `table`, in that order, into one flat f32
/// buffer. Checks the format metadata first, then names, shapes and dtypes.
fn from_safetensors(
    path: &Path,
    bytes: &[u8],
    table: &[(String, Vec<usize>)],
    file: &'static str,
) -> Result<Vec<f32>, CheckpointError> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| damaged(path, e))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if !meta.contains_key("format") && !meta.contains_key("version") {
        return Err(CheckpointError::NoMetadata {
            path: path.display().to_string(),
        });
    }
    let tag = meta.get("format").cloned().unwrap_or_default();
    let (format, version) = match tag.split_once('/') {
        Some((f, v)) => (f.to_string(), v.to_string()),
        // The first files of version 1 kept the version under its own key.
        None => (
            tag.clone(),
            meta.get("version").cloned().unwrap_or_default(),
        ),
    };
    if format != FORMAT || version != VERSION.to_string() {
        return Err(CheckpointError::Version {
            path: path.display().to_string(),
            format: if format.is_empty() {
                "(none)".into()
            } else {
                format
            },
            version: if version.is_empty() {
                "(none)".into()
            } else {
                version
            },
        });
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| damaged(path, e))?;
    let mismatch = |msg: String| CheckpointError::Mismatch {
        path: path.display().to_string(),
        file,
        msg,
    };
    let want: BTreeSet<&str> = table.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(extra) = st.names().into_iter().find(|n| !want.contains(n)) {
        return Err(mismatch(format!(
            "has tensor `{extra}` that the model in config.json does not have"
        )));
    }
    // Every name, shape and dtype against the table before any data is read.
    let mut views = Vec::with_capacity(table.len());
    for (name, shape) in table {
        let view = st
            .tensor(name)
            .map_err(|_| mismatch(format!("lacks tensor `{name}`")))?;
        if view.shape() != shape.as_slice() {
            return Err(mismatch(format!(
                "tensor `{name}` has shape {}, config.json needs {}",
                show_shape(view.shape()),
                show_shape(shape)
            )));
        }
        if !matches!(view.dtype(), Dtype::F32 | Dtype::F16) {
            return Err(CheckpointError::Dtype {
                path: path.display().to_string(),
                name: name.clone(),
                dtype: view.dtype().to_string(),
            });
        }
        views.push((name, view));
    }
    let total: usize = table.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    let mut out = Vec::with_capacity(total);
    for (name, view) in views {
        let start = out.len();
        let data = view.data();
        match view.dtype() {
            Dtype::F32 => out.extend(
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            _ => out.extend(
                data.chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
        }
        // NaN weights write garbage that looks like poems and score as if fine.
        let count = out[start..].iter().filter(|x| !x.is_finite()).count();
        if count > 0 {
            return Err(CheckpointError::NonFinite {
                path: path.display().to_string(),
                name: name.clone(),
                count,
            });
        }
    }
    Ok(out)
}

/// `[4, 5]` as `4×5`, the way the docs write shapes.
fn show_shape(shape: &[usize]) -> String {
    let s: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    s.join("×")
}

/// Refuses a tensor file far larger than `table` can fill (read whole, it
/// would be allocated before its header is checked). 4 bytes a value, plus
/// room for a header of the size safetensors itself accepts.
fn check_size(
    path: &Path,
    table: &[(String, Vec<usize>)],
    file: &'static str,
) -> Result<(), CheckpointError> {
    let values: u64 = table
        .iter()
        .map(|(_, s)| s.iter().product::<usize>() as u64)
        .sum();
    let need = values * 4;
    let most = need + 100_000_000;
    match std::fs::metadata(path) {
        Ok(m) if m.len() > most => Err(CheckpointError::Size {
            path: path.display().to_string(),
            file,
            size: m.len(),
            need,
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// atomic directory replacement

fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{suffix}"))
}

/// Finishes or undoes a replacement that a kill interrupted: if `dest` is gone
/// but its previous version waits in `.NAME.old`, that is put back.
pub fn recover(dest: &Path) -> Result<(), CheckpointError> {
    let old = sibling(dest, "old");
    if old.is_dir() {
        if dest.exists() {
            std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
        } else {
            std::fs::rename(&old, dest).map_err(io_err(dest))?;
        }
    }
    Ok(())
}

/// Replaces the directory `dest` with one built by `fill`, atomically as far as
/// readers that call [`recover`] can tell: build `.NAME.new`, move the old
/// `dest` to `.NAME.old`, rename the new one into place, drop the old one.
pub fn replace_dir<F>(dest: &Path, fill: F) -> Result<(), CheckpointError>
where
    F: FnOnce(&Path) -> Result<(), CheckpointError>,
{
    recover(dest)?;
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent {
        std::fs::create_dir_all(p).map_err(io_err(p))?;
    }
    let new = sibling(dest, "new");
    if new.exists() {
        std::fs::remove_dir_all(&new).map_err(io_err(&new))?;
    }
    std::fs::create_dir(&new).map_err(io_err(&new))?;
    if let Err(e) = fill(&new) {
        let _ = std::fs::remove_dir_all(&new);
        return Err(e);
    }
    let old = sibling(dest, "old");
    if dest.exists() {
        std::fs::rename(dest, &old).map_err(io_err(dest))?;
    }
    std::fs::rename(&new, dest).map_err(io_err(dest))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    // Make the renames themselves durable.
    if let Some(p) = parent {
        if let Ok(d) = std::fs::File::open(p) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// save and load

/// The optimiser file's table: `m.<name>` and `v.<name>` for every row of
/// the model's parameter table, interleaved.
fn moments_table(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    param_table(cfg)
        .into_iter()
        .flat_map(|(name, shape)| {
            [
                (format!("m.{name}"), shape.clone()),
                (format!("v.{name}"), shape),
            ]
        })
        .collect()
}

/// Writes a checkpoint folder of any kind to `dir`, replacing what was there:
/// the weights at `precision`, the vocabulary when the model has one, with
/// `resume` Adam's moments and `state` (state.json), and `config` as
/// config.json, last. `config` must hold the shared header (`format`,
/// `version`, `model`, `step`, and `kind` unless poems).
pub fn write_dir<S: Serialize>(
    dir: &Path,
    config: &impl Serialize,
    model: &Model,
    precision: Precision,
    vocab: Option<&Vocab>,
    resume: Option<(&Adam, &S)>,
) -> Result<(), CheckpointError> {
    let config = serde_json::to_string_pretty(config).expect("a config serialises");
    let weights = to_safetensors(&model.tensors(), precision)
        .map_err(|e| damaged(&dir.join(MODEL_FILE), e))?;
    let optim = match resume {
        Some((adam, state)) => {
            let table = moments_table(&model.cfg);
            let mut named = Vec::with_capacity(table.len());
            let mut off = 0;
            for pair in table.chunks_exact(2) {
                let n: usize = pair[0].1.iter().product();
                named.push((pair[0].0.clone(), pair[0].1.clone(), &adam.m[off..off + n]));
                named.push((pair[1].0.clone(), pair[1].1.clone(), &adam.v[off..off + n]));
                off += n;
            }
            let bytes = to_safetensors(&named, Precision::F32)
                .map_err(|e| damaged(&dir.join(OPTIM_FILE), e))?;
            let state = serde_json::to_string_pretty(state).expect("a state serialises");
            Some((bytes, state))
        }
        None => None,
    };
    replace_dir(dir, |tmp| {
        write(&tmp.join(MODEL_FILE), &weights)?;
        if let Some(vocab) = vocab {
            write(&tmp.join(VOCAB_FILE), vocab.to_json().as_bytes())?;
        }
        if let Some((bytes, state)) = &optim {
            write(&tmp.join(OPTIM_FILE), bytes)?;
            write(&tmp.join(STATE_FILE), state.as_bytes())?;
        }
        // config.json last: a folder with it is a finished one even without the rename.
        write(&tmp.join(CONFIG_FILE), config.as_bytes())
    })
}

/// Writes a poem checkpoint to `dir`, replacing what was there. With `resume`,
/// the optimiser moments and progress are written too, so a run can continue.
/// `meta.precision` chooses the storage of the weights.
pub fn save(
    dir: &Path,
    model: &Model,
    vocab: &Vocab,
    meta: &Meta,
    resume: Option<(&Adam, &Progress)>,
) -> Result<(), CheckpointError> {
    let mut meta = meta.clone();
    meta.format = FORMAT.to_string();
    meta.version = VERSION;
    meta.model = model.cfg.clone();
    let resume = resume.map(|(adam, progress)| {
        let mut progress = progress.clone();
        progress.adam = AdamSettings::of(adam);
        (adam, progress)
    });
    let resume = resume.as_ref().map(|(adam, progress)| (*adam, progress));
    write_dir(dir, &meta, model, meta.precision, Some(vocab), resume)
}

/// The checkpoint a user means by `dir`: `dir` itself when it holds one, else
/// the first of `dir/<name>` for `names` (e.g. `["last"]` to resume a run
/// folder, `["best", "last"]` to evaluate one) that does; `None` when none does.
/// Each candidate is [`recover`]ed first, so a run killed mid-save is found.
pub fn find_in(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    let holds = |d: &Path| {
        // a failed recovery leaves the loader to name the problem
        let _ = recover(d);
        d.join(CONFIG_FILE).is_file() && d.join(MODEL_FILE).is_file()
    };
    if holds(dir) {
        return Some(dir.to_path_buf());
    }
    names.iter().map(|n| dir.join(n)).find(|d| holds(d))
}

/// Why `dir` holds no checkpoint, in one line: a run folder that has not
/// written one yet, or the files a checkpoint folder lacks.
pub fn not_found(dir: &Path) -> String {
    if dir.join("metrics.csv").is_file() || dir.join(crate::limits::LOCK_FILE).is_file() {
        return format!(
            "{}: a run folder with no checkpoint yet (last/ is written at the run's first evaluation); train again without --resume, or wait for it",
            dir.display()
        );
    }
    let missing: Vec<&str> = [CONFIG_FILE, MODEL_FILE]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    format!(
        "{}: neither a checkpoint ({} missing) nor a run folder with best/ or last/",
        dir.display(),
        missing.join(" and ")
    )
}

/// Reads and checks the config.json of a checkpoint of `kind`: the format
/// version, then the kind, then the model's sizes, then the fields of `T`.
pub fn read_config<T: DeserializeOwned>(dir: &Path, kind: &str) -> Result<T, CheckpointError> {
    recover(dir)?;
    if !dir.is_dir() {
        return Err(CheckpointError::NotACheckpoint {
            dir: dir.display().to_string(),
        });
    }
    let path = dir.join(CONFIG_FILE);
    let bytes = read(&path)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| damaged(&path, e))?;
    if value.get("format").is_none() && value.get("model").is_none() {
        // a run folder's own config.json holds its training settings
        return Err(CheckpointError::NoneYet {
            msg: not_found(dir),
        });
    }
    let format = value.get("format").and_then(|v| v.as_str()).unwrap_or("");
    let version = value.get("version").and_then(|v| v.as_u64());
    if format == RETIRED_MNIST_FORMAT {
        return Err(CheckpointError::RetiredMnist {
            path: path.display().to_string(),
        });
    }
    if format != FORMAT || version != Some(VERSION as u64) {
        return Err(CheckpointError::Version {
            path: path.display().to_string(),
            format: if format.is_empty() {
                "(none)".into()
            } else {
                format.into()
            },
            version: version.map_or("(none)".into(), |v| v.to_string()),
        });
    }
    let found = value.get("kind").and_then(|v| v.as_str()).unwrap_or(POEMS);
    if found != kind {
        return Err(CheckpointError::WrongKind {
            path: path.display().to_string(),
            found: found.into(),
            want: kind.into(),
        });
    }
    let model: ModelConfig =
        serde_json::from_value(value.get("model").cloned().unwrap_or_default())
            .map_err(|e| damaged(&path, format!("model: {e}")))?;
    // Before anything is sized from it (the parameter table, the tensors).
    model.validate().map_err(|e| CheckpointError::BadConfig {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    serde_json::from_value(value).map_err(|e| damaged(&path, e))
}

/// Reads and checks a poem checkpoint's config.json alone (format version, then the fields).
pub fn load_meta(dir: &Path) -> Result<Meta, CheckpointError> {
    read_config(dir, POEMS)
}

/// Reads model.safetensors of `dir` as the model `cfg` describes, checking
/// each tensor's name, shape, dtype and values.
pub fn read_model(dir: &Path, cfg: &ModelConfig) -> Result<Model, CheckpointError> {
    let model_path = dir.join(MODEL_FILE);
    let table = param_table(cfg);
    check_size(&model_path, &table, MODEL_FILE)?;
    let bytes = read(&model_path)?;
    let params = from_safetensors(&model_path, &bytes, &table, MODEL_FILE)?;
    Model::from_params(cfg.clone(), params).map_err(|e| CheckpointError::Mismatch {
        path: model_path.display().to_string(),
        file: MODEL_FILE,
        msg: e.to_string(),
    })
}

/// Loads a checkpoint for use (writing, evaluation, or as a resume base): checks
/// the format version, then the configuration and vocabulary, then the tensors.
pub fn load(dir: &Path) -> anyhow::Result<Loaded> {
    Ok(load_checked(dir)?)
}

fn load_checked(dir: &Path) -> Result<Loaded, CheckpointError> {
    let meta = load_meta(dir)?;
    let vocab_path = dir.join(VOCAB_FILE);
    let vocab_text = read(&vocab_path)?;
    let vocab_text = String::from_utf8(vocab_text).map_err(|e| damaged(&vocab_path, e))?;
    let vocab = Vocab::from_json(&vocab_text).map_err(|e| damaged(&vocab_path, e))?;
    if vocab.len() != meta.model.vocab {
        return Err(CheckpointError::Mismatch {
            path: vocab_path.display().to_string(),
            file: VOCAB_FILE,
            msg: format!(
                "has {} entries, config.json says the model's vocabulary is {}",
                vocab.len(),
                meta.model.vocab
            ),
        });
    }
    let model = read_model(dir, &meta.model)?;
    Ok(Loaded { model, vocab, meta })
}

/// Reads state.json of a resumable checkpoint, checking that it is of the
/// step config.json (and so the weights) records.
pub fn read_state<S: ResumeState>(dir: &Path) -> Result<S, CheckpointError> {
    let state_path = dir.join(STATE_FILE);
    let optim_path = dir.join(OPTIM_FILE);
    if !state_path.exists() && !optim_path.exists() {
        return Err(CheckpointError::NotResumable {
            path: dir.display().to_string(),
        });
    }
    let state: S =
        serde_json::from_slice(&read(&state_path)?).map_err(|e| damaged(&state_path, e))?;
    let config_path = dir.join(CONFIG_FILE);
    let config: serde_json::Value =
        serde_json::from_slice(&read(&config_path)?).map_err(|e| damaged(&config_path, e))?;
    if let Some(weights) = config.get("step").and_then(|v| v.as_u64()) {
        if weights != state.step() {
            return Err(CheckpointError::StepMismatch {
                path: dir.display().to_string(),
                weights,
                state: state.step(),
            });
        }
    }
    Ok(state)
}

/// Reads the optimiser state and the state.json of a checkpoint for `model`'s layout.
pub fn read_resume<S: ResumeState>(
    dir: &Path,
    model: &Model,
) -> Result<(Adam, S), CheckpointError> {
    let state: S = read_state(dir)?;
    let optim_path = dir.join(OPTIM_FILE);
    let table = moments_table(&model.cfg);
    check_size(&optim_path, &table, OPTIM_FILE)?;
    let flat = from_safetensors(&optim_path, &read(&optim_path)?, &table, OPTIM_FILE)?;
    // Undo the m/v interleaving of the table.
    let n = model.params.len();
    let (mut m, mut v) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut off = 0;
    for (i, (_, shape)) in table.iter().enumerate() {
        let len: usize = shape.iter().product();
        let dst = if i % 2 == 0 { &mut m } else { &mut v };
        dst.extend_from_slice(&flat[off..off + len]);
        off += len;
    }
    let adam = state.adam().with_moments(m, v);
    Ok((adam, state))
}

/// Reads the optimiser state and progress of a poem checkpoint for `model`'s layout.
pub fn load_resume(dir: &Path, model: &Model) -> Result<(Adam, Progress), CheckpointError> {
    read_resume(dir, model)
}

/// Copies a checkpoint for use elsewhere, without optimiser state, storing the
/// weights at `precision` (F16 halves the size of a shipped model).
pub fn export(src: &Path, dst: &Path, precision: Precision) -> anyhow::Result<()> {
    let loaded = load_checked(src)?;
    let mut meta = loaded.meta.clone();
    meta.precision = precision;
    save(dst, &loaded.model, &loaded.vocab, &meta, None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (Model, Vocab, Meta) {
        sized(4, 5)
    }

    fn sized(embed: usize, hidden: usize) -> (Model, Vocab, Meta) {
        let vocab =
            Vocab::build(["白日依山尽，黄河入海流。"], 1).with_tags(&[crate::corpus::Form::Wujue]);
        // with every position table, so that they round-trip too
        let cfg = ModelConfig {
            vocab: vocab.len(),
            embed,
            hidden,
            layers: 2,
            positions: Some(crate::model::Positions {
                size: 4,
                line_ends: vocab.line_ends(),
                silent: vocab.silent(),
                forms: vocab.tag_ids(),
                // as a model trained with titles has
                resets: vec![Vocab::BEGIN],
                title: false,
            }),
            ..ModelConfig::default()
        };
        let model = Model::new(cfg.clone(), &mut Rng::new(1));
        let meta = Meta::new(
            cfg,
            serde_json::json!({"lr": 0.01}),
            Script::Simplified,
            "test".into(),
        );
        (model, vocab, meta)
    }

    #[test]
    fn find_in_takes_a_checkpoint_as_it_is_and_a_run_folder_by_its_subfolders() {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab, meta) = tiny();
        let run = dir.path();
        assert_eq!(find_in(run, &["best", "last"]), None);
        save(&run.join("last"), &model, &vocab, &meta, None).unwrap();
        // a run folder's own config.json (training settings) is not a checkpoint
        std::fs::write(run.join(CONFIG_FILE), "{}").unwrap();
        assert_eq!(find_in(run, &["best", "last"]), Some(run.join("last")));
        assert_eq!(find_in(run, &["best"]), None);
        save(&run.join("best"), &model, &vocab, &meta, None).unwrap();
        assert_eq!(find_in(run, &["best", "last"]), Some(run.join("best")));
        assert_eq!(find_in(run, &["last"]), Some(run.join("last")));
        let ck = run.join("last");
        assert_eq!(find_in(&ck, &["best"]), Some(ck.clone()));
        // killed between moving last/ aside and renaming the new one in
        std::fs::rename(&ck, sibling(&ck, "old")).unwrap();
        assert_eq!(find_in(run, &["last"]), Some(ck.clone()));
        assert!(ck.join(MODEL_FILE).is_file());
    }

    #[test]
    fn round_trip_keeps_every_bit_and_the_resume_state() {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab, mut meta) = tiny();
        meta.step = 7;
        meta.val_loss = Some(1.25);
        let mut adam = Adam::new(model.params.len(), 0.1);
        adam.step(&mut model.params.clone(), &model.params, 0.01);
        let progress = Progress {
            step: 7,
            epoch: 1,
            position: 3,
            best_val_loss: Some(1.0),
            rng: Rng::new(9),
            tokens: 100,
            elapsed_s: 1.5,
            log_loss: 3.0,
            log_tokens: 2.0,
            data_sha256: "ab".into(),
            budget_steps: 0,
            adam: AdamSettings {
                beta1: 0.0,
                beta2: 0.0,
                eps: 0.0,
                weight_decay: 0.0,
                t: 0,
            },
        };
        let ck = dir.path().join("last");
        save(&ck, &model, &vocab, &meta, Some((&adam, &progress))).unwrap();
        let back = load(&ck).unwrap();
        assert_eq!(back.model.params, model.params);
        assert_eq!(back.model.cfg, model.cfg);
        assert_eq!(back.vocab.to_json(), vocab.to_json());
        assert_eq!(back.meta, meta);
        let (a2, p2) = load_resume(&ck, &back.model).unwrap();
        assert_eq!(
            (a2.m, a2.v, a2.t, a2.weight_decay),
            (adam.m.clone(), adam.v.clone(), adam.t, 0.1)
        );
        assert_eq!(
            (p2.step, p2.epoch, p2.position, p2.rng),
            (7, 1, 3, Rng::new(9))
        );
        // Overwriting leaves no temporary folders behind.
        save(&ck, &model, &vocab, &meta, None).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["last"]);
        assert!(matches!(
            load_resume(&ck, &back.model),
            Err(CheckpointError::NotResumable { .. })
        ));
    }

    #[test]
    fn f16_storage_halves_the_file_and_loads_as_rounded_f32() {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab, mut meta) = sized(64, 64);
        save(&dir.path().join("a"), &model, &vocab, &meta, None).unwrap();
        meta.precision = Precision::F16;
        save(&dir.path().join("b"), &model, &vocab, &meta, None).unwrap();
        let size = |d: &str| {
            std::fs::metadata(dir.path().join(d).join(MODEL_FILE))
                .unwrap()
                .len()
        };
        assert!(
            size("b") * 10 < size("a") * 6,
            "{} vs {}",
            size("b"),
            size("a")
        );
        let back = load(&dir.path().join("b")).unwrap();
        for (x, y) in model.params.iter().zip(&back.model.params) {
            assert_eq!(*y, half::f16::from_f32(*x).to_f32());
        }
    }

    #[test]
    fn interrupted_replacement_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab, meta) = tiny();
        let ck = dir.path().join("last");
        save(&ck, &model, &vocab, &meta, None).unwrap();
        // As if killed between moving the old folder aside and renaming the new one in.
        std::fs::rename(&ck, sibling(&ck, "old")).unwrap();
        std::fs::create_dir(sibling(&ck, "new")).unwrap();
        assert_eq!(load(&ck).unwrap().model.params, model.params);
        save(&ck, &model, &vocab, &meta, None).unwrap();
        assert!(!sibling(&ck, "old").exists() && !sibling(&ck, "new").exists());
    }

    /// Saves a tiny checkpoint, lets `spoil` damage it, and returns the load error.
    fn load_error(spoil: impl FnOnce(&Path)) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab, meta) = tiny();
        let ck = dir.path().join("best");
        save(&ck, &model, &vocab, &meta, None).unwrap();
        spoil(&ck);
        let err = match load(&ck) {
            Ok(_) => panic!("a spoiled checkpoint loaded"),
            Err(e) => format!("{e:#}"),
        };
        assert!(!err.contains('\n'), "one line: {err}");
        err
    }

    fn edit_config(ck: &Path, f: impl FnOnce(&mut serde_json::Value)) {
        let p = ck.join(CONFIG_FILE);
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    #[test]
    fn damaged_or_mismatched_checkpoints_give_one_line_naming_the_file() {
        let e = load_error(|ck| std::fs::remove_dir_all(ck).unwrap());
        assert!(e.contains("no checkpoint here"), "{e}");
        let e = load_error(|ck| edit_config(ck, |v| v["version"] = 99.into()));
        assert!(e.contains("config.json") && e.contains("version 99"), "{e}");
        let e = load_error(|ck| std::fs::write(ck.join(CONFIG_FILE), "{\"format\": ").unwrap());
        assert!(e.contains("config.json") && e.contains("damaged"), "{e}");
        let e = load_error(|ck| edit_config(ck, |v| v["model"]["hidden"] = 6.into()));
        assert!(
            e.contains("model.safetensors") && e.contains("shape") && e.contains("different runs"),
            "{e}"
        );
        let e = load_error(|ck| edit_config(ck, |v| v["model"]["layers"] = 1.into()));
        assert!(
            e.contains("model.safetensors") && e.contains("does not have"),
            "{e}"
        );
        let e = load_error(|ck| edit_config(ck, |v| v["model"]["vocab"] = 99.into()));
        assert!(e.contains("vocab.json") && e.contains("99"), "{e}");
        let e = load_error(|ck| std::fs::remove_file(ck.join(VOCAB_FILE)).unwrap());
        assert!(e.contains("vocab.json: missing"), "{e}");
        let e = load_error(|ck| {
            let p = ck.join(MODEL_FILE);
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
        });
        assert!(
            e.contains("model.safetensors") && e.contains("damaged"),
            "{e}"
        );
        let e = load_error(|ck| std::fs::write(ck.join(MODEL_FILE), b"not a tensor file").unwrap());
        assert!(e.contains("model.safetensors"), "{e}");
    }

    #[test]
    fn other_kinds_and_retired_formats_are_refused_saying_what_to_do() {
        let e = load_error(|ck| edit_config(ck, |v| v["kind"] = "mnist".into()));
        assert!(
            e.contains("config.json") && e.contains("`mnist` model") && e.contains("shiren train"),
            "{e}"
        );
        // what `shiren mnist train` wrote before the classifier shared this format
        let e = load_error(|ck| {
            std::fs::write(
                ck.join(CONFIG_FILE),
                r#"{"format": "shiren-mnist-1", "model": {}, "train": {}}"#,
            )
            .unwrap()
        });
        assert!(
            e.contains("config.json") && e.contains("older shiren") && e.contains("train again"),
            "{e}"
        );
    }

    #[test]
    fn a_state_of_another_step_than_the_weights_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab, mut meta) = tiny();
        meta.step = 3;
        let adam = Adam::new(model.params.len(), 0.0);
        let mut progress: Progress = serde_json::from_value(serde_json::json!({
            "step": 3, "epoch": 0, "position": 0, "best_val_loss": null, "rng": Rng::new(1),
            "tokens": 0, "elapsed_s": 0.0,
            "adam": {"beta1": 0.0, "beta2": 0.0, "eps": 0.0, "weight_decay": 0.0, "t": 0},
        }))
        .unwrap();
        let ck = dir.path().join("last");
        save(&ck, &model, &vocab, &meta, Some((&adam, &progress))).unwrap();
        assert!(load_resume(&ck, &model).is_ok());
        progress.step = 4;
        let state = serde_json::to_string(&progress).unwrap();
        std::fs::write(ck.join(STATE_FILE), state).unwrap();
        let e = load_resume(&ck, &model).err().unwrap().to_string();
        assert!(e.contains("holds step 3 but state.json says step 4"), "{e}");
    }

    #[test]
    fn absurd_sizes_in_config_json_are_refused_before_allocating() {
        // Each of these aborted (allocation failure, capacity overflow) or ate GBs before.
        for (key, v) in [
            ("hidden", serde_json::json!(1_000_000)),
            ("hidden", serde_json::json!(1_000_000_000_000u64)),
            ("layers", serde_json::json!(100_000_000)),
            ("embed", serde_json::json!(usize::MAX)),
            ("vocab", serde_json::json!(1u64 << 40)),
        ] {
            let e = load_error(|ck| edit_config(ck, |c| c["model"][key] = v.clone()));
            assert!(
                e.contains("config.json") && e.contains(key) && e.contains("at most"),
                "{key} = {v}: {e}"
            );
        }
        // sizes that pass each bound alone but not together
        let e = load_error(|ck| {
            edit_config(ck, |c| {
                c["model"]["hidden"] = 60_000.into();
                c["model"]["layers"] = 60.into();
            })
        });
        assert!(e.contains("parameters (at most"), "{e}");
    }

    /// Rewrites model.safetensors with `f` applied to each (name, shape, values) and `meta`.
    fn rewrite_model(
        ck: &Path,
        meta: Option<HashMap<String, String>>,
        dtype: Dtype,
        f: impl Fn(&str, &mut Vec<f32>),
    ) {
        let loaded = load(ck).unwrap();
        let mut bufs = Vec::new();
        for (name, shape, data) in loaded.model.tensors() {
            let mut d = data.to_vec();
            f(&name, &mut d);
            let bytes: Vec<u8> = match dtype {
                Dtype::BF16 => d
                    .iter()
                    .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                    .collect(),
                _ => d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            };
            bufs.push((name, shape, bytes));
        }
        let views: Vec<_> = bufs
            .iter()
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap(),
                )
            })
            .collect();
        std::fs::write(
            ck.join(MODEL_FILE),
            safetensors::serialize(views, meta).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn non_finite_weights_are_refused_naming_the_tensor() {
        let e = load_error(|ck| {
            rewrite_model(ck, Some(safetensors_metadata()), Dtype::F32, |n, d| {
                if n == "proj.weight" {
                    d[1] = f32::NAN;
                    d[2] = f32::INFINITY;
                }
            })
        });
        assert!(
            e.contains("`proj.weight`") && e.contains("2 non-finite"),
            "{e}"
        );
    }

    #[test]
    fn foreign_files_are_told_what_is_wrong_not_damaged() {
        // safetensors.torch.save_file(tensors, path) writes no metadata
        let e = load_error(|ck| rewrite_model(ck, None, Dtype::F32, |_, _| {}));
        assert!(
            e.contains("no shiren metadata") && !e.contains("damaged") && !e.contains("(none)"),
            "{e}"
        );
        let e = load_error(|ck| {
            rewrite_model(ck, Some(safetensors_metadata()), Dtype::BF16, |_, _| {})
        });
        assert!(
            e.contains("BF16") && e.contains("F32 and F16") && !e.contains("damaged"),
            "{e}"
        );
    }
}
