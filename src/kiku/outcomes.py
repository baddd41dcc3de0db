"""Outcomes joined to a run by conversation id: thumbs up, ratings, revenue, resolution.

An outcome is one value per conversation, of one of three kinds:

- ``binary``: yes/no (``true``/``false``, ``1``/``0``, ``yes``/``no``, ``up``/``down``), stored as bool;
- ``numeric``: any number (a rating, revenue, latency), stored as float64;
- ``categorical``: anything else (``resolved`` / ``escalated``), stored as text.

They come from a separate table (CSV, Parquet or JSONL) joined on the conversation id
(:func:`join_table`, ``kiku join RUN feedback.csv``), or from fields of the input's ``metadata``
(:func:`join_metadata`, ``kiku join RUN --metadata thumbs_up``). Either way they land in the
run's ``outcomes.parquet`` (one row per conversation of the run, a column per outcome, null
where a conversation has none) through :meth:`kiku.store.RunStore.write_derived`; a later join
adds its columns to the earlier ones (a column of the same name is replaced).

Nothing is lost silently: the :class:`JoinReport` counts the table's ids that match no
conversation (with examples), the conversations that got no row, rows skipped (no id, a
repeated id) with their line.

Example:
    >>> from kiku.outcomes import infer_kind
    >>> infer_kind(["1", "0", "1"]), infer_kind(["4.5", "3"]), infer_kind(["resolved", "escalated"])
    ('binary', 'numeric', 'categorical')
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from kiku.errors import InputError, KikuError
from kiku.store import RunStore, open_finished_run, read_frame, table_file

Kind = Literal["binary", "numeric", "categorical"]
KINDS: tuple[str, ...] = ("binary", "numeric", "categorical")
#: Column names tried, in order, as the conversation id when ``id_column`` is not given.
ID_COLUMNS: tuple[str, ...] = ("conversation_id", "id", "chat_id", "query_id", "session_id")
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "up", "thumbs_up", "positive", "good"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "down", "thumbs_down", "negative", "bad"})
MISSING_WORDS = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
#: How many unmatched ids the report lists (all are counted).
EXAMPLES = 5
JOIN_COMMAND = "kiku join RUN feedback.csv"


class OutcomeField(BaseModel):
    """One outcome column: its name, kind, and (categorical) its values, most frequent first."""

    name: str
    kind: Kind
    values: list[str] = Field(default_factory=list)
    present: int = 0


class SkippedRow(BaseModel):
    """A row of the outcome table that was not used, with where it is and why."""

    line: int | None
    reason: str


class JoinReport(BaseModel):
    """What a join did: matched rows, ids on either side that matched nothing, skipped rows.

    ``table_only`` counts the table's ids that are no conversation of the run
    (``table_only_examples`` lists the first few); ``run_only`` counts the run's conversations
    that got no row (``run_only_examples``).
    """

    source: str
    id_column: str
    fields: list[OutcomeField]
    rows: int
    matched: int
    table_only: int
    table_only_examples: list[str] = Field(default_factory=list)
    run_only: int
    run_only_examples: list[str] = Field(default_factory=list)
    skipped: list[SkippedRow] = Field(default_factory=list)
    replaced: list[str] = Field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as short lines for a terminal.

        >>> JoinReport(source="f.csv", id_column="id", fields=[], rows=3, matched=2, table_only=1,
        ...            table_only_examples=["x"], run_only=0).lines()[1]
        '1 id(s) in f.csv match no conversation of the run: x'
        """
        kinds = ", ".join(f"{f.name} ({f.kind})" for f in self.fields)
        out = [f"joined {self.matched} of {self.rows} row(s) of {self.source} on {self.id_column}: {kinds}"]
        if self.table_only:
            more = f" … and {self.table_only - len(self.table_only_examples)} more" if self.table_only > len(self.table_only_examples) else ""
            out.append(f"{self.table_only} id(s) in {self.source} match no conversation of the run: "
                       f"{', '.join(self.table_only_examples)}{more}")
        if self.run_only:
            more = f" … and {self.run_only - len(self.run_only_examples)} more" if self.run_only > len(self.run_only_examples) else ""
            out.append(f"{self.run_only} conversation(s) of the run have no row in {self.source} (their outcomes are null): "
                       f"{', '.join(self.run_only_examples)}{more}")
        for row in self.skipped[:EXAMPLES]:
            out.append(f"skipped {self.source}{':' + str(row.line) if row.line else ''}: {row.reason}")
        if len(self.skipped) > EXAMPLES:
            out.append(f"… {len(self.skipped) - EXAMPLES} more skipped row(s) (manifest.json, derived.outcomes.skipped)")
        if self.replaced:
            out.append(f"replaced earlier outcome column(s): {', '.join(self.replaced)}")
        return out


