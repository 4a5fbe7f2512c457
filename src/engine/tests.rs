//! Fast kernels against `reference.rs` on hand-listed shapes (as gemm's tests
//! do): B = 1, T = 1, H not a multiple of the SIMD width, and an S-like layer.
//! On failure the first mismatches and the largest difference are printed.

use super::gru::gru_forward;
use super::lstm::lstm_forward;
use super::reference::{cell_ref, RefWeights};
use super::rnn::rnn_forward;
use super::{CellWeights, Dims, LayerInput};
use crate::model::Cell;
use crate::rng::Rng;

/// Compares `got` with `want`, printing the first 5 mismatches and the largest difference.
pub fn check_close(name: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: lengths differ");
    let mut max = 0.0f64;
    let mut bad = 0;
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w).abs();
        max = max.max(d);
        if d > tol * (1.0 + w.abs()) {
            if bad < 5 {
                eprintln!("{name}[{k}]: got {g} want {w} NOT OK");
            }
            bad += 1;
        }
    }
    eprintln!("{name}: max diff {max:e} over {} values", got.len());
    assert_eq!(
        bad, 0,
        "{name}: {bad} values differ by more than {tol:e} (max diff {max:e})"
    );
}

fn random(n: usize, scale: f32, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| (2.0 * rng.uniform() - 1.0) * scale)
        .collect()
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// (T, B, I, H)
const SHAPES: &[(usize, usize, usize, usize)] = &[
    (1, 1, 1, 1),
    (1, 3, 5, 7),
    (5, 1, 4, 9),
    (7, 4, 13, 11),
    (3, 2, 8, 16),
    (4, 64, 128, 128),
];

