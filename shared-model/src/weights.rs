//! Weights on disk: a module's parameters as burnpack bytes, stored as float32 or float16.
//!
//! Half precision is a storage format only. [`load_weights`] turns every half-precision tensor
//! back into float32 before it reaches the module, so the networks always compute in float32,
//! on every backend, whatever the file holds; old float32 files load unchanged.
//!
//! [`weights_bytes_as`] with [`WeightsDtype::F16`] stores every float parameter as f16 except:
//! - the parameters and running statistics of `BatchNorm` (gamma, beta, running mean and
//!   variance), as burn-store's `HalfPrecisionAdapter` does: a running variance can underflow in
//!   f16, and they are a few kB;
//! - any tensor holding a value beyond f16's range (|x| > 65504), which would become infinite.
//!
//! Everything else (Linear, Conv2d and ConvTranspose2d weights and biases, PReLU slopes) is f16.
//! The conversion works on the burnpack tensors on the host (round to nearest), so it needs no
//! f16 support from the backend.

use std::collections::HashSet;

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
}

impl WeightsDtype {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
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

/// Loads burnpack bytes (float32 or float16 tensors) into a module; half-precision tensors are
/// widened to float32 first. Every failure (empty, truncated, corrupt or foreign bytes, a shape
/// or a name that does not fit) is a [`ModelError::BadWeights`], never a panic.
pub fn load_weights<M: Module>(module: M, weights: Vec<u8>) -> Result<M, ModelError> {
    if weights.is_empty() {
        return Err(ModelError::BadWeights("the weights file is empty".into()));
    }
    let bytes = widen_to_f32(Bytes::from_bytes_vec(weights))?;
    let record = ModuleRecord::from_bytes(bytes).map_err(bad)?;
    module.try_load_record(record).map_err(bad)
}

/// Serialises a module's parameters to float32 burnpack bytes.
pub fn weights_bytes<M: Module>(module: M) -> Result<Vec<u8>, ModelError> {
    let bytes = module.into_record().into_bytes().map_err(bad)?;
    Ok(bytes.to_vec())
}

/// Serialises a module's parameters to burnpack bytes with float weights stored as `dtype`
/// (see the module docs for what stays float32 under [`WeightsDtype::F16`]).
pub fn weights_bytes_as<M: Module>(module: M, dtype: WeightsDtype) -> Result<Vec<u8>, ModelError> {
    match dtype {
        WeightsDtype::F32 => weights_bytes(module),
        WeightsDtype::F16 => {
            let keep = batch_norm_params(&module);
            let bytes = module.into_record().into_bytes().map_err(bad)?;
            let tensors = Reader::from_bytes(bytes)
                .and_then(Reader::into_tensors)
                .map_err(bad)?
                .into_iter()
                .map(|t| {
                    if t.dtype == DType::F32 && !keep.contains(&t.name) {
                        narrow_to_f16(t)
                    } else {
                        Ok(t)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Writer::new(tensors).into_bytes().map_err(bad)?.to_vec())
        }
    }
}

/// The element types of the float tensors in burnpack bytes, by tensor name (for tests and
/// reports). Fails like [`load_weights`] on bytes that are not a burnpack.
pub fn stored_dtypes(weights: &[u8]) -> Result<Vec<(String, DType)>, ModelError> {
    let tensors = Reader::from_bytes(Bytes::from_bytes_vec(weights.to_vec()))
        .and_then(Reader::into_tensors)
        .map_err(bad)?;
    Ok(tensors.into_iter().map(|t| (t.name, t.dtype)).collect())
}

/// Rewrites burnpack bytes with every f16, bf16 or f64 tensor converted to f32 (the copy
/// costs a few milliseconds for the shipped models).
fn widen_to_f32(bytes: Bytes) -> Result<Bytes, ModelError> {
    let tensors = Reader::from_bytes(bytes)
        .and_then(Reader::into_tensors)
        .map_err(bad)?
        .into_iter()
        .map(|t| match t.dtype {
            DType::F16 | DType::BF16 | DType::F64 => convert(t, DType::F32),
            _ => Ok(t),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Writer::new(tensors).into_bytes().map_err(bad)
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

/// Paths (as burnpack names: `blocks.0.bn1.running_var`) of the float parameters declared by a
/// `BatchNorm`. Reads no tensor data.
fn batch_norm_params<M: Module>(module: &M) -> HashSet<String> {
    /// The innermost container of a parameter is the struct that declares it.
    #[derive(Default)]
    struct Finder {
        path: Vec<String>,
        containers: Vec<String>,
        found: HashSet<String>,
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
                .find(|c| c.starts_with("Struct:") || c.starts_with("Enum:"));
            if declared_by.is_some_and(|c| c == "Struct:BatchNorm") {
                self.found.insert(self.path.join("."));
            }
        }
    }
    let mut finder = Finder::default();
    module.visit(&mut finder);
    finder.found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DcganGeneratorConfig, GeneratorConfig, GeneratorSpec};

    fn specs() -> [GeneratorSpec; 2] {
        [
            GeneratorSpec::Resnet(
                GeneratorConfig::new(3)
                    .with_latent_dim(16)
                    .with_resolution(16)
                    .with_init_size(8)
                    .with_channels(16)
                    .with_min_channels(8)
                    .with_res_blocks(1)
                    .with_activation(crate::cgan::Activation::Prelu),
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
            if spec.arch() == crate::arch::ARCH_RESNET {
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
        let out = g.forward(z, c).into_data().try_to_vec::<f32>().unwrap();
        out.into_iter().map(crate::sample::to_u8).collect()
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
    }

    /// A generator of shipped proportions (the dense layer dominates), scaled down.
    fn medium() -> GeneratorSpec {
        GeneratorSpec::Resnet(
            GeneratorConfig::new(6)
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
        device.seed(3);
        let spec = medium();
        let g = spec.try_init(&device).unwrap();
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
    fn weights_dtype_names() {
        assert_eq!(
            serde_json::to_value(WeightsDtype::F16).unwrap(),
            serde_json::json!("f16")
        );
        assert_eq!(WeightsDtype::default(), WeightsDtype::F32);
        assert_eq!(WeightsDtype::F16.to_string(), "f16");
    }
}
