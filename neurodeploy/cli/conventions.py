"""What every command shares: its help layout and what ``--json`` means.

Each subcommand has a description and an example (``add_command``). ``--json`` takes an optional
FILE (``add_json_option``): without one, or with ``-``, stdout holds the JSON alone (the summary
for people is left out, messages go to stderr) and errors are JSON too (``{"error": ...,
"exit_status": 2}`` on stdout besides the usual line on stderr, see ``cli.main``); with FILE, the
file is written and stdout is for people as without --json. Paths in the JSON are relative to the
file written (to the working folder on stdout), never absolute.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

STDOUT = "-"
_INPUT_SUFFIXES = (".nir", ".ndp", ".npz", ".onnx", ".html")


def add_command(sub: Any, name: str, summary: str, example: str, details: str = "") -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` has a description and an ``Example:``."""
    description = summary[0].upper() + summary[1:] + "." + (f"\n\n{details}" if details else "")
    return sub.add_parser(name, help=summary, description=description,
                          epilog=f"Example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)


def _json_path(text: str) -> str:
    if Path(text).suffix.lower() in _INPUT_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a JSON output: give --json a .json FILE, or put --json after the positional arguments")
    return text


def add_json_option(p: argparse.ArgumentParser, what: str, required: bool = False) -> None:
    """``--json [FILE]``: ``what`` as JSON on stdout (no FILE, or ``-``), else into FILE."""
    p.add_argument("--json", nargs="?", const=STDOUT, type=_json_path, metavar="FILE", required=required,
                   help=f"{what} as JSON: on stdout without FILE (or with '-'), else written to FILE")


def json_file(args: argparse.Namespace) -> Optional[str]:
    """The FILE of ``--json FILE`` (None for stdout or no --json): an output to check before any work."""
    value = getattr(args, "json", None)
    return None if value in (None, STDOUT) else value


def json_to_stdout(args: argparse.Namespace) -> bool:
    return getattr(args, "json", None) == STDOUT


def say(args: argparse.Namespace, line: str) -> None:
    """A human message: on stdout, unless stdout carries the JSON."""
    print(line, file=sys.stderr if json_to_stdout(args) else sys.stdout)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return float(value)


def json_text(value: Any, start: str | Path) -> str:
    """``value`` as JSON text, with paths relative to the folder ``start``."""
    from neurodeploy.format.paths import portable

    plain = json.loads(json.dumps(value, default=_plain))
    return json.dumps(portable(plain, start), indent=1, sort_keys=True)


def emit_json(args: argparse.Namespace, value: Any) -> None:
    """Print ``value`` (``--json``) or write it to FILE (``--json FILE``), saying so."""
    from neurodeploy.format import atomic

    if json_to_stdout(args):
        print(json_text(value, Path.cwd()))
        return
    atomic.write_text(args.json, json_text(value, Path(args.json).absolute().parent) + "\n")
    say(args, f"wrote {args.json}")


def wants_json(argv: Sequence[Any]) -> bool:
    """Does a command line ask for JSON on stdout (``--json`` without FILE, or ``--json -``)?

    Its errors then print as JSON on stdout too; with ``--json FILE`` stdout is for people.
    """
    words = [str(a) for a in argv]
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else None
        if word == "--json=-" or (word == "--json" and (following is None or following.startswith("-"))):
            return True
    return False


def json_error(message: str, exit_status: int) -> str:
    return json.dumps({"error": message, "exit_status": exit_status})
