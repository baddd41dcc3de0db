"""Pure logic of the LLM layer: cache keys and id mapping, retries/backoff, failures, spec parsing,
model assembly, candidate de-duplication, matching and fallback assignment.

A scripted backend stands in for the model here; the real llama.cpp paths are tested in
test_llm_local.py and test_llm_server.py.
"""

from __future__ import annotations

import json
import random
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).parent))
from kiku.errors import KikuError
from kiku.llm import ClioHierarchy, ContrastiveNamer, LLMClient, LLMDescriber, ResponseCache, ShortText, cache_key, run_sync
from kiku.llm.client import InvalidOutputError, LLMCallError, backoff_delay, parse_json_object
from kiku.llm.hierarchy import dedupe_candidates, fix_single_children, level_sizes, match_candidate
from kiku.llm.models import ModelIntegrityError, PartedModel, assemble, local_model_path
from kiku.llm.naming import make_unique, nearest_outside
from kiku.llm.providers import parse_llm_spec, price_per_million
from kiku.records import Cluster, Conversation, Message
from llm_fixtures import ScriptedBackend, retryable  # noqa: E402


class Topic(BaseModel):
    topic: ShortText(40)  # type: ignore[valid-type]


def conv(cid: str, text: str) -> Conversation:
    return Conversation(id=cid, messages=[Message(role="user", content=text), Message(role="assistant", content="ok")])


FACETS = {"summary": "s", "request": "r", "task": "t", "languages": ["english"], "concern": 1, "frustration": 2,
          "assistant_errors": []}


def facet_script(messages, schema, n):  # noqa: ANN001, ANN201
    text = messages[-1]["content"]
    return {**FACETS, "summary": "about " + text.split('role="user">')[1].split("<")[0][:40]}


def make_client(script, **options) -> tuple[LLMClient, ScriptedBackend]:  # noqa: ANN001
    backend = ScriptedBackend(script)
    options.setdefault("cache", ResponseCache(":memory:"))
    options.setdefault("backoff_base_s", 0.001)
    return LLMClient(backend=backend, **options), backend


# --- cache ---------------------------------------------------------------------------------


def test_cache_key_covers_everything_that_shapes_the_answer() -> None:
    base = dict(provider="openai", model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                schema={"type": "object"}, params={"temperature": 0})
    key = cache_key(**base)
    assert key == cache_key(**base)
    for field, value in [("provider", "anthropic"), ("model", "gpt-4o"), ("messages", [{"role": "user", "content": "hi!"}]),
                         ("schema", {"type": "array"}), ("params", {"temperature": 0.2})]:
        assert cache_key(**{**base, field: value}) != key, field


def test_identical_conversations_each_get_their_own_id_with_one_call(tmp_path: Path) -> None:
    """Kura's cache hands the first chat's summary back under the first chat's id; kiku maps by content."""
    client, backend = make_client(facet_script, cache=ResponseCache(tmp_path / "c.sqlite"))
    conversations = [conv("first", "log a table"), conv("second", "log a table"), conv("third", "run a sweep")]
    out = LLMDescriber(client).describe(conversations)
    assert [s.conversation_id for s in out] == ["first", "second", "third"]
    assert out[0].summary == out[1].summary == "about log a table"
    assert out[2].summary == "about run a sweep"
    assert backend.calls == 2
    # a second run (new client, same cache file) makes no call and keeps the ids
    client2, backend2 = make_client(facet_script, cache=ResponseCache(tmp_path / "c.sqlite"))
    again = LLMDescriber(client2).describe(list(reversed(conversations)))
    assert backend2.calls == 0 and client2.usage.cache_hits == 3
    assert [s.conversation_id for s in again] == ["third", "second", "first"]
    assert again[0].summary == "about run a sweep"


def test_conversation_id_and_metadata_never_reach_the_model() -> None:
    seen: list[str] = []

    def script(messages, schema, n):  # noqa: ANN001, ANN202
        seen.append(json.dumps(messages))
        return FACETS

    client, _ = make_client(script)
    c = Conversation(id="secret-id-123", metadata={"user": "user-999"}, messages=[Message(role="user", content="hello")])
    LLMDescriber(client).describe([c])
    assert "secret-id-123" not in seen[0] and "user-999" not in seen[0]


