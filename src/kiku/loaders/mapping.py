"""Which field of a record (column of a table) holds what: :class:`ColumnMapping`.

Tables (CSV, Parquet, Hugging Face datasets) and JSON Lines with other field names need to say
which column is the id, the user text (or a list of messages), the answer, the time... When no
mapping is given, kiku looks for the usual names (``id``, ``text``/``query``/``prompt``,
``response``/``answer``, ``messages``/``conversations``, ``created_at``/``timestamp``).

Example:
    >>> m = ColumnMapping.from_pairs("id=qid,text=question,metadata=source;team")
    >>> (m.id, m.text, m.metadata)
    ('qid', 'question', ['source', 'team'])
    >>> ColumnMapping().resolve(["query_id", "query", "answer", "weight"], "q.csv").model_dump(exclude_defaults=True)
    {'id': 'query_id', 'text': 'query', 'assistant': 'answer'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from kiku.errors import InputError
from kiku.loaders._convert import Draft, RecordError, content_text, jsonable, lenient_time, parse_messages, record_id
from kiku.records import Message

ID_NAMES = ("id", "chat_id", "conversation_id", "uuid", "query_id", "_id")
MESSAGES_NAMES = ("messages", "conversations", "conversation", "dialog", "turns")
TEXT_NAMES = ("text", "query", "prompt", "question", "input", "instruction", "user", "message", "content")
ASSISTANT_NAMES = ("response", "answer", "output", "completion", "assistant")
CREATED_NAMES = ("created_at", "timestamp", "created", "create_time", "date", "time")
DOCUMENT_NAMES = ("matching_document", "document")
ROLE_FIELDS = ("id", "text", "assistant", "system", "messages", "created_at", "document")


class ColumnMapping(BaseModel):
    """Names of the columns (or JSON fields) to read; None means "find the usual name".

    Attributes:
        id: column with the conversation id (ids are made from file and row when absent).
        text: column with the user message (``user`` is accepted as another name for it).
        assistant: column with the assistant's answer (optional).
        system: column with a system prompt (optional).
        messages: column holding the whole conversation, a list of ``{role, content}`` (or a
            JSON string of one); used instead of text/assistant.
        created_at: column with the time (ISO-8601 or Unix seconds).
        document: column with a retrieved/matched document. It is kept in metadata under its
            own name and is never part of the message text.
        metadata: columns copied into ``Conversation.metadata``: a list of names, or ``"rest"``
            (the default) for every column not used above, so nothing is silently dropped.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    id: str | None = None
    text: str | None = Field(default=None, validation_alias=AliasChoices("text", "user"))
    assistant: str | None = None
    system: str | None = None
    messages: str | None = None
    created_at: str | None = None
    document: str | None = None
    metadata: list[str] | Literal["rest"] = "rest"

    @classmethod
    def coerce(cls, value: ColumnMapping | Mapping[str, Any] | str | None) -> ColumnMapping | None:
        """Accept a mapping, a dict, or a ``"key=col,key=col"`` string (the CLI form)."""
        if value is None or isinstance(value, ColumnMapping):
            return value
        try:
            if isinstance(value, str):
                return cls.from_pairs(value)
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError("--map", f"invalid column mapping ({where}: {first['msg']})", f"use keys {', '.join(ROLE_FIELDS)}, metadata") from None

    @classmethod
    def from_pairs(cls, pairs: str | Iterable[str]) -> ColumnMapping:
        """Parse ``"id=qid,text=question,metadata=a;b"`` (or a list of ``key=col`` strings).

        ``metadata=rest`` keeps every other column (the default).
        """
        items = [p for p in (pairs.split(",") if isinstance(pairs, str) else pairs) if p.strip()]
        values: dict[str, Any] = {}
        for item in items:
            key, sep, column = item.partition("=")
            if not sep or not column.strip():
                raise InputError("--map", f"cannot read {item!r}", "write key=COLUMN, e.g. --map id=query_id,text=query")
            key, column = key.strip(), column.strip()
            values[key] = column if key != "metadata" or column == "rest" else [c.strip() for c in column.split(";") if c.strip()]
        return cls.coerce(values)  # type: ignore[return-value]

    def used_columns(self) -> set[str]:
        return {c for c in (self.id, self.text, self.assistant, self.system, self.messages, self.created_at) if c}

    def resolve(self, columns: Iterable[str], source: str) -> ColumnMapping:
        """Fill unset fields with the usual column names and check every named column exists.

        Raises InputError listing the available columns when a named column is missing or no
        text/messages column can be found.
        """
        columns = list(columns)
        resolved = self.model_copy(update=_defaults(columns, self))
        available = ", ".join(columns) or "(none)"
        named = [(k, getattr(resolved, k)) for k in ROLE_FIELDS if getattr(resolved, k)]
        if isinstance(resolved.metadata, list):
            named += [("metadata", c) for c in resolved.metadata]
        for key, column in named:
            if column not in columns:
                raise InputError(source, f"column {column!r} (mapped as {key}) not found", f"available columns: {available}")
        if not resolved.messages and not resolved.text:
            raise InputError(
                source,
                "no text column found",
                f"map one with --map text=COLUMN (or messages=COLUMN for chat lists); available columns: {available}",
            )
        return resolved


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _defaults(columns: list[str], given: ColumnMapping) -> dict[str, str]:
    """Usual column names for the fields the user did not set."""
    out: dict[str, str] = {}
    explicit = given.model_fields_set
    if "id" not in explicit and (found := _find(columns, ID_NAMES)):
        out["id"] = found
    if "created_at" not in explicit and (found := _find(columns, CREATED_NAMES)):
        out["created_at"] = found
    if "document" not in explicit and (found := _find(columns, DOCUMENT_NAMES)):
        out["document"] = found
    if not ({"messages", "text"} & explicit):
        if found := _find(columns, MESSAGES_NAMES):
            out["messages"] = found
        elif found := _find(columns, TEXT_NAMES):
            out["text"] = found
            if "assistant" not in explicit and (answer := _find(columns, ASSISTANT_NAMES)):
                out["assistant"] = answer
    return out


