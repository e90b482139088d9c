#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iked_fuzz::endpoint_ra(data));
