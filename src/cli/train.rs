//! `genie train tokenizer|lam|dynamics|decoder`: one network at a time into a run folder, on
//! clips the platformer generates in memory (or read from `genie data` shards), with held-out
//! evaluation on levels from seed 1,000,000 up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use genie::data::{DEFAULT_ODDS, DEFAULT_STICKINESS, Dataset, EVAL_SEED_START, PlayStyle, Share};
use genie::game::Action;
use genie::model::Genie;
use genie::model::dynamics::{ActionSource, code_cover};
use genie::train::clips;
use genie::train::dist::ProcessGroup;
use genie::train::folder::open_run;
use genie::train::launch::{Launch, launch_local};
use genie::train::run::{Batch, Stage, TrainOptions, train};
use genie::train::schedule::{Decay, Schedule, ScheduleFlags, WSD};
use tch::Tensor;

use super::world::{config_or_default, device};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Which network to train (the dynamics model needs a run with a trained tokenizer and LAM;
    /// `decoder` trains the tokenizer's decoder alone on its frozen codes, so a run's LAM and
    /// dynamics model stay valid; `camera` the camera head of a dynamics model that scrolls
    /// alone)
    #[arg(value_enum, required_unless_present = "recipe")]
    pub stage: Option<Stage>,
    /// Run every step of a recipe file (recipes/*.toml) into --run, in order; the same command
    /// after a stop goes on where it stopped. Takes --run, --device, --threads, --save-minutes
    /// and --quiet; the recipe gives the rest
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "stage", "resume", "config", "steps", "lr", "warmup", "restart_schedule", "decay",
        "data", "camera", "looks", "controls", "oracle_actions", "odds", "clip_len", "scroll",
        "context_noise", "whole_context", "own_context", "codes_from",
    ])]
    pub recipe: Option<PathBuf>,
    /// Run folder: a checkpoint folder plus train_state.json and metrics.jsonl
    #[arg(long, value_name = "DIR", default_value = "runs/main")]
    pub run: PathBuf,
    /// Continue the run folder (weights, config, steps done)
    #[arg(long)]
    pub resume: bool,
    /// Model sizes for a new run (a genie.json); default: the built-in sizes
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Total optimizer steps for this network [default: 20000; a resumed run keeps its own]
    #[arg(long)]
    pub steps: Option<u64>,
    /// Clips per batch
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Frames per clip [default: 4 for the tokenizer, its decoder and the LAM (it infers each
    /// transition from the frames up to it), 8 for the dynamics]
    #[arg(long)]
    pub clip_len: Option<usize>,
    /// Peak learning rate [default: 3e-4; a resumed run keeps its own]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Warm-up steps [default: 300; a resumed run keeps its own]
    #[arg(long)]
    pub warmup: Option<u64>,
    /// With --resume: lay the schedule (warm-up, peak, decay) anew over the steps from where the
    /// run stands to --steps, as for a new run, e.g. after another LAM was copied into the run
    /// folder. Without it a resumed run continues its schedule (train_state.json records it; the
    /// flags given change it, e.g. --steps to extend a WSD run)
    #[arg(long, requires = "resume")]
    pub restart_schedule: bool,
    /// Decay after warm-up: `wsd` keeps the peak until the last 20% (resumable to more steps) or
    /// `cosine` [default: wsd; a resumed run keeps its own]
    #[arg(long)]
    pub decay: Option<String>,
    #[arg(long, default_value_t = 0.05)]
    pub weight_decay: f64,
    /// Minutes between checkpoints (one is always written at exit)
    #[arg(long, default_value_t = 3.0)]
    pub save_minutes: f64,
    /// Steps between held-out evaluations
    #[arg(long, default_value_t = 250)]
    pub eval_every: u64,
    /// Held-out clips (levels from seed 1,000,000 up)
    #[arg(long, default_value_t = 32)]
    pub eval_clips: usize,
    /// Train on shards written by `genie data` instead of clips generated in memory
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Levels used for in-memory training clips: seeds 0..LEVELS (must stay below 1,000,000)
    #[arg(long, default_value_t = 100_000)]
    pub levels: u64,
    /// For in-memory clips: probability that the scripted player repeats its last action while
    /// recording (lower: less of each action can be guessed from the frames before it)
    #[arg(long, default_value_t = DEFAULT_STICKINESS)]
    pub stickiness: f32,
    // For in-memory clips: how often the scripted player draws each action (`odds_help`)
    #[arg(long, value_name = "ACTION=WEIGHT,...", value_parser = PlayStyle::parse_odds,
          help = odds_help())]
    pub odds: Option<[f32; 8]>,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// libtorch threads [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// No progress bar (for logs)
    #[arg(long)]
    pub quiet: bool,
    /// For in-memory clips: the camera of the game played, `step` (one 8 px patch when the
    /// player nears an edge) or `flip` (40 px jumps, the game of checkpoints before 2026-12-03)
    /// [default: a new run's `step`, a resumed run's own]. Recorded in genie.json (`game`), which
    /// evaluation, calibration and the real game beside the dream follow
    #[arg(long)]
    pub camera: Option<genie::game::Camera>,
    /// For in-memory clips: how levels are drawn, `themes` (the five palettes), `mixed` (many
    /// looks: random palettes, textures, pixel art, pencil on paper) or `held-out` [default: a
    /// new run's `mixed`, a resumed run's own]. Recorded in genie.json (`game`)
    #[arg(long)]
    pub looks: Option<genie::game::Looks>,
    /// For in-memory clips: what the keys do, `classic` (the shipped checkpoint's game: jump does
    /// nothing in the air, dash nothing while it cools down) or `responsive` (every key changes
    /// the next frame: a jump is higher while held and glides, down crouches in the air, dash
    /// lasts while held and runs while cooling down) [default: a new run's `classic`, a resumed
    /// run's own]. Recorded in genie.json (`game`)
    #[arg(long)]
    pub controls: Option<genie::game::Controls>,
    /// Dynamics only, a diagnostic: condition on the game's true actions instead of the LAM's
    /// latent ones (Genie never sees labels). Shows how much control the dynamics model can learn
    /// with perfect actions; the run's calibration becomes the identity, so keys drive it directly.
    /// Recorded in genie.json (`dynamics.actions`), so a resumed run keeps it
    #[arg(long)]
    pub oracle_actions: bool,
    /// Dynamics only: a world that scrolls by whole token columns. The model learns in each
    /// clip's last view (the frames before it moved by the columns the picture scrolled, read
    /// from the frames), and a camera head learns when the view steps; the LAM reads each clip
    /// in that view too, so a step of the view is not a move of the player. Turns a run's model
    /// that does not scroll into one that does (its weights kept, the head new). Recorded in
    /// genie.json (`dynamics.scroll`, `lam.one_view`), so a resumed run keeps it
    #[arg(long)]
    pub scroll: bool,
    /// Dynamics only: in each training clip, up to this share of the tokens the model reads
    /// (each clip draws its share from 0 to it) are swapped for tokens from elsewhere in the clip,
    /// while it still learns the true next ones, so that it learns to carry on from a context
    /// with mistakes in it, as a dream's own frames have. Recorded in genie.json
    /// (`dynamics.context_noise`) [default: a new run's 0, a resumed run's own]
    #[arg(long, value_name = "SHARE")]
    pub context_noise: Option<f64>,
    /// Dynamics only: the share of training clips read as a dream reads its past, the frames
    /// before a random one whole and only from it on tokens hidden and guessed (the Genie mask
    /// alone hides some of every frame after the first, while a dream reads whole frames).
    /// Recorded in genie.json (`dynamics.whole_context`) [default: a new run's 0, a resumed
    /// run's own]
    #[arg(long, value_name = "SHARE")]
    pub whole_context: Option<f64>,
    /// Dynamics only: the share of training clips read as a dream reads a past it drew itself:
    /// the frames before a random one whole, the tokens the mask hid in them the model's own
    /// best guess (one pass without gradients), the targets still the true tokens. Recorded in
    /// genie.json (`dynamics.own_context`) [default: a new run's 0, a resumed run's own]
    #[arg(long, value_name = "SHARE")]
    pub own_context: Option<f64>,
    /// Dynamics only, for a run whose tokenizer was replaced (a new one trained, the dynamics
    /// model taken from a checkpoint): before the first step, each code of the run's tokenizer
    /// takes the token embedding and output row of the codes of DIR's tokenizer (the one the
    /// dynamics model learned on) that it stands for on the same training frames, so the model
    /// starts reading and drawing the new codes as it did the old. With --resume it needs
    /// --restart-schedule (a step's start), so a resumed run is not carried twice
    #[arg(long, value_name = "DIR")]
    pub codes_from: Option<PathBuf>,
    /// Each step's forward pass under bf16 autocast (matmuls and convolutions in bf16; the loss,
    /// the weights and AdamW in f32): `auto` where it was measured faster, the LAM on a CPU with
    /// native bf16 (AVX-512 BF16 or AMX: 1.5x in `genie train lam`; without it 20x slower; the
    /// tokenizer's and the dynamics model's steps 0.8-1.0x, and CUDA unmeasured, so not those)
    #[arg(long, value_enum, default_value_t = Autocast::Auto)]
    pub bf16_autocast: Autocast,
    /// Data-parallel training on this machine: start N ranks of this same command (one group
    /// over c10d's Gloo, as torchrun would); `--batch` is each rank's, so a step takes N × batch
    /// clips. Across machines, launch with `torchrun --nnodes M --nproc-per-node N --no-python
    /// genie train …` (or any launcher setting RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
    #[arg(long, value_name = "N")]
    pub nproc_per_node: Option<usize>,
    /// Data-parallel training: seconds a rank waits for the others (to arrive, or at a step)
    /// before it stops with an error
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub dist_timeout: f64,
}

