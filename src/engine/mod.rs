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
pub mod fastmath;
pub mod gru;
pub mod linear;
pub mod lstm;
pub mod matmul;
pub mod rnn;
pub mod softmax_ce;

use half::f16;

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

/// A recurrent layer's input, as its forward and backward take it.
#[derive(Clone, Copy)]
pub enum LayerInput<'a> {
    /// `x: (T, B, I)`: the layer projects it itself, and takes dW_ih (and dx) from it backward.
    Rows(&'a [f32]),
    /// The gates already hold `x·W_ihᵀ` for every row, from
    /// [`embedding::lookup_projection_forward`]: the layer adds its bias, and
    /// backward leaves dW_ih to the caller, who finds the input side's
    /// pre-activation gradients in the gates buffer.
    Projected,
}

impl LayerInput<'_> {
    fn check(&self, len: usize, what: &str) {
        if let LayerInput::Rows(x) = self {
            assert_eq!(x.len(), len, "{what}: x is not (T, B, I)");
        }
    }
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
#[inline(always)]
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

/// An element type the matrix-vector kernels read weights in: `f32`, or
/// `f16` for a model whose weights are exact in half precision (a checkpoint
/// saved with `--half`), where reading half the bytes halves a sampling step.
pub trait Weight: Copy + Send + Sync {
    fn to_f32(self) -> f32;
    /// Eight consecutive weights from `p`, widened to f32.
    ///
    /// # Safety
    /// `p..p+8` must be readable, and the CPU must have AVX2 and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
}

impl Weight for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> std::arch::x86_64::__m256 {
        // SAFETY: the caller guarantees eight readable floats and AVX
        unsafe { std::arch::x86_64::_mm256_loadu_ps(p) }
    }
}

impl Weight for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees eight readable halves (16 bytes) and F16C
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) }
    }
}

/// [`dot`] with the weights in any [`Weight`] type, widened as they are read.
#[inline(always)]
fn dot_weights<T: Weight>(w: &[T], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (cw, cx) = (w.chunks_exact(8), x.chunks_exact(8));
    let (rw, rx) = (cw.remainder(), cx.remainder());
    for (a, b) in cw.zip(cx) {
        for k in 0..8 {
            acc[k] += a[k].to_f32() * b[k];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (a, b) in rw.iter().zip(rx) {
        s += a.to_f32() * b;
    }
    s
}

/// `out[j] (+)= dot(w[j, :], x)` for `w: (N, K)` row-major: the batch-1 path of
/// sampling, where a GEMM's packing costs more than the product itself. Large
/// products (the output projection) are split across threads: at batch 1 the
/// weights stream from L3, and two cores stream twice as fast.
pub fn matvec<T: Weight>(out: &mut [f32], w: &[T], x: &[f32], accumulate: bool) {
    let k = x.len();
    assert_eq!(w.len(), out.len() * k, "matvec: w is not (N, K)");
    let n = out.len();
    if n >= 1024 && n * k >= 1 << 18 && matmul::splits() > 1 {
        let half = n / 2;
        let (o0, o1) = out.split_at_mut(half);
        let (w0, w1) = w.split_at(half * k);
        rayon::join(
            || matvec_one(o0, w0, x, accumulate),
            || matvec_one(o1, w1, x, accumulate),
        );
    } else {
        matvec_one(out, w, x, accumulate);
    }
}

/// A weight matrix `w: (N, K)` as a sampling step can read it: row-major
/// always; transposed, `(K, N)`, for the GEMM path at several rows; in half
/// precision for the matrix-vector path at a few rows, given only where every
/// weight is exact in f16, so that it changes nothing but the speed.
#[derive(Clone, Copy)]
pub struct StepMatrix<'a> {
    pub w: &'a [f32],
    pub wt: Option<&'a [f32]>,
    pub half: Option<&'a [f16]>,
}

/// One recurrent layer's weights for a sampling step (see [`StepMatrix`]).
#[derive(Clone, Copy)]
pub struct StepCell<'a> {
    pub w_ih: StepMatrix<'a>,
    pub w_hh: StepMatrix<'a>,
    pub b_ih: &'a [f32],
    pub b_hh: &'a [f32],
}

