//! The conditional GAN of the reference design: a residual generator with pixel-shuffle
//! upsampling and a residual projection discriminator that pools features from several stages.
//!
//! Conditioning in D is by **projection** (Miyato & Koyama 2018): `D(x, c) = psi(h) + <W c, h>`,
//! with `h` the pooled multi-stage features. It is chosen over an auxiliary-classifier head
//! because the reference loss scores image/tag *pairs* (`D(x, c_wrong)` for negative samples),
//! which a projection head does directly and exactly, and because `c` may take real values
//! (tag-strength sliders) without any change. It also lets the trainer compute `h` once for a
//! real image and score it against both its true and its wrong tags.

use burn::nn::{
    BatchNorm, BatchNormConfig, Linear, LinearConfig, PRelu, PReluConfig, PaddingConfig2d,
    PixelShuffle, PixelShuffleConfig,
    conv::{Conv2d, Conv2dConfig},
};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use kernels::act::leaky_relu;
use kernels::conv::conv2d;
use kernels::norm::batch_norm;
use serde::{Deserialize, Serialize};

use super::limits::{MAX_BLOCKS, MAX_CHANNELS, MAX_LATENT, MAX_RESOLUTION, MAX_TAGS};
use super::{
    DiscriminatorModule, Family, FamilyOptions, GeneratorInput, GeneratorModule, GeneratorSizes,
    check_sizes, unsupported,
};
use crate::ModelError;

/// Activation used inside the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Prelu,
}

/// The resnet-cgan generator. `ResnetCganGeneratorConfig::init` builds it; the exported model card carries
/// this config so nothing re-enters shapes by hand.
#[derive(Config, Debug)]
pub struct ResnetCganGeneratorConfig {
    /// Size of the latent vector z.
    #[config(default = 128)]
    pub latent_dim: usize,
    /// Length of the tag-condition vector (the vocabulary size).
    pub num_tags: usize,
    /// Output side in pixels (a power-of-two multiple of `init_size`: 64, 128, ...).
    #[config(default = 64)]
    pub resolution: usize,
    /// Side of the first feature map made by the dense layer.
    #[config(default = 16)]
    pub init_size: usize,
    /// Channels of the residual trunk.
    #[config(default = 64)]
    pub channels: usize,
    /// Number of residual blocks in the trunk.
    #[config(default = 4)]
    pub res_blocks: usize,
    /// Smallest channel count of an upsampling stage (channels halve per stage down to this).
    #[config(default = 16)]
    pub min_channels: usize,
    /// Kernel of the last convolution to RGB.
    #[config(default = 3)]
    pub out_kernel: usize,
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// ICNR initialisation of the upsampling convolutions (Aitken et al. 2017): see [`icnr`].
    /// Only how training starts; a trained generator runs the same either way.
    #[config(default = true)]
    pub icnr: bool,
    /// How each stage doubles the side: `"pixel-shuffle"` (conv3x3 to 4x the channels, then
    /// sub-pixel shuffle; the reference design) or `"nearest"` (nearest-neighbour resize, then
    /// conv3x3: no checkerboard by construction, Odena et al. 2016). Same multiply-adds.
    #[config(default = "Upsample::PixelShuffle")]
    pub upsample: Upsample,
}

/// How the generator's stages double the side (see `ResnetCganGeneratorConfig::upsample`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Upsample {
    PixelShuffle,
    Nearest,
}

/// The resnet-cgan discriminator (critic).
#[derive(Config, Debug)]
pub struct ResnetCganDiscriminatorConfig {
    pub num_tags: usize,
    #[config(default = 64)]
    pub resolution: usize,
    /// Channels after the stem; doubled per stage up to `max_channels`.
    #[config(default = 32)]
    pub channels: usize,
    #[config(default = 256)]
    pub max_channels: usize,
    /// Side of the last stage's feature map.
    #[config(default = 4)]
    pub final_size: usize,
    #[config(default = 0.2)]
    pub leaky_slope: f64,
    /// Minibatch standard deviation (Karras et al. 2018) over groups of this many images before
    /// the last features ([`MinibatchStd`]); 0 or 1 turns it off.
    #[config(default = 0)]
    pub mbstd_group: usize,
}

fn conv(c_in: usize, c_out: usize, k: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device)
}

fn log2_ratio(big: usize, small: usize, what: &str) -> Result<usize, ModelError> {
    if small == 0 || big < small || !big.is_multiple_of(small) || !(big / small).is_power_of_two() {
        return Err(ModelError::BadConfig(format!(
            "{what}: {big} is not a power-of-two multiple of {small}"
        )));
    }
    Ok((big / small).trailing_zeros() as usize)
}

