"""The engine seam: how the map stages (load on an engine, describe, embed) run their work in chunks.

**A chunk** is a fixed slice of the run's rows: chunk ``i`` holds rows
``i * chunk_rows`` to ``(i + 1) * chunk_rows`` of the stage's input, in the input's order
(:meth:`kiku.store.RunStore.iter_chunks` cuts them; the last one may be shorter). Its
:class:`Chunk` carries that input as an Arrow table, its ``key`` (the fingerprint of the
chunk's input bytes and of the chunk function's configuration: :func:`chunk_key`) and its
``work`` (the units the progress bar counts for it: rows for describe, texts to embed for embed).

**A chunk function** (:class:`ChunkFunction`) turns one chunk's input table into its output
table: ``fn(table, progress=None) -> table``. It is a picklable object holding the stage's
component (``DescribeChunk(describer)``, ``EmbedChunk(embedder)``) that loads its model
lazily, on first call, so a worker process (a Ray actor) can hold one and reuse the model
across chunks. It is a pure function of its input: the same table gives the same output,
wherever and however often it runs. ``fingerprint()`` names its configuration.

**A part** is one chunk's output, written atomically by the driver through the run store
(:meth:`~kiku.store.RunStore.write_part`): ``<run>/.parts/<table>/part-000123.parquet`` and
its record ``part-000123.json`` (the chunk's key, rows, bytes, sha256). Once every chunk has
a part, the stage streams the parts in chunk order into its usual table
(``facets.parquet``, ``embeddings.parquet``: same names and schemas as a one-shot run, so no
reader changes) and removes them.

**Notes from a chunk for the driver.** A chunk function's output may carry two notes in its
schema metadata, which :func:`map_chunks` takes off before the part is written
(:func:`with_notes`, :func:`take_notes`):

- *incomplete*: some rows kept fallback output (an LLM call failed). The part is used for this
  run's table but recorded as incomplete, so the next run does that chunk again (and the stage
  keeps its parts until none is incomplete: the retry redoes those chunks only);
- *a worker report*: what the chunk function's component did on a worker process (a Ray
  actor holds a copy of it, not the driver's object): for the LLM describer, its client's
  calls, tokens and cost, the items that failed, and the answers it got. The driver hands it to
  ``fn.absorb_worker_report(report)``, which folds it into the driver's component (so the
  manifest counts every call, the stage reports every failure, and the driver's response cache
  holds every answer). A component copied to a worker takes its report with
  ``take_worker_report()`` after each chunk; the local engine never copies one, so it has none.

**Resume.** A run killed mid-stage leaves the parts it finished. The next run cuts the same
chunks, and :func:`map_chunks` hands the engine only the chunks without a whole part for
their key (:meth:`~kiku.store.RunStore.part_is_whole`): a missing, truncated or changed part,
or one made from other input or settings, is done again; the others are reused.

**Each distinct text is embedded once per run**, whatever the engine: the embed stage's driver
builds each chunk's input with an ``embed`` flag, set only on the first row of the run with
that text and not in the previous run's cache (``kiku.pipeline.stage_embed``); the chunk
function embeds the flagged rows, and assembling the parts in chunk order fills every other
row from its text's first occurrence. Flags depend on chunk order alone, never on which chunk
finishes first.

**What an engine must guarantee** (:class:`Engine`; :class:`LocalEngine` is the default, a
Ray engine lives in ``kiku.engine_ray``):

- ``run(fn, chunks, progress)`` applies ``fn`` to every chunk it is given and yields
  ``(chunk.index, output)`` once per chunk, in any order (the driver writes each part as it
  arrives and assembles the table in chunk order, so completion order never shows);
- it pulls ``chunks`` lazily and keeps only a bounded number in flight (the driver builds
  them one by one: a million conversations are never in memory at once);
- for the same chunk it returns the same table (same bytes once written): the engine
  changes where and how fast work runs, never what it produces, so it is not in any stage
  fingerprint, and nor is ``chunk_rows``;
- ``progress(n)`` amounts add up to the ``work`` of the chunks it ran (per batch for a
  local engine, per finished chunk for a remote one), called from the thread iterating ``run``;
- an exception of ``fn`` (a ``KikuError`` above all) reaches the caller unchanged, and the
  parts already written stay for the next run;
- ``close()`` releases workers (called once per run).

Example:
    >>> import pyarrow as pa, tempfile
    >>> from kiku.store import RunStore
    >>> class Double:
    ...     def __call__(self, table, progress=None):
    ...         return pa.table({"x": pa.compute.multiply(table.column("x"), 2)})
    ...     def fingerprint(self):
    ...         return "double-v1"
    >>> store = RunStore(tempfile.mkdtemp())
    >>> fn = Double()
    >>> chunks = (Chunk(i, chunk_key(fn, t), t, t.num_rows) for i, t in enumerate(
    ...     [pa.table({"x": [1, 2]}), pa.table({"x": [3]})]))
    >>> report = map_chunks(store, LocalEngine(), "doubled", fn, chunks)
    >>> report.chunks, report.reused, [store.read_part("doubled", i).column("x").to_pylist() for i in report.indexes]
    (2, 0, [[2, 4], [6]])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pyarrow as pa

from kiku.errors import KikuError

if TYPE_CHECKING:
    from kiku.config import RunConfig
    from kiku.store import RunStore

ProgressFn = Callable[[int], None]


@runtime_checkable
class ChunkFunction(Protocol):
    """One chunk's input table -> its output table (see the module docstring); picklable."""

    def __call__(self, table: pa.Table, progress: ProgressFn | None = None) -> pa.Table: ...

    def fingerprint(self) -> str: ...


