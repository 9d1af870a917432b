//! The recipe of one face, defined once: a [`FaceSpec`] (seed, tags, tag strengths, variations,
//! latent directions), its permalink text, and how a model turns it into generator inputs and
//! pixels. `trainer generate --link`, the page and the `<kyara-generator>` widget all call these, so a
//! link draws the same face everywhere.
//!
//! # The permalink
//!
//! ```text
//! model=anime64&seed=42&tags=blonde_hair,blue_eyes&s=blue_eyes:1.45&v=851501:0.35&d=smile:0.5
//! ```
//!
//! The text after `#` of a page URL, read as `application/x-www-form-urlencoded` (as the page's
//! `URLSearchParams` does: `+` is a space, `%XX` is decoded, the first of a repeated key counts
//! and the repetition is a problem, unknown keys are ignored). `tags`: asked tags; `s`: tag
//! strengths `tag:value`; `v`: variations `seed:strength`, applied in order; `d`: steps along the
//! model card's latent directions `name:value`; `psi`: truncation towards the tags' mean face
//! (families with styles); `fuse`: `seed:layer`, another character (with the tags `fuse_tags`) whose styles take over from that
//! layer on. In names `_` stands for a space. Numbers are printed rounded to 3 decimals. A part
//! that cannot be read is reported in [`Permalink::problems`] and left out; the rest still applies.
//!
//! # The recipe
//!
//! For seed `s`: a [`SplitMix64`](crate::SplitMix64) seeded with `s` gives the latent `z` and then
//! a tag for every exclusive group the tags leave open ([`FaceRequest::for_tags`]); each variation
//! mixes in the normal deviates of its own seed ([`latent::vary`]); each direction adds
//! `value * vector` to `z` ([`latent::step`]), or to the style `w` for a style-space direction;
//! each strength overwrites that tag's entry of the
//! condition vector `c`. A transition moves `z` along the great circle and `c` linearly
//! ([`ModelCard::transition`]).
//!
//! Fields that later families bring (a truncation psi, a second character to fuse with at a
//! crossover layer) belong in [`FaceSpec`] too, each with one link key read in [`parse`] and written
//! in [`FaceSpec::to_link`], and applied in [`ModelCard::face_inputs`]; links without the key keep
//! meaning what they mean now.

use std::fmt;

use indexmap::IndexMap;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::ModelError;
use crate::card::Space;
use crate::card::{LoadedModel, ModelCard};
use crate::latent;
use crate::sample::{FaceRequest, FuseRequest};
use crate::vocab::{normalize_tag, parse_tags};

/// Everything that decides one face. In JSON and JavaScript seeds are decimal strings (a `u64`
/// does not fit a JavaScript number); `tags` may also be one comma-separated string, and
/// `variations` may be called `vary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaceSpec {
    /// The model the face is meant for (the page's model folder name); informative only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The seed of the latent and of the tags drawn for open groups. A link may leave it out;
    /// drawing needs one.
    #[serde(with = "opt_seed_string", skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Asked tags, canonical spelling ([`normalize_tag`]); open groups are drawn from the seed.
    #[serde(deserialize_with = "tag_list")]
    pub tags: Vec<String>,
    /// Overrides of the condition vector: tag -> value (1 = present, 0 = absent), in order.
    pub strengths: IndexMap<String, f64>,
    /// Variations of the latent, applied in order.
    #[serde(alias = "vary")]
    pub variations: Vec<Variation>,
    /// Steps along the model card's latent directions: name -> amount, in order.
    pub directions: IndexMap<String, f64>,
    /// Truncation psi (families with styles): 1 = none, 0 = the mean face of the tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<f64>,
    /// A second character whose styles replace this one's from a crossover layer on (families
    /// with styles): coarse layers (pose, face shape) from this face, fine ones from the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuse: Option<Fuse>,
}

/// The other character of a fusion: its seed and tags, and the first layer it styles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fuse {
    #[serde(with = "seed_string")]
    pub seed: u64,
    #[serde(deserialize_with = "tag_list")]
    pub tags: Vec<String>,
    pub from_layer: usize,
}

/// One variation: mixes the normal deviates of `seed` into the latent ([`latent::vary`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Variation {
    #[serde(with = "seed_string")]
    pub seed: u64,
    pub strength: f64,
}

/// A permalink as read: the spec and what could not be used.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Permalink {
    pub spec: FaceSpec,
    /// One line per part that was left out, e.g. `unknown tag “zebra hair”`.
    pub problems: Vec<String>,
}

/// A drawn face: its generator inputs (with the resolved tags) and RGBA bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    pub inputs: FaceRequest,
    pub rgba: Vec<u8>,
}

impl FaceSpec {
    /// A plain face: `seed` with the comma-separated `tags` (any spelling [`parse_tags`] accepts).
    pub fn new(seed: u64, tags: &str) -> Self {
        Self {
            seed: Some(seed),
            tags: parse_tags(tags),
            ..Self::default()
        }
    }

    /// Reads a permalink (the text after `#`, or a whole URL); see the module docs. Only the
    /// syntax is checked: see [`ModelCard::read_link`] for the checks against a model.
    pub fn from_link(text: &str) -> Permalink {
        parse(text, None)
    }

