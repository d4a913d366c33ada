//! The automatic guess of a picture's hero: of every figure in the picture (see
//! [`Segmentation::figure`]), the one that looks most like a platformer's hero.
//!
//! What counts, each a factor of the score: the figure stands on something (what is under its
//! feet differs from what is beside it: a sun or a cloud floats), it differs from its
//! surroundings, its colour is rare in the picture (scenery repeats, a hero is drawn once), it
//! is upright and about the size of a character, and it is colourful (sketches draw the scenery
//! in ink and colour the hero in). Weights are round numbers, not fitted: the hit rate on
//! `assets/prompts/` is measured by `genie eval --prompts` (`hero_guess_hits`) and reported in
//! docs/experiments.md.

use super::segment::{Figure, Segmentation, WORK};

/// Below this score no figure is taken for the hero.
pub const MIN_SCORE: f64 = 0.05;

/// A figure and how hero-like it looks (0..1).
#[derive(Debug, Clone)]
pub struct Guess {
    pub figure: Figure,
    pub score: f64,
}

fn l1(a: [f32; 3], b: [f32; 3]) -> f32 {
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum()
}

/// The most hero-like figure with a score of at least [`MIN_SCORE`].
pub fn guess(seg: &Segmentation) -> Option<Guess> {
    let mut seen: Vec<Vec<u32>> = Vec::new();
    let mut best: Option<Guess> = None;
    for seed in 0..seg.regions.len() as u32 {
        let region = &seg.regions[seed as usize];
        // Specks (noise, an anti-aliased rim) start no figure of their own.
        if region.area < 6 {
            continue;
        }
        let Some(figure) = seg.figure(seed) else {
            continue;
        };
        if seen.contains(&figure.regions) {
            continue;
        }
        seen.push(figure.regions.clone());
        let score = score(seg, &figure);
        if score >= MIN_SCORE && best.as_ref().is_none_or(|b| score > b.score) {
            best = Some(Guess { figure, score });
        }
    }
    best
}

/// How hero-like `figure` looks, in 0..1.
pub fn score(seg: &Segmentation, figure: &Figure) -> f64 {
    let b = figure.bbox;
    let (w, h) = (b.width() as f64, b.height() as f64);
    let main = figure
        .regions
        .iter()
        .max_by_key(|&&r| seg.regions[r as usize].area)
        .map(|&r| seg.regions[r as usize].colour)
        .expect("a figure has a region");
    let mean = {
        let mut sum = [0f32; 3];
        for &r in &figure.regions {
            let region = &seg.regions[r as usize];
            for (s, c) in sum.iter_mut().zip(region.colour) {
                *s += c * region.area as f32;
            }
        }
        sum.map(|s| s / figure.area as f32)
    };
    let pixel = |x: u32, y: u32| {
        let p = seg.image.get_pixel(x, y).0;
        [p[0] as f32, p[1] as f32, p[2] as f32]
    };
    let inside = |x: u32, y: u32| seg.in_figure(figure, (y * WORK + x) as usize);

    // Beside: the columns just left and right of the figure, over its height.
    let mut beside = Vec::new();
    for y in b.y0..=b.y1 {
        for x in [b.x0.checked_sub(2), Some(b.x1 + 2)].into_iter().flatten() {
            if x < WORK && !inside(x, y) {
                beside.push(seg.label(x, y));
            }
        }
    }
    // Under: the two rows below its feet, over its width.
    let mut under = Vec::new();
    for y in (b.y1 + 1)..(b.y1 + 3).min(WORK) {
        for x in b.x0..=b.x1 {
            under.push(seg.label(x, y));
        }
    }
    let grounded = !under.is_empty()
        && under.iter().filter(|r| !beside.contains(r)).count() * 2 >= under.len();

    let ring: Vec<[f32; 3]> = {
        let (x0, y0) = (b.x0.saturating_sub(3), b.y0.saturating_sub(3));
        let (x1, y1) = ((b.x1 + 3).min(WORK - 1), (b.y1 + 3).min(WORK - 1));
        (y0..=y1)
            .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
            .filter(|&(x, y)| !inside(x, y))
            .map(|(x, y)| pixel(x, y))
            .collect()
    };
    let ring_mean = {
        let n = ring.len().max(1) as f32;
        let mut s = [0f32; 3];
        for c in &ring {
            for k in 0..3 {
                s[k] += c[k] / n;
            }
        }
        s
    };
    let contrast = (l1(mean, ring_mean) as f64 / 150.0).min(1.0);

    // Share of the rest of the picture in the figure's main colour.
    let mut same = 0usize;
    for y in 0..WORK {
        for x in 0..WORK {
            if !inside(x, y) && l1(pixel(x, y), main) <= 60.0 {
                same += 1;
            }
        }
    }
    let share = same as f64 / (WORK * WORK) as f64;
    let rarity = 1.0 / (1.0 + 20.0 * share);

    let upright = if (0.9..=3.5).contains(&(h / w)) {
        1.0
    } else {
        0.4
    };
    // A character is about 5 to 18 frame pixels tall (2 working pixels each).
    let sized = if (10.0..=36.0).contains(&h) { 1.0 } else { 0.4 };
    let fill = figure.area as f64 / (w * h);
    let solid = if fill >= 0.3 { 1.0 } else { 0.5 };
    let chroma = {
        let max = mean.iter().cloned().fold(0.0f32, f32::max);
        let min = mean.iter().cloned().fold(255.0f32, f32::min);
        ((max - min) / 255.0) as f64
    };
    let colourful = 0.4 + 0.6 * chroma.min(1.0);
    let grounded = if grounded { 1.0 } else { 0.3 };
    contrast * rarity * upright * sized * solid * colourful * grounded
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn the_hero_on_the_ground_beats_a_sun_and_coins_in_the_sky() {
        let img = RgbImage::from_fn(WORK, WORK, |x, y| {
            let sun = (x as i32 - 100).pow(2) + (y as i32 - 20).pow(2) <= 64;
            let coin =
                (30..34).contains(&y) && [20, 30, 40].iter().any(|c| (*c..c + 4).contains(&x));
            if y >= 110 {
                Rgb([100, 70, 50])
            } else if (60..70).contains(&x) && (92..110).contains(&y) {
                Rgb([220, 40, 40])
            } else if sun {
                Rgb([250, 220, 60])
            } else if coin {
                Rgb([240, 190, 40])
            } else {
                Rgb([180, 210, 240])
            }
        });
        let seg = Segmentation::new(img);
        let g = guess(&seg).expect("a hero is found");
        assert!(g.figure.regions.contains(&seg.label(65, 100)), "{g:?}");
    }

    #[test]
    fn a_blank_picture_has_no_hero() {
        let seg = Segmentation::new(RgbImage::from_pixel(WORK, WORK, Rgb([255, 255, 255])));
        assert!(guess(&seg).is_none());
    }
}
