"""The engine seam (kiku.engine): chunked describe and embed, parts, resume, duplicates, engine choice.

Real components throughout: the committed Kura checkpoint slice and the bundled W&B queries, the
real MiniLM embedder, real `kiku run` subprocesses killed with SIGKILL.
"""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_helpers import kiku, kiku_command, kiku_env
from conftest import write_jsonl
from kiku.config import RunConfig
from kiku.describe import DescribeChunk, FacetRegistry, OfflineDescriber, summary_rows
from kiku.embed import CHARS_PER_TOKEN_CAP, EmbedChunk, MiniLMEmbedder, embed_texts, text_hash, truncation_flags
from kiku.engine import Chunk, ChunkFunction, LocalEngine, chunk_key, make_engine, map_chunks
from kiku.errors import KikuError
from kiku.pipeline import Progress, embedding_text, stage_describe, stage_embed, stage_load
from kiku.stages import STAGES, stage_fingerprints
from kiku.store import RunStore, iter_conversations, with_facet_types

DATA = Path(__file__).parent / "data"


def loaded_store(path: Path, source: Path) -> RunStore:
    store = RunStore(path)
    store.manifest.setdefault("input", {})
    stage_load(store, source, RunConfig(), Progress())
    return store


def late_facet_describer(store: RunStore, quiet: int) -> OfflineDescriber:
    """The offline describer plus a facet that is null for the first ``quiet`` conversations (so a
    whole chunk has it as an all-null column) and a number after, and one present only late."""
    silent = {c.id for batch in iter_conversations(store) for c in batch[:quiet]} if quiet else set()

    def late_number(conversation: Any) -> Any:
        return None if conversation.id in silent else len(conversation.first_user_message)

    def late_list(conversation: Any) -> Any:
        return None if conversation.id in silent else [conversation.first_user_message[:3]]

    return OfflineDescriber(FacetRegistry({"late_number": late_number, "late_list": late_list}))


def one_shot_facets(store: RunStore, describer: OfflineDescriber) -> pa.Table:
    """facets.parquet as the one-shot stage wrote it before chunking (every batch table in memory)."""
    tables = [pa.Table.from_pylist(summary_rows(describer.describe(batch))) for batch in iter_conversations(store, 512)]
    return with_facet_types(pa.concat_tables(tables, promote_options="permissive"))


def one_shot_embeddings(store: RunStore, embedder: MiniLMEmbedder, max_tokens: int = 48) -> pa.Table:
    """embeddings.parquet as the one-shot stage computed it: every text in one list."""
    limit = max_tokens * CHARS_PER_TOKEN_CAP
    summaries = store.read_table("facets", columns=["summary"]).column("summary").to_pylist()
    conversations = [c for batch in iter_conversations(store) for c in batch]
    full = [embedding_text(c, s) for c, s in zip(conversations, summaries)]
    texts = [t[:limit] for t in full]
    vectors, hashes = embed_texts(texts, embedder)
    flags = [len(f) > limit or t for f, t in zip(full, truncation_flags(embedder, texts))]
    return pa.table({"conversation_id": [c.id for c in conversations], "text_hash": hashes, "truncated": flags,
                     "embedding": [list(v) for v in vectors]})


# --- chunked output equals the one-shot output ------------------------------------------------


def test_chunked_describe_equals_one_shot_with_null_columns_across_chunks(tmp_path: Path) -> None:
    store = loaded_store(tmp_path / "run", DATA / "kura-checkpoint")
    describer = late_facet_describer(store, quiet=5)
    expected = one_shot_facets(store, describer)
    details = stage_describe(store, describer, Progress(), chunk_rows=4)
    got = store.read_table("facets")
    assert details["chunks"] == 7 and details["chunks_computed"] == 7 and details["rows"] == 28
    assert got.schema == expected.schema
    assert got.equals(expected)
    # the imported Kura facets are missing for some conversations, and late_number is null in chunk 0
    assert got.schema.field("facet_late_number").type == pa.int64()
    assert got.column("facet_late_number").to_pylist()[:5] == [None] * 5
    assert not store.parts_dir("facets").exists()


