//! Regions of a picture and the figure (a hero, a critter, a coin) that a region belongs to.
//!
//! The picture is first brought to a square working image of [`WORK`]×[`WORK`] pixels (the
//! part genie keeps, twice the frame's resolution, so a figure a few frame pixels tall still has
//! a body). Region growing splits it into regions of near colour: a pixel joins its neighbour's
//! region when their colours are close *and* it stays near the colour the region started from,
//! so smooth gradients (a sky) stay one region but an outline never leaks into what it encloses.
//!
//! A figure is a small region plus the small regions touching it (a head on a body, an eye in a
//! face), grown while it stays figure-sized. In a side view what lies under a figure's feet and
//! is much wider than it is the ground it stands on, never a part of it.

use image::RgbImage;

/// Side of the working image, in pixels: 2 per frame pixel.
pub const WORK: u32 = 128;

/// Colour step between neighbours that still continues a region (L1 over RGB).
const NEIGHBOUR_STEP: u32 = 48;
/// How far a region may drift from the colour it started from (L1 over RGB).
const REGION_DRIFT: u32 = 120;

/// Largest figure, as a share of the working image's side (about 19×26 frame pixels: three
/// times the game's player).
const MAX_FIGURE_W: u32 = WORK * 3 / 10;
const MAX_FIGURE_H: u32 = WORK * 4 / 10;
/// Share of a part's rim that must touch the figure for it to join: none for a part within the
/// figure's height or above it (a face between a cap and a shirt touches each with a row only),
/// a quarter for one that reaches below its feet (legs hang from a body; a patch of textured
/// ground under the feet touches them with a few pixels).
const MIN_CONTACT: f32 = 0.0;
const MIN_CONTACT_BELOW: f32 = 0.25;
/// Regions this small are specks, not parts.
const SPECK: u32 = 2;
/// Largest figure area, in working pixels.
const MAX_FIGURE_AREA: u32 = WORK * WORK / 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BBox {
    pub x0: u32,
    pub y0: u32,
    /// Inclusive.
    pub x1: u32,
    pub y1: u32,
}

impl BBox {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0 + 1
    }

    pub fn height(&self) -> u32 {
        self.y1 - self.y0 + 1
    }

    fn union(&self, o: &BBox) -> BBox {
        BBox {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }

    fn fits_a_figure(&self) -> bool {
        self.width() <= MAX_FIGURE_W && self.height() <= MAX_FIGURE_H
    }
}

#[derive(Debug, Clone)]
pub struct Region {
    pub area: u32,
    pub bbox: BBox,
    /// Mean colour.
    pub colour: [f32; 3],
    /// Touches the edge of the working image (a figure may not: it would be cut).
    pub at_edge: bool,
}

impl Region {
    /// Small enough to be (a part of) a figure.
    pub fn figure_sized(&self) -> bool {
        !self.at_edge && self.area <= MAX_FIGURE_AREA && self.bbox.fits_a_figure()
    }
}

/// A working image cut into regions.
pub struct Segmentation {
    pub image: RgbImage,
    /// Region index of each pixel, row-major.
    pub labels: Vec<u32>,
    pub regions: Vec<Region>,
    /// For each region, the regions it touches (sorted, no duplicates).
    pub neighbours: Vec<Vec<u32>>,
}

/// A figure: regions of a segmentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Sorted region indices.
    pub regions: Vec<u32>,
    pub bbox: BBox,
    pub area: u32,
}

fn l1(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter().zip(&b).map(|(&x, &y)| x.abs_diff(y) as u32).sum()
}

