//! Physics: the player's and enemies' movement in fixed point, one call per game tick.
//!
//! Positions and velocities are integers in 1/256 pixel ([`SUB`]), so a run is bit-exact on
//! every machine. Each tick the player accelerates from the action, falls under gravity, then
//! moves along x and along y separately, each move resolved against the tiles it would
//! overlap. Speeds stay below the player's size, so no move can tunnel through a tile. Solid
//! tiles (ground, crates) block from every side; platforms only catch a player falling onto
//! them from above, and Down drops through them.

use super::Controls;
use super::level::{Level, ROWS, Tile};
use super::theme::TILE;

/// Fixed-point units per pixel.
pub const SUB: i32 = 256;
/// Player hitbox, in pixels.
pub const PLAYER_W: i32 = 6;
pub const PLAYER_H: i32 = 7;
/// Enemy hitbox, in pixels.
pub const ENEMY_W: i32 = 6;
pub const ENEMY_H: i32 = 6;

pub const GRAVITY: i32 = 90; // 0.35 px/tick²
pub const MAX_FALL: i32 = 5 * SUB;
pub const FAST_FALL: i32 = 6 * SUB; // below PLAYER_H: no tunnelling
pub const JUMP_SPEED: i32 = 1152; // 4.5 px/tick: apex ≈ 29 px, 3.6 tiles
// Control is immediate: acceleration and friction equal the top speed, so the key of a tick
// alone sets that tick's horizontal speed (run, stop or turn at once, on the ground and in the
// air). The latent action model sees only xₜ and xₜ₊₁; with momentum (0.375 px/tick² at first,
// then 1 px/tick²) the same step could come from several keys depending on the earlier speed,
// and its codes carried next to nothing about the key.
pub const RUN_ACCEL: i32 = 410; // = RUN_MAX: full speed in 1 tick
pub const RUN_MAX: i32 = 410; // 1.6 px/tick
pub const GROUND_FRICTION: i32 = 410; // stops in 1 tick
pub const AIR_FRICTION: i32 = 410;
pub const DASH_SPEED: i32 = 896; // 3.5 px/tick
pub const DASH_TICKS: u8 = 8;
pub const DASH_COOLDOWN: u8 = 30;
pub const STOMP_BOUNCE: i32 = 3 * SUB;
/// [`Controls::Responsive`]: the fastest rise once `jump` is let go (a short hop), and the
/// fastest fall while it is held (a glide); each a pixel a tick, so the key shows in the next
/// frame wherever the player is more than a few ticks from the top of its arc.
pub const JUMP_CUT: i32 = SUB;
pub const GLIDE_FALL: i32 = SUB;
pub const ENEMY_SPEED: i32 = 128; // 0.5 px/tick
const DROP_TICKS: u8 = 8;

/// What an action asks of the player this tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Intent {
    /// −1 left, 0 none, +1 right.
    pub dir: i32,
    pub jump: bool,
    pub down: bool,
    pub dash: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    /// Top-left of the hitbox, in [`SUB`] units.
    pub x: i32,
    pub y: i32,
    pub vx: i32,
    pub vy: i32,
    /// −1 or +1.
    pub facing: i32,
    pub on_ground: bool,
    pub crouching: bool,
    /// [`Controls::Responsive`]: `jump` held in the air (drawn with its arms up).
    pub gliding: bool,
    pub dash_ticks: u8,
    pub dash_cooldown: u8,
    drop_ticks: u8,
}

impl Player {
    pub fn spawn(x_px: i32, y_px: i32) -> Player {
        Player {
            x: x_px * SUB,
            y: y_px * SUB,
            vx: 0,
            vy: 0,
            facing: 1,
            on_ground: false,
            crouching: false,
            gliding: false,
            dash_ticks: 0,
            dash_cooldown: 0,
            drop_ticks: 0,
        }
    }

