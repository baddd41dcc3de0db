"""Streaming readers for text, JSON Lines and big JSON arrays, with line numbers.

Everything here reads a file in pieces, so memory stays flat however large the file is:

* :func:`iter_lines` yields ``(line_number, text)`` per line, decoding each line as UTF-8 and
  replacing invalid bytes (with a warning naming the line) instead of failing.
* :func:`iter_jsonl` parses one JSON value per line and skips malformed lines with a reason.
* :func:`iter_json_stream` parses a JSON array (``[{...}, {...}]``) or a sequence of JSON values
  incrementally with :meth:`json.JSONDecoder.raw_decode` over 1 MiB chunks. It recovers every
  whole record of a file cut off mid-record and reports the cut (a warning plus one skipped
  record for the incomplete one), and it skips a malformed element and resumes at the next one.

Every function yields ``(line, value)`` where ``line`` is the 1-based line on which the value
starts, so reasons and warnings can point at the exact place in the file.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from kiku.errors import InputError
from kiku.loaders.report import LoadReport

CHUNK_BYTES = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BOM = "\ufeff"

# Invalid UTF-8 bytes are replaced with U+FFFD and their offsets collected, per thread.
_bad_bytes = threading.local()


def _replace_and_record(error: UnicodeDecodeError) -> tuple[str, int]:
    sink = getattr(_bad_bytes, "offsets", None)
    if sink is not None:
        sink.append(error.start)
    return "\ufffd", error.end


codecs.register_error("kiku-replace", _replace_and_record)


def decode_utf8(data: bytes) -> tuple[str, list[int]]:
    """Decode UTF-8, replacing invalid bytes; return the text and the offsets of the bad bytes.

    >>> decode_utf8(b"caf\\xe9 ok")
    ('caf\\ufffd ok', [3])
    """
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        _bad_bytes.offsets = []
        try:
            return data.decode("utf-8", errors="kiku-replace"), list(_bad_bytes.offsets)
        finally:
            _bad_bytes.offsets = None


def open_binary(path: Path, source: str) -> BinaryIO:
    """Open a file for reading bytes, turning OS errors into a one-line :class:`InputError`."""
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise InputError(source, "file not found", "check the path") from None
    except IsADirectoryError:
        raise InputError(source, "is a folder, not a file", "pass a file, or --format kura-checkpoint / hf for a folder") from None
    except OSError as exc:
        raise InputError(source, f"cannot read the file ({exc.strerror or exc})", "check that it exists and is readable") from None


def _warn_bad_bytes(report: LoadReport, line: int, count: int) -> None:
    report.warn(
        f"{report.source}:{line}: {count} invalid UTF-8 byte(s) replaced with U+FFFD; "
        "the record was kept, re-save the file as UTF-8 to keep the original characters",
        kind="invalid UTF-8 replaced",
    )


#: The reason given for a record nested too deeply for the JSON parser (about 1,000 levels).
TOO_DEEP = "too deeply nested: the record's JSON nests lists/objects past what can be read; flatten it to load it"


class JSONConstants:
    """A JSON decoder that reads ``NaN``/``Infinity``/``-Infinity`` (not valid JSON) as null and counts them.

    Python's parser accepts these JavaScript constants; kept as floats they would be written out
    again as invalid JSON. Each reader makes one and calls :meth:`warn` after each record.

    >>> constants = JSONConstants()
    >>> constants.decoder.decode('{"score": NaN, "w": -Infinity}'), constants.count
    ({'score': None, 'w': None}, 2)
    """

    def __init__(self) -> None:
        self.count = 0
        self.decoder = json.JSONDecoder(parse_constant=self._null)

    def _null(self, name: str) -> None:
        self.count += 1

    def warn(self, report: LoadReport, line: int) -> None:
        """Report (and reset) the constants of the record that starts on ``line``."""
        if self.count:
            report.warn(
                f"{report.source}:{line}: {self.count} NaN/Infinity value(s) (not valid JSON) were stored as null; the record was kept",
                kind="NaN/Infinity stored as null",
            )
            self.count = 0


def iter_raw_lines(path: Path, source: str) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, bytes)`` for every line of a file, undecoded (newline kept)."""
    with open_binary(path, source) as handle:
        yield from enumerate(handle, start=1)


def decode_line(number: int, raw: bytes, report: LoadReport) -> str:
    """One line as text (newline stripped), decoded as UTF-8.

    Invalid UTF-8 bytes are replaced by U+FFFD with a warning naming the line; a UTF-8
    byte-order mark on the first line is dropped.
    """
    text, bad = decode_utf8(raw)
    if bad:
        _warn_bad_bytes(report, number, len(bad))
    if number == 1 and text.startswith(_BOM):
        text = text[1:]
    return text.rstrip("\r\n")


