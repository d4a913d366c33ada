//! `genie data import`: gameplay video of any game into the shards and manifest `genie data`
//! writes, without actions (Genie learns its latent actions from video alone).
//!
//! Sources: video files (MP4, WebM, MKV, MOV, AVI, through ffmpeg), animated GIF, WebP and PNG
//! (through `image`), and folders of numbered PNG/JPEG frames. Each source is resampled to
//! `--fps` (a frame folder is taken as already at that rate), cropped (`--crop`) and resized to
//! 64×64, split at scene cuts (the mean absolute difference between two frames above
//! `--cut`), and cut into clips of `--frames-per-episode` frames that never span a cut. Every
//! `--held-out-every`-th source goes to the held-out split instead of the training one. A source
//! that cannot be read is named on stderr and skipped; the others are imported.
//!
//! A clip's `level_seeds` entry is the index of its source in the manifest's `sources`; its
//! actions are [`NO_ACTION`] and the manifest says `labelled: false`.
//!
//! With `--actions`, the actions kept aside when the video was recorded come along, to measure
//! a world afterwards (calibration, action fidelity), never to train it: each source has a
//! sidecar ([`labels_path`]: `NAME.actions.json` beside a video, `actions.json` in a frame
//! folder) holding `{"actions": ["right", "jump", …]}`, genie's action names, one per frame of
//! the source at `--fps` (`actions[k]` pressed from frame k to frame k+1, as in the
//! platformer's clips). A source without one, or whose count differs from its frames, is named
//! and skipped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use image::{AnimationDecoder, RgbImage, imageops::FilterType};

use super::DataError;
use super::spec::{FORMAT_VERSION, MANIFEST, Manifest, ShardEntry, shard_name};
use super::write::write_shard_file;
use crate::game::{FRAME_BYTES, FRAME_SIZE, GameConfig};

/// The action stored for every frame of unlabelled video.
pub const NO_ACTION: u8 = u8::MAX;
/// Frames kept of one source at most (about 100 MB of 64×64 frames); the rest is left out.
pub const MAX_SOURCE_FRAMES: usize = 8192 * 4;
/// Video files read through ffmpeg, by extension.
const VIDEO: [&str; 7] = ["mp4", "webm", "mkv", "mov", "avi", "m4v", "mpg"];
/// Still pictures a frame folder holds, by extension.
const STILL: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// How a picture becomes a square before it is resized to 64×64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crop {
    /// The largest centred square.
    Centre,
    /// The whole picture, squeezed.
    Full,
    /// A rectangle of the source: left, top, width, height in pixels.
    Rect { x: u32, y: u32, w: u32, h: u32 },
}

impl std::str::FromStr for Crop {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "centre" | "center" => Ok(Crop::Centre),
            "full" => Ok(Crop::Full),
            rect => {
                let parts: Vec<Result<u32, _>> =
                    rect.split(',').map(|p| p.trim().parse::<u32>()).collect();
                match parts.as_slice() {
                    [Ok(x), Ok(y), Ok(w), Ok(h)] if *w > 0 && *h > 0 => Ok(Crop::Rect {
                        x: *x,
                        y: *y,
                        w: *w,
                        h: *h,
                    }),
                    _ => Err(format!(
                        "--crop {s:?}: expected centre, full or X,Y,W,H (pixels, W and H > 0)"
                    )),
                }
            }
        }
    }
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportSpec {
    pub inputs: Vec<PathBuf>,
    pub fps: f64,
    pub crop: Crop,
    /// Frames per clip.
    pub clip_len: usize,
    /// Mean absolute difference per channel (0–255) between consecutive frames that counts as a
    /// scene cut.
    pub cut: f64,
    /// Every N-th source (the N-th, 2N-th, …) goes to the held-out split; 0: none.
    pub held_out_every: usize,
    pub shard_size: usize,
    pub overwrite: bool,
    /// Read each source's actions from its sidecar ([`labels_path`]).
    pub actions: bool,
}

