//! Spectral normalisation of the critic (Miyato et al. 2018), as a training-time
//! reparameterisation: every weight `W` of rank >= 2 (linear and convolution kernels, seen as
//! the matrix `[W.dims()[0], rest]`) is replaced by `W / sigma(W)`, with `sigma` the largest
//! singular value estimated by power iteration.
//!
//! Burn has no spectral-norm module, and adding one to the model files would put training state
//! (the power-iteration vectors `u`) into exported modules. Instead [`SpectralNorm::apply`] maps a
//! critic to its normalised copy before each use. The copy's weights are computed from the
//! original parameters inside the autodiff graph, so gradients of a loss on the copy land on the
//! original parameters (the optimiser keeps updating those). As in the paper, `u` and `v` are
//! treated as constants; `sigma = u^T W v` carries the gradient. The `u` vectors are part of the
//! checkpoint, so resumed runs stay exact.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use shared_model::SplitMix64;

/// Power-iteration state: one unit vector `u` (length `W.dims()[0]`) per normalised weight, in
/// module visit order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectralNorm {
    pub u: Vec<Vec<f32>>,
}

/// Rows of every float parameter of rank >= 2, in visit order.
struct Rows(Vec<usize>);

impl ModuleVisitor for Rows {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if D >= 2 {
            self.0.push(param.val().dims()[0]);
        }
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| (*x as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(1e-12);
    for x in &mut v {
        *x = (*x as f64 / n) as f32;
    }
    v
}

/// `x / max(||x||, 1e-12)` for a column `[N, 1]`.
fn normalize(x: Tensor<2>) -> Tensor<2> {
    let n = x.clone().powi_scalar(2).sum().sqrt().clamp_min(1e-12);
    x / n.unsqueeze::<2>()
}

struct Normalise<'a> {
    u: std::slice::IterMut<'a, Vec<f32>>,
    iterations: usize,
}

impl ModuleMapper for Normalise<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D < 2 {
            return param;
        }
        let (id, w, mapper) = param.consume();
        let u_state = self
            .u
            .next()
            .expect("spectral-norm state matches the module");
        let sigma = sigma_update(w.clone(), u_state, self.iterations);
        let out = w / sigma.reshape([1; D]);
        Param::from_mapped_value(id, out, mapper)
    }
}

/// `sigma = u^T W v` for `W` seen as a matrix; runs `iterations` power-iteration steps on the
/// detached weight first and stores the new `u`. Returns a `[1, 1]` tensor attached to `w`.
fn sigma_update<const D: usize>(
    w: Tensor<D>,
    u_state: &mut Vec<f32>,
    iterations: usize,
) -> Tensor<2> {
    let dims = w.dims();
    let rows = dims[0];
    let cols = dims.iter().product::<usize>() / rows;
    let device = w.device();
    let mat: Tensor<2> = w.reshape([rows, cols]);
    let fixed = mat.clone().detach();
    let mut u = Tensor::<2>::from_data(TensorData::new(u_state.clone(), [rows, 1]), &device);
    for _ in 0..iterations {
        let v = normalize(fixed.clone().transpose().matmul(u));
        u = normalize(fixed.clone().matmul(v));
    }
    let v = normalize(fixed.transpose().matmul(u.clone()));
    *u_state = u
        .clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data");
    u.transpose().matmul(mat.matmul(v))
}

impl SpectralNorm {
    /// Random unit `u` vectors, one per weight of `module`, drawn from `rng`.
    pub fn new<M: Module>(module: &M, rng: &mut SplitMix64) -> Self {
        let mut rows = Rows(Vec::new());
        module.visit(&mut rows);
        Self {
            u: rows.0.into_iter().map(|r| unit(rng.normals(r))).collect(),
        }
    }

    /// The module with every weight divided by its spectral norm. `iterations` power-iteration
    /// steps (1 per training step, as in the paper) refine `u` first; 0 reuses it.
    pub fn apply<M: Module>(&mut self, module: M, iterations: usize) -> M {
        let mut mapper = Normalise {
            u: self.u.iter_mut(),
            iterations,
        };
        module.map(&mut mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use nalgebra::DMatrix;

    fn matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        SplitMix64::new(seed).normals(rows * cols)
    }

    #[test]
    fn sigma_is_the_largest_singular_value() {
        let device = Device::flex();
        for (rows, cols, seed) in [(5, 3, 1), (4, 9, 2), (16, 16, 3)] {
            let values = matrix(rows, cols, seed);
            let w = Tensor::<2>::from_data(TensorData::new(values.clone(), [rows, cols]), &device);
            let mut u = unit(SplitMix64::new(99).normals(rows));
            let sigma = sigma_update(w, &mut u, 200).into_scalar::<f32>() as f64;
            let m = DMatrix::from_row_slice(
                rows,
                cols,
                &values.iter().map(|&x| x as f64).collect::<Vec<_>>(),
            );
            let expect = m.singular_values().max();
            assert!(
                (sigma - expect).abs() < 1e-4 * expect,
                "{rows}x{cols}: power iteration {sigma}, SVD {expect}"
            );
        }
    }

    #[test]
    fn normalised_module_has_unit_spectral_norm_and_passes_gradients() {
        let device = Device::flex().autodiff();
        let lin: Linear = shared_model::rng::backend_stream(|| {
            shared_model::rng::drawn(LinearConfig::new(6, 4).init(&device))
        });
        let mut sn = SpectralNorm::new(&lin, &mut SplitMix64::new(5));
        assert_eq!(sn.u.len(), 1, "only the weight, not the bias");
        let normed = sn.apply(lin.clone(), 100);
        let w = normed.weight.val();
        let values: Vec<f64> = w
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .expect("f64 data");
        let top = DMatrix::from_row_slice(6, 4, &values)
            .singular_values()
            .max();
        assert!((top - 1.0).abs() < 1e-4, "spectral norm after SN: {top}");

        // A loss on the normalised copy has gradients on the original parameters.
        let x = Tensor::<2>::ones([3, 6], &device);
        let loss = normed.forward(x).powi_scalar(2).sum();
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &lin);
        let g = grads
            .get::<2>(lin.weight.id)
            .expect("gradient reaches the raw weight");
        assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
    }
}
