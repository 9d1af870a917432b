//! `dst (+)= a · b` with bf16 operands and fp32 accumulation, for CPUs with AVX-512 BF16.
//!
//! `VDPBF16PS` multiplies pairs of bf16 values and adds both products to an fp32 lane: two
//! multiply-adds per lane where an fp32 FMA does one. The `gemm` crate has no such kernel, so
//! this is a small BLIS-style GEMM of its own:
//!
//! - `k` is split into blocks of [`KC`] pairs; per block, `a` is packed into panels of [`MR`]
//!   rows (`[pair][row]`, each element a `u32` holding the bf16 of `a[i][2p]` in its low half and
//!   `a[i][2p + 1]` in its high half) and `b` into panels of [`NR`] columns (`[pair][column]`,
//!   the same pairs down `k`); the last pair of an odd `k` and the rows/columns past the edge are
//!   zeros.
//! - the micro-kernel keeps an `MR x NR` tile of `dst` in 24 registers and, per pair of `k`,
//!   broadcasts one packed `a` element and runs `VDPBF16PS` against the two vectors of the `b`
//!   panel. A `b` panel (32 KiB) stays in L1 while the `a` panels stream from L2.
//! - the `b` panels are spread over threads when asked; every element of `dst` is summed in the
//!   same order whatever the split, so results don't depend on the thread count.
//!
//! Rounding: fp32 to bf16 to nearest even, denormals to zero (`VCVTNEPS2BF16`); each pair adds
//! its odd product then its even one to the fp32 sum (the instruction's documented order, which
//! the tests check bit for bit against a scalar model).

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::Mat;
use gemm::Parallelism;

/// Rows of `a` per micro-tile (broadcast operand).
const MR: usize = 12;
/// Columns of `b` per micro-tile: two vectors of 16 fp32 lanes.
const NR: usize = 32;
/// Pairs of `k` per block: a `b` panel is `KC · NR · 4` bytes = 32 KiB.
const KC: usize = 256;

/// bf16 bits of `x`, as `VCVTNEPS2BF16` rounds: to nearest even, a denormal to a signed zero, a
/// NaN to a quiet NaN.
pub(crate) fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if b & 0x7f80_0000 == 0 {
        return ((b >> 16) & 0x8000) as u16;
    }
    if x.is_nan() {
        return ((b >> 16) | 0x0040) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// The fp32 value of bf16 bits.
#[cfg(test)]
pub(crate) fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Whether this CPU runs the kernel.
pub(crate) fn available() -> bool {
    crate::precision::bf16_supported()
}

/// `dst[m×n] = (dst if accumulate) + a[m×k] · b[k×n]` with bf16 operands, `dst` row-major with
/// rows `ld` apart. The caller checks shapes and [`available`].
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    ld: usize,
    accumulate: bool,
    a: Mat,
    b: Mat,
    par: Parallelism,
) {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(available(), "bf16 GEMM on a CPU without AVX-512 BF16");
        let pairs = k.div_ceil(2);
        let (mp, np) = (m.div_ceil(MR), n.div_ceil(NR));
        let mut apack = vec![0u32; mp * MR * KC.min(pairs)];
        let out = Out {
            ptr: dst.as_mut_ptr(),
            ld,
        };
        let mut p0 = 0;
        while p0 < pairs {
            let kc = KC.min(pairs - p0);
            let load = accumulate || p0 > 0;
            for pi in 0..mp {
                let panel = &mut apack[pi * MR * kc..(pi + 1) * MR * kc];
                // `a` element (i, kk) is data[i·rs + kk·cs].
                pack(a.data, a.rs, a.cs, m, k, pi * MR, MR, p0, kc, panel);
            }
            let apack = &apack[..mp * MR * kc];
            // Columns panels `j0..j1` of `dst` for this block.
            let panels = |j0: usize, j1: usize, bpack: &mut Vec<u32>| {
                bpack.resize(kc * NR, 0);
                for jp in j0..j1 {
                    // `b` element (j, kk) is data[j·cs + kk·rs].
                    pack(b.data, b.cs, b.rs, n, k, jp * NR, NR, p0, kc, bpack);
                    let cols = NR.min(n - jp * NR);
                    for pi in 0..mp {
                        let rows = MR.min(m - pi * MR);
                        let ap = &apack[pi * MR * kc..(pi + 1) * MR * kc];
                        // SAFETY: the tile (rows x cols at row pi·MR, column jp·NR) lies inside
                        // `dst` (the caller's asserts); threads own disjoint column panels.
                        unsafe {
                            tile(
                                kc,
                                ap,
                                bpack,
                                out.at(pi * MR, jp * NR),
                                ld,
                                rows,
                                cols,
                                load,
                            )
                        };
                    }
                }
            };
            let threads = match par {
                Parallelism::None => 1,
                #[cfg(feature = "parallel")]
                Parallelism::Rayon(0) => rayon::current_num_threads(),
                #[cfg(feature = "parallel")]
                Parallelism::Rayon(t) => t,
            }
            .min(np);
            #[cfg(feature = "parallel")]
            if threads > 1 {
                use rayon::prelude::*;
                (0..threads).into_par_iter().for_each(|t| {
                    panels(t * np / threads, (t + 1) * np / threads, &mut Vec::new());
                });
                p0 += kc;
                continue;
            }
            let _ = threads;
            panels(0, np, &mut Vec::new());
            p0 += kc;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, n, k, dst, ld, accumulate, a, b, par);
        unreachable!("bf16 GEMM outside x86_64");
    }
}

