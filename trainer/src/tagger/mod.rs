//! `trainer tagger train`: trains the tagger of `shared_model::tagger` on a tagged dataset,
//! holding out a deterministic part of it (by file-name hash, duplicates kept together) and
//! measuring accuracy there. Also the helpers that load a tagger and run it over images.
//!
//! Augmentation is geometric only (horizontal flips, shifts of a few pixels with edge
//! replication): the tags are colours, so no hue, saturation or brightness changes.
//!
//! [`tag`] writes the tags a trained tagger sees into a folder's `metadata.csv`.

pub mod tag;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::{AdamConfig, GradientsParams, decay::WeightDecayConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};
use shared_model::card::weights_bytes;
use shared_model::tagger::{
    HoldoutSplit, LoadedTagger, Tagger, TaggerAccuracy, TaggerCard, TaggerConfig, TaggerTraining,
    fnv1a64, free_indices, group_indices, tag_probabilities,
};
use shared_model::{SplitMix64, TagVocab};

use crate::data::Dataset;
use crate::fsutil::write_atomic;

/// Images per inference batch.
pub const INFER_BATCH: usize = 128;

/// Loads a tagger from its card file (or a folder holding `tagger.json`).
pub fn load_tagger(path: &Path, device: &Device) -> Result<LoadedTagger> {
    let card_path = crate::fsutil::card_in(path, "tagger.json")?;
    let text =
        crate::fsutil::read_text_bounded(&card_path, crate::fsutil::MAX_CARD_BYTES, "tagger card")?;
    let card = TaggerCard::from_json(&text).with_context(|| format!("{}", card_path.display()))?;
    let weights_path = card_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&card.weights);
    let weights = crate::fsutil::read_bounded(
        &weights_path,
        crate::model_io::generate::MAX_WEIGHTS_BYTES,
        "tagger weights",
    )?;
    LoadedTagger::from_bytes(card, weights, device)
        .with_context(|| format!("{}", weights_path.display()))
}

