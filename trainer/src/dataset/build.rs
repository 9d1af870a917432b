//! `trainer dataset build`: illustrations in, an imagefolder dataset of face crops out.
//!
//! For every image under `--from` (sorted by path, so the result never depends on timing):
//! 1. the file's bytes are hashed (SHA-256); a file whose content was already seen is an
//!    *exact duplicate* and goes no further;
//! 2. it is decoded (a file that cannot be read or decoded is named and skipped) and its faces
//!    found ([`FaceSource`]: the cascade, or the whole image when the inputs are crops already);
//! 3. faces whose box is smaller than `min_face` pixels are counted and skipped; the others
//!    are cropped by [`crop_square`] and resized to `resolution`;
//! 4. each crop's [`Fingerprint`] (a 64-bit difference hash of its luma and an 8x8 colour
//!    thumbnail) is compared with those of the faces kept so far: within `near_distance` bits
//!    *and* `near_colour` mean levels of colour it is a *near duplicate* of the first such face
//!    and dropped, else it is written as `faces/NNNNNN.png`. (The hash alone, being blind to
//!    colour, calls different characters drawn in the same pose duplicates: on anime-faces-64,
//!    1,712 "near duplicates" at 4 bits, most of them other characters.)
//!
//! Tags come from the source illustration: its row in `--from/metadata.csv`
//! (`file_name,tags`), else its `.txt` sidecar; faces whose source has none are tagged by the
//! tagger when one is given (its lowest probability among the chosen tags recorded as
//! `tag_confidence`). `metadata.csv` (`file_name,tags` plus the source file, box and
//! confidence, which `train` ignores), `duplicates.csv` (every dropped duplicate with the one
//! kept) and `summary.json` are written last, atomically; face images are written to a
//! temporary name and renamed, so no half-written file ever carries a final name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::{RgbImage, imageops, imageops::FilterType};
use rayon::prelude::*;
use sha2::Digest;
use shared_model::tagger::{LoadedTagger, predicted_tags};
use shared_model::vocab::parse_tags;

use super::cascade::{Cascade, Rect};
use super::detect::{DetectParams, GrayImage};
use crate::fsutil::{png_bytes, write_atomic};
use crate::tagger::read_images;

/// Where the faces of an image come from.
pub enum FaceSource {
    /// Detected with a cascade.
    Detect {
        cascade: Box<Cascade>,
        params: DetectParams,
    },
    /// The inputs are face crops already: the whole image (centre square) is the face.
    WholeImage,
}

/// Settings of `trainer dataset build`.
pub struct BuildOptions {
    pub from: PathBuf,
    pub out: PathBuf,
    pub faces: FaceSource,
    /// Side of the written squares, pixels.
    pub resolution: u32,
    /// Added on every side of a face box, as a fraction of its longer side (0.25: the crop is
    /// 1.5 x the box; 0: the box itself, the framing of anime-faces-64).
    pub margin: f32,
    /// Boxes with a side below this (source pixels) are skipped.
    pub min_face: u32,
    /// dHash Hamming distance (of 64 bits) up to which two crops are near duplicates;
    /// `None` keeps near duplicates.
    pub near_distance: Option<u32>,
    /// ... and the largest mean absolute difference of their 8x8 colour thumbnails, in levels
    /// of 0..=255.
    pub near_colour: f32,
    /// Tag the faces whose source has no tags with a trained tagger.
    pub tagger: Option<AutoTag>,
    /// Write into a non-empty `out`.
    pub force: bool,
    pub progress: bool,
}

/// The tagger that labels faces without tags, and the probability from which a tag is written
/// (as `trainer tag --threshold`).
pub struct AutoTag {
    pub tagger: LoadedTagger,
    pub threshold: f32,
}

