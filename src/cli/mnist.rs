//! `shiren mnist` (not built yet).

use super::Global;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`shiren mnist` is not built yet")
}
