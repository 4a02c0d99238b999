"""The `synthetic` dataset: procedural FER-like faces, rendered with numpy.

Every face is drawn in its own canonical frame (origin at the face centre,
one unit ~ 0.4 of the image side, v pointing down) and the frame is posed by a
per-image rotation, scale and shift. Expressions move a handful of features,
loosely after the action units that tell the seven FER2013 classes apart:

    mouth curve and opening, mouth width, brow tilt and height, eye opening,
    a nose wrinkle and a one-sided upper-lip raise (disgust).

Nuisances hide them from a linear model: pose, scale and shift (a feature
lands on different pixels in every image), identity (face shape, feature
placement, skin and background tones, hair line), a lighting gradient,
contrast, sensor noise, an occluding patch, expression intensity (weak
expressions drift towards neutral) and a little label noise. A small CNN,
whose pooling makes it shift-tolerant, learns the features; logistic
regression on raw pixels cannot line them up.

All images of a chunk are rendered at once on coordinate grids; there is no
Python loop over images or pixels. `difficulty` in [0, 1] scales every
nuisance; 0.5 is the default.
"""

from __future__ import annotations

import numpy as np

from harness.data.cache import Cache
from harness.data.spec import DataSpec
from harness.data.types import FER2013_CLASSES, RawData, raw_from_arrays, raw_to_arrays

__all__ = ["generate", "load", "render", "split_counts"]

# Bump when the renderer changes: it is part of the cache key.
RENDER_VERSION = 1

SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}

# FER2013's training-split class counts, for `prior=fer2013`.
_FER2013_TRAIN_COUNTS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965], dtype=np.float64)

# Expression prototypes, one row per FER2013 class (angry, disgust, fear,
# happy, sad, surprise, neutral). Columns, in canonical units:
#   curve: mouth corners up (+) / down (-);   open: mouth half-opening;
#   width: mouth half-width;                  tilt: brow inner ends down (+) / up (-);
#   raise: brows up (+);                      eye: eye half-height;
#   wrinkle: nose wrinkle strength;           lip: one-sided upper-lip raise.
_FEATURES = ("curve", "open", "width", "tilt", "raise", "eye", "wrinkle", "lip")
_PROTOTYPES = np.array(
    [
        #  curve  open  width  tilt  raise   eye  wrinkle  lip
        [-0.08, 0.00, 0.20, 0.55, -0.07, 0.055, 0.35, 0.00],  # angry
        [-0.12, 0.02, 0.24, 0.30, -0.05, 0.050, 1.00, 0.10],  # disgust
        [-0.05, 0.08, 0.30, -0.40, 0.09, 0.110, 0.00, 0.00],  # fear
        [0.16, 0.05, 0.32, 0.00, 0.02, 0.045, 0.00, 0.00],  # happy
        [-0.16, 0.00, 0.24, -0.50, 0.02, 0.060, 0.00, 0.00],  # sad
        [0.00, 0.16, 0.17, -0.05, 0.16, 0.120, 0.00, 0.00],  # surprise
        [0.00, 0.00, 0.25, 0.00, 0.00, 0.075, 0.00, 0.00],  # neutral
    ],
    dtype=np.float32,
)
_NEUTRAL = _PROTOTYPES[6]
# How much one identity's resting face deviates from the prototype, per feature.
_IDENTITY_SPREAD = np.array([0.03, 0.01, 0.03, 0.12, 0.03, 0.012, 0.1, 0.02], dtype=np.float32)

_CHUNK = 128  # images rendered together: keeps the float32 scratch buffers in cache
_BUFFERS = 8  # scratch arrays per chunk (see _render_chunk)


def load(spec: DataSpec, cache: Cache) -> RawData:
    options = spec.source_options()
    key = {"render_version": RENDER_VERSION, **options}
    return raw_from_arrays(cache.get("synthetic", key, lambda: raw_to_arrays(generate(**options))))


