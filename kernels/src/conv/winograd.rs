//! Winograd convolutions F(T×T, 3×3) for 3x3, stride-1, padding-1 layers (the residual trunks,
//! the upsampling stages and the critic blocks): every `T x T` block of outputs comes from a
//! `(T+2) x (T+2)` block of input through `Y = Aᵀ [(G W Gᵀ) ⊙ (Bᵀ X B)] A` (Lavin & Gray, 2016),
//! so the multiply-adds become one GEMM per transform position `ξ` over channels:
//!
//! - forward: `M_ξ = V_ξ · U_ξᵀ` with `V = Bᵀ X B` (`[tiles, C_in]` per ξ) and `U = G W Gᵀ`
//!   (`[C_out, C_in]` per ξ), then `Y = Aᵀ M A` per tile;
//! - input gradient (the adjoint of every step, in reverse): `dM = A dY Aᵀ`, `dV_ξ = dM_ξ · U_ξ`,
//!   `dX = Σ_tiles B dV Bᵀ`;
//! - weight gradient: `dU_ξ = Σ dM_ξᵀ · V_ξ`, `dW = Gᵀ dU G`.
//!
//! With `T = 4` that is 36 products per 16 outputs instead of 144 (4x fewer multiply-adds); the
//! transforms are additions and small constant factors. Results differ from a direct sum by up
//! to ~1.5e-5 of the largest output (F(4x4, 3x3)'s transforms scale by up to 8 and 1/24).
//!
//! The transforms work on 16 channels at a time, so a group's images are first copied
//! channels-last (and zero-padded), and results copied back to NCHW. Images are processed in
//! groups whose tiles fill one GEMM, spread over threads; the weight gradient is summed over
//! fixed image groups in a fixed order, so results do not depend on the thread count.

use super::{Geom, Mat, WEIGHT_GROUPS, gemm, inner_par, per_group, scratch_of, with_scratch};
use gemm::Parallelism;

/// Output tile side.
const T: usize = 4;
/// Input tile side.
const A: usize = T + 2;
/// Transform positions per tile.
const POS: usize = A * A;

/// `Bᵀ` for the interpolation points 0, ±1, ±2 (and ∞). The kernels use its rows written out
/// ([`bt_1d`], [`b_1d`]); tests check them against this matrix.
#[cfg_attr(not(test), allow(dead_code))]
const BT: [[f32; A]; A] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];
/// `G`: kernel transform.
const G: [[f32; 3]; A] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];
/// `Aᵀ`: output transform ([`at_1d`], [`a_1d`] written out).
#[cfg_attr(not(test), allow(dead_code))]
const AT: [[f32; A]; T] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// Fewest channels on either side for which this beats im2col + GEMM (below it the GEMMs are
/// too thin to profit from fewer multiply-adds).
const MIN_CHANNELS: usize = 8;
/// Tiles one group aims for (columns of each GEMM).
const GROUP_TILES: usize = 128;
/// Upper bound on one transformed buffer (`POS · channels · tiles` floats, ~2 MiB).
const GROUP_FLOATS: usize = 512 * 1024;

