//! Adversarial losses as small named functions over critic scores (each `[B]`).
//!
//! The discriminator sees three kinds of pairs: real images with their tags (`real`), generated
//! images with the tags they were asked for (`fake`), and real images with wrong tags (`wrong`,
//! the reference design's negative samples, which teach D to check the tags and not only the
//! realism). Their weights default to the reference ratio 2 : 1.5 : 0.5, normalised to 1 : 0.75 : 0.25.

use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

/// Which adversarial loss trains the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Hinge loss (Lim & Ye 2017; used by SAGAN and BigGAN).
    Hinge,
    /// Non-saturating logistic loss (Goodfellow et al. 2014).
    NonSaturating,
    /// Wasserstein loss with gradient penalty (Gulrajani et al. 2017), the reference recipe:
    /// `L(D) = -2 E[D(x,c)] + 1.5 E[D(G(z,c),c)] + 0.5 E[D(x,c')] + 20 GP`, `L(G) = -E[D(G(z,c),c)]`.
    WganGp,
}

/// Weights of the three terms of the discriminator loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairWeights {
    pub real: f64,
    pub fake: f64,
    pub wrong: f64,
}

impl Default for PairWeights {
    fn default() -> Self {
        Self {
            real: 1.0,
            fake: 0.75,
            wrong: 0.25,
        }
    }
}

impl PairWeights {
    /// Unconditional models have no wrong-tag pairs: real and fake weigh the same.
    pub fn unconditional() -> Self {
        Self {
            real: 1.0,
            fake: 1.0,
            wrong: 0.0,
        }
    }

    /// The reference recipe's weights for the Wasserstein loss: `-2 E[real] + 1.5 E[fake] + 0.5 E[wrong]`.
    pub fn reference_wgan() -> Self {
        Self {
            real: 2.0,
            fake: 1.5,
            wrong: 0.5,
        }
    }
}

/// Hinge loss for D: `w_r E[relu(1 - D(x,c))] + w_f E[relu(1 + D(G(z,c),c))] + w_w E[relu(1 + D(x,c'))]`.
pub fn d_hinge_loss(
    real: Tensor<1>,
    fake: Tensor<1>,
    wrong: Tensor<1>,
    w: PairWeights,
) -> Tensor<1> {
    relu(real.neg().add_scalar(1.0)).mean().mul_scalar(w.real)
        + relu(fake.add_scalar(1.0)).mean().mul_scalar(w.fake)
        + relu(wrong.add_scalar(1.0)).mean().mul_scalar(w.wrong)
}

/// `softplus(x) = log(1 + e^x)`, computed stably.
fn softplus(x: Tensor<1>) -> Tensor<1> {
    burn::tensor::activation::softplus(x, 1.0)
}

/// Non-saturating logistic loss for D:
/// `w_r E[softplus(-D(x,c))] + w_f E[softplus(D(G,c))] + w_w E[softplus(D(x,c'))]`.
pub fn d_logistic_loss(
    real: Tensor<1>,
    fake: Tensor<1>,
    wrong: Tensor<1>,
    w: PairWeights,
) -> Tensor<1> {
    softplus(real.neg()).mean().mul_scalar(w.real)
        + softplus(fake).mean().mul_scalar(w.fake)
        + softplus(wrong).mean().mul_scalar(w.wrong)
}

/// Generator loss used with the hinge critic: `-E[D(G(z,c),c)]`.
pub fn g_hinge_loss(fake: Tensor<1>) -> Tensor<1> {
    fake.mean().neg()
}

/// Non-saturating generator loss: `E[softplus(-D(G(z,c),c))]`.
pub fn g_nonsaturating_loss(fake: Tensor<1>) -> Tensor<1> {
    softplus(fake.neg()).mean()
}

