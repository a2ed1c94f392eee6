"""Zero-shot event argument roles (GCP) on real event data with the embedded default model: accuracy
(= F1 with given spans) with no constraints, each constraint removed, and all, exact and greedy.

    python benchmarks/events.py --data-root ../shared/data --out benchmarks/results/events

Two data sets from ../shared/data:
- GENEVA (OneIE sentences, FrameNet-style event types, no entity types): the ontology is derived from
  the data (``--ontology-from-data``), so it has no entity types, limits or cross-event pairs and every
  constraint setting must give the same result; it measures the prompts alone.
- WikiEvents (KAIROS ontology, typed entities): the documents are cut into sentences (the arguments in
  the trigger's sentence; GCP works on sentences) and gen-arg's ``event_role_KAIROS.json`` becomes an
  ontology file: the roles of each event type with the entity types each allows (cross-task), and
  GCP's Life:Injure / Conflict:Attack correspondence carried over to KAIROS' names (cross-event).
  KAIROS sets no per-event role limits, so cross-argument has nothing to act on there.

The derived files are written under ``<out>/derived/`` (not committed: they hold the data's text).
Each run is ``lmbff events ... --ablation`` and is skipped when its metrics.json exists.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from lmbff.cli.common import positive_int
from lmbff.files import atomic_write_text, markdown_table

# Entity-type words for KAIROS' type codes: one common word each, so that the typing prompt's slot
# takes single tokens (LM-BFF-style one-position scoring).
KAIROS_TYPE_WORDS = {
    "ABS": "idea", "AML": "animal", "BAL": "ballot", "BOD": "body", "COM": "commodity", "EVENT": "event",
    "FAC": "facility", "GPE": "country", "INF": "information", "LAW": "law", "LOC": "location",
    "MHI": "illness", "MON": "money", "NAT": "resource", "ORG": "organization", "PER": "person",
    "PLA": "plant", "PTH": "path", "RES": "result", "SEN": "sentence", "SID": "side", "TTL": "title",
    "VAL": "value", "VEH": "vehicle", "WEA": "weapon",
}  # fmt: skip
# gen-arg's file spells one code two ways.
KAIROS_TYPE_ALIASES = {"SIDE": "SID"}
# GCP's cross-event pair (ACE: Life:Injure and Conflict:Attack) in KAIROS' names; KAIROS splits
# attacks into Unspecified and DetonateExplode, both ACE Conflict:Attack.
KAIROS_CROSS_EVENT = [
    ("Life.Injure.Unspecified", "Conflict.Attack.Unspecified"),
    ("Life.Injure.Unspecified", "Conflict.Attack.DetonateExplode"),
]
KAIROS_ROLE_MAP = {"Victim": "Target", "Injurer": "Attacker", "Instrument": "Instrument", "Place": "Place"}


def _words(name: str) -> str:
    """'DetonateExplode' -> 'detonate explode'."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()


