"""Every operation that can make text or a collection grow has its result's size computed before it
runs (issue 35): each one, given a huge operand, is a located error in a fresh process whose peak
memory stays under 200 MB (they built 0.8 to 2 GB before being refused)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from prompts.sandbox import FILTERS, STRING_METHODS, environment

BIG = "{% set big = 'a' * 150000 %}"
LINES = "{% set lines = 'a\\n' * 90000 %}"
HUGE = {
    "percent width from the tuple": "{{ '%*s' % (10**9, 'a') }}",
    "percent precision from the tuple": "{{ '%.*f' % (10**9, 1.0) }}",
    "percent mapping used many times": "{{ ('%(a)s' * 3000) % {'a': 'x' * 100000} }}",
    "format filter": "{{ ('%(a)s' * 2000) | format(a=big) }}",
    "nested width in format_map": "{{ '{x:>{w}}'.format_map({'x': 'a', 'w': 10**9}) }}",
    "nested width in format": "{{ '{0:>{1}}'.format('a', 10**9) }}",
    "join filter, long separator": "{{ big | join('y' * 100000) }}",
    "join filter over a generator": "{{ ([big] * 2000) | map('string') | join }}",
    "join method": "{{ ('y' * 100000).join(big) }}",
    "join method over a generator": "{{ ''.join(([big] * 2000) | map('string')) }}",
    "replace empty, method": "{{ big.replace('', 'b' * 100000) }}",
    "replace empty, filter": "{{ big | replace('', 'b' * 100000) }}",
    "replace growing, filter": "{{ big | replace('a', 'bb') }}",
    "indent": LINES + "{{ lines | indent(200000) }}",
    "indent with a string": LINES + "{{ lines | indent('y' * 1000) }}",
    "tojson indent": "{{ ([[1] * 1000] * 1000) | tojson(indent=200000) }}",
    "pprint": "{{ ([[big] * 100] * 100) | pprint }}",
    "string of a list": "{{ ([big] * 100000) | string }}",
    "printing a list": "{{ [big] * 100000 }}",
    "sum of lists": "{{ ([[1] * 100000] * 100000) | sum(start=[]) }}",
    "wordwrap": "{{ big | wordwrap(1, wrapstring='b' * 100000) }}",
    "urlize": "{{ ('a.io ' * 30000) | urlize(target='t' * 100000) }}",
    "xmlattr": "{{ {'a': big, 'b': big} | xmlattr }}",
    "center": "{{ big | center(10**9) }}",
    "expandtabs": "{{ ('\\t' * 100000).expandtabs(100000) }}",
    "translate": "{{ big.translate({97: 'x' * 100000}) }}",
    "ljust": "{{ 'a'.ljust(10**9) }}",
    "concatenation with ~": "{{ " + " ~ ".join(["big"] * 2000) + " }}",
    "concatenation with +": "{{ big + big }}",
    "a macro's loop": "{% macro m() %}{% for i in range(2000) %}{{ big }}{% endfor %}{% endmacro %}{{ m() }}",
    "literal text in a macro's loop": "{% macro m() %}{% for i in range(2000) %}"
    + "x" * 150000
    + "{% endfor %}{% endmacro %}{{ m() }}",
    "a set block": "{% set s %}{% for i in range(2000) %}{{ big }}{% endfor %}{% endset %}{{ s|length }}",
    "a filter block": "{% filter upper %}{% for i in range(2000) %}{{ big }}{% endfor %}{% endfilter %}",
    "constant output folded at compile time": "{{ 'a' | center(150000) }}" * 2000,
    "repeat": "{{ 'x' * 10**9 }}",
}

# The peak is this process's VmHWM (reset at exec); ru_maxrss would carry over pytest's own peak.
PROBE = """
import json, sys
from prompts.template import Template, TemplateError, TemplateLocation
template_text = json.loads(sys.stdin.read())
try:
    where = TemplateLocation("probe.yaml", 7)
    Template(template_text + "{{ mask }}", name="hostile", location=where).render_parts({})
    outcome = "rendered"
except TemplateError as error:
    outcome = str(error)
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({"error": outcome, "peak_mb": int(status) / 1024}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak from /proc (Linux)")
@pytest.mark.parametrize("name", sorted(HUGE))
def test_a_growing_operation_is_refused_before_it_runs(name):
    text = BIG + HUGE[name]
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps(text),  # over 128 KB: too long for one command-line argument
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert "template 'hostile'" in result["error"] and "over the render budget" in result["error"], result
    assert result["error"].startswith("probe.yaml:7: template 'hostile'")  # located: file, line, template
    assert result["peak_mb"] < 200, result


def test_every_filter_and_string_method_is_on_the_allow_list():
    """A new Jinja filter or str method must be classified (growing, with its size, or bounded)."""
    internal = {"_lmbff_loop", "_lmbff_emit", "_lmbff_concat"}
    assert set(environment().filters) - internal == set(FILTERS)
    public = {m for m in dir(str) if not m.startswith("_") and m != "maketrans"}
    assert public <= set(STRING_METHODS)
