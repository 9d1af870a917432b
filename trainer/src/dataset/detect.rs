//! Multi-scale face detection with an LBP [`Cascade`], done the way OpenCV's
//! `CascadeClassifier::detectMultiScale` does it (OpenCV 4, `cascadedetect.cpp`), so that
//! kyara finds the boxes OpenCV finds:
//!
//! 1. grayscale with OpenCV 4's 15-bit fixed-point BT.601 weights, then (by default)
//!    `equalizeHist`;
//! 2. scales `1, f, f^2, ...` (f = `scale_factor`, kept as `f32` like OpenCV) while the scaled
//!    window fits the image and `max_size`; scales whose window is below `min_size` are skipped;
//! 3. per scale the image is shrunk to `round(W / s) x round(H / s)` with OpenCV's bit-exact
//!    bilinear resize (8 fractional bits per weight), and its integral image computed;
//! 4. every window position on a grid of step 2 (step 1 once `s >= 2`) is run through the
//!    stages; a window rejected by the very first stage skips the next position as well;
//! 5. the raw hits, mapped back to image pixels, are grouped with `groupRectangles`
//!    (`min_neighbors`, eps 0.2): clusters of similar boxes averaged, clusters of
//!    `min_neighbors` boxes or fewer dropped, small boxes inside stronger ones dropped; then
//!    clipped to the image.

use image::RgbImage;

use super::cascade::{Cascade, Rect};

/// OpenCV's `GROUP_EPS`: how far (relative to the box size) two boxes may differ and still
/// be one face.
pub const GROUP_EPS: f64 = 0.2;

/// An 8-bit grayscale image, row-major, `width * height` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl GrayImage {
    /// OpenCV 4's `COLOR_RGB2GRAY` on 8-bit input: `(9798 R + 19235 G + 3735 B + 2^14) >> 15`
    /// (checked equal to `cv2.cvtColor` on all 2^24 colours, OpenCV 4.14).
    pub fn from_rgb(img: &RgbImage) -> Self {
        let pixels = img
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0.map(u32::from);
                ((r * 9798 + g * 19235 + b * 3735 + (1 << 14)) >> 15) as u8
            })
            .collect();
        Self {
            width: img.width() as usize,
            height: img.height() as usize,
            pixels,
        }
    }

    /// OpenCV's `equalizeHist`: the cumulative histogram, from the first occupied level,
    /// stretched to 0..=255 (rounded half to even, in `f32`).
    pub fn equalize(&mut self) {
        let mut hist = [0u32; 256];
        for &p in &self.pixels {
            hist[usize::from(p)] += 1;
        }
        let total = self.pixels.len() as u32;
        let Some(first) = hist.iter().position(|&h| h > 0) else {
            return;
        };
        if hist[first] == total {
            self.pixels.fill(first as u8);
            return;
        }
        let scale = 255.0f32 / (total - hist[first]) as f32;
        let mut lut = [0u8; 256];
        let mut sum = 0u32;
        for i in first + 1..256 {
            sum += hist[i];
            lut[i] = (sum as f32 * scale).round_ties_even().clamp(0.0, 255.0) as u8;
        }
        for p in &mut self.pixels {
            *p = lut[usize::from(*p)];
        }
    }

    /// OpenCV's `resize(..., INTER_LINEAR_EXACT)` for 8-bit input: pixel centres mapped with
    /// `(d + 0.5) * src / dst - 0.5`, weights rounded to 1/256, the sum rounded once at the end.
    pub fn resize_linear_exact(&self, width: usize, height: usize) -> GrayImage {
        if width == self.width && height == self.height {
            return self.clone();
        }
        let taps = |dst: usize, src: usize| -> Vec<(usize, usize, u32)> {
            let scale = src as f64 / dst as f64;
            (0..dst)
                .map(|d| {
                    let f = (d as f64 + 0.5) * scale - 0.5;
                    let i = f.floor();
                    let (i, frac) = if i < 0.0 {
                        (0, 0.0)
                    } else if i as usize >= src - 1 {
                        (src - 1, 0.0)
                    } else {
                        (i as usize, f - i)
                    };
                    let w1 = (frac * 256.0).round() as u32;
                    (i, (i + 1).min(src - 1), w1)
                })
                .collect()
        };
        let xs = taps(width, self.width);
        let ys = taps(height, self.height);
        // Horizontal pass into 8.8 fixed point per source row that a destination row needs.
        let hrow = |sy: usize| -> Vec<u32> {
            let row = &self.pixels[sy * self.width..(sy + 1) * self.width];
            xs.iter()
                .map(|&(a, b, w1)| u32::from(row[a]) * (256 - w1) + u32::from(row[b]) * w1)
                .collect()
        };
        let mut pixels = Vec::with_capacity(width * height);
        let mut cache: Option<(usize, Vec<u32>)> = None;
        for &(a, b, w1) in &ys {
            let ra = match cache.take() {
                Some((y, r)) if y == a => r,
                _ => hrow(a),
            };
            let rb = if b == a { ra.clone() } else { hrow(b) };
            for x in 0..width {
                let v = ra[x] * (256 - w1) + rb[x] * w1;
                pixels.push(((v + (1 << 15)) >> 16).min(255) as u8);
            }
            cache = Some((b, rb));
        }
        GrayImage {
            width,
            height,
            pixels,
        }
    }

    /// The integral image, `(width + 1) * (height + 1)` sums, row-major with a zero first row
    /// and column: `ii[y][x]` = sum of pixels above and left of `(x, y)`.
    pub fn integral(&self) -> Vec<i32> {
        let stride = self.width + 1;
        let mut ii = vec![0i32; stride * (self.height + 1)];
        for y in 0..self.height {
            let mut row = 0i32;
            for x in 0..self.width {
                row += i32::from(self.pixels[y * self.width + x]);
                ii[(y + 1) * stride + x + 1] = ii[y * stride + x + 1] + row;
            }
        }
        ii
    }
}

