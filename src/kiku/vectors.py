"""Small vector helpers shared by the offline and LLM stages (the LLM package imports them, never the reverse)."""

from __future__ import annotations

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
