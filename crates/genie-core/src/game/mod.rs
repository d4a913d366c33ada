//! The procedural 2D platformer the world model learns from: levels from a seed, fixed-point
//! physics, eight actions, 64×64 RGB rendering and scripted players' ground truth.
//!
//! A [`Game`] is one level ([`level`]) plus the mutable state of one life: the player, the
//! enemies, the coins taken and the camera. [`Game::step`] advances one tick (one frame) under
//! one [`Action`]; [`Game::render`] draws the state. Everything is deterministic: the same
//! level seed and the same actions give the same frames, byte for byte.
//!
//! # Actions
//! | action | effect |
//! |---|---|
//! | `noop` | nothing; the player stops at once |
//! | `left` / `right` | run at 1.6 px/tick from the first tick |
//! | `jump` | jump straight up from the ground (apex about 29 px, 3.6 tiles) |
//! | `left_jump` / `right_jump` | run and jump |
//! | `down` | crouch on the ground (the sprite is 4 px tall instead of 7); drop through a floating platform; fall twice as fast in the air |
//! | `dash` | a burst of 3.5 px/tick for 8 ticks in the facing direction, level in the air, with a white streak behind; 30-tick cooldown |
//!
//! With [`Controls::Responsive`] (chosen by [`GameConfig`]) every key also shows where it did
//! nothing before: `jump` released while rising cuts the rise to 1 px/tick (a short hop; held,
//! the full 29 px) and held while falling glides at 1 px/tick; `down` crouches in the air too;
//! `dash` goes on only while held (any other key ends it) and, cooling down, runs the way the
//! player faces.
//!
//! Touching an enemy ends the life unless the player falls onto it from above, which stomps
//! it (and bounces); falling out of the bottom of the screen ends the life; touching the goal
//! flag wins the level.
//!
//! # Camera
//! Two cameras ([`Camera`], chosen by [`GameConfig`]; a checkpoint's genie.json names the one it
//! was trained on). Neither scrolls smoothly: a smooth camera (tried first: a dead zone with
//! catch-up) shifted the whole frame by a pixel or two on most steps, an amount set by the
//! player's earlier speed, not by the key just pressed; that dwarfed the player's own motion and
//! the latent action model learned to describe the scroll instead of the action.
//!
//! - [`Camera::Step`] (new runs): when the player's centre passes screen column 40 the camera
//!   moves [`CAMERA_STEP`] = 8 px that way in one tick (column 24 going left). That is one
//!   tokenizer patch, so a scroll is the token columns shifted by one plus one new column;
//!   it happens every 5 ticks while the player runs and only when the key just held moves it
//!   on, so the model can learn it as part of what `right` does.
//! - [`Camera::Flip`] (checkpoints before 2026-12-03): still while the player's centre is within
//!   columns 8..=56, then a jump of [`CAMERA_FLIP`] px in one tick. Rare and large: the models
//!   trained on it never learned it, and the dreamed player walked off the screen.
//!
//! Between camera moves the only things that move are the player and the enemies (a jump
//! always moves the player up: the level is exactly one screen tall).

pub mod level;
pub mod look;
pub mod physics;
mod render;
pub mod rng;
pub mod theme;

use std::sync::Arc;

use level::Level;
pub use look::Looks;
use physics::{ENEMY_H, ENEMY_W, Enemy, Intent, PLAYER_H, PLAYER_W, Player, SUB, overlap};
use theme::TILE;

/// Side of a frame in pixels.
pub const FRAME_SIZE: usize = 64;
/// Bytes of one RGB frame.
pub const FRAME_BYTES: usize = FRAME_SIZE * FRAME_SIZE * 3;
/// The player's body colour; no theme uses it, so it marks the player in a frame.
pub const PLAYER_COLOR: [u8; 3] = [255, 0, 255];
/// Difficulty of [`Game::new`].
pub const DEFAULT_DIFFICULTY: f32 = 0.5;

/// Screen columns the player's centre may cross before the [`Camera::Flip`] camera flips.
pub const FLIP_ZONE: (i32, i32) = (8, 56);
/// How far, in pixels, the [`Camera::Flip`] camera jumps when it flips.
pub const CAMERA_FLIP: i32 = 40;
/// Screen columns the player's centre may cross before the [`Camera::Step`] camera steps.
pub const STEP_ZONE: (i32, i32) = (24, 40);
/// How far, in pixels, the [`Camera::Step`] camera moves in a tick: one tokenizer patch.
pub const CAMERA_STEP: i32 = 8;

