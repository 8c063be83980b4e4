"""File handling of every command: one atomic writer, the user's umask, output folders, pipes and
files of the wrong kind.

Each row is the command a user ran: a missing or unwritable output folder fails at once with one
line naming the path (exit 2) and writes nothing; a reader that closes stdout early ends the
command quietly; a NIR graph where an artifact is expected (or the reverse) is named as such;
every file written has mode ``0o666 & ~umask``, as ``open()`` would give it.
"""
from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from neurodeploy.format import atomic
from neurodeploy.cli import main as cli
from neurodeploy.format.artifact import ArtifactError
from neurodeploy.format.artifact import read as read_artifact
from neurodeploy.errors import OptionError
from neurodeploy.models import ZOO_DIR

REPO = Path(__file__).resolve().parents[2]
UMASK = 0o027
MODE = 0o666 & ~UMASK  # 0o640
NODIR = "nodir"


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture
def umask() -> Iterator[int]:
    """Run the test under umask 027 (a mode that differs from both 0600 and 0644)."""
    old = os.umask(UMASK)
    try:
        yield MODE
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small NIR model, its inputs and its loihi2 artifact, shared read-only by the tests."""
    folder = tmp_path_factory.mktemp("files")
    model = folder / "model.nir"
    shutil.copy(ZOO_DIR / "lif_paper.nir", model)
    inputs = folder / "in.npz"
    np.savez(inputs, input=(np.random.default_rng(0).random((1, 20, 1)) < 0.3).astype(np.float32))
    ndp = folder / "model.loihi2.ndp"
    assert cli.main(["compile", str(model), "--target", "loihi2", "-o", str(ndp)]) == 0
    return {"model": model, "inputs": inputs, "ndp": ndp}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _main(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _console(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """The installed `neurodeploy` command (else `python -m neurodeploy`), as a user runs it."""
    script = Path(sys.executable).with_name("neurodeploy")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "neurodeploy"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("NEURODEPLOY_DEBUG", None)
    kwargs.setdefault("capture_output", True)
    return subprocess.run(command + [str(a) for a in args], text=True, timeout=300, env=env, **kwargs)


def _leftovers(folder: Path) -> list[str]:
    """Temp files a writer left behind (they start with a dot)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- the atomic writer


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_written_file_has_the_mode_open_gives(mask: int, tmp_path: Path) -> None:
    old = os.umask(mask)
    try:
        atomic.write_bytes(tmp_path / "a.bin", b"data")
        with open(tmp_path / "b.bin", "wb") as handle:
            handle.write(b"data")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.bin") == 0o666 & ~mask == _mode(tmp_path / "b.bin")
    assert atomic.current_umask() == old


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"earlier")
    with pytest.raises(ValueError):
        with atomic.open_atomic(target) as handle:
            handle.write(b"half")
            raise ValueError("the writer died")
    assert target.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_write_error_is_one_line_naming_the_path(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(OptionError, match=r"out\.bin: cannot write it \(No space left on device\)"):
        with atomic.replacing(target):
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OptionError, match=f"{NODIR} does not exist"):
        atomic.write_bytes(tmp_path / NODIR / "x.bin", b"data")


# ---------------------------------------------------------------- modes of every file a command writes


