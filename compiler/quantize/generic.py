"""The generic integer profile of the emulator target: Loihi-like, configurable, no quirks."""
from __future__ import annotations

from neurodeploy.compiler.quantize.fixed_point import FixedPointFormat
from neurodeploy.errors import OptionError


def profile_format(weight_bits: int | None = None, state_bits: int | None = None,
                   decay_bits: int | None = None) -> FixedPointFormat:
    weight_bits = 8 if weight_bits is None else weight_bits
    state_bits = 24 if state_bits is None else state_bits
    decay_bits = 12 if decay_bits is None else decay_bits
    for name, value, lo, hi in (("weight", weight_bits, 2, 16), ("state", state_bits, 8, 32),
                                ("decay", decay_bits, 4, 24)):
        if not lo <= value <= hi:
            raise OptionError(f"--{name}-bits must be in {lo}..{hi}, got {value}")
    return FixedPointFormat(
        target="emulator", model="generic_lif", state_bits=state_bits, weight_bits=weight_bits,
        decay_bits=decay_bits, activation_shift=0, threshold_shift=0, du_offset=0, hop_latency=0,
        weight_exp_range=(0, 24), bias_mant_bits=state_bits, bias_exp_range=(0, 0), delay_max=1 << 16,
        reset_subtract=True,
    )
