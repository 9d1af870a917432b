//! `trainer directions`: named style-space directions for a model's sliders, found without
//! training by closed-form factorisation (SeFa, Shen & Zhou 2021), written into its card.
//!
//! Every style layer `l` turns a style `w` into per-channel scales `s_l = A_lᵀ w` (its affine
//! layer, gains included). Moving `w` by a unit vector `n` changes them by `A_lᵀ n`; the
//! directions that change them most, summed over layers, maximise `nᵀ (Σ_l A_l A_lᵀ) n`: the
//! eigenvectors of that symmetric `w_dim x w_dim` matrix, by decreasing eigenvalue.

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

/// Writes `card` back over the card file of the model folder `dir` (atomically; the weights are
/// not touched).
pub fn write_card(dir: &Path, card: &shared_model::ModelCard) -> Result<()> {
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
        // Orthonormal basis of R^3 (a rotation) and scales 3, 2, 0.5 split over two layers.
        let c = std::f64::consts::FRAC_1_SQRT_2;
        let basis = [[c, c, 0.0], [-c, c, 0.0], [0.0, 0.0, 1.0]];
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

    #[test]
    fn spread_is_the_std_of_projections() {
        let styles = vec![vec![1.0, 0.0], vec![-1.0, 5.0], vec![3.0, 2.0]];
        // Projections on (1, 0): 1, -1, 3 -> mean 1, std sqrt(8/3).
        assert!((spread(&styles, &[1.0, 0.0]) - (8.0f64 / 3.0).sqrt()).abs() < 1e-9);
    }
}
