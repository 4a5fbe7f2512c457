//! The only calls to `gemm::gemm` in shiren: three row-major products named by
//! which operand is transposed, and the engine-wide thread setting.
//!
//! gemm computes `dst := alpha·dst + beta·lhs·rhs` (alpha scales the old
//! `dst`, the reverse of BLAS) with strides given as (column, row). These
//! wrappers hide that behind `accumulate: bool` and plain row-major slices, and
//! check every slice length against m, n and k before the `unsafe` call.
//! Not here: element-wise work (the cell kernels do it in their own loops).

use std::sync::atomic::{AtomicUsize, Ordering};

use gemm::Parallelism;

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads GEMMs (and the engine's rayon loops) may use; 0 = rayon's pool size
/// (all cores, or `--threads`).
pub fn set_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// The thread count in force (at least 1).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads().max(1),
        n => n,
    }
}

/// Threads a product on this thread may split over: 1 inside [`serial`].
pub fn splits() -> usize {
    if SERIAL.with(|s| s.get()) {
        1
    } else {
        threads()
    }
}

/// Below this many multiply-adds a product runs on one thread: splitting a
/// small GEMM costs more in synchronisation than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 20;

thread_local! {
    /// Set inside a worker that already owns one core's share of the work (see
    /// [`serial`]): its GEMMs must not split again.
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every GEMM it makes on this thread single-threaded.
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    let old = SERIAL.with(|s| s.replace(true));
    let r = f();
    SERIAL.with(|s| s.set(old));
    r
}

fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    let t = threads();
    if t > 1 && m * n * k >= PARALLEL_MIN_WORK && !SERIAL.with(|s| s.get()) {
        Parallelism::Rayon(t)
    } else {
        Parallelism::None
    }
}

/// One `gemm::gemm` call: row-major `out (M, N)` (+)= lhs (M, K) · rhs (K, N),
/// each operand given by (column, row) strides; `out`'s rows are `out_rs` apart
/// (N for a whole matrix, more for a block of columns of a wider one).
#[allow(clippy::too_many_arguments)]
fn call(
    m: usize,
    n: usize,
    k: usize,
    out: &mut [f32],
    out_rs: usize,
    a: &[f32],
    a_cs: isize,
    a_rs: isize,
    b: &[f32],
    b_cs: isize,
    b_rs: isize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        out_rs >= n && out.len() >= (m - 1) * out_rs + n,
        "matmul: out is not (M, N) with rows {out_rs} apart"
    );
    if k == 0 {
        if !accumulate {
            for row in out.chunks_mut(out_rs).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: `out` holds M rows of N, `out_rs` apart (checked above); the callers
    // checked that every (row, col) reached through the given strides lies inside `a` and `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(m, n, k),
        )
    }
}

/// Columns per panel of [`Panels`]: a multiple of every gemm microkernel's
/// row block (16 and 24 floats with AVX2, 64 with AVX-512), so gemm reads a
/// panel as it would its own packed copy.
const PANEL: usize = 64;

/// A right-hand operand `B (K, N)` laid out as gemm's microkernels read it:
/// N cut into panels of `PANEL` columns, each panel stored column by
/// column (K rows of one column, then the next).
///
/// Why: the recurrence multiplies the same W_hh by a new h_{t−1} at every
/// step, a (B, H)·(H, 4H) product with only 32 rows per core. Given a plain
/// row-major W, gemm copies all of W into its packed layout on every call —
/// 4 MB per step per core for H = 512, 12% of a config-L training step. A
/// fully transposed W avoids the copy but makes gemm stride 8 KB between
/// consecutive reads. Panels cost one copy per sequence instead of one per
/// step, and every read is sequential.
#[derive(Debug, Default, Clone)]
pub struct Panels {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl Panels {
    /// Panels of `b (K, N)`, for `out = a · b` (e.g. dh_{t−1} = dpre_t · W_hh).
    pub fn of(b: &[f32], k: usize, n: usize) -> Panels {
        assert_eq!(b.len(), k * n, "Panels::of: b is not (K, N)");
        Panels::build(k, n, |p, j| b[p * n + j])
    }

    /// Panels of `bᵀ` for `b (N, K)`, for `out = a · bᵀ` (e.g. pre_t = h_{t−1} · W_hhᵀ).
    pub fn of_transposed(b: &[f32], n: usize, k: usize) -> Panels {
        assert_eq!(b.len(), n * k, "Panels::of_transposed: b is not (N, K)");
        Panels::build(k, n, |p, j| b[j * k + p])
    }

    /// Rebuilds these panels as those of `bᵀ` ([`Panels::of_transposed`]) in the
    /// same buffer: a caller that rebuilds them at every training step (the
    /// weights change) reuses the allocation instead of taking fresh pages.
    pub fn set_transposed(&mut self, b: &[f32], n: usize, k: usize) {
        assert_eq!(b.len(), n * k, "Panels::set_transposed: b is not (N, K)");
        let mut data = std::mem::take(&mut self.data);
        data.clear();
        *self = Panels::fill(data, k, n, |p, j| b[j * k + p]);
    }

