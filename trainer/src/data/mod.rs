//! Datasets of tagged faces, decoded once into memory.
//!
//! Two layouts are read:
//! - Hugging Face *imagefolder*: `DIR/metadata.csv` with a `file_name` column (path relative to
//!   DIR) and a `tags` column of comma-separated tags;
//! - kohya-style sidecars: `DIR/**/name.png` (or .jpg/.jpeg/.webp/.bmp) next to `name.txt`
//!   holding comma-separated tags.
//!
//! Bad entries (a missing file, a corrupt or non-image file, an empty tag list) are reported with
//! the file and line; by default they are skipped and counted, with `--strict` the first one
//! fails the load. Images of another size are centre-cropped to a square and resized.
//!
//! Decoded images are kept between runs in a cache file per folder and resolution (`cache`).

mod cache;

use std::fmt;
use std::path::{Path, PathBuf};

use image::{RgbImage, imageops::FilterType};
use shared_model::TagVocab;
use shared_model::vocab::parse_tags;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DataError {
    #[error("dataset folder '{0}' does not exist")]
    MissingFolder(PathBuf),
    #[error("'{0}' is not a folder")]
    NotAFolder(PathBuf),
    #[error("{path}: {message}")]
    Metadata { path: PathBuf, message: String },
    #[error("{0}")]
    BadEntry(BadEntry),
    /// A group of tags that is not exclusive, under `--strict`.
    #[error("{0}")]
    GroupNotExclusive(String),
    #[error("no usable images in '{dir}' ({skipped} skipped){hint}")]
    Empty {
        dir: PathBuf,
        skipped: usize,
        hint: String,
    },
}

/// One unusable entry: where it is and what is wrong with it.
#[derive(Debug, Clone)]
pub struct BadEntry {
    /// The image (or sidecar) file.
    pub file: PathBuf,
    /// `metadata.csv line N`, or the sidecar's name.
    pub origin: String,
    pub problem: String,
}

impl fmt::Display for BadEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.file.display(),
            self.origin,
            self.problem
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadEntry {
    Skip,
    Fail,
}

/// All images of a dataset as packed RGB bytes, with their tags.
pub struct Dataset {
    pub name: String,
    pub resolution: usize,
    /// `len() * resolution^2 * 3` bytes, HWC order per image.
    pub pixels: Vec<u8>,
    pub tags: Vec<Vec<String>>,
    pub files: Vec<PathBuf>,
    pub vocab: TagVocab,
    pub skipped: Vec<BadEntry>,
    /// What changed the meaning of the data set without skipping a row (a group of tags that is
    /// not exclusive, so its tags are trained as free tags), each with the rows that did it.
    /// `--strict` fails on these instead.
    pub warnings: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.resolution * self.resolution * 3;
        &self.pixels[i * n..(i + 1) * n]
    }
}

struct Entry {
    file: PathBuf,
    origin: String,
    tags: Result<Vec<String>, String>,
}

const IMAGE_EXTS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "bmp"];

fn list_metadata(dir: &Path, csv_path: &Path) -> Result<Vec<Entry>, DataError> {
    let bytes = read_file(csv_path, MAX_METADATA_BYTES).map_err(|message| DataError::Metadata {
        path: csv_path.to_path_buf(),
        message,
    })?;
    read_metadata(bytes.as_slice(), dir, csv_path)
}

/// The largest `metadata.csv` read (about ten million rows).
pub const MAX_METADATA_BYTES: u64 = 1 << 30;
/// The largest tag file (kohya sidecar) read.
pub const MAX_SIDECAR_BYTES: u64 = 1 << 20;
/// The largest image file read.
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// Reads a regular file of at most `max` bytes; what is wrong otherwise (a FIFO or a device
/// such as `/dev/zero` is refused before it is opened: one once hung `train`, the other filled
/// the memory).
fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        // U+FFFD stands for bytes that were not UTF-8 in a name written lossily (as `tag` once
        // wrote them): the file's real name cannot be spelled in metadata.csv.
        std::io::ErrorKind::NotFound if path.to_string_lossy().contains('\u{fffd}') => {
            "file not found: its name holds \u{fffd}, which stands for bytes that were not \
             UTF-8 (a file name that is not UTF-8, written lossily?): metadata.csv names files \
             in UTF-8, so rename the file to a UTF-8 name"
                .to_string()
        }
        std::io::ErrorKind::NotFound => "file not found".to_string(),
        _ => format!("cannot read: {e}"),
    })?;
    if meta.is_dir() {
        return Err("a folder, not a file".into());
    }
    if !meta.is_file() {
        return Err(
            "not a regular file (a FIFO, a device or a socket): kyara reads only files of \
             bounded size"
                .into(),
        );
    }
    if meta.len() > max {
        return Err(format!(
            "the file is {} bytes, more than kyara reads ({max})",
            meta.len()
        ));
    }
    crate::fsutil::read_bounded(path, max, "file").map_err(|e| format!("cannot read: {e:#}"))
}

