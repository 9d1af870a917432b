//! A data set's metadata.csv, a kohya sidecar and an image file, as `trainer train` reads them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    trainer::data::fuzz_dataset(data);
});
