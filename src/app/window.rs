//! The live player: a winit window, the frame blitted by wgpu, the egui overlay on top, keyboard
//! and gamepad input. A thin event loop (`App` holding `Option<Gfx>`) that only dispatches to the
//! session being played ([`PlaySession`]: engines, pacing, recording); the world runs on the
//! engine's worker thread and the render loop never waits on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use winit::application::ApplicationHandler;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::keyboard::{KeyCode, PhysicalKey};
use winit::window::{Window, WindowId};

use super::blit::{Blit, Rect, clear_pass, draw_columns};
use super::input::{Bindings, Held, Input, PadEvent};
use super::overlay::{self, OverlayState};
use crate::game::Action;
use crate::session::World;
use crate::session::play::{PlaySession, PlaySettings};
use crate::session::prompt::FRAME_SIDE;

#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    #[error(
        "no display: `genie play` needs a window (is DISPLAY or WAYLAND_DISPLAY set?); use `genie dream` to play headless"
    )]
    NoDisplay,
    #[error("window: {0}")]
    Window(String),
    #[error("GPU: {0}")]
    Gpu(String),
}

/// How the player runs.
pub struct PlayerConfig {
    pub bindings: Bindings,
    /// The session: its prompt, pacing, recording, sampler and latent meanings.
    pub session: PlaySettings,
    /// For tests: hold this game action from the start (as if its keys were held).
    pub scripted_action: Option<Action>,
    /// When the program started, for the "first frame on screen" time (see
    /// [`process_start`]).
    pub launched: Instant,
}

/// When this process started: now minus its age from /proc on Linux (so the time the dynamic
/// loader spends on libtorch counts), now elsewhere.
pub fn process_start() -> Instant {
    let now = Instant::now();
    process_age()
        .and_then(|age| now.checked_sub(age))
        .unwrap_or(now)
}

fn process_age() -> Option<Duration> {
    // Field 22 of /proc/self/stat is the start time in clock ticks after boot (Linux: 100 a
    // second); the command name before it is in parentheses and may hold spaces.
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let ticks: f64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64((uptime - ticks / 100.0).max(0.0)))
}

/// Fails fast, before any model is loaded, where no window can be opened.
pub fn check_display() -> Result<(), PlayerError> {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(PlayerError::NoDisplay);
    }
    Ok(())
}

/// Opens the window and plays until it is closed.
pub fn run(
    config: PlayerConfig,
    dream: Box<dyn World>,
    real: Option<Box<dyn World>>,
) -> Result<(), PlayerError> {
    check_display()?;
    let event_loop = EventLoop::new().map_err(|_| PlayerError::NoDisplay)?;
    event_loop.set_control_flow(ControlFlow::Poll);
    let gamepads = match gilrs::Gilrs::new() {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::debug!("no gamepad support here: {e}");
            None
        }
    };
    let PlayerConfig {
        bindings,
        session,
        scripted_action,
        launched,
    } = config;
    let mut app = App {
        session: PlaySession::new(session, dream, real),
        bindings,
        scripted_action,
        launched,
        gfx: None,
        error: None,
        held: Held::default(),
        gamepads,
        overlay_visible: true,
        preview: Vec::new(),
        preview_at: 0,
        first_frame_shown: false,
    };
    event_loop
        .run_app(&mut app)
        .map_err(|e| PlayerError::Window(e.to_string()))?;
    match app.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Everything that needs the window.
struct Gfx {
    window: Arc<Window>,
    surface: wgpu::Surface<'static>,
    device: wgpu::Device,
    queue: wgpu::Queue,
    surface_config: wgpu::SurfaceConfiguration,
    blits: Vec<Blit>,
    egui_state: egui_winit::State,
    egui_renderer: egui_wgpu::Renderer,
}

impl Gfx {
    fn new(event_loop: &ActiveEventLoop, columns: usize) -> Result<Self, PlayerError> {
        let attrs = Window::default_attributes()
            .with_title("genie")
            .with_inner_size(winit::dpi::LogicalSize::new(640.0 * columns as f64, 640.0));
        let window = Arc::new(
            event_loop
                .create_window(attrs)
                .map_err(|e| PlayerError::Window(e.to_string()))?,
        );
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_with_display_handle_from_env(
                Box::new(event_loop.owned_display_handle()),
            ));
        let surface = instance
            .create_surface(window.clone())
            .map_err(|e| PlayerError::Gpu(e.to_string()))?;
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            compatible_surface: Some(&surface),
            ..Default::default()
        }))
        .map_err(|e| PlayerError::Gpu(e.to_string()))?;
        tracing::info!("GPU adapter: {}", adapter.get_info().name);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("genie"),
            required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits()),
            ..Default::default()
        }))
        .map_err(|e| PlayerError::Gpu(e.to_string()))?;
        let size = window.inner_size();
        let surface_config = surface
            .get_default_config(&adapter, size.width.max(1), size.height.max(1))
            .ok_or_else(|| {
                PlayerError::Gpu("the window surface is not supported by the adapter".into())
            })?;
        surface.configure(&device, &surface_config);
        let format = surface_config.format;
        let blits = (0..columns)
            .map(|_| Blit::new(&device, format, FRAME_SIDE, FRAME_SIDE))
            .collect();
        let egui_ctx = egui::Context::default();
        let egui_state = egui_winit::State::new(
            egui_ctx,
            egui::ViewportId::ROOT,
            &window,
            Some(window.scale_factor() as f32),
            None,
            Some(device.limits().max_texture_dimension_2d as usize),
        );
        let egui_renderer =
            egui_wgpu::Renderer::new(&device, format, egui_wgpu::RendererOptions::default());
        Ok(Self {
            window,
            surface,
            device,
            queue,
            surface_config,
            blits,
            egui_state,
            egui_renderer,
        })
    }

    fn resize(&mut self, width: u32, height: u32) {
        if width > 0 && height > 0 {
            self.surface_config.width = width;
            self.surface_config.height = height;
            self.surface.configure(&self.device, &self.surface_config);
        }
    }
}