def split_counts(n: int) -> dict[str, int]:
    """70/15/15, with rounding going to train."""
    val = int(round(n * SPLIT_FRACTIONS["val"]))
    test = int(round(n * SPLIT_FRACTIONS["test"]))
    return {"train": n - val - test, "val": val, "test": test}


def generate(
    n: int = 3000,
    seed: int = 0,
    difficulty: float = 0.5,
    size: int = 48,
    prior: str = "uniform",
) -> RawData:
    """Render `n` faces, split 70/15/15, labels in FER2013's class order."""
    rng = np.random.default_rng([RENDER_VERSION, seed])
    k = len(FER2013_CLASSES)
    weights = np.ones(k) if prior == "uniform" else _FER2013_TRAIN_COUNTS
    splits = {}
    for name, count in split_counts(n).items():
        labels = _balanced_labels(rng, count, weights / weights.sum())
        images = render(rng, labels, difficulty=difficulty, size=size)
        noisy = _label_noise(rng, labels, rate=0.05 * difficulty, k=k)
        splits[name] = (images[:, None], noisy)
    return RawData(classes=FER2013_CLASSES, label_mode="hard", splits=splits)


def _balanced_labels(rng: np.random.Generator, count: int, probs: np.ndarray) -> np.ndarray:
    """Class counts as close to `probs * count` as integers allow, in random order."""
    exact = probs * count
    counts = np.floor(exact).astype(np.int64)
    short = count - counts.sum()
    counts[np.argsort(counts - exact, kind="stable")[:short]] += 1
    return rng.permutation(np.repeat(np.arange(len(probs)), counts))


def _label_noise(rng: np.random.Generator, labels: np.ndarray, rate: float, k: int) -> np.ndarray:
    """Move a fraction `rate` of labels to another class, as annotators do."""
    flip = rng.random(len(labels)) < rate
    other = (labels + rng.integers(1, k, len(labels))) % k
    return np.where(flip, other, labels).astype(np.int64)


def render(
    rng: np.random.Generator, labels: np.ndarray, difficulty: float = 0.5, size: int = 48
) -> np.ndarray:
    """uint8 (N, size, size) faces showing the expressions `labels`."""
    params = _draw_parameters(rng, labels, difficulty, size)
    out = np.empty((len(labels), size, size), dtype=np.uint8)
    # Scratch buffers shared by all chunks: every fresh array of this size
    # costs more in page faults than the arithmetic done on it.
    chunk = min(_CHUNK, max(len(labels), 1))
    work = np.empty((_BUFFERS, chunk, size, size), dtype=np.float32)
    for start in range(0, len(labels), chunk):
        stop = min(start + chunk, len(labels))
        part = {key: value[start:stop] for key, value in params.items()}
        out[start:stop] = _render_chunk(rng, part, work[:, : stop - start])
    return out


