//! `genie train --recipe FILE --run DIR`: every step of a recipe ([`genie::train::recipe`]) in
//! order, each through the same code as its own command, resumable at any point.
//!
//! Under a launcher (`--nproc-per-node`, torchrun) every rank runs the recipe: its training steps
//! data-parallel (a step's `batch` split over the ranks, so the recipe trains the same model on
//! any number of them), rank 0 alone writing the run folder and `recipe.json`, and rank 0 alone
//! running the steps after the last training step (calibration, evaluation).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use genie::model::checkpoint::{
    CONFIG_FILE, DYNAMICS_FILE, LAM_FILE, TOKENIZER_FILE, read_config, write_config,
};
use genie::train::dist::ProcessGroup;
use genie::train::folder::{STATE_FILE, TrainState};
use genie::train::recipe::{Action, Current, Origin, Progress, Recipe};
use genie::train::run::Stage;

use super::eval::{CalibrateArgs, EvalArgs};
use super::train::{TrainArgs, run_stage};

/// A step's command line, parsed by the command's own argument parser.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct StepLine<T: clap::Args> {
    #[command(flatten)]
    args: T,
}

fn parse<T: clap::Args>(words: &[String], what: &str) -> anyhow::Result<T> {
    StepLine::<T>::try_parse_from(words)
        .map(|line| line.args)
        .with_context(|| format!("recipe step `{what}`"))
}

