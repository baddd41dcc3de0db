"""The run store: a folder with one Parquet file per stage and ``manifest.json``.

See ``docs/run-store.md`` for the schema. Writes are atomic (temporary name, then rename), so
a run killed mid-write never leaves a half file that looks finished; a stage counts as done
only when the manifest records its fingerprint after its files were renamed into place.

Example:
    >>> import tempfile, pyarrow as pa
    >>> store = RunStore(tempfile.mkdtemp())
    >>> store.write_table("projection", pa.table({"conversation_id": ["a"], "x": [0.0], "y": [1.0]}))
    >>> store.complete_stage("project", fingerprint="abc", seconds=0.1, rows=1)
    >>> store.stage_is_current("project", "abc")
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kiku.errors import KikuError

MANIFEST = "manifest.json"

#: Stage name -> the Parquet tables it writes (without ``.parquet``).
STAGE_TABLES: dict[str, tuple[str, ...]] = {
    "load": ("conversations",),
    "describe": ("facets",),
    "embed": ("embeddings",),
    "project": ("projection",),
    "cluster": ("cluster_labels",),
    "name": ("base_clusters",),
    "hierarchy": ("clusters", "assignments"),
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
        self.path.mkdir(parents=True, exist_ok=True)
        self.manifest: dict[str, Any] = self._read_manifest()

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
        """True when ``stage`` finished with this fingerprint and its files are all present."""
        record = self.manifest["stages"].get(stage)
        if not record or record.get("fingerprint") != stage_fingerprint:
            return False
        return all(self.table_path(t).exists() for t in STAGE_TABLES.get(stage, ()))

    def complete_stage(self, stage: str, fingerprint: str, seconds: float, rows: int, **extra: Any) -> None:
        self.manifest["stages"][stage] = {
            "fingerprint": fingerprint,
            "seconds": round(seconds, 3),
            "rows": rows,
            "completed_at": now_iso(),
            **extra,
        }
        self.save_manifest()

    def invalidate_from(self, stage: str) -> None:
        """Forget a stage's completion (its files stay until overwritten)."""
        self.manifest["stages"].pop(stage, None)

    # --- tables ---------------------------------------------------------------------------
    def table_path(self, name: str) -> Path:
        return self.path / f"{name}.parquet"

    def has_table(self, name: str) -> bool:
        return self.table_path(name).exists()

    def write_table(self, name: str, table: pa.Table) -> None:
        """Write a whole table atomically."""
        with self.table_writer(name, table.schema) as writer:
            writer.write_table(table)

    def table_writer(self, name: str, schema: pa.Schema) -> _AtomicParquetWriter:
        """A context manager for writing a table in batches; renamed into place on success."""
        return _AtomicParquetWriter(self.table_path(name), schema)

    def read_table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        path = self.table_path(name)
        if not path.exists():
            raise KikuError(f"{self.path}: no {name}.parquet; run `kiku run` to produce it")
        return pq.read_table(path, columns=columns)

    def iter_batches(self, name: str, batch_size: int = 2048, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream a table in record batches (bounded memory)."""
        yield from pq.ParquetFile(self.table_path(name)).iter_batches(batch_size=batch_size, columns=columns)

    def num_rows(self, name: str) -> int:
        return pq.ParquetFile(self.table_path(name)).metadata.num_rows

    # --- SQL ------------------------------------------------------------------------------
    def connect(self):  # noqa: ANN201 - duckdb.DuckDBPyConnection
        """An in-memory DuckDB connection with one view per Parquet file, named after it."""
        import duckdb

        connection = duckdb.connect()
        for file in sorted(self.path.glob("*.parquet")):
            quoted = str(file).replace("'", "''")
            connection.execute(f'CREATE VIEW "{file.stem}" AS SELECT * FROM read_parquet(\'{quoted}\')')
        return connection


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
