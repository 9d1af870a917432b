//! The DCGAN baseline family (Radford et al. 2016): a generator of transposed convolutions with
//! batch norm and ReLU, and a critic of strided convolutions with leaky ReLU that outputs one
//! number per image. Both come unconditional or tag-conditional.
//!
//! - Conditional G concatenates the tag vector to the noise before the first transposed
//!   convolution (cDCGAN); unconditional G reads only the noise (the tags are ignored).
//! - The critic has **no batch norm**: WGAN-GP's penalty is per sample, which batch statistics
//!   would break (Gulrajani et al. 2017, section 4). Conditioning is by projection on the last
//!   feature map, as in [`super::resnet_cgan`], so the trainer can score an image against true and wrong
//!   tags from one feature pass.
//! - Optional residual blocks run in G at 16x16 (or at the last map if the image is smaller).

use burn::nn::{
    BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d,
    conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig},
};
use burn::prelude::*;
use burn::tensor::activation::relu;
use kernels::act::leaky_relu;
use kernels::conv::{conv_transpose2d, conv2d};
use kernels::norm::batch_norm;

use super::resnet_cgan::{Activation, ResBlock};
use super::limits::{MAX_BLOCKS, MAX_CHANNELS, MAX_LATENT, MAX_RESOLUTION, MAX_TAGS};
use super::{
    DiscriminatorModule, Family, FamilyOptions, GeneratorInput, GeneratorModule, GeneratorSizes,
    check_sizes,
};
use crate::ModelError;

/// DCGAN's weight initialisation: N(0, 0.02).
fn dcgan_init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// Number of x2 stages from a 4x4 map to `resolution`.
fn stages(resolution: usize) -> Result<usize, ModelError> {
    if resolution < 8 || !resolution.is_power_of_two() {
        return Err(ModelError::BadConfig(format!(
            "DCGAN resolution must be a power of two >= 8, not {resolution}"
        )));
    }
    Ok(resolution.trailing_zeros() as usize - 2)
}

/// DCGAN generator. The first map is 4x4 with `channels * 2^(stages-1)` channels; every stage
/// doubles the side and halves the channels down to `channels`, and the last one makes RGB.
#[derive(Config, Debug)]
pub struct DcganGeneratorConfig {
    /// Noise size (64, 96 and 128 are the usual ones).
    #[config(default = 128)]
    pub latent_dim: usize,
    /// Length of the tag-condition vector (the vocabulary size).
    pub num_tags: usize,
    /// Whether the tags are an input (cDCGAN). If not, G draws from noise alone.
    #[config(default = true)]
    pub conditional: bool,
    #[config(default = 64)]
    pub resolution: usize,
    /// Channels of the last hidden map (DCGAN's `ngf`).
    #[config(default = 32)]
    pub channels: usize,
    /// Residual blocks at 16x16 (0 = plain DCGAN).
    #[config(default = 0)]
    pub res_blocks: usize,
}

/// DCGAN critic: strided 4x4 convolutions with leaky ReLU from `channels` up (doubling) to a
/// 4x4 map, then one score per image.
#[derive(Config, Debug)]
pub struct DcganDiscriminatorConfig {
    pub num_tags: usize,
    #[config(default = true)]
    pub conditional: bool,
    #[config(default = 64)]
    pub resolution: usize,
    /// Channels of the first convolution (DCGAN's `ndf`).
    #[config(default = 32)]
    pub channels: usize,
    #[config(default = 0.2)]
    pub leaky_slope: f64,
}

/// Transposed conv 4x4 - BN - ReLU.
#[derive(Module, Debug)]
pub struct UpConv {
    conv: ConvTranspose2d,
    bn: BatchNorm,
}

impl UpConv {
    /// `x`: `[B, C_in, H, W]` -> `[B, C_out, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(batch_norm(&self.bn, conv_transpose2d(&self.conv, x)))
    }
}

#[derive(Module, Debug)]
pub struct DcganGenerator {
    /// `[B, L(+T), 1, 1]` -> `[B, C0, 4, 4]`
    project: ConvTranspose2d,
    bn0: BatchNorm,
    ups: Vec<UpConv>,
    blocks: Vec<ResBlock>,
    /// Index into `ups` after which the residual blocks run (`usize::MAX` before any).
    blocks_after: usize,
    to_rgb: ConvTranspose2d,
    conditional: bool,
}

