//! DiffAugment (Zhao et al. 2020): differentiable augmentations of everything the critic sees.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use shared_model::SplitMix64;

use super::{Piece, check_range};

/// Random translation (with zero padding) and cutout of every image the critic sees, real and
/// generated, in the critic's and the generator's updates; the generator learns through them.
/// The policy of the paper's scripts without its colour ops (kyara's tags are colours): shifts
/// of up to `translation * R` pixels in x and y, then one square of side `cutout * R` set to
/// zero (mid-grey). 0 turns a part off. Each image draws its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiffAugment {
    pub translation: f64,
    pub cutout: f64,
}

impl Default for DiffAugment {
    /// The paper's ratios (`translation` 1/8, `cutout` 1/2).
    fn default() -> Self {
        Self {
            translation: 0.125,
            cutout: 0.5,
        }
    }
}

impl Piece for DiffAugment {
    fn about(&self) -> &'static str {
        "DiffAugment: random translation and cutout of every image the critic sees (no colour ops)"
    }

    fn validate(&self) -> Result<(), String> {
        check_range("translation", self.translation, 0.0, 0.5)?;
        check_range("cutout", self.cutout, 0.0, 1.0)
    }

    fn augment(&self, x: Tensor<4>, rng: &mut SplitMix64) -> Tensor<4> {
        let x = translate(x, self.translation, rng);
        cutout(x, self.cutout, rng)
    }
}

/// Shifts each image of `x` (`[B, C, H, W]`) by its own whole number of pixels, at most
/// `ratio * side` (rounded) in each direction, filling with zeros: `out[y][x] = in[y + dy][x +
/// dx]`. Done as `A x B^T` with one-hot shift matrices, so the gradient is the reverse shift.
pub fn translate(x: Tensor<4>, ratio: f64, rng: &mut SplitMix64) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let (sh, sw) = (
        (h as f64 * ratio + 0.5) as i64,
        (w as f64 * ratio + 0.5) as i64,
    );
    if sh == 0 && sw == 0 {
        return x;
    }
    let mut rows = vec![0f32; b * h * h];
    let mut cols = vec![0f32; b * w * w];
    for i in 0..b {
        let dy = rng.below(2 * sh as u64 + 1) as i64 - sh;
        let dx = rng.below(2 * sw as u64 + 1) as i64 - sw;
        // rows[i][y][y + dy] = 1: row y of the output reads row y + dy of the input.
        for y in 0..h as i64 {
            let src = y + dy;
            if (0..h as i64).contains(&src) {
                rows[(i * h + y as usize) * h + src as usize] = 1.0;
            }
        }
        // cols[i][x + dx][x] = 1 (B^T): column x reads column x + dx.
        for xx in 0..w as i64 {
            let src = xx + dx;
            if (0..w as i64).contains(&src) {
                cols[(i * w + src as usize) * w + xx as usize] = 1.0;
            }
        }
    }
    let dev = x.device();
    let rows = Tensor::<4>::from_data(TensorData::new(rows, [b, 1, h, h]), &dev).repeat_dim(1, c);
    let cols = Tensor::<4>::from_data(TensorData::new(cols, [b, 1, w, w]), &dev).repeat_dim(1, c);
    rows.matmul(x).matmul(cols)
}

