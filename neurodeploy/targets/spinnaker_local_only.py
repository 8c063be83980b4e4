"""Which conv connections of a spinnaker program sPyNNaker 7.4.1 computes local-only.

sPyNNaker 7.4.1 can run a conv layer as ``ConvolutionConnector`` projections with
``Convolution()`` synapses between per-channel ``Grid2D`` populations: the receiving core keeps
the kernel in DTCM and computes the synapses from each spike, instead of reading expanded
``FromListConnector`` rows from SDRAM. Its local-only path is exact only in some cases
(../shared/specs/convolution.md, "sPyNNaker 7.4.1: local-only convolution"; its
``convolution_connector.py``, ``local_only_convolution.py`` and ``local_only_conv_impl.c``):

- stride 1, dilation 1, an odd square kernel, the same padding on both axes, 0 or k // 2;
- the receiving population is ``IF_curr_exp`` (the wheel ships only ``IF_curr_exp_conv.aplx``)
  and every projection into it is a Convolution one (``LocalOnlyConvolution.merge``);
- one delay for the whole projection, on the core (no delay-extension stage);
- weights are ``round(w * weight_scale)`` as int16: a word above 32767 wraps to the other sign.

Where all of these hold, the local-only arithmetic equals what the artifact and the emulator
compute: the ring-buffer shift comes from ``max_expected_summed_weight`` as for FromList rows;
a kernel word is ``round(±word / scale * scale)`` = the artifact's word (the same
round-half-even, exact for words <= 32767); each weight is added to the same uint16 ring-buffer
slot ``time + delay`` with the same saturation at 0xFFFF, excitatory for positive and inhibitory
for negative weights; a zero weight is skipped, which adds nothing. So the decision never changes
the integers, only how sPyNNaker is asked to compute them.

Every other conv connection stays FromList, with the reason recorded. The compiler records the
decision in each conv connection's attrs (``local_only``, ``local_only_reason``); the backend,
``export --format pynn``, ``check`` and ``inspect`` read it from there. Artifacts without it
(compiled before the decision existed) are FromList throughout.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

MODEL = "IF_curr_exp"  # the only model with a local-only conv binary in the 7.4.1 wheel
INT16_MAX = 32767  # a larger word wraps to -32768 and lands on the other receptor
MAX_DELAY = 16  # on-core delay slots for any slice of <= 256 neurons with 2 synapse types: 32
ATTR, REASON_ATTR = "local_only", "local_only_reason"
OLD_ARTIFACT = "artifact compiled before the local-only decision was recorded: FromList (recompile to decide)"


def grid2d_size(n: int, aspect_ratio: float) -> tuple[int, int] | None:
    """``pyNN.space.Grid2D(aspect_ratio).calculate_size(n)`` as pyNN 0.12 computes it, or None
    where it raises (sPyNNaker takes a Grid2D population's (width, height) from this)."""
    nx = math.sqrt(n * aspect_ratio)
    if not math.isclose(n % nx, 0, rel_tol=1e-12, abs_tol=1e-12):
        return None
    nx = int(round(nx))
    return nx, n // nx


def channel_grid(shape: Iterable[int]) -> tuple[int, int, int]:
    """(C, H, W) of a conv's 2-D in/out shape."""
    c, h, w = (int(s) for s in shape)
    return c, h, w


def _geometry_reason(conn: Any) -> str | None:
    """Why the conv's geometry is not one of 7.4.1's exact local-only cases (None: it is)."""
    a = conn.attrs
    if len(a["in_shape"]) != 3:
        return "1-D conv: local-only needs 2-D populations (Grid2D)"
    kernel = np.shape(conn.arrays["weight"])
    kh, kw = int(kernel[-2]), int(kernel[-1])
    pair = lambda v: [int(x) for x in np.atleast_1d(v)] * (2 if np.size(v) == 1 else 1)  # noqa: E731
    stride, padding, dilation = pair(a["stride"]), pair(a["padding"]), pair(a["dilation"])
    if stride != [1, 1]:
        return (f"stride {tuple(stride)}: 7.4.1 computes strided local-only convs wrongly (the whole kernel is "
                f"written around one centre post)")
    if dilation != [1, 1]:
        return f"dilation {tuple(dilation)}: ConvolutionConnector has no dilation"
    if kh != kw or kh % 2 == 0:
        return f"kernel {kh}x{kw}: 7.4.1 is exact for odd square kernels only"
    if padding[0] != padding[1] or padding[0] not in (0, kh // 2):
        return f"padding {tuple(padding)}: 7.4.1 is exact for padding 0 or k//2 = {kh // 2} on both axes"
    for label, shape in (("input", a["in_shape"]), ("output", a["out_shape"])):
        _, h, w = channel_grid(shape)
        if grid2d_size(h * w, w / h) != (w, h):
            return f"{label} grid {h}x{w}: pyNN's Grid2D cannot express it (aspect-ratio rounding)"
    return None


def _word_reason(conn: Any) -> str | None:
    words = np.asarray(conn.arrays["weight"], dtype=np.int64)
    big = int(words.max(initial=0))
    if big > INT16_MAX:
        return (f"a weight word of {big} > {INT16_MAX}: ConvolutionConnector stores int16 kernel words "
                f"(32768 and above wrap to the other receptor)")
    return None


def spynnaker_delay_steps(steps: int, timestep_us: int) -> float:
    """The delay in steps that 7.4.1's local-only path takes for ``steps * dt`` ms: the synapse
    dynamics rounds it (``rint(d * per_ms) * ts_ms``), get_delay_for_source multiplies by per_ms
    again and truncates with int(): a product just below a whole number loses a step."""
    ts_ms, per_ms = timestep_us / 1000.0, 1000.0 / timestep_us
    rounded = float(np.rint(steps * ts_ms * per_ms) * ts_ms)
    return rounded * per_ms


def _delay_reason(conn: Any, timestep_us: int) -> str | None:
    if "delay" in conn.arrays:
        return "per-synapse delays: a Convolution projection has one delay"
    delay = int(conn.attrs.get("delay", 0))
    if not 1 <= delay <= MAX_DELAY:
        return (f"a delay of {delay} steps: local-only here takes on-core delays of 1..{MAX_DELAY} steps "
                f"(no delay-extension stage)")
    if int(spynnaker_delay_steps(delay, timestep_us)) != delay:
        return (f"a delay of {delay} steps of {timestep_us} us: sPyNNaker's float conversion truncates it to "
                f"{int(spynnaker_delay_steps(delay, timestep_us))} steps on the local-only path")
    return None


def intrinsic_reason(conn: Any, models: Mapping[str, str], timestep_us: int = 1000) -> str | None:
    """Why ``conn`` alone cannot be local-only, every reason joined by "; " (None: it can, if its
    target takes only such convs)."""
    if conn.kind != "conv":
        return f"a {conn.kind} connection"
    if conn.recurrent or conn.source == conn.target:
        return "recurrent: a population with Convolution synapses cannot feed itself through FromList rows"
    reasons = []
    model = models.get(conn.target)
    if model != MODEL:
        reasons.append(f"target '{conn.target}' is {model}: sPyNNaker 7.4.1 ships local-only convolution for {MODEL} "
                       f"only")
    reasons += [r for r in (_geometry_reason(conn), _delay_reason(conn, timestep_us), _word_reason(conn)) if r]
    return "; ".join(reasons) or None


def decide(program: Any) -> dict[str, dict[str, Any]]:
    """Per conv connection: ``{"local_only": bool, "reason": str}`` (reason empty when local-only).

    A conv is local-only when it is one of the exact cases, every connection into its target is
    such a conv (a Convolution population accepts no other projection kind), and each population
    it touches has one channel grid (C, H, W) for all its local-only convs.
    """
    models = {p.name: p.model for p in program.populations}
    conns = list(program.connections)
    timestep_us = int(round(float(program.attrs.get("time_step_ms", 1.0)) * 1000.0))
    reasons = {c.name: intrinsic_reason(c, models, timestep_us) for c in conns}
    changed = True
    while changed:  # dropping one conv can disqualify the others into the same target, or a grid
        changed = False
        grids: dict[str, tuple[int, int, int]] = {}
        for c in conns:
            if c.kind == "conv" and reasons[c.name] is None:
                for pop, shape in ((c.source, c.attrs["in_shape"]), (c.target, c.attrs["out_shape"])):
                    grid = channel_grid(shape)
                    if grids.setdefault(pop, grid) != grid:
                        reasons[c.name] = (f"population '{pop}' is already split as a {grids[pop]} grid by another "
                                           f"local-only conv; this conv sees it as {grid}")
                        changed = True
        for c in conns:
            if c.kind != "conv" or reasons[c.name] is not None:
                continue
            others = [o.name for o in conns if o.target == c.target and reasons[o.name] is not None]
            if others:
                reasons[c.name] = (f"target '{c.target}' also receives {', '.join(repr(o) for o in others)} (FromList): "
                                   f"a population with Convolution synapses accepts no other projection kind")
                changed = True
    return {c.name: {"local_only": reasons[c.name] is None, "reason": reasons[c.name] or ""}
            for c in conns if c.kind == "conv"}


def record(program: Any) -> None:
    """Write the decision into every conv connection's attrs (``local_only``, ``local_only_reason``)."""
    choices = decide(program)
    for conn in program.connections:
        if conn.kind == "conv":
            choice = choices[conn.name]
            conn.attrs[ATTR] = choice["local_only"]
            conn.attrs[REASON_ATTR] = choice["reason"]


def recorded(program: Any) -> dict[str, dict[str, Any]]:
    """The decision stored in a program's conv connections (old artifacts: FromList, with why)."""
    out = {}
    for conn in program.connections:
        if conn.kind == "conv":
            if ATTR in conn.attrs:
                out[conn.name] = {"local_only": bool(conn.attrs[ATTR]), "reason": str(conn.attrs.get(REASON_ATTR, ""))}
            else:
                out[conn.name] = {"local_only": False, "reason": OLD_ARTIFACT}
    return out
