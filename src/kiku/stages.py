"""The pipeline's stages, declared once: what each reads, writes, and depends on.

:data:`PIPELINE` is the one table of stages. Everything else is derived from it:

- the order a run executes them in (:data:`STAGES`, the names, upstream first);
- each stage's fingerprint (:func:`stage_fingerprints`): the stage's name and version, the
  values of its :attr:`Stage.settings` (RunConfig fields), its component's fingerprint and the
  fingerprints of **all** its inputs, so a changed setting re-runs exactly the stages that read
  what it changed;
- invalidation (:func:`downstream`): a stage that runs again invalidates every stage that reads
  it, directly or not;
- the tables each stage writes (``kiku.store.STAGE_TABLES`` is built from :attr:`Stage.outputs`).

The pseudo-input :data:`INPUT` stands for the input file (its sha256, or a hub dataset's name).

A stage's ``run`` takes a :class:`StageContext` and returns its row count, or a dict of
details with a ``"rows"`` key, which lands in ``manifest["stages"][name]``.

**Stage reports (the one hook for components).** After a stage ran, the pipeline calls its
component's optional ``stage_report()`` method (:class:`ReportsStage`), which returns a
:class:`StageReport`: details for the manifest, warnings for the run, and whether the output is
incomplete (then the stage is kept but not marked current, so the next run retries it). The LLM
components use it for failed calls; the generic loop knows nothing about LLMs.

Example:
    >>> [s.name for s in PIPELINE] == list(STAGES)
    True
    >>> stage("hierarchy").inputs
    ('load', 'describe', 'embed', 'project', 'name')
    >>> downstream("project")
    ('project', 'hierarchy')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from kiku.config import RunConfig
    from kiku.engine import Engine
    from kiku.pipeline import Components, Progress
    from kiku.store import RunStore

#: The pseudo-stage standing for the input file in :attr:`Stage.inputs`.
INPUT = "input"


@dataclass(frozen=True)
class StageContext:
    """What a stage's ``run`` gets: the open run store, the input, the settings, the components,
    and the engine the map stages run their chunks on (``None``: ``kiku.engine.LocalEngine``)."""

    store: RunStore
    input_path: Path
    config: RunConfig
    components: Components
    progress: Progress
    engine: Engine | None = None


@dataclass
class StageReport:
    """What a component reports about the stage it just served (see the module docstring).

    ``details`` are merged into the stage's manifest record; ``warnings`` go to
    ``manifest["warnings"]`` (and, when ``show`` is set, to the progress display);
    ``incomplete`` keeps the stage from being marked current, so the next run retries it.
    """

    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    incomplete: bool = False
    show: bool = False


@runtime_checkable
class ReportsStage(Protocol):
    """A component with the optional stage-report hook."""

    def stage_report(self) -> StageReport: ...


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    ``inputs``: upstream stages whose tables it reads (or :data:`INPUT`); ``outputs``: the store
    tables it writes; ``settings``: the RunConfig fields its output depends on; ``component``:
    the :class:`kiku.pipeline.Components` attribute it uses (``None`` for none); ``version``:
    bump it when the stage's code changes its output; ``run``: does the work.
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    settings: tuple[str, ...]
    component: str | None
    run: Callable[[StageContext], Any]
    version: str = "v1"


def _part(ctx: StageContext, name: str) -> Any:
    """The component ``name`` of the run (``kiku.pipeline.default_components`` fills them all)."""
    value = getattr(ctx.components, name)
    if value is None:
        raise ValueError(f"no {name} component: build the components with kiku.pipeline.default_components")
    return value


def _name_remover(ctx: StageContext) -> Any:
    """The embedder that embeds the corpus' name for ``pipeline.topic_vectors``; None keeps the name."""
    return _part(ctx, "embedder") if ctx.config.remove_corpus_name else None


def _load(ctx: StageContext) -> Any:
    from kiku.pipeline import stage_load

    return stage_load(ctx.store, ctx.input_path, ctx.config, ctx.progress, engine=ctx.engine)


def _describe(ctx: StageContext) -> Any:
    from kiku.pipeline import stage_describe

    return stage_describe(ctx.store, _part(ctx, "describer"), ctx.progress, engine=ctx.engine,
                          chunk_rows=ctx.config.chunk_rows)


def _embed(ctx: StageContext) -> Any:
    from kiku.pipeline import stage_embed

    return stage_embed(ctx.store, _part(ctx, "embedder"), ctx.config, ctx.progress, engine=ctx.engine)


def _project(ctx: StageContext) -> Any:
    from kiku.pipeline import stage_project

    return stage_project(ctx.store, ctx.config, ctx.progress, embedder=_name_remover(ctx))


def _cluster(ctx: StageContext) -> Any:
    from kiku.pipeline import stage_cluster

    return stage_cluster(ctx.store, _part(ctx, "clusterer"), ctx.progress, engine=ctx.engine,
                         chunk_rows=ctx.config.chunk_rows, embedder=_name_remover(ctx),
                         merge_pleasantries=ctx.config.merge_pleasantries)


def _name(ctx: StageContext) -> Any:
    from kiku.pipeline import stage_name

    return stage_name(ctx.store, _part(ctx, "namer"), ctx.progress)


def _hierarchy(ctx: StageContext) -> Any:
    from kiku.pipeline import stage_hierarchy

    return stage_hierarchy(ctx.store, _part(ctx, "hierarchy"), ctx.progress, ctx.config)


