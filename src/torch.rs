//! PyTorch interop: a model out to PyTorch (`shiren export --torch`) and back
//! (`shiren import`, and `--model` pointing at a PyTorch folder).
//!
//! Out: a checkpoint folder stored at F32, whose model.safetensors loads into
//! `python/modeling_shiren.py`'s `ShirenLM` with `load_state_dict(strict=True)`
//! (the names are PyTorch's: `rnn.weight_ih_l0`, …), plus that module and
//! test vectors (token ids, each token's position rows, and each target's
//! log-probability for a few poems) so outside code can check itself.
//!
//! In: what PyTorch users save: `safetensors.torch.save_file(model.state_dict())`
//! with or without shiren's metadata, in F32, F16, BF16 or F64, with or
//! without the tied alias `proj.weight`/`decoder.weight` (equal to
//! `embedding.weight`), with the `module.` (DDP) or `_orig_mod.` (compile)
//! prefixes, beside a config.json that may hold only the architecture
//! (missing fields get their defaults) and the vocab.json it was trained with.
//! Every refusal names the file, the tensor or field, and what to do. Not
//! here: shiren's own checkpoint format and its checks (`checkpoint.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::checkpoint::{self, Loaded, Meta, Precision};
use crate::corpus::convert::{to_script, Script};
use crate::model::{param_table, Model, ModelConfig};
use crate::vocab::Vocab;

/// The PyTorch module, written beside an export and kept in the repository as `python/modeling_shiren.py`.
pub const MODULE_PY: &str = include_str!("../python/modeling_shiren.py");
pub const MODULE_FILE: &str = "modeling_shiren.py";
pub const VECTORS_FILE: &str = "test_vectors.json";

/// A refusal to import; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {msg}")]
    Bad { path: String, msg: String },
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> ImportError {
    ImportError::Bad {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

// ---------------------------------------------------------------------------
// out

/// The poems of the test vectors (in simplified script; converted for a traditional model).
const VECTOR_POEMS: [&str; 3] = [
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。",
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
];

/// One poem of the test vectors.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Vector {
    pub text: String,
    /// BEGIN, a title and its BEGIN or the form tag when there is one, the characters, END.
    pub ids: Vec<u32>,
    /// Per input token (every id but the last): its (line, column, form)
    /// rows; empty for a model without positions.
    pub places: Vec<[u32; 3]>,
    /// Per target (every id but the first): ln p(ids[k+1] | ids[..=k]).
    pub log_probs: Vec<f64>,
    /// Their sum.
    pub log_prob: f64,
}

/// The test vectors of a model: each poem untagged, led by its form's tag when the
/// vocabulary has one, and after a title when the model reads titles.
pub fn test_vectors(model: &Model, vocab: &Vocab, script: Script) -> Vec<Vector> {
    let mut seqs: Vec<(String, Vec<u32>)> = Vec::new();
    for p in VECTOR_POEMS {
        let text = to_script(p, script);
        let ids = vocab.encode(&text);
        let form = crate::corpus::forms::Form::of_text(&text);
        seqs.push((text.clone(), ids.clone()));
        if let Some(tag) = vocab.tag(form) {
            seqs.push((
                text.clone(),
                std::iter::once(tag).chain(ids.clone()).collect(),
            ));
        }
        // A model that reads titles: the poem after a title (`BEGIN 题 BEGIN …`), so
        // the reset of its rows is checked too.
        if model
            .cfg
            .positions
            .as_ref()
            .is_some_and(|p| p.resets.contains(&Vocab::BEGIN))
        {
            let title = to_script("无题", script);
            let mut titled = crate::title::prefix(vocab, Some(&title));
            titled.extend(ids);
            seqs.push((text, titled));
        }
    }
    let ids: Vec<Vec<u32>> = seqs.iter().map(|(_, s)| s.clone()).collect();
    let lps = crate::score::token_log_probs(model, &ids);
    seqs.into_iter()
        .zip(lps)
        .map(|((text, s), log_probs)| {
            let mut ids = vec![Vocab::BEGIN];
            ids.extend(&s);
            ids.push(Vocab::END);
            Vector {
                text,
                places: model.places(&ids[..ids.len() - 1]),
                log_prob: log_probs.iter().sum(),
                log_probs,
                ids,
            }
        })
        .collect()
}

/// Writes `loaded` to `dir` for PyTorch: the checkpoint at F32, the module, the test vectors.
pub fn export(loaded: &Loaded, dir: &Path) -> anyhow::Result<()> {
    let mut meta = loaded.meta.clone();
    meta.precision = Precision::F32;
    checkpoint::save(dir, &loaded.model, &loaded.vocab, &meta, None)?;
    let vectors = test_vectors(&loaded.model, &loaded.vocab, meta.script);
    let json = serde_json::json!({
        "format": "shiren-test-vectors",
        "version": 1,
        "poems": vectors,
    });
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    };
    write(VECTORS_FILE, &(serde_json::to_string_pretty(&json)? + "\n"))?;
    write(MODULE_FILE, MODULE_PY)
}

