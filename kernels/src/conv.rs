//! Convolutions on the CPU as im2col + GEMM, forward and both backward passes.
//!
//! Burn 0.22.1's Flex backend computes a convolution's weight gradient as another convolution
//! with the batch playing the channels (many thin GEMMs, one per input channel) and its input
//! gradient as a transposed convolution. On kyara's layers that made a training step 2.5–3.5x
//! slower than PyTorch (`docs/benchmarks.md`). [`conv2d`] and [`conv_transpose2d`] take Burn's
//! own modules (same parameters, same weight files, same spectral-norm hooks) and, on the Flex
//! device, with or without autodiff, compute per image `n`:
//!
//! - forward: `Y_n = W · im2col(X_n)`, with `W` as a `[C_out, C_in·kh·kw]` matrix;
//! - input gradient: `dX_n = col2im(Wᵀ · dY_n)`;
//! - weight gradient: `dW = Σ_n dY_n · im2col(X_n)ᵀ`.
//!
//! A transposed convolution is the same three products in another order (its forward is a
//! convolution's input gradient). Images are spread over threads (feature `parallel`); with
//! fewer images than threads, the GEMM itself runs in parallel. Other devices (wgpu, WebGPU) and
//! options these kernels don't cover (groups, dilation, asymmetric padding, non-f32 tensors) go
//! to Burn's op, so results never depend on which path ran, only the speed does.

// Builds without autodiff (the page) run only the forward kernels.
#![cfg_attr(not(feature = "autodiff"), allow(dead_code))]

use burn::backend::{DispatchDevice, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::FlexTensor;
use gemm::Parallelism;

/// One convolution's shape, seen from the side that is im2col'ed: an image of `c` channels,
/// `h` x `w`, a `kh` x `kw` kernel with stride `s*` and zero padding `p*`, giving `oh` x `ow`
/// output positions. For a transposed convolution this is the geometry of the equivalent forward
/// convolution from its output back to its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geom {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    /// Rows of the im2col matrix: `c·kh·kw`.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Columns of the im2col matrix: output positions `oh·ow`.
    fn p(&self) -> usize {
        self.oh * self.ow
    }
    /// Elements of one image on the im2col'ed side.
    fn img(&self) -> usize {
        self.c * self.h * self.w
    }
    /// A 1x1, stride-1, unpadded kernel: im2col is the identity.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
}

/// Output positions `o` in `0..out` whose input index `o·s + k - pad` lies in `0..n`.
fn valid_range(out: usize, s: usize, k: usize, pad: usize, n: usize) -> (usize, usize) {
    let lo = if pad > k { (pad - k).div_ceil(s) } else { 0 };
    let hi = if n + pad > k {
        (n + pad - k).div_ceil(s)
    } else {
        0
    };
    let lo = lo.min(out);
    (lo, hi.min(out).max(lo))
}

/// `cols[k][p]` (`[c·kh·kw, rows·ow]`, rows `ld` apart) = the input pixel under kernel tap `k`
/// at output position `p` of output rows `oy0..oy0 + rows`, or 0 in the padding. `x` is one
/// image `[c, h, w]`.
#[inline(always)]
fn im2col_impl(g: &Geom, x: &[f32], oy0: usize, rows: usize, cols: &mut [f32], ld: usize) {
    let p = rows * g.ow;
    debug_assert_eq!(x.len(), g.img());
    debug_assert!(ld >= p && cols.len() >= (g.k() - 1) * ld + p);
    if g.sw > 1 {
        return im2col_strided(g, x, oy0, rows, cols, ld);
    }
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.kh {
            let (ylo, yhi) = valid_range(g.oh, g.sh, ky, g.ph, g.h);
            for kx in 0..g.kw {
                let (lo, hi) = valid_range(g.ow, g.sw, kx, g.pw, g.w);
                let row = &mut cols[((c * g.kh + ky) * g.kw + kx) * ld..][..p];
                for (r, dst) in row.chunks_exact_mut(g.ow).enumerate() {
                    let oy = oy0 + r;
                    if oy < ylo || oy >= yhi {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[(oy * g.sh + ky - g.ph) * g.w..][..g.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if lo < hi {
                        gather(&mut dst[lo..hi], &src[lo * g.sw + kx - g.pw..], g.sw);
                    }
                }
            }
        }
    }
}

/// Length of a zero-padded input row: every tap of every output position lands inside it.
fn padded_width(g: &Geom) -> usize {
    (g.w + 2 * g.pw).max((g.ow.max(1) - 1) * g.sw + g.kw)
}

/// [`im2col_impl`] for horizontal strides > 1: each input row is copied once into a zero-padded
/// buffer, from which every tap gathers a whole output row (no edge cases, no short tails).
#[inline(always)]
fn im2col_strided(g: &Geom, x: &[f32], oy0: usize, rows: usize, cols: &mut [f32], ld: usize) {
    let mut buf = vec![0.0f32; padded_width(g)];
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.kh {
            let (ylo, yhi) = valid_range(g.oh, g.sh, ky, g.ph, g.h);
            let tap_row = |kx: usize| ((c * g.kh + ky) * g.kw + kx) * ld;
            for r in 0..rows {
                let oy = oy0 + r;
                if oy < ylo || oy >= yhi {
                    for kx in 0..g.kw {
                        cols[tap_row(kx) + r * g.ow..][..g.ow].fill(0.0);
                    }
                    continue;
                }
                let src = &plane[(oy * g.sh + ky - g.ph) * g.w..][..g.w];
                buf[g.pw..g.pw + g.w].copy_from_slice(src);
                for kx in 0..g.kw {
                    gather(
                        &mut cols[tap_row(kx) + r * g.ow..][..g.ow],
                        &buf[kx..],
                        g.sw,
                    );
                }
            }
        }
    }
}

/// `dst[i] = src[i·s]`.
#[inline(always)]
fn gather(dst: &mut [f32], src: &[f32], s: usize) {
    match s {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        // Fixed-size blocks (the last one overlapping the one before) so the even-element pick
        // compiles to vector shuffles with no scalar tail: rows are short (4 to 32 positions),
        // and a tail loop took a quarter of im2col's time.
        2 => {
            let n = dst.len();
            if n >= 16 {
                pick_even_blocks::<16>(dst, src);
            } else if n >= 8 {
                pick_even_blocks::<8>(dst, src);
            } else if n >= 4 {
                pick_even_blocks::<4>(dst, src);
            } else {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = src[2 * i];
                }
            }
        }
        _ => {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[i * s];
            }
        }
    }
}

/// `dst[i] = src[2i]` in blocks of `N` (`dst.len() >= N`), the last block overlapping.
#[inline(always)]
fn pick_even_blocks<const N: usize>(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let block = |d: &mut [f32], s: &[f32]| {
        let d: &mut [f32] = &mut d[..N];
        let s: &[f32] = &s[..2 * N - 1];
        for (i, d) in d.iter_mut().enumerate() {
            *d = s[2 * i];
        }
    };
    let mut i = 0;
    while i + N <= n {
        block(&mut dst[i..], &src[2 * i..]);
        i += N;
    }
    if i < n {
        let j = n - N;
        block(&mut dst[j..], &src[2 * j..]);
    }
}

