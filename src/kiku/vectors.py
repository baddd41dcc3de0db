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


def evenly_spaced(n: int, count: int) -> np.ndarray:
    """Sorted distinct indices (at most ``count``, int64) spread evenly over ``range(n)``: a
    deterministic sample of rows, all of them when ``n <= count``.

    >>> evenly_spaced(10, 4).tolist(), evenly_spaced(3, 5).tolist(), evenly_spaced(0, 5).tolist()
    ([0, 3, 6, 9], [0, 1, 2], [])
    """
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, min(n, count)).astype(np.int64))


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


def without_directions(vectors: np.ndarray, directions: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """Unit rows of ``vectors`` (n, d) with the span of ``directions`` (k, d) projected out.

    What every row shares because of one word, such as the product's own name in its users'
    questions, pulls the rows that spell it alike together; removing those directions lets
    what the rows are about decide. A row that lay inside the span keeps its original vector.
    Returns a new float32 array (n, d), computed ``batch`` rows at a time; ``directions`` with
    no rows return a float32 copy.

    >>> rows = np.array([[0.6, 0.8, 0.0], [0.6, 0.0, 0.8]], dtype=np.float32)
    >>> without_directions(rows, np.array([[1.0, 0.0, 0.0]])).round(2).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    directions = np.asarray(directions, dtype=np.float64).reshape(-1, vectors.shape[1] if vectors.ndim == 2 else 0)
    out = np.array(vectors, dtype=np.float32, copy=True)
    if not len(directions) or not len(vectors):
        return out
    basis, _ = np.linalg.qr(directions.T)  # (d, k) orthonormal
    basis = basis.astype(np.float32)
    for start in range(0, len(vectors), batch):
        block = vectors[start : start + batch]
        projected = block - (block @ basis) @ basis.T
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        keep = norms[:, 0] > 1e-6
        out[start : start + batch][keep] = projected[keep] / norms[keep]
    return out
