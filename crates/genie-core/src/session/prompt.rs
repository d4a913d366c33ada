//! Prompts: the picture (or the last frames of a clip) a world starts from.
//!
//! Any PNG, JPEG, GIF, WebP or BMP of any size and aspect becomes 64×64 RGB: centre-cropped to a
//! square, resized with a Lanczos filter, alpha flattened onto white. An animated GIF yields its
//! last frames (up to the model's context), so a dream can extend a video; a recording folder
//! its last frames, so a dream can continue a session.
//!
//! [`Prompt::open`] is the one way players and tools read a prompt: it also redraws the
//! picture's hero in the game's convention ([`super::hero`]), so the CLI, the window's
//! drag-and-drop and the evaluation all tokenize the same frames, and a recording, which stores
//! the frames it started from, replays them.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use image::{
    AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbaImage,
    imageops::FilterType,
};

use super::hero::{self, HeroChoice, HeroError, HeroOutcome};
use super::record::{RecordError, Recording};

/// Side of a frame, in pixels.
pub const FRAME_SIDE: u32 = 64;

/// Frames a prompt (an animated GIF, a recording's prompt) may hold: past any model's context.
pub const MAX_PROMPT_FRAMES: usize = 1024;

/// Limits on decoding any picture genie reads, far above any prompt (16384 pixels a side, 256 MiB
/// of pixels: an 8K photo), so a hostile header (a PNG that claims 10⁵ × 10⁵ pixels) is refused
/// before its pixels are allocated.
pub fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 << 20);
    limits
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt {path}: cannot read the file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("prompt {path}: not an image genie can read (PNG, JPEG, GIF, WebP or BMP): {reason}")]
    NotAnImage { path: PathBuf, reason: String },
    #[error("prompt {path}: the image is empty ({width}×{height})")]
    Empty {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("prompt {path}: {source}")]
    Hero {
        path: PathBuf,
        #[source]
        source: HeroError,
    },
    #[error(transparent)]
    Recording(#[from] RecordError),
    #[error("prompt {0}: the recording holds no frames")]
    NoFrames(PathBuf),
}

/// A prompt as read by [`Prompt::open`], and what its hero step did.
#[derive(Debug, Clone)]
pub struct Opened {
    pub prompt: Prompt,
    pub hero: HeroOutcome,
}

/// One or more 64×64 RGB frames, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Each `64 * 64 * 3` bytes, row-major RGB.
    pub frames: Vec<Vec<u8>>,
}

impl Prompt {
    /// Reads a prompt the way players do: an image (an animated GIF keeps its last
    /// `max_frames` frames) or a recording folder (its last `max_frames` frames), then the hero
    /// step of `hero`.
    pub fn open(path: &Path, max_frames: usize, hero: HeroChoice) -> Result<Opened, PromptError> {
        let images = if path.is_dir() {
            let rec = Recording::open(path)?;
            let frames: Vec<Vec<u8>> = rec.prompt.into_iter().chain(rec.frames).collect();
            let skip = frames.len().saturating_sub(max_frames.max(1));
            let images: Vec<RgbaImage> = frames[skip..]
                .iter()
                .map(|f| {
                    let rgba = f.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]);
                    RgbaImage::from_raw(FRAME_SIDE, FRAME_SIDE, rgba.collect())
                        .expect("a recorded frame is 64×64 RGB")
                })
                .collect();
            if images.is_empty() {
                return Err(PromptError::NoFrames(path.into()));
            }
            images
        } else {
            Self::read_images(path, max_frames)?
        };
        let mut frames: Vec<Vec<u8>> = images.iter().map(to_frame).collect();
        let hero = hero::apply(&images, &mut frames, hero).map_err(|source| PromptError::Hero {
            path: path.into(),
            source,
        })?;
        Ok(Opened {
            prompt: Self { frames },
            hero,
        })
    }

    /// Reads an image file as it is, without the hero step (players use [`Prompt::open`]); an
    /// animated GIF keeps its last `max_frames` frames.
    pub fn load(path: &Path, max_frames: usize) -> Result<Self, PromptError> {
        Ok(Self {
            frames: Self::read_images(path, max_frames)?
                .iter()
                .map(to_frame)
                .collect(),
        })
    }

    /// The image file's pictures at their own size.
    fn read_images(path: &Path, max_frames: usize) -> Result<Vec<RgbaImage>, PromptError> {
        let bytes = std::fs::read(path).map_err(|source| PromptError::Io {
            path: path.into(),
            source,
        })?;
        Self::images_from_bytes(&bytes, max_frames).map_err(|reason| match reason {
            BytesError::NotAnImage(reason) => PromptError::NotAnImage {
                path: path.into(),
                reason,
            },
            BytesError::Empty(width, height) => PromptError::Empty {
                path: path.into(),
                width,
                height,
            },
        })
    }

    fn images_from_bytes(bytes: &[u8], max_frames: usize) -> Result<Vec<RgbaImage>, BytesError> {
        let not_an_image = |e: image::ImageError| BytesError::NotAnImage(e.to_string());
        let format =
            image::guess_format(bytes).map_err(|e| BytesError::NotAnImage(e.to_string()))?;
        let images: Vec<RgbaImage> = if format == ImageFormat::Gif {
            let mut decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes))
                .map_err(not_an_image)?;
            decoder.set_limits(decode_limits()).map_err(not_an_image)?;
            // Only the last frames are kept while decoding: a long GIF costs time, not memory.
            let keep = max_frames.clamp(1, MAX_PROMPT_FRAMES);
            let mut last = VecDeque::with_capacity(keep);
            for frame in decoder.into_frames() {
                if last.len() == keep {
                    last.pop_front();
                }
                last.push_back(frame.map_err(not_an_image)?.into_buffer());
            }
            last.into()
        } else {
            let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
            reader.limits(decode_limits());
            vec![reader.decode().map_err(not_an_image)?.to_rgba8()]
        };
        let first = images
            .first()
            .ok_or(BytesError::NotAnImage("no frames".into()))?;
        if first.width() == 0 || first.height() == 0 {
            return Err(BytesError::Empty(first.width(), first.height()));
        }
        Ok(images)
    }

    /// A single-frame prompt from an RGB frame already at 64×64.
    pub fn from_frame(frame: Vec<u8>) -> Self {
        assert_eq!(frame.len(), (FRAME_SIDE * FRAME_SIDE * 3) as usize);
        Self {
            frames: vec![frame],
        }
    }
}

