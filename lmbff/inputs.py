"""What the Python API accepts as inputs and labels, turned into :class:`Example` s with clear errors.

Inputs: a list (or any sequence) of strings, of ``(a, b)`` tuples or of dicts keyed by field name; a
NumPy array (1-D of texts, or 2-D with one column per field); a pandas Series or DataFrame (columns by
field name, or a one-column frame for a one-field task); a ``datasets.Dataset``. ``columns`` renames
columns to fields (``{"sentence": "text_a"}``). A bare string is a TypeError (pass a list of them).

Why by hand: scikit-learn's ``check_array`` is for numeric matrices and would turn a list of strings
into a character array; text inputs of these shapes need their own door.
"""

from __future__ import annotations

import warnings
from collections.abc import ItemsView, Iterable, KeysView, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from .data import Example
from .errors import InputError


def _is_frame(value) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def _is_series(value) -> bool:
    return type(value).__name__ == "Series" and hasattr(value, "to_list")


def _is_dataset(value) -> bool:
    return type(value).__name__ == "Dataset" and hasattr(value, "column_names")


def _columns_to_rows(names: Sequence[str], columns: Mapping[str, Sequence]) -> list[dict]:
    length = len(next(iter(columns.values()))) if columns else 0
    return [{name: columns[name][i] for name in names} for i in range(length)]


def _pick_columns(available: list[str], fields: Sequence[str], rename: Mapping[str, str], kind: str):
    """Which column feeds each field: by name (after ``rename``), or, with a warning naming it, the only
    column of a one-field task (a gold-label column passed by mistake is then said, not silent)."""
    repeated = sorted({c for c in available if available.count(c) > 1})
    if repeated:  # pandas hands back a frame, not a column, for a repeated name: refuse, naming it
        raise InputError(
            f"the {kind} has the column name(s) {repeated} more than once; which one is the text "
            "cannot be told: rename or drop the copies"
        )
    renamed = {rename.get(c, c): c for c in available}
    if all(f in renamed for f in fields):
        return {f: renamed[f] for f in fields}
    if len(fields) == 1 and len(available) == 1:
        warnings.warn(
            f"the {kind}'s only column {available[0]!r} is read as the task's field {fields[0]!r}; "
            f"name it {fields[0]!r} or pass columns={{{available[0]!r}: {fields[0]!r}}} to say so",
            UserWarning,
            stacklevel=4,
        )
        return {fields[0]: available[0]}
    missing = [f for f in fields if f not in renamed]
    raise InputError(
        f"the {kind} has columns {available}, but the task reads the fields {list(fields)}: "
        f"no column for {missing}; name the columns after the fields or pass columns={{'<column>': "
        f"'{missing[0]}'}}"
    )


def to_examples(
    inputs: Any, fields: Sequence[str], columns: Mapping[str, str] | None = None
) -> list[Example]:
    """Examples for a task with these ``fields``, in input order.

    Raises:
        TypeError: a bare string or bytes, or something that is not a collection of inputs.
        ValueError: no inputs, or a row with a missing field, ``None`` or a non-text value (the message
            names the row and the field).
    """
    rename = dict(columns or {})
    if isinstance(inputs, (str, bytes)):
        raise TypeError(
            "inputs must be a list of texts, not a single string: predict([text]) "
            "(a string would be read character by character)"
        )
    if isinstance(inputs, Mapping):
        raise TypeError(
            "inputs must be a list of dicts (one per example), a DataFrame or a Dataset, not a single dict"
        )
    _refuse_unordered(inputs, "inputs")
    if _is_frame(inputs):
        chosen = _pick_columns([str(c) for c in inputs.columns], fields, rename, "DataFrame")
        rows: Iterable = _columns_to_rows(fields, {f: inputs[c].to_list() for f, c in chosen.items()})
    elif _is_dataset(inputs):
        chosen = _pick_columns(list(inputs.column_names), fields, rename, "Dataset")
        rows = _columns_to_rows(fields, {f: inputs[c] for f, c in chosen.items()})
    elif _is_series(inputs):
        rows = inputs.to_list()
    elif hasattr(inputs, "ndim") and hasattr(inputs, "tolist"):  # a NumPy array
        if inputs.ndim == 2 and inputs.shape[1] != len(fields):
            raise InputError(
                f"a 2-D array needs one column per field {list(fields)}; this one has {inputs.shape[1]}"
            )
        if inputs.ndim not in (1, 2):
            raise InputError(f"expected a 1-D or 2-D array of texts, got {inputs.ndim} dimensions")
        rows = inputs.tolist()
    elif isinstance(inputs, Iterable):
        rows = inputs
    else:
        raise TypeError(f"inputs must be a list of texts, tuples or dicts; got {type(inputs).__name__}")
    examples = [_example(i, row, fields, rename) for i, row in enumerate(rows)]
    if not examples:
        raise InputError("no inputs: pass at least one example")
    return examples


