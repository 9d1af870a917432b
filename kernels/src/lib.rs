//! kyara's CPU kernels, a layer below the networks.
//!
//! Each function takes Burn's own module (same parameters, same weight files) or a plain tensor
//! and, on the Flex device, computes the layer with kernels of its own; with feature `autodiff`
//! each is also one autodiff node with its own backward pass. On other devices (wgpu, WebGPU) and
//! wherever a kernel does not apply (options it doesn't cover, non-f32 tensors) it calls Burn's op,
//! so results never depend on which path ran, only the speed does.
//!
//! - [`conv`] (`conv.rs`): `conv2d` and `conv_transpose2d` as im2col + GEMM, forward and both
//!   backward passes; its submodule `conv/winograd.rs` computes the 3x3, stride-1, padding-1
//!   layers as Winograd F(4x4, 3x3). It also holds the helpers the other modules share (images
//!   over threads, SIMD dispatch, f32 views of Flex tensors).
//! - [`norm`] (`norm.rs`): training-mode batch norm (inference runs Burn's module as it is).
//! - [`act`] (`act.rs`): leaky ReLU, tanh and pixel shuffle.
//! - [`precision`] (`precision.rs`): fp32, or bf16 GEMM operands with fp32 accumulation
//!   (`conv/bf16.rs`, AVX-512 BF16), a per-thread setting the training step turns on.
//! - `bench` (`bench.rs`, feature `bench`): the per-op benchmarks of `trainer bench --ops`, and
//!   the timing helpers the trainer's whole-step bench shares.
//!
//! Features: `autodiff` (the backward passes, for training), `parallel` (images over threads with
//! rayon; the page runs one thread), `bench`. `shared-model` forwards the first two.
//! Why each kernel exists and what it gained: `docs/benchmarks.md`.

pub mod act;
#[cfg(feature = "bench")]
pub mod bench;
pub mod conv;
pub mod norm;
pub mod precision;
