"""Drift: watch label shares over time and flag windows whose mix shifts.

    >>> from kiku.classify.drift import detect_drift, read_labelled  # doctest: +SKIP
    >>> report = detect_drift(read_labelled("labelled.parquet"), by="week", method="psi")  # doctest: +SKIP
    >>> [w.window for w in report.windows if w.drifted]  # doctest: +SKIP
    ['2024-06-10']

Each row of a labelled Parquet file (``kiku classify apply``) has ``created_at`` and ``label``
(or ``labels``). Rows are grouped into windows (day, week starting Monday, month). Every window
is compared with a baseline — the first ``baseline_windows`` windows pooled, or the previous
window — by

- ``chi2``: chi-square test of the 2 x labels contingency table; drift when p < ``threshold``
  (default 0.01);
- ``psi``: population stability index sum((q - p) ln(q / p)); drift when PSI > ``threshold``
  (default 0.2, the usual "significant shift" rule).

A label *surges* in a window when its share is at least ``surge_ratio`` times its baseline share
and a two-proportion z-test gives z >= ``surge_z``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from kiku.classify.charts import pyplot, save_png
from kiku.errors import InputError

Window = Literal["day", "week", "month"]
Method = Literal["chi2", "psi"]
Baseline = Literal["first", "previous"]
DEFAULT_THRESHOLDS = {"chi2": 0.01, "psi": 0.2}
_PERIODS = {"day": "D", "week": "W-SUN", "month": "M"}


class Surge(BaseModel):
    label: str
    share: float
    baseline_share: float
    ratio: float
    z: float


class WindowDrift(BaseModel):
    """One time window compared with its baseline."""

    window: str  # start date, ISO
    count: int
    statistic: float | None  # chi-square p-value or PSI; None for baseline windows
    drifted: bool
    is_baseline: bool = False
    surges: list[Surge] = []


class DriftReport(BaseModel):
    by: Window
    method: Method
    baseline: Baseline
    threshold: float
    labels: list[str]
    windows: list[WindowDrift]
    shares: dict[str, list[float]]  # label -> share per window (same order as windows)
    skipped_without_time: int = 0

    @property
    def flagged(self) -> bool:
        return any(w.drifted or w.surges for w in self.windows)


def read_labelled(path: str | Path) -> pd.DataFrame:
    """Read a labelled Parquet file and check it has usable ``created_at`` and ``label`` columns."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "file not found", "create it with: kiku classify apply DATA --taxonomy T --out labelled.parquet")
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise InputError(str(path), f"not a Parquet file ({type(error).__name__})", "pass the output of kiku classify apply") from None
    if "label" not in frame.columns and "labels" not in frame.columns:
        raise InputError(str(path), "no 'label' column", "pass the output of kiku classify apply")
    if "created_at" not in frame.columns or frame["created_at"].isna().all():
        raise InputError(str(path), "no created_at times, so there are no time windows to compare",
                         "drift needs conversations with created_at; add timestamps to the input data and re-run kiku classify apply")
    return frame


def label_counts(frame: pd.DataFrame, by: Window = "week") -> tuple[pd.DataFrame, int]:
    """Counts per (window start, label) as a window x label table, and rows without a time."""
    if by not in _PERIODS:
        raise InputError("--by", f"unknown window {by!r}", "use day, week or month")
    times = pd.to_datetime(frame["created_at"], utc=True)
    has_time = times.notna()
    labels = frame["labels"] if "labels" in frame.columns else frame["label"].map(lambda x: [x])
    data = pd.DataFrame({"window": times[has_time].dt.tz_localize(None).dt.to_period(_PERIODS[by]).dt.start_time,
                         "label": labels[has_time]}).explode("label")
    counts = data.groupby(["window", "label"]).size().unstack(fill_value=0).sort_index()
    full = pd.date_range(counts.index.min(), counts.index.max(), freq={"day": "D", "week": "W-MON", "month": "MS"}[by])
    return counts.reindex(full, fill_value=0), int((~has_time).sum())


def population_stability_index(expected: np.ndarray, actual: np.ndarray, epsilon: float = 1e-4) -> float:
    """PSI between two count (or share) vectors; zero shares are floored at ``epsilon``.

    >>> round(population_stability_index(np.array([50, 50]), np.array([50, 50])), 6)
    0.0
    """
    p = np.maximum(expected / max(expected.sum(), 1e-12), epsilon)
    q = np.maximum(actual / max(actual.sum(), 1e-12), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def chi_square_p_value(expected: np.ndarray, actual: np.ndarray) -> float:
    """p-value of a chi-square test that two count vectors come from the same label mix."""
    from scipy.stats import chi2_contingency

    table = np.vstack([expected, actual])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(table)[1])


