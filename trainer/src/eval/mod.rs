//! `trainer eval`: how good are the faces a model makes, measured with kyara's own tagger.
//!
//! For every tag combination that occurs in the data (restricted to the tagger's vocabulary),
//! `per_combo` faces are drawn with fixed seeds (`seed + combo * per_combo + j`). Then:
//! - **label accuracy**: does the tagger see the asked tags? Per exclusive group, for free tags,
//!   and for all tags of a face at once;
//! - **FD, KID, precision, recall** between the generated faces and held-out real faces, in the
//!   tagger's feature space;
//! - the same figures for **real training vs real held-out** faces: the floor that gives them a
//!   scale (a perfect generator scores about that), plus the tagger's label accuracy on those
//!   held-out reals (the ceiling of label accuracy);
//! - **within-tag-set diversity** ([`Diversity`]): how different the faces drawn for one tag set
//!   are from each other, against the held-out real faces with the same tags (1.0 = as varied as
//!   the data). FD and recall mix this with everything else; a generator that draws one face per
//!   tag set shows it here first.
//!
//! Features are centred on the held-out reals' mean and scaled so that their mean per-dimension
//! variance is 1 ([`FeatureScale`]), the same map for every set.
//!
//! Distribution metrics compare like with like: for each combination the same number of faces,
//! `k_c = min(per_combo, held-out images of c, training images of c)`, enters each of the three
//! sets (generated, held-out, training), so all sets share one tag distribution and one size.
//! "Held out" means held out from the *tagger*; the split is the tagger card's.
//!
//! With a shape encoder ([`EvalContext::with_shape`], `models/shape64` by default), FD, KID,
//! precision/recall and within-tag-set diversity are also measured in its colour-blind
//! features ([`ShapeFigures`]), side by side with the tagger's: the tagger's features tell
//! colours apart and flatter near-copies, the encoder's see pose and drawing.
//!
//! The figures themselves are in [`metrics`]; [`train_hook`] runs this evaluation during
//! training.

pub mod metrics;
pub mod train_hook;

pub use train_hook::TrainEval;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use nalgebra::DMatrix;
use serde::Serialize;
use shared_model::TagVocab;
use shared_model::sample::{FaceRequest, to_rgba};
use shared_model::shape::LoadedShape;
use shared_model::tagger::{LoadedTagger, TaggerAccuracy, fnv1a64};

use crate::data::Dataset;
use crate::fsutil::{png_bytes, sheet, write_atomic};
use crate::tagger::{accuracy, read_images, split_keys};
use metrics::{frechet_distance, kid, mean_pairwise_distance, precision_recall};

/// k of the k-NN manifolds of precision and recall (the paper's choice).
pub const PR_K: usize = 3;
/// Faces per generator batch.
const GEN_BATCH: usize = 64;
/// Tag sets on the diversity sheet (the data's most common combinations).
pub const DIVERSITY_SETS: usize = 4;
/// Seeds (0, 1, ...) and real faces per tag set on the diversity sheet.
pub const DIVERSITY_SEEDS: usize = 16;

/// Distances between a set of faces and the held-out reals, in tagger feature space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distances {
    /// Faces per set.
    pub n: usize,
    pub fd: f64,
    pub kid: f64,
    pub precision: f64,
    pub recall: f64,
}

/// Compares `set` with `reference` (the held-out reals).
pub fn distances(set: &DMatrix<f64>, reference: &DMatrix<f64>) -> Result<Distances> {
    let (precision, recall) = precision_recall(reference, set, PR_K)?;
    Ok(Distances {
        n: set.nrows(),
        fd: frechet_distance(set, reference)?,
        kid: kid(set, reference)?,
        precision,
        recall,
    })
}

/// Within-tag-set diversity: the mean pairwise distance (tagger features, scaled as for the
/// other figures) between the faces of one tag combination, averaged over the combinations
/// where both sides have at least two faces, for the generated faces and for the held-out reals
/// of the same combinations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Diversity {
    /// Combinations that entered the average.
    pub combos: usize,
    pub generated: f64,
    pub heldout_reals: f64,
    /// `generated / heldout_reals`: 1.0 is as varied as the data, near 0 one face per tag set.
    pub ratio: f64,
}

impl Diversity {
    /// Averages `(generated, real)` spreads over combinations; `None` if there are none.
    fn of(pairs: &[(f64, f64)]) -> Option<Self> {
        if pairs.is_empty() {
            return None;
        }
        let n = pairs.len() as f64;
        let generated = pairs.iter().map(|p| p.0).sum::<f64>() / n;
        let heldout_reals = pairs.iter().map(|p| p.1).sum::<f64>() / n;
        Some(Self {
            combos: pairs.len(),
            generated,
            heldout_reals,
            ratio: if heldout_reals > 0.0 {
                generated / heldout_reals
            } else {
                f64::NAN
            },
        })
    }
}