enum BytesError {
    NotAnImage(String),
    Empty(u32, u32),
}

/// Centre crop to a square, resize to 64×64, flatten alpha onto white.
fn to_frame(img: &RgbaImage) -> Vec<u8> {
    let side = img.width().min(img.height());
    let (x, y) = ((img.width() - side) / 2, (img.height() - side) / 2);
    let square = image::imageops::crop_imm(img, x, y, side, side).to_image();
    let filter = if side == FRAME_SIDE {
        FilterType::Nearest
    } else {
        FilterType::Lanczos3
    };
    let small = DynamicImage::ImageRgba8(square)
        .resize_exact(FRAME_SIDE, FRAME_SIDE, filter)
        .to_rgba8();
    small
        .pixels()
        .flat_map(|p| {
            let a = p[3] as u32;
            let blend = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
            [blend(p[0]), blend(p[1]), blend(p[2])]
        })
        .collect()
}

/// Writes a 64×64 RGB frame as a PNG (for tests, exports and saved prompts).
pub fn save_png(path: &Path, frame: &[u8]) -> image::ImageResult<()> {
    image::save_buffer(
        path,
        frame,
        FRAME_SIDE,
        FRAME_SIDE,
        image::ExtendedColorType::Rgb8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    fn write(dir: &Path, name: &str, img: &RgbaImage, format: ImageFormat) -> PathBuf {
        let path = dir.join(name);
        DynamicImage::ImageRgba8(img.clone())
            .to_rgb8()
            .save_with_format(&path, format)
            .unwrap();
        path
    }

    #[test]
    fn wide_image_is_centre_cropped() {
        // 192×64: left third red, middle green, right blue → the crop keeps only green.
        let img = RgbaImage::from_fn(192, 64, |x, _| match x / 64 {
            0 => Rgba([255, 0, 0, 255]),
            1 => Rgba([0, 255, 0, 255]),
            _ => Rgba([0, 0, 255, 255]),
        });
        let dir = tempfile::tempdir().unwrap();
        for (name, format) in [("a.png", ImageFormat::Png), ("a.bmp", ImageFormat::Bmp)] {
            let p = Prompt::load(&write(dir.path(), name, &img, format), 16).unwrap();
            assert_eq!(p.frames.len(), 1);
            assert!(p.frames[0].chunks(3).all(|c| c == [0, 255, 0]), "{name}");
        }
    }

    #[test]
    fn any_size_becomes_64x64_and_jpeg_reads() {
        let img = RgbaImage::from_fn(300, 500, |x, y| {
            Rgba([(x % 256) as u8, (y % 256) as u8, 9, 255])
        });
        let dir = tempfile::tempdir().unwrap();
        let p = Prompt::load(&write(dir.path(), "b.jpg", &img, ImageFormat::Jpeg), 16).unwrap();
        assert_eq!(p.frames[0].len(), 64 * 64 * 3);
    }

    #[test]
    fn alpha_is_flattened_onto_white() {
        let img = RgbaImage::from_pixel(64, 64, Rgba([0, 0, 0, 0]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.png");
        img.save(&path).unwrap();
        let p = Prompt::load(&path, 1).unwrap();
        assert!(p.frames[0].iter().all(|&c| c == 255));
    }

    #[test]
    fn animated_gif_keeps_its_last_frames() {
        use image::{Delay, Frame, codecs::gif::GifEncoder};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.gif");
        {
            let mut enc = GifEncoder::new(std::fs::File::create(&path).unwrap());
            for i in 0..5u8 {
                let img = RgbaImage::from_pixel(64, 64, Rgba([i * 50, 0, 0, 255]));
                enc.encode_frame(Frame::from_parts(
                    img,
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                ))
                .unwrap();
            }
        }
        let p = Prompt::load(&path, 3).unwrap();
        assert_eq!(p.frames.len(), 3);
        assert_eq!(p.frames[2][0], 200);
        assert_eq!(p.frames[0][0], 100);
    }

    #[test]
    fn a_picture_that_claims_to_be_huge_is_refused_before_it_is_decoded() {
        // A real 1×1 PNG whose header then says 60000×60000 (CRC fixed, so only size is wrong).
        let mut png = Vec::new();
        RgbaImage::from_pixel(1, 1, Rgba([1, 2, 3, 255]))
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        std::fs::write(&path, &png).unwrap();
        let err = Prompt::load(&path, 1).unwrap_err().to_string();
        assert!(err.contains("huge.png") && err.contains("limit"), "{err}");
    }

    /// CRC-32 of PNG chunks (ISO 3309), to forge a header in a test.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn open_redraws_the_hero_and_a_recording_keeps_the_redrawn_frames() {
        use crate::game::find_player;
        use crate::session::record::{Recorder, StartState};
        // 200×100 (genie keeps x 50..149): sky, ground from y 80, a green figure on it.
        let img = RgbaImage::from_fn(200, 100, |x, y| {
            if y >= 80 {
                Rgba([90, 60, 30, 255])
            } else if (95..105).contains(&x) && (62..80).contains(&y) {
                Rgba([20, 160, 60, 255])
            } else {
                Rgba([230, 240, 255, 255])
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "scene.png", &img, ImageFormat::Png);
        let plain = Prompt::load(&path, 1).unwrap();
        assert!(find_player(&plain.frames[0]).is_none());
        let opened = Prompt::open(&path, 1, HeroChoice::At { x: 100, y: 70 }).unwrap();
        let HeroOutcome::Redrawn(placed) = opened.hero else {
            panic!("{:?}", opened.hero)
        };
        let (x, _) = find_player(&opened.prompt.frames[0]).expect("the hero is the player now");
        // Figure x 95..105 → frame x 28.8..35.2 (64/200 per pixel after the crop).
        assert!((x - 32.0).abs() <= 1.5, "{x} {placed:?}");

        let rec_dir = dir.path().join("rec");
        let start = StartState {
            version: 1,
            world: "dream".into(),
            checkpoint: None,
            checkpoint_hash: None,
            sampler: None,
            seed: 0,
            level_seed: None,
            prompt_frames: 0,
            threads: None,
            learn: None,
        };
        drop(Recorder::create(&rec_dir, &start, &opened.prompt.frames).unwrap());
        let again = Prompt::open(&rec_dir, 4, HeroChoice::Auto).unwrap();
        assert_eq!(
            again.prompt, opened.prompt,
            "a recording replays the redrawn prompt"
        );
        assert_eq!(again.hero, HeroOutcome::AlreadyDrawn);

        let err = Prompt::open(&path, 1, HeroChoice::At { x: 10, y: 70 })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scene.png") && err.contains("centred square"),
            "{err}"
        );
        let err = Prompt::open(&path, 1, HeroChoice::At { x: 100, y: 300 })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scene.png") && err.contains("outside the picture"),
            "{err}"
        );
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.png");
        std::fs::write(&text, "this is not a picture").unwrap();
        let err = Prompt::load(&text, 1).unwrap_err().to_string();
        assert!(
            err.contains("notes.png") && err.contains("not an image"),
            "{err}"
        );

        let truncated = dir.path().join("cut.png");
        let img = RgbaImage::from_pixel(64, 64, Rgba([1, 2, 3, 255]));
        img.save(&truncated).unwrap();
        let bytes = std::fs::read(&truncated).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let err = Prompt::load(&truncated, 1).unwrap_err().to_string();
        assert!(err.contains("cut.png"), "{err}");

        let missing = dir.path().join("nope.webp");
        let err = Prompt::load(&missing, 1).unwrap_err().to_string();
        assert!(
            err.contains("nope.webp") && err.contains("cannot read"),
            "{err}"
        );
    }
}
