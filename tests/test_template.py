"""Sandboxed rendering: slot splitting, LM-BFF filters, and errors that name file, template and line."""

import pytest

from prompts.library import load_task
from prompts.sandbox import lower_first, strip_final_punct
from prompts.template import Template, TemplateError, TemplateLocation


def test_render_parts_splits_at_the_mask_slot():
    t = Template("{{ text_a }} It was {{ mask }}.")
    assert t.render_parts({"text_a": "A fine film."}) == ("A fine film. It was ", ".")
    assert t.render({"text_a": "A fine film."}, mask="great") == "A fine film. It was great."
    assert t.fields == {"text_a"}


def test_lmbff_filters_reproduce_its_markers():
    assert strip_final_punct("A man is sleeping.") == "A man is sleeping"
    assert strip_final_punct("Really?!  ") == "Really"
    assert lower_first("He is awake.") == "he is awake."
    mnli = load_task("MNLI").prompt().template
    assert mnli.render_parts({"text_a": "A man sleeps.", "text_b": "He is awake."}) == (
        "A man sleeps? ",
        ", he is awake.",
    )


def test_undefined_field_names_file_template_and_line():
    t = Template(
        "Premise: {{ text_a }}\nHypothesis: {{ text_c }} {{ mask }}",
        name="nli",
        location=TemplateLocation("tasks/x.yaml", 10),
    )
    with pytest.raises(TemplateError) as err:
        t.render_parts({"text_a": "a"})
    message = str(err.value)
    assert "tasks/x.yaml:11" in message and "'nli'" in message and "text_c" in message
    assert err.value.template_line == 2


def test_syntax_error_names_the_line():
    with pytest.raises(TemplateError) as err:
        Template("line one\n{{ text_a }\n{{ mask }}", name="broken", location=TemplateLocation("f.yaml", 5))
    assert "syntax error" in str(err.value)
    assert err.value.file_line == 6


@pytest.mark.parametrize(
    "text",
    [
        "{{ text_a.__class__.__mro__ }} {{ mask }}",
        "{{ text_a.__class__.__base__.__subclasses__() }} {{ mask }}",
        "{{ cycler.__init__.__globals__ }} {{ mask }}",
    ],
)
def test_sandbox_blocks_python_internals(text):
    t = Template(text, name="evil")
    with pytest.raises(TemplateError) as err:
        t.render_parts({"text_a": "x"})
    assert "evil" in str(err.value)


def test_sandbox_error_is_a_sandbox_violation():
    t = Template("{{ text_a.__class__.__mro__[1].__subclasses__() }} {{ mask }}", name="evil")
    with pytest.raises(TemplateError, match=r"sandbox violation|undefined"):
        t.render_parts({"text_a": "x"})


def test_slot_count_and_altered_slot_are_errors():
    with pytest.raises(TemplateError, match="no mask slot"):
        Template("{{ text_a }}").render_parts({"text_a": "x"})
    with pytest.raises(TemplateError, match="2 mask slots"):
        Template("{{ mask }} {{ text_a }} {{ mask }}").render_parts({"text_a": "x"})
    with pytest.raises(TemplateError, match="alters its mask slot"):
        Template("{{ text_a }} {{ mask | upper }}").render_parts({"text_a": "x"})


def test_jinja_logic_is_available():
    t = Template("{% if text_b %}{{ text_a }} / {{ text_b }}{% else %}{{ text_a }}{% endif %} {{ mask }}")
    assert t.render_parts({"text_a": "a", "text_b": ""})[0] == "a "
    assert t.render_parts({"text_a": "a", "text_b": "b"})[0] == "a / b "