def _draw_parameters(
    rng: np.random.Generator, labels: np.ndarray, d: float, size: int
) -> dict[str, np.ndarray]:
    """Every per-image random number, drawn up front (vectorised)."""
    n = len(labels)

    def u(low, high):
        return rng.uniform(low, high, n).astype(np.float32)

    def col(x):
        return np.asarray(x, dtype=np.float32).reshape(n, 1, 1)

    # Expression: the prototype scaled by an intensity (weak expressions look
    # neutral), plus the identity's own resting face.
    intensity = u(1.0 - 0.8 * d, 1.0)[:, None]
    expr = _NEUTRAL + intensity * (_PROTOTYPES[labels] - _NEUTRAL)
    expr = expr + rng.standard_normal((n, len(_FEATURES))).astype(np.float32) * (
        _IDENTITY_SPREAD * (0.5 + d)
    )
    f = dict(zip(_FEATURES, expr.T, strict=True))

    angle = np.deg2rad(u(-1, 1) * (8 + 24 * d))
    scale = 1.0 + u(-1, 1) * (0.06 + 0.2 * d)
    unit = size * 0.4 * scale  # pixels per canonical unit
    shift = 0.03 + 0.12 * d
    tx, ty = (u(-1, 1) * shift * size for _ in range(2))
    cos, sin = np.cos(angle) / unit, np.sin(angle) / unit
    occluded = rng.random(n) < (0.1 + 0.5 * d)
    occ_w = np.where(occluded, u(0.08, 0.25) * size, 0.0)

    return {
        # pose: u = a*X + b*Y + c, v = -b*X + a*Y + e (X, Y pixel offsets from the centre)
        "a": col(cos),
        "b": col(sin),
        "c": col(-(cos * tx + sin * ty)),
        "e": col(sin * tx - cos * ty),
        "unit": col(unit),
        # identity
        "face_w": col(u(0.78, 0.95)),
        "face_h": col(u(0.98, 1.15)),
        "eye_x": col(u(0.30, 0.38)),
        "eye_y": col(u(-0.24, -0.14)),
        "eye_w": col(u(0.11, 0.15)),
        "mouth_y": col(u(0.40, 0.52)),
        "hair": col(u(-0.95, -0.62)),
        "hair_tone": col(u(0.05, 0.45)),
        "skin": col(u(0.45, 0.85)),
        "bg": col(u(0.05, 0.95)),
        # expression
        **{name: col(value) for name, value in f.items()},
        "lip_side": col(np.where(rng.random(n) < 0.5, -1.0, 1.0)),
        # photometric nuisances
        "grad_x": col(u(-1, 1) * (0.1 + 0.4 * d) / size),
        "grad_y": col(u(-1, 1) * (0.1 + 0.4 * d) / size),
        "gain": col(u(1.0 - 0.5 * d, 1.0 + 0.2 * d)),
        "noise": col(u(0.01, 0.02 + 0.08 * d)),
        "occ_x": col(u(-0.5, 0.5) * size),
        "occ_y": col(u(-0.5, 0.5) * size),
        "occ_w": col(occ_w),
        "occ_h": col(u(0.08, 0.25) * size),
        "occ_tone": col(u(0.0, 1.0)),
    }