/// Largest sidecar of actions read: a few dozen bytes a frame for the most frames a source keeps.
const MAX_LABELS_BYTES: u64 = 64 * MAX_SOURCE_FRAMES as u64;

/// Where a source's actions are kept: `NAME.actions.json` beside a file, `actions.json` inside
/// a frame folder.
pub fn labels_path(source: &Path) -> PathBuf {
    if source.is_dir() {
        source.join("actions.json")
    } else {
        source.with_extension("actions.json")
    }
}

/// The action ids of `source`'s `frames` frames, from its sidecar.
fn read_labels(source: &Path, frames: usize) -> Result<Vec<u8>, String> {
    #[derive(serde::Deserialize)]
    struct Sidecar {
        actions: Vec<String>,
    }
    let path = labels_path(source);
    let fail = |why: String| format!("{}: {why}", path.display());
    let file = std::fs::File::open(&path).map_err(|e| fail(format!("no actions ({e})")))?;
    let size = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    if size > MAX_LABELS_BYTES {
        return Err(fail(format!(
            "{size} bytes, more than the {MAX_LABELS_BYTES} the actions of {MAX_SOURCE_FRAMES} \
             frames need"
        )));
    }
    let mut text = Vec::new();
    file.take(MAX_LABELS_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    let sidecar: Sidecar =
        crate::json::parse(&text).map_err(|e| fail(format!("not an actions file: {e}")))?;
    // A source cut at MAX_SOURCE_FRAMES keeps the actions of the frames it kept; any other
    // count but the frames' means the actions do not line up with them.
    let cut = frames == MAX_SOURCE_FRAMES && sidecar.actions.len() > frames;
    if sidecar.actions.len() != frames && !cut {
        return Err(fail(format!(
            "{} actions for {frames} frames at --fps: import at the rate the actions were \
             recorded at",
            sidecar.actions.len()
        )));
    }
    let mut ids = Vec::with_capacity(frames);
    for (k, name) in sidecar.actions.iter().take(frames).enumerate() {
        let action = crate::game::Action::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                fail(format!(
                    "action {k} is {name:?}, not one of genie's ({})",
                    crate::game::Action::ALL.map(|a| a.name()).join(", ")
                ))
            })?;
        ids.push(action as u8);
    }
    Ok(ids)
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The training split (`OUT/train`) and, if any source was held out, `OUT/held-out`.
    pub splits: Vec<(PathBuf, Manifest)>,
    /// Sources skipped, with why.
    pub skipped: Vec<(PathBuf, String)>,
    /// Scene cuts found.
    pub cuts: usize,
}

/// The sources named by `inputs`: files as they are; a folder of pictures is one source (its
/// frames); any other folder gives the sources directly inside it. Sorted within a folder.
pub fn sources(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() && !is_frame_folder(input) {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(input)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            inside.sort();
            out.extend(
                inside
                    .into_iter()
                    .filter(|p| p.is_dir() || kind(p).is_some()),
            );
        } else {
            out.push(input.clone());
        }
    }
    out
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Video,
    Gif,
    WebP,
    Png,
}

fn kind(path: &Path) -> Option<Kind> {
    let ext = extension(path);
    match ext.as_str() {
        "gif" => Some(Kind::Gif),
        "webp" => Some(Kind::WebP),
        "png" | "apng" => Some(Kind::Png),
        e if VIDEO.contains(&e) => Some(Kind::Video),
        _ => None,
    }
}

fn is_frame_folder(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.flatten()
            .any(|e| STILL.contains(&extension(&e.path()).as_str()))
    })
}