/// `dst` as a raw pointer that threads writing disjoint tiles share.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    ld: usize,
}

// SAFETY: each thread writes only its own column panels of `dst`.
unsafe impl Send for Out {}
// SAFETY: as for `Send`: shared, the pointer is only written through at disjoint tiles.
unsafe impl Sync for Out {}

impl Out {
    fn at(&self, row: usize, col: usize) -> *mut f32 {
        self.ptr.wrapping_add(row * self.ld + col)
    }
}

/// Packs lines `i0..i0 + width` (zeros past `len`) and pairs `p0..p0 + kc` (zeros past `k`) of a
/// matrix whose element (line `i`, depth `kk`) is `data[i·si + kk·sk]` into `out`
/// (`[pair][line]`, `width` lines a pair), each pair's two bf16 in one `u32`.
#[allow(clippy::too_many_arguments)]
fn pack(
    data: &[f32],
    si: usize,
    sk: usize,
    len: usize,
    k: usize,
    i0: usize,
    width: usize,
    p0: usize,
    kc: usize,
    out: &mut [u32],
) {
    debug_assert!(out.len() >= kc * width);
    let lines = len.saturating_sub(i0).min(width);
    #[cfg(target_arch = "x86_64")]
    {
        if si == 1 && lines > 0 {
            // SAFETY: `available()` holds (checked by `gemm`); the reads stay inside the lines
            // and depths that exist (masked), the writes inside `out`.
            return unsafe { x86::pack_along_lines(data, sk, k, i0, lines, width, p0, kc, out) };
        }
        if sk == 1 && lines > 0 {
            // SAFETY: as above.
            return unsafe { x86::pack_along_depth(data, si, k, i0, lines, width, p0, kc, out) };
        }
    }
    let at = |i: usize, kk: usize| {
        if i < lines && kk < k {
            u32::from(to_bf16(data[(i0 + i) * si + kk * sk]))
        } else {
            0
        }
    };
    for p in 0..kc {
        let kk = 2 * (p0 + p);
        for i in 0..width {
            out[p * width + i] = at(i, kk) | (at(i, kk + 1) << 16);
        }
    }
}

