"""Shared fixtures: small real inputs and one real offline run reused across tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "wandb-queries.jsonl"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def example_rows() -> list[dict]:
    """The bundled 560 real W&B documentation queries, as kiku JSONL rows."""
    return [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def small_input(tmp_path_factory: pytest.TempPathFactory, example_rows: list[dict]) -> Path:
    """200 real queries in kiku JSONL."""
    return write_jsonl(tmp_path_factory.mktemp("input") / "queries.jsonl", example_rows[:200])


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory, small_input: Path):
    """A real offline run (real embedder, k-means, UMAP) over 200 queries, shared read-only."""
    import kiku

    return kiku.analyze(small_input, tmp_path_factory.mktemp("runs") / "small", seed=0)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (``tests/browsers.py`` says which binary)."""
    from playwright import sync_api

    from browsers import CHROMIUM_ARGS, chromium_path

    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