# --- retries, failures, concurrency ---------------------------------------------------------


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, base=1.0, cap=8.0, rng=rng) for a in range(1, 7)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(8.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_delay(1, base=1.0, cap=30, rng=rng, retry_after=7) == 7
    assert len({round(backoff_delay(3, rng=random.Random(s)), 6) for s in range(5)}) > 1  # jitter


def test_retries_transient_errors_and_invalid_output_then_succeeds() -> None:
    answers = [retryable("HTTP 503"), "not json at all", '{"topic": 5}', '```json\n{"topic": "Sweeps"}\n```']
    client, backend = make_client(lambda m, s, n: answers[n], max_attempts=4)
    value, usage = run_sync(client.complete([{"role": "user", "content": "x"}], Topic, "demo"))
    assert value.topic == "Sweeps" and usage.attempts == 4
    assert client.usage.retries == 3 and backend.calls == 4


def test_failure_is_recorded_not_cached_and_retried_next_time() -> None:
    cache = ResponseCache(":memory:")
    broken, _ = make_client(lambda m, s, n: retryable(), cache=cache, max_attempts=2)
    conversations = [conv("a", "one"), conv("b", "zebra")]

    def half(messages, schema, n):  # noqa: ANN001, ANN202
        return retryable() if "zebra" in messages[0]["content"] else facet_script(messages, schema, n)

    client, _ = make_client(half, cache=cache, max_attempts=2)
    describer = LLMDescriber(client)
    out = describer.describe(conversations)
    assert out[0].summary == "about one" and out[1].summary is None  # offline facets kept
    assert out[1].request == "zebra"
    assert describer.failed_ids == ["b"]
    assert [f.item_id for f in client.usage.failures] == ["b"]
    fixed, backend = make_client(facet_script, cache=cache)
    again = LLMDescriber(fixed).describe(conversations)
    assert backend.calls == 1 and again[1].summary == "about zebra"
    with pytest.raises(LLMCallError):  # when every call fails the run says so instead of going on empty
        LLMDescriber(broken).describe([conv("c", "three")])


def test_concurrency_limit_and_shared_in_flight_requests() -> None:
    client, backend = make_client(lambda m, s, n: {"topic": m[0]["content"]}, concurrency=2)
    backend.delay_s = 0.05

    async def many():  # noqa: ANN202
        import asyncio

        texts = [f"t{i}" for i in range(8)] + ["t0", "t0"]
        return await asyncio.gather(*(client.complete([{"role": "user", "content": t}], Topic, "demo") for t in texts))

    results = run_sync(many())
    assert backend.max_in_flight == 2
    assert backend.calls == 8  # the duplicate requests shared one call
    assert [r[0].topic for r in results][-2:] == ["t0", "t0"]


def test_redaction_on_for_hosted_off_for_local() -> None:
    seen: list[str] = []
    script = lambda m, s, n: seen.append(m[0]["content"]) or {"topic": "x"}  # noqa: E731
    hosted, _ = make_client(script, hosted=True)
    local, _ = make_client(script)
    message = [{"role": "user", "content": "mail bob@example.com key sk-proj-ABCdef1234567890XYZ"}]
    run_sync(hosted.complete(message, Topic, "demo"))
    run_sync(local.complete(message, Topic, "demo"))
    assert "bob@example.com" not in seen[0] and "[EMAIL]" in seen[0] and "[API_KEY]" in seen[0]
    assert "bob@example.com" in seen[1]


def test_usage_cost_from_price_table() -> None:
    client, backend = make_client(lambda m, s, n: {"topic": "x"})
    backend.provider, backend.model = "openai", "gpt-4o-mini"
    client.usage.provider = "openai"
    run_sync(client.complete([{"role": "user", "content": "y" * 4000}], Topic, "describe"))
    stage = client.usage.by_stage["describe"]
    assert stage.prompt_tokens == 1000
    assert stage.cost_usd == pytest.approx((1000 * 0.15 + stage.completion_tokens * 0.60) / 1e6)
    assert price_per_million("local", "x") == (0.0, 0.0) and price_per_million("openai", "unknown-model") is None


def test_parse_json_object_is_lenient_but_not_blind() -> None:
    assert parse_json_object('Here: {"a": "x\ny"} done') == {"a": "x\ny"}
    with pytest.raises(InvalidOutputError, match="no JSON object"):
        parse_json_object('{"summary": "cut off')


# --- specs and models ----------------------------------------------------------------------


def test_parse_llm_spec_forms() -> None:
    assert parse_llm_spec("openai/gpt-4o-mini").hosted
    assert parse_llm_spec("ollama/llama3.1").base_url == "http://localhost:11434/v1"
    spec = parse_llm_spec("openai-compatible/qwen@http://127.0.0.1:9000/v1")
    assert (spec.provider, spec.model, spec.base_url) == ("openai-compatible", "qwen", "http://127.0.0.1:9000/v1")
    assert parse_llm_spec("local/models/x.gguf").model == "models/x.gguf"
    assert parse_llm_spec("local").model in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
    assert parse_llm_spec("google/gemini-2.0-flash").provider == "gemini"
    for bad in ["", "mystery/model", "openai", "openai-compatible/x"]:
        with pytest.raises(KikuError):
            parse_llm_spec(bad)


def _fake_parts(tmp_path: Path, payload: bytes, parts: int) -> str:
    prefix = f"kiku_test_part_{abs(hash(payload)) % 10**8}_"
    chunk = -(-len(payload) // parts)
    for i in range(1, parts + 1):
        package = tmp_path / f"{prefix}{i}"
        (package / "data").mkdir(parents=True)
        (package / "data" / "part.bin").write_bytes(payload[(i - 1) * chunk : i * chunk])
        (package / "__init__.py").write_text(textwrap.dedent("""
            import os
            def get_part_path():
                return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "part.bin")
        """))
    return prefix


def test_assemble_joins_parts_verifies_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    payload = bytes(range(256)) * 100
    prefix = _fake_parts(tmp_path / "site", payload, 3)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = PartedModel("m", "m.gguf", "pkg-part", prefix, 3, "1.0", hashlib.sha256(payload).hexdigest(), "local")
    path = assemble(model, tmp_path / "cache")
    assert path.read_bytes() == payload
    mtime = path.stat().st_mtime_ns
    assert assemble(model, tmp_path / "cache") == path and path.stat().st_mtime_ns == mtime  # reused
    wrong = PartedModel("m2", "m2.gguf", "pkg-part", prefix, 3, "1.0", "0" * 64, "local")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        assemble(wrong, tmp_path / "cache")
    assert not (tmp_path / "cache" / "m2.gguf").exists()
    missing = PartedModel("m3", "m3.gguf", "nope-part", "kiku_no_such_part_", 2, "1.0", "0" * 64, "local")
    with pytest.raises(KikuError, match="pip install"):
        assemble(missing, tmp_path / "cache")


def test_local_model_path_names_and_errors(tmp_path: Path) -> None:
    assert local_model_path("smollm2-135m").name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(KikuError, match="not found"):
        local_model_path(tmp_path / "missing.gguf")
    with pytest.raises(KikuError, match="unknown local model"):
        local_model_path("gpt-17")


# --- naming and hierarchy logic ------------------------------------------------------------


def test_nearest_outside_and_unique_names() -> None:
    e = np.eye(4, dtype=np.float32)
    e[1] = [0.9, 0.1, 0, 0]
    assert nearest_outside(np.array([1, 0, 0, 0], np.float32), e, np.array([0]), 1).tolist() == [1]
    names = make_unique(["Log tables", "Log Tables", "Log tables"], [["pandas frame"], ["image grid"], ["image grid"]])
    assert len({n.lower() for n in names}) == 3


def test_level_sizes_are_geometric() -> None:
    sizes = level_sizes(300, max_top=6, branching=5, min_ratio=1.0)
    assert sizes[-1] == 6 and all(a > b for a, b in zip([300] + sizes, sizes))
    ratios = [a / b for a, b in zip([300] + sizes, sizes)]
    assert max(ratios) / min(ratios) < 1.5


def test_dedupe_candidates_merges_near_duplicates_to_target() -> None:
    names = ["Debug sweeps", "debug sweeps", "Fix sweep crashes", "Log tables", "Log media", "Manage artifacts"]
    vectors = np.array([[1, 0, 0], [1, 0, 0], [0.97, 0.24, 0], [0, 1, 0], [0, 0.8, 0.6], [0, 0, 1]], np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert dedupe_candidates(names, vectors, target=10) == [0, 3, 4, 5]
    assert dedupe_candidates(names, vectors, target=3) == [0, 3, 5]


def test_match_candidate_and_single_child_fix() -> None:
    candidates = ["Debug sweeps", "Log tables and media"]
    assert match_candidate("log tables and media.", candidates) == 1
    assert match_candidate("Log tables & media", candidates) == 1
    assert match_candidate("Cook pasta", candidates) is None
    vectors = np.array([[1, 0], [0.8, 0.6], [0, 1]], np.float32)
    fixed = fix_single_children([0, 0, 1, 2, 2], vectors)
    assert fixed.count(1) == 0 and sorted(set(fixed)) == [0, 2]


def test_hierarchy_never_crashes_on_wrong_answers_and_falls_back_by_embedding() -> None:
    """Assignment answers that name no candidate are retried once, then the nearest candidate wins."""
    from kiku.embed import MiniLMEmbedder

    topics = ["Debug sweep agents that crash", "Tune sweep hyperparameters", "Fix sweep config errors",
              "Log pandas tables", "Log images and media", "Render tables in reports",
              "Version model artifacts", "Download dataset artifacts", "Link artifacts to the registry"]

    def script(messages, schema, n):  # noqa: ANN001, ANN202
        prompt = messages[0]["content"]
        if "category names" in prompt:
            return {"names": ["Work with sweeps", "Log tables and media", "Manage artifacts"]}
        if "Choose the category" in prompt:
            return {"choice": "Something that is not a category"}
        return {"name": "Parent topic", "description": "Parent description."}

    client, backend = make_client(script)
    base = [Cluster(id=f"b{i}", level=0, name=t, description=t + ".", member_ids=[f"c{i}a", f"c{i}b"])
            for i, t in enumerate(topics)]
    builder = ClioHierarchy(client, top_size=3, embedder=MiniLMEmbedder())
    tree = builder.build(base)
    parents = {c.id: c for c in tree if c.level == 1}
    assert builder.fallbacks == len(topics)
    assert len(parents) == 3
    groups = {pid: sorted(c.name for c in tree if c.parent_id == pid) for pid in parents}
    assert sorted(map(tuple, groups.values())) == sorted([tuple(sorted(topics[0:3])), tuple(sorted(topics[3:6])),
                                                           tuple(sorted(topics[6:9]))])
    assert len({p.name for p in parents.values()}) == 3  # renamed to one name, made unique
    assert all(len(p.member_ids) == 6 for p in parents.values())


def test_parent_names_that_echo_a_child_are_sent_back_then_replaced_by_the_candidate() -> None:
    """A parent (or candidate) named like one of its children says nothing about the others: ask again, then use the candidate."""
    from kiku.embed import MiniLMEmbedder
    from kiku.llm.hierarchy import parent_name_problem

    topics = ["Debug sweep agents that crash", "Tune sweep hyperparameters", "Fix sweep config errors",
              "Log pandas tables", "Log images and media", "Render tables in reports"]
    renames: list[list[dict[str, str]]] = []
    proposals: list[list[dict[str, str]]] = []

    def script(messages, schema, n):  # noqa: ANN001, ANN202
        prompt = messages[0]["content"]
        if "category names" in prompt:  # copies the topics first, then proposes real categories
            proposals.append(messages)
            return {"names": topics[:4]} if len(messages) == 1 else {"names": ["Work with sweeps", "Log tables and media"]}
        if "Choose the category" in prompt:
            child = prompt.split("Topic: ", 1)[1].split("\n", 1)[0]
            return {"choice": "Work with sweeps" if "sweep" in child.lower() else "Log tables and media"}
        renames.append(messages)
        if "sweep" in prompt.split("OTHER categories")[0].lower():  # echoes a child first, then gives a real name
            return ({"name": "Tune sweep hyperparameters", "description": "d."} if len(messages) == 1
                    else {"name": "Run and debug sweeps", "description": "Sweeps."})
        return {"name": "Log pandas tables, Log images and media", "description": "Logging."}  # lists, twice

    client, _ = make_client(script)
    base = [Cluster(id=f"b{i}", level=0, name=t, description=t + ".", member_ids=[f"c{i}a", f"c{i}b"])
            for i, t in enumerate(topics)]
    tree = ClioHierarchy(client, top_size=2, embedder=MiniLMEmbedder()).build(base)
    parents = sorted(c.name for c in tree if c.level == 1)
    assert parents == ["Log tables and media", "Run and debug sweeps"]
    assert len(renames) == 4 and all(len(m) == 2 for m in renames if len(m) > 1)
    assert any("repeats one topic's name" in m[-1]["content"] for m in renames if len(m) == 2)
    assert any("lists the topic names" in m[-1]["content"] for m in renames if len(m) == 2)
    assert parent_name_problem("Catalog models", ["log", "models"]) is None
    assert [len(m) for m in proposals] == [1, 2] and "copy the topics" in proposals[1][-1]["content"]


def test_a_model_that_only_copies_topics_still_gets_a_tree_and_the_run_says_so(tmp_path: Path) -> None:
    """Candidates that all copy topic names: the level is grouped by embedding, named, and the manifest warns."""
    from kiku.embed import MiniLMEmbedder
    from kiku.pipeline import Components, analyze

    texts = ["log a pandas table", "log images to a run", "render a table in a report", "sweep agent crashed",
             "tune a sweep", "sweep config error", "download an artifact", "version a dataset artifact",
             "link an artifact to the registry", "resume a crashed run", "invite my team", "set up SSO for the team"]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps({"id": f"c{i}", "messages": [{"role": "user", "content": t}]})
                                for i, t in enumerate(texts)))
    names = iter(range(1000))

    def script(messages, schema, n):  # noqa: ANN001, ANN202
        prompt, fields = messages[0]["content"], set(schema.get("properties", {}))
        if "names" in fields:  # copies the topics, every time
            return {"names": [line[2:].split(":")[0] for line in prompt.splitlines() if line.startswith("- ")][:4]}
        if "summary" in fields:
            return facet_script(messages, schema, n)
        if "grouped into one category" in prompt:
            return {"name": f"Parent group {next(names)}", "description": "A group. Of topics."}
        first = next(line[2:] for line in prompt.splitlines() if line.startswith("- "))
        return {"name": f"{first[:60]} {next(names)}", "description": f"Requests like {first[:60]}. Nothing else."}

    client, _ = make_client(script)
    embedder = MiniLMEmbedder()
    hierarchy = ClioHierarchy(client, top_size=2, embedder=embedder)
    run = analyze(source, tmp_path / "run", clusters=6, components=Components(
        embedder=embedder, describer=LLMDescriber(client), namer=ContrastiveNamer(client), hierarchy=hierarchy, llm_client=client))
    clusters = run.clusters()
    parents = clusters[clusters.level == 1]
    assert 2 <= len(parents) < 6 and all(name.startswith("Parent group") for name in parents.name)
    assert run.manifest["stages"]["hierarchy"]["embedding_grouped_levels"] == [1]
    assert any("grouped by embedding" in w for w in run.manifest["warnings"])


def test_pipeline_keeps_failed_llm_items_and_retries_them_on_rerun(tmp_path: Path) -> None:
    from kiku.pipeline import Components, analyze

    texts = ["log a pandas table", "zebra sweep crash", "download an artifact", "log images", "resume a run", "set up teams"]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps({"id": f"c{i}", "messages": [{"role": "user", "content": t}]})
                                for i, t in enumerate(texts)))
    cache = ResponseCache(tmp_path / "cache.sqlite")

    def flaky(messages, schema, n):  # noqa: ANN001, ANN202
        return retryable() if "zebra" in messages[0]["content"] else facet_script(messages, schema, n)

    client, _ = make_client(flaky, cache=cache, max_attempts=2)
    run = analyze(source, tmp_path / "run", components=Components(describer=LLMDescriber(client)), clusters=2)
    assert run.manifest["stages"]["describe"]["failed_items"] == 1
    assert any("describe: 1 item(s) failed" in w for w in run.manifest["warnings"])
    facets = run.sql("select conversation_id, summary from facets order by conversation_id").to_dict("records")
    assert len(facets) == 6 and facets[1]["summary"] != facets[1]["summary"]  # NaN: no LLM summary  # nothing lost, offline facets kept
    fixed, backend = make_client(facet_script, cache=cache)
    run2 = analyze(source, tmp_path / "run", components=Components(describer=LLMDescriber(fixed)), clusters=2)
    assert backend.calls == 1 and fixed.usage.cache_hits == 5
    assert "failed_items" not in run2.manifest["stages"]["describe"]
    assert run2.sql("select summary from facets where conversation_id = 'c1'").iloc[0, 0] == "about zebra sweep crash"


