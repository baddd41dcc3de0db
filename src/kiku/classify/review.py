"""Review weak labels in the browser: accept, reject or relabel, one item at a time.

Every decision is appended at once (flushed and fsynced) to an append-only gold file, so a
crash or a page reload loses nothing and a restarted review resumes after the last decision.

Gold file lines (JSONL), one per decision::

    {"id": "q7", "decision": "accept", "label": "artifact", "predicted_label": "artifact",
     "text": "...", "context": "...", "created_at": null, "reviewed_at": "2024-06-01T10:00:00+00:00"}

``decision`` is ``accept`` (label = predicted), ``relabel`` (label = the chosen label),
``reject`` (the prediction is wrong, true label unknown: label null), ``skip`` (no label), or
``undo`` (withdraws the latest decision on that id). :func:`fold_decisions` turns the log into
the final labelled items; ``kiku classify eval gold.jsonl`` reads it directly.

    >>> log = [{"id": "a", "text": "x", "decision": "accept", "label": "l1"},
    ...        {"id": "a", "text": "x", "decision": "undo"},
    ...        {"id": "a", "text": "x", "decision": "relabel", "label": "l2"}]
    >>> [(i.id, i.label) for i in fold_decisions(log)]
    [('a', 'l2')]
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from kiku.classify.data import Item
from kiku.errors import InputError

Decision = Literal["accept", "reject", "relabel", "skip", "undo"]
LABELLING = ("accept", "relabel")


def replay(records: Sequence[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Replay a decision log: (final decision per id, ids in the order their live decisions were made)."""
    history: dict[str, list[dict[str, Any]]] = {}
    order: list[str] = []
    for record in records:
        item_id = str(record.get("id"))
        if record.get("decision") == "undo":
            if history.get(item_id):
                history[item_id].pop()
                for position in range(len(order) - 1, -1, -1):
                    if order[position] == item_id:
                        del order[position]
                        break
            continue
        history.setdefault(item_id, []).append(record)
        order.append(item_id)
    final = {item_id: decisions[-1] for item_id, decisions in history.items() if decisions}
    return final, order


def fold_decisions(records: Sequence[dict[str, Any]], source: str = "gold.jsonl") -> list[Item]:
    """Final labelled items from a review log (accepted and relabelled items only, log order)."""
    final, _ = replay(records)
    items = []
    for item_id, record in final.items():
        if record.get("decision") not in LABELLING or not record.get("label"):
            continue
        labels = record.get("labels")
        items.append(Item(id=item_id, text=str(record.get("text", "")), context=record.get("context"),
                          created_at=record.get("created_at"), label=record["label"],
                          labels=labels if isinstance(labels, list) and len(labels) > 1 else None,
                          predicted_label=record.get("predicted_label")))
    return items


