#!/usr/bin/env python3
"""Makes the picture set of assets/prompts/: side-view scenes made outside the game's renderer.

Issue 31 asks how the world model does on pictures that use none of the platformer's styles:
sketches and line art on white or paper (with hand wobble), pixel-art scenes in palettes the game
does not use, and photo-like, gradient and textured scenes, in several sizes and formats. Each
picture has ground or platforms and one hero figure, drawn in a colour that is NOT the game's
player magenta (255, 0, 255), so that `--hero` / the automatic guess and the hero redraw are
exercised. Some pictures also hold hero-like distractors (a sun, coins, a critter, bushes), so
the automatic guess is measured on something harder than a lone blob.

Where each hero stands is written to assets/prompts/heroes.json: file name -> [x, y], the centre
of the hero's body in the picture's own pixels. Every hero lies inside the centred square that
genie crops a picture to.

Run from the repository root with Pillow and numpy installed (not needed by genie at run time):
    python3 -m venv /tmp/pyenv && /tmp/pyenv/bin/pip install pillow numpy
    /tmp/pyenv/bin/python tools/make_prompts.py
The output is deterministic for a given Pillow/numpy (every random draw is seeded per picture).
"""

import json
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "prompts")
MAGENTA = (255, 0, 255)


# ---------------------------------------------------------------- drawing helpers


def wobble_points(rng, pts, amp, step=6.0):
    """A hand-drawn polyline: `pts` resampled every `step` px with a smooth random offset."""
    out = []
    phase = rng.uniform(0, 6.28, size=3)
    t = 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        for i in range(n):
            f = i / n
            x, y = x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
            t += 1
            off = amp * (math.sin(t * 0.21 + phase[0]) + 0.5 * math.sin(t * 0.53 + phase[1]))
            jit = rng.normal(0, amp * 0.25, size=2)
            # Offset across the stroke's direction, as a hand drifts.
            dx, dy = x1 - x0, y1 - y0
            norm = math.hypot(dx, dy) or 1.0
            out.append((x - dy / norm * off + jit[0], y + dx / norm * off + jit[1]))
    out.append(pts[-1])
    return out


def wobbly_line(draw, rng, pts, fill, width, amp=1.2):
    draw.line(wobble_points(rng, pts, amp), fill=fill, width=width, joint="curve")


def wobbly_rect(draw, rng, box, fill, width, amp=1.0):
    x0, y0, x1, y1 = box
    wobbly_line(draw, rng, [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], fill, width, amp)


