"""Global constraints on argument roles (GCP, Lin et al. 2023), solved exactly or greedily.

A sentence's arguments are *slots* (event, argument entity, candidate roles with their LM scores).
Constraints, each switchable:

- cross-task: each argument entity also gets an entity type (scored by a typing prompt); a slot's role
  must allow its entity's type;
- cross-argument: per event, a role is taken by at most ``max`` arguments (the ontology's limits);
- cross-event: an entity shared by two related events (the ontology's ``cross_event`` pairs) takes
  corresponding roles in both (Victim in Life:Injure <=> Target in Conflict:Attack).

``exact`` maximises the total score over all slots and types jointly as a small integer program
(scipy's ``milp``, HiGHS); ``greedy`` is GCP's repair: best roles first, then each constraint fixed in
turn by moving the lowest-scoring offenders to their best allowed role.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .ontology import Ontology

Method = Literal["exact", "greedy"]


@dataclass(frozen=True)
class Slot:
    event: int  # index of the event mention in the sentence
    event_type: str
    entity_id: str
    roles: tuple[str, ...]
    scores: np.ndarray  # one log-score per role


@dataclass(frozen=True)
class Switches:
    cross_task: bool = True
    cross_argument: bool = True
    cross_event: bool = True

    @classmethod
    def none(cls) -> Switches:
        return cls(False, False, False)


@dataclass
class Solution:
    roles: list[str]
    types: dict[str, str]  # entity -> type, when typing is used
    objective: float
    feasible: bool = True


def objective(slots, roles, type_scores, types) -> float:
    total = sum(float(s.scores[s.roles.index(r)]) for s, r in zip(slots, roles, strict=True))
    return total + sum(type_scores[m][t] for m, t in types.items()) if type_scores else total


def _shared_pairs(slots: list[Slot], ontology: Ontology) -> list[tuple[int, int, dict[str, str]]]:
    """(slot of the first event, slot of the second, role correspondence) for every entity shared by
    two events whose types the ontology relates."""
    pairs = []
    for link in ontology.cross_event:
        for a, sa in enumerate(slots):
            for b, sb in enumerate(slots):
                shared = sa.event != sb.event and sa.entity_id == sb.entity_id
                if shared and (sa.event_type, sb.event_type) == (link.first, link.second):
                    pairs.append((a, b, link.roles))
    return pairs


def solve(
    slots: list[Slot],
    ontology: Ontology,
    switches: Switches = Switches(),
    type_scores: dict[str, dict[str, float]] | None = None,
    method: Method = "exact",
) -> Solution:
    """Roles for every slot (and types for their entities when cross-task typing is on)."""
    if not slots:
        return Solution([], {}, 0.0)
    typing = type_scores if switches.cross_task and type_scores else None
    if method == "greedy":
        return _greedy(slots, ontology, switches, typing)
    return _exact(slots, ontology, switches, typing)


def _exact(slots, ontology, switches, typing) -> Solution:
    from scipy.optimize import Bounds, LinearConstraint, milp

    index: dict[tuple[int, str], int] = {}
    costs: list[float] = []
    for i, slot in enumerate(slots):
        for role, score in zip(slot.roles, slot.scores, strict=True):
            index[(i, role)] = len(costs)
            costs.append(-float(score))
    mentions = sorted({s.entity_id for s in slots}) if typing else []
    type_index: dict[tuple[str, str], int] = {}
    for m in mentions:
        for t, score in typing[m].items():
            type_index[(m, t)] = len(costs)
            costs.append(-float(score))
    rows: list[dict[int, float]] = []
    lower: list[float] = []
    upper: list[float] = []

    def add(coefficients: dict[int, float], lo: float, hi: float) -> None:
        rows.append(coefficients)
        lower.append(lo)
        upper.append(hi)

    for i, slot in enumerate(slots):  # one role per argument
        add({index[(i, r)]: 1.0 for r in slot.roles}, 1, 1)
    for m in mentions:  # one type per entity
        add({type_index[(m, t)]: 1.0 for t in typing[m]}, 1, 1)
        for i, slot in enumerate(slots):
            if slot.entity_id != m:
                continue
            for r in slot.roles:
                allowed = ontology.events[slot.event_type].roles[r]
                if allowed:  # x[i, r] <= sum of y[m, t] over the types r allows
                    row = {index[(i, r)]: 1.0}
                    for t in allowed:
                        if (m, t) in type_index:
                            row[type_index[(m, t)]] = -1.0
                    add(row, -np.inf, 0)
    if switches.cross_argument:
        for (_, role), members in _by_event_role(slots).items():
            limit = ontology.events[slots[members[0]].event_type].max_per_event.get(role)
            if limit is not None and len(members) > limit:
                add({index[(i, role)]: 1.0 for i in members}, -np.inf, limit)
    if switches.cross_event:
        for a, b, mapping in _shared_pairs(slots, ontology):
            for ra, rb in mapping.items():
                if (a, ra) in index and (b, rb) in index:
                    add({index[(a, ra)]: 1.0, index[(b, rb)]: -1.0}, 0, 0)
    matrix = np.zeros((len(rows), len(costs)))
    for r, coefficients in enumerate(rows):
        for c, value in coefficients.items():
            matrix[r, c] = value
    result = milp(
        np.array(costs),
        constraints=LinearConstraint(matrix, lower, upper),
        integrality=np.ones(len(costs)),
        bounds=Bounds(0, 1),
    )
    if result.x is None:  # the constraints cannot all hold: the best roles, unconstrained
        best = [s.roles[int(np.argmax(s.scores))] for s in slots]
        types = {m: max(typing[m], key=typing[m].get) for m in mentions} if typing else {}
        return Solution(best, types, objective(slots, best, typing, types), feasible=False)
    chosen = result.x > 0.5
    roles = [next(r for r in s.roles if chosen[index[(i, r)]]) for i, s in enumerate(slots)]
    types = {m: next(t for t in typing[m] if chosen[type_index[(m, t)]]) for m in mentions}
    return Solution(roles, types, objective(slots, roles, typing, types))


def _by_event_role(slots: list[Slot]) -> dict[tuple[int, str], list[int]]:
    members: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, slot in enumerate(slots):
        for role in slot.roles:
            members[(slot.event, role)].append(i)
    return members


def _ranked(slot: Slot) -> list[str]:
    return [slot.roles[j] for j in np.argsort(-slot.scores, kind="stable")]


def _greedy(slots, ontology, switches, typing) -> Solution:
    roles = [_ranked(s)[0] for s in slots]
    types = {m: max(scores, key=scores.get) for m, scores in typing.items()} if typing else {}
    if typing:  # cross-task: a role that does not allow the entity's type gives way to the best that does
        for i, s in enumerate(slots):
            if not ontology.allows(s.event_type, roles[i], types.get(s.entity_id)):
                allowed = [r for r in _ranked(s) if ontology.allows(s.event_type, r, types.get(s.entity_id))]
                roles[i] = allowed[0] if allowed else roles[i]
    if switches.cross_argument:  # over a limit: the lowest-scoring holders move to their next best role
        for event in sorted({s.event for s in slots}):
            members = [i for i, s in enumerate(slots) if s.event == event]
            limits = ontology.events[slots[members[0]].event_type].max_per_event
            for role, limit in limits.items():
                holders = sorted(
                    (i for i in members if roles[i] == role),
                    key=lambda i: -slots[i].scores[slots[i].roles.index(role)],
                )
                for i in holders[limit:]:
                    others = [k for k in members if k != i]
                    free = [
                        r
                        for r in _ranked(slots[i])
                        if r != role and sum(roles[k] == r for k in others) < limits.get(r, len(members))
                    ]
                    roles[i] = free[0] if free else roles[i]
    if switches.cross_event:  # inconsistent shared arguments: the best corresponding pair of roles
        for a, b, mapping in _shared_pairs(slots, ontology):
            consistent = mapping.get(roles[a]) == roles[b] or (
                roles[a] not in mapping and roles[b] not in mapping.values()
            )
            if not consistent:
                sa, sb = slots[a], slots[b]
                options = [(ra, rb) for ra, rb in mapping.items() if ra in sa.roles and rb in sb.roles]
                if options:
                    ra, rb = max(
                        options,
                        key=lambda p: sa.scores[sa.roles.index(p[0])] + sb.scores[sb.roles.index(p[1])],
                    )
                    roles[a], roles[b] = ra, rb
    # greedy repair can leave a constraint broken (e.g. no role allows the entity's type)
    broken = violations(slots, roles, types, ontology, switches)
    return Solution(roles, types, objective(slots, roles, typing, types), feasible=not broken)


def violations(
    slots: list[Slot], roles: list[str], types: dict[str, str], ontology: Ontology, switches: Switches
) -> list[str]:
    """Every constraint an assignment breaks, in words (empty: feasible)."""
    broken = []
    if switches.cross_task and types:
        for s, r in zip(slots, roles, strict=True):
            if not ontology.allows(s.event_type, r, types.get(s.entity_id)):
                broken.append(
                    f"{s.entity_id} is {types.get(s.entity_id)}, which {s.event_type}.{r} does not allow"
                )
    if switches.cross_argument:
        for (event, role), members in _by_event_role(slots).items():
            limit = ontology.events[slots[members[0]].event_type].max_per_event.get(role)
            taken = sum(roles[i] == role for i in members)
            if limit is not None and taken > limit:
                broken.append(f"event {event}: {taken} arguments are {role}, at most {limit} may be")
    if switches.cross_event:
        for a, b, mapping in _shared_pairs(slots, ontology):
            for ra, rb in mapping.items():
                if (roles[a] == ra) != (roles[b] == rb) and ra in slots[a].roles and rb in slots[b].roles:
                    broken.append(f"{slots[a].entity_id}: {ra} in one event needs {rb} in the other")
    return broken
