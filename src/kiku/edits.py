"""Hand curation of a run's topics: an append-only edit log applied by every reader.

``kiku edit RUN rename|merge|split|move|undo`` appends one JSON line to ``edits.jsonl`` in the
run folder (:data:`kiku.store.EDIT_LOG`); the Parquet files the pipeline wrote are never
changed. The store applies the log whenever ``clusters`` or ``assignments`` is read
(``RunStore.read_table``, ``read_frame``, ``open_views``), so ``kiku tree``, ``export``,
``sql``, ``ui``, ``classify`` and ``kiku assign`` all see the curated tree.

Each edit keeps a snapshot of its target (level, name, size and a sample of member ids). When
``kiku run`` re-runs stages, an edit is applied again to the new tree: to its target when at
least half of the sampled members are still there, else to the topic of the same level that
now holds most of them (*re-pointed*), else it is *not applied*; every such case is reported
(:func:`edit_statuses`, printed after ``kiku run``), never silently dropped.

Shapes:
    clusters table (``CLUSTER_SCHEMA``) + assignments table + edits -> edited clusters and
    assignments (same schemas; sizes, shares, member lists and map positions recomputed).

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> read_edits(folder)
    []
"""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from kiku.errors import KikuError

Action = Literal["rename", "merge", "split", "move", "undo"]
#: Member ids kept per target snapshot (enough to recognise a topic after a re-run).
SAMPLE_SIZE = 64
#: A target is the same topic when at least this share of its sampled members is still in it.
SAME_TOPIC = 0.5


class Snapshot(BaseModel):
    """What an edit's target looked like when the edit was made."""

    level: int
    name: str
    size: int
    sample: list[str] = Field(default_factory=list)


class Edit(BaseModel):
    """One line of ``edits.jsonl``: what was done, to which topic, when and by whom.

    ``args`` by action: rename ``{"name", "description"?}``; merge ``{"others": [ids], "name"?}``;
    split ``{"parts": [{"id", "name", "member_ids", "keyphrases"}]}``; move ``{"to": id}`` or
    ``{"to": id, "conversations": [ids]}``; undo ``{"seq": n}``.

    >>> Edit(seq=1, action="rename", target="L0-001", args={"name": "Card arrival"}).action
    'rename'
    """

    seq: int
    action: Action
    target: str
    args: dict[str, Any] = Field(default_factory=dict)
    at: str = ""
    by: str | None = None
    snapshots: dict[str, Snapshot] = Field(default_factory=dict)


class EditStatus(BaseModel):
    """How an edit fared against the run's current tree.

    ``state``: ``applied``, ``changed`` (applied; its target changed since, e.g. after a re-run),
    ``repointed`` (applied to ``applied_to`` instead: the target id now names another topic),
    ``not_applied`` (no topic holds the target's members any more), ``undone``.
    """

    seq: int
    action: Action
    target: str
    state: Literal["applied", "changed", "repointed", "not_applied", "undone"]
    applied_to: str | None = None
    note: str = ""

    def one_line(self) -> str:
        """``#3 merge L0-004: repointed to L0-007 (...)``."""
        where = f" to {self.applied_to}" if self.applied_to and self.applied_to != self.target else ""
        note = f" ({self.note})" if self.note else ""
        return f"#{self.seq} {self.action} {self.target}: {self.state.replace('_', ' ')}{where}{note}"


# --- the log ----------------------------------------------------------------------------------


def log_path(folder: str | Path) -> Path:
    from kiku.store import EDIT_LOG

    return Path(folder) / EDIT_LOG


def read_edits(folder: str | Path) -> list[Edit]:
    """Every edit of a run, in order (``[]`` without a log); a bad line is a one-line error."""
    path = log_path(folder)
    if not path.is_file():
        return []
    edits = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            edits.append(Edit.model_validate_json(line))
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise KikuError(f"{path}:{number}: not an edit record ({first}); fix or remove that line") from None
    return edits


