//! Re-draws a trained convolutional LAM's readout (`to_latent`, the latent batch norm and the
//! codebook) at random and keeps its convolutional encoder and decoder: a test of whether the
//! codes, formed afresh over features that already see a move (`lam_codes` says which), split
//! the actions differently. Rewrites `lam.safetensors` in place; work on a copy, then
//! `genie train lam --run RUN_DIR --resume --restart-schedule ...`.
//!
//! `cargo run --release --example lam_reset_readout -- RUN_DIR [SEED]`
use anyhow::Context;
use genie::model::checkpoint::{Genie, LAM_FILE, save_network};
use genie::model::lam::Lam;
use std::path::PathBuf;
use tch::{Device, nn::VarStore};

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: lam_reset_readout RUN_DIR [SEED]")?,
    );
    let seed: i64 = std::env::args().nth(2).map_or(Ok(1), |s| s.parse())?;
    let old = Genie::load(&dir, Device::Cpu)?;
    tch::manual_seed(seed);
    let fresh = VarStore::new(Device::Cpu);
    let _lam = Lam::new(fresh.root(), &old.config.lam);
    let fresh_vars = fresh.variables();
    let mut redrawn = Vec::new();
    tch::no_grad(|| {
        for (name, mut var) in old.lam_vs.variables() {
            let readout = name.starts_with("to_latent")
                || name.starts_with("latent_norm")
                || name.starts_with("vq");
            if readout {
                var.copy_(&fresh_vars[&name]);
                redrawn.push(name);
            }
        }
    });
    anyhow::ensure!(
        !redrawn.is_empty(),
        "{}: no readout variables found in the LAM",
        dir.display()
    );
    redrawn.sort();
    save_network(&old.lam_vs, &dir.join(LAM_FILE))?;
    println!("{}: redrew {}", dir.display(), redrawn.join(", "));
    // The optimizer's moments belong to the old readout: the next run starts them afresh.
    let moments = dir.join(genie::train::adamw::state_file("lam"));
    if moments.exists() {
        std::fs::remove_file(&moments).with_context(|| moments.display().to_string())?;
        println!("removed {}", moments.display());
    }
    Ok(())
}
