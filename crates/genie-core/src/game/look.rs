//! Looks: the many ways the same level can be drawn, so that a world model trained on the game
//! meets more than five palettes of one renderer (a drawing on paper, pixel art in palettes of
//! its own, textured scenes).
//!
//! A level's look is drawn from its seed (a stream of its own, so the layout is the level's
//! either way) within the [`Looks`] a game is configured with. Each look is a [`Family`] and
//! random parameters: colours per tile kind, a background, tile textures with a few variants,
//! and softening. Everything is precomputed into a [`ThemeArt`] when the game is made, so a
//! frame costs what it always did. Whatever the look, no colour comes within 200 (L1) of
//! [`super::PLAYER_COLOR`]: the player, always drawn in it, stays the one thing of its colour.
//!
//! The background is anchored to the world, not the screen: it scrolls with the tiles, so a
//! camera move shifts the whole picture.

use serde::{Deserialize, Serialize};

use super::PLAYER_COLOR;
use super::rng::Rng;
use super::theme::{
    ART_KINDS, Art, Background, Palette, Rgb, THEMES, TILE, ThemeArt, TileRow, distance, lerp,
    shade,
};

/// Which looks a game's levels are drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Looks {
    /// The five themes only: the game of checkpoints before 2026-12-03.
    Themes,
    /// The training families, the five themes among them (new runs).
    #[default]
    Mixed,
    /// Only the families training never sees, for evaluation.
    HeldOut,
}

/// A kind of look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// One of the five themes.
    Theme,
    /// Flat, shaded tiles as the themes draw them, in random colours, over a random background.
    Flat,
    /// Tiles of value noise, stripes, bricks or checks, softened or not.
    Textured,
    /// Few colours, ordered dithering between them: pixel art.
    Dither,
    /// Pencil lines on paper, wobbling as a hand draws.
    Sketch,
    /// Bright outlines on black (held out of training).
    Neon,
}

impl Family {
    /// The families of [`Looks::Mixed`] and their weights.
    const TRAINING: [(Family, f32); 5] = [
        (Family::Theme, 0.25),
        (Family::Flat, 0.2),
        (Family::Textured, 0.25),
        (Family::Dither, 0.15),
        (Family::Sketch, 0.15),
    ];
    /// The families of [`Looks::HeldOut`].
    const HELD_OUT: [(Family, f32); 1] = [(Family::Neon, 1.0)];
}

impl std::str::FromStr for Looks {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "themes" => Ok(Looks::Themes),
            "mixed" => Ok(Looks::Mixed),
            "held_out" => Ok(Looks::HeldOut),
            _ => Err(format!(
                "unknown looks {s:?}: expected themes, mixed or held-out"
            )),
        }
    }
}

/// Stream of a level seed's generator that draws its look.
const LOOK_STREAM: u64 = 0x100c;

/// The family of level `seed` under `looks`.
pub fn family(looks: Looks, seed: u64) -> Family {
    let choices: &[(Family, f32)] = match looks {
        Looks::Themes => return Family::Theme,
        Looks::Mixed => &Family::TRAINING,
        Looks::HeldOut => &Family::HELD_OUT,
    };
    let weights: Vec<f32> = choices.iter().map(|c| c.1).collect();
    choices[Rng::derive(seed, LOOK_STREAM).weighted(&weights)].0
}

/// The art of level `seed` (theme `theme`) under `looks`: the theme's own where the family is
/// [`Family::Theme`], else built from the seed.
pub fn art(looks: Looks, seed: u64, theme: usize) -> std::sync::Arc<ThemeArt> {
    let mut rng = Rng::derive(seed, LOOK_STREAM);
    match family(looks, seed) {
        Family::Theme => super::theme::art(theme % THEMES),
        f => {
            // The family was the generator's first draw; the rest of the stream is its look.
            rng.next_u64();
            std::sync::Arc::new(build(f, &mut rng))
        }
    }
}

/// Moves `c` at least 200 (L1) away from the player's colour by raising its green: magenta has
/// none, so green is what no part of the player has.
pub fn away_from_player(c: Rgb) -> Rgb {
    let d = distance(c, PLAYER_COLOR);
    if d >= 200 {
        return c;
    }
    let mut out = c;
    out[1] = (c[1] as u32 + (200 - d)).min(255) as u8;
    if distance(out, PLAYER_COLOR) < 200 {
        // Saturated already: darken red and blue instead.
        out = [out[0] / 3, out[1], out[2] / 3];
    }
    out
}

