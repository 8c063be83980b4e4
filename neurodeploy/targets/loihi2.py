"""Intel Loihi 2 as Lava 0.10.0's fixed-point CUBA LIF computes it.

Number formats: ../docs/targets.md#loihi2 (from Lava's `lava/proc/lif/models.py`,
`lava/proc/dense/models.py`, `lava/utils/weightutils.py`). Resource numbers: Intel's Loihi 2
brief (2021); the per-core memory model is an estimate, since Intel publishes the real one only
to its research community.
"""
from __future__ import annotations

from neurodeploy.targets.base import Limit, Target

STATE_BITS = 24  # u and v are 24-bit signed
V_MAX = 2**23 - 1  # v saturates at +-(2^23 - 1)
U_WRAP = 2**23  # u wraps once by 2^24 beyond +-2^23
DECAY_BITS = 12  # du, dv in 0..4095
DECAY_ONE = 4096
THRESHOLD_SHIFT = 6  # effective threshold is vth << 6
ACTIVATION_SHIFT = 6  # a synaptic sum enters u as a << 6
WEIGHT_BITS = 8  # mantissa bits (sign included for mixed-sign matrices)
WEIGHT_EXP_RANGE = (-8, 7)
VTH_MAX = 2**17 - 1  # vth << 6 must stay inside 24 bits
BIAS_MANT_BITS = 13  # bias mantissa, signed
BIAS_EXP_RANGE = (0, 7)
DELAY_MAX = 62  # synaptic delay in steps (DelayDense holds 0..63; the hardware brief says 62)

# What Lava 0.10.0 itself holds (the Lava backend and the netx export check artifacts against it).
LAVA_FORMAT = {"state_bits": STATE_BITS, "decay_bits": DECAY_BITS, "activation_shift": ACTIVATION_SHIFT,
               "threshold_shift": THRESHOLD_SHIFT, "du_offset": 1, "weight_bits": WEIGHT_BITS}
READOUT_VTH = 2**17  # vth << 6 = 2**23 > any saturated v: a non-spiking readout never fires in Lava's LIF
LAVA_DELAY_MAX = 63  # DelayDense / DelaySparse hold 6-bit delays
# Weight mantissas that Lava's truncation (lava/utils/weightutils.py) keeps exactly, by the sign
# mode it derives from the values (all >= 0 / all <= 0 / both).
WEIGHT_RANGES = {"exc": (0, 255), "inh": (-255, 0), "mixed": (-256, 254)}

# lava-dl's netx format holds part of this: weight exponent 0 and every LIF's bias exponent 6
# (lava-dl 0.6.0, netx/hdf5.py: Network.get_neuron_params), and no start state (u = v = 0).
NETX_BIAS_EXP = 6
NETX_FORMAT_OVERRIDES = {"weight_exp_range": (0, 0), "bias_exp_range": (NETX_BIAS_EXP, NETX_BIAS_EXP),
                         "start_state": False}

# Memory estimate per core (bytes): what a mapper must respect on one core.
SYNAPSE_BYTES = 1.0  # an 8-bit weight mantissa
NEURON_STATE_BYTES = 12.0  # u, v (24 bits each), du/dv/vth/bias
AXON_BYTES = 4.0  # one routing entry per output axon

# Conv weights: ESTIMATE. A core stores a conv kernel once, the non-zero entries of the output
# channels it holds, shared by every position of its slice, instead of one weight per synapse.
# Loihi (1) compresses conv layers this way (shared synapse lists; Rueckauer et al., "NxTF: An API
# and Compiler for Deep Spiking Neural Networks on Intel Loihi", ACM JETC 18(3), 2022: "exploiting
# Loihi's weight sharing features"); Intel's Loihi 2 brief (2021) names convolutional network
# compression among Loihi 2's features. The real encoding (per-axon list headers, padding at the
# borders) is published only to Intel's research community.
SHARED_CONV_WEIGHTS = True