def iter_lines(path: Path, report: LoadReport) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for every line (newline stripped), decoding UTF-8 per line
    (:func:`decode_line`)."""
    for number, raw in iter_raw_lines(path, report.source):
        yield number, decode_line(number, raw, report)


#: What :func:`parse_json_line` returns for a line that holds no record (blank, or skipped).
NO_RECORD = object()


def parse_json_line(number: int, text: str, report: LoadReport, constants: JSONConstants) -> Any:
    """The JSON value of one line of a JSON Lines file, or :data:`NO_RECORD`.

    A blank line holds no record; a line that is not valid JSON, or nested too deeply to parse,
    is skipped with a reason naming the line (and the column). ``NaN``/``Infinity`` are read as
    null with a warning.

    >>> report = LoadReport(source="q.jsonl")
    >>> parse_json_line(3, '{"a": 1}', report, JSONConstants()), parse_json_line(4, "{oops", report, JSONConstants()) is NO_RECORD
    ({'a': 1}, True)
    >>> report.skipped[0].one_line()
    'q.jsonl:4: malformed JSON: Expecting property name enclosed in double quotes (column 2); fix or delete this line'
    """
    if not text.strip():
        return NO_RECORD
    constants.count = 0
    try:
        value = constants.decoder.decode(text)
    except json.JSONDecodeError as exc:
        report.skip(number, f"malformed JSON: {exc.msg} (column {exc.colno}); fix or delete this line")
        return NO_RECORD
    except RecursionError:
        report.skip(number, TOO_DEEP)
        return NO_RECORD
    constants.warn(report, number)
    return value


def iter_jsonl(path: Path, report: LoadReport) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` per non-blank line of a JSON Lines file (:func:`parse_json_line`)."""
    constants = JSONConstants()
    for number, text in iter_lines(path, report):
        value = parse_json_line(number, text, report, constants)
        if value is not NO_RECORD:
            yield number, value


class _Feed:
    """A growing text buffer over a binary file, decoded chunk by chunk, with line tracking."""

    def __init__(self, handle: BinaryIO, report: LoadReport, chunk_bytes: int) -> None:
        self.handle = handle
        self.report = report
        self.chunk_bytes = chunk_bytes
        self.text = ""
        self.pos = 0
        self.line = 1  # line number of text[pos]
        self.eof = False
        self.bytes_read = 0
        self._pending = b""
        self._lines_decoded = 0  # newlines in all bytes decoded so far

    def fill(self) -> bool:
        """Append the next chunk; return False when the file is exhausted."""
        if self.eof:
            return False
        data = self.handle.read(self.chunk_bytes)
        self.bytes_read += len(data)
        if not data:
            self.eof = True
            if not self._pending:
                return False
            data, self._pending = self._pending, b""
        else:
            data = self._pending + data
            cut = utf8_boundary(data)
            data, self._pending = data[:cut], data[cut:]
        decoded, bad = decode_utf8(data)
        bad_lines: dict[int, int] = {}
        for offset in bad:
            bad_line = self._lines_decoded + data.count(b"\n", 0, offset) + 1
            bad_lines[bad_line] = bad_lines.get(bad_line, 0) + 1
        for bad_line, count in bad_lines.items():
            _warn_bad_bytes(self.report, bad_line, count)
        self._lines_decoded += data.count(b"\n")
        if self.pos > self.chunk_bytes:
            self.text = self.text[self.pos :]
            self.pos = 0
        if not self.text and decoded.startswith(_BOM) and self.bytes_read == len(data) + len(self._pending):
            decoded = decoded[1:]
        self.text += decoded
        return True

    def advance(self, new_pos: int) -> None:
        self.line += self.text.count("\n", self.pos, new_pos)
        self.pos = new_pos

    def skip_whitespace(self) -> bool:
        """Move past whitespace; return False at the end of the file."""
        while True:
            self.advance(_WHITESPACE.match(self.text, self.pos).end())
            if self.pos < len(self.text):
                return True
            if not self.fill():
                return False

    def peek(self) -> str:
        return self.text[self.pos]


