//! Fuzz target: `tables::fuzz_aliases` must never panic, whatever the bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tables::fuzz_aliases(data);
});
