//! Exports: frames to an animated GIF (several worlds side by side) or a folder of PNGs.

use std::path::{Path, PathBuf};

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame as GifFrame, RgbaImage};

use super::prompt::{FRAME_SIDE, save_png};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export {path}: {what}")]
    Write { path: PathBuf, what: String },
    #[error("nothing to export: no frames")]
    Empty,
}

/// Pixels between side-by-side frames.
const GAP: u32 = 2;

/// Writes an animated GIF, each row's frames side by side, scaled by `scale`, at `fps`.
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
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut encoder = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
    encoder
        .set_repeat(Repeat::Infinite)
        .map_err(|e| err(e.to_string()))?;
    let delay = Delay::from_numer_denom_ms(1000, fps.max(1));
    for row in rows {
        encoder
            .encode_frame(GifFrame::from_parts(
                grid(std::slice::from_ref(row), scale, 0, [0, 0, 0]),
                0,
                0,
                delay,
            ))
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(())
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