/// Everything `trainer eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub per_combo: usize,
    pub combos: usize,
    pub generated: usize,
    pub seed: u64,
    pub pr_k: usize,
    /// Does the tagger see the asked tags on the generated faces?
    pub label_accuracy: TaggerAccuracy,
    /// The same on the held-out reals of the distribution sets (the ceiling).
    pub tagger_on_heldout_reals: TaggerAccuracy,
    pub generated_vs_heldout: Distances,
    /// Real training faces vs real held-out faces: the floor.
    pub real_train_vs_heldout: Distances,
    /// Within-tag-set diversity; `None` with `per_combo` 1 or when no combination has two
    /// held-out reals.
    pub diversity: Option<Diversity>,
    /// The same distances and diversity in the shape encoder's features; `None` without one.
    pub shape: Option<ShapeFigures>,
    pub seconds: f64,
}

/// FD, KID, precision/recall and within-tag-set diversity in the shape encoder's features (the
/// same sets and the same scaling rule as the tagger's figures).
#[derive(Debug, Clone, Serialize)]
pub struct ShapeFigures {
    /// The encoder's name and the SHA-256 of its weights.
    pub encoder: String,
    pub weights_sha256: String,
    pub generated_vs_heldout: Distances,
    pub real_train_vs_heldout: Distances,
    pub diversity: Option<Diversity>,
}

/// The shape encoder's side of an evaluation: its features of the held-out reals (scaled) and
/// the real-vs-real floor.
struct ShapeSpace {
    encoder: LoadedShape,
    heldout_feats: DMatrix<f64>,
    scale: FeatureScale,
    floor: Distances,
}

impl ShapeSpace {
    fn features(&self, images: &[&[u8]]) -> DMatrix<f64> {
        to_matrix(
            &self.encoder.features(images, GEN_BATCH),
            self.encoder.card.encoder.feature_dim,
        )
    }
}

/// One generated face with what it was asked for and how sure the tagger is that it shows it.
#[derive(Debug, Clone)]
pub struct Face {
    pub seed: u64,
    pub tags: Vec<String>,
    pub rgba: Vec<u8>,
    /// Product of the tagger's probabilities of the asked tags.
    pub confidence: f64,
}

/// One tag combination of the data and its real images (sorted by split-key hash).
#[derive(Debug, Clone)]
struct Combo {
    tags: Vec<String>,
    /// Faces of this combination in each distribution set.
    take: usize,
}

/// One row pair of the diversity sheet: a tag set and real faces (RGBA) that carry it.
#[derive(Debug, Clone)]
struct SheetSet {
    tags: Vec<String>,
    reals: Vec<Vec<u8>>,
}

/// What stays fixed between evaluations: the tagger, the combinations and the real sets.
pub struct EvalContext {
    tagger: LoadedTagger,
    combos: Vec<Combo>,
    sheet_sets: Vec<SheetSet>,
    heldout_feats: DMatrix<f64>,
    scale: FeatureScale,
    tagger_on_heldout_reals: TaggerAccuracy,
    floor: Distances,
    /// The images of the held-out and training distribution sets.
    held_sel: Vec<usize>,
    train_sel: Vec<usize>,
    shape: Option<ShapeSpace>,
    pub per_combo: usize,
    pub seed: u64,
}

fn to_matrix(feats: &[f32], dim: usize) -> DMatrix<f64> {
    DMatrix::from_row_iterator(feats.len() / dim, dim, feats.iter().map(|&v| f64::from(v)))
}

/// The fixed affine map applied to every feature set before the metrics: centred on the
/// reference set's mean and scaled by one factor so that the reference's mean per-dimension
/// variance is 1. FD, precision and recall only change scale (FD by a constant factor); KID's
/// cubic kernel needs values of order 1 to have a usable variance.
#[derive(Debug, Clone)]
pub struct FeatureScale {
    mean: nalgebra::RowDVector<f64>,
    scale: f64,
}

impl FeatureScale {
    pub fn fit(reference: &DMatrix<f64>) -> Self {
        let (mean, cov) = metrics::mean_cov(reference);
        let var = cov.trace() / reference.ncols() as f64;
        Self {
            mean: mean.transpose(),
            scale: if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 },
        }
    }

    pub fn apply(&self, mut m: DMatrix<f64>) -> DMatrix<f64> {
        for mut row in m.row_iter_mut() {
            row -= &self.mean;
            row *= self.scale;
        }
        m
    }
}

