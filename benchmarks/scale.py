"""How `kiku run` grows from 10,000 to 1,000,000 conversations (issue 15): time and memory per stage.

Builds each input from real texts with ``speed.build_real_input`` (ShareGPT user turns, BANKING77,
the W&B queries, then 2- and 3-turn ShareGPT windows). There are far fewer than a million
distinct real texts offline, so above that count the distinct conversations are written again
under new ids; the table reports how many are distinct. Each size runs ``kiku run`` in a fresh
child process (a fresh run folder); per-stage seconds come from the run's ``manifest.json``
and peak RSS from sampling the child's process tree with psutil every 0.5 s (and the child's
own ``ru_maxrss`` as a check). Results go to ``benchmarks/results/scale.md``; each size's raw
numbers are kept (committed) in ``benchmarks/results/scale/scale-<size>.json``, so sizes can be
measured one at a time, on different days and machines, and the report keeps every size.
Inputs and run folders stay in ``benchmarks/out`` (not committed).

    python benchmarks/scale.py --sizes 10k,100k     # measure, then rewrite scale.md
    python benchmarks/scale.py --sizes 1m           # the long one (nohup it)
    python benchmarks/scale.py --report             # only rewrite scale.md from the saved numbers
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import OUT, ROOT, build_real_input  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scale.md"
#: The raw numbers behind scale.md, one JSON per size (and per extra measurement), committed.
NUMBERS = ROOT / "benchmarks" / "results" / "scale"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
#: Commits of attempts whose partial file predates recording it.
FIRST_ATTEMPT_COMMIT = {"1m": "9825a23"}
STAGES = ["load", "describe", "embed", "project", "cluster", "name", "hierarchy"]
WINDOWS = (2, 3)


def input_for(name: str) -> tuple[Path, dict[str, int]]:
    """The input file for one size (built once, then reused) and its written/distinct counts."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"scale-input-{name}.jsonl"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    start = time.perf_counter()
    counts = build_real_input(path, SIZES[name], windows=WINDOWS, repeat=True)
    counts["build_seconds"] = round(time.perf_counter() - start, 1)
    meta.write_text(json.dumps(counts))
    return path, counts


def snapshot_src() -> tuple[Path, str]:
    """A copy of ``src`` at its current state (and the commit it is on), so a long run is not
    changed by edits made while it runs: kiku imports some modules only when a stage starts."""
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    target = OUT / f"scale-src-{commit}-{int(time.time())}"
    shutil.copytree(ROOT / "src", target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return target, commit


def run_one(name: str, src: Path, commit: str, resume: bool = False) -> dict:
    """Run ``kiku run`` (from ``src``) on one size in a child process; sample its process tree's RSS."""
    import psutil

    input_path, counts = input_for(name)
    run_dir = OUT / f"scale-run-{name}"
    previous = _stages(run_dir) if resume else {}
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)
    log = OUT / f"scale-{name}.log"
    env = dict(os.environ, PYTHONPATH=str(src))
    start = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    peak = 0
    samples: list[tuple[float, int]] = []
    with open(log, "w") as handle:
        child = subprocess.Popen(
            [sys.executable, "-m", "kiku", "run", str(input_path), "--out", str(run_dir)],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )
        parent = psutil.Process(child.pid)
        NUMBERS.mkdir(parents=True, exist_ok=True)
        partial = NUMBERS / f"scale-{name}.partial.json"
        while child.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
            except psutil.Error:
                rss = 0
            peak = max(peak, rss)
            elapsed = time.perf_counter() - start
            if not samples or elapsed - samples[-1][0] >= 30:
                samples.append((round(elapsed, 1), rss))
                partial.write_text(json.dumps({"commit": commit, "load_average_at_start": load_at_start, "elapsed": elapsed, "peak_rss_bytes": peak, "samples": samples,
                                               "stages": _stages(run_dir)}))
            time.sleep(0.5)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    result = {
        "name": name, "commit": commit, "conversations": SIZES[name], "distinct": counts["distinct"], "returncode": child.returncode,
        "wall": wall, "peak_rss_bytes": max(peak, usage), "sampled_peak_rss_bytes": peak, "ru_maxrss_bytes": usage,
        "stages": _stages(run_dir), "rss_samples": samples, "resumed_stages": sorted(previous), "input_build_seconds": counts.get("build_seconds"),
        "load_average_at_start": load_at_start, "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        result["counts"] = data.get("counts", {})
        result["stage_details"] = {k: {x: y for x, y in v.items() if x not in ("fingerprint", "tables")}
                                   for k, v in data.get("stages", {}).items()}
    return result


def _stages(run_dir: Path) -> dict[str, float]:
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v.get("seconds", 0.0)) for k, v in manifest.get("stages", {}).items() if "seconds" in v}


