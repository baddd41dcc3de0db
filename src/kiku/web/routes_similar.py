"""Similar-meaning search routes (``kiku.similar``), read-only, for the served explorer.

``GET /api/similar/rows?q=`` every match (at most ``similar.DEFAULT_TOP``): ``{"query", "mode",
"tokens": [], "total", "rows", "scores", "floor", "top"}``, most similar first, rows indexing
the bundle; ``GET /api/similar?q=&limit=&offset=`` a page of them with scores and snippets.
A run without ``embeddings.parquet`` answers 409 with what to do. Listed in
``web.server.ROUTE_MODULES``, so the routes get the host check and headers of every route.

Example::

    httpx.get(url + "api/similar/rows", params={"q": "money never showed up"}).json()["scores"][:3]
"""

from __future__ import annotations

from typing import Any

from kiku.errors import InputError
from kiku.web.data import MAX_PAGE, RunData


def add_routes(app: Any, run: RunData) -> None:
    """Add ``/api/similar`` and ``/api/similar/rows`` to the explorer's FastAPI ``app``."""
    from fastapi import HTTPException, Query
    from fastapi.responses import JSONResponse

    def answer(make: Any) -> JSONResponse:
        try:
            return JSONResponse(make())
        except InputError as exc:  # a run made without embeddings (or with them removed)
            raise HTTPException(409, str(exc)) from None

    @app.get("/api/similar/rows")
    def api_similar_rows(q: str = Query(..., min_length=1, max_length=500)) -> JSONResponse:
        return answer(lambda: run.similar_rows(q))

    @app.get("/api/similar")
    def api_similar(q: str = Query(..., min_length=1, max_length=500), limit: int = Query(50, ge=1, le=MAX_PAGE),
                    offset: int = Query(0, ge=0)) -> JSONResponse:
        return answer(lambda: run.similar(q, limit, offset))
