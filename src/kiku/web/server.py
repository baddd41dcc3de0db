"""The explorer's HTTP server: one run, read-only, on 127.0.0.1 unless told otherwise.

Routes: ``/`` (the app), ``/static/<file>`` (a fixed whitelist of the package's own assets),
and a paginated JSON API under ``/api``: ``run``, ``bundle``, ``clusters``, ``conversations``,
``conversations/{id}``, ``search`` (a page with snippets), ``search/rows`` (every matching
bundle row) and ``search/snippets`` (snippets for given rows), plus ``export.html`` (the
self-contained report), plus the routes of :data:`ROUTE_MODULES` (new views). Every
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
#: Assets built from several files when sent: the explorer's modules (``export.app_modules()``)
#: and its stylesheets (``app.css`` then each view's ``app/*.css``, ``export.app_styles()``).
BUNDLED: dict[str, Callable[[], str]] = {"app.js": app_script, "app.css": app_style}


#: Extension point for new views: each module named here defines either ``add_routes(app, run)``
#: (``app`` the FastAPI app, ``run`` its :class:`~kiku.web.data.RunData`) or a FastAPI
#: ``router`` (an ``APIRouter``; the run is ``request.app.state.run``). The modules are imported
#: when the app is created; one that is not installed is skipped. Add one line per module.
#: Their routes get the same host check, headers and same-origin JSON rule (``secure``). A route
#: that changes the run (``routes_living``'s edits) calls ``run.reload()`` and clears the response
#: cache ``app.state.cache``.
ROUTE_MODULES: list[str] = [
    "kiku.web.routes_living",
    "kiku.web.routes_priorities",
    "kiku.web.routes_similar",
]


def add_extension_routes(app: Any, run: RunData) -> list[str]:
    """Add the routes of every module in :data:`ROUTE_MODULES` that exists.

    Returns the names of the modules that added routes, e.g. ``["kiku.web.routes_living"]``.
    Raises ``TypeError`` for a module with neither ``add_routes`` nor ``router``.
    """
    import importlib

    added = []
    for name in ROUTE_MODULES:
        if not _module_exists(name):
            continue
        module = importlib.import_module(name)
        if hasattr(module, "add_routes"):
            module.add_routes(app, run)
        elif hasattr(module, "router"):
            app.include_router(module.router)
        else:
            raise TypeError(f"{name}: define add_routes(app, run) or a FastAPI `router` (see kiku.web.server.ROUTE_MODULES)")
        added.append(name)
    return added


def _module_exists(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def static_path(name: str) -> Path | None:
    """The file a ``/static/<name>`` request may send, or ``None`` (not whitelisted / escapes).

    ``app.js`` and ``app.css`` are not sent as files: :func:`static_body` bundles them (``static/app/``).

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
    app.state.cache = cache  # responses built from the run: a route that changes the run clears it

    cache_lock = threading.Lock()

    def cached_json(key: str, make: Any) -> bytes:
        with cache_lock:
            if key not in cache:
                cache[key] = json.dumps(make(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            return cache[key]

    def json_bytes(key: str, make: Any) -> Response:
        return Response(cached_json(key, make), media_type="application/json")

    # build the browser bundle in the background now, so the first page load finds it ready
    # (then the search table, so the first search does not wait for it either)
    def warm_up() -> None:
        cached_json("bundle", run.bundle)
        run.warm_search()

    threading.Thread(target=warm_up, name="kiku-warmup", daemon=True).start()

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

    @app.get("/api/search/rows")
    def api_search_rows(q: str = Query(..., min_length=1, max_length=500)) -> JSONResponse:
        return JSONResponse(run.search_rows(q))

    @app.get("/api/search/snippets")
    def api_search_snippets(q: str = Query(..., min_length=1, max_length=500),
                            rows: str = Query("", max_length=20_000)) -> JSONResponse:
        try:
            wanted = [int(r) for r in rows.split(",") if r.strip()][:MAX_PAGE]
        except ValueError:
            raise HTTPException(422, "rows: comma-separated row numbers") from None
        return JSONResponse({"items": run.snippets(q, wanted)})

    add_extension_routes(app, run)

    @app.get("/api/export.html")
    def api_export() -> Response:
        from kiku.web.export import render_export

        if "export" not in cache:
            cache["export"] = render_export(run).encode("utf-8")
        return Response(cache["export"], media_type="text/html; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{_safe_filename(run.run_dir.name)}.html"'})

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
