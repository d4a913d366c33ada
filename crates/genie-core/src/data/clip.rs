//! Clips: short recordings of scripted play, and an endless in-memory stream of them.
//!
//! A clip starts at a random point of play (the scripted player runs 0..=[`MAX_WARMUP`] ticks
//! first, restarting the level on death or victory), so clips cover whole levels. Then for
//! `t` in `0..L`: `frames[t]` is rendered, the player picks `actions[t]`, and the game steps
//! with it, so **`actions[t]` is the action applied to the state shown in `frames[t]` that
//! produced `frames[t + 1]`**. `actions[L - 1]` is the action taken after the last recorded
//! frame, kept so that both arrays have length `L`. When a step ends a life the level restarts
//! at once, so the frame after a death or a win shows the level start.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam::channel::{Receiver, Sender, bounded};

use super::player::{DEFAULT_STICKINESS, PlayStyle, ScriptedPlayer};
use crate::game::level::Level;
use crate::game::rng::Rng;
use crate::game::{DEFAULT_DIFFICULTY, FRAME_BYTES, Game, GameConfig, Status};

/// Most ticks of play before recording starts. Deaths send the player back to the start, so
/// with 300, half of all clips began in the first fifth of a level and almost none in its last
/// third; with 1,500 every tenth of a level up to the goal gets at least 5 % of clip starts
/// (measured over 2,000 clips).
pub const MAX_WARMUP: u64 = 1500;

/// One recorded clip of `L` frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    pub level_seed: u64,
    /// `L * FRAME_BYTES` bytes: `L` frames of 64×64 RGB.
    pub frames: Vec<u8>,
    /// `L` action ids (`Action as u8`).
    pub actions: Vec<u8>,
}

impl Clip {
    /// Number of frames `L`.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Frame `t`.
    pub fn frame(&self, t: usize) -> &[u8] {
        &self.frames[t * FRAME_BYTES..(t + 1) * FRAME_BYTES]
    }
}

/// A clip of `len` frames of level `level_seed` at the default difficulty, played by a
/// scripted player seeded with `player_seed`.
pub fn generate_clip(level_seed: u64, len: usize, player_seed: u64) -> Clip {
    generate_clip_played(
        level_seed,
        DEFAULT_DIFFICULTY,
        len,
        player_seed,
        PlayStyle::default(),
        GameConfig::default(),
    )
}

/// A clip at `difficulty`, the scripted player playing in `style` while recording (the
/// warm-up, which only places the clip in the level, keeps the default style). The lower the
/// stickiness, the less of an action can be guessed from the frames before it, so the more a
/// model must read it from the frame after; the odds set how often each action is drawn.
/// `game` is the version of the platformer played (camera, looks).
pub fn generate_clip_played(
    level_seed: u64,
    difficulty: f32,
    len: usize,
    player_seed: u64,
    style: PlayStyle,
    game: GameConfig,
) -> Clip {
    let (mut game, mut player) = warmed_up(level_seed, difficulty, player_seed, game);
    player.set_style(style);
    let mut frames = vec![0; len * FRAME_BYTES];
    let mut actions = Vec::with_capacity(len);
    for frame in frames.chunks_exact_mut(FRAME_BYTES) {
        game.render(frame);
        let a = player.act(&game);
        actions.push(a as u8);
        if game.step(a) != Status::Alive {
            game.restart();
        }
    }
    Clip {
        level_seed,
        frames,
        actions,
    }
}

/// The game and player at the moment recording starts.
fn warmed_up(
    level_seed: u64,
    difficulty: f32,
    player_seed: u64,
    config: GameConfig,
) -> (Game, ScriptedPlayer) {
    let mut game = Game::configured(Level::generate(level_seed, difficulty), config);
    let mut player = ScriptedPlayer::new(player_seed, DEFAULT_STICKINESS);
    let warmup = Rng::derive(player_seed, 1).below(MAX_WARMUP + 1);
    for _ in 0..warmup {
        let a = player.act(&game);
        if game.step(a) != Status::Alive {
            game.restart();
        }
    }
    (game, player)
}

