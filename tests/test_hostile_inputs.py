"""Hostile and careless inputs: templates that would hang or exhaust memory, broken YAML, bad numbers,
broken data files. Each ends in one clear error naming the file, within seconds, never a traceback."""

from __future__ import annotations

import json
import time

import pytest

from lmbff.cli import main
from prompts.template import RenderBudget, Template, TemplateError

from .conftest import DEMO_DATA

HOSTILE_TEMPLATES = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    "{{ text_a }} {{ mask }}",
    "range of 10**9": "{% for i in range(10**9) %}x{% endfor %}{{ text_a }} {{ mask }}",
    "string times 10**9": "{{ (text_a ~ 1) * 10**9 }} {{ mask }}",
    "huge power": "{{ 10**100000 }} {{ text_a }} {{ mask }}",
    "percent width": "{{ '%999999999s' % text_a }} {{ mask }}",
    "format filter width": "{{ '%999999999s'|format(text_a) }} {{ mask }}",
    "format method width": "{{ '{:>999999999}'.format(text_a) }} {{ mask }}",
    "center filter": "{{ text_a|center(999999999) }} {{ mask }}",
    "center method": "{{ text_a.center(999999999) }} {{ mask }}",
    "infinite recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}{{ text_a }} {{ mask }}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
    "{{ f(40) }}{{ text_a }} {{ mask }}",
    "list grows while iterated": "{% set x = [1] %}{% for i in x %}{{ x.append(1) }}{% endfor %}"
    "{{ text_a }} {{ mask }}",
    "doubling joins": "{% set a = text_a ~ text_a %}"
    + "".join("{% set a = a ~ a %}" for _ in range(30))
    + "{{ a }} {{ mask }}",
    "replace explosion": "{{ text_a|replace('e', text_a)|replace('e', text_a)|replace('e', text_a) }}"
    " {{ mask }}",
    "batch filter": "{% for x in text_a|batch(10**9) %}{% endfor %}{{ text_a }} {{ mask }}",
    "lipsum": "{{ lipsum(10**6) }} {{ text_a }} {{ mask }}",
    "division by zero": "{{ 1 / 0 }} {{ text_a }} {{ mask }}",
    "python internals": "{{ text_a.__class__.__mro__ }} {{ mask }}",
    "list times 10**8": "{{ [1] * 10**8 }} {{ text_a }} {{ mask }}",
    "deep nesting": "{{ " + "(" * 500 + "1" + ")" * 500 + " }}{{ text_a }} {{ mask }}",
    "triple loop over text": "{% for a in text_a * 50 %}{% for b in text_a * 50 %}{% for c in text_a %}"
    "{% endfor %}{% endfor %}{% endfor %}{{ text_a }} {{ mask }}",
}


@pytest.fixture
def reviews(tmp_path):
    """The demo reviews with a dev split (the first 8 training rows), as train needs."""
    folder = tmp_path / "reviews"
    folder.mkdir()
    train = (DEMO_DATA / "train.tsv").read_text().splitlines(keepends=True)
    (folder / "train.tsv").write_text("".join(train))
    (folder / "dev.tsv").write_text("".join(train[:9]))
    (folder / "test.tsv").write_text("".join(train[:9]))
    return folder


