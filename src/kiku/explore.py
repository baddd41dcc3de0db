"""Reading a finished run: the topic tree, exports of assignments and clusters.

Example:
    >>> from kiku.store import RunStore                               # doctest: +SKIP
    >>> print(topic_tree_lines(RunStore("runs/wandb"))[:3])           # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.tree import Tree

from kiku.errors import KikuError
from kiku.store import RunStore

#: How much text the HTML report keeps by default (characters; ``kiku export RUN html`` options):
#: each user message, each assistant reply, and a conversation's messages together.
EXPORT_CLIP = {"message": 1500, "reply": 300, "conversation": 2500}


def cluster_frame(store: RunStore) -> pd.DataFrame:
    """Clusters of every level, without member lists."""
    return store.read_table("clusters").drop_columns(["member_ids"]).to_pandas()


def _children(frame: pd.DataFrame) -> dict[Any, list[dict[str, Any]]]:
    children: dict[Any, list[dict[str, Any]]] = {}
    for row in frame.sort_values(["size", "name"], ascending=[False, True]).to_dict("records"):
        parent = row["parent_id"] if isinstance(row["parent_id"], str) else None
        children.setdefault(parent, []).append(row)
    return children


def _label(row: dict[str, Any]) -> str:
    share = f"{100 * row['share']:.1f}%"
    if row["is_noise"]:
        return f"[dim italic]{escape(row['name'])}[/]  [dim]{row['size']} · {share} (not a topic)[/]"
    label = f"[bold]{escape(row['name'])}[/]  [cyan]{row['size']}[/] · {share}"
    return label + _assigned_suffix(row)


def _assigned_suffix(row: dict[str, Any]) -> str:
    """In a run made by ``kiku assign``: the topic's share in the base run, or that it is new."""
    if row.get("is_new"):
        return "  [yellow](new)[/]"
    base = row.get("base_share")
    if base is None or base != base:  # absent or NaN: not an assigned run
        return ""
    return f"  [dim](base {100 * base:.1f}%)[/]"


def render_tree(store: RunStore, depth: int | None = None, min_share: float = 0.0) -> Tree:
    """A Rich tree of topics, largest first; the unclustered bucket is shown last and marked."""
    frame = cluster_frame(store)
    children = _children(frame)
    total = int(store.manifest.get("counts", {}).get("conversations", 0)) or int(frame[frame.level == 0]["size"].sum())
    root = Tree(f"[bold]{total} conversations[/]  ({escape(str(store.path))})")

    def add(node: Tree, parent: str | None, level_from_top: int) -> None:
        rows = children.get(parent, [])
        rows = [r for r in rows if not r["is_noise"]] + [r for r in rows if r["is_noise"]]
        for row in rows:
            if row["share"] < min_share and not row["is_noise"]:
                continue
            branch = node.add(_label(row))
            if row["is_noise"] or (depth is not None and level_from_top >= depth):
                continue
            add(branch, row["cluster_id"], level_from_top + 1)

    add(root, None, 0)
    return root


def topic_tree_lines(store: RunStore) -> list[str]:
    """The tree as plain text lines ``'  '*depth + 'name (size, share%)'`` (for tests and scripts)."""
    frame = cluster_frame(store)
    children = _children(frame)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for row in children.get(parent, []):
            lines.append(f"{'  ' * depth}{row['name']} ({row['size']}, {100 * row['share']:.1f}%)")
            walk(row["cluster_id"], depth + 1)

    walk(None, 0)
    return lines


def assignments_frame(store: RunStore) -> pd.DataFrame:
    """``conversation_id, level, cluster_id, cluster_name``, one row per conversation and level."""
    connection = store.connect()
    return connection.execute(
        """
        select a.conversation_id, a.level, a.cluster_id, c.name as cluster_name
        from assignments a join clusters c using (cluster_id)
        order by a.level, a.conversation_id
        """
    ).df()


def write_frame(frame: pd.DataFrame, out_file: Path) -> None:
    """Write a frame by the file's extension: .csv, .parquet or .jsonl."""
    suffix = out_file.suffix.lower()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(out_file, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(out_file, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(out_file, orient="records", lines=True, force_ascii=False, date_format="iso")
    else:
        raise KikuError(f"{out_file}: unknown output type {suffix or '(none)'}; use .csv, .parquet or .jsonl")


def export_table(store: RunStore, kind: str, out_file: Path) -> int:
    """Write ``assignments`` or ``clusters`` to ``out_file``; returns the number of rows."""
    if kind == "assignments":
        frame = assignments_frame(store)
    elif kind == "clusters":
        frame = cluster_frame(store)
    else:
        raise KikuError(f"unknown export {kind!r}; choose assignments or clusters")
    write_frame(frame, Path(out_file))
    return len(frame)
