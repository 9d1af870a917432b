//! Files in and out of the trainer, in one place:
//! - writing so that a crash or a kill never leaves half a file behind: everything goes to a
//!   temporary file in the same folder, is flushed to disk, then renamed over the target
//!   ([`write_atomic`]);
//! - "may I write here" ([`Outputs`]): an output never lands on the command's own inputs, on
//!   another of its outputs, on a model or tagger card, on a run folder's files, on a device, a
//!   FIFO or through a symbolic link, and replaces an existing file only with `--force`;
//! - reading inputs as regular files of bounded size ([`read_bounded`]): a FIFO, a device such
//!   as `/dev/zero` or a file larger than the limit is refused by name, before a byte is read.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Writes `bytes` to `path` atomically (temp file in the same folder + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, &|_| Ok(()))
}

/// [`write_atomic`] that runs `before_rename` on the finished temporary file just before it
/// replaces `path`; an error there leaves `path` untouched and removes the temporary file.
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    before_rename: &dyn Fn(&Path) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Whatever the caller checked: a rename never replaces a link, a device or a FIFO (as root,
    // `/dev/full` once became a regular file).
    if let Some(kind) = not_a_plain_file(path) {
        bail!(
            "{} is {kind}: kyara replaces only regular files it wrote",
            path.display()
        );
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // Temp files are created private (0600); the result should be readable like any other file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    before_rename(tmp.path())?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot move the finished file to {}", path.display()))?;
    Ok(())
}

/// What `path` is when it exists and is not a regular file (`None`: absent or a regular file).
/// Links are not followed.
fn not_a_plain_file(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let ft = meta.file_type();
    if ft.is_file() {
        return None;
    }
    if ft.is_symlink() {
        let to = std::fs::read_link(path)
            .map(|t| format!(" (to {})", t.display()))
            .unwrap_or_default();
        return Some(format!("a symbolic link{to}"));
    }
    if ft.is_dir() {
        return Some("a folder".into());
    }
    Some(special_kind(&ft).into())
}

/// The kind of a file that is neither regular, a folder nor a link.
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    let _ = ft;
    "not a regular file"
}

/// Reads `path` (`what` names it in messages, e.g. "face spec") as a regular file of at most
/// `max` bytes. Links are followed; a FIFO, a device (`/dev/zero`), a folder or a larger file is
/// refused before it is opened, and a file that grows past `max` while read is refused too.
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        bail!("{what} {} is a folder, not a file", path.display());
    }
    if !ft.is_file() {
        bail!(
            "{what} {} is {}, not a regular file: kyara reads only files of bounded size",
            path.display(),
            special_kind(&ft)
        );
    }
    if meta.len() > max {
        bail!(
            "{what} {} is {} bytes, more than kyara reads for one ({max})",
            path.display(),
            meta.len()
        );
    }
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!(
            "{what} {} grew past {max} bytes while it was read",
            path.display()
        );
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_text_bounded(path: &Path, max: u64, what: &str) -> Result<String> {
    String::from_utf8(read_bounded(path, max, what)?)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))
}

/// The files under a folder, each real folder read once ([`walk`]).
#[derive(Debug, Default)]
pub struct Walk {
    /// Files (and links to files), sorted.
    pub files: Vec<PathBuf>,
    /// Links to folders already read (a loop such as `sub/up -> ..`, or a second way into one
    /// folder): not followed.
    pub repeated: Vec<PathBuf>,
}

/// Lists the files under `dir` recursively, following links to folders but reading each real
/// folder once (a symbolic-link loop once listed 32 images 1,312 times). Names starting with `.`
/// are skipped when `skip_hidden`. An unreadable folder is an error naming it.
pub fn walk(dir: &Path, skip_hidden: bool) -> Result<Walk, (PathBuf, std::io::Error)> {
    let mut out = Walk::default();
    let mut seen = std::collections::HashSet::new();
    if let Ok(c) = dir.canonicalize() {
        seen.insert(c);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| (d.clone(), e))?;
        for e in rd.flatten() {
            if skip_hidden && e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                let fresh = p.canonicalize().is_ok_and(|c| seen.insert(c));
                if fresh {
                    stack.push(p);
                } else {
                    out.repeated.push(p);
                }
            } else {
                out.files.push(p);
            }
        }
    }
    out.files.sort();
    out.repeated.sort();
    Ok(out)
}

/// The cards kyara writes, by file name, with what each describes.
pub const CARD_FILES: [(&str, &str); 3] = [
    ("model.json", "a model card"),
    ("tagger.json", "a tagger card"),
    ("shape.json", "a shape encoder card"),
];

