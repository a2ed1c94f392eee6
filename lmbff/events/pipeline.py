"""Zero-shot argument role classification end to end: score once, solve under each constraint
setting, measure, and write predictions, metrics and the ablation table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from .constraints import Method, Slot, Switches, solve
from .data import EventSentence
from .ontology import EventType, Ontology

# The ablation: no constraints, each constraint alone removed, all of them.
SETTINGS: dict[str, Switches] = {
    "no constraints": Switches.none(),
    "all - cross-task": Switches(cross_task=False),
    "all - cross-argument": Switches(cross_argument=False),
    "all - cross-event": Switches(cross_event=False),
    "all constraints": Switches(),
}


@dataclass
class Scored:
    sentences: list[EventSentence]
    slots: list[list[Slot]]
    types: list[dict]
    seconds: float


def score(scorer, sentences: Sequence[EventSentence], typing: bool = True, progress: bool = False) -> Scored:
    started = time.perf_counter()
    slots = scorer.slots(sentences, progress=progress)
    types = scorer.entity_types(sentences, progress=progress) if typing else [{} for _ in sentences]
    return Scored(list(sentences), slots, types, time.perf_counter() - started)


def predict(
    scored: Scored, ontology: Ontology, switches: Switches, method: Method = "exact"
) -> list[list[str]]:
    return [
        solve(slots, ontology, switches, types or None, method).roles
        for slots, types in zip(scored.slots, scored.types, strict=True)
    ]


def gold_roles(scored: Scored) -> list[list[str | None]]:
    return [
        [
            sentence.events[s.event].arguments[k].role
            for s, k in zip(slots, _argument_positions(slots), strict=True)
        ]
        for sentence, slots in zip(scored.sentences, scored.slots, strict=True)
    ]


def _argument_positions(slots: list[Slot]) -> list[int]:
    """Each slot's index among its event's arguments (slots keep the data's argument order)."""
    seen: dict[int, int] = {}
    positions = []
    for s in slots:
        positions.append(seen.get(s.event, 0))
        seen[s.event] = positions[-1] + 1
    return positions


def metrics(gold: list[list], predicted: list[list[str]]) -> dict:
    """Accuracy (= micro F1 when the argument spans are given) and per-role precision/recall/F1."""
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True) if g]
    if not pairs:
        return {}
    y_true, y_pred = zip(*pairs, strict=True)
    roles = sorted(set(y_true) | set(y_pred))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=roles, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(sum(f) / len(f)),
        "arguments": len(pairs),
        "per_role": {
            role: {"precision": float(a), "recall": float(b), "f1": float(c), "support": int(d)}
            for role, a, b, c, d in zip(roles, p, r, f, support, strict=True)
        },
    }


def ablation(
    scored: Scored, ontology: Ontology, methods: Sequence[Method] = ("exact", "greedy")
) -> list[dict]:
    """Accuracy under every constraint setting and solving method, from one set of scores."""
    gold = gold_roles(scored)
    rows = []
    for name, switches in SETTINGS.items():
        for method in methods if name != "no constraints" else ("exact",):
            started = time.perf_counter()
            predicted = predict(scored, ontology, switches, method)
            result = metrics(gold, predicted)
            rows.append(
                {
                    "setting": name,
                    "method": method if name != "no constraints" else "-",
                    "accuracy": result.get("accuracy"),
                    "macro_f1": result.get("macro_f1"),
                    "solve_seconds": time.perf_counter() - started,
                }
            )
    return rows


def ontology_from_events(sentences: Sequence[EventSentence], name: str = "derived from data") -> Ontology:
    """An ontology of the event types and roles the data itself uses (any entity type, no limits, no
    cross-event pairs): for data such as GENEVA that comes without one."""
    roles: dict[str, dict[str, tuple]] = {}
    for sentence in sentences:
        for event in sentence.events:
            known = roles.setdefault(event.type, {})
            for arg in event.arguments:
                if arg.role:
                    known.setdefault(arg.role, ())
    events = {
        t: EventType(t, t.split(":")[-1].lower().replace("-", " ").replace("_", " "), r)
        for t, r in roles.items()
        if r
    }
    return Ontology(name, events, {}, {}, (), "")


def prediction_records(
    sentences: Sequence[EventSentence], scored: Scored, gold: list, predicted: list
) -> list[dict]:
    """One predictions.jsonl record per argument: where it is, its gold and predicted role, every
    candidate role's score."""
    return [
        {
            "source": sentence.source,
            "event": sentence.events[slot.event].id,
            "event_type": slot.event_type,
            "entity": slot.entity_id,
            "argument": sentence.entities[slot.entity_id].text,
            "gold": g,
            "prediction": p,
            "scores": {r: float(v) for r, v in zip(slot.roles, slot.scores, strict=True)},
        }
        for sentence, slots, golds, preds in zip(sentences, scored.slots, gold, predicted, strict=True)
        for slot, g, p in zip(slots, golds, preds, strict=True)
    ]


def summary(
    sentences: Sequence[EventSentence], scored: Scored, ontology: Ontology, result: dict, *, data: str,
    model: str, method: str, constraints: dict,
) -> dict:  # fmt: skip
    """What an events run measured, for its metrics.json: the data, ontology, model, solver and
    constraints, the counts and time, and the metrics."""
    n_events = sum(len(s.events) for s in sentences)
    return {
        "data": data,
        "ontology": ontology.name,
        "model": model,
        "method": method,
        "constraints": constraints,
        "sentences": len(sentences),
        "events": n_events,
        "scoring_seconds": scored.seconds,
        "seconds_per_event": scored.seconds / max(1, n_events),
        **result,
    }