fn colour(rng: &mut Rng) -> Rgb {
    away_from_player([
        rng.below(256) as u8,
        rng.below(256) as u8,
        rng.below(256) as u8,
    ])
}

/// A colour at least `min` (L1) from each of `others`, within a few tries.
fn distinct(rng: &mut Rng, others: &[Rgb], min: u32) -> Rgb {
    let mut best = colour(rng);
    for _ in 0..16 {
        if others.iter().all(|&o| distance(o, best) >= min) {
            break;
        }
        best = colour(rng);
    }
    best
}

fn random_palette(rng: &mut Rng) -> Palette {
    let sky_top = colour(rng);
    let sky_bottom = away_from_player(lerp(sky_top, colour(rng), 0.5));
    let ground = distinct(rng, &[sky_top, sky_bottom], 150);
    let ground_top = distinct(rng, &[ground, sky_bottom], 120);
    let platform = distinct(rng, &[sky_top, sky_bottom], 150);
    let crate_fill = distinct(rng, &[sky_top, sky_bottom], 150);
    let crate_edge = away_from_player(shade(crate_fill, 0.5));
    let coin = distinct(rng, &[sky_top, sky_bottom, ground], 200);
    let enemy = distinct(rng, &[sky_top, sky_bottom, ground, coin], 160);
    let enemy_eye = if enemy.iter().map(|&v| v as u32).sum::<u32>() > 380 {
        [10, 10, 10]
    } else {
        [250, 250, 250]
    };
    Palette {
        name: "random",
        sky_top,
        sky_bottom,
        ground,
        ground_top,
        platform,
        crate_fill,
        crate_edge,
        coin,
        enemy,
        enemy_eye,
        flag: distinct(rng, &[sky_top, sky_bottom], 200),
        pole: away_from_player(shade(ground, 0.6)),
    }
}

/// Width of a world-anchored background before it repeats.
const BG_W: usize = 128;

/// A background `BG_W` × 64 from a colour pair: bands, stripes, hills or clouds.
fn background(rng: &mut Rng, top: Rgb, bottom: Rgb) -> Vec<Rgb> {
    let kind = rng.below(5);
    let (period, phase) = (4 + rng.below(13) as usize, rng.below(64) as usize);
    let hills: Vec<usize> = {
        let (a, b) = (rng.unit() * 6.0 + 2.0, rng.unit() * 6.0);
        (0..BG_W)
            .map(|x| {
                let t = x as f32 / BG_W as f32 * std::f32::consts::TAU;
                (40.0 - a * (t * 2.0).sin() - b * (t * 3.0 + 1.0).cos()) as usize
            })
            .collect()
    };
    let far = away_from_player(lerp(top, bottom, 0.7));
    let mut px = Vec::with_capacity(BG_W * 64);
    for y in 0..64 {
        let band = lerp(top, bottom, (y / 8) as f32 / 7.0);
        for (x, &hill) in hills.iter().enumerate() {
            let c = match kind {
                0 => band,
                1 => {
                    if (x + phase) / period % 2 == 0 {
                        band
                    } else {
                        shade(band, 0.85)
                    }
                }
                2 => {
                    if (x + y + phase) / period % 2 == 0 {
                        band
                    } else {
                        shade(band, 1.12)
                    }
                }
                3 => {
                    if y >= hill {
                        far
                    } else {
                        band
                    }
                }
                _ => {
                    // Soft clouds from value noise.
                    let n = value_noise(phase as u64, x, y, 16);
                    if n > 0.62 && y < 36 {
                        lerp(band, [250, 250, 250], 0.6)
                    } else {
                        band
                    }
                }
            };
            px.push(away_from_player(c));
        }
    }
    px
}

/// Smooth noise in [0, 1) at pixel (x, y), a lattice every `cell` pixels, repeating every
/// `BG_W` columns.
fn value_noise(seed: u64, x: usize, y: usize, cell: usize) -> f32 {
    let lattice = |i: usize, j: usize| -> f32 {
        let i = i % (BG_W / cell).max(1);
        let h = super::rng::mix(seed ^ (i as u64) << 20 ^ j as u64);
        (h >> 40) as f32 / (1u64 << 24) as f32
    };
    let (i, j) = (x / cell, y / cell);
    let (fx, fy) = (
        (x % cell) as f32 / cell as f32,
        (y % cell) as f32 / cell as f32,
    );
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let top = lattice(i, j) * (1.0 - sx) + lattice(i + 1, j) * sx;
    let bottom = lattice(i, j + 1) * (1.0 - sx) + lattice(i + 1, j + 1) * sx;
    top * (1.0 - sy) + bottom * sy
}

