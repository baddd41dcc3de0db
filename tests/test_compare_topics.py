"""The compare view's "two topics" mode: sizes and shares with Wilson intervals, facet
differences and c-TF-IDF keyword weights, over a real run (the real packaged embedder on the
committed BANKING77 slice, whose intent is a metadata facet), a real server and real headless
Chromium."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

import kiku as kiku_api
from browsers import CHROMIUM, CHROMIUM_ARGS, chromium_path
from kiku.compare import facet_differences, keyword_weights, wilson
from kiku.store import read_frame
from kiku.web import running_server
from living_runs import halves

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compare-topics")
    base_input, _, _, _ = halves(folder)
    return Path(kiku_api.analyze(base_input, folder / "base", seed=0).path)


def _two_largest(run: Path) -> tuple[str, str]:
    clusters = read_frame(run, "clusters")
    top = clusters[(clusters.level == 0) & ~clusters.is_noise].sort_values(["size", "cluster_id"], ascending=[False, True])
    return str(top.cluster_id.iloc[0]), str(top.cluster_id.iloc[1])


def _largest_sibling(run: Path, cid: str) -> str:
    clusters = read_frame(run, "clusters").set_index("cluster_id")
    parent = clusters.loc[cid, "parent_id"]
    same = clusters[(clusters.parent_id == parent) if isinstance(parent, str) else clusters.parent_id.isna()]
    same = same[~same.is_noise & (same.index != cid)].sort_values("size", ascending=False)
    return str(same.index[0])


def test_api_sizes_intervals_facets_and_keywords(run: Path) -> None:
    a, b = _two_largest(run)
    assignments = read_frame(run, "assignments").query("level == 0")
    conversations = read_frame(run, "conversations").set_index("conversation_id")
    members = {cid: assignments[assignments.cluster_id == cid].conversation_id.tolist() for cid in (a, b)}
    with running_server(run) as url:
        body = httpx.get(url + "api/living/compare-topics", params={"a": a, "b": b}).json()
        bundle = httpx.get(url + "api/bundle").json()
        bad = httpx.get(url + "api/living/compare-topics", params={"a": a, "b": "nope"})
    assert bad.status_code == 400 and "'nope' is not in this run" in bad.json()["detail"]
    total = len(conversations)
    assert body["total"] == total
    for side, cid in (("a", a), ("b", b)):
        got = body[side]
        assert got["cluster_id"] == cid and got["size"] == len(members[cid])
        assert got["share"] == pytest.approx(len(members[cid]) / total)
        assert (got["low"], got["high"]) == pytest.approx(wilson(len(members[cid]), total))
        assert got["low"] < got["share"] < got["high"]
    # facet differences: the intent (a metadata facet) recounted from the run's conversations
    intents = {cid: Counter(str(conversations.loc[c, "metadata"]["intent"]) if isinstance(conversations.loc[c, "metadata"], dict)
                            else __import__("json").loads(conversations.loc[c, "metadata"])["intent"] for c in members[cid]) for cid in (a, b)}
    rows = [r for r in body["facets"] if r["label"].lower().startswith("intent")]
    assert rows, [r["label"] for r in body["facets"]]
    for r in rows:
        assert r["share_a"] == pytest.approx(intents[a][r["value"]] / len(members[a]))
        assert r["share_b"] == pytest.approx(intents[b][r["value"]] / len(members[b]))
        assert r["difference"] == pytest.approx(r["share_b"] - r["share_a"])
    diffs = [abs(r["difference"]) for r in body["facets"]]
    assert diffs == sorted(diffs, reverse=True) and diffs[0] > 0.3  # two different topics of a labelled set
    # the same answer from the pure function over the served bundle
    index = {c["id"]: i for i, c in enumerate(bundle["clusters"])}
    rows_a = [k for k, c in enumerate(bundle["assign"]["0"]) if c == index[a]]
    rows_b = [k for k, c in enumerate(bundle["assign"]["0"]) if c == index[b]]
    assert [d.model_dump() for d in facet_differences(bundle["facets"], rows_a, rows_b)] == body["facets"]
    # keywords: positive, descending weights; each side's top term is in its own requests more than in the other's
    texts = {side: [bundle["text"]["request"][k].lower() for k in rows] for side, rows in (("a", rows_a), ("b", rows_b))}
    for side, other in (("a", "b"), ("b", "a")):
        weights = [k["weight"] for k in body["keywords_" + side]]
        assert len(weights) == 10 and all(w > 0 for w in weights) and weights == sorted(weights, reverse=True)
        term = body["keywords_" + side][0]["term"]
        rate = sum(term in t for t in texts[side]) / len(texts[side])
        assert rate > 0.2 and rate > sum(term in t for t in texts[other]) / len(texts[other]), term
    assert {k["term"] for k in body["keywords_a"]} != {k["term"] for k in body["keywords_b"]}


def test_keyword_weights_prefer_each_sides_own_words() -> None:
    a, b = keyword_weights(["my card has not arrived", "when will my card arrive", "card still not here"],
                           ["why was I charged a fee", "refund the fee", "fee on my transfer"], top_n=3)
    assert a[0].term == "card" and b[0].term == "fee"
    assert not {k.term for k in a} & {"fee", "refund"}
    assert keyword_weights(["the a of"], ["and the"]) == ([], [])


@pytest.mark.skipif(chromium_path() is None, reason=f"chromium not found at {CHROMIUM}")
def test_browser_two_topic_mode(run: Path) -> None:
    from playwright import sync_api

    a, _ = _two_largest(run)
    with running_server(run) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.evaluate(f"window.kiku.selectCluster(window.kiku.state.byId.get('{a}'))")
        page.click("#tab-compare")
        page.wait_for_selector("#compare-mode")
        page.focus("#compare-mode")
        page.select_option("#compare-mode", "topics")
        page.wait_for_selector(".cmp-topic-a")
        names = {a: page.evaluate(f"window.kiku.state.clusters[window.kiku.state.byId.get('{a}')].name")}
        # defaults: the selected topic and its largest sibling
        b = _largest_sibling(run, a)
        names[b] = page.evaluate(f"window.kiku.state.clusters[window.kiku.state.byId.get('{b}')].name")
        assert page.get_attribute(".cmp-topic-a", "data-id") == a and page.get_attribute(".cmp-topic-b", "data-id") == b
        assert names[a] in page.inner_text(".cmp-topic-a") and names[b] in page.inner_text(".cmp-topic-b")
        assert "95% interval" in page.inner_text(".cmp-topic-a") and page.locator(".cmp-topics .cmp-interval").count() == 2
        assert page.locator("#compare-facets tbody tr").count() >= 2
        assert page.locator(".cmp-keywords-a .cmp-keyword").count() == 10 and page.locator(".cmp-keywords-b .cmp-keyword").count() == 10
        assert f"ca={a}" in page.evaluate("location.hash") and f"cb={b}" in page.evaluate("location.hash")
        # pick another topic B from the keyboard-reachable select; the URL keeps it across a reload
        other = page.evaluate("Array.from(document.querySelectorAll('#compare-topic-b option')).map(o => o.value)")[2]
        page.select_option("#compare-topic-b", other)
        page.wait_for_selector(f".cmp-topic-b[data-id='{other}']")
        page.reload()
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.wait_for_selector(f".cmp-topic-b[data-id='{other}']")
        assert page.get_attribute(".cmp-topic-a", "data-id") == a
        assert not errors, errors
        browser.close()
