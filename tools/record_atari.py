#!/usr/bin/env python3
"""Records gameplay video of an Atari game for `genie data import` (issue 35: a world learned
from another game's video, with no labels).

The Arcade Learning Environment (ale-py, which ships the ROMs) plays the game with a scripted,
human-like policy: one of eight actions held for 3–15 frames (`--hold`), weighted towards
running and jumping on. Every 4th emulator frame is kept (15 frames/s). Each game is written as its own
video (`NAME_NNN.mp4`, lossless H.264 in RGB so that small sprites keep their colours) and, kept
aside, the action of each of its frames (`NAME_NNN.actions.json`): genie trains without them and
uses them only to measure the world afterwards (`genie data import --actions`).

The eight actions are stored under genie's own action names, so that calibration and action
fidelity read them as they read the platformer's:

    genie      noop  left  right  jump  left_jump  right_jump  down  dash
    Atari      NOOP  LEFT  RIGHT  FIRE  LEFTFIRE   RIGHTFIRE   DOWN  UP

(in Pitfall! FIRE jumps, DOWN and UP climb ladders; `dash` stands for UP.)

Run from the repository root; ale-py, numpy and ffmpeg are needed here only, not by genie:
    python3 -m venv /tmp/alevenv && /tmp/alevenv/bin/pip install ale-py numpy
    /tmp/alevenv/bin/python tools/record_atari.py --game pitfall --games 32 --frames 1500 \
        --out data/atari/pitfall
Deterministic for a given ale-py (the policy and the emulator are seeded per game).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from ale_py import Action, ALEInterface, LoggerMode, roms

NAMES = ["noop", "left", "right", "jump", "left_jump", "right_jump", "down", "dash"]
ATARI = [Action.NOOP, Action.LEFT, Action.RIGHT, Action.FIRE, Action.LEFTFIRE,
         Action.RIGHTFIRE, Action.DOWN, Action.UP]
# How often the policy picks each action (running and jumping on, as a player does).
WEIGHTS = np.array([0.10, 0.12, 0.28, 0.08, 0.06, 0.18, 0.09, 0.09])
SKIP = 4


def record(game, seed, frames, hold, path):
    ale = ALEInterface()
    ale.setLoggerMode(LoggerMode.Error)
    ale.setInt("random_seed", seed)
    ale.setInt("frame_skip", 1)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(game))
    rng = np.random.default_rng(seed)
    height, width = ale.getScreenDims()
    encoder = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{width}x{height}", "-r", str(60 // SKIP), "-i", "-",
         "-c:v", "libx264rgb", "-qp", "0", "-preset", "veryfast", path + ".mp4"],
        stdin=subprocess.PIPE)
    actions, held, action = [], 0, 0
    for _ in range(frames):
        if held == 0:
            action = int(rng.choice(len(NAMES), p=WEIGHTS / WEIGHTS.sum()))
            held = int(rng.integers(hold[0], hold[1] + 1))
        held -= 1
        encoder.stdin.write(ale.getScreenRGB().tobytes())
        actions.append(NAMES[action])
        for _ in range(SKIP):
            ale.act(ATARI[action])
        if ale.game_over():
            break
    encoder.stdin.close()
    if encoder.wait() != 0:
        sys.exit(f"ffmpeg failed writing {path}.mp4")
    # actions[k] is what was pressed from frame k to frame k+1 (the last one leads nowhere).
    with open(path + ".actions.json", "w") as f:
        json.dump({"actions": actions, "names": NAMES, "game": game, "seed": seed}, f)
    return len(actions)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--game", default="pitfall")
    p.add_argument("--games", type=int, default=32)
    p.add_argument("--frames", type=int, default=1500, help="frames per game at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hold", default="3,15",
                   help="MIN,MAX frames an action is held (a player changing keys every 1-3 "
                        "frames shows the latent action model what each key does)")
    p.add_argument("--out", default="data/atari/pitfall")
    a = p.parse_args()
    hold = tuple(int(h) for h in a.hold.split(","))
    if len(hold) != 2 or not 1 <= hold[0] <= hold[1]:
        sys.exit(f"--hold {a.hold}: expected MIN,MAX with 1 <= MIN <= MAX")
    os.makedirs(a.out, exist_ok=True)
    total = 0
    for g in range(a.games):
        n = record(a.game, a.seed + g, a.frames, hold, os.path.join(a.out, f"{a.game}_{g:03}"))
        total += n
        print(f"{a.game}_{g:03}: {n} frames", flush=True)
    print(f"{total} frames in {a.games} videos under {a.out}")


if __name__ == "__main__":
    main()
