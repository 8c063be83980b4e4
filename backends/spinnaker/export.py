"""``neurodeploy export --format pynn``: a standalone PyNN script for sPyNNaker 7.4.1.

The script (``net.py``) and its data (``net.npz`` beside it) build the same network that the
spinnaker backend builds (``network.plan``): the same parameters, synapse lists, delays,
``max_expected_summed_weight``, neurons per core and combined cores. The user runs it on their
machine (``~/.spynnaker.cfg`` configured for a board) with only numpy and sPyNNaker installed:
``python net.py --input x.npz -o out.npz``.

Parameters the same for every neuron are written into the script as literals (with their s16.15
bits in a comment); per-neuron values and synapse lists go into the .npz, which is read with
``allow_pickle=False``.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
import numpy as np

from neurodeploy.format import atomic
from neurodeploy.backends.spinnaker import network
from neurodeploy.backends.spinnaker.local_only import by_connection
from neurodeploy.errors import OptionError


def write_pynn(art, output: str | os.PathLike) -> list[Path]:
    """Write ``output`` (a .py script) and its ``.npz`` beside it; returns both paths."""
    from neurodeploy.format.program import from_manifest

    output = Path(output)
    if output.suffix != ".py":
        raise OptionError(f"{output}: the PyNN script must end in .py (its data goes beside it as "
                          f"{output.with_suffix('.npz').name})")
    atomic.check_writable(output)
    program = from_manifest(art.manifest["program"], art.arrays)
    plan = network.plan(program, art.manifest.get("mapping"), art.manifest.get("semantics"))
    data_path = output.with_suffix(".npz")
    arrays: dict[str, np.ndarray] = {}
    script = _script(plan, art, data_path.name, arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic.write_bytes(data_path, buffer.getvalue())
    atomic.write_text(output, script)
    return [output, data_path]


def _literal(values: np.ndarray, bits: np.ndarray) -> tuple[str, str] | None:
    """``repr`` of a uniform value (exact: repr round-trips float64) and its bits, else None."""
    values = np.asarray(values)
    if values.size and np.all(values == values.flat[0]):
        return repr(float(values.flat[0])), str(int(bits.flat[0]))
    return None


def _script(plan: network.NetworkPlan, art, data_name: str, arrays: dict[str, np.ndarray]) -> str:
    lines = _header(plan, art, data_name)
    add = lines.append
    add("def build(data, spikes, record_v):")
    add('    """Make the populations and projections (after sim.setup); ``spikes``: 0/1 per input (steps, *shape)."""')
    add("    sources, pops = {}, {}")
    for src in plan.sources:
        lines += _source_code(src)
    for p in plan.populations:
        add("")
        lines += _population_code(p, arrays)
    add("")
    add("    cells = {**sources, **pops}")
    for proj in plan.projections:
        lines += _projection_code(proj, plan, arrays)
    lines += _conv_code(plan, arrays)
    lines += _pool_dense_code(plan, arrays)
    add("    return sources, pops")
    add("")
    add("")
    add(_MAIN)
    return "\n".join(lines) + "\n"


def _header(plan: network.NetworkPlan, art, data_name: str) -> list[str]:
    """The script's docstring, imports and constants, up to the helpers."""
    prov = art.manifest.get("provenance", {})
    source = prov.get("source", "?")
    lines = ["#!/usr/bin/env python3", '"""A spiking network for SpiNNaker (sPyNNaker 7.4.1), exported by neurodeploy.', "",
             f"Model: {source}; artifact content hash {art.content_hash[:16]}.",
             f"Data: {data_name} beside this script (synapse lists, per-neuron parameters).",
             "Run on a SpiNNaker machine configured in ~/.spynnaker.cfg ([Machine] machine_name / spalloc_server,",
             "version):", "    python THIS.py --input x.npz -o out.npz [--record v]",
             "x.npz holds array 'input' (batch, steps, *input_shape) of 0/1 spikes per tick (one array",
             "'input.<name>' per input when there are several); samples run one after another.",
             "out.npz gets 'spikes.<population>' (batch, steps, *shape) and, with --record v, 'v.<population>'",
             "as s16.15 bits (V of each tick before its update), like `neurodeploy run`.", "",
             "How the numbers were chosen (so that sPyNNaker writes the compiled integers):",
             "- parameters are s16.15 values (bits / 2**15; the host rounds them back to the same bits);",
             "- max_expected_summed_weight fixes each population's ring-buffer shift (exc, inh);",
             "- weights are 16-bit words / 2**(15 - shift) nA; signs are the projections' receptor types;",
             "- delays are whole time steps; n_synapse_cores = 0 keeps one neuron+synapse core per slice."]
    if plan.convs:
        lines += ["- local-only convs: one Grid2D population per channel (raster order y * W + x) and one",
                  "  ConvolutionConnector per (input, output) channel with Convolution() synapses; kernels are",
                  "  rotated 180 degrees (sPyNNaker computes a true convolution) and hold +word/scale (excitatory)",
                  "  and -word/scale (inhibitory) nA, which sPyNNaker rounds back to the int16 words."]
    if plan.pool_dense:
        lines += ["- local-only pool + dense: one PoolDenseConnector per source channel (a Grid2D population)",
                  "  with PoolDense() synapses; weights are (pooled x, pooled y, post) of +word/scale (excitatory)",
                  "  and -word/scale (inhibitory) nA times the pool area, which sPyNNaker divides by the area and",
                  "  rounds back to the int16 words."]
    spiking = [p.name for p in plan.populations if p.spiking]
    lines += ['"""', "import argparse", "from pathlib import Path", "", "import numpy as np",
              "import pyNN.spiNNaker as sim", "", f"TIMESTEP_US = {plan.timestep_us}",
              "TIMESTEP_MS = TIMESTEP_US / 1000.0", f"DATA = Path(__file__).resolve().with_name({data_name!r})",
              f"INPUTS = {{{', '.join(f'{s.name!r}: {tuple(s.shape)!r}' for s in plan.sources)}}}",
              f"POPULATIONS = {{{', '.join(f'{p.name!r}: {tuple(p.shape)!r}' for p in plan.populations)}}}",
              f"SPIKING = {spiking!r}", "", "", _HELPERS, ""]
    return lines


