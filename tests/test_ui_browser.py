"""The explorer in a real headless Chromium: served UI and the self-contained export.

Needs Debian's chromium (``apt-get install -y chromium``) and the ``playwright`` Python
package (its bundled driver only; browsers are never downloaded). Screenshots go to
tests/artifacts/; with KIKU_SCREENSHOTS=1 the README ones are refreshed in docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

import web_runs
from browsers import CHROMIUM
from kiku.web import RunData, export_html, running_server

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
README_SHOTS = ROOT / "docs" / "screenshots"

pytestmark = pytest.mark.timeout(300)

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)
# playwright is in the test extra: without it this module fails to import (never a silent skip)
from playwright import sync_api  # noqa: E402

# A payload that runs would set window.__pwned or call alert(); the init script records both.
TRAP = """
window.__alerts = [];
for (const name of ['alert', 'confirm', 'prompt']) {
  const original = window[name];
  window[name] = function (...args) { window.__alerts.push(name + ':' + args.join(' ')); };
}
"""


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_runs.write_wandb_run(tmp_path_factory.mktemp("ui") / "wandb-llm", llm=True, hostile=True)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_runs.write_wandb_run(tmp_path_factory.mktemp("ui") / "wandb-docs-queries", llm=True)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_runs.write_wandb_run(tmp_path_factory.mktemp("ui") / "wandb-offline", llm=False)


class Page:
    """A page with its console errors, dialogs and every request it made recorded."""

    def __init__(self, browser, color_scheme: str = "light") -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=color_scheme,
                                           accept_downloads=True)
        self.context.add_init_script(TRAP)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=20000)

    def shot(self, name: str, readme: bool = False) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        if readme and os.environ.get("KIKU_SCREENSHOTS"):
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, README_SHOTS / f"{name}.png")
        return path

    def eval(self, js: str, arg=None):
        return self.page.evaluate(js, arg)

    def close(self) -> None:
        self.context.close()


def root_counts(p: Page) -> dict[str, int]:
    rows = p.page.locator("#tree > .tree-item > .node")
    out = {}
    for k in range(rows.count()):
        row = rows.nth(k)
        out[row.get_attribute("data-cluster")] = int(row.locator(".node-meta b").inner_text().replace(",", ""))
    return out


def click_point(p: Page, index: int) -> None:
    """Click conversation ``index``'s dot on the map at its real screen position."""
    x, y = p.eval("i => [kiku.toScreenX(kiku.state.X[i]), kiku.toScreenY(kiku.state.Y[i])]", index)
    box = p.page.locator("#map").bounding_box()
    p.page.mouse.click(box["x"] + x, box["y"] + y)


