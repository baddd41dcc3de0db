"""Loading a JSON Lines input on an engine (``kiku run --engine ray``): parse on the workers,
judge ids on the driver, with exactly the local loader's result.

Used by the load stage when the run's engine is not the local one and the input is read as
JSON Lines (formats ``jsonl``, ``kura``, ``sharegpt`` and ``queries`` whose file holds one record
per line; other inputs load on the driver as with ``--engine local``). :func:`line_load_plan`
decides; a :class:`LinePlan` does the rest:

- **the driver cuts the file into chunks of raw lines** (:meth:`LinePlan.raw_chunks`: line
  numbers and undecoded bytes; reading bytes is cheap, parsing them is the work);
- **a worker parses each line** (:class:`ParseChunk`: decode, JSON, the format's converter and
  the central checks of :class:`kiku.loaders.RecordChecker` that need only the record itself)
  and, when the record is *plain* (no skip, repair, note, warning or made-up id: nearly every
  record of a clean file), returns its ready ``conversations.parquet`` row; every line also
  comes back as its bytes;
- **the driver takes the chunks in input order with one RecordChecker**
  (:meth:`LinePlan.rows`): a plain row whose id is new is loaded as it is
  (:meth:`~kiku.loaders.RecordChecker.accept_plain`); every other line (and a plain row whose
  id was seen before) goes through the local loader's own code (``decode_line``,
  ``parse_json_line``, ``convert_record``, ``RecordChecker.accept``) with the run's report.

So the conversations, the skipped records and the warnings, in their order, are those of a
local run; only the parsing of plain records runs elsewhere.

Example:
    >>> import pyarrow as pa
    >>> fn = ParseChunk("jsonl", None, "q.jsonl", "q.jsonl")
    >>> out = fn(pa.table({"line": [1, 2], "raw": [b'{"id": "a", "messages": [{"role": "user", "content": "hi"}]}\\n', b"{bad\\n"]}))
    >>> out.column("conversation_id").to_pylist(), out.column("plain").to_pylist()
    (['a', None], [True, False])
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from kiku.loaders._stream import NO_RECORD, JSONConstants, decode_line, iter_raw_lines, parse_json_line
from kiku.loaders.json_formats import ROW_FORMAT_BASES, Converter, convert_record, is_json_lines, row_converter
from kiku.loaders.mapping import ColumnMapping
from kiku.loaders.report import LoadReport
from kiku.records import Conversation

#: The chunk input: each line's number and bytes.
RAW_SCHEMA = pa.schema([("line", pa.int64()), ("raw", pa.large_binary())])


def _conversation_schema() -> pa.Schema:
    from kiku.store import CONVERSATION_SCHEMA

    return CONVERSATION_SCHEMA


def parsed_schema() -> pa.Schema:
    """A parsed chunk: ``line``, ``raw``, ``plain`` and the conversation row's columns (null unless plain)."""
    return pa.schema([("line", pa.int64()), ("raw", pa.large_binary()), ("plain", pa.bool_()), *_conversation_schema()])


class ParseChunk:
    """The load stage's chunk function on an engine: raw lines -> parsed lines (module docstring).

    Picklable; the converter is built on first use. ``report_source`` names the input in
    reasons (the path given), ``row_source`` fills the rows' ``source`` column (the file name).
    """

    def __init__(self, format_name: str, mapping: ColumnMapping | None, report_source: str, row_source: str) -> None:
        self.format_name = format_name
        self.mapping = mapping
        self.report_source = report_source
        self.row_source = row_source
        self._convert: Converter | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_convert": None}

    def fingerprint(self) -> str:
        from kiku.store import fingerprint

        mapping = self.mapping.model_dump(mode="json") if self.mapping is not None else None
        return fingerprint("parse-lines-v1", self.format_name, json.dumps(mapping, sort_keys=True), self.report_source,
                           self.row_source)

    def plain_row(self, line: int, raw: bytes) -> dict[str, Any] | None:
        """The conversations.parquet row of a plain record, else None (module docstring)."""
        from kiku.loaders import _check_imported, _repair
        from kiku.store import conversation_row

        if self._convert is None:
            self._convert = row_converter(self.format_name, self.mapping)
        scratch = LoadReport(source=self.report_source, format=self.format_name)
        value = parse_json_line(line, decode_line(line, raw, scratch), scratch, JSONConstants())
        if value is NO_RECORD:
            return None
        draft = convert_record(line, value, scratch, self._convert)
        if draft is None or scratch.skipped or scratch.warnings or draft.id is None or draft.source is not None:
            return None
        if draft.notes or draft.dropped_parts or not any(m.content.strip() for m in draft.messages):
            return None
        _repair(draft)
        _check_imported(draft)
        if draft.notes:
            return None
        try:
            conversation = Conversation(id=draft.id, created_at=draft.created_at, messages=draft.messages,
                                        metadata=draft.metadata)
        except ValidationError:
            return None
        return conversation_row(conversation, self.row_source, line)

    def __call__(self, table: pa.Table, progress: Callable[[int], None] | None = None) -> pa.Table:
        lines = table.column("line").to_pylist()
        raws = table.column("raw").to_pylist()
        rows = []
        for line, raw in zip(lines, raws):
            row = self.plain_row(line, raw)
            rows.append({"line": line, "raw": raw, "plain": row is not None, **(row or {})})
        if progress is not None:
            progress(len(rows))
        return pa.Table.from_pylist(rows, schema=parsed_schema())


