//! Models in and out.

pub mod export;
pub mod generate;
pub mod interpolate;
