"""``lmbff studio``: a local web page for writing cloze templates against real data and a real model.

The server (Starlette, run by uvicorn) holds one model, the workspace and the data folder; the page is
plain HTML and JavaScript shipped in ``static/``, with no build step.
"""

from .server import Studio, create_app

__all__ = ["Studio", "create_app"]