/// Variants of each tile kind: which one a tile gets depends on where it is.
const VARIANTS: usize = 4;

/// A tile of `TILE`×`TILE` pixels; `None` where the background shows.
type Pixels = [[Option<Rgb>; TILE]; TILE];

fn rows_of(p: &Pixels) -> [TileRow; TILE] {
    std::array::from_fn(|y| {
        if p[y].iter().all(Option::is_none) {
            return None;
        }
        let mut row = [0; TILE * 3];
        for (x, c) in p[y].iter().enumerate() {
            // A row is drawn whole: a transparent pixel inside a drawn row takes the row's
            // first drawn colour (tiles here are either full rows or empty ones).
            let c = c.or_else(|| p[y].iter().flatten().next().copied()).unwrap();
            row[x * 3..x * 3 + 3].copy_from_slice(&c);
        }
        Some(row)
    })
}

/// Ordered-dither threshold of pixel (x, y), in [0, 1).
fn bayer(x: usize, y: usize) -> f32 {
    const M: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];
    (M[y % 4][x % 4] as f32 + 0.5) / 16.0
}

/// How a textured tile's pixels vary.
#[derive(Clone, Copy)]
enum Texture {
    Noise,
    Stripes,
    Bricks,
    Checks,
}

/// Builds the art of a look of family `f` from `rng`.
pub fn build(f: Family, rng: &mut Rng) -> ThemeArt {
    let mut palette = random_palette(rng);
    let soften = f == Family::Textured && rng.chance(0.5);
    let texture = [
        Texture::Noise,
        Texture::Stripes,
        Texture::Bricks,
        Texture::Checks,
    ][rng.below(4) as usize];
    let seed = rng.next_u64();
    match f {
        Family::Sketch => {
            let paper = away_from_player([
                235 + rng.below(16) as u8,
                232 + rng.below(16) as u8,
                215 + rng.below(30) as u8,
            ]);
            let pencil = away_from_player([
                30 + rng.below(60) as u8,
                30 + rng.below(60) as u8,
                40 + rng.below(80) as u8,
            ]);
            palette = Palette {
                name: "sketch",
                sky_top: paper,
                sky_bottom: paper,
                ground: paper,
                ground_top: pencil,
                platform: pencil,
                crate_fill: paper,
                crate_edge: pencil,
                coin: away_from_player([200, 160, 40]),
                enemy: pencil,
                enemy_eye: paper,
                flag: pencil,
                pole: pencil,
            };
        }
        Family::Neon => {
            let glow = |rng: &mut Rng| {
                let c = colour(rng);
                let max = *c.iter().max().unwrap() as f32;
                away_from_player(shade(c, 255.0 / max.max(1.0)))
            };
            let (a, b) = (glow(rng), glow(rng));
            palette = Palette {
                name: "neon",
                sky_top: [0, 0, 0],
                sky_bottom: [10, 10, 30],
                ground: [0, 0, 0],
                ground_top: a,
                platform: b,
                crate_fill: [0, 0, 0],
                crate_edge: b,
                coin: glow(rng),
                enemy: glow(rng),
                enemy_eye: [0, 0, 0],
                flag: a,
                pole: b,
            };
        }
        Family::Dither => {
            // Few colours: everything between two of a small set.
            let dark = away_from_player(shade(palette.ground, 0.5));
            palette.ground_top = away_from_player(shade(palette.ground_top, 1.1));
            palette.crate_edge = dark;
        }
        Family::Theme | Family::Flat | Family::Textured => {}
    }
    let p = palette;
    let bg: Vec<Rgb> = match f {
        Family::Sketch => (0..64)
            .flat_map(|y| {
                (0..BG_W).map(move |x| {
                    // Paper grain, and ruled lines every 8 rows.
                    let grain = value_noise(seed, x, y, 4);
                    let c = if y % 8 == 7 {
                        lerp(p.sky_top, [150, 170, 210], 0.35)
                    } else {
                        shade(p.sky_top, 0.97 + 0.05 * grain)
                    };
                    away_from_player(c)
                })
            })
            .collect(),
        Family::Neon => (0..64)
            .flat_map(|y| {
                (0..BG_W).map(move |x| {
                    let star =
                        super::rng::mix(seed ^ (x as u64) << 8 ^ y as u64).is_multiple_of(97);
                    if star && y < 40 {
                        [120, 140, 160]
                    } else {
                        lerp(p.sky_top, p.sky_bottom, y as f32 / 63.0)
                    }
                })
            })
            .collect(),
        Family::Dither => (0..64)
            .flat_map(|y| {
                (0..BG_W).map(move |x| {
                    if (y as f32 / 63.0) > bayer(x, y) {
                        p.sky_bottom
                    } else {
                        p.sky_top
                    }
                })
            })
            .collect(),
        _ => background(rng, p.sky_top, p.sky_bottom),
    };
    let wobble: Vec<i32> = (0..VARIANTS * TILE)
        .map(|i| (super::rng::mix(seed ^ i as u64) % 3) as i32 - 1)
        .collect();
    let tile = |art: Art, v: usize| -> Pixels {
        let mut px: Pixels = [[None; TILE]; TILE];
        for (y, row) in px.iter_mut().enumerate() {
            for (x, c) in row.iter_mut().enumerate() {
                *c = pixel(f, &p, art, v, x, y, texture, seed, &wobble);
            }
        }
        if soften {
            px = blur(&px);
        }
        px
    };
    let kinds: [Vec<[TileRow; TILE]>; ART_KINDS] = std::array::from_fn(|k| {
        let art = [
            Art::Empty,
            Art::Ground,
            Art::GroundTop,
            Art::Platform,
            Art::Crate,
        ][k];
        if art == Art::Empty {
            return vec![[None; TILE]];
        }
        (0..VARIANTS).map(|v| rows_of(&tile(art, v))).collect()
    });
    let bg = if soften { blur_wide(&bg) } else { bg };
    let mut pixels = Vec::with_capacity(bg.len() * 3);
    for c in bg {
        pixels.extend_from_slice(&away_from_player(c));
    }
    ThemeArt {
        palette: p,
        background: Background::Wide {
            width: BG_W,
            pixels,
        },
        tiles: kinds,
    }
}

