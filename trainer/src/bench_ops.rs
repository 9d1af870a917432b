//! `trainer bench --ops`: the layers kyara's networks are made of, timed one at a time at the
//! shapes they run at in a batch-64 training step, forward alone and forward + backward (input and
//! parameter gradients). `bench/reference/ops_torch.py` times the same layers in PyTorch, so the
//! per-op ratios show where the framework gap of whole training steps comes from.

use std::time::Instant;

use burn::nn::{
    BatchNormConfig, LinearConfig, PaddingConfig2d, PixelShuffleConfig,
    conv::{Conv2dConfig, ConvTranspose2dConfig},
};
use burn::prelude::*;
use serde::Serialize;

use crate::bench::median;

#[derive(Debug, Clone, Serialize)]
pub struct OpRow {
    pub op: String,
    /// Input shape.
    pub input: Vec<usize>,
    /// Median milliseconds of the forward pass (output read back).
    pub forward_ms: f64,
    /// Median milliseconds of forward + backward (input and parameter gradients read back).
    pub forward_backward_ms: f64,
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps)
            .map(|_| {
                let t0 = Instant::now();
                f();
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// Times `layer` on a random input of `shape`, on `device` (forward) and its autodiff twin.
fn case<const D: usize, const E: usize>(
    op: &str,
    shape: [usize; D],
    reps: usize,
    device: &Device,
    build: impl Fn(&Device) -> Box<dyn Fn(Tensor<D>) -> Tensor<E>>,
) -> OpRow {
    let dist = burn::tensor::Distribution::Normal(0.0, 1.0);
    let layer = build(device);
    let x = Tensor::<D>::random(shape, dist, device);
    let forward_ms = time(reps, || {
        let _ = layer(x.clone()).into_data();
    });
    let ad = device.clone().autodiff();
    let layer = build(&ad);
    let x = Tensor::<D>::random(shape, dist, &ad).require_grad();
    let forward_backward_ms = time(reps, || {
        let grads = layer(x.clone()).sum().backward();
        let _ = x.grad(&grads).map(|g| g.into_data());
    });
    OpRow {
        op: op.into(),
        input: shape.to_vec(),
        forward_ms,
        forward_backward_ms,
    }
}

/// The per-op table at batch `b`.
pub fn run(b: usize, reps: usize, device: &Device) -> Vec<OpRow> {
    let pad1 = || PaddingConfig2d::Explicit(1, 1, 1, 1);
    vec![
        case(
            "conv2d 3x3 64->64 (G trunk)",
            [b, 64, 16, 16],
            reps,
            device,
            |d| {
                let m = Conv2dConfig::new([64, 64], [3, 3])
                    .with_padding(pad1())
                    .init(d);
                Box::new(move |x| m.forward(x))
            },
        ),
        case(
            "conv2d 3x3 64->128 (G up stage)",
            [b, 64, 16, 16],
            reps,
            device,
            |d| {
                let m = Conv2dConfig::new([64, 128], [3, 3])
                    .with_padding(pad1())
                    .init(d);
                Box::new(move |x| m.forward(x))
            },
        ),
        case(
            "conv2d 4x4 s2 3->32 (D stem)",
            [b, 3, 64, 64],
            reps,
            device,
            |d| {
                let m = Conv2dConfig::new([3, 32], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(pad1())
                    .init(d);
                Box::new(move |x| m.forward(x))
            },
        ),
        case(
            "conv2d 3x3 32->64 (D block)",
            [b, 32, 32, 32],
            reps,
            device,
            |d| {
                let m = Conv2dConfig::new([32, 64], [3, 3])
                    .with_padding(pad1())
                    .init(d);
                Box::new(move |x| m.forward(x))
            },
        ),
        case(
            "conv_transpose2d 4x4 s2 256->128 (DCGAN G)",
            [b, 256, 8, 8],
            reps,
            device,
            |d| {
                let m = ConvTranspose2dConfig::new([256, 128], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(d);
                Box::new(move |x| m.forward(x))
            },
        ),
        case(
            "conv_transpose2d 4x4 s2 64->32 (DCGAN G)",
            [b, 64, 32, 32],
            reps,
            device,
            |d| {
                let m = ConvTranspose2dConfig::new([64, 32], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(d);
                Box::new(move |x| m.forward(x))
            },
        ),
        case(
            "batch_norm 64 (train)",
            [b, 64, 16, 16],
            reps,
            device,
            |d| {
                let m = BatchNormConfig::new(64).init(d);
                Box::new(move |x| m.forward(x))
            },
        ),
        case(
            "pixel_shuffle x2, 128 ch",
            [b, 128, 16, 16],
            reps,
            device,
            |_| {
                let m = PixelShuffleConfig::new(2).init();
                Box::new(move |x| m.forward(x))
            },
        ),
        case("linear 150->16384 (G dense)", [b, 150], reps, device, |d| {
            let m = LinearConfig::new(150, 16384).init(d);
            Box::new(move |x: Tensor<2>| m.forward(x))
        }),
    ]
}

pub fn markdown(rows: &[OpRow]) -> String {
    let mut s =
        String::from("| op | input | forward ms | forward + backward ms |\n|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {:?} | {:.2} | {:.2} |\n",
            r.op, r.input, r.forward_ms, r.forward_backward_ms
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_runs_and_backward_costs_more_than_nothing() {
        let rows = run(2, 1, &Device::flex());
        assert_eq!(rows.len(), 9);
        for r in rows {
            assert!(r.forward_ms > 0.0 && r.forward_backward_ms > 0.0, "{r:?}");
        }
    }
}
