//! `trainer shape train` and `trainer shape check`: the colour-blind shape encoder of
//! `shared_model::shape`, trained self-supervised (SimCLR's NT-Xent loss on two augmented views
//! of each face, [`augment`]), and the held-out checks that show what its features see.
//!
//! The split is the tagger's rule ([`HoldoutSplit`], `fnv1a64(key) % 100 < 10` by default), so
//! the held-out faces `trainer eval` compares against were seen by neither network.

pub mod augment;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::{AdamConfig, GradientsParams, decay::WeightDecayConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use nalgebra::DMatrix;
use serde::Serialize;
use shared_model::SplitMix64;
use shared_model::card::weights_bytes;
use shared_model::shape::{
    LoadedShape, SHAPE_CARD, ShapeCard, ShapeEncoder, ShapeEncoderConfig, ShapeHeldout,
    ShapeTraining,
};
use shared_model::tagger::HoldoutSplit;

use crate::data::Dataset;
use crate::eval::FeatureScale;
use crate::fsutil::write_atomic;
use crate::tagger::{heldout_mask, lr_at};
use augment::{Augment, recoloured_copy, view};

/// Images per inference batch.
pub const INFER_BATCH: usize = 128;
/// Largest shift (pixels) of the held-out copies.
pub const COPY_SHIFT: usize = 4;
/// The default place of the shipped encoder, beside `models/tagger64`.
pub const DEFAULT_SHAPE: &str = "models/shape64";

/// Loads a shape encoder from its card file (or a folder holding `shape.json`); the weights'
/// SHA-256 is checked against the card.
pub fn load_shape(path: &Path, device: &Device) -> Result<LoadedShape> {
    let card_path = crate::fsutil::card_in(path, SHAPE_CARD)?;
    let text = std::fs::read_to_string(&card_path)
        .with_context(|| format!("cannot read shape encoder card {}", card_path.display()))?;
    let card = ShapeCard::from_json(&text).with_context(|| format!("{}", card_path.display()))?;
    let weights_path = card_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&card.weights);
    let weights = std::fs::read(&weights_path).with_context(|| {
        format!(
            "cannot read shape encoder weights {}",
            weights_path.display()
        )
    })?;
    LoadedShape::from_bytes(card, weights, device)
        .with_context(|| format!("{}", weights_path.display()))
}

/// Features of HWC RGB images (`res`-sided) from an encoder in inference mode: `n * F` values.
pub fn encoder_features(
    encoder: &ShapeEncoder,
    res: usize,
    images: &[&[u8]],
    device: &Device,
) -> Vec<f32> {
    shared_model::shape::encoder_features(encoder, res, images, INFER_BATCH, device)
}

/// SimCLR's NT-Xent loss. `z`: `[2N, P]` projections, rows `i` and `i + N` two views of one
/// face -> scalar `[1]`: the mean over all `2N` rows of the cross-entropy of picking the row's
/// partner among the other `2N - 1` rows by cosine similarity / `temperature`.
pub fn nt_xent(z: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [n2, p] = z.dims();
    let n = n2 / 2;
    let device = z.device();
    let norm = z
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .add_scalar(1e-12)
        .sqrt()
        .repeat_dim(1, p); // [2N, P]
    let zn = z / norm;
    let sim = zn.clone().matmul(zn.transpose()).div_scalar(temperature); // [2N, 2N]
    // A row never picks itself.
    let logits = sim - Tensor::<2>::eye(n2, &device).mul_scalar(1e4);
    let mut pos = vec![0.0f32; n2 * n2];
    for i in 0..n2 {
        pos[i * n2 + (i + n) % n2] = 1.0;
    }
    let pos = Tensor::<2>::from_data(TensorData::new(pos, [n2, n2]), &device);
    (log_softmax(logits, 1) * pos)
        .sum()
        .neg()
        .div_scalar(n2 as f64)
}

/// Settings of `trainer shape train`.
#[derive(Debug, Clone)]
pub struct ShapeTrainOptions {
    pub steps: u64,
    /// Faces per step (each as two views).
    pub batch: usize,
    pub seed: u64,
    pub lr: f64,
    pub temperature: f64,
    /// Percentage of images held out (the tagger's rule).
    pub holdout: u32,
    pub augment: Augment,
    pub config: ShapeEncoderConfig,
    pub name: String,
    /// Print a progress line every this many steps.
    pub log_every: u64,
}

