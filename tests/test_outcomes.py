"""Outcomes joined to a real run by conversation id: CSV, JSONL, Parquet, metadata; mismatches reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import priorities_data
from cli_helpers import kiku
from kiku.errors import InputError, KikuError
from kiku.outcomes import infer_kind, join_metadata, join_table, outcome_fields, read_outcome
from kiku.store import RunStore


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return priorities_data.make_run(tmp_path_factory.mktemp("outcomes"))


@pytest.fixture()
def run(base_run: Path, tmp_path: Path) -> Path:
    """A private copy of the real run (joins write into it)."""
    return Path(shutil.copytree(base_run, tmp_path / "run"))


def test_join_csv_stores_every_kind_and_reports_ids_that_match_nothing_on_either_side(run: Path, tmp_path: Path) -> None:
    feedback = priorities_data.write_feedback_csv(tmp_path / "feedback.csv", drop=4, extra_ids=("ghost-1", "ghost-2"))
    report = join_table(run, feedback)
    kinds = {f.name: f.kind for f in report.fields}
    assert kinds == {"thumbs_up": "binary", "revenue": "numeric", "resolution": "categorical"}
    total = len(priorities_data.rows())
    assert (report.rows, report.matched) == (total - 4 + 2, total - 4)
    assert (report.table_only, report.table_only_examples) == (2, ["ghost-1", "ghost-2"])
    dropped = [r["id"] for r in priorities_data.rows()[-4:]]
    assert report.run_only == 4 and set(report.run_only_examples) == set(dropped)
    text = "\n".join(report.lines())
    assert "2 id(s) in feedback.csv match no conversation of the run: ghost-1, ghost-2" in text
    assert "4 conversation(s) of the run have no row in feedback.csv" in text

    # stored through the run store: one row per conversation, typed columns, recorded in the manifest
    table = pq.read_table(run / "outcomes.parquet")
    assert table.num_rows == total
    assert [str(table.schema.field(n).type) for n in ("thumbs_up", "revenue", "resolution")] == ["bool", "double", "string"]
    frame = table.to_pandas().set_index("conversation_id")
    assert frame.loc[dropped, "thumbs_up"].isna().all()
    first = priorities_data.feedback_rows()[0]
    assert bool(frame.loc[first["conversation_id"], "thumbs_up"]) == bool(first["thumbs_up"])
    record = RunStore(run).check_derived("outcomes", "kiku join")
    assert record["rows"] == total and record["last_join"]["table_only"] == 2
    assert [f.name for f in outcome_fields(run)] == ["thumbs_up", "revenue", "resolution"]
    # DuckDB sees it like every other table (kiku sql)
    assert RunStore(run).connect().execute("select count(*) from outcomes where thumbs_up").fetchone()[0] == int(frame.thumbs_up.sum())


def test_join_jsonl_and_parquet_and_a_second_join_adds_columns(run: Path, tmp_path: Path) -> None:
    rows = priorities_data.feedback_rows()
    jsonl = tmp_path / "ratings.jsonl"
    jsonl.write_text("".join(json.dumps({"id": r["conversation_id"], "rating": 1 + r["revenue"] % 5}) + "\n" for r in rows))
    assert join_table(run, jsonl).fields[0].kind == "numeric"
    parquet = tmp_path / "latency.parquet"
    pd.DataFrame({"chat_id": [r["conversation_id"] for r in rows], "latency_ms": range(len(rows))}).to_parquet(parquet)
    report = join_table(run, parquet)
    assert report.id_column == "chat_id" and report.matched == len(rows)
    assert [f.name for f in outcome_fields(run)] == ["rating", "latency_ms"]
    again = join_table(run, jsonl)
    assert again.replaced == ["rating"]
    assert set(pq.read_table(run / "outcomes.parquet").column_names) == {"conversation_id", "rating", "latency_ms"}


def test_join_metadata_fields_and_read_metadata_without_a_join(run: Path) -> None:
    report = join_metadata(run, ["tier"])
    assert report.fields[0].kind == "categorical" and sorted(report.fields[0].values) == ["free", "gold"]
    values, field = read_outcome(run, "tier")
    assert field.kind == "categorical" and len(values) == len(priorities_data.rows())
    with pytest.raises(KikuError, match="no conversation has a metadata field 'nope'"):
        join_metadata(run, ["nope"])


def test_bad_tables_get_one_line_errors_and_skipped_rows_are_reported(run: Path, tmp_path: Path) -> None:
    ids = [r["id"] for r in priorities_data.rows()]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("session,thumbs_up\nx,1\ny,0\n")
    with pytest.raises(InputError, match="no conversation id column"):
        join_table(run, wrong)
    with pytest.raises(InputError, match="none of its 2 session values is a conversation id"):
        join_table(run, wrong, id_column="session")
    typed = tmp_path / "typed.csv"
    typed.write_text(f"id,rating\n{ids[0]},4\n{ids[1]},great\n")
    with pytest.raises(InputError, match=r"typed.csv:3: rating: 'great' is not a number"):
        join_table(run, typed, kinds={"rating": "numeric"})
    assert join_table(run, typed).fields[0].kind == "categorical"  # inferred: nothing lost
    repeated = tmp_path / "repeated.csv"
    repeated.write_text(f"id,up\n{ids[0]},1\n,0\n{ids[0]},0\n{ids[1]},0\n")
    report = join_table(run, repeated)
    assert report.matched == 2
    assert [(s.line, s.reason) for s in report.skipped] == [
        (3, "no id"), (4, f"id {ids[0]!r} again (first on line 2); kept the first row")]


def test_stale_outcomes_are_refused_after_the_run_changes(run: Path, tmp_path: Path) -> None:
    join_table(run, priorities_data.write_feedback_csv(tmp_path / "f.csv"))
    store = RunStore(run)
    store.manifest["stages"]["load"]["fingerprint"] = "other-input"
    store.save_manifest()
    with pytest.raises(KikuError, match="computed before the run's conversations changed"):
        outcome_fields(run)


def test_a_damaged_outcomes_file_is_refused(run: Path, tmp_path: Path) -> None:
    join_table(run, priorities_data.write_feedback_csv(tmp_path / "f.csv"))
    path = run / "outcomes.parquet"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(KikuError, match="outcomes.parquet is damaged"):
        read_outcome(run, "thumbs_up")


def test_infer_kind() -> None:
    assert infer_kind(["up", "down", None]) == "binary"
    assert infer_kind(["1.5", "2", ""]) == "numeric"
    assert infer_kind(["resolved", "escalated", "1"]) == "categorical"


def test_cli_join_and_run_join(run: Path, tmp_path: Path) -> None:
    feedback = priorities_data.write_feedback_csv(tmp_path / "feedback.csv", extra_ids=("ghost-1",))
    result = kiku("join", run, feedback)
    assert result.returncode == 0, result.stderr
    assert "1 id(s) in feedback.csv match no conversation of the run: ghost-1" in result.stdout
    bad = kiku("join", run, tmp_path / "missing.csv")
    assert bad.returncode == 2 and "missing.csv: outcome table not found" in bad.stderr and "Traceback" not in bad.stderr
    # kiku run --join: the same join right after the run (resumes the copied run's stages)
    source = priorities_data.write_input(tmp_path)
    done = kiku("run", source, "--out", run, "--join", feedback)
    assert done.returncode == 0, done.stderr
    assert "joined" in done.stdout and "ghost-1" in done.stdout
    assert "thumbs_up" in pq.read_table(run / "outcomes.parquet").column_names
