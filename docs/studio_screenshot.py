"""The README's picture of the studio: ``lmbff studio`` with the embedded default model on real data,
two templates compared, driven by Playwright in Debian's chromium.

    python docs/studio_screenshot.py --data-dir ../shared/data --task SST-2 --out docs/studio.png

It starts the real command (so it also checks that the command serves the page), waits for the
model, types a template and waits for the scores and the sample's accuracy before the picture.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
]


def wait_ready(url: str, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "api/status", timeout=5) as answer:
                status = json.load(answer)
            if status["state"] in ("ready", "failed"):
                return status
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} was not ready in {seconds} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--task", default="SST-2")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--out", type=Path, default=Path("docs/studio.png"))
    parser.add_argument("--template", default="{{ text_a }} All in all, the movie was {{ mask }}.")
    args = parser.parse_args(argv)
    url = f"http://127.0.0.1:{args.port}/"
    workspace = tempfile.mkdtemp(prefix="studio-")
    command = [
        sys.executable,
        "-m",
        "lmbff.cli",
        "studio",
        "--data-dir",
        args.data_dir,
        "--workspace",
        workspace,
    ]
    server = subprocess.Popen([*command, "--task", args.task, "--port", str(args.port)])
    try:
        status = wait_ready(url, 300)
        print(f"model {status['model']}: {status['state']} in {status['seconds']} s")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url + f"?task={args.task}")
            expect(page.locator(".example").first.locator(".bar-row").first).to_be_visible(timeout=120_000)
            page.locator("#compare").check()
            page.locator("#pane-B .template-text").fill(args.template)
            page.locator("#pane-B .template-name").fill("all_in_all")
            expect(
                page.locator(".example").first.locator(".reading[data-pane=B] .bar-row").first
            ).to_be_visible(timeout=120_000)
            expect(page.locator("#eval-table tbody tr")).to_have_count(2, timeout=300_000)
            page.locator("#disagreements").evaluate("d => d.open = true")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=False)
            print(page.locator("#eval-table").inner_text())
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
