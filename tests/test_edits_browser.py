"""The explorer's compare view and keyboard curation in a real headless Chromium, over a real
server and real runs (a base run on half of a BANKING77 slice and a run assigned from it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

import kiku as kiku_api
from browsers import CHROMIUM
from kiku.assign import assign
from kiku.store import read_frame
from kiku.web import running_server
from living_runs import conversation, halves, out_of_domain, write_jsonl

pytestmark = pytest.mark.timeout(300)

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)
from playwright import sync_api  # noqa: E402 - in the test extra: a missing package fails, never skips


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("living-ui")
    base_input, _, _, new_rows = halves(folder)
    base = kiku_api.analyze(base_input, folder / "base", seed=0)
    rows = [conversation(r["id"], r["text"], "bank") for r in new_rows if r["intent"] != "card_arrival"]
    week2 = assign(base.path, write_jsonl(folder / "week2.jsonl", rows + out_of_domain(limit=40)), folder / "week2")
    return {"base": base.path, "week2": week2.path}


def _until(page, expression: str, timeout: float = 30.0) -> None:  # noqa: ANN001
    """Poll ``expression`` in the page until true (the page's CSP forbids wait_for_function's eval)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if page.evaluate(f"() => Boolean({expression})"):
                return
        except sync_api.Error:  # the page reloaded under the call
            pass
        time.sleep(0.1)
    raise AssertionError(f"not true after {timeout} s: {expression}")


def _open(browser, url: str):  # noqa: ANN001, ANN202
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    return page, errors


def test_compare_view_bars_intervals_and_sorting(browser, runs: dict) -> None:  # noqa: ANN001
    with running_server(runs["week2"]) as url:
        page, errors = _open(browser, url)
        page.click("#tab-compare")
        page.wait_for_selector("#compare-table tbody tr")
        assert page.is_hidden("#map-view") and page.is_visible("#compare-view")
        rows = page.locator("#compare-table tbody tr")
        assert rows.count() == len(json.loads(httpx.get(url + "api/living/compare").text)["comparisons"][0]["rows"])
        assert page.locator(".cmp-row.decline").count() >= 1  # card_arrival left out of week 2
        assert page.locator(".cmp-interval").count() == rows.count()
        assert "new" in page.inner_text("#compare-table")
        # sort by the topic name with the keyboard: focus its header, Enter (descending), Enter (ascending)
        page.focus("th[data-key='name']")
        page.keyboard.press("Enter")
        page.keyboard.press("Enter")
        names = page.locator("#compare-table tbody tr td:first-child").all_inner_texts()
        assert names == sorted(names, key=str.lower) or names == sorted(names)
        assert page.get_attribute("th[data-key='name']", "aria-sort") == "ascending"
        # a row opens its topic
        first = page.locator(".cmp-row.decline").first
        first.click()
        assert page.evaluate("window.kiku.state.selected") >= 0
        assert not errors, errors


def test_keyboard_curation_rename_merge_undo(browser, runs: dict, tmp_path: Path) -> None:  # noqa: ANN001
    run = tmp_path / "base"
    shutil.copytree(runs["base"], run)
    clusters = read_frame(run, "clusters")
    topics = clusters[(clusters.level == 0) & ~clusters.is_noise].sort_values("size", ascending=False).cluster_id.tolist()
    with running_server(run) as url:
        page, errors = _open(browser, url)
        page.on("dialog", lambda d: d.accept("Renamed in the browser") if d.type == "prompt" else d.accept())
        page.evaluate(f"window.kiku.selectCluster(window.kiku.state.byId.get('{topics[0]}'))")
        page.keyboard.press("r")
        page.wait_for_selector("body[data-ready='1']")
        _until(page, "document.getElementById('curate-status').textContent.includes('saved')")
        assert page.evaluate(f"window.kiku.state.clusters[window.kiku.state.byId.get('{topics[0]}')].name") == "Renamed in the browser"
        # the reloaded page shows the renamed topic again (its id is in the URL)
        assert page.evaluate(f"window.kiku.state.selected === window.kiku.state.byId.get('{topics[0]}')")
        assert f"topic={topics[0]}" in page.evaluate("location.hash")
        # merge: m on the topic to merge, select the one to keep, m again
        page.evaluate(f"window.kiku.selectCluster(window.kiku.state.byId.get('{topics[2]}'))")
        page.keyboard.press("m")
        assert "Merge" in page.inner_text("#curate-status")
        page.evaluate(f"window.kiku.selectCluster(window.kiku.state.byId.get('{topics[1]}'))")
        page.keyboard.press("m")
        _until(page, f"window.kiku.state && window.kiku.state.B && !window.kiku.state.byId.has('{topics[2]}')")
        page.wait_for_selector("body[data-ready='1']")
        assert page.evaluate(f"window.kiku.state.selected === window.kiku.state.byId.get('{topics[1]}')")  # the kept topic
        # the log shows both; undo takes the merge back
        page.wait_for_selector("body[data-ready='1']")
        page.keyboard.press("e")
        page.wait_for_selector("#curate-log li")
        assert page.locator("#curate-log li").count() == 2
        page.keyboard.press("u")
        _until(page, f"window.kiku.state && window.kiku.state.B && window.kiku.state.byId.has('{topics[2]}')")
        assert not errors, errors
    log = [json.loads(line) for line in (run / "edits.jsonl").read_text().splitlines()]
    assert [e["action"] for e in log] == ["rename", "merge", "undo"]
    assert read_frame(run, "clusters").set_index("cluster_id").loc[topics[0], "name"] == "Renamed in the browser"


def test_edit_writes_pass_the_security_checks(runs: dict, tmp_path: Path) -> None:
    run = tmp_path / "base"
    shutil.copytree(runs["base"], run)
    topic = read_frame(run, "clusters").query("level == 0").cluster_id.iloc[0]
    body = {"action": "rename", "target": topic, "name": "x"}
    with running_server(run) as url:
        cross = httpx.post(url + "api/living/edits", json=body, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        form = httpx.post(url + "api/living/edits", content="action=rename", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415
        bad = httpx.post(url + "api/living/edits", json={"action": "rename", "target": "nope", "name": "x"})
        assert bad.status_code == 400 and "no topic 'nope'" in bad.json()["detail"]
        assert not (run / "edits.jsonl").exists() or "nope" not in (run / "edits.jsonl").read_text()
        before = httpx.get(url + "api/search", params={"q": "card"}).json()
        ok = httpx.post(url + "api/living/edits", json=body)
        assert ok.status_code == 200 and ok.json()["edit"]["seq"] == 1
        # the served bundle shows the edit at once (the run reloaded, the response cache cleared)
        names = {c["id"]: c["name"] for c in httpx.get(url + "api/bundle").json()["clusters"]}
        assert names[topic] == "x"
        # search works over the reloaded run and finds the same conversations
        after = httpx.get(url + "api/search", params={"q": "card"}).json()
        assert before["total"] > 0 and after["total"] == before["total"]
        assert [i["id"] for i in after["items"]] == [i["id"] for i in before["items"]]
        # a run that was not assigned compares its periods; without dates that is a clear 400
        assert httpx.get(url + "api/living/compare").status_code == 400
