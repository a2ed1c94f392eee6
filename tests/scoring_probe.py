"""Runs several `lmbff` commands in one process (under torchrun: in each process) and reports, per
process, the size of every batch it scored. Usage: scoring_probe.py '<json list of argument lists>'."""

import json
import os
import sys

import lmbff.model as model

_class_log_scores = model.PromptModel.class_log_scores
_shared = model.PromptModel.shared_prefix_log_scores


def _report(n: int) -> None:
    # One write per line, so that the two processes' lines never interleave within a line.
    sys.stdout.write(f"scored rank={os.environ.get('RANK', '0')} size={n}\n")
    sys.stdout.flush()


def class_log_scores(self, batch, calibrate=True):
    _report(batch.num_examples)
    return _class_log_scores(self, batch, calibrate)


def shared_prefix_log_scores(self, encodings, calibrate=True):
    _report(len(encodings))
    return _shared(self, encodings, calibrate)


model.PromptModel.class_log_scores = class_log_scores
model.PromptModel.shared_prefix_log_scores = shared_prefix_log_scores

if __name__ == "__main__":
    from lmbff.cli import main

    for command in json.loads(sys.argv[1]):
        code = main(command)
        if code:
            sys.exit(code)