/// One dropped duplicate and the item kept in its place.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Duplicate {
    /// `exact` (same file content) or `near` (dHash within the distance).
    pub kind: &'static str,
    /// Exact: the source file kept; near: the face file kept (`faces/NNNNNN.png`).
    pub kept: String,
    /// Exact: the source file dropped; near: `SOURCE#x,y,w,h`.
    pub dropped: String,
    /// Hamming distance of the dHashes (0 for exact duplicates).
    pub distance: u32,
}

/// What a build did; also written as `summary.json`.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct BuildSummary {
    /// Image files found under `--from`.
    pub illustrations: usize,
    /// Decoded and searched for faces.
    pub read: usize,
    /// Files that could not be read or decoded, with the reason.
    pub unreadable: Vec<String>,
    /// Files whose content equals an earlier file's.
    pub exact_duplicates: usize,
    /// Distinct kept files that had exact duplicates.
    pub exact_groups: usize,
    /// Face boxes found (before the size filter).
    pub faces_found: usize,
    /// Boxes below `min_face`.
    pub too_small: usize,
    pub near_duplicates: usize,
    pub near_groups: usize,
    /// Face images written.
    pub written: usize,
    /// Written faces tagged by the tagger.
    pub tagged: usize,
    /// Written faces left without tags (`train` skips them).
    pub untagged: usize,
    /// Megapixels decoded and searched, and the wall time of decoding + detection, seconds.
    pub megapixels: f64,
    pub detect_seconds: f64,
    pub duplicates: Vec<Duplicate>,
}

/// Crops the square around `rect` grown by `margin` x its longer side on every side, clamped
/// into the image (shifted inward, and no larger than the image's shorter side), resized to
/// `resolution` with Lanczos3.
pub fn crop_square(img: &RgbImage, rect: &Rect, margin: f32, resolution: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = rect.width.max(rect.height) as f32;
    let side = ((long * (1.0 + 2.0 * margin)).round() as u32).clamp(1, w.min(h));
    let cx = rect.x as f32 + rect.width as f32 / 2.0;
    let cy = rect.y as f32 + rect.height as f32 / 2.0;
    let place = |c: f32, limit: u32| -> u32 {
        let start = (c - side as f32 / 2.0).round().max(0.0) as u32;
        start.min(limit - side)
    };
    let (x0, y0) = (place(cx, w), place(cy, h));
    let crop = imageops::crop_imm(img, x0, y0, side, side).to_image();
    if side == resolution {
        crop
    } else {
        imageops::resize(&crop, resolution, resolution, FilterType::Lanczos3)
    }
}

/// The 64-bit difference hash of an image: its luma shrunk to 9x8 (triangle filter), one bit
/// per horizontally adjacent pair, set when the left pixel is darker. Near-identical images
/// (re-encoded, resized, slightly retouched) differ in a few bits; different faces in ~20-32.
pub fn dhash(img: &RgbImage) -> u64 {
    let luma = image::DynamicImage::ImageRgb8(img.clone()).to_luma8();
    let small = imageops::resize(&luma, 9, 8, FilterType::Triangle);
    let mut bits = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            let (a, b) = (small.get_pixel(x, y).0[0], small.get_pixel(x + 1, y).0[0]);
            bits = (bits << 1) | u64::from(a < b);
        }
    }
    bits
}

/// What near duplicates are told by: [`dhash`] of the crop and its colour thumbnail
/// (8x8 RGB, triangle filter, 192 bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    pub dhash: u64,
    pub thumb: Vec<u8>,
}

impl Fingerprint {
    pub fn of(img: &RgbImage) -> Self {
        Self {
            dhash: dhash(img),
            thumb: imageops::resize(img, 8, 8, FilterType::Triangle).into_raw(),
        }
    }

    /// Mean absolute difference of the thumbnails, levels of 0..=255.
    pub fn colour_distance(&self, o: &Fingerprint) -> f32 {
        let sum: u32 = self
            .thumb
            .iter()
            .zip(&o.thumb)
            .map(|(a, b)| u32::from(a.abs_diff(*b)))
            .sum();
        sum as f32 / self.thumb.len().max(1) as f32
    }

