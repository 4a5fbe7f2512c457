//! Token embedding: a row lookup forward, a scatter-add backward.
//! Not here: checking that ids are below V (the model does, once per batch).

/// `out: (T, B, E)` time-major; `tokens: (B, T)` row-major as batches store them; `w: (V, E)`.
pub fn embedding_forward(out: &mut [f32], tokens: &[u32], w: &[f32], b: usize, t: usize, e: usize) {
    assert_eq!(
        out.len(),
        t * b * e,
        "embedding_forward: out is not (T, B, E)"
    );
    assert_eq!(
        tokens.len(),
        b * t,
        "embedding_forward: tokens is not (B, T)"
    );
    for tt in 0..t {
        for bb in 0..b {
            let id = tokens[bb * t + tt] as usize;
            out[(tt * b + bb) * e..(tt * b + bb + 1) * e].copy_from_slice(&w[id * e..(id + 1) * e]);
        }
    }
}

/// `dw: (V, E)` += the rows of `dout: (T, B, E)` at each token's id.
pub fn embedding_backward(
    dw: &mut [f32],
    dout: &[f32],
    tokens: &[u32],
    b: usize,
    t: usize,
    e: usize,
) {
    assert_eq!(
        dout.len(),
        t * b * e,
        "embedding_backward: dout is not (T, B, E)"
    );
    assert_eq!(
        tokens.len(),
        b * t,
        "embedding_backward: tokens is not (B, T)"
    );
    for tt in 0..t {
        for bb in 0..b {
            let id = tokens[bb * t + tt] as usize;
            let src = &dout[(tt * b + bb) * e..(tt * b + bb + 1) * e];
            for (d, s) in dw[id * e..(id + 1) * e].iter_mut().zip(src) {
                *d += s;
            }
        }
    }
}

/// `out: (T, B, E)` += the rows of `w` at `ids: (B, T)`: a second table (of
/// positions) added onto the token embedding.
pub fn embedding_add(out: &mut [f32], ids: &[u32], w: &[f32], b: usize, t: usize, e: usize) {
    assert_eq!(out.len(), t * b * e, "embedding_add: out is not (T, B, E)");
    assert_eq!(ids.len(), b * t, "embedding_add: ids is not (B, T)");
    for tt in 0..t {
        for bb in 0..b {
            let id = ids[bb * t + tt] as usize;
            let dst = &mut out[(tt * b + bb) * e..(tt * b + bb + 1) * e];
            for (d, s) in dst.iter_mut().zip(&w[id * e..(id + 1) * e]) {
                *d += s;
            }
        }
    }
}
