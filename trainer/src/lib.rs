//! kyara's native trainer: data loading, losses, the training loop, generation and export.
//! The networks themselves live in `shared-model`.

pub mod bench;
pub mod bench_ops;
pub mod cli;
pub mod data;
pub mod eval;
pub mod fsutil;
pub mod model_io;
pub mod tagger;
pub mod train;
