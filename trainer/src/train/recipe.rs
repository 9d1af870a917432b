//! The recipe: what a run adds to its adversarial loss, as a list of small named pieces.
//!
//! A piece is one file in `recipe/` implementing [`Piece`] (a loss term with its weight, an
//! augmentation of everything the critic sees, a schedule of the condition) plus one line in the
//! [`pieces!`] list at the bottom of this file. A run's `config.json` lists its pieces in order
//! (`"recipe": [{"piece": "drift", "weight": 0.001}, {"piece": "diffaugment", ...}]`), so a
//! recipe reads as that list; `trainer train --recipe NAME[:KEY=VALUE,...]` adds one.
//!
//! The trainer's critic and generator updates call the pieces at fixed points and know none of
//! them by name: every piece is off unless the list names it, and a piece draws from the run's
//! random stream only when it is listed, so runs without it take exactly the steps they took
//! before it existed.

mod condition_ramp;
mod consistency;
mod diffaugment;
mod drift;
mod mode_seeking;
mod r1;

use std::fmt::Debug;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use shared_model::{AnyDiscriminator, SplitMix64};

pub use condition_ramp::ConditionRamp;
pub use consistency::Consistency;
pub use diffaugment::{DiffAugment, cutout, translate};
pub use drift::Drift;
pub use mode_seeking::ModeSeeking;
pub use r1::R1;

/// One loss term of an update: its name in `stats.jsonl`, the weighted loss to add, and its value
/// before the weight (what the log shows).
pub struct Term {
    pub name: &'static str,
    pub loss: Tensor<1>,
    pub value: f32,
}

impl Term {
    /// `loss * weight`, logged as `loss`'s value.
    pub fn weighted(name: &'static str, loss: Tensor<1>, weight: f64) -> Self {
        let value = loss.clone().into_scalar::<f32>();
        Self {
            name,
            loss: loss.mul_scalar(weight),
            value,
        }
    }
}

/// What a critic term sees of one critic update. Images are `[B, 3, R, R]`, conditions
/// `[B, T]` (already scaled by the condition's schedule), scores `[B]`.
pub struct CriticView<'a> {
    /// The critic as the losses see it (its parameters take gradients).
    pub critic: &'a AnyDiscriminator,
    /// Real and generated (detached) images before the recipe's augmentations...
    pub real_raw: &'a Tensor<4>,
    pub fake_raw: &'a Tensor<4>,
    /// ...and as the critic saw them.
    pub real: &'a Tensor<4>,
    pub fake: &'a Tensor<4>,
    pub cond: &'a Tensor<2>,
    pub s_real: &'a Tensor<1>,
    pub s_fake: &'a Tensor<1>,
    /// Scores of the real images with wrong tags, `None` for critics without wrong-tag pairs.
    pub s_wrong: Option<&'a Tensor<1>>,
    /// Which critic update of the run this is, counted from 0 (lazy regularisers use it).
    pub update: u64,
}

/// What a generator term sees of one generator update.
pub struct GeneratorView<'a> {
    /// `[B, latent_dim]` latents and `[B, 3, R, R]` faces drawn from them (before any
    /// augmentation); with [`Piece::pairs_conditions`], faces `i` and `i + B/2` share tags.
    pub z: &'a Tensor<2>,
    pub fake: &'a Tensor<4>,
}

/// A piece of a recipe. Every method has a default that does nothing, so a piece implements only
/// the hooks it needs.
pub trait Piece: Debug {
    /// One line for `--help`.
    fn about(&self) -> &'static str;

    /// An error (for the command line and for run configs) when a setting makes no sense.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Transforms a batch of images on its way into the critic (real and generated alike, in
    /// the critic's and the generator's updates); must be differentiable in `x`.
    fn augment(&self, x: Tensor<4>, _rng: &mut SplitMix64) -> Tensor<4> {
        x
    }

    /// A term added to the critic's loss.
    fn critic_term(&self, _view: &CriticView, _rng: &mut SplitMix64) -> Option<Term> {
        None
    }

