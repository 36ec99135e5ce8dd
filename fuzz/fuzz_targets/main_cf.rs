//! Fuzz target: `config::fuzz_main_cf` must never panic, whatever the bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    config::fuzz_main_cf(data);
});
