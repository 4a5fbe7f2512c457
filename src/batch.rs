//! Training batches (the corpus helper fills in the `Batcher`; the engine only
//! needs the pinned `Batch` shape below).

/// One batch of B sequences of T steps, all three buffers (B, T) row-major:
/// `inputs` = [BEGIN, c1..cn] padded with PAD, `targets` = [c1..cn, END] padded,
/// `mask` 1 for a real target and 0 for padding.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub b: usize,
    pub t: usize,
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    pub mask: Vec<f32>,
}
