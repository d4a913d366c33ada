//! Thin helpers around libtorch (through tch): its CUDA backend, device choice and thread count.

use std::str::FromStr;
use std::sync::OnceLock;

use tch::Device;

/// Where the networks run; chosen on the command line (`--device cpu|cuda|auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    #[default]
    Auto,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device '{0}': expected cpu, cuda or auto")]
    Unknown(String),
    #[error("--device cuda was asked for, but libtorch sees no CUDA device on this machine ({0})")]
    NoCuda(String),
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            _ => Err(DeviceError::Unknown(s.to_owned())),
        }
    }
}

impl DeviceChoice {
    /// Resolves the choice against what libtorch can see now.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda => match load_cuda_backend() {
                Ok(()) if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
                Ok(()) => Err(DeviceError::NoCuda(
                    "its CUDA backend is loaded but finds no device".into(),
                )),
                Err(why) => Err(DeviceError::NoCuda(why)),
            },
            Self::Auto => {
                let _ = load_cuda_backend();
                Ok(Device::cuda_if_available())
            }
        }
    }
}

/// Loads libtorch's CUDA backend, `libtorch_cuda.so`, once; says why not where it cannot.
///
/// The link does not keep it: rustc links with `--as-needed` and no symbol of it is called, so
/// without this libtorch would see no CUDA device even where the CUDA wheel is installed. It is
/// loaded here rather than linked so that the same binary starts on a CPU-only machine, where
/// scripts/setup.sh installs only the CPU part of the wheel and the library's own dependencies
/// (cuBLAS, cuDNN, …) are missing. Its static initialisers register the backend with the
/// libtorch already loaded; libtorch caches its first answer to "is there CUDA?", so `main` calls
/// this before anything else touches libtorch. Found through the rpath to libtorch's lib folder
/// that build.rs bakes in, or `LD_LIBRARY_PATH`.
pub fn load_cuda_backend() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(open_cuda_library).clone()
}

#[cfg(unix)]
#[allow(unsafe_code)] // the crate's one exception: loading a shared library cannot be safe Rust
fn open_cuda_library() -> Result<(), String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: the library is libtorch's own, built with the libtorch this process links; its
    // initialisers only register the CUDA backend. The handle is leaked, so the library is
    // never unloaded while libtorch may call into it.
    let lib = unsafe { Library::open(Some("libtorch_cuda.so"), RTLD_NOW | RTLD_GLOBAL) }
        .map_err(|e| format!("cannot load libtorch_cuda.so: {e}"))?;
    std::mem::forget(lib);
    Ok(())
}

#[cfg(not(unix))]
fn open_cuda_library() -> Result<(), String> {
    Err("loading libtorch's CUDA backend is only implemented on Linux".into())
}

/// Sets libtorch's intra-op thread count; `None` keeps libtorch's default (one per core).
pub fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        tch::set_num_threads(n.max(1) as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda);
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        let err = "tpu".parse::<DeviceChoice>().unwrap_err().to_string();
        assert!(err.contains("tpu"), "{err}");
    }

    #[test]
    fn cpu_always_resolves() {
        assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), Device::Cpu);
    }
}
