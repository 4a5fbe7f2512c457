//! Hand-written numeric kernels: the recurrent cells (RNN, GRU, LSTM), the
//! embedding, the linear head with a fused masked softmax cross-entropy, and
//! dropout, each as a forward/backward pair over flat `f32` slices.
//!
//! This is not a tensor library: there is no shape type, no graph and no
//! autograd. `model.rs` stacks these kernels into a network and owns all
//! buffers; kernels never allocate on the hot path and backward functions add
//! (`+=`) into their gradient buffers, which the caller zeroes once per step.
//! All GEMMs go through `matmul.rs`; everything else is plain loops.
//!
//! Dimension legend (used in every doc comment and slice name):
//!
//! ```text
//! B  batch size            T  time steps
//! E  embedding / input width to the first layer (I is a layer's input width)
//! H  hidden units          G  gate rows per unit: LSTM 4 (i, f, g, o), GRU 3 (r, z, n), RNN 1
//! V  vocabulary (or classes for a classifier head)
//! L  recurrent layers
//! ```
//!
//! Activations are time-major, `(T, B, ·)`, so one time step is one contiguous
//! `(B, ·)` matrix for the recurrent GEMM, and all steps together are one
//! `(T·B, ·)` matrix for the input projection and the weight gradients.
//! Weights keep PyTorch's layout and names: `weight_ih` is `(G·H, I)`,
//! `weight_hh` is `(G·H, H)`, so a PyTorch snippet can produce test numbers.

pub mod dropout;
pub mod embedding;
pub mod gru;
pub mod linear;
pub mod lstm;
pub mod matmul;
pub mod rnn;
pub mod softmax_ce;

#[cfg(test)]
pub mod reference;
#[cfg(test)]
mod tests;

/// Logistic sigmoid, written so that large negative inputs do not overflow.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Borrowed weights of one recurrent layer, in PyTorch's layout.
///
/// `w_ih: (G·H, I)`, `w_hh: (G·H, H)`, `b_ih: (G·H)`, `b_hh: (G·H)`.
#[derive(Clone, Copy)]
pub struct CellWeights<'a> {
    pub w_ih: &'a [f32],
    pub w_hh: &'a [f32],
    pub b_ih: &'a [f32],
    pub b_hh: &'a [f32],
}

/// Gradient buffers of one recurrent layer, same shapes as [`CellWeights`].
pub struct CellGrads<'a> {
    pub dw_ih: &'a mut [f32],
    pub dw_hh: &'a mut [f32],
    pub db_ih: &'a mut [f32],
    pub db_hh: &'a mut [f32],
}

/// Sizes of one recurrent layer's run: T steps of B sequences, I inputs, H units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub t: usize,
    pub b: usize,
    pub i: usize,
    pub h: usize,
}

/// Dot product with eight independent accumulators, so the compiler can keep
/// them in vector registers (a single running sum would force sequential adds).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `out[j] (+)= dot(w[j, :], x)` for `w: (N, K)` row-major: the batch-1 path of
/// sampling, where a GEMM's packing costs more than the product itself.
pub fn matvec(out: &mut [f32], w: &[f32], x: &[f32], accumulate: bool) {
    let k = x.len();
    assert_eq!(w.len(), out.len() * k, "matvec: w is not (N, K)");
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k)) {
        let d = dot(row, x);
        *o = if accumulate { *o + d } else { d };
    }
}
