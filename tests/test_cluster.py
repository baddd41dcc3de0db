"""Tests of the clusterers: reproducibility, stable ids, noise, small inputs, and real embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from kiku.cluster import (
    HDBSCANClusterer,
    KMeansClusterer,
    centroids,
    choose_granularity,
    choose_k,
    default_min_cluster_size,
    merge_pleasantries,
    relabel_by_size,
)
from kiku.protocols import Clusterer


def blobs(seed: int = 0, sizes: tuple[int, ...] = (60, 40, 25), dim: int = 16, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = np.concatenate([c + rng.normal(0, spread, (s, dim)) for c, s in zip(centres, sizes)])
    truth = np.repeat(np.arange(len(sizes)), sizes)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), truth


def test_choose_k_is_bounded_and_grows_with_n() -> None:
    assert choose_k(0) == 0
    assert choose_k(1) == 1
    assert choose_k(3) == 2
    assert choose_k(13_083) == 114
    assert choose_k(10_000_000) == 400
    values = [choose_k(n) for n in (10, 100, 1_000, 10_000, 100_000)]
    assert values == sorted(values)


def test_relabel_by_size_largest_first_and_noise_kept() -> None:
    assert relabel_by_size(np.array([3, 3, 1, -1, 1, 1, 9])).tolist() == [1, 1, 0, -1, 0, 0, 2]
    assert relabel_by_size(np.array([-1, -1])).tolist() == [-1, -1]


def test_kmeans_finds_blobs_reproducibly_with_size_ordered_ids() -> None:
    points, truth = blobs()
    clusterer = KMeansClusterer(n_clusters=3, seed=7)
    assert isinstance(clusterer, Clusterer)
    labels = clusterer.fit_predict(points)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, truth)  # sizes 60 > 40 > 25 -> ids 0, 1, 2
    np.testing.assert_array_equal(labels, KMeansClusterer(n_clusters=3, seed=7).fit_predict(points))


def test_kmeans_auto_k_follows_the_data_not_n() -> None:
    points, truth = blobs(sizes=(300, 200, 100))
    auto = KMeansClusterer()
    labels = auto.fit_predict(points)
    assert auto.n_clusters_ == 3  # sqrt(600) would have given 24
    np.testing.assert_array_equal(labels, truth)
    np.testing.assert_array_equal(labels, KMeansClusterer().fit_predict(points))
    # ten times the rows of the same three topics: still three clusters
    many, _ = blobs(sizes=(3000, 2000, 1000))
    assert KMeansClusterer(minibatch_threshold=100_000).fit_predict(many).max() == 2
    # twelve separate topics in 600 rows: twelve clusters
    twelve, truth12 = blobs(seed=2, sizes=(50,) * 12, dim=32)
    assert choose_granularity(twelve)[0] == 12


def sections(sigma: float, offset: float = 0.8, dim: int = 64, per: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two broad sections (orthogonal axes), each of three sub-topics ``offset`` off its axis, rows
    with Gaussian noise ``sigma`` per dimension: (unit rows (1200, dim), section (1200,), sub-topic (1200,))."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    rows, section, topic = [], [], []
    for s in range(2):
        for j in range(3):
            centre = basis[s] + offset * basis[2 + 3 * s + j]
            rows.append(centre / np.linalg.norm(centre) + rng.normal(0, sigma, (per, dim)))
            section += [s] * per
            topic += [3 * s + j] * per
    points = np.concatenate(rows)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), np.array(section), np.array(topic)


def test_island_branches_merge_a_noisy_section_but_keep_topics_that_stand_apart() -> None:
    from sklearn.metrics import adjusted_rand_score

    # long, noisy rows: the fixed cut shatters each section into its rows' noise; the islands are the sections
    noisy, section, _ = sections(sigma=0.2)
    cut = KMeansClusterer(seed=0, merge_islands=False)
    cut_labels = cut.fit_predict(noisy)
    auto = KMeansClusterer(seed=0)
    labels = auto.fit_predict(noisy)
    assert cut.n_clusters_ >= 15
    assert adjusted_rand_score(section, cut_labels) < 0.3
    assert auto.n_clusters_ == 2
    assert adjusted_rand_score(section, labels) == 1.0
    assert "islands" in auto.name and "islands" not in cut.name
    # the same sections with tight rows: the six sub-topics stand apart and are not merged
    tight, _, topic = sections(sigma=0.12)
    kept = KMeansClusterer(seed=0)
    assert adjusted_rand_score(topic, kept.fit_predict(tight)) > 0.99
    assert kept.n_clusters_ == 6


def test_island_branches_never_merge_a_structureless_sample() -> None:
    """Uniform rows on a 64-d sphere: every branch's merges are within its noise, and the whole
    sample trivially keeps all its neighbours; judged against chance, nothing is an island."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1200, 64))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    cut = KMeansClusterer(seed=0, merge_islands=False).fit(points).n_clusters_
    assert cut > 50
    assert KMeansClusterer(seed=0).fit(points).n_clusters_ == cut


