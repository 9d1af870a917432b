//! Leaky ReLU as one autodiff node on the CPU.
//!
//! Burn 0.22.1's autodiff has no leaky-ReLU op of its own: it records the default composition
//! (`x < 0` mask, `x·slope`, `mask_where`), and its backward pass runs two `mask_where`s and a
//! multiplication over the whole map: ~9 % of a DCGAN training step (`perf`), whose critic has
//! a leaky ReLU after every convolution. [`leaky_relu`] computes the same function in one pass
//! forward (Flex's own fused op) and one pass backward, `dx = dy · (x >= 0 ? 1 : slope)`. Other
//! devices get Burn's op, so results never depend on which path ran.

#[cfg(feature = "autodiff")]
use burn::backend::DispatchDevice;
use burn::prelude::*;
use burn::tensor::activation;

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

#[cfg(feature = "autodiff")]
mod autodiff {
    use super::*;
    use crate::fastconv::{contiguous, f32_tensor};
    use burn::backend::TensorMetadata;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::ops::ActivationOps;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::DType;
    use burn_flex::FlexTensor;

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
    fn runs_on_plain_flex_without_autodiff() {
        let d = Device::flex();
        let x = Tensor::<2>::from_floats([[-1.0, 0.0, 2.0]], &d);
        let y: Vec<f32> = leaky_relu(x, 0.1).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(y, vec![-0.1, 0.0, 2.0]);
    }
}
