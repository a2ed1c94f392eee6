"""One error hierarchy: every problem with what the user gave is an :class:`LmbffError`, with one
subclass per kind of input. Each keeps the built-in type callers already catch as a second base
(``ValueError``, or ``OSError`` for a model that cannot be found).

- :class:`TaskFileError`, :class:`TemplateError`: a task file or a template (:mod:`prompts`);
- :class:`InputError`: examples or labels that do not fit the task; :class:`DataError`, one of them:
  a data file or a row of one, located by file, line and field;
- :class:`ConfigError`: a configuration value, arguments that do not go together, or an unknown name
  in a registry (backend, scoring mode, preset, template);
- :class:`ModelError`: a model or tokenizer that cannot do what was asked;
- :class:`StateError`: a saved state or student folder;
- :class:`ModelNotFound`: a model name or path that cannot be loaded.

The command line reports an ``LmbffError`` as a one-line error (exit 2). Anything else is a bug: it
says so in one line and writes the traceback to a log file (or prints it with ``--debug``).
"""

from __future__ import annotations

from prompts.errors import ConfigError, LmbffError, ModelError
from prompts.library import TaskFileError
from prompts.template import TemplateError

__all__ = [
    "ConfigError",
    "DataError",
    "InputError",
    "LmbffError",
    "ModelError",
    "ModelNotFound",
    "StateError",
    "TaskFileError",
    "TemplateError",
]


class InputError(LmbffError, ValueError):
    """Examples, labels or columns that do not fit the task (given in Python, or too few for what was
    asked); a file's malformed row is a :class:`DataError`."""


class DataError(InputError):
    """A malformed row or file: ``str()`` names file, line and field."""

    def __init__(self, file: str, line: int | None, message: str, field_name: str | None = None):
        self.file, self.line, self.field_name, self.message = file, line, field_name, message
        where = f"{file}:{line}" if line else file
        what = f" field '{field_name}':" if field_name else ""
        super().__init__(f"{where}:{what} {message}")


class StateError(LmbffError, ValueError):
    """A state folder that is missing files, or does not fit the model it is put on."""


class ModelNotFound(LmbffError, OSError):
    """A model name or path that cannot be loaded; the message says why and what to do."""
