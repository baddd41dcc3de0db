"""Clio's cluster naming with contrastive near-miss examples.

For each cluster the model sees a capped, seeded sample of its summaries and the summaries
*nearest to the cluster centroid that belong to other clusters* (Kura samples the contrast
at random, which rarely shows what makes a cluster different from its neighbours). It
answers with a name of at most 10 words and a two-sentence description. Sibling clusters
never share a name: a clash is sent back once with the taken names, then made unique.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, Field

from kiku.aio import run_sync
from kiku.llm.client import LLMClient
from kiku.llm.facets import ShortText, failure_report
from kiku.naming import central_request, deduplicate_names
from kiku.protocols import Corpus, TopicDraft, TopicName
from kiku.stages import StageReport

MAX_NAME_WORDS = 10


def _cap_words(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    words = value.strip().strip('"').rstrip(".").split()
    return " ".join(words[:MAX_NAME_WORDS])[:120]


class ClusterNaming(BaseModel):
    """The model's answer for one cluster (description first, as Clio asks, so the name can condense it)."""

    description: ShortText(400, "two sentences in the past tense describing what the users asked for")  # type: ignore[valid-type]
    name: Annotated[str, BeforeValidator(_cap_words), Field(max_length=120, description="at most 10 words, an imperative sentence")]


NAMING_PROMPT = """You are summarising a group of related statements about what users asked an AI assistant. Give the group a short name and a description that set it apart from the contrastive examples, which are similar statements from other groups.

Statements in the group:
{members}

Contrastive examples (NOT in the group):
{contrast}

Write:
- description: two sentences in the past tense that say what the users in this group asked for and what distinguishes them from the contrastive examples. Be specific; leave out any names or personal data.
- name: an imperative sentence of at most 10 words that says what these users asked for.{taken}"""

PARENT_PROMPT = """You are naming a category that groups the following topics of user requests to an AI assistant:

{members}

Similar topics that belong to OTHER categories:
{contrast}

Write:
- description: two sentences in the past tense that say what the topics in this category have in common and how they differ from the other topics.
- name: at most 10 words, an imperative sentence that covers all the topics in this category, specific rather than generic.{taken}"""


def _bullet(texts: Sequence[str], limit: int = 280) -> str:
    lines = [f"- {t.strip()[:limit]}" for t in texts if t and t.strip()]
    return "\n".join(lines) if lines else "- (none)"


