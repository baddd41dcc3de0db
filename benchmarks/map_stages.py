"""Memory and time of the map stages (describe, embed) in chunks, against the one-shot stages they replaced.

Each stage runs in its own child process over the same loaded run folder, so a child's peak RSS
(getrusage) is that stage's peak plus the imports. ``before`` is kiku's source at the commit
before the engine seam (``git archive BEFORE src``), ``after`` this checkout (``chunk_rows``
10,000, the local engine).

Inputs, real data only (``../shared/data``):

- ``mtbench xN``: the 1,000 MT-Bench conversations repeated under new ids (N x 1,000 rows; only
  13 distinct user texts, the text kiku embeds, so the run measures the stages' own cost and the duplicate handling, not
  the model);
- ``banking77 3k``: 3,000 distinct BANKING77 queries (the model's cost dominates: chunking must
  not slow it).

    python benchmarks/map_stages.py                 # writes benchmarks/results/map_stages.md
    python benchmarks/map_stages.py --sizes 10000   # fewer rows
    python benchmarks/map_stages.py --sizes 300000 --banking 0 --codes after --append
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "map_stages.md"
#: The last commit with the one-shot describe and embed stages.
BEFORE = "857ec38"


def mtbench_input(target: Path, rows: int) -> Path:
    source = [json.loads(line) for line in (SHARED / "mtbench" / "conversations.jsonl").read_text().splitlines() if line]
    with open(target, "w", encoding="utf-8") as out:
        for i in range(rows):
            row = source[i % len(source)]
            messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
            out.write(json.dumps({"id": f"{i}-{row['chat_id']}", "messages": messages}, ensure_ascii=False) + "\n")
    return target


def banking_input(target: Path, rows: int) -> Path:
    seen: set[str] = set()
    with open(SHARED / "banking77" / "train.csv", encoding="utf-8") as handle, open(target, "w", encoding="utf-8") as out:
        for record in csv.DictReader(handle):
            text = record["text"].strip()
            if text in seen:
                continue
            seen.add(text)
            out.write(json.dumps({"id": f"b{len(seen)}", "messages": [{"role": "user", "content": text}]}) + "\n")
            if len(seen) == rows:
                break
    return target


def before_source(where: Path) -> Path:
    archive = where / "before.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), BEFORE, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(where / "before", filter="data")
    return where / "before" / "src"


def child(stage: str, run: str, source: str) -> None:
    """One stage in this process; prints its seconds, peak RSS (MB) and details as JSON."""
    from kiku.describe import OfflineDescriber
    from kiku.embed import MiniLMEmbedder
    from kiku.pipeline import Progress, RunConfig, stage_describe, stage_embed, stage_load
    from kiku.store import RunStore

    store = RunStore(run)
    store.manifest.setdefault("input", {})
    start = time.perf_counter()
    result: object
    if stage == "load":
        result = stage_load(store, Path(source), RunConfig(), Progress())
    elif stage == "describe":
        result = stage_describe(store, OfflineDescriber(), Progress())
    else:
        result = stage_embed(store, MiniLMEmbedder(batch_size=32, max_tokens=48), RunConfig(), Progress())
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 2), "rss_mb": round(rss), "details": result}, default=str))


def run_stage(stage: str, src: Path, run: Path, source: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run([sys.executable, __file__, "--child", stage, str(run), str(source)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{stage} ({src}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(name: str, source: Path, sources: dict[str, Path], work: Path) -> list[str]:
    loaded = work / f"{name}-loaded"
    shutil.rmtree(loaded, ignore_errors=True)
    load = run_stage("load", sources["after"], loaded, source)
    lines = []
    for label, src in sources.items():
        run = work / f"{name}-{label}"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(loaded, run)
        describe = run_stage("describe", src, run, source)
        embed = run_stage("embed", src, run, source)
        details = embed["details"] if isinstance(embed["details"], dict) else {}
        extra = ", ".join(f"{k} {details[k]}" for k in ("chunks", "embedded", "duplicates") if k in details)
        lines.append(f"| {name} | {load['details']:,} | {label} | {describe['seconds']:.1f} | {describe['rss_mb']:,} | "
                     f"{embed['seconds']:.1f} | {embed['rss_mb']:,} | {extra or '-'} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="mtbench row counts, comma-separated")
    parser.add_argument("--banking", type=int, default=3000, help="distinct BANKING77 rows (0: skip)")
    parser.add_argument("--codes", default="before,after", help="which code to measure: before, after or both")
    parser.add_argument("--append", action="store_true", help="add the rows to the results file instead of rewriting it")
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "RUN", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    lines = []
    with tempfile.TemporaryDirectory(prefix="kiku-map-") as tmp:
        work = Path(tmp)
        codes = args.codes.split(",")
        sources = {label: before_source(work) if label == "before" else ROOT / "src" for label in codes}
        for rows in (int(x) for x in args.sizes.split(",") if x):
            lines += measure(f"mtbench x{rows // 1000}", mtbench_input(work / f"mtbench-{rows}.jsonl", rows), sources, work)
        if args.banking:
            lines += measure(f"banking77 {args.banking // 1000}k", banking_input(work / "banking.jsonl", args.banking),
                             sources, work)
    header = [
        "Each stage in its own process over the same loaded run; peak RSS is the process's (imports included, "
        "~150 MB). `before`: the one-shot stages (commit " + BEFORE + "); `after`: chunks of 10,000 rows written as "
        "parts, the local engine. mtbench xN repeats the 1,000 MT-Bench conversations N times under new ids "
        "(13 distinct user texts); banking77 3k is 3,000 distinct queries.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other work), Python {platform.python_version()}.",
        "",
        "| input | rows | code | describe s | describe peak MB | embed s | embed peak MB | embed details |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    if args.append and RESULTS.exists():
        RESULTS.write_text(RESULTS.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")
    else:
        RESULTS.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
