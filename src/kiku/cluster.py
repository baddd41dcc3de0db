"""Group embeddings into base clusters: k-means with a data-chosen k (default) or UMAP + HDBSCAN.

Both clusterers implement ``kiku.protocols.Clusterer``: ``fit_predict(embeddings (n, dim)) ->
labels (n,) int64``. Labels are relabelled deterministically by cluster size (largest = 0, ties by
first member), so the same input and seed always give the same ids. HDBSCAN's noise keeps the
label ``-1``: the pipeline turns it into an explicit "Unclustered" bucket that is reported and
never named as a topic.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> points = np.concatenate([rng.normal(0, 0.05, (20, 8)) + 1, rng.normal(0, 0.05, (10, 8)) - 1])
    >>> KMeansClusterer(n_clusters=2).fit_predict(points)[[0, 25]].tolist()
    [0, 1]

The automatic number of clusters (``choose_granularity``) reads the data: over-cluster a sample
with k-means, merge the micro-clusters with complete linkage until two parts of a cluster would
be more than ``MERGE_DISTANCE`` (cosine) apart, and let k-means over all rows refine the result.

Bounded at scale: above ``FIT_SAMPLE_SIZE`` rows (100,000) k-means is fitted on a seeded sample of
that many rows and every row is then given its nearest centre by :func:`assign_to_centroids`
(chunked, pure, so it can be spread over workers: ``KMeansClusterer.predict`` is exactly that).
Up to the threshold nothing changes. The fitted centres are kept (``cluster_centers_``,
row j = label j), sklearn-style: ``fit(sample)`` then ``predict(chunk)`` per chunk.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiku.vectors import evenly_spaced, nearest_neighbours, without_directions

#: choose_k's rule: k = round(K_PER_SQRT_N * sqrt(n)), bounded to [K_MIN, K_MAX] (see choose_k).
K_PER_SQRT_N = 1.0
K_MIN = 2
K_MAX = 400

#: Automatic granularity (``choose_granularity``): complete-linkage cut over k-means micro-clusters.
#: Chosen on all sets of benchmarks/quality_suite.py (see benchmarks/results/quality_suite.md).
MERGE_DISTANCE = 0.45
MERGE_LINKAGE = "complete"
#: Islands (``island_groups``): groups of that cut are merged into a branch of the tree whose merges
#: stay within ISLAND_NOISE_RATIO x the noise of its rows, when of the nearest neighbours
#: (ISLAND_NEIGHBOURS per row) that leave a row's group, the share that also leaves the branch is at
#: most ISLAND_LEAK_RATIO x the share that would by chance (the rest of the sample's share of it).
#: Chosen on all sets of the quality suite (benchmarks/results/granularity_branches.md).
ISLAND_NOISE_RATIO = 3.5
ISLAND_LEAK_RATIO = 0.45
ISLAND_NEIGHBOURS = 10
#: ... and at least ISLAND_MIN_LEAK of them leave the row's group: groups already apart stay apart.
#: 0.15 since 4 December 2026 (was 0.25): over nine samples and seeds per set
#: (benchmarks/results/granularity_stability.md) BBC News NMI 0.678 -> 0.712, ARI 0.543 -> 0.620, the
#: other sets within 0.002; synthetic sub-topics that stand apart stay apart down to 0.05.
ISLAND_MIN_LEAK = 0.15
#: Below this many sample rows a row's 10 neighbours are 5% or more of the data and any branch
#: looks like an island, so small inputs keep the cut.
ISLAND_MIN_ROWS = 200
GRANULARITY_SAMPLE = 4000
POINTS_PER_MICRO_CLUSTER = 12
MICRO_CLUSTERS_MAX = 400
#: Above this many rows k-means is fitted on a seeded sample of this many, then all rows assigned.
FIT_SAMPLE_SIZE = 100_000
#: Rows per block in assign_to_centroids: (block, k) float32 scores at a time.
ASSIGN_BATCH = 16_384


def choose_k(n: int) -> int:
    """The old size-only rule, ``round(sqrt(n))`` within [2, 400]; kept for comparison.

    kiku's default no longer uses it (``choose_granularity`` reads the data instead): the
    number of topics does not grow with the number of rows, and sqrt(n) fitted BANKING77 only
    by coincidence. Never more than n.

    >>> choose_k(13_083), choose_k(100), choose_k(3), choose_k(1_000_000)
    (114, 10, 2, 400)
    """
    if n <= 0:
        return 0
    k = int(round(K_PER_SQRT_N * math.sqrt(n)))
    return int(min(n, max(K_MIN, min(K_MAX, k))))


def choose_granularity(
    embeddings: np.ndarray,
    merge_distance: float = MERGE_DISTANCE,
    sample_size: int = GRANULARITY_SAMPLE,
    seed: int = 0,
    k_max: int = K_MAX,
    merge_islands: bool = True,
) -> tuple[int, np.ndarray]:
    """How many base clusters the data holds, and where they are: ``(k, centres (k, dim))``.

    Over-cluster a seeded sample of at most ``sample_size`` rows with k-means into micro-clusters
    of about ``POINTS_PER_MICRO_CLUSTER`` points (at least 2 sqrt(rows) of them, so small inputs still
    split, at most
    ``MICRO_CLUSTERS_MAX``), then merge their unit centroids bottom-up with
    complete linkage on cosine distance, stopping before any group would hold two micro-clusters
    more than ``merge_distance`` apart. So a base cluster never spans two parts further apart
    than that, however many rows there are: the number of clusters follows how spread the data
    is, not its size. With ``merge_islands`` (default) those groups are then merged into a
    larger branch of the tree where the branch is an island of the data (``island_groups``:
    broad topics of long, noisy texts, such as a newspaper's sections, are not cut into their
    sub-topics when nothing but the sub-topics' own spread separates them). The centres (unit
    means of the groups over the sample) seed the final k-means. k is within [1, min(k_max,
    distinct rows)].

    Args:
        embeddings: (n, dim) unit vectors.
        merge_distance: largest cosine distance between two parts of one cluster.
        sample_size: rows the choice is made on (seeded sample when n is larger).
        seed: seed of the sample and of the micro-cluster k-means.
        k_max: most clusters returned.
        merge_islands: merge groups into island branches (``island_groups``).

    >>> rng = np.random.default_rng(0)
    >>> axes = np.eye(6, dtype=np.float32)
    >>> points = np.concatenate([axes[i] + rng.normal(0, 0.05, (30, 6)) for i in range(6)]).astype(np.float32)
    >>> points /= np.linalg.norm(points, axis=1, keepdims=True)
    >>> k, centres = choose_granularity(points)
    >>> k, centres.shape
    (6, (6, 6))
    """
    array = _check(embeddings)
    n = array.shape[0]
    if n == 0:
        return 0, np.zeros((0, array.shape[1] if array.ndim == 2 else 0), dtype=np.float32)
    sample = granularity_sample(array, sample_size, seed)
    micro_labels, means, tree = micro_cluster_tree(sample, seed)
    if tree is None:
        return 1, means
    from scipy.cluster.hierarchy import fcluster

    if merge_islands:
        groups = island_groups(MicroTree.build(sample, micro_labels, tree), sample, micro_labels, merge_distance)
    else:
        groups = fcluster(tree, t=merge_distance, criterion="distance")
    if len(set(groups.tolist())) > k_max:
        groups = fcluster(tree, t=k_max, criterion="maxclust")
    return group_centres(sample, groups[micro_labels])


def granularity_sample(embeddings: np.ndarray, sample_size: int = GRANULARITY_SAMPLE, seed: int = 0) -> np.ndarray:
    """The rows choose_granularity reads: all of ``embeddings`` (n, dim) up to ``sample_size``
    rows, else a seeded sample of that many in their original order, (sample_size, dim).

    >>> granularity_sample(np.arange(10.0).reshape(5, 2), sample_size=3).shape
    (3, 2)
    """
    n = len(embeddings)
    if n <= sample_size:
        return embeddings
    return embeddings[np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))]


def group_centres(sample: np.ndarray, point_groups: np.ndarray) -> tuple[int, np.ndarray]:
    """``(k, centres (k, dim))``: the unit mean of each group of ``sample`` rows, groups in sorted order.

    ``point_groups`` (n,) holds any group id per row of ``sample`` (n, dim).

    >>> k, centres = group_centres(np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]), np.array([7, 2, 7]))
    >>> k, centres.tolist()
    (2, [[0.0, 1.0], [1.0, 0.0]])
    """
    order = np.unique(point_groups)
    return len(order), _unit(np.stack([sample[point_groups == g].mean(axis=0) for g in order]))


def micro_cluster_tree(sample: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """choose_granularity's first step: k-means micro-clusters of a sample and their merge tree.

    ``sample`` (n, dim) is over-clustered into micro-clusters of about ``POINTS_PER_MICRO_CLUSTER``
    rows (at least 2 sqrt(n), at most ``MICRO_CLUSTERS_MAX`` and the distinct rows), whose unit
    centroids are merged bottom-up with ``MERGE_LINKAGE`` linkage on cosine distance. Returns
    ``(micro label per row (n,) in [0, m), unit means (m, dim), scipy linkage (m - 1, 4))``; the
    linkage is None when there is a single micro-cluster (then ``means`` is the sample's mean).

    >>> rng = np.random.default_rng(0)
    >>> points = np.concatenate([np.eye(4)[i] + rng.normal(0, 0.05, (30, 4)) for i in range(4)])
    >>> labels, means, tree = micro_cluster_tree(points.astype(np.float32))
    >>> labels.shape, means.shape[0] == tree.shape[0] + 1
    ((120,), True)
    """
    distinct = np.unique(sample, axis=0)
    per_micro = max(len(sample) // POINTS_PER_MICRO_CLUSTER, math.ceil(2 * math.sqrt(len(sample))))
    micro = int(min(MICRO_CLUSTERS_MAX, len(distinct), per_micro))
    if micro <= 1:
        return np.zeros(len(sample), dtype=np.int64), _unit(sample.mean(axis=0, keepdims=True)), None
    from scipy.cluster.hierarchy import linkage
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=micro, random_state=seed, n_init=1, max_iter=50).fit(sample)
    used, micro_labels = np.unique(model.labels_, return_inverse=True)
    means = _unit(np.stack([sample[micro_labels == j].mean(axis=0) for j in range(len(used))]))
    if len(used) == 1:
        return micro_labels.astype(np.int64), means, None
    return micro_labels.astype(np.int64), means, linkage(means.astype(np.float64), method=MERGE_LINKAGE, metric="cosine")


@dataclass
class MicroTree:
    """``micro_cluster_tree``'s merge tree with what a rule that cuts it branch by branch reads.

    scipy node numbering: leaves 0..m-1 are the micro-clusters, node m + j is the j-th merge.
    ``kids[x] = (a, b)`` for merges; per node, leaves too, arrays of 2m - 1: ``height`` (merge
    distance, 0 for leaves), ``rows`` (sample rows under it), ``spread`` (mean cosine distance of
    its rows to their unit centroid), ``noise`` (mean over its rows of their micro-cluster's
    spread); ``centre`` (2m - 1, dim) the nodes' unit centroids.

    >>> rng = np.random.default_rng(0)
    >>> points = np.concatenate([np.eye(4)[i] + rng.normal(0, 0.05, (30, 4)) for i in range(4)]).astype(np.float32)
    >>> labels, _, links = micro_cluster_tree(points)
    >>> tree = MicroTree.build(points, labels, links)
    >>> int(tree.rows[tree.root]), len(tree.leaves(tree.root)) == tree.m
    (120, True)
    """

    m: int
    kids: dict[int, tuple[int, int]]
    height: np.ndarray
    rows: np.ndarray
    spread: np.ndarray
    centre: np.ndarray
    noise: np.ndarray

    @classmethod
    def build(cls, sample: np.ndarray, micro_labels: np.ndarray, linkage_matrix: np.ndarray) -> MicroTree:
        """From the sample (n, dim), each row's micro-cluster (n,) and the scipy linkage (m - 1, 4)."""
        m = linkage_matrix.shape[0] + 1
        total = 2 * m - 1
        sums = np.zeros((total, sample.shape[1]), dtype=np.float64)
        np.add.at(sums, micro_labels, sample.astype(np.float64))
        rows = np.zeros(total)
        rows[:m] = np.bincount(micro_labels, minlength=m)
        noise_mass = np.zeros(total)
        noise_mass[:m] = (1.0 - np.linalg.norm(sums[:m], axis=1) / np.maximum(rows[:m], 1)) * rows[:m]
        kids: dict[int, tuple[int, int]] = {}
        height = np.zeros(total)
        for j, (a, b, h, _) in enumerate(linkage_matrix):
            x, left, right = m + j, int(a), int(b)
            kids[x], height[x] = (left, right), float(h)
            sums[x], rows[x] = sums[left] + sums[right], rows[left] + rows[right]
            noise_mass[x] = noise_mass[left] + noise_mass[right]
        norms = np.linalg.norm(sums, axis=1)
        return cls(m, kids, height, rows, 1.0 - norms / np.maximum(rows, 1), sums / np.maximum(norms, 1e-12)[:, None],
                   noise_mass / np.maximum(rows, 1))

    @property
    def root(self) -> int:
        return 2 * self.m - 2

    def leaves(self, x: int) -> list[int]:
        """The micro-clusters under node ``x``."""
        out, stack = [], [x]
        while stack:
            y = stack.pop()
            if y < self.m:
                out.append(y)
            else:
                stack.extend(self.kids[y])
        return out

    def maximal(self, whole: Callable[[int], bool]) -> np.ndarray:
        """A group per micro-cluster (m,): the largest subtrees all of whose merges pass ``whole(node)``."""
        good = np.ones(2 * self.m - 1, dtype=bool)
        for x in range(self.m, 2 * self.m - 1):
            a, b = self.kids[x]
            good[x] = good[a] and good[b] and whole(x)
        groups, stack = np.full(self.m, -1), [self.root]
        while stack:
            x = stack.pop()
            if good[x]:
                groups[self.leaves(x)] = groups.max() + 1
            else:
                stack.extend(self.kids[x])
        return groups


def island_groups(
    tree: MicroTree,
    sample: np.ndarray,
    micro_labels: np.ndarray,
    merge_distance: float = MERGE_DISTANCE,
    noise_ratio: float = ISLAND_NOISE_RATIO,
    leak_ratio: float = ISLAND_LEAK_RATIO,
    min_leak: float = ISLAND_MIN_LEAK,
    neighbours: int = ISLAND_NEIGHBOURS,
) -> np.ndarray:
    """A group per micro-cluster (m,): the tree cut at ``merge_distance``, with island branches merged.

    The cut's groups (no two parts further apart than ``merge_distance``) are the fine
    answer. A branch above them may be merged into one group only when (1) every merge in it
    stays within ``noise_ratio`` x the noise of its rows (the mean distance of a row to its
    micro-cluster's centroid: long, noisy texts allow a looser branch than tight intents), and
    (2) it is an island: of the ``neighbours`` nearest sample rows of each of its rows that fall
    outside the row's fine group, the share that falls outside the branch too is at most
    ``leak_ratio`` x the share of the other rows outside it (what chance would give; so the
    whole sample, which nothing can leave, is never an island), and (3)
    its fine groups are not apart: at least ``min_leak`` of those neighbours fall outside the
    row's fine group. Branches are tried from the largest such down, so a failing branch is
    tried again as its two halves. Samples under ``ISLAND_MIN_ROWS`` rows keep the cut.
    Sub-topics of one broad section (their neighbours cross between them but stay in the
    section) merge; a smooth continuum (neighbours leak everywhere) keeps the fine groups.

    ``sample`` (n, dim) are the unit rows the tree was built from, ``micro_labels`` (n,) their
    micro-clusters.

    >>> rng = np.random.default_rng(0)
    >>> points = np.concatenate([np.eye(4)[i] + rng.normal(0, 0.05, (30, 4)) for i in range(4)]).astype(np.float32)
    >>> points /= np.linalg.norm(points, axis=1, keepdims=True)
    >>> labels, _, links = micro_cluster_tree(points)
    >>> len(set(island_groups(MicroTree.build(points, labels, links), points, labels).tolist()))
    4
    """
    fine = tree.maximal(lambda x: tree.height[x] <= merge_distance)
    if len(sample) < ISLAND_MIN_ROWS:
        return fine
    loose = tree.maximal(lambda x: tree.height[x] <= max(merge_distance, noise_ratio * tree.noise[x]))
    if len(set(loose.tolist())) == len(set(fine.tolist())):
        return fine  # no branch could merge: nothing to test
    row_fine = fine[micro_labels]
    near, _ = nearest_neighbours(sample, sample, neighbours, exclude_self=True)

    def is_island(leaves: list[int]) -> bool:
        under = np.zeros(tree.m, dtype=bool)
        under[leaves] = True
        inside = under[micro_labels]
        held = near[inside]
        if not held.size:
            return False
        leave_group = float((row_fine[held] != row_fine[inside][:, None]).mean())
        leave_branch = float((~inside[held]).mean())
        outside = 1.0 - (inside.sum() - 1) / max(1, len(sample) - 1)  # what leaves the branch by chance
        return outside > 0 and leave_group >= min_leak and leave_branch <= leak_ratio * leave_group * outside

    groups = np.full(tree.m, -1)
    stack = [tree.root]
    while stack:
        x = stack.pop()
        leaves = tree.leaves(x)
        if len(set(loose[leaves].tolist())) > 1:  # above the loosest branch allowed
            stack.extend(tree.kids[x])
            continue
        if x >= tree.m and tree.height[x] > merge_distance and not is_island(leaves):
            stack.extend(tree.kids[x])
            continue
        groups[leaves] = groups.max() + 1
    return groups


def without_corpus_name(
    vectors: np.ndarray, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]
) -> tuple[np.ndarray, list[str]]:
    """The vectors to cluster: ``vectors`` (n, dim) with the corpus' own name projected out.

    In a product's own logs, how a question spells the product ("Weights & Biases", "wandb",
    "WandB") moves its embedding more than what it asks, so k-means groups the questions by
    spelling: on the bundled W&B example three "Mixed" clusters of 57-93 questions each. The
    words of the name (``kiku.naming.corpus_name_words``: held by 15%+ of the texts, written as
    a name) are embedded with ``embed`` and their directions removed (``without_directions``).
    Returns ``(vectors, words)``; with no such word the vectors come back unchanged and words
    is empty. On the example, NMI against the documents that answer the questions rose from
    0.60 to 0.66 and ARI from 0.11 to 0.18 (benchmarks/results/quality_suite.md, "wandb-docs").

    >>> rows = np.eye(3, dtype=np.float32)
    >>> vectors, words = without_corpus_name(rows, ["a card", "a top up", "a refund"], lambda w: np.ones((len(w), 3)))
    >>> words, bool((vectors == rows).all())
    ([], True)
    """
    from kiku.naming import corpus_name_words

    words = corpus_name_words(texts)
    if not words:
        return vectors, []
    return without_directions(vectors, np.asarray(embed(words), dtype=np.float32)), words


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def assign_to_centroids(vectors: np.ndarray, centroids: np.ndarray, batch: int = ASSIGN_BATCH) -> np.ndarray:
    """Index of each vector's nearest centroid (squared Euclidean, k-means' own rule): (n, d), (k, d) -> (n,) int64.

    Computed in blocks of ``batch`` rows as ``argmax(2 x.c - |c|^2)``, so memory is (batch, k)
    whatever n is, and any split of the rows into chunks gives the same labels as one call
    (ties go to the lowest index). For unit-norm centroids this is the nearest by cosine.

    >>> assign_to_centroids(np.array([[1.0, 0.1], [0.0, 2.0], [0.9, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])).tolist()
    [0, 1, 0]
    """
    array = np.asarray(vectors, dtype=np.float32)
    centres = np.asarray(centroids, dtype=np.float32)
    if array.ndim != 2 or centres.ndim != 2 or (len(centres) and array.shape[1] != centres.shape[1]):
        raise ValueError(f"vectors (n, d) and centroids (k, d) must share d, got {array.shape} and {centres.shape}")
    if len(centres) == 0:
        raise ValueError("no centroids to assign to")
    out = np.empty(len(array), dtype=np.int64)
    twice = 2.0 * centres.T
    offsets = (centres.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    for start in range(0, len(array), max(1, batch)):
        scores = array[start : start + batch] @ twice
        scores -= offsets
        out[start : start + batch] = scores.argmax(axis=1)
    return out


#: ``assign(vectors (n, d), centroids (k, d)) -> labels (n,)``: what labels all rows after a fit on a sample.
Assigner = Callable[[np.ndarray, np.ndarray], np.ndarray]


class AssignChunk:
    """The chunk function (``kiku.engine``) of the cluster assignment: a chunk of
    ``embeddings.parquet`` rows (its ``embedding`` column) -> ``label`` (int64), the nearest of
    ``centroids`` by :func:`assign_to_centroids`, so any split of the rows gives the same labels.

    >>> import pyarrow as pa
    >>> chunk = pa.table({"embedding": pa.array([[1.0, 0.1], [0.0, 2.0]], pa.list_(pa.float32(), 2))})
    >>> AssignChunk(np.eye(2, dtype=np.float32))(chunk).column("label").to_pylist()
    [0, 1]
    """

    def __init__(self, centroids: np.ndarray) -> None:
        self.centroids = np.asarray(centroids, dtype=np.float32)

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(np.ascontiguousarray(self.centroids).tobytes()).hexdigest()

    def __call__(self, table: Any, progress: Callable[[int], None] | None = None) -> Any:
        import pyarrow as pa

        from kiku.vectors import vectors_from_arrow

        vectors = vectors_from_arrow(table.column("embedding"), table.num_rows, self.centroids.shape[1])
        labels = assign_to_centroids(vectors, self.centroids)
        if progress is not None:
            progress(table.num_rows)
        return pa.table({"label": pa.array(labels, pa.int64())})


def assign_with_engine(engine: Any, vectors: np.ndarray, centroids: np.ndarray, chunk_rows: int) -> np.ndarray:
    """:func:`assign_to_centroids` run by ``engine`` (a ``kiku.engine.Engine``) over chunks of
    ``chunk_rows`` rows: the same labels, computed where the engine runs its chunks.

    >>> from kiku.engine import LocalEngine
    >>> vectors = np.array([[1.0, 0.1], [0.0, 2.0], [0.9, 0.0]], dtype=np.float32)
    >>> assign_with_engine(LocalEngine(), vectors, np.eye(2, dtype=np.float32), chunk_rows=2).tolist()
    [0, 1, 0]
    """
    import pyarrow as pa

    from kiku.engine import Chunk

    array = np.ascontiguousarray(vectors, dtype=np.float32)
    fn = AssignChunk(centroids)
    dim = array.shape[1]
    starts = range(0, len(array), max(1, chunk_rows))

    def chunks() -> Any:
        for index, start in enumerate(starts):
            block = array[start : start + chunk_rows]
            values = pa.array(block.reshape(-1), pa.float32())
            table = pa.table({"embedding": pa.FixedSizeListArray.from_arrays(values, dim)})
            yield Chunk(index, f"assign-{index}", table, len(block))

    out = np.full(len(array), -1, dtype=np.int64)
    for index, table in engine.run(fn, chunks(), lambda amount: None):
        start = starts[index]
        out[start : start + table.num_rows] = table.column("label").to_numpy()
    if (out < 0).any():
        raise ValueError(f"engine {getattr(engine, 'name', engine)!r} left rows without a cluster")
    return out


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber labels so the largest cluster is 0, the next 1, ... (ties: earliest first member).

    Label -1 (noise) is kept as -1.

    >>> relabel_by_size(np.array([5, 7, 7, -1, 5, 7])).tolist()
    [1, 0, 0, -1, 1, 0]
    """
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, dtype=np.int64)
    kept = labels[labels >= 0]
    if kept.size == 0:
        return out
    values, first, counts = np.unique(kept, return_index=True, return_counts=True)
    # first index in the original array, not in `kept`
    positions = np.flatnonzero(labels >= 0)[first]
    order = sorted(range(len(values)), key=lambda i: (-counts[i], positions[i]))
    mapping = {int(values[i]): new for new, i in enumerate(order)}
    for old, new in mapping.items():
        out[labels == old] = new
    return out


#: Members of each base cluster read to tell whether it is made of pleasantries (evenly spaced).
PLEASANTRY_SAMPLE = 200


def merge_pleasantries(
    labels: np.ndarray, texts_of: Callable[[np.ndarray], Sequence[str]], per_cluster: int = PLEASANTRY_SAMPLE
) -> tuple[np.ndarray, dict[str, int]]:
    """One base cluster per kind of pleasantry: clusters whose members only thank, greet, say
    goodbye, agree or decline (``naming.topic_pleasantries`` of ``per_cluster`` evenly spaced
    members) are merged when they are made of the same kinds, then relabelled by size.

    Embeddings tell "Thank you so much!" from "Great, thanks, that's all" by their wording, so a
    data set with many thank-yous gets a dozen clusters that a person would call one topic
    ("Thanks", "Thanks (2)", ..., "Thanks (8)"): MultiWOZ's 1,000 thanks and 1,000 goodbyes made
    13 base clusters; merged they are 2 and its ARI against the 17 acts rises from 0.26 to 0.40
    (benchmarks/results/quality_suite.md). ``texts_of(rows)`` returns the texts of those row
    indices (what the namer reads). Noise (-1) is left alone. Returns (labels (n,), {kinds name:
    number of clusters merged into it}) with only the kinds that merged two or more clusters.

    >>> texts = ["thanks!", "thank you so much", "many thanks", "cheers, thanks", "reset my password", "password reset"]
    >>> labels, merged = merge_pleasantries(np.array([0, 0, 1, 1, 2, 2]), lambda rows: [texts[i] for i in rows])
    >>> labels.tolist(), merged
    ([0, 0, 0, 0, 1, 1], {'Thanks': 2})
    """
    from kiku.naming import pleasantry_name, topic_pleasantries

    labels = np.asarray(labels, dtype=np.int64)
    clustered = np.flatnonzero(labels >= 0)
    by_label = clustered[np.argsort(labels[clustered], kind="stable")]  # rows grouped by label, in row order
    values, starts = np.unique(labels[by_label], return_index=True)
    first_of_kind: dict[tuple[str, ...], int] = {}
    merged_into: dict[int, int] = {}
    for label, members in zip(values.tolist(), np.split(by_label, starts[1:])):
        kinds = tuple(topic_pleasantries(list(texts_of(members[evenly_spaced(len(members), per_cluster)]))))
        if kinds:
            merged_into[label] = first_of_kind.setdefault(kinds, label)
    if len(merged_into) == len(first_of_kind):
        return labels, {}
    target_of = np.arange(int(values.max()) + 1)
    target_of[list(merged_into)] = list(merged_into.values())
    out = labels.copy()
    out[clustered] = target_of[labels[clustered]]
    counts = Counter(merged_into.values())
    summary = {pleasantry_name(list(kinds)): counts[target] for kinds, target in first_of_kind.items() if counts[target] >= 2}
    return relabel_by_size(out), summary


def centroids(embeddings: np.ndarray, labels: np.ndarray, include_noise: bool = False) -> dict[int, np.ndarray]:
    """Unit-norm mean vector of each cluster: {label: (dim,) float32}.

    Label -1 is left out unless ``include_noise``.

    >>> c = centroids(np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), np.array([0, 0, 1]))
    >>> [round(float(v), 3) for v in c[0]], c[1].tolist()
    ([0.707, 0.707], [1.0, 0.0])
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels)
    out: dict[int, np.ndarray] = {}
    for label in np.unique(labels):
        if label < 0 and not include_noise:
            continue
        mean = embeddings[labels == label].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        out[int(label)] = (mean / norm if norm > 0 else mean).astype(np.float32)
    return out


