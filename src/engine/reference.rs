//! Slow reference implementations in f64, compiled only for tests: per-step,
//! per-gate loops that can be checked by eye against the PyTorch equations,
//! and a whole-model loss used for finite-difference gradient checks.
//! Nothing outside the tests calls this file; it has no speed concerns.

use crate::model::{param_table, Cell, Head, Input, ModelConfig};

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Σ_k w[row, k]·v[k] for `w` row-major with `k = v.len()` columns.
fn row_dot(w: &[f64], row: usize, v: &[f64]) -> f64 {
    let k = v.len();
    (0..k).map(|j| w[row * k + j] * v[j]).sum()
}

/// Weights of one layer in f64, PyTorch layout.
pub struct RefWeights<'a> {
    pub w_ih: &'a [f64],
    pub w_hh: &'a [f64],
    pub b_ih: &'a [f64],
    pub b_hh: &'a [f64],
}

/// Runs one layer over `x: (T, B, I)` from zero state. Returns h: (T, B, H) and,
/// for LSTM, c: (T, B, H) (empty for the others).
pub fn cell_ref(
    cell: Cell,
    x: &[f64],
    w: &RefWeights,
    t: usize,
    b: usize,
    i: usize,
    h: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut hs = vec![0.0; t * b * h];
    let mut cs = vec![0.0; if cell == Cell::Lstm { t * b * h } else { 0 }];
    for bb in 0..b {
        let mut hp = vec![0.0f64; h];
        let mut cp = vec![0.0f64; h];
        for tt in 0..t {
            let xt = &x[(tt * b + bb) * i..(tt * b + bb + 1) * i];
            let mut hn = vec![0.0; h];
            let mut cn = vec![0.0; h];
            for j in 0..h {
                // pre-activation of gate q for unit j: input part and hidden part kept apart (GRU needs them apart)
                let xi = |q: usize| row_dot(w.w_ih, q * h + j, xt) + w.b_ih[q * h + j];
                let hh = |q: usize| row_dot(w.w_hh, q * h + j, &hp) + w.b_hh[q * h + j];
                match cell {
                    Cell::Lstm => {
                        let ig = sig(xi(0) + hh(0));
                        let fg = sig(xi(1) + hh(1));
                        let gg = (xi(2) + hh(2)).tanh();
                        let og = sig(xi(3) + hh(3));
                        cn[j] = fg * cp[j] + ig * gg;
                        hn[j] = og * cn[j].tanh();
                    }
                    Cell::Gru => {
                        let r = sig(xi(0) + hh(0));
                        let z = sig(xi(1) + hh(1));
                        let n = (xi(2) + r * hh(2)).tanh();
                        hn[j] = (1.0 - z) * n + z * hp[j];
                    }
                    Cell::Rnn => hn[j] = (xi(0) + hh(0)).tanh(),
                }
            }
            hs[(tt * b + bb) * h..(tt * b + bb + 1) * h].copy_from_slice(&hn);
            if cell == Cell::Lstm {
                cs[(tt * b + bb) * h..(tt * b + bb + 1) * h].copy_from_slice(&cn);
            }
            hp = hn;
            cp = cn;
        }
    }
    (hs, cs)
}

/// What the reference model reads: token ids (B, T) or dense rows (B, T, D).
pub enum RefInput<'a> {
    Tokens(&'a [u32]),
    Dense(&'a [f64]),
}

/// Dropout masks (0 or 1/(1−p) per element, time-major like the model's
/// buffers) to multiply in at each site: the first layer's input (T, B, I0),
/// the input of each layer above the first ((T, B, H) each, bottom up) and the
/// top layer's output (T, B, H). An empty slice leaves its site undropped.
#[derive(Default)]
pub struct RefMasks<'a> {
    pub input: &'a [f32],
    pub between: Vec<&'a [f32]>,
    pub output: &'a [f32],
}

fn apply_mask(x: &mut [f64], mask: &[f32]) {
    if !mask.is_empty() {
        assert_eq!(x.len(), mask.len(), "a dropout mask's size");
        for (v, m) in x.iter_mut().zip(mask) {
            *v *= *m as f64;
        }
    }
}