/// Endless in-memory clips for training: worker threads generate clips from level seeds in
/// `levels` into bounded crossbeam channels.
///
/// Clip `k` of a stream depends only on `(seed, k)` (its level is drawn uniformly from
/// `levels`), and worker `w` makes clips `w, w + workers, …` into its own channel, read in
/// turn; so a stream yields the same clips in the same order whatever the number of workers.
/// Dropping the stream stops and joins the workers.
///
/// A data-parallel rank reads its [`Share`] of the stream: in batches of `batch`, the rows that
/// are its own of each step's `batch × world` clips, so that the ranks together see the clips
/// one process at batch `batch × world` would.
pub struct ClipStream {
    receivers: Vec<Receiver<Clip>>,
    next: AtomicUsize,
    workers: Vec<JoinHandle<()>>,
}

impl ClipStream {
    /// Starts `workers` threads (at least one). Panics if `levels` is empty or `clip_len` is 0.
    pub fn new(levels: Range<u64>, clip_len: usize, seed: u64, workers: usize) -> ClipStream {
        let (style, game) = (PlayStyle::default(), GameConfig::default());
        ClipStream::with_style(levels, clip_len, seed, workers, style, game)
    }

    /// [`ClipStream::new`] with clips recorded in a given play style and version of the game
    /// (see [`generate_clip_played`]).
    pub fn with_style(
        levels: Range<u64>,
        clip_len: usize,
        seed: u64,
        workers: usize,
        style: PlayStyle,
        game: GameConfig,
    ) -> ClipStream {
        let whole = Share {
            rank: 0,
            world: 1,
            batch: 1,
        };
        ClipStream::shared(levels, clip_len, seed, workers, style, game, whole)
    }

    /// [`ClipStream::with_style`] for one rank's `share` of the clips.
    pub fn shared(
        levels: Range<u64>,
        clip_len: usize,
        seed: u64,
        workers: usize,
        style: PlayStyle,
        game: GameConfig,
        share: Share,
    ) -> ClipStream {
        assert!(!levels.is_empty(), "ClipStream: empty level range");
        assert!(clip_len > 0, "ClipStream: clip length 0");
        let n = workers.max(1);
        let mut receivers = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for w in 0..n {
            let (tx, rx) = bounded(4);
            receivers.push(rx);
            let levels = levels.clone();
            let handle = std::thread::Builder::new()
                .name(format!("clip-stream-{w}"))
                .spawn(move || produce(tx, levels, clip_len, seed, (w, n, share), (style, game)))
                .expect("spawn a clip stream worker");
            handles.push(handle);
        }
        ClipStream {
            receivers,
            next: AtomicUsize::new(0),
            workers: handles,
        }
    }

    /// The next clip (blocks until one is ready).
    pub fn next_clip(&self) -> Clip {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        self.receivers[k % self.receivers.len()]
            .recv()
            .expect("clip stream worker stopped")
    }

    /// `batch` clips stacked: frames `[B, L, 64, 64, 3]` and actions `[B, L]`, row-major.
    pub fn next_batch(&self, batch: usize) -> (Vec<u8>, Vec<u8>) {
        let mut frames = Vec::new();
        let mut actions = Vec::new();
        for _ in 0..batch {
            let clip = self.next_clip();
            frames.extend_from_slice(&clip.frames);
            actions.extend_from_slice(&clip.actions);
        }
        (frames, actions)
    }
}

fn produce(
    tx: Sender<Clip>,
    levels: Range<u64>,
    len: usize,
    seed: u64,
    (w, n, share): (usize, usize, Share),
    (style, game): (PlayStyle, GameConfig),
) {
    for k in (w..).step_by(n) {
        let mut rng = Rng::derive(seed, share.clip(k) as u64);
        let level = levels.start + rng.below(levels.end - levels.start);
        let player_seed = rng.next_u64();
        let clip = generate_clip_played(level, DEFAULT_DIFFICULTY, len, player_seed, style, game);
        if tx.send(clip).is_err() {
            return;
        }
    }
}

/// A data-parallel rank's share of a clip stream: rank `rank` of `world`, at `batch` clips a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub rank: usize,
    pub world: usize,
    pub batch: usize,
}

