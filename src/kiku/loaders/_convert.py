"""Turning raw records (dicts from JSON, rows from tables) into draft conversations.

A reader converts each raw record with these helpers. Any problem with a record raises
:class:`RecordError` with a one-line reason naming the field; the reader catches it and
records the record as skipped. :func:`kiku.loaders.load_conversations` then checks drafts
centrally (empty, duplicate ids) and builds the final :class:`~kiku.records.Conversation`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiku.records import Message, normalise_role


class RecordError(ValueError):
    """One input record cannot be used; the message is the one-line reason."""

    def __init__(self, reason: str, record_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.record_id = record_id


@dataclass
class Draft:
    """A conversation as read from the source, before the central checks.

    ``line`` is where the record starts (a line for text files, a 1-based row for tables);
    ``id`` is None when the source carried none (an id is then made from the file and line).
    ``created_at`` and message times are already parsed (or None). ``dropped_parts`` counts
    non-text parts left out of the text, by type; ``notes`` lists repairs (a bad time dropped...).
    The central loader stores both in metadata (``non_text_parts``, ``load_notes``) and the report.
    """

    line: int | None
    id: str | None
    messages: list[Message]
    created_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # the file inside a folder input, when not the input itself
    dropped_parts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


ROLE_KEYS = ("role", "from", "sender", "author", "speaker")
CONTENT_KEYS = ("content", "value", "text", "message")
TIME_KEYS = ("created_at", "timestamp", "create_time", "time")


def is_missing(value: Any) -> bool:
    """None, NaN, or pandas/pyarrow nulls."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return False


def parse_time(value: Any) -> datetime | None:
    """Parse an ISO-8601 string, a datetime, or Unix seconds/milliseconds; None for missing.

    Raises ValueError when the value is present but not a time.

    >>> parse_time("2025-05-29T22:11:46.173975").isoformat()
    '2025-05-29T22:11:46.173975'
    >>> parse_time(1700000000).isoformat()
    '2023-11-14T22:13:20+00:00'
    """
    if is_missing(value) or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a time, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            try:
                return parse_time(float(text))
            except ValueError:
                raise ValueError(f"not an ISO-8601 time: {value!r}") from None
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return value.to_pydatetime()
    raise ValueError(f"expected a time, got {type(value).__name__}")


def lenient_time(value: Any, field_name: str, notes: list[str]) -> datetime | None:
    """Parse a time; on a bad value keep None and add a note (the record is kept)."""
    try:
        return parse_time(value)
    except (ValueError, OverflowError, OSError) as exc:
        notes.append(f"{field_name}: {exc}; the time was dropped")
        return None


def type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


def content_text(content: Any, field_name: str, dropped: dict[str, int]) -> str:
    """The text of a message ``content``: a string, or a list of parts (strings or ``{"type": "text", "text"}``).

    Non-text parts (images, files, tool calls) are left out and counted in ``dropped`` by type.
    Raises RecordError when the content is neither.

    >>> dropped = {}
    >>> content_text([{"type": "text", "text": "hi"}, {"type": "image_url"}], "content", dropped), dropped
    ('hi', {'image_url': 1})
    """
    if is_missing(content):
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (bytes, bytearray)):  # binary text columns in Parquet / datasets
        return bytes(content).decode("utf-8", errors="replace")
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str) and part.get("type", "text") in ("text", "input_text", "output_text"):
                texts.append(part["text"])
            elif isinstance(part, dict):
                kind = str(part.get("type") or part.get("content_type") or "object")
                dropped[kind] = dropped.get(kind, 0) + 1
            else:
                raise RecordError(f"wrong type: field '{field_name}' has a {type_name(part)} part; expected text parts; fix the record")
        return "\n".join(texts)
    raise RecordError(f"wrong type: field '{field_name}' must be a string or a list of text parts, got {type_name(content)}; fix the record")


