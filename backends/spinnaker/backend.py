"""Run spinnaker artifacts through sPyNNaker 7.4.1: the main-environment side.

sPyNNaker reads ``~/.spynnaker.cfg`` (and writes a template there, then raises, when none
exists) and writes reports into the working directory. So every run happens in a child process
(``runner.py``) whose ``HOME``, ``XDG_CONFIG_HOME``, ``XDG_CONFIG_DIRS`` and working directory
are a temporary folder holding a ``.spynnaker.cfg`` written here: the user's files are never
read or touched.

- No machine configured: a virtual board (``virtual_board = True``, ``version = 5``).
  sPyNNaker partitions, places, routes and generates every core's data on the host; loading and
  running are skipped. :func:`map_virtual` returns the report (placements, routing entries,
  SDRAM per core, the shifts and synaptic words it generated, compared with the artifact's).
- A machine (``machine=HOST`` or ``spalloc=URL``, or ``$NEURODEPLOY_SPINNAKER_MACHINE`` /
  ``$NEURODEPLOY_SPINNAKER_SPALLOC``): :func:`run` loads and runs the network and returns the
  recorded traces like the emulator's (``spikes.<pop>``, ``v.<pop>`` as s1615 bits).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from neurodeploy.format import atomic
from neurodeploy.backends.spinnaker.network import SpinnakerBackendError
from neurodeploy.errors import InputDataError, NeurodeployError, OptionError

MACHINE_ENV = "NEURODEPLOY_SPINNAKER_MACHINE"
SPALLOC_ENV = "NEURODEPLOY_SPINNAKER_SPALLOC"
EXTRA_CFG_ENV = "NEURODEPLOY_SPINNAKER_CFG"  # a file whose sections are appended to the generated config
KEEP_ENV = "NEURODEPLOY_SPINNAKER_KEEP"  # keep the run folder (sPyNNaker's reports and log)
FAST_ROWS_ENV = "NEURODEPLOY_SPINNAKER_FAST_ROWS"  # 1: the faster equivalent row builder (fast_rows.py)
BOARD_VERSIONS = (3, 5)


class SpinnakerMachineError(SpinnakerBackendError):
    """The SpiNNaker machine could not be reached, or the run on it failed."""


@dataclass(frozen=True)
class Machine:
    """Where sPyNNaker runs: a virtual board (no host, no spalloc), a board, or a spalloc server."""

    host: str | None = None
    spalloc: str | None = None
    board_version: int = 5
    time_scale_factor: float | None = None

    @property
    def virtual(self) -> bool:
        return not self.host and not self.spalloc

    def describe(self) -> str:
        if self.host:
            return f"SpiNNaker machine '{self.host}' (board version {self.board_version})"
        if self.spalloc:
            return f"spalloc server '{self.spalloc}'"
        return "a virtual SpiNN-5 board"


def machine(host: str | None = None, spalloc: str | None = None, board_version: int | None = None,
            time_scale_factor: float | None = None) -> Machine:
    """The machine from arguments, else from $NEURODEPLOY_SPINNAKER_MACHINE / _SPALLOC, else virtual."""
    host = host or os.environ.get(MACHINE_ENV) or None
    spalloc = spalloc or (None if host else os.environ.get(SPALLOC_ENV)) or None
    if host and spalloc:
        raise OptionError("give either a SpiNNaker machine (--machine) or a spalloc server (--spalloc), not both")
    version = int(board_version or 5)
    if version not in BOARD_VERSIONS:
        raise OptionError(f"--board-version {version}: sPyNNaker knows SpiNN-3 (3) and SpiNN-5 (5) boards")
    if time_scale_factor is not None and not time_scale_factor > 0:
        raise OptionError(f"--time-scale-factor must be > 0, got {time_scale_factor}")
    return Machine(host, spalloc, version, time_scale_factor)


# ------------------------------------------------------------------ the isolated config

def write_config(folder: str | os.PathLike, where: Machine) -> Path:
    """Write ``folder/.spynnaker.cfg`` for ``where``; sPyNNaker's reports go under ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# written by neurodeploy (backends/spinnaker); sPyNNaker runs with HOME set to this folder",
             "[Machine]"]
    if where.virtual:
        lines += ["virtual_board = True", f"version = {where.board_version}"]
    elif where.host:
        lines += [f"machine_name = {where.host}", f"version = {where.board_version}"]
    else:
        lines += [f"spalloc_server = {where.spalloc}", f"version = {where.board_version}"]
    if where.time_scale_factor is not None:
        lines.append(f"time_scale_factor = {where.time_scale_factor:g}")
    lines += ["", "[Reports]", f"default_report_file_path = {folder}", "max_reports_kept = 2"]
    if not where.virtual:  # provenance (late/dropped packets, overruns) and the energy report
        lines += ["write_provenance = True", "read_provenance_data_on_end = True",
                  "read_router_provenance_data = True", "write_energy_report = True"]
    lines += ["", "[Mode]", "mode = Production", ""]
    text = "\n".join(lines)
    extra = os.environ.get(EXTRA_CFG_ENV)
    if extra:
        path = Path(extra)
        if not path.is_file():
            raise OptionError(f"${EXTRA_CFG_ENV} = {extra}: no such file")
        text += f"\n# appended from {path}\n" + path.read_text()
    cfg = folder / ".spynnaker.cfg"
    cfg.write_text(text)
    return cfg


