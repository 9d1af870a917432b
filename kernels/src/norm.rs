//! Training-mode batch norm as one autodiff node on the CPU.
//!
//! Burn 0.22.1's Flex backend has no batch-norm kernel of its own: the trait default computes the
//! statistics through `swap_dims` + reshape copies and several elementwise passes, forward and
//! backward (the per-op table in `docs/benchmarks.md`: 1.8x PyTorch for forward + backward).
//! [`batch_norm`] takes Burn's own [`BatchNorm`] module (same parameters, same running
//! statistics, same files) and, in training mode on the Flex autodiff device, computes per
//! channel `c` over the `M = N·H·W` values:
//!
//! - forward: `mean`, biased `var` (two passes, f64 sums), `y = γ·(x - mean)/√(var + ε) + β`;
//! - backward: `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/√(var + ε) · (dy - dβ/M - x̂·dγ/M)`.
//!
//! The running statistics are updated exactly as Burn's module does. Inference (no autodiff),
//! frozen layers and other devices use Burn's module, so results never depend on which path ran.

#[cfg(feature = "autodiff")]
use crate::conv::{lanes_sum, per_group};
use burn::nn::BatchNorm;
use burn::prelude::*;

/// `bn.forward(x)`, computed by these kernels in training mode on the Flex autodiff device.
///
/// - `x`: `[N, C, H, W]`
/// - returns `[N, C, H, W]`
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "autodiff")]
    if bn.training.is_enabled() && crate::act::on_autodiff_flex(&x) {
        return match autodiff::run(bn, x) {
            Ok(y) => y,
            Err(x) => bn.forward(x),
        };
    }
    bn.forward(x)
}

/// Per-channel sums over `[n, c, plane]` data, in a fixed order (the same bits on any thread
/// count): `f(c, plane_slice) -> (a, b)` summed over the `n` planes of channel `c`.
#[cfg(feature = "autodiff")]
fn per_channel<F>(c: usize, planes: usize, f: F) -> Vec<(f64, f64)>
where
    F: Fn(usize, usize) -> (f64, f64) + Sync + Send,
{
    let one = |ch: usize| {
        (0..planes).fold((0.0, 0.0), |(a, b), n| {
            let (da, db) = f(ch, n);
            (a + da, b + db)
        })
    };
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        (0..c).into_par_iter().map(one).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        (0..c).map(one).collect()
    }
}

/// Applies `f(image, chunk)` to each image's `[c, plane]` chunk of `out`, over threads.
#[cfg(feature = "autodiff")]
fn per_image(out: &mut [f32], stride: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    per_group(out, stride, 1, |i, _, chunk, _, _| f(i, chunk));
}

/// Batch statistics of `x` (`[n, c, plane]`): per channel `(mean, biased variance)`.
#[cfg(feature = "autodiff")]
fn stats(x: &[f32], n: usize, c: usize, plane: usize) -> (Vec<f32>, Vec<f32>) {
    let m = (n * plane) as f64;
    let at = |ch: usize, i: usize| &x[(i * c + ch) * plane..][..plane];
    let sums = per_channel(c, n, |ch, i| {
        let p = at(ch, i);
        (lanes_sum(plane, |k| p[k]), 0.0)
    });
    let mean: Vec<f64> = sums.iter().map(|s| s.0 / m).collect();
    let sq = per_channel(c, n, |ch, i| {
        let p = at(ch, i);
        let mu = mean[ch] as f32;
        (
            lanes_sum(plane, |k| {
                let d = p[k] - mu;
                d * d
            }),
            0.0,
        )
    });
    let var = sq.iter().map(|s| (s.0 / m) as f32).collect();
    (mean.iter().map(|&v| v as f32).collect(), var)
}

#[cfg(feature = "autodiff")]
mod autodiff {
    use super::*;
    use crate::conv::{contiguous, f32_tensor};
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::DType;
    use burn_flex::FlexTensor;

    type Ad = Autodiff<Flex, NoCheckpointing>;

    #[derive(Debug)]
    struct BatchNormTrain;

    /// What the backward pass needs besides the checkpointed input and γ.
    #[derive(Debug, Clone)]
    struct Saved {
        dims: [usize; 4],
        mean: Vec<f32>,
        /// `1/√(var + ε)`.
        rstd: Vec<f32>,
    }

