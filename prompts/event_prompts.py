"""The event-role prompts (``templates/events.yaml``): a prefix naming the event and its trigger, the
passage with the cloze after the argument, and the entity-typing prompt. Checked in the sandbox."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .library import bundled_templates_dir, strict_yaml
from .template import MASK, Template, TemplateError, TemplateLocation

FIELDS = {
    "prefix": ({"event", "trigger"}, False),
    "passage": ({"prefix", "before", "argument", "after"}, True),
    "typing": ({"sentence", "argument"}, True),
}


@dataclass(frozen=True)
class EventPrompts:
    prefix: Template
    passage: Template
    typing: Template


def load_event_prompts(path: str | os.PathLike | None = None) -> EventPrompts:
    """Read and check the event prompts (default: the bundled ``events.yaml``).

    Raises:
        TemplateError: a prompt is missing, reads a field it is not given, or lacks/misplaces the mask.
    """
    path = Path(path) if path is not None else bundled_templates_dir() / "events.yaml"
    _, data = strict_yaml(path.read_text(encoding="utf-8"), str(path))
    data = data or {}
    if not isinstance(data, dict):
        raise TemplateError(
            "expected a mapping of prompts", template="events", location=TemplateLocation(str(path))
        )
    templates = {}
    for name, (fields, needs_mask) in FIELDS.items():
        location = TemplateLocation(str(path), None)
        if not isinstance(data.get(name), str):
            raise TemplateError(f"missing the {name!r} prompt", template=name, location=location)
        template = Template(data[name], name=name, location=location)
        unknown = template.fields - fields
        if unknown:
            raise TemplateError(
                f"reads {sorted(unknown)}; the {name} prompt is given {sorted(fields)}",
                template=name,
                location=location,
            )
        if needs_mask != (MASK in template.variables):
            raise TemplateError(
                f"the {name} prompt {'needs' if needs_mask else 'must not have'} a {{{{ mask }}}}",
                template=name,
                location=location,
            )
        templates[name] = template
    return EventPrompts(**templates)