/// `out (B, N) += x (B, K) · wᵀ` for `w: (N, K)`: the per-step products of
/// sampling. Below [`STEP_GEMM_MIN_ROWS`] rows, per-row [`matvec`]s (a GEMM's
/// packing would cost more than the product), over the half-precision copy
/// when there is one. From there on one GEMM reads the weights once for all
/// rows; given `wt = wᵀ: (K, N)` as well, it reads them in the layout its
/// kernel wants and skips repacking all of `w` on every call, which otherwise
/// costs about a third of the step.
pub fn rows_matvec_add(out: &mut [f32], x: &[f32], m: StepMatrix, b: usize) {
    assert!(b > 0, "rows_matvec_add: no rows");
    let (n, k) = (out.len() / b, x.len() / b);
    assert_eq!(out.len(), b * n, "rows_matvec_add: out is not (B, N)");
    assert_eq!(x.len(), b * k, "rows_matvec_add: x is not (B, K)");
    if b >= STEP_GEMM_MIN_ROWS {
        match m.wt {
            Some(wt) => matmul::matmul_a_b(out, x, wt, b, n, k, true),
            None => matmul::matmul_a_bt(out, x, m.w, b, n, k, true),
        }
        return;
    }
    match m.half {
        Some(wh) => rows_matvec(out, wh, x, b),
        None => rows_matvec(out, m.w, x, b),
    }
}

/// Rows from which a sampling step's products run as one GEMM. Below it,
/// [`rows_matvec`] reads each weight once for all rows and packs nothing;
/// at 4 rows (one poem's default drafts) gemm spent 88% of a poem's time in
/// its 4×4 microkernel (`perf record` of `cargo run --release --example
/// poem_latency`); with this kernel and the other decode changes, `shiren
/// bench`'s row for one poem with 4 drafts went from 29.5 to 19.7 ms.
pub const STEP_GEMM_MIN_ROWS: usize = 16;

/// `out (B, N) += x (B, K) · wᵀ` for `w: (N, K)` row-major and a few rows B:
/// the weights are read once for all rows (each load of two weight rows
/// feeds up to four rows of `x`), where per-row [`matvec`]s would read them
/// B times and a GEMM would pack them first. Large products are split
/// across threads by weight rows. Every output is summed in the order
/// [`matvec`] sums it, so a row comes out the same whatever B is.
pub fn rows_matvec<T: Weight>(out: &mut [f32], w: &[T], x: &[f32], b: usize) {
    assert!(b > 0, "rows_matvec: no rows");
    let (n, k) = (out.len() / b, x.len() / b);
    assert_eq!(out.len(), b * n, "rows_matvec: out is not (B, N)");
    assert_eq!(x.len(), b * k, "rows_matvec: x is not (B, K)");
    assert_eq!(w.len(), n * k, "rows_matvec: w is not (N, K)");
    if b == 1 {
        return matvec(out, w, x, true);
    }
    #[cfg(target_arch = "x86_64")]
    if fastmath::has_avx2() {
        let o = OutCols(out.as_mut_ptr());
        let run = |cols: std::ops::Range<usize>| {
            let o = &o;
            // SAFETY: avx2, fma and f16c are present (checked); `out` is (B, N),
            // `w` (N, K), `x` (B, K) (asserted), and each call writes only its
            // own columns of `out`, which outlives both calls.
            unsafe { rows_matvec_avx2(o.0, n, cols, w, x, b, k) }
        };
        if n >= 1024 && n * k >= 1 << 18 && matmul::splits() > 1 {
            let half = n / 2;
            rayon::join(|| run(0..half), || run(half..n));
        } else {
            run(0..n);
        }
        return;
    }
    for (o, xr) in out.chunks_exact_mut(n).zip(x.chunks_exact(k)) {
        matvec(o, w, xr, true);
    }
}

