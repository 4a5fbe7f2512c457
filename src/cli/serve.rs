//! `shiren serve`: loads the model and the tone lexicon once, then serves the
//! page and the JSON API (see `crate::serve`) until Ctrl-C or SIGTERM, and
//! lets requests in flight finish before exiting.
//!
//! What the user typed lives in [`Args`]; [`Args::resolve`] turns it into
//! checked settings (address parses, limits are positive) before anything is
//! loaded, so a typo fails in milliseconds rather than after loading a model.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::write::{default_model, TRAIN_HINT};
use super::Global;
use crate::checkpoint;
use crate::model::Model;
use crate::prosody::Lexicon;
use crate::serve::poet::WriterPoet;
use crate::serve::{self, Limits, Poet, Service};
use crate::vocab::Vocab;
use crate::write::Lm;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory (or run folder) to write with [default: models/tang-small, the model shipped with the repo]
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port (the address is printed once listening)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Requests being written at once (the writer batches them into shared model steps); further requests wait their turn [default: 64]
    #[arg(long, value_name = "N")]
    pub concurrent: Option<usize>,
    /// Time limit for one request, waiting included, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Most poems one request may ask for
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_count: usize,
    /// Also answer requests addressed to this host name (repeatable; `*` for any). By default only the bound address (and localhost on loopback) is answered, so other sites cannot reach the server through DNS rebinding
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Most connections open at once; more wait to be accepted
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections: usize,
}

/// Checked settings.
#[derive(Debug)]
pub struct ServeSettings {
    pub model: Option<PathBuf>,
    pub addr: SocketAddr,
    pub limits: Limits,
}

impl Args {
    pub fn resolve(&self) -> anyhow::Result<ServeSettings> {
        let addr: SocketAddr = self.addr.parse().map_err(|_| {
            anyhow::anyhow!(
                "--addr `{}` is not HOST:PORT (e.g. 127.0.0.1:8080, or 0.0.0.0:8080 to listen on every interface)",
                self.addr
            )
        })?;
        let mut limits = Limits::default();
        if let Some(n) = self.concurrent {
            anyhow::ensure!(n > 0, "--concurrent must be at least 1");
            limits.concurrent = n;
        }
        anyhow::ensure!(self.timeout_ms > 0, "--timeout-ms must be at least 1");
        limits.timeout = Duration::from_millis(self.timeout_ms);
        anyhow::ensure!(
            (1..=1000).contains(&self.max_count),
            "--max-count {} is out of range (use 1 to 1000)",
            self.max_count
        );
        limits.max_count = self.max_count;
        anyhow::ensure!(
            (1..=100_000).contains(&self.max_connections),
            "--max-connections {} is out of range (use 1 to 100000)",
            self.max_connections
        );
        limits.max_connections = self.max_connections;
        for h in &self.allow_host {
            anyhow::ensure!(
                !h.is_empty() && !h.contains(['/', ' ', ':']),
                "--allow-host `{h}` is not a host name (give a name such as poems.example.org, without scheme or port)"
            );
        }
        limits.allow_hosts = self.allow_host.clone();
        if let Some(dir) = &self.model {
            anyhow::ensure!(
                dir.is_dir(),
                "--model {}: no such directory (give a checkpoint directory written by `shiren train`)",
                dir.display()
            );
        }
        Ok(ServeSettings {
            model: self.model.clone(),
            addr,
            limits,
        })
    }
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let poet = load_poet(settings.model.as_deref(), g)?;
    if g.verbose {
        eprintln!("shiren: model: {}", poet.describe());
    }
    let service = Arc::new(Service::new(poet, settings.limits));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.addr)
            .await
            .with_context(|| {
                format!(
                    "could not listen on {} (is another server using the port? try --addr 127.0.0.1:0)",
                    settings.addr
                )
            })?;
        let addr = listener.local_addr()?;
        // One line on stdout, flushed, so scripts can read the address (port 0 picks one).
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}/")?;
        out.flush()?;
        drop(out);
        serve::serve(listener, service, shutdown_signal())
            .await
            .context("the server stopped with an error")
    })?;
    eprintln!("shiren: stopped");
    Ok(())
}