    /// Like [`FaceSpec::from_link`], but any problem is an error (for the command line).
    pub fn from_link_strict(text: &str, card: Option<&ModelCard>) -> Result<Self, ModelError> {
        let link = parse(text, card);
        if link.problems.is_empty() {
            Ok(link.spec)
        } else {
            Err(ModelError::BadSpec(format!(
                "the link could not be used in full: {}",
                link.problems.join("; ")
            )))
        }
    }

    /// The permalink text of this spec (without `#`), as the page writes it.
    pub fn to_link(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = &self.model {
            parts.push(format!("model={}", encode(m)));
        }
        if let Some(s) = self.seed {
            parts.push(format!("seed={s}"));
        }
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|t| name_text(t)).collect();
            parts.push(format!("tags={}", tags.join(",")));
        }
        if !self.strengths.is_empty() {
            let s: Vec<String> = self
                .strengths
                .iter()
                .map(|(t, v)| format!("{}:{}", name_text(t), num(*v)))
                .collect();
            parts.push(format!("s={}", s.join(",")));
        }
        if !self.variations.is_empty() {
            let v: Vec<String> = self
                .variations
                .iter()
                .map(|v| format!("{}:{}", v.seed, num(v.strength)))
                .collect();
            parts.push(format!("v={}", v.join(",")));
        }
        let d: Vec<String> = self
            .directions
            .iter()
            .filter(|(_, v)| **v != 0.0)
            .map(|(n, v)| format!("{}:{}", name_text(n), num(*v)))
            .collect();
        if !d.is_empty() {
            parts.push(format!("d={}", d.join(",")));
        }
        if let Some(psi) = self.psi {
            parts.push(format!("psi={}", num(psi)));
        }
        if let Some(f) = &self.fuse {
            parts.push(format!("fuse={}:{}", f.seed, f.from_layer));
            if !f.tags.is_empty() {
                let tags: Vec<String> = f.tags.iter().map(|t| name_text(t)).collect();
                parts.push(format!("fuse_tags={}", tags.join(",")));
            }
        }
        parts.join("&")
    }
}

impl fmt::Display for FaceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_link())
    }
}

/// The largest tag strength a recipe may give, either way (the page's sliders reach -1 to 2;
/// `s=red_hair:1e308` once drew a flat face with exit status 0).
pub const MAX_STRENGTH: f64 = 4.0;
/// The largest variation strength (the page's slider reaches 1.5).
pub const MAX_VARIATION: f64 = 4.0;
/// The range of a direction whose card gives none (the page's slider for it).
pub const DEFAULT_DIRECTION_RANGE: f64 = 3.0;

/// A number for a message: as written for everyday sizes, in exponent form beyond (`1e308`, not
/// 309 digits).
fn shown(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Whether two tag or direction names are the same once spelled canonically.
pub fn same_name(a: &str, b: &str) -> bool {
    normalize_tag(a) == normalize_tag(b)
}

const U64_MAX_TEXT: &str = "18446744073709551615";

/// A seed as the page writes it: decimal digits only, at most `u64::MAX`.
pub fn parse_seed(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn bad_seed(text: &str) -> String {
    format!("The seed “{text}” is not a whole number from 0 to {U64_MAX_TEXT}.")
}

/// A finite number as JavaScript's `Number()` reads the link's values (decimal forms only).
fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A number rounded to 3 decimals and printed as JavaScript prints it (`String(Math.round(x *
/// 1000) / 1000)`, halves rounded up).
fn num(x: f64) -> String {
    let y = x * 1000.0;
    let f = y.floor();
    let rounded = if y - f >= 0.5 { f + 1.0 } else { f };
    let r = rounded / 1000.0;
    if r == 0.0 {
        "0".into() // also for -0
    } else {
        format!("{r}")
    }
}

/// What the link's values percent-encode: what would end a value or the fragment, or be
/// re-encoded by the browser in `location.hash` (non-ASCII is always encoded).
const LINK_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'`');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, LINK_VALUE).to_string()
}

/// A tag or direction name in a link: spaces as `_`.
fn name_text(name: &str) -> String {
    encode(&name.replace(' ', "_"))
}

/// The comma-separated items of a value, trimmed, empty ones dropped.
fn words(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|w| !w.is_empty())
}

