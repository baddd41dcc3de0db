"""The LLM layer: providers, a cached async client, Clio facets, contrastive naming, Clio hierarchy.

Quick start::

    from kiku.llm import build_llm_stages
    describer, namer, hierarchy, client = build_llm_stages("local")      # or "openai/gpt-4o-mini"
    summaries = describer.describe(conversations)
    print(client.usage.one_line())

Every provider SDK and llama.cpp is imported lazily; a missing one raises
:class:`kiku.errors.MissingDependencyError` with the ``pip install 'kiku[...]'`` line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kiku.aio import run_sync
from kiku.llm.cache import ResponseCache, cache_key, default_cache_path
from kiku.llm.client import Estimate, Failure, LLMCallError, LLMClient, StageUsage, Usage, backoff_delay
from kiku.llm.cluster_naming import ClusterNamedHierarchy, ClusterNamer, TopicLabel, label_problem
from kiku.llm.facets import ClioFacets, LLMDescriber, Score, ShortText, render_conversation
from kiku.llm.hierarchy import ClioHierarchy, level_sizes
from kiku.llm.models import default_local_model, local_model_path
from kiku.llm.naming import ContrastiveNamer
from kiku.llm.providers import ProviderSpec, parse_llm_spec, price_per_million
from kiku.protocols import Embedder

__all__ = [
    "ClioFacets", "ClioHierarchy", "ClusterNamedHierarchy", "ClusterNamer", "ContrastiveNamer", "TopicLabel",
    "build_cluster_stages", "label_problem", "Estimate", "Failure", "LLMCallError", "LLMClient",
    "LLMDescriber", "ProviderSpec", "ResponseCache", "Score", "ShortText", "StageUsage", "Usage", "backoff_delay",
    "build_llm_stages", "cache_key", "default_cache_path", "default_local_model", "level_sizes", "local_model_path",
    "parse_llm_spec", "price_per_million", "render_conversation", "run_sync",
]


def _client(spec: str, base_url: str | None, concurrency: int | None, cache: ResponseCache | str | os.PathLike[str] | None,
            redact: bool | None, max_attempts: int, timeout_s: float | None, threads: int | None, seed: int,
            backend_options: dict[str, Any] | None, max_tokens: int = 512) -> LLMClient:
    """The one client of a run's LLM stages (see :func:`build_llm_stages` for the parameters)."""
    parsed = parse_llm_spec(spec, base_url)
    if cache is None:
        cache = ResponseCache()
    elif not isinstance(cache, ResponseCache):
        cache = ResponseCache(Path(cache))
    options: dict[str, Any] = {"seed": seed}
    if parsed.provider == "local":
        if threads is not None:
            options["n_threads"] = threads
        options.update(backend_options or {})
    else:
        options = dict(backend_options or {})
    return LLMClient.from_spec(
        parsed, backend_options=options, cache=cache, concurrency=concurrency, redact=redact, max_tokens=max_tokens,
        max_attempts=max_attempts, timeout_s=timeout_s or (600.0 if parsed.provider == "local" else 120.0), seed=seed,
    )


def build_cluster_stages(
    spec: str,
    *,
    base_url: str | None = None,
    concurrency: int | None = None,
    cache: ResponseCache | str | os.PathLike[str] | None = None,
    redact: bool | None = None,
    max_attempts: int = 4,
    timeout_s: float | None = None,
    embedder: Embedder | None = None,
    max_top: int | None = None,
    levels: int | None = None,
    threads: int | None = None,
    sample_size: int = 6,
    contrastive: int = 4,
    seed: int = 0,
    backend_options: dict[str, Any] | None = None,
) -> tuple[ClusterNamer, ClusterNamedHierarchy, LLMClient]:
    """The cluster-level LLM stages of ``--llm SPEC`` (``--llm-scope clusters``, the default).

    Conversations keep their offline facets; the LLM names each base cluster (``ClusterNamer``)
    and each parent of the offline hierarchy (``ClusterNamedHierarchy``), one call per cluster.
    Parameters as in :func:`build_llm_stages`; ``max_top``/``levels`` as in ``kiku run``.

    >>> namer, hierarchy, client = build_cluster_stages("local")        # doctest: +SKIP
    >>> analyze("chats.jsonl", "runs/c", components=Components(namer=namer, hierarchy=hierarchy, llm_client=client))  # doctest: +SKIP
    """
    from kiku.embed import MiniLMEmbedder
    from kiku.naming import KeyphraseNamer

    client = _client(spec, base_url, concurrency, cache, redact, max_attempts, timeout_s, threads, seed, backend_options,
                     max_tokens=320)
    offline = KeyphraseNamer(embedder or MiniLMEmbedder())
    namer = ClusterNamer(client, offline, sample_size=sample_size, contrastive=contrastive, seed=seed)
    parents = ClusterNamer(client, offline, sample_size=sample_size, contrastive=contrastive, seed=seed, stage="hierarchy")
    return namer, ClusterNamedHierarchy(parents, levels=levels, max_top=max_top, seed=seed), client


def build_llm_stages(
    spec: str,
    *,
    base_url: str | None = None,
    concurrency: int | None = None,
    cache: ResponseCache | str | os.PathLike[str] | None = None,
    redact: bool | None = None,
    max_attempts: int = 4,
    timeout_s: float | None = None,
    prompt: str | None = None,
    schema: type[BaseModel] | None = None,
    embedder: Embedder | None = None,
    top_size: int = 8,
    levels: int | None = None,
    threads: int | None = None,
    sample_size: int = 12,
    contrastive: int = 8,
    seed: int = 0,
    backend_options: dict[str, Any] | None = None,
) -> tuple[LLMDescriber, ContrastiveNamer, ClioHierarchy, LLMClient]:
    """Build the three LLM stages sharing one client for ``--llm SPEC``.

    ``cache``: a ResponseCache, a path to its SQLite file, or None for the shared default
    (``$KIKU_CACHE_DIR/llm-cache.sqlite``). ``redact``: None = on for hosted providers.
    ``timeout_s``: per attempt (default 120 s hosted, 600 s local). ``prompt``/``schema``:
    custom describe prompt and response model. ``embedder``: embeds topic names in the hierarchy.
    ``top_size``/``levels``: the hierarchy's top-level topics and number of parent levels (None:
    as many as it needs). ``threads``: the local model's CPU threads (None: ``$KIKU_LLM_THREADS``
    or min(2, cores)); ignored by hosted providers.

    Returns ``(describer, namer, hierarchy, client)``; ``client.usage`` accumulates calls,
    tokens and cost for ``manifest["llm"]``.
    """
    client = _client(spec, base_url, concurrency, cache, redact, max_attempts, timeout_s, threads, seed, backend_options)
    describer = LLMDescriber(client, prompt=prompt, schema=schema)
    namer = ContrastiveNamer(client, sample_size=sample_size, contrastive=contrastive, seed=seed)
    hierarchy = ClioHierarchy(client, top_size=top_size, embedder=embedder, seed=seed, levels=levels)
    return describer, namer, hierarchy, client