/// Pixel (x, y) of variant `v` of tile `art` in family `f` (`None`: the background shows).
#[allow(clippy::too_many_arguments)]
fn pixel(
    f: Family,
    p: &Palette,
    art: Art,
    v: usize,
    x: usize,
    y: usize,
    texture: Texture,
    seed: u64,
    wobble: &[i32],
) -> Option<Rgb> {
    let noise = || super::rng::mix(seed ^ ((v * 64 + y * 8 + x) as u64) << 3) % 1000;
    let c = match f {
        Family::Sketch | Family::Neon => {
            // Lines only: the surface, the platform's edges, the crate's box; a little
            // hatching in the ground.
            let line = |at: i32| y as i32 == at + wobble[v * TILE + x];
            match art {
                Art::Empty => return None,
                Art::GroundTop if line(1) => p.ground_top,
                Art::GroundTop | Art::Ground => {
                    if f == Family::Sketch && (x + 2 * y + v).is_multiple_of(7) && noise() < 500 {
                        lerp(p.ground, p.ground_top, 0.4)
                    } else {
                        p.ground
                    }
                }
                Art::Platform => match y {
                    0..=3 if line(1) || (y <= 3 && (x == 0 || x == 7)) => p.platform,
                    0..=3 => p.ground,
                    _ => return None,
                },
                Art::Crate => {
                    if x == 0 || y == 0 || x == 7 || y == 7 || (f == Family::Sketch && x == y) {
                        p.crate_edge
                    } else {
                        p.crate_fill
                    }
                }
            }
        }
        _ => {
            let (base, edge) = match art {
                Art::Empty => return None,
                Art::Ground => (p.ground, shade(p.ground, 0.8)),
                Art::GroundTop if y <= 1 => (p.ground_top, shade(p.ground_top, 0.8)),
                Art::GroundTop if y == 2 => (shade(p.ground_top, 0.75), p.ground),
                Art::GroundTop => (p.ground, shade(p.ground, 0.8)),
                Art::Platform if y == 0 => (shade(p.platform, 1.2), p.platform),
                Art::Platform if y <= 2 => (p.platform, shade(p.platform, 0.7)),
                Art::Platform if y == 3 => (shade(p.platform, 0.6), p.platform),
                Art::Platform => return None,
                Art::Crate => {
                    if x == 0 || y == 0 || x == 7 || y == 7 || x == y || x == 7 - y {
                        (p.crate_edge, p.crate_edge)
                    } else {
                        (p.crate_fill, shade(p.crate_fill, 0.85))
                    }
                }
            };
            match f {
                Family::Textured => {
                    let t = match texture {
                        Texture::Noise => value_noise(seed ^ v as u64, x, y, 2),
                        Texture::Stripes => ((x + y + v) % 4 < 2) as u8 as f32,
                        Texture::Bricks => {
                            let off = if (y / 4).is_multiple_of(2) { 0 } else { 4 };
                            ((y % 4 == 3) || ((x + off) % 8 == 7)) as u8 as f32
                        }
                        Texture::Checks => (((x / 2) + (y / 2) + v) % 2) as f32,
                    };
                    lerp(base, edge, t)
                }
                Family::Dither => {
                    let t = (y as f32 + 0.5) / TILE as f32 * 0.8;
                    if t > bayer(x + v, y) { edge } else { base }
                }
                _ => {
                    // Flat, with the themes' specks.
                    if (art == Art::Ground || (art == Art::GroundTop && y > 2)) && noise() < 60 {
                        edge
                    } else {
                        base
                    }
                }
            }
        }
    };
    Some(away_from_player(c))
}

