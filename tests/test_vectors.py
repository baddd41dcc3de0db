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


def test_without_directions_removes_the_span_and_keeps_unit_rows() -> None:
    from kiku.vectors import without_directions

    rng = np.random.default_rng(0)
    rows = l2_normalise(rng.normal(size=(300, 8))).astype(np.float32)
    directions = rng.normal(size=(2, 8))
    out = without_directions(rows, directions, batch=64)  # several batches
    assert out.dtype == np.float32 and out.shape == rows.shape
    basis, _ = np.linalg.qr(directions.T)
    np.testing.assert_allclose(out @ basis, 0.0, atol=1e-5)  # nothing left along the removed span
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out, without_directions(rows, directions), atol=1e-6)  # batching changes nothing
    inside = l2_normalise(directions[:1]).astype(np.float32)
    np.testing.assert_allclose(without_directions(inside, directions), inside)  # a row in the span keeps its vector
    np.testing.assert_array_equal(without_directions(rows, np.zeros((0, 8))), rows)
