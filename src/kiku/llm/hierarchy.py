"""Clio's LLM-built topic hierarchy.

Level by level, from the base clusters up to about ``top_size`` top topics:

1. embed each cluster's "name: description" and group the clusters into neighbourhoods
   (seeded k-means, about ``neighbourhood_size`` clusters each);
2. per neighbourhood, ask for candidate parent names, showing the neighbourhood's clusters and
   the nearest clusters outside it (so names are not too narrow); a candidate that copies a
   topic's name or lists several topics is dropped, and when none is left the model is asked
   once more;
3. de-duplicate the candidates across all neighbourhoods (normalised text, then the most
   similar pairs by embedding) down to the level's target size;
4. assign every child to one candidate, with the candidate list shuffled per child (seeded)
   to avoid position bias; an answer that matches no candidate is retried once, then the
   child goes to the nearest candidate by embedding, so a bad answer never stops the run;
   when fewer than half the level's target survive (a small model copied the topics), the
   children are grouped by embedding (seeded k-means) instead and step 6 names the groups;
5. no parent keeps a single child (the child moves to the nearest other parent);
6. rename every parent from the children it actually got; a name that repeats one child's name
   or lists several is sent back once with the reason, then the assigned candidate is used.

Level sizes follow a geometric ratio from the number of base clusters to ``top_size``.
"""

from __future__ import annotations

import difflib
import math
import random
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field, create_model

from kiku.aio import run_sync
from kiku.hierarchy import level_sizes
from kiku.llm.client import LLMClient
from kiku.llm.facets import ShortText, failure_report
from kiku.llm.naming import ClusterNaming, make_unique, nearest_outside, normalise_name
from kiku.protocols import Corpus, Embedder
from kiku.records import Cluster
from kiku.stages import StageReport
from kiku.vectors import l2_normalise


class ParentCandidates(BaseModel):
    """Candidate parent names proposed for one neighbourhood."""

    names: Annotated[list[ShortText(100)], Field(min_length=1, max_length=12)]  # type: ignore[valid-type]


CANDIDATES_PROMPT = """You are organising topics of user requests to an AI assistant into broader categories.

Topics to group:
{members}

Nearby topics from elsewhere (for context; they may or may not fit your categories):
{outsiders}

Propose at most {count} category names that each could contain several of the topics to group. Each name: at most 10 words, an imperative sentence, as specific as possible while still covering several topics, distinct from the others. Leave out any names of people or personal data."""

ASSIGN_PROMPT = """Choose the category that best fits this topic of user requests.

Topic: {name}
Description: {description}

Categories:
{candidates}

Answer with the category name exactly as written in the list."""

RENAME_PROMPT = """These topics of user requests to an AI assistant were grouped into one category:

{members}

Topics in OTHER categories nearby:
{outsiders}

Write:
- description: two sentences in the past tense saying what the topics in this category have in common and how they differ from the other categories.
- name: at most 10 words, an imperative sentence that covers all the topics in this category, specific rather than generic."""


COPIED_TOPICS_FEEDBACK = ("Those names copy the topics. Propose broader category names, each covering several "
                          "of the topics, none equal to a topic.")
NOT_A_CATEGORY_FEEDBACK = ("Your previous answer was not one of the categories. "
                           "Answer with one category name copied exactly from the list.")


def dedupe_candidates(names: Sequence[str], embeddings: np.ndarray, target: int, similar: float = 0.92) -> list[int]:
    """Indices of the candidate names to keep: exact (normalised) duplicates removed, then the most
    similar pair merged (keeping the earlier name) until at most ``target`` remain and no two
    kept names have cosine similarity above ``similar``.

    >>> e = np.array([[1, 0], [1, 0], [0.99, 0.14], [0, 1]], dtype=np.float32)
    >>> dedupe_candidates(["Log data", "log data!", "Log datasets", "Tune sweeps"], e, 5)
    [0, 3]
    """
    keep: list[int] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        key = normalise_name(name)
        if key and key not in seen:
            seen.add(key)
            keep.append(index)
    if len(keep) <= 1:
        return keep
    vectors = embeddings[keep]
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    alive = list(range(len(keep)))
    while len(alive) > 1:
        sub = sims[np.ix_(alive, alive)]
        flat = int(np.argmax(sub))
        i, j = divmod(flat, len(alive))
        if len(alive) <= max(1, target) and sub[i, j] <= similar:
            break
        alive.remove(alive[max(i, j)])  # drop the later of the most similar pair
    return [keep[a] for a in alive]