/// The entries of a `metadata.csv` read from `input` (`csv_path` names it in messages).
fn read_metadata(input: &[u8], dir: &Path, csv_path: &Path) -> Result<Vec<Entry>, DataError> {
    let meta_err = |message: String| DataError::Metadata {
        path: csv_path.to_path_buf(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| meta_err(e.to_string()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let file_col =
        col("file_name").ok_or_else(|| meta_err("no 'file_name' column in the header".into()))?;
    let tags_col = col("tags").ok_or_else(|| meta_err("no 'tags' column in the header".into()))?;
    let mut out = Vec::new();
    let mut next_line = 2; // the header is line 1
    // Line numbers from the byte where a row starts (the reader's own count was one too low in
    // CRLF files, as the shipped data set is): 1 + the newlines before it, a row's leading line
    // ends skipped.
    let line_at = |byte: u64| {
        let mut k = (byte as usize).min(input.len());
        while k < input.len() && matches!(input[k], b'\r' | b'\n') {
            k += 1;
        }
        1 + input[..k].iter().filter(|&&b| b == b'\n').count()
    };
    for row in reader.records() {
        let line = match &row {
            Ok(r) => r.position().map_or(next_line, |p| line_at(p.byte())),
            Err(e) => e.position().map_or(next_line, |p| line_at(p.byte())),
        };
        next_line = line + 1;
        let origin = format!("metadata.csv line {line}");
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let problem = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => format!(
                        "the row is not UTF-8 text (a file name that is not UTF-8?): \
                         metadata.csv is read as UTF-8, so rename the file and its row ({e})"
                    ),
                    _ => format!("unreadable row: {e}"),
                };
                out.push(Entry {
                    file: csv_path.to_path_buf(),
                    origin,
                    tags: Err(problem),
                });
                continue;
            }
        };
        // A field over several lines is a quote left open: it swallowed the rows after it
        // (once silently, turning every hair colour into a free tag).
        let lines = row
            .iter()
            .map(|f| f.matches('\n').count())
            .max()
            .unwrap_or(0);
        // Unless it is a file name with a line break that exists as written (`trainer tag`
        // quotes such names; they are not unclosed quotes).
        let named_file = row.get(file_col).filter(|f| f.contains('\n'));
        let real_name = named_file.is_some_and(|f| {
            let tags_lines = row.get(tags_col).map_or(0, |t| t.matches('\n').count());
            tags_lines == 0 && dir.join(f).is_file()
        });
        if real_name {
            next_line = line + lines + 1;
        }
        if lines > 0 && !real_name {
            next_line = line + lines + 1;
            out.push(Entry {
                file: csv_path.to_path_buf(),
                origin: format!("metadata.csv lines {line}-{}", line + lines),
                tags: Err(format!(
                    "a quote opened on line {line} closes only {lines} line(s) later (an \
                     unclosed quote?): the rows in between are read as part of this one"
                )),
            });
            continue;
        }
        let file = row.get(file_col).unwrap_or("").trim();
        if file.is_empty() {
            out.push(Entry {
                file: csv_path.to_path_buf(),
                origin,
                tags: Err("the row has no file_name".into()),
            });
            continue;
        }
        let tags = parse_tags(row.get(tags_col).unwrap_or(""));
        out.push(Entry {
            file: dir.join(file),
            origin,
            tags: if tags.is_empty() {
                Err("empty tag list".into())
            } else {
                Ok(tags)
            },
        });
    }
    Ok(out)
}

fn list_sidecars(dir: &Path) -> Result<Vec<Entry>, DataError> {
    // Each real folder is read once: a link loop (`sub/up -> ..`) once read 32 images 1,312
    // times.
    let walk = crate::fsutil::walk(dir, false).map_err(|(d, e)| DataError::Metadata {
        path: d,
        message: e.to_string(),
    })?;
    let loops = walk.repeated.into_iter().map(|file| Entry {
        file,
        origin: "folder listing".into(),
        tags: Err(
            "a link to a folder that is already read (a symbolic link loop?): not followed".into(),
        ),
    });
    let images = walk
        .files
        .into_iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .map(|file| {
            let txt = file.with_extension("txt");
            let origin = txt
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tags = match read_file(&txt, MAX_SIDECAR_BYTES) {
                Err(e) if e == "file not found" => Err("no tag file next to it".to_string()),
                Err(e) => Err(format!("the tag file {origin}: {e}")),
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => sidecar_tags(&text),
                    Err(_) => Err(format!("the tag file {origin} is not UTF-8 text")),
                },
            };
            Entry { file, origin, tags }
        });
    Ok(images.chain(loops).collect())
}

/// The tags of a kohya sidecar's text: comma- or line-separated.
fn sidecar_tags(text: &str) -> Result<Vec<String>, String> {
    // Editors on Windows start UTF-8 files with a byte-order mark; it is not part of the first
    // tag (the CSV reader drops it the same way).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let tags = parse_tags(&text.replace('\n', ","));
    if tags.is_empty() {
        Err("empty tag list".to_string())
    } else {
        Ok(tags)
    }
}

/// The fuzz target of the data-set reader: `metadata.csv` text, a sidecar's text and one image
/// file in one input (`[n: u16 LE][n bytes of CSV][m: u16 LE][m bytes of sidecar][image]`),
/// read as a load reads them (rows, tags, exclusive groups, the vocabulary, the decode with its
/// limits and the resize). Returns the number of usable rows and whether the image decoded; it
/// must never panic, hang or allocate past the decoder limits.
pub fn fuzz_dataset(data: &[u8]) -> (usize, bool) {
    let (csv, rest) = shared_model::fuzz::split(data);
    let (sidecar, image) = shared_model::fuzz::split(rest);
    let entries =
        read_metadata(csv, Path::new("d"), Path::new("d/metadata.csv")).unwrap_or_default();
    let mut tags: Vec<Vec<String>> = entries.into_iter().filter_map(|e| e.tags.ok()).collect();
    if let Ok(t) = sidecar_tags(&String::from_utf8_lossy(sidecar)) {
        tags.push(t);
    }
    let (breaking, _) = rows_breaking_groups(&tags);
    let keep: Vec<bool> = (0..tags.len())
        .map(|i| breaking.binary_search_by_key(&i, |(j, _)| *j).is_err())
        .collect();
    retain_flagged(&mut tags, &keep);
    let vocab = TagVocab::from_tag_sets(tags.iter().map(|t| t.as_slice()));
    assert!(
        vocab.validate().is_ok(),
        "the vocabulary of any rows is valid"
    );
    for row in &tags {
        assert!(
            vocab.check(row).is_ok(),
            "a kept row {row:?} breaks an exclusive group of the vocabulary"
        );
    }
    let decoded = decode_bytes(image).and_then(|img| square(img.to_rgb8(), 16));
    (tags.len(), decoded.is_ok())
}

/// The largest side an image file may claim, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// The most memory one decode may allocate: about a 9,000 x 9,000 RGB picture. A 0.5 MB PNG
/// that claims 13,000 x 13,000 (a decompression bomb) once cost ~1.3 GB per decoder thread.
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Whether a JPEG file ends its last scan: an end-of-image marker (`FF D9`) after the last
/// start-of-scan (`FF DA`). Markers cannot occur inside entropy-coded data (an `FF` there is
/// always followed by `00` or a restart marker), so a file cut anywhere in its image data has
/// none; the decoder would pad such a file with grey and report success.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let find_last = |pat: [u8; 2]| bytes.windows(2).rposition(|w| w == pat);
    match (find_last([0xFF, 0xDA]), find_last([0xFF, 0xD9])) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