    /// A term added to the generator's loss.
    fn generator_term(&self, _view: &GeneratorView) -> Option<Term> {
        None
    }

    /// Whether the generator's update needs pairs of faces with the same tags (the second half
    /// of its batch then takes the first half's tags).
    fn pairs_conditions(&self) -> bool {
        false
    }

    /// How much of the condition the networks see after `images_seen` images (1 = all of it):
    /// the generator's tag input and the critic's projection are scaled by it, and the weight of
    /// the wrong-tag pairs with it.
    fn condition_scale(&self, _images_seen: u64) -> f64 {
        1.0
    }
}

/// Declares the pieces: one line each, `Variant(Type) = "name"`. The name is what run configs
/// carry; never change it.
macro_rules! pieces {
    ($($variant:ident($ty:ty) = $name:literal),* $(,)?) => {
        /// One piece of a run's recipe with its settings (`{"piece": NAME, ...}` in config.json).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "piece")]
        pub enum PieceSpec {
            $(#[serde(rename = $name)] $variant($ty),)*
        }

        /// The names of the pieces, in the list's order.
        pub const NAMES: &[&str] = &[$($name),*];

        impl PieceSpec {
            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => $name,)* }
            }

            fn piece(&self) -> &dyn Piece {
                match self { $(Self::$variant(p) => p,)* }
            }

            /// The piece called `name` with its default settings.
            pub fn default_of(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant(<$ty>::default())),)*
                    _ => None,
                }
            }
        }
    };
}

