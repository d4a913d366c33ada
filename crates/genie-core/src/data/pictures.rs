//! Procedural pictures that are no level: what the tokenizer may learn to draw besides the
//! game's frames, so that a picture a person brings (a sketch, pixel art, a photo) is not turned
//! into a patchwork of the game's own tiles (issue 31). Each is layers of random shapes over a
//! random ground (the "dead leaves" pictures of Baradad et al., 2021, "Learning to See by
//! Looking at Noise", which taught networks about as well as natural images), with strokes and
//! hatching as a pen draws them, ruled or squared paper, coarse pixels, blur and noise, and on
//! most of them the game's player standing somewhere (the hero convention of
//! `session::hero`). Nothing here is drawn from the pictures the tokenizer is measured on.

use crate::game::look::away_from_player;
use crate::game::rng::Rng;
use crate::game::theme::Rgb;
use crate::game::{FRAME_BYTES, FRAME_SIZE};
use crate::session::hero::draw_player;

const S: usize = FRAME_SIZE;

/// One 64×64 RGB picture (row-major, `FRAME_BYTES`), the same for the same `seed`.
pub fn picture(seed: u64) -> Vec<u8> {
    let mut rng = Rng::derive(seed, 0x7069_6374);
    let ink = Ink::new(&mut rng);
    let mut px = ground(&mut rng, &ink);
    let shapes = if rng.chance(0.15) {
        0
    } else {
        rng.range(2, 36) as usize
    };
    for _ in 0..shapes {
        shape(&mut rng, &ink, &mut px);
    }
    for _ in 0..rng.range(0, if ink.paper { 10 } else { 4 }) {
        stroke(&mut rng, &ink, &mut px);
    }
    if rng.chance(0.25) {
        let cell = [2, 3, 4][rng.below(3) as usize];
        coarsen(&mut px, cell);
    }
    if rng.chance(0.3) {
        blur(&mut px);
    }
    if rng.chance(0.3) {
        let amp = rng.range(2, 14);
        noise(&mut rng, &mut px, amp);
    }
    let mut out = Vec::with_capacity(FRAME_BYTES);
    for c in &px {
        out.extend_from_slice(&away_from_player(*c));
    }
    if rng.chance(0.7) {
        let (x, y) = (rng.range(0, S as i32 - 6), rng.range(0, S as i32 - 7));
        draw_player(&mut out, x, y);
    }
    out
}

/// The colours a picture is drawn with: any colour, a small palette (pixel art, posters), or
/// ink on paper (a sketch: a light ground, one dark ink, a few accents).
struct Ink {
    palette: Vec<Rgb>,
    free: bool,
    paper: bool,
}

impl Ink {
    fn new(rng: &mut Rng) -> Self {
        let any = |rng: &mut Rng| -> Rgb {
            [
                rng.below(256) as u8,
                rng.below(256) as u8,
                rng.below(256) as u8,
            ]
        };
        match rng.below(3) {
            0 => Self {
                palette: Vec::new(),
                free: true,
                paper: false,
            },
            1 => Self {
                palette: (0..rng.range(2, 8)).map(|_| any(rng)).collect(),
                free: false,
                paper: false,
            },
            _ => {
                let light = rng.range(205, 255) as u8;
                let tint = |rng: &mut Rng| light.saturating_sub(rng.below(30) as u8);
                let paper = [tint(rng), tint(rng), tint(rng)];
                let dark = rng.range(10, 90) as u8;
                let ink = [dark, dark, dark.saturating_add(rng.below(60) as u8)];
                let mut palette = vec![paper, ink];
                palette.extend((0..rng.range(0, 4)).map(|_| any(rng)));
                Self {
                    palette,
                    free: false,
                    paper: true,
                }
            }
        }
    }

    fn colour(&self, rng: &mut Rng) -> Rgb {
        if self.free {
            [
                rng.below(256) as u8,
                rng.below(256) as u8,
                rng.below(256) as u8,
            ]
        } else {
            self.palette[rng.below(self.palette.len() as u64) as usize]
        }
    }

    /// What lines are drawn in: the ink on paper, any colour otherwise.
    fn line(&self, rng: &mut Rng) -> Rgb {
        if self.paper && rng.chance(0.8) {
            self.palette[1]
        } else {
            self.colour(rng)
        }
    }
}

fn lerp(a: Rgb, b: Rgb, t: f32) -> Rgb {
    std::array::from_fn(|i| (a[i] as f32 + (b[i] as f32 - a[i] as f32) * t).round() as u8)
}

fn shade(c: Rgb, f: f32) -> Rgb {
    c.map(|v| (v as f32 * f).clamp(0.0, 255.0) as u8)
}

