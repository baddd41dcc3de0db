"""Readers for tables: CSV, Parquet, and Hugging Face datasets (saved folders or hub names).

Rows are streamed (``csv`` module line by line, Parquet in record batches, datasets in batches)
and turned into drafts with a :class:`ColumnMapping`. A mapped column that does not exist is an
:class:`InputError` listing the available columns; a bad row is skipped with its row/line.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kiku.errors import InputError, require
from kiku.loaders._convert import Draft, RecordError
from kiku.loaders._stream import iter_lines
from kiku.loaders.mapping import ColumnMapping, row_to_draft
from kiku.loaders.report import LoadReport

csv.field_size_limit(2**31 - 1)
BATCH_ROWS = 1024
TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".jsonl", ".ndjson", ".json")


def row_draft(line: int, row: dict[str, Any], resolved: ColumnMapping, report: LoadReport) -> Draft | None:
    """One table row as a draft (``resolved``: the mapping resolved against the columns), or None
    when it is skipped (the reason recorded in ``report``)."""
    try:
        draft = row_to_draft(row, resolved, line)
    except RecordError as exc:
        report.skip(line, exc.reason, exc.record_id)
        return None
    draft.source = report.source
    return draft


def _drafts_from_rows(
    rows: Iterable[tuple[int, dict[str, Any]]], columns: list[str], mapping: ColumnMapping | None, report: LoadReport
) -> Iterator[Draft]:
    resolved = (mapping or ColumnMapping()).resolve(columns, report.source)
    for line, row in rows:
        draft = row_draft(line, row, resolved, report)
        if draft is not None:
            yield draft


def read_csv(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """CSV (or TSV for ``.tsv``) with a header row; each row is one conversation.

    The delimiter of a ``.csv`` is judged from the header row (``,`` ``;`` tab or ``|``, see
    :func:`header_delimiter`); a ``.tsv`` is tab-separated. Line numbers in reasons are the
    physical line where the row starts (quoted fields may span lines). A row with more or fewer
    fields than the header is skipped.
    """
    lines = iter_lines(path, report)
    leading: list[str] = []  # blank lines up to and including the header, read ahead to judge the delimiter
    for _, text in lines:
        leading.append(text)
        if text.strip():
            break
    delimiter = "\t" if path.suffix.lower() == ".tsv" else header_delimiter(leading[-1] if leading else "")
    if delimiter != ",":
        report.warn(f"{report.source}: columns are separated by {DELIMITER_NAMES[delimiter]} (judged from the header row)", kind="delimiter")

    def text_lines() -> Iterator[str]:
        for text in itertools.chain(leading, (text for _, text in lines)):
            yield text + "\n"

    reader = csv.reader(text_lines(), delimiter=delimiter)
    header: list[str] | None = None
    while True:
        consumed_before = reader.line_num
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.skip(consumed_before + 1, f"malformed CSV: {exc}; fix the row")
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        line = consumed_before + 1
        if header is None:
            header = [h.strip() for h in fields]
            resolved = (mapping or ColumnMapping()).resolve(header, report.source)
            continue
        if len(fields) != len(header):
            report.skip(line, f"wrong number of fields: {len(fields)}, the header has {len(header)}; quote fields that contain the delimiter")
            continue
        row = dict(zip(header, fields))
        try:
            draft = row_to_draft(row, resolved, line)
        except RecordError as exc:
            report.skip(line, exc.reason, exc.record_id)
            continue
        yield draft
    if header is None:
        raise InputError(report.source, "no header row found", "the first line of a CSV file must name the columns")


DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tabs", "|": "'|'"}


def header_delimiter(header: str) -> str:
    """The delimiter that splits a CSV header row into the most columns (``,`` on a tie).

    Column names rarely hold a delimiter, so the header tells ``;``-separated files (as
    spreadsheets write them where ``,`` is the decimal mark) from ``,``-separated ones.

    >>> header_delimiter("id;text;category"), header_delimiter("id,text"), header_delimiter("text")
    (';', ',', ',')
    """
    counts = {d: len(next(csv.reader([header], delimiter=d))) for d in DELIMITER_NAMES}
    return max(DELIMITER_NAMES, key=lambda d: counts[d])  # max keeps the first of equals: ','


def open_parquet(path: Path, source: str) -> Any:
    """A ``pyarrow.parquet.ParquetFile``; a one-line InputError when it cannot be read."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InputError(source, f"not a readable Parquet file ({exc})", "check the file or pass --format") from None


def _parquet_rows(path: Path, report: LoadReport) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    parquet = open_parquet(path, report.source)

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        number = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, row

    return parquet.schema_arrow.names, rows()


