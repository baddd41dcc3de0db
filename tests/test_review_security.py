"""`kiku classify review` refuses what another site could make a browser send: a rebinding Host,
cross-site form posts, non-JSON writes, and framing. The real CLI serves; requests go over real
HTTP, and a real headless Chromium plays the hostile site.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from cli_helpers import kiku_command, kiku_env
from kiku.classify.data import write_jsonl
from kiku.web.security import SERVER_CSP

CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory):
    """A real `kiku classify review` process: (its URL, the gold file)."""
    folder = tmp_path_factory.mktemp("review")
    weak = write_jsonl(folder / "weak.jsonl", [
        {"id": f"q{i}", "text": f"question {i}", "predicted_label": "other" if i % 2 else "artifact", "confidence": 0.5}
        for i in range(1, 7)
    ])
    port = _free_port()
    process = subprocess.Popen(kiku_command("classify", "review", weak, "--port", port), env=kiku_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                httpx.get(url + "api/state", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(process.stdout.read().decode() if process.stdout else "no server")
        yield url, folder / "gold.jsonl"
    finally:
        process.terminate()
        process.wait(timeout=10)


def gold_ids(gold: Path) -> list[tuple[str, str]]:
    if not gold.exists():
        return []
    return [(r["id"], r["decision"]) for r in map(json.loads, gold.read_text().splitlines())]


def test_a_foreign_host_is_refused(review) -> None:
    url, _ = review
    for path in ("", "api/state", "review.js"):
        response = httpx.get(url + path, headers={"Host": "evil.com"})
        assert response.status_code == 400, path
    assert httpx.post(url + "api/undo", headers={"Host": "evil.com", "Content-Type": "application/json"}).status_code == 400


@pytest.mark.parametrize(("headers", "status"), [
    ({"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.com"}, 403),
    ({"Content-Type": "application/json", "Origin": "http://evil.com"}, 403),
    ({"Content-Type": "application/json", "Origin": "null"}, 403),
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({}, 415),
])
def test_state_changes_must_be_same_origin_json(review, headers: dict[str, str], status: int) -> None:
    url, gold = review
    before = gold_ids(gold)
    body = json.dumps({"id": "q1", "decision": "accept"})
    for path in ("api/undo", "api/decision"):
        response = httpx.post(url + path, content=body, headers=headers)
        assert response.status_code == status, (path, response.text)
    assert gold_ids(gold) == before


def test_same_origin_json_is_accepted(review) -> None:
    url, gold = review
    port = url.rsplit(":", 1)[1].strip("/")
    response = httpx.post(url + "api/decision", json={"id": "q2", "decision": "skip"},
                          headers={"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200, response.text
    assert ("q2", "skip") in gold_ids(gold)


def test_every_response_carries_the_explorers_headers(review) -> None:
    url, _ = review
    for path in ("", "review.js", "review.css", "api/state"):
        headers = httpx.get(url + path).headers
        assert headers["content-security-policy"] == SERVER_CSP, path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in httpx.get(url).text  # no inline script: the strict CSP allows none


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_a_hostile_site_can_neither_frame_the_page_nor_post_a_form(review, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    url, gold = review
    httpx.post(url + "api/decision", json={"id": "q3", "decision": "accept"})
    before = gold_ids(gold)
    assert before[-1] == ("q3", "accept")
    (tmp_path / "frame.html").write_text(f'<iframe id="f" src="{url}"></iframe>')
    (tmp_path / "form.html").write_text(
        f'<form id="x" method="post" action="{url}api/undo" enctype="text/plain">'
        '<input name=\'{"id":"q3","decision":"accept","x":"\' value=\'"}\'></form>'
        '<script>document.getElementById("x").submit()</script>')
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    hostile = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=hostile.serve_forever, daemon=True).start()
    evil = f"http://localhost:{hostile.server_address[1]}/"  # another origin than 127.0.0.1:PORT
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(evil + "frame.html")
            page.wait_for_timeout(1500)
            framed = [f for f in page.frames if f is not page.main_frame]
            assert framed, "the iframe did not even start"
            assert all(f.query_selector("#progress") is None for f in framed), "the review page rendered in a frame"
            page.goto(evil + "form.html")
            page.wait_for_timeout(1500)
            browser.close()
    finally:
        hostile.shutdown()
    assert gold_ids(gold) == before  # the cross-site form post undid nothing
