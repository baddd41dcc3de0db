"""The OpenAI-compatible provider against a real llama.cpp server on 127.0.0.1 (SmolLM2-135M).

Faults are injected by a small proxy in front of the real server: HTTP 500/429, malformed
JSON, slow answers, and the server killed mid-run. The run reports them, loses nothing, and a
rerun completes, taking what had finished from the cache.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).parent))
from llm_fixtures import FaultProxy, LlamaServer  # noqa: E402

pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]: pip install 'kiku[llm-server]'")

from kiku.llm import LLMClient, LLMDescriber, ResponseCache, ShortText, run_sync  # noqa: E402
from kiku.llm.models import local_model_path  # noqa: E402
from kiku.records import Conversation, Message  # noqa: E402

pytestmark = pytest.mark.timeout(600)


class Topic(BaseModel):
    topic: ShortText(40)  # type: ignore[valid-type]


class Gist(BaseModel):
    """A small custom describe schema (keeps the generation short on 2 busy cores)."""

    summary: ShortText(60)  # type: ignore[valid-type]
    feature: ShortText(20)  # type: ignore[valid-type]


GIST_PROMPT = "Conversation:\n{conversation}\n\nAnswer in JSON: summary (a few words) and feature (one word)."
QUESTIONS = ["How do I log a table?", "My sweep crashed.", "Where are artifacts stored?", "How to resume a run?"]


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    os.environ.setdefault("KIKU_LLM_THREADS", "1")
    running = LlamaServer(str(local_model_path("smollm2-135m"))).start()
    yield running
    running.stop()


def client_for(base_url: str, **options) -> LLMClient:  # noqa: ANN003
    options.setdefault("cache", ResponseCache(":memory:"))
    options.setdefault("max_tokens", 48)
    options.setdefault("backoff_base_s", 0.05)
    return LLMClient.from_spec(f"openai-compatible/smollm2@{base_url}", **options)


def prompt(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Give a short topic (1-3 words) for this question: {text}"}]


def conversations() -> list[Conversation]:
    return [Conversation(id=f"q{i}", metadata={"user": f"u{i}"}, messages=[Message(role="user", content=q)])
            for i, q in enumerate(QUESTIONS)]


def test_structured_output_and_concurrency_against_real_server(server: LlamaServer) -> None:
    client = client_for(server.base_url, concurrency=2)

    async def all_questions():  # noqa: ANN202
        return await asyncio.gather(*(client.complete(prompt(q), Topic, "demo") for q in QUESTIONS[:3]))

    results = run_sync(all_questions())
    assert all(isinstance(value, Topic) and value.topic.strip() for value, _ in results)
    assert all(0 < len(value.topic) <= 40 for value, _ in results)
    usage = client.usage
    assert usage.calls == 3 and usage.prompt_tokens > 30 and usage.completion_tokens > 0
    assert usage.by_stage["demo"].calls == 3


def test_retries_through_500_429_malformed_and_slow_answers(server: LlamaServer) -> None:
    plan = {0: "500", 1: "429", 2: "malformed", 3: "slow"}
    with FaultProxy(server.base_url, lambda n: plan.get(n, "pass"), slow_s=4.0) as proxy:
        client = client_for(proxy.base_url, timeout_s=2.0, max_attempts=6)
        value, usage = run_sync(client.complete(prompt(QUESTIONS[0]), Topic, "demo"))
    assert value.topic.strip()
    assert proxy.log[:5] == ["500", "429", "malformed", "slow", "pass"]
    assert usage.attempts == 5 and client.usage.retries == 4


def test_server_killed_mid_run_loses_nothing_and_rerun_uses_cache(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    model = str(local_model_path("smollm2-135m"))
    first = LlamaServer(model).start()
    state = {"upstream": first}

    def plan(number: int) -> str:
        if number == 2:  # the server dies after two answers
            state["upstream"].stop()
        return "pass"

    try:
        with FaultProxy(first.base_url, plan) as proxy:
            client = client_for(proxy.base_url, cache=cache, concurrency=1, max_attempts=2, max_tokens=40)
            describer = LLMDescriber(client, prompt=GIST_PROMPT, schema=Gist)
            out = describer.describe(conversations())
    finally:
        first.stop()
    assert [s.conversation_id for s in out] == ["q0", "q1", "q2", "q3"]  # every conversation is still there
    done = [s for s in out if s.summary is not None]
    assert len(done) == 2 and all("feature" in s.facets for s in done)
    assert sorted(describer.failed_ids) == sorted(s.conversation_id for s in out if s.summary is None)
    assert len(client.usage.failures) == 2 and "failed after 2 attempts" in client.usage.failures[0].error
    assert all(s.request for s in out)  # offline facets kept for the failed ones

    second = LlamaServer(model).start()
    try:
        client2 = client_for(second.base_url, cache=ResponseCache(tmp_path / "cache.sqlite"), max_tokens=40)
        again = LLMDescriber(client2, prompt=GIST_PROMPT, schema=Gist).describe(conversations())
    finally:
        second.stop()
    assert client2.usage.cache_hits == 2 and client2.usage.calls == 2 and not client2.usage.failures
    assert all(s.summary is not None for s in again)
    for before, after in zip(out, again):
        if before.summary is not None:
            assert after.summary == before.summary and after.facets["feature"] == before.facets["feature"]


def test_cluster_names_through_the_server_with_requests_in_flight(server: LlamaServer) -> None:
    """The cluster-level namer over the OpenAI-compatible path, three requests in flight at once."""
    sys.path.insert(0, str(Path(__file__).parent))
    import numpy as np

    from kiku.llm import ClusterNamer
    from kiku.naming import KeyphraseNamer
    from kiku.protocols import TopicDraft
    from kiku.vectors import l2_normalise
    from stage_corpus import shared_embedder, theme_corpus

    corpus, labels = theme_corpus()
    drafts = [TopicDraft(key=f"L0-{k:03d}", member_index=np.flatnonzero(labels == k),
                         centroid=l2_normalise(corpus.embeddings[labels == k].mean(axis=0))) for k in range(3)]
    client = client_for(server.base_url, concurrency=3, max_tokens=64)
    namer = ClusterNamer(client, KeyphraseNamer(shared_embedder()), sample_size=4, contrastive=2)
    names = namer.name_topics(drafts, corpus)
    assert len(names) == 3 and all(n.name.strip() for n in names)
    counts = namer.validation
    assert counts["labels"] == 3 and counts["accepted"] + counts["fallback"] == 3
    assert client.usage.calls == 3 + counts["retried"] and client.usage.completion_tokens > 0
    assert len({n.name for n in names}) == 3 or counts["fallback"] > 0
