"""Assemble benchmarks/RESULTS.md from the per-area result files in benchmarks/results/.

Each benchmark script writes its own file (so one can be re-run alone); this joins them in a
fixed order under one title.

    python benchmarks/assemble_results.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    ("quality_suite.md", "Quality suite: eight labelled sets, kiku vs peers (issue 11)", "benchmarks/quality_suite.py"),
    ("quality_suite_banking77_full.md", "Quality suite on all 13,083 BANKING77 rows (issue 11)", "benchmarks/quality_suite.py --sets banking77 --max-rows 0 --out benchmarks/results/quality_suite_banking77_full.md"),
    ("embedders.md", "What is embedded: MiniLM input length (issue 11 point 5)", "benchmarks/embedders.py --max-rows 1500"),
    ("granularity.md", "Granularity candidates for choose_granularity (issue 11 point 2)", "benchmarks/granularity_sweep.py bbc,chitchat,banking77,chatterbot,mtbench,wandb"),
    ("granularity_signals.md", "Signals for the granularity cut: stability, prediction strength, EVoC layers (issue 11 point 2)", "benchmarks/granularity_signals.py"),
    ("granularity_branches.md", "Per-branch cuts of the granularity tree: island branches (the default), excess of mass, noise-relative, separation (issue 11 point 2)", "benchmarks/granularity_branches.py"),
    ("granularity_stability.md", "Granularity stability: other samples and seeds of the same data (issue 11 point 2)", "benchmarks/granularity_stability.py"),
    ("hierarchy_methods.md", "Top of the hierarchy: grouping base clusters (issue 11 point 3)", "benchmarks/hierarchy_methods.py"),
    ("mpnet.md", "all-mpnet-base-v2 vs int8 MiniLM (issue 11 point 5)", "benchmarks/mpnet.py wandb,mtbench,chatterbot,banking77,bbc,chitchat (in its own venv with torch); benchmarks/mpnet_numpy_check.py"),
    ("names.md", "Offline topic names: name fidelity (issue 11)", "benchmarks/names_fidelity.py"),
    ("quality.md", "Clustering quality on BANKING77 (issue 2)", "benchmarks/quality_banking77.py"),
    ("quickstart.md", "Quick start on the bundled example (issue 10)", "benchmarks/quickstart.py"),
    ("speed.md", "Speed and memory of `kiku run` (issue 2)", "benchmarks/speed.py"),
    ("scale.md", "Scale: 10k, 100k and 1M conversations (issue 15)", "benchmarks/scale.py --sizes 10k,100k,1m; --placement; --llm-cost K"),
    ("ray.md", "Ray engine overhead vs the local engine (issue 15)", "benchmarks/ray_overhead.py"),
    ("loaders.md", "Loaders (issue 2)", "benchmarks/loaders.py"),
    ("llm.md", "LLM pipeline (issue 3)", "benchmarks/llm_wandb.py"),
    ("ui.md", "Explorer load time (issue 4)", "benchmarks/ui_load.py"),
    ("explorer.md", "Explorer as an analysis tool (issue 16)", "benchmarks/explorer.py --before-src <older kiku src>"),
    ("classify.md", "Classifiers on the W&B labels (issue 5)", "benchmarks/classify_wandb.py"),
    ("llm_scopes.md", "LLM scopes, local inference, name fidelity (issue 13)", "benchmarks/llm_scopes.py throughput|wandb|fidelity|server"),
    ("living.md", "Living topics: assign, candidate new topics, edits (issue 14)", "benchmarks/living_topics.py --ood 400"),
    ("priorities.md", "Priorities: are the flags calibrated? (issue 17)", "benchmarks/priorities.py --trials 200"),
    ("gaps.md", "Gap types on 560 hand-labelled W&B queries (issue 17)", "benchmarks/gaps.py --llm local --llm-sample 40"),
    ("map_stages.md", "Describe and embed in chunks: memory and time, before and after (issue 15)", "benchmarks/map_stages.py"),
]


def main() -> None:
    parts = [
        "# kiku benchmark results",
        "",
        "All numbers were measured on the project's 2-core, 24 GiB machine without a GPU. Such",
        "machines are noisy and were often shared with other jobs while these ran: compare the",
        "ratios inside one table (measured side by side in one run), not absolute times across tables.",
        "Each section names the script that produced it; re-run it to refresh that section, then run",
        "`python benchmarks/assemble_results.py`.",
    ]
    for file, title, script in ORDER:
        path = HERE / "results" / file
        if not path.exists():
            parts += ["", f"## {title}", "", f"_Not measured yet: run `python {script}`._"]
            continue
        body = path.read_text(encoding="utf-8").strip().splitlines()
        # demote the file's own top heading so the sections nest under this page's title
        body = [("#" + line) if line.startswith("#") else line for line in body]
        parts += ["", f"## {title}", "", f"_Produced by `{script}`._", "", *body]
    (HERE / "RESULTS.md").write_text("\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