impl DcganGeneratorConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        check_sizes(
            "generator",
            &[
                ("resolution", self.resolution, MAX_RESOLUTION),
                ("channels", self.channels, MAX_CHANNELS),
                ("res_blocks", self.res_blocks, MAX_BLOCKS),
                ("latent_dim", self.latent_dim, MAX_LATENT),
                ("num_tags", self.num_tags, MAX_TAGS),
            ],
            || {
                // The widest map, `channels * resolution / 8`, bounds every layer.
                let n = stages(self.resolution.max(4)).unwrap_or(1) as u64;
                let top = self.channels as u64 * (self.resolution as u64 / 8).max(1);
                let input = (self.latent_dim + self.num_tags) as u64;
                input * top * 16 + n * 16 * top * top + self.res_blocks as u64 * 18 * top * top
            },
        )?;
        stages(self.resolution)?;
        if self.latent_dim == 0 || self.channels == 0 {
            return Err(ModelError::BadConfig("sizes must be positive".into()));
        }
        Ok(())
    }

    /// Channels of the map at `2^(i+2)` pixels.
    fn channels_at(&self, i: usize, n: usize) -> usize {
        self.channels << (n - 1 - i)
    }

    /// A fresh network, every weight drawn now from the backend's stream (see [`crate::rng`]).
    pub fn try_init(&self, device: &Device) -> Result<DcganGenerator, ModelError> {
        crate::rng::initialised(|| self.build(device))
    }

    fn build(&self, device: &Device) -> Result<DcganGenerator, ModelError> {
        self.validate()?;
        let n = stages(self.resolution)?;
        let input = self.latent_dim + if self.conditional { self.num_tags } else { 0 };
        let up = |c_in: usize, c_out: usize| {
            ConvTranspose2dConfig::new([c_in, c_out], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_initializer(dcgan_init())
                .init(device)
        };
        // Hidden maps are 4, 8, ..., resolution/2: n maps; the last stage makes RGB.
        let ups = (1..n)
            .map(|i| UpConv {
                conv: up(self.channels_at(i - 1, n), self.channels_at(i, n)),
                bn: BatchNormConfig::new(self.channels_at(i, n)).init(device),
            })
            .collect();
        // Map i has side 2^(i+2); residual blocks at side 16 (i = 2) or the last hidden map.
        let at = 2.min(n - 1);
        let c_at = self.channels_at(at, n);
        Ok(DcganGenerator {
            project: ConvTranspose2dConfig::new([input, self.channels_at(0, n)], [4, 4])
                .with_initializer(dcgan_init())
                .init(device),
            bn0: BatchNormConfig::new(self.channels_at(0, n)).init(device),
            ups,
            blocks: (0..self.res_blocks)
                .map(|_| ResBlock::new(c_at, Activation::Relu, device))
                .collect(),
            blocks_after: if at == 0 { usize::MAX } else { at - 1 },
            to_rgb: up(self.channels_at(n - 1, n), 3),
            conditional: self.conditional,
        })
    }

    pub fn init(&self, device: &Device) -> DcganGenerator {
        self.try_init(device)
            .expect("invalid DCGAN generator config")
    }
}

impl DcganGenerator {
    /// - `z`: `[B, latent_dim]`
    /// - `c`: `[B, num_tags]` (ignored by an unconditional generator)
    /// - returns `[B, 3, resolution, resolution]` in `[-1, 1]`
    pub fn forward(&self, z: Tensor<2>, c: Tensor<2>) -> Tensor<4> {
        let [b, _] = z.dims();
        let x = if self.conditional {
            Tensor::cat(vec![z, c], 1)
        } else {
            z
        };
        let [_, k] = x.dims();
        let mut h = relu(batch_norm(
            &self.bn0,
            conv_transpose2d(&self.project, x.reshape([b, k, 1, 1])),
        ));
        if self.blocks_after == usize::MAX {
            h = self.run_blocks(h);
        }
        for (i, up) in self.ups.iter().enumerate() {
            h = up.forward(h);
            if i == self.blocks_after {
                h = self.run_blocks(h);
            }
        }
        kernels::act::tanh(conv_transpose2d(&self.to_rgb, h))
    }

    fn run_blocks(&self, mut h: Tensor<4>) -> Tensor<4> {
        for block in &self.blocks {
            h = block.forward(h);
        }
        h
    }
}

#[derive(Module, Debug)]
pub struct DcganDiscriminator {
    convs: Vec<Conv2d>,
    psi: Linear,
    embed: Option<Linear>,
    slope: f64,
}