// ---------------------------------------------------------------------------
// in

/// What an import did beyond copying: conversions, dropped aliases, defaults.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notes(pub Vec<String>);

/// A shiren checkpoint as it is, or a PyTorch folder through [`import`]; a
/// run folder gives its best/ (or last/).
pub fn load_any(dir: &Path) -> anyhow::Result<Loaded> {
    if !dir.is_dir() {
        anyhow::bail!(
            "{}: no such folder (pass a checkpoint folder, a run folder, or a PyTorch folder with config.json, vocab.json and a .safetensors file)",
            dir.display()
        );
    }
    let dir = checkpoint::find_in(dir, &["best", "last"]).unwrap_or_else(|| dir.to_path_buf());
    if is_shiren_checkpoint(&dir) {
        return checkpoint::load(&dir).map_err(|e| e.context(format!("loading {}", dir.display())));
    }
    Ok(import(&dir)?.0)
}

/// Whether `dir` holds shiren's own format (config.json and the weights' metadata both say so).
fn is_shiren_checkpoint(dir: &Path) -> bool {
    let config = std::fs::read(dir.join(checkpoint::CONFIG_FILE)).ok();
    let says = config
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(String::from))
        .is_some_and(|f| f == checkpoint::FORMAT);
    let weights = std::fs::read(dir.join(checkpoint::MODEL_FILE)).ok();
    let tagged = weights.is_some_and(|b| {
        SafeTensors::read_metadata(&b).is_ok_and(|(_, h)| {
            h.metadata()
                .as_ref()
                .and_then(|m| m.get("format"))
                .is_some_and(|f| f.starts_with(checkpoint::FORMAT))
        })
    });
    says && tagged
}

/// Reads a PyTorch folder (see the module doc) as a model, its vocabulary and a filled-in config.
pub fn import(dir: &Path) -> Result<(Loaded, Notes), ImportError> {
    let mut notes = Notes::default();
    let vocab_path = dir.join(checkpoint::VOCAB_FILE);
    let vocab_text = std::fs::read_to_string(&vocab_path).map_err(|e| {
        bad(
            &vocab_path,
            format!("{e} (a model needs the vocabulary it was trained with: copy the vocab.json of `shiren corpus export` or of the checkpoint it started from)"),
        )
    })?;
    let vocab = Vocab::from_json(&vocab_text).map_err(|e| bad(&vocab_path, e))?;
    let config_path = dir.join(checkpoint::CONFIG_FILE);
    let meta = read_config(&config_path, dir, &vocab, &mut notes)?;
    let weights = weights_file(dir)?;
    let bytes = std::fs::read(&weights).map_err(|e| bad(&weights, e))?;
    let params = read_state_dict(&weights, &bytes, &meta.model, &mut notes)?;
    let model = Model::from_params(meta.model.clone(), params).map_err(|e| bad(&weights, e))?;
    Ok((Loaded { model, vocab, meta }, notes))
}