/// `out`'s pointer, shared by the two halves of a split [`rows_matvec`],
/// which write disjoint columns.
struct OutCols(*mut f32);
// SAFETY: the halves write disjoint elements, and `rayon::join` ends both
// before `out`'s borrow does.
unsafe impl Sync for OutCols {}

/// [`rows_matvec`]'s kernel over the output columns `cols`: rows of `x` in
/// tiles of up to four.
///
/// # Safety
/// AVX2, FMA and F16C must be present; `out` must point to (B, N) floats,
/// `w` hold (N, K) and `x` (B, K), and `cols` lie in 0..N.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_matvec_avx2<T: Weight>(
    out: *mut f32,
    n: usize,
    cols: std::ops::Range<usize>,
    w: &[T],
    x: &[f32],
    b: usize,
    k: usize,
) {
    let mut r = 0;
    while r < b {
        let rows = (b - r).min(4);
        let (o, xr) = (out.add(r * n), x.as_ptr().add(r * k));
        match rows {
            4 => rows_tile::<T, 4>(o, n, cols.clone(), w.as_ptr(), xr, k),
            3 => rows_tile::<T, 3>(o, n, cols.clone(), w.as_ptr(), xr, k),
            2 => rows_tile::<T, 2>(o, n, cols.clone(), w.as_ptr(), xr, k),
            _ => rows_tile::<T, 1>(o, n, cols.clone(), w.as_ptr(), xr, k),
        }
        r += rows;
    }
}

/// `R` rows of `x` against the weight rows `cols`, two weight rows at a
/// time: 2R accumulators, each summed as [`matvec_avx2`] sums one.
///
/// # Safety
/// As [`rows_matvec_avx2`], for `R` rows from `out` and `x`.
// `for r in 0..R` indexes both accumulator rows and `x` in lockstep; R is a
// constant, so the loop unrolls and the accumulators stay in registers.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn rows_tile<T: Weight, const R: usize>(
    out: *mut f32,
    n: usize,
    cols: std::ops::Range<usize>,
    w: *const T,
    x: *const f32,
    k: usize,
) {
    use std::arch::x86_64::*;
    let k8 = k / 8 * 8;
    let mut j = cols.start;
    while j < cols.end {
        let two = (cols.end - j).min(2);
        let wp = [w.add(j * k), w.add((j + two - 1) * k)];
        let mut acc = [[_mm256_setzero_ps(); R]; 2];
        let mut q = 0;
        while q < k8 {
            let (w0, w1) = (T::load8(wp[0].add(q)), T::load8(wp[1].add(q)));
            for r in 0..R {
                let xv = _mm256_loadu_ps(x.add(r * k + q));
                acc[0][r] = _mm256_fmadd_ps(w0, xv, acc[0][r]);
                acc[1][r] = _mm256_fmadd_ps(w1, xv, acc[1][r]);
            }
            q += 8;
        }
        for (t, (acc, &wt)) in acc.iter().zip(&wp).enumerate().take(two) {
            for (r, &a) in acc.iter().enumerate() {
                let mut d = hsum8(a);
                for qq in k8..k {
                    d += (*wt.add(qq)).to_f32() * *x.add(r * k + qq);
                }
                *out.add(r * n + j + t) += d;
            }
        }
        j += two;
    }
}

/// The sum of a vector's eight lanes, in [`matvec_avx2`]'s order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn hsum8(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

fn matvec_one<T: Weight>(out: &mut [f32], w: &[T], x: &[f32], accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    if fastmath::has_avx2() {
        // SAFETY: avx2, fma and f16c are present (checked); lengths were checked by `matvec`
        unsafe { matvec_avx2(out, w, x, accumulate) };
        return;
    }
    let k = x.len();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k)) {
        let d = dot_weights(row, x);
        *o = if accumulate { *o + d } else { d };
    }
}