/// Sets one square of each image of `x` (`[B, C, H, W]`) to zero: side `ratio * H` by
/// `ratio * W` (rounded), centred on a random pixel (clipped at the borders), as DiffAugment's
/// `rand_cutout`.
pub fn cutout(x: Tensor<4>, ratio: f64, rng: &mut SplitMix64) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let (ch, cw) = (
        (h as f64 * ratio + 0.5) as usize,
        (w as f64 * ratio + 0.5) as usize,
    );
    if ch == 0 || cw == 0 {
        return x;
    }
    let mut mask = vec![1f32; b * h * w];
    for i in 0..b {
        // Centres in 0..=side - side % 2, as the paper's `randint(0, size + (1 - cut % 2))`.
        let cy = rng.below((h + 1 - ch % 2) as u64) as i64;
        let cx = rng.below((w + 1 - cw % 2) as u64) as i64;
        let (y0, x0) = (cy - (ch / 2) as i64, cx - (cw / 2) as i64);
        for y in y0.max(0)..(y0 + ch as i64).min(h as i64) {
            for xx in x0.max(0)..(x0 + cw as i64).min(w as i64) {
                mask[(i * h + y as usize) * w + xx as usize] = 0.0;
            }
        }
    }
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, 1, h, w]), &x.device());
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(b: usize, c: usize, h: usize, w: usize, dev: &Device) -> Tensor<4> {
        let v: Vec<f32> = (0..b * c * h * w).map(|k| 1.0 + k as f32).collect();
        Tensor::from_data(TensorData::new(v, [b, c, h, w]), dev)
    }

    fn vals(x: Tensor<4>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Every output pixel is the input pixel at a per-image offset (the same for all channels)
    /// or zero outside the image, the offsets stay within the ratio, and both signs occur.
    #[test]
    fn translation_shifts_each_image_as_a_whole() {
        let dev = Device::flex();
        let (b, c, h, w) = (16, 2, 8, 8);
        let x = ramp(b, c, h, w, &dev);
        let input = vals(x.clone());
        let out = vals(translate(x, 0.25, &mut SplitMix64::new(3)));
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..b {
            let at = |v: &[f32], ch: usize, y: usize, xx: usize| v[((i * c + ch) * h + y) * w + xx];
            let shift = (-2i64..=2)
                .flat_map(|dy| (-2i64..=2).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| {
                    (0..c).all(|ch| {
                        (0..h).all(|y| {
                            (0..w).all(|xx| {
                                let (sy, sx) = (y as i64 + dy, xx as i64 + dx);
                                let want =
                                    if (0..h as i64).contains(&sy) && (0..w as i64).contains(&sx) {
                                        at(&input, ch, sy as usize, sx as usize)
                                    } else {
                                        0.0
                                    };
                                at(&out, ch, y, xx) == want
                            })
                        })
                    })
                });
            seen.insert(shift.unwrap_or_else(|| panic!("image {i} is not a shift of its input")));
        }
        assert!(seen.len() > 3, "offsets vary: {seen:?}");
        assert!(seen.iter().any(|s| s.0 < 0) && seen.iter().any(|s| s.0 > 0));
    }

    /// The generator learns through the augmentation: the gradient of a translated image is the
    /// shifted-back upstream gradient (ones where a pixel was kept).
    #[test]
    fn translation_and_cutout_pass_gradients_back() {
        let dev = Device::flex().autodiff();
        let x = ramp(4, 3, 8, 8, &dev).require_grad();
        let mut rng = SplitMix64::new(9);
        let y = cutout(translate(x.clone(), 0.125, &mut rng), 0.5, &mut rng);
        let kept = vals(y.clone().inner())
            .iter()
            .filter(|v| **v != 0.0)
            .count();
        let g = vals(x.grad(&y.sum().backward()).unwrap());
        let ones = g.iter().filter(|v| **v == 1.0).count();
        assert!(g.iter().all(|v| *v == 0.0 || *v == 1.0), "{g:?}");
        assert_eq!(ones, kept, "each kept output pixel reads one input pixel");
        assert!(kept < 4 * 3 * 64, "something was cut");
    }

    #[test]
    fn cutout_zeroes_one_square_per_image() {
        let dev = Device::flex();
        let (b, h) = (32, 8);
        let x = Tensor::<4>::ones([b, 3, h, h], &dev);
        let out = vals(cutout(x, 0.5, &mut SplitMix64::new(5)));
        for i in 0..b {
            let img = &out[i * 3 * h * h..(i + 1) * 3 * h * h];
            let zeros: Vec<usize> = (0..h * h).filter(|&p| img[p] == 0.0).collect();
            assert!(
                !zeros.is_empty() && zeros.len() <= 16,
                "image {i}: {}",
                zeros.len()
            );
            // The same square in every channel, and a rectangle.
            for ch in 1..3 {
                assert!(zeros.iter().all(|&p| img[ch * h * h + p] == 0.0));
            }
            let (ys, xs): (Vec<usize>, Vec<usize>) = zeros.iter().map(|p| (p / h, p % h)).unzip();
            let area = (ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1)
                * (xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1);
            assert_eq!(area, zeros.len(), "image {i}: not a rectangle");
        }
        let none = DiffAugment {
            translation: 0.0,
            cutout: 0.0,
        };
        let x = ramp(2, 3, 8, 8, &dev);
        let mut rng = SplitMix64::new(1);
        assert_eq!(vals(none.augment(x.clone(), &mut rng)), vals(x));
        assert_eq!(
            rng.next_u64(),
            SplitMix64::new(1).next_u64(),
            "off draws nothing"
        );
    }
}
