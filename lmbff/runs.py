"""Runs: what a command asks for, dispatched to one experiment or to a template ensemble.

Data flows one way: ``experiment`` runs one configuration; ``ensemble`` runs several and averages
them; this module (and the command line above it) chooses between them, so neither imports the other's
caller.
"""

from __future__ import annotations

from .ensemble import run_ensemble
from .experiment import ExperimentConfig, run_experiment
from .logs import shown


def run(config: ExperimentConfig, *, resume: bool = False, progress: bool = True, loaded=None) -> dict:
    """The metrics of the run ``config`` describes: a template ensemble when it names several
    templates (``template_ensemble``), else one experiment. See :func:`run_experiment` for ``resume``."""
    with shown(progress):  # its notes (lmbff.logs), on stderr unless logging is set up
        if config.template_ensemble:
            return run_ensemble(config, resume=resume, progress=progress)
        return run_experiment(config, resume=resume, progress=progress, loaded=loaded)
