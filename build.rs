//! Links the unwinder (libgcc_eh) into the glibc binary instead of loading libgcc_s.so.1 at
//! every start: with `panic = "abort"` it is only there for backtraces, and one shared library
//! less to find, map and bind is 10 page faults and 0.07 ms off every `kahi ctl` (see
//! docs/performance.md). A static build (crt-static, or musl) has it linked in already.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if target.ends_with("-linux-gnu") && !features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
