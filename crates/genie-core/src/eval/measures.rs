//! The measures of docs/design.md §5 and §8 that are plain arithmetic: PSNR between frames, the
//! normalised mutual information between latent codes and true actions, a frame pair's
//! horizontal shift (a camera move, read from the pictures alone), and the tallies of whole
//! sessions: how long the dreamed player stays found, and which camera moves the dream made.

use crate::game::{FRAME_SIZE, PLAYER_COLOR, theme};

/// Peak signal-to-noise ratio in dB between two u8 images of equal size (peak 255). Identical
/// images give +∞; callers that average should cap it (see [`psnr_capped`]).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images differ in size");
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let mse = se / a.len().max(1) as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// PSNR capped at 100 dB, so identical frames do not make a mean infinite.
pub fn psnr_capped(a: &[u8], b: &[u8]) -> f64 {
    psnr(a, b).min(100.0)
}

/// Normalised mutual information NMI(X; Y) = I(X; Y) / √(H(X)·H(Y)) of paired labels, in [0, 1];
/// 0 when either labelling is constant.
pub fn nmi(xs: &[usize], ys: &[usize]) -> f64 {
    assert_eq!(xs.len(), ys.len(), "label lists differ in length");
    let n = xs.len() as f64;
    if xs.is_empty() {
        return 0.0;
    }
    let kx = xs.iter().max().map_or(0, |m| m + 1);
    let ky = ys.iter().max().map_or(0, |m| m + 1);
    let mut joint = vec![0.0f64; kx * ky];
    let (mut px, mut py) = (vec![0.0f64; kx], vec![0.0f64; ky]);
    for (&x, &y) in xs.iter().zip(ys) {
        joint[x * ky + y] += 1.0;
        px[x] += 1.0;
        py[y] += 1.0;
    }
    let entropy = |p: &[f64]| -> f64 {
        p.iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -(c / n) * (c / n).ln())
            .sum()
    };
    let (hx, hy) = (entropy(&px), entropy(&py));
    if hx <= 0.0 || hy <= 0.0 {
        return 0.0;
    }
    let mut mi = 0.0;
    for x in 0..kx {
        for y in 0..ky {
            let c = joint[x * ky + y];
            if c > 0.0 {
                mi += (c / n) * ((c * n) / (px[x] * py[y])).ln();
            }
        }
    }
    (mi / (hx * hy).sqrt()).clamp(0.0, 1.0)
}

/// Largest camera move [`horizontal_shift`] looks for, in pixels: three quarters of a frame, so
/// that a quarter of it (16 columns) still overlaps between the two frames.
pub const MAX_SHIFT: i32 = 48;

/// How much closer (mean colour distance per pixel, L1 of RGB summed, 0–765) the two frames
/// must match at a shift than unshifted, over the whole frame, before it can be a camera move:
/// an enemy's step or a coin taken changes a frame by less, a moved background by tens.
pub const SHIFT_MIN_GAIN: f64 = 6.0;

/// How much closer a shift must match than none, on the same pixels: at most this share of the
/// unshifted distance. Noise (a decoder's) is the same at every shift, so it never halves.
pub const SHIFT_MAX_RATIO: f64 = 0.5;

/// How far the camera moved between two 64×64 RGB frames, in pixels (positive: the view moved
/// right, so the picture moved left: `after[x] ≈ before[x + shift]`); 0 where it did not.
///
/// Every shift up to [`MAX_SHIFT`] either way is tried; each is scored by the mean colour
/// distance over the columns the two frames share, leaving out the player (its colour within
/// `player_tolerance`, and a few pixels around it for its eye and dash streak), who moves on
/// its own. A shift counts where that distance is at most [`SHIFT_MAX_RATIO`] of the unshifted
/// one both over the whole frame (and [`SHIFT_MIN_GAIN`] below it) and over the very same
/// pixels: a large shift leaves few columns, and a few columns of sky and even ground match
/// whatever happened elsewhere. The best such shift wins, the smallest of equally good ones: on a stretch of even ground, which repeats every tile, 8 px and 16 px
/// match as well as each other, and the sign is what the session measures use. A move over a
/// view that is even ground from edge to edge, with nothing on it, leaves the picture as it
/// was: no detector can see it, and it reads 0.
pub fn horizontal_shift(before: &[u8], after: &[u8], player_tolerance: u32) -> i32 {
    let sizes: Vec<i32> = (1..=MAX_SHIFT).collect();
    horizontal_shift_among(before, after, player_tolerance, &sizes)
}