#[test]
fn cells_match_reference_forward() {
    let mut rng = Rng::new(7);
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        for &(t, b, i, h) in SHAPES {
            let g = cell.gates();
            let bound = 1.0 / (h as f32).sqrt();
            let x = random(t * b * i, 1.0, &mut rng);
            let (w_ih, w_hh) = (
                random(g * h * i, bound, &mut rng),
                random(g * h * h, bound, &mut rng),
            );
            let (b_ih, b_hh) = (
                random(g * h, bound, &mut rng),
                random(g * h, bound, &mut rng),
            );
            let w = CellWeights {
                w_ih: &w_ih,
                w_hh: &w_hh,
                b_ih: &b_ih,
                b_hh: &b_hh,
            };
            let d = Dims { t, b, i, h };
            let mut h_all = vec![0.0f32; (t + 1) * b * h];
            let mut c_all = vec![0.0f32; (t + 1) * b * h];
            let mut gates = vec![0.0f32; t * b * g * h];
            match cell {
                Cell::Lstm => lstm_forward(
                    &mut h_all,
                    &mut c_all,
                    &mut gates,
                    LayerInput::Rows(&x),
                    &w,
                    d,
                ),
                Cell::Gru => {
                    let mut hn = vec![0.0f32; t * b * h];
                    let mut hh = vec![0.0f32; b * 3 * h];
                    gru_forward(
                        &mut h_all,
                        &mut hn,
                        &mut gates,
                        &mut hh,
                        LayerInput::Rows(&x),
                        &w,
                        d,
                    )
                }
                Cell::Rnn => rnn_forward(&mut h_all, &mut gates, LayerInput::Rows(&x), &w, d),
            }
            let (w64, wh64, bi64, bh64) = (to64(&w_ih), to64(&w_hh), to64(&b_ih), to64(&b_hh));
            let rw = RefWeights {
                w_ih: &w64,
                w_hh: &wh64,
                b_ih: &bi64,
                b_hh: &bh64,
            };
            let (h_ref, c_ref) = cell_ref(cell, &to64(&x), &rw, t, b, i, h);
            let name = format!("{cell} h T{t} B{b} I{i} H{h}");
            check_close(&name, &h_all[b * h..], &h_ref, 1e-5);
            if cell == Cell::Lstm {
                check_close(
                    &format!("{cell} c T{t} B{b} I{i} H{h}"),
                    &c_all[b * h..],
                    &c_ref,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn column_sums_match_plain_loops() {
    use super::lstm::add_column_sums;
    let mut rng = Rng::new(3);
    // 200 columns are shared among the threads, 7 are not
    for (rows, n) in [(33, 200), (5, 7)] {
        let dpre = random(rows * n, 1.0, &mut rng);
        let want: Vec<f64> = (0..n)
            .map(|j| 0.5 + (0..rows).map(|r| dpre[r * n + j] as f64).sum::<f64>())
            .collect();
        let mut db = vec![0.5f32; n];
        add_column_sums(&mut db, None, &dpre);
        check_close(&format!("sums {rows}x{n}"), &db, &want, 1e-5);
        let (mut d1, mut d2) = (vec![0.5f32; n], vec![0.5f32; n]);
        add_column_sums(&mut d1, Some(&mut d2), &dpre);
        check_close(&format!("sums {rows}x{n} first"), &d1, &want, 1e-5);
        check_close(&format!("sums {rows}x{n} second"), &d2, &want, 1e-5);
    }
}

/// The lookup projection against the plain path in f64: form each row as the
/// sum of its tables' rows, project it, and backward scatter dx into the tables.
#[test]
fn lookup_projection_matches_projecting_the_summed_rows() {
    use super::embedding::{
        lookup_index, lookup_projection_backward, lookup_projection_forward, Lookup, LookupScratch,
    };
    let mut rng = Rng::new(11);
    // (B, T, E, G·H, rows per table): the third splits ids between threads,
    // the last reads more distinct ids than one chunk holds
    for &(b, t, e, gh, sizes) in &[
        (1, 1, 1, 1, &[1usize][..]),
        (3, 5, 6, 21, &[20, 4][..]),
        (16, 8, 16, 192, &[50, 3, 7][..]),
        (64, 20, 8, 64, &[2000, 5][..]),
    ] {
        let rows = b * t;
        let w_tabs: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&n| random(n * e, 1.0, &mut rng))
            .collect();
        let ids_bt: Vec<Vec<u32>> = sizes
            .iter()
            .map(|&n| {
                (0..rows)
                    .map(|_| (rng.uniform() * n as f32) as u32 % n as u32)
                    .collect()
            })
            .collect();
        let w_ih = random(gh * e, 0.5, &mut rng);
        let widest = *sizes.iter().max().unwrap();
        let mut seen = vec![u32::MAX; widest];
        let mut found: Vec<[Vec<u32>; 3]> = Vec::new();
        let mut slot = Vec::new();
        for ids in &ids_bt {
            let [mut d, mut starts, mut by_id] = [Vec::new(), Vec::new(), Vec::new()];
            lookup_index(
                ids,
                b,
                t,
                &mut seen,
                &mut slot,
                &mut d,
                &mut starts,
                &mut by_id,
            );
            assert!(seen.iter().all(|&v| v == u32::MAX), "seen is not reset");
            // every row once, under the id it reads
            let mut hit = vec![0; rows];
            for (u, &id) in d.iter().enumerate() {
                for &r in &by_id[starts[u] as usize..starts[u + 1] as usize] {
                    let (tt, bb) = (r as usize / b, r as usize % b);
                    assert_eq!(ids[bb * t + tt], id, "row {r} is not under its id");
                    hit[r as usize] += 1;
                }
            }
            assert!(hit.iter().all(|&n| n == 1), "a row is missing or repeated");
            found.push([d, starts, by_id]);
        }
        let tables: Vec<Lookup> = w_tabs
            .iter()
            .zip(&found)
            .map(|(w, [ids, starts, rows])| Lookup {
                w,
                ids,
                starts,
                rows,
            })
            .collect();
        // time-major row r = tt·B + bb reads id ids_bt[k][bb·T + tt] of table k
        let x: Vec<f64> = (0..rows)
            .flat_map(|r| {
                let (tt, bb) = (r / b, r % b);
                let (w_tabs, ids_bt) = (&w_tabs, &ids_bt);
                (0..e).map(move |j| {
                    (0..sizes.len())
                        .map(|k| w_tabs[k][ids_bt[k][bb * t + tt] as usize * e + j] as f64)
                        .sum::<f64>()
                })
            })
            .collect();
        let mut scratch = LookupScratch::default();
        let mut gates = vec![f32::NAN; rows * gh];
        lookup_projection_forward(&mut gates, &tables, &w_ih, e, gh, &mut scratch);
        let want: Vec<f64> = (0..rows * gh)
            .map(|q| {
                let (r, g) = (q / gh, q % gh);
                (0..e).map(|j| x[r * e + j] * w_ih[g * e + j] as f64).sum()
            })
            .collect();
        check_close(&format!("lookup forward B{b} T{t}"), &gates, &want, 1e-5);

        let dpre = random(rows * gh, 1.0, &mut rng);
        let mut dw_ih = vec![0.25f32; gh * e];
        let mut dtab: Vec<Vec<f32>> = w_tabs.iter().map(|w| vec![0.5f32; w.len()]).collect();
        let mut dt: Vec<&mut [f32]> = dtab.iter_mut().map(|v| &mut v[..]).collect();
        lookup_projection_backward(
            &mut dw_ih,
            &mut dt,
            &dpre,
            &tables,
            &w_ih,
            e,
            gh,
            &mut scratch,
        );
        let want_w: Vec<f64> = (0..gh * e)
            .map(|q| {
                let (g, j) = (q / e, q % e);
                0.25 + (0..rows)
                    .map(|r| dpre[r * gh + g] as f64 * x[r * e + j])
                    .sum::<f64>()
            })
            .collect();
        check_close(&format!("lookup dW_ih B{b} T{t}"), &dw_ih, &want_w, 1e-5);
        for (k, &n) in sizes.iter().enumerate() {
            let mut want_t = vec![0.5f64; n * e];
            for r in 0..rows {
                let (tt, bb) = (r / b, r % b);
                let id = ids_bt[k][bb * t + tt] as usize;
                for j in 0..e {
                    want_t[id * e + j] += (0..gh)
                        .map(|g| dpre[r * gh + g] as f64 * w_ih[g * e + j] as f64)
                        .sum::<f64>();
                }
            }
            check_close(
                &format!("lookup d table {k} B{b} T{t}"),
                &dtab[k],
                &want_t,
                1e-5,
            );
        }
    }
}
