//! `genie eval` prints the held-out measures as one JSON object; `genie calibrate` stores the
//! game action → latent action map in the checkpoint's `genie.json`.

use std::path::PathBuf;

use anyhow::Context;
use genie::data::EVAL_SEED_START;
use genie::eval::calibrate::{Margins, calibrate, calibrate_by_dreams};
use genie::eval::prompts::{PromptEvalOptions, evaluate_prompts, read_heroes};
use genie::eval::run::{EvalOptions, evaluate};
use genie::eval::sessions::{SHEET_EVERY, SessionKeys, SessionOptions, measure_sessions};
use genie::eval::sheet::{SHEET_ACTIONS, contact_sheet};
use genie::model::checkpoint::{ADAPTER_FILE, read_config, save_network, write_config};
use genie::model::dynamics::ActionSource;
use genie::session::export::grid;
use genie::session::keys::KeyMap;

use super::world::{SamplerArgs, default_checkpoint, device, load_genie};

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Checkpoint folder [default: the shipped checkpoints/]
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Print one JSON object (the only output format; the flag is accepted for scripts)
    #[arg(long)]
    pub json: bool,
    /// First held-out level seed (must be ≥ 1,000,000: never trained on)
    #[arg(long, default_value_t = EVAL_SEED_START)]
    pub eval_seed_start: u64,
    /// Held-out clips (one level each)
    #[arg(long, default_value_t = 64)]
    pub clips: usize,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also store the figures in the checkpoint's genie.json (under "eval"), with the sampler
    /// that made them (`sampler`: the checkpoint's, changed by --steps, --temperature and
    /// --camera-temperature)
    #[arg(long)]
    pub write: bool,
    /// Also write a contact sheet: for 4 held-out levels, real frames above dreamed ones for
    /// the same 16 actions (with --data: 4 clips, each real over its dream from the first
    /// frames, driven by the recorded keys or else the LAM's actions)
    #[arg(long, value_name = "FILE.png")]
    pub sheet: Option<PathBuf>,
    /// Whole sessions to play (0: none): from a held-out level's first frame, the real game
    /// and the dream get the same human-like keys (each held 3-15 frames); reported under
    /// "sessions"
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub sessions: usize,
    /// Frames per session after the start frame
    #[arg(long, default_value_t = 300, value_name = "F")]
    pub session_frames: usize,
    /// Whole sessions in which no key is pressed (0: none), as a player meets a world who
    /// starts it and watches: the same measures (the player kept, its pose), reported under
    /// "idle"; they play levels from the first held-out one, --session-frames each
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub idle_sessions: usize,
    /// Whole sessions per key in which that one key is held from the first frame to the last
    /// (0: none), as a player meets a world who holds a key for ten seconds: every key on the
    /// same levels from the first held-out one, --session-frames each, fidelity scored over
    /// every 4 frames of the hold; reported under "held", pooled and per key ("per_key")
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub held_sessions: usize,
    /// Also play every session with the latents the LAM infers from the real frames (the
    /// control ceiling over sessions, under "sessions.ceiling", and "held"'s); doubles the
    /// sessions' time
    #[arg(long)]
    pub session_ceiling: bool,
    /// Sessions dreamed at once (all three kinds). 1, the default, dreams each on its own, so
    /// that a change touching one session (a key map that acts in one state) leaves every other
    /// session bit for bit: in a batch, a view step of one session recomputes every session's
    /// caches and moves their later frames. More may be faster on a GPU
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub session_batch: usize,
    /// Also write a sheet of the first 4 sessions: every 10th frame, real row over dreamed row
    #[arg(long, value_name = "FILE.png")]
    pub session_sheet: Option<PathBuf>,
    /// Draw the held-out levels in these looks instead of the checkpoint's game's: `themes`,
    /// `mixed` (the training families) or `held-out` (the families training never sees). The
    /// written figures are the checkpoint's game's, so not with --write
    #[arg(long, conflicts_with_all = ["write", "prompts", "data"])]
    pub looks: Option<genie::game::Looks>,
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Instead of held-out levels, measure on every picture in this folder: reconstruction,
    /// persistence after 16 noop frames and hero fidelity (docs/design.md §8)
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// Evaluate on the clips of a dataset (`genie data`, or video imported by `genie data
    /// import`, e.g. its held-out/ split) with the measures that need no labels: tokenizer PSNR,
    /// rollout PSNR and ΔtPSNR four frames ahead, the LAM's use of its codes
    #[arg(long, value_name = "DIR", conflicts_with = "prompts")]
    pub data: Option<PathBuf>,
    /// With --data on video imported with its actions (`genie data import --actions`): the
    /// player's colour, to find it in real and dreamed frames and measure action fidelity and
    /// its ceiling (up to --clips cases per action)
    #[arg(long, value_name = "R,G,B", requires = "data", value_parser = parse_rgb)]
    pub player_colour: Option<[u8; 3]>,
    /// With --player-colour: how far (L1 over R, G and B) a pixel may be from it
    #[arg(long, default_value_t = 60, requires = "player_colour")]
    pub player_tolerance: u32,
    /// With --prompts: each picture's hero, {"file": [x, y]} in its own pixels [default:
    /// DIR/heroes.json where it exists; pictures it does not name get the automatic guess]
    #[arg(long, value_name = "FILE", requires = "prompts")]
    pub heroes: Option<PathBuf>,
    /// With --prompts: write a contact sheet per picture into this folder (the picture, its
    /// 64×64 prompt with the hero redrawn, the reconstruction; then every other frame of 16
    /// dreamed with noop, left, right and jump held)
    #[arg(long, value_name = "DIR", requires = "prompts")]
    pub prompt_sheets: Option<PathBuf>,
    /// With --prompts: learn each picture first, as `genie play --learn` does, and forget it
    /// before the next
    #[command(flatten)]
    pub learn: super::world::LearnArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CalibrateBy {
    Dreams,
    Lam,
    Keep,
    Facing,
}

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Checkpoint folder whose genie.json gets the map [default: the shipped checkpoints/]
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Held-out game states; from each, every game action is played (and, by dreams, every
    /// latent action dreamed) once
    #[arg(long, default_value_t = 256)]
    pub states: usize,
    /// Calibrate on the labelled clips of a dataset instead (video imported with `genie data
    /// import --actions`): with --player-colour by dreams (each action gets the latent whose
    /// dreams move the player, found by its colour, as the real one went; up to --states cases
    /// per action), else each action gets the latent the LAM most often infers for its
    /// transitions (as `--by lam`, on up to --states clips)
    #[arg(long, value_name = "DIR", conflicts_with = "adapter")]
    pub data: Option<PathBuf>,
    /// With --data: the player's colour (see `genie eval --player-colour`)
    #[arg(long, value_name = "R,G,B", requires = "data", value_parser = parse_rgb)]
    pub player_colour: Option<[u8; 3]>,
    /// With --player-colour: how far (L1 over R, G and B) a pixel may be from it
    #[arg(long, default_value_t = 60, requires = "player_colour")]
    pub player_tolerance: u32,
    /// How a game action picks its latent action: `dreams`, the latent whose dreams move the
    /// player most like the action moves the real one (the action-fidelity measure, on
    /// calibration levels), then the latent for a key's first frame that, followed by that
    /// one, does better still by `--press-margin` (`press_calibration`); `lam`, the latent the
    /// LAM most often infers for the action's transitions (no press latents); `keep`, the
    /// checkpoint's maps as they are (with --adapter: fit the adapter alone); `facing`, the
    /// checkpoint's maps kept and, by dreams, the latents a key gets instead while the player
    /// faces left or right (`facing_calibration`, by --facing-margin; `dreams` finds those too)
    #[arg(long, value_enum, default_value_t = CalibrateBy::Dreams)]
    pub by: CalibrateBy,
    /// By dreams: how much more often (a share of the states, 0.02 = 2 points) a press latent's
    /// dreams must agree than the hold latent's alone before the key gets it; smaller gains
    /// are within the noise of a few hundred states
    #[arg(long, default_value_t = Margins::default().press, value_name = "SHARE")]
    pub press_margin: f64,
    /// By dreams: how much more often a key's latent must agree on the states where the player
    /// faces one way than the key's latent for both ways before it gets that latent there
    /// (`facing_calibration`: a dash goes the way the player faces)
    #[arg(long, default_value_t = Margins::default().facing, value_name = "SHARE")]
    pub facing_margin: f64,
    /// Also fit the action adapter, a key map that depends on the state: from game states of
    /// training levels every latent is dreamed and every key played, and a small network learns
    /// to pick, from the current frame's tokens and the key, the latent whose dream moves the
    /// player as the key moves the real one. Stored as adapter.safetensors; play, dream, eval and
    /// replay then use it
    #[arg(long)]
    pub adapter: bool,
    /// Game states the adapter is fitted on (a fifth of them held out to choose its epoch)
    #[arg(long, default_value_t = 1024, requires = "adapter")]
    pub adapter_states: usize,
    /// Passes over the adapter's transitions
    #[arg(long, default_value_t = 40, requires = "adapter")]
    pub adapter_epochs: usize,
    /// The adapter's size: each token id's embedding width
    #[arg(long, default_value_t = genie::model::AdapterConfig::default().token_dim, requires = "adapter")]
    pub adapter_token_dim: i64,
    /// The adapter's size: its hidden layer's width
    #[arg(long, default_value_t = genie::model::AdapterConfig::default().hidden, requires = "adapter")]
    pub adapter_hidden: i64,
    /// Keep the adapter's transitions in this file (safetensors) as they are dreamed, saved
    /// every 128 states: run the same command again and a stopped collection goes on where it
    /// was, a finished one is fitted again without dreaming (rows of another checkpoint are
    /// refused)
    #[arg(long, value_name = "FILE", requires = "adapter")]
    pub adapter_rows: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.eval_seed_start >= EVAL_SEED_START,
        "--eval-seed-start {}: evaluation levels start at {EVAL_SEED_START} (lower seeds are training levels)",
        args.eval_seed_start
    );
    anyhow::ensure!(args.clips > 0, "--clips must be at least 1");
    anyhow::ensure!(
        args.sessions + args.idle_sessions + args.held_sessions == 0 || args.session_frames > 0,
        "--session-frames must be at least 1"
    );
    anyhow::ensure!(
        args.session_sheet.is_none() || args.sessions > 0,
        "--session-sheet needs sessions (--sessions 1 or more)"
    );
    let dir = args.checkpoint.clone().unwrap_or_else(default_checkpoint);
    let mut genie = load_genie(&dir, device(&args.device, args.threads)?)?;
    if let Some(prompts) = &args.prompts {
        return eval_prompts(&genie, prompts, &args);
    }
    if let Some(looks) = args.looks {
        genie.config.game.looks = looks;
    }
    let mut opts = EvalOptions {
        clips: args.clips,
        eval_seed_start: args.eval_seed_start,
        seed: args.seed,
        ..Default::default()
    };
    opts.sampler = args.sampler.over(genie.config.sampler)?;
    if let Some(data) = &args.data {
        let dataset = genie::data::Dataset::open(data)?;
        let player = args
            .player_colour
            .map(|rgb| genie::eval::video::PlayerColour {
                rgb,
                tolerance: args.player_tolerance,
            });
        let report = genie::eval::video::evaluate_video(&genie, &dataset, &opts, player)?;
        if let Some(path) = &args.sheet {
            let rows = genie::eval::video::video_sheet(&genie, &dataset, 4, &opts)?;
            grid(&rows, 1, 0, [24, 24, 24])
                .save(path)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} (per clip the real frames over the dream from its first {}, driven by {})",
                path.display(),
                opts.prompt_frames,
                if dataset.manifest().labelled {
                    "the recorded keys"
                } else {
                    "the LAM's actions"
                }
            );
        }
        super::print(serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    if let Some(path) = &args.sheet {
        let levels: Vec<u64> = (0..4).map(|i| args.eval_seed_start + i).collect();
        let sheet = contact_sheet(&genie, &levels, &SHEET_ACTIONS, 2, args.seed);
        sheet
            .save(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} (rows: real, dream; actions: {:?})",
            path.display(),
            SHEET_ACTIONS.map(|a| a.name())
        );
    }
    let mut report = evaluate(&genie, &opts);
    let sessions = SessionOptions {
        keys: SessionKeys::Human,
        sessions: args.sessions,
        frames: args.session_frames,
        seed_start: args.eval_seed_start,
        seed: args.seed,
        sampler: opts.sampler,
        batch: args.session_batch.max(1),
        ceiling: args.session_ceiling,
        sheet_sessions: if args.session_sheet.is_some() { 4 } else { 0 },
    };
    if args.idle_sessions > 0 {
        report.idle = Some(measure_sessions(
            &genie,
            &SessionOptions {
                keys: SessionKeys::Idle,
                sessions: args.idle_sessions,
                ceiling: false,
                sheet_sessions: 0,
                ..sessions.clone()
            },
        ));
    }
    if args.held_sessions > 0 {
        report.held = Some(measure_sessions(
            &genie,
            &SessionOptions {
                keys: SessionKeys::Held,
                sessions: args.held_sessions * genie::game::Action::ALL.len(),
                sheet_sessions: 0,
                ..sessions.clone()
            },
        ));
    }
    if args.sessions > 0 {
        let sessions = measure_sessions(&genie, &sessions);
        if let Some(path) = &args.session_sheet {
            grid(&sessions.sheet_rows, 1, 0, [24, 24, 24])
                .save(path)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} (per session a real row over a dreamed row, every {SHEET_EVERY}th frame from 0)",
                path.display()
            );
        }
        report.sessions = Some(sessions);
    }
    let report = serde_json::to_value(&report)?;
    super::print(&report)?;
    if args.write {
        let mut config = read_config(&dir)?;
        config.eval = report;
        config.sampler = opts.sampler;
        write_config(&dir, &config)?;
    }
    Ok(())
}

