"""Reading items: queries with documents, conversations, plain labelled rows, review logs, other formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiku.classify.backends import Prediction, _normalise_spec
from kiku.classify.data import Item, document_head, read_items, write_jsonl
from kiku.classify.evaluate import score
from kiku.classify.review import GoldLog, fold_decisions, replay
from kiku.errors import InputError


def test_query_records_keep_document_head_as_context(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [{"query_id": "a", "query": "link a model", "label": "artifact",
                                              "matching_document": "## Model Registry\n### Link\n\nClick **Link**.\n" + "x" * 2000}])
    item = read_items(path)[0]
    assert (item.id, item.text, item.label) == ("a", "link a model", "artifact")
    assert item.context.startswith("Model Registry / Link / Click **Link**.") and len(item.context) <= 600


def test_conversations_use_user_turns_and_times(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": "c1", "created_at": "2024-05-01T10:00:00Z", "messages": [
        {"role": "system", "content": "be nice"}, {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"}, {"role": "user", "content": "second"}]}])
    item = read_items(path)[0]
    assert item.text == "first\n\nsecond" and item.created_at.isoformat() == "2024-05-01T10:00:00+00:00"


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "1", "text": "ok"}\n{"id": "1", "text": "again"}\n', "duplicate id '1'"),
    ('{"id": "1", "text": ""}\n', ":1: record has no text"),
    ('{"id": "1", "text": "x", "created_at": "yesterday"}\n', ":1: created_at 'yesterday' is not a date"),
    ('{"id": "1", "messages": [{"role": "assistant", "content": "hi"}]}\n', ":1: conversation has no user message"),
])
def test_bad_records_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line)
    with pytest.raises(InputError, match=message):
        read_items(path)


def test_a_bad_line_is_skipped_and_reported_not_the_end_of_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "1", "text": "refund"}\n{"id": "2", "text": \n{"id": "3", "text": ""}\n{"id": "4", "text": "crash"}\n')
    items = read_items(path)
    assert [item.id for item in items] == ["1", "4"]
    err = capsys.readouterr().err
    assert "2 records" in err and f"{path}:2: malformed JSON" in err and f"{path}:3 (id 3): record has no text" in err


def test_csv_goes_through_kiku_loaders(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,text,created_at\nr1,how do I get a refund,2024-05-01T10:00:00Z\nr2,app crashes,2024-05-02T10:00:00Z\n")
    items = read_items(path)
    assert [(i.id, i.text) for i in items] == [("r1", "how do I get a refund"), ("r2", "app crashes")]


def test_review_log_folds_undo_reject_and_skip(tmp_path: Path) -> None:
    log = GoldLog(tmp_path / "gold.jsonl")
    for record in [
        {"id": "a", "text": "A", "decision": "accept", "label": "x"},
        {"id": "b", "text": "B", "decision": "reject", "label": None},
        {"id": "c", "text": "C", "decision": "skip", "label": None},
        {"id": "a", "text": "A", "decision": "relabel", "label": "y"},
        {"id": "a", "decision": "undo"},
        {"id": "d", "text": "D", "decision": "relabel", "label": "z"},
    ]:
        log.append(record)
    final, order = replay(log.records)
    assert order == ["a", "b", "c", "d"] and final["a"]["label"] == "x"
    assert [(i.id, i.label) for i in read_items(log.path)] == [("a", "x"), ("d", "z")]
    # a line cut off by a crash at the very end is ignored; everything before it survives
    with log.path.open("a") as handle:
        handle.write('{"id": "e", "deci')
    reopened = GoldLog(log.path)
    assert len(reopened.records) == 6
    reopened.append({"id": "f", "text": "F", "decision": "accept", "label": "x"})
    assert [i.id for i in fold_decisions(GoldLog(log.path).records)] == ["a", "d", "f"]


def test_document_head_and_llm_spec_forms() -> None:
    assert document_head("---\n# T\n\n- a\n") == "T / - a"
    assert _normalise_spec("local:qwen2.5-coder-0.5b") == "local/qwen2.5-coder-0.5b"
    assert _normalise_spec("/m/x.gguf") == "local//m/x.gguf"
    assert _normalise_spec("openai/gpt-4o-mini") == "openai/gpt-4o-mini"


def test_multi_label_scoring_uses_exact_match_and_per_label_f1() -> None:
    items = [Item(id="1", text="t", labels=["a", "b"]), Item(id="2", text="t", labels=["b"]), Item(id="3", text="t", labels=["c"])]
    predictions = [Prediction(item_id="1", label="a", labels=["a", "b"], confidence=0.9),
                   Prediction(item_id="2", label="b", labels=["b", "c"], confidence=0.9),
                   Prediction(item_id="3", label="c", labels=["c"], confidence=0.9)]
    result = score(items, predictions, ["a", "b", "c"], multi_label=True)
    assert result.accuracy == pytest.approx(2 / 3)
    by_label = {m.label: m for m in result.per_label}
    assert by_label["a"].f1 == 1.0 and by_label["c"].precision == 0.5 and result.confusion == []
    assert json.loads(result.model_dump_json())["misclassified"][0]["item_id"] == "2"
