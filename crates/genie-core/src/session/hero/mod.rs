//! The hero of a prompt: which thing the player controls. The world model has only ever seen
//! one convention, the player drawn as the game's magenta sprite ([`PLAYER_COLOR`], 6×7
//! pixels), so a picture from elsewhere gets its hero redrawn in that convention before it is
//! tokenized: the figure the user points at (`--hero X,Y`, in the picture's own pixels) or, by
//! default, the one [`guess::guess`] finds most hero-like, is erased from the 64×64 frame and
//! the game's player sprite drawn standing where it stood.
//!
//! A picture that already shows the game's player (a frame of our own levels) is left alone
//! unless the user points at a hero.

pub mod guess;
pub mod segment;

use image::{DynamicImage, RgbImage, RgbaImage, imageops::FilterType};

use crate::game::theme::PLAYER_EYE;
use crate::game::{FRAME_SIZE, PLAYER_COLOR};
use segment::{Figure, Segmentation, WORK};

/// The game's player standing, facing right (`P` body, `e` eye): the sprite of
/// `game::render`, checked against the game's own frames by a test.
pub const PLAYER_SPRITE: [&str; 7] = [
    ".PPPP.", "PPPPeP", "PPPPPP", "PPPPPP", ".PPPP.", ".P..P.", ".P..P.",
];
pub(crate) const SPRITE_W: i32 = 6;
pub(crate) const SPRITE_H: i32 = 7;

/// Working pixels around a pointed place searched for a figure when the point itself is not
/// on one (a click beside a small figure): 2 frame pixels.
const POINT_RADIUS: u32 = 4;

/// Pixels within this L1 distance of [`PLAYER_COLOR`] count as the game's player when deciding
/// whether a picture already follows the convention.
const CONVENTION_TOLERANCE: u32 = 60;
/// ... and at least this many of them (the sprite has 32).
const CONVENTION_PIXELS: usize = 6;

/// Which thing in a prompt is the hero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeroChoice {
    /// The game's player if the picture shows it, else the most hero-like figure, else none.
    #[default]
    Auto,
    /// Leave the picture as it is.
    None,
    /// The figure at this place, in the picture's own pixels.
    At { x: u32, y: u32 },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--hero {given:?}: expected X,Y (the hero's place in the picture's pixels), auto or none")]
pub struct HeroParseError {
    pub given: String,
}

impl std::str::FromStr for HeroChoice {
    type Err = HeroParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || HeroParseError { given: s.into() };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            other => {
                let (x, y) = other.split_once(',').ok_or_else(err)?;
                Ok(Self::At {
                    x: x.trim().parse().map_err(|_| err())?,
                    y: y.trim().parse().map_err(|_| err())?,
                })
            }
        }
    }
}

/// Why a hero could not be placed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeroError {
    #[error("the hero's place {x},{y} is outside the picture ({width}×{height})")]
    Outside {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    },
    #[error(
        "the hero's place {x},{y} is outside the centred square genie keeps of the picture \
         (x {x0}..{x1}, y {y0}..{y1})"
    )]
    Cropped {
        x: u32,
        y: u32,
        x0: u32,
        x1: u32,
        y0: u32,
        y1: u32,
    },
    #[error(
        "nothing figure-like at {x},{y}: the place is on a large area (sky, ground) or a \
         figure too big to be a hero; point at the hero itself"
    )]
    NotAFigure { x: u32, y: u32 },
}

/// What the hero step did to a prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeroOutcome {
    /// `--hero none`.
    Off,
    /// The picture already shows the game's player.
    AlreadyDrawn,
    /// No figure looked enough like a hero; the picture is unchanged.
    NotFound,
    Redrawn(Placement),
}

impl std::fmt::Display for HeroOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("hero: the picture is left as drawn (--hero none)"),
            Self::AlreadyDrawn => f.write_str("hero: the picture already shows the game's player"),
            Self::NotFound => f.write_str(
                "hero: nothing looked like a hero, the picture is left as drawn; point at it with --hero X,Y",
            ),
            Self::Redrawn(p) if p.guessed => write!(
                f,
                "hero: guessed at {},{} (score {:.2}) and redrawn as the game's player; point at another with --hero X,Y",
                p.at.0, p.at.1, p.score
            ),
            Self::Redrawn(p) => write!(
                f,
                "hero: redrawn as the game's player at {},{}",
                p.at.0, p.at.1
            ),
        }
    }
}

