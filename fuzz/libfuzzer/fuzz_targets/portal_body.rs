#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vse_fuzz::targets::portal_body::run(data));