/// Reads a permalink, checking names against `card` when given.
pub fn parse(text: &str, card: Option<&ModelCard>) -> Permalink {
    let text = text.trim();
    let hash = text.split_once('#').map_or(text, |(_, h)| h);
    let hash = hash.strip_prefix('?').unwrap_or(hash);
    let mut first: IndexMap<String, (String, usize)> = IndexMap::new();
    for (k, v) in form_urlencoded::parse(hash.as_bytes()) {
        first
            .entry(k.into_owned())
            .or_insert_with(|| (v.into_owned(), 0))
            .1 += 1;
    }
    let get = |k: &str| first.get(k).map(|(v, _)| v.as_str());
    let mut spec = FaceSpec {
        model: get("model").filter(|m| !m.is_empty()).map(str::to_string),
        ..FaceSpec::default()
    };
    let mut problems = Vec::new();
    // The first counts, as URLSearchParams.get reads it; the others are said, not dropped
    // silently (a link with two seeds is likely two links run together).
    for (k, (v, n)) in first.iter().filter(|(_, (_, n))| *n > 1) {
        problems.push(format!(
            "“{k}” is given {n} times; the first, “{v}”, counts"
        ));
    }
    if let Some(s) = get("seed") {
        match parse_seed(s) {
            Some(seed) => spec.seed = Some(seed),
            None => problems.push(format!(
                "seed “{s}” is not a whole number from 0 to {U64_MAX_TEXT}"
            )),
        }
    }
    let known_tag = |t: &str| card.is_none_or(|c| c.vocab.index_of(t).is_some());
    for t in words(get("tags").unwrap_or("")).map(normalize_tag) {
        if t.is_empty() || spec.tags.contains(&t) {
            continue;
        }
        if known_tag(&t) {
            spec.tags.push(t);
        } else {
            problems.push(format!("unknown tag “{t}”"));
        }
    }
    if let Some(card) = card {
        for g in &card.vocab.groups {
            let inside: Vec<&String> = spec.tags.iter().filter(|t| g.tags.contains(t)).collect();
            if inside.len() > 1 {
                let names: Vec<String> = inside.iter().map(|t| format!("“{t}”")).collect();
                problems.push(format!(
                    "tags {} are both {}; kept the first",
                    names.join(" and "),
                    g.name
                ));
                let drop: Vec<String> = inside[1..].iter().map(|t| t.to_string()).collect();
                spec.tags.retain(|t| !drop.contains(t));
            }
        }
    }
    for item in words(get("s").unwrap_or("")) {
        let (t, v) = item.rsplit_once(':').unwrap_or((item, ""));
        let tag = normalize_tag(t);
        if !known_tag(&tag) {
            problems.push(format!("unknown tag “{tag}” in the strengths"));
        } else if let (false, Some(v)) = (tag.is_empty(), parse_number(v)) {
            if spec.strengths.insert(tag.clone(), v).is_some() {
                problems.push(format!(
                    "the strength of “{tag}” is given twice; the last, {}, counts",
                    num(v)
                ));
            }
        } else {
            problems.push(format!("strength “{item}” is not tag:number"));
        }
    }
    for item in words(get("v").unwrap_or("")) {
        let (s, v) = item.split_once(':').unwrap_or((item, ""));
        match (parse_seed(s), parse_number(v)) {
            (Some(seed), Some(strength)) if strength >= 0.0 => {
                spec.variations.push(Variation { seed, strength })
            }
            _ => problems.push(format!("variation “{item}” is not seed:strength")),
        }
    }
    for item in words(get("d").unwrap_or("")) {
        let (n, v) = item.rsplit_once(':').unwrap_or((item, ""));
        let name = match card {
            Some(c) => c.direction(n).map(|d| d.name.clone()),
            None => Some(normalize_tag(n)).filter(|n| !n.is_empty()),
        };
        match (name, parse_number(v)) {
            (None, _) if card.is_some() => {
                problems.push(format!("unknown latent direction “{}”", normalize_tag(n)))
            }
            (Some(name), Some(v)) => {
                if spec.directions.insert(name.clone(), v).is_some() {
                    problems.push(format!(
                        "the step along “{name}” is given twice; the last, {}, counts",
                        num(v)
                    ));
                }
            }
            _ => problems.push(format!("direction “{item}” is not name:number")),
        }
    }
    if let Some(p) = get("psi") {
        match parse_number(p) {
            Some(v) => spec.psi = Some(v),
            None => problems.push(format!("psi “{p}” is not a number")),
        }
    }
    if let Some(f) = get("fuse") {
        let (s, l) = f.split_once(':').unwrap_or((f, ""));
        match (parse_seed(s.trim()), l.trim().parse::<usize>()) {
            (Some(seed), Ok(from_layer)) => {
                let mut tags = Vec::new();
                for t in words(get("fuse_tags").unwrap_or("")).map(normalize_tag) {
                    if known_tag(&t) && !t.is_empty() && !tags.contains(&t) {
                        tags.push(t);
                    } else if !known_tag(&t) {
                        problems.push(format!("unknown tag “{t}” in fuse_tags"));
                    }
                }
                spec.fuse = Some(Fuse {
                    seed,
                    tags,
                    from_layer,
                });
            }
            _ => problems.push(format!("fuse “{f}” is not seed:layer")),
        }
    } else if get("fuse_tags").is_some() {
        problems.push("fuse_tags without fuse (the character to fuse with): left out".into());
    }
    Permalink { spec, problems }
}

impl ModelCard {
    /// Reads a permalink for this model: tags and directions it does not know and a second tag
    /// of one exclusive group are reported and left out, like malformed parts.
    pub fn read_link(&self, text: &str) -> Permalink {
        parse(text, Some(self))
    }