/// `genie eval --prompts DIR`: the picture measures as one JSON object.
fn eval_prompts(
    genie: &genie::model::Genie,
    prompts: &std::path::Path,
    args: &EvalArgs,
) -> anyhow::Result<()> {
    let heroes_path = args
        .heroes
        .clone()
        .or_else(|| Some(prompts.join("heroes.json")).filter(|p| p.exists()));
    let heroes = match &heroes_path {
        Some(path) => read_heroes(path)?,
        None => Default::default(),
    };
    let sampler = args.sampler.over(genie.config.sampler)?;
    let opts = PromptEvalOptions {
        sampler,
        seed: args.seed,
        heroes,
        sheets: args.prompt_sheets.clone(),
        learn: args.learn.options()?,
    };
    let report = evaluate_prompts(genie, prompts, &opts)?;
    if let Some(dir) = &args.prompt_sheets {
        eprintln!(
            "wrote {} contact sheets to {}",
            report.prompts,
            dir.display()
        );
    }
    super::print(serde_json::to_value(&report)?)?;
    Ok(())
}

pub fn calibrate_cmd(args: CalibrateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.states > 0, "--states must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.press_margin) && (0.0..=1.0).contains(&args.facing_margin),
        "--press-margin {} / --facing-margin {}: shares of the states, from 0 to 1",
        args.press_margin,
        args.facing_margin
    );
    anyhow::ensure!(
        !args.adapter || (args.adapter_states >= 2 && args.adapter_epochs >= 1),
        "--adapter-states must be at least 2 and --adapter-epochs at least 1"
    );
    let dir = args.checkpoint.clone().unwrap_or_else(default_checkpoint);
    let mut genie = load_genie(&dir, device(&args.device, args.threads)?)?;
    anyhow::ensure!(
        genie.config.dynamics.actions == ActionSource::Latent,
        "{}: its dynamics model is driven by the game's actions (trained with --oracle-actions), so \
         keys already map to themselves; calibrating would break that",
        dir.display()
    );
    // The adapter's size is checked before anything is dreamed.
    let adapter_cfg = genie::model::AdapterConfig {
        token_dim: args.adapter_token_dim,
        hidden: args.adapter_hidden,
    };
    if args.adapter {
        adapter_cfg
            .validate(genie.config.adapter_shape())
            .map_err(|e| anyhow::anyhow!("--adapter-token-dim / --adapter-hidden: {e}"))?;
    }
    let (map, press, facing, mut report) = match (&args.data, args.by) {
        (Some(data), _) => {
            let dataset = genie::data::Dataset::open(data)?;
            anyhow::ensure!(
                dataset.manifest().labelled,
                "{}: its clips have no actions (import the video with --actions to calibrate on it)",
                data.display()
            );
            let (map, purity, lam_nmi) =
                genie::eval::calibrate::calibrate_on_data(&genie, &dataset, args.states)?;
            let mut report = serde_json::json!({ "by": "lam", "data": data.display().to_string(), "calibration": map, "share_of_transitions": purity, "lam_nmi": lam_nmi });
            let map = match args.player_colour {
                Some(rgb) => {
                    let opts = EvalOptions {
                        clips: args.states,
                        sampler: genie.config.sampler,
                        ..Default::default()
                    };
                    let player = genie::eval::video::PlayerColour {
                        rgb,
                        tolerance: args.player_tolerance,
                    };
                    let found = genie::eval::video::calibrate_video_by_dreams(
                        &genie, &dataset, &opts, player,
                    )?;
                    report["by"] = "dreams".into();
                    report["calibration_by_lam"] = report["calibration"].take();
                    report["dreams"] = serde_json::to_value(&found)?;
                    report["calibration"] = serde_json::to_value(&found.calibration)?;
                    found.calibration
                }
                None => map,
            };
            (Some(map), None, (None, None), report)
        }
        (None, by) => match by {
            CalibrateBy::Keep => (
                genie.config.calibration.clone(),
                genie.config.press_calibration.clone(),
                (
                    genie.config.facing_calibration.clone(),
                    genie.config.facing_press_calibration.clone(),
                ),
                serde_json::json!({ "by": "keep" }),
            ),
            CalibrateBy::Lam => {
                let (map, purity, lam_nmi) = calibrate(&genie, args.states);
                let report = serde_json::json!({ "by": "lam", "calibration": map, "share_of_transitions": purity, "lam_nmi": lam_nmi });
                (Some(map), None, (None, None), report)
            }
            CalibrateBy::Dreams | CalibrateBy::Facing => {
                let opts = EvalOptions {
                    sampler: genie.config.sampler,
                    ..Default::default()
                };
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "calibrate [{elapsed_precise}] {wide_bar} {pos}/{len} dreams, eta {eta} ({msg})",
                )
                .expect("template"),
            );
                let margins = Margins {
                    press: args.press_margin,
                    facing: args.facing_margin,
                    ..Margins::default()
                };
                let kept = KeyMap::new(&genie.config);
                let keep = (args.by == CalibrateBy::Facing).then_some(&kept);
                let found = calibrate_by_dreams(&genie, &opts, args.states, margins, keep, &bar);
                let mut report = serde_json::to_value(&found).expect("serialises");
                report["by"] = if keep.is_some() { "facing" } else { "dreams" }.into();
                let facing = (!found.facing.is_empty()).then_some(found.facing);
                let facing_press = (!found.facing_press.is_empty()).then_some(found.facing_press);
                (
                    Some(found.map),
                    Some(found.press),
                    (facing, facing_press),
                    report,
                )
            }
        },
    };
    report["checkpoint"] = serde_json::json!(dir.display().to_string());
    let mut config = read_config(&dir)?;
    config.calibration = map;
    config.press_calibration = press;
    (config.facing_calibration, config.facing_press_calibration) = facing;
    if args.adapter {
        // The adapter's own baseline is the calibration just made.
        genie.config.calibration = config.calibration.clone();
        genie.config.press_calibration = config.press_calibration.clone();
        genie.config.facing_calibration = config.facing_calibration.clone();
        genie.config.facing_press_calibration = config.facing_press_calibration.clone();
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "adapter [{elapsed_precise}] {wide_bar} {pos}/{len} epochs ({msg})",
            )
            .expect("template"),
        );
        let rows = args
            .adapter_rows
            .clone()
            .map(|path| genie::eval::adapter::RowsFile { path });
        let fit = genie::eval::adapter::fit(
            &mut genie,
            adapter_cfg,
            args.adapter_states,
            args.adapter_epochs,
            rows.as_ref(),
            &bar,
        )?;
        let adapter = genie.adapter.as_ref().expect("fitted");
        save_network(&adapter.vs, &dir.join(ADAPTER_FILE))?;
        config.adapter = Some(adapter_cfg);
        report["adapter"] = serde_json::to_value(&fit)?;
    }
    write_config(&dir, &config)?;
    super::print(&report)?;
    Ok(())
}

/// `R,G,B`, each 0–255.
fn parse_rgb(text: &str) -> Result<[u8; 3], String> {
    let parts: Vec<Result<u8, _>> = text.split(',').map(|p| p.trim().parse::<u8>()).collect();
    match parts.as_slice() {
        [Ok(r), Ok(g), Ok(b)] => Ok([*r, *g, *b]),
        _ => Err(format!("{text:?}: expected R,G,B, each 0 to 255")),
    }
}
