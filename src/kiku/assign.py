"""Assign new conversations to an existing run's topics: same ids, same names, same map.

``assign(BASE_RUN, INPUT, NEW_RUN)`` loads, describes and embeds the new conversations with
BASE_RUN's settings (refusing when its embedder or facets cannot be reproduced), gives each
one BASE_RUN's nearest base topic (cosine to the topic's centroid, edits of BASE_RUN included)
and that topic's parents, and writes a complete run folder that ``kiku tree``, ``export``,
``sql``, ``ui`` and ``classify`` read like any other.

- **Same space.** When BASE_RUN's corpus had a name of its own (its manifest's cluster stage lists
  ``corpus_name``: "wandb", "weights", "biases"), its topics and map were made with those words'
  directions projected out (``pipeline.topic_vectors``); the new and the base vectors are compared
  with the same words projected out.
- **Unassigned.** A conversation is assigned only when its similarity to the nearest topic
  reaches that topic's threshold, calibrated on BASE_RUN's own spread: the ``quantile`` (2% by
  default) of the leave-one-out similarities of the topic's members to its centroid, shrunk
  towards the same quantile over all topics for small topics. The others go under
  *Unassigned* and are clustered among themselves into **candidate new topics**, named by the
  run's namer and flagged ``is_new`` in ``clusters.parquet``.
- **Confidence.** ``assign_scores.parquet``: per conversation the nearest base topic, its
  similarity, the threshold it was held to and whether it was assigned.
- **Map.** New conversations are placed on BASE_RUN's map without refitting it: each one at
  the similarity-weighted mean of the map positions of its ``MAP_NEIGHBOURS`` nearest base
  conversations (the initialisation UMAP's own ``transform`` uses; it works for t-SNE and PCA
  maps too, and needs no stored model), so the two maps line up.
- **Shares.** ``clusters.parquet`` carries ``base_share`` (the topic's share in BASE_RUN), which
  ``kiku tree`` prints beside the new share.

Cost beyond embedding: one (n, k) similarity product for the topics and one (n, m) product
against at most ``project_sample_size`` base conversations for the map.

Example:
    >>> run = assign("runs/week1", "week2.jsonl", "runs/week2")          # doctest: +SKIP
    >>> run.manifest["assign"]["assigned_share"]                          # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field

from kiku.config import RunConfig
from kiku.errors import KikuError
from kiku.pipeline import Components, Progress, Run
from kiku.project import MAP_NEIGHBOURS, place_on_map
from kiku.records import Cluster
from kiku.store import MANIFEST, RunStore, open_finished_run, read_manifest
from kiku.vectors import without_directions

__all__ = ["MAP_NEIGHBOURS", "AssignSummary", "assign", "check_assignable", "nearest_topics", "place_on_map",
           "topic_thresholds", "unit"]

#: Default share of BASE_RUN's own members that fall below their topic's threshold.
DEFAULT_QUANTILE = 0.02
#: Pseudo-count pulling a small topic's threshold towards the global one.
SHRINK = 20.0
#: Unassigned conversations needed before they are clustered into candidate new topics.
MIN_NEW = 6
#: Smallest candidate new topic; smaller groups stay in the *Unassigned* bucket.
MIN_NEW_SIZE = 3
UNASSIGNED_ID = "unassigned"
UNASSIGNED_REST_ID = "unassigned-rest"
NEW_PREFIX = "new-"


class AssignSummary(BaseModel):
    """``manifest["assign"]`` of an assigned run."""

    base_run: str
    base_hierarchy_fingerprint: str | None = None
    base_edits: int = 0
    quantile: float
    threshold_median: float
    conversations: int
    assigned: int
    assigned_share: float
    unassigned: int
    new_topics: list[str] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


# --- pure parts ---------------------------------------------------------------------------------


def unit(vectors: np.ndarray) -> np.ndarray:
    from kiku.vectors import l2_normalise

    return np.asarray(l2_normalise(np.asarray(vectors, dtype=np.float32)), dtype=np.float32)


def topic_thresholds(embeddings: np.ndarray, labels: np.ndarray, k: int, quantile: float = DEFAULT_QUANTILE,
                     shrink: float = SHRINK) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (k, d) and per-topic similarity thresholds (k,) from a base run's members.

    ``labels`` (n,) hold the topic index of each base conversation (-1 = in no topic). A member's
    similarity is taken to its topic's centroid *without itself* (leave-one-out), so held-out
    conversations are judged like the members were; the threshold is the ``quantile`` of those
    similarities, shrunk towards the global quantile with weight ``shrink`` for small topics.

    >>> e = unit(np.array([[1, 0], [0.9, 0.1], [0.95, 0.05], [0, 1], [0.1, 0.9], [0.05, 0.95]]))
    >>> c, t = topic_thresholds(e, np.array([0, 0, 0, 1, 1, 1]), 2)
    >>> c.shape, bool((t > 0.9).all())
    ((2, 2), True)
    """
    d = embeddings.shape[1]
    sums = np.zeros((k, d), dtype=np.float64)
    counts = np.bincount(labels[labels >= 0], minlength=k).astype(np.float64)
    np.add.at(sums, labels[labels >= 0], embeddings[labels >= 0])
    centroids = unit(sums)
    member = labels >= 0
    loo = sums[labels[member]] - embeddings[member]
    norms = np.linalg.norm(loo, axis=1)
    sims = np.where(norms > 1e-9, (embeddings[member] * loo).sum(axis=1) / np.maximum(norms, 1e-9), -1.0)
    sims = np.where(counts[labels[member]] > 1, sims, np.nan)
    overall = float(np.nanquantile(sims, quantile)) if np.isfinite(sims).any() else 0.0
    thresholds = np.full(k, overall, dtype=np.float64)
    member_labels = labels[member]
    for topic in range(k):
        own = sims[(member_labels == topic) & np.isfinite(sims)]
        if len(own):
            thresholds[topic] = (len(own) * float(np.quantile(own, quantile)) + shrink * overall) / (len(own) + shrink)
    return centroids, thresholds.astype(np.float32)


