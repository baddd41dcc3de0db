"""The whole offline pipeline on real data: outputs, invariants, resume, determinism."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

import kiku
from conftest import write_jsonl
from kiku.embed import MiniLMEmbedder, text_hash
from kiku.pipeline import STAGES, Components, Progress, RunConfig, analyze, component_fingerprint, embedding_text
from kiku.records import Conversation, Message


class Recorder(Progress):
    def __init__(self) -> None:
        self.finished: dict[str, bool] = {}
        self.messages: list[str] = []

    def stage_finished(self, stage: str, seconds: float, reused: bool) -> None:
        self.finished[stage] = reused

    def message(self, text: str) -> None:
        self.messages.append(text)


def test_a_run_writes_every_stage_file_and_a_manifest(small_run) -> None:
    for name in ("conversations", "facets", "embeddings", "projection", "cluster_labels", "base_clusters", "clusters", "assignments"):
        assert (small_run.path / f"{name}.parquet").exists(), name
    manifest = json.loads((small_run.path / "manifest.json").read_text())
    assert manifest["counts"]["conversations"] == 200
    assert set(manifest["stages"]) == set(STAGES)
    assert manifest["input"]["fingerprint"] and manifest["versions"]["python"]
    assert all(manifest["stages"][s]["seconds"] >= 0 for s in STAGES)
    assert manifest["config"]["seed"] == 0


def test_every_conversation_has_one_cluster_per_level(small_run) -> None:
    assignments = small_run.assignments()
    clusters = small_run.clusters()
    top = int(clusters.level.max())
    assert top >= 1, "a multi-level tree is expected for 200 conversations"
    per_conversation = assignments.groupby("conversation_id")["level"].apply(sorted)
    assert len(per_conversation) == 200
    assert all(levels == list(range(top + 1)) for levels in per_conversation)
    # shares of the clusters that cover each level add up to 1
    for level in range(top + 1):
        covering = set(assignments[assignments.level == level].cluster_id)
        assert clusters[clusters.cluster_id.isin(covering)]["size"].sum() == 200


def test_tree_invariants(small_run) -> None:
    clusters = small_run.clusters()
    by_id = clusters.set_index("cluster_id")
    children = Counter(clusters.parent_id.dropna())
    for parent_id, count in children.items():
        assert count >= 2, f"{parent_id} has a single child"
        assert by_id.loc[parent_id, "level"] >= 1
    for (_level, parent), group in clusters.groupby(["level", clusters.parent_id.fillna("-")]):
        names = [n.casefold() for n in group.name]
        assert len(names) == len(set(names)), f"siblings share a name under {parent}: {names}"
    assert clusters.name.str.len().min() > 0
    assert clusters.x.notna().all() and clusters.y.notna().all()


def test_projection_covers_every_conversation(small_run) -> None:
    projection = pq.read_table(small_run.path / "projection.parquet").to_pandas()
    assert len(projection) == 200 and projection.conversation_id.is_unique
    assert np.isfinite(projection[["x", "y"]].to_numpy()).all()


def test_sql_over_the_run(small_run) -> None:
    frame = small_run.sql("select level, count(*) as n, sum(share) as total from clusters group by level order by level")
    assert frame.n.iloc[0] >= 2
    assert abs(frame.total.iloc[0] - 1.0) < 1e-6


def test_embedded_text_never_contains_ids_or_metadata() -> None:
    one = Conversation(id="conv-secret-1", metadata={"user": "alice@example.com"}, messages=[Message(role="user", content="How do I log a table?")])
    two = Conversation(id="conv-other-2", metadata={"user": "bob"}, messages=[Message(role="user", content="How do I log a table?")])
    assert embedding_text(one) == embedding_text(two) == "How do I log a table?"


class CountingEmbedder(MiniLMEmbedder):
    """The real embedder, recording the texts of each call that ran the model (the embed stage's
    call comes first; the keyphrase namer embeds phrases after it)."""

    def __init__(self, batch_size: int = 32, max_tokens: int = 48) -> None:
        super().__init__(batch_size=batch_size, max_tokens=max_tokens)
        self.batches: list[list[str]] = []

    def embed_with_info(self, texts, progress=None):  # noqa: ANN001, ANN201
        self.batches.append(list(texts))
        return super().embed_with_info(texts, progress=progress)


def test_identical_texts_with_different_ids_share_one_embedding(tmp_path, example_rows) -> None:
    rows = [dict(r) for r in example_rows[:30]]
    copies = [{**dict(r), "id": f"copy-{i}"} for i, r in enumerate(rows[:5])]
    embedder = CountingEmbedder()
    analyze(write_jsonl(tmp_path / "q.jsonl", rows + copies), tmp_path / "run", seed=0,
            components=Components(embedder=embedder))
    embeddings = pq.read_table(tmp_path / "run" / "embeddings.parquet").to_pandas().set_index("conversation_id")
    for original, copy in zip(rows[:5], copies):
        np.testing.assert_array_equal(embeddings.loc[original["id"], "embedding"], embeddings.loc[copy["id"], "embedding"])
    distinct = set(embeddings.text_hash)
    stage_texts = embedder.batches[0]
    assert len(stage_texts) == len(set(stage_texts)) == len(distinct) == 30, "the model embedded a text twice"
    assert {text_hash(t) for t in stage_texts} == distinct


def test_a_reused_embedder_keeps_its_fingerprint_and_the_embedding_cache(tmp_path, example_rows) -> None:
    embedder = CountingEmbedder()
    before = component_fingerprint(embedder)
    out = tmp_path / "run"
    analyze(write_jsonl(tmp_path / "q.jsonl", example_rows[:30]), out, seed=0, components=Components(embedder=embedder))
    assert embedder.calls >= 1 and component_fingerprint(embedder) == before
    first = len(embedder.batches)
    analyze(write_jsonl(tmp_path / "q.jsonl", example_rows[:35]), out, seed=0, components=Components(embedder=embedder))
    new_texts = embedder.batches[first]  # the embed stage's call of the second run
    assert len(new_texts) == 5, f"the embedding cache was thrown away: {len(new_texts)} texts embedded again"


def test_rerun_reuses_every_stage_and_a_changed_setting_reruns_only_what_it_affects(tmp_path, small_input) -> None:
    out = tmp_path / "run"
    analyze(small_input, out, seed=0)
    again = Recorder()
    analyze(small_input, out, seed=0, progress=again)
    assert all(again.finished[s] for s in STAGES), again.finished
    changed = Recorder()
    run = analyze(small_input, out, seed=0, clusters=7, progress=changed)
    assert [s for s in STAGES if not changed.finished[s]] == ["cluster", "name", "hierarchy"]
    assert (run.clusters().query("level == 0 and not is_noise").shape[0]) == 7


def test_a_changed_projection_reruns_the_hierarchy_so_topic_positions_follow_the_map(tmp_path, small_input) -> None:
    """Issue 12: the hierarchy reads the projection (topic x, y), so its fingerprint includes it."""
    out = tmp_path / "run"
    analyze(small_input, out, seed=0)
    changed = Recorder()
    run = analyze(small_input, out, seed=0, project_sample_size=100, progress=changed)
    assert [s for s in STAGES if not changed.finished[s]] == ["project", "hierarchy"]
    projection = run.store.read_table("projection").to_pandas().set_index("conversation_id")
    clusters = run.store.read_table("clusters").to_pandas()
    for row in clusters.itertuples():
        members = projection.loc[list(row.member_ids)]
        assert row.x == pytest.approx(float(members.x.mean()), abs=1e-5), row.cluster_id
        assert row.y == pytest.approx(float(members.y.mean()), abs=1e-5), row.cluster_id


class Crash(Exception):
    pass


class CrashingClusterer:
    name = "crashing"

    def fit_predict(self, embeddings):
        raise Crash("killed")


def test_a_killed_run_resumes_without_redoing_finished_stages(tmp_path, small_input) -> None:
    out = tmp_path / "run"
    with pytest.raises(Crash):
        analyze(small_input, out, seed=0, components=Components(clusterer=CrashingClusterer()))
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"load", "describe", "embed", "project"}
    resumed = Recorder()
    analyze(small_input, out, seed=0, progress=resumed)
    assert [s for s in STAGES if not resumed.finished[s]] == ["cluster", "name", "hierarchy"]


def test_same_input_and_config_give_the_same_result(tmp_path, small_input, small_run) -> None:
    other = analyze(small_input, tmp_path / "again", seed=0)
    columns = ["cluster_id", "level", "parent_id", "name", "size"]
    a = small_run.clusters()[columns].sort_values("cluster_id").reset_index(drop=True)
    b = other.clusters()[columns].sort_values("cluster_id").reset_index(drop=True)
    assert a.equals(b)
    pa_ = pq.read_table(small_run.path / "projection.parquet").to_pandas()
    pb = pq.read_table(other.path / "projection.parquet").to_pandas()
    np.testing.assert_allclose(pa_[["x", "y"]].to_numpy(), pb[["x", "y"]].to_numpy(), atol=1e-5)


def test_hdbscan_noise_is_an_explicit_bucket_never_a_topic(tmp_path, example_rows) -> None:
    rows = example_rows[:300]
    run = analyze(write_jsonl(tmp_path / "q.jsonl", rows), tmp_path / "run", clusterer="hdbscan", seed=0)
    clusters = run.clusters()
    noise = clusters[clusters.is_noise]
    assert run.manifest["counts"]["unclustered"] == int(noise[noise.level == 0]["size"].sum())
    assert len(noise), "300 real queries under HDBSCAN are expected to leave some noise"
    assert set(noise.name) == {"Unclustered"}
    topics = clusters[~clusters.is_noise]
    assert not topics.parent_id.isin(noise.cluster_id).any(), "a topic sits under the noise bucket"
    noise_members = set(run.assignments().query("cluster_id == 'unclustered'").conversation_id)
    topic_members = set(run.assignments().query("level == 0 and cluster_id != 'unclustered'").conversation_id)
    assert not noise_members & topic_members


def test_long_conversations_are_truncated_for_embedding_and_the_run_says_so(tmp_path, example_rows) -> None:
    rows = [dict(r) for r in example_rows[:40]]
    rows[0] = {"id": "long-1", "messages": [{"role": "user", "content": "wandb sweep configuration " * 400}]}
    recorder = Recorder()
    run = analyze(write_jsonl(tmp_path / "q.jsonl", rows), tmp_path / "run", seed=0, progress=recorder)
    assert run.manifest["counts"]["truncated_for_embedding"] >= 1
    assert any("truncated for embedding" in m for m in recorder.messages)


def test_user_facets_are_stored_as_columns_and_filterable(tmp_path, example_rows) -> None:
    registry = kiku.FacetRegistry({"mentions_sweep": lambda c: "sweep" in c.first_user_message.lower()})
    run = analyze(
        write_jsonl(tmp_path / "q.jsonl", example_rows[:60]), tmp_path / "run", seed=0,
        components=Components(describer=kiku.OfflineDescriber(registry)),
    )
    frame = run.sql("select count(*) as n from facets where facet_mentions_sweep")
    expected = sum("sweep" in r["messages"][0]["content"].lower() for r in example_rows[:60])
    assert frame.n.iloc[0] == expected


def test_config_rejects_unknown_settings() -> None:
    with pytest.raises(ValidationError, match="cluster_count"):
        RunConfig(cluster_count=3)  # type: ignore[call-arg]


def test_no_parent_is_named_like_one_of_its_children(small_run) -> None:
    clusters = small_run.clusters()
    names = dict(zip(clusters["cluster_id"], clusters["name"]))
    parents = clusters[clusters["parent_id"].notna()].groupby("parent_id")["name"].apply(lambda s: {n.casefold() for n in s})
    assert len(parents) >= 2
    for parent_id, child_names in parents.items():
        assert names[parent_id].casefold() not in child_names, (names[parent_id], child_names)


def test_levels_and_max_top_reach_the_llm_hierarchy(tmp_path, monkeypatch) -> None:
    """--levels is honoured with --llm (issue 12: it was silently ignored)."""
    pytest.importorskip("openai")
    from kiku.hierarchy import level_sizes
    from kiku.pipeline import default_components

    monkeypatch.setenv("OPENAI_API_KEY", "test-key-never-sent")
    monkeypatch.setenv("KIKU_CACHE_DIR", str(tmp_path))
    fixed = default_components(RunConfig(llm="openai/gpt-4o-mini", llm_scope="conversations", levels=1, max_top=5)).hierarchy
    free = default_components(RunConfig(llm="openai/gpt-4o-mini", llm_scope="conversations", max_top=5)).hierarchy
    assert (fixed.levels, fixed.top_size) == (1, 5)
    assert component_fingerprint(fixed) != component_fingerprint(free)
    scoped = default_components(RunConfig(llm="openai/gpt-4o-mini", levels=1, max_top=5)).hierarchy  # clusters scope
    assert (scoped.levels, scoped.max_top) == (1, 5)
    assert component_fingerprint(scoped) != component_fingerprint(default_components(RunConfig(llm="openai/gpt-4o-mini")).hierarchy)
    assert len(level_sizes(200, max_top=5, branching=6.0, min_ratio=1.0)) == 3
    assert level_sizes(200, levels=1, max_top=5) == [5] and level_sizes(200, levels=0, max_top=5) == []


def _assignments_row_by_row(clusters: list) -> list[tuple[str, int, str]]:
    """The per-row reference for assignments.parquet (what the table was built from before issue 15)."""
    by_id = {c.id: c for c in clusters}
    top = max((c.level for c in clusters), default=0)
    rows = []
    for base in (c for c in clusters if c.level == 0):
        chain = [base]
        while chain[-1].parent_id is not None:
            chain.append(by_id[chain[-1].parent_id])
        for level in range(top + 1):
            covering = [c for c in chain if c.level <= level][-1]
            rows += [(member, level, covering.id) for member in base.member_ids]
    return rows


def test_clusters_and_assignments_tables_from_arrays_match_the_row_by_row_reference(small_run, tmp_path, example_rows) -> None:
    from kiku.pipeline import assignments_table, clusters_from_table, clusters_to_table

    for run in (small_run, kiku.analyze(write_jsonl(tmp_path / "q.jsonl", example_rows[:240]), tmp_path / "hdb",
                                        clusterer="hdbscan", seed=0)):
        stored = run.store.read_table("clusters")
        tree = clusters_from_table(stored)
        assert clusters_to_table(tree, run.manifest["counts"]["conversations"]).equals(stored)
        rows = _assignments_row_by_row(tree)
        table = assignments_table(tree)
        assert list(zip(*(table.column(c).to_pylist() for c in ("conversation_id", "level", "cluster_id")))) == rows
        assert table.equals(run.store.read_table("assignments"))
        expected = [
            {"cluster_id": c.id, "level": c.level, "parent_id": c.parent_id, "name": c.name, "description": c.description,
             "size": c.size, "share": c.size / len(run.store.read_table("embeddings", columns=["conversation_id"])),
             "keyphrases": c.keyphrases, "representative_request": c.representative_request, "is_noise": c.is_noise,
             "x": c.x, "y": c.y, "member_ids": c.member_ids}
            for c in tree
        ]
        assert stored.to_pylist() == expected
