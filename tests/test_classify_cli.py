"""End-to-end CLI: init (from a run), label, review log -> eval, apply, drift; real model, real files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from kiku.classify.backends import default_embedder
from kiku.classify.bootstrap import taxonomy_from_run
from kiku.classify.cli import classify_app, drift
from kiku.classify.data import read_items
from kiku.classify.review import ReviewSession
from kiku.classify.taxonomy import load_taxonomy

DATA = Path(__file__).resolve().parent / "data"
WANDB = DATA / "wandb-labels-dev.jsonl"  # the 77 hand-labelled W&B queries (MIT, see NOTICE)
EXAMPLE_TAXONOMY = Path(__file__).resolve().parent.parent / "examples" / "taxonomy-wandb.yaml"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    main = typer.Typer()
    main.add_typer(classify_app, name="classify")
    main.command("drift")(drift)
    return main


def _run(app: typer.Typer, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder in the run-store layout, clustered for real from the support set's embeddings."""
    from sklearn.cluster import KMeans

    run = tmp_path_factory.mktemp("run")
    rows = [json.loads(line) for line in (DATA / "support-labelled.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in rows]
    texts = [r["text"] for r in rows]
    vectors = default_embedder().embed(texts)
    clusters = KMeans(3, n_init=10, random_state=0).fit_predict(vectors)
    pd.DataFrame({"conversation_id": ids, "created_at": pd.to_datetime([r["created_at"] for r in rows], utc=True),
                  "messages": [json.dumps([{"role": "user", "content": t}]) for t in texts],
                  "metadata": "{}", "source": "support-labelled.jsonl", "source_line": range(1, 31)}).to_parquet(run / "conversations.parquet")
    pd.DataFrame({"conversation_id": ids, "text_hash": "", "truncated": False,
                  "embedding": list(vectors)}).to_parquet(run / "embeddings.parquet")
    majority = {c: pd.Series([r["label"] for r, k in zip(rows, clusters) if k == c]).mode()[0] for c in range(3)}
    pd.DataFrame({"cluster_id": [f"c{c}" for c in range(3)] + ["noise"], "level": 0, "parent_id": None,
                  "name": [f"{majority[c].title()} requests" for c in range(3)] + ["Unclustered"],
                  "description": [f"Users asking about {majority[c]}" for c in range(3)] + [""],
                  "size": [int((clusters == c).sum()) for c in range(3)] + [0], "share": 0.0,
                  "keyphrases": [[majority[c]] for c in range(3)] + [[]], "representative_request": "",
                  "is_noise": [False, False, False, True], "x": 0.0, "y": 0.0}).to_parquet(run / "clusters.parquet")
    pd.DataFrame({"conversation_id": ids, "level": 0, "cluster_id": [f"c{k}" for k in clusters]}).to_parquet(run / "assignments.parquet")
    return run


def test_taxonomy_from_run_uses_central_members(run_dir: Path) -> None:
    taxonomy = taxonomy_from_run(run_dir, top_n=5, examples_per_label=3)
    assert taxonomy.label_names[-1] == "other" and len(taxonomy.labels) == 4  # noise bucket is never a label
    members = {json.loads(m)[0]["content"] for m in pd.read_parquet(run_dir / "conversations.parquet")["messages"]}
    for label in taxonomy.labels[:-1]:
        assert len(label.examples) == 3 and set(label.examples) <= members
        assert label.negative_examples and not set(label.negative_examples) & set(label.examples)
        assert label.name.endswith("_requests")


def test_init_label_review_eval_apply_drift(app: typer.Typer, run_dir: Path, tmp_path: Path) -> None:
    taxonomy_path = tmp_path / "taxonomy.yaml"
    output = _run(app, "classify", "init", taxonomy_path, "--from-run", run_dir, "--top", "3")
    assert "4 labels" in output
    _run(app, "classify", "init", taxonomy_path, "--from-run", run_dir, code=2)  # refuses to overwrite
    drafted = load_taxonomy(taxonomy_path)

    weak = tmp_path / "weak.jsonl"
    output = _run(app, "classify", "label", DATA / "support-labelled.jsonl", "--taxonomy", taxonomy_path, "--out", weak)
    weak_rows = [json.loads(line) for line in weak.read_text().splitlines()]
    assert len(weak_rows) == 30 and "30 weak labels" in output
    assert all(r["predicted_label"] in drafted.label_names for r in weak_rows)
    assert [r["confidence"] for r in weak_rows] == sorted(r["confidence"] for r in weak_rows)  # least certain first

    # a reviewer maps each drafted topic label to the truth (what the browser page does)
    truth = {json.loads(l)["id"]: json.loads(l)["label"] for l in (DATA / "support-labelled.jsonl").read_text().splitlines()}
    session = ReviewSession(read_items(weak), drafted.label_names, tmp_path / "gold.jsonl")
    for item in session.items:
        expected = f"{truth[item.id]}_requests"
        decision = {"id": item.id, "decision": "accept"} if item.predicted_label == expected else {"id": item.id, "decision": "relabel", "label": expected}
        from kiku.classify.review import DecisionIn

        session.decide(DecisionIn(**decision))
    gold_items = read_items(tmp_path / "gold.jsonl")
    assert len(gold_items) == 30 and all(i.label == f"{truth[i.id]}_requests" for i in gold_items)

    png = tmp_path / "cm.png"
    output = _run(app, "classify", "eval", tmp_path / "gold.jsonl", "--taxonomy", taxonomy_path,
                  "--confusion-png", png, "--json", tmp_path / "eval.json")
    assert "macro-F1" in output and "confusion matrix" in output and png.exists()
    result = json.loads((tmp_path / "eval.json").read_text())[0]
    assert result["n_test"] == 15 and result["accuracy"] >= 0.8

    labelled = tmp_path / "labelled.parquet"
    output = _run(app, "classify", "apply", DATA / "support-labelled.jsonl", "--taxonomy", taxonomy_path,
                  "--gold", tmp_path / "gold.jsonl", "--out", labelled)
    frame = pd.read_parquet(labelled)
    assert list(frame.columns)[:5] == ["conversation_id", "created_at", "label", "labels", "confidence"]
    assert len(frame) == 30 and frame["created_at"].notna().all()
    assert (frame["label"] == [f"{truth[i]}_requests" for i in frame["conversation_id"]]).mean() >= 0.9
    assert labelled.with_suffix(".distribution.png").exists() and "label distribution (30 items)" in output

    output = _run(app, "drift", labelled, "--by", "week", "--min-count", "1")
    assert "label shares by week" in output

    _run(app, "classify", "apply", run_dir, "--taxonomy", taxonomy_path, "--out", tmp_path / "run-labelled.parquet")
    assert len(pd.read_parquet(tmp_path / "run-labelled.parquet")) == 30


def test_init_without_run_writes_an_editable_template(app: typer.Typer, tmp_path: Path) -> None:
    _run(app, "classify", "init", tmp_path / "t.yaml")
    template = load_taxonomy(tmp_path / "t.yaml")
    assert template.label_names[-1] == "other" and all(label.description for label in template.labels)
    output = _run(app, "classify", "init", tmp_path / "t2.yaml", "--from-run", tmp_path, code=2)
    assert "not a finished kiku run" in output


def test_bad_input_is_one_line_not_a_traceback(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "2", "text": \n')
    output = _run(app, "classify", "label", bad, "--taxonomy", DATA / "support-taxonomy.yaml", "--out", tmp_path / "w.jsonl", code=2)
    assert f"{bad}:1: malformed JSON" in output and "Traceback" not in output
    output = _run(app, "classify", "eval", DATA / "support-labelled.jsonl", "--taxonomy", tmp_path / "missing.yaml", code=2)
    assert "taxonomy file not found" in output


def test_wandb_local_backend_reaches_target_and_compare(app: typer.Typer, tmp_path: Path) -> None:
    """The issue's bar: >= 85% accuracy offline on the W&B labels (here: one seeded 50/50 split)."""
    taxonomy = load_taxonomy(EXAMPLE_TAXONOMY)
    bare = taxonomy.model_copy(update={"version": "2", "labels": [l.model_copy(update={"examples": [], "negative_examples": []}) for l in taxonomy.labels]})
    bare.save(tmp_path / "bare.yaml")
    output = _run(app, "classify", "eval", WANDB, "--taxonomy", EXAMPLE_TAXONOMY, "--compare", tmp_path / "bare.yaml",
                  "--json", tmp_path / "e.json", "--confusion-png", tmp_path / "cm.png", "--show", "0")
    with_examples, without = json.loads((tmp_path / "e.json").read_text())
    assert "comparison on the same test split" in output and (tmp_path / "cm.2.png").exists()
    assert with_examples["n_test"] == without["n_test"] == 39
    assert with_examples["mode"] == "logistic" and with_examples["accuracy"] >= 0.85


def test_kiku_main_cli_has_classify_and_drift() -> None:
    from kiku.cli import app as kiku_app

    output = CliRunner().invoke(kiku_app, ["classify", "--help"]).output
    assert all(command in output for command in ("init", "label", "review", "eval", "apply"))
    assert "--fail-on-drift" in CliRunner().invoke(kiku_app, ["drift", "--help"]).output
