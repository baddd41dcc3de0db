"""Tests of the offline embedder on the real int8 MiniLM model shipped in the wheel."""

from __future__ import annotations

import numpy as np
import pytest

from embedder_checks import assert_batch_independent, assert_paraphrases_closer, assert_unit_float32_rows
from kiku.embed import MODEL_DIM, MiniLMEmbedder, embed_texts, text_hash


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(batch_size=8)


def test_is_an_embedder_with_unit_float32_rows(embedder: MiniLMEmbedder) -> None:
    assert_unit_float32_rows(embedder, MODEL_DIM)


def test_paraphrases_are_closer_than_unrelated_texts(embedder: MiniLMEmbedder) -> None:
    assert_paraphrases_closer(embedder)


def test_order_is_restored_after_length_sorting(embedder: MiniLMEmbedder) -> None:
    assert_batch_independent(embedder, atol=1e-4)


def test_deterministic(embedder: MiniLMEmbedder) -> None:
    texts = ["the same text", "another one about python lists"]
    np.testing.assert_array_equal(embedder.embed(texts), embedder.embed(texts))


def test_truncation_flag_for_long_text(embedder: MiniLMEmbedder) -> None:
    long_text = "word " * 600
    vectors, flags = embedder.embed_with_info(["short text", long_text])
    assert flags == [False, True]
    assert embedder.truncated(["short text", long_text]) == [False, True]
    np.testing.assert_allclose(np.linalg.norm(vectors[1]), 1.0, atol=1e-5)


def test_text_hash_is_sha256() -> None:
    assert text_hash("hi") == "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
    assert text_hash("hi") != text_hash("hi ")


class CountingEmbedder:
    """Wraps the real model and records what it was asked to embed."""

    name = "counting"
    dim = MODEL_DIM

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self.seen: list[str] = []

    def embed(self, texts):  # noqa: ANN001, ANN201
        self.seen.extend(texts)
        return self.inner.embed(texts)


def test_cache_reuse_and_dedupe(embedder: MiniLMEmbedder) -> None:
    counting = CountingEmbedder(embedder)
    cache: dict[str, np.ndarray] = {}
    texts = ["refund please", "where is my card", "refund please"]
    vectors, hashes = embed_texts(texts, counting, cache)
    assert counting.seen == ["refund please", "where is my card"]
    assert hashes == [text_hash(t) for t in texts]
    assert set(cache) == set(hashes)
    np.testing.assert_array_equal(vectors[0], vectors[2])

    progress: list[int] = []
    again, _ = embed_texts(["where is my card", "new question", "refund please"], counting, cache, progress.append)
    assert counting.seen[2:] == ["new question"]
    assert progress == [1]
    np.testing.assert_array_equal(again[0], vectors[1])
    np.testing.assert_allclose(again[1], embedder.embed(["new question"])[0], atol=1e-5)


def test_embed_texts_progress_per_batch(embedder: MiniLMEmbedder) -> None:
    progress: list[int] = []
    vectors, _ = embed_texts([f"question number {i}" for i in range(20)], embedder, None, progress.append)
    assert vectors.shape == (20, MODEL_DIM)
    assert progress == [8, 8, 4]  # amounts per batch: they add up to the texts embedded


def test_cached_embedder_embeds_each_distinct_text_once(embedder: MiniLMEmbedder) -> None:
    from kiku.embed import CachedEmbedder

    counting = CountingEmbedder(embedder)
    cached = CachedEmbedder(counting)
    first = cached.embed(["refund please", "where is my card", "refund please"])
    again = cached.embed(["where is my card", "new question"])
    assert counting.seen == ["refund please", "where is my card", "new question"]
    np.testing.assert_array_equal(first[1], again[0])
    assert cached.embed([]).shape == (0, MODEL_DIM)


def test_classify_uses_the_core_embedder_at_its_own_token_limit() -> None:
    from kiku.classify.backends import default_embedder
    from kiku.embed import CLASSIFY_MAX_TOKENS, CachedEmbedder

    chosen = default_embedder()
    assert isinstance(chosen, CachedEmbedder) and isinstance(chosen.embedder, MiniLMEmbedder)
    assert chosen.embedder.max_tokens == CLASSIFY_MAX_TOKENS > 48
