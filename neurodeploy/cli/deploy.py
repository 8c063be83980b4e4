"""`compile`, `check`, `run` and `verify`: the deployment half of the command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neurodeploy import recording
from neurodeploy.format import atomic
from neurodeploy.cli import conventions
from neurodeploy.cli import files as cli_files
from neurodeploy.cli import shard as cli_shard
from neurodeploy.cli import verify as cli_verify
from neurodeploy.backends import registry
from neurodeploy.errors import OptionError

TARGETS = ("loihi2", "spinnaker", "emulator")


def add_parsers(sub, add_semantics) -> None:
    add_doctor(sub)
    p = conventions.add_command(sub, "compile", "quantize and map a NIR model for a target; writes an .ndp artifact",
                                "neurodeploy compile model.nir --target loihi2 --calibrate in.npz -o model.loihi2.ndp")
    p.add_argument("model", help="a .nir file")
    _compile_options(p, add_semantics)
    p.add_argument("-o", "--output", help="artifact path (default: MODEL.<target>.ndp)")
    p.add_argument("--allow-degraded", action="store_true", help="write the artifact despite severe health findings")
    p.add_argument("--report", metavar="R.html", help="also write the HTML report (rasters from --report-input, "
                                                      "else the calibration inputs)")
    p.add_argument("--report-input", metavar="IN.npz", help="inputs for the report's rasters and profile")
    p.add_argument("--netx-format", action="store_true",
                   help="--target loihi2 only: quantize into what lava-dl's netx file holds (weight exponent 0, "
                        "bias exponent 6, start state 0), so that `neurodeploy export --format netx` takes it")

    p = conventions.add_command(sub, "check", "does a model fit a target? (exit 0: fits, 1: does not, 2: bad input)",
                                "neurodeploy check model.nir --target spinnaker --json")
    p.add_argument("model", help="a .nir file")
    _compile_options(p, add_semantics)
    conventions.add_json_option(p, "every limit with value and margin")

    p = conventions.add_command(sub, "run", "execute an artifact (bit-accurate emulator by default)",
                                "neurodeploy run model.loihi2.ndp --input in.npz -o out.npz --record v")
    p.add_argument("artifact", help="an .ndp file")
    p.add_argument("--input", required=True, help=".npz with array 'input' (batch, steps, *input_shape)")
    p.add_argument("-o", "--output", required=True, help="output .npz (spikes.<node>, v.<node>, ...)")
    p.add_argument("--record", default="", help="comma-separated state to record: v, i (the synaptic current; u is "
                                                "an alias of i on loihi2 and emulator artifacts); spikes are always "
                                                "recorded")
    p.add_argument("--align", default="target", choices=["target", "float"],
                   help="time grid of the output: 'target' (default) as the target runs it, each population "
                        "lagging the float model by its latency; 'float': input padded by the latency and outputs "
                        "shifted back, so that step t is `simulate`'s step t")
    p.add_argument("--backend", default="emulator", choices=list(registry.BACKENDS),
                   help="where to run it: the bit-accurate emulator, Lava 0.10.0 (loihi2; needs `make lava`), or "
                        "sPyNNaker 7.4.1 (spinnaker; a virtual board unless a machine is given)")
    p.add_argument("--on-chip", action="store_true",
                   help="with --backend lava: Loihi2HwCfg on a Loihi 2 system (needs Intel's lava-loihi)")
    p.add_argument("--device", metavar="DEVICE",
                   help="with the emulator: run the torch kernel on cpu, cuda or cuda:N (same integers; for large "
                        "networks and batches on a GPU); default: the compiled CPU kernel")
    g = p.add_argument_group("--backend spinnaker (without a machine: a virtual board maps the network, no spikes)")
    g.add_argument("--machine", metavar="HOST", help="SpiNNaker board address (default $NEURODEPLOY_SPINNAKER_MACHINE)")
    g.add_argument("--board-version", type=int, choices=[3, 5], help="3: SpiNN-3, 5: SpiNN-5 (default 5)")
    g.add_argument("--spalloc", metavar="URL", help="a spalloc server instead of --machine")
    g.add_argument("--time-scale-factor", type=float, help="run the machine this many times slower than real time")
    g.add_argument("--report", metavar="REPORT.json",
                   help="mapping/provenance report (default: OUTPUT with suffix .spinnaker.json)")
    cli_shard.add_options(p, traces=True)

    cli_verify.add_parser(sub, add_semantics)


def add_doctor(sub) -> None:
    conventions.add_command(sub, "doctor", "which backends can run here, and why not", "neurodeploy doctor")


def cmd_doctor(args: argparse.Namespace) -> int:
    for name, entry in registry.doctor().items():
        print(f"{name:<10} {'available' if entry['available'] else 'unavailable':<12} {entry['detail']}")
    return 0


def _compile_options(p: argparse.ArgumentParser, add_semantics, target_required: bool = True) -> None:
    p.add_argument("--target", required=target_required, choices=TARGETS,
                   help="the hardware to compile for: loihi2, spinnaker, or emulator (a generic fixed-point profile)")
    add_semantics(p)
    p.add_argument("--calibrate", metavar="IN.npz", help="sample inputs: value ranges from float-reference traces")
    p.add_argument("--per-neuron", action="store_true", help="one voltage scale per neuron instead of per layer")
    p.add_argument("--high-precision", default="", metavar="NODES",
                   help="comma-separated connections (NIR node names) kept at 16-bit weights (--target emulator)")
    p.add_argument("--neurons-per-core", type=int, help="cap on neurons per core")
    p.add_argument("--chips", type=int, help="chips available (loihi2 default 1) or SpiNN-5 chips (default 48)")
    p.add_argument("--weight-bits", type=int, help="generic profile (--target emulator) weight width")
    p.add_argument("--state-bits", type=int, help="generic profile state width")
    p.add_argument("--decay-bits", type=int, help="generic profile decay width")


def _options(args: argparse.Namespace):
    from neurodeploy.compiler.compile import Options

    return Options(
        target=args.target, dt=args.dt, integrator=args.integrator, reset=args.reset,
        spike_amplitude=args.spike_amplitude, per_neuron=args.per_neuron,
        allow_degraded=getattr(args, "allow_degraded", False), neurons_per_core=args.neurons_per_core,
        chips=args.chips, high_precision=tuple(n.strip() for n in args.high_precision.split(",") if n.strip()),
        weight_bits=args.weight_bits, state_bits=args.state_bits, decay_bits=args.decay_bits,
        netx_format=getattr(args, "netx_format", False),
    )


def _calibration(args: argparse.Namespace, input_names_from=None):
    if not args.calibrate:
        return None
    from neurodeploy.api import build
    from neurodeploy.format.npzio import read_inputs

    net = build(args.model, dt=args.dt, integrator=args.integrator, reset=args.reset,
                spike_amplitude=args.spike_amplitude, warn=False)
    return read_inputs(args.calibrate, {n: p.shape for n, p in net.inputs.items()})


def summary(compiled) -> list[str]:
    m = compiled.mapping
    lines = [f"target {compiled.options.target}: {len(m.cores)} cores on {m.chips_used} of {m.chips_available} "
             f"chip(s), {'fits' if m.fits else 'DOES NOT FIT'}"]
    for pop in compiled.program.populations:
        cores = [c for c in m.cores if c.population == pop.name]
        lines.append(f"  {pop.name}: {pop.model} x{pop.size} on {len(cores)} core(s), latency {pop.latency} step(s)")
    worst = sorted(m.limits, key=lambda l: l["margin"] / max(l["size"], 1))[:3]
    for l in worst:
        lines.append(f"  limit {l['limit']}: {l['value']:.0f} of {l['size']:.0f} {l['unit']}")
    health = compiled.health.lines()
    lines.append(f"health: {len(compiled.health.severe)} severe, {len(compiled.health.warnings)} warnings")
    lines += [f"  {h}" for h in health]
    return lines


def cmd_compile(args: argparse.Namespace) -> int:
    from neurodeploy.compiler.compile import compile_model

    output = _compile_output(args)
    calibration = _calibration(args)
    compiled = compile_model(args.model, _options(args), calibration, args.calibrate)
    report = _report_html(args, compiled, calibration, output) if args.report else None
    compiled.write(output)  # its provenance holds the source's path relative to the artifact (verify ART.ndp)
    print("\n".join(summary(compiled)))
    print(f"wrote {output}")
    if report is not None:
        atomic.write_text(args.report, report)
        print(f"wrote {args.report}")
    return 0


def _compile_output(args: argparse.Namespace) -> Path:
    """The artifact path, once the model, the options and every output path are known to be good."""
    cli_files.expect_nir(args.model, "compile")
    output = Path(args.output) if args.output else Path(args.model).with_suffix(f".{args.target}.ndp")
    if output.suffix != ".ndp":
        raise OptionError(f"{output}: the artifact must end in .ndp")
    if args.report and not (args.report_input or args.calibrate):
        raise OptionError("--report needs inputs for its rasters: pass --report-input IN.npz (or --calibrate IN.npz)")
    if args.netx_format and args.target != "loihi2":
        raise OptionError(f"--netx-format describes Loihi networks: use it with --target loihi2, not {args.target}")
    cli_files.check_outputs(("-o", str(output)), ("--report", args.report))
    return output


def _report_html(args: argparse.Namespace, compiled, calibration, output: Path) -> str:
    """The report, built before anything is written, so that a failing report leaves no artifact."""
    from neurodeploy.format.npzio import read_inputs
    from neurodeploy.analysis.report import build_report

    shapes = {n: p.shape for n, p in compiled.net.inputs.items()}
    inputs = read_inputs(args.report_input, shapes) if args.report_input else calibration
    return build_report(compiled, inputs, artifact_path=output, report_path=args.report)


def cmd_check(args: argparse.Namespace) -> int:
    from neurodeploy.compiler.compile import analyse

    cli_files.expect_nir(args.model, "check")
    cli_files.check_outputs(("--json", conventions.json_file(args)))
    compiled = analyse(args.model, _options(args), _calibration(args), args.calibrate)
    fits = compiled.mapping.fits and not compiled.health.severe
    if not conventions.json_to_stdout(args):
        print("\n".join(summary(compiled)))
        for l in compiled.mapping.limits:
            flag = "OVER" if l["margin"] < 0 else "ok"
            print(f"  [{flag}] {l['limit']}: {l['value']:.0f} of {l['size']:.0f} {l['unit']}")
        print("\n".join(_conv_synapse_lines(compiled.program)))
    if args.json:
        conventions.emit_json(args, _check_report(args, compiled))
    return 0 if fits else 1


def _check_report(args: argparse.Namespace, compiled) -> dict:
    """`check --json`: every limit with value and margin, the counts used and the health findings."""
    mapping = compiled.mapping
    return {"model": args.model, "model_sha256": getattr(compiled, "source_hash", None), "target": args.target,
            "fits": mapping.fits, "degraded": bool(compiled.health.severe), "limits": mapping.limits,
            "cores_used": len(mapping.cores), "chips_used": mapping.chips_used, "health": compiled.health.as_dict(),
            **_conv_synapses(compiled.program)}


def _conv_synapses(program) -> dict:
    """spinnaker: per conv connection, local-only (ConvolutionConnector) or FromList and why (the
    decision the compiler recorded in the program; neurodeploy/targets/spinnaker_local_only.py)."""
    if program.target != "spinnaker":
        return {}
    from neurodeploy.targets import spinnaker_local_only

    choices = spinnaker_local_only.recorded(program)
    entry = lambda conn: {"connection": conn.name, "source": conn.source, "target": conn.target,  # noqa: E731
                          "kind": "local_only" if choices[conn.name]["local_only"] else "from_list",
                          "reason": choices[conn.name]["reason"]}
    out = {"conv_synapses": [entry(conn) for conn in program.connections if conn.kind == "conv"]}
    pooled = [{**entry(conn), "pool": choices[conn.name]["pool"]} for conn in program.connections
              if conn.kind != "conv" and conn.name in choices]
    if pooled:  # pool + dense candidates (PoolDenseConnector)
        out["pool_dense_synapses"] = pooled
    return out


def _conv_synapse_lines(program) -> list[str]:
    found = _conv_synapses(program)
    lines = [f"  conv {c['connection']} ({c['source']} -> {c['target']}): "
             + ("local-only (ConvolutionConnector)" if c["kind"] == "local_only" else f"FromList: {c['reason']}")
             for c in found.get("conv_synapses", [])]
    return lines + [f"  pool + dense {c['connection']} ({c['source']} -> {c['target']}): "
                    + (f"local-only (PoolDenseConnector, pool {c['pool']}x{c['pool']})" if c["kind"] == "local_only"
                       else f"FromList: {c['reason']}")
                    for c in found.get("pool_dense_synapses", [])]


def cmd_run(args: argparse.Namespace) -> int:
    from neurodeploy.format import artifact, input_rules
    from neurodeploy.format.npzio import read_inputs, write_npz
    from neurodeploy.format.program import from_manifest
    from neurodeploy.analysis.verify import on_grid, pad_for_latency
    from neurodeploy.emulator import overflow
    from neurodeploy.sharding.shard import spike_total

    if cli_shard.run_wanted(args):  # shards: a Dask cluster, probes, events or a folder of parts
        if args.device is not None:
            raise OptionError("--device runs the torch kernel in this process; sharded runs (--workers, --scheduler, "
                              "--probe, --format, folder outputs) use the compiled CPU kernel: drop one of them")
        return cli_shard.cmd_run(args)
    _check_run(args)
    art = artifact.read(args.artifact)
    program = from_manifest(art.manifest["program"], art.arrays)
    valid = recording.names(args.backend, program.target)  # i is the current everywhere (u on Loihi 2)
    asked = recording.parse(args.record, valid, f"run --backend {args.backend} on a {program.target} artifact")
    record = recording.states(asked, valid)
    inputs = read_inputs(args.input, dict(program.inputs))
    input_rules.warn_beyond_range(art.calibrated_inputs, inputs, art.calibration_steps)  # beyond the calibration
    shape = next(iter(inputs.values())).shape if isinstance(inputs, dict) else inputs.shape
    if args.align == "float":
        inputs = pad_for_latency(program, inputs)
    backend = registry.get(args.backend)
    registry.check_target(backend, program.target)
    source = art if args.backend == "emulator" else args.artifact
    options = {**vars(args), "overflow": args.backend == "emulator"}  # the emulator's overflow counters
    traces = backend.run(source, inputs, record=record, progress=sys.stderr.isatty(), options=options)
    if traces is None:  # mapped and checked without running (a virtual SpiNNaker board): no output
        return 1
    traces = overflow.warn(program, traces)  # a warning per population that overflowed
    traces, grid = on_grid(program, traces, shape[0], shape[1], args.align)
    traces = recording.rename(traces, asked, valid)
    write_npz(args.output, traces)
    spikes = {k: spike_total(v) for k, v in traces.items() if k.startswith("spikes.")}
    print(f"wrote {args.output}: " + ", ".join(f"{k} ({n} spikes)" for k, n in spikes.items()))
    print(grid)
    return 0


def _check_run(args: argparse.Namespace) -> None:
    """`run`'s options, its artifact's kind and every file it would write, before any work."""
    from neurodeploy.format.npzio import check_output

    if args.on_chip and args.backend != "lava":
        raise OptionError("--on-chip runs on Loihi 2 through Lava: add --backend lava")
    if args.device is not None:
        if args.backend != "emulator":
            raise OptionError(f"--device runs the emulator's torch kernel; --backend {args.backend} takes no --device")
        from neurodeploy.emulator.torch_kernel import check_device_name

        check_device_name(args.device)
    if args.backend != "spinnaker" and any((args.machine, args.spalloc, args.board_version, args.time_scale_factor,
                                            args.report)):
        raise OptionError("--machine, --spalloc, --board-version, --time-scale-factor and --report are options of "
                          "--backend spinnaker")
    cli_files.expect_artifact(args.artifact, "run")
    check_output(args.output, "-o")
    if args.backend == "spinnaker":  # its mapping report: --report, else beside the output
        report = args.report or str(Path(args.output).with_suffix(".spinnaker.json"))
        cli_files.check_outputs(("-o", args.output), ("--report", report))


def inspect_artifact(path: str) -> int:
    from neurodeploy.format import artifact

    art = artifact.read(path)
    m = art.manifest
    prov = m["provenance"]
    print(f"{path}: target {m['target']}, format v{m['format_version']}, content {m['content_hash'][:16]}")
    print(f"  source {prov['source']} (sha256 {prov['source_sha256'][:16]}), neurodeploy {prov['versions']['neurodeploy']}")
    print("  semantics: " + ", ".join(f"{k}={v}" for k, v in m["semantics"].items()))
    mapping = m["mapping"]
    print(f"  mapping: {mapping['cores_used']} cores on {mapping['chips_used']} chip(s), fits: {mapping['fits']}")
    for pop in m["program"]["populations"]:
        print(f"  population {pop['name']}: {pop['model']} ({pop['kind']}) {pop['shape']}, latency {pop['latency']}")
    for conn in m["program"]["connections"]:
        attrs = conn["attrs"]
        extra = ", ".join(f"{k}={attrs[k]}" for k in ("weight_exp", "sign_mode", "delay", "local_only", "pool_dense")
                          if k in attrs)
        if attrs.get("local_only_reason"):
            extra += f" (FromList: {attrs['local_only_reason']})"
        print(f"  connection {conn['name']}: {conn['source']} -> {conn['target']} [{conn['kind']}] {extra}")
    findings = [f for f in m["health"]["findings"] if f["severity"] != "info"]
    print(f"  health: {len(findings)} finding(s)")
    for f in findings:
        print(f"    {f['severity']}: {f['layer']}: {f['message']}")
    return 0


COMMANDS = {"compile": cmd_compile, "check": cmd_check, "run": cmd_run, "verify": cli_verify.cmd_verify,
            "doctor": cmd_doctor}