/// config.json: shiren's (the architecture under `model`) or just the
/// architecture's fields; what is missing gets its default.
fn read_config(
    path: &Path,
    dir: &Path,
    vocab: &Vocab,
    notes: &mut Notes,
) -> Result<Meta, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(path, format!("{e} (write the architecture there: {{\"model\": {{\"cell\": \"lstm\", \"layers\": 2, \"embed\": 256, \"hidden\": 384, …}}}}, as `shiren export --torch` does)"))
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(path, format!("not valid JSON: {e} (fix the file)")))?;
    let serde_json::Value::Object(top) = value else {
        return Err(bad(
            path,
            "not a JSON object (expected {\"model\": {…}} or the model's fields)",
        ));
    };
    let mut model = match top.get("model") {
        Some(serde_json::Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(bad(
                path,
                "`model` is not an object (expected {\"cell\": \"lstm\", \"layers\": 2, …})",
            ))
        }
        None => top.clone(),
    };
    for key in ["cell", "layers", "hidden"] {
        if !model.contains_key(key) {
            return Err(bad(
                path,
                format!("the model has no `{key}` (give cell, layers, embed and hidden, under `model` or at the top)"),
            ));
        }
    }
    let defaults = [
        ("vocab", serde_json::json!(vocab.len())),
        ("dropout", serde_json::json!(0.0)),
        ("input", serde_json::json!("tokens")),
        ("head", serde_json::json!("every_step")),
    ];
    let mut filled = Vec::new();
    for (key, v) in defaults {
        if !model.contains_key(key) {
            model.insert(key.to_string(), v);
            filled.push(key);
        }
    }
    let cfg: ModelConfig = serde_json::from_value(serde_json::Value::Object(model))
        .map_err(|e| bad(path, format!("the model's fields: {e}")))?;
    cfg.validate().map_err(|e| bad(path, e))?;
    if cfg.vocab != vocab.len() {
        return Err(bad(
            path,
            format!(
                "vocab is {}, but {} has {} entries (4 specials, {} characters, {} tags): use the vocab.json the model was trained with",
                cfg.vocab,
                dir.join(checkpoint::VOCAB_FILE).display(),
                vocab.len(),
                vocab.chars().len(),
                vocab.tags().len()
            ),
        ));
    }
    let script = match top.get("script") {
        Some(s) => serde_json::from_value(s.clone()).map_err(|_| {
            bad(
                path,
                format!("script is {s}, expected \"simplified\" or \"traditional\""),
            )
        })?,
        None => {
            filled.push("script");
            Script::Simplified
        }
    };
    let corpus = match top.get("corpus").and_then(|c| c.as_str()) {
        Some(c) => c.to_string(),
        None => {
            filled.push("corpus");
            format!("imported from {}", dir.display())
        }
    };
    let mut meta = Meta::new(
        cfg,
        top.get("train").cloned().unwrap_or(serde_json::json!({})),
        script,
        corpus,
    );
    meta.step = top.get("step").and_then(|s| s.as_u64()).unwrap_or(0);
    meta.val_loss = top.get("val_loss").and_then(|s| s.as_f64());
    meta.best_val_loss = top.get("best_val_loss").and_then(|s| s.as_f64());
    if !filled.is_empty() {
        notes
            .0
            .push(format!("config defaults filled in: {}", filled.join(", ")));
    }
    Ok(meta)
}