def _task_file(folder, template: str, name: str = "hostile"):
    path = folder / f"{name}.yaml"
    path.write_text(
        "task:\n  name: reviews\n  fields: [text_a]\n  labels: [negative, positive]\n"
        f"templates:\n  bad:\n    text: {json.dumps(template)}\n"
        "    label_words: {negative: terrible, positive: great}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE_TEMPLATES))
def test_a_hostile_template_is_a_located_error_within_seconds(name):
    started = time.monotonic()
    with pytest.raises(TemplateError) as error:
        template = Template(HOSTILE_TEMPLATES[name], name="bad")
        template.render_parts({"text_a": "the best film of the year " * 20})
    assert time.monotonic() - started < 10
    assert "template 'bad'" in str(error.value)


def test_the_budget_is_configurable_and_checked():
    text = "{% for i in range(50) %}.{% endfor %}{{ mask }}"
    assert Template(text).render_parts({})[0] == "." * 50
    with pytest.raises(TemplateError, match=r"range of 50 items \(render_budget.max_iterations is 10\)"):
        Template(text, budget=RenderBudget(max_iterations=10)).render_parts({})
    loop = "{% for c in 'x' * 50 %}.{% endfor %}{{ mask }}"
    with pytest.raises(TemplateError, match="more than 10 loop iterations and calls"):
        Template(loop, budget=RenderBudget(max_iterations=10)).render_parts({})
    small = RenderBudget(max_output_chars=25)
    with pytest.raises(TemplateError, match="an output value would make 30 characters"):
        Template("{{ text_a }}{{ mask }}", budget=small).render_parts({"text_a": "y" * 30})
    with pytest.raises(TemplateError, match="repeating 1 items 30 times"):
        Template("{{ 'x' * 30 }}{{ mask }}", budget=small).render_parts({})
    with pytest.raises(ValueError, match="max_iterations must be a positive integer"):
        RenderBudget(max_iterations=0)
    with pytest.raises(ValueError, match="timeout_seconds must be a positive number"):
        RenderBudget(timeout_seconds=-1)


def test_the_task_file_sets_the_budget(tmp_path):
    from prompts.library import load_task_file

    path = tmp_path / "t.yaml"
    path.write_text(
        "task: {name: t, fields: [text_a], labels: [a, b]}\n"
        "render_budget: {max_iterations: 5}\n"
        "templates:\n  x:\n    text: '{% for i in range(9) %}.{% endfor %}{{ text_a }} {{ mask }}'\n"
        "    label_words: {a: yes, b: no}\n"
    )
    template = load_task_file(path).prompt().template
    with pytest.raises(TemplateError, match=rf"{path}:\d+: template 'x': over the render budget"):
        template.render_parts({"text_a": "t"})
    path.write_text(path.read_text().replace("max_iterations: 5", "max_iterations: -5"))
    with pytest.raises(ValueError, match=r"render_budget: render_budget.max_iterations must be a positive"):
        load_task_file(path)


@pytest.mark.parametrize("name", ["nested loops", "string times 10**9", "huge power", "exponential macro"])
def test_commands_give_one_clean_error_naming_the_file(name, tmp_path, capsys, bert_dir, reviews):
    path = _task_file(tmp_path, HOSTILE_TEMPLATES[name])
    commands = [
        ["templates", "lint", str(path)],
        ["templates", "render", "--task", str(path), "--data-dir", str(DEMO_DATA), "--n", "1"],
        ["zero-shot", "--task", str(path), "--data-dir", str(DEMO_DATA), "--model", str(bert_dir),
         "--out", str(tmp_path / "zs"), "--limit", "4"],
        ["train", "--task", str(path), "--data-dir", str(reviews), "--model", str(bert_dir),
         "--out", str(tmp_path / "run"), "--max-steps", "1"],
    ]  # fmt: skip
    for command in commands:
        started = time.monotonic()
        code = main(command)
        out = capsys.readouterr()
        assert code in (1, 2), command
        assert str(path) in out.out and "Traceback" not in out.out + out.err, command
        assert time.monotonic() - started < 30, command


def test_duplicate_keys_are_errors_with_their_line(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text(
        "task: {name: t, fields: [text_a], labels: [a, b]}\n"
        "templates:\n"
        "  one:\n    text: '{{ text_a }} {{ mask }}'\n    label_words: {a: yes, b: no}\n"
        "  one:\n    text: '{{ text_a }} was {{ mask }}'\n    label_words: {a: good, b: bad}\n"
    )
    assert main(["templates", "lint", str(path)]) == 1
    assert f"{path}:6: error: one: duplicate key (first written on line 3)" in capsys.readouterr().out


def test_empty_and_multi_token_label_words(tmp_path, capsys, bert_dir):
    path = tmp_path / "words.yaml"
    path.write_text(
        "task: {name: t, fields: [text_a], labels: [a, b]}\n"
        "templates:\n  x:\n    text: '{{ text_a }} It was {{ mask }}.'\n"
        "    label_words: {a: '', b: great}\n"
    )
    assert main(["templates", "lint", str(path)]) == 1
    assert "label 'a' has an empty label word" in capsys.readouterr().out
    assert (
        main(["zero-shot", "--task", str(path), "--data-dir", str(DEMO_DATA), "--model", str(bert_dir)]) == 2
    )
    assert f"{path}:5" in capsys.readouterr().out
    path.write_text(path.read_text().replace("a: ''", "a: sci/tech"))
    assert main(["templates", "lint", str(path), "--model", str(bert_dir)]) == 0
    out = capsys.readouterr().out
    assert "'sci/tech' (label 'a') splits into 3 tokens" in out


def test_lint_understands_the_event_prompts_file(capsys):
    from prompts.library import bundled_templates_dir

    assert main(["templates", "lint", *map(str, sorted(bundled_templates_dir().glob("*.yaml")))]) == 0
    assert "0 error(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["zero-shot", "--task", "SST-2", "--data-dir", "d", "--batch-size", "-1"], "at least 1"),
        (["zero-shot", "--task", "SST-2", "--data-dir", "d", "--batch-size", "0"], "at least 1"),
        (["zero-shot", "--task", "SST-2", "--data-dir", "d", "--limit", "-1"], "at least 1"),
        (["split", "--task", "SST-2", "--data-dir", "d", "--k", "0", "--out", "o"], "at least 1"),
        (["split", "--task", "SST-2", "--data-dir", "d", "--k", "-1", "--out", "o"], "at least 1"),
        (["split", "--task", "SST-2", "--data-dir", "d", "--seeds", "1,1", "--out", "o"], "distinct seeds"),
        (["studio", "--port", "70000"], "at most 65535"),
    ],
)
def test_bad_numbers_are_refused_when_parsed(command, message, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main(command)
    assert exit_code.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-steps", "0"], "expected a whole number at least 1, got 0"),
        (["--max-steps", "-3"], "expected a whole number at least 1, got -3"),
        (["--max-steps", "2.5"], "expected a whole number, got '2.5'"),
        (["--gradient-accumulation-steps", "0"], "expected a whole number at least 1"),
        (["--learning-rate=-1e-3"], "expected a finite number in (0, inf), got -1e-3"),
        (["--batch-size", "0"], "expected a whole number at least 1"),
        (["--warmup-ratio", "1.5"], "expected a finite number in [0, 1), got 1.5"),
        (["--lora-rank", "0", "--backend", "lora"], "expected a whole number at least 1, got 0"),
        (["--lora-rank", "2.5", "--backend", "lora"], "expected a whole number, got '2.5'"),
        (["--demo-filter-rate", "2"], "expected a finite number in (0, 1], got 2"),
        (["--demo-inference-sets", "0"], "expected a whole number at least 1, got 0"),
    ],
)
def test_bad_training_numbers_are_refused_when_parsed_and_write_nothing(option, message, tmp_path, capsys):
    """Each option's bounds come from its field (lmbff.options), so argparse refuses the value before
    anything runs, with the same bounds the Python API checks."""
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_code:
        main(["train", "--task", "SST-2", "--data-dir", str(DEMO_DATA), "--out", str(out), *option])
    assert exit_code.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_the_python_api_gets_the_same_messages():
    from lmbff.train import TrainingArguments

    with pytest.raises(ValueError, match="max_steps must be a whole number at least 1"):
        TrainingArguments(max_steps=0)
    with pytest.raises(ValueError, match="eval_every must be a whole number at least 0"):
        TrainingArguments(eval_every=-1)