/// A file's name relative to the data folder, `/`-separated (the split key of unique images).
pub fn relative_name(file: &Path, dir: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap_or(file);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The split key of every image: its relative file name, or for pixel-identical images the
/// smallest of their names (see [`HoldoutSplit::new`]).
pub fn split_keys(data: &Dataset, dir: &Path) -> Vec<String> {
    let names: Vec<String> = data.files.iter().map(|f| relative_name(f, dir)).collect();
    let hashes: Vec<u64> = (0..data.len()).map(|i| fnv1a64(data.image(i))).collect();
    let mut smallest: HashMap<u64, &str> = HashMap::new();
    for (h, n) in hashes.iter().zip(&names) {
        let e = smallest.entry(*h).or_insert(n.as_str());
        if n.as_str() < *e {
            *e = n.as_str();
        }
    }
    hashes.iter().map(|h| smallest[h].to_string()).collect()
}

/// `true` for each held-out image.
pub fn heldout_mask(data: &Dataset, dir: &Path, split: &HoldoutSplit) -> Vec<bool> {
    split_keys(data, dir)
        .iter()
        .map(|k| split.is_heldout(k))
        .collect()
}

/// HWC RGB bytes (`res * res * 3` each) -> `[B, 3, res, res]` in `[-1, 1]`.
pub fn images_tensor(images: &[&[u8]], res: usize, device: &Device) -> Tensor<4> {
    let mut v = Vec::with_capacity(images.len() * 3 * res * res);
    for img in images {
        for ch in 0..3 {
            for p in 0..res * res {
                v.push(img[p * 3 + ch] as f32 / 127.5 - 1.0);
            }
        }
    }
    Tensor::from_data(TensorData::new(v, [images.len(), 3, res, res]), device)
}

/// Runs a tagger (inference mode) over HWC RGB images in batches: (probabilities `n * T`,
/// features `n * F`), both row-major.
pub fn read_images(
    tagger: &Tagger,
    vocab: &TagVocab,
    res: usize,
    images: &[&[u8]],
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    let mut probs = Vec::new();
    let mut feats = Vec::new();
    for chunk in images.chunks(INFER_BATCH) {
        let h = tagger.features(images_tensor(chunk, res, device));
        let logits = tagger.head(h.clone());
        let t = logits.dims()[1];
        let logits = logits
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 data");
        for row in logits.chunks(t) {
            probs.extend(tag_probabilities(vocab, row));
        }
        feats.extend(
            h.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 data"),
        );
    }
    (probs, feats)
}

/// Accuracy of tag probabilities (`n * T`) against the true tags of `n` images: per group the
/// images carrying a tag of that group whose most probable group tag is the true one; free tags
/// right at 0.5; `all` for images with every decision right.
pub fn accuracy(vocab: &TagVocab, probs: &[f32], truth: &[Vec<String>]) -> TaggerAccuracy {
    let t = vocab.len();
    let groups = group_indices(vocab);
    let free = free_indices(vocab);
    let mut right = vec![0usize; groups.len()];
    let mut seen = vec![0usize; groups.len()];
    let (mut free_right, mut free_seen, mut all_right) = (0usize, 0usize, 0usize);
    for (p, tags) in probs.chunks(t).zip(truth) {
        let mut all = true;
        for (g, idx) in groups.iter().enumerate() {
            let Some(&want) = idx.iter().find(|&&i| tags.contains(&vocab.tags[i])) else {
                continue;
            };
            let best = *idx
                .iter()
                .max_by(|&&a, &&b| p[a].total_cmp(&p[b]))
                .expect("groups have tags");
            seen[g] += 1;
            if best == want {
                right[g] += 1;
            } else {
                all = false;
            }
        }
        for &i in &free {
            free_seen += 1;
            if (p[i] >= 0.5) == tags.contains(&vocab.tags[i]) {
                free_right += 1;
            } else {
                all = false;
            }
        }
        all_right += usize::from(all);
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    TaggerAccuracy {
        groups: vocab
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| (grp.name.clone(), frac(right[g], seen[g])))
            .collect::<BTreeMap<_, _>>(),
        free: (!free.is_empty()).then(|| frac(free_right, free_seen)),
        all: frac(all_right, truth.len()),
        images: truth.len(),
    }
}

/// One line per group, for people.
pub fn accuracy_lines(acc: &TaggerAccuracy) -> Vec<String> {
    let mut out: Vec<String> = acc
        .groups
        .iter()
        .map(|(g, a)| format!("  {g:<12} {:6.2} %", 100.0 * a))
        .collect();
    if let Some(f) = acc.free {
        out.push(format!("  {:<12} {:6.2} %", "free tags", 100.0 * f));
    }
    out.push(format!(
        "  {:<12} {:6.2} %   ({} held-out images)",
        "all at once",
        100.0 * acc.all,
        acc.images
    ));
    out
}

/// Settings of `trainer tagger train`.
#[derive(Debug, Clone)]
pub struct TaggerTrainOptions {
    pub steps: u64,
    pub batch: usize,
    pub seed: u64,
    pub lr: f64,
    /// Percentage of images held out.
    pub holdout: u32,
    /// Largest shift of the augmentation, in pixels.
    pub max_shift: usize,
    pub config: TaggerConfig,
    pub name: String,
    /// Print a progress line every this many steps.
    pub log_every: u64,
}

/// The tagger's loss: cross-entropy within each exclusive group (images without a tag of the
/// group do not count) plus binary cross-entropy for free tags.
/// `logits`, `target`: `[B, T]` (target multi-hot) -> scalar `[1]`.
pub fn tagger_loss(
    logits: Tensor<2>,
    target: Tensor<2>,
    groups: &[Vec<usize>],
    free: &[usize],
) -> Tensor<1> {
    let device = logits.device();
    let index = |idx: &[usize]| {
        Tensor::<1, Int>::from_data(
            TensorData::new(idx.iter().map(|&i| i as i64).collect(), [idx.len()]),
            &device,
        )
    };
    let mut total = Tensor::<1>::zeros([1], &device);
    for idx in groups {
        let sel = logits.clone().select(1, index(idx)); // [B, g]
        let y = target.clone().select(1, index(idx)); // [B, g], one-hot or all zero
        let count = y.clone().sum().into_scalar::<f32>();
        if count > 0.0 {
            let nll = (log_softmax(sel, 1) * y).sum().neg(); // [1]
            total = total + nll.div_scalar(count as f64);
        }
    }
    if !free.is_empty() {
        let x = logits.select(1, index(free)); // [B, f]
        let y = target.select(1, index(free));
        // Numerically stable BCE with logits: max(x, 0) - x y + log(1 + exp(-|x|)).
        let bce = relu(x.clone()) - x.clone() * y + x.abs().neg().exp().log1p();
        total = total + bce.mean();
    }
    total
}

/// A training batch with augmentation: `[B, 3, R, R]` images and `[B, T]` targets.
fn train_batch(
    data: &Dataset,
    train: &[usize],
    conds: &[Vec<f32>],
    opts: &TaggerTrainOptions,
    rng: &mut SplitMix64,
    device: &Device,
) -> (Tensor<4>, Tensor<2>) {
    let r = data.resolution;
    let t = conds[0].len();
    let b = opts.batch;
    let s = opts.max_shift as i64;
    let mut pix = Vec::with_capacity(b * 3 * r * r);
    let mut tgt = Vec::with_capacity(b * t);
    for _ in 0..b {
        let i = train[rng.below(train.len() as u64) as usize];
        let flip = rng.next_u64() & 1 == 1;
        let dx = rng.below(2 * s as u64 + 1) as i64 - s;
        let dy = rng.below(2 * s as u64 + 1) as i64 - s;
        let img = data.image(i);
        let clamp = |v: i64| v.clamp(0, r as i64 - 1) as usize;
        for ch in 0..3 {
            for y in 0..r {
                let sy = clamp(y as i64 - dy);
                for x in 0..r {
                    let fx = if flip { r - 1 - x } else { x };
                    let sx = clamp(fx as i64 - dx);
                    pix.push(img[(sy * r + sx) * 3 + ch] as f32 / 127.5 - 1.0);
                }
            }
        }
        tgt.extend_from_slice(&conds[i]);
    }
    (
        Tensor::from_data(TensorData::new(pix, [b, 3, r, r]), device),
        Tensor::from_data(TensorData::new(tgt, [b, t]), device),
    )
}

/// Learning rate at `step`: linear warm-up over the first 3 % of steps, then cosine to 2 %.
pub(crate) fn lr_at(step: u64, steps: u64, lr: f64) -> f64 {
    let warm = (steps as f64 * 0.03).max(1.0);
    let s = step as f64;
    if s < warm {
        return lr * (s + 1.0) / warm;
    }
    let p = ((s - warm) / (steps as f64 - warm).max(1.0)).min(1.0);
    lr * (0.02 + 0.98 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

/// Trains a tagger on `data` (loaded from `dir` at the tagger's resolution), writes
/// `out/tagger.bpk` and `out/tagger.json`, and returns the card.
pub fn train_tagger(
    data: &Dataset,
    dir: &Path,
    out: &Path,
    opts: &TaggerTrainOptions,
) -> Result<TaggerCard> {
    let vocab = data.vocab.clone();
    if vocab.is_empty() {
        bail!("the dataset has no tags to learn");
    }
    if data.resolution != opts.config.resolution {
        bail!(
            "the data was loaded at {} px but the tagger reads {} px",
            data.resolution,
            opts.config.resolution
        );
    }
    let split = HoldoutSplit::new(opts.holdout);
    let held = heldout_mask(data, dir, &split);
    let (heldout, train): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|&i| held[i]);
    if train.is_empty() {
        bail!(
            "no training images left after holding out {} %",
            opts.holdout
        );
    }
    if heldout.is_empty() {
        bail!(
            "no held-out images: {} images are too few for a {} % hold-out (use more images or \
             a larger --holdout)",
            data.len(),
            opts.holdout
        );
    }
    note!(
        "tagger: {} training images, {} held out ({} %), {} tags",
        train.len(),
        heldout.len(),
        opts.holdout,
        vocab.len()
    );
    let conds: Vec<Vec<f32>> = data
        .tags
        .iter()
        .zip(&data.files)
        .map(|(t, f)| {
            vocab
                .encode(t)
                .with_context(|| format!("{}: tags do not fit the vocabulary", f.display()))
        })
        .collect::<Result<_>>()?;
    let groups = group_indices(&vocab);
    let free = free_indices(&vocab);

    let cfg = TaggerConfig {
        num_tags: vocab.len(),
        ..opts.config.clone()
    };
    let device = Device::flex().autodiff();
    let mut model = shared_model::rng::seeded(&device, opts.seed, || cfg.try_init(&device))?;
    let mut optim = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(1e-4)))
        .init();
    let mut rng = SplitMix64::new(opts.seed ^ 0x7461_6767_6572);
    let started = Instant::now();
    let mut tick = Instant::now();
    let mut loss_acc = 0.0f64;
    let mut loss_n = 0u32;
    let infer_device = device.clone().inner();
    let eval_heldout = |model: &Tagger| {
        let imgs: Vec<&[u8]> = heldout.iter().map(|&i| data.image(i)).collect();
        let truth: Vec<Vec<String>> = heldout.iter().map(|&i| data.tags[i].clone()).collect();
        let (probs, _) = read_images(model, &vocab, data.resolution, &imgs, &infer_device);
        accuracy(&vocab, &probs, &truth)
    };
    for step in 0..opts.steps {
        let (x, y) = train_batch(data, &train, &conds, opts, &mut rng, &device);
        let loss = tagger_loss(model.forward(x), y, &groups, &free);
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            bail!("tagger training diverged at step {step} (loss {value})");
        }
        loss_acc += f64::from(value);
        loss_n += 1;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr_at(step, opts.steps, opts.lr), model, grads);
        let done = step + 1;
        if done.is_multiple_of(opts.log_every) || done == opts.steps {
            let ips = f64::from(loss_n) * opts.batch as f64 / tick.elapsed().as_secs_f64();
            note!(
                "step {done}/{}  loss {:.4}  {ips:.0} img/s  {:.0} s",
                opts.steps,
                loss_acc / f64::from(loss_n),
                started.elapsed().as_secs_f64()
            );
            loss_acc = 0.0;
            loss_n = 0;
            tick = Instant::now();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let model = model.valid();
    let acc = eval_heldout(&model);
    note!("held-out accuracy:");
    for l in accuracy_lines(&acc) {
        note!("{l}");
    }
    let mut card = TaggerCard::new(
        &opts.name,
        vocab,
        cfg,
        split,
        TaggerTraining {
            data: data.name.clone(),
            steps: opts.steps,
            batch_size: opts.batch,
            seed: opts.seed,
            train_images: train.len(),
            seconds,
            augmentation: format!(
                "horizontal flip, shift up to {} px (edge replicated); no colour changes",
                opts.max_shift
            ),
        },
        acc,
    );
    let weights = weights_bytes(model)?;
    card.seal(&weights);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join(&card.weights), &weights)?;
    write_atomic(&out.join("tagger.json"), card.to_json().as_bytes())?;
    Ok(card)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_model::vocab::parse_tags;

    fn vocab() -> TagVocab {
        let sets: Vec<Vec<String>> = ["a hair, x eyes, smile", "b hair, y eyes"]
            .iter()
            .map(|s| parse_tags(s))
            .collect();
        TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()))
    }

    #[test]
    fn accuracy_counts_groups_free_tags_and_all() {
        let v = vocab(); // tags: x eyes, y eyes, a hair, b hair, smile
        let row = |tags: &[&str], smile: f32| {
            let mut p = vec![0.0f32; v.len()];
            for t in tags {
                p[v.index_of(t).unwrap()] = 1.0;
            }
            p[v.index_of("smile").unwrap()] = smile;
            p
        };
        let probs: Vec<f32> = [
            row(&["x eyes", "a hair"], 0.9),
            row(&["y eyes", "a hair"], 0.1),
        ]
        .concat();
        let truth = vec![
            parse_tags("a hair, x eyes, smile"),
            parse_tags("b hair, y eyes"),
        ];
        let acc = accuracy(&v, &probs, &truth);
        assert_eq!(acc.groups["eyes"], 1.0);
        assert_eq!(acc.groups["hair"], 0.5);
        assert_eq!(acc.free, Some(1.0));
        assert_eq!(acc.all, 0.5);
    }

    #[test]
    fn loss_is_small_for_right_and_large_for_wrong_logits() {
        let v = vocab();
        let device = Device::flex();
        let target = Tensor::<2>::from_data(
            TensorData::new(
                v.encode(&parse_tags("a hair, x eyes, smile")).unwrap(),
                [1, 5],
            ),
            &device,
        );
        let good = target.clone().mul_scalar(20.0).sub_scalar(10.0);
        let bad = good.clone().neg();
        let (g, f) = (group_indices(&v), free_indices(&v));
        let lg = tagger_loss(good, target.clone(), &g, &f).into_scalar::<f32>();
        let lb = tagger_loss(bad, target, &g, &f).into_scalar::<f32>();
        assert!(lg < 1e-3, "{lg}");
        assert!(lb > 20.0, "{lb}");
    }

    #[test]
    fn schedule_warms_up_and_decays() {
        assert!(lr_at(0, 1000, 1.0) < 0.05);
        assert!((lr_at(30, 1000, 1.0) - 1.0).abs() < 1e-6);
        assert!(lr_at(999, 1000, 1.0) < 0.03);
    }
}
