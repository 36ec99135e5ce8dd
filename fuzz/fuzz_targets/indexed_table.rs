//! Fuzz target: `tables::fuzz_indexed` must never panic, whatever the bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tables::fuzz_indexed(data);
});
