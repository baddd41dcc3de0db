"""Each input format on real samples (tests/data, credited in NOTICE), and format detection."""

from __future__ import annotations

import csv
import inspect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kiku.errors import InputError
from kiku.loaders import FORMATS, ColumnMapping, LoadReport, detect_format, load_conversations, read_kura_checkpoint
from kiku.records import Conversation
from loaders_helpers import DATA

EXAMPLE = DATA.parent.parent / "examples" / "wandb-queries.jsonl"


def load(path, format=None, mapping=None):
    report = LoadReport()
    conversations = list(load_conversations(path, format, mapping, report))
    return conversations, report


def test_formats_are_the_documented_names():
    assert set(FORMATS) == {"jsonl", "kura", "kura-checkpoint", "claude", "chatgpt", "sharegpt", "queries", "csv", "parquet", "hf"}


def test_kiku_jsonl_round_trip_of_a_conversation(tmp_path):
    lines = [json.loads(line) for line in open(DATA / "mtbench-kura.jsonl", encoding="utf-8")][:3]
    path = tmp_path / "chats.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for row in lines:
            out.write(json.dumps({"id": row["chat_id"], "created_at": row["created_at"], "messages": row["messages"], "metadata": row["metadata"]}) + "\n")
    conversations, report = load(path)
    assert report.format == "jsonl" and report.loaded == 3 and not report.skipped
    first = conversations[0]
    assert first.id == "81_alpaca-13b_0"
    assert first.metadata["model"] == "alpaca-13b"  # nested metadata merged, not nested twice
    assert [m.role for m in first.messages] == [m["role"] for m in lines[0]["messages"]]
    assert first.messages[0].content == lines[0]["messages"][0]["content"]
    assert first.created_at.isoformat() == lines[0]["created_at"]


def test_kura_conversation_dump_uses_chat_id():
    conversations, report = load(DATA / "mtbench-kura.jsonl")
    assert report.format == "kura"
    assert len(conversations) == 12
    assert conversations[0].id == "81_alpaca-13b_0"
    assert conversations[0].user_turns == 2 and len(conversations[0].messages) == 4
    assert conversations[0].metadata == json.loads(open(DATA / "mtbench-kura.jsonl", encoding="utf-8").readline())["metadata"]
    assert conversations[0].metadata["question_id"] == 81


def test_openai_style_jsonl_without_ids_gets_ids_from_file_and_line(tmp_path):
    path = tmp_path / "finetune.jsonl"
    path.write_text(
        '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I locate my card?"}]}\n'
        '{"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this charge?"}, {"type": "image_url", "image_url": {"url": "x"}}]}]}\n',
        encoding="utf-8",
    )
    conversations, report = load(path)
    assert [c.id for c in conversations] == ["finetune-1", "finetune-2"]
    assert conversations[1].messages[0].content == "What is this charge?"
    assert conversations[1].metadata["non_text_parts"] == {"image_url": 1}
    assert any("no id" in w for w in report.warnings)
    assert any("image_url: 1" in w for w in report.warnings)


def test_kura_checkpoint_folder_loads_its_conversations():
    conversations, report = load(DATA / "kura-checkpoint")
    assert report.format == "kura-checkpoint"
    expected = [json.loads(line)["chat_id"] for line in open(DATA / "kura-checkpoint" / "conversations.jsonl", encoding="utf-8")]
    assert [c.id for c in conversations] == expected


