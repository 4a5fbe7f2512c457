//! shiren (诗人): a character-level recurrent network that learns to write
//! Chinese classical poetry, trained and run on the CPU.
//!
//! The library does all the work; the `shiren` binary (`src/main.rs`) is a
//! thin layer over [`cli::run`]. Dependencies point one way:
//!
//! ```text
//! cache, rng ← corpus, vocab, batch, prosody          (data; no model types)
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
pub mod cli;
pub mod corpus;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod mnist;
pub mod model;
pub mod ngram;
pub mod optim;
pub mod prosody;
pub mod rng;
pub mod score;
pub mod serve;
pub mod torch;
pub mod train;
pub mod vocab;
pub mod write;
