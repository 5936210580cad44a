//! Fuzz target: `veil_dp::fuzzing::ledger_replay` (see its docs for the invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_dp::fuzzing::ledger_replay(data));
