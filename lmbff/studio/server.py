"""The studio's web server: a small JSON API over the workspace, the data and the one model, and the
page that uses it (static files shipped in the package, no build step).

Every error is a JSON object ``{"error": message, "code": code}`` with a fitting status; a stack trace
goes to the server log, never to the page.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from prompts.library import TaskFile, parse_task_text
from prompts.template import TemplateError

from ..data import DataError, Example, gold_text
from ..evaluate import apply_calibration
from ..options import field_problem, option
from ..preview import render
from .datafiles import ExampleCache, data_folder, default_data_file, resolve_data_file
from .drafts import Draft, make_draft, scorer_for
from .loading import ModelHolder, ModelNotReady
from .scoring import (
    BatchScoring,
    ModelLock,
    Revisions,
    Superseded,
    content_free,
    correct,
    label_probabilities,
    log_scores,
    predictions,
    sample_metrics,
)
from .workspace import TaskFileRef, Workspace, WorkspaceError

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 256 * 1024
MAX_PREVIEW = 32
MAX_SAMPLE = 2000


@dataclass
class RequestNumbers:
    """The numbers a studio request may carry, each with its bounds declared once (:mod:`lmbff.options`,
    the validation path of every config and command-line option)."""

    start: int = option(0, help="the first example previewed", low=0, high=10**9)
    n: int = option(8, help="examples previewed", low=1, high=MAX_PREVIEW)
    max_length: int = option(128, help="token budget per prompt", low=16, high=4096)
    revision: int = option(0, help="the page's revision counter", low=0, high=2**53)
    sample: int = option(64, help="examples scored for accuracy", low=1, high=MAX_SAMPLE)
    seed: int = option(0, help="seed of the sample", low=0, high=2**31)


log = logging.getLogger("lmbff.studio")


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str = "bad_request", **details):
        super().__init__(message)
        self.status, self.message, self.code, self.details = status, message, code, details


@dataclass
class Studio:
    """What the server holds: the workspace, the data folder and the model, shared by all pages."""

    workspace: Workspace
    model: ModelHolder
    data_dir: Path | None = None
    max_length: int = 256
    examples: ExampleCache = field(default_factory=ExampleCache)
    revisions: Revisions = field(default_factory=Revisions)
    lock: ModelLock = field(default_factory=ModelLock)

    # ---- reading what a request names ---------------------------------------------------------
    def task_file(self, ref: TaskFileRef) -> tuple[TaskFile, str, str]:
        text, version = self.workspace.read(ref)
        parsed, errors = parse_task_text(text, ref.name)
        if parsed is None:
            raise ApiError(422, f"{ref.name} does not parse: {errors[0]}", "bad_task_file")
        # Relative data folders are looked up beside the file itself.
        return replace(parsed, path=str(self.workspace.path_of(ref))), text, version

    def read_examples(self, task_file: TaskFile, name: str) -> tuple[list[Example], int]:
        folder, _ = data_folder(task_file, self.data_dir)
        if folder is None:
            raise ApiError(404, f"no data for task {task_file.task.name}: start the studio with --data-dir")
        report = self.examples.read(resolve_data_file(folder, name), task_file)
        return report.examples, len(report.skipped)

    def preview_examples(self, task_file: TaskFile, body: dict) -> tuple[list[Example], list[Example], int]:
        """The examples the page shows (``n`` from ``start``), all of the file's, and the rows skipped."""
        examples, skipped = self.read_examples(task_file, _string(body, "data"))
        start = _int(body, "start")
        return examples[start : start + _int(body, "n")], examples, skipped

    def draft(self, body: dict, task_file: TaskFile, prompt: dict | None = None) -> Draft:
        prompt = prompt or body
        return make_draft(
            task_file,
            _string(prompt, "name", default="draft"),
            _string(prompt, "template"),
            _label_words(prompt),
            self.model.tokenizer,
            self.model.kind or "masked",
        )

    def scorer(self, draft: Draft, body: dict, with_model: bool):
        if not draft.ok:
            raise ApiError(422, "the template has lint errors", "lint", issues=draft.issue_dicts())
        if self.model.tokenizer is None:
            raise ModelNotReady("the tokenizer is loading")
        lm = self.model.require().model if with_model else None  # rendering needs the tokenizer only
        length = _int(body, "max_length", self.max_length)
        try:
            return scorer_for(draft, lm, self.model.tokenizer, self.model.kind, length)
        except (TemplateError, ValueError) as exc:
            raise ApiError(422, str(exc), "template") from None


