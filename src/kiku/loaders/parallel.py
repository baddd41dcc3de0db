"""Loading a JSON Lines input on an engine (``kiku run --engine ray``): parse on the workers,
judge ids on the driver, with exactly the local loader's result.

Used by the load stage when the run's engine is not the local one and the input is JSON Lines
(formats ``jsonl``, ``kura``, ``sharegpt`` and ``queries`` whose file holds one record per line)
or a Parquet file; other inputs (one JSON document such as a ChatGPT or Claude export, CSV,
Hugging Face datasets, archives) load on the driver as with ``--engine local``.
:func:`engine_load_plan` decides; a :class:`LinePlan` or :class:`ParquetPlan` does the rest:

- **the driver cuts the input into chunks** (``raw_chunks``): raw lines (line numbers and
  undecoded bytes: reading bytes is cheap, parsing them is the work), or the Parquet file's
  record batches with their row numbers (Ray Data over Parquet shards);
- **a worker turns each record into its row** (:class:`ParseChunk`, :class:`ParseRowsChunk`:
  decode, JSON, the format's converter and the central checks of
  :class:`kiku.loaders.RecordChecker` that need only the record itself) when the record is
  *plain* (no skip, repair, note, warning or made-up id: nearly every record of a clean file);
- **the driver takes the chunks in input order with one RecordChecker** (``rows``): a plain row
  whose id is new is loaded as it is (:meth:`~kiku.loaders.RecordChecker.accept_plain`); every
  other record (and a plain row whose id was seen before) goes through the local loader's own
  code (``decode_line``, ``parse_json_line``, ``convert_record`` or ``tabular.row_draft``, then
  ``RecordChecker.accept``) with the run's report, from the line's bytes (which come back with
  every parsed line) or from the Parquet batch read again.

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
        self._constants: JSONConstants | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_convert": None, "_constants": None}

    def fingerprint(self) -> str:
        from kiku.store import fingerprint

        mapping = self.mapping.model_dump(mode="json") if self.mapping is not None else None
        return fingerprint("parse-lines-v1", self.format_name, json.dumps(mapping, sort_keys=True), self.report_source,
                           self.row_source)

    def plain_row(self, line: int, raw: bytes) -> dict[str, Any] | None:
        """The conversations.parquet row of a plain record, else None (module docstring)."""
        if self._convert is None or self._constants is None:
            self._convert, self._constants = row_converter(self.format_name, self.mapping), JSONConstants()
        scratch = LoadReport(source=self.report_source, format=self.format_name)
        value = parse_json_line(line, decode_line(line, raw, scratch), scratch, self._constants)
        if value is NO_RECORD:
            return None
        return plain_conversation_row(convert_record(line, value, scratch, self._convert), scratch, self.row_source)

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


def plain_conversation_row(draft: Any, scratch: LoadReport, row_source: str) -> dict[str, Any] | None:
    """The conversations.parquet row of ``draft`` when its record is plain: nothing was recorded in
    ``scratch`` (no skip, no warning), it has its own id, text, no note, and the central checks
    would change nothing (``RecordChecker.accept`` gives the same row for it); else None."""
    from kiku.loaders import _check_imported, _repair
    from kiku.store import conversation_row

    if draft is None or scratch.skipped or scratch.warnings or draft.id is None:
        return None
    if draft.source not in (None, scratch.source):
        return None
    if draft.notes or draft.dropped_parts or not any(m.content.strip() for m in draft.messages):
        return None
    _repair(draft)
    _check_imported(draft)
    if draft.notes:
        return None
    try:
        conversation = Conversation(id=draft.id, created_at=draft.created_at, messages=draft.messages, metadata=draft.metadata)
    except ValidationError:
        return None
    return conversation_row(conversation, row_source, draft.line)


#: The column of a Parquet chunk that carries each row's 1-based number in the file.
LINE_COLUMN = "__kiku_line"


class ParseRowsChunk:
    """The load stage's chunk function for a Parquet input: a record batch (with its
    :data:`LINE_COLUMN`) -> parsed rows (``raw`` is null: the driver reads a row again when it
    needs it). ``resolved``: the column mapping resolved against the file's columns.

    >>> fn = ParseRowsChunk(ColumnMapping(id="id", text="q"), "t.parquet", "t.parquet")
    >>> out = fn(pa.table({"id": ["a", "b"], "q": ["hi", ""], LINE_COLUMN: [1, 2]}))
    >>> out.column("plain").to_pylist(), out.column("conversation_id").to_pylist()
    ([True, False], ['a', None])
    """

    def __init__(self, resolved: ColumnMapping, report_source: str, row_source: str) -> None:
        self.resolved = resolved
        self.report_source = report_source
        self.row_source = row_source

    def fingerprint(self) -> str:
        from kiku.store import fingerprint

        return fingerprint("parse-rows-v1", json.dumps(self.resolved.model_dump(mode="json"), sort_keys=True),
                           self.report_source, self.row_source)

    def __call__(self, table: pa.Table, progress: Callable[[int], None] | None = None) -> pa.Table:
        from kiku.loaders.tabular import row_draft

        lines = table.column(LINE_COLUMN).to_pylist()
        out = []
        for line, record in zip(lines, table.drop_columns([LINE_COLUMN]).to_pylist()):
            scratch = LoadReport(source=self.report_source, format="parquet")
            row = plain_conversation_row(row_draft(line, record, self.resolved, scratch), scratch, self.row_source)
            out.append({"line": line, "raw": None, "plain": row is not None, **(row or {})})
        if progress is not None:
            progress(len(out))
        return pa.Table.from_pylist(out, schema=parsed_schema())


class EnginePlan:
    """What a :class:`LinePlan` and a :class:`ParquetPlan` share: the in-order pass on the driver."""

    report: LoadReport
    row_source: str
    checker: Any

    def slow_draft(self, table: pa.Table, index: int, line: int) -> Any:
        """The draft of row ``index`` of a parsed chunk by the local loader's own code, or None."""
        raise NotImplementedError

    def start_chunk(self, position: int) -> None:
        """Called before the pass takes parsed chunk number ``position`` (in input order)."""

    def rows(self, parsed: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """The conversations of parsed chunks given in input order, as CONVERSATION_SCHEMA tables."""
        from kiku.store import conversation_row

        schema = _conversation_schema()
        for position, table in enumerate(parsed):
            self.start_chunk(position)
            plain = table.column("plain").to_pylist()
            ids = table.column("conversation_id").to_pylist()
            lines = table.column("line").to_pylist()
            keep: list[int] = []  # rows of this table taken as they are
            pieces: list[pa.Table] = []
            for index, (is_plain, conversation_id, line) in enumerate(zip(plain, ids, lines)):
                if is_plain and self.checker.accept_plain(conversation_id, self.report.source, line):
                    keep.append(index)
                    continue
                # everything else exactly as the local loader does it, with the run's report
                draft = self.slow_draft(table, index, line)
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


@dataclass
class LinePlan(EnginePlan):
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
        self._convert = row_converter(self.format_name, self.mapping)
        self._constants = JSONConstants()

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

    def slow_draft(self, table: pa.Table, index: int, line: int) -> Any:
        raw = table.column("raw")[index].as_py()
        value = parse_json_line(line, decode_line(line, raw, self.report), self.report, self._constants)
        return None if value is NO_RECORD else convert_record(line, value, self.report, self._convert)


@dataclass
class ParquetPlan(EnginePlan):
    """Loading one Parquet file with its record batches parsed on an engine (module docstring)."""

    path: Path
    resolved: ColumnMapping
    report: LoadReport
    row_source: str
    checker: Any = field(init=False)

    def __post_init__(self) -> None:
        from kiku.loaders import RecordChecker

        self.checker = RecordChecker(self.report)
        self._chunk_rows = 0
        self._again: Iterator[Any] | None = None  # the batches read a second time, in step with the pass
        self._batch: Any = None
        self._records: list[dict[str, Any]] | None = None

    def function(self) -> ParseRowsChunk:
        return ParseRowsChunk(self.resolved, self.report.source, self.row_source)

    def _batches(self) -> Iterator[Any]:
        from kiku.loaders.tabular import open_parquet

        return iter(open_parquet(self.path, self.report.source).iter_batches(batch_size=self._chunk_rows))

    def raw_chunks(self, chunk_rows: int) -> Iterator[pa.Table]:
        """The file's record batches of ``chunk_rows`` rows (fewer at a row group's end), each with
        its rows' 1-based numbers in :data:`LINE_COLUMN`."""
        self._chunk_rows = chunk_rows
        number = 0
        for batch in self._batches():
            table = pa.Table.from_batches([batch])
            yield table.append_column(LINE_COLUMN, pa.array(range(number + 1, number + 1 + table.num_rows), pa.int64()))
            number += table.num_rows

    def start_chunk(self, position: int) -> None:
        if position == 0:
            self._again = self._batches()
        self._batch = next(self._again) if self._again is not None else None
        self._records = None

    def slow_draft(self, table: pa.Table, index: int, line: int) -> Any:
        from kiku.loaders.tabular import row_draft

        if self._records is None:
            self._records = self._batch.to_pylist()
        return row_draft(line, self._records[index], self.resolved, self.report)


def engine_load_plan(path: Path, format: str | None, mapping: ColumnMapping | dict[str, Any] | str | None,  # noqa: A002
                     report: LoadReport, row_source: str) -> LinePlan | ParquetPlan | None:
    """A plan when ``path`` is JSON Lines read record by record, or a Parquet file; else None (load
    it with :func:`kiku.loaders.load_conversations`). Checks the input as that function does
    (missing, empty or unreadable file, unknown format, missing mapped column: one-line InputError)."""
    from kiku.loaders import _check_format, _prepare, raise_missing
    from kiku.loaders.archive import is_archive
    from kiku.loaders.tabular import open_parquet

    source = str(path)
    name = _check_format(format, source)
    file = Path(path)
    if not file.exists():
        if name == "hf":
            return None
        raise_missing(source)
    if is_archive(file) or file.is_dir():
        return None
    name = _prepare(file, source, name, report)
    columns = ColumnMapping.coerce(mapping)
    if name == "parquet":
        resolved = (columns or ColumnMapping()).resolve(open_parquet(file, source).schema_arrow.names, source)
        return ParquetPlan(file, resolved, report, row_source)
    if name not in ROW_FORMAT_BASES or not is_json_lines(file, source):
        return None
    return LinePlan(file, name, columns, report, row_source)
