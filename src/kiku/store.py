"""The run store: a folder with one Parquet file per stage and ``manifest.json``.

See ``docs/run-store.md`` for the schema. Writes are atomic (temporary name, then rename), so
a run killed mid-write never leaves a half file that looks finished; a stage counts as done
only when the manifest records its fingerprint after its files were renamed into place.

The manifest also records each stage file's size and sha256, so a file damaged later (a
truncated copy, a full disk) is never reused or read as if it were whole. One writer at a
time holds the run's lock (``RunStore.lock()``, an ``flock`` on ``.kiku.lock`` that the
kernel releases when its holder dies, so a killed run never leaves a stale lock).

Example:
    >>> import tempfile, pyarrow as pa
    >>> store = RunStore(tempfile.mkdtemp())
    >>> store.write_table("projection", pa.table({"conversation_id": ["a"], "x": [0.0], "y": [1.0]}))
    >>> store.complete_stage("project", fingerprint="abc", seconds=0.1, rows=1)
    >>> store.stage_is_current("project", "abc")
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs are then not locked
    fcntl = None  # type: ignore[assignment]

from kiku.errors import KikuError
from kiku.records import Conversation, Message, SkippedRecord
from kiku.stages import PIPELINE

MANIFEST = "manifest.json"
#: The writer's lock file (holds the pid of the ``kiku run`` writing the folder).
LOCK_FILE = ".kiku.lock"
#: Temporary files of atomic writes: ``.NAME.tmp-PID``.
TEMP_PATTERN = ".*.tmp-*"
#: The folder of a run's chunk parts (``kiku.engine``): ``.parts/<table>/part-000123.parquet`` and ``.json``.
PARTS_DIR = ".parts"

#: Stage name -> the Parquet tables it writes (without ``.parquet``), from ``kiku.stages.PIPELINE``.
STAGE_TABLES: dict[str, tuple[str, ...]] = {stage.name: stage.outputs for stage in PIPELINE}
#: Table name -> the stage that writes it.
TABLE_STAGE: dict[str, str] = {table: stage for stage, tables in STAGE_TABLES.items() for table in tables}

# --- schemas: the one definition of each table's columns (docs/run-store.md) ----------------

#: ``conversations.parquet``: one row per conversation. ``source_line`` is the 1-based line
#: (or row) of the input where the conversation starts (null when the format has no lines).
CONVERSATION_SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("messages", pa.string()),
    ("metadata", pa.string()),
    ("source", pa.string()),
    ("source_line", pa.int64()),
])

#: ``facets.parquet``: the built-in facet columns; user facets follow as ``facet_<name>``.
FACET_BASE_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("conversation_id", pa.string()),
    ("request", pa.string()),
    ("turns", pa.int64()),
    ("messages", pa.int64()),
    ("language", pa.string()),
    ("programming_languages", pa.list_(pa.string())),
    ("user_chars", pa.int64()),
    ("assistant_chars", pa.int64()),
    ("summary", pa.string()),
    ("task", pa.string()),
    ("concern", pa.int64()),
    ("frustration", pa.int64()),
    ("assistant_errors", pa.list_(pa.string())),
)

def with_facet_types(table: pa.Table) -> pa.Table:
    """Cast a facets table's built-in columns to :data:`FACET_BASE_FIELDS` (an all-null column,
    e.g. ``summary`` without an LLM, is otherwise inferred as type ``null``); ``facet_<name>``
    columns keep their inferred types.

    >>> with_facet_types(pa.table({"conversation_id": ["a"], "summary": [None]})).schema.field("summary").type
    DataType(string)
    """
    return table.cast(facet_schema(table.schema))


def facet_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the built-in facet columns given their :data:`FACET_BASE_FIELDS` types.

    >>> facet_schema(pa.schema([("turns", pa.null()), ("facet_x", pa.null())])).types
    [DataType(int64), DataType(null)]
    """
    declared = dict(FACET_BASE_FIELDS)
    return pa.schema([pa.field(f.name, declared.get(f.name, f.type)) for f in schema])


