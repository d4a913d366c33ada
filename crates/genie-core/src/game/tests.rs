//! Unit tests of the game: determinism, physics invariants, the actions' visible effects and
//! the player's unique colour.

use super::level::{Level, ROWS, Tile};
use super::rng::Rng;
use super::theme::{Art, THEMES};
use super::*;

/// A level of flat ground two tiles high, `width` tiles wide, with nothing on it.
fn flat_level(width: usize, theme: usize) -> Level {
    let mut tiles = vec![Tile::Empty; ROWS * width];
    let mut art = vec![Art::Empty; ROWS * width];
    for c in 0..width {
        tiles[6 * width + c] = Tile::Ground;
        tiles[7 * width + c] = Tile::Ground;
        art[6 * width + c] = Art::GroundTop;
        art[7 * width + c] = Art::Ground;
    }
    Level {
        seed: 0,
        difficulty: 0.0,
        theme,
        width,
        tiles,
        art,
        coins: vec![],
        enemies: vec![],
        goal_col: width - 4,
        start: (17, 41),
    }
}

fn screen_pos(g: &Game) -> (f32, f32) {
    find_player(&g.frame()).expect("player visible")
}

fn random_action(rng: &mut Rng, last: Action) -> Action {
    if rng.chance(0.7) {
        last
    } else {
        Action::ALL[rng.weighted(&[1.0, 1.0, 3.0, 1.0, 1.0, 2.0, 1.0, 1.0])]
    }
}

