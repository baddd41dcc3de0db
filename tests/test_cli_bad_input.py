"""Bad input through the real `kiku` CLI: the run finishes, keeps what it can and says what it did.

One gzipped JSON Lines file made from the real W&B queries (tests/data/wandb-queries.json) holds
a record nested 10,000 deep, a lone surrogate, NaN/Infinity and a given id equal to a made-up
one; a ';'-separated copy of the banking77 slice checks delimiter detection.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from loaders_helpers import DATA
from test_cli import kiku

QUERIES = json.loads((DATA / "wandb-queries.json").read_text(encoding="utf-8"))


def strict_json(text: str) -> object:
    """json.loads that refuses NaN/Infinity, as browsers and DuckDB do."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("bad-input")
    lines = [json.dumps(q) for q in QUERIES]
    lines[2] = lines[2].replace(f'"query_weight": {json.dumps(QUERIES[2]["query_weight"])}', '"query_weight": NaN, "score": Infinity')
    lines[4] = json.dumps(dict(QUERIES[4], query="How do I log \ud800 images?"))
    lines[6] = json.dumps(dict(QUERIES[6], extra="@")).replace('"@"', "[" * 10_000 + "]" * 10_000)
    lines.append(json.dumps({"query": "Can I resume a crashed run?"}))  # line 26: no id, made up as chats-26
    lines.append(json.dumps({"query_id": "chats-26", "query": "How do I delete a project?"}))  # line 27: given id equal to it
    assert "NaN" in lines[2] and "\\ud800" in lines[4]
    path = folder / "chats.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
    out = folder / "run"
    result = kiku("run", path, "--out", out, "--clusters", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    return path, out, " ".join((result.stdout + result.stderr).split())


def test_run_skips_the_too_deep_record_and_lists_it_at_the_end(bad_run):
    path, out, said = bad_run
    assert f"skipped 1 input record(s): {path}:7: too deeply nested" in said
    conversations = pq.read_table(out / "conversations.parquet").to_pylist()
    ids = [c["conversation_id"] for c in conversations]
    assert len(ids) == 26 and QUERIES[6]["query_id"] not in ids
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(s["line"], s["reason"].split(":")[0]) for s in manifest["skipped"]] == [(7, "too deeply nested")]


def test_lone_surrogate_is_replaced_and_warned(bad_run):
    path, out, said = bad_run
    assert f"warning: {path}:5: 1 lone surrogate(s)" in said
    conversations = {c["conversation_id"]: c for c in pq.read_table(out / "conversations.parquet").to_pylist()}
    assert json.loads(conversations[QUERIES[4]["query_id"]]["messages"])[0]["content"] == "How do I log \ufffd images?"


def test_nan_and_infinity_are_stored_as_valid_json_and_the_explorer_serves_them(bad_run, tmp_path):
    from kiku.web import running_server

    path, out, said = bad_run
    assert f"warning: {path}:3: 2 NaN/Infinity value(s) (not valid JSON) were stored as null" in said
    conversations = pq.read_table(out / "conversations.parquet").to_pylist()
    metadata = {c["conversation_id"]: strict_json(c["metadata"]) for c in conversations}  # every row is valid JSON
    assert metadata[QUERIES[2]["query_id"]]["query_weight"] is None and metadata[QUERIES[2]["query_id"]]["score"] is None
    with running_server(out) as url:
        response = httpx.get(url + "api/conversations/" + QUERIES[2]["query_id"])
    assert response.status_code == 200 and response.json()["metadata"]["score"] is None
    html = tmp_path / "explorer.html"
    exported = kiku("export", out, "html", html)
    assert exported.returncode == 0 and not exported.stderr.strip(), exported.stderr
    import base64
    import gzip
    import re

    block = re.search(r'id="kiku-bundle">([^<]*)<', html.read_text(encoding="utf-8")).group(1)  # the export's bundle is gzip+base64
    assert QUERIES[2]["query_id"] in json.loads(gzip.decompress(base64.b64decode(block)))["ids"]


def test_gzip_is_read_and_made_up_ids_do_not_take_given_ones(bad_run):
    path, out, said = bad_run
    conversations = {c["conversation_id"]: c for c in pq.read_table(out / "conversations.parquet").to_pylist()}
    assert json.loads(conversations["chats-26"]["messages"])[0]["content"] == "Can I resume a crashed run?"
    given = conversations["chats-26~2"]
    assert json.loads(given["messages"])[0]["content"] == "How do I delete a project?"
    assert json.loads(given["metadata"])["given_id"] == "chats-26"
    assert f"{path}:27: id 'chats-26' had already been made up for the record on line 26" in said


def test_semicolon_csv_runs_and_says_which_delimiter_it_used(tmp_path):
    with open(DATA / "banking77-sample.csv", newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    path = tmp_path / "banking.csv"
    with open(path, "w", newline="", encoding="utf-8") as out:
        csv.writer(out, delimiter=";").writerows(rows)
    result = kiku("run", path, "--out", tmp_path / "run", "--clusters", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    assert f"{path}: columns are separated by ';' (judged from the header row)" in said
    assert f"conversations: {len(rows) - 1}" in said
    categories = {json.loads(c["metadata"])["category"] for c in pq.read_table(tmp_path / "run" / "conversations.parquet").to_pylist()}
    assert categories == {r[1] for r in rows[1:]}
