//! A configuration file's text: loaded, checked, started, and applied as an update.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kahi::fuzz::config(data));