/// [`col2im_add_impl`] for horizontal strides > 1, by image row: the taps of every kernel row that
/// reaches the row from this tile are summed into a zero-padded row buffer over whole rows, which
/// is then added to the image once (not once per kernel row: that store was most of col2im's time
/// in a DCGAN forward). Stride 2 sums neighbouring taps as interleaved pairs, and a 4-wide kernel
/// (DCGAN's layers) all four at once ([`four_taps`]).
#[inline(always)]
fn col2im_strided(g: &Geom, cols: &[f32], oy0: usize, rows: usize, x: &mut [f32], ld: usize) {
    if rows == 0 {
        return;
    }
    let mut buf = vec![0.0f32; padded_width(g)];
    let ow = g.ow;
    // Image rows `oy·sh + ky - ph` reached from output rows `oy0..oy0 + rows`.
    let lo = (oy0 * g.sh).saturating_sub(g.ph);
    let hi = ((oy0 + rows - 1) * g.sh + g.kh)
        .saturating_sub(g.ph)
        .min(g.h);
    for c in 0..g.c {
        let plane = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        let tap = |ky: usize, kx: usize, r: usize| {
            &cols[((c * g.kh + ky) * g.kw + kx) * ld + r * ow..][..ow]
        };
        for iy in lo..hi {
            let mut any = false;
            for ky in 0..g.kh.min(iy + g.ph + 1) {
                let t = iy + g.ph - ky;
                let oy = t / g.sh;
                if !t.is_multiple_of(g.sh) || oy < oy0 || oy >= oy0 + rows {
                    continue;
                }
                let r = oy - oy0;
                if g.sw == 2 && g.kw == 4 {
                    let taps = [tap(ky, 0, r), tap(ky, 1, r), tap(ky, 2, r), tap(ky, 3, r)];
                    if any {
                        four_taps::<true>(&mut buf, taps);
                    } else {
                        four_taps::<false>(&mut buf, taps);
                    }
                } else {
                    if !any {
                        buf.fill(0.0);
                    }
                    let mut kx = 0;
                    while kx < g.kw {
                        if g.sw == 2 && kx + 1 < g.kw {
                            let pair = (tap(ky, kx, r), tap(ky, kx + 1, r));
                            add_pairs(&mut buf[kx..kx + 2 * ow], pair.0, pair.1);
                            kx += 2;
                        } else {
                            for (ox, v) in tap(ky, kx, r).iter().enumerate() {
                                buf[ox * g.sw + kx] += v;
                            }
                            kx += 1;
                        }
                    }
                }
                any = true;
            }
            if any {
                let dst = &mut plane[iy * g.w..][..g.w];
                for (d, v) in dst.iter_mut().zip(&buf[g.pw..]) {
                    *d += v;
                }
            }
        }
    }
}

/// `buf[2i + kx] (+)= Σ_kx t[kx][i]` for a stride-2, 4-wide kernel, in one pass: even elements
/// get `t0[i] + t2[i - 1]`, odd ones `t1[i] + t3[i - 1]`. Without `ADD` the rest of `buf` is
/// zeroed, so every element is written and none read.
#[inline(always)]
fn four_taps<const ADD: bool>(buf: &mut [f32], t: [&[f32]; 4]) {
    let put = |d: &mut f32, v: f32| {
        if ADD { *d += v } else { *d = v }
    };
    let n = t[0].len();
    if n == 0 {
        if !ADD {
            buf.fill(0.0);
        }
        return;
    }
    debug_assert!(buf.len() >= 2 * n + 2);
    put(&mut buf[0], t[0][0]);
    put(&mut buf[1], t[1][0]);
    let (a, b, c, e) = (&t[0][1..n], &t[2][..n - 1], &t[1][1..n], &t[3][..n - 1]);
    let mid = &mut buf[2..2 * n];
    let pairs = n - 1;
    let mut i = 0;
    macro_rules! blocks {
        ($w:expr) => {
            while i + $w <= pairs {
                let d = &mut mid[2 * i..][..2 * $w];
                let (a, b, c, e) = (&a[i..][..$w], &b[i..][..$w], &c[i..][..$w], &e[i..][..$w]);
                for j in 0..$w {
                    put(&mut d[2 * j], a[j] + b[j]);
                    put(&mut d[2 * j + 1], c[j] + e[j]);
                }
                i += $w;
            }
        };
    }
    // Rows are 4 to 32 positions: full-width blocks, then half, then a short scalar tail.
    blocks!(8);
    blocks!(4);
    for j in i..pairs {
        put(&mut mid[2 * j], a[j] + b[j]);
        put(&mut mid[2 * j + 1], c[j] + e[j]);
    }
    put(&mut buf[2 * n], t[2][n - 1]);
    put(&mut buf[2 * n + 1], t[3][n - 1]);
    if !ADD {
        buf[2 * n + 2..].fill(0.0);
    }
}

/// `d[2i] += a[i]`, `d[2i + 1] += b[i]`, in blocks of 8 pairs so it compiles to full-width
/// vector shuffles.
#[inline(always)]
fn add_pairs(d: &mut [f32], a: &[f32], b: &[f32]) {
    const N: usize = 8;
    let n = a.len();
    let mut i = 0;
    while i + N <= n {
        let (dd, aa, bb) = (&mut d[2 * i..][..2 * N], &a[i..][..N], &b[i..][..N]);
        for j in 0..N {
            dd[2 * j] += aa[j];
            dd[2 * j + 1] += bb[j];
        }
        i += N;
    }
    if i + 4 <= n {
        let (dd, aa, bb) = (&mut d[2 * i..][..8], &a[i..][..4], &b[i..][..4]);
        for j in 0..4 {
            dd[2 * j] += aa[j];
            dd[2 * j + 1] += bb[j];
        }
        i += 4;
    }
    for j in i..n {
        d[2 * j] += a[j];
        d[2 * j + 1] += b[j];
    }
}

/// The adjoint of [`im2col`] for the same rows: adds every `cols[k][p]` (rows `ld` apart) onto
/// the pixel of `x` (one image `[c, h, w]`) it was read from.
#[inline(always)]
fn col2im_add_impl(g: &Geom, cols: &[f32], oy0: usize, rows: usize, x: &mut [f32], ld: usize) {
    let p = rows * g.ow;
    debug_assert!(ld >= p && cols.len() >= (g.k() - 1) * ld + p);
    if g.sw > 1 {
        return col2im_strided(g, cols, oy0, rows, x, ld);
    }
    let row_of = |c: usize, ky: usize, kx: usize| &cols[((c * g.kh + ky) * g.kw + kx) * ld..][..p];
    for c in 0..g.c {
        let plane = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.kh {
            let (ylo, yhi) = valid_range(g.oh, g.sh, ky, g.ph, g.h);
            let mut kx = 0;
            while kx < g.kw {
                let (lo, hi) = valid_range(g.ow, g.sw, kx, g.pw, g.w);
                let row = row_of(c, ky, kx);
                for (r, src) in row.chunks_exact(g.ow).enumerate() {
                    let oy = oy0 + r;
                    if oy < ylo || oy >= yhi {
                        continue;
                    }
                    let dst = &mut plane[(oy * g.sh + ky - g.ph) * g.w..][..g.w];
                    if lo >= hi {
                        continue;
                    }
                    if g.sw == 1 {
                        let ix = lo + kx - g.pw;
                        for (d, s) in dst[ix..ix + hi - lo].iter_mut().zip(&src[lo..hi]) {
                            *d += s;
                        }
                    } else {
                        for ox in lo..hi {
                            dst[ox * g.sw + kx - g.pw] += src[ox];
                        }
                    }
                }
                kx += 1;
            }
        }
    }
}

/// Defines `$name`, which runs `$body` compiled for AVX-512 or AVX2 where the CPU has them (the
/// copy loops of im2col and col2im then move 16 or 8 floats at a time, not SSE's 4), else for
/// the build's baseline.
macro_rules! simd_dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $body:ident) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use simd_dispatch;

simd_dispatch! {
    /// [`im2col_impl`] for the CPU it runs on.
    fn im2col(g: &Geom, x: &[f32], oy0: usize, rows: usize, cols: &mut [f32], ld: usize)
        => im2col_impl
}

simd_dispatch! {
    /// [`col2im_add_impl`] for the CPU it runs on.
    fn col2im_add(g: &Geom, cols: &[f32], oy0: usize, rows: usize, x: &mut [f32], ld: usize)
        => col2im_add_impl
}