def test_chunked_embed_equals_one_shot_and_chunk_rows_never_changes_it(tmp_path: Path, small_input: Path) -> None:
    store = loaded_store(tmp_path / "run", small_input)
    stage_describe(store, OfflineDescriber(), Progress(), chunk_rows=64)
    embedder = MiniLMEmbedder(batch_size=32, max_tokens=48)
    expected = one_shot_embeddings(store, embedder)
    outputs = []
    for rows in (13, 200, 10_000):
        details = stage_embed(store, embedder, RunConfig(chunk_rows=rows), Progress())
        assert details["reused_from_cache"] == 0  # no manifest record: no cache
        outputs.append(store.read_table("embeddings"))
    assert outputs[0].equals(outputs[1]) and outputs[1].equals(outputs[2])
    got = outputs[0]
    assert got.column("conversation_id").to_pylist() == expected.column("conversation_id").to_pylist()
    assert got.column("text_hash").to_pylist() == expected.column("text_hash").to_pylist()
    assert got.column("truncated").to_pylist() == expected.column("truncated").to_pylist()
    vectors = np.asarray(got.column("embedding").to_pylist(), dtype=np.float32)
    assert np.array_equal(vectors, np.asarray(expected.column("embedding").to_pylist(), dtype=np.float32))
    assert got.schema.field("embedding").type == pa.list_(pa.float32(), 384)


def test_texts_read_from_the_stored_json_are_the_embedding_texts(tmp_path: Path) -> None:
    from kiku.pipeline import _embed_inputs

    store = loaded_store(tmp_path / "run", DATA / "chatgpt-export.json")
    stage_describe(store, OfflineDescriber(), Progress(), chunk_rows=3)
    conversations = [c for batch in iter_conversations(store) for c in batch]
    expected = [embedding_text(c)[:20] for c in conversations]
    got = [(i, t) for ids, texts, _ in _embed_inputs(store, 3, 20) for i, t in zip(ids, texts)]
    assert got == list(zip((c.id for c in conversations), expected))
    assert any(len(c.messages) > 2 for c in conversations)


# --- each distinct text once per run ----------------------------------------------------------


class CountingEmbedder(MiniLMEmbedder):
    """The real MiniLM embedder, remembering every text it ran the model on."""

    def __init__(self, batch_size: int = 32, max_tokens: int = 48) -> None:
        super().__init__(batch_size=batch_size, max_tokens=max_tokens)
        self.embedded: list[str] = []

    def embed_with_info(self, texts: Any, progress: Any = None) -> tuple[np.ndarray, list[bool]]:
        self.embedded.extend(texts)
        return super().embed_with_info(texts, progress)


def test_duplicate_texts_are_embedded_once_across_chunks_and_reused_from_the_cache(
        tmp_path: Path, example_rows: list[dict]) -> None:
    distinct = example_rows[:40]
    rows = [dict(distinct[i % 40], id=f"copy-{i}") for i in range(100)]
    store = loaded_store(tmp_path / "run", write_jsonl(tmp_path / "dups.jsonl", rows))
    stage_describe(store, OfflineDescriber(), Progress(), chunk_rows=7)
    embedder = CountingEmbedder()
    details = stage_embed(store, embedder, RunConfig(chunk_rows=7), Progress())
    texts = len({text_hash(t) for t in store.read_table("embeddings").column("text_hash").to_pylist()})
    assert len(embedder.embedded) == len(set(embedder.embedded)) == texts == details["embedded"]
    assert details["duplicates"] == 100 - texts and details["reused_from_cache"] == 0
    assert details["chunks"] == 15
    table = store.read_table("embeddings")
    vectors = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
    by_hash: dict[str, np.ndarray] = {}
    for h, v in zip(table.column("text_hash").to_pylist(), vectors):
        assert np.array_equal(by_hash.setdefault(h, v), v)

    # the same embedder again (its record in the manifest): every vector comes from the cache
    store.manifest["stages"]["embed"] = {"embedder": details["embedder"]}
    again = CountingEmbedder()
    second = stage_embed(store, again, RunConfig(chunk_rows=7), Progress())
    assert again.embedded == [] and second["embedded"] == 0
    assert second["reused_from_cache"] == 100 and second["duplicates"] == 0
    assert store.read_table("embeddings").equals(table)


# --- parts: damaged ones are done again, others reused ------------------------------------------