    /// The generator inputs of `spec` on this model (no network is run). Unknown tags or
    /// directions, a missing seed or a number that is not finite are errors.
    pub fn face_inputs(&self, spec: &FaceSpec) -> Result<FaceRequest, ModelError> {
        let seed = spec
            .seed
            .ok_or_else(|| ModelError::BadSpec("The face has no seed.".into()))?;
        let asked = parse_tags(&spec.tags.join(","));
        let mut req =
            FaceRequest::for_tags(&self.vocab, self.generator.latent_dim(), seed, &asked)?;
        for v in &spec.variations {
            if !(v.strength.is_finite() && v.strength >= 0.0) {
                return Err(ModelError::BadSpec(format!(
                    "Variation strength \"{}\" is not a number >= 0.",
                    v.strength
                )));
            }
            if v.strength > MAX_VARIATION {
                return Err(ModelError::BadSpec(format!(
                    "Variation {}: strength {} is outside 0 to {MAX_VARIATION}.",
                    v.seed,
                    shown(v.strength)
                )));
            }
            req.z = latent::vary(&req.z, v.seed, v.strength as f32);
        }
        let sizes = self.generator.sizes();
        for (name, amount) in &spec.directions {
            let d = self.direction(name).ok_or_else(|| {
                ModelError::BadSpec(format!("The model has no latent direction \"{name}\"."))
            })?;
            if !amount.is_finite() {
                return Err(ModelError::BadSpec(format!(
                    "Direction \"{name}\": \"{amount}\" is not a number."
                )));
            }
            let range = d.range.unwrap_or(DEFAULT_DIRECTION_RANGE);
            if amount.abs() > range {
                return Err(ModelError::BadSpec(format!(
                    "Direction \"{}\": {} is outside its range, -{range} to {range}.",
                    d.name,
                    shown(*amount)
                )));
            }
            match d.space {
                Space::Z => latent::step(&mut req.z, &d.vector, *amount),
                Space::W => {
                    req.style_offset.resize(sizes.style_dim, 0.0);
                    latent::step(&mut req.style_offset, &d.vector, *amount);
                }
            }
        }
        if let Some(psi) = spec.psi {
            if sizes.styles == 0 {
                return Err(ModelError::BadSpec(
                    "This model has no style space, so no truncation (psi).".into(),
                ));
            }
            if !(psi.is_finite() && (-1.0..=2.0).contains(&psi)) {
                return Err(ModelError::BadSpec(format!(
                    "Truncation psi \"{psi}\" is not a number from -1 to 2."
                )));
            }
            req.psi = psi;
        }
        if let Some(f) = &spec.fuse {
            if sizes.styles == 0 {
                return Err(ModelError::BadSpec(
                    "This model has no style layers, so it cannot fuse two characters.".into(),
                ));
            }
            // Layer 0 would draw the other character alone, layer `styles` and beyond nothing of
            // it (`fuse=9:10` on 10 styles was accepted as a no-op while 999 was refused).
            if !(1..sizes.styles).contains(&f.from_layer) {
                return Err(ModelError::BadSpec(format!(
                    "Fusion layer {} is not a crossover layer of this model: 1 to {} (it has {} \
                     style layers).",
                    f.from_layer,
                    sizes.styles.saturating_sub(1),
                    sizes.styles
                )));
            }
            let other = FaceRequest::for_tags(
                &self.vocab,
                sizes.latent_dim,
                f.seed,
                &parse_tags(&f.tags.join(",")),
            )?;
            req.fuse = Some(FuseRequest {
                z: other.z,
                c: other.c,
                from_layer: f.from_layer,
            });
        }
        for (tag, value) in &spec.strengths {
            let i = self.vocab.index_of(&normalize_tag(tag)).ok_or_else(|| {
                ModelError::BadSpec(format!(
                    "Unknown tag \"{tag}\" in the strengths; this model knows: {}.",
                    self.vocab.tags.join(", ")
                ))
            })?;
            if !value.is_finite() {
                return Err(ModelError::BadSpec(format!(
                    "Strength of \"{tag}\": \"{value}\" is not a number."
                )));
            }
            if value.abs() > MAX_STRENGTH {
                return Err(ModelError::BadSpec(format!(
                    "Strength of \"{tag}\": {} is outside -{MAX_STRENGTH} to {MAX_STRENGTH}.",
                    shown(*value)
                )));
            }
            req.c[i] = *value as f32;
        }
        Ok(req)
    }

    /// The generator inputs of the `count` frames from `a` to `b` (both ends included and exactly
    /// the two faces): the latent moves along the great circle, the condition linearly, at
    /// `t = k / (count - 1)`.
    pub fn transition(
        &self,
        a: &FaceSpec,
        b: &FaceSpec,
        count: usize,
    ) -> Result<Vec<FaceRequest>, ModelError> {
        if count < 2 {
            return Err(ModelError::BadSpec(format!(
                "A transition has at least 2 frames (the two ends), not {count}."
            )));
        }
        let a = self.face_inputs(a)?;
        let b = self.face_inputs(b)?;
        let mut frames = Vec::with_capacity(count);
        frames.push(a.clone());
        for k in 1..count - 1 {
            let t = k as f64 / (count - 1) as f64;
            let offset = if a.style_offset.len() == b.style_offset.len() {
                latent::lerp(&a.style_offset, &b.style_offset, t)
            } else {
                a.style_offset.clone()
            };
            frames.push(FaceRequest {
                seed: a.seed,
                tags: Vec::new(),
                z: latent::slerp(&a.z, &b.z, t),
                c: latent::lerp(&a.c, &b.c, t),
                style_offset: offset,
                psi: a.psi + (b.psi - a.psi) * t,
                fuse: a.fuse.clone(),
            });
        }
        frames.push(b);
        Ok(frames)
    }
}