def unify_facet_schemas(schemas: list[pa.Schema]) -> pa.Schema:
    """The one facets schema of tables written in pieces: columns in order of first appearance,
    types promoted as ``pa.concat_tables(promote_options="permissive")`` does (an all-null column
    of one piece takes the type of another), then :func:`facet_schema`.

    >>> unify_facet_schemas([pa.schema([("facet_x", pa.null())]), pa.schema([("facet_x", pa.string()), ("turns", pa.null())])])
    facet_x: string
    turns: int64
    """
    return facet_schema(pa.unify_schemas(schemas, promote_options="permissive"))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema`` in its order, cast to its types (missing ones null).

    >>> conform(pa.table({"b": [1]}), pa.schema([("a", pa.string()), ("b", pa.float64())])).to_pylist()
    [{'a': None, 'b': 1.0}]
    """
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


#: ``clusters.parquet`` and ``base_clusters.parquet``: one row per cluster.
CLUSTER_SCHEMA = pa.schema([
    ("cluster_id", pa.string()),
    ("level", pa.int32()),
    ("parent_id", pa.string()),
    ("name", pa.string()),
    ("description", pa.string()),
    ("size", pa.int64()),
    ("share", pa.float64()),
    ("keyphrases", pa.list_(pa.string())),
    ("representative_request", pa.string()),
    ("is_noise", pa.bool_()),
    ("x", pa.float64()),
    ("y", pa.float64()),
    ("member_ids", pa.list_(pa.string())),
])

#: ``assignments.parquet``: one row per conversation and level.
ASSIGNMENT_SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("level", pa.int32()),
    ("cluster_id", pa.string()),
])

#: ``projection.parquet``: one row per conversation (map coordinates, float32).
PROJECTION_SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("x", pa.float32()),
    ("y", pa.float32()),
])

#: ``assign_scores.parquet`` (a run written by ``kiku assign``): per conversation its nearest
#: base topic, the cosine similarity to it, the threshold it was held to and whether it was assigned.
ASSIGN_SCORE_SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("nearest_topic", pa.string()),
    ("similarity", pa.float32()),
    ("threshold", pa.float32()),
    ("assigned", pa.bool_()),
])


def embedding_schema(dim: int) -> pa.Schema:
    """``embeddings.parquet``: one row per conversation, the vector as a fixed-size list of ``dim``.

    >>> embedding_schema(384).field("embedding").type
    FixedSizeListType(fixed_size_list<item: float>[384])
    """
    return pa.schema([
        ("conversation_id", pa.string()),
        ("text_hash", pa.string()),
        ("truncated", pa.bool_()),
        ("embedding", pa.list_(pa.float32(), dim)),
    ])


#: The hand-edit log of ``kiku edit`` (``kiku.edits``): one JSON line per edit, appended, never rewritten.
EDIT_LOG = "edits.jsonl"
#: The tables every reader sees with the edit log applied (``read_table``, ``read_frame``, ``open_views``).
EDITED_TABLES: tuple[str, ...] = ("clusters", "assignments")


def edited(folder: str | Path, name: str, table: pa.Table | None = None) -> pa.Table | None:
    """``table`` (or the file) of ``name`` with the run's edit log applied; ``table`` unchanged
    (None when not given) when ``name`` is not edited or the run has no edits (``kiku.edits``)."""
    folder = Path(folder)
    if name not in EDITED_TABLES or not (folder / EDIT_LOG).is_file() or missing_tables(folder, EDITED_TABLES):
        return table
    from kiku.edits import edited_table

    result = edited_table(folder, name)
    return result.select(table.column_names) if table is not None else result
#: Tables that commands write into a finished run (not stage outputs): the joined outcomes
#: (``kiku join``, ``kiku.outcomes``) and the gap type of each conversation (``kiku gaps``,
#: ``kiku.gaps``). Each is recorded in ``manifest["derived"][name]`` with its file's size and
#: sha256 and the ``load`` stage fingerprint it was computed against (:meth:`RunStore.write_derived`).
DERIVED_TABLES: tuple[str, ...] = ("outcomes", "gaps")

#: ``gaps.parquet``: one row per conversation.
GAP_SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("gap_type", pa.string()),
    ("confidence", pa.float64()),
    ("backend", pa.string()),
])


#: The tables a reader of a finished run (the explorer, ``kiku export``) needs; every one is
#: a declared stage output (``tests/test_stages.py`` checks it).
EXPLORER_TABLES: tuple[str, ...] = ("conversations", "clusters", "assignments", "projection")


# --- conversations: rows <-> records -------------------------------------------------------


def conversation_row(conversation: Conversation, source: str, source_line: int | None = None) -> dict[str, Any]:
    """One row of ``conversations.parquet`` (:data:`CONVERSATION_SCHEMA`) for a conversation.

    Messages and metadata are stored as JSON text; a naive ``created_at`` is read as UTC.

    >>> from kiku.records import Message
    >>> row = conversation_row(Conversation(id="c1", messages=[Message(role="user", content="hi")]), "q.jsonl", 3)
    >>> row["conversation_id"], row["source_line"], conversations_from_batch(pa.RecordBatch.from_pylist([row]))[0].messages[0].content
    ('c1', 3, 'hi')
    """
    messages = [
        {"role": m.role, "content": m.content, "created_at": m.created_at.isoformat() if m.created_at else None}
        for m in conversation.messages
    ]
    created_at = conversation.created_at
    if created_at is not None and created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return {
        "conversation_id": conversation.id,
        "created_at": created_at,
        "messages": json.dumps(messages, ensure_ascii=False),
        "metadata": json.dumps(conversation.metadata, ensure_ascii=False, default=str),
        "source": source,
        "source_line": source_line,
    }


def conversations_from_batch(batch: pa.RecordBatch) -> list[Conversation]:
    """Rebuild Conversation records from a batch of ``conversations.parquet``.

    The inverse of :func:`conversation_row`. The rows were validated when they were loaded, so they are rebuilt without validating
    again (``model_construct``): several times faster on long conversations.
    """
    columns = batch.to_pydict()
    conversations = []
    for cid, created, messages, metadata in zip(
        columns["conversation_id"], columns["created_at"], columns["messages"], columns["metadata"]
    ):
        turns = [
            Message.model_construct(
                role=m["role"], content=m["content"],
                created_at=datetime.fromisoformat(m["created_at"]) if m.get("created_at") else None,
            )
            for m in json.loads(messages)
        ]
        conversations.append(
            Conversation.model_construct(
                id=cid, created_at=created, messages=turns, metadata=json.loads(metadata) if metadata else {}
            )
        )
    return conversations


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last one shorter) from batches of any sizes.

    Parquet readers end a batch at each row group, so batch sizes alone do not fix chunk
    boundaries; this does (``kiku.engine`` chunks must not depend on how a file was written).

    >>> batches = [pa.record_batch({"a": list(range(n))}) for n in (3, 5, 1)]
    >>> [t.num_rows for t in rechunk(batches, 4)]
    [4, 4, 1]
    """
    if rows < 1:
        raise ValueError("rows must be >= 1")
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows).combine_chunks()
            rest = table.slice(rows)
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            held = rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks()


