//! The course's other model: an LSTM that reads an MNIST digit row by row.
//!
//! Each 28×28 image becomes a sequence of T = 28 steps of D = 28 pixels
//! (scaled to [0, 1]); the engine's LSTM carries its state from row to row and
//! a linear head on the last step's output classifies the digit. This module
//! adds no kernels: the model is `model::Model` with `Input::Dense` and
//! `Head::LastStep`, exactly the code that trains the poetry models.
//!
//! `idx.rs` reads the IDX format with every header field checked, `data.rs`
//! fetches and loads the files.

pub mod data;
pub mod idx;

pub use data::{fetch, install_from, load, load_dir, Mnist};
pub use idx::{Digits, IdxError};
