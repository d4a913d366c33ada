//! End to end: `genie eval` on a tiny random checkpoint of the game's frame size prints the
//! held-out measures with the control ceiling beside action fidelity and the whole-session
//! measures under `sessions` (over sessions with no key pressed under `idle`, and with one key
//! held under `held`), all in range, writes the session sheet, and skips the sessions with
//! `--sessions 0 --idle-sessions 0 --held-sessions 0`.

use std::process::Command;

#[path = "common/tiny.rs"]
mod tiny;

use tiny::tiny_checkpoint;

/// No sessions of any kind: the clip measures alone.
const NO_SESSIONS: [&str; 6] = [
    "--sessions",
    "0",
    "--idle-sessions",
    "0",
    "--held-sessions",
    "0",
];

fn eval(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_genie"))
        .arg("eval")
        .args(["--threads", "1", "--clips", "2", "--steps", "1"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "genie eval failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

fn share(v: &serde_json::Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is no number: {v}"));
    assert!((0.0..=1.0).contains(&x), "{key} = {x}");
    x
}

#[test]
fn eval_reports_the_ceiling_and_whole_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let sheet = dir.path().join("sheet.png");
    let report = eval(&[
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--sessions",
        "5",
        "--session-frames",
        "40",
        "--idle-sessions",
        "2",
        "--held-sessions",
        "1",
        "--session-ceiling",
        "--session-sheet",
        sheet.to_str().unwrap(),
    ]);
    for name in ["mean", "left", "right", "jump", "dash"] {
        share(&report["action_fidelity"], name);
        share(&report["action_fidelity_ceiling"], name);
    }
    let s = &report["sessions"];
    assert_eq!(s["sessions"], 5);
    assert_eq!(s["frames"], 40);
    for measures in [s, &s["ceiling"]] {
        share(measures, "presence");
        share(measures, "kept_player");
        share(&measures["fidelity"], "mean");
        for key in ["pose", "place"] {
            if measures["both_found"]["frames"].as_u64().unwrap() > 0 {
                share(measures, key);
            } else {
                assert!(measures[key].is_null(), "{key} of no frames: {measures}");
            }
        }
        for key in ["scroll_recall", "scroll_precision", "median_frames_to_loss"] {
            assert!(measures.get(key).is_some(), "{key} missing: {measures}");
        }
        let count = |key: &str| measures[key].as_u64().unwrap();
        let seen = count("real_camera_moves") - count("real_camera_moves_unseen");
        for (key, moves) in [
            ("scroll_recall", seen),
            ("scroll_precision", count("dreamed_camera_moves")),
        ] {
            if moves > 0 {
                share(measures, key);
            } else {
                assert!(measures[key].is_null(), "{key} of no moves: {measures}");
            }
        }
        // Counted one way at a time, the moves add up to the counts of both ways.
        let ways = &measures["scroll_by_direction"];
        let sum =
            |key: &str| ways["left"][key].as_u64().unwrap() + ways["right"][key].as_u64().unwrap();
        assert_eq!(sum("dreamed"), count("dreamed_camera_moves"), "{ways}");
        for (key, matched, moves) in [
            ("scroll_recall", "real_matched", "real"),
            ("scroll_precision", "dreamed_matched", "dreamed"),
        ] {
            match measures[key].as_f64() {
                Some(share) => {
                    let pooled = sum(matched) as f64 / sum(moves) as f64;
                    assert!((pooled - share).abs() < 1e-9, "{key} {share}: {ways}");
                }
                None => assert_eq!(sum(moves), 0, "{key}: {ways}"),
            }
        }
        assert_eq!(measures["per_session"].as_array().unwrap().len(), 5);
    }
    let scored = s["scored_frames"].as_u64().unwrap();
    let after = s["frames_after_life_lost"].as_u64().unwrap();
    assert_eq!(
        scored + after,
        5 * 40,
        "every played frame is scored or counted apart"
    );
    // 4 sessions, a real and a dreamed row each; frames 0, 10, …, 40.
    let img = image::open(&sheet).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (5 * 66 - 2, 8 * 66 - 2),
        "4 × (real, dream) rows of 5 frames"
    );

    // No key pressed: the same measures, noop's fidelity alone, no real camera move.
    let idle = &report["idle"];
    assert_eq!(
        (idle["sessions"].as_u64(), idle["frames"].as_u64()),
        (Some(2), Some(40))
    );
    share(idle, "presence");
    let keys: Vec<&String> = idle["fidelity"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["mean", "noop"], "{idle}");
    assert_eq!(idle["real_camera_moves"], 0);
    assert!(idle.get("ceiling").is_none());

    // One key held: every key once, on the same level, each with its own figures and the
    // ceiling; fidelity over every 4 frames of the hold (10 windows of 40 frames where the
    // real player stays on screen and alive, as it does standing still).
    let held = &report["held"];
    assert_eq!(held["sessions"], 8);
    share(held, "presence");
    let per_key = held["per_key"].as_object().unwrap();
    assert_eq!(per_key.len(), 8, "{held}");
    for (key, measures) in per_key {
        assert_eq!(measures["per_session"].as_array().unwrap().len(), 1);
        assert_eq!(measures["per_session"][0]["level"], 1_000_000);
        let keys: Vec<&String> = measures["fidelity"].as_object().unwrap().keys().collect();
        assert!(keys.len() == 2 && keys.contains(&key), "{key}: {measures}");
        assert!(measures["ceiling"]["fidelity"].get(key.as_str()).is_some());
    }
    assert_eq!(per_key["noop"]["fidelity_cases"]["noop"], 10);

    let without = eval(&[&["--checkpoint", ckpt.to_str().unwrap()][..], &NO_SESSIONS].concat());
    assert!(without.get("sessions").is_none(), "{without}");
    assert!(without.get("idle").is_none(), "{without}");
    assert!(without.get("held").is_none(), "{without}");
    assert!(without.get("action_fidelity_ceiling").is_some());
}

/// `genie eval | head`: a reader that stops early ends the printing, not genie with a panic.
#[test]
fn a_reader_that_stops_early_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let mut child = Command::new(env!("CARGO_BIN_EXE_genie"))
        .arg("eval")
        .args(["--threads", "1", "--clips", "2", "--steps", "1"])
        .args(NO_SESSIONS)
        .arg("--checkpoint")
        .arg(&ckpt)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reading end closes before genie has written anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--write` stores the figures with the sampler that made them; a sampler setting out of range
/// is one clear error and leaves genie.json as it was.
#[test]
fn written_figures_keep_the_sampler_that_made_them() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let at = ckpt.to_str().unwrap();
    let report = eval(
        &[
            &["--checkpoint", at][..],
            &NO_SESSIONS,
            &[
                "--write",
                "--temperature",
                "0.7",
                "--camera-temperature",
                "0",
            ][..],
        ]
        .concat(),
    );
    let json = ckpt.join("genie.json");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(written["eval"], report);
    assert_eq!(written["sampler"]["temperature"], 0.7);
    assert_eq!(written["sampler"]["camera_temperature"], 0.0);

    let before = std::fs::read(&json).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_genie"))
        .args(["eval", "--threads", "1", "--clips", "2"])
        .args(NO_SESSIONS)
        .args(["--checkpoint", at, "--write", "--temperature=-1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("temperature is -1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read(&json).unwrap(), before, "genie.json changed");
}

/// `--looks` draws the held-out levels in other looks than the checkpoint's game's (other
/// frames, so other figures) and leaves genie.json as it was; with `--write` it is refused.
#[test]
fn other_looks_are_measured_apart_from_the_checkpoints_game() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let at = ckpt.to_str().unwrap();
    let json = ckpt.join("genie.json");
    let before = std::fs::read(&json).unwrap();
    let psnr = |looks: &[&str]| {
        let mut args = vec!["--checkpoint", at];
        args.extend_from_slice(&NO_SESSIONS);
        args.extend_from_slice(looks);
        eval(&args)["tokenizer_psnr"].as_f64().unwrap()
    };
    let own = psnr(&[]);
    assert_eq!(psnr(&[]), own, "the same levels give the same figure");
    let (themes, held_out) = (psnr(&["--looks", "themes"]), psnr(&["--looks", "held-out"]));
    assert_ne!(themes, held_out, "other looks, other frames");
    assert_eq!(std::fs::read(&json).unwrap(), before, "genie.json changed");

    let out = Command::new(env!("CARGO_BIN_EXE_genie"))
        .args(["eval", "--checkpoint", at, "--looks", "themes", "--write"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--looks") && stderr.contains("--write"),
        "{stderr}"
    );
}

/// `genie calibrate --adapter --adapter-rows FILE` fits the adapter of the size asked for and
/// keeps its rows; a size out of range or a broken rows file is one clear error that leaves the
/// checkpoint as it was.
#[test]
fn calibrate_keeps_the_adapters_rows_and_refuses_bad_input_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let rows = dir.path().join("rows.safetensors");
    let calibrate = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_genie"))
            .args(["calibrate", "--threads", "1", "--by", "keep", "--adapter"])
            .args(["--adapter-states", "4", "--adapter-epochs", "2"])
            .args(["--checkpoint", ckpt.to_str().unwrap()])
            .args(["--adapter-rows", rows.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = calibrate(&["--adapter-token-dim", "3", "--adapter-hidden", "5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "genie calibrate failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["adapter"]["states"], 4);
    assert!(rows.exists() && ckpt.join("adapter.safetensors").exists());
    let json = ckpt.join("genie.json");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(config["adapter"]["token_dim"], 3);
    assert_eq!(config["adapter"]["hidden"], 5);

    // Fitted again from the file: the same rows, read rather than dreamed.
    let again = calibrate(&[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("rows of 4 states read"), "{stderr}");
    let refit: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(refit["adapter"]["rows"], report["adapter"]["rows"]);

    let before = std::fs::read(&json).unwrap();
    for (extra, says, broken) in [
        (&["--adapter-hidden", "0"][..], "--adapter-hidden", false),
        (&[][..], "rows.safetensors", true),
    ] {
        if broken {
            std::fs::write(&rows, b"{ not rows").unwrap();
        }
        let out = calibrate(extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(says) && !stderr.contains("panicked"),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&json).unwrap(), before, "genie.json changed");
    }
}
