//! Training: the config that defines a run, the run folder that holds it, the losses, the
//! recipe's pieces (loss terms, augmentations, schedules; [`recipe`]), spectral
//! normalisation of the critic, one training step with its EMA and checkpoints, and the loop
//! that steps to the end.
//!
//! `train` depends on `data` (the images) and on `shared-model` (the networks); nothing here
//! knows the command line.

mod config;
pub mod losses;
mod memory;
pub mod recipe;
mod run_dir;
pub mod spectral;
mod trainer;
mod training_loop;

pub use config::{OptimizerConfig, Precision, TrainConfig};
pub use memory::check_batch_fits;
pub use recipe::{PieceSpec, Recipe};
pub use run_dir::{Checkpoint, Part, RunDir, TrainState, latest_checkpoint, load_run_config};
pub use trainer::{StepStats, Trainer, sample_grid_inputs, wrong_condition};
pub use training_loop::{RunOptions, StepHook, run_training, run_training_with};
