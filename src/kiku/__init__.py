"""kiku (聞く, "to listen"): find out what people ask an AI product, at any scale.

One procedural function per stage plus a one-call ``analyze``::

    import kiku
    run = kiku.analyze("chats.jsonl", "runs/chats")          # load → describe → embed → cluster → name → hierarchy → map
    run.clusters()                                            # every topic, every level
    run.sql("select name, size from clusters where level = 0 order by size desc")

Stage by stage::

    conversations = list(kiku.load_conversations("chats.jsonl"))
    summaries = kiku.describe(conversations)
    vectors, _ = kiku.embed_texts([kiku.embedding_text(c) for c in conversations], kiku.MiniLMEmbedder())
    labels = kiku.KMeansClusterer(seed=0).fit_predict(vectors)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from kiku.assign import assign  # the function shadows its module, as kiku.describe does
from kiku.describe import FacetRegistry, OfflineDescriber, describe, describe_conversation, facet
from kiku.errors import InputError, KikuError, MissingDependencyError
from kiku.pipeline import Components, Progress, Run, RunConfig, analyze, embedding_text
from kiku.protocols import Clusterer, Corpus, Describer, Embedder, HierarchyBuilder, TopicDraft, TopicName, TopicNamer
from kiku.records import Cluster, Conversation, Message, Point, SkippedRecord, Summary
from kiku.store import RunStore

# Heavier stage modules are imported on first use so `import kiku` stays fast.
_LAZY = {
    "load_conversations": "kiku.loaders",
    "detect_format": "kiku.loaders",
    "LoadReport": "kiku.loaders",
    "MiniLMEmbedder": "kiku.embed",
    "embed_texts": "kiku.embed",
    "KMeansClusterer": "kiku.cluster",
    "HDBSCANClusterer": "kiku.cluster",
    "choose_k": "kiku.cluster",
    "choose_granularity": "kiku.cluster",
    "KeyphraseNamer": "kiku.naming",
    "AgglomerativeHierarchy": "kiku.hierarchy",
    "project_embeddings": "kiku.project",
    "SimilarIndex": "kiku.similar",
    "compare_runs": "kiku.compare",
    "compare_periods": "kiku.compare",
    "compare_topics": "kiku.compare",
    "join_table": "kiku.outcomes",
    "join_metadata": "kiku.outcomes",
    "priority_report": "kiku.priorities",
    "rank_topics": "kiku.priorities",
    "classify_gaps": "kiku.gaps",
    "Engine": "kiku.engine",
    "LocalEngine": "kiku.engine",
    "make_engine": "kiku.engine",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kiku' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "__version__", "analyze", "assign", "Run", "RunConfig", "Components", "Progress", "RunStore",
    "Conversation", "Message", "Summary", "Cluster", "Point", "SkippedRecord",
    "KikuError", "InputError", "MissingDependencyError",
    "describe", "describe_conversation", "OfflineDescriber", "FacetRegistry", "facet", "embedding_text",
    "Embedder", "Describer", "Clusterer", "TopicNamer", "HierarchyBuilder", "Corpus", "TopicDraft", "TopicName",
    *_LAZY,
]
