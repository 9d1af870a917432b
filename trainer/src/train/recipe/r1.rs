//! R1, the gradient penalty on real images (Mescheder et al. 2018).

use burn::module::Module;
use serde::{Deserialize, Serialize};
use shared_model::SplitMix64;

use super::{CriticView, Piece, Term, check_range};
use crate::train::losses::gradient_penalty;

/// `gamma / 2 * E[||grad_x D(x, c)||^2]` on real images with their tags, as the critic sees
/// them; evaluated on every `every`-th critic update and then weighted by `every` (StyleGAN2's
/// lazy regularisation: the same penalty on average, a fraction of the cost). Before recipes it
/// was the run config's `r1_gamma` and `r1_every`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct R1 {
    pub gamma: f64,
    pub every: u64,
}

impl Default for R1 {
    /// stylegan2-ada's heuristic `0.0002 R^2 / B` for 64 px and batch 32.
    fn default() -> Self {
        Self {
            gamma: 0.0256,
            every: 16,
        }
    }
}

impl Piece for R1 {
    fn about(&self) -> &'static str {
        "R1: gamma/2 * E[|grad_x D(x,c)|^2] on reals, every N-th critic update (lazy)"
    }

    fn validate(&self) -> Result<(), String> {
        check_range("gamma", self.gamma, 0.0, 1e6)?;
        check_range("every", self.every as f64, 1.0, 1000.0)
    }

    fn critic_term(&self, v: &CriticView, _rng: &mut SplitMix64) -> Option<Term> {
        let every = self.every.max(1);
        if self.gamma <= 0.0 || !v.update.is_multiple_of(every) {
            return None;
        }
        let frozen = v.critic.clone().no_grad();
        let r1 = gradient_penalty(
            |x| v.critic.forward(x, v.cond.clone()),
            |x| frozen.forward(x, v.cond.clone()),
            v.real.clone(),
            0.0,
        );
        Some(Term::weighted("r1", r1, self.gamma / 2.0 * every as f64))
    }
}
