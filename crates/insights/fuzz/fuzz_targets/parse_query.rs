#![no_main]
//! Any input: parsing never panics, and whatever parses evaluates without panicking.
//! The same body runs in CI over tests/corpus via `tests/never_panics.rs`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        firebreak_insights::fuzz_body(src);
    }
});