def paper(w, h, rng, base=(246, 242, 230), grain=6):
    arr = np.empty((h, w, 3), np.float32)
    arr[:] = base
    arr += rng.normal(0, grain, size=(h, w, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def gradient(w, h, top, bottom):
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    arr = np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t
    return Image.fromarray(np.broadcast_to(arr, (h, w, 3)).astype(np.uint8))


def value_noise(w, h, rng, cells):
    """Smooth noise in [0, 1]: a coarse random grid upsampled bicubically."""
    small = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(small.resize((w, h), Image.BICUBIC), np.float32) / 255.0


def textured_fill(img, mask, rng, dark, light, cells=12, grain=10.0):
    """Paints `mask` (a bool array) with noise between two colours plus per-pixel grain."""
    h, w = mask.shape
    n = value_noise(w, h, rng, cells)[..., None]
    tex = np.array(dark, np.float32) * (1 - n) + np.array(light, np.float32) * n
    tex += rng.normal(0, grain, size=(h, w, 1))
    arr = np.asarray(img, np.float32).copy()
    arr[mask] = tex[mask]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def box_mask(w, h, boxes):
    m = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        m[max(0, int(y0)) : int(y1), max(0, int(x0)) : int(x1)] = True
    return m


def hill_mask(w, h, rng, base, amp, cells=5):
    """Rows below a rolling skyline (a silhouette of hills)."""
    xs = np.linspace(0, 1, w)
    knots = rng.random(cells + 1)
    line = base - amp * np.interp(xs, np.linspace(0, 1, cells + 1), knots)
    return np.arange(h)[:, None] >= line[None, :]


# ---------------------------------------------------------------- heroes


def marker_hero(draw, rng, cx, feet, height, colour, ink=(30, 30, 30), outline=True):
    """A figure coloured in with a marker: round head, oval body, short legs. Returns the
    centre of its body."""
    hh = height
    head_r = hh * 0.17
    body_top, body_bot = feet - hh * 0.72, feet - hh * 0.22
    body_w = hh * 0.28
    head_c = (cx + rng.normal(0, 0.3), body_top - head_r * 0.9)
    oc = ink if outline else colour
    draw.ellipse(
        [cx - body_w, body_top, cx + body_w, body_bot], fill=colour, outline=oc, width=1
    )
    draw.ellipse(
        [head_c[0] - head_r, head_c[1] - head_r, head_c[0] + head_r, head_c[1] + head_r],
        fill=colour,
        outline=oc,
        width=1,
    )
    lw = max(1, int(hh * 0.09))
    for dx in (-0.45, 0.45):
        x = cx + dx * body_w
        draw.line([(x, body_bot - 1), (x + dx * 2, feet)], fill=colour, width=lw)
    # An eye, looking right.
    e = max(1, hh * 0.05)
    draw.ellipse([head_c[0] + head_r * 0.3 - e, head_c[1] - e, head_c[0] + head_r * 0.3 + e, head_c[1] + e], fill=ink)
    return (cx, (body_top + body_bot) / 2)


def pixel_hero(img, x, y, colours, art):
    """A pixel sprite: `art` rows of characters, each a key of `colours` ('.' transparent),
    top-left at (x, y). Returns the centre of its bounding box."""
    px = img.load()
    for dy, row in enumerate(art):
        for dx, c in enumerate(row):
            if c != ".":
                px[x + dx, y + dy] = colours[c]
    return (x + len(art[0]) / 2.0, y + len(art) / 2.0)


HERO_A = [  # 6 x 10: cap, face, shirt, trousers
    ".hhhh.",
    "hhhhhh",
    ".ffff.",
    ".fefe.",
    "..ff..",
    "ssssss",
    "s.ss.s",
    ".pppp.",
    ".p..p.",
    ".p..p.",
]
HERO_B = [  # 5 x 8: a round critter-knight
    ".bbb.",
    "bbbbb",
    "bebeb",
    "bbbbb",
    ".bbb.",
    "bbbbb",
    ".b.b.",
    ".b.b.",
]
HERO_C = [  # 8 x 12 for bigger canvases
    "..hhhh..",
    ".hhhhhh.",
    "..ffff..",
    "..fefe..",
    "..ffff..",
    ".ssssss.",
    "ssssssss",
    "f.ssss.f",
    "..pppp..",
    "..p..p..",
    "..p..p..",
    ".pp..pp.",
]


def shaded_hero(img, cx, feet, height, colour, rng):
    """A soft, photo-like figure: shaded body and head, anti-aliased by drawing large and
    shrinking. Returns the centre of its body."""
    s = 4
    w, h = int(height * 0.8 * s), int(height * 1.1 * s)
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    hh = height * s
    body = [w / 2 - hh * 0.2, hh * 0.32, w / 2 + hh * 0.2, hh * 0.82]
    d.rounded_rectangle(body, radius=hh * 0.12, fill=colour + (255,))
    dark = tuple(int(c * 0.6) for c in colour)
    d.rounded_rectangle([body[0], body[1], body[0] + hh * 0.12, body[3]], radius=hh * 0.06, fill=dark + (255,))
    d.ellipse([w / 2 - hh * 0.15, hh * 0.02, w / 2 + hh * 0.15, hh * 0.32], fill=(230, 190, 150, 255))
    for dx in (-0.1, 0.06):
        d.rectangle([w / 2 + hh * dx, hh * 0.8, w / 2 + hh * (dx + 0.07), hh], fill=dark + (255,))
    small = layer.resize((w // s, h // s), Image.LANCZOS)
    x0, y0 = int(cx - small.width / 2), int(feet - height)
    img.paste(small, (x0, y0), small)
    return (cx, feet - height * 0.45)


# ---------------------------------------------------------------- scenes


def sketch(name, size, seed, hero_colour, paper_kind="plain", ink=(40, 40, 45), extras=()):
    w, h = size
    rng = np.random.default_rng(seed)
    if paper_kind == "white":
        img = Image.new("RGB", size, (255, 255, 255))
    else:
        img = paper(w, h, rng)
    d = ImageDraw.Draw(img)
    u = min(w, h) / 64.0  # one game pixel, in this picture's pixels
    if paper_kind == "lined":
        for y in np.arange(8 * u, h, 6 * u):
            d.line([(0, y), (w, y)], fill=(170, 195, 230), width=1)
        d.line([(w * 0.12, 0), (w * 0.12, h)], fill=(230, 150, 150), width=1)
    if paper_kind == "graph":
        for v in np.arange(0, max(w, h), 4 * u):
            d.line([(v, 0), (v, h)], fill=(200, 220, 210), width=1)
            d.line([(0, v), (w, v)], fill=(200, 220, 210), width=1)
    lw = max(1, int(round(u * 0.8)))
    ground = h - 12 * u
    x_left, x_right = (w - min(w, h)) / 2, (w + min(w, h)) / 2
    wobbly_line(d, rng, [(-5, ground), (w * 0.55, ground + 1), (w + 5, ground - 1)], ink, lw, 1.2 * u / 2)
    # Hatching under the ground line, as kids shade the earth.
    for x in np.arange(0, w, 4 * u):
        wobbly_line(d, rng, [(x, ground + 3 * u), (x + 3 * u, ground + 9 * u)], ink, max(1, lw - 1), 0.3)
    # Two floating platforms inside the visible square.
    plats = [
        (x_left + 10 * u, ground - 20 * u, x_left + 26 * u, ground - 16 * u),
        (x_left + 36 * u, ground - 32 * u, x_left + 54 * u, ground - 28 * u),
    ]
    for p in plats:
        wobbly_rect(d, rng, p, ink, lw, 0.6 * u / 2)
    if "sun" in extras:
        c = (x_right - 10 * u, 10 * u)
        d.ellipse([c[0] - 5 * u, c[1] - 5 * u, c[0] + 5 * u, c[1] + 5 * u], outline=ink, width=lw)
        for a in range(0, 360, 45):
            r = math.radians(a)
            d.line([(c[0] + 7 * u * math.cos(r), c[1] + 7 * u * math.sin(r)), (c[0] + 9 * u * math.cos(r), c[1] + 9 * u * math.sin(r))], fill=ink, width=lw)
    if "cloud" in extras:
        cx, cy = x_left + 20 * u, 9 * u
        for dx, r in ((-4, 3), (0, 4), (4, 3)):
            d.arc([cx + (dx - r) * u, cy - r * u, cx + (dx + r) * u, cy + r * u], 180, 360, fill=ink, width=lw)
        d.line([(cx - 7 * u, cy), (cx + 7 * u, cy)], fill=ink, width=lw)
    if "coins" in extras:
        for i in range(3):
            x = plats[1][0] + (3 + 5 * i) * u
            d.ellipse([x, plats[1][1] - 6 * u, x + 3 * u, plats[1][1] - 3 * u], fill=(235, 190, 40), outline=ink)
    if "tree" in extras:
        tx = x_left + 58 * u
        d.rectangle([tx - u, ground - 10 * u, tx + u, ground], fill=(120, 80, 50))
        d.ellipse([tx - 5 * u, ground - 20 * u, tx + 5 * u, ground - 9 * u], fill=(90, 160, 80), outline=ink)
    hx = x_left + 28 * u + rng.uniform(-8, 8) * u
    if "hero_on_platform" in extras:
        p = plats[0]
        hx, feet = (p[0] + p[2]) / 2, p[1]
    else:
        feet = ground
    centre = marker_hero(d, rng, hx, feet, 9 * u, hero_colour, ink)
    if "blur" in extras:
        img = img.filter(ImageFilter.GaussianBlur(0.6 * u))
    return img, centre


def pixel_scene(name, size, seed, pal, hero_art, hero_cols, extras=()):
    """Flat pixel art at one pixel per art pixel (then scaled up by an integer for big sizes)."""
    w, h = size
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, pal["sky"])
    d = ImageDraw.Draw(img)
    side = min(w, h)
    x_left = (w - side) // 2
    u = side / 64.0
    g = int(h - 10 * u)
    # Sky bands, as pixel art dithers a gradient.
    if "bands" in pal:
        for i, c in enumerate(pal["bands"]):
            y0 = int(i * g / (len(pal["bands"]) + 1))
            d.rectangle([0, y0, w, int((i + 1) * g / (len(pal["bands"]) + 1))], fill=c)
    if "stars" in extras:
        for _ in range(int(w * h / 300)):
            x, y = rng.integers(0, w), rng.integers(0, g - 20)
            img.putpixel((int(x), int(y)), pal["star"])
    if "hills" in extras:
        m = hill_mask(w, h, rng, g - 2, 16 * u)
        arr = np.asarray(img).copy()
        arr[m] = pal["hill"]
        img = Image.fromarray(arr)
        d = ImageDraw.Draw(img)
    # Ground: a top row of "grass", a body with a checker of two shades.
    d.rectangle([0, g, w, h], fill=pal["ground"])
    d.rectangle([0, g, w, g + max(1, int(u * 2))], fill=pal["top"])
    for y in range(g + int(3 * u), h, max(2, int(4 * u))):
        for x in range((y // 4 % 2) * int(2 * u), w, max(4, int(8 * u))):
            d.rectangle([x, y, x + max(0, int(u) - 1), y + max(0, int(u) - 1)], fill=pal["ground2"])
    plats = [
        (x_left + int(8 * u), g - int(18 * u), x_left + int(24 * u), g - int(14 * u)),
        (x_left + int(38 * u), g - int(30 * u), x_left + int(58 * u), g - int(26 * u)),
    ]
    for p in plats:
        d.rectangle(p, fill=pal["plat"])
        d.rectangle([p[0], p[1], p[2], p[1] + max(0, int(u) - 1)], fill=pal["top"])
    if "coins" in extras:
        for i in range(3):
            x = plats[1][0] + int((3 + 5 * i) * u)
            d.rectangle([x, plats[1][1] - int(5 * u), x + int(2 * u), plats[1][1] - int(3 * u)], fill=pal["coin"])
    if "critter" in extras:
        cx = x_left + int(50 * u)
        s = max(1, int(u))
        d.rectangle([cx, g - 4 * s, cx + 5 * s, g - 1], fill=pal["critter"])
    if "bush" in extras:
        bx = x_left + int(4 * u)
        d.ellipse([bx, g - int(6 * u), bx + int(10 * u), g + int(2 * u)], fill=pal["bush"])
    # The hero: the sprite at the art's pixel size, scaled by whole pixels on bigger canvases.
    scale = max(1, int(round(u * 0.9)))
    sprite = Image.new("RGBA", (len(hero_art[0]), len(hero_art)), (0, 0, 0, 0))
    cols = {k: tuple(v) + (255,) for k, v in hero_cols.items()}
    pixel_hero(sprite, 0, 0, cols, hero_art)
    sprite = sprite.resize((sprite.width * scale, sprite.height * scale), Image.NEAREST)
    if "hero_on_platform" in extras:
        p = plats[0]
        hx, feet = (p[0] + p[2]) // 2 - sprite.width // 2, p[1]
    else:
        hx, feet = x_left + int(28 * u) + int(rng.integers(-6, 6) * u), g
    img.paste(sprite, (hx, feet - sprite.height), sprite)
    centre = (hx + sprite.width / 2.0, feet - sprite.height / 2.0)
    return img, centre


def photo_scene(name, size, seed, look, hero_colour, extras=()):
    w, h = size
    rng = np.random.default_rng(seed)
    side = min(w, h)
    x_left = (w - side) / 2
    u = side / 64.0
    img = gradient(w, h, look["sky_top"], look["sky_bottom"])
    if "sun" in extras:
        d = ImageDraw.Draw(img)
        c = (x_left + 50 * u, 12 * u)
        d.ellipse([c[0] - 5 * u, c[1] - 5 * u, c[0] + 5 * u, c[1] + 5 * u], fill=look["sun"])
        img = img.filter(ImageFilter.GaussianBlur(u * 0.5))
    if "far_hills" in extras:
        m = hill_mask(w, h, rng, h - 16 * u, 18 * u, 6)
        img = textured_fill(img, m, rng, look["far_dark"], look["far_light"], 8, 3)
        img = img.filter(ImageFilter.GaussianBlur(u * 0.8))  # depth of field
    if "buildings" in extras:
        arr = np.asarray(img).copy()
        x = 0
        while x < w:
            bw = int(rng.integers(6, 14) * u)
            bh = int(rng.integers(14, 34) * u)
            arr[h - int(10 * u) - bh : h, x : x + bw] = look["building"]
            for wy in range(h - int(10 * u) - bh + int(2 * u), h - int(12 * u), int(4 * u)):
                for wx in range(x + int(u), x + bw - int(2 * u), int(3 * u)):
                    if rng.random() < 0.5:
                        arr[wy : wy + int(u * 1.5), wx : wx + int(u * 1.5)] = look["window"]
            x += bw + int(rng.integers(1, 4) * u)
        img = Image.fromarray(arr)
    g = h - 10 * u
    ground = np.arange(h)[:, None] >= (g + np.sin(np.arange(w) / (9 * u)) * u)[None, :]
    img = textured_fill(img, ground, rng, look["ground_dark"], look["ground_light"], 14, look.get("grain", 10))
    plats = [
        (x_left + 8 * u, g - 19 * u, x_left + 26 * u, g - 15 * u),
        (x_left + 38 * u, g - 31 * u, x_left + 58 * u, g - 27 * u),
    ]
    img = textured_fill(img, box_mask(w, h, plats), rng, look["plat_dark"], look["plat_light"], 20, 6)
    if "bush" in extras:
        d = ImageDraw.Draw(img)
        bx = x_left + 4 * u
        d.ellipse([bx, g - 6 * u, bx + 9 * u, g + 2 * u], fill=look["bush"])
    if "hero_on_platform" in extras:
        p = plats[0]
        hx, feet = (p[0] + p[2]) / 2, p[1]
    else:
        hx, feet = x_left + 28 * u + rng.uniform(-6, 6) * u, g + u * 0.5
    centre = shaded_hero(img, hx, feet, 10 * u, hero_colour, rng)
    if "soft" in extras:
        img = img.filter(ImageFilter.GaussianBlur(u * 0.35))
    arr = np.asarray(img, np.float32) + rng.normal(0, look.get("noise", 3), size=(h, w, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), centre


# ---------------------------------------------------------------- the set

GAMEBOY = dict(sky=(155, 188, 15), ground=(48, 98, 48), ground2=(15, 56, 15), top=(15, 56, 15), plat=(48, 98, 48), coin=(15, 56, 15), critter=(15, 56, 15), bush=(48, 98, 48))
PICO = dict(sky=(29, 43, 83), bands=[(29, 43, 83), (41, 58, 108)], star=(255, 241, 232), ground=(95, 87, 79), ground2=(126, 37, 83), top=(0, 135, 81), plat=(171, 82, 54), coin=(255, 236, 39), critter=(0, 228, 54), bush=(0, 135, 81), hill=(31, 60, 70))
SEPIA = dict(sky=(234, 214, 170), bands=[(222, 196, 150)], ground=(120, 86, 56), ground2=(96, 66, 42), top=(160, 120, 76), plat=(140, 100, 62), coin=(250, 236, 200), critter=(70, 50, 30), bush=(150, 130, 80), hill=(200, 176, 130))
NEON = dict(sky=(8, 8, 12), star=(120, 120, 160), ground=(20, 30, 40), ground2=(0, 90, 110), top=(0, 230, 230), plat=(0, 150, 160), coin=(255, 255, 0), critter=(255, 80, 40), bush=(20, 60, 30))
PASTEL = dict(sky=(200, 230, 225), bands=[(214, 236, 230), (226, 242, 236)], ground=(240, 200, 170), ground2=(225, 180, 150), top=(170, 220, 170), plat=(190, 200, 240), coin=(250, 240, 150), critter=(150, 170, 230), bush=(150, 210, 160), hill=(215, 235, 215))
MONO = dict(sky=(255, 255, 255), ground=(0, 0, 0), ground2=(255, 255, 255), top=(0, 0, 0), plat=(0, 0, 0), coin=(0, 0, 0), critter=(0, 0, 0), bush=(0, 0, 0))
NES = dict(sky=(92, 148, 252), bands=[(60, 188, 252)], ground=(200, 76, 12), ground2=(252, 152, 56), top=(0, 168, 0), plat=(228, 92, 16), coin=(252, 216, 168), critter=(136, 20, 0), bush=(0, 168, 0), hill=(0, 120, 0), star=(255, 255, 255))
FOREST = dict(sky=(236, 240, 200), bands=[(224, 232, 184), (210, 222, 170)], ground=(70, 50, 40), ground2=(50, 36, 28), top=(110, 150, 40), plat=(96, 70, 50), coin=(240, 200, 80), critter=(180, 90, 40), bush=(60, 110, 40), hill=(170, 190, 120))
CGA = dict(sky=(0, 0, 0), ground=(85, 255, 255), ground2=(0, 0, 0), top=(255, 255, 255), plat=(85, 255, 255), coin=(255, 255, 255), critter=(255, 255, 255), bush=(85, 255, 255), star=(255, 255, 255))

SUNSET = dict(sky_top=(40, 30, 90), sky_bottom=(250, 150, 90), sun=(255, 230, 170), far_dark=(60, 40, 80), far_light=(100, 60, 110), ground_dark=(40, 60, 30), ground_light=(90, 120, 50), plat_dark=(80, 70, 60), plat_light=(140, 120, 100), bush=(30, 70, 40))
MEADOW_PHOTO = dict(sky_top=(120, 170, 215), sky_bottom=(215, 230, 240), sun=(255, 250, 220), far_dark=(90, 120, 110), far_light=(140, 160, 150), ground_dark=(50, 90, 30), ground_light=(120, 160, 60), plat_dark=(100, 100, 100), plat_light=(170, 165, 155), bush=(40, 90, 40), grain=14)
DUSK = dict(sky_top=(20, 40, 70), sky_bottom=(120, 120, 150), sun=(240, 240, 210), far_dark=(30, 40, 60), far_light=(50, 60, 80), ground_dark=(30, 30, 35), ground_light=(80, 75, 70), plat_dark=(60, 50, 45), plat_light=(110, 95, 80), bush=(20, 40, 30))
UNDERWATER = dict(sky_top=(10, 60, 110), sky_bottom=(40, 150, 160), sun=(200, 240, 240), far_dark=(20, 80, 100), far_light=(40, 110, 120), ground_dark=(170, 150, 100), ground_light=(230, 210, 160), plat_dark=(60, 90, 90), plat_light=(100, 140, 130), bush=(30, 120, 80), grain=8)
CAVE = dict(sky_top=(25, 20, 20), sky_bottom=(60, 50, 45), far_dark=(40, 35, 30), far_light=(70, 60, 50), ground_dark=(50, 45, 40), ground_light=(110, 100, 85), plat_dark=(70, 60, 55), plat_light=(130, 115, 100), bush=(40, 60, 40), grain=16, noise=5)
WATERCOLOUR = dict(sky_top=(200, 220, 240), sky_bottom=(245, 235, 220), sun=(250, 220, 150), far_dark=(170, 190, 200), far_light=(200, 210, 220), ground_dark=(150, 170, 110), ground_light=(190, 200, 140), plat_dark=(180, 150, 120), plat_light=(210, 185, 160), bush=(120, 160, 110), grain=4)
STONE = dict(sky_top=(180, 200, 200), sky_bottom=(220, 225, 215), far_dark=(150, 160, 160), far_light=(180, 185, 180), ground_dark=(90, 90, 95), ground_light=(160, 160, 165), plat_dark=(110, 100, 95), plat_light=(170, 160, 150), bush=(80, 110, 80), grain=18)
CITY = dict(sky_top=(170, 190, 210), sky_bottom=(230, 220, 200), building=(110, 115, 130), window=(230, 220, 160), ground_dark=(70, 70, 70), ground_light=(120, 120, 118), plat_dark=(140, 90, 70), plat_light=(180, 120, 90), bush=(60, 100, 50), grain=8)


def pictures():
    """(file name, image, hero centre, save options) for every picture of the set."""
    red, blue, green, orange = (220, 40, 40), (40, 90, 220), (40, 160, 60), (240, 130, 20)
    purple, teal, brown = (110, 60, 170), (20, 150, 150), (150, 90, 40)
    yield "sketch_paper.jpg", *sketch("", (320, 180), 1, red, "plain", extras=("sun", "cloud")), dict(quality=85)
    yield "sketch_white.png", *sketch("", (200, 150), 2, blue, "white", extras=("cloud",)), {}
    yield "sketch_lined.jpg", *sketch("", (256, 256), 3, green, "lined", ink=(30, 40, 110)), dict(quality=85)
    yield "sketch_graph.png", *sketch("", (128, 128), 4, orange, "graph", extras=("coins",)), {}
    yield "sketch_crayon.jpg", *sketch("", (320, 240), 5, purple, "plain", ink=(90, 60, 40), extras=("tree", "blur")), dict(quality=80)
    yield "sketch_ballpoint.webp", *sketch("", (400, 300), 6, teal, "white", ink=(20, 40, 150), extras=("sun", "hero_on_platform")), dict(quality=85)
    yield "sketch_charcoal.jpg", *sketch("", (200, 200), 7, red, "plain", ink=(70, 70, 70), extras=("blur", "tree")), dict(quality=80)
    yield "sketch_tiny.png", *sketch("", (64, 64), 8, blue, "white", extras=()), {}
    yield "sketch_wide.gif", *sketch("", (320, 180), 9, brown, "white", extras=("coins", "cloud")), {}
    hero_a = {"h": (200, 40, 40), "f": (250, 200, 160), "e": (20, 20, 20), "s": (40, 80, 200), "p": (60, 50, 40)}
    yield "pixel_gameboy.png", *pixel_scene("", (160, 144), 11, GAMEBOY, HERO_B, {"b": (15, 56, 15), "e": (139, 172, 15)}, ("bush",)), {}
    yield "pixel_pico.png", *pixel_scene("", (128, 128), 12, PICO, HERO_A, {"h": (255, 163, 0), "f": (255, 204, 170), "e": (0, 0, 0), "s": (255, 163, 0), "p": (194, 195, 199)}, ("stars", "coins", "critter")), {}
    yield "pixel_sepia.gif", *pixel_scene("", (96, 96), 13, SEPIA, HERO_B, {"b": (60, 40, 24), "e": (240, 230, 200)}, ("hills", "bush")), {}
    yield "pixel_neon.bmp", *pixel_scene("", (64, 64), 14, NEON, HERO_B, {"b": (255, 230, 0), "e": (0, 0, 0)}, ("stars", "critter")), {}
    yield "pixel_pastel.png", *pixel_scene("", (192, 108), 15, PASTEL, HERO_A, {"h": (230, 120, 110), "f": (250, 220, 200), "e": (60, 60, 80), "s": (230, 120, 110), "p": (120, 120, 170)}, ("hills", "coins")), {}
    yield "pixel_nes.gif", *pixel_scene("", (256, 240), 16, NES, HERO_C, {"h": (216, 40, 0), "f": (252, 188, 176), "e": (0, 0, 0), "s": (216, 40, 0), "p": (0, 88, 248)}, ("hills", "critter", "coins")), {}
    yield "pixel_mono.bmp", *pixel_scene("", (128, 96), 17, MONO, HERO_B, {"b": (0, 0, 0), "e": (255, 255, 255)}, ("hero_on_platform",)), {}
    yield "pixel_forest.png", *pixel_scene("", (200, 150), 18, FOREST, HERO_A, hero_a, ("hills", "bush", "critter")), {}
    yield "pixel_cga.png", *pixel_scene("", (160, 100), 19, CGA, HERO_A, {"h": (255, 255, 255), "f": (255, 255, 255), "e": (0, 0, 0), "s": (85, 255, 255), "p": (255, 255, 255)}, ("stars",)), {}
    yield "photo_sunset.jpg", *photo_scene("", (320, 180), 21, SUNSET, (60, 120, 230), ("sun", "far_hills", "bush")), dict(quality=80)
    yield "photo_meadow.jpg", *photo_scene("", (400, 300), 22, MEADOW_PHOTO, (210, 40, 30), ("far_hills", "bush", "soft")), dict(quality=80)
    yield "photo_dusk.webp", *photo_scene("", (200, 150), 23, DUSK, (240, 200, 40), ("sun", "far_hills")), dict(quality=80)
    yield "photo_underwater.jpg", *photo_scene("", (256, 256), 24, UNDERWATER, (250, 120, 30), ("far_hills", "bush", "soft")), dict(quality=80)
    yield "photo_cave.png", *photo_scene("", (160, 120), 25, CAVE, (60, 200, 90), ("far_hills", "hero_on_platform")), {}
    yield "photo_watercolour.jpg", *photo_scene("", (300, 200), 26, WATERCOLOUR, (200, 50, 60), ("sun", "far_hills", "soft", "bush")), dict(quality=80)
    yield "photo_stone.jpg", *photo_scene("", (128, 128), 27, STONE, (20, 170, 200), ("far_hills",)), dict(quality=85)
    yield "photo_city.jpg", *photo_scene("", (640, 360), 28, CITY, (240, 110, 20), ("buildings", "bush")), dict(quality=75)


def near_magenta(img):
    arr = np.asarray(img.convert("RGB"), np.int32)
    return int((np.abs(arr - np.array(MAGENTA)).sum(-1) <= 90).sum())


def main():
    os.makedirs(OUT, exist_ok=True)
    heroes = {}
    total = 0
    for name, img, centre, opts in pictures():
        w, h = img.size
        side = min(w, h)
        x0, y0 = (w - side) // 2, (h - side) // 2
        x, y = int(round(centre[0])), int(round(centre[1]))
        # The hero must be inside the centred square genie keeps, and nothing may be near the
        # game's player colour (the redraw puts the only magenta in the picture).
        assert x0 <= x < x0 + side and y0 <= y < y0 + side, (name, x, y)
        assert near_magenta(img) == 0, name
        path = os.path.join(OUT, name)
        img.save(path, **opts)
        heroes[name] = [x, y]
        total += os.path.getsize(path)
        print(f"{name:24s} {w}x{h} hero ({x}, {y}) {os.path.getsize(path) // 1024} KiB")
    with open(os.path.join(OUT, "heroes.json"), "w") as f:
        json.dump(heroes, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{len(heroes)} pictures, {total // 1024} KiB", file=sys.stderr)


if __name__ == "__main__":
    main()
