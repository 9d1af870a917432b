//! Distances between two sets of feature vectors: Frechet distance (FD, as in FID), kernel
//! inception distance (KID) and k-NN precision/recall. Each set is a matrix with one sample per
//! row (`n x d`, f64). What the features are (kyara's own tagger, see the evaluation issue) is up
//! to the caller; these functions are only the statistics.

use anyhow::{Result, bail};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

fn check_pair(a: &DMatrix<f64>, b: &DMatrix<f64>, min_rows: usize) -> Result<()> {
    if a.ncols() != b.ncols() {
        bail!(
            "feature sets differ in width ({} vs {} values per sample)",
            a.ncols(),
            b.ncols()
        );
    }
    if a.ncols() == 0 {
        bail!("feature vectors are empty");
    }
    if a.nrows() < min_rows || b.nrows() < min_rows {
        bail!(
            "need at least {min_rows} samples per set (got {} and {})",
            a.nrows(),
            b.nrows()
        );
    }
    if a.iter().chain(b.iter()).any(|v| !v.is_finite()) {
        bail!("feature sets hold non-finite values");
    }
    Ok(())
}

/// Mean `[d]` and unbiased covariance `[d, d]` of the rows of `x` (`n >= 2`).
pub fn mean_cov(x: &DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let n = x.nrows() as f64;
    let mean = x.row_mean().transpose();
    let mut centered = x.clone();
    for mut row in centered.row_iter_mut() {
        row -= mean.transpose();
    }
    let cov = centered.transpose() * &centered / (n - 1.0);
    (mean, cov)
}

/// Square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues are
/// clipped to zero).
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let eig = SymmetricEigen::new(sym);
    let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

/// Frechet distance between Gaussians fitted to the two sets:
/// `||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)`.
/// The last trace equals `tr((S_a S_b)^1/2)` and is computed from symmetric matrices only, so it
/// needs no complex arithmetic.
pub fn frechet_distance(a: &DMatrix<f64>, b: &DMatrix<f64>) -> Result<f64> {
    check_pair(a, b, 2)?;
    let (mu_a, s_a) = mean_cov(a);
    let (mu_b, s_b) = mean_cov(b);
    let r = psd_sqrt(&s_a);
    let cross = psd_sqrt(&(&r * &s_b * &r)).trace();
    let fd = (mu_a - mu_b).norm_squared() + s_a.trace() + s_b.trace() - 2.0 * cross;
    Ok(fd.max(0.0))
}

/// KID: the unbiased estimate of the squared maximum mean discrepancy with the polynomial kernel
/// `k(x, y) = (x.y / d + 1)^3` (Binkowski et al. 2018). Its expectation is 0 when both sets come
/// from the same distribution, so it can be slightly negative.
pub fn kid(a: &DMatrix<f64>, b: &DMatrix<f64>) -> Result<f64> {
    check_pair(a, b, 2)?;
    let d = a.ncols() as f64;
    let kernel =
        |x: &DMatrix<f64>, y: &DMatrix<f64>| (x * y.transpose()).map(|v| (v / d + 1.0).powi(3));
    let (m, n) = (a.nrows() as f64, b.nrows() as f64);
    let k_aa = kernel(a, a);
    let k_bb = kernel(b, b);
    let k_ab = kernel(a, b);
    let off_diag_mean = |k: &DMatrix<f64>, n: f64| (k.sum() - k.trace()) / (n * (n - 1.0));
    Ok(off_diag_mean(&k_aa, m) + off_diag_mean(&k_bb, n) - 2.0 * k_ab.mean())
}

/// Squared Euclidean distances between all rows of `x` and all rows of `y`: `[n_x, n_y]`.
fn sq_distances(x: &DMatrix<f64>, y: &DMatrix<f64>) -> DMatrix<f64> {
    let nx: Vec<f64> = x.row_iter().map(|r| r.norm_squared()).collect();
    let ny: Vec<f64> = y.row_iter().map(|r| r.norm_squared()).collect();
    let mut g = x * y.transpose();
    for i in 0..g.nrows() {
        for j in 0..g.ncols() {
            g[(i, j)] = (nx[i] + ny[j] - 2.0 * g[(i, j)]).max(0.0);
        }
    }
    g
}

