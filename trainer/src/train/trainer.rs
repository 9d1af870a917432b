//! One training session: the networks, their Adam optimisers and the random stream; one step
//! (`n_critic` critic updates, one generator update, the EMA), and exactly-resumable
//! checkpoints of all of it.
//!
//! All randomness of training (batches, flips, latents, wrong tags) comes from one
//! [`SplitMix64`] whose state is saved in the checkpoint, so a resumed run takes the very same
//! next step as an uninterrupted one.

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::Serialize;
use shared_model::rng::seeded;
use shared_model::sample::{FaceRequest, to_rgba};
use shared_model::{
    AnyDiscriminator, AnyGenerator, DiscriminatorModule, GeneratorInput, SplitMix64, StyleMix,
    TagVocab,
};

use super::TrainConfig;
use super::losses::{LossKind, PairWeights, d_loss, g_loss, gradient_penalty};
use super::recipe::{CriticView, GeneratorView, Term};
use super::run_dir::{Checkpoint, Part, RunDir, TrainState};
use super::spectral::SpectralNorm;
use crate::data::Dataset;

/// Losses and critic scores of one step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepStats {
    pub loss_d: f32,
    pub loss_g: f32,
    pub d_real: f32,
    pub d_fake: f32,
    pub d_wrong: f32,
    /// Gradient penalty before its weight (0 unless the loss has one).
    pub gp: f32,
    /// The recipe's terms of this step before their weights, by name (a lazy term such as
    /// `r1` only on the steps that evaluate it).
    pub terms: Vec<(&'static str, f32)>,
}

/// A training session: the networks, their optimisers and the random stream.
pub struct Trainer {
    pub cfg: TrainConfig,
    pub g: AnyGenerator,
    pub d: AnyDiscriminator,
    pub g_ema: AnyGenerator,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    pub state: TrainState,
    device: Device,
    /// Condition vectors of every dataset image, `len * num_tags`.
    conds: Vec<f32>,
}

/// Collects every float tensor of a module (parameters and running statistics) in visit order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().flatten::<1>(0, D - 1));
    }
}

/// Counts the non-finite values (NaN, infinities) of a module's float tensors.
struct NonFinite(usize);

impl ModuleVisitor for NonFinite {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        let bad = v.clone().is_nan().int().sum() + v.is_inf().int().sum();
        self.0 += bad.into_scalar::<i64>() as usize;
    }
}

/// Number of NaN or infinite values among `m`'s parameters and statistics.
pub fn non_finite<M: Module>(m: &M) -> usize {
    let mut v = NonFinite(0);
    m.visit(&mut v);
    v.0
}

/// `ema = beta * ema + (1 - beta) * src`, tensor by tensor, in visit order.
struct EmaUpdate {
    src: std::vec::IntoIter<Tensor<1>>,
    beta: f64,
}

impl ModuleMapper for EmaUpdate {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, ema, mapper) = param.consume();
        let src = self
            .src
            .next()
            .expect("EMA source and target have the same structure");
        let src: Tensor<D> = src.reshape(ema.shape());
        let out = ema.mul_scalar(self.beta) + src.mul_scalar(1.0 - self.beta);
        Param::from_mapped_value(id, out, mapper)
    }
}

impl Trainer {
    /// A fresh run: networks initialised from `cfg.seed`.
    pub fn new(cfg: TrainConfig, data: &Dataset, device: &Device) -> Result<Self> {
        if !cfg.precision.supported() {
            anyhow::bail!(
                "this run computes its GEMMs in {}, which is not available: {} (fp32 runs \
                 anywhere)",
                cfg.precision,
                kernels::precision::bf16_missing().unwrap_or_default()
            );
        }
        let device = device.clone().autodiff();
        let (g, d) = seeded(&device, cfg.seed, || {
            Ok::<_, shared_model::ModelError>((
                cfg.generator.try_init(&device)?,
                cfg.discriminator.try_init(&device)?,
            ))
        })?;
        let g_ema = g.valid();
        let conds = encode_all(&cfg.vocab, data)?;
        let mut rng = SplitMix64::new(cfg.seed ^ 0x006B_7961_7261);
        let spectral = cfg.spectral_norm.then(|| SpectralNorm::new(&d, &mut rng));
        Ok(Self {
            opt_g: cfg.optimizer.init(),
            opt_d: cfg.optimizer.init(),
            state: TrainState {
                step: 0,
                images_seen: 0,
                rng,
                seconds: 0.0,
                spectral,
            },
            cfg,
            g,
            d,
            g_ema,
            device,
            conds,
        })
    }