    /// The dHash distance when both tests call `o` a near duplicate.
    pub fn near(&self, o: &Fingerprint, bits: u32, colour: f32) -> Option<u32> {
        let d = (self.dhash ^ o.dhash).count_ones();
        (d <= bits && self.colour_distance(o) <= colour).then_some(d)
    }
}

/// Tags of the sources: `from/metadata.csv` rows by file name when it exists, else `.txt`
/// sidecars (read when asked for).
enum SourceTags {
    Metadata(HashMap<String, Vec<String>>),
    Sidecars,
}

impl SourceTags {
    fn read(from: &Path) -> Result<Self> {
        let csv_path = from.join("metadata.csv");
        if !csv_path.exists() {
            return Ok(Self::Sidecars);
        }
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&csv_path)
            .with_context(|| format!("cannot read {}", csv_path.display()))?;
        let headers = reader
            .headers()
            .with_context(|| format!("cannot read the header of {}", csv_path.display()))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let (Some(file_col), Some(tags_col)) = (col("file_name"), col("tags")) else {
            bail!(
                "{}: the header needs 'file_name' and 'tags' columns",
                csv_path.display()
            );
        };
        let mut map = HashMap::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{} line {}", csv_path.display(), i + 2))?;
            let file = row.get(file_col).unwrap_or("").trim();
            if !file.is_empty() {
                map.insert(
                    file.replace('\\', "/"),
                    parse_tags(row.get(tags_col).unwrap_or("")),
                );
            }
        }
        Ok(Self::Metadata(map))
    }

    /// Tags of `name` (relative to `from`); empty when it has none.
    fn get(&self, from: &Path, name: &str) -> Vec<String> {
        match self {
            Self::Metadata(map) => map.get(name).cloned().unwrap_or_default(),
            Self::Sidecars => std::fs::read_to_string(from.join(name).with_extension("txt"))
                .map(|t| {
                    let t = t.strip_prefix('\u{feff}').unwrap_or(&t);
                    parse_tags(&t.replace('\n', ","))
                })
                .unwrap_or_default(),
        }
    }
}

/// The faces found in one illustration.
struct Found {
    /// Boxes big enough, with their crop and its fingerprint.
    faces: Vec<(Rect, RgbImage, Fingerprint)>,
    boxes: usize,
    too_small: usize,
    pixels: u64,
}

fn find_faces(bytes: &[u8], opts: &BuildOptions) -> Result<Found, String> {
    let img = crate::data::decode_bytes(bytes)?.to_rgb8();
    let (w, h) = img.dimensions();
    let boxes = match &opts.faces {
        FaceSource::Detect { cascade, params } => {
            cascade.detect(&GrayImage::from_rgb(&img), params)
        }
        FaceSource::WholeImage => {
            let side = w.min(h) as i32;
            vec![Rect::new(
                (w as i32 - side) / 2,
                (h as i32 - side) / 2,
                side,
                side,
            )]
        }
    };
    let mut found = Found {
        faces: Vec::new(),
        boxes: boxes.len(),
        too_small: 0,
        pixels: u64::from(w) * u64::from(h),
    };
    let margin = match opts.faces {
        FaceSource::WholeImage => 0.0,
        FaceSource::Detect { .. } => opts.margin,
    };
    for r in boxes {
        if r.width.min(r.height) < opts.min_face as i32 {
            found.too_small += 1;
            continue;
        }
        let crop = crop_square(&img, &r, margin, opts.resolution);
        let print = Fingerprint::of(&crop);
        found.faces.push((r, crop, print));
    }
    Ok(found)
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .next()
        .is_none())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, without
/// the flush to disk of [`write_atomic`] (thousands of small files; `metadata.csv`, written
/// last with [`write_atomic`], is what makes them a dataset).
fn write_renamed(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot move the finished file to {}", path.display()))?;
    Ok(())
}

