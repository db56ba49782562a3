//! With the `train` feature, for the `isoflop-train` binary only: an rpath to libtorch's
//! folder, so it runs without LD_LIBRARY_PATH, and libtorch_cuda linked even though no symbol
//! of it is named (the linker drops it otherwise, and CUDA then reports itself unavailable:
//! tch-rs issues 980, 907). The `isoflop` binary never loads libtorch.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_ISOFLOP_TORCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_ISOFLOP_TORCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bin=isoflop-train=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg-bin=isoflop-train=-Wl,--no-as-needed,-ltorch_cuda,-ltorch,--as-needed");
        }
    }
}
