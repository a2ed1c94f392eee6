"""Every lint error, produced by a real input, with file, template and line."""

import re
import textwrap

import pytest

from lmbff.cli import main
from prompts.library import TaskFileError, load_task_file
from prompts.lint import lint_file

GOOD = """\
task:
  name: toy
  fields: [text_a, text_b]
  labels: [neg, pos]
  metric: accuracy
templates:
  main:
    text: "{{ text_a }} / {{ text_b }} It was {{ mask }}."
    label_words:
      neg: terrible
      pos: great
"""


def write(tmp_path, text, name="toy.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def errors(path, tokenizer=None, kind="masked"):
    issues, _ = lint_file(path, tokenizer, kind)
    return [i for i in issues if i.severity == "error"]


def test_good_file_is_clean(tmp_path, bert_tokenizer):
    assert errors(write(tmp_path, GOOD), bert_tokenizer) == []


@pytest.mark.parametrize(
    ("replace", "by", "line", "message"),
    [
        ("  fields: [text_a, text_b]\n", "", 1, "task.fields"),
        ("  metric: accuracy", "  metric: bleu", 5, "unknown metric 'bleu'"),
        ("  labels: [neg, pos]", "  labels: [neg, neg]", 4, "labels repeat"),
        ("{{ text_b }}", "{{ text_c }}", 8, "reads field 'text_c', which the task does not declare"),
        (" It was {{ mask }}.", " It was good.", 8, "has no mask slot"),
        ("{{ text_b }}", "{{ text_b }", 8, "syntax error"),
        ("      pos: great", "      pos: terrible", 11, "are the same word to a reader"),
        ("      pos: great", "      neutral: great", 11, "'neutral' is not a label of the task"),
        ("      pos: great\n", "", 9, "label 'pos' has no label word"),
        ("  main:\n", "  main:\n    colour: red\n", 8, "unknown key"),
        ("{{ mask }}", "{{ mask }} {{ mask }}", 8, "2 mask slots"),
        ("{{ text_b }}", "{{ text_b.__class__.__mro__ }}", 8, "sandbox violation"),
    ],
)
def test_each_error_is_located(tmp_path, replace, by, line, message):
    assert replace in GOOD
    path = write(tmp_path, GOOD.replace(replace, by))
    found = errors(path)
    assert found, f"no error for {message}"
    assert any(message in i.message and i.line == line and i.file == str(path) for i in found), [
        str(i) for i in found
    ]


def test_template_line_points_inside_block_scalars(tmp_path):
    text = GOOD.replace(
        '    text: "{{ text_a }} / {{ text_b }} It was {{ mask }}."',
        "    text: |\n      {{ text_a }}\n      {{ text_b }\n      It was {{ mask }}.",
    )
    found = errors(write(tmp_path, text))
    assert [i.line for i in found] == [10]  # the file line of `{{ text_b }`


def test_unknown_token_label_word(tmp_path, bert_tokenizer):
    path = write(tmp_path, GOOD.replace("pos: great", 'pos: "☃"'))
    found = errors(path, bert_tokenizer)
    assert any("unknown to the tokenizer" in i.message and i.template == "main" for i in found)


def test_multi_token_word_is_a_warning_for_masked_lms(tmp_path, bert_tokenizer):
    path = write(tmp_path, GOOD.replace("pos: great", "pos: greatness-filled"))
    issues, words = lint_file(path, bert_tokenizer, "masked")
    warnings = [i for i in issues if i.severity == "warning"]
    assert any("tokens" in i.message and "one mask per token" in i.message for i in warnings)
    counts = {w.word: len(w.tokens) for w in words}
    assert counts["terrible"] == 1 and counts["greatness-filled"] > 1


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  metric: accuracy", "  metric: [accuracy"))
    found = errors(path)
    assert found and found[0].line is not None and "invalid YAML" in found[0].message


def test_loading_raises_the_first_error(tmp_path):
    path = write(
        tmp_path, GOOD.replace("{{ text_b }}", "{{ text_c }}").replace("metric: accuracy", "metric: x")
    )
    with pytest.raises(TaskFileError, match=r"toy.yaml:5: task.metric"):
        load_task_file(path)


def test_cli_lint_exit_codes(tmp_path, capsys):
    assert main(["templates", "lint", str(write(tmp_path, GOOD))]) == 0
    bad = write(tmp_path, GOOD.replace("{{ mask }}", ""), "bad.yaml")
    assert main(["templates", "lint", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "bad.yaml:8" in out and "no mask slot" in out and "1 error(s)" in out


def test_cli_lint_of_the_library_with_a_tokenizer(bert_dir, capsys):
    assert main(["templates", "lint", "--model", str(bert_dir)]) == 0
    out = capsys.readouterr().out
    assert "terrible" in out and "0 error(s)" in out


def test_word_warnings_cite_each_words_own_line(tmp_path, bert_tokenizer):
    """Seen: all 77 "likely splits into several tokens" warnings cited the line of `label_words:`."""
    path = write(
        tmp_path,
        """\
        task:
          name: intents
          fields: [text]
          labels: [card_arrival, card_linking, lost_card]
        templates:
          main:
            text: "{{ text }} Topic: {{ mask }}."
            label_words:
              card_arrival: card arrival
              card_linking: [card linking, link a card]
              lost_card: lost-card!
        """,
    )
    issues, _ = lint_file(path, None)
    assert sorted(i.line for i in issues if "likely splits" in i.message) == [9, 10, 10, 11]
    issues, _ = lint_file(path, bert_tokenizer, "masked")
    counted = [i.line for i in issues if re.search(r"splits into \d+ tokens", i.message)]
    assert sorted(counted) == [9, 10, 10, 11]
