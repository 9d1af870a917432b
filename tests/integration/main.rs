//! kyara's integration tests: one binary, small fixtures made on the spot (no shared data needed).

mod cli;
mod dataset;
mod eval;
mod fixtures;
mod model_io;
mod precision;
mod recipe;
mod reliability;
mod training;
mod training_recipe;
