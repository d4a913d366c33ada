//! `genie play` and `genie dream`: the live player and its headless twin, on the same engine.

use std::path::PathBuf;

use anyhow::Context;
use genie::app::input::Bindings;
use genie::app::window::{self, PlayerConfig};
use genie::session::dream::DreamWorld;
use genie::session::engine::{Command, Engine};
use genie::session::game_world::GameWorld;
use genie::session::hero::HeroChoice;
use genie::session::play::PlaySettings;
use genie::session::prompt::Prompt;
use genie::session::record::{RecordedSampler, Recorder, StartState};
use genie::session::script::parse_actions;
use genie::session::{Control, World};

use super::world::{LoadedInfo, ModelArgs, default_prompt, load_prompt};

/// Where a world starts: a picture, a clip or a level of the platformer.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Prompt: an image (PNG, JPEG, GIF, WebP, BMP), an animated GIF or a recording folder to
    /// continue [default: assets/prompt.png]
    #[arg(long, value_name = "IMAGE", conflicts_with = "level")]
    pub prompt: Option<PathBuf>,
    /// The prompt's hero, redrawn as the game's player before the world starts: X,Y (its
    /// place in the picture's own pixels), auto (the game's player if the picture shows it,
    /// else the most hero-like figure) or none [default: auto; none for a world learned from
    /// another game's video, whose hero is drawn as that game draws it]
    #[arg(long, value_name = "X,Y|auto|none", conflicts_with = "level")]
    pub hero: Option<HeroChoice>,
    /// Start from a level of the platformer; the real game runs beside the dream with the same
    /// inputs
    #[arg(long, value_name = "SEED")]
    pub level: Option<u64>,
    #[command(flatten)]
    pub learn: super::world::LearnArgs,
}

#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub start: StartArgs,
    /// Record the session into this folder
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Input bindings file (JSON) [default: assets/bindings.json]
    #[arg(long, value_name = "FILE")]
    pub bindings: Option<PathBuf>,
    /// Generated frames per second in real-time mode
    #[arg(long, default_value_t = 15.0)]
    pub fps: f64,
    /// Start in step-per-key-press mode (P toggles)
    #[arg(long)]
    pub step_mode: bool,
    /// For tests: print a line once this many frames were shown
    #[arg(long, hide = true)]
    pub announce_after: Option<u64>,
    /// For tests: hold this game action from the start
    #[arg(long, hide = true)]
    pub hold: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DreamArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub start: StartArgs,
    /// Actions, one per frame: "right*8,jump,right*4" (game action names, or latent:N), or
    /// human:SEED*FRAMES for the human-like key script of `genie eval`'s session SEED
    #[arg(long)]
    pub actions: String,
    /// Output animation: a GIF, or a lossless animated PNG when FILE ends in .png or .apng
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also record the dream as a session folder (replayable, exportable)
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Pixel scale of the animation
    #[arg(long, default_value_t = 4)]
    pub scale: u32,
}

/// The prompt and, with `--level`, the real game to run beside the dream.
fn prompt_and_game(
    start: &StartArgs,
    info: &LoadedInfo,
) -> anyhow::Result<(Prompt, Option<GameWorld>)> {
    if let Some(seed) = start.level {
        let game = GameWorld::new(seed, info.game);
        return Ok((Prompt::from_frame(game.game().frame()), Some(game)));
    }
    let path = start.prompt.clone().unwrap_or_else(default_prompt);
    Ok((
        load_prompt(&path, info.context, hero_choice(start, info))?,
        None,
    ))
}

/// `--learn`: the dream learns each picture it starts from, this one first.
fn learn_pictures(
    dream: &mut DreamWorld,
    start: &StartArgs,
    prompt: &Prompt,
) -> anyhow::Result<()> {
    let opts = start.learn.options()?;
    if let Some(opts) = opts
        && prompt.frames.len() == 1
    {
        eprintln!(
            "genie: learning the picture ({} + {} steps; a minute or two on two CPU cores)",
            opts.decoder_steps, opts.dynamics_steps
        );
    }
    dream.learn_pictures(opts);
    Ok(())
}

/// `--hero`, or what suits the checkpoint: the platformer's worlds redraw the hero they guess,
/// a world learned from another game's video keeps the picture as it is.
fn hero_choice(start: &StartArgs, info: &LoadedInfo) -> HeroChoice {
    start.hero.unwrap_or(if info.from_video {
        HeroChoice::None
    } else {
        HeroChoice::Auto
    })
}