/// Whether `g` (with `m` output channels) is a layer these kernels compute.
pub(super) fn applies(g: &Geom, m: usize) -> bool {
    (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (3, 3, 1, 1, 1, 1)
        && (g.oh, g.ow) == (g.h, g.w)
        && g.h > 0
        && g.w > 0
        && g.c >= MIN_CHANNELS
        && m >= MIN_CHANNELS
}

/// Tile rows and columns of one image.
fn tile_grid(g: &Geom) -> (usize, usize) {
    (g.h.div_ceil(T), g.w.div_ceil(T))
}

/// Images per group: enough tiles for a wide GEMM, few enough to keep the buffers small.
fn group_images(g: &Geom, m: usize, images: usize) -> usize {
    let (th, tw) = tile_grid(g);
    let per = th * tw;
    let by_tiles = GROUP_TILES.div_ceil(per);
    let by_mem = GROUP_FLOATS / (POS * g.c.max(m) * per);
    let most = by_tiles.min(by_mem).min(images).max(1);
    // As many groups as that needs, evenly sized (not one big group and a small rest).
    images.div_ceil(images.div_ceil(most).max(1)).max(1)
}

/// `dst = Σ_r coef[r] · src[r]` over vectors.
#[inline(always)]
fn mix(coef: &[f32], src: &[&[f32]], dst: &mut [f32]) {
    dst.fill(0.0);
    for (&f, s) in coef.iter().zip(src) {
        if f != 0.0 {
            dst.iter_mut().zip(*s).for_each(|(d, &v)| *d += f * v);
        }
    }
}

/// `U_ξ[co][ci] = (G · w[co][ci] · Gᵀ)_ξ`: `w` is `[m, c, 3, 3]`, the result `[POS, m, c]`.
/// Vectorised over `ci` (each output channel's kernels transposed to `[9, c]` first).
#[inline(always)]
fn weight_transform_impl(w: &[f32], m: usize, c: usize, u: &mut [f32]) {
    let mut wt = vec![0.0f32; 9 * c];
    let mut gw = vec![0.0f32; A * 3 * c];
    for (oc, k) in w.chunks_exact(9 * c).enumerate() {
        transpose(k, 9, &mut wt, c, c, 9);
        // gw[ξy][kx] = Σ_ky G[ξy][ky] · w[ky][kx]
        for (xi, gi) in G.iter().enumerate() {
            for kx in 0..3 {
                let src = [0, 1, 2].map(|ky| &wt[(ky * 3 + kx) * c..][..c]);
                mix(gi, &src, &mut gw[(xi * 3 + kx) * c..][..c]);
            }
        }
        for xi in 0..A {
            let src = [0, 1, 2].map(|kx| &gw[(xi * 3 + kx) * c..][..c]);
            for (xj, gj) in G.iter().enumerate() {
                mix(gj, &src, &mut u[((xi * A + xj) * m + oc) * c..][..c]);
            }
        }
    }
}

/// `dW[co][ci] = Gᵀ · dU[co][ci] · G`: `du` is `[POS, m, c]`, the result `[m, c, 3, 3]`.
#[inline(always)]
fn weight_gradient_impl(du: &[f32], m: usize, c: usize, dw: &mut [f32]) {
    let mut t = vec![0.0f32; A * 3 * c];
    let mut d9 = vec![0.0f32; 9 * c];
    let gt: [[f32; A]; 3] = std::array::from_fn(|k| std::array::from_fn(|xi| G[xi][k]));
    for (oc, k) in dw.chunks_exact_mut(9 * c).enumerate() {
        // t[ξy][kx] = Σ_ξx dU[ξy][ξx] · G[ξx][kx]
        for xi in 0..A {
            let src: [&[f32]; A] =
                std::array::from_fn(|xj| &du[((xi * A + xj) * m + oc) * c..][..c]);
            for (kx, g) in gt.iter().enumerate() {
                mix(g, &src, &mut t[(xi * 3 + kx) * c..][..c]);
            }
        }
        for kx in 0..3 {
            let src: [&[f32]; A] = std::array::from_fn(|xi| &t[(xi * 3 + kx) * c..][..c]);
            for (ky, g) in gt.iter().enumerate() {
                mix(g, &src, &mut d9[(ky * 3 + kx) * c..][..c]);
            }
        }
        transpose(&d9, c, k, 9, 9, c);
    }
}

simd_dispatch! {
    fn weight_transform_into(w: &[f32], m: usize, c: usize, u: &mut [f32]) => weight_transform_impl
}
simd_dispatch! {
    fn weight_gradient_into(du: &[f32], m: usize, c: usize, dw: &mut [f32]) => weight_gradient_impl
}

fn weight_transform(w: &[f32], m: usize, c: usize) -> Vec<f32> {
    let mut u = vec![0.0f32; POS * m * c];
    weight_transform_into(w, m, c, &mut u);
    u
}

fn weight_gradient(du: &[f32], m: usize, c: usize) -> Vec<f32> {
    let mut dw = vec![0.0f32; m * c * 9];
    weight_gradient_into(du, m, c, &mut dw);
    dw
}

/// `dst[j·dst_rs + i] = src[i·src_rs + j]` for `i < rows`, `j < cols`: 8x8 blocks through
/// registers (AVX shuffles where the CPU has AVX), then the edges one by one.
#[inline(always)]
fn transpose(src: &[f32], src_rs: usize, dst: &mut [f32], dst_rs: usize, rows: usize, cols: usize) {
    const B: usize = 8;
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(src.len() >= (rows - 1) * src_rs + cols && dst.len() >= (cols - 1) * dst_rs + rows);
    let (rb, cb) = (rows / B * B, cols / B * B);
    #[cfg(target_arch = "x86_64")]
    let blocks_done = std::arch::is_x86_feature_detected!("avx") && {
        // SAFETY: the CPU has AVX (checked just above) and the assert above keeps every block
        // of the first `rb` rows and `cb` columns inside both slices.
        unsafe { transpose_blocks_avx(src, src_rs, dst, dst_rs, rb, cb) };
        true
    };
    #[cfg(not(target_arch = "x86_64"))]
    let blocks_done = false;
    if !blocks_done {
        for i0 in (0..rb).step_by(B) {
            for j0 in (0..cb).step_by(B) {
                let mut blk = [[0.0f32; B]; B];
                for (di, row) in blk.iter_mut().enumerate() {
                    *row = load(&src[(i0 + di) * src_rs + j0..]);
                }
                for dj in 0..B {
                    let d = &mut dst[(j0 + dj) * dst_rs + i0..][..B];
                    for di in 0..B {
                        d[di] = blk[di][dj];
                    }
                }
            }
        }
    }
    for i in 0..rows {
        let js = if i < rb { cb..cols } else { 0..cols };
        for j in js {
            dst[j * dst_rs + i] = src[i * src_rs + j];
        }
    }
}

/// The 8x8 blocks of [`transpose`] (`rows`, `cols` multiples of 8) with AVX unpacks and
/// shuffles: 24 shuffles per 64 floats instead of 64 scalar moves.
///
/// # Safety
/// The CPU must have AVX, and `src`/`dst` must hold the `rows x cols` block and its transpose
/// with the given row strides.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_blocks_avx(
    src: &[f32],
    src_rs: usize,
    dst: &mut [f32],
    dst_rs: usize,
    rows: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    for i0 in (0..rows).step_by(8) {
        for j0 in (0..cols).step_by(8) {
            // SAFETY: (all loads and stores) rows `i0..i0 + 8` from column `j0` and rows
            // `j0..j0 + 8` of `dst` from column `i0` lie inside the slices (caller's contract).
            unsafe {
                let r = |k: usize| _mm256_loadu_ps(sp.add((i0 + k) * src_rs + j0));
                let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
                let (r4, r5, r6, r7) = (r(4), r(5), r(6), r(7));
                let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
                let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
                let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
                let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let out = [
                    _mm256_permute2f128_ps::<0x20>(u0, u4),
                    _mm256_permute2f128_ps::<0x20>(u1, u5),
                    _mm256_permute2f128_ps::<0x20>(u2, u6),
                    _mm256_permute2f128_ps::<0x20>(u3, u7),
                    _mm256_permute2f128_ps::<0x31>(u0, u4),
                    _mm256_permute2f128_ps::<0x31>(u1, u5),
                    _mm256_permute2f128_ps::<0x31>(u2, u6),
                    _mm256_permute2f128_ps::<0x31>(u3, u7),
                ];
                for (k, o) in out.into_iter().enumerate() {
                    _mm256_storeu_ps(dp.add((j0 + k) * dst_rs + i0), o);
                }
            }
        }
    }
}

