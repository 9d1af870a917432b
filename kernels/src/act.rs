//! Leaky ReLU, tanh and pixel shuffle as single autodiff nodes on the CPU.
//!
//! Burn 0.22.1's autodiff has no leaky-ReLU op of its own: it records the default composition
//! (`x < 0` mask, `x·slope`, `mask_where`), and its backward pass runs two `mask_where`s and a
//! multiplication over the whole map: ~9 % of a DCGAN training step (`perf`), whose critic has
//! a leaky ReLU after every convolution. [`leaky_relu`] computes the same function in one pass
//! forward (Flex's own fused op) and one pass backward, `dx = dy · (x >= 0 ? 1 : slope)`. Other
//! devices get Burn's op, so results never depend on which path ran.
//!
//! [`pixel_shuffle`]: Burn records it as reshape, permute, reshape, whose backward pass copies
//! the gradient through strided views (2x PyTorch's time in `trainer bench --ops`); here it is
//! one copy forward and one copy back, the exact inverse permutation.
//!
//! [`tanh`] (the generators' last layer): Flex computes it with the C library's scalar `tanhf`,
//! and Burn's autodiff computes it again in the backward pass (`1 - tanh(x)²`): 4 % of a DCGAN
//! step (`perf`). On the Flex device it is now a vectorised `expm1`-based formula (within a few
//! ulp of `tanhf`; the same bits on every CPU and in the page) and, when training, one node whose
//! backward pass is `dy · (1 - y²)` from the saved output. Other devices get Burn's op.

use crate::conv::{contiguous, f32_tensor};
use burn::backend::{DispatchDevice, Flex, TensorMetadata};
use burn::nn::PixelShuffle;
use burn::prelude::*;
use burn::tensor::activation;
use burn_flex::FlexTensor;

/// `max(x, 0) + slope · min(x, 0)` elementwise; any shape.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    #[cfg(feature = "autodiff")]
    if on_autodiff_flex(&x) {
        return autodiff::leaky_relu(x, slope);
    }
    activation::leaky_relu(x, slope)
}

/// `shuffle.forward(x)`: `[B, C·r², H, W]` -> `[B, C, H·r, W·r]` with
/// `y[b][c][h·r + i][w·r + j] = x[b][c·r² + i·r + j][h][w]` (Burn's and PyTorch's order).
pub fn pixel_shuffle(shuffle: &PixelShuffle, x: Tensor<4>) -> Tensor<4> {
    let r = shuffle.upscale_factor;
    let dims = x.dims();
    if r == 0 || !dims[1].is_multiple_of(r * r) {
        return shuffle.forward(x);
    }
    #[cfg(feature = "autodiff")]
    if on_autodiff_flex(&x) {
        return autodiff::pixel_shuffle(shuffle, x, r);
    }
    on_flex(x, |t| flex_shuffle(t, r, dims), |x| shuffle.forward(x))
}

/// The output shape of a pixel shuffle by `r` of `[b, c, h, w]`.
fn shuffled([b, c, h, w]: [usize; 4], r: usize) -> [usize; 4] {
    [b, c / (r * r), h * r, w * r]
}

/// The pixel shuffle (`back == false`: `x` -> `y`) or its inverse (`back`: `y` -> `x`), for an
/// input of shape `dims`; `src` and the result are in the direction's own layout.
fn permute(src: &[f32], dims: [usize; 4], r: usize, back: bool) -> Vec<f32> {
    let [_, c, h, w] = dims;
    let co = c / (r * r);
    let img = c * h * w;
    let mut dst = vec![0.0f32; src.len()];
    // One image per call, spread over threads.
    crate::conv::per_group(&mut dst, img, 1, |bi, _, dst, _, _| {
        let src = &src[bi * img..][..img];
        for ci in 0..co {
            for hy in 0..h {
                for i in 0..r {
                    let row = (ci * h * r + hy * r + i) * w * r;
                    for j in 0..r {
                        let plane = ((ci * r * r + i * r + j) * h + hy) * w;
                        for wx in 0..w {
                            let (yi, xi) = (row + wx * r + j, plane + wx);
                            if back {
                                dst[xi] = src[yi];
                            } else {
                                dst[yi] = src[xi];
                            }
                        }
                    }
                }
            }
        }
    });
    dst
}