    /// Advances one tick. Returns the vertical speed before the move and the hitbox bottom
    /// before the move (for stomp detection).
    pub fn update(&mut self, level: &Level, intent: Intent, controls: Controls) -> (i32, i32) {
        let responsive = controls == Controls::Responsive;
        self.dash_cooldown = self.dash_cooldown.saturating_sub(1);
        self.crouching = intent.down && (self.on_ground || responsive);
        if responsive && !intent.dash && self.dash_ticks > 0 {
            // A dash goes on only while its key is held; let go, it stops as a run does.
            self.dash_ticks = 0;
            self.vx = self.vx.clamp(-RUN_MAX, RUN_MAX);
        }
        if intent.dash && self.dash_cooldown == 0 && self.dash_ticks == 0 {
            if intent.dir != 0 {
                self.facing = intent.dir;
            }
            self.dash_ticks = DASH_TICKS;
            self.dash_cooldown = DASH_COOLDOWN;
        }

        if self.dash_ticks > 0 {
            self.dash_ticks -= 1;
            self.vx = self.facing
                * if self.dash_ticks > 0 {
                    DASH_SPEED
                } else {
                    RUN_MAX
                };
        } else if intent.dir != 0 && !self.crouching {
            self.facing = intent.dir;
            let turning = self.vx * intent.dir < 0;
            self.vx += intent.dir * if turning { 2 * RUN_ACCEL } else { RUN_ACCEL };
            self.vx = self.vx.clamp(-RUN_MAX, RUN_MAX);
        } else if responsive && intent.dash {
            // Cooling down, `dash` runs the way the player faces.
            self.vx = self.facing * RUN_MAX;
        } else {
            let f = if self.on_ground {
                GROUND_FRICTION
            } else {
                AIR_FRICTION
            };
            self.vx = self.vx.signum() * (self.vx.abs() - f).max(0);
        }

        if intent.jump && self.on_ground {
            self.vy = -JUMP_SPEED;
            self.on_ground = false;
        }
        if intent.down && self.on_ground && self.standing_on_platform_only(level) {
            self.drop_ticks = DROP_TICKS;
        }
        if self.dash_ticks > 0 {
            self.vy = 0;
        } else {
            let fast = intent.down && !self.on_ground;
            self.vy += if fast { 2 * GRAVITY } else { GRAVITY };
            self.vy = self.vy.min(if fast { FAST_FALL } else { MAX_FALL });
            if responsive && !self.on_ground {
                if intent.jump {
                    self.vy = self.vy.min(GLIDE_FALL);
                } else {
                    self.vy = self.vy.max(-JUMP_CUT);
                }
            }
        }

        let (vy_before, bottom_before) = (self.vy, self.y + PLAYER_H * SUB);
        self.move_x(level);
        self.move_y(level);
        self.on_ground = self.vy >= 0 && self.supported(level);
        if self.on_ground {
            self.vy = 0;
        }
        self.gliding = responsive && intent.jump && !self.on_ground;
        self.drop_ticks = self.drop_ticks.saturating_sub(1);
        (vy_before, bottom_before)
    }

    fn move_x(&mut self, level: &Level) {
        if self.vx == 0 {
            return;
        }
        let nx = self.x + self.vx;
        let (r0, r1) = rows(self.y, PLAYER_H);
        let (c0, c1) = cols(nx, PLAYER_W);
        if self.vx > 0 {
            if let Some(c) = (c0..=c1).find(|&c| column_solid(level, c, r0, r1)) {
                self.x = c * TILE as i32 * SUB - PLAYER_W * SUB;
                self.vx = 0;
                return;
            }
        } else if let Some(c) = (c0..=c1).rev().find(|&c| column_solid(level, c, r0, r1)) {
            self.x = (c + 1) * TILE as i32 * SUB;
            self.vx = 0;
            return;
        }
        self.x = nx;
    }