/// Completes on Ctrl-C, or SIGTERM on Unix (what `kill` and service managers send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("shiren: shutting down (finishing requests in flight)");
}

/// Loads the model and lexicon once; every request shares them.
fn load_poet(model: Option<&Path>, g: &Global) -> anyhow::Result<Arc<dyn Poet>> {
    let mut dir = model.map_or_else(default_model, Path::to_path_buf);
    // A run folder (runs/NAME) holds its best checkpoint in best/, as `shiren write` accepts.
    if let Some(found) = checkpoint::find_in(&dir, &["best"]) {
        dir = found;
    }
    if !dir.join("config.json").is_file() {
        anyhow::bail!(
            "no model at {}{} (train it with `{TRAIN_HINT}`, or pass --model DIR)",
            dir.display(),
            if model.is_none() {
                ", the shipped model's place"
            } else {
                ""
            },
        );
    }
    let loaded = checkpoint::load(&dir)
        .with_context(|| format!("loading the model in {}", dir.display()))?;
    let about = format!(
        "{} ({:?} {}x{}, vocabulary {}, {}, step {})",
        dir.display(),
        loaded.model.cfg.cell,
        loaded.model.cfg.layers,
        loaded.model.cfg.hidden,
        loaded.vocab.len(),
        loaded.meta.corpus,
        loaded.meta.step,
    );
    // Without the lexicon the server still writes, and each poem says rhyme and
    // tones were not applied; a server should not refuse to start for that.
    let data_dir = crate::cache::data_dir(g.data_dir.as_deref())?;
    let lexicon = Lexicon::load(&data_dir, loaded.meta.script)
        .map_err(|e| {
            eprintln!(
                "shiren: warning: no tone lexicon ({e:#}); serving without rhyme and tone rules"
            )
        })
        .ok();
    // The writer borrows the model and vocabulary for the life of the server.
    let model: &'static Model = Box::leak(Box::new(loaded.model));
    let vocab: &'static Vocab = Box::leak(Box::new(loaded.vocab));
    // The ci tunes, for `form: <tune>` and the page's list; optional like the lexicon.
    let poet = WriterPoet::new(Lm::new(model, vocab), lexicon, about);
    let poet = match crate::prosody::songci::Songci::load(&data_dir) {
        Ok(s) => poet.with_tunes(s.cipu, &s.cilin),
        Err(e) => {
            eprintln!("shiren: warning: no ci tunes ({e:#}); serving the shi forms only");
            poet
        }
    };
    Ok(Arc::new(poet))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("serve", args)
    }

    fn resolve(argv: &[&str]) -> anyhow::Result<ServeSettings> {
        parse(argv)?.resolve()
    }

    #[test]
    fn defaults_resolve_to_loopback_8080() {
        let s = resolve(&[]).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
        assert!(s.limits.concurrent >= 1);
        assert_eq!(s.limits.timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_settings_fail_before_loading() {
        let e = resolve(&["--addr", "localhost"]).unwrap_err().to_string();
        assert!(e.contains("`localhost`") && e.contains("HOST:PORT"), "{e}");
        let e = resolve(&["--concurrent", "0"]).unwrap_err().to_string();
        assert!(e.contains("--concurrent"), "{e}");
        let e = resolve(&["--model", "/no/such/dir"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/dir"), "{e}");
        let s = resolve(&[
            "--addr",
            "0.0.0.0:0",
            "--timeout-ms",
            "250",
            "--max-count",
            "3",
        ])
        .unwrap();
        assert_eq!(s.addr.port(), 0);
        assert_eq!(s.limits.timeout, Duration::from_millis(250));
        assert_eq!(s.limits.max_count, 3);
    }
}
