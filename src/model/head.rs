//! The output head: the projection from the top layer to V logits (tied to
//! the embedding through a bottleneck, or its own weight) and the softmax
//! cross-entropy over them, as one softmax or two levels (shortlist, then
//! rare ids). [`Model::head_forward`] computes the loss;
//! [`Model::head_forward_backward`] also its gradients, with the softmax's
//! backward fused into the forward per chunk of rows. The sampling step's
//! head is in `step.rs`.

use std::ops::Range;

use super::acts::{Acts, LayerActs};
use super::Model;
use crate::engine::linear::{linear_backward, linear_forward_panels, PANELS_MIN_WIDTH};
use crate::engine::matmul::{matmul_a_b, matmul_a_bt, matmul_at_b, Panels};
use crate::engine::softmax_ce::{softmax_ce_forward, softmax_ce_forward_backward};
use crate::engine::SharedMut;

/// The head's part of a backward pass: dL = `scale` · dloss, and dL/dh for
/// the head's rows goes into `acts.dh` from row `dh_first`.
#[derive(Clone, Copy)]
struct HeadBackward {
    dh_first: usize,
    scale: f32,
}

impl Model {
    /// The head's forward over `rows` rows of the top layer starting at row
    /// `first` of its h buffer (time-major), with `acts.targets`/`acts.mask`
    /// per row: the masked loss sum.
    pub(super) fn head_forward(&mut self, first: usize, rows: usize) -> f64 {
        let parts = head_parts(rows);
        self.head_rows_parallel(first, rows, parts, None)
    }

    /// [`Model::head_forward`] and its backward: adds `scale` · dloss/dparams
    /// into the head's grads and writes dL/dh for those rows into `acts.dh`
    /// from row `dh_first` (0 for masked rows). Returns the same loss sum.
    ///
    /// The softmax's forward and backward run fused per chunk of rows
    /// (`softmax_ce_forward_backward`): keeping every row's logits for a
    /// separate backward would cost (rows, V) floats. What is left after the
    /// parts finish is [`Model::head_backward`].
    pub(super) fn head_forward_backward(
        &mut self,
        first: usize,
        rows: usize,
        dh_first: usize,
        scale: f32,
    ) -> f64 {
        let parts = head_parts(rows);
        let back = HeadBackward { dh_first, scale };
        let loss = self.head_rows_parallel(first, rows, parts, Some(back));
        self.head_backward(first, rows, dh_first, parts);
        loss
    }

