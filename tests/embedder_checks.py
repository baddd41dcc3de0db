"""Checks every kiku embedder passes (MiniLM in test_embed.py, mpnet in test_embed_mpnet.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kiku.protocols import Embedder


def assert_unit_float32_rows(embedder: Any, dim: int) -> None:
    """An Embedder whose rows are (n, dim) float32 unit vectors, also for empty and short texts."""
    assert isinstance(embedder, Embedder)
    vectors = embedder.embed(["How do I reset my password?", "", "ok", "Quelle heure est-il ?"])
    assert vectors.shape == (4, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, dim)


def assert_paraphrases_closer(embedder: Any) -> None:
    """Two paraphrase pairs: each text is closer to its paraphrase than to the other topic, by 0.3."""
    a, b, c, d = embedder.embed([
        "How can I reset my account password?",
        "I forgot my password and need to change it",
        "What is a good recipe for banana bread?",
        "Give me instructions for baking banana cake",
    ])
    assert a @ b > a @ c + 0.3
    assert c @ d > c @ b + 0.3


def assert_batch_independent(embedder: Any, atol: float) -> None:
    """A text's vector does not depend on the batch it is in (length sorting, padding)."""
    texts = ["a much longer sentence about transferring money abroad with fees", "hi", "card lost"]
    together = embedder.embed(texts)
    one_by_one = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=atol)
