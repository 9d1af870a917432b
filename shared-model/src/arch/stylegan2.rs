//! A StyleGAN2-style generator (Karras et al. 2020) conditioned on every tag at once, with the
//! residual projection critic of [`super::resnet_cgan`] (minibatch standard deviation on).
//!
//! - **Mapping**: `z` (pixel-normalised) joined to the embedded, normalised tag vector (as
//!   stylegan2-ada's `--cond`, but multi-hot and real-valued, so every tag steers at once), then
//!   `mapping_layers` equalised-learning-rate dense layers with a learning-rate multiplier of
//!   0.01, giving one style vector `w`.
//! - **Synthesis**: a learned 4x4 constant, then per resolution an upsampling modulated 3x3
//!   convolution and a plain one, each with per-pixel noise of a learned strength, and a skip
//!   output to RGB (modulated 1x1, not demodulated) added to the upsampled image of the
//!   previous resolution.
//! - **Modulation** is computed as stylegan2-ada computes it while training (`fused_modconv`
//!   off): the input is scaled by the style, convolved with the shared weight, and the output
//!   scaled by the demodulation coefficients `1 / sqrt(sum_(i,k) (w_oik * s_i)^2 + 1e-8)`. The
//!   same function as a per-sample weight, and the convolution is kyara's own kernel (one GEMM
//!   over the batch) instead of a grouped convolution.
//! - **Noise is part of the seed**: each image's noise maps are drawn from [`SplitMix64`] seeded
//!   with its noise seed ([`GeneratorInput::noise_seeds`]; the face pipeline passes the face's
//!   seed, the trainer draws them from the run's stream), so `trainer generate --seeds 42` and
//!   the page draw the same pixels.
//! - **Truncation** pulls `w` towards the mean `w` of the same tags ([`GeneratorInput::truncation`]),
//!   estimated from a fixed set of latents, so psi < 1 never drags a face towards other tags.
//! - **Style mixing** ([`GeneratorInput::mix`]): the styles of layers from a crossover on come
//!   from a second latent (and tags); the trainer's mixing regulariser and the page's fusion of
//!   two characters both use it.
//!
//! Features are upsampled by nearest neighbour before their 3x3 convolution (resize + conv: no
//! checkerboard by construction, and cheaper than StyleGAN2's transposed convolution + blur on
//! the CPU); the skip image by the separable `[1, 3, 3, 1]` filter (bilinear x2, edges
//! repeated). Output: `[B, 3, R, R]` RGB, about `[-1, 1]` and not squashed (as StyleGAN2; images
//! are clamped when turned into pixels).

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use kernels::act::leaky_relu;
use kernels::conv::conv2d;

use super::limits::{MAX_BLOCKS, MAX_CHANNELS, MAX_LATENT, MAX_RESOLUTION, MAX_TAGS};
use super::resnet_cgan::{
    ResnetCganDiscriminator, ResnetCganDiscriminatorConfig, upsample_nearest,
};
use super::{
    Family, FamilyOptions, GeneratorInput, GeneratorModule, GeneratorSizes,
    check_sizes, unsupported,
};
use crate::{ModelError, SplitMix64};

/// The StyleGAN2-style generator's config; the model card carries it.
#[derive(Config, Debug)]
pub struct Stylegan2GeneratorConfig {
    /// Size of the latent `z`.
    #[config(default = 128)]
    pub latent_dim: usize,
    /// Length of the tag-condition vector (the vocabulary size).
    pub num_tags: usize,
    /// Size of the style vector `w` (and of the tag embedding).
    #[config(default = 128)]
    pub w_dim: usize,
    /// Dense layers of the mapping network.
    #[config(default = 4)]
    pub mapping_layers: usize,
    /// Learning-rate multiplier of the mapping network against the rest of the generator
    /// (StyleGAN's 0.01).
    #[config(default = 0.01)]
    pub mapping_lr_mul: f64,
    /// Learning-rate multiplier of the whole generator against the run's Adam rate: every
    /// parameter is stored divided by it and multiplied back at run time (equalised learning
    /// rate). 10 at the default Adam rate 2e-4 moves the generator at StyleGAN2's 2e-3 while
    /// the critic, which is not equalised, keeps the rate it trains well at.
    #[config(default = 10.0)]
    pub lr_mul: f64,
    /// Output side in pixels: a power of two, at least 8.
    #[config(default = 64)]
    pub resolution: usize,
    /// Channels of the layers up to `full_width_until` pixels; above, they halve per doubling
    /// (down to `min_channels`), as stylegan2-ada's `channel_base / res`.
    #[config(default = 128)]
    pub channels: usize,
    #[config(default = 16)]
    pub full_width_until: usize,
    #[config(default = 16)]
    pub min_channels: usize,
}