def read_parquet(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """Parquet, streamed in record batches; reasons give the 1-based row number as the line."""
    columns, rows = _parquet_rows(path, report)
    return _drafts_from_rows(rows, columns, mapping, report)


# --- Hugging Face datasets ------------------------------------------------------------------

HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def is_saved_dataset(folder: Path) -> bool:
    return folder.is_dir() and any((folder / marker).exists() for marker in HF_MARKERS)


def read_hf(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """A Hugging Face dataset: a folder saved with ``save_to_disk``, a folder of data files, or a hub name.

    Rows hold either a list of messages (a ``messages``/``conversations`` column, OpenAI or
    ShareGPT style) or text columns; see :class:`ColumnMapping`. A ``DatasetDict`` yields every
    split in order, with the split name in ``metadata["split"]``. A hub name needs network
    access (``datasets.load_dataset``); offline, an :class:`InputError` says how to proceed.
    """
    if path.is_dir() and not is_saved_dataset(path):
        yield from _read_data_folder(path, mapping, report)
        return
    if path.is_file():  # one data file given with --format hf
        yield from _data_file_reader(path)(path, mapping, report)
        return
    datasets = require("datasets", "hf")
    if path.is_dir():
        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as exc:  # noqa: BLE001 - datasets raises many types
            raise InputError(report.source, f"cannot open the saved dataset ({exc})", "save it with Dataset.save_to_disk") from None
    else:
        loaded = _load_from_hub(datasets, str(path), report.source)
    splits = list(loaded.items()) if hasattr(loaded, "keys") else [(None, loaded)]
    for split, dataset in splits:
        view = report.for_source(f"{report.source}[{split}]") if split else report
        rows = _dataset_rows(dataset)
        columns = list(dataset.column_names or [])
        if not columns:  # a streamed hub dataset may not know its columns before the first row
            first = next(rows, None)
            if first is None:
                continue
            columns = list(first[1])
            rows = itertools.chain([first], rows)
        for draft in _drafts_from_rows(rows, columns, mapping, view):
            if split:
                draft.metadata.setdefault("split", split)
            yield draft


def _dataset_rows(dataset: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    if hasattr(dataset, "iter") and hasattr(dataset, "num_rows"):
        for batch in dataset.iter(batch_size=BATCH_ROWS):
            keys = list(batch)
            for values in zip(*(batch[k] for k in keys)):
                number += 1
                yield number, dict(zip(keys, values))
    else:  # an IterableDataset (streaming from the hub)
        for row in dataset:
            number += 1
            yield number, row


def _load_from_hub(datasets: Any, name: str, source: str) -> Any:
    repo, _, split = name.partition(":")
    try:
        return datasets.load_dataset(repo, split=split or None, streaming=True)
    except Exception as exc:  # noqa: BLE001 - offline, missing repo, auth...
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            source,
            f"not a local file or folder, and the Hugging Face hub dataset could not be loaded ({first_line[:200]})",
            "check the path; to use a hub dataset offline, run datasets.load_dataset(...).save_to_disk(FOLDER) where you are online and pass FOLDER",
        ) from None


def _data_file_reader(file: Path):  # noqa: ANN202 - a reader
    from kiku.loaders.json_formats import read_jsonl

    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return read_parquet
    if suffix in (".csv", ".tsv"):
        return read_csv
    return read_jsonl


def is_data_file(path: Path) -> bool:
    """A file a data folder is read from: Parquet, CSV/TSV, JSON (Lines), also gzipped; not hidden.

    >>> is_data_file(Path("train.jsonl.gz")), is_data_file(Path("README.md")), is_data_file(Path(".x.csv"))
    (True, False, False)
    """
    name = Path(path.stem) if path.suffix.lower() == ".gz" else path
    return name.suffix.lower() in TABLE_SUFFIXES and not path.name.startswith(".")


def _read_data_folder(folder: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """Every data file in a folder (Parquet, CSV, JSON Lines, also gzipped), in name order, as one input.

    Other files are not read; a warning names them (up to five) and counts them.
    """
    from kiku.loaders.archive import extracted_member

    present = sorted(p for p in folder.rglob("*") if p.is_file())
    files = [p for p in present if is_data_file(p)]
    if not files:
        raise InputError(report.source, "the folder holds no data files (.parquet, .csv, .jsonl)", "pass a file, or a folder saved with datasets' save_to_disk")
    others = [os.fspath(p.relative_to(folder)) for p in present if not is_data_file(p) and not p.name.startswith(".")]
    if others:
        listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        report.warn(f"{report.source}: {len(others)} files that are not data files were not read ({listed})")
    for file in files:
        view = report.for_source(os.fspath(file))
        if file.suffix.lower() == ".gz":
            with extracted_member(file, view.source) as (plain, _):
                yield from _read_folder_file(plain, mapping, view)
        else:
            yield from _read_folder_file(file, mapping, view)


def _read_folder_file(file: Path, mapping: ColumnMapping | None, view: LoadReport) -> Iterator[Draft]:
    for draft in _data_file_reader(file)(file, mapping, view):
        draft.source = view.source
        yield draft