/// The group's layout: tiles per image row and column, padded image sides.
#[derive(Clone, Copy)]
struct Layout {
    th: usize,
    tw: usize,
    /// Padded input rows and columns (`th·T + 2`, `tw·T + 2`).
    ph: usize,
    pw: usize,
    /// Tiles of the group.
    tiles: usize,
}

impl Layout {
    fn new(g: &Geom, n: usize) -> Self {
        let (th, tw) = tile_grid(g);
        Self {
            th,
            tw,
            ph: th * T + 2,
            pw: tw * T + 2,
            tiles: n * th * tw,
        }
    }
    /// Floats from one transform position to the next in a `[POS, tiles, ch]` buffer: one cache
    /// line more than the data, so the 36 positions of a tile don't all fall into one cache set
    /// (with 128 tiles x 64 channels they would be exactly 32 KiB apart).
    fn pos(&self, ch: usize) -> usize {
        self.tiles * ch + 16
    }
    /// Where images lie in the zero-padded input buffers (`[n, ph, pw, ch]`, one row and column
    /// of padding on top and left).
    fn padded(&self) -> Window {
        Window {
            rows: self.ph,
            cols: self.pw,
            y0: 1,
            x0: 1,
        }
    }
    /// Where images lie in the output-side buffers, whole tiles (`[n, th·T, tw·T, ch]`).
    fn tiled(&self) -> Window {
        Window {
            rows: self.th * T,
            cols: self.tw * T,
            y0: 0,
            x0: 0,
        }
    }
    /// `(image, tile row, tile column)` of tile `t`.
    fn tile(&self, t: usize) -> (usize, usize, usize) {
        (t / (self.th * self.tw), t / self.tw % self.th, t % self.tw)
    }
}

/// Channels per SIMD step of the tile transforms.
const L: usize = 16;

