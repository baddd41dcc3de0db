"""``--dry-run``: how many LLM calls, tokens, dollars and minutes a run would take, before any call.

Both scopes are reported side by side: ``clusters`` (the default: one call per base cluster and
per parent, conversations described offline) and ``conversations`` (Clio's full mode: one
describe call per distinct conversation, then naming and hierarchy). The describe stage is
counted exactly (its prompts are rendered and tokenised; answers already in the cache are not
counted). Naming and hierarchy calls depend on clusters that do not exist yet, so they are
estimated from the expected number of base clusters. For a local model a short calibration
(one prompt alone, then ``n_parallel`` prompts decoded together) measures this machine's
prompt and decode speed, and each scope's time is estimated from its tokens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiku.hierarchy import level_sizes
from kiku.llm.client import Estimate, LLMClient
from kiku.llm.cluster_naming import BASE_PROMPT, PARENT_PROMPT, ClusterNamedHierarchy, ClusterNamer
from kiku.llm.facets import LLMDescriber
from kiku.llm.hierarchy import ClioHierarchy
from kiku.llm.naming import ContrastiveNamer
from kiku.llm.providers import price_per_million
from kiku.records import Conversation

SUMMARY_TOKENS = 40  # a Clio summary is at most ~30 words
TEMPLATE_TOKENS = 260  # naming / hierarchy prompt text without the listed items
NAME_COMPLETION_TOKENS = 70
ASSIGN_COMPLETION_TOKENS = 15
LABEL_COMPLETION_TOKENS = 45  # {"name": 3-8 words, "description": one sentence}, measured on the W&B queries
CHILD_LINE_TOKENS = 30  # "name: description" of one child topic


def expected_clusters(n_conversations: int, clusters: int | None = None) -> int:
    """The base cluster count a run will use: the given one, else kiku's automatic sqrt(n)."""
    if clusters:
        return min(clusters, n_conversations)
    return max(2, min(n_conversations, round(math.sqrt(n_conversations))))


