//! `shiren export --torch DIR`: a checkpoint as PyTorch reads it (see `crate::torch`).

use std::path::PathBuf;

use super::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint to export: a checkpoint folder or a run folder holding best/ [default: models/tang-small, the shipped model]
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Write the model here for PyTorch: model.safetensors (F32, PyTorch names), config.json, vocab.json, modeling_shiren.py and test_vectors.json
    #[arg(long, value_name = "DIR")]
    pub torch: PathBuf,
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    let src = args
        .model
        .clone()
        .unwrap_or_else(super::write::default_model);
    let loaded = crate::torch::load_any(&src)?;
    crate::torch::export(&loaded, &args.torch)?;
    let c = &loaded.model.cfg;
    println!(
        "{} → {}: {} × {} {}, {} parameters, vocabulary {}; load it with `ShirenLM.from_pretrained(\"{}\")` from {}",
        src.display(),
        args.torch.display(),
        c.layers,
        c.hidden,
        c.cell,
        c.num_params(),
        c.vocab,
        args.torch.display(),
        crate::torch::MODULE_FILE
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("export", args)
    }

    #[test]
    fn export_needs_a_destination() {
        assert!(parse(&[]).is_err());
        let a = parse(&["--torch", "out"]).unwrap();
        assert_eq!(a.torch, PathBuf::from("out"));
    }
}