/// Wasserstein critic loss: `-w_r E[D(x,c)] + w_f E[D(G(z,c),c)] + w_w E[D(x,c')]` (the penalty is added
/// separately, see [`gradient_penalty`]).
pub fn d_wgan_loss(
    real: Tensor<1>,
    fake: Tensor<1>,
    wrong: Tensor<1>,
    w: PairWeights,
) -> Tensor<1> {
    real.mean().mul_scalar(-w.real)
        + fake.mean().mul_scalar(w.fake)
        + wrong.mean().mul_scalar(w.wrong)
}

/// Wasserstein generator loss: `-E[D(G(z,c),c)]`.
pub fn g_wgan_loss(fake: Tensor<1>) -> Tensor<1> {
    fake.mean().neg()
}

/// Step of the central difference in [`gradient_penalty`], along a unit vector in input space.
/// 1e-3 keeps the O(eps^2) truncation error and the f32 cancellation error (~1e-7 / eps) both
/// near 1e-4 relative; 1e-2 was measured to be visibly wrong with leaky ReLU kinks.
pub const GP_EPS: f64 = 1e-3;

/// Penalty on the critic's input gradient, `E_i[(||grad_x D(x_i)||_2 - target)^2]`: with
/// `target = 1` on interpolations of real and fake images it is WGAN-GP's penalty (Gulrajani et
/// al. 2017); with `target = 0` on real images it is R1 (Mescheder et al. 2018).
///
/// `critic` maps images `[B, C, H, W]` to scores `[B]`; it is called twice (at `x +- eps v`),
/// always on `B` images. `frozen` is the same function with the critic's parameters detached
/// (`Module::no_grad` on a copy): it gives the input gradient at `x`, a pass that needs no
/// parameter gradients, and it must not consume the tracked critic's graph (a reparameterised
/// critic, e.g. spectrally normalised, shares weight nodes between all its calls).
/// Returns a `[1]` tensor whose value is the penalty and whose gradient with respect to the
/// critic's parameters is the penalty's gradient.
///
/// Why not the usual `autograd.grad(create_graph=True)`: Burn has no second-order gradients
/// (tracel-ai/burn#1942). We use the first-order directional-derivative construction instead.
/// With `g_i = grad_x D(x_i)` from an ordinary backward pass, `n_i = ||g_i||` and `v_i = g_i / n_i`,
/// the parameter gradient of `(n_i - t)^2` is `2 (n_i - t) d n_i / d theta`, and `n_i = v_i . g_i`
/// is the derivative of D along `v_i`, so (with `v_i` held fixed, which is exact to first order
/// because `v_i` is a unit vector and `d v_i` is orthogonal to `g_i`)
/// `d n_i / d theta = d/d theta [(D(x_i + eps v_i) - D(x_i - eps v_i)) / (2 eps)] + O(eps^2)`.
/// The loss is that central difference weighted by the constants `c_i = 2 (n_i - t) / B`, shifted
/// so that its value is the penalty itself. The alternative, writing D's backward pass as forward
/// ops so autodiff can differentiate it, would have to be redone for every layer type we add.
///
/// The critic may mix samples (a minibatch-standard-deviation layer makes every score depend on
/// the whole batch), so the construction never differentiates one sample's score alone: with
/// `S = sum_j D_j` and `g_i = grad_{x_i} S`, `sum_i c_i n_i = grad S . u` for the one batch-wide
/// direction `u_i = c_i v_i`, and `grad S . u` is one central difference of the batch,
/// `sum_j (D_j(x + eps u) - D_j(x - eps u)) / (2 eps)`. `u` is scaled so that no sample moves
/// by more than `eps`. For a critic whose scores are per sample this is the per-sample
/// construction term by term. `tests::gp_matches_double_backward` checks it against PyTorch's exact double backward.
pub fn gradient_penalty(
    critic: impl Fn(Tensor<4>) -> Tensor<1>,
    frozen: impl Fn(Tensor<4>) -> Tensor<1>,
    x: Tensor<4>,
    target: f64,
) -> Tensor<1> {
    let [b, c, h, w] = x.dims();
    let x = x.detach();
    // g = grad_x D(x) by an ordinary backward pass on a copy of x that asks for its gradient.
    let probe = x.clone().require_grad();
    let grads = frozen(probe.clone()).sum().backward();
    let g = match probe.grad(&grads) {
        Some(g) => g.reshape([b, c * h * w]),
        // D ignores its input: the gradient is zero.
        None => Tensor::zeros([b, c * h * w], &x.device().inner()),
    };
    let n = g.clone().square().sum_dim(1).sqrt(); // [B, 1]
    let v = g.div(n.clone().clamp_min(1e-12)).reshape([b, c, h, w]);
    let dev = n.clone().sub_scalar(target); // [B, 1]
    let penalty = dev.clone().square().mean(); // [1]
    let weights = dev.mul_scalar(2.0 / b as f64); // [B, 1], c_i
    // u = c v / max|c|: the largest step is eps along a unit vector.
    let scale = weights.clone().abs().max().into_scalar::<f32>().max(1e-30) as f64;
    let u = (v * weights.div_scalar(scale).reshape([b, 1, 1, 1])).autodiff();

    let plus = critic(x.clone() + u.clone().mul_scalar(GP_EPS)); // [B]
    let minus = critic(x - u.mul_scalar(GP_EPS)); // [B]
    // sum_j of the per-sample differences (each small) rather than a difference of two sums.
    let surrogate = (plus - minus).sum().mul_scalar(scale / (2.0 * GP_EPS)); // ~ sum_i c_i n_i
    surrogate.clone() - surrogate.detach() + penalty.autodiff()
}

