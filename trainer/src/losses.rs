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
    }
}

pub fn g_loss(kind: LossKind, fake: Tensor<1>) -> Tensor<1> {
    match kind {
        LossKind::Hinge => g_hinge_loss(fake),
        LossKind::NonSaturating => g_nonsaturating_loss(fake),
    }
}

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
}
