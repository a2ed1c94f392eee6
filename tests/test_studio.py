"""The studio's API on a tiny random BERT (real WordPiece vocabulary) and the shipped reviews data."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from lmbff.pretrained import LoadedModel
from lmbff.studio import Studio, create_app
from lmbff.studio.loading import ModelHolder
from lmbff.studio.scoring import Revisions, Superseded
from lmbff.studio.workspace import Workspace
from prompts.lint import lint_file

REPO = Path(__file__).resolve().parent.parent
REVIEWS = REPO / "data" / "reviews"
WORDS = {"negative": ["terrible"], "positive": ["great"]}


@pytest.fixture
def workspace(tmp_path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    shutil.copy(REVIEWS / "task.yaml", folder / "reviews.yaml")
    return folder


@pytest.fixture
def studio(bert, workspace) -> Studio:
    model, tokenizer = bert
    holder = ModelHolder.preloaded(LoadedModel(model, tokenizer, "masked", "tiny-bert"))
    return Studio(Workspace(workspace), holder, REVIEWS)


@pytest.fixture
def client(studio) -> TestClient:
    return TestClient(create_app(studio), raise_server_exceptions=False)


REVIEWS_FILE = {"source": "workspace", "name": "reviews.yaml"}


def draft(**changes) -> dict:
    body = {
        "file": REVIEWS_FILE,
        "name": "it_was",
        "template": "{{ text_a }} It was {{ mask }}.",
        "label_words": WORDS,
        "data": "train.tsv",
        "n": 4,
    }
    return {**body, **changes}


def test_lists_workspace_and_library_tasks(client):
    files = client.get("/api/tasks").json()["files"]
    assert {"source": "workspace", "name": "reviews.yaml", "task": "reviews", "shadowed": False} in files
    library = {f["task"] for f in files if f["source"] == "library"}
    assert {"SST-2", "TREC", "MNLI"} <= library and "events" not in library


def test_task_detail_has_templates_data_and_version(client, workspace):
    answer = client.get("/api/task", params=REVIEWS_FILE).json()
    assert answer["task"]["labels"] == ["negative", "positive"]
    assert [t["name"] for t in answer["templates"]] == ["it_was", "review_verdict"]
    assert {t["verbalizer"] for t in answer["templates"]} == {"words"}  # issue 36: shown per template
    assert answer["data"]["files"] == ["test.tsv", "train.tsv"] and answer["data"]["default"] == "train.tsv"
    assert answer["text"] == (workspace / "reviews.yaml").read_text()


def test_render_shows_prompts_as_the_model_reads_them(client):
    answer = client.post("/api/render", json=draft()).json()
    assert answer["ok"] and answer["issues"] == []
    assert answer["total"] == 32 and len(answer["rows"]) == 4
    first = answer["rows"][0]
    assert first["source"] == "train.tsv:2" and first["gold"] == "positive"
    # bert-base-uncased lower-cases; the slot sits between "it was" and "."
    assert first["before"].startswith("setup took five minutes") and first["before"].endswith("it was")
    assert first["after"] == "." and first["truncated"] == {}
    assert answer["slot_words"] == ["terrible", "great"]


def test_render_makes_truncation_visible(client):
    answer = client.post("/api/render", json=draft(max_length=16)).json()
    cut = [row for row in answer["rows"] if row["truncated"]]
    assert cut and all(row["tokens"] <= 16 for row in answer["rows"])
    assert all(set(row["truncated"]) == {"text_a"} and row["truncated"]["text_a"] > 0 for row in cut)


def test_lint_errors_point_at_the_editor_line(client):
    broken = client.post("/api/render", json=draft(template="{{ text_a }}\nIt was {{ mask }")).json()
    assert not broken["ok"] and broken["rows"] == []
    (issue,) = broken["issues"]
    assert issue["severity"] == "error" and issue["line"] == 2 and "syntax error" in issue["message"]

    undeclared = client.post(
        "/api/render", json=draft(template="{{ text_a }}\n{{ text_b }} {{ mask }}")
    ).json()
    assert [
        (i["line"], "text_b" in i["message"]) for i in undeclared["issues"] if i["severity"] == "error"
    ] == [(2, True)]
    no_word = client.post("/api/render", json=draft(label_words={"negative": ["terrible"]})).json()
    assert any("'positive' has no label word" in i["message"] for i in no_word["issues"])


def test_sandbox_refuses_python_internals(client):
    answer = client.post(
        "/api/render", json=draft(template="{{ text_a.__class__.__mro__ }} {{ mask }}")
    ).json()
    assert not answer["ok"]
    assert any("sandbox" in i["message"] or "unsafe" in i["message"] for i in answer["issues"])


def test_score_gives_probabilities_predictions_and_verdicts(client, studio):
    answer = client.post("/api/score", json=draft()).json()
    rows = answer["rows"]
    assert len(rows) == 4
    for row in rows:
        assert set(row["probabilities"]) == {"negative", "positive"}
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert row["prediction"] == max(row["probabilities"], key=row["probabilities"].get)
    golds = [r["gold"] for r in client.post("/api/render", json=draft()).json()["rows"]]
    assert [r["correct"] for r in rows] == [r["prediction"] == g for r, g in zip(rows, golds, strict=True)]


def test_evaluate_streams_progress_then_compares_two_templates(client):
    second = {"name": "b", "template": "{{ text_a }} All in all, {{ mask }}.", "label_words": WORDS}
    body = draft(prompts=[draft(), second], sample=20)
    lines = [json.loads(line) for line in client.post("/api/evaluate", json=body).text.splitlines()]
    progress = [line for line in lines if line["type"] == "progress"]
    assert [p["done"] for p in progress] == [8, 16, 20, 28, 36, 40] and progress[-1]["total"] == 40
    result = lines[-1]
    assert result["type"] == "result" and result["sample"] == 20
    for metrics in result["prompts"]:
        assert metrics["labelled"] == 20 and 0 <= metrics["raw"]["accuracy"] <= 1
        assert 0 <= metrics["calibrated"]["accuracy"] <= 1 and len(metrics["content_free"]) == 2
    for row in result["disagreements"]:
        assert row["a"] != row["b"] and row["a_correct"] != row["b_correct"]


def test_evaluate_of_one_template_matches_score(client):
    """The sample's accuracy is the one the per-example predictions give."""
    sample = draft(prompts=[draft()], sample=32, seed=3)
    result = [json.loads(x) for x in client.post("/api/evaluate", json=sample).text.splitlines()][-1]
    scored = client.post("/api/score", json=draft(n=32)).json()["rows"]
    right = sum(r["correct"] for r in scored) / 32  # the sample of 32 is the whole file, shuffled
    assert result["prompts"][0]["raw"]["accuracy"] == pytest.approx(right)
    assert "disagreements" not in result