/// The session and what the window adds to it: drawing, input, the overlay.
struct App {
    session: PlaySession,
    bindings: Bindings,
    scripted_action: Option<Action>,
    launched: Instant,
    gfx: Option<Gfx>,
    error: Option<PlayerError>,
    held: Held,
    gamepads: Option<gilrs::Gilrs>,
    overlay_visible: bool,
    /// Whether the first model frame reached the screen (its time is logged once).
    first_frame_shown: bool,
    /// The latent preview's frames as textures, and the frame they start from.
    preview: Vec<egui::TextureHandle>,
    preview_at: u64,
}

impl App {
    fn action(&self) -> Action {
        self.scripted_action
            .unwrap_or_else(|| self.held.action(&self.bindings))
    }

    fn poll_gamepads(&mut self) {
        let Some(gilrs) = self.gamepads.as_mut() else {
            return;
        };
        while let Some(ev) = gilrs.next_event() {
            let event = match ev.event {
                gilrs::EventType::ButtonPressed(b, _) => PadEvent::Pressed(format!("{b:?}")),
                gilrs::EventType::ButtonReleased(b, _) => PadEvent::Released(format!("{b:?}")),
                gilrs::EventType::AxisChanged(
                    gilrs::Axis::LeftStickX | gilrs::Axis::LeftStickY,
                    _,
                    _,
                ) => {
                    let pad = gilrs.gamepad(ev.id);
                    PadEvent::Stick {
                        x: pad.value(gilrs::Axis::LeftStickX),
                        y: pad.value(gilrs::Axis::LeftStickY),
                    }
                }
                gilrs::EventType::Disconnected => PadEvent::Disconnected,
                gilrs::EventType::Connected => {
                    self.session.message = Some(format!(
                        "gamepad connected: {}",
                        gilrs.gamepad(ev.id).name()
                    ));
                    continue;
                }
                _ => continue,
            };
            if self.held.apply_pad(event) {
                self.session.press();
            }
        }
    }

    fn on_key(&mut self, event_loop: &ActiveEventLoop, code: KeyCode, pressed: bool, repeat: bool) {
        let input = Input::Key(format!("{code:?}"));
        if !pressed {
            self.held.release(&input);
            return;
        }
        if repeat {
            return;
        }
        let digit = [
            KeyCode::Digit1,
            KeyCode::Digit2,
            KeyCode::Digit3,
            KeyCode::Digit4,
            KeyCode::Digit5,
            KeyCode::Digit6,
            KeyCode::Digit7,
            KeyCode::Digit8,
        ]
        .iter()
        .position(|&k| k == code);
        match code {
            KeyCode::Escape => event_loop.exit(),
            KeyCode::Tab => self.overlay_visible = !self.overlay_visible,
            KeyCode::KeyR => self.session.restart(),
            KeyCode::Backspace => self.session.rewind(),
            KeyCode::KeyP => self.session.step_mode = !self.session.step_mode,
            KeyCode::KeyL => self.session.preview(),
            KeyCode::F5 => self.session.toggle_recording(),
            _ if digit.is_some() => self.session.step_latent(digit.unwrap_or_default() as u8),
            _ => {
                if self.bindings.button(&input).is_some() {
                    self.session.press();
                }
                self.held.press(input);
            }
        }
    }

