"""The explorer's HTTP server: one run, read-only, on 127.0.0.1 unless told otherwise.

Routes: ``/`` (the app), ``/static/<file>`` (a fixed whitelist of the package's own assets),
and a paginated JSON API under ``/api``: ``run``, ``bundle``, ``clusters``, ``conversations``,
``conversations/{id}``, ``search``, plus ``export.html`` (the self-contained report). Every
response carries a strict Content-Security-Policy; only the run given at start is served. The
host check and the headers live in ``kiku.web.security``, shared with the review page.

Example::

    from kiku.web import serve
    serve("runs/chats")                        # prints http://127.0.0.1:PORT/ and blocks

    with running_server("runs/chats") as url:  # a background server, for tests and scripts
        httpx.get(url + "api/run").json()
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kiku.web.data import MAX_PAGE, RunData
from kiku.web.export import STATIC_DIR, app_script, app_style, render_page
from kiku.web.security import SERVER_CSP, hosts_for, secure

__all__ = ["SERVER_CSP", "create_app", "running_server", "serve", "static_body", "static_path"]
# The only files /static/ will ever send, with their media types.
STATIC_FILES: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: Assets built from several files when sent (the explorer's modules, see ``export.APP_MODULES``).
BUNDLED: dict[str, Callable[[], str]] = {"app.js": app_script, "app.css": app_style}


def static_path(name: str) -> Path | None:
    """The file a ``/static/<name>`` request may send, or ``None`` (not whitelisted / escapes).

    ``app.js`` is not a file: :func:`static_body` bundles it from ``static/app/``.

    >>> static_path("../data.py") is None, static_path("favicon.svg").name, static_path("app.js")
    (True, 'favicon.svg', None)
    """
    if name not in STATIC_FILES or name in BUNDLED:
        return None
    root = STATIC_DIR.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


def static_body(name: str) -> bytes | None:
    """What ``/static/<name>`` sends: a whitelisted file, or the bundled ``app.js``; else ``None``.

    >>> static_body("app.js").startswith(b"/* kiku explorer"), static_body("index.html")
    (True, None)
    """
    if name in BUNDLED:
        return BUNDLED[name]().encode("utf-8")
    path = static_path(name)
    return None if path is None else path.read_bytes()


def create_app(run_dir: str | Path, allowed_hosts: list[str] | None = None):  # noqa: ANN201 - FastAPI
    """A FastAPI app serving the explorer over the one run in ``run_dir``.

    ``allowed_hosts`` (Host header values accepted, default loopback names) guards against
    DNS rebinding; pass ``["*"]`` when serving on a LAN address on purpose.
    """
    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    run = RunData(run_dir)
    app = FastAPI(title="kiku explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.run = run
    secure(app, allowed_hosts)
    cache: dict[str, bytes] = {}

    cache_lock = threading.Lock()

    def cached_json(key: str, make: Any) -> bytes:
        with cache_lock:
            if key not in cache:
                cache[key] = json.dumps(make(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            return cache[key]

    def json_bytes(key: str, make: Any) -> Response:
        return Response(cached_json(key, make), media_type="application/json")

    # build the browser bundle in the background now, so the first page load finds it ready
    threading.Thread(target=cached_json, args=("bundle", run.bundle), name="kiku-bundle-warmup", daemon=True).start()

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(render_page(mode="api", title=f"kiku · {run.run_dir.name}"))

    @app.get("/static/{name:path}")
    def static(name: str) -> Response:
        body = static_body(name)
        if body is None:
            raise HTTPException(404, "not found")
        return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    @app.get("/api/run")
    def api_run() -> JSONResponse:
        return JSONResponse(run.run_info())

    @app.get("/api/bundle")
    def api_bundle() -> Response:
        return json_bytes("bundle", run.bundle)

    @app.get("/api/clusters")
    def api_clusters(limit: int = Query(100, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0),
                     level: int | None = None) -> JSONResponse:
        return JSONResponse(run.clusters_page(limit, offset, level))

    @app.get("/api/conversations")
    def api_conversations(limit: int = Query(50, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0),
                          cluster_id: str | None = None) -> JSONResponse:
        return JSONResponse(run.conversations_page(limit, offset, cluster_id))

    @app.get("/api/conversations/{conversation_id:path}")
    def api_conversation(conversation_id: str) -> JSONResponse:
        conv = run.conversation(conversation_id)
        if conv is None:
            raise HTTPException(404, f"no conversation {conversation_id!r} in this run")
        return JSONResponse(conv)

    @app.get("/api/search")
    def api_search(q: str = Query(..., min_length=1, max_length=500), limit: int = Query(50, ge=1, le=MAX_PAGE),
                   offset: int = Query(0, ge=0)) -> JSONResponse:
        return JSONResponse(run.search(q, limit, offset))

    @app.get("/api/export.html")
    def api_export() -> Response:
        from kiku.web.export import render_export

        if "export" not in cache:
            cache["export"] = render_export(run).encode("utf-8")
        return Response(cache["export"], media_type="text/html; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{_safe_filename(run.run_dir.name)}.html"'})

    from kiku.web.routes_priorities import register_priorities  # the priorities view's routes

    register_priorities(app, run.run_dir)
    return app


def _safe_filename(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return keep or "kiku-report"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 0, open_browser: bool = False) -> None:
    """Serve the explorer for ``run_dir`` until interrupted; prints the URL first.

    ``port=0`` picks a free port. Binding anything but loopback is the caller's explicit
    choice (``kiku ui RUN --host 0.0.0.0``).
    """
    import uvicorn

    app = create_app(run_dir, allowed_hosts=hosts_for(host))
    sock = _bind(host, port)
    url = _url(host, sock.getsockname()[1])
    print(f"kiku explorer for {Path(run_dir)} at {url}  (Ctrl+C to stop)", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


@contextlib.contextmanager
def running_server(run_dir: str | Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run the explorer in a background thread; yields its URL (ending in ``/``)."""
    import uvicorn

    app = create_app(run_dir, allowed_hosts=hosts_for(host))
    sock = _bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield _url(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
