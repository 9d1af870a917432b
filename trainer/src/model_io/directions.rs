//! `trainer directions`: named style-space directions for a model's sliders, found without
//! training by closed-form factorisation (SeFa, Shen & Zhou 2021), written into its card.
//!
//! Every style layer `l` turns a style `w` into per-channel scales `s_l = A_lᵀ w` (its affine
//! layer, gains included). Moving `w` by a unit vector `n` changes them by `A_lᵀ n`; the
//! directions that change them most, summed over layers, maximise `nᵀ (Σ_l A_l A_lᵀ) n`: the
//! eigenvectors of that symmetric `w_dim x w_dim` matrix, by decreasing eigenvalue.
//!
//! Supervised directions (`--tagger`), one per tag: sampled faces are read by the tagger, and the
//! direction is the difference of the tag's soft class means of the styles, `Σ p w / Σ p - Σ (1-p)
//! w / Σ (1-p)` (`p` the tagger's probability of the tag), made a unit vector. How far it moves
//! the tagger's score per unit is measured on other faces and written in the direction's note.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use nalgebra::{DMatrix, SymmetricEigen};
use shared_model::card::LoadedModel;
use shared_model::{Direction, GeneratorInput, GeneratorModule, Space, SplitMix64};

use crate::fsutil::write_atomic;

/// One closed-form direction: unit vector and its eigenvalue.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    pub vector: Vec<f32>,
    pub eigenvalue: f64,
}

/// The `k` leading eigenvectors of `Σ_l A_l A_lᵀ` for `weights` given as `(rows = w_dim, cols,
/// row-major values)`. Each vector's sign is fixed so that its largest component is positive
/// (eigenvectors have no sign of their own; a slider should not flip between runs).
pub fn sefa(weights: &[(usize, usize, Vec<f32>)], k: usize) -> Result<Vec<Factor>> {
    let Some(&(dim, _, _)) = weights.first() else {
        bail!("the model has no style layers (SeFa needs a StyleGAN2-style generator)");
    };
    let mut m = DMatrix::<f64>::zeros(dim, dim);
    for (rows, cols, values) in weights {
        if *rows != dim || values.len() != rows * cols {
            bail!("style layers of different widths");
        }
        let a = DMatrix::<f64>::from_row_iterator(*rows, *cols, values.iter().map(|&v| v as f64));
        m += &a * a.transpose();
    }
    let eig = SymmetricEigen::new(m);
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&i, &j| eig.eigenvalues[j].total_cmp(&eig.eigenvalues[i]));
    Ok(order
        .into_iter()
        .take(k.min(dim))
        .map(|i| {
            let col = eig.eigenvectors.column(i);
            let big = col
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(1.0);
            let sign = if big < 0.0 { -1.0 } else { 1.0 };
            Factor {
                vector: col.iter().map(|v| (v * sign) as f32).collect(),
                eigenvalue: eig.eigenvalues[i],
            }
        })
        .collect())
}

/// Styles of `n` faces of `model` with random seeds and tags drawn per seed (as the page's
/// "surprise me"): `[n][style_dim]`.
pub fn sample_styles(model: &LoadedModel, n: usize, seed: u64) -> Result<Vec<Vec<f32>>> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let req = shared_model::sample::FaceRequest::new(
            &model.card.vocab,
            model.card.generator.latent_dim(),
            rng.next_u64(),
            "",
        )?;
        let row = |v: &[f32]| {
            Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &model.device)
        };
        let input = GeneratorInput::new(row(&req.z), row(&req.c));
        let Some(w) = model.generator.style(&input) else {
            bail!("the model has no style space");
        };
        out.push(
            w.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
    }
    Ok(out)
}

/// Standard deviation of the projections of `styles` on `v`.
pub fn spread(styles: &[Vec<f32>], v: &[f32]) -> f64 {
    let p: Vec<f64> = styles
        .iter()
        .map(|w| {
            w.iter()
                .zip(v)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        })
        .collect();
    let n = p.len().max(1) as f64;
    let mean = p.iter().sum::<f64>() / n;
    (p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// The `k` SeFa directions of `model`, named `sefa 1` .. `sefa k`, each with the range 3 standard
/// deviations of the styles of 512 sampled faces along it.
pub fn sefa_directions(model: &LoadedModel, k: usize) -> Result<Vec<Direction>> {
    let weights: Vec<(usize, usize, Vec<f32>)> = model
        .generator
        .style_weights()
        .into_iter()
        .map(|t| {
            let [r, c] = t.dims();
            let v = t
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            (r, c, v)
        })
        .collect();
    let factors = sefa(&weights, k)?;
    let styles = sample_styles(model, 512, 0x5EFA)?;
    let total: f64 = factors.iter().map(|f| f.eigenvalue).sum::<f64>().max(1e-30);
    Ok(factors
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let range = (3.0 * spread(&styles, &f.vector)).max(1e-3);
            Direction {
                name: format!("sefa {}", i + 1),
                about: Some(format!(
                    "closed-form factorisation (SeFa) component {}: eigenvalue {:.4} ({:.1} % of \
                     the leading {})",
                    i + 1,
                    f.eigenvalue,
                    100.0 * f.eigenvalue / total,
                    k
                )),
                vector: f.vector,
                space: Space::W,
                range: Some((range * 1000.0).round() / 1000.0),
            }
        })
        .collect())
}