def core_usage(neurons: int, synapses: int, sources: int, max_delay: int,
               stored_weights: int | None = None) -> dict[str, float]:
    """One core's use of each limit (the memory model above is an estimate). ``stored_weights``:
    the weights the core holds when conv kernels are shared (default: one per synapse)."""
    weights = synapses if stored_weights is None else stored_weights
    memory = weights * SYNAPSE_BYTES + neurons * NEURON_STATE_BYTES + sources * AXON_BYTES
    return {"neurons": neurons, "memory_bytes": memory, "fan_in_axons": sources, "synapses": synapses,
            "stored_weights": weights}


TARGET = Target(
    name="loihi2",
    description="Intel Loihi 2 (Lava fixed_pt CUBA LIF)",
    neurons_per_core=8192,
    cores_per_chip=128,
    chips_per_board=1,
    core_limits={
        "memory_bytes": Limit("memory per core (synapses + neuron state + axons), estimate", 192 * 1024, "B",
                              "Loihi 2 brief, Intel 2021: 192 KB per neural core"),
        "fan_in_axons": Limit("input axons per core", 4096, "axons",
                              "Davies et al. 2018 (Loihi 1); kept for Loihi 2 as an estimate"),
        "fan_out_axons": Limit("output axons per core", 4096, "axons",
                               "Davies et al. 2018 (Loihi 1); kept for Loihi 2 as an estimate"),
    },
    formats={
        "state_bits": STATE_BITS, "decay_bits": DECAY_BITS, "threshold_shift": THRESHOLD_SHIFT,
        "activation_shift": ACTIVATION_SHIFT, "weight_bits": WEIGHT_BITS,
        "weight_exp_range": WEIGHT_EXP_RANGE, "vth_max": VTH_MAX, "bias_mant_bits": BIAS_MANT_BITS,
        "bias_exp_range": BIAS_EXP_RANGE, "delay_max": DELAY_MAX,
    },
    costs={
        "calibrated": False,
        "note": "Loihi 2 publishes no per-operation energy; Loihi 1 figures (Davies et al. 2018, Table 2) used as an uncalibrated estimate",
        "synaptic_op_pj": 23.6, "neuron_update_active_pj": 81.0, "neuron_update_idle_pj": 52.0,
        "spike_in_tile_pj": 1.7, "tile_hop_pj": 3.5, "barrier_sync_ns": (113, 465),
        "barrier_sync_tiles": (1, 32),  # the tile counts the two barrier figures belong to
        "cores_per_tile": 4,  # Loihi 1: 128 cores in 32 tiles (the 1-32 tile range of the barrier figure)
        "mesh_width_tiles": 4,  # ASSUMPTION: tiles placed row-major in a mesh 4 tiles wide (hop counts)
        "sources": {
            "synaptic_op_pj": "Davies et al., IEEE Micro 38(1) 2018, Table 2: synaptic spike operation, 23.6 pJ",
            "neuron_update_active_pj": "Davies et al. 2018, Table 2: neuron update, active, 81 pJ",
            "neuron_update_idle_pj": "Davies et al. 2018, Table 2: neuron update, inactive, 52 pJ",
            "spike_in_tile_pj": "Davies et al. 2018, Table 2: within-tile spike energy, 1.7 pJ",
            "tile_hop_pj": "Davies et al. 2018, Table 2: cross-tile spike energy per tile hop (3.0-4.0 pJ; 3.5 used)",
            "barrier_sync_ns": "Davies et al. 2018, Table 2: barrier synchronization per time step, 113-465 ns for 1-32 tiles",
            "cores_per_tile": "Davies et al. 2018: 128 cores per chip, 4 per tile",
            "mesh_width_tiles": "assumption of neurodeploy (the mesh placement is not published for Loihi 2)",
        },
    },
    sources=(
        "Lava 0.10.0 fixed_pt models: lava/proc/lif/models.py, lava/proc/dense/models.py, lava/utils/weightutils.py",
        "Intel, Loihi 2 brief (2021): 128 cores/chip, 8192 neurons and 192 KB per core",
        "Davies et al., IEEE Micro 38(1), 2018: Loihi 1 limits and Table 2 energies",
    ),
    core_usage=core_usage,
    conv_tiles=True,  # conv-fed layers as 2-D tiles (the cores are an estimate: Lava partitions processes itself)
    shared_conv_weights=SHARED_CONV_WEIGHTS,
)
