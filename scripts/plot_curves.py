#!/usr/bin/env python3
"""Training curves for the README: reads the metrics.jsonl of one or more `genie train` run
folders and writes one PNG (train and held-out loss per network; tokenizer PSNR; codebook use).

    .venv/bin/python -m pip install matplotlib   # once; only this docs script needs it
    .venv/bin/python scripts/plot_curves.py docs/training_curves.png runs/tok runs/lam
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(run):
    rows = []
    for line in (Path(run) / "metrics.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by a killed run
    return rows


def curve(ax, rows, stage, split, key, style, label, scale=1.0, **kw):
    """Plots `key` (times `scale`) against step for one stage's rows of one split, if it has any."""
    pts = [(r["step"], r[key] * scale) for r in rows if r["stage"] == stage and r["split"] == split]
    if pts:
        ax.plot(*zip(*pts), style, ms=3, label=label, **kw)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, runs = sys.argv[1], sys.argv[2:]
    rows = [r for run in runs for r in load(run)]
    # `genie train decoder` (the tokenizer's decoder alone, on frozen codes) counts its own steps
    # from 0: drawn on the tokenizer's axes, after the tokenizer's last step.
    offset = max((r["step"] for r in rows if r["stage"] == "tokenizer"), default=0)
    for r in rows:
        if r["stage"] == "decoder":
            r["step"] += offset
    stages = [s for s in ("tokenizer", "lam", "dynamics") if any(r["stage"] == s for r in rows)]
    fig, axes = plt.subplots(1, len(stages) + 1, figsize=(4.2 * (len(stages) + 1), 3.4))
    for ax, stage in zip(axes, stages):
        for split, style in (("train", "-"), ("held_out", "o-")):
            name = split.replace("_", "-")
            curve(ax, rows, stage, split, "loss", style, name, lw=1)
            if stage == "tokenizer":
                curve(ax, rows, "decoder", split, "loss", style, "decoder alone, " + name, lw=1)
        ax.set_yscale("log")
        ax.set_title(f"{stage} loss")
        ax.set_xlabel("step")
        ax.legend()
    ax = axes[-1]
    curve(ax, rows, "tokenizer", "held_out", "psnr", "o-", "tokenizer PSNR (held-out), dB")
    curve(ax, rows, "decoder", "held_out", "psnr", "o-",
          "decoder alone on frozen codes (8-frame clips), dB")
    curve(ax, rows, "dynamics", "held_out", "accuracy", "s-",
          "dynamics masked-token accuracy × 40", scale=40)
    ax.set_xlabel("step")
    ax.set_title("held-out quality")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
