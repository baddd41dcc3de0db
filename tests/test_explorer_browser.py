"""The explorer as an analysis tool (issue 16), in real headless Chromium against a real server
and the self-contained export: every conversation reachable, real search, state in the URL,
numbers under filters, keyboard and screen reader (axe-core), phones, the map, Trends.

Uses the W&B run of tests/web_runs.py (560 real conversations with real LLM summaries and
topic names) and kiku's own offline run (conftest's ``small_run``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import web_runs
from kiku.web import RunData, export_html, running_server
from test_ui_browser import Page, click_point, sync_api

pytestmark = pytest.mark.timeout(300)
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_runs.write_wandb_run(tmp_path_factory.mktemp("explorer") / "wandb", llm=True)


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_runs.write_wandb_run(tmp_path_factory.mktemp("explorer") / "offline", llm=False)


@pytest.fixture(scope="module")
def served(run_dir: Path):
    with running_server(run_dir) as url:
        yield url


@pytest.fixture(scope="module")
def exported(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return export_html(run_dir, tmp_path_factory.mktemp("explorer") / "report.html").as_uri()


@pytest.fixture(scope="module")
def texts(run_dir: Path) -> list[str]:
    """Every conversation's full searchable text (all messages, request, summary), lowercased, bundle order."""
    run = RunData(run_dir)
    return [" ".join([m["content"] for m in c["messages"]] + [c["facets"].get("request") or "", c["facets"].get("summary") or ""]).lower()
            for c in run.all_conversations()]


@pytest.fixture(scope="module")
def export_texts(run_dir: Path) -> list[str]:
    """The same, as the export keeps it (messages clipped to the export's limits, request to 240 characters)."""
    from kiku.web.export import (
        DEFAULT_MAX_CONVERSATION_CHARS,
        DEFAULT_MAX_MESSAGE_CHARS,
        DEFAULT_MAX_REPLY_CHARS,
        EXPORT_REQUEST_CHARS,
    )

    run = RunData(run_dir)
    kept = run.all_conversations(DEFAULT_MAX_MESSAGE_CHARS, DEFAULT_MAX_CONVERSATION_CHARS, DEFAULT_MAX_REPLY_CHARS)
    return [" ".join([m["content"] for m in c["messages"]] + [(c["facets"].get("request") or "")[:EXPORT_REQUEST_CHARS], c["facets"].get("summary") or ""]).lower()
            for c in kept]


def searched(request: pytest.FixtureRequest, kind: str) -> list[str]:
    """What a search in this kind of page reads: the whole run when served, the kept text in the export."""
    return request.getfixturevalue("texts" if kind == "served" else "export_texts")


def where(request: pytest.FixtureRequest, kind: str) -> str:
    return request.getfixturevalue("served" if kind == "served" else "exported")


def open_page(browser, url: str, viewport: dict | None = None, **kw) -> Page:
    p = Page(browser, **kw)
    if viewport:
        p.page.set_viewport_size(viewport)
    p.open(url)
    return p


def top_row(p: Page, cluster_id: str):
    return p.page.locator(f'#tree .node[data-cluster="{cluster_id}"]')


def add_filter(p: Page, key: str, value: str) -> None:
    """Add a filter through the two selects and the Add button, as a user does."""
    p.page.select_option("#filter-facet", key)
    index = p.eval("([k, v]) => kiku.state.facets.find(f => f.key === k).values.indexOf(v)", [key, value])
    p.page.select_option("#filter-value", str(index))
    p.page.click("#filter-add")


def show_all(p: Page) -> int:
    """Press "Show more" until the list is complete; returns the number of cards."""
    while p.page.locator("#list-more").count():
        p.page.click("#list-more")
    return p.page.locator("#examples .example").count()


