"""`convert`: a trained ANN (ONNX) -> a rate-coded spiking NIR graph (IF neurons), see docs/onnx.md."""
from __future__ import annotations

import argparse
from pathlib import Path

from neurodeploy.cli import conventions
from neurodeploy.cli import files as cli_files
from neurodeploy.errors import OptionError

ENCODINGS = ("rate", "current")


def add_parser(sub) -> None:
    p = conventions.add_command(
        sub, "convert", "convert a trained ANN (ONNX: Gemm/MatMul/Conv/ReLU/BatchNorm/AveragePool) to a "
                        "rate-coded spiking NIR graph of IF neurons",
        "neurodeploy convert ann.onnx --calibrate ann_in.npz --steps 100 -o snn.nir --encoded snn_in.npz")
    p.add_argument("model", help="an .onnx file")
    p.add_argument("--calibrate", required=True, metavar="IN.npz",
                   help="sample ANN inputs, array 'input' (samples, *input_shape) of analog values as the ANN "
                        "takes them: each layer's activation percentile is measured on them")
    p.add_argument("-o", "--output", help="the .nir file to write (default: MODEL.nir)")
    p.add_argument("--steps", type=int, default=100,
                   help="time steps per input presentation, recorded in the graph (default 100)")
    p.add_argument("--encoding", choices=ENCODINGS, default="rate",
                   help="rate: Bernoulli spike trains (what loihi2/spinnaker take); current: the analog value "
                        "every step as input current (float reference only: compiled programs take integer "
                        "spike counts). Default rate")
    p.add_argument("--percentile", type=float, default=99.9,
                   help="percentile of each layer's non-zero ReLU activations that sets its scale: it maps "
                        "to an input of --max-rate thresholds per step (default 99.9)")
    p.add_argument("--max-rate", type=float, metavar="R",
                   help="input per step, in thresholds, that the percentile activation maps to (about its spike "
                        "rate); default 0.5 with --reset zero, 1 with --reset subtract")
    p.add_argument("--reset", choices=("zero", "subtract"), default="zero",
                   help="what a spike does to v: zero (default; what every compile target does) or subtract "
                        "(more accurate at few steps; runs in the float reference only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the rate encoding recorded in the graph (default 0)")
    p.add_argument("--encoded", metavar="SPIKES.npz",
                   help="also write the calibration inputs encoded for the converted graph, array 'input' "
                        "(samples, steps, *input_shape), for simulate/run/verify and compile --calibrate")


def cmd_convert(args: argparse.Namespace) -> int:
    from neurodeploy.convert import ann_to_snn

    output = Path(args.output) if args.output else Path(args.model).with_suffix(".nir")
    if output.suffix != ".nir":
        raise OptionError(f"{output}: the converted graph must end in .nir")
    if output.resolve() == Path(args.model).resolve():
        raise OptionError(f"{output}: would overwrite the model; choose another -o")
    cli_files.expect_onnx(args.model, "convert")
    cli_files.check_outputs(("-o", str(output)), ("--encoded", args.encoded))
    if args.encoded:
        from neurodeploy.format.npzio import check_output

        check_output(args.encoded, "--encoded")
    calibration = ann_to_snn.read_calibration(args.calibrate)
    conversion = ann_to_snn.convert(args.model, calibration, steps=args.steps, encoding=args.encoding,
                                    percentile=args.percentile, reset=args.reset, seed=args.seed,
                                    max_rate=args.max_rate)
    ann_to_snn.write(conversion, output)
    print("\n".join(summary(conversion, args.model, output)))
    if args.encoded:
        from neurodeploy.format.npzio import write_npz

        write_npz(args.encoded, {"input": ann_to_snn.encode(calibration, conversion)})
        print(f"wrote {args.encoded}: the calibration inputs encoded ({args.encoding}, {args.steps} steps)")
    return 0


def summary(conversion, model, output) -> list[str]:
    info = conversion.info
    populations = sum(1 for layer in info["layers"] if layer["kind"] == "IF")
    lines = [f"converted {model} (sha256 {info['source_sha256'][:16]}): {populations} IF layer(s), "
             f"readout '{info['readout_node']}' ({info['readout_rule']})"]
    for layer in info["layers"]:
        if layer["kind"] == "IF":
            detail = (f"lambda {layer['scale']:.4g} (the {info['percentile']:g}th percentile of its ReLU "
                      f"activations / max rate {info['max_rate']:g})")
        elif "bias_divisor" in layer:
            detail = f"weights x {layer['weight_factor']:.4g}, biases / {layer['bias_divisor']:.4g}"
        else:
            detail = f"x {layer['weight_factor']:.4g}"
        source = f" <- {layer['onnx']}" if layer.get("onnx") else ""
        lines.append(f"  {layer['node']:<10} {layer['kind']:<8}{source}: {detail}")
    m = conversion.metadata
    lines.append(f"semantics: dt={m['neurodeploy.dt']:g} integrator={m['neurodeploy.integrator']} "
                 f"reset={m['neurodeploy.reset']} spike_amplitude={m['neurodeploy.spike_amplitude']:g}")
    lines.append(f"input: {info['input_rule']}")
    lines.append(f"readout: {info['readout']}")
    if m["neurodeploy.reset"] == "subtract":
        lines.append("note: the compile targets (loihi2, spinnaker, emulator) reset to zero only; convert with "
                     "--reset zero to deploy")
    if info["encoding"] == "current":
        lines.append("note: loihi2 and spinnaker take integer spike counts as input; use --encoding rate to deploy there")
    if info.get("warnings"):
        lines.append(f"warning: {info['warnings']}")
    lines.append(f"wrote {output}")
    return lines


COMMANDS = {"convert": cmd_convert}