    fn move_y(&mut self, level: &Level) {
        if self.vy == 0 {
            return;
        }
        let ny = self.y + self.vy;
        let (c0, c1) = cols(self.x, PLAYER_W);
        let (r0, r1) = rows(ny, PLAYER_H);
        if self.vy > 0 {
            let old_bottom = self.y + PLAYER_H * SUB;
            let catches = |r: i32| {
                (c0..=c1).any(|c| {
                    let t = level.tile(c, r);
                    t.is_solid()
                        || (t == Tile::Platform
                            && self.drop_ticks == 0
                            && old_bottom <= r * TILE as i32 * SUB)
                })
            };
            if let Some(r) = (r0..=r1).find(|&r| catches(r)) {
                self.y = r * TILE as i32 * SUB - PLAYER_H * SUB;
                self.vy = 0;
                return;
            }
        } else if let Some(r) = (r0..=r1)
            .rev()
            .find(|&r| (c0..=c1).any(|c| level.tile(c, r).is_solid()))
        {
            self.y = (r + 1) * TILE as i32 * SUB;
            self.vy = 0;
            return;
        }
        self.y = ny;
    }

    /// Standing exactly on top of something that holds the player up.
    fn supported(&self, level: &Level) -> bool {
        let bottom = self.y + PLAYER_H * SUB;
        if bottom % (TILE as i32 * SUB) != 0 {
            return false;
        }
        let r = bottom / (TILE as i32 * SUB);
        let (c0, c1) = cols(self.x, PLAYER_W);
        (c0..=c1).any(|c| {
            let t = level.tile(c, r);
            t.is_solid() || (t == Tile::Platform && self.drop_ticks == 0)
        })
    }

    fn standing_on_platform_only(&self, level: &Level) -> bool {
        let r = (self.y + PLAYER_H * SUB) / (TILE as i32 * SUB);
        let (c0, c1) = cols(self.x, PLAYER_W);
        (c0..=c1).all(|c| !level.tile(c, r).is_solid())
            && (c0..=c1).any(|c| level.tile(c, r) == Tile::Platform)
    }

    /// True when the hitbox overlaps a solid tile (never, after any update).
    pub fn inside_solid(&self, level: &Level) -> bool {
        let (c0, c1) = cols(self.x, PLAYER_W);
        let (r0, r1) = rows(self.y, PLAYER_H);
        (c0..=c1).any(|c| column_solid(level, c, r0, r1))
    }
}

/// Tile columns covered by a box at `x` (SUB units) of width `w` pixels.
#[inline]
pub fn cols(x: i32, w: i32) -> (i32, i32) {
    let t = TILE as i32 * SUB;
    (x.div_euclid(t), (x + w * SUB - 1).div_euclid(t))
}

/// Tile rows covered by a box at `y` (SUB units) of height `h` pixels.
#[inline]
pub fn rows(y: i32, h: i32) -> (i32, i32) {
    let t = TILE as i32 * SUB;
    (y.div_euclid(t), (y + h * SUB - 1).div_euclid(t))
}

fn column_solid(level: &Level, c: i32, r0: i32, r1: i32) -> bool {
    (r0..=r1).any(|r| level.tile(c, r).is_solid())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enemy {
    /// Top-left in SUB units.
    pub x: i32,
    pub y: i32,
    pub dir: i32,
    pub alive: bool,
}

impl Enemy {
    /// Walks on; turns round at a wall or at the edge of its footing.
    pub fn update(&mut self, level: &Level) {
        if !self.alive {
            return;
        }
        let nx = self.x + self.dir * ENEMY_SPEED;
        let front = if self.dir > 0 {
            (nx + ENEMY_W * SUB - 1).div_euclid(TILE as i32 * SUB)
        } else {
            nx.div_euclid(TILE as i32 * SUB)
        };
        let (r0, r1) = rows(self.y, ENEMY_H);
        let below = (self.y + ENEMY_H * SUB).div_euclid(TILE as i32 * SUB);
        let footing = level.tile(front, below);
        let blocked = column_solid(level, front, r0, r1);
        if blocked || !(footing.is_solid() || footing == Tile::Platform) || below >= ROWS as i32 {
            self.dir = -self.dir;
        } else {
            self.x = nx;
        }
    }
}

/// Axis-aligned overlap of two boxes given as (x, y, w, h) in SUB units.
#[inline]
pub fn overlap(a: (i32, i32, i32, i32), b: (i32, i32, i32, i32)) -> bool {
    a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
}
