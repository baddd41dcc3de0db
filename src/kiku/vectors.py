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