def match_candidate(answer: str, candidates: Sequence[str]) -> int | None:
    """Index of the candidate an answer names (exact, normalised, close spelling, or unique containment).

    >>> match_candidate("debug sweeps.", ["Log tables", "Debug sweeps"])
    1
    >>> match_candidate("Something else", ["Log tables", "Debug sweeps"]) is None
    True
    """
    if not answer:
        return None
    for index, candidate in enumerate(candidates):
        if answer.strip() == candidate:
            return index
    norm = normalise_name(answer)
    normals = [normalise_name(c) for c in candidates]
    if norm in normals:
        return normals.index(norm)
    close = difflib.get_close_matches(norm, normals, n=1, cutoff=0.85)
    if close:
        return normals.index(close[0])
    containing = [i for i, c in enumerate(normals) if c and (c in norm or (len(norm) > 8 and norm in c))]
    return containing[0] if len(containing) == 1 else None


def parent_name_problem(name: str, child_names: Sequence[str]) -> str | None:
    """Why ``name`` cannot name a parent of ``child_names``, or None when it can.

    A parent named like one of its children, or named by listing several of them, does not say
    what the children have in common (small models do both).

    >>> children = ["Log images", "Log tables", "Resume runs"]
    >>> parent_name_problem("Log media and tables", children) is None
    True
    >>> parent_name_problem("log images.", children)
    "repeats one topic's name"
    >>> parent_name_problem("Log images, Log tables and more", children)
    'lists the topic names'
    >>> parent_name_problem("", children)
    'is empty'
    """
    norm = normalise_name(name)
    if not norm:
        return "is empty"
    names = [normalise_name(c) for c in child_names]
    if norm in names:
        return "repeats one topic's name"
    if len(names) > 1 and sum(1 for c in names if c and f" {c} " in f" {norm} ") >= 2:
        return "lists the topic names"
    return None


def min_candidates(target: int, n_children: int) -> int:
    """Fewest distinct candidate parents a level needs before children are assigned to them.

    With fewer, most children would share one or two parents and the tree would collapse.

    >>> min_candidates(8, 40), min_candidates(3, 9), min_candidates(2, 3)
    (4, 2, 2)
    """
    return max(2, min(math.ceil(target / 2), n_children - 1))


def fix_single_children(assignment: list[int], candidate_vectors: np.ndarray) -> list[int]:
    """Move the lone child of any parent to the nearest other used parent (by candidate embedding).

    ``assignment[i]`` is the candidate index of child ``i``. Returns a new assignment in which no
    used candidate has exactly one child (unless only one parent is used at all).

    >>> v = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    >>> fix_single_children([0, 0, 1, 2, 2], v)
    [0, 0, 0, 2, 2]
    """
    result = list(assignment)
    while True:
        counts: dict[int, int] = {}
        for parent in result:
            counts[parent] = counts.get(parent, 0) + 1
        singles = sorted(p for p, c in counts.items() if c == 1)
        if not singles or len(counts) <= 1:
            return result
        lone = singles[0]
        others = [p for p in counts if p != lone]
        target = max(others, key=lambda p: (float(candidate_vectors[p] @ candidate_vectors[lone]), -p))
        result = [target if p == lone else p for p in result]


def _unit(matrix: np.ndarray) -> np.ndarray:
    return l2_normalise(np.asarray(matrix, dtype=np.float32))


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines) if lines else "- (none)"


def _topic_line(cluster: Cluster) -> str:
    return f"{cluster.name}: {cluster.description}".strip().rstrip(":")[:300]


