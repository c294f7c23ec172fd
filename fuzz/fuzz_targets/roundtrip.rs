//! Fuzz target `roundtrip`: see `regmail_fuzz::roundtrip` (fuzz/src/lib.rs) for what it
//! feeds and the invariants it asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| regmail_fuzz::roundtrip(data));
