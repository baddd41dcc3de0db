"""Compose the stages into a resumable run: load → describe → embed → project → cluster → name → hierarchy.

Each stage is a function ``stage_x(store, ...)`` that reads the previous stages' Parquet
files from the run store and writes its own. ``analyze()`` runs them in order and skips a
stage whose fingerprint (its config plus the fingerprints of what it reads) matches the
manifest, so a killed run resumes where it stopped and a changed setting re-runs only the
stages it affects.

Example:
    >>> run = analyze("examples/wandb-queries.jsonl", "runs/wandb")   # doctest: +SKIP
    >>> run.clusters().query("level == 0").shape                        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from kiku.config import RunConfig, check_settings
from kiku.describe import OfflineDescriber
from kiku.engine import Chunk, Engine, LocalEngine, MapReport, chunk_key, make_engine, map_chunks
from kiku.errors import InputError, KikuError
from kiku.naming import unique_sibling_names
from kiku.protocols import Clusterer, Corpus, Describer, Embedder, HierarchyBuilder, TopicDraft, TopicNamer
from kiku.records import Cluster, Conversation, noise_cluster
from kiku.stages import PIPELINE, STAGES, ReportsStage, StageContext, stage_fingerprints
from kiku.store import (
    ASSIGNMENT_SCHEMA,
    CLUSTER_SCHEMA,
    CONVERSATION_SCHEMA,
    PROJECTION_SCHEMA,
    RunStore,
    conform,
    conversation_row,
    conversations_from_batch,
    embedding_schema,
    file_fingerprint,
    fingerprint,
    iter_conversations,
    now_iso,
    package_versions,
    unify_facet_schemas,
)
from kiku.vectors import evenly_spaced, l2_normalise, vectors_from_arrow

__all__ = [
    "STAGES", "Components", "Progress", "Run", "RunConfig", "analyze", "component_fingerprint", "component_params",
    "conversations_from_batch", "default_components", "embedding_text", "iter_conversations",
]




# --- progress -------------------------------------------------------------------------------


class Progress:
    """Receives progress events; the default ignores them. The CLI shows Rich bars."""

    def stage_started(self, stage: str, total: int | None) -> None: ...

    def advance(self, stage: str, amount: int) -> None: ...

    def stage_finished(self, stage: str, seconds: float, reused: bool) -> None: ...

    def message(self, text: str) -> None: ...


@contextmanager
def _stage(progress: Progress, stage: str, total: int | None) -> Iterator[Callable[[int], None]]:
    progress.stage_started(stage, total)
    start = time.perf_counter()
    yield lambda amount: progress.advance(stage, amount)
    progress.stage_finished(stage, time.perf_counter() - start, reused=False)


# --- helpers --------------------------------------------------------------------------------


_SCALARS = (str, int, float, bool, type(None))


def component_params(component: Any) -> dict[str, Any]:
    """A component's constructor parameters (scikit-learn's ``get_params`` convention).

    The names come from the ``__init__`` signature and the values from the attributes of the
    same name, so state an object gathers while it is used (a call counter, a lazily loaded
    model) never shows up. Scalars and lists of scalars are kept as they are; a parameter
    that is itself a component is replaced by its :func:`component_fingerprint`; a parameter
    not stored under its own name is left out.

    >>> class Clusterer:
    ...     def __init__(self, k: int = 3, seed: int = 0) -> None:
    ...         self.k, self.seed, self.calls = k, seed, 0
    >>> component_params(Clusterer(k=5))
    {'k': 5, 'seed': 0}
    """
    import inspect

    try:
        signature = inspect.signature(type(component).__init__)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return {}
    params: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if not hasattr(component, name):
            continue
        value = getattr(component, name)
        if isinstance(value, _SCALARS):
            params[name] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS) for v in value):
            params[name] = list(value)
        elif inspect.isroutine(value) or inspect.isclass(value):
            params[name] = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(type(value)))}"
        else:
            params[name] = component_fingerprint(value)
    return params


def component_fingerprint(component: Any) -> str:
    """Identify a pluggable stage component: its ``fingerprint()``, else its name and constructor
    parameters (:func:`component_params`), so using a component never changes its fingerprint.

    >>> from kiku.embed import MiniLMEmbedder
    >>> component_fingerprint(MiniLMEmbedder(max_tokens=48)) == component_fingerprint(MiniLMEmbedder(max_tokens=48))
    True
    """
    method = getattr(component, "fingerprint", None)
    if callable(method):
        return str(method())
    return fingerprint(type(component).__qualname__, getattr(component, "name", ""), component_params(component))


def embedding_text(conversation: Conversation, summary: str | None = None) -> str:
    """The text kiku embeds for a conversation: never ids or metadata.

    With an LLM summary, the summary (Clio's choice). Otherwise the user's turns, in order
    (the assistant's text only when there is no user text); the embedder truncates to its
    token limit and the run reports how many were cut.

    >>> from kiku.records import Conversation, Message
    >>> c = Conversation(id="x1", metadata={"user": "u9"}, messages=[
    ...     Message(role="user", content="How do I log images?"), Message(role="assistant", content="Use wandb.Image")])
    >>> embedding_text(c)
    'How do I log images?'
    """
    return text_to_embed(((m.role, m.content) for m in conversation.messages), summary)


def text_to_embed(turns: Iterable[tuple[str, str]], summary: str | None = None) -> str:
    """:func:`embedding_text` from a conversation's ``(role, content)`` turns (read straight
    from ``conversations.parquet`` without building Conversation records).

    >>> text_to_embed([("assistant", "Hi!"), ("user", " Refund? ")])
    'Refund?'
    """
    if summary:
        return summary.strip()
    turns = list(turns)
    user = [content.strip() for role, content in turns if role == "user" and content.strip()]
    if user:
        return "\n".join(user)
    return "\n".join(content.strip() for _, content in turns if content.strip())


# --- stages ---------------------------------------------------------------------------------


def stage_load(
    store: RunStore, input_path: Path, config: RunConfig, progress: Progress, batch_size: int = 2000,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Stream the input into ``conversations.parquet``; record skipped input in the manifest.
    Returns the stage record's details: ``{"rows": conversations loaded, ...}``.

    With an engine other than the local one, a JSON Lines or Parquet input is parsed on the
    engine in chunks of ``config.chunk_rows`` records (``kiku.loaders.parallel``: same
    conversations, skipped records and warnings as a local load); any other input loads here.
    """
    from kiku.loaders import LoadReport, load_conversations
    from kiku.loaders.parallel import engine_load_plan

    report = LoadReport()
    source = input_path.name
    plan = None
    if engine is not None and engine.name != "local":
        plan = engine_load_plan(input_path, config.format, config.mapping, report, source)
    if plan is not None and engine is not None:
        count, details = _load_on_engine(store, plan, engine, config.chunk_rows, progress)
    else:
        count, details = _load_here(store, load_conversations(input_path, format=config.format, mapping=config.mapping,
                                                               report=report), report, source, progress, batch_size), {}
    if count == 0:
        raise InputError(str(input_path), "no usable conversations", "see the skipped records above or pass --format")
    store.manifest["input"]["format"] = report.format
    store.manifest["skipped"] = [s.model_dump() for s in report.skipped]
    store.manifest["warnings"] = list(report.warnings)
    if report.imported:
        store.manifest["input"]["imported"] = dict(report.imported)
    for note in report.notes:
        progress.message(note)
    for warning in report.warnings:
        progress.message(f"warning: {warning}")
    return {"rows": count, **details}


def _load_on_engine(store: RunStore, plan: Any, engine: Engine, chunk_rows: int, progress: Progress) -> tuple[int, dict[str, Any]]:
    """The load stage with the records parsed on ``engine`` (``kiku.loaders.parallel``)."""
    fn = plan.function()
    count = 0
    with _stage(progress, "load", None) as advance, store.table_writer("conversations", CONVERSATION_SCHEMA) as writer:
        chunks = (Chunk(index, chunk_key(fn, table), table, table.num_rows)
                  for index, table in enumerate(plan.raw_chunks(chunk_rows)))
        report = map_chunks(store, engine, "parsed", fn, chunks, advance, on_reused=lambda chunk: advance(chunk.work))
        for table in plan.rows(store.read_part("parsed", index) for index in report.indexes):
            writer.write_table(table)
            count += table.num_rows
        plan.finish()
    store.remove_parts("parsed")
    _report_reuse(progress, "load", report)
    return count, {**report.details(), "chunk_rows": chunk_rows, "engine": engine.name}


def _load_here(store: RunStore, conversations: Iterable[Any], report: Any, source: str, progress: Progress,
               batch_size: int) -> int:
    """The load stage in this process: ``conversations`` (a loader's stream) into conversations.parquet."""
    rows: list[dict[str, Any]] = []
    count = 0
    with _stage(progress, "load", None) as advance, store.table_writer("conversations", CONVERSATION_SCHEMA) as writer:
        for conversation in conversations:
            rows.append(conversation_row(conversation, source, report.current_line))
            if len(rows) >= batch_size:
                writer.write_table(pa.Table.from_pylist(rows, schema=CONVERSATION_SCHEMA))
                count += len(rows)
                advance(len(rows))
                rows.clear()
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=CONVERSATION_SCHEMA))
            count += len(rows)
            advance(len(rows))
    return count