# ---------------------------------------------------------------------------- 1. reach
@pytest.mark.parametrize("kind", ["served", "export"])
def test_every_conversation_of_a_topic_and_of_a_search_is_reachable(browser, request, run_dir: Path, kind: str) -> None:
    bundle = RunData(run_dir).bundle()
    texts = searched(request, kind)
    p = open_page(browser, where(request, kind))
    biggest = max((c for c in bundle["clusters"] if c["level"] == 1), key=lambda c: c["size"])
    top_row(p, biggest["id"]).click()
    assert p.page.locator("#list-count").inner_text() == f"Showing 25 of {biggest['size']}"
    assert show_all(p) == biggest["size"] > 100
    ids = p.eval("[...document.querySelectorAll('#examples .example')].map(e => e.dataset.conversation)")
    k = bundle["clusters"].index(biggest)
    assert sorted(ids) == sorted(i for i, a in zip(bundle["ids"], bundle["assign"]["1"]) if a == k)
    # sorted newest first: the dates shown are in order
    p.page.select_option("#list-sort", "newest")
    days = [t.split(" · ")[-1] for t in p.page.locator("#examples .ex-meta").all_inner_texts()]
    assert days == sorted(days, reverse=True) and len(days) == 25
    # a search lists all its matches, page by page
    p.page.locator(".crumbs button").first.click()
    p.page.fill("#search", "artifact")
    want = sum("artifact" in t for t in texts)
    sync_api.expect(p.page.locator("#search-count")).to_have_text(f"{want} matches")
    assert show_all(p) == want > 25
    # clicking a point on the map opens that very conversation
    index = 123
    click_point(p, index)
    p.page.wait_for_selector("#messages .msg")
    assert p.eval("kiku.state.convId") == bundle["ids"][index]
    assert p.errors == []
    p.close()


# ---------------------------------------------------------------------------- 2. search
@pytest.mark.parametrize("kind", ["served", "export"])
def test_search_matches_all_words_in_any_order_over_whole_conversations(browser, request, kind: str) -> None:
    texts = searched(request, kind)
    p = open_page(browser, where(request, kind))
    want = sum(1 for t in texts if "sweep" in t and "config" in t)
    openings = RunData(request.getfixturevalue("run_dir")).bundle()["text"]["request"]
    assert want > sum(1 for r in openings if "sweep" in r.lower() and "config" in r.lower())  # not just the opening request
    for query in ("sweep config", "Config,  SWEEP"):
        p.page.fill("#search", query)
        sync_api.expect(p.page.locator("#search-count")).to_have_text(f"{want} matches")
    assert p.eval("kiku.state.nSearch") == want
    # every card shows where it matched: a snippet with the words marked
    p.page.wait_for_selector("#examples .example[data-snippet] .ex-snippet mark")
    snippets = p.page.locator("#examples .ex-snippet").all_inner_texts()
    assert len(snippets) == 25 and all(re.search("sweep|config", s, re.I) for s in snippets)
    # the tree badges count matches per topic and add up
    badges = [int(t.replace(",", "")) for t in p.page.locator("#tree > .tree-item > .node .badge").all_inner_texts()]
    assert sum(badges) == want
    p.page.fill("#search", "zzqx sweep")
    sync_api.expect(p.page.locator("#search-count")).to_have_text("0 matches")
    assert "Nothing here matches" in p.page.locator("#examples").inner_text()
    assert "summaries" in p.page.locator("#search").get_attribute("placeholder") or kind == "export"
    assert p.errors == []
    p.close()


def test_search_placeholder_is_honest_without_summaries(browser, offline_run: Path) -> None:
    with running_server(offline_run) as url:
        p = open_page(browser, url)
        placeholder = p.page.locator("#search").get_attribute("placeholder")
        assert "summar" not in placeholder and "messages" in placeholder
        p.close()


def test_server_search_api_pages_rows_and_snippets(served: str, texts: list[str]) -> None:
    import httpx

    rows = httpx.get(served + "api/search/rows", params={"q": "python error"}).json()
    assert rows["tokens"] == ["python", "error"]
    assert rows["rows"] == [i for i, t in enumerate(texts) if "python" in t and "error" in t] and rows["total"] > 0
    snippets = httpx.get(served + "api/search/snippets", params={"q": "python error", "rows": ",".join(map(str, rows["rows"][:5]))}).json()
    assert [s["row"] for s in snippets["items"]] == rows["rows"][:5]
    assert all(re.search("python|error", s["snippet"], re.I) for s in snippets["items"])
    assert httpx.get(served + "api/search/snippets", params={"q": "x", "rows": "1,a"}).status_code == 422


