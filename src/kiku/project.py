"""Project embeddings to 2-D map coordinates: seeded UMAP (cosine), t-SNE for small inputs.

Shapes:
    project_embeddings(E (n, dim))                      -> (n, 2) float32
    cluster_positions(coords (n, 2), members per cluster) -> (k, 2) float32

Above ``sample_size`` points UMAP is fitted on a seeded random sample and the rest is placed
on that fitted map in chunks of ``TRANSFORM_BATCH``: by default (``rest="transform"``) with
UMAP's ``transform``, or with ``rest="knn"`` each point at the similarity-weighted mean position
of its ``MAP_NEIGHBOURS`` nearest sample points (:func:`place_on_map`, the placement ``kiku
assign`` uses for new conversations, and where UMAP's own ``transform`` starts from). Timed
against each other on real vectors (benchmarks/results/scale.md, ``scale.py --placement``):
kNN's exact (n, sample) product cost 1.8 ms a row against the default 20,000-point sample,
``transform`` 0.7 ms once its code is compiled and cached, so ``transform`` stays the default;
at 1M rows both are one chunked pass, memory (batch, sample). Fewer than
``MIN_UMAP_POINTS`` points are laid out with PCA (or at the origin) instead, and up to
``TSNE_MAX_POINTS`` with seeded t-SNE, which needs no compiling. With a
``random_state`` UMAP runs single-threaded; that is the price of a reproducible map. UMAP's
numba code is compiled once per machine and kept in kiku's cache folder
(:func:`enable_compiled_code_cache`), so later runs skip the 20-25 s of compiling.

Example:
    >>> import numpy as np
    >>> coords = project_embeddings(np.eye(3, dtype=np.float32))
    >>> coords.shape, coords.dtype
    ((3, 2), dtype('float32'))
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from kiku.vectors import nearest_neighbours

MIN_UMAP_POINTS = 10
TRANSFORM_BATCH = 20_000
#: Nearest fitted points a placed point's map position is averaged over (place_on_map).
MAP_NEIGHBOURS = 10

#: Modules whose numba functions UMAP runs; their machine code is kept on disk between runs.
NUMBA_MODULES = (
    "umap.umap_", "umap.layouts", "umap.distances", "umap.sparse", "umap.spectral", "umap.utils",
    "pynndescent.pynndescent_", "pynndescent.distances", "pynndescent.sparse", "pynndescent.utils",
    "pynndescent.rp_trees", "pynndescent.graph_utils", "pynndescent.sparse_nndescent",
)


def compiled_code_cache_dir() -> Path:
    """Where UMAP's compiled code is kept: one folder per numba/umap/pynndescent version set.

    Versions are in the name because numba checks only the calling function's own source file
    when it reuses cached code, not the libraries it calls into.
    """
    from importlib.metadata import PackageNotFoundError, version

    from kiku.paths import cache_root

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:  # pragma: no cover - both come with umap-learn
            return "none"

    tag = "-".join(f"{name}{installed(name)}" for name in ("numba", "umap-learn", "pynndescent"))
    return cache_root() / "numba" / tag


def enable_compiled_code_cache(module_names: Sequence[str] = NUMBA_MODULES) -> int:
    """Keep numba's machine code for UMAP and pynndescent on disk; returns how many functions.

    Without this every new process compiles UMAP's functions again (about 20-25 s on 2 cores,
    most of the time of a small run). numba's own ``NUMBA_CACHE_DIR`` is honoured when set;
    otherwise the code goes to :func:`compiled_code_cache_dir`. Functions numba cannot cache
    are left as they are. Calling it again is cheap and changes nothing.
    """
    import importlib
    import os

    import numba
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    if not os.environ.get("NUMBA_CACHE_DIR"):
        target = compiled_code_cache_dir()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError:
            return 0  # an unwritable cache folder costs time, never the run
        numba.config.CACHE_DIR = str(target)
    enabled = 0
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, CPUDispatcher) and isinstance(value._cache, NullCache):
                try:
                    value.enable_caching()
                except Exception:  # noqa: BLE001 - a function numba cannot cache still runs
                    continue
                enabled += 1
    return enabled


def _pca_2d(embeddings: np.ndarray) -> np.ndarray:
    """Deterministic 2-D PCA layout (sign-fixed), zeros where there is no variance."""
    n = embeddings.shape[0]
    out = np.zeros((n, 2), dtype=np.float32)
    if n < 2:
        return out
    centred = embeddings - embeddings.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    for axis in range(min(2, len(singular))):
        if singular[axis] <= 1e-9:
            continue
        component = vt[axis]
        component = component * (1 if component[np.argmax(np.abs(component))] >= 0 else -1)
        out[:, axis] = centred @ component
    return out


def _tsne_2d(embeddings: np.ndarray, seed: int) -> np.ndarray:
    """Seeded cosine t-SNE (scikit-learn, one thread: deterministic, and no spinning on 2 cores)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = embeddings.shape[0]
    model = TSNE(
        n_components=2, perplexity=float(min(30.0, max(2.0, (n - 1) / 3))), init="pca", metric="cosine",
        learning_rate="auto", random_state=seed,
    )
    with threadpool_limits(limits=1):
        coords = model.fit_transform(embeddings)
    # t-SNE's units are larger than UMAP's; bring the map to a comparable spread.
    coords = coords - coords.mean(axis=0)
    scale = float(np.abs(coords).max()) or 1.0
    return np.asarray(coords * (10.0 / scale), dtype=np.float32)


