"""Search a run by meaning: embed a query with the run's own embedder, rank by cosine similarity.

The run's conversations were embedded by the model its manifest names (``config.embedder``,
at ``config.embed_max_tokens``; :func:`kiku.embed.make_embedder`). A query embedded by the same
model lands in the same space, so the conversations nearest to it are the ones that *mean*
the same thing even when they share no word with it ("money never showed up in my account"
finds "my transfer has not arrived").

Not the whole run comes back: at most ``top`` conversations (default :data:`DEFAULT_TOP`),
and only those more similar to the query than the run's own *chance level* (:attr:`SimilarIndex.floor`):
the :data:`FLOOR_PERCENTILE`-th percentile of the similarity between random pairs of the run's
conversations (:data:`FLOOR_PAIRS` seeded pairs). A match must be closer to the query than
three in four random pairs of conversations are to each other; a query about nothing in the
run then finds nothing instead of the 200 least unrelated conversations. Measured on the
840-query BANKING77 run (12 intents): the floor is 0.34, a paraphrase with no shared word
keeps 18-68 conversations, nearly all of its intent, and "recipe for pancakes with
blueberries" (best score 0.23) keeps none; on the 560 W&B queries the floor is 0.28 and the
pancake query (best 0.17) finds nothing too (docs/explorer.md has the table).

Shapes: ``SimilarIndex(run_dir, ids).vectors`` is (n, dim) float32 with unit rows, aligned with
``ids`` (a conversation without a stored embedding has a zero row and never matches).

Example::

    index = SimilarIndex("runs/banking")
    found = index.search("money never showed up in my account")
    found.rows[:3], found.scores[:3], found.floor
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from kiku.errors import InputError

#: At most this many conversations per similar-meaning search (a page of the explorer's list
#: is 25; 200 is eight pages, enough to see where the meaning drifts off).
DEFAULT_TOP = 200
#: Random pairs of conversations sampled to measure the run's chance-level similarity.
FLOOR_PAIRS = 4000
#: A match must be more similar to the query than this percentile of random pairs.
FLOOR_PERCENTILE = 75.0
#: The longest query embedded (characters); longer ones are cut (the model keeps ~48 word pieces).
MAX_QUERY_CHARS = 500


class SimilarResult(BaseModel):
    """The conversations nearest in meaning to one query, most similar first.

    ``rows`` index the ids the index was built with; ``scores`` are their cosine similarities
    (same order, rounded to 4 places); ``floor`` the similarity a match had to exceed and
    ``top`` the most that could come back.
    """

    query: str
    rows: list[int] = Field(default_factory=list)
    scores: list[float] = Field(default_factory=list)
    total: int = 0
    floor: float = 0.0
    top: int = DEFAULT_TOP


def chance_similarity(vectors: np.ndarray, pairs: int = FLOOR_PAIRS, percentile: float = FLOOR_PERCENTILE,
                      seed: int = 0) -> float:
    """The ``percentile``-th cosine similarity of ``pairs`` random pairs of distinct rows (seeded).

    ``vectors``: (n, dim) with unit (or zero) rows. Zero rows are left out; fewer than two rows
    give 0.0.

    >>> v = np.eye(4, dtype=np.float32)               # four orthogonal conversations
    >>> chance_similarity(v)
    0.0
    """
    usable = np.flatnonzero(np.abs(vectors).sum(axis=1) > 0)
    if len(usable) < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    a = rng.choice(usable, size=pairs)
    b = rng.choice(usable, size=pairs)
    keep = a != b
    if not keep.any():
        return 0.0
    sims = np.einsum("ij,ij->i", vectors[a[keep]], vectors[b[keep]])
    return round(float(np.percentile(sims, percentile)), 4)


def rank_by_similarity(vectors: np.ndarray, query: np.ndarray, top: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``vectors`` (n, dim) whose cosine with ``query`` (dim,) exceeds ``floor``, best first, at most ``top``.

    Returns (rows (k,) int64, scores (k,) float32); ties keep the lower row first.

    >>> v = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    >>> rank_by_similarity(v, np.array([1, 0], dtype=np.float32), top=5, floor=0.1)
    (array([0, 1]), array([1. , 0.6], dtype=float32))
    """
    sims = vectors @ query.astype(np.float32)
    top = max(0, min(int(top), len(sims)))
    if top == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    best = np.argpartition(-sims, top - 1)[:top] if top < len(sims) else np.arange(len(sims))
    best = best[sims[best] > floor]
    order = np.lexsort((best, -sims[best]))
    rows = best[order].astype(np.int64)
    return rows, sims[rows]


