"""The review page in a real headless Chromium against a real uvicorn server and a real gold file."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from kiku.classify.data import read_items, write_jsonl
from kiku.classify.review import ReviewSession
from kiku.web.review import create_review_app

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")

LABELS = ["artifact", "integrations", "visualisation", "other"]
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script> & how do I log?'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def weak_file(tmp_path: Path) -> Path:
    rows = [
        {"id": "q1", "text": HOSTILE, "predicted_label": "other", "confidence": 0.41},
        {"id": "q2", "text": "How do I download an artifact?", "predicted_label": "artifact", "confidence": 0.9},
        {"id": "q3", "text": "Use W&B with LangChain", "predicted_label": "other", "confidence": 0.55},
        {"id": "q4", "text": "custom Vega chart", "predicted_label": "visualisation", "confidence": 0.8},
        {"id": "q5", "text": "resume a crashed run", "predicted_label": "other", "confidence": 0.7},
    ]
    return write_jsonl(tmp_path / "weak.jsonl", rows)


@pytest.fixture(params=["", "/review"], ids=["root", "mounted"])
def server(weak_file: Path, request: pytest.FixtureRequest):
    import uvicorn

    gold = weak_file.with_name("gold.jsonl")
    session = ReviewSession(read_items(weak_file), LABELS, gold)
    port = _free_port()
    prefix = request.param
    config = uvicorn.Config(create_review_app(session, prefix=prefix), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not instance.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}{prefix}/", gold
    instance.should_exit = True
    thread.join(timeout=5)


@pytest.fixture()
def page():
    from playwright import sync_api as playwright_api  # the test extra: missing is an error, never a skip

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield browser.new_page()
        browser.close()


def _gold_lines(gold: Path) -> list[dict]:
    return [json.loads(line) for line in gold.read_text().splitlines() if line.strip()]


def test_review_keys_reload_undo_and_escaping(server, page, tmp_path: Path) -> None:
    url, gold = server
    page.goto(url)
    page.wait_for_selector("text=0 / 5 reviewed")
    # untrusted text is shown as text, never run as HTML
    assert page.inner_text("#text") == HOSTILE
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#text img").count() == 0

    page.keyboard.press("a")  # q1: accept "other"
    page.wait_for_selector("text=1 / 5 reviewed")
    assert page.inner_text("#text") == "How do I download an artifact?"
    page.keyboard.press("2")  # q2: relabel as integrations (deliberately wrong, undone below)
    page.wait_for_selector("text=2 / 5 reviewed")
    page.keyboard.press("u")  # undo brings q2 back
    page.wait_for_selector("text=1 / 5 reviewed")
    assert page.inner_text("#text") == "How do I download an artifact?"
    page.keyboard.press("a")  # q2: accept artifact
    page.wait_for_selector("text=2 / 5 reviewed")

    # every decision is on disk before the page shows the next item
    lines = _gold_lines(gold)
    assert [(l["id"], l["decision"]) for l in lines] == [("q1", "accept"), ("q2", "relabel"), ("q2", "undo"), ("q2", "accept")]
    assert lines[0]["label"] == "other" and lines[0]["text"] == HOSTILE

    page.reload()  # resume: the two reviewed items are not shown again
    page.wait_for_selector("text=2 / 5 reviewed")
    assert page.inner_text("#text") == "Use W&B with LangChain"
    page.keyboard.press("2")  # q3: relabel integrations
    page.wait_for_selector("text=3 / 5 reviewed")
    page.keyboard.press("r")  # q4: reject
    page.wait_for_selector("text=4 / 5 reviewed")
    page.select_option("#relabel", "artifact")  # q5: relabel with the dropdown
    page.wait_for_selector("text=All items reviewed.")
    page.screenshot(path=str(tmp_path / "review.png"))
    assert (tmp_path / "review.png").stat().st_size > 5000

    final = {item.id: item.label for item in read_items(gold)}
    assert final == {"q1": "other", "q2": "artifact", "q3": "integrations", "q5": "artifact"}  # q4 rejected: no label
    assert _gold_lines(gold)[-1]["decision"] == "relabel"


def test_fast_typing_loses_no_decision(server, page) -> None:
    url, gold = server
    page.goto(url)
    page.wait_for_selector("text=0 / 5 reviewed")
    for key in "asaaa":  # no waiting between keys
        page.keyboard.press(key)
    page.wait_for_selector("text=All items reviewed.")
    assert [l["decision"] for l in _gold_lines(gold)] == ["accept", "skip", "accept", "accept", "accept"]
    assert [l["id"] for l in _gold_lines(gold)] == ["q1", "q2", "q3", "q4", "q5"]


def test_api_rejects_unknown_items_and_labels(server) -> None:
    import httpx

    url, gold = server
    assert httpx.post(url + "api/decision", json={"id": "nope", "decision": "accept"}).status_code == 404
    assert httpx.post(url + "api/decision", json={"id": "q1", "decision": "relabel", "label": "zzz"}).status_code == 422
    assert httpx.post(url + "api/decision", json={"id": "q1", "decision": "explode"}).status_code == 422
    assert not gold.exists() or gold.read_text() == ""
    state = httpx.post(url + "api/decision", json={"id": "q1", "decision": "relabel", "label": "integrations"}).json()
    assert state["done"] == 1 and state["item"]["id"] == "q2"


def test_cli_review_serves_and_resumes(weak_file: Path) -> None:
    """`kiku classify review` as a real process: serves the page, writes gold.jsonl, resumes after restart."""
    import os
    import subprocess
    import sys

    import httpx

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    def start() -> tuple[subprocess.Popen, str]:
        port = _free_port()
        process = subprocess.Popen([sys.executable, "-m", "kiku.classify.cli", "classify", "review", str(weak_file),
                                    "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        for _ in range(150):
            try:
                httpx.get(url + "api/state", timeout=1)
                return process, url
            except httpx.TransportError:
                time.sleep(0.1)
        process.kill()
        raise AssertionError(process.stdout.read().decode())

    process, url = start()
    try:
        assert "kiku review" in httpx.get(url).text
        assert httpx.get(url + "api/state").json()["labels"] == sorted({"other", "artifact", "visualisation"})
        httpx.post(url + "api/decision", json={"id": "q1", "decision": "accept"})
    finally:
        process.terminate()
        process.wait(timeout=10)
    process, url = start()
    try:
        state = httpx.get(url + "api/state").json()
        assert state["done"] == 1 and state["item"]["id"] == "q2"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert [json.loads(l)["id"] for l in weak_file.with_name("gold.jsonl").read_text().splitlines()] == ["q1"]