def _grid_loop(name: str, grid: tuple[int, int, int] | None, what: str) -> tuple[list[str], str, str, str]:
    """For a gridded population: the loop header over its channels; the indent, the neuron slice
    and the Population keywords its body uses."""
    if grid is None:
        return [], "    ", "", ""
    c, h, w = grid
    return ([f"    {what}[{name!r}] = []  # one Grid2D population per channel ({c} x {h}x{w}, raster y * W + x)",
             f"    for c in range({c}):", f"        lo, hi = c * {h * w}, (c + 1) * {h * w}"],
            "        ", "[lo:hi]", f", structure=sim.Grid2D({w} / {h})")


def _source_code(src) -> list[str]:
    head, ind, cut, structure = _grid_loop(src.name, src.grid, "sources")
    size = src.size if src.grid is None else src.grid[1] * src.grid[2]
    label = repr(src.name) if src.grid is None else f'f"{src.name}.c{{c}}"'
    get = (f"spikes[{src.name!r}]" if src.grid is None else
           f"np.asarray(spikes[{src.name!r}]).reshape(len(spikes[{src.name!r}]), -1)[:, lo:hi]")
    lines = [f"    # input {src.name!r}: {src.size} spike sources, {src.atoms_per_core} per core"] + head
    lines += [f"{ind}times = spike_times({get}) if spikes else []",
              f"{ind}s = sim.Population({size}, sim.SpikeSourceArray(spike_times=times), label={label}{structure})",
              f"{ind}s.set_max_atoms_per_core({src.atoms_per_core})"]
    lines.append(f"{ind}sources[{src.name!r}].append(s)" if src.grid else f"    sources[{src.name!r}] = s")
    return lines


def _population_code(p, arrays: dict[str, np.ndarray]) -> list[str]:
    head, ind, cut, structure = _grid_loop(p.name, p.grid, "pops")
    size = p.size if p.grid is None else p.grid[1] * p.grid[2]
    label = repr(p.name) if p.grid is None else f'f"{p.name}.c{{c}}"'

    def value(name: str, values: np.ndarray, comment: bool) -> str:
        lit = _literal(values, p.bits[name])
        if lit:
            return f"{name}={lit[0]}" + (f",  # bits {lit[1]}" if comment else "")
        key = f"{p.name}.{name}"
        arrays[key] = np.asarray(values, dtype=np.float64)
        return f"{name}=data[{key!r}]{cut}" + (",  # per neuron" if comment else "")

    lines = [f"    # population {p.name!r}: {p.model} x {p.size} (shape {tuple(p.shape)}), {p.atoms_per_core} neurons "
             f"per core ({p.cores} core(s)); ring-buffer shifts exc/inh {p.shifts[0]}/{p.shifts[1]}"] + head
    lines.append(f"{ind}cell = sim.{p.model}(")
    lines += [f"{ind}    {value(name, values, True)}" for name, values in p.params.items()]
    lines.append(f"{ind})")
    lines += [f"{ind}pop = sim.Population({size}, cell, label={label}{structure}, additional_parameters={{",
              f"{ind}    \"max_expected_summed_weight\": [{p.max_expected_summed_weight[0]!r}, "
              f"{p.max_expected_summed_weight[1]!r}],  # -> shifts {p.shifts[0]}, {p.shifts[1]}",
              f"{ind}    \"n_synapse_cores\": 0}})"]
    lines.append(f"{ind}pop.initialize({', '.join(value(n, v, False) for n, v in p.initial.items())})")
    lines.append(f"{ind}pop.set_max_atoms_per_core({p.atoms_per_core})")
    record = '["spikes"] + (["v"] if record_v else [])' if p.spiking else '["v"] if record_v else []'
    lines += [f"{ind}variables = {record}", f"{ind}if variables:", f"{ind}    pop.record(variables)"]
    lines.append(f"{ind}pops[{p.name!r}].append(pop)" if p.grid else f"    pops[{p.name!r}] = pop")
    return lines


