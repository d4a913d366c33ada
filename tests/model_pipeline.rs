//! The play loop of docs/design.md §1 through the public API, on tiny random networks: encode a u8
//! prompt, dream frames with the cached dynamics and decode them with the cached decoder. The
//! cached path must equal a full recompute over the whole history, past the window.

use genie::model::tokenizer::TokenizerConfig;
use genie::model::{
    DynamicsConfig, Genie, GenieConfig, LamConfig, SamplerConfig, SamplerRng, StConfig,
};
use genie::model::{frames_to_f32, frames_to_u8, sample_next};
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

fn tiny() -> Genie {
    let st = StConfig::new(16, 2, 2);
    let cfg = GenieConfig {
        tokenizer: TokenizerConfig {
            image_size: 16,
            patch: 4,
            codebook_size: 32,
            latent_dim: 8,
            context_frames: 5,
            encoder: st.clone(),
            decoder: st.clone(),
            ..Default::default()
        },
        lam: LamConfig {
            image_size: 16,
            patch: 8,
            latent_dim: 8,
            context_frames: 5,
            encoder: st.clone(),
            decoder: st.clone(),
            ..Default::default()
        },
        dynamics: DynamicsConfig {
            vocab_size: 32,
            tokens_per_frame: 16,
            num_actions: 8,
            context_frames: 5,
            st,
            ..Default::default()
        },
        ..Default::default()
    };
    tch::manual_seed(9);
    Genie::new(cfg, Device::Cpu).unwrap()
}

#[test]
fn dreamed_frames_decode_incrementally_as_in_one_pass() {
    let genie = tiny();
    let prompt = Tensor::randint(256, [1, 1, 16, 16, 3], (Kind::Uint8, Device::Cpu));
    let ids = genie.tokenizer.encode(&frames_to_f32(&prompt)); // [1, 1, 16]
    assert_eq!(ids.size(), [1, 1, 16]);

    let mut rng = SamplerRng::seed_from_u64(42);
    let sampler = SamplerConfig::default();
    let mut dynamics = genie.dynamics.new_cache(1);
    let mut decoder = genie.tokenizer.new_decoder_cache(1);
    let first = ids.select(1, 0);
    genie.dynamics.push_frame(&mut dynamics, &first, None);
    let mut all_ids = vec![first.shallow_clone()];
    let mut shown = vec![genie.tokenizer.decode_next(&mut decoder, &first)];
    for t in 0..17 {
        let action = Tensor::from_slice(&[t % 8]);
        let next = sample_next(&genie.dynamics, &mut dynamics, &action, &sampler, &mut rng);
        shown.push(genie.tokenizer.decode_next(&mut decoder, &next));
        all_ids.push(next);
    }
    let shown = Tensor::stack(&shown, 1); // [1, 18, 16, 16, 3]
    let full = genie.tokenizer.decode(&Tensor::stack(&all_ids, 1));
    let diff = f64::try_from((&shown - &full).abs().max()).unwrap();
    assert!(
        diff < 1e-4,
        "cached decoding differs from one pass by {diff}"
    );
    let bytes = frames_to_u8(&shown);
    assert_eq!(
        (bytes.size(), bytes.kind()),
        (vec![1, 18, 16, 16, 3], Kind::Uint8)
    );
    assert_eq!(dynamics.frames_seen(), 18);
}