fn start_state(
    info: &LoadedInfo,
    model: &ModelArgs,
    start: &StartArgs,
) -> anyhow::Result<StartState> {
    Ok(StartState {
        version: 1,
        world: "dream".into(),
        checkpoint: Some(info.dir.display().to_string()),
        checkpoint_hash: Some(info.hash.clone()),
        sampler: Some(RecordedSampler::of(&info.sampler)),
        seed: model.seed,
        level_seed: start.level,
        prompt_frames: 0,
        threads: Some(tch::get_num_threads().max(1) as usize),
        learn: start.learn.options()?,
    })
}

pub fn play(args: PlayArgs) -> anyhow::Result<()> {
    window::check_display()?;
    let (mut dream, info) = args.model.dream()?;
    let (prompt, game) = prompt_and_game(&args.start, &info)?;
    learn_pictures(&mut dream, &args.start, &prompt)?;
    let bindings = match &args.bindings {
        Some(path) => Bindings::load(path)?,
        None => Bindings::default(),
    };
    let scripted_action = args
        .hold
        .as_deref()
        .map(|name| name.parse::<genie::game::Action>().context("--hold"))
        .transpose()?;
    let session = PlaySettings {
        prompt,
        prompt_frames: info.context,
        // A place pointed at belongs to the first picture; dropped ones get the guess.
        drop_hero: match hero_choice(&args.start, &info) {
            HeroChoice::None => HeroChoice::None,
            _ => HeroChoice::Auto,
        },
        target_fps: args.fps.max(0.1),
        step_mode: args.step_mode,
        record: args.record.clone(),
        start_state: start_state(&info, &args.model, &args.start)?,
        sampler: Some(info.sampler),
        latent_meanings: info.meanings.clone(),
        learned_latents: info.learned_latents,
        announce_after: args.announce_after,
    };
    let config = PlayerConfig {
        bindings,
        session,
        scripted_action,
        launched: window::process_start(),
    };
    window::run(
        config,
        Box::new(dream),
        game.map(|g| Box::new(g) as Box<dyn World>),
    )?;
    Ok(())
}

pub fn dream(args: DreamArgs) -> anyhow::Result<()> {
    let controls = parse_actions(&args.actions)?;
    let (mut dream, info) = args.model.dream()?;
    let latents = info.meanings.len();
    if let Some(latent) = controls.iter().find_map(|c| match *c {
        Control::Latent(l) if usize::from(l) >= latents => Some(l),
        _ => None,
    }) {
        anyhow::bail!(
            "--actions: latent:{latent}, but the checkpoint {} has {latents} latent actions \
             (0..{latents})",
            info.dir.display(),
        );
    }
    let (prompt, game) = prompt_and_game(&args.start, &info)?;
    learn_pictures(&mut dream, &args.start, &prompt)?;
    let mut recorder = match &args.record {
        Some(dir) => Some(Recorder::create(
            dir,
            &start_state(&info, &args.model, &args.start)?,
            &prompt.frames,
        )?),
        None => None,
    };
    let mut engines = vec![Engine::spawn(Box::new(dream))];
    engines.extend(game.map(|g| Engine::spawn(Box::new(g))));
    let mut rows: Vec<Vec<Vec<u8>>> = Vec::new(); // per frame, one image per engine
    let commands =
        std::iter::once(Command::Reset(prompt)).chain(controls.iter().map(|&c| Command::Step(c)));
    let bar = indicatif::ProgressBar::new(controls.len() as u64 + 1);
    for command in commands {
        let mut row = Vec::new();
        for (i, engine) in engines.iter_mut().enumerate() {
            // A raw latent action has no meaning for the real game: it stands still.
            let command = match (&command, i) {
                (Command::Step(Control::Latent(_)), 1) => Command::Step(Control::Game(0)),
                _ => command.clone(),
            };
            engine.send(command);
            let out = engine.recv()?;
            if i == 0
                && let Some(kind) = out.event()
                && let Some(stopped) = Recorder::push_or_stop(&mut recorder, kind, &out.frame)
            {
                // The dream and its GIF go on without the recording.
                bar.suspend(|| eprintln!("genie: {stopped}"));
            }
            row.push(out.frame);
        }
        rows.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    genie::session::export::write_animation(&args.out, &rows, args.scale, 8)?;
    eprintln!("wrote {} frames to {}", rows.len(), args.out.display());
    Ok(())
}
