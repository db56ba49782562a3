//! With the `train` feature: an rpath to libtorch's folder, so `isoflop` runs without
//! LD_LIBRARY_PATH, and libtorch_cuda linked even though no symbol of it is named (the linker
//! drops it otherwise, and CUDA then reports itself unavailable: tch-rs issues 980, 907).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_ISOFLOP_TORCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_ISOFLOP_TORCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,-ltorch,--as-needed");
        }
    }
}