/// `Bᵀ · d` for `N` channels at once (the rows of [`BT`], sharing terms).
#[inline(always)]
fn bt_1d<const N: usize>(d: &[[f32; N]; A]) -> [[f32; N]; A] {
    let mut o = [[0.0f32; N]; A];
    for k in 0..N {
        let [d0, d1, d2, d3, d4, d5] = [d[0][k], d[1][k], d[2][k], d[3][k], d[4][k], d[5][k]];
        let (p, q) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
        let (r, s) = (d4 - d2, 2.0 * (d3 - d1));
        o[0][k] = 4.0 * d0 - 5.0 * d2 + d4;
        o[1][k] = p + q;
        o[2][k] = p - q;
        o[3][k] = r + s;
        o[4][k] = r - s;
        o[5][k] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    o
}

/// `B · v` (the adjoint of [`bt_1d`]).
#[inline(always)]
fn b_1d<const N: usize>(v: &[[f32; N]; A]) -> [[f32; N]; A] {
    let mut o = [[0.0f32; N]; A];
    for k in 0..N {
        let [v0, v1, v2, v3, v4, v5] = [v[0][k], v[1][k], v[2][k], v[3][k], v[4][k], v[5][k]];
        o[0][k] = 4.0 * v0;
        o[1][k] = 4.0 * (v2 - v1 + v5) + 2.0 * (v4 - v3);
        o[2][k] = -5.0 * v0 - 4.0 * (v1 + v2) - v3 - v4;
        o[3][k] = v1 - v2 + 2.0 * (v3 - v4) - 5.0 * v5;
        o[4][k] = v0 + v1 + v2 + v3 + v4;
        o[5][k] = v5;
    }
    o
}

/// `Aᵀ · m` (the rows of [`AT`]).
#[inline(always)]
fn at_1d<const N: usize>(m: &[[f32; N]; A]) -> [[f32; N]; T] {
    let mut o = [[0.0f32; N]; T];
    for k in 0..N {
        let (a, b) = (m[1][k] + m[2][k], m[1][k] - m[2][k]);
        let (c, d) = (m[3][k] + m[4][k], m[3][k] - m[4][k]);
        o[0][k] = m[0][k] + a + c;
        o[1][k] = b + 2.0 * d;
        o[2][k] = a + 4.0 * c;
        o[3][k] = b + 8.0 * d + m[5][k];
    }
    o
}

/// `A · y` (the adjoint of [`at_1d`]).
#[inline(always)]
fn a_1d<const N: usize>(y: &[[f32; N]; T]) -> [[f32; N]; A] {
    let mut o = [[0.0f32; N]; A];
    for k in 0..N {
        let [y0, y1, y2, y3] = [y[0][k], y[1][k], y[2][k], y[3][k]];
        let (s, t) = (y0 + y2, y1 + y3);
        let (u, w) = (y0 + 4.0 * y2, 2.0 * y1 + 8.0 * y3);
        o[0][k] = y0;
        o[1][k] = s + t;
        o[2][k] = s - t;
        o[3][k] = u + w;
        o[4][k] = u - w;
        o[5][k] = y3;
    }
    o
}

#[inline(always)]
fn load<const N: usize>(src: &[f32]) -> [f32; N] {
    src[..N].try_into().expect("N floats")
}

/// For every tile `t` and block of channels `ck`, runs `body` with `N = L` on whole blocks of
/// `L` channels of `0..c`, then with `N = 1` on the rest. `buf` (its initial value `init`, which
/// may use `N`) is declared once per pass: zeroing a tile buffer per tile showed up as `memset`.
macro_rules! by_lanes {
    ($c:expr, $tiles:expr, $n:ident, $buf:pat = $init:expr; |$t:ident, $ck:ident| $body:block) => {{
        let whole = $c / L * L;
        {
            const $n: usize = L;
            let $buf = $init;
            for $t in 0..$tiles {
                for $ck in (0..whole).step_by(L) $body
            }
        }
        {
            const $n: usize = 1;
            let $buf = $init;
            for $t in 0..$tiles {
                for $ck in whole..$c $body
            }
        }
    }};
}

/// `v[ξ][t] = (Bᵀ · X_t · B)_ξ` over channel vectors: `xp` from [`channels_last`] at [`Layout::padded`], `v` is
/// `[POS, tiles, c]`.
#[inline(always)]
fn input_transform_impl(l: &Layout, c: usize, xp: &[f32], v: &mut [f32]) {
    by_lanes!(c, l.tiles, N,
        (mut cols, mut d) = ([[[0.0f32; N]; A]; A], [[0.0f32; N]; A]);
        |t, ck| {
        let (b, ty, tx) = l.tile(t);
        let base = ((b * l.ph + ty * T) * l.pw + tx * T) * c;
        // Bᵀ down each column of the tile, then along each row.
        for (s, col) in cols.iter_mut().enumerate() {
            for (r, dr) in d.iter_mut().enumerate() {
                *dr = load(&xp[base + (r * l.pw + s) * c + ck..]);
            }
            *col = bt_1d(&d);
        }
        for xi in 0..A {
            for (s, ds) in d.iter_mut().enumerate() {
                *ds = cols[s][xi];
            }
            for (xj, out) in bt_1d(&d).iter().enumerate() {
                v[(xi * A + xj) * l.pos(c) + t * c + ck..][..out.len()].copy_from_slice(out);
            }
        }
    });
}

/// `Y_t = Aᵀ · M_t · A (+ bias)`: `mo` is `[POS, tiles, m]`, written channels-last to `yo`
/// (`[n, th·T, tw·T, m]`).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `i` is the output row as well as the column index
fn output_transform_impl(l: &Layout, m: usize, mo: &[f32], bias: Option<&[f32]>, yo: &mut [f32]) {
    let Window { rows, cols, .. } = l.tiled();
    by_lanes!(m, l.tiles, N,
        (mut cs, mut ms) = ([[[0.0f32; N]; T]; A], [[0.0f32; N]; A]);
        |t, ck| {
        let (b, ty, tx) = l.tile(t);
        // Aᵀ down each column of M, then along each row.
        for (xj, col) in cs.iter_mut().enumerate() {
            for (xi, v) in ms.iter_mut().enumerate() {
                *v = load(&mo[(xi * A + xj) * l.pos(m) + t * m + ck..]);
            }
            *col = at_1d(&ms);
        }
        for i in 0..T {
            for (xj, v) in ms.iter_mut().enumerate() {
                *v = cs[xj][i];
            }
            for (j, out) in at_1d(&ms).iter().enumerate() {
                let at = ((b * rows + ty * T + i) * cols + tx * T + j) * m + ck;
                let dst = &mut yo[at..][..out.len()];
                match bias {
                    Some(bv) => {
                        let bv = &bv[ck..][..out.len()];
                        for k in 0..out.len() {
                            dst[k] = out[k] + bv[k];
                        }
                    }
                    None => dst.copy_from_slice(out),
                }
            }
        }
    });
}

/// Where an image lies in a channels-last buffer: `[n, rows, cols, ch]`, the image from row `y0`
/// and column `x0` on.
#[derive(Clone, Copy)]
struct Window {
    rows: usize,
    cols: usize,
    y0: usize,
    x0: usize,
}

/// The image part of channels-last `src` (see [`Window`]) back to `[n, ch, h, w]`.
#[inline(always)]
fn channels_first_impl(g: &Geom, ch: usize, n: usize, src: &[f32], at: Window, dst: &mut [f32]) {
    let plane = g.h * g.w;
    // Eight channels at a time through all rows (see `channels_last_impl`).
    for b in 0..n {
        for c0 in (0..ch).step_by(8) {
            let cn = 8.min(ch - c0);
            for y in 0..g.h {
                let s = &src[((b * at.rows + y + at.y0) * at.cols + at.x0) * ch + c0..];
                let d = &mut dst[(b * ch + c0) * plane + y * g.w..];
                transpose(s, ch, d, plane, g.w, cn);
            }
        }
    }
}

/// Images `i0..i0 + n` of `src` (`[images, ch, h, w]`) into channels-last `dst` at `at` (see
/// [`Window`]), zero everywhere outside the images.
#[inline(always)]
fn channels_last_impl(
    g: &Geom,
    ch: usize,
    src: &[f32],
    i0: usize,
    n: usize,
    at: Window,
    dst: &mut [f32],
) {
    let plane = g.h * g.w;
    let row = at.cols * ch;
    for b in 0..n {
        let img = &src[(i0 + b) * ch * plane..][..ch * plane];
        let db = &mut dst[b * at.rows * row..][..at.rows * row];
        // The border: rows above and below the image, columns left and right of it.
        db[..at.y0 * row].fill(0.0);
        db[(at.y0 + g.h) * row..].fill(0.0);
        for y in at.y0..at.y0 + g.h {
            let r = &mut db[y * row..][..row];
            r[..at.x0 * ch].fill(0.0);
            r[(at.x0 + g.w) * ch..].fill(0.0);
        }
        // Eight channels at a time through all rows: eight planes read in step stay in
        // different cache sets (all channels of one row, a plane apart, thrash one set).
        for c0 in (0..ch).step_by(8) {
            let cn = 8.min(ch - c0);
            for y in 0..g.h {
                let d = &mut db[((y + at.y0) * at.cols + at.x0) * ch + c0..];
                transpose(&img[c0 * plane + y * g.w..], plane, d, ch, cn, g.w);
            }
        }
    }
}

/// `dm[ξ][t] = (A · dY_t · Aᵀ)_ξ`: `dyp` from [`channels_last`] at [`Layout::tiled`], `dm` is `[POS, tiles, m]`.
#[inline(always)]
fn grad_output_transform_impl(l: &Layout, m: usize, dyp: &[f32], dm: &mut [f32]) {
    let Window { rows, cols, .. } = l.tiled();
    by_lanes!(m, l.tiles, N,
        (mut cs, mut ys, mut zs) = ([[[0.0f32; N]; A]; T], [[0.0f32; N]; T], [[0.0f32; N]; T]);
        |t, ck| {
        let (b, ty, tx) = l.tile(t);
        let base = ((b * rows + ty * T) * cols + tx * T) * m;
        // A down each column of dY, then along each row.
        for (j, col) in cs.iter_mut().enumerate() {
            for (i, v) in ys.iter_mut().enumerate() {
                *v = load(&dyp[base + (i * cols + j) * m + ck..]);
            }
            *col = a_1d(&ys);
        }
        for xi in 0..A {
            for (j, v) in zs.iter_mut().enumerate() {
                *v = cs[j][xi];
            }
            for (xj, out) in a_1d(&zs).iter().enumerate() {
                dm[(xi * A + xj) * l.pos(m) + t * m + ck..][..out.len()].copy_from_slice(out);
            }
        }
    });
}

/// `dxp[tile] += B · dV_t · Bᵀ` (tiles overlap by two rows and columns): `dv` is
/// `[POS, tiles, c]`, `dxp` channels-last `[n, ph, pw, c]`.
#[inline(always)]
fn grad_input_transform_impl(l: &Layout, c: usize, dv: &[f32], dxp: &mut [f32]) {
    by_lanes!(c, l.tiles, N,
        (mut rs, mut vs) = ([[[0.0f32; N]; A]; A], [[0.0f32; N]; A]);
        |t, ck| {
        let (b, ty, tx) = l.tile(t);
        let base = ((b * l.ph + ty * T) * l.pw + tx * T) * c;
        // B along each row of dV, then down each column, added into the overlapping tile.
        for (xi, row) in rs.iter_mut().enumerate() {
            for (xj, v) in vs.iter_mut().enumerate() {
                *v = load(&dv[(xi * A + xj) * l.pos(c) + t * c + ck..]);
            }
            *row = b_1d(&vs);
        }
        for s in 0..A {
            for (xi, v) in vs.iter_mut().enumerate() {
                *v = rs[xi][s];
            }
            for (r, out) in b_1d(&vs).iter().enumerate() {
                let dst = &mut dxp[base + (r * l.pw + s) * c + ck..][..out.len()];
                for k in 0..out.len() {
                    dst[k] += out[k];
                }
            }
        }
    });
}

simd_dispatch! {
    fn channels_last(g: &Geom, ch: usize, src: &[f32], i0: usize, n: usize, at: Window,
        dst: &mut [f32]) => channels_last_impl
}
simd_dispatch! {
    fn input_transform(l: &Layout, c: usize, xp: &[f32], v: &mut [f32]) => input_transform_impl
}
simd_dispatch! {
    fn output_transform(l: &Layout, m: usize, mo: &[f32], bias: Option<&[f32]>, yo: &mut [f32])
        => output_transform_impl
}
simd_dispatch! {
    fn channels_first(g: &Geom, ch: usize, n: usize, src: &[f32], at: Window, dst: &mut [f32])
        => channels_first_impl
}
simd_dispatch! {
    fn grad_output_transform(l: &Layout, m: usize, dyp: &[f32], dm: &mut [f32])
        => grad_output_transform_impl
}
simd_dispatch! {
    fn grad_input_transform(l: &Layout, c: usize, dv: &[f32], dxp: &mut [f32])
        => grad_input_transform_impl
}

/// Splits `scratch` into buffers of the given lengths.
fn split<const N: usize>(scratch: &mut Vec<f32>, lens: [usize; N]) -> [&mut [f32]; N] {
    let mut rest = scratch_of(scratch, lens.iter().sum());
    lens.map(|len| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        head
    })
}

