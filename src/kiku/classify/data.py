"""Items to classify, read from the files a user has: conversations, queries, weak labels, gold.

An :class:`Item` is what a classifier sees: ``text`` (the request) and optional ``context``
(a retrieved document, for RAG queries). Readers accept:

- kiku conversation JSONL/JSON (records with ``messages``) — text is the user turns;
- query JSONL/JSON (records with ``query`` and optional ``matching_document``, as in the W&B set);
- plain ``{"id", "text", "label"}`` records;
- weak-label files written by ``kiku classify label`` (``predicted_label``);
- review logs written by ``kiku classify review`` (``decision``), folded to the final decisions;
- a run folder (``conversations.parquet``).

Every record that cannot be used raises an InputError naming the file and line.

    >>> Item(id="q1", text="how do I log a table?", label="visualisation").gold_labels
    ['visualisation']
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from kiku.errors import InputError
from kiku.loaders import LoadReport, load_conversations
from kiku.records import SkippedRecord
from kiku.store import missing_tables, read_frame, read_requests, table_file

CONTEXT_CHARS = 600
MAX_USER_CHARS = 4000


class Item(BaseModel):
    """One thing to classify, with its true label(s) when known."""

    id: str
    text: str
    context: str | None = None
    created_at: datetime | None = None
    label: str | None = None
    labels: list[str] | None = None
    predicted_label: str | None = None
    predicted_labels: list[str] | None = None
    confidence: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def gold_labels(self) -> list[str]:
        """The true labels ([] when unknown)."""
        if self.labels:
            return list(self.labels)
        return [self.label] if self.label else []


def document_head(document: str, max_chars: int = CONTEXT_CHARS) -> str:
    """Title and first lines of a retrieved document, markdown markers stripped.

    >>> document_head("## Title\\n### Sub\\n\\nBody text here.", 40)
    'Title / Sub / Body text here.'
    """
    parts: list[str] = []
    total = 0
    for raw in document.splitlines():
        line = raw.strip().lstrip("#").strip()
        if not line or line == "---":
            continue
        parts.append(line)
        total += len(line) + 3
        if total >= max_chars:
            break
    return " / ".join(parts)[:max_chars]


def _parse_time(value: Any, source: str, line: int | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(source, f"created_at {str(value)[:40]!r} is not a date", "use ISO 8601 such as 2024-05-01T12:00:00Z", line) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _conversation_text(messages: list[Any], source: str, line: int | None) -> str:
    if not isinstance(messages, list) or not messages:
        raise InputError(source, "'messages' must be a non-empty list", "give each record a list of {role, content}", line)
    user_turns = []
    for message in messages:
        if not isinstance(message, dict):
            raise InputError(source, "a message is not an object", "write messages as {\"role\": ..., \"content\": ...}", line)
        role = str(message.get("role", message.get("from", ""))).lower()
        content = message.get("content", message.get("value", ""))
        if role in ("user", "human", "customer") and isinstance(content, str) and content.strip():
            user_turns.append(content.strip())
    text = "\n\n".join(user_turns)
    if not text:
        raise InputError(source, "conversation has no user message", "classification reads the user turns", line)
    return text[:MAX_USER_CHARS]


def item_from_record(record: dict[str, Any], source: str, line: int | None, index: int) -> Item:
    """Build an Item from one JSON record of any supported shape."""
    if not isinstance(record, dict):
        raise InputError(source, "record is not a JSON object", "write one object per line", line)
    record_id = _record_id(record)
    item_id = record_id if record_id is not None else f"{Path(source).stem}-{index + 1}"
    context = record.get("context")
    if "messages" in record:
        text = _conversation_text(record["messages"], source, line)
    elif "query" in record:
        text = str(record["query"] or "").strip()
        document = record.get("matching_document")
        if document and not context:
            context = document_head(str(document))
    else:
        text = str(record.get("text") or "").strip()
    if not text:
        raise InputError(source, "record has no text", "give it 'text', 'query' or 'messages'", line)
    label = record.get("label")
    labels = record.get("labels")
    if labels is not None and not isinstance(labels, list):
        raise InputError(source, "'labels' must be a list", "write labels as [\"a\", \"b\"]", line)
    predicted = record.get("predicted_label")
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    return Item(
        id=item_id,
        text=text,
        context=str(context) if context else None,
        created_at=_parse_time(record.get("created_at"), source, line),
        label=str(label) if label not in (None, "") else None,
        labels=[str(x) for x in labels] if labels else None,
        predicted_label=str(predicted) if predicted else None,
        predicted_labels=record.get("predicted_labels"),
        confidence=record.get("confidence"),
        metadata=metadata,
    )


def _records(path: Path, report: LoadReport) -> Iterator[tuple[dict[str, Any], int | None]]:
    """The JSON records of ``path``: a JSON document (a list, or ``{"items": [...]}``) read whole,
    else JSON Lines through kiku's loaders (a malformed line is skipped and recorded in ``report``)."""
    from kiku.loaders.json_formats import iter_json_records

    source = str(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(source, f"not valid JSON ({exc.msg})", "fix the file or convert it to JSONL", exc.lineno) from None
        if isinstance(data, dict):
            data = data.get("conversations", data.get("items", [data]))
        if not isinstance(data, list):
            raise InputError(source, "expected a JSON list of records", "write a list of objects")
        for record in data:
            yield record, None
        return
    for line, record in iter_json_records(path, report):
        yield record, line


def _note_skipped(path: Path, skipped: list[SkippedRecord]) -> None:
    """Say on stderr how many records of ``path`` were skipped, and the first few, one a line."""
    if not skipped:
        return
    import sys

    print(f"note: {len(skipped)} records of {path} skipped:", file=sys.stderr)
    for record in skipped[:5]:
        print(f"  {record.one_line()}", file=sys.stderr)
    if len(skipped) > 5:
        print(f"  ... and {len(skipped) - 5} more", file=sys.stderr)


def _nothing_usable(path: Path, skipped: list[SkippedRecord], what: str) -> InputError:
    """The error for a file none of whose records could be used: the first skipped one's reason."""
    if not skipped:
        return InputError(str(path), f"no {what} found", "the file is empty")
    first = skipped[0]
    return InputError(first.source, first.reason, "", first.line)


def _record_id(record: Any) -> str | None:
    """The id a record names, for the skip report (None when it names none)."""
    if not isinstance(record, dict):
        return None
    value = record.get("id", record.get("conversation_id", record.get("query_id", record.get("item_id"))))
    return None if value in (None, "") else str(value)


def _read_run(run_dir: Path) -> list[Item]:
    import pandas as pd

    table = read_frame(run_dir, "conversations")
    requests = read_requests(run_dir, from_messages=False)
    items = []
    for row in table.itertuples(index=False):
        messages = json.loads(row.messages)
        text = _conversation_text(messages, str(run_dir / table_file("conversations")), None)
        created = row.created_at if "created_at" in table.columns else None
        created = None if created is None or pd.isna(created) else created.to_pydatetime()
        items.append(Item(id=str(row.conversation_id), text=text, created_at=created,
                          metadata={"request": requests.get(row.conversation_id, "")}))
    return items


KNOWN_KEYS = {"text", "query", "messages", "decision", "predicted_label"}


def _read_with_loaders(path: Path) -> list[Item]:
    """Any other format kiku's loaders read (csv, parquet, ChatGPT/Claude exports, ShareGPT...)."""
    report = LoadReport()
    items = []
    for conversation in load_conversations(path, report=report):
        messages = [{"role": m.role, "content": m.content} for m in conversation.messages]
        try:
            text = _conversation_text(messages, str(path), None)
        except InputError:
            report.skipped.append(SkippedRecord(source=str(path), record_id=conversation.id, reason="no user message"))
            continue
        items.append(Item(id=conversation.id, text=text, created_at=conversation.created_at, metadata=conversation.metadata))
    _note_skipped(path, report.skipped)
    if not items:
        raise InputError(str(path), "no conversations found", "check the format")
    return items


def read_items(path: str | os.PathLike[str]) -> list[Item]:
    """Read items from a JSONL/JSON file, a review log or a run folder.

    Review logs (records with ``decision``) are folded to the final decision per item, see
    :func:`kiku.classify.review.fold_decisions`.
    """
    path = Path(path)
    if path.is_dir():
        if missing_tables(path, ("conversations",)):
            raise InputError(str(path), "folder is not a kiku run (no conversations.parquet)", "pass a run folder or a JSONL file")
        return _read_run(path)
    if not path.is_file():
        raise InputError(str(path), "file not found", "check the path")
    if path.suffix not in (".jsonl", ".json", ".ndjson"):
        return _read_with_loaders(path)
    report = LoadReport(source=str(path))
    records = list(_records(path, report))
    if records and isinstance(records[0][0], dict) and not KNOWN_KEYS & set(records[0][0]):
        return _read_with_loaders(path)
    if records and isinstance(records[0][0], dict) and "decision" in records[0][0]:
        from kiku.classify.review import fold_decisions

        _note_skipped(path, report.skipped)
        return fold_decisions([r for r, _ in records], source=str(path))
    items = []
    for index, (record, line) in enumerate(records):
        try:
            items.append(item_from_record(record, str(path), line, index))
        except InputError as exc:
            reason = f"{exc.problem}; {exc.hint}" if exc.hint else exc.problem
            report.skip(line, reason, record_id=_record_id(record))
    if not items:
        raise _nothing_usable(path, report.skipped, "items")
    _note_skipped(path, report.skipped)
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise InputError(str(path), f"duplicate id {item.id!r}", "give every record a unique id")
        seen.add(item.id)
    return items


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSONL through a temporary file and rename (never half-written)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    temporary.replace(path)
    return path