/// Drift penalty `(E[real^2] + E[fake^2] + E[wrong^2]) / 3` over the critic's scores (see
/// `TrainConfig::drift`); unconditional critics have no wrong-tag scores (`wrong` empty), and
/// then it is the mean over real and fake.
pub fn drift_penalty(real: Tensor<1>, fake: Tensor<1>, wrong: Option<Tensor<1>>) -> Tensor<1> {
    let mut terms = vec![real.square().mean(), fake.square().mean()];
    terms.extend(wrong.map(|w| w.square().mean()));
    let n = terms.len() as f64;
    Tensor::cat(terms, 0).sum().div_scalar(n)
}

pub fn d_loss(
    kind: LossKind,
    real: Tensor<1>,
    fake: Tensor<1>,
    wrong: Tensor<1>,
    w: PairWeights,
) -> Tensor<1> {
    match kind {
        LossKind::Hinge => d_hinge_loss(real, fake, wrong, w),
        LossKind::NonSaturating => d_logistic_loss(real, fake, wrong, w),
        LossKind::WganGp => d_wgan_loss(real, fake, wrong, w),
    }
}

pub fn g_loss(kind: LossKind, fake: Tensor<1>) -> Tensor<1> {
    match kind {
        LossKind::Hinge => g_hinge_loss(fake),
        LossKind::NonSaturating => g_nonsaturating_loss(fake),
        LossKind::WganGp => g_wgan_loss(fake),
    }
}