def _surges(baseline: np.ndarray, window: np.ndarray, labels: list[str], ratio: float, z_min: float) -> list[Surge]:
    n0, n1 = baseline.sum(), window.sum()
    if n0 == 0 or n1 == 0:
        return []
    surges = []
    for index, label in enumerate(labels):
        p0, p1 = baseline[index] / n0, window[index] / n1
        pooled = (baseline[index] + window[index]) / (n0 + n1)
        spread = np.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n0 + 1 / n1))
        z = (p1 - p0) / spread
        share_ratio = p1 / max(p0, 0.5 / n0)
        if share_ratio >= ratio and z >= z_min:
            surges.append(Surge(label=label, share=float(p1), baseline_share=float(p0), ratio=float(share_ratio), z=float(z)))
    return surges


def detect_drift(
    frame: pd.DataFrame, by: Window = "week", method: Method = "chi2", baseline: Baseline = "first",
    baseline_windows: int = 1, threshold: float | None = None, surge_ratio: float = 2.0, surge_z: float = 3.0,
    min_count: int = 20,
) -> DriftReport:
    """Compare each window's label mix with the baseline; see the module docstring.

    Windows with fewer than ``min_count`` rows are reported but never flagged.
    """
    if method not in DEFAULT_THRESHOLDS:
        raise InputError("--method", f"unknown method {method!r}", "use chi2 or psi")
    threshold = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    counts, skipped = label_counts(frame, by)
    labels = [str(c) for c in counts.columns]
    matrix = counts.to_numpy(dtype=float)
    windows: list[WindowDrift] = []
    for index, start in enumerate(counts.index):
        current = matrix[index]
        name = start.date().isoformat()
        if baseline == "first" and index < baseline_windows or baseline == "previous" and index == 0:
            windows.append(WindowDrift(window=name, count=int(current.sum()), statistic=None, drifted=False, is_baseline=True))
            continue
        reference = matrix[:baseline_windows].sum(axis=0) if baseline == "first" else matrix[index - 1]
        if method == "chi2":
            statistic = chi_square_p_value(reference, current)
            drifted = statistic < threshold
        else:
            statistic = population_stability_index(reference, current)
            drifted = statistic > threshold
        big_enough = current.sum() >= min_count and reference.sum() >= min_count
        surges = _surges(reference, current, labels, surge_ratio, surge_z) if big_enough else []
        windows.append(WindowDrift(window=name, count=int(current.sum()), statistic=statistic,
                                   drifted=bool(drifted and big_enough), surges=surges))
    totals = np.maximum(matrix.sum(axis=1), 1)
    shares = {label: [float(v) for v in matrix[:, j] / totals] for j, label in enumerate(labels)}
    return DriftReport(by=by, method=method, baseline=baseline, threshold=threshold, labels=labels,
                       windows=windows, shares=shares, skipped_without_time=skipped)


def drift_table(report: DriftReport, top_labels: int = 6) -> Any:
    """Rich table: one row per window with count, statistic, flag, surges and top label shares."""
    from rich.markup import escape
    from rich.table import Table

    statistic_name = "p (chi²)" if report.method == "chi2" else "PSI"
    table = Table(title=f"label shares by {report.by} — {report.method}, baseline: {report.baseline}, threshold {report.threshold:g}")
    table.add_column("window")
    table.add_column("n", justify="right")
    shown = sorted(report.labels, key=lambda label: -float(np.mean(report.shares[label])))[:top_labels]
    for label in shown:
        table.add_column(escape(label), justify="right")
    table.add_column(statistic_name, justify="right")
    table.add_column("drift")
    for index, window in enumerate(report.windows):
        if window.is_baseline:
            flag, statistic = "[dim]baseline[/]", ""
        else:
            flag = "[bold red]DRIFT[/]" if window.drifted else "ok"
            statistic = f"{window.statistic:.3g}" if window.statistic is not None else ""
        if window.surges:
            flag += " " + ", ".join(f"[yellow]↑{escape(s.label)} ×{s.ratio:.1f}[/]" for s in window.surges)
        table.add_row(window.window, str(window.count), *[f"{100 * report.shares[l][index]:.0f}%" for l in shown], statistic, flag)
    return table


def save_drift_png(report: DriftReport, path: str | Path) -> Path:
    """Line chart of each label's share per window, drifted windows shaded, as PNG."""
    plt = pyplot()
    x = pd.to_datetime([w.window for w in report.windows])
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for label in report.labels:
        axes.plot(x, [100 * s for s in report.shares[label]], marker="o", markersize=3, label=label)
    step = (x[1] - x[0]) if len(x) > 1 else pd.Timedelta(days=1)
    for when, window in zip(x, report.windows):
        if window.drifted or window.surges:
            axes.axvspan(when - step / 2, when + step / 2, color="red", alpha=0.12)
    axes.set_ylabel("share of items (%)")
    axes.set_title(f"label shares by {report.by} ({report.method}; shaded: drift flagged)")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.autofmt_xdate()
    return save_png(figure, path)