class SimilarIndex:
    """A run's stored embeddings plus its embedder, ready to answer similar-meaning queries.

    Loads ``embeddings.parquet`` through the run store once (17.5k x 384 float32 is 27 MB) and
    the embedder named by the run's manifest on the first query; both are reused. Thread-safe.

    Args:
        run_dir: a finished run folder with ``embeddings.parquet``.
        ids: conversation ids to align the rows with (the explorer's bundle order); default:
            the embeddings file's own order.
        embedder: an embedder to use instead of the run's (tests of pure logic only).

    Raises ``InputError`` when the run has no embeddings.
    """

    def __init__(self, run_dir: str | Path, ids: Sequence[str] | None = None, embedder: Any = None) -> None:
        from kiku.pipeline import load_embeddings
        from kiku.store import Manifest, RunStore, missing_tables

        self.run_dir = Path(run_dir)
        if missing_tables(self.run_dir, ("embeddings",)):
            raise InputError(str(run_dir), "the run has no embeddings.parquet", "finish it with `kiku run` first")
        stored_ids, stored = load_embeddings(RunStore(self.run_dir))
        if ids is None:
            self.ids = [str(i) for i in stored_ids]
            self.vectors = np.ascontiguousarray(stored, dtype=np.float32)
        else:
            self.ids = [str(i) for i in ids]
            at = {str(cid): k for k, cid in enumerate(stored_ids)}
            self.vectors = np.zeros((len(self.ids), stored.shape[1] if stored.ndim == 2 else 0), dtype=np.float32)
            for row, cid in enumerate(self.ids):
                k = at.get(cid)
                if k is not None:
                    self.vectors[row] = stored[k]
        config = Manifest.read(self.run_dir).config
        self.embedder_name = str(config.get("embedder") or "minilm")
        self.max_tokens = int(config.get("embed_max_tokens") or 48)
        self._embedder = embedder
        self._floor: float | None = None
        self._lock = threading.Lock()

    @property
    def floor(self) -> float:
        """The run's chance-level similarity (:func:`chance_similarity`), computed once."""
        with self._lock:
            if self._floor is None:
                self._floor = chance_similarity(self.vectors)
            return self._floor

    def embedder(self) -> Any:
        """The run's own embedder (``make_embedder(config.embedder, max_tokens=config.embed_max_tokens)``), loaded once."""
        from kiku.embed import make_embedder

        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.embedder_name, batch_size=1, max_tokens=self.max_tokens)
            return self._embedder

    def embed_query(self, query: str) -> np.ndarray:
        """The query's unit vector (dim,), by the run's embedder."""
        vector = np.asarray(self.embedder().embed([query[:MAX_QUERY_CHARS]]), dtype=np.float32)[0]
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def search(self, query: str, top: int = DEFAULT_TOP, floor: float | None = None) -> SimilarResult:
        """The conversations nearest in meaning to ``query``: at most ``top``, above ``floor``
        (default: :attr:`floor`), most similar first. An empty query finds nothing."""
        text = query.strip()
        limit = self.floor if floor is None else float(floor)
        if not text or not len(self.vectors):
            return SimilarResult(query=query, floor=limit, top=top)
        rows, scores = rank_by_similarity(self.vectors, self.embed_query(text), top, limit)
        return SimilarResult(query=query, rows=[int(r) for r in rows], scores=[round(float(s), 4) for s in scores],
                             total=len(rows), floor=limit, top=top)
