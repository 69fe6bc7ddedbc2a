#![no_main]
//! Fuzz target: see `nook_e2e::fuzz_targets::cli_numbers`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| nook_e2e::fuzz_targets::cli_numbers(data));
