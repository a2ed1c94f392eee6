"""Each benchmark run in a process of its own, one at a time: its peak memory is its own, a crash loses
only that run, and the parent keeps each finished result as a JSON file (so a stopped benchmark resumes
where it stopped).

The parent calls :func:`run_in_child` with a JSON-able spec; the script's ``child`` command (added by
:func:`add_child_command`) runs it and prints its result as the last line of its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def run_in_child(script: str, spec: dict, what: str) -> dict:
    """``python <script> child <spec>``'s result (the last line of its output, as JSON); a failed child
    ends the benchmark with the tail of its error output, naming ``what`` failed."""
    done = subprocess.run([sys.executable, script, "child", json.dumps(spec)], capture_output=True, text=True)
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr)
        sys.exit(f"{what} failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def save_result(target: Path, result: dict) -> None:
    """Write ``result`` to ``target`` atomically: a run stopped while writing leaves no half file that
    a resumed benchmark would take for finished."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.tmp")
    staged.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(staged, target)


def add_child_command(commands) -> None:
    """The ``child`` command (a spec in JSON) on an argparse subparsers object."""
    commands.add_parser("child", help="run one spec (called by run)").add_argument("spec")


def serve_child(run_child: Callable[[dict], dict], spec: str) -> None:
    """The ``child`` command: run the spec and print its result as one JSON line."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(json.dumps(run_child(json.loads(spec))), flush=True)
