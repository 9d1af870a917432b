//! Test scenes with known faces: face crops enlarged and pasted at known places on a larger
//! canvas whose background is a mosaic of other crops' corners (hair, clothes, backgrounds:
//! what lies around a face, not a face). The same seed and folder give the same pixels, so
//! kyara and OpenCV (`tests/reference/detect_faces.py`) see identical scenes and no image has
//! to be stored.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::{RgbImage, imageops, imageops::FilterType};
use shared_model::SplitMix64;

use super::cascade::Rect;

/// Canvas size of every scene, pixels.
pub const SCENE_SIZE: (u32, u32) = (320, 240);

/// One face pasted into a scene: where (canvas pixels: the square before rotation), turned by
/// how much (degrees, counter-clockwise on screen) and which file it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SceneFace {
    pub rect: Rect,
    #[serde(default)]
    pub angle: f32,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Scene {
    /// `scene-NNN.png`.
    pub name: String,
    pub image: RgbImage,
    pub faces: Vec<SceneFace>,
}

/// Image files under `dir` (recursively, hidden ones skipped), sorted.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(crate::tagger::tag::list_images(dir)?
        .into_iter()
        .map(|n| dir.join(n))
        .collect())
}

fn pick(rng: &mut SplitMix64, lo: u32, hi: u32) -> u32 {
    lo + rng.below(u64::from(hi - lo + 1)) as u32
}

/// Pastes `face` centred on `rect`'s centre, turned by `angle` degrees (bilinear, clipped to
/// the canvas; the corners that the turn moves leave the background as it was).
fn paste_rotated(canvas: &mut RgbImage, face: &RgbImage, rect: &Rect, angle: f32) {
    let (sin, cos) = f64::from(angle).to_radians().sin_cos();
    let side = f64::from(rect.width);
    let (cx, cy) = (
        f64::from(rect.x) + side / 2.0,
        f64::from(rect.y) + side / 2.0,
    );
    let reach = (side * (cos.abs() + sin.abs()) / 2.0).ceil() as i64 + 1;
    let (w, h) = (i64::from(canvas.width()), i64::from(canvas.height()));
    for py in (cy as i64 - reach).max(0)..(cy as i64 + reach).min(h) {
        for px in (cx as i64 - reach).max(0)..(cx as i64 + reach).min(w) {
            let (dx, dy) = (px as f64 + 0.5 - cx, py as f64 + 0.5 - cy);
            // Screen y points down: a counter-clockwise turn on screen maps back with +angle.
            let u = cos * dx - sin * dy + side / 2.0 - 0.5;
            let v = sin * dx + cos * dy + side / 2.0 - 0.5;
            if u < 0.0 || v < 0.0 || u > side - 1.0 || v > side - 1.0 {
                continue;
            }
            let (u0, v0) = (u.floor() as u32, v.floor() as u32);
            let (u1, v1) = (
                (u0 + 1).min(face.width() - 1),
                (v0 + 1).min(face.height() - 1),
            );
            let (fu, fv) = (u - f64::from(u0), v - f64::from(v0));
            let mut out = [0u8; 3];
            for (c, o) in out.iter_mut().enumerate() {
                let p = |x: u32, y: u32| f64::from(face.get_pixel(x, y).0[c]);
                let top = p(u0, v0) * (1.0 - fu) + p(u1, v0) * fu;
                let bottom = p(u0, v1) * (1.0 - fu) + p(u1, v1) * fu;
                *o = (top * (1.0 - fv) + bottom * fv).round().clamp(0.0, 255.0) as u8;
            }
            canvas.put_pixel(px as u32, py as u32, image::Rgb(out));
        }
    }
}

