//! The encoded corpus as files that PyTorch (or numpy) reads without shiren:
//! `shiren corpus export DIR`.
//!
//! ```text
//! DIR/data.safetensors  per part P in train, valid, test:
//!                         P.tokens  I32 (N_tokens)   every poem's ids, one after another, no BEGIN/END
//!                         P.offsets I64 (N_poems+1)  poem k is tokens[offsets[k]:offsets[k+1]]
//! DIR/vocab.json        the vocabulary (ids 0-3 PAD BEGIN END UNK, characters by frequency, form tags)
//! DIR/corpus.json       what was read and how: source, script, counts per part, form tags, layout
//! DIR/P.txt             each part's poems as text, a blank line between poems (`shiren score` reads it)
//! ```
//!
//! The parts are shiren's own split (a hash of each poem's text, 90/5/5), and
//! training poems of a tagged form start with its tag as `shiren train` feeds
//! them; validation and test poems are untagged, as `shiren eval` scores them.
//! A trainer makes each poem `BEGIN ids` → `ids END`. Not here: reading and
//! cleaning (`corpus/`), the vocabulary (`vocab.rs`).

use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::vocab::Vocab;

pub const DATA_FILE: &str = "data.safetensors";
pub const INFO_FILE: &str = "corpus.json";
pub const PARTS: [&str; 3] = ["train", "valid", "test"];

/// One part: its poems' texts and ids.
#[derive(Clone, Debug, Default)]
pub struct Part {
    pub texts: Vec<String>,
    pub ids: Vec<Vec<u32>>,
}

/// Flattens `ids` into (tokens, offsets).
pub fn flatten(ids: &[Vec<u32>]) -> (Vec<i32>, Vec<i64>) {
    let mut tokens = Vec::with_capacity(ids.iter().map(Vec::len).sum());
    let mut offsets = Vec::with_capacity(ids.len() + 1);
    offsets.push(0i64);
    for s in ids {
        tokens.extend(s.iter().map(|&t| t as i32));
        offsets.push(tokens.len() as i64);
    }
    (tokens, offsets)
}

/// Writes the files of the module doc into `dir` (created if missing). `info`
/// is merged into corpus.json.
pub fn write(
    dir: &Path,
    parts: &[Part; 3],
    vocab: &Vocab,
    info: serde_json::Value,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", dir.display()))?;
    let put = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    };
    let mut owned: Vec<(String, Dtype, usize, Vec<u8>)> = Vec::new();
    let mut counts = serde_json::Map::new();
    for (name, part) in PARTS.iter().zip(parts) {
        let (tokens, offsets) = flatten(&part.ids);
        counts.insert(
            name.to_string(),
            serde_json::json!({"poems": part.ids.len(), "tokens": tokens.len()}),
        );
        let n = tokens.len();
        owned.push((
            format!("{name}.tokens"),
            Dtype::I32,
            n,
            tokens.iter().flat_map(|t| t.to_le_bytes()).collect(),
        ));
        owned.push((
            format!("{name}.offsets"),
            Dtype::I64,
            offsets.len(),
            offsets.iter().flat_map(|t| t.to_le_bytes()).collect(),
        ));
        let mut text = String::new();
        for t in &part.texts {
            text.push_str(t);
            text.push_str("\n\n");
        }
        put(&format!("{name}.txt"), text.as_bytes())?;
    }
    let views = owned
        .iter()
        .map(|(n, d, len, b)| TensorView::new(*d, vec![*len], b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()?;
    let meta =
        std::collections::HashMap::from([("format".to_string(), "shiren-corpus/1".to_string())]);
    put(DATA_FILE, &safetensors::serialize(views, Some(meta))?)?;
    put(crate::checkpoint::VOCAB_FILE, vocab.to_json().as_bytes())?;
    let mut json = serde_json::json!({
        "format": "shiren-corpus",
        "version": 1,
        "vocab": vocab.len(),
        "specials": {"pad": Vocab::PAD, "begin": Vocab::BEGIN, "end": Vocab::END, "unk": Vocab::UNK},
        "line_ends": vocab.line_ends(),
        "silent": vocab.silent(),
        "forms": vocab.tag_ids(),
        "parts": counts,
        "layout": "P.tokens[P.offsets[k]:P.offsets[k+1]] are poem k's ids without BEGIN/END; train poems may start with a form tag",
    });
    if let (Some(o), serde_json::Value::Object(extra)) = (json.as_object_mut(), info) {
        o.extend(extra);
    }
    put(
        INFO_FILE,
        (serde_json::to_string_pretty(&json)? + "\n").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_through_tokens_and_offsets() {
        let vocab = Vocab::build(["白日依山尽，"], 1);
        let ids = vec![vec![4, 5], vec![], vec![6, 7, 8]];
        let (tokens, offsets) = flatten(&ids);
        assert_eq!(tokens, [4, 5, 6, 7, 8]);
        assert_eq!(offsets, [0, 2, 2, 5]);
        let dir = tempfile::tempdir().unwrap();
        let train = Part {
            texts: vec!["白日".into(), "".into(), "依山尽".into()],
            ids,
        };
        let parts = [train, Part::default(), Part::default()];
        write(
            dir.path(),
            &parts,
            &vocab,
            serde_json::json!({"script": "simplified"}),
        )
        .unwrap();
        let bytes = std::fs::read(dir.path().join(DATA_FILE)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let off = st.tensor("train.offsets").unwrap();
        assert_eq!((off.dtype(), off.shape()), (Dtype::I64, &[4][..]));
        assert_eq!(st.tensor("valid.tokens").unwrap().shape(), &[0]);
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(INFO_FILE)).unwrap())
                .unwrap();
        assert_eq!(info["parts"]["train"]["tokens"], 5);
        assert_eq!(info["script"], "simplified");
        assert_eq!(
            info["line_ends"],
            serde_json::json!([vocab.id('，').unwrap()])
        );
        let text = std::fs::read_to_string(dir.path().join("train.txt")).unwrap();
        assert!(text.starts_with("白日\n\n"));
    }
}
