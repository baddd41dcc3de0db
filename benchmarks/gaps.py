"""Benchmark: gap types (capability / inventory / other) on 560 hand-labelled real W&B queries.

Labels: ``benchmarks/data/wandb-gaps.jsonl`` (one per query of Kura's W&B set, labelled by the
rules in ``docs/priorities.md``); the query texts are read from ``../shared/data`` (the same
560 queries as ``examples/wandb-queries.jsonl``). Measured on every query:

- ``majority``: always the most frequent label (the floor every backend must beat);
- ``built-in (kiku gaps)``: the local backend with the shipped taxonomy only, exactly what
  ``kiku gaps RUN`` does (no labelled data);
- ``prototypes + labels (5-fold)`` and ``logistic + labels (5-fold)``: the local backend also
  learning from the other folds' labels (stratified 5-fold, seed 0), what a user gets after
  labelling a few hundred of their own conversations (``kiku classify``);
- ``llm`` (``--llm local``): the LLM backend with the same taxonomy, on ``--llm-sample`` queries.

    PYTHONPATH=src nice -n 10 python benchmarks/gaps.py [--llm local --llm-sample 120] [--out benchmarks/results/gaps.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from kiku.classify.backends import LLMClassifier, LocalClassifier, make_llm_client
from kiku.classify.data import Item
from kiku.gaps import gap_taxonomy

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "benchmarks" / "data" / "wandb-gaps.jsonl"
QUERIES = ROOT.parent / "shared" / "data" / "wandb-queries" / "conversations.json"


def load_items() -> list[Item]:
    texts = {q["query_id"]: q["query"] for q in json.loads(QUERIES.read_text(encoding="utf-8"))}
    items = []
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        items.append(Item(id=record["query_id"], text=texts[record["query_id"]], label=record["label"]))
    return items


def scores(name: str, gold: list[str], predicted: list[str], labels: list[str], seconds: float) -> dict:
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    return {
        "name": name, "n": len(gold), "accuracy": accuracy_score(gold, predicted),
        "macro_f1": f1_score(gold, predicted, labels=labels, average="macro", zero_division=0),
        "per_label": {label: (precision[k], recall[k], f1[k], int(support[k])) for k, label in enumerate(labels)},
        "confusion": confusion_matrix(gold, predicted, labels=labels).tolist(),
        "seconds_per_100": 100 * seconds / max(1, len(gold)),
    }


def cross_validated(items: list[Item], make, seed: int = 0, folds: int = 5) -> tuple[list[str], float]:  # noqa: ANN001
    gold = np.array([i.label for i in items])
    predicted = np.empty(len(items), dtype=object)
    seconds = 0.0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(gold, gold):
        classifier = make().fit([items[i] for i in train])
        start = time.perf_counter()
        predictions = classifier.predict([items[i] for i in test])
        seconds += time.perf_counter() - start
        for index, prediction in zip(test, predictions):
            predicted[index] = prediction.label
    return list(predicted), seconds


def markdown(results: list[dict], labels: list[str], counts: Counter) -> str:
    lines = [
        f"Labelled set: {sum(counts.values())} real W&B queries ({', '.join(f'{label} {counts[label]}' for label in labels)}); "
        f"machine: {platform.machine()}, {platform.python_version()}.",
        "",
        "| backend | n | accuracy | macro-F1 | " + " | ".join(f"{label} P / R" for label in labels) + " | s / 100 |",
        "|---|---|---|---|" + "---|" * len(labels) + "---|",
    ]
    for r in results:
        per = " | ".join(f"{r['per_label'][label][0]:.2f} / {r['per_label'][label][1]:.2f}" for label in labels)
        lines.append(f"| {r['name']} | {r['n']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {per} | {r['seconds_per_100']:.2f} |")
    lines += ["", "Confusion (rows gold, columns predicted, order " + ", ".join(labels) + "):", ""]
    for r in results:
        lines.append(f"- {r['name']}: {r['confusion']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--llm", default=None, help="also measure the LLM backend, e.g. local")
    parser.add_argument("--llm-sample", type=int, default=120, help="queries for the LLM backend (stratified, seeded)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gaps.md")
    args = parser.parse_args()

    items = load_items()
    taxonomy = gap_taxonomy()
    labels = taxonomy.label_names
    gold = [i.label for i in items]
    counts = Counter(gold)
    results = []
    majority = counts.most_common(1)[0][0]
    results.append(scores("majority", gold, [majority] * len(gold), labels, 0.0))

    builtin = LocalClassifier(taxonomy).fit()
    start = time.perf_counter()
    predicted = [p.label for p in builtin.predict(items)]
    results.append(scores(f"built-in taxonomy ({builtin.mode}, kiku gaps)", gold, predicted, labels, time.perf_counter() - start))
    print(results[-1]["name"], round(results[-1]["accuracy"], 3), round(results[-1]["macro_f1"], 3), flush=True)

    predicted, seconds = cross_validated(items, lambda: LocalClassifier(taxonomy, min_examples=10**9))
    results.append(scores("prototypes + labels (5-fold)", gold, predicted, labels, seconds))
    predicted, seconds = cross_validated(items, lambda: LocalClassifier(taxonomy, min_examples=8))
    results.append(scores("logistic + labels (5-fold)", gold, predicted, labels, seconds))
    print(results[-1]["name"], round(results[-1]["accuracy"], 3), round(results[-1]["macro_f1"], 3), flush=True)

    if args.llm:
        rng = np.random.default_rng(0)
        by_label: dict[str, list[Item]] = {}
        for item in items:
            by_label.setdefault(str(item.label), []).append(item)
        share = args.llm_sample / len(items)
        sample: list[Item] = []
        for label, group in sorted(by_label.items()):
            take = max(1, min(len(group), round(share * len(group)) if label == majority else len(group)))
            sample += [group[k] for k in sorted(rng.choice(len(group), size=min(take, len(group)), replace=False))]
        sample = sample[: max(args.llm_sample, len(sample))]
        classifier = LLMClassifier(taxonomy, make_llm_client(args.llm))
        start = time.perf_counter()
        predicted = [p.label for p in classifier.predict(sample)]
        results.append(scores(f"llm {args.llm} (stratified sample)", [str(i.label) for i in sample], predicted, labels,
                              time.perf_counter() - start))
    text = markdown(results, labels, counts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