def _refuse_unordered(values: Any, what: str) -> None:
    """Sets iterate in hash order: their results could not be matched to the inputs. (A dict's keys
    view is a set too, but iterates in insertion order.)"""
    if isinstance(values, AbstractSet) and not isinstance(values, (KeysView, ItemsView)):
        raise TypeError(
            f"{what} must be an ordered collection (a list, a tuple, an array, a Series), not a "
            f"{type(values).__name__}: its order is not the order you wrote, so results could not be "
            "matched to it; pass a list in the order you want"
        )


def _example(index: int, row: Any, fields: Sequence[str], rename: Mapping[str, str]) -> Example:
    source = f"input {index}"
    if isinstance(row, Example):
        return row
    if row is None:
        raise InputError(f"{source}: is None; expected a text (fields {list(fields)})")
    if isinstance(row, str):
        values: dict[str, Any] = {fields[0]: row} if len(fields) == 1 else {}
        if len(fields) != 1:
            raise InputError(
                f"{source}: one text, but the task reads {len(fields)} fields {list(fields)}; "
                "pass a tuple or a dict per example"
            )
    elif isinstance(row, Mapping):
        named = {rename.get(str(k), str(k)): v for k, v in row.items()}
        missing = [f for f in fields if f not in named]
        if missing:
            raise InputError(f"{source}: field '{missing[0]}' is missing (the example has {sorted(named)})")
        values = {f: named[f] for f in fields}
    elif isinstance(row, (tuple, list)):
        if len(row) != len(fields):
            raise InputError(f"{source}: has {len(row)} fields; the task reads {len(fields)} {list(fields)}")
        values = dict(zip(fields, row, strict=True))
    else:
        raise InputError(
            f"{source}: expected a text, a tuple or a dict, got {type(row).__name__} ({row!r:.60})"
        )
    for name, value in values.items():
        if value is None:
            raise InputError(f"{source}: field '{name}' is None; expected a text")
        if not isinstance(value, str):
            raise InputError(
                f"{source}: field '{name}' is a {type(value).__name__} ({value!r:.60}); expected a text"
            )
    return Example(values, None, source)


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (``np.int64(1)`` -> ``1``)."""
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def to_label_list(labels: Any, count: int) -> list:
    """Labels as a plain list of ``count`` values.

    Raises:
        TypeError: a bare string. ValueError: a length that differs from the inputs', or a None label.
    """
    if isinstance(labels, (str, bytes)):
        raise TypeError("labels must be a list (one per input), not a single string")
    _refuse_unordered(labels, "labels")
    if _is_series(labels):
        values = labels.to_list()
    elif hasattr(labels, "tolist"):
        values = labels.tolist()
    else:
        values = [_plain(v) for v in labels]
    if len(values) != count:
        raise InputError(f"{count} inputs but {len(values)} labels; give one label per input")
    for i, value in enumerate(values):
        if value is None:
            raise InputError(f"input {i}: field 'label' is None")
    return values


class LabelCodec:
    """Between the task's labels (strings) and the values a user fits with (strings, integers, ...).

    ``classes_`` is in the task's label order; a label the fitted values never showed is given the
    fitted values' type where it converts (``"3"`` -> ``3`` when the labels were integers)."""

    def __init__(self, task_labels: Sequence[str], values: Sequence | None = None):
        self.task_labels = list(task_labels)
        seen: dict[str, Any] = {}
        for value in values or []:
            seen.setdefault(str(value), value)
        kinds = {type(v) for v in seen.values()}
        self.classes = []
        for label in self.task_labels:
            if label in seen:
                self.classes.append(seen[label])
            elif kinds == {int}:
                self.classes.append(int(label) if label.lstrip("-").isdigit() else label)
            else:
                self.classes.append(label)

    def encode(self, values: Sequence) -> list[str]:
        """Task labels of user values. Raises ValueError naming the row of an unknown label."""
        out = []
        for i, value in enumerate(values):
            key = str(value)
            if key not in self.task_labels:
                raise InputError(
                    f"input {i}: field 'label' is {value!r}, not a label of the task {self.task_labels}"
                )
            out.append(key)
        return out