/// The settings of `detectMultiScale`; the defaults are those of lbpcascade_animeface's
/// reference usage (`scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)`, equalised input).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    /// Ratio between successive scales, > 1.
    pub scale_factor: f64,
    /// A face needs more than this many raw hits in its cluster; 0 returns the raw hits.
    pub min_neighbors: usize,
    /// Smallest window in image pixels (width, height).
    pub min_size: (u32, u32),
    /// Largest window in image pixels; `None` = the image size.
    pub max_size: Option<(u32, u32)>,
    /// Histogram-equalise the grayscale image first.
    pub equalize: bool,
}

impl Default for DetectParams {
    fn default() -> Self {
        Self {
            scale_factor: 1.1,
            min_neighbors: 5,
            min_size: (24, 24),
            max_size: None,
            equalize: true,
        }
    }
}

/// Per-scale offsets of the 16 grid corners of each feature's 3x3 blocks in the integral image.
struct ScaledFeatures {
    corners: Vec<[usize; 16]>,
}

impl ScaledFeatures {
    fn new(cascade: &Cascade, stride: usize) -> Self {
        let corners = cascade
            .features
            .iter()
            .map(|r| {
                let mut c = [0usize; 16];
                for (k, o) in c.iter_mut().enumerate() {
                    let x = (r.x + (k as i32 % 4) * r.width) as usize;
                    let y = (r.y + (k as i32 / 4) * r.height) as usize;
                    *o = y * stride + x;
                }
                c
            })
            .collect();
        Self { corners }
    }

    /// The LBP code of feature `f` for the window whose top-left integral index is `base`:
    /// bit 7..0 = blocks top-left, top, top-right, right, bottom-right, bottom, bottom-left,
    /// left, each set when its sum is >= the centre block's (OpenCV's bit order).
    #[inline]
    fn code(&self, ii: &[i32], base: usize, f: usize) -> u8 {
        let o = &self.corners[f];
        let s = |a: usize, b: usize, c: usize, d: usize| {
            ii[base + o[a]] - ii[base + o[b]] - ii[base + o[c]] + ii[base + o[d]]
        };
        let centre = s(5, 6, 9, 10);
        let bit = |v: i32, b: u8| if v >= centre { b } else { 0 };
        bit(s(0, 1, 4, 5), 128)
            | bit(s(1, 2, 5, 6), 64)
            | bit(s(2, 3, 6, 7), 32)
            | bit(s(6, 7, 10, 11), 16)
            | bit(s(10, 11, 14, 15), 8)
            | bit(s(9, 10, 13, 14), 4)
            | bit(s(8, 9, 12, 13), 2)
            | bit(s(4, 5, 8, 9), 1)
    }
}

