"""The studio in a real headless browser: Debian's chromium driven by Playwright, against a server
started here on a free loopback port with a tiny random BERT. Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from lmbff.pretrained import LoadedModel
from lmbff.studio import Studio, create_app
from lmbff.studio.loading import ModelHolder
from lmbff.studio.workspace import Workspace
from prompts.lint import lint_file

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
# Without the background-networking flags chromium keeps dialling out, and this machine refuses it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make setup)")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium", allow_module_level=True)


@pytest.fixture
def workspace(tmp_path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    shutil.copy(REPO / "data" / "reviews" / "task.yaml", folder / "reviews.yaml")
    return folder


@pytest.fixture
def server(bert, workspace):
    import uvicorn

    model, tokenizer = bert
    holder = ModelHolder.preloaded(LoadedModel(model, tokenizer, "masked", "tiny-bert"))
    app = create_app(Studio(Workspace(workspace), holder, REPO / "data" / "reviews"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_type_see_examples_update_and_save(server, page, workspace):
    expect = sync_api.expect
    page.goto(server + "?task=reviews")
    editor = page.locator("#pane-A .template-text")
    expect(editor).to_have_value("{{ text_a }} It was {{ mask }}.")
    first = page.locator(".example").first
    expect(first.locator(".bar-row")).to_have_count(2)  # scored: one bar per label
    expect(page.locator("#eval-table tbody tr")).to_have_count(1)

    editor.fill("{{ text_a }}\nAll in all, it was {{ mask }}.")
    expect(first.locator(".prompt")).to_contain_text("all in all, it was")
    expect(first.locator(".bar-row")).to_have_count(2)
    expect(page.locator("#pane-A .issues li.clean")).to_have_count(1)

    editor.fill("{{ text_a }}\nAll in all, it was {{ mask }")  # a typo: lint points at line 2
    error = page.locator("#pane-A .issues li.error")
    expect(error).to_contain_text("line 2")
    expect(page.locator("#pane-A .gutter span.bad")).to_have_text("2")

    editor.fill("{{ text_a }}\nAll in all, it was {{ mask }}.")
    page.locator("#pane-A input[data-label=negative]").fill("bad, terrible")
    page.locator("#pane-A .template-name").fill("all_in_all")
    bars = first.locator(".bar-row")
    expect(bars.first).to_contain_text("bad / terrible")
    probabilities = [float(v) for v in first.locator(".bar-row .value").all_text_contents()]
    assert sum(probabilities) == pytest.approx(1.0, abs=2e-3)
    predicted = first.locator(".bar-row.predicted").get_attribute("data-label")
    gold = first.locator(".example-head").text_content().split("gold: ")[1]
    words = {"negative": "bad / terrible", "positive": "great"}[predicted]
    mark = "✓ right" if predicted == gold else "✗ wrong"
    expect(first.locator(".verdict")).to_have_text(f"{mark}: {predicted} ({words})")
    screenshot(page, "studio.png")

    page.locator("#pane-A .save").click()
    expect(page.locator("#pane-A .save-status")).to_contain_text("saved to")
    saved = yaml.safe_load((workspace / "reviews.yaml").read_text())
    assert saved["templates"]["all_in_all"]["text"] == "{{ text_a }}\nAll in all, it was {{ mask }}."
    assert saved["templates"]["all_in_all"]["label_words"] == {
        "negative": ["bad", "terrible"],
        "positive": "great",
    }
    assert [i for i in lint_file(workspace / "reviews.yaml")[0] if i.severity == "error"] == []


def test_compare_two_templates_and_resolve_a_save_conflict(server, page, workspace):
    expect = sync_api.expect
    page.goto(server + "?task=reviews")
    expect(page.locator(".example").first.locator(".bar-row")).to_have_count(2)
    page.locator("#compare").check()
    expect(page.locator("#pane-B")).to_be_visible()
    expect(page.locator("#pane-B .template-select")).to_have_value("review_verdict")
    first = page.locator(".example").first
    expect(first.locator(".reading")).to_have_count(2)
    expect(first.locator(".reading[data-pane=B] .bar-row")).to_have_count(2)
    expect(page.locator("#eval-table tbody tr")).to_have_count(2)
    expect(page.locator("#disagreements summary")).to_contain_text("A and B disagree on")
    screenshot(page, "studio-compare.png")

    # Someone else edits the file after the page read it: saving asks before doing anything.
    path = workspace / "reviews.yaml"
    path.write_text(path.read_text().replace("sentiment of short", "the sentiment of short"))
    page.locator("#pane-B .template-name").fill("verdict_copy")
    page.locator("#pane-B .save").click()
    expect(page.locator("#conflict")).to_be_visible()
    assert "verdict_copy" not in path.read_text()
    page.locator("#conflict-save").click()
    expect(page.locator("#pane-B .save-status")).to_contain_text("saved to")
    text = path.read_text()
    assert "the sentiment of short" in text and "verdict_copy:" in text
