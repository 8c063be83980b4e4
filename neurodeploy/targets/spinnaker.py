"""SpiNNaker (SpiNN-5 boards) as sPyNNaker 7.4.1 computes IF_curr_exp / IF_curr_delta.

Number formats: s16.15 parameters and state, uint16 ring buffers and weights with a shift per
synapse type, propagators computed on the core at load time (docs/targets.md#spinnaker, from
sPyNNaker's neuron_model_lif_impl.h, synapse_types_exponential_impl.h, synapses.c and
spinn_common's stdfix-exp.c). Limits from SpiNNMachine/sPyNNaker 7.4.1 and the SpiNN-5 board.
"""
from __future__ import annotations

import math

from neurodeploy.targets.base import Limit, Target

FRACTION_BITS = 15  # s16.15
ONE = 1 << FRACTION_BITS
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
WEIGHT_BITS = 16  # uint16 synaptic words and ring-buffer entries
RING_BUFFER_MAX = 0xFFFF
MAX_NEURONS_PER_CORE = 256
DELAY_SLOTS_256 = 32  # 2**(14 - atom_bits - type_bits) with 256 neurons/core
DELAY_EXTENSION_FACTOR = 9  # delay-extension cores give up to 9x the on-core slots
SYNAPTIC_ROW_MAX = 256  # synapses per (pre-neuron, post-core) row
ROUTER_ENTRIES = 1024  # per chip (compressed when over 1023)
CHIPS_PER_BOARD = 48  # SpiNN-5
USABLE_CORES_SPINN5 = 759  # of 856 application cores after monitor/gatherer cores
SDRAM_PER_CHIP = 123_469_792  # usable bytes
DTCM_BYTES = 64 * 1024
EVENTS_PER_MS_PER_CORE = (5_000, 10_000)  # real-time synaptic event budget, Rhodes et al. 2018

# Per-core memory model (an estimate of sPyNNaker 7.4.1's own): what the mapper checks and the
# profile's footprint reports.
NEURON_BYTES = 88  # IF_curr_exp state + parameters per neuron (DTCM)
STACK_BYTES = 2048
WORD_BYTES = 4  # one 32-bit synaptic word: 16-bit weight + delay, type and index
ROW_HEADER_BYTES = 16  # master population table / row header per source neuron
ROUTER_ENTRY_BITS = 96  # key, mask, route (3 x 32 bits)


def delay_slots(max_delay: int) -> int:
    """Ring-buffer slots a core keeps: a power of two above the longest on-core delay."""
    return min(DELAY_SLOTS_256, 2 ** math.ceil(math.log2(max(max_delay, 1) + 1)))


def ring_buffer_bytes(neurons: int, max_delay: int) -> int:
    return 2 * delay_slots(max_delay) * max(neurons, 1) * 2  # exc + inh, uint16


def core_usage(neurons: int, synapses: int, sources: int, max_delay: int) -> dict[str, float]:
    """One core's use of each limit for a slice of ``neurons`` with ``synapses`` incoming synapses
    from ``sources`` distinct source neurons."""
    dtcm = neurons * NEURON_BYTES + ring_buffer_bytes(neurons, max_delay) + STACK_BYTES
    sdram = synapses * WORD_BYTES + sources * ROW_HEADER_BYTES
    return {"neurons": neurons, "dtcm_bytes": dtcm, "sdram_bytes": sdram, "synapses": synapses,
            "delay_steps": max_delay, "fan_in_axons": sources}


