"""Event ontologies: event type -> roles (each with the entity types it allows), names in words,
per-event role limits, and cross-event role correspondences. One YAML file each; every problem is
reported with file, line and key.

The file::

    name: ACE 2005
    entity_types: {PER: person, ORG: organization, ...}   # type -> words for the typing prompt
    events:
      Life:Injure:
        words: injure                     # optional (GCP: the subtype lower-cased, - as spaces)
        roles: {Agent: [PER, ORG, GPE], Victim: [PER], Instrument: [WEA, VEH], Place: [GPE, LOC, FAC]}
        max: {Victim: 3}                  # optional per-event limits (cross-argument constraint)
    role_names: {Org: organization}       # optional (default: the role lower-cased, _ and - as spaces)
    cross_event:                          # shared arguments of related events take corresponding roles
      - events: [Life:Injure, Conflict:Attack]
        roles: {Victim: Target, Agent: Attacker, Instrument: Instrument, Place: Place, Time: Time}

A role listed with no entity types (``Role: []`` or ``Role: null``) allows any type.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from prompts.errors import LmbffError
from prompts.library import TaskFileError, YamlLines, strict_yaml


class OntologyError(LmbffError, ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class EventType:
    name: str  # e.g. Life:Injure
    words: str  # e.g. injure
    roles: dict[str, tuple[str, ...]]  # role -> allowed entity types (empty: any)
    max_per_event: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CrossEvent:
    first: str
    second: str
    roles: dict[str, str]  # role in the first event -> corresponding role in the second


@dataclass(frozen=True)
class Ontology:
    name: str
    events: dict[str, EventType]
    entity_types: dict[str, str]  # type -> words
    role_names: dict[str, str]
    cross_event: tuple[CrossEvent, ...] = ()
    path: str = ""

    def role_words(self, role: str) -> str:
        return self.role_names.get(role) or role.lower().replace("_", " ").replace("-", " ")

    def allows(self, event_type: str, role: str, entity_type: str | None) -> bool:
        allowed = self.events[event_type].roles[role]
        return not allowed or entity_type is None or entity_type in allowed


def default_event_words(event_type: str) -> str:
    """GCP's event name: the subtype lower-cased, hyphens and underscores as spaces."""
    return event_type.split(":")[-1].lower().replace("-", " ").replace("_", " ")


def bundled_ontology(name: str = "ace2005") -> Path:
    from ..paths import bundled_data_dir

    path = bundled_data_dir("events") / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no bundled ontology {name!r}")
    return path


def load_ontology(path: str | os.PathLike | None = None) -> Ontology:
    """Read and validate an ontology file (default: the bundled ACE 2005 ontology).

    Raises:
        OntologyError: every problem found, each as ``file:line: key: message``.
    """
    path = Path(path) if path is not None else bundled_ontology()
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        # as task files: YAML 1.2's core schema (a role or type named "Yes" or "On" stays text), and a
        # key written twice refused at its line (the second event or role would replace the first)
        node, data = strict_yaml(text, file)
        lines = YamlLines(node)
    except OSError as error:
        raise OntologyError([f"{file}: cannot read the ontology: {error}"]) from error
    except TaskFileError as error:
        raise OntologyError([str(error)]) from None
    problems: list[str] = []

    def problem(message: str, *key: str) -> None:
        problems.append(f"{file}:{lines.line(*key) if key else 1}: {'.'.join(key) or '(file)'}: {message}")

    if not isinstance(data, dict) or not isinstance(data.get("events"), dict) or not data["events"]:
        raise OntologyError([f"{file}:1: expected a mapping with a non-empty 'events' mapping"])
    entity_types = data.get("entity_types") or {}
    if not isinstance(entity_types, dict):
        problem("expected a mapping of entity type -> words", "entity_types")
        entity_types = {}
    events: dict[str, EventType] = {}
    for name, spec in data["events"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("roles"), dict) or not spec["roles"]:
            problem("an event type needs a non-empty 'roles' mapping (role: [entity types])", "events", name)
            continue
        roles: dict[str, tuple[str, ...]] = {}
        for role, allowed in spec["roles"].items():
            allowed = [] if allowed is None else allowed
            if not isinstance(allowed, list):
                problem("expected a list of entity types", "events", name, "roles", str(role))
                continue
            unknown = [t for t in allowed if t not in entity_types]
            if unknown:
                problem(
                    f"unknown entity type(s) {unknown}; declared: {sorted(entity_types)}",
                    "events",
                    name,
                    "roles",
                    str(role),
                )
            roles[str(role)] = tuple(str(t) for t in allowed)
        limits = spec.get("max") or {}
        for role, count in limits.items():
            if role not in roles:
                problem(f"limit for role {role!r}, which {name} does not have", "events", name, "max", role)
            elif not isinstance(count, int) or count < 1:
                problem("expected a positive integer", "events", name, "max", role)
        events[str(name)] = EventType(
            str(name), spec.get("words") or default_event_words(name), roles, dict(limits)
        )
    cross = []
    for spec in data.get("cross_event") or []:
        pair = spec.get("events") if isinstance(spec, dict) else None
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in events for p in pair)):
            problem(f"expected events: [two event types of this ontology], got {pair}", "cross_event")
            continue
        for a, b in (spec.get("roles") or {}).items():
            if a not in events[pair[0]].roles or b not in events[pair[1]].roles:
                problem(f"{pair[0]}.{a} -> {pair[1]}.{b}: a role the event type does not have", "cross_event")
        cross.append(
            CrossEvent(pair[0], pair[1], {str(a): str(b) for a, b in (spec.get("roles") or {}).items()})
        )
    if problems:
        raise OntologyError(problems)
    return Ontology(
        str(data.get("name", path.stem)),
        events,
        {str(k): str(v) for k, v in entity_types.items()},
        {str(k): str(v) for k, v in (data.get("role_names") or {}).items()},
        tuple(cross),
        file,
    )
