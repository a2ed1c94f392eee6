"""How responsive the studio is while someone types: the embedded default model, a real task's data,
and a burst of edits faster than the model can score them.

    python benchmarks/studio_latency.py --data-dir ../shared/data --task SST-2

Edits come ``--gap`` seconds apart (past the page's 250 ms debounce, so each one is sent). Two ways
of answering the same burst are compared in one run:
- studio: one page; each edit supersedes the one before (the page's client id and revision), so older
  edits stop at the next batch boundary;
- baseline: every edit is scored to the end, first come first served (distinct client ids: nothing
  supersedes anything), as a server without cancellation would.
Reported: time to the rendered prompts (tokenizer only), time from the last keystroke to its scores,
batches scored in all, and the wait of a preview that arrives while a dev sample is being scored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lmbff.cli.common import non_negative_float, positive_int
from lmbff.memory import PeakMemory
from lmbff.pretrained import DEFAULT_MODEL
from lmbff.studio import Studio, create_app
from lmbff.studio.loading import ModelHolder
from lmbff.studio.workspace import Workspace

EDITS = [
    "{{ text_a }} It was {{ mask }}.",
    "{{ text_a }} Overall it was {{ mask }}.",
    "{{ text_a }} Overall, it was {{ mask }}.",
    "{{ text_a }} All in all, it was {{ mask }}.",
    "{{ text_a }} All in all, the film was {{ mask }}.",
    "{{ text_a }} All in all, the movie was {{ mask }}.",
    "{{ text_a }} In short, the movie was {{ mask }}.",
    "{{ text_a }} In short, this movie is {{ mask }}.",
]


async def burst(client: httpx.AsyncClient, body: dict, gap: float, one_page: bool, counter: list) -> dict:
    """Send the edits ``gap`` seconds apart; each renders, then scores (as the page does)."""
    render_ms: list[float] = []
    finished: dict[int, float] = {}

    async def edit(k: int, template: str) -> None:
        page = "page" if one_page else f"page-{k}"
        request = {**body, "template": template, "client": page, "revision": 2 * k}
        start = time.perf_counter()
        rendered = await client.post("/api/render", json=request)
        render_ms.append(1000 * (time.perf_counter() - start))
        assert rendered.status_code == 200, rendered.text
        scored = await client.post("/api/score", json={**request, "revision": 2 * k + 1})
        if scored.status_code == 200:
            finished[k] = time.perf_counter()
        else:
            assert scored.json()["code"] == "superseded", scored.text

    counter.clear()
    tasks = []
    sent_last = 0.0
    for k, template in enumerate(EDITS):
        if k == len(EDITS) - 1:
            sent_last = time.perf_counter()
        tasks.append(asyncio.create_task(edit(k, template)))
        await asyncio.sleep(gap)
    await asyncio.gather(*tasks)
    return {
        "render_ms_median": statistics.median(render_ms),
        "last_edit_to_scores_s": finished[len(EDITS) - 1] - sent_last,
        "edits_scored": len(finished),
        "batches": len(counter),
    }


async def preview_during_evaluation(client: httpx.AsyncClient, body: dict, sample: int) -> dict:
    evaluation = asyncio.create_task(
        client.post("/api/evaluate", json={**body, "prompts": [body], "sample": sample, "client": "page-e"})
    )
    await asyncio.sleep(2.0)
    start = time.perf_counter()
    scored = await client.post("/api/score", json={**body, "client": "page-p", "revision": 1})
    wait = time.perf_counter() - start
    evaluated = await evaluation
    result = [json.loads(line) for line in evaluated.text.splitlines()][-1]
    return {"preview_wait_s": wait, "preview_status": scored.status_code, "sample_accuracy": result}


async def main_async(args) -> int:
    memory = PeakMemory()
    holder = ModelHolder(args.model)
    loading = time.perf_counter()
    holder.start().join()
    if holder.state != "ready":
        print(holder.error, file=sys.stderr)
        return 1
    load_s = time.perf_counter() - loading
    studio = Studio(Workspace(tempfile.mkdtemp()), holder, args.data_dir)
    counter: list = []
    original = studio.lock.run

    async def counted(function, *a, ticket=None):
        def scored(*b):  # counts the batches actually run, not those dropped at the lock
            counter.append(1)
            return function(*b)

        return await original(scored, *a, ticket=ticket)

    studio.lock.run = counted
    app = create_app(studio)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio", timeout=600) as client:
        listing = (await client.get("/api/tasks")).json()["files"]
        ref = next(f for f in listing if f["task"] == args.task)
        task = (await client.get("/api/task", params={"source": ref["source"], "name": ref["name"]})).json()
        body = {
            "file": task["file"],
            "name": "draft",
            "label_words": task["templates"][0]["label_words"],
            "template": EDITS[0],
            "data": args.data_file or task["data"]["default"],
            "n": args.n,
        }
        await client.post("/api/score", json={**body, "client": "warm-up"})  # first-call costs out
        rows = {}
        for name, one_page in (("studio", True), ("baseline", False)):
            rows[name] = await burst(client, body, args.gap, one_page, counter)
        during = await preview_during_evaluation(client, body, args.sample)
    studio_row, base = rows["studio"], rows["baseline"]
    print(f"model {args.model} loaded in {load_s:.1f} s; task {args.task}, {args.n} preview examples, ")
    print(f"{len(EDITS)} edits {1000 * args.gap:.0f} ms apart\n")
    print("| server | render (median ms) | last keystroke -> its scores (s) | edits scored | batches |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['render_ms_median']:.0f} | {row['last_edit_to_scores_s']:.2f} | "
            f"{row['edits_scored']} / {len(EDITS)} | {row['batches']} |"
        )
    speedup = base["last_edit_to_scores_s"] / studio_row["last_edit_to_scores_s"]
    print(f"\nlast edit answered {speedup:.1f}x sooner than the baseline")
    accuracy = during["sample_accuracy"]["prompts"][0]
    raw, calibrated = (100 * accuracy[k]["accuracy"] for k in ("raw", "calibrated"))
    print(
        f"a preview arriving while a {args.sample}-example sample is scored waited "
        f"{during['preview_wait_s']:.2f} s (status {during['preview_status']}); the sample's zero-shot "
        f"accuracy {raw:.1f}, calibrated {calibrated:.1f}"
    )
    print(f"peak memory {memory.peak_mb():.0f} MB")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--task", default="SST-2")
    parser.add_argument("--data-file", default=None, help="default: the task's dev split, else train")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--n", type=positive_int, default=6, help="preview examples, as the page shows")
    parser.add_argument(
        "--gap",
        type=non_negative_float,
        default=0.3,
        help="seconds between edits that get past the page's 250 ms debounce",
    )
    parser.add_argument("--sample", type=positive_int, default=64)
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"no data at {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
