//! `genie train --recipe`: every step of a recipe into one run folder, and the same command after
//! a stop going on where it stopped.

#[path = "common/tiny.rs"]
mod tiny;
#[path = "common/weights.rs"]
mod weights;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn genie() -> Command {
    Command::new(env!("CARGO_BIN_EXE_genie"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn train_recipe(recipe: &Path, run: &Path) -> String {
    let out = genie()
        .args(["train", "--threads", "1", "--quiet", "--recipe"])
        .arg(recipe)
        .arg("--run")
        .arg(run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "genie train --recipe failed: {stderr}"
    );
    stderr
}

/// Runs a recipe that must be refused; what it printed.
fn refused_recipe(recipe: &Path, run: &Path) -> String {
    let out = genie()
        .args(["train", "--threads", "1", "--recipe"])
        .arg(recipe)
        .arg("--run")
        .arg(run)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "genie train --recipe was not refused"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The tiny networks' sizes as a genie.json, and a recipe that starts from them.
fn setup(dir: &Path, steps: &str) -> std::path::PathBuf {
    let sizes = dir.join("sizes");
    tiny::tiny_checkpoint(&sizes);
    let recipe = dir.join("tiny.toml");
    let text = format!(
        "config = {:?}\n{steps}",
        sizes.join("genie.json").display().to_string()
    );
    std::fs::write(&recipe, text).unwrap();
    recipe
}

const EVERY_STEP: &str = r#"
[[step]]
do = "train tokenizer"
steps = 3
batch = 2
eval_clips = 2

[[step]]
do = "train lam"
steps = 2
batch = 2
clip_len = 3
eval_clips = 2
stickiness = 0.3

[[step]]
do = "train dynamics"
steps = 2
batch = 2
clip_len = 3
eval_clips = 2

[[step]]
do = "train decoder"
steps = 2
batch = 2
eval_clips = 2

[[step]]
do = "calibrate"
by = "lam"
states = 8
adapter = true
adapter_states = 4
adapter_epochs = 2

[[step]]
do = "eval"
clips = 2
steps = 1
sessions = 1
session_frames = 8
write = true
"#;

#[test]
fn a_recipe_makes_a_checkpoint_step_by_step_and_a_second_run_has_nothing_left_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = setup(dir.path(), EVERY_STEP);
    let run = dir.path().join("run");
    let stderr = train_recipe(&recipe, &run);
    assert!(stderr.contains("step 6/6: eval"), "{stderr}");
    assert!(stderr.contains("recipe done"), "{stderr}");

    let state = json(&run.join("train_state.json"));
    let steps = |k: &str| state[k].as_u64().unwrap();
    assert_eq!(
        [
            steps("tokenizer_steps"),
            steps("lam_steps"),
            steps("dynamics_steps"),
            steps("decoder_steps")
        ],
        [3, 2, 2, 2]
    );
    let config = json(&run.join("genie.json"));
    assert!(config["calibration"].is_object(), "calibrated: {config}");
    // The adapter fitted by the calibration, which the evaluation then played its keys through.
    assert!(config["adapter"]["hidden"].is_number(), "{config}");
    assert!(run.join("adapter.safetensors").exists());
    let dream = genie()
        .args([
            "dream",
            "--threads",
            "1",
            "--actions",
            "right*3,jump",
            "--checkpoint",
        ])
        .arg(&run)
        .arg("--out")
        .arg(dir.path().join("dream.gif"))
        .output()
        .unwrap();
    assert!(
        dream.status.success(),
        "{}",
        String::from_utf8_lossy(&dream.stderr)
    );
    assert!(config["eval"]["tokenizer_psnr"].is_number(), "evaluated");
    assert_eq!(config["game"]["camera"], "step", "a new run's game");
    let progress = json(&run.join("recipe.json"));
    assert_eq!(progress["done"].as_array().unwrap().len(), 6);
    assert_eq!(
        progress["done"][1],
        "train lam +2 steps --batch 2 --clip-len 3 --eval-clips 2 --stickiness 0.3"
    );
    assert!(progress["current"].is_null());

    // Again: every step is done, nothing trains.
    let stderr = train_recipe(&recipe, &run);
    assert!(stderr.contains("6 done"), "{stderr}");
    assert!(!stderr.contains("step 1/6"), "{stderr}");
    assert_eq!(json(&run.join("train_state.json")), state);

    // A changed step is refused, the run left as it was.
    let changed = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("steps = 3", "steps = 4");
    std::fs::write(&recipe, changed).unwrap();
    let stderr = refused_recipe(&recipe, &run);
    assert!(
        stderr.contains("step 1 was done as `train tokenizer +3 steps"),
        "{stderr}"
    );
    assert_eq!(json(&run.join("train_state.json")), state);
}

/// Starts the recipe, waits until step `step` has run a while, then stops it with Ctrl-C (SIGINT);
/// returns what it printed.
fn interrupt_in_step(recipe: &Path, run: &Path, step: &str) -> String {
    let mut child = genie()
        .args([
            "train",
            "--threads",
            "1",
            "--quiet",
            "--save-minutes",
            "100",
        ])
        .arg("--recipe")
        .arg(recipe)
        .arg("--run")
        .arg(run)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the step starts");
        if line.starts_with(step) {
            break;
        }
    }
    // Let it take some optimizer steps (the tiny networks take milliseconds a step): wait for
    // the LAM's next log lines, one every 10 steps.
    let logged = || {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap_or_default()
            .matches("\"lam\"")
            .count()
    };
    let before = logged();
    while logged() < before + 2 {
        assert!(Instant::now() < deadline, "the LAM never logged a step");
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    let all = reader.join().unwrap();
    assert!(status.success(), "a stopped recipe exits cleanly: {all}");
    all
}

#[test]
fn a_stopped_recipe_goes_on_in_the_step_it_stopped_in_and_keeps_that_steps_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = setup(
        dir.path(),
        r#"
[[step]]
do = "train tokenizer"
steps = 2
batch = 1
clip_len = 1
eval_clips = 1

[[step]]
do = "train lam"
steps = 100000000
warmup = 5
batch = 1
clip_len = 2
eval_clips = 1
eval_every = 100000000
"#,
    );
    let run = dir.path().join("run");
    let first = interrupt_in_step(&recipe, &run, "step 2/2");
    assert!(
        first.contains("stopped in step 2/2; the same command goes on"),
        "{first}"
    );
    let progress = json(&run.join("recipe.json"));
    assert_eq!(progress["done"].as_array().unwrap().len(), 1);
    assert_eq!(progress["current"]["index"], 1);
    assert_eq!(progress["current"]["from_step"], 0);
    let stopped_at = json(&run.join("train_state.json"))["lam_steps"]
        .as_u64()
        .unwrap();
    assert!(stopped_at > 0, "{first}");

    // The same command: the LAM goes on from where it stopped, in the schedule its step laid
    // (begun at step 0), not a new one from the step it stopped at.
    let second = interrupt_in_step(&recipe, &run, "step 2/2");
    assert!(!second.contains("step 1/2"), "{second}");
    assert!(
        second.contains("from step 0, wsd to step 100000000"),
        "{second}"
    );
    let now = json(&run.join("train_state.json"))["lam_steps"]
        .as_u64()
        .unwrap();
    assert!(now > stopped_at, "{stopped_at} -> {now}");
}

#[test]
fn a_recipe_runs_data_parallel_with_rank_0_alone_calibrating_and_evaluating() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = setup(dir.path(), EVERY_STEP);
    let run = dir.path().join("run");
    let out = genie()
        .args([
            "train",
            "--threads",
            "1",
            "--quiet",
            "--nproc-per-node",
            "2",
        ])
        .arg("--recipe")
        .arg(&recipe)
        .arg("--run")
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The recipe's batch of 2 is the step's: a clip a rank.
    assert!(
        stderr.contains("2 ranks × batch 1 = 2 clips a step"),
        "{stderr}"
    );
    // Rank 0 alone says what it does.
    assert_eq!(stderr.matches("step 6/6: eval").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("recipe done").count(), 1, "{stderr}");
    let state = json(&run.join("train_state.json"));
    for (key, steps) in [
        ("tokenizer_steps", 3),
        ("lam_steps", 2),
        ("dynamics_steps", 2),
        ("decoder_steps", 2),
    ] {
        assert_eq!(state[key], steps, "{key}");
    }
    let config = json(&run.join("genie.json"));
    assert!(config["calibration"].is_object(), "calibrated: {config}");
    assert!(config["eval"]["tokenizer_psnr"].is_number(), "evaluated");
    assert_eq!(
        json(&run.join("recipe.json"))["done"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

/// The largest difference between two networks' trained weights (not the statistics a training
/// step updates whatever the learning rate: batch-norm running means, idle-code counts).
fn largest_difference(a: &Path, b: &Path) -> f32 {
    let trained = |name: &String| !name.contains("running_") && !name.contains("idle");
    let (a, b) = (weights::f32_tensors(a), weights::f32_tensors(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .filter(|(name, _)| trained(name))
        .flat_map(|(name, x)| x.iter().zip(&b[name]).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn a_step_with_init_starts_its_network_from_another_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // Another checkpoint of the same sizes, with other weights.
    let other = dir.path().join("other");
    tiny::tiny_checkpoint_with(&other, |_| {});
    tch::manual_seed(99);
    let genie = genie::model::Genie::load(&other, tch::Device::Cpu).unwrap();
    tch::no_grad(|| {
        for (_, mut t) in genie.lam_vs.variables() {
            let _ = t.g_add_scalar_(0.5);
        }
    });
    genie.save(&other).unwrap();
    let steps = format!(
        r#"
[[step]]
do = "train tokenizer"
steps = 1
batch = 2
eval_clips = 2

[[step]]
do = "train lam"
steps = 0
init = {:?}
"#,
        other.display().to_string()
    );
    let recipe = setup(dir.path(), &steps);
    let run = dir.path().join("run");
    let stderr = train_recipe(&recipe, &run);
    assert!(stderr.contains("the lam starts from"), "{stderr}");
    let lam = |d: &Path| d.join("lam.safetensors");
    // `steps = 0`: the LAM is the one `init` gave, untrained, far from the run's own start.
    assert_eq!(
        std::fs::read(lam(&run)).unwrap(),
        std::fs::read(lam(&other)).unwrap()
    );
    assert!(largest_difference(&lam(&dir.path().join("sizes")), &lam(&other)) > 0.4);
    let progress = json(&run.join("recipe.json"));
    assert!(
        progress["done"][1].as_str().unwrap().contains(" from "),
        "{progress}"
    );
}

/// `git -C repo ARGS` (a throwaway identity for commits); what it printed.
fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_recipe_from_a_commit_starts_from_the_checkpoint_that_commit_holds() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let ckpt = repo.join("checkpoints");
    tiny::tiny_checkpoint(&ckpt);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "checkpoints"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    let commit = git(&repo, &["rev-parse", "--short", "HEAD"])
        .trim()
        .to_string();
    let base = std::fs::read(ckpt.join("dynamics.safetensors")).unwrap();
    // The folder changes after the commit (a model made from it is shipped in its place).
    tiny::tiny_checkpoint_with(&ckpt, |c| c.dynamics.context_frames = 3);
    assert_ne!(
        std::fs::read(ckpt.join("dynamics.safetensors")).unwrap(),
        base
    );
    let recipes = repo.join("recipes");
    std::fs::create_dir_all(&recipes).unwrap();
    let recipe = recipes.join("refine.toml");
    let text = |commit: &str| {
        format!(
            "from = {{ commit = \"{commit}\", path = \"checkpoints\" }}\n\
             [[step]]\ndo = \"train dynamics\"\nsteps = 1\nbatch = 1\nclip_len = 3\neval_clips = 1\n"
        )
    };
    std::fs::write(&recipe, text(&commit)).unwrap();
    // Run from elsewhere: the commit is looked up in the repository the recipe is in.
    let run = dir.path().join("run");
    let stderr = train_recipe(&recipe, &run);
    assert!(stderr.contains(&format!("at commit {commit}")), "{stderr}");
    let config = json(&run.join("genie.json"));
    assert_eq!(
        config["dynamics"]["context_frames"], 4,
        "the commit's config"
    );
    assert_eq!(json(&run.join("train_state.json"))["dynamics_steps"], 1);

    // A commit the repository does not have: one line, nothing copied.
    std::fs::write(&recipe, text("abcdef1")).unwrap();
    let run = dir.path().join("run2");
    let stderr = refused_recipe(&recipe, &run);
    assert!(
        stderr.contains("no abcdef1:checkpoints/genie.json"),
        "{stderr}"
    );
    assert!(!run.join("genie.json").exists());
    assert!(!run.join(".from-commit").exists());

    // One network from the commit, into a run that starts from the folder as it is now: the
    // LAM's bytes are the commit's, not the folder's.
    let committed_lam = std::fs::read(ckpt.join("lam.safetensors")).unwrap();
    git(&repo, &["add", "checkpoints"]);
    git(&repo, &["commit", "-q", "-m", "other"]);
    let commit = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let model = genie::model::Genie::load(&ckpt, tch::Device::Cpu).unwrap();
    tch::no_grad(|| {
        for (_, mut t) in model.lam_vs.variables() {
            let _ = t.g_add_scalar_(0.5);
        }
    });
    model.save(&ckpt).unwrap();
    assert_ne!(
        std::fs::read(ckpt.join("lam.safetensors")).unwrap(),
        committed_lam
    );
    let take = |commit: &str| {
        format!(
            "from = {:?}\n[[step]]\ndo = \"train lam\"\nsteps = 0\n\
             init = {{ commit = \"{commit}\", path = \"checkpoints\" }}\n",
            ckpt.display().to_string()
        )
    };
    std::fs::write(&recipe, take(&commit)).unwrap();
    let run = dir.path().join("run3");
    let stderr = train_recipe(&recipe, &run);
    assert!(
        stderr.contains("the lam starts from lam.safetensors of"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(run.join("lam.safetensors")).unwrap(),
        committed_lam
    );
    // A commit without it: one line naming the step and the file, the run's LAM kept.
    std::fs::write(&recipe, take("abcdef1")).unwrap();
    let run = dir.path().join("run4");
    let stderr = refused_recipe(&recipe, &run);
    assert!(
        stderr.contains("`init` abcdef1:checkpoints")
            && stderr.contains("no abcdef1:checkpoints/lam.safetensors"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(run.join("lam.safetensors")).unwrap(),
        std::fs::read(ckpt.join("lam.safetensors")).unwrap()
    );
    assert!(!run.join(".lam.safetensors.from-commit").exists());

    // A dynamics step carried onto the codes of the run's tokenizer from those of the commit's
    // (written out for the step, gone after it).
    std::fs::write(
        &recipe,
        format!(
            "from = {:?}\n[[step]]\ndo = \"train dynamics\"\nsteps = 1\nbatch = 1\nclip_len = 3\n\
             eval_clips = 1\ncodes_from = {{ commit = \"{commit}\", path = \"checkpoints\" }}\n",
            ckpt.display().to_string()
        ),
    )
    .unwrap();
    let run = dir.path().join("run5");
    let stderr = train_recipe(&recipe, &run);
    assert!(
        stderr.contains("carried from the codes of") && stderr.contains(".codes-from"),
        "{stderr}"
    );
    assert!(!run.join(".codes-from").exists());
    let progress = json(&run.join("recipe.json"));
    assert!(
        progress["done"][0]
            .as_str()
            .unwrap()
            .contains(&format!("--codes-from {commit}:checkpoints")),
        "{progress}"
    );
    // A carry that failed (no such folder yet) is made again when the command is run again.
    let later = dir.path().join("later");
    std::fs::write(
        &recipe,
        format!(
            "from = {:?}\n[[step]]\ndo = \"train dynamics\"\nsteps = 1\nbatch = 1\nclip_len = 3\n\
             eval_clips = 1\ncodes_from = {:?}\n",
            ckpt.display().to_string(),
            later.display().to_string()
        ),
    )
    .unwrap();
    let run6 = dir.path().join("run6");
    let stderr = refused_recipe(&recipe, &run6);
    assert!(stderr.contains("later"), "{stderr}");
    std::fs::create_dir(&later).unwrap();
    for file in [
        "genie.json",
        "tokenizer.safetensors",
        "lam.safetensors",
        "dynamics.safetensors",
    ] {
        std::fs::copy(ckpt.join(file), later.join(file)).unwrap();
    }
    let stderr = train_recipe(&recipe, &run6);
    assert!(stderr.contains("carried from the codes of"), "{stderr}");
    // By hand, a resumed run is carried only at a step's start.
    let out = genie()
        .args([
            "train",
            "dynamics",
            "--threads",
            "1",
            "--resume",
            "--steps",
            "3",
        ])
        .arg("--run")
        .arg(&run)
        .arg("--codes-from")
        .arg(&ckpt)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("needs --restart-schedule"),
        "{stderr}"
    );
}
