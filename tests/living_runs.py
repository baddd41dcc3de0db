"""Real inputs for the living-topics tests (kiku assign / compare / edit), from committed data.

BANKING77 slice (tests/data/banking77-quality.csv, 12 intents x 70 queries, CC BY 4.0) split in
two seeded halves; out-of-domain conversations from the bundled W&B queries
(examples/wandb-queries.jsonl) and the ShareGPT slice (tests/data/sharegpt-truncated.json).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BANKING = ROOT / "tests" / "data" / "banking77-quality.csv"
WANDB = ROOT / "examples" / "wandb-queries.jsonl"
SHAREGPT = ROOT / "tests" / "data" / "sharegpt-truncated.json"


def banking_rows() -> list[dict[str, str]]:
    """The BANKING77 slice as ``{"id", "text", "intent"}``, shuffled with seed 0."""
    import csv

    with open(BANKING, encoding="utf-8", newline="") as handle:
        rows = [{"text": r["text"], "intent": r["category"]} for r in csv.DictReader(handle)]
    random.Random(0).shuffle(rows)
    return [{"id": f"b{i:04d}", **r} for i, r in enumerate(rows)]


def conversation(cid: str, text: str, domain: str, created_at: str | None = None, **metadata: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": cid, "messages": [{"role": "user", "content": text}], "metadata": {"domain": domain, **metadata}}
    if created_at:
        row["created_at"] = created_at
    return row


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def halves(folder: Path) -> tuple[Path, Path, list[dict[str, str]], list[dict[str, str]]]:
    """``base.jsonl`` (even rows) and ``new.jsonl`` (odd rows) of the BANKING77 slice."""
    rows = banking_rows()
    a, b = rows[::2], rows[1::2]
    base = write_jsonl(folder / "base.jsonl", [conversation(r["id"], r["text"], "bank", intent=r["intent"]) for r in a])
    new = write_jsonl(folder / "new.jsonl", [conversation(r["id"], r["text"], "bank", intent=r["intent"]) for r in b])
    return base, new, a, b


def out_of_domain(limit: int = 120) -> list[dict[str, Any]]:
    """W&B documentation queries and ShareGPT chats (no banking), as kiku JSONL rows."""
    from kiku.loaders import LoadReport, load_conversations

    rows = []
    for line in WANDB.read_text(encoding="utf-8").splitlines()[:limit]:
        record = json.loads(line)
        rows.append(conversation("w-" + record["id"], record["messages"][0]["content"], "wandb"))
    for chat in load_conversations(SHAREGPT, report=LoadReport()):
        rows.append({"id": "s-" + chat.id, "messages": [{"role": m.role, "content": m.content} for m in chat.messages],
                     "metadata": {"domain": "sharegpt"}})
    return rows


def dated_rows(grow: str = "card_arrival") -> list[dict[str, Any]]:
    """The BANKING77 slice over two weeks, intent ``grow`` mostly in the second week."""
    start = datetime(2024, 3, 4, 9, tzinfo=UTC)  # a Monday
    rows = []
    for i, r in enumerate(banking_rows()):
        second = (i % 10 < 9) if r["intent"] == grow else (i % 2 == 0)
        when = start + timedelta(days=7 * second + i % 5, minutes=i)
        rows.append(conversation(r["id"], r["text"], "bank", when.isoformat(), intent=r["intent"]))
    return rows
