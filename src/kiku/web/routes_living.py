"""The explorer's living-topics endpoints: the compare view and the curation actions.

- ``GET /api/living/compare?by=base|day|week|month&level=0``: topic changes (``kiku.compare``)
  against the base run of a run made by ``kiku assign`` (``by=base``, the default for such a
  run) or between the periods of this run (the default otherwise: ``week``).
- ``GET /api/living/compare-topics?a=ID&b=ID``: two topics of this run side by side
  (``kiku.compare.compare_topics``): size and share with a Wilson 95% interval, facet value
  shares with their difference, c-TF-IDF keyword weights.
- ``GET /api/living/edits``: the run's edit log with each edit's status (``kiku.edits``).
- ``POST /api/living/edits`` (JSON): one edit, ``{"action": "rename", "target": ID, "name": ...}``,
  ``merge`` (``others``, ``name``), ``split`` (``parts``), ``move`` (``to``, optional
  ``conversations``), ``undo`` (optional ``seq``). It appends to ``edits.jsonl`` (the only file
  the explorer ever writes) and reloads the served run so that every view shows the edit.

Writes pass ``kiku.web.security``'s checks like every route of the app (``secure`` wraps the
whole app: Host check, same-origin JSON only); a bad edit answers 400 with kiku's one-line message.

Example::

    app = create_app("runs/week2")   # server.ROUTE_MODULES lists this module: add_routes(app, run)
    httpx.post(url + "api/living/edits", json={"action": "rename", "target": "L0-003", "name": "Card arrival"})
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from kiku.errors import KikuError

if TYPE_CHECKING:
    from kiku.web.data import RunData


class EditRequest(BaseModel):
    """The body of ``POST /api/living/edits``."""

    action: Literal["rename", "merge", "split", "move", "undo"]
    target: str | None = None
    name: str | None = Field(None, max_length=300)
    description: str | None = Field(None, max_length=2000)
    others: list[str] = Field(default_factory=list, max_length=500)
    to: str | None = None
    conversations: list[str] = Field(default_factory=list, max_length=10_000)
    parts: int = Field(2, ge=2, le=20)
    seq: int | None = None


def apply_request(run_dir: Any, body: EditRequest) -> dict[str, Any]:
    """Make the edit ``body`` asks for; returns the recorded edit (a KikuError when it is refused)."""
    from kiku import edits

    def need(value: str | None, what: str) -> str:
        if not value:
            raise KikuError(f"{body.action} needs {what}")
        return value

    if body.action == "rename":
        edit = edits.rename_topic(run_dir, need(body.target, "a target topic"), need(body.name, "a name"), body.description)
    elif body.action == "merge":
        edit = edits.merge_topics(run_dir, need(body.target, "a target topic"), body.others, body.name)
    elif body.action == "split":
        edit = edits.split_topic(run_dir, need(body.target, "a target topic"), body.parts)
    elif body.action == "move" and body.conversations:
        edit = edits.move_conversations(run_dir, body.conversations, need(body.to, "a destination (to)"))
    elif body.action == "move":
        edit = edits.move_topic(run_dir, need(body.target, "a target topic"), need(body.to, "a destination (to)"))
    else:
        edit = edits.undo_edit(run_dir, body.seq)
    return edit.model_dump(mode="json")


def living_state(run_dir: Any) -> dict[str, Any]:
    """What the explorer's curation panel shows: the edits with their status, and whether the
    run was made by ``kiku assign`` (then the compare view defaults to its base run)."""
    from kiku.edits import edit_statuses, read_edits
    from kiku.store import read_manifest

    log = {e.seq: e for e in read_edits(run_dir)}
    return {
        "assigned_from": (read_manifest(run_dir).get("assign") or {}).get("base_run"),
        "edits": [{**s.model_dump(), "at": log[s.seq].at, "by": log[s.seq].by, "line": s.one_line()}
                  for s in edit_statuses(run_dir)],
    }


def comparison_json(run_dir: Any, by: str, level: int) -> dict[str, Any]:
    """``{"by", "comparisons": [Comparison]}`` for the compare view."""
    from kiku.compare import compare_periods, compare_runs
    from kiku.store import read_manifest

    base = (read_manifest(run_dir).get("assign") or {}).get("base_run")
    if by == "base":
        if not base:
            raise KikuError("this run was not made by kiku assign, so it has no base run; compare its periods (day, week, month)")
        comparisons = [compare_runs(base, run_dir, level)]
    else:
        comparisons = compare_periods(run_dir, by, level)  # type: ignore[arg-type]
    return {"by": by, "comparisons": [c.model_dump() for c in comparisons]}


def add_routes(app: Any, run: RunData) -> None:
    """Add the living-topics routes to the explorer ``app`` serving ``run`` (a ``RunData``).

    Called by ``kiku.web.server.add_extension_routes`` (this module is in ``ROUTE_MODULES``).
    After an edit, ``run`` is reloaded and the server's response cache (``app.state.cache``)
    emptied, so the next bundle reflects the edit log.
    """
    from fastapi import HTTPException, Query
    from fastapi.responses import JSONResponse

    lock = threading.Lock()

    def refused(error: KikuError) -> HTTPException:
        return HTTPException(400, str(error))

    @app.get("/api/living/compare")
    def api_compare(by: str | None = Query(None, pattern="^(base|day|week|month)$"), level: int = Query(0, ge=0)) -> JSONResponse:
        from kiku.store import read_manifest

        chosen = by or ("base" if (read_manifest(run.run_dir).get("assign") or {}).get("base_run") else "week")
        try:
            return JSONResponse(comparison_json(run.run_dir, chosen, level))
        except KikuError as error:
            raise refused(error) from None

    @app.get("/api/living/compare-topics")
    def api_compare_topics(a: str = Query(..., max_length=200), b: str = Query(..., max_length=200)) -> JSONResponse:
        from kiku.compare import compare_topics

        try:
            return JSONResponse(compare_topics(run.bundle(), a, b).model_dump())
        except KikuError as error:
            raise refused(error) from None

    @app.get("/api/living/edits")
    def api_edits() -> JSONResponse:
        try:
            return JSONResponse(living_state(run.run_dir))
        except KikuError as error:
            raise refused(error) from None

    @app.post("/api/living/edits")
    def api_edit(body: EditRequest) -> JSONResponse:
        with lock:
            try:
                edit = apply_request(run.run_dir, body)
            except KikuError as error:
                raise refused(error) from None
            run.reload()  # a fresh DuckDB connection over the edited tables, no cached bundle
            cache = getattr(app.state, "cache", None)
            if cache is not None:
                cache.clear()
        return JSONResponse({"edit": edit, **living_state(run.run_dir)})