def test_privacy_audit_withholds_identifying_clusters_and_fails_closed() -> None:
    from kiku.llm.audit import audit_clusters, withheld
    from kiku.privacy import OTHER_NAME, apply_min_cluster_size

    def script(messages, schema, n):  # noqa: ANN001, ANN202
        text = messages[0]["content"]
        if "Acme" in text:
            return {"score": 5, "reason": "names a company project"}
        if "broken" in text:
            return retryable()
        return {"score": 1, "reason": "general topic"}

    client, _ = make_client(script, max_attempts=1)
    clusters = [Cluster(id="a", level=0, name="Log tables", member_ids=["1", "2"]),
                Cluster(id="b", level=0, name="Debug Acme Corp's secret pipeline", member_ids=["3", "4"]),
                Cluster(id="c", level=0, name="broken", member_ids=["5"])]
    scores = audit_clusters(client, clusters)
    assert scores == {"a": 1, "b": 5, "c": 5}
    out = apply_min_cluster_size(clusters, 1, withhold_ids=withheld(scores))
    assert [c.name for c in out] == ["Log tables", OTHER_NAME]
    assert "Acme" not in json.dumps([c.model_dump() for c in out])


def test_missing_provider_sdk_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiku.errors import MissingDependencyError
    from kiku.llm.providers import make_backend

    for module in ("anthropic", "google", "google.genai", "openai", "llama_cpp"):
        monkeypatch.setitem(sys.modules, module, None)  # makes the import fail as if not installed
    for spec, extra in [("anthropic/claude-3-5-haiku-latest", "anthropic"), ("gemini/gemini-2.0-flash", "gemini"),
                        ("openai/gpt-4o-mini", "openai"), ("local/smollm2-135m", "local")]:
        with pytest.raises(MissingDependencyError, match=rf"pip install 'kiku\[{extra}\]'"):
            make_backend(parse_llm_spec(spec))


