//! `shiren corpus` (not built yet).

use super::Global;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`shiren corpus` is not built yet")
}