/// Four rows at a time so each load of `x` feeds four FMAs; the scalar loop in
/// [`matvec_one`] is the reference it is tested against. (Sixteen AVX-512
/// lanes measured no faster: at batch 1 the weights stream from L3.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn matvec_avx2<T: Weight>(out: &mut [f32], w: &[T], x: &[f32], accumulate: bool) {
    use std::arch::x86_64::*;
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
    let (n, k) = (out.len(), x.len());
    let k8 = k / 8 * 8;
    let xp = x.as_ptr();
    let mut r = 0;
    while r < n {
        let rows = (n - r).min(4);
        let mut acc = [_mm256_setzero_ps(); 4];
        let wp: [*const T; 4] = std::array::from_fn(|q| w.as_ptr().add((r + q.min(rows - 1)) * k));
        let mut j = 0;
        while j < k8 {
            let xv = _mm256_loadu_ps(xp.add(j));
            for q in 0..4 {
                acc[q] = _mm256_fmadd_ps(T::load8(wp[q].add(j)), xv, acc[q]);
            }
            j += 8;
        }
        for q in 0..rows {
            let mut d = hsum(acc[q]);
            for jj in k8..k {
                d += (*wp[q].add(jj)).to_f32() * *xp.add(jj);
            }
            let o = &mut out[r + q];
            *o = if accumulate { *o + d } else { d };
        }
        r += rows;
    }
}

/// Keeps the resident memory near the live heap: glibc raises its mmap threshold
/// after freeing a large block, so the GEMM packing buffers (a few MB, allocated
/// and freed per call on every thread) end up parked in per-thread arenas and
/// tripled peak RSS (measured 390 MB against a 113 MB heap at config S). A fixed
/// 4 MB threshold returns those blocks at once. A fixed threshold also fixes the
/// trim threshold at 128 KB, which handed the (≤ 1 MB, see `matmul::PACK_FLOATS`)
/// packing buffers back to the kernel after every GEMM, to be faulted in again
/// by the next: a 4 MB trim threshold keeps them.
/// Called once by `Model::new`; a no-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            extern "C" {
                fn mallopt(param: i32, value: i32) -> i32;
            }
            const M_TRIM_THRESHOLD: i32 = -1;
            const M_MMAP_THRESHOLD: i32 = -3;
            // SAFETY: mallopt only tunes glibc's allocator and is safe to call at any time
            unsafe {
                mallopt(M_MMAP_THRESHOLD, 4 << 20);
                mallopt(M_TRIM_THRESHOLD, 4 << 20);
            }
        });
    }
}

/// A mutable slice shared by workers that each write a disjoint set of
/// ranges of it, which the borrow checker cannot see when the ranges
/// interleave (rows b0..b1 of every time step).
#[derive(Clone, Copy)]
pub(crate) struct SharedMut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: workers only touch disjoint ranges (each caller states which), so sharing the pointer is sound.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    pub(crate) fn new(s: &mut [f32]) -> SharedMut {
        SharedMut {
            ptr: s.as_mut_ptr(),
            len: s.len(),
        }
    }

    /// # Safety
    /// No other live reference may overlap `r` while the returned slice is used.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn range(&self, r: std::ops::Range<usize>) -> &mut [f32] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "SharedMut::range {r:?} outside 0..{}",
            self.len
        );
        // SAFETY: in bounds (checked), disjointness is the caller's promise
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }
}

/// Runs `f(b0, b1)` over a split of the batch rows `0..b` into one contiguous part
/// per thread, in parallel, each part with single-threaded GEMMs. Rows of a
/// batch are independent through the recurrence, so the parts never synchronise.
pub(crate) fn for_row_parts(b: usize, f: impl Fn(usize, usize) + Sync) {
    let parts = matmul::threads().min(b / 8).max(1);
    if parts == 1 {
        f(0, b);
        return;
    }
    rayon::scope(|s| {
        for p in 0..parts {
            let (b0, b1) = (b * p / parts, b * (p + 1) / parts);
            let f = &f;
            s.spawn(move |_| matmul::serial(|| f(b0, b1)));
        }
    });
}

#[cfg(test)]
mod matvec_tests {
    use super::*;

