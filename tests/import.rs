//! `genie data import`: a video made with ffmpeg, an animated GIF and a folder of frames become
//! shards `genie train --data` reads; scene cuts split clips; a corrupt file is named and
//! skipped.

#[path = "common/tiny.rs"]
mod tiny;

use std::path::Path;
use std::process::Command;

use genie::data::Dataset;
use genie::data::import::NO_ACTION;
use image::{Rgb, RgbImage};

/// A 96×80 picture: a colour that drifts with `t`, and a square that moves right. `scene`
/// changes the colours entirely (a cut).
fn picture(t: u32, scene: u8) -> RgbImage {
    RgbImage::from_fn(96, 80, |x, y| {
        if (10 + 2 * t..20 + 2 * t).contains(&x) && (30..40).contains(&y) {
            Rgb([250, 250, 250])
        } else {
            let base = if scene == 0 { 40 } else { 200 };
            Rgb([base, (base as u32 + t) as u8, 255 - base])
        }
    })
}

fn genie(args: &[&str], inputs: &[&Path]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_genie"))
        .args(["data", "import", "--quiet"])
        .args(args)
        .args(inputs)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn frame_folder(dir: &Path, frames: u32, scene_at: Option<u32>) {
    std::fs::create_dir_all(dir).unwrap();
    for t in 0..frames {
        let scene = u8::from(scene_at.is_some_and(|s| t >= s));
        picture(t, scene)
            .save(dir.join(format!("frame_{t:04}.png")))
            .unwrap();
    }
}

#[test]
fn frames_gifs_and_video_become_unlabelled_shards_and_a_bad_file_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    // A folder of 40 frames with a cut at frame 20: two runs of 20, so 4 clips of 8 (not 5).
    frame_folder(&src.join("a_frames"), 40, Some(20));
    // A GIF of 24 frames, 50 ms each (20 frames/s), resampled to 10 frames/s: 12 frames.
    {
        let file = std::fs::File::create(src.join("b_anim.gif")).unwrap();
        let mut encoder = image::codecs::gif::GifEncoder::new(file);
        for t in 0..24 {
            let rgba = image::DynamicImage::ImageRgb8(picture(t, 0)).to_rgba8();
            let delay = image::Delay::from_numer_denom_ms(50, 1);
            encoder
                .encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))
                .unwrap();
        }
    }
    // Not a video at all.
    std::fs::write(src.join("c_broken.mp4"), b"this is not a video").unwrap();
    // A real video from ffmpeg's own test pattern: 2 s at 25 frames/s, read at 10: 20 frames.
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=2:size=160x120:rate=25")
        .args(["-pix_fmt", "yuv420p"])
        .arg(src.join("d_video.mp4"))
        .status();
    let have_ffmpeg = made.is_ok_and(|s| s.success());

    let out = dir.path().join("out");
    let (ok, stdout, stderr) = genie(
        &[
            "--out",
            out.to_str().unwrap(),
            "--fps",
            "10",
            "--frames-per-episode",
            "8",
            "--held-out-every",
            "2",
        ],
        &[&src],
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("c_broken.mp4"),
        "the bad file is named: {stderr}"
    );
    assert!(stdout.contains("source(s) skipped"), "{stdout}");

    // Sources by name: a (train), b (held out), c (skipped, counted as the 3rd: train side),
    // d (held out).
    let train = Dataset::open(out.join("train")).unwrap();
    let m = train.manifest();
    assert!(!m.labelled);
    assert_eq!(m.clip_len, 8);
    assert_eq!(m.sources.len(), 1, "{:?}", m.sources);
    assert!(m.sources[0].ends_with("a_frames"));
    assert_eq!(
        m.episodes, 4,
        "two runs of 20 frames between the cut: 2 clips each"
    );
    let clip = train.get(0).unwrap();
    assert!(clip.actions.iter().all(|&a| a == NO_ACTION));
    assert_eq!(clip.frames.len(), 8 * 64 * 64 * 3);
    // No clip spans the cut: within a clip the background colour stays on one side.
    for i in 0..m.episodes {
        let clip = train.get(i).unwrap();
        let first_red = clip.frames[0];
        let last_red = clip.frames[7 * 64 * 64 * 3];
        assert_eq!(first_red > 120, last_red > 120, "clip {i} spans the cut");
    }

    let held = Dataset::open(out.join("held-out")).unwrap();
    let m = held.manifest();
    assert!(m.held_out && !m.labelled);
    // The GIF: 24 × 50 ms = 1.2 s at 10 frames/s = 12 frames, one clip of 8.
    let gif_clips = 1;
    let video_clips = if have_ffmpeg { 20 / 8 } else { 0 };
    assert_eq!(m.episodes, gif_clips + video_clips, "{:?}", m.sources);
    assert_eq!(m.sources.len(), 1 + usize::from(have_ffmpeg));

    // The measures that need no labels, on the held-out split, with a tiny random world model.
    let ckpt = dir.path().join("ckpt");
    tiny::tiny_checkpoint(&ckpt);
    let eval = Command::new(env!("CARGO_BIN_EXE_genie"))
        .args([
            "eval",
            "--threads",
            "1",
            "--clips",
            "2",
            "--steps",
            "1",
            "--checkpoint",
        ])
        .arg(&ckpt)
        .arg("--data")
        .arg(out.join("held-out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&eval.stderr);
    assert!(eval.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(report["labelled"], false);
    assert_eq!(report["clips"], 2);
    assert!(report["tokenizer_psnr"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["delta_psnr_t4"].is_number(), "{report}");
    let usage: f64 = report["latent_usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_f64().unwrap())
        .sum();
    assert!((usage - 1.0).abs() < 1e-9, "{report}");
    assert!(!report["needs_labels"].as_array().unwrap().is_empty());

    // Training on it holds out the held-out split beside it.
    let run = dir.path().join("run");
    let train = Command::new(env!("CARGO_BIN_EXE_genie"))
        .args([
            "train",
            "tokenizer",
            "--threads",
            "1",
            "--quiet",
            "--steps",
            "2",
        ])
        .args([
            "--batch",
            "1",
            "--clip-len",
            "2",
            "--eval-clips",
            "1",
            "--config",
        ])
        .arg(ckpt.join("genie.json"))
        .arg("--data")
        .arg(out.join("train"))
        .arg("--run")
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&train.stderr);
    assert!(train.status.success(), "{stderr}");
    assert!(
        stderr.contains("held-out evaluation on 1 clips of") && stderr.contains("held-out"),
        "{stderr}"
    );
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(log.contains(r#""split":"held_out""#), "{log}");
    // The run knows it learned imported video, so the player leaves a prompt's hero as drawn.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("genie.json")).unwrap()).unwrap();
    assert_eq!(
        config["training_data"]["tokenizer"]["video"], true,
        "{config}"
    );

    // Again without --force: refused, nothing lost.
    let (ok, _, stderr) = genie(&["--out", out.to_str().unwrap()], &[&src]);
    assert!(!ok && stderr.contains("--force"), "{stderr}");
    assert_eq!(Dataset::open(out.join("train")).unwrap().len(), 4);
}

#[test]
fn nothing_importable_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("x.gif");
    std::fs::write(&bad, b"GIF89a garbage").unwrap();
    let out = dir.path().join("out");
    let (ok, _, stderr) = genie(&["--out", out.to_str().unwrap()], &[&bad]);
    assert!(!ok);
    assert!(stderr.contains("x.gif"), "{stderr}");
    assert!(stderr.contains("no clip"), "{stderr}");
    let (ok, _, stderr) = genie(
        &["--out", out.to_str().unwrap(), "--crop", "1,2,3"],
        &[&bad],
    );
    assert!(!ok && stderr.contains("X,Y,W,H"), "{stderr}");
}

/// A folder of `xs.len()` frames of a white square at `xs[t]` on a dark ground, with the
/// actions `actions` beside them (`None`: no actions file).
fn labelled_folder(dir: &Path, xs: &[u32], actions: Option<&[&str]>) {
    std::fs::create_dir_all(dir).unwrap();
    for (t, &x) in xs.iter().enumerate() {
        RgbImage::from_fn(64, 64, |px, py| {
            if (x..x + 8).contains(&px) && (28..36).contains(&py) {
                Rgb([250, 250, 250])
            } else {
                Rgb([30, 60, 30])
            }
        })
        .save(dir.join(format!("frame_{t:04}.png")))
        .unwrap();
    }
    if let Some(actions) = actions {
        let json = serde_json::json!({ "actions": actions });
        std::fs::write(dir.join("actions.json"), json.to_string()).unwrap();
    }
}

#[test]
fn video_imported_with_its_actions_calibrates_and_measures_control() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    // 16 frames walking right 2 px a frame, then 16 walking left.
    let xs: Vec<u32> = (0..16)
        .map(|t| 10 + 2 * t)
        .chain((0..16).map(|t| 40 - 2 * t))
        .collect();
    let actions: Vec<&str> = ["right"; 16].into_iter().chain(["left"; 16]).collect();
    labelled_folder(&src.join("a_walk"), &xs, Some(&actions));
    // One action short: named and skipped.
    labelled_folder(&src.join("b_short"), &xs, Some(&actions[1..]));
    // No actions at all: named and skipped.
    labelled_folder(&src.join("c_none"), &xs, None);
    let out = dir.path().join("out");
    let (ok, _, stderr) = genie(
        &[
            "--out",
            out.to_str().unwrap(),
            "--frames-per-episode",
            "8",
            "--actions",
        ],
        &[&src],
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("b_short") && stderr.contains("31 actions for 32 frames"),
        "{stderr}"
    );
    assert!(
        stderr.contains("c_none") && stderr.contains("no actions"),
        "{stderr}"
    );
    let train = Dataset::open(out.join("train")).unwrap();
    assert!(train.manifest().labelled);
    assert_eq!(train.manifest().action_names[2], "right");
    assert_eq!(train.len(), 4);
    assert_eq!(train.get(0).unwrap().actions, vec![2u8; 8], "right is id 2");
    assert_eq!(train.get(3).unwrap().actions, vec![1u8; 8], "left is id 1");

    let ckpt = dir.path().join("ckpt");
    tiny::tiny_checkpoint(&ckpt);
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_genie"))
            .args(args)
            .args(["--threads", "1", "--checkpoint"])
            .arg(&ckpt)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let data = out.join("train");
    let data = data.to_str().unwrap();

    // Calibration from the LAM's codes of the labelled transitions, into genie.json.
    let report = run(&["calibrate", "--data", data, "--states", "4"]);
    assert_eq!(report["by"], "lam");
    let map = report["calibration"].as_object().unwrap();
    assert_eq!(map.len(), 8, "{report}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("genie.json")).unwrap()).unwrap();
    assert_eq!(config["calibration"]["right"], map["right"]);
    assert!(report["share_of_transitions"]["right"].as_f64().unwrap() > 0.0);
    assert_eq!(report["share_of_transitions"]["jump"], 0.0, "never pressed");

    // By dreams with the player's colour: every latent held on the cases of each action.
    let report = run(&[
        "calibrate",
        "--data",
        data,
        "--states",
        "4",
        "--player-colour",
        "250,250,250",
    ]);
    assert_eq!(report["by"], "dreams", "{report}");
    let dreams = &report["dreams"];
    assert_eq!(dreams["cases"]["right"], 2, "{report}");
    assert_eq!(dreams["cases"]["jump"], 0, "{report}");
    assert_eq!(
        dreams["agreement_by_latent"]["right"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(
        report["calibration"]["jump"], report["calibration"]["noop"],
        "an action without cases keeps noop's latent: {report}"
    );

    // Control: the square found by its colour; every window holds one action (8-frame clips:
    // one window of 4 + 4 each), and it is always in view.
    let report = run(&[
        "eval",
        "--data",
        data,
        "--clips",
        "8",
        "--steps",
        "1",
        "--player-colour",
        "250,250,250",
    ]);
    let control = &report["control"];
    assert_eq!(control["windows_held"], 4, "{report}");
    assert_eq!(control["windows_found"], 4, "{report}");
    assert_eq!(control["action_fidelity_cases"]["right"], 2, "{report}");
    assert_eq!(control["action_fidelity_cases"]["left"], 2, "{report}");
    assert_eq!(control["action_fidelity_cases"]["jump"], 0, "{report}");
    for key in ["action_fidelity", "action_fidelity_ceiling"] {
        let mean = control[key]["mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&mean), "{report}");
        assert!(
            control[key].get("jump").is_none(),
            "no cases, no share: {report}"
        );
    }
    assert_eq!(
        report["needs_labels"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    // The square always moves: a dream that never moves it would score nothing.
    assert_eq!(control["action_fidelity_still"]["right"], 0.0, "{report}");
    assert_eq!(control["action_fidelity_still"]["left"], 0.0, "{report}");

    // A colour that is nowhere: no window has the player, nothing is scored.
    let report = run(&[
        "eval",
        "--data",
        data,
        "--clips",
        "8",
        "--steps",
        "1",
        "--player-colour",
        "255,0,0",
        "--player-tolerance",
        "10",
    ]);
    assert_eq!(report["control"]["windows_found"], 0, "{report}");
}