/// [`horizontal_shift`] trying only moves of these sizes (positive, smallest first), either way:
/// a camera that moves by whole patches needs only the patch.
pub fn horizontal_shift_among(
    before: &[u8],
    after: &[u8],
    player_tolerance: u32,
    sizes: &[i32],
) -> i32 {
    let n = FRAME_SIZE;
    if before.len() != n * n * 3 || after.len() != before.len() {
        return 0;
    }
    let (mask_before, mask_after) = (
        player_mask(before, player_tolerance),
        player_mask(after, player_tolerance),
    );
    let l1 = |p: &[u8], q: &[u8]| {
        (p[0].abs_diff(q[0]) as u64) + (p[1].abs_diff(q[1]) as u64) + (p[2].abs_diff(q[2]) as u64)
    };
    // (distance at `shift`, distance unshifted) over the same pixels.
    let score = |shift: i32| -> (f64, f64) {
        let (mut sum, mut still, mut count) = (0u64, 0u64, 0u64);
        // Columns from..from + len of `after` meet columns from + shift.. of `before`.
        let from = (-shift).max(0) as usize;
        let len = n - shift.unsigned_abs() as usize;
        let from_before = (from as i32 + shift) as usize;
        for y in 0..n {
            let (ra, rb) = (y * n + from, y * n + from_before);
            let pixels = after[ra * 3..(ra + len) * 3]
                .chunks_exact(3)
                .zip(before[rb * 3..(rb + len) * 3].chunks_exact(3))
                .zip(before[ra * 3..(ra + len) * 3].chunks_exact(3))
                .zip(
                    mask_after[ra..ra + len]
                        .iter()
                        .zip(&mask_before[rb..rb + len]),
                )
                .zip(&mask_before[ra..ra + len]);
            for ((((a, b), same), (&masked_a, &masked_b)), &masked_same) in pixels {
                if masked_a || masked_b || masked_same {
                    continue;
                }
                sum += l1(a, b);
                still += l1(a, same);
                count += 1;
            }
        }
        let count = count.max(1) as f64;
        (sum as f64 / count, still as f64 / count)
    };
    let whole = score(0).0;
    let mut best = (0, f64::INFINITY);
    // Smallest shifts first, so a tie keeps the smaller one.
    for &size in sizes.iter().filter(|&&s| s > 0 && s < n as i32) {
        for shift in [size, -size] {
            let (d, same_pixels) = score(shift);
            let counts = whole - d >= SHIFT_MIN_GAIN
                && d <= SHIFT_MAX_RATIO * whole
                && d <= SHIFT_MAX_RATIO * same_pixels;
            if counts && d < best.1 - 1e-9 {
                best = (shift, d);
            }
        }
    }
    best.0
}

/// Pixels of the player's colour (within `tolerance`), widened by 4 px sideways and 2 px up
/// and down: the eye, the dash streak behind it and the decoder's blur around it.
fn player_mask(frame: &[u8], tolerance: u32) -> Vec<bool> {
    let n = FRAME_SIZE as i32;
    let mut mask = vec![false; (n * n) as usize];
    for (i, px) in frame.chunks_exact(3).enumerate() {
        if theme::distance([px[0], px[1], px[2]], PLAYER_COLOR) > tolerance {
            continue;
        }
        let (x, y) = (i as i32 % n, i as i32 / n);
        for yy in (y - 2).max(0)..=(y + 2).min(n - 1) {
            for xx in (x - 4).max(0)..=(x + 4).min(n - 1) {
                mask[(yy * n + xx) as usize] = true;
            }
        }
    }
    mask
}

/// Frames in a row the dream may miss the player (while the real one is on screen) before the
/// player counts as lost.
pub const LOSS_RUN: usize = 15;

/// Where the dreamed player was found over one session's scored frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Presence {
    /// Frames with the real player on screen.
    pub on_screen: usize,
    /// Of those, frames with the dreamed player found.
    pub found: usize,
    /// The first frame of the first run of `run` such frames in a row without the dreamed
    /// player (frames without the real player neither extend nor break a run); `None` where
    /// the player was kept.
    pub lost_at: Option<usize>,
}