/// One `rows x cols` tile of `dst` at `c` (rows `ld` apart): `(c if load) + a_panel · b_panel`
/// over `kc` pairs.
///
/// # Safety
/// The CPU has AVX-512 BF16; `ap` holds `kc · MR` and `bp` `kc · NR` packed pairs; `c` points at
/// a tile of `rows <= MR` rows of `cols <= NR` valid elements.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    kc: usize,
    ap: &[u32],
    bp: &[u32],
    c: *mut f32,
    ld: usize,
    rows: usize,
    cols: usize,
    load: bool,
) {
    debug_assert!(ap.len() >= kc * MR && bp.len() >= kc * NR && rows <= MR && cols <= NR);
    // SAFETY: as the function's contract says.
    unsafe { x86::tile(kc, ap.as_ptr(), bp.as_ptr(), c, ld, rows, cols, load) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// Lanes `0..n` of a 16-lane mask.
    fn mask(n: usize) -> __mmask16 {
        if n >= 16 { 0xffff } else { (1u16 << n) - 1 }
    }

    /// Reads as `__m512bh` (same 64 bytes).
    #[inline(always)]
    fn bh(v: __m512i) -> __m512bh {
        // SAFETY: both are 64-byte plain vectors.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }

    /// Reads 16 bf16 as 16 integers (same 32 bytes).
    #[inline(always)]
    fn bits16(v: __m256bh) -> __m256i {
        // SAFETY: both are 32-byte plain vectors.
        unsafe { std::mem::transmute::<__m256bh, __m256i>(v) }
    }

    /// Reads 32 bf16 as 16 `u32` pairs (same 64 bytes).
    #[inline(always)]
    fn bits32(v: __m512bh) -> __m512i {
        // SAFETY: both are 64-byte plain vectors.
        unsafe { std::mem::transmute::<__m512bh, __m512i>(v) }
    }

    /// [`super::pack`] for lines contiguous in memory (`si == 1`): per pair, the even and the
    /// odd depth are two rows of 16 lines, rounded and interleaved into 16 `u32`.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn pack_along_lines(
        data: &[f32],
        sk: usize,
        k: usize,
        i0: usize,
        lines: usize,
        width: usize,
        p0: usize,
        kc: usize,
        out: &mut [u32],
    ) {
        let base = data.as_ptr();
        let row = |kk: usize, l: usize, n: usize| -> __m512 {
            if kk < k && n > 0 {
                // SAFETY: lines l..l+n at depth kk exist in `data` (the GEMM's shape checks).
                unsafe { _mm512_maskz_loadu_ps(mask(n), base.wrapping_add(i0 + l + kk * sk)) }
            } else {
                _mm512_setzero_ps()
            }
        };
        for p in 0..kc {
            let kk = 2 * (p0 + p);
            let mut l = 0;
            while l < width {
                let n = lines.saturating_sub(l).min(16);
                let even = _mm512_cvtepu16_epi32(bits16(_mm512_cvtneps_pbh(row(kk, l, n))));
                let odd = _mm512_cvtepu16_epi32(bits16(_mm512_cvtneps_pbh(row(kk + 1, l, n))));
                let v = _mm512_or_si512(even, _mm512_slli_epi32::<16>(odd));
                let w = (width - l).min(16);
                // SAFETY: `out` holds `kc · width` elements.
                unsafe {
                    _mm512_mask_storeu_epi32(out.as_mut_ptr().add(p * width + l).cast(), mask(w), v)
                };
                l += 16;
            }
        }
    }

    /// [`super::pack`] for depths contiguous in memory (`sk == 1`): per line, 16 pairs are 32
    /// consecutive values, rounded into 16 `u32` and scattered `width` apart.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn pack_along_depth(
        data: &[f32],
        si: usize,
        k: usize,
        i0: usize,
        lines: usize,
        width: usize,
        p0: usize,
        kc: usize,
        out: &mut [u32],
    ) {
        let step = _mm512_set1_epi32(width as i32);
        let index = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            step,
        );
        let dst = out.as_mut_ptr();
        for i in 0..width {
            if i >= lines {
                for p in 0..kc {
                    out[p * width + i] = 0;
                }
                continue;
            }
            let line = data.as_ptr().wrapping_add((i0 + i) * si);
            let mut p = 0;
            while p < kc {
                let kk = 2 * (p0 + p);
                let left = k.saturating_sub(kk);
                // SAFETY: depths kk..kk+left of this line exist in `data`.
                let lo = unsafe { _mm512_maskz_loadu_ps(mask(left), line.wrapping_add(kk)) };
                let hi = if left > 16 {
                    // SAFETY: depths kk+16..kk+left exist too.
                    unsafe { _mm512_maskz_loadu_ps(mask(left - 16), line.wrapping_add(kk + 16)) }
                } else {
                    _mm512_setzero_ps()
                };
                let v = bits32(_mm512_cvtne2ps_pbh(hi, lo));
                let n = (kc - p).min(16);
                // SAFETY: pairs p..p+n of line i lie inside `out` (`kc · width`).
                unsafe {
                    _mm512_mask_i32scatter_epi32::<4>(
                        dst.add(p * width + i).cast(),
                        mask(n),
                        index,
                        v,
                    )
                };
                p += 16;
            }
        }
    }

    /// The micro-kernel (see [`super::tile`]).
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile(
        kc: usize,
        ap: *const u32,
        bp: *const u32,
        c: *mut f32,
        ld: usize,
        rows: usize,
        cols: usize,
        load: bool,
    ) {
        let (m0, m1) = (mask(cols), mask(cols.saturating_sub(16)));
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        if load {
            for (r, acc) in acc.iter_mut().enumerate().take(rows) {
                // SAFETY: row r's first `cols` elements are in `dst`.
                unsafe {
                    acc[0] = _mm512_maskz_loadu_ps(m0, c.add(r * ld));
                    acc[1] = _mm512_maskz_loadu_ps(m1, c.add(r * ld + 16));
                }
            }
        }
        for p in 0..kc {
            // SAFETY: the panels hold `kc` pairs.
            let (b0, b1) = unsafe {
                (
                    bh(_mm512_loadu_si512(bp.add(p * NR).cast())),
                    bh(_mm512_loadu_si512(bp.add(p * NR + 16).cast())),
                )
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: the A panel holds `kc · MR` pairs.
                let a = bh(_mm512_set1_epi32(unsafe { *ap.add(p * MR + r) } as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], a, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], a, b1);
            }
        }
        for (r, acc) in acc.iter().enumerate().take(rows) {
            // SAFETY: as for the loads.
            unsafe {
                _mm512_mask_storeu_ps(c.add(r * ld), m0, acc[0]);
                _mm512_mask_storeu_ps(c.add(r * ld + 16), m1, acc[1]);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// What the kernel computes, in scalar code: both operands rounded to bf16, each pair's odd
    /// product then its even one added to an fp32 sum with one rounding each.
    fn model(m: usize, n: usize, k: usize, c0: &[f32], acc: bool, a: Mat, b: Mat) -> Vec<f32> {
        let r = |x: f32| from_bf16(to_bf16(x));
        let mut c = if acc { c0.to_vec() } else { vec![0.0; m * n] };
        for i in 0..m {
            for j in 0..n {
                let av = |kk: usize| {
                    if kk < k {
                        r(a.data[i * a.rs + kk * a.cs])
                    } else {
                        0.0
                    }
                };
                let bv = |kk: usize| {
                    if kk < k {
                        r(b.data[kk * b.rs + j * b.cs])
                    } else {
                        0.0
                    }
                };
                let mut s = c[i * n + j];
                for p in 0..k.div_ceil(2) {
                    s = av(2 * p + 1).mul_add(bv(2 * p + 1), s);
                    s = av(2 * p).mul_add(bv(2 * p), s);
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    /// Deterministic values in [-2, 2) with all 23 mantissa bits in play.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn rounding_matches_the_instruction() {
        if !available() {
            eprintln!("skipped: no AVX-512 BF16 here");
            return;
        }
        let mut xs = values(4096, 7);
        xs.extend([
            0.0,
            -0.0,
            1.0,
            f32::MIN_POSITIVE,
            f32::MIN_POSITIVE / 3.0,
            -1e-40,
            f32::MAX,
            -f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0 + f32::EPSILON * 128.0, // a tie: stays at 1.0 (even)
            1.0 + f32::EPSILON * 384.0, // a tie: rounds up to the even neighbour
            f32::from_bits(0x3f80_8001),
        ]);
        xs.resize(xs.len().div_ceil(16) * 16, 0.5);
        for chunk in xs.chunks(16) {
            // SAFETY: AVX-512 BF16 is available (checked above).
            let hw: [u16; 16] = unsafe {
                use std::arch::x86_64::*;
                #[target_feature(enable = "avx512f,avx512bf16")]
                unsafe fn cvt(x: &[f32]) -> [u16; 16] {
                    // SAFETY: `x` holds 16 values; 16 bf16 are 32 bytes, as `[u16; 16]`.
                    unsafe { std::mem::transmute(_mm512_cvtneps_pbh(_mm512_loadu_ps(x.as_ptr()))) }
                }
                cvt(chunk)
            };
            for (&x, &h) in chunk.iter().zip(&hw) {
                assert_eq!(to_bf16(x), h, "{x:e} ({:#010x})", x.to_bits());
            }
        }
        assert_eq!(to_bf16(1.0 + f32::EPSILON * 128.0), to_bf16(1.0));
        assert_eq!(from_bf16(to_bf16(3.0)), 3.0);
    }

    /// Shapes with every edge: odd k, k across blocks, partial tiles in both directions, both
    /// layouts of both operands, accumulate on and off, one and several threads. The kernel
    /// must equal the scalar model bit for bit.
    #[test]
    fn the_kernel_is_the_model_bit_for_bit() {
        if !available() {
            eprintln!("skipped: no AVX-512 BF16 here");
            return;
        }
        let shapes = [
            (1, 1, 1),
            (3, 5, 7),
            (12, 32, 2),
            (13, 33, 9),
            (25, 70, 513),
            (40, 17, 1030),
            (7, 200, 64),
        ];
        for (si, &(m, n, k)) in shapes.iter().enumerate() {
            let (av, bv) = (values(m * k, si as u32), values(k * n, 100 + si as u32));
            let c0 = values(m * n, 200 + si as u32);
            for (a_rows, b_rows) in [(true, true), (false, true), (true, false), (false, false)] {
                let a = if a_rows {
                    Mat::rows(&av, k)
                } else {
                    Mat::transposed(&av, m)
                };
                let b = if b_rows {
                    Mat::rows(&bv, n)
                } else {
                    Mat::transposed(&bv, k)
                };
                for acc in [false, true] {
                    let want = model(m, n, k, &c0, acc, a, b);
                    for par in [Parallelism::None, Parallelism::Rayon(3)] {
                        let mut got = c0.clone();
                        super::super::on_threads(3, || gemm(m, n, k, &mut got, n, acc, a, b, par));
                        let same = got
                            .iter()
                            .zip(&want)
                            .all(|(g, w)| g.to_bits() == w.to_bits());
                        assert!(
                            same,
                            "{m}x{n}x{k}, a rows {a_rows}, b rows {b_rows}, acc {acc}, {par:?}"
                        );
                    }
                }
            }
        }
    }

    /// Against exact (f64) products of the fp32 inputs the error stays within bf16's rounding of
    /// both operands: `|c - c_exact| <= 2^-7 · Σ|a||b|` (each operand's relative error is at most
    /// 2^-9, fp32 sums add far less).
    #[test]
    fn the_error_is_bf16_rounding() {
        if !available() {
            eprintln!("skipped: no AVX-512 BF16 here");
            return;
        }
        let (m, n, k) = (30, 45, 700);
        let (av, bv) = (values(m * k, 1), values(k * n, 2));
        let mut c = vec![0.0; m * n];
        gemm(
            m,
            n,
            k,
            &mut c,
            n,
            false,
            Mat::rows(&av, k),
            Mat::rows(&bv, n),
            Parallelism::None,
        );
        let mut worst = 0.0f64;
        for i in 0..m {
            for j in 0..n {
                let (mut exact, mut mag) = (0.0f64, 0.0f64);
                for kk in 0..k {
                    let p = f64::from(av[i * k + kk]) * f64::from(bv[kk * n + j]);
                    exact += p;
                    mag += p.abs();
                }
                let err = (f64::from(c[i * n + j]) - exact).abs() / mag;
                worst = worst.max(err);
            }
        }
        assert!(worst <= 2f64.powi(-7), "relative error {worst:e}");
        assert!(
            worst > 2f64.powi(-20),
            "{worst:e}: suspiciously exact for bf16"
        );
    }
}
