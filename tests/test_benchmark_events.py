"""The events benchmark's conversions of WikiEvents and gen-arg's KAIROS roles (synthetic inputs in
their layouts), checked through the toolkit's own readers and validators."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

from lmbff.events.data import read_events
from lmbff.events.ontology import load_ontology

SPEC = importlib.util.spec_from_file_location(
    "events_benchmark", Path(__file__).resolve().parent.parent / "benchmarks" / "events.py"
)
events_benchmark = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(events_benchmark)

KAIROS = {
    "Life.Injure.Unspecified": {
        "roles": ["Victim", "Injurer", "Instrument", "BodyPart", "Place"],
        "role_types": [["per"], ["per", "org"], ["wea", "veh"], ["bod"], ["loc", "gpe"]],
    },
    "Conflict.Attack.DetonateExplode": {
        "roles": ["Attacker", "Target", "Instrument", "ExplosiveDevice", "Place"],
        "role_types": [["per", "org", "side"], ["per", "fac"], ["wea", "veh"], ["wea"], ["loc", "gpe"]],
    },
}


def sentence(words: str) -> list:
    return [[[w, 0, 0] for w in words.split()], words]


DOC = {
    "doc_id": "d1",
    "tokens": [],
    "sentences": [sentence("A quiet day ."), sentence("A bomb wounded two men in Kabul .")],
    "entity_mentions": [
        {"id": "e-bomb", "sent_idx": 1, "start": 5, "end": 6, "entity_type": "WEA", "text": "bomb"},
        {"id": "e-men", "sent_idx": 1, "start": 7, "end": 9, "entity_type": "PER", "text": "two men"},
        {"id": "e-kabul", "sent_idx": 1, "start": 10, "end": 11, "entity_type": "GPE", "text": "Kabul"},
        {"id": "e-day", "sent_idx": 0, "start": 2, "end": 3, "entity_type": "TME", "text": "day"},
    ],
    "event_mentions": [
        {
            "id": "ev1",
            "event_type": "Life.Injure.Unspecified",
            "trigger": {"start": 6, "end": 7, "sent_idx": 1, "text": "wounded"},
            "arguments": [
                {"entity_id": "e-men", "role": "Victim"},
                {"entity_id": "e-bomb", "role": "Instrument"},
                {"entity_id": "e-day", "role": "Time"},  # another sentence: left out
            ],
        },
        {
            "id": "ev2",
            "event_type": "Movement.Transport.Unspecified",  # not in the ontology: left out
            "trigger": {"start": 1, "end": 2, "sent_idx": 0, "text": "quiet"},
            "arguments": [],
        },
    ],
}


def test_kairos_roles_become_a_valid_ontology_with_types_and_the_attack_pair(tmp_path):
    source = tmp_path / "event_role_KAIROS.json"
    source.write_text(json.dumps(KAIROS))
    spec = events_benchmark.kairos_ontology(source)
    (tmp_path / "kairos.yaml").write_text(yaml.safe_dump(spec))
    ontology = load_ontology(tmp_path / "kairos.yaml")
    injure = ontology.events["Life.Injure.Unspecified"]
    assert injure.words == "injure" and injure.roles["Injurer"] == ("ORG", "PER")
    attack = ontology.events["Conflict.Attack.DetonateExplode"]
    assert attack.words == "detonate explode" and attack.roles["Attacker"] == ("ORG", "PER", "SID")
    assert ontology.role_words("ExplosiveDevice") == "explosive device"
    assert ontology.entity_types["GPE"] == "country"
    (pair,) = ontology.cross_event  # Life.Injure / Conflict.Attack.Unspecified is absent here
    assert pair.roles == {
        "Victim": "Target",
        "Injurer": "Attacker",
        "Instrument": "Instrument",
        "Place": "Place",
    }


def test_wikievents_documents_become_sentences_with_relative_offsets(tmp_path):
    source = tmp_path / "test.jsonl"
    source.write_text(json.dumps(DOC) + "\n")
    records, dropped = events_benchmark.wikievents_sentences(source, set(KAIROS))
    assert dropped == {"arguments_in_other_sentences": 1, "events_of_unknown_types": 1}
    (tmp_path / "sentences.jsonl").write_text(json.dumps(records[0]) + "\n")
    (only,) = read_events(tmp_path / "sentences.jsonl")
    assert only.tokens == ["A", "bomb", "wounded", "two", "men", "in", "Kabul", "."]
    assert {e.text: e.type for e in only.entities.values()} == {"bomb": "WEA", "two men": "PER"}
    (event,) = only.events
    assert event.trigger == "wounded" and [(a.entity_id, a.role) for a in event.arguments] == [
        ("e-men", "Victim"),
        ("e-bomb", "Instrument"),
    ]
