//! The player from the outside, through the `genie` binary, on a tiny random checkpoint: a
//! headless dream recorded, replayed frame for frame and exported; bad prompts answered with a
//! clear error; and `genie play` in a real window under Xvfb (Mesa's software Vulkan), whose
//! screenshot must show the frame the dream made.

#[path = "common/xwd.rs"]
mod xwd;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use genie::game::Game;
use genie::model::tokenizer::TokenizerConfig;
use genie::model::{DynamicsConfig, Genie, GenieConfig, LamConfig, StConfig};
use tch::Device;

fn genie_bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genie"));
    cmd.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    cmd
}

/// A checkpoint of the real frame size with very small networks: fast, and random but fixed.
fn tiny_checkpoint(dir: &Path) {
    let st = StConfig::new(16, 1, 2);
    let cfg = GenieConfig {
        tokenizer: TokenizerConfig {
            codebook_size: 64,
            latent_dim: 8,
            context_frames: 8,
            encoder: st.clone(),
            decoder: st.clone(),
            ..Default::default()
        },
        lam: LamConfig {
            latent_dim: 8,
            context_frames: 8,
            encoder: st.clone(),
            decoder: st.clone(),
            ..Default::default()
        },
        dynamics: DynamicsConfig {
            vocab_size: 64,
            tokens_per_frame: 64,
            num_actions: 8,
            context_frames: 8,
            st,
            ..Default::default()
        },
        ..Default::default()
    };
    tch::manual_seed(5);
    Genie::new(cfg, Device::Cpu).unwrap().save(dir).unwrap();
}

fn prompt_png(path: &Path) {
    let frame = Game::new(1_000_003).frame();
    image::RgbImage::from_raw(64, 64, frame)
        .unwrap()
        .save(path)
        .unwrap();
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run genie");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "genie failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `genie dream` on one thread (so the recording replays bit for bit), recorded into `rec`.
fn dream(ckpt: &Path, prompt: &Path, extra: &[&str], gif: &Path, rec: &Path) {
    run_ok(
        genie_bin()
            .args(["dream", "--threads", "1"])
            .args(extra)
            .arg("--checkpoint")
            .arg(ckpt)
            .arg("--prompt")
            .arg(prompt)
            .arg("--out")
            .arg(gif)
            .arg("--record")
            .arg(rec),
    );
}

#[test]
fn a_learnt_picture_is_recorded_with_its_learning_and_replays_frame_for_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, prompt, rec) = (
        tmp.path().join("ckpt"),
        tmp.path().join("p.png"),
        tmp.path().join("rec"),
    );
    tiny_checkpoint(&ckpt);
    prompt_png(&prompt);
    let before = std::fs::read(ckpt.join("dynamics.safetensors")).unwrap();
    let gif = tmp.path().join("d.gif");
    let args = [
        "--learn",
        "--learn-steps",
        "2,3",
        "--actions",
        "right*3,jump,left",
    ];
    dream(&ckpt, &prompt, &args, &gif, &rec);
    let start: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rec.join("start.json")).unwrap()).unwrap();
    assert_eq!(start["learn"]["decoder_steps"], 2);
    assert_eq!(start["learn"]["dynamics_steps"], 3);
    // Learning the picture changes the weights in memory only.
    assert_eq!(
        std::fs::read(ckpt.join("dynamics.safetensors")).unwrap(),
        before
    );
    let report = run_ok(genie_bin().args(["replay".as_ref(), rec.as_os_str()]));
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(report["matching"], 6, "{report}");
    // Without the learning the same events make other frames: replay must notice.
    let start_path = rec.join("start.json");
    let mut start = start;
    start.as_object_mut().unwrap().remove("learn");
    std::fs::write(&start_path, serde_json::to_vec(&start).unwrap()).unwrap();
    let out = genie_bin()
        .args(["replay".as_ref(), rec.as_os_str()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "frames made by a learnt picture differ"
    );
}

