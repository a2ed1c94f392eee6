"""The strict YAML layer every task file, ontology and template pool is read through: YAML 1.2's core
schema (``Yes`` stays text), duplicate keys refused at their line, a size ceiling, and the line of
every key (``YamlLines``) for located errors."""

from __future__ import annotations

import os
import re
from typing import ClassVar

import yaml

from .errors import ConfigError
from .task import TaskFileError


class YamlLines:
    """Line numbers of the keys of a YAML document, looked up by key path."""

    def __init__(self, node: yaml.Node | None):
        self.node = node

    def _pair(self, *path: str) -> tuple[yaml.Node | None, yaml.Node | None]:
        key_node, node = None, self.node
        for key in path:
            if not isinstance(node, yaml.MappingNode):
                return None, None
            key_node, node = next(
                ((k, v) for k, v in node.value if getattr(k, "value", None) == key), (None, None)
            )
        return key_node, node

    def node_at(self, *path: str) -> yaml.Node | None:
        return self._pair(*path)[1]

    def line(self, *path: str) -> int | None:
        """The line where the deepest existing key of ``path`` is written."""
        while path:
            key_node, _ = self._pair(*path)
            if key_node is not None:
                return key_node.start_mark.line + 1
            path = path[:-1]
        return 1

    def text_start(self, *path: str) -> int | None:
        """The file line on which a scalar's text begins (block scalars start on the next line)."""
        node = self.node_at(*path)
        if node is None:
            return None
        style = getattr(node, "style", None)
        return node.start_mark.line + (2 if style in ("|", ">") else 1)


_MAX_YAML_VALUES = 200_000
TASK_FILE_CHARS_ENV = "LMBFF_MAX_TASK_FILE_CHARS"
_TASK_FILE_CHARS = 5_000_000


def max_task_file_chars() -> int:
    """The hard ceiling on a task file's size and on the characters its aliases expand to: 5,000,000
    unless the operator lifts it with ``$LMBFF_MAX_TASK_FILE_CHARS`` (a task file cannot)."""
    return _ceiling_from_env(TASK_FILE_CHARS_ENV, _TASK_FILE_CHARS, int)


def _ceiling_from_env(name: str, default, kind):
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"${name}={text!r}: expected a positive number") from None
    if not value > 0:
        raise ConfigError(f"${name}={text!r}: expected a positive number")
    return value


class CoreSchemaLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's core schema instead of YAML 1.1's implicit types.

    Why: under 1.1 a label word ``Yes`` becomes the boolean True (then the text "True"), ``010`` the
    octal 8 and ``1:30`` the sexagesimal 90, without a word. Under the 1.2 core schema only
    ``true``/``false``, ``null``/``~``, decimal (and 0o/0x) integers and floats are typed; ``yes``,
    ``on``, ``010``-as-octal, ``1:30`` and dates stay text. PyYAML keeps the node tree with line numbers
    that every located error here is built on, so the schema is changed rather than the library."""

    yaml_implicit_resolvers: ClassVar[dict] = {}


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
):
    CoreSchemaLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))
CoreSchemaLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_core_int(loader, node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text, 0)
    return int(text, 10)  # 1.1 read a leading 0 as octal: 010 was 8


CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)


def _duplicate_keys(node, file: str) -> TaskFileError | None:
    """The first key written twice in one mapping, anywhere in the document (PyYAML keeps the last
    silently, so a second template of the same name would replace the first without a word), or a
    document whose aliases expand it past a bound in values or in characters."""
    stack = [node]
    expanded = 0
    characters = 0
    limit = max_task_file_chars()
    while stack:
        current = stack.pop()
        expanded += 1
        if isinstance(current, yaml.ScalarNode):
            characters += len(current.value)
        if expanded > _MAX_YAML_VALUES or characters > limit:  # aliases (*name) make a few lines stand
            what = (  # for billions of values or characters
                f"more than {_MAX_YAML_VALUES:,} values"
                if expanded > _MAX_YAML_VALUES
                else f"more than {limit:,} characters (${TASK_FILE_CHARS_ENV})"
            )
            return TaskFileError(
                file,
                current.start_mark.line + 1,
                "",
                f"the document stands for {what} (through YAML aliases?)",
                "write the values out, or split the file",
            )
        if isinstance(current, yaml.MappingNode):
            seen: dict = {}
            for key, value in current.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None  # ({} as a key: no name)
                if isinstance(name, str) and name in seen:
                    return TaskFileError(
                        file,
                        key.start_mark.line + 1,
                        name,
                        f"duplicate key (first written on line {seen[name]}); the second would silently "
                        "replace the first",
                        "rename or remove one of them",
                    )
                if name is not None:
                    seen[name] = key.start_mark.line + 1
                stack.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None


def strict_yaml(text: str, file: str):
    """(node tree, data) of a YAML document: safe loading with YAML 1.2's core schema
    (:class:`CoreSchemaLoader`), one document, no duplicate keys, within the size ceiling.

    Raises:
        TaskFileError: invalid YAML, a duplicated key or a document over the ceiling, with the file and
            line.
    """
    limit = max_task_file_chars()
    if len(text) > limit:  # parsing tens of megabytes takes minutes: refuse before reading
        raise TaskFileError(
            file,
            None,
            "",
            f"{len(text):,} characters, over the ceiling of {limit:,} for a task file",
            f"split the file, or lift the ceiling with ${TASK_FILE_CHARS_ENV}",
        )
    try:
        node = yaml.compose(text, Loader=CoreSchemaLoader)
        duplicate = _duplicate_keys(node, file)
        if duplicate is not None:
            raise duplicate
        data = yaml.load(text, Loader=CoreSchemaLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TaskFileError(file, mark.line + 1 if mark else None, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise TaskFileError(file, None, "", "invalid YAML: nested too deeply") from None
    return node, data
