#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vse_fuzz::targets::scp_unwrap::run(data));
