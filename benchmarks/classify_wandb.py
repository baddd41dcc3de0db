"""Benchmark: kiku classify on the W&B query labels (77 rows; artifact / integrations / visualisation / other).

Cross-validated (stratified 5-fold, seed 0) accuracy and macro-F1 of the local backend (zero-shot
from descriptions, prototypes with the taxonomy's examples, trained logistic regression with and
without the taxonomy's examples) and of the local LLM backend (llama.cpp, Qwen2.5-Coder) with and
without few-shot examples, plus the time per 100 predictions.

    PYTHONPATH=src python benchmarks/classify_wandb.py [--llm qwen2.5-coder-0.5b] [--out benchmarks/results/classify.md]

Text per item: the query; context: the title and first lines of the matched document.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from kiku.classify._embedder import CachedEmbedder, default_embedder
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

from kiku.classify.backends import LLMClassifier, LocalClassifier, make_llm_client
from kiku.classify.data import read_items
from kiku.classify.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wandb-queries" / "labels-dev.jsonl"


def cross_validate(make, items, folds: int, seed: int, train: bool):  # noqa: ANN001, ANN201
    labels = np.array([i.label for i in items])
    predicted = np.empty(len(items), dtype=object)
    seconds = 0.0
    modes = set()
    for train_index, test_index in StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels):
        classifier = make()
        classifier.fit([items[i] for i in train_index] if train else [])
        modes.add(getattr(classifier, "mode", "llm"))
        started = time.perf_counter()
        predictions = classifier.predict([items[i] for i in test_index])
        seconds += time.perf_counter() - started
        predicted[test_index] = [p.label for p in predictions]
    failures = getattr(classifier, "failures", 0)
    return {
        "accuracy": accuracy_score(labels, list(predicted)),
        "macro_f1": f1_score(labels, list(predicted), average="macro"),
        "per_100": 100 * seconds / len(items),
        "mode": "/".join(sorted(modes)),
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--taxonomy", type=Path, default=ROOT / "examples" / "taxonomy-wandb.yaml")
    parser.add_argument("--llm", default=None, help="local model name, e.g. qwen2.5-coder-0.5b (omit to skip the LLM rows)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "classify.md")
    args = parser.parse_args()

    load_at_start = __import__("os").getloadavg()[0]
    items = read_items(args.data)
    taxonomy = load_taxonomy(args.taxonomy)
    no_examples = taxonomy.model_copy(update={"labels": [l.model_copy(update={"examples": [], "negative_examples": []}) for l in taxonomy.labels]})
    rows = []

    def record(name: str, result: dict) -> None:
        rows.append((name, result))
        print(f"{name}: accuracy {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}, "
              f"{result['per_100']:.2f} s/100, mode {result['mode']}, failures {result['failures']}", flush=True)

    base = default_embedder().embedder  # the raw MiniLM model; a fresh text cache per fold keeps timings honest

    def local(tax, **options):  # noqa: ANN001, ANN202
        return lambda: LocalClassifier(tax, embedder=CachedEmbedder(base), seed=args.seed, **options)

    record("local, zero-shot (label descriptions only)", cross_validate(local(no_examples), items, args.folds, args.seed, train=False))
    record("local, prototypes (descriptions + 4 taxonomy examples per label)",
           cross_validate(local(taxonomy), items, args.folds, args.seed, train=False))
    record("local, training folds only, default policy (logistic once every label has 8 examples, else prototypes)",
           cross_validate(local(no_examples), items, args.folds, args.seed, train=True))
    record("local, training folds only, logistic regression forced (min_examples=3)",
           cross_validate(local(no_examples, min_examples=3), items, args.folds, args.seed, train=True))
    record("local, training folds + taxonomy examples, default policy (logistic)",
           cross_validate(local(taxonomy), items, args.folds, args.seed, train=True))
    if args.llm:
        client = make_llm_client(f"local:{args.llm}", cache=None)  # no response cache: honest timings
        record(f"llm local ({args.llm}), zero-shot (descriptions only)",
               cross_validate(lambda: LLMClassifier(no_examples, client, few_shot=False, concurrency=1), items, args.folds, args.seed, train=False))
        record(f"llm local ({args.llm}), few-shot (3 taxonomy examples per label)",
               cross_validate(lambda: LLMClassifier(taxonomy, client, few_shot=True, examples_per_label=3, concurrency=1, seed=args.seed).fit([]),
                              items, args.folds, args.seed, train=False))

    lines = [
        "## Classification: W&B query labels",
        "",
        f"{len(items)} labelled queries ({', '.join(f'{n} {l}' for l, n in sorted(__import__('collections').Counter(i.label for i in items).items()))}); "
        f"{args.folds}-fold stratified cross-validation, seed {args.seed}; taxonomy `examples/taxonomy-wandb.yaml`. "
        f"Machine: {platform.machine()}, {__import__('os').cpu_count()} cores, 1-minute load average {load_at_start:.1f} at start. "
        "Time per 100 predictions excludes fitting.",
        "",
        "| backend | accuracy | macro-F1 | s / 100 predictions | mode |",
        "|---|---:|---:|---:|---|",
    ]
    for name, result in rows:
        failures = f" ({result['failures']} unparseable answers)" if result["failures"] else ""
        lines.append(f"| {name} | {100 * result['accuracy']:.1f}% | {100 * result['macro_f1']:.1f}% | {result['per_100']:.2f} | {result['mode']}{failures} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = args.out.read_text() if args.out.exists() else ""
    notes = existing.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in existing else "\n"
    args.out.write_text("\n".join(lines) + "\n\n<!-- notes -->" + notes)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