/// Forward: `x` is `[images, c, h, w]`, `w` is `[m, c, 3, 3]`, the result `[images, m, h, w]`.
pub(super) fn forward(
    g: &Geom,
    images: usize,
    x: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let c = g.c;
    let u = weight_transform(w, m, c);
    let mut y = vec![0.0f32; images * m * g.h * g.w];
    let fold = group_images(g, m, images);
    per_group(&mut y, m * g.h * g.w, fold, |i0, n, yg, scratch, par| {
        let l = Layout::new(g, n);
        let Window { rows, cols, .. } = l.tiled();
        let [xp, v, mo, yo] = split(
            scratch,
            [
                n * l.ph * l.pw * c,
                POS * l.pos(c),
                POS * l.pos(m),
                n * rows * cols * m,
            ],
        );
        channels_last(g, c, x, i0, n, l.padded(), xp);
        input_transform(&l, c, xp, v);
        for xi in 0..POS {
            gemm(
                l.tiles,
                m,
                c,
                &mut mo[xi * l.pos(m)..],
                m,
                false,
                Mat::rows(&v[xi * l.pos(c)..], c),
                Mat::transposed(&u[xi * m * c..], c),
                par,
            );
        }
        output_transform(&l, m, mo, bias, yo);
        channels_first(g, m, n, yo, l.tiled(), yg);
    });
    y
}