# ---------------------------------------------------------------------------- 5. URL state
@pytest.mark.parametrize("kind", ["served", "export"])
def test_state_is_in_the_url_reload_restores_it_and_back_walks_it(browser, request, run_dir: Path, kind: str) -> None:
    bundle = RunData(run_dir).bundle()
    url = where(request, kind)
    p = open_page(browser, url)
    topic = next(c for c in bundle["clusters"] if c["level"] == 0 and c["size"] > 10)
    top_row(p, topic["parent"]).locator(".caret").click()
    top_row(p, topic["id"]).click()
    add_filter(p, "meta.channel", "docs")
    p.page.fill("#search", "run")
    sync_api.expect(p.page.locator("#search-count")).to_contain_text("matches")
    p.page.wait_for_timeout(400)  # the search is written to the URL after a short pause
    p.page.locator("#examples .example").first.click()
    p.page.wait_for_selector("#messages .msg")
    conv = p.eval("kiku.state.convId")
    state = p.eval("location.hash")
    assert f"topic={topic['id']}" in state and "f=meta.channel%3Adocs" in state and "q=run" in state and "conv=" in state
    p.page.reload()
    p.page.wait_for_selector("body[data-ready='1']")
    p.page.wait_for_selector("#messages .msg")
    assert p.eval("[kiku.state.convId, kiku.state.clusters[kiku.state.selected].id, kiku.state.filters.length, kiku.state.query]") == [conv, topic["id"], 1, "run"]
    assert p.page.locator(".chip").inner_text().startswith("Channel: docs") and p.page.input_value("#search") == "run"
    # back: the conversation closes, the topic stays; back again: the filter's search state
    p.page.go_back()
    p.page.wait_for_selector("#topic-title")
    assert p.eval("kiku.state.convId") is None and p.page.locator("#topic-title").inner_text() == topic["name"]
    p.page.go_forward()
    p.page.wait_for_selector("#messages .msg")
    assert p.eval("kiku.state.convId") == conv
    p.close()
    # a link can point at a topic (and the Trends tab)
    q = open_page(browser, url + f"#topic={topic['parent']}&tab=trends")
    assert q.page.locator("#topic-title").inner_text() == next(c["name"] for c in bundle["clusters"] if c["id"] == topic["parent"])
    assert q.page.locator("#tab-trends").get_attribute("aria-selected") == "true" and q.page.locator("#trends-view").is_visible()
    assert q.errors == [] and p.errors == []
    q.close()


# ---------------------------------------------------------------------------- 7. numbers under a filter
def test_shares_agree_under_a_filter_and_the_selects_follow(browser, served: str, run_dir: Path) -> None:
    bundle = RunData(run_dir).bundle()
    p = open_page(browser, served)
    add_filter(p, "meta.channel", "slack")
    # the selects show no filter once it is added
    assert p.page.input_value("#filter-facet") == "" and p.page.locator("#filter-value").is_disabled()
    n_active = p.eval("kiku.state.nActive")
    channel = next(f for f in bundle["facets"] if f["key"] == "meta.channel")
    assert n_active == sum(1 for c in channel["codes"] if c == channel["values"].index("slack")) > 0
    assert p.page.locator("#tree-share").inner_text() == f"Shares of the {n_active} matching the filters"
    row = p.page.locator("#tree > .tree-item > .node").first
    count, share = row.locator(".node-meta").inner_text().split(" · ")[:2]
    row.click()
    stats = p.page.locator(".details-panel .stat")
    assert stats.nth(0).locator(".v").inner_text() == count
    assert stats.nth(1).locator(".v").inner_text() == share.strip()
    assert stats.nth(1).locator(".k").inner_text().lower() == f"of the {n_active} matching"
    assert round(int(count) / n_active * 100) == int(share.strip().rstrip("%"))
    p.page.locator(".chip button").click()
    assert p.page.locator(".chip").count() == 0 and p.page.input_value("#filter-facet") == ""
    assert p.page.locator("#tree-share").inner_text() == "Shares of all 560"
    p.close()