def iter_conversations(store: RunStore, batch_size: int = 2048) -> Iterator[list[Conversation]]:
    """Stream a run's conversations (``conversations.parquet``) in batches of ``batch_size``."""
    for batch in store.iter_batches("conversations", batch_size=batch_size):
        yield conversations_from_batch(batch)



def table_file(name: str) -> str:
    """The file name of a run table.

    >>> table_file("clusters")
    'clusters.parquet'
    """
    return f"{name}.parquet"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts.

    >>> fingerprint({"k": 1}, "x") == fingerprint({"k": 1}, "x")
    True
    """
    payload = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def file_fingerprint(path: Path, chunk_size: int = 1 << 20) -> tuple[str, int]:
    """sha256 and byte size of a file, or of every file in a folder (names and contents)."""
    digest = hashlib.sha256()
    total = 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
                total += len(chunk)
    return digest.hexdigest(), total


def package_versions() -> dict[str, str]:
    """Versions of Python and the libraries whose behaviour shapes a run."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("kiku", "numpy", "scikit-learn", "umap-learn", "onnxruntime", "tokenizers",
                 "pyarrow", "duckdb", "py3langid", "llama-cpp-python"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def file_record(path: Path) -> dict[str, Any]:
    """What the manifest records about a stage file: its byte size and sha256."""
    digest, size = file_fingerprint(path)
    return {"bytes": size, "sha256": digest}


def rerun_command(run: Path, manifest: dict[str, Any]) -> str:
    """The ``kiku run`` command that (re)builds ``run`` from the input its manifest names.

    >>> rerun_command(Path("runs/a b"), {"input": {"path": "chats.jsonl"}})
    "kiku run chats.jsonl --out 'runs/a b'"
    """
    import shlex

    source = (manifest.get("input") or {}).get("path") or "INPUT"
    return f"kiku run {shlex.quote(str(source))} --out {shlex.quote(str(run))}"


def _parquet_footer_ok(path: Path) -> bool:
    try:
        _ = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):
        return False
    return True