/// A batch of `2B` views: rows `i` and `i + B` are two views of face `train[pick_i]`.
fn view_batch(
    data: &Dataset,
    train: &[usize],
    opts: &ShapeTrainOptions,
    rng: &mut SplitMix64,
    device: &Device,
) -> Tensor<4> {
    let r = data.resolution;
    let b = opts.batch;
    let picks: Vec<usize> = (0..b)
        .map(|_| train[rng.below(train.len() as u64) as usize])
        .collect();
    let mut pix = Vec::with_capacity(2 * b * r * r);
    for _ in 0..2 {
        for &i in &picks {
            pix.extend(view(data.image(i), r, &opts.augment, rng));
        }
    }
    Tensor::from_data(TensorData::new(pix, [2 * b, 1, r, r]), device)
}

/// What [`fit`] returns.
pub struct Fitted {
    /// The trained encoder, in inference mode.
    pub encoder: ShapeEncoder,
    pub seconds: f64,
    /// Mean loss of the last logged steps.
    pub final_loss: f64,
}

/// Trains an encoder on the images `train` of `data`.
pub fn fit(data: &Dataset, train: &[usize], opts: &ShapeTrainOptions) -> Result<Fitted> {
    if train.is_empty() {
        bail!("no training images");
    }
    if opts.batch < 2 {
        bail!("a contrastive batch needs at least 2 faces (--batch)");
    }
    if !(opts.temperature > 0.0 && opts.temperature.is_finite()) {
        bail!("the temperature must be positive");
    }
    let device = Device::flex().autodiff();
    let mut model =
        shared_model::rng::seeded(&device, opts.seed, || opts.config.try_init(&device))?;
    let mut optim = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(1e-5)))
        .init();
    let mut rng = SplitMix64::new(opts.seed ^ 0x7368_6170_6500);
    let started = Instant::now();
    let mut tick = Instant::now();
    let (mut loss_acc, mut loss_n, mut final_loss) = (0.0f64, 0u32, f64::NAN);
    for step in 0..opts.steps {
        let x = view_batch(data, train, opts, &mut rng, &device);
        let loss = nt_xent(model.forward(x), opts.temperature);
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            bail!("shape encoder training diverged at step {step} (loss {value})");
        }
        loss_acc += f64::from(value);
        loss_n += 1;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr_at(step, opts.steps, opts.lr), model, grads);
        let done = step + 1;
        if done.is_multiple_of(opts.log_every) || done == opts.steps {
            let ips = f64::from(loss_n) * opts.batch as f64 / tick.elapsed().as_secs_f64();
            final_loss = loss_acc / f64::from(loss_n);
            note!(
                "step {done}/{}  loss {final_loss:.4}  {ips:.0} faces/s  {:.0} s",
                opts.steps,
                started.elapsed().as_secs_f64()
            );
            loss_acc = 0.0;
            loss_n = 0;
            tick = Instant::now();
        }
    }
    Ok(Fitted {
        encoder: model.valid(),
        seconds: started.elapsed().as_secs_f64(),
        final_loss,
    })
}

/// Trains a shape encoder on `data` (loaded from `dir` at the encoder's resolution), writes
/// `out/shape.bpk` and `out/shape.json` atomically, and returns the card.
pub fn train_shape(
    data: &Dataset,
    dir: &Path,
    out: &Path,
    opts: &ShapeTrainOptions,
) -> Result<ShapeCard> {
    opts.config.validate()?;
    if data.resolution != opts.config.resolution {
        bail!(
            "the data was loaded at {} px but the encoder reads {} px",
            data.resolution,
            opts.config.resolution
        );
    }
    let split = HoldoutSplit::new(opts.holdout);
    let held = heldout_mask(data, dir, &split);
    let (heldout, train): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|&i| held[i]);
    if train.len() < 2 {
        bail!(
            "{} training images left after holding out {} %: too few",
            train.len(),
            opts.holdout
        );
    }
    note!(
        "shape encoder: {} training images, {} held out ({} %)",
        train.len(),
        heldout.len(),
        opts.holdout
    );
    let fitted = fit(data, &train, opts)?;
    let infer = Device::flex();
    let res = data.resolution;
    let heldout_check = if heldout.len() >= 2 {
        let imgs: Vec<&[u8]> = heldout.iter().map(|&i| data.image(i)).collect();
        let copies = copies_of(&imgs, res, opts.seed);
        let copy_refs: Vec<&[u8]> = copies.iter().map(Vec::as_slice).collect();
        let f = opts.config.feature_dim;
        let a = to_matrix(&encoder_features(&fitted.encoder, res, &imgs, &infer), f);
        let b = to_matrix(
            &encoder_features(&fitted.encoder, res, &copy_refs, &infer),
            f,
        );
        let c = copy_check(&a, &b, None);
        note!(
            "held-out copies found as nearest neighbour: {:.1} % (top 5: {:.1} %)",
            100.0 * c.top1,
            100.0 * c.top5
        );
        ShapeHeldout {
            images: heldout.len(),
            copy_top1: c.top1,
            copy_top5: c.top5,
        }
    } else {
        ShapeHeldout::default()
    };
    let weights = weights_bytes(fitted.encoder)?;
    let card = ShapeCard::new(
        &opts.name,
        opts.config.clone(),
        split,
        ShapeTraining {
            data: data.name.clone(),
            steps: opts.steps,
            batch_size: opts.batch,
            seed: opts.seed,
            train_images: train.len(),
            seconds: fitted.seconds,
            learning_rate: opts.lr,
            temperature: opts.temperature,
            final_loss: fitted.final_loss,
            augmentation: opts.augment.describe(),
        },
        heldout_check,
        &weights,
    );
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join(&card.weights), &weights)?;
    write_atomic(&out.join(SHAPE_CARD), card.to_json().as_bytes())?;
    Ok(card)
}

