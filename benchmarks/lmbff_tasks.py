"""LM-BFF's 15 tasks as the benchmarks run them: which are single-sentence, which template a causal LM
uses, and the data folder each run reads (LM-BFF's official 16-shot splits, and the test set or a
fixed, seeded sample of it).

Test sets of more than ``TEST_SAMPLE`` examples (SST-5, MNLI, SNLI, QNLI, QQP) are sampled once with
``SAMPLE_SEED``: ``<derived>/<task>/test.tsv`` holds the sample and ``k-shot/`` links to the shared
splits, so every method of the table scores the same examples. MR, CR, MPQA and Subj's test files are
already LM-BFF's own 2,000-example samples. QQP has no GLUE dev set here: its test is a sample of
``test_substitute.tsv`` (see ../shared/data/README.md), not comparable to published QQP numbers.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

TEST_SAMPLE = 2000
SAMPLE_SEED = 42
SEEDS = (13, 21, 42, 87, 100)


@dataclass(frozen=True)
class BenchmarkTask:
    name: str
    single_sentence: bool
    metric: str  # as LM-BFF reports it
    causal_template: str | None = None  # the task file's template a causal LM uses (None: the default)
    test_file: str = "test.tsv"


TASKS = [
    BenchmarkTask("SST-2", True, "accuracy"),
    BenchmarkTask("SST-5", True, "accuracy"),
    BenchmarkTask("MR", True, "accuracy"),
    BenchmarkTask("CR", True, "accuracy"),
    BenchmarkTask("MPQA", True, "accuracy"),
    BenchmarkTask("Subj", True, "accuracy"),
    # LM-BFF's slot-first template makes a causal LM score the whole question once per label
    BenchmarkTask("TREC", True, "accuracy", causal_template="answer_type"),
    BenchmarkTask("CoLA", True, "mcc"),
    BenchmarkTask("MNLI", False, "accuracy"),
    BenchmarkTask("SNLI", False, "accuracy"),
    BenchmarkTask("QNLI", False, "accuracy"),
    BenchmarkTask("RTE", False, "accuracy"),
    BenchmarkTask("MRPC", False, "f1"),
    BenchmarkTask("QQP", False, "f1", test_file="test_substitute.tsv"),
    BenchmarkTask("STS-B", False, "pearson"),
]
BY_NAME = {t.name: t for t in TASKS}
# Every pair task file also has a slot-last variant for causal LMs (LM-BFF's label words), which reads
# one position per pair instead of scoring the second sentence once per label word over the full
# vocabulary (zero-shot MNLI, 2,000 pairs: 4.7 against 40 minutes; 38.0 / 40.8 raw / calibrated against
# LM-BFF's template's 47.6 / 48.5, benchmarks/results/pair_template_check). The table's zero-shot
# columns keep LM-BFF's own; its tuned pair runs use the variant (4.3x cheaper steps, one dev pair
# apart after tuning: benchmarks/results/pair_cost, pair_template_dev), and few_shot.py --templates
# MNLI=question_answer runs it anywhere.
PAIR_SLOT_LAST_TEMPLATE = "question_answer"

# Backend variants the benchmarks name as one backend: (the backend, its typed config options). The
# benchmarks' ``full`` is LM-BFF's, every weight trained, as in every full run they recorded; full
# fine-tuning's own default is now lean (lmbff.tuning.full), which they call ``full-lean``.
BACKEND_ALIASES = {
    "full": ("full", {"full": {"embeddings": "train"}}),
    "full-lean": ("full", {"full": {"embeddings": "frozen"}}),
}


def resolve_backend(backend: str) -> tuple[str, dict[str, dict]]:
    """(the backend, its config options) for a backend or an alias: full-lean -> ("full", {"full":
    {"embeddings": "frozen"}}), full -> ("full", {"full": {"embeddings": "train"}})."""
    return BACKEND_ALIASES.get(backend, (backend, {}))


def backend_arguments(backend: str) -> list[str]:
    """``lmbff run`` arguments for a backend or an alias: full-lean -> --backend full --full-embeddings
    frozen (the flags as the CLI names them)."""
    from lmbff.cli.training import backend_option_flag

    name, options = resolve_backend(backend)
    flags = ["--backend", name]
    for method, fields in options.items():
        for field, value in fields.items():
            flags += [backend_option_flag(method, field), str(value)]
    return flags


def add_test_sample_argument(parser) -> None:
    """``--test-sample N`` (default 0: whole test sets), as few_shot.py and lr_sweep.py take it."""
    from lmbff.cli.common import non_negative_int

    parser.add_argument(
        "--test-sample",
        type=non_negative_int,
        default=0,
        help=f"score test sets over N examples on a seeded sample of N (the LM-BFF table: {TEST_SAMPLE})",
    )


def select(spec: str) -> list[BenchmarkTask]:
    """``all``, ``single`` (the single-sentence tasks), ``pairs``, or comma-separated names."""
    if spec == "all":
        return list(TASKS)
    if spec == "single":
        return [t for t in TASKS if t.single_sentence]
    if spec == "pairs":
        return [t for t in TASKS if not t.single_sentence]
    unknown = [name for name in spec.split(",") if name not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown tasks {unknown}; known: {', '.join(BY_NAME)} (or all, single, pairs)")
    return [BY_NAME[name] for name in spec.split(",")]


def _write_atomically(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def data_dir(task: BenchmarkTask, data_root: Path, derived: Path, sample: int = TEST_SAMPLE) -> Path:
    """The folder a run of ``task`` reads: the shared task folder when its test set is used whole, else
    ``<derived>/<task>`` with the seeded sample as test.tsv and ``k-shot`` linked to the shared splits.

    Raises:
        FileNotFoundError: the task's shared folder or test file is missing.
    """
    source = data_root / task.name
    test = source / task.test_file
    if not test.is_file():
        raise FileNotFoundError(f"{test} is missing (see {data_root / 'README.md'})")
    lines = test.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    if task.test_file == "test.tsv" and len(rows) <= sample:
        return source
    folder = derived / task.name
    if (folder / "test.tsv").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    chosen = sorted(random.Random(SAMPLE_SEED).sample(range(len(rows)), min(sample, len(rows))))
    for name in ("train.tsv", "k-shot"):
        link = folder / name
        if not link.exists():
            link.symlink_to((source / name).resolve())
    _write_atomically(
        folder / "SAMPLE.md", f"{len(chosen)} of {len(rows)} rows of {test}, seed {SAMPLE_SEED}\n"
    )
    _write_atomically(folder / "test.tsv", "\n".join([header, *(rows[i] for i in chosen)]) + "\n")
    return folder