impl EvalContext {
    /// Prepares the evaluation on `data` (loaded from `dir` at the tagger's resolution).
    pub fn new(
        tagger: LoadedTagger,
        data: &Dataset,
        dir: &Path,
        per_combo: usize,
        seed: u64,
    ) -> Result<Self> {
        let tv = &tagger.card.vocab;
        let res = tagger.card.resolution;
        if data.resolution != res {
            bail!(
                "the data was loaded at {} px but the tagger reads {res} px",
                data.resolution
            );
        }
        if per_combo == 0 {
            bail!("--per-combo must be at least 1");
        }
        let keys = split_keys(data, dir);
        let mut by_combo: BTreeMap<Vec<String>, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
        for (i, tags) in data.tags.iter().enumerate() {
            let mut combo: Vec<usize> = tags.iter().filter_map(|t| tv.index_of(t)).collect();
            if combo.is_empty() {
                continue;
            }
            combo.sort_unstable();
            let combo: Vec<String> = combo.iter().map(|&j| tv.tags[j].clone()).collect();
            let e = by_combo.entry(combo).or_default();
            if tagger.card.split.is_heldout(&keys[i]) {
                e.0.push(i);
            } else {
                e.1.push(i);
            }
        }
        if by_combo.is_empty() {
            bail!("no image of the data carries a tag the tagger knows");
        }
        let order = |v: &mut Vec<usize>| {
            v.sort_by_key(|&i| (fnv1a64(keys[i].as_bytes()), keys[i].clone()));
        };
        let mut combos = Vec::new();
        let mut sheet_sets = Vec::new();
        let (mut held_sel, mut train_sel) = (Vec::new(), Vec::new());
        for (tags, (mut held, mut train)) in by_combo {
            order(&mut held);
            order(&mut train);
            let take = per_combo.min(held.len()).min(train.len());
            held_sel.extend_from_slice(&held[..take]);
            train_sel.extend_from_slice(&train[..take]);
            let mut all = [held, train].concat();
            order(&mut all);
            sheet_sets.push((all.len(), tags.clone(), all));
            combos.push(Combo { tags, take });
        }
        // The most common combinations (ties by name), each with its first real faces.
        sheet_sets.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let sheet_sets = sheet_sets
            .into_iter()
            .take(DIVERSITY_SETS)
            .map(|(_, tags, idx)| SheetSet {
                tags,
                reals: idx
                    .iter()
                    .take(DIVERSITY_SEEDS)
                    .map(|&i| {
                        data.image(i)
                            .chunks(3)
                            .flat_map(|p| [p[0], p[1], p[2], 255])
                            .collect()
                    })
                    .collect(),
            })
            .collect();
        if held_sel.len() <= PR_K {
            bail!(
                "only {} held-out real images fall into the distribution sets; FD, KID and \
                 precision/recall need at least {} (use a larger --per-combo, more data, or a \
                 tagger trained with a larger --holdout)",
                held_sel.len(),
                PR_K + 1
            );
        }
        let read = |idx: &[usize]| {
            let imgs: Vec<&[u8]> = idx.iter().map(|&i| data.image(i)).collect();
            read_images(&tagger.tagger, tv, res, &imgs, &tagger.device)
        };
        let f = tagger.card.tagger.feature_dim;
        let (held_probs, held_feats) = read(&held_sel);
        let (_, train_feats) = read(&train_sel);
        let truth: Vec<Vec<String>> = held_sel.iter().map(|&i| data.tags[i].clone()).collect();
        let heldout_raw = to_matrix(&held_feats, f);
        let scale = FeatureScale::fit(&heldout_raw);
        let heldout_feats = scale.apply(heldout_raw);
        let floor = distances(&scale.apply(to_matrix(&train_feats, f)), &heldout_feats)
            .context("real-vs-real floor")?;
        Ok(Self {
            tagger_on_heldout_reals: accuracy(tv, &held_probs, &truth),
            tagger,
            combos,
            sheet_sets,
            heldout_feats,
            scale,
            floor,
            held_sel,
            train_sel,
            shape: None,
            per_combo,
            seed,
        })
    }

    /// Also measures in `encoder`'s features. `data` must be the data this context was made
    /// from.
    pub fn with_shape(mut self, encoder: LoadedShape, data: &Dataset) -> Result<Self> {
        let res = self.tagger.card.resolution;
        if encoder.card.resolution != res || data.resolution != res {
            bail!(
                "the shape encoder reads {} px, the tagger {res} px",
                encoder.card.resolution
            );
        }
        if encoder.card.split.percent != self.tagger.card.split.percent {
            note!(
                "warning: the shape encoder holds out {} % of the data, the tagger {} %: some \
                 held-out reals were seen by one of them",
                encoder.card.split.percent,
                self.tagger.card.split.percent
            );
        }
        let read = |idx: &[usize]| {
            let imgs: Vec<&[u8]> = idx.iter().map(|&i| data.image(i)).collect();
            to_matrix(
                &encoder.features(&imgs, GEN_BATCH),
                encoder.card.encoder.feature_dim,
            )
        };
        let heldout_raw = read(&self.held_sel);
        let scale = FeatureScale::fit(&heldout_raw);
        let heldout_feats = scale.apply(heldout_raw);
        let floor = distances(&scale.apply(read(&self.train_sel)), &heldout_feats)
            .context("real-vs-real floor in shape features")?;
        self.shape = Some(ShapeSpace {
            encoder,
            heldout_feats,
            scale,
            floor,
        });
        Ok(self)
    }

    /// The shape encoder's name, when there is one.
    pub fn shape_encoder(&self) -> Option<&str> {
        self.shape.as_ref().map(|s| s.encoder.card.name.as_str())
    }

