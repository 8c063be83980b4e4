"""The loihi2 kernel against Lava and a Loihi 2 chip (NIR paper data, tests/data/nir_paper)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurodeploy.compiler.quantize.fixed_point import LOIHI2
from neurodeploy.emulator.fixed_point import run
from neurodeploy.targets.fixed_point_math import trunc_shr
from neurodeploy.format.program import Program, QConnection, QPopulation

DATA = Path(__file__).parents[1] / "data" / "nir_paper" / "lif"


def one_neuron_program(weight: int, du: int, dv: int, vth: int, bias: int = 0, weight_exp: int = 0) -> Program:
    params = {"du": np.array([du]), "dv": np.array([dv]), "vth": np.array([vth]),
              "bias_mant": np.array([bias]), "bias_exp": np.array([0]), "v_init": np.array([0])}
    pop = QPopulation("lif", "cuba_lif", "LIF", (1,), True, np.ones(1), params, latency=1)
    mode = "mixed" if weight < 0 else "exc"
    conn = QConnection("w", "input", "lif", "dense", 1, 1, False, {"weight": np.array([[weight]])},
                       {"weight_exp": weight_exp, "sign_mode": mode, "delay": 0})
    return Program("loihi2", {"input": (1,)}, [pop], [conn], {"out": "lif"},
                   {"format": LOIHI2.__dict__, "hop_latency": 1})


@pytest.fixture(scope="module")
def paper_run():
    lava = np.loadtxt(DATA / "lif_lava_cpu_fixed.csv", delimiter=",")
    # The integers of the paper's Lava run (PROVENANCE.md): weight 10, du 4095, dv 163, vth 25.
    out = run(one_neuron_program(10, 4095, 163, 25), lava[:, 0].reshape(1, -1, 1), record=("v", "u"))
    return lava, out["v.lif"][0, :, 0], out["spikes.lif"][0, :, 0]


def test_reproduces_lava_cpu_fixed_point_on_every_step(paper_run):
    lava, v, spikes = paper_run
    assert np.array_equal(spikes, lava[:, 2])
    assert np.array_equal(v, lava[:, 1])
    assert spikes.sum() == 4


def test_reproduces_the_loihi2_chip_trace(paper_run):
    _, v, spikes = paper_run
    chip = np.loadtxt(DATA / "lif_lava_loihi_fixed.csv", delimiter=",")
    assert np.array_equal(spikes, chip[:, 2])
    quiet = spikes == 0
    assert np.array_equal(v[quiet], chip[quiet, 1])
    # The chip's probe reports 128 on spike steps where the CPU model reports the reset value 0.
    assert np.all(chip[~quiet, 1] == 128) and np.all(v[~quiet] == 0)


def test_one_step_per_hop():
    x = np.zeros((1, 6, 1))
    x[0, 2, 0] = 1
    out = run(one_neuron_program(100, 4095, 0, 1000), x, record=("u",))
    u = out["u.lif"][0, :, 0]
    assert u.tolist() == [0, 0, 0, 100 << 6, 0, 0]


def test_du_plus_one_and_truncation_toward_zero():
    # du = 0 still decays u by 1/4096 per step; negative values round toward zero.
    x = np.zeros((1, 4, 1))
    x[0, 0, 0] = 1
    out = run(one_neuron_program(-100, 0, 0, 100000), x, record=("u",))
    u = out["u.lif"][0, :, 0]
    first = -100 << 6
    assert u[1] == first
    assert u[2] == trunc_shr(np.array(first * 4095), 12)
    assert u[2] == -(abs(first) * 4095 >> 12)


def test_v_saturates_and_u_wraps_once():
    # weight 255 << 7 << 6 per step: u grows by ~2^21 a step and barely decays (du = 0)
    prog = one_neuron_program(255, 0, 4095, 2**17 - 1, weight_exp=7)
    out = run(prog, np.ones((1, 40, 1)), record=("u", "v"))
    u, v = out["u.lif"][0, :, 0], out["v.lif"][0, :, 0]
    assert v.max() <= 2**23 - 1
    assert np.any(np.diff(u) < 0)  # u wrapped around instead of saturating
    assert u.min() >= -(2**23) - 2**21  # it wraps once, by 2^24
