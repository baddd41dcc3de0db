"""Quality guard: the default embedder, clusterer and hierarchy on a real labelled slice.

tests/data/banking77-quality.csv holds 840 real BANKING77 queries (12 intents x 70, from 4 coarse
themes; see tests/data/make_slices.py and NOTICE). The thresholds sit between what the
defaults score and what kiku's old size-only rule (k = round(sqrt(n)) = 29 here) scored:

| seed 0 | NMI | ARI |
|---|---:|---:|
| old default, k = sqrt(n) | 0.800 | 0.579 |
| default (data-chosen k) | 0.840 | 0.713 |
| k-means at the true k = 12 | 0.822 | 0.717 |

So the check fails when the granularity drifts back towards a size rule or quality drops; it
is not a snapshot of labels.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from kiku.cluster import KMeansClusterer, centroids
from kiku.embed import MiniLMEmbedder
from kiku.hierarchy import AgglomerativeHierarchy
from kiku.naming import KeyphraseNamer, name_fidelity
from kiku.protocols import Corpus, TopicDraft
from kiku.records import Cluster

DATA = Path(__file__).parent / "data" / "banking77-quality.csv"


@pytest.fixture(scope="module")
def labelled() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, MiniLMEmbedder]:
    with open(DATA, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = [r["text"] for r in rows]
    embedder = MiniLMEmbedder()
    vectors = embedder.embed(texts)
    return texts, np.array([r["category"] for r in rows]), np.array([r["coarse"] for r in rows]), vectors, embedder


def test_default_granularity_beats_the_size_rule(labelled) -> None:
    _, intents, _, vectors, _ = labelled
    clusterer = KMeansClusterer(seed=0)
    labels = clusterer.fit_predict(vectors)
    nmi, ari = normalized_mutual_info_score(intents, labels), adjusted_rand_score(intents, labels)
    assert 8 <= clusterer.n_clusters_ <= 36
    assert nmi >= 0.82, nmi
    assert ari >= 0.65, ari
    old = KMeansClusterer(n_clusters=round(math.sqrt(len(vectors))), seed=0).fit_predict(vectors)
    assert ari > adjusted_rand_score(intents, old) + 0.05  # the guard really separates the two


def _top_labels(tops: list[Cluster], size: int) -> np.ndarray:
    """The top topic of each of the ``size`` rows (ids "q<row>"; -1 where none holds it)."""
    out = np.full(size, -1)
    for number, cluster in enumerate(tops):
        out[[int(m[1:]) for m in cluster.member_ids]] = number
    return out


def test_default_hierarchy_top_level_follows_the_themes(labelled) -> None:
    texts, _, coarse, vectors, embedder = labelled
    labels = KMeansClusterer(seed=0).fit_predict(vectors)
    ids = [f"q{i}" for i in range(len(texts))]
    corpus = Corpus(ids=ids, texts=texts, requests=texts, embeddings=vectors)
    namer = KeyphraseNamer(embedder)
    means = centroids(vectors, labels)
    drafts = [TopicDraft(key=f"c{k}", member_index=np.flatnonzero(labels == k), centroid=means[k]) for k in sorted(means)]
    base = [
        Cluster(id=d.key, level=0, name=t.name, member_ids=[ids[i] for i in d.member_index])
        for d, t in zip(drafts, namer.name_topics(drafts, corpus))
    ]
    tree = AgglomerativeHierarchy(namer, seed=0).build(base, corpus)
    top = max(c.level for c in tree)
    tops = [c for c in tree if c.level == top]
    assert 2 <= len(tops) <= 10
    assert max(c.size for c in tops) / len(texts) <= 0.5
    tree_nmi = normalized_mutual_info_score(coarse, _top_labels(tops, len(texts)))
    assert tree_nmi >= 0.70, tree_nmi  # 0.75 as built; a top level mixing the 4 themes scores far lower


def _named_tree(
    texts: list[str], vectors: np.ndarray, labels: np.ndarray, namer: KeyphraseNamer, method: str = "spectral"
) -> tuple[list[Cluster], list[Cluster], Corpus]:
    """Base clusters named by ``namer`` and the hierarchy over them (default unless ``method``; top level last)."""
    ids = [f"q{i}" for i in range(len(texts))]
    corpus = Corpus(ids=ids, texts=texts, requests=texts, embeddings=vectors)
    means = centroids(vectors, labels)
    drafts = [TopicDraft(key=f"c{k}", member_index=np.flatnonzero(labels == k), centroid=means[k]) for k in sorted(means)]
    base = [
        Cluster(id=d.key, level=0, name=t.name, keyphrases=t.keyphrases, member_ids=[ids[i] for i in d.member_index])
        for d, t in zip(drafts, namer.name_topics(drafts, corpus))
    ]
    tree = AgglomerativeHierarchy(namer, seed=0, method=method).build(base, corpus)
    top = max(c.level for c in tree)
    return [c for c in tree if c.level == 0], [c for c in tree if c.level == top], corpus


def _fidelity(clusters: list[Cluster], truth: np.ndarray, label_names: dict[str, str], embed: Any) -> float:
    majority = [Counter(truth[[int(m[1:]) for m in c.member_ids]].tolist()).most_common(1)[0][0] for c in clusters]
    return name_fidelity([c.name for c in clusters], majority, [c.size for c in clusters], label_names, embed)


def test_default_names_point_at_the_intents_and_the_themes(labelled) -> None:
    """Name fidelity (issue 11) of the offline namer with the real MiniLM, base and top level.

    A base name is right when the intent name nearest to it ("card arrival") is its cluster's
    majority intent (size-weighted); a top-level name likewise against the 4 theme names.
    Measured as built: base 0.832, top 0.904 (the namer before issue 11 point 4: 0.868 / 0.904 on
    this slice; across the six labelled sets of benchmarks/names_fidelity.py the new one is
    better, see benchmarks/results/names.md). A namer naming parents "Mixed: ..." or after
    code, or base clusters after filler, falls well below.
    """
    texts, intents, coarse, vectors, embedder = labelled
    labels = KMeansClusterer(seed=0).fit_predict(vectors)
    base, tops, _ = _named_tree(texts, vectors, labels, KeyphraseNamer(embedder))
    base_fidelity = _fidelity(base, intents, {x: x.replace("_", " ") for x in set(intents)}, embedder.embed)
    top_fidelity = _fidelity(tops, coarse, {x: x for x in set(coarse)}, embedder.embed)
    assert base_fidelity >= 0.80, base_fidelity
    assert top_fidelity >= 0.87, top_fidelity
    assert not any(c.name.startswith("Mixed") for c in tops)  # the themes are coherent: each gets a real name


def test_top_level_follows_domains_that_many_turns_do_not_name(labelled) -> None:
    """tests/data/multiwoz-domains.jsonl: 843 MultiWOZ user turns, 50 of each of 17 dialogue acts
    in 8 domains. Many turns do not say their domain ("What is the address?" is asked of hotels,
    restaurants and attractions), so base clusters form by what is asked and their centroids sit
    apart from their domain's; their rows' neighbours do not. The default grouping (spectral, over
    centroids and neighbour links) follows the domains; grouping the centroids alone does not.
    Measured as built (seed 0): top level NMI vs the domains 0.680 (default) against 0.581 (the
    k-means grouping of the centroids, the default until 4 December 2026).
    """
    import json

    rows = [json.loads(line) for line in (DATA.parent / "multiwoz-domains.jsonl").read_text(encoding="utf-8").splitlines()]
    texts, domains = [r["text"] for r in rows], np.array([r["domain"] for r in rows])
    assert len(rows) == 843 and len(set(domains)) == 8
    embedder = labelled[4]
    vectors = embedder.embed(texts)
    labels = KMeansClusterer(seed=0).fit_predict(vectors)
    namer = KeyphraseNamer(embedder)
    _, tops, _ = _named_tree(texts, vectors, labels, namer)
    _, centroid_tops, _ = _named_tree(texts, vectors, labels, namer, method="kmeans")
    default = normalized_mutual_info_score(domains, _top_labels(tops, len(texts)))
    centroids_only = normalized_mutual_info_score(domains, _top_labels(centroid_tops, len(texts)))
    assert default >= 0.63, default
    assert default >= centroids_only + 0.05, (default, centroids_only)
    assert max(c.size for c in tops) / len(texts) <= 0.35


def test_the_corpus_name_no_longer_groups_questions_by_spelling(example_rows) -> None:
    """The bundled 560 W&B queries, each with the title of the document that answers it (187).

    Clustered as embedded, k-means groups them by how they spell the product ("Weights &
    Biases", "wandb", "WandB": 91-112 queries in the largest cluster, NMI vs the titles
    0.59-0.60 over seeds 0-2); with the name's directions projected out (what stage_cluster
    clusters) NMI is 0.66-0.68 and the largest cluster 39-45.
    """
    from kiku.cluster import without_corpus_name

    texts = [r["messages"][0]["content"] for r in example_rows]
    titles = np.array([r["metadata"]["document_title"] for r in example_rows])
    embedder = MiniLMEmbedder()
    vectors = embedder.embed(texts)
    cleaned, words = without_corpus_name(vectors, texts, embedder.embed)
    assert sorted(words) == ["biases", "wandb", "weights"]
    before = KMeansClusterer(seed=0).fit_predict(vectors)
    after = KMeansClusterer(seed=0).fit_predict(cleaned)
    gain = normalized_mutual_info_score(titles, after) - normalized_mutual_info_score(titles, before)
    assert gain >= 0.04, gain
    assert np.bincount(after).max() <= 0.6 * np.bincount(before).max()


def test_no_corpus_name_leaves_the_vectors_alone(labelled) -> None:
    from kiku.cluster import without_corpus_name

    texts, _, _, vectors, embedder = labelled
    cleaned, words = without_corpus_name(vectors, texts, embedder.embed)
    assert words == [] and cleaned is vectors


def test_the_run_clusters_and_maps_the_same_vectors(tmp_path: Path) -> None:
    """A run of the bundled example: the manifest names the words taken out, and the map is drawn
    from the same vectors as the clusters, so each cluster is one place on it (2-D silhouette of
    the base clusters 0.23; on a map of the stored embeddings the same clusters score -0.01)."""
    from sklearn.metrics import silhouette_score

    import kiku
    from kiku.project import project_embeddings

    example = Path(__file__).resolve().parents[1] / "examples" / "wandb-queries.jsonl"
    run = kiku.analyze(example, tmp_path / "run", seed=0)
    assert sorted(run.manifest["stages"]["cluster"]["corpus_name"]) == ["biases", "wandb", "weights"]
    labels = run.store.read_table("cluster_labels").column("label").to_numpy()
    projection = run.store.read_table("projection")
    on_map = np.column_stack([projection.column("x").to_numpy(), projection.column("y").to_numpy()])
    stored = np.stack(run.store.read_table("embeddings").column("embedding").to_pylist()).astype(np.float32)
    raw_map = project_embeddings(stored, seed=0)
    assert silhouette_score(on_map, labels) > silhouette_score(raw_map, labels) + 0.1


def test_keep_corpus_name_clusters_the_stored_embeddings(tmp_path: Path) -> None:
    """``kiku run --keep-corpus-name``: nothing is projected out, the clusters are k-means' over the
    stored embeddings, and the manifest says no word was taken out."""
    from cli_helpers import kiku as kiku_cli
    from kiku.store import RunStore, read_manifest

    example = Path(__file__).resolve().parents[1] / "examples" / "wandb-queries.jsonl"
    done = kiku_cli("run", example, "--out", tmp_path / "kept", "--keep-corpus-name")
    assert done.returncode == 0, done.stderr
    manifest = read_manifest(tmp_path / "kept")
    assert manifest["stages"]["cluster"]["corpus_name"] == [] and manifest["config"]["remove_corpus_name"] is False
    store = RunStore(tmp_path / "kept")
    stored = np.stack(store.read_table("embeddings").column("embedding").to_pylist()).astype(np.float32)
    labels = store.read_table("cluster_labels").column("label").to_numpy()
    assert adjusted_rand_score(labels, KMeansClusterer(seed=0).fit_predict(stored)) == 1.0


def test_one_base_topic_per_kind_of_pleasantry(tmp_path: Path) -> None:
    """tests/data/multiwoz-domains.jsonl holds 50 "general-thank" and 50 "general-bye" turns.
    k-means splits them by wording: at seed 0 five base clusters the namer calls "Thanks" (3) and
    "Thanks and goodbyes" (2), shown as "Thanks", "Thanks (2)", ... A run merges clusters made of
    the same pleasantries (``cluster.merge_pleasantries``), says so in the manifest, and its base
    clusters follow the acts more closely (ARI 0.483 -> 0.504 as built); ``merge_pleasantries=False``
    (``--keep-pleasantries-apart``) keeps them apart."""
    import json
    import re

    import kiku

    source = DATA.parent / "multiwoz-domains.jsonl"
    acts = np.array([json.loads(line)["act"] for line in source.read_text(encoding="utf-8").splitlines()])
    runs = {merged: kiku.analyze(source, tmp_path / str(merged), seed=0, merge_pleasantries=merged) for merged in (True, False)}
    thanks = re.compile(r"^Thanks( and goodbyes)?( \(\d+\))?$")
    base_names, ari = {}, {}
    for merged, run in runs.items():
        clusters = run.store.read_table("clusters").to_pylist()
        base_names[merged] = [c["name"] for c in clusters if c["level"] == 0 and thanks.match(c["name"])]
        labels = run.store.read_table("cluster_labels").column("label").to_numpy()
        ari[merged] = adjusted_rand_score(acts, labels)
    assert sorted(base_names[True]) == ["Thanks", "Thanks and goodbyes"], base_names[True]
    assert len(base_names[False]) >= 4, base_names[False]
    assert runs[True].manifest["stages"]["cluster"]["pleasantries_merged"] == {"Thanks": 3, "Thanks and goodbyes": 2}
    assert runs[False].manifest["stages"]["cluster"]["pleasantries_merged"] == {}
    assert ari[True] > ari[False] + 0.01, ari
