"""Data sets and spike encodings for the model zoo (numpy + scikit-learn only, no downloads).

Everything here is deterministic: the digits split uses ``random_state=0`` and the spike
encodings draw from ``np.random.default_rng(seed)``.  :func:`test_set` returns exactly the
inputs the zoo's accuracies were measured on.

Shapes: digits MLP inputs ``(batch, T, 64)``, digits conv inputs ``(batch, T, 1, 8, 8)``,
temporal inputs ``(batch, T, 4)``, event-camera inputs ``(batch, T, 2, 64, 64)``; all float32
with values 0/1.  Labels are int64.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional, Tuple

import numpy as np

DIGITS_STEPS = 20  # time steps per digit presentation
DIGITS_MAX_RATE = 1.0  # spike probability per step of a pixel at full intensity (16)
DIGITS_TEST_SIZE = 0.25
DIGITS_SPLIT_SEED = 0
TEST_SEED = 1234  # encoding seed of every test set
TRAIN_SEED = 0  # base seed of the training encodings (the epoch number is added)

TEMPORAL_STEPS = 40
TEMPORAL_CHANNELS = 4
TEMPORAL_BURST = 3  # spikes per burst (on consecutive steps)
TEMPORAL_MIN_GAP = 4  # minimum distance between burst onsets
TEMPORAL_NOISE = 0.02  # background spike probability per channel and step
TEMPORAL_TRAIN_SIZE = 4096
TEMPORAL_TEST_SIZE = 1024

EVENTS_SIZE = 64  # sensor height = width (pixels)
EVENTS_STEPS = 24
EVENTS_MOTIONS = ("right", "left", "down", "up", "expand", "contract")  # the classes
EVENTS_SHAPES = ("disk", "square", "diamond")
EVENTS_SPEED = (0.7, 1.6)  # translation, pixels per step
EVENTS_GROWTH = (0.25, 0.45)  # radius change of expand/contract, pixels per step
EVENTS_RADIUS = (6.0, 12.0)  # radius at the small end of the motion
EVENTS_CONTRAST = (0.6, 1.4)  # log intensity of the object above the background
EVENTS_THRESHOLD = (0.15, 0.3)  # contrast threshold per sample ...
EVENTS_MISMATCH = 0.15  # ... times a per-pixel factor in 1 +- this
EVENTS_NOISE = 0.002  # background event probability per pixel, polarity and step
EVENTS_TRAIN_SIZE = 1024
EVENTS_TEST_SIZE = 512
EVENTS_CHUNK = 128  # samples drawn from one generator (see events_task)


@lru_cache(maxsize=1)
def _digits() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = data.images.astype(np.float32)  # (1797, 8, 8), values 0..16
    labels = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images,
        labels,
        test_size=DIGITS_TEST_SIZE,
        random_state=DIGITS_SPLIT_SEED,
        stratify=labels,
    )
    for a in (x_tr, x_te, y_tr, y_te):
        a.setflags(write=False)
    return x_tr, y_tr, x_te, y_te


def digits_split() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: 8x8 images (float32, 0..16) and labels.

    1347 training and 450 test images (stratified, ``random_state=0``).
    """
    return tuple(np.array(a) for a in _digits())  # type: ignore[return-value]