def test_every_command_writes_files_with_the_umask_mode(files: dict[str, Path], tmp_path: Path, umask: int,
                                                        capsys: pytest.CaptureFixture) -> None:
    model, inputs = files["model"], files["inputs"]
    out = tmp_path
    commands = [
        ["compile", model, "--target", "loihi2", "-o", out / "m.ndp", "--report", out / "m.html",
         "--report-input", inputs],
        ["compile", model, "--target", "loihi2", "--netx-format", "-o", out / "nx.ndp"],
        ["compile", model, "--target", "spinnaker", "-o", out / "sp.ndp"],
        ["run", out / "m.ndp", "--input", inputs, "-o", out / "y.npz"],
        ["simulate", model, "--input", inputs, "-o", out / "s.npz"],
        ["profile", out / "m.ndp", "--input", inputs, "--json", out / "p.json", "--html", out / "p.html"],
        ["export", out / "sp.ndp", "--format", "pynn", "-o", out / "net.py"],
        ["export", out / "nx.ndp", "--format", "netx", "-o", out / "n.net"],
    ]
    for command in commands:
        code, _, err = _main(capsys, *command)
        assert code == 0, (command, err)
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(["m.ndp", "m.html", "nx.ndp", "sp.ndp", "y.npz", "s.npz", "p.json", "p.html",
                              "net.py", "net.npz", "n.net"])
    assert {name: oct(_mode(out / name)) for name in written} == {name: oct(umask) for name in written}


@pytest.mark.skipif(importlib.util.find_spec("spynnaker") is None, reason="sPyNNaker is not installed")
def test_spinnaker_mapping_report_has_the_umask_mode(files: dict[str, Path], tmp_path: Path, umask: int,
                                                    capsys: pytest.CaptureFixture) -> None:
    sp = tmp_path / "sp.ndp"
    assert _main(capsys, "compile", files["model"], "--target", "spinnaker", "-o", sp)[0] == 0
    code, out, err = _main(capsys, "run", sp, "--input", files["inputs"], "-o", tmp_path / "y.npz",
                           "--backend", "spinnaker")
    assert code == 1, err  # a virtual board maps without running: no -o
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sp.ndp", "y.spinnaker.json"]  # a virtual board
    assert oct(_mode(tmp_path / "y.spinnaker.json")) == oct(umask)


def test_library_writers_use_the_umask_mode(tmp_path: Path, umask: int) -> None:
    """The writers outside the commands: captured Loihi profiles, converted and norse graphs."""
    import nir

    from neurodeploy.convert.ann_to_snn import write as write_converted
    from neurodeploy.analysis.profile_ingest import capture_lava_profilers

    capture_lava_profilers(tmp_path / "lava.json", num_steps=10, extra={"note": "test"})
    write_converted(nir.read(str(ZOO_DIR / "lif_paper.nir")), tmp_path / "converted.nir")
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("norse.torch")
    from neurodeploy.convert.norse import write_norse

    module = snn.SequentialState(torch.nn.Linear(3, 2), snn.LIFBoxCell())
    write_norse(module, torch.zeros(1, 3), tmp_path / "norse.nir")
    for name in ("lava.json", "converted.nir", "norse.nir"):
        assert oct(_mode(tmp_path / name)) == oct(umask), name
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- output folders, checked before any work


def _output_rows(files: dict[str, Path], out: Path) -> list[tuple[list, str]]:
    """(command, the option and path its error must name) for an output in a missing folder."""
    model, inputs, ndp = files["model"], files["inputs"], files["ndp"]
    missing = out / NODIR
    return [
        (["compile", model, "--target", "loihi2", "-o", missing / "x.ndp"], f"-o {missing / 'x.ndp'}"),
        (["compile", model, "--target", "loihi2", "-o", out / "x.ndp", "--report", missing / "r.html",
          "--report-input", inputs], f"--report {missing / 'r.html'}"),
        (["run", ndp, "--input", inputs, "-o", missing / "y.npz"], f"-o {missing / 'y.npz'}"),
        (["run", ndp, "--input", inputs, "-o", out / "y.npz", "--backend", "spinnaker", "--report",
          missing / "r.json"], f"--report {missing / 'r.json'}"),
        (["simulate", model, "--input", inputs, "-o", missing / "s.npz"], f"-o {missing / 's.npz'}"),
        (["profile", ndp, "--input", inputs, "--json", missing / "p.json"], f"--json {missing / 'p.json'}"),
        (["profile", ndp, "--input", inputs, "--json", out / "p.json", "--html", missing / "p.html"],
         f"--html {missing / 'p.html'}"),
        (["export", ndp, "--format", "netx", "-o", missing / "n.net"], f"-o {missing / 'n.net'}"),
        (["convert", out / "ann.onnx", "--calibrate", inputs, "-o", missing / "c.nir"], f"-o {missing / 'c.nir'}"),
        (["convert", out / "ann.onnx", "--calibrate", inputs, "-o", out / "c.nir", "--encoded",
          missing / "e.npz"], f"--encoded {missing / 'e.npz'}"),
    ]