impl Cascade {
    /// Runs the stages on one window: `Ok(())` when all pass, `Err(stage)` with the index of
    /// the stage that rejected it.
    fn run_at(&self, feats: &ScaledFeatures, ii: &[i32], base: usize) -> Result<(), usize> {
        for (si, stage) in self.stages.iter().enumerate() {
            let sum: f64 = stage
                .stumps
                .iter()
                .map(|s| f64::from(s.vote(feats.code(ii, base, s.feature))))
                .sum();
            if sum < f64::from(stage.threshold) {
                return Err(si);
            }
        }
        Ok(())
    }

    /// The scales `detectMultiScale` visits for a `width x height` image (as `f32`, as OpenCV
    /// keeps them).
    pub fn scales(&self, width: usize, height: usize, p: &DetectParams) -> Vec<f32> {
        let (max_w, max_h) = p
            .max_size
            .map(|(w, h)| (w as usize, h as usize))
            .filter(|&(w, h)| w > 0 && h > 0)
            .unwrap_or((width, height));
        let mut out = Vec::new();
        let mut factor = 1.0f64;
        // A scale factor <= 1 would never end; the CLI refuses it, this guards the library.
        let step = p.scale_factor.max(1.0001);
        loop {
            let ww = (f64::from(self.width) * factor).round_ties_even() as usize;
            let wh = (f64::from(self.height) * factor).round_ties_even() as usize;
            if ww > max_w || wh > max_h || ww > width || wh > height {
                break;
            }
            if ww >= p.min_size.0 as usize && wh >= p.min_size.1 as usize {
                out.push(factor as f32);
            }
            factor *= step;
        }
        out
    }

    /// Every window that passes all stages, in image pixels, before grouping, clipped to the
    /// image (what `detectMultiScale` returns with `minNeighbors=0`).
    pub fn detect_raw(&self, gray: &GrayImage, p: &DetectParams) -> Vec<Rect> {
        let mut hits = self.candidates(gray, p);
        clip(&mut hits, gray);
        hits
    }

    /// The passing windows, unclipped (a window may reach past the right or bottom edge by the
    /// rounding of its scaled size).
    fn candidates(&self, gray: &GrayImage, p: &DetectParams) -> Vec<Rect> {
        let mut img;
        let gray = if p.equalize {
            img = gray.clone();
            img.equalize();
            &img
        } else {
            gray
        };
        let (cw, ch) = (self.width as usize, self.height as usize);
        let mut hits = Vec::new();
        for scale in self.scales(gray.width, gray.height, p) {
            let sw = (gray.width as f64 / f64::from(scale)).round_ties_even() as usize;
            let sh = (gray.height as f64 / f64::from(scale)).round_ties_even() as usize;
            if sw < cw || sh < ch {
                continue;
            }
            let small = gray.resize_linear_exact(sw, sh);
            let ii = small.integral();
            let stride = sw + 1;
            let feats = ScaledFeatures::new(self, stride);
            let step = if scale >= 2.0 { 1 } else { 2 };
            let win_w = (cw as f32 * scale).round_ties_even() as i32;
            let win_h = (ch as f32 * scale).round_ties_even() as i32;
            // Window origins 0..=sw - cw (OpenCV: integral width - window width positions).
            let (nx, ny) = (sw + 1 - cw, sh + 1 - ch);
            for y in (0..ny).step_by(step) {
                let mut x = 0;
                while x < nx {
                    match self.run_at(&feats, &ii, y * stride + x) {
                        Ok(()) => hits.push(Rect::new(
                            (x as f32 * scale).round_ties_even() as i32,
                            (y as f32 * scale).round_ties_even() as i32,
                            win_w,
                            win_h,
                        )),
                        // Rejected at once: the next position is skipped too.
                        Err(0) => x += step,
                        Err(_) => {}
                    }
                    x += step;
                }
            }
        }
        hits
    }