/// Squared distance from each row of `x` to its k-th nearest other row.
fn knn_radii(x: &DMatrix<f64>, k: usize) -> Vec<f64> {
    let d = sq_distances(x, x);
    (0..x.nrows())
        .map(|i| {
            let mut row: Vec<f64> = (0..x.nrows())
                .filter(|&j| j != i)
                .map(|j| d[(i, j)])
                .collect();
            row.sort_by(f64::total_cmp);
            row[k - 1]
        })
        .collect()
}

/// Fraction of the rows of `x` that fall inside the k-NN manifold of `support` (the union of the
/// balls around each support row with radius its distance to its k-th nearest neighbour).
fn coverage(x: &DMatrix<f64>, support: &DMatrix<f64>, k: usize) -> f64 {
    let radii = knn_radii(support, k);
    let d = sq_distances(x, support);
    let inside = (0..x.nrows())
        .filter(|&i| (0..support.nrows()).any(|j| d[(i, j)] <= radii[j]))
        .count();
    inside as f64 / x.nrows() as f64
}

/// Improved precision and recall (Kynkaanniemi et al. 2019): precision is the fraction of
/// generated samples inside the real k-NN manifold (are they realistic?), recall the fraction of
/// real samples inside the generated one (is the real variety covered?). The paper uses k = 3.
pub fn precision_recall(real: &DMatrix<f64>, fake: &DMatrix<f64>, k: usize) -> Result<(f64, f64)> {
    check_pair(real, fake, k + 1)?;
    if k == 0 {
        bail!("k must be at least 1");
    }
    Ok((coverage(fake, real, k), coverage(real, fake, k)))
}