def stage_describe(store: RunStore, describer: Describer, progress: Progress, engine: Engine | None = None,
                   chunk_rows: int | None = None) -> dict[str, Any]:
    """Facets of every conversation → ``facets.parquet``, chunk by chunk (``kiku.engine``).

    Each chunk of ``chunk_rows`` conversations is described by ``engine`` into a part; the
    parts are then streamed in order into one table whose columns are unified across chunks
    (a facet that is null throughout one chunk takes its type from another). The parts are
    removed, unless a chunk is incomplete (an LLM call failed: the describer's stage report
    marks the stage for a retry), so the next run redoes those chunks only.
    """
    from kiku.describe import DescribeChunk

    engine = engine or LocalEngine()
    rows = chunk_rows or RunConfig().chunk_rows
    fn = DescribeChunk(describer)
    with _stage(progress, "describe", store.num_rows("conversations")) as advance:
        chunks = (Chunk(index, chunk_key(fn, table), table, table.num_rows)
                  for index, table in enumerate(store.iter_chunks("conversations", rows)))
        report = map_chunks(store, engine, "facets", fn, chunks, advance, on_reused=lambda chunk: advance(chunk.work))
        schema = unify_facet_schemas([store.part_schema("facets", index) for index in report.indexes])
        count = 0
        with store.table_writer("facets", schema) as writer:
            for index in report.indexes:
                part = conform(store.read_part("facets", index), schema)
                writer.write_table(part)
                count += part.num_rows
    if not report.incomplete:  # else kept: the next run redoes the incomplete chunks only
        store.remove_parts("facets")
    _report_reuse(progress, "describe", report)
    return {"rows": count, **report.details(), "chunk_rows": rows, "engine": engine.name}


