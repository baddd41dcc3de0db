"""Build parent topics above the base clusters by agglomerative clustering of their centroids.

``AgglomerativeHierarchy(namer).build(base, corpus)`` (protocols.HierarchyBuilder) groups the
base clusters level by level with size-weighted Ward linkage on their mean embeddings:

- level 0 holds the base clusters, level k + 1 groups the clusters of level k, so every cluster
  below the top has a parent exactly one level up and every top cluster is at the top level;
- every parent has at least two children (a would-be single-child parent is not created: that
  child joins its nearest group instead), so there are no chains of single-child parents;
- the number of clusters per level shrinks geometrically (by 3x to ``branching``x) until at most
  ``max_top`` remain (default 10), or for exactly ``levels`` levels when given;
- parent ids are ``L{level}-{index:03d}`` (largest first), member_ids are the union of the
  children's, names come from the namer called once per level (so siblings never share a name;
  a final pass also de-duplicates sibling names among the base clusters);
- the noise bucket (``is_noise``) is never merged into a topic. When parent levels exist it gets
  a twin at the top level, id ``unclustered-top`` (docs/run-store.md), and the base noise cluster
  points to it as its parent (the one parent that is not exactly one level up).

Example:
    >>> builder = AgglomerativeHierarchy(KeyphraseNamer(MiniLMEmbedder()), max_top=8)  # doctest: +SKIP
    >>> tree = builder.build(base_clusters, corpus)                                    # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from kiku.naming import deduplicate_names
from kiku.protocols import Corpus, TopicDraft
from kiku.records import Cluster

NOISE_TOP_ID = "unclustered-top"
MIN_RATIO = 3.0


def level_sizes(n: int, levels: int | None = None, max_top: int | None = None, branching: float = 5.0) -> list[int]:
    """Target number of clusters for each parent level above n base clusters.

    Default (neither given): shrink by the same ratio r in [3, branching] per level, using as few
    levels as reach at most 10 top clusters. ``max_top`` changes that 10; ``levels`` fixes the
    number of levels (ratio ``branching`` or what reaches ``max_top``). Counts below 2 are dropped.

    >>> level_sizes(114), level_sizes(400), level_sizes(8), level_sizes(114, levels=1)
    ([34, 10], [117, 34, 10], [], [23])
    >>> level_sizes(114, max_top=3)
    [34, 10, 3]
    """
    if n <= 2:
        return []
    top = max_top if max_top is not None else 10
    if levels is None:
        if n <= top:
            return []
        needed = max(1, math.ceil(math.log(n / top) / math.log(max(branching, MIN_RATIO))))
        ratio = max(MIN_RATIO, (n / top) ** (1.0 / needed))
        levels = needed
    elif levels <= 0:
        return []
    elif max_top is not None:
        ratio = max(1.5, (n / max_top) ** (1.0 / levels))
    else:
        ratio = branching
        if n / ratio**levels < 2:
            ratio = max(1.5, (n / 2) ** (1.0 / levels))
    sizes: list[int] = []
    previous = n
    for level in range(1, levels + 1):
        count = int(round(n / ratio**level))
        if max_top is not None and level == levels:
            count = min(count, max_top)
        if count < 2 or count >= previous:
            break
        sizes.append(count)
        previous = count
    return sizes


def ward_groups(means: np.ndarray, weights: np.ndarray, n_groups: int) -> list[list[int]]:
    """Merge m weighted points into n_groups with Ward's criterion; no group is a singleton.

    Greedily merges the pair with the smallest increase in weighted variance
    ``w_a w_b / (w_a + w_b) * |mu_a - mu_b|^2``. Afterwards, each singleton joins the group it
    is cheapest to merge with (so the result may have fewer than n_groups groups).
    Returns groups as sorted lists of point indices, ordered by their first index.

    >>> means = np.array([[0.0], [0.1], [5.0], [5.2], [9.0]])
    >>> ward_groups(means, np.ones(5), 2)
    [[0, 1], [2, 3, 4]]
    """
    m = len(means)
    mu = np.asarray(means, dtype=np.float64).copy()
    w = np.asarray(weights, dtype=np.float64).copy()
    members: dict[int, list[int]] = {i: [i] for i in range(m)}
    active = np.ones(m, dtype=bool)

    def costs_to(i: int) -> np.ndarray:
        d2 = ((mu - mu[i]) ** 2).sum(axis=1)
        return w * w[i] / (w + w[i]) * d2

    cost = np.full((m, m), np.inf)
    for i in range(m):
        cost[i] = costs_to(i)
        cost[i, i] = np.inf
    groups = m
    while groups > max(1, n_groups):
        flat = int(np.argmin(cost))
        a, b = divmod(flat, m)
        a, b = min(a, b), max(a, b)
        mu[a] = (w[a] * mu[a] + w[b] * mu[b]) / (w[a] + w[b])
        w[a] += w[b]
        members[a].extend(members.pop(b))
        active[b] = False
        cost[b, :] = np.inf
        cost[:, b] = np.inf
        row = costs_to(a)
        row[~active] = np.inf
        row[a] = np.inf
        cost[a, :] = row
        cost[:, a] = row
        groups -= 1
    # singletons join their cheapest non-singleton group
    singles = [i for i, ids in members.items() if len(ids) == 1]
    targets = [i for i, ids in members.items() if len(ids) > 1]
    if targets:
        for i in singles:
            row = costs_to(i)
            best = min(targets, key=lambda t: (row[t], t))
            members[best].extend(members.pop(i))
    return sorted((sorted(ids) for ids in members.values()), key=lambda ids: ids[0])


class AgglomerativeHierarchy:
    """Offline hierarchy builder (protocols.HierarchyBuilder): weighted Ward over base centroids.

    Args:
        namer: a protocols.TopicNamer used to name each level's parents.
        levels: number of parent levels (None: as few as reach ``max_top``).
        max_top: most top-level topics (None: 10 unless ``levels`` is given).
        branching: largest shrink factor between two levels.
        seed: kept for the protocol's reproducibility contract (the build is deterministic).

    ``build(base, corpus) -> list[Cluster]``: the base clusters (copies, ``parent_id`` set)
    followed by the parents, level by level.
    """

    name = "agglomerative-ward"

    def __init__(
        self,
        namer: Any,
        levels: int | None = None,
        max_top: int | None = None,
        branching: float = 5.0,
        seed: int = 0,
    ) -> None:
        if levels is not None and levels < 0:
            raise ValueError("levels must be >= 0")
        if max_top is not None and max_top < 1:
            raise ValueError("max_top must be >= 1")
        self.namer = namer
        self.levels = levels
        self.max_top = max_top
        self.branching = branching
        self.seed = seed

    def build(self, base: Sequence[Cluster], corpus: Corpus) -> list[Cluster]:
        position = {cid: i for i, cid in enumerate(corpus.ids)}
        embeddings = np.asarray(corpus.embeddings, dtype=np.float32)
        nodes = [c.model_copy(deep=True) for c in base]
        topics = [c for c in nodes if not c.is_noise]
        noise = [c for c in nodes if c.is_noise]
        parents: list[Cluster] = []

        def index_of(cluster: Cluster) -> np.ndarray:
            return np.array([position[m] for m in cluster.member_ids if m in position], dtype=np.int64)

        current = topics
        member_index = {c.id: index_of(c) for c in current}
        sizes = level_sizes(len(topics), self.levels, self.max_top, self.branching)
        for level, target in enumerate(sizes, start=1):
            if len(current) <= 2 or target >= len(current):
                break
            means = np.stack(
                [
                    embeddings[member_index[c.id]].mean(axis=0)
                    if len(member_index[c.id])
                    else np.zeros(embeddings.shape[1], dtype=np.float32)
                    for c in current
                ]
            )
            weights = np.array([max(1, len(member_index[c.id])) for c in current], dtype=np.float64)
            groups = ward_groups(means, weights, target)
            if len(groups) < 2:
                break
            groups.sort(key=lambda g: (-sum(weights[i] for i in g), g[0]))
            drafts: list[TopicDraft] = []
            for number, group in enumerate(groups):
                children = [current[i] for i in group]
                index = np.concatenate([member_index[c.id] for c in children])
                mean = embeddings[index].mean(axis=0) if len(index) else np.zeros(embeddings.shape[1])
                norm = float(np.linalg.norm(mean))
                drafts.append(
                    TopicDraft(
                        key=f"L{level}-{number:03d}",
                        member_index=index,
                        centroid=(mean / norm if norm > 0 else mean).astype(np.float32),
                        children=children,
                    )
                )
            names = self.namer.name_topics(drafts, corpus)
            level_parents = []
            for draft, topic in zip(drafts, names):
                parent = Cluster(
                    id=draft.key,
                    level=level,
                    name=topic.name,
                    description=topic.description,
                    member_ids=[m for child in draft.children for m in child.member_ids],
                    keyphrases=list(topic.keyphrases),
                    representative_request=topic.representative_request,
                )
                for child in draft.children:
                    child.parent_id = parent.id
                member_index[parent.id] = draft.member_index
                level_parents.append(parent)
            parents.extend(level_parents)
            current = level_parents

        top_level = max((p.level for p in parents), default=0)
        if parents and noise:
            top_noise = Cluster(
                id=NOISE_TOP_ID,
                level=top_level,
                name="Unclustered",
                description="Conversations no topic was dense enough to take in; not a topic.",
                member_ids=[m for c in noise for m in c.member_ids],
                is_noise=True,
            )
            for c in noise:
                c.parent_id = top_noise.id
            parents.append(top_noise)

        result = nodes + parents
        _deduplicate_siblings(result)
        return result


def _deduplicate_siblings(clusters: list[Cluster]) -> None:
    """Rename in place so no two non-noise clusters with the same parent share a name."""
    families: dict[tuple[str | None, int], list[Cluster]] = {}
    for cluster in clusters:
        if cluster.is_noise:
            continue
        key = (cluster.parent_id, cluster.level if cluster.parent_id is None else -1)
        families.setdefault(key, []).append(cluster)
    for family in families.values():
        names = deduplicate_names([c.name for c in family], [c.keyphrases[2:] for c in family])
        for cluster, name in zip(family, names):
            cluster.name = name