def test_kmeans_minibatch_path() -> None:
    points, _ = blobs(sizes=(300, 200, 100))
    mini = KMeansClusterer(n_clusters=3, minibatch_threshold=100, seed=1)
    first = mini.fit_predict(points)
    np.testing.assert_array_equal(first, KMeansClusterer(n_clusters=3, minibatch_threshold=100, seed=1).fit_predict(points))
    assert len(np.unique(first)) == 3


def test_kmeans_small_and_degenerate_inputs() -> None:
    assert KMeansClusterer().fit_predict(np.zeros((0, 4))).shape == (0,)
    assert KMeansClusterer().fit_predict(np.ones((1, 4))).tolist() == [0]
    same = np.ones((5, 4), dtype=np.float32)
    assert KMeansClusterer(n_clusters=3).fit_predict(same).tolist() == [0] * 5
    with pytest.raises(ValueError, match="2-D"):
        KMeansClusterer().fit_predict(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        KMeansClusterer().fit_predict(np.full((3, 2), np.nan))


def test_hdbscan_marks_noise_and_is_reproducible() -> None:
    points, truth = blobs(sizes=(80, 60, 50), spread=0.03)
    rng = np.random.default_rng(3)
    scattered = rng.normal(size=(15, points.shape[1])).astype(np.float32)
    scattered /= np.linalg.norm(scattered, axis=1, keepdims=True)
    data = np.concatenate([points, scattered])
    clusterer = HDBSCANClusterer(min_cluster_size=10, reduce_dims=None)
    assert isinstance(clusterer, Clusterer)
    labels = clusterer.fit_predict(data)
    assert (labels[-15:] == -1).sum() >= 8  # most scattered points are noise, not a topic
    np.testing.assert_array_equal(labels[: len(truth)], truth)
    np.testing.assert_array_equal(labels, HDBSCANClusterer(min_cluster_size=10, reduce_dims=None).fit_predict(data))


def test_hdbscan_with_umap_reduction_is_seeded() -> None:
    points, truth = blobs(sizes=(80, 60, 50), spread=0.03)
    first = HDBSCANClusterer(min_cluster_size=10, seed=4).fit_predict(points)
    second = HDBSCANClusterer(min_cluster_size=10, seed=4).fit_predict(points)
    np.testing.assert_array_equal(first, second)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, first) > 0.9


def test_hdbscan_tiny_input_is_one_cluster() -> None:
    assert HDBSCANClusterer().fit_predict(np.ones((3, 4), dtype=np.float32)).tolist() == [0, 0, 0]
    assert default_min_cluster_size(50_000) == 50


def test_centroids_are_unit_means_without_noise() -> None:
    points, truth = blobs()
    labels = truth.copy()
    labels[:5] = -1
    result = centroids(points, labels)
    assert sorted(result) == [0, 1, 2]
    for label, centre in result.items():
        assert centre.dtype == np.float32
        assert abs(np.linalg.norm(centre) - 1) < 1e-5
        expected = points[labels == label].mean(axis=0)
        assert float(centre @ (expected / np.linalg.norm(expected))) > 0.9999
    assert -1 in centroids(points, labels, include_noise=True)


def test_kmeans_on_real_embeddings_groups_paraphrases() -> None:
    from kiku.embed import MiniLMEmbedder

    texts = [
        "my card has not arrived yet",
        "when will my new card be delivered",
        "still waiting for the card you sent",
        "how do I reset my password",
        "I forgot my login password",
        "password reset link does not work",
        "what is the exchange rate for euros",
        "how much is one dollar in euros",
        "currency conversion rate today",
    ]
    labels = KMeansClusterer(n_clusters=3, seed=0).fit_predict(MiniLMEmbedder().embed(texts))
    groups = {tuple(labels[i : i + 3]) for i in range(0, 9, 3)}
    assert all(len(set(g)) == 1 for g in groups)
    assert len({g[0] for g in groups}) == 3