    /// The head's rows, split into one contiguous part per thread, each with
    /// its own scratch and, past the first, its own copy of the head's
    /// gradients (summed by [`Model::head_backward`]); masked rows (padding)
    /// are skipped by gathering the unmasked ones into chunks. A tied head
    /// first maps all the rows to the embedding's width (`z`). With `back`,
    /// each part also runs the softmax's backward into its gradients and dL/dh
    /// (dL/dz when tied). Returns the masked loss sum.
    fn head_rows_parallel(
        &mut self,
        first: usize,
        rows: usize,
        parts: usize,
        back: Option<HeadBackward>,
    ) -> f64 {
        let (h, v, s) = (self.cfg.hidden, self.cfg.vocab, self.cfg.shortlist);
        // width of the rows the projection reads
        let w = self.cfg.head_width();
        let top = self.cfg.layers - 1;
        let scale = back.map(|b| b.scale);
        let dh_first = back.map_or(0, |b| b.dh_first);
        let Acts {
            layers,
            out_dropped,
            top: top_drop,
            dh,
            head,
            rare,
            targets,
            mask,
            z,
            dz,
            proj_t,
            short,
            ..
        } = &mut self.acts;
        head.resize_with(parts, HeadScratch::default);
        rare.resize_with(parts, RareScratch::default);
        let pw = &self.params[self.layout.proj_w.clone()];
        let pb = &self.params[self.layout.proj_b.clone()];
        // whether pack_projection made panels (it decides the same way)
        let panels = w >= PANELS_MIN_WIDTH;
        let rare_row = (s > 0).then(|| {
            (
                &self.params[self.layout.rare_w.clone().unwrap()],
                &self.params[self.layout.rare_b.clone().unwrap()],
            )
        });
        let (split, pw_t) = pack_projection(short, proj_t, pw, pb, rare_row, s, w);
        let x_top = &head_input(layers, top_drop, *out_dropped, top)[first * h..(first + rows) * h];
        let (x_all, dh_sh, dh_first_w) = match &self.layout.bottleneck {
            Some(r) => {
                z.resize(rows * w, 0.0);
                dz.resize(rows * w, 0.0);
                let z = &mut z[..rows * w];
                matmul_a_bt(z, x_top, &self.params[r.clone()], rows, w, h, false);
                (&z[..], SharedMut::new(dz), 0)
            }
            None => (x_top, SharedMut::new(dh), dh_first),
        };
        let (gw0, gb0) = two_mut(
            &mut self.grads,
            self.layout.proj_w.clone(),
            self.layout.proj_b.clone(),
        );
        // Without a shortlist, part 0 adds into the model's grads and the
        // others into their own zeroed copies; with one, every part has its own
        // copy (its shortlist rows are packed apart from the weight's).
        let mut own = split.is_none().then_some((gw0, gb0));
        let copy_len = if split.is_some() {
            (v + 1) * (w + 1)
        } else {
            v * w + v
        };
        let (targets, mask) = (&targets[..], &mask[..]);
        let mut losses = vec![0.0f64; parts];
        rayon::scope(|sc| {
            for (p, ((hs, rs), loss)) in head
                .iter_mut()
                .zip(rare.iter_mut())
                .zip(losses.iter_mut())
                .enumerate()
            {
                let (r0, r1) = (rows * p / parts, rows * (p + 1) / parts);
                let own_grads = if p == 0 { own.take() } else { None };
                let work = move || {
                    let mut copy = std::mem::take(&mut hs.grads);
                    if scale.is_some() && own_grads.is_none() {
                        copy.clear();
                        copy.resize(copy_len, 0.0);
                    }
                    let run = || {
                        // SAFETY: part p only writes rows dh_first_w + r0 .. dh_first_w + r1
                        let dh_part = scale.map(|_| unsafe {
                            dh_sh.range((dh_first_w + r0) * w..(dh_first_w + r1) * w)
                        });
                        let (x, tg, mk) = (&x_all[r0 * w..r1 * w], &targets[r0..r1], &mask[r0..r1]);
                        match (split, own_grads) {
                            (Some(sh), _) => {
                                let short = Proj {
                                    w: &sh.w,
                                    panels: panels.then_some(&sh.t),
                                    b: &sh.b,
                                };
                                let rest = Proj {
                                    w: &pw[s * w..],
                                    panels: pw_t,
                                    b: &pb[s..],
                                };
                                split_rows(
                                    hs, rs, &mut copy, dh_part, x, tg, mk, short, rest, w, scale,
                                )
                            }
                            (None, Some(g)) => {
                                head_rows(hs, g, dh_part, x, tg, mk, pw, pw_t, pb, w, v, scale)
                            }
                            (None, None) => {
                                let at = copy.len().min(v * w);
                                let (gw, gb) = copy.split_at_mut(at);
                                head_rows(
                                    hs,
                                    (gw, gb),
                                    dh_part,
                                    x,
                                    tg,
                                    mk,
                                    pw,
                                    pw_t,
                                    pb,
                                    w,
                                    v,
                                    scale,
                                )
                            }
                        }
                    };
                    // one part alone may still split its GEMMs across threads
                    *loss = if parts > 1 {
                        crate::engine::matmul::serial(run)
                    } else {
                        run()
                    };
                    hs.grads = copy;
                };
                if parts == 1 {
                    work();
                } else {
                    sc.spawn(move |_| work());
                }
            }
        });
        losses.iter().sum()
    }