/// Where a hero was redrawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The hero's place in the picture's own pixels (the centre of the figure).
    pub at: (u32, u32),
    /// Top-left of the player's sprite in the 64×64 frame.
    pub sprite: (i32, i32),
    /// Found by the automatic guess rather than pointed at.
    pub guessed: bool,
    /// The guess's score (0..1); 1 where pointed at.
    pub score: f64,
}

/// The centred square of a picture that becomes the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x0: u32,
    pub y0: u32,
    pub side: u32,
}

impl Crop {
    pub fn of(width: u32, height: u32) -> Self {
        let side = width.min(height);
        Self {
            x0: (width - side) / 2,
            y0: (height - side) / 2,
            side,
        }
    }

    /// A picture pixel to the working image, or why it cannot be one.
    fn to_work(self, x: u32, y: u32, width: u32, height: u32) -> Result<(u32, u32), HeroError> {
        if x >= width || y >= height {
            return Err(HeroError::Outside {
                x,
                y,
                width,
                height,
            });
        }
        let inside = |v: u32, v0: u32| v >= v0 && v < v0 + self.side;
        if !inside(x, self.x0) || !inside(y, self.y0) {
            return Err(HeroError::Cropped {
                x,
                y,
                x0: self.x0,
                x1: self.x0 + self.side - 1,
                y0: self.y0,
                y1: self.y0 + self.side - 1,
            });
        }
        let map = |v: u32, v0: u32| ((v - v0) as u64 * WORK as u64 / self.side as u64) as u32;
        Ok((map(x, self.x0), map(y, self.y0)))
    }

    /// The centre of a working pixel, in picture pixels.
    fn to_picture(self, wx: f64, wy: f64) -> (u32, u32) {
        let map = |v: f64, v0: u32| {
            (v0 as f64 + (v + 0.5) * self.side as f64 / WORK as f64).floor() as u32
        };
        (
            map(wx, self.x0).min(self.x0 + self.side - 1),
            map(wy, self.y0).min(self.y0 + self.side - 1),
        )
    }
}

/// The picture's centred square, alpha flattened onto white, at [`WORK`]×[`WORK`]: a smooth
/// filter when shrinking (so noise and JPEG ringing average out), whole pixels when growing
/// (pixel art keeps its edges).
pub fn work_image(img: &RgbaImage) -> RgbImage {
    let crop = Crop::of(img.width(), img.height());
    let square = image::imageops::crop_imm(img, crop.x0, crop.y0, crop.side, crop.side).to_image();
    let filter = if crop.side > WORK {
        FilterType::Triangle
    } else {
        FilterType::Nearest
    };
    let rgba = DynamicImage::ImageRgba8(square)
        .resize_exact(WORK, WORK, filter)
        .to_rgba8();
    RgbImage::from_fn(WORK, WORK, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as u32;
        let blend = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
    })
}

/// Whether a 64×64 frame already shows the game's player.
pub fn shows_player(frame: &[u8]) -> bool {
    crate::game::player_pixels_within(frame, CONVENTION_TOLERANCE) >= CONVENTION_PIXELS
}

