//! Leaky ReLU and tanh as single autodiff nodes on the CPU.
//!
//! Burn 0.22.1's autodiff has no leaky-ReLU op of its own: it records the default composition
//! (`x < 0` mask, `x·slope`, `mask_where`), and its backward pass runs two `mask_where`s and a
//! multiplication over the whole map: ~9 % of a DCGAN training step (`perf`), whose critic has
//! a leaky ReLU after every convolution. [`leaky_relu`] computes the same function in one pass
//! forward (Flex's own fused op) and one pass backward, `dx = dy · (x >= 0 ? 1 : slope)`. Other
//! devices get Burn's op, so results never depend on which path ran.
//!
//! [`tanh`] (the generators' last layer): Flex computes it with the C library's scalar `tanhf`,
//! and Burn's autodiff computes it again in the backward pass (`1 - tanh(x)²`): 4 % of a DCGAN
//! step (`perf`). On the Flex device it is now a vectorised `expm1`-based formula (within a few
//! ulp of `tanhf`; the same bits on every CPU and in the page) and, when training, one node whose
//! backward pass is `dy · (1 - y²)` from the saved output. Other devices get Burn's op.

use crate::fastconv::{contiguous, f32_tensor};
use burn::backend::{DispatchDevice, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::activation;
use burn_flex::FlexTensor;

/// `max(x, 0) + slope · min(x, 0)` elementwise; any shape.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    #[cfg(feature = "autodiff")]
    if matches!(x.device().as_dispatch(), DispatchDevice::Autodiff(inner)
        if matches!(**inner, DispatchDevice::Flex(_)))
    {
        return autodiff::leaky_relu(x, slope);
    }
    activation::leaky_relu(x, slope)
}

/// `tanh(x)` elementwise; any shape.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match x.device().as_dispatch() {
        #[cfg(feature = "autodiff")]
        DispatchDevice::Autodiff(inner) if matches!(**inner, DispatchDevice::Flex(_)) => {
            autodiff::tanh(x)
        }
        DispatchDevice::Flex(_) => match x.clone().try_into_primitive::<Flex>() {
            Ok(t) => match flex_tanh(t) {
                Some(y) => Tensor::from_primitive::<Flex>(y),
                None => activation::tanh(x),
            },
            Err(_) => activation::tanh(x),
        },
        #[allow(unreachable_patterns)]
        _ => activation::tanh(x),
    }
}

/// [`tanh_kernel`] on a Flex tensor; `None` if it isn't f32.
fn flex_tanh(t: FlexTensor) -> Option<FlexTensor> {
    let t = contiguous(t);
    let shape = t.shape();
    let mut y = f32_tensor(&t)?.to_vec();
    tanh_slice(&mut y);
    Some(FlexTensor::from_data(TensorData::new(y, shape)))
}

/// `ln 2` in two parts: `LN2_HI` has few enough bits that `k · LN2_HI` is exact for `k < 2^8`.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `tanh(x)` from `expm1(2|x|)`: `2|x| = k·ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r - 1` by its
/// Taylor series to `r⁷`, `expm1 = 2^k (e^r - 1) + (2^k - 1)` (no cancellation for small `x`),
/// then `tanh = expm1 / (expm1 + 2)`. `|x| ≥ 9` gives ±1 (as `tanhf` does in f32). Only f32 adds,
/// multiplies and one division, so the result is the same on every CPU (and vectorises).
#[inline(always)]
fn tanh_kernel(x: f32) -> f32 {
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let t = 2.0 * x.abs().min(9.0);
    let kf = (t * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (t - kf * LN2_HI) - kf * LN2_LO;
    let q = r
        * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((kf as i32 + 127) as u32) << 23);
    let em1 = scale * q + (scale - 1.0);
    let y = (em1 / (em1 + 2.0)).copysign(x);
    if x.is_nan() { x } else { y }
}

#[inline(always)]
fn tanh_slice_impl(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = tanh_kernel(*x));
}

