"""Tests of the agglomerative hierarchy: tree invariants, levels, noise, names, determinism."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from kiku.hierarchy import NOISE_TOP_ID, AgglomerativeHierarchy, kmeans_groups, level_sizes, ward_groups
from kiku.naming import KeyphraseNamer
from kiku.protocols import Corpus, HierarchyBuilder, TopicName
from kiku.records import Cluster
from stage_corpus import THEMES, shared_embedder, theme_corpus


class SameNameNamer:
    """Names every topic "Topic": the hierarchy itself must keep sibling names apart."""

    name = "same"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def name_topics(self, drafts, corpus):  # noqa: ANN001, ANN201
        self.calls.append([d.key for d in drafts])
        return [TopicName(name="Topic", description="", keyphrases=[f"kp{len(d.member_index)}", d.key]) for d in drafts]


def synthetic(n_base: int = 60, per: int = 5, dim: int = 16, seed: int = 0, noise: int = 0) -> tuple[list[Cluster], Corpus]:
    """n_base base clusters of `per` members each, in a few families, plus an optional noise bucket."""
    rng = np.random.default_rng(seed)
    families = rng.normal(size=(6, dim))
    vectors, ids, base = [], [], []
    for b in range(n_base):
        centre = families[b % 6] + rng.normal(0, 0.4, dim)
        members = []
        for _ in range(per + b % 3):
            ids.append(f"c{len(ids):04d}")
            members.append(ids[-1])
            vectors.append(centre + rng.normal(0, 0.1, dim))
        base.append(Cluster(id=f"b{b:03d}", level=0, name=f"Base {b % 7}", member_ids=members, keyphrases=[f"k{b}", f"x{b}", f"y{b}"]))
    if noise:
        members = []
        for _ in range(noise):
            ids.append(f"c{len(ids):04d}")
            members.append(ids[-1])
            vectors.append(rng.normal(size=dim))
        base.append(Cluster(id="unclustered", level=0, name="Unclustered", member_ids=members, is_noise=True))
    array = np.asarray(vectors, dtype=np.float32)
    array /= np.linalg.norm(array, axis=1, keepdims=True)
    return base, Corpus(ids=ids, texts=[""] * len(ids), requests=[""] * len(ids), embeddings=array)


def check_tree(tree: list[Cluster], base: list[Cluster], max_top: int | None = None) -> int:
    """Assert the tree invariants; returns the top level."""
    by_id = {c.id: c for c in tree}
    assert len(by_id) == len(tree), "cluster ids are unique"
    topics = [c for c in tree if not c.is_noise]
    top = max(c.level for c in topics)
    children: dict[str, list[Cluster]] = defaultdict(list)
    for c in topics:
        if c.level < top:
            assert c.parent_id is not None, f"{c.id} below the top has a parent"
            assert by_id[c.parent_id].level == c.level + 1, "parents are exactly one level up"
            children[c.parent_id].append(c)
        else:
            assert c.parent_id is None
    for c in topics:
        if c.level >= 1:
            kids = children[c.id]
            assert len(kids) >= 2, f"{c.id} has a single child"
            union = [m for k in kids for m in k.member_ids]
            assert sorted(c.member_ids) == sorted(union) and len(set(union)) == len(union)
    siblings: dict[tuple, list[str]] = defaultdict(list)
    for c in topics:
        siblings[(c.parent_id, c.level if c.parent_id is None else None)].append(c.name.lower())
    for names in siblings.values():
        assert len(set(names)) == len(names), f"sibling names repeat: {names}"
    all_members = sorted(m for c in base if not c.is_noise for m in c.member_ids)
    for level in range(top + 1):
        assert sorted(m for c in topics if c.level == level for m in c.member_ids) == all_members
    if max_top is not None:
        assert sum(1 for c in topics if c.level == top) <= max_top
    base_out = [c for c in tree if c.level == 0]
    assert [c.id for c in base_out] == [c.id for c in base]
    return top


@pytest.mark.parametrize("method", ["spectral", "kmeans", "ward"])
@pytest.mark.parametrize(("max_top", "levels"), [(None, None), (4, None), (None, 1), (None, 2), (3, 2), (12, None)])
def test_tree_invariants(max_top: int | None, levels: int | None, method: str) -> None:
    base, corpus = synthetic()
    builder = AgglomerativeHierarchy(SameNameNamer(), levels=levels, max_top=max_top, method=method)
    assert isinstance(builder, HierarchyBuilder)
    tree = builder.build(base, corpus)
    top = check_tree(tree, base, max_top)
    if levels is not None:
        assert 1 <= top <= levels
    else:
        assert top >= 1
    assert sum(1 for c in tree if c.level == top) >= 2


def test_default_levels_shrink_geometrically() -> None:
    base, corpus = synthetic(n_base=120)
    tree = AgglomerativeHierarchy(SameNameNamer()).build(base, corpus)
    counts = [sum(1 for c in tree if c.level == level) for level in range(max(c.level for c in tree) + 1)]
    # 120 base clusters: one parent level of at most 10 (about 12 children each, as a person would draw)
    assert counts[0] == 120 and counts[-1] <= 10 and len(counts) == 2
    for lower, upper in zip(counts, counts[1:]):
        assert 2 <= lower / upper <= 20


@pytest.mark.parametrize("method", ["spectral", "kmeans", "ward"])
def test_namer_called_once_per_level_and_parent_ids_stable(method: str) -> None:
    base, corpus = synthetic()
    namer = SameNameNamer()
    first = AgglomerativeHierarchy(namer, max_top=5, method=method, seed=3).build(base, corpus)
    assert len(namer.calls) == max(c.level for c in first)
    assert all(key.startswith(f"L{level}-") for level, keys in enumerate(namer.calls, start=1) for key in keys)
    second = AgglomerativeHierarchy(SameNameNamer(), max_top=5, method=method, seed=3).build(base, corpus)
    assert [c.model_dump() for c in first] == [c.model_dump() for c in second]
    level1 = [c for c in first if c.level == 1]
    assert [c.size for c in level1] == sorted((c.size for c in level1), reverse=True)


def test_noise_stays_out_of_topics() -> None:
    base, corpus = synthetic(noise=9)
    tree = AgglomerativeHierarchy(SameNameNamer(), max_top=4).build(base, corpus)
    check_tree(tree, base, 4)
    noise = [c for c in tree if c.is_noise]
    assert [c.id for c in noise] == ["unclustered", NOISE_TOP_ID]
    top = max(c.level for c in tree)
    assert noise[1].level == top and noise[1].parent_id is None and noise[1].name == "Unclustered"
    assert noise[0].parent_id == NOISE_TOP_ID and noise[1].member_ids == noise[0].member_ids
    noise_ids = set(noise[0].member_ids)
    assert all(not noise_ids & set(c.member_ids) for c in tree if not c.is_noise)


def test_few_base_clusters_need_no_parents() -> None:
    base, corpus = synthetic(n_base=6, noise=3)
    tree = AgglomerativeHierarchy(SameNameNamer()).build(base, corpus)
    assert all(c.level == 0 and c.parent_id is None for c in tree)
    assert len({c.name for c in tree if not c.is_noise}) == 6  # top-level siblings made unique
    one, corpus_one = synthetic(n_base=1)
    assert AgglomerativeHierarchy(SameNameNamer(), levels=3).build(one, corpus_one)[0].parent_id is None


def test_real_themes_group_into_named_parents() -> None:
    corpus, labels = theme_corpus()
    namer = KeyphraseNamer(shared_embedder())
    base = []
    for k, theme in enumerate(THEMES):
        index = np.flatnonzero(labels == k)
        for half, part in enumerate((index[:3], index[3:])):
            base.append(Cluster(id=f"{theme}-{half}", level=0, name=f"{theme} {half}", member_ids=[corpus.ids[i] for i in part]))
    tree = AgglomerativeHierarchy(namer, levels=1, max_top=5).build(base, corpus)
    check_tree(tree, base, 5)
    parents = [c for c in tree if c.level == 1]
    assert len(parents) == 5
    for parent in parents:
        themes = {c.id.split("-")[0] for c in tree if c.parent_id == parent.id}
        assert len(themes) == 1  # both halves of a theme, nothing else
        assert parent.description.startswith("Conversations about")
        assert parent.representative_request in corpus.requests


def test_level_sizes_and_ward_groups() -> None:
    assert level_sizes(114) == [10]
    assert level_sizes(400) == [63, 10]
    assert level_sizes(10) == []
    assert level_sizes(50, levels=2, max_top=5)[-1] <= 5
    assert level_sizes(3, levels=4) == [2]
    for grouping in (ward_groups, kmeans_groups):
        groups = grouping(np.array([[0.0], [0.1], [0.2], [10.0]]), np.array([1.0, 1.0, 1.0, 50.0]), 3)
        assert all(len(g) >= 2 for g in groups)
        assert sorted(i for g in groups for i in g) == [0, 1, 2, 3]
    means = np.random.default_rng(0).normal(size=(40, 3))
    assert kmeans_groups(means, np.ones(40), 5, seed=2) == kmeans_groups(means, np.ones(40), 5, seed=2)
    with pytest.raises(ValueError, match="method"):
        AgglomerativeHierarchy(SameNameNamer(), method="average")


def test_noise_cluster_is_the_one_unclustered_node() -> None:
    from kiku.records import NOISE_NAME, noise_cluster

    node = noise_cluster(["1", "2", "3"])
    assert (node.id, node.level, node.name, node.is_noise, node.parent_id) == ("unclustered", 0, NOISE_NAME, True, None)
    assert node.description.startswith("3 conversations")
    top = noise_cluster(["1"], level=2, id=NOISE_TOP_ID, description="not a topic")
    assert (top.id, top.level, top.name, top.description) == (NOISE_TOP_ID, 2, "Unclustered", "not a topic")