class RunBusyError(KikuError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """The exclusive writer lock on a run folder (``flock`` on ``.kiku.lock``).

    The kernel drops an ``flock`` when the process holding it exits, however it exits, so
    the lock file left behind by a killed run never blocks the next one.
    """

    def __init__(self, folder: Path) -> None:
        self.file = folder / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise RunBusyError naming the holder's pid (a no-op without ``fcntl``)."""
        if fcntl is None:  # pragma: no cover
            return
        try:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise KikuError(f"{self.file.parent}: cannot write to the run folder ({exc.strerror}); choose another --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunBusyError(
                f"{self.file.parent} is being written by another kiku run (pid {holder}); wait or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    @staticmethod
    def holder(folder: Path) -> str | None:
        """The pid of a live writer of ``folder``, or None when nobody holds its lock."""
        if fcntl is None:  # pragma: no cover
            return None
        try:
            fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        finally:
            os.close(fd)
        return None


class RunStore:
    """One run folder: Parquet tables and the manifest.

    Parameters
    ----------
    path:
        The run folder; created when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise KikuError(f"{self.path}: exists and is not a folder; choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KikuError(f"{self.path}: cannot create the run folder ({exc.strerror}); choose another --out") from None
        self.manifest: dict[str, Any] = self._read_manifest()
        self._verified: dict[tuple[str, int, int, str | None], bool] = {}

    # --- the writer's lock ----------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[RunStore]:
        """Hold the run's writer lock: one ``kiku run`` per folder at a time.

        On entry the manifest is read again (another run may have written it since this
        store opened) and temporary files left by a killed run are removed: with the lock
        held nobody else is writing them.
        """
        run_lock = RunLock(self.path)
        run_lock.acquire()
        try:
            self.remove_stale_temporaries()
            self.manifest = self._read_manifest()
            yield self
        finally:
            run_lock.release()

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the temporary files of writes that never finished; call only holding the lock."""
        removed = []
        for path in [*self.path.glob(TEMP_PATTERN), *self.path.glob(f"{PARTS_DIR}/*/{TEMP_PATTERN}")]:
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    # --- manifest -------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any]:
        file = self.path / MANIFEST
        if not file.exists():
            return {"created_at": now_iso(), "stages": {}}
        try:
            manifest = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise KikuError(f"{file}: manifest is unreadable ({exc}); delete the run folder to start over") from exc
        manifest.setdefault("stages", {})
        return manifest

    def save_manifest(self) -> None:
        self.manifest["updated_at"] = now_iso()
        self._atomic_write_bytes(self.path / MANIFEST, json.dumps(self.manifest, indent=2, default=str).encode())

    @staticmethod
    def _atomic_write_bytes(target: Path, data: bytes) -> None:
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)

    # --- stages ---------------------------------------------------------------------------
    def stage_is_current(self, stage: str, stage_fingerprint: str) -> bool:
        """True when ``stage`` finished with this fingerprint and its files are whole."""
        record = self.manifest["stages"].get(stage)
        if not record or record.get("fingerprint") != stage_fingerprint:
            return False
        return not self.damaged_tables(stage)

    def damaged_tables(self, stage: str) -> list[str]:
        """The stage's tables that are missing or differ from what the stage recorded writing."""
        return [t for t in STAGE_TABLES.get(stage, ()) if not self.table_is_whole(t)]

    def table_is_whole(self, name: str) -> bool:
        """True when the table's file exists and matches the size and sha256 in the manifest.

        Runs written before sizes were recorded get a cheaper check: a readable Parquet footer.
        """
        path = self.table_path(name)
        if not path.is_file():
            return False
        stage = TABLE_STAGE.get(name)
        expected = (self.manifest["stages"].get(stage) or {}).get("files", {}).get(path.name) if stage else None
        if expected is None:
            return _parquet_footer_ok(path)
        status = path.stat()
        if status.st_size != expected.get("bytes"):
            return False
        # One hash per file version and process: reuse checks and readers ask again and again.
        key = (name, status.st_size, status.st_mtime_ns, expected.get("sha256"))
        if key not in self._verified:
            self._verified[key] = file_record(path)["sha256"] == expected.get("sha256")
        return self._verified[key]

    def complete_stage(self, stage: str, fingerprint: str, seconds: float, rows: int, **extra: Any) -> None:
        """Record that ``stage`` finished: its fingerprint, timing, rows and its files' sizes and sha256."""
        files = {self.table_path(t).name: file_record(self.table_path(t))
                 for t in STAGE_TABLES.get(stage, ()) if self.has_table(t)}
        self.manifest["stages"][stage] = {
            "fingerprint": fingerprint,
            "seconds": round(seconds, 3),
            "rows": rows,
            "completed_at": now_iso(),
            **extra,
            "files": files,
        }
        self.save_manifest()

    def invalidate_from(self, stage: str) -> None:
        """Mark ``stage`` and every stage that reads it (``kiku.stages.downstream``) unfinished, and save the manifest.

        A record whose files are whole keeps its details (the embedding stage reuses its
        vectors as a cache) but loses its fingerprint; a record with damaged files keeps nothing
        else (no cache is read from a damaged file).
        Readers then refuse the run until a ``kiku run`` finishes it, so the folder never
        passes off results computed from other input or settings as current.
        """
        from kiku.stages import STAGES, downstream

        for later in downstream(stage) if stage in STAGES else (stage,):
            record = self.manifest["stages"].get(later)
            if record is None:
                continue
            if self.damaged_tables(later):
                self.manifest["stages"][later] = {"fingerprint": None}
            else:
                record["fingerprint"] = None
        self.save_manifest()

    def check_readable(self, tables: tuple[str, ...] | None = None) -> None:
        """Raise a one-line KikuError unless every stage table present (or each one named) is
        finished and whole.

        A table whose stage the manifest does not mention (a folder written by other tools) only
        needs a readable Parquet footer.
        """
        names = tables or tuple(t for t in TABLE_STAGE if self.has_table(t))
        for name in names:
            path = self.table_path(name)
            record = self.manifest["stages"].get(TABLE_STAGE.get(name, ""))
            if not path.is_file():
                raise KikuError(f"{self.path}: no {path.name}; run `{rerun_command(self.path, self.manifest)}` to produce it")
            if record is not None and record.get("fingerprint") is None:
                holder = RunLock.holder(self.path)
                if holder is not None:
                    raise KikuError(f"{self.path} is being written by another kiku run (pid {holder}); wait for it to finish")
                raise KikuError(f"{self.path}: the last kiku run stopped before finishing {path.name}; "
                                f"run `{rerun_command(self.path, self.manifest)}` again to finish it")
            if not self.table_is_whole(name):
                raise KikuError(f"{path} is damaged (size/checksum mismatch); "
                                f"run `{rerun_command(self.path, self.manifest)}` again to rebuild it")

    # --- derived tables: written into a finished run by later commands ----------------------
    def write_derived(self, name: str, table: pa.Table, **details: Any) -> None:
        """Write a :data:`DERIVED_TABLES` table atomically and record it in ``manifest["derived"]``.

        The record holds ``details`` (what produced it), the file's size and sha256 and the
        ``load`` stage fingerprint of the conversations it belongs to, so a reader can tell when
        the run was rebuilt from other input since (:meth:`check_derived`). Hold :meth:`lock`.
        """
        if name not in DERIVED_TABLES:
            raise ValueError(f"{name!r} is not a derived table ({', '.join(DERIVED_TABLES)})")
        self.write_table(name, table)
        load = (self.manifest["stages"].get("load") or {}).get("fingerprint")
        self.manifest.setdefault("derived", {})[name] = {
            **details,
            "rows": table.num_rows,
            "load_fingerprint": load,
            "written_at": now_iso(),
            "files": {table_file(name): file_record(self.table_path(name))},
        }
        self.save_manifest()

    def derived_record(self, name: str) -> dict[str, Any] | None:
        """What ``manifest["derived"]`` records about a derived table, or None when it was never written."""
        record = (self.manifest.get("derived") or {}).get(name)
        return record if isinstance(record, dict) else None

    def check_derived(self, name: str, command: str) -> dict[str, Any]:
        """The record of derived table ``name``; a one-line KikuError when it is missing, damaged
        or was computed for other conversations (``command`` says how to make it again)."""
        record = self.derived_record(name)
        path = self.table_path(name)
        if record is None or not path.is_file():
            raise KikuError(f"{self.path}: no {path.name} yet; run `{command}` first")
        expected = (record.get("files") or {}).get(path.name) or {}
        if file_record(path) != {"bytes": expected.get("bytes"), "sha256": expected.get("sha256")}:
            raise KikuError(f"{path} is damaged (size/checksum mismatch); run `{command}` again")
        load = (self.manifest["stages"].get("load") or {}).get("fingerprint")
        if record.get("load_fingerprint") != load:
            raise KikuError(f"{path.name} was computed before the run's conversations changed; run `{command}` again")
        return record

    # --- tables ---------------------------------------------------------------------------
    def table_path(self, name: str) -> Path:
        return self.path / table_file(name)

    def has_table(self, name: str) -> bool:
        return self.table_path(name).exists()

    def write_table(self, name: str, table: pa.Table) -> None:
        """Write a whole table atomically."""
        with self.table_writer(name, table.schema) as writer:
            writer.write_table(table)

    def table_writer(self, name: str, schema: pa.Schema) -> _AtomicParquetWriter:
        """A context manager for writing a table in batches; renamed into place on success."""
        return _AtomicParquetWriter(self.table_path(name), schema)

    def read_table(self, name: str, columns: list[str] | None = None, raw: bool = False) -> pa.Table:
        """A whole table; ``clusters`` and ``assignments`` with the edit log applied unless ``raw``."""
        path = self.table_path(name)
        if not path.exists():
            raise KikuError(f"{self.path}: no {name}.parquet; run `kiku run` to produce it")
        table = pq.read_table(path, columns=columns)
        return table if raw else edited(self.path, name, table)

    def iter_batches(self, name: str, batch_size: int = 2048, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream a table in record batches (bounded memory)."""
        yield from pq.ParquetFile(self.table_path(name)).iter_batches(batch_size=batch_size, columns=columns)

    def num_rows(self, name: str) -> int:
        return pq.ParquetFile(self.table_path(name)).metadata.num_rows

    def iter_chunks(self, name: str, rows: int, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """Stream a table in chunks of exactly ``rows`` rows (the last one shorter): :func:`rechunk`."""
        yield from rechunk(self.iter_batches(name, batch_size=rows, columns=columns), rows)

    # --- chunk parts (kiku.engine): a stage's output written chunk by chunk ------------------
    def parts_dir(self, name: str) -> Path:
        """The folder of table ``name``'s parts: ``<run>/.parts/<name>/``."""
        return self.path / PARTS_DIR / name

    def part_path(self, name: str, index: int) -> Path:
        """The file of part ``index`` of table ``name``.

        >>> import tempfile
        >>> RunStore(tempfile.mkdtemp()).part_path("embeddings", 7).name
        'part-000007.parquet'
        """
        return self.parts_dir(name) / f"part-{index:06d}.parquet"

    def write_part(self, name: str, index: int, key: str, table: pa.Table, complete: bool = True) -> None:
        """Write part ``index`` of table ``name`` atomically, then its record (``part-N.json``:
        the chunk's ``key``, rows, bytes, sha256, and ``complete``: False when some rows kept
        fallback output, e.g. failed LLM calls). A part without its record is never trusted, and
        an incomplete one is used for this run's table but never reused by the next run."""
        path = self.part_path(name, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = path.with_suffix(".json")
        record.unlink(missing_ok=True)
        with _AtomicParquetWriter(path, table.schema) as writer:
            writer.write_table(table)
        self._atomic_write_bytes(record, json.dumps({"key": key, "rows": table.num_rows, "complete": complete,
                                                     **file_record(path)}).encode())

    def part_is_whole(self, name: str, index: int, key: str) -> bool:
        """True when part ``index`` of ``name`` was written for ``key``, complete, and its file matches
        its record (size and sha256): a truncated, changed or incomplete part is done again."""
        path = self.part_path(name, index)
        try:
            record = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(record, dict) or record.get("key") != key or not path.is_file():
            return False
        if record.get("complete") is False:
            return False
        if path.stat().st_size != record.get("bytes"):
            return False
        return bool(file_record(path)["sha256"] == record.get("sha256"))

    def finished_parts(self, name: str) -> list[int]:
        """The indexes of the parts of ``name`` that have a record (whole or not: see :meth:`part_is_whole`)."""
        return sorted(int(p.stem.removeprefix("part-")) for p in self.parts_dir(name).glob("part-*.json"))

    def read_part(self, name: str, index: int) -> pa.Table:
        """Part ``index`` of table ``name`` (check :meth:`part_is_whole` first)."""
        return pq.read_table(self.part_path(name, index))

    def part_schema(self, name: str, index: int) -> pa.Schema:
        """The schema of part ``index`` of ``name`` (reads the footer only)."""
        return pq.read_schema(self.part_path(name, index))

    def remove_parts(self, name: str) -> None:
        """Delete table ``name``'s parts (once the table is whole)."""
        import shutil

        shutil.rmtree(self.parts_dir(name), ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.path / PARTS_DIR).rmdir()  # only when empty

    # --- SQL ------------------------------------------------------------------------------
    def connect(self, read_only: bool = False):  # noqa: ANN201 - duckdb.DuckDBPyConnection
        """An in-memory DuckDB connection with one view per Parquet file (:func:`open_views`)."""
        return open_views(self.path, read_only=read_only)


# --- readers that never write: the explorer, export, classify -------------------------------


class FileRecord(BaseModel):
    """What the manifest records about one stage file."""

    bytes: int
    sha256: str


class StageRecord(BaseModel):
    """One stage's entry in ``manifest["stages"]``; stage-specific details are extra fields.

    ``fingerprint`` is ``None`` while the stage is unfinished (a later ``kiku run`` redoes it).
    """

    model_config = ConfigDict(extra="allow")

    fingerprint: str | None = None
    seconds: float | None = None
    rows: int | None = None
    completed_at: str | None = None
    files: dict[str, FileRecord] = Field(default_factory=dict)


class InputRecord(BaseModel):
    """``manifest["input"]``: the file the run read."""

    model_config = ConfigDict(extra="allow")

    path: str | None = None
    format: str | None = None
    fingerprint: str | None = None
    bytes: int | None = None


class Manifest(BaseModel):
    """The typed view of ``manifest.json`` (see ``docs/run-store.md``); unknown keys are kept.

    >>> Manifest.model_validate({"stages": {"load": {"fingerprint": "abc", "rows": 3}}}).stages["load"].rows
    3
    """

    model_config = ConfigDict(extra="allow")

    kiku_version: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    input: InputRecord = Field(default_factory=InputRecord)
    config: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    stages: dict[str, StageRecord] = Field(default_factory=dict)
    counts: dict[str, Any] = Field(default_factory=dict)
    skipped: list[SkippedRecord] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    llm: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        """The manifest of a run folder (an empty one when absent or unreadable)."""
        return cls.model_validate(read_manifest(folder))


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """A run folder's manifest as a dict, ``{}`` when it is absent or unreadable (never writes).

    Writers use :class:`RunStore`, which refuses an unreadable manifest instead.

    >>> import tempfile
    >>> read_manifest(tempfile.mkdtemp())
    {}
    """
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def missing_tables(folder: str | Path, tables: tuple[str, ...] = EXPLORER_TABLES) -> list[str]:
    """The file names of ``tables`` that the run folder lacks.

    >>> import tempfile
    >>> missing_tables(tempfile.mkdtemp(), ("clusters",))
    ['clusters.parquet']
    """
    return [table_file(t) for t in tables if not (Path(folder) / table_file(t)).is_file()]


def read_frame(folder: str | Path, table: str, columns: list[str] | None = None) -> Any:
    """One run table as a pandas DataFrame (never writes; the caller checks the file exists).

    >>> import tempfile, pyarrow as pa
    >>> store = RunStore(tempfile.mkdtemp())
    >>> store.write_table("projection", pa.table({"conversation_id": ["a"], "x": [0.0], "y": [1.0]}))
    >>> read_frame(store.path, "projection", ["conversation_id"]).conversation_id.tolist()
    ['a']
    """
    arrow = pq.read_table(Path(folder) / table_file(table), columns=columns)
    return edited(folder, table, arrow).to_pandas()  # type: ignore[union-attr]


def read_requests(folder: str | Path, from_messages: bool = True) -> dict[str, str]:
    """Conversation id -> its opening request: the ``request`` facet when the run has facets,
    else (``from_messages``) the first user message (:attr:`Conversation.first_user_message`).
    Empty requests are left out.

    >>> import tempfile, json, pyarrow as pa
    >>> store = RunStore(tempfile.mkdtemp())
    >>> messages = json.dumps([{"role": "assistant", "content": "Hi"}, {"role": "user", "content": " Refund? "}])
    >>> store.write_table("conversations", pa.table({"conversation_id": ["a"], "messages": [messages]}))
    >>> read_requests(store.path)
    {'a': 'Refund?'}
    """
    from kiku.records import Conversation, Message

    folder = Path(folder)
    if (folder / table_file("facets")).is_file():
        table = pq.read_table(folder / table_file("facets"), columns=["conversation_id", "request"])
        return {str(k): str(v) for k, v in zip(table["conversation_id"].to_pylist(), table["request"].to_pylist()) if v}
    if not from_messages:
        return {}
    requests: dict[str, str] = {}
    columns = ["conversation_id", "messages"]
    for batch in pq.ParquetFile(folder / table_file("conversations")).iter_batches(columns=columns):
        for cid, messages in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            turns = [Message.model_construct(role=m.get("role"), content=str(m.get("content", "")))
                     for m in json.loads(messages or "[]")]
            request = Conversation.model_construct(id=str(cid), messages=turns).first_user_message.strip()
            if request:
                requests[str(cid)] = request
    return requests


def open_views(folder: str | Path, read_only: bool = False):  # noqa: ANN201 - duckdb.DuckDBPyConnection
    """An in-memory DuckDB connection with one view per Parquet file of ``folder``, named after it.

    Files whose name is not an identifier are not part of a run and get no view.
    ``read_only``: DuckDB may then open only the run's Parquet files (no other file, no
    network, no extension) and its settings are locked; pair it with
    :func:`check_read_only` so that no statement writes (``COPY`` into the run, ``EXPORT``).

    >>> import tempfile, pyarrow as pa
    >>> store = RunStore(tempfile.mkdtemp())
    >>> store.write_table("projection", pa.table({"conversation_id": ["a"], "x": [0.0], "y": [1.0]}))
    >>> open_views(store.path).execute("select count(*) from projection").fetchone()
    (1,)
    """
    import duckdb

    connection = duckdb.connect()
    files = sorted(f for f in Path(folder).glob("*.parquet") if f.stem.isidentifier())
    for file in files:
        curated = edited(folder, file.stem)
        if curated is not None:  # the edit log applied (kiku.edits): a view of the Arrow table, no other name
            connection.from_arrow(curated).create_view(file.stem)
            continue
        connection.execute(f'CREATE VIEW "{file.stem}" AS SELECT * FROM read_parquet({_sql_literal(str(file))})')
    if read_only:
        try:
            connection.execute(f"SET allowed_paths = [{', '.join(_sql_literal(str(f)) for f in files)}]")
        except duckdb.Error as exc:
            raise KikuError(f"read-only SQL needs duckdb>=1.2 ({exc}); upgrade it: pip install -U duckdb") from None
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    return connection


def _sql_literal(text: str) -> str:
    """A SQL string literal.

    >>> _sql_literal("it's")
    "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


#: PRAGMAs that only read (everything else a read-only query may not run).
READ_PRAGMAS = frozenset({"table_info", "show", "show_tables", "show_tables_expanded", "version", "database_list",
                          "functions", "database_size", "storage_info", "metadata_info", "platform", "user_agent"})
UNSAFE_SQL_FLAG = "--unsafe-full-duckdb"


def check_read_only(connection: Any, query: str) -> None:
    """Raise a one-line KikuError unless every statement in ``query`` only reads.

    Allowed: SELECT (with DESCRIBE, SHOW, SUMMARIZE, FROM-first and CTEs), EXPLAIN [ANALYZE] of
    a SELECT, and the read-only PRAGMAs; refused: COPY, EXPORT, ATTACH, INSTALL, LOAD, CREATE,
    SET, CALL and everything else.
    """
    import re

    for statement in connection.extract_statements(query):
        kind = statement.type.name
        text = statement.query.strip()
        if kind == "SELECT":
            continue
        if kind == "EXPLAIN":
            inner = re.sub(r"^explain\s+(analy[sz]e\s+)?", "", text, flags=re.IGNORECASE)
            if inner != text:
                check_read_only(connection, inner)
                continue
        if kind == "PRAGMA":
            name = re.match(r"^pragma\s+(\w+)", text, flags=re.IGNORECASE)
            if name and name.group(1).lower() in READ_PRAGMAS:
                continue
        keyword = (text.split(maxsplit=1) or [kind])[0].upper()
        raise KikuError(f"kiku sql is read-only over the run: {keyword} statements are refused; "
                        f"query with SELECT, or pass {UNSAFE_SQL_FLAG} to run any DuckDB statement")


class _AtomicParquetWriter:
    def __init__(self, target: Path, schema: pa.Schema) -> None:
        self.target = target
        self.temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        self.writer = pq.ParquetWriter(self.temporary, schema, compression="zstd")
        self.rows = 0

    def write_table(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)
        self.rows += batch.num_rows

    def __enter__(self) -> _AtomicParquetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        self.writer.close()
        if exc_type is None:
            os.replace(self.temporary, self.target)
        else:
            self.temporary.unlink(missing_ok=True)


def open_finished_run(folder: str | Path, tables: tuple[str, ...] | None = None, hint: str | None = None) -> RunStore:
    """Open a finished run for reading, the one check every command that reads a run makes.

    Raises a one-line KikuError when ``folder`` holds no manifest (``hint`` says what to pass
    instead; default: how to create one) or when ``tables`` (default: every stage table present)
    are unfinished or damaged (``RunStore.check_readable``).

    >>> open_finished_run("/nonexistent/run")
    Traceback (most recent call last):
    ...
    kiku.errors.KikuError: /nonexistent/run: not a kiku run (no manifest.json); create one with `kiku run INPUT --out /nonexistent/run`
    """
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise KikuError(f"{folder}: not a kiku run (no manifest.json); {hint or f'create one with `kiku run INPUT --out {folder}`'}")
    store = RunStore(folder)
    store.check_readable(tables)
    return store