impl DcganDiscriminatorConfig {
    /// Length of the feature vector `h` (the flattened 4x4 map).
    pub fn feature_dim(&self) -> Result<usize, ModelError> {
        check_sizes(
            "critic",
            &[
                ("resolution", self.resolution, MAX_RESOLUTION),
                ("channels", self.channels, MAX_CHANNELS),
                ("num_tags", self.num_tags, MAX_TAGS),
            ],
            || {
                let n = stages(self.resolution.max(4)).unwrap_or(1) as u64;
                let top = self.channels as u64 * (self.resolution as u64 / 8).max(1);
                n * 16 * top * top + (self.num_tags as u64 + 1) * 16 * top
            },
        )?;
        let n = stages(self.resolution)?;
        Ok((self.channels << (n - 1)) * 16)
    }

    /// A fresh network, every weight drawn now from the backend's stream (see [`crate::rng`]).
    pub fn try_init(&self, device: &Device) -> Result<DcganDiscriminator, ModelError> {
        crate::rng::initialised(|| self.build(device))
    }

    fn build(&self, device: &Device) -> Result<DcganDiscriminator, ModelError> {
        self.feature_dim()?;
        let n = stages(self.resolution)?;
        if self.channels == 0 {
            return Err(ModelError::BadConfig("sizes must be positive".into()));
        }
        let f = self.feature_dim()?;
        let convs = (0..n)
            .map(|i| {
                let c_in = if i == 0 { 3 } else { self.channels << (i - 1) };
                Conv2dConfig::new([c_in, self.channels << i], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_initializer(dcgan_init())
                    .init(device)
            })
            .collect();
        Ok(DcganDiscriminator {
            convs,
            psi: LinearConfig::new(f, 1)
                .with_initializer(dcgan_init())
                .init(device),
            embed: self.conditional.then(|| {
                LinearConfig::new(self.num_tags, f)
                    .with_bias(false)
                    .with_initializer(dcgan_init())
                    .init(device)
            }),
            slope: self.leaky_slope,
        })
    }

    pub fn init(&self, device: &Device) -> DcganDiscriminator {
        self.try_init(device)
            .expect("invalid DCGAN discriminator config")
    }
}

impl DcganDiscriminator {
    /// `x`: `[B, 3, R, R]` -> `[B, F]`, the last (4x4) map flattened.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for conv in &self.convs {
            h = leaky_relu(conv2d(conv, h), self.slope);
        }
        h.flatten(1, 3)
    }

    /// `h`: `[B, F]`, `c`: `[B, num_tags]` -> `[B]`. Unconditional critics ignore `c`.
    pub fn score(&self, h: Tensor<2>, c: Tensor<2>) -> Tensor<1> {
        let s = self.psi.forward(h.clone());
        let s = match &self.embed {
            Some(embed) => s + (embed.forward(c) * h).sum_dim(1),
            None => s,
        };
        s.flatten(0, 1)
    }

    /// `x`: `[B, 3, R, R]`, `c`: `[B, num_tags]` -> `[B]`.
    pub fn forward(&self, x: Tensor<4>, c: Tensor<2>) -> Tensor<1> {
        self.score(self.features(x), c)
    }
}

/// The DCGAN baseline family (`--arch dcgan`).
pub struct Dcgan;

impl Family for Dcgan {
    const NAME: &'static str = "dcgan";
    const ABOUT: &'static str = "DCGAN: transposed convolutions + batch norm + ReLU; strided \
        convolution critic (--unconditional: tags ignored)";

    type GeneratorConfig = DcganGeneratorConfig;
    type DiscriminatorConfig = DcganDiscriminatorConfig;
    type Generator = DcganGenerator;
    type Discriminator = DcganDiscriminator;

    fn generator_sizes(c: &DcganGeneratorConfig) -> GeneratorSizes {
        GeneratorSizes {
            latent_dim: c.latent_dim,
            num_tags: c.num_tags,
            resolution: c.resolution,
            conditional: c.conditional,
            styles: 0,
            style_dim: 0,
        }
    }

    fn validate_generator(c: &DcganGeneratorConfig) -> Result<(), ModelError> {
        c.validate()
    }

    fn init_generator(c: &DcganGeneratorConfig, device: &Device) -> Result<DcganGenerator, ModelError> {
        c.try_init(device)
    }