#[test]
fn same_seed_same_frames_different_seeds_differ() {
    let run = |seed: u64| {
        let mut g = Game::new(seed);
        let mut rng = Rng::new(99);
        let mut a = Action::Noop;
        let mut frames = Vec::new();
        for _ in 0..200 {
            a = random_action(&mut rng, a);
            if g.step(a) != Status::Alive {
                g.restart();
            }
            frames.extend(g.frame());
        }
        frames
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn player_never_inside_a_solid_tile() {
    for seed in 0..40 {
        let mut g = Game::with_difficulty(seed, (seed % 5) as f32 / 4.0);
        let mut rng = Rng::new(seed + 1000);
        let mut a = Action::Right;
        for t in 0..3000 {
            a = random_action(&mut rng, a);
            let status = g.step(a);
            assert!(
                !g.player.inside_solid(&g.level),
                "seed {seed} tick {t}: player {:?} inside a solid tile",
                g.player
            );
            if status != Status::Alive {
                g.restart();
            }
        }
    }
}

#[test]
fn falls_under_gravity_when_unsupported() {
    let mut g = Game::from_level(flat_level(16, 0));
    g.player.y = 0;
    g.player.on_ground = false;
    let mut last = g.player.y;
    let mut last_v = 0;
    for _ in 0..10 {
        g.step(Action::Noop);
        assert!(g.player.y > last, "not falling");
        assert!(g.player.vy > last_v, "not accelerating");
        last = g.player.y;
        last_v = g.player.vy;
    }
}

#[test]
fn jump_height_is_bounded_and_lands_again() {
    let mut g = Game::from_level(flat_level(16, 0));
    let ground_y = g.player.y;
    assert!(g.player.on_ground);
    g.step(Action::Jump);
    let mut top = g.player.y;
    for _ in 0..60 {
        g.step(Action::Noop);
        top = top.min(g.player.y);
    }
    let height = (ground_y - top) as f32 / physics::SUB as f32;
    assert!((24.0..=30.0).contains(&height), "jump height {height}");
    assert_eq!(g.player.y, ground_y);
    assert!(g.player.on_ground);
}

#[test]
fn left_right_and_jump_move_the_player_on_screen() {
    let start = || Game::from_level(flat_level(40, 0));
    // Right from a standing start: the player moves right on screen, tick after tick.
    let mut g = start();
    let (x0, y0) = screen_pos(&g);
    let mut prev = x0;
    for t in 0..12 {
        g.step(Action::Right);
        let (x, y) = screen_pos(&g);
        assert!(
            x > prev || (t == 0 && x >= prev),
            "right: tick {t}: {prev} -> {x}"
        );
        assert_eq!(y, y0);
        prev = x;
    }
    assert!(prev - x0 >= 8.0);
    // Left.
    let mut g = start();
    for _ in 0..6 {
        g.step(Action::Left);
    }
    assert!(screen_pos(&g).0 < x0 - 2.0);
    // Jump: up on screen, not sideways.
    let mut g = start();
    for _ in 0..5 {
        g.step(Action::Jump);
    }
    let (x, y) = screen_pos(&g);
    assert!(y < y0 - 10.0, "jump: {y0} -> {y}");
    assert_eq!(x, x0);
    // Right-jump and left-jump move both ways at once.
    let mut g = start();
    for _ in 0..6 {
        g.step(Action::RightJump);
    }
    let (x, y) = screen_pos(&g);
    assert!(x > x0 + 2.0 && y < y0 - 10.0);
}

#[test]
fn camera_holds_still_between_flips_and_keeps_the_player_on_screen() {
    let mut g = Game::configured(flat_level(60, 1), GameConfig::original());
    for action in [Action::Right, Action::Left] {
        let mut flips = 0;
        for _ in 0..150 {
            let (cam, x0) = (g.camera_px(), screen_pos(&g).0);
            g.step(action);
            let x = screen_pos(&g).0;
            assert!((0.0..64.0).contains(&x), "player off screen at x {x}");
            if g.camera_px() == cam {
                // Between flips the frame does not scroll: the player moves on screen.
                let moved = if action == Action::Right {
                    x > x0
                } else {
                    x < x0
                };
                assert!(moved || g.camera_px() == 0 || x0 <= 1.0, "{x0} -> {x}");
            } else {
                assert_eq!((g.camera_px() - cam).abs(), CAMERA_FLIP);
                flips += 1;
            }
        }
        assert!(flips >= 3, "{action:?}: {flips} flips");
    }
}

#[test]
fn the_stepping_camera_moves_one_patch_when_the_player_runs_on_and_never_otherwise() {
    let mut g = Game::from_level(flat_level(60, 1));
    assert_eq!(g.config().camera, Camera::Step);
    for action in [Action::Right, Action::Left] {
        let (mut steps, mut ticks) = (0, 0);
        for _ in 0..150 {
            let (cam, x0) = (g.camera_px(), screen_pos(&g).0);
            g.step(action);
            let x = screen_pos(&g).0;
            assert!((16.0..48.0).contains(&x) || g.camera_px() == 0, "{x}");
            assert_eq!(g.camera_px() % CAMERA_STEP, 0);
            match g.camera_px() - cam {
                0 => {}
                d => {
                    // Only the way the key moves the player, one patch, and the player is
                    // drawn a patch back on screen.
                    assert_eq!(d, if action == Action::Right { 8 } else { -8 });
                    assert!((x - (x0 - d as f32)).abs() < 4.0, "{x0} -> {x}");
                    steps += 1;
                }
            }
            ticks += 1;
        }
        // Running at 1.6 px a tick: a step about every 5 ticks while the level lasts.
        assert!(steps >= 10, "{action:?}: {steps} steps in {ticks} ticks");
    }
    // Standing still, crouching or jumping in place never moves the camera.
    let cam = g.camera_px();
    for action in [Action::Noop, Action::Jump, Action::Down] {
        for _ in 0..30 {
            g.step(action);
            assert_eq!(g.camera_px(), cam, "{action:?}");
        }
    }
}

#[test]
fn a_level_starting_far_right_opens_with_the_stepping_camera_on_the_player() {
    let mut level = flat_level(60, 1);
    level.start.0 = 50 * 4;
    let g = Game::from_level(level);
    let x = screen_pos(&g).0;
    assert!((16.0..48.0).contains(&x), "{x}");
}

#[test]
fn down_crouches_and_drops_through_platforms() {
    let mut g = Game::from_level(flat_level(20, 2));
    let height = |f: &[u8]| player_height_within(f, 0);
    assert_eq!(height(&g.frame()), Some(PLAYER_HEIGHT));
    assert_eq!(player_crouched_within(&g.frame(), 0), Some(false));
    g.step(Action::Down);
    assert_eq!(height(&g.frame()), Some(PLAYER_CROUCH_HEIGHT));
    assert_eq!(player_crouched_within(&g.frame(), 0), Some(true));
    // A stray pixel of the player's colour away from it changes nothing; no player, no height.
    let mut f = g.frame();
    f[(2 * FRAME_SIZE + 60) * 3..][..3].copy_from_slice(&PLAYER_COLOR);
    assert_eq!(height(&f), Some(PLAYER_CROUCH_HEIGHT));
    assert_eq!(player_height_within(&vec![0; FRAME_BYTES], 0), None);

    // A platform two tiles above the ground: jump onto it, then Down drops through.
    let mut level = flat_level(20, 2);
    for c in 1..5 {
        level.tiles[3 * 20 + c] = Tile::Platform;
        level.art[3 * 20 + c] = Art::Platform;
    }
    let mut g = Game::from_level(level);
    let ground_y = g.player.y;
    g.step(Action::Jump);
    for _ in 0..40 {
        g.step(Action::Noop);
    }
    assert!(
        g.player.on_ground && g.player.y < ground_y,
        "landed on the platform"
    );
    g.step(Action::Down);
    for _ in 0..30 {
        g.step(Action::Noop);
    }
    assert_eq!(g.player.y, ground_y, "dropped through");
}

#[test]
fn dash_is_faster_than_running_and_has_a_cooldown() {
    let run = |a: Action| {
        let mut g = Game::from_level(flat_level(40, 0));
        for _ in 0..8 {
            g.step(a);
        }
        g.player.x
    };
    let start = Game::from_level(flat_level(40, 0)).player.x;
    assert!(run(Action::Dash) - start > 2 * (run(Action::Right) - start));
    let mut g = Game::from_level(flat_level(40, 0));
    g.step(Action::Dash);
    for _ in 0..10 {
        g.step(Action::Noop);
    }
    let x = g.player.x;
    g.step(Action::Dash);
    assert!(
        g.player.x - x < physics::DASH_SPEED,
        "dash again before the cooldown"
    );
}

#[test]
fn player_colour_only_on_the_player_in_every_theme() {
    let mut covered = [false; THEMES];
    for seed in 0..200u64 {
        let mut g = Game::new(seed);
        if covered[g.theme()] {
            continue;
        }
        covered[g.theme()] = true;
        let mut rng = Rng::new(seed);
        let mut a = Action::Right;
        for t in 0..400 {
            a = random_action(&mut rng, a);
            if g.step(a) != Status::Alive {
                g.restart();
            }
            let frame = g.frame();
            // Only where the whole sprite is on screen: a clipped one has another centroid.
            let top = g.player.y / physics::SUB;
            if (0..FRAME_SIZE as i32 - 8).contains(&top) {
                let (x, y) = find_player(&frame).expect("player found");
                let px = (g.player.x / physics::SUB - g.camera_px()) as f32;
                assert!(
                    (x - px - 2.5).abs() < 1.5,
                    "seed {seed} tick {t}: x {x} vs {px}"
                );
                assert!((y - (g.player.y / physics::SUB) as f32).abs() < 6.0);
            }
            let mut hidden = g.clone();
            hidden.player.y = 1000 * physics::SUB;
            assert_eq!(find_player(&hidden.frame()), None, "seed {seed} tick {t}");
        }
    }
    assert!(covered.iter().all(|&c| c), "every theme visited");
}

#[test]
fn actions_parse_and_print() {
    for a in Action::ALL {
        assert_eq!(a.name().parse::<Action>(), Ok(a));
        assert_eq!(a.to_string(), a.name());
        assert_eq!(Action::from_u8(a as u8), Some(a));
    }
    assert_eq!("Left+Jump".parse::<Action>(), Ok(Action::LeftJump));
    assert_eq!("RIGHT+jump".parse::<Action>(), Ok(Action::RightJump));
    assert_eq!(Action::from_u8(8), None);
    let err = "fly".parse::<Action>().unwrap_err().to_string();
    assert!(err.contains("fly") && err.contains("right_jump"), "{err}");
}

#[test]
fn stomping_kills_an_enemy_and_walking_into_one_ends_the_life() {
    let mut level = flat_level(30, 0);
    level.enemies.push(level::EnemySpawn {
        x: 40,
        y: 42,
        dir: -1,
    });
    let mut g = Game::from_level(level.clone());
    let mut status = Status::Alive;
    for _ in 0..60 {
        status = g.step(Action::Right);
        if status != Status::Alive {
            break;
        }
    }
    assert_eq!(status, Status::Died);
    // Drop the player onto it from above.
    let mut g = Game::from_level(level);
    g.player.x = g.enemies[0].x;
    g.player.y = 20 * physics::SUB;
    g.player.on_ground = false;
    for _ in 0..10 {
        assert_eq!(g.step(Action::Noop), Status::Alive);
    }
    assert!(!g.enemies[0].alive);
}

#[test]
fn pits_kill_and_the_goal_wins() {
    let mut level = flat_level(30, 0);
    for r in 6..8 {
        level.tiles[r * 30 + 5] = Tile::Empty;
        level.tiles[r * 30 + 6] = Tile::Empty;
    }
    let mut g = Game::from_level(level);
    let mut status = Status::Alive;
    for _ in 0..200 {
        status = g.step(Action::Right);
        if status != Status::Alive {
            break;
        }
    }
    assert_eq!(status, Status::Died);
    assert_eq!(
        g.step(Action::Right),
        Status::Died,
        "nothing moves after the end"
    );
    g.restart();
    assert_eq!((g.status(), g.tick()), (Status::Alive, 0));

    let mut g = Game::from_level(flat_level(30, 0));
    let mut status = Status::Alive;
    for _ in 0..400 {
        status = g.step(Action::Right);
        if status != Status::Alive {
            break;
        }
    }
    assert_eq!(status, Status::Won);
}

#[test]
fn every_action_has_a_visible_effect() {
    let after = |a: Action| {
        let mut g = Game::from_level(flat_level(40, 3));
        for _ in 0..30 {
            g.step(Action::Right);
        }
        for _ in 0..30 {
            g.step(Action::Noop);
        }
        for _ in 0..4 {
            g.step(a);
        }
        g.frame()
    };
    let noop = after(Action::Noop);
    for a in Action::ALL.into_iter().skip(1) {
        assert_ne!(after(a), noop, "{a} looks like noop");
    }
}

/// States met in play: `levels` levels of `config`'s game under random keys, one state every 7
/// ticks for 420 ticks, a lost life restarted.
fn states_in_play(config: GameConfig, levels: u64) -> Vec<Game> {
    let mut rng = Rng::new(7);
    let mut states = Vec::new();
    for seed in 0..levels {
        let mut g = Game::with_config(seed, config);
        let mut action = Action::Right;
        for t in 0..420 {
            action = random_action(&mut rng, action);
            if g.step(action) != Status::Alive {
                g.restart();
            }
            if t % 7 == 6 {
                states.push(g.clone());
            }
        }
    }
    states
}

/// Per action, the share of `states` whose next frame under the action is not `noop`'s; and
/// the bits of the key (of 3, the eight equally likely) that the next frame tells, on average.
fn shown_share(states: &[Game]) -> ([f64; 8], f64) {
    let mut shown = [0usize; 8];
    let mut bits = 0.0;
    for state in states {
        let next: Vec<Vec<u8>> = Action::ALL
            .iter()
            .map(|&a| {
                let mut g = state.clone();
                g.step(a);
                g.frame()
            })
            .collect();
        for a in Action::ALL {
            shown[a as usize] += usize::from(next[a as usize] != next[0]);
        }
        // A key is told from the others that give the same frame by nothing: H(key | frame).
        let unknown: f64 = next
            .iter()
            .map(|f| (next.iter().filter(|g| *g == f).count() as f64).log2() / 8.0)
            .sum();
        bits += 3.0 - unknown;
    }
    let n = states.len() as f64;
    (shown.map(|k| k as f64 / n), bits / n)
}

#[test]
fn responsive_controls_show_every_key_in_the_next_frame() {
    let classic = GameConfig::default();
    let responsive = GameConfig {
        controls: Controls::Responsive,
        ..classic
    };
    let (before, bits_before) = shown_share(&states_in_play(classic, 24));
    let (after, bits_after) = shown_share(&states_in_play(responsive, 24));
    eprintln!(
        "bits of the key the next frame tells: {bits_after:.2} of 3 (classic {bits_before:.2})"
    );
    for a in Action::ALL.into_iter().skip(1) {
        eprintln!(
            "{a:>10}: next frame not noop's in {:.3} of states (classic {:.3})",
            after[a as usize], before[a as usize]
        );
    }
    assert!(
        bits_after > bits_before + 0.3,
        "{bits_after} against {bits_before}"
    );
    // Classic: jump does nothing in the air, dash nothing while it cools down.
    assert!(before[Action::Jump as usize] < 0.8, "{before:?}");
    assert!(before[Action::Dash as usize] < 0.8, "{before:?}");
    // Responsive: every key shows in the next frame.
    for a in Action::ALL.into_iter().skip(1) {
        assert!(after[a as usize] >= 0.9, "{a}: {after:?}");
    }
}

#[test]
fn responsive_jump_is_higher_held_and_glides_down() {
    let config = GameConfig {
        controls: Controls::Responsive,
        ..GameConfig::default()
    };
    // Hold jump for `held` ticks, then let go: the highest the player gets in 60 ticks, in
    // pixels, and whether it is back on the ground by then.
    let apex = |config: GameConfig, held: usize| {
        let mut g = Game::configured(flat_level(20, 1), config);
        let ground = g.player.y;
        let mut top = ground;
        for t in 0..60 {
            g.step(if t < held { Action::Jump } else { Action::Noop });
            top = top.min(g.player.y);
        }
        ((ground - top) / SUB, g.player.y == ground)
    };
    let (tap, full) = (apex(config, 1), apex(config, 20));
    assert!(tap.1 && full.1, "landed again");
    assert!(
        tap.0 <= 8 && full.0 >= 24,
        "a tap {} px, held {} px",
        tap.0,
        full.0
    );
    // Classic: the same height either way.
    let classic = GameConfig::default();
    assert_eq!(apex(classic, 1).0, apex(classic, 60).0);

    // From the same height, held jump falls at a pixel a tick; noop faster.
    let fall = |a: Action| {
        let mut g = Game::configured(flat_level(20, 1), config);
        for _ in 0..12 {
            g.step(Action::Jump);
        }
        let y = g.player.y;
        for _ in 0..10 {
            g.step(a);
        }
        g.player.y - y
    };
    let (glide, drop) = (fall(Action::Jump), fall(Action::Noop));
    assert!(glide <= 10 * physics::GLIDE_FALL, "{glide}");
    assert!(drop >= glide + 6 * SUB, "{drop} against {glide}");
}

#[test]
fn responsive_dash_lasts_while_held_and_runs_while_cooling_down() {
    let config = GameConfig {
        controls: Controls::Responsive,
        ..GameConfig::default()
    };
    let mut g = Game::configured(flat_level(40, 0), config);
    g.step(Action::Dash);
    let x = g.player.x;
    g.step(Action::Noop);
    assert_eq!(g.player.x, x, "letting go ends the dash");
    let x = g.player.x;
    g.step(Action::Dash);
    assert_eq!(g.player.x - x, physics::RUN_MAX, "cooling down, dash runs");
    for _ in 0..physics::DASH_COOLDOWN {
        g.step(Action::Noop);
    }
    let x = g.player.x;
    g.step(Action::Dash);
    assert_eq!(g.player.x - x, physics::DASH_SPEED, "ready again");
}

#[test]
fn the_keys_alone_tell_the_facing_and_the_dash_and_what_the_player_does() {
    for controls in [Controls::Classic, Controls::Responsive] {
        let config = GameConfig {
            controls,
            ..GameConfig::default()
        };
        let mut rng = Rng::new(11);
        let (mut dashes, mut stood_in) = (0, 0);
        for seed in 0..12 {
            let mut g = Game::with_config(seed, config);
            let mut keys = KeyState::default();
            let mut key = Action::Right;
            for _ in 0..600 {
                key = random_action(&mut rng, key);
                // Under the action the keys say the player carries out, from the same state, the
                // player moves as under the key itself (but for a jump or a crouch pressed
                // during a dash, which the dash overrides except on its last tick).
                let mut done_game = g.clone();
                let before = keys;
                let done = keys.act(key, controls);
                let alive = g.step(key) == Status::Alive;
                done_game.step(done);
                let (p, q) = (g.player(), done_game.player());
                assert_eq!(
                    (keys.facing as i32 == 1, keys.dash_ticks, keys.dash_cooldown),
                    (p.facing < 0, p.dash_ticks, p.dash_cooldown),
                    "{controls:?}, level {seed}: {key} from {before:?}"
                );
                if !(done == Action::Dash && key != Action::Dash) {
                    assert_eq!((p.x, p.vx), (q.x, q.vx), "{controls:?}: {key} as {done}");
                }
                dashes += usize::from(done == Action::Dash);
                stood_in += usize::from(key == Action::Dash && done != Action::Dash);
                if !alive {
                    g.restart();
                    keys = KeyState::default();
                }
            }
        }
        assert!(dashes > 100 && stood_in > 100, "{dashes} {stood_in}");
    }
}