# ---------------------------------------------------------------------------- 6. keyboard, screen reader
def axe_serious(p: Page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(p.page)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_any_view(browser, served: str, scheme: str) -> None:
    p = open_page(browser, served, color_scheme=scheme)
    found = {"overview": axe_serious(p)}
    p.page.locator("#tree > .tree-item > .node").first.click()
    found["topic"] = axe_serious(p)
    p.page.fill("#search", "sweep")
    p.page.wait_for_selector("#examples .example[data-snippet]")
    found["search"] = axe_serious(p)
    p.page.locator("#examples .example").first.click()
    p.page.wait_for_selector("#messages .msg")
    found["conversation"] = axe_serious(p)
    p.page.click("#tab-trends")
    found["trends"] = axe_serious(p)
    assert found == {k: [] for k in found}
    p.close()


def test_tree_walks_with_arrows_and_focus_stays_where_the_user_is(browser, served: str, run_dir: Path) -> None:
    bundle = RunData(run_dir).bundle()
    p = open_page(browser, served)
    rows = p.page.locator("#tree .node")
    assert p.eval("[...document.querySelectorAll('#tree .node')].filter(n => n.tabIndex === 0).length") == 1
    rows.first.focus()
    focused = lambda: p.eval("document.activeElement.dataset.cluster")  # noqa: E731
    first = focused()
    p.page.keyboard.press("ArrowDown")
    second = focused()
    assert second != first and second == rows.nth(1).get_attribute("data-cluster")
    p.page.keyboard.press("ArrowRight")  # opens the topic, focus stays on it
    assert focused() == second and rows.nth(1).get_attribute("aria-expanded") == "true"
    p.page.keyboard.press("ArrowRight")  # enters its first child
    child = focused()
    assert next(c for c in bundle["clusters"] if c["id"] == child)["parent"] == second
    p.page.keyboard.press("Enter")  # selects it; the tree re-renders and focus is still there
    assert p.page.locator("#topic-title").inner_text() == next(c["name"] for c in bundle["clusters"] if c["id"] == child)
    assert focused() == child
    # announced for screen readers (the page's CSP forbids wait_for_function's eval: poll the locator)
    sync_api.expect(p.page.locator("#announce")).not_to_have_text("")
    p.page.keyboard.press("ArrowLeft")  # back to the parent
    assert focused() == second
    # facet bars and subtopic rows are buttons; a filter from the keyboard keeps focus in the panel
    bar = p.page.locator(".details-panel .dist-row").first
    bar.focus()
    p.page.keyboard.press("Enter")
    assert p.page.locator(".chip").count() == 1
    assert p.eval("document.activeElement.closest('#details, #chips, .filterbar') !== null")
    # Esc closes a conversation, focus goes back to the card it came from
    card = p.page.locator("#examples .example").first
    cid = card.get_attribute("data-conversation")
    card.focus()
    p.page.keyboard.press("Enter")
    p.page.wait_for_selector("#messages .msg")
    assert p.eval("document.activeElement.id") == "conversation-title"
    p.page.keyboard.press("Escape")
    assert p.eval("document.activeElement.dataset.conversation") == cid
    # the details panel itself is not a live region: only #announce is
    assert p.page.locator("#details").get_attribute("aria-live") is None
    assert p.page.locator("[aria-live]").count() == 1
    assert p.errors == []
    p.close()


# ---------------------------------------------------------------------------- 3. phones
@pytest.mark.parametrize("kind", ["served", "export"])
def test_phone_layout_fits_390px_and_pinch_zooms(browser, request, kind: str) -> None:
    p = Page(browser)
    p.context.close()
    p.context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    p.page = p.context.new_page()
    p.errors = []
    p.page.on("pageerror", lambda e: p.errors.append(str(e)))
    p.open(where(request, kind))
    assert p.eval("document.documentElement.scrollWidth") <= PHONE["width"]
    for sel in ["#theme-btn", "#search", "#search-count"] + (["#export-btn"] if kind == "served" else []):
        box = p.page.locator(sel).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], sel
    # the details panel is not clipped: it grows with its content, the page scrolls
    details = p.page.locator("#details")
    assert details.evaluate("e => e.scrollHeight <= e.clientHeight + 1")
    p.page.locator("#tree > .tree-item > .node").first.tap()
    assert p.eval("document.documentElement.scrollWidth") <= PHONE["width"]
    # a tap on a point opens it and leaves no tooltip behind
    p.page.locator("#map").scroll_into_view_if_needed()
    x, y = p.eval("i => [kiku.toScreenX(kiku.state.X[i]), kiku.toScreenY(kiku.state.Y[i])]", 40)
    box = p.page.locator("#map").bounding_box()
    p.page.touchscreen.tap(box["x"] + x, box["y"] + y)
    p.page.wait_for_selector("#messages .msg")
    assert p.page.locator("#tooltip").is_hidden()
    assert p.page.locator("#conversation-title").evaluate("e => e.getBoundingClientRect().top >= 0 && e.getBoundingClientRect().top < innerHeight")
    p.page.locator("#map").scroll_into_view_if_needed()
    box = p.page.locator("#map").bounding_box()
    assert p.eval("document.documentElement.scrollWidth") <= PHONE["width"]
    # pinch with two fingers zooms the map
    cdp = p.context.new_cdp_session(p.page)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    k0 = p.eval("kiku.map.k")
    def touch(kind_: str, d: float) -> None:
        points = [] if kind_ == "touchEnd" else [{"x": cx - d, "y": cy, "id": 0}, {"x": cx + d, "y": cy, "id": 1}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind_, "touchPoints": points})
    touch("touchStart", 20)
    for d in (30, 45, 60, 80):
        touch("touchMove", d)
    touch("touchEnd", 0)
    assert p.eval("kiku.map.k") > k0 * 2.5
    p.shot(f"11-phone-{kind}")
    assert p.errors == []
    p.close()


