"""Run store: atomic tables, stage fingerprints, DuckDB views."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from kiku.errors import KikuError
from kiku.store import RunStore, file_fingerprint, fingerprint


def test_a_stage_is_current_only_with_the_same_fingerprint_and_its_files(tmp_path) -> None:
    store = RunStore(tmp_path / "run")
    store.write_table("projection", pa.table({"conversation_id": ["a"], "x": [0.0], "y": [1.0]}))
    store.complete_stage("project", "fp1", seconds=0.5, rows=1)
    reopened = RunStore(tmp_path / "run")
    assert reopened.stage_is_current("project", "fp1")
    assert not reopened.stage_is_current("project", "fp2")
    (tmp_path / "run" / "projection.parquet").unlink()
    assert not reopened.stage_is_current("project", "fp1")


def test_a_failed_write_leaves_no_file_behind(tmp_path) -> None:
    store = RunStore(tmp_path)
    schema = pa.schema([("a", pa.int64())])
    with pytest.raises(RuntimeError):
        with store.table_writer("facets", schema) as writer:
            writer.write_table(pa.table({"a": [1, 2]}))
            raise RuntimeError("killed mid-write")
    assert not store.has_table("facets")
    assert not list(tmp_path.glob(".*tmp*"))


def test_manifest_is_valid_json_after_each_stage(tmp_path) -> None:
    store = RunStore(tmp_path)
    store.complete_stage("load", "x", 1.0, 3, truncated=0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["stages"]["load"]["rows"] == 3
    assert manifest["stages"]["load"]["truncated"] == 0


def test_corrupt_manifest_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(KikuError, match="manifest is unreadable"):
        RunStore(tmp_path)


def test_duckdb_sees_one_view_per_table(tmp_path) -> None:
    store = RunStore(tmp_path)
    store.write_table("clusters", pa.table({"cluster_id": ["a", "b"], "size": [3, 5]}))
    assert store.connect().execute("select sum(size) from clusters").fetchone()[0] == 8


def test_fingerprints_are_stable_and_sensitive(tmp_path) -> None:
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    file = tmp_path / "x.txt"
    file.write_text("hello")
    first = file_fingerprint(file)
    file.write_text("hellO")
    assert file_fingerprint(file)[0] != first[0]
