"""Small vector helpers shared by the offline and LLM stages (the LLM package imports them, never the reverse)."""

from __future__ import annotations

from typing import Any

import numpy as np


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale each vector (the last axis) to unit length; an all-zero vector stays zero.

    Works on one vector or a matrix of row vectors and keeps a floating dtype.

    >>> l2_normalise(np.array([3.0, 4.0])).tolist()
    [0.6, 0.8]
    >>> l2_normalise(np.array([[0.0, 2.0], [0.0, 0.0]])).tolist()
    [[0.0, 1.0], [0.0, 0.0]]
    """
    vectors = np.asarray(vectors)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1)


def vectors_from_arrow(column: Any, rows: int, dim: int | None = None) -> np.ndarray:
    """(rows, dim) float32 from an Arrow list or fixed-size-list column of equal-length vectors.

    ``column``: an Array or a ChunkedArray (a table's column, a batch's column); ``dim`` when
    known (needed for zero rows), otherwise taken from the data.

    >>> import pyarrow as pa
    >>> vectors_from_arrow(pa.chunked_array([[[1.0, 0.0]], [[0.0, 2.0]]]), 2).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    """
    if hasattr(column, "combine_chunks"):
        column = column.combine_chunks()
    flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return flat.reshape(rows, -1 if dim is None else dim)


def nearest_neighbours(
    queries: np.ndarray, base: np.ndarray, k: int, batch: int = 2048, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar ``base`` rows of each query, by dot product (cosine for unit vectors).

    ``queries`` (n, d), ``base`` (m, d) -> ``(indices (n, k) int64, similarities (n, k) float32)``,
    each row's k in no particular order; k is capped at the rows available. Computed ``batch``
    queries at a time, so memory is (batch, m) whatever n is. ``exclude_self``: the queries are
    the base rows themselves (n = m) and a row is never its own neighbour.

    >>> points = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    >>> nearest_neighbours(points, points, 1, exclude_self=True)[0].ravel().tolist()
    [1, 0, 1]
    """
    queries = np.asarray(queries, dtype=np.float32)
    base = np.asarray(base, dtype=np.float32)
    available = len(base) - (1 if exclude_self else 0)
    k = max(0, min(k, available))
    indices = np.empty((len(queries), k), dtype=np.int64)
    similarities = np.empty((len(queries), k), dtype=np.float32)
    if k == 0:
        return indices, similarities
    for start in range(0, len(queries), max(1, batch)):
        sims = queries[start:start + batch] @ base.T
        if exclude_self:
            rows = np.arange(len(sims))
            sims[rows, start + rows] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        indices[start:start + len(sims)] = top
        similarities[start:start + len(sims)] = np.take_along_axis(sims, top, axis=1)
    return indices, similarities