/// The unit difference of the soft class means of `styles` weighted by `scores` (in `[0, 1]`)
/// and by `1 - scores`; `None` when one class is (nearly) empty.
pub fn class_mean_direction(styles: &[Vec<f32>], scores: &[f32]) -> Option<Vec<f32>> {
    let dim = styles.first()?.len();
    let (mut pos, mut neg) = (vec![0.0f64; dim], vec![0.0f64; dim]);
    let (mut sp, mut sn) = (0.0f64, 0.0f64);
    for (w, &p) in styles.iter().zip(scores) {
        let p = p.clamp(0.0, 1.0) as f64;
        for k in 0..dim {
            pos[k] += p * w[k] as f64;
            neg[k] += (1.0 - p) * w[k] as f64;
        }
        sp += p;
        sn += 1.0 - p;
    }
    if sp < 1.0 || sn < 1.0 {
        return None;
    }
    let d: Vec<f64> = (0..dim).map(|k| pos[k] / sp - neg[k] / sn).collect();
    let norm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    (norm > 1e-12).then(|| d.iter().map(|v| (v / norm) as f32).collect())
}

/// One row of values per face.
type Rows = Vec<Vec<f32>>;

/// Faces of `model` for random seeds (tags drawn per seed) as `(styles, tagger probabilities)`,
/// each face offset along `offset * amount` in the style space when given.
fn tagged_styles(
    model: &LoadedModel,
    tagger: &shared_model::LoadedTagger,
    n: usize,
    seed: u64,
    offset: Option<(&[f32], f64)>,
) -> Result<(Rows, Rows)> {
    anyhow::ensure!(
        tagger.card.resolution == model.card.resolution,
        "the tagger reads {} px faces, the model draws {} px",
        tagger.card.resolution,
        model.card.resolution
    );
    let mut rng = SplitMix64::new(seed);
    let (mut styles, mut probs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let t = tagger.card.vocab.len();
    for _ in 0..n {
        let mut req = shared_model::sample::FaceRequest::new(
            &model.card.vocab,
            model.card.generator.latent_dim(),
            rng.next_u64(),
            "",
        )?;
        if let Some((v, a)) = offset {
            req.style_offset = v.iter().map(|x| (*x as f64 * a) as f32).collect();
        }
        let row = |v: &[f32]| {
            Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &model.device)
        };
        let mut input = GeneratorInput::new(row(&req.z), row(&req.c));
        if !req.style_offset.is_empty() {
            input = input.with_style_offset(row(&req.style_offset));
        }
        let Some(w) = model.generator.style(&input) else {
            bail!("the model has no style space");
        };
        styles.push(
            w.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
        let img = model.forward_request(&req).clamp(-1.0, 1.0);
        let (p, _) = tagger.predict(img);
        anyhow::ensure!(p.len() == t, "the tagger read {} values, not {t}", p.len());
        probs.push(p);
    }
    Ok((styles, probs))
}

/// One supervised direction per tag the tagger and the model share (see the module docs), from
/// `n` sampled faces; the change of the tagger's probability per unit step is measured on `n / 4`
/// other faces at `±1` (the direction's note gives it).
pub fn supervised_directions(
    model: &LoadedModel,
    tagger: &shared_model::LoadedTagger,
    n: usize,
) -> Result<Vec<(Direction, f64)>> {
    let (styles, probs) = tagged_styles(model, tagger, n, 0x7A66, None)?;
    let mut out = Vec::new();
    for (ti, tag) in tagger.card.vocab.tags.iter().enumerate() {
        if model.card.vocab.index_of(tag).is_none() {
            continue;
        }
        let scores: Vec<f32> = probs.iter().map(|p| p[ti]).collect();
        let Some(v) = class_mean_direction(&styles, &scores) else {
            continue;
        };
        let m = (n / 4).max(4);
        let mean_p = |a: f64| -> Result<f64> {
            let (_, p) = tagged_styles(model, tagger, m, 0xE7A1, Some((&v, a)))?;
            Ok(p.iter().map(|p| p[ti] as f64).sum::<f64>() / m as f64)
        };
        let per_unit = (mean_p(1.0)? - mean_p(-1.0)?) / 2.0;
        let range = (3.0 * spread(&styles, &v)).max(1e-3);
        out.push((
            Direction {
                name: tag.clone(),
                about: Some(format!(
                    "class-mean difference of the styles of {n} faces as the tagger reads \
                     them; P({tag}) changes by {per_unit:+.3} per unit (measured on {m} other \
                     faces at ±1)"
                )),
                vector: v,
                space: Space::W,
                range: Some((range * 1000.0).round() / 1000.0),
            },
            per_unit,
        ));
    }
    Ok(out)
}

/// Puts the directions `found` into a card's `directions`: each replaces the card's direction of
/// the same name in its place or is added at the end, and the card's other directions are kept
/// (hand-given names, supervised directions of another run, latent ones). With `replace`, the
/// card's style-space directions are all dropped first (latent `z` ones are kept). Returns how
/// many of the card's directions were kept besides the ones found.
pub fn merge(directions: &mut Vec<Direction>, found: &[Direction], replace: bool) -> usize {
    if replace {
        directions.retain(|d| d.space != Space::W);
    }
    let mut kept = directions.len();
    for d in found {
        match directions
            .iter_mut()
            .find(|o| shared_model::face::same_name(&o.name, &d.name))
        {
            Some(old) => {
                *old = d.clone();
                kept = kept.saturating_sub(1);
            }
            None => directions.push(d.clone()),
        }
    }
    kept
}

/// Writes `card` back over the card file of the model folder `dir`, resealed (atomically; the
/// weights are not touched).
pub fn write_card(dir: &Path, card: &shared_model::ModelCard) -> Result<()> {
    let mut card = card.clone();
    card.reseal();
    let path = if dir.is_dir() {
        dir.join("model.json")
    } else {
        dir.to_path_buf()
    };
    write_atomic(&path, card.to_json().as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weight built from a known orthonormal basis and known singular values: SeFa must give
    /// back that basis, in the order of the squared singular values, as a numerical
    /// eigendecomposition (here: by construction) says.
    #[test]
    fn sefa_recovers_a_known_eigenbasis() {
        // Orthonormal basis of R^3 (a rotation; no ties in magnitude, so the signs are defined) and scales 3, 2, 0.5 split over two layers.
        let basis = [[0.8, 0.6, 0.0], [-0.6, 0.8, 0.0], [0.0, 0.0, 1.0]];
        let scale = [3.0, 2.0, 0.5];
        // A = U diag(scale) V^T with V = identity, split column-wise into two layers (2 + 1
        // channels): A_1 A_1^T + A_2 A_2^T = A A^T = U diag(scale^2) U^T.
        let a = |i: usize, j: usize| basis[j][i] * scale[j];
        let layer1: Vec<f32> = (0..3)
            .flat_map(|i| (0..2).map(move |j| a(i, j) as f32))
            .collect();
        let layer2: Vec<f32> = (0..3).map(|i| a(i, 2) as f32).collect();
        let f = sefa(&[(3, 2, layer1), (3, 1, layer2)], 3).unwrap();
        for (k, want) in basis.iter().enumerate() {
            let dot: f64 = f[k]
                .vector
                .iter()
                .zip(want)
                .map(|(x, y)| *x as f64 * y)
                .sum();
            assert!((dot.abs() - 1.0).abs() < 1e-5, "component {k}: {dot}");
            assert!((f[k].eigenvalue - scale[k] * scale[k]).abs() < 1e-4);
        }
        // Signs: the largest component is positive.
        for d in &f {
            let big = d
                .vector
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap();
            assert!(big > 0.0);
        }
        assert!(sefa(&[], 2).is_err());
    }

    /// Scores from a known linear rule: the class-mean difference points along the rule's
    /// normal, and stepping along it raises every score.
    #[test]
    fn class_means_find_a_known_direction() {
        let u = [0.6f32, -0.8, 0.0];
        let mut rng = SplitMix64::new(4);
        let styles: Vec<Vec<f32>> = (0..2000).map(|_| rng.normals(3)).collect();
        let score = |w: &[f32]| {
            let t: f32 = w.iter().zip(&u).map(|(a, b)| a * b).sum();
            1.0 / (1.0 + (-4.0 * t).exp())
        };
        let scores: Vec<f32> = styles.iter().map(|w| score(w)).collect();
        let d = class_mean_direction(&styles, &scores).unwrap();
        let cos: f32 = d.iter().zip(&u).map(|(a, b)| a * b).sum();
        assert!(cos > 0.98, "{d:?}");
        let moved = styles.iter().map(|w| {
            let w2: Vec<f32> = w.iter().zip(&d).map(|(a, b)| a + b).collect();
            score(&w2) - score(w)
        });
        assert!(moved.into_iter().all(|dp| dp > 0.0));
        // One class empty: no direction.
        assert!(class_mean_direction(&styles, &vec![1.0; styles.len()]).is_none());
    }

    #[test]
    fn spread_is_the_std_of_projections() {
        let styles = vec![vec![1.0, 0.0], vec![-1.0, 5.0], vec![3.0, 2.0]];
        // Projections on (1, 0): 1, -1, 3 -> mean 1, std sqrt(8/3).
        assert!((spread(&styles, &[1.0, 0.0]) - (8.0f64 / 3.0).sqrt()).abs() < 1e-9);
    }
}