def row_to_draft(row: Mapping[str, Any], mapping: ColumnMapping, line: int | None) -> Draft:
    """Build a draft conversation from one row (dict) with a resolved mapping.

    Raises RecordError naming the field when the row cannot be used.
    """
    notes: list[str] = []
    rid = record_id(row.get(mapping.id), mapping.id) if mapping.id else None
    try:
        if mapping.messages:
            if mapping.messages not in row:
                raise RecordError(f"missing field: '{mapping.messages}' (the list of messages); add it or map another column")
            messages, dropped = parse_messages(row[mapping.messages], mapping.messages, notes)
        else:
            dropped = {}
            messages = []
            for role, column in (("system", mapping.system), ("user", mapping.text), ("assistant", mapping.assistant)):
                if column:
                    if column not in row:
                        raise RecordError(f"missing field: '{column}' (the {role} text); add it or map another column")
                    text = content_text(row[column], column, dropped)
                    if text or role == "user":
                        messages.append(Message(role=role, content=text))
    except RecordError as exc:
        exc.record_id = rid
        raise
    created = lenient_time(row.get(mapping.created_at), mapping.created_at, notes) if mapping.created_at else None
    return Draft(line=line, id=rid, messages=messages, created_at=created, metadata=_metadata(row, mapping), dropped_parts=dropped, notes=notes)


def _metadata(row: Mapping[str, Any], mapping: ColumnMapping) -> dict[str, Any]:
    if mapping.metadata == "rest":
        used = mapping.used_columns()
        keys = [k for k in row if k not in used]
    else:
        keys = list(mapping.metadata)
        if mapping.document and mapping.document not in keys:
            keys.append(mapping.document)
    metadata: dict[str, Any] = {}
    nested = row.get("metadata") if "metadata" in keys else None
    if isinstance(nested, dict):
        metadata.update(jsonable(nested))
        keys.remove("metadata")
    for key in keys:
        if key in row:
            metadata.setdefault(str(key), jsonable(row[key]))
    return metadata


class RowResolver:
    """Per-record default mapping for JSON Lines, where each record may name fields differently.

    With a user mapping every record uses it; without one, each distinct set of keys is
    resolved once to the usual names. A record with neither messages nor text raises RecordError.
    """

    def __init__(self, mapping: ColumnMapping | None) -> None:
        self.mapping = mapping
        self._cache: dict[tuple[str, ...], ColumnMapping] = {}

    def for_row(self, row: Mapping[str, Any]) -> ColumnMapping:
        keys = tuple(row)
        resolved = self._cache.get(keys)
        if resolved is None:
            base = self.mapping or ColumnMapping()
            resolved = base.model_copy(update=_defaults(list(keys), base))
            self._cache[keys] = resolved
        if not resolved.messages and not resolved.text:
            raise RecordError(
                "missing field: 'messages' (a list of {role, content}) and no text field (text/query/prompt); "
                "add it, or map a field with --map text=FIELD"
            )
        return resolved
