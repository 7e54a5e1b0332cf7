//! What a client writes to the control socket: lines, each a request, each answered.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kahi::fuzz::control(data));
