//! Level generation: a side-scrolling level built from a seed and a difficulty.
//!
//! A level is a grid 8 tiles tall (one screen) and 48–80 tiles wide: ground columns of varying
//! height with pits between them, one-way floating platforms, crate stacks, coins, walking
//! enemies and a goal flag near the right end. The generator walks left to right placing
//! segments (flat runs, steps, pits, platforms, crates) drawn from the level's own PRNG, and
//! keeps every gap and step within the player's jump, so every level can be finished. The same
//! seed and difficulty always give the same level, byte for byte.

use super::rng::Rng;
use super::theme::{Art, THEMES, TILE};

/// Height of a level in tiles (exactly one screen).
pub const ROWS: usize = 8;

/// What occupies one tile of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tile {
    Empty = 0,
    /// Solid ground.
    Ground,
    /// A one-way platform: solid only from above, and Down drops through it.
    Platform,
    /// A solid block standing on the ground.
    Crate,
}

impl Tile {
    /// Blocks movement from every side.
    pub fn is_solid(self) -> bool {
        matches!(self, Tile::Ground | Tile::Crate)
    }
}

/// An enemy's starting place: top-left in pixels, and walking direction (−1 or +1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnemySpawn {
    pub x: i32,
    pub y: i32,
    pub dir: i32,
}

/// A generated level; immutable once built.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub seed: u64,
    pub difficulty: f32,
    pub theme: usize,
    /// Width in tiles.
    pub width: usize,
    /// `tiles[row * width + col]`, row 0 at the top.
    pub tiles: Vec<Tile>,
    /// How each tile is drawn, same indexing.
    pub art: Vec<Art>,
    /// Coins, top-left in pixels (4×4 each).
    pub coins: Vec<(i32, i32)>,
    pub enemies: Vec<EnemySpawn>,
    /// Column of the goal flag; touching it wins.
    pub goal_col: usize,
    /// The player's start, top-left in pixels.
    pub start: (i32, i32),
}

const START_COLS: usize = 6;
const END_COLS: usize = 9;

impl Level {
    pub fn generate(seed: u64, difficulty: f32) -> Level {
        let d = if difficulty.is_nan() {
            0.5
        } else {
            difficulty.clamp(0.0, 1.0)
        };
        let mut rng = Rng::new(seed);
        let theme = rng.below(THEMES as u64) as usize;
        let width = 48 + (32.0 * d).round() as usize;
        let mut b = Builder {
            width,
            heights: vec![2; width],
            platforms: Vec::new(),
            crates: Vec::new(),
            coins: Vec::new(),
            enemies: Vec::new(),
        };
        let mut h = 2i32;
        let mut x = START_COLS;
        while x < width - END_COLS {
            let room = width - END_COLS - x;
            let kind = rng.weighted(&[3.0, 1.0 + 2.0 * d, 1.5, 1.5, 1.0 + d]);
            let used = match kind {
                0 => b.flat(&mut rng, x, room, &mut h, d),
                1 => b.pit(&mut rng, x, room, &mut h, d),
                2 => b.step(&mut rng, x, room, &mut h),
                3 => b.platform(&mut rng, x, room, &mut h, d),
                _ => b.crates(&mut rng, x, room, h, d),
            };
            x += used.max(1);
        }
        for col in x.min(width)..width {
            b.heights[col] = h;
        }
        b.finish(seed, d, theme)
    }

    /// The tile at column `tx`, row `ty`. Outside the grid: the left and right edges are walls,
    /// above the top and below the bottom is empty (falling out of the bottom is a pit).
    #[inline]
    pub fn tile(&self, tx: i32, ty: i32) -> Tile {
        if tx < 0 || tx >= self.width as i32 {
            Tile::Ground
        } else if ty < 0 || ty >= ROWS as i32 {
            Tile::Empty
        } else {
            self.tiles[ty as usize * self.width + tx as usize]
        }
    }