/// How the view follows the player (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Camera {
    /// One patch (8 px) at a time, kept on whole patches.
    #[default]
    Step,
    /// 40 px jumps when the player nears an edge.
    Flip,
}

/// What the keys do beyond the table of the module docs (see [`physics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Controls {
    /// The game of the shipped checkpoint: `jump` does nothing in the air, `down` in the air
    /// only falls faster (less than a pixel more a tick at first), and `dash` does nothing
    /// during its cooldown or a dash already under way; in those states the key's next frame is
    /// `noop`'s.
    #[default]
    Classic,
    /// Every key changes the next frame in (nearly) every state: `jump` released while rising
    /// cuts the rise short and held while falling glides, `down` crouches in the air too, and
    /// `dash` goes on only while held and, cooling down, runs the way the player faces.
    Responsive,
}

/// A controls name that is not `classic` or `responsive`.
#[derive(Debug, thiserror::Error)]
#[error("unknown controls {0:?}: expected classic or responsive")]
pub struct ParseControlsError(String);

impl std::str::FromStr for Controls {
    type Err = ParseControlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "classic" => Ok(Controls::Classic),
            "responsive" => Ok(Controls::Responsive),
            _ => Err(ParseControlsError(s.to_string())),
        }
    }
}

/// What varies between versions of the game a world model can be trained on. Recorded in a
/// checkpoint's genie.json (`game`), so evaluation, calibration and the real game in the player
/// run the game the checkpoint learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GameConfig {
    pub camera: Camera,
    /// How levels are drawn (`look`).
    pub looks: Looks,
    /// What the keys do in the air and while a dash cools down; `classic` where genie.json does
    /// not say.
    pub controls: Controls,
}

/// A camera name that is not `step` or `flip`.
#[derive(Debug, thiserror::Error)]
#[error("unknown camera {0:?}: expected step or flip")]
pub struct ParseCameraError(String);

impl std::str::FromStr for Camera {
    type Err = ParseCameraError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "step" => Ok(Camera::Step),
            "flip" => Ok(Camera::Flip),
            _ => Err(ParseCameraError(s.to_string())),
        }
    }
}

impl GameConfig {
    /// The game of checkpoints whose genie.json has no `game` section (before 2026-12-03).
    pub fn original() -> Self {
        GameConfig {
            camera: Camera::Flip,
            looks: Looks::Themes,
            controls: Controls::Classic,
        }
    }
}

/// The eight actions, numbered 0..8 as stored in datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Action {
    Noop = 0,
    Left,
    Right,
    Jump,
    LeftJump,
    RightJump,
    Down,
    Dash,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Noop,
        Action::Left,
        Action::Right,
        Action::Jump,
        Action::LeftJump,
        Action::RightJump,
        Action::Down,
        Action::Dash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Noop => "noop",
            Action::Left => "left",
            Action::Right => "right",
            Action::Jump => "jump",
            Action::LeftJump => "left_jump",
            Action::RightJump => "right_jump",
            Action::Down => "down",
            Action::Dash => "dash",
        }
    }

    pub fn from_u8(v: u8) -> Option<Action> {
        Action::ALL.get(v as usize).copied()
    }

    /// The way the action runs (−1 left, 1 right, 0 neither) and whether it jumps.
    pub fn dir_and_jump(self) -> (i32, bool) {
        match self {
            Action::Left => (-1, false),
            Action::Right => (1, false),
            Action::Jump => (0, true),
            Action::LeftJump => (-1, true),
            Action::RightJump => (1, true),
            _ => (0, false),
        }
    }

    fn intent(self) -> Intent {
        let (dir, jump) = self.dir_and_jump();
        Intent {
            dir,
            jump,
            down: self == Action::Down,
            dash: self == Action::Dash,
        }
    }
}

/// An action name that is not one of the eight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown action {0:?}: expected one of noop, left, right, jump, left_jump, right_jump, down, dash"
)]
pub struct ParseActionError(pub String);

