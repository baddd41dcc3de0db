"""``--dry-run``: how many LLM calls, tokens and dollars a run would take, before any call.

The describe stage is counted exactly (its prompts are rendered and tokenised; answers already
in the cache are not counted). Naming and hierarchy calls depend on clusters that do not
exist yet, so they are estimated from the expected number of base clusters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kiku.hierarchy import level_sizes
from kiku.llm.client import Estimate
from kiku.llm.facets import LLMDescriber
from kiku.llm.hierarchy import ClioHierarchy
from kiku.llm.naming import ContrastiveNamer
from kiku.llm.providers import price_per_million
from kiku.records import Conversation

SUMMARY_TOKENS = 40  # a Clio summary is at most ~30 words
TEMPLATE_TOKENS = 260  # naming / hierarchy prompt text without the listed items
NAME_COMPLETION_TOKENS = 70
ASSIGN_COMPLETION_TOKENS = 15


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


def dry_run_report(input_path: object, config: object) -> str:
    """Load the input, build the LLM stages of ``config`` (a RunConfig) and describe the estimate.

    Makes no LLM call and needs no hosted provider's SDK; loads at most the tokenizer of a local model.
    """
    from pathlib import Path

    from kiku.llm import build_llm_stages
    from kiku.llm.providers import parse_llm_spec
    from kiku.loaders import load_conversations

    conversations = list(load_conversations(Path(str(input_path)), getattr(config, "format", None), getattr(config, "mapping", None)))
    spec = config.llm
    hosted_sdk = parse_llm_spec(spec).provider != "local"
    describer, namer, hierarchy, client = build_llm_stages(
        spec, concurrency=getattr(config, "llm_concurrency", None), seed=getattr(config, "seed", 0),
        top_size=getattr(config, "max_top", None) or 8, levels=getattr(config, "levels", None), backend_options={"check_sdk": False} if hosted_sdk else None,
    )
    estimate = estimate_run(conversations, describer, namer, hierarchy, clusters=getattr(config, "clusters", None))
    lines = [f"{len(conversations)} conversations, --llm {client.backend.provider}/{client.backend.model}", estimate.one_line()]
    for stage, part in estimate.by_stage.items():
        cost = "?" if part["cost_usd"] is None else f"${part['cost_usd']:.4f}"
        lines.append(f"  {stage}: {part['calls']} calls ({part['cached']} cached), {part['prompt_tokens']:,} + "
                     f"{part['completion_tokens']:,} tokens, {cost}")
    lines.append("no LLM call was made (naming and hierarchy are estimated from the expected cluster count)")
    return "\n".join(lines)
