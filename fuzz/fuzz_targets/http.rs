//! An HTTP request, `METHOD URL [AUTHORIZATION]`, a newline and its body: routed and answered.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kahi::fuzz::http(data));
