"""Cluster-level LLM naming (``--llm-scope clusters``): one call per cluster, not per conversation.

Conversations are described offline; the LLM only names and describes each cluster. For a base
cluster it sees a small sample of the members' opening requests (the most central ones plus a
spread: farthest-point picks over the members' embeddings) and the nearest requests *outside*
the cluster (contrastive near misses). For a parent it sees its children's names and
descriptions and the nearest outsiders. The offline namer runs first (it is cheap): its name is
shown to the model as a hint of the group's keywords and is the fallback.

Every answer is validated (:func:`label_problem`): a name that is cut off (ends on "in", "with",
"and", ...; an open bracket; more than :data:`MAX_NAME_WORDS` words), a name that repeats a
child's or a sibling's name, or a boilerplate description ("The user's overall request for the
assistant is to ...") is sent back once with the reason; a second bad answer, or a failed call,
falls back to the offline name. How often that happened is in the stage report
(``validation`` in ``manifest["stages"]["name"]`` and ``["hierarchy"]``).

Example:
    >>> namer = ClusterNamer(LLMClient.from_spec("local"), KeyphraseNamer(MiniLMEmbedder()))  # doctest: +SKIP
    >>> namer.name_topics(drafts, corpus)[0].name                                               # doctest: +SKIP
    'Log pandas DataFrames as W&B Tables'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from kiku.aio import run_sync
from kiku.hierarchy import AgglomerativeHierarchy
from kiku.llm.client import LLMClient
from kiku.llm.facets import _params_hash, failure_report
from kiku.llm.naming import nearest_outside, normalise_name
from kiku.protocols import Corpus, TopicDraft, TopicName
from kiku.stages import StageReport

MAX_NAME_WORDS = 10

#: Words a finished name does not end on (a name cut mid-phrase: "... with Weights & Biases in").
DANGLING = frozenset(
    "a an the and or but of in on at to for with from by into onto about as via using vs than that which "
    "your their its my our is are was be how what when where why".split()
)

#: A chunk repeated four times or more in a row (a small model stuck in a loop: "Crucil-Crucil-Crucil-...").
LOOP = re.compile(r"(.{2,}?)\1{3,}")

#: Openings of descriptions that say nothing about the group (small models copy the prompt).
BOILERPLATE = re.compile(
    r"^\s*(the user'?s overall request|the task is to|this (group|category|cluster|topic) (is|contains|includes) "
    r"(about )?(user )?(requests|questions|statements)\b|users? asked (the assistant|an ai assistant) (for help|to help)\s*\.?\s*$"
    r"|two sentences|one sentence|description\s*:)",
    re.IGNORECASE,
)


class TopicLabel(BaseModel):
    """The model's answer for one cluster: a short name first, then one descriptive sentence."""

    name: str = Field(max_length=80, description="3-8 words saying what these users wanted, specific")
    description: str = Field(max_length=200, description="one sentence: what these users asked that the others did not")


BASE_PROMPT = """Questions in one group:
{members}

Similar questions from OTHER groups:
{contrast}

Keywords: {hint}

Give the group a specific name (3-8 words: what these users want) and one sentence on what sets it apart from the other groups. JSON: {{"name": "...", "description": "..."}}{feedback}"""

PARENT_PROMPT = """Topics in one category (one line each):
{members}

Nearby topics in OTHER categories:
{contrast}

Name the category in 2-6 words covering all its topics (broader than one topic, not a list of them) and describe it in one sentence. JSON: {{"name": "...", "description": "..."}}{feedback}"""