def _projection_code(proj, plan: network.NetworkPlan, arrays: dict[str, np.ndarray]) -> list[str]:
    key = f"{proj.connection}.{'exc' if proj.receptor == 'excitatory' else 'inh'}"
    if proj.source_channel is not None or proj.target_channel is not None:
        key += f".{'' if proj.source_channel is None else proj.source_channel}-" \
               f"{'' if proj.target_channel is None else proj.target_channel}"
    arrays[key] = np.column_stack([proj.pre.astype(np.float64), proj.post.astype(np.float64), proj.weight,
                                   proj.delay_steps.astype(np.float64) * plan.dt_ms])
    delays = sorted(set(proj.delay_steps.tolist()))
    delay_text = f"{delays[0]}" if len(delays) == 1 else f"{delays[0]}..{delays[-1]}"
    cell = lambda name, channel: f"cells[{name!r}]" + ("" if channel is None else f"[{channel}]")  # noqa: E731
    return [f"    # connection {proj.connection!r}: {proj.source} -> {proj.target}, {proj.synapses} {proj.receptor} "
            f"synapses, delay {delay_text} step(s), shift {proj.shift}",
            f"    sim.Projection({cell(proj.source, proj.source_channel)}, {cell(proj.target, proj.target_channel)}, "
            f"sim.FromListConnector(data[{key!r}]),",
            f"                   synapse_type=sim.StaticSynapse(), receptor_type={proj.receptor!r}, "
            f"label={proj.label!r})"]


def _conv_code(plan: network.NetworkPlan, arrays: dict[str, np.ndarray]) -> list[str]:
    """Local-only convs: one ConvolutionConnector per (input channel, output channel)."""
    lines: list[str] = []
    for name, convs in by_connection(plan.convs).items():
        first = convs[0]
        key = f"{name}.kernels"
        arrays[key] = np.stack([cv.kernel for cv in convs])
        pairs = [(cv.in_channel, cv.out_channel) for cv in convs]
        lines += [f"    # connection {name!r}: {first.source} -> {first.target}, local-only: {len(convs)} "
                  f"ConvolutionConnector projection(s), {first.kernel.shape[0]}x{first.kernel.shape[1]} kernels "
                  f"(rotated 180 degrees, +exc/-inh nA), padding {first.padding}, delay {first.delay_steps} step(s)",
                  f"    for i, (ci, co) in enumerate({pairs!r}):",
                  f"        sim.Projection(cells[{first.source!r}][ci], cells[{first.target!r}][co], "
                  f"sim.ConvolutionConnector(data[{key!r}][i], padding={first.padding}),",
                  f"                       synapse_type=sim.Convolution(delay={first.delay_steps} * TIMESTEP_MS), "
                  f"receptor_type=\"excitatory\", label=f\"{name}:{{ci}}->{{co}}\")"]
    return lines


def _pool_dense_code(plan: network.NetworkPlan, arrays: dict[str, np.ndarray]) -> list[str]:
    """Local-only pool + dense: one PoolDenseConnector per source channel."""
    lines: list[str] = []
    for name, pds in by_connection(plan.pool_dense).items():
        first = pds[0]
        key = f"{name}.pool_dense"
        arrays[key] = np.stack([pd.weights for pd in pds])
        k = first.pool
        lines += [f"    # connection {name!r}: {first.source} -> {first.target}, local-only: {len(pds)} "
                  f"PoolDenseConnector projection(s), {k}x{k} sum pool (stride {k}), weights (x, y, post) in nA "
                  f"times {k * k}, delay {first.delay_steps} step(s)",
                  f"    for i, c in enumerate({[pd.channel for pd in pds]!r}):",
                  f"        sim.Projection(cells[{first.source!r}][c], cells[{first.target!r}], "
                  f"sim.PoolDenseConnector(data[{key!r}][i].reshape(-1), pool_shape=({k}, {k}), "
                  f"pool_stride=({k}, {k})),",
                  f"                       synapse_type=sim.PoolDense(delay={first.delay_steps} * TIMESTEP_MS), "
                  f"receptor_type=\"excitatory\", label=f\"{name}:{{c}}\")"]
    return lines