    fn build(k: usize, n: usize, at: impl Fn(usize, usize) -> f32) -> Panels {
        Panels::fill(Vec::with_capacity(k * n), k, n, at)
    }

    fn fill(mut data: Vec<f32>, k: usize, n: usize, at: impl Fn(usize, usize) -> f32) -> Panels {
        for j0 in (0..n).step_by(PANEL) {
            let width = PANEL.min(n - j0);
            for p in 0..k {
                data.extend((j0..j0 + width).map(|j| at(p, j)));
            }
        }
        Panels { data, k, n }
    }

    /// (K, N): the shape of the operand these panels hold.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }
}

/// `out (M, N) (+)= a (M, K) · B` with `B (K, N)` given as [`Panels`]: one
/// gemm call per panel, writing that panel's columns of `out`.
pub fn matmul_a_panels(out: &mut [f32], a: &[f32], b: &Panels, m: usize, accumulate: bool) {
    let Panels { data, k, n } = b;
    let (k, n) = (*k, *n);
    assert_eq!(out.len(), m * n, "matmul_a_panels: out is not (M, N)");
    assert_eq!(a.len(), m * k, "matmul_a_panels: a is not (M, K)");
    for j0 in (0..n).step_by(PANEL) {
        let width = PANEL.min(n - j0);
        let panel = &data[j0 * k..(j0 + width) * k];
        let o = &mut out[j0..];
        call(
            m,
            width,
            k,
            o,
            n,
            a,
            1,
            k as isize,
            panel,
            1,
            width as isize,
            accumulate,
        );
    }
}

/// `out (M, N) (+)= a (M, K) · b (K, N)`: e.g. dX = dY · W.
pub fn matmul_a_b(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert_eq!(out.len(), m * n, "matmul_a_b: out is not (M, N)");
    assert_eq!(a.len(), m * k, "matmul_a_b: a is not (M, K)");
    assert_eq!(b.len(), k * n, "matmul_a_b: b is not (K, N)");
    call(
        m, n, k, out, n, a, 1, k as isize, b, 1, n as isize, accumulate,
    );
}

/// `out (M, N) (+)= a (M, K) · bᵀ` with `b: (N, K)`: e.g. Y = X · Wᵀ for PyTorch-layout W.
pub fn matmul_a_bt(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert_eq!(out.len(), m * n, "matmul_a_bt: out is not (M, N)");
    assert_eq!(a.len(), m * k, "matmul_a_bt: a is not (M, K)");
    assert_eq!(b.len(), n * k, "matmul_a_bt: b is not (N, K)");
    call(
        m, n, k, out, n, a, 1, k as isize, b, k as isize, 1, accumulate,
    );
}

/// `out (M, N) (+)= aᵀ · b` with `a: (K, M)`, `b: (K, N)`: e.g. dW = dYᵀ · X over all T·B rows.
pub fn matmul_at_b(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    let threads = match parallelism(m, n, k) {
        Parallelism::Rayon(t) => t,
        Parallelism::None => 1,
    };
    at_b(out, a, b, m, n, k, accumulate, PACK_FLOATS, threads)
}

/// Most floats of `a` that gemm may pack in one call of [`matmul_at_b`]: 1 MB.
///
/// gemm copies `a` into a packed buffer it allocates on every call, up to 512
/// of its K rows by all M columns. For the head's weight gradient (M = V =
/// 6,000) that was 12 MB, above the allocator's mmap threshold
/// ([`super::tune_allocator`]), so the buffer came fresh from the kernel each
/// time and its page faults cost config S 7% of a training step. In blocks of
/// M the buffer is small enough for the allocator to reuse, and the peak RSS
/// fell as well (L 342 → 324 MB). The other two products pack less.
const PACK_FLOATS: usize = 1 << 18;

/// [`matmul_at_b`] in blocks of M, each `limit` floats over up to 512 rows
/// of K; a block reads columns m0.. of every row of `a`.
///
/// With `threads` > 1 the blocks are shared out, one contiguous run of them
/// (rows of `out`) per thread, each multiplied on that thread alone: for the
/// weight gradients (M = 4H = 2,048, K = T·B = 4,096) 5–20% faster than gemm
/// splitting every block across the threads itself.
#[allow(clippy::too_many_arguments)]
fn at_b(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    acc: bool,
    limit: usize,
    threads: usize,
) {
    assert_eq!(out.len(), m * n, "matmul_at_b: out is not (M, N)");
    assert_eq!(a.len(), k * m, "matmul_at_b: a is not (K, M)");
    assert_eq!(b.len(), k * n, "matmul_at_b: b is not (K, N)");
    let block = (limit / k.clamp(1, 512)).max(1);
    let blocks = m.div_ceil(block);
    let parts = threads.clamp(1, blocks.max(1));
    // blocks first..last of M, `out_part` holding exactly their rows
    let run = |out_part: &mut [f32], first: usize, last: usize| {
        for (q, m0) in (first..last).map(|q| (q, q * block)) {
            let mb = block.min(m - m0);
            let r0 = (q - first) * block;
            let o = &mut out_part[r0 * n..(r0 + mb) * n];
            call(
                mb,
                n,
                k,
                o,
                n,
                &a[m0..],
                m as isize,
                1,
                b,
                1,
                n as isize,
                acc,
            );
        }
    };
    if parts <= 1 {
        run(out, 0, blocks);
        return;
    }
    rayon::scope(|s| {
        let mut rest = out;
        for p in 0..parts {
            let (first, last) = (blocks * p / parts, blocks * (p + 1) / parts);
            let rows = (last * block).min(m) - first * block;
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(rows * n);
            rest = tail;
            let run = &run;
            s.spawn(move |_| serial(|| run(mine, first, last)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
        m: usize,
        n: usize,
        k: usize,
    ) -> Vec<f64> {
        let mut out = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a(i, p) as f64 * b(p, j) as f64).sum();
            }
        }
        out
    }

    fn fill(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    }

    #[test]
    fn products_match_naive_loops() {
        // (m, n, k): ones, odd sizes not a multiple of the SIMD width, a zero k, and a large one that goes parallel
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 7, 3),
            (5, 1, 9),
            (13, 17, 0),
            (33, 65, 31),
            (128, 512, 64),
        ] {
            for acc in [false, true] {
                let (a, b) = (fill(m * k, 1), fill(k * n, 2));
                let init = fill(m * n, 3);
                let base = |i: usize| if acc { init[i] as f64 } else { 0.0 };
                // Runs `product` over a copy of `init` and compares it with `want`.
                let check = |name: &str, product: &dyn Fn(&mut [f32]), want: Vec<f64>| {
                    let mut out = init.clone();
                    product(&mut out);
                    for i in 0..m * n {
                        assert!(
                            (out[i] as f64 - want[i] - base(i)).abs() < 1e-3,
                            "{name} {m}x{n}x{k} [{i}]"
                        );
                    }
                };
                // a·b
                check(
                    "a_b",
                    &|out| matmul_a_b(out, &a, &b, m, n, k, acc),
                    naive(|i, p| a[i * k + p], |p, j| b[p * n + j], m, n, k),
                );
                // a·bᵀ with b stored (N, K)
                check(
                    "a_bt",
                    &|out| matmul_a_bt(out, &a, &b, m, n, k, acc),
                    naive(|i, p| a[i * k + p], |p, j| b[j * k + p], m, n, k),
                );
                // aᵀ·b with a stored (K, M)
                check(
                    "at_b",
                    &|out| matmul_at_b(out, &a, &b, m, n, k, acc),
                    naive(|i, p| a[p * m + i], |p, j| b[p * n + j], m, n, k),
                );
            }
        }
    }

