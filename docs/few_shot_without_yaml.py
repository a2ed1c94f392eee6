"""Few-shot without a YAML file, in Python and on the command line (the README's example, run as shown).

    python docs/few_shot_without_yaml.py [--data-root ../shared/data] [--cli]

CLINC150's banking domain: 15 intents whose names become the label words (``report_fraud`` ->
"report fraud"), 8 training queries per intent (the first 8 of each in CLINC150's train set), 10 test
queries per intent (the first 10 in its test set). The embedded default model, the ``fast`` preset.
Prints zero-shot (calibrated) and few-shot accuracy on the 150 test queries, and the fit time; with
``--cli``, writes the rows as CSV files with their own column names and runs ``lmbff train --labels``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def banking(data_root: Path) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    data = json.loads((data_root / "CLINC150" / "data_full.json").read_text())
    intents = json.loads((data_root / "CLINC150" / "domains.json").read_text())["banking"]

    def first(rows, n):
        kept = {intent: [] for intent in intents}
        for text, intent in rows:
            if intent in kept and len(kept[intent]) < n:
                kept[intent].append((text, intent))
        return [row for intent in intents for row in kept[intent]]

    return intents, first(data["train"], 8), first(data["test"], 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cli", action="store_true", help="also run the command-line version")
    args = parser.parse_args()
    intents, train, test = banking(Path(args.data_root))

    # --- shown in the README ---------------------------------------------------------------------
    from lmbff import PromptClassifier

    template = "{{ text }} This request is about {{ mask }}."
    texts, labels = [t for t, _ in train], [i for _, i in train]
    test_texts, test_labels = [t for t, _ in test], [i for _, i in test]

    zero = PromptClassifier.zero_shot(labels=intents, template=template, verbose=False)  # words from names
    print("zero-shot, calibrated:", round(zero.score(test_texts, test_labels), 3))
    clf = PromptClassifier(labels=intents, template=template)  # the same task, tuned (fast preset)
    started = time.perf_counter()
    clf.fit(texts, labels)
    print(f"fit on {len(texts)} queries in {time.perf_counter() - started:.0f} s")
    print("few-shot:", round(clf.score(test_texts, test_labels), 3))
    print(clf.predict(["I think someone stole my card number", "when is my electricity bill due"]))

    if not args.cli:
        return
    with tempfile.TemporaryDirectory() as folder:
        for name, rows in (("train", train), ("test", test)):
            with open(Path(folder) / f"{name}.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["query", "intent"])  # the data's own column names
                writer.writerows(rows)
        command = [
            sys.executable, "-m", "lmbff.cli", "train", "--labels", ",".join(intents), "--template", template,
            "--data-file", f"{folder}/train.csv", "--test-file", f"{folder}/test.csv",
            "--text-column", "query", "--label-column", "intent", "--out", f"{folder}/run",
        ]  # fmt: skip
        print("$ lmbff " + " ".join(command[3:]).replace(folder, "data"), flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
