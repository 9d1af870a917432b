//! Building a training set from a folder of illustrations (`trainer dataset build`): faces are
//! found with an OpenCV LBP cascade (`cascade`, `detect`), cropped with a margin and resized,
//! exact duplicates (same file content) and near duplicates (perceptual hash) dropped, and the
//! source's tags kept, into an imagefolder dataset that `trainer train --data` reads as it is.
//! `scenes` makes test pictures with known faces for measuring the detector.

pub mod build;
pub mod cascade;
pub mod detect;
pub mod scenes;

pub use build::{
    AutoTag, BuildOptions, BuildSummary, FaceSource, Fingerprint, build_dataset, crop_square, dhash,
};
pub use cascade::{Cascade, CascadeError, Rect};
pub use detect::{DetectParams, GrayImage, group_rectangles};