    /// Number of tag combinations.
    pub fn combos(&self) -> usize {
        self.combos.len()
    }

    /// Draws and scores the faces of a generator. `generate` maps `z` `[B, latent_dim]` and
    /// `c` `[B, T]` (model vocabulary `model_vocab`) to `[B, 3, R, R]` in `[-1, 1]`; `device` is
    /// where its inputs live.
    pub fn evaluate(
        &self,
        model_vocab: &TagVocab,
        latent_dim: usize,
        generate: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<4>,
        device: &Device,
    ) -> Result<(EvalReport, Vec<Face>)> {
        let started = Instant::now();
        let tv = &self.tagger.card.vocab;
        let res = self.tagger.card.resolution;
        let mut reqs = Vec::new();
        for (ci, combo) in self.combos.iter().enumerate() {
            let tags = combo.tags.join(", ");
            for j in 0..self.per_combo {
                let seed = self.seed + (ci * self.per_combo + j) as u64;
                let req =
                    FaceRequest::new(model_vocab, latent_dim, seed, &tags).with_context(|| {
                        format!("the model cannot draw '{tags}', a tag combination of the data")
                    })?;
                reqs.push(req);
            }
        }
        let mut faces = Vec::with_capacity(reqs.len());
        let mut probs = Vec::new();
        let mut feats = Vec::new();
        let mut shape_feats: Vec<DMatrix<f64>> = Vec::new();
        for chunk in reqs.chunks(GEN_BATCH) {
            let b = chunk.len();
            let z: Vec<f32> = chunk.iter().flat_map(|r| r.z.iter().copied()).collect();
            let c: Vec<f32> = chunk.iter().flat_map(|r| r.c.iter().copied()).collect();
            let z = Tensor::<2>::from_data(TensorData::new(z, [b, latent_dim]), device);
            let c = Tensor::<2>::from_data(TensorData::new(c, [b, model_vocab.len()]), device);
            let out = generate(z, c);
            let side = out.dims()[2];
            let rgba = to_rgba(out);
            let rgb: Vec<Vec<u8>> = rgba.iter().map(|p| to_rgb(p, side, res)).collect();
            let refs: Vec<&[u8]> = rgb.iter().map(|v| v.as_slice()).collect();
            let (p, f) = read_images(&self.tagger.tagger, tv, res, &refs, &self.tagger.device);
            probs.extend(p);
            feats.extend(f);
            if let Some(space) = &self.shape {
                shape_feats.push(space.features(&refs));
            }
            for (req, img) in chunk.iter().zip(rgba) {
                faces.push(Face {
                    seed: req.seed,
                    tags: req.tags.clone(),
                    rgba: img,
                    confidence: 0.0,
                });
            }
        }
        let t = tv.len();
        for (face, p) in faces.iter_mut().zip(probs.chunks(t)) {
            face.confidence = face
                .tags
                .iter()
                .filter_map(|tag| tv.index_of(tag))
                .map(|i| f64::from(p[i]))
                .product();
        }
        let truth: Vec<Vec<String>> = faces.iter().map(|f| f.tags.clone()).collect();
        let label_accuracy = accuracy(tv, &probs, &truth);
        let f = self.tagger.card.tagger.feature_dim;
        let mut dist_feats = Vec::new();
        for (ci, combo) in self.combos.iter().enumerate() {
            let start = ci * self.per_combo;
            dist_feats.extend_from_slice(&feats[start * f..(start + combo.take) * f]);
        }
        let generated_vs_heldout = distances(
            &self.scale.apply(to_matrix(&dist_feats, f)),
            &self.heldout_feats,
        )?;
        let generated_feats = self.scale.apply(to_matrix(&feats, f));
        let takes: Vec<usize> = self.combos.iter().map(|c| c.take).collect();
        let diversity = within_set_diversity(
            &generated_feats,
            self.per_combo,
            &self.heldout_feats,
            &takes,
        );
        let shape = match &self.shape {
            Some(space) => {
                let rows: Vec<_> = shape_feats.iter().flat_map(|m| m.row_iter()).collect();
                let all = space.scale.apply(DMatrix::from_rows(&rows));
                let dist_rows: Vec<_> = self
                    .combos
                    .iter()
                    .enumerate()
                    .flat_map(|(ci, combo)| {
                        let start = ci * self.per_combo;
                        (start..start + combo.take).map(|i| all.row(i))
                    })
                    .collect();
                Some(ShapeFigures {
                    encoder: space.encoder.card.name.clone(),
                    weights_sha256: space.encoder.card.weights_sha256.clone(),
                    generated_vs_heldout: distances(
                        &DMatrix::from_rows(&dist_rows),
                        &space.heldout_feats,
                    )
                    .context("shape features")?,
                    real_train_vs_heldout: space.floor,
                    diversity: within_set_diversity(
                        &all,
                        self.per_combo,
                        &space.heldout_feats,
                        &takes,
                    ),
                })
            }
            None => None,
        };
        let report = EvalReport {
            per_combo: self.per_combo,
            combos: self.combos.len(),
            generated: faces.len(),
            seed: self.seed,
            pr_k: PR_K,
            label_accuracy,
            tagger_on_heldout_reals: self.tagger_on_heldout_reals.clone(),
            generated_vs_heldout,
            real_train_vs_heldout: self.floor,
            diversity,
            shape,
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok((report, faces))
    }
}

impl EvalContext {
    /// The diversity sheet: for each of the data's [`DIVERSITY_SETS`] most common tag sets, a
    /// row of the faces of seeds `0..DIVERSITY_SEEDS` (as `trainer generate --tags T --seeds
    /// 0-15` draws them) above a row of real faces with those tags. Returns the tiles (RGBA at
    /// the tagger's resolution, row-major, [`DIVERSITY_SEEDS`] per row; a set with fewer reals
    /// leaves black tiles) and a CSV naming each row.
    pub fn diversity_sheet(
        &self,
        model_vocab: &TagVocab,
        latent_dim: usize,
        generate: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<4>,
        device: &Device,
    ) -> Result<(Vec<Vec<u8>>, String)> {
        let res = self.tagger.card.resolution;
        let blank = vec![0u8; res * res * 4];
        let mut tiles = Vec::new();
        let mut csv = String::from("row,kind,tags,seeds\n");
        for (si, set) in self.sheet_sets.iter().enumerate() {
            let tags = set.tags.join(", ");
            let reqs = (0..DIVERSITY_SEEDS as u64)
                .map(|seed| FaceRequest::new(model_vocab, latent_dim, seed, &tags))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("the model cannot draw '{tags}'"))?;
            let z: Vec<f32> = reqs.iter().flat_map(|r| r.z.iter().copied()).collect();
            let c: Vec<f32> = reqs.iter().flat_map(|r| r.c.iter().copied()).collect();
            let b = reqs.len();
            let out = generate(
                Tensor::from_data(TensorData::new(z, [b, latent_dim]), device),
                Tensor::from_data(TensorData::new(c, [b, model_vocab.len()]), device),
            );
            let side = out.dims()[2];
            for rgba in to_rgba(out) {
                let rgb = to_rgb(&rgba, side, res);
                tiles.push(
                    rgb.chunks(3)
                        .flat_map(|p| [p[0], p[1], p[2], 255])
                        .collect(),
                );
            }
            for k in 0..DIVERSITY_SEEDS {
                tiles.push(set.reals.get(k).unwrap_or(&blank).clone());
            }
            csv.push_str(&format!(
                "{},generated,\"{tags}\",0-{}\n",
                2 * si,
                DIVERSITY_SEEDS - 1
            ));
            csv.push_str(&format!("{},real,\"{tags}\",\n", 2 * si + 1));
        }
        Ok((tiles, csv))
    }