/// `count` scenes from the face crops under `faces_dir`, 2 or 3 faces each, 64 to 128 pixels
/// wide, never overlapping, turned by up to `max_rotation` degrees either way (0: upright; then
/// the random stream is the one the recorded OpenCV reference was made from).
pub fn make_scenes(
    faces_dir: &Path,
    count: usize,
    seed: u64,
    max_rotation: f32,
) -> Result<Vec<Scene>> {
    let files = list_images(faces_dir)?;
    if files.len() < 8 {
        bail!(
            "{} has {} images; scenes need at least 8",
            faces_dir.display(),
            files.len()
        );
    }
    let mut rng = SplitMix64::new(seed);
    let load = |p: &Path| -> Result<RgbImage> {
        Ok(image::open(p)
            .with_context(|| format!("cannot read {}", p.display()))?
            .to_rgb8())
    };
    let (cw, ch) = SCENE_SIZE;
    let mut scenes = Vec::with_capacity(count);
    for n in 0..count {
        // Background: 40-pixel cells, each a 16x16 corner of a random crop, enlarged.
        let mut canvas = RgbImage::new(cw, ch);
        for cy in (0..ch).step_by(40) {
            for cx in (0..cw).step_by(40) {
                let img = load(&files[rng.below(files.len() as u64) as usize])?;
                let (w, h) = img.dimensions();
                let corner = rng.below(4);
                let side = 16.min(w).min(h);
                let (x, y) = match corner {
                    0 => (0, 0),
                    1 => (w - side, 0),
                    2 => (0, h - side),
                    _ => (w - side, h - side),
                };
                let patch = imageops::crop_imm(&img, x, y, side, side).to_image();
                let patch = imageops::resize(&patch, 40, 40, FilterType::Triangle);
                imageops::replace(&mut canvas, &patch, i64::from(cx), i64::from(cy));
            }
        }
        let want = 2 + rng.below(2) as usize;
        let mut faces: Vec<SceneFace> = Vec::new();
        let mut tries = 0;
        while faces.len() < want && tries < 100 {
            tries += 1;
            let side = pick(&mut rng, 64, 128);
            let x = pick(&mut rng, 0, cw - side) as i32;
            let y = pick(&mut rng, 0, ch - side) as i32;
            let rect = Rect::new(x, y, side as i32, side as i32);
            // Keep a 4-pixel gap so no two faces touch (more when turned corners stick out).
            let gap = if max_rotation > 0.0 {
                4 + side as i32 / 5
            } else {
                4
            };
            let grown = Rect::new(
                x - gap,
                y - gap,
                side as i32 + 2 * gap,
                side as i32 + 2 * gap,
            );
            if faces.iter().any(|f| f.rect.iou(&grown) > 0.0) {
                continue;
            }
            let file = &files[rng.below(files.len() as u64) as usize];
            let face = imageops::resize(&load(file)?, side, side, FilterType::CatmullRom);
            let angle = if max_rotation > 0.0 {
                ((rng.next_f64() * 2.0 - 1.0) * f64::from(max_rotation)) as f32
            } else {
                0.0
            };
            if angle == 0.0 {
                imageops::replace(&mut canvas, &face, i64::from(x), i64::from(y));
            } else {
                paste_rotated(&mut canvas, &face, &rect, angle);
            }
            let source = file
                .strip_prefix(faces_dir)
                .unwrap_or(file)
                .to_string_lossy()
                .into_owned();
            faces.push(SceneFace {
                rect,
                angle,
                source,
            });
        }
        scenes.push(Scene {
            name: format!("scene-{n:03}.png"),
            image: canvas,
            faces,
        });
    }
    Ok(scenes)
}

/// The `truth.json` of a folder of scenes: per scene its file and faces.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Truth {
    pub seed: u64,
    pub scenes: Vec<TruthScene>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TruthScene {
    pub file: String,
    /// SHA-256 of the RGB pixels (row-major, 3 bytes a pixel), hex.
    pub rgb_sha256: String,
    pub faces: Vec<SceneFace>,
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hex SHA-256 of an image's RGB bytes.
pub fn rgb_sha256(img: &RgbImage) -> String {
    sha256_hex(img.as_raw())
}

/// Writes the scenes as PNGs plus `truth.json` into `out`.
pub fn write_scenes(scenes: &[Scene], seed: u64, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut truth = Truth {
        seed,
        scenes: Vec::new(),
    };
    for s in scenes {
        let rgba = image::DynamicImage::ImageRgb8(s.image.clone()).to_rgba8();
        crate::fsutil::write_atomic(&out.join(&s.name), &crate::fsutil::png_bytes(&rgba)?)?;
        truth.scenes.push(TruthScene {
            file: s.name.clone(),
            rgb_sha256: rgb_sha256(&s.image),
            faces: s.faces.clone(),
        });
    }
    crate::fsutil::write_atomic(
        &out.join("truth.json"),
        serde_json::to_string_pretty(&truth)?.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_deterministic_and_faces_sit_where_recorded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10u8 {
            // Each "face" is one flat colour, so its pasted square is recognisable.
            let img = RgbImage::from_pixel(64, 64, image::Rgb([i * 20, 255 - i * 20, 77]));
            img.save(dir.path().join(format!("{i}.png"))).unwrap();
        }
        let a = make_scenes(dir.path(), 2, 7, 0.0).unwrap();
        let b = make_scenes(dir.path(), 2, 7, 0.0).unwrap();
        assert_eq!(a[1].image, b[1].image);
        assert_eq!(a[1].faces, b[1].faces);
        for s in &a {
            assert!((2..=3).contains(&s.faces.len()));
            for f in &s.faces {
                let i: u8 = f.source.trim_end_matches(".png").parse().unwrap();
                let c = f.rect.x as u32 + f.rect.width as u32 / 2;
                let r = f.rect.y as u32 + f.rect.height as u32 / 2;
                assert_eq!(s.image.get_pixel(c, r).0, [i * 20, 255 - i * 20, 77]);
            }
        }
        // Turned faces still cover their centre; the seed's draws for placing them change.
        let turned = make_scenes(dir.path(), 2, 7, 15.0).unwrap();
        for s in &turned {
            for f in &s.faces {
                assert!(f.angle.abs() <= 15.0 && f.angle != 0.0);
                let i: u8 = f.source.trim_end_matches(".png").parse().unwrap();
                let c = f.rect.x as u32 + f.rect.width as u32 / 2;
                let r = f.rect.y as u32 + f.rect.height as u32 / 2;
                assert_eq!(s.image.get_pixel(c, r).0, [i * 20, 255 - i * 20, 77]);
            }
        }
        let out = dir.path().join("scenes");
        write_scenes(&a, 7, &out).unwrap();
        let truth: Truth =
            serde_json::from_slice(&std::fs::read(out.join("truth.json")).unwrap()).unwrap();
        let back = image::open(out.join(&truth.scenes[0].file))
            .unwrap()
            .to_rgb8();
        assert_eq!(rgb_sha256(&back), truth.scenes[0].rgb_sha256);
    }
}
