"""Which conv connections of a spinnaker program sPyNNaker 7.4.1 computes local-only.

sPyNNaker 7.4.1 can run a conv layer as ``ConvolutionConnector`` projections with
``Convolution()`` synapses between per-channel ``Grid2D`` populations: the receiving core keeps
the kernel in DTCM and computes the synapses from each spike, instead of reading expanded
``FromListConnector`` rows from SDRAM. Its local-only path is exact only in some cases
(docs/backends-spinnaker.md; sPyNNaker 7.4.1's
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

Pool + dense: a non-conv connection from a (C, H, W) source (the compiler stores a sum pool +
flatten + dense as its product matrix) can run as 7.4.1's ``PoolDenseConnector`` where the matrix
factors as a square k x k pool with stride k tiling the grid followed by a dense map, into an
IF_curr_exp target that takes only such connections, with one on-core delay, words <= 32767 and
the int16 weights of a core within a DTCM budget. PoolDense divides the weights it is given by
the pool area and scales and rounds them as ConvolutionConnector does, so ``±word / scale * k*k``
comes back as the word (docs/backends-spinnaker.md, "Pool + dense layers", has the facts and
what is assumed of its C core).

Every other conv or pool + dense candidate stays FromList, with the reason recorded. The compiler records the
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


def _word_reason(conn: Any, connector: str = "ConvolutionConnector") -> str | None:
    words = np.asarray(conn.arrays["weight"], dtype=np.int64)
    big = int(words.max(initial=0))
    if big > INT16_MAX:
        return (f"a weight word of {big} > {INT16_MAX}: {connector} stores int16 weight words "
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
        return "per-synapse delays: a local-only projection has one delay"
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


# ------------------------------------------------------------------ pool + dense (PoolDenseConnector)

POOL_ATTR = "pool_dense"  # the pool k (stride k) of a pool + dense candidate, 0 when none fits
POOL_DTCM_BYTES = 32 * 1024  # int16 weights one core copies into DTCM (a conservative budget, see docs)
MAX_FACTOR_ENTRIES = 1 << 22  # a dense (post x pre) int64 check larger than this (32 MB) is not attempted


def signed_matrix(conn: Any) -> np.ndarray:
    """The artifact's (n_out, n_in) signed words of a non-conv connection (+exc, -inh; 0 where absent)."""
    words = np.asarray(conn.arrays["weight"], dtype=np.int64)
    types = np.asarray(conn.arrays["synapse_type"], dtype=np.int64)
    indptr = np.asarray(conn.arrays["indptr"], dtype=np.int64)
    post = np.repeat(np.arange(conn.n_out, dtype=np.int64), np.diff(indptr))
    out = np.zeros((conn.n_out, conn.n_in), dtype=np.int64)
    out[post, np.asarray(conn.arrays["indices"], dtype=np.int64)] = np.where(types == 1, -words, words)
    return out


def pool_factor(matrix: np.ndarray, grid: tuple[int, int, int]) -> int | None:
    """The largest square pool k (dividing H and W) for which ``matrix`` is a k x k sum pool (stride k)
    followed by a dense map, i.e. every k x k block of each channel holds one word per post; None
    when the shape does not fit. k = 1 always fits (a dense map from the grid)."""
    c, h, w = grid
    m = matrix.reshape(matrix.shape[0], c, h, w)
    for k in sorted((k for k in range(1, min(h, w) + 1) if h % k == 0 and w % k == 0), reverse=True):
        dense = m[:, :, ::k, ::k]
        if np.array_equal(m, np.repeat(np.repeat(dense, k, axis=2), k, axis=3)):
            return k
    return None


def pooled_dense(matrix: np.ndarray, grid: tuple[int, int, int], k: int) -> np.ndarray:
    """The dense words of a factored connection: (C, H/k, W/k, n_out) signed."""
    c, h, w = grid
    return np.moveaxis(matrix.reshape(matrix.shape[0], c, h, w)[:, :, ::k, ::k], 0, -1)