impl std::str::FromStr for Action {
    type Err = ParseActionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['+', '-', ' '], "_");
        Action::ALL
            .into_iter()
            .find(|a| a.name() == norm)
            .ok_or_else(|| ParseActionError(s.to_string()))
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way the player faces, as far as the keys say: the way of the last key that walked
/// (left, right and their jumps), as the game turns its player (not during a dash:
/// [`KeyState`]); a level starts facing right. The runtime knows it from the keys alone, so
/// play, replay and every measure agree on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Facing {
    #[default]
    Right = 0,
    Left = 1,
}

impl Facing {
    pub const ALL: [Facing; 2] = [Facing::Right, Facing::Left];

    pub fn name(self) -> &'static str {
        match self {
            Facing::Right => "right",
            Facing::Left => "left",
        }
    }

    /// The way the player faces while `action` acts: the action's own way where it walks,
    /// else the way it faced.
    pub fn with(self, action: Action) -> Self {
        match action {
            Action::Left | Action::LeftJump => Facing::Left,
            Action::Right | Action::RightJump => Facing::Right,
            _ => self,
        }
    }
}

/// What the keys alone say of the player's controls, as the runtime knows them in play: the way
/// it faces and where a dash stands ([`physics`]). A dash, once started, runs `DASH_TICKS` ticks
/// whatever key is pressed (in the responsive game only while its key is held) and cools down
/// `DASH_COOLDOWN` ticks from its start; cooling down, the dash key stands still (classic) or
/// walks the way the player faces (responsive). None of it depends on the level, so the action
/// the player carries out follows from the keys before: [`KeyState::act`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyState {
    /// The way the player faces.
    pub facing: Facing,
    dash_ticks: u8,
    dash_cooldown: u8,
    /// The action carried out last tick (`None` before the first).
    pub last: Option<Action>,
    /// How long that action had been held on the last tick: ticks since its press, 0 on the
    /// tick it was pressed (counted by `session::KeyMap::key`, which tells presses).
    pub held: u32,
}

impl KeyState {
    /// A player facing `facing`, no dash under way or cooling down, no key before.
    pub fn new(facing: Facing) -> Self {
        Self {
            facing,
            ..Self::default()
        }
    }

    /// Whether a dash is under way (its next tick is still a dash's, whatever the key).
    pub fn dashing(&self) -> bool {
        self.dash_ticks > 0
    }

    /// One tick under the key `action`: the action the player carries out (`Dash` for every
    /// tick of a dash under way, whatever the key; the dash key while it cools down acts as
    /// `Noop` in the classic game and as a walk the way the player faces in the responsive one;
    /// any other key as itself). `facing` and `last` are then the tick's.
    pub fn act(&mut self, action: Action, controls: Controls) -> Action {
        let done = self.carry_out(action, controls);
        self.last = Some(done);
        done
    }

    fn carry_out(&mut self, action: Action, controls: Controls) -> Action {
        let responsive = controls == Controls::Responsive;
        let dash = action == Action::Dash;
        self.dash_cooldown = self.dash_cooldown.saturating_sub(1);
        if responsive && !dash && self.dash_ticks > 0 {
            self.dash_ticks = 0;
        }
        if dash && self.dash_cooldown == 0 && self.dash_ticks == 0 {
            self.dash_ticks = physics::DASH_TICKS;
            self.dash_cooldown = physics::DASH_COOLDOWN;
        }
        if self.dash_ticks > 0 {
            self.dash_ticks -= 1;
            return Action::Dash;
        }
        let before = self.facing;
        self.facing = before.with(action);
        match (dash, responsive, before) {
            (false, _, _) => action,
            (true, false, _) => Action::Noop,
            (true, true, Facing::Right) => Action::Right,
            (true, true, Facing::Left) => Action::Left,
        }
    }

    /// One tick under the key `action` carried out as itself, whatever the keys before (a game
    /// whose rules are not these): only the facing follows.
    pub fn pass(&mut self, action: Action) -> Action {
        self.facing = self.facing.with(action);
        self.last = Some(action);
        action
    }
}

impl std::str::FromStr for Facing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Facing::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("{s:?} is not a way to face (left or right)"))
    }
}

/// Decoded colours are near, not equal, to the game's: the L1 distance from [`PLAYER_COLOR`]
/// within which a pixel of a decoded frame counts as the player's.
pub const PLAYER_TOLERANCE: u32 = 90;

/// Whether `rgb` counts as the player's colour in a decoded frame.
pub fn is_player_colour(rgb: [u8; 3]) -> bool {
    theme::distance(rgb, PLAYER_COLOR) <= PLAYER_TOLERANCE
}