async def _off_loop(function, *args):
    """Run synchronous work (parsing, linting, rendering user templates) in a worker thread, so the event
    loop keeps answering (``/api/status`` included) while it runs; renders are bounded by their budget."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args))


# ---- request bodies -------------------------------------------------------------------------------
async def _body(request: Request) -> dict:
    # A cross-site page can send a "simple" POST (text/plain) to localhost without asking; requiring
    # JSON makes the browser ask first (CORS preflight), and this server answers no such question.
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "send the body as JSON (Content-Type: application/json)", "media_type")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes", "too_large")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes", "too_large")
    try:
        body = json.loads(data or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _string(body: dict, key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise ApiError(400, f"field '{key}': expected a string, got {type(value).__name__}")
    return value


def _int(body: dict, key: str, default: int | None = None) -> int:
    """A number of the request (:class:`RequestNumbers`), or ``default`` (its declared default when None)."""
    value = body.get(key, getattr(RequestNumbers, key) if default is None else default)
    problem = field_problem(RequestNumbers, key, value)
    if problem:
        raise ApiError(400, f"field '{key}': {problem.replace('must be', 'expected')}, got {value!r}")
    return value


def _label_words(body: dict) -> dict[str, list[str]]:
    words = body.get("label_words")
    if not isinstance(words, dict) or not all(
        isinstance(v, list) and all(isinstance(w, str) for w in v) for v in words.values()
    ):
        raise ApiError(400, "field 'label_words': expected an object mapping each label to a list of words")
    return {str(label): [w.strip() for w in group if w.strip()] for label, group in words.items()}


def _file_ref(body: dict, key: str = "file") -> TaskFileRef:
    ref = body.get(key)
    if not isinstance(ref, dict):
        raise ApiError(400, f"field '{key}': expected {{source, name}}")
    return TaskFileRef(_string(ref, "source"), _string(ref, "name"))


def _ticket(studio: Studio, body: dict, channel: str):
    client = _string(body, "client", default="anonymous")
    return studio.revisions.claim(client, channel, _int(body, "revision"))


# ---- endpoints ------------------------------------------------------------------------------------
async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html")


async def status(request: Request) -> Response:
    studio: Studio = request.app.state.studio
    return JSONResponse(
        {
            **studio.model.status(),
            "workspace": str(studio.workspace.root),
            "data_dir": str(studio.data_dir) if studio.data_dir else None,
            "max_length": studio.max_length,
            "limits": {"preview": MAX_PREVIEW, "sample": MAX_SAMPLE, "body_bytes": MAX_BODY_BYTES},
        }
    )


async def tasks(request: Request) -> Response:
    return JSONResponse({"files": request.app.state.studio.workspace.task_files()})


async def task(request: Request) -> Response:
    studio: Studio = request.app.state.studio
    ref = TaskFileRef(request.query_params.get("source", ""), request.query_params.get("name", ""))
    return await _off_loop(_task, studio, ref)


def _task(studio: Studio, ref: TaskFileRef) -> Response:
    task_file, text, version = studio.task_file(ref)
    folder, files = data_folder(task_file, studio.data_dir)
    t = task_file.task
    return JSONResponse(
        {
            "file": ref.to_dict(),
            "version": version,
            "text": text,
            "task": {
                "name": t.name,
                "fields": list(t.fields),
                "labels": list(t.labels),
                "label_names": t.label_names,
                "metric": t.metric,
                "type": t.type,
                "description": t.description,
            },
            "default_template": task_file.default_template,
            "templates": [
                {
                    "name": p.name,
                    "text": p.template.text,
                    "label_words": p.label_words,
                    "verbalizer": p.verbalizer_kind,
                    "reference": p.reference,
                }
                for p in task_file.prompts.values()
            ],
            "data": {
                "folder": str(folder) if folder else None,
                "files": files,
                "default": default_data_file(files),
            },
        }
    )


async def render_prompts(request: Request) -> Response:
    """Lint and the rendered prompts of the preview examples: the tokenizer only, answered at once."""
    studio: Studio = request.app.state.studio
    body = await _body(request)
    return await _off_loop(_render_prompts, studio, body)


def _render_prompts(studio: Studio, body: dict) -> Response:
    ticket = _ticket(studio, body, "render-" + _string(body, "pane", "A"))
    task_file, _, _ = studio.task_file(_file_ref(body))
    draft = studio.draft(body, task_file)
    answer: dict = {"revision": ticket.revision, "issues": draft.issue_dicts(), "rows": [], "ok": draft.ok}
    if not draft.ok or not body.get("data"):
        return JSONResponse(answer)
    chosen, examples, skipped = studio.preview_examples(task_file, body)
    scorer = studio.scorer(draft, body, with_model=False)
    try:
        rows = render(scorer, chosen)
    except TemplateError as exc:
        raise ApiError(422, str(exc), "template") from None
    answer.update(
        rows=[{**vars(r), "source": Path(r.source).name} for r in rows],
        total=len(examples),
        skipped=skipped,
        mode=scorer.mode,
        slot_words=[" / ".join(scorer.verbalizer.to_dict()[label]) for label in scorer.labels],
    )
    return JSONResponse(answer)


async def score_prompts(request: Request) -> Response:
    """Label probabilities and predictions for the preview examples."""
    studio: Studio = request.app.state.studio
    body = await _body(request)
    ticket = _ticket(studio, body, "score-" + _string(body, "pane", "A"))

    def prepare():
        task_file, _, _ = studio.task_file(_file_ref(body))
        scorer = studio.scorer(studio.draft(body, task_file), body, with_model=True)
        chosen, _, _ = studio.preview_examples(task_file, body)
        return task_file, scorer, chosen

    task_file, scorer, chosen = await _off_loop(prepare)
    scores = await log_scores(scorer, chosen, studio.lock, ticket)
    cf = await content_free(scorer, studio.lock) if body.get("calibrate") else None
    if cf is not None:
        scores = apply_calibration(scores, cf)
    task_ = task_file.task
    predicted = predictions(task_, scores)
    rows = [
        {"prediction": p, "probabilities": probs, "correct": correct(task_, example, p)}
        for p, probs, example in zip(
            predicted, label_probabilities(scorer.labels, scores), chosen, strict=True
        )
    ]
    return JSONResponse({"revision": ticket.revision, "rows": rows, "calibrated": cf is not None})


async def evaluate(request: Request) -> Response:
    """Zero-shot metrics of one or two templates on a dev sample, streamed as JSON lines: progress
    while scoring, then the result (with per-example disagreements when two templates are compared)."""
    studio: Studio = request.app.state.studio
    body = await _body(request)
    ticket = _ticket(studio, body, "evaluate")
    task_file, scorers, sample = await _off_loop(_evaluation_inputs, studio, body)
    task_ = task_file.task

    async def lines():
        try:
            results = []
            total = len(sample) * len(scorers)
            for k, scorer in enumerate(scorers):
                run = BatchScoring(scorer, sample, studio.lock, ticket)
                async for done in run.batches():
                    progress = {"type": "progress", "done": k * len(sample) + done, "total": total}
                    yield json.dumps(progress) + "\n"
                results.append((run.scores, await content_free(scorer, studio.lock)))
            calibrated = bool(body.get("calibrate"))
            yield json.dumps({"type": "result", **_evaluation(task_, sample, results, calibrated)}) + "\n"
        except Superseded:
            yield json.dumps({"type": "superseded"}) + "\n"
        except Exception as exc:  # the stream has started: the error goes in it
            log.exception("evaluation failed")
            yield json.dumps({"type": "error", "error": f"{type(exc).__name__}: {exc}"}) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _evaluation_inputs(studio: Studio, body: dict):
    """The task file, one scorer per template and the sample: parsing and linting, off the event loop."""
    task_file, _, _ = studio.task_file(_file_ref(body))
    prompts = body.get("prompts")
    if (
        not isinstance(prompts, list)
        or not 1 <= len(prompts) <= 2
        or not all(isinstance(p, dict) for p in prompts)
    ):
        raise ApiError(400, "field 'prompts': expected a list of one or two {name, template, label_words}")
    scorers = [studio.scorer(studio.draft(body, task_file, p), body, with_model=True) for p in prompts]
    examples, _ = studio.read_examples(task_file, _string(body, "data"))
    size = _int(body, "sample")
    sample = random.Random(_int(body, "seed")).sample(examples, min(size, len(examples)))
    return task_file, scorers, sample


def _evaluation(task_, sample: list[Example], results: list, calibrated: bool) -> dict:
    """Metrics per template; with two, the examples they disagree on (with calibration when it is on)."""
    out = {"sample": len(sample), "prompts": [], "calibrated": calibrated}
    predicted = []
    for scores, cf in results:
        out["prompts"].append(sample_metrics(task_, sample, scores, cf))
        predicted.append(predictions(task_, apply_calibration(scores, cf) if calibrated else scores))
    if len(results) == 2:
        rows = []
        for i, example in enumerate(sample):
            a, b = predicted[0][i], predicted[1][i]
            if a != b:
                rows.append(
                    {
                        "source": Path(example.source).name,
                        "text": " | ".join(example.fields.values())[:300],
                        "gold": gold_text(example.label),
                        "a": a,
                        "b": b,
                        "a_correct": correct(task_, example, a),
                        "b_correct": correct(task_, example, b),
                    }
                )
        out["disagreements"] = rows
    return out


async def save(request: Request) -> Response:
    studio: Studio = request.app.state.studio
    body = await _body(request)
    return await _off_loop(_save, studio, body)


def _save(studio: Studio, body: dict) -> Response:
    base = body.get("base_version")
    if base is not None and not isinstance(base, str):
        raise ApiError(400, "field 'base_version': expected a string or null")
    result = studio.workspace.save_template(
        _file_ref(body),
        _string(body, "name"),
        _string(body, "template"),
        _label_words(body),
        base,
        make_default=bool(body.get("make_default", False)),
        tokenizer=studio.model.tokenizer,
        kind=studio.model.kind or "masked",
    )
    return JSONResponse(
        {
            "file": result.ref.to_dict(),
            "path": str(result.path),
            "version": result.version,
            "warnings": [str(i) for i in result.issues if i.severity != "error"],
        }
    )


# ---- errors ---------------------------------------------------------------------------------------
def _error(status: int, message: str, code: str, **details) -> JSONResponse:
    return JSONResponse({"error": message, "code": code, **details}, status_code=status)


async def _on_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientDisconnect):  # the page went away mid-request (a reload, a newer keystroke):
        log.debug("client left during %s", request.url.path)  # routine, not an error to log with a trace
        return Response(status_code=499)
    if isinstance(exc, ApiError):
        return _error(exc.status, exc.message, exc.code, **exc.details)
    if isinstance(exc, WorkspaceError):
        code = {409: "conflict", 422: "lint", 403: "forbidden", 404: "not_found"}.get(
            exc.status, "bad_request"
        )
        return _error(exc.status, str(exc), code, **exc.details)
    if isinstance(exc, Superseded):
        return _error(409, "superseded by a newer edit", "superseded")
    if isinstance(exc, ModelNotReady):
        return _error(503, str(exc), "loading", model=request.app.state.studio.model.status())
    if isinstance(exc, DataError):
        return _error(422, str(exc), "data")
    if isinstance(exc, HTTPException):
        return _error(exc.status_code, str(exc.detail), "http")
    log.error("unexpected error on %s", request.url.path, exc_info=exc)
    return _error(500, f"internal error ({type(exc).__name__}); details are in the server log", "internal")


def create_app(studio: Studio, allowed_hosts: list[str] | None = None) -> Starlette:
    """The studio's ASGI application. ``allowed_hosts``: the Host headers it answers (the command
    passes the address it listens on and the loopback names, against DNS rebinding)."""
    routes = [
        Route("/", index),
        Route("/api/status", status),
        Route("/api/tasks", tasks),
        Route("/api/task", task),
        Route("/api/render", render_prompts, methods=["POST"]),
        Route("/api/score", score_prompts, methods=["POST"]),
        Route("/api/evaluate", evaluate, methods=["POST"]),
        Route("/api/save", save, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {
        exc: _on_error
        for exc in (
            ApiError,
            WorkspaceError,
            Superseded,
            ModelNotReady,
            DataError,
            HTTPException,
            ClientDisconnect,  # handled here, not by the 500 handler (which re-raises it to the server's log)
            Exception,
        )
    }
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)
    app.state.studio = studio
    return app