def _report_reuse(progress: Progress, stage: str, report: MapReport) -> None:
    if report.reused:
        progress.message(f"{stage}: {report.reused} of {report.chunks} chunks were finished by an earlier run and reused")


def _embed_inputs(store: RunStore, chunk_rows: int, char_limit: int) -> Iterator[tuple[list[str], list[str], list[bool]]]:
    """Per chunk of conversations: ids, the texts to embed (clipped to ``char_limit``), whether clipped."""
    for conversations, facets in zip(store.iter_chunks("conversations", chunk_rows, ["conversation_id", "messages"]),
                                     store.iter_chunks("facets", chunk_rows, columns=["summary"])):
        ids = [str(i) for i in conversations.column("conversation_id").to_pylist()]
        texts: list[str] = []
        clipped: list[bool] = []
        for messages, summary in zip(conversations.column("messages").to_pylist(), facets.column("summary").to_pylist()):
            # the stored JSON read directly: several times faster than rebuilding Conversation records
            text = summary.strip() if summary else text_to_embed(
                (m["role"], m["content"]) for m in json.loads(messages or "[]"))
            texts.append(text[:char_limit])
            clipped.append(len(text) > char_limit)
        yield ids, texts, clipped


def _embedding_cache(store: RunStore, embedder_key: str) -> dict[str, np.ndarray]:
    """text hash → vector from the run's previous ``embeddings.parquet``, when the same embedder made it."""
    previous = store.manifest["stages"].get("embed", {})
    cache: dict[str, np.ndarray] = {}
    if not (store.has_table("embeddings") and previous.get("embedder") == embedder_key):
        return cache
    for batch in store.iter_batches("embeddings", columns=["text_hash", "embedding"]):
        hashes = batch.column(0).to_pylist()
        vectors = vectors_from_arrow(batch.column(1), len(hashes))
        for h, vector in zip(hashes, vectors):
            if h not in cache:
                cache[h] = vector.copy()
    return cache


def stage_embed(store: RunStore, embedder: Embedder, config: RunConfig, progress: Progress,
                engine: Engine | None = None) -> dict[str, Any]:
    """Embed each conversation's text → ``embeddings.parquet``, chunk by chunk (``kiku.engine``).

    Each distinct text is embedded once per run: a text the previous ``embeddings.parquet`` of
    the same embedder holds is reused (``reused_from_cache`` rows), a text an earlier row of this
    run has is not embedded again (``duplicates`` rows). The chunks' parts are streamed in order
    into the table, each vector filled from its text's first occurrence or the cache.
    """
    from kiku.embed import CHARS_PER_TOKEN_CAP, EmbedChunk, text_hash

    engine = engine or LocalEngine()
    char_limit = config.embed_max_tokens * CHARS_PER_TOKEN_CAP
    embedder_key = component_fingerprint(embedder)
    cache = _embedding_cache(store, embedder_key)
    # pass 1, hashes only: the bar counts the texts the model embeds (cached and repeated ones cost nothing)
    seen: set[str] = set()
    for _, texts, _ in _embed_inputs(store, config.chunk_rows, char_limit):
        seen.update(h for h in map(text_hash, texts) if h not in cache)
    pending = len(seen)
    seen.clear()
    counts = {"reused_from_cache": 0, "duplicates": 0}
    fn = EmbedChunk(embedder)

    def chunks() -> Iterator[Chunk]:
        for index, (ids, texts, clipped) in enumerate(_embed_inputs(store, config.chunk_rows, char_limit)):
            hashes = [text_hash(t) for t in texts]
            wanted = []
            for h in hashes:
                if h in cache:
                    counts["reused_from_cache"] += 1
                elif h in seen:
                    counts["duplicates"] += 1
                else:
                    seen.add(h)
                    wanted.append(True)
                    continue
                wanted.append(False)
            table = pa.table({"conversation_id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string()),
                              "text_hash": pa.array(hashes, pa.string()), "clipped": pa.array(clipped, pa.bool_()),
                              "embed": pa.array(wanted, pa.bool_())})
            yield Chunk(index, chunk_key(fn, table), table, sum(wanted))

    with _stage(progress, "embed", pending) as advance:
        report = map_chunks(store, engine, "embeddings", fn, chunks(), advance, on_reused=lambda c: advance(c.work))
    rows, truncated = _assemble_embeddings(store, report.indexes, cache, getattr(embedder, "dim", None))
    store.remove_parts("embeddings")
    _report_reuse(progress, "embed", report)
    if truncated:
        progress.message(
            f"{truncated} of {rows} conversations were longer than {config.embed_max_tokens} word pieces "
            "and were truncated for embedding (--embed-max-tokens)"
        )
    return {"rows": rows, "truncated": truncated, **counts, "embedded": report.work, "embedder": embedder_key,
            **report.details(), "chunk_rows": config.chunk_rows, "engine": engine.name}


