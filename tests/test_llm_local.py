"""The whole ``kiku run --llm local`` pipeline in process with llama.cpp and SmolLM2-135M.

SmolLM2-135M writes poor summaries; these tests check formats and plumbing end to end (LLM
facets stored, every cluster named, a hierarchy built, usage in the manifest, the second run
answered from the cache), not quality. The benchmark uses Qwen2.5-Coder for quality.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from pydantic import BaseModel, Field

pytest.importorskip("llama_cpp", reason="needs llama-cpp-python: pip install 'kiku[local]'")

from kiku.llm import LLMClient, LLMDescriber, ResponseCache, ShortText  # noqa: E402
from kiku.records import Conversation, Message  # noqa: E402

pytestmark = pytest.mark.timeout(900)
SRC = str(Path(__file__).resolve().parents[1] / "src")
QUESTIONS = [
    "How do I log a pandas DataFrame as a wandb Table?",
    "My wandb sweep agent crashes with CUDA out of memory",
    "How can I download a model artifact from the registry?",
    "How to log a matplotlib figure to wandb?",
]


def kiku(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiku", *args], capture_output=True, text=True, env=env, timeout=800)


def write_questions(path: Path) -> None:
    path.write_text("\n".join(json.dumps({"id": f"c{i}", "messages": [{"role": "user", "content": q}]})
                              for i, q in enumerate(QUESTIONS)))


def test_kiku_run_with_local_llm_end_to_end(tmp_path: Path) -> None:
    """The full per-conversation mode (``--llm-scope conversations``): LLM facets, names, Clio hierarchy."""
    source = tmp_path / "chats.jsonl"
    write_questions(source)
    env = {**os.environ, "PYTHONPATH": SRC, "KIKU_CACHE_DIR": str(tmp_path / "cache"),
           "KIKU_LLM_THREADS": os.environ.get("KIKU_LLM_THREADS", "1")}
    args = ["--llm", "local/smollm2-135m", "--llm-scope", "conversations", "--clusters", "3", "--max-top", "2"]

    dry = kiku("run", str(source), "--out", str(tmp_path / "dry"), *args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    report = " ".join(dry.stdout.split())  # the console wraps long lines
    assert "scope conversations (this run): ~" in report and "describe: 4 calls" in report
    assert re.search(r"scope clusters: ~\d+ LLM calls .* ~[\d.]+ min on this machine", report)
    assert re.search(r"calibration \(\d+ s\): prompt \d+ tokens/s, answers \d+ tokens/s for one sequence, \d+ tokens/s for \d+ decoded together", report)
    assert "clusters is the default" in report
    assert not (tmp_path / "dry").exists()  # nothing was run

    first = kiku("run", str(source), "--out", str(tmp_path / "run1"), *args, env=env)
    assert first.returncode == 0, first.stderr
    assert "LLM local/smollm2-135m:" in first.stdout
    manifest = json.loads((tmp_path / "run1" / "manifest.json").read_text())
    llm = manifest["llm"]
    assert llm["provider"] == "local" and llm["by_stage"]["describe"]["calls"] >= 4
    assert llm["by_stage"]["name"]["calls"] >= 3 and llm["by_stage"]["hierarchy"]["calls"] >= 1
    assert llm["prompt_tokens"] > 0 and llm["completion_tokens"] > 0 and llm["cost_usd"] == 0.0
    con = duckdb.connect()
    facets = con.execute(f"select * from '{tmp_path}/run1/facets.parquet' order by conversation_id").df()
    assert facets["summary"].notna().all() and facets["task"].notna().all()
    assert facets["concern"].between(1, 5).all() and facets["frustration"].between(1, 5).all()
    assert facets["request"].tolist() == QUESTIONS  # the verbatim opening request is kept
    clusters = con.execute(f"select * from '{tmp_path}/run1/clusters.parquet'").df()
    base = clusters[clusters.level == 0]
    assert len(base) == 3 and base["name"].str.len().gt(0).all()
    assert base["name"].nunique() == 3
    assert (clusters.level == 1).any()
    assert base["parent_id"].notna().all()

    second = kiku("run", str(source), "--out", str(tmp_path / "run2"), *args, env=env)
    assert second.returncode == 0, second.stderr
    again = json.loads((tmp_path / "run2" / "manifest.json").read_text())["llm"]
    assert again["calls"] == 0 and again["cache_hits"] >= llm["calls"] - llm["retries"]
    names2 = con.execute(f"select name from '{tmp_path}/run2/clusters.parquet' order by cluster_id").df()["name"].tolist()
    names1 = con.execute(f"select name from '{tmp_path}/run1/clusters.parquet' order by cluster_id").df()["name"].tolist()
    assert names1 == names2


THEMED = [
    "How do I log a pandas DataFrame as a wandb Table?", "Log a table of predictions to wandb",
    "wandb Table with images and labels", "Can I update a logged wandb Table later?",
    "My wandb sweep agent crashes with CUDA out of memory", "Sweep agent stops after the first run",
    "How to set the sweep method to bayes", "Run a wandb sweep on several GPUs",
    "How can I download a model artifact from the registry?", "Version a dataset as a wandb artifact",
    "Delete old artifact versions", "Link an artifact to the model registry",
]


def test_kiku_run_names_clusters_with_one_call_each_by_default(tmp_path: Path) -> None:
    """The default scope (clusters): conversations described offline, one validated label per cluster and parent."""
    source = tmp_path / "chats.jsonl"
    source.write_text("\n".join(json.dumps({"id": f"c{i:02d}", "messages": [{"role": "user", "content": q}]})
                                for i, q in enumerate(THEMED)))
    env = {**os.environ, "PYTHONPATH": SRC, "KIKU_CACHE_DIR": str(tmp_path / "cache"),
           "KIKU_LLM_THREADS": os.environ.get("KIKU_LLM_THREADS", "1")}
    done = kiku("run", str(source), "--out", str(tmp_path / "run"), "--llm", "local/smollm2-135m", "--clusters", "6",
                "--levels", "1", "--max-top", "3", env=env)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["llm_scope"] == "clusters"
    llm = manifest["llm"]
    assert "describe" not in llm["by_stage"]  # no call per conversation
    name = manifest["stages"]["name"]["validation"]
    assert name["labels"] == 6 and name["accepted"] + name["fallback"] == 6
    assert 6 <= llm["by_stage"]["name"]["calls"] <= 6 + name["retried"] + llm["by_stage"]["name"]["retries"]
    assert manifest["stages"]["hierarchy"]["validation"]["labels"] >= 1
    con = duckdb.connect()
    clusters = con.execute(f"select * from '{tmp_path}/run/clusters.parquet'").df()
    facets = con.execute(f"select summary from '{tmp_path}/run/facets.parquet'").df()
    assert facets["summary"].isna().all()  # offline facets only
    base = clusters[clusters.level == 0]
    assert len(base) == 6 and base["name"].nunique() == 6 and base["name"].str.len().gt(0).all()
    assert (clusters.level == 1).any() and base["parent_id"].notna().all()
    from kiku.llm import label_problem

    # what was kept from the model passed validation; the rest are the offline names, counted above
    accepted = [n for n, d in zip(base["name"], base["description"]) if d and label_problem(n, d) is None]
    assert len(accepted) >= name["accepted"] - 1  # sibling de-duplication may have appended a word to one


def test_batched_engine_decodes_several_sequences_per_step_with_valid_json(tmp_path: Path) -> None:
    from kiku.llm import TopicLabel
    from kiku.llm.batched import BatchEngine
    from kiku.llm.models import local_model_path

    prompts = [[{"role": "user", "content": f"Name the topic of this question in JSON (name, description): {q}"}]
               for q in QUESTIONS]
    schema = TopicLabel.model_json_schema()
    engine = BatchEngine(local_model_path("smollm2-135m"), n_parallel=4, n_threads=1, n_ctx_per_seq=512)
    try:
        futures = [engine.submit(p, schema, 40) for p in prompts]
        together = [f.result(timeout=300) for f in futures]
        steps = engine.steps
    finally:
        engine.close()
    answers = sum(g.completion_tokens for g in together)
    assert answers > 4 and steps < answers  # several sequences shared each decode step
    for generation in together:
        assert generation.prompt_tokens > 10
        if generation.completion_tokens < 40:  # finished (not cut by max_tokens): the grammar made it valid JSON
            TopicLabel.model_validate_json(generation.text)
        assert generation.text.lstrip().startswith('{ "name"') or generation.text.lstrip().startswith('{"name"')


def test_batched_engine_samples_repeatably_above_temperature_zero() -> None:
    """kiku's retry after an unusable answer samples: seeded (same seed, same text), still valid JSON."""
    from kiku.llm import TopicLabel
    from kiku.llm.batched import BatchEngine
    from kiku.llm.models import local_model_path

    prompt = [{"role": "user", "content": f"Name the topic of this question in JSON (name, description): {QUESTIONS[0]}"}]
    schema = TopicLabel.model_json_schema()
    engine = BatchEngine(local_model_path("smollm2-135m"), n_parallel=4, n_threads=1, n_ctx_per_seq=512)
    try:
        # one at a time: sequences decoded in one batch see slightly different float sums
        greedy_texts = [engine.submit(prompt, schema, 24).result(timeout=300).text for _ in range(2)]
        sampled_texts = [engine.submit(prompt, schema, 24, temperature=1.0, seed=s).result(timeout=300).text
                         for s in (1, 1, 2, 3, 4)]
    finally:
        engine.close()
    assert greedy_texts[0] == greedy_texts[1]
    assert sampled_texts[0] == sampled_texts[1]  # seeded
    assert len(set(sampled_texts) | {greedy_texts[0]}) > 1  # sampling does not repeat the greedy answer every time
    for text in sampled_texts:  # the grammar still holds while sampling
        assert text.lstrip().startswith('{')
        assert text.lstrip().startswith('{ "name"') or text.lstrip().startswith('{"name"')


def test_domain_summary_with_custom_schema_takes_a_few_lines(tmp_path: Path) -> None:
    """The W&B-specific summary of the docs: a prompt, a schema with a feature field, one describer."""

    class WandbFacets(BaseModel):
        summary: ShortText(200) = Field(description="User needs help with [W&B feature] to [goal], specifically [detail]")  # type: ignore[valid-type]
        feature: ShortText(30) = Field(description="the W&B feature: Tables, Sweeps, Artifacts, Reports, ...")  # type: ignore[valid-type]

    prompt = ("A user asked W&B support:\n{conversation}\n\nWrite summary as 'User needs help with [W&B feature] to "
              "[concrete goal], specifically [detail]' and name the feature.")
    client = LLMClient.from_spec("local/smollm2-135m", cache=ResponseCache(tmp_path / "c.sqlite"), max_tokens=80)
    describer = LLMDescriber(client, prompt=prompt, schema=WandbFacets)
    out = describer.describe([Conversation(id="w1", messages=[Message(role="user", content=QUESTIONS[0])])])
    assert out[0].summary and isinstance(out[0].facets["feature"], str) and out[0].facets["feature"]
    assert out[0].conversation_id == "w1" and out[0].request == QUESTIONS[0]
