"""The benchmarks' evidence in few files: one JSON-lines file per benchmark, holding every file its runs
wrote (each run's config.json, metrics.json and results.md, each report and table), from which the run
folders, and so every table and plot, are rebuilt.

    python benchmarks/results_store.py unpack     # benchmarks/results/<name>.jsonl -> <name>/ folders
    python benchmarks/results_store.py pack       # <name>/ folders -> <name>.jsonl (after a benchmark ran)
    python benchmarks/results_store.py check      # every stored file unpacks to the same bytes

``make results`` unpacks, then rebuilds the plots (``benchmarks/plots.py``). The run folders are not in
git (``.gitignore``); a benchmark writes into them as before, and ``pack`` folds what it wrote back into
its JSON-lines file, which is what is committed.

One line per file: ``{"path": "<relative to benchmarks/results/<name>/>", "json": {...}}`` for a JSON file
that reads back to the same bytes with ``json.dumps(..., indent=2)`` (so its configuration and metrics
are searchable as JSON), else ``{"path": ..., "text": "..."}`` with the text exactly as it was. Lines are
sorted by path, so a rerun that changes one run changes its lines only. Per-example predictions, states,
checkpoints and plots are not stored (they are ignored by git as before; plots are redrawn).

Why by hand: no library packs a folder tree into reviewable, line-diffable JSON; ``tarfile`` or ``zip``
would be one opaque blob per benchmark in git.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "results"
# What a run folder holds that is not evidence (regenerated, or per example): never stored.
SKIPPED_SUFFIXES = (".png", ".pdf")
SKIPPED_NAMES = {"predictions.jsonl", "dev_predictions.jsonl"}
SKIPPED_PARTS = {"state", "checkpoint", "derived"}


def _record(relative: str, raw: str) -> dict:
    """A file as one line: parsed JSON where it serialises back to the same text, else the text."""
    if relative.endswith(".json"):
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if data is not None:
            for indent in (2, None):
                for newline in (True, False):
                    form = {"indent": indent, "newline": newline}
                    if _text({"json": data, **form}) == raw:
                        return {"path": relative, "json": data, **form}
    return {"path": relative, "text": raw}


def _text(record: dict) -> str:
    if "text" in record:
        return record["text"]
    text = json.dumps(record["json"], indent=record["indent"])
    return text + ("\n" if record["newline"] else "")


def pack_one(folder: Path) -> Path:
    """``folder`` (one benchmark's run folders) -> ``<folder>.jsonl``, written atomically, checked to
    unpack to the same bytes before it replaces the old file."""
    records, originals = [], {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or not _stored_relative(relative):
            continue
        originals[relative.as_posix()] = path.read_bytes()
        records.append(_record(relative.as_posix(), originals[relative.as_posix()].decode("utf-8")))
    target = folder.with_suffix(".jsonl")
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    for record in (json.loads(line) for line in lines.splitlines()):  # as unpack will read them
        if _text(record).encode("utf-8") != originals[record["path"]]:
            raise SystemExit(f"{folder / record['path']}: would not unpack to the same bytes; not packed")
    handle, scratch = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(lines)
    os.replace(scratch, target)
    return target


def _stored_relative(relative: Path) -> bool:
    return (
        relative.suffix not in SKIPPED_SUFFIXES
        and relative.name not in SKIPPED_NAMES
        and not SKIPPED_PARTS.intersection(relative.parts)
    )


def unpack_one(store: Path, into: Path | None = None) -> int:
    """``<name>.jsonl`` -> its files under ``into`` (default: ``<name>/`` beside it). Returns the count."""
    folder = into if into is not None else store.with_suffix("")
    count = 0
    for number, line in enumerate(store.read_text(encoding="utf-8").splitlines(), 1):
        record = json.loads(line)
        relative = Path(record["path"])
        if relative.is_absolute() or ".." in relative.parts:
            raise SystemExit(f"{store}:{number}: path {record['path']!r} leaves the benchmark's folder")
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_text(record).encode("utf-8"))
        count += 1
    return count


def check_one(store: Path) -> list[str]:
    """Where the stored files differ from the folder beside the store (empty: identical)."""
    folder = store.with_suffix("")
    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        unpack_one(store, Path(scratch))
        for path in sorted(Path(scratch).rglob("*")):
            if path.is_file():
                relative = path.relative_to(scratch)
                original = folder / relative
                if not original.exists():
                    problems.append(f"{original}: missing")
                elif original.read_bytes() != path.read_bytes():
                    problems.append(f"{original}: differs from {store}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["pack", "unpack", "check"])
    parser.add_argument("names", nargs="*", help="benchmarks (default: all)")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    if args.command == "pack":
        folders = [args.root / n for n in args.names] or sorted(p for p in args.root.iterdir() if p.is_dir())
        for folder in folders:
            print(f"{pack_one(folder)}")
        return 0
    stores = [args.root / f"{n}.jsonl" for n in args.names] or sorted(args.root.glob("*.jsonl"))
    if args.command == "unpack":
        for store in stores:
            print(f"{store.with_suffix('')}: {unpack_one(store)} files")
        return 0
    problems = [p for store in stores for p in check_one(store)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
