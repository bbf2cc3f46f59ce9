#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vse_fuzz::targets::server_body::run(data));