/// Tallies [`Presence`] from per-frame flags (`real_on[t]`: the real player is on screen in
/// frame t; `dream_found[t]`: the dreamed player is found in it), losing the player after
/// `run` missed frames in a row.
pub fn presence(real_on: &[bool], dream_found: &[bool], run: usize) -> Presence {
    let mut out = Presence::default();
    let (mut missed, mut since) = (0, 0);
    for (t, (&real, &dream)) in real_on.iter().zip(dream_found).enumerate() {
        if !real {
            continue;
        }
        out.on_screen += 1;
        if dream {
            out.found += 1;
            missed = 0;
            continue;
        }
        if missed == 0 {
            since = t;
        }
        missed += 1;
        if missed >= run.max(1) && out.lost_at.is_none() {
            out.lost_at = Some(since);
        }
    }
    out
}

/// Camera moves of one session, real ones matched against dreamed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ScrollMatch {
    pub real: usize,
    /// Real moves with a dreamed move the same way within the window.
    pub real_matched: usize,
    pub dreamed: usize,
    /// Dreamed moves with a real move the same way within the window.
    pub dreamed_matched: usize,
}

impl ScrollMatch {
    pub fn add(&mut self, other: ScrollMatch) {
        self.real += other.real;
        self.real_matched += other.real_matched;
        self.dreamed += other.dreamed;
        self.dreamed_matched += other.dreamed_matched;
    }
}

/// Matches camera moves frame by frame (`real[t]`, `dreamed[t]`: the move into frame t, 0 for
/// none; only the sign is compared, as the dream may step by another amount): a move is matched
/// by one of the other side's the same way at most `window` frames earlier or later.
pub fn match_scrolls(real: &[i32], dreamed: &[i32], window: usize) -> ScrollMatch {
    let len = real.len().min(dreamed.len());
    let (real, dreamed) = (&real[..len], &dreamed[..len]);
    let matched = |t: usize, sign: i32, other: &[i32]| {
        let (lo, hi) = (
            t.saturating_sub(window),
            (t + window).min(len.saturating_sub(1)),
        );
        (lo..=hi).any(|u| other[u].signum() == sign)
    };
    let mut out = ScrollMatch::default();
    for t in 0..len {
        if real[t] != 0 {
            out.real += 1;
            out.real_matched += usize::from(matched(t, real[t].signum(), dreamed));
        }
        if dreamed[t] != 0 {
            out.dreamed += 1;
            out.dreamed_matched += usize::from(matched(t, dreamed[t].signum(), real));
        }
    }
    out
}

/// [`match_scrolls`] over the moves one way only (`sign` -1: the view moved left, 1: right).
pub fn match_scrolls_toward(
    real: &[i32],
    dreamed: &[i32],
    window: usize,
    sign: i32,
) -> ScrollMatch {
    let only = |moves: &[i32]| -> Vec<i32> {
        moves
            .iter()
            .map(|&m| if m.signum() == sign { m } else { 0 })
            .collect()
    };
    match_scrolls(&only(real), &only(dreamed), window)
}

