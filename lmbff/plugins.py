"""Plugins: installed packages that add tuning backends or scoring modes through entry points.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."lmbff.backends"]
    last-layer = "mybackends.last_layer:LastLayerConfig"

    [project.entry-points."lmbff.scoring_modes"]
    mask-sum = "myscoring.mask_sum:MaskSum"

and, once installed, its backend shows up in ``lmbff train --help`` and works from the shell, with no
import in the user's code. Each group is read once per process, on the first lookup of its registry
(never at ``import lmbff``). Loading an entry point imports its module, which registers the class
(``@register`` / ``@register_mode``); a class the module did not register is registered here. A plugin
that fails to load is reported as a warning naming its distribution, and the rest still load: one
broken package must not take the command line down.

Why by hand: ``importlib.metadata.entry_points`` finds them; what to do with each (register once,
warn and go on) is ours.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable

BACKENDS = "lmbff.backends"
SCORING_MODES = "lmbff.scoring_modes"
_loaded: set[str] = set()


def load_plugins(group: str, register: Callable[[type], object], registered: Callable[[type], bool]) -> None:
    """Load the entry points of ``group`` once per process, registering what they name."""
    if group in _loaded:
        return
    _loaded.add(group)
    for entry in importlib.metadata.entry_points(group=group):
        source = f"{entry.dist.name if entry.dist else 'an installed package'} ({group}: {entry.name})"
        try:
            target = entry.load()
            if isinstance(target, type) and not registered(target):
                register(target)
        except Exception as error:  # a broken plugin: warn, and keep the toolkit and the other plugins
            warnings.warn(f"the plugin {source} failed to load: {error}", RuntimeWarning, stacklevel=2)


def forget_loaded() -> None:
    """Read the entry points again on the next lookup (tests, or after installing a plugin)."""
    _loaded.clear()