    fn num_tags(&self) -> usize {
        self.cfg.vocab.len()
    }

    /// A batch of real images `[B, 3, R, R]` in `[-1, 1]` with their conditions `[B, T]` and wrong
    /// conditions `[B, T]`, all drawn from the run's random stream.
    fn real_batch(&mut self, data: &Dataset) -> (Tensor<4>, Tensor<2>, Tensor<2>) {
        let b = self.cfg.batch_size;
        let r = data.resolution;
        let t = self.num_tags();
        let mut pix = Vec::with_capacity(b * 3 * r * r);
        let mut cond = Vec::with_capacity(b * t);
        let mut wrong = Vec::with_capacity(b * t);
        let rng = &mut self.state.rng;
        for _ in 0..b {
            let i = rng.below(data.len() as u64) as usize;
            let flip = self.cfg.flip && rng.next_u64() & 1 == 1;
            let img = data.image(i);
            for ch in 0..3 {
                for y in 0..r {
                    for x in 0..r {
                        let sx = if flip { r - 1 - x } else { x };
                        pix.push(img[(y * r + sx) * 3 + ch] as f32 / 127.5 - 1.0);
                    }
                }
            }
            let c = &self.conds[i * t..(i + 1) * t];
            cond.extend_from_slice(c);
            wrong.extend(wrong_condition(&self.cfg.vocab, c, rng));
        }
        let dev = &self.device;
        (
            Tensor::from_data(TensorData::new(pix, [b, 3, r, r]), dev),
            Tensor::from_data(TensorData::new(cond, [b, t]), dev),
            Tensor::from_data(TensorData::new(wrong, [b, t]), dev),
        )
    }

    fn latents(&mut self) -> Tensor<2> {
        let b = self.cfg.batch_size;
        let l = self.cfg.generator.latent_dim();
        let z = self.state.rng.normals(b * l);
        Tensor::from_data(TensorData::new(z, [b, l]), &self.device)
    }

    /// The generator's input for a batch of fakes with conditions `cond`: fresh latents and, for
    /// families with styles, per-image noise seeds and (with probability `style_mixing`)
    /// StyleGAN2's mixing regularisation: from a random crossover layer on, the styles of a
    /// second latent with the same tags. All drawn from the run's stream.
    fn fake_input(&mut self, cond: &Tensor<2>) -> GeneratorInput {
        let z = self.latents();
        let styles = self.cfg.generator.sizes().styles;
        let input = GeneratorInput::new(z, cond.clone());
        if styles == 0 {
            return input;
        }
        let b = self.cfg.batch_size;
        let seeds = (0..b).map(|_| self.state.rng.next_u64()).collect();
        let input = input.with_noise_seeds(seeds);
        if styles > 1 && self.state.rng.next_f64() < self.cfg.style_mixing {
            let from_layer = 1 + self.state.rng.below(styles as u64 - 1) as usize;
            let z2 = self.latents();
            return input.with_mix(StyleMix {
                z: z2,
                c: cond.clone(),
                from_layer,
            });
        }
        input
    }

    /// Per-image random points on the segments between real and fake images (`[B, C, H, W]`), where
    /// WGAN-GP evaluates its penalty (which detaches them itself).
    fn interpolate(&mut self, real: Tensor<4>, fake: Tensor<4>) -> Tensor<4> {
        let b = real.dims()[0];
        let alpha: Vec<f32> = (0..b).map(|_| self.state.rng.next_f64() as f32).collect();
        let alpha = Tensor::<4>::from_data(TensorData::new(alpha, [b, 1, 1, 1]), &self.device);
        real * alpha.clone() + fake * alpha.neg().add_scalar(1.0)
    }

    /// `n_critic` D updates then one G update (their GEMMs at the run's precision), then the
    /// EMA (fp32).
    pub fn step(&mut self, data: &Dataset) -> StepStats {
        let stats = kernels::precision::with(self.cfg.precision, || self.updates(data));
        self.state.step += 1;
        self.state.images_seen += self.cfg.batch_size as u64;
        self.update_ema();
        stats
    }

