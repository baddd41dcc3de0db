"""Optional LLM privacy audit of cluster names and descriptions (Clio's last safeguard).

Each cluster's name and description is rated 1-5 for how much it could identify a person
(1 = nothing identifying, 5 = names or pinpoints a specific person or organisation).
Clusters rated at or above ``threshold`` are withheld: fold them with
:func:`kiku.privacy.apply_min_cluster_size` (``withhold_ids=``) so they appear as
"Other (below privacy threshold)" in every output.

Example:
    >>> scores = audit_clusters(client, clusters)                       # doctest: +SKIP
    >>> safe = apply_min_cluster_size(clusters, 1, withhold_ids=withheld(scores, 4))   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from kiku.aio import run_sync
from kiku.llm.client import LLMClient
from kiku.llm.facets import Score, ShortText
from kiku.records import Cluster

AUDIT_PROMPT = """Rate how much this description of a group of conversations could identify a specific person or organisation.

Name: {name}
Description: {description}

1 = nothing identifying (general topics, public technologies, common tasks)
2 = slightly specific but shared by many people
3 = narrow, could point to a small group
4 = likely identifies a specific person, company or private project
5 = names or pinpoints a specific person or organisation, or contains contact details

Answer with the score and a short reason (no personal data)."""


class PrivacyRating(BaseModel):
    score: Score("1 = not identifying ... 5 = identifies a specific person")  # type: ignore[valid-type]
    reason: ShortText(200)  # type: ignore[valid-type]


def audit_clusters(client: LLMClient, clusters: Sequence[Cluster], stage: str = "privacy") -> dict[str, int]:
    """Score every non-noise cluster 1-5; a cluster whose call fails scores 5 (withheld, fail closed)."""
    topics = [c for c in clusters if not c.is_noise]

    async def run() -> list[object]:
        return await client.map(topics, lambda c: client.complete(
            [{"role": "user", "content": AUDIT_PROMPT.format(name=c.name, description=c.description or "(none)")}],
            PrivacyRating, stage))

    scores: dict[str, int] = {}
    for cluster, answer in zip(topics, run_sync(run())):
        if isinstance(answer, BaseException):
            client.record_failure(stage, cluster.id, answer)
            scores[cluster.id] = 5
        else:
            scores[cluster.id] = answer[0].score  # type: ignore[index]
    return scores


def withheld(scores: dict[str, int], threshold: int = 4) -> set[str]:
    """Ids of clusters scored at or above ``threshold``."""
    return {cid for cid, score in scores.items() if score >= threshold}