/// One face of `metadata.csv`.
struct Row {
    file_name: String,
    tags: Vec<String>,
    /// The lowest tagger probability among `tags` when the tagger chose them.
    confidence: Option<f32>,
    source: String,
    rect: Rect,
}

/// Illustrations read per batch: decoded and searched in parallel, then deduplicated and
/// written in order.
const BATCH: usize = 64;

/// Runs a build; see the module docs.
pub fn build_dataset(opts: &BuildOptions) -> Result<BuildSummary> {
    let from = &opts.from;
    if !from.is_dir() {
        bail!("'{}' is not a folder of illustrations", from.display());
    }
    let out = &opts.out;
    if out.exists() {
        if !out.is_dir() {
            bail!("'{}' exists and is not a folder", out.display());
        }
        if !is_empty_dir(out)? && !opts.force {
            bail!(
                "'{}' is not empty; give --force to build into it (its faces/, metadata.csv, \
                 duplicates.csv and summary.json are replaced)",
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let canon_from = from.canonicalize()?;
    let canon_out = out.canonicalize()?;
    if canon_from.starts_with(&canon_out) {
        bail!(
            "--from '{}' lies inside --out '{}'",
            from.display(),
            out.display()
        );
    }
    let tags = SourceTags::read(from)?;
    let mut names = crate::tagger::tag::list_images(from)?;
    // An --out inside --from: its faces are not illustrations.
    names.retain(|n| {
        from.join(n)
            .canonicalize()
            .map_or(true, |p| !p.starts_with(&canon_out))
    });
    if names.is_empty() {
        bail!(
            "no images (png, jpg, jpeg, webp, bmp) under '{}'",
            from.display()
        );
    }

    let faces_dir = out.join("faces");
    if faces_dir.exists() {
        std::fs::remove_dir_all(&faces_dir)
            .with_context(|| format!("cannot empty {}", faces_dir.display()))?;
    }
    std::fs::create_dir_all(&faces_dir)
        .with_context(|| format!("cannot create {}", faces_dir.display()))?;

    let mut s = BuildSummary {
        illustrations: names.len(),
        ..Default::default()
    };
    let bar = indicatif::ProgressBar::new(names.len() as u64);
    if !opts.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} illustrations  {msg}  ETA {eta}",
        )
        .expect("template"),
    );
    let mut seen_files: HashMap<[u8; 32], usize> = HashMap::new();
    let mut exact_kept = std::collections::HashSet::new();
    // Kept faces: (fingerprint, face file name) and which of them had near duplicates.
    let mut kept: Vec<(Fingerprint, String)> = Vec::new();
    let mut near_kept = std::collections::HashSet::new();
    let mut rows = csv::Writer::from_writer(Vec::new());
    rows.write_record([
        "file_name",
        "tags",
        "source",
        "x",
        "y",
        "width",
        "height",
        "tag_confidence",
    ])?;
    let mut detect_time = 0.0f64;

    for (ci, chunk) in names.chunks(BATCH).enumerate() {
        // 1. Read and hash in order.
        let mut todo: Vec<(&String, Vec<u8>)> = Vec::new();
        for (k, name) in chunk.iter().enumerate() {
            match std::fs::read(from.join(name)) {
                Err(e) => s.unreadable.push(format!("{name}: cannot read: {e}")),
                Ok(bytes) => {
                    let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
                    if let Some(&first) = seen_files.get(&digest) {
                        s.exact_duplicates += 1;
                        exact_kept.insert(first);
                        s.duplicates.push(Duplicate {
                            kind: "exact",
                            kept: names[first].clone(),
                            dropped: name.clone(),
                            distance: 0,
                        });
                    } else {
                        seen_files.insert(digest, ci * BATCH + k);
                        todo.push((name, bytes));
                    }
                }
            }
        }
        // 2. Decode and detect in parallel.
        let t = Instant::now();
        let found: Vec<(&String, Result<Found, String>)> = todo
            .par_iter()
            .map(|(name, bytes)| (*name, find_faces(bytes, opts)))
            .collect();
        detect_time += t.elapsed().as_secs_f64();
        // 3. Deduplicate and write in order; untagged faces wait for the tagger.
        let mut chunk_rows: Vec<Row> = Vec::new();
        let mut to_tag: Vec<(usize, Vec<u8>)> = Vec::new();
        for (name, result) in found {
            let f = match result {
                Ok(f) => f,
                Err(e) => {
                    s.unreadable.push(format!("{name}: {e}"));
                    continue;
                }
            };
            s.read += 1;
            s.megapixels += f.pixels as f64 / 1e6;
            s.faces_found += f.boxes;
            s.too_small += f.too_small;
            let source_tags = tags.get(from, name);
            for (r, crop, print) in f.faces {
                let near = opts.near_distance.and_then(|bits| {
                    kept.iter().enumerate().find_map(|(i, (k, _))| {
                        print.near(k, bits, opts.near_colour).map(|d| (i, d))
                    })
                });
                let at = format!("{name}#{},{},{},{}", r.x, r.y, r.width, r.height);
                if let Some((i, distance)) = near {
                    s.near_duplicates += 1;
                    near_kept.insert(i);
                    s.duplicates.push(Duplicate {
                        kind: "near",
                        kept: kept[i].1.clone(),
                        dropped: at,
                        distance,
                    });
                    continue;
                }
                let file_name = format!("faces/{:06}.png", s.written);
                let rgba = image::DynamicImage::ImageRgb8(crop.clone()).to_rgba8();
                write_renamed(&out.join(&file_name), &png_bytes(&rgba)?)?;
                if source_tags.is_empty()
                    && let Some(auto) = &opts.tagger
                {
                    let r = auto.tagger.card.resolution as u32;
                    let pixels = if crop.width() == r {
                        crop.into_raw()
                    } else {
                        imageops::resize(&crop, r, r, FilterType::CatmullRom).into_raw()
                    };
                    to_tag.push((chunk_rows.len(), pixels));
                }
                chunk_rows.push(Row {
                    file_name: file_name.clone(),
                    tags: source_tags.clone(),
                    confidence: None,
                    source: name.clone(),
                    rect: r,
                });
                kept.push((print, file_name));
                s.written += 1;
            }
        }
        if let Some(auto) = &opts.tagger
            && !to_tag.is_empty()
        {
            let vocab = &auto.tagger.card.vocab;
            let images: Vec<&[u8]> = to_tag.iter().map(|(_, p)| p.as_slice()).collect();
            let (probs, _) = read_images(
                &auto.tagger.tagger,
                vocab,
                auto.tagger.card.resolution,
                &images,
                &auto.tagger.device,
            );
            for ((i, _), p) in to_tag.iter().zip(probs.chunks(vocab.len().max(1))) {
                let tags = predicted_tags(vocab, p, auto.threshold);
                let confidence = tags
                    .iter()
                    .filter_map(|t| vocab.tags.iter().position(|v| v == t))
                    .map(|k| p[k])
                    .fold(None, |m: Option<f32>, v| Some(m.map_or(v, |m| m.min(v))));
                s.tagged += 1;
                chunk_rows[*i].tags = tags;
                chunk_rows[*i].confidence = confidence;
            }
        }
        for row in chunk_rows {
            if row.tags.is_empty() {
                s.untagged += 1;
            }
            let r = row.rect;
            rows.write_record([
                row.file_name.as_str(),
                row.tags.join(", ").as_str(),
                row.source.as_str(),
                &r.x.to_string(),
                &r.y.to_string(),
                &r.width.to_string(),
                &r.height.to_string(),
                &row.confidence.map_or(String::new(), |c| format!("{c:.3}")),
            ])?;
        }
        bar.inc(chunk.len() as u64);
        bar.set_message(format!("{} faces", s.written));
    }
    bar.finish_and_clear();
    s.exact_groups = exact_kept.len();
    s.near_groups = near_kept.len();
    s.detect_seconds = detect_time;

    let mut dups = csv::Writer::from_writer(Vec::new());
    dups.write_record(["kind", "kept", "dropped", "distance"])?;
    for d in &s.duplicates {
        dups.write_record([d.kind, &d.kept, &d.dropped, &d.distance.to_string()])?;
    }
    write_atomic(&out.join("duplicates.csv"), &dups.into_inner()?)?;
    write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&s)?.as_bytes(),
    )?;
    // Last: the file that makes the folder a dataset.
    write_atomic(&out.join("metadata.csv"), &rows.into_inner()?)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_grow_square_and_stay_inside_the_image() {
        let img = RgbImage::from_fn(100, 80, |x, y| image::Rgb([x as u8, y as u8, 0]));
        // A 20x20 box at (40, 30), margin 0.5: a 40-pixel square centred on (50, 40).
        let c = crop_square(&img, &Rect::new(40, 30, 20, 20), 0.5, 40);
        assert_eq!(c.dimensions(), (40, 40));
        assert_eq!(c.get_pixel(0, 0).0, [30, 20, 0]);
        // Near the corner: shifted inward, not padded.
        let c = crop_square(&img, &Rect::new(0, 0, 20, 20), 0.5, 40);
        assert_eq!(c.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(c.get_pixel(39, 39).0, [39, 39, 0]);
        // Bigger than the image: the shorter side (80), centred on x = 45 -> x0 = 5.
        let c = crop_square(&img, &Rect::new(10, 10, 70, 70), 0.5, 80);
        assert_eq!(c.get_pixel(0, 0).0, [5, 0, 0]);
        assert_eq!(
            crop_square(&img, &Rect::new(10, 10, 70, 70), 0.5, 16).width(),
            16
        );
    }

    #[test]
    fn dhash_is_stable_under_small_changes_and_differs_for_other_pictures() {
        let a = RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 3) as u8, 90])
        });
        let mut b = a.clone();
        b.put_pixel(10, 10, image::Rgb([255, 255, 255]));
        // Top half brightening to the right, bottom half darkening: the lower 32 bits flip.
        let c = RgbImage::from_fn(64, 64, |x, y| {
            let v = if y < 32 { x * 4 } else { (63 - x) * 4 };
            image::Rgb([v as u8, 100, 30])
        });
        let (ha, hb, hc) = (dhash(&a), dhash(&b), dhash(&c));
        assert!((ha ^ hb).count_ones() <= 2, "{ha:x} {hb:x}");
        assert_eq!((ha ^ hc).count_ones(), 32, "{ha:x} {hc:x}");
        // A brightness ramp left to right: every left pixel darker, all 64 bits set.
        assert_eq!(ha, u64::MAX);
    }

    #[test]
    fn near_duplicates_need_the_same_layout_and_the_same_colours() {
        let face = |hair: [u8; 3]| {
            RgbImage::from_fn(64, 64, |x, y| {
                if y < 20 {
                    image::Rgb(hair)
                } else {
                    image::Rgb([(x * 4) as u8, 200, 180])
                }
            })
        };
        let a = Fingerprint::of(&face([200, 40, 40]));
        let mut b_img = face([200, 40, 40]);
        b_img.put_pixel(40, 40, image::Rgb([0, 0, 0]));
        let b = Fingerprint::of(&b_img);
        // Same drawing, other hair colour of the same luma: same dHash, other colours.
        let c = Fingerprint::of(&face([40, 95, 200]));
        assert_eq!(a.near(&b, 4, 16.0), Some((a.dhash ^ b.dhash).count_ones()));
        assert!((a.dhash ^ c.dhash).count_ones() <= 4);
        assert!(a.colour_distance(&c) > 16.0, "{}", a.colour_distance(&c));
        assert_eq!(a.near(&c, 4, 16.0), None);
        assert_eq!(a.near(&c, 4, 255.0), Some((a.dhash ^ c.dhash).count_ones()));
    }
}
