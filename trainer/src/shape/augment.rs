//! The shape encoder's augmentations, on HWC RGB images as floats in `[0, 1]`.
//!
//! Colour: a random permutation of the three channels, a rotation of the hue (a rotation of
//! the RGB cube about its gray axis, which keeps grays gray), saturation, brightness and
//! contrast jitter, and grayscale with some probability. Geometry: a random resized crop
//! (bilinear, edges replicated) and a horizontal flip. A training view is the luminance of the
//! result ([`view`]); [`recoloured_copy`] makes the copies the held-out checks look for.

use shared_model::SplitMix64;
use shared_model::shape::luma;

/// Strengths of the augmentations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Brightness factor drawn from `[1 - b, 1 + b]`.
    pub brightness: f32,
    /// Contrast factor (about the mean luminance) from `[1 - c, 1 + c]`.
    pub contrast: f32,
    /// Saturation factor from `[1 - s, 1 + s]`.
    pub saturation: f32,
    /// Permute the channels and rotate the hue by any angle.
    pub hue: bool,
    /// Probability of turning the image gray.
    pub grayscale: f64,
    /// Smallest area of the random crop, as a fraction of the image.
    pub min_crop: f64,
    /// Aspect ratios of the crop drawn log-uniformly from `[1 / a, a]`.
    pub max_aspect: f64,
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.6,
            hue: true,
            grayscale: 0.2,
            min_crop: 0.5,
            max_aspect: 4.0 / 3.0,
        }
    }
}

impl Augment {
    /// One line for the card.
    pub fn describe(&self) -> String {
        format!(
            "two views per face, each: random channel permutation and hue rotation (any \
             angle), saturation x[{:.1}, {:.1}], brightness x[{:.1}, {:.1}], contrast \
             x[{:.1}, {:.1}], grayscale with p = {}, random resized crop (area {:.0}-100 %, \
             aspect 1/{:.2}-{:.2}, bilinear), horizontal flip with p = 0.5; the network reads \
             the luminance (BT.601) of the result",
            1.0 - self.saturation,
            1.0 + self.saturation,
            1.0 - self.brightness,
            1.0 + self.brightness,
            1.0 - self.contrast,
            1.0 + self.contrast,
            self.grayscale,
            100.0 * self.min_crop,
            self.max_aspect,
            self.max_aspect
        )
    }
}

/// HWC RGB bytes -> floats in `[0, 1]`.
pub fn to_float(img: &[u8]) -> Vec<f32> {
    img.iter().map(|&v| f32::from(v) / 255.0).collect()
}