/// Activation module: plain ReLU, or PReLU with one learned slope per channel.
#[derive(Module, Debug)]
pub struct Act {
    prelu: Option<PRelu>,
}

impl Act {
    fn new(kind: Activation, channels: usize, device: &Device) -> Self {
        let prelu = match kind {
            Activation::Relu => None,
            Activation::Prelu => Some(
                PReluConfig::new()
                    .with_num_parameters(channels)
                    .init(device),
            ),
        };
        Self { prelu }
    }

    /// `x`: `[B, C, H, W]` -> same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.prelu {
            None => relu(x),
            Some(p) => p.forward(x),
        }
    }
}

/// conv3x3 - BN - act - conv3x3 - BN, plus the identity.
#[derive(Module, Debug)]
pub struct ResBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    act: Act,
    conv2: Conv2d,
    bn2: BatchNorm,
}

impl ResBlock {
    pub(crate) fn new(c: usize, kind: Activation, device: &Device) -> Self {
        Self {
            conv1: conv(c, c, 3, device),
            bn1: BatchNormConfig::new(c).init(device),
            act: Act::new(kind, c, device),
            conv2: conv(c, c, 3, device),
            bn2: BatchNormConfig::new(c).init(device),
        }
    }

    /// `x`: `[B, C, H, W]` -> `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self
            .act
            .forward(batch_norm(&self.bn1, conv2d(&self.conv1, x.clone())));
        x + batch_norm(&self.bn2, conv2d(&self.conv2, h))
    }
}

/// ICNR initialisation of a convolution that feeds a pixel shuffle by 2 (`[4 C, C_in, k, k]`):
/// the four sub-pixel filters of every output channel `c` (rows `4c .. 4c + 4`, the shuffle's
/// order) start as copies of one freshly initialised filter, so at initialisation the stage is
/// a nearest-neighbour upsampling and draws no checkerboard. Training moves them apart only as
/// far as the loss asks.
fn icnr(mut conv: Conv2d) -> Conv2d {
    let [c4, c_in, kh, kw] = conv.weight.dims();
    let c = c4 / 4;
    let spread = |t: Tensor<2>| {
        let [_, n] = t.dims();
        t.narrow(0, 0, c)
            .reshape([c, 1, n])
            .repeat_dim(1, 4)
            .reshape([c4, n])
    };
    // Computed from detached values and made a leaf again: on an autodiff device the copies
    // must not keep the graph of the slicing (a later backward would find it consumed).
    fn leaf<const D: usize>(old: &Tensor<D>, new: Tensor<D>) -> Tensor<D> {
        new.detach().set_require_grad(old.is_require_grad())
    }
    conv.weight = conv.weight.map(|w| {
        let new = spread(w.clone().detach().reshape([c4, c_in * kh * kw]));
        leaf(&w, new.reshape([c4, c_in, kh, kw]))
    });
    conv.bias = conv.bias.map(|b| {
        b.map(|b| {
            let new = spread(b.clone().detach().reshape([c4, 1])).reshape([c4]);
            leaf(&b, new)
        })
    });
    conv
}

/// conv3x3 to 4*C_out channels - pixel shuffle x2 - BN - act; or with `nearest`,
/// nearest-neighbour x2 - conv3x3 to C_out - BN - act.
#[derive(Module, Debug)]
pub struct UpStage {
    conv: Conv2d,
    shuffle: PixelShuffle,
    bn: BatchNorm,
    act: Act,
    nearest: bool,
}

/// Nearest-neighbour upsampling by 2, `[B, C, H, W]` -> `[B, C, 2H, 2W]`, as a broadcast (its
/// backward pass sums each 2x2 block).
pub(crate) fn upsample_nearest(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b * c * h, 1, w, 1])
        .repeat_dim(1, 2)
        .repeat_dim(3, 2)
        .reshape([b, c, 2 * h, 2 * w])
}

impl UpStage {
    fn new(c_in: usize, c_out: usize, cfg: &ResnetCganGeneratorConfig, device: &Device) -> Self {
        let nearest = cfg.upsample == Upsample::Nearest;
        let conv = if nearest {
            conv(c_in, c_out, 3, device)
        } else if cfg.icnr {
            icnr(conv(c_in, 4 * c_out, 3, device))
        } else {
            conv(c_in, 4 * c_out, 3, device)
        };
        Self {
            conv,
            shuffle: PixelShuffleConfig::new(2).init(),
            bn: BatchNormConfig::new(c_out).init(device),
            act: Act::new(cfg.activation, c_out, device),
            nearest,
        }
    }