impl Share {
    /// The stream's clip that is this share's `k`-th.
    pub fn clip(&self, k: usize) -> usize {
        let b = self.batch.max(1);
        (k / b) * b * self.world + self.rank * b + k % b
    }
}

impl Drop for ClipStream {
    fn drop(&mut self) {
        // Disconnect first so that workers blocked on a full channel wake and stop.
        self.receivers.clear();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for ClipStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipStream")
            .field("workers", &self.workers.len())
            .field("served", &self.next.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::Action;

    #[test]
    fn two_ranks_shares_at_batch_two_are_one_rank_at_batch_four() {
        let stream = |share| {
            let (style, game) = (PlayStyle::default(), GameConfig::default());
            ClipStream::shared(0..50, 2, 9, 2, style, game, share)
        };
        let whole = stream(Share {
            rank: 0,
            world: 1,
            batch: 4,
        });
        let ranks = [0, 1].map(|rank| {
            stream(Share {
                rank,
                world: 2,
                batch: 2,
            })
        });
        for _ in 0..3 {
            let (step, _) = whole.next_batch(4);
            let (first, _) = ranks[0].next_batch(2);
            let (second, _) = ranks[1].next_batch(2);
            assert_eq!(step, [first, second].concat());
        }
    }

    #[test]
    fn clips_are_deterministic_and_aligned() {
        let a = generate_clip(12, 24, 7);
        assert_eq!(a, generate_clip(12, 24, 7));
        assert_ne!(a.frames, generate_clip(12, 24, 8).frames);
        assert_eq!((a.len(), a.frames.len()), (24, 24 * FRAME_BYTES));

        // From the state of frame t, the recorded actions[t] gives frame t + 1.
        let (mut game, _) = warmed_up(12, DEFAULT_DIFFICULTY, 7, GameConfig::default());
        for t in 0..a.len() {
            assert_eq!(game.frame(), a.frame(t), "frame {t}");
            let act = Action::from_u8(a.actions[t]).unwrap();
            if game.step(act) != Status::Alive {
                game.restart();
            }
        }
    }

    #[test]
    fn clips_start_all_over_the_level() {
        let mut later_half = 0;
        for i in 0..200 {
            let (game, _) = warmed_up(i, DEFAULT_DIFFICULTY, i + 1, GameConfig::default());
            let x = game.player().x / crate::game::physics::SUB;
            later_half += usize::from(x > game.level().width_px() / 2);
        }
        assert!(
            later_half >= 50,
            "{later_half} of 200 clips start past mid-level"
        );
    }

    #[test]
    fn lower_stickiness_changes_action_more_often_in_the_same_places() {
        let changes = |stickiness: f32| -> usize {
            (0..20)
                .map(|i| {
                    let style = PlayStyle::with_stickiness(stickiness);
                    let c = generate_clip_played(
                        i,
                        DEFAULT_DIFFICULTY,
                        40,
                        i,
                        style,
                        GameConfig::default(),
                    );
                    c.actions.windows(2).filter(|w| w[0] != w[1]).count()
                })
                .sum()
        };
        let (loose, sticky) = (changes(0.0), changes(DEFAULT_STICKINESS));
        assert!(loose > 2 * sticky, "{loose} vs {sticky} action changes");
        // The warm-up, which places the clip, is the same whatever the stickiness.
        let a = generate_clip_played(
            5,
            DEFAULT_DIFFICULTY,
            3,
            9,
            PlayStyle::with_stickiness(0.0),
            GameConfig::default(),
        );
        assert_eq!(a.frame(0), generate_clip(5, 3, 9).frame(0));
    }

    #[test]
    fn stream_is_the_same_whatever_the_worker_count() {
        let one = ClipStream::new(0..100, 4, 3, 1);
        let three = ClipStream::new(0..100, 4, 3, 3);
        for _ in 0..5 {
            let (a, b) = (one.next_clip(), three.next_clip());
            assert!(a.level_seed < 100);
            assert_eq!(a, b);
        }
        let (frames, actions) = three.next_batch(2);
        assert_eq!((frames.len(), actions.len()), (2 * 4 * FRAME_BYTES, 8));
    }
}
