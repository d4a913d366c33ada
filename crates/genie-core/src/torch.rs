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

/// Runs `f` with libtorch's autocast on for `device`'s type, in bf16: inside, matmuls,
/// convolutions and linear layers run in bf16 while reductions and losses stay f32, as
/// `torch.autocast(device, dtype=torch.bfloat16)` in Python. tch's own `autocast` switches only
/// CUDA's, at its default f16, so this calls libtorch's C++ entry points directly. The cache of
/// bf16 weight copies is cleared on the way out, so call it around one step's forward pass
/// (backward and the optimizer outside), as PyTorch's recipe does.
pub fn autocast_bf16<T>(device: Device, f: impl FnOnce() -> T) -> T {
    let kind = autocast_ffi::device_type(device);
    let was = autocast_ffi::set(kind, true);
    autocast_ffi::enter();
    let out = f();
    autocast_ffi::leave();
    autocast_ffi::set(kind, was);
    out
}

/// Whether this CPU computes in bf16 natively (x86's AVX-512 BF16 or AMX, read from
/// /proc/cpuinfo on Linux). Without it libtorch's bf16 matmuls and convolutions take a scalar
/// path: a LAM step under bf16 autocast ran 20× slower than in f32 on an AVX2-only AMD EPYC
/// (25 against 495 tokens/s), where a CPU with it ran 1.5× faster.
pub fn cpu_has_native_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines().filter(|l| l.starts_with("flags")).any(|l| {
            l.split_whitespace()
                .any(|f| f == "avx512_bf16" || f == "amx_bf16")
        })
    })
}

/// Whether libtorch's autocast is on for `device`'s type (inside [`autocast_bf16`]).
pub fn autocast_enabled(device: Device) -> bool {
    autocast_ffi::enabled(autocast_ffi::device_type(device))
}

#[allow(unsafe_code)] // the crate's second exception: libtorch's autocast switches, not in tch
mod autocast_ffi {
    // c10::DeviceType and c10::ScalarType are `enum class : int8_t` (CPU 0, CUDA 1; BFloat16
    // 15). The functions are plain C++ free functions taking and returning scalars, called with
    // the platform's C calling convention.
    const BFLOAT16: i8 = 15;

    unsafe extern "C" {
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        fn set_autocast_enabled(device_type: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        fn is_autocast_enabled(device_type: i8) -> bool;
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        fn set_autocast_dtype(device_type: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        fn clear_cache();
    }

    pub(super) fn device_type(device: tch::Device) -> i8 {
        match device {
            tch::Device::Cuda(_) => 1,
            _ => 0,
        }
    }

    /// Switches autocast (thread-local in libtorch) for a device type, in bf16; returns whether
    /// it was on.
    pub(super) fn set(device_type: i8, on: bool) -> bool {
        // SAFETY: libtorch's exported functions (ATen/autocast_mode.h), scalar arguments only;
        // they set or read thread-local state and do not throw for CPU and CUDA.
        unsafe {
            let was = is_autocast_enabled(device_type);
            if on {
                set_autocast_dtype(device_type, BFLOAT16);
            }
            set_autocast_enabled(device_type, on);
            was
        }
    }

    pub(super) fn enabled(device_type: i8) -> bool {
        // SAFETY: as in `set`.
        unsafe { is_autocast_enabled(device_type) }
    }

    pub(super) fn enter() {
        // SAFETY: as in `set`; a thread-local counter.
        unsafe {
            increment_nesting();
        }
    }

    /// Leaves one autocast region; the outermost drops the cached bf16 weight copies.
    pub(super) fn leave() {
        // SAFETY: as in `set`; `clear_cache` empties libtorch's thread-local cast cache.
        unsafe {
            if decrement_nesting() == 0 {
                clear_cache();
            }
        }
    }
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
    fn autocast_runs_cpu_matmuls_in_bf16_inside_and_is_off_again_after() {
        let cpu = Device::Cpu;
        let (a, b) = (
            tch::Tensor::ones([4, 8], (tch::Kind::Float, cpu)),
            tch::Tensor::ones([8, 2], (tch::Kind::Float, cpu)),
        );
        assert!(!autocast_enabled(cpu));
        let (inside, on) = autocast_bf16(cpu, || (a.matmul(&b), autocast_enabled(cpu)));
        assert!(on);
        assert_eq!(inside.kind(), tch::Kind::BFloat16);
        assert_eq!(f64::try_from(inside.sum(tch::Kind::Float)).unwrap(), 64.0);
        assert!(!autocast_enabled(cpu));
        assert_eq!(a.matmul(&b).kind(), tch::Kind::Float);
    }

    #[test]
    fn cpu_always_resolves() {
        assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), Device::Cpu);
    }
}
