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


def test_one_writer_at_a_time_and_the_lock_dies_with_its_holder(tmp_path) -> None:
    import subprocess
    import sys

    from kiku.store import LOCK_FILE, RunBusyError

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from kiku.store import RunStore\n"
        f"with RunStore({str(tmp_path)!r}).lock():\n    print('locked', flush=True); time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunBusyError, match=rf"is being written by another kiku run \(pid {holder.pid}\)"):
            with RunStore(tmp_path).lock():
                pass
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / LOCK_FILE).exists()  # the file stays; the kernel dropped the lock
    with RunStore(tmp_path).lock():
        pass


def test_the_lock_removes_temporaries_left_by_a_killed_writer(tmp_path) -> None:
    (tmp_path / ".facets.parquet.tmp-12345").write_bytes(b"half")
    (tmp_path / ".manifest.json.tmp-12345").write_bytes(b"{")
    with RunStore(tmp_path).lock():
        assert not list(tmp_path.glob(".*.tmp-*"))


def test_a_damaged_file_is_not_current_and_readers_say_so(tmp_path) -> None:
    store = RunStore(tmp_path)
    store.write_table("projection", pa.table({"conversation_id": ["a", "b"], "x": [0.0, 1.0], "y": [1.0, 2.0]}))
    store.complete_stage("project", "fp1", seconds=0.5, rows=2)
    store.check_readable(("projection",))
    path = tmp_path / "projection.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not RunStore(tmp_path).stage_is_current("project", "fp1")
    with pytest.raises(KikuError, match=r"projection.parquet is damaged \(size/checksum mismatch\)"):
        RunStore(tmp_path).check_readable(("projection",))


def test_invalidated_stages_read_as_unfinished(tmp_path) -> None:
    store = RunStore(tmp_path)
    store.write_table("projection", pa.table({"conversation_id": ["a"], "x": [0.0], "y": [1.0]}))
    store.complete_stage("project", "fp1", seconds=0.5, rows=1)
    store.invalidate_from("project")
    reopened = RunStore(tmp_path)
    assert reopened.manifest["stages"]["project"]["fingerprint"] is None
    with pytest.raises(KikuError, match="the last kiku run stopped before finishing projection.parquet"):
        reopened.check_readable(("projection",))


def test_read_only_sql_refuses_writes(tmp_path) -> None:
    from kiku.store import check_read_only

    store = RunStore(tmp_path)
    store.write_table("clusters", pa.table({"cluster_id": ["a", "b"], "size": [3, 5]}))
    connection = store.connect(read_only=True)
    check_read_only(connection, "select sum(size) from clusters")
    assert connection.execute("select sum(size) from clusters").fetchone()[0] == 8
    with pytest.raises(KikuError, match="COPY statements are refused"):
        check_read_only(connection, f"copy clusters to '{tmp_path}/clusters.parquet'")