crate::fastconv::simd_dispatch! {
    /// [`tanh_kernel`] over a slice, in place, for the CPU it runs on.
    fn tanh_slice(v: &mut [f32]) => tanh_slice_impl
}

#[cfg(feature = "autodiff")]
mod autodiff {
    use super::*;
    use burn::backend::Autodiff;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::ops::ActivationOps;
    use burn::tensor::DType;

    type Ad = Autodiff<Flex, NoCheckpointing>;

    #[derive(Debug)]
    struct LeakyRelu;

    /// `dy · (x >= 0 ? 1 : slope)`, the same test as Flex's forward.
    fn grad(x: &[f32], dy: &[f32], slope: f32) -> Vec<f32> {
        x.iter()
            .zip(dy)
            .map(|(&x, &g)| if x >= 0.0 { g } else { slope * g })
            .collect()
    }

    impl Backward<Flex, 1> for LeakyRelu {
        type State = (NodeId, f32);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, ck: &mut Checkpointer) {
            let [parent] = ops.parents;
            let dy = grads.consume::<Flex>(&ops.node);
            let (xs, slope) = ops.state;
            let x: FlexTensor = ck.retrieve_node_output(xs);
            let Some(parent) = parent else { return };
            let (x, dy) = (contiguous(x), contiguous(dy));
            let shape = x.shape();
            let (xv, dyv) = (
                f32_tensor(&x).expect("f32 input"),
                f32_tensor(&dy).expect("f32 gradient"),
            );
            let dx = grad(xv, dyv, slope);
            let dx = FlexTensor::from_data(TensorData::new(dx, shape));
            grads.register::<Flex>(parent.id, dx);
        }
    }

    #[derive(Debug)]
    struct Tanh;

    impl Backward<Flex, 1> for Tanh {
        /// The forward's output `y`.
        type State = FlexTensor;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [parent] = ops.parents;
            let dy = grads.consume::<Flex>(&ops.node);
            let Some(parent) = parent else { return };
            let (y, dy) = (contiguous(ops.state), contiguous(dy));
            let shape = y.shape();
            let (yv, dyv) = (
                f32_tensor(&y).expect("f32 output"),
                f32_tensor(&dy).expect("f32 gradient"),
            );
            let dx: Vec<f32> = yv
                .iter()
                .zip(dyv)
                .map(|(&y, &g)| g * (1.0 - y * y))
                .collect();
            grads.register::<Flex>(parent.id, FlexTensor::from_data(TensorData::new(dx, shape)));
        }
    }

    pub(super) fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
        let xa = match x.clone().try_into_primitive::<Ad>() {
            Ok(xa) if xa.primitive().dtype() == DType::F32 => xa,
            _ => return activation::tanh(x),
        };
        let y = flex_tanh(xa.primitive().clone()).expect("f32 checked above");
        let out = match Tanh
            .prepare::<NoCheckpointing>([xa.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Tensor::from_primitive::<Ad>(out)
    }

    pub(super) fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
        let xa = match x.clone().try_into_primitive::<Ad>() {
            Ok(xa) if xa.primitive().dtype() == DType::F32 => xa,
            _ => return activation::leaky_relu(x, slope),
        };
        let forward = |t: FlexTensor| Flex::leaky_relu(t, slope.into());
        let out = match LeakyRelu
            .prepare::<NoCheckpointing>([xa.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let xs = prep.checkpoint(&xa);
                let y = forward(xa.primitive().clone());
                prep.finish((xs, slope as f32), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(xa.primitive().clone())),
        };
        Tensor::from_primitive::<Ad>(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn forward_and_gradient_match_burn() {
        let ad = Device::flex().autodiff();
        let x0 = Tensor::<4>::random([3, 4, 5, 6], Distribution::Normal(0.0, 1.0), &ad);
        // Exact zeros: the test at 0 must agree (slope 1 side, as Flex's forward).
        let x0 = x0.mask_fill(
            Tensor::<4>::random([3, 4, 5, 6], Distribution::Default, &ad).lower_elem(0.1),
            0.0,
        );
        let w = Tensor::<4>::random([3, 4, 5, 6], Distribution::Normal(0.0, 1.0), &ad);
        let run = |fast: bool| {
            let x = x0.clone().detach().require_grad();
            let y = if fast {
                leaky_relu(x.clone(), 0.2)
            } else {
                activation::leaky_relu(x.clone(), 0.2)
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            (
                y.into_data(),
                x.grad(&grads).expect("x has a gradient").into_data(),
            )
        };
        let (y_fast, g_fast) = run(true);
        let (y_burn, g_burn) = run(false);
        assert_eq!(y_fast, y_burn);
        g_fast.assert_approx_eq::<f32>(&g_burn, burn::tensor::Tolerance::absolute(1e-6));
        // The gradient really has both slopes in it.
        let g: Vec<f32> = g_fast.try_to_vec::<f32>().unwrap();
        let w: Vec<f32> = w.into_data().try_to_vec::<f32>().unwrap();
        let x: Vec<f32> = x0.into_data().try_to_vec::<f32>().unwrap();
        for ((g, w), x) in g.iter().zip(&w).zip(&x) {
            let want = if *x >= 0.0 { *w } else { 0.2 * w };
            assert!((g - want).abs() < 1e-6, "x {x} w {w} grad {g}");
        }
    }

    #[test]
    fn tanh_kernel_is_within_a_few_ulp_of_f64_tanh() {
        let mut xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.005).collect();
        xs.extend([
            1e-30, -1e-12, 1e-6, 3e-4, 0.06, 8.9, 9.0, 9.5, -15.0, 88.0, 1e30,
        ]);
        for x in xs {
            let (y, want) = (tanh_kernel(x), (x as f64).tanh());
            let err = (y as f64 - want).abs() / want.abs().max(1e-30);
            assert!(
                err < 4e-7,
                "tanh({x}) = {y}, want {want}: relative error {err}"
            );
        }
        assert_eq!(tanh_kernel(0.0), 0.0);
        assert!(tanh_kernel(-0.0).is_sign_negative());
        assert_eq!(tanh_kernel(f32::INFINITY), 1.0);
        assert_eq!(tanh_kernel(f32::NEG_INFINITY), -1.0);
        assert!(tanh_kernel(f32::NAN).is_nan());
        // The dispatched slice version (AVX-512/AVX2 where present) gives the same bits.
        let mut v: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.013).collect();
        let want: Vec<f32> = v.iter().map(|&x| tanh_kernel(x)).collect();
        tanh_slice(&mut v);
        assert_eq!(v, want);
    }

    #[test]
    fn tanh_forward_and_gradient_match_burn() {
        let ad = Device::flex().autodiff();
        let x0 = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 2.0), &ad);
        let w = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &ad);
        let run = |fast: bool| {
            let x = x0.clone().detach().require_grad();
            let y = if fast {
                tanh(x.clone())
            } else {
                activation::tanh(x.clone())
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            (y.into_data(), x.grad(&grads).expect("x grad").into_data())
        };
        let ((y_fast, g_fast), (y_burn, g_burn)) = (run(true), run(false));
        let tol = burn::tensor::Tolerance::absolute(1e-6);
        y_fast.assert_approx_eq::<f32>(&y_burn, tol);
        g_fast.assert_approx_eq::<f32>(&g_burn, tol);
        // Plain Flex (the page, `generate`) takes the same kernel.
        let plain = tanh(x0.inner());
        plain.into_data().assert_approx_eq::<f32>(&y_fast, tol);
    }

    #[test]
    fn runs_on_plain_flex_without_autodiff() {
        let d = Device::flex();
        let x = Tensor::<2>::from_floats([[-1.0, 0.0, 2.0]], &d);
        let y: Vec<f32> = leaky_relu(x, 0.1).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(y, vec![-0.1, 0.0, 2.0]);
    }
}