/// The card file `path` names: `path` itself, or for a folder its `file` (one of
/// [`CARD_FILES`]). A folder without it that holds another kind of card is an error naming that
/// card (`--tagger` given a model's folder once read as a missing tagger.json).
pub fn card_in(path: &Path, file: &str) -> Result<PathBuf> {
    if !path.is_dir() || path.join(file).exists() {
        return Ok(if path.is_dir() {
            path.join(file)
        } else {
            path.to_path_buf()
        });
    }
    let wanted = CARD_FILES
        .iter()
        .find(|(f, _)| *f == file)
        .map_or("a card", |(_, what)| what);
    if let Some((other, what)) = CARD_FILES.iter().find(|(f, _)| path.join(f).is_file()) {
        bail!(
            "{} holds {what} ({other}), not {wanted} ({file}): give the folder of {wanted}",
            path.display()
        );
    }
    Ok(path.join(file))
}

/// The most a card (model or tagger) may hold: real cards are a few hundred KiB.
pub const MAX_CARD_BYTES: u64 = 64 << 20;
/// The most a face spec (`generate --spec`, a permalink in a file) may hold.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// `path` made absolute and free of `.` and `..`, with its folder's links resolved (the folder
/// part that exists is canonicalised); the last component is kept as it is, so a link there
/// stays a link. Two spellings of one place compare equal.
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    let Some(name) = clean.file_name().map(|n| n.to_os_string()) else {
        return clean;
    };
    let mut dir = clean.parent().map(Path::to_path_buf).unwrap_or_default();
    // Canonicalise the longest folder prefix that exists; keep the rest as written.
    let mut rest = Vec::new();
    loop {
        if let Ok(canon) = dir.canonicalize() {
            let mut out = canon;
            out.extend(rest.iter().rev());
            out.push(name);
            return out;
        }
        match (dir.file_name().map(|n| n.to_os_string()), dir.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n);
                dir = p.to_path_buf();
            }
            _ => {
                clean.push(&name);
                return clean;
            }
        }
    }
}

/// The card kind of the file at `path` when it is a kyara model or tagger card (only a regular
/// file starting with `{` is read whole).
fn card_kind(path: &Path) -> Option<&'static str> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_CARD_BYTES {
        return None;
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    if head[..n].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let bytes = read_bounded(path, MAX_CARD_BYTES, "card").ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match v.get("format")?.as_str()? {
        shared_model::card::CARD_FORMAT => Some("a model card"),
        shared_model::tagger::TAGGER_FORMAT => Some("a tagger card"),
        _ => None,
    }
}

/// The run folder holding `path` (it or a folder up to three levels above it), if any.
fn run_folder_of(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .take(4)
        .find(|d| crate::train::RunDir::is_run(d) && d.join("checkpoints").is_dir())
        .map(Path::to_path_buf)
}

/// Whether `a` and `b` are one existing file (same device and inode), links followed.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

/// What one command reads and writes, for "may I write here" ([`Outputs::check`]). Each
/// command lists its inputs (files or folders) and the outputs it writes in one place, before any
/// work, so a refusal costs nothing and nothing is half done.
#[derive(Debug, Default)]
pub struct Outputs {
    /// `(what, resolved path)` of each input, e.g. `("the model card", .../model.json)`.
    inputs: Vec<(String, PathBuf)>,
    /// `(option, resolved path)` of each output already claimed.
    outputs: Vec<(String, PathBuf)>,
}