/// model.safetensors, else the folder's only .safetensors file.
fn weights_file(dir: &Path) -> Result<PathBuf, ImportError> {
    let named = dir.join(checkpoint::MODEL_FILE);
    if named.is_file() {
        return Ok(named);
    }
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            let pickled = ["pytorch_model.bin", "model.pt", "model.pth"]
                .iter()
                .any(|n| dir.join(n).is_file());
            Err(bad(
                dir,
                if pickled {
                    "holds pickled weights, which shiren does not read: save them with `safetensors.torch.save_file(model.state_dict(), \"model.safetensors\")`"
                } else {
                    "no .safetensors file (save the weights with `safetensors.torch.save_file(model.state_dict(), \"model.safetensors\")`)"
                },
            ))
        }
        _ => Err(bad(
            dir,
            format!(
                "{} .safetensors files and none named model.safetensors (rename the one to load)",
                found.len()
            ),
        )),
    }
}

/// Names PyTorch wrappers put before a module's own: DDP's and torch.compile's.
const PREFIXES: [&str; 2] = ["module.", "_orig_mod."];

/// What the tied head's output weight is called when a module keeps it as an alias of the embedding.
const TIED_ALIASES: [&str; 3] = ["proj.weight", "decoder.weight", "lm_head.weight"];

/// The tensors of `cfg`'s table from a safetensors file, as one flat f32 vector.
fn read_state_dict(
    path: &Path,
    bytes: &[u8],
    cfg: &ModelConfig,
    notes: &mut Notes,
) -> Result<Vec<f32>, ImportError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        bad(
            path,
            format!("not a safetensors file: {e} (save with `safetensors.torch.save_file`)"),
        )
    })?;
    // name as the module knows it → name in the file
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut stripped = false;
    for n in st.names() {
        let mut short = n;
        while let Some(p) = PREFIXES.iter().find(|p| short.starts_with(*p)) {
            short = &short[p.len()..];
            stripped = true;
        }
        if let Some(other) = names.insert(short.to_string(), n.to_string()) {
            return Err(bad(
                path,
                format!("holds both `{other}` and `{n}` (save one state dict)"),
            ));
        }
    }
    if stripped {
        notes
            .0
            .push("`module.`/`_orig_mod.` prefixes removed".into());
    }
    let table = param_table(cfg);
    let describe = format!(
        "{} layers of {} × {}, embed {}, vocab {}{}{}",
        cfg.layers,
        cfg.cell,
        cfg.hidden,
        cfg.embed,
        cfg.vocab,
        if cfg.tied { ", tied" } else { "" },
        if cfg.shortlist > 0 {
            format!(", shortlist {}", cfg.shortlist)
        } else {
            String::new()
        }
    );
    let mut out = Vec::with_capacity(cfg.num_params());
    let mut dtypes = std::collections::BTreeSet::new();
    for (name, shape) in &table {
        let Some(key) = names.remove(name) else {
            let hint = match name.as_str() {
                "bottleneck.weight" if names.contains_key("proj.weight") => {
                    " (config.json says tied, but the file has its own proj.weight: set \"tied\": false)"
                }
                "proj.weight" if names.contains_key("bottleneck.weight") => {
                    " (the file has bottleneck.weight, a tied head: set \"tied\": true in config.json)"
                }
                "rare.weight" | "rare.bias" => {
                    " (config.json gives a shortlist, the file has no two-level head: set \"shortlist\": 0)"
                }
                n if n.starts_with("line_embedding") || n.starts_with("column_embedding") || n.starts_with("form_embedding") => {
                    " (config.json gives positions the file has no tables for: check `positions`)"
                }
                _ => "",
            };
            return Err(bad(path, format!("lacks tensor `{name}` of shape {shape:?}, which config.json ({describe}) needs{hint}")));
        };
        let view = st.tensor(&key).expect("a listed name");
        if view.shape() != shape.as_slice() {
            return Err(bad(
                path,
                format!(
                    "tensor `{key}` has shape {:?}, but config.json ({describe}) needs {shape:?}",
                    view.shape()
                ),
            ));
        }
        let start = out.len();
        append_f32(&mut out, view.dtype(), view.data())
            .map_err(|d| bad(path, format!("tensor `{key}` is {d:?}; shiren reads F32, F16, BF16 and F64 (convert with `.float()`)")))?;
        dtypes.insert(format!("{:?}", view.dtype()).to_lowercase());
        if let Some(k) = out[start..].iter().position(|v| !v.is_finite()) {
            return Err(bad(
                path,
                format!("tensor `{key}` holds {} at index {k} (the run that saved it diverged; save an earlier checkpoint)", out[start + k]),
            ));
        }
    }
    // What is left must be the tied head's alias of the embedding.
    for (short, key) in names {
        if cfg.tied && TIED_ALIASES.contains(&short.as_str()) {
            let view = st.tensor(&key).expect("a listed name");
            let mut alias = Vec::new();
            let same = append_f32(&mut alias, view.dtype(), view.data()).is_ok()
                && alias.len() == cfg.vocab * cfg.embed
                && alias[..] == out[..cfg.vocab * cfg.embed];
            if !same {
                return Err(bad(path, format!("tensor `{key}` differs from `embedding.weight`, but config.json says the head is tied (save the tied module, or set \"tied\": false and name the head proj.weight)")));
            }
            notes
                .0
                .push(format!("`{key}` is the tied embedding; read once"));
            continue;
        }
        let known: Vec<&str> = table.iter().map(|(n, _)| n.as_str()).collect();
        return Err(bad(
            path,
            format!(
                "has tensor `{key}`, which a model of config.json ({describe}) has no place for (expected {})",
                known.join(", ")
            ),
        ));
    }
    if dtypes.iter().any(|d| d != "f32") {
        let list: Vec<String> = dtypes.into_iter().collect();
        notes
            .0
            .push(format!("weights read from {} to f32", list.join(", ")));
    }
    Ok(out)
}

