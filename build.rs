//! Bakes an rpath to libtorch's lib folder (exported by torch-sys as `DEP_TCH_LIBTORCH_LIB`)
//! into every binary this package links, so `genie` and the tests run without LD_LIBRARY_PATH.
//! (genie-core's build script does the same for its own tests and compiles its c10d shim.)

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