def _assemble_embeddings(store: RunStore, indexes: list[int], vectors: dict[str, np.ndarray],
                         dim: int | None) -> tuple[int, int]:
    """Stream the embed parts in chunk order into ``embeddings.parquet``; (rows, truncated rows).

    ``vectors`` (text hash → vector: the cache) gains each text's vector at its first
    occurrence, so later rows with the same text get it without embedding it again.
    """
    rows = truncated = 0
    with contextlib.ExitStack() as stack:
        writer = None
        for index in indexes:
            part = store.read_part("embeddings", index)
            column = part.column("embedding").combine_chunks()
            valid = column.is_valid().to_numpy(zero_copy_only=False)
            flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
            if writer is None:
                dim = int(flat.size // max(1, int(valid.sum()))) if valid.any() else (
                    len(next(iter(vectors.values()))) if vectors else int(dim or 0))
                schema = embedding_schema(dim)
                writer = stack.enter_context(store.table_writer("embeddings", schema))
            fresh = flat.reshape(-1, dim or 1)
            hashes = part.column("text_hash").to_pylist()
            for h, vector in zip((hashes[r] for r in np.flatnonzero(valid)), fresh):
                vectors.setdefault(h, vector)
            out = np.empty((part.num_rows, dim or 0), dtype=np.float32)
            out[valid] = fresh
            for r in np.flatnonzero(~valid):
                out[r] = vectors[hashes[r]]
            writer.write_table(pa.table({
                "conversation_id": part.column("conversation_id"),
                "text_hash": part.column("text_hash"),
                "truncated": part.column("truncated"),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(out.reshape(-1), pa.float32()), dim),
            }, schema=schema))
            rows += part.num_rows
            truncated += int(sum(part.column("truncated").to_pylist()))
    return rows, truncated


def load_embeddings(store: RunStore) -> tuple[list[str], np.ndarray]:
    table = store.read_table("embeddings", columns=["conversation_id", "embedding"])
    ids = table.column("conversation_id").to_pylist()
    return ids, vectors_from_arrow(table.column("embedding"), len(ids))


def facet_texts(store: RunStore) -> Callable[[np.ndarray], list[str]]:
    """``rows (k,) -> k texts``: those rows' texts as the namer reads them (``build_corpus``:
    the summary, else the request); ``facets`` is read once, at the first call, and only the rows
    asked for become strings."""
    @functools.cache
    def facets() -> pa.Table:
        return store.read_table("facets", columns=["request", "summary"])

    def texts_of(rows: np.ndarray) -> list[str]:
        chosen = facets().take(pa.array(np.asarray(rows, dtype=np.int64)))
        return [s or r or "" for s, r in zip(chosen.column("summary").to_pylist(), chosen.column("request").to_pylist())]

    return texts_of