def test_read_kura_checkpoint_summaries_and_levels_from_parent_links():
    checkpoint = read_kura_checkpoint(DATA / "kura-checkpoint")
    raw = [json.loads(line) for line in open(DATA / "kura-checkpoint" / "summaries.jsonl", encoding="utf-8")]
    assert len(checkpoint.summaries) == len(raw) == 28
    summary, row = checkpoint.summaries[0], raw[0]
    assert summary.conversation_id == row["chat_id"]
    assert (summary.summary, summary.request, summary.task) == (row["summary"], row["request"], row["task"])
    assert (summary.concern, summary.frustration, summary.assistant_errors) == (row["concerning_score"], row["user_frustration"], row["assistant_errors"])
    assert summary.language == "en" and "english" not in summary.programming_languages
    assert summary.turns == 1 and summary.user_chars > 0
    clusters = {c.id: c for c in checkpoint.clusters}
    meta = [json.loads(line) for line in open(DATA / "kura-checkpoint" / "meta_clusters.jsonl", encoding="utf-8")]
    assert set(clusters) == {m["id"] for m in meta}
    base_ids = {json.loads(line)["id"] for line in open(DATA / "kura-checkpoint" / "clusters.jsonl", encoding="utf-8")}
    assert {c.id for c in checkpoint.clusters if c.level == 0} == base_ids
    for cluster in checkpoint.clusters:  # a parent is exactly one level above its highest child
        children = [c for c in checkpoint.clusters if c.parent_id == cluster.id]
        if children:
            assert cluster.level == 1 + max(c.level for c in children)
        assert cluster.x is not None and cluster.y is not None
    dimensionality_levels = {json.loads(line)["level"] for line in open(DATA / "kura-checkpoint" / "dimensionality.jsonl", encoding="utf-8")}
    assert dimensionality_levels <= {0, 1}  # Kura's own levels are wrong; ours come from the links
    assert checkpoint.levels() == {0: 3, 1: 2, 2: 1, 3: 1}


def test_read_full_kura_wandb_checkpoint():
    checkpoint = read_kura_checkpoint(DATA / "kura-wandb")
    assert checkpoint.levels() == {0: 56, 1: 29, 2: 15, 3: 7}
    assert len(checkpoint.summaries) == 560 and not checkpoint.report.skipped
    roots = [c for c in checkpoint.clusters if c.parent_id is None]
    assert sum(c.size for c in roots) == 560


def test_claude_export():
    conversations, report = load(DATA / "claude-export.json")
    assert report.format == "claude"
    assert [c.id for c in conversations] == [
        "3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6f", "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d", "c0ffee00-aaaa-4bbb-8ccc-ddddeeeeffff"]
    regex = conversations[0]
    assert [m.role for m in regex.messages] == ["user", "assistant", "user", "assistant"]
    assert regex.messages[0].content.startswith("Write a Python regex")
    assert regex.created_at.year == 2024 and regex.metadata["name"] == "Regex for ISO dates"
    notes = conversations[1]
    assert notes.messages[1].content.startswith("- The API latency")  # text block only, no tool blocks
    assert notes.metadata["non_text_parts"] == {"tool_use": 1, "tool_result": 1}
    assert notes.metadata["attachments"][0]["file_name"] == "standup-2024-12-10.txt"
    assert "Standup 10 Dec" not in " ".join(m.content for m in notes.messages)  # attachment text is not added
    assert conversations[2].messages[0].content.startswith("Give me an opening line")  # old exports: text field only
    assert len(report.skipped) == 1 and report.skipped[0].record_id == "deadbeef-0000-4000-8000-000000000001"
    assert report.skipped[0].line == 188 and report.skipped[0].reason.startswith("empty conversation")


def test_chatgpt_export_follows_the_current_branch_only():
    conversations, report = load(DATA / "chatgpt-export.json")
    assert report.format == "chatgpt"
    groupby = conversations[0]
    texts = [m.content for m in groupby.messages]
    assert [m.role for m in groupby.messages] == ["user", "assistant", "user", "assistant"]
    assert texts[2] == "Can I get the sum and the mean of sales in the same call?"  # the edited message
    assert texts[3].startswith("Yes, pass both to `agg`")  # the regenerated answer the user kept
    everything = " ".join(texts)
    for other_branch in ("ORIGINAL-BRANCH", "REGENERATED-AWAY"):
        assert other_branch not in everything
    assert groupby.metadata["other_branch_messages"] == 3
    assert groupby.metadata["title"] == "Pandas groupby sum" and groupby.metadata["models"] == ["gpt-4o"]
    assert groupby.created_at.timestamp() == pytest.approx(1717407000.0)