    fn discriminator_conditional(c: &DcganDiscriminatorConfig) -> bool {
        c.conditional
    }

    fn feature_dim(c: &DcganDiscriminatorConfig) -> Result<usize, ModelError> {
        c.feature_dim()
    }

    fn init_discriminator(
        c: &DcganDiscriminatorConfig,
        device: &Device,
    ) -> Result<DcganDiscriminator, ModelError> {
        c.try_init(device)
    }

    fn configure(
        num_tags: usize,
        resolution: usize,
        o: &FamilyOptions,
    ) -> Result<(DcganGeneratorConfig, DcganDiscriminatorConfig), ModelError> {
        let mut g = DcganGeneratorConfig::new(num_tags)
            .with_resolution(resolution)
            .with_conditional(!o.unconditional);
        let mut d = DcganDiscriminatorConfig::new(num_tags)
            .with_resolution(resolution)
            .with_conditional(!o.unconditional);
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

impl GeneratorModule for DcganGenerator {
    fn generate(&self, input: GeneratorInput) -> Tensor<4> {
        self.forward(input.z, input.c)
    }
}

impl DiscriminatorModule for DcganDiscriminator {
    fn features(&self, x: Tensor<4>) -> Tensor<2> {
        DcganDiscriminator::features(self, x)
    }

    fn score(&self, h: Tensor<2>, c: Tensor<2>) -> Tensor<1> {
        DcganDiscriminator::score(self, h, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_at_several_resolutions() {
        let device = Device::flex();
        for (res, blocks) in [(8, 1), (16, 0), (32, 2), (64, 1)] {
            let g = DcganGeneratorConfig::new(3)
                .with_latent_dim(8)
                .with_resolution(res)
                .with_channels(4)
                .with_res_blocks(blocks)
                .init(&device);
            let z = crate::rng::backend_stream(|| {
                Tensor::random([2, 8], burn::tensor::Distribution::Default, &device)
            });
            let img = g.forward(z, Tensor::ones([2, 3], &device));
            assert_eq!(img.dims(), [2, 3, res, res], "resolution {res}");
            let cfg = DcganDiscriminatorConfig::new(3)
                .with_resolution(res)
                .with_channels(4);
            let d = cfg.init(&device);
            let h = d.features(img.clone());
            assert_eq!(h.dims(), [2, cfg.feature_dim().unwrap()]);
            assert_eq!(d.forward(img, Tensor::ones([2, 3], &device)).dims(), [2]);
        }
    }

    #[test]
    fn conditioning_matters_only_when_conditional() {
        let device = Device::flex();
        // Several latents and 8 channels: with DCGAN's small init and ReLUs, one latent through a
        // 4-channel net sometimes reached the output through no live unit at all (flaky test).
        let z = crate::rng::backend_stream(|| {
            Tensor::<2>::random([8, 8], burn::tensor::Distribution::Default, &device)
        });
        let c1 = Tensor::<2>::from_floats([[1.0, 0.0]], &device).repeat_dim(0, 8);
        let c2 = Tensor::<2>::from_floats([[0.0, 1.0]], &device).repeat_dim(0, 8);
        for conditional in [true, false] {
            let g = DcganGeneratorConfig::new(2)
                .with_latent_dim(8)
                .with_resolution(16)
                .with_channels(8)
                .with_conditional(conditional)
                .init(&device)
                .valid();
            let diff = (g.forward(z.clone(), c1.clone()) - g.forward(z.clone(), c2.clone()))
                .abs()
                .max()
                .into_scalar::<f32>();
            assert_eq!(diff > 0.0, conditional, "conditional = {conditional}");
            let d = DcganDiscriminatorConfig::new(2)
                .with_resolution(16)
                .with_channels(4)
                .with_conditional(conditional)
                .init(&device);
            let x = Tensor::<4>::ones([8, 3, 16, 16], &device);
            let diff = (d.forward(x.clone(), c1.clone()) - d.forward(x, c2.clone()))
                .abs()
                .max()
                .into_scalar::<f32>();
            assert_eq!(diff > 0.0, conditional, "conditional = {conditional}");
        }
    }

    #[test]
    fn bad_resolutions_are_errors() {
        let device = Device::flex();
        let g = DcganGeneratorConfig::new(2).with_resolution(48);
        assert!(g.try_init(&device).is_err());
        let d = DcganDiscriminatorConfig::new(2).with_resolution(4);
        assert!(d.try_init(&device).is_err());
    }
}
