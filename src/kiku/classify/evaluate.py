"""Evaluate a classifier on gold labels: seeded split, metrics with bootstrap intervals, confusion.

    >>> from kiku.classify import LocalClassifier, evaluate, load_taxonomy, read_items  # doctest: +SKIP
    >>> taxonomy = load_taxonomy("examples/taxonomy-wandb.yaml")  # doctest: +SKIP
    >>> result = evaluate(LocalClassifier(taxonomy), read_items("gold.jsonl"), seed=0)  # doctest: +SKIP
    >>> round(result.accuracy, 2), result.accuracy_ci  # doctest: +SKIP
    (0.9, (0.82, 0.97))

The gold items are split (stratified by label, seeded) into a *dev* part, which the backend
may learn from (``train=True``), and a *test* part, on which every number is measured. Two
backends or taxonomies evaluated with the same seed and items see the same split.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from kiku.classify.backends import Classifier, Prediction
from kiku.classify.charts import pyplot, save_png
from kiku.classify.data import Item
from kiku.errors import InputError


class LabelMetrics(BaseModel):
    label: str
    precision: float
    recall: float
    f1: float
    support: int


class Misclassified(BaseModel):
    item_id: str
    text: str
    gold: list[str]
    predicted: list[str]
    confidence: float


class EvalResult(BaseModel):
    """Scores of one backend on the test part of one split."""

    name: str
    labels: list[str]
    n_dev: int
    n_test: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    per_label: list[LabelMetrics]
    confusion: list[list[int]]  # rows: gold label, columns: predicted label (single-label only)
    misclassified: list[Misclassified]
    seconds_per_100: float
    mode: str = ""


def check_gold(items: Sequence[Item], labels: Sequence[str], source: str = "gold") -> list[Item]:
    """Items with gold labels; InputError if a gold label is not in the taxonomy or none has one."""
    known = set(labels)
    labelled = [item for item in items if item.gold_labels]
    for item in labelled:
        unknown = [label for label in item.gold_labels if label not in known]
        if unknown:
            raise InputError(source, f"item {item.id!r} has label {unknown[0]!r}, which is not in the taxonomy",
                             f"add the label to the taxonomy or fix the item (labels: {', '.join(labels)})")
    if len(labelled) < 4:
        raise InputError(source, f"only {len(labelled)} labelled items", "evaluation needs at least 4 items with a 'label'")
    return labelled


def split_items(items: Sequence[Item], test_size: float = 0.5, seed: int = 0) -> tuple[list[Item], list[Item]]:
    """Stratified (by first gold label), seeded split into (dev, test)."""
    from sklearn.model_selection import train_test_split

    strata = [item.gold_labels[0] for item in items]
    _, counts = np.unique(strata, return_counts=True)
    indexes = np.arange(len(items))
    stratify = strata if counts.min() >= 2 else None
    dev, test = train_test_split(indexes, test_size=test_size, random_state=seed, stratify=stratify)
    return [items[i] for i in sorted(dev)], [items[i] for i in sorted(test)]


def _single_label_scores(gold: np.ndarray, predicted: np.ndarray, labels: list[str]) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    return float(np.mean(gold == predicted)), float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0))


def bootstrap_interval(
    gold: np.ndarray, predicted: np.ndarray, labels: list[str], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile bootstrap intervals of (accuracy, macro-F1) over test items, seeded."""
    rng = np.random.default_rng(seed)
    n = len(gold)
    accuracies, f1s = [], []
    for _ in range(n_resamples):
        sample = rng.integers(0, n, n)
        accuracy, f1 = _single_label_scores(gold[sample], predicted[sample], labels)
        accuracies.append(accuracy)
        f1s.append(f1)
    low, high = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return (
        (float(np.percentile(accuracies, low)), float(np.percentile(accuracies, high))),
        (float(np.percentile(f1s, low)), float(np.percentile(f1s, high))),
    )


