//! Fuzz target: `veil_secagg::fuzzing::task_decode` (see its docs for the invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_secagg::fuzzing::task_decode(data));