/// The clips `--codes-from` reads: one seed and one share for every rank.
const CARRY_SEED: u64 = 0x00c0_de5f;
const CARRY_SHARE: Share = Share {
    rank: 0,
    world: 1,
    batch: 16,
};
/// Frames `--codes-from` tokenizes with both tokenizers (about a million tokens of 64 a frame:
/// every code the new tokenizer uses on training frames is seen many times).
const CARRY_FRAMES: i64 = 16_384;

/// `--codes-from DIR`: the run's dynamics model re-expressed over the run tokenizer's codes, from
/// the codes of DIR's tokenizer on the same frames ([`Dynamics::carry_codes`]).
fn carry_codes(
    genie: &mut Genie,
    dir: &Path,
    mut frames: Box<dyn FnMut() -> Batch>,
    say: bool,
) -> anyhow::Result<()> {
    let old = Genie::load(dir, genie.dynamics_vs.device())?;
    let (was, now) = (&old.config.tokenizer, &genie.config.tokenizer);
    anyhow::ensure!(
        (was.image_size, was.channels, was.patch) == (now.image_size, now.channels, now.patch),
        "--codes-from {}: its tokenizer cuts {}×{} frames into {}-pixel patches, the run's {}×{} \
         frames into {}-pixel patches; codes carry over only on one grid",
        dir.display(),
        was.image_size,
        was.image_size,
        was.patch,
        now.image_size,
        now.image_size,
        now.patch
    );
    let k = genie.config.dynamics.vocab_size;
    anyhow::ensure!(
        was.codebook_size == k && now.codebook_size == k,
        "--codes-from {}: codebooks of {} (its tokenizer) and {} (the run's), a dynamics model \
         over {k} codes",
        dir.display(),
        was.codebook_size,
        now.codebook_size
    );
    let mut cover = Tensor::zeros([k, k], (tch::Kind::Float, tch::Device::Cpu));
    let mut seen = 0;
    while seen < CARRY_FRAMES {
        let batch = frames();
        let x = genie::model::frames::frames_to_f32(&batch.frames);
        seen += x.size()[0] * x.size()[1];
        code_cover(&old.tokenizer, &genie.tokenizer, &x, &mut cover);
    }
    let covered = genie.dynamics.carry_codes(&cover);
    if say {
        eprintln!(
            "the dynamics model carried from the codes of {} onto the run's: {covered} of {k} \
             codes seen in {seen} frames",
            dir.display()
        );
    }
    Ok(())
}