    /// The D and G updates of one step.
    fn updates(&mut self, data: &Dataset) -> StepStats {
        let first = self.state.step * self.cfg.n_critic as u64;
        let (mut cond, mut stats) = self.d_step(data, first);
        for i in 1..self.cfg.n_critic as u64 {
            let earlier = std::mem::take(&mut stats.terms);
            (cond, stats) = self.d_step(data, first + i);
            // A lazy term evaluated by an earlier critic update of the step still shows.
            for (name, v) in earlier {
                if !stats.terms.iter().any(|(n, _)| *n == name) {
                    stats.terms.push((name, v));
                }
            }
        }
        let (loss_g, terms) = self.g_step(cond);
        stats.loss_g = loss_g;
        stats.terms.extend(terms);
        stats
    }

    /// The condition the networks see now: `cond` scaled by the recipe's schedule, or itself.
    fn scaled(&self, cond: &Tensor<2>) -> Tensor<2> {
        match self.cfg.recipe.condition_scale(self.state.images_seen) {
            Some(s) => cond.clone().mul_scalar(s),
            None => cond.clone(),
        }
    }

    /// One discriminator update (the `update`-th of the run, counted from 0) on a fresh real
    /// batch; returns the batch's conditions `[B, T]` (the generator step reuses them) and the D
    /// half of the statistics.
    ///
    /// The critic sees the real images with their tags and with wrong tags and the generated
    /// ones with theirs, every image through the recipe's augmentations; the loss is the
    /// adversarial loss, then the recipe's critic terms in their order, then WGAN-GP's penalty.
    fn d_step(&mut self, data: &Dataset, update: u64) -> (Tensor<2>, StepStats) {
        let (real_raw, cond, wrong) = self.real_batch(data);
        let kind = self.cfg.loss;
        let scale = self.cfg.recipe.condition_scale(self.state.images_seen);
        let (seen_cond, wrong, pair_weights) = match scale {
            Some(s) => (
                cond.clone().mul_scalar(s),
                wrong.mul_scalar(s),
                PairWeights {
                    wrong: self.cfg.pair_weights.wrong * s,
                    ..self.cfg.pair_weights
                },
            ),
            None => (cond.clone(), wrong, self.cfg.pair_weights),
        };
        let input = self.fake_input(&seen_cond);
        let fake_raw = self.g.forward(input).detach();
        let recipe = self.cfg.recipe.clone();
        let real = recipe.augment(real_raw.clone(), &mut self.state.rng);
        let fake = recipe.augment(fake_raw.clone(), &mut self.state.rng);
        let critic = self.critic(self.d.clone(), 1);
        let h_real = critic.features(real.clone());
        let s_real = critic.score(h_real.clone(), seen_cond.clone());
        let s_wrong = critic.score(h_real, wrong);
        let s_fake = critic.forward(fake.clone(), seen_cond.clone());
        let stats_scores = [
            s_real.clone().mean().into_scalar::<f32>(),
            s_fake.clone().mean().into_scalar::<f32>(),
            s_wrong.clone().mean().into_scalar::<f32>(),
        ];
        let terms = recipe.critic_terms(
            &CriticView {
                critic: &critic,
                real_raw: &real_raw,
                fake_raw: &fake_raw,
                real: &real,
                fake: &fake,
                cond: &seen_cond,
                s_real: &s_real,
                s_fake: &s_fake,
                s_wrong: (self.cfg.pair_weights.wrong > 0.0).then_some(&s_wrong),
                update,
            },
            &mut self.state.rng,
        );
        let mut loss_d = d_loss(kind, s_real, s_fake, s_wrong, pair_weights);
        let term_values = add_terms(&mut loss_d, terms);
        let mut gp_value = 0.0;
        if kind == LossKind::WganGp && self.cfg.gp_weight > 0.0 {
            let x_hat = self.interpolate(real, fake);
            let frozen = critic.clone().no_grad();
            let gp = gradient_penalty(
                |x| critic.forward(x, seen_cond.clone()),
                |x| frozen.forward(x, seen_cond.clone()),
                x_hat,
                1.0,
            );
            gp_value = gp.clone().into_scalar::<f32>();
            loss_d = loss_d + gp.mul_scalar(self.cfg.gp_weight);
        }
        let loss_d_value = loss_d.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss_d.backward(), &self.d);
        self.d = self
            .opt_d
            .step(self.cfg.optimizer.lr, self.d.clone(), grads);
        let stats = StepStats {
            loss_d: loss_d_value,
            loss_g: 0.0,
            d_real: stats_scores[0],
            d_fake: stats_scores[1],
            d_wrong: stats_scores[2],
            gp: gp_value,
            terms: term_values,
        };
        (cond, stats)
    }

    /// One generator update for conditions `cond` `[B, T]`, through a critic whose parameters take
    /// no gradient (and the recipe's augmentations); returns the generator loss and the values of
    /// the recipe's generator terms.
    fn g_step(&mut self, cond: Tensor<2>) -> (f32, Vec<(&'static str, f32)>) {
        let kind = self.cfg.loss;
        let recipe = self.cfg.recipe.clone();
        let cond = if recipe.pairs_conditions() {
            pair_halves(cond)
        } else {
            cond
        };
        let cond = self.scaled(&cond);
        let input = self.fake_input(&cond);
        let z = input.z.clone();
        let critic = self.critic(self.d.clone().no_grad(), 0);
        let fake = self.g.forward(input);
        let terms = recipe.generator_terms(&GeneratorView { z: &z, fake: &fake });
        let seen = recipe.augment(fake, &mut self.state.rng);
        let mut loss_g = g_loss(kind, critic.forward(seen, cond));
        let term_values = add_terms(&mut loss_g, terms);
        let loss_g_value = loss_g.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss_g.backward(), &self.g);
        self.g = self
            .opt_g
            .step(self.cfg.optimizer.lr, self.g.clone(), grads);
        (loss_g_value, term_values)
    }

    /// The critic as the losses see it: `d` itself, or its spectrally normalised copy (after
    /// `iterations` power-iteration steps) whose gradients still reach `d`'s parameters.
    fn critic(&mut self, d: AnyDiscriminator, iterations: usize) -> AnyDiscriminator {
        match &mut self.state.spectral {
            Some(sn) => sn.apply(d, iterations),
            None => d,
        }
    }

    /// stylegan2-ada's EMA: half-life in images, ramped up early in training.
    fn update_ema(&mut self) {
        let half_life = self
            .cfg
            .ema_half_life
            .min(self.state.images_seen as f64 * self.cfg.ema_rampup)
            .max(1e-8);
        let beta = 0.5f64.powf(self.cfg.batch_size as f64 / half_life);
        let mut collect = Collect(Vec::new());
        self.g.valid().visit(&mut collect);
        let mut update = EmaUpdate {
            src: collect.0.into_iter(),
            beta,
        };
        self.g_ema = self.g_ema.clone().map(&mut update);
    }

    /// Samples of the EMA generator on the run's fixed grid: `rows` tag sets x `cols` latents.
    pub fn sample_grid(&self, rows: usize, cols: usize) -> Result<Vec<Vec<u8>>> {
        let (z, c) =
            sample_grid_inputs(&self.cfg.vocab, self.cfg.generator.latent_dim(), rows, cols)?;
        let dev = self.device.clone().inner();
        let n = rows * cols;
        let z = Tensor::from_data(
            TensorData::new(z, [n, self.cfg.generator.latent_dim()]),
            &dev,
        );
        let c = Tensor::from_data(TensorData::new(c, [n, self.num_tags()]), &dev);
        Ok(to_rgba(self.g_ema.forward(GeneratorInput::new(z, c))))
    }

    /// Writes a complete checkpoint of this step into the run folder (see
    /// [`RunDir::save_checkpoint`]).
    pub fn save_checkpoint(&self, run: &RunDir) -> Result<Checkpoint> {
        self.check_finite()?;
        let optimizer = |o: &ModuleOptimizer| o.into_bytes().map_err(|e| anyhow::anyhow!("{e}"));
        let (g, d, g_ema) = (
            self.g.valid().to_bytes()?,
            self.d.valid().to_bytes()?,
            self.g_ema.clone().to_bytes()?,
        );
        let (opt_g, opt_d) = (optimizer(&self.opt_g)?, optimizer(&self.opt_d)?);
        let state = serde_json::to_string_pretty(&self.state)?;
        let parts: [(Part, &[u8]); 6] = [
            (Part::Generator, &g),
            (Part::Discriminator, &d),
            (Part::GeneratorEma, &g_ema),
            (Part::OptimizerG, &opt_g),
            (Part::OptimizerD, &opt_d),
            (Part::State, state.as_bytes()),
        ];
        run.save_checkpoint(self.state.step, &parts, self.cfg.keep_checkpoints)
    }

    /// An error when a network holds NaN or infinite values: training has diverged, and such
    /// weights must never replace a good checkpoint (they draw black or white faces).
    pub fn check_finite(&self) -> Result<()> {
        for (name, bad) in [
            ("generator", non_finite(&self.g)),
            ("critic", non_finite(&self.d)),
            ("EMA generator", non_finite(&self.g_ema)),
        ] {
            if bad > 0 {
                anyhow::bail!(
                    "training diverged by step {}: the {name} holds {bad} NaN or infinite \
                     values; the checkpoints already written are kept as they are",
                    self.state.step
                );
            }
        }
        Ok(())
    }

    /// Restores networks, optimisers and the random stream from a checkpoint folder.
    pub fn load_checkpoint(&mut self, ckpt: &Path) -> Result<()> {
        let ckpt = Checkpoint::at(ckpt);
        let ctx = |part: Part| {
            format!(
                "checkpoint file {} does not fit this run",
                ckpt.file(part).display()
            )
        };
        let optimizer = |part: Part| -> Result<ModuleOptimizer> {
            let bytes = burn::tensor::Bytes::from_bytes_vec(ckpt.read(part)?);
            self.cfg
                .optimizer
                .init()
                .from_bytes(bytes)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| ctx(part))
        };
        self.g = self
            .g
            .clone()
            .load_bytes(ckpt.read(Part::Generator)?)
            .with_context(|| ctx(Part::Generator))?;
        self.d = self
            .d
            .clone()
            .load_bytes(ckpt.read(Part::Discriminator)?)
            .with_context(|| ctx(Part::Discriminator))?;
        self.g_ema = self
            .g_ema
            .clone()
            .load_bytes(ckpt.read(Part::GeneratorEma)?)
            .with_context(|| ctx(Part::GeneratorEma))?;
        self.opt_g = optimizer(Part::OptimizerG)?;
        self.opt_d = optimizer(Part::OptimizerD)?;
        self.state =
            serde_json::from_slice(&ckpt.read(Part::State)?).with_context(|| ctx(Part::State))?;
        self.check_finite().with_context(|| {
            format!(
                "{} holds diverged weights (written before kyara checked for them); resume \
                 from an earlier checkpoint",
                ckpt.path().display()
            )
        })?;
        Ok(())
    }
}

