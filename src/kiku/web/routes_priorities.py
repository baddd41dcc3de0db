"""The explorer's priorities view: its JSON API and its block in the HTML export.

Routes (read-only, behind the same security middleware as every explorer route):

- ``GET /api/priorities/options``: the outcomes a report can rank by (binary and numeric ones by
  name, categorical ones as ``NAME=VALUE``), the weights (numeric outcomes), the gap types;
- ``GET /api/priorities?outcome=thumbs_up&weight=revenue&gap=capability``: the
  :class:`kiku.priorities.PriorityReport` as JSON (400 with kiku's one-line message on a bad choice).

Listed in ``kiku.web.server.ROUTE_MODULES``: :func:`add_routes` adds the routes, :func:`export_data`
gives the export the options and the reports of every choice (up to :data:`MAX_EXPORT_REPORTS`,
:func:`export_section`), embedded as the gzip+base64 block ``kiku-extra-priorities``, so the same
view (``static/app/priorities.js``, a tab of the explorer) works offline.

    >>> options = priorities_options("runs/wandb")            # doctest: +SKIP
    >>> options["outcomes"][0]                                # doctest: +SKIP
    {'value': 'thumbs_up', 'label': 'thumbs_up (binary)', 'kind': 'binary'}
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiku.errors import KikuError

if TYPE_CHECKING:
    from kiku.web.data import RunData

#: Most (outcome, weight, gap) reports embedded in one export.
MAX_EXPORT_REPORTS = 60
#: Most values of one categorical outcome offered as choices.
MAX_CATEGORY_CHOICES = 6


def report_key(outcome: str, weight: str | None, gap: str | None) -> str:
    """The key of one report in the export's ``priorities.reports``.

    >>> report_key("thumbs_up", None, "capability")
    'thumbs_up|-|capability'
    """
    return f"{outcome}|{weight or '-'}|{gap or '-'}"


def priorities_options(run_dir: str | Path) -> dict[str, Any]:
    """What the view offers: outcome choices, weights and gap types (empty lists before ``kiku join``)."""
    from kiku.gaps import gap_labels
    from kiku.outcomes import outcome_fields
    from kiku.store import RunStore

    try:
        fields = outcome_fields(run_dir)
    except KikuError as error:
        return {"outcomes": [], "weights": [], "gaps": [], "problem": str(error)}
    outcomes: list[dict[str, Any]] = []
    for field in fields:
        if field.kind == "categorical":
            for value in field.values[:MAX_CATEGORY_CHOICES]:
                outcomes.append({"value": f"{field.name}={value}", "label": f"{field.name} = {value}", "kind": field.kind})
        else:
            outcomes.append({"value": field.name, "label": f"{field.name} ({field.kind})", "kind": field.kind})
    weights = [field.name for field in fields if field.kind == "numeric"]
    store = RunStore(run_dir)
    gaps: list[str] = []
    if store.derived_record("gaps") is not None:
        try:
            store.check_derived("gaps", "kiku gaps RUN")
            gaps = gap_labels(run_dir)
        except KikuError:
            gaps = []
    return {"outcomes": outcomes, "weights": weights, "gaps": gaps, "problem": None}


def priorities_payload(run_dir: str | Path, outcome: str, weight: str | None = None, gap: str | None = None) -> dict[str, Any]:
    """One report as JSON: the :class:`~kiku.priorities.PriorityReport` fields plus ``method``."""
    from kiku.priorities import priority_report

    report = priority_report(run_dir, outcome, weight=weight or None, gap=gap or None)
    return {**report.model_dump(mode="json"), "method": report.method_line()}


def compact(value: Any) -> Any:
    """A JSON value with every float cut to 4 significant digits (the export holds many reports).

    >>> compact({"rate": 0.36666666, "rows": [{"impact": 908.3589}]})
    {'rate': 0.3667, 'rows': [{'impact': 908.4}]}
    """
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def export_section(run_dir: str | Path) -> dict[str, Any]:
    """The export's ``priorities`` block: the options and every report they allow (capped), floats
    cut to 4 significant digits."""
    options = priorities_options(run_dir)
    reports: dict[str, Any] = {}
    for choice in options["outcomes"]:
        for weight in [None, *options["weights"]]:
            if weight is not None and weight == choice["value"]:
                continue
            for gap in [None, *options["gaps"]]:
                if len(reports) >= MAX_EXPORT_REPORTS:
                    break
                try:
                    reports[report_key(choice["value"], weight, gap)] = compact(priorities_payload(run_dir, choice["value"], weight, gap))
                except KikuError as error:
                    reports[report_key(choice["value"], weight, gap)] = {"error": str(error)}
    return {**options, "reports": reports}


def export_data(run: RunData) -> dict[str, Any] | None:
    """The export's ``priorities`` block (:func:`export_section`; ``None`` for a run with no outcome
    and nothing to say about them). ``kiku.web.export.extension_data`` calls it for every module of
    ``server.ROUTE_MODULES``; the page reads it with ``source.extra("priorities")``."""
    section = export_section(run.run_dir)
    return section if section["outcomes"] or section["problem"] else None


def add_routes(app: Any, run: RunData) -> None:
    """Add the priorities routes to the explorer's FastAPI ``app`` serving ``run``
    (listed in ``kiku.web.server.ROUTE_MODULES``: same host check, headers and write rule)."""
    from fastapi import HTTPException, Query
    from fastapi.responses import JSONResponse

    run_dir = run.run_dir
    cache: dict[str, Any] = {}

    @app.get("/api/priorities/options")
    def api_priorities_options() -> JSONResponse:
        return JSONResponse(priorities_options(run_dir))

    @app.get("/api/priorities")
    def api_priorities(outcome: str = Query(..., min_length=1, max_length=200), weight: str | None = Query(None, max_length=200),
                       gap: str | None = Query(None, max_length=200)) -> JSONResponse:
        key = report_key(outcome, weight, gap)
        if key not in cache:
            try:
                cache[key] = priorities_payload(run_dir, outcome, weight, gap)
            except KikuError as error:
                raise HTTPException(400, str(error)) from None
        return JSONResponse(cache[key])