def time_placement(rows: int = 100_000, sample_size: int = 20_000, production_sample: int = 20_000) -> dict:
    """Seconds to place the rows outside UMAP's sample: kNN (place_on_map) vs UMAP's transform.

    Reads the first ``rows`` embeddings of the largest scale run that has embeddings (the inputs
    share their first rows, so these are real vectors of the 100k input), fits UMAP once on a
    seeded ``sample_size`` sample as ``project_embeddings`` does and places the other rows both
    ways, timing each, and reports how far apart the two put the same row (in map spreads). The
    kNN cost grows with the sample (an (n, sample) product), so its throughput is also timed
    against a ``production_sample``-row base (the default ``project_sample_size``).
    """
    import numpy as np
    import umap

    sys.path.insert(0, str(ROOT / "src"))
    from kiku.pipeline import load_embeddings
    from kiku.project import enable_compiled_code_cache, place_on_map, projection_sample
    from kiku.store import RunStore
    from kiku.vectors import l2_normalise

    run = next(OUT / f"scale-run-{n}" for n in ("1m", "100k", "10k") if (OUT / f"scale-run-{n}" / "embeddings.parquet").exists())
    _, vectors = load_embeddings(RunStore(run))
    vectors = np.ascontiguousarray(vectors[:rows])
    sample_size = min(sample_size, len(vectors) // 2)
    sample = projection_sample(len(vectors), sample_size, seed=0)
    others = np.setdiff1d(np.arange(len(vectors)), sample)
    enable_compiled_code_cache()
    model = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0, n_jobs=1,
                      init="spectral")
    start = time.perf_counter()
    fitted = model.fit_transform(vectors[sample])
    fit_seconds = time.perf_counter() - start
    base = np.asarray(l2_normalise(vectors[sample]), dtype=np.float32)
    start = time.perf_counter()
    knn = np.concatenate([place_on_map(np.asarray(l2_normalise(vectors[others[i : i + 20_000]]), dtype=np.float32), base, fitted)
                          for i in range(0, len(others), 20_000)])
    knn_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model.transform(vectors[others[:100]])  # the first transform compiles numba code: timed apart
    warmup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    transformed = np.concatenate([model.transform(vectors[others[i : i + 20_000]]) for i in range(0, len(others), 20_000)])
    transform_seconds = time.perf_counter() - start
    spread = float(np.linalg.norm(fitted - fitted.mean(axis=0), axis=1).mean())
    gap = np.linalg.norm(knn - transformed, axis=1) / spread
    # kNN throughput against a production-size base (the values do not change the cost of the product)
    big_base = np.asarray(l2_normalise(vectors[np.arange(production_sample) % len(vectors)]), dtype=np.float32)
    probe = np.asarray(l2_normalise(vectors[: min(len(vectors), 10_000)]), dtype=np.float32)
    start = time.perf_counter()
    place_on_map(probe, big_base, np.zeros((len(big_base), 2), dtype=np.float32))
    per_row_production = (time.perf_counter() - start) / len(probe)
    result = {"rows": len(vectors), "sample": sample_size, "placed": len(others), "run": run.name,
              "fit_seconds": fit_seconds, "knn_seconds": knn_seconds, "transform_seconds": transform_seconds,
              "transform_first_call_seconds": warmup_seconds,
              "median_gap_in_spreads": float(np.median(gap)), "p90_gap_in_spreads": float(np.quantile(gap, 0.9)),
              "production_sample": production_sample, "knn_ms_per_row_production": per_row_production * 1000,
              "transform_ms_per_row": transform_seconds / len(others) * 1000,
              "load_average_at_start": os.getloadavg()[0], "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    NUMBERS.mkdir(parents=True, exist_ok=True)
    (NUMBERS / "scale-placement.json").write_text(json.dumps(result))
    return result


LLM_MODELS = ("openai/gpt-4o-mini", "openai/gpt-5-nano", "anthropic/claude-3-5-haiku", "gemini/gemini-2.0-flash-lite")
LLM_SIZES = (1_000_000, 10_000_000, 100_000_000)


class _Repeated:
    """A read-only sequence of ``length`` conversations cycling through ``sample`` (for size-only estimates)."""

    def __init__(self, sample: list, length: int) -> None:
        self.sample, self.length = sample, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index):  # noqa: ANN001, ANN204 - int or slice, as a list
        if isinstance(index, slice):
            return [self.sample[i % len(self.sample)] for i in range(*index.indices(self.length))]
        return self.sample[index % len(self.sample)]


