"""kiku edit: an append-only log in the run folder that every reader applies, that survives
re-runs (reporting what changed) and that kiku assign honours. Real runs, real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import kiku as kiku_api
from cli_helpers import kiku
from kiku import edits
from kiku.assign import assign
from kiku.errors import KikuError
from kiku.store import RunStore, open_views, read_frame
from living_runs import halves


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("edits")
    base_input, new_input, _, _ = halves(folder)
    run = kiku_api.analyze(base_input, folder / "base", seed=0)
    return {"folder": folder, "run": run.path, "input": base_input, "new": new_input}


@pytest.fixture()
def run(base: dict, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(base["run"], copy)
    return copy


def _clusters(run: Path):  # noqa: ANN202
    return read_frame(run, "clusters").set_index("cluster_id")


def _level0_topics(run: Path) -> list[str]:
    frame = _clusters(run)
    return list(frame[(frame.level == 0) & ~frame.is_noise].sort_values("size", ascending=False).index)


def _consistent(run: Path) -> None:
    """Every conversation has one topic per level, and the sizes are the assignment counts."""
    con = open_views(run, read_only=True)
    levels = con.execute("select count(distinct level) from clusters").fetchone()[0]
    n = con.execute("select count(*) from conversations").fetchone()[0]
    per = con.execute("select count(*) from (select conversation_id, count(distinct level) k from assignments "
                      "group by 1) where k = ?", [levels]).fetchone()[0]
    assert per == n
    mismatched = con.execute("""select count(*) from clusters c left join (select cluster_id, count(*) n from assignments
                                group by 1) a using (cluster_id) where c.size != coalesce(a.n, 0)""").fetchone()[0]
    assert mismatched == 0
    # the edited tables are views under their own names only (no internal helper names in SHOW TABLES)
    names = {row[0] for row in con.execute("show tables").fetchall()}
    assert names == {f.stem for f in run.glob("*.parquet") if f.stem.isidentifier()}


def test_cli_edits_are_seen_by_every_reader(run: Path, tmp_path: Path) -> None:
    first, second, third, fourth = _level0_topics(run)[:4]
    before = _clusters(run)
    assert kiku("edit", run, "rename", first, "Card delivery (curated)").returncode == 0
    merged = kiku("edit", run, "merge", second, third, "--name", "Merged by hand")
    assert merged.returncode == 0, merged.stderr
    split = kiku("edit", run, "split", fourth, "--parts", "2")
    assert split.returncode == 0, split.stderr
    after = _clusters(run)
    assert after.loc[first, "name"] == "Card delivery (curated)"
    assert third not in after.index and after.loc[second, "name"] == "Merged by hand"
    assert after.loc[second, "size"] == before.loc[second, "size"] + before.loc[third, "size"]
    parts = [c for c in after.index if c.startswith(fourth + ".")]
    assert len(parts) == 2 and fourth not in after.index
    assert sum(after.loc[p, "size"] for p in parts) == before.loc[fourth, "size"]
    _consistent(run)
    # tree, sql, export and the explorer's data all see the edits
    tree = kiku("tree", run)
    assert "Card delivery (curated)" in tree.stdout and "Merged by hand" in tree.stdout
    sql = kiku("sql", run, f"select count(*) from assignments where cluster_id = '{third}'")
    assert sql.returncode == 0 and "│ 0" in sql.stdout
    assert kiku("export", run, "clusters", tmp_path / "c.csv").returncode == 0
    assert "Merged by hand" in (tmp_path / "c.csv").read_text()
    from kiku.web.data import RunData

    names = {c["id"]: c["name"] for c in RunData(run).bundle()["clusters"]}
    assert names[first] == "Card delivery (curated)" and third not in names
    # the pipeline's files are untouched: the raw read still has the original tree
    assert third in RunStore(run).read_table("clusters", raw=True).column("cluster_id").to_pylist()
    assert RunStore(run).table_is_whole("clusters")


def test_the_log_is_append_only_and_undo_appends(run: Path) -> None:
    first, second = _level0_topics(run)[:2]
    original_parent = _clusters(run).loc[second, "parent_id"]
    parent = next(p for p in _clusters(run).query("level == 1 and not is_noise").index if p != original_parent)
    edits.rename_topic(run, first, "Renamed")
    edits.move_topic(run, second, parent)
    log = (run / "edits.jsonl").read_text()
    assert _clusters(run).loc[second, "parent_id"] == parent
    result = kiku("edit", run, "undo")
    assert result.returncode == 0, result.stderr
    assert (run / "edits.jsonl").read_text().startswith(log)
    records = [json.loads(line) for line in (run / "edits.jsonl").read_text().splitlines()]
    assert [r["action"] for r in records] == ["rename", "move", "undo"]
    assert all(r["at"] and r["by"] for r in records)
    assert _clusters(run).loc[second, "parent_id"] == original_parent
    assert _clusters(run).loc[first, "name"] == "Renamed"
    listing = kiku("edit", run, "list")
    assert "#2 move" in listing.stdout and "undone" in listing.stdout and "#1 rename" in listing.stdout


def test_moving_conversations(run: Path) -> None:
    first, second = _level0_topics(run)[:2]
    members = read_frame(run, "assignments").query("level == 0 and cluster_id == @first").conversation_id.tolist()[:3]
    result = kiku("edit", run, "move", *members, "--conversations", "--to", second)
    assert result.returncode == 0, result.stderr
    level0 = read_frame(run, "assignments").query("level == 0").set_index("conversation_id").cluster_id
    assert set(level0.loc[members]) == {second}
    _consistent(run)


def test_bad_edits_are_one_line_errors(run: Path) -> None:
    first = _level0_topics(run)[0]
    parent = _clusters(run).query("level == 1").index[0]
    for args, message in [
        (("rename", "no-such-topic", "x"), "no topic 'no-such-topic'"),
        (("merge", first, parent), "merge topics of one level"),
        (("move", parent, "--to", first), "higher level"),
        (("undo",), "no edit to undo"),
        (("frobnicate",), "unknown edit action"),
    ]:
        result = kiku("edit", run, *args)
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    (run / "edits.jsonl").write_text('{"seq": 1, "action": "rename"}\n')
    with pytest.raises(KikuError, match=r"edits.jsonl:1: not an edit record"):
        read_frame(run, "clusters")


def test_edits_survive_a_rerun_and_are_reported_when_their_target_changed(base: dict, run: Path) -> None:
    first, second, third = _level0_topics(run)[:3]
    edits.rename_topic(run, first, "Kept name")
    edits.merge_topics(run, second, [third])
    # resume: every stage reused, the edits still apply
    kiku_api.analyze(base["input"], run, seed=0)
    assert _clusters(run).loc[first, "name"] == "Kept name" and third not in _clusters(run).index
    # a re-run of the map and the hierarchy (same base clusters): still applied, nothing reported
    rerun = kiku_api.analyze(base["input"], run, seed=0, project_sample_size=5000)
    assert rerun.manifest["stages"]["hierarchy"]["fingerprint"]
    assert [s.state for s in edits.edit_statuses(run)] == ["applied", "applied"]
    assert _clusters(run).loc[first, "name"] == "Kept name"
    # a re-clustering renumbers the topics: every edit is accounted for, none silently dropped
    result = kiku("run", base["input"], "--out", run, "--clusters", "5")
    assert result.returncode == 0, result.stderr
    statuses = edits.edit_statuses(run)
    assert [s.seq for s in statuses] == [1, 2]
    assert any(s.state != "applied" for s in statuses)  # 5 clusters instead of the automatic k: ids moved
    manifest = json.loads((run / "manifest.json").read_text())
    for status in statuses:
        if status.state in ("changed", "repointed", "not_applied"):
            assert f"edit {status.one_line()}" in manifest["warnings"]
            assert f"#{status.seq} " in result.stdout + result.stderr
        if status.state != "not_applied":
            assert status.applied_to in _clusters(run).index
    _consistent(run)


def test_assign_honours_the_base_runs_edits(base: dict, run: Path, tmp_path: Path) -> None:
    first, second, third = _level0_topics(run)[:3]
    edits.rename_topic(run, first, "Renamed before assign")
    edits.merge_topics(run, second, [third])
    assigned = assign(run, base["new"], tmp_path / "assigned")
    clusters = _clusters(assigned.path)
    assert clusters.loc[first, "name"] == "Renamed before assign"
    assert third not in clusters.index
    level0 = read_frame(assigned.path, "assignments").query("level == 0").cluster_id
    assert third not in set(level0) and (level0 == second).sum() > 0
    assert assigned.manifest["assign"]["base_edits"] == 2
    assert not [w for w in assigned.manifest.get("warnings", []) if w.startswith("base run edit")]


def test_assign_reports_base_edits_that_no_longer_apply(base: dict, run: Path, tmp_path: Path) -> None:
    first = _level0_topics(run)[0]
    edits.rename_topic(run, first, "Stale rename")
    log = [json.loads(line) for line in (run / "edits.jsonl").read_text().splitlines()]
    log[0]["snapshots"][first]["sample"] = ["not-a-conversation-of-this-run"]  # its members are gone
    (run / "edits.jsonl").write_text(json.dumps(log[0]) + "\n")
    assigned = assign(run, base["new"], tmp_path / "assigned")
    assert any(w.startswith("base run edit #1 rename") and "not applied" in w for w in assigned.manifest["warnings"])
    assert "Stale rename" not in read_frame(assigned.path, "clusters").name.tolist()


# --- pure logic: re-pointing and not applying (hand-made tables) -------------------------------


def _tables(members: dict[str, list[str]]) -> tuple[pa.Table, pa.Table]:
    from kiku.pipeline import assignments_table, clusters_to_table
    from kiku.records import Cluster

    clusters = [Cluster(id=cid, level=0, name=cid.upper(), member_ids=ids) for cid, ids in members.items()]
    total = sum(len(v) for v in members.values())
    return clusters_to_table(clusters, total), assignments_table(clusters)


def test_an_edit_follows_its_members_or_is_reported() -> None:
    old_clusters, old_assign = _tables({"a": ["1", "2", "3", "4"], "b": ["5", "6", "7", "8"]})
    tree = edits.Tree.from_tables(old_clusters, old_assign)
    rename = edits.Edit(seq=1, action="rename", target="a", args={"name": "Kept"}, snapshots={"a": tree.snapshot("a")})
    # after a "re-run" the members of a are now called b, and a holds other conversations
    clusters, assign_ = _tables({"b": ["1", "2", "3", "4"], "a": ["5", "6", "7", "8"]})
    edited, _, statuses = edits.apply_edits(clusters, assign_, [rename])
    names = dict(zip(edited.column("cluster_id").to_pylist(), edited.column("name").to_pylist()))
    assert names == {"b": "Kept", "a": "A"} and statuses[0].state == "repointed" and statuses[0].applied_to == "b"
    # ... and when nobody holds them any more, it is not applied, and says so
    clusters, assign_ = _tables({"c": ["9", "10"], "d": ["11", "12"]})
    edited, _, statuses = edits.apply_edits(clusters, assign_, [rename])
    assert statuses[0].state == "not_applied" and "Kept" not in edited.column("name").to_pylist()
    assert "not applied" in statuses[0].one_line()
