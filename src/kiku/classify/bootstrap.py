"""Draft a taxonomy from the topics of a run: each big topic becomes a label.

    >>> from kiku.classify.bootstrap import taxonomy_from_run  # doctest: +SKIP
    >>> taxonomy = taxonomy_from_run("runs/chats", top_n=6)  # doctest: +SKIP
    >>> taxonomy.labels[0].examples[:1]  # doctest: +SKIP
    ['How do I merge two pandas data frames on a column?']

For the chosen level (default: the highest level with at least two real topics), the ``top_n``
largest non-noise topics become labels: the topic name (slugified) is the label name, its
description (or keyphrases) the description, the requests of its members closest to the topic
centroid its positive examples, and the central requests of the nearest *other* topic its
negative examples (near misses). An ``other`` label collects the rest.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from kiku.classify.taxonomy import DEFAULT_SYSTEM_PROMPT, Label, Taxonomy
from kiku.errors import InputError
from kiku.store import missing_tables, read_frame, read_requests
from kiku.vectors import l2_normalise

OTHER_DESCRIPTION = "Anything that fits none of the other labels."


def slug(name: str, taken: set[str]) -> str:
    """A short lowercase label name, unique within ``taken``.

    >>> slug("Python: Pandas data frames!", set())
    'python_pandas_data_frames'
    """
    base = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")[:40].strip("_") or "topic"
    candidate, suffix = base, 2
    while candidate in taken:
        candidate, suffix = f"{base}_{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def taxonomy_from_run(
    run_dir: str | Path, top_n: int = 8, level: int | None = None, examples_per_label: int = 5,
    negatives_per_label: int = 2, add_other: bool = True, max_example_chars: int = 300,
) -> Taxonomy:
    """Draft a :class:`Taxonomy` from a run folder's topics (see the module docstring)."""
    run = Path(run_dir)
    missing = missing_tables(run, ("clusters", "assignments", "embeddings"))
    if missing:
        raise InputError(str(run), f"not a finished kiku run (missing {', '.join(missing)})", "run: kiku run DATA --out RUN first")
    clusters = read_frame(run, "clusters")
    clusters = clusters[~clusters["is_noise"].astype(bool)]
    levels = sorted(set(clusters["level"]))
    if level is None:
        usable = [lv for lv in levels if (clusters["level"] == lv).sum() >= 2]
        if not usable:
            raise InputError(str(run), "the run has fewer than two topics", "run with more data or more clusters")
        level = usable[-1]
    elif level not in levels:
        raise InputError(str(run), f"no topics at level {level}", f"use one of levels {levels}")
    topics = clusters[clusters["level"] == level].sort_values("size", ascending=False).head(top_n)
    assignments = read_frame(run, "assignments")
    assignments = assignments[assignments["level"] == level]
    embeddings = read_frame(run, "embeddings", ["conversation_id", "embedding"])
    vectors = dict(zip(embeddings["conversation_id"].astype(str), embeddings["embedding"]))
    requests = read_requests(run)
    members: dict[str, list[str]] = assignments.groupby("cluster_id")["conversation_id"].apply(lambda s: [str(x) for x in s]).to_dict()

    centroids: dict[str, np.ndarray] = {}
    central: dict[str, list[str]] = {}
    for topic in topics.itertuples(index=False):
        ids = [cid for cid in members.get(topic.cluster_id, []) if cid in vectors and cid in requests]
        if not ids:
            continue
        matrix = np.array([vectors[cid] for cid in ids], dtype=np.float32)
        centroid = l2_normalise(matrix.mean(axis=0))
        centroids[topic.cluster_id] = centroid
        order = np.argsort(-(matrix @ centroid))
        seen: set[str] = set()
        texts = []
        for index in order:
            text = requests[ids[index]][:max_example_chars].strip()
            if text and text.lower() not in seen:
                seen.add(text.lower())
                texts.append(text)
            if len(texts) >= examples_per_label:
                break
        central[topic.cluster_id] = texts

    taken: set[str] = {"other"} if add_other else set()
    labels: list[Label] = []
    for topic in topics.itertuples(index=False):
        if topic.cluster_id not in centroids:
            continue
        keyphrases = ", ".join(list(topic.keyphrases)[:6]) if topic.keyphrases is not None else ""
        description = (topic.description or "").strip() or f"Conversations about {topic.name}" + (f" ({keyphrases})" if keyphrases else "")
        nearest = sorted((cid for cid in centroids if cid != topic.cluster_id),
                         key=lambda cid: -float(centroids[cid] @ centroids[topic.cluster_id]))
        negatives = central[nearest[0]][:negatives_per_label] if nearest else []
        labels.append(Label(name=slug(str(topic.name), taken), description=description,
                            examples=central[topic.cluster_id], negative_examples=negatives))
    if add_other:
        labels.append(Label(name="other", description=OTHER_DESCRIPTION))
    if len(labels) < 2:
        raise InputError(str(run), "not enough topics with members to draft labels", "run with more data")
    return Taxonomy(name=f"{run.name}-topics", version="1", system_prompt=DEFAULT_SYSTEM_PROMPT, labels=labels)
