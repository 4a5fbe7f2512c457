//! `shiren import DIR --out CKPT`: a PyTorch folder (state dict as
//! safetensors, config.json, vocab.json) as a shiren checkpoint; see `crate::torch`.

use std::path::PathBuf;

use super::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The PyTorch folder: a .safetensors state dict (F32, F16, BF16 or F64), config.json, vocab.json
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to write the shiren checkpoint (replaced if it exists)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Store the weights in half precision (half the size; for use, not for --resume)
    #[arg(long)]
    pub f16: bool,
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.dir.is_dir(),
        "{}: no such folder (pass the folder holding config.json, vocab.json and the .safetensors file)",
        args.dir.display()
    );
    let (mut loaded, notes) = crate::torch::import(&args.dir)?;
    if args.f16 {
        loaded.meta.precision = crate::checkpoint::Precision::F16;
    }
    crate::checkpoint::save(&args.out, &loaded.model, &loaded.vocab, &loaded.meta, None)?;
    let c = &loaded.model.cfg;
    println!(
        "{} → {}: {} × {} {}, {} parameters, vocabulary {}",
        args.dir.display(),
        args.out.display(),
        c.layers,
        c.hidden,
        c.cell,
        c.num_params(),
        c.vocab
    );
    for n in notes.0 {
        println!("  {n}");
    }
    Ok(())
}