/// `genie train --bf16-autocast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Autocast {
    Auto,
    On,
    Off,
}

impl Autocast {
    /// Whether a run of `stage` on `device` trains under bf16 autocast.
    pub fn applies(self, stage: Stage, device: tch::Device) -> bool {
        match self {
            Autocast::On => true,
            Autocast::Off => false,
            Autocast::Auto => {
                stage == Stage::Lam
                    && device == tch::Device::Cpu
                    && genie::torch::cpu_has_native_bf16()
            }
        }
    }
}

/// `--odds`'s help, naming the default weights from `DEFAULT_ODDS` so the two cannot drift apart.
fn odds_help() -> String {
    let defaults: Vec<String> = Action::ALL
        .iter()
        .zip(DEFAULT_ODDS)
        .map(|(action, weight)| format!("{action} {weight:.2}"))
        .collect();
    format!(
        "For in-memory clips: how often the scripted player draws each action, as `name=weight` \
         pairs replacing the default weights ({}), e.g. `jump=0.3`",
        defaults.join(", ")
    )
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    let launch = Launch::from_env()?;
    if let Some(n) = args.nproc_per_node {
        anyhow::ensure!(n >= 1, "--nproc-per-node must be at least 1");
        anyhow::ensure!(
            launch.is_none(),
            "--nproc-per-node starts the ranks itself; a launcher (WORLD_SIZE is set) already did"
        );
        if n > 1 {
            // Each rank runs this command without the flag; Ctrl-C reaches them all.
            return Ok(launch_local(n, &without_nproc(std::env::args().skip(1)))?);
        }
    }
    anyhow::ensure!(
        args.dist_timeout > 0.0 && args.dist_timeout.is_finite(),
        "--dist-timeout {}: expected a positive number of seconds",
        args.dist_timeout
    );
    let group = match &launch {
        None => None,
        Some(launch) => {
            let timeout = Duration::from_secs_f64(args.dist_timeout);
            Some(Arc::new(ProcessGroup::join(launch, timeout)?))
        }
    };
    match (&args.recipe, args.stage) {
        (Some(recipe), _) => super::recipe::run(recipe, &args, stop, group),
        (None, Some(stage)) => run_stage(&args, stage, stop, group).map(|_| ()),
        (None, None) => anyhow::bail!("name a network to train, or pass --recipe"),
    }
}