#[cfg(feature = "bf16")]
mod bf16;
mod winograd;

/// Image groups the weight gradient is split into (summed in a fixed order).
const WEIGHT_GROUPS: usize = 8;

/// Floats in one tile of columns (~512 KiB, to stay in a core's L2).
const TILE_FLOATS: usize = 128 * 1024;

/// Output rows per im2col tile: enough to keep a tile of columns in a core's L2.
fn tile_rows(g: &Geom) -> usize {
    // Measured against untiled columns: equal or faster on every layer of the per-op table
    // (the 32->64 critic conv: 58 vs 76–81 ms forward + backward).
    (TILE_FLOATS / (g.k() * g.ow).max(1)).clamp(1, g.oh.max(1))
}

/// Output-row tiles `(oy0, rows)` covering `0..g.oh`.
fn tiles(g: &Geom) -> impl Iterator<Item = (usize, usize)> {
    let t = tile_rows(g);
    let oh = g.oh;
    (0..oh).step_by(t).map(move |oy0| (oy0, t.min(oh - oy0)))
}

/// Columns a GEMM should have before small images are stacked side by side.
const FOLD_COLS: usize = 256;

/// Images per GEMM. A small map alone makes a thin GEMM (a 4x4 map: 16 columns; a 1x1 input: a
/// matrix-vector product) that runs the kernels' edge paths, so up to `FOLD_COLS` columns'
/// worth of images share one GEMM, as long as their columns still fit a tile. Depends only on
/// the geometry and the batch, never on the thread count (results stay bit-identical).
fn fold(g: &Geom, images: usize) -> usize {
    let p = g.p().max(1);
    if p >= FOLD_COLS || g.k() * p > TILE_FLOATS {
        return 1;
    }
    let by_cols = FOLD_COLS.div_ceil(p);
    let by_mem = TILE_FLOATS / (g.k() * p).max(1);
    by_cols.min(by_mem).min(images).max(1)
}

/// A matrix operand: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }
    fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }
    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            assert!((rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len());
        }
    }
}

/// `dst[m×n] = (dst if accumulate) + a[m×k] · b[k×n]`, `dst` row-major with rows `ld` apart.
#[allow(clippy::too_many_arguments)]
fn gemm(
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
    assert!(ld >= n && (m == 0 || n == 0 || dst.len() >= (m - 1) * ld + n));
    a.check(m, k);
    b.check(k, n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.chunks_mut(ld).take(m).for_each(|r| r[..n].fill(0.0));
        }
        return;
    }
    // Below ~192³ multiply-adds, waking threads costs more than it saves (Flex's matmul rule).
    let par = if m * n * k < 192 * 192 * 192 {
        Parallelism::None
    } else {
        par
    };
    #[cfg(feature = "bf16")]
    if crate::precision::current() == crate::precision::Precision::Bf16 && bf16::available() {
        return bf16::gemm(m, n, k, dst, ld, accumulate, a, b, par);
    }
    // SAFETY: the asserts above keep every index the kernel touches inside the three slices,
    // and `dst` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// `c = a · b` for row-major `n x n` matrices through the kernels' GEMM at the calling thread's
/// precision, on every thread: the peak the per-op bench sets the layers against.
#[cfg(feature = "bench")]
pub(crate) fn square_gemm(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    gemm(
        n,
        n,
        n,
        c,
        n,
        false,
        Mat::rows(a, n),
        Mat::rows(b, n),
        inner_par(0),
    );
}

/// Threads of the current rayon pool (only multi-threaded builds ask).
#[cfg(feature = "parallel")]
fn threads() -> usize {
    rayon::current_num_threads()
}

/// Parallelism inside one GEMM: all threads when images can't keep them busy, else none.
fn inner_par(images: usize) -> Parallelism {
    #[cfg(feature = "parallel")]
    if images < threads() {
        return Parallelism::Rayon(0);
    }
    let _ = images;
    Parallelism::None
}

/// Calls `f(first_image, images, out_chunk, scratch, parallelism)` for groups of `fold` images
/// (the last may be smaller) of the `out.len() / stride` images, spread over threads; `scratch`
/// is a reusable per-thread buffer.
pub(crate) fn per_group<F>(out: &mut [f32], stride: usize, fold: usize, f: F)
where
    F: Fn(usize, usize, &mut [f32], &mut Vec<f32>, Parallelism) + Sync + Send,
{
    let stride = stride.max(1);
    let fold = fold.max(1);
    let images = out.len() / stride;
    let groups = images.div_ceil(fold);
    let par = inner_par(groups);
    let call = |gi: usize, chunk: &mut [f32], scratch: &mut Vec<f32>| {
        f(gi * fold, chunk.len() / stride, chunk, scratch, par)
    };
    #[cfg(feature = "parallel")]
    if groups > 1 && threads() > 1 {
        use rayon::prelude::*;
        let precision = crate::precision::current();
        out.par_chunks_mut(stride * fold)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (gi, chunk)| {
                crate::precision::with(precision, || call(gi, chunk, scratch))
            });
        return;
    }
    let mut scratch = Vec::new();
    for (gi, chunk) in out.chunks_mut(stride * fold).enumerate() {
        call(gi, chunk, &mut scratch);
    }
}

/// Runs `f` in a fresh pool of `threads` threads (tests check that results don't depend on it).
#[cfg(all(test, feature = "parallel"))]
pub(crate) fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(f)
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer, kept between calls so its pages are not zeroed
/// again on every call (the Winograd backward pass's fixed groups: a fresh buffer per group was
/// ~12 % of a layer, in `memset`). A nested call on the same thread (a parallel GEMM running
/// another group while it waits) gets a fresh buffer. Only the Winograd backward pass uses it:
/// kept buffers in [`per_group`] and the Winograd forward made later im2col layers slower, for
/// reasons not found (`docs/benchmarks.md`, "Tried and reverted").
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Vec::new()),
    })
}

/// Row stride for a buffer of `cols` columns: one cache line more, so that rows a multiple of
/// 4 KiB long (1,024 positions, or 256 stacked) don't all fall into one cache set when the GEMM
/// packs a panel down the rows. The critic stem's weight gradient (1,024 positions a tile) went
/// from 8.8 to 2.2 ms with it.
fn lead(cols: usize) -> usize {
    if cols >= 256 && cols.is_multiple_of(256) {
        cols + 16
    } else {
        cols
    }
}

fn scratch_of(scratch: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    &mut scratch[..len]
}

/// `y[n] = w · im2col(x[n]) (+ bias)`: `x` is `[images, g.img()]`, `w` is `[m, g.k()]`, the
/// result `[images, m, g.p()]`. Columns are built a tile of output rows at a time, or, for small
/// maps, for several images side by side ([`fold`]).
fn forward(
    g: &Geom,
    images: usize,
    x: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut y = vec![0.0f32; images * m * p];
    let fold = fold(g, images);
    per_group(&mut y, m * p, fold, |i0, n, yg, scratch, par| {
        let acc = bias.is_some();
        if n > 1 {
            // cols `[k, n·p]` -> out `[m, n·p]` -> each image's `[m, p]`.
            let (np, ld) = (n * p, lead(n * p));
            let buf = scratch_of(scratch, (k + m) * ld);
            let (cols, out) = buf.split_at_mut(k * ld);
            im2col_stacked(g, x, i0, n, cols, ld);
            gemm(
                m,
                np,
                k,
                out,
                np,
                false,
                Mat::rows(w, k),
                Mat::rows(cols, ld),
                par,
            );
            for (b, yi) in yg.chunks_exact_mut(m * p).enumerate() {
                for (ch, row) in yi.chunks_exact_mut(p).enumerate() {
                    let src = &out[ch * np + b * p..][..p];
                    match bias {
                        Some(bv) => row.iter_mut().zip(src).for_each(|(d, &s)| *d = s + bv[ch]),
                        None => row.copy_from_slice(src),
                    }
                }
            }
            return;
        }
        let xi = &x[i0 * g.img()..(i0 + 1) * g.img()];
        if let Some(b) = bias {
            for (row, &bv) in yg.chunks_mut(p).zip(b) {
                row.fill(bv);
            }
        }
        if g.pointwise() {
            gemm(m, p, k, yg, p, acc, Mat::rows(w, k), Mat::rows(xi, p), par);
            return;
        }
        for (oy0, rows) in tiles(g) {
            let t = rows * g.ow;
            let ld = lead(t);
            let cols = scratch_of(scratch, k * ld);
            im2col(g, xi, oy0, rows, cols, ld);
            let dst = &mut yg[oy0 * g.ow..];
            gemm(
                m,
                t,
                k,
                dst,
                p,
                acc,
                Mat::rows(w, k),
                Mat::rows(cols, ld),
                par,
            );
        }
    });
    y
}