impl LoadedModel {
    /// Draws the face of `spec`: its inputs (resolved tags, `z`, `c`) and RGBA bytes.
    pub fn draw(&self, spec: &FaceSpec) -> Result<Face, ModelError> {
        let inputs = self.card.face_inputs(spec)?;
        let rgba = self.generate_request(&inputs);
        Ok(Face { inputs, rgba })
    }

    /// The RGBA bytes of the `count` frames of [`ModelCard::transition`], each drawn on its own.
    pub fn draw_transition(
        &self,
        a: &FaceSpec,
        b: &FaceSpec,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, ModelError> {
        Ok(self
            .card
            .transition(a, b, count)?
            .iter()
            .map(|r| self.generate_request(r))
            .collect())
    }
}

// ---------- serde: seeds as decimal strings, tags as a list or one string ----------

struct SeedVisitor;

impl Visitor<'_> for SeedVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a whole number from 0 to {U64_MAX_TEXT}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_seed(v.trim()).ok_or_else(|| E::custom(bad_seed(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(bad_seed(&v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // JavaScript numbers: whole and exact (below 2^53) only.
        if v.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&v) {
            Ok(v as u64)
        } else {
            Err(E::custom(bad_seed(&v.to_string())))
        }
    }
}

mod seed_string {
    use super::*;

    pub fn serialize<S: Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&seed.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(SeedVisitor)
    }
}

mod opt_seed_string {
    use super::*;

    pub fn serialize<S: Serializer>(seed: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match seed {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    struct OptSeed;

    impl<'de> Visitor<'de> for OptSeed {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a seed or nothing")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(SeedVisitor).map(Some)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(OptSeed)
    }
}

fn tag_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Tags;

    impl<'de> Visitor<'de> for Tags {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "tags: a list or one comma-separated string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(parse_tags(v))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut all = Vec::new();
            while let Some(t) = seq.next_element::<String>()? {
                all.push(t);
            }
            Ok(parse_tags(&all.join(",")))
        }
    }

    d.deserialize_any(Tags)
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::*;
    use crate::arch::GeneratorSpec;
    use crate::card::{Direction, TrainingInfo};
    use crate::{DcganGeneratorConfig, TagVocab};

    const README_LINK: &str = "model=anime64&seed=42&tags=blonde_hair,blue_eyes&s=blue_eyes:1.45&v=851501:0.35&d=smile:0.5";

    fn spec_of(pairs: &[(&str, f64)]) -> IndexMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn card() -> ModelCard {
        let sets = [
            vec!["blonde hair".to_string(), "blue eyes".to_string()],
            vec!["red hair".into(), "green eyes".into(), "smile".into()],
        ];
        let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
        let g = GeneratorSpec::Dcgan(
            DcganGeneratorConfig::new(vocab.len())
                .with_latent_dim(8)
                .with_resolution(16)
                .with_channels(8),
        );
        let mut card = ModelCard::new("t", vocab, g, TrainingInfo::default());
        card.directions = vec![Direction::in_z(
            "head tilt",
            (0..8).map(|i| i as f32 / 8.0 - 0.5).collect(),
        )];
        card
    }

    fn model() -> LoadedModel {
        let card = card();
        let device = Device::flex();
        let generator =
            crate::rng::seeded(&device, 3, || card.generator.try_init(&device)).unwrap();
        LoadedModel {
            card,
            generator,
            device,
        }
    }

    /// Truncation and fusion travel in the link and are refused, with a reason, by a model
    /// without styles.
    #[test]
    fn psi_and_fuse_round_trip_and_need_styles() {
        let text = "seed=3&tags=a_hair&psi=0.7&fuse=9:4&fuse_tags=b_hair";
        let link = FaceSpec::from_link(text);
        assert_eq!(link.problems, Vec::<String>::new());
        assert_eq!(link.spec.psi, Some(0.7));
        assert_eq!(
            link.spec.fuse,
            Some(Fuse {
                seed: 9,
                tags: vec!["b hair".into()],
                from_layer: 4
            })
        );
        assert_eq!(link.spec.to_link(), text);
        let bad = FaceSpec::from_link("seed=3&psi=x&fuse=9");
        assert_eq!(bad.problems.len(), 2, "{:?}", bad.problems);
        assert!(bad.spec.psi.is_none() && bad.spec.fuse.is_none());
        let m = model();
        let mut spec = FaceSpec::new(1, "");
        spec.psi = Some(0.5);
        let e = m.card.face_inputs(&spec).unwrap_err().to_string();
        assert!(e.contains("truncation"), "{e}");
        spec.psi = None;
        spec.fuse = link.spec.fuse.clone();
        let e = m.card.face_inputs(&spec).unwrap_err().to_string();
        assert!(e.contains("fuse"), "{e}");
    }

