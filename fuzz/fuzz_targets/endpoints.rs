#![no_main]
// See rheostat_filter::fuzzing::endpoints for the invariants.
libfuzzer_sys::fuzz_target!(|data: &[u8]| rheostat_filter::fuzzing::endpoints(data));