pub fn run(
    path: &Path,
    machine: &TrainArgs,
    stop: Arc<AtomicBool>,
    group: Option<Arc<ProcessGroup>>,
) -> anyhow::Result<()> {
    let recipe = Recipe::load(path)?;
    let writes = group.as_ref().is_none_or(|g| g.is_first());
    let last_training = recipe
        .steps
        .iter()
        .rposition(|s| matches!(s.action, Action::Train(_)));
    if group.is_some()
        && let Some(last) = last_training
    {
        anyhow::ensure!(
            recipe.steps[..last]
                .iter()
                .all(|s| matches!(s.action, Action::Train(_))),
            "{}: under a launcher a recipe's training steps must all come before its other steps \
             (rank 0 alone runs those)",
            path.display()
        );
    }
    // The repository whose commits `from`, `init` and `codes_from` name.
    let repo = path.parent().unwrap_or(Path::new("."));
    let run = &machine.run;
    std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
    let mut progress = Progress::load(run)?;
    let next = progress.check(&recipe, run)?;
    if writes
        && let Some(from) = &recipe.from
        && !run.join(CONFIG_FILE).exists()
    {
        match from {
            Origin::Folder(dir) => copy_checkpoint(dir, run)?,
            Origin::Commit { commit, path: dir } => checkout_checkpoint(repo, commit, dir, run)
                .with_context(|| format!("{}: `from` {from}", path.display()))?,
        }
    }
    // Every rank reads the run folder between barriers, before rank 0 writes it again.
    let barrier = || -> anyhow::Result<()> {
        if let Some(g) = &group {
            g.barrier()?;
        }
        Ok(())
    };
    barrier()?;
    let total = recipe.steps.len();
    if writes {
        eprintln!(
            "recipe {}: {total} steps into {}, {next} done",
            path.display(),
            run.display()
        );
    }
    for (i, step) in recipe.steps.iter().enumerate().skip(next) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if !writes && !matches!(step.action, Action::Train(_)) {
            break;
        }
        let what = step.describe();
        if writes {
            eprintln!("step {}/{total}: {what}", i + 1);
        }
        let began = Instant::now();
        let earlier = progress.current.filter(|c| c.index == i);
        let earlier_seconds = earlier.map_or(0.0, |c| c.seconds);
        let run_text = run.display().to_string();
        let mut finished = true;
        match step.action {
            Action::Train(stage) => {
                let has_run = run.join(CONFIG_FILE).exists();
                let from_step = match earlier {
                    Some(c) => c.from_step,
                    None if has_run => steps_done(run)?.steps(stage),
                    None => 0,
                };
                barrier()?;
                progress.current = Some(Current {
                    index: i,
                    from_step,
                    seconds: earlier_seconds,
                });
                if writes {
                    progress.save(run)?;
                }
                // A step begun now whose network starts from another checkpoint's weights.
                if let Some(init) = step.init.as_ref().filter(|_| earlier.is_none()) {
                    anyhow::ensure!(
                        has_run,
                        "step {} ({what}): `init` needs the run an earlier step made",
                        i + 1
                    );
                    if writes {
                        start_network_from(init, repo, run, stage).with_context(|| {
                            format!("{}: step {} `init` {init}", path.display(), i + 1)
                        })?;
                    }
                    barrier()?;
                }
                let target = from_step + step.steps.expect("a training step has steps");
                // A step stopped before it saved a step (a carry that failed, or a killed
                // process) saved no carried model either: it carries again, from its start.
                let carry = step.codes_from.is_some()
                    && (earlier.is_none() || steps_done(run)?.steps(stage) == from_step);
                let mut words: Vec<String> = vec![stage.name().into(), "--run".into(), run_text];
                words.extend(["--steps".into(), target.to_string()]);
                if has_run {
                    words.push("--resume".into());
                    // A step begun in an earlier run of the command continues its schedule.
                    if earlier.is_none() || carry {
                        words.push("--restart-schedule".into());
                    }
                } else if let Some(config) = &recipe.config {
                    words.extend(["--config".into(), config.display().to_string()]);
                }
                words.extend(step.flag_args());
                words.extend(machine_flags(machine, true));
                let codes_from = match step.codes_from.as_ref().filter(|_| carry) {
                    Some(origin) => {
                        let dir =
                            checkpoint_folder(origin, repo, run, writes).with_context(|| {
                                format!("{}: step {} `codes_from` {origin}", path.display(), i + 1)
                            })?;
                        barrier()?;
                        words.extend(["--codes-from".into(), dir.display().to_string()]);
                        Some(dir)
                    }
                    None => None,
                };
                let mut args: TrainArgs = parse(&words, &what)?;
                // A recipe's batch is the step's, whatever the machine: each rank takes its share.
                if let Some(g) = &group {
                    anyhow::ensure!(
                        args.batch.is_multiple_of(g.world),
                        "step {} ({what}): batch {} does not split over {} ranks",
                        i + 1,
                        args.batch,
                        g.world
                    );
                    args.batch /= g.world;
                }
                // `steps = 0`: the network `init` gave is taken as it is.
                if target > from_step {
                    let reached = run_stage(&args, stage, stop.clone(), group.clone())?;
                    finished = reached >= target;
                }
                if let Some(dir) = codes_from.filter(|d| writes && d.starts_with(run)) {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("removing {}", dir.display()))?;
                }
            }
            Action::Keys => {
                let keys = step.keys.as_ref().expect("a keys step has its key map");
                let mut config = read_config(run)?;
                keys.apply(&mut config)
                    .with_context(|| format!("{}: step {} ({what})", path.display(), i + 1))?;
                write_config(run, &config)?;
                eprintln!("the key map of {} set", run.join(CONFIG_FILE).display());
            }
            Action::Calibrate | Action::Eval => {
                progress.current = Some(Current {
                    index: i,
                    from_step: 0,
                    seconds: earlier_seconds,
                });
                progress.save(run)?;
                let mut words: Vec<String> = vec!["--checkpoint".into(), run_text];
                words.extend(step.flag_args());
                words.extend(machine_flags(machine, false));
                if step.action == Action::Calibrate {
                    super::eval::calibrate_cmd(parse::<CalibrateArgs>(&words, &what)?)?;
                } else {
                    super::eval::eval(parse::<EvalArgs>(&words, &what)?)?;
                }
            }
        }
        let seconds = earlier_seconds + began.elapsed().as_secs_f64();
        if !finished {
            progress.current = progress.current.map(|c| Current { seconds, ..c });
            if writes {
                progress.save(run)?;
                eprintln!(
                    "stopped in step {}/{total}; the same command goes on from here",
                    i + 1
                );
            }
            return Ok(());
        }
        progress.done.push(what);
        progress.seconds.push(seconds);
        progress.current = None;
        if writes {
            progress.save(run)?;
        }
    }
    if writes && progress.done.len() == total {
        let minutes = progress.seconds.iter().sum::<f64>() / 60.0;
        eprintln!(
            "recipe done: {} holds the checkpoint ({minutes:.1} min of steps)",
            run.display()
        );
    }
    Ok(())
}

/// The machine's settings from the command line, for a step.
fn machine_flags(machine: &TrainArgs, training: bool) -> Vec<String> {
    let mut words = vec!["--device".into(), machine.device.clone()];
    if let Some(threads) = machine.threads {
        words.extend(["--threads".into(), threads.to_string()]);
    }
    if training {
        words.extend(["--save-minutes".into(), machine.save_minutes.to_string()]);
        if machine.quiet {
            words.push("--quiet".into());
        }
    }
    words
}

