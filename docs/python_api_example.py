"""The README's Python section, run as it is shown there (its output is pasted into the README).

    python docs/python_api_example.py [--agnews ../shared/data/AGNews/test.tsv]

On the embedded default model (Gemma 3 270M): a PromptClassifier fitted on the demo reviews read
with pandas, scored on the held-out reviews as a datasets.Dataset, saved and reloaded; then the
YAML-free zero-shot one-liner on AG News headlines (the first 400 of the test file, when given).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agnews", default=str(REPO.parent / "shared" / "data" / "AGNews" / "test.tsv"))
    parser.add_argument("--agnews-limit", type=int, default=400)
    args = parser.parse_args()
    os.chdir(REPO)  # the paths below are the README's, relative to the repository

    # --- shown in the README ---------------------------------------------------------------------
    import datasets
    import pandas as pd

    from lmbff import PromptClassifier

    read = dict(sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)
    train = pd.read_csv("data/reviews/train.tsv", **read)  # columns: text_a, label
    test = datasets.Dataset.from_pandas(pd.read_csv("data/reviews/test.tsv", **read))

    clf = PromptClassifier("data/reviews/task.yaml")  # the 'fast' preset: LoRA, 1e-3, 32 steps
    started = time.perf_counter()
    clf.fit(train[["text_a"]], train["label"])
    print(f"fit in {time.perf_counter() - started:.0f} s")
    print(clf)
    print("test accuracy:", round(clf.score(test, test["label"]), 3))
    print(clf.predict(["A joy from start to finish.", "Two hours I will never get back."]))
    with tempfile.TemporaryDirectory() as folder:
        clf.save(folder)  # self-contained: no task file is read again
        again = PromptClassifier.load(folder)
        print("reloaded, same scores:", (again.predict_proba(test) == clf.predict_proba(test)).all())

    # --- the zero-shot one-liner ----------------------------------------------------------------------
    news = PromptClassifier.zero_shot(
        labels=["World", "Sports", "Business", "Sci/Tech"],
        template="{{ text }} Topic: {{ mask }}.",
        label_words=["world", "sports", "business", "science"],
    )
    print(news.predict(["The central bank raised interest rates again.", "A late goal won the cup final."]))
    if Path(args.agnews).exists():
        agnews = pd.read_csv(args.agnews, **read).head(args.agnews_limit)
        calibrated = news.score(agnews["text_a"], agnews["label"])
        news.set_params(calibrate=False).fit(None, agnews["label"])
        raw = news.score(agnews["text_a"], agnews["label"])
        print(f"AG News, first {len(agnews)} test headlines: calibrated {calibrated:.3f}, raw {raw:.3f}")


if __name__ == "__main__":
    main()
