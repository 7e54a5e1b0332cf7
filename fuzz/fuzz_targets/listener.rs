//! What event listeners write on their stdout, to a pool of two.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kahi::fuzz::listener(data));