    /// `detectMultiScale`: the grouped face boxes in image pixels. As in OpenCV the boxes are
    /// clipped to the image after grouping (`clipObjects`), so grouping averages unclipped boxes.
    pub fn detect(&self, gray: &GrayImage, p: &DetectParams) -> Vec<Rect> {
        let mut boxes = self.candidates(gray, p);
        if p.min_neighbors > 0 {
            boxes = group_rectangles(&boxes, p.min_neighbors, GROUP_EPS);
        }
        clip(&mut boxes, gray);
        boxes
    }
}

/// Intersects every box with the image.
fn clip(boxes: &mut Vec<Rect>, gray: &GrayImage) {
    let (w, h) = (gray.width as i32, gray.height as i32);
    for b in boxes.iter_mut() {
        let (x0, y0) = (b.x.clamp(0, w), b.y.clamp(0, h));
        let (x1, y1) = ((b.x + b.width).clamp(0, w), (b.y + b.height).clamp(0, h));
        *b = Rect::new(x0, y0, x1 - x0, y1 - y0);
    }
    boxes.retain(|b| b.width > 0 && b.height > 0);
}

/// OpenCV's `SimilarRects`: every edge within `eps` x the mean of the smaller sides.
fn similar(a: &Rect, b: &Rect, eps: f64) -> bool {
    let delta = eps * f64::from(a.width.min(b.width) + a.height.min(b.height)) * 0.5;
    let close = |u: i32, v: i32| f64::from((u - v).abs()) <= delta;
    close(a.x, b.x)
        && close(a.y, b.y)
        && close(a.x + a.width, b.x + b.width)
        && close(a.y + a.height, b.y + b.height)
}

