//! The course's other model: an LSTM that reads an MNIST digit row by row.
//!
//! Each 28×28 image becomes a sequence of T = 28 steps of D = 28 pixels
//! (scaled to [0, 1]); the engine's LSTM carries its state from row to row and
//! a linear head on the last step's output classifies the digit. This module
//! adds no kernels: the model is `model::Model` with `Input::Dense` and
//! `Head::LastStep`, the same code that trains the poetry models.
//!
//! `idx.rs` reads the IDX format with every header field checked, `data.rs`
//! fetches and loads the files, `train.rs` trains, evaluates, and saves and
//! resumes runs through `crate::checkpoint` (the poem model's format), and
//! `show.rs` renders digits and the confusion matrix as text.

pub mod data;
pub mod idx;
pub mod show;
pub mod train;

pub use data::{fetch, install_from, load, load_dir, Mnist};
pub use idx::{Digits, IdxError};
pub use train::{
    evaluate, find_checkpoint, load_checkpoint, load_model, split_valid, train, Eval, MnistConfig,
};