def label_problem(name: str, description: str, taken: Sequence[str] = ()) -> str | None:
    """Why an LLM label cannot be used, or None when it can.

    ``taken``: names the label must not repeat (the children's names, the siblings' names).

    >>> label_problem("Log images and tables", "Users logged media to their runs.") is None
    True
    >>> label_problem("Integrate Weights & Biases with OpenAI in", "Users asked about OpenAI.")
    'is cut off (ends on "in")'
    >>> label_problem("Log images", "The user's overall request for the assistant is to log images.")
    'has a boilerplate description'
    >>> label_problem("Log images", "Users logged images.", taken=["log images!"])
    'repeats the name "log images!"'
    >>> label_problem("System-8-1-1-1-1-1-1-1-1", "Users asked about systems.")
    'repeats itself'
    """
    words = name.strip().split()
    if not words:
        return "is empty"
    if LOOP.search(name) or max(len(w) for w in words) > 30:
        return "repeats itself"
    if len(words) > MAX_NAME_WORDS:
        return f"is longer than {MAX_NAME_WORDS} words"
    last = re.sub(r"[^a-z]", "", words[-1].lower())
    if last in DANGLING or name.count("(") != name.count(")") or name.count('"') % 2:
        return f'is cut off (ends on "{words[-1]}")'
    key = normalise_name(name)
    for other in taken:
        if key and key == normalise_name(other):
            return f'repeats the name "{other}"'
    text = description.strip()
    if len(text.split()) < 4 or BOILERPLATE.search(text) or normalise_name(text) == key:
        return "has a boilerplate description"
    return None