/// im2col of whole images `i0..i0 + n` of `x` (`[images, g.img()]`) side by side: `cols` is
/// `[g.k(), n·g.p()]`, rows `ld` apart.
fn im2col_stacked(g: &Geom, x: &[f32], i0: usize, n: usize, cols: &mut [f32], ld: usize) {
    let (p, img) = (g.p(), g.img());
    for b in 0..n {
        im2col(
            g,
            &x[(i0 + b) * img..][..img],
            0,
            g.oh,
            &mut cols[b * p..],
            ld,
        );
    }
}

/// Copies images `i0..i0 + n` of `dy` (`[images, m, p]`) side by side into `dst` (`[m, n·p]`,
/// rows [`lead`]`(n·p)` apart).
fn stack(dy: &[f32], i0: usize, n: usize, m: usize, p: usize, dst: &mut [f32]) {
    let np = lead(n * p);
    for b in 0..n {
        let dyi = &dy[(i0 + b) * m * p..][..m * p];
        for (ch, src) in dyi.chunks_exact(p).enumerate() {
            dst[ch * np + b * p..][..p].copy_from_slice(src);
        }
    }
}

/// `dx[n] = col2im(wᵀ · dy[n])`: `w` is `[m, g.k()]`, `dy` is `[images, m, g.p()]`, the result
/// `[images, g.img()]`.
fn backward_input(g: &Geom, images: usize, w: &[f32], m: usize, dy: &[f32]) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut dx = vec![0.0f32; images * g.img()];
    let fold = fold(g, images);
    per_group(&mut dx, g.img(), fold, |i0, n, dxg, scratch, par| {
        if n > 1 {
            let (np, ld) = (n * p, lead(n * p));
            let buf = scratch_of(scratch, (k + m) * ld);
            let (cols, dys) = buf.split_at_mut(k * ld);
            stack(dy, i0, n, m, p, dys);
            gemm(
                k,
                np,
                m,
                cols,
                ld,
                false,
                Mat::transposed(w, k),
                Mat::rows(dys, ld),
                par,
            );
            for (b, dxi) in dxg.chunks_exact_mut(g.img()).enumerate() {
                col2im_add(g, &cols[b * p..], 0, g.oh, dxi, ld);
            }
            return;
        }
        let dyi = &dy[i0 * m * p..(i0 + 1) * m * p];
        if g.pointwise() {
            gemm(
                k,
                p,
                m,
                dxg,
                p,
                false,
                Mat::transposed(w, k),
                Mat::rows(dyi, p),
                par,
            );
            return;
        }
        for (oy0, rows) in tiles(g) {
            let t = rows * g.ow;
            let ld = lead(t);
            let cols = scratch_of(scratch, k * ld);
            let dyt = Mat::rows(&dyi[oy0 * g.ow..], p);
            gemm(k, t, m, cols, ld, false, Mat::transposed(w, k), dyt, par);
            col2im_add(g, cols, oy0, rows, dxg, ld);
        }
    });
    dx
}

/// `dw = Σ_n dy[n] · im2col(x[n])ᵀ`: `x` is `[images, g.img()]`, `dy` is `[images, m, g.p()]`,
/// the result `[m, g.k()]`.
fn backward_weight(g: &Geom, images: usize, x: &[f32], dy: &[f32], m: usize) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    // Small maps want many images per GEMM (its inner dimension), so fewer, larger groups.
    let groups = (images / fold(g, images)).clamp(1, WEIGHT_GROUPS);
    let fold = fold(g, images.div_ceil(groups));
    // Images `i0..i0 + n` (stacked side by side where `n > 1`) into `acc`.
    let some = |i0: usize, n: usize, acc: &mut [f32], scratch: &mut Vec<f32>, par: Parallelism| {
        if n > 1 {
            let (np, ld) = (n * p, lead(n * p));
            let buf = scratch_of(scratch, (k + m) * ld);
            let (cols, dys) = buf.split_at_mut(k * ld);
            im2col_stacked(g, x, i0, n, cols, ld);
            stack(dy, i0, n, m, p, dys);
            let colst = Mat::transposed(cols, ld);
            gemm(m, k, np, acc, k, true, Mat::rows(dys, ld), colst, par);
            return;
        }
        let xi = &x[i0 * g.img()..(i0 + 1) * g.img()];
        let dyi = &dy[i0 * m * p..(i0 + 1) * m * p];
        if g.pointwise() {
            let dyt = Mat::rows(dyi, p);
            gemm(m, k, p, acc, k, true, dyt, Mat::transposed(xi, p), par);
            return;
        }
        for (oy0, rows) in tiles(g) {
            let t = rows * g.ow;
            let ld = lead(t);
            let cols = scratch_of(scratch, k * ld);
            im2col(g, xi, oy0, rows, cols, ld);
            let dyt = Mat::rows(&dyi[oy0 * g.ow..], p);
            gemm(m, k, t, acc, k, true, dyt, Mat::transposed(cols, ld), par);
        }
    };
    // Fixed image groups, each summed in order (in runs of `fold` images), then the groups in
    // order: the result is the same on every run and every thread count (checkpoints resume
    // bit for bit).
    let group = |gi: usize, par: Parallelism| {
        let mut acc = vec![0.0f32; m * k];
        let mut scratch = Vec::new();
        let (start, end) = (gi * images / groups, (gi + 1) * images / groups);
        let mut i = start;
        while i < end {
            let n = fold.min(end - i);
            some(i, n, &mut acc, &mut scratch, par);
            i += n;
        }
        acc
    };
    #[cfg(feature = "parallel")]
    let partials: Vec<Vec<f32>> = if groups > 1 && threads() > 1 {
        use rayon::prelude::*;
        let precision = crate::precision::current();
        (0..groups)
            .into_par_iter()
            .map(|gi| crate::precision::with(precision, || group(gi, inner_par(groups))))
            .collect()
    } else {
        (0..groups).map(|gi| group(gi, inner_par(groups))).collect()
    };
    #[cfg(not(feature = "parallel"))]
    let partials: Vec<Vec<f32>> = (0..groups).map(|gi| group(gi, Parallelism::None)).collect();
    let mut parts = partials.into_iter();
    let mut acc = parts.next().unwrap_or_else(|| vec![0.0f32; m * k]);
    for part in parts {
        acc.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
    }
    acc
}

/// `db[c] = Σ_{n,p} dy[n][c][p]`: `dy` is `[images, c, plane]`.
fn bias_grad(images: usize, c: usize, plane: usize, dy: &[f32]) -> Vec<f32> {
    let mut db = vec![0.0f32; c];
    for i in 0..images {
        for (ch, d) in db.iter_mut().enumerate() {
            let start = (i * c + ch) * plane;
            let d_plane = &dy[start..start + plane];
            *d += lanes_sum(plane, |k| d_plane[k]) as f32;
        }
    }
    db
}