def child_env(folder: str | os.PathLike) -> dict:
    """The environment of a sPyNNaker process: HOME and the XDG config folders inside ``folder``."""
    folder = Path(folder)
    env = dict(os.environ)
    for key in ("PYTHONHOME", "PYTHONSTARTUP"):
        env.pop(key, None)
    env.update({"HOME": str(folder), "XDG_CONFIG_HOME": str(folder / ".config"),
                "XDG_CONFIG_DIRS": str(folder / ".xdg"), "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": str(folder / ".matplotlib")})
    return env


def _require_spynnaker() -> None:
    try:
        import importlib.util

        found = importlib.util.find_spec("spynnaker") is not None and importlib.util.find_spec("pyNN") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise SpinnakerBackendError(
            "sPyNNaker is not installed in this environment: pip install -c constraints.txt 'spynnaker==1!7.4.1'")


# ------------------------------------------------------------------ running the child

def _artifact_path(source: Any, folder: Path, name: str) -> str:
    from neurodeploy.format import artifact as artifact_format
    from neurodeploy.format.program import Program

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise SpinnakerBackendError(f"{path}: no such artifact file")
        return str(path.resolve())
    if isinstance(source, Program):
        source = artifact_format.from_program(source)
    if isinstance(source, artifact_format.Artifact):
        return str(artifact_format.write(source, folder / f"{name}.ndp"))
    raise SpinnakerBackendError(f"cannot run a {type(source).__name__} on SpiNNaker: pass an .ndp path, an Artifact "
                                f"or a Program")


def _write_inputs(inputs: Any, names: Sequence[str], path: Path) -> None:
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise InputDataError(f"the program has inputs {', '.join(names)}; pass one array per input")
        inputs = {names[0]: inputs}
    arrays = {}
    for key, value in inputs.items():
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            raise InputDataError(f"input '{key}': numeric arrays only")
        arrays[str(key)] = arr
    np.savez(path, **arrays)


def _input_names(path: str) -> list[str]:
    from neurodeploy.format import artifact as artifact_format

    art = artifact_format.read(path)
    if art.target != "spinnaker":
        raise SpinnakerBackendError(f"{path}: the spinnaker backend runs spinnaker artifacts; this one is for "
                                    f"{art.target!r} (compile with --target spinnaker)")
    return list(art.manifest["program"]["inputs"])