/// The picture's ground: flat, a gradient, sky over land, smooth noise, or paper with rulings.
fn ground(rng: &mut Rng, ink: &Ink) -> Vec<Rgb> {
    let (a, b) = if ink.paper {
        (ink.palette[0], shade(ink.palette[0], 0.96))
    } else {
        (ink.colour(rng), ink.colour(rng))
    };
    let mut px = vec![a; S * S];
    let kind = rng.below(if ink.paper { 6 } else { 5 });
    let horizon = rng.range(24, 56) as usize;
    let cell = rng.range(4, 16) as usize;
    let nseed = rng.next_u64();
    let rule = lerp(a, ink.line(rng), 0.5);
    let period = rng.range(4, 10) as usize;
    for y in 0..S {
        for x in 0..S {
            px[y * S + x] = match kind {
                0 => a,
                1 => lerp(a, b, y as f32 / (S - 1) as f32),
                2 => {
                    if y >= horizon {
                        b
                    } else {
                        lerp(a, shade(a, 0.8), y as f32 / horizon as f32)
                    }
                }
                3 => lerp(a, b, value_noise(nseed, x, y, cell)),
                4 => {
                    if (x / period + y / period).is_multiple_of(2) {
                        a
                    } else {
                        lerp(a, b, 0.35)
                    }
                }
                // Ruled or squared paper.
                _ => {
                    if y % period == period - 1 || (nseed & 1 == 1 && x % period == period - 1) {
                        rule
                    } else {
                        a
                    }
                }
            };
        }
    }
    px
}

/// A filled shape of a size drawn from a power law (many small, few large): a rectangle, an
/// ellipse or a triangle, filled flat, with a gradient, stripes or speckle, outlined or not.
fn shape(rng: &mut Rng, ink: &Ink, px: &mut [Rgb]) {
    let size = (2.0 + 38.0 * rng.unit().powi(3)) as i32;
    let (w, h) = (
        (size as f32 * (0.5 + rng.unit())).max(1.0) as i32,
        (size as f32 * (0.5 + rng.unit())).max(1.0) as i32,
    );
    let (x0, y0) = (
        rng.range(-w / 2, S as i32 - 1),
        rng.range(-h / 2, S as i32 - 1),
    );
    let kind = rng.below(3);
    let (c1, c2) = (ink.colour(rng), ink.colour(rng));
    let fill = rng.below(4);
    let period = rng.range(2, 6);
    let apex = rng.range(0, w);
    let outline = rng
        .chance(if ink.paper { 0.7 } else { 0.3 })
        .then(|| ink.line(rng));
    let sseed = rng.next_u64();
    let inside = |x: i32, y: i32| -> bool {
        let (u, v) = (x - x0, y - y0);
        if u < 0 || v < 0 || u >= w || v >= h {
            return false;
        }
        match kind {
            0 => true,
            1 => {
                let (cx, cy) = ((w - 1) as f32 / 2.0, (h - 1) as f32 / 2.0);
                let (dx, dy) = ((u as f32 - cx) / (cx + 0.5), (v as f32 - cy) / (cy + 0.5));
                dx * dx + dy * dy <= 1.0
            }
            _ => {
                // Apex at the top, base along the bottom row.
                let t = (v + 1) as f32 / h as f32;
                let (l, r) = (apex as f32 * (1.0 - t), apex as f32 + (w - apex) as f32 * t);
                (u as f32) >= l - 0.5 && (u as f32) <= r + 0.5
            }
        }
    };
    for y in y0.max(0)..(y0 + h).min(S as i32) {
        for x in x0.max(0)..(x0 + w).min(S as i32) {
            if !inside(x, y) {
                continue;
            }
            let edge = outline.is_some()
                && [(1, 0), (-1, 0), (0, 1), (0, -1)]
                    .iter()
                    .any(|&(dx, dy)| !inside(x + dx, y + dy));
            let c = match (edge, outline) {
                (true, Some(o)) => o,
                _ => match fill {
                    0 => c1,
                    1 => lerp(c1, c2, (y - y0) as f32 / h.max(1) as f32),
                    2 => {
                        if (x + y) / period % 2 == 0 {
                            c1
                        } else {
                            c2
                        }
                    }
                    _ => {
                        let h = crate::game::rng::mix(sseed ^ ((x as u64) << 8) ^ y as u64);
                        if h.is_multiple_of(5) { c2 } else { c1 }
                    }
                },
            };
            px[y as usize * S + x as usize] = c;
        }
    }
}

