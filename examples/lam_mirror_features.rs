//! Turns on `lam.mirror_features` in a run folder without losing its trained LAM: the encoder's
//! weights are kept and the latent reads the mirrored features with zero weights at first, so
//! the LAM infers exactly what it did until training (`genie train lam --resume`) finds a use
//! for them. Rewrites `lam.safetensors` and `genie.json` in place; work on a copy.
//!
//! `cargo run --release --example lam_mirror_features -- RUN_DIR`
use anyhow::{Context, anyhow, bail};
use genie::model::checkpoint::{Genie, LAM_FILE, save_network, write_config};
use genie::model::lam::{Lam, widen_to_mirror_features};
use std::path::PathBuf;
use tch::{Device, nn::VarStore};

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: lam_mirror_features RUN_DIR")?,
    );
    let old = Genie::load(&dir, Device::Cpu)?;
    if old.config.lam.mirror_features {
        bail!("{}: lam.mirror_features is already on", dir.display());
    }
    let mut config = old.config.clone();
    config.lam.mirror_features = true;
    // Refuses a LAM that has no convolutional encoder to widen.
    config
        .lam
        .validate()
        .with_context(|| dir.join("genie.json").display().to_string())?;
    let vs = VarStore::new(Device::Cpu);
    let _lam = Lam::new(vs.root(), &config.lam);
    widen_to_mirror_features(&vs, &old.lam_vs).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    save_network(&vs, &dir.join(LAM_FILE))?;
    write_config(&dir, &config)?;
    println!(
        "{}: lam.mirror_features on, the LAM's weights kept",
        dir.display()
    );
    Ok(())
}