    /// `x`: `[B, C_in, H, W]` -> `[B, C_out, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let up = if self.nearest {
            conv2d(&self.conv, upsample_nearest(x))
        } else {
            kernels::act::pixel_shuffle(&self.shuffle, conv2d(&self.conv, x))
        };
        self.act.forward(batch_norm(&self.bn, up))
    }
}

/// Residual generator; each stage doubles the side by nearest-neighbour resize or pixel shuffle.
#[derive(Module, Debug)]
pub struct ResnetCganGenerator {
    dense: Linear,
    bn0: BatchNorm,
    act0: Act,
    blocks: Vec<ResBlock>,
    bn_trunk: BatchNorm,
    act_trunk: Act,
    ups: Vec<UpStage>,
    to_rgb: Conv2d,
    channels: usize,
    init_size: usize,
}

impl ResnetCganGeneratorConfig {
    /// Checks the config without building anything.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_sizes(
            "generator",
            &[
                ("resolution", self.resolution, MAX_RESOLUTION),
                ("init_size", self.init_size, MAX_RESOLUTION),
                ("channels", self.channels, MAX_CHANNELS),
                ("min_channels", self.min_channels, MAX_CHANNELS),
                ("res_blocks", self.res_blocks, MAX_BLOCKS),
                ("latent_dim", self.latent_dim, MAX_LATENT),
                ("num_tags", self.num_tags, MAX_TAGS),
                ("out_kernel", self.out_kernel, 15),
            ],
            || self.parameters(),
        )?;
        log2_ratio(
            self.resolution,
            self.init_size,
            "generator resolution / init_size",
        )?;
        if self.channels == 0 || self.latent_dim == 0 || self.min_channels == 0 {
            return Err(ModelError::BadConfig("sizes must be positive".into()));
        }
        if self.out_kernel.is_multiple_of(2) {
            return Err(ModelError::BadConfig("out_kernel must be odd".into()));
        }
        Ok(())
    }

    /// Channel count after upsampling stage `i`.
    fn stage_channels(&self, i: usize) -> usize {
        (self.channels >> (i + 1)).max(self.min_channels)
    }

    /// About the number of parameters (weights of the convolutions and the dense layer; for
    /// the size limit, sizes already in bounds).
    fn parameters(&self) -> u64 {
        let u = |v: usize| v as u64;
        let (c, s) = (u(self.channels), u(self.init_size));
        let dense = (u(self.latent_dim) + u(self.num_tags) + 1) * c * s * s;
        let blocks = u(self.res_blocks) * 18 * c * c;
        let stages = (self.resolution / self.init_size.max(1)).max(1).ilog2() as usize;
        let (mut ups, mut c_in) = (0, c);
        for i in 0..stages {
            let c_out = u(self.stage_channels(i));
            ups += 9 * c_in * 4 * c_out;
            c_in = c_out;
        }
        let k = u(self.out_kernel);
        dense + blocks + ups + 3 * c_in * k * k
    }

    /// A fresh network, every weight drawn now from the backend's stream (see [`crate::rng`]).
    pub fn try_init(&self, device: &Device) -> Result<ResnetCganGenerator, ModelError> {
        crate::rng::initialised(|| self.build(device))
    }

    fn build(&self, device: &Device) -> Result<ResnetCganGenerator, ModelError> {
        self.validate()?;
        let stages = log2_ratio(self.resolution, self.init_size, "")?;
        let c = self.channels;
        let s = self.init_size;
        let ups = (0..stages)
            .map(|i| {
                let c_in = if i == 0 {
                    c
                } else {
                    self.stage_channels(i - 1)
                };
                UpStage::new(c_in, self.stage_channels(i), self, device)
            })
            .collect();
        let c_last = if stages == 0 {
            c
        } else {
            self.stage_channels(stages - 1)
        };
        Ok(ResnetCganGenerator {
            dense: LinearConfig::new(self.latent_dim + self.num_tags, c * s * s).init(device),
            bn0: BatchNormConfig::new(c).init(device),
            act0: Act::new(self.activation, c, device),
            blocks: (0..self.res_blocks)
                .map(|_| ResBlock::new(c, self.activation, device))
                .collect(),
            bn_trunk: BatchNormConfig::new(c).init(device),
            act_trunk: Act::new(self.activation, c, device),
            ups,
            to_rgb: conv(c_last, 3, self.out_kernel, device),
            channels: c,
            init_size: s,
        })
    }

    /// Builds the generator. Panics on an invalid config; use [`Self::try_init`] for untrusted ones.
    pub fn init(&self, device: &Device) -> ResnetCganGenerator {
        self.try_init(device).expect("invalid generator config")
    }
}