# --- values: kinds and coercion (pure) -----------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_WORDS


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        number = float(str(value).strip().replace(",", "")) if str(value).strip() else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    number = _as_number(word)
    return bool(number) if number in (0.0, 1.0) else None


def infer_kind(values: Sequence[Any]) -> Kind:
    """The kind of an outcome column from its (non-missing) values.

    ``binary`` when every value reads as yes/no (0/1 included), ``numeric`` when every value is a
    number, else ``categorical``.

    >>> infer_kind([True, False]), infer_kind([0, 1, 1]), infer_kind([1, 2, 5]), infer_kind(["yes", "maybe"])
    ('binary', 'binary', 'numeric', 'categorical')
    """
    present = [v for v in values if not _is_missing(v)]
    if not present:
        return "categorical"
    if all(_as_bool(v) is not None for v in present):
        return "binary"
    if all(_as_number(v) is not None for v in present):
        return "numeric"
    return "categorical"


def coerce(values: Sequence[Any], kind: Kind, name: str, lines: Sequence[int | None], source: str) -> list[Any]:
    """Values as the kind's Python type (bool, float or str; None where missing).

    A value that does not fit an explicitly chosen kind is a one-line InputError naming the line.

    >>> coerce(["up", "down", ""], "binary", "thumbs", [2, 3, 4], "f.csv")
    [True, False, None]
    """
    out: list[Any] = []
    for value, line in zip(values, lines):
        if _is_missing(value):
            out.append(None)
            continue
        converted: Any
        if kind == "binary":
            converted = _as_bool(value)
        elif kind == "numeric":
            converted = _as_number(value)
        else:
            converted = str(value).strip() if not isinstance(value, (dict, list)) else json.dumps(value, sort_keys=True)
        if converted is None:
            expected = "yes/no (1/0, true/false, up/down)" if kind == "binary" else "a number"
            raise InputError(source, f"{name}: {value!r} is not {expected}",
                             f"fix the value, or read the column as another kind (--kind {name}=categorical)", line)
        out.append(converted)
    return out


def arrow_type(kind: Kind) -> pa.DataType:
    """The Parquet column type of an outcome kind.

    >>> arrow_type("binary"), arrow_type("numeric"), arrow_type("categorical")
    (DataType(bool), DataType(double), DataType(string))
    """
    return {"binary": pa.bool_(), "numeric": pa.float64(), "categorical": pa.string()}[kind]


def parse_kinds(items: Sequence[str]) -> dict[str, Kind]:
    """``NAME=KIND`` overrides (``--kind rating=numeric``) as a dict.

    >>> parse_kinds(["rating=numeric"])
    {'rating': 'numeric'}
    """
    kinds: dict[str, Kind] = {}
    for item in items:
        name, sep, kind = item.partition("=")
        if not sep or not name or kind not in KINDS:
            raise KikuError(f"--kind {item!r}: expected NAME=KIND with KIND one of {', '.join(KINDS)}")
        kinds[name] = cast(Kind, kind)
    return kinds


# --- reading an outcome table -------------------------------------------------------------


