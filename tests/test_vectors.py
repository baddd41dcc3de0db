"""kiku.vectors: the one L2 normaliser the stages share."""

from __future__ import annotations

import numpy as np

from kiku.vectors import l2_normalise


def test_l2_normalise_rows_single_vectors_and_zeros() -> None:
    rows = np.array([[3.0, 4.0], [0.0, 0.0], [1e-8, 0.0]], dtype=np.float32)
    unit = l2_normalise(rows)
    assert unit.dtype == np.float32 and unit.shape == rows.shape
    np.testing.assert_allclose(unit[0], [0.6, 0.8], rtol=1e-6)
    assert unit[1].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(np.linalg.norm(unit[[0, 2]], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(l2_normalise(np.array([0.0, 5.0])), [0.0, 1.0])
    assert rows[0].tolist() == [3.0, 4.0]  # the input is left as it was
