"""Priorities: which topics to fix first, from an outcome joined to a run.

For every topic at every level, :func:`rank_topics` computes the outcome's rate (the share of
``True`` for a binary outcome, the mean for a numeric one) over the topic's conversations that
have a value, with a 95% interval (Wilson score for proportions; a seeded percentile bootstrap
for means), and compares the topic with the rest of the conversations (Fisher's exact test for
proportions, Welch's t-test for means). The p-values of all judged topics (all levels together)
are corrected for the number of topics compared, with **Holm**'s step-down method by default
(family-wise error at ``alpha``, valid however the nested topics depend on each other) or
Benjamini-Hochberg (``correction="bh"``, false discovery rate). A topic is flagged ``under`` or
``over`` only when its corrected p-value is below ``alpha``.

Impact is what the topic costs against the baseline (the overall rate of the compared
conversations): ``volume × shortfall``, where volume is the number of conversations with a value
(or, with a weight such as revenue, the weight summed over them) and shortfall is
``baseline − rate`` (``rate − baseline`` when lower is better). Topics rank by impact, worst
first. Topics with fewer than ``min_size`` conversations with a value are marked ``too small``:
not tested, not flagged, not ranked (they come last).

Example:
    >>> import pandas as pd
    >>> a = pd.DataFrame({"conversation_id": list("abcdef"), "level": 0, "cluster_id": list("xxxyyy")})
    >>> c = pd.DataFrame({"cluster_id": ["x", "y"], "level": 0, "name": ["X", "Y"], "parent_id": None, "is_noise": False})
    >>> rows = rank_topics(a, c, {"a": 1, "b": 1, "c": 1, "d": 0, "e": 0, "f": 1}, "proportion", min_size=2)
    >>> rows[["cluster_id", "rate", "impact"]].round(2).values.tolist()
    [['y', 0.33, 1.0], ['x', 1.0, -1.0]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from kiku.compare import Z95, wilson
from kiku.errors import KikuError

Measure = Literal["proportion", "mean"]
Correction = Literal["holm", "bh"]
CORRECTIONS: tuple[str, ...] = ("holm", "bh")
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
#: Columns of a priorities table, in order (``level``, ``cluster_id``, ``cluster_name`` as ``kiku export … assignments``).
REPORT_COLUMNS: tuple[str, ...] = (
    "rank", "level", "cluster_id", "cluster_name", "parent_id", "size", "n", "rate", "ci_low", "ci_high",
    "baseline", "shortfall", "weight_sum", "impact", "p_value", "p_adjusted", "flag", "status",
)
TOO_SMALL = "too small"
JUDGED = "judged"


# --- intervals and tests (pure) -------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default), NaN for no values.

    The interval itself is ``kiku.compare.wilson`` (its one home); here an empty topic has no
    interval and the ends are exact at 0 and n.

    >>> [round(v, 3) for v in wilson_interval(0, 3)]
    [0.0, 0.561]
    >>> [round(v, 3) for v in wilson_interval(40, 50)]
    [0.67, 0.888]
    """
    if n <= 0:
        return (math.nan, math.nan)
    low, high = wilson(successes, n, z)
    return (0.0 if successes == 0 else low, 1.0 if successes == n else high)


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator, resamples: int = 2000,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded through ``rng``).

    >>> lo, hi = bootstrap_interval(np.arange(10.0), np.random.default_rng(0))
    >>> bool(lo < 4.5 < hi)
    True
    """
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    if n == 1:
        return (float(values[0]), float(values[0]))
    means = np.empty(resamples)
    step = max(1, 4_000_000 // n)
    for start in range(0, resamples, step):
        count = min(step, resamples - start)
        means[start : start + count] = values[rng.integers(0, n, size=(count, n))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


def proportion_test(successes: int, n: int, rest_successes: int, rest_n: int) -> float:
    """Two-sided Fisher's exact test of a topic's proportion against the rest's.

    >>> round(proportion_test(2, 40, 400, 500), 6) < 1e-6, proportion_test(0, 3, 0, 0)
    (True, 1.0)
    """
    if n == 0 or rest_n == 0:
        return 1.0
    from scipy.stats import fisher_exact

    result = fisher_exact([[successes, n - successes], [rest_successes, rest_n - rest_successes]])
    return float(result[1])


def mean_test(values: np.ndarray, rest: np.ndarray) -> float:
    """Two-sided Welch's t-test of a topic's mean against the rest's (1.0 when it cannot be run).

    >>> mean_test(np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0]))
    1.0
    """
    if len(values) < 2 or len(rest) < 2:
        return 1.0
    if np.var(values) == 0 and np.var(rest) == 0:
        return 1.0 if values[0] == rest[0] else 0.0
    from scipy.stats import ttest_ind

    p = float(ttest_ind(values, rest, equal_var=False).pvalue)
    return 1.0 if math.isnan(p) else p


def adjust_p_values(p_values: list[float], method: Correction = "holm") -> list[float]:
    """Corrected p-values for a family of tests: Holm's step-down or Benjamini-Hochberg.

    >>> [round(p, 3) for p in adjust_p_values([0.01, 0.04, 0.03], "holm")]
    [0.03, 0.06, 0.06]
    >>> [round(p, 3) for p in adjust_p_values([0.01, 0.04, 0.03], "bh")]
    [0.03, 0.04, 0.04]
    """
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    if method == "holm":
        running = 0.0
        for rank, index in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[index]))
            adjusted[index] = running
    elif method == "bh":
        running = 1.0
        for rank in range(m - 1, -1, -1):
            index = order[rank]
            running = min(running, min(1.0, p_values[index] * m / (rank + 1)))
            adjusted[index] = running
    else:
        raise KikuError(f"unknown correction {method!r}; choose one of {', '.join(CORRECTIONS)}")
    return adjusted


# --- ranking (pure) ----------------------------------------------------------------------------


def rank_topics(
    assignments: pd.DataFrame,
    clusters: pd.DataFrame,
    values: Mapping[str, float],
    measure: Measure,
    weights: Mapping[str, float] | None = None,
    min_size: int = 10,
    alpha: float = 0.05,
    correction: Correction = "holm",
    lower_is_better: bool = False,
    seed: int = 0,
    resamples: int = 2000,
) -> pd.DataFrame:
    """Every topic at every level ranked by impact, worst first (columns :data:`REPORT_COLUMNS`).

    ``assignments``: ``conversation_id, level, cluster_id``; ``clusters``: ``cluster_id, level,
    name, parent_id, is_noise`` (noise buckets are left out: they are not topics); ``values``:
    conversation id -> outcome (0/1 for ``proportion``); only conversations with a value count,
    and the baseline is their overall rate. ``weights`` (conversation id -> e.g. revenue) replaces
    the volume in the impact by the weight summed (a conversation without a weight counts 0). A
    topic is compared with all the other conversations that have a value.
    """
    if min_size < 1:
        raise KikuError("--min-size must be at least 1")
    if not values:
        raise KikuError("no conversation of the run has a value for this outcome; check the join")
    ids = list(values)
    population = pd.Series([float(values[i]) for i in ids], index=ids, dtype=float)
    weight = None
    if weights is not None:
        weight = pd.Series([float(weights.get(i, 0.0) or 0.0) for i in ids], index=ids, dtype=float)
    baseline = float(population.mean())
    total_sum, total_n = float(population.sum()), len(population)
    sign = -1.0 if lower_is_better else 1.0
    rng = np.random.default_rng(seed)
    topics = clusters[~clusters["is_noise"].astype(bool)].set_index("cluster_id")
    members = assignments[assignments["conversation_id"].isin(population.index)]
    rows: list[dict[str, Any]] = []
    own_level = members.merge(topics[["level"]], left_on=["cluster_id", "level"], right_on=["cluster_id", "level"])
    groups = {cid: group["conversation_id"].tolist() for cid, group in own_level.groupby("cluster_id", sort=True)}
    for cluster_id in sorted(topics.index):
        topic = topics.loc[cluster_id]
        member_ids = groups.get(cluster_id, [])
        topic_values = population.loc[member_ids].to_numpy() if member_ids else np.zeros(0)
        n = len(topic_values)
        rate = float(topic_values.mean()) if n else math.nan
        volume = float(weight.loc[member_ids].sum()) if weight is not None and n else float(n)
        row: dict[str, Any] = {
            "level": int(topic["level"]), "cluster_id": str(cluster_id), "cluster_name": str(topic["name"]),
            "parent_id": topic["parent_id"] if isinstance(topic["parent_id"], str) else None,
            "size": int(topic["size"]) if "size" in topic and not pd.isna(topic["size"]) else len(member_ids),
            "n": n, "rate": rate, "baseline": baseline,
            "shortfall": sign * (baseline - rate) if n else math.nan,
            "weight_sum": volume if weight is not None else math.nan,
        }
        row["impact"] = volume * row["shortfall"] if n else math.nan
        if measure == "proportion":
            successes = int(round(topic_values.sum()))
            row["ci_low"], row["ci_high"] = wilson_interval(successes, n)
            p = proportion_test(successes, n, int(round(total_sum)) - successes, total_n - n) if n >= min_size else math.nan
        else:
            row["ci_low"], row["ci_high"] = bootstrap_interval(topic_values, rng, resamples) if n else (math.nan, math.nan)
            rest = population.drop(index=member_ids).to_numpy()
            p = mean_test(topic_values, rest) if n >= min_size else math.nan
        row["p_value"] = p
        row["status"] = JUDGED if n >= min_size else TOO_SMALL
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c for c in REPORT_COLUMNS if c not in ("rank", "p_adjusted", "flag")])
    judged = frame["status"] == JUDGED
    frame["p_adjusted"] = math.nan
    frame.loc[judged, "p_adjusted"] = adjust_p_values(frame.loc[judged, "p_value"].tolist(), correction)
    significant = judged & (frame["p_adjusted"] < alpha)
    frame["flag"] = ""
    frame.loc[significant & (frame["shortfall"] > 0), "flag"] = "under"
    frame.loc[significant & (frame["shortfall"] < 0), "flag"] = "over"
    frame["_order"] = (~judged).astype(int)
    frame = frame.sort_values(["_order", "impact", "level", "cluster_id"], ascending=[True, False, False, True],
                              na_position="last").drop(columns="_order").reset_index(drop=True)
    frame.insert(0, "rank", pd.array([k + 1 if judged_row else None for k, judged_row in enumerate(frame["status"] == JUDGED)], dtype="Int64"))
    return frame[list(REPORT_COLUMNS)]


# --- the report over a run ------------------------------------------------------------------


class PriorityReport(BaseModel):
    """A priorities report: the settings, the baseline and the ranked rows (records of :data:`REPORT_COLUMNS`
    plus ``gap_<label>`` shares when the run has gap types)."""

    outcome: str
    kind: str
    measure: Measure
    positive: str | None = None
    weight: str | None = None
    gap: str | None = None
    lower_is_better: bool = False
    baseline: float
    conversations: int
    min_size: int
    alpha: float
    correction: str
    seed: int
    gap_labels: list[str] = Field(default_factory=list)
    rows: list[dict[str, Any]]
    notes: list[str] = Field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame, in rank order."""
        return pd.DataFrame(self.rows)

    def method_line(self) -> str:
        """One line saying how rates, intervals and flags were computed."""
        interval = "Wilson 95% interval" if self.measure == "proportion" else f"bootstrap 95% interval (seed {self.seed})"
        test = "Fisher's exact test" if self.measure == "proportion" else "Welch's t-test"
        return (f"{interval}; each topic vs the rest by {test}, {CORRECTION_NAMES.get(self.correction, self.correction)}-corrected "
                f"over the judged topics, flagged at p < {self.alpha}; under {self.min_size} conversations with a value: too small to judge")


