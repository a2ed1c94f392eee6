"""Reading labelled examples from TSV, CSV, JSON lines and `datasets` folders.

Every malformed row (missing field, unknown label, empty text, bad encoding) is a :class:`DataError`
naming file, line and field; with ``skip_bad=True`` such rows are skipped and counted instead.
TSV follows ../shared/data: a header row, fields split on TAB, no quoting.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prompts.encoding import PromptTooLong
from prompts.library import Task
from prompts.template import Template, TemplateError

from .errors import ConfigError, DataError

LABEL_COLUMN = "label"
EXTENSIONS = (".tsv", ".csv", ".jsonl", ".json")


@dataclass(frozen=True)
class Example:
    """One labelled (or unlabelled) input: its text fields, its label, and where it came from."""

    fields: dict[str, str]
    # a label, a regression value, or for a multi-label task the tuple of its labels (possibly empty)
    label: str | float | tuple[str, ...] | None = None
    source: str = ""  # "file:line", for error messages and predictions


@dataclass
class ReadReport:
    """Examples read from one file, the rows skipped (with their errors) when skipping was asked, and
    how many examples have a blank text field (kept: see :func:`read_examples`)."""

    path: str
    examples: list[Example]
    skipped: list[DataError] = field(default_factory=list)
    blank: int = 0

    def notes(self) -> list[str]:
        """What a user should be told about this read: rows skipped, blank texts kept."""
        notes = []
        if self.skipped:
            notes.append(
                f"skipped {len(self.skipped)} malformed rows of {self.path}; first: {self.skipped[0]}"
            )
        if self.blank:
            notes.append(
                f"{self.blank} example(s) of {self.path} have a blank text: kept, scored with the "
                "template's own words around it (as LM-BFF does)"
            )
        return notes


def raw_lines(path: str | os.PathLike) -> list[bytes]:
    """A file's lines as bytes, line endings kept: the one line reader of the toolkit (data readers and
    ``lmbff split`` alike). Lines end at \\n, \\r\\n or \\r only: ``str.splitlines`` would also break a
    text at U+2028, U+2029, U+0085 or a form feed, and every later line number would then be off."""
    return Path(path).read_bytes().splitlines(keepends=True)


def _decode_lines(path: Path) -> Iterator[tuple[int, str | DataError]]:
    for number, line in enumerate((raw.rstrip(b"\r\n") for raw in raw_lines(path)), start=1):
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, DataError(str(path), number, f"not UTF-8 ({exc.reason} at byte {exc.start})")


def _refuse_repeated_columns(header: list[str], path: Path, line: int) -> None:
    """A header naming a column twice: a reader keeps the last value, silently. Refuse, naming it."""
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(
            str(path),
            line,
            f"the header names the column {repeated[0]!r} more than once ({header}); the last would "
            "silently win: rename or remove the copies",
            repeated[0],
        )


class _RepeatedKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``json.loads``' object hook: a key written twice in one object is an error, not the last value."""
    row: dict = {}
    for key, value in pairs:
        if key in row:
            raise _RepeatedKey(key)
        row[key] = value
    return row


def _rows_tsv(path: Path) -> Iterator[tuple[int, dict | DataError]]:
    header: list[str] | None = None
    for number, line in _decode_lines(path):
        if isinstance(line, DataError):
            if header is None:
                raise line
            yield number, line
            continue
        line = line.removeprefix("\ufeff") if number == 1 else line
        if header is None:
            header = line.rstrip("\r").split("\t")
            _refuse_repeated_columns(header, path, number)
            continue
        if not line.strip():
            continue
        values = line.rstrip("\r").split("\t")
        if len(values) != len(header):
            yield number, DataError(str(path), number, f"{len(values)} columns, the header has {len(header)}")
            continue
        yield number, dict(zip(header, values, strict=True))