/// Adds the terms' losses to `loss`, in order; returns their logged values.
fn add_terms(loss: &mut Tensor<1>, terms: Vec<Term>) -> Vec<(&'static str, f32)> {
    terms
        .into_iter()
        .map(|t| {
            *loss = loss.clone() + t.loss;
            (t.name, t.value)
        })
        .collect()
}

/// `cond` `[B, T]` with its second half replaced by its first (rows `i` and `i + B/2` then share
/// tags; an odd last row keeps its own).
fn pair_halves(cond: Tensor<2>) -> Tensor<2> {
    let [b, _] = cond.dims();
    let h = b / 2;
    if h == 0 {
        return cond;
    }
    let first = cond.clone().slice(0..h);
    let mut parts = vec![first.clone(), first];
    if b % 2 == 1 {
        parts.push(cond.slice(2 * h..b));
    }
    Tensor::cat(parts, 0)
}

fn encode_all(vocab: &TagVocab, data: &Dataset) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(data.len() * vocab.len());
    for (tags, file) in data.tags.iter().zip(&data.files) {
        let c = vocab
            .encode(tags)
            .with_context(|| format!("{}: tags do not fit the run's vocabulary", file.display()))?;
        out.extend(c);
    }
    Ok(out)
}

/// A wrong condition for negative samples: every exclusive group moves to a different tag
/// (uniformly among the others); each free tag flips with probability 1/2, and if nothing has
/// changed yet one free tag is flipped, so the result never equals the input.
pub fn wrong_condition(vocab: &TagVocab, c: &[f32], rng: &mut SplitMix64) -> Vec<f32> {
    let mut out = c.to_vec();
    for g in &vocab.groups {
        let idx: Vec<usize> = g
            .tags
            .iter()
            .map(|t| vocab.index_of(t).expect("group tag in vocab"))
            .collect();
        let current = idx.iter().position(|&i| c[i] > 0.5);
        for &i in &idx {
            out[i] = 0.0;
        }
        let n = idx.len() as u64;
        let pick = match current {
            Some(j) => {
                let k = rng.below(n - 1) as usize;
                if k >= j { k + 1 } else { k }
            }
            None => rng.below(n) as usize,
        };
        out[idx[pick]] = 1.0;
    }
    let free: Vec<usize> = vocab
        .free
        .iter()
        .map(|t| vocab.index_of(t).expect("free tag in vocab"))
        .collect();
    for &i in &free {
        if rng.next_u64() & 1 == 1 {
            out[i] = 1.0 - out[i].clamp(0.0, 1.0).round();
        }
    }
    if out.as_slice() == c && !free.is_empty() {
        let i = free[rng.below(free.len() as u64) as usize];
        out[i] = 1.0 - out[i].clamp(0.0, 1.0).round();
    }
    out
}