/// Mean Euclidean distance over all pairs of rows of `x`: how spread out one set is. `None` with
/// fewer than two rows. Its expectation does not depend on the number of rows, so sets of
/// different sizes compare directly.
pub fn mean_pairwise_distance(x: &DMatrix<f64>) -> Option<f64> {
    let n = x.nrows();
    if n < 2 {
        return None;
    }
    let mut sum = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            sum += (x.row(i) - x.row(j)).norm();
        }
    }
    Some(sum / (n * (n - 1) / 2) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_model::SplitMix64;

    /// `n` samples of `N(mu, sigma^2 I)` in `d` dimensions, from a fixed seed.
    fn gaussian(n: usize, d: usize, mu: f64, sigma: f64, seed: u64) -> DMatrix<f64> {
        let z = SplitMix64::new(seed).normals(n * d);
        DMatrix::from_iterator(n, d, z.into_iter().map(|v| mu + sigma * v as f64))
    }

    #[test]
    fn fd_of_a_set_with_itself_is_zero() {
        let a = gaussian(500, 8, 0.3, 1.7, 1);
        assert!(frechet_distance(&a, &a).unwrap() < 1e-8);
    }

    /// For `b = s a + t` (every row), the sample statistics are `s mu_a + t` and `s^2 S_a`, so
    /// `FD = ||(s - 1) mu_a + t||^2 + (1 - s)^2 tr(S_a)` exactly, whatever `a` is.
    #[test]
    fn fd_of_an_affine_copy_matches_the_closed_form() {
        let a = gaussian(300, 5, 0.5, 2.0, 2);
        let (s, t) = (0.6, [1.0, -2.0, 0.5, 0.0, 3.0]);
        let mut b = &a * s;
        for mut row in b.row_iter_mut() {
            for (v, tv) in row.iter_mut().zip(t) {
                *v += tv;
            }
        }
        let (mu, cov) = mean_cov(&a);
        let shift: f64 = (0..5).map(|j| ((s - 1.0) * mu[j] + t[j]).powi(2)).sum();
        let want = shift + (1.0 - s).powi(2) * cov.trace();
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - want).abs() < 1e-8 * want, "{got} vs {want}");
    }

    /// Large samples of `N(0, I)` and `N(mu 1, sigma^2 I)`: `FD -> d mu^2 + d (1 - sigma)^2`.
    #[test]
    fn fd_of_shifted_gaussians_approaches_the_population_value() {
        let d = 4;
        let a = gaussian(20_000, d, 0.0, 1.0, 3);
        let b = gaussian(20_000, d, 0.5, 2.0, 4);
        let want = d as f64 * (0.25 + 1.0);
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - want).abs() < 0.05 * want, "{got} vs {want}");
    }

    /// One-dimensional sets small enough to do by hand: a = {0, 1}, b = {1, 2}, d = 1,
    /// k(x, y) = (xy + 1)^3. k_aa off-diagonal: k(0,1) = 1; k_bb: k(1,2) = 27;
    /// k_ab: k(0,1) = 1, k(0,2) = 1, k(1,1) = 8, k(1,2) = 27 -> mean 37/4.
    /// KID = 1 + 27 - 2 * 37/4 = 9.5.
    #[test]
    fn kid_by_hand() {
        let a = DMatrix::from_row_slice(2, 1, &[0.0, 1.0]);
        let b = DMatrix::from_row_slice(2, 1, &[1.0, 2.0]);
        assert!((kid(&a, &b).unwrap() - 9.5).abs() < 1e-12);
    }

    /// Unbiased: over independent pairs of samples from one distribution the estimates average
    /// to ~0 (and are small each time); a shifted distribution scores clearly above that.
    #[test]
    fn kid_is_unbiased_on_equal_distributions() {
        let mut same = Vec::new();
        for s in 0..20 {
            let a = gaussian(200, 6, 0.0, 1.0, 100 + 2 * s);
            let b = gaussian(200, 6, 0.0, 1.0, 101 + 2 * s);
            same.push(kid(&a, &b).unwrap());
        }
        let mean = same.iter().sum::<f64>() / same.len() as f64;
        let spread = same.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let shifted = kid(
            &gaussian(200, 6, 0.0, 1.0, 7),
            &gaussian(200, 6, 0.5, 1.0, 8),
        )
        .unwrap();
        assert!(mean.abs() < spread / 3.0, "mean {mean}, spread {spread}");
        assert!(
            same.iter().any(|&v| v < 0.0),
            "an unbiased estimate dips below 0: {same:?}"
        );
        assert!(
            shifted > 5.0 * spread,
            "shifted {shifted} vs spread {spread}"
        );
    }

    /// Real points on a 1-D grid 0..10 (k = 1: each ball has radius 1). Generated points: five on
    /// the grid's first half and five far away. Precision = 5/10. Recall: real points within
    /// their generated neighbour's radius; the generated grid points 0..4 have radius 1 (to each
    /// other), so real 0..5 are covered -> 6/10 (the far points' balls are far away too).
    #[test]
    fn precision_recall_on_hand_made_points() {
        let real = DMatrix::from_iterator(10, 1, (0..10).map(f64::from));
        let fake_pts: Vec<f64> = (0..5)
            .map(f64::from)
            .chain((0..5).map(|i| 100.0 + 10.0 * f64::from(i)))
            .collect();
        let fake = DMatrix::from_row_slice(10, 1, &fake_pts);
        let (p, r) = precision_recall(&real, &fake, 1).unwrap();
        assert_eq!((p, r), (0.5, 0.6));
        // Identical sets are fully precise and fully covered.
        assert_eq!(precision_recall(&real, &real, 3).unwrap(), (1.0, 1.0));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let a = gaussian(10, 3, 0.0, 1.0, 1);
        let b = gaussian(10, 4, 0.0, 1.0, 2);
        assert!(
            frechet_distance(&a, &b)
                .unwrap_err()
                .to_string()
                .contains("width")
        );
        let one = gaussian(1, 3, 0.0, 1.0, 3);
        assert!(kid(&a, &one).is_err());
        let mut nan = a.clone();
        nan[(0, 0)] = f64::NAN;
        assert!(frechet_distance(&a, &nan).is_err());
        assert!(precision_recall(&a, &a, 10).is_err());
    }

    #[test]
    fn pairwise_distance_by_hand_and_of_copies() {
        // Three points on a line at 0, 3, 4: pairs 3, 4, 1 -> mean 8 / 3.
        let x = DMatrix::from_row_slice(3, 1, &[0.0, 3.0, 4.0]);
        assert!((mean_pairwise_distance(&x).unwrap() - 8.0 / 3.0).abs() < 1e-12);
        // Copies of one point have no spread at all: what a collapsed generator scores.
        let same = DMatrix::from_row_slice(4, 2, &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
        assert_eq!(mean_pairwise_distance(&same), Some(0.0));
        assert_eq!(mean_pairwise_distance(&DMatrix::zeros(1, 2)), None);
    }
}