def test_data_is_checked_before_the_model_loads_and_a_failed_run_blocks_nothing(tmp_path, capsys, gpt_dir):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev", "test"):
        (data / f"{split}.tsv").write_text("text_a\tlabel\n")  # header only
    out = tmp_path / "run"
    command = ["train", "--task", str(DEMO_DATA / "task.yaml"), "--data-dir", str(data), "--out", str(out),
               "--model", str(tmp_path / "no-such-model")]  # fmt: skip
    assert main(command) == 2
    assert (
        f"{data / 'train.tsv'}: no examples: the file is empty or has only a header"
        in capsys.readouterr().out
    )
    assert not out.exists()  # nothing claimed: the corrected rerun is not refused
    for split in ("train", "dev", "test"):
        (data / f"{split}.tsv").write_text("text_a\tlabel\ngreat\tpositive\nawful\tnegative\n")
    command[-1] = str(gpt_dir)
    assert main([*command, "--max-steps", "2", "--batch-size", "2"]) == 0


def test_skip_bad_and_blank_texts_in_train(tmp_path, capsys, bert_dir):
    """Seen: --skip-bad was ignored by train, and a blank text (as in LM-BFF's CR split) stopped it."""
    data = tmp_path / "data"
    data.mkdir()
    rows = "text_a\tlabel\ngreat\tpositive\n \tnegative\nawful\tnegative\nfine\tmaybe\n"
    for split in ("train", "dev", "test"):
        (data / f"{split}.tsv").write_text(rows)
    command = ["train", "--task", str(DEMO_DATA / "task.yaml"), "--data-dir", str(data), "--model",
               str(bert_dir), "--max-steps", "2", "--batch-size", "2"]  # fmt: skip
    assert main([*command, "--out", str(tmp_path / "a")]) == 2
    assert "train.tsv:5: field 'label': unknown label 'maybe'" in capsys.readouterr().out
    assert main([*command, "--out", str(tmp_path / "b"), "--skip-bad"]) == 0
    assert "skipped 1 malformed rows" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0