fn flex_shuffle(t: FlexTensor, r: usize, dims: [usize; 4]) -> Option<FlexTensor> {
    let t = contiguous(t);
    let y = permute(f32_tensor(&t)?, dims, r, false);
    Some(FlexTensor::from_data(TensorData::new(y, shuffled(dims, r))))
}

/// `tanh(x)` elementwise; any shape.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "autodiff")]
    if on_autodiff_flex(&x) {
        return autodiff::tanh(x);
    }
    on_flex(x, flex_tanh, activation::tanh)
}

/// Whether `x` lives on Flex under autodiff (where the autodiff nodes below apply).
#[cfg(feature = "autodiff")]
pub(crate) fn on_autodiff_flex<const D: usize>(x: &Tensor<D>) -> bool {
    matches!(x.device().as_dispatch(), DispatchDevice::Autodiff(inner)
        if matches!(**inner, DispatchDevice::Flex(_)))
}

/// `flex(x)` on the plain Flex device, `burn(x)` (Burn's op) on other devices or where `flex`
/// declines (not f32).
fn on_flex<const D: usize>(
    x: Tensor<D>,
    flex: impl FnOnce(FlexTensor) -> Option<FlexTensor>,
    burn: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let done = match x.device().as_dispatch() {
        DispatchDevice::Flex(_) => x.clone().try_into_primitive::<Flex>().ok().and_then(flex),
        // Unreachable where Flex is the only backend compiled in (the page's CPU module).
        #[allow(unreachable_patterns)]
        _ => None,
    };
    match done {
        Some(y) => Tensor::from_primitive::<Flex>(y),
        None => burn(x),
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

crate::conv::simd_dispatch! {
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
    struct Shuffle;

    impl Backward<Flex, 1> for Shuffle {
        /// The input's shape and the factor.
        type State = ([usize; 4], usize);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [parent] = ops.parents;
            let dy = contiguous(grads.consume::<Flex>(&ops.node));
            let Some(parent) = parent else { return };
            let (dims, r) = ops.state;
            let dx = permute(f32_tensor(&dy).expect("f32 gradient"), dims, r, true);
            grads.register::<Flex>(parent.id, FlexTensor::from_data(TensorData::new(dx, dims)));
        }
    }

    pub(super) fn pixel_shuffle(shuffle: &PixelShuffle, x: Tensor<4>, r: usize) -> Tensor<4> {
        let dims = x.dims();
        let xa = match x.clone().try_into_primitive::<Ad>() {
            Ok(xa) if xa.primitive().dtype() == DType::F32 => xa,
            _ => return shuffle.forward(x),
        };
        let y = flex_shuffle(xa.primitive().clone(), r, dims).expect("f32 checked above");
        let out = match Shuffle
            .prepare::<NoCheckpointing>([xa.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((dims, r), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Tensor::from_primitive::<Ad>(out)
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
    fn pixel_shuffle_and_its_gradient_are_burns_exactly() {
        let ad = Device::flex().autodiff();
        for (r, dims) in [(2, [2, 8, 5, 3]), (3, [1, 18, 2, 4]), (1, [2, 3, 4, 4])] {
            let shuffle = burn::nn::PixelShuffleConfig::new(r).init();
            let x0 = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &ad);
            let w = Tensor::<4>::random(shuffled(dims, r), Distribution::Normal(0.0, 1.0), &ad);
            let run = |fast: bool| {
                let x = x0.clone().detach().require_grad();
                let y = if fast {
                    pixel_shuffle(&shuffle, x.clone())
                } else {
                    shuffle.forward(x.clone())
                };
                let grads = (y.clone() * w.clone()).sum().backward();
                (y.into_data(), x.grad(&grads).expect("x grad").into_data())
            };
            let ((y_fast, g_fast), (y_burn, g_burn)) = (run(true), run(false));
            assert_eq!(y_fast, y_burn, "r = {r}");
            assert_eq!(g_fast, g_burn, "r = {r}");
            // Plain Flex (the page) too.
            assert_eq!(pixel_shuffle(&shuffle, x0.inner()).into_data(), y_burn);
        }
    }

    #[test]
    fn runs_on_plain_flex_without_autodiff() {
        let d = Device::flex();
        let x = Tensor::<2>::from_floats([[-1.0, 0.0, 2.0]], &d);
        let y: Vec<f32> = leaky_relu(x, 0.1).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(y, vec![-0.1, 0.0, 2.0]);
    }
}
