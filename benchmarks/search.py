"""Automatic label words and templates against the manual ones, zero-shot on test, LM-BFF's splits.

    python benchmarks/search.py --data-root ../shared/data --tasks SST-2,MR --out benchmarks/results/search

Per task and seed: the label words found on the seed's train split (LM-BFF's criterion, ranked by
training accuracy, the best kept), and the template found on its dev split (generator-free pool
mode, the task's manual label words), each scored zero-shot on the full test set with the embedded
model, against the manual template and words. Prints and writes mean (std) over seeds and the
search time (results.md, results.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lmbff.cli.common import positive_int
from lmbff.data import load_split
from lmbff.evaluate import score_examples
from lmbff.files import atomic_write_json, atomic_write_text, markdown_table
from lmbff.model import PromptModel
from lmbff.pretrained import load_model
from lmbff.search.labels import LabelSearchConfig, search_label_words
from lmbff.search.templates import TemplateSearchConfig, search_templates
from lmbff.splits import split_folder
from prompts.library import PromptSpec, load_task
from prompts.template import Template
from prompts.verbalizer import Verbalizer


def zero_shot(loaded, task, template: Template, label_words: dict, examples) -> float:
    scorer = PromptModel(
        loaded.model,
        loaded.tokenizer,
        template,
        Verbalizer(label_words, task.labels),
        kind=loaded.kind,
        field_limits=task.field_limits,
        truncate_side=task.truncate_side,
    )
    scorer.task = task
    return score_examples(task, examples, scorer.predict_log_scores(examples, progress="test"), "test").score


def known_scores(results: list[dict], manual: dict[str, PromptSpec]) -> dict[tuple, float]:
    """Test scores already measured, by (task, template text, label words): zero-shot test accuracy is a
    function of these alone, and seeds often find the same words or template, so each pair is scored
    on the test set once (a slot-first template costs a causal LM a full-vocabulary row per token)."""
    scores = {}
    for r in results:
        template = manual[r["task"]].template.text
        # Records from before manual_label_words was written were made with the task file's words.
        words = _key(r.get("manual_label_words", manual[r["task"]].label_words))
        scores[(r["task"], template, words)] = r["manual"]
        scores[(r["task"], r["template"], words)] = r["auto_template"]
        scores[(r["task"], template, _key(r["label_words"]))] = r["auto_labels"]
    return scores


def _key(words: dict) -> tuple:
    return tuple(sorted((label, tuple(w) if isinstance(w, list) else w) for label, w in words.items()))


def write_tables(results: list[dict], out: Path, model: str) -> str:
    """results.md from every record so far (written after each seed, so a stopped run still has one)."""
    rows = []
    for name in dict.fromkeys(r["task"] for r in results):
        mine = [r for r in results if r["task"] == name]

        def cell(key, mine=mine):
            values = 100 * np.array([r[key] for r in mine])
            return f"{values.mean():.1f} ({values.std():.1f})"

        rows.append(
            [
                name,
                load_task(name).task.metric,
                ",".join(str(r["seed"]) for r in mine),
                cell("manual"),
                cell("auto_labels"),
                f"{np.mean([r['label_search_seconds'] for r in mine]):.0f}",
                cell("auto_template"),
                f"{np.mean([r['template_search_seconds'] for r in mine]):.0f}",
            ]
        )
    table = markdown_table(
        [
            "task",
            "metric",
            "seeds",
            "manual",
            "auto label words",
            "label search s",
            "auto template (pool)",
            "template search s",
        ],
        rows,
    )
    details = markdown_table(
        ["task", "seed", "label words found", "score", "template found", "score"],
        [
            [
                r["task"],
                r["seed"],
                ", ".join(f"{label}: {word}" for label, word in r["label_words"].items()),
                f"{100 * r['auto_labels']:.1f}",
                f"`{r['template']}`",
                f"{100 * r['auto_template']:.1f}",
            ]
            for r in results
        ],
    )
    atomic_write_text(
        out / "results.md",
        f"# Zero-shot test score x100 (the task's metric), mean (std) over seeds ({model})\n\n"
        f"{table}\n\n{details}\n",
    )
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--tasks", default="SST-2")
    parser.add_argument("--seeds", default="13,21,42,87,100")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--top-k", type=positive_int, default=100)
    parser.add_argument(
        "--templates",
        default="TREC=answer_type",
        help="TASK=TEMPLATE,... the manual template per task (label search needs the slot at the end on a "
        "causal LM: TREC's LM-BFF template starts with it)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search"))
    args = parser.parse_args(argv)
    if not args.data_root.is_dir():
        print(f"no benchmark data at {args.data_root}; pass --data-root", file=sys.stderr)
        return 2
    loaded = load_model(args.model)
    saved = args.out / "results.json"
    # Resumable: a (task, seed) already in results.json is kept, not searched again.
    results = json.loads(saved.read_text()) if saved.exists() else []
    templates = dict(pair.split("=", 1) for pair in args.templates.split(",") if pair)
    prompts = {
        name: load_task(name).prompt(templates.get(name))
        for name in {*args.tasks.split(","), *(r["task"] for r in results)}
    }
    cache = known_scores(results, prompts)

    def test_score(task, template_text: str, label_words: dict, test) -> float:
        key = (task.name, template_text, _key(label_words))
        if key not in cache:
            cache[key] = zero_shot(loaded, task, Template(template_text, name="scored"), label_words, test)
        return cache[key]

    for name in args.tasks.split(","):
        task, manual = load_task(name).task, prompts[name]
        seeds = [
            s
            for s in map(int, args.seeds.split(","))
            if (name, s) not in {(r["task"], r["seed"]) for r in results}
        ]
        if not seeds:
            continue
        test = load_split(args.data_root / name, "test", task).examples
        manual_score = test_score(task, manual.template.text, manual.label_words, test)
        for seed in seeds:
            folder = split_folder(args.data_root / name, 16, seed)
            train = load_split(folder, "train", task).examples
            dev = load_split(folder, "dev", task).examples
            scorer = PromptModel.for_task(loaded.model, loaded.tokenizer, task, manual, kind=loaded.kind)
            found = search_label_words(scorer, task, train, dev, LabelSearchConfig(top_k=args.top_k))
            labels_score = test_score(task, manual.template.text, found.best.words, test)
            started = time.perf_counter()
            [best_template], _ = search_templates(
                loaded.model,
                loaded.tokenizer,
                loaded.kind,
                task,
                manual.label_words,
                train,
                dev,
                TemplateSearchConfig(top=1),
            )
            template_seconds = time.perf_counter() - started
            template_score = test_score(task, best_template.text, manual.label_words, test)
            results.append(
                {
                    "task": name,
                    "seed": seed,
                    "manual": manual_score,
                    "manual_label_words": manual.label_words,
                    "auto_labels": labels_score,
                    "label_words": found.best.words,
                    "label_search_seconds": found.seconds,
                    "auto_template": template_score,
                    "template": best_template.text,
                    "template_search_seconds": template_seconds,
                }
            )
            print(json.dumps(results[-1]), flush=True)
            atomic_write_json(saved, results)
            write_tables(results, args.out, args.model)
    print(write_tables(results, args.out, args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
