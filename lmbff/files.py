"""Writing results: atomically (temporary file or staged folder, then rename), as JSON and as markdown
tables."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import StateError


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a half-written one. The file
    gets the permissions the user's umask gives a new file (a temporary file is created 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A GitHub markdown table; floats are shown with 4 decimals."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def read_safetensors(path: str | os.PathLike) -> dict:
    """The tensors of a safetensors file (never unpickled).

    Raises:
        ValueError: the file is not a whole safetensors file (truncated by an interrupted copy, or
            something else under that name), naming it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise StateError(
            f"{path}: not a readable safetensors file ({error}); it may have been cut short by an "
            "interrupted copy or write: copy it again from where it was made"
        ) from None


def refuse_existing(folder: str | os.PathLike) -> None:
    """Raises FileExistsError when ``folder`` exists: an output is never written over (checked before the
    expensive work, and again by :func:`staged_folder` when it writes)."""
    if Path(folder).exists():
        raise FileExistsError(f"{folder} already exists; choose another --out")


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """A folder written whole or not at all: refuses one that exists, yields a staging folder beside it
    (same file system), renames it into place when the block ends and removes it when the block fails.

    Raises:
        FileExistsError: ``folder`` exists (before anything is written).
    """
    folder = Path(folder)
    refuse_existing(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        yield staged
        os.replace(staged, folder)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