/// Decodes an image file's bytes with [`MAX_IMAGE_SIDE`] and [`MAX_DECODE_BYTES`] as limits,
/// checked against the size in the file's header before any pixel is decoded. A JPEG cut short
/// ([`jpeg_is_complete`]) is an error, not a padded picture. The EXIF orientation of a JPEG or
/// WebP is applied: the picture is upright as a viewer shows it. Every decode of `train`,
/// `dataset build` and `tag` comes through here.
pub fn decode_bytes(bytes: &[u8]) -> Result<image::DynamicImage, String> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && !jpeg_is_complete(bytes) {
        return Err(
            "the JPEG file is cut short (it has no end-of-image marker after its \
             image data)"
                .into(),
        );
    }
    // The decoders are meant never to panic on bad input; the guard keeps a decoder bug from
    // taking the whole load down with it.
    std::panic::catch_unwind(|| {
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("not a readable image: {e}"))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE);
        limits.max_image_height = Some(MAX_IMAGE_SIDE);
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(limits.clone());
        let said = |e: image::ImageError| match e {
            image::ImageError::Limits(l) => format!(
                "the image is larger than kyara decodes (at most {MAX_IMAGE_SIDE} px a side and \
                 {} MiB): {l}",
                MAX_DECODE_BYTES >> 20
            ),
            e => format!("not a readable image: {e}"),
        };
        // As `ImageReader::decode`, plus the EXIF orientation (a phone's JPEG stored sideways
        // once trained as a sideways or upside-down face).
        use image::ImageDecoder;
        let mut decoder = reader.into_decoder().map_err(said)?;
        limits.reserve(decoder.total_bytes()).map_err(said)?;
        let orientation = decoder
            .orientation()
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut img = image::DynamicImage::from_decoder(decoder).map_err(said)?;
        img.apply_orientation(orientation);
        Ok(img)
    })
    .map_err(|_| "the image decoder crashed on this file".to_string())?
}

/// Keeps the items of `v` whose flag in `keep` (same order) is set.
fn retain_flagged<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    v.retain(|_| flags.next().copied().unwrap_or(true));
}

/// Rows breaking an exclusive group are skipped when they are at most this share of the rows
/// that carry the group, or a single row (beyond it, the tags are not exclusive: e.g. `long
/// hair` with `red hair`; the group is then reported with its rows, see [`NotExclusive`]).
pub const MAX_GROUP_BREAKING_SHARE: f64 = 0.01;

/// A candidate group (tags sharing their last word) that some rows break by carrying two of its
/// tags, too many of them to skip: its tags are trained as free tags.
#[derive(Debug, Clone, PartialEq)]
struct NotExclusive {
    key: String,
    /// The group's tags.
    tags: Vec<String>,
    /// Rows carrying a tag of the group.
    carrying: usize,
    /// The rows (index, the group's tags it carries) that carry two or more.
    rows: Vec<(usize, String)>,
}

/// The rows (index, problem) that carry two or more tags of a candidate exclusive group (tags
/// sharing their last word, see [`shared_model::vocab::group_key`]) where such rows are a single
/// row or at most [`MAX_GROUP_BREAKING_SHARE`] of the rows with the group: one mislabelled row
/// must not turn every hair colour into a free tag. The groups broken by more rows are returned
/// too, with their rows, so that they are never dissolved silently (whatever the data set's
/// size: one such row in 10 to 99 rows, or 3 in 200, once did so with no row named).
fn rows_breaking_groups(tags: &[Vec<String>]) -> (Vec<(usize, String)>, Vec<NotExclusive>) {
    use shared_model::vocab::group_key;
    use std::collections::{BTreeMap, BTreeSet};
    let mut members: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in tags.iter().flatten() {
        if let Some(k) = group_key(t) {
            members.entry(k).or_default().insert(t);
        }
    }
    let mut out: BTreeMap<usize, String> = BTreeMap::new();
    let mut dissolved = Vec::new();
    for (key, tags_of_key) in members.iter().filter(|(_, m)| m.len() >= 2) {
        let (mut carrying, mut breaking) = (0usize, Vec::new());
        for (i, row) in tags.iter().enumerate() {
            let of_key: Vec<&String> = row
                .iter()
                .filter(|t| tags_of_key.contains(t.as_str()))
                .collect();
            carrying += usize::from(!of_key.is_empty());
            if of_key.len() >= 2 {
                let names: Vec<&str> = of_key.iter().map(|t| t.as_str()).collect();
                breaking.push((i, names.join(", ")));
            }
        }
        let share = breaking.len() as f64 / carrying.max(1) as f64;
        if breaking.is_empty() {
            continue;
        }
        if breaking.len() > 1 && share > MAX_GROUP_BREAKING_SHARE {
            dissolved.push(NotExclusive {
                key: key.to_string(),
                tags: tags_of_key.iter().map(|t| t.to_string()).collect(),
                carrying,
                rows: breaking,
            });
            continue;
        }
        let others = carrying - breaking.len();
        for (i, names) in breaking {
            out.entry(i).or_insert(format!(
                "tags {names}, two of the exclusive group '{key}' (the other {others} rows \
                 with a '{key}' tag have one); skipped so that the group stays exclusive"
            ));
        }
    }
    (out.into_iter().collect(), dissolved)
}