/// Makes a picture a 64×64 frame.
fn to_frame(img: &RgbImage, crop: Crop) -> Result<Vec<u8>, String> {
    let (w, h) = img.dimensions();
    let (x, y, cw, ch) = match crop {
        Crop::Full => (0, 0, w, h),
        Crop::Centre => {
            let side = w.min(h);
            ((w - side) / 2, (h - side) / 2, side, side)
        }
        Crop::Rect { x, y, w: cw, h: ch } => {
            if x.checked_add(cw).is_none_or(|r| r > w) || y.checked_add(ch).is_none_or(|b| b > h) {
                return Err(format!(
                    "--crop {x},{y},{cw},{ch} reaches outside the {w}×{h} picture"
                ));
            }
            (x, y, cw, ch)
        }
    };
    if cw == 0 || ch == 0 {
        return Err(format!("a {w}×{h} picture has nothing to crop"));
    }
    let part = image::imageops::crop_imm(img, x, y, cw, ch).to_image();
    let side = FRAME_SIZE as u32;
    Ok(image::imageops::resize(&part, side, side, FilterType::Triangle).into_raw())
}

/// Frames of an animation shown at the times of `delays_ms` (each frame's display time),
/// sampled at `fps`.
fn resample(frames: Vec<Vec<u8>>, delays_ms: &[f64], fps: f64) -> Vec<Vec<u8>> {
    let total: f64 = delays_ms.iter().sum();
    if frames.is_empty() || total <= 0.0 {
        return frames;
    }
    let step = 1000.0 / fps;
    let (mut out, mut shown_until, mut i) = (Vec::new(), delays_ms[0], 0);
    let mut t = 0.0;
    while t < total && out.len() < MAX_SOURCE_FRAMES {
        while t >= shown_until && i + 1 < frames.len() {
            i += 1;
            shown_until += delays_ms[i];
        }
        out.push(frames[i].clone());
        t += step;
    }
    out
}

/// A source's frames, 64×64, at `spec.fps`.
fn read_frames(path: &Path, spec: &ImportSpec) -> Result<Vec<Vec<u8>>, String> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .filter(|p| STILL.contains(&extension(p).as_str()))
            .collect();
        files.sort();
        files.truncate(MAX_SOURCE_FRAMES);
        return files
            .iter()
            .map(|f| {
                let img = image::open(f)
                    .map_err(|e| format!("{}: {e}", f.display()))?
                    .to_rgb8();
                to_frame(&img, spec.crop)
            })
            .collect();
    }
    let open = || -> Result<_, String> {
        Ok(std::io::BufReader::new(
            std::fs::File::open(path).map_err(|e| e.to_string())?,
        ))
    };
    let animation = |frames: image::Frames<'_>| -> Result<Vec<Vec<u8>>, String> {
        let (mut pictures, mut delays) = (Vec::new(), Vec::new());
        for frame in frames.take(MAX_SOURCE_FRAMES) {
            let frame = frame.map_err(|e| e.to_string())?;
            let (num, den) = frame.delay().numer_denom_ms();
            delays.push(if den == 0 {
                100.0
            } else {
                num as f64 / den as f64
            });
            let rgb = image::DynamicImage::ImageRgba8(frame.into_buffer()).to_rgb8();
            pictures.push(to_frame(&rgb, spec.crop)?);
        }
        // Browsers show a 0 ms frame for 100 ms; so do we.
        let delays: Vec<f64> = delays
            .into_iter()
            .map(|d| if d <= 0.0 { 100.0 } else { d })
            .collect();
        Ok(resample(pictures, &delays, spec.fps))
    };
    match kind(path) {
        Some(Kind::Video) => ffmpeg(path, spec),
        Some(Kind::Gif) => {
            let decoder =
                image::codecs::gif::GifDecoder::new(open()?).map_err(|e| e.to_string())?;
            animation(decoder.into_frames())
        }
        Some(Kind::WebP) => {
            let decoder =
                image::codecs::webp::WebPDecoder::new(open()?).map_err(|e| e.to_string())?;
            animation(decoder.into_frames())
        }
        Some(Kind::Png) => {
            let decoder =
                image::codecs::png::PngDecoder::new(open()?).map_err(|e| e.to_string())?;
            if !decoder.is_apng().map_err(|e| e.to_string())? {
                return Err("a single picture, not a video (put frames in a folder)".into());
            }
            animation(decoder.apng().map_err(|e| e.to_string())?.into_frames())
        }
        None => Err(format!(
            "not a video genie reads (by its extension: {}, gif, webp, png, or a folder of \
             frames)",
            VIDEO.join(", ")
        )),
    }
}

