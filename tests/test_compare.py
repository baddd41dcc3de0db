"""kiku compare: shares, 95% intervals, BH-corrected flags, new and vanished topics; two runs
(a base run and a run assigned from it) and periods of one run. Real runs, real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import kiku as kiku_api
from cli_helpers import kiku
from kiku.assign import assign
from kiku.compare import (
    benjamini_hochberg,
    compare_counts,
    compare_periods,
    compare_runs,
    difference_interval,
    two_proportion_p,
    wilson,
)
from kiku.errors import KikuError
from kiku.store import read_frame
from living_runs import conversation, dated_rows, halves, out_of_domain, write_jsonl


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("compare")
    base_input, _, _, new_rows = halves(folder)
    base = kiku_api.analyze(base_input, folder / "base", seed=0)
    # the new week: the held-out half, without "card_arrival", plus 60 W&B/ShareGPT conversations
    rows = [conversation(r["id"], r["text"], "bank") for r in new_rows if r["intent"] != "card_arrival"]
    mixed = write_jsonl(folder / "week2.jsonl", rows + out_of_domain(limit=53))
    week2 = assign(base.path, mixed, folder / "week2")
    dated = kiku_api.analyze(write_jsonl(folder / "dated.jsonl", dated_rows()), folder / "dated", seed=0)
    return {"base": base.path, "week2": week2.path, "dated": dated.path, "folder": folder}


def _card_arrival_topic(run: Path, rows: list[dict]) -> str:
    level0 = read_frame(run, "assignments").query("level == 0").set_index("conversation_id").cluster_id
    ids = [r["id"] for r in rows if r["intent"] == "card_arrival"]
    return str(level0.loc[ids].mode()[0])


def test_two_runs(runs: dict) -> None:
    comparison = compare_runs(runs["base"], runs["week2"])
    rows = {r.cluster_id: r for r in comparison.rows}
    # the candidate new topics are new; shares in each run sum to one
    new = [r for r in comparison.rows if r.cluster_id.startswith("new-")]
    assert new and all(r.status == "new" and r.count_a == 0 for r in new)
    assert sum(r.share_a for r in comparison.rows) == pytest.approx(1.0)
    assert sum(r.share_b for r in comparison.rows) == pytest.approx(1.0)
    # the topic of card_arrival (left out of week 2) declines significantly
    declines = [r for r in comparison.rows if r.direction == "decline"]
    assert declines, [(r.name, r.change, r.q_value) for r in comparison.rows[:5]]
    for row in comparison.rows:
        assert row.low <= row.change <= row.high
        if row.direction:
            assert row.q_value < 0.05 and (row.low > 0 or row.high < 0 or row.status)
    assert all(not r.direction for r in rows.values() if r.is_noise)


def test_the_decline_is_the_missing_intent(runs: dict, tmp_path: Path) -> None:
    from living_runs import banking_rows

    rows = banking_rows()
    topic = _card_arrival_topic(runs["base"], rows[::2])
    comparison = compare_runs(runs["base"], runs["week2"])
    row = next(r for r in comparison.rows if r.cluster_id == topic)
    assert row.direction == "decline" and row.high < 0


def test_periods_of_one_run(runs: dict) -> None:
    from living_runs import banking_rows

    comparisons = compare_periods(runs["dated"], "week")
    assert len(comparisons) == 1
    comparison = comparisons[0]
    assert comparison.label_a == "2024-03-04" and comparison.label_b == "2024-03-11"
    topic = _card_arrival_topic(runs["dated"], banking_rows())
    row = next(r for r in comparison.rows if r.cluster_id == topic)
    assert row.direction == "growth" and row.low > 0
    with pytest.raises(KikuError, match="at least two"):
        compare_periods(runs["base"], "week")  # no created_at


def test_cli_table_csv_and_json(runs: dict, tmp_path: Path) -> None:
    result = kiku("compare", runs["base"], runs["week2"], "--out", tmp_path / "c.csv")
    assert result.returncode == 0, result.stderr
    assert "decline" in result.stdout and "new" in result.stdout and "95% interval" in result.stdout
    frame = pd.read_csv(tmp_path / "c.csv")
    assert {"cluster_id", "name", "share_a", "share_b", "change", "low", "high", "q_value", "direction", "status"} <= set(frame.columns)
    result = kiku("compare", runs["dated"], "--by", "week", "--out", tmp_path / "c.json")
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data[0]["label_a"] == "2024-03-04" and any(r["direction"] == "growth" for r in data[0]["rows"])
    for args in [(runs["base"],), (runs["base"], runs["week2"], "--by", "week"), (runs["base"], "--by", "year"),
                 (runs["base"], runs["week2"], "--out", tmp_path / "c.txt")]:
        bad = kiku("compare", *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr, bad.stderr


# --- the statistics, against published values ----------------------------------------------------


def test_newcombe_interval_matches_the_paper() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    low, high = difference_interval(48, 80, 56, 70)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert [round(v, 4) for v in wilson(56, 70)] == [0.6918, 0.877]


def test_benjamini_hochberg_matches_r() -> None:
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.5), "BH")
    assert [round(q, 4) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.005, 0.5])] == [0.025, 0.05, 0.05, 0.025, 0.5]


def test_many_small_changes_are_not_flagged() -> None:
    """Forty topics that differ only by noise: the correction keeps them unflagged."""
    counts_a = {f"t{i}": 25 + (i % 3) for i in range(40)}
    counts_b = {f"t{i}": 25 + ((i + 1) % 3) for i in range(40)}
    rows = compare_counts(counts_a, sum(counts_a.values()), counts_b, sum(counts_b.values()), {})
    assert not any(r.direction for r in rows)
    assert two_proportion_p(10, 100, 10, 100) == pytest.approx(1.0)
