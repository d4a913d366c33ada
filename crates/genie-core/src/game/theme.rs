//! Visual themes: the palettes a level is drawn with, and the tile art built from them.
//!
//! Each level picks one theme from its seed. Tiles are 8×8 and flat-coloured with a little
//! shading so that edges read clearly at 64×64. No theme uses [`super::PLAYER_COLOR`] (or anything
//! near it), so the player can be found in a frame by its colour alone.

use std::sync::{Arc, OnceLock};

pub type Rgb = [u8; 3];

/// Side of a tile, in pixels.
pub const TILE: usize = 8;

/// One theme's palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub name: &'static str,
    pub sky_top: Rgb,
    pub sky_bottom: Rgb,
    pub ground: Rgb,
    pub ground_top: Rgb,
    pub platform: Rgb,
    pub crate_fill: Rgb,
    pub crate_edge: Rgb,
    pub coin: Rgb,
    pub enemy: Rgb,
    pub enemy_eye: Rgb,
    pub flag: Rgb,
    pub pole: Rgb,
}

/// The player's eye and the dash streak: drawn with the player, never used by a theme for
/// anything else, and not [`super::PLAYER_COLOR`].
pub const PLAYER_EYE: Rgb = [16, 16, 24];
pub const DASH_STREAK: Rgb = [255, 255, 255];

pub const PALETTES: [Palette; 5] = [
    Palette {
        name: "meadow",
        sky_top: [84, 140, 250],
        sky_bottom: [160, 205, 255],
        ground: [136, 84, 40],
        ground_top: [60, 180, 60],
        platform: [205, 125, 60],
        crate_fill: [190, 140, 70],
        crate_edge: [110, 70, 30],
        coin: [255, 210, 0],
        enemy: [200, 40, 30],
        enemy_eye: [255, 255, 255],
        flag: [255, 255, 255],
        pole: [80, 80, 80],
    },
    Palette {
        name: "desert",
        sky_top: [235, 190, 110],
        sky_bottom: [250, 228, 170],
        ground: [196, 146, 78],
        ground_top: [228, 196, 104],
        platform: [150, 100, 50],
        crate_fill: [120, 80, 40],
        crate_edge: [70, 45, 20],
        coin: [255, 250, 120],
        enemy: [60, 100, 40],
        enemy_eye: [250, 250, 250],
        flag: [40, 120, 200],
        pole: [90, 60, 30],
    },
    Palette {
        name: "night",
        sky_top: [14, 18, 40],
        sky_bottom: [44, 50, 90],
        ground: [88, 88, 108],
        ground_top: [150, 150, 178],
        platform: [70, 160, 170],
        crate_fill: [150, 110, 60],
        crate_edge: [90, 60, 30],
        coin: [255, 220, 60],
        enemy: [240, 140, 20],
        enemy_eye: [20, 20, 20],
        flag: [60, 230, 120],
        pole: [200, 200, 200],
    },
    Palette {
        name: "snow",
        sky_top: [160, 192, 226],
        sky_bottom: [222, 236, 250],
        ground: [118, 128, 150],
        ground_top: [250, 250, 255],
        platform: [90, 140, 205],
        crate_fill: [160, 100, 60],
        crate_edge: [90, 50, 20],
        coin: [255, 180, 0],
        enemy: [40, 60, 140],
        enemy_eye: [255, 255, 255],
        flag: [220, 30, 30],
        pole: [60, 60, 70],
    },
    Palette {
        name: "lava",
        sky_top: [56, 18, 18],
        sky_bottom: [116, 44, 20],
        ground: [72, 62, 62],
        ground_top: [210, 90, 20],
        platform: [135, 135, 135],
        crate_fill: [110, 90, 70],
        crate_edge: [60, 45, 35],
        coin: [255, 232, 90],
        enemy: [150, 220, 60],
        enemy_eye: [0, 0, 0],
        flag: [255, 255, 255],
        pole: [180, 180, 180],
    },
];

/// Number of themes.
pub const THEMES: usize = PALETTES.len();

/// How a tile is drawn (the level's physical tiles plus "ground with grass on top").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Art {
    Empty = 0,
    Ground,
    GroundTop,
    Platform,
    Crate,
}

pub(super) const ART_KINDS: usize = 5;

/// One row of a tile: 8 RGB pixels, or `None` where the sky shows through.
pub type TileRow = Option<[u8; TILE * 3]>;

/// What shows behind the tiles.
#[derive(Debug, Clone, PartialEq)]
pub enum Background {
    /// One colour per screen row (the themes' banded skies), each a full 64-pixel row ready to
    /// copy.
    Rows(Vec<[u8; 64 * 3]>),
    /// A picture `width` pixels wide and 64 tall (row-major RGB), anchored to the world and
    /// repeated along it: it scrolls with the tiles.
    Wide { width: usize, pixels: Vec<u8> },
}

/// Everything precomputed for drawing one look (a theme, or a look of [`super::look`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeArt {
    /// The sprites' colours (and, for a theme, the colours its tiles were built from).
    pub palette: Palette,
    pub background: Background,
    /// `tiles[art][variant][row]`: a tile's variant depends on where it is.
    pub tiles: [Vec<[TileRow; TILE]>; ART_KINDS],
}