/// `Σ f(i)` for `i < n` in 16 f32 lanes (vectorises, where a plain `sum` adds one by one), the
/// lanes then added in f64.
#[inline]
pub(crate) fn lanes_sum(n: usize, f: impl Fn(usize) -> f32) -> f64 {
    const L: usize = 16;
    let mut acc = [0.0f32; L];
    let full = n / L * L;
    for i in (0..full).step_by(L) {
        for (j, a) in acc.iter_mut().enumerate() {
            *a += f(i + j);
        }
    }
    let mut s: f64 = acc.iter().map(|&v| v as f64).sum();
    for i in full..n {
        s += f(i) as f64;
    }
    s
}

/// Which of the two ops, its geometry, batch size and weight rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Spec {
    transpose: bool,
    g: Geom,
    images: usize,
    /// Weight rows: `C_out` of a convolution, `C_in` of a transposed convolution.
    m: usize,
}

impl Spec {
    /// `[N, C, H, W]` of the op's input.
    fn input_shape(&self) -> [usize; 4] {
        let g = &self.g;
        if self.transpose {
            [self.images, self.m, g.oh, g.ow]
        } else {
            [self.images, g.c, g.h, g.w]
        }
    }
    /// `[N, C, H, W]` of the op's output.
    fn output_shape(&self) -> [usize; 4] {
        let g = &self.g;
        if self.transpose {
            [self.images, g.c, g.h, g.w]
        } else {
            [self.images, self.m, g.oh, g.ow]
        }
    }
    /// Burn's weight shape: `[C_out, C_in, kh, kw]` or, transposed, `[C_in, C_out, kh, kw]`.
    fn weight_shape(&self) -> [usize; 4] {
        [self.m, self.g.c, self.g.kh, self.g.kw]
    }

    /// Output `[N, C_out, OH, OW]` from input, weight and bias on the CPU.
    fn forward(&self, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
        let g = &self.g;
        if self.transpose {
            let mut y = backward_input(g, self.images, w, self.m, x);
            if let Some(b) = b {
                let plane = g.h * g.w;
                for (i, chunk) in y.chunks_mut(plane).enumerate() {
                    let bv = b[i % g.c];
                    chunk.iter_mut().for_each(|v| *v += bv);
                }
            }
            y
        } else if self.winograd() {
            winograd::forward(g, self.images, x, w, self.m, b)
        } else {
            forward(g, self.images, x, w, self.m, b)
        }
    }

    fn grad_input(&self, w: &[f32], dy: &[f32]) -> Vec<f32> {
        if self.transpose {
            forward(&self.g, self.images, dy, w, self.m, None)
        } else if self.winograd() {
            winograd::backward_input(&self.g, self.images, w, self.m, dy)
        } else {
            backward_input(&self.g, self.images, w, self.m, dy)
        }
    }

    fn grad_weight(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        if self.transpose {
            backward_weight(&self.g, self.images, dy, x, self.m)
        } else if self.winograd() {
            winograd::backward_weight(&self.g, self.images, x, dy, self.m)
        } else {
            backward_weight(&self.g, self.images, x, dy, self.m)
        }
    }

    /// A 3x3, stride-1, padding-1 convolution: Winograd kernels ([`winograd`]).
    fn winograd(&self) -> bool {
        !self.transpose && winograd::applies(&self.g, self.m)
    }

    /// The input gradient if `w` is given, the weight gradient if `x` is (Winograd layers
    /// share one transform of `dy` between the two).
    #[cfg(feature = "autodiff")]
    fn grads(
        &self,
        w: Option<&[f32]>,
        x: Option<&[f32]>,
        dy: &[f32],
    ) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
        if self.winograd() {
            let (dx, dw) = winograd::backward(&self.g, self.images, x, w, self.m, dy);
            return (w.map(|_| dx), x.map(|_| dw));
        }
        (
            w.map(|w| self.grad_input(w, dy)),
            x.map(|x| self.grad_weight(x, dy)),
        )
    }

    fn grad_bias(&self, dy: &[f32]) -> Vec<f32> {
        let [n, c, h, w] = self.output_shape();
        bias_grad(n, c, h * w, dy)
    }
}

/// Spec of a `Conv2d` applied to `x`, or `None` where these kernels don't apply.
fn conv_spec(conv: &Conv2d, dims: [usize; 4]) -> Option<Spec> {
    let [n, c, h, w] = dims;
    let [m, cw, kh, kw] = conv.weight.dims();
    let (ph, pw) = match &conv.padding {
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Explicit(t, l, b, r) if t == b && l == r => (*t, *l),
        _ => return None,
    };
    let [sh, sw] = conv.stride;
    if conv.groups != 1 || conv.dilation != [1, 1] || cw != c || sh == 0 || sw == 0 {
        return None;
    }
    if h + 2 * ph < kh || w + 2 * pw < kw {
        return None;
    }
    let (oh, ow) = ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1);
    let g = Geom {
        c,
        h,
        w,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
        oh,
        ow,
    };
    Some(Spec {
        transpose: false,
        g,
        images: n,
        m,
    })
}

/// Spec of a `ConvTranspose2d` applied to `x`, or `None` where these kernels don't apply.
fn conv_transpose_spec(conv: &ConvTranspose2d, dims: [usize; 4]) -> Option<Spec> {
    let [n, c, h, w] = dims;
    let [m, co, kh, kw] = conv.weight.dims();
    let [sh, sw] = conv.stride;
    let [ph, pw] = conv.padding;
    let [oph, opw] = conv.padding_out;
    if conv.groups != 1 || conv.dilation != [1, 1] || m != c || sh == 0 || sw == 0 {
        return None;
    }
    if h == 0 || w == 0 || oph >= sh || opw >= sw {
        return None;
    }
    let oh = ((h - 1) * sh + kh + oph).checked_sub(2 * ph)?;
    let ow = ((w - 1) * sw + kw + opw).checked_sub(2 * pw)?;
    // The equivalent convolution maps the [co, oh, ow] output back onto [c, h, w].
    let g = Geom {
        c: co,
        h: oh,
        w: ow,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
        oh: h,
        ow: w,
    };
    if oh + 2 * ph < kh || (oh + 2 * ph - kh) / sh + 1 != h || (ow + 2 * pw - kw) / sw + 1 != w {
        return None;
    }
    Some(Spec {
        transpose: true,
        g,
        images: n,
        m,
    })
}

pub(crate) fn f32_tensor(t: &FlexTensor) -> Option<&[f32]> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let (start, end) = t.layout().contiguous_offsets()?;
    Some(&t.storage::<f32>()[start..end])
}

pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    match f32_tensor(&t) {
        Some(_) => t,
        None => t.to_contiguous(),
    }
}

fn flex_tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

fn flex_vec(data: Vec<f32>, len: usize) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, [len]))
}

/// Runs the forward pass on Flex primitives; `None` if a tensor isn't f32.
fn flex_forward(
    spec: &Spec,
    x: FlexTensor,
    w: FlexTensor,
    b: Option<FlexTensor>,
) -> Option<FlexTensor> {
    let (x, w) = (contiguous(x), contiguous(w));
    let b = b.map(contiguous);
    let bias = match &b {
        Some(b) => Some(f32_tensor(b)?),
        None => None,
    };
    let y = spec.forward(f32_tensor(&x)?, f32_tensor(&w)?, bias);
    Some(flex_tensor(y, spec.output_shape()))
}

/// `conv.forward(x)`, computed by these kernels on the Flex device.
///
/// - `x`: `[N, C_in, H, W]`
/// - returns `[N, C_out, OH, OW]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match conv_spec(conv, x.dims()) {
        Some(spec) => run(
            spec,
            x,
            conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
        )
        .unwrap_or_else(|x| conv.forward(x)),
        None => conv.forward(x),
    }
}