impl ResnetCganGenerator {
    /// - `z`: `[B, latent_dim]` latent vectors
    /// - `c`: `[B, num_tags]` tag condition (multi-hot; real values allowed)
    /// - returns `[B, 3, resolution, resolution]` RGB in `[-1, 1]`
    pub fn forward(&self, z: Tensor<2>, c: Tensor<2>) -> Tensor<4> {
        let [b, _] = z.dims();
        let x = self.dense.forward(Tensor::cat(vec![z, c], 1));
        let x = x.reshape([b, self.channels, self.init_size, self.init_size]);
        let x = self.act0.forward(batch_norm(&self.bn0, x));
        let mut h = x.clone();
        for block in &self.blocks {
            h = block.forward(h);
        }
        let mut h = self.act_trunk.forward(batch_norm(&self.bn_trunk, h) + x);
        for up in &self.ups {
            h = up.forward(h);
        }
        kernels::act::tanh(conv2d(&self.to_rgb, h))
    }
}

/// Downsampling residual block: main path act-conv3x3-avgpool-act-conv3x3,
/// skip path avgpool-conv1x1 (the same function as conv1x1-avgpool: both are linear, and
/// pooling first is 4x fewer multiply-adds). No normalisation, so gradient penalties stay
/// per-sample.
#[derive(Module, Debug)]
pub struct DownBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    skip: Conv2d,
    slope: f64,
}

/// 2x2 average pooling, `[B, C, H, W]` -> `[B, C, H/2, W/2]`. For even sizes as sums over a
/// reshaped view: the same numbers as `avg_pool2d`, and its backward pass (a broadcast) was ~30 %
/// faster than Flex's pooling backward at the critic's shapes.
fn pool2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    if h % 2 != 0 || w % 2 != 0 {
        return avg_pool2d(x, AvgPoolOptions::new([2, 2]));
    }
    let (h2, w2) = (h / 2, w / 2);
    x.reshape([b * c * h2, 2, w2, 2])
        .sum_dim(3)
        .sum_dim(1)
        .reshape([b, c, h2, w2])
        * 0.25
}

impl DownBlock {
    fn new(c_in: usize, c_out: usize, slope: f64, device: &Device) -> Self {
        Self {
            conv1: conv(c_in, c_out, 3, device),
            conv2: conv(c_out, c_out, 3, device),
            skip: conv(c_in, c_out, 1, device),
            slope,
        }
    }

    /// `x`: `[B, C_in, H, W]` -> `[B, C_out, H/2, W/2]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = conv2d(&self.conv1, leaky_relu(x.clone(), self.slope));
        let h = conv2d(&self.conv2, leaky_relu(pool2(h), self.slope));
        h + conv2d(&self.skip, pool2(x))
    }
}

/// Minibatch standard deviation (Karras et al. 2018, as StyleGAN2's critic epilogue): the
/// standard deviation of every feature over a group of images, averaged to one value per group,
/// joins the feature map as one more channel, and a conv3x3 mixes it back into `C` channels. A
/// critic that sees how alike the images of a batch are can punish a generator that draws one
/// face for every latent. It mixes samples: the critic's penalties differentiate the batch as a
/// whole (see the trainer's gradient penalty).
#[derive(Module, Debug)]
pub struct MinibatchStd {
    conv: Conv2d,
    group: usize,
    slope: f64,
}

impl MinibatchStd {
    fn new(channels: usize, group: usize, slope: f64, device: &Device) -> Self {
        Self {
            conv: conv(channels + 1, channels, 3, device),
            group,
            slope,
        }
    }

    /// `x`: `[B, C, H, W]` -> `[B, C, H, W]`. Image `i` is in group `i % (B / g)` (as in
    /// StyleGAN2), `g` the largest divisor of `B` not above the configured group size.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let g = (1..=self.group.min(b))
            .rev()
            .find(|g| b.is_multiple_of(*g))
            .unwrap_or(1);
        let y = x.clone().reshape([g, b / g, c, h, w]);
        let centred = y.clone() - y.mean_dim(0);
        let std = (centred.square().mean_dim(0) + 1e-8).sqrt(); // [1, B/g, C, H, W]
        let stat = std
            .reshape([b / g, c * h * w])
            .mean_dim(1) // [B/g, 1]
            .reshape([1, b / g, 1, 1, 1])
            .repeat_dim(0, g)
            .repeat_dim(3, h)
            .repeat_dim(4, w)
            .reshape([b, 1, h, w]);
        leaky_relu(conv2d(&self.conv, Tensor::cat(vec![x, stat], 1)), self.slope)
    }
}

