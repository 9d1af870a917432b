//! `generate`, `interpolate`, `export` and `convert`: drawing faces from a model and writing
//! models.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::Args;

use super::common::PrecisionArg;
use crate::fsutil::{MAX_SPEC_BYTES, Outputs, png_bytes, read_text_bounded, sheet, write_atomic};
use crate::model_io::interpolate::{interpolate as interpolate_strip, parse_endpoint};
use crate::model_io::{export, generate, load_model_or_run};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Model card (model.json) or the folder holding it.
    #[arg(long)]
    pub model: PathBuf,
    /// Comma-separated tags, e.g. "blonde hair, blue eyes"; open groups are drawn per seed.
    #[arg(long, default_value = "")]
    pub tags: String,
    /// Seeds: 42, 0-15 or 1,5,9-11 [default: the link's seed, else 0-15].
    #[arg(long)]
    pub seeds: Option<String>,
    /// A permalink of the page, e.g. '#model=anime64&seed=42&tags=blonde_hair&s=blonde_hair:1.2&v=7:0.35'
    /// (or the whole URL): draws the same pixels as the page (tags, strengths, variations, directions).
    #[arg(long, conflicts_with_all = ["tags", "spec"])]
    pub link: Option<String>,
    /// A file holding a permalink (the same text as --link).
    #[arg(long, conflicts_with = "tags")]
    pub spec: Option<PathBuf>,
    /// Steps along the model's named directions, e.g. "sefa 1=+2, smile=-1" (added to the
    /// link's).
    #[arg(long, value_name = "NAME=AMOUNT,...")]
    pub edit: Option<String>,
    /// Truncation psi towards the tags' mean face (StyleGAN2-style models; 1 = none).
    #[arg(long)]
    pub psi: Option<f64>,
    /// Output folder for seedNNNN.png files and metadata.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write all faces as one sheet to this PNG.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Replace an existing --sheet file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct DirectionsArgs {
    /// Model card (model.json) or the folder holding it; its card is rewritten with the
    /// directions found (each replaces the card's direction of the same name; the others are
    /// kept, see --replace).
    #[arg(long)]
    pub model: PathBuf,
    /// Closed-form (SeFa) directions to find.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub sefa: u64,
    /// Also one supervised direction per tag, from the tagger's reading of sampled faces
    /// (e.g. models/tagger64).
    #[arg(long)]
    pub tagger: Option<PathBuf>,
    /// Faces sampled for the supervised directions.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(16..=100_000))]
    pub samples: u64,
    /// Names for SeFa directions by number, e.g. --name "1=head turn" (repeat).
    #[arg(long = "name", value_name = "N=NAME")]
    pub names: Vec<String>,
    /// Also draw a sweep sheet: one row per direction, 7 faces from -range to +range.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Seed and tags of the sweep sheet's face.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value = "")]
    pub tags: String,
    /// Replace the card's directions with the ones found (by default a direction found replaces
    /// the card's one of the same name and the others are kept).
    #[arg(long)]
    pub replace: bool,
    /// Replace an existing --sheet file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct InterpolateArgs {
    /// Model card (model.json), the folder holding it, or a run folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Start: SEED, SEED:TAGS or a page permalink, e.g. "1:blonde hair, blue eyes" or
    /// "#seed=1&tags=blonde_hair&s=blonde_hair:1.2".
    #[arg(long)]
    pub from: String,
    /// End: SEED, SEED:TAGS or a page permalink.
    #[arg(long)]
    pub to: String,
    /// Faces in the strip, the endpoints included.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=256))]
    pub steps: u64,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Run folder to export (its newest checkpoint's EMA generator).
    #[arg(long)]
    pub run: PathBuf,
    /// Output folder, e.g. www/models/anime64.
    #[arg(long)]
    pub out: PathBuf,
    /// Model name in the card (default: the output folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Storage precision of the weights.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F16)]
    pub precision: PrecisionArg,
    /// Replace the model an existing --out folder holds (its weights are deleted).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Model card (model.json) or the folder holding it.
    #[arg(long)]
    pub model: PathBuf,
    /// Output folder (the model's own folder with --force: the files are replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Storage precision of the written weights.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F16)]
    pub precision: PrecisionArg,
    /// Seeds whose faces are compared between the source and the written model.
    #[arg(long, default_value = "0-63")]
    pub check_seeds: String,
    /// Also write the report (sizes, pixel differences) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace the model an existing --out folder holds, and an existing --json file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SealArgs {
    /// Model card (model.json), tagger card (tagger.json) or the folder holding one.
    #[arg(long)]
    pub model: PathBuf,
    /// Reseal a model card whose seal no longer matches (it was edited on purpose); the
    /// checksums of its weights and tag list must still hold.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn seal(a: SealArgs) -> Result<()> {
    let (path, what) = crate::model_io::seal::seal(&a.model, a.force, &Device::flex())?;
    note!("sealed {} ({what})", path.display());
    Ok(())
}