/// Mean loss of the whole model in f64, with the dropout masks in `drop`
/// multiplied in (`RefMasks::default()` for none): per unmasked token for an
/// every-step head (`targets`, `mask`: (B, T)), per sequence for a last-step
/// head (`targets`: (B) labels, `mask` ignored).
#[allow(clippy::too_many_arguments)]
pub fn model_loss_ref(
    cfg: &ModelConfig,
    params: &[f64],
    input: RefInput,
    targets: &[u32],
    mask: &[f32],
    b: usize,
    t: usize,
    drop: &RefMasks,
) -> f64 {
    // slice the flat parameters by the table
    let mut tensors = Vec::new();
    let mut off = 0;
    for (_, shape) in param_table(cfg) {
        let n: usize = shape.iter().product();
        tensors.push(&params[off..off + n]);
        off += n;
    }
    assert_eq!(off, params.len());
    let mut k = 0;
    let i0 = cfg.input_width();
    // x: (T, B, I) time-major
    let mut x = vec![0.0; t * b * i0];
    match (cfg.input, input) {
        (Input::Tokens, RefInput::Tokens(ids)) => {
            let emb = tensors[0];
            k = 1;
            for bb in 0..b {
                for tt in 0..t {
                    let id = ids[bb * t + tt] as usize;
                    for e in 0..i0 {
                        x[(tt * b + bb) * i0 + e] = emb[id * i0 + e];
                    }
                }
            }
            if let Some(p) = &cfg.positions {
                // line = line ends read since the last reset (BEGIN, in a
                // model trained with titles); column = characters read since
                // the last line end or reset, both capped at the last row; form = 1 +
                // the index of the last form tag read (0 before any)
                let (lines, cols) = (tensors[1], tensors[2]);
                let forms = (!p.forms.is_empty()).then(|| tensors[3]);
                k = if forms.is_some() { 4 } else { 3 };
                for bb in 0..b {
                    let (mut line, mut col, mut form) = (0usize, 0usize, 0usize);
                    for tt in 0..t {
                        let id = ids[bb * t + tt];
                        if p.resets.contains(&id) {
                            line = 0;
                            col = 0;
                        } else if p.line_ends.contains(&id) {
                            line += 1;
                            col = 0;
                        } else if let Some(f) = p.forms.iter().position(|&f| f == id) {
                            form = f + 1;
                        } else if !p.silent.contains(&id) {
                            col += 1;
                        }
                        let (l, c) = (line.min(p.size - 1), col.min(p.size - 1));
                        for e in 0..i0 {
                            let mut v = lines[l * i0 + e] + cols[c * i0 + e];
                            if let Some(fw) = forms {
                                v += fw[form * i0 + e];
                            }
                            x[(tt * b + bb) * i0 + e] += v;
                        }
                    }
                }
                if p.title {
                    // the title vector: at a reset after characters (not line
                    // ends, tags or silent tokens), u = W_t · their mean
                    // embedding row is added to that step's input and every later one
                    let w_t = tensors[k];
                    k += 1;
                    for bb in 0..b {
                        let (mut since, mut u, mut titled) = (Vec::new(), vec![0.0; i0], false);
                        for tt in 0..t {
                            let id = ids[bb * t + tt];
                            if p.resets.contains(&id) {
                                // the first title only: later resets keep it
                                if !since.is_empty() && !titled {
                                    titled = true;
                                    let n = since.len() as f64;
                                    let mean: Vec<f64> = (0..i0)
                                        .map(|e| {
                                            since.iter().map(|&c| emb[c * i0 + e]).sum::<f64>() / n
                                        })
                                        .collect();
                                    u = (0..i0).map(|o| row_dot(w_t, o, &mean)).collect();
                                }
                                since.clear();
                            } else if !p.line_ends.contains(&id)
                                && !p.forms.contains(&id)
                                && !p.silent.contains(&id)
                            {
                                since.push(id as usize);
                            }
                            for e in 0..i0 {
                                x[(tt * b + bb) * i0 + e] += u[e];
                            }
                        }
                    }
                }
            }
        }
        (Input::Dense { dim }, RefInput::Dense(d)) => {
            for bb in 0..b {
                for tt in 0..t {
                    for e in 0..dim {
                        x[(tt * b + bb) * dim + e] = d[(bb * t + tt) * dim + e];
                    }
                }
            }
        }
        _ => panic!("input kind does not match the config"),
    }
    apply_mask(&mut x, drop.input);
    let mut width = i0;
    for l in 0..cfg.layers {
        if l > 0 {
            apply_mask(&mut x, drop.between.get(l - 1).copied().unwrap_or(&[]));
        }
        let w = RefWeights {
            w_ih: tensors[k],
            w_hh: tensors[k + 1],
            b_ih: tensors[k + 2],
            b_hh: tensors[k + 3],
        };
        k += 4;
        x = cell_ref(cfg.cell, &x, &w, t, b, width, cfg.hidden).0;
        width = cfg.hidden;
    }
    apply_mask(&mut x, drop.output);
    let (pw, pb) = (tensors[k], tensors[k + 1]);
    let (h, v) = (cfg.hidden, cfg.vocab);
    let nll = |hv: &[f64], target: usize| {
        // tied: `pw` is the bottleneck (E, H) and the embedding projects z = W_b·h
        let logits: Vec<f64> = if cfg.tied {
            let z: Vec<f64> = (0..cfg.embed).map(|e| row_dot(pw, e, hv)).collect();
            (0..v).map(|o| row_dot(tensors[0], o, &z) + pb[o]).collect()
        } else {
            (0..v).map(|o| row_dot(pw, o, hv) + pb[o]).collect()
        };
        let lse = |l: &[f64]| {
            let max = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            l.iter().map(|x| (x - max).exp()).sum::<f64>().ln() + max
        };
        let s = cfg.shortlist;
        if s == 0 {
            return lse(&logits) - logits[target];
        }
        // two levels: the shortlist and the rare class, then the rare ids
        let (rw, rb) = (tensors[k + 2], tensors[k + 3][0]);
        let read = if cfg.tied {
            (0..cfg.embed).map(|e| row_dot(pw, e, hv)).collect()
        } else {
            hv.to_vec()
        };
        let rare = row_dot(rw, 0, &read) + rb;
        let mut first: Vec<f64> = logits[..s].to_vec();
        first.push(rare);
        if target < s {
            lse(&first) - logits[target]
        } else {
            lse(&first) - rare + lse(&logits[s..]) - logits[target]
        }
    };
    match cfg.head {
        Head::EveryStep => {
            let (mut sum, mut count) = (0.0, 0.0);
            for bb in 0..b {
                for tt in 0..t {
                    let m = mask[bb * t + tt] as f64;
                    if m != 0.0 {
                        sum += m * nll(
                            &x[(tt * b + bb) * h..(tt * b + bb + 1) * h],
                            targets[bb * t + tt] as usize,
                        );
                        count += m;
                    }
                }
            }
            sum / count
        }
        Head::LastStep => {
            let last = t - 1;
            (0..b)
                .map(|bb| {
                    nll(
                        &x[(last * b + bb) * h..(last * b + bb + 1) * h],
                        targets[bb] as usize,
                    )
                })
                .sum::<f64>()
                / b as f64
        }
    }
}