impl Segmentation {
    /// Splits a [`WORK`]×[`WORK`] image into regions.
    pub fn new(image: RgbImage) -> Self {
        assert_eq!(image.dimensions(), (WORK, WORK), "working image size");
        let n = (WORK * WORK) as usize;
        let px = |i: usize| {
            let p = image.as_raw();
            [p[i * 3], p[i * 3 + 1], p[i * 3 + 2]]
        };
        let mut labels = vec![u32::MAX; n];
        let mut regions = Vec::new();
        let mut stack = Vec::new();
        for start in 0..n {
            if labels[start] != u32::MAX {
                continue;
            }
            let id = regions.len() as u32;
            let seed = px(start);
            let (mut area, mut sum) = (0u32, [0f32; 3]);
            let mut bbox = BBox {
                x0: u32::MAX,
                y0: u32::MAX,
                x1: 0,
                y1: 0,
            };
            labels[start] = id;
            stack.push(start);
            while let Some(i) = stack.pop() {
                let (x, y) = ((i as u32) % WORK, (i as u32) / WORK);
                let c = px(i);
                area += 1;
                for k in 0..3 {
                    sum[k] += c[k] as f32;
                }
                bbox.x0 = bbox.x0.min(x);
                bbox.y0 = bbox.y0.min(y);
                bbox.x1 = bbox.x1.max(x);
                bbox.y1 = bbox.y1.max(y);
                let mut visit = |j: usize| {
                    if labels[j] == u32::MAX {
                        let d = px(j);
                        if l1(c, d) <= NEIGHBOUR_STEP && l1(seed, d) <= REGION_DRIFT {
                            labels[j] = id;
                            stack.push(j);
                        }
                    }
                };
                if x > 0 {
                    visit(i - 1);
                }
                if x + 1 < WORK {
                    visit(i + 1);
                }
                if y > 0 {
                    visit(i - WORK as usize);
                }
                if y + 1 < WORK {
                    visit(i + WORK as usize);
                }
            }
            let at_edge =
                bbox.x0 == 0 || bbox.y0 == 0 || bbox.x1 == WORK - 1 || bbox.y1 == WORK - 1;
            regions.push(Region {
                area,
                bbox,
                colour: sum.map(|s| s / area as f32),
                at_edge,
            });
        }
        let mut neighbours = vec![Vec::new(); regions.len()];
        for y in 0..WORK as usize {
            for x in 0..WORK as usize {
                let a = labels[y * WORK as usize + x];
                for (dx, dy) in [(1, 0), (0, 1)] {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < WORK as usize && ny < WORK as usize {
                        let b = labels[ny * WORK as usize + nx];
                        if a != b {
                            neighbours[a as usize].push(b);
                            neighbours[b as usize].push(a);
                        }
                    }
                }
            }
        }
        for list in &mut neighbours {
            list.sort_unstable();
            list.dedup();
        }
        Self {
            image,
            labels,
            regions,
            neighbours,
        }
    }

    pub fn label(&self, x: u32, y: u32) -> u32 {
        self.labels[(y * WORK + x) as usize]
    }

    /// The figure grown from region `seed`, or `None` where the seed is too big to be one.
    ///
    /// A touching region joins when it is figure-sized, no more than 1.5× the largest part so
    /// far (a platform beside a small figure is bigger than any of its parts), the whole still
    /// fits a figure, and it clings to the figure: enough of its rim touches the figure (a head
    /// on a body, an outline around it, an eye inside it; see [`MIN_CONTACT`]). Specks (up to
    /// [`SPECK`] pixels: a thin outline broken up by resizing, noise) join when they touch and
    /// bridge to further parts, except below the feet, so textured ground cannot carry the
    /// figure away. A region under the figure's feet and
    /// much wider than it is the ground it stands on, never a part of it.
    pub fn figure(&self, seed: u32) -> Option<Figure> {
        let first = &self.regions[seed as usize];
        if !first.figure_sized() {
            return None;
        }
        let mut members = vec![seed];
        let (mut bbox, mut area, mut largest) = (first.bbox, first.area, first.area);
        let mut frontier = vec![seed];
        while let Some(r) = frontier.pop() {
            for &n in &self.neighbours[r as usize] {
                if members.contains(&n) {
                    continue;
                }
                let region = &self.regions[n as usize];
                let joined = bbox.union(&region.bbox);
                let is_ground =
                    region.bbox.y0 + 1 >= bbox.y1 && region.bbox.width() * 2 > bbox.width() * 3 + 8;
                // Characters stand upright: a part that would make the figure much wider than
                // tall is scenery it touches (a line of ground, a platform's edge).
                let upright = joined.width() <= joined.height() + 6;
                if !region.figure_sized()
                    || region.area * 2 > largest.max(8) * 3
                    || !joined.fits_a_figure()
                    || !upright
                    || area + region.area > MAX_FIGURE_AREA
                    || is_ground
                {
                    continue;
                }
                let speck = region.area <= SPECK;
                let below = region.bbox.y1 > bbox.y1;
                let needed = if below {
                    MIN_CONTACT_BELOW
                } else {
                    MIN_CONTACT
                };
                if !speck && self.contact(n, &members) < needed {
                    continue;
                }
                members.push(n);
                bbox = joined;
                area += region.area;
                if !speck {
                    largest = largest.max(region.area);
                }
                if !speck || !below {
                    frontier.push(n);
                }
            }
        }
        members.sort_unstable();
        Some(Figure {
            regions: members,
            bbox,
            area,
        })
    }

