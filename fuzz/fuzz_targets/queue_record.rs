//! Fuzz target: `queue::fuzz_decode` must never panic, whatever the bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    queue::fuzz_decode(data);
});