/// Finds the hero of `choice` in the last of `images` and redraws it in the game's
/// convention in every frame (`frames[i]` is `images[i]` at 64×64). Earlier frames of a clip are
/// redrawn where a figure is at the same place and left as they are where none is.
pub fn apply(
    images: &[RgbaImage],
    frames: &mut [Vec<u8>],
    choice: HeroChoice,
) -> Result<HeroOutcome, HeroError> {
    assert_eq!(images.len(), frames.len(), "one frame per image");
    let (Some(last), Some(last_frame)) = (images.last(), frames.last()) else {
        return Ok(HeroOutcome::NotFound);
    };
    let (width, height) = last.dimensions();
    let crop = Crop::of(width, height);
    let seg = Segmentation::new(work_image(last));
    let (figure, guessed, score) = match choice {
        HeroChoice::None => return Ok(HeroOutcome::Off),
        HeroChoice::At { x, y } => {
            let (wx, wy) = crop.to_work(x, y, width, height)?;
            let figure = pointed_figure(&seg, wx, wy).ok_or(HeroError::NotAFigure { x, y })?;
            (figure, false, 1.0)
        }
        HeroChoice::Auto => {
            if shows_player(last_frame) {
                return Ok(HeroOutcome::AlreadyDrawn);
            }
            match guess::guess(&seg) {
                Some(g) => (g.figure, true, g.score),
                None => return Ok(HeroOutcome::NotFound),
            }
        }
    };
    let b = figure.bbox;
    let (cx, cy) = ((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2);
    let n = frames.len();
    let sprite = redraw(&mut frames[n - 1], &seg, &figure);
    for (img, frame) in images[..n - 1].iter().zip(&mut frames[..n - 1]) {
        let seg = Segmentation::new(work_image(img));
        if let Some(figure) = pointed_figure(&seg, cx, cy) {
            redraw(frame, &seg, &figure);
        }
    }
    Ok(HeroOutcome::Redrawn(Placement {
        at: crop.to_picture((b.x0 + b.x1) as f64 / 2.0, (b.y0 + b.y1) as f64 / 2.0),
        sprite,
        guessed,
        score,
    }))
}

/// The figure a point names: of the figures grown from the regions near it (the point may be
/// on an eye, an outline, or just beside a small figure), the most hero-like.
fn pointed_figure(seg: &Segmentation, x: u32, y: u32) -> Option<Figure> {
    seg.figures_near(x, y, POINT_RADIUS)
        .into_iter()
        .map(|f| (guess::score(seg, &f), f))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| f)
}

/// The frame pixels a figure covers: any frame pixel holding one of its working pixels, grown
/// by one pixel (the resize to 64×64 blended the figure's edge into its neighbours).
pub fn figure_mask(seg: &Segmentation, figure: &Figure) -> Vec<bool> {
    let s = FRAME_SIZE;
    let scale = (WORK as usize) / s;
    let mut mask = vec![false; s * s];
    let b = figure.bbox;
    for y in b.y0..=b.y1 {
        for x in b.x0..=b.x1 {
            if seg.in_figure(figure, (y * WORK + x) as usize) {
                mask[(y as usize / scale) * s + x as usize / scale] = true;
            }
        }
    }
    let mut grown = mask.clone();
    for y in 0..s {
        for x in 0..s {
            if mask[y * s + x] {
                for ny in y.saturating_sub(1)..(y + 2).min(s) {
                    for nx in x.saturating_sub(1)..(x + 2).min(s) {
                        grown[ny * s + nx] = true;
                    }
                }
            }
        }
    }
    grown
}

/// Erases `figure` from a 64×64 frame and draws the game's player standing where its feet
/// were, centred on it; returns the sprite's top-left. Each erased pixel is filled from the
/// nearest kept pixels left and right of it in its row: in a side view the scenery behind a
/// figure runs across (sky bands, a ground line), so rows continue it best.
pub fn redraw(frame: &mut [u8], seg: &Segmentation, figure: &Figure) -> (i32, i32) {
    let s = FRAME_SIZE;
    fill_rows(frame, &figure_mask(seg, figure));
    let scale = (WORK as usize / s) as f64;
    let b = figure.bbox;
    let centre = (b.x0 + b.x1 + 1) as f64 / 2.0 / scale;
    let feet = (b.y1 as f64 / scale).floor() as i32;
    let left = ((centre - SPRITE_W as f64 / 2.0).round() as i32).clamp(0, s as i32 - SPRITE_W);
    let top = (feet - SPRITE_H + 1).clamp(0, s as i32 - SPRITE_H);
    draw_player(frame, left, top);
    (left, top)
}