/// `sqrt(2)`: the gain that keeps leaky ReLU(0.2) activations at unit variance (StyleGAN's
/// `lrelu` `def_gain`).
const ACT_GAIN: f64 = std::f64::consts::SQRT_2;
/// Latents whose mean style is the truncation centre of a tag set.
const W_AVG_SAMPLES: usize = 256;
/// Seed of those latents (fixed: part of the model's behaviour).
const W_AVG_SEED: u64 = 0x7775_6176_6700_0001;

fn param<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t)
}

/// `x * rsqrt(mean(x^2) + 1e-8)` per row: StyleGAN's pixel norm of `z` (and of the tag embedding).
fn normalize_2nd_moment(x: Tensor<2>) -> Tensor<2> {
    let inv = (x.clone().square().mean_dim(1) + 1e-8).sqrt().recip();
    x * inv
}

/// Dense layer with equalised learning rate: weights stored as N(0, 1/lr_mul) and scaled at run
/// time by `lr_mul / sqrt(fan_in)`, the bias stored as `bias_init / lr_mul` and scaled by
/// `lr_mul`; optionally leaky ReLU(0.2) x sqrt(2).
#[derive(Module, Debug)]
pub struct EqLinear {
    /// `[in, out]`.
    weight: Param<Tensor<2>>,
    /// `[out]`.
    bias: Param<Tensor<1>>,
    gain: f64,
    lr_mul: f64,
    activate: bool,
}

impl EqLinear {
    fn new(
        d_in: usize,
        d_out: usize,
        lr_mul: f64,
        bias_init: f64,
        activate: bool,
        device: &Device,
    ) -> Self {
        Self {
            weight: param(Tensor::random(
                [d_in, d_out],
                Distribution::Normal(0.0, 1.0 / lr_mul),
                device,
            )),
            bias: param(Tensor::full([d_out], bias_init / lr_mul, device)),
            gain: lr_mul / (d_in as f64).sqrt(),
            lr_mul,
            activate,
        }
    }

    /// `x`: `[B, in]` -> `[B, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight.val()).mul_scalar(self.gain)
            + self.bias.val().mul_scalar(self.lr_mul).unsqueeze_dim(0);
        if self.activate {
            leaky_relu(y, 0.2).mul_scalar(ACT_GAIN)
        } else {
            y
        }
    }
}

/// `(z, c)` -> `w`: see the module documentation.
#[derive(Module, Debug)]
pub struct Mapping {
    embed: EqLinear,
    layers: Vec<EqLinear>,
}

impl Mapping {
    /// `z`: `[B, latent_dim]`, `c`: `[B, num_tags]` -> `w`: `[B, w_dim]`.
    pub fn forward(&self, z: Tensor<2>, c: Tensor<2>) -> Tensor<2> {
        let y = normalize_2nd_moment(self.embed.forward(c));
        let mut x = Tensor::cat(vec![normalize_2nd_moment(z), y], 1);
        for layer in &self.layers {
            x = layer.forward(x);
        }
        x
    }
}

/// Bilinear upsampling by 2 with the edges repeated (the separable `[1, 3, 3, 1] / 4` filter):
/// `[B, C, H, W]` -> `[B, C, 2H, 2W]`.
pub fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let up_last = |x: Tensor<4>| {
        let [b, c, h, w] = x.dims();
        let (left, right) = if w > 1 {
            (
                Tensor::cat(vec![x.clone().narrow(3, 0, 1), x.clone().narrow(3, 0, w - 1)], 3),
                Tensor::cat(vec![x.clone().narrow(3, 1, w - 1), x.clone().narrow(3, w - 1, 1)], 3),
            )
        } else {
            (x.clone(), x.clone())
        };
        let x3 = x.mul_scalar(0.75);
        let even = left.mul_scalar(0.25) + x3.clone();
        let odd = x3 + right.mul_scalar(0.25);
        Tensor::cat(vec![even.unsqueeze_dim::<5>(4), odd.unsqueeze_dim::<5>(4)], 4)
            .reshape([b, c, h, 2 * w])
    };
    // Along W, then along H (as W of the transposed map).
    let x = up_last(x);
    up_last(x.swap_dims(2, 3)).swap_dims(2, 3)
}