/// A line as a hand draws it: a path that turns a little at each pixel, one or two pixels wide;
/// sometimes a ground line with hatching under it.
fn stroke(rng: &mut Rng, ink: &Ink, px: &mut [Rgb]) {
    let c = ink.line(rng);
    let width = if rng.chance(0.75) { 1 } else { 2 };
    let (mut x, mut y) = (rng.unit() * S as f32, rng.unit() * S as f32);
    let mut angle = rng.unit() * std::f32::consts::TAU;
    if rng.chance(0.3) {
        angle = if rng.chance(0.5) {
            0.0
        } else {
            std::f32::consts::PI
        };
    }
    let hatch = rng.chance(0.25);
    let wobble = rng.unit() * 0.5;
    for i in 0..rng.range(6, 80) {
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)]
            .into_iter()
            .take(width * width)
        {
            put(px, x as i32 + dx, y as i32 + dy, c);
        }
        if hatch && i % 3 == 0 {
            for k in 1..4 {
                put(px, x as i32 - k, y as i32 + k, c);
            }
        }
        angle += (rng.unit() - 0.5) * wobble;
        x += angle.cos();
        y += angle.sin();
    }
}

fn put(px: &mut [Rgb], x: i32, y: i32, c: Rgb) {
    if (0..S as i32).contains(&x) && (0..S as i32).contains(&y) {
        px[y as usize * S + x as usize] = c;
    }
}

/// Blocks of `cell` × `cell` pixels take their mean colour: pixel art at a coarser grid.
fn coarsen(px: &mut [Rgb], cell: usize) {
    for by in (0..S).step_by(cell) {
        for bx in (0..S).step_by(cell) {
            let (mut sum, mut n) = ([0u32; 3], 0u32);
            for y in by..(by + cell).min(S) {
                for x in bx..(bx + cell).min(S) {
                    for (s, v) in sum.iter_mut().zip(px[y * S + x]) {
                        *s += v as u32;
                    }
                    n += 1;
                }
            }
            let mean = sum.map(|s| (s / n) as u8);
            for y in by..(by + cell).min(S) {
                for x in bx..(bx + cell).min(S) {
                    px[y * S + x] = mean;
                }
            }
        }
    }
}

/// A 3×3 box blur.
fn blur(px: &mut [Rgb]) {
    let src = px.to_vec();
    for y in 0..S {
        for x in 0..S {
            let (mut sum, mut n) = ([0u32; 3], 0u32);
            for yy in y.saturating_sub(1)..(y + 2).min(S) {
                for xx in x.saturating_sub(1)..(x + 2).min(S) {
                    for (s, v) in sum.iter_mut().zip(src[yy * S + xx]) {
                        *s += v as u32;
                    }
                    n += 1;
                }
            }
            px[y * S + x] = sum.map(|s| (s / n) as u8);
        }
    }
}

/// Uniform noise of up to ± `amp` on every channel.
fn noise(rng: &mut Rng, px: &mut [Rgb], amp: i32) {
    for c in px.iter_mut() {
        for v in c.iter_mut() {
            *v = (*v as i32 + rng.range(-amp, amp)).clamp(0, 255) as u8;
        }
    }
}

/// Smooth noise in [0, 1) at (x, y), a lattice every `cell` pixels.
fn value_noise(seed: u64, x: usize, y: usize, cell: usize) -> f32 {
    let lattice = |i: usize, j: usize| -> f32 {
        let h = crate::game::rng::mix(seed ^ ((i as u64) << 20) ^ j as u64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::PLAYER_COLOR;
    use crate::game::theme::distance;

    #[test]
    fn pictures_are_seeded_varied_and_keep_the_players_colour_to_the_player() {
        let a = picture(3);
        assert_eq!(a.len(), FRAME_BYTES);
        assert_eq!(a, picture(3), "the same seed, the same picture");
        let many: Vec<Vec<u8>> = (0..200).map(picture).collect();
        let distinct: std::collections::BTreeSet<&Vec<u8>> = many.iter().collect();
        assert_eq!(distinct.len(), many.len());
        let mut with_player = 0;
        for p in &many {
            // Colours: more than a couple in most pictures.
            let colours: std::collections::BTreeSet<&[u8]> = p.chunks(3).collect();
            assert!(colours.len() >= 2, "a picture of one colour");
            let magenta = p
                .chunks(3)
                .filter(|c| distance([c[0], c[1], c[2]], PLAYER_COLOR) < 200)
                .count();
            // Only the player's 32 body pixels come near its colour; where it is drawn over
            // the edge fewer show.
            assert!(magenta <= 32, "{magenta} pixels near the player's colour");
            with_player += usize::from(magenta > 0);
        }
        assert!(
            (100..180).contains(&with_player),
            "{with_player} of 200 with the player"
        );
    }
}