    /// The head's backward once its parts have run theirs: sums the parts'
    /// copies of the projection's gradient into `grads` and, tied, takes dz
    /// back through the bottleneck into dL/dh of the top layer (from row
    /// `dh_first`) and the bottleneck's gradient.
    fn head_backward(&mut self, first: usize, rows: usize, dh_first: usize, parts: usize) {
        let (h, v, s) = (self.cfg.hidden, self.cfg.vocab, self.cfg.shortlist);
        let w = self.cfg.head_width();
        let top = self.cfg.layers - 1;
        let Acts {
            layers,
            out_dropped,
            top: top_drop,
            dh,
            head,
            dz,
            ..
        } = &mut self.acts;
        let (gw, gb) = two_mut(
            &mut self.grads,
            self.layout.proj_w.clone(),
            self.layout.proj_b.clone(),
        );
        if s > 0 {
            let (mut grw, mut grb) = (vec![0.0f32; w], 0.0f32);
            let (gw_s, gw_t) = gw.split_at_mut(s * w);
            let (gb_s, gb_t) = gb.split_at_mut(s);
            for hs in &head[..parts] {
                // [shortlist rows + rare row | their biases | rare ids' rows | their biases]
                let (sw, rest) = hs.grads.split_at((s + 1) * w);
                let (sb, rest) = rest.split_at(s + 1);
                let (tw, tb) = rest.split_at((v - s) * w);
                add_into(gw_s, &sw[..s * w]);
                add_into(&mut grw, &sw[s * w..]);
                add_into(gb_s, &sb[..s]);
                grb += sb[s];
                add_into(gw_t, tw);
                add_into(gb_t, tb);
            }
            add_into(&mut self.grads[self.layout.rare_w.clone().unwrap()], &grw);
            self.grads[self.layout.rare_b.clone().unwrap()][0] += grb;
        } else {
            for hs in &head[1..parts] {
                let (ew, eb) = hs.grads.split_at(v * w);
                add_into(gw, ew);
                add_into(gb, eb);
            }
        }
        // tied: dz → dh of the top layer, and the bottleneck's gradient
        if let Some(r) = &self.layout.bottleneck {
            let x_top =
                &head_input(layers, top_drop, *out_dropped, top)[first * h..(first + rows) * h];
            let (dz, wb) = (&dz[..rows * w], &self.params[r.clone()]);
            matmul_a_b(
                &mut dh[dh_first * h..(dh_first + rows) * h],
                dz,
                wb,
                rows,
                h,
                w,
                false,
            );
            matmul_at_b(&mut self.grads[r.clone()], dz, x_top, w, h, rows, true);
        }
    }
}

/// Threads the head's `rows` are split over: one part per 64 rows at most.
fn head_parts(rows: usize) -> usize {
    crate::engine::matmul::threads().min(rows / 64).max(1)
}

/// What the head reads: the top layer's output, or its dropped copy while
/// training with `dropout_out`; both laid out as an h buffer, (T+1, B, H).
fn head_input<'a>(
    layers: &'a [LayerActs],
    dropped: &'a [f32],
    out_dropped: bool,
    top: usize,
) -> &'a [f32] {
    if out_dropped {
        dropped
    } else {
        &layers[top].h[..]
    }
}

/// Readies the projection (`pw`, `pb`: V rows of width `w`) for the head's
/// GEMMs. With a shortlist of `s` (`rare` holds the rare class's row and
/// bias), `short` gets the first level packed (the shortlist's rows, then the
/// rare class's) and, for wide rows, `proj_t` the rare ids' panels only;
/// without one, `proj_t` gets the whole weight's panels for wide rows.
/// Returns the packed first level and the panels (None for narrow rows).
fn pack_projection<'a>(
    short: &'a mut ShortHead,
    proj_t: &'a mut Panels,
    pw: &[f32],
    pb: &[f32],
    rare: Option<(&[f32], &[f32])>,
    s: usize,
    w: usize,
) -> (Option<&'a ShortHead>, Option<&'a Panels>) {
    let v = pb.len();
    // narrow rows project faster through gemm's own packing of the weight
    let panels = w >= PANELS_MIN_WIDTH;
    let split = rare.map(|(rw, rb)| {
        short.w.clear();
        short.w.extend_from_slice(&pw[..s * w]);
        short.w.extend_from_slice(rw);
        short.b.clear();
        short.b.extend_from_slice(&pb[..s]);
        short.b.extend_from_slice(rb);
        if panels {
            short.t.set_transposed(&short.w, s + 1, w);
            proj_t.set_transposed(&pw[s * w..], v - s, w);
        }
        &*short
    });
    let pw_t = match (panels, split.is_some()) {
        (false, _) => None,
        (true, true) => Some(&*proj_t),
        (true, false) => {
            proj_t.set_transposed(pw, v, w);
            Some(&*proj_t)
        }
    };
    (split, pw_t)
}

