//! The egui overlay: speed, the current action and what it means, sampler settings, session
//! controls and key help. It only reads a [`OverlayState`] and returns what the player asked for.

use crate::model::SamplerConfig;

/// What the overlay shows.
#[derive(Debug, Clone, Default)]
pub struct OverlayState {
    pub fps: f64,
    pub model_ms: f64,
    pub frame_index: u64,
    /// The game action held now, by name.
    pub action: String,
    /// The latent action used for the last frame, and what calibration says it means.
    pub latent_action: Option<u8>,
    pub latent_meaning: Option<String>,
    /// How many latent actions the model learned; those past them are blends.
    pub learned_latents: usize,
    pub sampler: Option<SamplerConfig>,
    pub recording: Option<String>,
    pub step_mode: bool,
    pub paused: bool,
    pub message: Option<String>,
    pub can_record: bool,
    /// A frame per latent action dreamed from frame `preview_at`, with what calibration says
    /// the latent means.
    pub preview: Vec<(egui::TextureId, Option<String>)>,
    pub preview_at: u64,
}

/// What the user asked for through the overlay this frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverlayRequests {
    pub reset: bool,
    pub rewind: bool,
    pub toggle_record: bool,
    pub toggle_step_mode: bool,
    pub sampler: Option<SamplerConfig>,
    pub preview: bool,
    /// Bind a game action to a latent: (latent, action).
    pub bind: Option<(u8, crate::game::Action)>,
}

pub const KEY_HELP: &[(&str, &str)] = &[
    ("←/→ or A/D", "run"),
    ("Space / ↑ / W", "jump"),
    ("↓ / S", "down"),
    ("Shift / X", "dash"),
    ("1–8", "raw latent action"),
    ("L", "show what each latent action does from here"),
    ("Tab", "hide or show this overlay"),
    ("R", "reset to the prompt"),
    ("Backspace", "rewind one frame"),
    ("P", "step-per-key-press mode on/off"),
    ("F5", "record on/off"),
    ("Esc", "quit"),
];

pub fn show(ctx: &egui::Context, state: &OverlayState) -> OverlayRequests {
    let mut req = OverlayRequests::default();
    egui::Window::new("genie")
        .default_pos([8.0, 8.0])
        .resizable(false)
        .collapsible(true)
        .show(ctx, |ui| {
            ui.label(format!(
                "{:.1} frames/s · model {:.1} ms/frame",
                state.fps, state.model_ms
            ));
            ui.label(format!("frame {}", state.frame_index));
            ui.label(format!("action: {}", state.action));
            match state.latent_action {
                Some(a) => ui.label(format!(
                    "latent action: {} ({})",
                    latent_name(usize::from(a), state.learned_latents),
                    state.latent_meaning.as_deref().unwrap_or("uncalibrated")
                )),
                None => ui.label("latent action: –"),
            };
            if let Some(mut s) = state.sampler {
                ui.separator();
                let steps = ui.add(egui::Slider::new(&mut s.steps, 1..=25).text("MaskGIT steps"));
                let temp =
                    ui.add(egui::Slider::new(&mut s.temperature, 0.0..=2.0).text("temperature"));
                if steps.changed() || temp.changed() {
                    req.sampler = Some(s);
                }
                ui.label(format!(
                    "confidence noise {}, camera temperature {}",
                    s.confidence_noise, s.camera_temperature
                ));
            }
            ui.separator();
            ui.horizontal(|ui| {
                req.reset = ui.button("Reset").clicked();
                req.rewind = ui.button("Rewind").clicked();
                let mode = if state.step_mode {
                    "Real time"
                } else {
                    "Step per key"
                };
                req.toggle_step_mode = ui.button(mode).clicked();
                if state.can_record {
                    let label = if state.recording.is_some() {
                        "Stop recording"
                    } else {
                        "Record"
                    };
                    req.toggle_record = ui.button(label).clicked();
                }
            });
            req.preview = ui.button("What each latent does (L)").clicked();
            if let Some(dir) = &state.recording {
                ui.colored_label(egui::Color32::LIGHT_RED, format!("● recording to {dir}"));
            }
            if let Some(msg) = &state.message {
                ui.colored_label(egui::Color32::YELLOW, msg);
            }
            ui.collapsing("keys", |ui| {
                egui::Grid::new("keys").show(ui, |ui| {
                    for (k, v) in KEY_HELP {
                        ui.label(*k);
                        ui.label(*v);
                        ui.end_row();
                    }
                });
            });
        });
    if !state.preview.is_empty() {
        egui::Window::new("latent actions")
            .default_pos([8.0, 420.0])
            .resizable(false)
            .collapsible(true)
            .show(ctx, |ui| {
                ui.label(format!(
                    "one dreamed frame of each, from frame {} (L again from the current one); \
                     bind one to a key and it is saved beside the checkpoint (keys.json)",
                    state.preview_at
                ));
                egui::Grid::new("latent previews").show(ui, |ui| {
                    for (i, (texture, _)) in state.preview.iter().enumerate() {
                        let size = egui::vec2(96.0, 96.0);
                        ui.vertical(|ui| {
                            ui.image(egui::load::SizedTexture::new(*texture, size));
                            ui.label(latent_name(i, state.learned_latents));
                            egui::ComboBox::from_id_salt(("bind", i))
                                .selected_text("bind to…")
                                .width(88.0)
                                .show_ui(ui, |ui| {
                                    for action in crate::game::Action::ALL {
                                        if ui.selectable_label(false, action.name()).clicked() {
                                            req.bind = Some((i as u8, action));
                                        }
                                    }
                                });
                        });
                        if i % 4 == 3 {
                            ui.end_row();
                        }
                    }
                });
                for (i, (_, meaning)) in state.preview.iter().enumerate() {
                    if let Some(m) = meaning {
                        ui.label(format!("{}: {m}", latent_name(i, state.learned_latents)));
                    }
                }
            });
    }
    req
}

/// A latent by its id, as genie.json and the docs number it, and how the player reaches it:
/// keys 1–8 step the first learned latents (in the latent explorer); the blends past the
/// `learned` ones (`dynamics.blends`) are the key map's to drive.
fn latent_name(latent: usize, learned: usize) -> String {
    if latent >= learned {
        format!("latent {latent} · blend")
    } else if latent < 8 {
        format!("latent {latent} · key {}", latent + 1)
    } else {
        format!("latent {latent}")
    }
}
