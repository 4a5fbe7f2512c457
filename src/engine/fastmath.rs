//! Vectorisable exp, sigmoid and tanh for the element-wise loops, and the
//! once-detected choice between an AVX2+FMA build of a loop and the baseline one.
//!
//! libm's `expf` is a call per element, so a softmax over 6,000 logits for each
//! of 4,096 positions would spend more time in exp than in the GEMMs. These
//! functions are branch-free polynomials (Cephes' `expf`, relative error about
//! 2e-7 over the clamped range) that LLVM turns into SIMD code when they are
//! inlined into a loop compiled with AVX2. The scalar std functions remain the
//! truth the tests compare against. Not here: GEMMs (`matmul.rs`).

/// e^x for x clamped to [−87.3, 88.3] (beyond that the result would be denormal or infinite).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part exact in f32 and a remainder (Cody–Waite)
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding it rounds to an integer, which then sits in the low mantissa bits
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n built in the exponent field: n is the integer in t's low mantissa bits
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    e * f32::from_bits(((ni + 127) << 23) as u32)
}

/// 1 / (1 + e^−x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh x = 1 − 2 / (e^{2x} + 1); absolute error about 1e-7 (relative error grows near 0, where it does not matter here).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// `x ← sigmoid(x)` in blocks of 8: one exp per lane keeps the block small enough for
/// LLVM to unroll and pack into one AVX2 register (a loop with several exps per element
/// was left scalar). Inline it into a [`simd_fn!`](crate::simd_fn) body.
#[inline(always)]
pub fn sigmoid_slice(x: &mut [f32]) {
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        for v in c.iter_mut() {
            *v = sigmoid(*v);
        }
    }
    for v in chunks.into_remainder() {
        *v = sigmoid(*v);
    }
}

/// `x ← tanh(x)` in blocks of 8, like [`sigmoid_slice`].
#[inline(always)]
pub fn tanh_slice(x: &mut [f32]) {
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        for v in c.iter_mut() {
            *v = tanh(*v);
        }
    }
    for v in chunks.into_remainder() {
        *v = tanh(*v);
    }
}

/// Whether this CPU runs the AVX2+FMA builds (detected once by std, then cached);
/// F16C, which every AVX2 CPU has, is required too, for the half-precision matvec.
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs the AVX-512 builds (AVX-512 F, BW, DQ and VL, besides AVX2+FMA).
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `pub fn $name(args)` whose body is compiled three times, for AVX-512, for
/// AVX2+FMA and for the baseline target, and picks one at run time. The body must be
/// safe code; the compiler vectorises its loops to each width.
#[macro_export]
macro_rules! simd_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn inner($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                if $crate::engine::fastmath::has_avx512() {
                    // SAFETY: the CPU supports these AVX-512 subsets (checked just above)
                    return unsafe { avx512($($arg),*) };
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                if $crate::engine::fastmath::has_avx2() {
                    // SAFETY: the CPU supports avx2 and fma (checked just above)
                    return unsafe { avx2($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_std_over_the_useful_range() {
        let (mut e_rel, mut s_abs, mut t_abs) = (0.0f64, 0.0f64, 0.0f64);
        for k in -40_000..=40_000 {
            let x = k as f32 * 0.002; // [−80, 80]
            let want = (x as f64).exp();
            e_rel = e_rel.max(((exp(x) as f64) - want).abs() / want);
            let xs = x / 4.0; // [−20, 20]
            s_abs = s_abs.max((sigmoid(xs) as f64 - 1.0 / (1.0 + (-(xs as f64)).exp())).abs());
            t_abs = t_abs.max((tanh(xs) as f64 - (xs as f64).tanh()).abs());
        }
        eprintln!("exp rel {e_rel:e}, sigmoid abs {s_abs:e}, tanh abs {t_abs:e}");
        assert!(e_rel < 1e-6, "exp relative error {e_rel:e}");
        assert!(s_abs < 1e-6, "sigmoid absolute error {s_abs:e}");
        assert!(t_abs < 1e-6, "tanh absolute error {t_abs:e}");
        // saturation without NaN
        assert!(exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert!(sigmoid(-1000.0) >= 0.0 && sigmoid(1000.0) == 1.0);
    }

    crate::simd_fn! {
        fn exp_all(out: &mut [f32], x: &[f32]) {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = exp(v);
            }
        }
    }

    #[test]
    fn dispatched_build_agrees_with_scalar() {
        let x: Vec<f32> = (0..1001).map(|k| (k as f32 - 500.0) * 0.1).collect();
        let mut out = vec![0.0; x.len()];
        exp_all(&mut out, &x);
        for (o, &v) in out.iter().zip(&x) {
            assert_eq!(*o, exp(v), "x = {v}");
        }
    }
}
