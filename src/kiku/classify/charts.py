"""Chart plumbing shared by the classify reports: matplotlib on the Agg backend, one way to save a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (a clear error when matplotlib is missing)."""
    from kiku.errors import require

    matplotlib = require("matplotlib", "classify")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure: Any, path: str | Path, dpi: int = 110) -> Path:
    """Lay out ``figure``, write it to ``path`` as PNG and close it; returns the path."""
    path = Path(path)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)
    return path
