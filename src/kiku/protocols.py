"""The small interfaces a stage takes as an argument, so users swap backends without subclassing.

Each protocol has one obvious method. kiku ships an offline implementation of each and the
LLM layer (``kiku.llm``) ships another; a user can pass any object with the same method.

Shapes:
    Embedder.embed(texts)                        -> np.ndarray (n, dim) float32, L2-normalised
    Describer.describe(conversations)            -> list[Summary], same order
    Clusterer.fit_predict(embeddings)            -> np.ndarray (n,) int, -1 = unclustered
    TopicNamer.name_topics(drafts, corpus)       -> list[TopicName], same order as drafts
    HierarchyBuilder.build(base, corpus)         -> list[Cluster] (base with parent_id set + parents)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from kiku.records import Cluster, Conversation, Summary


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors. ``name`` and ``dim`` identify the model in fingerprints."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Describer(Protocol):
    """Computes the facets of each conversation."""

    name: str

    def describe(self, conversations: Sequence[Conversation]) -> list[Summary]: ...


@runtime_checkable
class Clusterer(Protocol):
    """Groups embeddings into base clusters; label -1 marks the explicit unclustered bucket."""

    name: str

    def fit_predict(self, embeddings: np.ndarray) -> np.ndarray: ...


@dataclass
class Corpus:
    """Everything a namer or hierarchy builder may look at, aligned by index.

    ids: conversation ids (never shown to an LLM); texts: what was embedded (the LLM summary
    when there is one, else the conversation text); requests: opening user requests;
    embeddings: (n, dim) float32.
    """

    ids: list[str]
    texts: list[str]
    requests: list[str]
    embeddings: np.ndarray
    summaries: list[str | None] = field(default_factory=list)


@dataclass
class TopicDraft:
    """A group to be named: its members (indices into the corpus) and, for a parent, its children."""

    key: str
    member_index: np.ndarray
    centroid: np.ndarray
    children: list[Cluster] = field(default_factory=list)


@dataclass
class TopicName:
    name: str
    description: str
    keyphrases: list[str] = field(default_factory=list)
    representative_request: str | None = None


@runtime_checkable
class TopicNamer(Protocol):
    name: str

    def name_topics(self, drafts: Sequence[TopicDraft], corpus: Corpus) -> list[TopicName]: ...


@runtime_checkable
class HierarchyBuilder(Protocol):
    """Builds parent levels above the base clusters.

    Returns the base clusters (with ``parent_id`` set where they have a parent) followed by
    every parent cluster (level >= 1, ``member_ids`` = all conversations below).
    """

    name: str

    def build(self, base: Sequence[Cluster], corpus: Corpus) -> list[Cluster]: ...
