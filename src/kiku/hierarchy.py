"""Build parent topics above the base clusters, level by level, by grouping them bottom-up.

``AgglomerativeHierarchy(namer).build(base, corpus)`` (protocols.HierarchyBuilder) groups the
base clusters level by level, bottom-up. ``method="spectral"`` (default, ``spectral_groups``)
groups them by two things at once: how close their centroids are, and how many of their rows'
nearest neighbours fall in each other (``neighbour_links``), so clusters that border each other in
the data join even when their centroids differ ("What is the address?" beside "Book a hotel"); a
spectral embedding of that affinity is then partitioned by size-weighted k-means.
``method="kmeans"`` partitions the centroids themselves by size-weighted k-means,
``method="ward"`` by greedy size-weighted Ward merging. Over three fits of four labelled sets with
coarse groups (BANKING77, chatterbot, MT-Bench, MultiWOZ) the spectral grouping's top level was
the closest to the coarse groups on every one, where k-means of the centroids lost to flat
k-means of the rows on two (benchmarks/results/hierarchy_methods.md).

- level 0 holds the base clusters, level k + 1 groups the clusters of level k, so every cluster
  below the top has a parent exactly one level up and every top cluster is at the top level;
- every parent has at least two children (a would-be single-child parent is not created: that
  child joins its nearest group instead), so there are no chains of single-child parents;
- no parent holds more than ``MAX_PARENT_SHARE`` (35%) of the conversations unless they are one
  topic (mean resultant length of their vectors at least ``ONE_TOPIC_COHERENCE``): larger groups
  are split in two (``split_oversized``), so the top is not one catch-all topic;
- the number of clusters per level shrinks geometrically (by 3x to ``branching``x, default 15) until at most
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
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from kiku.naming import MIXED_PREFIX, capitalise, deduplicate_names
from kiku.protocols import Corpus, TopicDraft
from kiku.records import Cluster, noise_cluster
from kiku.vectors import evenly_spaced, nearest_neighbours

NOISE_TOP_ID = "unclustered-top"
MIN_RATIO = 3.0
#: A parent holding more than this share of the conversations is split (see split_oversized).
MAX_PARENT_SHARE = 0.35
#: ... unless its conversations are this coherent (mean resultant length of their unit vectors).
ONE_TOPIC_COHERENCE = 0.75
#: The spectral grouping links clusters through the nearest neighbours of at most this many rows
#: (evenly spaced), so its cost does not grow with the corpus.
GRAPH_ROWS = 10_000
#: Nearest neighbours per row for those links.
GRAPH_NEIGHBOURS = 10
#: Share of the spectral affinity that comes from the neighbour links (the rest: centroid cosine).
GRAPH_SHARE = 0.5
#: The centroid cosine is raised to this power, so only close centroids count as similar.
COSINE_POWER = 8
METHODS = ("spectral", "kmeans", "ward")


def level_sizes(
    n: int, levels: int | None = None, max_top: int | None = None, branching: float = 15.0, min_ratio: float = MIN_RATIO
) -> list[int]:
    """Target number of clusters for each parent level above n base clusters.

    Default (neither given): shrink by the same ratio r in [3, branching] per level, using as few
    levels as reach at most 10 top clusters. ``max_top`` changes that 10; ``levels`` fixes the
    number of levels (ratio ``branching`` or what reaches ``max_top``). Counts below 2 are dropped.
    ``min_ratio``: each level shrinks at least this much (the LLM hierarchy passes 1.0, so its
    top level is exactly ``max_top``). The one home for level sizes (offline and LLM hierarchies).

    >>> level_sizes(114), level_sizes(400), level_sizes(8), level_sizes(114, levels=1)
    ([10], [63, 10], [], [8])
    >>> level_sizes(114, max_top=3)
    [18, 3]
    """
    if n <= 2:
        return []
    top = max_top if max_top is not None else 10
    if levels is None:
        if n <= top:
            return []
        needed = max(1, math.ceil(math.log(n / top) / math.log(max(branching, min_ratio, 1.5))))
        ratio = max(min_ratio, (n / top) ** (1.0 / needed))
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


def _ward_cost(mu: np.ndarray, w: np.ndarray, i: int) -> np.ndarray:
    d2 = ((mu - mu[i]) ** 2).sum(axis=1)
    return w * w[i] / (w + w[i]) * d2


def _merge_singletons(groups: list[list[int]], means: np.ndarray, weights: np.ndarray) -> list[list[int]]:
    """Each single-member group joins the multi-member group that is cheapest to merge with (Ward cost)."""
    means = np.asarray(means, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    multi = [list(g) for g in groups if len(g) > 1]
    singles = [g[0] for g in groups if len(g) == 1]
    if not multi:
        return sorted((sorted(g) for g in groups), key=lambda ids: ids[0])
    for i in singles:
        best, best_cost = 0, np.inf
        for number, group in enumerate(multi):
            w = weights[group].sum()
            mu = (means[group] * weights[group, None]).sum(axis=0) / w
            cost = w * weights[i] / (w + weights[i]) * float(((mu - means[i]) ** 2).sum())
            if cost < best_cost:
                best, best_cost = number, cost
        multi[best].append(i)
    return sorted((sorted(g) for g in multi), key=lambda ids: ids[0])


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
    cost = np.full((m, m), np.inf)
    for i in range(m):
        cost[i] = _ward_cost(mu, w, i)
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
        row = _ward_cost(mu, w, a)
        row[~active] = np.inf
        row[a] = np.inf
        cost[a, :] = row
        cost[:, a] = row
        groups -= 1
    return _merge_singletons(list(members.values()), means, weights)


def kmeans_groups(means: np.ndarray, weights: np.ndarray, n_groups: int, seed: int = 0) -> list[list[int]]:
    """Partition m weighted points into at most n_groups with size-weighted k-means; no singletons.

    Each point is a cluster centroid weighted by its number of conversations; k-means (10
    seeded restarts) minimises the same within-group variance Ward approximates greedily.
    Singletons then join their cheapest group. Same ordering as ``ward_groups``.

    >>> means = np.array([[0.0], [0.1], [5.0], [5.2], [9.0]])
    >>> kmeans_groups(means, np.ones(5), 2)
    [[0, 1], [2, 3, 4]]
    """
    from sklearn.cluster import KMeans

    points = np.asarray(means, dtype=np.float64)
    k = max(1, min(n_groups, len(np.unique(points, axis=0))))
    if k == 1:
        return [list(range(len(points)))]
    labels = KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(points, sample_weight=np.asarray(weights, dtype=np.float64))
    groups = [np.flatnonzero(labels == j).tolist() for j in range(k) if (labels == j).any()]
    return _merge_singletons(groups, means, weights)


def neighbour_links(
    embeddings: np.ndarray,
    cluster_of_row: np.ndarray,
    n_clusters: int,
    neighbours: int = GRAPH_NEIGHBOURS,
    max_rows: int = GRAPH_ROWS,
    within: bool = False,
) -> np.ndarray:
    """(m, m) symmetric counts of rows whose nearest neighbours lie in another cluster.

    ``embeddings`` (n, dim) unit vectors, ``cluster_of_row`` (n,) the cluster of each row (-1: in
    none, such as noise; those rows link nothing). At most ``max_rows`` evenly spaced rows are
    used, neighbours found among them. Entry (a, b) counts the pairs (row of a, one of its
    ``neighbours`` nearest rows in b) plus the reverse; the diagonal is 0 unless ``within`` (then
    it counts the pairs inside each cluster, twice, as a graph's self-loops).

    >>> points = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99]], dtype=np.float32)
    >>> neighbour_links(points, np.array([0, 1, 2, 2]), 3, neighbours=1).tolist()
    [[0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    labels = np.asarray(cluster_of_row, dtype=np.int64)
    kept = np.flatnonzero(labels >= 0)
    kept = kept[evenly_spaced(len(kept), max_rows)] if len(kept) > max_rows else kept
    links = np.zeros((n_clusters, n_clusters))
    if len(kept) < 2:
        return links
    sample = np.asarray(embeddings, dtype=np.float32)[kept]
    near, _ = nearest_neighbours(sample, sample, min(neighbours, len(kept) - 1), exclude_self=True)
    own = labels[kept]
    np.add.at(links, (np.repeat(own, near.shape[1]), own[near].ravel()), 1.0)
    links = links + links.T
    if not within:
        np.fill_diagonal(links, 0.0)
    return links


def spectral_groups(
    means: np.ndarray,
    weights: np.ndarray,
    links: np.ndarray,
    n_groups: int,
    seed: int = 0,
    graph_share: float = GRAPH_SHARE,
    power: float = COSINE_POWER,
) -> list[list[int]]:
    """Partition m clusters into at most n_groups by their centroids and their neighbour links.

    ``means`` (m, dim) the clusters' mean embeddings, ``weights`` (m,) their sizes, ``links``
    (m, m) from ``neighbour_links``. The affinity of two clusters is ``graph_share`` times their
    links (normalised by both clusters' total links, then by the largest) plus the rest times the
    cosine of their centroids (clipped at 0) to the ``power``. The clusters are placed in the
    first n_groups eigenvectors of that affinity's normalised Laplacian (a spectral embedding,
    rows scaled to unit length) and partitioned there by size-weighted k-means (``kmeans_groups``),
    so singletons join a group. Links let clusters that border each other in the data join;
    without links (m clusters that share no neighbours) it is a grouping of the centroids.

    >>> means = np.array([[1.0, 0.0], [0.98, 0.2], [0.0, 1.0], [0.2, 0.98], [0.1, 0.99]])
    >>> spectral_groups(means, np.ones(5), np.zeros((5, 5)), 2)
    [[0, 1], [2, 3, 4]]
    """
    from sklearn.manifold import spectral_embedding

    points = np.asarray(means, dtype=np.float64)
    m = len(points)
    k = max(1, min(n_groups, m - 1))
    if k == 1 or m < 3:
        return [list(range(m))]
    unit = points / np.clip(np.linalg.norm(points, axis=1, keepdims=True), 1e-12, None)
    affinity = (1.0 - graph_share) * np.clip(unit @ unit.T, 0.0, None) ** power
    links = np.asarray(links, dtype=np.float64)
    totals = links.sum(axis=1)
    if graph_share > 0 and totals.sum() > 0:
        linked = links / np.sqrt(np.outer(totals, totals).clip(1e-12, None))
        affinity = affinity + graph_share * linked / max(float(linked.max()), 1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "graph is not fully connected": still embedded per component
        placed = spectral_embedding(affinity, n_components=k, drop_first=False, norm_laplacian=True, random_state=seed)
    placed = placed / np.clip(np.linalg.norm(placed, axis=1, keepdims=True), 1e-12, None)
    return kmeans_groups(placed, weights, k, seed=seed)


def split_oversized(
    groups: list[list[int]],
    means: np.ndarray,
    weights: np.ndarray,
    max_share: float = MAX_PARENT_SHARE,
    one_topic: float = ONE_TOPIC_COHERENCE,
    seed: int = 0,
    max_groups: int | None = None,
) -> list[list[int]]:
    """Split every group above ``max_share`` of the total weight in two, until none is (or can be).

    ``means`` (m, dim) are the members' mean embeddings (not re-normalised) and ``weights`` (m,)
    their sizes, so the weighted mean of a group's means is the mean of its points' unit
    vectors; its length (the mean resultant length, 1 = all points identical) says how much
    the group is about one thing. A group is left whole when that length is at least
    ``one_topic`` (the data really is one topic), when it has fewer than 4 members (each half
    keeps 2), or when a split would give more than ``max_groups`` groups. Halves come from
    size-weighted k-means (``kmeans_groups``). Returns sorted lists, ordered by first index.

    >>> means = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.7, 0.7]])
    >>> split_oversized([[0, 1, 2, 3], [4]], means, np.array([5.0, 5, 5, 5, 1]))
    [[0, 1], [2, 3], [4]]
    """
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    total = float(weights.sum())
    done: list[list[int]] = []
    todo = [sorted(g) for g in groups]
    while todo:
        group = todo.pop()
        w = weights[group]
        too_big = total > 0 and w.sum() / total > max_share and len(group) >= 4
        if too_big:
            coherence = float(np.linalg.norm((means[group] * w[:, None]).sum(axis=0)) / w.sum())
            too_big = coherence < one_topic
        if not too_big or (max_groups is not None and len(done) + len(todo) + 2 > max_groups):
            done.append(group)
            continue
        todo.extend([[group[i] for i in half] for half in _bisect(means[group], w, seed)])
    return sorted((sorted(g) for g in done), key=lambda ids: ids[0])


def _bisect(means: np.ndarray, weights: np.ndarray, seed: int) -> list[list[int]]:
    """Two halves of m >= 4 weighted points, each of at least 2: 2-means, else a cut along the main axis."""
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=2, random_state=seed, n_init=10).fit_predict(means, sample_weight=weights)
    if min((labels == 0).sum(), (labels == 1).sum()) < 2:
        centred = means - (means * weights[:, None]).sum(axis=0) / weights.sum()
        axis = np.linalg.svd(centred * np.sqrt(weights)[:, None], full_matrices=False)[2][0]
        order = np.argsort(centred @ axis, kind="stable")
        half = int(np.searchsorted(np.cumsum(weights[order]), weights.sum() / 2))
        half = min(max(half, 2), len(order) - 2)
        labels = np.zeros(len(means), dtype=np.int64)
        labels[order[half:]] = 1
    return [np.flatnonzero(labels == j).tolist() for j in (0, 1)]


def group_clusters(
    means: np.ndarray,
    weights: np.ndarray,
    n_groups: int,
    method: str = "spectral",
    links: np.ndarray | None = None,
    seed: int = 0,
    max_share: float = MAX_PARENT_SHARE,
    max_groups: int | None = None,
) -> list[list[int]]:
    """One level of the hierarchy: m clusters into about n_groups parents, none over ``max_share``.

    ``means`` (m, dim) and ``weights`` (m,) as in ``kmeans_groups``; ``links`` (m, m) from
    ``neighbour_links`` (used by ``method="spectral"`` only; None: no links). Groups come from
    ``spectral_groups``, ``kmeans_groups`` or ``ward_groups``, then ``split_oversized`` (unless
    ``max_share`` is 1.0; ``max_groups`` caps how many the splits may make). What
    ``AgglomerativeHierarchy`` does at each level, and what the benchmarks measure.

    >>> means = np.array([[1.0, 0.0], [0.98, 0.2], [0.0, 1.0], [0.2, 0.98]])
    >>> group_clusters(means, np.ones(4), 2)
    [[0, 1], [2, 3]]
    """
    if method == "ward":
        groups = ward_groups(means, weights, n_groups)
    elif method == "spectral":
        links = np.zeros((len(means), len(means))) if links is None else links
        groups = spectral_groups(means, weights, links, n_groups, seed=seed)
    elif method == "kmeans":
        groups = kmeans_groups(means, weights, n_groups, seed=seed)
    else:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if max_share < 1.0:
        groups = split_oversized(groups, means, weights, max_share, seed=seed, max_groups=max_groups)
    return groups


class AgglomerativeHierarchy:
    """Offline hierarchy builder (protocols.HierarchyBuilder): bottom-up grouping of base centroids.

    Args:
        namer: a protocols.TopicNamer used to name each level's parents.
        levels: number of parent levels (None: as few as reach ``max_top``).
        max_top: most top-level topics (None: 10 unless ``levels`` is given).
        branching: largest shrink factor between two levels.
        seed: seed of the k-means grouping (same seed and input -> same tree).
        method: "spectral" (default: centroids and neighbour links, ``spectral_groups``), "kmeans"
            (size-weighted k-means of the centroids) or "ward" (greedy weighted Ward).
        max_share: a parent above this share of the conversations is split in two, unless its
            children are one topic (``split_oversized``); 1.0 turns this off.

    ``build(base, corpus) -> list[Cluster]``: the base clusters (copies, ``parent_id`` set)
    followed by the parents, level by level.
    """

    def __init__(
        self,
        namer: Any,
        levels: int | None = None,
        max_top: int | None = None,
        branching: float = 15.0,
        seed: int = 0,
        method: str = "spectral",
        max_share: float = MAX_PARENT_SHARE,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        if levels is not None and levels < 0:
            raise ValueError("levels must be >= 0")
        if max_top is not None and max_top < 1:
            raise ValueError("max_top must be >= 1")
        self.namer = namer
        self.levels = levels
        self.max_top = max_top
        self.branching = branching
        self.seed = seed
        self.method = method
        self.max_share = max_share

    @property
    def name(self) -> str:
        return f"agglomerative-{self.method}"

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
        links = np.zeros((0, 0))
        if self.method == "spectral" and sizes:
            cluster_of_row = np.full(len(embeddings), -1, dtype=np.int64)
            for number, topic in enumerate(current):
                cluster_of_row[member_index[topic.id]] = number
            links = neighbour_links(embeddings, cluster_of_row, len(current))
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
            last = level == len(sizes)
            cap = self.max_top if last and self.max_top is not None else len(current) - 1
            groups = group_clusters(means, weights, target, self.method, links, self.seed, self.max_share, cap)
            if len(groups) >= len(current):
                break
            if len(groups) < 2:
                break
            groups.sort(key=lambda g: (-sum(weights[i] for i in g), g[0]))
            if self.method == "spectral":  # the next level links the groups by their members' links
                to_group = np.zeros((len(current), len(groups)))
                for number, group in enumerate(groups):
                    to_group[group, number] = 1.0
                links = to_group.T @ links @ to_group
                np.fill_diagonal(links, 0.0)
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
                    name=name_apart_from_children(topic.name, topic.keyphrases, [c.name for c in draft.children]),
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
            top_noise = noise_cluster(
                [m for c in noise for m in c.member_ids],
                level=top_level,
                id=NOISE_TOP_ID,
                description="Conversations no topic was dense enough to take in; not a topic.",
            )
            for c in noise:
                c.parent_id = top_noise.id
            parents.append(top_noise)

        result = nodes + parents
        _deduplicate_siblings(result)
        return result


def name_apart_from_children(name: str, keyphrases: Sequence[str], child_names: Sequence[str]) -> str:
    """A parent's name that no child already carries (a parent "Table" over a child "Table" tells
    a reader nothing): the name itself when no child carries it, else the name followed by "and
    related" (", and related" after a name that already joins two things with "and"). The namer
    chose that phrase as what the children share; the parent's next keyphrase is usually one
    child's own subject ("Requested a refund" over the payments, "Spider-Man" over the films),
    which names the parent after one child. A "Mixed: ..." name that a child carries gives way to
    its next keyphrase that no child carries. Whatever a child still carries gets a number.

    >>> name_apart_from_children("Train", ["train", "ID"], ["Train", "Train ID and the travel time"])
    'Train and related'
    >>> name_apart_from_children("Thanks and goodbyes", [], ["Thanks and goodbyes", "Thanks"])
    'Thanks and goodbyes, and related'
    >>> name_apart_from_children("Train", [], ["Train", "Train and related"])
    'Train and related (2)'
    >>> name_apart_from_children("Tables and charts", [], ["Table"])
    'Tables and charts'
    >>> name_apart_from_children("Mixed: Bye, evening", ["Bye", "evening"], ["Mixed: Bye, evening", "Goodbye"])
    'Bye'
    """
    taken = {child.strip().casefold() for child in child_names}
    if name.strip().casefold() not in taken:
        return name
    candidate = None
    if name.startswith(MIXED_PREFIX):
        candidate = next((capitalise(p.strip()) for p in keyphrases if p.strip() and p.strip().casefold() not in taken), None)
    if candidate is None:
        candidate = f"{name}, and related" if " and " in name else f"{name} and related"
    numbered, number = candidate, 2
    while numbered.casefold() in taken:
        numbered, number = f"{candidate} ({number})", number + 1
    return numbered


def _deduplicate_siblings(clusters: list[Cluster]) -> None:
    """Rename in place so no two non-noise clusters with the same parent share a name."""
    families: dict[tuple[str | None, int], list[Cluster]] = {}
    for cluster in clusters:
        if cluster.is_noise:
            continue
        key = (cluster.parent_id, cluster.level if cluster.parent_id is None else -1)
        families.setdefault(key, []).append(cluster)
    for family in families.values():
        # keyphrases[0] is the phrase the name was made from; the next ones tell siblings apart
        names = deduplicate_names([c.name for c in family], [c.keyphrases[1:] for c in family])
        for cluster, name in zip(family, names):
            cluster.name = name