class ClioHierarchy:
    """HierarchyBuilder (see :class:`kiku.protocols.HierarchyBuilder`) following Clio.

    ``top_size``: about this many top-level topics; ``branching``: children per parent that
    sets how many levels there are; ``neighbourhood_size``: clusters per neighbourhood;
    ``outsiders``: nearby clusters from other neighbourhoods shown when proposing names;
    ``embedder``: embeds names and descriptions (default kiku's MiniLM embedder).

    Example:
        >>> builder = ClioHierarchy(LLMClient.from_spec("local"), top_size=6)   # doctest: +SKIP
        >>> tree = builder.build(base_clusters, corpus)                          # doctest: +SKIP
    """

    stage = "hierarchy"

    def __init__(self, client: LLMClient, top_size: int = 8, branching: float = 6.0, neighbourhood_size: int = 40,
                 outsiders: int = 5, embedder: Embedder | None = None, seed: int = 0,
                 levels: int | None = None) -> None:
        self.client = client
        self.top_size = top_size
        self.levels = levels
        self.branching = branching
        self.neighbourhood_size = neighbourhood_size
        self.outsiders = outsiders
        self._embedder = embedder
        self.seed = seed
        self.fallbacks = 0  # children placed by embedding after unmatchable answers, levels grouped by embedding
        self.failed_ids: list[str] = []  # proposals/renames that fell back after failed calls
        self.embedding_grouped_levels: list[int] = []  # levels grouped by embedding for want of usable categories
        self.name = f"llm-clio-hierarchy:{client.backend.provider}/{client.backend.model}:{top_size}:{branching}:{neighbourhood_size}"

    def fingerprint(self) -> str:
        from kiku.llm.facets import _params_hash

        return "llm-clio-hierarchy-v2:" + _params_hash(
            self.client.backend.provider, self.client.backend.model, self.client.params, self.client.redact,
            CANDIDATES_PROMPT, ASSIGN_PROMPT, RENAME_PROMPT, self.top_size, self.branching, self.neighbourhood_size,
            self.outsiders, self.seed, getattr(self._embedder, "name", "minilm"),
            *(() if self.levels is None else (("levels", self.levels),)),
        )

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from kiku.embed import MiniLMEmbedder

            self._embedder = MiniLMEmbedder()
        return self._embedder

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(self.embedder.embed(list(texts)))

    def stage_report(self) -> StageReport:
        """Failed calls and levels grouped by embedding (the ``kiku.stages`` hook)."""
        report = failure_report(self.failed_ids)
        if self.embedding_grouped_levels:
            report.details["embedding_grouped_levels"] = list(self.embedding_grouped_levels)
            report.warnings.append(
                "the LLM proposed too few usable parent topics for level(s) "
                f"{', '.join(map(str, self.embedding_grouped_levels))}; those levels were grouped by embedding "
                "and named by the LLM (a larger model usually avoids this)")
            report.show = True
        return report

    def build(self, base: Sequence[Cluster], corpus: Corpus | None = None) -> list[Cluster]:
        """Base clusters (with ``parent_id`` set) followed by every parent level."""
        return run_sync(self.abuild(base, corpus))

    async def abuild(self, base: Sequence[Cluster], corpus: Corpus | None = None) -> list[Cluster]:
        base = [c.model_copy(deep=True) for c in base]
        self.failed_ids, self.fallbacks, self.embedding_grouped_levels = [], 0, []
        topics = [c for c in base if not c.is_noise]
        out: list[Cluster] = list(base)
        children = topics
        for level, target in enumerate(level_sizes(len(topics), levels=self.levels, max_top=self.top_size, branching=self.branching, min_ratio=1.0), start=1):
            if len(children) <= target or len(children) < 3:
                break
            parents = await self._build_level(children, target, level)
            if len(parents) >= len(children):
                for child in children:
                    child.parent_id = None
                break
            out.extend(parents)
            children = parents
        return out

    async def _build_level(self, children: list[Cluster], target: int, level: int) -> list[Cluster]:
        vectors = self._embed([_topic_line(c) for c in children])
        hoods = self._neighbourhoods(vectors)
        candidates = await self._propose(children, vectors, hoods, target)
        cand_vectors = self._embed(candidates)
        kept = dedupe_candidates(candidates, cand_vectors, target)
        candidates = [candidates[i] for i in kept]
        cand_vectors = cand_vectors[kept]
        if len(candidates) >= min_candidates(target, len(children)):
            assignment = await self._assign(children, vectors, candidates, cand_vectors, level)
        else:
            # Too few usable categories (a small model copied the topics): group the children by
            # embedding instead, so the tree keeps its shape, and let the renaming name the groups.
            self.fallbacks += 1
            self.embedding_grouped_levels.append(level)
            assignment, candidates, cand_vectors = self._embedding_groups(children, vectors, target)
        assignment = fix_single_children(assignment, cand_vectors)
        used = sorted(set(assignment), key=lambda p: assignment.index(p))
        groups = [[children[i] for i, p in enumerate(assignment) if p == parent] for parent in used]
        names = await self._rename(groups, [candidates[p] for p in used], vectors, children, assignment, used)
        unique = make_unique([n for n, _ in names], [[_topic_line(c) for c in group] for group in groups])
        parents: list[Cluster] = []
        for index, (group, (_, description), name) in enumerate(zip(groups, names, unique)):
            parent_id = f"L{level}-{index:03d}"
            members = [m for child in group for m in child.member_ids]
            largest = max(group, key=lambda c: c.size)
            keyphrases = list(dict.fromkeys(k for child in sorted(group, key=lambda c: -c.size) for k in child.keyphrases))[:8]
            for child in group:
                child.parent_id = parent_id
            parents.append(Cluster(id=parent_id, level=level, name=name, description=description, member_ids=members,
                                   keyphrases=keyphrases, representative_request=largest.representative_request))
        return parents

    async def _ask(self, prompt: str, schema: type[BaseModel], failure_key: str,
                   problem: Callable[[Any], str | None]) -> tuple[Any | None, bool]:
        """Ask once; when ``problem(answer)`` returns feedback, ask once more with it.

        Returns (the last answer, or None when the first call failed; whether it passed the
        check). A failed call is recorded under ``failure_key`` and ends the exchange.
        """
        messages = [{"role": "user", "content": prompt}]
        answer = None
        for _ in range(2):
            try:
                answer, _usage = await self.client.complete(messages, schema, self.stage)
            except Exception as exc:  # noqa: BLE001 - the caller falls back
                self.client.record_failure(self.stage, failure_key, exc)
                self.failed_ids.append(failure_key)
                return answer, False
            feedback = problem(answer)
            if feedback is None:
                return answer, True
            messages = [*messages, {"role": "user", "content": feedback}]
        return answer, False

    def _embedding_groups(self, children: list[Cluster], vectors: np.ndarray, target: int) -> tuple[list[int], list[str], np.ndarray]:
        """(assignment, stand-in names, group centroids): seeded k-means of the children into ``target`` groups."""
        from sklearn.cluster import KMeans

        count = max(2, min(target, len(children) - 1))
        labels = KMeans(n_clusters=count, random_state=self.seed, n_init=4).fit_predict(vectors).tolist()
        used = sorted(set(labels))
        assignment = [used.index(label) for label in labels]
        names = [max((c for c, a in zip(children, assignment) if a == g), key=lambda c: c.size).name for g in range(len(used))]
        centroids = _unit(np.stack([vectors[[i for i, a in enumerate(assignment) if a == g]].mean(axis=0) for g in range(len(used))]))
        return assignment, names, centroids

    def _neighbourhoods(self, vectors: np.ndarray) -> list[np.ndarray]:
        count = max(1, round(len(vectors) / self.neighbourhood_size))
        if count == 1:
            return [np.arange(len(vectors))]
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=count, random_state=self.seed, n_init=4).fit_predict(vectors)
        return [np.flatnonzero(labels == label) for label in sorted(set(labels.tolist()))]

    async def _propose(self, children: list[Cluster], vectors: np.ndarray, hoods: list[np.ndarray], target: int) -> list[str]:
        child_names = [c.name for c in children]

        async def one(hood: np.ndarray) -> list[str]:
            count = max(1, min(12, math.ceil(target * len(hood) / len(children) * 1.5)))
            centroid = _unit(vectors[hood].mean(axis=0, keepdims=True))[0]
            outside = nearest_outside(centroid, vectors, hood, self.outsiders)
            prompt = CANDIDATES_PROMPT.format(members=_bullets([_topic_line(children[i]) for i in hood]),
                                              outsiders=_bullets([_topic_line(children[i]) for i in outside]), count=count)
            def usable(answer: ParentCandidates) -> list[str]:
                # A category that copies a topic's name (or lists several) is not a parent: drop it.
                names = [n.strip() for n in answer.names if n.strip()]
                return [n for n in names if parent_name_problem(n, child_names) is None][:count]

            answer, ok = await self._ask(
                prompt, ParentCandidates, f"candidates:{','.join(children[i].id for i in hood[:3])}",
                lambda a: None if usable(a) else COPIED_TOPICS_FEEDBACK,
            )
            # no usable category here: with too few overall the level is grouped by embedding
            return usable(answer) if ok else []

        per_hood = await self.client.map(hoods, one)
        return [name for names in per_hood for name in names]

    async def _assign(self, children: list[Cluster], vectors: np.ndarray, candidates: list[str],
                      cand_vectors: np.ndarray, level: int) -> list[int]:
        async def one(index: int) -> int:
            child = children[index]
            order = list(range(len(candidates)))
            random.Random(self.seed * 1_000_003 + level * 10_007 + index).shuffle(order)
            shuffled = [candidates[i] for i in order]
            schema = create_model(
                "CategoryChoice",
                choice=(str, Field(max_length=120, json_schema_extra={"enum": shuffled})),
            )
            prompt = ASSIGN_PROMPT.format(name=child.name, description=child.description or "(none)",
                                          candidates=_bullets(shuffled))
            answer, ok = await self._ask(
                prompt, schema, f"assign:{child.id}",
                lambda a: None if match_candidate(getattr(a, "choice", ""), shuffled) is not None else NOT_A_CATEGORY_FEEDBACK,
            )
            if ok:
                return order[match_candidate(answer.choice, shuffled)]
            self.fallbacks += 1
            return int(np.argmax(cand_vectors @ vectors[index]))

        results = await self.client.map(list(range(len(children))), one)
        return [r if isinstance(r, int) else int(np.argmax(cand_vectors @ vectors[i])) for i, r in enumerate(results)]

    async def _rename(self, groups: list[list[Cluster]], fallback_names: list[str], vectors: np.ndarray,
                      children: list[Cluster], assignment: list[int], used: list[int]) -> list[tuple[str, str]]:
        index_of = {id(c): i for i, c in enumerate(children)}
        # a parent must not be named like any topic of the level below, in its group or elsewhere
        child_names = [c.name for c in children]

        async def one(position: int) -> tuple[str, str]:
            group = groups[position]
            members = np.array([index_of[id(c)] for c in group])
            centroid = _unit(vectors[members].mean(axis=0, keepdims=True))[0]
            outside = nearest_outside(centroid, vectors, members, self.outsiders)
            prompt = RENAME_PROMPT.format(members=_bullets([_topic_line(c) for c in group]),
                                          outsiders=_bullets([_topic_line(children[i]) for i in outside]))
            def feedback(answer: ClusterNaming) -> str | None:
                problem = parent_name_problem(answer.name, child_names)
                return None if problem is None else (
                    f'The name "{answer.name.strip()}" {problem}. Write a new name (at most 10 words) '
                    "for what all of these topics have in common.")

            answer, ok = await self._ask(prompt, ClusterNaming, f"rename:{fallback_names[position]}", feedback)
            name = answer.name.strip() if answer else ""
            description = answer.description.strip() if answer else ""
            if ok:
                return (name, description)
            # The model kept echoing a child (small models do) or the call failed: the candidate
            # the children were assigned to is the next best name, unless it has the same problem.
            fallback = fallback_names[position]
            if not name or parent_name_problem(fallback, child_names) is None:
                name = fallback
            return (name, description)

        return list(await self.client.map(list(range(len(groups))), one))
