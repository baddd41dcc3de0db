"""Guess an input's format from its name and a peek at its first bytes or first record.

Only the first record is parsed (at most a few MiB are read), so detection is cheap on any size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kiku.errors import InputError
from kiku.loaders._stream import first_line_is_json, iter_json_stream, iter_jsonl
from kiku.loaders.json_formats import JSONL_SUFFIXES
from kiku.loaders.kura import is_kura_checkpoint
from kiku.loaders.report import LoadReport
from kiku.loaders.tabular import is_data_file, is_saved_dataset

FORMAT_NAMES = ("jsonl", "kura", "kura-checkpoint", "claude", "chatgpt", "sharegpt", "queries", "csv", "parquet", "hf")


def _unknown(source: str, what: str) -> InputError:
    return InputError(source, f"unknown format ({what})", f"pass --format one of {', '.join(FORMAT_NAMES)}")


def detect_format(path: str | os.PathLike[str], source: str | None = None) -> str:
    """Return the format name of a file or folder, or raise InputError saying to pass ``--format``.

    Rules: a folder with summaries.jsonl + conversations.jsonl is ``kura-checkpoint``; a folder
    with dataset_info.json/state.json (or holding data files) is ``hf``; ``.csv``/``.tsv`` is
    ``csv``; ``.parquet`` is ``parquet``; JSON Lines or a JSON array is judged by its first
    record: ``mapping`` -> chatgpt, ``chat_messages`` -> claude, ``conversations`` with ``from``
    -> sharegpt, ``query`` -> queries, ``chat_id`` -> kura, ``messages`` (or other usual fields) -> jsonl.
    A ``.zip`` (as ChatGPT and Claude.ai exports arrive) is judged by its ``conversations.json``
    (or its only data file), a ``.gz`` by the file inside (``chats.jsonl.gz`` as ``chats.jsonl``). ``source`` names the input in errors (default: ``path``).

    >>> detect_format("tests/data/sharegpt-truncated.json")  # doctest: +SKIP
    'sharegpt'
    """
    file = Path(path)
    source = source or os.fspath(path)
    if not file.exists():
        raise InputError(source, "file not found", "check the path (or pass --format hf for a Hugging Face hub dataset name)")
    if file.is_dir():
        if is_kura_checkpoint(file):
            return "kura-checkpoint"
        if is_saved_dataset(file) or any(is_data_file(p) for p in file.rglob("*") if p.is_file()):
            return "hf"
        raise _unknown(source, "a folder that is neither a Kura checkpoint nor a dataset")
    suffix = file.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".zip", ".gz"):
        from kiku.loaders.archive import extracted_member

        with extracted_member(file, source) as (member, member_source):
            return detect_format(member, member_source)
    problems = LoadReport(source=source)
    first = first_record(file, source, problems)
    if first is None and problems.skipped:
        raise InputError(
            source, f"no record could be read at the start of the file (first problem: {problems.skipped[0].one_line()})",
            "fix the file, or pass --format to read on past the bad records",
        )
    if first is None:
        raise _unknown(source, "no JSON record found at the start of the file")
    return format_of_record(first, source)


def first_record(file: Path, source: str | None = None, problems: LoadReport | None = None) -> Any:
    """The first JSON record of a JSON Lines file or JSON array (None if none parses).

    Lines that could not be read on the way are recorded in ``problems`` (when given).
    """
    source = source or os.fspath(file)
    quiet = problems if problems is not None else LoadReport(source=source)
    try:
        with open(file, "rb") as handle:
            head = handle.read(64).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    except OSError as exc:
        raise InputError(source, f"cannot read the file ({exc.strerror or exc})", "check that it exists and is readable") from None
    if file.suffix.lower() in JSONL_SUFFIXES:
        records = _first_objects(iter_jsonl(file, quiet))
    elif head.startswith("["):
        records = iter_json_stream(file, quiet)
    elif head.startswith("{"):
        records = iter_jsonl(file, quiet) if first_line_is_json(file) else iter_json_stream(file, quiet)
    else:
        return None
    try:
        for _, record in records:
            return record
    finally:
        records.close()
    return None


def _first_objects(records: Iterator[tuple[int, Any]], limit: int = 1000) -> Iterator[tuple[int, Any]]:
    """Skip malformed lines and non-objects (up to ``limit`` lines) to find the first record."""
    try:
        for line, record in records:
            if isinstance(record, dict):
                yield line, record
                return
            if line >= limit:
                return
    finally:
        records.close()


def format_of_record(record: Any, source: str) -> str:
    """The format a first record belongs to (see :func:`detect_format`)."""
    if not isinstance(record, dict):
        raise _unknown(source, f"the first record is a {type(record).__name__}, not an object")
    if isinstance(record.get("mapping"), dict) and ("current_node" in record or "title" in record):
        return "chatgpt"
    if "chat_messages" in record:
        return "claude"
    conversations = record.get("conversations")
    if isinstance(conversations, list) and (not conversations or isinstance(conversations[0], dict) and "from" in conversations[0]):
        return "sharegpt"
    if "messages" in record:
        return "kura" if "chat_id" in record else "jsonl"
    if "query" in record:
        return "queries"
    if any(key in record for key in ("text", "prompt", "question", "conversations")):
        return "jsonl"
    raise _unknown(source, f"the first record has fields {', '.join(list(record)[:8])}")