def _rows_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise InputError(str(path), "empty table (no header row)", "the first line must name the columns")
        line = reader.line_num + 1
        for row in reader:
            if None in row:
                raise InputError(str(path), f"{len(row[None]) + len(reader.fieldnames)} cells but the header names {len(reader.fieldnames)} columns",
                                 "quote cells that contain commas", line)
            yield line, row
            line = reader.line_num + 1


def _rows_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(str(path), f"not valid JSON ({exc.msg})", "one JSON object per line", number) from None
            if not isinstance(record, dict):
                raise InputError(str(path), "a line is not a JSON object", "one JSON object per line", number)
            yield number, record


def _rows_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        file = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(str(path), f"not a readable Parquet file ({exc})", "check the file") from None
    row = 0
    for batch in file.iter_batches():
        for record in batch.to_pylist():
            row += 1
            yield row, record


def read_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """The rows of an outcome table with their 1-based line (CSV, JSONL) or row (Parquet).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "f.csv"; _ = f.write_text("id,up\\na,1\\n")
    >>> read_rows(f)
    [(2, {'id': 'a', 'up': '1'})]
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "outcome table not found", "pass a CSV, Parquet or JSONL file")
    suffix = path.suffix.lower()
    readers = {".csv": _rows_csv, ".tsv": _rows_csv, ".jsonl": _rows_jsonl, ".ndjson": _rows_jsonl, ".parquet": _rows_parquet}
    if suffix not in readers:
        raise InputError(str(path), f"unknown table type {suffix or '(none)'}", "use .csv, .parquet or .jsonl")
    try:
        return list(readers[suffix](path))
    except UnicodeDecodeError:
        raise InputError(str(path), "not UTF-8 text", "save the file as UTF-8") from None


def _pick_id_column(columns: Sequence[str], id_column: str | None, source: str) -> str:
    if id_column is not None:
        if id_column not in columns:
            raise InputError(source, f"no column {id_column!r} (columns: {', '.join(columns)})", "pass --id-column NAME", 1)
        return id_column
    for name in ID_COLUMNS:
        if name in columns:
            return name
    raise InputError(source, f"no conversation id column (tried {', '.join(ID_COLUMNS)}; columns: {', '.join(columns)})",
                     "name it with --id-column NAME", 1)


# --- joining into a run -------------------------------------------------------------------


def _open_run(run_dir: str | Path) -> RunStore:
    return open_finished_run(run_dir, ("conversations",))


def run_ids(run_dir: str | Path) -> list[str]:
    """The conversation ids of a run, in stored order."""
    return [str(v) for v in read_frame(run_dir, "conversations", ["conversation_id"]).conversation_id]


def _build_fields(
    rows: list[tuple[int, dict[str, Any]]], names: list[str], kinds: dict[str, Kind], source: str
) -> tuple[list[OutcomeField], dict[str, list[Any]]]:
    lines = [line for line, _ in rows]
    fields, columns = [], {}
    for name in names:
        raw = [record.get(name) for _, record in rows]
        kind = kinds.get(name) or infer_kind(raw)
        values = coerce(raw, kind, name, lines, source)
        present = [v for v in values if v is not None]
        categories: list[str] = []
        if kind == "categorical":
            counts: dict[str, int] = {}
            for value in present:
                counts[value] = counts.get(value, 0) + 1
            categories = sorted(counts, key=lambda v: (-counts[v], v))
        fields.append(OutcomeField(name=name, kind=kind, values=categories, present=len(present)))
        columns[name] = values
    return fields, columns


def _write(store: RunStore, ids: list[str], by_id: dict[str, int], fields: list[OutcomeField],
           columns: dict[str, list[Any]], report: JoinReport) -> None:
    """Merge the new columns with the run's earlier outcomes and write ``outcomes.parquet``."""
    previous: dict[str, Any] = {}
    previous_fields: list[dict[str, Any]] = []
    record = store.derived_record("outcomes")
    if record is not None and store.has_table("outcomes"):
        try:
            store.check_derived("outcomes", JOIN_COMMAND)
            old = store.read_table("outcomes")
            old_ids = old["conversation_id"].to_pylist()
            if old_ids == ids:
                previous = {name: old[name] for name in old.column_names if name != "conversation_id"}
                previous_fields = [f for f in record.get("fields", []) if f.get("name") in previous]
        except KikuError:
            previous, previous_fields = {}, []  # stale or damaged: start over with this join
    new_names = {f.name for f in fields}
    report.replaced = sorted(new_names & set(previous))
    arrays: dict[str, Any] = {"conversation_id": pa.array(ids, pa.string())}
    for name, array in previous.items():
        if name not in new_names:
            arrays[name] = array
    for field in fields:
        aligned = [None] * len(ids)
        for index, value in zip(by_id.values(), columns[field.name]):
            if index >= 0:
                aligned[index] = value
        arrays[field.name] = pa.array(aligned, arrow_type(field.kind))
    kept_fields = [f for f in previous_fields if f["name"] not in new_names] + [f.model_dump() for f in fields]
    with store.lock():
        store.write_derived("outcomes", pa.table(arrays), fields=kept_fields, last_join=report.model_dump(mode="json"))