    /// Writes the [`diversity_sheet`](Self::diversity_sheet) as `diversity.png` and
    /// `diversity.csv` into `dir`, and its generated rows alone as `diversity-generated.png`
    /// (the sheet to publish: `diversity.png` holds faces of the data set).
    pub fn write_diversity_sheet(
        &self,
        dir: &Path,
        model_vocab: &TagVocab,
        latent_dim: usize,
        generate: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<4>,
        device: &Device,
    ) -> Result<()> {
        let (tiles, csv) = self.diversity_sheet(model_vocab, latent_dim, generate, device)?;
        let side = self.tagger.card.resolution;
        write_atomic(
            &dir.join("diversity.png"),
            &png_bytes(&sheet(&tiles, side, DIVERSITY_SEEDS))?,
        )?;
        let generated: Vec<Vec<u8>> = tiles
            .chunks(DIVERSITY_SEEDS)
            .step_by(2)
            .flatten()
            .cloned()
            .collect();
        write_atomic(
            &dir.join("diversity-generated.png"),
            &png_bytes(&sheet(&generated, side, DIVERSITY_SEEDS))?,
        )?;
        write_atomic(&dir.join("diversity.csv"), csv.as_bytes())
    }
}

/// [`Diversity`] of `generated` (`per_combo` rows per combination, in order) against `reals`
/// (`takes[c]` rows for combination `c`, in the same order).
fn within_set_diversity(
    generated: &DMatrix<f64>,
    per_combo: usize,
    reals: &DMatrix<f64>,
    takes: &[usize],
) -> Option<Diversity> {
    let mut pairs = Vec::new();
    let mut real_start = 0;
    for (ci, &take) in takes.iter().enumerate() {
        let g = generated.rows(ci * per_combo, per_combo).into_owned();
        let r = reals.rows(real_start, take).into_owned();
        real_start += take;
        if let (Some(g), Some(r)) = (mean_pairwise_distance(&g), mean_pairwise_distance(&r)) {
            pairs.push((g, r));
        }
    }
    Diversity::of(&pairs)
}