/// `n * d` row-major values -> an `n x d` matrix.
pub fn to_matrix(feats: &[f32], dim: usize) -> DMatrix<f64> {
    DMatrix::from_row_iterator(feats.len() / dim, dim, feats.iter().map(|&v| f64::from(v)))
}

/// One [`recoloured_copy`] per image, from a fixed seed.
pub fn copies_of(images: &[&[u8]], res: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SplitMix64::new(seed ^ 0x636f_7079);
    images
        .iter()
        .map(|img| recoloured_copy(img, res, COPY_SHIFT, &mut rng))
        .collect()
}

/// How well one feature space finds altered copies, and how far apart it puts different faces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CopyCheck {
    pub images: usize,
    /// Fraction of copies whose nearest original is their own face.
    pub top1: f64,
    /// ... among the 5 nearest.
    pub top5: f64,
    /// Mean distance between a copy and its face.
    pub copy_distance: f64,
    /// Mean distance between different faces with the same tags (mean pairwise distance within
    /// each tag set with two faces or more, averaged over those sets); `None` without tags.
    pub same_tags_distance: Option<f64>,
    /// Tag sets that entered `same_tags_distance`.
    pub tag_sets: usize,
    /// `same_tags_distance / copy_distance`: how many times farther a different character with
    /// the same tags is than a recoloured copy of the face.
    pub separation: Option<f64>,
}

/// Finds each row of `copies` among the rows of `originals` (row `i` is a copy of row `i`).
/// Both are scaled with the map fitted on `originals` (centred, unit mean variance), then
/// compared by Euclidean distance. `tags[i]` (sorted) groups the originals for
/// `same_tags_distance`.
pub fn copy_check(
    originals: &DMatrix<f64>,
    copies: &DMatrix<f64>,
    tags: Option<&[Vec<String>]>,
) -> CopyCheck {
    let scale = FeatureScale::fit(originals);
    let a = scale.apply(originals.clone());
    let b = scale.apply(copies.clone());
    let n = a.nrows();
    let na: Vec<f64> = a.row_iter().map(|r| r.norm_squared()).collect();
    let cross = &b * a.transpose(); // [n, n]
    let (mut top1, mut top5, mut copy_sum) = (0usize, 0usize, 0.0f64);
    for i in 0..n {
        let nb = b.row(i).norm_squared();
        let d = |j: usize| (nb + na[j] - 2.0 * cross[(i, j)]).max(0.0);
        let own = d(i);
        copy_sum += own.sqrt();
        let closer = (0..n).filter(|&j| j != i && d(j) < own).count();
        top1 += usize::from(closer == 0);
        top5 += usize::from(closer < 5);
    }
    let mut same_tags = None;
    let mut tag_sets = 0;
    if let Some(tags) = tags {
        let mut groups: BTreeMap<&[String], Vec<usize>> = BTreeMap::new();
        for (i, t) in tags.iter().enumerate().take(n) {
            groups.entry(t.as_slice()).or_default().push(i);
        }
        let spreads: Vec<f64> = groups
            .values()
            .filter(|g| g.len() >= 2)
            .filter_map(|g| {
                let rows: Vec<_> = g.iter().map(|&i| a.row(i)).collect();
                crate::eval::metrics::mean_pairwise_distance(&DMatrix::from_rows(&rows))
            })
            .collect();
        tag_sets = spreads.len();
        if !spreads.is_empty() {
            same_tags = Some(spreads.iter().sum::<f64>() / spreads.len() as f64);
        }
    }
    let frac = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let copy_distance = if n == 0 { 0.0 } else { copy_sum / n as f64 };
    CopyCheck {
        images: n,
        top1: frac(top1),
        top5: frac(top5),
        copy_distance,
        same_tags_distance: same_tags,
        tag_sets,
        separation: same_tags.map(|s| s / copy_distance.max(1e-12)),
    }
}

