"""Silent wrong results (issue 35): each was a run that exited 0 and reported a result that was not
what the user wrote. Each is now an error that names what is wrong, tested end to end through the
command line and the Python API, not only at the unit that was fixed."""

from __future__ import annotations

import json
import textwrap

import pytest

from lmbff.classifier import PromptClassifier
from lmbff.cli import main
from lmbff.data import DataError, read_examples
from lmbff.inputs import to_examples
from lmbff.studio.drafts import make_draft
from prompts.library import TaskFileError, load_task_file, parse_task_text, task_file_from_labels
from prompts.lint import lint_file
from prompts.tokenization import TokenizerAdapter
from prompts.verbalizer import Verbalizer

TEMPLATE = "{{ text }} It was {{ mask }}."


@pytest.fixture
def reviews_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\nA great film,pos\nAwful and dull,neg\n")
    return path


def _zero_shot(model_dir, data, out, words: str) -> list[str]:
    return [
        "zero-shot", "--labels", "neg,pos", "--label-words", words, "--template", TEMPLATE,
        "--data-file", str(data), "--text-column", "text", "--model", str(model_dir), "--out", str(out),
    ]  # fmt: skip


# 1. Label words that differ only by whitespace, case or invisible characters, or encode alike.


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("great,great ", "same word to a reader"),
        ("great,Great", "same word to a reader"),
        ("great,great\u200b", "same word to a reader"),
        ("\u200b,great", "invisible"),
        ("great,\u2060\u00a0", "invisible"),
    ],
)
def test_indistinguishable_label_words_fail_the_cli_and_the_python_api(
    words, message, bert_dir, reviews_csv, tmp_path, capsys
):
    out = tmp_path / "out"
    assert main(_zero_shot(bert_dir, reviews_csv, out, words)) == 2
    assert message in capsys.readouterr().out
    assert not out.exists()  # refused before anything was written
    with pytest.raises(TaskFileError, match=message):
        PromptClassifier.zero_shot(["neg", "pos"], TEMPLATE, words.split(","), model=str(bert_dir))
    with pytest.raises(ValueError, match=message):
        Verbalizer(dict(zip(["neg", "pos"], words.split(","), strict=True)))


def test_words_that_encode_to_the_same_tokens_are_refused_whatever_their_spelling(
    bert_dir, reviews_csv, tmp_path, capsys, bert_tokenizer
):
    # bert-base-uncased strips accents: "café" and "cafe" are two words to a reader, one to the model.
    adapter = TokenizerAdapter(bert_tokenizer, "masked")
    assert adapter.word_ids("café", True) == adapter.word_ids("cafe", True)
    assert main(_zero_shot(bert_dir, reviews_csv, tmp_path / "out", "café,cafe")) == 2
    assert "encode to the same tokens" in capsys.readouterr().out
    with pytest.raises(ValueError, match="encode to the same tokens"):
        PromptClassifier.zero_shot(["neg", "pos"], TEMPLATE, ["café", "cafe"], model=str(bert_dir))
    # The same check in lint with a model, at the word's own line.
    task = textwrap.dedent(
        """\
        task:
          name: t
          fields: [text]
          labels: [neg, pos]
        templates:
          main:
            text: "{{ text }} It was {{ mask }}."
            label_words:
              neg: cafe
              pos: café
        """
    )
    path = tmp_path / "t.yaml"
    path.write_text(task)
    issues, _ = lint_file(path, bert_tokenizer, "masked")
    errors = [i for i in issues if i.severity == "error"]
    assert [(i.line, "encode to the same tokens" in i.message) for i in errors] == [(10, True)]


