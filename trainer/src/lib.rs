//! kyara's native trainer: data loading, losses, the training loop, generation and export.
//! The networks themselves live in `shared-model`.

pub mod bench;
pub mod cli;
pub mod cli_eval;
pub mod data;
pub mod eval;
pub mod export;
pub mod fsutil;
pub mod generate;
pub mod interpolate;
pub mod losses;
pub mod metrics;
pub mod spectral;
pub mod tag;
pub mod tagger;
pub mod train;
