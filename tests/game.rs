//! End to end: the platformer's datasets written by `write_dataset` and by `genie data`, read
//! back identical, and every bad input answered with an error naming what is wrong.

use std::process::Command;

use genie::data::{DataError, DataSpec, Dataset, EVAL_SEED_START, generate_clip, write_dataset};
use genie::game::{Action, FRAME_BYTES, Game, find_player};

fn spec(episodes: usize, clip_len: usize) -> DataSpec {
    DataSpec {
        episodes,
        clip_len,
        seed: 40,
        shard_size: 3,
        threads: 2,
        ..DataSpec::default()
    }
}

#[test]
fn dataset_round_trips_identically() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_dataset(&spec(7, 5), dir.path(), false).unwrap();
    assert_eq!(manifest.shards.len(), 3);
    assert_eq!(
        manifest
            .shards
            .iter()
            .map(|s| s.episodes)
            .collect::<Vec<_>>(),
        [3, 3, 1]
    );
    assert_eq!(manifest.action_names.len(), 8);
    assert_eq!(manifest.action_names[5], "right_jump");

    let data = Dataset::open(dir.path()).unwrap();
    assert_eq!((data.len(), data.clip_len()), (7, 5));
    assert_eq!(data.manifest(), &manifest);
    for (i, clip) in data.iter().enumerate() {
        let clip = clip.unwrap();
        assert_eq!(clip.level_seed, 40 + i as u64);
        assert_eq!(clip.frames.len(), 5 * FRAME_BYTES);
        assert!(clip.actions.iter().all(|&a| Action::from_u8(a).is_some()));
        // Every frame shows the level's own player or a restart; frames are not blank.
        assert!(clip.frames.iter().any(|&b| b != clip.frames[0]));
        let _ = find_player(clip.frame(0));
    }
    // Written twice, the same bytes; and a re-generated clip equals the stored one.
    let again = tempfile::tempdir().unwrap();
    write_dataset(&spec(7, 5), again.path(), false).unwrap();
    for name in [
        "shard-00000.safetensors",
        "shard-00002.safetensors",
        "manifest.json",
    ] {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            std::fs::read(again.path().join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(matches!(
        data.get(7),
        Err(DataError::Index { index: 7, len: 7 })
    ));
}

#[test]
fn the_shards_are_plain_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&spec(2, 3), dir.path(), false).unwrap();
    let bytes = std::fs::read(dir.path().join("shard-00000.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let frames = st.tensor("frames").unwrap();
    assert_eq!(frames.shape(), [2, 3, 64, 64, 3]);
    assert_eq!(st.tensor("actions").unwrap().shape(), [2, 3]);
    let seeds = st.tensor("level_seeds").unwrap();
    assert_eq!(seeds.dtype(), safetensors::Dtype::U64);
    assert_eq!(&seeds.data()[..8], &40u64.to_le_bytes());
    let data = Dataset::open(dir.path()).unwrap();
    assert_eq!(
        data.get(1).unwrap().frames,
        frames.data()[3 * FRAME_BYTES..]
    );
}

#[test]
fn bad_datasets_name_the_file_and_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let err = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("manifest.json") && err.contains("missing"),
        "{err}"
    );

    write_dataset(&spec(4, 2), dir.path(), false).unwrap();
    let manifest = dir.path().join("manifest.json");
    let good = std::fs::read_to_string(&manifest).unwrap();

    std::fs::write(&manifest, "{ not json").unwrap();
    let err = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("manifest.json") && err.contains("not a valid manifest"),
        "{err}"
    );

    std::fs::write(
        &manifest,
        good.replace("\"clip_len\": 2", "\"clip_len\": 3"),
    )
    .unwrap();
    let err = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("shard-00000.safetensors") && err.contains("frames"),
        "{err}"
    );
    std::fs::write(&manifest, &good).unwrap();

    let shard = dir.path().join("shard-00001.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let err = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("shard-00001.safetensors"), "{err}");

    std::fs::write(&shard, b"garbage").unwrap();
    let err = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("shard-00001.safetensors"), "{err}");

    std::fs::remove_file(&shard).unwrap();
    let err = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("shard-00001.safetensors") && err.contains("cannot open"),
        "{err}"
    );

    // An existing dataset is not overwritten by accident.
    let err = write_dataset(&spec(4, 2), dir.path(), false).unwrap_err();
    assert!(matches!(err, DataError::OutputExists { .. }), "{err}");
    let force = DataSpec {
        overwrite: true,
        ..spec(4, 2)
    };
    write_dataset(&force, dir.path(), false).unwrap();
    Dataset::open(dir.path()).unwrap();
}