    /// Width in pixels.
    pub fn width_px(&self) -> i32 {
        (self.width * TILE) as i32
    }
}

struct Builder {
    width: usize,
    /// Ground height per column in tiles; 0 is a pit.
    heights: Vec<i32>,
    /// (first column, length, row)
    platforms: Vec<(usize, usize, usize)>,
    /// (column, stack height)
    crates: Vec<(usize, i32)>,
    coins: Vec<(i32, i32)>,
    enemies: Vec<EnemySpawn>,
}

fn surface_row(h: i32) -> i32 {
    ROWS as i32 - h
}

impl Builder {
    fn fill(&mut self, x: usize, len: usize, h: i32) {
        for col in x..(x + len).min(self.width) {
            self.heights[col] = h;
        }
    }

    fn coin_row(&mut self, x: usize, len: usize, row: i32) {
        for col in x..x + len {
            self.coins
                .push(((col * TILE) as i32 + 2, row * TILE as i32 + 2));
        }
    }

    fn flat(&mut self, rng: &mut Rng, x: usize, room: usize, h: &mut i32, d: f32) -> usize {
        let len = (rng.range(3, 6) as usize).min(room);
        if rng.chance(0.3) {
            *h = (*h + rng.range(-1, 1)).clamp(1, 4);
        }
        self.fill(x, len, *h);
        if len >= 4 && rng.chance(0.2 + 0.5 * d) {
            self.enemy(x + len / 2, *h, rng);
        }
        if len >= 3 && rng.chance(0.4) {
            self.coin_row(x + 1, 2, surface_row(*h) - 2);
        }
        len
    }

    fn step(&mut self, rng: &mut Rng, x: usize, room: usize, h: &mut i32) -> usize {
        let len = (rng.range(3, 5) as usize).min(room);
        let delta = [-2, -1, 1, 2][rng.below(4) as usize];
        *h = (*h + delta).clamp(1, 4);
        self.fill(x, len, *h);
        len
    }

    fn pit(&mut self, rng: &mut Rng, x: usize, room: usize, h: &mut i32, d: f32) -> usize {
        if room < 5 {
            return self.flat(rng, x, room, h, d);
        }
        let gap = rng.range(1, 2 + (d * 1.99) as i32).min(3) as usize;
        self.fill(x, gap, 0);
        if rng.chance(0.5) {
            self.coins.push((
                (x * TILE) as i32 + (gap * TILE) as i32 / 2 - 2,
                (surface_row(*h) - 3) * TILE as i32 + 2,
            ));
        }
        // Land no higher than one tile above the take-off.
        *h = (*h + rng.range(-1, 1)).clamp(1, 4);
        let land = (rng.range(2, 3) as usize).min(room - gap);
        self.fill(x + gap, land, *h);
        gap + land
    }

    fn platform(&mut self, rng: &mut Rng, x: usize, room: usize, h: &mut i32, d: f32) -> usize {
        let len = (rng.range(5, 7) as usize).min(room);
        if len < 5 {
            return self.flat(rng, x, room, h, d);
        }
        let plen = rng.range(2, 3) as usize;
        let row = (surface_row(*h) - rng.range(2, 3)).max(1) as usize;
        self.fill(x, len, *h);
        if rng.chance(0.2 + 0.6 * d) {
            // A pit under the platform, no wider than a jump.
            self.fill(x + 1, plen.min(3), 0);
        }
        self.platforms.push((x + 1, plen, row));
        if rng.chance(0.6) {
            self.coin_row(x + 1, plen, row as i32 - 1);
        }
        len
    }

    fn crates(&mut self, rng: &mut Rng, x: usize, room: usize, h: i32, d: f32) -> usize {
        let len = (rng.range(4, 5) as usize).min(room);
        self.fill(x, len, h);
        if len >= 4 {
            let stack = if rng.chance(0.3 + 0.5 * d) { 2 } else { 1 };
            self.crates.push((x + 2, stack));
            if rng.chance(0.5) {
                self.coin_row(x + 2, 1, surface_row(h) - stack - 1);
            }
        }
        len
    }