def test_save_writes_a_template_that_lints_clean_and_keeps_the_rest(client, workspace):
    version = client.get("/api/task", params=REVIEWS_FILE).json()["version"]
    text = "Review: {{ text_a }}\nIn short, {{ mask }}."
    answer = client.post(
        "/api/save",
        json=draft(
            name="in_short",
            template=text,
            base_version=version,
            make_default=True,
            label_words={"negative": ["bad", "awful"], "positive": ["good"]},
        ),
    )
    assert answer.status_code == 200, answer.text
    path = workspace / "reviews.yaml"
    saved = yaml.safe_load(path.read_text())
    assert saved["templates"]["in_short"] == {
        "text": text,
        "label_words": {"negative": ["bad", "awful"], "positive": "good"},
        "reference": "written in lmbff studio",
    }
    assert saved["default_template"] == "in_short"
    assert set(saved["templates"]) == {"it_was", "review_verdict", "in_short"}
    assert "# LM-BFF's sentiment template" in path.read_text()  # comments survive
    assert [i for i in lint_file(path)[0] if i.severity == "error"] == []
    assert answer.json()["version"] == client.get("/api/task", params=REVIEWS_FILE).json()["version"]


def test_save_detects_a_file_changed_on_disk(client, workspace):
    version = client.get("/api/task", params=REVIEWS_FILE).json()["version"]
    path = workspace / "reviews.yaml"
    edited = path.read_text().replace("sentiment of short", "the sentiment of short")
    path.write_text(edited)  # another user's edit
    conflict = client.post("/api/save", json=draft(name="mine", base_version=version))
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"
    assert path.read_text() == edited  # nothing written
    again = client.post("/api/save", json=draft(name="mine", base_version=conflict.json()["current_version"]))
    assert again.status_code == 200
    assert "the sentiment of short" in path.read_text() and "mine:" in path.read_text()