impl ThemeArt {
    /// Background pixel at world column `x`, row `y`.
    pub fn background_pixel(&self, x: usize, y: usize) -> Rgb {
        match &self.background {
            Background::Rows(rows) => [rows[y][0], rows[y][1], rows[y][2]],
            Background::Wide { width, pixels } => {
                let i = (y * width + x % width) * 3;
                [pixels[i], pixels[i + 1], pixels[i + 2]]
            }
        }
    }

    /// Every colour this look can put in a frame without the player.
    pub fn colours(&self) -> Vec<Rgb> {
        let p = &self.palette;
        let mut all = vec![p.coin, p.enemy, p.enemy_eye, p.flag, p.pole];
        let background: &[u8] = match &self.background {
            Background::Rows(rows) => rows.as_flattened(),
            Background::Wide { pixels, .. } => pixels,
        };
        all.extend(background.chunks(3).map(|c| [c[0], c[1], c[2]]));
        for rows in self.tiles.iter().flatten() {
            for row in rows.iter().flatten() {
                all.extend(row.chunks(3).map(|c| [c[0], c[1], c[2]]));
            }
        }
        all.sort();
        all.dedup();
        all
    }
}

/// The art of theme `i` (`i < THEMES`), built once.
pub fn art(i: usize) -> Arc<ThemeArt> {
    static ART: OnceLock<Vec<Arc<ThemeArt>>> = OnceLock::new();
    ART.get_or_init(|| PALETTES.iter().map(|p| Arc::new(build(p))).collect())[i].clone()
}

pub(super) fn shade(c: Rgb, f: f32) -> Rgb {
    c.map(|v| (v as f32 * f).round().clamp(0.0, 255.0) as u8)
}

pub(super) fn lerp(a: Rgb, b: Rgb, t: f32) -> Rgb {
    std::array::from_fn(|k| (a[k] as f32 + (b[k] as f32 - a[k] as f32) * t).round() as u8)
}

fn row_of(f: impl Fn(usize) -> Rgb) -> [u8; TILE * 3] {
    let mut row = [0; TILE * 3];
    for x in 0..TILE {
        row[x * 3..x * 3 + 3].copy_from_slice(&f(x));
    }
    row
}

fn build(p: &Palette) -> ThemeArt {
    let sky_rows = (0..64)
        .map(|y| {
            // Banded rather than smooth, so the sky compresses to few tokens.
            let c = lerp(p.sky_top, p.sky_bottom, (y / 8) as f32 / 7.0);
            let mut row = [0; 64 * 3];
            for x in 0..64 {
                row[x * 3..x * 3 + 3].copy_from_slice(&c);
            }
            row
        })
        .collect();
    let speck = shade(p.ground, 0.8);
    let ground: [TileRow; TILE] = std::array::from_fn(|y| {
        Some(row_of(|x| {
            if (x, y) == (1, 2) || (x, y) == (5, 5) || (x, y) == (6, 1) {
                speck
            } else {
                p.ground
            }
        }))
    });
    let top_dark = shade(p.ground_top, 0.75);
    let ground_top: [TileRow; TILE] = std::array::from_fn(|y| match y {
        0..=1 => Some(row_of(|_| p.ground_top)),
        2 => Some(row_of(|x| if x % 3 == 1 { p.ground } else { top_dark })),
        _ => ground[y],
    });
    let platform: [TileRow; TILE] = std::array::from_fn(|y| match y {
        0 => Some(row_of(|_| shade(p.platform, 1.2))),
        1..=2 => Some(row_of(|x| {
            if x == 7 {
                shade(p.platform, 0.7)
            } else {
                p.platform
            }
        })),
        3 => Some(row_of(|_| shade(p.platform, 0.6))),
        _ => None,
    });
    let crate_tile: [TileRow; TILE] = std::array::from_fn(|y| {
        Some(row_of(|x| {
            if x == 0 || y == 0 || x == 7 || y == 7 || x == y || x == 7 - y {
                p.crate_edge
            } else {
                p.crate_fill
            }
        }))
    });
    ThemeArt {
        palette: *p,
        background: Background::Rows(sky_rows),
        tiles: [
            vec![[None; TILE]],
            vec![ground],
            vec![ground_top],
            vec![platform],
            vec![crate_tile],
        ],
    }
}

/// Every colour theme `i` can put in a frame without the player.
pub fn colours(i: usize) -> Vec<Rgb> {
    art(i).colours()
}

/// L1 distance between two colours.
pub fn distance(a: Rgb, b: Rgb) -> u32 {
    a.iter().zip(&b).map(|(&x, &y)| x.abs_diff(y) as u32).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::PLAYER_COLOR;

    #[test]
    fn no_theme_colour_is_near_the_player() {
        for (i, palette) in PALETTES.iter().enumerate() {
            for c in colours(i) {
                assert!(
                    distance(c, PLAYER_COLOR) >= 200,
                    "theme {} uses {c:?}, too close to PLAYER_COLOR",
                    palette.name
                );
            }
        }
        assert!(distance(PLAYER_EYE, PLAYER_COLOR) >= 200);
        assert!(distance(DASH_STREAK, PLAYER_COLOR) >= 200);
    }

    #[test]
    fn at_least_four_distinct_themes() {
        const { assert!(THEMES >= 4) };
        for (i, a) in PALETTES.iter().enumerate() {
            for b in &PALETTES[i + 1..] {
                assert_ne!(a.sky_top, b.sky_top);
                assert_ne!(a.ground, b.ground);
            }
        }
    }
}
