//! Weights on disk: a module's parameters as burnpack bytes, stored as float32, float16 or
//! (Linear weights only) 8-bit integers.
//!
//! The narrow formats are for storage only. [`load_weights`] turns every tensor back into
//! float32 before it reaches the module, so the networks always compute in float32, on every
//! backend, whatever the file holds; old float32 files load unchanged.
//!
//! [`weights_bytes_as`] with [`WeightsDtype::F16`] stores every float parameter as f16 except:
//! - the parameters and running statistics of `BatchNorm` (gamma, beta, running mean and
//!   variance), as burn-store's `HalfPrecisionAdapter` does: a running variance can underflow in
//!   f16, and they are a few kB;
//! - any tensor holding a value beyond f16's range (|x| > 65504), which would become infinite.
//!
//! Everything else (Linear, Conv2d and ConvTranspose2d weights and biases, PReLU slopes) is f16.
//!
//! [`WeightsDtype::Int8`] is F16 except for the weights of dense layers (`[d_in, d_out]`: burn's
//! `Linear` and StyleGAN2's equalised `EqLinear`, the mapping network and the style affines),
//! stored as `i8` with one f32 scale per output column (symmetric, round to nearest:
//! `w[i, j] ~ q[i, j] * scale[j]`, `scale[j] = max_i |w[i, j]| / 127`) in a tensor named
//! `<weight name>.int8_scale` (`[d_out]`). In the residual generator the first dense layer is
//! most of the model. A network without dense layers (the DCGAN generator) cannot be stored as
//! int8: asking for it is an error, not the f16 bytes under a card that says int8.
//!
//! The conversions work on the burnpack tensors on the host, so they need no f16 or int8
//! support from the backend.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType};
use burn_pack::{Reader, Tensor as PackTensor, Writer};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Largest finite f16 value.
const F16_MAX: f32 = 65504.0;

/// The element type float weights are stored with. In a model card, `"weights_dtype"`; a card
/// without it means float32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsDtype {
    /// 4 bytes per value, exactly what was trained.
    #[default]
    F32,
    /// 2 bytes per value (IEEE half precision, 11 significant bits); BatchNorm stays f32.
    F16,
    /// Linear weights 1 byte per value (plus a scale per output), the rest as [`Self::F16`].
    Int8,
}

