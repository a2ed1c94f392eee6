"""Issue 37: what a user or contributor meets first (states from every path predict, configs refuse
what the README says is checked, the CLI tells a user error from a bug)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmbff.classifier import PromptClassifier
from lmbff.cli import main


def test_predict_reads_a_state_saved_from_a_zero_shot_classifier(bert_dir, tmp_path, capsys):
    texts = ["a football match", "the world bank", "the election"]
    clf = PromptClassifier.zero_shot(
        ["World", "Sports"], "{{ text }} Topic: {{ mask }}.", ["world", "sports"], model=str(bert_dir),
        verbose=False,
    )  # fmt: skip
    clf.save(tmp_path / "zs")
    data = tmp_path / "new.tsv"
    gold = ["Sports", "World", "World"]
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{g}\n" for t, g in zip(texts, gold, strict=True)))
    code = main(
        ["predict", "--state", str(tmp_path / "zs"), "--data-file", str(data), "--out", str(tmp_path / "p")]
    )
    assert code == 0, capsys.readouterr().err
    (written,) = (tmp_path / "p").glob("*/predictions.jsonl")
    records = [json.loads(line) for line in written.read_text().splitlines()]
    assert [r["prediction"] for r in records] == clf.predict(texts).tolist()
    metrics = json.loads(next((tmp_path / "p").glob("*/metrics.json")).read_text())
    assert metrics["method"] == "zero-shot"
    probabilities = np.array([[r["scores"][c] for c in clf.classes_] for r in records])
    assert np.allclose(probabilities, clf.predict_proba(texts), atol=1e-6)


# ---- one validation path (lmbff.options) ---------------------------------------------------------
def _configs():
    from lmbff.config import (
        DemonstrationConfig,
        LabelSearchConfig,
        PrototypeConfig,
        TemplateSearchConfig,
        TrainingArguments,
    )
    from lmbff.tuning import backend_names, get_config_class

    return [
        TrainingArguments,
        DemonstrationConfig,
        LabelSearchConfig,
        TemplateSearchConfig,
        PrototypeConfig,
    ] + [get_config_class(name) for name in backend_names()]


def _bad_values():
    """(config class, field, a value of the wrong type or out of bounds) for every field of every config."""
    import dataclasses
    import typing

    cases = []
    for cls in _configs():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            base = (
                args[0] if typing.get_origin(kind) in (typing.Union, __import__("types").UnionType) else kind
            )
            if base is int:
                values = [2.5, "8", True, -1]
            elif base is float:
                values = ["x", float("nan"), True, -1.0]
            elif typing.get_origin(base) is typing.Literal:
                values = ["bogus", True]
            elif base is bool:
                values = ["yes", 1]
            elif base is str:
                values = [3]
            elif typing.get_origin(base) is list:
                values = ["q_proj", [1]]
            else:
                continue
            for value in values:
                cases.append(pytest.param(cls, f.name, value, id=f"{cls.__name__}.{f.name}={value!r}"))
    return cases


@pytest.mark.parametrize(("cls", "name", "value"), _bad_values())
def test_every_config_field_refuses_a_bad_value_with_one_error_type(cls, name, value):
    from lmbff.errors import ConfigError

    if value in (-1, -1.0) and not isinstance(value, bool):
        from lmbff.options import _metadata

        if _metadata(cls, name).get("low") is None:
            pytest.skip(f"{cls.__name__}.{name} has no lower bound: -1 is a value it accepts")
    with pytest.raises(ConfigError, match=rf"\b{name} must be"):
        cls(**{name: value})


def test_the_issue_s_accepted_values_are_refused():
    from lmbff.config import DemonstrationConfig, LabelSearchConfig
    from lmbff.errors import ConfigError
    from lmbff.tuning.lora.config import LoraTuningConfig

    for make in (
        lambda: LoraTuningConfig(rank=2.5),
        lambda: LoraTuningConfig(rank="8"),
        lambda: DemonstrationConfig(inference_sets=2.5),
        lambda: LabelSearchConfig(criterion="bogus"),
        lambda: LabelSearchConfig(rerank="yes"),
        lambda: DemonstrationConfig(filter_rate="x"),
    ):
        with pytest.raises(ConfigError):
            make()


def test_registry_lookups_raise_one_type():
    from lmbff.defaults import resolve
    from lmbff.errors import ConfigError
    from lmbff.scoring import get_mode
    from lmbff.tuning import get_config_class

    for lookup in (
        lambda: get_config_class("nope"),
        lambda: get_mode("nope"),
        lambda: resolve("nope", None, None, None, None),
    ):
        with pytest.raises(ConfigError, match="nope"):
            lookup()


# ---- the command line tells the user's error from a bug ---------------------------------------------
def test_a_bug_is_reported_as_one_and_its_traceback_kept(monkeypatch, tmp_path, capsys):
    import lmbff.cli.templates as templates_cli

    def broken(args):
        raise ValueError("an internal invariant failed")  # not an LmbffError: a bug

    monkeypatch.setenv("LMBFF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(templates_cli, "cmd_lint", broken)
    code = main(["templates", "lint"])  # the handler is bound when the parser is built, after the patch
    out = capsys.readouterr().out
    assert code == 3 and "internal error" in out and "an internal invariant failed" in out
    (log,) = (tmp_path / "cache" / "logs").glob("crash-*.log")
    text = log.read_text()
    assert "lmbff templates lint" in text and "Traceback" in text and "in broken" in text
    with pytest.raises(ValueError, match="invariant"):
        main(["--debug", "templates", "lint"])


def test_a_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(
        ["train", "--task", "SST-2", "--backend", "nope", "--data-dir", "d", "--out", str(tmp_path / "o")]
    )
    out = capsys.readouterr().out
    assert code == 2 and out.startswith("error:") and "unknown tuning backend 'nope'" in out
    assert "Traceback" not in out


def test_a_scoring_mode_is_chosen_on_the_run_configuration_and_the_estimator(bert_dir, tmp_path):
    from lmbff.errors import ConfigError
    from lmbff.experiment import ExperimentConfig

    with pytest.raises(ConfigError, match="unknown scoring mode 'bogus'"):
        ExperimentConfig(task="SST-2", data_dir="d", out="o", mode="bogus")
    with pytest.raises(ConfigError, match="no scoring mode"):
        ExperimentConfig(task="SST-2", data_dir="d", out="o", method="finetune", mode="mask")
    with pytest.raises(ConfigError, match="unknown scoring mode 'bogus'"):
        PromptClassifier(labels=["a", "b"], model="/nonexistent", mode="bogus").fit(["x", "y"], ["a", "b"])
    texts = ["a football match", "the world bank"]
    clf = PromptClassifier.zero_shot(
        ["World", "Sports"], "{{ text }} Topic: {{ mask }}.", ["world news", "sports"], model=str(bert_dir),
        mode="mask", verbose=False,
    )  # fmt: skip
    assert clf.prompt_model_.mode == "mask" and clf.get_params()["mode"] == "mask"
    clf.save(tmp_path / "zs")
    assert np.array_equal(
        PromptClassifier.load(tmp_path / "zs").predict_proba(texts), clf.predict_proba(texts)
    )


# ---- the public API ------------------------------------------------------------------------------
def test_the_public_api_is_importable_from_the_package_lazily():
    import subprocess
    import sys

    import lmbff

    for name in lmbff.__all__:
        assert getattr(lmbff, name) is not None, name
    assert (
        lmbff.register_backend.__name__ == "register"
        and lmbff.PromptClassifier.__module__ == "lmbff.classifier"
    )
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lmbff.nope  # noqa: B018
    probe = "import sys, lmbff; print(any(m in sys.modules for m in ('torch', 'transformers', 'sklearn')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"  # import lmbff loads no model library


def test_every_public_name_is_documented():
    import inspect

    import lmbff

    undocumented = [
        name for name in lmbff.__all__ if name != "__version__" and not inspect.getdoc(getattr(lmbff, name))
    ]
    assert not undocumented, undocumented


def test_the_package_is_typed():
    from pathlib import Path

    import lmbff
    import prompts

    assert (Path(lmbff.__file__).parent / "py.typed").exists()
    assert (Path(prompts.__file__).parent / "py.typed").exists()


def test_the_repr_of_a_classifier_without_a_yaml_file_is_short(bert_dir):
    labels = [f"intent_{i}" for i in range(40)]
    clf = PromptClassifier.zero_shot(
        labels, "{{ text }} It is about {{ mask }}.", model=str(bert_dir), verbose=False
    )
    text = repr(clf)
    assert len(text) < 400, text
    assert "TaskFile('zero-shot', labels=['intent_0'" in text and "(40 labels)" in text


def test_library_notes_go_through_logging_and_can_be_silenced(bert_dir, caplog, capsys):
    import logging

    texts = ["good", "bad", "fine", "awful"]
    clf = PromptClassifier(
        labels=["pos", "neg"], label_words=["good", "bad"], model=str(bert_dir), max_steps=1,
        backend="bitfit", verbose=False,
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="lmbff"):  # verbose=False: the application's logging decides
        clf.fit(texts, ["pos", "neg", "pos", "neg"])
    assert any(r.name == "lmbff" and "PromptClassifier:" in r.getMessage() for r in caplog.records)
    captured = capsys.readouterr()
    assert "PromptClassifier:" not in captured.out + captured.err  # nothing printed by the library
    clf.set_params(verbose=True).fit(texts, ["pos", "neg", "pos", "neg"])
    assert "PromptClassifier:" in capsys.readouterr().err  # verbose: shown on stderr
    logging.getLogger("lmbff").addHandler(handler := logging.NullHandler())  # a service routes it itself
    try:
        clf.fit(texts, ["pos", "neg", "pos", "neg"])
    finally:
        logging.getLogger("lmbff").removeHandler(handler)
    captured = capsys.readouterr()
    assert "PromptClassifier:" not in captured.out + captured.err


# ---- the README is a guide; the write-ups are in docs/ -------------------------------------------
def test_the_readme_is_a_guide_and_every_link_resolves():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 500
    for heading in ("## Install", "## Quick start", "## Command line", "## Python", "## Templates",
                    "## Zero-shot event argument roles", "## Benchmarks"):  # fmt: skip
        assert heading in readme, heading
    benchmarks = readme.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in benchmarks.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows and all("](docs/" in row for row in rows)  # every headline figure links to its page
    broken = []
    for page in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(root)} -> {target}")
    assert not broken, broken


# ---- every YAML read goes through the strict loader ---------------------------------------------------
def test_an_ontology_with_a_key_written_twice_is_refused_at_its_line(tmp_path):
    from lmbff.events.ontology import OntologyError, load_ontology

    path = tmp_path / "onto.yaml"
    path.write_text(
        "name: mine\nentity_types: {PER: person}\nevents:\n"
        "  Life:Die:\n    roles: {Victim: [PER]}\n"
        "  Life:Die:\n    roles: {Agent: [PER]}\n"  # the second replaced the first, silently
    )
    with pytest.raises(OntologyError, match=r"onto.yaml:6: .*duplicate key"):
        load_ontology(path)


def test_a_template_pool_with_a_key_written_twice_is_refused(tmp_path):
    from lmbff.cli.search import _read_pool
    from lmbff.errors import LmbffError

    path = tmp_path / "pool.yaml"
    path.write_text("templates: ['{{ text }} It was {{ mask }}.']\ntemplates: ['{{ mask }}: {{ text }}']\n")
    with pytest.raises(LmbffError, match=r"pool.yaml:2: .*duplicate key"):
        _read_pool(path)


def test_a_task_with_label_names_keeps_its_own_name(tmp_path):
    """Found while splitting the task-file validator: the loop over label_names reused the variable
    that held the task's name, so a task with display names took its last label's name, silently."""
    from prompts.library import load_task_file

    path = tmp_path / "t.yaml"
    path.write_text(
        "task:\n  name: Intents\n  fields: [text]\n  labels: [a, b]\n  label_names: {a: Alpha, b: Beta}\n"
        "default_template: t\ntemplates:\n  t:\n    text: '{{ text }} {{ mask }}'\n"
        "    label_words: {a: x, b: y}\n"
    )
    task = load_task_file(path).task
    assert task.name == "Intents" and task.label_names == {"a": "Alpha", "b": "Beta"}


def test_a_backend_declares_its_own_auto_precision(monkeypatch):
    """``auto`` keeps a backend in fp32 because the backend says so (TuningConfig.auto_precision), not
    because a caller names it: a new backend can say the same."""
    from dataclasses import dataclass
    from pathlib import Path

    from lmbff import precision
    from lmbff.tuning.base import TuningConfig, auto_precision_of, register

    monkeypatch.setattr(precision, "bf16_native", lambda device=None: True)
    assert precision.resolve_precision("auto", backend="full") == "fp32"
    assert precision.resolve_precision("auto", backend="lora") == "bf16"
    assert precision.resolve_precision("auto", backend="prefix+full") == "fp32"

    @register
    @dataclass
    class Heavy(TuningConfig):
        backend = "heavy-test"
        implementation = "lmbff.tuning.full.model"
        auto_precision = "fp32"

    assert auto_precision_of("heavy-test") == "fp32"
    assert precision.resolve_precision("auto", backend="heavy-test") == "fp32"
    assert '"full"' not in Path(precision.__file__).read_text()  # no backend named by the caller


def test_the_shared_base_protocol_is_declared_not_an_attribute_added_to_a_dataclass(bert_dir):
    from lmbff.classifier import BASE_LEASES

    texts = ["a football match", "the world bank"]
    template = "{{ text }} Topic: {{ mask }}."
    first = PromptClassifier.zero_shot(["World", "Sports"], template, model=str(bert_dir), verbose=False)
    first.predict(texts)
    assert "holder" not in vars(first.base_)  # the LoadedModel dataclass gets no undeclared field
    assert BASE_LEASES.holder(first.base_) is first


def test_no_library_function_is_longer_than_a_screenful_and_a_half():
    """Long functions were split into named stages (issue 37); argparse builders, which only list
    options, are the exception."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    long = []
    for path in [*sorted((root / "lmbff").rglob("*.py")), *sorted((root / "prompts").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name != "add_parsers":
                length = node.end_lineno - node.lineno + 1
                if length > 100:
                    long.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long


def test_the_architecture_page_names_every_module():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [p.name for package in ("lmbff", "prompts") for p in sorted((root / package).glob("*.py"))]
    missing = [name for name in modules if name != "__init__.py" and name not in page]
    assert not missing, missing


def test_the_studio_s_request_numbers_go_through_the_one_validation_path():
    from lmbff.studio.server import ApiError, RequestNumbers, _int

    assert (
        _int({}, "n") == RequestNumbers.n and _int({"n": 3}, "n") == 3 and _int({}, "max_length", 200) == 200
    )
    for body in ({"n": 0}, {"n": 2.5}, {"n": True}, {"n": "3"}, {"seed": -1}):
        key = next(iter(body))
        with pytest.raises(ApiError, match=rf"field '{key}': expected a whole number from \d+ to \d+, got"):
            _int(body, key)


def test_deprecations_are_not_silenced_suite_wide():
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[1]
    filters = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert not any(
        "DeprecationWarning" in f and f.startswith("ignore") for f in filters.get("filterwarnings", [])
    )


def test_the_repository_tracks_evidence_not_run_folders():
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    files = tracked.splitlines()
    assert len(files) < 400, len(files)
    results = [f for f in files if f.startswith("benchmarks/results/")]
    assert results and all(f.count("/") == 2 and f.endswith(".jsonl") for f in results)
