//! Fuzz target: `smtp::fuzz_command` must never panic, whatever the bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smtp::fuzz_command(data);
});