def central_and_spread(embeddings: np.ndarray, members: np.ndarray, centroid: np.ndarray, size: int,
                       central: int | None = None) -> list[int]:
    """``size`` member indices: the ``central`` (default half) closest to the centroid, then
    farthest-point picks over the members' embeddings, so the sample shows the cluster's spread.

    >>> e = np.array([[1, 0], [0.99, 0.14], [0.9, 0.44], [0.6, 0.8]], dtype=np.float32)
    >>> central_and_spread(e, np.arange(4), np.array([1, 0], dtype=np.float32), 2)
    [0, 3]
    """
    members = np.asarray(members, dtype=np.int64)
    if len(members) <= size:
        return members.tolist()
    vectors = embeddings[members]
    order = np.argsort(-(vectors @ centroid), kind="stable")
    take = max(1, min(size, size // 2 if central is None else central))
    chosen = list(order[:take])
    nearest = np.max(vectors @ vectors[chosen].T, axis=1)
    while len(chosen) < size:
        nearest[chosen] = np.inf
        pick = int(np.argmin(nearest))
        chosen.append(pick)
        nearest = np.maximum(nearest, vectors @ vectors[pick])
    return [int(members[i]) for i in chosen]


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _bullets(texts: Sequence[str], limit: int) -> str:
    seen: set[str] = set()
    lines = []
    for text in texts:
        clipped = _clip(text, limit)
        if clipped and clipped.lower() not in seen:
            seen.add(clipped.lower())
            lines.append(f"- {clipped}")
    return "\n".join(lines) or "- (none)"


class ClusterNamer:
    """TopicNamer (see :class:`kiku.protocols.TopicNamer`) that asks the LLM once per cluster.

    ``offline``: the offline namer (``kiku.naming.KeyphraseNamer``) whose names are the hint and
    the fallback; ``sample_size``: member requests shown (half most central, half spread);
    ``contrastive``: nearest outside requests shown; ``max_chars``: each request is cut to this.

    After ``name_topics``, :attr:`validation` counts the answers: ``accepted``, ``retried``,
    ``fallback`` (offline name kept) and the reasons; :meth:`stage_report` reports them.
    """

    def __init__(self, client: LLMClient, offline: Any, sample_size: int = 6, contrastive: int = 4,
                 max_chars: int = 120, seed: int = 0, stage: str = "name") -> None:
        self.client = client
        self.stage = stage
        self.offline = offline
        self.sample_size = sample_size
        self.contrastive = contrastive
        self.max_chars = max_chars
        self.seed = seed
        self.failed_ids: list[str] = []
        self.validation: dict[str, Any] = self._empty_validation()
        self.name = f"llm-clusters:{client.backend.provider}/{client.backend.model}:{sample_size}:{contrastive}"

    @staticmethod
    def _empty_validation() -> dict[str, Any]:
        return {"labels": 0, "accepted": 0, "retried": 0, "fallback": 0, "reasons": {}}

    def fingerprint(self) -> str:
        """What shapes the names: model, generation parameters, prompts, sample sizes, the offline namer."""
        from kiku.pipeline import component_fingerprint

        return "llm-clusters-v1:" + _params_hash(
            self.client.backend.provider, self.client.backend.model, self.client.params, self.client.redact,
            BASE_PROMPT, PARENT_PROMPT, self.sample_size, self.contrastive, self.max_chars, self.seed,
            component_fingerprint(self.offline),
        )

    def reset(self) -> None:
        """Forget the counts of earlier calls (a stage report covers one stage)."""
        self.failed_ids = []
        self.validation = self._empty_validation()

    def stage_report(self) -> StageReport:
        """Failed calls (stage kept incomplete, retried next run) and validation counts (the ``kiku.stages`` hook)."""
        report = failure_report(self.failed_ids)
        report.details["validation"] = dict(self.validation)
        fallback = self.validation["fallback"]
        if fallback:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.validation["reasons"].items()))
            report.warnings.append(
                f"{fallback} of {self.validation['labels']} LLM label(s) were unusable after one retry and kept the "
                f"offline name ({reasons})")
        return report

    def _requests(self, corpus: Corpus) -> list[str]:
        return [r or t for r, t in zip(corpus.requests, corpus.texts)] if corpus.requests else list(corpus.texts)

    def messages_for(self, draft: TopicDraft, corpus: Corpus, hint: TopicName | None = None,
                     feedback: str = "") -> list[dict[str, str]]:
        """The prompt for one draft (base: sampled requests; parent: its children), with nearest outsiders."""
        texts = self._requests(corpus)
        extra = f"\n\n{feedback}" if feedback else ""
        if draft.children:
            # the children's descriptions, not their names: small models copy the first name they see
            members = [c.description or c.name for c in draft.children[:15]]
            outside = nearest_outside(draft.centroid, corpus.embeddings, draft.member_index, self.contrastive)
            prompt = PARENT_PROMPT.format(members=_bullets(members, 2 * self.max_chars),
                                          contrast=_bullets([texts[i] for i in outside], self.max_chars), feedback=extra)
            return [{"role": "user", "content": prompt}]
        sample = central_and_spread(corpus.embeddings, draft.member_index, draft.centroid, self.sample_size)
        outside = nearest_outside(draft.centroid, corpus.embeddings, draft.member_index, self.contrastive)
        keywords = ", ".join(dict.fromkeys([hint.name, *hint.keyphrases])) if hint else ""
        prompt = BASE_PROMPT.format(members=_bullets([texts[i] for i in sample], self.max_chars),
                                    contrast=_bullets([texts[i] for i in outside], self.max_chars),
                                    hint=_clip(keywords or "(none)", 120), feedback=extra)
        return [{"role": "user", "content": prompt}]

    def name_topics(self, drafts: Sequence[TopicDraft], corpus: Corpus) -> list[TopicName]:
        """One :class:`TopicName` per draft, same order; names differ from children's and from each other."""
        return run_sync(self.aname_topics(drafts, corpus))

    async def aname_topics(self, drafts: Sequence[TopicDraft], corpus: Corpus) -> list[TopicName]:
        offline = list(self.offline.name_topics(drafts, corpus))

        async def first(index: int) -> TopicLabel:
            answer, _ = await self.client.complete(self.messages_for(drafts[index], corpus, offline[index]), TopicLabel, self.stage)
            return answer

        answers = await self.client.map(list(range(len(drafts))), first)
        labels: list[TopicLabel | None] = []
        for draft, answer in zip(drafts, answers):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                self.client.record_failure(self.stage, draft.key, answer)
                self.failed_ids.append(draft.key)
                labels.append(None)
            else:
                labels.append(answer)
        problems = self._problems(drafts, labels)
        retry = [i for i, p in enumerate(problems) if p is not None and labels[i] is not None]

        async def again(index: int) -> TopicLabel:
            label = labels[index]
            assert label is not None
            feedback = (f'Your answer {{"name": "{_clip(label.name, 80)}"}} {problems[index]}. '
                        f"Write a different, complete name{self._avoid(drafts, labels, index)}.")
            answer, _ = await self.client.complete(self.messages_for(drafts[index], corpus, offline[index], feedback),
                                                   TopicLabel, self.stage)
            return answer

        second = await self.client.map(retry, again)
        for index, answer in zip(retry, second):
            labels[index] = answer if isinstance(answer, TopicLabel) else labels[index]
        final_problems = self._problems(drafts, labels)
        out: list[TopicName] = []
        counts = self.validation
        reasons: Counter[str] = Counter(counts["reasons"])
        for index, (label, hint) in enumerate(zip(labels, offline)):
            counts["labels"] += 1
            if index in retry:
                counts["retried"] += 1
                reasons[_reason_kind(problems[index] or "")] += 1
            if label is None or final_problems[index] is not None:
                counts["fallback"] += 1
                if label is None:
                    reasons["call failed"] += 1
                out.append(hint)
            else:
                counts["accepted"] += 1
                out.append(TopicName(name=label.name.strip().rstrip("."), description=label.description.strip(),
                                     keyphrases=list(hint.keyphrases), representative_request=hint.representative_request))
        counts["reasons"] = dict(reasons)
        return out

    @staticmethod
    def _avoid(drafts: Sequence[TopicDraft], labels: Sequence[TopicLabel | None], index: int) -> str:
        taken = [c.name for c in drafts[index].children] + [lab.name for j, lab in enumerate(labels) if lab and j != index]
        return "; not one of: " + "; ".join(_clip(t, 60) for t in taken[:20]) if taken else ""

    @staticmethod
    def _problems(drafts: Sequence[TopicDraft], labels: Sequence[TopicLabel | None]) -> list[str | None]:
        """The problem of each label (None: usable); of two siblings with one name, the later one is flagged."""
        problems: list[str | None] = []
        seen: list[str] = []
        for draft, label in zip(drafts, labels):
            if label is None:
                problems.append("call failed")
                continue
            taken = [c.name for c in draft.children] + seen
            problems.append(label_problem(label.name, label.description, taken))
            seen.append(label.name)
        return problems


