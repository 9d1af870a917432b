//! `trainer tag`: writes `metadata.csv` for a folder of images with a trained tagger, so that a
//! folder of untagged faces becomes a dataset `trainer train` reads.
//!
//! Rows already in `metadata.csv` are kept as they are (the existing text is copied byte for
//! byte and new rows are appended) unless `--overwrite` asks to tag every image again. Without a
//! `metadata.csv`, tags from kohya-style `.txt` sidecars count as existing tags. The new file is
//! written to a temporary file in the same folder, flushed, and renamed over the old one: a crash
//! or a kill leaves either the old file or the new one, never a mix.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use shared_model::tagger::{LoadedTagger, predicted_tags};

use super::{read_images, relative_name};
use crate::data::decode_image;
use crate::fsutil::write_atomic_with;

const IMAGE_EXTS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "bmp"];

/// Settings of `trainer tag`.
#[derive(Debug, Clone, Copy)]
pub struct TagOptions {
    /// Probability from which a tag is written (free tags; and a group's best tag).
    pub threshold: f32,
    /// Tag every image again, replacing the tags of existing rows.
    pub overwrite: bool,
}

/// What `trainer tag` did.
#[derive(Debug, Default)]
pub struct TagSummary {
    /// Images that got tags from the tagger.
    pub tagged: usize,
    /// Existing rows left as they were.
    pub kept: usize,
    /// Images written with an empty tag list (no tag reached the threshold).
    pub empty: usize,
    /// Images that could not be read (with the reason); they get no row.
    pub unreadable: Vec<String>,
    /// Whether metadata.csv was written.
    pub written: bool,
}

/// Image files under `dir` (recursively, hidden files and folders skipped), as sorted relative
/// names. A file whose name is not UTF-8 is skipped with a note (see [`list_images_named`]).
pub fn list_images(dir: &Path) -> Result<Vec<String>> {
    let (names, not_utf8) = list_images_named(dir)?;
    for n in not_utf8 {
        note!("skipped {n}");
    }
    Ok(names)
}

/// [`list_images`], and the files skipped because their name is not UTF-8, each shown lossily
/// with the reason: `metadata.csv` names files in UTF-8, so such a name written into it (as
/// once, lossily) named no file, and `train` said "file not found".
pub fn list_images_named(dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let walk = crate::fsutil::walk(dir, true)
        .map_err(|(d, e)| anyhow::Error::new(e).context(format!("cannot list {}", d.display())))?;
    for p in &walk.repeated {
        note!(
            "skipped {}: a link to a folder already read (a symbolic link loop?)",
            p.display()
        );
    }
    let images = walk.files.iter().filter(|p| {
        p.extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| IMAGE_EXTS.contains(&x.to_ascii_lowercase().as_str()))
    });
    let (mut out, mut not_utf8) = (Vec::new(), Vec::new());
    for p in images {
        let rel = p.strip_prefix(dir).unwrap_or(p);
        if rel.to_str().is_some() {
            out.push(relative_name(p, dir));
        } else {
            not_utf8.push(format!(
                "{}: the file name is not UTF-8 (shown with \u{fffd} for the bytes that are \
                 not), and metadata.csv names files in UTF-8: rename the file",
                rel.to_string_lossy()
            ));
        }
    }
    out.sort();
    not_utf8.sort();
    Ok((out, not_utf8))
}

/// The existing `metadata.csv`: its text, header, columns and rows.
struct Existing {
    text: String,
    header: csv::StringRecord,
    file_col: usize,
    tags_col: usize,
    rows: Vec<csv::StringRecord>,
}

fn read_existing(path: &Path, dir: &Path) -> Result<Option<Existing>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .with_context(|| format!("{} is not a readable CSV file", path.display()))?
        .clone();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let file_col = col("file_name")
        .with_context(|| format!("{} has no 'file_name' column", path.display()))?;
    let tags_col =
        col("tags").with_context(|| format!("{} has no 'tags' column", path.display()))?;
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} has an unreadable row", path.display()))?;
    check_quotes(&text, path, dir, file_col, tags_col)?;
    Ok(Some(Existing {
        text,
        header,
        file_col,
        tags_col,
        rows,
    }))
}