#[test]
fn a_recorded_dream_replays_frame_for_frame_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, prompt, rec) = (
        tmp.path().join("ckpt"),
        tmp.path().join("p.png"),
        tmp.path().join("rec"),
    );
    tiny_checkpoint(&ckpt);
    prompt_png(&prompt);
    let gif = tmp.path().join("d.gif");
    dream(
        &ckpt,
        &prompt,
        &["--seed", "3", "--actions", "right*3,jump,latent:5,left"],
        &gif,
        &rec,
    );
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).unwrap(),
    ))
    .unwrap();
    assert_eq!(
        image::AnimationDecoder::into_frames(frames).count(),
        7,
        "the reset frame and six steps"
    );

    let report = run_ok(genie_bin().args(["replay".as_ref(), rec.as_os_str()]));
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(report["frames"], 7);
    assert_eq!(report["matching"], 7, "{report}");

    // A different seed in the start state makes different frames: replay must notice.
    let start = rec.join("start.json");
    let text = std::fs::read_to_string(&start)
        .unwrap()
        .replace("\"seed\": 3", "\"seed\": 4");
    std::fs::write(&start, text).unwrap();
    let out = genie_bin()
        .args(["replay".as_ref(), rec.as_os_str()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a replay with another seed must not match"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("differ"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pngs = tmp.path().join("pngs");
    run_ok(genie_bin().args([
        "export".as_ref(),
        rec.as_os_str(),
        "--png".as_ref(),
        pngs.as_os_str(),
    ]));
    assert_eq!(std::fs::read_dir(&pngs).unwrap().count(), 7);
}

#[test]
fn a_full_disk_while_recording_stops_the_recording_not_the_dream() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, prompt, rec, gif) = (
        tmp.path().join("ckpt"),
        tmp.path().join("p.png"),
        tmp.path().join("rec"),
        tmp.path().join("d.gif"),
    );
    tiny_checkpoint(&ckpt);
    prompt_png(&prompt);
    // A file-size limit (as a full disk: writes past 160 KiB fail; SIGXFSZ ignored so the write
    // returns an error instead of killing the process) stops frames.rgb (12 KiB a frame) after
    // about a dozen frames, long before the 40-frame dream's small GIF would reach it.
    let script = r#"trap '' XFSZ; ulimit -f 320; exec "$@""#;
    let out = Command::new("bash")
        .args(["-c", script, "genie"])
        .arg(env!("CARGO_BIN_EXE_genie"))
        .args([
            "dream",
            "--threads",
            "1",
            "--scale",
            "1",
            "--actions",
            "right*20,left*19",
        ])
        .arg("--checkpoint")
        .arg(&ckpt)
        .arg("--prompt")
        .arg(&prompt)
        .arg("--out")
        .arg(&gif)
        .arg("--record")
        .arg(&rec)
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the dream went on: {stderr}");
    assert!(stderr.contains("recording stopped after"), "{stderr}");
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).unwrap(),
    ))
    .unwrap();
    assert_eq!(image::AnimationDecoder::into_frames(frames).count(), 40);

    // What was written reads back and replays frame for frame.
    let report = run_ok(genie_bin().args(["replay".as_ref(), rec.as_os_str()]));
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    let n = report["frames"].as_u64().unwrap();
    assert!((2..40).contains(&n), "{report}");
    assert_eq!(report["matching"], n, "{report}");
}

#[test]
fn a_recording_made_with_a_relative_checkpoint_replays_from_any_folder() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_checkpoint(&tmp.path().join("ckpt"));
    prompt_png(&tmp.path().join("p.png"));
    run_ok(
        genie_bin()
            .current_dir(tmp.path())
            .args(["dream", "--threads", "1", "--actions", "right*2,jump"])
            .args(["--checkpoint", "ckpt", "--prompt", "p.png"])
            .args(["--out", "d.gif", "--record", "rec"]),
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let report = run_ok(
        genie_bin()
            .current_dir(elsewhere.path())
            .arg("replay")
            .arg(tmp.path().join("rec")),
    );
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(report["matching"], 4, "{report}");
}

