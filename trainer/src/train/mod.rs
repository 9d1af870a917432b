//! Training.

pub mod losses;
pub mod spectral;
mod trainer;

pub use trainer::*;
