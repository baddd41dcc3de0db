"""Benchmark of the LLM pipeline (``kiku run --llm local``) on the W&B queries and MT-Bench.

Writes benchmarks/results/llm.md. Usage::

    PYTHONPATH=src python benchmarks/llm_wandb.py [--subset N] [--mtbench-sample 3]

* W&B: ``kiku run`` with ``--llm local`` on the first ``--subset`` of the 560 queries
  (0 = all), then a second run into a new folder (the response cache must answer every call).
* MT-Bench: kiku's describe prompt tokens for all 1,000 conversations counted with the local
  model's tokenizer (no generation, the dry-run path), plus real calls on a sample, next to
  Kura's published gpt-4o-mini figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED = ROOT.parent / "shared" / "data"
WANDB = SHARED / "wandb-queries" / "conversations.json"
MTBENCH = SHARED / "mtbench" / "conversations.jsonl"
KURA_INPUT, KURA_OUTPUT, KURA_CONVERSATIONS = 1_748_032, 104_218, 1000


def kiku_run(source: Path, out: Path, args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kiku", "run", str(source), "--out", str(out), *args],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"kiku run failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads((out / "manifest.json").read_text())


def wandb_subset(path: Path, n: int) -> None:
    from kiku.loaders import load_conversations

    rows = []
    for conversation in load_conversations(WANDB):
        rows.append({"id": conversation.id, "messages": [{"role": m.role, "content": m.content} for m in conversation.messages]})
        if n and len(rows) >= n:
            break
    path.write_text("\n".join(json.dumps(r) for r in rows))


def mtbench(sample: int, model: str) -> dict:
    from kiku.llm import build_llm_stages
    from kiku.llm.estimate import estimate_run
    from kiku.loaders import load_conversations

    conversations = list(load_conversations(MTBENCH))
    with tempfile.TemporaryDirectory() as cache:
        describer, namer, hierarchy, client = build_llm_stages(f"local/{model}", cache=Path(cache) / "c.sqlite")
        start = time.perf_counter()
        estimate = estimate_run(conversations, describer, namer, hierarchy)
        every = sum(client.count_tokens(m["content"]) + 8 for c in conversations for m in describer.messages_for(c))
        count_seconds = time.perf_counter() - start
        chosen = conversations[:: max(1, len(conversations) // sample)][:sample] if sample else []
        start = time.perf_counter()
        describer.describe(chosen)
        sample_seconds = time.perf_counter() - start
        usage = client.usage.by_stage.get("describe")
    return {"n": len(conversations), "estimate": estimate, "every_prompt": every, "count_seconds": count_seconds, "sample": len(chosen),
            "sample_prompt": usage.prompt_tokens if usage else 0, "sample_completion": usage.completion_tokens if usage else 0,
            "sample_calls": usage.calls if usage else 0, "sample_seconds": sample_seconds,
            "sample_exact_prompt": sum(client.count_tokens(m["content"]) + 8 for c in chosen for m in describer.messages_for(c))}


def mtbench_lines(mt: dict, model: str) -> list[str]:
    est = mt["estimate"]
    d = est.by_stage["describe"]
    n = mt["n"]
    per_call_prompt = d["prompt_tokens"] / max(1, d["calls"])
    lines = [
        "### Tokens per conversation on MT-Bench (1,000 conversations) vs Kura",
        "",
        f"The file holds {n:,} conversations but only {d['calls']} distinct ones (the same question/answer pairs repeat). "
        "kiku's cache is keyed by content, so it makes one describe call per distinct conversation; Kura calls the "
        "model for every row.",
        "",
        "| | conversations | LLM calls | input tokens | output tokens | input / conv | output / conv |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| Kura, gpt-4o-mini (published, all stages) | {KURA_CONVERSATIONS:,} | | {KURA_INPUT:,} | {KURA_OUTPUT:,} | "
        f"{KURA_INPUT / KURA_CONVERSATIONS:,.0f} | {KURA_OUTPUT / KURA_CONVERSATIONS:,.0f} |",
        f"| kiku describe, every row sent (no dedupe), counted with the {model} tokenizer | {n:,} | {n:,} | {mt['every_prompt']:,} | "
        f"~{n * 120:,} (est.) | {mt['every_prompt'] / n:,.0f} | ~120 |",
        f"| kiku describe, as run (content cache) | {n:,} | {d['calls']} | {d['prompt_tokens']:,} | ~{d['completion_tokens']:,} (est.) | "
        f"{d['prompt_tokens'] / n:,.0f} | ~{d['completion_tokens'] / n:,.0f} |",
        f"| kiku all stages as run, dry-run estimate | {n:,} | {est.calls} | {est.prompt_tokens:,} | ~{est.completion_tokens:,} | "
        f"{est.prompt_tokens / n:,.0f} | ~{est.completion_tokens / n:,.0f} |",
    ]
    if mt["sample"]:
        lines.append(f"| kiku describe, actual calls on a sample | {mt['sample']} | {mt['sample_calls']} | {mt['sample_prompt']:,} | "
                     f"{mt['sample_completion']:,} | {mt['sample_prompt'] / mt['sample']:,.0f} | {mt['sample_completion'] / mt['sample']:,.0f} |")
    lines += [
        "",
        f"Counting the prompts took {mt['count_seconds']:.1f} s (tokenizer only, no generation); "
        f"{per_call_prompt:,.0f} prompt tokens per distinct conversation. On the sample the dry-run count was "
        f"{mt['sample_exact_prompt']:,} tokens vs {mt['sample_prompt']:,} actually used ({mt['sample_calls']} call(s), "
        f"{mt['sample_seconds']:.0f} s). kiku sends no schema or tool definition in the prompt (the schema constrains "
        "decoding; hosted providers get it as a response format) and cuts each conversation to 6,000 characters. "
        "Output tokens are estimated at 120 per describe call (the sample shows the real figure).",
        "",
    ]
    return lines


def topic_lines(run: Path) -> list[str]:
    """The LLM-built hierarchy of a run, top level with its children, for the reader to judge."""
    import duckdb

    clusters = duckdb.sql(
        f"select cluster_id, level, parent_id, name, size from '{run / 'clusters.parquet'}' order by level desc, size desc"
    ).fetchall()
    top = max(level for _, level, _, _, _ in clusters)
    counts = {level: sum(1 for c in clusters if c[1] == level) for level in range(top + 1)}
    lines = [f"Topics the first run built (clusters per level, 0 = base: {counts}); top level with its children:", ""]
    for cid, level, _, name, size in clusters:
        if level != top:
            continue
        lines.append(f"- **{name}** ({size})")
        for _, _, parent, child, child_size in clusters:
            if parent == cid:
                lines.append(f"  - {child} ({child_size})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subset", type=int, default=0, help="W&B queries to run (0 = all 560)")
    parser.add_argument("--clusters", type=int, default=0, help="base clusters (0 = kiku's automatic k)")
    parser.add_argument("--max-top", type=int, default=0, help="top-level topics (0 = kiku's default)")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--mtbench-sample", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "llm.md")
    parser.add_argument("--mtbench-only", action="store_true", help="redo only the MT-Bench section of --out")
    args = parser.parse_args()
    if args.mtbench_only:
        text = args.out.read_text()
        head = text.split("### Tokens per conversation on MT-Bench")[0]
        lines = mtbench_lines(mtbench(args.mtbench_sample, args.model), args.model)
        args.out.write_text(head + "\n".join(lines))
        print("\n".join(lines))
        return
    work = Path(tempfile.mkdtemp(prefix="kiku-llm-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "KIKU_CACHE_DIR": str(work / "cache")}
    source = work / "wandb.jsonl"
    wandb_subset(source, args.subset)
    n = sum(1 for _ in source.open())
    run_args = ["--llm", f"local/{args.model}", "--llm-scope", "conversations"]  # the full pipeline (clusters: llm_scopes.py)
    if args.clusters:
        run_args += ["--clusters", str(args.clusters)]
    if args.max_top:
        run_args += ["--max-top", str(args.max_top)]
    settings = " ".join(run_args[4:]) or "kiku's defaults: automatic k, up to 8 top-level topics"
    load = os.getloadavg()
    first_s, first = kiku_run(source, work / "run1", run_args, env)
    second_s, second = kiku_run(source, work / "run2", run_args, env)
    mt = mtbench(args.mtbench_sample, args.model)

    llm = first["llm"]
    stages = first["stages"]
    lines = [
        "## LLM pipeline (`--llm local`)",
        "",
        f"Machine: {os.cpu_count()} cores (1-minute load average {load[0]:.1f} at start; nothing else was running), "
        f"Python {platform.python_version()}, llama-cpp-python 0.3.36, model {args.model} (Q4_K_M), "
        f"KIKU_LLM_THREADS={os.environ.get('KIKU_LLM_THREADS', 'default')}.",
        "",
        f"### W&B queries: {'all' if n == 560 else f'first {n} of'} 560 ({settings})",
        "",
        "| stage | first run (s) | LLM calls | prompt tokens | completion tokens |",
        "|---|---:|---:|---:|---:|",
    ]
    for stage in ("load", "describe", "embed", "project", "cluster", "name", "hierarchy"):
        part = llm["by_stage"].get(stage, {})
        lines.append(f"| {stage} | {stages[stage]['seconds']:.1f} | {part.get('calls', 0)} | {part.get('prompt_tokens', 0):,} | "
                     f"{part.get('completion_tokens', 0):,} |")
    describe = llm["by_stage"]["describe"]
    per_call = stages["describe"]["seconds"] / max(1, describe["calls"])
    lines += [
        f"| **total** | **{first_s:.1f}** | **{llm['calls']}** | **{llm['prompt_tokens']:,}** | **{llm['completion_tokens']:,}** |",
        "",
        f"- per conversation (describe): {describe['prompt_tokens'] / n:.0f} prompt + {describe['completion_tokens'] / n:.0f} "
        f"completion tokens, {per_call:.1f} s per call; all stages: {llm['prompt_tokens'] / n:.0f} + {llm['completion_tokens'] / n:.0f} tokens per conversation",
        f"- retries {llm['retries']}, failed items {len(llm['failures'])}",
        f"- second run (new run folder, same response cache): **{second_s:.1f} s, {second['llm']['calls']} LLM calls**, "
        f"{second['llm']['cache_hits']} cache hits",
    ]
    if n < 560:
        lines.append(f"- extrapolated to all 560 queries at this speed: describe ~{560 * per_call / 60:.0f} min (one call per query)")
    lines += ["", *topic_lines(work / "run1"), ""]
    lines += mtbench_lines(mt, args.model)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
