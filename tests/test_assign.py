"""kiku assign on real data: a base run on half of a BANKING77 slice, the other half plus
out-of-domain conversations (W&B queries, ShareGPT) assigned to it with the real embedder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

import kiku as kiku_api
from cli_helpers import kiku
from kiku.assign import assign, place_on_map, topic_thresholds, unit
from kiku.errors import KikuError
from kiku.store import RunStore, read_frame
from living_runs import conversation, halves, out_of_domain, write_jsonl


@pytest.fixture(scope="module")
def living(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("living")
    base_input, new_input, base_rows, new_rows = halves(folder)
    base = kiku_api.analyze(base_input, folder / "base", seed=0)
    foreign = out_of_domain()
    # three exact copies of base conversations: they must land where their originals are on the map
    copies = [conversation("copy-" + r["id"], r["text"], "copy") for r in base_rows[:3]]
    mixed = write_jsonl(folder / "mixed.jsonl", [
        conversation(r["id"], r["text"], "bank", intent=r["intent"]) for r in new_rows] + foreign + copies)
    assigned = assign(base.path, mixed, folder / "assigned")
    return {"folder": folder, "base": base.path, "assigned": assigned.path, "base_rows": base_rows,
            "new_rows": new_rows, "foreign": foreign, "copies": copies}


def _parent(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _frame(run: Path, table: str):  # noqa: ANN202
    return read_frame(run, table)


def test_ids_names_and_parents_are_the_base_runs(living: dict) -> None:
    base = _frame(living["base"], "clusters").set_index("cluster_id")
    new = _frame(living["assigned"], "clusters").set_index("cluster_id")
    topics = base[~base.is_noise]
    assert set(topics.index) <= set(new.index)
    for cid, row in topics.iterrows():
        assert new.loc[cid, "name"] == row["name"]
        assert new.loc[cid, "level"] == row["level"]
        assert _parent(new.loc[cid, "parent_id"]) == _parent(row["parent_id"])
        assert new.loc[cid, "base_share"] == pytest.approx(row["share"])
    # every conversation has one topic on every level
    assignments = _frame(living["assigned"], "assignments")
    levels = sorted(base.level.unique())
    assert assignments.groupby("conversation_id")["level"].apply(sorted).map(lambda x: x == levels).all()


def test_in_domain_assigned_out_of_domain_unassigned(living: dict) -> None:
    run = living["assigned"]
    scores = _frame(run, "assign_scores").set_index("conversation_id")
    bank = [r["id"] for r in living["new_rows"]]
    foreign = [r["id"] for r in living["foreign"]]
    assert scores.loc[bank, "assigned"].mean() >= 0.9
    assert scores.loc[foreign, "assigned"].mean() <= 0.1
    # the unassigned sit under "Unassigned", in candidate new topics flagged as new
    clusters = _frame(run, "clusters").set_index("cluster_id")
    level0 = _frame(run, "assignments").query("level == 0").set_index("conversation_id").cluster_id
    unassigned = scores.index[~scores.assigned]
    assert set(level0.loc[unassigned]) <= {c for c in clusters.index if c.startswith("new-") or c == "unassigned-rest"}
    new_topics = clusters[clusters.index.str.startswith("new-")]
    assert len(new_topics) >= 2 and new_topics.is_new.all()
    assert clusters.loc["unassigned", "is_new"] and clusters.loc["unassigned", "name"] == "Unassigned"
    assert (new_topics.parent_id == "unassigned").all()
    # similarity and threshold are recorded, and they decide
    assert ((scores.similarity >= scores.threshold) == scores.assigned).all()


def test_assigned_half_scores_like_the_base_run(living: dict) -> None:
    """The base topics carry the same information about the intents for held-out conversations."""
    base0 = _frame(living["base"], "assignments").query("level == 0").set_index("conversation_id").cluster_id
    new0 = _frame(living["assigned"], "assignments").query("level == 0").set_index("conversation_id").cluster_id
    base_nmi = normalized_mutual_info_score([r["intent"] for r in living["base_rows"]],
                                            base0.loc[[r["id"] for r in living["base_rows"]]])
    new_nmi = normalized_mutual_info_score([r["intent"] for r in living["new_rows"]],
                                           new0.loc[[r["id"] for r in living["new_rows"]]])
    assert new_nmi >= base_nmi - 0.05


def test_placed_on_the_base_map_without_refitting(living: dict) -> None:
    base_xy = _frame(living["base"], "projection").set_index("conversation_id")
    new_xy = _frame(living["assigned"], "projection").set_index("conversation_id")
    for copy in living["copies"]:
        original = copy["id"].removeprefix("copy-")
        assert np.allclose(new_xy.loc[copy["id"], ["x", "y"]].to_numpy(dtype=float),
                           base_xy.loc[original, ["x", "y"]].to_numpy(dtype=float), atol=0.05)
    # the base map is untouched
    assert RunStore(living["base"]).table_is_whole("projection")


def test_every_reader_accepts_the_assigned_run(living: dict, tmp_path: Path) -> None:
    run = living["assigned"]
    tree = kiku("tree", run)
    assert tree.returncode == 0, tree.stderr
    assert "(base " in tree.stdout and "Unassigned" in tree.stdout and "(new)" in tree.stdout
    sql = kiku("sql", run, "select count(*) as n from assign_scores where assigned")
    assert sql.returncode == 0, sql.stderr
    exported = kiku("export", run, "assignments", tmp_path / "a.csv")
    assert exported.returncode == 0, exported.stderr
    from kiku.web.data import RunData

    bundle = RunData(run).bundle()
    assert bundle["n"] == len(living["new_rows"]) + len(living["foreign"]) + len(living["copies"])
    assert any(c["id"] == "unassigned" for c in bundle["clusters"])


def test_assign_cli_one_line_summary(living: dict, tmp_path: Path) -> None:
    small = write_jsonl(tmp_path / "few.jsonl", [conversation(r["id"], r["text"], "bank") for r in living["new_rows"][:40]])
    result = kiku("assign", living["base"], small, "--out", tmp_path / "few")
    assert result.returncode == 0, result.stderr
    assert "of 40 conversations assigned" in result.stdout
    manifest = json.loads((tmp_path / "few" / "manifest.json").read_text())
    assert manifest["assign"]["conversations"] == 40 and manifest["assign"]["base_run"].endswith("base")


def test_refuses_a_base_embedded_otherwise(living: dict, tmp_path: Path) -> None:
    base = tmp_path / "other-embedder"
    shutil.copytree(living["base"], base)
    manifest = json.loads((base / "manifest.json").read_text())
    manifest["stages"]["embed"]["embedder"] = "some-other-model"
    (base / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KikuError, match="embedded with another embedder"):
        assign(base, living["folder"] / "new.jsonl", tmp_path / "out")
    result = kiku("assign", base, living["folder"] / "new.jsonl", "--out", tmp_path / "out2")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_refuses_facets_it_cannot_compute(tmp_path: Path) -> None:
    from kiku.describe import FacetRegistry, OfflineDescriber

    registry = FacetRegistry()
    registry.add("words", lambda c: len(c.first_user_message.split()))
    base_input, new_input, _, _ = halves(tmp_path)
    rows = [json.loads(line) for line in base_input.read_text().splitlines()][:120]
    small_base = write_jsonl(tmp_path / "small.jsonl", rows)
    base = kiku_api.analyze(small_base, tmp_path / "base", seed=0,
                            components=kiku_api.Components(describer=OfflineDescriber(registry)))
    with pytest.raises(KikuError, match="user facets facet_words"):
        assign(base.path, new_input, tmp_path / "out")
    run = assign(base.path, new_input, tmp_path / "out-ok", components=kiku_api.Components(describer=OfflineDescriber(registry)))
    assert "facet_words" in read_frame(run.path, "facets").columns


def test_refuses_bad_arguments(living: dict, tmp_path: Path) -> None:
    with pytest.raises(KikuError, match="not a kiku run"):
        assign(tmp_path, living["folder"] / "new.jsonl", tmp_path / "x")
    with pytest.raises(KikuError, match="is the base run"):
        assign(living["base"], living["folder"] / "new.jsonl", living["base"])
    with pytest.raises(KikuError, match="itself an assigned run"):
        assign(living["assigned"], living["folder"] / "new.jsonl", tmp_path / "y")
    with pytest.raises(KikuError, match="--quantile"):
        assign(living["base"], living["folder"] / "new.jsonl", tmp_path / "z", quantile=0.9)


# --- the pure parts ---------------------------------------------------------------------------


def test_thresholds_follow_each_topics_spread() -> None:
    rng = np.random.default_rng(0)
    tight = unit(np.array([1.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(50, 3)))
    loose = unit(np.array([0.0, 1.0, 0.0]) + 0.6 * rng.normal(size=(50, 3)))
    centroids, thresholds = topic_thresholds(np.vstack([tight, loose]), np.repeat([0, 1], 50), 2, quantile=0.05)
    assert thresholds[0] > thresholds[1]  # calibrated per topic, not one fixed number
    # about 5% of each topic's own members fall below its threshold (shrinkage moves it a little)
    assert (tight @ centroids[0] < thresholds[0]).mean() <= 0.15


def test_map_placement_interpolates_between_neighbours() -> None:
    base = unit(np.array([[1.0, 0.0], [0.0, 1.0]]))
    between = unit(np.array([[1.0, 1.0]]))
    xy = place_on_map(between, base, np.array([[0.0, 0.0], [10.0, 0.0]]), neighbours=2)
    assert xy[0, 0] == pytest.approx(5.0, abs=1e-3)


def test_a_base_with_a_corpus_name_is_assigned_in_its_own_space(tmp_path: Path) -> None:
    """The bundled W&B queries: their run projects "weights", "biases", "wandb" out of what it clusters
    and maps. Assigning the same queries back must give each one its own base topic as the nearest;
    comparing the stored embeddings instead put 43 of the 560 nearest to another topic."""
    example = Path(__file__).resolve().parents[1] / "examples" / "wandb-queries.jsonl"
    base = kiku_api.analyze(example, tmp_path / "base", seed=0)
    assert base.manifest["stages"]["cluster"]["corpus_name"]
    again = assign(base.path, example, tmp_path / "again")
    own = _frame(base.path, "assignments")
    own = dict(zip(own[own["level"] == 0]["conversation_id"], own[own["level"] == 0]["cluster_id"]))
    scores = _frame(again.path, "assign_scores")
    base_ids = _frame(base.path, "conversations")["conversation_id"].tolist()
    new_ids = _frame(again.path, "conversations")["conversation_id"].tolist()
    nearest = dict(zip(scores["conversation_id"], scores["nearest_topic"]))
    assert [own[b] for b in base_ids] == [nearest[n] for n in new_ids]