def encode(
    images: np.ndarray, steps: int = DIGITS_STEPS, seed: int = TEST_SEED,
    max_rate: float = DIGITS_MAX_RATE,
) -> np.ndarray:
    """Bernoulli rate code: pixel value ``p`` (0..16) spikes with probability
    ``p/16 * max_rate`` at each of ``steps`` steps.

    ``images`` has shape ``(N, *shape)``; returns ``(N, steps, *shape)`` float32 0/1,
    identical for identical ``seed``.
    """
    images = np.asarray(images, dtype=np.float32)
    prob = np.clip(images / 16.0 * max_rate, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    u = rng.random((images.shape[0], steps, *images.shape[1:]), dtype=np.float32)
    return (u < prob[:, None]).astype(np.float32)


def _digits_shape(name: str, images: np.ndarray) -> np.ndarray:
    if name == "digits_mlp":
        return images.reshape(len(images), 64)
    if name == "digits_conv":
        return images.reshape(len(images), 1, 8, 8)
    raise KeyError(name)


def temporal_task(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """"Which channel burst first?" — a task that needs memory.

    Each of ``TEMPORAL_CHANNELS`` channels emits one burst of ``TEMPORAL_BURST`` spikes at a
    random onset (onsets at least ``TEMPORAL_MIN_GAP`` steps apart, all within the
    ``TEMPORAL_STEPS`` window), on top of background noise.  The label is the channel whose
    burst came first; every channel bursts once, so at the end of the trial only a memory of
    the order tells the classes apart.  Returns ``(inputs (n, T, C) float32, labels (n,))``.
    """
    rng = np.random.default_rng(seed)
    T, C, B, gap = TEMPORAL_STEPS, TEMPORAL_CHANNELS, TEMPORAL_BURST, TEMPORAL_MIN_GAP
    x = (rng.random((n, T, C)) < TEMPORAL_NOISE).astype(np.float32)
    labels = np.empty(n, dtype=np.int64)
    latest = T - B  # last onset that fits the whole burst
    slack = latest - gap * (C - 1)
    for k in range(n):
        # C sorted onsets with spacing >= gap: sorted uniform draws plus the minimum gaps
        base = np.sort(rng.integers(0, slack + 1, size=C))
        onsets = base + gap * np.arange(C)
        order = rng.permutation(C)  # order[j] = channel of the j-th burst
        for j, ch in enumerate(order):
            x[k, onsets[j]: onsets[j] + B, ch] = 1.0
        labels[k] = order[0]
    return x, labels


def _events_motion(
    labels: np.ndarray, rng: np.random.Generator
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per sample: start centre ``(y0, x0)``, velocity ``(vy, vx)``, start radius ``r0`` and
    radius rate ``vr`` (pixels, pixels per step) of the motion class ``labels``.

    The whole path stays inside the sensor; the position along the free range is random.
    """
    n, T, half = len(labels), EVENTS_STEPS, (EVENTS_SIZE - 1) / 2
    speed = rng.uniform(*EVENTS_SPEED, n)
    growth = rng.uniform(*EVENTS_GROWTH, n)
    small = rng.uniform(*EVENTS_RADIUS, n)
    sign = np.where(labels % 2 == 0, 1.0, -1.0)  # right/down/expand: +, left/up/contract: -
    vx = np.where(labels < 2, sign * speed, 0.0)
    vy = np.where((labels >= 2) & (labels < 4), sign * speed, 0.0)
    vr = np.where(labels >= 4, sign * growth, 0.0)
    r0 = np.where(labels == 5, small + growth * T, small)
    r_max = small + np.where(labels >= 4, growth * T, 0.0)
    free_y = np.maximum(half - r_max - np.abs(vy) * T / 2, 0.0)
    free_x = np.maximum(half - r_max - np.abs(vx) * T / 2, 0.0)
    y0 = half + free_y * rng.uniform(-1, 1, n) - vy * T / 2
    x0 = half + free_x * rng.uniform(-1, 1, n) - vx * T / 2
    return y0, x0, vy, vx, r0, vr


def _events_render(
    kind: np.ndarray, y: np.ndarray, x: np.ndarray, r: np.ndarray
) -> np.ndarray:
    """Anti-aliased coverage (0..1) of shapes ``kind`` centred at ``(y, x)`` with radius ``r``:
    ``(n, S, S)`` float32 for per-sample ``(n,)`` arrays."""
    grid = np.arange(EVENTS_SIZE, dtype=np.float32)
    dy = np.abs(grid[None, :, None] - y.astype(np.float32)[:, None, None])
    dx = np.abs(grid[None, None, :] - x.astype(np.float32)[:, None, None])
    dist = np.where(kind[:, None, None] == 0, np.sqrt(dy * dy + dx * dx),
                    np.where(kind[:, None, None] == 1, np.maximum(dy, dx),
                             (dy + dx) * np.float32(np.sqrt(0.5))))
    return np.clip(r.astype(np.float32)[:, None, None] + 0.5 - dist, 0.0, 1.0)


def _events_chunk(n: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` samples of :func:`events_task`, every random draw from ``rng``."""
    S, T = EVENTS_SIZE, EVENTS_STEPS
    labels = rng.integers(0, len(EVENTS_MOTIONS), n).astype(np.int64)
    kind = rng.integers(0, len(EVENTS_SHAPES), n)
    contrast = rng.uniform(*EVENTS_CONTRAST, n).astype(np.float32)[:, None, None]
    threshold = (rng.uniform(*EVENTS_THRESHOLD, n)[:, None, None]
                 * rng.uniform(1 - EVENTS_MISMATCH, 1 + EVENTS_MISMATCH, (n, S, S))).astype(np.float32)
    y0, x0, vy, vx, r0, vr = _events_motion(labels, rng)

    def log_intensity(t: float) -> np.ndarray:
        return contrast * _events_render(kind, y0 + vy * t, x0 + vx * t, r0 + vr * t)

    x = np.zeros((n, T, 2, S, S), dtype=np.float32)
    ref = log_intensity(-1.0)  # each pixel's level at its last event
    for t in range(T):
        level = log_intensity(float(t))
        on = level - ref >= threshold
        off = ref - level >= threshold
        ref = np.where(on | off, level, ref)
        noise = rng.random((n, 2, S, S), dtype=np.float32) < EVENTS_NOISE
        x[:, t, 0] = on | noise[:, 0]
        x[:, t, 1] = off | noise[:, 1]
    return x, labels


def events_task(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Event-camera motion classes: which way does a bright shape move?

    A disk, square or diamond (random size and brightness) moves right, left, down or up,
    expands or contracts over ``EVENTS_STEPS`` steps in front of a dark background. A DVS
    pixel model turns the log intensity into events: a pixel emits an ON (channel 0) or OFF
    (channel 1) event when its log intensity moved by its contrast threshold (per-sample level,
    per-pixel mismatch) since its last event, at most one per step and polarity, plus
    background noise events. A translated object has ON events on its leading and OFF events
    on its trailing edge; an expanding one ON all around, a contracting one OFF.

    Samples come in chunks of ``EVENTS_CHUNK``, chunk ``k`` drawn from
    ``np.random.default_rng((seed, k))``: ``events_task(m, s)`` is the first ``m`` samples of
    ``events_task(n, s)`` for any ``n >= m``.
    Returns ``(inputs (n, T, 2, S, S) float32 0/1, labels (n,) int64)``.
    """
    x = np.empty((n, EVENTS_STEPS, 2, EVENTS_SIZE, EVENTS_SIZE), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    for k, start in enumerate(range(0, n, EVENTS_CHUNK)):
        stop = min(start + EVENTS_CHUNK, n)
        xc, yc = _events_chunk(EVENTS_CHUNK, np.random.default_rng((seed, k)))
        x[start:stop], labels[start:stop] = xc[: stop - start], yc[: stop - start]
    return x, labels


def train_set(name: str, epoch: int = 0, n: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Training inputs and labels, redrawn per ``epoch`` (seed ``TRAIN_SEED + epoch``).

    ``n``: only the first ``n`` samples (the same ones the whole set starts with).
    """
    if name in ("digits_mlp", "digits_conv"):
        x_tr, y_tr, _, _ = _digits()
        x = encode(_digits_shape(name, x_tr), DIGITS_STEPS, TRAIN_SEED + epoch)
        return x[:n], np.array(y_tr[:n])
    if name == "temporal_rnn":
        x, y = temporal_task(TEMPORAL_TRAIN_SIZE, seed=TRAIN_SEED + epoch)
        return x[:n], y[:n]
    if name == "events_motion":
        size = EVENTS_TRAIN_SIZE if n is None else min(n, EVENTS_TRAIN_SIZE)
        return events_task(size, seed=TRAIN_SEED + epoch)
    raise KeyError(f"no training set for model {name!r}")


def test_set(name: str, n: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The fixed test inputs ``(B, T, *input_shape)`` float32 and labels ``(B,)`` of a model.

    ``n``: only the first ``n`` samples (cheaper for ``events_motion``, which then generates
    only those). ``lif_paper`` returns the NIR paper's single-neuron input (1, 1000, 1) and an
    empty label array.
    """
    if name in ("digits_mlp", "digits_conv"):
        _, _, x_te, y_te = _digits()
        x = encode(_digits_shape(name, x_te), DIGITS_STEPS, TEST_SEED)
        return x[:n], np.array(y_te[:n])
    if name == "temporal_rnn":
        x, y = temporal_task(TEMPORAL_TEST_SIZE, seed=TEST_SEED)
        return x[:n], y[:n]
    if name == "events_motion":
        size = EVENTS_TEST_SIZE if n is None else min(n, EVENTS_TEST_SIZE)
        return events_task(size, seed=TEST_SEED)
    if name == "lif_paper":
        return lif_paper_input(), np.zeros(0, dtype=np.int64)
    raise KeyError(f"no test set for model {name!r}")


# The input spike train of the NIR paper's LIF experiment (paper/lif in neuromorphs/NIR):
# 1000 steps of dt = 1e-4 s, amplitude-1 spikes at these (0-based) rows of lif_*.csv.
LIF_PAPER_STEPS = 1000
LIF_PAPER_SPIKE_STEPS: Tuple[int, ...] = (
    60, 220, 270, 310, 320, 350, 370, 400, 410, 430, 440, 450,
    460, 470, 480, 490, 500, 510, 520, 530, 670, 680, 690, 700,
    710, 720, 730, 740, 750, 760, 770, 780, 840, 850,
)


def lif_paper_input() -> np.ndarray:
    """``(1, 1000, 1)`` float32: the input column of the paper's ``lif_norse.csv``."""
    x = np.zeros((1, LIF_PAPER_STEPS, 1), dtype=np.float32)
    x[0, list(LIF_PAPER_SPIKE_STEPS), 0] = 1.0
    return x