/// The `k` nearest other rows of `feats` (scaled with the map fitted on all rows) to row `q`,
/// nearest first.
pub fn nearest(feats: &DMatrix<f64>, q: usize, k: usize) -> Vec<usize> {
    let a = FeatureScale::fit(feats).apply(feats.clone());
    let mut d: Vec<(f64, usize)> = (0..a.nrows())
        .filter(|&j| j != q)
        .map(|j| ((a.row(j) - a.row(q)).norm_squared(), j))
        .collect();
    d.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    d.into_iter().take(k).map(|(_, j)| j).collect()
}

/// Tiles (RGBA) of a neighbour sheet: per query a row of the query, its `k` nearest faces in
/// `first` features, a blank tile, and its `k` nearest in `second` features. `pool` holds HWC
/// RGB faces.
pub fn neighbour_tiles(
    pool: &[&[u8]],
    first: &DMatrix<f64>,
    second: &DMatrix<f64>,
    queries: &[usize],
    k: usize,
) -> Vec<Vec<u8>> {
    let rgba = |img: &[u8]| -> Vec<u8> {
        img.chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    };
    let blank = vec![255u8; pool.first().map_or(0, |p| p.len() / 3 * 4)];
    let mut tiles = Vec::new();
    for &q in queries {
        tiles.push(rgba(pool[q]));
        tiles.extend(nearest(first, q, k).into_iter().map(|j| rgba(pool[j])));
        tiles.push(blank.clone());
        tiles.extend(nearest(second, q, k).into_iter().map(|j| rgba(pool[j])));
    }
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_model::TagVocab;
    use std::path::PathBuf;

    #[test]
    fn nt_xent_prefers_the_positive_pair() {
        let device = Device::flex();
        // Four faces, two views each: views of one face point the same way.
        let base = SplitMix64::new(4).normals(4 * 8);
        let noise = SplitMix64::new(5).normals(4 * 8);
        let view2: Vec<f32> = base.iter().zip(&noise).map(|(a, e)| a + 0.05 * e).collect();
        let matched = Tensor::<2>::from_data(
            TensorData::new([base.clone(), view2.clone()].concat(), [8, 8]),
            &device,
        );
        // The same vectors with the second views of faces 0 and 1 swapped.
        let mut swapped2 = view2.clone();
        swapped2[..8].copy_from_slice(&view2[8..16]);
        swapped2[8..16].copy_from_slice(&view2[..8]);
        let swapped =
            Tensor::<2>::from_data(TensorData::new([base, swapped2].concat(), [8, 8]), &device);
        let good = nt_xent(matched, 0.2).into_scalar::<f32>();
        let bad = nt_xent(swapped, 0.2).into_scalar::<f32>();
        assert!(good < 0.5, "{good}");
        assert!(bad > good + 2.0, "{bad} vs {good}");
        // Collapsed features (every row the same) score log(2N - 1).
        let flat = Tensor::<2>::ones([8, 8], &device);
        let l = nt_xent(flat, 0.2).into_scalar::<f32>();
        assert!((l - 7f32.ln()).abs() < 1e-4, "{l}");
    }

    /// A synthetic face: a coloured disc, a bar and a background, at a seed-dependent place,
    /// size and colour (16x16).
    fn synthetic(seed: u64) -> Vec<u8> {
        let mut rng = SplitMix64::new(seed);
        let mut colour = || -> [u8; 3] { [0, 0, 0].map(|_: u8| 40 + rng.below(200) as u8) };
        let (bg, disc, bar) = (colour(), colour(), colour());
        let cx = 4 + rng.below(8) as i32;
        let cy = 4 + rng.below(8) as i32;
        let r2 = (2 + rng.below(3) as i32).pow(2);
        let by = rng.below(16) as i32;
        let mut img = Vec::with_capacity(16 * 16 * 3);
        for y in 0..16i32 {
            for x in 0..16i32 {
                let px = if (x - cx).pow(2) + (y - cy).pow(2) <= r2 {
                    disc
                } else if (y - by).abs() <= 1 && x < 12 {
                    bar
                } else {
                    bg
                };
                img.extend_from_slice(&px);
            }
        }
        img
    }

    fn tiny_dataset(n: usize) -> Dataset {
        let pixels: Vec<u8> = (0..n as u64).flat_map(synthetic).collect();
        let tags: Vec<Vec<String>> = (0..n).map(|_| vec!["x hair".to_string()]).collect();
        let vocab = TagVocab::from_tag_sets(tags.iter().map(|t| t.as_slice()));
        Dataset {
            name: "synthetic".into(),
            resolution: 16,
            pixels,
            tags,
            files: (0..n)
                .map(|i| PathBuf::from(format!("d/{i}.png")))
                .collect(),
            vocab,
            skipped: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn tiny_options(steps: u64) -> ShapeTrainOptions {
        ShapeTrainOptions {
            steps,
            batch: 16,
            seed: 1,
            lr: 3e-3,
            temperature: 0.2,
            holdout: 10,
            augment: Augment::default(),
            config: ShapeEncoderConfig::new()
                .with_resolution(16)
                .with_channels(8)
                .with_max_channels(16)
                .with_final_size(2)
                .with_feature_dim(16)
                .with_projection_dim(8),
            name: "t".into(),
            log_every: 1000,
        }
    }

    #[test]
    fn a_few_steps_teach_it_to_find_recoloured_copies() {
        let data = tiny_dataset(48);
        let train: Vec<usize> = (0..40).collect();
        let fitted = fit(&data, &train, &tiny_options(60)).unwrap();
        assert!(fitted.final_loss.is_finite());
        // Unseen faces 40..48 and recoloured, shifted, mirrored copies of them.
        let imgs: Vec<&[u8]> = (40..48).map(|i| data.image(i)).collect();
        let copies = copies_of(&imgs, 16, 7);
        let refs: Vec<&[u8]> = copies.iter().map(Vec::as_slice).collect();
        let device = Device::flex();
        let a = to_matrix(&encoder_features(&fitted.encoder, 16, &imgs, &device), 16);
        let b = to_matrix(&encoder_features(&fitted.encoder, 16, &refs, &device), 16);
        let tags: Vec<Vec<String>> = (0..8).map(|_| vec!["x".to_string()]).collect();
        let c = copy_check(&a, &b, Some(&tags));
        // Each copy is closer to its face than different faces are to each other, on average,
        // and most copies have their own face among their nearest five (of 8). 60 steps on 40
        // synthetic faces measured separation 1.26-1.33, top-5 0.625-0.875 (2026-12-07; the
        // figures vary with thread scheduling).
        assert!(c.separation.unwrap() > 1.0, "{c:?}");
        assert!(c.top5 >= 0.5, "{c:?}");
    }

    #[test]
    fn copy_check_by_hand() {
        // Originals at 0, 10, 20 on a line; copies near their own and one near the wrong one.
        let a = DMatrix::from_row_slice(3, 1, &[0.0, 10.0, 20.0]);
        let b = DMatrix::from_row_slice(3, 1, &[1.0, 11.0, 12.0]);
        let tags = vec![vec!["t".to_string()]; 3];
        let c = copy_check(&a, &b, Some(&tags));
        assert_eq!(c.images, 3);
        assert!((c.top1 - 2.0 / 3.0).abs() < 1e-12, "{c:?}");
        assert_eq!(c.top5, 1.0);
        // In scaled units: distances 1, 1, 8 and pairwise 10, 20, 10 scale alike.
        let ratio = (40.0 / 3.0) / (10.0 / 3.0);
        assert!((c.separation.unwrap() - ratio).abs() < 1e-9, "{c:?}");
        assert_eq!(c.tag_sets, 1);
    }

    #[test]
    fn training_writes_a_card_that_loads_and_refuses_a_flipped_byte() {
        let data = tiny_dataset(40);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("shape");
        let card = train_shape(&data, Path::new("d"), &out, &tiny_options(3)).unwrap();
        assert_eq!(card.split.percent, 10);
        let loaded = load_shape(&out, &Device::flex()).unwrap();
        assert_eq!(loaded.card.weights_sha256, card.weights_sha256);
        let w = out.join("shape.bpk");
        let mut bytes = std::fs::read(&w).unwrap();
        bytes[100] ^= 0x10;
        std::fs::write(&w, bytes).unwrap();
        let e = format!("{:#}", load_shape(&out, &Device::flex()).unwrap_err());
        assert!(e.contains("SHA-256"), "{e}");
        assert!(load_shape(&dir.path().join("nothing"), &Device::flex()).is_err());
    }
}