impl Outputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an input (a file, or a folder whose existing files are all inputs).
    pub fn input(&mut self, what: &str, path: &Path) -> &mut Self {
        self.inputs.push((what.to_string(), resolve(path)));
        self
    }

    /// Records the inputs of a model given as a card, the folder holding it, or a run folder:
    /// the card and the weights it names, or the run folder.
    pub fn model_input(&mut self, model: &Path) -> &mut Self {
        if model.is_dir() && !model.join("model.json").is_file() {
            return self.input("the run folder given as --model", model);
        }
        let card = if model.is_dir() {
            model.join("model.json")
        } else {
            model.to_path_buf()
        };
        if let Ok(bytes) = read_bounded(&card, MAX_CARD_BYTES, "model card")
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(w) = v.get("weights").and_then(|w| w.as_str())
        {
            let weights = card.parent().unwrap_or(Path::new(".")).join(w);
            self.input("the weights of --model", &weights);
        }
        self.input("the model card of --model", &card)
    }

    /// Claims `path` as the output of `option` (e.g. "--json"): an error that names the option
    /// and the path when it is one of the command's inputs or already-claimed outputs, a card, a
    /// file of a run folder, a folder, a link, a device, a FIFO or a socket; or an existing file
    /// and `force` is false.
    pub fn check(&mut self, option: &str, path: &Path, force: bool) -> Result<()> {
        let at = resolve(path);
        let shown = path.display();
        if at.file_name().is_none() {
            bail!("{option} {shown} is not a file name");
        }
        for (what, input) in &self.inputs {
            let inside_input_folder = input.is_dir() && at.starts_with(input) && at.exists();
            if at == *input || same_file(&at, input) || inside_input_folder {
                bail!(
                    "{option} {shown} is {what}, which this command reads: it would be \
                     overwritten by its own output (give another path)"
                );
            }
        }
        for (other, out) in &self.outputs {
            if at == *out {
                bail!(
                    "{option} {shown} is also written by {other} in this command: one output \
                     would overwrite the other (give another path)"
                );
            }
        }
        if let Some(kind) = not_a_plain_file(path) {
            bail!(
                "{option} {shown} is {kind}: kyara writes only regular files (give another path)"
            );
        }
        if at.exists() {
            if let Some(kind) = card_kind(&at) {
                bail!(
                    "{option} {shown} is {kind}: kyara never writes another kind of file over a \
                     card (give another path)"
                );
            }
            if let Some(run) = run_folder_of(&at) {
                bail!(
                    "{option} {shown} is a file of the run folder {}: only `trainer train` \
                     writes there (give another path)",
                    run.display()
                );
            }
            if !force {
                bail!("{option} {shown} exists; give --force to replace it");
            }
        }
        self.outputs.push((option.to_string(), at));
        Ok(())
    }

    /// Claims the model folder `dir` as the output of `option` (export, convert): refused when it
    /// is a file, a run folder, or holds a `model.json` that is not a model card; a folder
    /// holding a model is replaced only with `force`. Claims `model.json` and the weights its
    /// current card names.
    pub fn check_model_folder(&mut self, option: &str, dir: &Path, force: bool) -> Result<()> {
        let shown = dir.display();
        if dir.exists() && !dir.is_dir() {
            bail!("{option} {shown} is a file, not a folder");
        }
        if crate::train::RunDir::is_run(dir) {
            bail!(
                "{option} {shown} is a run folder: export a model into a folder of its own \
                 (e.g. www/models/NAME)"
            );
        }
        let card = dir.join("model.json");
        if let Some(kind) = not_a_plain_file(&card) {
            bail!("{option} {shown}: its model.json is {kind}");
        }
        if card.exists() {
            if card_kind(&card) != Some("a model card") {
                bail!(
                    "{option} {shown} holds a model.json that is not a model card: kyara will not \
                     replace it (give another folder)"
                );
            }
            for (what, input) in &self.inputs {
                if resolve(&card) == *input && !force {
                    bail!(
                        "{option} {shown} holds {what}: converting a model in place replaces it; \
                         give --force to do so"
                    );
                }
            }
            if !force {
                let name = read_bounded(&card, MAX_CARD_BYTES, "model card")
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
                    .unwrap_or_default();
                bail!(
                    "{option} {shown} holds a model ('{name}'); give --force to replace it (its \
                     weights are deleted), or another folder"
                );
            }
            if let Ok(bytes) = read_bounded(&card, MAX_CARD_BYTES, "model card")
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && let Some(w) = v.get("weights").and_then(|w| w.as_str())
            {
                self.outputs.push((
                    format!("{option} (the weights it replaces)"),
                    resolve(&dir.join(w)),
                ));
            }
        }
        self.outputs
            .push((format!("{option} (its model.json)"), resolve(&card)));
        Ok(())
    }

    /// Claims the files `names` inside the folder `dir` (e.g. generate's faces): the same checks
    /// as [`Outputs::check`], existing files replaced (the folder is the command's own).
    pub fn check_in_folder(&mut self, option: &str, dir: &Path, names: &[String]) -> Result<()> {
        if dir.exists() && !dir.is_dir() {
            bail!("{option} {} is a file, not a folder", dir.display());
        }
        for n in names {
            self.check(option, &dir.join(n), true)?;
        }
        Ok(())
    }
}

/// RGBA or RGB pixels -> PNG bytes.
pub fn png_bytes(img: &image::RgbaImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .context("cannot encode PNG")?;
    Ok(out.into_inner())
}