def test_single_queries_get_no_invented_assistant_errors() -> None:
    client, _ = make_client(lambda m, s, n: {**FACETS, "frustration": 4, "assistant_errors": ["made up"]})
    query = Conversation(id="q", messages=[Message(role="user", content="experiment tracking")])
    chat = conv("c", "log a table")
    out = LLMDescriber(client).describe([query, chat])
    assert (out[0].assistant_errors, out[0].frustration) == ([], 1)
    assert (out[1].assistant_errors, out[1].frustration) == (["made up"], 4)


def test_single_queries_are_asked_for_fewer_fields() -> None:
    seen: list[tuple[str, list[str]]] = []

    def script(messages, schema, n):  # noqa: ANN001, ANN202
        seen.append((messages[-1]["content"], sorted(schema["properties"])))
        fields = schema["properties"]
        return {k: v for k, v in {**FACETS, "summary": "wants tracking"}.items() if k in fields}

    client, _ = make_client(script)
    query = Conversation(id="q", messages=[Message(role="user", content="experiment tracking")])
    out = LLMDescriber(client).describe([query, conv("c", "log a table")])
    assert seen[0][1] == ["concern", "languages", "summary", "task"]  # no request, frustration, assistant errors
    assert "assistant_errors" in seen[1][1] and "request" in seen[1][1]
    assert "frustration" not in seen[0][0] and "frustration" in seen[1][0]
    assert (out[0].summary, out[0].frustration, out[0].assistant_errors) == ("wants tracking", 1, [])
    assert "llm_request" not in out[0].facets and out[1].facets["llm_request"] == "r"