/// A video's frames through ffmpeg: resampled, cropped and scaled by ffmpeg itself.
fn ffmpeg(path: &Path, spec: &ImportSpec) -> Result<Vec<Vec<u8>>, String> {
    let crop = match spec.crop {
        Crop::Centre => "crop='min(iw,ih)':'min(iw,ih)',".to_string(),
        Crop::Full => String::new(),
        Crop::Rect { x, y, w, h } => format!("crop={w}:{h}:{x}:{y},"),
    };
    let filter = format!(
        "fps={},{crop}scale={FRAME_SIZE}:{FRAME_SIZE}:flags=area",
        spec.fps
    );
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &filter, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "reading video needs ffmpeg, which is not installed (scripts/setup.sh installs \
                 it)"
                .to_string()
            }
            _ => format!("starting ffmpeg: {e}"),
        })?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut frames = Vec::new();
    let mut frame = vec![0; FRAME_BYTES];
    while frames.len() < MAX_SOURCE_FRAMES {
        match stdout.read_exact(&mut frame) {
            Ok(()) => frames.push(frame.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("reading ffmpeg's output: {e}")),
        }
    }
    drop(stdout);
    let complete = frames.len() < MAX_SOURCE_FRAMES;
    if !complete {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let errors = errors.join().unwrap_or_default();
    if complete && !status.success() {
        let first = errors.lines().next().unwrap_or("no message");
        return Err(format!("ffmpeg could not read it: {first}"));
    }
    if frames.is_empty() {
        return Err("no frames".into());
    }
    Ok(frames)
}

/// Mean absolute difference per channel between two frames, 0–255.
fn difference(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
    sum as f64 / a.len().max(1) as f64
}

/// Runs of frames between scene cuts (`cut`), and how many cuts there were.
fn scenes(frames: &[Vec<u8>], cut: f64) -> (Vec<std::ops::Range<usize>>, usize) {
    let mut runs = Vec::new();
    let mut start = 0;
    for t in 1..frames.len() {
        if difference(&frames[t - 1], &frames[t]) > cut {
            runs.push(start..t);
            start = t;
        }
    }
    runs.push(start..frames.len());
    let cuts = runs.len() - 1;
    (runs, cuts)
}