def to_label_sets(
    labels: Any, count: int, task_labels: Sequence[str], allow_empty: bool = False
) -> tuple[list[tuple[str, ...]], str, list]:
    """A multi-label task's labels: ``(label sets in the task's label order, "indicator" or "lists",
    the label values as given)``.

    Two forms, scikit-learn's: a binary indicator matrix (a NumPy array, a SciPy sparse matrix or a
    pandas DataFrame, one column per task label in the task's order, as ``MultiLabelBinarizer(classes=
    labels)`` makes it), or one list (tuple, set) of labels per input. A Python list of lists is always
    read as label lists, never as an indicator matrix (integer labels would be ambiguous).

    Raises:
        InputError: naming the input: a label that is not the task's, a label given twice, a string
            where a list of labels is expected, an empty set the task forbids, a matrix of the wrong
            width or with values other than 0 and 1.
        TypeError: a bare string.
    """
    if isinstance(labels, (str, bytes)):
        raise TypeError("labels must be a list (one label list per input), not a single string")
    matrix = labels.toarray() if hasattr(labels, "toarray") else labels
    if _is_frame(matrix):
        matrix = matrix.to_numpy()
    if getattr(matrix, "ndim", None) == 2:
        import numpy as np

        values = np.asarray(matrix)
        if values.shape != (count, len(task_labels)):
            raise InputError(
                f"an indicator matrix of shape {values.shape} for {count} inputs and {len(task_labels)} "
                f"labels {list(task_labels)}: one row per input, one column per label in that order"
            )
        if not np.isin(values, (0, 1)).all():
            row = int(np.argwhere(~np.isin(values, (0, 1)))[0][0])
            raise InputError(
                f"input {row}: an indicator matrix holds 0 and 1 only, got {values[row].tolist()}"
            )
        sets = [tuple(label for label, on in zip(task_labels, row, strict=True) if on) for row in values]
        form, given = "indicator", list(task_labels)
    else:
        rows = to_label_list(labels, count)
        sets, given = [], []
        for i, row in enumerate(rows):
            if isinstance(row, (str, bytes)) or not isinstance(row, (list, tuple, set, frozenset)):
                raise InputError(
                    f"input {i}: field 'label' is {row!r:.60}; a multi-label task takes a list of labels "
                    "per input (or an indicator matrix)"
                )
            keys = [str(_plain(value)) for value in row]
            for value, key in zip(row, keys, strict=True):
                if key not in task_labels:
                    raise InputError(
                        f"input {i}: the label {value!r} is not a label of the task {list(task_labels)}"
                    )
            if len(set(keys)) != len(keys):
                raise InputError(f"input {i}: a label is given more than once in {list(row)!r:.80}")
            sets.append(tuple(label for label in task_labels if label in keys))
            given += [_plain(value) for value in row]
        form = "lists"
    for i, labels_of in enumerate(sets):
        if not labels_of and not allow_empty:
            raise InputError(
                f"input {i}: no label; the task gives every example at least one (allow_empty to allow none)"
            )
    return sets, form, given