def _check(embeddings: np.ndarray) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, dim), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return array


class KMeansClusterer:
    """k-means over embeddings, with the number of clusters read from the data by default.

    With ``n_clusters=None`` (default), ``choose_granularity`` picks k and starting centres on a
    seeded sample (complete-linkage merge of k-means micro-clusters, no two parts of a cluster
    more than ``merge_distance`` apart); k-means over all rows then refines those centres. So
    the granularity follows the data, not n, and large inputs cost one sample plus one pass.
    Mini-batch k-means is used above ``minibatch_threshold`` points.

    Above ``fit_sample_size`` rows (default 100,000) the k-means is fitted on a seeded sample of
    that many rows only, and every row gets its nearest fitted centre (``assign_to_centroids``),
    so the fit costs the same at 1M rows as at 100k and the rest is one chunked pass. At or
    below it the result is exactly that of a fit over all rows, as before.

    Args:
        n_clusters: number of clusters (None: chosen from the data); capped at n.
        seed: random seed (same seed and input -> same labels).
        minibatch_threshold: from this many points on, MiniBatchKMeans is used (much faster at 100k).
        n_init: k-means restarts when k is given (best inertia kept).
        merge_distance: automatic k only: largest cosine distance between two parts of one cluster.
        sample_size: automatic k only: rows the granularity is chosen on.
        fit_sample_size: above this many rows, fit on a seeded sample of this many, assign the rest.
        merge_islands: automatic k only: merge the cut's groups into island branches of the tree
            (``island_groups``); False keeps the plain cut at ``merge_distance``.

    ``fit_predict(E (n, dim)) -> labels (n,) int64`` in [0, k), relabelled largest-first.
    After a fit, ``n_clusters_`` holds the k that was used and ``cluster_centers_`` (k, dim) the
    centres, row j for label j; ``predict(chunk)`` gives any rows their label from those centres
    (for ``fit_predict``'s rows, the same labels it returned). ``fit(E)`` = ``fit_predict`` without
    returning the labels.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> points = np.concatenate([rng.normal(0, 0.05, (40, 8)) + np.eye(8)[i] for i in range(5)])
        >>> points /= np.linalg.norm(points, axis=1, keepdims=True)
        >>> clusterer = KMeansClusterer(seed=0)
        >>> labels = clusterer.fit_predict(points)
        >>> clusterer.n_clusters_, labels.shape, clusterer.cluster_centers_.shape
        (5, (200,), (5, 8))
        >>> bool((clusterer.predict(points[:7]) == labels[:7]).all())
        True
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        seed: int = 0,
        minibatch_threshold: int = 20_000,
        n_init: int = 3,
        merge_distance: float = MERGE_DISTANCE,
        sample_size: int = GRANULARITY_SAMPLE,
        fit_sample_size: int = FIT_SAMPLE_SIZE,
        merge_islands: bool = True,
    ) -> None:
        if n_clusters is not None and n_clusters < 1:
            raise ValueError("n_clusters must be >= 1")
        if not 0.0 < merge_distance <= 2.0:
            raise ValueError("merge_distance must be in (0, 2]")
        if fit_sample_size < 1:
            raise ValueError("fit_sample_size must be >= 1")
        self.n_clusters = n_clusters
        self.seed = seed
        self.minibatch_threshold = minibatch_threshold
        self.n_init = n_init
        self.merge_distance = merge_distance
        self.sample_size = sample_size
        self.fit_sample_size = fit_sample_size
        self.merge_islands = merge_islands
        self.n_clusters_: int | None = None
        self.cluster_centers_: np.ndarray | None = None

    @property
    def name(self) -> str:
        if self.n_clusters is None:
            islands = ",islands" if self.merge_islands else ""
            return f"kmeans(k=auto,merge={self.merge_distance:g}{islands},sample={self.sample_size},seed={self.seed})"
        return f"kmeans(k={self.n_clusters},seed={self.seed})"

    def fit(self, embeddings: np.ndarray) -> KMeansClusterer:
        """Fit the centres (on a seeded sample above ``fit_sample_size`` rows); returns self."""
        self.fit_predict(embeddings)
        return self

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Labels (n,) int64 of any rows from the fitted centres: ``assign_to_centroids`` on them."""
        if self.cluster_centers_ is None:
            raise ValueError("KMeansClusterer.predict needs a fit first")
        return assign_to_centroids(_check(embeddings), self.cluster_centers_)

    def fit_predict(self, embeddings: np.ndarray, assign: Assigner | None = None) -> np.ndarray:
        """Labels (n,) int64. ``assign(vectors, centres)`` labels all rows after a fit on a sample
        (default :func:`assign_to_centroids` here; ``kiku.pipeline.stage_cluster`` passes one that
        runs on the run's engine, :func:`assign_with_engine`): any assigner giving the same labels
        gives the same result."""
        array = _check(embeddings)
        n = array.shape[0]
        if n == 0:
            self.n_clusters_ = 0
            self.cluster_centers_ = np.zeros((0, array.shape[1]), dtype=np.float32)
            return np.zeros(0, dtype=np.int64)
        if n <= self.fit_sample_size:
            labels, centres = self._fit(array)
        else:
            rng = np.random.default_rng(self.seed)
            sample = np.sort(rng.choice(n, size=self.fit_sample_size, replace=False))
            _, centres = self._fit(array[sample])
            labels = np.asarray((assign or assign_to_centroids)(array, centres), dtype=np.int64)
        out = relabel_by_size(labels)
        # centre row j = new label j (labels no row took are dropped)
        first = np.unique(out, return_index=True)[1]
        self.cluster_centers_ = np.asarray(centres[labels[first]], dtype=np.float32)
        self.n_clusters_ = len(first) if n > self.fit_sample_size else self.n_clusters_
        return out

    def _fit(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """k-means over all of ``array``: (labels (n,), centres (k, dim)), labels before relabelling."""
        n = array.shape[0]
        init: np.ndarray | None = None
        if self.n_clusters is None:
            k, init = choose_granularity(array, self.merge_distance, self.sample_size, self.seed, merge_islands=self.merge_islands)
        else:
            k = min(n, self.n_clusters)
        distinct = np.unique(array, axis=0).shape[0] if n <= 50_000 else n
        if k > distinct:
            k, init = distinct, None
        k = max(1, k)
        self.n_clusters_ = k
        if k == 1:
            return np.zeros(n, dtype=np.int64), array.mean(axis=0, keepdims=True)
        from sklearn.cluster import KMeans, MiniBatchKMeans

        start: np.ndarray | str = init.astype(array.dtype) if init is not None else "k-means++"
        restarts = 1 if init is not None else self.n_init
        model: KMeans | MiniBatchKMeans
        if n >= self.minibatch_threshold:
            model = MiniBatchKMeans(
                n_clusters=k,
                init=start,
                random_state=self.seed,
                n_init=restarts,
                batch_size=4096,
                max_no_improvement=20,
                reassignment_ratio=0.01,
            )
        else:
            model = KMeans(n_clusters=k, init=start, random_state=self.seed, n_init=restarts)
        labels = np.asarray(model.fit_predict(array), dtype=np.int64)
        return labels, np.asarray(model.cluster_centers_, dtype=np.float32)


def default_min_cluster_size(n: int) -> int:
    """HDBSCAN's smallest cluster for n points: 10 (BERTopic's value) up to n/1000 for big inputs.

    >>> default_min_cluster_size(500), default_min_cluster_size(100_000)
    (10, 100)
    """
    return int(max(2, min(n, max(10, n // 1000))))


class HDBSCANClusterer:
    """Density clustering: UMAP to ``reduce_dims`` dims (cosine) then HDBSCAN; noise -> -1.

    This is BERTopic's default recipe. Points HDBSCAN calls noise get label -1, the
    "Unclustered" bucket; they are not forced into a topic.

    Args:
        min_cluster_size: smallest cluster (None: ``default_min_cluster_size(n)``).
        min_samples: HDBSCAN's density smoothing (None: HDBSCAN's default, = min_cluster_size).
        seed: seed for UMAP (the HDBSCAN step is deterministic).
        reduce_dims: UMAP output dims before HDBSCAN (None or 0: cluster the raw embeddings).
        n_neighbors: UMAP neighbours.
        umap_sample_size: above this many points UMAP is fitted on a seeded sample and the
            rest is transformed.

    ``fit_predict(E (n, dim)) -> labels (n,) int64``, -1 for noise, others largest-first.
    """

    def __init__(
        self,
        min_cluster_size: int | None = None,
        min_samples: int | None = None,
        seed: int = 0,
        reduce_dims: int | None = 5,
        n_neighbors: int = 15,
        umap_sample_size: int = 50_000,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.seed = seed
        self.reduce_dims = reduce_dims
        self.n_neighbors = n_neighbors
        self.umap_sample_size = umap_sample_size

    @property
    def name(self) -> str:
        size = "auto" if self.min_cluster_size is None else str(self.min_cluster_size)
        return f"hdbscan(min_cluster_size={size},umap={self.reduce_dims or 0},seed={self.seed})"

    def reduce(self, embeddings: np.ndarray) -> np.ndarray:
        """UMAP reduction used before HDBSCAN: (n, dim) -> (n, reduce_dims) float32."""
        array = _check(embeddings)
        n = array.shape[0]
        if not self.reduce_dims or n <= self.reduce_dims + 2:
            return array
        import umap

        model = umap.UMAP(
            n_components=self.reduce_dims,
            n_neighbors=max(2, min(self.n_neighbors, n - 1)),
            min_dist=0.0,
            metric="cosine",
            random_state=self.seed,
            n_jobs=1,
            init="spectral" if n > 50 else "random",
        )
        if n <= self.umap_sample_size:
            return model.fit_transform(array).astype(np.float32)
        rng = np.random.default_rng(self.seed)
        sample = np.sort(rng.choice(n, size=self.umap_sample_size, replace=False))
        model.fit(array[sample])
        out = np.empty((n, self.reduce_dims), dtype=np.float32)
        for start in range(0, n, 20_000):
            out[start : start + 20_000] = model.transform(array[start : start + 20_000])
        return out

    def fit_predict(self, embeddings: np.ndarray) -> np.ndarray:
        array = _check(embeddings)
        n = array.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        size = self.min_cluster_size or default_min_cluster_size(n)
        if n <= max(2, size):
            return np.zeros(n, dtype=np.int64)  # too few points to find density: one cluster
        from sklearn.cluster import HDBSCAN

        reduced = self.reduce(array)
        model = HDBSCAN(min_cluster_size=max(2, size), min_samples=self.min_samples, copy=True)
        labels = model.fit_predict(reduced)
        return relabel_by_size(labels)
