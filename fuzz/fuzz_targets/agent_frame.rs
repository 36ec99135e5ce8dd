//! Fuzz target: `daemon::local::action::fuzz_frame` must never panic, whatever the bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    daemon::local::action::fuzz_frame(data);
});