/// Imports `spec.inputs` into `out/train` (and `out/held-out`).
pub fn import(spec: &ImportSpec, out: &Path, progress: bool) -> Result<ImportReport, DataError> {
    let bad = |what: &str| DataError::Import {
        what: what.to_string(),
    };
    if spec.clip_len == 0 {
        return Err(DataError::NoFrames);
    }
    if spec.shard_size == 0 {
        return Err(DataError::NoShardSize);
    }
    if !(spec.fps.is_finite() && spec.fps > 0.0 && spec.fps <= 240.0) {
        return Err(bad("--fps must be above 0 and at most 240"));
    }
    if !(spec.cut.is_finite() && spec.cut > 0.0) {
        return Err(bad("--cut must be a positive number (0–255)"));
    }
    let sources = sources(&spec.inputs);
    if sources.is_empty() {
        return Err(bad(
            "no sources: name video files, animations or frame folders",
        ));
    }
    let splits = [out.join("train"), out.join("held-out")];
    for dir in &splits {
        if dir.join(MANIFEST).exists() && !spec.overwrite {
            return Err(DataError::OutputExists { path: dir.clone() });
        }
    }
    let bar = if progress {
        indicatif::ProgressBar::new(sources.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut writers = [Split::default(), Split::default()];
    let mut report = ImportReport {
        splits: Vec::new(),
        skipped: Vec::new(),
        cuts: 0,
    };
    for (i, source) in sources.iter().enumerate() {
        bar.set_message(source.display().to_string());
        let held = spec.held_out_every > 0 && (i + 1) % spec.held_out_every == 0;
        let read = read_frames(source, spec).and_then(|frames| {
            let labels = if spec.actions {
                read_labels(source, frames.len())?
            } else {
                vec![NO_ACTION; frames.len()]
            };
            Ok((frames, labels))
        });
        match read {
            Ok((frames, labels)) => {
                let (runs, cuts) = scenes(&frames, spec.cut);
                report.cuts += cuts;
                let split = &mut writers[usize::from(held)];
                let index = split.sources.len() as u64;
                let mut clips = 0;
                for run in runs {
                    for start in (run.start..run.end).step_by(spec.clip_len) {
                        if start + spec.clip_len > run.end {
                            break;
                        }
                        for frame in &frames[start..start + spec.clip_len] {
                            split.frames.extend_from_slice(frame);
                        }
                        split
                            .actions
                            .extend_from_slice(&labels[start..start + spec.clip_len]);
                        split.seeds.push(index);
                        clips += 1;
                        if split.seeds.len() == spec.shard_size {
                            split.flush(&splits[usize::from(held)], spec)?;
                        }
                    }
                }
                if clips == 0 {
                    bar.suspend(|| {
                        eprintln!(
                            "{}: {} frames, no run of {} between cuts: no clip",
                            source.display(),
                            frames.len(),
                            spec.clip_len
                        )
                    });
                }
                split.sources.push(source.display().to_string());
            }
            Err(why) => {
                bar.suspend(|| eprintln!("skipping {}: {why}", source.display()));
                report.skipped.push((source.clone(), why));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for (split, dir) in writers.iter_mut().zip(&splits) {
        if split.sources.is_empty() {
            continue;
        }
        split.flush(dir, spec)?;
        let manifest = split.manifest(spec, dir == &splits[1]);
        if manifest.episodes == 0 {
            continue;
        }
        let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
        let (tmp, path) = (dir.join("manifest.json.tmp"), dir.join(MANIFEST));
        std::fs::write(&tmp, json + "\n").map_err(DataError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(DataError::io(&path))?;
        report.splits.push((dir.clone(), manifest));
    }
    if report.splits.is_empty() {
        return Err(bad(&format!(
            "no clip of {} frames in any source ({} skipped)",
            spec.clip_len,
            report.skipped.len()
        )));
    }
    Ok(report)
}

/// One split being written: the clips not yet in a shard, the shards written, its sources.
#[derive(Default)]
struct Split {
    frames: Vec<u8>,
    actions: Vec<u8>,
    seeds: Vec<u64>,
    shards: Vec<ShardEntry>,
    sources: Vec<String>,
}

impl Split {
    /// Writes the pending clips as the next shard.
    fn flush(&mut self, dir: &Path, spec: &ImportSpec) -> Result<(), DataError> {
        let n = self.seeds.len();
        if n == 0 {
            return Ok(());
        }
        if self.shards.is_empty() {
            std::fs::create_dir_all(dir).map_err(DataError::io(dir))?;
            let stale = dir.join(MANIFEST);
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(DataError::io(&stale))?;
            }
        }
        let file = shard_name(self.shards.len());
        let seeds: Vec<u8> = self.seeds.iter().flat_map(|s| s.to_le_bytes()).collect();
        write_shard_file(
            &dir.join(&file),
            n,
            spec.clip_len,
            &self.frames,
            &self.actions,
            &seeds,
        )?;
        self.shards.push(ShardEntry { file, episodes: n });
        self.frames.clear();
        self.actions.clear();
        self.seeds.clear();
        Ok(())
    }

    fn manifest(&self, spec: &ImportSpec, held_out: bool) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            frame_size: [FRAME_SIZE, FRAME_SIZE, 3],
            clip_len: spec.clip_len,
            episodes: self.shards.iter().map(|s| s.episodes).sum(),
            seed: 0,
            held_out,
            difficulty: 0.0,
            game: GameConfig::default(),
            labelled: spec.actions,
            sources: self.sources.clone(),
            action_names: if spec.actions {
                crate::game::Action::ALL
                    .map(|a| a.name().to_owned())
                    .to_vec()
            } else {
                Vec::new()
            },
            shards: self.shards.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: u8) -> Vec<u8> {
        vec![v; FRAME_BYTES]
    }

    #[test]
    fn crops_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!("centre".parse(), Ok(Crop::Centre));
        assert_eq!("full".parse(), Ok(Crop::Full));
        assert_eq!(
            "1, 2,30,40".parse(),
            Ok(Crop::Rect {
                x: 1,
                y: 2,
                w: 30,
                h: 40
            })
        );
        for bad in ["", "1,2,3", "1,2,0,4", "a,b,c,d"] {
            assert!(bad.parse::<Crop>().unwrap_err().contains("X,Y,W,H"));
        }
        let img = RgbImage::new(10, 10);
        let err = to_frame(&img, "5,5,6,6".parse().unwrap()).unwrap_err();
        assert!(err.contains("outside the 10×10"), "{err}");
        assert_eq!(to_frame(&img, Crop::Centre).unwrap().len(), FRAME_BYTES);
    }

    #[test]
    fn animations_resample_to_the_frame_rate_by_display_time() {
        let frames = vec![frame(0), frame(1), frame(2)];
        // 100 ms, 50 ms, 250 ms at 20 frames/s (50 ms apart): 2, 1 and 5 samples.
        let out = resample(frames, &[100.0, 50.0, 250.0], 20.0);
        let values: Vec<u8> = out.iter().map(|f| f[0]).collect();
        assert_eq!(values, [0, 0, 1, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn bad_action_files_are_one_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("game.mp4");
        let sidecar = labels_path(&video);
        assert!(sidecar.ends_with("game.actions.json"));
        let frames = dir.path().join("frames");
        std::fs::create_dir(&frames).unwrap();
        assert_eq!(labels_path(&frames), frames.join("actions.json"));

        let err = read_labels(&video, 2).unwrap_err();
        assert!(
            err.contains("game.actions.json") && err.contains("no actions"),
            "{err}"
        );
        for (text, want) in [
            (r#"{"actions": ["right", "fly"]}"#, "action 1 is \"fly\""),
            (r#"{"actions": "right"}"#, "not an actions file"),
            ("not json", "not an actions file"),
            (r#"{"actions": ["right"]}"#, "1 actions for 2 frames"),
        ] {
            std::fs::write(&sidecar, text).unwrap();
            let err = read_labels(&video, 2).unwrap_err();
            assert!(
                err.contains("game.actions.json") && err.contains(want),
                "{text}: {err}"
            );
        }
        std::fs::write(&sidecar, r#"{"actions": ["right", "jump", "noop"]}"#).unwrap();
        let err = read_labels(&video, 2).unwrap_err();
        assert!(
            err.contains("3 actions for 2 frames"),
            "more than the frames: {err}"
        );
        std::fs::write(&sidecar, vec![b' '; MAX_LABELS_BYTES as usize + 1]).unwrap();
        assert!(
            read_labels(&video, 2)
                .unwrap_err()
                .contains("bytes, more than")
        );
        std::fs::write(&sidecar, r#"{"actions": ["right", "jump"]}"#).unwrap();
        assert_eq!(read_labels(&video, 2).unwrap(), [2, 3]);
    }

    #[test]
    fn scene_cuts_split_runs_where_the_picture_changes_at_once() {
        let frames = vec![
            frame(10),
            frame(12),
            frame(200),
            frame(201),
            frame(199),
            frame(0),
        ];
        let (runs, cuts) = scenes(&frames, 40.0);
        assert_eq!(runs, [0..2, 2..5, 5..6]);
        assert_eq!(cuts, 2);
    }
}
