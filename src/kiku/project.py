"""Project embeddings to 2-D map coordinates with seeded UMAP (cosine).

Shapes:
    project_embeddings(E (n, dim))                      -> (n, 2) float32
    cluster_positions(coords (n, 2), members per cluster) -> (k, 2) float32

Above ``sample_size`` points UMAP is fitted on a seeded random sample and the rest is
transformed in batches, which keeps 100k conversations to minutes on 2 cores. Fewer than
``MIN_UMAP_POINTS`` points are laid out with PCA (or at the origin) instead. With a
``random_state`` UMAP runs single-threaded; that is the price of a reproducible map.

Example:
    >>> import numpy as np
    >>> coords = project_embeddings(np.eye(3, dtype=np.float32))
    >>> coords.shape, coords.dtype
    ((3, 2), dtype('float32'))
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

MIN_UMAP_POINTS = 10
TRANSFORM_BATCH = 20_000


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


def project_embeddings(
    embeddings: np.ndarray,
    seed: int = 0,
    sample_size: int = 20_000,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
) -> np.ndarray:
    """2-D coordinates for each embedding: (n, dim) -> (n, 2) float32, same seed -> same map.

    Args:
        embeddings: (n, dim) vectors (unit norm or not; the metric is cosine).
        seed: UMAP random_state (and the sample choice).
        sample_size: fit UMAP on at most this many points; transform the rest.
        n_neighbors, min_dist: UMAP parameters (n_neighbors is capped at n - 1).
    """
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, dim), got shape {array.shape}")
    n = array.shape[0]
    if n < MIN_UMAP_POINTS:
        return _pca_2d(array)
    import umap

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
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=sample_size, replace=False))
        fitted = model.fit_transform(array[sample])
        out = np.empty((n, 2), dtype=np.float32)
        rest = np.setdiff1d(np.arange(n), sample, assume_unique=True)
        out[sample] = fitted
        for start in range(0, len(rest), TRANSFORM_BATCH):
            batch = rest[start : start + TRANSFORM_BATCH]
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