def test_output_in_a_missing_folder_fails_first_and_writes_nothing(files: dict[str, Path], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    for command, named in _output_rows(files, tmp_path):
        code, out, err = _main(capsys, *command)
        line = _one_error_line(err)
        assert code == 2, (command, err)
        assert named in line and "does not exist" in line and "mkdir -p" in line, line
        assert out == "", (command, out)  # no work was done: not even a summary
        assert list(tmp_path.iterdir()) == [], (command, list(tmp_path.iterdir()))


@pytest.mark.parametrize("row", [0, 1, 3], ids=["compile_o", "compile_report", "run_report"])
def test_missing_folder_rows_as_a_user_runs_them(row: int, files: dict[str, Path], tmp_path: Path) -> None:
    command, named = _output_rows(files, tmp_path)[row]
    proc = _console(*command)
    assert proc.returncode == 2, proc.stderr
    assert named in _one_error_line(proc.stderr)
    assert list(tmp_path.iterdir()) == []


def test_output_in_an_unwritable_folder(files: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: let the check see the folder as a user would
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m, **kw: False if Path(p) == locked else real(p, m, **kw))
    else:
        locked.chmod(0o555)
    try:
        code, _, err = _main(capsys, "compile", files["model"], "--target", "loihi2", "-o", locked / "x.ndp")
    finally:
        locked.chmod(0o755)
    line = _one_error_line(err)
    assert code == 2
    assert f"-o {locked / 'x.ndp'}" in line and "not writable" in line, line
    assert list(locked.iterdir()) == []


def test_output_that_is_a_folder_or_named_twice(files: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "r.html").mkdir()
    code, _, err = _main(capsys, "compile", files["model"], "--target", "loihi2", "-o", tmp_path / "x.ndp",
                         "--report", tmp_path / "r.html", "--report-input", files["inputs"])
    assert code == 2 and "is a directory" in _one_error_line(err)
    code, _, err = _main(capsys, "profile", files["ndp"], "--input", files["inputs"], "--json", tmp_path / "p",
                         "--html", tmp_path / "p")
    assert code == 2 and "the same file" in _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_failing_report_leaves_no_artifact(files: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    """The report is built before anything is written: bad report inputs leave no .ndp behind."""
    bad = tmp_path / "bad.npz"
    np.savez(bad, input=np.ones((1, 20, 7)))
    code, _, err = _main(capsys, "compile", files["model"], "--target", "loihi2", "-o", tmp_path / "x.ndp",
                         "--report", tmp_path / "r.html", "--report-input", bad)
    assert code == 2 and "bad.npz" in _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


# ---------------------------------------------------------------- a reader that closes stdout early


def _closed_pipe_run(*args: str) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader has already gone: every write to it fails (EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return _console(*args, stdout=write_end, stderr=subprocess.PIPE, capture_output=False)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("which", ["check_json", "inspect", "help"])
def test_closed_pipe_ends_quietly(which: str, files: dict[str, Path]) -> None:
    args = {"check_json": ["check", files["model"], "--target", "loihi2", "--json"],
            "inspect": ["inspect", files["ndp"]], "help": ["--help"]}[which]
    proc = _closed_pipe_run(*args)
    assert proc.stderr == "", proc.stderr  # no traceback, no internal error, no 'Exception ignored'
    assert proc.returncode in (0, 141), proc.returncode


def test_check_json_into_head(files: dict[str, Path]) -> None:
    """`neurodeploy check MODEL --json | head -1`, through a shell."""
    script = Path(sys.executable).with_name("neurodeploy")
    if not script.exists():
        pytest.skip("the neurodeploy console script is not installed next to this python")
    line = f"{shlex.quote(str(script))} check {shlex.quote(str(files['model']))} --target loihi2 --json | head -1"
    proc = subprocess.run(["bash", "-c", f"{line}; echo rc=${{PIPESTATUS[0]}}"], capture_output=True, text=True,
                          timeout=300)
    assert proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines() in (["{", "rc=0"], ["{", "rc=141"]), proc.stdout


# ---------------------------------------------------------------- a file of the wrong kind


@pytest.mark.parametrize("command", ["run", "profile", "export"])
def test_nir_graph_where_an_artifact_is_expected(command: str, files: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    model = files["model"]
    tail = {"run": ["--input", files["inputs"], "-o", tmp_path / "y.npz"],
            "profile": ["--input", files["inputs"]],
            "export": ["--format", "netx", "-o", tmp_path / "n.net"]}[command]
    code, _, err = _main(capsys, command, model, *tail)
    line = _one_error_line(err)
    assert code == 2
    assert f"{model} is a NIR graph; {command} expects a compiled artifact (.ndp)" in line, line
    assert f"`neurodeploy compile {model} --target T -o {model.with_suffix('.ndp')}`" in line, line
    assert list(tmp_path.iterdir()) == []


def test_run_nir_as_a_user_runs_it(files: dict[str, Path], tmp_path: Path) -> None:
    proc = _console("run", files["model"], "--input", files["inputs"], "-o", tmp_path / "y.npz")
    assert proc.returncode == 2
    assert "is a NIR graph; run expects a compiled artifact" in _one_error_line(proc.stderr)


@pytest.mark.parametrize("command", ["compile", "check", "simulate"])  # verify takes both (test_verify_gate)
def test_artifact_where_a_nir_graph_is_expected(command: str, files: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    ndp = files["ndp"]
    tail = {"compile": ["--target", "loihi2", "-o", tmp_path / "x.ndp"], "check": ["--target", "loihi2"],
            "simulate": ["--input", files["inputs"], "-o", tmp_path / "s.npz"]}[command]
    code, _, err = _main(capsys, command, ndp, *tail)
    line = _one_error_line(err)
    assert code == 2
    assert f"{ndp} is a compiled artifact (.ndp) for loihi2, compiled from model.nir; " \
           f"{command} expects a NIR graph (.nir)" in line, line
    assert f"`neurodeploy run {ndp} --input IN.npz -o OUT.npz`" in line, line
    assert list(tmp_path.iterdir()) == []


def test_other_wrong_kinds(files: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    code, _, err = _main(capsys, "compile", files["inputs"], "--target", "loihi2")
    assert code == 2 and "in.npz is a zip archive" in _one_error_line(err)
    code, _, err = _main(capsys, "convert", files["model"], "--calibrate", files["inputs"], "-o",
                         files["model"].with_name("c.nir"))
    assert code == 2 and "model.nir is a NIR graph; convert expects" in _one_error_line(err)
    code, _, err = _main(capsys, "profile", files["ndp"], "--input", files["inputs"], "--source", files["ndp"])
    assert code == 2 and "profile --source expects a NIR graph" in _one_error_line(err)
    with pytest.raises(ArtifactError, match="is a NIR graph, not a compiled artifact"):
        read_artifact(files["model"])


def test_inspect_goes_by_content_not_name(files: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    artifact_named_bin = tmp_path / "artifact.bin"
    shutil.copy(files["ndp"], artifact_named_bin)
    code, out, _ = _main(capsys, "inspect", artifact_named_bin)
    assert code == 0 and "target loihi2, format v1" in out
    graph_named_ndp = tmp_path / "graph.ndp"
    shutil.copy(files["model"], graph_named_ndp)
    code, out, _ = _main(capsys, "inspect", graph_named_ndp)
    assert code == 0 and "semantics:" in out