def test_save_from_the_library_creates_a_workspace_copy(client, workspace):
    sst2 = {"source": "library", "name": "SST-2.yaml"}
    body = draft(file=sst2, name="mine", label_words={"0": ["bad"], "1": ["good"]}, base_version=None)
    answer = client.post("/api/save", json=body)
    assert answer.status_code == 200 and answer.json()["file"] == {
        "source": "workspace",
        "name": "SST-2.yaml",
    }
    saved = yaml.safe_load((workspace / "SST-2.yaml").read_text())
    assert {"lmbff", "mine"} <= set(saved["templates"])
    assert (REPO / "templates" / "SST-2.yaml").read_text().count("mine:") == 0  # the library is untouched
    # a second page that also started from the library must not overwrite the copy silently
    assert client.post("/api/save", json=body).status_code == 409


def test_save_refuses_templates_with_lint_errors(client, workspace):
    before = (workspace / "reviews.yaml").read_text()
    version = client.get("/api/task", params=REVIEWS_FILE).json()["version"]
    answer = client.post("/api/save", json=draft(template="{{ text_b }} {{ mask }}", base_version=version))
    assert answer.status_code == 422 and answer.json()["code"] == "lint"
    assert any("text_b" in issue for issue in answer.json()["issues"])
    assert (workspace / "reviews.yaml").read_text() == before


@pytest.mark.parametrize(
    "name", ["../reviews.yaml", "/etc/passwd", "a/../../x.yaml", "..", "sub/x.yaml", "x.txt", "..\\x.yaml"]
)
def test_paths_outside_the_workspace_are_refused(client, name):
    read = client.get("/api/task", params={"source": "workspace", "name": name})
    assert read.status_code in (400, 403) and "refused" in read.json()["error"]
    save = client.post("/api/save", json=draft(file={"source": "workspace", "name": name}, base_version=None))
    assert save.status_code in (400, 403)


