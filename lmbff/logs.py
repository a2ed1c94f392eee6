"""What the library tells a person goes through ``logging`` (the ``lmbff`` logger), never ``print``: a
service can silence it, route it or format it. Notes are INFO, likely mistakes WARNING.

The command line, and the estimator or a run with ``verbose``/``progress`` on, show these messages
themselves with :func:`shown` while they work (on stderr; the command line on stdout), unless the
application has given the ``lmbff`` logger a handler of its own. With ``verbose=False`` nothing is added:
the messages go to ``logging`` only, and the application's handlers (or none) decide.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

log = logging.getLogger("lmbff")


@contextlib.contextmanager
def shown(verbose: bool = True, stream: TextIO | None = None) -> Iterator[None]:
    """Show the ``lmbff`` logger's INFO messages on ``stream`` (default stderr) for the duration, as
    plain lines, when ``verbose`` and the application has not given that logger a handler."""
    if not verbose or log.handlers:
        yield
        return
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # shown once, here, not again by logging's last-resort handler
    try:
        yield
    finally:
        handler.flush()
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate
