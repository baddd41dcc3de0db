"""One test per kind of bad input: exact skipped counts, line numbers in reasons, usable records kept.

Bad files are made from real lines (tests/data/mtbench-kura.jsonl, the ShareGPT slice) with one
defect each, so every test shows the defect is isolated and the good records survive.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiku.errors import InputError
from kiku.loaders import LoadReport, load_conversations
from loaders_helpers import DATA

REAL = [line.rstrip("\n") for line in open(DATA / "mtbench-kura.jsonl", encoding="utf-8")]
REAL_IDS = [json.loads(line)["chat_id"] for line in REAL]


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    with open(path, "wb") as out:
        for line in lines:
            out.write((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")
    return path


def load(path, format=None):
    report = LoadReport()
    return list(load_conversations(path, format, None, report)), report


def with_field(line: str, **changes) -> str:
    row = json.loads(line)
    for key, value in changes.items():
        if value is ...:
            row.pop(key)
        else:
            row[key] = value
    return json.dumps(row)


def test_malformed_json_line_is_skipped_with_its_line_number(tmp_path):
    path = write_lines(tmp_path / "chats.jsonl", [REAL[0], REAL[1], REAL[2][:150], REAL[3], REAL[4]])
    conversations, report = load(path)
    assert [c.id for c in conversations] == [REAL_IDS[i] for i in (0, 1, 3, 4)]
    assert len(report.skipped) == 1
    skipped = report.skipped[0]
    assert skipped.line == 3 and skipped.source == str(path)
    assert skipped.reason == "malformed JSON: Expecting value (column 151); fix or delete this line"


def test_empty_conversations_are_skipped(tmp_path):
    blank = [{"role": "user", "content": "   "}, {"role": "assistant", "content": ""}]
    path = write_lines(tmp_path / "chats.jsonl", [REAL[0], with_field(REAL[1], messages=[]), REAL[2], with_field(REAL[3], messages=blank)])
    conversations, report = load(path)
    assert [c.id for c in conversations] == [REAL_IDS[0], REAL_IDS[2]]
    assert [(s.line, s.record_id, s.reason) for s in report.skipped] == [
        (2, REAL_IDS[1], "empty conversation: no messages; nothing to analyse"),
        (4, REAL_IDS[3], "empty conversation: no message with text; nothing to analyse"),
    ]


def test_missing_field_names_the_field(tmp_path):
    no_messages = with_field(REAL[1], messages=...)
    no_role = with_field(REAL[2], messages=[{"content": "hello"}])
    path = write_lines(tmp_path / "chats.jsonl", [REAL[0], no_messages, no_role, REAL[3]])
    conversations, report = load(path)
    assert [c.id for c in conversations] == [REAL_IDS[0], REAL_IDS[3]]
    assert [s.line for s in report.skipped] == [2, 3]
    assert report.skipped[0].reason.startswith("missing field: 'messages'")
    assert report.skipped[0].record_id == REAL_IDS[1]
    assert report.skipped[1].reason.startswith("missing field: 'messages[0].role'")


def test_wrong_types_name_the_field(tmp_path):
    lines = [
        REAL[0],
        with_field(REAL[1], messages="hello there"),
        with_field(REAL[2], messages=[{"role": "user", "content": 42}]),
        with_field(REAL[3], messages=[{"role": "narrator", "content": "Once upon a time"}]),
        with_field(REAL[4], chat_id={"nested": "id"}),
        "[1, 2, 3]",
        REAL[5],
    ]
    conversations, report = load(write_lines(tmp_path / "chats.jsonl", lines), "kura")
    assert [c.id for c in conversations] == [REAL_IDS[0], REAL_IDS[5]]
    reasons = {s.line: s.reason for s in report.skipped}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert reasons[2].startswith("wrong type: field 'messages' is a string that is not a JSON list")
    assert reasons[3].startswith("wrong type: field 'messages[0].content' must be a string or a list of text parts, got int")
    assert reasons[4].startswith("unknown role in 'messages[0].role'")
    assert reasons[5].startswith("wrong type: field 'chat_id' must be a string or an integer, got object")
    assert reasons[6].startswith("wrong type: expected a JSON object per record, got list")


def test_invalid_time_is_dropped_with_a_warning_and_the_record_kept(tmp_path):
    path = write_lines(tmp_path / "chats.jsonl", [REAL[0], with_field(REAL[1], created_at="last tuesday")])
    conversations, report = load(path)
    assert len(conversations) == 2 and conversations[1].created_at is None
    assert report.warnings == [f"{path}:2: created_at: not an ISO-8601 time: 'last tuesday'; the time was dropped; the record was kept"]


def test_non_utf8_bytes_are_replaced_and_the_line_reported(tmp_path):
    bad = REAL[1].encode("utf-8").replace(b"Compose", b"Comp\xff\xfese", 1)
    path = write_lines(tmp_path / "chats.jsonl", [REAL[0].encode(), bad, REAL[2].encode()])
    conversations, report = load(path)
    assert [c.id for c in conversations] == REAL_IDS[:3]
    assert not report.skipped
    assert "Comp\ufffd\ufffdse" in conversations[1].messages[0].content
    assert len(report.warnings) == 1 and report.warnings[0].startswith(f"{path}:2: 2 invalid UTF-8 byte(s) replaced with U+FFFD")


def test_non_utf8_bytes_in_a_big_json_array_point_at_the_right_line(tmp_path):
    data = (DATA / "sharegpt-truncated.json").read_bytes()
    lines = data.split(b"\n")
    target = next(i for i, line in enumerate(lines) if b'"value": "Write me a' in line or b'"value": "' in line and i > 40)
    lines[target] = lines[target].replace(b'"value": "', b'"value": "\xc3(', 1)
    path = tmp_path / "sharegpt.json"
    path.write_bytes(b"\n".join(lines))
    conversations, report = load(path, "sharegpt")
    assert len(conversations) == 7
    assert any(w.startswith(f"{path}:{target + 1}: 1 invalid UTF-8 byte(s)") for w in report.warnings)
    assert any("\ufffd(" in m.content for c in conversations for m in c.messages)


def test_duplicate_ids_keep_the_first(tmp_path):
    duplicate = with_field(REAL[3], chat_id=REAL_IDS[0])
    path = write_lines(tmp_path / "chats.jsonl", [REAL[0], REAL[1], REAL[2], duplicate, REAL[4]])
    conversations, report = load(path)
    assert [c.id for c in conversations] == [REAL_IDS[i] for i in (0, 1, 2, 4)]
    assert conversations[0].messages[0].content == json.loads(REAL[0])["messages"][0]["content"]
    assert len(report.skipped) == 1
    assert report.skipped[0].line == 4 and report.skipped[0].record_id == REAL_IDS[0]
    assert report.skipped[0].reason.startswith(f"duplicate id '{REAL_IDS[0]}': first seen on line 1")


def test_empty_file_is_an_input_error_at_call_time(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.json").write_bytes(b"\n  \n")
    for name in ("empty.jsonl", "blank.json"):
        with pytest.raises(InputError, match=r"the file is empty; export the conversations again"):
            load_conversations(tmp_path / name)  # raised before iterating


def test_missing_and_unreadable_inputs(tmp_path):
    with pytest.raises(InputError, match="file not found; check the path"):
        load_conversations(tmp_path / "nope.jsonl", "jsonl")
    with pytest.raises(InputError, match="file not found"):
        load_conversations(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a folder, but format 'jsonl' reads a file"):
        load_conversations(tmp_path, "jsonl")


def test_unknown_format_name(tmp_path):
    with pytest.raises(InputError, match=r"unknown format 'xml'; pass --format one of jsonl, kura, kura-checkpoint, claude, chatgpt, sharegpt, queries, csv, parquet, hf"):
        load_conversations(DATA / "mtbench-kura.jsonl", "xml")


def test_nothing_usable_is_an_input_error_after_the_last_record(tmp_path):
    path = write_lines(tmp_path / "chats.jsonl", ["not json", '{"id": "a", "messages": []}'])
    report = LoadReport()
    with pytest.raises(InputError, match=r"no usable conversations \(2 records skipped; first: .*chats.jsonl:1: malformed JSON"):
        list(load_conversations(path, report=report))
    assert report.skipped_count == 2  # the report is filled even when the load fails


def test_wrong_format_for_the_file_says_to_pass_another(tmp_path):
    with pytest.raises(InputError, match="no usable conversations .*missing field: 'chat_messages'.*pass another --format"):
        list(load_conversations(DATA / "sharegpt-truncated.json", "claude"))


def test_truncated_sharegpt_array(tmp_path):
    data = (DATA / "sharegpt-truncated.json").read_bytes()
    cut = data[: data.index(b'"id": "W4wL13P_0"') + 30]  # inside the 4th record
    path = tmp_path / "cut.json"
    path.write_bytes(cut)
    conversations, report = load(path)
    assert [c.id for c in conversations] == ["otSTSpB_0", "ncJJfCQ_0", "j0gtTrY_0"]
    start_line = cut[: cut.index(b'"id": "W4wL13P_0"')].count(b"\n")  # the '{' line before the id
    assert [(s.line, s.reason.split(":")[0]) for s in report.skipped] == [(start_line, "incomplete record")]
    last_line = cut.count(b"\n") + 1
    assert report.warnings == [
        f"{path}: file is cut off mid-record at byte {len(cut)} (line {last_line}); the record starting at line {start_line} "
        "is incomplete and was skipped; the 3 whole records before it were read"
    ]


def test_malformed_element_inside_a_json_array_is_skipped_and_reading_resumes(tmp_path):
    data = (DATA / "sharegpt-truncated.json").read_text(encoding="utf-8")
    broken = data.replace('"id": "ncJJfCQ_0",', '"id": "ncJJfCQ_0" "oops": 1,', 1)
    path = tmp_path / "broken.json"
    path.write_text(broken, encoding="utf-8")
    conversations, report = load(path, "sharegpt")
    assert [c.id for c in conversations] == ["otSTSpB_0", "j0gtTrY_0", "W4wL13P_0", "wpSappl_0", "dcTB2RK_0", "ZUkSe7V_0"]
    malformed = [s for s in report.skipped if s.reason.startswith("malformed JSON")]
    record_line = broken[: broken.index('"id": "ncJJfCQ_0"')].count("\n")
    assert len(malformed) == 1 and malformed[0].line == record_line
    assert f"Expecting ',' delimiter (line {record_line + 1})" in malformed[0].reason and "resumed at line" in malformed[0].reason


def test_csv_row_with_wrong_field_count(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("text,category\nHow do I locate my card?,card_arrival\nWhy, oh why, was I charged?,fees\nMy card is lost,lost_card\n", encoding="utf-8")
    conversations, report = load(path)
    assert [c.messages[0].content for c in conversations] == ["How do I locate my card?", "My card is lost"]
    assert [(s.line, s.reason) for s in report.skipped] == [(3, "wrong number of fields: 4, the header has 2; quote fields that contain the delimiter")]


def _mutations(value, rng, count):
    """Apply ``count`` random edits (replace a nested value with another type, or delete a key)."""
    import copy

    replacements = [None, 1, -3.5, True, "", "x", [], {}, [1, "a"], {"a": 1}, 10**30, "2024-99-99", {"role": "user", "content": "x"}]
    data = copy.deepcopy(value)
    for _ in range(count):
        paths, stack = [], [((), data)]
        while stack:
            path, node = stack.pop()
            if path:
                paths.append(path)
            children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
            stack.extend((path + (key,), child) for key, child in children)
        if not paths:
            break
        path = rng.choice(paths)
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(path[-1], str) and rng.random() < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(replacements))
    return data


@pytest.mark.parametrize("seed", [0, 1])
def test_randomly_damaged_records_never_escape_as_tracebacks(tmp_path, seed):
    """Seeded structural and byte-level damage to real samples: only InputError or skipped records."""
    import random

    from kiku.errors import KikuError
    from kiku.loaders import FORMATS

    rng = random.Random(seed)
    samples = {
        "chatgpt": json.loads((DATA / "chatgpt-export.json").read_text(encoding="utf-8")),
        "claude": json.loads((DATA / "claude-export.json").read_text(encoding="utf-8")),
        "queries": json.loads((DATA / "wandb-queries.json").read_text(encoding="utf-8"))[:4],
        "jsonl": [json.loads(line) for line in REAL[:4]],
    }
    escaped = []
    for index in range(120):
        name = rng.choice(sorted(samples))
        damaged = json.dumps(_mutations(samples[name], rng, rng.randint(1, 4))).encode("utf-8")
        if index % 3 == 0:  # and some byte damage
            cut = rng.randrange(len(damaged))
            damaged = damaged[:cut] + bytes([rng.randrange(256)]) + damaged[cut + rng.randint(0, 3) :]
        path = tmp_path / f"damaged-{index}.json"
        path.write_bytes(damaged)
        for format_name in (None, name, rng.choice(sorted(FORMATS))):
            try:
                list(load_conversations(path, format_name, report=LoadReport()))
            except KikuError:
                pass
            except Exception as exc:  # noqa: BLE001 - the point of the test
                escaped.append(f"{name} as {format_name}: {type(exc).__name__}: {exc}")
    assert escaped == []


# --- issue 10: deep nesting, lone surrogates, NaN/Infinity, other delimiters, gzip, made-up ids ---

DEEP = "[" * 10_000 + "]" * 10_000


def test_json_nested_10000_deep_is_skipped_with_its_line_and_the_rest_loads(tmp_path):
    deep_line = with_field(REAL[1], metadata={"x": "@"}).replace('"@"', DEEP)
    conversations, report = load(write_lines(tmp_path / "chats.jsonl", [REAL[0], deep_line, REAL[2]]))
    assert [c.id for c in conversations] == [REAL_IDS[0], REAL_IDS[2]]
    assert [(s.line, s.reason.split(":")[0]) for s in report.skipped] == [(2, "too deeply nested")]

    records = [json.loads(REAL[0]), json.loads(REAL[2])]
    text = "[\n  " + json.dumps(records[0]) + ",\n  " + DEEP + ",\n  " + json.dumps(records[1]) + "\n]\n"
    conversations, report = load(write_lines(tmp_path / "array.json", [text]))
    assert [c.id for c in conversations] == [REAL_IDS[0], REAL_IDS[2]]
    assert [(s.line, s.reason) for s in report.skipped] == [
        (3, "too deeply nested: the record's JSON nests lists/objects past what can be read; flatten it to load it; resumed at line 4")
    ]

    alone = write_lines(tmp_path / "alone.json", [DEEP])
    with pytest.raises(InputError, match=r"alone.json: no record could be read at the start of the file \(first problem: .*alone.json:1: too deeply nested"):
        load(alone)
    with pytest.raises(InputError, match=r"no usable conversations \(1 records skipped; first: .*alone.json:1: too deeply nested"):
        load(alone, "jsonl")


def test_json_that_parses_but_is_too_deep_to_convert_is_skipped(tmp_path):
    deep = "[" * 700 + "]" * 700  # within the parser's limit, past what the converters can walk
    conversations, report = load(write_lines(tmp_path / "chats.jsonl", [with_field(REAL[0], metadata={"x": "@"}).replace('"@"', deep), REAL[1]]))
    assert [c.id for c in conversations] == [REAL_IDS[1]]
    assert [(s.line, s.record_id, s.reason.split(":")[0]) for s in report.skipped] == [(1, REAL_IDS[0], "too deeply nested")]


def test_lone_surrogate_is_replaced_and_reported(tmp_path):
    row = json.loads(REAL[1])
    row["messages"][0]["content"] = "Compose \ud800 an email"
    row["metadata"] = {"note": "\udc80", "\ud83d": 1, "pair": "\ud83d\ude00"}  # a valid pair is kept as it is
    path = write_lines(tmp_path / "chats.jsonl", [REAL[0], json.dumps(row), REAL[2]])
    assert "\\ud800" in path.read_text()  # written as the escape, as in the wild
    conversations, report = load(path)
    assert [c.id for c in conversations] == REAL_IDS[:3] and not report.skipped
    kept = conversations[1]
    assert kept.messages[0].content == "Compose \ufffd an email"
    assert kept.metadata["note"] == "\ufffd" and kept.metadata["\ufffd"] == 1 and kept.metadata["pair"] == "\U0001f600"
    assert report.warnings == [
        f"{path}:2: 3 lone surrogate(s) (a \\ud800-\\udfff escape without its pair) replaced with U+FFFD; the record was kept"
    ]
    assert kept.metadata["load_notes"] == ["3 lone surrogate(s) (a \\ud800-\\udfff escape without its pair) replaced with U+FFFD"]
    json.dumps(kept.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")  # storable


def test_nan_and_infinity_in_json_are_stored_as_null_with_a_warning(tmp_path):
    line = with_field(REAL[1], metadata={"score": "@1", "weight": "@2", "low": "@3"})
    line = line.replace('"@1"', "NaN").replace('"@2"', "Infinity").replace('"@3"', "-Infinity")
    path = write_lines(tmp_path / "chats.jsonl", [REAL[0], line])
    conversations, report = load(path)
    assert conversations[1].metadata == {"score": None, "weight": None, "low": None}
    assert json.loads(json.dumps(conversations[1].metadata, allow_nan=False)) == conversations[1].metadata
    assert report.warnings == [f"{path}:2: 3 NaN/Infinity value(s) (not valid JSON) were stored as null; the record was kept"]

    array = tmp_path / "queries.json"
    array.write_text('[{"query_id": "q1", "query": "How do I log a table?", "weight": Infinity},\n {"query_id": "q2", "query": "Sweeps?", "weight": 1}]')
    conversations, report = load(array)
    assert [c.metadata["weight"] for c in conversations] == [None, 1]
    assert report.warnings == [f"{array}:1: 1 NaN/Infinity value(s) (not valid JSON) were stored as null; the record was kept"]


def test_infinity_in_a_parquet_column_is_stored_as_null_with_a_warning(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "q.parquet"
    pq.write_table(pa.table({"text": ["How do I log a table?", "Sweeps?"], "score": [float("inf"), 0.5], "gap": [float("nan"), 1.0]}), path)
    conversations, report = load(path)
    assert [c.metadata for c in conversations] == [
        {"score": None, "gap": None, "load_notes": ["1 infinite number(s) in metadata stored as null (not valid JSON)"]},
        {"score": 0.5, "gap": 1.0},
    ]  # NaN in a table is a missing cell: null without a warning
    assert report.warnings[0] == f"{path}:1: 1 infinite number(s) in metadata stored as null (not valid JSON); the record was kept"


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_csv_delimiter_is_judged_from_the_header(tmp_path, delimiter):
    rows = [["id", "text", "amount"], ["1", "How do I locate my card?", "3,50"], ["2", "Why, oh why; was I charged?", "1,00"]]
    path = tmp_path / "q.csv"
    import csv

    with open(path, "w", newline="", encoding="utf-8") as out:
        csv.writer(out, delimiter=delimiter).writerows(rows)
    conversations, report = load(path)
    assert [(c.id, c.messages[0].content, c.metadata["amount"]) for c in conversations] == [
        ("1", "How do I locate my card?", "3,50"), ("2", "Why, oh why; was I charged?", "1,00")]
    assert not report.skipped
    named = {";": "';'", "\t": "tabs", "|": "'|'"}
    assert report.warnings == ([f"{path}: columns are separated by {named[delimiter]} (judged from the header row)"] if delimiter in named else [])


def test_gzipped_jsonl_and_json_are_read_transparently(tmp_path):
    import gzip

    jsonl = tmp_path / "chats.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as out:
        out.write("\n".join([REAL[0], REAL[1][:100], REAL[2]]) + "\n")
    conversations, report = load(jsonl)
    assert report.format == "kura" and [c.id for c in conversations] == [REAL_IDS[0], REAL_IDS[2]]
    assert [(s.source, s.line, s.reason.split(":")[0]) for s in report.skipped] == [(str(jsonl), 2, "malformed JSON")]

    export = tmp_path / "sharegpt.json.gz"
    export.write_bytes(gzip.compress((DATA / "sharegpt-truncated.json").read_bytes()))
    conversations, report = load(export)
    assert report.format == "sharegpt" and len(conversations) == 7
    assert [s.reason.split(":")[0] for s in report.skipped] == ["empty conversation", "incomplete record"]  # as for the plain file

    no_ids = tmp_path / "queries.jsonl.gz"
    no_ids.write_bytes(gzip.compress(b'{"query": "How do I log a table?"}\n'))
    assert [c.id for c in load(no_ids)[0]] == ["queries-1"]

    damaged = tmp_path / "broken.jsonl.gz"
    damaged.write_bytes(jsonl.read_bytes()[:40])
    with pytest.raises(InputError, match=r"broken.jsonl.gz: not a readable gzip file \(.*\); check the download, or decompress it"):
        load(damaged)


def test_made_up_ids_never_take_an_id_the_file_gives(tmp_path):
    def row(text, rid=None):
        return json.dumps({"messages": [{"role": "user", "content": text}], **({"id": rid} if rid is not None else {})})

    # a given id equal to the one kiku would make later: the made-up one moves aside
    path = write_lines(tmp_path / "chats.jsonl", [row("given", "chats-2"), row("no id"), row("given again", "chats-2")])
    conversations, report = load(path)
    assert [(c.id, c.messages[0].content) for c in conversations] == [("chats-2", "given"), ("chats-2~2", "no id")]
    assert [(s.line, s.reason.split(":")[0]) for s in report.skipped] == [(3, "duplicate id 'chats-2'")]  # given twice: as before
    assert report.warnings == [f"{path}: 1 records had no id; ids were made from the file name and line, e.g. 'chats-1'; "
                               "1 of them were given a '~N' suffix because the file already used the id"]

    # a given id equal to one kiku made earlier: nothing is skipped, the given id is kept in metadata
    path = write_lines(tmp_path / "chats.jsonl", [row("no id"), row("given", "chats-1"), row("also no id")])
    conversations, report = load(path)
    assert [(c.id, c.messages[0].content) for c in conversations] == [("chats-1", "no id"), ("chats-1~2", "given"), ("chats-3", "also no id")]
    assert conversations[1].metadata["given_id"] == "chats-1" and not report.skipped
    assert report.warnings[0].startswith(f"{path}:2: id 'chats-1' had already been made up for the record on line 1, which had no id; "
                                         "this record was loaded as 'chats-1~2'")


def test_a_data_folder_reads_gzipped_files_and_names_the_files_it_did_not_read(tmp_path):
    import gzip

    folder = tmp_path / "data"
    folder.mkdir()
    write_lines(folder / "part-0.jsonl", REAL[:3])
    (folder / "part-1.jsonl.gz").write_bytes(gzip.compress(("\n".join([REAL[3], REAL[4][:80], REAL[5]]) + "\n").encode("utf-8")))
    (folder / "README.md").write_text("# the data\n")
    (folder / ".DS_Store").write_bytes(b"\0")
    conversations, report = load(folder)
    assert report.format == "hf" and [c.id for c in conversations] == [REAL_IDS[i] for i in (0, 1, 2, 3, 5)]
    assert [(s.source, s.line, s.reason.split(":")[0]) for s in report.skipped] == [(str(folder / "part-1.jsonl.gz"), 2, "malformed JSON")]
    assert report.warnings == [f"{folder}: 1 files that are not data files were not read (README.md)"]
