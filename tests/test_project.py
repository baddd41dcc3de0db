"""Tests of the 2-D projection: seeded UMAP and t-SNE, sample-and-transform, compiled-code cache, tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from kiku.project import cluster_positions, place_on_map, project_embeddings, projection_sample


def blobs(n_per: int = 60, k: int = 3, dim: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    points = np.concatenate([c + rng.normal(0, 0.15, (n_per, dim)) for c in centres])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), np.repeat(np.arange(k), n_per)


def separation(coords: np.ndarray, labels: np.ndarray) -> float:
    """Smallest distance between cluster means over the largest within-cluster spread."""
    means = np.stack([coords[labels == c].mean(axis=0) for c in np.unique(labels)])
    spread = max(float(np.linalg.norm(coords[labels == c] - means[c], axis=1).mean()) for c in np.unique(labels))
    gaps = [np.linalg.norm(means[a] - means[b]) for a in range(len(means)) for b in range(a + 1, len(means))]
    return float(min(gaps)) / spread


@pytest.mark.parametrize("method", ["umap", "tsne", "auto"])
def test_projection_is_seeded_and_keeps_groups_apart(method: str) -> None:
    points, labels = blobs()
    first = project_embeddings(points, seed=3, method=method)
    assert first.shape == (180, 2) and first.dtype == np.float32
    np.testing.assert_array_equal(first, project_embeddings(points, seed=3, method=method))
    assert separation(first, labels) > 3


def test_auto_uses_tsne_for_small_inputs_and_umap_above() -> None:
    points, _ = blobs()
    np.testing.assert_array_equal(project_embeddings(points, method="auto"), project_embeddings(points, method="tsne"))
    assert not np.array_equal(project_embeddings(points, method="auto"), project_embeddings(points, method="umap"))


def test_umap_compiled_code_is_kept_between_processes(tmp_path) -> None:
    """A second process reuses UMAP's compiled code from kiku's cache folder, same map."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, sys; from kiku.project import project_embeddings; "
        "rng = np.random.default_rng(0); x = rng.normal(size=(120, 16)).astype(np.float32); "
        "np.save(sys.argv[1], project_embeddings(x, method='umap'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"KIKU_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.npy")], env=env, check=True)
    cached = sorted((tmp_path / "cache" / "numba").rglob("*.nbi"))
    assert any("optimize_layout" in path.name for path in cached)  # UMAP's layout loop, the costly compile
    stamps = {path: path.stat().st_mtime_ns for path in cached}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "b.npy")], env=env, check=True)
    assert {path: path.stat().st_mtime_ns for path in cached} == stamps  # reused, not compiled again
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


@pytest.mark.parametrize("rest", ["knn", "transform"])
def test_fit_on_sample_then_place_the_rest(rest: str) -> None:
    points, labels = blobs(n_per=80)
    coords = project_embeddings(points, seed=1, sample_size=100, method="umap", rest=rest)  # type: ignore[arg-type]
    assert coords.shape == (240, 2)
    assert np.isfinite(coords).all()
    np.testing.assert_array_equal(coords, project_embeddings(points, seed=1, sample_size=100, method="umap", rest=rest))  # type: ignore[arg-type]
    assert separation(coords, labels) > 2


@pytest.mark.parametrize("placement", ["transform", "knn"])
def test_rows_outside_the_sample_land_near_their_nearest_sample_neighbours(placement: str) -> None:
    points, labels = blobs(n_per=150, k=4)
    coords = project_embeddings(points, seed=2, sample_size=200, method="umap", rest=placement)  # type: ignore[arg-type]
    sample = projection_sample(len(points), 200, seed=2)
    others = np.setdiff1d(np.arange(len(points)), sample)
    nearest = sample[np.argmax(points[others] @ points[sample].T, axis=1)]
    distance = np.linalg.norm(coords[others] - coords[nearest], axis=1)
    # within the group of its nearest sample neighbour; kNN puts it closer to that neighbour than two
    # sample points of one group typically are (transform's own layout epochs spread it within the group)
    same = [np.linalg.norm(coords[a] - coords[b]) for a in sample[:60] for b in sample[:60] if a < b and labels[a] == labels[b]]
    assert float(np.median(distance)) < (0.75 if placement == "knn" else 1.25) * float(np.median(same))
    assert (labels[others] == labels[nearest]).mean() > 0.95
    # placed points sit with their own group on the map
    assert separation(coords, labels) > 2
    if placement == "knn":
        np.testing.assert_allclose(coords[others], place_on_map(points[others], points[sample], coords[sample]), atol=1e-4)


@pytest.mark.parametrize("n", [0, 1, 2, 4, 9])
def test_tiny_inputs_do_not_crash(n: int) -> None:
    points = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    coords = project_embeddings(points)
    assert coords.shape == (n, 2)
    assert np.isfinite(coords).all()
    np.testing.assert_array_equal(coords, project_embeddings(points))


def test_identical_points_sit_at_the_origin() -> None:
    assert project_embeddings(np.ones((4, 8), dtype=np.float32)).tolist() == [[0.0, 0.0]] * 4


def test_bad_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2-D"):
        project_embeddings(np.ones(5))


def test_cluster_positions_mean_and_medoid() -> None:
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [9.0, 9.0]], dtype=np.float32)
    mean = cluster_positions(coords, [np.array([0, 1, 2]), [3], []])
    np.testing.assert_allclose(mean[:2], [[2.0, 0.0], [9.0, 9.0]])
    assert np.isnan(mean[2]).all()
    medoid = cluster_positions(coords, [[0, 1, 2]], method="medoid")
    np.testing.assert_allclose(medoid, [[1.0, 0.0]])