/// Refuses a `metadata.csv` with a quote left open: new rows appended after it would be read as
/// part of its field (`tag` once appended there, silently, and `train` then lost a row). A
/// field over several lines is an open quote unless it is a file name that exists as written
/// (`tag` quotes such names); a quote still open at the end of the file is one too.
fn check_quotes(
    text: &str,
    path: &Path,
    dir: &Path,
    file_col: usize,
    tags_col: usize,
) -> Result<()> {
    const END: &str = "kyara-end-of-file-probe";
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let probe = format!("{text}{sep}{END},\n");
    let bytes = probe.as_bytes();
    // A row's line from the byte where it starts (its leading line ends skipped).
    let line_at = |byte: u64| {
        let mut k = (byte as usize).min(bytes.len());
        while k < bytes.len() && matches!(bytes[k], b'\r' | b'\n') {
            k += 1;
        }
        1 + bytes[..k].iter().filter(|&&b| b == b'\n').count()
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    for row in reader.records() {
        let Ok(row) = row else { continue };
        let line = row.position().map_or(0, |p| line_at(p.byte()));
        let lines = row
            .iter()
            .map(|f| f.matches('\n').count())
            .max()
            .unwrap_or(0);
        if lines == 0 {
            continue;
        }
        let real_name = row.get(file_col).is_some_and(|f| {
            row.get(tags_col).map_or(0, |t| t.matches('\n').count()) == 0
                && f.contains('\n')
                && !f.contains(END)
                && dir.join(f).is_file()
        });
        if real_name {
            continue;
        }
        if row.iter().any(|f| f.contains(END)) {
            bail!(
                "{} line {line}: a quote opened on this line is never closed (an unclosed \
                 quote): rows added after it would be read as part of it, so none is added; \
                 close the quote (lines {line}-{}) and run tag again",
                path.display(),
                text.lines().count().max(line)
            );
        }
        bail!(
            "{} lines {line}-{}: a quote opened on line {line} closes only {lines} line(s) later \
             (an unclosed quote?): the rows in between are read as part of this one, so no row \
             is added; fix the quote and run tag again",
            path.display(),
            line + lines
        );
    }
    Ok(())
}

fn csv_line(fields: &[String]) -> Result<String> {
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    w.write_record(fields)?;
    Ok(String::from_utf8(
        w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?,
    )?)
}

/// Tags the images of `dir` and writes `dir/metadata.csv`.
pub fn tag_folder(tagger: &LoadedTagger, dir: &Path, opts: TagOptions) -> Result<TagSummary> {
    tag_folder_with(tagger, dir, opts, &|_| Ok(()))
}

/// [`tag_folder`] with a hook that runs just before the finished file replaces the old one.
pub fn tag_folder_with(
    tagger: &LoadedTagger,
    dir: &Path,
    opts: TagOptions,
    before_rename: &dyn Fn(&Path) -> Result<()>,
) -> Result<TagSummary> {
    if !dir.is_dir() {
        bail!("'{}' is not a folder", dir.display());
    }
    if !(0.0..=1.0).contains(&opts.threshold) {
        bail!("the threshold must be a probability from 0 to 1");
    }
    let meta_path = dir.join("metadata.csv");
    let existing = read_existing(&meta_path, dir)?;
    let (images, not_utf8) = list_images_named(dir)?;
    let mut summary = TagSummary {
        unreadable: not_utf8,
        ..TagSummary::default()
    };

    // Which images already have tags (rows of metadata.csv, or sidecars without one).
    let mut known: HashSet<String> = HashSet::new();
    let mut sidecar_tags: HashMap<String, String> = HashMap::new();
    match &existing {
        Some(ex) => {
            for r in &ex.rows {
                if let Some(f) = r.get(ex.file_col) {
                    known.insert(f.trim().to_string());
                }
            }
        }
        None => {
            for name in &images {
                let txt = dir.join(name).with_extension("txt");
                if let Ok(t) = std::fs::read_to_string(&txt) {
                    let tags = shared_model::vocab::parse_tags(&t.replace('\n', ","));
                    if !tags.is_empty() {
                        sidecar_tags.insert(name.clone(), tags.join(", "));
                    }
                }
            }
        }
    }
    let to_tag: Vec<&String> = images
        .iter()
        .filter(|n| opts.overwrite || !(known.contains(*n) || sidecar_tags.contains_key(*n)))
        .collect();

    // Decode and tag.
    let res = tagger.card.resolution;
    let mut decoded: Vec<(String, Vec<u8>)> = Vec::new();
    for name in &to_tag {
        match decode_image(&dir.join(name), res) {
            Ok(img) => decoded.push(((*name).clone(), img.into_raw())),
            Err(e) => summary.unreadable.push(format!("{name}: {e}")),
        }
    }
    let refs: Vec<&[u8]> = decoded.iter().map(|(_, p)| p.as_slice()).collect();
    let vocab = &tagger.card.vocab;
    let (probs, _) = read_images(&tagger.tagger, vocab, res, &refs, &tagger.device);
    let mut new_tags: Vec<(String, String)> = Vec::new();
    for ((name, _), p) in decoded.iter().zip(probs.chunks(vocab.len().max(1))) {
        let tags = predicted_tags(vocab, p, opts.threshold);
        summary.empty += usize::from(tags.is_empty());
        new_tags.push((name.clone(), tags.join(", ")));
    }
    summary.tagged = new_tags.len();
    if new_tags.is_empty() {
        summary.kept = existing
            .as_ref()
            .map_or(sidecar_tags.len(), |e| e.rows.len());
        return Ok(summary);
    }

    // Compose the new file.
    let text = match existing {
        Some(ex) if !opts.overwrite => {
            let mut out = ex.text.clone();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            let width = ex.header.len();
            for (name, tags) in &new_tags {
                let mut fields = vec![String::new(); width];
                fields[ex.file_col] = name.clone();
                fields[ex.tags_col] = tags.clone();
                out.push_str(&csv_line(&fields)?);
            }
            summary.kept = ex.rows.len();
            out
        }
        Some(ex) => {
            let mut fresh: HashMap<&str, &str> = new_tags
                .iter()
                .map(|(n, t)| (n.as_str(), t.as_str()))
                .collect();
            let header: Vec<String> = ex.header.iter().map(str::to_string).collect();
            let mut out = csv_line(&header)?;
            for r in &ex.rows {
                let mut fields: Vec<String> = r.iter().map(str::to_string).collect();
                fields.resize(fields.len().max(ex.header.len()), String::new());
                let file = fields[ex.file_col].trim().to_string();
                match fresh.remove(file.as_str()) {
                    Some(t) => fields[ex.tags_col] = t.to_string(),
                    None => summary.kept += 1,
                }
                out.push_str(&csv_line(&fields)?);
            }
            let width = ex.header.len();
            for (name, tags) in &new_tags {
                if fresh.contains_key(name.as_str()) {
                    let mut fields = vec![String::new(); width];
                    fields[ex.file_col] = name.clone();
                    fields[ex.tags_col] = tags.clone();
                    out.push_str(&csv_line(&fields)?);
                }
            }
            out
        }
        None => {
            let mut rows: Vec<(String, String)> = new_tags.clone();
            if !opts.overwrite {
                summary.kept = sidecar_tags.len();
                rows.extend(sidecar_tags);
            }
            rows.sort();
            let mut out = String::from("file_name,tags\n");
            for (name, tags) in rows {
                out.push_str(&csv_line(&[name, tags])?);
            }
            out
        }
    };
    write_atomic_with(&meta_path, text.as_bytes(), before_rename)?;
    summary.written = true;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;
    use shared_model::TagVocab;
    use shared_model::tagger::{
        HoldoutSplit, TaggerAccuracy, TaggerCard, TaggerConfig, TaggerTraining,
    };
    use shared_model::vocab::parse_tags;

    /// An untrained tagger: its tags are arbitrary, which is all the write path needs.
    fn tagger() -> LoadedTagger {
        let sets: Vec<Vec<String>> = ["red hair, smile", "blue hair"]
            .iter()
            .map(|s| parse_tags(s))
            .collect();
        let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
        let cfg = TaggerConfig::new(vocab.len())
            .with_resolution(8)
            .with_channels(4)
            .with_max_channels(4)
            .with_final_size(1)
            .with_feature_dim(4);
        let device = Device::flex();
        LoadedTagger {
            tagger: cfg.init(&device),
            card: TaggerCard::new(
                "t",
                vocab,
                cfg,
                HoldoutSplit::new(10),
                TaggerTraining::default(),
                TaggerAccuracy::default(),
            ),
            device,
        }
    }

    fn folder(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            let p = dir.path().join(n);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            image::RgbImage::from_pixel(8, 8, image::Rgb([200, 30, 30]))
                .save(&p)
                .unwrap();
        }
        dir
    }

    const KEEP: TagOptions = TagOptions {
        threshold: 0.0,
        overwrite: false,
    };

    #[test]
    fn untagged_folder_gets_a_metadata_file() {
        let dir = folder(&["a.png", "sub/b.png"]);
        let s = tag_folder(&tagger(), dir.path(), KEEP).unwrap();
        assert_eq!((s.tagged, s.kept, s.written), (2, 0, true));
        let text = std::fs::read_to_string(dir.path().join("metadata.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "file_name,tags");
        assert!(lines[1].starts_with("a.png,") && lines[2].starts_with("sub/b.png,"));
        // Threshold 0: a hair tag and the free tag on every row.
        assert!(
            lines[1].contains("hair") && lines[1].contains("smile"),
            "{text}"
        );
        // The result is a dataset the loader reads.
        let ds =
            crate::data::load_dataset(dir.path(), 8, crate::data::OnBadEntry::Fail, &|_, _| {})
                .unwrap();
        assert_eq!(ds.len(), 2);
    }

    #[test]
    fn existing_rows_are_kept_byte_for_byte() {
        let dir = folder(&["a.png", "b.png", "c.png"]);
        let old = "file_name,tags,note\nb.png,\"blue hair\",hand made\n";
        std::fs::write(dir.path().join("metadata.csv"), old).unwrap();
        let s = tag_folder(&tagger(), dir.path(), KEEP).unwrap();
        assert_eq!((s.tagged, s.kept), (2, 1));
        let text = std::fs::read_to_string(dir.path().join("metadata.csv")).unwrap();
        assert!(text.starts_with(old), "{text}");
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().nth(2).unwrap().starts_with("a.png,"), "{text}");
        assert!(
            text.lines().nth(2).unwrap().ends_with(','),
            "empty note column"
        );

        // Nothing left to tag: the file is not touched.
        let s = tag_folder(&tagger(), dir.path(), KEEP).unwrap();
        assert!(!s.written);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("metadata.csv")).unwrap(),
            text
        );

        // --overwrite replaces the tags of every row, keeps the other columns.
        let opts = TagOptions {
            threshold: 0.0,
            overwrite: true,
        };
        let s = tag_folder(&tagger(), dir.path(), opts).unwrap();
        assert_eq!(s.tagged, 3);
        let text = std::fs::read_to_string(dir.path().join("metadata.csv")).unwrap();
        let b = text.lines().find(|l| l.starts_with("b.png")).unwrap();
        assert!(b.ends_with(",hand made") && b.contains("smile"), "{b}");
    }

    #[test]
    fn a_failure_before_the_rename_leaves_the_old_file_and_no_temp() {
        let dir = folder(&["a.png", "b.png"]);
        let meta = dir.path().join("metadata.csv");
        let old = "file_name,tags\nb.png,blue hair\n";
        std::fs::write(&meta, old).unwrap();
        let seen = std::cell::RefCell::new(None);
        let err = tag_folder_with(&tagger(), dir.path(), KEEP, &|tmp| {
            // The complete new file exists next to the old one, the old one is untouched.
            let new = std::fs::read_to_string(tmp).unwrap();
            assert!(new.starts_with(old) && new.contains("a.png"));
            assert_eq!(
                std::fs::read_to_string(dir.path().join("metadata.csv")).unwrap(),
                old
            );
            *seen.borrow_mut() = Some(tmp.to_path_buf());
            bail!("simulated crash before the rename")
        })
        .unwrap_err();
        assert!(err.to_string().contains("simulated crash"));
        assert_eq!(std::fs::read_to_string(&meta).unwrap(), old);
        assert!(!seen.borrow().as_ref().unwrap().exists(), "temp file left");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    }

    #[test]
    fn bad_metadata_and_unreadable_images_are_reported() {
        let dir = folder(&["a.png"]);
        std::fs::write(dir.path().join("bad.png"), b"not an image").unwrap();
        let s = tag_folder(&tagger(), dir.path(), KEEP).unwrap();
        assert_eq!(s.tagged, 1);
        assert_eq!(s.unreadable.len(), 1);
        assert!(s.unreadable[0].contains("bad.png"));

        let dir = folder(&["a.png"]);
        std::fs::write(dir.path().join("metadata.csv"), "name,labels\nx,y\n").unwrap();
        let e = tag_folder(&tagger(), dir.path(), KEEP).unwrap_err();
        assert!(format!("{e:#}").contains("file_name"), "{e:#}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("metadata.csv")).unwrap(),
            "name,labels\nx,y\n"
        );
    }

    /// Issue 31: `tag` on a metadata.csv with an unclosed quote appended its rows inside the
    /// quote and reported nothing (`train` then lost a row). It refuses, naming the lines, and
    /// leaves the file as it was.
    #[test]
    fn an_unclosed_quote_in_metadata_is_refused_with_its_lines() {
        let dir = folder(&["a.png", "b.png", "c.png"]);
        let before = "file_name,tags\na.png,\"red hair\nb.png,blue hair\n";
        std::fs::write(dir.path().join("metadata.csv"), before).unwrap();
        let e = format!("{:#}", tag_folder(&tagger(), dir.path(), KEEP).unwrap_err());
        assert!(e.contains("line 2") && e.contains("never closed"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("metadata.csv")).unwrap(),
            before
        );
        // Closed further down: the rows it swallowed are named.
        let swallowed = "file_name,tags\na.png,\"red hair\nb.png,blue hair\"\n";
        std::fs::write(dir.path().join("metadata.csv"), swallowed).unwrap();
        let e = format!("{:#}", tag_folder(&tagger(), dir.path(), KEEP).unwrap_err());
        assert!(
            e.contains("lines 2-3") && e.contains("unclosed quote"),
            "{e}"
        );
        // A well-formed file gets its new row.
        std::fs::write(
            dir.path().join("metadata.csv"),
            "file_name,tags\na.png,\"red hair\"\n",
        )
        .unwrap();
        let s = tag_folder(&tagger(), dir.path(), KEEP).unwrap();
        assert_eq!((s.tagged, s.kept), (2, 1));
    }

    /// Issue 31: an image whose file name is not UTF-8 was written into metadata.csv lossily,
    /// and `train` then said "file not found". It is skipped and named as not UTF-8.
    #[cfg(unix)]
    #[test]
    fn a_file_name_that_is_not_utf8_is_named_as_such() {
        use std::os::unix::ffi::OsStrExt;
        let dir = folder(&["a.png"]);
        let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"b\xff.png"));
        std::fs::copy(dir.path().join("a.png"), &odd).unwrap();
        let s = tag_folder(&tagger(), dir.path(), KEEP).unwrap();
        assert_eq!(s.tagged, 1);
        assert_eq!(s.unreadable.len(), 1, "{:?}", s.unreadable);
        assert!(s.unreadable[0].contains("b\u{fffd}.png") && s.unreadable[0].contains("not UTF-8"));
        let text = std::fs::read_to_string(dir.path().join("metadata.csv")).unwrap();
        assert!(!text.contains('\u{fffd}'), "{text}");
        // A row naming such a file lossily says what happened, not only "file not found".
        std::fs::write(
            dir.path().join("metadata.csv"),
            "file_name,tags\na.png,red hair\nb\u{fffd}.png,blue hair\n",
        )
        .unwrap();
        let ds =
            crate::data::load_dataset(dir.path(), 8, crate::data::OnBadEntry::Skip, &|_, _| {})
                .unwrap();
        assert_eq!(ds.skipped.len(), 1);
        let m = ds.skipped[0].to_string();
        assert!(
            m.contains("not UTF-8") && m.contains("b\u{fffd}.png"),
            "{m}"
        );
    }
}