/// Residual projection discriminator with multi-stage feature pooling.
#[derive(Module, Debug)]
pub struct ResnetCganDiscriminator {
    stem: Conv2d,
    blocks: Vec<DownBlock>,
    mbstd: Option<MinibatchStd>,
    psi: Linear,
    embed: Linear,
    slope: f64,
}

impl ResnetCganDiscriminatorConfig {
    fn stage_channels(&self, i: usize) -> usize {
        (self.channels << i).min(self.max_channels)
    }

    /// Length of the pooled feature vector `h`.
    pub fn feature_dim(&self) -> Result<usize, ModelError> {
        check_sizes(
            "critic",
            &[
                ("resolution", self.resolution, MAX_RESOLUTION),
                ("channels", self.channels, MAX_CHANNELS),
                ("max_channels", self.max_channels, MAX_CHANNELS),
                ("num_tags", self.num_tags, MAX_TAGS),
                ("mbstd_group", self.mbstd_group, 64),
            ],
            || {
                // Every stage at the widest channel count bounds the count from above.
                let c = self.max_channels.max(self.channels) as u64;
                let stages = u64::from(self.resolution.max(2).ilog2());
                stages * 19 * c * c + (self.num_tags as u64 + 1) * stages * c
            },
        )?;
        let stages = log2_ratio(
            self.resolution / 2,
            self.final_size,
            "discriminator resolution",
        )?;
        Ok((0..=stages).map(|i| self.stage_channels(i)).sum())
    }

    /// A fresh network, every weight drawn now from the backend's stream (see [`crate::rng`]).
    pub fn try_init(&self, device: &Device) -> Result<ResnetCganDiscriminator, ModelError> {
        crate::rng::initialised(|| self.build(device))
    }

    fn build(&self, device: &Device) -> Result<ResnetCganDiscriminator, ModelError> {
        self.feature_dim()?;
        if self.resolution < 2 {
            return Err(ModelError::BadConfig(
                "discriminator resolution too small".into(),
            ));
        }
        let stages = log2_ratio(
            self.resolution / 2,
            self.final_size,
            "discriminator resolution",
        )?;
        let f = self.feature_dim()?;
        Ok(ResnetCganDiscriminator {
            stem: Conv2dConfig::new([3, self.channels], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            blocks: (0..stages)
                .map(|i| {
                    DownBlock::new(
                        self.stage_channels(i),
                        self.stage_channels(i + 1),
                        self.leaky_slope,
                        device,
                    )
                })
                .collect(),
            mbstd: (self.mbstd_group > 1).then(|| {
                MinibatchStd::new(
                    self.stage_channels(stages),
                    self.mbstd_group,
                    self.leaky_slope,
                    device,
                )
            }),
            psi: LinearConfig::new(f, 1).init(device),
            embed: LinearConfig::new(self.num_tags, f)
                .with_bias(false)
                .init(device),
            slope: self.leaky_slope,
        })
    }

    pub fn init(&self, device: &Device) -> ResnetCganDiscriminator {
        self.try_init(device).expect("invalid discriminator config")
    }
}

impl ResnetCganDiscriminator {
    /// Multi-stage features: the stem and every stage are activated and sum-pooled over space,
    /// then concatenated. `x`: `[B, 3, R, R]` -> `[B, F]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = conv2d(&self.stem, x);
        let mut pooled = Vec::with_capacity(self.blocks.len() + 1);
        for block in &self.blocks {
            pooled.push(
                leaky_relu(h.clone(), self.slope)
                    .sum_dim(3)
                    .sum_dim(2)
                    .flatten(1, 3),
            );
            h = block.forward(h);
        }
        if let Some(m) = &self.mbstd {
            h = m.forward(h);
        }
        let [_, _, hh, ww] = h.dims();
        // The last stage is mean-pooled: its few positions carry the most information per value.
        pooled.push(
            leaky_relu(h, self.slope)
                .sum_dim(3)
                .sum_dim(2)
                .flatten(1, 3)
                .div_scalar((hh * ww) as f64),
        );
        // Earlier stages are averaged too, so all parts of h are on one scale.
        let n = pooled.len();
        let pooled: Vec<Tensor<2>> = pooled
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                if i + 1 == n {
                    p
                } else {
                    let side = hh << (n - 1 - i);
                    p.div_scalar((side * side) as f64)
                }
            })
            .collect();
        Tensor::cat(pooled, 1)
    }

    /// Projection score. `h`: `[B, F]`, `c`: `[B, num_tags]` -> `[B]`.
    pub fn score(&self, h: Tensor<2>, c: Tensor<2>) -> Tensor<1> {
        let proj = (self.embed.forward(c) * h.clone()).sum_dim(1);
        (self.psi.forward(h) + proj).flatten(0, 1)
    }

    /// `x`: `[B, 3, R, R]`, `c`: `[B, num_tags]` -> critic scores `[B]`.
    pub fn forward(&self, x: Tensor<4>, c: Tensor<2>) -> Tensor<1> {
        self.score(self.features(x), c)
    }
}

