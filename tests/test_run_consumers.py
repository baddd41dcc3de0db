"""One run written by the pipeline, read through every consumer of the run folder.

The run store (``kiku.store``) owns the file names and schemas; this test checks that what the
pipeline writes is what the store declares, and that the store's readers, the explorer's data
layer and HTTP API, classify's bootstrap and run reader, and ``kiku sql`` all read it.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

import kiku
from cli_helpers import kiku as run_kiku
from conftest import EXAMPLE
from kiku.classify.bootstrap import taxonomy_from_run
from kiku.classify.data import read_items
from kiku.store import (
    ASSIGNMENT_SCHEMA,
    CLUSTER_SCHEMA,
    CONVERSATION_SCHEMA,
    EXPLORER_TABLES,
    FACET_BASE_FIELDS,
    PROJECTION_SCHEMA,
    Manifest,
    RunStore,
    embedding_schema,
    missing_tables,
    read_manifest,
    read_requests,
)
from kiku.web import RunData, running_server

ROWS = 100


@pytest.fixture(scope="module")
def input_rows() -> list[dict]:
    lines = [line for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()][:ROWS]
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, input_rows: list[dict]) -> Path:
    source = tmp_path_factory.mktemp("input") / "wandb-100.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in input_rows), encoding="utf-8")
    return kiku.analyze(source, tmp_path_factory.mktemp("runs") / "wandb-100", seed=0).path


def test_the_pipeline_writes_the_schemas_the_store_declares(run_dir: Path) -> None:
    store = RunStore(run_dir)
    store.check_readable()
    assert missing_tables(run_dir) == []
    assert store.read_table("conversations").schema.equals(CONVERSATION_SCHEMA)
    assert store.read_table("clusters").schema.equals(CLUSTER_SCHEMA)
    assert store.read_table("base_clusters").schema.equals(CLUSTER_SCHEMA)
    assert store.read_table("assignments").schema.equals(ASSIGNMENT_SCHEMA)
    assert store.read_table("projection").schema.equals(PROJECTION_SCHEMA)
    assert store.read_table("embeddings").schema.equals(embedding_schema(384))
    facets = store.read_table("facets").schema
    assert [(f.name, f.type) for f in facets][: len(FACET_BASE_FIELDS)] == list(FACET_BASE_FIELDS)
    assert read_manifest(run_dir)["counts"]["conversations"] == ROWS
    manifest = Manifest.read(run_dir)
    assert manifest.input.format == "jsonl" and manifest.counts["conversations"] == ROWS
    assert all(record.fingerprint and record.files for name, record in manifest.stages.items()), manifest.stages
    assert manifest.stages["load"].files["conversations.parquet"].sha256


def test_source_line_is_stored_for_every_conversation(run_dir: Path, input_rows: list[dict]) -> None:
    table = pq.read_table(run_dir / "conversations.parquet", columns=["conversation_id", "source", "source_line"])
    assert table.column("source_line").to_pylist() == list(range(1, ROWS + 1))
    assert set(table.column("source").to_pylist()) == {"wandb-100.jsonl"}
    assert table.column("conversation_id").to_pylist() == [str(r["id"]) for r in input_rows]


def test_the_store_reads_requests(run_dir: Path, input_rows: list[dict]) -> None:
    requests = read_requests(run_dir)
    first = input_rows[0]
    assert requests[str(first["id"])] == first["messages"][0]["content"].strip()


def test_the_explorer_data_layer_and_api_read_the_run(run_dir: Path, input_rows: list[dict]) -> None:
    data = RunData(run_dir)
    assert data.run_info()["conversations"] == ROWS
    first = data.conversation(str(input_rows[0]["id"]))
    assert first is not None and first["source"] == "wandb-100.jsonl" and first["source_line"] == 1
    assert len(first["topics"]) >= 1
    with running_server(run_dir) as url:
        run = httpx.get(url + "api/run", timeout=30).json()
        assert run["conversations"] == ROWS
        last = httpx.get(url + f"api/conversations/{input_rows[-1]['id']}", timeout=30).json()
        assert last["source_line"] == ROWS
    assert set(EXPLORER_TABLES) <= {p.stem for p in run_dir.glob("*.parquet")}


def test_classify_reads_the_run(run_dir: Path) -> None:
    taxonomy = taxonomy_from_run(run_dir, top_n=4)
    assert 2 <= len([label for label in taxonomy.labels if label.name != "other"]) <= 4
    items = read_items(run_dir)
    assert len(items) == ROWS and all(item.text for item in items)
    assert all(item.metadata["request"] for item in items)


def test_kiku_sql_reads_the_run(run_dir: Path) -> None:
    result = run_kiku("sql", run_dir, "select count(*) as n, max(source_line) as last from conversations")
    assert result.returncode == 0, result.stderr
    assert "100" in result.stdout