/// Rows that name one image file more than once (the same path, however spelled): with the same
/// tags, the later ones (the image would count twice); with other tags, all of them (which tags
/// are right is not known, and the image once trained under both). Returns (index, problem).
fn duplicate_rows(
    files: &[PathBuf],
    tags: &[Vec<String>],
    origins: &[String],
) -> Vec<(usize, String)> {
    use std::collections::HashMap;
    let mut seen: HashMap<PathBuf, Vec<usize>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        let key = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        seen.entry(key).or_default().push(i);
    }
    let mut out = Vec::new();
    for rows in seen.values().filter(|r| r.len() > 1) {
        let sorted = |t: &[String]| {
            let mut t = t.to_vec();
            t.sort();
            t
        };
        let first = rows[0];
        let conflicting = rows
            .iter()
            .any(|&i| sorted(&tags[i]) != sorted(&tags[first]));
        let at: Vec<&str> = rows.iter().map(|&i| origins[i].as_str()).collect();
        let at = at.join(", ");
        if conflicting {
            let sets: Vec<String> = rows
                .iter()
                .map(|&i| format!("'{}' ({})", tags[i].join(", "), origins[i]))
                .collect();
            for &i in rows {
                out.push((
                    i,
                    format!(
                        "the file is listed {} times with other tags ({}): which are right is \
                         not known, so none of its rows is used (fix metadata.csv to list it once)",
                        rows.len(),
                        sets.join(" and ")
                    ),
                ));
            }
        } else {
            for &i in &rows[1..] {
                out.push((
                    i,
                    format!(
                        "the file is listed again with the same tags ({at}): read once, from {}",
                        origins[first]
                    ),
                ));
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}

/// Decodes one image file to a `resolution`-sided RGB square.
pub fn decode_image(path: &Path, resolution: usize) -> Result<RgbImage, String> {
    let bytes = read_file(path, MAX_IMAGE_FILE_BYTES)?;
    square(decode_bytes(&bytes)?.to_rgb8(), resolution)
}

/// A decoded image as a `resolution`-sided square: centre-cropped, then resized.
fn square(img: RgbImage, resolution: usize) -> Result<RgbImage, String> {
    let (w, h) = img.dimensions();
    let r = resolution as u32;
    if w == r && h == r {
        return Ok(img);
    }
    let side = w.min(h);
    if side == 0 {
        return Err("the image has no pixels".into());
    }
    let cropped =
        image::imageops::crop_imm(&img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    Ok(image::imageops::resize(
        &cropped,
        r,
        r,
        FilterType::CatmullRom,
    ))
}

/// Loads a dataset folder. `progress` is called with (done, total) while decoding.
pub fn load_dataset(
    dir: &Path,
    resolution: usize,
    on_bad: OnBadEntry,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Dataset, DataError> {
    load_dataset_cached(dir, resolution, on_bad, progress, None).map(|(d, _)| d)
}

/// Where `trainer train` keeps decoded datasets: `$KYARA_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/kyara`, else `~/.cache/kyara` (`None` without any of them).
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("KYARA_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("kyara")))
        .or_else(|| var("HOME").map(|p| p.join(".cache").join("kyara")))
}

/// What happened to the decoded-dataset cache in [`load_dataset_cached`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// No cache folder was given.
    Off,
    /// The images came from this cache file (no image was decoded).
    Hit(PathBuf),
    /// The images were decoded and stored in this file for the next run.
    Stored(PathBuf),
    /// The images were decoded; the cache could not be used or written (why). The load itself
    /// succeeded.
    Unavailable(String),
}

/// [`load_dataset`] with a cache of the decoded images in `cache_dir`: the first load decodes
/// every image and stores the pixels in one file; later loads of the same folder at the same
/// resolution read that file instead of thousands of small images. The file is keyed by a
/// fingerprint of the listing (paths, sizes, modification times, tags), so an added, removed,
/// edited or retagged image means a fresh decode. A missing, truncated or foreign cache file is
/// never an error: the images are decoded again and the file rewritten (atomically).
pub fn load_dataset_cached(
    dir: &Path,
    resolution: usize,
    on_bad: OnBadEntry,
    progress: &(dyn Fn(usize, usize) + Sync),
    cache_dir: Option<&Path>,
) -> Result<(Dataset, CacheStatus), DataError> {
    if !dir.exists() {
        return Err(DataError::MissingFolder(dir.to_path_buf()));
    }
    if !dir.is_dir() {
        return Err(DataError::NotAFolder(dir.to_path_buf()));
    }
    let csv_path = dir.join("metadata.csv");
    let entries = if csv_path.exists() {
        list_metadata(dir, &csv_path)?
    } else {
        list_sidecars(dir)?
    };
    let cache = cache_dir.map(|c| cache::file_for(c, dir, resolution, &entries));
    let (decoded, status) = match &cache {
        None => (decode_all(&entries, resolution, progress), CacheStatus::Off),
        Some(Err(why)) => (
            decode_all(&entries, resolution, progress),
            CacheStatus::Unavailable(why.clone()),
        ),
        Some(Ok(file)) => {
            match cache::read(&file.path, &file.fingerprint, resolution, entries.len()) {
                Some(decoded) => (decoded, CacheStatus::Hit(file.path.clone())),
                None => {
                    let decoded = decode_all(&entries, resolution, progress);
                    let status =
                        match cache::write(&file.path, &file.fingerprint, resolution, &decoded) {
                            Ok(()) => CacheStatus::Stored(file.path.clone()),
                            Err(e) => {
                                CacheStatus::Unavailable(format!("{}: {e}", file.path.display()))
                            }
                        };
                    (decoded, status)
                }
            }
        }
    };
    assemble(dir, &csv_path, entries, decoded, resolution, on_bad).map(|d| (d, status))
}

/// Decodes every entry that has tags, on up to 8 threads: its RGB bytes or what is wrong.
fn decode_all(
    entries: &[Entry],
    resolution: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Decoded {
    let total = entries.len();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let chunk = total.div_ceil(threads).max(1);
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| {
                let done = &done;
                s.spawn(move || {
                    part.iter()
                        .map(|e| {
                            let r = match &e.tags {
                                Err(msg) => Err(msg.clone()),
                                Ok(_) => decode_image(&e.file, resolution).map(|i| i.into_raw()),
                            };
                            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if n.is_multiple_of(512) || n == total {
                                progress(n, total);
                            }
                            r
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut decoded = Decoded {
            pixels: Vec::new(),
            problems: Vec::with_capacity(total),
        };
        for r in handles
            .into_iter()
            .flat_map(|h| h.join().expect("decoder thread"))
        {
            match r {
                Ok(px) => {
                    decoded.pixels.extend_from_slice(&px);
                    decoded.problems.push(None);
                }
                Err(problem) => decoded.problems.push(Some(problem)),
            }
        }
        decoded
    })
}

/// Decoded images of a listing: the RGB bytes of the entries without a problem, back to back
/// in listing order, and each entry's problem (`None`: its image is in `pixels`).
struct Decoded {
    pixels: Vec<u8>,
    problems: Vec<Option<String>>,
}

/// The dataset from its entries and their decoded pixels (same order).
fn assemble(
    dir: &Path,
    csv_path: &Path,
    entries: Vec<Entry>,
    decoded: Decoded,
    resolution: usize,
    on_bad: OnBadEntry,
) -> Result<Dataset, DataError> {
    let image = resolution * resolution * 3;
    let mut tags = Vec::new();
    let mut files = Vec::new();
    let mut origins = Vec::new();
    let mut skipped = Vec::new();
    // Which decoded images are kept (all of them unless tags and pixels disagree, which only
    // a cache could make happen).
    let mut kept = Vec::new();
    let mut next = 0;
    for (entry, problem) in entries.into_iter().zip(decoded.problems) {
        let has_pixels = problem.is_none();
        match (entry.tags, problem) {
            (Ok(t), None) => {
                kept.push(next);
                tags.push(t);
                files.push(entry.file);
                origins.push(entry.origin);
            }
            (_, Some(problem)) | (Err(problem), None) => {
                let bad = BadEntry {
                    file: entry.file,
                    origin: entry.origin,
                    problem,
                };
                if on_bad == OnBadEntry::Fail {
                    return Err(DataError::BadEntry(bad));
                }
                skipped.push(bad);
            }
        }
        next += has_pixels as usize;
    }
    // The same image listed twice: once with the same tags, all of its rows with other ones.
    // Rows that break an exclusive group (two hair colours on one face) would dissolve the group
    // for the whole data set; a few of them are named and skipped instead. Each pass drops rows,
    // named, before the next looks (again, until no row breaks a group that it keeps).
    for pass in 0.. {
        let drop = if pass == 0 {
            duplicate_rows(&files, &tags, &origins)
        } else {
            rows_breaking_groups(&tags).0
        };
        if drop.is_empty() {
            if pass == 0 {
                continue;
            }
            break;
        }
        let mut keep = vec![true; tags.len()];
        for (i, problem) in drop {
            let bad = BadEntry {
                file: files[i].clone(),
                origin: origins[i].clone(),
                problem,
            };
            if on_bad == OnBadEntry::Fail {
                return Err(DataError::BadEntry(bad));
            }
            skipped.push(bad);
            keep[i] = false;
        }
        retain_flagged(&mut tags, &keep);
        retain_flagged(&mut files, &keep);
        retain_flagged(&mut origins, &keep);
        retain_flagged(&mut kept, &keep);
    }
    // A group broken by more rows is not exclusive: its tags become free tags. Never silently:
    // the group and its rows are named (and --strict stops).
    let mut warnings = Vec::new();
    for g in rows_breaking_groups(&tags).1 {
        let shown: Vec<String> = g
            .rows
            .iter()
            .take(5)
            .map(|(i, names)| format!("{} ({}): {names}", files[*i].display(), origins[*i]))
            .collect();
        let more = match g.rows.len().saturating_sub(5) {
            0 => String::new(),
            n => format!("; ... and {n} more"),
        };
        let message = format!(
            "the tags of group '{}' ({}) are not exclusive in this data set: {} of the {} rows \
             with a '{}' tag carry two or more of them, so they are trained as free tags (one \
             face may get two): {}{more}. Fix or remove those rows to keep the group",
            g.key,
            g.tags.join(", "),
            g.rows.len(),
            g.carrying,
            g.key,
            shown.join("; ")
        );
        if on_bad == OnBadEntry::Fail {
            return Err(DataError::GroupNotExclusive(format!(
                "{message} (--strict stops here)"
            )));
        }
        warnings.push(message);
    }
    let pixels = if kept.len() == next {
        decoded.pixels
    } else {
        kept.iter()
            .flat_map(|&i| &decoded.pixels[i * image..(i + 1) * image])
            .copied()
            .collect()
    };
    if tags.is_empty() {
        // The reasons, not just a count: e.g. "(20 skipped)" said nothing of why.
        let mut hint: String = skipped.iter().take(3).map(|b| format!("\n  {b}")).collect();
        if skipped.len() > 3 {
            hint.push_str(&format!("\n  ... and {} more", skipped.len() - 3));
        }
        if !csv_path.exists() {
            hint.insert_str(
                0,
                "; expected metadata.csv (file_name,tags) or image files with .txt tag files",
            );
        }
        return Err(DataError::Empty {
            dir: dir.to_path_buf(),
            skipped: skipped.len(),
            hint,
        });
    }
    let vocab = TagVocab::from_tag_sets(tags.iter().map(|t| t.as_slice()));
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into());
    Ok(Dataset {
        name,
        resolution,
        pixels,
        tags,
        files,
        vocab,
        skipped,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG or PNG cut short fails to decode (the issue: a JPEG cut mid-image with intact
    /// headers trained as a grey tile); the whole files decode.
    #[test]
    fn truncated_images_are_errors() {
        let img = image::RgbImage::from_fn(32, 32, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 8) as u8, 90])
        });
        for format in [image::ImageFormat::Jpeg, image::ImageFormat::Png] {
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
                .unwrap();
            decode_bytes(&bytes).unwrap();
            // Cut inside the image data (a PNG missing only its end chunk still holds every
            // pixel, and decodes).
            for keep in [bytes.len() * 2 / 3, bytes.len() / 2] {
                let e = decode_bytes(&bytes[..keep]);
                assert!(
                    e.is_err(),
                    "{format:?} cut at {keep} of {} decoded",
                    bytes.len()
                );
            }
        }
        let mut jpeg = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        assert!(jpeg_is_complete(&jpeg));
        let e = decode_bytes(&jpeg[..jpeg.len() / 2]).unwrap_err();
        assert!(e.contains("cut short"), "{e}");
    }

    fn write_png(path: &Path, size: u32, rgb: [u8; 3]) {
        RgbImage::from_pixel(size, size, image::Rgb(rgb))
            .save(path)
            .unwrap();
    }

    #[test]
    fn reads_imagefolder_and_reports_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("images")).unwrap();
        write_png(&d.join("images/a.png"), 8, [255, 0, 0]);
        write_png(&d.join("images/b.png"), 16, [0, 255, 0]); // other size: resized
        std::fs::write(d.join("images/c.png"), b"not a png at all").unwrap();
        std::fs::write(
            d.join("metadata.csv"),
            "file_name,tags\nimages/a.png,\"red hair, blue eyes\"\nimages/b.png,\"green hair, red eyes\"\nimages/c.png,\"red hair, red eyes\"\nimages/missing.png,\"red hair, red eyes\"\nimages/a.png,\"\"\n",
        )
        .unwrap();
        let ds = load_dataset(d, 8, OnBadEntry::Skip, &|_, _| {}).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.image(1)[..3], [0, 255, 0]);
        assert_eq!(ds.skipped.len(), 3);
        let msgs: Vec<String> = ds.skipped.iter().map(|b| b.to_string()).collect();
        assert!(
            msgs[0].contains("c.png")
                && msgs[0].contains("line 4")
                && msgs[0].contains("not a readable image"),
            "{msgs:?}"
        );
        assert!(
            msgs[1].contains("missing.png") && msgs[1].contains("file not found"),
            "{msgs:?}"
        );
        assert!(
            msgs[2].contains("line 6") && msgs[2].contains("empty tag list"),
            "{msgs:?}"
        );
        assert_eq!(ds.vocab.groups.len(), 2);

        let err = load_dataset(d, 8, OnBadEntry::Fail, &|_, _| {})
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("c.png") && err.contains("line 4"), "{err}");
    }

    /// A PNG whose header claims `side` x `side` RGB pixels, with no pixel data behind it.
    fn png_header_only(side: u32) -> Vec<u8> {
        fn crc32(data: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 == 1 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            let body = [kind, data].concat();
            out.extend((data.len() as u32).to_be_bytes());
            out.extend(&body);
            out.extend(crc32(&body).to_be_bytes());
        };
        let mut ihdr = side.to_be_bytes().to_vec();
        ihdr.extend(side.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
        chunk(b"IHDR", &ihdr);
        // A few bytes of compressed data: far too few for the claimed size.
        chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(b"IEND", &[]);
        out
    }

    /// `jpeg` with an EXIF APP1 segment saying `orientation` (1 to 8) after its SOI marker.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut exif = b"Exif\0\0II*\0".to_vec();
        exif.extend(8u32.to_le_bytes()); // the first IFD
        exif.extend(1u16.to_le_bytes()); // one entry
        exif.extend(0x0112u16.to_le_bytes()); // Orientation
        exif.extend(3u16.to_le_bytes()); // SHORT
        exif.extend(1u32.to_le_bytes());
        exif.extend(orientation.to_le_bytes());
        exif.extend([0, 0]);
        exif.extend(0u32.to_le_bytes()); // no next IFD
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(((exif.len() + 2) as u16).to_be_bytes());
        out.extend(exif);
        out.extend(&jpeg[2..]);
        out
    }

    /// Issue 31: a JPEG stored sideways with an EXIF orientation (as phones write them) was
    /// decoded as stored, a sideways or upside-down face. Every decode (train, dataset build,
    /// tag) goes through `decode_bytes`, which applies it.
    #[test]
    fn the_exif_orientation_is_applied() {
        // 16 x 8: red on the left half, blue on the right.
        let img = RgbImage::from_fn(16, 8, |x, _| {
            if x < 8 {
                image::Rgb([250, 0, 0])
            } else {
                image::Rgb([0, 0, 250])
            }
        });
        let mut jpeg = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        let plain = decode_bytes(&jpeg).unwrap().to_rgb8();
        assert_eq!(plain.dimensions(), (16, 8));
        // 6: rotate 90 degrees clockwise to view: the left half comes on top.
        let turned = decode_bytes(&with_exif_orientation(&jpeg, 6))
            .unwrap()
            .to_rgb8();
        assert_eq!(turned.dimensions(), (8, 16));
        let (top, bottom) = (turned.get_pixel(4, 2), turned.get_pixel(4, 13));
        assert!(top[0] > 200 && top[2] < 60, "{top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "{bottom:?}");
        // 3: upside down; 1: as stored.
        let upside = decode_bytes(&with_exif_orientation(&jpeg, 3))
            .unwrap()
            .to_rgb8();
        assert!(
            upside.get_pixel(2, 4)[2] > 200,
            "{:?}",
            upside.get_pixel(2, 4)
        );
        let same = decode_bytes(&with_exif_orientation(&jpeg, 1))
            .unwrap()
            .to_rgb8();
        assert!(same.get_pixel(2, 4)[0] > 200);
    }

    #[test]
    fn decompression_bombs_are_refused_before_decoding() {
        // 13,000 x 13,000 RGB would need ~500 MB; the header alone says so.
        let e = decode_bytes(&png_header_only(13_000)).unwrap_err();
        assert!(e.contains("larger than kyara decodes"), "{e}");
        let e = decode_bytes(&png_header_only(20_000)).unwrap_err();
        assert!(e.contains("larger than kyara decodes"), "{e}");
        // A real image of ordinary size decodes.
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("ok.png"), 8, [1, 2, 3]);
        let bytes = std::fs::read(dir.path().join("ok.png")).unwrap();
        assert_eq!(decode_bytes(&bytes).unwrap().width(), 8);
        assert!(decode_bytes(b"not an image").is_err());
    }

    /// A data set of `n` faces with one hair and one eye colour each, plus `extra` rows.
    fn colour_rows(d: &Path, n: usize, extra: &[&str]) {
        let hair = ["red hair", "blue hair", "green hair"];
        let mut csv = String::from("file_name,tags\n");
        for i in 0..n + extra.len() {
            write_png(&d.join(format!("{i}.png")), 8, [i as u8, 2, 3]);
            let tags = match i.checked_sub(n) {
                Some(k) => extra[k].to_string(),
                None => format!("{}, brown eyes", hair[i % 3]),
            };
            csv.push_str(&format!("{i}.png,\"{tags}\"\n"));
        }
        std::fs::write(d.join("metadata.csv"), csv).unwrap();
    }

    /// One row with two hair colours once turned every hair colour into a free tag, silently.
    #[test]
    fn a_row_breaking_an_exclusive_group_is_named_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        colour_rows(dir.path(), 150, &["red hair, blue hair, brown eyes"]);
        let ds = load_dataset(dir.path(), 8, OnBadEntry::Skip, &|_, _| {}).unwrap();
        assert_eq!(ds.len(), 150);
        let hair = ds.vocab.groups.iter().find(|g| g.name == "hair").unwrap();
        assert_eq!(hair.tags.len(), 3, "{:?}", ds.vocab);
        assert!(
            ds.vocab.free.iter().all(|t| !t.ends_with("hair")),
            "{:?}",
            ds.vocab
        );
        assert_eq!(ds.skipped.len(), 1);
        let msg = ds.skipped[0].to_string();
        assert!(
            msg.contains("150.png") && msg.contains("line 152") && msg.contains("group 'hair'"),
            "{msg}"
        );
        // The pixels still belong to their tags: the last kept image is image 149.
        assert_eq!(ds.image(149)[0], 149);
        // --strict stops at it.
        let e = load_dataset(dir.path(), 8, OnBadEntry::Fail, &|_, _| {})
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("group 'hair'"), "{e}");
    }

    /// Issue 31 (the 1 % rule): one `red hair, blue hair` row in 10 to 99 rows, or 3 in 200,
    /// dissolved the hair group into free tags with no row named, and `--strict` went on. A
    /// single such row is now skipped and named whatever the size; more than 1 % of the rows
    /// make the group free tags with a warning naming the rows, and `--strict` stops at them.
    #[test]
    fn a_group_never_loses_its_exclusivity_silently() {
        for n in [10, 60] {
            let dir = tempfile::tempdir().unwrap();
            colour_rows(dir.path(), n, &["red hair, blue hair, brown eyes"]);
            let ds = load_dataset(dir.path(), 8, OnBadEntry::Skip, &|_, _| {}).unwrap();
            assert!(
                ds.vocab.groups.iter().any(|g| g.name == "hair"),
                "{n}: {:?}",
                ds.vocab
            );
            assert_eq!((ds.len(), ds.skipped.len()), (n, 1), "{n}");
            assert!(ds.skipped[0].to_string().contains(&format!("{n}.png")));
            assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
        }
        let dir = tempfile::tempdir().unwrap();
        colour_rows(dir.path(), 197, &["red hair, blue hair, brown eyes"; 3]);
        let ds = load_dataset(dir.path(), 8, OnBadEntry::Skip, &|_, _| {}).unwrap();
        assert_eq!((ds.len(), ds.skipped.len()), (200, 0));
        assert!(ds.vocab.groups.iter().all(|g| g.name != "hair"));
        assert_eq!(ds.warnings.len(), 1, "{:?}", ds.warnings);
        let w = &ds.warnings[0];
        for want in [
            "group 'hair'",
            "3 of the 200 rows",
            "197.png",
            "198.png",
            "line 201",
            "free tags",
        ] {
            assert!(w.contains(want), "{want}: {w}");
        }
        let e = load_dataset(dir.path(), 8, OnBadEntry::Fail, &|_, _| {})
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("not exclusive") && e.contains("199.png") && e.contains("--strict"),
            "{e}"
        );
    }

    /// Issue 31: the same file listed twice with conflicting tags trained under both. Every row
    /// of it is named and skipped; a repeat with the same tags is read once.
    #[test]
    fn a_file_listed_twice_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        colour_rows(d, 20, &[]);
        let mut csv = std::fs::read_to_string(d.join("metadata.csv")).unwrap();
        csv.push_str("0.png,\"blue hair, brown eyes\"\n./1.png,\"brown eyes, blue hair\"\n");
        std::fs::write(d.join("metadata.csv"), csv).unwrap();
        let ds = load_dataset(d, 8, OnBadEntry::Skip, &|_, _| {}).unwrap();
        assert_eq!((ds.len(), ds.skipped.len()), (19, 3), "{:?}", ds.skipped);
        let all: Vec<String> = ds.skipped.iter().map(|b| b.to_string()).collect();
        let conflicting: Vec<&String> = all.iter().filter(|m| m.contains("0.png")).collect();
        assert_eq!(conflicting.len(), 2, "{all:?}");
        for m in conflicting {
            assert!(
                m.contains("listed 2 times with other tags")
                    && m.contains("line 2)")
                    && m.contains("line 22"),
                "{m}"
            );
        }
        assert!(
            all.iter()
                .any(|m| m.contains("line 23") && m.contains("listed again")),
            "{all:?}"
        );
        assert!(ds.files.iter().all(|f| !f.ends_with("0.png")));
        let e = load_dataset(d, 8, OnBadEntry::Fail, &|_, _| {})
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("listed"), "{e}");
    }

    /// Tags that share a word without being exclusive (`long hair` with a colour) stay free tags.
    #[test]
    fn tags_that_often_go_together_are_not_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let extra = ["long hair, red hair, brown eyes"; 10];
        colour_rows(dir.path(), 40, &extra);
        let ds = load_dataset(dir.path(), 8, OnBadEntry::Skip, &|_, _| {}).unwrap();
        assert_eq!((ds.len(), ds.skipped.len()), (50, 0));
        assert!(
            ds.vocab.groups.iter().all(|g| g.name != "hair"),
            "{:?}",
            ds.vocab
        );
    }

    #[test]
    fn reads_sidecar_tags() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_png(&d.join("x.png"), 8, [1, 2, 3]);
        std::fs::write(d.join("x.txt"), "pink hair, smile\n").unwrap();
        write_png(&d.join("y.png"), 8, [1, 2, 3]);
        // With a byte-order mark and Windows line ends.
        std::fs::write(d.join("y.txt"), "\u{feff}blue hair\r\nsmile\r\n").unwrap();
        write_png(&d.join("untagged.png"), 8, [1, 2, 3]);
        let ds = load_dataset(d, 8, OnBadEntry::Skip, &|_, _| {}).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.tags[0], vec!["pink hair", "smile"]);
        assert_eq!(ds.tags[1], vec!["blue hair", "smile"]);
        assert_eq!(ds.skipped.len(), 1);
        assert!(ds.skipped[0].to_string().contains("no tag file"));
    }

    #[test]
    fn missing_and_empty_folders_are_clear_errors() {
        let e = load_dataset(Path::new("/no/such/dir"), 8, OnBadEntry::Skip, &|_, _| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("does not exist"));
        let dir = tempfile::tempdir().unwrap();
        let e = load_dataset(dir.path(), 8, OnBadEntry::Skip, &|_, _| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("no usable images"), "{e}");
    }

    /// A 3-image imagefolder with one bad row, for the cache tests.
    fn small_folder(d: &Path) {
        write_png(&d.join("a.png"), 8, [255, 0, 0]);
        write_png(&d.join("b.png"), 8, [0, 255, 0]);
        write_png(&d.join("c.png"), 8, [0, 0, 255]);
        std::fs::write(d.join("bad.png"), b"no image").unwrap();
        std::fs::write(
            d.join("metadata.csv"),
            "file_name,tags\na.png,\"red hair\"\nbad.png,\"red hair\"\nb.png,\"green hair\"\nc.png,\"blue hair\"\n",
        )
        .unwrap();
    }

    fn load(d: &Path, cache: &Path) -> (Dataset, CacheStatus) {
        load_dataset_cached(d, 8, OnBadEntry::Skip, &|_, _| {}, Some(cache)).unwrap()
    }

    #[test]
    fn the_cache_returns_the_same_dataset_without_decoding() {
        let (data, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        small_folder(data.path());
        let (first, s1) = load(data.path(), cache.path());
        let CacheStatus::Stored(file) = s1 else {
            panic!("first load stores: {s1:?}")
        };
        let (second, s2) = load(data.path(), cache.path());
        assert_eq!(s2, CacheStatus::Hit(file.clone()));
        assert_eq!(first.pixels, second.pixels);
        assert_eq!(first.tags, second.tags);
        assert_eq!(first.files, second.files);
        assert_eq!(second.len(), 3);
        assert_eq!(second.skipped.len(), 1);
        assert!(second.skipped[0].to_string().contains("bad.png"));
        // Proof the pixels came from the file: change them there (same length), and they show.
        let mut bytes = std::fs::read(&file).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();
        let (third, s3) = load(data.path(), cache.path());
        assert_eq!(s3, CacheStatus::Hit(file));
        assert_ne!(third.pixels, first.pixels);
        // Without a cache folder nothing is read or written.
        let (plain, s4) =
            load_dataset_cached(data.path(), 8, OnBadEntry::Skip, &|_, _| {}, None).unwrap();
        assert_eq!(s4, CacheStatus::Off);
        assert_eq!(plain.pixels, first.pixels);
    }

    #[test]
    fn an_edited_image_or_a_broken_cache_means_a_fresh_decode() {
        let (data, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        small_folder(data.path());
        let (_, s1) = load(data.path(), cache.path());
        let CacheStatus::Stored(file) = s1 else {
            panic!("{s1:?}")
        };
        // Another size, so the fingerprint changes even where mtimes are coarse.
        write_png(&data.path().join("b.png"), 16, [9, 9, 9]);
        let (edited, s2) = load(data.path(), cache.path());
        assert_eq!(s2, CacheStatus::Stored(file.clone()));
        assert_eq!(edited.image(1)[..3], [9, 9, 9]);
        // Truncated: decoded again and rewritten, same result.
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let (again, s3) = load(data.path(), cache.path());
        assert_eq!(s3, CacheStatus::Stored(file.clone()));
        assert_eq!(again.pixels, edited.pixels);
        // Foreign bytes: the same.
        std::fs::write(&file, b"\x89PNG not a cache").unwrap();
        let (_, s4) = load(data.path(), cache.path());
        assert_eq!(s4, CacheStatus::Stored(file));
        // A cache "folder" that is a file: the load still works, and says why there is no cache.
        let blocker = cache.path().join("blocker");
        std::fs::write(&blocker, b"").unwrap();
        let (ok, s5) = load(data.path(), &blocker);
        assert!(
            matches!(s5, CacheStatus::Unavailable(ref why) if why.contains("blocker")),
            "{s5:?}"
        );
        assert_eq!(ok.pixels, again.pixels);
    }

    /// The short run of the data-set fuzz target: mutations of a CSV, a sidecar and a PNG and
    /// a JPEG (the long run is `cargo fuzz run dataset`, see docs/reliability.md).
    #[test]
    fn the_dataset_reader_survives_mutated_inputs() {
        use shared_model::fuzz::{join, mutate::mutate};
        let csv = "file_name,tags\na.png,\"red hair, blue eyes\"\nb.png,\"blonde hair, green eyes\"\n\
                   c.png,\"red hair, green eyes, smile\"\n";
        let sidecar = "\u{feff}blonde hair\r\nblue eyes\r\n";
        let img = RgbImage::from_fn(20, 12, |x, y| image::Rgb([x as u8 * 9, y as u8 * 20, 77]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let mut jpeg = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        let input = |c: &[u8], s: &[u8], i: &[u8]| join(c, &join(s, i));
        assert_eq!(
            fuzz_dataset(&input(csv.as_bytes(), sidecar.as_bytes(), &png)),
            (4, true)
        );
        // The seeds of `cargo fuzz run dataset` (KYARA_FUZZ_SEEDS=DIR, see docs/reliability.md).
        if let Some(dir) = std::env::var_os("KYARA_FUZZ_SEEDS") {
            let dir = std::path::PathBuf::from(dir).join("dataset");
            std::fs::create_dir_all(&dir).unwrap();
            for (name, image) in [("png", &png), ("jpeg", &jpeg)] {
                let seed = input(csv.as_bytes(), sidecar.as_bytes(), image);
                std::fs::write(dir.join(name), seed).unwrap();
            }
        }
        let mut rng = shared_model::SplitMix64::new(3);
        let (mut rows, mut decoded) = (0, 0);
        for k in 0..900 {
            let image = if k % 2 == 0 { &png } else { &jpeg };
            let (c, sc, im) = match k % 3 {
                0 => (
                    mutate(csv.as_bytes(), &mut rng),
                    sidecar.as_bytes().to_vec(),
                    image.clone(),
                ),
                1 => (
                    csv.as_bytes().to_vec(),
                    mutate(sidecar.as_bytes(), &mut rng),
                    mutate(image, &mut rng),
                ),
                _ => (
                    mutate(csv.as_bytes(), &mut rng),
                    mutate(sidecar.as_bytes(), &mut rng),
                    mutate(image, &mut rng),
                ),
            };
            let (n, ok) = fuzz_dataset(&input(&c, &sc, &im));
            rows += n;
            decoded += usize::from(ok);
        }
        assert!(
            rows > 900 && decoded > 100,
            "rows {rows}, decoded {decoded}"
        );
    }

    /// Rows of a CRLF file are named by their real line (the reader's count was one too low;
    /// the shipped data set is CRLF).
    #[test]
    fn crlf_rows_keep_their_line_numbers() {
        let csv = "file_name,tags\r\na.png,\"red hair\"\r\nb.png,\r\nc.png,\"blue hair\"\r\n";
        let entries = read_metadata(csv.as_bytes(), Path::new("d"), Path::new("m.csv")).unwrap();
        let origins: Vec<&str> = entries.iter().map(|e| e.origin.as_str()).collect();
        assert_eq!(
            origins,
            [
                "metadata.csv line 2",
                "metadata.csv line 3",
                "metadata.csv line 4"
            ]
        );
    }

    /// A file name with a line break, quoted as `trainer tag` writes it, is a row like any
    /// other (train once called it an unclosed quote).
    #[test]
    fn a_file_name_with_a_line_break_is_not_an_unclosed_quote() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("two\nlines.png"), b"").unwrap();
        let csv = "file_name,tags\n\"two\nlines.png\",red hair\nb.png,blue hair\n";
        let entries = read_metadata(csv.as_bytes(), dir.path(), Path::new("m.csv")).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].file, dir.path().join("two\nlines.png"));
        assert_eq!(entries[0].tags.as_deref().unwrap(), ["red hair"]);
        assert_eq!(entries[1].origin, "metadata.csv line 4");
    }

    /// A data set with no usable image says why, not only how many were skipped.
    #[test]
    fn an_empty_data_set_gives_the_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("metadata.csv"),
            "file_name,tags\na.png,red hair\nb.png,\n",
        )
        .unwrap();
        let e = load_dataset(d, 16, OnBadEntry::Skip, &|_, _| {})
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("(2 skipped)") && e.contains("a.png") && e.contains("file not found"),
            "{e}"
        );
        assert!(e.contains("empty tag list"), "{e}");
    }

    /// An unclosed quote once swallowed the rows after it silently (and dissolved the
    /// exclusive groups); the row is named with its lines and skipped, or fails `--strict`.
    #[test]
    fn an_unclosed_quote_is_named_with_its_lines() {
        let csv = "file_name,tags\na.png,\"red hair, blue eyes\"\nb.png,\"unclosed red hair\n\
                   c.png,\"blonde hair, green eyes\"\nd.png,\"red hair, green eyes\"\n";
        let entries = read_metadata(csv.as_bytes(), Path::new("d"), Path::new("m.csv")).unwrap();
        let bad: Vec<&Entry> = entries.iter().filter(|e| e.tags.is_err()).collect();
        assert_eq!(
            bad.len(),
            1,
            "{:?}",
            entries.iter().map(|e| &e.origin).collect::<Vec<_>>()
        );
        assert_eq!(bad[0].origin, "metadata.csv lines 3-4");
        assert!(bad[0].tags.as_ref().unwrap_err().contains("unclosed quote"));
        let last = entries.last().unwrap();
        assert_eq!(
            last.origin, "metadata.csv line 5",
            "lines after it keep their numbers"
        );
    }
}
