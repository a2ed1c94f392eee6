"""``studio`` (the local template page) and ``demo`` (the main job)."""

from __future__ import annotations

from pathlib import Path

from .common import _add_model_args, _port, console, escape, positive_int


def add_parsers(sub) -> None:
    p = sub.add_parser("studio", help="a local web page to write templates against real data and a model")
    _add_model_args(p, precision=False)
    p.add_argument("--task", default=None, help="the task the page opens with")
    p.add_argument(
        "--data-dir", default=None, help="data folder (or a folder of task folders, e.g. ../shared/data)"
    )
    p.add_argument("--workspace", default="studio-workspace", help="where saved task files go")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (the page has no login: loopback by default)",
    )
    p.add_argument("--port", type=_port, default=8765)
    p.add_argument("--max-length", type=positive_int, default=256)
    p.set_defaults(handler=cmd_studio)

    p = sub.add_parser("demo", help="the main job: zero-shot, then LN-tuning on 16 examples per class")
    _add_model_args(p, precision=False)
    p.add_argument("--steps", type=positive_int, default=30, help="LN-tuning steps")
    p.add_argument("--out", default="runs/demo")
    p.set_defaults(handler=cmd_demo)


def cmd_studio(args) -> int:
    import uvicorn

    from ..studio.loading import ModelHolder
    from ..studio.server import Studio, create_app
    from ..studio.workspace import Workspace

    holder = ModelHolder(args.model, args.model_kind)
    studio = Studio(
        Workspace(args.workspace),
        holder,
        Path(args.data_dir) if args.data_dir else None,
        max_length=args.max_length,
    )
    url = f"http://{args.host}:{args.port}/" + (f"?task={args.task}" if args.task else "")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]listening on {escape(args.host)}: anyone who reaches it can read and save templates[/]",
            markup=True,
        )
    console.print(f"lmbff studio: {url}  (workspace: {studio.workspace.root}; Ctrl-C stops)")
    holder.start()
    hosts = [args.host, "127.0.0.1", "localhost", "[::1]"] if args.host not in ("0.0.0.0", "::") else ["*"]
    # A render or scoring batch in a worker thread is bounded (render budget, one batch); SIGTERM does not
    # wait for more than a second of it.
    uvicorn.run(
        create_app(studio, hosts),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    return 0


def cmd_demo(args) -> int:
    from ..demo import run_demo

    run_demo(
        model_name=args.model,
        model_kind=args.model_kind,
        steps=args.steps,
        out_dir=Path(args.out),
        console=console,
    )
    return 0