    #[test]
    fn the_readme_link_round_trips() {
        let link = FaceSpec::from_link(README_LINK);
        assert_eq!(link.problems, Vec::<String>::new());
        let want = FaceSpec {
            model: Some("anime64".into()),
            seed: Some(42),
            tags: vec!["blonde hair".into(), "blue eyes".into()],
            strengths: spec_of(&[("blue eyes", 1.45)]),
            variations: vec![Variation {
                seed: 851501,
                strength: 0.35,
            }],
            directions: spec_of(&[("smile", 0.5)]),
            ..FaceSpec::default()
        };
        assert_eq!(link.spec, want);
        assert_eq!(want.to_link(), README_LINK);
        // A whole URL, a leading '#', and the order of keys do not matter.
        for text in [
            format!("https://example.org/kyara/?model=x#{README_LINK}"),
            format!("#{README_LINK}"),
            "d=smile:0.5&v=851501:0.35&s=blue_eyes:1.45&tags=blonde_hair,blue_eyes&seed=42&model=anime64"
                .into(),
        ] {
            assert_eq!(FaceSpec::from_link(&text).spec, want, "{text}");
        }
    }

    #[test]
    fn old_links_keep_working() {
        // Links as the page wrote them before the parser moved to Rust.
        let cases: [(&str, FaceSpec); 4] = [
            (
                "seed=42&tags=blonde_hair,blue_eyes",
                FaceSpec::new(42, "blonde hair, blue eyes"),
            ),
            (
                "model=anime64&seed=7",
                FaceSpec {
                    model: Some("anime64".into()),
                    ..FaceSpec::new(7, "")
                },
            ),
            ("seed=18446744073709551615", FaceSpec::new(u64::MAX, "")),
            (
                "model=anime64&seed=5&tags=pink_hair&s=pink_hair:0.3,blue_eyes:-0.05&v=1:0.35,200:1.5",
                FaceSpec {
                    model: Some("anime64".into()),
                    strengths: spec_of(&[("pink hair", 0.3), ("blue eyes", -0.05)]),
                    variations: vec![
                        Variation {
                            seed: 1,
                            strength: 0.35,
                        },
                        Variation {
                            seed: 200,
                            strength: 1.5,
                        },
                    ],
                    ..FaceSpec::new(5, "pink hair")
                },
            ),
        ];
        for (text, want) in cases {
            let link = FaceSpec::from_link(text);
            assert!(link.problems.is_empty(), "{text}: {:?}", link.problems);
            assert_eq!(link.spec, want, "{text}");
            assert_eq!(link.spec.to_link(), text, "prints back as it was");
        }
    }

    #[test]
    fn the_link_is_read_as_url_search_params_reads_it() {
        // '+' is a space, %XX decodes, the first of a repeated key counts (and the repetition is
        // a problem: a link with two seeds once drew the first silently), unknown keys and
        // spaces around items are ignored, other spellings of a tag are its canonical one.
        let link = FaceSpec::from_link(
            "seed=3&seed=4&tags=Blonde+Hair,%20blue_EYES%20,,&psi=0.7&s=blonde_hair:+1.5",
        );
        assert_eq!(
            link.problems,
            ["“seed” is given 2 times; the first, “3”, counts"]
        );
        assert_eq!(link.spec.seed, Some(3));
        assert_eq!(link.spec.tags, ["blonde hair", "blue eyes"]);
        assert_eq!(link.spec.strengths, spec_of(&[("blonde hair", 1.5)]));
        // Special characters are encoded on the way out and read back.
        let odd = FaceSpec {
            model: Some("my model".into()),
            tags: vec!["a&b=c+d #1 ü".into()],
            ..FaceSpec::new(1, "")
        };
        let text = odd.to_link();
        assert_eq!(
            text,
            "model=my%20model&seed=1&tags=a%26b%3Dc%2Bd_%231_%C3%BC"
        );
        assert_eq!(FaceSpec::from_link(&text).spec.tags, ["a&b=c+d #1 ü"]);
        // A tag with ':' in it keeps its strength.
        let t = FaceSpec::from_link("seed=1&s=:d:0.5").spec;
        assert_eq!(t.strengths, spec_of(&[(":d", 0.5)]));
        // A tag's strength or a direction's step given twice, and fuse_tags without a fuse,
        // are problems too (the second fresh round of issue 31 found them silent).
        let twice = FaceSpec::from_link("seed=1&s=blue_eyes:1,blue_eyes:2&d=smile:1,smile:-1");
        assert_eq!(
            twice.problems,
            [
                "the strength of “blue eyes” is given twice; the last, 2, counts",
                "the step along “smile” is given twice; the last, -1, counts"
            ]
        );
        assert_eq!(twice.spec.strengths, spec_of(&[("blue eyes", 2.0)]));
        let alone = FaceSpec::from_link("seed=1&fuse_tags=red_hair");
        assert_eq!(
            alone.problems,
            ["fuse_tags without fuse (the character to fuse with): left out"]
        );
    }

