"""LM-BFF k-shot splits (Gao et al. 2021, tools/generate_k_shot_data.py, procedure per REFERENCES.md).

For each seed: seed NumPy's legacy generator, shuffle the training rows (header excluded), group the
rows by label in order of first appearance after the shuffle (regression: below the task's threshold
is pole 0, else pole 1), take the first K rows of each group as train and the next K as dev, and keep
the original test file unchanged. Writing goes to ``<out>/<k>-<seed>/{train,dev,test}.<ext>`` plus a
``manifest.json`` with SHA-256 checksums of every file; each file is written atomically.

The layout is the one ../shared/data/<task>/k-shot/ uses, so split folders made here and LM-BFF's
official ones are read the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prompts.library import Task

from .data import find_split, raw_lines, read_examples
from .errors import InputError
from .files import atomic_write_bytes

LMBFF_SEEDS = (13, 21, 42, 87, 100)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class SplitFiles:
    seed: int
    folder: Path
    train: Path
    dev: Path
    test: Path | None


def lmbff_sample(
    task: Task, rows: Sequence[str], labels: Sequence[str], k: int, seed: int
) -> tuple[list[str], list[str]]:
    """Train and dev rows (K per class each) drawn from ``rows`` as LM-BFF draws them.

    ``labels[i]`` is the label of ``rows[i]``. Raises ValueError when a class has fewer than 2K rows.
    """
    order = list(range(len(rows)))
    np.random.RandomState(seed).shuffle(order)  # the same draws as np.random.seed(seed); np.random.shuffle
    groups: dict[str, list[int]] = {}
    for index in order:
        groups.setdefault(task.group_label(labels[index]), []).append(index)
    short = {label: len(members) for label, members in groups.items() if len(members) < 2 * k}
    if short:
        raise InputError(f"{task.name}: these classes have fewer than 2K={2 * k} training rows: {short}")
    train = [rows[i] for members in groups.values() for i in members[:k]]
    dev = [rows[i] for members in groups.values() for i in members[k : 2 * k]]
    return train, dev


def multi_label_sample(
    task: Task, rows: Sequence[str], labels: Sequence[tuple[str, ...]], k: int, seed: int
) -> tuple[list[str], list[str], dict]:
    """Train and dev rows of a multi-label task, K per label each, and the label counts of both.

    The rows are shuffled as LM-BFF shuffles them (NumPy's legacy generator, seeded). Train then takes,
    in that order, each row that carries a label with fewer than K train rows so far; dev does the same
    over the rows train left. A row counts towards every label it carries, so a label that often comes
    with another can end above K (the counts say by how much); a row with no label (``allow_empty``)
    counts towards an empty set taken K times like a label. Reproducible by seed.

    Raises:
        InputError: a label with fewer than 2K rows."""
    order = list(range(len(rows)))
    np.random.RandomState(seed).shuffle(order)
    groups = [*task.labels, *([()] if task.allow_empty else [])]
    available = {g: 0 for g in groups}
    for index in order:
        for label in labels[index] or [()]:
            if label in available:
                available[label] += 1
    short = {str(g) if g != () else "(no label)": n for g, n in available.items() if n < 2 * k}
    if short:
        raise InputError(f"{task.name}: these labels have fewer than 2K={2 * k} training rows: {short}")

    def take(candidates: list[int]) -> tuple[list[int], dict]:
        counts = {g: 0 for g in groups}
        taken = []
        for index in candidates:
            carried = list(labels[index]) or [()]
            if any(counts[g] < k for g in carried):
                taken.append(index)
                for g in carried:
                    counts[g] += 1
            if all(n >= k for n in counts.values()):
                break
        return taken, counts

    train, train_counts = take(order)
    used = set(train)
    dev, dev_counts = take([i for i in order if i not in used])
    counts = {
        "train": {str(g) if g != () else "": n for g, n in train_counts.items()},
        "dev": {str(g) if g != () else "": n for g, n in dev_counts.items()},
    }
    return [rows[i] for i in train], [rows[i] for i in dev], counts


def make_splits(
    task: Task,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    k: int = 16,
    seeds: Sequence[int] = LMBFF_SEEDS,
    test_split: str = "test",
    skip_bad: bool = False,
    overwrite: bool = False,
    train_file: str | os.PathLike | None = None,
    test_file: str | os.PathLike | None = None,
    columns: dict[str, str] | None = None,
) -> list[SplitFiles]:
    """Write LM-BFF k-shot splits of a data folder's train file (TSV, CSV or JSONL, kept in its format).

    Rows are validated first (a malformed row is an error naming file and line, or skipped with
    ``skip_bad``); the written rows are the file's own lines, byte for byte.

    ``train_file`` and ``test_file`` name the files instead of ``data_dir``'s train and test splits;
    ``columns`` renames the file's columns to the task's fields and label when reading them (the
    written rows keep the file's own columns: read the splits with the same ``columns``).

    Raises:
        FileExistsError: ``out_dir`` holds split files whose content would change (LM-BFF's official
            splits, hand-edited ones), unless ``overwrite``; nothing is written then.
    """
    train_path = Path(train_file) if train_file is not None else find_split(data_dir, "train")
    rows, labels, header, report = _train_rows(train_path, task, skip_bad, columns)
    try:
        test_path: Path | None = (
            Path(test_file)
            if test_file is not None
            else find_split(data_dir, test_split)
            if data_dir is not None
            else None
        )
    except FileNotFoundError:
        test_path = None
    out = Path(out_dir)
    test = (test_path, test_path.read_bytes()) if test_path is not None and test_path.is_file() else None
    # every file is planned before any is written
    source = {
        "train": str(train_path),
        "train_sha256": sha256_file(train_path),
        "skipped_rows": len(report.skipped),
    }
    plans = [
        _plan_split(
            task, rows, labels, header, k, seed, out / f"{k}-{seed}", train_path.suffix, test, source, columns
        )
        for seed in seeds
    ]
    _refuse_changes(plans, out, overwrite)
    written = []
    for seed, folder, files in plans:
        for path, data in files.items():
            atomic_write_bytes(path, data)
        paths = list(files)
        test_copy = next((p for p in paths if p.stem == "test"), None)
        written.append(SplitFiles(seed, folder, paths[0], paths[1], test_copy))
    return written


def _train_rows(
    train_path: Path, task: Task, skip_bad: bool, columns
) -> tuple[list[str], list[str], str, object]:
    """(the train file's valid rows as its own lines, in file order; their labels; the header; the read
    report). Raises InputError for a folder, or CSV records that span several lines."""
    if train_path.is_dir():
        raise InputError(f"{train_path}: splits are made from a train file (TSV, CSV or JSONL), not a folder")
    report = read_examples(train_path, task, skip_bad=skip_bad, columns=columns)
    raw = [line.decode("utf-8") for line in raw_lines(train_path)]  # the readers' own line numbering
    header = raw[0] if train_path.suffix in (".tsv", ".csv") else ""
    if train_path.suffix == ".csv" and len(raw) - 1 != len(report.examples) + len(report.skipped):
        raise InputError(
            f"{train_path}: CSV records that span several lines cannot be split row by row; "
            "convert the file to TSV or JSONL"
        )
    # An example's source is "file:line"; the file's line n is raw[n - 1]. Rows stay in file order.
    line_of = {id(e): int(e.source.rsplit(":", 1)[1]) for e in report.examples}
    examples = sorted(report.examples, key=lambda e: line_of[id(e)])
    rows = [raw[line_of[id(e)] - 1] for e in examples]
    rows = [r if r.endswith("\n") else r + "\n" for r in rows]
    return rows, [e.label if task.multi_label else str(e.label) for e in examples], header, report


def _plan_split(task, rows, labels, header, k, seed, folder: Path, ext: str, test, source: dict, columns):
    """(seed, folder, {path: bytes}) of one seed's split: train, dev, the test file's copy, a manifest."""
    counts = None
    if task.multi_label:
        train, dev, counts = multi_label_sample(task, rows, labels, k, seed)
    else:
        train, dev = lmbff_sample(task, rows, labels, k, seed)
    files = {
        folder / f"train{ext}": (header + "".join(train)).encode("utf-8"),
        folder / f"dev{ext}": (header + "".join(dev)).encode("utf-8"),
    }
    if test is not None:
        files[folder / f"test{test[0].suffix}"] = test[1]
    manifest: dict = {
        "task": task.name,
        "k": k,
        "seed": seed,
        "procedure": "LM-BFF generate_k_shot_data (numpy legacy shuffle)",
        "source": source,
        "files": {
            path.name: {"sha256": hashlib.sha256(data).hexdigest(), "rows": _count_rows(path, data)}
            for path, data in files.items()
        },
    }
    if columns:  # (only when given: a split made without renaming keeps its manifest byte for byte)
        manifest["columns"] = dict(columns)
    if counts is not None:
        manifest["procedure"] = (
            "multi-label: LM-BFF's shuffle, then each row taken while one of its labels has fewer than K; "
            "a row counts towards every label it carries"
        )
        manifest["label_counts"] = counts
    files[folder / "manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(
        "utf-8"
    )
    return seed, folder, files


def _refuse_changes(plans: list, out: Path, overwrite: bool) -> None:
    """A split folder may hold LM-BFF's official files or hand-edited ones: never replaced silently.
    Files that would be written byte for byte as they are (a rerun of the same split) are no conflict."""
    conflicts = [
        path
        for _, _, files in plans
        for path, data in files.items()
        if path.exists() and (path.is_dir() or path.read_bytes() != data)
    ]
    if conflicts and not overwrite:
        names = ", ".join(str(p) for p in conflicts[:6]) + (
            f" and {len(conflicts) - 6} more" if len(conflicts) > 6 else ""
        )
        raise FileExistsError(
            f"--out {out} already holds split files that would change: {names}; nothing was written. "
            "Choose another --out, or pass --overwrite to replace them"
        )


def _count_rows(path: Path, data: bytes) -> int:
    lines = data.count(b"\n")
    return lines - 1 if path.suffix in (".tsv", ".csv") else lines


def verify_manifest(folder: str | os.PathLike) -> dict[str, bool]:
    """Whether each file of a split folder still has the checksum its manifest recorded."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    return {
        name: (folder / name).exists() and sha256_file(folder / name) == info["sha256"]
        for name, info in manifest["files"].items()
    }


def split_folder(data_dir: str | os.PathLike, k: int, seed: int) -> Path:
    """The folder of one k-shot split: ``<data_dir>/<k>-<seed>`` or ``<data_dir>/k-shot/<k>-<seed>``."""
    data_dir = Path(data_dir)
    for candidate in (data_dir / f"{k}-{seed}", data_dir / "k-shot" / f"{k}-{seed}"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"{data_dir}: no split folder {k}-{seed} (nor k-shot/{k}-{seed}); "
        f"make one with: lmbff split --data-dir {data_dir} --k {k} --seeds {seed}"
    )
