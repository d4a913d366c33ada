//! Data-parallel `genie train` over c10d (Gloo, localhost): two ranks at half the batch train as
//! one rank at the whole batch, and a rank that never arrives, dies or was started otherwise
//! stops the others with one clear line instead of a hang.

#[path = "common/tiny.rs"]
mod tiny;
#[path = "common/weights.rs"]
mod weights;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use weights::f32_tensors;

fn genie() -> Command {
    Command::new(env!("CARGO_BIN_EXE_genie"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// How far two networks' weights are apart: the 99th percentile and the largest of the
/// differences (with the tensor the largest is in), and the largest change of `a` from `start`.
fn compare(a: &Path, b: &Path, start: &Path) -> (f32, f32, String, f32) {
    let (a, b, start) = (f32_tensors(a), f32_tensors(b), f32_tensors(start));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let (mut differences, mut worst, mut moved) = (Vec::new(), (0.0f32, String::new()), 0.0f32);
    for (name, x) in &a {
        for ((x, y), s) in x.iter().zip(&b[name]).zip(&start[name]) {
            let d = (x - y).abs();
            if d > worst.0 {
                worst = (d, name.clone());
            }
            differences.push(d);
            moved = moved.max((x - s).abs());
        }
    }
    differences.sort_by(f32::total_cmp);
    let p99 = differences[(differences.len() - 1) * 99 / 100];
    (p99, worst.0, worst.1, moved)
}

fn check(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed: {stderr}");
    stderr
}

/// `genie train STAGE --resume --steps STEPS` on `run` with the test's fixed settings, `extra`
/// appended.
fn train(stage: &str, steps: u64, run: &Path, extra: &[&str]) -> Command {
    let mut cmd = genie();
    cmd.args(["train", stage, "--resume", "--threads", "1", "--quiet"])
        .args(["--steps", &steps.to_string()])
        .args(["--lr", "1e-3", "--warmup", "1", "--eval-clips", "2"])
        .args(["--clip-len", "3", "--levels", "50"])
        // f32: under bf16 autocast (`auto` turns it on for the LAM on a CPU with native bf16)
        // a batch split in two rounds differently, ~1e-4, more than the comparison allows.
        .args(["--bf16-autocast", "off"])
        .arg("--run")
        .arg(run)
        .args(extra);
    cmd
}

/// Each network, trained 3 steps from the same weights by one rank at batch 4 and by two at
/// batch 2, ends at the same weights (to float rounding: the sums are taken in another order).
/// The LAM's batch norm of its latents normalises over each rank's own rows, as torch's DDP
/// without SyncBatchNorm does, so the LAM is compared without it.
#[test]
fn two_ranks_at_half_the_batch_train_as_one_rank_at_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let start = dir.path().join("start");
    tiny::tiny_checkpoint_with(&start, |cfg| cfg.lam.normalize_latents = false);
    for (stage, file) in [
        ("tokenizer", "tokenizer.safetensors"),
        ("lam", "lam.safetensors"),
        ("dynamics", "dynamics.safetensors"),
        ("decoder", "tokenizer.safetensors"),
    ] {
        let (one, two) = (
            dir.path().join(format!("{stage}-1")),
            dir.path().join(format!("{stage}-2")),
        );
        copy_dir(&start, &one);
        copy_dir(&start, &two);
        check(
            &train(stage, 3, &one, &["--batch", "4"]).output().unwrap(),
            &format!("{stage}, one rank"),
        );
        let stderr = check(
            &train(stage, 3, &two, &["--batch", "2", "--nproc-per-node", "2"])
                .output()
                .unwrap(),
            &format!("{stage}, two ranks"),
        );
        assert!(
            stderr.contains("2 ranks × batch 2 = 4 clips a step"),
            "{stage}: the effective batch is not printed: {stderr}"
        );
        let (p99, largest, worst, moved) =
            compare(&one.join(file), &two.join(file), &start.join(file));
        assert!(moved > 1e-3, "{stage}: 3 steps moved no weight ({moved})");
        // Adam divides each step by the root of its gradient's running square, so a weight whose
        // gradient is almost nothing turns rounding into a visible step: a few weights may end
        // ~1e-4 apart, depending on the machine. Ranks that did not share their gradients end a
        // whole step (lr 1e-3) apart in most weights (measured: 99th percentile 4e-3, against
        // 3e-8 when they share).
        assert!(
            p99 < 1e-5 && largest < 1e-2,
            "{stage}: two ranks ended apart from one rank: 99th percentile {p99}, largest \
             {largest} in {worst} (the weights moved {moved})"
        );
        let state = |run: &Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(run.join("train_state.json")).unwrap()).unwrap()
        };
        assert_eq!(state(&one)[format!("{stage}_steps")], 3);
        assert_eq!(state(&two)[format!("{stage}_steps")], 3);
        // Rank 0 alone logged: one record per logged step, not two.
        let lines = |run: &Path| {
            std::fs::read_to_string(run.join("metrics.jsonl"))
                .unwrap()
                .lines()
                .count()
        };
        assert_eq!(lines(&one), lines(&two), "{stage}: metrics.jsonl");
    }
}

/// A rank of a two-rank group started by hand, as a launcher would.
fn rank(rank: usize, port: u16, run: &Path, steps: u64, extra: &[&str]) -> Child {
    train("tokenizer", steps, run, extra)
        .args(["--batch", "2", "--dist-timeout", "5"])
        .env("WORLD_SIZE", "2")
        .env("RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn ends_within(child: Child, limit: Duration) -> (Output, Duration) {
    let began = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = began.elapsed();
    assert!(took < limit, "took {took:?}");
    (out, took)
}

#[test]
fn a_rank_that_never_arrives_dies_or_differs_stops_the_others_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    tiny::tiny_checkpoint(&run);

    // Rank 1 never comes: rank 0 gives up after --dist-timeout.
    let (out, _) = ends_within(rank(0, free_port(), &run, 3, &[]), Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("rank 0 of 2: could not join the group"),
        "{stderr}"
    );

    // Rank 1 dies in the middle of training: rank 0 stops with an error, no hang.
    let port = free_port();
    let first = rank(0, port, &run, 100_000, &[]);
    let mut second = rank(1, port, &run, 100_000, &[]);
    // Both are training once rank 0 has logged a step.
    let began = Instant::now();
    while !std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|t| t.contains("\"train\""))
    {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the ranks never trained"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    second.kill().unwrap();
    let _ = second.wait();
    let (out, _) = ends_within(first, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("rank 0 of 2:"), "{stderr}");
    assert!(stderr.contains("failed (another rank died"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{stderr}"
    );

    // Rank 1 started with another seed: both are refused before training.
    let port = free_port();
    let first = rank(0, port, &run, 3, &[]);
    let second = rank(1, port, &run, 3, &["--seed", "5"]);
    for child in [first, second] {
        let (out, _) = ends_within(child, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("rank 1 started with another command line or config than rank 0"),
            "{stderr}"
        );
    }
}
