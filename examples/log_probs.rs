//! The log-probability a checkpoint gives each next token of one poem, step by
//! step, as JSON: the reference that `scripts/check_checkpoint_doc.py` compares
//! a plain-Python reading of `docs/checkpoints.md` against.
//!
//! cargo run --release --example log_probs -- [CHECKPOINT [POEM [TAG [TITLE]]]]
//!
//! The input is `BEGIN [TITLE BEGIN] [TAG] poem`, the targets the same shifted
//! by one and END (a TITLE needs a model trained with titles).
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().map_or("models/tang-small", String::as_str);
    let poem = args.get(1).map_or(
        "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
        String::as_str,
    );
    let loaded = shiren::checkpoint::load(Path::new(dir))?;
    let (model, vocab) = (loaded.model, loaded.vocab);
    let mut ids = vec![shiren::vocab::Vocab::BEGIN];
    if let Some(title) = args.get(3) {
        ids.extend(shiren::title::prefix(&vocab, Some(title)));
    }
    if let Some(name) = args.get(2) {
        let form: shiren::corpus::Form = name.parse().map_err(anyhow::Error::msg)?;
        ids.push(
            vocab
                .tag(form)
                .ok_or_else(|| anyhow::anyhow!("{dir}: the vocabulary has no tag for `{name}`"))?,
        );
    }
    ids.extend(vocab.encode(poem));
    let targets: Vec<u32> = ids[1..]
        .iter()
        .copied()
        .chain([shiren::vocab::Vocab::END])
        .collect();
    let mut state = model.new_state(1);
    let mut out = vec![0f32; model.cfg.vocab];
    let mut log_probs = Vec::with_capacity(ids.len());
    for (&id, &target) in ids.iter().zip(&targets) {
        model.step(&mut state, &[id], &mut out);
        // With a shortlist the step already gives log-probabilities; else logits.
        let lp = if model.cfg.shortlist > 0 {
            out[target as usize] as f64
        } else {
            let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max
                + out
                    .iter()
                    .map(|&x| (x as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            out[target as usize] as f64 - lse
        };
        log_probs.push(lp);
    }
    let json = serde_json::json!({ "ids": ids, "targets": targets, "log_probs": log_probs });
    println!("{json}");
    Ok(())
}