    #[test]
    fn malformed_parts_are_reported_and_left_out() {
        let link = FaceSpec::from_link(
            "seed=abc&tags=blue_eyes&s=blue_eyes,red_hair:x,smile:1&v=12:0.5,x:1,3:-1,4&d=tilt:y,:1,nod:2",
        );
        assert_eq!(
            link.problems,
            [
                format!("seed “abc” is not a whole number from 0 to {U64_MAX_TEXT}"),
                "strength “blue_eyes” is not tag:number".to_string(),
                "strength “red_hair:x” is not tag:number".into(),
                "variation “x:1” is not seed:strength".into(),
                "variation “3:-1” is not seed:strength".into(),
                "variation “4” is not seed:strength".into(),
                "direction “tilt:y” is not name:number".into(),
                "direction “:1” is not name:number".into(),
            ]
        );
        assert_eq!(link.spec.seed, None);
        assert_eq!(link.spec.tags, ["blue eyes"]);
        assert_eq!(link.spec.strengths, spec_of(&[("smile", 1.0)]));
        assert_eq!(
            link.spec.variations,
            [Variation {
                seed: 12,
                strength: 0.5
            }]
        );
        assert_eq!(link.spec.directions, spec_of(&[("nod", 2.0)]));
        for bad in [
            "seed=",
            "seed=-1",
            "seed=+1",
            "seed=18446744073709551616",
            "seed=1.0",
        ] {
            assert_eq!(FaceSpec::from_link(bad).problems.len(), 1, "{bad}");
        }
        assert!(FaceSpec::from_link_strict("seed=x", None).is_err());
    }

    #[test]
    fn a_model_checks_its_tags_directions_and_groups() {
        let card = card();
        let link = card.read_link(
            "seed=1&tags=zebra_hair,red_hair,blonde_hair,smile&s=zebra:1,smile:0.5&d=Head_Tilt:1,nod:1",
        );
        assert_eq!(
            link.problems,
            [
                "unknown tag “zebra hair”",
                "tags “red hair” and “blonde hair” are both hair; kept the first",
                "unknown tag “zebra” in the strengths",
                "unknown latent direction “nod”",
            ]
        );
        assert_eq!(link.spec.tags, ["red hair", "smile"]);
        assert_eq!(link.spec.strengths, spec_of(&[("smile", 0.5)]));
        // The card's own spelling of the direction is kept.
        assert_eq!(link.spec.directions, spec_of(&[("head tilt", 1.0)]));
        let e = FaceSpec::from_link_strict("seed=1&tags=zebra", Some(&card)).unwrap_err();
        assert!(e.to_string().contains("unknown tag “zebra”"), "{e}");
    }

    #[test]
    fn numbers_print_as_the_page_printed_them() {
        // Expected texts are `String(Math.round(x * 1000) / 1000)` in JavaScript.
        for (x, text) in [
            (1.45, "1.45"),
            (0.3, "0.3"),
            (1.0, "1"),
            (0.0, "0"),
            (-0.0004, "0"),
            (-0.05, "-0.05"),
            (0.0005, "0.001"),
            (-0.0005, "0"),
            (2.0 / 3.0, "0.667"),
            (f64::from(1.45f32), "1.45"),
            (1.0005, "1.001"),
            (123456.7891, "123456.789"),
            (-0.0025, "-0.002"),
            (0.0015, "0.002"),
            (-0.0015, "-0.001"),
        ] {
            assert_eq!(num(x), text, "{x}");
        }
        // Zero steps along a direction are not printed; zero strengths are.
        let spec = FaceSpec {
            strengths: spec_of(&[("smile", 0.0)]),
            directions: spec_of(&[("tilt", 0.0)]),
            ..FaceSpec::new(1, "")
        };
        assert_eq!(spec.to_link(), "seed=1&s=smile:0");
    }

    #[test]
    fn specs_cross_json_with_seeds_as_strings() {
        let spec = FaceSpec::from_link(README_LINK).spec;
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["seed"], "42");
        assert_eq!(json["variations"][0]["seed"], "851501");
        assert_eq!(json["strengths"]["blue eyes"], 1.45);
        let back: FaceSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        // What the page and the widget send: numbers or strings for seeds, one string of tags in
        // any spelling, `vary` for the variations.
        let page: FaceSpec = serde_json::from_str(
            r#"{"seed": 42, "tags": " Blonde_Hair ,blue   eyes", "vary": [{"seed": "851501", "strength": 0.35}]}"#,
        )
        .unwrap();
        assert_eq!(page.tags, ["blonde hair", "blue eyes"]);
        assert_eq!(page.variations, spec.variations);
        for bad in [r#"{"seed": "x1"}"#, r#"{"seed": -1}"#, r#"{"seed": 1.5}"#] {
            let e = serde_json::from_str::<FaceSpec>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a whole number from 0 to"), "{e}");
        }
        let e = serde_json::from_str::<FaceSpec>(r#"{"seed": "x1"}"#).unwrap_err();
        assert!(e.to_string().contains("“x1”"), "{e}");
    }

    #[test]
    fn a_plain_spec_is_the_seed_and_tags_pipeline() {
        let m = model();
        let spec = FaceSpec::new(42, "blonde hair");
        let face = m.draw(&spec).unwrap();
        let req = FaceRequest::new(&m.card.vocab, 8, 42, "blonde hair").unwrap();
        assert_eq!(face.inputs, req);
        assert_eq!(face.rgba, m.generate_request(&req));
        assert_eq!(
            m.generate(42, "blonde hair").unwrap(),
            (face.rgba, req.tags)
        );
        assert!(m.draw(&FaceSpec::default()).is_err(), "no seed");
    }