def test_lmbff_cr_split_trains_with_its_blank_row(tmp_path, bert_dir):
    from .conftest import shared_task_dir

    folder = shared_task_dir("CR") / "k-shot" / "16-13"
    command = ["train", "--task", "CR", "--data-dir", str(folder), "--model", str(bert_dir), "--out",
               str(tmp_path / "cr"), "--max-steps", "1", "--test-split", "dev"]  # fmt: skip
    assert main(command) == 0


def test_split_and_the_readers_share_one_line_reader(tmp_path):
    from lmbff.data import read_examples
    from lmbff.splits import make_splits
    from prompts.library import load_task

    task = load_task("SST-2").task
    data = tmp_path / "data"
    data.mkdir()
    lines = [f"text {i}\u2028still row {i}\t{i % 2}" for i in range(40)]
    (data / "train.tsv").write_text("text_a\tlabel\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (split,) = make_splits(task, data, tmp_path / "out", k=4, seeds=[13])
    examples = read_examples(split.train, task).examples
    assert len(examples) == 8 and sorted(e.label for e in examples) == ["0"] * 4 + ["1"] * 4
    for e in examples:  # each selected row is a whole original row, label and text together
        i = int(e.fields["text_a"].split()[1].split("\u2028")[0])
        assert e.fields["text_a"] == f"text {i}\u2028still row {i}" and e.label == str(i % 2)


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys, bert_dir, reviews):
    out = tmp_path / "run"
    command = ["train", "--task", str(DEMO_DATA / "task.yaml"), "--data-dir", str(reviews), "--model",
               str(bert_dir), "--out", str(out), "--max-steps", "1"]  # fmt: skip
    command.append("--resume")
    assert main(command) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_checkpoint_update_is_crash_safe(tmp_path):
    """A crash between the two renames of an update leaves only <name>.old: it is put back; half-written
    staging folders are removed."""
    from lmbff.checkpoint import Checkpoint

    folder = tmp_path / "checkpoint"
    old = tmp_path / "checkpoint.old"
    old.mkdir()
    (old / "state.json").write_text("{}")
    staged = tmp_path / ".checkpoint.abc123"
    staged.mkdir()
    (staged / "params.safetensors").write_text("half")
    store = Checkpoint(folder)
    assert store.exists()
    assert (folder / "state.json").exists() and not old.exists() and not staged.exists()


def test_an_unreachable_hub_fails_fast(monkeypatch):
    from huggingface_hub import constants

    from lmbff.pretrained import ModelNotFound, load_model

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.monotonic()
    with pytest.raises(ModelNotFound, match="not in the local hub cache and the hub is unreachable"):
        load_model("not-a-model")
    assert time.monotonic() - started < 2


BROKEN_FILES = {
    "invalid yaml": "task: {name: t\n",
    "a list": "- 1\n- 2\n",
    "binary": "\x00\x01\x02 garbage \xff",
    "billion laughs": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "task: {name: t, fields: [text_a], labels: *i}\n",
    "label words nested": "task: {name: t, fields: [text_a], labels: [a, b]}\n"
    "templates:\n  x:\n    text: '{{ text_a }} {{ mask }}'\n    label_words: {a: [[[x]]], b: y}\n",
    "template not a string": "task: {name: t, fields: [text_a], labels: [a, b]}\n"
    "templates:\n  x:\n    text: [1, 2]\n    label_words: {a: x, b: y}\n",
    "deep yaml": "task: " + "[" * 5000 + "]" * 5000 + "\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
def test_broken_task_files_are_clean_errors(name, tmp_path, capsys, bert_dir, reviews):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_FILES[name], encoding="utf-8", errors="surrogateescape")
    for command in (
        ["templates", "lint", str(path)],
        ["templates", "render", "--task", str(path), "--data-dir", str(DEMO_DATA)],
        ["zero-shot", "--task", str(path), "--data-dir", str(DEMO_DATA), "--model", str(bert_dir)],
        ["train", "--task", str(path), "--data-dir", str(reviews), "--model", str(bert_dir), "--out",
         str(tmp_path / "run")],
    ):  # fmt: skip
        started = time.monotonic()
        code = main(command)
        out = capsys.readouterr()
        assert code in (1, 2) and str(path) in out.out and "Traceback" not in out.out + out.err, command
        assert time.monotonic() - started < 10