def nearest_outside(centroid: np.ndarray, embeddings: np.ndarray, members: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` rows of ``embeddings`` most similar to ``centroid`` that are not in ``members``.

    >>> e = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.8, 0.2]], dtype=np.float32)
    >>> nearest_outside(np.array([1, 0], dtype=np.float32), e, np.array([0]), 2).tolist()
    [1, 3]
    """
    if k <= 0 or len(embeddings) == 0:
        return np.array([], dtype=int)
    scores = embeddings @ centroid
    mask = np.ones(len(embeddings), dtype=bool)
    mask[np.asarray(members, dtype=int)] = False
    candidates = np.flatnonzero(mask)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return order[:k]


def normalise_name(name: str) -> str:
    """Case- and punctuation-insensitive form used to detect sibling name clashes."""
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def distinguishing_word(member_texts: Sequence[str], other_texts: Sequence[str]) -> str | None:
    """The word most over-represented in ``member_texts`` compared with ``other_texts`` (for unique names)."""
    tokenize = lambda texts: Counter(w for t in texts for w in set(re.findall(r"[a-zA-Z][a-zA-Z0-9_\-]{3,}", t.lower())))  # noqa: E731
    mine, other = tokenize(member_texts), tokenize(other_texts)
    total_mine, total_other = max(1, len(member_texts)), max(1, len(other_texts))
    stop = {"user", "users", "asked", "assistant", "help", "with", "that", "this", "their", "from", "about", "wanted", "request", "overall", "task"}
    scored = [(c / total_mine - other.get(w, 0) / total_other, w) for w, c in mine.items() if w not in stop]
    return max(scored)[1] if scored else None


def make_unique(names: list[str], member_texts: Sequence[Sequence[str]]) -> list[str]:
    """Make sibling names distinct (:func:`kiku.naming.deduplicate_names`, comparing names as
    :func:`normalise_name` does): each name of a colliding group gets a word that sets its members
    apart from the others' (``distinguishing_word``), then a number.

    >>> make_unique(["Log tables", "log tables!", "Sweeps"], [["pandas tables"], ["image tables"], ["sweep"]])
    ['Log tables (pandas)', 'log tables! (image)', 'Sweeps']
    """
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        groups.setdefault(normalise_name(name), []).append(index)
    alternatives: list[list[str]] = [[] for _ in names]
    for group in groups.values():
        if len(group) > 1:
            for index in group:
                others = [t for j, texts in enumerate(member_texts) if j != index for t in texts]
                word = distinguishing_word(member_texts[index], others)
                alternatives[index] = [word] if word else []
    return deduplicate_names(names, alternatives, key=normalise_name)


class ContrastiveNamer:
    """TopicNamer (see :class:`kiku.protocols.TopicNamer`) using Clio's contrastive prompt.

    ``sample_size``: at most this many member summaries per cluster (seeded sample);
    ``contrastive``: this many nearest non-member summaries as counter-examples.
    A cluster whose call fails gets a fallback name from its most central request and is
    listed in ``client.usage.failures``.

    Example:
        >>> namer = ContrastiveNamer(LLMClient.from_spec("local"), sample_size=12)   # doctest: +SKIP
        >>> namer.name_topics(drafts, corpus)[0].name                                  # doctest: +SKIP
        'Log pandas DataFrames as W&B Tables'
    """

    stage = "name"

    def __init__(self, client: LLMClient, sample_size: int = 12, contrastive: int = 8, seed: int = 0) -> None:
        self.client = client
        self.sample_size = sample_size
        self.contrastive = contrastive
        self.seed = seed
        self.failed_ids: list[str] = []
        self.name = f"llm-contrastive:{client.backend.provider}/{client.backend.model}:{sample_size}:{contrastive}"

    def fingerprint(self) -> str:
        from kiku.llm.facets import _params_hash

        return "llm-contrastive-v1:" + _params_hash(
            self.client.backend.provider, self.client.backend.model, self.client.params, self.client.redact,
            NAMING_PROMPT, PARENT_PROMPT, self.sample_size, self.contrastive, self.seed,
        )

    @staticmethod
    def _texts(corpus: Corpus) -> list[str]:
        if corpus.summaries and len(corpus.summaries) == len(corpus.texts):
            return [s or t for s, t in zip(corpus.summaries, corpus.texts)]
        return list(corpus.texts)

    def _sample(self, draft: TopicDraft, corpus: Corpus) -> list[int]:
        members = np.asarray(draft.member_index, dtype=int)
        if len(members) <= self.sample_size:
            return members.tolist()
        rng = np.random.default_rng(self.seed + int.from_bytes(draft.key.encode()[:4].ljust(4, b"\0"), "little"))
        return sorted(rng.choice(members, size=self.sample_size, replace=False).tolist())

    def messages_for(self, draft: TopicDraft, corpus: Corpus, taken: Sequence[str] = ()) -> list[dict[str, str]]:
        """The prompt for one draft: member sample (or child topics) plus nearest outsiders."""
        texts = self._texts(corpus)
        taken_text = ""
        if taken:
            taken_text = "\n\nThese names are already used by other groups; choose a different one: " + "; ".join(taken)
        if draft.children:
            members = [f"{c.name}: {c.description}" for c in draft.children[: self.sample_size * 2]]
            contrast_idx = nearest_outside(draft.centroid, corpus.embeddings, draft.member_index, self.contrastive)
            contrast = _dedupe([texts[i] for i in contrast_idx])
            return [{"role": "user", "content": PARENT_PROMPT.format(members=_bullet(members), contrast=_bullet(contrast), taken=taken_text)}]
        sample = [texts[i] for i in self._sample(draft, corpus)]
        contrast_idx = nearest_outside(draft.centroid, corpus.embeddings, draft.member_index, self.contrastive * 2)
        contrast = [t for t in _dedupe([texts[i] for i in contrast_idx]) if t not in set(sample)][: self.contrastive]
        return [{"role": "user", "content": NAMING_PROMPT.format(members=_bullet(_dedupe(sample)), contrast=_bullet(contrast), taken=taken_text)}]

    def stage_report(self) -> StageReport:
        """Failed naming calls (the ``kiku.stages`` hook)."""
        return failure_report(self.failed_ids)

    def name_topics(self, drafts: Sequence[TopicDraft], corpus: Corpus) -> list[TopicName]:
        """One :class:`TopicName` per draft, same order; sibling names are unique."""
        return run_sync(self.aname_topics(drafts, corpus))

    async def aname_topics(self, drafts: Sequence[TopicDraft], corpus: Corpus) -> list[TopicName]:
        texts = self._texts(corpus)
        answers = await self.client.map(list(drafts), lambda d: self.client.complete(self.messages_for(d, corpus), ClusterNaming, self.stage))
        names: list[TopicName] = []
        self.failed_ids = []
        for draft, answer in zip(drafts, answers):
            central = central_request(draft, corpus)
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                self.client.record_failure(self.stage, draft.key, answer)
                self.failed_ids.append(draft.key)
                fallback = " ".join((central or "Unnamed topic").split()[:MAX_NAME_WORDS])
                names.append(TopicName(name=fallback, description="", representative_request=central))
            else:
                value: ClusterNaming = answer[0]
                names.append(TopicName(name=value.name.strip() or "Unnamed topic", description=value.description.strip(),
                                       representative_request=central))
        await self._resolve_clashes(drafts, corpus, names)
        unique = make_unique([n.name for n in names], [[texts[i] for i in d.member_index[:50]] for d in drafts])
        for topic, name in zip(names, unique):
            topic.name = name
        return names

    async def _resolve_clashes(self, drafts: Sequence[TopicDraft], corpus: Corpus, names: list[TopicName]) -> None:
        """Ask once more, listing taken names, for every draft whose name repeats an earlier sibling's."""
        seen: dict[str, int] = {}
        clashes: list[int] = []
        for index, topic in enumerate(names):
            key = normalise_name(topic.name)
            if key in seen:
                clashes.append(index)
            else:
                seen[key] = index
        for index in clashes:
            taken = [n.name for j, n in enumerate(names) if j != index]
            try:
                value, _ = await self.client.complete(self.messages_for(drafts[index], corpus, taken), ClusterNaming, self.stage)
            except Exception:  # noqa: BLE001 - make_unique still guarantees distinct names
                continue
            if normalise_name(value.name) not in {normalise_name(t) for t in taken}:
                names[index].name, names[index].description = value.name.strip(), value.description.strip()


def _dedupe(texts: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for text in texts:
        key = text.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    return out