def _who() -> str | None:
    name = os.environ.get("KIKU_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no user database
        return None


def append_edit(folder: str | Path, edit: Edit) -> Edit:
    """Append one edit to the log (one ``write`` of one line, flushed and synced)."""
    path = log_path(folder)
    line = edit.model_dump_json(exclude_none=True) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    _CACHE.clear()
    return edit


# --- the tree an edit works on ---------------------------------------------------------------


class Tree:
    """A run's topics as nodes plus each conversation's base topic (what the edits change)."""

    def __init__(self, nodes: dict[str, dict[str, Any]], base_of: dict[str, str], order: list[str]) -> None:
        self.nodes = nodes
        self.base_of = base_of
        self.order = order  # conversation ids in assignment order
        self.emptied: set[str] = set()

    @classmethod
    def from_tables(cls, clusters: pa.Table, assignments: pa.Table) -> Tree:
        nodes = {str(r["cluster_id"]): r for r in clusters.drop_columns(["member_ids"]).to_pylist()}
        levels = assignments.column("level").to_numpy()
        base = assignments.filter(pa.array(levels == 0))
        ids = [str(i) for i in base.column("conversation_id").to_pylist()]
        topics = [str(c) for c in base.column("cluster_id").to_pylist()]
        return cls(nodes, dict(zip(ids, topics)), ids)

    def members(self, cluster_id: str) -> list[str]:
        """Conversation ids under ``cluster_id`` (all levels below it)."""
        under = self.descendants(cluster_id) | {cluster_id}
        return [c for c in self.order if self.base_of[c] in under]

    def descendants(self, cluster_id: str) -> set[str]:
        children: dict[str, list[str]] = {}
        for cid, node in self.nodes.items():
            if node.get("parent_id") is not None:
                children.setdefault(str(node["parent_id"]), []).append(cid)
        out: set[str] = set()
        stack = [cluster_id]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in out:
                    out.add(child)
                    stack.append(child)
        return out

    def snapshot(self, cluster_id: str) -> Snapshot:
        node = self.require(cluster_id)
        members = self.members(cluster_id)
        return Snapshot(level=int(node["level"]), name=str(node["name"]), size=len(members), sample=sample_ids(members))

    def require(self, cluster_id: str) -> dict[str, Any]:
        node = self.nodes.get(cluster_id)
        if node is None:
            known = ", ".join(sorted(self.nodes)[:8])
            raise KikuError(f"no topic {cluster_id!r} in this run (ids look like: {known}); list them with `kiku edit RUN topics`")
        return node


def sample_ids(members: Sequence[str], size: int = SAMPLE_SIZE) -> list[str]:
    """A stable sample of member ids: the ``size`` with the smallest sha1 (same set -> same sample).

    >>> sample_ids(["a", "b", "c"], 2) == sample_ids(["c", "b", "a"], 2)
    True
    """
    return sorted(members, key=lambda m: hashlib.sha1(m.encode()).hexdigest())[:size]


def _overlap(tree: Tree, cluster_id: str, sample: Sequence[str]) -> float:
    if not sample:
        return 1.0
    under = tree.descendants(cluster_id) | {cluster_id}
    return sum(1 for m in sample if tree.base_of.get(m) in under) / len(sample)


def _resolve(tree: Tree, target: str, snapshot: Snapshot | None) -> tuple[str | None, str, str]:
    """Where an edit applies now: (cluster id or None, state, note)."""
    if snapshot is None:
        return (target, "applied", "") if target in tree.nodes else (None, "not_applied", "target is gone")
    if target in tree.nodes:
        overlap = _overlap(tree, target, snapshot.sample)
        if overlap >= SAME_TOPIC:
            node = tree.nodes[target]
            if overlap < 1.0 or int(node["level"]) != snapshot.level:
                return target, "changed", f"{overlap:.0%} of its sampled members are still in it"
            return target, "applied", ""
    best, best_overlap = None, 0.0
    for cid, node in tree.nodes.items():
        if int(node["level"]) != snapshot.level or node.get("is_noise"):
            continue
        overlap = _overlap(tree, cid, snapshot.sample)
        if overlap > best_overlap:
            best, best_overlap = cid, overlap
    if best is not None and best_overlap >= SAME_TOPIC:
        return best, "repointed", f"{target} no longer holds its members; {best_overlap:.0%} are in {best}"
    return None, "not_applied", f"no topic holds {SAME_TOPIC:.0%} of {snapshot.name!r}'s members any more"


def _apply_one(tree: Tree, edit: Edit) -> EditStatus:
    target, state, note = _resolve(tree, edit.target, edit.snapshots.get(edit.target))
    status = EditStatus(seq=edit.seq, action=edit.action, target=edit.target, state=state,
                        applied_to=target, note=note)
    if target is None:
        return status
    node = tree.nodes[target]
    if edit.action == "rename":
        node["name"] = edit.args["name"]
        if edit.args.get("description"):
            node["description"] = edit.args["description"]
    elif edit.action == "merge":
        merged = []
        for other in edit.args.get("others", []):
            where, _, _ = _resolve(tree, other, edit.snapshots.get(other))
            if where is None or where == target:
                status.note = (status.note + "; " if status.note else "") + f"{other} is gone, not merged"
                continue
            level = int(tree.nodes[where]["level"])
            if level == 0:
                for conversation, base in tree.base_of.items():
                    if base == where:
                        tree.base_of[conversation] = target
            for child in tree.nodes.values():
                if child.get("parent_id") == where:
                    child["parent_id"] = target
            del tree.nodes[where]
            merged.append(where)
        if edit.args.get("name"):
            node["name"] = edit.args["name"]
        if merged:
            node["keyphrases"] = list(dict.fromkeys(list(node.get("keyphrases") or [])))
    elif edit.action == "split":
        if int(node["level"]) != 0:
            status.state, status.note = "not_applied", "only base topics (level 0) can be split"
            return status
        current = set(tree.members(target))
        for part in edit.args.get("parts", []):
            tree.nodes[part["id"]] = {
                **node, "cluster_id": part["id"], "name": part["name"], "description": part.get("description", ""),
                "keyphrases": list(part.get("keyphrases") or []),
                "representative_request": part.get("representative_request"),
            }
            for conversation in part["member_ids"]:
                if conversation in current:
                    tree.base_of[conversation] = part["id"]
        if not tree.members(target):
            del tree.nodes[target]
    elif edit.action == "move":
        destination = tree.nodes.get(edit.args["to"])
        if destination is None:
            status.state, status.note = "not_applied", f"destination {edit.args['to']} is gone"
            return status
        if "conversations" in edit.args:
            if int(destination["level"]) != 0:
                status.state, status.note = "not_applied", "conversations move to a base topic (level 0)"
                return status
            moved = [c for c in edit.args["conversations"] if c in tree.base_of]
            for conversation in moved:
                tree.base_of[conversation] = edit.args["to"]
            if len(moved) < len(edit.args["conversations"]):
                status.note = f"{len(edit.args['conversations']) - len(moved)} of the conversations are not in this run"
        else:
            if int(destination["level"]) <= int(node["level"]):
                status.state, status.note = "not_applied", "a topic moves under a topic of a higher level"
                return status
            node["parent_id"] = edit.args["to"]
    return status


def _nonempty(tree: Tree) -> set[str]:
    """Topics holding at least one conversation."""
    held = set(tree.base_of.values())
    out = set(held)
    for cid in held:
        parent = (tree.nodes.get(cid) or {}).get("parent_id")
        while parent is not None and parent not in out:
            out.add(str(parent))
            parent = (tree.nodes.get(str(parent)) or {}).get("parent_id")
    return out & set(tree.nodes)


def _drop_emptied(tree: Tree, before: set[str]) -> None:
    """Remove topics an edit left without conversations (a parent whose children all left)."""
    for cid in before - _nonempty(tree):
        if cid in tree.nodes:
            del tree.nodes[cid]
            tree.emptied.add(cid)


def active_edits(edits: Sequence[Edit]) -> tuple[list[Edit], set[int]]:
    """The edits to apply (undo records and undone edits left out) and the undone seqs."""
    undone: set[int] = set()
    for edit in edits:
        if edit.action == "undo":
            undone.add(int(edit.args["seq"]))
    return [e for e in edits if e.action != "undo" and e.seq not in undone], undone


def apply_edits(clusters: pa.Table, assignments: pa.Table, edits: Sequence[Edit],
                projection: pa.Table | None = None) -> tuple[pa.Table, pa.Table, list[EditStatus]]:
    """The edited ``clusters`` and ``assignments`` tables and one status per edit.

    Pure: reads nothing. Sizes, shares, member lists and (with ``projection``) map positions are
    recomputed from the edited membership; every conversation keeps one topic at every level.
    """
    from kiku.pipeline import assignments_table, clusters_to_table
    from kiku.records import Cluster

    tree = Tree.from_tables(clusters, assignments)
    statuses: list[EditStatus] = []
    todo, undone = active_edits(edits)
    for edit in edits:
        if edit.seq in undone and edit.action != "undo":
            statuses.append(EditStatus(seq=edit.seq, action=edit.action, target=edit.target, state="undone"))
    for edit in todo:
        before = _nonempty(tree)
        statuses.append(_apply_one(tree, edit))
        _drop_emptied(tree, before)
    statuses.sort(key=lambda s: s.seq)
    position: dict[str, tuple[float, float]] = {}
    if projection is not None:
        position = dict(zip(projection.column("conversation_id").to_pylist(),
                            zip(projection.column("x").to_pylist(), projection.column("y").to_pylist())))
    by_base: dict[str, list[str]] = {}
    for conversation in tree.order:
        by_base.setdefault(tree.base_of[conversation], []).append(conversation)
    records = []
    for cid, node in tree.nodes.items():
        under = tree.descendants(cid) | {cid}
        members = [m for base in sorted(under) for m in by_base.get(base, [])]
        points = np.array([position[m] for m in members if m in position], dtype=np.float64).reshape(-1, 2)
        x, y = (float(points[:, 0].mean()), float(points[:, 1].mean())) if len(points) else (node.get("x"), node.get("y"))
        records.append(Cluster(
            id=cid, level=int(node["level"]), parent_id=node.get("parent_id"), name=str(node["name"]),
            description=node.get("description") or "", member_ids=members, keyphrases=list(node.get("keyphrases") or []),
            representative_request=node.get("representative_request"), is_noise=bool(node.get("is_noise")), x=x, y=y,
        ))
    edited_clusters = clusters_to_table(records, len(tree.order))
    edited_clusters = _keep_extra_columns(clusters, edited_clusters)
    # assignments_table walks base members; keep the original conversation order
    edited_assignments = assignments_table(records)
    order = {c: i for i, c in enumerate(tree.order)}
    keys = [order.get(c, len(order)) * 1000 + level for c, level in zip(
        edited_assignments.column("conversation_id").to_pylist(), edited_assignments.column("level").to_pylist())]
    edited_assignments = edited_assignments.take(pa.array(np.argsort(np.asarray(keys), kind="stable")))
    return edited_clusters, edited_assignments, statuses


def _keep_extra_columns(original: pa.Table, edited: pa.Table) -> pa.Table:
    """Carry columns beyond ``CLUSTER_SCHEMA`` (``is_new``, ``base_share`` of an assigned run) over by id."""
    extra = [name for name in original.column_names if name not in edited.column_names]
    if not extra:
        return edited
    by_id = {str(r["cluster_id"]): r for r in original.select(["cluster_id", *extra]).to_pylist()}
    for name in extra:
        values = [by_id.get(str(cid), {}).get(name) for cid in edited.column("cluster_id").to_pylist()]
        edited = edited.append_column(original.schema.field(name), pa.array(values, original.schema.field(name).type))
    return edited


# --- the read hook (kiku.store calls it) ------------------------------------------------------

_CACHE: dict[tuple[Any, ...], tuple[pa.Table, pa.Table, list[EditStatus]]] = {}


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def edited_tables(folder: str | Path) -> tuple[pa.Table, pa.Table, list[EditStatus]]:
    """The run's clusters and assignments with its edit log applied (cached per file version)."""
    from kiku.store import table_file

    folder = Path(folder)
    files = [log_path(folder), *(folder / table_file(t) for t in ("clusters", "assignments", "projection"))]
    key = (str(folder.resolve()), *(_stamp(f) for f in files))
    if key not in _CACHE:
        clusters = pq.read_table(folder / table_file("clusters"))
        assignments = pq.read_table(folder / table_file("assignments"))
        projection_file = folder / table_file("projection")
        projection = pq.read_table(projection_file, columns=["conversation_id", "x", "y"]) if projection_file.is_file() else None
        _CACHE.clear()
        _CACHE[key] = apply_edits(clusters, assignments, read_edits(folder), projection)
    return _CACHE[key]


def edited_table(folder: str | Path, name: str) -> pa.Table:
    """``clusters`` or ``assignments`` of a run with its edits applied."""
    clusters, assignments, _ = edited_tables(folder)
    return clusters if name == "clusters" else assignments


def edit_statuses(folder: str | Path) -> list[EditStatus]:
    """How each edit of the log applies to the run's current tree (``[]`` without edits)."""
    if not log_path(folder).is_file():
        return []
    return edited_tables(folder)[2]


def report_after_run(folder: str | Path) -> list[str]:
    """One line per edit that a re-run changed (changed, re-pointed, not applied), for ``kiku run``."""
    try:
        statuses = edit_statuses(folder)
    except (KikuError, OSError, pa.ArrowException) as exc:
        return [f"edits.jsonl could not be applied: {exc}"]
    return [f"edit {s.one_line()}" for s in statuses if s.state in ("changed", "repointed", "not_applied")]


# --- making edits ------------------------------------------------------------------------------


def _raw_tree(folder: Path) -> Tree:
    """The tree with the current log applied (edits are made against what readers see)."""
    clusters, assignments, _ = edited_tables(folder) if log_path(folder).is_file() else (
        *_raw_tables(folder), [])
    return Tree.from_tables(clusters, assignments)


def _raw_tables(folder: Path) -> tuple[pa.Table, pa.Table]:
    from kiku.store import table_file

    return pq.read_table(folder / table_file("clusters")), pq.read_table(folder / table_file("assignments"))


def _new_edit(folder: Path, action: Action, target: str, args: dict[str, Any], snapshots: dict[str, Snapshot]) -> Edit:
    seq = max((e.seq for e in read_edits(folder)), default=0) + 1
    return Edit(seq=seq, action=action, target=target, args=args, snapshots=snapshots,
                at=datetime.now(UTC).isoformat(timespec="seconds"), by=_who())


def _check_run(folder: str | Path) -> Path:
    from kiku.store import open_finished_run

    open_finished_run(folder, ("clusters", "assignments"))
    return Path(folder)


def rename_topic(run: str | Path, topic: str, name: str, description: str | None = None) -> Edit:
    """Rename a topic (any level). ``rename_topic("runs/a", "L0-003", "Card arrival")``."""
    folder = _check_run(run)
    if not name.strip():
        raise KikuError("the new name is empty; pass a name, e.g. kiku edit RUN rename L0-003 'Card arrival'")
    tree = _raw_tree(folder)
    snapshots = {topic: tree.snapshot(topic)}
    args: dict[str, Any] = {"name": name.strip()}
    if description:
        args["description"] = description
    return append_edit(folder, _new_edit(folder, "rename", topic, args, snapshots))


def merge_topics(run: str | Path, topic: str, others: Sequence[str], name: str | None = None) -> Edit:
    """Merge ``others`` into ``topic`` (all of one level); their children and conversations move to it."""
    folder = _check_run(run)
    tree = _raw_tree(folder)
    snapshots = {topic: tree.snapshot(topic)}
    level = snapshots[topic].level
    if not others:
        raise KikuError("merge needs at least two topics: kiku edit RUN merge KEEP OTHER [OTHER...]")
    for other in others:
        if other == topic:
            raise KikuError(f"cannot merge {topic} into itself")
        snapshots[other] = tree.snapshot(other)
        if snapshots[other].level != level:
            raise KikuError(f"{other} is on level {snapshots[other].level} and {topic} on level {level}; merge topics of one level")
        if tree.nodes[other].get("is_noise") or tree.nodes[topic].get("is_noise"):
            raise KikuError("the unclustered bucket is not a topic and cannot be merged; move its conversations instead")
    args: dict[str, Any] = {"others": list(others)}
    if name:
        args["name"] = name
    return append_edit(folder, _new_edit(folder, "merge", topic, args, snapshots))


def move_topic(run: str | Path, topic: str, to: str) -> Edit:
    """Put ``topic`` under the parent ``to`` (a topic of a higher level)."""
    folder = _check_run(run)
    tree = _raw_tree(folder)
    snapshots = {topic: tree.snapshot(topic)}
    destination = tree.require(to)
    if int(destination["level"]) <= snapshots[topic].level:
        raise KikuError(f"{to} is on level {destination['level']}, not above {topic} (level {snapshots[topic].level}); "
                        "move a topic under a topic of a higher level")
    return append_edit(folder, _new_edit(folder, "move", topic, {"to": to}, snapshots))


def move_conversations(run: str | Path, conversations: Sequence[str], to: str) -> Edit:
    """Reassign conversations to the base topic ``to``."""
    folder = _check_run(run)
    tree = _raw_tree(folder)
    destination = tree.require(to)
    if int(destination["level"]) != 0:
        raise KikuError(f"{to} is on level {destination['level']}; conversations move to a base topic (level 0)")
    unknown = [c for c in conversations if c not in tree.base_of]
    if unknown:
        raise KikuError(f"no conversation {unknown[0]!r} in this run ({len(unknown)} unknown); check the ids")
    return append_edit(folder, _new_edit(folder, "move", to, {"to": to, "conversations": list(conversations)}, {}))


def split_topic(run: str | Path, topic: str, parts: int = 2, seed: int = 0) -> Edit:
    """Split a base topic into ``parts`` by k-means on its members' embeddings, each part named
    by the run's offline namer. The parts' member lists are stored in the log, so every reader
    applies the split without recomputing it. New ids are ``TOPIC.1``, ``TOPIC.2``, ...
    """
    from kiku.cluster import KMeansClusterer
    from kiku.embed import make_embedder
    from kiku.naming import KeyphraseNamer
    from kiku.pipeline import build_corpus
    from kiku.protocols import Corpus, TopicDraft
    from kiku.store import RunStore
    from kiku.vectors import l2_normalise

    folder = _check_run(run)
    tree = _raw_tree(folder)
    snapshot = tree.snapshot(topic)
    if snapshot.level != 0:
        raise KikuError(f"{topic} is on level {snapshot.level}; only base topics (level 0) can be split")
    if tree.nodes[topic].get("is_noise"):
        raise KikuError("the unclustered bucket is not a topic; move its conversations instead")
    if parts < 2 or snapshot.size < 2 * parts:
        raise KikuError(f"{topic} has {snapshot.size} conversations; split needs at least 2 per part (--parts {parts})")
    store = RunStore(folder)
    corpus = build_corpus(store)
    members = tree.members(topic)
    where = {c: i for i, c in enumerate(corpus.ids)}
    index = np.array([where[m] for m in members if m in where])
    labels = KMeansClusterer(n_clusters=parts, seed=seed).fit_predict(corpus.embeddings[index])
    config = store.manifest.get("config") or {}
    namer = KeyphraseNamer(make_embedder(config.get("embedder", "minilm"), max_tokens=config.get("embed_max_tokens", 48)))
    sub = Corpus(ids=[corpus.ids[i] for i in index], texts=[corpus.texts[i] for i in index],
                 requests=[corpus.requests[i] for i in index], embeddings=corpus.embeddings[index])
    drafts = [TopicDraft(key=f"{topic}.{k + 1}", member_index=np.flatnonzero(labels == label),
                         centroid=l2_normalise(sub.embeddings[labels == label].mean(axis=0)))
              for k, label in enumerate(sorted(set(labels.tolist())))]
    names = namer.name_topics(drafts, sub)
    existing = {str(n["name"]) for n in tree.nodes.values()}
    out = []
    for draft, named in zip(drafts, names):
        label = named.name if named.name not in existing else f"{named.name} ({draft.key})"
        out.append({"id": draft.key, "name": label, "description": named.description,
                    "keyphrases": list(named.keyphrases), "representative_request": named.representative_request,
                    "member_ids": [sub.ids[i] for i in draft.member_index]})
    return append_edit(folder, _new_edit(folder, "split", topic, {"parts": out}, {topic: snapshot}))


def undo_edit(run: str | Path, seq: int | None = None) -> Edit:
    """Undo the latest edit still in force (or edit ``seq``) by appending an undo record."""
    folder = _check_run(run)
    edits = read_edits(folder)
    todo, undone = active_edits(edits)
    if seq is None:
        if not todo:
            raise KikuError(f"{folder}: no edit to undo")
        seq = todo[-1].seq
    elif seq not in {e.seq for e in todo}:
        state = "already undone" if seq in undone else "not an edit of this run"
        raise KikuError(f"edit #{seq} is {state}; see `kiku edit {folder} list`")
    return append_edit(folder, _new_edit(folder, "undo", str(seq), {"seq": seq}, {}))
