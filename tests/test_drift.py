"""Drift over time windows: chi-square and PSI, surges, charts and the CLI exit code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kiku.classify.drift import detect_drift, population_stability_index, read_labelled
from kiku.errors import InputError


def _frame(weeks: list[dict[str, float]], per_week: int = 200, seed: int = 0) -> pd.DataFrame:
    """Rows spread over consecutive weeks starting Monday 2024-05-06, labels drawn with the given shares."""
    rng = np.random.default_rng(seed)
    rows = []
    for week, shares in enumerate(weeks):
        labels = list(shares)
        drawn = rng.choice(labels, per_week, p=np.array(list(shares.values())) / sum(shares.values()))
        start = pd.Timestamp("2024-05-06", tz="UTC") + pd.Timedelta(weeks=week)
        for n, label in enumerate(drawn):
            rows.append({"conversation_id": f"w{week}-{n}", "created_at": start + pd.Timedelta(minutes=30 * n),
                         "label": label, "labels": [label], "confidence": 0.9})
    return pd.DataFrame(rows)


STABLE = {"billing": 0.5, "login": 0.3, "bug": 0.2}
SHIFTED = {"billing": 0.25, "login": 0.15, "bug": 0.6}


@pytest.mark.parametrize("method", ["chi2", "psi"])
def test_shift_is_flagged_only_where_it_happens(method: str) -> None:
    report = detect_drift(_frame([STABLE, STABLE, STABLE, SHIFTED]), by="week", method=method)
    assert [w.window for w in report.windows] == ["2024-05-06", "2024-05-13", "2024-05-20", "2024-05-27"]
    assert report.windows[0].is_baseline
    assert [w.drifted for w in report.windows] == [False, False, False, True]
    assert report.flagged
    surged = report.windows[3].surges
    assert [s.label for s in surged] == ["bug"] and surged[0].ratio > 2


def test_previous_window_baseline_and_thresholds() -> None:
    frame = _frame([STABLE, SHIFTED, SHIFTED])
    previous = detect_drift(frame, method="psi", baseline="previous")
    assert [w.drifted for w in previous.windows] == [False, True, False]  # third week is like the second
    lenient = detect_drift(frame, method="psi", baseline="first", threshold=5.0)
    assert not any(w.drifted for w in lenient.windows)


def test_small_windows_are_never_flagged() -> None:
    report = detect_drift(_frame([STABLE, SHIFTED], per_week=10), min_count=20)
    assert not report.flagged


def test_psi_known_value() -> None:
    assert population_stability_index(np.array([50, 50]), np.array([50, 50])) == pytest.approx(0.0)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert population_stability_index(np.array([5, 5]), np.array([8, 2])) == pytest.approx(expected)


def test_monthly_and_daily_windows_fill_gaps() -> None:
    frame = _frame([STABLE] * 6)
    assert [w.window for w in detect_drift(frame, by="month").windows] == ["2024-05-01", "2024-06-01"]
    daily = detect_drift(frame, by="day")
    assert len(daily.windows) == (pd.Timestamp(frame.created_at.max()).normalize() - pd.Timestamp("2024-05-06", tz="UTC")).days + 1


def test_missing_created_at_is_a_clear_message(tmp_path: Path) -> None:
    frame = _frame([STABLE])
    frame["created_at"] = pd.NaT
    frame.to_parquet(tmp_path / "l.parquet")
    with pytest.raises(InputError, match="no created_at times.*add timestamps"):
        read_labelled(tmp_path / "l.parquet")


def _cli():  # noqa: ANN202
    import typer

    from kiku.classify.cli import classify_app, drift

    app = typer.Typer()
    app.add_typer(classify_app, name="classify")
    app.command("drift")(drift)
    return app


def test_drift_cli_gates_and_draws(tmp_path: Path) -> None:
    runner = CliRunner()
    drifting = tmp_path / "drifting.parquet"
    _frame([STABLE, STABLE, SHIFTED]).to_parquet(drifting)
    stable = tmp_path / "stable.parquet"
    _frame([STABLE, STABLE, STABLE], seed=1).to_parquet(stable)

    result = runner.invoke(_cli(), ["drift", str(drifting), "--by", "week", "--fail-on-drift"])
    assert result.exit_code == 1, result.output
    assert "DRIFT" in result.output and "2024-05-20" in result.output
    chart = drifting.with_suffix(".drift.png")
    assert chart.read_bytes()[:4] == b"\x89PNG" and chart.stat().st_size > 10_000

    assert runner.invoke(_cli(), ["drift", str(drifting)]).exit_code == 0  # no gate: report only
    result = runner.invoke(_cli(), ["drift", str(stable), "--method", "psi", "--fail-on-drift"])
    assert result.exit_code == 0, result.output

    frame = _frame([STABLE])
    frame["created_at"] = pd.NaT
    frame.to_parquet(tmp_path / "untimed.parquet")
    result = runner.invoke(_cli(), ["drift", str(tmp_path / "untimed.parquet")])
    assert result.exit_code == 2 and "no created_at times" in result.output and "Traceback" not in result.output
