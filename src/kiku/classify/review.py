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
