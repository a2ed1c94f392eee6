"""Property-based tests (hypothesis): arbitrary template strings and arbitrary rows never end in a
traceback or run past their budget; the only failures are the toolkit's own located errors."""

from __future__ import annotations

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmbff.data import DataError, read_examples
from prompts.library import Task, TaskFileError, parse_task_text
from prompts.template import RenderBudget, Template, TemplateError

TASK = Task(name="t", fields=("text_a", "text_b"), labels=("a", "b"))
BUDGET = RenderBudget(max_iterations=2_000, max_output_chars=5_000, timeout_seconds=0.5)
# derandomize: the same examples on every run, so CI is reproducible (raise max_examples to explore more)
FAST = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

# Pieces of Jinja that reach loops, calls, filters and operators, glued together at random.
_PIECES_TEXT = (
    "{{ text_a }}|{{ mask }}|{{ text_b | upper }}|{% for i in range(|{% endfor %}|) %}|{% if | %}|{% endif %}"
    "|{{ | }}|text_a|*|**|~|+|%|9|99999|10|(|)|[|]|'x'|.center(|replace('a', text_a)|format(|.format("
    "|{% macro f(n) %}|{% endmacro %}|f(|{% set a = |a ~ a|{{ a }}|lipsum(|batch(|list|join|loop.index"
    "|__class__|.|,|-|{#|#}|{%|%}|{{|}}|\n"
)
PIECES = _PIECES_TEXT.split("|")
jinja_soup = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)
fields = st.fixed_dictionaries({"text_a": st.text(max_size=60), "text_b": st.text(max_size=60)})


def _render(text: str, values: dict) -> None:
    started = time.monotonic()
    try:
        template = Template(text, name="p", budget=BUDGET)
        template.render_parts(values)
        template.render(values, mask="word")
    except TemplateError as error:
        assert "template 'p'" in str(error)
    assert time.monotonic() - started < 5 * BUDGET.timeout_seconds + 1


@FAST
@given(st.text(max_size=200), fields)
def test_any_string_is_a_template_or_a_template_error(text, values):
    _render(text, values)


@FAST
@given(jinja_soup, fields)
def test_jinja_soup_never_escapes_the_budget(text, values):
    _render(text, values)


@FAST
@given(st.text(max_size=400))
def test_any_task_file_text_parses_or_lists_located_problems(text):
    parsed, errors = parse_task_text(text, "any.yaml")
    assert (parsed is None) == bool(errors) or parsed is not None
    for error in errors:
        assert isinstance(error, TaskFileError) and str(error).startswith("any.yaml")


cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
rows = st.lists(st.tuples(cell, cell, st.sampled_from(["a", "b", "c", "", " "])), max_size=12)


def _read(path, skip_bad: bool) -> None:
    try:
        report = read_examples(path, TASK, skip_bad=skip_bad)
    except DataError as error:
        assert str(error).startswith(str(path))
        return
    for example in report.examples:
        assert set(example.fields) == {"text_a", "text_b"} and example.label in ("a", "b")


@FAST
@given(rows, st.booleans(), st.sampled_from(["tsv", "csv", "jsonl"]))
def test_any_rows_read_or_give_a_located_data_error(tmp_path_factory, data, skip_bad, fmt):
    import csv
    import io

    path = tmp_path_factory.mktemp("rows") / f"data.{fmt}"
    if fmt == "tsv":
        text = "text_a\ttext_b\tlabel\n" + "".join(f"{a}\t{b}\t{label}\n" for a, b, label in data)
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["text_a", "text_b", "label"])
        writer.writerows(data)
        text = buffer.getvalue()
    else:
        text = "".join(json.dumps({"text_a": a, "text_b": b, "label": label}) + "\n" for a, b, label in data)
    path.write_text(text, encoding="utf-8")
    _read(path, skip_bad)


@FAST
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_read_or_give_a_located_data_error(tmp_path_factory, raw, skip_bad):
    path = tmp_path_factory.mktemp("bytes") / "data.tsv"
    path.write_bytes(b"text_a\ttext_b\tlabel\n" + raw)
    _read(path, skip_bad)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
task_blocks = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values | st.just("t"),
        "fields": json_values | st.just(["text_a"]),
        "labels": json_values | st.just(["a", "b"]),
        "metric": json_values | st.just("f1"),
        "type": json_values | st.just("regression"),
        "range": json_values | st.just([0, 5]),
        "field_limits": json_values,
        "positive_label": json_values,
    },
)
template_specs = st.fixed_dictionaries(
    {},
    optional={
        "text": json_values | jinja_soup,
        "label_words": json_values | st.just({"a": "yes", "b": ["no", ""]}),
        "reference": json_values,
    },
)


@FAST
@given(
    st.fixed_dictionaries(
        {"task": task_blocks},
        optional={
            "templates": st.dictionaries(st.text(max_size=6), template_specs, max_size=3) | json_values,
            "default_template": json_values,
            "render_budget": json_values,
        },
    )
)
def test_any_structured_task_file_parses_or_lists_located_problems(document):
    import yaml

    text = yaml.safe_dump(document, allow_unicode=True)
    parsed, errors = parse_task_text(text, "any.yaml")
    for error in errors:
        assert isinstance(error, TaskFileError) and str(error).startswith("any.yaml")
    if parsed is not None:
        for spec in parsed.prompts.values():
            _render(spec.template.text, {"text_a": "x", "text_b": "y"})
