"""Write examples/wandb-feedback.csv: SYNTHETIC feedback for the bundled W&B queries (a demo).

The W&B queries carry no real feedback, so this file invents some, seeded, to show the
priorities workflow end to end (`kiku join`, `kiku report`). It is not data about W&B users:

- ``thumbs_up`` (binary): 1 with probability 0.85, but 0.35 for queries about sweeps (the
  planted weak spot that `kiku report` should rank first);
- ``revenue`` (numeric): a seeded log-normal "account value" per conversation;
- ``resolution`` (categorical): ``escalated`` when thumbs down and a coin says so, else ``resolved``;
- 12 conversations get no row and 3 rows name ids that are not in the run, so the join has
  mismatches to report.

Run: python examples/make_wandb_feedback.py
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = random.Random(17)
    rows = []
    records = [json.loads(line) for line in (HERE / "wandb-queries.jsonl").read_text(encoding="utf-8").splitlines()]
    for record in records:
        if rng.random() < 12 / len(records):
            continue
        text = record["messages"][0]["content"].lower()
        p = 0.35 if "sweep" in text else 0.85
        up = int(rng.random() < p)
        revenue = round(rng.lognormvariate(4.0, 0.8), 2)
        resolution = "resolved" if up or rng.random() < 0.5 else "escalated"
        rows.append({"conversation_id": record["id"], "thumbs_up": up, "revenue": revenue, "resolution": resolution})
    for k in range(3):
        rows.append({"conversation_id": f"deleted-conversation-{k + 1}", "thumbs_up": 1, "revenue": 10.0, "resolution": "resolved"})
    with open(HERE / "wandb-feedback.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["conversation_id", "thumbs_up", "revenue", "resolution"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {HERE / 'wandb-feedback.csv'}")


if __name__ == "__main__":
    main()
