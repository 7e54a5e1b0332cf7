//! The body of an XML-RPC request to /RPC2: read, and each of its calls answered.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kahi::fuzz::xmlrpc(data));