/// Centroid `(x, y)` in pixels (mean column, mean row) of the pixels of exactly
/// [`PLAYER_COLOR`] in a 64×64 RGB frame; `None` if there are none.
pub fn find_player(frame: &[u8]) -> Option<(f32, f32)> {
    find_player_within(frame, 0)
}

/// Like [`find_player`], counting pixels within L1 distance `tolerance` of [`PLAYER_COLOR`]
/// (for decoded frames, which are never exact).
pub fn find_player_within(frame: &[u8], tolerance: u32) -> Option<(f32, f32)> {
    find_colour_within(frame, PLAYER_COLOR, tolerance)
}

/// Rows of the player's sprite: standing, running, jumping or gliding 7; crouching 4.
pub const PLAYER_HEIGHT: usize = 7;
pub const PLAYER_CROUCH_HEIGHT: usize = 4;

/// How many rows the player spans in a 64×64 frame, counting pixels within L1 distance
/// `tolerance` of [`PLAYER_COLOR`]: the unbroken run of rows with such a pixel near the player's
/// centre (stray pixels of its colour elsewhere in a decoded frame do not count); `None` where
/// the player is not found.
pub fn player_height_within(frame: &[u8], tolerance: u32) -> Option<usize> {
    player_height_at(frame, tolerance, find_player_within(frame, tolerance)?)
}

/// [`player_height_within`] about the player's centre `(x, y)` found already
/// ([`find_player_within`] with the same tolerance).
pub fn player_height_at(frame: &[u8], tolerance: u32, (cx, cy): (f32, f32)) -> Option<usize> {
    // The sprite is at most 8 px wide: columns within 5 of its centre hold all of it.
    let (cx, cy) = (cx.round() as i32, cy.round() as i32);
    let columns = (cx - 5).max(0)..=(cx + 5).min(FRAME_SIZE as i32 - 1);
    let holds = |y: i32| {
        (0..FRAME_SIZE as i32).contains(&y)
            && columns.clone().any(|x| {
                let i = (y as usize * FRAME_SIZE + x as usize) * 3;
                theme::distance([frame[i], frame[i + 1], frame[i + 2]], PLAYER_COLOR) <= tolerance
            })
    };
    // The row of the centre, or the nearest row with the player's colour (a sprite whose centre
    // falls between its rows).
    let centre = [0, -1, 1, -2, 2, -3, 3]
        .into_iter()
        .map(|d| cy + d)
        .find(|&y| holds(y))?;
    let up = (1..).take_while(|&d| holds(centre - d)).count();
    let down = (1..).take_while(|&d| holds(centre + d)).count();
    Some(1 + up + down)
}

/// Whether the player crouches in a frame: its sprite no taller than halfway between a
/// crouch's and a stand's ([`player_height_within`]); `None` where the player is not found.
pub fn player_crouched_within(frame: &[u8], tolerance: u32) -> Option<bool> {
    player_height_within(frame, tolerance).map(is_crouch_height)
}

/// Whether a sprite this many rows tall is the player crouching: no taller than halfway
/// between a crouch's and a stand's.
pub fn is_crouch_height(rows: usize) -> bool {
    2 * rows <= PLAYER_HEIGHT + PLAYER_CROUCH_HEIGHT
}

/// How many pixels of a frame are within L1 distance `tolerance` of the player's colour.
pub fn player_pixels_within(frame: &[u8], tolerance: u32) -> usize {
    frame
        .chunks_exact(3)
        .filter(|px| theme::distance([px[0], px[1], px[2]], PLAYER_COLOR) <= tolerance)
        .count()
}

/// The centre of the pixels of a 64×64 frame within L1 distance `tolerance` of `colour` (the
/// player of another game, in video imported by `genie data import`); `None` where there are none.
pub fn find_colour_within(frame: &[u8], colour: [u8; 3], tolerance: u32) -> Option<(f32, f32)> {
    let (mut sx, mut sy, mut n) = (0u64, 0u64, 0u64);
    for (i, px) in frame.chunks_exact(3).enumerate() {
        if theme::distance([px[0], px[1], px[2]], colour) <= tolerance {
            sx += (i % FRAME_SIZE) as u64;
            sy += (i / FRAME_SIZE) as u64;
            n += 1;
        }
    }
    (n > 0).then(|| (sx as f32 / n as f32, sy as f32 / n as f32))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Alive,
    Died,
    Won,
}

