"""Events: ontology and data validation, exact constraint solving against brute force, each constraint
on planted scores."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from lmbff.data import DataError
from lmbff.events.constraints import Slot, Switches, objective, solve, violations
from lmbff.events.data import read_events
from lmbff.events.ontology import OntologyError, load_ontology

from .conftest import REPO

FIXTURE = REPO / "data" / "events" / "fixture.jsonl"
ACE = load_ontology()


def test_bundled_ace_ontology():
    assert ACE.name == "ACE 2005" and len(ACE.events) == 33
    assert ACE.events["Transaction:Transfer-Ownership"].words == "transfer ownership"
    assert ACE.events["Personnel:End-Position"].max_per_event == {"Position": 1}
    assert ACE.allows("Life:Injure", "Victim", "PER") and not ACE.allows("Life:Injure", "Victim", "ORG")
    assert ACE.role_words("Org") == "organization" and ACE.role_words("Place") == "place"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events: {A: {roles: {X: [NOPE]}}}\n", r":1: events.A.roles.X: unknown entity type"),
        ("entity_types: {P: p}\nevents:\n  A: {roles: {}}\n", r":3: events.A: an event type needs"),
        ("events:\n  A:\n    roles: {X: []}\n    max: {Y: 1}\n", r":4: events.A.max.Y: limit for role 'Y'"),
        ("events: {A: {roles: {X: []}}}\ncross_event: [{events: [A, B]}]\n", r"cross_event: expected events"),
        ("[]\n", r"non-empty 'events'"),
    ],
)
def test_bad_ontologies_are_located(tmp_path, text, message):
    path = tmp_path / "onto.yaml"
    path.write_text(text)
    with pytest.raises(OntologyError, match=message):
        load_ontology(path)


def test_reading_events_and_locating_bad_records(tmp_path):
    sentences = read_events(FIXTURE)
    assert len(sentences) == 3 and sentences[0].source.endswith("fixture.jsonl:1")
    attack = sentences[0].events[0]
    assert attack.type == "Conflict:Attack" and attack.trigger == "attacked"
    assert [a.role for a in attack.arguments] == ["Attacker", "Target", "Place"]
    assert sentences[0].entities["e3"].text == "Kabul" and sentences[0].entities["e3"].type == "GPE"
    good = FIXTURE.read_text().splitlines()[2]
    cases = [
        ("{not json", "not JSON"),
        (good.replace('"entity_id": "e2"', '"entity_id": "e9"'), "arguments[1].entity_id"),
        (good.replace('"start": 4, "end": 5', '"start": 4, "end": 50'), "entity_mentions[1].start"),
        (good.replace('"event_type": "Life:Be-Born", ', ""), "event_mentions[0]"),
    ]
    for line, field in cases:
        path = tmp_path / "bad.jsonl"
        path.write_text(good + "\n" + line + "\n")
        with pytest.raises(DataError, match=r"bad\.jsonl:2: .*" + re.escape(field)):
            read_events(path)


def slot(event: int, event_type: str, entity: str, scores: dict[str, float]) -> Slot:
    roles = tuple(ACE.events[event_type].roles)
    return Slot(event, event_type, entity, roles, np.array([scores.get(r, -5.0) for r in roles]))


def brute_force(slots, switches, type_scores):
    best = None
    mentions = sorted({s.entity_id for s in slots}) if type_scores and switches.cross_task else []
    type_choices = [list(type_scores[m]) for m in mentions]
    for roles in itertools.product(*[s.roles for s in slots]):
        for chosen in itertools.product(*type_choices):
            types = dict(zip(mentions, chosen, strict=True))
            if violations(slots, list(roles), types, ACE, switches):
                continue
            value = objective(slots, list(roles), type_scores if mentions else None, types)
            if best is None or value > best:
                best = value
    return best


@pytest.mark.parametrize("seed", range(4))
def test_exact_solution_is_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)

    def random_scores(event_type):
        return {r: float(rng.normal()) for r in ACE.events[event_type].roles}

    # small enough to enumerate: 5^4 role choices x 2^3 type choices
    slots = [
        slot(0, "Life:Injure", "a", random_scores("Life:Injure")),
        slot(1, "Conflict:Attack", "a", random_scores("Conflict:Attack")),
        slot(2, "Personnel:End-Position", "c", random_scores("Personnel:End-Position")),
        slot(2, "Personnel:End-Position", "d", random_scores("Personnel:End-Position")),
    ]
    type_scores = {m: {t: float(rng.normal()) for t in ("PER", "JOB")} for m in "acd"}
    for switches in (Switches(), Switches.none(), Switches(cross_task=False), Switches(cross_event=False)):
        solution = solve(slots, ACE, switches, type_scores)
        assert solution.feasible
        assert not violations(slots, solution.roles, solution.types, ACE, switches)
        assert solution.objective == pytest.approx(brute_force(slots, switches, type_scores))
        greedy = solve(slots, ACE, switches, type_scores, method="greedy")
        assert greedy.feasible == (not violations(slots, greedy.roles, greedy.types, ACE, switches))
        if greedy.feasible:  # the repair never beats the optimum
            assert greedy.objective <= solution.objective + 1e-9


def test_cross_argument_limit_moves_the_weaker_position():
    slots = [
        slot(0, "Personnel:End-Position", "chairman", {"Position": -0.1, "Person": -2.0}),
        slot(0, "Personnel:End-Position", "ceo", {"Position": -0.5, "Person": -0.6}),
    ]
    assert solve(slots, ACE, Switches.none()).roles == ["Position", "Position"]
    for method in ("exact", "greedy"):
        assert solve(slots, ACE, Switches(), method=method).roles == ["Position", "Person"]


def test_cross_task_typing_moves_a_role_the_type_does_not_allow():
    slots = [slot(0, "Life:Injure", "army", {"Victim": -0.2, "Agent": -0.9})]
    typing = {"army": {"ORG": -0.1, "PER": -3.0}}
    assert solve(slots, ACE, Switches.none(), typing).roles == ["Victim"]
    for method in ("exact", "greedy"):
        solution = solve(slots, ACE, Switches(), typing, method=method)
        assert solution.roles == ["Agent"] and solution.types == {"army": "ORG"}


def test_cross_event_gives_a_shared_argument_corresponding_roles():
    slots = [
        slot(0, "Life:Injure", "soldiers", {"Victim": -0.3, "Agent": -1.0}),
        slot(1, "Conflict:Attack", "soldiers", {"Attacker": -0.2, "Target": -0.8}),
    ]
    assert solve(slots, ACE, Switches.none()).roles == ["Victim", "Attacker"]  # inconsistent
    # Victim+Target = -1.1 beats Agent+Attacker = -1.2
    for method in ("exact", "greedy"):
        assert solve(slots, ACE, Switches(), method=method).roles == ["Victim", "Target"]


def test_event_prompts_are_checked(tmp_path):
    from prompts.event_prompts import load_event_prompts
    from prompts.template import TemplateError

    prompts = load_event_prompts()
    assert "and any other" in prompts.passage.text
    bad = tmp_path / "events.yaml"
    bad.write_text(
        "prefix: 'x {{ event }}'\n"
        "passage: '{{ before }} {{ argument }} {{ nope }} {{ mask }}'\n"
        "typing: '{{ mask }}'\n"
    )
    with pytest.raises(TemplateError, match="reads \\['nope'\\]"):
        load_event_prompts(bad)
    bad.write_text("prefix: 'x {{ mask }}'\npassage: '{{ mask }}'\ntyping: '{{ mask }}'\n")
    with pytest.raises(TemplateError, match="must not have"):
        load_event_prompts(bad)


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_role_passages_and_scores_on_a_tiny_model(family, fresh_model):
    from lmbff.events.scoring import RoleScorer, passage_fields
    from prompts.event_prompts import load_event_prompts

    model, tokenizer, kind = fresh_model(family)
    prompts = load_event_prompts()
    sentences = read_events(FIXTURE)
    fields = passage_fields(sentences[0], sentences[0].events[1], "e4", prompts, ACE)
    passage = prompts.passage.render(fields, mask="victim")
    assert passage == (
        'This is a injure event whose occurrence is most clearly expressed by "wounding". '
        "Rebels attacked the convoy near Kabul , wounding two soldiers and any other victim ."
    )
    short = passage_fields(sentences[0], sentences[0].events[0], "e1", prompts, ACE, after_words=2)
    assert short["after"] == " attacked the"  # two words after "Rebels"
    scorer = RoleScorer(model, tokenizer, kind, ACE, prompts)
    slots = scorer.slots(sentences)
    assert [len(s) for s in slots] == [6, 4, 3]
    first = slots[0][3]  # the Injure event's first argument
    assert (first.event, first.event_type, first.entity_id) == (1, "Life:Injure", "e1")
    assert first.roles == tuple(ACE.events["Life:Injure"].roles)
    assert np.exp(first.scores).sum() == pytest.approx(1.0, abs=1e-5)
    types = scorer.entity_types(sentences)
    assert set(types[0]) == {"e1", "e2", "e3", "e4"} and set(types[0]["e1"]) == set(ACE.entity_types)


def test_events_command_with_ablation(gpt_dir, tmp_path, capsys):
    from lmbff.cli import main

    out = tmp_path / "events"
    assert main(f"events --data {FIXTURE} --model {gpt_dir} --ablation --out {out}".split()) == 0
    import json

    summary = json.loads((out / "metrics.json").read_text())
    from lmbff.results import RunResult  # the events command writes a run folder like every other

    run = RunResult.read(out)
    assert run.method.startswith("zero-shot (") and run.backend == "none" and run.metric == "accuracy"
    assert run.test["accuracy"] == summary["accuracy"]
    assert summary["arguments"] == 13 and 0 <= summary["accuracy"] <= 1
    settings = {(r["setting"], r["method"]) for r in summary["ablation"]}
    assert ("no constraints", "-") in settings and ("all constraints", "greedy") in settings
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 13 and json.loads(lines[0])["gold"] == "Attacker"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(FIXTURE.read_text().replace("Conflict:Attack", "Conflict:Raid"))
    assert main(f"events --data {bad} --model {gpt_dir} --out {tmp_path / 'x'}".split()) == 2
    assert "Conflict:Raid" in capsys.readouterr().out
    assert (
        main(f"events --data {bad} --model {gpt_dir} --ontology-from-data --out {tmp_path / 'y'}".split())
        == 0
    )