/// RGBA `side`-sided pixels -> RGB at `res` pixels (resized when the sides differ).
fn to_rgb(rgba: &[u8], side: usize, res: usize) -> Vec<u8> {
    let rgb: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    if side == res {
        return rgb;
    }
    let img = image::RgbImage::from_raw(side as u32, side as u32, rgb).expect("sized");
    image::imageops::resize(
        &img,
        res as u32,
        res as u32,
        image::imageops::FilterType::Triangle,
    )
    .into_raw()
}

/// The report as a table for people.
pub fn report_table(r: &EvalReport) -> String {
    let mut s = String::new();
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    s.push_str(&format!(
        "label accuracy ({} faces: {} tag combinations x {})\n",
        r.generated, r.combos, r.per_combo
    ));
    s.push_str(&format!(
        "  {:<14} {:>10} {:>16}\n",
        "", "generated", "held-out reals"
    ));
    for (g, a) in &r.label_accuracy.groups {
        let real = r
            .tagger_on_heldout_reals
            .groups
            .get(g)
            .copied()
            .unwrap_or(0.0);
        s.push_str(&format!("  {g:<14} {:>10} {:>16}\n", pct(*a), pct(real)));
    }
    if let (Some(a), Some(b)) = (r.label_accuracy.free, r.tagger_on_heldout_reals.free) {
        s.push_str(&format!(
            "  {:<14} {:>10} {:>16}\n",
            "free tags",
            pct(a),
            pct(b)
        ));
    }
    s.push_str(&format!(
        "  {:<14} {:>10} {:>16}\n",
        "all at once",
        pct(r.label_accuracy.all),
        pct(r.tagger_on_heldout_reals.all)
    ));
    s.push_str(&format!(
        "distribution (tagger features; {} faces per set, k = {})\n",
        r.generated_vs_heldout.n, r.pr_k
    ));
    s.push_str(&format!(
        "  {:<28} {:>9} {:>9} {:>9} {:>9}\n",
        "", "FD", "KID", "precision", "recall"
    ));
    for (name, d) in [
        ("generated vs held-out", &r.generated_vs_heldout),
        ("real train vs held-out", &r.real_train_vs_heldout),
    ] {
        s.push_str(&format!(
            "  {name:<28} {:>9.3} {:>9.4} {:>9.3} {:>9.3}\n",
            d.fd, d.kid, d.precision, d.recall
        ));
    }
    match &r.diversity {
        Some(d) => s.push_str(&format!(
            "within-tag-set diversity (mean pairwise feature distance, {} combinations)\n  \
             generated {:.3}, held-out reals {:.3}: ratio {:.3} (1.0 = as varied as the data)\n",
            d.combos, d.generated, d.heldout_reals, d.ratio
        )),
        None => s.push_str(
            "within-tag-set diversity: not measured (needs --per-combo >= 2 and two held-out \
             reals of a combination)\n",
        ),
    }
    match &r.shape {
        Some(sh) => {
            s.push_str(&format!(
                "shape features (encoder '{}', colour-blind; same sets, k = {})\n",
                sh.encoder, r.pr_k
            ));
            s.push_str(&format!(
                "  {:<28} {:>9} {:>9} {:>9} {:>9}\n",
                "", "FD", "KID", "precision", "recall"
            ));
            for (name, d) in [
                ("generated vs held-out", &sh.generated_vs_heldout),
                ("real train vs held-out", &sh.real_train_vs_heldout),
            ] {
                s.push_str(&format!(
                    "  {name:<28} {:>9.3} {:>9.4} {:>9.3} {:>9.3}\n",
                    d.fd, d.kid, d.precision, d.recall
                ));
            }
            match &sh.diversity {
                Some(d) => s.push_str(&format!(
                    "  within-tag-set diversity: generated {:.3}, held-out reals {:.3}: ratio \
                     {:.3}\n",
                    d.generated, d.heldout_reals, d.ratio
                )),
                None => s.push_str("  within-tag-set diversity: not measured\n"),
            }
        }
        None => s.push_str(
            "shape features: not measured (no shape encoder; train one with `trainer shape \
             train` or pass --shape)\n",
        ),
    }
    s
}