def parse_messages(raw: Any, field_name: str = "messages", notes: list[str] | None = None) -> tuple[list[Message], dict[str, int]]:
    """Turn a list of ``{role|from|sender, content|value|text, created_at?}`` dicts into Messages.

    Accepts a JSON string holding such a list (as CSV cells do). Returns the messages and the
    count of non-text parts left out, by type. Raises RecordError naming the field at fault.

    >>> msgs, _ = parse_messages([{"from": "human", "value": "hi"}, {"role": "gpt", "content": "hello"}])
    >>> [(m.role, m.content) for m in msgs]
    [('user', 'hi'), ('assistant', 'hello')]
    """
    notes = [] if notes is None else notes
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise RecordError(f"wrong type: field '{field_name}' is a string that is not a JSON list of messages; fix the record") from None
        except RecursionError:
            raise RecordError(f"too deeply nested: field '{field_name}' nests lists/objects past what can be read; flatten it") from None
    if hasattr(raw, "tolist"):  # numpy arrays from parquet / pandas
        raw = raw.tolist()
    if not isinstance(raw, list):
        raise RecordError(f"wrong type: field '{field_name}' must be a list of messages, got {type_name(raw)}; fix the record")
    messages: list[Message] = []
    dropped: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"{field_name}[{index}]"
        if not isinstance(item, dict):
            raise RecordError(f"wrong type: field '{where}' must be an object with a role and a content, got {type_name(item)}; fix the record")
        role_key = next((k for k in ROLE_KEYS if k in item), None)
        if role_key is None:
            raise RecordError(f"missing field: '{where}.role' (or from/sender); add the speaker of each message")
        raw_role = item[role_key]
        if isinstance(raw_role, dict) and "role" in raw_role:  # {"author": {"role": "user"}}
            raw_role = raw_role["role"]
        if not isinstance(raw_role, str):
            raise RecordError(f"wrong type: field '{where}.{role_key}' must be a string, got {type_name(raw_role)}; fix the record")
        try:
            role = normalise_role(raw_role)
        except ValueError as exc:
            raise RecordError(f"unknown role in '{where}.{role_key}': {exc}; fix the record") from None
        content_key = next((k for k in CONTENT_KEYS if k in item), None)
        if content_key is None:
            raise RecordError(f"missing field: '{where}.content' (or value/text); add the text of each message")
        text = content_text(item[content_key], f"{where}.{content_key}", dropped)
        time_key = next((k for k in TIME_KEYS if k in item), None)
        created = lenient_time(item[time_key], f"{where}.{time_key}", notes) if time_key else None
        messages.append(Message(role=role, content=text, created_at=created))
    return messages, dropped


def record_id(value: Any, field_name: str) -> str | None:
    """A record id as a string; integers (and integral floats, as pandas writes them) are accepted.

    >>> record_id(7.0, "id"), record_id(" a1 ", "id"), record_id(None, "id")
    ('7', 'a1', None)
    """
    if is_missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isfinite(value):  # pandas writes integer ids with gaps as floats
        value = int(value) if value.is_integer() else value
        return str(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(f"wrong type: field '{field_name}' must be a string or an integer, got {type_name(value)}; fix the record")
    text = str(value).strip()
    return text or None


def jsonable(value: Any) -> Any:
    """Make a value from a table cell JSON-friendly (numpy scalars/arrays, timestamps, NaN)."""
    if is_missing(value):
        return None
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> tuple[str, int]:
    """Replace lone surrogates (a JSON ``"\\ud800"`` without its pair) with U+FFFD; return the text and how many.

    Such a string cannot be written as UTF-8, so it would stop the run when stored.

    >>> replace_surrogates("caf\\ud800 ok")
    ('caf\ufffd ok', 1)
    """
    if text.isascii():
        return text, 0
    return _SURROGATE.subn("\ufffd", text)


def repair_json(value: Any) -> tuple[Any, int, int]:
    """Make a JSON-like value writable: lone surrogates in strings (and keys) become U+FFFD, infinite numbers null.

    Containers are repaired in place, without recursion (however deep they are). Returns the
    value, the number of surrogates replaced, and the number of non-finite numbers nulled.

    >>> repair_json({"w": float("inf"), "note": ["x\\udc80"]})
    ({'w': None, 'note': ['x\ufffd']}, 1, 1)
    """
    counts = [0, 0]

    def fixed(item: Any) -> Any:
        if isinstance(item, str):
            text, replaced = replace_surrogates(item)
            counts[0] += replaced
            return text
        if isinstance(item, float) and not math.isfinite(item):
            counts[1] += 1
            return None
        return item

    root = fixed(value)
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                item = node[key]
                new_key = fixed(key)
                if new_key != key:
                    del node[key]
                node[new_key] = fixed(item)
                stack.append(node[new_key])
        elif isinstance(node, list):
            for index, item in enumerate(node):
                node[index] = fixed(item)
            stack.extend(node)
    return root, counts[0], counts[1]