def score(
    items: Sequence[Item], predictions: Sequence[Prediction], labels: list[str], name: str = "", seed: int = 0,
    n_dev: int = 0, seconds_per_100: float = 0.0, multi_label: bool = False, n_resamples: int = 1000,
) -> EvalResult:
    """Metrics of ``predictions`` against the gold labels of ``items`` (same order)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    misclassified = [
        Misclassified(item_id=item.id, text=item.text, gold=item.gold_labels, predicted=p.labels, confidence=p.confidence)
        for item, p in zip(items, predictions)
        if set(item.gold_labels) != set(p.labels)
    ]
    if multi_label:
        from sklearn.preprocessing import MultiLabelBinarizer

        binarizer = MultiLabelBinarizer(classes=labels)
        gold_matrix = binarizer.fit_transform([i.gold_labels for i in items])
        predicted_matrix = binarizer.transform([p.labels for p in predictions])
        precision, recall, f1, support = precision_recall_fscore_support(gold_matrix, predicted_matrix, zero_division=0)
        exact = np.array([set(i.gold_labels) == set(p.labels) for i, p in zip(items, predictions)])
        accuracy = float(exact.mean())
        rng = np.random.default_rng(seed)
        samples = [rng.integers(0, len(items), len(items)) for _ in range(n_resamples)]
        accuracy_ci = tuple(float(x) for x in np.percentile([exact[s].mean() for s in samples], [2.5, 97.5]))
        macro = float(np.mean(f1))
        macro_ci = accuracy_ci  # per-sample F1 bootstrap is not defined for sets; reported as exact-match CI
        confusion: list[list[int]] = []
    else:
        gold = np.array([i.gold_labels[0] for i in items])
        predicted = np.array([p.label for p in predictions])
        precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
        accuracy, macro = _single_label_scores(gold, predicted, labels)
        accuracy_ci, macro_ci = bootstrap_interval(gold, predicted, labels, n_resamples, seed)
        confusion = confusion_matrix(gold, predicted, labels=labels).tolist()
    return EvalResult(
        name=name, labels=labels, n_dev=n_dev, n_test=len(items), accuracy=accuracy, accuracy_ci=accuracy_ci,
        macro_f1=macro, macro_f1_ci=macro_ci,
        per_label=[
            LabelMetrics(label=label, precision=float(p), recall=float(r), f1=float(f), support=int(s))
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        ],
        confusion=confusion, misclassified=misclassified, seconds_per_100=seconds_per_100,
    )


def evaluate(
    classifier: Classifier, items: Sequence[Item], test_size: float = 0.5, seed: int = 0, train: bool = True,
    name: str = "", progress: Any = None,
) -> EvalResult:
    """Split ``items`` (seeded), fit ``classifier`` on the dev part when ``train``, score the test part."""
    labels = classifier.taxonomy.label_names
    labelled = check_gold(items, labels)
    dev, test = split_items(labelled, test_size, seed)
    classifier.fit(dev if train else [])
    started = time.perf_counter()
    predictions = classifier.predict(test, progress=progress)
    seconds = time.perf_counter() - started
    result = score(test, predictions, labels, name=name, seed=seed, n_dev=len(dev) if train else 0,
                   seconds_per_100=100 * seconds / max(len(test), 1), multi_label=classifier.taxonomy.multi_label)
    result.mode = getattr(classifier, "mode", "llm")
    return result


# ---------------------------------------------------------------------------------------------
# presentation
# ---------------------------------------------------------------------------------------------
def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def summary_table(result: EvalResult) -> Any:
    """Rich table: per-label precision/recall/F1/support plus overall accuracy and macro-F1."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"{result.name or 'classifier'} — {result.n_test} test items ({result.n_dev} dev)"))
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for metrics in result.per_label:
        table.add_row(escape(metrics.label), _pct(metrics.precision), _pct(metrics.recall), _pct(metrics.f1), str(metrics.support))
    table.add_section()
    low, high = result.accuracy_ci
    table.add_row("accuracy", "", "", f"{_pct(result.accuracy)} [{_pct(low)}–{_pct(high)}]", str(result.n_test))
    low, high = result.macro_f1_ci
    table.add_row("macro-F1", "", "", f"{_pct(result.macro_f1)} [{_pct(low)}–{_pct(high)}]", "")
    return table


def confusion_table(result: EvalResult) -> Any:
    """Rich table of the confusion matrix (rows gold, columns predicted), diagonal highlighted."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="confusion matrix (rows: gold, columns: predicted)")
    table.add_column("gold \\ predicted")
    for label in result.labels:
        table.add_column(escape(label), justify="right")
    for i, (label, row) in enumerate(zip(result.labels, result.confusion)):
        table.add_row(escape(label), *[f"[bold green]{v}[/]" if i == j else (f"[red]{v}[/]" if v else "·") for j, v in enumerate(row)])
    return table


def misclassified_table(result: EvalResult, limit: int = 20) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"misclassified ({len(result.misclassified)})")
    for column in ("id", "text", "gold", "predicted", "conf."):
        table.add_column(column, overflow="fold")
    for miss in result.misclassified[:limit]:
        table.add_row(escape(miss.item_id), escape(miss.text[:100]), escape(", ".join(miss.gold)), escape(", ".join(miss.predicted)), f"{miss.confidence:.2f}")
    return table


def comparison_table(results: Sequence[EvalResult]) -> Any:
    """Side-by-side Rich table of several results on the same split."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="comparison on the same test split")
    table.add_column("metric")
    for result in results:
        table.add_column(escape(result.name), justify="right")
    table.add_row("accuracy", *[f"{_pct(r.accuracy)} [{_pct(r.accuracy_ci[0])}–{_pct(r.accuracy_ci[1])}]" for r in results])
    table.add_row("macro-F1", *[f"{_pct(r.macro_f1)} [{_pct(r.macro_f1_ci[0])}–{_pct(r.macro_f1_ci[1])}]" for r in results])
    for index, label in enumerate(results[0].labels):
        table.add_row(escape(f"F1 {label}"), *[_pct(r.per_label[index].f1) if index < len(r.per_label) else "–" for r in results])
    table.add_row("s / 100 items", *[f"{r.seconds_per_100:.2f}" for r in results])
    table.add_row("mode", *[r.mode for r in results])
    return table


def save_confusion_png(result: EvalResult, path: str | Path) -> Path:
    """Confusion matrix heat map as PNG (matplotlib, Agg backend)."""
    plt = pyplot()
    matrix = np.array(result.confusion)
    size = max(4.0, 1.1 * len(result.labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size * 0.85))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(result.labels)), result.labels, rotation=35, ha="right")
    axes.set_yticks(range(len(result.labels)), result.labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        axes.text(j, i, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    axes.set_title(f"{result.name or 'classifier'}: accuracy {_pct(result.accuracy)}, macro-F1 {_pct(result.macro_f1)}")
    return save_png(figure, path)