def nearest_topics(embeddings: np.ndarray, centroids: np.ndarray, batch: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Index (n,) and cosine similarity (n,) of each embedding's nearest centroid."""
    best = np.empty(len(embeddings), dtype=np.int64)
    score = np.empty(len(embeddings), dtype=np.float32)
    for start in range(0, len(embeddings), batch):
        sims = embeddings[start:start + batch] @ centroids.T
        best[start:start + batch] = sims.argmax(axis=1)
        score[start:start + batch] = sims.max(axis=1)
    return best, score


# --- the run -----------------------------------------------------------------------------------


def _open_base(base_run: str | Path) -> RunStore:
    folder = Path(base_run)
    store = open_finished_run(folder, hint="pass the folder `kiku run` wrote as BASE_RUN")
    for table in ("embeddings", "facets", "clusters", "assignments", "projection"):
        if not store.has_table(table):
            raise KikuError(f"{folder}: no {table}.parquet, so new conversations cannot be assigned to it; "
                            f"finish it with `kiku run` first")
    if "assign" in store.manifest:
        origin = store.manifest["assign"].get("base_run")
        raise KikuError(f"{folder} is itself an assigned run (of {origin}); assign to the original base run")
    return store


def _base_config(base: RunStore, format: str | None, mapping: dict[str, Any] | None,
                 input_path: Path | None = None) -> RunConfig:
    raw = dict(base.manifest.get("config") or {})
    try:
        config = RunConfig(**raw)
    except ValueError as exc:
        raise KikuError(f"{base.path / MANIFEST}: its config is not readable by this kiku ({str(exc).splitlines()[0]}); "
                        "re-run the base run with this version") from None
    if mapping is None and config.mapping and input_path is not None:
        # the base run's column mapping is kept for input of the same format (a CSV after a CSV)
        from kiku.loaders.detect import detect_format

        same = (format or detect_format(input_path)) == (base.manifest.get("input") or {}).get("format")
        mapping = config.mapping if same else None
    updates: dict[str, Any] = {"format": format, "mapping": mapping}
    return config.model_copy(update=updates)


def _check_embedder(base: RunStore, embedder: Any) -> None:
    from kiku.pipeline import component_fingerprint

    recorded = (base.manifest["stages"].get("embed") or {}).get("embedder")
    current = component_fingerprint(embedder)
    if recorded and recorded != current:
        name = (base.manifest.get("config") or {}).get("embedder")
        raise KikuError(f"{base.path} was embedded with another embedder ({name}, fingerprint {recorded}) than this kiku "
                        f"makes ({current}); new conversations would not be comparable: assign with the kiku version "
                        "and model that made the base run, or re-run it")


def _check_facets(base: RunStore, new: RunStore) -> None:
    base_columns = set(base.read_table("facets").column_names)
    new_columns = set(new.read_table("facets").column_names)
    missing = sorted(c for c in base_columns - new_columns if c.startswith("facet_"))
    if missing:
        raise KikuError(f"{base.path} has user facets {', '.join(missing)} that this describer does not compute; "
                        "pass the same FacetRegistry: kiku.assign(..., components=Components(describer=OfflineDescriber(registry)))")


def _stage_done(store: RunStore, stage: str, fingerprint: str, seconds: float, rows: int, **extra: Any) -> None:
    store.complete_stage(stage, fingerprint, seconds, rows, **extra)


def check_assignable(base_run: str | Path, input_path: str | Path, out: str | Path, *, quantile: float = DEFAULT_QUANTILE,
                     format: str | None = None, mapping: dict[str, Any] | None = None,
                     components: Components | None = None) -> tuple[RunStore, RunConfig, Components]:
    """Everything :func:`assign` refuses before it writes anything (a one-line KikuError each):
    returns the base run's store, the config to describe and embed with, and the components."""
    from kiku.pipeline import default_components

    if not 0.0 < quantile < 0.5:
        raise KikuError(f"--quantile {quantile}: must be between 0 and 0.5 (the share of the base run's own members left unassigned)")
    base = _open_base(base_run)
    input_path = Path(input_path)
    if not input_path.exists():
        raise KikuError(f"{input_path}: no such file or folder; check the path")
    if Path(out).resolve() == base.path.resolve():
        raise KikuError(f"--out {out} is the base run; write the assigned run to a new folder")
    config = _base_config(base, format, mapping, input_path)
    parts = default_components(config, components)
    _check_embedder(base, parts.embedder)
    return base, config, parts


def assign(
    base_run: str | Path,
    input_path: str | Path,
    out: str | Path,
    *,
    quantile: float = DEFAULT_QUANTILE,
    format: str | None = None,
    mapping: dict[str, Any] | None = None,
    components: Components | None = None,
    progress: Progress | None = None,
) -> Run:
    """Assign the conversations of ``input_path`` to ``base_run``'s topics; write the run to ``out``.

    Args:
        base_run: a finished run folder (its edits, ``kiku edit``, are honoured).
        input_path: new conversations, any format ``kiku run`` reads.
        out: the new run folder (must not be ``base_run``).
        quantile: share of the base run's own members that would count as unassigned (0-0.5).
        format, mapping: how to read ``input_path`` (default: detected; BASE_RUN's column mapping).
        components: as for :func:`kiku.analyze`, e.g. the describer with the base run's user facets.
    """
    from kiku.pipeline import load_embeddings, stage_describe, stage_embed, stage_load
    from kiku.stages import stage_fingerprints
    from kiku.store import file_fingerprint, fingerprint, now_iso, package_versions

    started = time.perf_counter()
    progress = progress or Progress()
    base, config, parts = check_assignable(base_run, input_path, out, quantile=quantile, format=format,
                                           mapping=mapping, components=components)
    input_path = Path(input_path)
    store = RunStore(out)
    seconds: dict[str, float] = {}
    with store.lock():
        manifest = store.manifest
        input_hash, input_bytes = file_fingerprint(input_path)
        from kiku import __version__

        manifest.update({"kiku_version": __version__, "config": config.model_dump(), "versions": package_versions()})
        manifest.setdefault("input", {}).update({"path": str(input_path), "fingerprint": input_hash, "bytes": input_bytes})
        manifest.pop("assign", None)
        fp = stage_fingerprints(config, _component_fps(parts), input_hash)
        for stage in ("load", "describe", "embed", "project", "hierarchy"):
            store.invalidate_from(stage)
        tick = time.perf_counter()
        rows = stage_load(store, input_path, config, progress)["rows"]
        _stage_done(store, "load", fp["load"], time.perf_counter() - tick, rows)
        tick = time.perf_counter()
        details = stage_describe(store, parts.describer, progress, chunk_rows=config.chunk_rows)  # type: ignore[arg-type]
        rows = details.pop("rows")
        _stage_done(store, "describe", fp["describe"], time.perf_counter() - tick, rows, **details)
        _check_facets(base, store)
        tick = time.perf_counter()
        details = stage_embed(store, parts.embedder, config, progress)  # type: ignore[arg-type]
        rows = details.pop("rows")
        _stage_done(store, "embed", fp["embed"], time.perf_counter() - tick, rows, **details)
        seconds["describe_and_embed"] = round(time.perf_counter() - started, 3)

        progress.stage_started("assign", None)
        tick = time.perf_counter()
        ids, vectors = load_embeddings(store)
        base_ids, base_vectors = load_embeddings(base)
        if base_vectors.shape[1] != vectors.shape[1]:
            raise KikuError(f"{base.path}: embeddings have {base_vectors.shape[1]} dimensions, the new ones "
                            f"{vectors.shape[1]}; the embedder differs")
        vectors, base_vectors = unit(vectors), unit(base_vectors)
        # the base run's topics and map were made with its corpus' own name projected out
        # (pipeline.topic_vectors): compare in that space, with the base run's words
        words = list(read_manifest(base.path).get("stages", {}).get("cluster", {}).get("corpus_name") or [])
        if words:
            directions = np.asarray(parts.embedder.embed(words), dtype=np.float32)  # type: ignore[union-attr]
            vectors, base_vectors = without_directions(vectors, directions), without_directions(base_vectors, directions)
        from kiku.edits import report_after_run

        for line in report_after_run(base.path):  # base edits that no longer apply cleanly: said, not hidden
            manifest.setdefault("warnings", []).append(f"base run {line}")
            progress.message(f"warning: base run {line}")
        base_clusters = base.read_table("clusters")  # edits applied (kiku.edits)
        base_assign = base.read_table("assignments")
        tree = [c for c in _clusters(base_clusters) if not c.is_noise]
        topics = [c for c in tree if c.level == 0]
        if not topics:
            raise KikuError(f"{base.path}: has no topics to assign to")
        topic_index = {c.id: i for i, c in enumerate(topics)}
        level0 = base_assign.filter(pa.array(base_assign.column("level").to_numpy() == 0))
        base_topic = dict(zip(level0.column("conversation_id").to_pylist(), level0.column("cluster_id").to_pylist()))
        labels = np.array([topic_index.get(base_topic.get(c, ""), -1) for c in base_ids], dtype=np.int64)
        centroids, thresholds = topic_thresholds(base_vectors, labels, len(topics), quantile)
        best, score = nearest_topics(vectors, centroids)
        assigned = score >= thresholds[best]
        seconds["assign"] = round(time.perf_counter() - tick, 3)

        tick = time.perf_counter()
        coords = _place(base, base_ids, base_vectors, vectors, config.seed, config.project_sample_size)
        seconds["map"] = round(time.perf_counter() - tick, 3)
        from kiku.store import PROJECTION_SCHEMA

        store.write_table("projection", pa.table({"conversation_id": ids, "x": coords[:, 0], "y": coords[:, 1]},
                                                 schema=PROJECTION_SCHEMA))
        _stage_done(store, "project", "assigned-" + fingerprint(fp["embed"], str(base.path.resolve())),
                    seconds["map"], len(ids), method="base map, nearest-neighbour placement")

        tick = time.perf_counter()
        new_clusters = _new_topics(store, parts, np.flatnonzero(~assigned), ids, vectors, config.seed)
        seconds["new_topics"] = round(time.perf_counter() - tick, 3)
        members: dict[str, list[str]] = {c.id: [] for c in topics}
        for i in np.flatnonzero(assigned):
            members[topics[best[i]].id].append(ids[i])
        records = _tree_records(tree, members, new_clusters, coords, ids)
        base_share = dict(zip(base_clusters.column("cluster_id").to_pylist(), base_clusters.column("share").to_pylist()))
        _write_tree(store, records, len(ids), base_share)
        store.write_table("assign_scores", _scores_table(ids, topics, best, score, thresholds, assigned))
        base_fp = (base.manifest["stages"].get("hierarchy") or {}).get("fingerprint")
        _stage_done(store, "hierarchy", "assigned-" + fingerprint(fp["embed"], base_fp, quantile),
                    seconds["new_topics"], len(records), base_run=str(base.path))
        from kiku.edits import read_edits

        summary = AssignSummary(
            base_run=str(base.path), base_hierarchy_fingerprint=base_fp, base_edits=len(read_edits(base.path)),
            quantile=quantile, threshold_median=float(np.median(thresholds)), conversations=len(ids),
            assigned=int(assigned.sum()), assigned_share=float(assigned.mean()) if len(ids) else 0.0,
            unassigned=int((~assigned).sum()), new_topics=[c.id for c in new_clusters if not c.is_noise and c.level == 0],
            seconds={**seconds, "total": round(time.perf_counter() - started, 3)},
        )
        progress.stage_finished("assign", time.perf_counter() - started, reused=False)
        manifest["assign"] = summary.model_dump()
        manifest["counts"] = {
            "conversations": len(ids), "skipped": len(manifest.get("skipped", [])),
            "warnings": len(manifest.get("warnings", [])),
            "clusters_by_level": {str(level): sum(1 for r in records if r.level == level and not r.is_noise)
                                  for level in sorted({r.level for r in records})},
            "unclustered": 0, "unassigned": summary.unassigned,
            "truncated_for_embedding": (manifest["stages"].get("embed") or {}).get("truncated", 0),
        }
        manifest["completed_at"] = now_iso()
        store.save_manifest()
    return Run(path=store.path, manifest=store.manifest)


def _component_fps(parts: Components) -> dict[str, str]:
    from kiku.pipeline import component_fingerprint

    return {name: component_fingerprint(getattr(parts, name))
            for name in ("describer", "embedder", "clusterer", "namer", "hierarchy") if getattr(parts, name) is not None}


def _clusters(table: pa.Table) -> list[Cluster]:
    from kiku.pipeline import clusters_from_table

    return clusters_from_table(table.select([f.name for f in _cluster_schema()]))


def _cluster_schema() -> pa.Schema:
    from kiku.store import CLUSTER_SCHEMA

    return CLUSTER_SCHEMA


def _place(base: RunStore, base_ids: list[str], base_vectors: np.ndarray, vectors: np.ndarray, seed: int,
           sample_size: int) -> np.ndarray:
    projection = base.read_table("projection")
    where = {c: i for i, c in enumerate(projection.column("conversation_id").to_pylist())}
    xy = np.stack([projection.column("x").to_numpy(), projection.column("y").to_numpy()], axis=1).astype(np.float32)
    rows = np.array([where.get(c, -1) for c in base_ids])
    keep = np.flatnonzero(rows >= 0)
    if len(keep) > sample_size:
        keep = np.sort(np.random.default_rng(seed).choice(keep, size=sample_size, replace=False))
    if len(keep) == 0:
        return np.zeros((len(vectors), 2), dtype=np.float32)
    return place_on_map(vectors, base_vectors[keep], xy[rows[keep]])


def _new_topics(store: RunStore, parts: Components, index: np.ndarray, ids: list[str], vectors: np.ndarray,
                seed: int) -> list[Cluster]:
    """Candidate new topics among the unassigned conversations (level 0), plus the rest bucket."""
    from kiku.cluster import KMeansClusterer
    from kiku.pipeline import build_corpus
    from kiku.protocols import Corpus, TopicDraft

    if len(index) == 0:
        return []
    out: list[Cluster] = []
    rest = list(index)
    if len(index) >= MIN_NEW:
        labels = KMeansClusterer(seed=seed).fit_predict(vectors[index])
        groups = [np.flatnonzero(labels == label) for label in sorted(set(labels.tolist()))]
        groups = [g for g in groups if len(g) >= MIN_NEW_SIZE]
        if groups:
            corpus = build_corpus(store)
            sub = Corpus(ids=[corpus.ids[i] for i in index], texts=[corpus.texts[i] for i in index],
                         requests=[corpus.requests[i] for i in index], embeddings=vectors[index],
                         summaries=[corpus.summaries[i] for i in index] if corpus.summaries else [])
            drafts = [TopicDraft(key=f"{NEW_PREFIX}{k:03d}", member_index=g, centroid=unit(vectors[index[g]].mean(axis=0)))
                      for k, g in enumerate(groups)]
            names = parts.namer.name_topics(drafts, sub)  # type: ignore[union-attr]
            taken: set[int] = set()
            for draft, named in zip(drafts, names):
                taken.update(int(index[i]) for i in draft.member_index)
                out.append(Cluster(
                    id=draft.key, level=0, name=named.name,
                    description=f"Candidate new topic: {named.description}".strip(),
                    keyphrases=list(named.keyphrases), representative_request=named.representative_request,
                    member_ids=[ids[index[i]] for i in draft.member_index],
                ))
            rest = [i for i in index if int(i) not in taken]
    if rest:
        out.append(Cluster(id=UNASSIGNED_REST_ID, level=0, name="Unassigned, no new topic",
                           description=f"{len(rest)} conversations far from every topic and from each other.",
                           member_ids=[ids[i] for i in rest], is_noise=True))
    from kiku.naming import unique_sibling_names

    unique_sibling_names([c for c in out if not c.is_noise])
    return out


def _tree_records(tree: list[Cluster], members: dict[str, list[str]], new: list[Cluster], coords: np.ndarray,
                  ids: list[str]) -> list[Cluster]:
    """The assigned run's clusters: BASE_RUN's tree (same ids, names, parents) plus *Unassigned*."""
    by_id = {c.id: c for c in tree}
    children: dict[str, list[str]] = {}
    for c in tree:
        if c.parent_id is not None:
            children.setdefault(c.parent_id, []).append(c.id)

    def under(cid: str) -> list[str]:
        if by_id[cid].level == 0:
            return members.get(cid, [])
        return [m for child in children.get(cid, []) for m in under(child)]

    top = max((c.level for c in tree), default=0)
    position = {c: i for i, c in enumerate(ids)}
    records = []
    for c in tree:
        member_ids = under(c.id)
        records.append(c.model_copy(update={"member_ids": member_ids, **_centre(member_ids, coords, position, c)}))
    if new:
        parent = UNASSIGNED_ID if top > 0 else None
        for c in new:
            records.append(c.model_copy(update={"parent_id": parent, **_centre(c.member_ids, coords, position, c)}))
        if top > 0:
            everyone = [m for c in new for m in c.member_ids]
            node = Cluster(id=UNASSIGNED_ID, level=top, name="Unassigned",
                           description="Conversations far from every topic of the base run; candidate new topics below.",
                           member_ids=everyone)
            records.append(node.model_copy(update=_centre(everyone, coords, position, node)))
    return records


def _centre(member_ids: list[str], coords: np.ndarray, position: dict[str, int], cluster: Cluster) -> dict[str, Any]:
    rows = [position[m] for m in member_ids if m in position]
    if not rows:
        return {"x": cluster.x, "y": cluster.y}
    return {"x": float(coords[rows, 0].mean()), "y": float(coords[rows, 1].mean())}


def _write_tree(store: RunStore, records: list[Cluster], total: int, base_share: dict[str, float]) -> None:
    from kiku.pipeline import assignments_table, clusters_to_table

    table = clusters_to_table(records, total)
    cluster_ids = table.column("cluster_id").to_pylist()
    is_new = [cid == UNASSIGNED_ID or cid.startswith(NEW_PREFIX) for cid in cluster_ids]
    table = table.append_column(pa.field("is_new", pa.bool_()), pa.array(is_new, pa.bool_()))
    table = table.append_column(pa.field("base_share", pa.float64()),
                                pa.array([base_share.get(cid) for cid in cluster_ids], pa.float64()))
    store.write_table("clusters", table)
    store.write_table("assignments", assignments_table(records))


def _scores_table(ids: list[str], topics: list[Cluster], best: np.ndarray, score: np.ndarray, thresholds: np.ndarray,
                  assigned: np.ndarray) -> pa.Table:
    from kiku.store import ASSIGN_SCORE_SCHEMA

    return pa.table({
        "conversation_id": ids,
        "nearest_topic": [topics[b].id for b in best],
        "similarity": score.astype(np.float32),
        "threshold": thresholds[best].astype(np.float32),
        "assigned": assigned.astype(bool),
    }, schema=ASSIGN_SCORE_SCHEMA)