impl WeightsDtype {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for WeightsDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn bad(e: impl std::fmt::Display) -> ModelError {
    ModelError::BadWeights(e.to_string())
}

/// Loads burnpack bytes (any [`WeightsDtype`]) into a module; f16 and int8 tensors are widened
/// to float32 first. Every failure (empty, truncated, corrupt or foreign bytes, a shape
/// or a name that does not fit) is a [`ModelError::BadWeights`], never a panic.
pub fn load_weights<M: Module>(module: M, weights: Vec<u8>) -> Result<M, ModelError> {
    if weights.is_empty() {
        return Err(ModelError::BadWeights("the weights file is empty".into()));
    }
    let bytes = widen_to_f32(weights)?;
    let record = ModuleRecord::from_bytes(bytes).map_err(bad)?;
    // Loading may draw a parameter's initial values before replacing them (Burn initialises
    // lazily); drawing goes through the stream's lock (see `rng::backend_stream`).
    crate::rng::backend_stream(|| module.try_load_record(record))
        .map_err(|e| ModelError::BadWeights(summarise(&e.to_string())))
}

/// A record error as a person reads it: Burn lists every tensor whose shape does not fit (a
/// page-long list for another model's weights); the count and the first one say as much.
fn summarise(message: &str) -> String {
    let mismatches: Vec<&str> = message
        .split('"')
        .filter(|part| part.contains("shape mismatch"))
        .collect();
    match mismatches.as_slice() {
        [] => message.to_string(),
        [one] => format!("a tensor has another shape than the card's network: {one}"),
        [first, rest @ ..] => format!(
            "{} tensors have other shapes than the card's network (these are another model's \
             weights), e.g. {first}",
            rest.len() + 1
        ),
    }
}

/// Serialises a module's parameters to float32 burnpack bytes.
pub fn weights_bytes<M: Module>(module: M) -> Result<Vec<u8>, ModelError> {
    let bytes = module.into_record().into_bytes().map_err(bad)?;
    Ok(bytes.to_vec())
}

/// Serialises a module's parameters to burnpack bytes with float weights stored as `dtype`
/// (see the module docs for what stays float32).
pub fn weights_bytes_as<M: Module>(module: M, dtype: WeightsDtype) -> Result<Vec<u8>, ModelError> {
    if dtype == WeightsDtype::F32 {
        return weights_bytes(module);
    }
    let kinds = param_kinds(&module);
    let kind = |name: &str| kinds.get(name).copied();
    let bytes = module.into_record().into_bytes().map_err(bad)?;
    let mut out = Vec::new();
    let mut quantized = 0usize;
    for t in Reader::from_bytes(bytes)
        .and_then(Reader::into_tensors)
        .map_err(bad)?
    {
        if t.dtype != DType::F32 || kind(&t.name) == Some(ParamKind::BatchNorm) {
            out.push(t);
        } else if dtype == WeightsDtype::Int8
            && kind(&t.name) == Some(ParamKind::LinearWeight)
            && t.shape.num_dims() == 2
            && let Some((q, scale)) = quantize_int8(&t)?
        {
            out.extend([q, scale]);
            quantized += 1;
        } else {
            out.push(narrow_to_f16(t)?);
        }
    }
    if dtype == WeightsDtype::Int8 && quantized == 0 {
        return Err(ModelError::BadConfig(
            "int8 stores the weights of dense layers as 8-bit integers, and this network has \
             none (its layers are convolutions): the file would hold the f16 weights under a \
             card that says int8; store it as f16 instead"
                .into(),
        ));
    }
    Ok(Writer::new(out).into_bytes().map_err(bad)?.to_vec())
}

/// The element type of every tensor in burnpack bytes, by tensor name (for tests and reports). Fails like [`load_weights`] on bytes that are not a burnpack.
pub fn stored_dtypes(weights: &[u8]) -> Result<Vec<(String, DType)>, ModelError> {
    let tensors = Reader::from_bytes(Bytes::from_bytes_vec(weights.to_vec()))
        .and_then(Reader::into_tensors)
        .map_err(bad)?;
    Ok(tensors.into_iter().map(|t| (t.name, t.dtype)).collect())
}

/// Suffix of the tensor holding the per-column scales of an int8 tensor.
const SCALE_SUFFIX: &str = ".int8_scale";

/// Burnpack bytes with every tensor as f32: f16, bf16 and f64 converted, int8 Linear weights
/// multiplied by their scales (which are dropped). Any other element type is an error: kyara's
/// modules hold float parameters only (and Burn would panic loading an integer tensor into
/// one). The bytes are rebuilt even when all f32: one copy, a few ms for the shipped models
/// (checking the element types first would need the reader on shared bytes, which made the
/// f16 conversion below two to three times slower).
fn widen_to_f32(weights: Vec<u8>) -> Result<Bytes, ModelError> {
    let mut tensors: std::collections::BTreeMap<String, PackTensor> =
        Reader::from_bytes(Bytes::from_bytes_vec(weights))
            .and_then(Reader::into_tensors)
            .map_err(bad)?
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
    let mut out = Vec::with_capacity(tensors.len());
    // A scale sorts after its tensor, which takes it out of the map first.
    while let Some((name, t)) = tensors.pop_first() {
        out.push(match t.dtype {
            DType::F32 | DType::Flex32 => t,
            DType::F16 | DType::BF16 | DType::F64 => convert(t, DType::F32)?,
            DType::I8 => {
                let scale = tensors
                    .remove(&format!("{name}{SCALE_SUFFIX}"))
                    .ok_or_else(|| bad(format!("{name} is stored as int8 without its scales")))?;
                dequantize_int8(t, scale)?
            }
            other => {
                return Err(bad(format!(
                    "{name} is stored as {other:?}; kyara's weights are floating point"
                )));
            }
        });
    }
    Writer::new(out).into_bytes().map_err(bad)
}

/// `t` (f32, `[rows, cols]`) as `(q: i8 [rows, cols], scale: f32 [cols])`; `None` if a value is
/// not finite.
fn quantize_int8(t: &PackTensor) -> Result<Option<(PackTensor, PackTensor)>, ModelError> {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    if rows == 0 || cols == 0 {
        return Ok(None);
    }
    let w = tensor_data(t.clone())?
        .try_into_vec::<f32>()
        .map_err(|e| bad(format!("{}: {e}", t.name)))?;
    if w.iter().any(|v| !v.is_finite()) {
        return Ok(None);
    }
    let mut scale = vec![0f32; cols];
    for row in w.chunks_exact(cols) {
        for (s, v) in scale.iter_mut().zip(row) {
            *s = s.max(v.abs());
        }
    }
    scale.iter_mut().for_each(|s| *s /= 127.0);
    let q: Vec<i8> = w
        .chunks_exact(cols)
        .flat_map(|row| {
            row.iter().zip(&scale).map(|(v, s)| {
                if *s == 0.0 {
                    0
                } else {
                    (v / s).round().clamp(-127.0, 127.0) as i8
                }
            })
        })
        .collect();
    let q = TensorData::new(q, [rows, cols]).into_parts().0;
    let scale = TensorData::new(scale, [cols]).into_parts().0;
    Ok(Some((
        PackTensor::new(t.name.clone(), DType::I8, [rows, cols], t.param_id, q),
        PackTensor::new(
            format!("{}{SCALE_SUFFIX}", t.name),
            DType::F32,
            [cols],
            None,
            scale,
        ),
    )))
}

/// `q` (i8, `[rows, cols]`) times `scale` (float, `[cols]`) per column, as f32.
fn dequantize_int8(q: PackTensor, scale: PackTensor) -> Result<PackTensor, ModelError> {
    let (name, param_id, shape) = (q.name.clone(), q.param_id, q.shape.clone());
    let cols = match shape.as_slice() {
        [_, cols] if scale.shape.as_slice() == [*cols] => *cols,
        _ => {
            return Err(bad(format!(
                "{name}: int8 tensor of shape {shape:?} with scales of shape {:?}",
                scale.shape
            )));
        }
    };
    let q = tensor_data(q)?
        .try_into_vec::<i8>()
        .map_err(|e| bad(format!("{name}: {e}")))?;
    let scale = tensor_data(scale)?
        .try_into_vec_as::<f32>()
        .map_err(|e| bad(format!("{name}{SCALE_SUFFIX}: {e}")))?;
    let w: Vec<f32> = q
        .chunks_exact(cols.max(1))
        .flat_map(|row| row.iter().zip(&scale).map(|(q, s)| *q as f32 * s))
        .collect();
    let bytes = TensorData::new(w, shape.clone()).into_parts().0;
    Ok(PackTensor::new(name, DType::F32, shape, param_id, bytes))
}

/// `t` (f32) as f16, or unchanged if a value is beyond f16's range.
fn narrow_to_f16(t: PackTensor) -> Result<PackTensor, ModelError> {
    let fits = {
        let data = tensor_data(t.clone())?;
        let values = data
            .try_to_vec::<f32>()
            .map_err(|e| bad(format!("{}: {e}", t.name)))?;
        values.iter().all(|v| v.abs() <= F16_MAX || v.is_nan())
    };
    if fits { convert(t, DType::F16) } else { Ok(t) }
}

fn tensor_data(t: PackTensor) -> Result<TensorData, ModelError> {
    let (name, dtype, shape, _, bytes) = t.into_parts().map_err(bad)?;
    TensorData::try_from_bytes(bytes, shape, dtype).map_err(|e| bad(format!("{name}: {e}")))
}

/// Casts a burnpack tensor's values to `dtype` (round to nearest), keeping its name and id.
fn convert(t: PackTensor, dtype: DType) -> Result<PackTensor, ModelError> {
    let (name, param_id) = (t.name.clone(), t.param_id);
    let data = tensor_data(t)?
        .try_cast(dtype)
        .map_err(|e| bad(format!("{name}: {e}")))?;
    let (bytes, shape, dtype) = data.into_parts();
    Ok(PackTensor::new(name, dtype, shape, param_id, bytes))
}

/// What a float parameter is, for the storage formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamKind {
    /// Declared by a `BatchNorm` (kept f32).
    BatchNorm,
    /// The `weight` of a dense layer, `Linear` or `EqLinear` (int8 under
    /// [`WeightsDtype::Int8`]).
    LinearWeight,
}

