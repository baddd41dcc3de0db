"""A real run with a planted outcome, for the priorities tests (outcomes, report, gaps, web).

Input: 20 real BANKING77 queries of each of its 12 intents in ``tests/data/banking77-quality.csv``
plus the 3 real W&B queries about PyTorch in ``tests/data/wandb-queries.json`` (a small topic of
their own among bank questions). Outcome ``thumbs_up``, planted and deterministic: 2 of 20 for
intent ``terminate_account``, 0 of 3 for the W&B queries, 9 of every 10 elsewhere.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
PLANTED = "terminate_account"
PER_INTENT = 20


def rows() -> list[dict[str, Any]]:
    """The input conversations (kiku JSONL rows); ``metadata.intent`` holds the true intent."""
    by_intent: dict[str, list[str]] = {}
    with open(DATA / "banking77-quality.csv", newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            by_intent.setdefault(record["category"], []).append(record["text"])
    out = []
    for intent, texts in sorted(by_intent.items()):
        for k, text in enumerate(texts[:PER_INTENT]):
            out.append({"id": f"{intent}-{k:02d}", "messages": [{"role": "user", "content": text}],
                        "metadata": {"intent": intent, "tier": "gold" if k % 2 else "free"}})
    for record in json.loads((DATA / "wandb-queries.json").read_text(encoding="utf-8")):
        if "PyTorch" in record["query"]:
            out.append({"id": record["query_id"], "messages": [{"role": "user", "content": record["query"]}],
                        "metadata": {"intent": "wandb_pytorch", "tier": "free"}})
    return out


def wandb_ids() -> list[str]:
    """The ids of the 3 W&B queries (the 3-conversation topic)."""
    return [r["id"] for r in rows() if r["metadata"]["intent"] == "wandb_pytorch"]


def thumbs_up(row: dict[str, Any], k: int) -> int:
    """The planted outcome of the ``k``-th conversation of its intent."""
    intent = row["metadata"]["intent"]
    if intent == PLANTED:
        return int(k < 2)
    if intent == "wandb_pytorch":
        return 0
    return int(k % 10 != 9)


def feedback_rows() -> list[dict[str, Any]]:
    """One feedback row per conversation: thumbs_up (binary), revenue (numeric), resolution (categorical)."""
    out, seen = [], {}
    for row in rows():
        intent = row["metadata"]["intent"]
        k = seen[intent] = seen.get(intent, -1) + 1
        up = thumbs_up(row, k)
        out.append({"conversation_id": row["id"], "thumbs_up": up, "revenue": float(10 + (k * 7) % 23),
                    "resolution": "resolved" if up else ("escalated" if k % 2 else "abandoned")})
    return out


def write_input(folder: Path) -> Path:
    """Write the conversations as kiku JSONL; returns the file."""
    path = folder / "bank.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows()), encoding="utf-8")
    return path


def write_feedback_csv(path: Path, drop: int = 0, extra_ids: tuple[str, ...] = ()) -> Path:
    """The feedback as CSV, without the last ``drop`` conversations, plus rows for ``extra_ids``."""
    records = feedback_rows()
    records = records[: len(records) - drop] if drop else records
    records += [{"conversation_id": cid, "thumbs_up": 1, "revenue": 1.0, "resolution": "resolved"} for cid in extra_ids]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["conversation_id", "thumbs_up", "revenue", "resolution"])
        writer.writeheader()
        writer.writerows(records)
    return path


def make_run(folder: Path) -> Path:
    """A real offline run (packaged embedder, k-means, hierarchy) over :func:`rows`; returns the run folder."""
    import kiku

    run = kiku.analyze(write_input(folder), folder / "run", seed=0)
    return run.path