pub(super) fn generate(a: GenerateArgs) -> Result<()> {
    let seeds = a.seeds.as_deref().map(generate::parse_seeds).transpose()?;
    let link = match (&a.link, &a.spec) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => Some(read_text_bounded(path, MAX_SPEC_BYTES, "face spec")?),
        (None, None) => None,
    };
    // One face per spec: a file of two links once read as one, its second line glued to a tag.
    let lines = link.as_deref().map_or(0, |l| {
        l.lines().filter(|line| !line.trim().is_empty()).count()
    });
    if lines > 1 {
        let what = match &a.spec {
            Some(path) if a.link.is_none() => format!("--spec {}", path.display()),
            _ => "--link".to_string(),
        };
        bail!(
            "{what} holds {lines} lines: a face spec is one permalink (the text after '#' of \
             the page's link) on one line"
        );
    }
    // A run folder is accepted too: its newest EMA generator, exactly as trained.
    let device = Device::flex();
    let model = load_model_or_run(&a.model, &device)?;
    let what = if a.link.is_some() { "--link" } else { "--spec" };
    let (mut spec, seeds) = generate::spec_and_seeds(&model, &a.tags, link.as_deref(), seeds)
        .with_context(|| what.to_string())?;
    if let Some(edit) = &a.edit {
        for item in edit.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, amount) = item
                .rsplit_once('=')
                .with_context(|| format!("--edit: '{item}' is not NAME=AMOUNT"))?;
            let amount: f64 = amount
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .with_context(|| format!("--edit: '{amount}' is not a number"))?;
            let d = model.card.direction(name.trim()).with_context(|| {
                let known: Vec<&str> = model
                    .card
                    .directions
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect();
                format!(
                    "--edit: the model has no direction '{}' (it has: {})",
                    name.trim(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })?;
            *spec.directions.entry(d.name.clone()).or_insert(0.0) += amount;
        }
    }
    if a.psi.is_some() {
        spec.psi = a.psi;
    }
    // The numbers of the recipe are checked against the card before anything is written.
    let first = shared_model::FaceSpec {
        seed: seeds.first().copied(),
        ..spec.clone()
    };
    if let Err(e) = model.card.face_inputs(&first) {
        let given: Vec<&str> = [
            (link.is_some(), what),
            (a.edit.is_some(), "--edit"),
            (a.psi.is_some(), "--psi"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        return Err(if given.is_empty() {
            e.into()
        } else {
            anyhow::Error::new(e).context(given.join(" and "))
        });
    }
    if let Some(m) = &spec.model {
        let folder = a
            .model
            .file_name()
            .map(|f| f.to_string_lossy().into_owned());
        if *m != model.card.name && Some(m) != folder.as_ref() {
            note!(
                "note: the link is for model '{m}'; drawing with '{}'",
                model.card.name
            );
        }
    }
    // Nothing is drawn before every output is known to be ours to write.
    let mut outs = Outputs::new();
    outs.model_input(&a.model);
    if let Some(path) = &a.spec {
        outs.input("the face spec (--spec)", path);
    }
    let mut names: Vec<String> = seeds.iter().map(|s| generate::seed_file(*s)).collect();
    names.push("metadata.csv".into());
    outs.check_in_folder("--out", &a.out, &names)?;
    if let Some(sheet) = &a.sheet {
        outs.check("--sheet", sheet, a.force)?;
    }
    let written = generate::generate_spec(&model, &spec, &seeds, &a.out, a.sheet.as_deref())?;
    note!("wrote {} files to {}", written.len(), a.out.display());
    Ok(())
}

pub(super) fn directions(a: DirectionsArgs) -> Result<()> {
    use crate::model_io::directions::{sefa_directions, write_card};
    let device = Device::flex();
    let mut model = generate::load_model(&a.model, &device)?;
    let mut outs = Outputs::new();
    outs.model_input(&a.model);
    if let Some(t) = &a.tagger {
        outs.input("the tagger (--tagger)", t);
    }
    if let Some(sheet) = &a.sheet {
        outs.check("--sheet", sheet, a.force)?;
    }
    // The names are checked before anything is computed; a problem is the option's, not the
    // card's.
    let names = direction_names(&a.names, a.sefa as usize, &model.card.vocab)?;
    let mut found = sefa_directions(&model, a.sefa as usize)?;
    for (i, name) in names {
        found[i].name = name;
    }
    if let Some(path) = &a.tagger {
        let tagger = crate::tagger::load_tagger(path, &device)?;
        for (d, per_unit) in
            crate::model_io::directions::supervised_directions(&model, &tagger, a.samples as usize)?
        {
            note!("{}: P({}) {per_unit:+.3} per unit", d.name, d.name);
            found.push(d);
        }
    }
    let mut card = model.card.clone();
    let kept = crate::model_io::directions::merge(&mut card.directions, &found, a.replace);
    card.reseal();
    // The card must still read (names unique, sizes right) before it replaces the old one.
    let card = shared_model::ModelCard::from_json(&card.to_json())?;
    write_card(&a.model, &card)?;
    for d in &found {
        note!(
            "{}: range ±{} — {}",
            d.name,
            d.range.unwrap_or(1.0),
            d.about.as_deref().unwrap_or("")
        );
    }
    model.card = card;
    if let Some(path) = &a.sheet {
        let mut tiles = Vec::new();
        for d in &found {
            let r = d.range.unwrap_or(1.0);
            for k in 0..7 {
                let mut spec = shared_model::FaceSpec::new(a.seed, &a.tags);
                spec.directions
                    .insert(d.name.clone(), r * (k as f64 - 3.0) / 3.0);
                tiles.push(model.draw(&spec)?.rgba);
            }
        }
        write_atomic(path, &png_bytes(&sheet(&tiles, model.card.resolution, 7))?)?;
        note!("wrote the sweep sheet {}", path.display());
    }
    note!(
        "wrote {} directions into {}{}",
        found.len(),
        a.model.display(),
        if kept > 0 {
            format!(" (kept its {kept} other directions; --replace drops them)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The `--name N=NAME` options as `(index from 0, name)`: each N a SeFa direction number, each
/// name non-empty, not a tag of the model (a tag's direction is the tagger's), and no name or
/// number given twice.
fn direction_names(
    items: &[String],
    count: usize,
    vocab: &shared_model::TagVocab,
) -> Result<Vec<(usize, String)>> {
    use shared_model::face::same_name;
    let mut out: Vec<(usize, String)> = Vec::new();
    for item in items {
        let (n, name) = item.split_once('=').with_context(|| {
            format!("--name '{item}' is not N=NAME (e.g. --name \"1=head turn\")")
        })?;
        let i: usize = n
            .trim()
            .parse()
            .ok()
            .filter(|i| (1..=count).contains(i))
            .with_context(|| {
                format!(
                    "--name '{item}': '{n}' is not a direction number 1-{count} (--sefa {count})"
                )
            })?;
        let name = name.trim();
        if shared_model::vocab::normalize_tag(name).is_empty() {
            bail!("--name '{item}': the name is empty");
        }
        if vocab
            .index_of(&shared_model::vocab::normalize_tag(name))
            .is_some()
        {
            bail!(
                "--name '{item}': '{name}' is a tag of the model, and a tag's direction is the \
                 one --tagger finds for it; give SeFa direction {i} another name"
            );
        }
        if let Some((j, _)) = out.iter().find(|(j, _)| *j == i - 1) {
            bail!("--name '{item}': direction {} is named twice", j + 1);
        }
        if let Some((j, _)) = out.iter().find(|(_, other)| same_name(other, name)) {
            bail!(
                "--name '{item}': '{name}' is already the name of direction {}",
                j + 1
            );
        }
        let default = (1..=count).find(|k| *k != i && same_name(&format!("sefa {k}"), name));
        if let Some(k) = default {
            bail!("--name '{item}': '{name}' is the name SeFa direction {k} keeps");
        }
        out.push((i - 1, name.to_string()));
    }
    Ok(out)
}

pub(super) fn interpolate(a: InterpolateArgs) -> Result<()> {
    let from = parse_endpoint(&a.from).context("--from")?;
    let to = parse_endpoint(&a.to).context("--to")?;
    let device = Device::flex();
    let model = load_model_or_run(&a.model, &device)?;
    Outputs::new()
        .model_input(&a.model)
        .check("--out", &a.out, a.force)?;
    let frames = interpolate_strip(&model, &from, &to, a.steps as usize)?;
    let side = model.card.resolution;
    write_atomic(&a.out, &png_bytes(&sheet(&frames, side, frames.len()))?)?;
    note!("wrote {} faces to {}", frames.len(), a.out.display());
    Ok(())
}

pub(super) fn export(a: ExportArgs) -> Result<()> {
    let name = match a.name {
        Some(n) => n,
        None => a
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    Outputs::new()
        .input("the run folder (--run)", &a.run)
        .check_model_folder("--out", &a.out, a.force)?;
    let report = export::export(&a.run, &a.out, &name, a.precision.into())?;
    let card = &report.card;
    note!(
        "exported '{}' ({} steps, {} tags) to {}: weights {} bytes ({})",
        card.name,
        card.training.steps,
        card.vocab.len(),
        a.out.display(),
        report.bytes,
        card.weights_dtype
    );
    if let Some(e) = report.error {
        note!(
            "faces of {} seeds vs f32: max abs difference {} of 255, mean {:.4}",
            e.faces,
            e.max,
            e.mean
        );
    }
    Ok(())
}

pub(super) fn convert(a: ConvertArgs) -> Result<()> {
    let seeds = generate::parse_seeds(&a.check_seeds)?;
    let mut outs = Outputs::new();
    outs.model_input(&a.model);
    outs.check_model_folder("--out", &a.out, a.force)?;
    if let Some(path) = &a.json {
        outs.check("--json", path, a.force)?;
    }
    let r = export::convert(&a.model, &a.out, a.precision.into(), &seeds)?;
    note!(
        "{} -> {}: weights {} -> {} bytes ({} -> {}); faces of {} seeds: max abs difference {} \
         of 255, mean {:.4}",
        a.model.display(),
        a.out.display(),
        r.bytes_before,
        r.bytes_after,
        r.from,
        r.to,
        r.error.faces,
        r.error.max,
        r.error.mean
    );
    if let Some(path) = a.json {
        write_atomic(&path, serde_json::to_string_pretty(&r)?.as_bytes())?;
    }
    Ok(())
}