/// The command line without `--nproc-per-node N` (or `--nproc-per-node=N`).
fn without_nproc(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
        } else if arg == "--nproc-per-node" {
            skip_value = true;
        } else if !arg.starts_with("--nproc-per-node=") {
            out.push(arg);
        }
    }
    out
}

/// Trains `stage`'s network as `args` say until its schedule ends or `stop` is set, alone or as
/// one rank of `group`; the step it reached.
pub fn run_stage(
    args: &TrainArgs,
    stage: Stage,
    stop: Arc<AtomicBool>,
    group: Option<Arc<ProcessGroup>>,
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        args.levels <= EVAL_SEED_START,
        "--levels {}: training levels must stay below the held-out seeds ({EVAL_SEED_START} and up)",
        args.levels
    );
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.stickiness),
        "--stickiness {}: expected a probability, 0 to 1",
        args.stickiness
    );
    anyhow::ensure!(
        args.odds.is_none() || args.data.is_none(),
        "--odds sets how the scripted player plays in-memory clips; shards from --data were \
         played already"
    );
    anyhow::ensure!(
        (args.camera.is_none() && args.looks.is_none() && args.controls.is_none())
            || args.data.is_none(),
        "--camera, --looks and --controls set the game of in-memory clips; shards from --data say \
         their own"
    );
    for (flag, given) in [
        ("--oracle-actions", args.oracle_actions),
        ("--scroll", args.scroll),
        ("--context-noise", args.context_noise.is_some()),
        ("--whole-context", args.whole_context.is_some()),
        ("--own-context", args.own_context.is_some()),
        ("--codes-from", args.codes_from.is_some()),
    ] {
        anyhow::ensure!(
            !given || stage == Stage::Dynamics,
            "{flag} only applies to the dynamics model"
        );
    }
    let device = match (device(&args.device, args.threads)?, &group) {
        // One GPU a rank: the LOCAL_RANK-th of its machine.
        (tch::Device::Cuda(0), Some(g)) => tch::Device::Cuda(g.local_rank),
        (device, _) => device,
    };
    let clip_len = args.clip_len.unwrap_or(match stage {
        Stage::Tokenizer | Stage::Decoder => 4,
        Stage::Lam => 4,
        Stage::Dynamics | Stage::Camera => 8,
    });
    anyhow::ensure!(
        clip_len >= 2 || matches!(stage, Stage::Tokenizer | Stage::Decoder),
        "--clip-len must be at least 2 for the {:?}",
        stage
    );
    let decay = match args.decay.as_deref() {
        None => None,
        Some("cosine") => Some(Decay::Cosine),
        Some("wsd") => Some(WSD),
        Some(other) => anyhow::bail!("--decay {other}: expected cosine or wsd"),
    };
    let config = config_or_default(args.config.as_deref())?;
    let mut opts = TrainOptions {
        stage,
        run: args.run.clone(),
        resume: args.resume,
        // Laid out below, once a resumed run's own schedule has been read.
        schedule: Schedule::default(),
        weight_decay: args.weight_decay,
        clip_norm: 1.0,
        save_every: Duration::from_secs_f64(args.save_minutes.max(0.1) * 60.0),
        eval_every: args.eval_every,
        log_every: 10,
        idle_code_limit: 200,
        device,
        seed: args.seed as i64,
        progress: !args.quiet,
        bf16_autocast: args.bf16_autocast.applies(stage, device),
        group: group.clone(),
    };
    let writes = opts.writes();
    let (mut genie, mut state) = open_run(&opts, &config)?;
    if args.scroll {
        genie.enable_scroll()?;
    }
    if args.context_noise.is_some() || args.whole_context.is_some() || args.own_context.is_some() {
        let now = genie::model::dynamics::ContextRead::training(&genie.config.dynamics);
        let read = genie::model::dynamics::ContextRead {
            noise: args.context_noise.unwrap_or(now.noise),
            whole: args.whole_context.unwrap_or(now.whole),
            own: args.own_context.unwrap_or(now.own),
        };
        // The error names the field out of range (context_noise, whole_context, own_context).
        genie.set_context_read(read).map_err(|e| {
            anyhow::anyhow!(
                "--context-noise {} / --whole-context {} / --own-context {}: {e}",
                read.noise,
                read.whole,
                read.own
            )
        })?;
    }
    // A clip shorter than the network's band never teaches the bias of the farther distances,
    // yet every rollout attends over the whole band.
    let band = match stage {
        Stage::Tokenizer | Stage::Decoder => {
            Some(("tokenizer", genie.config.tokenizer.context_frames))
        }
        Stage::Dynamics => Some(("dynamics", genie.config.dynamics.context_frames)),
        Stage::Lam | Stage::Camera => None,
    };
    if let Some((network, frames)) =
        band.filter(|&(_, frames)| writes && (clip_len as i64) < frames)
    {
        eprintln!(
            "warning: --clip-len {clip_len} teaches the {network}'s temporal attention distances up \
             to {} of its {frames}-frame band ({network}.context_frames); the farther ones keep \
             their initial bias, yet a dream attends over them all: train with --clip-len \
             {frames}, or set {network}.context_frames to {clip_len} (a longer stored bias is cut \
             on load)",
            clip_len - 1
        );
    }
    anyhow::ensure!(
        stage != Stage::Camera || genie.config.dynamics.scroll,
        "{}: its dynamics model does not scroll, so it has no camera head (train it with \
         `genie train dynamics --scroll` first)",
        opts.run.display()
    );
    // A new run's state is fresh (open_run refuses a folder that holds one), so this is a
    // resumed run's own.
    let recorded = state.schedules.get(stage.name());
    let flags = ScheduleFlags {
        steps: args.steps,
        lr: args.lr,
        warmup: args.warmup,
        decay,
    };
    opts.schedule = flags
        .schedule(recorded, args.restart_schedule, state.steps(stage))
        .map_err(anyhow::Error::msg)?;
    let s = &opts.schedule;
    if writes {
        eprintln!(
            "schedule: peak {}, warm-up {} steps from step {}, {} to step {}{}",
            s.peak,
            s.warmup_steps,
            s.start_step,
            match s.decay {
                Decay::Cosine => "cosine",
                Decay::Wsd { .. } => "wsd",
            },
            s.total_steps,
            match recorded {
                Some(_) if !flags.all_given() => " (what the flags leave out is kept from the run)",
                _ => "",
            }
        );
    }
    if opts.bf16_autocast && writes {
        eprintln!("bf16 autocast on for the forward pass (--bf16-autocast off to train in f32)");
    }
    let mut description = serde_json::json!({
        "source": if args.data.is_some() { "shards" } else { "in-memory platformer" },
        "training_levels": format!("0..{}", args.levels),
        "held_out_levels_from": EVAL_SEED_START,
    });
    match &args.data {
        Some(dir) => description["shards"] = serde_json::json!(dir.display().to_string()),
        None => {
            // Through its shortest decimal form: genie.json says 0.3, not 0.30000001192092896.
            let shortest = |x: f32| -> f64 { x.to_string().parse().expect("a float parses") };
            description["stickiness"] = serde_json::json!(shortest(args.stickiness));
            if let Some(odds) = &args.odds {
                let odds: serde_json::Map<String, serde_json::Value> = Action::ALL
                    .iter()
                    .map(|a| {
                        (
                            a.name().to_owned(),
                            serde_json::json!(shortest(odds[*a as usize])),
                        )
                    })
                    .collect();
                description["odds"] = serde_json::Value::Object(odds);
            }
        }
    }
    if args.oracle_actions {
        genie.config.dynamics.actions = ActionSource::Game;
        anyhow::ensure!(
            genie.config.dynamics.num_actions >= Action::ALL.len() as i64,
            "--oracle-actions: the dynamics model has {} actions, the game {}",
            genie.config.dynamics.num_actions,
            Action::ALL.len()
        );
        // Keys drive the model with the game's own action ids.
        genie.config.calibration = Some(
            Action::ALL
                .into_iter()
                .map(|a| (a.name().to_owned(), a as i64))
                .collect(),
        );
        genie.config.press_calibration = None;
        // The facing and settled maps, the cycles and the blends name latents, which the
        // game's ids are not.
        genie.config.facing_calibration = None;
        genie.config.facing_press_calibration = None;
        genie.config.settled_calibration = None;
        genie.config.settle_after = None;
        genie.config.held_cycles = None;
        genie.config.dynamics.blends.clear();
    }
    if let Some(camera) = args.camera {
        genie.config.game.camera = camera;
    }
    if let Some(looks) = args.looks {
        genie.config.game.looks = looks;
    }
    if let Some(controls) = args.controls {
        genie.config.game.controls = controls;
    }
    // How the scripted player plays in-memory clips.
    let style = PlayStyle {
        stickiness: args.stickiness,
        odds: args.odds.unwrap_or(DEFAULT_ODDS),
    };
    // Shards from --data, opened once: their game, held-out split and clips.
    let dataset = args.data.as_deref().map(Dataset::open).transpose()?;
    if let (Some(dir), Some(dataset)) = (&args.data, &dataset) {
        let manifest = dataset.manifest().clone();
        anyhow::ensure!(
            manifest.labelled || !args.oracle_actions,
            "{}: imported video has no actions for --oracle-actions",
            dir.display()
        );
        // Video imported from another game: the player's prompts keep their hero as drawn.
        if !manifest.sources.is_empty() {
            description["video"] = true.into();
        }
        let game = manifest.game;
        if manifest.labelled && game != genie.config.game {
            eprintln!(
                "{}: the shards were played in {game:?}; the run's genie.json said {:?} and now \
                 says the shards' game",
                dir.display(),
                genie.config.game
            );
            genie.config.game = game;
        }
    }
    description["game"] = serde_json::to_value(genie.config.game)?;
    genie.config.training_data[stage.name()] = description;
    if let Some(group) = &group {
        // Everything that decides what a step computes, so that a rank started otherwise is
        // refused before it trains another model.
        let run = serde_json::json!({
            "stage": stage.name(),
            "config": &genie.config,
            "schedule": &opts.schedule,
            "steps_done": state.steps(stage),
            "batch": args.batch,
            "clip_len": clip_len,
            "seed": args.seed,
            "levels": args.levels,
            "weight_decay": args.weight_decay,
            "bf16_autocast": opts.bf16_autocast,
        });
        group.agree("command line or config", &run.to_string())?;
        if writes {
            eprintln!(
                "data parallel over c10d (Gloo): {} ranks × batch {} = {} clips a step",
                group.world,
                args.batch,
                group.world * args.batch
            );
        }
    }
    if let Some(dir) = &args.codes_from {
        anyhow::ensure!(
            !args.resume || args.restart_schedule,
            "--codes-from carries a model onto new codes once, at the start of its training: \
             with --resume it needs --restart-schedule"
        );
        // Every rank carries the same codes: the frames come from one seed, not the rank's clips.
        let frames = match &dataset {
            Some(dataset) => Box::new(clips::shard_batches(
                dataset.clone(),
                clip_len,
                CARRY_SEED,
                CARRY_SHARE,
                device,
            )) as Box<dyn FnMut() -> Batch>,
            None => Box::new(clips::platformer_batches(
                args.levels,
                clip_len,
                CARRY_SEED,
                (style, genie.config.game),
                CARRY_SHARE,
                device,
            )),
        };
        carry_codes(&mut genie, dir, frames, writes)?;
    }
    let (rank, world) = group.as_ref().map_or((0, 1), |g| (g.rank, g.world));

    let share = Share {
        rank,
        world,
        batch: args.batch,
    };
    // Imported video is held out by file (its held-out/ split); the platformer by level.
    let imported = dataset.as_ref().filter(|d| !d.manifest().labelled);
    let held_out: Vec<Batch> = match imported {
        // Rank 0 alone evaluates.
        _ if !writes => Vec::new(),
        None => clips::platformer_held_out(
            genie.config.game,
            clip_len,
            args.batch,
            args.eval_clips,
            device,
        ),
        Some(train_split) => {
            let (batch, clips) = (args.batch, args.eval_clips);
            match clips::imported_held_out(train_split, clip_len, batch, clips, device)? {
                Some((batches, held)) => {
                    eprintln!(
                        "held-out evaluation on {} clips of {}",
                        batches.len() * args.batch,
                        held.dir().display()
                    );
                    batches
                }
                None => {
                    eprintln!(
                        "{}: unlabelled video with no held-out/ split of clips of {clip_len} \
                         frames beside it: no held-out evaluation",
                        train_split.dir().display()
                    );
                    Vec::new()
                }
            }
        }
    };
    let seed = args.seed ^ clips::resume_seed(&state);
    match dataset {
        Some(dataset) => {
            let dir = dataset.dir().to_path_buf();
            anyhow::ensure!(
                dataset.clip_len() >= clip_len,
                "{}: clips of {} frames are shorter than --clip-len {clip_len}",
                dir.display(),
                dataset.clip_len()
            );
            anyhow::ensure!(
                !dataset.is_empty(),
                "{}: the dataset holds no clips",
                dir.display()
            );
            let batches = clips::shard_batches(dataset, clip_len, seed, share, device);
            train(&opts, &mut genie, &mut state, batches, &held_out, stop)?;
        }
        None => {
            let game = genie.config.game;
            let batches = clips::platformer_batches(
                args.levels,
                clip_len,
                seed,
                (style, game),
                share,
                device,
            );
            train(&opts, &mut genie, &mut state, batches, &held_out, stop)?;
        }
    }
    if writes {
        eprintln!(
            "{} trained to step {} in {}",
            stage.name(),
            state.steps(stage),
            args.run.display()
        );
    }
    Ok(state.steps(stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    #[test]
    fn bf16_autocast_is_on_by_default_for_the_lam_on_a_cpu_with_native_bf16_only() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["genie", "lam"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).unwrap().train.bf16_autocast
        };
        let (cpu, cuda) = (tch::Device::Cpu, tch::Device::Cuda(0));
        assert_eq!(parse(&[]), Autocast::Auto);
        assert_eq!(
            Autocast::Auto.applies(Stage::Lam, cpu),
            genie::torch::cpu_has_native_bf16()
        );
        for stage in [Stage::Tokenizer, Stage::Decoder, Stage::Dynamics] {
            assert!(!Autocast::Auto.applies(stage, cpu), "{stage:?}");
            assert!(parse(&["--bf16-autocast", "on"]).applies(stage, cpu));
        }
        assert!(!Autocast::Auto.applies(Stage::Lam, cuda));
        assert!(!parse(&["--bf16-autocast", "off"]).applies(Stage::Lam, cpu));
    }

    #[test]
    fn odds_replace_the_named_actions_weights_and_bad_ones_are_refused() {
        let args = Cli::try_parse_from(["genie", "lam", "--odds", "jump=0.3, noop=0"])
            .unwrap()
            .train;
        let mut want = DEFAULT_ODDS;
        want[Action::Jump as usize] = 0.3;
        want[Action::Noop as usize] = 0.0;
        assert_eq!(args.odds, Some(want));
        assert_eq!(
            Cli::try_parse_from(["genie", "lam"]).unwrap().train.odds,
            None
        );
        let err = Cli::try_parse_from(["genie", "lam", "--odds", "hop=1"])
            .err()
            .expect("an unknown action is refused")
            .to_string();
        assert!(err.contains("unknown action \"hop\""), "{err}");
        let help = Cli::try_parse_from(["genie", "lam", "--help"])
            .err()
            .expect("--help stops the parse")
            .to_string();
        assert!(
            help.contains("noop 0.08, left 0.10, right 0.28, jump 0.10, left_jump 0.06"),
            "{help}"
        );
    }
}