# ---------------------------------------------------------------------------- 4. the map
def test_map_colours_names_and_region_selection(browser, served: str, run_dir: Path) -> None:
    bundle = RunData(run_dir).bundle()
    p = open_page(browser, served)
    tops = [c for c in bundle["clusters"] if c["level"] == 1]
    # every top-level topic is named on the map (moved, not dropped) and no two names overlap
    names = p.eval("kiku.map.labels")
    assert {n["id"] for n in names} == {c["id"] for c in tops}
    boxes = [n["box"] for n in names]
    assert not any(a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
                   for k, a in enumerate(boxes) for b in boxes[k + 1:])
    # each name sits on its topic: the conversation nearest to the anchor belongs to it
    for c in tops:
        k = bundle["clusters"].index(c)
        nearest = p.eval("k => { const c = kiku.state.clusters[k]; let b = -1, d = Infinity; const S = kiku.state;"
                         " for (let i = 0; i < S.n; i++) { const e = (S.X[i] - c._x) ** 2 + (S.Y[i] - c._y) ** 2; if (e < d) { d = e; b = i; } } return b; }", k)
        assert bundle["assign"]["1"][nearest] == k, c["name"]
    # zoomed in, the base topics are named too
    for _ in range(3):
        p.page.click("#zoom-in")
    p.page.wait_for_timeout(100)
    zoomed = p.eval("kiku.map.labels")
    assert sum(n["level"] == 0 for n in zoomed) >= 5
    p.page.click("#zoom-reset")
    # the subtopics of a selected topic get distinct colours (tree swatches, legend, Trends)
    biggest = max(tops, key=lambda c: c["size"])
    top_row(p, biggest["id"]).click()  # the default colouring follows the selection
    kids = [c for c in bundle["clusters"] if c["parent"] == biggest["id"]]
    swatches = p.page.locator("#legend .legend-item .swatch").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(swatches) == min(12, len(kids)) and len(set(swatches)) == len(swatches)
    # colour by a facet; its legend filters on click
    p.page.locator(".crumbs button").first.click()
    p.page.select_option("#color-by", "meta.channel")
    legend = p.page.locator("#legend .legend-item")
    assert legend.all_inner_texts() == next(f for f in bundle["facets"] if f["key"] == "meta.channel")["values"]
    legend.nth(0).click()
    assert p.page.locator(".chip").count() == 1 and "color=meta.channel" in p.eval("location.hash")
    p.page.locator(".chip button").click()
    # the default view fits the main mass: the middle 98% of points spans most of the canvas
    spread = p.eval("""() => { const S = kiku.state, xs = [], ys = [];
        for (let i = 0; i < S.n; i++) { xs.push(kiku.toScreenX(S.X[i])); ys.push(kiku.toScreenY(S.Y[i])); }
        xs.sort((a, b) => a - b); ys.sort((a, b) => a - b); const q = (a, f) => a[Math.floor(f * (a.length - 1))];
        return [(q(xs, .99) - q(xs, .01)) / kiku.map.w, (q(ys, .99) - q(ys, .01)) / kiku.map.h]; }""")
    assert max(spread) > 0.75 and min(spread) > 0.3
    # shift-drag selects a region: the list and the facets follow
    box = p.page.locator("#map").bounding_box()
    x0, y0, x1, y1 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3, box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6
    want = p.eval("b => { const S = kiku.state; let k = 0; for (let i = 0; i < S.n; i++) { const x = kiku.toScreenX(S.X[i]), y = kiku.toScreenY(S.Y[i]);"
                  " if (x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]) k++; } return k; }",
                  [x0 - box["x"], y0 - box["y"], x1 - box["x"], y1 - box["y"]])
    assert want > 0
    p.page.keyboard.down("Shift")
    p.page.mouse.move(x0, y0)
    p.page.mouse.down()
    p.page.mouse.move(x1, y1, steps=6)
    p.page.mouse.up()
    p.page.keyboard.up("Shift")
    assert abs(p.eval("kiku.state.nRegion") - want) <= 1
    # the selection narrows every number, like a filter: the tree counts add up to it
    assert sum(int(t.replace(",", "")) for t in p.page.locator("#tree > .tree-item > .node .node-meta b").all_inner_texts()) == p.eval("kiku.state.nRegion")
    assert p.page.locator("#region-note").inner_text().startswith(f"Map selection: {p.eval('kiku.state.nRegion')} conversation")
    assert p.page.locator("#list-count").inner_text().endswith(f"of {p.eval('kiku.state.nRegion')}")
    p.shot("12-region")
    p.page.keyboard.press("Escape")
    assert p.eval("kiku.state.region") is None
    assert p.errors == []
    p.close()


