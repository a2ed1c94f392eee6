"""The dependency rules of docs/architecture.md, checked on the source: no import cycle among the modules of
``lmbff/`` and ``prompts/`` (imports inside functions count too), ``prompts`` below ``lmbff``, and
nothing in the library importing the command line."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _modules() -> dict[str, Path]:
    modules = {}
    for package in ("lmbff", "prompts"):
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, anywhere in its file."""
    found: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            # a package's own __init__ (``from . import __version__``) is not a dependency on a sibling
            if target in modules and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_prompts_never_imports_lmbff_and_the_library_never_imports_the_command_line():
    graph = _graph()
    for name, targets in graph.items():
        if name.startswith("prompts"):
            assert not any(t.startswith("lmbff") for t in targets), (name, targets)
        if not name.startswith("lmbff.cli"):
            assert not any(t.startswith("lmbff.cli") for t in targets), (name, targets)


def test_help_imports_no_model_library_and_answers_at_once():
    """`lmbff --help` and every subcommand's --help build the parser from torch-free configs."""
    import subprocess
    import sys
    import time

    probe = (
        "import sys\n"
        "from lmbff.cli import build_parser\n"
        "build_parser()\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'peft', 'sklearn') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
    for command in (["--help"], ["train", "--help"]):
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "lmbff.cli", *command], capture_output=True, check=True)
        assert time.monotonic() - started < 2.0, command  # about 0.3 s measured on 2 cores


def _readme_files() -> dict[str, str]:
    """The code blocks of docs/architecture.md (the extension guide) that start with ``# file: <path>``."""
    import re

    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n# file: (\S+)\n(.*?)```", text, re.S)
    return {path: body for path, body in blocks}


def test_the_readme_backend_example_is_one_folder_that_trains(tmp_path, monkeypatch, bert, capsys):
    import importlib
    import sys

    import torch

    files = _readme_files()
    assert set(files) >= {
        "mybackends/last_layer/__init__.py",
        "mybackends/last_layer/config.py",
        "mybackends/last_layer/model.py",
    }
    for path, body in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    (tmp_path / "mybackends" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("mybackends.last_layer")
    from lmbff.tuning import backend_names, make_config

    assert "last-layer" in backend_names()
    model, _ = bert
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    groups = make_config("last-layer", {"last-layer": {"layers": 1}}).apply(model)
    trained = {id(p) for g in groups for p in g["params"]}
    names = [n for n, p in model.named_parameters() if id(p) in trained]
    assert names and all(".layer.1." in n for n in names)  # tiny BERT: layers 0 and 1
    for p in model.parameters():
        p.requires_grad_(False)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())

    from lmbff.cli import main

    from .conftest import DEMO_DATA

    sys.modules.pop("mybackends.last_layer.model", None)
    out = tmp_path / "run"
    split = tmp_path / "split"
    assert main(["split", "--task", str(DEMO_DATA / "task.yaml"), "--data-dir", str(DEMO_DATA), "--k", "4",
                 "--seeds", "13", "--out", str(split)]) == 0  # fmt: skip
    capsys.readouterr()
    return_code = main(["train", "--task", str(DEMO_DATA / "task.yaml"), "--data-dir", str(split / "4-13"),
                        "--model", str(_tiny_bert_dir(tmp_path, bert)), "--backend", "last-layer",
                        "--last-layer-layers", "2", "--max-steps", "2", "--out", str(out)])  # fmt: skip
    assert return_code == 0
    assert "last-layer" in capsys.readouterr().out


def _tiny_bert_dir(tmp_path, bert):
    model, tokenizer = bert
    folder = tmp_path / "tiny-bert"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_backend_name_cannot_be_registered_twice():
    from dataclasses import dataclass

    import pytest

    from lmbff.tuning.base import TuningConfig, register

    @dataclass
    class Impostor(TuningConfig):
        backend = "ln"
        implementation = "nowhere"

    with pytest.raises(ValueError, match="backend 'ln' is registered twice"):
        register(Impostor)
    Impostor.backend = "prompt"
    with pytest.raises(ValueError, match="'prompt' is the former name of 'soft-prompt'"):
        register(Impostor)


def test_the_former_soft_prompt_name_still_works_with_a_warning():
    import pytest

    from lmbff.tuning import config_from_dict, make_config

    with pytest.warns(DeprecationWarning, match="now called 'soft-prompt'"):
        config = make_config("prompt", {"prompt": {"length": 4}})
    assert config.backend == "soft-prompt" and config.length == 4
    with pytest.warns(DeprecationWarning):
        assert config_from_dict({"backend": "prompt", "length": 3, "learning_rate": 0.1}).length == 3


def test_the_readme_scoring_mode_example_is_one_module_that_scores(tmp_path, monkeypatch, bert):
    import importlib

    import numpy as np
    import torch

    from lmbff.data import Example
    from lmbff.model import PromptModel
    from lmbff.scoring import MODES, Scorer
    from prompts.template import Template
    from prompts.verbalizer import Verbalizer

    files = _readme_files()
    target = tmp_path / "myscoring" / "mask_sum.py"
    target.parent.mkdir(parents=True)
    (target.parent / "__init__.py").write_text("")
    target.write_text(files["myscoring/mask_sum.py"])
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("myscoring.mask_sum")
    assert "mask-sum" in MODES
    model, tokenizer = bert
    template = Template("{{ text_a }} It was {{ mask }}.")
    words = Verbalizer({"0": ["terrible", "not good at all"], "1": ["great"]}, ["0", "1"])
    mean = PromptModel(model, tokenizer, template, words, kind="masked")
    total = PromptModel(model, tokenizer, template, words, kind="masked", mode="mask-sum")
    assert isinstance(mean, Scorer) and total.mode == "mask-sum" and not total.fast_path
    examples = [Example({"text_a": "A fine film."}), Example({"text_a": "Dull."})]
    lengths = torch.tensor([len(w) for w in mean.words.word_ids], dtype=torch.float32)
    with torch.no_grad():
        by_mean = mean.word_scores(mean.collate(mean.encode(examples)))
        by_sum = total.word_scores(total.collate(total.encode(examples)))
    np.testing.assert_allclose(by_sum.numpy(), (by_mean * lengths).numpy(), rtol=1e-5, atol=1e-6)
    assert total.predict_log_scores(examples).shape == (2, 2)


def test_the_classification_head_baseline_is_a_scorer(bert):
    from lmbff.finetune import FineTuneClassifier
    from lmbff.scoring import Scorer
    from prompts.library import load_task

    model, tokenizer = bert
    head = FineTuneClassifier(model, tokenizer, load_task("SST-2").task, kind="masked")
    assert isinstance(head, Scorer)