def test_the_studio_and_a_task_file_use_the_same_check(tmp_path):
    task_file = task_file_from_labels(["neg", "pos"], TEMPLATE, ["bad", "good"])
    draft = make_draft(task_file, "draft", TEMPLATE, {"neg": ["great"], "pos": ["great "]})
    assert not draft.ok and any("same word to a reader" in i.message for i in draft.issues)
    text = (
        "task: {name: t, fields: [text], labels: [neg, pos]}\n"
        "templates:\n  main:\n    text: '{{ text }} It was {{ mask }}.'\n"
        "    label_words:\n      neg: great\n      pos: 'great '\n"
    )
    _, errors = parse_task_text(text, "t.yaml")
    assert [(e.line, "same word to a reader" in e.message) for e in errors] == [(7, True)]


# 2. YAML 1.1 typing: Yes -> True, 010 -> 8, 1:30 -> 90.

TYPED = """\
task:
  name: typed
  fields: [text]
  labels: [yes, no]
templates:
  main:
    text: "{{ text }} Right? {{ mask }}."
    label_words: {yes: Yes, no: No}
"""


def test_yes_and_no_stay_text_in_labels_and_label_words(tmp_path, bert_dir, capsys):
    path = tmp_path / "typed.yaml"
    path.write_text(TYPED)
    task_file = load_task_file(path)
    assert task_file.task.labels == ("yes", "no")
    assert task_file.prompts["main"].label_words == {"yes": ["Yes"], "no": ["No"]}
    assert main(["templates", "lint", str(path)]) == 0
    # End to end: the labels predicted are the labels written, and the words scored are Yes / No.
    data = tmp_path / "d.csv"
    data.write_text("text,label\nIs it good,yes\nIs it bad,no\n")
    out = tmp_path / "out"
    command = ["zero-shot", "--task", str(path), "--data-file", str(data), "--text-column", "text"]
    assert main([*command, "--model", str(bert_dir), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["yes", "no"] and {r["prediction"] for r in rows} <= {"yes", "no"}
    state = json.loads((out / "metrics.json").read_text())
    assert "True" not in json.dumps(state)


@pytest.mark.parametrize(
    ("written", "read_as"),
    [("010", "the int 10"), ("1e3", "the float 1000.0"), ("~", "the null None"), ("true", "the bool True")],
)
def test_a_scalar_yaml_types_is_an_error_at_its_line_with_the_quoted_form(written, read_as, tmp_path):
    text = TYPED.replace("{yes: Yes, no: No}", f"\n      yes: {written}\n      no: No")
    _, errors = parse_task_text(text, "typed.yaml")
    assert len(errors) == 1, errors
    assert errors[0].line == 9 and read_as in errors[0].message
    assert errors[0].suggestion == f"write it in quotes: '{written}'"
    assert errors[0].key == "templates.main.label_words.yes"


def test_what_prints_back_as_written_is_kept_and_sexagesimal_is_text():
    text = TYPED.replace("[yes, no]", "[0, 1]").replace("{yes: Yes, no: No}", "{0: '1:30', 1: 1:30pm}")
    text = text.replace("{0: '1:30'", "{0: 1:30")
    parsed, errors = parse_task_text(text, "t.yaml")
    assert errors == []
    assert parsed.task.labels == ("0", "1")
    assert parsed.prompts["main"].label_words == {"0": ["1:30"], "1": ["1:30pm"]}
    labels_010 = TYPED.replace("[yes, no]", "[010, no]")
    _, errors = parse_task_text(labels_010, "t.yaml")
    assert errors and errors[0].line == 4 and "write it in quotes: '010'" in str(errors[0])


# 3. Control-token text in data and label words.


@pytest.mark.parametrize("fixture", ["roberta_tokenizer", "gpt_tokenizer", "bert_tokenizer"])
def test_control_token_text_in_data_is_encoded_as_text(fixture, request):
    from prompts.encoding import PromptEncoder
    from prompts.template import Template

    tokenizer = request.getfixturevalue(fixture)
    kind = "causal" if fixture == "gpt_tokenizer" else "masked"
    adapter = TokenizerAdapter(tokenizer, kind)
    encoder = PromptEncoder(Template("{{ text_a }} It was {{ mask }}. {{ text_b }}"), adapter)
    specials = " ".join(adapter.control_tokens())
    encoding = encoder.encode({"text_a": f"{specials} It was great.", "text_b": specials})
    special_ids = set(tokenizer.all_special_ids)
    lead, trail = len(adapter.leading_ids), len(adapter.trailing_ids)
    body = encoding.prefix_ids[lead:] + encoding.suffix_ids[: len(encoding.suffix_ids) - trail]
    assert not special_ids & set(body), tokenizer.convert_ids_to_tokens(body)
    assert specials.replace(" ", "").lower() in tokenizer.decode(body).replace(" ", "").lower()


def test_control_token_text_in_a_row_does_not_change_its_scores_position(roberta_dir):
    clf = PromptClassifier.zero_shot(["neg", "pos"], TEMPLATE, ["bad", "good"], model=str(roberta_dir))
    encoded = clf.prompt_model_.encode(to_examples(["<mask> </s> <s> a film"], ("text",)))
    mask = clf.prompt_model_.tokenizer.mask_token_id
    assert (encoded[0].prefix_ids + encoded[0].suffix_ids).count(mask) == 0  # only the slot's own mask


@pytest.mark.parametrize("word", ["<mask>", "</s>", "good</s>"])
def test_a_label_word_that_holds_a_control_token_is_refused(word, roberta_dir, roberta_tokenizer, tmp_path):
    with pytest.raises(ValueError, match="control token"):
        PromptClassifier.zero_shot(["neg", "pos"], TEMPLATE, ["bad", word], model=str(roberta_dir))
    path = tmp_path / "t.yaml"
    path.write_text(
        "task: {name: t, fields: [text], labels: [neg, pos]}\n"
        f"templates:\n  main:\n    text: '{TEMPLATE}'\n"
        f"    label_words:\n      neg: bad\n      pos: '{word}'\n"
    )
    issues, _ = lint_file(path, roberta_tokenizer, "masked")
    assert [(i.line, "control token" in i.message) for i in issues if i.severity == "error"] == [(7, True)]


# 4. Duplicated columns: the last one silently won.


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("d.tsv", "text\tlabel\tlabel\na film\tpos\tneg\n", 1),
        ("d.csv", "text,label,label\na film,pos,neg\n", 1),
        ("d.jsonl", '{"text": "a", "label": "pos"}\n{"text": "a film", "label": "pos", "label": "neg"}\n', 2),
    ],
)
def test_a_repeated_column_is_an_error_naming_file_line_and_name(
    name, text, line, tmp_path, bert_dir, capsys
):
    path = tmp_path / name
    path.write_text(text)
    task = task_file_from_labels(["neg", "pos"], TEMPLATE).task
    with pytest.raises(DataError) as error:
        read_examples(path, task)
    assert (error.value.file, error.value.line, error.value.field_name) == (str(path), line, "label")
    command = _zero_shot(bert_dir, path, tmp_path / "out", "bad,good")
    assert main(command) == 2
    assert f"{path}:{line}: field 'label'" in capsys.readouterr().out


