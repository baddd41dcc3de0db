"""The embedding model the local classifier uses: kiku's packaged MiniLM (``kiku.embed``),
behind a per-process text cache."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import numpy as np


class TextEmbedder(Protocol):
    """Anything with ``embed(texts) -> np.ndarray (n, dim) float32``, rows L2-normalised."""

    def embed(self, texts: list[str]) -> np.ndarray: ...


class CachedEmbedder:
    """Wraps an embedder and remembers vectors by text, so comparing backends or taxonomies
    on the same items embeds each text once. ``embed(list[str]) -> (n, dim) float32``."""

    def __init__(self, embedder: TextEmbedder, max_entries: int = 50_000) -> None:
        self.embedder = embedder
        self.max_entries = max_entries
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.embedder.embed(missing)
            if len(self._cache) + len(missing) > self.max_entries:
                self._cache.clear()
            self._cache.update(zip(missing, vectors))
            if any(t not in self._cache for t in texts):  # more new texts than the cache holds
                return self.embedder.embed(texts)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)


@lru_cache(maxsize=1)
def default_embedder() -> TextEmbedder:
    """The packaged MiniLM embedder with a per-process text cache (loaded once per process)."""
    from kiku.embed import MiniLMEmbedder

    return CachedEmbedder(MiniLMEmbedder())