/// Input gradient: `w` is `[m, c, 3, 3]`, `dy` is `[images, m, h, w]`, the result
/// `[images, c, h, w]`.
pub(super) fn backward_input(g: &Geom, images: usize, w: &[f32], m: usize, dy: &[f32]) -> Vec<f32> {
    backward(g, images, None, Some(w), m, dy).0
}

/// Weight gradient: `x` is `[images, c, h, w]`, `dy` is `[images, m, h, w]`, the result
/// `[m, c, 3, 3]`.
pub(super) fn backward_weight(
    g: &Geom,
    images: usize,
    x: &[f32],
    dy: &[f32],
    m: usize,
) -> Vec<f32> {
    backward(g, images, Some(x), None, m, dy).1
}

/// Both gradients from one transform of `dy` (`[images, m, h, w]`): the input gradient if the
/// weights `w` (`[m, c, 3, 3]`) are given, the weight gradient if the input `x`
/// (`[images, c, h, w]`) is; an empty `Vec` for the other.
///
/// Images are taken in fixed groups (at most [`WEIGHT_GROUPS`], independent of the thread
/// count), each in runs of [`group_images`]; the weight gradient sums the runs in order, then
/// the groups in order, so it is the same on every run and thread count.
pub(super) fn backward(
    g: &Geom,
    images: usize,
    x: Option<&[f32]>,
    w: Option<&[f32]>,
    m: usize,
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let c = g.c;
    let img = c * g.h * g.w;
    let fold = group_images(g, m, images);
    let groups = (images / fold).clamp(1, WEIGHT_GROUPS);
    let u = w.map(|w| weight_transform(w, m, c));
    let mut dx = vec![0.0f32; if w.is_some() { images * img } else { 0 }];
    // Each group's images of `dx` (empty slices when it isn't wanted).
    let mut chunks = Vec::with_capacity(groups);
    let mut rest = dx.as_mut_slice();
    for gi in 0..groups {
        let n = (gi + 1) * images / groups - gi * images / groups;
        let (head, tail) = rest.split_at_mut(if u.is_some() { n * img } else { 0 });
        chunks.push(head);
        rest = tail;
    }
    let group = |gi: usize, dxg: &mut [f32], par: Parallelism| {
        let mut du = vec![0.0f32; if x.is_some() { POS * m * c } else { 0 }];
        let (start, end) = (gi * images / groups, (gi + 1) * images / groups);
        let mut i = start;
        with_scratch(|scratch| {
            while i < end {
                let n = fold.min(end - i);
                let l = Layout::new(g, n);
                let Window { rows, cols, .. } = l.tiled();
                let [dyp, dm, xp, v] = split(
                    scratch,
                    [
                        n * rows * cols * m,
                        POS * l.pos(m),
                        n * l.ph * l.pw * c,
                        POS * l.pos(c),
                    ],
                );
                channels_last(g, m, dy, i, n, l.tiled(), dyp);
                grad_output_transform(&l, m, dyp, dm);
                if let Some(u) = &u {
                    // dV_ξ = dM_ξ · U_ξ, then B dV Bᵀ added up into the padded input.
                    let dv = &mut *v;
                    for xi in 0..POS {
                        gemm(
                            l.tiles,
                            c,
                            m,
                            &mut dv[xi * l.pos(c)..],
                            c,
                            false,
                            Mat::rows(&dm[xi * l.pos(m)..], m),
                            Mat::rows(&u[xi * m * c..], c),
                            par,
                        );
                    }
                    xp.fill(0.0);
                    grad_input_transform(&l, c, dv, xp);
                    let dxi = &mut dxg[(i - start) * img..];
                    channels_first(g, c, n, xp, l.padded(), dxi);
                }
                if let Some(x) = x {
                    // dU_ξ += dM_ξᵀ · V_ξ.
                    channels_last(g, c, x, i, n, l.padded(), xp);
                    input_transform(&l, c, xp, v);
                    for xi in 0..POS {
                        gemm(
                            m,
                            c,
                            l.tiles,
                            &mut du[xi * m * c..],
                            c,
                            true,
                            Mat::transposed(&dm[xi * l.pos(m)..], m),
                            Mat::rows(&v[xi * l.pos(c)..], c),
                            par,
                        );
                    }
                }
                i += n;
            }
        });
        du
    };
    let par = inner_par(groups);
    #[cfg(feature = "parallel")]
    let partials: Vec<Vec<f32>> = {
        use rayon::prelude::*;
        let precision = crate::precision::current();
        chunks
            .into_par_iter()
            .enumerate()
            .map(|(gi, chunk)| crate::precision::with(precision, || group(gi, chunk, par)))
            .collect()
    };
    #[cfg(not(feature = "parallel"))]
    let partials: Vec<Vec<f32>> = chunks
        .into_iter()
        .enumerate()
        .map(|(gi, chunk)| group(gi, chunk, par))
        .collect();
    let dw = match x {
        Some(_) => {
            let mut parts = partials.into_iter();
            let mut du = parts.next().unwrap_or_else(|| vec![0.0f32; POS * m * c]);
            for part in parts {
                du.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
            }
            weight_gradient(&du, m, c)
        }
        None => Vec::new(),
    };
    (dx, dw)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Largest difference from im2col + GEMM, relative to the largest value: F(4x4, 3x3) rounds
    /// more than a direct sum (its transforms scale by up to 8 and 1/24); measured up to 1.5e-5
    /// over 10 random draws of four layer shapes.
    pub(in crate::conv) const TOLERANCE: f32 = 5e-5;

    /// `len` pseudo-random values in `[-1, 1)` from `seed` (xorshift; the same on every run).
    pub(in crate::conv) fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn geom(c: usize, h: usize, w: usize) -> Geom {
        Geom {
            c,
            h,
            w,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            ph: 1,
            pw: 1,
            oh: h,
            ow: w,
        }
    }

    fn rel(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-3);
        a.iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    #[test]
    fn transforms_compute_a_3_tap_correlation() {
        // 1D: y_i = Σ_k d_{i+k} w_k for i < T, from Aᵀ[(G w) ⊙ (Bᵀ d)].
        let d = random(A, 1);
        let w = random(3, 2);
        let gw: Vec<f32> = (0..A)
            .map(|i| (0..3).map(|k| G[i][k] * w[k]).sum())
            .collect();
        let bd: Vec<f32> = (0..A)
            .map(|i| (0..A).map(|k| BT[i][k] * d[k]).sum())
            .collect();
        for (i, at) in AT.iter().enumerate() {
            let y: f32 = (0..A).map(|k| at[k] * gw[k] * bd[k]).sum();
            let want: f32 = (0..3).map(|k| d[i + k] * w[k]).sum();
            assert!((y - want).abs() < 1e-5, "{i}: {y} vs {want}");
        }
    }

    #[test]
    fn an_empty_batch_gives_empty_results() {
        let (g, m) = (geom(8, 6, 6), 8);
        let wt = random(m * g.k(), 13);
        assert!(forward(&g, 0, &[], &wt, m, None).is_empty());
        let (dx, dw) = backward(&g, 0, Some(&[]), Some(&wt), m, &[]);
        assert!(dx.is_empty());
        assert!(dw.len() == m * g.k() && dw.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn transpose_moves_every_element() {
        for (rows, cols) in [(8, 8), (16, 24), (13, 9), (3, 17), (64, 16), (1, 1)] {
            let (src_rs, dst_rs) = (cols + 3, rows + 5);
            let src = random(rows * src_rs, 12);
            let mut dst = vec![f32::NAN; cols * dst_rs];
            transpose(&src, src_rs, &mut dst, dst_rs, rows, cols);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(
                        dst[j * dst_rs + i],
                        src[i * src_rs + j],
                        "{rows}x{cols} at {i},{j}"
                    );
                }
            }
            // Nothing outside the transposed block was written.
            for j in 0..cols {
                assert!(
                    dst[j * dst_rs + rows..][..dst_rs - rows]
                        .iter()
                        .all(|v| v.is_nan())
                );
            }
        }
    }

    #[test]
    fn written_out_transforms_match_the_matrices() {
        let d: [[f32; 1]; A] = std::array::from_fn(|i| [random(A, 7)[i]]);
        let y: [[f32; 1]; T] = std::array::from_fn(|i| [random(T, 8)[i]]);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-4 * (1.0 + b.abs());
        let (bt, b, at, a) = (bt_1d(&d), b_1d(&d), at_1d(&d), a_1d(&y));
        for i in 0..A {
            let want: f32 = (0..A).map(|k| BT[i][k] * d[k][0]).sum();
            assert!(close(bt[i][0], want), "Bᵀ row {i}");
            let want: f32 = (0..A).map(|k| BT[k][i] * d[k][0]).sum();
            assert!(close(b[i][0], want), "B row {i}");
            let want: f32 = (0..T).map(|k| AT[k][i] * y[k][0]).sum();
            assert!(close(a[i][0], want), "A row {i}");
        }
        for i in 0..T {
            let want: f32 = (0..A).map(|k| AT[i][k] * d[k][0]).sum();
            assert!(close(at[i][0], want), "Aᵀ row {i}");
        }
    }

    #[test]
    fn all_three_passes_match_im2col() {
        // Odd sizes leave partial tiles; 40x48 with 64 channels makes several groups.
        for (images, c, m, h, w) in [
            (3, 8, 9, 7, 5),
            (2, 16, 8, 1, 1),
            (5, 8, 12, 4, 4),
            (2, 64, 16, 40, 48),
            (9, 32, 8, 8, 8),
            (2, 8, 40, 6, 6),
        ] {
            let g = geom(c, h, w);
            assert!(applies(&g, m));
            let x = random(images * g.img(), 3);
            let wt = random(m * g.k(), 4);
            let b = random(m, 5);
            let dy = random(images * m * g.p(), 6);
            let (ours, want) = (
                forward(&g, images, &x, &wt, m, Some(&b)),
                super::super::forward(&g, images, &x, &wt, m, Some(&b)),
            );
            assert!(
                rel(&ours, &want) < 1e-5,
                "forward {g:?}: {}",
                rel(&ours, &want)
            );
            let (ours, want) = (
                backward_input(&g, images, &wt, m, &dy),
                super::super::backward_input(&g, images, &wt, m, &dy),
            );
            assert!(
                rel(&ours, &want) < 1e-5,
                "input grad {g:?}: {}",
                rel(&ours, &want)
            );
            let (ours, want) = (
                backward_weight(&g, images, &x, &dy, m),
                super::super::backward_weight(&g, images, &x, &dy, m),
            );
            assert!(
                rel(&ours, &want) < 1e-5,
                "weight grad {g:?}: {}",
                rel(&ours, &want)
            );
        }
    }

    #[cfg(feature = "parallel")]
    #[test]
    fn results_are_the_same_on_any_thread_count() {
        // 13 images of 20x18 in groups of a few: uneven groups, partial tiles.
        let (images, c, m) = (13, 16, 8);
        let g = geom(c, 20, 18);
        let (x, wt, dy) = (
            random(images * g.img(), 9),
            random(m * g.k(), 10),
            random(images * m * g.p(), 11),
        );
        let on = |threads: usize| {
            crate::conv::on_threads(threads, || {
                (
                    forward(&g, images, &x, &wt, m, None),
                    backward_input(&g, images, &wt, m, &dy),
                    backward_weight(&g, images, &x, &dy, m),
                )
            })
        };
        let one = on(1);
        assert!(group_images(&g, m, images) < images);
        assert_eq!(one, on(2));
        assert_eq!(one, on(3));
        assert!(one.2.iter().any(|v| *v != 0.0));
    }
}