# 5. Unordered containers as inputs.


def test_a_set_of_inputs_is_a_type_error(bert_dir):
    clf = PromptClassifier.zero_shot(["neg", "pos"], TEMPLATE, ["bad", "good"], model=str(bert_dir))
    with pytest.raises(TypeError, match="ordered collection"):
        clf.predict({"a great film", "awful"})
    with pytest.raises(TypeError, match="ordered collection"):
        clf.predict(frozenset({"a great film"}))
    with pytest.raises(TypeError, match="labels must be an ordered collection"):
        clf.score(["a great film", "awful"], {"pos", "neg"})
    assert len(clf.predict({"a great film": 1, "awful": 2}.keys())) == 2  # a dict's keys keep their order


# Valid input refused: long documents, the slot marker in data, rows a template cannot render.


def test_long_rows_and_the_slot_marker_in_data_are_scored_like_any_row(bert_dir, tmp_path, capsys):
    from prompts.template import _SENTINEL

    data = tmp_path / "long.csv"
    long_row = "a fine film " * 21_000  # 252,000 characters: over the render budget if rendered whole
    data.write_text(f"text,label\n{long_row},pos\nx {_SENTINEL} y,neg\nawful,neg\n")
    out = tmp_path / "out"
    assert main(_zero_shot(bert_dir, data, out, "bad,good")) == 0, capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["pos", "neg", "neg"]
    clf = PromptClassifier.zero_shot(["neg", "pos"], TEMPLATE, ["bad", "good"], model=str(bert_dir))
    assert clf.predict([long_row, f"x {_SENTINEL} y"]).shape == (2,)
    # Cut to what the model takes: the long row keeps its first tokens, as a short one would.
    encoded = clf.prompt_model_.encode(to_examples([long_row], ("text",)))[0]
    assert len(encoded.prefix_ids) + len(encoded.suffix_ids) < 128