def join_table(
    run_dir: str | Path,
    table: str | Path,
    id_column: str | None = None,
    columns: Sequence[str] | None = None,
    kinds: dict[str, Kind] | None = None,
) -> JoinReport:
    """Join an outcome table (CSV, Parquet, JSONL) to a run on the conversation id and store it.

    Every column but the id is an outcome (or only ``columns``); each column's kind is inferred
    (:func:`infer_kind`) unless ``kinds`` names it. A row without an id, or with an id seen on an
    earlier row, is skipped and reported with its line (the first row of an id is kept).

    >>> report = join_table("runs/wandb", "feedback.csv")          # doctest: +SKIP
    >>> report.matched, report.table_only, report.run_only          # doctest: +SKIP
    (540, 3, 20)
    """
    store = _open_run(run_dir)
    source = str(table)
    rows = read_rows(table)
    if not rows:
        raise InputError(source, "the table has no rows", "add one row per conversation")
    header = list(dict.fromkeys(k for _, record in rows for k in record))
    key = _pick_id_column(header, id_column, source)
    names = list(columns) if columns else [c for c in header if c != key]
    for name in names:
        if name not in header or name == key:
            raise InputError(source, f"no outcome column {name!r} (columns: {', '.join(header)})", "check --column", 1)
    if not names:
        raise InputError(source, f"only the id column {key!r}; nothing to join", "add outcome columns", 1)
    skipped: list[SkippedRow] = []
    first_line: dict[str, int] = {}
    kept: list[tuple[int, dict[str, Any]]] = []
    for line, record in rows:
        value = record.get(key)
        if _is_missing(value):
            skipped.append(SkippedRow(line=line, reason=f"no {key}"))
            continue
        cid = str(value).strip()
        if cid in first_line:
            skipped.append(SkippedRow(line=line, reason=f"{key} {cid!r} again (first on line {first_line[cid]}); kept the first row"))
            continue
        first_line[cid] = line
        kept.append((line, record))
    fields, values = _build_fields(kept, names, kinds or {}, source)
    ids = run_ids(store.path)
    position = {cid: index for index, cid in enumerate(ids)}
    table_ids = [str(record[key]).strip() for _, record in kept]
    by_id = {cid: position.get(cid, -1) for cid in table_ids}
    table_only = [cid for cid in table_ids if by_id[cid] < 0]
    joined = set(table_ids)
    run_only = [cid for cid in ids if cid not in joined]
    report = JoinReport(
        source=Path(source).name, id_column=key, fields=fields, rows=len(rows), matched=len(table_ids) - len(table_only),
        table_only=len(table_only), table_only_examples=table_only[:EXAMPLES],
        run_only=len(run_only), run_only_examples=run_only[:EXAMPLES], skipped=skipped,
    )
    if report.matched == 0:
        raise InputError(source, f"none of its {len(table_ids)} {key} values is a conversation id of {store.path} "
                         f"(e.g. {', '.join(table_only[:3])}; the run has e.g. {', '.join(ids[:3])})",
                         "join on the column that holds the conversation id (--id-column)")
    _write(store, ids, by_id, fields, values, report)
    return report


