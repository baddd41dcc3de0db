"""Load conversations from chat logs, exports and query lists, one at a time, never losing a record silently.

Entry point::

    report = LoadReport()
    for conversation in load_conversations("chats.jsonl", format=None, mapping=None, report=report):
        ...
    report.skipped   # list[SkippedRecord]: every record not loaded, with line and reason
    report.warnings  # list[str]: repairs (invalid UTF-8 replaced, file cut off mid-record...)

Formats (``--format``; detected from the name and first record when omitted):

===================  ===========================================================================
``jsonl``            kiku JSON Lines: ``{"id", "created_at"?, "messages": [{"role", "content"}], "metadata"?}``
``kura``             Kura's conversation dump (JSON Lines with ``chat_id``)
``kura-checkpoint``  a Kura checkpoint folder (its ``conversations.jsonl``; see :func:`read_kura_checkpoint`)
``claude``           Claude.ai export ``conversations.json``
``chatgpt``          ChatGPT export ``conversations.json`` (the current branch of each tree)
``sharegpt``         ShareGPT ``[{"id", "conversations": [{"from", "value"}]}]``, also cut-off files
``queries``          query-document pairs ``[{"query_id", "query", "matching_document", ...}]``
``csv``              CSV/TSV with a header, see :class:`ColumnMapping`
``parquet``          Parquet, see :class:`ColumnMapping`
``hf``               a Hugging Face dataset folder (``save_to_disk``), a folder of data files, or a hub name
===================  ===========================================================================

A ``.zip`` holding the file (as ChatGPT and Claude.ai exports arrive) is read in place of it:
its ``conversations.json``, or its only data file. A gzipped file (``chats.jsonl.gz``,
``export.json.gz``, ``queries.csv.gz``) is decompressed to a temporary file and read the same way.

Central checks for every format: a conversation with no non-empty message is skipped; a
repeated id is skipped (the first is kept, the reason names the line of the first); a made-up
id (``<file stem>-<line>`` for a record without one) never takes an id the file gives (see
:func:`free_id`); lone surrogates become U+FFFD and infinite numbers null, with a note; invalid
``metadata["imported_facets"]`` is left out with a note; an empty, unreadable or unusable file
raises :class:`~kiku.errors.InputError` with one line saying what to do. docs/bad-input.md
lists every case.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from kiku.errors import InputError
from kiku.loaders._convert import Draft, repair_json, replace_surrogates
from kiku.loaders.archive import extracted_member, is_archive
from kiku.loaders.detect import FORMAT_NAMES, detect_format
from kiku.loaders.json_formats import read_chatgpt, read_claude, read_jsonl, read_queries, read_sharegpt
from kiku.loaders.kura import KuraCheckpoint, compute_levels, read_kura_checkpoint, read_kura_checkpoint_conversations
from kiku.loaders.mapping import ColumnMapping
from kiku.loaders.report import LoadReport
from kiku.loaders.tabular import read_csv, read_hf, read_parquet
from kiku.records import IMPORTED_FACETS, Conversation, ImportedFacets

__all__ = [
    "FORMATS",
    "ColumnMapping",
    "KuraCheckpoint",
    "LoadReport",
    "Reader",
    "compute_levels",
    "detect_format",
    "load_conversations",
    "read_kura_checkpoint",
]

#: A reader: ``(path, mapping or None, report) -> iterator of drafts``; it records bad records in the report.
Reader = Callable[[Path, "ColumnMapping | None", LoadReport], Iterator[Draft]]

FORMATS: dict[str, Reader] = {
    "jsonl": read_jsonl,
    "kura": read_jsonl,
    "kura-checkpoint": read_kura_checkpoint_conversations,
    "claude": read_claude,
    "chatgpt": read_chatgpt,
    "sharegpt": read_sharegpt,
    "queries": read_queries,
    "csv": read_csv,
    "parquet": read_parquet,
    "hf": read_hf,
}
assert set(FORMATS) == set(FORMAT_NAMES)

FOLDER_FORMATS = ("kura-checkpoint", "hf")


def load_conversations(
    path: str | os.PathLike[str],
    format: str | None = None,  # noqa: A002 - the CLI's --format
    mapping: ColumnMapping | dict[str, Any] | str | None = None,
    report: LoadReport | None = None,
) -> Iterator[Conversation]:
    """Stream the conversations of a file or folder, recording every skipped record in ``report``.

    Args:
        path: a file, a folder (Kura checkpoint, Hugging Face dataset), or a hub dataset name
            with ``format="hf"``.
        format: one of :data:`FORMATS`; detected from the name and first record when None.
        mapping: which columns/fields hold what (:class:`ColumnMapping`, a dict, or
            ``"id=col,text=col"``); for csv, parquet, hf, jsonl and queries.
        report: filled while iterating: ``source``, ``format``, ``loaded``, ``skipped``,
            ``warnings``. Pass one to read it afterwards. While iterating,
            ``report.current_source`` / ``report.current_line`` say where the conversation
            just yielded starts (for the run store's ``source`` / ``source_line``).

    Returns:
        A generator of :class:`~kiku.records.Conversation`. Records are read lazily, one at
        a time; the file is never loaded whole.

    Raises:
        InputError: at call time for a missing/empty/unreadable file or an unknown format;
            while iterating for a missing mapped column, or (after the last record) when no
            usable conversation was found.

    Example:
        >>> report = LoadReport()
        >>> convs = load_conversations("examples/wandb-queries.jsonl", report=report)  # doctest: +SKIP
        >>> next(convs).messages[0].role                                                 # doctest: +SKIP
        'user'
    """
    source = os.fspath(path)
    report = report if report is not None else LoadReport()
    file = Path(path)
    name = _check_format(format, source)
    if not file.exists() and name != "hf":
        raise_missing(source)
    columns = ColumnMapping.coerce(mapping)
    if is_archive(file):
        archive = extracted_member(file, source)
        member, member_source = archive.__enter__()
        try:
            name = _prepare(member, member_source, name, report)
        except BaseException:
            archive.__exit__(None, None, None)
            raise
        return _closing(_load(FORMATS[name], member, columns, report), archive)
    name = _prepare(file, source, name, report)
    return _load(FORMATS[name], file, columns, report)


def raise_missing(source: str) -> NoReturn:
    """The one-line InputError for an input path that does not exist."""
    raise InputError(source, "file not found", "check the path (or pass --format hf for a Hugging Face hub dataset name)")


def _prepare(file: Path, source: str, name: str | None, report: LoadReport) -> str:
    """Check the input can be read, detect its format when not given, and name it in the report."""
    if file.is_file():
        _check_not_empty(file, source)
    if name is None:
        name = detect_format(file, source)
    if file.is_dir() and name not in FOLDER_FORMATS:
        raise InputError(source, f"is a folder, but format {name!r} reads a file", "pass the file inside it, or --format kura-checkpoint / hf")
    report.source, report.format = source, name
    return name


def _closing(conversations: Iterator[Conversation], archive: Any) -> Iterator[Conversation]:
    """Yield from ``conversations``, then remove the archive member extracted for them."""
    try:
        yield from conversations
    finally:
        archive.__exit__(None, None, None)


def _check_format(format: str | None, source: str) -> str | None:  # noqa: A002
    if format is None:
        return None
    name = format.strip().lower().replace("_", "-")
    if name not in FORMATS:
        raise InputError(source, f"unknown format {format!r}", f"pass --format one of {', '.join(FORMATS)}")
    return name


def _check_not_empty(file: Path, source: str) -> None:
    try:
        size = file.stat().st_size
        with open(file, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise InputError(source, f"cannot read the file ({exc.strerror or exc})", "check that it exists and is readable") from None
    if size == 0 or (size <= len(head) and not head.strip(b" \t\r\n\xef\xbb\xbf")):
        raise InputError(source, "the file is empty", "export the conversations again, or pass another file")


def _load(reader: Reader, file: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Conversation]:
    checker = RecordChecker(report)
    for draft in reader(file, mapping, report):
        conversation = checker.accept(draft)
        if conversation is not None:
            yield conversation
    checker.finish()


class RecordChecker:
    """The central checks of every format (module docstring), one draft at a time in input order.

    ``accept(draft)`` returns the checked :class:`~kiku.records.Conversation`, or None for a
    skipped record (its reason in the report); :meth:`finish` adds the summary warnings after
    the last record and raises when nothing was loaded. Repeated and made-up ids need every
    earlier record, so one checker sees a whole input, in order.
    """

    def __init__(self, report: LoadReport) -> None:
        self.report = report
        self.first_seen: dict[str, tuple[str, int | None, bool]] = {}  # id -> (source, line, made up by kiku)
        self.made_ids = self.moved_ids = 0
        self.dropped_parts: dict[str, int] = {}
        self.with_dropped = 0

    def accept_plain(self, conversation_id: str, source: str, line: int | None) -> bool:
        """Count a record that needs no check but its id's (checked elsewhere: a Ray worker, see
        ``kiku.loaders.parallel``): True when its id is new, then it is loaded exactly as
        :meth:`accept` would load it; False when the id was seen before (then ``accept`` must
        judge the record)."""
        if conversation_id in self.first_seen:
            return False
        self.first_seen[conversation_id] = (source, line, False)
        self.report.loaded += 1
        self.report.set_current(source, line)
        return True

    def accept(self, draft: Draft) -> Conversation | None:
        report, first_seen = self.report, self.first_seen
        source = draft.source or report.source
        if not any(message.content.strip() for message in draft.messages):
            what = "no messages" if not draft.messages else "no message with text"
            report.skip(draft.line, f"empty conversation: {what}; nothing to analyse", draft.id, source=source)
            return None
        _repair(draft)
        _check_imported(draft)
        conversation_id = draft.id
        if conversation_id is None:
            made = f"{_stem(source)}-{draft.line}"
            conversation_id = free_id(made, first_seen)
            self.made_ids += 1
            self.moved_ids += conversation_id != made
        elif conversation_id in first_seen:
            first_source, first_line, first_made = first_seen[conversation_id]
            where = f"line {first_line}" + (f" of {first_source}" if first_source != source else "")
            if not first_made:
                report.skip(
                    draft.line,
                    f"duplicate id {conversation_id!r}: first seen on {where}; the first was kept, give each conversation its own id",
                    conversation_id,
                    source=source,
                )
                return None
            given, conversation_id = conversation_id, free_id(conversation_id, first_seen)
            draft.notes.append(
                f"id {given!r} had already been made up for the record on {where}, which had no id; this record was loaded as "
                f"{conversation_id!r} (metadata['given_id'] keeps {given!r}); give every record an id to avoid this"
            )
            draft.metadata["given_id"] = given
        metadata = draft.metadata
        if draft.dropped_parts:
            metadata = {**metadata, "non_text_parts": draft.dropped_parts}
        if draft.notes:
            metadata = {**metadata, "load_notes": draft.notes}
        try:
            conversation = Conversation(id=conversation_id, created_at=draft.created_at, messages=draft.messages, metadata=metadata)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            report.skip(draft.line, f"invalid record: field '{field}': {error['msg']}; fix the record", conversation_id, source=source)
            return None
        for note in draft.notes:
            report.warn(f"{source}:{draft.line}: {note}; the record was kept", kind="record repaired")
        if draft.dropped_parts:
            self.with_dropped += 1
            for kind, count in draft.dropped_parts.items():
                self.dropped_parts[kind] = self.dropped_parts.get(kind, 0) + count
        first_seen[conversation_id] = (source, draft.line, draft.id is None)
        report.loaded += 1
        report.set_current(source, draft.line)
        return conversation

    def finish(self) -> None:
        report = self.report
        if self.made_ids:
            moved = (f"; {self.moved_ids} of them were given a '~N' suffix because the file already used the id"
                     if self.moved_ids else "")
            report.warn(
                f"{report.source}: {self.made_ids} records had no id; ids were made from the file name and line, e.g. "
                f"'{_stem(report.source)}-1'{moved}"
            )
        if self.dropped_parts:
            listed = ", ".join(f"{kind}: {count}" for kind, count in sorted(self.dropped_parts.items()))
            report.warn(
                f"{report.source}: non-text parts were left out of the text of {self.with_dropped} conversations ({listed}); "
                "their counts are in metadata['non_text_parts']"
            )
        report.finish()
        if report.loaded == 0:
            example = f"; first: {report.skipped[0].one_line()}" if report.skipped else ""
            raise InputError(
                report.source,
                f"no usable conversations ({report.skipped_count} records skipped{example})",
                f"check that the file is {report.format}, or pass another --format",
            )


def _stem(source: str) -> str:
    """The file name without its suffix (and without ``.gz``): the start of made-up ids, ``chats.jsonl.gz`` -> ``chats``."""
    name = Path(source)
    return (Path(name.stem) if name.suffix.lower() == ".gz" else name).stem


def free_id(wanted: str, taken: Mapping[str, Any]) -> str:
    """``wanted``, or ``wanted~2``, ``wanted~3``... the first that is not in ``taken``.

    >>> free_id("chats-3", {"chats-3": 1, "chats-3~2": 1})
    'chats-3~3'
    """
    candidate, number = wanted, 1
    while candidate in taken:
        number += 1
        candidate = f"{wanted}~{number}"
    return candidate


def _repair(draft: Draft) -> None:
    """Make a draft storable: lone surrogates become U+FFFD, infinite numbers null; each repair becomes a note."""
    surrogates = 0
    if draft.id is not None:
        draft.id, surrogates = replace_surrogates(draft.id)
    for index, message in enumerate(draft.messages):
        content, replaced = replace_surrogates(message.content)
        if replaced:
            draft.messages[index] = message.model_copy(update={"content": content})
            surrogates += replaced
    draft.metadata, in_metadata, infinite = repair_json(draft.metadata)
    surrogates += in_metadata
    if surrogates:
        draft.notes.append(f"{surrogates} lone surrogate(s) (a \\ud800-\\udfff escape without its pair) replaced with U+FFFD")
    if infinite:
        draft.notes.append(f"{infinite} infinite number(s) in metadata stored as null (not valid JSON)")


def _check_imported(draft: Draft) -> None:
    """Drop ``metadata["imported_facets"]`` that are not :class:`~kiku.records.ImportedFacets`, with a note (the record is kept)."""
    raw = draft.metadata.get(IMPORTED_FACETS)
    if raw is None:
        return
    try:
        ImportedFacets.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        draft.metadata.pop(IMPORTED_FACETS)
        draft.notes.append(f"metadata.{IMPORTED_FACETS} left out: field '{where}': {error['msg']}; facets were computed from the text")
