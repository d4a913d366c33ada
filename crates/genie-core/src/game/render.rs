//! Rendering: a game state to a 64×64 RGB frame (row-major `[64][64][3]` u8).
//!
//! The background is copied a whole row at a time (two pieces where it is a picture that
//! repeats along the world), tiles a tile-row (8 pixels) at a time from art precomputed per
//! look, so a frame costs a few hundred `copy_from_slice` calls; only the small sprites (coins,
//! enemies, the flag, the player) are drawn pixel by pixel.

use super::Game;
use super::level::{ROWS, Tile};
use super::physics::SUB;
use super::theme::{Art, Background, DASH_STREAK, PLAYER_EYE, Rgb, TILE};
use super::{FRAME_SIZE, PLAYER_COLOR, PLAYER_CROUCH_HEIGHT, PLAYER_HEIGHT};

const ROW_BYTES: usize = FRAME_SIZE * 3;

const COIN: [&str; 4] = [".##.", "####", "####", ".##."];
const ENEMY_A: [&str; 6] = [".####.", "#o##o#", "######", "######", "#.##.#", "##..##"];
const ENEMY_B: [&str; 6] = [".####.", "#o##o#", "######", "######", ".####.", ".#..#."];
const PLAYER: [&str; PLAYER_HEIGHT] = [
    ".PPPP.", "PPPPeP", "PPPPPP", "PPPPPP", ".PPPP.", ".P..P.", ".P..P.",
];
/// `jump` held in the air with [`super::Controls::Responsive`]: the arms up, one pixel out on
/// each side (drawn a pixel to the left of [`PLAYER`], so the body stays where it was).
const PLAYER_GLIDE: [&str; PLAYER_HEIGHT] = [
    "P.PPPP.P", "PPPPPePP", ".PPPPPP.", ".PPPPPP.", "..PPPP..", "..P..P..", "..P..P..",
];
const PLAYER_CROUCH: [&str; PLAYER_CROUCH_HEIGHT] = [".PPPP.", "PPPPeP", "PPPPPP", "PP..PP"];
const FLAG: [&str; 4] = ["fffff", "ffff.", "fff..", "f...."];

pub(super) fn render(game: &Game, out: &mut [u8]) {
    assert_eq!(
        out.len(),
        super::FRAME_BYTES,
        "frame buffer has the wrong size"
    );
    let level = &game.level;
    let art = &*game.art;
    let p = &art.palette;
    let cx = game.camera_px();

    for (y, row) in out.chunks_exact_mut(ROW_BYTES).enumerate() {
        match &art.background {
            Background::Rows(rows) => row.copy_from_slice(&rows[y]),
            Background::Wide { width, pixels } => {
                let line = &pixels[y * width * 3..(y + 1) * width * 3];
                let mut x = 0;
                while x < FRAME_SIZE {
                    let from = (cx + x as i32).rem_euclid(*width as i32) as usize;
                    let n = (width - from).min(FRAME_SIZE - x);
                    row[x * 3..(x + n) * 3].copy_from_slice(&line[from * 3..(from + n) * 3]);
                    x += n;
                }
            }
        }
        let (ty, ry) = (y / TILE, y % TILE);
        let first = (cx / TILE as i32).max(0) as usize;
        let last = (((cx + FRAME_SIZE as i32 - 1) / TILE as i32) as usize).min(level.width - 1);
        let arts = &level.art[ty * level.width..(ty + 1) * level.width];
        for (tx, &a) in arts.iter().enumerate().take(last + 1).skip(first) {
            if a == Art::Empty {
                continue;
            }
            let variants = &art.tiles[a as usize];
            let variant = (tx * 7 + ty * 3) % variants.len();
            let Some(tex) = &variants[variant][ry] else {
                continue;
            };
            let sx = tx as i32 * TILE as i32 - cx;
            let (src0, dst0) = if sx < 0 {
                ((-sx) as usize, 0)
            } else {
                (0, sx as usize)
            };
            let n = (TILE - src0).min(FRAME_SIZE - dst0);
            row[dst0 * 3..(dst0 + n) * 3].copy_from_slice(&tex[src0 * 3..(src0 + n) * 3]);
        }
    }

    // The goal: a pole three tiles tall with a pennant, standing on the ground.
    let gx = level.goal_col as i32 * TILE as i32 + 3 - cx;
    if (-8..FRAME_SIZE as i32).contains(&gx) {
        let ground_row = (0..ROWS as i32)
            .find(|&r| level.tile(level.goal_col as i32, r) == Tile::Ground)
            .unwrap_or(ROWS as i32);
        let top = ground_row * TILE as i32 - 3 * TILE as i32;
        for y in top..ground_row * TILE as i32 {
            put(out, gx, y, p.pole);
        }
        sprite(out, gx + 1, top, &FLAG, |_| p.flag);
    }

    for (i, &(x, y)) in level.coins.iter().enumerate() {
        if !game.coins_taken[i] {
            sprite(out, x - cx, y, &COIN, |_| p.coin);
        }
    }
    for e in &game.enemies {
        if e.alive {
            let ex = e.x / SUB;
            let frames = if (ex / 3) % 2 == 0 {
                &ENEMY_A
            } else {
                &ENEMY_B
            };
            sprite(out, ex - cx, e.y / SUB, frames, |c| {
                if c == b'o' { p.enemy_eye } else { p.enemy }
            });
        }
    }

    let pl = &game.player;
    let (px, py) = (pl.x / SUB - cx, pl.y / SUB);
    let colour = |c: u8| -> Rgb { if c == b'e' { PLAYER_EYE } else { PLAYER_COLOR } };
    if pl.dash_ticks > 0 {
        let back = if pl.facing > 0 { px - 4 } else { px + 6 };
        for dx in 0..3 {
            put(
                out,
                back + dx + i32::from(pl.facing < 0),
                py + 2,
                DASH_STREAK,
            );
            put(out, back + dx, py + 4, DASH_STREAK);
        }
    }
    let flip = pl.facing < 0;
    if pl.crouching {
        sprite_flip(out, px, py + 3, &PLAYER_CROUCH, flip, colour);
    } else if pl.gliding {
        sprite_flip(out, px - 1, py, &PLAYER_GLIDE, flip, colour);
    } else {
        sprite_flip(out, px, py, &PLAYER, flip, colour);
    }
}

#[inline]
fn put(out: &mut [u8], x: i32, y: i32, c: Rgb) {
    if (0..FRAME_SIZE as i32).contains(&x) && (0..FRAME_SIZE as i32).contains(&y) {
        let i = (y as usize * FRAME_SIZE + x as usize) * 3;
        out[i..i + 3].copy_from_slice(&c);
    }
}

fn sprite(out: &mut [u8], x: i32, y: i32, rows: &[&str], colour: impl Fn(u8) -> Rgb) {
    sprite_flip(out, x, y, rows, false, colour)
}

/// Draws a sprite given as rows of characters ('.' transparent), mirrored when `flip`.
fn sprite_flip(
    out: &mut [u8],
    x: i32,
    y: i32,
    rows: &[&str],
    flip: bool,
    colour: impl Fn(u8) -> Rgb,
) {
    for (dy, row) in rows.iter().enumerate() {
        let bytes = row.as_bytes();
        let w = bytes.len();
        for dx in 0..w {
            let c = bytes[if flip { w - 1 - dx } else { dx }];
            if c != b'.' {
                put(out, x + dx as i32, y + dy as i32, colour(c));
            }
        }
    }
}
