"""Quantization passes: NetworkIR (+ calibration ranges) -> Program in one target's integers.

``QUANTIZERS`` maps a target name to its pass; each takes (net, ranges, options) and returns
(Program, HealthReport). Adding a target adds one entry here and its description in
neurodeploy/targets/.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from neurodeploy.errors import OptionError


def _loihi2(net, ranges, options):
    from neurodeploy.compiler.quantize.fixed_point import LOIHI2, quantize
    from neurodeploy.targets.loihi2 import NETX_FORMAT_OVERRIDES

    fmt = replace(LOIHI2, **NETX_FORMAT_OVERRIDES) if options.netx_format else LOIHI2
    return quantize(net, fmt, ranges, options.per_neuron, tuple(options.high_precision))


def _generic(net, ranges, options):
    from neurodeploy.compiler.quantize.fixed_point import quantize
    from neurodeploy.compiler.quantize.generic import profile_format

    fmt = profile_format(options.weight_bits, options.state_bits, options.decay_bits)
    return quantize(net, fmt, ranges, options.per_neuron, tuple(options.high_precision))


def _spinnaker(net, ranges, options):
    from neurodeploy.compiler.quantize.spinnaker import quantize

    if options.high_precision:
        raise OptionError("spinnaker weights are 16-bit words on every connection already; "
                          "--high-precision applies to --target emulator")
    return quantize(net, ranges, options.per_neuron)


QUANTIZERS: dict[str, Callable[[Any, Any, Any], tuple]] = {"loihi2": _loihi2, "emulator": _generic,
                                                           "spinnaker": _spinnaker}


def quantize(net: Any, options: Any, ranges: Any) -> tuple:
    """The target's quantization pass (``options`` is compiler.compile.Options)."""
    if options.netx_format and options.target != "loihi2":
        raise OptionError(f"--netx-format is a loihi2 number format; it does not apply to --target {options.target}")
    try:
        run = QUANTIZERS[options.target]
    except KeyError:
        raise OptionError(f"unknown target {options.target!r}; choose one of {', '.join(QUANTIZERS)}") from None
    return run(net, ranges, options)