/// OpenCV's `groupRectangles`: partitions the boxes into classes of (transitively) similar
/// ones, averages each class, keeps classes with more than `threshold` members, and drops a
/// class lying inside a stronger one (within `eps` of its size). Classes come in the order of
/// their first member.
pub fn group_rectangles(rects: &[Rect], threshold: usize, eps: f64) -> Vec<Rect> {
    if threshold == 0 || rects.is_empty() {
        return rects.to_vec();
    }
    // Union-find with path compression.
    let n = rects.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..n {
        for j in i + 1..n {
            if similar(&rects[i], &rects[j], eps) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                if a != b {
                    parent[b] = a;
                }
            }
        }
    }
    let mut label = vec![usize::MAX; n];
    let mut sums: Vec<([i64; 4], usize)> = Vec::new();
    for (i, b) in rects.iter().enumerate() {
        let r = root(&mut parent, i);
        if label[r] == usize::MAX {
            label[r] = sums.len();
            sums.push(([0; 4], 0));
        }
        let (s, count) = &mut sums[label[r]];
        for (acc, v) in s.iter_mut().zip([b.x, b.y, b.width, b.height]) {
            *acc += i64::from(v);
        }
        *count += 1;
    }
    let avg: Vec<(Rect, usize)> = sums
        .iter()
        .map(|(s, count)| {
            let k = 1.0f32 / *count as f32;
            let m = |v: i64| (v as f32 * k).round_ties_even() as i32;
            (Rect::new(m(s[0]), m(s[1]), m(s[2]), m(s[3])), *count)
        })
        .collect();
    let mut out = Vec::new();
    for (i, &(r1, n1)) in avg.iter().enumerate() {
        if n1 <= threshold {
            continue;
        }
        let inside_stronger = avg.iter().enumerate().any(|(j, &(r2, n2))| {
            if j == i || n2 <= threshold {
                return false;
            }
            let dx = (r2.width as f64 * eps).round_ties_even() as i32;
            let dy = (r2.height as f64 * eps).round_ties_even() as i32;
            r1.x >= r2.x - dx
                && r1.y >= r2.y - dy
                && r1.x + r1.width <= r2.x + r2.width + dx
                && r1.y + r1.height <= r2.y + r2.height + dy
                && (n2 > n1.max(3) || n1 < 3)
        });
        if !inside_stronger {
            out.push(r1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::cascade::tests::one_stump_xml;
    use super::*;
    use std::path::Path;

    fn gray(width: usize, height: usize, f: impl Fn(usize, usize) -> u8) -> GrayImage {
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                pixels.push(f(x, y));
            }
        }
        GrayImage {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn grayscale_and_equalisation_match_opencv_formulas() {
        let img = RgbImage::from_fn(3, 1, |x, _| {
            image::Rgb([[255, 0, 0], [10, 200, 30], [123, 18, 54]][x as usize])
        });
        // (255*9798 + 2^14) >> 15 = 76; (10*9798 + 200*19235 + 30*3735 + 2^14) >> 15 = 124;
        // 123, 18, 54 -> 53.498 -> 53 (the 14-bit weights of OpenCV 3 give 54).
        assert_eq!(GrayImage::from_rgb(&img).pixels, vec![76, 124, 53]);

        // Levels 10 (x2), 20, 30: lut[10] = 0, lut[20] = round(1 * 255/2), lut[30] = 255.
        let mut g = gray(4, 1, |x, _| [10, 10, 20, 30][x]);
        g.equalize();
        assert_eq!(g.pixels, vec![0, 0, 128, 255]);
        let mut flat = gray(3, 3, |_, _| 7);
        flat.equalize();
        assert!(flat.pixels.iter().all(|&p| p == 7));
    }

    #[test]
    fn bilinear_resize_and_integral_are_exact() {
        // Halving a 4x1 ramp: centres at 0.5 and 2.5 -> (0+10)/2 and (20+30)/2.
        let g = gray(4, 1, |x, _| [0, 10, 20, 30][x]);
        assert_eq!(g.resize_linear_exact(2, 1).pixels, vec![5, 25]);
        // Same size is a copy.
        assert_eq!(g.resize_linear_exact(4, 1), g);
        let g = gray(3, 2, |x, y| (x + 3 * y) as u8);
        let ii = g.integral();
        // Sum of all six pixels (0..=5) at the bottom-right corner.
        assert_eq!(ii[2 * 4 + 3], 15);
        assert_eq!(ii[4 + 2], 1);
    }

    #[test]
    fn lbp_code_follows_opencv_bit_order() {
        // One feature of 1x1 blocks on a 3x3 window; the centre is 5, the ring clockwise from
        // the top-left 9 0 9 0 9 0 9 0: blocks TL, TR, BR, BL are >= centre -> 128|32|8|2.
        let c = Cascade::parse(&one_stump_xml(0), Path::new("t.xml")).unwrap();
        let g = gray(3, 3, |x, y| [[9, 0, 9], [0, 5, 0], [9, 0, 9]][y][x]);
        let ii = g.integral();
        let mut c1 = c.clone();
        c1.features[0] = Rect::new(0, 0, 1, 1);
        let f = ScaledFeatures::new(&c1, 4);
        assert_eq!(f.code(&ii, 0, 0), 128 | 32 | 8 | 2);
        let g = gray(3, 3, |x, y| [[0, 9, 0], [9, 5, 9], [0, 9, 0]][y][x]);
        assert_eq!(f.code(&g.integral(), 0, 0), 64 | 16 | 4 | 1);
    }

    /// A 6x6-window cascade that fires where the 2x2-block LBP code is 0 (all eight ring
    /// blocks darker than the centre): a bright 2x2 square on black.
    fn bright_square_cascade() -> Cascade {
        Cascade::parse(&one_stump_xml(0), Path::new("t.xml")).unwrap()
    }

    #[test]
    fn raw_hits_sit_where_the_pattern_is() {
        let c = bright_square_cascade();
        // 12x12 black, bright 2x2 square at (6..8, 4..6): a window at (x, y) has its centre
        // block at (x+2..x+4, y+2..y+4), so only (4, 2) sees it exactly. Without
        // equalisation, scale 1 only (min size 6, max size 6).
        let g = gray(12, 12, |x, y| {
            if (6..8).contains(&x) && (4..6).contains(&y) {
                200
            } else {
                0
            }
        });
        let p = DetectParams {
            min_neighbors: 0,
            min_size: (6, 6),
            max_size: Some((6, 6)),
            equalize: false,
            ..Default::default()
        };
        // Flat windows give code 255 (every ring sum >= the centre's) and do not fire.
        let hits = c.detect_raw(&g, &p);
        assert_eq!(hits, vec![Rect::new(4, 2, 6, 6)]);
        // Odd positions are never visited at step 2: shift the square by one and it is missed.
        let g1 = gray(12, 12, |x, y| {
            if (7..9).contains(&x) && (4..6).contains(&y) {
                200
            } else {
                0
            }
        });
        assert!(c.detect_raw(&g1, &p).is_empty());
    }

    #[test]
    fn scales_follow_the_factor_and_limits() {
        let c = bright_square_cascade();
        let p = DetectParams {
            min_size: (7, 7),
            ..Default::default()
        };
        let s = c.scales(10, 20, &p);
        // Windows: 6 (skipped: < 7), 6.6 -> 7, 7.26 -> 7, 7.99 -> 8, 8.78 -> 9, 9.66 -> 10, then
        // 10.6 -> 11 > 10 stops.
        assert_eq!(s.len(), 5);
        assert!((s[0] - 1.1).abs() < 1e-6);
    }

    #[test]
    fn grouping_averages_clusters_and_drops_weak_ones() {
        let cluster = [
            Rect::new(10, 10, 20, 20),
            Rect::new(12, 10, 20, 20),
            Rect::new(10, 12, 20, 20),
            Rect::new(11, 11, 21, 21),
        ];
        let mut rects = cluster.to_vec();
        rects.push(Rect::new(100, 100, 20, 20)); // alone
        let g = group_rectangles(&rects, 3, GROUP_EPS);
        // Mean of the four: x = 43/4 = 10.75 -> 11, width = 81/4 = 20.25 -> 20.
        assert_eq!(g, vec![Rect::new(11, 11, 20, 20)]);
        assert!(group_rectangles(&rects, 4, GROUP_EPS).is_empty());
        // A small strong-enough box inside a much stronger big one goes.
        let mut nested: Vec<Rect> = (0..10).map(|_| Rect::new(0, 0, 100, 100)).collect();
        nested.extend((0..4).map(|_| Rect::new(30, 30, 20, 20)));
        assert_eq!(
            group_rectangles(&nested, 3, GROUP_EPS),
            vec![Rect::new(0, 0, 100, 100)]
        );
    }

    #[test]
    fn detect_finds_a_drawn_pattern_at_two_scales() {
        let c = bright_square_cascade();
        // A bright 4x4 square at (20..24, 16..20) on a black 40x40 image, scale factor 2.
        // Scale 1 (step 2): the only firing window, (19, 15), is at odd coordinates: missed.
        // Scale 2 (20x20, exact 2x2 means, step 1): the square is the 2x2 centre block of the
        // window at (8, 6) -> (16, 12, 12, 12) in the image. Scale 4 (10x10): bilinear taps
        // 4d+1, 4d+2 leave one bright pixel at (5, 4), the centre of 4 windows (x 2..=3,
        // y 1..=2) -> 24-pixel boxes at x, y in {8, 12} x {4, 8}.
        let g = gray(40, 40, |x, y| {
            if (20..24).contains(&x) && (16..20).contains(&y) {
                255
            } else {
                0
            }
        });
        let p = DetectParams {
            scale_factor: 2.0,
            min_neighbors: 0,
            equalize: false,
            min_size: (6, 6),
            ..Default::default()
        };
        let mut hits = c.detect_raw(&g, &p);
        hits.sort_by_key(|r| (r.width, r.y, r.x));
        assert_eq!(
            hits,
            vec![
                Rect::new(16, 12, 12, 12),
                Rect::new(8, 4, 24, 24),
                Rect::new(12, 4, 24, 24),
                Rect::new(8, 8, 24, 24),
                Rect::new(12, 8, 24, 24),
            ]
        );
        // Grouped with min_neighbors 3: the four scale-4 boxes are one face (4 > 3), the lone
        // scale-2 box is dropped.
        let faces = c.detect(
            &g,
            &DetectParams {
                min_neighbors: 3,
                ..p
            },
        );
        assert_eq!(faces, vec![Rect::new(10, 6, 24, 24)]);
    }
}