/// `stage`'s network in `run` replaced by `init`'s (a folder, or one as a commit of the repository
/// around `repo` holds it), its optimizer moments dropped (they belong to the weights replaced).
/// The run's genie.json keeps its sizes: a network of other sizes is refused when the step loads
/// the run.
fn start_network_from(init: &Origin, repo: &Path, run: &Path, stage: Stage) -> anyhow::Result<()> {
    let file = match stage {
        Stage::Tokenizer | Stage::Decoder => TOKENIZER_FILE,
        Stage::Lam => LAM_FILE,
        Stage::Dynamics | Stage::Camera => DYNAMICS_FILE,
    };
    match init {
        Origin::Folder(dir) => {
            let source = dir.join(file);
            std::fs::copy(&source, run.join(file))
                .with_context(|| format!("copying {} into {}", source.display(), run.display()))?;
        }
        Origin::Commit { commit, path: dir } => {
            let top = toplevel(repo)?;
            let spec = format!("{}{file}", commit_prefix(commit, dir));
            // Written beside the run's own file and moved over it only when whole.
            let staging = run.join(format!(".{file}.from-commit"));
            let fetched = write_blob(&top, &spec, &staging).and_then(|there| {
                anyhow::ensure!(
                    there,
                    "this clone has no {spec} (not a commit of this repository, or a shallow \
                     clone: `git fetch --unshallow`)"
                );
                std::fs::rename(&staging, run.join(file))
                    .with_context(|| format!("moving {file} into {}", run.display()))
            });
            if fetched.is_err() && staging.exists() {
                let _ = std::fs::remove_file(&staging);
            }
            fetched?;
        }
    }
    let moments = run.join(genie::train::adamw::state_file(stage.name()));
    if moments.exists() {
        std::fs::remove_file(&moments)
            .with_context(|| format!("removing {}", moments.display()))?;
    }
    eprintln!("the {} starts from {file} of {init}", stage.name());
    Ok(())
}

/// A checkpoint folder for `origin`: the folder itself, or a commit's checkpoint written out into
/// `run/.codes-from` where `writes` (rank 0; the others wait at a barrier after).
fn checkpoint_folder(
    origin: &Origin,
    repo: &Path,
    run: &Path,
    writes: bool,
) -> anyhow::Result<PathBuf> {
    match origin {
        Origin::Folder(dir) => Ok(dir.clone()),
        Origin::Commit { .. } if !writes => Ok(run.join(".codes-from")),
        Origin::Commit { commit, path: dir } => {
            let into = run.join(".codes-from");
            write_checkpoint(repo, commit, dir, &into)?;
            Ok(into)
        }
    }
}