#: Up to this many points the map is laid out with t-SNE, which needs no compiling: for a
#: small run in a new process UMAP's first compile (20-25 s on 2 cores) would dominate.
TSNE_MAX_POINTS = 1_000

ProjectionMethod = Literal["auto", "umap", "tsne"]
RestPlacement = Literal["knn", "transform"]


def projection_sample(n: int, sample_size: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices (sample_size,) UMAP is fitted on when n > sample_size (seeded, no repeats).

    >>> projection_sample(10, 4, seed=0).tolist()
    [2, 4, 5, 7]
    """
    return np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))


def place_on_map(embeddings: np.ndarray, base_embeddings: np.ndarray, base_coords: np.ndarray,
                 neighbours: int = MAP_NEIGHBOURS, batch: int = 2048) -> np.ndarray:
    """(n, 2) positions on a fixed base map: the weighted mean of the nearest base points' positions.

    ``embeddings`` (n, d) and ``base_embeddings`` (m, d) are unit vectors, ``base_coords`` (m, 2)
    the base points' map positions. Nearest by cosine over all m base points, ``batch`` rows at a
    time (memory (batch, m)); weights are ``exp((sim - best_sim) / 0.05)``, so a near-duplicate of
    a base point lands on it and a point between two regions lands between them. Used by the
    projection for rows outside UMAP's sample and by ``kiku assign`` for new conversations.

    >>> base = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> place_on_map(base, base, np.array([[0.0, 0.0], [10.0, 10.0]]), neighbours=2).round(2).tolist()
    [[0.0, 0.0], [10.0, 10.0]]
    """
    k = max(1, min(neighbours, len(base_embeddings)))
    base_embeddings = np.asarray(base_embeddings, dtype=np.float32)
    base_coords = np.asarray(base_coords, dtype=np.float32)
    out = np.empty((len(embeddings), 2), dtype=np.float32)
    for start in range(0, len(embeddings), batch):
        top, near = nearest_neighbours(np.asarray(embeddings[start:start + batch], dtype=np.float32), base_embeddings, k, batch)
        weights = np.exp((near - near.max(axis=1, keepdims=True)) / 0.05)
        weights /= weights.sum(axis=1, keepdims=True)
        out[start:start + batch] = np.einsum("nk,nkd->nd", weights, base_coords[top])
    return out


def project_embeddings(
    embeddings: np.ndarray,
    seed: int = 0,
    sample_size: int = 20_000,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    method: ProjectionMethod = "auto",
    rest: RestPlacement = "transform",
) -> np.ndarray:
    """2-D coordinates for each embedding: (n, dim) -> (n, 2) float32, same seed -> same map.

    Args:
        embeddings: (n, dim) vectors (unit norm or not; the metric is cosine).
        seed: UMAP / t-SNE random_state (and the sample choice).
        sample_size: fit UMAP on at most this many points; transform the rest.
        n_neighbors, min_dist: UMAP parameters (n_neighbors is capped at n - 1).
        method: ``"auto"`` (PCA below ``MIN_UMAP_POINTS``, t-SNE up to ``TSNE_MAX_POINTS``,
            UMAP above), or ``"umap"`` / ``"tsne"`` to force one (t-SNE has no sample-and-
            transform, so it is for small inputs).
    """
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, dim), got shape {array.shape}")
    if method not in ("auto", "umap", "tsne"):
        raise ValueError(f"unknown projection method {method!r}; use 'auto', 'umap' or 'tsne'")
    if rest not in ("knn", "transform"):
        raise ValueError(f"unknown placement {rest!r} for the rows outside the sample; use 'knn' or 'transform'")
    n = array.shape[0]
    if n < MIN_UMAP_POINTS:
        return _pca_2d(array)
    if method == "tsne" or (method == "auto" and n <= TSNE_MAX_POINTS):
        return _tsne_2d(array, seed)
    import umap

    enable_compiled_code_cache()
    model = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(n_neighbors, n - 1)),
        min_dist=min_dist,
        metric="cosine",
        random_state=seed,
        n_jobs=1,
        init="spectral" if n > 50 else "random",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        if n <= sample_size:
            coords = model.fit_transform(array)
            return np.asarray(coords, dtype=np.float32)
        sample = projection_sample(n, sample_size, seed)
        fitted = model.fit_transform(array[sample])
        out = np.empty((n, 2), dtype=np.float32)
        out[sample] = fitted
        others = np.setdiff1d(np.arange(n), sample, assume_unique=True)
        if rest == "knn":
            from kiku.vectors import l2_normalise

            base = np.asarray(l2_normalise(array[sample]), dtype=np.float32)
            for start in range(0, len(others), TRANSFORM_BATCH):
                batch = others[start : start + TRANSFORM_BATCH]
                out[batch] = place_on_map(np.asarray(l2_normalise(array[batch]), dtype=np.float32), base, fitted)
        else:
            for start in range(0, len(others), TRANSFORM_BATCH):
                batch = others[start : start + TRANSFORM_BATCH]
                out[batch] = model.transform(array[batch])
    return out


def cluster_positions(
    coords: np.ndarray, member_index_per_cluster: Sequence[np.ndarray | Sequence[int]], method: str = "mean"
) -> np.ndarray:
    """Map position of each cluster: (n, 2) coords + k index arrays -> (k, 2) float32.

    ``method="mean"`` averages the members' coordinates; ``"medoid"`` takes the member closest
    to that mean (always on a real point). An empty cluster gets NaN.

    >>> coords = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0]])
    >>> cluster_positions(coords, [[0, 1], [2]]).tolist()
    [[1.0, 0.0], [10.0, 10.0]]
    """
    coords = np.asarray(coords, dtype=np.float32)
    out = np.full((len(member_index_per_cluster), 2), np.nan, dtype=np.float32)
    for row, members in enumerate(member_index_per_cluster):
        index = np.asarray(members, dtype=np.int64)
        if index.size == 0:
            continue
        centre = coords[index].mean(axis=0)
        if method == "medoid":
            centre = coords[index[int(np.argmin(((coords[index] - centre) ** 2).sum(axis=1)))]]
        elif method != "mean":
            raise ValueError(f"unknown method {method!r}; use 'mean' or 'medoid'")
        out[row] = centre
    return out