/// One thread's scratch for the head: gathered rows, their logits, and (past the first
/// thread) its own gradient of `proj.weight` and `proj.bias`, laid out as in the params.
#[derive(Default, Clone)]
pub(super) struct HeadScratch {
    x: Vec<f32>,
    dh: Vec<f32>,
    logits: Vec<f32>,
    targets: Vec<u32>,
    rows: Vec<usize>,
    grads: Vec<f32>,
}

/// The head over a run of rows on one thread: gathers the unmasked rows in chunks of
/// [`HEAD_ROWS`], projects, applies the softmax loss and, when `scale` is given, its
/// backward into `grads` and `dh` (rows of masked positions get 0). Returns the loss sum.
#[allow(clippy::too_many_arguments)]
fn head_rows(
    hs: &mut HeadScratch,
    grads: (&mut [f32], &mut [f32]),
    mut dh: Option<&mut [f32]>,
    x: &[f32],
    targets: &[u32],
    mask: &[f32],
    pw: &[f32],
    pw_t: Option<&Panels>,
    pb: &[f32],
    h: usize,
    v: usize,
    scale: Option<f32>,
) -> f64 {
    let (gw, gb) = grads;
    if let Some(d) = dh.as_deref_mut() {
        d.fill(0.0);
    }
    hs.rows.clear();
    hs.rows
        .extend((0..targets.len()).filter(|&r| mask[r] != 0.0));
    let cap = HEAD_ROWS.min(hs.rows.len());
    hs.x.resize(cap * h, 0.0);
    hs.dh.resize(cap * h, 0.0);
    hs.logits.resize(cap * v, 0.0);
    let mut loss = 0.0;
    let ones = [1.0f32; HEAD_ROWS];
    for chunk in hs.rows.chunks(HEAD_ROWS) {
        let n = chunk.len();
        hs.targets.clear();
        for (k, &r) in chunk.iter().enumerate() {
            hs.x[k * h..(k + 1) * h].copy_from_slice(&x[r * h..(r + 1) * h]);
            hs.targets.push(targets[r]);
        }
        let (xg, logits) = (&hs.x[..n * h], &mut hs.logits[..n * v]);
        // the logits without the bias: both softmax kernels add it
        match pw_t {
            Some(pt) => linear_forward_panels(logits, xg, pt, n),
            None => matmul_a_bt(logits, xg, pw, n, v, h, false),
        }
        // masks may weight tokens; the gathered rows keep their weights
        let mk: Vec<f32> = chunk.iter().map(|&r| mask[r]).collect();
        let mk = if mk.iter().all(|&m| m == 1.0) {
            &ones[..n]
        } else {
            &mk[..]
        };
        let (Some(s), Some(d)) = (scale, dh.as_deref_mut()) else {
            loss += softmax_ce_forward(logits, pb, &hs.targets, mk, v);
            continue;
        };
        // logits → their gradient, and the bias's gradient summed on the way
        loss += softmax_ce_forward_backward(logits, pb, &hs.targets, mk, v, s, gb);
        let dhg = &mut hs.dh[..n * h];
        linear_backward(dhg, gw, logits, xg, pw, n, h, v, false);
        for (k, &r) in chunk.iter().enumerate() {
            d[r * h..(r + 1) * h].copy_from_slice(&dhg[k * h..(k + 1) * h]);
        }
    }
    loss
}

/// One thread's scratch for a two-level head (see [`ModelConfig::shortlist`](super::ModelConfig::shortlist)):
/// each row's target among the shortlist and the rare class, and the rare
/// rows' targets among the rare ids, with a mask that keeps only those rows.
#[derive(Default, Clone)]
pub(super) struct RareScratch {
    short_targets: Vec<u32>,
    rare_targets: Vec<u32>,
    rare_mask: Vec<f32>,
    dh: Vec<f32>,
}