def test_assign_to_centroids_in_chunks_equals_one_shot_and_is_kmeans_rule() -> None:
    from kiku.cluster import assign_to_centroids

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(1_003, 24)).astype(np.float32)
    centres = rng.normal(size=(17, 24)).astype(np.float32) * rng.uniform(0.5, 2.0, (17, 1)).astype(np.float32)
    one_shot = assign_to_centroids(vectors, centres, batch=len(vectors))
    expected = ((vectors[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(one_shot, expected)  # nearest by squared Euclidean distance, as k-means
    for batch in (1, 7, 256):
        np.testing.assert_array_equal(assign_to_centroids(vectors, centres, batch=batch), one_shot)
    chunks = np.concatenate([assign_to_centroids(part, centres) for part in np.array_split(vectors, 5)])
    np.testing.assert_array_equal(chunks, one_shot)
    with pytest.raises(ValueError):
        assign_to_centroids(vectors, centres[:, :5])


def test_kmeans_exposes_centres_and_predict_matches_its_labels() -> None:
    points, truth = blobs(sizes=(300, 200, 100))
    for threshold in (10_000, 150):  # a fit over all rows, and one on a 150-row sample
        clusterer = KMeansClusterer(seed=0, fit_sample_size=threshold)
        labels = clusterer.fit_predict(points)
        assert clusterer.cluster_centers_ is not None and clusterer.cluster_centers_.shape == (3, 16)
        np.testing.assert_array_equal(clusterer.predict(points), labels)
        np.testing.assert_array_equal(labels, truth)
        np.testing.assert_array_equal(KMeansClusterer(seed=0, fit_sample_size=threshold).fit(points).predict(points[::7]), labels[::7])
    with pytest.raises(ValueError):
        KMeansClusterer().predict(points)


def _planted_banking77() -> tuple[np.ndarray, np.ndarray]:
    """Real MiniLM vectors of four BANKING77 intents from four different coarse groups (4 x 70 queries)."""
    import csv
    from pathlib import Path

    from kiku.embed import MiniLMEmbedder

    picked = ("age_limit", "activate_my_card", "atm_support", "automatic_top_up")
    with open(Path(__file__).parent / "data" / "banking77-quality.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["category"] in picked]
    truth = np.array([picked.index(r["category"]) for r in rows])
    return np.asarray(MiniLMEmbedder().embed([r["text"] for r in rows]), dtype=np.float32), truth


def test_kmeans_fitted_on_a_sample_still_recovers_planted_real_clusters() -> None:
    """Above fit_sample_size (lowered to 120 of 280 rows) the fit sees a sample; the rest is assigned."""
    from sklearn.metrics import adjusted_rand_score

    vectors, truth = _planted_banking77()
    full = [adjusted_rand_score(truth, KMeansClusterer(seed=s).fit_predict(vectors)) for s in range(3)]
    sampled = []
    for seed in range(3):
        clusterer = KMeansClusterer(seed=seed, fit_sample_size=120)
        labels = clusterer.fit_predict(vectors)
        np.testing.assert_array_equal(labels, KMeansClusterer(seed=seed, fit_sample_size=120).fit_predict(vectors))
        np.testing.assert_array_equal(clusterer.predict(vectors), labels)
        sampled.append(adjusted_rand_score(truth, labels))
    assert min(sampled) >= 0.65
    assert np.mean(sampled) >= np.mean(full) - 0.05, (sampled, full)


def test_merge_pleasantries_merges_only_clusters_of_the_same_kinds() -> None:
    """Same kinds merge (and are relabelled by size); other kinds, topics, noise and clusters where
    under 60% of the members are pleasantries stay as they were."""
    groups = {
        0: ["thanks!", "thank you so much", "many thanks"],
        1: ["thanks a lot", "cheers, thanks", "thank you"],
        2: ["thanks, bye", "thank you, goodbye", "bye, thanks!"],
        3: ["hello", "hi there", "good morning"],
        4: ["reset my password", "password reset", "thanks, my card never arrived"],
        5: ["thanks", "my card never arrived", "card not here", "where is my card"],
        -1: ["thanks!", "bye"],
    }
    texts = [t for rows in groups.values() for t in rows]
    labels = np.array([label for label, rows in groups.items() for _ in rows])
    merged, summary = merge_pleasantries(labels, lambda rows: [texts[i] for i in rows])
    assert summary == {"Thanks": 2}
    assert len(set(merged[labels == 0]) | set(merged[labels == 1])) == 1  # one "Thanks" cluster of 6, now the largest
    assert merged[labels == 0][0] == 0
    assert len(set(merged[labels >= 0].tolist())) == 5
    assert (merged[labels == -1] == -1).all()
    words = ["thanks", "thank you", "reset", "password"]
    same, nothing = merge_pleasantries(np.array([0, 0, 1, 1]), lambda rows: [words[i] for i in rows])
    assert nothing == {} and same.tolist() == [0, 0, 1, 1]
