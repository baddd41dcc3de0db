"""Opt-in quality check with a Qwen model (KIKU_SLOW=1): the summary names what the user asked about."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800),
              pytest.mark.skipif(os.environ.get("KIKU_SLOW") != "1", reason="opt-in: KIKU_SLOW=1")]


def test_qwen_summaries_name_the_topic(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("llama_cpp")
    from kiku.llm import build_llm_stages
    from kiku.records import Conversation, Message

    describer, _, _, client = build_llm_stages("local", cache=tmp_path / "c.sqlite")
    questions = {"table": "How do I log a pandas DataFrame as a wandb Table?",
                 "sweep": "My wandb sweep agent keeps crashing with CUDA out of memory, what should I change?"}
    out = describer.describe([Conversation(id=k, messages=[Message(role="user", content=q)]) for k, q in questions.items()])
    for summary in out:
        assert summary.conversation_id in summary.summary.lower() + " " + (summary.task or "").lower()
        assert 1 <= summary.concern <= 2
    assert client.usage.calls >= 2