/// Modulated convolution (see the module documentation).
#[derive(Module, Debug)]
pub struct ModConv {
    /// `[C_out, C_in, k, k]`, N(0, 1), no bias: equalised by the style's gain.
    conv: Conv2d,
    /// `w` -> one style per input channel (bias initialised to 1).
    affine: EqLinear,
    /// `[C_out]`.
    bias: Param<Tensor<1>>,
    /// Strength of the per-pixel noise, `[1]` (layers without noise have none).
    noise_strength: Option<Param<Tensor<1>>>,
    /// `lr_mul / sqrt(C_in k k)` (weights are stored as N(0, 1/lr_mul)).
    gain: f64,
    /// Run-time scale of the bias and the noise strength (stored divided by it).
    lr_mul: f64,
    /// The previous layer's activation gain (`sqrt(2)`, see [`ACT_GAIN`]), applied here with the
    /// style, in the same pass over the input (for the first layer, a constant factor on the
    /// learned constant).
    input_gain: f64,
    demodulate: bool,
    activate: bool,
    up: bool,
}

impl ModConv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        w_dim: usize,
        up: bool,
        rgb: bool,
        lr_mul: f64,
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
            .with_bias(false)
            .with_initializer(burn::nn::Initializer::Normal {
                mean: 0.0,
                std: 1.0 / lr_mul,
            })
            .init(device);
        Self {
            conv,
            affine: EqLinear::new(w_dim, c_in, lr_mul, 1.0, false, device),
            bias: param(Tensor::zeros([c_out], device)),
            noise_strength: (!rgb).then(|| param(Tensor::zeros([1], device))),
            gain: lr_mul / ((c_in * k * k) as f64).sqrt(),
            lr_mul,
            input_gain: ACT_GAIN,
            demodulate: !rgb,
            activate: !rgb,
            up,
        }
    }

    /// - `x`: `[B, C_in, H, W]` (activated without gain), `w`: `[B, w_dim]`
    /// - `noise`: `[B, 1, H', W']` (unit normal; scaled by the learned strength)
    /// - returns `[B, C_out, H', W']`, `H' = 2H` for an upsampling layer; activated layers
    ///   return leaky ReLU(0.2) without its gain (the next layer applies it)
    pub fn forward(&self, x: Tensor<4>, w: Tensor<2>, noise: Option<Tensor<4>>) -> Tensor<4> {
        let x = if self.up { upsample_nearest(x) } else { x };
        let s = self.affine.forward(w).mul_scalar(self.gain); // [B, C_in]
        let [b, c_in] = s.dims();
        let scale = s.clone().mul_scalar(self.input_gain).reshape([b, c_in, 1, 1]);
        let mut y = conv2d(&self.conv, x * scale);
        let [_, c_out, _, _] = y.dims();
        if self.demodulate {
            let wsq = self
                .conv
                .weight
                .val()
                .square()
                .sum_dim(3)
                .sum_dim(2)
                .reshape([c_out, c_in]);
            let d = (s.square().matmul(wsq.transpose()) + 1e-8).sqrt().recip();
            y = y * d.reshape([b, c_out, 1, 1]);
        }
        if let (Some(strength), Some(noise)) = (&self.noise_strength, noise) {
            y = y + noise * strength.val().mul_scalar(self.lr_mul).reshape([1, 1, 1, 1]);
        }
        y = y + self.bias.val().mul_scalar(self.lr_mul).reshape([1, c_out, 1, 1]);
        if self.activate { leaky_relu(y, 0.2) } else { y }
    }
}

/// One resolution of the synthesis network: (upsampling conv), conv, to-RGB.
#[derive(Module, Debug)]
pub struct SynthesisBlock {
    conv0: Option<ModConv>,
    conv1: ModConv,
    to_rgb: ModConv,
}

/// The StyleGAN2-style generator: mapping network and synthesis network.
#[derive(Module, Debug)]
pub struct Stylegan2Generator {
    mapping: Mapping,
    /// `[C, 4, 4]`, stored divided by `lr_mul`.
    constant: Param<Tensor<3>>,
    blocks: Vec<SynthesisBlock>,
    latent_dim: usize,
    lr_mul: f64,
}

impl Stylegan2GeneratorConfig {
    /// Channels of the layers at side `res`.
    pub fn channels_at(&self, res: usize) -> usize {
        let mut c = self.channels;
        let mut r = self.full_width_until.max(1);
        while r < res {
            c /= 2;
            r *= 2;
        }
        c.max(self.min_channels.min(self.channels))
    }