def _reason_kind(problem: str) -> str:
    """A problem's kind for the counts: 'cut off', 'repeats a name', 'boilerplate description', ..."""
    for kind in ("cut off", "repeats itself", "repeats", "boilerplate", "longer", "empty", "call failed"):
        if kind in problem:
            return {"repeats": "repeats a name", "boilerplate": "boilerplate description", "longer": "too long"}.get(kind, kind)
    return problem


class ClusterNamedHierarchy(AgglomerativeHierarchy):
    """The offline hierarchy (spectral grouping by centroids and neighbour links) with parents named by a :class:`ClusterNamer`.

    One LLM call per parent (plus at most one retry); its stage report is the namer's for the build.
    """

    def __init__(self, namer: ClusterNamer, levels: int | None = None, max_top: int | None = None,
                 branching: float = 15.0, seed: int = 0) -> None:
        super().__init__(namer, levels=levels, max_top=max_top, branching=branching, seed=seed)

    @property
    def name(self) -> str:
        return f"agglomerative-llm:{self.namer.name}"

    def build(self, base: Sequence[Any], corpus: Corpus) -> list[Any]:
        self.namer.reset()
        return super().build(base, corpus)

    def stage_report(self) -> StageReport:
        """The parent namer's failed calls and validation counts."""
        report: StageReport = self.namer.stage_report()
        return report
