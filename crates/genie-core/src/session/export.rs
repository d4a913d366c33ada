//! Exports: frames to an animated GIF or a lossless animated PNG (several worlds side by side),
//! or a folder of PNGs.
//!
//! A GIF holds 256 colours a frame. Decoded frames have more, and a quantizer left to itself
//! merges the player's few pixels into their surroundings (a frame with 29 pixels of the
//! player's colour kept none), so [`gif_colours`] keeps the player's colours out of the
//! quantization. APNG keeps every colour.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame as GifFrame, RgbaImage};

use super::prompt::{FRAME_SIDE, save_png};
use crate::game::is_player_colour;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export {path}: {what}")]
    Write { path: PathBuf, what: String },
    #[error("nothing to export: no frames")]
    Empty,
}

/// Pixels between side-by-side frames.
const GAP: u32 = 2;

/// Writes an animation, each row's frames side by side, scaled by `scale`, at `fps`: an APNG
/// (lossless) when `path` ends in `.png` or `.apng`, else a GIF.
pub fn write_animation(
    path: &Path,
    rows: &[Vec<Vec<u8>>],
    scale: u32,
    fps: u32,
) -> Result<(), ExportError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("png") || ext.eq_ignore_ascii_case("apng") {
        write_apng(path, rows, scale, fps)
    } else {
        write_gif(path, rows, scale, fps)
    }
}