def parse_outcome(spec: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME=VALUE`` (a categorical outcome's value whose rate to report).

    >>> parse_outcome("resolution=escalated"), parse_outcome("thumbs_up")
    (('resolution', 'escalated'), ('thumbs_up', None))
    """
    name, sep, value = spec.partition("=")
    if not name or (sep and not value):
        raise KikuError(f"--outcome {spec!r}: expected NAME or NAME=VALUE")
    return name, (value if sep else None)


def _as_measure(values: dict[str, Any], kind: str, name: str, positive: str | None,
                categories: list[str]) -> tuple[dict[str, float], Measure]:
    if kind == "binary":
        if positive is not None:
            wanted = positive.lower() in ("1", "true", "yes", "up", "y", "t")
            return {k: float(bool(v) == wanted) for k, v in values.items()}, "proportion"
        return {k: float(bool(v)) for k, v in values.items()}, "proportion"
    if kind == "numeric":
        if positive is not None:
            raise KikuError(f"--outcome {name}={positive}: {name} is numeric; pass --outcome {name}")
        return {k: float(v) for k, v in values.items()}, "mean"
    if positive is None:
        raise KikuError(f"--outcome {name} is categorical; say which value to count, e.g. --outcome {name}={categories[0] if categories else 'VALUE'} "
                        f"(values: {', '.join(categories[:10])})")
    if positive not in categories:
        raise KikuError(f"--outcome {name}={positive}: no conversation has that value (values: {', '.join(categories[:10])})")
    return {k: float(v == positive) for k, v in values.items()}, "proportion"


def priority_report(
    run_dir: str | Path,
    outcome: str,
    weight: str | None = None,
    gap: str | None = None,
    min_size: int = 10,
    alpha: float = 0.05,
    correction: Correction = "holm",
    lower_is_better: bool = False,
    seed: int = 0,
) -> PriorityReport:
    """Rank a run's topics for ``outcome`` (``NAME`` or ``NAME=VALUE`` for a categorical one).

    ``weight`` names a numeric outcome summed as the volume (revenue at stake); ``gap`` keeps
    only the conversations of that gap type (``kiku gaps``), baseline included. Rows carry the
    gap mix of each topic (``gap_<label>`` shares) when the run has gap types.

    >>> report = priority_report("runs/wandb", "thumbs_up", weight="revenue")   # doctest: +SKIP
    >>> report.rows[0]["cluster_name"], report.rows[0]["flag"]                    # doctest: +SKIP
    ('Sweeps configuration', 'under')
    """
    from kiku.gaps import gap_labels, read_gaps
    from kiku.outcomes import read_outcome
    from kiku.store import RunStore, read_frame

    run_dir = Path(run_dir)
    if correction not in CORRECTIONS:
        raise KikuError(f"--correction {correction!r}: choose one of {', '.join(CORRECTIONS)}")
    if not 0 < alpha < 1:
        raise KikuError("--alpha must be between 0 and 1")
    name, positive = parse_outcome(outcome)
    raw, field = read_outcome(run_dir, name)
    values, measure = _as_measure(raw, field.kind, name, positive, field.values)
    weights = None
    if weight is not None:
        raw_weights, weight_field = read_outcome(run_dir, weight)
        if weight_field.kind not in ("numeric", "binary"):
            raise KikuError(f"--weight {weight}: a weight must be numeric (it is {weight_field.kind})")
        weights = {k: float(v) for k, v in raw_weights.items()}
    notes: list[str] = []
    gaps = None
    if gap is not None:
        gaps = read_gaps(run_dir)
    elif RunStore(run_dir).derived_record("gaps") is not None:
        try:
            gaps = read_gaps(run_dir)
        except KikuError as error:  # stale or damaged: the report still runs, without the mix
            notes.append(f"gap mix left out: {error}")
    labels = gap_labels(run_dir) if gaps is not None else []
    if gap is not None:
        assert gaps is not None
        if gap not in labels:
            raise KikuError(f"--gap {gap!r}: choose one of {', '.join(labels)}")
        values = {k: v for k, v in values.items() if gaps.get(k) == gap}
        if not values:
            raise KikuError(f"no conversation of gap type {gap!r} has a value for {name}")
    assignments = read_frame(run_dir, "assignments")
    clusters = read_frame(run_dir, "clusters", ["cluster_id", "level", "name", "parent_id", "is_noise", "size"])
    frame = rank_topics(assignments, clusters, values, measure, weights, min_size, alpha, correction,
                        lower_is_better, seed)
    if gaps is not None:
        frame = frame.join(gap_mix(assignments, clusters, gaps, labels), on="cluster_id")
    return PriorityReport(
        outcome=name, kind=field.kind, measure=measure, positive=positive, weight=weight, gap=gap,
        lower_is_better=lower_is_better, baseline=float(np.mean(list(values.values()))), conversations=len(values),
        min_size=min_size, alpha=alpha, correction=correction, seed=seed, gap_labels=labels,
        rows=_records(frame), notes=notes,
    )


def gap_mix(assignments: pd.DataFrame, clusters: pd.DataFrame, gaps: Mapping[str, str], labels: list[str]) -> pd.DataFrame:
    """Per topic (its own level), the share of its conversations of each gap type: ``gap_<label>`` columns.

    >>> a = pd.DataFrame({"conversation_id": ["a", "b"], "level": 0, "cluster_id": "x"})
    >>> c = pd.DataFrame({"cluster_id": ["x"], "level": 0})
    >>> gap_mix(a, c, {"a": "capability", "b": "other"}, ["capability", "inventory", "other"]).loc["x"].tolist()
    [0.5, 0.0, 0.5]
    """
    own = assignments.merge(clusters[["cluster_id", "level"]], on=["cluster_id", "level"])
    own = own.assign(gap=own["conversation_id"].map(gaps))
    counts = pd.crosstab(own["cluster_id"], own["gap"]).reindex(columns=labels, fill_value=0)
    shares = counts.div(counts.sum(axis=1).replace(0, 1), axis=0)
    shares.columns = [f"gap_{label}" for label in labels]
    return shares


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN and pandas NA become None, numpy scalars Python ones."""
    out = []
    for record in frame.astype(object).to_dict("records"):
        row: dict[str, Any] = {}
        for key, value in record.items():
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
                row[key] = None
            elif isinstance(value, np.generic):
                row[key] = value.item()
            else:
                row[key] = value
        out.append(row)
    return out


def write_report(report: PriorityReport, out_file: str | Path) -> Path:
    """Write the rows (rank order) to ``.csv`` or ``.json`` (settings and rows); returns the path."""
    import json

    out = Path(out_file)
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame = report.frame()
        frame["rank"] = frame["rank"].astype("Int64")
        frame.to_csv(out, index=False)
    elif suffix == ".json":
        out.write_text(json.dumps(report.model_dump(mode="json"), indent=1, ensure_ascii=False), encoding="utf-8")
    else:
        raise KikuError(f"{out}: unknown report type {suffix or '(none)'}; use .csv or .json")
    return out