    #[test]
    fn strengths_variations_and_directions_edit_the_inputs_in_order() {
        let m = model();
        let spec = FaceSpec::from_link_strict(
            "seed=42&tags=blonde_hair&s=smile:0.7,blonde_hair:1.45&v=9:0.35,10:1&d=head_tilt:-1.5",
            Some(&m.card),
        )
        .unwrap();
        let got = m.card.face_inputs(&spec).unwrap();
        let mut want = FaceRequest::new(&m.card.vocab, 8, 42, "blonde hair").unwrap();
        want.z = latent::vary(&want.z, 9, 0.35);
        want.z = latent::vary(&want.z, 10, 1.0);
        latent::step(&mut want.z, &m.card.directions[0].vector, -1.5);
        let i = |t: &str| m.card.vocab.index_of(t).unwrap();
        want.c[i("smile")] = 0.7;
        want.c[i("blonde hair")] = 1.45;
        assert_eq!(got, want);
        // Each edit changes the face.
        let plain = m.draw(&FaceSpec::new(42, "blonde hair")).unwrap().rgba;
        for edit in ["&s=smile:0.7", "&v=9:0.35", "&d=head_tilt:-1.5"] {
            let s = FaceSpec::from_link(&format!("seed=42&tags=blonde_hair{edit}")).spec;
            assert_ne!(m.draw(&s).unwrap().rgba, plain, "{edit}");
        }
    }

    #[test]
    fn bad_specs_are_errors_that_name_the_part() {
        let card = card();
        let mut spec = FaceSpec::new(1, "");
        spec.strengths.insert("zebra".into(), 1.0);
        let e = card.face_inputs(&spec).unwrap_err().to_string();
        assert!(e.contains("zebra") && e.contains("smile"), "{e}");
        let mut spec = FaceSpec::new(1, "");
        spec.directions.insert("nod".into(), 1.0);
        assert!(
            card.face_inputs(&spec)
                .unwrap_err()
                .to_string()
                .contains("nod")
        );
        let mut spec = FaceSpec::new(1, "");
        spec.variations.push(Variation {
            seed: 1,
            strength: -1.0,
        });
        assert!(
            card.face_inputs(&spec)
                .unwrap_err()
                .to_string()
                .contains("-1")
        );
        spec.variations[0].strength = f64::NAN;
        assert!(card.face_inputs(&spec).is_err());
        let e = card.face_inputs(&FaceSpec::new(1, "zebra")).unwrap_err();
        assert!(e.to_string().contains("unknown tag 'zebra'"), "{e}");
    }

    /// Numbers of a recipe beyond what the card allows are refused with the range (the issue:
    /// `s=red_hair:1e308`, `v=5:1e308`, `d=...:1e308` drew black or flat faces with exit 0).
    #[test]
    fn recipe_numbers_are_bounded_by_the_card() {
        let mut card = card();
        let refused = |card: &ModelCard, link: &str| {
            let spec = FaceSpec::from_link_strict(link, Some(card)).unwrap();
            card.face_inputs(&spec).unwrap_err().to_string()
        };
        let e = refused(&card, "seed=1&s=red_hair:1e308");
        assert!(e.contains("red hair") && e.contains("-4 to 4"), "{e}");
        let e = refused(&card, "seed=1&v=5:1e308");
        assert!(e.contains("Variation 5") && e.contains("0 to 4"), "{e}");
        // The card's range, or the page slider's 3 where it gives none.
        let e = refused(&card, "seed=1&d=head_tilt:1e308");
        assert!(e.contains("head tilt") && e.contains("-3 to 3"), "{e}");
        card.directions[0].range = Some(0.5);
        let e = refused(&card, "seed=1&d=head_tilt:0.6");
        assert!(e.contains("-0.5 to 0.5"), "{e}");
        for ok in [
            "seed=1&d=head_tilt:-0.5",
            "seed=1&s=red_hair:-4,smile:2",
            "seed=1&v=5:4",
        ] {
            let spec = FaceSpec::from_link_strict(ok, Some(&card)).unwrap();
            card.face_inputs(&spec).unwrap();
        }
    }

    #[test]
    fn a_transition_runs_from_one_face_to_the_other() {
        let m = model();
        let a = FaceSpec::from_link("seed=11&tags=blonde_hair&s=smile:0.5").spec;
        let b = FaceSpec::from_link("seed=12&tags=red_hair&v=3:0.35").spec;
        let frames = m.card.transition(&a, &b, 5).unwrap();
        assert_eq!(frames.len(), 5);
        let (fa, fb) = (
            m.card.face_inputs(&a).unwrap(),
            m.card.face_inputs(&b).unwrap(),
        );
        assert_eq!(frames[0], fa);
        assert_eq!(frames[4], fb);
        assert_eq!(frames[1].z, latent::slerp(&fa.z, &fb.z, 0.25));
        assert_eq!(frames[2].c, latent::lerp(&fa.c, &fb.c, 0.5));
        let px = m.draw_transition(&a, &b, 5).unwrap();
        assert_eq!(px[0], m.draw(&a).unwrap().rgba);
        assert_eq!(px[4], m.draw(&b).unwrap().rgba);
        assert!(px[2] != px[0] && px[2] != px[4]);
        assert!(m.card.transition(&a, &b, 1).is_err());
    }
}