#: The stages, upstream first. A stage's inputs always come before it.
PIPELINE: tuple[Stage, ...] = (
    Stage("load", (INPUT,), ("conversations",), ("format", "mapping"), None, _load, version="load-v2"),
    Stage("describe", ("load",), ("facets",), ("llm", "llm_scope"), "describer", _describe),
    Stage("embed", ("load", "describe"), ("embeddings",), ("embedder", "embed_max_tokens"), "embedder", _embed),
    Stage("project", ("describe", "embed"), ("projection",), ("seed", "project_sample_size", "remove_corpus_name"), None, _project,
          version="umap-v1-corpus-name"),
    Stage("cluster", ("describe", "embed"), ("cluster_labels",),
          ("clusterer", "clusters", "min_cluster_size", "seed", "remove_corpus_name", "merge_pleasantries"),
          "clusterer", _cluster, version="pleasantries-v1"),
    Stage("name", ("describe", "embed", "cluster"), ("base_clusters",), ("llm",), "namer", _name),
    Stage("hierarchy", ("load", "describe", "embed", "project", "name"), ("clusters", "assignments"),
          ("llm", "levels", "max_top", "seed", "privacy_min_conversations", "privacy_min_users",
           "privacy_user_field"), "hierarchy", _hierarchy),
)

#: The stage names in run order (importable from ``kiku.pipeline`` too).
STAGES: tuple[str, ...] = tuple(s.name for s in PIPELINE)

#: RunConfig fields that never change a run's output, so no fingerprint holds them.
UNFINGERPRINTED: dict[str, str] = {
    "llm_concurrency": "requests in flight change speed, not answers (the response cache is keyed by prompt)",
    "llm_threads": "llama.cpp threads change speed, not answers",
    "embed_batch_size": "vectors do not depend on how many texts are embedded at once",
    "chunk_rows": "chunks change what a killed run keeps, not the output (kiku.engine)",
    "engine": "the engine changes where chunks run, not what they produce (kiku.engine)",
    "engine_address": "which Ray cluster runs the chunks, not what they produce",
}


def stage(name: str) -> Stage:
    """The declaration of stage ``name`` (KeyError when there is none)."""
    for declared in PIPELINE:
        if declared.name == name:
            return declared
    raise KeyError(name)


def downstream(name: str) -> tuple[str, ...]:
    """``name`` and every stage that reads it directly or not, in run order."""
    affected = {name}
    for declared in PIPELINE:
        if any(i in affected for i in declared.inputs):
            affected.add(declared.name)
    return tuple(s for s in STAGES if s in affected)


def stage_fingerprints(config: RunConfig, component_fingerprints: Mapping[str, str], input_fingerprint: str) -> dict[str, str]:
    """Every stage's fingerprint: its name, version, settings, component and all its inputs.

    ``component_fingerprints`` maps a :attr:`Stage.component` name to that component's
    fingerprint (``kiku.pipeline.component_fingerprint``).

    >>> from kiku.config import RunConfig
    >>> a = stage_fingerprints(RunConfig(), {}, "sha-of-input")
    >>> b = stage_fingerprints(RunConfig(project_sample_size=500), {}, "sha-of-input")
    >>> [s for s in STAGES if a[s] != b[s]]
    ['project', 'hierarchy']
    """
    from kiku.store import fingerprint

    fps: dict[str, str] = {INPUT: input_fingerprint}
    for declared in PIPELINE:
        settings = {name: getattr(config, name) for name in declared.settings}
        component = component_fingerprints.get(declared.component) if declared.component else None
        fps[declared.name] = fingerprint(declared.name, declared.version, settings, component,
                                         [fps[i] for i in declared.inputs])
    del fps[INPUT]
    return fps


#: The default component of each Components attribute, for the documentation table.
DEFAULT_COMPONENTS: dict[str, str] = {
    "describer": "`describe.OfflineDescriber` (`llm.LLMDescriber` with `--llm --llm-scope conversations`)",
    "embedder": "`embed.make_embedder(config.embedder)`: `MiniLMEmbedder` (int8 all-MiniLM-L6-v2; `embed_mpnet.MPNetEmbedder` with `--embedder mpnet`)",
    "clusterer": "`cluster.KMeansClusterer` / `HDBSCANClusterer`",
    "namer": "`naming.KeyphraseNamer` (`llm.ClusterNamer` with `--llm`; `llm.ContrastiveNamer` with `--llm-scope conversations`)",
    "hierarchy": "`hierarchy.AgglomerativeHierarchy` (`llm.ClusterNamedHierarchy` with `--llm`; `llm.ClioHierarchy` with `--llm-scope conversations`)",
}


def stage_table_markdown() -> str:
    """The stage table of ``docs/architecture.md``, rendered from :data:`PIPELINE` (a test keeps them equal)."""
    lines = ["| stage | function | reads (stages) | writes (tables) | settings in its fingerprint | component |",
             "|---|---|---|---|---|---|"]
    for s in PIPELINE:
        reads = ", ".join("the input file" if i == INPUT else i for i in s.inputs)
        component = f"`{s.component}`: {DEFAULT_COMPONENTS[s.component]}" if s.component else "-"
        lines.append(f"| {s.name} | `stage_{s.name}` | {reads} | {', '.join(f'`{t}`' for t in s.outputs)} | "
                     f"{', '.join(f'`{x}`' for x in s.settings) or '-'} | {component} |")
    return "\n".join(lines)
