"""Data sets and spike encodings for the model zoo (numpy + scikit-learn only, no downloads).

Everything here is deterministic: the digits split uses ``random_state=0`` and the spike
encodings draw from ``np.random.default_rng(seed)``.  :func:`test_set` returns exactly the
inputs the zoo's accuracies were measured on.

Shapes: digits MLP inputs ``(batch, T, 64)``, digits conv inputs ``(batch, T, 1, 8, 8)``,
temporal inputs ``(batch, T, 4)``; all float32 with values 0/1.  Labels are int64.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

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


def train_set(name: str, epoch: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Training inputs and labels, redrawn per ``epoch`` (seed ``TRAIN_SEED + epoch``)."""
    if name in ("digits_mlp", "digits_conv"):
        x_tr, y_tr, _, _ = _digits()
        return encode(_digits_shape(name, x_tr), DIGITS_STEPS, TRAIN_SEED + epoch), np.array(y_tr)
    if name == "temporal_rnn":
        return temporal_task(TEMPORAL_TRAIN_SIZE, seed=TRAIN_SEED + epoch)
    raise KeyError(f"no training set for model {name!r}")


def test_set(name: str) -> Tuple[np.ndarray, np.ndarray]:
    """The fixed test inputs ``(B, T, *input_shape)`` float32 and labels ``(B,)`` of a model.

    ``lif_paper`` returns the NIR paper's single-neuron input (1, 1000, 1) and an empty
    label array.
    """
    if name in ("digits_mlp", "digits_conv"):
        _, _, x_te, y_te = _digits()
        return encode(_digits_shape(name, x_te), DIGITS_STEPS, TEST_SEED), np.array(y_te)
    if name == "temporal_rnn":
        return temporal_task(TEMPORAL_TEST_SIZE, seed=TEST_SEED)
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
