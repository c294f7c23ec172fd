//! Fuzz target `pipeline`: see `regmail_fuzz::pipeline` (fuzz/src/lib.rs) for what it
//! feeds and the invariants it asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| regmail_fuzz::pipeline(data));