/// The float parameters that are [`ParamKind`]s, by path (as burnpack names:
/// `blocks.0.bn1.running_var`). Reads no tensor data.
fn param_kinds<M: Module>(module: &M) -> std::collections::HashMap<String, ParamKind> {
    /// The innermost container of a parameter is the struct that declares it.
    #[derive(Default)]
    struct Finder {
        path: Vec<String>,
        containers: Vec<String>,
        found: std::collections::HashMap<String, ParamKind>,
    }
    impl ModuleVisitor for Finder {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.push(name.to_string());
            self.containers.push(container_type.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
            self.containers.pop();
        }
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            let declared_by = self
                .containers
                .iter()
                .rev()
                .find(|c| c.starts_with("Struct:") || c.starts_with("Enum:"))
                .map(String::as_str);
            let kind = match (declared_by, self.path.last().map(String::as_str)) {
                (Some("Struct:BatchNorm"), _) => ParamKind::BatchNorm,
                (Some("Struct:Linear" | "Struct:EqLinear"), Some("weight")) => {
                    ParamKind::LinearWeight
                }
                _ => return,
            };
            self.found.insert(self.path.join("."), kind);
        }
    }
    let mut finder = Finder::default();
    module.visit(&mut finder);
    finder.found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DcganGeneratorConfig, GeneratorInput, GeneratorSpec, ResnetCganGeneratorConfig};

    fn specs() -> [GeneratorSpec; 2] {
        [
            GeneratorSpec::ResnetCgan(
                ResnetCganGeneratorConfig::new(3)
                    .with_latent_dim(16)
                    .with_resolution(16)
                    .with_init_size(8)
                    .with_channels(16)
                    .with_min_channels(8)
                    .with_res_blocks(1)
                    .with_activation(crate::arch::resnet_cgan::Activation::Prelu),
            ),
            GeneratorSpec::Dcgan(
                DcganGeneratorConfig::new(3)
                    .with_latent_dim(16)
                    .with_resolution(16)
                    .with_channels(8),
            ),
        ]
    }

    #[test]
    fn f16_stores_everything_but_batch_norm_in_half_and_loads_back_as_f32() {
        let device = Device::flex();
        for spec in specs() {
            let g = spec.try_init(&device).unwrap();
            let full = g.clone().to_bytes().unwrap();
            let half = g.to_bytes_as(WeightsDtype::F16).unwrap();
            let dtypes = stored_dtypes(&half).unwrap();
            assert_eq!(dtypes.len(), stored_dtypes(&full).unwrap().len());
            for (name, dtype) in &dtypes {
                let bn = name.contains("bn");
                let want = if bn { DType::F32 } else { DType::F16 };
                assert_eq!(*dtype, want, "{}: {name}", spec.arch());
            }
            assert!(dtypes.iter().any(|(n, _)| n.ends_with("running_var")));
            if spec.arch() == "resnet-cgan" {
                assert!(dtypes.iter().any(|(n, _)| n.ends_with("alpha")), "PReLU");
            }
            // Loaded back, every parameter is f32.
            let loaded = spec
                .try_init(&device)
                .unwrap()
                .load_bytes(half.clone())
                .unwrap();
            let mut dtypes = Vec::new();
            struct Dtypes<'a>(&'a mut Vec<DType>);
            impl ModuleVisitor for Dtypes<'_> {
                fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                    self.0.push(p.val().dtype());
                }
            }
            loaded.visit(&mut Dtypes(&mut dtypes));
            assert!(!dtypes.is_empty());
            assert!(dtypes.iter().all(|d| *d == DType::F32), "{dtypes:?}");
        }
    }

    #[test]
    fn values_beyond_f16_range_keep_their_tensor_f32() {
        let device = Device::flex();
        let spec = &specs()[1];
        let bytes = spec.try_init(&device).unwrap().to_bytes().unwrap();
        // Blow one weight up to 1e6 and save again as f16.
        let mut tensors = Reader::from_bytes(Bytes::from_bytes_vec(bytes))
            .unwrap()
            .into_tensors()
            .unwrap();
        let i = tensors
            .iter()
            .position(|t| t.name == "to_rgb.weight")
            .unwrap();
        let mut data = tensor_data(tensors[i].clone())
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap();
        data[0] = 1e6;
        let t = &tensors[i];
        tensors[i] = PackTensor::new(
            t.name.clone(),
            DType::F32,
            t.shape.clone(),
            t.param_id,
            TensorData::new(data, t.shape.clone()).into_parts().0,
        );
        let bytes = Writer::new(tensors).into_bytes().unwrap().to_vec();
        let g = spec.try_init(&device).unwrap().load_bytes(bytes).unwrap();
        let half = g.to_bytes_as(WeightsDtype::F16).unwrap();
        let dtypes = stored_dtypes(&half).unwrap();
        for (name, dtype) in dtypes {
            if name == "to_rgb.weight" {
                assert_eq!(dtype, DType::F32);
            } else if !name.contains("bn") {
                assert_eq!(dtype, DType::F16, "{name}");
            }
        }
    }

    /// Faces (as 8-bit RGB, `[seeds, 3 * R * R]`) of a generator for seeds 0..8 with tag 0 on.
    fn faces(g: &crate::AnyGenerator, spec: &GeneratorSpec, device: &Device) -> Vec<u8> {
        let n = 8;
        let z: Vec<f32> = (0..n)
            .flat_map(|s| crate::SplitMix64::new(s).normals(spec.latent_dim()))
            .collect();
        let c: Vec<f32> = (0..n as usize * spec.num_tags())
            .map(|i| if i % spec.num_tags() == 0 { 1.0 } else { 0.0 })
            .collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [n as usize, spec.latent_dim()]), device);
        let c = Tensor::<2>::from_data(TensorData::new(c, [n as usize, spec.num_tags()]), device);
        let out = g
            .forward(GeneratorInput::new(z, c))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        out.into_iter().map(crate::sample::to_u8).collect()
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
    }

    /// A generator of shipped proportions (the dense layer dominates), scaled down.
    fn medium() -> GeneratorSpec {
        GeneratorSpec::ResnetCgan(
            ResnetCganGeneratorConfig::new(6)
                .with_latent_dim(32)
                .with_resolution(32)
                .with_init_size(8)
                .with_channels(32)
                .with_min_channels(8)
                .with_res_blocks(2),
        )
    }

    /// Every float32 value of burnpack bytes passed through `f`.
    fn map_values(bytes: &[u8], f: impl Fn(f32) -> f32) -> Vec<u8> {
        let tensors = Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .and_then(Reader::into_tensors)
            .unwrap()
            .into_iter()
            .map(|t| {
                let (name, id, shape) = (t.name.clone(), t.param_id, t.shape.clone());
                let v: Vec<f32> = tensor_data(t).unwrap().try_to_vec::<f32>().unwrap();
                let v: Vec<f32> = v.into_iter().map(&f).collect();
                let bytes = TensorData::new(v, shape.clone()).into_parts().0;
                PackTensor::new(name, DType::F32, shape, id, bytes)
            })
            .collect();
        Writer::new(tensors).into_bytes().unwrap().to_vec()
    }

    #[test]
    fn f16_halves_the_file_and_moves_pixels_by_at_most_one_or_two() {
        let device = Device::flex();
        let spec = medium();
        let g = crate::rng::seeded(&device, 3, || spec.try_init(&device)).unwrap();
        let reference = faces(&g, &spec, &device);
        let full = g.clone().to_bytes().unwrap();
        let half = g.to_bytes_as(WeightsDtype::F16).unwrap();
        let ratio = half.len() as f64 / full.len() as f64;
        assert!((0.49..0.53).contains(&ratio), "f16/f32 size ratio {ratio}");

        let load = |bytes: Vec<u8>| spec.try_init(&device).unwrap().load_bytes(bytes).unwrap();
        let from_half = faces(&load(half), &spec, &device);
        let d = max_diff(&reference, &from_half);
        assert!(d <= 2, "f16 moved a pixel value by {d}");
        // An f32 file still loads exactly.
        assert_eq!(faces(&load(full.clone()), &spec, &device), reference);

        // The bound means something: weights cut to 3 significant bits (what a wrong bit
        // layout or a lossy bug could do, and much gentler than garbage) break it (measured:
        // f16 1, 3 bits 11, on faces spanning 91..153 of 255 at this random init).
        let garbled = map_values(&full, |x| f32::from_bits(x.to_bits() & 0xFFE0_0000));
        let d = max_diff(&reference, &faces(&load(garbled), &spec, &device));
        assert!(d > 4, "garbled weights moved pixels by only {d}");
    }

    #[test]
    fn truncated_or_corrupt_f16_bytes_are_errors() {
        let device = Device::flex();
        let spec = medium();
        let half = spec
            .try_init(&device)
            .unwrap()
            .to_bytes_as(WeightsDtype::F16)
            .unwrap();
        for cut in [0, 1, 16, half.len() / 3, half.len() - 1] {
            let e = spec
                .try_init(&device)
                .unwrap()
                .load_bytes(half[..cut].to_vec())
                .unwrap_err();
            assert!(matches!(e, ModelError::BadWeights(_)), "cut at {cut}: {e}");
        }
        // f16 weights under the wrong model.
        let other = GeneratorSpec::Dcgan(crate::DcganGeneratorConfig::new(6).with_latent_dim(32));
        let e = other
            .try_init(&device)
            .unwrap()
            .load_bytes(half)
            .unwrap_err();
        assert!(matches!(e, ModelError::BadWeights(_)), "{e}");
    }

    #[test]
    fn int8_stores_linear_weights_as_bytes_with_scales_and_loads_back_close() {
        let device = Device::flex();
        let spec = medium();
        let g = crate::rng::seeded(&device, 3, || spec.try_init(&device)).unwrap();
        let reference = faces(&g, &spec, &device);
        let half = g.clone().to_bytes_as(WeightsDtype::F16).unwrap();
        let int8 = g.to_bytes_as(WeightsDtype::Int8).unwrap();
        // The dense weight [32 + 6, 32 * 8 * 8] loses a byte per value and gains a f32 scale
        // per column; the rest is as in f16.
        let (n, cols) = (38 * 2048, 2048);
        let saved = half.len() as i64 - int8.len() as i64;
        assert!(
            (n - 4 * cols - 1024..=n - 4 * cols + 1024).contains(&saved),
            "{saved}"
        );
        let dtypes = stored_dtypes(&int8).unwrap();
        let of = |n: &str| dtypes.iter().find(|(name, _)| name == n).map(|(_, d)| *d);
        assert_eq!(of("dense.weight"), Some(DType::I8));
        assert_eq!(of("dense.weight.int8_scale"), Some(DType::F32));
        assert_eq!(of("dense.bias"), Some(DType::F16));
        assert_eq!(of("bn0.running_var"), Some(DType::F32));
        assert_eq!(of("to_rgb.weight"), Some(DType::F16));

        let load = |bytes: Vec<u8>| spec.try_init(&device).unwrap().load_bytes(bytes);
        let d = max_diff(
            &reference,
            &faces(&load(int8.clone()).unwrap(), &spec, &device),
        );
        assert!(d <= 2, "int8 moved a pixel value by {d}");

        // Broken int8 files are errors: scales missing, of the wrong shape.
        let edit = |f: &dyn Fn(Vec<PackTensor>) -> Vec<PackTensor>| {
            let tensors = Reader::from_bytes(Bytes::from_bytes_vec(int8.clone()))
                .and_then(Reader::into_tensors)
                .unwrap();
            Writer::new(f(tensors)).into_bytes().unwrap().to_vec()
        };
        let no_scale = edit(&|ts| {
            ts.into_iter()
                .filter(|t| !t.name.ends_with(".int8_scale"))
                .collect()
        });
        let e = load(no_scale).unwrap_err().to_string();
        assert!(
            e.contains("dense.weight is stored as int8 without its scales"),
            "{e}"
        );
        let short_scale = edit(&|ts| {
            ts.into_iter()
                .map(|t| {
                    if t.name.ends_with(".int8_scale") {
                        let b = TensorData::new(vec![1f32; 3], [3]).into_parts().0;
                        PackTensor::new(t.name, DType::F32, [3], None, b)
                    } else {
                        t
                    }
                })
                .collect()
        });
        let e = load(short_scale).unwrap_err().to_string();
        assert!(e.contains("scales of shape"), "{e}");
        // An integer tensor where a float parameter belongs: an error, not Burn's panic.
        let ints = edit(&|ts| {
            ts.into_iter()
                .map(|t| {
                    if t.name == "dense.bias" {
                        let n = t.shape.num_elements();
                        let b = TensorData::new(vec![1i32; n], t.shape.clone())
                            .into_parts()
                            .0;
                        PackTensor::new(t.name, DType::I32, t.shape, t.param_id, b)
                    } else {
                        t
                    }
                })
                .collect()
        });
        let e = load(ints).unwrap_err().to_string();
        assert!(e.contains("dense.bias is stored as I32"), "{e}");
    }

    #[test]
    fn weights_dtype_names() {
        assert_eq!(
            serde_json::to_value(WeightsDtype::F16).unwrap(),
            serde_json::json!("f16")
        );
        assert_eq!(WeightsDtype::default(), WeightsDtype::F32);
        assert_eq!(WeightsDtype::F16.to_string(), "f16");
        assert_eq!(
            serde_json::from_value::<WeightsDtype>(serde_json::json!("int8")).unwrap(),
            WeightsDtype::Int8
        );
    }

    #[test]
    fn shape_mismatches_are_summarised() {
        let burn = r#"Record validation error: Apply errors: ["bn0.gamma: shape mismatch, expected Shape { dims: [64] } but record has Shape { dims: [256] }", "to_rgb.weight: shape mismatch, expected Shape { dims: [3] } but record has Shape { dims: [32] }"]"#;
        let s = summarise(burn);
        assert!(s.starts_with("2 tensors have other shapes"), "{s}");
        assert!(s.contains("bn0.gamma") && !s.contains("to_rgb"), "{s}");
        assert_eq!(summarise("missing tensor x"), "missing tensor x");
    }

    /// Issue 31: `convert` of stylegan2-64 to int8 wrote the f16 bytes under a card that said
    /// int8 (its dense layers are `EqLinear`, which int8 did not know). They are quantised now;
    /// a network with no dense layer at all (the DCGAN generator) is refused.
    #[test]
    fn int8_quantises_stylegan2_dense_layers_and_refuses_a_network_without_any() {
        let device = Device::flex();
        let spec = GeneratorSpec::Stylegan2(
            crate::Stylegan2GeneratorConfig::new(6)
                .with_latent_dim(16)
                .with_w_dim(32)
                .with_resolution(8)
                .with_channels(16)
                .with_min_channels(16),
        );
        let g = crate::rng::seeded(&device, 5, || spec.try_init(&device)).unwrap();
        let reference = faces(&g, &spec, &device);
        let half = g.clone().to_bytes_as(WeightsDtype::F16).unwrap();
        let int8 = g.to_bytes_as(WeightsDtype::Int8).unwrap();
        assert_ne!(half, int8);
        assert!(int8.len() < half.len(), "{} >= {}", int8.len(), half.len());
        let dtypes = stored_dtypes(&int8).unwrap();
        let int8_names: Vec<&str> = dtypes
            .iter()
            .filter(|(_, d)| *d == DType::I8)
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(
            int8_names.iter().any(|n| n.starts_with("mapping.")),
            "{int8_names:?}"
        );
        assert!(
            int8_names.iter().any(|n| n.contains("affine")),
            "{int8_names:?}"
        );
        let back = spec.try_init(&device).unwrap().load_bytes(int8).unwrap();
        // An untrained network's faces are noise, so a pixel can move further than in a trained
        // model's (convert's check of stylegan2-64, 8 seeds: max 18, mean 0.77 of 255); on
        // average it must hardly move.
        let after = faces(&back, &spec, &device);
        let mean = reference
            .iter()
            .zip(&after)
            .map(|(a, b)| a.abs_diff(*b) as f64)
            .sum::<f64>()
            / reference.len() as f64;
        let d = max_diff(&reference, &after);
        assert!(
            mean <= 2.0 && d <= 64,
            "int8 moved pixel values by {mean:.2} on average, at most {d}"
        );

        let dcgan = GeneratorSpec::Dcgan(
            crate::DcganGeneratorConfig::new(3)
                .with_latent_dim(16)
                .with_resolution(16)
                .with_channels(8),
        );
        let e = dcgan
            .try_init(&device)
            .unwrap()
            .to_bytes_as(WeightsDtype::Int8)
            .unwrap_err()
            .to_string();
        assert!(e.contains("int8") && e.contains("f16"), "{e}");
    }
}