def _band(
    dist: np.ndarray, half: np.ndarray | float, unit: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """1 where |dist| < half, 0 outside, with a one-pixel soft edge (anti-aliasing).

    `out` may be `dist` itself.
    """
    np.abs(dist, out=out)
    out *= unit
    np.subtract(half * unit + 0.5, out, out=out)
    return np.clip(out, 0.0, 1.0, out=out)


def _ellipse(
    du: np.ndarray, dv: np.ndarray, half_w, half_h, sharpness, out: np.ndarray, tmp: np.ndarray
) -> np.ndarray:
    """1 inside the ellipse (du/half_w)^2 + (dv/half_h)^2 < 1, 0 outside.

    The edge is soft over about one pixel when `sharpness` is half the
    smaller radius in pixels (r^2 changes twice as fast as r at the edge).
    """
    np.multiply(du, du, out=out)
    out *= half_w**-2
    np.multiply(dv, dv, out=tmp)
    tmp *= half_h**-2
    out += tmp
    out *= -sharpness
    out += sharpness + 0.5
    return np.clip(out, 0.0, 1.0, out=out)


def _render_chunk(
    rng: np.random.Generator, p: dict[str, np.ndarray], work: np.ndarray
) -> np.ndarray:
    """Render one chunk; `work` is (_BUFFERS, n, size, size) float32 scratch space.

    Every full-size operation writes into `work` (out=...); operands of shape
    (n, 1, 1), (n, 1, size) or (n, size, 1) are small and allocated freely.
    """
    u, v, au, img, t1, t2, t3, t4 = work
    size = img.shape[-1]
    coords = np.arange(size, dtype=np.float32) - (size - 1) / 2.0
    x = coords.reshape(1, 1, size)
    y = coords.reshape(1, size, 1)
    unit = p["unit"]
    skin = p["skin"]
    np.add(p["a"] * x, p["b"] * y + p["c"], out=u)
    np.add(-p["b"] * x, p["a"] * y + p["e"], out=v)
    np.abs(u, out=au)

    # Face: an ellipse of skin on the background, hair above a per-identity line.
    face = _ellipse(u, v, p["face_w"], p["face_h"], unit * 0.45, out=t1, tmp=t2)
    np.multiply(face, skin - p["bg"], out=img)
    img += p["bg"]
    np.subtract(p["hair"], v, out=t2)
    t2 *= unit * 0.5
    np.clip(t2, 0.0, 1.0, out=t2)
    t2 *= face
    t2 *= skin - p["hair_tone"]
    img -= t2

    # Eyes (mirrored through |u|): dark ellipses whose height is the expression's.
    du = np.subtract(au, p["eye_x"], out=t1)
    dv = np.subtract(v, p["eye_y"], out=t2)
    eye_h = np.maximum(p["eye"], 0.012)
    eye = _ellipse(du, dv, p["eye_w"], eye_h, unit * np.maximum(eye_h, 0.03) * 0.5, out=t3, tmp=t4)
    eye *= 0.5 * skin
    img -= eye

    # Brows: tilted bars above the eyes; inner ends go down for anger, up for sadness.
    brow = np.multiply(du, p["tilt"], out=t3)
    brow += dv
    brow += 0.17 + p["raise"]
    _band(brow, 0.035, unit, out=brow)
    brow *= _band(du, 0.18, unit, out=t4)
    brow *= 0.55 * skin
    img -= brow

    # Nose wrinkle (disgust, some anger): two short creases between the eyes,
    # drawn as one band around |offset| = 0.04.
    crease = np.subtract(v, p["eye_y"] + 0.16, out=t1)
    np.abs(crease, out=crease)
    crease -= 0.04
    _band(crease, 0.022, unit, out=crease)
    crease *= _band(u, 0.08, unit, out=t2)
    crease *= 0.35 * skin * np.clip(p["wrinkle"], 0.0, 1.0)
    img -= crease

    # Mouth: an opening around a curved centre line; corners up for a smile,
    # down for sadness; disgust raises one side of the upper lip.
    s = np.multiply(u, 1.0 / p["width"], out=t1)
    np.square(s, out=s)
    dist = np.subtract(v, p["mouth_y"], out=t2)
    dist += np.multiply(s, p["curve"], out=t3)
    lip = np.multiply(u, p["lip_side"] / p["width"], out=t3)
    np.clip(lip, 0.0, 1.0, out=lip)
    lip *= p["lip"]
    dist += lip
    half = np.subtract(1.0, s, out=t3)
    np.clip(half, 0.0, 1.0, out=half)
    half *= np.maximum(p["open"], 0.0)
    half += 0.02
    # A band of per-pixel half-width: clip((half - |dist|) * unit + 0.5).
    np.abs(dist, out=dist)
    dist *= unit
    half *= unit
    half += 0.5
    half -= dist
    mouth = np.clip(half, 0.0, 1.0, out=half)
    mouth *= _band(u, p["width"], unit, out=t1)
    mouth *= 0.6 * skin
    img -= mouth

    # Photometric nuisances: lighting gradient, contrast, noise, an occluder.
    img += np.add(p["grad_x"] * x, p["grad_y"] * y, out=t1)
    img -= 0.5
    img *= p["gain"]
    img += 0.5
    # Uniform noise of the drawn spread: a Gaussian draw costs 6x as much here.
    noise = rng.random(out=t1, dtype=np.float32)
    noise -= 0.5
    noise *= p["noise"] * np.float32(12**0.5)
    img += noise
    inside_x = (np.abs(x - p["occ_x"]) < p["occ_w"]).astype(np.float32)
    inside_y = (np.abs(y - p["occ_y"]) < p["occ_h"]).astype(np.float32)
    occluder = np.multiply(inside_x, inside_y, out=t1)
    blend = np.subtract(p["occ_tone"], img, out=t2)
    blend *= occluder
    img += blend
    img *= 255.0
    img += 0.5
    return np.clip(img, 0.0, 255.0, out=img)
