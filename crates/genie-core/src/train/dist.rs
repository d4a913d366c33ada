//! Data-parallel training over c10d, the engine PyTorch's DDP runs on: a `TCPStore` for the
//! rendezvous and a `ProcessGroupGloo` for the collectives, both inside the libtorch genie links
//! (reached through `csrc/c10d.cpp`; no collective here is our own).
//!
//! Every rank runs the same `genie train` command on its own share of each step's clips. A step's
//! gradients are summed over the ranks in buckets and divided by their number before the
//! optimizer steps, so all ranks keep the same weights. A rank is told its place by torchrun's
//! variables (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`), which Slurm or
//! Kubernetes launchers set too, or by `genie train --nproc-per-node N`, which starts the local
//! ranks itself ([`super::launch::launch_local`]).

use std::ffi::{CString, c_char, c_int, c_void};
use std::time::Duration;

use tch::{Device, Kind, Tensor};

use super::launch::Launch;
/// A collective that failed, a rank that never arrived, or a launch that could not start.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("{0}")]
    Launch(String),
    #[error("rank {rank} of {world}: {what}")]
    Collective {
        rank: usize,
        world: usize,
        what: String,
    },
}

#[allow(unsafe_code)] // the crate's third exception: c10d's C++ API, through csrc/c10d.cpp
mod ffi {
    use super::{c_char, c_int, c_void};