/// The resnet-cgan family (`--arch resnet-cgan`, the default).
pub struct ResnetCgan;

impl Family for ResnetCgan {
    const NAME: &'static str = "resnet-cgan";
    const ABOUT: &'static str = "residual generator (nearest-neighbour upsampling; \
        upsample=pixel-shuffle for the reference design) + residual projection critic pooling \
        every stage, with minibatch standard deviation";

    type GeneratorConfig = ResnetCganGeneratorConfig;
    type DiscriminatorConfig = ResnetCganDiscriminatorConfig;
    // Generators before ICNR were initialised plainly; critics had no minibatch std.
    const GENERATOR_ADDED: &'static [(&'static str, &'static str)] =
        &[("icnr", "false"), ("upsample", "\"pixel-shuffle\"")];
    const DISCRIMINATOR_ADDED: &'static [(&'static str, &'static str)] = &[("mbstd_group", "0")];
    type Generator = ResnetCganGenerator;
    type Discriminator = ResnetCganDiscriminator;

    fn generator_sizes(c: &ResnetCganGeneratorConfig) -> GeneratorSizes {
        GeneratorSizes {
            latent_dim: c.latent_dim,
            num_tags: c.num_tags,
            resolution: c.resolution,
            conditional: true,
            styles: 0,
            style_dim: 0,
        }
    }

    fn validate_generator(c: &ResnetCganGeneratorConfig) -> Result<(), ModelError> {
        c.validate()
    }

    fn init_generator(
        c: &ResnetCganGeneratorConfig,
        device: &Device,
    ) -> Result<ResnetCganGenerator, ModelError> {
        c.try_init(device)
    }

    fn discriminator_conditional(_: &ResnetCganDiscriminatorConfig) -> bool {
        true
    }

    fn feature_dim(c: &ResnetCganDiscriminatorConfig) -> Result<usize, ModelError> {
        c.feature_dim()
    }

    fn init_discriminator(
        c: &ResnetCganDiscriminatorConfig,
        device: &Device,
    ) -> Result<ResnetCganDiscriminator, ModelError> {
        c.try_init(device)
    }

    fn configure(
        num_tags: usize,
        resolution: usize,
        o: &FamilyOptions,
    ) -> Result<(ResnetCganGeneratorConfig, ResnetCganDiscriminatorConfig), ModelError> {
        if o.unconditional {
            return Err(unsupported(
                Self::NAME,
                "--unconditional",
                "resnet-cgan is always conditional (try --arch dcgan)",
            ));
        }
        // What `trainer train` starts from: the recipe that won the comparison of
        // docs/recipes.md (nearest-neighbour upsampling, minibatch std in the critic). Cards and
        // runs carry their own configs, so older ones keep theirs.
        let mut g = ResnetCganGeneratorConfig::new(num_tags)
            .with_resolution(resolution)
            .with_upsample(Upsample::Nearest);
        let mut d = ResnetCganDiscriminatorConfig::new(num_tags)
            .with_resolution(resolution)
            .with_mbstd_group(4);
        if let Some(v) = o.latent_dim {
            g.latent_dim = v;
        }
        if let Some(v) = o.g_channels {
            g.channels = v;
        }
        if let Some(v) = o.g_blocks {
            g.res_blocks = v;
        }
        if let Some(v) = o.d_channels {
            d.channels = v;
        }
        Ok((g, d))
    }
}

impl GeneratorModule for ResnetCganGenerator {
    fn generate(&self, input: GeneratorInput) -> Tensor<4> {
        self.forward(input.z, input.c)
    }
}

impl DiscriminatorModule for ResnetCganDiscriminator {
    fn features(&self, x: Tensor<4>) -> Tensor<2> {
        ResnetCganDiscriminator::features(self, x)
    }

