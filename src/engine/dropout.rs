//! Inverted dropout between recurrent layers (as PyTorch's `dropout=` argument
//! of `nn.LSTM`): kept units are scaled by 1/(1−p) so evaluation needs no change.
//! The same masks serve the embedding and the top layer's output (`dropout_in`, `dropout_out`).
//! Not here: dropout inside the recurrence (variational dropout).

use crate::rng::Rng;

/// `out = x ⊙ mask`, with `mask` (same length) receiving 0 or 1/(1−p) per element.
pub fn dropout_forward(out: &mut [f32], mask: &mut [f32], x: &[f32], p: f32, rng: &mut Rng) {
    assert!(
        out.len() == x.len() && mask.len() == x.len(),
        "dropout_forward: lengths differ"
    );
    let keep = 1.0 / (1.0 - p);
    for ((o, m), xv) in out.iter_mut().zip(mask.iter_mut()).zip(x) {
        *m = if rng.uniform() < p { 0.0 } else { keep };
        *o = xv * *m;
    }
}

/// `x ← x ⊙ mask`, drawn as in [`dropout_forward`], for an input nobody needs undropped.
pub fn dropout_in_place(x: &mut [f32], mask: &mut [f32], p: f32, rng: &mut Rng) {
    assert!(mask.len() == x.len(), "dropout_in_place: lengths differ");
    let keep = 1.0 / (1.0 - p);
    for (xv, m) in x.iter_mut().zip(mask.iter_mut()) {
        *m = if rng.uniform() < p { 0.0 } else { keep };
        *xv *= *m;
    }
}

/// `dx += dout ⊙ mask`.
pub fn dropout_backward(dx: &mut [f32], dout: &[f32], mask: &[f32]) {
    assert!(
        dx.len() == dout.len() && mask.len() == dout.len(),
        "dropout_backward: lengths differ"
    );
    for ((d, g), m) in dx.iter_mut().zip(dout).zip(mask) {
        *d += g * m;
    }
}