    fn flex(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(data, shape.to_vec()))
    }

    /// `(dx, dγ, dβ)` from the input, γ, the saved statistics and `dy`.
    fn grads_of(x: &[f32], gamma: &[f32], s: &Saved, dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let [n, c, h, w] = s.dims;
        let plane = h * w;
        let m = (n * plane) as f64;
        let sums = per_channel(c, n, |ch, i| {
            let base = (i * c + ch) * plane;
            let (xp, gp) = (&x[base..base + plane], &dy[base..base + plane]);
            let mu = s.mean[ch];
            (
                lanes_sum(plane, |k| gp[k]),
                lanes_sum(plane, |k| gp[k] * (xp[k] - mu)),
            )
        });
        let dbeta: Vec<f32> = sums.iter().map(|v| v.0 as f32).collect();
        let dgamma: Vec<f32> = sums
            .iter()
            .zip(&s.rstd)
            .map(|(v, &r)| (v.1 * r as f64) as f32)
            .collect();
        // dx = k·dy + a·x + b per channel.
        let coef: Vec<(f32, f32, f32)> = (0..c)
            .map(|ch| {
                let (r, g, mu) = (s.rstd[ch] as f64, gamma[ch] as f64, s.mean[ch] as f64);
                let k = g * r;
                let mdy = sums[ch].0 / m;
                let mdx = sums[ch].1 * r / m; // mean of dy·x̂
                let a = -k * r * mdx;
                let b = k * (r * mdx * mu - mdy);
                (k as f32, a as f32, b as f32)
            })
            .collect();
        let mut dx = vec![0.0f32; x.len()];
        per_image(&mut dx, c * plane, |i, chunk| {
            for (ch, out) in chunk.chunks_exact_mut(plane).enumerate() {
                let (k, a, b) = coef[ch];
                let base = (i * c + ch) * plane;
                let (xp, gp) = (&x[base..base + plane], &dy[base..base + plane]);
                for ((o, &xv), &g) in out.iter_mut().zip(xp).zip(gp) {
                    *o = k * g + a * xv + b;
                }
            }
        });
        (dx, dgamma, dbeta)
    }

    impl Backward<Flex, 3> for BatchNormTrain {
        type State = (NodeId, NodeId, Saved);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
            let [nx, ng, nb] = ops.parents;
            let dy = contiguous(grads.consume::<Flex>(&ops.node));
            let (xs, gs, saved) = ops.state;
            let x = contiguous(ck.retrieve_node_output::<FlexTensor>(xs));
            let gamma = contiguous(ck.retrieve_node_output::<FlexTensor>(gs));
            let (xv, gv, dyv) = (
                f32_tensor(&x).expect("f32 input"),
                f32_tensor(&gamma).expect("f32 gamma"),
                f32_tensor(&dy).expect("f32 gradient"),
            );
            let (dx, dgamma, dbeta) = grads_of(xv, gv, &saved, dyv);
            let c = saved.dims[1];
            if let Some(node) = nx {
                grads.register::<Flex>(node.id, flex(dx, &saved.dims));
            }
            if let Some(node) = ng {
                grads.register::<Flex>(node.id, flex(dgamma, &[c]));
            }
            if let Some(node) = nb {
                grads.register::<Flex>(node.id, flex(dbeta, &[c]));
            }
        }
    }

    /// The forward pass on Flex primitives: output and the statistics.
    fn forward(
        x: &FlexTensor,
        gamma: &FlexTensor,
        beta: &FlexTensor,
        dims: [usize; 4],
        eps: f64,
    ) -> Option<(FlexTensor, Saved, Vec<f32>)> {
        let (x, gamma, beta) = (
            contiguous(x.clone()),
            contiguous(gamma.clone()),
            contiguous(beta.clone()),
        );
        let (xv, gv, bv) = (f32_tensor(&x)?, f32_tensor(&gamma)?, f32_tensor(&beta)?);
        let [n, c, h, w] = dims;
        let plane = h * w;
        let (mean, var) = stats(xv, n, c, plane);
        let rstd: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / ((v as f64) + eps).sqrt()) as f32)
            .collect();
        let mut y = vec![0.0f32; xv.len()];
        per_image(&mut y, c * plane, |i, chunk| {
            for (ch, out) in chunk.chunks_exact_mut(plane).enumerate() {
                let scale = gv[ch] * rstd[ch];
                let shift = bv[ch] - mean[ch] * scale;
                let base = (i * c + ch) * plane;
                for (o, &xv) in out.iter_mut().zip(&xv[base..base + plane]) {
                    *o = xv * scale + shift;
                }
            }
        });
        Some((flex(y, &dims), Saved { dims, mean, rstd }, var))
    }

    /// Runs the training-mode forward as one node and updates `bn`'s running statistics the
    /// way Burn's module does; gives `x` back where it can't (non-f32 tensors).
    #[allow(clippy::result_large_err)]
    pub(super) fn run(bn: &BatchNorm, x: Tensor<4>) -> Result<Tensor<4>, Tensor<4>> {
        let device = x.device();
        let dims = x.dims();
        let prim = |t: Tensor<4>| t.try_into_primitive::<Ad>().ok();
        let prim1 = |t: Tensor<1>| t.try_into_primitive::<Ad>().ok();
        let (Some(xa), Some(ga), Some(ba)) =
            (prim(x.clone()), prim1(bn.gamma.val()), prim1(bn.beta.val()))
        else {
            return Err(x);
        };
        let f32_all = [xa.primitive(), ga.primitive(), ba.primitive()]
            .iter()
            .all(|t| t.dtype() == DType::F32);
        if !f32_all || bn.gamma.dims() != [dims[1]] || bn.beta.dims() != [dims[1]] {
            return Err(x);
        }
        let Some((y, saved, var)) = forward(
            xa.primitive(),
            ga.primitive(),
            ba.primitive(),
            dims,
            bn.epsilon,
        ) else {
            return Err(x);
        };
        let (mean, c) = (saved.mean.clone(), dims[1]);
        let out = match BatchNormTrain
            .prepare::<NoCheckpointing>([xa.node(), ga.node(), ba.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let xs = prep.checkpoint(&xa);
                let gs = prep.checkpoint(&ga);
                prep.finish((xs, gs, saved), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        // Running statistics: the same update (and the same tensor ops) as Burn's module.
        let stat = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [c]), &device);
        let running_mean = bn
            .running_mean
            .value_sync()
            .to_device(&device)
            .mul_scalar(1.0 - bn.momentum)
            .add(stat(mean).mul_scalar(bn.momentum));
        let running_var = bn
            .running_var
            .value_sync()
            .to_device(&device)
            .mul_scalar(1.0 - bn.momentum)
            .add(stat(var).mul_scalar(bn.momentum));
        bn.running_mean.update(running_mean.detach());
        bn.running_var.update(running_var.detach());
        Ok(Tensor::from_primitive::<Ad>(out))
    }
}