def test_a_real_run_names_topics_and_knows_unknown_languages(browser, request: pytest.FixtureRequest) -> None:
    run = request.getfixturevalue("small_run")
    bundle = RunData(run.path).bundle()
    language = next(f for f in bundle["facets"] if f["key"] == "language")
    assert "unknown" in language["values"] and "la" not in language["values"]
    with running_server(run.path) as url:
        p = open_page(browser, url)
        tops = {c["id"] for c in bundle["clusters"] if c["parent"] is None and c["size"]}
        assert {n["id"] for n in p.eval("kiku.map.labels")} >= tops
        assert p.errors == []
        p.close()


# ---------------------------------------------------------------------------- 8. trends
@pytest.mark.parametrize("kind", ["served", "export"])
def test_trends_shares_hover_legend_and_search(browser, request, kind: str) -> None:
    texts = searched(request, kind)
    p = open_page(browser, where(request, kind))
    p.page.click("#tab-trends")
    count_lines = p.eval("kiku.map.trend.lines.length")
    last = p.eval("kiku.map.trend.nb")
    assert last > 1 and p.eval("kiku.map.trendTicks")[-1] == last - 1  # the last date is labelled
    p.page.click("#trend-share")
    assert "Share of all conversations" in p.page.locator("#trends-note").inner_text()
    # in each bin the shares of the series add up to 1 (the "Other" line included)
    sums = p.eval("(() => { const T = kiku.map.trend; return Array.from({length: T.nb}, (_, b) => T.totals[b] ? T.lines.reduce((s, l) => s + l.v[b], 0) : 1); })()")
    assert all(abs(s - 1) < 1e-9 for s in sums)
    # hover: a tooltip with every series' value at that date
    box = p.page.locator("#trends").bounding_box()
    p.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    tip = p.page.locator("#trends-tip")
    assert tip.is_visible() and tip.locator(".tt-row").count() == count_lines and "%" in tip.inner_text()
    # the legend hides and shows a series
    item = p.page.locator("#trends-legend .legend-item").first
    item.click()
    assert p.eval("kiku.map.trend.lines.length") == count_lines - 1
    assert p.page.locator("#trends-legend .legend-item").first.get_attribute("aria-pressed") == "false"
    p.page.locator("#trends-legend .legend-item").first.click()
    # Trends follow the search
    p.page.click("#trend-count")
    p.page.fill("#search", "sweep")
    want = sum("sweep" in t for t in texts)
    sync_api.expect(p.page.locator("#search-count")).to_have_text(f"{want} matches")
    assert p.eval("Array.from(kiku.map.trend.totals).reduce((a, b) => a + b, 0)") == want
    assert "search “sweep”" in p.page.locator("#trends-note").inner_text()
    p.shot(f"13-trends-{kind}")
    assert p.errors == []
    p.close()