class GoldLog:
    """The append-only gold file: every ``append`` is written, flushed and fsynced before returning."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        if self.path.exists():
            self._drop_partial_last_line()
            with self.path.open(encoding="utf-8") as handle:
                for number, raw in enumerate(handle, start=1):
                    if not raw.strip():
                        continue
                    try:
                        self.records.append(json.loads(raw))
                    except json.JSONDecodeError:
                        raise InputError(str(self.path), "not valid JSON", "fix or remove this line", number) from None

    def _drop_partial_last_line(self) -> None:
        """A crash in the middle of a write leaves a last line without a newline; that decision was
        never confirmed to the reviewer (confirmation follows the fsync), so it is cut off."""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("rb+") as handle:
                handle.truncate(keep)
                handle.flush()
                os.fsync(handle.fileno())

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self.records.append(record)


class DecisionIn(BaseModel):
    id: str
    decision: Literal["accept", "reject", "relabel", "skip"]
    label: str | None = None


class ReviewSession:
    """State of one review: the items (weak labels), the labels and the gold log."""

    def __init__(self, items: Sequence[Item], labels: Sequence[str], gold_path: str | Path) -> None:
        self.items = list(items)
        self.by_id = {item.id: item for item in self.items}
        self.labels = list(labels)
        self.log = GoldLog(gold_path)

    def _decided(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        return replay(self.log.records)

    def state(self) -> dict[str, Any]:
        """What the page shows: progress, counts, and the next undecided item (or None)."""
        final, order = self._decided()
        pending = [item for item in self.items if item.id not in final]
        counts = {d: 0 for d in ("accept", "reject", "relabel", "skip")}
        for record in final.values():
            counts[record["decision"]] = counts.get(record["decision"], 0) + 1
        current = pending[0] if pending else None
        return {
            "labels": self.labels,
            "total": len(self.items),
            "done": len(self.items) - len(pending),
            "counts": counts,
            "can_undo": bool(order),
            "gold_path": str(self.log.path),
            "item": None if current is None else {
                "id": current.id, "text": current.text, "context": current.context,
                "predicted_label": current.predicted_label, "confidence": current.confidence,
            },
        }

    def decide(self, decision: DecisionIn) -> dict[str, Any]:
        item = self.by_id.get(decision.id)
        if item is None:
            raise KeyError(decision.id)
        label: str | None
        if decision.decision == "accept":
            label = item.predicted_label
        elif decision.decision == "relabel":
            if decision.label not in self.labels:
                raise ValueError(f"unknown label {decision.label!r}")
            label = decision.label
        else:
            label = None
        self.log.append({
            "id": item.id, "decision": decision.decision, "label": label, "predicted_label": item.predicted_label,
            "confidence": item.confidence, "text": item.text, "context": item.context,
            "created_at": item.created_at.isoformat() if item.created_at else None,
            "reviewed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        })
        return self.state()

    def undo(self) -> dict[str, Any]:
        _, order = self._decided()
        if order:
            self.log.append({"id": order[-1], "decision": "undo",
                             "reviewed_at": datetime.now(UTC).isoformat(timespec="seconds")})
        return self.state()


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
        return REVIEW_PAGE

    @router.get("/review.js")
    def script() -> Response:
        return Response(REVIEW_JS, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @router.get("/review.css")
    def style() -> Response:
        return Response(REVIEW_CSS, media_type="text/css; charset=utf-8", headers={"Cache-Control": "no-cache"})

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


REVIEW_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>kiku review</title>
<link rel="stylesheet" href="review.css">
<script src="review.js" defer></script>
</head><body>
<header><h2>kiku review</h2><span id="progress">…</span></header>
<div id="bar"><div id="fill"></div></div>
<div id="card"><div id="text"></div><div id="context"></div></div>
<div class="pred">predicted: <b id="predicted"></b> <span id="confidence"></span></div>
<div>
 <button id="accept"><kbd>a</kbd> accept</button>
 <button id="reject"><kbd>r</kbd> reject</button>
 <button id="skip"><kbd>s</kbd> skip</button>
 <button id="undo"><kbd>u</kbd> undo</button>
 <select id="relabel" aria-label="relabel"></select>
</div>
<div id="labels"></div>
<div id="msg"></div>
<p class="keys">Keys: <kbd>a</kbd> accept, <kbd>r</kbd> reject, <kbd>1</kbd>–<kbd>9</kbd> relabel, <kbd>s</kbd> skip, <kbd>u</kbd> undo. Every decision is saved at once to <code id="gold"></code>.</p>
</body></html>
"""

