"""Apply a classifier to a whole dataset or run: labelled Parquet, label distribution table and chart.

    >>> from kiku.classify import LocalClassifier, apply_classifier, load_taxonomy, read_items  # doctest: +SKIP
    >>> frame = apply_classifier(LocalClassifier(load_taxonomy("t.yaml")), read_items("chats.jsonl"))  # doctest: +SKIP
    >>> list(frame.columns)  # doctest: +SKIP
    ['conversation_id', 'created_at', 'label', 'labels', 'confidence', 'taxonomy', 'taxonomy_version']

Output columns: ``conversation_id`` str, ``created_at`` timestamp (UTC, nullable), ``label`` str
(top label), ``labels`` list<str> (all chosen labels), ``confidence`` float,
``taxonomy`` / ``taxonomy_version`` str.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kiku.classify.backends import Classifier, Prediction
from kiku.classify.charts import pyplot, save_png
from kiku.classify.data import Item

LABELLED_COLUMNS = ["conversation_id", "created_at", "label", "labels", "confidence", "taxonomy", "taxonomy_version"]


def predictions_frame(items: Sequence[Item], predictions: Sequence[Prediction], taxonomy_name: str = "", version: str = "") -> pd.DataFrame:
    """One row per item with its prediction (columns: :data:`LABELLED_COLUMNS`)."""
    created = pd.to_datetime([item.created_at for item in items], utc=True) if items else pd.Series([], dtype="datetime64[ns, UTC]")
    return pd.DataFrame(
        {
            "conversation_id": [item.id for item in items],
            "created_at": created,
            "label": [p.label for p in predictions],
            "labels": [list(p.labels) for p in predictions],
            "confidence": np.array([p.confidence for p in predictions], dtype=np.float64),
            "taxonomy": taxonomy_name,
            "taxonomy_version": version,
        },
        columns=LABELLED_COLUMNS,
    )


def apply_classifier(classifier: Classifier, items: Sequence[Item], progress: Any = None) -> pd.DataFrame:
    """Predict every item and return the labelled frame; ``progress(n)`` is called as batches finish."""
    predictions = classifier.predict(list(items), progress=progress)
    taxonomy = classifier.taxonomy
    return predictions_frame(items, predictions, taxonomy.name, taxonomy.version)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write through a temporary file and rename, so a half-written file never looks finished."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(path)
    return path


def label_distribution(frame: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Count and share of each label (every label in ``labels``, zero when absent), most common first.

    Multi-label rows count once per chosen label; ``share`` is of all rows.
    """
    exploded = frame["labels"].explode() if "labels" in frame else frame["label"]
    counts = exploded.value_counts()
    rows = [(label, int(counts.get(label, 0))) for label in labels]
    rows += [(label, int(n)) for label, n in counts.items() if label not in labels]
    distribution = pd.DataFrame(rows, columns=["label", "count"])
    distribution["share"] = distribution["count"] / max(len(frame), 1)
    mean_confidence = frame.groupby("label")["confidence"].mean()
    distribution["mean_confidence"] = [float(mean_confidence.get(label, np.nan)) for label in distribution["label"]]
    return distribution.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


def distribution_table(distribution: pd.DataFrame, title: str = "label distribution") -> Any:
    """Rich table with a text bar per label."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    for column in ("label", "count", "share", "", "mean conf."):
        table.add_column(column, justify="left" if column in ("label", "") else "right")
    top = max(float(distribution["share"].max()), 1e-9) if len(distribution) else 1.0
    for row in distribution.itertuples(index=False):
        bar = "█" * int(round(20 * row.share / top))
        confidence = "" if np.isnan(row.mean_confidence) else f"{row.mean_confidence:.2f}"
        table.add_row(escape(str(row.label)), str(row.count), f"{100 * row.share:.1f}%", f"[cyan]{bar}[/]", confidence)
    return table


def save_distribution_png(distribution: pd.DataFrame, path: str | Path, title: str = "label distribution") -> Path:
    """Horizontal bar chart of label shares as PNG."""
    plt = pyplot()
    ordered = distribution.iloc[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.45 * len(ordered) + 1.5))
    axes.barh(ordered["label"].astype(str), 100 * ordered["share"], color="#4C72B0")
    for y, (share, count) in enumerate(zip(ordered["share"], ordered["count"])):
        axes.text(100 * share, y, f" {100 * share:.1f}% ({count})", va="center", fontsize=9)
    axes.set_xlabel("share of items (%)")
    axes.set_xlim(0, max(100 * float(ordered["share"].max()) * 1.3, 1) if len(ordered) else 1)
    axes.set_title(title)
    return save_png(figure, path)