/// Lays out equally sized RGBA tiles (`side` pixels each) in a grid with `cols` columns and a
/// 2-pixel gutter.
pub fn sheet(tiles: &[Vec<u8>], side: usize, cols: usize) -> image::RgbaImage {
    let gap = 2usize;
    let cols = cols.max(1).min(tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols);
    let w = cols * side + (cols + 1) * gap;
    let h = rows * side + (rows + 1) * gap;
    let mut img = image::RgbaImage::from_pixel(w as u32, h as u32, image::Rgba([24, 24, 28, 255]));
    for (i, tile) in tiles.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        let (x0, y0) = (gap + c * (side + gap), gap + r * (side + gap));
        for y in 0..side {
            for x in 0..side {
                let p = (y * side + x) * 4;
                img.put_pixel(
                    (x0 + x) as u32,
                    (y0 + y) as u32,
                    image::Rgba([tile[p], tile[p + 1], tile[p + 2], tile[p + 3]]),
                );
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    /// The "may I write here" check refuses what is not a file of the command's own, by the
    /// option's name, before anything is written (the issue: a report renamed over the card the
    /// same command wrote, `/dev/full` replaced by a file, links and FIFOs replaced).
    #[test]
    fn outputs_own_only_what_they_create() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("in.json");
        std::fs::write(&input, "{}").unwrap();
        let err = |o: &mut Outputs, opt: &str, p: &Path, force: bool| {
            format!("{:#}", o.check(opt, p, force).unwrap_err())
        };
        let mut o = Outputs::new();
        o.input("the face spec", &input);
        // Its own input, spelled another way.
        let e = err(&mut o, "--json", &d.join("x/../in.json"), true);
        assert!(e.contains("--json") && e.contains("the face spec"), "{e}");
        // Two outputs of one command on one path.
        o.check("--out", &d.join("new/model.json"), false).unwrap();
        let e = err(&mut o, "--json", &d.join("new/./model.json"), true);
        assert!(e.contains("also written by --out"), "{e}");
        // A device, a folder, a FIFO and a link are never replaced, even with --force.
        let e = err(&mut o, "--json", Path::new("/dev/null"), true);
        assert!(e.contains("is a device"), "{e}");
        let e = err(&mut o, "--json", d, true);
        assert!(e.contains("a folder"), "{e}");
        #[cfg(unix)]
        {
            let target = d.join("target.txt");
            std::fs::write(&target, "keep").unwrap();
            let link = d.join("link.json");
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let e = err(&mut o, "--json", &link, true);
            assert!(e.contains("symbolic link"), "{e}");
            let fifo = d.join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                let e = err(&mut o, "--json", &fifo, true);
                assert!(e.contains("FIFO"), "{e}");
                let e = format!("{:#}", write_atomic(&fifo, b"x").unwrap_err());
                assert!(e.contains("FIFO"), "{e}");
            }
            let e = format!("{:#}", write_atomic(&link, b"x").unwrap_err());
            assert!(e.contains("symbolic link"), "{e}");
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        }
        // A card is never replaced by another kind of file.
        let card = d.join("card.json");
        std::fs::write(&card, r#"{"format": "kyara-tagger", "weights": "t.bpk"}"#).unwrap();
        let e = err(&mut o, "--sheet", &card, true);
        assert!(e.contains("a tagger card"), "{e}");
        // An existing file of ours: only with --force.
        let old = d.join("old.png");
        std::fs::write(&old, "png").unwrap();
        let e = err(&mut o, "--sheet", &old, false);
        assert!(e.contains("exists; give --force"), "{e}");
        o.check("--sheet", &old, true).unwrap();
    }

    /// Inputs are regular files of bounded size: `/dev/zero` once filled the memory, a FIFO hung.
    #[test]
    fn inputs_are_regular_files_of_bounded_size() {
        let e = format!(
            "{:#}",
            read_bounded(Path::new("/dev/zero"), 1 << 20, "face spec").unwrap_err()
        );
        assert!(e.contains("face spec /dev/zero is a device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 100]).unwrap();
        let e = format!("{:#}", read_bounded(&big, 99, "card").unwrap_err());
        assert!(e.contains("100 bytes, more than"), "{e}");
        assert_eq!(read_bounded(&big, 100, "card").unwrap().len(), 100);
    }

    /// A folder walk reads each real folder once (a `sub/up -> ..` loop read one folder ~40
    /// times) and names the links it did not follow.
    #[cfg(unix)]
    #[test]
    fn a_walk_reads_each_folder_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a.png"), "").unwrap();
        std::fs::write(d.join("sub/b.png"), "").unwrap();
        std::os::unix::fs::symlink("..", d.join("sub/up")).unwrap();
        let w = walk(d, false).unwrap();
        assert_eq!(w.files, [d.join("a.png"), d.join("sub/b.png")]);
        assert_eq!(w.repeated, [d.join("sub/up")]);
    }

    #[test]
    fn sheet_places_tiles() {
        let red = [255u8, 0, 0, 255].repeat(4);
        let blue = [0u8, 0, 255, 255].repeat(4);
        let img = sheet(&[red, blue], 2, 2);
        assert_eq!(img.dimensions(), (2 * 2 + 3 * 2, 2 + 2 * 2));
        assert_eq!(img.get_pixel(2, 2).0, [255, 0, 0, 255]);
        assert_eq!(img.get_pixel(6, 2).0, [0, 0, 255, 255]);
    }
}