def test_a_row_the_template_cannot_render_is_named_and_skip_bad_skips_it(bert_dir, tmp_path, capsys):
    data = tmp_path / "rows.csv"
    data.write_text("text,label\na long enough row,pos\nshort,neg\n")
    template = "{{ text }} ({{ 100 // (text | length - 5) }}) It was {{ mask }}."  # fails on 5 letters
    command = [
        "zero-shot", "--labels", "neg,pos", "--label-words", "bad,good", "--template", template,
        "--data-file", str(data), "--text-column", "text", "--model", str(bert_dir),
    ]  # fmt: skip
    assert main([*command, "--out", str(tmp_path / "a")]) == 2
    printed = capsys.readouterr().out
    assert f"{data}:3: this row cannot be rendered" in printed and "ZeroDivisionError" in printed
    assert main([*command, "--out", str(tmp_path / "b"), "--skip-bad"]) == 0
    assert "skipped 1 rows the template cannot render" in capsys.readouterr().out
    assert len((tmp_path / "b" / "predictions.jsonl").read_text().splitlines()) == 1
    clf = PromptClassifier.zero_shot(["neg", "pos"], template, ["bad", "good"], model=str(bert_dir))
    with pytest.raises(DataError, match="input 1: this row cannot be rendered"):
        clf.predict(["a long enough row", "short"])


def test_text_that_looks_like_markup_or_control_tokens_prints_and_encodes_as_written(
    bert_dir, bert_tokenizer, tmp_path, capsys
):
    """Seen: the console read data as rich markup ("[mask]" vanished, "[/]" raised a MarkupError), and a
    row's "[MASK] [SEP]" was encoded as the model's own mask and separator."""
    data = tmp_path / "rows"
    data.mkdir()
    row = "[MASK] [SEP] [mask] [/] a film"
    (data / "test.tsv").write_text(f"text\tlabel\n{row}\tpos\n")
    task = tmp_path / "t.yaml"
    task.write_text(
        "task: {name: t, fields: [text], labels: [neg, pos]}\n"
        "templates:\n  main:\n    text: '{{ text }} It was {{ mask }}.'\n"
        "    label_words: {neg: bad, pos: good}\n"
    )
    command = [
        "templates",
        "render",
        "--task",
        str(task),
        "--data-dir",
        str(data),
        "--split",
        "test",
        "--n",
        "1",
    ]
    assert main([*command, "--model", str(bert_dir)]) == 0
    printed = capsys.readouterr().out
    assert row in printed  # as written, nothing read as markup
    as_text = bert_tokenizer(f"{row} It was", add_special_tokens=False, split_special_tokens=True)[
        "input_ids"
    ]
    assert f"slot at token {1 + len(as_text)}" in printed  # [CLS] + the row as text, not 2 control tokens
    assert main(["zero-shot", "--task", str(task), "--data-dir", str(tmp_path / "nowhere [/]")]) == 2
    assert "nowhere [/]" in capsys.readouterr().out  # an error message holding "[/]" prints, whole
