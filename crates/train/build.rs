//! Makes binaries that use libtorch find it at run time without LD_LIBRARY_PATH: an rpath to
//! the libtorch that torch-sys linked (the PyPI torch wheel's lib folder), for this crate's
//! tests, and passed on (as DEP_ISOFLOP_TORCH_LIBTORCH_LIB) to the binary crate's build script.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:libtorch_lib={lib}");
    }
}