def assert_nothing_ran(p: Page) -> None:
    assert p.eval("window.__pwned") is None
    assert p.eval("window.__alerts") == [] and p.dialogs == []
    assert p.eval("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert p.eval("document.querySelectorAll('a[href^=\"javascript\" i]').length") == 0
    assert p.eval("[...document.scripts].filter(s => /__pwned/.test(s.textContent) && s.type !== 'application/json').length") == 0


def test_served_explorer_end_to_end(browser, clean_run: Path, tmp_path: Path) -> None:
    run = RunData(clean_run)
    bundle = run.bundle()
    with running_server(clean_run) as url:
        p = Page(browser)
        p.open(url)
        origin = url.rstrip("/")
        # topic tree: every top-level topic, counts add up to the run
        counts = root_counts(p)
        tops = [c for c in bundle["clusters"] if c["level"] == 1]
        assert counts == {c["id"]: c["size"] for c in tops}
        assert sum(counts.values()) == 560
        assert p.page.locator("#run-stats").inner_text().startswith("560 conversations")
        p.shot("01-overview", readme=True)

        # expand the largest topic: its children appear with their counts
        biggest = max(tops, key=lambda c: c["size"])
        p.page.locator(f'#tree > .tree-item > .node[data-cluster="{biggest["id"]}"] .caret').click()
        kids = [c for c in bundle["clusters"] if c["parent"] == biggest["id"]]
        child_rows = p.page.locator(".children .node")
        assert child_rows.count() == len(kids)
        sizes = [int(child_rows.nth(k).locator(".node-meta b").inner_text()) for k in range(child_rows.count())]
        assert sizes == sorted(sizes, reverse=True) and sum(sizes) == biggest["size"]

        # sort by name, then back to size
        p.page.click("#tree-sort")
        names = [n.lower() for n in p.page.locator("#tree > .tree-item > .node .node-name").all_inner_texts()]
        assert names == sorted(names)
        p.page.click("#tree-sort")

        # hover a point: the tooltip names its topic path; drag pans the map
        index = next(i for i in range(bundle["n"]) if bundle["assign"]["1"][i] >= 0 and i > 20)
        topic = bundle["clusters"][bundle["assign"]["1"][index]]
        x, y = p.eval("i => [kiku.toScreenX(kiku.state.X[i]), kiku.toScreenY(kiku.state.Y[i])]", index)
        box = p.page.locator("#map").bounding_box()
        p.page.mouse.move(box["x"] + x, box["y"] + y)
        hovered = p.page.locator("#tooltip").get_attribute("data-conversation")
        i_hovered = bundle["ids"].index(hovered)
        base_name = bundle["clusters"][bundle["assign"]["0"][i_hovered]]["name"]
        assert p.page.locator("#tooltip .tt-topic").inner_text() == base_name
        assert p.page.locator("#tooltip .tt-path").inner_text() == bundle["clusters"][bundle["assign"]["1"][i_hovered]]["name"]
        before = p.eval("[kiku.map.cx, kiku.map.cy]")
        p.page.mouse.move(box["x"] + 40, box["y"] + 40)
        p.page.mouse.down()
        p.page.mouse.move(box["x"] + 140, box["y"] + 90, steps=5)
        p.page.mouse.up()
        after = p.eval("[kiku.map.cx, kiku.map.cy]")
        assert after[0] < before[0] and after[1] > before[1]  # dragged right/down = view moved left/up
        assert p.eval("kiku.state.selected") == -1  # a drag is not a click
        p.page.click("#zoom-reset")

        # click a point on the map: that conversation opens, its top-level topic is selected and the tree follows
        click_point(p, index)
        p.page.wait_for_selector("#messages .msg")
        assert p.eval("kiku.state.convId") == bundle["ids"][index]
        assert p.page.locator(".node.selected").get_attribute("data-cluster") == topic["id"]
        p.page.keyboard.press("Escape")  # Esc closes the conversation, back to the topic
        assert p.page.locator("#topic-title").inner_text() == topic["name"]
        # zoomed in, a click selects the base topic; the tree opens down to it
        for _ in range(4):
            p.page.click("#zoom-in")
        p.page.wait_for_timeout(50)
        base = bundle["clusters"][bundle["assign"]["0"][index]]
        p.eval("i => { const M = kiku.map; M.cx = kiku.state.X[i]; M.cy = kiku.state.Y[i]; }", index)
        p.page.wait_for_timeout(50)
        click_point(p, index)
        p.page.wait_for_selector("#messages .msg")
        assert p.page.locator(".node.selected").get_attribute("data-cluster") == base["id"]
        p.page.click("#back-btn")
        assert p.page.locator("#topic-title").inner_text() == base["name"]
        assert p.page.locator(".details-panel .facet-block").count() >= 5
        assert p.page.locator(".details-panel .tag").count() == len(base["keyphrases"])
        p.page.click("#zoom-reset")
        p.page.mouse.move(5, 5)
        p.shot("02-topic-details", readme=True)

        # open a conversation: messages with roles, facets, metadata
        p.page.locator(".details-panel .example").first.click()
        p.page.wait_for_selector("#messages .msg")
        cid = p.page.locator("#conversation-metadata").inner_text()
        assert "query_id" in cid
        conv_id = p.eval("kiku.state.convId")
        conv = run.conversation(conv_id)
        assert p.page.locator("#messages .msg").count() == len(conv["messages"])
        assert p.page.locator("#messages .msg-head span").first.inner_text().lower() == conv["messages"][0]["role"]
        assert p.page.locator(".summary").inner_text() == conv["facets"]["summary"]
        p.shot("03-conversation", readme=True)
        p.page.click("#back-btn")

        # filter by a metadata value: tree counts, details and map follow
        p.page.select_option("#filter-facet", "meta.channel")
        facet = next(f for f in bundle["facets"] if f["key"] == "meta.channel")
        docs = facet["values"].index("docs")
        p.page.select_option("#filter-value", str(docs))
        p.page.click("#filter-add")
        expected = sum(1 for c in facet["codes"] if c == docs)
        assert p.page.locator(".chip").count() == 1
        assert sum(root_counts(p).values()) == expected
        assert p.page.locator("#filter-count").inner_text().startswith(f"{expected} of 560")
        # and by date range (inclusive days, UTC)
        p.page.fill("#date-from", "2025-04-01")
        p.page.fill("#date-to", "2025-04-30")
        p.page.dispatch_event("#date-to", "change")
        lo = datetime(2025, 4, 1, tzinfo=UTC).timestamp() * 1000
        hi = datetime(2025, 5, 1, tzinfo=UTC).timestamp() * 1000
        expected_dates = sum(1 for c, t in zip(facet["codes"], bundle["time"]) if c == docs and lo <= t < hi)
        assert 0 < expected_dates < expected
        assert sum(root_counts(p).values()) == expected_dates
        p.shot("04-filtered")
        # clicking a distribution bar adds a filter too
        p.page.locator('.facet-block[data-facet="concern"] .dist-row').first.click()
        assert p.page.locator(".chip").count() == 2
        for _ in range(2):
            p.page.locator(".chip button").first.click()
        p.page.fill("#date-from", "")
        p.page.fill("#date-to", "")
        p.page.dispatch_event("#date-to", "change")
        assert sum(root_counts(p).values()) == 560
        p.page.locator(".details-panel .crumbs button").first.click()  # back to all topics
        assert p.page.locator("#topic-title").inner_text() == "All conversations"

        # full-text search: every message, request and summary; the count matches, matches ringed on the map
        p.page.fill("#search", "sweep")
        texts = [" ".join([m["content"] for m in c["messages"]] + [c["facets"].get("request") or "", c["facets"].get("summary") or ""]).lower()
                 for c in run.all_conversations()]
        want = sum(1 for t in texts if "sweep" in t)
        assert want > sum(1 for r, s in zip(bundle["text"]["request"], bundle["text"]["summary"]) if "sweep" in (r + (s or "")).lower()) > 0
        sync_api.expect(p.page.locator("#search-count")).to_have_text(f"{want} matches")
        assert p.eval("kiku.state.nSearch") == want
        assert p.page.locator("#search-results mark").count() > 0
        p.shot("05-search")

        # trends over time, dark mode
        p.page.click("#tab-trends")
        assert "per week" in p.page.locator("#trends-note").inner_text()
        p.page.fill("#search", "")
        p.page.click("#theme-btn")
        assert p.eval("document.documentElement.dataset.theme") == "dark"
        p.shot("06-trends-dark")
        p.page.click("#tab-map")
        p.page.locator(f'#tree > .tree-item > .node[data-cluster="{biggest["id"]}"]').click()
        p.shot("07-dark", readme=True)

        # export from the UI: one file that works offline
        with p.page.expect_download() as info:
            p.page.click("#export-btn")
        report = tmp_path / "from-ui.html"
        info.value.save_as(report)
        assert report.read_text(encoding="utf-8").count('id="kiku-chunk-') == 2
        assert p.page.locator("#export-btn").inner_text() == "Export HTML"
        foreign = [r for r in p.requests if not (r.startswith(origin) or r.startswith("blob:" + origin))]
        assert foreign == []
        assert p.errors == []
        p.close()

    e = Page(browser)
    e.context.route(re.compile(r"^https?://"), lambda route: route.abort())  # offline: any network use fails
    e.open(report.as_uri())
    assert sum(root_counts(e).values()) == 560
    e.page.locator(".details-panel .example").first.click()
    e.page.wait_for_selector("#messages .msg")
    assert e.page.locator("#export-btn").is_hidden()
    assert [r for r in e.requests if not r.startswith("file:")] == []
    assert e.errors == []
    e.close()


def test_export_file_has_every_view(browser, clean_run: Path, tmp_path: Path) -> None:
    out = export_html(clean_run, tmp_path / "report.html", max_message_chars=60, max_conversation_chars=100, max_reply_chars=60)
    p = Page(browser, color_scheme="dark")
    p.open(out.as_uri())
    assert p.eval("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 24)"  # prefers-color-scheme
    assert p.page.title().startswith("kiku report")
    p.page.fill("#tree-search", "security")
    names = p.page.locator(".node-name").all_inner_texts()
    assert names and all("security" in n.lower() for n in p.page.locator(".node-name mark").all_inner_texts())
    p.page.fill("#tree-search", "")
    click_point(p, 100)
    assert p.eval("kiku.state.selected") >= 0
    p.page.keyboard.press("Escape")
    p.page.locator(".details-panel .example").first.click()
    p.page.wait_for_selector("#messages .msg")
    assert "shortened" in p.page.locator("#clipped-note").inner_text()
    assert all(len(t) <= 60 for t in p.page.locator(".msg-body").all_inner_texts())
    p.page.click("#tab-trends")
    assert "per week" in p.page.locator("#trends-note").inner_text()
    p.shot("08-export-dark")
    assert p.errors == []
    p.close()


@pytest.mark.parametrize("where", ["served", "export"])
def test_hostile_conversation_text_never_runs(browser, llm_run: Path, tmp_path: Path, where: str) -> None:
    bundle = RunData(llm_run).bundle()
    hostile_ids = bundle["ids"][: len(web_runs.HOSTILE_TEXTS) * 2]

    def exercise(p: Page) -> None:
        for cid in hostile_ids:
            p.eval("id => kiku.openConversation(id)", cid)
            p.page.wait_for_selector("#messages .msg")
            body = p.page.locator("#messages .msg-body").first.inner_text()
            assert any(body.startswith(t[:20]) for t in web_runs.HOSTILE_TEXTS)  # shown as text
        p.page.fill("#search", "pwned")
        sync_api.expect(p.page.locator("#search-count")).to_have_text(f"{len(hostile_ids)} matches")
        for k in range(p.page.locator(".example").count()):
            p.page.locator(".example").nth(k).hover()
        p.page.select_option("#filter-facet", "facet_label")
        p.page.select_option("#filter-facet", "meta.note")
        p.page.select_option("#filter-value", index=0)
        p.page.click("#filter-add")
        p.page.locator(".node").first.hover()
        p.page.fill("#tree-search", "img")
        click_point(p, 0)
        p.page.mouse.move(10, 10)
        p.page.wait_for_timeout(200)
        assert_nothing_ran(p)
        assert p.page.locator(".chip").inner_text().startswith("Note: ")

    if where == "served":
        with running_server(llm_run) as url:
            p = Page(browser)
            p.open(url)
            exercise(p)
    else:
        p = Page(browser)
        p.open(export_html(llm_run, tmp_path / "hostile.html").as_uri())
        exercise(p)
    p.shot(f"09-hostile-{where}")
    assert p.errors == []
    p.close()


def test_run_without_llm_facets_hides_them(browser, plain_run: Path) -> None:
    with running_server(plain_run) as url:
        p = Page(browser)
        p.open(url)
        labels = [t.split(":")[0] for t in p.page.locator(".facet-block .facet-name").all_inner_texts()]
        assert "Language" in labels and not any("Concern" in l or "Frustration" in l for l in labels)
        assert "LLM" not in p.page.locator("#run-stats").inner_text()
        p.page.locator(".details-panel .example").first.click()
        p.page.wait_for_selector("#messages .msg")
        assert p.page.locator(".summary").count() == 0
        kv = p.page.locator("#conversation-facets").inner_text()
        assert "concern" not in kv and "turns" in kv
        assert p.errors == []
        p.close()


def test_a_real_kiku_run_opens(browser, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The explorer on a run made by kiku's own offline pipeline (conftest's 200 real queries)."""
    run = request.getfixturevalue("small_run")
    n = RunData(run.path).bundle()["n"]
    with running_server(run.path) as url:
        p = Page(browser)
        p.open(url)
        assert sum(root_counts(p).values()) == n == 200
        click_point(p, 0)
        assert p.eval("kiku.state.selected") >= 0
        p.page.wait_for_selector("#messages .msg")
        p.page.keyboard.press("Escape")
        p.page.locator(".details-panel .example").first.click()
        p.page.wait_for_selector("#messages .msg")
        assert p.errors == []
        p.shot("10-real-run")
        p.close()
    e = Page(browser)
    e.open(export_html(run.path, tmp_path / "real.html").as_uri())
    assert sum(root_counts(e).values()) == 200
    assert e.errors == []
    e.close()


def test_collapsed_chains_and_noise_are_counted_once(browser, tmp_path: Path) -> None:
    """A base topic that is its own root covers level 1 too; it must not be counted twice."""
    run_dir = web_runs.write_wandb_run(tmp_path / "ragged", llm=True, ragged=True)
    bundle = RunData(run_dir).bundle()
    roots = {c["id"]: c["size"] for c in bundle["clusters"] if c["parent"] is None}
    assert "unclustered" in roots and any(c["level"] == 0 and c["parent"] is None and not c["is_noise"] for c in bundle["clusters"])
    with running_server(run_dir) as url:
        p = Page(browser)
        p.open(url)
        assert root_counts(p) == roots and sum(roots.values()) == 560
        noise = p.page.locator('#tree > .tree-item > .node[data-cluster="unclustered"]')
        assert noise.locator(".swatch").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(154, 163, 178)"
        noise.click()
        assert p.page.locator("#topic-title").inner_text() == "Unclustered"
        assert p.page.locator(".details-panel .stat .v").first.inner_text() == "10"
        p.page.click("#tab-trends")
        p.page.locator(".details-panel .crumbs button").first.click()
        assert p.page.locator("#trends-legend .legend-item").count() == 8
        assert p.errors == []
        p.close()
