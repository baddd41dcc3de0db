"""`kiku gaps --llm local`: the same gap taxonomy through the LLM backend, in process with llama.cpp
and the packaged local model (plumbing and formats, not quality: benchmarks/gaps.py measures that)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("llama_cpp", reason="needs llama-cpp-python: pip install 'kiku[local]'")

from kiku.gaps import classify_gaps, gap_taxonomy  # noqa: E402
from kiku.store import RunStore  # noqa: E402

pytestmark = pytest.mark.timeout(900)
DATA = Path(__file__).resolve().parent / "data"


def test_gaps_through_the_local_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kiku

    monkeypatch.setenv("KIKU_CACHE_DIR", str(tmp_path / "cache"))
    rows = [json.loads(line) for line in (DATA / "wandb-gaps.jsonl").read_text(encoding="utf-8").splitlines()]
    picked = [r for r in rows if r["label"] == "capability"][:3] + [r for r in rows if r["label"] == "inventory"][:3]
    source = tmp_path / "q.jsonl"
    source.write_text("".join(json.dumps({"id": r["id"], "messages": [{"role": "user", "content": r["text"]}]}) + "\n"
                              for r in picked), encoding="utf-8")
    run = kiku.analyze(source, tmp_path / "run", clusters=2, seed=0).path
    summary = classify_gaps(run, llm="local")
    assert summary.backend == "llm:local" and sum(summary.counts.values()) == len(picked)
    table = pq.read_table(run / "gaps.parquet").to_pylist()
    assert [r["conversation_id"] for r in table] == [r["id"] for r in picked]
    assert {r["gap_type"] for r in table} <= set(gap_taxonomy().label_names)
    assert all(r["backend"] == "llm:local" for r in table)
    assert RunStore(run).check_derived("gaps", "kiku gaps")["failures"] == summary.failures
    assert summary.failures < len(picked)  # the model answered in the taxonomy's schema