class FailingDescriber(OfflineDescriber):
    """The offline describer, failing on its ``fail_at``-th call (a crash mid-stage)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__(FacetRegistry())
        self.fail_at = fail_at
        self.count = 0

    def fingerprint(self) -> str:
        return OfflineDescriber(FacetRegistry()).fingerprint()  # the same output as the plain one

    def describe(self, conversations: Any) -> Any:
        self.count += 1
        if self.count == self.fail_at:
            raise KikuError("describer crashed")
        return super().describe(conversations)


def test_a_truncated_part_is_done_again_and_whole_parts_are_reused(tmp_path: Path) -> None:
    store = loaded_store(tmp_path / "run", DATA / "kura-checkpoint")
    with pytest.raises(KikuError, match="describer crashed"):
        stage_describe(store, FailingDescriber(fail_at=4), Progress(), chunk_rows=5)
    assert store.finished_parts("facets") == [0, 1, 2]
    part = store.part_path("facets", 0)
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    assert not store.part_is_whole("facets", 0, json.loads(part.with_suffix(".json").read_text())["key"])

    plain = OfflineDescriber(FacetRegistry())
    details = stage_describe(store, plain, Progress(), chunk_rows=5)
    assert (details["chunks"], details["chunks_reused"], details["chunks_computed"]) == (6, 2, 4)
    assert store.read_table("facets").equals(one_shot_facets(store, plain))


def test_parts_made_from_other_settings_are_not_reused(tmp_path: Path) -> None:
    store = loaded_store(tmp_path / "run", DATA / "kura-checkpoint")
    with pytest.raises(KikuError):
        stage_describe(store, FailingDescriber(fail_at=3), Progress(), chunk_rows=5)
    other = late_facet_describer(store, quiet=0)  # another facet set: another key for every chunk
    details = stage_describe(store, other, Progress(), chunk_rows=5)
    assert details["chunks_reused"] == 0 and details["chunks_computed"] == 6
    assert store.read_table("facets").equals(one_shot_facets(store, other))


# --- the engine contract ------------------------------------------------------------------------


class ReversedEngine:
    """An engine that finishes chunks in the opposite order (as a cluster may) and reports per chunk."""

    name = "reversed"

    def run(self, fn: ChunkFunction, chunks: Iterable[Chunk], progress: Callable[[int], None]
            ) -> Iterator[tuple[int, pa.Table]]:
        shipped = [pickle.loads(pickle.dumps((chunk, fn))) for chunk in chunks]  # as a worker gets them
        for chunk, worker_fn in reversed(shipped):
            output = worker_fn(chunk.table)
            progress(chunk.work)
            yield chunk.index, output

    def close(self) -> None:
        return None


def test_an_engine_finishing_out_of_order_on_pickled_functions_gives_the_same_tables(
        tmp_path: Path, small_input: Path) -> None:
    local = loaded_store(tmp_path / "local", small_input)
    other = loaded_store(tmp_path / "other", small_input)
    embedder = MiniLMEmbedder()
    embedder.embed(["load the model first: a loaded embedder must pickle too"])
    for store, engine in ((local, LocalEngine()), (other, ReversedEngine())):
        stage_describe(store, OfflineDescriber(), Progress(), engine=engine, chunk_rows=30)
        details = stage_embed(store, embedder, RunConfig(chunk_rows=30), Progress(), engine=engine)
        assert details["engine"] == engine.name and details["chunks"] == 7
    for table in ("facets", "embeddings"):
        assert local.read_table(table).equals(other.read_table(table))
        assert local.table_path(table).read_bytes() == other.table_path(table).read_bytes()


def test_map_chunks_refuses_an_engine_that_drops_chunks(tmp_path: Path) -> None:
    class Lossy(ReversedEngine):
        def run(self, fn: ChunkFunction, chunks: Iterable[Chunk], progress: Callable[[int], None]
                ) -> Iterator[tuple[int, pa.Table]]:
            first = next(iter(chunks))
            yield first.index, fn(first.table)

    fn = DescribeChunk(OfflineDescriber())
    store = loaded_store(tmp_path / "run", DATA / "kura-checkpoint")
    chunks = (Chunk(i, chunk_key(fn, t), t, t.num_rows) for i, t in enumerate(store.iter_chunks("conversations", 10)))
    with pytest.raises(KikuError, match="returned 1 parts for 3 chunks"):
        map_chunks(store, Lossy(), "facets", fn, chunks)


def test_chunk_functions_pickle_and_give_the_same_output(tmp_path: Path) -> None:
    store = loaded_store(tmp_path / "run", DATA / "kura-checkpoint")
    conversations = next(store.iter_chunks("conversations", 10))
    describe = DescribeChunk(OfflineDescriber())
    assert pickle.loads(pickle.dumps(describe))(conversations).equals(describe(conversations))
    texts = ["refund please", "refund please", "where is my card"]
    chunk = pa.table({"conversation_id": ["a", "b", "c"], "text": texts, "text_hash": [text_hash(t) for t in texts],
                      "clipped": [False] * 3, "embed": [True, False, True]})
    embed = EmbedChunk(MiniLMEmbedder())
    local = embed(chunk)
    assert embed.embedder._session is not None  # loaded: pickling drops the session, the copy loads its own
    copy = pickle.loads(pickle.dumps(embed))
    assert copy.embedder._session is None and copy(chunk).equals(local)
    assert chunk_key(copy, chunk) == chunk_key(embed, chunk)


def test_engine_settings_are_in_no_stage_fingerprint() -> None:
    base = stage_fingerprints(RunConfig(), {}, "input")
    other = stage_fingerprints(RunConfig(chunk_rows=7, engine="ray", engine_address="ray://head:10001"), {}, "input")
    assert all(base[s] == other[s] for s in STAGES)


# --- the real command line: a run killed mid-embed resumes there ----------------------------------


def part_records(run: Path) -> list[Path]:
    return sorted((run / ".parts" / "embeddings").glob("part-*.json"))


def test_a_run_killed_during_embed_reembeds_only_the_missing_chunks(example_rows: list[dict], tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "queries.jsonl", example_rows)
    whole = tmp_path / "whole"
    done = kiku("run", source, "--out", whole, "--clusters", "8")
    assert done.returncode == 0, done.stderr
    distinct = json.loads((whole / "manifest.json").read_text())["stages"]["embed"]["embedded"]

    run = tmp_path / "killed"
    process = subprocess.Popen(kiku_command("run", source, "--out", run, "--clusters", "8", "--chunk-rows", "40"),
                               env=kiku_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time

        deadline = time.monotonic() + 300
        while len(part_records(run)) < 3:
            assert process.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline, "no embed parts appeared"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    kept = part_records(run)
    assert 3 <= len(kept) < 14
    kept_work = sum(pq.read_table(p.with_suffix(".parquet")).column("embedding").combine_chunks().is_valid()
                    .to_numpy(zero_copy_only=False).sum() for p in kept)

    again = kiku("run", source, "--out", run, "--clusters", "8", "--chunk-rows", "40")
    assert again.returncode == 0, again.stderr
    embed = json.loads((run / "manifest.json").read_text())["stages"]["embed"]
    assert (embed["chunks"], embed["chunks_reused"], embed["chunks_computed"]) == (14, len(kept), 14 - len(kept))
    assert embed["embedded"] == distinct - kept_work
    assert f"embed: {len(kept)} of 14 chunks were finished by an earlier run and reused" in again.stderr
    assert not (run / ".parts").exists()
    assert pq.read_table(run / "embeddings.parquet").equals(pq.read_table(whole / "embeddings.parquet"))
    assert pq.read_table(run / "clusters.parquet").equals(pq.read_table(whole / "clusters.parquet"))


# --- choosing the engine ---------------------------------------------------------------------------


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_address_without_the_ray_engine_is_refused(small_input: Path, tmp_path: Path) -> None:
    line = one_error(kiku("run", small_input, "--out", tmp_path / "run", "--address", "ray://head:10001"))
    assert "--address names a Ray cluster; add --engine ray" in line
    assert not (tmp_path / "run").exists()


def test_the_ray_engine_without_ray_is_a_one_line_install_hint(small_input: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "ray").mkdir(parents=True)
    (shadow / "ray" / "__init__.py").write_text("raise ImportError('ray is not installed here')\n")
    result = kiku("run", small_input, "--out", tmp_path / "run", "--engine", "ray", env=kiku_env(extra_path=shadow))
    assert "pip install 'kiku[ray]'" in one_error(result)
    assert not (tmp_path / "run").exists()


def test_the_local_engine_is_the_default() -> None:
    assert make_engine(RunConfig()).name == "local"


# --- the LLM describer on a worker copy (what a Ray actor holds) ---------------------------------

LLM_FACETS = {"summary": "s", "request": "r", "task": "The task is to answer", "languages": ["english"], "concern": 1,
              "frustration": 1, "assistant_errors": []}


def facets_unless_zebra(messages: list[dict[str, str]], schema: dict[str, Any], n: int) -> Any:
    """A scripted model (module level, so a pickled copy finds it): fails on the query about zebras."""
    from llm_fixtures import retryable

    text = messages[-1]["content"]
    return retryable() if "zebra" in text else {**LLM_FACETS, "summary": "about " + text.split("<")[-2][-30:]}


def facets_always(messages: list[dict[str, str]], schema: dict[str, Any], n: int) -> Any:
    text = messages[-1]["content"]
    return {**LLM_FACETS, "summary": "about " + text.split("<")[-2][-30:]}


def llm_describer(script: Callable[..., Any], cache: Any) -> Any:
    from kiku.llm import LLMClient, LLMDescriber
    from llm_fixtures import ScriptedBackend

    client = LLMClient(backend=ScriptedBackend(script), cache=cache, max_attempts=1, backoff_base_s=0.001)
    return LLMDescriber(client)


def test_the_llm_describer_on_worker_copies_reports_every_call_failure_and_answer(tmp_path: Path) -> None:
    from kiku.llm import ResponseCache

    queries = [f"question number {i} about {'zebras' if i == 9 else 'sweeps'}" for i in range(12)]
    source = write_jsonl(tmp_path / "q.jsonl", [{"id": f"q{i}", "messages": [{"role": "user", "content": q}]}
                                                for i, q in enumerate(queries)])
    store = loaded_store(tmp_path / "run", source)
    driver_cache = ResponseCache(":memory:")  # a worker's copy opens its own: only what it reports reaches this one
    describer = llm_describer(facets_unless_zebra, driver_cache)
    details = stage_describe(store, describer, Progress(), engine=ReversedEngine(), chunk_rows=4)

    # every call ran on a worker copy; the driver's client counts them all from the reports
    assert describer.client.backend.calls == 0
    usage = describer.client.usage
    assert usage.by_stage["describe"].calls == usage.calls == 12 and usage.prompt_tokens > 0
    assert [f.item_id for f in usage.failures] == ["q9"]
    assert len(driver_cache) == 11  # every good answer is in the driver's cache
    report = describer.stage_report()
    assert report.incomplete and report.details == {"failed_items": 1}
    facets = store.read_table("facets").to_pylist()
    assert [row["summary"] is None for row in facets] == [i == 9 for i in range(12)]  # offline facets kept for q9
    assert facets[9]["request"] == queries[9]
    # the chunk with the failure is kept as an incomplete part; the others as whole parts
    assert details["chunks_incomplete"] == 1
    assert [store.part_is_whole("facets", i, chunk_key(DescribeChunk(describer), t))
            for i, t in enumerate(store.iter_chunks("conversations", 4))] == [True, True, False]

    # the retry (the model works now) redoes that chunk only, and the table equals a local run's
    fixed = llm_describer(facets_always, driver_cache)
    again = stage_describe(store, fixed, Progress(), engine=ReversedEngine(), chunk_rows=4)
    assert (again["chunks_reused"], again["chunks_computed"]) == (2, 1) and "chunks_incomplete" not in again
    assert not fixed.stage_report().incomplete and not store.parts_dir("facets").exists()
    local_store = loaded_store(tmp_path / "local", source)
    stage_describe(local_store, llm_describer(facets_always, ResponseCache(":memory:")), Progress(), chunk_rows=4)
    assert store.read_table("facets").equals(local_store.read_table("facets"))


def test_a_local_run_keeps_every_batchs_failures_in_the_stage_report(tmp_path: Path) -> None:
    from kiku.describe import DESCRIBE_BATCH
    from kiku.llm import ResponseCache

    # more rows than one describe batch, the failing query in the first batch
    rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": f"about {'zebras' if i == 3 else 'sweeps'} {i}"}]}
            for i in range(DESCRIBE_BATCH + 5)]
    store = loaded_store(tmp_path / "run", write_jsonl(tmp_path / "q.jsonl", rows))
    describer = llm_describer(facets_unless_zebra, ResponseCache(":memory:"))
    stage_describe(store, describer, Progress())
    assert describer.stage_report().details == {"failed_items": 1}
    assert describer.stage_report().details == {}  # reported once, for the stage that had it


# --- the load stage on an engine (kiku.loaders.parallel) -----------------------------------------


def awkward_jsonl(path: Path) -> Path:
    """A JSON Lines file with every case the loader judges: plain records among repeated, missing
    and colliding ids, bad JSON, a blank line, a byte-order mark, invalid UTF-8, NaN, a non-object,
    an empty conversation, a repaired surrogate, a bad timestamp, and 25 warnings of one kind."""
    def record(rid: Any, text: str, **extra: Any) -> bytes:
        body = {"messages": [{"role": "user", "content": text}], **extra}
        if rid is not None:
            body["id"] = rid
        return json.dumps(body).encode()

    lines = [b"\xef\xbb\xbf" + record("a", "first, after a byte-order mark"), record("b", "plain"),
             record("a", "repeats a"), b"{not json", b"", record(None, "no id: made up"),
             record("awkward-6~2", "takes the suffix the next one would want"), record(None, "no id either"),
             record("c", "caf\xe9 bytes".encode("latin-1").decode("latin-1")).replace(b"caf\\u00e9", b"caf\xe9"),
             b'{"id": "d", "messages": [{"role": "user", "content": "nan"}], "metadata": {"x": NaN}}',
             b"[1, 2]", record("e", "   "), record("f", "lone \\ud800 surrogate").replace(b"\\\\ud800", b"\\ud800"),
             record("g", "bad time", created_at="not a time"), record("awkward-6", "takes a made-up id")]
    lines += [record(f"w{i}", f"nan {i}", metadata={"x": 1}).replace(b'"x": 1', b'"x": Infinity') for i in range(25)]
    lines += [record(f"p{i}", f"plain question {i}") for i in range(20)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def load_both_ways(source: Path, tmp_path: Path, chunk_rows: int) -> tuple[RunStore, RunStore, dict]:
    """The load stage of ``source`` here and on a pickling engine; asserts the two are the same."""
    local = RunStore(tmp_path / "local")
    local.manifest.setdefault("input", {})
    stage_load(local, source, RunConfig(), Progress())
    other = RunStore(tmp_path / "engine")
    other.manifest.setdefault("input", {})
    details = stage_load(other, source, RunConfig(chunk_rows=chunk_rows), Progress(), engine=ReversedEngine())
    assert details["engine"] == "reversed"
    assert other.read_table("conversations").equals(local.read_table("conversations"))
    for key in ("skipped", "warnings"):
        assert other.manifest[key] == local.manifest[key], key
    return local, other, details


def test_a_jsonl_load_parsed_on_an_engine_equals_the_local_load(tmp_path: Path) -> None:
    local, other, details = load_both_ways(awkward_jsonl(tmp_path / "awkward.jsonl"), tmp_path, chunk_rows=4)
    assert details["chunks"] == 15
    reasons = " ".join(s["reason"] for s in local.manifest["skipped"])
    assert "duplicate id 'a'" in reasons and "malformed JSON" in reasons and "empty conversation" in reasons
    assert any("more warnings of the kind" in w for w in local.manifest["warnings"])  # the cap crossed chunks
    assert local.num_rows("conversations") > 40 and not other.parts_dir("parsed").exists()


def test_inputs_that_are_not_json_lines_load_on_the_driver_with_an_engine(tmp_path: Path) -> None:
    source = tmp_path / "q.csv"
    source.write_text("id,text\n1,how do I log a table\n2,sweep crashes\n")
    store = RunStore(tmp_path / "run")
    store.manifest.setdefault("input", {})
    assert stage_load(store, source, RunConfig(), Progress(), engine=ReversedEngine()) == {"rows": 2}


def test_a_parquet_load_parsed_on_an_engine_equals_the_local_load(tmp_path: Path) -> None:
    ids = ["a", "b", "a", None, "c", "d", None, "e", "x-4~2", *[f"p{i}" for i in range(15)]]
    texts = ["first", "plain", "repeats a", "no id", "   ", "has a user", "no id either", "bad time", "suffix",
             *[f"plain question {i}" for i in range(15)]]
    times = [None] * 7 + ["not a time"] + [None] * 16
    source = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ids, "text": texts, "created_at": times}), source, row_group_size=7)
    local, other, details = load_both_ways(source, tmp_path, chunk_rows=5)
    assert details["chunks"] >= 5  # batches end at row groups too
    reasons = " ".join(s["reason"] for s in local.manifest["skipped"])
    assert "duplicate id 'a'" in reasons and "empty conversation" in reasons
    assert local.num_rows("conversations") == 22 and not other.parts_dir("parsed").exists()  # 24 - a repeat - an empty
