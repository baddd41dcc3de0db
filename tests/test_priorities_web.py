"""The priorities view on a real run: its JSON API on the real server, its block in the HTML export,
and the view itself in real headless Chromium (served and offline export): sortable, intervals drawn."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

import priorities_data
from kiku.gaps import classify_gaps
from kiku.outcomes import join_table
from kiku.priorities import priority_report
from kiku.web import export_html, running_server

pytestmark = pytest.mark.timeout(300)
# playwright is in the test extra: without it the browser fixture fails (never a silent skip)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prio-web")
    run = priorities_data.make_run(folder)
    join_table(run, priorities_data.write_feedback_csv(folder / "feedback.csv"))
    classify_gaps(run)
    return run


def _open(browser, url: str):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return context, page, errors, requests


def test_api_options_and_report(run: Path) -> None:
    with running_server(run) as url:
        options = httpx.get(url + "api/priorities/options").json()
        assert [o["value"] for o in options["outcomes"]][:2] == ["thumbs_up", "revenue"]
        assert {"resolution=escalated", "resolution=abandoned"} <= {o["value"] for o in options["outcomes"]}
        assert options["weights"] == ["revenue"] and options["gaps"] == ["capability", "inventory", "other"]
        body = httpx.get(url + "api/priorities", params={"outcome": "thumbs_up", "weight": "revenue"}).json()
        expected = priority_report(run, "thumbs_up", weight="revenue")
        assert [r["cluster_id"] for r in body["rows"]] == [r["cluster_id"] for r in expected.rows]
        assert "Holm" in body["method"]
        bad = httpx.get(url + "api/priorities", params={"outcome": "nope"})
        assert bad.status_code == 400 and "no outcome 'nope'" in bad.json()["detail"]
        assert httpx.get(url + "api/priorities/options", headers={"Host": "evil.example"}).status_code in (400, 403, 421)


def test_served_view_ranks_sorts_draws_intervals_and_selects_topics(run: Path, browser) -> None:  # noqa: ANN001
    expected = priority_report(run, "thumbs_up")
    with running_server(run) as url:
        context, page, errors, _ = _open(browser, url)
        # a tab of the view registry, reached by keyboard like the others, kept in the URL
        page.focus("#tab-priorities")
        page.keyboard.press("Enter")
        page.wait_for_selector("#priorities-table tbody tr")
        assert page.locator("#tab-priorities").get_attribute("aria-selected") == "true"
        assert "tab=priorities" in page.evaluate("location.hash") and page.locator("#map-view").is_hidden()
        rows = page.locator("#priorities-table tbody tr")
        assert rows.count() == len(expected.rows)
        first = rows.nth(0)
        assert first.get_attribute("data-cluster") == expected.rows[0]["cluster_id"]
        assert first.get_attribute("data-flag") == "under"
        # intervals are drawn: every topic with values has a range around its rate
        drawn = page.evaluate("""() => [...document.querySelectorAll('#priorities-table line.prio-range')]
            .map((l) => [Number(l.dataset.low), Number(l.dataset.high), Number(l.getAttribute('x1')), Number(l.getAttribute('x2'))])""")
        assert len(drawn) == sum(1 for r in expected.rows if r["ci_low"] is not None)
        assert all(lo <= hi and x1 <= x2 for lo, hi, x1, x2 in drawn)
        assert page.locator("#priorities-table .prio-baseline").count() == len(expected.rows)
        # sortable: n descending, then ascending
        page.click("#priorities-table th[data-key='n'] button")
        counts = [int(t.replace(",", "")) for t in page.locator("#priorities-table tbody tr td:nth-child(4)").all_inner_texts()]
        assert counts == sorted(counts, reverse=True)
        page.click("#priorities-table th[data-key='n'] button")
        counts = [int(t.replace(",", "")) for t in page.locator("#priorities-table tbody tr td:nth-child(4)").all_inner_texts()]
        assert counts == sorted(counts)
        # the gap filter recomputes through the API
        page.select_option("#prio-gap", "inventory")
        page.wait_for_function("() => window.kiku.priorities.state.report && window.kiku.priorities.state.report.gap === 'inventory'")
        assert "of gap type inventory" in page.locator(".prio-summary").inner_text()
        # a topic name opens it in the explorer
        target = expected.rows[0]["cluster_id"]
        page.select_option("#prio-gap", "")
        page.wait_for_function("() => window.kiku.priorities.state.report.gap === null")
        page.click(f"#priorities-table tr[data-cluster='{target}'] .prio-topic")
        assert page.locator("#priorities-view").is_hidden() and page.locator("#map-view").is_visible()
        selected = page.evaluate("() => window.kiku.state.clusters[window.kiku.state.selected].id")
        assert selected == target
        # back on the tab, the selected topic's row is marked; a link with tab=priorities opens it
        page.click("#tab-priorities")
        assert page.locator(f"#priorities-table tr[data-cluster='{target}']").get_attribute("aria-current") == "true"
        page.screenshot(path=str(Path(run).parent / "priorities.png"))
        assert errors == []
        context.close()
        context, page, errors, _ = _open(browser, url + "#tab=priorities")
        page.wait_for_selector("#priorities-table tbody tr")
        assert page.locator("#priorities-view").is_visible() and errors == []
        context.close()


def test_export_has_the_priorities_section_offline(run: Path, browser, tmp_path: Path) -> None:  # noqa: ANN001
    out = export_html(run, tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    # the view's data is its own gzip+base64 block (export.extension_data), not in the JSON block
    block = re.search(r'<script type="application/octet-stream" id="kiku-extra-priorities">([^<]*)</script>', text)
    section = json.loads(gzip.decompress(base64.b64decode(block.group(1))))
    assert "thumbs_up|revenue|capability" in section["reports"] and section["weights"] == ["revenue"]
    assert section["reports"]["thumbs_up|-|-"]["rows"][0]["cluster_id"] == priority_report(run, "thumbs_up").rows[0]["cluster_id"]
    assert "priorities" not in text.split('id="kiku-data">', 1)[1].split("</script>", 1)[0]
    context, page, errors, requests = _open(browser, out.as_uri())
    page.click("#tab-priorities")
    page.wait_for_selector("#priorities-table tbody tr")
    assert page.locator("#priorities-table tbody tr").nth(0).get_attribute("data-flag") == "under"
    page.select_option("#prio-outcome", "resolution=escalated")
    page.wait_for_function("() => window.kiku.priorities.state.report.positive === 'escalated'")
    page.select_option("#prio-weight", "revenue")
    page.wait_for_function("() => window.kiku.priorities.state.report.weight === 'revenue'")
    assert page.locator("#priorities-table tbody tr").count() > 0
    assert all(u.startswith("file:") or u.startswith("data:") for u in requests)
    assert errors == []
    context.close()


def test_a_run_without_outcomes_explains_how_to_join(run: Path, browser, tmp_path: Path) -> None:  # noqa: ANN001
    bare = Path(shutil.copytree(run, tmp_path / "bare"))
    (bare / "outcomes.parquet").unlink()
    (bare / "gaps.parquet").unlink()
    manifest = json.loads((bare / "manifest.json").read_text())
    manifest.pop("derived")
    (bare / "manifest.json").write_text(json.dumps(manifest))
    with running_server(bare) as url:
        context, page, errors, _ = _open(browser, url)
        page.click("#tab-priorities")
        page.wait_for_selector(".prio-empty")
        assert "kiku join RUN feedback.csv" in page.locator(".prio-empty").inner_text()
        assert errors == []
        context.close()
    # its export carries no priorities block, and the view says the same
    out = export_html(bare, tmp_path / "bare.html")
    assert 'id="kiku-extra-priorities"' not in out.read_text(encoding="utf-8")
    context, page, errors, _ = _open(browser, out.as_uri())
    page.click("#tab-priorities")
    page.wait_for_selector(".prio-empty")
    assert "kiku join RUN feedback.csv" in page.locator(".prio-empty").inner_text() and errors == []
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_priorities_tab_has_no_serious_axe_violation(run: Path, browser, scheme: str) -> None:  # noqa: ANN001
    from axe_playwright_python.sync_playwright import Axe

    with running_server(run) as url:
        context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        page.goto(url + "#tab=priorities")
        page.wait_for_selector("#priorities-table tbody tr[data-flag='under']")
        violations = Axe().run(page).response["violations"]
        serious = [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in violations if v["impact"] in ("serious", "critical")]
        assert serious == []
        context.close()