REVIEW_CSS = """\
 body{font-family:system-ui,sans-serif;max-width:860px;margin:2em auto;color:#222;padding:0 1em}
 header{display:flex;justify-content:space-between;align-items:center}
 #bar{height:8px;background:#eee;border-radius:4px;margin:.5em 0 1.2em}
 #fill{height:8px;background:#4C72B0;border-radius:4px;width:0}
 #card{border:1px solid #ddd;border-radius:8px;padding:1.2em;min-height:8em}
 #text{white-space:pre-wrap;font-size:1.1em;line-height:1.45}
 #context{white-space:pre-wrap;color:#666;font-size:.9em;margin-top:1em;border-top:1px dashed #ddd;padding-top:.6em}
 .pred{margin:1em 0;font-size:1.05em} .pred b{background:#e8f0fe;padding:.15em .5em;border-radius:4px}
 button{font-size:1em;margin:.2em;padding:.4em .8em;cursor:pointer}
 kbd{background:#f3f3f3;border:1px solid #ccc;border-radius:3px;padding:0 .3em;font-size:.85em}
 #labels button{min-width:7em} #msg{color:#080;min-height:1.3em;margin-top:.6em}
 .done{font-size:1.2em;color:#080}
 .keys{color:#888;font-size:.85em}
"""

REVIEW_JS = """\
let state = null;
const $ = (id) => document.getElementById(id);
async function call(method, url, body) {
  const response = await fetch(url, {method, headers: {"Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined});
  if (!response.ok) { $("msg").textContent = "error: " + response.status; return state; }
  return response.json();
}
function render(s) {
  state = s;
  $("progress").textContent = s.done + " / " + s.total + " reviewed (" + s.counts.accept + " accepted, " + s.counts.relabel + " relabelled, " + s.counts.reject + " rejected, " + s.counts.skip + " skipped)";
  $("fill").style.width = (s.total ? 100 * s.done / s.total : 100) + "%";
  $("gold").textContent = s.gold_path;
  $("undo").disabled = !s.can_undo;
  const labels = $("labels");
  if (!labels.childElementCount) {
    const select = $("relabel");
    select.appendChild(new Option("relabel as…", ""));
    s.labels.forEach((label, i) => {
      const button = document.createElement("button");
      button.textContent = (i < 9 ? (i + 1) + " " : "") + label;
      button.dataset.label = label;
      button.addEventListener("click", () => decide("relabel", label));
      labels.appendChild(button);
      select.appendChild(new Option(label, label));
    });
    select.addEventListener("change", () => { if (select.value) decide("relabel", select.value); select.value = ""; });
  }
  const item = s.item;
  for (const id of ["accept", "reject", "skip", "relabel"]) $(id).disabled = !item;
  if (!item) {
    $("text").innerHTML = "";
    const done = document.createElement("div"); done.className = "done"; done.textContent = "All items reviewed.";
    $("text").appendChild(done);
    $("context").textContent = ""; $("predicted").textContent = "–"; $("confidence").textContent = "";
    return;
  }
  $("text").textContent = item.text;
  $("context").textContent = item.context || "";
  $("context").style.display = item.context ? "" : "none";
  $("predicted").textContent = item.predicted_label || "(none)";
  $("confidence").textContent = item.confidence == null ? "" : "confidence " + Number(item.confidence).toFixed(2);
}
// decisions run one after another in key order, so fast typing never loses or reorders one
let chain = Promise.resolve();
function enqueue(task) { chain = chain.then(task).catch((error) => { $("msg").textContent = "error: " + error; }); }
function decide(decision, label) {
  enqueue(async () => {
    if (!state || !state.item) return;
    const id = state.item.id;
    render(await call("POST", "api/decision", {id, decision, label: label || null}));
    $("msg").textContent = "saved: " + decision + (label ? " → " + label : "");
  });
}
function undo() {
  enqueue(async () => { render(await call("POST", "api/undo")); $("msg").textContent = "undone"; });
}
$("accept").addEventListener("click", () => decide("accept"));
$("reject").addEventListener("click", () => decide("reject"));
$("skip").addEventListener("click", () => decide("skip"));
$("undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "SELECT" || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === "a") decide("accept");
  else if (key === "r") decide("reject");
  else if (key === "s") decide("skip");
  else if (key === "u") undo();
  else if (/^[1-9]$/.test(key) && state && Number(key) <= state.labels.length) decide("relabel", state.labels[Number(key) - 1]);
  else return;
  event.preventDefault();
});
call("GET", "api/state").then(render);
"""