def _pool_dense_reason(conn: Any, shapes: Mapping[str, tuple[int, ...]], models: Mapping[str, str],
                       timestep_us: int) -> tuple[str | None, int | None]:
    """(why ``conn`` cannot be a PoolDenseConnector projection or None, its pool k)."""
    if conn.recurrent or conn.source == conn.target:
        return "recurrent: a population with local-only synapses cannot feed itself through FromList rows", None
    if "indptr" not in conn.arrays:
        return f"a {conn.kind} connection without CSR rows", None
    shape = tuple(shapes.get(conn.source, ()))
    if len(shape) != 3:
        return (f"source '{conn.source}' has shape {shape}: PoolDenseConnector needs a (C, H, W) source "
                f"(one Grid2D population per channel)"), None
    reasons = []
    model = models.get(conn.target)
    if model != MODEL:
        reasons.append(f"target '{conn.target}' is {model}: sPyNNaker 7.4.1 ships local-only pool + dense for "
                       f"{MODEL} only")
    c, h, w = (int(s) for s in shape)
    if conn.n_in != c * h * w:
        return f"{conn.n_in} inputs for a source of shape {shape}", None
    if grid2d_size(h * w, w / h) != (w, h):
        reasons.append(f"source grid {h}x{w}: pyNN's Grid2D cannot express it (aspect-ratio rounding)")
    reasons += [r for r in (_delay_reason(conn, timestep_us), _word_reason(conn, "PoolDenseConnector")) if r]
    if conn.n_out * conn.n_in > MAX_FACTOR_ENTRIES:
        return "; ".join(reasons + [f"{conn.n_out} x {conn.n_in} words: too large to check for a pool factor"]), None
    k = pool_factor(signed_matrix(conn), (c, h, w))
    per_core = c * (h // k) * (w // k) * min(conn.n_out, 256) * 2
    if per_core > POOL_DTCM_BYTES:
        reasons.append(f"{per_core} bytes of int16 weights per core (pool {k}x{k}, {c} channel(s), up to 256 "
                       f"posts): PoolDense keeps them in DTCM; the budget here is {POOL_DTCM_BYTES}")
    return ("; ".join(reasons) or None), k


def _candidates(program: Any) -> tuple[dict[str, str | None], dict[str, str], dict[str, int | None]]:
    """Per candidate connection: its own reason (None: fine alone), its kind (conv | pool_dense) and,
    for pool + dense, its pool k. A non-conv connection is a candidate when its source is (C, H, W)."""
    models = {p.name: p.model for p in program.populations}
    shapes = {**{n: tuple(s) for n, s in program.inputs.items()}, **{p.name: tuple(p.shape) for p in program.populations}}
    timestep_us = int(round(float(program.attrs.get("time_step_ms", 1.0)) * 1000.0))
    reasons, kinds, pools = {}, {}, {}
    for c in program.connections:
        if c.kind == "conv":
            reasons[c.name], kinds[c.name] = intrinsic_reason(c, models, timestep_us), "conv"
        elif len(shapes.get(c.source, ())) == 3:
            reasons[c.name], pools[c.name] = _pool_dense_reason(c, shapes, models, timestep_us)
            kinds[c.name] = "pool_dense"
    return reasons, kinds, pools


def _grid_conflicts(conns: list, reasons: dict, kinds: dict, shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Give a reason to every local-only candidate whose populations' channel grids disagree, or whose
    pool + dense target is itself split into grids; True if any reason was added."""
    changed = False
    grids: dict[str, tuple[int, int, int]] = {}
    for c in conns:
        if reasons.get(c.name, "x") is not None:
            continue
        sides = ((c.source, c.attrs["in_shape"]), (c.target, c.attrs["out_shape"])) if kinds[c.name] == "conv" \
            else ((c.source, shapes[c.source]),)
        for pop, shape in sides:
            grid = channel_grid(shape)
            if grids.setdefault(pop, grid) != grid:
                reasons[c.name] = (f"population '{pop}' is already split as a {grids[pop]} grid by another "
                                   f"local-only connection; this one sees it as {grid}")
                changed = True
    for c in conns:
        if reasons.get(c.name, "x") is None and kinds[c.name] == "pool_dense" and c.target in grids:
            reasons[c.name] = (f"target '{c.target}' is split into channel grids by a local-only connection: "
                               f"PoolDense is planned here into one 1-D population only")
            changed = True
    return changed


def decide(program: Any) -> dict[str, dict[str, Any]]:
    """Per conv connection and per pool + dense candidate: ``{"local_only": bool, "reason": str}``
    (reason empty when local-only); pool + dense entries add ``connector`` and ``pool`` (k).

    A connection is local-only when it is one of the exact cases, every connection into its target is
    local-only of the same connector kind (LocalOnlyConvolution / LocalOnlyPoolDense accept no other
    projection), and each population it touches has one channel grid (C, H, W).
    """
    conns = list(program.connections)
    shapes = {**{n: tuple(s) for n, s in program.inputs.items()}, **{p.name: tuple(p.shape) for p in program.populations}}
    reasons, kinds, pools = _candidates(program)
    changed = True
    while changed:  # dropping one connection can disqualify the others into the same target, or a grid
        changed = _grid_conflicts(conns, reasons, kinds, shapes)
        for c in conns:
            if reasons.get(c.name, "x") is not None:
                continue
            others = [o for o in conns if o.target == c.target and o.name != c.name
                      and (reasons.get(o.name, "x") is not None or kinds[o.name] != kinds[c.name])]
            if others:
                what = ", ".join(f"{o.name!r} ({'FromList' if reasons.get(o.name, 'x') is not None else kinds[o.name]})"
                                 for o in others)
                reasons[c.name] = (f"target '{c.target}' also receives {what}: a population with local-only "
                                   f"synapses takes one connector kind and no other projection kind")
                changed = True
    out = {}
    for c in conns:
        if c.name in kinds:
            out[c.name] = {"local_only": reasons[c.name] is None, "reason": reasons[c.name] or ""}
            if kinds[c.name] == "pool_dense":
                out[c.name].update(connector="PoolDenseConnector", pool=int(pools[c.name] or 0))
    return out


def record(program: Any) -> None:
    """Write the decision into every candidate connection's attrs (``local_only``,
    ``local_only_reason``; ``pool_dense`` = k for pool + dense candidates)."""
    choices = decide(program)
    for conn in program.connections:
        if conn.name in choices:
            choice = choices[conn.name]
            conn.attrs[ATTR] = choice["local_only"]
            conn.attrs[REASON_ATTR] = choice["reason"]
            if "pool" in choice:
                conn.attrs[POOL_ATTR] = choice["pool"]


def recorded(program: Any) -> dict[str, dict[str, Any]]:
    """The decision stored in a program (old artifacts: convs FromList with why, no pool + dense)."""
    out = {}
    for conn in program.connections:
        if conn.kind == "conv":
            if ATTR in conn.attrs:
                out[conn.name] = {"local_only": bool(conn.attrs[ATTR]), "reason": str(conn.attrs.get(REASON_ATTR, ""))}
            else:
                out[conn.name] = {"local_only": False, "reason": OLD_ARTIFACT}
        elif ATTR in conn.attrs:
            out[conn.name] = {"local_only": bool(conn.attrs[ATTR]), "reason": str(conn.attrs.get(REASON_ATTR, "")),
                              "connector": "PoolDenseConnector", "pool": int(conn.attrs.get(POOL_ATTR, 0))}
    return out
