//! A model card and its weights, as the page and the widget load them from other sites.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shared_model::fuzz::card_and_weights(data);
});