/// Fills the pixels of a 64×64 frame where `mask` is set, each from the nearest unmasked
/// pixels left and right of it in its row (a straight blend between them, or the one there is).
pub(crate) fn fill_rows(frame: &mut [u8], mask: &[bool]) {
    let s = FRAME_SIZE;
    for y in 0..s {
        let row = &mut frame[y * s * 3..(y + 1) * s * 3];
        let mut x = 0;
        while x < s {
            if !mask[y * s + x] {
                x += 1;
                continue;
            }
            let start = x;
            while x < s && mask[y * s + x] {
                x += 1;
            }
            let left = start.checked_sub(1);
            let right = (x < s).then_some(x);
            for xi in start..x {
                for c in 0..3 {
                    let v = match (left, right) {
                        (Some(l), Some(r)) => {
                            let t = (xi - l) as f32 / (r - l) as f32;
                            row[l * 3 + c] as f32 * (1.0 - t) + row[r * 3 + c] as f32 * t
                        }
                        (Some(l), None) => row[l * 3 + c] as f32,
                        (None, Some(r)) => row[r * 3 + c] as f32,
                        (None, None) => row[xi * 3 + c] as f32,
                    };
                    row[xi * 3 + c] = v.round() as u8;
                }
            }
        }
    }
}

/// Draws [`PLAYER_SPRITE`] with its top-left at (x, y).
pub fn draw_player(frame: &mut [u8], x: i32, y: i32) {
    for (dy, row) in PLAYER_SPRITE.iter().enumerate() {
        for (dx, c) in row.bytes().enumerate() {
            let colour = match c {
                b'P' => PLAYER_COLOR,
                b'e' => PLAYER_EYE,
                _ => continue,
            };
            let (px, py) = (x + dx as i32, y + dy as i32);
            if (0..FRAME_SIZE as i32).contains(&px) && (0..FRAME_SIZE as i32).contains(&py) {
                let i = (py as usize * FRAME_SIZE + px as usize) * 3;
                frame[i..i + 3].copy_from_slice(&colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{Game, find_player};
    use image::Rgba;

    const SKY: [u8; 3] = [200, 230, 250];
    const GROUND: [u8; 3] = [120, 80, 40];
    const BODY: [u8; 3] = [30, 60, 200];

    /// A 64×64 side view: sky, ground from row 56, a blue figure (body x 30..35, y 46..56, and
    /// a head) standing on it.
    fn picture() -> RgbaImage {
        RgbaImage::from_fn(64, 64, |x, y| {
            let c = if y >= 56 {
                GROUND
            } else if (30..35).contains(&x) && (46..56).contains(&y) {
                BODY
            } else if (31..34).contains(&x) && (43..46).contains(&y) {
                [240, 200, 170]
            } else {
                SKY
            };
            Rgba([c[0], c[1], c[2], 255])
        })
    }

    fn frame_of(img: &RgbaImage) -> Vec<u8> {
        img.pixels().flat_map(|p| [p[0], p[1], p[2]]).collect()
    }

    #[test]
    fn the_sprite_is_the_games_player() {
        // Some level starts with the player standing and facing right: its pixels must be
        // exactly PLAYER_SPRITE.
        let found = (0..20).any(|seed| {
            let frame = Game::new(seed).frame();
            let is = |x: usize, y: usize, c: [u8; 3]| frame[(y * 64 + x) * 3..][..3] == c;
            let Some((cx, cy)) = find_player(&frame) else {
                return false;
            };
            (0..64 - 6).any(|x0| {
                (0..64 - 7).any(|y0| {
                    ((x0 as f32 - cx).abs() < 4.0 && (y0 as f32 - cy).abs() < 5.0)
                        && PLAYER_SPRITE.iter().enumerate().all(|(dy, row)| {
                            row.bytes().enumerate().all(|(dx, c)| {
                                let (x, y) = (x0 + dx, y0 + dy);
                                match c {
                                    b'P' => is(x, y, PLAYER_COLOR),
                                    b'e' => is(x, y, PLAYER_EYE),
                                    _ => !is(x, y, PLAYER_COLOR) && !is(x, y, PLAYER_EYE),
                                }
                            })
                        })
                })
            })
        });
        assert!(found, "PLAYER_SPRITE no longer matches the game's player");
    }

    #[test]
    fn pointing_redraws_the_figure_as_the_player_and_changes_nothing_else() {
        let img = picture();
        let before = frame_of(&img);
        let mut frames = vec![before.clone()];
        let outcome = apply(
            std::slice::from_ref(&img),
            &mut frames,
            HeroChoice::At { x: 32, y: 50 },
        )
        .unwrap();
        let HeroOutcome::Redrawn(p) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(!p.guessed);
        // Feet on the ground (row 55), centred on the figure (x 30..35 → centre 32.5).
        assert_eq!(p.sprite, (30, 49));
        let frame = &frames[0];
        let (x, y) = find_player(frame).expect("the player is drawn");
        assert!(
            (x - 32.5).abs() <= 1.0 && (y - 52.0).abs() <= 1.5,
            "{x},{y}"
        );
        // The figure is gone: no blue or skin pixel is left.
        assert!(frame.chunks(3).all(|c| c != BODY && c != [240, 200, 170]));
        // Outside the figure (grown by a pixel) and the sprite, nothing changed.
        for y in 0..64 {
            for x in 0..64 {
                let near_figure = (29..=35).contains(&x) && (42..=56).contains(&y);
                let in_sprite = (30..36).contains(&x) && (49..56).contains(&y);
                if !near_figure && !in_sprite {
                    let i = (y * 64 + x) * 3;
                    assert_eq!(frame[i..i + 3], before[i..i + 3], "pixel {x},{y}");
                }
            }
        }
        // Where the figure was and the sprite is not, the sky came back.
        let i = (44 * 64 + 32) * 3;
        assert_eq!(frame[i..i + 3], SKY);
    }

    #[test]
    fn the_guess_finds_the_figure_and_leaves_the_games_own_frames_alone() {
        let img = picture();
        let mut frames = vec![frame_of(&img)];
        let outcome = apply(std::slice::from_ref(&img), &mut frames, HeroChoice::Auto).unwrap();
        let HeroOutcome::Redrawn(p) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(p.guessed && p.score > guess::MIN_SCORE);
        assert!(
            (31..=34).contains(&p.at.0) && (43..56).contains(&p.at.1),
            "{p:?}"
        );
        assert!(shows_player(&frames[0]));

        let game = Game::new(5).frame();
        let img = RgbaImage::from_fn(64, 64, |x, y| {
            let i = ((y * 64 + x) * 3) as usize;
            Rgba([game[i], game[i + 1], game[i + 2], 255])
        });
        let mut frames = vec![game.clone()];
        let outcome = apply(std::slice::from_ref(&img), &mut frames, HeroChoice::Auto).unwrap();
        assert_eq!(outcome, HeroOutcome::AlreadyDrawn);
        assert_eq!(frames[0], game);
        let outcome = apply(std::slice::from_ref(&img), &mut frames, HeroChoice::None).unwrap();
        assert_eq!(outcome, HeroOutcome::Off);
    }

    #[test]
    fn hero_places_parse_and_bad_ones_are_refused() {
        assert_eq!("12,30".parse(), Ok(HeroChoice::At { x: 12, y: 30 }));
        assert_eq!(" 7 , 8 ".parse(), Ok(HeroChoice::At { x: 7, y: 8 }));
        assert_eq!("AUTO".parse(), Ok(HeroChoice::Auto));
        assert_eq!("none".parse(), Ok(HeroChoice::None));
        for bad in ["12", "a,b", "-1,5", "1,2,3", ""] {
            let err = bad.parse::<HeroChoice>().unwrap_err();
            assert!(err.to_string().contains("expected X,Y"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_place_off_the_picture_or_off_any_figure_is_one_clear_error() {
        // 128×64: genie keeps x 32..95.
        let wide = RgbaImage::from_fn(128, 64, |x, y| picture().get_pixel(x % 64, y).to_owned());
        let mut frames = vec![vec![0; 64 * 64 * 3]];
        let mut at = |x, y| {
            apply(
                std::slice::from_ref(&wide),
                &mut frames,
                HeroChoice::At { x, y },
            )
            .unwrap_err()
        };
        assert!(matches!(at(128, 10), HeroError::Outside { width: 128, .. }));
        assert!(matches!(at(5, 70), HeroError::Outside { height: 64, .. }));
        let cropped = at(20, 50);
        assert!(
            matches!(cropped, HeroError::Cropped { x0: 32, x1: 95, .. }),
            "{cropped:?}"
        );
        assert!(cropped.to_string().contains("centred square"));
        assert_eq!(at(60, 10), HeroError::NotAFigure { x: 60, y: 10 });
    }
}