fn genie(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_genie"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn genie_data_writes_and_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let out_s = out.to_str().unwrap();
    let base = [
        "data",
        "--out",
        out_s,
        "--frames-per-episode",
        "4",
        "--quiet",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str]| {
        let args = with(extra);
        genie(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let (ok, _, err) = run(&["--episodes", "0"]);
    assert!(
        !ok && err.contains("--episodes must be at least 1"),
        "{err}"
    );

    let (ok, _, err) = run(&["--episodes", "5", "--seed", "999998"]);
    assert!(
        !ok && err.contains("held-out") && err.contains("--held-out"),
        "{err}"
    );

    let (ok, _, err) = run(&["--episodes", "5", "--seed", "10", "--held-out"]);
    assert!(!ok && err.contains("1000000"), "{err}");

    let (ok, stdout, err) = run(&[
        "--episodes",
        "3",
        "--seed",
        &EVAL_SEED_START.to_string(),
        "--held-out",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("3 episodes"), "{stdout}");
    let data = Dataset::open(&out).unwrap();
    assert!(data.manifest().held_out);
    let clip = data.get(2).unwrap();
    assert_eq!(clip.level_seed, EVAL_SEED_START + 2);
    assert_eq!(clip, data.get(2).unwrap());

    let (ok, _, err) = run(&["--episodes", "3", "--seed", "0"]);
    assert!(!ok && err.contains("--force"), "{err}");
}

#[test]
fn clips_and_games_are_deterministic_across_the_public_api() {
    assert_eq!(generate_clip(3, 6, 1), generate_clip(3, 6, 1));
    let mut a = Game::new(77);
    let mut b = a.clone();
    for act in Action::ALL.iter().cycle().take(64) {
        assert_eq!(a.step(*act), b.step(*act));
        assert_eq!(a.frame(), b.frame());
    }
    let first = Game::new(77).frame();
    let differ = (78..88).filter(|&s| Game::new(s).frame() != first).count();
    assert!(differ >= 8, "{differ} of 10 levels look different");
}

#[test]
fn a_checkpoint_names_the_game_it_learned_and_older_ones_learned_the_original() {
    use genie::game::{Camera, Controls, GameConfig, Looks};
    use genie::model::GenieConfig;
    // The shipped checkpoint learned the stepping camera in the five themes, and scrolls.
    let shipped = genie::model::checkpoint::read_config(std::path::Path::new("checkpoints"))
        .expect("the shipped checkpoint's genie.json");
    assert_eq!(
        (shipped.game.camera, shipped.game.looks),
        (Camera::Step, Looks::Themes)
    );
    assert!(shipped.dynamics.scroll);
    // Its genie.json names no controls: the classic ones it learned.
    assert_eq!(shipped.game.controls, Controls::Classic);
    // A genie.json from before the `game` key learned the original game.
    let mut older = serde_json::to_value(GenieConfig::default()).unwrap();
    older.as_object_mut().unwrap().remove("game");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("genie.json"), older.to_string()).unwrap();
    let older = genie::model::checkpoint::read_config(dir.path()).unwrap();
    assert_eq!(older.game, GameConfig::original());
    // New runs learn the stepping camera and mixed looks, and say so.
    let new = GenieConfig::default();
    assert_eq!(
        (new.game.camera, new.game.looks),
        (Camera::Step, Looks::Mixed)
    );
    let text = serde_json::to_string(&new).unwrap();
    assert!(
        text.contains(r#""game":{"camera":"step","looks":"mixed","controls":"classic"}"#),
        "{text}"
    );
    let back: GenieConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back.game, new.game);
    // A game key genie does not know is refused, not ignored.
    let bad = text.replace(r#""looks":"mixed""#, r#""looks":"mixed","gravity":2"#);
    assert!(serde_json::from_str::<GenieConfig>(&bad).is_err());
    let responsive = text.replace(r#""controls":"classic""#, r#""controls":"responsive""#);
    let responsive: GenieConfig = serde_json::from_str(&responsive).unwrap();
    assert_eq!(responsive.game.controls, Controls::Responsive);
    let bad = text.replace(r#""controls":"classic""#, r#""controls":"floaty""#);
    assert!(serde_json::from_str::<GenieConfig>(&bad).is_err());
}

#[test]
fn the_same_level_in_another_look_plays_the_same() {
    use genie::game::{GameConfig, Looks};
    let config = |looks| GameConfig {
        looks,
        ..GameConfig::default()
    };
    let mut seen_other_look = false;
    for seed in 0..12 {
        let mut a = Game::with_config(seed, config(Looks::Themes));
        let mut b = Game::with_config(seed, config(Looks::Mixed));
        seen_other_look |= a.frame() != b.frame();
        for act in Action::ALL.iter().cycle().take(40) {
            assert_eq!(a.step(*act), b.step(*act));
            assert_eq!(a.player().x, b.player().x);
            assert_eq!(a.camera_px(), b.camera_px());
            // The player is found where it is, whatever the look.
            assert_eq!(
                find_player(&a.frame()),
                find_player(&b.frame()),
                "level {seed}"
            );
        }
    }
    assert!(seen_other_look);
}
