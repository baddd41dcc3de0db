"""Cluster-level LLM naming (``--llm-scope clusters``): sampling, validation, fallback, call counts.

The model is scripted here (pure logic); the offline namer and the embeddings are real (MiniLM).
The same namer against a real llama.cpp model is in test_llm_local.py.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from kiku.config import RunConfig, check_settings
from kiku.errors import KikuError
from kiku.llm import ClusterNamedHierarchy, ClusterNamer, LLMClient, ResponseCache, label_problem
from kiku.llm.cluster_naming import central_and_spread
from kiku.naming import KeyphraseNamer
from kiku.protocols import TopicDraft
from kiku.vectors import l2_normalise
from llm_fixtures import ScriptedBackend  # noqa: E402
from stage_corpus import THEMES, shared_embedder, theme_corpus  # noqa: E402


def drafts_of(corpus, labels) -> list[TopicDraft]:  # noqa: ANN001
    out = []
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        out.append(TopicDraft(key=f"L0-{label:03d}", member_index=members,
                              centroid=l2_normalise(corpus.embeddings[members].mean(axis=0))))
    return out


def namer_with(script, **options) -> tuple[ClusterNamer, ScriptedBackend]:  # noqa: ANN001
    backend = ScriptedBackend(script)
    client = LLMClient(backend=backend, cache=ResponseCache(":memory:"), backoff_base_s=0.001, max_attempts=1)
    return ClusterNamer(client, KeyphraseNamer(shared_embedder()), **options), backend


def theme_of(prompt: str) -> str:
    """The theme whose questions the prompt lists first (the scripted model 'reads' the members)."""
    first = prompt.split("\n- ", 1)[1].split("\n")[0]
    return next(theme for theme, texts in THEMES.items() if any(first.rstrip("…") in t for t in texts))


def test_label_problems_catch_cut_off_repeated_and_boilerplate_answers() -> None:
    good = "Users asked how to reset a forgotten password."
    assert label_problem("Reset a forgotten password", good) is None
    assert "cut off" in label_problem("Integrate Weights & Biases into OpenAI's Platform with", good)
    assert "cut off" in label_problem("Log runs (with images", good)
    assert "longer than" in label_problem("Log images tables charts runs sweeps reports artifacts models teams users", good)
    assert label_problem("System-8-1-1-1-1-1-1", good) == "repeats itself"
    assert label_problem("", good) == "is empty"
    assert label_problem("Reset passwords", "The user's overall request for the assistant is to reset it.") == \
        "has a boilerplate description"
    assert label_problem("Reset passwords", "Reset passwords") == "has a boilerplate description"
    assert label_problem("Reset passwords", good, taken=["reset passwords."]) == 'repeats the name "reset passwords."'


def test_member_sample_is_the_most_central_then_the_spread() -> None:
    corpus, labels = theme_corpus()
    members = np.flatnonzero(labels == 0)
    centroid = l2_normalise(corpus.embeddings[members].mean(axis=0))
    picks = central_and_spread(corpus.embeddings, members, centroid, 4)
    similarity = corpus.embeddings[members] @ centroid
    assert picks[:2] == members[np.argsort(-similarity)[:2]].tolist()  # half the sample: the most central
    assert len(set(picks)) == 4 and set(picks) <= set(members.tolist())
    # the spread picks are far from what was already chosen: the least similar to the first pick come in
    rest = [m for m in members.tolist() if m not in picks]
    chosen_sim = max(float(corpus.embeddings[picks[2]] @ corpus.embeddings[p]) for p in picks[:2])
    assert all(chosen_sim <= max(float(corpus.embeddings[r] @ corpus.embeddings[p]) for p in picks[:2]) + 1e-6 for r in rest)
    assert central_and_spread(corpus.embeddings, members[:3], centroid, 8) == members[:3].tolist()


def test_each_cluster_gets_one_call_with_members_and_outsiders_and_bad_answers_fall_back() -> None:
    corpus, labels = theme_corpus()
    drafts = drafts_of(corpus, labels)
    prompts: list[str] = []
    names = {"password": "Reset forgotten passwords", "refund": "Track and request refunds", "python": "Work with Python dictionaries",
             "recipe": "Bake banana bread", "weather": "Check weather forecasts"}

    def script(messages, schema, n):  # noqa: ANN001, ANN202
        prompt = messages[-1]["content"]
        prompts.append(prompt)
        theme = theme_of(prompt)
        retry = "Your answer" in prompt
        if theme == "password" and not retry:
            return {"name": "Reset passwords for accounts in", "description": "Users could not log in and reset passwords."}
        if theme == "refund":  # boilerplate twice: falls back to the offline name
            return {"name": "Refund requests", "description": "The user's overall request for the assistant is to refund."}
        if theme == "recipe" and not retry:  # repeats an earlier sibling's name
            return {"name": "Work with Python dictionaries", "description": "Users asked how to bake banana bread."}
        return {"name": names[theme], "description": f"Users asked about {theme} in several concrete ways."}

    namer, backend = namer_with(script, sample_size=4, contrastive=3)
    offline = KeyphraseNamer(shared_embedder()).name_topics(drafts, corpus)
    out = namer.name_topics(drafts, corpus)
    assert backend.calls == len(drafts) + 3  # one per cluster, one retry each for the three bad answers
    first = prompts[0]
    assert first.count("\n- ") == 4 + 3 + 0  # 4 members, 3 nearest outsiders
    assert "OTHER groups" in first and "Keywords: " in first
    assert [t.name for t in out] == ["Reset forgotten passwords", offline[1].name, "Work with Python dictionaries",
                                     "Bake banana bread", "Check weather forecasts"]
    assert "Your answer" in prompts[len(drafts)] and "is cut off" in prompts[len(drafts)]
    assert namer.validation["retried"] == 3 and namer.validation["fallback"] == 1 and namer.validation["accepted"] == 4
    assert namer.validation["reasons"] == {"cut off": 1, "boilerplate description": 1, "repeats a name": 1}
    report = namer.stage_report()
    assert report.details["validation"]["fallback"] == 1 and not report.incomplete
    assert "1 of 5 LLM label(s) were unusable after one retry" in report.warnings[0]


def test_a_failed_call_keeps_the_offline_name_and_leaves_the_stage_to_retry() -> None:
    corpus, labels = theme_corpus()
    drafts = drafts_of(corpus, labels)

    def script(messages, schema, n):  # noqa: ANN001, ANN202
        if theme_of(messages[-1]["content"]) == "weather":
            from llm_fixtures import retryable

            return retryable()
        return {"name": f"Topic number {n}", "description": "Users asked concrete questions on one theme."}

    namer, _ = namer_with(script)
    offline = KeyphraseNamer(shared_embedder()).name_topics(drafts, corpus)
    out = namer.name_topics(drafts, corpus)
    assert out[4].name == offline[4].name
    report = namer.stage_report()
    assert report.incomplete and report.details["failed_items"] == 1
    assert namer.validation["reasons"] == {"call failed": 1}


def test_parents_are_named_from_their_children_and_never_repeat_one(tmp_path: Path) -> None:
    corpus, labels = theme_corpus()
    base_namer, _ = namer_with(lambda m, s, n: {"name": f"Base topic {n}", "description": f"Users asked concrete thing number {n}."})
    from kiku.records import Cluster

    drafts = drafts_of(corpus, labels)
    base = [Cluster(id=d.key, level=0, name=t.name, description=t.description, member_ids=[corpus.ids[i] for i in d.member_index])
            for d, t in zip(drafts, base_namer.name_topics(drafts, corpus))]
    name_of = {c.description: c.name for c in base}
    parent_prompts: list[str] = []

    def parents(messages, schema, n):  # noqa: ANN001, ANN202
        prompt = messages[-1]["content"]
        parent_prompts.append(prompt)
        # the prompt shows the children's descriptions, never their names (small models copy names)
        assert not re.search(r"^- Base topic", prompt, re.MULTILINE)
        first = re.search(r"^- (Users asked concrete thing number \d+\.)", prompt, re.MULTILINE).group(1)
        child = name_of[first]
        if "Your answer" not in prompt:
            return {"name": child, "description": "Users asked about several related things."}  # echoes a child
        return {"name": f"Category over {child.split()[-1]}", "description": "Users asked about several related things."}

    parent_namer, backend = namer_with(parents)
    parent_namer.stage = "hierarchy"
    tree = ClusterNamedHierarchy(parent_namer, max_top=2, seed=0).build(base, corpus)
    top = [c for c in tree if c.level == 1]
    assert len(top) == 2 and all(c.name.startswith("Category over") for c in top)
    assert backend.calls == 4 and "Topics in one category" in parent_prompts[0]
    assert parent_namer.validation["retried"] == 2 and parent_namer.validation["reasons"] == {"repeats a name": 2}
    assert {c.parent_id for c in tree if c.level == 0} == {c.id for c in top}


def test_calls_grow_with_clusters_not_conversations(tmp_path: Path) -> None:
    from kiku.pipeline import Components, analyze

    def run(copies: int) -> tuple[int, dict]:
        texts = [t for items in THEMES.values() for t in items]
        source = tmp_path / f"in{copies}.jsonl"
        source.write_text("\n".join(json.dumps({"id": f"c{i}-{j}", "messages": [{"role": "user", "content": f"{t} (#{j})"}]})
                                    for j in range(copies) for i, t in enumerate(texts)))
        namer, backend = namer_with(lambda m, s, n: {"name": f"Label {n}", "description": "Users asked one concrete thing."})
        hierarchy_namer = ClusterNamer(namer.client, namer.offline, stage="hierarchy")
        components = Components(namer=namer, hierarchy=ClusterNamedHierarchy(hierarchy_namer, max_top=2), llm_client=namer.client)
        result = analyze(source, tmp_path / f"run{copies}", components=components, clusters=5, max_top=2)
        return backend.calls, result.manifest

    small_calls, small = run(1)
    large_calls, large = run(4)
    assert small["counts"]["conversations"] * 4 == large["counts"]["conversations"]
    assert small_calls == large_calls == 5 + 2  # five base clusters, two parents
    assert "describe" not in large["llm"]["by_stage"]  # conversations were described offline
    assert large["stages"]["name"]["validation"]["accepted"] == 5
    assert large["stages"]["hierarchy"]["validation"]["labels"] == 2


def test_the_scope_is_a_run_setting_refused_without_an_llm() -> None:
    assert RunConfig().llm_scope == "clusters"
    with pytest.raises(KikuError, match="--llm-scope conversations sends every conversation to an LLM"):
        check_settings(RunConfig(llm_scope="conversations"))
    check_settings(RunConfig(llm="local/smollm2-135m", llm_scope="conversations"))
