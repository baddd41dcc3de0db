"""Evaluation: seeded stratified split, metrics, bootstrap intervals, confusion matrix PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiku.classify.backends import LocalClassifier, Prediction
from kiku.classify.data import Item, read_items
from kiku.classify.evaluate import (
    bootstrap_interval,
    check_gold,
    comparison_table,
    confusion_table,
    evaluate,
    save_confusion_png,
    score,
    split_items,
)
from kiku.classify.taxonomy import load_taxonomy
from kiku.errors import InputError

DATA = Path(__file__).resolve().parent / "data"


def _items(labels: list[str]) -> list[Item]:
    return [Item(id=f"i{n}", text=f"text {n}", label=label) for n, label in enumerate(labels)]


def test_split_is_seeded_and_stratified() -> None:
    items = _items(["a"] * 10 + ["b"] * 6 + ["c"] * 4)
    dev, test = split_items(items, test_size=0.5, seed=3)
    assert sorted(i.id for i in dev + test) == sorted(i.id for i in items)
    assert [i.label for i in test].count("a") == 5 and [i.label for i in test].count("c") == 2
    assert [i.id for i in split_items(items, 0.5, seed=3)[1]] == [i.id for i in test]
    assert [i.id for i in split_items(items, 0.5, seed=4)[1]] != [i.id for i in test]


def test_score_matches_hand_computed_metrics() -> None:
    items = _items(["a", "a", "a", "b", "b", "c"])
    predicted = ["a", "a", "b", "b", "b", "a"]
    predictions = [Prediction(item_id=i.id, label=p, labels=[p], confidence=0.8) for i, p in zip(items, predicted)]
    result = score(items, predictions, ["a", "b", "c"], seed=0)
    assert result.accuracy == pytest.approx(4 / 6)
    by_label = {m.label: m for m in result.per_label}
    assert by_label["a"].precision == pytest.approx(2 / 3) and by_label["a"].recall == pytest.approx(2 / 3)
    assert by_label["b"].precision == pytest.approx(2 / 3) and by_label["b"].recall == pytest.approx(1.0)
    assert by_label["c"].f1 == 0.0
    assert result.macro_f1 == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)
    assert result.confusion == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert [m.item_id for m in result.misclassified] == ["i2", "i5"]
    low, high = result.accuracy_ci
    assert low <= result.accuracy <= high and 0 <= low < high <= 1


def test_bootstrap_interval_narrows_with_more_items() -> None:
    rng = np.random.default_rng(0)
    gold_small = rng.choice(["a", "b"], 40)
    gold_big = rng.choice(["a", "b"], 1000)
    flip = lambda g: np.where(rng.random(len(g)) < 0.2, np.where(g == "a", "b", "a"), g)  # noqa: E731
    (small_low, small_high), _ = bootstrap_interval(gold_small, flip(gold_small), ["a", "b"], 300, seed=1)
    (big_low, big_high), _ = bootstrap_interval(gold_big, flip(gold_big), ["a", "b"], 300, seed=1)
    assert big_high - big_low < small_high - small_low
    assert 0.7 < big_low < 0.8 < big_high < 0.85


def test_gold_with_unknown_label_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="item 'i1' has label 'zzz', which is not in the taxonomy"):
        check_gold(_items(["a", "zzz", "a", "a"]), ["a", "b"])


def test_evaluate_real_backend_and_compare_on_same_split(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(DATA / "support-taxonomy.yaml")
    items = read_items(DATA / "support-labelled.jsonl")
    trained = evaluate(LocalClassifier(taxonomy, min_examples=4), items, test_size=0.5, seed=0, name="trained")
    zero = evaluate(LocalClassifier(taxonomy, use_taxonomy_examples=False), items, test_size=0.5, seed=0, train=False, name="zero")
    assert trained.n_test == zero.n_test == 15 and trained.n_dev == 15 and zero.n_dev == 0
    assert trained.mode == "logistic" and zero.mode == "zero-shot"
    assert trained.accuracy >= 0.8 and zero.accuracy >= 0.7
    assert sum(map(sum, trained.confusion)) == 15
    png = save_confusion_png(trained, tmp_path / "confusion.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    from rich.console import Console

    console = Console(record=True, width=150)
    console.print(confusion_table(trained))
    console.print(comparison_table([trained, zero]))
    text = console.export_text()
    assert "billing" in text and "trained" in text and "zero" in text