def test_chatgpt_export_non_text_parts_hidden_nodes_and_missing_current_node():
    conversations, report = load(DATA / "chatgpt-export.json")
    chart = conversations[1]
    assert chart.messages[0].role == "user"
    assert chart.messages[0].content == "This chart shows monthly signups. Why does March drop so much?"
    assert chart.metadata["non_text_parts"] == {"image_asset_pointer": 1, "user_editable_context": 1}
    assert "Answer briefly" not in " ".join(m.content for m in chart.messages)  # custom instructions are hidden
    assert [m.role for m in chart.messages] == ["user", "assistant", "tool", "assistant"]
    translation = conversations[2]  # no current_node: last child at each branch
    assert translation.messages[-1].content == "Das Meeting wurde auf Donnerstag verschoben."
    assert any("current_node" in w for w in report.warnings)
    assert [s.record_id for s in report.skipped] == ["66c0ffee-2222-8000-bbbb-000000000000"]  # only a hidden system node


def test_sharegpt_slice_recovers_whole_records_and_reports_the_cut():
    conversations, report = load(DATA / "sharegpt-truncated.json")
    assert report.format == "sharegpt"
    assert [c.id for c in conversations] == ["otSTSpB_0", "ncJJfCQ_0", "j0gtTrY_0", "W4wL13P_0", "wpSappl_0", "dcTB2RK_0", "ZUkSe7V_0"]
    # ZUkSe7V_0 appears twice in the real data: first empty (skipped), then with content (kept, not a duplicate)
    zuk = [c for c in conversations if c.id == "ZUkSe7V_0"]
    assert len(zuk) == 1 and zuk[0].messages[0].content.startswith("Paper Name: My Tweets")
    assert [(s.line, s.reason.split(":")[0]) for s in report.skipped] == [(184, "empty conversation"), (201, "incomplete record")]
    size = os.path.getsize(DATA / "sharegpt-truncated.json")
    assert len(report.warnings) == 1
    assert f"byte {size}" in report.warnings[0] and "line 201" in report.warnings[0]
    roles = {m.role for c in conversations for m in c.messages}
    assert roles <= {"user", "assistant", "system"}


def test_queries_keep_the_document_in_metadata_not_in_the_text():
    rows = json.load(open(DATA / "wandb-queries.json", encoding="utf-8"))
    conversations, report = load(DATA / "wandb-queries.json")
    assert report.format == "queries" and len(conversations) == len(rows) == 25
    for conversation, row in zip(conversations, rows):
        assert conversation.id == row["query_id"]
        assert [(m.role, m.content) for m in conversation.messages] == [("user", row["query"])]
        assert conversation.metadata == {k: row[k] for k in ("matching_document", "matching_document_document_id", "query_weight")}


def test_all_560_wandb_queries_load(tmp_path):
    """All 560 real W&B queries (from the bundled example) written back in the queries format."""
    rows = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        rows.append({
            "query_id": record["id"], "query": record["messages"][0]["content"],
            "matching_document": record["metadata"]["document_excerpt"],
            "matching_document_document_id": record["metadata"]["document_id"],
            "query_weight": record["metadata"]["query_weight"],
        })
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(rows, indent=4, ensure_ascii=False), encoding="utf-8")
    conversations, report = load(path)
    assert report.format == "queries" and len(conversations) == 560 and not report.skipped and not report.warnings
    assert [c.id for c in conversations] == [r["query_id"] for r in rows]