/// What the player has around it, for scripted players.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surroundings {
    pub on_ground: bool,
    /// A solid tile within a tile in front, at body height.
    pub wall_ahead: bool,
    /// No ground under the next tile or two in front.
    pub pit_ahead: bool,
    /// An enemy within three tiles in front, at about the same height.
    pub enemy_ahead: bool,
    /// No ground anywhere below the player.
    pub over_pit: bool,
}

/// One level being played.
#[derive(Clone)]
pub struct Game {
    level: Arc<Level>,
    player: Player,
    enemies: Vec<Enemy>,
    coins_taken: Vec<bool>,
    coins: u32,
    /// Left edge of the view, in SUB units.
    camera: i32,
    config: GameConfig,
    /// How the level is drawn.
    art: Arc<theme::ThemeArt>,
    status: Status,
    tick: u64,
}

impl Game {
    /// The level of `level_seed` at the default difficulty, in the default game.
    pub fn new(level_seed: u64) -> Game {
        Game::with_difficulty(level_seed, DEFAULT_DIFFICULTY)
    }

    /// The level of `level_seed` at the default difficulty in the game `config`.
    pub fn with_config(level_seed: u64, config: GameConfig) -> Game {
        Game::configured(Level::generate(level_seed, DEFAULT_DIFFICULTY), config)
    }

    /// The level of `level_seed` at `difficulty` (0.0 easy … 1.0 hard; clamped).
    pub fn with_difficulty(level_seed: u64, difficulty: f32) -> Game {
        Game::from_level(Level::generate(level_seed, difficulty))
    }

    /// A game on a level built by hand (tests, tools).
    pub fn from_level(level: Level) -> Game {
        Game::configured(level, GameConfig::default())
    }

    /// A game on `level` in the game `config`.
    pub fn configured(level: Level, config: GameConfig) -> Game {
        let level = Arc::new(level);
        let mut game = Game {
            player: Player::spawn(level.start.0, level.start.1),
            enemies: Vec::new(),
            coins_taken: vec![false; level.coins.len()],
            coins: 0,
            camera: 0,
            config,
            art: look::art(config.looks, level.seed, level.theme),
            status: Status::Alive,
            tick: 0,
            level,
        };
        game.restart();
        game
    }

    pub fn level_seed(&self) -> u64 {
        self.level.seed
    }

    pub fn level(&self) -> &Level {
        &self.level
    }

    pub fn config(&self) -> GameConfig {
        self.config
    }

