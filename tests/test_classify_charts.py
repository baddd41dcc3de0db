"""kiku.classify.charts: the one PNG writer of the classify reports."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from kiku.classify.charts import pyplot, save_png


def test_save_png_writes_and_closes(tmp_path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    path = save_png(figure, str(tmp_path / "chart.png"))
    assert path == tmp_path / "chart.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(figure.number)