class _Run:
    """A temporary HOME + config + job file; runs the child and maps its errors."""

    def __init__(self, where: Machine, keep: str | os.PathLike | None = None):
        self.where = where
        self.keep = Path(keep) if keep else (Path(tempfile.mkdtemp(prefix="neurodeploy-spinnaker-"))
                                               if os.environ.get(KEEP_ENV) else None)
        self._tmp = None

    def __enter__(self) -> "_Run":
        if self.keep is not None:
            self.keep.mkdir(parents=True, exist_ok=True)
            self.folder = self.keep.resolve()
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="neurodeploy-spinnaker-")
            self.folder = Path(self._tmp.name).resolve()
        write_config(self.folder, self.where)
        return self

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def invoke(self, jobs: list[dict], progress: bool, timeout: float | None, fast_rows: bool | None = None) -> None:
        _require_spynnaker()
        if fast_rows is None:
            fast_rows = os.environ.get(FAST_ROWS_ENV, "") not in ("", "0")
        for i, job in enumerate(jobs):
            job["fast_rows"] = bool(fast_rows)
            job.setdefault("error_file", str(self.folder / f"error{i}.json"))
            job["virtual"] = self.where.virtual
            if self.where.time_scale_factor is not None:
                job["time_scale_factor"] = self.where.time_scale_factor
        spec = self.folder / "jobs.json"
        spec.write_text(json.dumps(jobs))
        log = self.folder / "spynnaker.log"
        cmd = [sys.executable, "-m", "neurodeploy.backends.spinnaker.runner", str(spec)]
        try:
            with open(log, "w") as handle:
                proc = subprocess.run(cmd, cwd=self.folder, env=child_env(self.folder), stdin=subprocess.DEVNULL,
                                      stdout=handle if not progress else None,
                                      stderr=subprocess.STDOUT if not progress else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SpinnakerMachineError(
                f"sPyNNaker on {self.where.describe()} took longer than {timeout:.0f} s and was stopped; "
                f"{_advice(self.where)}") from None
        except OSError as exc:
            raise SpinnakerBackendError(f"cannot start {sys.executable}: {exc}") from None
        if proc.returncode == 0:
            return
        for job in jobs:
            path = Path(job["error_file"])
            if path.is_file():
                raise self._error(json.loads(path.read_text()))
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
        raise SpinnakerBackendError(f"sPyNNaker exited with status {proc.returncode}"
                                    f"{': ' + tail[0] if tail else ''}{self._kept()}")

    def _kept(self) -> str:
        if self.keep is not None:
            return f" (sPyNNaker's reports and log: {self.folder})"
        return f" (set {KEEP_ENV}=1 to keep sPyNNaker's reports and log)"

    def _error(self, info: dict) -> NeurodeployError:
        kind, module, message = info.get("type", ""), info.get("module", ""), info.get("message", "")
        known = {"InputDataError": InputDataError, "OptionError": OptionError,
                 "SpinnakerBackendError": SpinnakerBackendError}
        if kind in known:
            return known[kind](message)
        if module.startswith("neurodeploy"):
            return SpinnakerBackendError(message)
        if not self.where.virtual and (module.startswith(("spinnman", "spalloc")) or kind in (
                "OSError", "TimeoutError", "ConnectionError", "ConnectionRefusedError", "gaierror", "timeout")):
            check = ("check the URL and the spalloc account (user and password in the URL, or $SPALLOC_USER and "
                     "$SPALLOC_PASSWORD)" if self.where.spalloc else
                     "check the address, that the board is powered, booted and reachable from here (UDP ports "
                     "17893/54321), or use --spalloc URL")
            return SpinnakerMachineError(
                f"cannot use {self.where.describe()}: {kind}: {message}; {check}; "
                f"{_advice(self.where)}{self._kept()}")
        prefix = "" if self.where.virtual else f"on {self.where.describe()}: "
        return SpinnakerBackendError(f"sPyNNaker failed {prefix}{kind}: {message}; "
                                     f"{_advice(self.where)}{self._kept()}")


def _advice(where: Machine) -> str:
    factor = f"{max(2.0, 2 * (where.time_scale_factor or 1)):g}"
    return (f"if cores overrun or drop packets, try fewer neurons per core (compile with --neurons-per-core 64) "
            f"or a larger time scale factor (--time-scale-factor {factor})")


# ------------------------------------------------------------------ public API

def map_virtual(artifact: Any, inputs: Any = None, *, steps: int | None = None, record: Iterable[str] = (),
                report_out: str | os.PathLike | None = None, readback: str | os.PathLike | None = None,
                keep: str | os.PathLike | None = None, progress: bool = False,
                timeout: float | None = None, fast_rows: bool | None = None) -> dict:
    """Map ``artifact`` on a virtual SpiNN-5 board; returns the report (no spikes: no board runs).

    ``inputs`` only size the spike sources and the run length (first sample); ``steps``
    (default 10) when no inputs are given. ``readback``: an .npz of the synapses sPyNNaker
    generated, per projection (``<conn>.<exc|inh>.pre/post/word/delay_steps``).
    """
    return map_many([(artifact, inputs)], steps=steps, record=record, report_out=[report_out] if report_out else None,
                    readback=[readback] if readback else None, keep=keep, progress=progress, timeout=timeout,
                    fast_rows=fast_rows)[0]


def map_many(jobs: Sequence[tuple[Any, Any]], *, steps: int | None = None, record: Iterable[str] = (),
             report_out: Sequence[str | os.PathLike] | None = None,
             readback: Sequence[str | os.PathLike] | None = None, keep: str | os.PathLike | None = None,
             progress: bool = False, timeout: float | None = None, fast_rows: bool | None = None,
             time_rows: bool = False) -> list[dict]:
    """Several virtual-board mappings in one sPyNNaker process (its import is paid once).

    ``fast_rows``: install the equivalent faster row builder (default $NEURODEPLOY_SPINNAKER_FAST_ROWS);
    ``time_rows``: report the time in sPyNNaker's row builder and a digest of every synaptic
    matrix generated (``report["row_builder"]``).
    """
    from neurodeploy.backends.spinnaker.network import check_record

    items = check_record(list(record))
    with _Run(machine_virtual(), keep) as run_:
        specs = []
        for i, (art, inputs) in enumerate(jobs):
            path = _artifact_path(art, run_.folder, f"job{i}")
            names = _input_names(path)  # also checks the target before sPyNNaker starts
            job = {"artifact": path, "report": str(run_.folder / f"report{i}.json"), "record": items,
                   "steps": int(steps or 10), "time_rows": bool(time_rows)}
            if inputs is not None:
                _write_inputs(inputs, names, run_.folder / f"in{i}.npz")
                job["inputs"] = str(run_.folder / f"in{i}.npz")
            if readback:
                job["readback"] = str(Path(readback[i]).resolve())
            specs.append(job)
        run_.invoke(specs, progress, timeout, fast_rows)
        reports = [json.loads(Path(job["report"]).read_text()) for job in specs]
    if report_out:
        for report, path in zip(reports, report_out):
            if path:
                _write_json(path, report, run_.folder)
    return reports


def machine_virtual() -> Machine:
    return Machine()


def run(artifact: Any, inputs: Any, record: Iterable[str] | str = ("v",), *, host: str | None = None,
        spalloc: str | None = None, board_version: int | None = None, time_scale_factor: float | None = None,
        report_out: str | os.PathLike | None = None, keep: str | os.PathLike | None = None,
        progress: bool = False, timeout: float | None = None, fast_rows: bool | None = None) -> dict[str, np.ndarray]:
    """Run ``artifact`` on a SpiNNaker machine; returns ``spikes.<pop>`` and ``v.<pop>`` like the emulator.

    The machine: ``host`` / ``spalloc``, else $NEURODEPLOY_SPINNAKER_MACHINE / _SPALLOC. Without
    one this raises (a virtual board produces no spikes): use :func:`map_virtual`. Samples of a
    batch run one after another (``sim.reset()`` between them). ``report_out``: the report JSON
    with provenance (late/dropped packets, timer overruns) and sPyNNaker's energy report.
    """
    from neurodeploy.backends.spinnaker.network import check_record

    items = check_record([r.strip() for r in record.split(",")] if isinstance(record, str) else list(record))
    where = machine(host, spalloc, board_version, time_scale_factor)
    if where.virtual:
        raise SpinnakerBackendError(
            f"no SpiNNaker machine configured (--machine HOST, --spalloc URL or ${MACHINE_ENV}); a virtual board "
            f"maps the network but produces no spikes: use `neurodeploy run ART --backend spinnaker` without "
            f"--output traces, or neurodeploy.backends.spinnaker.map_virtual, for the mapping report")
    with _Run(where, keep) as run_:
        path = _artifact_path(artifact, run_.folder, "program")
        _write_inputs(inputs, _input_names(path), run_.folder / "in.npz")
        job = {"artifact": path, "inputs": str(run_.folder / "in.npz"), "output": str(run_.folder / "out.npz"),
               "report": str(run_.folder / "report.json"), "record": items}
        run_.invoke([job], progress, timeout, fast_rows)
        with np.load(job["output"], allow_pickle=False) as data:
            traces = {key: data[key] for key in data.files}
        if report_out:
            _write_json(report_out, json.loads(Path(job["report"]).read_text()), run_.folder)
    return traces


def _write_json(path: str | os.PathLike, value: Any, run_folder: str | os.PathLike | None = None) -> None:
    """The report, its paths relative to ``path`` (the artifact's with its SHA-256) and the
    temporary run folder's shown as ``<run folder>``: no absolute path of this machine."""
    from neurodeploy.format.paths import portable, sha256

    value = dict(value)
    artifact = value.get("artifact")
    if isinstance(artifact, str) and Path(artifact).is_file():
        value["artifact_sha256"] = sha256(artifact)
    labels = [(run_folder, "<run folder>")] if run_folder is not None else []
    text = json.dumps(portable(value, Path(path).absolute().parent, labels), indent=1, sort_keys=True)
    atomic.write_text(path, text)


def doctor() -> dict[str, Any]:
    """Is sPyNNaker importable here, and which machine would a run use?"""
    where = None
    try:
        where = machine()
    except OptionError as exc:
        return {"available": False, "detail": str(exc)}
    try:
        from importlib import metadata

        version = metadata.version("sPyNNaker")
    except Exception:  # noqa: BLE001
        return {"available": False, "detail": "sPyNNaker is not installed: pip install -c constraints.txt "
                                               "'spynnaker==1!7.4.1'"}
    return {"available": True, "machine": not where.virtual,
            "detail": f"sPyNNaker {version}; runs on {where.describe()}"
                      + ("" if not where.virtual else f" (set ${MACHINE_ENV} or --machine for a real one)")}



# ------------------------------------------------------------------ command line

def summary(report: dict) -> list[str]:
    """A few lines for the terminal: what sPyNNaker mapped and whether it matches the artifact."""
    cores, chips = report["cores"], report["chips"]
    lines = [f"sPyNNaker 7.4.1 on {'a virtual SpiNN-5 board' if report['virtual_board'] else 'a SpiNNaker machine'}: "
             f"{cores['application']} application core(s) (compiler: {cores['predicted']}), "
             f"{cores['delay_extension']} delay-extension, {cores['system']} system; "
             f"{chips['used']} chip(s) with application cores (compiler: {chips['predicted']}); "
             f"routing entries max {report['routing_entries']['max']} per chip"]
    for name, pop in report["populations"].items():
        sdram = ", ".join(str(b) for b in pop["sdram_bytes"])
        lines.append(f"  {name}: {pop['cores']} core(s) (compiler: {pop['predicted_cores']}), SDRAM bytes per core: "
                     f"{sdram}")
    for name, s in report["shifts"].items():
        lines.append(f"  {name}: ring-buffer shifts {s['population_vertex']} (artifact {s['artifact']})")
    for name, conv in report.get("local_only", {}).items():
        connector = conv.get("connector", "ConvolutionConnector")
        how = (f"local-only ({conv['projections']} {connector} projection(s))" if conv["local_only"]
               else f"FromList ({conv['reason']})")
        lines.append(f"  {'pool + dense' if 'pool' in conv else 'conv'} {name}: {how}")
    matches = report["matches"]
    bad = [k for k, ok in matches.items() if not ok]
    synapses = sum(s["synapses"] for s in report["synapses"].values())
    lines.append(f"  compared with the artifact: {synapses} synapses; "
                 + ("all equal (" + ", ".join(matches) + ")" if not bad else "DIFFERENT: " + ", ".join(bad)))
    return lines


def run_backend(artifact: Any, inputs: Any, *, record: Sequence[str], progress: bool,
                options: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The registry's entry point (backends/registry.py): traces from a machine, or None after a
    virtual-board mapping (nothing ran). ``options``: machine, spalloc, board_version,
    time_scale_factor, report (path), output (the traces' path, for the default report name)."""
    get = options.get
    where = machine(get("machine"), get("spalloc"), get("board_version"), get("time_scale_factor"))
    output = get("output") or "spinnaker.npz"
    report_path = Path(get("report")) if get("report") else Path(output).with_suffix(".spinnaker.json")
    if where.virtual:
        report = map_virtual(artifact, inputs, record=record, report_out=report_path, progress=progress)
        print("\n".join(summary(report)))
        print(f"virtual board: mapped and checked, NOT run: no spikes exist (set --machine HOST, --spalloc URL or "
              f"${MACHINE_ENV} to run on a SpiNNaker machine); {output} was not written; report: {report_path}")
        return None
    traces = run(artifact, inputs, record, host=where.host, spalloc=where.spalloc,
                 board_version=where.board_version, time_scale_factor=where.time_scale_factor,
                 report_out=report_path, progress=progress)
    report = json.loads(report_path.read_text())
    print("\n".join(summary(report)))
    print(f"report (provenance, energy): {report_path}")
    return traces