/// Inputs of the fixed sample grid: row `r` uses the tags drawn for seed `10_000 + r`, column
/// `k` the latent of seed `k`. Returns (z, c) flattened row-major.
pub fn sample_grid_inputs(
    vocab: &TagVocab,
    latent_dim: usize,
    rows: usize,
    cols: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut z = Vec::new();
    let mut c = Vec::new();
    for r in 0..rows {
        let row = FaceRequest::new(vocab, latent_dim, 10_000 + r as u64, "")?;
        for k in 0..cols {
            let col = FaceRequest::new(vocab, latent_dim, k as u64, "")?;
            z.extend(col.z);
            c.extend(row.c.iter().copied());
        }
    }
    Ok((z, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_model::vocab::parse_tags;

    #[test]
    fn non_finite_values_are_counted() {
        let dev = Device::flex();
        let lin = shared_model::rng::backend_stream(|| {
            shared_model::rng::drawn(burn::nn::LinearConfig::new(3, 2).init(&dev))
        });
        assert_eq!(non_finite(&lin), 0);
        let mut lin = lin;
        lin.weight = lin.weight.map(|w| {
            w.slice_assign(
                [0..1, 0..2],
                Tensor::from_floats([[f32::NAN, f32::INFINITY]], &dev),
            )
        });
        assert_eq!(non_finite(&lin), 2);
    }

    /// A bf16 run computes its steps' GEMMs in bf16 where the build and the CPU have them (its
    /// losses move from fp32's, a little); elsewhere it refuses to start and says why.
    #[test]
    fn a_bf16_run_trains_where_it_can_and_says_why_where_not() {
        use crate::train::Precision;
        use shared_model::arch::{self, FamilyOptions};
        let data = crate::bench::synthetic_dataset(16, 16, 1);
        let (g, d) =
            arch::configure("dcgan", data.vocab.len(), 16, &FamilyOptions::default()).unwrap();
        let cfg = |p| {
            TrainConfig::new(
                g.clone(),
                d.clone(),
                data.vocab.clone(),
                "s".into(),
                "s".into(),
            )
            .with_batch_size(4)
            .with_precision(p)
        };
        let dev = Device::flex();
        match Trainer::new(cfg(Precision::Bf16), &data, &dev) {
            Ok(mut bf16) => {
                assert!(Precision::Bf16.supported());
                let mut fp32 = Trainer::new(cfg(Precision::Fp32), &data, &dev).unwrap();
                let (a, b) = (bf16.step(&data).loss_d, fp32.step(&data).loss_d);
                assert_ne!(a, b, "bf16 changed nothing");
                assert!((a - b).abs() < 0.05 * b.abs() + 0.01, "bf16 {a}, fp32 {b}");
            }
            Err(e) => {
                let why = kernels::precision::bf16_missing().expect("refused: a reason");
                assert!(e.to_string().contains(why), "{e}");
            }
        }
    }

    #[test]
    fn paired_halves_share_their_tags() {
        let dev = Device::flex();
        let c = Tensor::<2>::from_floats(
            [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8], [9.0, 9.0]],
            &dev,
        );
        let p = pair_halves(c).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(p, vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 9.0, 9.0]);
    }

    #[test]
    fn wrong_conditions_never_keep_a_group_tag() {
        let sets: Vec<Vec<String>> = ["a hair, x eyes, smile", "b hair, y eyes", "c hair, x eyes"]
            .iter()
            .map(|s| parse_tags(s))
            .collect();
        let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
        let mut rng = SplitMix64::new(1);
        for set in &sets {
            let c = vocab.encode(set).unwrap();
            for _ in 0..200 {
                let w = wrong_condition(&vocab, &c, &mut rng);
                assert_ne!(w, c);
                for g in &vocab.groups {
                    let idx: Vec<usize> =
                        g.tags.iter().map(|t| vocab.index_of(t).unwrap()).collect();
                    assert_eq!(
                        idx.iter().filter(|&&i| w[i] == 1.0).count(),
                        1,
                        "one tag per group"
                    );
                    for &i in &idx {
                        if c[i] == 1.0 {
                            assert_eq!(w[i], 0.0, "group {} kept its true tag", g.name);
                        }
                    }
                }
            }
        }
    }
}