/// `conv.forward(x)` for a transposed convolution, computed by these kernels on the Flex device.
///
/// - `x`: `[N, C_in, H, W]`
/// - returns `[N, C_out, (H-1)·s - 2p + k + out_pad, …]`
pub fn conv_transpose2d(conv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    match conv_transpose_spec(conv, x.dims()) {
        Some(spec) => run(
            spec,
            x,
            conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
        )
        .unwrap_or_else(|x| conv.forward(x)),
        None => conv.forward(x),
    }
}

/// Runs `spec` on the Flex device (plain or autodiff); gives `x` back where it can't.
// The error is the caller's input, handed back unboxed for Burn's own op.
#[allow(clippy::result_large_err)]
fn run(
    spec: Spec,
    x: Tensor<4>,
    w: Tensor<4>,
    b: Option<Tensor<1>>,
) -> Result<Tensor<4>, Tensor<4>> {
    if w.dims() != spec.weight_shape() {
        return Err(x);
    }
    match x.device().as_dispatch() {
        DispatchDevice::Flex(_) => {}
        #[cfg(feature = "autodiff")]
        DispatchDevice::Autodiff(inner) if matches!(**inner, DispatchDevice::Flex(_)) => {
            return autodiff::run(spec, x, w, b);
        }
        // Unreachable where Flex is the only backend compiled in (the page's CPU module).
        #[allow(unreachable_patterns)]
        _ => return Err(x),
    }
    let prim = |t: Tensor<4>| t.try_into_primitive::<Flex>().ok();
    let (Some(xp), Some(wp)) = (prim(x.clone()), prim(w)) else {
        return Err(x);
    };
    let bp = match b {
        Some(b) => match b.try_into_primitive::<Flex>() {
            Ok(b) => Some(b),
            Err(_) => return Err(x),
        },
        None => None,
    };
    match flex_forward(&spec, xp, wp, bp) {
        Some(y) => Ok(Tensor::from_primitive::<Flex>(y)),
        None => Err(x),
    }
}

#[cfg(feature = "autodiff")]
mod autodiff {
    //! The same kernels as one autodiff node, so the backward pass uses them too.

