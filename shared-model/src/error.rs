use thiserror::Error;

/// Everything that can go wrong when loading or running a model. Messages are meant for people:
/// they name the tag, the file or the field that is wrong.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("unknown tag '{tag}'; known tags: {known}")]
    UnknownTag { tag: String, known: String },
    #[error("tags '{first}' and '{second}' are both in the exclusive group '{group}'; pick one")]
    ConflictingTags {
        first: String,
        second: String,
        group: String,
    },
    /// A model, tagger or shape-encoder card that cannot be used (the path names which).
    #[error("the card is not valid: {0}")]
    BadCard(String),
    #[error(
        "the weights do not fit the model card (truncated, corrupt or from another model): {0}"
    )]
    BadWeights(String),
    #[error("invalid architecture config: {0}")]
    BadConfig(String),
    /// A face spec the model cannot draw (no seed, an unknown direction, a bad number, ...).
    #[error("{0}")]
    BadSpec(String),
}