def llm_cost(clusters: int, sample_every: int = 5) -> dict:
    """Hosted-LLM cost of a run at 1M, 10M, 100M conversations, from kiku's own dry-run estimates.

    ``kiku.llm.estimate`` counts the describe prompts exactly (characters / 4 for hosted models)
    on a real sample (every ``sample_every``-th conversation of the 100k input), scaled to each
    size; naming and hierarchy are estimated for ``clusters`` base clusters (automatic k is capped
    at ``kiku.cluster.K_MAX``, so it does not grow with n). No call is made.
    """
    sys.path.insert(0, str(ROOT / "src"))
    from kiku.llm import build_cluster_stages, build_llm_stages
    from kiku.llm.estimate import estimate_cluster_scope, estimate_run
    from kiku.loaders import LoadReport, load_conversations

    path, _ = input_for("100k")
    sample = list(load_conversations(path, format="jsonl", report=LoadReport()))[::sample_every]
    out: dict = {"sample": len(sample), "clusters": clusters, "models": {}}
    for spec in LLM_MODELS:
        common = {"backend_options": {"check_sdk": False}}
        describer, namer, hierarchy, _ = build_llm_stages(spec, **common)
        cluster_namer, cluster_hierarchy, _ = build_cluster_stages(spec, **common)
        full = estimate_run(sample, describer, namer, hierarchy, clusters=clusters, exact_tokens=False)
        rows = {}
        for n in LLM_SIZES:
            factor = n / len(sample)
            describe = full.by_stage["describe"]
            rest = sum(v["cost_usd"] or 0.0 for k, v in full.by_stage.items() if k != "describe")
            scoped = estimate_cluster_scope(_Repeated(sample, n), cluster_namer, cluster_hierarchy, clusters=clusters,
                                            count_tokens=lambda text: max(1, len(text) // 4))
            rows[n] = {
                "conversations_scope_usd": (describe["cost_usd"] or 0.0) * factor + rest,
                "describe_calls": int(describe["calls"] * factor),
                "describe_tokens": int((describe["prompt_tokens"] + describe["completion_tokens"]) * factor),
                "clusters_scope_usd": scoped.cost_usd, "clusters_scope_calls": scoped.calls,
            }
        out["models"][spec] = rows
    NUMBERS.mkdir(parents=True, exist_ok=True)
    (NUMBERS / "scale-llm-cost.json").write_text(json.dumps(out))
    return out


def _distinct(name: str) -> int:
    """Distinct texts of a size's input (from its build record; 0 when it was never built here)."""
    meta = OUT / f"scale-input-{name}.json"
    return int(json.loads(meta.read_text())["distinct"]) if meta.exists() else 0


def gib(value: float) -> str:
    return f"{value / 2**30:.2f}"


def write_report() -> None:
    """Rewrite scale.md from the saved per-size numbers (finished or partial)."""
    rows: dict[str, dict] = {}
    for name in SIZES:
        first = NUMBERS / f"scale-{name}.first-attempt.json"
        if first.exists():  # an earlier attempt that died: its stages and memory, reported as they were
            data = json.loads(first.read_text())
            rows[f"{name}-first"] = {"name": name, "commit": data.get("commit") or FIRST_ATTEMPT_COMMIT.get(name),
                                     "conversations": SIZES[name], "distinct": data.get("distinct") or _distinct(name),
                                     "partial": True,
                                     "died": True, "load_average_at_start": data.get("load_average_at_start"),
                                     "wall": data["elapsed"], "peak_rss_bytes": data["peak_rss_bytes"],
                                     "stages": data["stages"], "note": data.get("note")}
        done = NUMBERS / f"scale-{name}.json"
        partial = NUMBERS / f"scale-{name}.partial.json"
        if done.exists():
            rows[name] = json.loads(done.read_text())
        elif partial.exists():
            data = json.loads(partial.read_text())
            rows[name] = {"name": name, "commit": data.get("commit"), "conversations": SIZES[name], "distinct": _distinct(name),
                          "partial": True,
                          "load_average_at_start": data.get("load_average_at_start"), "wall": data["elapsed"], "peak_rss_bytes": data["peak_rss_bytes"], "stages": data["stages"]}
    lines = [
        "## Scale: 10k, 100k and 1M conversations (`kiku run`, offline defaults)",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}, "
        "shared with other jobs while measured (see the load average per row). "
        "Inputs are real texts only (ShareGPT user turns, BANKING77, W&B queries, 2- and 3-turn ShareGPT "
        "windows); above the number of distinct real texts the same conversations repeat under new ids, "
        "so *distinct* is what the embedder really had to embed at most. Peak RSS: the `kiku run` process "
        "tree, sampled every 0.5 s (and its getrusage maximum). Stage seconds from the run's manifest.",
        "",
        "| size | distinct texts | " + " | ".join(STAGES) + " | wall (s) | peak RSS (GiB) | load avg |",
        "|---|---:|" + "---:|" * len(STAGES) + "---:|---:|---:|",
    ]
    for r in rows.values():
        cells = " | ".join(f"{r['stages'][s]:.1f}" if s in r["stages"] else "-" for s in STAGES)
        reached = next((x for x in STAGES if x not in r["stages"]), None)
        status = f" (partial: in {reached} when measured)" if r.get("partial") else ""
        if r.get("died"):
            status = f" (first attempt, one-shot embed stage: stopped in {reached} at this RSS, rerun on the chunked one)"
        elif r.get("resumed_stages") or (r.get("partial") and f"{r['name']}-first" in rows):
            status += " (resumed: earlier stages' seconds from the first attempt, wall = this invocation)"
        if r.get("returncode") not in (None, 0):
            status = f" (failed, exit {r['returncode']})"
        if r.get("note"):
            status += f" ({r['note']})"
        load = f"{r['load_average_at_start']:.1f}" if r.get("load_average_at_start") is not None else "-"
        status += f" @{r['commit']}" if r.get("commit") else ""
        lines.append(f"| {r['conversations']:,}{status} | {r['distinct']:,} | {cells} | {r['wall']:.0f} | "
                     f"{gib(r['peak_rss_bytes'])} | {load} |")
    names = [n for n in SIZES if n in rows and not rows[n].get("partial") and rows[n].get("returncode") == 0
             and not rows[n].get("resumed_stages")]
    if len(names) >= 2:
        lines += ["", "Growth between consecutive sizes (ratio of seconds; ratio of rows in the header):", ""]
        lines += ["| from → to | rows x | distinct x | " + " | ".join(STAGES) + " | wall | peak RSS |",
                  "|---|---:|---:|" + "---:|" * len(STAGES) + "---:|---:|"]
        for a, b in zip(names, names[1:]):
            ra, rb = rows[a], rows[b]

            def ratio(x: float | None, y: float | None) -> str:
                return f"{y / x:.1f}" if x and y is not None else "-"

            cells = " | ".join(ratio(ra["stages"].get(s), rb["stages"].get(s)) for s in STAGES)
            lines.append(f"| {a} → {b} | {rb['conversations'] / ra['conversations']:.0f} | "
                         f"{rb['distinct'] / max(1, ra['distinct']):.1f} | {cells} | {ratio(ra['wall'], rb['wall'])} | "
                         f"{ratio(ra['peak_rss_bytes'], rb['peak_rss_bytes'])} |")
    placement = NUMBERS / "scale-placement.json"
    if placement.exists():
        t = json.loads(placement.read_text())
        lines += [
            "", f"### Placing the rows outside UMAP's sample ({t['rows']:,} rows, {t['sample']:,}-row sample)", "",
            f"Real vectors (first {t['rows']:,} rows of `{t['run']}`), measured {t['measured']}, load average "
            f"{t['load_average_at_start']:.1f}. UMAP fit on the sample: {t['fit_seconds']:.1f} s. "
            f"Placing the other {t['placed']:,}: kNN (`place_on_map`, 10 nearest sample points) "
            f"{t['knn_seconds']:.1f} s, UMAP `transform` {t['transform_seconds']:.1f} s after a first call on 100 rows "
            f"that compiles its code ({t.get('transform_first_call_seconds', float('nan')):.1f} s, once per process) "
            f"({t['transform_seconds'] / max(t['knn_seconds'], 1e-9):.1f}x). The two put the same row a median "
            f"{t['median_gap_in_spreads']:.2f} (90th percentile {t['p90_gap_in_spreads']:.2f}) map spreads apart "
            "(spread: mean distance of the sample's points from their centre). "
            f"Against a {t['production_sample']:,}-row base (the default `project_sample_size`) kNN placement took "
            f"{t['knn_ms_per_row_production']:.3f} ms per row; `transform` took {t['transform_ms_per_row']:.3f} ms "
            f"per row here: for the 980,000 rows outside the sample at 1M that is "
            f"{t['knn_ms_per_row_production'] * 980:.0f} s vs {t['transform_ms_per_row'] * 980:.0f} s.",
        ]
    cost = NUMBERS / "scale-llm-cost.json"
    if cost.exists():
        c = json.loads(cost.read_text())
        sizes = list(next(iter(c["models"].values())))
        lines += [
            "", "### Hosted-LLM cost at scale (kiku's own dry-run estimate, `--llm-cost`)", "",
            f"`kiku.llm.estimate` on {c['sample']:,} real conversations of the 100k input (describe prompts counted "
            f"as characters / 4), scaled to each size; naming and hierarchy for {c['clusters']} base clusters. "
            "USD at kiku's price table (`kiku/llm/providers.py`); no call was made.", "",
            "| model | " + " | ".join(f"{int(n):,}: --llm-scope conversations" for n in sizes)
            + " | --llm-scope clusters (any size) |",
            "|---|" + "---:|" * (len(sizes) + 1),
        ]
        for model, by_size in c["models"].items():
            cells = " | ".join(f"${by_size[n]['conversations_scope_usd']:,.0f}" for n in sizes)
            last = by_size[sizes[-1]]
            lines.append(f"| {model} | {cells} | ${last['clusters_scope_usd']:.2f} ({last['clusters_scope_calls']} calls) |")
    for name, r in rows.items():
        counts = r.get("counts") or {}
        if counts:
            lines.append(f"\n{name}: topics per level {counts.get('clusters_by_level')}, "
                         f"truncated for embedding: {counts.get('truncated_for_embedding')}.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10k,100k,1m", help="comma-separated, from " + ",".join(SIZES))
    parser.add_argument("--report", action="store_true", help="only rewrite scale.md from saved numbers")
    parser.add_argument("--build-only", action="store_true", help="only build the inputs")
    parser.add_argument("--placement", action="store_true", help="time kNN placement vs UMAP transform")
    parser.add_argument("--placement-rows", type=int, default=100_000, help="rows for --placement (default 100k)")
    parser.add_argument("--llm-cost", type=int, metavar="CLUSTERS", help="hosted-LLM cost at 1M-100M for CLUSTERS base clusters")
    parser.add_argument("--resume", action="store_true",
                        help="keep the size's run folder: kiku resumes after its last finished stage")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--commit", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # one size in a fresh interpreter, so RUSAGE_CHILDREN is that size's alone
        print(json.dumps(run_one(args.child, Path(args.src), args.commit, resume=args.resume)))
        return
    if args.llm_cost:
        print(json.dumps(llm_cost(args.llm_cost), indent=1))
        return
    if args.placement:
        print(time_placement(rows=args.placement_rows), file=sys.stderr)
        write_report()
        return
    src, commit = (None, "") if args.report or args.build_only else snapshot_src()
    if not args.report:
        for name in args.sizes.split(","):
            if name not in SIZES:
                parser.error(f"unknown size {name!r}; use {', '.join(SIZES)}")
            if args.build_only:
                print(name, input_for(name)[1], file=sys.stderr)
                continue
            output = subprocess.run([sys.executable, __file__, "--child", name, "--src", str(src), "--commit", commit,
                                     *(["--resume"] if args.resume else [])], check=True, capture_output=True,
                                    text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            NUMBERS.mkdir(parents=True, exist_ok=True)
            (NUMBERS / f"scale-{name}.json").write_text(json.dumps(result, indent=1))
            (NUMBERS / f"scale-{name}.partial.json").unlink(missing_ok=True)
            print(name, {k: result[k] for k in ("wall", "peak_rss_bytes", "stages")}, file=sys.stderr)
    if not args.build_only:
        write_report()


if __name__ == "__main__":
    main()
