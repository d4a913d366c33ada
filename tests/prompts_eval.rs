//! `genie eval --prompts DIR` end to end on a tiny random checkpoint and two generated pictures:
//! the JSON's keys and ranges, one contact sheet per picture, the hero of heroes.json used and
//! the automatic guess judged against it, and one clear error for a hero off its picture.

use std::process::Command;

use image::{Rgb, RgbImage};
use tiny::tiny_checkpoint;

#[path = "common/tiny.rs"]
mod tiny;

/// A side view: sky, ground, and a figure in `hero` standing on the ground at x 90..100.
fn scene(w: u32, h: u32, sky: [u8; 3], hero: [u8; 3]) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        if y >= h * 4 / 5 {
            Rgb([80, 60, 40])
        } else if (x as i64 - (w as i64 / 2)).abs() < 5 && y >= h * 4 / 5 - 16 {
            Rgb(hero)
        } else {
            Rgb(sky)
        }
    })
}

fn genie(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_genie"))
        .args(args)
        .args(["--device", "cpu", "--threads", "1"])
        .output()
        .expect("genie runs")
}

#[test]
fn eval_prompts_measures_every_picture_and_writes_its_sheet() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let pics = tmp.path().join("pics");
    std::fs::create_dir_all(&pics).unwrap();
    // 200×120: the figure is at x 95..104, y 80..95; the second picture has no hero given.
    scene(200, 120, [230, 240, 250], [200, 40, 40])
        .save(pics.join("a.png"))
        .unwrap();
    scene(128, 128, [250, 245, 230], [30, 60, 210])
        .save(pics.join("b.jpg"))
        .unwrap();
    std::fs::write(pics.join("heroes.json"), r#"{"a.png": [100, 88]}"#).unwrap();
    let sheets = tmp.path().join("sheets");
    let out = genie(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--prompts",
        pics.to_str().unwrap(),
        "--prompt-sheets",
        sheets.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["prompts"], 2);
    assert_eq!(report["horizon"], 16);
    let per = report["per_prompt"].as_array().unwrap();
    assert_eq!(per[0]["file"], "a.png");
    assert_eq!(per[0]["hero"], "given");
    assert_eq!(per[0]["guess_hit"], true, "the lone figure is guessed");
    assert_eq!(per[1]["hero"], "guessed");
    assert!(
        per[1]["guess_hit"].is_null(),
        "no given hero to judge b.jpg's guess"
    );
    assert_eq!(report["hero_guess_cases"], 1);
    assert_eq!(report["hero_guess_hits"], 1.0);
    for p in per {
        let r = p["reconstruction"].as_f64().unwrap();
        let q = p["persistence"].as_f64().unwrap();
        assert!(r > 0.0 && r <= 100.0 && q > 0.0 && q <= 100.0, "{p}");
        for key in ["left", "right", "jump"] {
            assert!(p["hero_moved"][key].is_boolean(), "{p}");
        }
    }
    let mean = (per[0]["reconstruction"].as_f64().unwrap()
        + per[1]["reconstruction"].as_f64().unwrap())
        / 2.0;
    assert!((report["reconstruction"].as_f64().unwrap() - mean).abs() < 1e-9);
    let fidelity = report["hero_fidelity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&fidelity));
    let presence = report["hero_presence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&presence));
    for name in ["a.png", "b.png"] {
        let sheet = image::open(sheets.join(name)).expect("a sheet per picture");
        // 5 rows (pictures, then noop/left/right/jump) of up to 8 frames at 2×, 2 px apart,
        // inside a 4 px margin.
        assert_eq!(sheet.width(), 8 * 130 - 2 + 8, "{name}");
        assert_eq!(sheet.height(), 5 * 130 - 2 + 8, "{name}");
    }

    // Each picture learnt first, and forgotten before the next: the report says what
    // learning did.
    let out = genie(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--prompts",
        pics.to_str().unwrap(),
        "--learn",
        "--learn-steps",
        "8,3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let learnt: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for p in learnt["per_prompt"].as_array().unwrap() {
        assert_eq!(p["learnt"]["hero"], true, "{p}");
        let mse = p["learnt"]["decoder_mse"].as_array().unwrap();
        assert!(mse[1].as_f64().unwrap() < mse[0].as_f64().unwrap(), "{p}");
    }
    // Bad learning options: one clear error.
    let out = genie(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--prompts",
        pics.to_str().unwrap(),
        "--learn",
        "--learn-lr",
        "7",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("learning rate 7"),
        "{stderr}"
    );

    // A hero placed off its picture: one clear error naming the file, no panic.
    std::fs::write(pics.join("heroes.json"), r#"{"a.png": [100, 500]}"#).unwrap();
    let out = genie(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--prompts",
        pics.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("a.png") && stderr.contains("outside the picture"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