    fn enemy(&mut self, col: usize, h: i32, rng: &mut Rng) {
        self.enemies.push(EnemySpawn {
            x: (col * TILE) as i32 + 1,
            y: surface_row(h) * TILE as i32 - 6,
            dir: if rng.chance(0.5) { 1 } else { -1 },
        });
    }

    fn finish(self, seed: u64, difficulty: f32, theme: usize) -> Level {
        let w = self.width;
        let mut tiles = vec![Tile::Empty; ROWS * w];
        for (col, &h) in self.heights.iter().enumerate() {
            for row in surface_row(h).max(0) as usize..ROWS {
                if h > 0 {
                    tiles[row * w + col] = Tile::Ground;
                }
            }
        }
        for &(x, len, row) in &self.platforms {
            for col in x..(x + len).min(w) {
                tiles[row * w + col] = Tile::Platform;
            }
        }
        for &(col, stack) in &self.crates {
            let top = surface_row(self.heights[col]);
            for row in (top - stack).max(0)..top {
                tiles[row as usize * w + col] = Tile::Crate;
            }
        }
        let art = (0..ROWS * w)
            .map(|i| match tiles[i] {
                Tile::Empty => Art::Empty,
                Tile::Ground if i < w || tiles[i - w] != Tile::Ground => Art::GroundTop,
                Tile::Ground => Art::Ground,
                Tile::Platform => Art::Platform,
                Tile::Crate => Art::Crate,
            })
            .collect();
        let start_h = self.heights[2];
        Level {
            seed,
            difficulty,
            theme,
            width: w,
            tiles,
            art,
            coins: self.coins,
            enemies: self.enemies,
            goal_col: w - 4,
            start: (2 * TILE as i32 + 1, surface_row(start_h) * TILE as i32 - 7),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_level_and_seeds_differ() {
        let a = Level::generate(42, 0.5);
        assert_eq!(a, Level::generate(42, 0.5));
        let differ = (0..20)
            .filter(|&s| Level::generate(s, 0.5).tiles != a.tiles)
            .count();
        assert!(differ >= 19);
    }

    #[test]
    fn levels_have_the_promised_features() {
        let (mut pits, mut plats, mut crates, mut enemies, mut coins) = (0, 0, 0, 0, 0);
        for seed in 0..50 {
            let l = Level::generate(seed, 0.5);
            assert!(l.width >= 48 && l.goal_col < l.width);
            let bottom = &l.tiles[(ROWS - 1) * l.width..];
            pits += bottom.iter().filter(|&&t| t == Tile::Empty).count();
            plats += l.tiles.iter().filter(|&&t| t == Tile::Platform).count();
            crates += l.tiles.iter().filter(|&&t| t == Tile::Crate).count();
            enemies += l.enemies.len();
            coins += l.coins.len();
            // The start and the goal stand on ground.
            assert_eq!(l.tile(2, ROWS as i32 - 1), Tile::Ground);
            assert_eq!(l.tile(l.goal_col as i32, ROWS as i32 - 1), Tile::Ground);
        }
        assert!(pits > 0 && plats > 0 && crates > 0 && enemies > 0 && coins > 0);
    }

    #[test]
    fn pits_are_at_most_three_tiles_wide() {
        for seed in 0..200 {
            let l = Level::generate(seed, 1.0);
            let bottom = &l.tiles[(ROWS - 1) * l.width..];
            let mut run = 0;
            for &t in bottom {
                run = if t == Tile::Empty { run + 1 } else { 0 };
                assert!(run <= 3, "seed {seed}");
            }
        }
    }

    #[test]
    fn difficulty_makes_longer_levels() {
        assert!(Level::generate(1, 1.0).width > Level::generate(1, 0.0).width);
    }
}
