"""Scoring candidate roles (and entity types) with a language model through the event prompts.

Per argument and candidate role, one passage: the prefix naming the event and its trigger, then the
sentence with the cloze after the argument (GCP). The passages of all arguments of one event type
form one prompt task whose labels are that type's roles and whose label words are the roles in words,
so the existing :class:`~lmbff.model.PromptModel` scores them, batched and length-sorted: a masked LM
reads the role words at masks (length-normalised), a causal LM scores the rest of the passage from
the role words on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from prompts.event_prompts import EventPrompts
from prompts.library import Task
from prompts.verbalizer import Verbalizer

from ..data import Example
from ..errors import ConfigError
from ..model import PromptModel
from .constraints import Slot
from .data import EventSentence
from .ontology import Ontology


def passage_fields(
    sentence: EventSentence,
    event,
    entity_id: str,
    prompts: EventPrompts,
    ontology,
    after_words: int | None = None,
) -> dict:
    """The passage's fields; ``after_words`` keeps only that many words after the argument (a causal
    LM scores every token after the role words, so this bounds the cost per candidate role)."""
    entity = sentence.entities[entity_id]
    words = ontology.events[event.type].words
    prefix = prompts.prefix.render({"event": words, "trigger": event.trigger})
    before = " ".join(sentence.tokens[: entity.start])
    rest = sentence.tokens[entity.end :]
    after = " ".join(rest if after_words is None else rest[:after_words])
    return {
        "prefix": prefix,
        "before": before + " " if before else "",
        "argument": entity.text,
        "after": " " + after if after else "",
    }


class RoleScorer:
    def __init__(
        self,
        lm,
        tokenizer,
        kind,
        ontology: Ontology,
        prompts: EventPrompts,
        *,
        max_length: int = 256,
        after_words: int | None = None,
    ):
        self.lm, self.tokenizer, self.kind = lm, tokenizer, kind
        self.ontology, self.prompts, self.max_length = ontology, prompts, max_length
        self.after_words = after_words

    def _scorer(self, template, labels: Sequence[str], words: dict[str, str], fields) -> PromptModel:
        task = Task(name="events", fields=tuple(fields), labels=tuple(labels))
        scorer = PromptModel(
            self.lm,
            self.tokenizer,
            template,
            Verbalizer(words, list(labels)),
            kind=self.kind,
            max_length=self.max_length,
            # the passage keeps the argument, its cloze and the prefix: only the sentence's sides are cut
            truncate_side={"before": "start", "after": "end"},
        )
        scorer.task = task
        return scorer

    def slots(self, sentences: Sequence[EventSentence], progress: bool = False) -> list[list[Slot]]:
        """Every argument of every event, with its candidate roles' log-scores, per sentence."""
        unknown = sorted(
            {e.type for s in sentences for e in s.events if e.arguments} - set(self.ontology.events)
        )
        if unknown:
            raise ConfigError(
                f"event types not in the ontology {self.ontology.name!r} ({self.ontology.path}): "
                f"{unknown[:5]}"
                f"{' ...' if len(unknown) > 5 else ''}; pass --ontology, or --ontology-from-data"
            )
        by_type: dict[str, list[tuple[int, int, str, Example]]] = defaultdict(list)
        for si, sentence in enumerate(sentences):
            for ei, event in enumerate(sentence.events):
                for arg in event.arguments:
                    fields = passage_fields(
                        sentence, event, arg.entity_id, self.prompts, self.ontology, self.after_words
                    )
                    by_type[event.type].append((si, ei, arg.entity_id, Example(fields)))
        out: list[list[Slot]] = [[] for _ in sentences]
        for event_type, items in by_type.items():
            roles = list(self.ontology.events[event_type].roles)
            words = {r: self.ontology.role_words(r) for r in roles}
            scorer = self._scorer(
                self.prompts.passage, roles, words, ("prefix", "before", "argument", "after")
            )
            scores = scorer.predict_log_scores([item[3] for item in items], progress=progress and event_type)
            for (si, ei, entity_id, _), row in zip(items, scores, strict=True):
                out[si].append(
                    Slot(ei, event_type, entity_id, tuple(roles), np.asarray(row, dtype=np.float64))
                )
        # Event order; an event's arguments were appended in data order and the sort is stable.
        return [sorted(slots, key=lambda slot: slot.event) for slots in out]

    def entity_types(self, sentences: Sequence[EventSentence], progress: bool = False) -> list[dict]:
        """Per sentence: argument entity -> {entity type: log-score} from the typing prompt."""
        types = list(self.ontology.entity_types)
        if not types:
            return [{} for _ in sentences]
        scorer = self._scorer(
            self.prompts.typing, types, self.ontology.entity_types, ("sentence", "argument")
        )
        items = [
            (si, entity_id, Example({"sentence": s.text, "argument": s.entities[entity_id].text}))
            for si, s in enumerate(sentences)
            for entity_id in sorted({a.entity_id for e in s.events for a in e.arguments})
        ]
        scores = scorer.predict_log_scores([i[2] for i in items], progress=progress and "entity types")
        out: list[dict] = [{} for _ in sentences]
        for (si, entity_id, _), row in zip(items, scores, strict=True):
            out[si][entity_id] = {t: float(v) for t, v in zip(types, row, strict=True)}
        return out