def kairos_ontology(path: Path) -> dict:
    """gen-arg's KAIROS role file as an ontology mapping (see data/events/ace2005.yaml's layout)."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    events, roles_in_words = {}, {}
    for name, entry in spec.items():
        parts = [p for p in name.split(".") if p != "Unspecified"]
        roles = {}
        for role, allowed in zip(entry["roles"], entry["role_types"], strict=True):
            codes = sorted({KAIROS_TYPE_ALIASES.get(t.upper(), t.upper()) for t in allowed})
            roles[role] = codes
            if _words(role) != role.lower():
                roles_in_words[role] = _words(role)
        events[name] = {"words": _words(parts[-1]), "roles": roles}
    cross = []
    for a, b in KAIROS_CROSS_EVENT:
        if a in events and b in events:
            mapping = {
                x: y
                for x, y in KAIROS_ROLE_MAP.items()
                if x in events[a]["roles"] and y in events[b]["roles"]
            }
            cross.append({"events": [a, b], "roles": mapping})
    used = sorted({t for e in events.values() for codes in e["roles"].values() for t in codes})
    return {
        "name": "KAIROS (gen-arg event_role_KAIROS.json)",
        "entity_types": {code: KAIROS_TYPE_WORDS[code] for code in used},
        "role_names": roles_in_words,
        "events": events,
        "cross_event": cross,
    }


def wikievents_sentences(path: Path, event_types: set[str]) -> tuple[list[dict], dict]:
    """WikiEvents documents as OneIE sentence records: each event with the arguments in its trigger's
    sentence, offsets made sentence-relative. Returns the records and what was left out."""
    records, dropped = [], {"arguments_in_other_sentences": 0, "events_of_unknown_types": 0}
    for line in path.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        starts, offset = [], 0
        for tokens, _ in doc["sentences"]:
            starts.append(offset)
            offset += len(tokens)
        entities = {e["id"]: e for e in doc["entity_mentions"]}
        by_sentence: dict[int, list] = {}
        for event in doc["event_mentions"]:
            if event["event_type"] not in event_types:
                dropped["events_of_unknown_types"] += 1
                continue
            index = event["trigger"]["sent_idx"]
            kept = [a for a in event["arguments"] if entities[a["entity_id"]]["sent_idx"] == index]
            dropped["arguments_in_other_sentences"] += len(event["arguments"]) - len(kept)
            by_sentence.setdefault(index, []).append((event, kept))
        for index, events in sorted(by_sentence.items()):
            base = starts[index]
            mentions = {a["entity_id"] for _, kept in events for a in kept}
            records.append(
                {
                    "doc_id": doc["doc_id"],
                    "tokens": [t[0] for t in doc["sentences"][index][0]],
                    "entity_mentions": [
                        {
                            "id": m,
                            "start": entities[m]["start"] - base,
                            "end": entities[m]["end"] - base,
                            "entity_type": entities[m]["entity_type"],
                        }
                        for m in sorted(mentions)
                    ],
                    "event_mentions": [
                        {
                            "id": event["id"],
                            "event_type": event["event_type"],
                            "trigger": {
                                "start": event["trigger"]["start"] - base,
                                "end": event["trigger"]["end"] - base,
                            },
                            "arguments": [{"entity_id": a["entity_id"], "role": a["role"]} for a in kept],
                        }
                        for event, kept in events
                    ],
                }
            )
    return records, dropped


def run_events(name: str, extra: list[str], out: Path, model: str, precision: str = "fp32") -> dict:
    folder = out / name
    if not (folder / "metrics.json").exists():
        command = [sys.executable, "-m", "lmbff.cli", "events", *extra, "--ablation", "--model", model]
        command += ["--precision", precision]  # stated, not the machine-dependent default (auto)
        subprocess.run([*command, "--out", str(folder)], check=True)
    summary = json.loads((folder / "metrics.json").read_text())
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    labelled = [p for p in predictions if p["gold"]]
    # What guessing uniformly among the event type's roles would score: the floor to read accuracy by.
    summary["chance"] = sum(1 / len(p["scores"]) for p in labelled) / max(1, len(labelled))
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument(
        "--geneva-sentences", type=positive_int, default=60, help="the first N sentences of GENEVA test"
    )
    parser.add_argument(
        "--wikievents-sentences", type=positive_int, default=80, help="the first N event sentences"
    )
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/events"))
    args = parser.parse_args(argv)
    geneva, wiki = args.data_root / "geneva" / "test.json", args.data_root / "wikievents"
    if not geneva.is_file() or not (wiki / "test.jsonl").is_file():
        print(f"no GENEVA / WikiEvents data under {args.data_root}; pass --data-root", file=sys.stderr)
        return 2
    derived = args.out / "derived"
    ontology = kairos_ontology(wiki / "event_role_KAIROS.json")
    records, dropped = wikievents_sentences(wiki / "test.jsonl", set(ontology["events"]))
    atomic_write_text(derived / "kairos.yaml", yaml.safe_dump(ontology, sort_keys=False, width=110))
    atomic_write_text(derived / "wikievents-sentences.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    print(f"WikiEvents: {len(records)} sentences with events; left out: {dropped}")
    runs = {
        f"GENEVA (first {args.geneva_sentences} sentences, ontology from the data)": run_events(
            f"geneva-{args.geneva_sentences}",
            ["--data", str(geneva), "--ontology-from-data", "--limit", str(args.geneva_sentences)],
            args.out,
            args.model,
            args.precision,
        ),
        f"WikiEvents (first {args.wikievents_sentences} sentences, KAIROS)": run_events(
            f"wikievents-{args.wikievents_sentences}",
            [
                "--data",
                str(derived / "wikievents-sentences.jsonl"),
                "--ontology",
                str(derived / "kairos.yaml"),
                "--limit",
                str(args.wikievents_sentences),
            ],
            args.out,
            args.model,
            args.precision,
        ),
    }
    rows = []
    for name, summary in runs.items():
        for row in summary["ablation"]:
            rows.append(
                [
                    name,
                    row["setting"],
                    row["method"],
                    f"{100 * row['accuracy']:.1f}",
                    f"{100 * row['macro_f1']:.1f}",
                    f"{100 * summary['chance']:.1f}",
                    f"{summary['arguments']}",
                    f"{summary['events']}",
                    f"{summary['seconds_per_event']:.2f}",
                ]
            )
    header = [
        "data",
        "constraints",
        "solver",
        "accuracy",
        "macro F1",
        "chance",
        "arguments",
        "events",
        "s / event",
    ]
    table = markdown_table(header, rows)
    atomic_write_text(args.out / "results.md", f"# Event argument roles, zero-shot ({args.model})\n\n{table}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
