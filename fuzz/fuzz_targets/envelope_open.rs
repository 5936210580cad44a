//! Fuzz target: `veil_crypto::fuzzing::envelope_open` (see its docs for the invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_crypto::fuzzing::envelope_open(data));