    fn score(&self, h: Tensor<2>, c: Tensor<2>) -> Tensor<1> {
        ResnetCganDiscriminator::score(self, h, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_g() -> ResnetCganGeneratorConfig {
        ResnetCganGeneratorConfig::new(5)
            .with_latent_dim(8)
            .with_resolution(16)
            .with_init_size(4)
            .with_channels(8)
            .with_res_blocks(1)
            .with_min_channels(4)
    }

    #[test]
    fn skip_path_pooling_first_is_the_same_function() {
        let device = Device::flex();
        let dist = burn::tensor::Distribution::Normal(0.0, 1.0);
        let (block, x) = crate::rng::backend_stream(|| {
            (
                crate::rng::drawn(DownBlock::new(5, 7, 0.2, &device)),
                Tensor::<4>::random([2, 5, 8, 8], dist, &device),
            )
        });
        let pool_first = conv2d(&block.skip, pool2(x.clone()));
        let conv_first = pool2(conv2d(&block.skip, x));
        assert!((pool_first - conv_first).abs().max().into_scalar::<f32>() < 1e-5);
    }

    #[test]
    fn pool2_is_average_pooling() {
        let device = Device::flex();
        let dist = burn::tensor::Distribution::Normal(0.0, 1.0);
        for dims in [[2, 3, 8, 6], [1, 2, 5, 4]] {
            let x = crate::rng::backend_stream(|| Tensor::<4>::random(dims, dist, &device));
            let want = avg_pool2d(x.clone(), AvgPoolOptions::new([2, 2]));
            let got = pool2(x);
            assert_eq!(got.dims(), want.dims());
            assert!((got - want).abs().max().into_scalar::<f32>() < 1e-6);
        }
    }

    #[test]
    fn generator_and_discriminator_shapes() {
        let device = Device::flex();
        let g = tiny_g().init(&device);
        let z = Tensor::<2>::zeros([3, 8], &device);
        let c = Tensor::<2>::zeros([3, 5], &device);
        let img = g.forward(z, c.clone());
        assert_eq!(img.dims(), [3, 3, 16, 16]);
        let max = img.clone().abs().max().into_scalar::<f32>();
        assert!(max <= 1.0);

        let dcfg = ResnetCganDiscriminatorConfig::new(5)
            .with_resolution(16)
            .with_channels(4);
        let d = dcfg.init(&device);
        let h = d.features(img.clone());
        assert_eq!(h.dims(), [3, dcfg.feature_dim().unwrap()]);
        assert_eq!(d.forward(img, c).dims(), [3]);
    }

    #[test]
    fn prelu_generator_builds_and_runs() {
        let device = Device::flex();
        let g = tiny_g().with_activation(Activation::Prelu).init(&device);
        let out = g.forward(
            Tensor::zeros([1, 8], &device),
            Tensor::zeros([1, 5], &device),
        );
        assert_eq!(out.dims(), [1, 3, 16, 16]);
    }

    #[test]
    fn bad_configs_are_errors_not_panics() {
        let device = Device::flex();
        assert!(tiny_g().with_resolution(24).try_init(&device).is_err());
        assert!(tiny_g().with_out_kernel(4).try_init(&device).is_err());
        let d = ResnetCganDiscriminatorConfig::new(5).with_resolution(48);
        assert!(d.try_init(&device).is_err());
    }

    #[test]
    fn projection_score_depends_on_tags() {
        let device = Device::flex();
        let d = ResnetCganDiscriminatorConfig::new(3)
            .with_resolution(16)
            .with_channels(4)
            .init(&device);
        let x = Tensor::<4>::ones([1, 3, 16, 16], &device);
        let a = d.forward(x.clone(), Tensor::from_floats([[1.0, 0.0, 0.0]], &device));
        let b = d.forward(x, Tensor::from_floats([[0.0, 1.0, 0.0]], &device));
        let diff = (a - b).abs().into_scalar::<f32>();
        assert!(diff > 0.0);
    }

    #[test]
    fn icnr_upsampling_starts_as_nearest_neighbour() {
        let dev = Device::flex();
        for icnr_init in [true, false] {
            let (stage, x) = crate::rng::seeded(&dev, 3, || {
                (
                    crate::rng::drawn(UpStage::new(6, 4, &tiny_g().with_icnr(icnr_init), &dev)),
                    Tensor::<4>::random([2, 6, 5, 5], burn::tensor::Distribution::Default, &dev),
                )
            });
            let y = kernels::act::pixel_shuffle(&stage.shuffle, conv2d(&stage.conv, x));
            let v = y.into_data().try_to_vec::<f32>().unwrap();
            // [2, 4, 10, 10]: every 2x2 block holds one value iff ICNR.
            let mut worst = 0f32;
            for p in 0..2 * 4 {
                for i in 0..5 {
                    for j in 0..5 {
                        let at = |di: usize, dj: usize| v[p * 100 + (2 * i + di) * 10 + 2 * j + dj];
                        for (di, dj) in [(0, 1), (1, 0), (1, 1)] {
                            worst = worst.max((at(di, dj) - at(0, 0)).abs());
                        }
                    }
                }
            }
            if icnr_init {
                assert_eq!(worst, 0.0);
            } else {
                assert!(worst > 1e-2, "{worst}");
            }
        }
    }

    /// ICNR's copies are leaves: a generator initialised on an autodiff device trains for more
    /// than one backward pass (the copies once kept their slicing graph, and the second
    /// backward found it consumed).
    #[cfg(feature = "autodiff")]
    #[test]
    fn icnr_generators_train_past_the_first_backward() {
        let dev = Device::flex().autodiff();
        let g = crate::rng::seeded(&dev, 5, || tiny_g().init(&dev));
        assert!(tiny_g().icnr);
        for _ in 0..2 {
            let z = Tensor::<2>::ones([2, 8], &dev);
            let c = Tensor::<2>::ones([2, 5], &dev);
            let grads = g.forward(z, c).sum().backward();
            assert!(g.ups[0].conv.weight.grad(&grads).is_some());
        }
    }

    #[test]
    fn nearest_upsampling_repeats_each_pixel_and_draws_faces() {
        let dev = Device::flex();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &dev);
        let y = upsample_nearest(x).into_data().try_to_vec::<f32>().unwrap();
        #[rustfmt::skip]
        let want = [
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            3.0, 3.0, 4.0, 4.0,
            3.0, 3.0, 4.0, 4.0,
        ];
        assert_eq!(y, want);
        let g = tiny_g().with_upsample(Upsample::Nearest).init(&dev);
        let out = g.forward(Tensor::ones([2, 8], &dev), Tensor::ones([2, 5], &dev));
        assert_eq!(out.dims(), [2, 3, 16, 16]);
        // The stage convolutions map C_in to C_out (no 4x channels for a shuffle).
        assert_eq!(g.ups[0].conv.weight.dims(), [4, 8, 3, 3]);
    }

    /// `trainer train` with no options starts from the recipe that won the comparison (nearest
    /// upsampling, minibatch std); configs written before either existed still read as they were
    /// made (pixel shuffle, no minibatch std), so old runs and cards keep theirs.
    #[test]
    fn new_runs_get_the_winning_recipe_and_old_configs_keep_theirs() {
        let (g, d) = crate::arch::configure(
            ResnetCgan::NAME,
            5,
            64,
            &crate::arch::FamilyOptions::default(),
        )
        .unwrap();
        let (g, d) = (g.config_json(), d.config_json());
        assert_eq!(g["upsample"], "nearest");
        assert_eq!(d["mbstd_group"], 4);
        let mut old_g = g.clone();
        old_g.as_object_mut().unwrap().remove("upsample");
        let mut old_d = d.clone();
        old_d.as_object_mut().unwrap().remove("mbstd_group");
        let old_g = crate::GeneratorSpec::from_arch_json(ResnetCgan::NAME, old_g).unwrap();
        let old_d = crate::DiscriminatorSpec::from_arch_json(ResnetCgan::NAME, old_d).unwrap();
        assert_eq!(old_g.config_json()["upsample"], "pixel-shuffle");
        assert_eq!(old_d.config_json()["mbstd_group"], 0);
    }

    #[test]
    fn minibatch_std_lets_each_score_see_the_batch() {
        let dev = Device::flex();
        let cfg = ResnetCganDiscriminatorConfig::new(5)
            .with_resolution(16)
            .with_channels(8)
            .with_max_channels(16);
        let (d, plain, x, y) = crate::rng::seeded(&dev, 4, || {
            let random = |dims| Tensor::<4>::random(dims, burn::tensor::Distribution::Default, &dev);
            (
                cfg.clone().with_mbstd_group(4).init(&dev),
                cfg.init(&dev),
                random([4, 3, 16, 16]),
                random([1, 3, 16, 16]),
            )
        });
        let c = Tensor::<2>::zeros([4, 5], &dev);
        let other = x.clone().slice_assign([3..4, 0..3, 0..16, 0..16], y);
        let first = |d: &ResnetCganDiscriminator, x: Tensor<4>| {
            d.forward(x, c.clone()).into_data().try_to_vec::<f32>().unwrap()[0]
        };
        // Changing image 3 moves image 0's score only through the batch statistic.
        assert_ne!(first(&d, x.clone()), first(&d, other.clone()));
        assert_eq!(first(&plain, x.clone()), first(&plain, other));
        // One image alone is its own group and still gets a score.
        assert!(first(&d, x.narrow(0, 0, 1)).is_finite());
    }
}