_HELPERS = '''def spike_times(counts):
    """(steps, n) 0/1 spikes per tick -> SpikeSourceArray spike_times (ms per neuron).

    sPyNNaker turns a time into a tick with ceil(floor(ms * 1000) / TIMESTEP_US); half a
    microsecond past the tick keeps float error from flooring a whole microsecond away.
    """
    counts = np.asarray(counts).reshape(counts.shape[0], -1)
    if np.any(counts > 1):
        raise SystemExit("a SpikeSourceArray sends at most one spike per neuron and tick")
    if not counts.any():
        return []
    return [((np.flatnonzero(counts[:, i]) * TIMESTEP_US + 0.5) / 1000.0).tolist() for i in range(counts.shape[1])]


def read_inputs(path):
    with np.load(path, allow_pickle=False) as f:
        if len(INPUTS) == 1 and "input" in f.files:
            arrays = {next(iter(INPUTS)): f["input"]}
        else:
            arrays = {name: f["input." + name] for name in INPUTS}
    for name, arr in arrays.items():
        if arr.ndim < 2 or int(np.prod(arr.shape[2:])) != int(np.prod(INPUTS[name])):
            raise SystemExit(f"input {name!r}: shape {arr.shape} is not (batch, steps, {INPUTS[name]})")
    return arrays


def collect(pops, steps, record_v):
    """One sample's recordings as arrays (steps, *shape), aligned like neurodeploy's emulator."""
    out = {}
    for name, pop in pops.items():
        shape = POPULATIONS[name]
        n = int(np.prod(shape))
        variables = (["spikes"] if name in SPIKING else []) + (["v"] if record_v else [])
        if not variables:
            continue
        pieces = pop if isinstance(pop, list) else [pop]  # a list: one Grid2D population per channel, in order
        per = n // len(pieces)
        s = np.zeros((steps, n), dtype=np.uint8)
        v = np.zeros((steps, n), dtype=np.int64)
        for c, piece in enumerate(pieces):
            segment = piece.get_data(variables).segments[-1]
            for i, train in enumerate(segment.spiketrains):
                i = int(train.annotations.get("source_index", i))
                t = np.rint(np.asarray(train.rescale("ms").magnitude) * 1000.0 / TIMESTEP_US).astype(int)
                s[t[(t >= 0) & (t < steps)], c * per + i] = 1
            for signal in segment.analogsignals:
                if signal.name == "v":
                    values = np.asarray(signal.rescale("mV").magnitude)
                    index = np.asarray(signal.array_annotations.get("channel_index", np.arange(values.shape[1])))
                    k = min(steps, values.shape[0])
                    v[:k, c * per + index] = np.rint(values[:k] * 2**15).astype(np.int64)  # s16.15 bits
        if name in SPIKING:
            out["spikes." + name] = s.reshape((steps,) + shape)
        if record_v:
            out["v." + name] = v.reshape((steps,) + shape)
    return out
'''

_MAIN = '''def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help=".npz with array 'input' (batch, steps, *shape) of 0/1 spikes")
    parser.add_argument("--steps", type=int, default=100, help="time steps to run without --input (default 100)")
    parser.add_argument("--record", default="", help="'v' to record membrane voltages too")
    parser.add_argument("--time-scale-factor", type=float, help="slow the machine down (real-time overload)")
    parser.add_argument("-o", "--output", default="out.npz", help="where to write the recordings")
    args = parser.parse_args(argv)
    record_v = "v" in [r.strip() for r in args.record.split(",")]
    inputs = read_inputs(args.input) if args.input else None
    batch, steps = (next(iter(inputs.values())).shape[:2] if inputs else (1, args.steps))
    with np.load(DATA, allow_pickle=False) as f:
        data = {key: f[key] for key in f.files}
    setup = {"timestep": TIMESTEP_MS}
    if args.time_scale_factor:
        setup["time_scale_factor"] = args.time_scale_factor
    samples = []
    for b in range(batch):
        # one setup per sample: every neuron starts from its initial state, and sPyNNaker 7.4.1
        # cannot change per-neuron spike times of a SpikeSourceArray after sim.reset()
        sim.setup(**setup)
        try:
            _, pops = build(data, {name: x[b] for name, x in inputs.items()} if inputs else None, record_v)
            sim.run(steps * TIMESTEP_MS)
            samples.append(collect(pops, steps, record_v))
        finally:
            sim.end()
    out = {key: np.stack([s[key] for s in samples]) for key in samples[0]}
    np.savez(args.output, **out)
    total = sum(int(v.sum()) for k, v in out.items() if k.startswith("spikes."))
    print(f"wrote {args.output}: {total} spikes" + (" (none: a virtual board records nothing)" if not total else ""))


if __name__ == "__main__":
    main()'''