#[cfg(test)]
#[rustfmt::skip]
#[path = "gp_reference.rs"]
mod gp_reference;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor<1> {
        Tensor::from_floats(v, &Device::flex())
    }

    fn val(x: Tensor<1>) -> f32 {
        x.into_scalar::<f32>()
    }

    #[test]
    fn hinge_values_by_hand() {
        // real: relu(1-2)=0, relu(1-0)=1 -> mean 0.5; fake: relu(1+0)=1, relu(1-3)=0 -> 0.5;
        // wrong: relu(1+1)=2, relu(1+1)=2 -> 2.
        let l = d_hinge_loss(
            t(&[2.0, 0.0]),
            t(&[0.0, -3.0]),
            t(&[1.0, 1.0]),
            PairWeights::default(),
        );
        assert!((val(l) - (0.5 + 0.75 * 0.5 + 0.25 * 2.0)).abs() < 1e-6);
        assert!((val(g_hinge_loss(t(&[1.0, 3.0]))) + 2.0).abs() < 1e-6);
    }

    #[test]
    fn logistic_values_by_hand() {
        let ln2 = std::f32::consts::LN_2;
        let w = PairWeights {
            real: 1.0,
            fake: 1.0,
            wrong: 1.0,
        };
        let l = d_logistic_loss(t(&[0.0]), t(&[0.0]), t(&[0.0]), w);
        assert!((val(l) - 3.0 * ln2).abs() < 1e-6);
        assert!((val(g_nonsaturating_loss(t(&[0.0]))) - ln2).abs() < 1e-6);
    }

    #[test]
    fn drift_values_by_hand() {
        // (mean(1, 9) + mean(4) + mean(0, 16)) / 3 = (5 + 4 + 8) / 3
        let d = drift_penalty(t(&[1.0, -3.0]), t(&[2.0]), Some(t(&[0.0, 4.0])));
        assert!((val(d) - 17.0 / 3.0).abs() < 1e-6);
        let d = drift_penalty(t(&[1.0, -3.0]), t(&[2.0]), None);
        assert!((val(d) - 4.5).abs() < 1e-6);
    }

    #[test]
    fn wgan_values_by_hand() {
        // -2 * mean(1, 3) + 1.5 * mean(-1, 1) + 0.5 * mean(4, 0) = -4 + 0 + 1
        let l = d_wgan_loss(
            t(&[1.0, 3.0]),
            t(&[-1.0, 1.0]),
            t(&[4.0, 0.0]),
            PairWeights::reference_wgan(),
        );
        assert!((val(l) + 3.0).abs() < 1e-6);
        assert!((val(g_wgan_loss(t(&[1.0, 3.0]))) + 2.0).abs() < 1e-6);
    }

    /// `fill(n, scale, phase)[k] = scale * sin(0.7 k + phase)`, as in tests/reference/gradient_penalty.py.
    fn fill<const D: usize>(shape: [usize; D], scale: f64, phase: f64, dev: &Device) -> Tensor<D> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|k| (scale * (0.7 * k as f64 + phase).sin()) as f32)
            .collect();
        Tensor::from_data(TensorData::new(v, shape), dev)
    }

    fn values<const D: usize>(x: Tensor<D>) -> Vec<f64> {
        x.into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    }

    /// Linear critic `D(x) = <w, x>`: the input gradient is `w` for every image, so the penalty is
    /// `(||w|| - t)^2` and its gradient `2 (||w|| - t) w / ||w||`, exactly (the central difference
    /// of a linear function has no truncation error).
    #[test]
    fn gp_of_a_linear_critic_is_exact() {
        let dev = Device::flex().autodiff();
        let w = fill([1, 3, 4, 4], 0.3, 0.2, &dev).require_grad();
        let x = fill([3, 3, 4, 4], 0.9, 1.0, &dev);
        let norm = values(w.clone()).iter().map(|v| v * v).sum::<f64>().sqrt();
        for target in [1.0, 0.0] {
            let critic = |x: Tensor<4>| {
                (x * w.clone())
                    .sum_dim(3)
                    .sum_dim(2)
                    .sum_dim(1)
                    .reshape([-1])
            };
            let gp = gradient_penalty(critic, critic, x.clone(), target);
            let value = gp.clone().into_scalar::<f32>() as f64;
            assert!(
                (value - (norm - target).powi(2)).abs() < 1e-5,
                "{value} vs {norm}"
            );
            let grad = values(w.grad(&gp.backward()).unwrap());
            for (g, wv) in grad.iter().zip(values(w.clone())) {
                let want = 2.0 * (norm - target) * wv / norm;
                assert!((g - want).abs() < 1e-4, "{g} vs {want}");
            }
        }
    }

    /// The critic of tests/reference/gradient_penalty.py: conv3x3(3->4) -> leaky ReLU -> conv3x3
    /// stride 2 (4->4) -> leaky ReLU -> linear(64->1), on x `[2, 3, 8, 8]`. Parameters and input
    /// come from `fill`, so both sides build the same numbers.
    fn reference_gradients(target: f64) -> (f64, Vec<Vec<f64>>) {
        use burn::tensor::activation::leaky_relu;
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let dev = Device::flex().autodiff();
        let w1 = fill([4, 3, 3, 3], 0.4, 0.1, &dev).require_grad();
        let b1 = fill([4], 0.1, 0.2, &dev).require_grad();
        let w2 = fill([4, 4, 3, 3], 0.3, 0.3, &dev).require_grad();
        let b2 = fill([4], 0.1, 0.4, &dev).require_grad();
        let w3 = fill([64], 0.25, 0.5, &dev).require_grad();
        let b3 = fill([1], 0.1, 0.6, &dev).require_grad();
        let critic = |x: Tensor<4>| {
            let opts = |s| ConvOptions::new([s, s], [1, 1], [1, 1], 1);
            let h = leaky_relu(conv2d(x, w1.clone(), Some(b1.clone()), opts(1)), 0.2);
            let h = leaky_relu(conv2d(h, w2.clone(), Some(b2.clone()), opts(2)), 0.2);
            let h: Tensor<2> = h.flatten(1, 3);
            let out: Tensor<2> = h.matmul(w3.clone().reshape([64, 1])) + b3.clone().reshape([1, 1]);
            out.reshape([-1])
        };
        let x = fill([2, 3, 8, 8], 0.8, 0.0, &dev);
        let gp = gradient_penalty(critic, critic, x, target);
        let value = gp.clone().into_scalar::<f32>() as f64;
        let grads = gp.backward();
        let g1 = |p: &Tensor<1>| p.grad(&grads).map(values).unwrap_or(vec![0.0; p.dims()[0]]);
        let g4 = |p: &Tensor<4>| values(p.grad(&grads).unwrap());
        (
            value,
            vec![g4(&w1), g1(&b1), g4(&w2), g1(&b2), g1(&w3), g1(&b3)],
        )
    }

    /// Relative error `||a - b|| / ||b||` (absolute when `b` is zero).
    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm = b.iter().map(|y| y * y).sum::<f64>().sqrt();
        if norm > 0.0 { diff / norm } else { diff }
    }

    /// The penalty's parameter gradients agree with PyTorch's exact double backward to 1e-3
    /// relative (f32 here, f64 there; the construction itself is exact to O(eps^2) away from
    /// leaky-ReLU kinks).
    #[test]
    fn gp_matches_double_backward() {
        use super::gp_reference::*;
        let cases: [(f64, f64, [&[f64]; 6]); 2] = [
            (
                1.0,
                GP_VALUE,
                [
                    &GP_GRAD_W1,
                    &GP_GRAD_B1,
                    &GP_GRAD_W2,
                    &GP_GRAD_B2,
                    &GP_GRAD_W3,
                    &GP_GRAD_B3,
                ],
            ),
            (
                0.0,
                R1_VALUE,
                [
                    &R1_GRAD_W1,
                    &R1_GRAD_B1,
                    &R1_GRAD_W2,
                    &R1_GRAD_B2,
                    &R1_GRAD_W3,
                    &R1_GRAD_B3,
                ],
            ),
        ];
        for (target, want_value, want_grads) in cases {
            let (value, grads) = reference_gradients(target);
            assert!(
                (value - want_value).abs() / want_value < 1e-4,
                "penalty {value} vs {want_value}"
            );
            for (i, (got, want)) in grads.iter().zip(want_grads).enumerate() {
                let err = rel_err(got, want);
                eprintln!("target {target}, parameter {i}: relative error {err:.2e}");
                assert!(
                    err < 1e-3,
                    "target {target}, parameter {i}: relative error {err}"
                );
            }
        }
    }

    /// A critic that mixes samples (each score reads the batch's mean and standard deviation of
    /// the features, as StyleGAN2's minibatch-stddev layer does): the penalty's parameter
    /// gradient still matches central differences of the penalty's own value. The critic is
    /// smooth (tanh), so the penalty is differentiable and the central differences are exact to
    /// O(delta^2). Scoring each sample's perturbation on its own, the construction used before
    /// critics could mix samples, misses the cross-sample terms: the test checks that it would
    /// fail.
    #[test]
    fn gp_is_exact_for_critics_that_mix_samples() {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let dev = Device::flex().autodiff();
        let x = fill([3, 2, 6, 6], 0.8, 0.3, &dev);
        let shape = [3, 2, 3, 3];
        let w_values = values(fill(shape, 0.4, 0.1, &dev));
        let weight = |v: &[f64]| {
            let v: Vec<f32> = v.iter().map(|x| *x as f32).collect();
            Tensor::<4>::from_data(TensorData::new(v, shape), &dev)
        };
        let critic_of = |w: Tensor<4>| {
            move |x: Tensor<4>| -> Tensor<1> {
                let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
                // [B, 3]: each output channel's mean activation.
                let h: Tensor<2> = conv2d(x, w.clone(), None, opts)
                    .tanh()
                    .mean_dim(3)
                    .mean_dim(2)
                    .flatten(1, 3);
                let [b, _] = h.dims();
                let mean = h.clone().mean_dim(0); // [1, 3]
                let var = (h.clone() - mean.clone()).powi_scalar(2).mean_dim(0);
                let std = var.add_scalar(1e-2).sqrt().sum_dim(1).repeat_dim(0, b); // [B, 1]
                let centred = (h - mean.mul_scalar(0.5)).powi_scalar(2).sum_dim(1); // [B, 1]
                (centred + std.mul_scalar(2.0)).reshape([b])
            }
        };
        // The per-sample construction: each sample moved along its own unit vector, the score
        // differences weighted afterwards.
        let per_sample = |w: Tensor<4>, target: f64| {
            let critic = critic_of(w);
            let [b, c, h, ww] = x.dims();
            let probe = x.clone().detach().require_grad();
            let grads = critic(probe.clone()).sum().backward();
            let g = probe.grad(&grads).unwrap().reshape([b, c * h * ww]);
            let n = g.clone().square().sum_dim(1).sqrt();
            let v = g.div(n.clone()).reshape([b, c, h, ww]).autodiff();
            let weights = n.sub_scalar(target).mul_scalar(2.0 / b as f64).reshape([b]);
            let plus = critic(x.clone().detach() + v.clone().mul_scalar(GP_EPS));
            let minus = critic(x.clone().detach() - v.mul_scalar(GP_EPS));
            ((plus - minus).div_scalar(2.0 * GP_EPS) * weights.autodiff()).sum()
        };
        for target in [1.0, 0.0] {
            let penalty = |v: &[f64]| {
                let critic = critic_of(weight(v));
                gradient_penalty(&critic, &critic, x.clone(), target)
            };
            let w = weight(&w_values).require_grad();
            let critic = critic_of(w.clone());
            let gp = gradient_penalty(&critic, &critic, x.clone(), target);
            let got = values(w.grad(&gp.backward()).unwrap());
            let w = weight(&w_values).require_grad();
            let old = values(w.grad(&per_sample(w.clone(), target).backward()).unwrap());
            let delta = 1e-2;
            let numeric: Vec<f64> = (0..w_values.len())
                .map(|k| {
                    let at = |d: f64| {
                        let mut v = w_values.clone();
                        v[k] += d;
                        penalty(&v).into_scalar::<f32>() as f64
                    };
                    (at(delta) - at(-delta)) / (2.0 * delta)
                })
                .collect();
            let err = rel_err(&got, &numeric);
            let err_old = rel_err(&old, &numeric);
            eprintln!("target {target}: relative error {err:.2e} (per sample: {err_old:.2e})");
            assert!(err < 3e-3, "target {target}: relative error {err}");
            assert!(
                err_old > 1e-2,
                "target {target}: the test cannot tell ({err_old})"
            );
        }
    }
}
