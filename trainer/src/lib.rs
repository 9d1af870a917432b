//! kyara's native trainer: data loading, losses, the training loop, generation and export.
//! The networks themselves live in `shared-model`.
//!
//! One folder per stage; each depends only on the ones above it, and `cli` on all of them:
//! ```text
//! fsutil    atomic writes, PNG encoding, sheets of faces
//! data      tagged datasets decoded into memory, with their cache
//! train     the run config, the run folder, losses, spectral norm, steps, checkpoints, the loop
//! tagger    the tag classifier: training it, tagging a folder with it
//! dataset   building a dataset from illustrations: face detection, crops, duplicates
//! eval      scoring a generator with the tagger (FD, KID, precision/recall, label accuracy)
//! model_io  drawing faces from a model or run, export for the page, precision conversion
//! bench     timing training steps and generator forwards
//! cli       the `trainer` command line
//! ```

/// `eprintln!` that never panics: with stderr closed (`trainer train 2>&1 | head`) the message
/// is lost, not the run.
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// `println!` that never panics, for reports on stdout (see [`note!`]).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod bench;
pub mod cli;
pub mod data;
pub mod dataset;
pub mod eval;
pub mod fsutil;
pub mod model_io;
pub mod shape;
pub mod tagger;
pub mod train;
