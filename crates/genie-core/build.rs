//! genie-core: bakes an rpath to libtorch's lib folder (exported by torch-sys as `DEP_TCH_LIBTORCH_LIB`)
//! into every binary this package links, so `genie` and the tests run without LD_LIBRARY_PATH;
//! and compiles `csrc/c10d.cpp`, the shim through which data-parallel training reaches c10d
//! (`src/train/dist.rs`), against the same libtorch's headers.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=csrc");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)");
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let include = PathBuf::from(&lib)
        .parent()
        .expect("libtorch's lib folder has a parent")
        .join("include");
    // libtorch is built with the C++11 ABI unless torch-sys was told otherwise.
    let cxx11_abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    cc::Build::new()
        .cpp(true)
        .file("csrc/c10d.cpp")
        .include("csrc/gloo_headers")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("USE_C10D_GLOO", None)
        .define("_GLIBCXX_USE_CXX11_ABI", cxx11_abi.as_str())
        .flag("-std=c++20")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("genie_c10d");
    println!("cargo:rustc-link-search=native={lib}");
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
