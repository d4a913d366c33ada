//! The contact sheet: real and dreamed frames of every action, side by side.

use rand::SeedableRng;
use tch::{Kind, Tensor};

use crate::game::{Action, Game, KeyState, Status};
use crate::model::{Genie, SamplerRng, frames_to_bytes, sample_next};
use crate::session::export::grid;
use crate::session::keys::KeyMap;

use super::run::to_tensor;

/// The 16 game actions of the contact sheet: run, jump a gap, turn back, stand, dash.
pub const SHEET_ACTIONS: [Action; 16] = [
    Action::Right,
    Action::Right,
    Action::Right,
    Action::Right,
    Action::RightJump,
    Action::RightJump,
    Action::Right,
    Action::Right,
    Action::Left,
    Action::Left,
    Action::Left,
    Action::Jump,
    Action::Noop,
    Action::Noop,
    Action::Dash,
    Action::Noop,
];

/// For each level: the real game's frames (start frame, then one per action) in one row and,
/// below, the dream's from the same start frame driven by the same actions through the key map
/// (the calibration, or the adapter reading each dreamed state). Rows of 64×64 frames,
/// `scale`d, separated by 2 px.
pub fn contact_sheet(
    genie: &Genie,
    levels: &[u64],
    actions: &[Action],
    scale: u32,
    seed: u64,
) -> image::RgbaImage {
    let device = genie.tokenizer_vs.device();
    let mut rows: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut rng = SamplerRng::seed_from_u64(seed);
    let keys = KeyMap::new(&genie.config);
    let keyed = keys.along(KeyState::default(), actions);
    for &level in levels {
        let mut game = Game::with_config(level, genie.config.game);
        let mut real = vec![game.frame()];
        for &a in actions {
            if game.step(a) != Status::Alive {
                game.restart();
            }
            real.push(game.frame());
        }
        let first = to_tensor(&real[0], 1, 1, device);
        let mut dream = Vec::new();
        tch::no_grad(|| {
            let mut cache = genie.dynamics.new_cache(1);
            let mut decoder = genie.tokenizer.new_decoder_cache(1);
            let mut ids = genie.tokenizer.encode(&first).select(1, 0);
            genie.dynamics.push_frame(&mut cache, &ids, None);
            let mut shown = genie.tokenizer.decode_next(&mut decoder, &ids);
            dream.push(frames_to_bytes(&shown));
            for &k in &keyed {
                let latent = keys.pick(genie.adapter.as_ref(), &ids, Some(&shown), &[k])[0];
                let latent = Tensor::full([1], latent, (Kind::Int64, device));
                ids = sample_next(
                    &genie.dynamics,
                    &mut cache,
                    &latent,
                    &genie.config.sampler,
                    &mut rng,
                );
                shown = genie.tokenizer.decode_next(&mut decoder, &ids);
                dream.push(frames_to_bytes(&shown));
            }
        });
        rows.push(real);
        rows.push(dream);
    }
    grid(&rows, scale, 0, [24, 24, 24])
}
