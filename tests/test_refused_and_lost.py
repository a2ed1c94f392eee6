"""Valid input refused, data lost, tracebacks and contradicting messages (issue 35): each case is a
clear error, a warning, or now works."""

from __future__ import annotations

import os
import warnings

import pytest

from lmbff.classifier import PromptClassifier
from lmbff.cli import main
from lmbff.data import DataError, read_examples
from lmbff.inputs import to_examples
from prompts.library import parse_task_text, task_file_from_labels
from prompts.sandbox import RenderBudget
from prompts.template import Template, TemplateError

from .conftest import DEMO_DATA

TINY = dict(max_steps=2, batch_size=4, eval_every=0, learning_rate=1e-2, verbose=False)
TASK = task_file_from_labels(["neg", "pos"], "{{ text }} It was {{ mask }}.").task


# lmbff split over an existing split


def test_split_never_replaces_split_files_silently(tmp_path, capsys):
    data = tmp_path / "reviews"
    data.mkdir()
    (data / "train.tsv").write_bytes((DEMO_DATA / "train.tsv").read_bytes())
    out = tmp_path / "splits"
    command = ["split", "--task", str(_review_task(tmp_path)), "--data-dir", str(data), "--k", "4"]
    command += ["--seeds", "13,21", "--out", str(out)]
    assert main(command) == 0
    assert main(command) == 0  # the same split again changes no byte: no conflict
    edited = out / "4-13" / "train.tsv"
    edited.write_text(edited.read_text() + "my own row\tpositive\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(command) == 2
    message = capsys.readouterr().out
    assert str(edited) in message and "--overwrite" in message and "nothing was written" in message
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main([*command, "--overwrite"]) == 0
    assert "my own row" not in edited.read_text()


def _review_task(tmp_path):
    path = tmp_path / "reviews.yaml"
    path.write_text(
        "task: {name: reviews, fields: [text_a], labels: [negative, positive]}\n"
        "templates:\n  main:\n    text: '{{ text_a }} It was {{ mask }}.'\n"
        "    label_words: {negative: terrible, positive: great}\n"
    )
    return path


# Tracebacks


def test_a_truncated_state_is_a_clean_error(bert_dir, tmp_path, capsys):
    texts = ["good film", "great film", "bad film", "awful film"]
    clf = PromptClassifier("SST-2", str(bert_dir), backend="ln", **TINY).fit(texts, ["1", "1", "0", "0"])
    clf.save(tmp_path / "state")
    weights = tmp_path / "state" / "trained.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        PromptClassifier.load(tmp_path / "state")
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.tsv").write_text("sentence\tlabel\na film\t1\n")
    assert (
        main(
            [
                "predict",
                "--state",
                str(tmp_path / "state"),
                "--data-dir",
                str(data),
                "--out",
                str(tmp_path / "p"),
            ]
        )
        == 2
    )
    assert "trained.safetensors: not a readable safetensors file" in capsys.readouterr().out


def test_a_frame_with_a_repeated_column_name_is_a_value_error():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame([["a film", "x"]], columns=["text", "text"])
    with pytest.raises(ValueError, match=r"column name\(s\) \['text'\] more than once"):
        to_examples(frame, ("text",))


def test_a_single_column_under_another_name_is_said():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"category": ["pos", "neg"]})
    with pytest.warns(UserWarning, match="only column 'category' is read as the task's field 'text'"):
        to_examples(frame, ("text",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(to_examples(frame, ("text",), columns={"category": "text"})) == 2


# Messages that contradict themselves


def test_a_data_path_that_is_not_a_file_is_named_for_what_it_is(tmp_path, bert_dir, capsys):
    folder = tmp_path / "test.tsv"
    folder.mkdir()
    with pytest.raises(DataError, match="a folder, not a data file"):
        read_examples(folder, TASK)
    loop = tmp_path / "loop.tsv"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match="cannot be reached"):
        read_examples(loop, TASK)
    fifo = tmp_path / "fifo.tsv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="a FIFO"):
        read_examples(fifo, TASK)
    # Through the command line, with --data-dir: the split's name is there, but not as a file.
    command = ["zero-shot", "--task", "SST-2", "--data-dir", str(tmp_path), "--model", str(bert_dir)]
    assert main([*command, "--out", str(tmp_path / "out")]) == 2
    printed = capsys.readouterr().out
    assert "a folder, not a data file" in printed and "the folder holds" not in printed


def test_an_unreadable_data_file_is_a_data_error(tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,pos\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("pathlib.Path.read_text", refuse)  # root reads anything: simulate the refusal
    with pytest.raises(DataError, match="cannot read: Permission denied"):
        read_examples(path, TASK)


# Likely mistakes, said but not refused


def test_one_class_and_dev_equal_to_train_are_warned(bert_dir):
    texts = ["good film", "great film"]
    clf = PromptClassifier("SST-2", str(bert_dir), backend="ln", **TINY)
    with pytest.warns(UserWarning, match="one class only"):
        clf.fit(texts, ["1", "1"])
    both = ["good film", "bad film"]
    with pytest.warns(UserWarning, match="every one of the 2 dev examples is also a training example"):
        clf.fit(both, ["1", "0"], X_dev=both, y_dev=["1", "0"])


# The render budget: a task file may lower it, and raise it only up to ceilings the operator lifts


def _budget_file(budget: str) -> str:
    return (
        "task: {name: t, fields: [text], labels: [a, b]}\n"
        f"render_budget: {budget}\n"
        "templates:\n  x:\n    text: '{{ text }} {{ mask }}'\n    label_words: {a: yes, b: no}\n"
    )


@pytest.mark.parametrize(
    "budget",
    [
        "{max_iterations: 1000000000000}",
        "{max_output_chars: 1000000000000}",
        "{timeout_seconds: 3600}",
    ],
)
def test_a_task_file_cannot_switch_the_budget_off(budget, monkeypatch):
    _, errors = parse_task_text(_budget_file(budget), "t.yaml")
    assert len(errors) == 1 and errors[0].line == 2 and "over the ceiling" in errors[0].message
    assert "$LMBFF_RENDER_MAX_" in errors[0].message
    monkeypatch.setenv("LMBFF_RENDER_MAX_ITERATIONS", str(10**12))
    monkeypatch.setenv("LMBFF_RENDER_MAX_OUTPUT_CHARS", str(10**12))
    monkeypatch.setenv("LMBFF_RENDER_MAX_SECONDS", "3600")
    parsed, errors = parse_task_text(_budget_file(budget), "t.yaml")  # the operator lifted them
    assert errors == [] and parsed is not None


def test_a_lowered_budget_holds_and_the_ceiling_bounds_a_huge_repeat():
    parsed, errors = parse_task_text(_budget_file("{max_iterations: 50}"), "t.yaml")
    assert errors == [] and parsed.prompt().template.budget.max_iterations == 50
    with pytest.raises(TemplateError, match="over the render budget"):
        Template("{% for i in range(10**9) %}{% endfor %}{{ mask }}", budget=RenderBudget()).render_parts({})
    with pytest.raises(ValueError, match="over the ceiling"):
        RenderBudget(max_output_chars=10**12)


def test_yaml_is_bounded_in_characters_not_only_in_values(monkeypatch):
    word = "w" * 100_000
    aliases = ", ".join(["*w"] * 150)
    text = (
        f"task: {{name: t, fields: [text], labels: [a, b]}}\nword: &w {word}\n"
        "templates:\n  x:\n    text: '{{ text }} {{ mask }}'\n"
        f"    label_words: {{a: [{aliases}], b: no}}\n"
    )
    _, errors = parse_task_text(text, "t.yaml")
    assert "more than 5,000,000 characters" in errors[0].message
    monkeypatch.setenv("LMBFF_MAX_TASK_FILE_CHARS", "1000")
    _, errors = parse_task_text(text, "t.yaml")
    assert "over the ceiling of 1,000 for a task file" in str(errors[0])
    assert "$LMBFF_MAX_TASK_FILE_CHARS" in str(errors[0])
