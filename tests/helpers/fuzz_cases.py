"""Run one generated case (valid or invalid) and say what went wrong; shared by
tests/compiler/test_properties.py and benchmarks/fuzz_long.py.

``run_valid``: compile for every target with reset zero; any exception is a failure, the
artifact must pass ``limits_checker.check_artifact``, and (for graphs with per-layer uniform
parameters and no severe health finding) the emulated artifact must stay within the health
report's quantization bound of the float reference (``accuracy_bound.check``).

``run_invalid``: building and compiling must raise a NeurodeployError (one line, in bounded time)
for every target the case is invalid for; through the command line, ``compile`` must exit with
status 2 and leave no output (and no temporary) file behind.
"""
from __future__ import annotations

import contextlib
import io
import math
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from helpers.accuracy_bound import check as check_accuracy
from helpers.limits_checker import check_artifact, describe
from helpers.nir_gen import Invalid, Spec, spike_inputs

TARGETS = ("loihi2", "spinnaker", "emulator")
TIME_LIMIT_S = 60  # per case and target; a hang becomes a failure, not a stuck run


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise CaseTimeout in the main thread after ``seconds`` (SIGALRM; a no-op where unavailable)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise CaseTimeout(f"no result after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    expected_errors: int = 0  # invalid inputs rejected as they should be
    seconds: float = 0.0


def neurons_per_core_for(net, wanted: int | None) -> int | None:
    """A --neurons-per-core cap that still fits one Loihi chip (128 cores) and one SpiNN-5 board."""
    if wanted is None:
        return None
    sizes = [p.size for p in net.populations.values()] + [math.prod(p.shape) for p in net.inputs.values()]
    need = max(1, math.ceil(sum(sizes) / 100), max(math.ceil(s / 120) for s in sizes))
    return max(wanted, need)


def run_valid(spec: Spec, *, accuracy: bool = True, neurons_per_core: int | None = None,
              per_neuron: bool = False, steps: int = 30, targets=TARGETS, time_s: float = TIME_LIMIT_S) -> Outcome:
    from neurodeploy.api import build
    from neurodeploy.compiler.compile import Options, compile_model

    out = Outcome()
    start = time.perf_counter()
    graph = spec.to_nir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            net = build(graph, warn=False, dt=spec.dt, integrator=spec.integrator, reset="zero", spike_amplitude=1.0)
        except Exception as exc:  # noqa: BLE001 - every exception on a valid graph is a finding
            out.failures.append(f"build: {type(exc).__name__}: {exc}")
            return out
        npc = neurons_per_core_for(net, neurons_per_core)
        inputs = spike_inputs(spec, np.random.default_rng(spec.seed), steps=steps)
        for target in targets:
            options = Options(target=target, allow_degraded=True, neurons_per_core=npc, per_neuron=per_neuron,
                              **spec.options())
            try:
                with time_limit(time_s):
                    compiled = compile_model(graph, options)
                    errors = check_artifact(compiled.to_artifact(), neurons_per_core=npc)
                    if errors:
                        out.failures.append(f"{target}: limits: {describe(errors)}")
                    severe = compiled.health.severe
                    out.stats[f"{target}.severe"] = sorted({f.check for f in severe})
                    if accuracy and not severe and not per_neuron and spec.notes.get("homogeneous"):
                        violations, stats = check_accuracy(compiled, inputs)
                        out.stats[f"{target}.accuracy"] = stats
                        out.failures += [f"{target}: accuracy: {v}" for v in violations]
                        _check_saturation_warned(compiled, stats, out, target)
            except Exception as exc:  # noqa: BLE001
                out.failures.append(f"{target}: {type(exc).__name__}: {str(exc)[:400]}")
    out.seconds = time.perf_counter() - start
    return out


def _check_saturation_warned(compiled, stats: dict[str, Any], out: Outcome, target: str) -> None:
    """Where the reference leaves the integer range, the health report must have said it could."""
    hit = stats.get("out_of_range")
    if not hit or target == "spinnaker":
        return
    warned = {f.layer for f in compiled.health.findings if f.check == "saturation_risk"}
    if hit[1] not in warned:
        out.failures.append(f"{target}: '{hit[1]}' leaves the {target} state range at step {hit[0]} without a "
                            f"saturation_risk warning (health warned for {sorted(warned)})")


def run_invalid(case: Invalid, tmp: Path | None = None, *, time_s: float = 20.0) -> Outcome:
    """In memory (api), and through `neurodeploy compile` from a file when the graph can be written."""
    from neurodeploy.api import build
    from neurodeploy.compiler.compile import Options, compile_model

    out = Outcome()
    start = time.perf_counter()
    options = case.options or case.spec.options()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target in case.targets:
            try:
                with time_limit(time_s):
                    graph = case.spec.to_nir(construct=case.construct)
                    if target == case.targets[0] and not case.construct:
                        _expect_error(lambda: build(graph, warn=False, **options), out, "build", case)
                    _expect_error(lambda: compile_model(graph, Options(target=target, **options)), out, target, case)
            except CaseTimeout as exc:
                out.failures.append(f"{target}: {exc} ({case.kind}: {case.detail})")
        if tmp is not None and case.spec.writable and not case.in_memory_only:
            _cli_case(case, options, tmp, out, time_s)
    out.seconds = time.perf_counter() - start
    return out


def _expect_error(fn, out: Outcome, where: str, case: Invalid) -> None:
    from neurodeploy.errors import NeurodeployError

    try:
        fn()
    except NeurodeployError as exc:
        out.expected_errors += 1
        if "\n" in str(exc):
            out.failures.append(f"{where}: error message spans several lines: {str(exc)[:200]!r}")
        return
    except CaseTimeout:
        raise
    except Exception as exc:  # noqa: BLE001
        out.failures.append(f"{where}: unhandled {type(exc).__name__}: {str(exc)[:300]} ({case.kind}: {case.detail})")
        return
    out.failures.append(f"{where}: accepted an invalid graph ({case.kind}: {case.detail})")


def _cli_case(case: Invalid, options: dict[str, Any], tmp: Path, out: Outcome, time_s: float) -> None:
    from neurodeploy.cli import main as cli

    folder = tmp / f"case{time.perf_counter_ns()}"
    folder.mkdir()
    model = case.spec.write_h5(folder / "model.nir")
    flags = []
    for key, value in options.items():
        if value is not None:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    for target in case.targets:
        output = folder / f"out.{target}.ndp"
        err = io.StringIO()
        try:
            with time_limit(time_s), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = cli.main(["compile", str(model), "--target", target, "-o", str(output), *flags])
        except SystemExit as exc:  # argparse rejects the option itself
            code = exc.code
        except CaseTimeout as exc:
            out.failures.append(f"cli {target}: {exc} ({case.kind}: {case.detail})")
            continue
        lines = err.getvalue().strip().splitlines()
        if code != 2:
            out.failures.append(f"cli {target}: exit status {code}, expected 2 ({case.kind}: {case.detail}): "
                                f"{' | '.join(lines)[:300]}")
        elif not lines or not lines[-1].startswith("error: ") or "Traceback" in err.getvalue():
            out.failures.append(f"cli {target}: stderr is not one error line: {err.getvalue()[:300]!r}")
        left = sorted(p.name for p in folder.iterdir() if p.name != "model.nir")
        if left:
            out.failures.append(f"cli {target}: a failed compile left {left} behind ({case.kind}: {case.detail})")
        else:
            out.expected_errors += 1
