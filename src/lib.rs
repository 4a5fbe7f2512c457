//! shiren (诗人): a character-level recurrent network that learns to write
//! Chinese classical poetry, trained and run on the CPU.
//!
//! The library does all the work; the `shiren` binary (`src/main.rs`) is a
//! thin layer over `cli::run`. The front ends, `cli` and `serve` (with clap,
//! axum and tokio), are behind the default cargo feature `cli`: built with
//! `--no-default-features`, the library is the numeric core, the trainer and
//! the writer alone. Dependencies point one way:
//!
//! ```text
//! cache, rng, plot, progress ← corpus, vocab, batch, prosody    (data and charts; no model types)
//! engine ← model ← optim, checkpoint ← train, write, eval, mnist, bench
//!                                     ← cli, serve    (glue; nothing imports them)
//! ```
//!
//! Where to look: `corpus/` reads, cleans and converts the poems; `vocab.rs`
//! and `batch.rs` turn them into training batches; `engine/` holds the
//! hand-written kernels (RNN, GRU, LSTM forward and backward over flat `f32`
//! buffers); `model.rs` stacks them into a language model; `train.rs` is the
//! training loop; `write.rs` samples poems under form, rhyme and tone
//! constraints from `prosody/`; `eval.rs` and `ngram.rs` measure quality;
//! `mnist/` is the course's row-by-row digit classifier on the same engine.

pub mod batch;
pub mod bench;
pub mod cache;
pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod cli;
pub mod corpus;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod limits;
pub mod mnist;
pub mod model;
pub mod ngram;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod prosody;
pub mod rng;
pub mod score;
#[cfg(feature = "cli")]
pub mod serve;
pub mod title;
pub mod torch;
pub mod train;
pub mod vocab;
pub mod write;
