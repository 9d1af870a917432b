//! The `trainer` command line.

pub mod eval;
mod train;

pub use train::*;
