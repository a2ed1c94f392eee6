"""RunResult: the one writer and reader of a scoring run's files, for every command that scores
(``train``, ``run``, ``zero-shot``, ``predict``, template ensembles).

A run folder holds ``metrics.json`` (written last: its presence marks the run complete), ``results.md``
(the metrics tables and what produced them) and ``predictions.jsonl`` (one line per example: its source,
its text fields, the gold label, the prediction and every label's probability, raw and, when the run
calibrates, calibrated). ``metrics.json`` has the same keys for every command: task, method, backend,
model, template, seed, metric, test (the scored split's metrics; empty for unlabelled data), then the
command's own details (dev metrics, history, timing, memory, calibrated metrics, ...).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .files import atomic_write_json, atomic_write_jsonl, atomic_write_text

METRICS, RESULTS, PREDICTIONS = "metrics.json", "results.md", "predictions.jsonl"
# A tuned run's dev predictions at its chosen checkpoint: what a template ensemble averages to report
# its own dev score (lmbff.ensemble), so that ensembles are compared with single templates on dev.
DEV_PREDICTIONS = "dev_predictions.jsonl"
# A template ensemble's member runs: <ensemble>/members/<template>/ (lmbff.ensemble)
ENSEMBLE_MEMBERS = "members"


@dataclass
class RunResult:
    task: str
    method: str
    backend: str
    model: str
    template: str
    seed: int | None
    metric: str
    test: dict[str, float] = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The metrics.json content: the common keys, then the details (which never replace them)."""
        common = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "details"}
        clash = sorted(set(common) & set(self.details))
        if clash:
            raise ValueError(f"RunResult details repeat the common keys {clash}")
        details = dict(self.details)
        if "macro_f1" in self.test:  # said in the file itself: it differs from scikit-learn's default
            from .metrics import MACRO_F1_AVERAGING

            details.setdefault("metric_definitions", {"macro_f1": MACRO_F1_AVERAGING})
        return {**common, **details}

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        names = {f.name for f in fields(cls)} - {"details"}
        common = {k: data.get(k) for k in names}
        common["test"] = common["test"] or {}
        return cls(**common, details={k: v for k, v in data.items() if k not in names})

    @classmethod
    def read(cls, folder: str | os.PathLike) -> RunResult:
        """The result in a run folder. Raises FileNotFoundError when the run has not finished."""
        return cls.from_dict(json.loads((Path(folder) / METRICS).read_text()))

    @property
    def labelled(self) -> bool:
        return self.metric in self.test

    def write(
        self,
        folder: str | os.PathLike,
        *,
        markdown: str,
        records: list[dict],
        dev_records: list[dict] | None = None,
    ) -> Path:
        """Write predictions.jsonl (and dev_predictions.jsonl when given), results.md, then metrics.json,
        which marks the run finished (each atomically). Returns the folder."""
        folder = Path(folder)
        atomic_write_jsonl(folder / PREDICTIONS, records)
        if dev_records is not None:
            atomic_write_jsonl(folder / DEV_PREDICTIONS, dev_records)
        atomic_write_text(folder / RESULTS, markdown)
        atomic_write_json(folder / METRICS, self.to_dict())
        return folder


def prediction_records(
    task,
    examples,
    log_scores: np.ndarray,
    predictions: list,
    calibrated_scores: np.ndarray | None = None,
    calibrated_predictions: list | None = None,
) -> list[dict]:
    """One JSON line per example: its source (file:line), its text fields, gold label (None when
    unlabelled), prediction and label probabilities; with calibration, the calibrated ones beside them."""
    labels = list(task.labels)
    records = []
    for i, (e, p) in enumerate(zip(examples, predictions, strict=True)):
        record = {
            "source": e.source,
            "text": e.fields,
            "label": e.label,
            "prediction": p,
            "scores": {label: float(np.exp(log_scores[i, j])) for j, label in enumerate(labels)},
        }
        if calibrated_scores is not None:
            record["calibrated_prediction"] = calibrated_predictions[i]
            record["calibrated_scores"] = {
                label: float(np.exp(calibrated_scores[i, j])) for j, label in enumerate(labels)
            }
        records.append(record)
    return records