def test_retry_after_unusable_answer_samples_instead_of_repeating_temperature_zero() -> None:
    seen: list[dict] = []

    class Recording(ScriptedBackend):
        async def generate(self, messages, schema, params):  # noqa: ANN001, ANN201
            seen.append(dict(params))
            return await super().generate(messages, schema, params)

    # at temperature 0 the model repeats its broken answer; a sampled retry gets through
    backend = Recording(lambda m, s, n: '{"topic": "Sweeps"}' if seen[-1]["temperature"] > 0 else "no json")
    client = LLMClient(backend=backend, max_attempts=3, backoff_base_s=0.0, seed=5)
    value, usage = run_sync(client.complete([{"role": "user", "content": "x"}], Topic, "demo"))
    assert value.topic == "Sweeps" and usage.attempts == 2
    assert seen[0]["temperature"] == 0.0 and seen[0]["seed"] == 5
    assert seen[1]["temperature"] == pytest.approx(0.7) and seen[1]["seed"] == 6


# --- a copy for a Ray worker ----------------------------------------------------------------


def test_a_client_pickles_for_a_worker_without_its_connections_and_with_the_drivers_key(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pickle

    from kiku.llm.cache import JournaledCache
    from kiku.llm.providers import AnthropicBackend, OpenAIBackend

    monkeypatch.setenv("OPENAI_API_KEY", "sk-driver")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-driver")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    client = LLMClient(backend=OpenAIBackend("openai", "gpt-4o-mini", check_sdk=False), cache=cache)
    client.usage.calls = 5
    copy = pickle.loads(pickle.dumps(client))
    assert copy.backend.api_key == "sk-driver" and client.backend.api_key is None  # the driver's own is untouched
    assert copy.usage.calls == 0 and copy.usage.model == "gpt-4o-mini"  # a copy counts only its own work
    assert isinstance(copy.cache, JournaledCache) and copy.cache.path == cache.path
    assert pickle.loads(pickle.dumps(AnthropicBackend("claude-3-5-haiku", check_sdk=False))).api_key == "sk-ant-driver"
    monkeypatch.delenv("OPENAI_API_KEY")
    compatible = OpenAIBackend("openai-compatible", "m", base_url="http://127.0.0.1:1/v1", check_sdk=False)
    assert pickle.loads(pickle.dumps(compatible)).api_key is None  # no key of another provider is attached


def test_a_worker_copys_report_is_counted_once_on_the_driver() -> None:
    import pickle

    client, _ = make_client(facet_script)
    worker = pickle.loads(pickle.dumps(LLMDescriber(client)))
    worker.describe([conv("a", "one"), conv("b", "two")])
    report = worker.take_worker_report()
    assert worker.take_worker_report()["usage"]["calls"] == 0  # taken once, then empty
    assert report["usage"]["calls"] == 2 and len(report["answers"]) == 2
    driver = LLMDescriber(client)
    driver.absorb_worker_report(report)
    assert client.usage.calls == 2 and client.usage.by_stage["describe"].calls == 2
    assert len(client.cache) == 2  # the driver's (in-memory) cache got the worker's answers
    again, backend = make_client(facet_script, cache=client.cache)
    LLMDescriber(again).describe([conv("a", "one"), conv("b", "two")])
    assert backend.calls == 0