/// The first level of a two-level head: the shortlist's rows of the
/// projection followed by `rare.weight`, and their biases, so that one
/// softmax of S + 1 columns covers it; `t` is their panels for wide rows.
#[derive(Default, Clone)]
pub(super) struct ShortHead {
    w: Vec<f32>,
    b: Vec<f32>,
    t: Panels,
}

/// A projection as [`head_rows`] reads it.
#[derive(Clone, Copy)]
struct Proj<'a> {
    /// (rows, width)
    w: &'a [f32],
    /// `w`'s panels, when the rows are wide enough for them
    panels: Option<&'a Panels>,
    /// (rows)
    b: &'a [f32],
}

/// [`head_rows`] for a two-level head, as two runs of it: every row through
/// the shortlist and the rare class (`short`: S + 1 outputs), then the rows
/// whose target is rare through the rare ids (`rare`: V − S outputs), whose
/// −log p(y | rare) adds to the first run's −log p(rare). `grads` (when
/// `scale` is given) is laid out [short weight | short bias | rare weight |
/// rare bias].
#[allow(clippy::too_many_arguments)]
fn split_rows(
    hs: &mut HeadScratch,
    rs: &mut RareScratch,
    grads: &mut [f32],
    mut dh: Option<&mut [f32]>,
    x: &[f32],
    targets: &[u32],
    mask: &[f32],
    short: Proj,
    rare: Proj,
    w: usize,
    scale: Option<f32>,
) -> f64 {
    let s1 = short.b.len();
    let (s, n_rare) = (s1 - 1, rare.b.len());
    rs.short_targets.clear();
    rs.rare_targets.clear();
    rs.rare_mask.clear();
    for (&y, &m) in targets.iter().zip(mask) {
        let y = y as usize;
        let is_rare = y >= s;
        rs.short_targets.push(if is_rare { s } else { y } as u32);
        rs.rare_targets.push(if is_rare { y - s } else { 0 } as u32);
        rs.rare_mask.push(if is_rare { m } else { 0.0 });
    }
    let (sg, rg): (&mut [f32], &mut [f32]) = if scale.is_some() {
        grads.split_at_mut(s1 * (w + 1))
    } else {
        (&mut [], &mut [])
    };
    let (sw, sb) = sg.split_at_mut(sg.len().min(s1 * w));
    let (rw, rb) = rg.split_at_mut(rg.len().min(n_rare * w));
    let (short_targets, rare_targets) = (&rs.short_targets[..], &rs.rare_targets[..]);
    let mut loss = head_rows(
        hs,
        (sw, sb),
        dh.as_deref_mut(),
        x,
        short_targets,
        mask,
        short.w,
        short.panels,
        short.b,
        w,
        s1,
        scale,
    );
    let rare_dh = dh.is_some().then(|| {
        rs.dh.resize(x.len(), 0.0);
        &mut rs.dh[..]
    });
    loss += head_rows(
        hs,
        (rw, rb),
        rare_dh,
        x,
        rare_targets,
        &rs.rare_mask,
        rare.w,
        rare.panels,
        rare.b,
        w,
        n_rare,
        scale,
    );
    if let Some(d) = dh {
        add_into(d, &rs.dh);
    }
    loss
}

/// `dst += src`, element by element.
fn add_into(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// Two disjoint ranges of `v`, `a` before `b`, as two mutable slices.
fn two_mut(v: &mut [f32], a: Range<usize>, b: Range<usize>) -> (&mut [f32], &mut [f32]) {
    assert!(
        a.end <= b.start,
        "two_mut: ranges overlap or are out of order"
    );
    let (lo, hi) = v.split_at_mut(b.start);
    (&mut lo[a], &mut hi[..b.len()])
}

/// Rows of the head processed at once: bounds the logits buffer at ROWS×V
/// floats while keeping each GEMM large enough to run at full speed.
const HEAD_ROWS: usize = 512;
