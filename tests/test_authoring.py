"""Template authoring: scaffolding, preview, and every authoring error with its location."""

from __future__ import annotations

import pytest

from lmbff.cli import main
from prompts.lint import lint_file
from prompts.scaffold import scaffold_task_file

from .conftest import DEMO_DATA


def test_new_scaffolds_a_file_that_lints_clean_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "nli.yaml"
    assert (
        main(f"templates new --task nli --fields premise,hypothesis --labels yes,no --out {out}".split()) == 0
    )
    issues, _ = lint_file(out)
    assert [i for i in issues if i.severity == "error"] == []
    text = out.read_text()
    assert "{{ premise }} {{ hypothesis }} It was {{ mask }}." in text and '"yes": "yes"' in text
    assert main(f"templates new --task nli --fields a --labels x,y --out {out}".split()) == 2
    assert "exists" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fields", "labels", "message"),
    [(["a", "a"], ["x"], "repeated"), (["not a name"], ["x"], "identifiers"), (["a"], [], "at least one")],
)
def test_new_refuses_bad_fields_and_labels(fields, labels, message):
    with pytest.raises(ValueError, match=message):
        scaffold_task_file("t", fields, labels)


def write_task(tmp_path, template: str, words: str = "negative: terrible\n      positive: great") -> str:
    path = tmp_path / "task.yaml"
    path.write_text(
        "task:\n  name: t\n  fields: [text_a]\n  labels: [negative, positive]\n"
        f"templates:\n  main:\n    text: {template!r}\n    label_words:\n      {words}\n"
    )
    return str(path)


def test_every_authoring_error_is_located_with_a_suggestion(tmp_path, gpt_tokenizer, bert_tokenizer):
    no_mask = lint_file(write_task(tmp_path, "{{ text_a }} It was."))[0]
    assert any("has no mask slot" in str(i) and "task.yaml:" in str(i) and i.suggestion for i in no_mask)
    missing_field = lint_file(write_task(tmp_path, "{{ text_b }} It was {{ mask }}."))[0]
    assert any("reads field 'text_b'" in i.message and i.line and i.template == "main" for i in missing_field)
    unfillable = lint_file(write_task(tmp_path, "{{ text_a }} {{ mask }}", "negative: terrible"))[0]
    assert any("positive" in i.message and i.severity == "error" for i in unfillable)
    split_word = lint_file(
        write_task(
            tmp_path, "{{ text_a }} It was {{ mask }}.", "negative: terribleness\n      positive: great"
        ),
        bert_tokenizer,
        "masked",
    )[0]
    assert any("is 2 tokens" in i.message or "tokens [" in i.message for i in split_word)


def test_lint_checks_the_data_against_the_task(tmp_path, capsys):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nfine\tpositive\n")
    task = write_task(tmp_path, "{{ text_a }} It was {{ mask }}.")
    assert main(f"templates lint {task} --data-dir {tmp_path}".split()) == 1
    out = capsys.readouterr().out
    assert "does not fit this task" in out and "rename the data's columns" in out
    assert main(f"templates lint {DEMO_DATA / 'task.yaml'} --data-dir {DEMO_DATA}".split()) == 0


def test_preview_shows_probabilities_and_predictions(gpt, gpt_dir, capsys):
    from lmbff.data import load_split
    from lmbff.model import PromptModel
    from lmbff.preview import preview
    from prompts.library import load_task

    task_file = load_task(str(DEMO_DATA / "task.yaml"))
    examples = load_split(DEMO_DATA, "train", task_file.task).examples[:3]
    model, tokenizer = gpt
    scorer = PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind="causal")
    rows = preview(scorer, examples)
    assert rows[0].source.endswith("train.tsv:2") and rows[0].before.endswith(" It was")
    assert rows[0].before.startswith(examples[0].fields["text_a"][:10]) and rows[0].after == "."
    for r in rows:
        assert sum(r.probabilities.values()) == pytest.approx(1.0)
        assert r.prediction == max(r.probabilities, key=r.probabilities.get)
    command = (
        f"templates preview --task {DEMO_DATA / 'task.yaml'} --data-dir {DEMO_DATA} --model {gpt_dir} --n 3"
    )
    assert main(command.split()) == 0
    assert "of 3 right (zero-shot)" in capsys.readouterr().out