    fn render(&mut self) {
        let action = self.action();
        let Some(gfx) = self.gfx.as_mut() else { return };
        for (blit, frame) in gfx.blits.iter_mut().zip(self.session.frames()) {
            if let Some(frame) = frame {
                blit.upload(&gfx.queue, frame);
            }
        }
        let texture = match gfx.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t)
            | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                gfx.surface.configure(&gfx.device, &gfx.surface_config);
                return;
            }
            _ => return,
        };
        let view = texture
            .texture
            .create_view(&wgpu::TextureViewDescriptor::default());

        let raw_input = gfx.egui_state.take_egui_input(&gfx.window);
        if let Some((frames, at)) = self.session.take_preview() {
            self.preview_at = at;
            let ctx = gfx.egui_state.egui_ctx();
            let side = (frames.first().map_or(0, Vec::len) / 3).isqrt();
            self.preview = frames
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let image = egui::ColorImage::from_rgb([side, side], f);
                    ctx.load_texture(format!("latent {i}"), image, egui::TextureOptions::NEAREST)
                })
                .collect();
        }
        let session = &self.session;
        let meanings = &session.settings.latent_meanings;
        let state = OverlayState {
            fps: session.fps(),
            model_ms: session.model_ms,
            frame_index: session.shown,
            action: action.name().into(),
            latent_action: session.latent,
            latent_meaning: session
                .latent
                .and_then(|a| meanings.get(a as usize).cloned().flatten()),
            learned_latents: session.settings.learned_latents,
            sampler: session.sampler,
            recording: session.recording().map(|dir| dir.display().to_string()),
            step_mode: session.step_mode,
            paused: false,
            message: session.message.clone(),
            can_record: true,
            preview: self
                .preview
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id(), meanings.get(i).cloned().flatten()))
                .collect(),
            preview_at: self.preview_at,
        };
        let visible = self.overlay_visible;
        let mut requests = overlay::OverlayRequests::default();
        let ctx = gfx.egui_state.egui_ctx().clone();
        let output = ctx.run_pass(raw_input, |ctx| {
            if visible {
                requests = overlay::show(ctx, &state);
            }
        });
        gfx.egui_state
            .handle_platform_output(&gfx.window, output.platform_output);
        let jobs = ctx.tessellate(output.shapes, output.pixels_per_point);
        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [gfx.surface_config.width, gfx.surface_config.height],
            pixels_per_point: output.pixels_per_point,
        };
        for (id, deltas) in &output.textures_delta.set {
            for delta in deltas {
                gfx.egui_renderer
                    .update_texture(&gfx.device, &gfx.queue, *id, delta);
            }
        }
        let mut encoder = gfx.device.create_command_encoder(&Default::default());
        gfx.egui_renderer
            .update_buffers(&gfx.device, &gfx.queue, &mut encoder, &jobs, &screen);
        {
            // egui's renderer wants a pass that does not borrow the encoder.
            let mut pass = clear_pass(&mut encoder, &view, "frame").forget_lifetime();
            let area = Rect {
                x: 0,
                y: 0,
                width: gfx.surface_config.width,
                height: gfx.surface_config.height,
            };
            draw_columns(&mut pass, &gfx.blits, area);
            pass.set_viewport(0.0, 0.0, area.width as f32, area.height as f32, 0.0, 1.0);
            gfx.egui_renderer.render(&mut pass, &jobs, &screen);
        }
        for id in &output.textures_delta.free {
            gfx.egui_renderer.free_texture(id);
        }
        let mut deltas = output.textures_delta;
        deltas.clear(); // applied above
        gfx.queue.submit([encoder.finish()]);
        gfx.window.pre_present_notify();
        gfx.queue.present(texture);
        if !self.first_frame_shown && self.session.frames().first().is_some_and(Option::is_some) {
            self.first_frame_shown = true;
            let ms = self.launched.elapsed().as_secs_f64() * 1e3;
            tracing::info!("first frame on screen {ms:.0} ms after launch");
            if self.session.settings.announce_after.is_some() {
                println!("genie: first frame on screen {ms:.0} ms after launch");
            }
        }

        if requests.reset {
            self.session.restart();
        }
        if requests.rewind {
            self.session.rewind();
        }
        if requests.toggle_step_mode {
            self.session.step_mode = !self.session.step_mode;
        }
        if requests.toggle_record {
            self.session.toggle_recording();
        }
        if requests.preview {
            self.session.preview();
        }
        if let Some((latent, action)) = requests.bind {
            self.session.bind(latent, action);
        }
        if let Some(s) = requests.sampler {
            self.session.set_sampler(s);
        }
    }
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gfx.is_some() {
            return;
        }
        match Gfx::new(event_loop, self.session.worlds()) {
            Ok(gfx) => self.gfx = Some(gfx),
            Err(e) => {
                self.error = Some(e);
                event_loop.exit();
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        let Some(gfx) = self.gfx.as_mut() else { return };
        // egui gets first refusal.
        let consumed =
            self.overlay_visible && gfx.egui_state.on_window_event(&gfx.window, &event).consumed;
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::Resized(size) => gfx.resize(size.width, size.height),
            WindowEvent::Focused(false) => self.held.release_all_keys(),
            WindowEvent::DroppedFile(path) => self.session.open_prompt(&path),
            WindowEvent::KeyboardInput { event, .. } if !consumed => {
                if let PhysicalKey::Code(code) = event.physical_key {
                    self.on_key(
                        event_loop,
                        code,
                        event.state == ElementState::Pressed,
                        event.repeat,
                    );
                }
            }
            WindowEvent::RedrawRequested => {
                self.poll_gamepads();
                self.session.receive();
                let action = self.action();
                self.session.pace(action);
                self.render();
            }
            _ => {}
        }
    }

    fn about_to_wait(&mut self, _: &ActiveEventLoop) {
        if let Some(gfx) = &self.gfx {
            gfx.window.request_redraw();
        }
    }

    fn exiting(&mut self, _: &ActiveEventLoop) {
        self.session.finish_recording();
    }
}
