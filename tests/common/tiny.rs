//! A random checkpoint of the game's 64×64 frames with the smallest networks (16 tokens a
//! frame), for end-to-end tests of the `genie` binary: fast, random but fixed.

use genie::model::tokenizer::TokenizerConfig;
use genie::model::{DynamicsConfig, Genie, GenieConfig, LamConfig, StConfig};
use tch::Device;

/// A checkpoint of 64×64 frames with the smallest networks: 16 tokens a frame.
pub fn tiny_checkpoint(dir: &std::path::Path) {
    tiny_checkpoint_with(dir, |_| {});
}

/// [`tiny_checkpoint`] with its config changed by `change` first.
#[allow(dead_code)] // not every test binary that includes this file changes the config
pub fn tiny_checkpoint_with(dir: &std::path::Path, change: impl FnOnce(&mut GenieConfig)) {
    let st = StConfig::new(16, 1, 2);
    let mut cfg = GenieConfig {
        tokenizer: TokenizerConfig {
            patch: 16,
            codebook_size: 16,
            latent_dim: 4,
            context_frames: 4,
            encoder: st.clone(),
            decoder: st.clone(),
            ..Default::default()
        },
        lam: LamConfig {
            conv_width: 4,
            conv_head: 4,
            latent_dim: 4,
            context_frames: 4,
            encoder: st.clone(),
            decoder: st.clone(),
            ..Default::default()
        },
        dynamics: DynamicsConfig {
            vocab_size: 16,
            tokens_per_frame: 16,
            num_actions: 8,
            context_frames: 4,
            st,
            ..Default::default()
        },
        ..Default::default()
    };
    change(&mut cfg);
    tch::manual_seed(11);
    Genie::new(cfg, Device::Cpu).unwrap().save(dir).unwrap();
}