def utf8_boundary(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that does not end inside a UTF-8 sequence.

    >>> utf8_boundary("añ".encode()[:2]), utf8_boundary(b"ab")
    (1, 2)
    """
    end = len(data)
    start = end - 1
    while start >= 0 and end - start <= 4 and data[start] & 0xC0 == 0x80:  # continuation bytes
        start -= 1
    if start < 0 or end - start > 4 or data[start] < 0xC0:
        return end
    needed = 2 if data[start] < 0xE0 else 3 if data[start] < 0xF0 else 4
    return start if end - start < needed else end


def _looks_incomplete(error: json.JSONDecodeError, text: str) -> bool:
    """True when a decode error is caused by the text ending, not by bad JSON."""
    return error.msg.startswith("Unterminated string") or len(text) - error.pos <= 8


def iter_json_stream(path: Path, report: LoadReport, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, value)`` for each element of a JSON array, or each value of a JSON sequence.

    The file is read in ``chunk_bytes`` pieces. A file cut off inside an element yields every
    whole element before the cut, then records one skipped record and one warning giving the
    line where the incomplete element starts and the byte where the file ends. A malformed
    element, or one nested too deeply to parse, is skipped (with its line) and reading resumes
    at the next element. ``NaN``/``Infinity`` are read as null with a warning.
    """
    constants = JSONConstants()
    with open_binary(path, report.source) as handle:
        feed = _Feed(handle, report, chunk_bytes)
        if not feed.skip_whitespace():
            return
        in_array = feed.peek() == "["
        if in_array:
            feed.advance(feed.pos + 1)
        separator: str | None = None  # whitespace before the first element, used to resync
        count = 0
        expect_value = True
        while True:
            start_before_ws = feed.pos
            if not feed.skip_whitespace():
                if in_array:
                    report.warn(
                        f"{report.source}: the JSON array is not closed (file ends at byte {feed.bytes_read}, line {feed.line}); "
                        f"the {count} whole records were loaded",
                        kind="array not closed",
                    )
                return
            char = feed.peek()
            if in_array and char == "]":
                feed.advance(feed.pos + 1)
                if feed.skip_whitespace():
                    report.warn(f"{report.source}:{feed.line}: text after the closing ']' was ignored", kind="trailing text")
                return
            if in_array and not expect_value:
                if char != ",":
                    _resync(feed, report, separator, f"expected ',' or ']' but found {char!r}")
                    expect_value = True
                    continue
                feed.advance(feed.pos + 1)
                expect_value = True
                continue
            if separator is None:
                separator = feed.text[start_before_ws : feed.pos]
            line = feed.line
            resynced = False
            while True:
                constants.count = 0  # a retry after reading more must not count twice
                try:
                    value, end = constants.decoder.raw_decode(feed.text, feed.pos)
                except RecursionError:
                    _resync(feed, report, separator, "", line=line, in_array=in_array, reason=TOO_DEEP)
                    resynced = True
                    break
                except json.JSONDecodeError as exc:
                    if _looks_incomplete(exc, feed.text):
                        if feed.fill():
                            continue
                        report.skip(
                            line,
                            f"incomplete record: the file is cut off inside it (at byte {feed.bytes_read}); "
                            "re-export or re-download the file to recover it",
                        )
                        report.warn(
                            f"{report.source}: file is cut off mid-record at byte {feed.bytes_read} (line {_line_of(feed, len(feed.text))}); "
                            f"the record starting at line {line} is incomplete and was skipped; the {count} whole records before it were read",
                            kind="file cut off",
                        )
                        return
                    _resync(feed, report, separator, f"{exc.msg} (line {_line_of(feed, exc.pos)})", line=line, in_array=in_array)
                    resynced = True
                    break
                else:
                    if end >= len(feed.text) and not feed.eof and not isinstance(value, (dict, list, str)):
                        if feed.fill():  # a number or literal may continue in the next chunk
                            continue
                    feed.advance(end)
                    count += 1
                    constants.warn(report, line)
                    yield line, value
                    break
            expect_value = resynced or not in_array


def _line_of(feed: _Feed, pos: int) -> int:
    return feed.line + feed.text.count("\n", feed.pos, pos)


def _resync(
    feed: _Feed, report: LoadReport, separator: str | None, problem: str, line: int | None = None, in_array: bool = True,
    reason: str | None = None,
) -> None:
    """Skip a malformed element: move to the start of the next element.

    ``reason`` replaces the default "malformed JSON: <problem>" wording of the skipped record.

    In a pretty-printed array the next element follows ',' and the same indentation as the
    first element; in a minified array it follows '},'; in a sequence of values it is a '{'
    at the start of a line.
    """
    line = feed.line if line is None else line
    if not in_array:
        marker = re.compile(r"\n(?=\{)")
    elif separator and "\n" in separator:
        marker = re.compile(re.escape("," + separator) + r"(?=\{)")
    else:
        marker = re.compile(r"\}\s*,\s*(?=\{)")
    search_from = feed.pos + 1
    while True:
        match = marker.search(feed.text, search_from)
        if match:
            feed.advance(match.end())
            resumed = f"; resumed at line {feed.line}"
            break
        search_from = max(feed.pos + 1, len(feed.text) - 64)
        if not feed.fill():
            feed.advance(len(feed.text))
            resumed = "; nothing after it could be read"
            break
    if reason is not None:
        report.skip(line, f"{reason}{resumed}")
    else:
        report.skip(line, f"malformed JSON: {problem}; this record was skipped{resumed}; fix the file to load it")


def first_json_value_kind(path: Path, source: str) -> str:
    """'[' for a JSON array, '{' for an object or JSON Lines, '' for an empty file (reads a few bytes)."""
    with open_binary(path, source) as handle:
        head = handle.read(4096)
    text = head.decode("utf-8", errors="replace").lstrip(_BOM + " \t\r\n")
    return text[:1]


def first_line_is_json(path: Path, limit: int = 8 << 20) -> bool:
    """True when the first line (up to ``limit`` bytes) is one whole JSON value: JSON Lines, not a pretty-printed value.

    A line nested too deeply to parse counts as JSON (its record is then skipped as too deep).
    """
    with open(path, "rb") as handle:
        line = handle.readline(limit).decode("utf-8", errors="replace").strip().lstrip(_BOM)
    try:
        json.loads(line)
    except RecursionError:
        return True
    except ValueError:
        return False
    return True


def file_size(path: Path) -> int:
    return os.path.getsize(path)
