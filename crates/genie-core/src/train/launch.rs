//! Where a data-parallel rank stands, as its launcher says (torchrun's variables), and
//! `genie train --nproc-per-node N`, the launcher for one machine.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::dist::DistError;

/// Where this process stands in a data-parallel run, as a launcher's environment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
}

impl Launch {
    /// The launch torchrun (or any launcher setting its variables) describes; `None` where
    /// `WORLD_SIZE` is unset or 1 (one process trains alone, as without a launcher).
    pub fn from_env() -> Result<Option<Launch>, DistError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>, DistError> {
        let Some(world) = var("WORLD_SIZE") else {
            return Ok(None);
        };
        let number = |name: &str, text: &str| -> Result<usize, DistError> {
            text.trim()
                .parse()
                .map_err(|_| DistError::Launch(format!("{name}={text:?}: expected a whole number")))
        };
        let world = number("WORLD_SIZE", &world)?;
        if world <= 1 {
            return Ok(None);
        }
        let needed = |name: &str| {
            var(name).ok_or_else(|| {
                DistError::Launch(format!(
                    "WORLD_SIZE={world} but {name} is not set (launch with torchrun, or set RANK, \
                     MASTER_ADDR and MASTER_PORT)"
                ))
            })
        };
        let rank = number("RANK", &needed("RANK")?)?;
        if rank >= world {
            return Err(DistError::Launch(format!(
                "RANK={rank} is not below WORLD_SIZE={world}"
            )));
        }
        let local_rank = match var("LOCAL_RANK") {
            Some(text) => number("LOCAL_RANK", &text)?,
            None => rank,
        };
        let master_addr = needed("MASTER_ADDR")?;
        let port = needed("MASTER_PORT")?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| DistError::Launch(format!("MASTER_PORT={port:?}: expected a port")))?;
        Ok(Some(Launch {
            rank,
            world,
            local_rank,
            master_addr,
            master_port,
        }))
    }
}

/// `genie train --nproc-per-node N`: starts N copies of this command on this machine as ranks
/// 0..N of one group (torchrun's variables, a free port on 127.0.0.1) and waits for them. Where a
/// rank fails, the others are stopped and the first failure is the error.
pub fn launch_local(nproc: usize, args: &[String]) -> Result<(), DistError> {
    let exe: PathBuf = std::env::current_exe()
        .map_err(|e| DistError::Launch(format!("finding genie's own executable: {e}")))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| DistError::Launch(format!("finding a free port: {e}")))?
        .port();
    let mut children: Vec<(usize, Child)> = Vec::with_capacity(nproc);
    for rank in 0..nproc {
        let child = Command::new(&exe)
            .args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .spawn()
            .map_err(|e| DistError::Launch(format!("starting rank {rank}: {e}")))?;
        children.push((rank, child));
    }
    let mut failure: Option<(usize, ExitStatus)> = None;
    let mut failed_at: Option<Instant> = None;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait() {
                Ok(Some(status)) => {
                    let (rank, _) = children.remove(i);
                    if !status.success() && failure.is_none() {
                        failure = Some((rank, status));
                        failed_at = Some(Instant::now());
                    }
                }
                // Running, or not to be asked now: looked at again next round.
                Ok(None) | Err(_) => i += 1,
            }
        }
        // The others notice a failed rank at their next collective; give them a moment to say
        // so, then stop whoever is left.
        if failed_at.is_some_and(|t| t.elapsed() > Duration::from_secs(30)) {
            for (_, child) in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            children.clear();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match failure {
        None => Ok(()),
        Some((rank, status)) => Err(DistError::Launch(format!(
            "rank {rank} of {nproc} ended with {status}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn a_launch_is_read_from_torchruns_variables_and_bad_ones_are_refused() {
        assert_eq!(Launch::from_vars(vars(&[])).unwrap(), None);
        assert_eq!(
            Launch::from_vars(vars(&[("WORLD_SIZE", "1")])).unwrap(),
            None
        );
        let launch = Launch::from_vars(vars(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            launch,
            Launch {
                rank: 3,
                world: 4,
                local_rank: 1,
                master_addr: "node0".into(),
                master_port: 29500
            }
        );
        for (bad, says) in [
            (vec![("WORLD_SIZE", "two")], "WORLD_SIZE"),
            (vec![("WORLD_SIZE", "2")], "RANK is not set"),
            (
                vec![
                    ("WORLD_SIZE", "2"),
                    ("RANK", "2"),
                    ("MASTER_ADDR", "a"),
                    ("MASTER_PORT", "1"),
                ],
                "not below",
            ),
            (
                vec![("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "a")],
                "MASTER_PORT is not set",
            ),
            (
                vec![
                    ("WORLD_SIZE", "2"),
                    ("RANK", "0"),
                    ("MASTER_ADDR", "a"),
                    ("MASTER_PORT", "0"),
                ],
                "expected a port",
            ),
        ] {
            let err = Launch::from_vars(vars(&bad)).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }
}
