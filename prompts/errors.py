"""The root of the toolkit's error hierarchy, at the lowest layer so that the template layer's own
errors (task files, templates, label words, tokenizers) belong to it too. :mod:`lmbff.errors` re-exports
these and holds the rest."""

from __future__ import annotations


class LmbffError(Exception):
    """A problem with what the user gave (a file, a value, a folder, a model name): the message says
    what and where, and the command line prints it as a one-line error. Anything that is not an
    ``LmbffError`` is a bug in the toolkit."""


class ConfigError(LmbffError, ValueError):
    """A configuration value out of its type, bounds or choices, arguments that do not go together, or
    a name no registry knows (backend, scoring mode, preset, template)."""


class ModelError(LmbffError, ValueError):
    """A model (or its tokenizer) that cannot do what was asked: a slow tokenizer, no mask token, no
    bias terms for BitFit, a scoring mode of the other model kind."""