def machine_limits(core_chips: list[int], chips_available: int) -> list[dict]:
    """Application cores on the boards available, and router entries on the busiest chip (an
    upper-bound estimate: one entry per core slice that sends to or through it, two each)."""
    usable = USABLE_CORES_SPINN5 * max(1, chips_available // CHIPS_PER_BOARD)
    per_chip: dict[int, int] = {}
    for chip in core_chips:
        per_chip[chip] = per_chip.get(chip, 0) + 1
    router = max(per_chip.values(), default=0) * 2
    return [{"limit": "application cores", "value": len(core_chips), "size": usable,
             "margin": usable - len(core_chips), "unit": "cores",
             "source": "SpiNN-5: about 759 of 856 cores usable by a model"},
            {"limit": "router entries per chip (estimate)", "value": router, "size": ROUTER_ENTRIES,
             "margin": ROUTER_ENTRIES - router, "unit": "entries", "source": "SpiNNaker router: 1024 entries per chip"}]


TARGET = Target(
    name="spinnaker",
    description="SpiNNaker SpiNN-5 (sPyNNaker 7.4.1 IF_curr_exp / IF_curr_delta, s16.15)",
    neurons_per_core=MAX_NEURONS_PER_CORE,
    cores_per_chip=17,  # 18 ARM968 cores, one is the monitor
    chips_per_board=CHIPS_PER_BOARD,
    core_limits={
        "dtcm_bytes": Limit("DTCM per core (neuron state, ring buffers), estimate", DTCM_BYTES, "B",
                            "SpiNNaker datasheet: 64 KiB DTCM per ARM968"),
        "sdram_bytes": Limit("SDRAM per core share (synaptic matrix), estimate", SDRAM_PER_CHIP / 17, "B",
                             "SpiNNMachine 7.4.1: 123,469,792 usable SDRAM bytes per chip, shared by 17 cores"),
        "delay_steps": Limit("synaptic delay in steps (with delay-extension cores)",
                             DELAY_SLOTS_256 * DELAY_EXTENSION_FACTOR, "steps",
                             "sPyNNaker 7.4.1: 2**(14 - atom_bits - type_bits) slots, x9 with delay extensions"),
        "events_per_ms": Limit("synaptic events per ms per core (real time)", EVENTS_PER_MS_PER_CORE[1], "events/ms",
                               "Rhodes et al. 2018: about 5,000-10,000 per core"),
    },
    formats={
        "fraction_bits": FRACTION_BITS, "weight_bits": WEIGHT_BITS, "ring_buffer_max": RING_BUFFER_MAX,
        "threshold": ">=", "reset": "to V_reset only",
    },
    costs={
        "calibrated": True,
        "idle_chip_w": 0.35, "active_core_w": 0.034, "router_bit_pj": 25.0,
        "packet_nj": 1.0, "packet_payload_nj": 1.8, "spinn5_idle_w": 26.84, "spinn5_box_w": 5.04,
        "source": "SpiNNMachine 7.4.1 spinn_machine/version (sPyNNaker's energy report)",
        "packet_bits": 40, "packet_payload_bits": 72,
        "events_per_ms_per_core": EVENTS_PER_MS_PER_CORE,
        "sources": {
            "idle_chip_w": "SpiNNMachine 7.4.1 version_spin1.py WATTS_PER_IDLE_CHIP (Optimising the overall power usage on the SpiNNaker neuromimetic platform: 16.82 W / 48 chips)",
            "active_core_w": "SpiNNMachine 7.4.1 version_spin1.py WATTS_PER_CORE_ACTIVE_OVERHEAD (boxed board, 806 active cores: 27.50 W over idle)",
            "router_bit_pj": "SpiNNMachine 7.4.1 version_spin1.py JOULES_PER_ROUTER_BIT (SpiNNaker: A 1-W 18 core system-on-chip ..., 25 pJ/bit)",
            "packet_nj": "SpiNNMachine 7.4.1 JOULES_PER_PACKET = 40 bits x 25 pJ (multicast, local or external)",
            "packet_payload_nj": "SpiNNMachine 7.4.1 JOULES_PER_PACKET_WITH_PAYLOAD = 72 bits x 25 pJ (P2P, FR)",
            "spinn5_idle_w": "SpiNNMachine 7.4.1 version_5.py WATTS_FOR_48_CHIP_BOARD_IDLE_COST",
            "spinn5_box_w": "SpiNNMachine 7.4.1 version_5.py WATTS_FOR_48_CHIP_BOX_COST_OVERHEAD (31.88 W boxed - 26.84 W)",
            "events_per_ms_per_core": "Rhodes et al. 2018 (sPyNNaker): about 5,000-10,000 synaptic events per ms per core in real time",
        },
    },
    sources=(
        "sPyNNaker 7.4.1: neuron_model_lif_impl.h, synapse_types_exponential_impl.h, synapses.c",
        "spinn_common: stdfix-exp.c, maths-util.h",
        "SpiNNMachine 7.4.1: machine versions 3 and 5",
    ),
    default_chips=48,
    inputs_on_cores=True,
    core_usage=core_usage,
    machine_limits=machine_limits,
)
