"""The review page of ``kiku classify review``, served with the explorer's protections.

The page itself lives in ``web/static/review/`` (``index.html``, ``review.js``, ``review.css``);
the decisions and the append-only gold file are :class:`kiku.classify.review.ReviewSession`'s.

>>> from kiku.classify.review import ReviewSession            # doctest: +SKIP
>>> app = create_review_app(ReviewSession(items, labels, "gold.jsonl"))   # doctest: +SKIP
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from kiku.classify.review import DecisionIn, ReviewSession


@cache
def review_asset(name: str) -> str:
    """The text of one file of the review page (``index.html``, ``review.js`` or ``review.css``)."""
    return resources.files("kiku.web").joinpath("static", "review", name).read_text(encoding="utf-8")


def review_router(session: ReviewSession) -> Any:
    """FastAPI router with the page and its API, mountable under any prefix (e.g. ``/review/``):
    ``GET /`` the page (``review.js``, ``review.css``), ``GET api/state``, ``POST api/decision``,
    ``POST api/undo``. The page calls the API by relative URLs, so it works wherever it is
    mounted; the app it is mounted in brings the protections (:func:`kiku.web.security.secure`)."""
    from kiku.errors import require

    require("fastapi", "classify")
    from fastapi import APIRouter, HTTPException
    from fastapi.responses import HTMLResponse, Response

    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    def page() -> str:
        return review_asset("index.html")

    @router.get("/review.js")
    def script() -> Response:
        return Response(review_asset("review.js"), media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @router.get("/review.css")
    def style() -> Response:
        return Response(review_asset("review.css"), media_type="text/css; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @router.get("/api/state")
    def state() -> dict[str, Any]:
        return session.state()

    @router.post("/api/decision")
    def decide(decision: DecisionIn) -> dict[str, Any]:
        try:
            return session.decide(decision)
        except KeyError:
            raise HTTPException(404, f"unknown item {decision.id!r}") from None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None

    @router.post("/api/undo")
    def undo() -> dict[str, Any]:
        return session.undo()

    return router


def create_review_app(session: ReviewSession, prefix: str = "", allowed_hosts: list[str] | None = None) -> Any:
    """A FastAPI app serving :func:`review_router` at ``prefix`` (default: the root), with the
    explorer's protections: the ``Host`` check (``allowed_hosts``, default loopback names), its
    Content-Security-Policy, no framing, and same-origin JSON for every decision."""
    from fastapi import FastAPI

    from kiku.web.security import secure

    app = FastAPI(title="kiku review", docs_url=None, redoc_url=None, openapi_url=None)
    secure(app, allowed_hosts)
    app.include_router(review_router(session), prefix=prefix)
    return app


def serve_review(session: ReviewSession, host: str = "127.0.0.1", port: int = 8766) -> None:
    """Serve the review page until interrupted (loopback only by default)."""
    from kiku.errors import require
    from kiku.web.security import hosts_for

    uvicorn = require("uvicorn", "classify")
    uvicorn.run(create_review_app(session, allowed_hosts=hosts_for(host)), host=host, port=port, log_level="warning")
