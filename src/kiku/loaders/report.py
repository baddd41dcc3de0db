"""The load report: what was loaded, what was skipped and why, and what was repaired.

The pipeline passes one :class:`LoadReport` to :func:`kiku.loaders.load_conversations`, reads
the conversations, then writes ``report.skipped`` and ``report.warnings`` into the run manifest.

Example:
    >>> report = LoadReport(source="chats.jsonl", format="jsonl")
    >>> report.skip(7, "malformed JSON: Expecting value (column 1); fix or delete the line")
    >>> report.skipped[0].one_line()
    'chats.jsonl:7: malformed JSON: Expecting value (column 1); fix or delete the line'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from kiku.records import SkippedRecord

#: How many warnings of one kind are listed one by one before they are only counted.
WARNINGS_PER_KIND = 20


class LoadReport(BaseModel):
    """Counts and reasons collected while one input is read.

    ``skipped`` lists every record that was not loaded (all of them, never capped), with the
    line (or row) it started on and a one-line reason that says what to do. ``warnings`` lists
    repairs that kept a record (invalid UTF-8 replaced, a file cut off mid-record, an invalid
    timestamp dropped...); warnings of one kind are listed up to ``WARNINGS_PER_KIND`` times and
    then summarised by :meth:`finish`. ``imported`` counts what came with the conversations
    (a Kura checkpoint's ``kura_summaries``, ``kura_clusters``...) and ``notes`` says it in words.
    """

    source: str = ""
    format: str = ""
    loaded: int = 0
    skipped: list[SkippedRecord] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    imported: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    _warning_counts: dict[str, int] = PrivateAttr(default_factory=dict)
    _finished: bool = PrivateAttr(default=False)
    _current: tuple[str, int | None] = PrivateAttr(default=("", None))

    @property
    def current_source(self) -> str:
        """The file the conversation last yielded by ``load_conversations`` came from."""
        return self._current[0] or self.source

    @property
    def current_line(self) -> int | None:
        """The line (or 1-based row) where the conversation last yielded starts (for ``source_line``)."""
        return self._current[1]

    def set_current(self, source: str, line: int | None) -> None:
        self._current = (source, line)

    def skip(self, line: int | None, reason: str, record_id: str | None = None, source: str | None = None) -> None:
        """Record one input record that was not loaded."""
        self.skipped.append(
            SkippedRecord(source=source or self.source, line=line, record_id=record_id, reason=reason)
        )

    def warn(self, message: str, kind: str | None = None) -> None:
        """Record a repair; ``kind`` groups repeated warnings so that only the first few are listed."""
        key = kind or message
        count = self._warning_counts.get(key, 0) + 1
        self._warning_counts[key] = count
        if count <= WARNINGS_PER_KIND:
            self.warnings.append(message)

    def finish(self) -> None:
        """Summarise warnings of one kind that went past ``WARNINGS_PER_KIND`` (idempotent)."""
        if self._finished:
            return
        self._finished = True
        for kind, count in self._warning_counts.items():
            if count > WARNINGS_PER_KIND:
                self.warnings.append(f"{self.source}: {count - WARNINGS_PER_KIND} more warnings of the kind '{kind}' were not listed")

    def for_source(self, source: str) -> LoadReport:
        """A view that records into this report's lists but names another file (one inside a folder input)."""
        return self.model_copy(update={"source": source})

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    def reasons(self) -> dict[str, int]:
        """Skipped records counted by the kind of reason (the text before the first ':').

        >>> r = LoadReport(source="a.jsonl"); r.skip(1, "malformed JSON: x"); r.skip(2, "malformed JSON: y")
        >>> r.reasons()
        {'malformed JSON': 2}
        """
        counts: dict[str, int] = {}
        for record in self.skipped:
            kind = record.reason.split(":", 1)[0].split(" (", 1)[0].strip()
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def summary(self) -> str:
        """One line for the end-of-run report.

        >>> LoadReport(source="a.jsonl", format="jsonl", loaded=3).summary()
        'a.jsonl (jsonl): loaded 3 conversations, skipped 0, 0 warnings'
        """
        text = f"{self.source} ({self.format}): loaded {self.loaded} conversations, skipped {self.skipped_count}, {len(self.warnings)} warnings"
        if self.skipped:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in self.reasons().items()) + ")"
        return text

    def to_manifest(self) -> dict[str, Any]:
        """The ``skipped`` / ``warnings`` / counts part of a run manifest (JSON-ready)."""
        return {
            "source": self.source,
            "format": self.format,
            "loaded": self.loaded,
            "skipped": [r.model_dump() for r in self.skipped],
            "warnings": list(self.warnings),
            "imported": dict(self.imported),
        }