@dataclass
class LinePlan:
    """Loading one JSON Lines input with parsing on an engine (module docstring)."""

    path: Path
    format_name: str
    mapping: ColumnMapping | None
    report: LoadReport
    row_source: str
    checker: Any = field(init=False)

    def __post_init__(self) -> None:
        from kiku.loaders import RecordChecker

        self.checker = RecordChecker(self.report)

    def function(self) -> ParseChunk:
        return ParseChunk(self.format_name, self.mapping, self.report.source, self.row_source)

    def raw_chunks(self, chunk_rows: int) -> Iterator[pa.Table]:
        """The input's lines, ``chunk_rows`` at a time, as :data:`RAW_SCHEMA` tables."""
        lines: list[int] = []
        raws: list[bytes] = []
        for number, raw in iter_raw_lines(self.path, self.report.source):
            lines.append(number)
            raws.append(raw)
            if len(lines) >= chunk_rows:
                yield pa.table({"line": lines, "raw": raws}, schema=RAW_SCHEMA)
                lines, raws = [], []
        if lines:
            yield pa.table({"line": lines, "raw": raws}, schema=RAW_SCHEMA)

    def rows(self, parsed: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """The conversations of parsed chunks given in input order, as CONVERSATION_SCHEMA tables."""
        from kiku.store import conversation_row

        schema = _conversation_schema()
        convert = row_converter(self.format_name, self.mapping)
        constants = JSONConstants()
        for table in parsed:
            plain = table.column("plain").to_pylist()
            ids = table.column("conversation_id").to_pylist()
            lines = table.column("line").to_pylist()
            keep: list[int] = []  # rows of this table taken as they are
            pieces: list[pa.Table] = []
            for index, (is_plain, conversation_id, line) in enumerate(zip(plain, ids, lines)):
                if is_plain and self.checker.accept_plain(conversation_id, self.report.source, line):
                    keep.append(index)
                    continue
                # everything else, exactly as the local loader does it, with the run's report
                raw = table.column("raw")[index].as_py()
                value = parse_json_line(line, decode_line(line, raw, self.report), self.report, constants)
                draft = None if value is NO_RECORD else convert_record(line, value, self.report, convert)
                conversation = None if draft is None else self.checker.accept(draft)
                if conversation is None:
                    continue
                if keep:
                    pieces.append(table.take(keep).select(schema.names).cast(schema))
                    keep = []
                pieces.append(pa.Table.from_pylist([conversation_row(conversation, self.row_source, self.report.current_line)],
                                                   schema=schema))
            if keep:
                pieces.append(table.take(keep).select(schema.names).cast(schema))
            yield from pieces

    def finish(self) -> None:
        """The summary warnings; raises InputError when nothing was loaded (as the local loader)."""
        self.checker.finish()


def line_load_plan(path: Path, format: str | None, mapping: ColumnMapping | dict[str, Any] | str | None,  # noqa: A002
                   report: LoadReport, row_source: str) -> LinePlan | None:
    """A :class:`LinePlan` when ``path`` is read record by record as JSON Lines, else None (load it
    with :func:`kiku.loaders.load_conversations`). Checks the input as that function does
    (missing, empty or unreadable file, unknown format: one-line InputError)."""
    from kiku.errors import InputError
    from kiku.loaders import _check_format, _prepare
    from kiku.loaders.archive import is_archive

    source = str(path)
    name = _check_format(format, source)
    file = Path(path)
    if not file.exists():
        if name == "hf":
            return None
        raise InputError(source, "file not found", "check the path (or pass --format hf for a Hugging Face hub dataset name)")
    if is_archive(file) or file.is_dir():
        return None
    name = _prepare(file, source, name, report)
    if name not in ROW_FORMAT_BASES or not is_json_lines(file, source):
        return None
    return LinePlan(file, name, ColumnMapping.coerce(mapping), report, row_source)
