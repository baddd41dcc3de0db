"""Importing a Kura checkpoint: Kura's summaries and scores become facets, its tree becomes queryable facets.

Uses the real slice in tests/data/kura-checkpoint (28 conversations of Kura's W&B run) and the
real `kiku` CLI in a subprocess.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from kiku.describe import describe
from kiku.loaders import LoadReport, load_conversations
from kiku.records import IMPORTED_FACETS
from loaders_helpers import DATA
from test_cli import kiku

CHECKPOINT = DATA / "kura-checkpoint"


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def kura_tree(folder: Path) -> dict[str, tuple[str, str]]:
    """chat id -> (base cluster name, top-level name), straight from Kura's files."""
    meta = {row["id"]: row for row in jsonl(folder / "meta_clusters.jsonl")}
    names = {}
    for base in jsonl(folder / "clusters.jsonl"):
        top = meta[base["id"]]
        while top["parent_id"] is not None:
            top = meta[top["parent_id"]]
        for chat_id in base["chat_ids"]:
            names[chat_id] = (base["name"], top["name"])
    return names


def test_kura_summaries_scores_and_tree_become_facets():
    report = LoadReport()
    conversations = list(load_conversations(CHECKPOINT, report=report))
    summaries = describe(conversations)
    rows = {row["chat_id"]: row for row in jsonl(CHECKPOINT / "summaries.jsonl")}
    tree = kura_tree(CHECKPOINT)
    assert len(summaries) == len(rows) == 28
    for conversation, summary in zip(conversations, summaries):
        row = rows[conversation.id]
        assert (summary.summary, summary.task) == (row["summary"], row["task"])
        assert (summary.concern, summary.frustration, summary.assistant_errors) == (
            row["concerning_score"], row["user_frustration"], row["assistant_errors"])
        assert summary.request == conversation.first_user_message.strip()  # verbatim, as with an LLM
        assert summary.facets["kura_request"] == row["request"]
        assert summary.facets["kura_languages"] == row["languages"]
        assert (summary.facets.get("kura_cluster"), summary.facets.get("kura_top_cluster")) == tree.get(conversation.id, (None, None))
        assert conversation.metadata[IMPORTED_FACETS]["origin"] == "kura"
    assert report.imported == {"kura_summaries": 28, "kura_clusters": 7, "kura_base_clusters": 3}
    assert report.notes == [
        f"{CHECKPOINT}: imported from Kura 28 summaries (as summary, task, concern, frustration, assistant_errors, kura_request, "
        "kura_languages) and its tree of 7 clusters, 3 of them base clusters (as facets kura_cluster, kura_top_cluster)"
    ]
    assert not report.skipped and not report.warnings


def test_damaged_kura_checkpoint_is_reported_line_by_line(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINT, folder)
    lines = (folder / "summaries.jsonl").read_text(encoding="utf-8").splitlines()
    first_id = json.loads(lines[0])["chat_id"]
    lost_id = json.loads(lines[1])["chat_id"]
    bad_score = json.loads(lines[2])
    bad_score["concerning_score"] = "very"
    stranger = dict(json.loads(lines[3]), chat_id="not-a-conversation")
    damaged = [lines[0], lines[1][:50], json.dumps(bad_score), *lines[3:], lines[0], json.dumps(stranger)]
    (folder / "summaries.jsonl").write_text("\n".join(damaged) + "\n", encoding="utf-8")
    report = LoadReport()
    conversations = list(load_conversations(folder, report=report))
    summaries = {s.conversation_id: s for s in describe(conversations)}
    assert len(conversations) == 28
    source = str(folder / "summaries.jsonl")
    assert [(s.source, s.line, s.reason.split(":")[0]) for s in report.skipped] == [
        (source, 2, "malformed JSON"), (source, 3, "wrong type"), (source, 29, "duplicate chat_id")]
    assert report.skipped[1].reason.startswith("wrong type: field 'concern' of the summary")
    assert summaries[lost_id].summary is None and summaries[lost_id].request  # offline facets, still in Kura's tree
    assert summaries[lost_id].facets["kura_cluster"] == kura_tree(CHECKPOINT).get(lost_id, (None,))[0]
    assert summaries[first_id].summary == json.loads(lines[0])["summary"]
    assert report.imported["kura_summaries"] == 26
    assert report.warnings == [
        f"{folder}: 2 conversations have no summary in summaries.jsonl; their facets were computed from the text",
        f"{folder}: 1 summaries in summaries.jsonl name a chat_id that is not in conversations.jsonl; they were not used",
    ]


def test_invalid_imported_facets_in_a_jsonl_are_left_out_with_a_note(tmp_path):
    good = {"origin": "kura", "summary": "Asks how to log images", "concern": 2}
    rows = [
        {"id": "a", "messages": [{"role": "user", "content": "log images?"}], "metadata": {IMPORTED_FACETS: good}},
        {"id": "b", "messages": [{"role": "user", "content": "sweeps?"}], "metadata": {IMPORTED_FACETS: {"origin": "kura", "concern": "high"}}},
    ]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    report = LoadReport()
    a, b = describe(list(load_conversations(path, report=report)))
    assert (a.summary, a.concern) == ("Asks how to log images", 2)
    assert (b.summary, b.concern) == (None, None)
    assert report.warnings == [
        f"{path}:2: metadata.{IMPORTED_FACETS} left out: field 'concern': Input should be a valid integer, unable to parse string as an integer; "
        "facets were computed from the text; the record was kept"
    ]


def test_kiku_run_on_a_kura_checkpoint_embeds_and_names_kura_summaries(tmp_path):
    out = tmp_path / "run"
    result = kiku("run", CHECKPOINT, "--out", out, "--clusters", "3")
    assert result.returncode == 0, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    assert f"{CHECKPOINT}: imported from Kura 28 summaries" in said and "its tree of 7 clusters, 3 of them base clusters" in said
    facets = pq.read_table(out / "facets.parquet").to_pylist()
    rows = {row["chat_id"]: row for row in jsonl(CHECKPOINT / "summaries.jsonl")}
    assert {f["conversation_id"]: f["summary"] for f in facets} == {k: r["summary"] for k, r in rows.items()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["imported"] == {"kura_summaries": 28, "kura_clusters": 7, "kura_base_clusters": 3}
    tops = {name for _, name in kura_tree(CHECKPOINT).values()}
    query = kiku("sql", out, "select facet_kura_top_cluster as kura_top, count(*) as n from facets group by 1 order by 2 desc")
    assert query.returncode == 0, query.stderr
    assert all(name[:20] in query.stdout for name in tops)
    names = [c["name"] for c in pq.read_table(out / "clusters.parquet").to_pylist()]
    assert not any(word in name for name in names for word in ("User Query", "Retrieved", "WANDB_RUN_ID", "UNIQUE_ID"))



def test_a_facet_missing_on_the_first_row_of_a_batch_is_kept_for_the_others():
    import pyarrow as pa

    from kiku.describe import summary_rows as _summary_rows
    from kiku.records import Summary

    outside = Summary(conversation_id="a", request="not in Kura's tree", turns=1, messages=1)
    inside = Summary(conversation_id="b", request="in it", turns=1, messages=1, facets={"kura_cluster": "Sweeps", "kura_languages": ["english"]})
    table = pa.Table.from_pylist(_summary_rows([outside, inside]))
    assert table.column("facet_kura_cluster").to_pylist() == [None, "Sweeps"]
    assert table.column("facet_kura_languages").to_pylist() == [None, '["english"]']