    /// Resolutions of the synthesis blocks: 4, 8, ..., `resolution`.
    fn resolutions(&self) -> Vec<usize> {
        let mut out = vec![4];
        while *out.last().expect("non-empty") < self.resolution {
            let r = out.last().expect("non-empty") * 2;
            out.push(r);
        }
        out
    }

    /// Style inputs of the synthesis network: one per convolution plus the last to-RGB (a
    /// block's to-RGB shares its style with the next block's first convolution).
    pub fn num_styles(&self) -> usize {
        2 * self.resolutions().len()
    }

    /// Sides of the noise maps, in the order the layers use them.
    pub fn noise_sides(&self) -> Vec<usize> {
        let mut sides = Vec::new();
        for (i, r) in self.resolutions().into_iter().enumerate() {
            sides.push(r);
            if i > 0 {
                sides.push(r);
            }
        }
        sides
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        check_sizes(
            "generator",
            &[
                ("resolution", self.resolution, MAX_RESOLUTION),
                ("channels", self.channels, MAX_CHANNELS),
                ("min_channels", self.min_channels, MAX_CHANNELS),
                ("full_width_until", self.full_width_until, MAX_RESOLUTION),
                ("latent_dim", self.latent_dim, MAX_LATENT),
                ("w_dim", self.w_dim, MAX_LATENT),
                ("num_tags", self.num_tags, MAX_TAGS),
                ("mapping_layers", self.mapping_layers, MAX_BLOCKS),
            ],
            || self.parameters(),
        )?;
        if self.resolution < 8 || !self.resolution.is_power_of_two() {
            return Err(ModelError::BadConfig(format!(
                "stylegan2 resolution must be a power of two >= 8, not {}",
                self.resolution
            )));
        }
        if self.channels == 0 || self.latent_dim == 0 || self.w_dim == 0 || self.num_tags == 0 {
            return Err(ModelError::BadConfig(
                "stylegan2 sizes (channels, latent_dim, w_dim, num_tags) must be positive".into(),
            ));
        }
        if self.mapping_layers == 0 {
            return Err(ModelError::BadConfig(
                "stylegan2 needs at least one mapping layer".into(),
            ));
        }
        for (name, v) in [("mapping_lr_mul", self.mapping_lr_mul), ("lr_mul", self.lr_mul)] {
            if !(v.is_finite() && (1e-6..=1e6).contains(&v)) {
                return Err(ModelError::BadConfig(format!(
                    "{name} must be a positive number (1e-6 to 1e6), not {v}"
                )));
            }
        }
        Ok(())
    }

    /// The number of parameters (for the size limit; sizes already in bounds).
    fn parameters(&self) -> u64 {
        let u = |v: usize| v as u64;
        let w = u(self.w_dim);
        let mut n = u(self.num_tags) * w + w;
        let mut d_in = u(self.latent_dim) + w;
        for _ in 0..self.mapping_layers {
            n += d_in * w + w;
            d_in = w;
        }
        // Resolutions are bounded, so this loop is short.
        let res = self.resolution.clamp(4, MAX_RESOLUTION);
        let mut c_prev = u(self.channels_at(4));
        n += c_prev * 16;
        let mut r = 4;
        while r <= res {
            let c = u(self.channels_at(r));
            let convs = if r == 4 { 1 } else { 2 };
            let first_in = if r == 4 { c } else { c_prev };
            n += 9 * first_in * c + (convs - 1) * 9 * c * c + convs * (w + 1) * c + 4 * c;
            n += 3 * c + (w + 1) * c + 3;
            c_prev = c;
            r *= 2;
        }
        n
    }

    /// A fresh network, every weight drawn now from the backend's stream (see [`crate::rng`]).
    pub fn try_init(&self, device: &Device) -> Result<Stylegan2Generator, ModelError> {
        crate::rng::initialised(|| self.build(device))
    }

    fn build(&self, device: &Device) -> Result<Stylegan2Generator, ModelError> {
        self.validate()?;
        let w = self.w_dim;
        let lr_mul = self.lr_mul;
        let lr = self.mapping_lr_mul * lr_mul;
        let mapping = Mapping {
            embed: EqLinear::new(self.num_tags, w, lr_mul, 0.0, false, device),
            layers: (0..self.mapping_layers)
                .map(|i| {
                    let d_in = if i == 0 { self.latent_dim + w } else { w };
                    EqLinear::new(d_in, w, lr, 0.0, true, device)
                })
                .collect(),
        };
        let c4 = self.channels_at(4);
        let mut c_prev = c4;
        let blocks = self
            .resolutions()
            .into_iter()
            .map(|r| {
                let c = self.channels_at(r);
                let block = SynthesisBlock {
                    conv0: (r > 4)
                        .then(|| ModConv::new(c_prev, c, 3, w, true, false, lr_mul, device)),
                    conv1: ModConv::new(c, c, 3, w, false, false, lr_mul, device),
                    to_rgb: ModConv::new(c, 3, 1, w, false, true, lr_mul, device),
                };
                c_prev = c;
                block
            })
            .collect();
        Ok(Stylegan2Generator {
            mapping,
            constant: param(Tensor::random(
                [c4, 4, 4],
                Distribution::Normal(0.0, 1.0 / lr_mul),
                device,
            )),
            blocks,
            latent_dim: self.latent_dim,
            lr_mul,
        })
    }
}

