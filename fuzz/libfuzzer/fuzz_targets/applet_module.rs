#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vse_fuzz::targets::applet_module::run(data));