# ---------------------------------------------------------------------------- 9. facets that tell nothing
def test_facets_with_one_value_are_folded(browser, offline_run: Path) -> None:
    with running_server(offline_run) as url:
        p = open_page(browser, url)
        same = p.page.locator(".facet-same").all_inner_texts()
        assert any(t.startswith("Messages: always 1") for t in same)
        assert p.page.locator('.facet-same[data-facet="messages"] .dist-row').count() == 0
        options = p.page.locator("#filter-facet option").all_inner_texts()
        assert "Messages" not in options and "Programming languages" in options
        p.close()


# ---------------------------------------------------------------------------- 10. the export
def test_export_works_offline_and_searches_its_conversations(browser, run_dir: Path, tmp_path: Path) -> None:
    out = export_html(run_dir, tmp_path / "r.html")
    p = Page(browser)
    p.context.route(re.compile(r"^https?://"), lambda route: route.abort())
    p.open(out.as_uri())
    p.page.fill("#search", "artifact")
    sync_api.expect(p.page.locator("#search-count")).to_contain_text("matches")
    p.page.locator("#examples .example").first.click()
    p.page.wait_for_selector("#messages .msg")
    assert [t for t in p.requests if not t.startswith("file:")] == []
    assert p.errors == []
    p.close()


# ---------------------------------------------------------------------------- plug-in points for new views
def test_a_new_view_plugs_in_with_its_tab_url_and_updates(browser, served: str, run_dir: Path) -> None:
    bundle = RunData(run_dir).bundle()
    p = open_page(browser, served)
    p.eval("""() => { window.__updates = 0; kiku.registerView({ id: "probe", label: "Probe",
        mount(box) { box.textContent = "probe view"; }, show() { window.__shown = true; }, update() { window.__updates++; } }); }""")
    p.page.click("#tab-probe")
    assert p.page.locator("#probe-view").inner_text() == "probe view" and p.page.locator("#map-view").is_hidden()
    assert p.eval("window.__shown") is True and "tab=probe" in p.eval("location.hash")
    top = next(c for c in bundle["clusters"] if c["level"] == 1)
    top_row(p, top["id"]).click()
    assert p.eval("window.__updates") >= 1
    p.page.click("#tab-map")
    assert p.page.locator("#probe-view").is_hidden() and "tab=" not in p.eval("location.hash")
    assert p.errors == []
    p.close()


def test_route_modules_add_api_routes_behind_the_same_protections(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import httpx

    from kiku.web import server

    (tmp_path / "kiku_probe_routes.py").write_text(
        "def add_routes(app, run):\n"
        "    @app.get('/api/probe')\n"
        "    def probe():\n"
        "        return {'n': run.bundle()['n']}\n"
        "    @app.post('/api/probe')\n"
        "    def probe_write(body: dict):\n"
        "        return {'ok': True}\n", encoding="utf-8")
    (tmp_path / "kiku_probe_router.py").write_text(
        "from fastapi import APIRouter, Request\n"
        "router = APIRouter()\n"
        "@router.get('/api/probe2')\n"
        "def probe2(request: Request):\n"
        "    return {'name': request.app.state.run.run_dir.name}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(server, "ROUTE_MODULES", ["kiku_probe_routes", "kiku_probe_router", "kiku_not_installed_routes"])
    try:
        with running_server(run_dir) as url:
            res = httpx.get(url + "api/probe")
            assert res.json() == {"n": 560} and res.headers["x-frame-options"] == "DENY"
            assert httpx.get(url + "api/probe", headers={"Host": "evil.example"}).status_code == 400
            assert httpx.post(url + "api/probe", json={}, headers={"Origin": "http://evil.example"}).status_code == 403
            assert httpx.post(url + "api/probe", json={}).json() == {"ok": True}
            assert httpx.get(url + "api/probe2").json() == {"name": run_dir.name}
    finally:
        sys.modules.pop("kiku_probe_routes", None)
        sys.modules.pop("kiku_probe_router", None)
