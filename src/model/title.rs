//! The title vector: what the poem is about, told at every step.
//!
//! A model trained with titles reads `BEGIN 送 友 人 BEGIN [tag] 青 山 …`
//! (see `crate::title`). The recurrent layers read the title's characters,
//! but what they keep of them fades over the forty to sixty characters of a
//! poem, so the title changed the test perplexity by only 3.5%. With
//! [`Positions::title`](super::Positions::title) the title also reaches every
//! later step directly, as the form does through its row:
//!
//! ```text
//! t̄   = (1/n) Σ_k emb[title_k]       the mean of the title's embedding rows
//! u   = W_t · t̄                      W_t: `title.weight`, (E, E)
//! x_s += u                           for every step s from the reset that ends the title
//! ```
//!
//! The title is the characters (not line ends, tags or other silent tokens)
//! read before the first reset that follows at least one of them; a sequence
//! without one (a poem read without its title) adds nothing, and later
//! resets change nothing. `W_t` starts at zero, so a model given the vector writes as it
//! did until training moves it.
//!
//! Backward, with g_s = dL/dx_s:
//!
//! ```text
//! du   = Σ_s g_s                     over the steps u was added to
//! dW_t += du ⊗ t̄
//! dt̄   = W_tᵀ · du,   and each title character's row gets dt̄ / n
//! ```

use super::config::{Place, PosKind};

/// Where one sequence's title is: its characters' ids and the step from
/// which `u` is added (the reset that ended it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TitleSpan {
    pub ids: Vec<u32>,
    pub from: usize,
}

/// The title of `tokens` as the step-by-step reading finds it: the
/// characters since the previous reset at the first reset that follows any.
pub(super) fn title_span(tokens: &[u32], kinds: &[PosKind]) -> Option<TitleSpan> {
    let mut since = Vec::new();
    for (s, &id) in tokens.iter().enumerate() {
        match kinds[id as usize] {
            PosKind::Char => since.push(id),
            PosKind::Reset if !since.is_empty() => {
                return Some(TitleSpan {
                    ids: since,
                    from: s,
                })
            }
            PosKind::Reset => {}
            _ => {}
        }
    }
    None
}

/// `mean = (1/n) Σ emb[ids]` and `u = W_t · mean`, each (E).
pub(super) fn title_forward(
    u: &mut [f32],
    mean: &mut [f32],
    emb: &[f32],
    w_t: &[f32],
    ids: &[u32],
) {
    let e = u.len();
    mean.fill(0.0);
    for &id in ids {
        let row = &emb[id as usize * e..(id as usize + 1) * e];
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    let inv = 1.0 / ids.len().max(1) as f32;
    mean.iter_mut().for_each(|m| *m *= inv);
    map_mean(u, w_t, mean);
}

/// `u = W_t · mean`.
fn map_mean(u: &mut [f32], w_t: &[f32], mean: &[f32]) {
    for (o, w_row) in u.iter_mut().zip(w_t.chunks_exact(mean.len())) {
        *o = crate::engine::dot(w_row, mean);
    }
}

/// [`title_forward`] one token at a time, as sampling reads them. Until
/// `place` has a title, a character's row joins `sum`, and a reset after
/// `read` > 0 characters sets `u` from their mean and marks the place titled.
pub(super) fn title_step(
    sum: &mut [f32],
    u: &mut [f32],
    place: &mut Place,
    (kind, read): (PosKind, u32),
    row: &[f32],
    w_t: &[f32],
) {
    if place.titled {
        return;
    }
    match kind {
        PosKind::Char => sum.iter_mut().zip(row).for_each(|(s, v)| *s += v),
        PosKind::Reset if read > 0 => {
            let inv = 1.0 / read as f32;
            sum.iter_mut().for_each(|s| *s *= inv);
            map_mean(u, w_t, sum);
            place.titled = true;
        }
        _ => {}
    }
}

/// From `du` (E): `dW_t += du ⊗ mean` and each title row of `demb` `+= W_tᵀ·du / n`.
pub(super) fn title_backward(
    dw_t: &mut [f32],
    demb: &mut [f32],
    du: &[f32],
    mean: &[f32],
    w_t: &[f32],
    ids: &[u32],
) {
    let e = du.len();
    let mut dmean = vec![0.0f32; e];
    for ((dw_row, w_row), &g) in dw_t.chunks_exact_mut(e).zip(w_t.chunks_exact(e)).zip(du) {
        for ((dw, m), (dm, w)) in dw_row.iter_mut().zip(mean).zip(dmean.iter_mut().zip(w_row)) {
            *dw += g * m;
            *dm += g * w;
        }
    }
    let inv = 1.0 / ids.len().max(1) as f32;
    for &id in ids {
        let row = &mut demb[id as usize * e..(id as usize + 1) * e];
        for (d, g) in row.iter_mut().zip(&dmean) {
            *d += g * inv;
        }
    }
}
