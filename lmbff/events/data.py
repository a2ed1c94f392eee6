"""Event data in the OneIE JSON-lines layout: one sentence per line with its tokens, entity mentions
and event mentions (type, trigger span, arguments by entity id with the gold role when known).

Every malformed record is a :class:`lmbff.data.DataError` naming the file, line and field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..data import DataError


@dataclass(frozen=True)
class Entity:
    id: str
    start: int
    end: int  # exclusive token index
    text: str
    type: str | None = None


@dataclass(frozen=True)
class Argument:
    entity_id: str
    role: str | None  # gold role, when the data has it


@dataclass(frozen=True)
class EventMention:
    id: str
    type: str
    trigger: str
    trigger_start: int
    arguments: tuple[Argument, ...]


@dataclass
class EventSentence:
    source: str  # file:line
    tokens: list[str]
    entities: dict[str, Entity]
    events: list[EventMention] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def _span(record: dict, key: str, n_tokens: int, where: tuple[str, int], name: str) -> tuple[int, int]:
    start, end = record.get("start"), record.get("end")
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= n_tokens):
        raise DataError(*where, f"span [{start}, {end}) is not inside the {n_tokens} tokens", f"{name}.{key}")
    return start, end


def read_events(path: str | os.PathLike) -> list[EventSentence]:
    """Read a OneIE JSON-lines file. Raises DataError for the first malformed record."""
    path = Path(path)
    file = str(path)
    sentences = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = (file, number)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(*where, f"not JSON: {error}") from error
        tokens = record.get("tokens")
        if tokens is None and isinstance(record.get("sentence"), str):
            tokens = record["sentence"].split()
        if not isinstance(tokens, list) or not tokens:
            raise DataError(*where, "expected a non-empty token list (or a sentence)", "tokens")
        entities = {}
        for i, mention in enumerate(record.get("entity_mentions") or []):
            if not isinstance(mention, dict) or "id" not in mention:
                raise DataError(*where, "expected a mapping with an id", f"entity_mentions[{i}]")
            start, end = _span(mention, "start", len(tokens), where, f"entity_mentions[{i}]")
            entities[str(mention["id"])] = Entity(
                str(mention["id"]), start, end, " ".join(tokens[start:end]), mention.get("entity_type")
            )
        events = []
        for i, event in enumerate(record.get("event_mentions") or []):
            name = f"event_mentions[{i}]"
            if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
                raise DataError(*where, "expected a mapping with an event_type", name)
            trigger = event.get("trigger")
            if not isinstance(trigger, dict):
                raise DataError(*where, "expected a trigger with start and end", f"{name}.trigger")
            t_start, t_end = _span(trigger, "start", len(tokens), where, f"{name}.trigger")
            arguments = []
            for j, arg in enumerate(event.get("arguments") or []):
                if not isinstance(arg, dict) or str(arg.get("entity_id")) not in entities:
                    raise DataError(
                        *where,
                        f"argument entity {arg.get('entity_id') if isinstance(arg, dict) else arg!r} "
                        "is not among the sentence's entity_mentions",
                        f"{name}.arguments[{j}].entity_id",
                    )
                arguments.append(Argument(str(arg["entity_id"]), arg.get("role")))
            events.append(
                EventMention(
                    str(event.get("id", f"{number}-{i}")),
                    event["event_type"],
                    " ".join(tokens[t_start:t_end]),
                    t_start,
                    tuple(arguments),
                )
            )
        sentences.append(EventSentence(f"{file}:{number}", tokens, entities, events))
    return sentences