    use super::*;
    use burn::backend::Autodiff;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};

    type Ad = Autodiff<Flex, NoCheckpointing>;

    #[derive(Debug)]
    struct WithBias;
    #[derive(Debug)]
    struct NoBias;

    /// Registers the gradients the graph asks for: input, weight, and (if any) bias.
    fn backward(
        spec: &Spec,
        x: FlexTensor,
        w: FlexTensor,
        dy: FlexTensor,
        grads: &mut Gradients,
        nodes: [Option<NodeId>; 3],
    ) {
        let (x, w, dy) = (contiguous(x), contiguous(w), contiguous(dy));
        // All three were f32 in the forward pass and gradients keep the dtype.
        let (xs, ws, dys) = (
            f32_tensor(&x).expect("f32 input"),
            f32_tensor(&w).expect("f32 weight"),
            f32_tensor(&dy).expect("f32 gradient"),
        );
        let [x_node, w_node, b_node] = nodes;
        let (dx, dw) = spec.grads(
            x_node.is_some().then_some(ws),
            w_node.is_some().then_some(xs),
            dys,
        );
        if let (Some(id), Some(dx)) = (x_node, dx) {
            grads.register::<Flex>(id, flex_tensor(dx, spec.input_shape()));
        }
        if let (Some(id), Some(dw)) = (w_node, dw) {
            grads.register::<Flex>(id, flex_tensor(dw, spec.weight_shape()));
        }
        if let Some(id) = b_node {
            let db = spec.grad_bias(dys);
            let len = db.len();
            grads.register::<Flex>(id, flex_vec(db, len));
        }
    }

    impl Backward<Flex, 3> for WithBias {
        type State = (NodeId, NodeId, Spec);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
            let [nx, nw, nb] = ops.parents;
            let dy = grads.consume::<Flex>(&ops.node);
            let (xs, ws, spec) = ops.state;
            let x = ck.retrieve_node_output::<FlexTensor>(xs);
            let w = ck.retrieve_node_output::<FlexTensor>(ws);
            let ids = [nx.map(|n| n.id), nw.map(|n| n.id), nb.map(|n| n.id)];
            backward(&spec, x, w, dy, grads, ids);
        }
    }

    impl Backward<Flex, 2> for NoBias {
        type State = (NodeId, NodeId, Spec);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
            let [nx, nw] = ops.parents;
            let dy = grads.consume::<Flex>(&ops.node);
            let (xs, ws, spec) = ops.state;
            let x = ck.retrieve_node_output::<FlexTensor>(xs);
            let w = ck.retrieve_node_output::<FlexTensor>(ws);
            let ids = [nx.map(|n| n.id), nw.map(|n| n.id), None];
            backward(&spec, x, w, dy, grads, ids);
        }
    }

    #[allow(clippy::result_large_err)]
    pub(super) fn run(
        spec: Spec,
        x: Tensor<4>,
        w: Tensor<4>,
        b: Option<Tensor<1>>,
    ) -> Result<Tensor<4>, Tensor<4>> {
        let prim = |t: Tensor<4>| t.try_into_primitive::<Ad>().ok();
        let (Some(xa), Some(wa)) = (prim(x.clone()), prim(w)) else {
            return Err(x);
        };
        let ba = match b {
            Some(b) => match b.try_into_primitive::<Ad>() {
                Ok(b) => Some(b),
                Err(_) => return Err(x),
            },
            None => None,
        };
        // Dtypes only: `flex_forward` makes the tensors contiguous once, below.
        let f32_all = xa.primitive().dtype() == DType::F32
            && wa.primitive().dtype() == DType::F32
            && ba
                .as_ref()
                .is_none_or(|b| b.primitive().dtype() == DType::F32);
        if !f32_all {
            return Err(x);
        }
        let forward = |bp: Option<FlexTensor>| {
            flex_forward(&spec, xa.primitive().clone(), wa.primitive().clone(), bp)
                .expect("f32 checked above")
        };
        let out = match ba {
            Some(ba) => match WithBias
                .prepare::<NoCheckpointing>([xa.node(), wa.node(), ba.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let xs = prep.checkpoint(&xa);
                    let ws = prep.checkpoint(&wa);
                    let y = forward(Some(ba.primitive().clone()));
                    prep.finish((xs, ws, spec), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(Some(ba.primitive().clone()))),
            },
            None => match NoBias
                .prepare::<NoCheckpointing>([xa.node(), wa.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let xs = prep.checkpoint(&xa);
                    let ws = prep.checkpoint(&wa);
                    let y = forward(None);
                    prep.finish((xs, ws, spec), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(None)),
            },
        };
        Ok(Tensor::from_primitive::<Ad>(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::Distribution;

    /// How far a layer may be from Burn's op: float rounding, or Winograd's larger rounding.
    fn tolerance(spec: &Spec) -> f32 {
        if spec.winograd() {
            winograd::tests::TOLERANCE
        } else {
            1e-5
        }
    }

    /// `len` pseudo-random values in `[-0.5, 0.5)` from `seed`.
    fn half_random(len: usize, seed: u64) -> Vec<f32> {
        winograd::tests::random(len, seed)
            .into_iter()
            .map(|v| v * 0.5)
            .collect()
    }

    fn max_rel_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-3);
        (a - b).abs().max().into_scalar::<f32>() / scale
    }

    fn convs(device: &Device) -> Vec<(Conv2d, [usize; 4])> {
        let c = |ci, co, k, s, p, bias| {
            Conv2dConfig::new([ci, co], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(bias)
                .init(device)
        };
        vec![
            (c(5, 7, 3, 1, 1, true), [3, 5, 8, 8]),
            (c(4, 6, 4, 2, 1, false), [2, 4, 9, 10]),
            (c(3, 5, 3, 2, 1, true), [2, 3, 7, 7]),
            (c(6, 4, 1, 1, 0, true), [3, 6, 5, 4]),
            (c(2, 3, 3, 1, 0, true), [1, 2, 6, 5]),
            (c(3, 2, 4, 1, 0, false), [2, 3, 4, 4]),
            // Stride-2 rows of 8..16 positions (the 8-wide gather blocks).
            (c(4, 6, 4, 2, 1, true), [3, 4, 20, 22]),
            // Big enough for several im2col row tiles (or Winograd groups).
            (c(64, 8, 3, 1, 1, true), [2, 64, 48, 40]),
            // Winograd with partial tiles (9 x 7).
            (c(16, 16, 3, 1, 1, false), [3, 16, 9, 7]),
        ]
    }

    fn transposed(device: &Device) -> Vec<(ConvTranspose2d, [usize; 4])> {
        let c = |ci, co, k, s, p, op, bias| {
            ConvTranspose2dConfig::new([ci, co], [k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .with_padding_out([op, op])
                .with_bias(bias)
                .init(device)
        };
        vec![
            (c(6, 4, 4, 2, 1, 0, false), [3, 6, 4, 5]),
            (c(8, 5, 4, 1, 0, 0, true), [2, 8, 1, 1]),
            (c(4, 3, 3, 2, 1, 1, true), [2, 4, 5, 5]),
            (c(3, 2, 3, 1, 1, 0, true), [1, 3, 6, 6]),
            // Several row tiles of the equivalent convolution.
            (c(8, 32, 4, 2, 1, 0, true), [2, 8, 32, 32]),
        ]
    }

    #[test]
    fn forward_matches_burn_on_flex() {
        let device = Device::flex();
        for (conv, dims) in convs(&device) {
            let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            let spec = conv_spec(&conv, dims).expect("supported");
            let b = conv.bias.as_ref().map(|b| b.val());
            let ours = run(spec, x.clone(), conv.weight.val(), b).expect("fast path ran");
            let d = max_rel_diff(ours, conv.forward(x));
            assert!(d < tolerance(&spec), "conv {dims:?}: {d}");
        }
        for (conv, dims) in transposed(&device) {
            let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            let spec = conv_transpose_spec(&conv, dims).expect("supported");
            let b = conv.bias.as_ref().map(|b| b.val());
            let ours = run(spec, x.clone(), conv.weight.val(), b).expect("fast path ran");
            let d = max_rel_diff(ours, conv.forward(x));
            assert!(d < 1e-5, "transposed {dims:?}: {d}");
        }
    }

    #[test]
    fn three_by_three_layers_with_channels_take_winograd() {
        let device = Device::flex();
        let specs: Vec<Spec> = convs(&device)
            .iter()
            .map(|(conv, dims)| conv_spec(conv, *dims).unwrap())
            .collect();
        let winograd: Vec<bool> = specs.iter().map(Spec::winograd).collect();
        // Only the two last cases are 3x3, stride 1, padding 1 with 8+ channels on both sides.
        let n = winograd.len();
        assert_eq!(winograd[n - 2..], [true, true]);
        assert!(winograd[..n - 2].iter().all(|w| !w));
    }

    #[test]
    fn the_big_cases_take_several_tiles() {
        let device = Device::flex();
        let mut all = convs(&device);
        let (conv, dims) = all.swap_remove(all.len() - 2);
        assert!(tiles(&conv_spec(&conv, dims).unwrap().g).count() > 1);
        let (conv, dims) = transposed(&device).pop().unwrap();
        let g = conv_transpose_spec(&conv, dims).unwrap().g;
        let t: Vec<_> = tiles(&g).collect();
        assert!(t.len() > 1);
        assert_eq!(t.iter().map(|t| t.1).sum::<usize>(), g.oh);
    }

    #[cfg(feature = "parallel")]
    #[test]
    fn small_maps_share_a_gemm_and_big_ones_do_not() {
        let g = |c: usize, side: usize| Geom {
            c,
            h: side * 2,
            w: side * 2,
            kh: 4,
            kw: 4,
            sh: 2,
            sw: 2,
            ph: 1,
            pw: 1,
            oh: side,
            ow: side,
        };
        // 4x4 outputs of 128 channels: 16 columns each, 4 images fit a tile.
        assert_eq!(fold(&g(128, 4), 64), 4);
        assert_eq!(fold(&g(128, 4), 3), 3);
        assert_eq!(fold(&g(128, 4), 1), 1);
        // 32x32 outputs already make wide GEMMs.
        assert_eq!(fold(&g(32, 32), 64), 1);
        for (c, side) in [(3, 1), (8, 2), (64, 8), (512, 4)] {
            let f = fold(&g(c, side), 64);
            assert!((1..=64).contains(&f));
            assert!(f == 1 || f * g(c, side).k() * side * side <= TILE_FLOATS);
        }
    }

    #[test]
    fn weight_gradient_is_the_same_on_any_thread_count() {
        let g = Geom {
            c: 5,
            h: 9,
            w: 7,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            ph: 1,
            pw: 1,
            oh: 9,
            ow: 7,
        };
        let images = 13;
        let x = half_random(images * g.img(), 7);
        let dy = half_random(images * 4 * g.p(), 8);
        let on = |threads: usize| on_threads(threads, || backward_weight(&g, images, &x, &dy, 4));
        let one = on(1);
        assert_eq!(one, on(2));
        assert_eq!(one, on(3));
        assert!(one.iter().any(|v| *v != 0.0));
    }

    #[test]
    fn unsupported_options_fall_back_to_burn() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(2)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        assert!(conv_spec(&conv, [1, 4, 6, 6]).is_none());
        let x = Tensor::<4>::random([1, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let d = max_rel_diff(conv2d(&conv, x.clone()), conv.forward(x));
        assert_eq!(d, 0.0);
        let dilated = Conv2dConfig::new([2, 2], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        assert!(conv_spec(&dilated, [1, 2, 8, 8]).is_none());
    }

    #[test]
    fn valid_range_agrees_with_brute_force() {
        for out in 0..6 {
            for s in 1..4 {
                for k in 0..5 {
                    for pad in 0..4 {
                        for n in 0..7 {
                            let ok: Vec<usize> = (0..out)
                                .filter(|&o| {
                                    let i = (o * s + k) as isize - pad as isize;
                                    i >= 0 && i < n as isize
                                })
                                .collect();
                            let (lo, hi) = valid_range(out, s, k, pad, n);
                            assert_eq!(ok, (lo..hi).collect::<Vec<_>>(), "{out} {s} {k} {pad} {n}");
                        }
                    }
                }
            }
        }
    }

    /// col2im by brute force: every column element added onto the pixel it was read from.
    fn scatter(g: &Geom, cols: &[f32], oy0: usize, rows: usize, ld: usize) -> Vec<f32> {
        let mut x = vec![0.0f32; g.img()];
        for c in 0..g.c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    for r in 0..rows {
                        for ox in 0..g.ow {
                            let iy = ((oy0 + r) * g.sh + ky) as isize - g.ph as isize;
                            let ix = (ox * g.sw + kx) as isize - g.pw as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let v = cols[((c * g.kh + ky) * g.kw + kx) * ld + r * g.ow + ox];
                            x[(c * g.h + iy as usize) * g.w + ix as usize] += v;
                        }
                    }
                }
            }
        }
        x
    }

    #[test]
    fn col2im_matches_a_scatter_for_every_tile() {
        // Stride 2 with a 4-wide kernel sums its taps with `four_taps`; the others by pairs or one by one.
        for (i, (h, w, k, s, p)) in [
            (8, 8, 4, 2, 1),
            (9, 10, 4, 2, 1),
            (7, 5, 4, 2, 0),
            (6, 11, 4, 2, 2),
            (4, 4, 4, 2, 1),
            (9, 9, 3, 2, 1),
            (6, 7, 3, 1, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            let g = Geom {
                c: 2,
                h,
                w,
                kh: k,
                kw: k,
                sh: s,
                sw: s,
                ph: p,
                pw: p,
                oh,
                ow,
            };
            let row_ranges = [(0, oh), (0, 1), (1, oh - 1), (oh - 1, 1)];
            for (j, (oy0, rows)) in row_ranges.into_iter().enumerate() {
                let ld = rows * ow + 3;
                let cols = half_random(g.k() * ld, (4 * i + j) as u64);
                let mut x = vec![0.0f32; g.img()];
                col2im_add(&g, &cols, oy0, rows, &mut x, ld);
                let want = scatter(&g, &cols, oy0, rows, ld);
                for (a, b) in x.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-6, "{g:?} rows {oy0}+{rows}: {a} vs {b}");
                }
            }
        }
    }

    /// Gradients of `sum(y * r)` for a fixed random `r`, w.r.t. input, weight and bias.
    #[cfg(feature = "autodiff")]
    fn grads(
        y: Tensor<4>,
        r: &Tensor<4>,
        x: &Tensor<4>,
        w: &Tensor<4>,
        b: Option<&Tensor<1>>,
    ) -> (Tensor<4>, Tensor<4>, Option<Tensor<1>>) {
        let g = (y * r.clone()).sum().backward();
        (
            x.grad(&g).expect("x grad"),
            w.grad(&g).expect("w grad"),
            b.map(|b| b.grad(&g).expect("b grad")),
        )
    }

    #[cfg(feature = "autodiff")]
    fn check_grads(
        spec: Spec,
        w0: Tensor<4>,
        b0: Option<Tensor<1>>,
        dims: [usize; 4],
        burn_op: impl Fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>) -> Tensor<4>,
    ) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let w = Tensor::<4>::from_data(w0.into_data(), &device).require_grad();
        let b = b0.map(|b| Tensor::<1>::from_data(b.into_data(), &device).require_grad());
        let reference = burn_op(x.clone(), w.clone(), b.clone());
        let r = Tensor::<4>::random(reference.dims(), Distribution::Normal(0.0, 1.0), &device);
        let (rx, rw, rb) = grads(reference.clone(), &r, &x, &w, b.as_ref());
        let ours = run(spec, x.clone(), w.clone(), b.clone()).expect("fast path ran");
        let fwd = max_rel_diff(ours.clone().inner(), reference.inner());
        assert!(fwd < tolerance(&spec), "{spec:?}: forward {fwd}");
        let (ox, ow, ob) = grads(ours, &r, &x, &w, b.as_ref());
        let dx = max_rel_diff(ox.inner(), rx.inner());
        let dw = max_rel_diff(ow.inner(), rw.inner());
        assert!(dx < 1e-4 && dw < 1e-4, "{spec:?}: dx {dx}, dw {dw}");
        if let (Some(ob), Some(rb)) = (ob, rb) {
            let db = (ob.inner() - rb.clone().inner())
                .abs()
                .max()
                .into_scalar::<f32>()
                / rb.inner().abs().max().into_scalar::<f32>().max(1e-3);
            assert!(db < 1e-4, "{spec:?}: db {db}");
        }
    }

    #[cfg(feature = "autodiff")]
    #[test]
    fn gradients_match_burn() {
        let device = Device::flex();
        for (conv, dims) in convs(&device) {
            let spec = conv_spec(&conv, dims).expect("supported");
            let o = burn::tensor::ops::ConvOptions::new(
                conv.stride,
                [spec.g.ph, spec.g.pw],
                conv.dilation,
                conv.groups,
            );
            check_grads(
                spec,
                conv.weight.val(),
                conv.bias.as_ref().map(|b| b.val()),
                dims,
                |x, w, b| burn::tensor::module::conv2d(x, w, b, o.clone()),
            );
        }
        for (conv, dims) in transposed(&device) {
            let spec = conv_transpose_spec(&conv, dims).expect("supported");
            let o = burn::tensor::ops::ConvTransposeOptions::new(
                conv.stride,
                conv.padding,
                conv.padding_out,
                conv.dilation,
                conv.groups,
            );
            check_grads(
                spec,
                conv.weight.val(),
                conv.bias.as_ref().map(|b| b.val()),
                dims,
                |x, w, b| burn::tensor::module::conv_transpose2d(x, w, b, o.clone()),
            );
        }
    }

    /// At bf16 the forward and both backward passes round their GEMM operands: every result moves
    /// (so the backward passes, run by Burn's autodiff, saw the setting too), by bf16 rounding
    /// and not more, and is the same on 1 and 3 threads. Without AVX-512 BF16: fp32, bit for bit.
    #[cfg(all(feature = "autodiff", feature = "parallel"))]
    #[test]
    fn bf16_is_close_to_fp32_and_the_same_on_any_threads() {
        use crate::precision::{self, Precision};
        let device = Device::flex();
        let mut cases: Vec<(Spec, Tensor<4>, Option<Tensor<1>>, [usize; 4])> = Vec::new();
        for (conv, dims) in convs(&device) {
            let spec = conv_spec(&conv, dims).expect("supported");
            cases.push((spec, conv.weight.val(), conv.bias.map(|b| b.val()), dims));
        }
        for (conv, dims) in transposed(&device) {
            let spec = conv_transpose_spec(&conv, dims).expect("supported");
            cases.push((spec, conv.weight.val(), conv.bias.map(|b| b.val()), dims));
        }
        let ad = Device::flex().autodiff();
        let on = |t: Tensor<4>| Tensor::<4>::from_data(t.into_data(), &ad);
        for (spec, w0, b0, dims) in cases {
            let n = dims.iter().product();
            let x = on(Tensor::from_data(
                TensorData::new(half_random(n, 7), dims),
                &device,
            ));
            let (x, w) = (x.require_grad(), on(w0).require_grad());
            let b = b0.map(|b| Tensor::<1>::from_data(b.into_data(), &ad).require_grad());
            let y_dims = run(spec, x.clone(), w.clone(), b.clone())
                .expect("ran")
                .dims();
            let len = y_dims.iter().product();
            let r = on(Tensor::from_data(
                TensorData::new(half_random(len, 9), y_dims),
                &device,
            ));
            let eval = |p: Precision| {
                precision::with(p, || {
                    let y = run(spec, x.clone(), w.clone(), b.clone()).expect("ran");
                    let (gx, gw, _) = grads(y.clone(), &r, &x, &w, b.as_ref());
                    [y.inner(), gx.inner(), gw.inner()]
                })
            };
            let fp32 = eval(Precision::Fp32);
            let values = |v: [Tensor<4>; 3]| v.map(|t| t.into_data().try_to_vec::<f32>().unwrap());
            let one = values(on_threads(1, || eval(Precision::Bf16)));
            let three = values(on_threads(3, || eval(Precision::Bf16)));
            assert!(one == three, "{spec:?}: bf16 results depend on the threads");
            for (i, (f, h)) in values(fp32.clone()).iter().zip(&one).enumerate() {
                let scale = f.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                let diff = f.iter().zip(h).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                if precision::bf16_supported() {
                    assert!(diff > 0.0, "{spec:?} output {i}: bf16 changed nothing");
                    assert!(diff / scale < 2e-2, "{spec:?} output {i}: {}", diff / scale);
                } else {
                    assert_eq!(diff, 0.0, "{spec:?} output {i}: fp32 fallback differs");
                }
            }
        }
    }
}