#[cfg(all(test, feature = "autodiff"))]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Distribution, Tolerance};

    fn close(a: Tensor<4>, b: Tensor<4>, tol: f32) {
        let (a, b) = (a.into_data(), b.into_data());
        a.assert_approx_eq::<f32>(&b, Tolerance::absolute(tol));
    }

    #[test]
    fn matches_burns_module_forward_backward_and_running_stats() {
        let ad = Device::flex().autodiff();
        // Non-trivial γ and β so their gradients and the scale/shift path are checked.
        let make = || {
            let mut bn = BatchNormConfig::new(5).init(&ad);
            let v = |a: [f32; 5]| Param::from_tensor(Tensor::<1>::from_floats(a, &ad));
            bn.gamma = v([0.5, -1.0, 2.0, 0.1, 1.5]);
            bn.beta = v([0.3, 0.0, -0.7, 1.0, 2.0]);
            bn
        };
        let x0 = Tensor::<4>::random([3, 5, 6, 7], Distribution::Normal(1.5, 2.0), &ad);
        let w = Tensor::<4>::random([3, 5, 6, 7], Distribution::Normal(0.0, 1.0), &ad);
        let run = |fast: bool| {
            let bn = make();
            let x = x0.clone().detach().require_grad();
            let y = if fast {
                // The kernels themselves, not a silent fallback to Burn's module.
                autodiff::run(&bn, x.clone()).unwrap_or_else(|_| panic!("the fast path runs"))
            } else {
                bn.forward(x.clone())
            };
            // A second call moves the running statistics again.
            let _ = if fast {
                batch_norm(&bn, x0.clone().detach() * 0.5)
            } else {
                bn.forward(x0.clone().detach() * 0.5)
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            let dx = x.grad(&grads).unwrap();
            let dg = bn.gamma.grad(&grads).unwrap();
            let db = bn.beta.grad(&grads).unwrap();
            let rm = bn.running_mean.value();
            let rv = bn.running_var.value();
            (y, dx, dg, db, rm, rv)
        };
        let fast = run(true);
        let burn = run(false);
        close(fast.0.inner(), burn.0.inner(), 1e-4);
        close(fast.1, burn.1, 1e-4);
        fast.2
            .into_data()
            .assert_approx_eq::<f32>(&burn.2.into_data(), Tolerance::absolute(1e-3));
        fast.3
            .into_data()
            .assert_approx_eq::<f32>(&burn.3.into_data(), Tolerance::absolute(1e-3));
        fast.4
            .into_data()
            .assert_approx_eq::<f32>(&burn.4.into_data(), Tolerance::absolute(1e-5));
        fast.5
            .into_data()
            .assert_approx_eq::<f32>(&burn.5.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn inference_uses_the_running_statistics() {
        let d = Device::flex();
        let bn = BatchNormConfig::new(2).init(&d);
        let x = Tensor::<4>::random([2, 2, 3, 3], Distribution::Normal(3.0, 1.0), &d);
        // Inference: running statistics (mean 0, var 1), so the input passes unchanged.
        close(batch_norm(&bn, x.clone()), x, 1e-4);
    }

    #[cfg(feature = "parallel")]
    #[test]
    fn the_gradient_is_deterministic_across_thread_counts() {
        let ad = Device::flex().autodiff();
        let x0 = Tensor::<4>::random([4, 3, 8, 8], Distribution::Normal(0.0, 1.0), &ad);
        let on = |threads: usize| {
            crate::conv::on_threads(threads, || {
                let bn = BatchNormConfig::new(3).init(&ad);
                let x = x0.clone().detach().require_grad();
                let y = batch_norm(&bn, x.clone());
                let grads = (y.clone() * y).sum().backward();
                x.grad(&grads).unwrap().into_data()
            })
        };
        assert_eq!(on(1), on(3));
    }
}