    #[test]
    fn panel_products_match_naive_loops() {
        // n below, at and across the panel width (64), one not a multiple of it
        for &(m, n, k) in &[(1, 1, 1), (3, 64, 5), (7, 65, 9), (32, 200, 33), (2, 5, 0)] {
            for acc in [false, true] {
                let (a, b) = (fill(m * k, 7), fill(k * n, 8));
                let init = fill(m * n, 9);
                let base = |i: usize| if acc { init[i] as f64 } else { 0.0 };
                // b read as (K, N), then as the transpose of an (N, K) matrix
                let cases = [
                    (
                        Panels::of(&b, k, n),
                        naive(|i, p| a[i * k + p], |p, j| b[p * n + j], m, n, k),
                    ),
                    (
                        Panels::of_transposed(&b, n, k),
                        naive(|i, p| a[i * k + p], |p, j| b[j * k + p], m, n, k),
                    ),
                ];
                for (which, (panels, want)) in cases.iter().enumerate() {
                    let mut out = init.clone();
                    matmul_a_panels(&mut out, &a, panels, m, acc);
                    for i in 0..m * n {
                        assert!(
                            (out[i] as f64 - want[i] - base(i)).abs() < 1e-3,
                            "panels#{which} {m}x{n}x{k} acc {acc} [{i}]"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn at_b_in_blocks_and_threads_matches_one_product() {
        // limits that cut M = 37 into blocks of 1, 3 and 5 columns (k = 9),
        // shared among 1, 2 or 3 threads (more threads than blocks too),
        // against the same product in one block
        let (m, n, k) = (37, 11, 9);
        let (a, b) = (fill(k * m, 4), fill(k * n, 5));
        let want = naive(|i, p| a[p * m + i], |p, j| b[p * n + j], m, n, k);
        for limit in [9, 27, 45, usize::MAX / 2] {
            for threads in [1, 2, 3] {
                for acc in [false, true] {
                    let init = fill(m * n, 6);
                    let mut out = init.clone();
                    at_b(&mut out, &a, &b, m, n, k, acc, limit, threads);
                    for i in 0..m * n {
                        let base = if acc { init[i] as f64 } else { 0.0 };
                        assert!(
                            (out[i] as f64 - want[i] - base).abs() < 1e-3,
                            "limit {limit} threads {threads} [{i}]"
                        );
                    }
                }
            }
        }
    }
}