/// Steps done per network in a run folder (none recorded: zero).
fn steps_done(run: &Path) -> anyhow::Result<TrainState> {
    let path = run.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => genie::json::parse(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: bad train state: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrainState::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The files a run copies from the checkpoint it starts from (train_state.json where there is one).
const CHECKPOINT_FILES: [&str; 5] = [
    CONFIG_FILE,
    TOKENIZER_FILE,
    LAM_FILE,
    DYNAMICS_FILE,
    STATE_FILE,
];

/// A checkpoint's networks, genie.json and step counts into a new run folder (its optimizer
/// states stay behind: the run starts with fresh moments).
fn copy_checkpoint(from: &Path, run: &Path) -> anyhow::Result<()> {
    genie::model::checkpoint::read_config(from)?;
    for file in CHECKPOINT_FILES {
        let source: PathBuf = from.join(file);
        if file == STATE_FILE && !source.exists() {
            continue;
        }
        std::fs::copy(&source, run.join(file))
            .with_context(|| format!("copying {} into {}", source.display(), run.display()))?;
    }
    eprintln!("the run starts from {}", from.display());
    Ok(())
}

/// `git -C at`.
fn git(at: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(if at.as_os_str().is_empty() {
        Path::new(".")
    } else {
        at
    });
    cmd
}

/// The checkpoint files a commit of the repository around `repo` holds in `dir`, checked and
/// then moved into `run`. Each is streamed from git into a file, never held whole in memory.
fn checkout_checkpoint(repo: &Path, commit: &str, dir: &Path, run: &Path) -> anyhow::Result<()> {
    let staging = run.join(".from-commit");
    let got = write_checkpoint(repo, commit, dir, &staging)?;
    let result = got.into_iter().try_for_each(|file| {
        std::fs::rename(staging.join(file), run.join(file))
            .with_context(|| format!("moving {file} into {}", run.display()))
    });
    std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    result?;
    eprintln!("the run starts from the checkpoint in {dir:?} at commit {commit}");
    Ok(())
}

/// The checkpoint files a commit of the repository around `repo` holds in `dir`, written into the
/// folder `into` (emptied first) and checked; the files it has. On an error `into` is removed.
fn write_checkpoint(
    repo: &Path,
    commit: &str,
    dir: &Path,
    into: &Path,
) -> anyhow::Result<Vec<&'static str>> {
    let top = toplevel(repo)?;
    if into.exists() {
        std::fs::remove_dir_all(into).with_context(|| format!("removing {}", into.display()))?;
    }
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let fetched = fetch_files(&top, &commit_prefix(commit, dir), into).and_then(|got| {
        genie::model::checkpoint::read_config(into)?;
        Ok(got)
    });
    if fetched.is_err() {
        let _ = std::fs::remove_dir_all(into);
    }
    fetched
}

/// The top folder of the git clone around `repo`.
fn toplevel(repo: &Path) -> anyhow::Result<PathBuf> {
    let out = git(repo)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .context("running git (a recipe that starts from a commit needs it)")?;
    anyhow::ensure!(
        out.status.success(),
        "{} is not in a git clone: {}",
        repo.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `COMMIT:a/b/`: git's object names take `/` whatever the platform's separator.
fn commit_prefix(commit: &str, dir: &Path) -> String {
    let mut prefix = format!("{commit}:");
    for part in dir.iter() {
        prefix.push_str(&part.to_string_lossy());
        prefix.push('/');
    }
    prefix
}

/// Streams each checkpoint file git holds under `prefix` (`COMMIT:FOLDER/`) into `staging`; the
/// ones it has (train_state.json may be missing).
fn fetch_files(top: &Path, prefix: &str, staging: &Path) -> anyhow::Result<Vec<&'static str>> {
    let mut got = Vec::new();
    for file in CHECKPOINT_FILES {
        let spec = format!("{prefix}{file}");
        if !write_blob(top, &spec, &staging.join(file))? {
            anyhow::ensure!(
                file == STATE_FILE,
                "this clone has no {spec} (not a commit of this repository, or a shallow \
                 clone: `git fetch --unshallow`)"
            );
            continue;
        }
        got.push(file);
    }
    Ok(got)
}

/// Streams the blob git names `spec` (`COMMIT:PATH`) into `target`; false, writing nothing, where
/// the clone has no such blob.
fn write_blob(top: &Path, spec: &str, target: &Path) -> anyhow::Result<bool> {
    let there = git(top)
        .args(["cat-file", "-e", spec])
        .stderr(std::process::Stdio::null())
        .status()
        .context("running git")?
        .success();
    if !there {
        return Ok(false);
    }
    let out =
        std::fs::File::create(target).with_context(|| format!("creating {}", target.display()))?;
    let status = git(top)
        .args(["cat-file", "blob", spec])
        .stdout(out)
        .status()
        .context("running git")?;
    anyhow::ensure!(status.success(), "git could not write out {spec}");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every recipe the repository ships loads, and each step's keys are flags its command
    /// takes: a misspelt key stops a run hours in, at the step that has it.
    #[test]
    fn every_shipped_recipe_parses_step_by_step() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            seen += 1;
            let recipe = Recipe::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for step in &recipe.steps {
                let what = format!("{}: {}", path.display(), step.describe());
                let flags = step.flag_args();
                let parsed = match step.action {
                    Action::Train(stage) => {
                        let mut words =
                            vec![stage.name().to_string(), "--steps".into(), "1".into()];
                        words.extend(flags);
                        parse::<TrainArgs>(&words, &what).map(drop)
                    }
                    Action::Calibrate => parse::<CalibrateArgs>(&flags, &what).map(drop),
                    Action::Eval => parse::<EvalArgs>(&flags, &what).map(drop),
                    // Its key map was read when the recipe loaded; its latents are checked
                    // against the run's genie.json when it runs.
                    Action::Keys => Ok(()),
                };
                parsed.unwrap_or_else(|e| panic!("{e:#}"));
            }
        }
        assert!(seen >= 3, "recipes found in {}: {seen}", dir.display());
    }
}