impl PieceSpec {
    pub fn about(&self) -> &'static str {
        self.piece().about()
    }

    /// Parses `NAME` or `NAME:KEY=VALUE,KEY=VALUE` (`--recipe`): the piece's defaults with the
    /// given settings. Unknown names and keys, and values that do not fit, are errors that say
    /// what would.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, settings) = match text.split_once(':') {
            Some((n, s)) => (n.trim(), s.trim()),
            None => (text.trim(), ""),
        };
        let Some(default) = Self::default_of(name) else {
            return Err(format!(
                "'{name}' is not a piece of a recipe; the pieces are: {}",
                NAMES.join(", ")
            ));
        };
        let mut value = serde_json::to_value(&default).expect("a piece serialises");
        let fields = value.as_object_mut().expect("a piece is an object");
        let mut given = std::collections::BTreeSet::new();
        for setting in settings.split(',').filter(|s| !s.trim().is_empty()) {
            let Some((key, v)) = setting.split_once('=') else {
                return Err(format!("'{setting}' in --recipe {text} is not KEY=VALUE"));
            };
            let key = key.trim();
            if !given.insert(key) {
                return Err(format!(
                    "--recipe {text} sets '{key}' twice: which value is meant is not known"
                ));
            }
            if key == "piece" || !fields.contains_key(key) {
                let keys: Vec<&str> = fields
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "piece")
                    .collect();
                return Err(format!(
                    "the piece '{name}' has no setting '{key}'; it has: {}",
                    keys.join(", ")
                ));
            }
            let v = v.trim();
            let parsed = serde_json::from_str(v).unwrap_or_else(|_| v.into());
            fields.insert(key.into(), parsed);
        }
        let spec: Self = serde_json::from_value(value).map_err(|e| {
            format!(
                "--recipe {text}: {e} (defaults: {})",
                defaults_text(&default)
            )
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// An error naming the piece when a setting makes no sense.
    pub fn validate(&self) -> Result<(), String> {
        self.piece()
            .validate()
            .map_err(|e| format!("recipe piece '{}': {e}", self.name()))
    }
}

/// `key=value, ...` of a piece's settings.
fn defaults_text(spec: &PieceSpec) -> String {
    let value = serde_json::to_value(spec).expect("a piece serialises");
    value
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| *k != "piece")
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The recipe of a run: its pieces in order. Their terms are added to the losses in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Recipe(pub Vec<PieceSpec>);

impl Default for Recipe {
    /// What `trainer train` uses with no `--recipe`: the drift penalty.
    fn default() -> Self {
        Self(vec![PieceSpec::Drift(Drift::default())])
    }
}

impl Recipe {
    /// `spec` in place of the piece of the same name, or at the end.
    pub fn set(&mut self, spec: PieceSpec) {
        match self.0.iter_mut().find(|p| p.name() == spec.name()) {
            Some(p) => *p = spec,
            None => self.0.push(spec),
        }
    }

    /// Removes the piece called `name`, if listed.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| p.name() != name);
    }

    pub fn get(&self, name: &str) -> Option<&PieceSpec> {
        self.0.iter().find(|p| p.name() == name)
    }

    /// The first problem of any piece, or a piece listed twice.
    pub fn validate(&self) -> Result<(), String> {
        for (i, p) in self.0.iter().enumerate() {
            p.validate()?;
            if self.0[..i].iter().any(|q| q.name() == p.name()) {
                return Err(format!("the recipe lists '{}' twice", p.name()));
            }
        }
        Ok(())
    }

    fn pieces(&self) -> impl Iterator<Item = &dyn Piece> {
        self.0.iter().map(PieceSpec::piece)
    }

    /// Every piece's augmentation, in order.
    pub fn augment(&self, x: Tensor<4>, rng: &mut SplitMix64) -> Tensor<4> {
        self.pieces().fold(x, |x, p| p.augment(x, rng))
    }

    pub fn critic_terms(&self, view: &CriticView, rng: &mut SplitMix64) -> Vec<Term> {
        self.pieces()
            .filter_map(|p| p.critic_term(view, rng))
            .collect()
    }

    pub fn generator_terms(&self, view: &GeneratorView) -> Vec<Term> {
        self.pieces()
            .filter_map(|p| p.generator_term(view))
            .collect()
    }

    pub fn pairs_conditions(&self) -> bool {
        self.pieces().any(|p| p.pairs_conditions())
    }

    /// The product of the pieces' condition scales; `None` when it is exactly 1 (nothing to
    /// scale).
    pub fn condition_scale(&self, images_seen: u64) -> Option<f64> {
        let s: f64 = self
            .pieces()
            .map(|p| p.condition_scale(images_seen))
            .product();
        (s != 1.0).then_some(s)
    }

    /// The recipe of a run config written before recipes existed, from its top-level `drift`,
    /// `r1_gamma` and `r1_every` (removed from `config`); a config with a `"recipe"` keeps its
    /// own and loses only those keys.
    pub fn migrate_flat(config: &mut serde_json::Value) {
        let Some(top) = config.as_object_mut() else {
            return;
        };
        let num = |v: Option<serde_json::Value>| v.and_then(|v| v.as_f64());
        let drift = num(top.remove("drift"));
        let gamma = num(top.remove("r1_gamma"));
        let every = num(top.remove("r1_every"));
        if top.contains_key("recipe") {
            return;
        }
        let mut recipe = Recipe(Vec::new());
        if let Some(weight) = drift.filter(|w| *w != 0.0) {
            recipe.0.push(PieceSpec::Drift(Drift { weight }));
        }
        if let Some(gamma) = gamma.filter(|g| *g != 0.0) {
            let every = every.map(|e| e as u64).unwrap_or(R1::default().every);
            recipe.0.push(PieceSpec::R1(R1 { gamma, every }));
        }
        top.insert(
            "recipe".into(),
            serde_json::to_value(recipe).expect("a recipe serialises"),
        );
    }
}

impl std::fmt::Display for Recipe {
    /// `drift(weight=0.001) + diffaugment(...)`, or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|p| format!("{}({})", p.name(), defaults_text(p)))
            .collect();
        write!(f, "{}", parts.join(" + "))
    }
}

pieces! {
    Drift(Drift) = "drift",
    R1(R1) = "r1",
    DiffAugment(DiffAugment) = "diffaugment",
    Consistency(Consistency) = "consistency",
    ModeSeeking(ModeSeeking) = "mode-seeking",
    ConditionRamp(ConditionRamp) = "condition-ramp",
}

