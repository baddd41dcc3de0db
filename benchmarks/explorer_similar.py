"""Time of a similar-meaning search in the served explorer (issue 16), on the W&B example run.

Builds (once) a real offline run over examples/wandb-queries.jsonl (560 real W&B questions),
serves it in a subprocess, then measures:

- API, through HTTP: the first ``/api/similar/rows`` after start-up (it loads the run's
  embeddings, the embedder and computes the chance-level floor), then each of QUERIES warm
  (median and max), next to the keyword ``/api/search/rows`` for the same queries;
- browser, headless Chromium 1440x900: typing a query in "similar meaning" mode to the count
  shown, less the 200 ms input debounce (median over QUERIES);
- scale: the ranking alone (one cosine against every stored vector, top 200) on 17,500 random
  unit vectors of 384 dims, the size of the ShareGPT run.

Writes its block (between markers) into benchmarks/results/explorer.md, keeping the rest.

    nice -n 10 python benchmarks/explorer_similar.py
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
RESULTS = ROOT / "benchmarks" / "results" / "explorer.md"
BEGIN, END = "<!-- similar-meaning search: benchmarks/explorer_similar.py -->", "<!-- /similar-meaning search -->"
QUERIES = [
    "show pictures while my model trains",
    "tune hyperparameters automatically",
    "save my model files and version them",
    "compare two experiments side by side",
    "my runs do not appear in the dashboard",
    "share results with my team",
    "log a table of predictions",
    "recipe for pancakes with blueberries",
]
SERVE = """
import sys
from kiku.web import serve
serve(sys.argv[1], port=int(sys.argv[2]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_run(run: Path) -> None:
    if (run / "manifest.json").exists() and (run / "embeddings.parquet").exists():
        return
    subprocess.run([sys.executable, "-m", "kiku", "run", str(ROOT / "examples" / "wandb-queries.jsonl"), "--out", str(run)],
                   check=True, stdout=subprocess.DEVNULL)


def api_times(url: str) -> dict[str, object]:
    import httpx

    out: dict[str, object] = {}
    t = time.perf_counter()
    first = httpx.get(url + "api/similar/rows", params={"q": QUERIES[0]}, timeout=120).json()
    out["first_s"] = time.perf_counter() - t
    out["floor"] = first["floor"]
    warm, keyword, totals = [], [], {}
    for q in QUERIES:
        t = time.perf_counter()
        res = httpx.get(url + "api/similar/rows", params={"q": q}, timeout=60).json()
        warm.append((time.perf_counter() - t) * 1000)
        totals[q] = res["total"]
        t = time.perf_counter()
        httpx.get(url + "api/search/rows", params={"q": q}, timeout=60).json()
        keyword.append((time.perf_counter() - t) * 1000)
    out.update(warm_ms=warm, keyword_ms=keyword, totals=totals)
    return out


def browser_times(url: str) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        page.click("#mode-similar")
        for q in QUERIES:
            page.fill("#search", "")
            page.wait_for_timeout(400)
            t = time.perf_counter()
            page.fill("#search", q)
            page.wait_for_function("q => kiku.state.query === q.toLowerCase() && document.getElementById('search-count').textContent.endsWith('similar')",
                                   arg=q, timeout=60_000)
            times.append((time.perf_counter() - t) * 1000 - 200)  # less the input debounce
        browser.close()
    return times


def scale_ms(n: int = 17_500, dim: int = 384, repeats: int = 20) -> float:
    import numpy as np

    from kiku.similar import DEFAULT_TOP, rank_by_similarity

    rng = np.random.default_rng(0)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[0]
    t = time.perf_counter()
    for _ in range(repeats):
        rank_by_similarity(v, q, DEFAULT_TOP, -1.0)
    return (time.perf_counter() - t) * 1000 / repeats


def write_block(api: dict, clicks: list[float], scale: float, n: int) -> str:
    warm, keyword = api["warm_ms"], api["keyword_ms"]
    totals = api["totals"]
    found = ", ".join(f"\"{q}\" {totals[q]}" for q in QUERIES)
    text = "\n".join([
        BEGIN,
        "",
        f"Similar-meaning search (`benchmarks/explorer_similar.py`; served; `kiku run examples/wandb-queries.jsonl`, {n} conversations; {platform.machine()}, "
        f"{os.cpu_count()} shared cores): first query after start-up **{api['first_s']:.2f} s** (loads the embeddings, the "
        f"embedder and the run's chance-level floor, {api['floor']:.2f}); then {statistics.median(warm):.0f} ms median, "
        f"{max(warm):.0f} ms max over {len(QUERIES)} queries through HTTP (keyword search: {statistics.median(keyword):.0f} ms "
        f"median); in Chromium, typing to the count shown: {statistics.median(clicks):.0f} ms median, {max(clicks):.0f} ms max "
        f"(less the 200 ms debounce). Ranking alone at ShareGPT size (17,500 x 384 float32, top 200): {scale:.1f} ms. "
        f"Matches (top 200 above the floor): {found}.",
        "",
        END,
    ])
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(new, encoding="utf-8")
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=ROOT / "benchmarks" / "out" / "wandb-example")
    args = ap.parse_args()
    run = args.run.resolve()
    build_run(run)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(run), str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        time.sleep(4)  # the server warms its bundle and keyword table in the background
        api = api_times(url)
        clicks = browser_times(url)
    finally:
        server.terminate()
        server.wait(10)
    import json

    n = json.loads((run / "manifest.json").read_text())["counts"]["conversations"]
    print(write_block(api, clicks, scale_ms(), n))


if __name__ == "__main__":
    main()
