//! A supervisord configuration: read, mapped to Kahi's tables, written as TOML and loaded.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kahi::fuzz::supervisord(data));