def test_csv_defaults_find_the_text_column_and_keep_the_rest_as_metadata():
    with open(DATA / "banking77-sample.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    conversations, report = load(DATA / "banking77-sample.csv")
    assert report.format == "csv" and len(conversations) == len(rows) == 40
    assert conversations[0].id == "banking77-sample-2"  # no id column: file stem and line
    assert conversations[0].messages[0].content == rows[0]["text"]
    assert conversations[0].metadata == {"category": rows[0]["category"]}


def test_csv_with_mapping_multiline_cells_and_line_numbers(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text(
        'ticket,opened,question,reply,team\n'
        't1,2024-03-01T10:00:00,"I still have not received my new card,\nI ordered over a week ago.",Cards ship in 5 days.,cards\n'
        't2,2024-03-02T11:00:00,,No question asked,cards\n'
        't3,not-a-date,Why is my transfer pending?,It clears in a day.,payments\n',
        encoding="utf-8",
    )
    mapping = {"id": "ticket", "text": "question", "assistant": "reply", "created_at": "opened", "metadata": ["team"]}
    conversations, report = load(path, "csv", mapping)
    assert [c.id for c in conversations] == ["t1", "t2", "t3"]  # t2 has an assistant message with text
    assert conversations[0].messages[0].content.endswith("week ago.") and conversations[0].metadata == {"team": "cards"}
    assert conversations[0].created_at.day == 1 and conversations[2].created_at is None
    assert any(w.startswith(f"{path}:5:") and "opened" in w for w in report.warnings)  # row of t3 starts on line 5


def test_csv_missing_mapped_column_lists_the_available_ones():
    with pytest.raises(InputError, match=r"column 'question' \(mapped as text\) not found; available columns: text, category"):
        list(load_conversations(DATA / "banking77-sample.csv", "csv", ColumnMapping(text="question")))


def test_column_mapping_from_cli_pairs():
    mapping = ColumnMapping.from_pairs("id=qid,user=question,metadata=a;b")
    assert (mapping.id, mapping.text, mapping.metadata) == ("qid", "question", ["a", "b"])
    with pytest.raises(InputError):
        ColumnMapping.from_pairs("id")
    with pytest.raises(InputError, match="invalid column mapping"):
        ColumnMapping.coerce({"colour": "x"})


def test_parquet_streams_rows_with_a_mapping(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(DATA / "banking77-sample.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    table = pa.table({"uid": [f"b{i}" for i in range(len(rows))], "utterance": [r["text"] for r in rows], "intent": [r["category"] for r in rows]})
    path = tmp_path / "banking.parquet"
    pq.write_table(table, path, row_group_size=7)
    conversations, report = load(path, mapping="id=uid,text=utterance")
    assert report.format == "parquet" and len(conversations) == 40
    assert conversations[39].id == "b39" and conversations[39].messages[0].content == rows[39]["text"]
    assert conversations[39].metadata == {"intent": rows[39]["category"]}
    with pytest.raises(InputError, match="no text column found.*available columns: uid, utterance, intent"):
        list(load_conversations(path))


def _mtbench_rows() -> list[dict]:
    return [json.loads(line) for line in open(DATA / "mtbench-kura.jsonl", encoding="utf-8")]


def test_hf_saved_dataset_with_messages_and_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"id": r["chat_id"], "messages": [{"role": m["role"], "content": m["content"]} for m in r["messages"]], "model": r["metadata"]["model"]} for r in _mtbench_rows()]
    folder = tmp_path / "mtbench-ds"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    assert detect_format(folder) == "hf"
    conversations, report = load(folder)
    assert [c.id for c in conversations] == [r["id"] for r in rows]
    assert conversations[0].messages[1].content == rows[0]["messages"][1]["content"]
    assert conversations[0].metadata == {"model": rows[0]["model"]}
    splits = tmp_path / "splits"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:8]), "test": datasets.Dataset.from_list(rows[8:])}).save_to_disk(str(splits))
    conversations, report = load(splits, "hf")
    assert len(conversations) == 12 and [c.metadata["split"] for c in conversations].count("test") == 4