def test_symlink_out_of_the_workspace_is_refused(client, workspace, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text((REVIEWS / "task.yaml").read_text())
    (workspace / "link.yaml").symlink_to(outside)
    assert client.get("/api/task", params={"source": "workspace", "name": "link.yaml"}).status_code == 403
    assert "link.yaml" not in [f["name"] for f in client.get("/api/tasks").json()["files"]]


def test_data_files_outside_the_data_folder_are_refused(client):
    answer = client.post("/api/render", json=draft(data="../events/fixture.jsonl"))
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"


def test_oversized_and_malformed_requests_get_json_errors(client):
    as_json = {"Content-Type": "application/json"}
    big = client.post("/api/render", content=b"{" + b" " * 300_000 + b"}", headers=as_json)
    assert big.status_code == 413 and big.json()["code"] == "too_large"
    assert client.post("/api/render", content=b"not json", headers=as_json).status_code == 400
    wrong = client.post("/api/render", json=draft(label_words=["terrible"]))
    assert wrong.status_code == 400 and "label_words" in wrong.json()["error"]
    assert client.post("/api/render", json=draft(n=1000)).json()["error"].startswith("field 'n'")


def test_requests_a_foreign_page_could_send_are_refused(studio):
    """A cross-site form or fetch can POST text/plain without a preflight; DNS rebinding sends a
    foreign Host header. Neither reaches the workspace."""
    client = TestClient(create_app(studio, ["127.0.0.1", "localhost"]), base_url="http://127.0.0.1:8765")
    body = json.dumps(draft(name="planted", base_version=None)).encode()
    plain = client.post("/api/save", content=body, headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and plain.json()["code"] == "media_type"
    rebound = TestClient(create_app(studio, ["127.0.0.1", "localhost"]), base_url="http://evil.example")
    assert rebound.get("/api/tasks").status_code == 400
    assert "planted" not in (studio.workspace.root / "reviews.yaml").read_text()


def test_unexpected_errors_never_show_a_stack_trace(client, studio, monkeypatch):
    monkeypatch.setattr(studio.workspace, "task_files", lambda: 1 / 0)
    answer = client.get("/api/tasks")
    assert answer.status_code == 500 and answer.json()["code"] == "internal"
    assert "Traceback" not in answer.text and "ZeroDivisionError" in answer.text


def test_scoring_waits_for_the_model_while_rendering_does_not(bert, workspace):
    _, tokenizer = bert
    holder = ModelHolder("tiny-bert", "masked")
    holder.state, holder.tokenizer = "loading", tokenizer  # the tokenizer is in, the weights are not
    client = TestClient(
        create_app(Studio(Workspace(workspace), holder, REVIEWS)), raise_server_exceptions=False
    )
    assert client.post("/api/render", json=draft()).json()["ok"]
    waiting = client.post("/api/score", json=draft())
    assert waiting.status_code == 503 and waiting.json()["code"] == "loading"
    assert client.get("/api/status").json()["state"] == "loading"


def test_model_loads_in_the_background_and_reports_failure(bert_dir):
    holder = ModelHolder(str(bert_dir))
    holder.start().join(timeout=120)
    assert holder.status()["state"] == "ready" and holder.require().kind == "masked"
    missing = ModelHolder("/no/such/model")
    missing.start().join(timeout=30)
    assert missing.status()["state"] == "failed" and "does not exist" in missing.status()["error"]


def test_a_newer_edit_supersedes_an_older_request():
    revisions = Revisions()
    old = revisions.claim("page", "score-A", 1)
    old.check()
    revisions.claim("page", "score-A", 2)
    with pytest.raises(Superseded):
        old.check()
    with pytest.raises(Superseded):
        revisions.claim("page", "score-A", 1)  # arrived late
    revisions.claim("other-page", "score-A", 1).check()  # pages do not supersede each other


def test_superseded_evaluation_stops_between_batches(client, studio):
    """A later request on the same channel ends an evaluation that is still scoring."""
    body = draft(prompts=[draft()], sample=32, client="page", revision=1)
    seen = []
    original = studio.lock.run

    async def slow_run(function, *args, ticket=None):
        seen.append(len(seen))
        if len(seen) == 2:  # while the second batch is due, the page sends a newer edit
            studio.revisions.claim("page", "evaluate", 2)
            return await original(function, *args)  # the batch already under way finishes
        return await original(function, *args, ticket=ticket)

    studio.lock.run = slow_run
    lines = [json.loads(x) for x in client.post("/api/evaluate", json=body).text.splitlines()]
    assert lines[-1] == {"type": "superseded"}
    assert len(seen) == 2  # no batch was scored after the newer edit arrived


def test_a_request_superseded_while_waiting_for_the_model_is_dropped():
    import anyio

    from lmbff.studio.scoring import ModelLock

    async def scenario() -> tuple[list, list]:
        lock, revisions, ran, outcome = ModelLock(), Revisions(), [], []
        waiting = revisions.claim("page", "score-A", 1)

        async def request():
            try:
                await lock.run(ran.append, "batch", ticket=waiting)
                outcome.append("ran")
            except Superseded:
                outcome.append("superseded")

        # the model is busy with another batch while the request waits, and the page sends a newer edit
        async with anyio.create_task_group() as group, lock._lock:
            group.start_soon(request)
            await anyio.sleep(0.05)
            revisions.claim("page", "score-A", 2)
        return ran, outcome

    assert anyio.run(scenario) == ([], ["superseded"])


@pytest.mark.slow
def test_the_studio_command_serves_the_page_and_loads_the_model(bert_dir, workspace):
    """`lmbff studio` end to end: prints its URL, serves the page at once, loads the model behind it."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "lmbff.cli", "studio", "--model", str(bert_dir), "--port", str(port)]
    command += ["--workspace", str(workspace), "--data-dir", str(REVIEWS), "--task", "reviews"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert f"http://127.0.0.1:{port}/?task=reviews" in server.stdout.readline()
        status, deadline = {}, time.monotonic() + 120
        while status.get("state") != "ready" and time.monotonic() < deadline:
            time.sleep(0.3)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as answer:
                    status = json.load(answer)
            except OSError:
                continue
        assert status["state"] == "ready" and status["kind"] == "masked"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            assert "<title>lmbff studio</title>" in answer.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/studio.js", timeout=5) as answer:
            assert answer.status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_hostile_templates_and_deep_json_get_clean_answers(client):
    as_json = {"Content-Type": "application/json"}
    deep = client.post("/api/render", content=b"[" * 100_000 + b"]" * 100_000, headers=as_json)
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]
    nested = b'{"a":' * 20_000 + b"1" + b"}" * 20_000
    answer = client.post("/api/render", content=nested, headers=as_json)
    assert answer.status_code == 400 and "nested too deeply" in answer.json()["error"]
    runaway = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ mask }}"
    for template in (runaway, "{{ 10**100000 }} {{ mask }}", "{{ (text_a ~ 1) * 10**9 }} {{ mask }}"):
        reply = client.post("/api/render", json=draft(template=template))
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert not body["ok"] and any("render budget" in i["message"] for i in body["issues"])


@pytest.mark.slow
def test_the_server_keeps_answering_during_runaway_renders_and_stops_on_sigterm(bert_dir, workspace):
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "lmbff.cli", "studio", "--model", str(bert_dir), "--port", str(port)]
    command += ["--workspace", str(workspace), "--data-dir", str(REVIEWS)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        server.stdout.readline()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/api/status", timeout=5).close()
                break
            except OSError:
                time.sleep(0.2)
        slow = (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}{{ mask }}"
        )
        body = json.dumps(draft(template=slow)).encode()

        def hostile() -> None:
            request = urllib.request.Request(
                url + "/api/render", body, {"Content-Type": "application/json"}, method="POST"
            )
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=60).close()

        workers = [threading.Thread(target=hostile, daemon=True) for _ in range(4)]
        for worker in workers:
            worker.start()
        waits = []
        for _ in range(10):
            started = time.monotonic()
            with urllib.request.urlopen(url + "/api/status", timeout=10) as answer:
                assert answer.status == 200
            waits.append(time.monotonic() - started)
            time.sleep(0.1)
        assert max(waits) < 1.0, waits
        workers[0].join(timeout=30)
        for _ in range(2):  # more runaway renders in flight, then SIGTERM
            threading.Thread(target=hostile, daemon=True).start()
        time.sleep(0.3)
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        assert time.monotonic() - signalled < 2.0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_a_client_that_leaves_mid_request_is_no_error_in_the_log(studio, caplog):
    """About 1,300 disconnects left 2,600 tracebacks in the studio's log (issue 35)."""
    import anyio

    app = create_app(studio)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/render", "raw_path": b"/api/render", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
        "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip
    sent = []

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def run():
        for _ in range(20):
            await app(scope, receive, send)

    with caplog.at_level("DEBUG"):
        anyio.run(run)  # raises if the disconnect escaped to the server
    assert not [r for r in caplog.records if r.levelno >= 30]
    assert sent[0]["status"] == 499
