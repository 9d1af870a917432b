//! A permalink, alone and against a small model's card (it must read back as written).
#![no_main]
use std::sync::OnceLock;

use shared_model::ModelCard;

fn card() -> &'static ModelCard {
    static CARD: OnceLock<ModelCard> = OnceLock::new();
    CARD.get_or_init(shared_model::fuzz::sample_card)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shared_model::fuzz::permalink(data, None);
    shared_model::fuzz::permalink(data, Some(card()));
});