def test_hf_sharegpt_style_conversations_column_and_text_mapping(tmp_path):
    datasets = pytest.importorskip("datasets")
    with open(DATA / "banking77-sample.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    folder = tmp_path / "banking-ds"
    datasets.Dataset.from_list([{"utterance": r["text"], "label": r["category"]} for r in rows]).save_to_disk(str(folder))
    conversations, _ = load(folder, "hf", {"text": "utterance"})
    assert len(conversations) == 40 and conversations[0].messages[0].content == rows[0]["text"]
    assert conversations[0].id == "banking-ds-1"  # no id column: folder name and row


def test_hf_folder_of_data_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _mtbench_rows()
    folder = tmp_path / "data"
    folder.mkdir()
    pq.write_table(pa.table({"id": [r["chat_id"] for r in rows[:6]], "messages": [json.dumps(r["messages"]) for r in rows[:6]]}), folder / "part-0.parquet")
    with open(folder / "part-1.jsonl", "w", encoding="utf-8") as out:
        for r in rows[6:]:
            out.write(json.dumps({"id": r["chat_id"], "messages": r["messages"]}) + "\n")
    assert detect_format(folder) == "hf"
    conversations, _ = load(folder)
    assert [c.id for c in conversations] == [r["chat_id"] for r in rows]
    single, _ = load(folder / "part-0.parquet", "hf")  # one file with --format hf
    assert [c.id for c in single] == [r["chat_id"] for r in rows[:6]]


def test_hf_hub_name_offline_is_a_clear_input_error():
    code = (
        "from kiku.loaders import load_conversations\n"
        "from kiku.errors import InputError\n"
        "try:\n    list(load_conversations('someone/no-such-dataset', 'hf'))\n"
        "except InputError as e:\n    print('INPUT-ERROR', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "INPUT-ERROR someone/no-such-dataset: not a local file or folder" in result.stdout
    assert "save_to_disk" in result.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mtbench-kura.jsonl", "kura"),
        ("kura-checkpoint", "kura-checkpoint"),
        ("claude-export.json", "claude"),
        ("chatgpt-export.json", "chatgpt"),
        ("sharegpt-truncated.json", "sharegpt"),
        ("wandb-queries.json", "queries"),
        ("banking77-sample.csv", "csv"),
    ],
)
def test_detect_format_on_real_samples(name, expected):
    assert detect_format(DATA / name) == expected


