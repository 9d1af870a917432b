//! The convolutional body that the tagger and the shape encoder share: a 4x4 stride-2 stem, then
//! stages of (3x3 stride-2 conv, 3x3 conv), each conv followed by batch norm and leaky ReLU, the
//! channels doubling per stage up to a ceiling. The networks hold its parts as their own `stem`
//! and `stages` fields, so their weights files name the tensors as before.

use burn::nn::{
    BatchNorm, BatchNormConfig, PaddingConfig2d,
    conv::{Conv2d, Conv2dConfig},
};
use burn::prelude::*;
use kernels::act::leaky_relu;
use kernels::conv::conv2d;
use kernels::norm::batch_norm;

use crate::ModelError;
use crate::arch::{check_sizes, limits};

/// conv (optionally stride 2, no bias) - BN, before the activation.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBn {
    fn new(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Self {
        let pad = (k - stride).div_ceil(2);
        Self {
            conv: Conv2dConfig::new([c_in, c_out], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// `x`: `[B, C_in, H, W]` -> `[B, C_out, H / stride, W / stride]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        batch_norm(&self.bn, conv2d(&self.conv, x))
    }
}

/// One downsampling stage: a stride-2 conv then a same-size conv.
#[derive(Module, Debug)]
pub struct DownStage {
    down: ConvBn,
    same: ConvBn,
}

/// The sizes of a stack, from the network's config; `what` names the network in messages.
pub(crate) struct StackShape<'a> {
    pub what: &'a str,
    pub in_channels: usize,
    pub resolution: usize,
    pub channels: usize,
    pub max_channels: usize,
    pub final_size: usize,
}

impl StackShape<'_> {
    /// Channels after stage `i` (0: after the stem).
    pub fn channels_at(&self, i: usize) -> usize {
        (self.channels << i).min(self.max_channels)
    }

    /// Number of stages after the stem: `resolution / 2` must be a power-of-two multiple of
    /// `final_size`.
    pub fn stages(&self) -> Result<usize, ModelError> {
        let half = self.resolution / 2;
        let f = self.final_size;
        if self.resolution < 4
            || f == 0
            || half < f
            || !half.is_multiple_of(f)
            || !(half / f).is_power_of_two()
        {
            return Err(ModelError::BadConfig(format!(
                "{} resolution {} / 2 is not a power-of-two multiple of final_size {f}",
                self.what, self.resolution
            )));
        }
        Ok((half / f).trailing_zeros() as usize)
    }

    /// The sizes, the stack's and the network's own `sizes`, are within kyara's limits and the
    /// channel counts fit each other (sizes being positive is the network's to check), then the
    /// whole network's parameters, the stack's and `head(last channels)`, are too: a card from
    /// elsewhere claiming a huge network is an error before anything is allocated.
    pub fn validate(
        &self,
        sizes: &[(&str, usize, usize)],
        head: impl FnOnce(u64) -> u64,
    ) -> Result<(), ModelError> {
        let n = self.stages()?;
        if self.max_channels < self.channels {
            return Err(ModelError::BadConfig(format!(
                "{} max_channels is smaller than channels",
                self.what
            )));
        }
        let stack = [
            ("resolution", self.resolution, limits::MAX_RESOLUTION),
            ("channels", self.channels, limits::MAX_CHANNELS),
            ("max_channels", self.max_channels, limits::MAX_CHANNELS),
        ];
        check_sizes(self.what, &[&stack[..], sizes].concat(), || {
            let c = |i: usize| self.channels_at(i) as u64;
            // Conv weights (no bias) and batch norm's scale and shift.
            let mut p = self.in_channels as u64 * c(0) * 16 + 2 * c(0);
            for i in 0..n {
                p += 9 * c(i) * c(i + 1) + 9 * c(i + 1) * c(i + 1) + 4 * c(i + 1);
            }
            p + head(c(n))
        })
    }

    /// The stem and the stages, and the channels of the last feature map.
    pub fn build(&self, device: &Device) -> Result<(ConvBn, Vec<DownStage>, usize), ModelError> {
        let n = self.stages()?;
        let stem = ConvBn::new(self.in_channels, self.channels_at(0), 4, 2, device);
        let stages = (0..n)
            .map(|i| {
                let (c_in, c_out) = (self.channels_at(i), self.channels_at(i + 1));
                DownStage {
                    down: ConvBn::new(c_in, c_out, 3, 2, device),
                    same: ConvBn::new(c_out, c_out, 3, 1, device),
                }
            })
            .collect();
        Ok((stem, stages, self.channels_at(n)))
    }
}

/// The stack's last feature map. `x`: `[B, C_in, R, R]` -> `[B, C_last, final, final]`.
pub(crate) fn forward(stem: &ConvBn, stages: &[DownStage], x: Tensor<4>, slope: f64) -> Tensor<4> {
    let mut h = leaky_relu(stem.forward(x), slope); // [B, C0, R/2, R/2]
    for stage in stages {
        h = leaky_relu(stage.down.forward(h), slope); // [B, C_i+1, S/2, S/2]
        h = leaky_relu(stage.same.forward(h), slope);
    }
    h
}