def _rows_csv(path: Path) -> Iterator[tuple[int, dict | DataError]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(str(path), line, f"not UTF-8 ({exc.reason})") from None
    # csv refuses a field over 131,072 characters by default: a long document is data, not an error
    # (it is cut to what the model takes when it is encoded). The limit is process-wide; only raised.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        _refuse_repeated_columns(reader.fieldnames or [], path, 1)
    except csv.Error as exc:
        raise DataError(str(path), 1, f"not CSV: {exc}") from None
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, DataError(str(path), reader.line_num, f"not CSV: {exc}")
            return
        number = reader.line_num
        if None in row or any(v is None for v in row.values()):
            yield number, DataError(str(path), number, "the row's column count differs from the header")
            continue
        yield number, row


def _rows_jsonl(path: Path) -> Iterator[tuple[int, dict | DataError]]:
    for number, line in _decode_lines(path):
        if isinstance(line, DataError):
            yield number, line
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            yield number, DataError(str(path), number, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except _RepeatedKey as exc:
            yield (
                number,
                DataError(
                    str(path),
                    number,
                    "the key is written twice in one object; the last would silently win",
                    exc.key,
                ),
            )
            continue
        if not isinstance(row, dict):
            yield number, DataError(str(path), number, "expected a JSON object per line")
            continue
        yield number, row


def _rows_datasets(path: Path, split: str | None) -> Iterator[tuple[int, dict | DataError]]:
    import datasets  # heavy import, only for this format

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split is None or split not in loaded:
            raise DataError(str(path), None, f"a DatasetDict with splits {list(loaded)}; choose one of them")
        loaded = loaded[split]
    for number, row in enumerate(loaded, start=1):
        yield number, dict(row)


def _is_datasets_dir(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in ("dataset_info.json", "dataset_dict.json"))


def _check_readable(path: Path) -> None:
    """Name what is wrong with a data path that is not a readable file (or a datasets folder)."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise DataError(
                str(path), None, "a symbolic link to nothing (its target does not exist)"
            ) from None
        raise DataError(str(path), None, "no such file or folder") from None
    except OSError as exc:  # ELOOP: a symbolic link loop; EACCES on a folder on the way
        raise DataError(str(path), None, f"cannot be reached: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        if not _is_datasets_dir(path):
            raise DataError(
                str(path),
                None,
                "a folder, not a data file (a data folder is read with --data-dir; a folder given as a file "
                "must be one written by datasets' save_to_disk)",
            )
        return
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise DataError(str(path), None, f"{kind}; expected a data file")
    if not os.access(path, os.R_OK):
        raise DataError(str(path), None, "cannot read: permission denied")


def read_examples(
    path: str | os.PathLike,
    task: Task,
    *,
    skip_bad: bool = False,
    require_label: bool = True,
    split: str | None = None,
    columns: Mapping[str, str] | None = None,
    out_of_scope: str | None = None,
) -> ReadReport:
    """Read the examples of one file (or one `datasets` folder) for a task.

    ``out_of_scope``: a label value accepted beside the task's labels, meaning "none of them"
    (:mod:`lmbff.out_of_scope`).

    ``columns`` renames file columns to task fields (e.g. ``{"sentence": "text_a"}``). A blank text
    (empty, or only spaces) is kept, as LM-BFF keeps it: the example is scored with the template's own
    words around an empty field (CR's official split has such a row); ``blank`` counts them.

    Raises:
        DataError: the first bad row (unless ``skip_bad``), a missing column, an unreadable file, or a
            file with no example at all (empty, header only, or every row skipped).
    """
    path = Path(path)
    _check_readable(path)
    if _is_datasets_dir(path):
        rows = _rows_datasets(path, split)
    elif path.suffix == ".tsv":
        rows = _rows_tsv(path)
    elif path.suffix == ".csv":
        rows = _rows_csv(path)
    elif path.suffix in (".jsonl", ".json"):
        rows = _rows_jsonl(path)
    else:
        raise DataError(
            str(path),
            None,
            f"unknown format; expected one of {', '.join(EXTENSIONS)} "
            "or a folder written by datasets' save_to_disk",
        )
    rename = dict(columns or {})
    report = ReadReport(str(path), [])
    try:
        rows = list(rows)  # reading errors (permissions, I/O) surface here, located, not mid-run
    except OSError as exc:
        raise DataError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    for number, row in rows:
        result = (
            row
            if isinstance(row, DataError)
            else _example(row, rename, task, path, number, require_label, out_of_scope)
        )
        if isinstance(result, DataError):
            if not skip_bad:
                raise result
            report.skipped.append(result)
        else:
            report.examples.append(result)
            report.blank += any(not v.strip() for v in result.fields.values())
    if not report.examples:
        why = (
            f"all {len(report.skipped)} rows were malformed and skipped (first: {report.skipped[0]})"
            if report.skipped
            else "the file is empty or has only a header"
        )
        raise DataError(str(path), None, f"no examples: {why}")
    return report


def _example(
    row: dict,
    rename: dict,
    task: Task,
    path: Path,
    number: int,
    require_label: bool,
    out_of_scope: str | None = None,
) -> Example | DataError:
    absent = [column for column in rename if column not in row]
    if absent:  # a column named by the caller must exist: never fall back to another one silently
        return DataError(str(path), number, f"no column {absent[0]!r} (columns: {sorted(row)})")
    row = {rename.get(k, k): v for k, v in row.items()}
    values: dict[str, str] = {}
    for name in task.fields:
        if name not in row:
            return DataError(str(path), number, f"missing (columns: {sorted(row)})", name)
        value = row[name]
        if not isinstance(value, str):
            return DataError(str(path), number, f"expected text, got {type(value).__name__}", name)
        values[name] = value
    label = row.get(LABEL_COLUMN)
    if task.multi_label:
        return _multi_label_example(values, label, task, path, number, require_label)
    if label is None or (isinstance(label, str) and not label.strip()):
        if require_label:
            return DataError(str(path), number, "missing label", LABEL_COLUMN)
        return Example(values, None, f"{path}:{number}")
    if task.is_regression:
        try:
            score = float(label)
        except (TypeError, ValueError):
            return DataError(str(path), number, f"expected a number, got {label!r}", LABEL_COLUMN)
        low, high = task.value_range or (float("-inf"), float("inf"))
        if not low <= score <= high:
            return DataError(
                str(path), number, f"{score} is outside the task's range [{low}, {high}]", LABEL_COLUMN
            )
        return Example(values, score, f"{path}:{number}")
    label = str(label).strip()
    if isinstance(row.get(LABEL_COLUMN), bool):
        label = str(int(row[LABEL_COLUMN]))
    if label not in task.labels and label != out_of_scope:
        return DataError(
            str(path),
            number,
            f"unknown label {label!r}; the task's labels are {list(task.labels)}",
            LABEL_COLUMN,
        )
    return Example(values, label, f"{path}:{number}")


def _multi_label_example(
    values: dict[str, str], label, task: Task, path: Path, number: int, require_label: bool
) -> Example | DataError:
    """A multi-label row: its labels from a JSON list, or from one field split on the task's
    ``label_delimiter``. An unknown or repeated label is an error naming it; so is an empty list unless
    the task allows one (without a label column the row is unlabelled)."""
    where = f"{path}:{number}"

    def error(message: str) -> DataError:
        return DataError(str(path), number, message, LABEL_COLUMN)

    if label is None:
        return error("missing labels") if require_label else Example(values, None, where)
    if isinstance(label, list):
        if any(not isinstance(item, str) for item in label):
            bad = next(item for item in label if not isinstance(item, str))
            return error(f"expected a list of label texts, got {type(bad).__name__} {bad!r:.40} in it")
        items = [item.strip() for item in label]
    elif isinstance(label, str):
        delimiter = task.label_delimiter
        if delimiter is None and path.suffix in (".tsv", ".csv"):
            return error(
                "a multi-label task's TSV or CSV labels are one field split on the task's label_delimiter, "
                "which the task does not declare (add e.g. label_delimiter: ',' to its task block)"
            )
        text = label.strip()
        items = (
            [] if not text else [item.strip() for item in (text.split(delimiter) if delimiter else [text])]
        )
    else:
        return error(f"expected a list of labels, got {type(label).__name__} {label!r:.40}")
    if not items:
        if task.allow_empty:
            return Example(values, (), where)
        if not require_label:
            return Example(values, None, where)
        return error("no label; the task gives every example at least one (set allow_empty: true if not)")
    for position, item in enumerate(items, start=1):
        if not item:
            return error(f"label {position} of {len(items)} is empty ({label!r:.60})")
        if item not in task.labels:
            known = list(task.labels)
            return error(
                f"unknown label {item!r} (label {position} of {len(items)}); the task's labels are {known}"
            )
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        return error(f"the label {repeated[0]!r} is given more than once")
    # in the task's label order: one example, one set of labels, whatever order the file wrote them in
    return Example(values, tuple(sorted(items, key=task.labels.index)), where)


def find_split(data_dir: str | os.PathLike, split: str) -> Path:
    """The file (or `datasets` folder) holding a split of a data folder.

    Looks for ``<split>.tsv|.csv|.jsonl|.json``, a `datasets` folder ``<split>/``, or a DatasetDict folder;
    in a ``k-shot/<k>-<seed>`` folder without that split, in the task folder two levels up (LM-BFF's
    layout keeps test there). ``split`` may also be a file name inside the folder or a path.

    Raises:
        FileNotFoundError: nothing matches; the message lists what the folder holds.
    """
    directory = Path(data_dir)
    direct = Path(split)
    if direct.is_file() or _is_datasets_dir(direct):
        return direct
    if (directory / split).is_file():
        return directory / split
    for ext in EXTENSIONS:
        candidate = directory / f"{split}{ext}"
        # Anything under the split's file name (a folder, a FIFO, a broken link or a link loop) is that
        # split: read_examples then names what is wrong with it, instead of "no split here".
        if candidate.is_file() or os.path.lexists(candidate):
            return candidate
    if _is_datasets_dir(directory / split):
        return directory / split
    if (directory / "dataset_dict.json").exists():
        return directory
    if directory.parent.name == "k-shot":
        # LM-BFF's layout: <task>/k-shot/<k>-<seed>/{train,dev} with the test file in <task>/.
        try:
            return find_split(directory.parent.parent, split)
        except FileNotFoundError:
            pass
    held = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    raise FileNotFoundError(
        f"{directory}: no '{split}' split (looked for {split}.tsv/.csv/.jsonl/.json or a datasets folder); "
        f"the folder holds: {', '.join(held) or 'nothing (or does not exist)'}"
    )


def load_split(
    data_dir: str | os.PathLike,
    split: str,
    task: Task,
    *,
    skip_bad: bool = False,
    require_label: bool = True,
    columns: Mapping[str, str] | None = None,
    out_of_scope: str | None = None,
) -> ReadReport:
    """Read one split of a data folder (see :func:`find_split`); ``columns`` renames file columns to
    the task's fields and ``label`` (:func:`column_mapping`); ``out_of_scope`` as in
    :func:`read_examples`."""
    path = find_split(data_dir, split)
    return read_examples(
        path,
        task,
        skip_bad=skip_bad,
        require_label=require_label,
        split=split,
        columns=columns,
        out_of_scope=out_of_scope,
    )


def column_mapping(
    fields: tuple[str, ...] | list[str],
    text_columns: list[str] | None = None,
    label_column: str = LABEL_COLUMN,
) -> dict[str, str]:
    """File column -> task field (or ``label``): ``text_columns`` name the columns of the task's fields
    in order (none: the columns are named after the fields), ``label_column`` the gold labels'.

    Raises:
        ValueError: as many text columns as the task has fields are needed.
    """
    columns = {label_column: LABEL_COLUMN} if label_column != LABEL_COLUMN else {}
    if text_columns:
        if len(text_columns) != len(fields):
            raise ConfigError(
                f"{len(text_columns)} text column(s) {list(text_columns)} for the task's {len(fields)} "
                f"field(s) {list(fields)}; name one column per field, in order"
            )
        columns.update(dict(zip(text_columns, fields, strict=True)))
    return columns


def row_error(example: Example, message: str) -> DataError:
    """A DataError naming the row an example came from (``file:line``, or ``input N`` in the API)."""
    file, _, line = example.source.rpartition(":")
    if file and line.isdigit():
        return DataError(file, int(line), message)
    return DataError(example.source or "<input>", None, message)


def render_problem(template: Template, example: Example) -> DataError | None:
    """Why the template cannot render this row (a filter that fails on its value, say), naming the row;
    None when it renders. A field is cut by characters first, as encoding cuts it to what the model can
    take (:meth:`prompts.tokenization.TokenizerAdapter.shorten`), so long rows are never the problem."""
    limit = template.budget.max_output_chars // (2 * max(len(example.fields), 1))
    fields = {name: value[:limit] for name, value in example.fields.items()}
    try:
        template.render_parts(fields)
    except PromptTooLong:
        raise
    except TemplateError as exc:
        # The row's fault only if the template renders a plain row: otherwise it is the template's
        # error (raised as such, naming its file and line), whichever row met it first.
        template.render_parts({name: "x" for name in example.fields})
        return row_error(example, f"this row cannot be rendered: {exc}")
    return None


def check_renders(
    examples: list[Example], template: Template, *, skip_bad: bool = False
) -> tuple[list[Example], list[DataError]]:
    """The examples the template renders, and the rows it cannot (skipped with ``skip_bad``), before any
    model loads.

    Raises:
        DataError: the first row the template cannot render, unless ``skip_bad``.
    """
    kept, skipped = [], []
    for example in examples:
        problem = render_problem(template, example)
        if problem is None:
            kept.append(example)
        elif skip_bad:
            skipped.append(problem)
        else:
            raise problem
    return kept, skipped


def likely_mistakes(task: Task, train: list[Example], dev: list[Example] | None) -> list[str]:
    """What looks like a mistake in the data given to training, said but not refused: a training set
    with one class only (nothing to tell apart), and a dev set that is the training set (the checkpoint
    would be chosen on the examples it trained on)."""
    notes = []
    if not task.is_regression and train:
        classes = (
            {label for e in train for label in e.label} if task.multi_label else {str(e.label) for e in train}
        )
        if len(classes) == 1:
            notes.append(
                f"the training set has one class only ({next(iter(classes))!r}, {len(train)} examples) of "
                f"the task's {len(task.labels)}; the model will learn to always predict it"
            )
    if dev and train:

        def key(e: Example) -> tuple:
            return tuple(sorted(e.fields.items())), str(e.label)

        seen = {key(e) for e in train}
        shared = sum(key(e) in seen for e in dev)
        if shared == len(dev):
            notes.append(
                f"every one of the {len(dev)} dev examples is also a training example: the checkpoint "
                "is chosen on what it trained on, so dev scores will be optimistic"
            )
    return notes


def gold_text(label) -> str | None:
    """A gold label as the page shows it: a multi-label example's labels joined by ", "."""
    if label is None:
        return None
    return ", ".join(label) if isinstance(label, tuple) else str(label)