def join_metadata(run_dir: str | Path, names: Sequence[str], kinds: dict[str, Kind] | None = None) -> JoinReport:
    """Store fields of the conversations' ``metadata`` as outcomes (``kiku join RUN --metadata thumbs_up``).

    A conversation whose metadata lacks a field gets null for it and is counted in ``run_only``.
    """
    store = _open_run(run_dir)
    frame = read_frame(store.path, "conversations", ["conversation_id", "metadata", "source_line"])
    rows: list[tuple[int, dict[str, Any]]] = []
    for row in frame.itertuples(index=False):
        metadata = json.loads(row.metadata) if row.metadata else {}
        line = None if row.source_line is None or row.source_line != row.source_line else int(row.source_line)
        rows.append((line, {"conversation_id": str(row.conversation_id), **metadata}))  # type: ignore[arg-type]
    available = sorted({k for _, record in rows for k in record if k != "conversation_id"})
    for name in names:
        if name not in available:
            raise KikuError(f"{store.path}: no conversation has a metadata field {name!r} "
                            f"(fields: {', '.join(available) or 'none'}); join a table instead: {JOIN_COMMAND}")
    source = str((store.manifest.get("input") or {}).get("path") or "metadata")
    fields, values = _build_fields(rows, list(names), kinds or {}, source)
    ids = [record["conversation_id"] for _, record in rows]
    by_id = {cid: index for index, cid in enumerate(ids)}
    missing = [cid for k, cid in enumerate(ids) if all(values[n][k] is None for n in names)]
    report = JoinReport(source="metadata", id_column="conversation_id", fields=fields, rows=len(rows),
                        matched=len(ids) - len(missing), table_only=0, run_only=len(missing),
                        run_only_examples=missing[:EXAMPLES])
    _write(store, ids, by_id, fields, values, report)
    return report


# --- reading outcomes back ----------------------------------------------------------------


def outcome_fields(run_dir: str | Path) -> list[OutcomeField]:
    """The outcomes stored in a run (``[]`` before the first join)."""
    store = RunStore(run_dir)
    record = store.derived_record("outcomes")
    if record is None:
        return []
    store.check_derived("outcomes", JOIN_COMMAND)
    return [OutcomeField.model_validate(f) for f in record.get("fields", [])]


def read_outcome(run_dir: str | Path, name: str) -> tuple[dict[str, Any], OutcomeField]:
    """One outcome as ``{conversation_id: value}`` (missing values left out) and its field.

    Looks in ``outcomes.parquet`` first, then in the conversations' ``metadata`` (kind inferred),
    so a field the input already carries needs no join.
    """
    run_dir = Path(run_dir)
    for field in outcome_fields(run_dir):
        if field.name == name:
            table = pq.read_table(run_dir / table_file("outcomes"), columns=["conversation_id", name])
            values = dict(zip(table["conversation_id"].to_pylist(), table[name].to_pylist()))
            return {k: v for k, v in values.items() if v is not None}, field
    frame = read_frame(run_dir, "conversations", ["conversation_id", "metadata"])
    raw = {str(cid): json.loads(meta).get(name) if meta else None for cid, meta in zip(frame.conversation_id, frame.metadata)}
    present = {k: v for k, v in raw.items() if not _is_missing(v)}
    if not present:
        stored = ", ".join(f.name for f in outcome_fields(run_dir)) or "none yet"
        raise KikuError(f"{run_dir}: no outcome {name!r} (joined outcomes: {stored}; nor is it a metadata field); "
                        f"join it first: kiku join {run_dir} feedback.csv")
    kind = infer_kind(list(present.values()))
    ids = list(present)
    coerced = coerce(list(present.values()), kind, name, [None] * len(ids), "metadata")
    field = _build_fields([(0, {name: v}) for v in present.values()], [name], {name: kind}, "metadata")[0][0]
    return dict(zip(ids, coerced)), field