/// Writes `good.png` (highest tagger confidence in the asked tags first) and `bad.png` (lowest
/// first), `count` faces each, plus `sheets.csv` (sheet, rank, seed, tags, confidence) so any face
/// can be drawn again with `trainer generate`.
pub fn write_sheets(faces: &[Face], dir: &Path, count: usize) -> Result<()> {
    if faces.is_empty() {
        bail!("no faces to put on sheets");
    }
    let side = ((faces[0].rgba.len() / 4) as f64).sqrt().round() as usize;
    let mut order: Vec<usize> = (0..faces.len()).collect();
    order.sort_by(|&a, &b| {
        faces[b]
            .confidence
            .total_cmp(&faces[a].confidence)
            .then(faces[a].seed.cmp(&faces[b].seed))
    });
    let n = count.min(faces.len());
    let good: Vec<usize> = order[..n].to_vec();
    let bad: Vec<usize> = order.iter().rev().take(n).copied().collect();
    let mut csv = String::from("sheet,rank,seed,tags,confidence\n");
    for (name, idx) in [("good", &good), ("bad", &bad)] {
        let tiles: Vec<Vec<u8>> = idx.iter().map(|&i| faces[i].rgba.clone()).collect();
        write_atomic(
            &dir.join(format!("{name}.png")),
            &png_bytes(&sheet(&tiles, side, 8))?,
        )?;
        for (rank, &i) in idx.iter().enumerate() {
            csv.push_str(&format!(
                "{name},{rank},{},\"{}\",{:.6}\n",
                faces[i].seed,
                faces[i].tags.join(", "),
                faces[i].confidence
            ));
        }
    }
    write_atomic(&dir.join("sheets.csv"), csv.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_conversion_drops_alpha_and_resizes() {
        let rgba = [10u8, 20, 30, 255].repeat(4);
        assert_eq!(to_rgb(&rgba, 2, 2), [10u8, 20, 30].repeat(4));
        assert_eq!(to_rgb(&rgba, 2, 4), [10u8, 20, 30].repeat(16));
    }

    #[test]
    fn distances_of_a_set_with_itself_are_perfect() {
        let z = shared_model::SplitMix64::new(3).normals(40 * 3);
        let a = DMatrix::from_row_iterator(40, 3, z.into_iter().map(f64::from));
        let d = distances(&a, &a).unwrap();
        assert!(d.fd < 1e-9);
        assert_eq!((d.precision, d.recall, d.n), (1.0, 1.0, 40));
    }

    #[test]
    fn feature_scale_centres_and_normalises_the_reference() {
        let z = shared_model::SplitMix64::new(5).normals(200 * 4);
        let a = DMatrix::from_row_iterator(200, 4, z.into_iter().map(|v| 3.0 + 7.0 * f64::from(v)));
        let s = FeatureScale::fit(&a);
        let b = s.apply(a.clone());
        let (mean, cov) = crate::eval::metrics::mean_cov(&b);
        assert!(mean.norm() < 1e-9);
        assert!((cov.trace() / 4.0 - 1.0).abs() < 1e-9);
        // FD scales by the square of the factor.
        let c = a.map(|v| v + 1.0);
        let fd_raw = frechet_distance(&a, &c).unwrap();
        let fd = frechet_distance(&b, &s.apply(c)).unwrap();
        assert!(
            (fd - fd_raw * s.scale * s.scale).abs() < 1e-9,
            "{fd} vs {fd_raw}"
        );
    }

    #[test]
    fn sheets_order_by_confidence() {
        let dir = tempfile::tempdir().unwrap();
        let faces: Vec<Face> = (0..5)
            .map(|i| Face {
                seed: i,
                tags: vec!["a hair".into()],
                rgba: [i as u8 * 50, 0, 0, 255].repeat(4),
                confidence: i as f64 / 10.0,
            })
            .collect();
        write_sheets(&faces, dir.path(), 2).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("sheets.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[1].starts_with("good,0,4,"), "{csv}");
        assert!(lines[3].starts_with("bad,0,0,"), "{csv}");
        let good = image::open(dir.path().join("good.png")).unwrap().to_rgba8();
        assert_eq!(good.get_pixel(2, 2).0, [200, 0, 0, 255]);
    }

    #[test]
    fn diversity_tells_one_face_per_set_from_the_data() {
        // Two combinations, 3 reals each (the second combination has only one: skipped).
        let z = shared_model::SplitMix64::new(9).normals(12 * 5);
        let reals = DMatrix::from_row_iterator(4, 5, z[..20].iter().map(|&v| f64::from(v)));
        let takes = [3, 1];
        // A generator that draws the reals themselves (per combination) is as varied as they are.
        let mut copy = DMatrix::zeros(6, 5);
        copy.rows_mut(0, 3).copy_from(&reals.rows(0, 3));
        let d = within_set_diversity(&copy, 3, &reals, &takes).unwrap();
        assert_eq!(d.combos, 1);
        assert!((d.ratio - 1.0).abs() < 1e-12, "{d:?}");
        // One face per tag set, whatever the seed: no spread at all.
        let mut collapsed = DMatrix::zeros(6, 5);
        for i in 0..3 {
            collapsed.row_mut(i).copy_from(&reals.row(0));
        }
        let d = within_set_diversity(&collapsed, 3, &reals, &takes).unwrap();
        assert_eq!(d.ratio, 0.0);
        // Faces twice as spread out as the data score 2.
        let wide = copy.map(|v| 2.0 * v);
        let d = within_set_diversity(&wide, 3, &reals, &takes).unwrap();
        assert!((d.ratio - 2.0).abs() < 1e-12, "{d:?}");
        // One face per combination: nothing to measure.
        assert!(within_set_diversity(&copy.rows(0, 2).into_owned(), 1, &reals, &takes).is_none());
    }

    /// A 16-px dataset of `n` noisy faces in two tag sets, with a random-weight tagger and
    /// shape encoder: enough to run the whole evaluation.
    fn tiny_setup(n: usize) -> (Dataset, LoadedTagger, LoadedShape) {
        use shared_model::shape::{ShapeCard, ShapeEncoderConfig, ShapeHeldout, ShapeTraining};
        use shared_model::tagger::{HoldoutSplit, TaggerCard, TaggerConfig, TaggerTraining};
        let device = Device::flex();
        let sets = [
            vec!["a hair".to_string(), "x eyes".to_string()],
            vec!["b hair".to_string(), "y eyes".to_string()],
        ];
        let tags: Vec<Vec<String>> = (0..n).map(|i| sets[i % 2].clone()).collect();
        let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
        let mut rng = shared_model::SplitMix64::new(11);
        let pixels: Vec<u8> = (0..n * 16 * 16 * 3).map(|_| rng.below(256) as u8).collect();
        let data = Dataset {
            name: "t".into(),
            resolution: 16,
            pixels,
            tags,
            files: (0..n)
                .map(|i| std::path::PathBuf::from(format!("d/{i}.png")))
                .collect(),
            vocab: vocab.clone(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        };
        let tcfg = TaggerConfig::new(vocab.len())
            .with_resolution(16)
            .with_channels(4)
            .with_max_channels(8)
            .with_final_size(2)
            .with_feature_dim(6);
        let tw = shared_model::card::weights_bytes(tcfg.init(&device)).unwrap();
        let tcard = TaggerCard::new(
            "t",
            vocab,
            tcfg,
            HoldoutSplit::new(10),
            TaggerTraining::default(),
            TaggerAccuracy::default(),
        );
        let tagger = LoadedTagger::from_bytes(tcard, tw, &device).unwrap();
        let scfg = ShapeEncoderConfig::new()
            .with_resolution(16)
            .with_channels(4)
            .with_max_channels(8)
            .with_final_size(2)
            .with_feature_dim(5)
            .with_projection_dim(3);
        let sw = shared_model::card::weights_bytes(scfg.init(&device)).unwrap();
        let scard = ShapeCard::new(
            "s",
            scfg,
            HoldoutSplit::new(10),
            ShapeTraining::default(),
            ShapeHeldout::default(),
            &sw,
        );
        let shape = LoadedShape::from_bytes(scard, sw, &device).unwrap();
        (data, tagger, shape)
    }

    #[test]
    fn the_report_carries_the_shape_figures_beside_the_taggers() {
        let (data, tagger, shape) = tiny_setup(200);
        let ctx = EvalContext::new(tagger, &data, Path::new("d"), 4, 0)
            .unwrap()
            .with_shape(shape, &data)
            .unwrap();
        assert_eq!(ctx.shape_encoder(), Some("s"));
        let device = Device::flex();
        let model_vocab = data.vocab.clone();
        // A "generator" that ignores its inputs and draws noise from the latent.
        let generate = |z: Tensor<2>, _c: Tensor<2>| {
            let b = z.dims()[0];
            let z = z.slice([0..b, 0..1]).reshape([b, 1, 1, 1]);
            let noise = shared_model::rng::backend_stream(|| {
                Tensor::<4>::random(
                    [b, 3, 16, 16],
                    burn::tensor::Distribution::Uniform(-1.0, 1.0),
                    &Device::flex(),
                )
            });
            (noise + z.repeat_dim(1, 3).repeat_dim(2, 16).repeat_dim(3, 16)).clamp(-1.0, 1.0)
        };
        let (report, faces) = ctx.evaluate(&model_vocab, 8, &generate, &device).unwrap();
        assert_eq!(faces.len(), 8);
        let json = serde_json::to_value(&report).unwrap();
        let sh = &json["shape"];
        assert_eq!(sh["encoder"], "s");
        assert_eq!(sh["weights_sha256"].as_str().unwrap().len(), 64);
        for key in ["generated_vs_heldout", "real_train_vs_heldout"] {
            for f in ["fd", "kid", "precision", "recall"] {
                assert!(sh[key][f].as_f64().unwrap().is_finite(), "{key}.{f}: {sh}");
            }
            assert_eq!(sh[key]["n"], json["generated_vs_heldout"]["n"]);
        }
        assert!(sh["diversity"]["ratio"].as_f64().unwrap() >= 0.0, "{sh}");
        // The tagger's figures are still there, unchanged in form.
        assert!(json["generated_vs_heldout"]["fd"].is_number());
        let table = report_table(&report);
        assert!(table.contains("shape features (encoder 's'"), "{table}");
        assert!(table.contains("distribution (tagger features"), "{table}");

        // Without an encoder: no shape figures, and the table says so.
        let (data, tagger, _) = tiny_setup(200);
        let ctx = EvalContext::new(tagger, &data, Path::new("d"), 4, 0).unwrap();
        let (report, _) = ctx.evaluate(&model_vocab, 8, &generate, &device).unwrap();
        assert!(serde_json::to_value(&report).unwrap()["shape"].is_null());
        assert!(report_table(&report).contains("shape features: not measured"));
    }
}