def topic_vectors(store: RunStore, embedder: Embedder | None,
                  texts_of: Callable[[np.ndarray], list[str]] | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    """What the map and the clusters read: ``(ids, vectors (n, dim), words)``, the run's embeddings
    with the corpus' own name projected out (``cluster.without_corpus_name``) when an ``embedder``
    is given and the texts have such a name (``words``, else empty); the stored embeddings stay.

    Only an even sample of ``naming.CORPUS_NAME_SAMPLE`` texts is read from ``facets``
    (``texts_of``, ``facet_texts`` of the store unless given), so 1M rows never become 1M Python
    strings here.
    """
    from kiku.cluster import without_corpus_name
    from kiku.naming import CORPUS_NAME_SAMPLE

    ids, vectors = load_embeddings(store)
    if embedder is None or not ids:
        return ids, vectors, []
    texts = (texts_of or facet_texts(store))(evenly_spaced(len(ids), CORPUS_NAME_SAMPLE))
    vectors, words = without_corpus_name(vectors, texts, embedder.embed)
    return ids, vectors, words


def stage_project(store: RunStore, config: RunConfig, progress: Progress, embedder: Embedder | None = None) -> int:
    """UMAP 2-D coordinates for every conversation → ``projection.parquet``, of the vectors the
    clusters are made from (``topic_vectors``: with an ``embedder``, the corpus' own name
    projected out), so that a cluster is one place on the map."""
    from kiku.project import project_embeddings

    ids, vectors, _ = topic_vectors(store, embedder)
    with _stage(progress, "project", None):
        coords = project_embeddings(vectors, seed=config.seed, sample_size=config.project_sample_size)
    store.write_table("projection", pa.table({
        "conversation_id": ids,
        "x": coords[:, 0].astype(np.float32),
        "y": coords[:, 1].astype(np.float32),
    }, schema=PROJECTION_SCHEMA))
    return len(ids)


def stage_cluster(store: RunStore, clusterer: Clusterer, progress: Progress, engine: Engine | None = None,
                  chunk_rows: int | None = None, embedder: Embedder | None = None,
                  merge_pleasantries: bool = False) -> dict[str, Any]:
    """Base clusters (label -1 = unclustered) → ``cluster_labels.parquet``.

    With an ``embedder``, the corpus' own name is first projected out of the vectors that are
    clustered (``topic_vectors``; the words go to the stage summary in the manifest as
    ``corpus_name``); the stored embeddings are left as they are. With ``merge_pleasantries``,
    clusters made of the same pleasantries become one (``cluster.merge_pleasantries``; the
    summary's ``pleasantries_merged`` says which kinds and how many clusters each took in).
    With an engine other than the local one and k-means fitted on a sample (above its
    ``fit_sample_size`` rows), the fit stays here and the assignment of every row to the
    fitted centres runs on the engine in chunks of ``chunk_rows`` (``cluster.assign_with_engine``:
    the same labels).
    """
    from kiku.cluster import KMeansClusterer, assign_with_engine
    from kiku.cluster import merge_pleasantries as merge_pleasantry_clusters

    texts_of = facet_texts(store) if embedder is not None or merge_pleasantries else None
    ids, vectors, removed = topic_vectors(store, embedder, texts_of)
    with _stage(progress, "cluster", None):
        if engine is not None and engine.name != "local" and isinstance(clusterer, KMeansClusterer):
            rows = chunk_rows or RunConfig().chunk_rows
            labels = clusterer.fit_predict(vectors, assign=lambda v, c: assign_with_engine(engine, v, c, rows))
        else:
            labels = np.asarray(clusterer.fit_predict(vectors), dtype=np.int64)
    if labels.shape != (len(ids),):
        raise KikuError(f"clusterer {clusterer.name!r} returned {labels.shape} labels for {len(ids)} conversations")
    merged: dict[str, int] = {}
    if texts_of is not None and merge_pleasantries and len(ids):
        labels, merged = merge_pleasantry_clusters(labels, texts_of)
    store.write_table("cluster_labels", pa.table({"conversation_id": ids, "label": labels}))
    return {"rows": len(ids), "clusters": int(len(set(labels.tolist()) - {-1})), "unclustered": int((labels == -1).sum()),
            "corpus_name": removed, "pleasantries_merged": merged}




def build_corpus(store: RunStore) -> Corpus:
    """What the namer and hierarchy builder read: ids, texts, requests and the (n, dim) embeddings.

    At 1M conversations this is the embedding matrix (1.5 GB at 384 dims) plus three lists of
    n strings (texts share the summary/request objects); the id check compares Arrow columns.
    """
    ids, vectors = load_embeddings(store)
    facets = store.read_table("facets", columns=["conversation_id", "request", "summary"])
    if not facets.column("conversation_id").combine_chunks().cast(pa.string()).equals(pa.array(ids, pa.string())):
        raise KikuError(f"{store.path}: facets and embeddings are out of step; delete the run folder and run again")
    requests = [r or "" for r in facets.column("request").to_pylist()]
    summaries = facets.column("summary").to_pylist()
    texts = [s if s else r for s, r in zip(summaries, requests)]
    return Corpus(ids=ids, texts=texts, requests=requests, embeddings=vectors, summaries=summaries)


def clusters_to_table(clusters: Sequence[Cluster], total: int) -> pa.Table:
    """``clusters.parquet``'s table (CLUSTER_SCHEMA): one row per cluster, member ids as one Arrow list column.

    Built column by column (the member ids as one flat string array plus offsets), never as one
    Python dict per row, so a million conversations over 3-4 levels stay a few flat arrays.
    """
    sizes = np.array([c.size for c in clusters], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32 if sizes.sum() < 2**31 else np.int64)
    members = pa.array([m for c in clusters for m in c.member_ids], pa.string())
    list_type = pa.list_(pa.string())
    member_ids = (pa.ListArray if offsets.dtype == np.int32 else pa.LargeListArray).from_arrays(pa.array(offsets), members)
    columns = {
        "cluster_id": [c.id for c in clusters],
        "level": [c.level for c in clusters],
        "parent_id": [c.parent_id for c in clusters],
        "name": [c.name for c in clusters],
        "description": [c.description for c in clusters],
        "size": sizes,
        "share": sizes / total if total else np.zeros(len(clusters)),
        "keyphrases": [list(c.keyphrases) for c in clusters],
        "representative_request": [c.representative_request for c in clusters],
        "is_noise": [c.is_noise for c in clusters],
        "x": [c.x for c in clusters],
        "y": [c.y for c in clusters],
    }
    arrays = [pa.array(columns[f.name], f.type) for f in CLUSTER_SCHEMA if f.name != "member_ids"]
    return pa.Table.from_arrays([*arrays, member_ids.cast(list_type)], schema=CLUSTER_SCHEMA)


def clusters_from_table(table: pa.Table) -> list[Cluster]:
    return [
        Cluster(
            id=r["cluster_id"], level=r["level"], parent_id=r["parent_id"], name=r["name"],
            description=r["description"] or "", member_ids=r["member_ids"] or [], keyphrases=r["keyphrases"] or [],
            representative_request=r["representative_request"], is_noise=r["is_noise"], x=r["x"], y=r["y"],
        )
        for r in table.to_pylist()
    ]


def stage_name(store: RunStore, namer: TopicNamer, progress: Progress) -> dict[str, Any]:
    """Name every base cluster → ``base_clusters.parquet`` (level 0, plus the unclustered bucket).

    Bounded whatever n is: the offline namer reads at most ``naming.MAX_DOCS_PER_TOPIC`` (600)
    members per cluster (evenly spaced by similarity to the centroid, so deterministic without a
    seed) and the LLM namers a seeded sample; only centroids and member index arrays are O(n).
    """
    corpus = build_corpus(store)
    labels = np.asarray(store.read_table("cluster_labels", columns=["label"]).column("label").to_numpy())
    label_values = sorted(set(labels.tolist()) - {-1})
    drafts = []
    for index, label in enumerate(label_values):
        members = np.flatnonzero(labels == label)
        drafts.append(TopicDraft(
            key=f"L0-{index:03d}", member_index=members, centroid=l2_normalise(corpus.embeddings[members].mean(axis=0))
        ))
    with _stage(progress, "name", len(drafts)) as advance:
        names = namer.name_topics(drafts, corpus)
        advance(len(drafts))
    if len(names) != len(drafts):
        raise KikuError(f"namer {namer.name!r} returned {len(names)} names for {len(drafts)} clusters")
    clusters = [
        Cluster(
            id=d.key, level=0, name=n.name, description=n.description, keyphrases=list(n.keyphrases),
            representative_request=n.representative_request, member_ids=[corpus.ids[i] for i in d.member_index],
        )
        for d, n in zip(drafts, names)
    ]
    unique_sibling_names(clusters)
    noise = np.flatnonzero(labels == -1)
    if len(noise):
        clusters.append(noise_cluster([corpus.ids[i] for i in noise]))
    store.write_table("base_clusters", clusters_to_table(clusters, len(corpus.ids)))
    return {"rows": len(clusters), "unclustered": int(len(noise))}


def _with_positions(clusters: list[Cluster], store: RunStore) -> list[Cluster]:
    projection = store.read_table("projection")
    position = {cid: i for i, cid in enumerate(projection.column("conversation_id").to_pylist())}
    xs = projection.column("x").to_numpy()
    ys = projection.column("y").to_numpy()
    for cluster in clusters:
        rows = [position[m] for m in cluster.member_ids if m in position]
        if rows:
            cluster.x = float(np.mean(xs[rows]))
            cluster.y = float(np.mean(ys[rows]))
    return clusters


def assignments_table(clusters: Sequence[Cluster]) -> pa.Table:
    """One row per conversation and level: the cluster covering it at that level.

    A cluster whose parent sits more than one level up (single-child chains are collapsed)
    covers its members at every level below that parent, so every conversation has exactly
    one cluster at every level from 0 to the top. Rows go base cluster by base cluster, each
    one's members level by level. Built from index arrays (Arrow ``take``), not per-row Python
    lists, so 1M conversations x 4 levels is a few flat arrays.
    """
    by_id = {c.id: c for c in clusters}
    top = max((c.level for c in clusters), default=0)
    levels = top + 1
    bases = [c for c in clusters if c.level == 0]
    names: list[str] = []
    code: dict[str, int] = {}
    covering = np.zeros((len(bases), levels), dtype=np.int32)  # [base, level] -> index into names
    for b, base in enumerate(bases):
        chain = [base]
        while chain[-1].parent_id is not None:
            chain.append(by_id[chain[-1].parent_id])
        for level in range(levels):
            cid = [c for c in chain if c.level <= level][-1].id
            if cid not in code:
                code[cid] = len(names)
                names.append(cid)
            covering[b, level] = code[cid]
    sizes = np.array([b.size for b in bases], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(bases) else np.zeros(0, np.int64)
    members = pa.array([m for b in bases for m in b.member_ids], pa.string())
    block = np.repeat(sizes, levels)  # one block of rows per (base, level)
    block_base = np.repeat(np.arange(len(bases)), levels)
    block_level = np.tile(np.arange(levels, dtype=np.int32), len(bases))
    within = np.arange(int(block.sum()), dtype=np.int64) - np.repeat(np.cumsum(block) - block, block)
    rows = np.repeat(starts[block_base], block) + within
    return pa.table({
        "conversation_id": members.take(pa.array(rows)),
        "level": pa.array(np.repeat(block_level, block), pa.int32()),
        "cluster_id": pa.array(names, pa.string()).take(pa.array(np.repeat(covering[block_base, block_level], block))),
    }, schema=ASSIGNMENT_SCHEMA)


def _apply_privacy(store: RunStore, tree: list[Cluster], config: RunConfig | None) -> list[Cluster]:
    """Fold topics below the privacy thresholds into "Other (below privacy threshold)" on every level."""
    if config is None or (config.privacy_min_conversations <= 1 and config.privacy_min_users <= 1):
        return tree
    from kiku.privacy import apply_min_cluster_size, users_by_conversation

    users: dict[str, str] = {}
    if config.privacy_user_field:
        for conversations in iter_conversations(store):
            users.update(users_by_conversation(conversations, config.privacy_user_field))
    return apply_min_cluster_size(tree, config.privacy_min_conversations, config.privacy_min_users, users)


def stage_hierarchy(store: RunStore, builder: HierarchyBuilder, progress: Progress,
                    config: RunConfig | None = None) -> dict[str, Any]:
    """Parents above the base clusters → ``clusters.parquet`` and ``assignments.parquet``.

    The builder groups the k base centroids (k <= ``cluster.K_MAX``) and names each level with the
    same capped member samples as ``stage_name``; the two tables are built from Arrow arrays
    (``clusters_to_table``, ``assignments_table``), so 1M conversations x 4 levels stay flat arrays.
    """
    corpus = build_corpus(store)
    base = clusters_from_table(store.read_table("base_clusters"))
    topics = [c for c in base if not c.is_noise]
    noise = [c for c in base if c.is_noise]
    with _stage(progress, "hierarchy", None):
        tree = list(builder.build(topics, corpus)) if len(topics) > 1 else topics
    _check_tree(tree)
    tree = _apply_privacy(store, tree, config)
    top = max((c.level for c in tree), default=0)
    if noise:
        # The unclustered bucket is carried up as its own non-topic node so every level covers everyone.
        bucket = noise[0]
        tree.append(bucket.model_copy(update={"parent_id": "unclustered-top" if top > 0 else None}))
        if top > 0:
            tree.append(bucket.model_copy(update={"id": "unclustered-top", "level": top, "parent_id": None}))
    for level in range(top + 1):
        for parent_id in {c.parent_id for c in tree if c.level == level}:
            unique_sibling_names([c for c in tree if c.level == level and c.parent_id == parent_id])
    tree = _with_positions(tree, store)
    total = len(corpus.ids)
    store.write_table("clusters", clusters_to_table(tree, total))
    store.write_table("assignments", assignments_table(tree))
    return {
        "rows": len(tree),
        "clusters_by_level": {str(level): sum(1 for c in tree if c.level == level and not c.is_noise) for level in range(top + 1)},
    }


def _check_tree(tree: Sequence[Cluster]) -> None:
    by_id = {c.id: c for c in tree}
    for cluster in tree:
        if cluster.parent_id is not None:
            parent = by_id.get(cluster.parent_id)
            if parent is None or parent.level <= cluster.level:
                raise KikuError(f"hierarchy builder produced an invalid parent link {cluster.id} -> {cluster.parent_id}")


# --- the run --------------------------------------------------------------------------------


@dataclass
class Components:
    """The pluggable objects a run uses; ``None`` means kiku's offline default."""

    embedder: Embedder | None = None
    describer: Describer | None = None
    clusterer: Clusterer | None = None
    namer: TopicNamer | None = None
    hierarchy: HierarchyBuilder | None = None
    extra_fingerprint: dict[str, str] = field(default_factory=dict)
    llm_client: Any = None  # kiku.llm.LLMClient when config.llm is set; its usage lands in manifest["llm"]


def default_components(config: RunConfig, components: Components | None = None) -> Components:
    """Fill the offline defaults for every component the caller did not give."""
    from kiku.cluster import HDBSCANClusterer, KMeansClusterer
    from kiku.embed import make_embedder
    from kiku.hierarchy import AgglomerativeHierarchy
    from kiku.naming import KeyphraseNamer

    given = components or Components()
    embedder = given.embedder or make_embedder(config.embedder, config.embed_batch_size, config.embed_max_tokens)
    clusterer: Any
    if given.clusterer is not None:
        clusterer = given.clusterer
    elif config.clusterer == "hdbscan":
        clusterer = HDBSCANClusterer(min_cluster_size=config.min_cluster_size, seed=config.seed)
    else:
        clusterer = KMeansClusterer(n_clusters=config.clusters, seed=config.seed)
    llm_client = given.llm_client
    describer = given.describer
    namer = given.namer
    hierarchy: Any = given.hierarchy
    if config.llm and config.llm_scope == "clusters" and not (namer and hierarchy):
        from kiku.llm import build_cluster_stages

        llm_cluster_namer, llm_cluster_hierarchy, llm_client = build_cluster_stages(
            config.llm, concurrency=config.llm_concurrency, embedder=embedder, seed=config.seed,
            max_top=config.max_top, levels=config.levels, threads=config.llm_threads,
        )
        namer = namer or llm_cluster_namer
        hierarchy = hierarchy or llm_cluster_hierarchy
    elif config.llm and not (describer and namer and hierarchy):
        from kiku.llm import build_llm_stages

        offline = describer if isinstance(describer, OfflineDescriber) else None
        llm_describer, llm_namer, llm_hierarchy, llm_client = build_llm_stages(
            config.llm, concurrency=config.llm_concurrency, embedder=embedder, seed=config.seed,
            top_size=config.max_top or 8, levels=config.levels, threads=config.llm_threads,
        )
        if offline is not None:
            llm_describer.offline = offline
        describer = llm_describer if describer is None or offline is not None else describer
        namer = namer or llm_namer
        hierarchy = hierarchy or llm_hierarchy
    namer = namer or KeyphraseNamer(embedder)
    hierarchy = hierarchy or AgglomerativeHierarchy(namer, levels=config.levels, max_top=config.max_top, seed=config.seed)
    return Components(
        embedder=embedder,
        describer=describer or OfflineDescriber(),
        clusterer=clusterer,
        namer=namer,
        hierarchy=hierarchy,
        extra_fingerprint=given.extra_fingerprint,
        llm_client=llm_client,
    )


@dataclass
class Run:
    """A finished (or resumed) run: where it is and what it holds."""

    path: Path
    manifest: dict[str, Any]

    @property
    def store(self) -> RunStore:
        return RunStore(self.path)

    def clusters(self):  # noqa: ANN201 - pandas.DataFrame
        """All clusters, every level, as a DataFrame (without member lists)."""
        return self.store.read_table("clusters").drop_columns(["member_ids"]).to_pandas()

    def assignments(self):  # noqa: ANN201 - pandas.DataFrame
        return self.store.read_table("assignments").to_pandas()

    def sql(self, query: str):  # noqa: ANN201 - pandas.DataFrame
        """Run DuckDB SQL over the run's tables (one view per Parquet file)."""
        return self.store.connect().execute(query).df()


def analyze(
    input_path: str | Path,
    out: str | Path,
    config: RunConfig | None = None,
    *,
    components: Components | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> Run:
    """Run the whole pipeline on ``input_path`` and write the run to ``out``; resume when possible.

    ``settings`` are RunConfig fields (``clusters=40``, ``clusterer="hdbscan"``, ...).

    >>> run = analyze("examples/wandb-queries.jsonl", "runs/wandb", clusters=30)   # doctest: +SKIP
    >>> run.manifest["counts"]["conversations"]                                     # doctest: +SKIP
    560
    """
    config = RunConfig(**{**(config or RunConfig()).model_dump(), **settings})
    check_settings(config)
    progress = progress or Progress()
    input_path = Path(input_path)
    hub_dataset = config.format == "hf" and not input_path.exists()
    if not input_path.exists() and not hub_dataset:
        raise InputError(str(input_path), "no such file or folder", "check the path")
    parts = default_components(config, components)  # before the folder exists: a bad setting leaves no trace
    engine = make_engine(config)
    try:
        store = RunStore(out)
        with store.lock():
            return _run_stages(store, input_path, hub_dataset, config, parts, progress, engine)
    finally:
        engine.close()


def _run_stages(store: RunStore, input_path: Path, hub_dataset: bool, config: RunConfig, parts: Components,
                progress: Progress, engine: Engine | None = None) -> Run:
    """The stages of :func:`analyze`, in order, in a run folder whose writer lock is held."""
    started = time.perf_counter()
    # A hub dataset is identified by its name (its content may change upstream: pin a revision).
    input_hash, input_bytes = (fingerprint("hf", str(input_path)), 0) if hub_dataset else file_fingerprint(input_path)
    manifest = store.manifest
    manifest["kiku_version"] = _kiku_version()
    manifest["config"] = config.model_dump()
    manifest["versions"] = package_versions()
    manifest.setdefault("input", {})
    manifest["input"].update({"path": str(input_path), "fingerprint": input_hash, "bytes": input_bytes})

    fp = stage_fingerprints(config, {
        name: component_fingerprint(getattr(parts, name)) for name in {s.component for s in PIPELINE if s.component}
    }, input_hash)
    context = StageContext(store=store, input_path=input_path, config=config, components=parts, progress=progress,
                           engine=engine)
    for declared in PIPELINE:
        stage = declared.name
        # A stage downstream of one that ran is never current: invalidate_from cleared its fingerprint.
        if store.stage_is_current(stage, fp[stage]):
            progress.stage_finished(stage, 0.0, reused=True)
            continue
        for name in store.damaged_tables(stage) if store.manifest["stages"].get(stage) else ():
            if store.has_table(name):
                progress.message(f"{store.table_path(name)} is damaged (size/checksum mismatch); rebuilding it")
        # this stage and every one reading it run again, and the run reads as unfinished until they have
        store.invalidate_from(stage)
        stage_start = time.perf_counter()
        result = declared.run(context)
        details = result if isinstance(result, dict) else {"rows": int(result)}
        rows = details.pop("rows")
        incomplete = False
        component = getattr(parts, declared.component) if declared.component else None
        if isinstance(component, ReportsStage):
            # The one hook for components (kiku.stages): details, warnings, and whether to retry next run.
            report = component.stage_report()
            details.update(report.details)
            for warning in report.warnings:
                manifest.setdefault("warnings", []).append(f"{stage}: {warning}")
                if report.show:
                    progress.message(f"warning: {manifest['warnings'][-1]}")
            incomplete = report.incomplete
        store.complete_stage(stage, fp[stage] + ("-incomplete" if incomplete else ""), time.perf_counter() - stage_start,
                             rows, **details)
    if parts.llm_client is not None:
        manifest["llm"] = parts.llm_client.usage.model_dump(mode="json")

    from kiku.edits import report_after_run  # hand edits (kiku edit) re-applied to this tree: report what changed

    for line in report_after_run(store.path):
        if line not in manifest.setdefault("warnings", []):
            manifest["warnings"].append(line)
        progress.message(f"warning: {line}")
    manifest["counts"] = _counts(store)
    manifest["total_seconds_last_invocation"] = round(time.perf_counter() - started, 3)
    manifest["completed_at"] = now_iso()
    store.save_manifest()
    return Run(path=store.path, manifest=manifest)


def _counts(store: RunStore) -> dict[str, Any]:
    stages = store.manifest["stages"]
    return {
        "conversations": stages["load"]["rows"],
        "skipped": len(store.manifest.get("skipped", [])),
        "warnings": len(store.manifest.get("warnings", [])),
        "clusters_by_level": stages["hierarchy"].get("clusters_by_level", {}),
        "unclustered": stages["cluster"].get("unclustered", 0),
        "truncated_for_embedding": stages["embed"].get("truncated", 0),
    }


def _kiku_version() -> str:
    from kiku import __version__

    return __version__
