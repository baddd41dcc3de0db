"""Gap types on a real run with the real packaged embedder: the built-in taxonomy, an edited one,
labelled examples, the per-topic mix in the report and the gap filter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import priorities_data
from cli_helpers import kiku
from kiku.classify.data import read_items
from kiku.errors import KikuError
from kiku.gaps import GAP_TAXONOMY, classify_gaps, gap_classifier, gap_taxonomy, read_gaps
from kiku.outcomes import join_table
from kiku.priorities import priority_report
from kiku.store import RunStore

DATA = Path(__file__).resolve().parent / "data"
LABELLED = DATA / "wandb-gaps.jsonl"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gaps")
    run = priorities_data.make_run(folder)
    join_table(run, priorities_data.write_feedback_csv(folder / "feedback.csv"))
    return run


@pytest.fixture()
def run(base_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(base_run, tmp_path / "run"))


def test_the_built_in_taxonomy_is_package_data_with_descriptions_and_examples() -> None:
    assert GAP_TAXONOMY.is_file() and GAP_TAXONOMY.parent.name == "assets"
    taxonomy = gap_taxonomy()
    assert taxonomy.label_names == ["capability", "inventory", "other"]
    assert all(label.description and len(label.examples) >= 5 for label in taxonomy.labels)


def test_gaps_are_stored_per_conversation_and_the_report_shows_each_topics_mix(run: Path) -> None:
    summary = classify_gaps(run)
    n = len(priorities_data.rows())
    assert summary.backend == "local:prototypes" and sum(summary.counts.values()) == n
    table = pq.read_table(run / "gaps.parquet")
    assert table.num_rows == n and set(table["gap_type"].to_pylist()) <= {"capability", "inventory", "other"}
    assert RunStore(run).check_derived("gaps", "kiku gaps")["counts"] == summary.counts
    gaps = read_gaps(run)
    report = priority_report(run, "thumbs_up")
    assert report.gap_labels == ["capability", "inventory", "other"]
    for row in report.rows:
        mix = [row["gap_capability"], row["gap_inventory"], row["gap_other"]]
        assert abs(sum(mix) - 1.0) < 1e-9
    # the filter keeps one gap type, baseline and counts included
    label = max(summary.counts, key=lambda k: summary.counts[k])
    kept = priority_report(run, "thumbs_up", gap=label)
    assert kept.gap == label and kept.conversations == sum(1 for v in gaps.values() if v == label)
    assert all(r["n"] <= next(o["n"] for o in report.rows if o["cluster_id"] == r["cluster_id"]) for r in kept.rows)
    with pytest.raises(KikuError, match="--gap 'feature'"):
        priority_report(run, "thumbs_up", gap="feature")


def test_labelled_examples_train_the_local_backend(run: Path) -> None:
    items = read_items(LABELLED)
    classifier = gap_classifier(gap_taxonomy(), examples=items)
    assert classifier.mode == "logistic"
    capability = [i for i in items if i.label == "capability"]
    predicted = [p.label for p in classifier.predict(capability)]
    assert predicted.count("capability") >= 0.8 * len(capability)  # it learned its own training labels
    summary = classify_gaps(run, examples=LABELLED)
    assert summary.backend == "local:logistic"
    assert RunStore(run).derived_record("gaps")["labelled_examples"] == len(items)


def test_an_edited_taxonomy_changes_the_labels_everywhere(run: Path, tmp_path: Path) -> None:
    edited = tmp_path / "gaps.yaml"
    edited.write_text(
        "name: my-gaps\nlabels:\n"
        "  - name: feature\n    description: The user wants the bank to do something it does not offer.\n"
        "    examples: [\"Can I open an account for my child?\"]\n"
        "  - name: content\n    description: The user wants information about a card, an account or a fee.\n"
        "    examples: [\"Where is my card?\"]\n")
    summary = classify_gaps(run, taxonomy=edited)
    assert summary.labels == ["feature", "content"] and summary.taxonomy == "my-gaps"
    row = priority_report(run, "thumbs_up").rows[0]
    assert {"gap_feature", "gap_content"} <= set(row) and "gap_capability" not in row
    with pytest.raises(KikuError, match="not in the gap taxonomy"):
        classify_gaps(run, taxonomy=edited, examples=LABELLED)


def test_cli_gaps_and_report_filter(run: Path, tmp_path: Path) -> None:
    result = kiku("gaps", run)
    assert result.returncode == 0, result.stderr
    assert "gap types (gap-types v1, local:prototypes): capability" in result.stdout
    report = kiku("report", run, "--outcome", "thumbs_up", "--gap", "inventory")
    assert report.returncode == 0, report.stderr
    assert "gap type inventory" in report.stdout
    copy = tmp_path / "my-gaps.yaml"
    saved = kiku("gaps", "--save-taxonomy", copy)
    assert saved.returncode == 0 and copy.read_text() == GAP_TAXONOMY.read_text()


def test_gaps_of_other_conversations_are_refused(run: Path) -> None:
    classify_gaps(run)
    store = RunStore(run)
    store.manifest["stages"]["load"]["fingerprint"] = "rebuilt"
    store.save_manifest()
    with pytest.raises(KikuError, match="gaps.parquet was computed before the run's conversations changed"):
        read_gaps(run)
    # the report still runs (outcomes joined again), says why the mix is missing, refuses --gap
    join_table(run, priorities_data.write_feedback_csv(run.parent / "again.csv"))
    report = priority_report(run, "thumbs_up")
    assert report.gap_labels == [] and "gap mix left out" in report.notes[0]
    with pytest.raises(KikuError, match="computed before"):
        priority_report(run, "thumbs_up", gap="capability")