    unsafe extern "C" {
        pub fn genie_c10d_new(
            host: *const c_char,
            port: u16,
            rank: c_int,
            world: c_int,
            timeout_ms: i64,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut c_void;
        pub fn genie_c10d_free(handle: *mut c_void);
        pub fn genie_c10d_allreduce_sum(
            handle: *mut c_void,
            data: *mut c_void,
            numel: i64,
            kind: c_int,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        pub fn genie_c10d_broadcast(
            handle: *mut c_void,
            data: *mut c_void,
            numel: i64,
            kind: c_int,
            root: c_int,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
    }

    /// A c10d group: a TCPStore and a ProcessGroupGloo, freed on drop.
    pub struct Handle(*mut c_void);

    // The handle is only used from the thread that trains, one collective at a time, in the same
    // order on every rank (c10d's rule); c10d's own objects are safe to move between threads.
    unsafe impl Send for Handle {}
    unsafe impl Sync for Handle {}

    const ERR_LEN: usize = 2048;

    fn message(buf: &[u8]) -> String {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let text = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
        // Gloo starts its messages with the source file it threw in: "[…/pair.cc:537] Read …".
        match text
            .strip_prefix('[')
            .and_then(|rest| rest.split_once("] "))
        {
            Some((_, message)) => message.to_owned(),
            None => text,
        }
    }

    impl Handle {
        pub fn new(
            host: &std::ffi::CStr,
            port: u16,
            rank: i32,
            world: i32,
            timeout_ms: i64,
        ) -> Result<Handle, String> {
            let mut err = [0u8; ERR_LEN];
            let raw = unsafe {
                genie_c10d_new(
                    host.as_ptr(),
                    port,
                    rank,
                    world,
                    timeout_ms,
                    err.as_mut_ptr().cast(),
                    ERR_LEN,
                )
            };
            if raw.is_null() {
                Err(message(&err))
            } else {
                Ok(Handle(raw))
            }
        }

        /// In place over `numel` contiguous values of `kind` at `data` (a CPU tensor's storage).
        pub fn allreduce_sum(
            &self,
            data: *mut c_void,
            numel: i64,
            kind: i32,
        ) -> Result<(), String> {
            let mut err = [0u8; ERR_LEN];
            let rc = unsafe {
                genie_c10d_allreduce_sum(
                    self.0,
                    data,
                    numel,
                    kind,
                    err.as_mut_ptr().cast(),
                    ERR_LEN,
                )
            };
            if rc == 0 { Ok(()) } else { Err(message(&err)) }
        }

        pub fn broadcast(
            &self,
            data: *mut c_void,
            numel: i64,
            kind: i32,
            root: i32,
        ) -> Result<(), String> {
            let mut err = [0u8; ERR_LEN];
            let rc = unsafe {
                genie_c10d_broadcast(
                    self.0,
                    data,
                    numel,
                    kind,
                    root,
                    err.as_mut_ptr().cast(),
                    ERR_LEN,
                )
            };
            if rc == 0 { Ok(()) } else { Err(message(&err)) }
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            unsafe { genie_c10d_free(self.0) }
        }
    }
}

/// Gradients are summed in buckets of at most this many values (16 MiB of f32), as DDP does, so
/// that a large network does not need one buffer the size of all its gradients.
pub const BUCKET_VALUES: i64 = 4 << 20;

/// This process's membership of a data-parallel group.
pub struct ProcessGroup {
    handle: ffi::Handle,
    pub rank: usize,
    pub world: usize,
    /// This rank's place on its machine (`LOCAL_RANK`): which GPU it trains on.
    pub local_rank: usize,
    pub timeout: Duration,
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProcessGroup(rank {} of {})", self.rank, self.world)
    }
}

impl ProcessGroup {
    /// Joins the group `launch` describes: rank 0 serves the rendezvous store at
    /// `MASTER_ADDR:MASTER_PORT`. Fails after `timeout` if a rank never arrives.
    pub fn join(launch: &Launch, timeout: Duration) -> Result<ProcessGroup, DistError> {
        let fail = |what: String| DistError::Collective {
            rank: launch.rank,
            world: launch.world,
            what,
        };
        let host = CString::new(launch.master_addr.as_str())
            .map_err(|_| DistError::Launch("MASTER_ADDR holds a NUL byte".into()))?;
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let handle = ffi::Handle::new(
            &host,
            launch.master_port,
            launch.rank as i32,
            launch.world as i32,
            timeout_ms,
        )
        .map_err(|e| {
            fail(format!(
                "could not join the group at {}:{} within {:.0} s: {e}",
                launch.master_addr,
                launch.master_port,
                timeout.as_secs_f64()
            ))
        })?;
        Ok(ProcessGroup {
            handle,
            rank: launch.rank,
            world: launch.world,
            local_rank: launch.local_rank,
            timeout,
        })
    }

    /// Whether this rank writes the run folder, the log and the progress bar.
    pub fn is_first(&self) -> bool {
        self.rank == 0
    }

    fn fail(&self, doing: &str, what: String) -> DistError {
        DistError::Collective {
            rank: self.rank,
            world: self.world,
            what: format!(
                "{doing} failed (another rank died, stopped or hung for more than {:.0} s): {what}",
                self.timeout.as_secs_f64()
            ),
        }
    }

    /// Runs `op` on a contiguous CPU copy of `t` (or `t` itself where it is one) and copies the
    /// result back.
    fn on_cpu(
        &self,
        t: &Tensor,
        doing: &str,
        op: impl FnOnce(&ffi::Handle, *mut c_void, i64, i32) -> Result<(), String>,
    ) -> Result<(), DistError> {
        let kind = match t.kind() {
            Kind::Float => 0,
            Kind::Double => 1,
            Kind::Int64 => 2,
            other => {
                return Err(self.fail(doing, format!("tensors of {other:?} are not supported")));
            }
        };
        let direct = t.device() == Device::Cpu && t.is_contiguous();
        let buf = if direct {
            t.shallow_clone()
        } else {
            t.to_device(Device::Cpu).contiguous()
        };
        op(&self.handle, buf.data_ptr(), buf.numel() as i64, kind)
            .map_err(|e| self.fail(doing, e))?;
        if !direct {
            tch::no_grad(|| t.shallow_clone().copy_(&buf));
        }
        Ok(())
    }

    /// Sums `t` over the ranks, in place.
    pub fn allreduce_sum(&self, t: &Tensor) -> Result<(), DistError> {
        self.on_cpu(t, "an all-reduce", |h, data, n, kind| {
            h.allreduce_sum(data, n, kind)
        })
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<(), DistError> {
        self.allreduce_sum(&Tensor::zeros([1], (Kind::Float, Device::Cpu)))
    }

    /// Gives every rank rank 0's `t`, in place.
    pub fn broadcast_from_first(&self, t: &Tensor) -> Result<(), DistError> {
        self.on_cpu(t, "a broadcast", |h, data, n, kind| {
            h.broadcast(data, n, kind, 0)
        })
    }

    /// Gives every rank rank 0's values of `tensors` (weights, optimizer moments).
    pub fn broadcast_all(&self, tensors: &[Tensor]) -> Result<(), DistError> {
        tch::no_grad(|| {
            tensors
                .iter()
                .try_for_each(|t| self.broadcast_from_first(t))
        })
    }

    /// Replaces each gradient by its mean over the ranks, in buckets of [`BUCKET_VALUES`], and
    /// sums `extra` (f32 values that ride in the last bucket: a loss, a stop flag, code counts)
    /// over the ranks. Every rank passes its gradients in the same order, each defined.
    pub fn average_gradients(&self, grads: &[Tensor], extra: &Tensor) -> Result<(), DistError> {
        tch::no_grad(|| {
            let scale = 1.0 / self.world as f64;
            let mut start = 0;
            while start < grads.len() {
                let mut end = start;
                let mut values = 0;
                while end < grads.len()
                    && (end == start || values + grads[end].numel() as i64 <= BUCKET_VALUES)
                {
                    values += grads[end].numel() as i64;
                    end += 1;
                }
                let last = end == grads.len();
                let mut parts: Vec<Tensor> = grads[start..end]
                    .iter()
                    .map(|g| g.to_kind(Kind::Float).flatten(0, -1))
                    .collect();
                if last {
                    parts.push(extra.to_device(grads[0].device()).to_kind(Kind::Float));
                }
                let bucket = Tensor::cat(&parts, 0);
                self.allreduce_sum(&bucket)?;
                let mut offset = 0;
                for g in &grads[start..end] {
                    let n = g.numel() as i64;
                    let mean = bucket.narrow(0, offset, n).view_as(g) * scale;
                    g.shallow_clone().copy_(&mean);
                    offset += n;
                }
                if last {
                    let n = extra.numel() as i64;
                    extra
                        .shallow_clone()
                        .copy_(&bucket.narrow(0, offset, n).to_device(extra.device()));
                }
                start = end;
            }
            if grads.is_empty() {
                self.allreduce_sum(extra)?;
            }
            Ok(())
        })
    }

    /// Refuses to go on unless every rank describes its run by the same `text` (the config,
    /// stage, schedule, batch and clips): a rank started differently would train another model.
    pub fn agree(&self, what: &str, text: &str) -> Result<(), DistError> {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(text.as_bytes());
        let words: Vec<i64> = digest
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("32 bytes in chunks of 8")) >> 16)
            .collect();
        let first = Tensor::from_slice(&words);
        self.broadcast_from_first(&first)?;
        let differs = Vec::<i64>::try_from(&first).unwrap_or_default() != words;
        let mut flags = vec![0i64; self.world];
        flags[self.rank] = i64::from(differs);
        let flags = Tensor::from_slice(&flags);
        self.allreduce_sum(&flags)?;
        let flags = Vec::<i64>::try_from(&flags).unwrap_or_default();
        let odd: Vec<String> = (0..self.world)
            .filter(|&r| flags.get(r).copied().unwrap_or(0) != 0)
            .map(|r| r.to_string())
            .collect();
        if odd.is_empty() {
            Ok(())
        } else {
            Err(DistError::Collective {
                rank: self.rank,
                world: self.world,
                what: format!(
                    "rank {} started with another {what} than rank 0; every rank must run the \
                     same command",
                    odd.join(", ")
                ),
            })
        }
    }
}