def test_detect_format_jsonl_parquet_and_unknown(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text('{"id": "1", "messages": [{"role": "user", "content": "hi"}]}\n', encoding="utf-8")
    assert detect_format(tmp_path / "a.jsonl") == "jsonl"
    pq.write_table(pa.table({"text": ["hi"]}), tmp_path / "t.parquet")
    assert detect_format(tmp_path / "t.parquet") == "parquet"
    (tmp_path / "notes.txt").write_text("just some prose\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown format .*; pass --format one of jsonl, kura, kura-checkpoint"):
        detect_format(tmp_path / "notes.txt")
    (tmp_path / "other.json").write_text('[{"foo": 1, "bar": 2}]', encoding="utf-8")
    with pytest.raises(InputError, match="the first record has fields foo, bar"):
        detect_format(tmp_path / "other.json")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(InputError, match="unknown format"):
        detect_format(empty_dir)


def test_load_conversations_returns_a_lazy_generator():
    result = load_conversations(DATA / "mtbench-kura.jsonl")
    assert inspect.isgenerator(result)
    assert isinstance(next(result), Conversation)
    result.close()


def test_report_summary_and_manifest_shape():
    report = LoadReport()
    list(load_conversations(DATA / "sharegpt-truncated.json", report=report))
    assert report.summary() == (
        f"{DATA / 'sharegpt-truncated.json'} (sharegpt): loaded 7 conversations, skipped 2, 1 warnings "
        "(empty conversation: 1, incomplete record: 1)"
    )
    manifest = report.to_manifest()
    assert manifest["loaded"] == 7 and manifest["skipped"][0]["line"] == 184
    json.dumps(manifest)


def test_jsonl_with_a_mapping_for_other_field_names(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [json.loads(line) for line in open(DATA / "mtbench-kura.jsonl", encoding="utf-8")][:3]
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({"key": row["chat_id"], "ask": row["messages"][0]["content"], "reply": row["messages"][1]["content"], "model": row["metadata"]["model"]}) + "\n")
    conversations, report = load(path, "jsonl", "id=key,text=ask,assistant=reply")
    assert [c.id for c in conversations] == [r["chat_id"] for r in rows]
    assert [(m.role, m.content) for m in conversations[0].messages] == [(m["role"], m["content"]) for m in rows[0]["messages"][:2]]
    assert conversations[0].metadata == {"model": rows[0]["metadata"]["model"]}


def test_report_tells_where_each_conversation_starts():
    report = LoadReport()
    positions = [(c.id, report.current_source, report.current_line) for c in load_conversations(DATA / "sharegpt-truncated.json", report=report)]
    assert positions[0] == ("otSTSpB_0", str(DATA / "sharegpt-truncated.json"), 2)
    text = (DATA / "sharegpt-truncated.json").read_text(encoding="utf-8").split("\n")
    for conversation_id, _, line in positions:
        assert text[line] == f'    "id": "{conversation_id}",'  # the line after the record's '{'
    report = LoadReport()
    folder = [(report.current_source, report.current_line) for _ in load_conversations(DATA / "kura-checkpoint", report=report)]
    assert folder[3] == (str(DATA / "kura-checkpoint" / "conversations.jsonl"), 4)


def test_problems_inside_a_folder_input_name_the_file_inside_it(tmp_path):
    rows = _mtbench_rows()
    folder = tmp_path / "data"
    folder.mkdir()
    with open(folder / "a.jsonl", "w", encoding="utf-8") as out:
        out.write(json.dumps({"id": rows[0]["chat_id"], "messages": rows[0]["messages"]}) + "\n")
        out.write("{oops\n")
    with open(folder / "b.jsonl", "w", encoding="utf-8") as out:
        out.write(json.dumps({"id": rows[0]["chat_id"], "messages": rows[1]["messages"]}) + "\n")
        out.write(json.dumps({"id": rows[2]["chat_id"], "messages": rows[2]["messages"]}) + "\n")
    conversations, report = load(folder, "hf")
    assert [c.id for c in conversations] == [rows[0]["chat_id"], rows[2]["chat_id"]]
    assert [(Path(s.source).name, s.line) for s in report.skipped] == [("a.jsonl", 2), ("b.jsonl", 1)]
    assert report.skipped[1].reason.startswith(f"duplicate id '{rows[0]['chat_id']}': first seen on line 1 of {folder / 'a.jsonl'}")
    assert report.source == str(folder) and report.loaded == 2


def test_zipped_exports_are_read_from_their_conversations_json(tmp_path):
    import zipfile

    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("user.json", '{"id": "user-1"}')
        bundle.writestr("chat.html", "<html></html>")
        bundle.write(DATA / "chatgpt-export.json", "conversations.json")
    assert detect_format(archive) == "chatgpt"
    conversations, report = load(archive)
    plain, _ = load(DATA / "chatgpt-export.json")
    assert conversations == plain
    assert report.format == "chatgpt" and report.source == f"{archive}/conversations.json"
    assert report.skipped[0].source == f"{archive}/conversations.json"
    leftovers = list(Path(tempfile.gettempdir()).glob("kiku-zip-*"))
    assert not [p for p in leftovers if (p / "conversations.json").exists() and (p / "conversations.json").stat().st_size == (DATA / "chatgpt-export.json").stat().st_size]
    several = tmp_path / "several.zip"
    with zipfile.ZipFile(several, "w") as bundle:
        bundle.writestr("a.jsonl", "{}")
        bundle.writestr("b.jsonl", "{}")
    with pytest.raises(InputError, match=r"several data files \(a.jsonl, b.jsonl\); unzip it and pass the one to read"):
        load_conversations(several)