    #[test]
    fn rows_matvec_add_matches_plain_dots_below_and_above_the_gemm_threshold() {
        let (n, k) = (13, 9);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 29 % 97) as f32 - 48.0) / 48.0)
            .collect();
        let wt: Vec<f32> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
        for (b, wt) in [1, STEP_GEMM_MIN_ROWS - 1, STEP_GEMM_MIN_ROWS, 7]
            .into_iter()
            .flat_map(|b| [(b, None), (b, Some(&wt[..]))])
        {
            let x: Vec<f32> = (0..b * k)
                .map(|i| ((i * 7 % 19) as f32 - 9.0) / 9.0)
                .collect();
            let mut out: Vec<f32> = (0..b * n).map(|i| i as f32 * 0.01).collect();
            let m = StepMatrix {
                w: &w,
                wt,
                half: None,
            };
            rows_matvec_add(&mut out, &x, m, b);
            for r in 0..b {
                for j in 0..n {
                    let want = (r * n + j) as f64 * 0.01
                        + (0..k)
                            .map(|q| w[j * k + q] as f64 * x[r * k + q] as f64)
                            .sum::<f64>();
                    let got = out[r * n + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4,
                        "b {b} row {r} col {j}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn rows_matvec_matches_plain_dots_and_each_rows_own_matvec() {
        // row counts around the 4-row tiles, weight rows around the pairs and
        // the threaded split, widths around 8
        for &(n, k) in &[(1, 1), (3, 7), (5, 8), (9, 13), (2050, 128), (4, 129)] {
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w: Vec<f32> = wh.iter().map(|v| v.to_f32()).collect();
            for b in 1..=9 {
                let x: Vec<f32> = (0..b * k)
                    .map(|i| ((i * 11 % 13) as f32 - 6.0) / 6.0)
                    .collect();
                for half in [false, true] {
                    let mut out: Vec<f32> = (0..b * n).map(|i| (i % 7) as f32 * 0.25).collect();
                    let mut alone = out.clone();
                    if half {
                        rows_matvec(&mut out, &wh, &x, b);
                    } else {
                        rows_matvec(&mut out, &w, &x, b);
                    }
                    for (r, (o, xr)) in alone.chunks_exact_mut(n).zip(x.chunks_exact(k)).enumerate()
                    {
                        matvec(o, &w, xr, true);
                        for j in 0..n {
                            let want = ((r * n + j) % 7) as f64 * 0.25
                                + (0..k)
                                    .map(|q| w[j * k + q] as f64 * xr[q] as f64)
                                    .sum::<f64>();
                            let got = out[r * n + j];
                            assert!(
                                (got as f64 - want).abs() < 1e-4,
                                "n {n} k {k} b {b} half {half} row {r} col {j}: {got} vs {want}"
                            );
                            assert_eq!(
                                got, o[j],
                                "n {n} k {k} b {b} row {r} col {j}: not matvec's sum"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn matvec_matches_plain_dots() {
        // row counts around the 4-row blocks and the threaded split, widths around 8
        for &(n, k) in &[(1, 1), (3, 7), (5, 8), (9, 13), (2050, 128), (4, 129)] {
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let x: Vec<f32> = (0..k).map(|i| ((i * 11 % 13) as f32 - 6.0) / 6.0).collect();
            // the same weights in f16 (exact there: multiples of 1/50 rounded once)
            let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w: Vec<f32> = wh.iter().map(|v| v.to_f32()).collect();
            for (acc, half) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut out = vec![0.5f32; n];
                if half {
                    matvec(&mut out, &wh, &x, acc);
                } else {
                    matvec(&mut out, &w, &x, acc);
                }
                for r in 0..n {
                    let want: f64 = (0..k)
                        .map(|j| w[r * k + j] as f64 * x[j] as f64)
                        .sum::<f64>()
                        + if acc { 0.5 } else { 0.0 };
                    assert!(
                        (out[r] as f64 - want).abs() < 1e-4,
                        "n {n} k {k} half {half} row {r}: {} vs {want}",
                        out[r]
                    );
                }
            }
        }
    }
}