/// A 3×3 box blur of a tile's drawn pixels (the background is left out of the average).
fn blur(px: &Pixels) -> Pixels {
    std::array::from_fn(|y| {
        std::array::from_fn(|x| {
            px[y][x]?;
            let mut sum = [0u32; 3];
            let mut n = 0;
            for dy in -1i32..=1 {
                for dx in -1i32..=1 {
                    let (yy, xx) = (y as i32 + dy, x as i32 + dx);
                    if !(0..TILE as i32).contains(&yy) || !(0..TILE as i32).contains(&xx) {
                        continue;
                    }
                    if let Some(c) = px[yy as usize][xx as usize] {
                        (0..3).for_each(|k| sum[k] += c[k] as u32);
                        n += 1;
                    }
                }
            }
            Some(away_from_player(sum.map(|s| (s / n) as u8)))
        })
    })
}

/// A 3×3 box blur of a background, wrapping horizontally.
fn blur_wide(bg: &[Rgb]) -> Vec<Rgb> {
    let at =
        |x: i32, y: i32| bg[(y.clamp(0, 63) as usize) * BG_W + x.rem_euclid(BG_W as i32) as usize];
    (0..64i32)
        .flat_map(|y| {
            (0..BG_W as i32).map(move |x| {
                let mut sum = [0u32; 3];
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let c = at(x + dx, y + dy);
                        (0..3).for_each(|k| sum[k] += c[k] as u32);
                    }
                }
                sum.map(|s| (s / 9) as u8)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_look_keeps_clear_of_the_players_colour() {
        for looks in [Looks::Mixed, Looks::HeldOut] {
            for seed in 0..300 {
                let art = art(looks, seed, 0);
                for c in art.colours() {
                    assert!(
                        distance(c, PLAYER_COLOR) >= 200,
                        "{looks:?} level {seed} ({:?}) uses {c:?}",
                        family(looks, seed)
                    );
                }
            }
        }
    }

    #[test]
    fn families_follow_the_weights_and_the_held_out_ones_stay_out_of_training() {
        let mut counts = std::collections::BTreeMap::new();
        for seed in 0..2000 {
            *counts
                .entry(format!("{:?}", family(Looks::Mixed, seed)))
                .or_insert(0) += 1;
            assert_eq!(family(Looks::Themes, seed), Family::Theme);
            assert_eq!(family(Looks::HeldOut, seed), Family::Neon);
        }
        assert!(!counts.contains_key("Neon"), "{counts:?}");
        for (f, w) in Family::TRAINING {
            let n = counts[&format!("{f:?}")] as f32;
            assert!((n / 2000.0 - w).abs() < 0.04, "{f:?}: {n} of 2000");
        }
    }

    #[test]
    fn a_look_is_the_same_for_the_same_seed_and_differs_between_seeds() {
        let a = art(Looks::Mixed, 7, 0);
        assert_eq!(*a, *art(Looks::Mixed, 7, 0));
        let distinct = (0..40)
            .map(|s| art(Looks::Mixed, s, 0).background_pixel(5, 40))
            .collect::<std::collections::BTreeSet<_>>();
        assert!(distinct.len() > 20, "{}", distinct.len());
    }

    #[test]
    fn the_mixed_looks_draw_theme_levels_exactly_as_the_themes_do() {
        for seed in 0..60 {
            if family(Looks::Mixed, seed) == Family::Theme {
                assert!(std::sync::Arc::ptr_eq(
                    &art(Looks::Mixed, seed, 3),
                    &art(Looks::Themes, seed, 3)
                ));
            }
        }
    }
}