def estimate_run(
    conversations: Sequence[Conversation],
    describer: LLMDescriber,
    namer: ContrastiveNamer | None = None,
    hierarchy: ClioHierarchy | None = None,
    clusters: int | None = None,
    exact_tokens: bool = True,
) -> Estimate:
    """Estimate calls, tokens and cost of the describe, name and hierarchy stages.

    ``exact_tokens``: count describe prompts with the backend's tokenizer (llama.cpp's own
    vocabulary for local models; characters/4 for hosted ones); otherwise characters/4.

    >>> estimate_run(conversations, describer, namer, hierarchy).one_line()   # doctest: +SKIP
    'dry run: ~620 LLM calls (0 already cached), ~402,113 prompt + ~74,400 completion tokens, ~$0.1050'
    """
    client = describer.client
    price = price_per_million(client.backend.provider, client.backend.model)
    estimate = Estimate()
    count = client.count_tokens if exact_tokens else (lambda text: max(1, len(text) // 4))
    calls, cached, prompt, completion = describer.estimate(conversations, count_tokens=count)
    estimate.add("describe", calls, cached, prompt, completion, price)
    k = expected_clusters(len(conversations), clusters)
    if namer is not None:
        per_call = TEMPLATE_TOKENS + (min(namer.sample_size, max(1, len(conversations) // k)) + namer.contrastive) * SUMMARY_TOKENS
        estimate.add("name", k, 0, k * per_call, k * NAME_COMPLETION_TOKENS, price)
    if hierarchy is not None:
        calls = completion = 0
        tokens = 0.0  # prompt tokens of the hierarchy calls (fractional per call)
        children = k
        for target in level_sizes(k, levels=hierarchy.levels, max_top=hierarchy.top_size, branching=hierarchy.branching, min_ratio=1.0):
            hoods = max(1, round(children / hierarchy.neighbourhood_size))
            candidates = target
            calls += hoods + children + target
            tokens += hoods * (TEMPLATE_TOKENS + (children / hoods + hierarchy.outsiders) * SUMMARY_TOKENS)
            tokens += children * (TEMPLATE_TOKENS // 2 + SUMMARY_TOKENS + candidates * 12)
            tokens += target * (TEMPLATE_TOKENS + (children / target + hierarchy.outsiders) * SUMMARY_TOKENS)
            completion += hoods * 120 + children * ASSIGN_COMPLETION_TOKENS + target * NAME_COMPLETION_TOKENS
            children = target
        estimate.add("hierarchy", calls, 0, int(tokens), int(completion), price)
    return estimate


def estimate_cluster_scope(conversations: Sequence[Conversation], namer: ClusterNamer, hierarchy: ClusterNamedHierarchy,
                           clusters: int | None = None, count_tokens: Callable[[str], int] | None = None) -> Estimate:
    """Calls, tokens and cost of ``--llm-scope clusters``: one label per base cluster and per parent.

    Prompt tokens: the template plus the member sample and the nearest outsiders (each opening
    request cut as the namer cuts it), counted with ``count_tokens`` (default the backend's).
    A label that fails validation is asked once more: at most twice these calls.
    """
    from kiku.llm.cluster_naming import _clip

    client = namer.client
    count = count_tokens or client.count_tokens
    price = price_per_million(client.backend.provider, client.backend.model)
    n = len(conversations)
    k = expected_clusters(n, clusters)
    step = max(1, n // 200)
    sample = [c.first_user_message for c in conversations[::step]] or [""]
    line = sum(count(_clip(t, namer.max_chars)) + 2 for t in sample) / len(sample)
    template = count(BASE_PROMPT.format(members="", contrast="", hint="", feedback="")) + 12
    shown = min(namer.sample_size, max(1, n // k)) + namer.contrastive
    estimate = Estimate()
    estimate.add("name", k, 0, int(k * (template + shown * line)), k * LABEL_COMPLETION_TOKENS, price)
    parents = sizes = level_sizes(k, levels=hierarchy.levels, max_top=hierarchy.max_top, branching=hierarchy.branching)
    calls = sum(parents)
    tokens = 0.0
    children = k
    parent_template = count(PARENT_PROMPT.format(members="", contrast="", feedback="")) + 12
    for target in sizes:
        tokens += target * (parent_template + min(15, children / target) * CHILD_LINE_TOKENS + namer.contrastive * line)
        children = target
    estimate.add("hierarchy", calls, 0, int(tokens), calls * LABEL_COMPLETION_TOKENS, price)
    return estimate


@dataclass
class Calibration:
    """This machine's speed with a local model: prompt tokens/s, decode tokens/s alone and batched."""

    prompt_tps: float
    decode_tps_single: float
    decode_tps_batch: float
    n_parallel: int
    seconds: float

    def seconds_for(self, estimate: Estimate) -> float:
        """Expected seconds for an estimate's tokens (prompts at prompt speed, answers decoded in batches)."""
        return estimate.prompt_tokens / max(1e-6, self.prompt_tps) + estimate.completion_tokens / max(1e-6, self.decode_tps_batch)

    def one_line(self) -> str:
        return (f"calibration ({self.seconds:.0f} s): prompt {self.prompt_tps:.0f} tokens/s, answers "
                f"{self.decode_tps_single:.0f} tokens/s for one sequence, {self.decode_tps_batch:.0f} tokens/s "
                f"for {self.n_parallel} decoded together")


def calibrate(client: LLMClient, messages: list[dict[str, str]], max_tokens: int = 16) -> Calibration | None:
    """Measure a local model on ``messages``: one sequence, then ``n_parallel`` variants at once; None when not local.

    Speeds come from the engine's own timing of its decode calls (steps of prompt tokens only
    and steps of answer tokens only), so a pause of the machine between calls does not count.
    Free text, no grammar: about 16 steps per part.
    """
    if client.backend.provider != "local" or not hasattr(client.backend, "engine"):
        return None
    started = time.perf_counter()
    engine = client.backend.engine

    def measured(prompts: list[list[dict[str, str]]]) -> dict[str, float]:
        for key in engine.stats:
            engine.stats[key] = 0
        for future in [engine.submit(p, None, max_tokens) for p in prompts]:
            future.result()
        return dict(engine.stats)

    single = measured([messages])
    width = engine.n_parallel
    batch = single if width == 1 else measured(
        [[{"role": m["role"], "content": f"{m['content']}\n({i})"} for m in messages] for i in range(width)])

    def rate(stats: dict[str, float], kind: str) -> float:
        return stats[f"{kind}_tokens"] / stats[f"{kind}_seconds"] if stats[f"{kind}_seconds"] else 0.0

    parts = [single] if batch is single else [single, batch]
    prompt_seconds = sum(p["prompt_seconds"] for p in parts)
    prompt_tps = sum(p["prompt_tokens"] for p in parts) / prompt_seconds if prompt_seconds else 0.0
    return Calibration(prompt_tps=prompt_tps, decode_tps_single=rate(single, "decode"),
                       decode_tps_batch=rate(batch, "decode"), n_parallel=width, seconds=time.perf_counter() - started)


def _stage_lines(estimate: Estimate) -> list[str]:
    lines = []
    for stage, part in estimate.by_stage.items():
        cost = "?" if part["cost_usd"] is None else f"${part['cost_usd']:.4f}"
        lines.append(f"    {stage}: {part['calls']} calls ({part['cached']} cached), {part['prompt_tokens']:,} + "
                     f"{part['completion_tokens']:,} tokens, {cost}")
    return lines


def _minutes(calibration: Calibration | None, estimate: Estimate) -> str:
    if calibration is None:
        return ""
    return f", ~{calibration.seconds_for(estimate) / 60:.1f} min on this machine"


#: Why ``--llm-scope clusters`` is the default (the measurements are in docs/llm.md and benchmarks/RESULTS.md).
DEFAULT_SCOPE_REASON = ("clusters is the default: on the 560 W&B example queries it made 36 LLM calls and took "
                        "under 3 minutes with the 0.5B model on 2 cores, where conversations needs ~617 calls and "
                        "45-70 minutes (docs/llm.md)")


def dry_run_report(input_path: object, config: object, calibration: bool = True) -> str:
    """Load the input, build both scopes' LLM stages of ``config`` (a RunConfig) and describe the estimates.

    Makes no call to a hosted provider and needs no hosted provider's SDK; for a local model it
    loads the model for a calibration of a few seconds (``calibration=False`` skips it).
    """
    from pathlib import Path

    from kiku.llm import build_cluster_stages, build_llm_stages
    from kiku.llm.providers import parse_llm_spec
    from kiku.loaders import load_conversations

    conversations = list(load_conversations(Path(str(input_path)), getattr(config, "format", None), getattr(config, "mapping", None)))
    spec = config.llm
    hosted_sdk = parse_llm_spec(spec).provider != "local"
    common: dict[str, Any] = dict(concurrency=getattr(config, "llm_concurrency", None), seed=getattr(config, "seed", 0),
                                  levels=getattr(config, "levels", None), threads=getattr(config, "llm_threads", None),
                                  backend_options={"check_sdk": False} if hosted_sdk else None)
    describer, namer, hierarchy, client = build_llm_stages(spec, top_size=getattr(config, "max_top", None) or 8, **common)
    cluster_namer, cluster_hierarchy, _ = build_cluster_stages(spec, max_top=getattr(config, "max_top", None), **common)
    cluster_namer.client = client  # one backend (and tokenizer) for both estimates
    clusters = getattr(config, "clusters", None)
    full = estimate_run(conversations, describer, namer, hierarchy, clusters=clusters)
    scoped = estimate_cluster_scope(conversations, cluster_namer, cluster_hierarchy, clusters=clusters)
    measured = None
    if calibration and client.backend.provider == "local" and conversations:
        from kiku.protocols import Corpus, TopicDraft

        # a naming prompt of the real shape: half of the first 40 requests as members, the rest as outsiders

        texts = [c.first_user_message for c in conversations[:40]]
        vectors = np.eye(len(texts), dtype=np.float32)
        corpus = Corpus(ids=[c.id for c in conversations[:40]], texts=texts, requests=texts, embeddings=vectors)
        draft = TopicDraft(key="calibration", member_index=np.arange(0, len(texts), 2), centroid=vectors[0])
        measured = calibrate(client, cluster_namer.messages_for(draft, corpus))
    chosen = getattr(config, "llm_scope", "clusters")
    this_run = scoped if chosen == "clusters" else full
    lines = [f"{len(conversations)} conversations, --llm {client.backend.provider}/{client.backend.model}, "
             f"--llm-scope {chosen}", this_run.one_line() + _minutes(measured, this_run),
             f"scope clusters{' (this run)' if chosen == 'clusters' else ''}: "
             + scoped.one_line().removeprefix("dry run: ") + " (+ at most one retry per label)" + _minutes(measured, scoped),
             *_stage_lines(scoped),
             f"scope conversations{' (this run)' if chosen == 'conversations' else ''}: "
             + full.one_line().removeprefix("dry run: ") + _minutes(measured, full),
             *_stage_lines(full)]
    if measured is not None:
        lines.append(measured.one_line())
    lines.append(DEFAULT_SCOPE_REASON)
    lines.append("dry run: no LLM call was made for the run (naming and hierarchy are estimated from the expected cluster count)")
    return "\n".join(lines)