@dataclass(frozen=True)
class Chunk:
    """Chunk ``index`` of a stage: its input rows, the key its part is recorded under, and its work."""

    index: int
    key: str
    table: pa.Table
    work: int


class Engine(Protocol):
    """Runs a chunk function over chunks (the guarantees are in the module docstring)."""

    name: str

    def run(self, fn: ChunkFunction, chunks: Iterable[Chunk], progress: ProgressFn) -> Iterator[tuple[int, pa.Table]]:
        """Yield ``(chunk.index, fn(chunk.table))`` once per chunk, in any order."""
        ...

    def close(self) -> None:
        """Release the engine's workers."""
        ...


class LocalEngine:
    """The default engine: every chunk in this process, one after the other, in chunk order.

    >>> engine = LocalEngine()
    >>> [(i, t.num_rows) for i, t in engine.run(lambda t, progress=None: t, [Chunk(0, "k", pa.table({"a": [1]}), 1)], print)]
    [(0, 1)]
    """

    name = "local"

    def run(self, fn: ChunkFunction, chunks: Iterable[Chunk], progress: ProgressFn) -> Iterator[tuple[int, pa.Table]]:
        for chunk in chunks:
            yield chunk.index, fn(chunk.table, progress)

    def close(self) -> None:
        return None


def make_engine(config: RunConfig) -> Engine:
    """The engine ``config.engine`` names: :class:`LocalEngine`, or ``kiku.engine_ray.RayEngine``
    (imported here, so kiku runs without Ray); a one-line ``MissingDependencyError`` when Ray is missing.

    >>> from kiku.config import RunConfig
    >>> make_engine(RunConfig()).name
    'local'
    """
    if config.engine == "local":
        return LocalEngine()
    from kiku.errors import MissingDependencyError

    try:
        import ray  # noqa: F401
    except ImportError:
        raise MissingDependencyError("ray (for --engine ray)", "ray") from None
    try:
        from kiku.engine_ray import RayEngine  # type: ignore[import-not-found, unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name != "kiku.engine_ray":
            raise
        raise KikuError("--engine ray: this kiku has no Ray engine (kiku.engine_ray); use --engine local") from None
    engine: Engine = RayEngine(address=config.engine_address)
    return engine


def table_digest(table: pa.Table) -> str:
    """sha256 of a table's schema and values (its Arrow IPC stream), the input half of a chunk key.

    >>> table_digest(pa.table({"a": [1, 2]})) == table_digest(pa.table({"a": [1, 2]}))
    True
    >>> table_digest(pa.table({"a": [1, 2]})) == table_digest(pa.table({"a": [1, 3]}))
    False
    """
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(memoryview(sink.getvalue())).hexdigest()


def chunk_key(fn: ChunkFunction, table: pa.Table) -> str:
    """The key a chunk's part is recorded under: the chunk function's configuration and its input."""
    from kiku.store import fingerprint

    return fingerprint(type(fn).__qualname__, fn.fingerprint(), table_digest(table))


#: Schema-metadata keys of the notes a chunk's output carries for the driver (module docstring).
INCOMPLETE_NOTE = b"kiku.incomplete"
WORKER_REPORT_NOTE = b"kiku.worker_report"


