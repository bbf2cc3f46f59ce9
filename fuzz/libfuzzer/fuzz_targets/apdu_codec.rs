#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vse_fuzz::targets::apdu_codec::run(data));