/// Floats -> bytes (clamped, rounded).
pub fn to_bytes(px: &[f32]) -> Vec<u8> {
    px.iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

fn uniform(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.next_f64()
}

/// The 3x3 matrix rotating colours by `angle` radians about the gray axis `(1, 1, 1)`.
pub fn hue_rotation(angle: f64) -> [[f32; 3]; 3] {
    let (s, c) = angle.sin_cos();
    let t = (1.0 - c) / 3.0;
    let r = s / 3f64.sqrt();
    let (a, b, d) = ((c + t) as f32, (t - r) as f32, (t + r) as f32);
    [[a, b, d], [d, a, b], [b, d, a]]
}

/// The six orders of three channels.
const PERMUTATIONS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Applies the colour part of `aug` to `px` (HWC floats, changed in place). With `force_hue`,
/// the permutation is never the identity (the held-out copies are always recoloured).
pub fn recolour(px: &mut [f32], aug: &Augment, rng: &mut SplitMix64, force_hue: bool) {
    if aug.hue || force_hue {
        let perm = if force_hue {
            PERMUTATIONS[1 + rng.below(5) as usize]
        } else {
            PERMUTATIONS[rng.below(6) as usize]
        };
        let m = hue_rotation(uniform(rng, -std::f64::consts::PI, std::f64::consts::PI));
        for p in px.chunks_exact_mut(3) {
            let q = [p[perm[0]], p[perm[1]], p[perm[2]]];
            for (out, row) in p.iter_mut().zip(&m) {
                *out = row[0] * q[0] + row[1] * q[1] + row[2] * q[2];
            }
        }
    }
    let factor =
        |rng: &mut SplitMix64, s: f32| uniform(rng, f64::from(1.0 - s), f64::from(1.0 + s)) as f32;
    let sat = factor(rng, aug.saturation);
    let bright = factor(rng, aug.brightness);
    let contrast = factor(rng, aug.contrast);
    for p in px.chunks_exact_mut(3) {
        let y = luma(p[0], p[1], p[2]);
        for v in p.iter_mut() {
            *v = ((y + sat * (*v - y)) * bright).clamp(0.0, 1.0);
        }
    }
    let n = (px.len() / 3).max(1) as f32;
    let mean = px
        .chunks_exact(3)
        .map(|p| luma(p[0], p[1], p[2]))
        .sum::<f32>()
        / n;
    for v in px.iter_mut() {
        *v = (mean + contrast * (*v - mean)).clamp(0.0, 1.0);
    }
    if rng.next_f64() < aug.grayscale {
        for p in px.chunks_exact_mut(3) {
            let y = luma(p[0], p[1], p[2]);
            p.fill(y);
        }
    }
}

/// Samples the `res`-sided image `px` (HWC, 3 channels) at `(x, y)` (pixel centres at integers)
/// bilinearly, edges replicated.
fn bilinear(px: &[f32], res: usize, x: f64, y: f64, ch: usize) -> f32 {
    let max = (res - 1) as f64;
    let (x, y) = (x.clamp(0.0, max), y.clamp(0.0, max));
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(res - 1), (y0 + 1).min(res - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let at = |xx: usize, yy: usize| px[(yy * res + xx) * 3 + ch];
    let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
    let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// A random resized crop of `px` (`res`-sided), scaled back to `res`, mirrored with
/// probability 0.5.
pub fn crop_flip(px: &[f32], res: usize, aug: &Augment, rng: &mut SplitMix64) -> Vec<f32> {
    let area = uniform(rng, aug.min_crop.clamp(0.05, 1.0), 1.0);
    let log_a = aug.max_aspect.max(1.0).ln();
    let aspect = uniform(rng, -log_a, log_a).exp();
    let r = res as f64;
    let w = ((area * aspect).sqrt() * r).min(r);
    let h = ((area / aspect).sqrt() * r).min(r);
    let x0 = uniform(rng, 0.0, r - w);
    let y0 = uniform(rng, 0.0, r - h);
    let flip = rng.next_u64() & 1 == 1;
    let mut out = Vec::with_capacity(px.len());
    for oy in 0..res {
        let sy = y0 + (oy as f64 + 0.5) * h / r - 0.5;
        for ox in 0..res {
            let fx = if flip { res - 1 - ox } else { ox };
            let sx = x0 + (fx as f64 + 0.5) * w / r - 0.5;
            for ch in 0..3 {
                out.push(bilinear(px, res, sx, sy, ch));
            }
        }
    }
    out
}

/// One training view of a face (HWC RGB bytes, `res`-sided): recoloured, cropped, maybe
/// flipped; returns its luminance in `[-1, 1]` (`res * res` values, the encoder's input).
pub fn view(img: &[u8], res: usize, aug: &Augment, rng: &mut SplitMix64) -> Vec<f32> {
    let mut px = to_float(img);
    recolour(&mut px, aug, rng, false);
    let px = crop_flip(&px, res, aug, rng);
    px.chunks_exact(3)
        .map(|p| 2.0 * luma(p[0], p[1], p[2]) - 1.0)
        .collect()
}

/// The copy the held-out checks look for: the face recoloured (a channel permutation other than
/// the identity, a hue rotation, saturation, brightness and contrast jitter of the default
/// strengths, no grayscale), shifted by 1 to `max_shift` pixels in x and in y (edges
/// replicated) and mirrored. HWC RGB bytes in and out.
pub fn recoloured_copy(img: &[u8], res: usize, max_shift: usize, rng: &mut SplitMix64) -> Vec<u8> {
    let aug = Augment {
        grayscale: 0.0,
        ..Augment::default()
    };
    let mut px = to_float(img);
    recolour(&mut px, &aug, rng, true);
    let s = max_shift.max(1) as u64;
    let mut shift = || {
        let d = 1 + rng.below(s) as i64;
        if rng.next_u64() & 1 == 1 { d } else { -d }
    };
    let (dx, dy) = (shift(), shift());
    let clamp = |v: i64| v.clamp(0, res as i64 - 1) as usize;
    let mut out = Vec::with_capacity(px.len());
    for y in 0..res {
        let sy = clamp(y as i64 - dy);
        for x in 0..res {
            let sx = clamp((res - 1 - x) as i64 - dx);
            out.extend_from_slice(&px[(sy * res + sx) * 3..(sy * res + sx) * 3 + 3]);
        }
    }
    to_bytes(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16x16 test image: a red disc on a blue background with a yellow stripe.
    fn picture() -> Vec<u8> {
        let mut img = Vec::new();
        for y in 0..16i32 {
            for x in 0..16i32 {
                let px: [u8; 3] = if (x - 6).pow(2) + (y - 7).pow(2) < 16 {
                    [220, 30, 40]
                } else if y == 12 {
                    [240, 220, 20]
                } else {
                    [30, 60, 200]
                };
                img.extend_from_slice(&px);
            }
        }
        img
    }

    #[test]
    fn hue_rotation_keeps_grays_and_turns_red_round_the_wheel() {
        let m = hue_rotation(1.234);
        for row in &m {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // A third of a turn maps red to green.
        let m = hue_rotation(2.0 * std::f64::consts::PI / 3.0);
        let g: Vec<f32> = m.iter().map(|row| row[0]).collect();
        assert!(
            g[0].abs() < 1e-6 && (g[1] - 1.0).abs() < 1e-6 && g[2].abs() < 1e-6,
            "{g:?}"
        );
    }

    #[test]
    fn recolouring_changes_the_colours_but_keeps_the_layout() {
        let img = picture();
        let mut rng = SplitMix64::new(1);
        for _ in 0..8 {
            let copy = recoloured_copy(&img, 16, 2, &mut rng);
            assert_eq!(copy.len(), img.len());
            // The colours change a lot ...
            let diff: f64 = img
                .iter()
                .zip(&copy)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
                .sum::<f64>()
                / img.len() as f64;
            assert!(diff > 20.0, "mean change {diff}");
        }
        // ... a view of a flat gray image stays flat (no crop or flip makes structure).
        let gray = vec![128u8; 16 * 16 * 3];
        let v = view(&gray, 16, &Augment::default(), &mut rng);
        let (lo, hi) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(hi - lo < 1e-4, "{lo}..{hi}");
        assert_eq!(v.len(), 256);
        assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
    }

    #[test]
    fn two_views_of_one_face_differ() {
        let img = picture();
        let mut rng = SplitMix64::new(2);
        let a = view(&img, 16, &Augment::default(), &mut rng);
        let b = view(&img, 16, &Augment::default(), &mut rng);
        let d: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
        assert!(d > 1.0, "{d}");
    }
}