/// Appends little-endian `data` of `dtype` as f32; `Err(dtype)` for one it cannot read.
fn append_f32(out: &mut Vec<f32>, dtype: Dtype, data: &[u8]) -> Result<(), Dtype> {
    match dtype {
        Dtype::F32 => out.extend(
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        Dtype::F16 => out.extend(
            data.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        Dtype::BF16 => out.extend(
            data.chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        Dtype::F64 => out.extend(
            data.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32),
        ),
        other => return Err(other),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, Positions};
    use crate::rng::Rng;

    fn tiny() -> (Model, Vocab) {
        let vocab =
            Vocab::build(["白日依山尽，黄河入海流。"], 1).with_tags(&[crate::corpus::Form::Wujue]);
        let v = vocab.len();
        let cfg = ModelConfig {
            cell: Cell::Gru,
            layers: 2,
            embed: 4,
            hidden: 5,
            vocab: v,
            tied: true,
            shortlist: 3,
            positions: Some(Positions {
                size: 3,
                line_ends: vocab.line_ends(),
                silent: vocab.silent(),
                forms: vocab.tag_ids(),
                resets: Vec::new(),
                title: false,
            }),
            ..ModelConfig::default()
        };
        (Model::new(cfg, &mut Rng::new(3)), vocab)
    }

    /// What a PyTorch user would save: the state dict at `dtype`, renamed by
    /// `rename`, with extra tensors, no metadata; config.json as given.
    fn torch_dir(
        model: &Model,
        vocab: &Vocab,
        config: serde_json::Value,
        dtype: Dtype,
        rename: &dyn Fn(&str) -> String,
        extra: &[(&str, Vec<usize>, Vec<f32>)],
    ) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let enc = |x: &[f32]| -> Vec<u8> {
            match dtype {
                Dtype::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Dtype::F16 => x
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
                Dtype::BF16 => x
                    .iter()
                    .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                    .collect(),
                _ => x.iter().flat_map(|v| (*v as i32).to_le_bytes()).collect(),
            }
        };
        let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = model
            .tensors()
            .into_iter()
            .map(|(n, s, x)| (rename(&n), s, enc(x)))
            .collect();
        for (n, s, x) in extra {
            owned.push((n.to_string(), s.clone(), enc(x)));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = owned
            .iter()
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap(),
                )
            })
            .collect();
        let bytes = safetensors::serialize(views, None).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        std::fs::write(dir.path().join("vocab.json"), vocab.to_json()).unwrap();
        dir
    }

    fn bare_config(model: &Model) -> serde_json::Value {
        let mut m = serde_json::to_value(&model.cfg).unwrap();
        let o = m.as_object_mut().unwrap();
        for k in ["vocab", "dropout", "input", "head"] {
            o.remove(k);
        }
        m
    }

    fn err(dir: &tempfile::TempDir) -> String {
        match import(dir.path()) {
            Ok(_) => panic!("imported"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_bare_state_dict_imports_in_every_float_dtype_with_its_alias_and_prefix() {
        let (model, vocab) = tiny();
        let emb = model.tensors()[0].2.to_vec();
        let shape = model.tensors()[0].1.clone();
        for (dtype, tol) in [(Dtype::F32, 0.0), (Dtype::F16, 1e-3), (Dtype::BF16, 1e-2)] {
            // the alias is the embedding as stored, so compare after the same rounding
            let dir = torch_dir(
                &model,
                &vocab,
                serde_json::json!({ "model": bare_config(&model) }),
                dtype,
                &|n| format!("module.{n}"),
                &[("module.proj.weight", shape.clone(), emb.clone())],
            );
            let (loaded, notes) = import(dir.path()).unwrap_or_else(|e| panic!("{dtype:?}: {e}"));
            let worst = loaded
                .model
                .params
                .iter()
                .zip(&model.params)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                .fold(0.0f32, f32::max);
            assert!(worst <= tol, "{dtype:?}: worst {worst}");
            assert_eq!(loaded.meta.script, Script::Simplified);
            let all = notes.0.join("; ");
            assert!(
                all.contains("vocab, dropout, input, head, script, corpus"),
                "{all}"
            );
            assert!(
                all.contains("proj.weight") && all.contains("prefixes"),
                "{all}"
            );
            assert_eq!(dtype == Dtype::F32, !all.contains("to f32"), "{all}");
        }
        // flat config (no `model` key) works as well
        let dir = torch_dir(
            &model,
            &vocab,
            bare_config(&model),
            Dtype::F32,
            &|n| n.into(),
            &[],
        );
        assert_eq!(import(dir.path()).unwrap().0.model.params, model.params);
    }

    #[test]
    fn every_refusal_names_the_real_problem() {
        let (model, vocab) = tiny();
        let cfg = serde_json::json!({ "model": bare_config(&model) });
        let same = |n: &str| n.to_string();
        let shape = model.tensors()[0].1.clone();
        let emb = model.tensors()[0].2.to_vec();
        let mut other = emb.clone();
        other[0] += 1.0;
        let cases: Vec<(tempfile::TempDir, &str)> = vec![
            (
                torch_dir(
                    &model,
                    &vocab,
                    cfg.clone(),
                    Dtype::F32,
                    &same,
                    &[("proj.weight", shape.clone(), other)],
                ),
                "`proj.weight` differs from `embedding.weight`",
            ),
            (
                torch_dir(
                    &model,
                    &vocab,
                    cfg.clone(),
                    Dtype::F32,
                    &same,
                    &[("head.extra", vec![2], vec![1.0, 2.0])],
                ),
                "has tensor `head.extra`, which a model of config.json",
            ),
            (
                torch_dir(&model, &vocab, cfg.clone(), Dtype::I32, &same, &[]),
                "is I32; shiren reads F32, F16, BF16 and F64",
            ),
            (
                torch_dir(
                    &model,
                    &vocab,
                    cfg.clone(),
                    Dtype::F32,
                    &|n| n.replace("rare.", "other."),
                    &[],
                ),
                "lacks tensor `rare.weight`",
            ),
            (
                torch_dir(
                    &model,
                    &vocab,
                    serde_json::json!({"model": {"cell": "gru", "layers": 2, "hidden": 6, "embed": 4, "tied": true, "shortlist": 3, "positions": model.cfg.positions}}),
                    Dtype::F32,
                    &same,
                    &[],
                ),
                "has shape [15, 4], but config.json (2 layers of gru × 6",
            ),
            (
                torch_dir(
                    &model,
                    &vocab,
                    serde_json::json!({"model": {"layers": 2}}),
                    Dtype::F32,
                    &same,
                    &[],
                ),
                "the model has no `cell`",
            ),
            (
                torch_dir(
                    &model,
                    &vocab,
                    serde_json::json!({"model": {"cell": "lstm", "layers": 2, "hidden": 5, "embed": 4, "vocab": 7}}),
                    Dtype::F32,
                    &same,
                    &[],
                ),
                "vocab is 7, but",
            ),
        ];
        for (dir, want) in cases {
            let e = err(&dir);
            assert!(e.contains(want), "expected `{want}` in: {e}");
            assert!(
                e.starts_with(&dir.path().display().to_string()),
                "names no file: {e}"
            );
        }
        // a NaN, and a missing vocab.json
        let mut broken = Model::from_params(model.cfg.clone(), model.params.clone()).unwrap();
        broken.params[model.params.len() - 1] = f32::NAN;
        let dir = torch_dir(&broken, &vocab, cfg.clone(), Dtype::F32, &same, &[]);
        assert!(
            err(&dir).contains("tensor `rare.bias` holds NaN at index 0"),
            "{}",
            err(&dir)
        );
        std::fs::remove_file(dir.path().join("vocab.json")).unwrap();
        assert!(err(&dir).contains("vocab.json: "), "{}", err(&dir));
    }

    #[test]
    fn an_export_loads_as_a_checkpoint_and_its_vectors_are_the_scores() {
        let (model, vocab) = tiny();
        let meta = Meta::new(
            model.cfg.clone(),
            serde_json::json!({}),
            Script::Simplified,
            "t".into(),
        );
        let src = tempfile::tempdir().unwrap();
        let loaded = Loaded { model, vocab, meta };
        let out = src.path().join("torch");
        export(&loaded, &out).unwrap();
        let back = load_any(&out).unwrap();
        assert_eq!(back.model.params, loaded.model.params);
        let text = std::fs::read_to_string(out.join(VECTORS_FILE)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let poems: Vec<Vector> = serde_json::from_value(json["poems"].clone()).unwrap();
        // 3 poems, and the two 五绝 once more behind their tag (this vocabulary has no 七绝)
        assert_eq!(poems.len(), 5);
        let tagged = &poems[1];
        assert_eq!(
            tagged.ids[1],
            loaded.vocab.tag(crate::corpus::Form::Wujue).unwrap()
        );
        // BEGIN 五绝 床 前 明 月 光 ， 疑 → the worked example of the docs
        // (前 is not in this tiny vocabulary: UNK is a character too)
        let want: Vec<[u32; 3]> = vec![[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 2, 1]];
        assert_eq!(&tagged.places[..4], &want[..]);
        let comma = tagged.text.chars().position(|c| c == '，').unwrap() + 2;
        assert_eq!(tagged.places[comma], [1, 0, 1]);
        for p in &poems {
            assert_eq!(p.log_probs.len() + 1, p.ids.len());
            assert_eq!(p.places.len() + 1, p.ids.len());
            let seq = &p.ids[1..p.ids.len() - 1];
            let (nll, _) =
                Model::from_params(loaded.model.cfg.clone(), loaded.model.params.clone())
                    .unwrap()
                    .loss(&crate::batch::Batch::from_seqs(&[seq]));
            assert!((nll + p.log_prob).abs() < 1e-4, "{nll} vs {}", p.log_prob);
        }
        assert!(std::fs::read_to_string(out.join(MODULE_FILE))
            .unwrap()
            .contains("class ShirenLM"));
    }
}