/// `Err` unless `v` is finite and in `lo..=hi`.
pub(crate) fn check_range(name: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{name} = {v} is outside {lo}..={hi}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_parses_with_its_defaults_and_settings() {
        let p = PieceSpec::parse("diffaugment").unwrap();
        assert_eq!(p, PieceSpec::DiffAugment(DiffAugment::default()));
        let p = PieceSpec::parse("r1:gamma=0.5,every=4").unwrap();
        assert_eq!(
            p,
            PieceSpec::R1(R1 {
                gamma: 0.5,
                every: 4
            })
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"piece":"r1","gamma":0.5,"every":4}"#);
        assert_eq!(serde_json::from_str::<PieceSpec>(&json).unwrap(), p);
    }

    #[test]
    fn nonsense_in_a_piece_is_an_error_that_says_what_fits() {
        let e = PieceSpec::parse("diffusion").unwrap_err();
        assert!(
            e.contains("diffaugment") && e.contains("mode-seeking"),
            "{e}"
        );
        let e = PieceSpec::parse("r1:gama=1").unwrap_err();
        assert!(e.contains("'gama'") && e.contains("gamma"), "{e}");
        let e = PieceSpec::parse("drift:weight=-1").unwrap_err();
        assert!(e.contains("weight") && e.contains("-1"), "{e}");
        let e = PieceSpec::parse("drift:weight=abc").unwrap_err();
        assert!(e.contains("weight=0.001"), "{e}");
        let e = PieceSpec::parse("r1:every").unwrap_err();
        assert!(e.contains("KEY=VALUE"), "{e}");
        let e = PieceSpec::parse("condition-ramp:start=50000,end=100").unwrap_err();
        assert!(e.contains("end"), "{e}");
        // A setting given twice once kept the last value silently.
        let e = PieceSpec::parse("drift:weight=1,weight=2").unwrap_err();
        assert!(e.contains("'weight' twice"), "{e}");
    }

    #[test]
    fn a_recipe_sets_and_removes_by_name_and_refuses_twins() {
        let mut r = Recipe::default();
        r.set(PieceSpec::parse("drift:weight=0.01").unwrap());
        r.set(PieceSpec::parse("mode-seeking").unwrap());
        assert_eq!(r.0.len(), 2);
        assert_eq!(
            r.get("drift"),
            Some(&PieceSpec::Drift(Drift { weight: 0.01 }))
        );
        assert_eq!(
            r.to_string(),
            "drift(weight=0.01) + mode-seeking(weight=1.0)"
        );
        r.remove("drift");
        assert_eq!(r.0.len(), 1);
        r.0.push(r.0[0].clone());
        assert!(r.validate().unwrap_err().contains("twice"));
    }

    #[test]
    fn flat_settings_of_old_configs_become_a_recipe() {
        let mut old = serde_json::json!({"drift": 0.001, "r1_gamma": 0.5, "r1_every": 4});
        Recipe::migrate_flat(&mut old);
        let r: Recipe = serde_json::from_value(old["recipe"].clone()).unwrap();
        assert_eq!(
            r.0,
            vec![
                PieceSpec::Drift(Drift { weight: 0.001 }),
                PieceSpec::R1(R1 {
                    gamma: 0.5,
                    every: 4
                })
            ]
        );
        assert!(old.get("drift").is_none() && old.get("r1_gamma").is_none());
        // Zeros were "off".
        let mut old = serde_json::json!({"drift": 0.0, "r1_gamma": 0.0, "r1_every": 16});
        Recipe::migrate_flat(&mut old);
        assert_eq!(old["recipe"], serde_json::json!([]));
        // A config with a recipe keeps it.
        let mut new =
            serde_json::json!({"drift": 0.5, "recipe": [{"piece": "mode-seeking", "weight": 2.0}]});
        Recipe::migrate_flat(&mut new);
        assert_eq!(new["recipe"][0]["weight"], 2.0);
        assert!(new.get("drift").is_none());
    }
}