/// A noise seed for a latent given without one: a hash (FNV-1a) of its bits, so the same `z`
/// always gets the same noise.
fn noise_seed_of(z: &[f32]) -> u64 {
    z.iter().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Stylegan2Generator {
    /// The mean style of the tags `c` (`[B, num_tags]` -> `[B, w_dim]`), over a fixed set of
    /// latents: the centre truncation pulls towards.
    pub fn mean_style(&self, c: Tensor<2>) -> Tensor<2> {
        let [b, t] = c.dims();
        let n = W_AVG_SAMPLES;
        let device = c.device();
        let z = SplitMix64::new(W_AVG_SEED).normals(n * self.latent_dim);
        let z = Tensor::<2>::from_data(TensorData::new(z, [n, self.latent_dim]), &device)
            .unsqueeze_dim::<3>(0)
            .repeat_dim(0, b)
            .reshape([b * n, self.latent_dim]);
        let c = c.unsqueeze_dim::<3>(1).repeat_dim(1, n).reshape([b * n, t]);
        let w = self.mapping.forward(z, c);
        let [_, wd] = w.dims();
        w.reshape([b, n, wd]).mean_dim(1).reshape([b, wd])
    }

    /// `w` of `(z, c)`, truncated by `psi` towards the mean style of `c`, plus `offset`.
    fn style_of(
        &self,
        z: Tensor<2>,
        c: Tensor<2>,
        psi: f64,
        offset: Option<&Tensor<2>>,
    ) -> Tensor<2> {
        let mut w = self.mapping.forward(z, c.clone());
        if psi != 1.0 {
            let avg = self.mean_style(c).detach();
            w = avg.clone() + (w - avg).mul_scalar(psi);
        }
        match offset {
            Some(o) => w + o.clone(),
            None => w,
        }
    }

    /// Every style affine layer's weight as applied (`[w_dim, C_in]`, gain included), in layer
    /// order.
    pub fn affine_weights(&self) -> Vec<Tensor<2>> {
        let mut out = Vec::new();
        for block in &self.blocks {
            for conv in block.conv0.iter().chain([&block.conv1, &block.to_rgb]) {
                out.push(conv.affine.weight.val().mul_scalar(conv.affine.gain));
            }
        }
        out
    }

    /// Number of style inputs (see [`Stylegan2GeneratorConfig::num_styles`]).
    pub fn num_styles(&self) -> usize {
        2 * self.blocks.len()
    }

    /// The noise maps of a batch, one `[B, 1, side, side]` per noisy layer, image `i`'s drawn
    /// from `SplitMix64(seeds[i])`.
    fn noise(&self, seeds: &[u64], device: &Device) -> Vec<Tensor<4>> {
        let mut sides = Vec::new();
        for (i, _) in self.blocks.iter().enumerate() {
            let r = 4 << i;
            sides.push(r);
            if i > 0 {
                sides.push(r);
            }
        }
        let mut rngs: Vec<SplitMix64> = seeds.iter().map(|&s| SplitMix64::new(s)).collect();
        sides
            .into_iter()
            .map(|side| {
                let mut data = Vec::with_capacity(seeds.len() * side * side);
                for rng in &mut rngs {
                    data.extend(rng.normals(side * side));
                }
                Tensor::from_data(TensorData::new(data, [seeds.len(), 1, side, side]), device)
            })
            .collect()
    }

    /// See [`GeneratorInput`]; returns `[B, 3, R, R]`.
    pub fn forward(&self, input: GeneratorInput) -> Tensor<4> {
        let b = input.batch();
        let device = input.z.device();
        let seeds = match &input.noise_seeds {
            Some(s) if s.len() == b => s.clone(),
            _ => {
                let z = input.z.clone().into_data().convert::<f32>();
                let z = z.as_slice::<f32>().expect("f32 latents");
                z.chunks(self.latent_dim.max(1)).map(noise_seed_of).collect()
            }
        };
        let psi = input.truncation;
        let offset = input.style_offset.as_ref();
        let w = self.style_of(input.z, input.c, psi, offset);
        let n_styles = self.num_styles();
        let mut styles = vec![w; n_styles];
        if let Some(mix) = input.mix {
            let w2 = self.style_of(mix.z, mix.c, psi, offset);
            for s in styles.iter_mut().skip(mix.from_layer.min(n_styles)) {
                *s = w2.clone();
            }
        }
        let mut noise = self.noise(&seeds, &device).into_iter();
        let [c4, _, _] = self.constant.dims();
        let mut x = self
            .constant
            .val()
            .mul_scalar(self.lr_mul)
            .unsqueeze_dim::<4>(0)
            .repeat_dim(0, b)
            .reshape([b, c4, 4, 4]);
        let mut img: Option<Tensor<4>> = None;
        let mut k = 0;
        for block in &self.blocks {
            if let Some(conv0) = &block.conv0 {
                x = conv0.forward(x, styles[k].clone(), noise.next());
                k += 1;
            }
            x = block.conv1.forward(x, styles[k].clone(), noise.next());
            k += 1;
            let rgb = block.to_rgb.forward(x.clone(), styles[k].clone(), None);
            img = Some(match img {
                None => rgb,
                Some(prev) => upsample2(prev) + rgb,
            });
        }
        img.expect("at least one block")
    }
}

/// The StyleGAN2-style family (`--arch stylegan2`).
pub struct Stylegan2;

impl Family for Stylegan2 {
    const NAME: &'static str = "stylegan2";
    const ABOUT: &'static str = "StyleGAN2-style generator (mapping network from z and all tags, \
        modulated convolutions, per-pixel noise, skip outputs) + the residual projection critic \
        with minibatch standard deviation";

    type GeneratorConfig = Stylegan2GeneratorConfig;
    type DiscriminatorConfig = ResnetCganDiscriminatorConfig;
    type Generator = Stylegan2Generator;
    type Discriminator = ResnetCganDiscriminator;

    fn generator_sizes(c: &Stylegan2GeneratorConfig) -> GeneratorSizes {
        GeneratorSizes {
            latent_dim: c.latent_dim,
            num_tags: c.num_tags,
            resolution: c.resolution,
            conditional: true,
            styles: c.num_styles(),
            style_dim: c.w_dim,
        }
    }

    fn validate_generator(c: &Stylegan2GeneratorConfig) -> Result<(), ModelError> {
        c.validate()
    }

    fn init_generator(
        c: &Stylegan2GeneratorConfig,
        device: &Device,
    ) -> Result<Stylegan2Generator, ModelError> {
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
    ) -> Result<(Stylegan2GeneratorConfig, ResnetCganDiscriminatorConfig), ModelError> {
        if o.unconditional {
            return Err(unsupported(
                Self::NAME,
                "--unconditional",
                "the stylegan2 family is conditioned on the tags (try --arch dcgan)",
            ));
        }
        let mut g = Stylegan2GeneratorConfig::new(num_tags).with_resolution(resolution);
        let mut d = ResnetCganDiscriminatorConfig::new(num_tags)
            .with_resolution(resolution)
            .with_mbstd_group(4);
        if let Some(v) = o.latent_dim {
            g.latent_dim = v;
        }
        if let Some(v) = o.g_channels {
            g.channels = v;
        }
        // The synthesis depth follows the resolution; the blocks knob sets the mapping's.
        if let Some(v) = o.g_blocks {
            g.mapping_layers = v;
        }
        if let Some(v) = o.d_channels {
            d.channels = v;
        }
        Ok((g, d))
    }
}

impl GeneratorModule for Stylegan2Generator {
    fn generate(&self, input: GeneratorInput) -> Tensor<4> {
        self.forward(input)
    }

    fn style(&self, input: &GeneratorInput) -> Option<Tensor<2>> {
        Some(self.style_of(
            input.z.clone(),
            input.c.clone(),
            input.truncation,
            input.style_offset.as_ref(),
        ))
    }

    fn style_weights(&self) -> Vec<Tensor<2>> {
        self.affine_weights()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::StyleMix;

    fn tiny() -> Stylegan2GeneratorConfig {
        Stylegan2GeneratorConfig::new(3)
            .with_latent_dim(8)
            .with_w_dim(8)
            .with_mapping_layers(2)
            .with_resolution(16)
            .with_channels(8)
            .with_full_width_until(8)
            .with_min_channels(4)
    }

    fn inputs(b: usize, seed: u64, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let mut rng = SplitMix64::new(seed);
        let z = Tensor::from_data(TensorData::new(rng.normals(b * 8), [b, 8]), device);
        let mut c = vec![0.0f32; b * 3];
        for i in 0..b {
            c[i * 3 + i % 3] = 1.0;
        }
        (z, Tensor::from_data(TensorData::new(c, [b, 3]), device))
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn shapes_styles_and_noise_layout() {
        let cfg = tiny();
        assert_eq!(cfg.num_styles(), 6);
        assert_eq!(cfg.noise_sides(), vec![4, 8, 8, 16, 16]);
        assert_eq!(
            (4..=16)
                .filter(|r: &usize| r.is_power_of_two())
                .map(|r| cfg.channels_at(r))
                .collect::<Vec<_>>(),
            vec![8, 8, 4]
        );
        let device = Device::flex();
        let g = crate::rng::seeded(&device, 1, || cfg.try_init(&device))
            .unwrap();
        assert_eq!(g.num_styles(), cfg.num_styles());
        let (z, c) = inputs(2, 3, &device);
        let out = g.forward(GeneratorInput::new(z, c));
        assert_eq!(out.dims(), [2, 3, 16, 16]);
        assert!(values(out).iter().all(|v| v.is_finite()));
    }

    /// A face depends on its noise seed and on nothing else drawn in the batch: the same seed
    /// and latent give the same pixels alone or in a batch; another noise seed changes them once
    /// the noise strengths are not zero.
    #[test]
    fn noise_comes_from_the_seed() {
        let device = Device::flex();
        let mut g =
            crate::rng::seeded(&device, 2, || tiny().try_init(&device))
                .unwrap();
        for block in &mut g.blocks {
            for conv in [&mut block.conv1].into_iter().chain(block.conv0.as_mut()) {
                conv.noise_strength = Some(param(Tensor::full([1], 0.05, &device)));
            }
        }
        let (z, c) = inputs(2, 5, &device);
        let both = values(g.forward(
            GeneratorInput::new(z.clone(), c.clone()).with_noise_seeds(vec![42, 7]),
        ));
        let alone = values(g.forward(
            GeneratorInput::new(z.clone().narrow(0, 1, 1), c.clone().narrow(0, 1, 1))
                .with_noise_seeds(vec![7]),
        ));
        let n = 3 * 16 * 16;
        let diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        assert!(diff(&both[n..], &alone) < 1e-5);
        let other = values(g.forward(
            GeneratorInput::new(z.clone().narrow(0, 1, 1), c.clone().narrow(0, 1, 1))
                .with_noise_seeds(vec![8]),
        ));
        assert!(diff(&other, &alone) > 1e-3, "noise seeds must matter");
        // Without noise seeds, the latent's own bits pick the noise: the same every time.
        let a = values(g.forward(GeneratorInput::new(z.clone(), c.clone())));
        let b = values(g.forward(GeneratorInput::new(z, c)));
        assert_eq!(a, b);
    }

    /// Demodulation removes the scale of each image's style: a style multiplied by a constant
    /// draws the same output.
    #[test]
    fn demodulation_makes_the_style_scale_irrelevant() {
        let device = Device::flex();
        let (conv, x, w) = crate::rng::seeded(&device, 3, || {
            (
                crate::rng::drawn(ModConv::new(16, 8, 3, 4, false, false, 1.0, &device)),
                Tensor::<4>::random([2, 16, 8, 8], Distribution::Normal(0.0, 1.0), &device),
                Tensor::<2>::random([2, 4], Distribution::Normal(0.0, 1.0), &device),
            )
        });
        // Exactly: a style scaled by a constant gives the same output.
        let s_conv = ModConv {
            affine: EqLinear {
                bias: param(Tensor::zeros([16], &device)),
                ..conv.affine.clone()
            },
            ..conv.clone()
        };
        let a = values(s_conv.forward(x.clone(), w.clone(), None));
        let b = values(s_conv.forward(x, w.mul_scalar(7.0), None));
        let max = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-4, "{max}");
    }

    /// The modulated convolution equals a convolution with the per-sample weight
    /// `w'_oik = w_oik s_i / sqrt(sum (w s)^2)` computed directly.
    #[test]
    fn modulated_conv_is_the_per_sample_weight() {
        let device = Device::flex();
        let (conv, x, w) = crate::rng::seeded(&device, 4, || {
            (
                crate::rng::drawn(ModConv::new(3, 2, 3, 4, false, false, 1.0, &device)),
                Tensor::<4>::random([2, 3, 5, 5], Distribution::Normal(0.0, 1.0), &device),
                Tensor::<2>::random([2, 4], Distribution::Normal(0.0, 1.0), &device),
            )
        });
        let got = values(conv.forward(x.clone(), w.clone(), None));
        let s = conv.affine.forward(w).mul_scalar(conv.gain);
        let weight = conv.conv.weight.val();
        let mut want = Vec::new();
        for i in 0..2 {
            let si = s.clone().narrow(0, i, 1).reshape([1, 3, 1, 1]);
            let wi = weight.clone() * si;
            let xi = x.clone().narrow(0, i, 1).mul_scalar(ACT_GAIN);
            let norm = wi
                .clone()
                .square()
                .sum_dim(3)
                .sum_dim(2)
                .sum_dim(1)
                .add_scalar(1e-8)
                .sqrt();
            let wi = wi / norm;
            let y = burn::tensor::module::conv2d(
                xi,
                wi,
                None,
                burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            );
            let y = leaky_relu(y + conv.bias.val().reshape([1, 2, 1, 1]), 0.2);
            want.extend(values(y));
        }
        let max = got
            .iter()
            .zip(&want)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-4, "{max}");
    }

    #[test]
    fn upsample2_is_bilinear_with_repeated_edges() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 4.0], [1, 1, 1, 2]), &device);
        let y = values(upsample2(x));
        // Rows repeat (one input row); columns: 0, 1, 3, 4.
        assert_eq!(y, vec![0.0, 1.0, 3.0, 4.0, 0.0, 1.0, 3.0, 4.0]);
        // A constant stays constant.
        let c = Tensor::<4>::ones([1, 2, 3, 3], &device);
        assert!(values(upsample2(c)).iter().all(|v| (v - 1.0).abs() < 1e-6));
    }

    /// Truncation with psi = 0 draws the tags' mean style for every latent; mixing from layer 0
    /// is the second latent's face and from the last layer changes only the last to-RGB.
    #[test]
    fn truncation_and_mixing() {
        let device = Device::flex();
        let g = crate::rng::seeded(&device, 5, || tiny().try_init(&device))
            .unwrap();
        let (z, c) = inputs(2, 9, &device);
        let c1 = c.clone().narrow(0, 0, 1).repeat_dim(0, 2);
        let seeds = vec![1, 1];
        let t0 = values(g.forward(
            GeneratorInput::new(z.clone(), c1.clone())
                .with_noise_seeds(seeds.clone())
                .with_truncation(0.0),
        ));
        let n = 3 * 16 * 16;
        let max = (0..n).map(|i| (t0[i] - t0[n + i]).abs()).fold(0.0f32, f32::max);
        assert!(max < 1e-4, "psi 0: one face per tag set ({max})");
        let plain = values(g.forward(
            GeneratorInput::new(z.clone(), c1.clone()).with_noise_seeds(seeds.clone()),
        ));
        let far = (0..n).map(|i| (plain[i] - plain[n + i]).abs()).fold(0.0f32, f32::max);
        assert!(far > 1e-3, "psi 1: latents differ ({far})");

        let (z2, _) = inputs(2, 10, &device);
        let mixed_all = values(g.forward(
            GeneratorInput::new(z.clone(), c1.clone())
                .with_noise_seeds(seeds.clone())
                .with_mix(StyleMix {
                    z: z2.clone(),
                    c: c1.clone(),
                    from_layer: 0,
                }),
        ));
        let second = values(g.forward(
            GeneratorInput::new(z2, c1.clone()).with_noise_seeds(seeds.clone()),
        ));
        assert_eq!(mixed_all, second);
        let (z3, _) = inputs(2, 11, &device);
        let mixed_none = values(g.forward(
            GeneratorInput::new(z, c1.clone())
                .with_noise_seeds(seeds)
                .with_mix(StyleMix {
                    z: z3,
                    c: c1,
                    from_layer: g.num_styles(),
                }),
        ));
        assert_eq!(mixed_none, plain);
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(tiny().with_resolution(12).validate().is_err());
        assert!(tiny().with_mapping_layers(0).validate().is_err());
        assert!(tiny().with_mapping_lr_mul(f64::NAN).validate().is_err());
        let mut none = tiny();
        none.num_tags = 0;
        assert!(none.try_init(&Device::flex()).is_err());
        tiny().validate().unwrap();
    }
}