#[test]
fn a_prompt_that_is_not_an_image_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let bad = tmp.path().join("notes.png");
    std::fs::write(&bad, "not a picture").unwrap();
    let out = genie_bin()
        .args(["dream", "--actions", "right", "--out"])
        .arg(tmp.path().join("x.gif"))
        .arg("--checkpoint")
        .arg(&ckpt)
        .arg("--prompt")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notes.png"),
        "the error names the file: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !tmp.path().join("x.gif").exists(),
        "nothing is written on a bad prompt"
    );
}

#[test]
fn play_without_a_display_says_so_and_points_to_dream() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let out = genie_bin()
        .arg("play")
        .arg("--checkpoint")
        .arg(&ckpt)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("genie dream"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

/// An X server of our own for the test; killed on drop.
struct Xvfb(std::process::Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_xvfb(display: &str) -> Option<Xvfb> {
    let child = Command::new("Xvfb")
        .args([display, "-screen", "0", "800x700x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Xvfb(child);
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{}", &display[1..]));
    let start = Instant::now();
    while !socket.exists() {
        if start.elapsed() > Duration::from_secs(10) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(server)
}

#[test]
fn play_under_xvfb_shows_the_dreamed_frame() {
    if Command::new("Xvfb")
        .arg("-help")
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        // scripts/setup.sh installs Xvfb; without it (a bare `cargo test`) there is no display.
        eprintln!("Xvfb is not installed: run scripts/setup.sh");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, prompt) = (tmp.path().join("ckpt"), tmp.path().join("p.png"));
    tiny_checkpoint(&ckpt);
    prompt_png(&prompt);

    // The golden frame: what the dream shows after reset, made headlessly.
    let rec = tmp.path().join("golden");
    dream(
        &ckpt,
        &prompt,
        &["--actions", "noop"],
        &tmp.path().join("g.gif"),
        &rec,
    );
    let golden = genie::session::record::Recording::open(&rec)
        .unwrap()
        .frames[0]
        .clone();

    let display = format!(":{}", 90 + std::process::id() % 100);
    let Some(_xvfb) = start_xvfb(&display) else {
        panic!("Xvfb did not start on {display}");
    };
    // Step mode with no key pressed: the window keeps showing the reset frame.
    let mut play = genie_bin()
        .env("DISPLAY", &display)
        .args([
            "play",
            "--threads",
            "1",
            "--step-mode",
            "--announce-after",
            "1",
        ])
        .arg("--checkpoint")
        .arg(&ckpt)
        .arg("--prompt")
        .arg(&prompt)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(play.stdout.take().unwrap()).lines();
    let announced = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        announced.contains("shown 1 frames"),
        "the player never showed a frame: {announced:?}"
    );
    std::thread::sleep(Duration::from_millis(1500)); // a few redraws with the overlay
    let shot = Command::new("xwd")
        .args(["-root", "-silent", "-display", &display])
        .output()
        .unwrap();
    let _ = play.kill();
    let _ = play.wait();
    let shot = xwd::parse(&shot.stdout).unwrap();
    let keep = tmp.path().join("shot.png");
    let mut img = image::RgbImage::new(shot.width, shot.height);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgb(shot.pixel(x, y));
    }
    img.save(&keep).unwrap();

    // The 640×640 window at the screen's corner draws the 64×64 frame at 10× (letterboxed);
    // the overlay covers part of it, so most, not all, model pixels must match.
    let rect = genie::app::blit::Rect::letterbox(
        genie::app::blit::Rect {
            x: 0,
            y: 0,
            width: 640,
            height: 640,
        },
        64,
        64,
    );
    let scale = rect.width / 64;
    let mut matching = 0;
    for fy in 0..64u32 {
        for fx in 0..64u32 {
            let p = shot.pixel(
                rect.x + fx * scale + scale / 2,
                rect.y + fy * scale + scale / 2,
            );
            let i = ((fy * 64 + fx) * 3) as usize;
            if (0..3).all(|c| p[c].abs_diff(golden[i + c]) <= 6) {
                matching += 1;
            }
        }
    }
    assert!(
        matching > 64 * 64 / 2,
        "only {matching} of 4096 frame pixels match the dream (screenshot {})",
        keep.display()
    );
}
