"""Search by similar meaning (issue 16): the query embedded by the run's own packaged model,
ranked by cosine similarity with the run's stored embeddings.

A real ``kiku.analyze`` run (real MiniLM embedder) over the 840 real BANKING77 queries of
tests/data/banking77-quality.csv (12 intents x 70), served by a real uvicorn server and driven
in real headless Chromium; the export is checked to offer keyword search only.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest

import web_runs
from kiku.similar import DEFAULT_TOP, SimilarIndex, chance_similarity, rank_by_similarity
from kiku.web import RunData, export_html, running_server
from test_ui_browser import Page, sync_api

pytestmark = pytest.mark.timeout(300)
BANKING = Path(__file__).resolve().parent / "data" / "banking77-quality.csv"

# Paraphrases that share no word with the conversations they should find (checked below: a
# keyword search for each finds nothing), with the BANKING77 intent they mean.
PARAPHRASES = {
    "I want to close everything and leave": "terminate_account",
    "how old must I be to use this": "age_limit",
    "where do I update where I live": "edit_personal_details",
}


@pytest.fixture(scope="module")
def banking_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import kiku

    return kiku.analyze(BANKING, tmp_path_factory.mktemp("semantic") / "banking", seed=0).path


@pytest.fixture(scope="module")
def intents(banking_run: Path) -> list[str]:
    """The BANKING77 intent of each conversation, in bundle order (matched by its text)."""
    with BANKING.open(encoding="utf-8", newline="") as f:
        by_text = {r["text"].strip(): r["category"] for r in csv.DictReader(f)}
    return [by_text[c["messages"][0]["content"].strip()] for c in RunData(banking_run).all_conversations()]


@pytest.fixture(scope="module")
def served(banking_run: Path):
    with running_server(banking_run) as url:
        yield url


# ---------------------------------------------------------------------------- pure logic
def test_rank_by_similarity_keeps_the_best_above_the_floor_in_order() -> None:
    v = np.array([[1, 0], [0.6, 0.8], [0, 1], [0.8, 0.6]], dtype=np.float32)
    rows, scores = rank_by_similarity(v, np.array([1, 0], dtype=np.float32), top=2, floor=0.0)
    assert rows.tolist() == [0, 3] and scores.tolist() == pytest.approx([1.0, 0.8])
    rows, _ = rank_by_similarity(v, np.array([1, 0], dtype=np.float32), top=10, floor=0.5)
    assert rows.tolist() == [0, 3, 1]
    assert chance_similarity(np.zeros((3, 2), dtype=np.float32)) == 0.0


# ---------------------------------------------------------------------------- the API
def test_similar_api_finds_paraphrases_that_share_no_word(served: str, banking_run: Path, intents: list[str]) -> None:
    index = SimilarIndex(banking_run)
    assert index.embedder_name == "minilm" and 0.2 < index.floor < 0.6  # the run's own chance level
    for query, intent in PARAPHRASES.items():
        keyword = httpx.get(served + "api/search/rows", params={"q": query}, timeout=60).json()
        assert keyword["total"] == 0  # no conversation holds the words
        found = httpx.get(served + "api/similar/rows", params={"q": query}, timeout=60).json()
        assert found["mode"] == "similar" and found["tokens"] == []
        assert 10 <= found["total"] == len(found["rows"]) <= DEFAULT_TOP
        assert found["scores"] == sorted(found["scores"], reverse=True) and min(found["scores"]) > found["floor"]
        top10 = [intents[r] for r in found["rows"][:10]]
        assert top10.count(intent) >= 9, (query, top10)
        # paged like keyword results, with the score of each
        page = httpx.get(served + "api/similar", params={"q": query, "limit": 5, "offset": 5}, timeout=60).json()
        assert page["total"] == found["total"]
        assert [it["row"] for it in page["items"]] == found["rows"][5:10]
        assert [it["score"] for it in page["items"]] == found["scores"][5:10]
        assert all(it["request"] for it in page["items"])
    # a query about nothing in the run finds nothing, instead of the 200 least unrelated
    off = httpx.get(served + "api/similar/rows", params={"q": "recipe for pancakes with blueberries"}, timeout=60).json()
    assert off["total"] == 0 and off["rows"] == []


def test_similar_api_is_guarded_and_refuses_runs_without_embeddings(served: str, tmp_path: Path) -> None:
    assert httpx.get(served + "api/run").json()["similar"] is True
    evil = httpx.get(served + "api/similar/rows", params={"q": "card"}, headers={"Host": "evil.example"})
    assert evil.status_code == 400
    assert httpx.post(served + "api/similar/rows", params={"q": "card"}).status_code in (405, 415)  # read-only
    assert httpx.get(served + "api/similar/rows", params={"q": ""}).status_code == 422
    bare = web_runs.write_wandb_run(tmp_path / "no-embeddings", llm=False)  # a run folder with no embeddings.parquet
    with running_server(bare) as url:
        assert httpx.get(url + "api/run").json()["similar"] is False
        res = httpx.get(url + "api/similar/rows", params={"q": "log images"})
        assert res.status_code == 409 and "embeddings.parquet" in res.json()["detail"]


# ---------------------------------------------------------------------------- the browser
def _hash(p: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(p.page.url).fragment)


def test_toggle_searches_by_meaning_and_round_trips_the_url(browser, served: str, intents: list[str]) -> None:
    p = Page(browser)
    p.open(served)
    query, intent = "I want to close everything and leave", "terminate_account"
    p.page.fill("#search", query)
    sync_api.expect(p.page.locator("#search-count")).to_have_text("0 matches")
    assert p.page.get_attribute("#mode-keyword", "aria-pressed") == "true"
    # keyboard: the toggle follows the search box in the tab order, Enter switches the mode
    p.page.focus("#search")
    p.page.keyboard.press("Tab")
    assert p.eval("document.activeElement.id") == "mode-keyword"
    p.page.keyboard.press("Tab")
    assert p.eval("document.activeElement.id") == "mode-similar"
    p.page.keyboard.press("Enter")
    count = p.page.locator("#search-count")
    sync_api.expect(count).to_have_text(re.compile(r"^\d+ similar$"))
    n = int(count.inner_text().split()[0])
    assert 10 <= n <= DEFAULT_TOP and p.eval("kiku.state.nSearch") == n
    assert p.page.get_attribute("#mode-similar", "aria-pressed") == "true"
    # the list: most similar first, every card with its score, the best ones of the right intent
    assert p.page.locator("#list-sort").input_value() == "similar"
    metas = p.page.locator("#examples .ex-meta").all_inner_texts()
    scores = [float(re.search(r"similarity (\d\.\d\d)", m).group(1)) for m in metas]
    assert len(scores) == min(25, n) and scores == sorted(scores, reverse=True)
    rows = [int(r) for r in p.eval("[...document.querySelectorAll('#examples .example')].map(e => e.dataset.row)")]
    assert [intents[r] for r in rows[:10]].count(intent) >= 9
    # the same matches feed the tree badges and the map rings
    badges = [int(t.replace(",", "")) for t in p.page.locator("#tree > .tree-item > .node .badge").all_inner_texts()]
    assert sum(badges) == n
    assert p.eval("kiku.state.searchMask.reduce((a, b) => a + b, 0)") == n
    # the URL keeps the mode; a reload (or a shared link) restores it
    p.page.wait_for_function("location.hash.includes('search=similar')")
    state = _hash(p)
    assert state["search"] == ["similar"] and state["q"] == [query]
    p.page.reload()
    p.page.wait_for_selector("body[data-ready='1']")
    sync_api.expect(p.page.locator("#search-count")).to_have_text(f"{n} similar")
    assert p.page.get_attribute("#mode-similar", "aria-pressed") == "true"
    assert p.page.input_value("#search") == query
    # back to keyword: the same query matches no word, the mode leaves the URL
    p.page.click("#mode-keyword")
    sync_api.expect(p.page.locator("#search-count")).to_have_text("0 matches")
    p.page.wait_for_function("!location.hash.includes('search=similar')")
    assert "similarity" not in p.page.locator("#details").inner_text()
    # back in history returns to the similar-meaning results
    p.page.go_back()
    sync_api.expect(p.page.locator("#search-count")).to_have_text(f"{n} similar")
    assert p.errors == []
    p.close()


def test_a_run_without_embeddings_shows_why_the_toggle_is_off(browser, tmp_path: Path) -> None:
    bare = web_runs.write_wandb_run(tmp_path / "no-embeddings", llm=False)
    with running_server(bare) as url:
        p = Page(browser)
        p.open(url + "#q=sweep&search=similar")
        btn = p.page.locator("#mode-similar")
        assert btn.get_attribute("aria-disabled") == "true" and "no stored embeddings" in (btn.get_attribute("title") or "")
        sync_api.expect(p.page.locator("#search-count")).to_have_text(re.compile(r"^\d+ matches$"))  # keyword search
        assert not [r for r in p.requests if "api/similar" in r] and p.errors == []
        p.close()


def test_export_offers_keyword_search_only(browser, banking_run: Path, tmp_path: Path) -> None:
    url = export_html(banking_run, tmp_path / "report.html").as_uri()
    p = Page(browser)
    p.open(url + "#q=card&search=similar")  # a served link pasted into the file: keyword search
    btn = p.page.locator("#mode-similar")
    assert btn.get_attribute("aria-disabled") == "true" and "kiku ui" in (btn.get_attribute("title") or "")
    assert p.page.get_attribute("#mode-keyword", "aria-pressed") == "true"
    sync_api.expect(p.page.locator("#search-count")).to_have_text(re.compile(r"^\d+ matches$"))
    before = p.page.locator("#search-count").inner_text()
    btn.focus()  # focusable, so keyboard users meet the reason too
    p.page.keyboard.press("Enter")
    sync_api.expect(p.page.locator("#announce")).to_contain_text("served explorer")
    assert p.page.get_attribute("#mode-similar", "aria-pressed") == "false"
    assert p.page.locator("#search-count").inner_text() == before
    p.page.fill("#search", "atm")  # the next state written to the URL is a keyword search
    sync_api.expect(p.page).to_have_url(re.compile(r"#q=atm$"))  # (the export's CSP forbids eval'd waits)
    assert not [r for r in p.requests if "api/similar" in r]
    assert p.errors == []
    p.close()
