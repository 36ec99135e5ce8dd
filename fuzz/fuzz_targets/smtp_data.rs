//! Fuzz target: `smtp::data::fuzz_data` must never panic, whatever the bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smtp::data::fuzz_data(data);
});