/// Creates `path` (and its folder).
fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, ExportError> {
    let err = |e: std::io::Error| ExportError::Write {
        path: path.into(),
        what: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    Ok(std::io::BufWriter::new(
        std::fs::File::create(path).map_err(err)?,
    ))
}

/// Writes an animated GIF, each row's frames side by side, scaled by `scale`, at `fps`; the
/// player's colours are kept (see [`gif_colours`]).
pub fn write_gif(
    path: &Path,
    rows: &[Vec<Vec<u8>>],
    scale: u32,
    fps: u32,
) -> Result<(), ExportError> {
    if rows.is_empty() {
        return Err(ExportError::Empty);
    }
    let err = |what: String| ExportError::Write {
        path: path.into(),
        what,
    };
    let mut encoder = GifEncoder::new_with_speed(create(path)?, 10);
    encoder
        .set_repeat(Repeat::Infinite)
        .map_err(|e| err(e.to_string()))?;
    let delay = Delay::from_numer_denom_ms(1000, fps.max(1));
    for mut img in row_images(rows, scale) {
        gif_colours(&mut img);
        encoder
            .encode_frame(GifFrame::from_parts(img, 0, 0, delay))
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// One picture per row of an animation: the row's frames side by side on black.
fn row_images(rows: &[Vec<Vec<u8>>], scale: u32) -> impl Iterator<Item = RgbaImage> + '_ {
    rows.iter()
        .map(move |row| grid(std::slice::from_ref(row), scale, 0, [0, 0, 0]))
}

/// Writes a lossless animated PNG (APNG), each row's frames side by side, scaled by `scale`, at
/// `fps`, looping.
pub fn write_apng(
    path: &Path,
    rows: &[Vec<Vec<u8>>],
    scale: u32,
    fps: u32,
) -> Result<(), ExportError> {
    if rows.is_empty() {
        return Err(ExportError::Empty);
    }
    let err = |e: png::EncodingError| ExportError::Write {
        path: path.into(),
        what: e.to_string(),
    };
    let images: Vec<RgbaImage> = row_images(rows, scale).collect();
    let (w, h) = images[0].dimensions();
    let mut encoder = png::Encoder::new(create(path)?, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_animated(images.len() as u32, 0).map_err(err)?;
    let fps = u16::try_from(fps.max(1)).unwrap_or(u16::MAX);
    encoder.set_frame_delay(1, fps).map_err(err)?;
    let mut writer = encoder.write_header().map_err(err)?;
    for img in &images {
        let rgb: Vec<u8> = img.pixels().flat_map(|p| [p[0], p[1], p[2]]).collect();
        writer.write_image_data(&rgb).map_err(err)?;
    }
    writer.finish().map_err(err)
}

/// Most colours of the player's kept exactly in a GIF frame; the rest of them take the nearest
/// kept one, so every pixel that counted as the player's still does.
const PLAYER_PALETTE: usize = 64;

/// Reduces `img` to at most 256 colours (so a GIF stores them exactly) without touching the
/// player's: pixels of the player's colour (as the evaluation finds it) keep their colour, up to
/// [`PLAYER_PALETTE`] of them, or take the nearest kept one; the other pixels are quantized with
/// NeuQuant into the rest of the palette. A frame of 256 colours or fewer is left as it is.
pub fn gif_colours(img: &mut RgbaImage) {
    let mut counts: HashMap<[u8; 3], usize> = HashMap::new();
    for p in img.pixels() {
        *counts.entry([p[0], p[1], p[2]]).or_default() += 1;
    }
    if counts.len() <= 256 {
        return;
    }
    let mut player: Vec<([u8; 3], usize)> = counts
        .iter()
        .filter(|(c, _)| is_player_colour(**c))
        .map(|(c, n)| (*c, *n))
        .collect();
    player.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    player.truncate(PLAYER_PALETTE);
    let kept: Vec<[u8; 3]> = player.into_iter().map(|(c, _)| c).collect();
    let others: Vec<u8> = img
        .pixels()
        .filter(|p| !is_player_colour([p[0], p[1], p[2]]))
        .flat_map(|p| p.0)
        .collect();
    let quant =
        (!others.is_empty()).then(|| color_quant::NeuQuant::new(10, 256 - kept.len(), &others));
    let nearest_kept = |c: [u8; 3]| {
        *kept
            .iter()
            .min_by_key(|k| crate::game::theme::distance(**k, c))
            .expect("a player colour was seen, so one is kept")
    };
    for p in img.pixels_mut() {
        let c = [p[0], p[1], p[2]];
        let new = if is_player_colour(c) {
            nearest_kept(c)
        } else if let Some(q) = &quant {
            let i = q.index_of(&p.0);
            let m = q.lookup(i).expect("an index NeuQuant gave");
            [m[0], m[1], m[2]]
        } else {
            c
        };
        p.0 = [new[0], new[1], new[2], 255];
    }
}

/// One image of frames in rows (each row's frames side by side), nearest-neighbour scaled by
/// `scale`, 2 px apart, inside a `margin`, on `background`: a GIF frame, a contact sheet.
pub fn grid(rows: &[Vec<Vec<u8>>], scale: u32, margin: u32, background: [u8; 3]) -> RgbaImage {
    let scale = scale.max(1);
    let cell = FRAME_SIDE * scale + GAP;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0).max(1) as u32;
    let (w, h) = (
        columns * cell - GAP + 2 * margin,
        rows.len().max(1) as u32 * cell - GAP + 2 * margin,
    );
    let [r, g, b] = background;
    let mut img = RgbaImage::from_pixel(w, h, image::Rgba([r, g, b, 255]));
    for (row_index, row) in rows.iter().enumerate() {
        for (column, frame) in row.iter().enumerate() {
            let (x0, y0) = (
                margin + column as u32 * cell,
                margin + row_index as u32 * cell,
            );
            for y in 0..FRAME_SIDE * scale {
                for x in 0..FRAME_SIDE * scale {
                    let p = (((y / scale) * FRAME_SIDE + x / scale) * 3) as usize;
                    img.put_pixel(
                        x0 + x,
                        y0 + y,
                        image::Rgba([frame[p], frame[p + 1], frame[p + 2], 255]),
                    );
                }
            }
        }
    }
    img
}

/// Writes `frame_00000.png`, … into `dir`.
pub fn write_pngs(dir: &Path, frames: &[Vec<u8>]) -> Result<(), ExportError> {
    if frames.is_empty() {
        return Err(ExportError::Empty);
    }
    std::fs::create_dir_all(dir).map_err(|e| ExportError::Write {
        path: dir.into(),
        what: e.to_string(),
    })?;
    for (i, frame) in frames.iter().enumerate() {
        let path = dir.join(format!("frame_{i:05}.png"));
        save_png(&path, frame).map_err(|e| ExportError::Write {
            path: path.clone(),
            what: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::AnimationDecoder;

    fn frame(v: u8) -> Vec<u8> {
        vec![v; (FRAME_SIDE * FRAME_SIDE * 3) as usize]
    }

    #[test]
    fn gif_has_every_frame_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/dream.gif");
        let rows = vec![
            vec![frame(0), frame(255)],
            vec![frame(255), frame(0)],
            vec![frame(0), frame(0)],
        ];
        write_gif(&path, &rows, 2, 10).unwrap();
        let dec = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).unwrap(),
        ))
        .unwrap();
        let frames = dec.into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), 3);
        let img = frames[0].buffer();
        assert_eq!(img.dimensions(), (128 * 2 + GAP, 128));
        assert_eq!(img.get_pixel(10, 10)[0], 0);
        assert_eq!(img.get_pixel(128 + GAP + 10, 10)[0], 255);
    }

    #[test]
    fn a_gif_keeps_every_pixel_of_the_players_colour() {
        // Six frames dreamed by the shipped checkpoint on level 1,003,417 in whose GIF a quantizer
        // left to itself lost one or two of the player's pixels (at the rim of the sprite).
        let raw = include_bytes!("../../../../tests/data/dreamed_frames.rgb");
        let frames: Vec<Vec<u8>> = raw.chunks_exact(64 * 64 * 3).map(<[u8]>::to_vec).collect();
        let player = |f: &[u8]| {
            f.chunks_exact(3)
                .filter(|c| is_player_colour([c[0], c[1], c[2]]))
                .count()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.gif");
        let rows: Vec<Vec<Vec<u8>>> = frames.iter().map(|f| vec![f.clone()]).collect();
        write_gif(&path, &rows, 1, 10).unwrap();
        let dec = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).unwrap(),
        ))
        .unwrap();
        let written = dec.into_frames().collect_frames().unwrap();
        for (frame, gif) in frames.iter().zip(&written) {
            let rgb: Vec<u8> = gif
                .buffer()
                .pixels()
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            assert!(player(frame) > 0);
            assert_eq!(
                player(&rgb),
                player(frame),
                "the player's pixels survive the palette"
            );
        }
    }

    #[test]
    fn apng_is_lossless() {
        let frame: Vec<u8> = (0..(FRAME_SIDE * FRAME_SIDE * 3) as usize)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let rows = vec![
            vec![frame.clone()],
            vec![frame.iter().map(|v| 255 - v).collect()],
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.png");
        write_animation(&path, &rows, 1, 10).unwrap();
        let dec = image::codecs::png::PngDecoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).unwrap(),
        ))
        .unwrap();
        let frames = dec.apng().unwrap().into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), 2);
        let rgb: Vec<u8> = frames[1]
            .buffer()
            .pixels()
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(rgb, rows[1][0]);
    }

    #[test]
    fn pngs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        write_pngs(dir.path(), &[frame(7), frame(9)]).unwrap();
        let img = image::open(dir.path().join("frame_00001.png"))
            .unwrap()
            .to_rgb8();
        assert_eq!(img.get_pixel(3, 3)[0], 9);
        assert!(matches!(
            write_pngs(dir.path(), &[]),
            Err(ExportError::Empty)
        ));
    }
}