def with_notes(table: pa.Table, worker_report: dict[str, Any] | None = None, incomplete: bool = False) -> pa.Table:
    """``table`` carrying the notes for the driver in its schema metadata (see :func:`take_notes`).

    >>> table, report, incomplete = take_notes(with_notes(pa.table({"a": [1]}), {"calls": 2}, incomplete=True))
    >>> table.schema.metadata, report, incomplete
    (None, {'calls': 2}, True)
    """
    notes: dict[bytes, bytes] = {}
    if worker_report is not None:
        notes[WORKER_REPORT_NOTE] = json.dumps(worker_report, ensure_ascii=False).encode("utf-8")
    if incomplete:
        notes[INCOMPLETE_NOTE] = b"1"
    if not notes:
        return table
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **notes})


def take_notes(table: pa.Table) -> tuple[pa.Table, dict[str, Any] | None, bool]:
    """(``table`` without the notes, the worker report or None, whether it is incomplete)."""
    metadata = dict(table.schema.metadata or {})
    if WORKER_REPORT_NOTE not in metadata and INCOMPLETE_NOTE not in metadata:
        return table, None, False
    raw = metadata.pop(WORKER_REPORT_NOTE, None)
    incomplete = metadata.pop(INCOMPLETE_NOTE, None) is not None
    return table.replace_schema_metadata(metadata or None), (json.loads(raw) if raw else None), incomplete


@dataclass
class MapReport:
    """What :func:`map_chunks` did: chunks in all, reused (a whole part existed), computed, and
    how many of the computed ones are incomplete (some rows kept fallback output)."""

    chunks: int = 0
    reused: int = 0
    computed: int = 0
    incomplete: int = 0
    work: int = 0  #: the work (Chunk.work) of the computed chunks: e.g. texts embedded by this call
    indexes: list[int] = field(default_factory=list)

    def details(self) -> dict[str, int]:
        """The stage-record fields (``manifest["stages"][stage]``)."""
        details = {"chunks": self.chunks, "chunks_reused": self.reused, "chunks_computed": self.computed}
        if self.incomplete:
            details["chunks_incomplete"] = self.incomplete
        return details


def map_chunks(store: RunStore, engine: Engine, table: str, fn: ChunkFunction, chunks: Iterable[Chunk],
               progress: ProgressFn | None = None, on_reused: Callable[[Chunk], None] | None = None) -> MapReport:
    """Make sure every chunk has a whole part of ``table``: reuse those that do, run ``fn`` on
    the others with ``engine`` and write each output as its part (in the order the engine
    finishes them), after taking its notes off (module docstring: a worker report goes to
    ``fn.absorb_worker_report``; an incomplete chunk's part is recorded as such).
    ``on_reused(chunk)`` is called for each reused chunk (a progress bar counts it as done).
    Parts left from an earlier chunking (index past the last chunk) are removed.
    """
    report = MapReport()
    advance = progress or (lambda amount: None)
    keys: dict[int, str] = {}
    work: dict[int, int] = {}

    def todo() -> Iterator[Chunk]:
        for chunk in chunks:
            report.chunks += 1
            report.indexes.append(chunk.index)
            keys[chunk.index] = chunk.key
            work[chunk.index] = chunk.work
            if store.part_is_whole(table, chunk.index, chunk.key):
                report.reused += 1
                if on_reused is not None:
                    on_reused(chunk)
                continue
            yield chunk

    pending = todo()
    absorb = getattr(fn, "absorb_worker_report", None)
    for index, output in engine.run(fn, pending, advance):
        output, worker_report, incomplete = take_notes(output)
        if worker_report is not None and callable(absorb):
            absorb(worker_report)
        store.write_part(table, index, keys[index], output, complete=not incomplete)
        report.computed += 1
        report.incomplete += int(incomplete)
        report.work += work[index]
    for _ in pending:  # chunks the engine never took
        pass
    if report.computed + report.reused != report.chunks:
        raise KikuError(f"engine {engine.name!r} returned {report.computed} parts for "
                        f"{report.chunks - report.reused} chunks of {table}")
    for stale in set(store.finished_parts(table)) - set(report.indexes):
        store.part_path(table, stale).unlink(missing_ok=True)
        store.part_path(table, stale).with_suffix(".json").unlink(missing_ok=True)
    return report