    /// Share of region `r`'s rim pixels (those with a 4-neighbour outside it) that touch one
    /// of `members`.
    fn contact(&self, r: u32, members: &[u32]) -> f32 {
        let b = self.regions[r as usize].bbox;
        let (mut rim, mut touching) = (0u32, 0u32);
        for y in b.y0..=b.y1 {
            for x in b.x0..=b.x1 {
                if self.label(x, y) != r {
                    continue;
                }
                let around = [
                    (x > 0).then(|| (x - 1, y)),
                    (x + 1 < WORK).then_some((x + 1, y)),
                    (y > 0).then(|| (x, y - 1)),
                    (y + 1 < WORK).then_some((x, y + 1)),
                ];
                let labels: Vec<u32> = around
                    .into_iter()
                    .flatten()
                    .map(|(nx, ny)| self.label(nx, ny))
                    .filter(|&l| l != r)
                    .collect();
                if !labels.is_empty() {
                    rim += 1;
                    if labels.iter().any(|l| members.contains(l)) {
                        touching += 1;
                    }
                }
            }
        }
        touching as f32 / rim.max(1) as f32
    }

    /// The figures grown from the regions within `radius` of working pixel (x, y), nearest
    /// first, without repeats.
    pub fn figures_near(&self, x: u32, y: u32, radius: u32) -> Vec<Figure> {
        let r = radius as i64;
        let mut offsets: Vec<(i64, i64)> = (-r..=r)
            .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
            .filter(|(dx, dy)| dx * dx + dy * dy <= r * r)
            .collect();
        offsets.sort_by_key(|(dx, dy)| dx * dx + dy * dy);
        let mut seeds = Vec::new();
        for (dx, dy) in offsets {
            let (px, py) = (x as i64 + dx, y as i64 + dy);
            if px >= 0 && py >= 0 && px < WORK as i64 && py < WORK as i64 {
                let label = self.label(px as u32, py as u32);
                if !seeds.contains(&label) {
                    seeds.push(label);
                }
            }
        }
        let mut figures: Vec<Figure> = Vec::new();
        for seed in seeds {
            if let Some(f) = self.figure(seed)
                && !figures.contains(&f)
            {
                figures.push(f);
            }
        }
        figures
    }

    /// Whether working pixel `i` (row-major) belongs to `figure`.
    pub fn in_figure(&self, figure: &Figure, i: usize) -> bool {
        figure.regions.binary_search(&self.labels[i]).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// Sky, a ground strip, a platform, and a two-colour figure standing on the ground.
    pub(crate) fn scene() -> RgbImage {
        RgbImage::from_fn(WORK, WORK, |x, y| {
            if y >= 110 {
                Rgb([120, 80, 40]) // ground
            } else if (20..60).contains(&x) && (70..76).contains(&y) {
                Rgb([90, 90, 90]) // platform
            } else if (80..90).contains(&x) && (92..110).contains(&y) {
                Rgb([30, 60, 200]) // body
            } else if (82..88).contains(&x) && (86..92).contains(&y) {
                Rgb([240, 200, 170]) // head
            } else {
                Rgb([200, 230, 250]) // sky
            }
        })
    }

    #[test]
    fn a_figure_is_its_parts_but_not_the_ground_or_the_sky() {
        let seg = Segmentation::new(scene());
        let body = seg.label(85, 100);
        let fig = seg.figure(body).expect("the body is figure-sized");
        assert_eq!(fig.regions.len(), 2, "body and head");
        assert!(fig.regions.contains(&seg.label(85, 88)));
        assert_eq!(
            fig.bbox,
            BBox {
                x0: 80,
                y0: 86,
                x1: 89,
                y1: 109
            }
        );
        // The sky and the ground touch the edge: never a figure.
        assert!(seg.figure(seg.label(5, 5)).is_none());
        assert!(seg.figure(seg.label(5, 120)).is_none());
        // A point just beside the body finds it.
        let near = seg.figures_near(78, 100, 3).remove(0);
        assert_eq!(near, fig);
    }
}