/// The 95% Wilson score interval of a share of `k` in `n` trials (`None` for none): how far a
/// share counted over a few dozen sessions may be from the model's own. With 30 of 32 sessions
/// kept it runs from 0.80 to 0.98, so two models a few sessions apart are not told apart.
pub fn wilson_interval(k: usize, n: usize) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (n, p) = (n as f64, k.min(n) as f64 / n as f64);
    let z2 = Z * Z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some([(centre - half).max(0.0), (centre + half).min(1.0)])
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::FRAME_BYTES;

    /// A 64×64 window at `offset` of a wide synthetic level: banded sky, ground of a repeating
    /// tile texture at heights that change every few tiles, floating blocks; the player (6×7
    /// magenta) at screen column `player_x`.
    fn window(offset: usize, player_x: usize) -> Vec<u8> {
        let mut f = vec![0u8; FRAME_BYTES];
        for y in 0..64 {
            for x in 0..64 {
                let wx = x + offset;
                let col = wx / 8;
                let ground = 40 + 8 * ((col * 7 + col / 3) % 3);
                let block = col % 5 == 2 && (16..24).contains(&y);
                let c = if y >= ground || block {
                    // A tile texture: the same every 8 px.
                    let v = 90 + ((wx % 8) * 13 + (y % 8) * 7) as u8;
                    [v, v / 2, 40]
                } else {
                    let v = 150 + (y / 8) as u8 * 10;
                    [v / 2, v, 230]
                };
                f[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3].copy_from_slice(&c);
            }
        }
        for y in 30..37 {
            for x in player_x..player_x + 6 {
                f[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3].copy_from_slice(&PLAYER_COLOR);
            }
        }
        f
    }

    /// Decoder-like noise: each byte moved by up to ±`amp`, deterministically.
    fn noisy(frame: &[u8], amp: i32, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        frame
            .iter()
            .map(|&v| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (v as i32 + (state % (2 * amp as u32 + 1)) as i32 - amp).clamp(0, 255) as u8
            })
            .collect()
    }

    #[test]
    fn a_camera_move_of_any_size_is_found_and_the_player_alone_is_no_move() {
        let tol = 90;
        for start in [0, 24, 80] {
            let before = window(start, 30);
            for shift in [8i32, 40, 1, 16, 48] {
                // The camera moves right: the picture moves left; the player keeps its place
                // on screen (it walked along with the camera) or moves a little.
                let after = window(start + shift as usize, 33);
                assert_eq!(
                    horizontal_shift(&before, &after, tol),
                    shift,
                    "{start} +{shift}"
                );
                assert_eq!(
                    horizontal_shift(&after, &before, tol),
                    -shift,
                    "{start} -{shift}"
                );
                let (b, a) = (noisy(&before, 6, 1), noisy(&after, 6, 2));
                assert_eq!(
                    horizontal_shift(&b, &a, tol),
                    shift,
                    "noisy {start} +{shift}"
                );
            }
            // No camera move: the player walks, the noise changes.
            let after = window(start, 40);
            assert_eq!(horizontal_shift(&before, &after, tol), 0);
            let (b, a) = (noisy(&before, 8, 3), noisy(&window(start, 36), 8, 4));
            assert_eq!(horizontal_shift(&b, &a, tol), 0, "noise is no move");
        }
        // A plain sky shifted is no evidence of a move; wrong sizes are no move.
        let sky = vec![120u8; FRAME_BYTES];
        assert_eq!(horizontal_shift(&sky, &sky, 90), 0);
        assert_eq!(horizontal_shift(&sky, &sky[..100], 90), 0);
    }

    #[test]
    fn the_real_game_camera_is_what_the_shift_detector_reads() {
        // The camera's moves in real play, read from the frames alone: never a move where there
        // was none or the wrong way, and nearly every move seen (the rest over a view of even,
        // empty ground that looks the same after the move).
        use crate::game::GameConfig;
        // The flipping camera on the five themes, then the stepping one in mixed looks, where
        // an 8 px move over a background that repeats every 4 or 8 px (dithering, stripes) and
        // even ground shows less often.
        for (config, share_seen) in [(GameConfig::original(), 0.9), (GameConfig::default(), 0.8)] {
            shifts_read(config, share_seen);
        }
    }

    fn shifts_read(config: crate::game::GameConfig, share_seen: f64) {
        use crate::data::{DEFAULT_STICKINESS, ScriptedPlayer};
        use crate::game::{Game, Status};
        let (mut moves, mut seen, mut sized) = (0, 0, 0);
        for seed in 0..6u64 {
            let mut game = Game::with_config(1_000_000 + seed, config);
            let mut player = ScriptedPlayer::new(seed, DEFAULT_STICKINESS);
            let mut before = game.frame();
            for _ in 0..300 {
                let camera = game.camera_px();
                let status = game.step(player.act(&game));
                if status != Status::Alive {
                    game.restart();
                    before = game.frame();
                    continue;
                }
                let after = game.frame();
                let real = game.camera_px() - camera;
                let got = horizontal_shift(&before, &after, 0);
                if got != 0 {
                    assert_eq!(
                        got.signum(),
                        real.signum(),
                        "level {seed}: camera {real}, read {got}"
                    );
                }
                moves += usize::from(real != 0);
                seen += usize::from(real != 0 && got != 0);
                sized += usize::from(real != 0 && got == real);
                before = after;
            }
        }
        assert!(moves >= 6, "the scripted players move the camera: {moves}");
        assert!(
            seen as f64 >= moves as f64 * share_seen,
            "{config:?}: moves seen: {seen} of {moves}"
        );
        // Where the view is even ground, shifts a tile apart match alike, and the smaller wins.
        assert!(
            sized * 4 >= seen * 3,
            "the size is read too: {sized} of {seen}"
        );
    }

    #[test]
    fn presence_counts_frames_with_the_real_player_and_loses_after_a_run() {
        let t = true;
        let f = false;
        // The real player off screen in frames 2 and 6: neither counted nor breaking a run.
        let real = [t, t, f, t, t, t, f, t, t, t];
        let dream = [t, f, f, f, t, f, f, f, f, t];
        let p = presence(&real, &dream, 3);
        assert_eq!((p.on_screen, p.found), (8, 3));
        // Misses at 1, 3 (a run of 2, broken by 4), then 5, 7, 8: the third in a row at 8.
        assert_eq!(p.lost_at, Some(5));
        assert_eq!(presence(&real, &dream, 4).lost_at, None);
        assert_eq!(presence(&[], &[], 3), Presence::default());
        let p = presence(&[t; 4], &[f; 4], 1);
        assert_eq!((p.found, p.lost_at), (0, Some(0)));
    }

    #[test]
    fn scrolls_match_the_same_way_within_the_window() {
        //            0  1  2   3  4  5  6   7  8  9
        let real = [0, 0, 40, 0, 0, 0, 0, -40, 0, 0];
        let dream = [0, 0, 0, 0, 8, 0, 0, 0, 0, 8];
        let m = match_scrolls(&real, &dream, 2);
        // The move at 2 is matched by the dream's at 4; the one at 7 has only a move the other
        // way near it; the dream's at 9 matches nothing.
        assert_eq!(
            m,
            ScrollMatch {
                real: 2,
                real_matched: 1,
                dreamed: 2,
                dreamed_matched: 1
            }
        );
        assert_eq!(match_scrolls(&real, &dream, 1).real_matched, 0);
        assert_eq!(match_scrolls(&real, &real, 0).dreamed_matched, 2);
        // Only the frames both sides have are compared.
        let short = match_scrolls(&real, &dream[..2], 2);
        assert_eq!((short.real, short.dreamed), (0, 0));
        // One way at a time: the left move is missed, the right one and both dreamed ones are
        // counted on the right.
        let left = match_scrolls_toward(&real, &dream, 2, -1);
        let right = match_scrolls_toward(&real, &dream, 2, 1);
        assert_eq!((left.real, left.real_matched, left.dreamed), (1, 0, 0));
        assert_eq!((right.real, right.real_matched), (1, 1));
        assert_eq!((right.dreamed, right.dreamed_matched), (2, 1));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn psnr_of_a_known_error() {
        let a = vec![100u8; 64];
        let b = vec![110u8; 64]; // MSE 100 → 10·log10(65025/100) = 28.13 dB
        assert!((psnr(&a, &b) - 28.1308).abs() < 1e-3);
        assert_eq!(psnr_capped(&a, &a), 100.0);
    }

    #[test]
    fn nmi_is_one_for_a_relabelling_and_zero_for_independence() {
        let xs = [0, 0, 1, 1, 2, 2];
        let ys = [5, 5, 3, 3, 0, 0];
        assert!((nmi(&xs, &ys) - 1.0).abs() < 1e-12);
        let xs = [0, 0, 1, 1];
        let ys = [0, 1, 0, 1];
        assert!(nmi(&xs, &ys).abs() < 1e-12);
        assert_eq!(nmi(&[0, 0, 0], &[1, 2, 3]), 0.0);
    }

    #[test]
    fn nmi_of_a_partial_agreement_is_between() {
        let xs = [0, 0, 0, 1, 1, 1];
        let ys = [0, 0, 1, 1, 1, 1];
        let v = nmi(&xs, &ys);
        assert!(v > 0.1 && v < 0.9, "{v}");
    }

    #[test]
    fn wilson_interval_of_a_share_of_sessions() {
        let [lo, hi] = wilson_interval(30, 32).unwrap();
        assert!(
            (lo - 0.7985).abs() < 1e-3 && (hi - 0.9827).abs() < 1e-3,
            "{lo} {hi}"
        );
        // All kept: the top is 1, the bottom well below it; more sessions, a narrower interval.
        let [lo32, hi32] = wilson_interval(32, 32).unwrap();
        let [lo128, _] = wilson_interval(128, 128).unwrap();
        assert_eq!(hi32, 1.0);
        assert!(lo32 < 0.9 && lo128 > lo32, "{lo32} {lo128}");
        assert_eq!(wilson_interval(0, 0), None);
        assert_eq!(wilson_interval(0, 10).unwrap()[0], 0.0);
    }
}