    /// Index into [`theme::PALETTES`].
    pub fn theme(&self) -> usize {
        self.level.theme
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Ticks since the level (re)started.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Coins collected in this life.
    pub fn coins(&self) -> u32 {
        self.coins
    }

    pub fn player(&self) -> &Player {
        &self.player
    }

    /// Left edge of the view in whole pixels.
    pub fn camera_px(&self) -> i32 {
        self.camera / SUB
    }

    /// Back to the level start: same level, fresh life.
    pub fn restart(&mut self) {
        let l = &self.level;
        self.player = Player::spawn(l.start.0, l.start.1);
        self.enemies = l
            .enemies
            .iter()
            .map(|e| Enemy {
                x: e.x * SUB,
                y: e.y * SUB,
                dir: e.dir,
                alive: true,
            })
            .collect();
        self.coins_taken.iter_mut().for_each(|t| *t = false);
        self.coins = 0;
        self.status = Status::Alive;
        self.tick = 0;
        // Settle onto the ground so the first frame shows the player standing.
        self.player
            .update(l, Intent::default(), self.config.controls);
        self.camera = 0;
        // A stepping camera moves a patch a tick: step it to the player before the first frame.
        for _ in 0..self.level.width_px() / CAMERA_STEP {
            let before = self.camera;
            self.follow();
            if self.camera == before {
                break;
            }
        }
    }

    /// One tick under `action`. Once the life has ended (`Died` or `Won`) nothing moves until
    /// [`Game::restart`].
    pub fn step(&mut self, action: Action) -> Status {
        if self.status != Status::Alive {
            return self.status;
        }
        self.tick += 1;
        let level = Arc::clone(&self.level);
        for e in &mut self.enemies {
            e.update(&level);
        }
        let (vy_before, bottom_before) =
            self.player
                .update(&level, action.intent(), self.config.controls);
        self.interact(vy_before, bottom_before);
        self.follow();
        self.status
    }

    fn interact(&mut self, vy_before: i32, bottom_before: i32) {
        let p = &mut self.player;
        let pbox = (p.x, p.y, PLAYER_W * SUB, PLAYER_H * SUB);
        for (i, &(cx, cy)) in self.level.coins.iter().enumerate() {
            if !self.coins_taken[i] && overlap(pbox, (cx * SUB, cy * SUB, 4 * SUB, 4 * SUB)) {
                self.coins_taken[i] = true;
                self.coins += 1;
            }
        }
        for e in self.enemies.iter_mut().filter(|e| e.alive) {
            if overlap(pbox, (e.x, e.y, ENEMY_W * SUB, ENEMY_H * SUB)) {
                if vy_before > 0 && bottom_before <= e.y + 3 * SUB {
                    e.alive = false;
                    p.vy = -physics::STOMP_BOUNCE;
                    p.on_ground = false;
                } else {
                    self.status = Status::Died;
                    return;
                }
            }
        }
        if p.y > FRAME_SIZE as i32 * SUB {
            self.status = Status::Died;
        } else if p.x + PLAYER_W * SUB > (self.level.goal_col as i32 * TILE as i32 + 3) * SUB {
            self.status = Status::Won;
        }
    }

    /// Moves the camera once the player leaves its zone ([`FLIP_ZONE`], [`STEP_ZONE`]).
    fn follow(&mut self) {
        let centre = self.player.x + PLAYER_W * SUB / 2 - self.camera;
        let (zone, jump, grid) = match self.config.camera {
            Camera::Flip => (FLIP_ZONE, CAMERA_FLIP, 1),
            Camera::Step => (STEP_ZONE, CAMERA_STEP, CAMERA_STEP),
        };
        if centre > zone.1 * SUB {
            self.camera += jump * SUB;
        } else if centre < zone.0 * SUB {
            self.camera -= jump * SUB;
        }
        // Whole pixels only (whole patches for the stepping camera): the frame never shifts by
        // a fraction.
        let unit = grid * SUB;
        let max = (self.level.width_px() - FRAME_SIZE as i32) * SUB / unit * unit;
        self.camera = self.camera.clamp(0, max) / unit * unit;
    }

    /// What lies ahead of the player in its facing direction.
    pub fn surroundings(&self) -> Surroundings {
        let p = &self.player;
        let l = &self.level;
        let t = TILE as i32 * SUB;
        let front = if p.facing > 0 {
            (p.x + PLAYER_W * SUB + SUB) / t
        } else {
            (p.x - SUB).div_euclid(t)
        };
        let (r0, r1) = physics::rows(p.y, PLAYER_H);
        let wall_ahead = (r0..=r1).any(|r| l.tile(front, r).is_solid());
        let ground_under =
            |c: i32| (r1 + 1..level::ROWS as i32).any(|r| l.tile(c, r) != level::Tile::Empty);
        let pit_ahead = !ground_under(front) || !ground_under(front + p.facing);
        let (c0, c1) = physics::cols(p.x, PLAYER_W);
        let over_pit = !ground_under(c0) && !ground_under(c1);
        let enemy_ahead = self.enemies.iter().any(|e| {
            e.alive && {
                let dx = (e.x - p.x) * p.facing;
                dx > 0 && dx < 3 * t && (e.y - p.y).abs() < t
            }
        });
        Surroundings {
            on_ground: p.on_ground,
            wall_ahead,
            pit_ahead,
            enemy_ahead,
            over_pit,
        }
    }

    /// Draws the current state into `out` (`FRAME_BYTES` long, row-major RGB).
    pub fn render(&self, out: &mut [u8]) {
        render::render(self, out);
    }

    /// The current state as a new frame.
    pub fn frame(&self) -> Vec<u8> {
        let mut out = vec![0; FRAME_BYTES];
        self.render(&mut out);
        out
    }
}

impl std::fmt::Debug for Game {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Game")
            .field("level_seed", &self.level.seed)
            .field("theme", &self.level.theme)
            .field("tick", &self.tick)
            .field("status", &self.status)
            .field("player", &self.player)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
