"""Import a Kura run: its checkpoint folder's conversations, summaries and cluster tree.

Kura (567-labs/kura) writes a checkpoint folder with ``conversations.jsonl``,
``summaries.jsonl``, ``clusters.jsonl`` (base clusters), ``meta_clusters.jsonl`` (every level,
with ``parent_id`` links) and ``dimensionality.jsonl`` (the same clusters with 2-D coordinates).
The ``level`` written in ``dimensionality.jsonl`` is wrong (only 0 or 1), so kiku computes
levels from the parent links: a cluster with no children is level 0 (base) and a parent is one
level above its highest child, matching kiku's convention (level 0 = base).

``kiku run`` on a checkpoint folder (``--format kura-checkpoint``) keeps Kura's work: each
conversation carries Kura's summary, scores and cluster names as
:class:`~kiku.records.ImportedFacets` (see :func:`kura_facets`), which the describe stage turns
into the run's facets; the summary is then what is embedded and named.

Example:
    >>> ckpt = read_kura_checkpoint("../shared/data/kura-checkpoints/wandb")  # doctest: +SKIP
    >>> ckpt.levels()                                                          # doctest: +SKIP
    {0: 56, 1: 29, 2: 15, 3: 7}
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from kiku.errors import InputError
from kiku.loaders._convert import Draft
from kiku.loaders._stream import iter_jsonl
from kiku.loaders.mapping import ColumnMapping
from kiku.loaders.report import LoadReport
from kiku.records import IMPORTED_FACETS, Cluster, ImportedFacets, Summary

CHECKPOINT_FILES = ("conversations.jsonl", "summaries.jsonl")

# Kura's ``languages`` mixes natural and programming languages by name.
NATURAL_LANGUAGES = {
    "english": "en", "spanish": "es", "french": "fr", "german": "de", "italian": "it", "portuguese": "pt",
    "dutch": "nl", "russian": "ru", "chinese": "zh", "mandarin": "zh", "japanese": "ja", "korean": "ko",
    "arabic": "ar", "hindi": "hi", "turkish": "tr", "polish": "pl", "swedish": "sv", "vietnamese": "vi",
    "indonesian": "id", "ukrainian": "uk", "hebrew": "he", "greek": "el", "czech": "cs", "danish": "da",
    "finnish": "fi", "norwegian": "no", "thai": "th", "persian": "fa", "bengali": "bn", "romanian": "ro",
}


class KuraCheckpoint(BaseModel):
    """What a Kura checkpoint folder holds, as kiku records.

    ``summaries``: one :class:`~kiku.records.Summary` per summarised conversation (Kura's
    ``summary``, ``request``, ``task``, ``concerning_score`` -> ``concern``,
    ``user_frustration`` -> ``frustration``, ``assistant_errors``; natural languages become
    ``language`` (ISO 639-1, the first one) and the rest ``programming_languages``; Kura's raw
    ``languages``/``topic``/``metadata`` are kept in ``facets``). ``clusters``: every cluster of
    every level with ``parent_id`` and a computed ``level``, ``x``/``y`` from
    ``dimensionality.jsonl`` when present. ``report`` lists skipped lines and warnings.
    """

    folder: str
    summaries: list[Summary] = Field(default_factory=list)
    clusters: list[Cluster] = Field(default_factory=list)
    report: LoadReport = Field(default_factory=LoadReport)

    def levels(self) -> dict[int, int]:
        """Number of clusters per level, e.g. ``{0: 56, 1: 29, 2: 15, 3: 7}``."""
        counts: dict[int, int] = {}
        for cluster in self.clusters:
            counts[cluster.level] = counts.get(cluster.level, 0) + 1
        return dict(sorted(counts.items()))

    def conversations(self, report: LoadReport | None = None) -> Iterator[Any]:
        """Stream the checkpoint's conversations (``load_conversations(folder, "kura-checkpoint")``)."""
        from kiku.loaders import load_conversations

        return load_conversations(self.folder, "kura-checkpoint", report=report)


def is_kura_checkpoint(folder: Path) -> bool:
    return folder.is_dir() and all((folder / name).is_file() for name in CHECKPOINT_FILES)


def read_kura_checkpoint_conversations(path: Path, mapping: ColumnMapping | None, report: LoadReport) -> Iterator[Draft]:
    """Reader for ``--format kura-checkpoint``: the folder's conversations, with Kura's summaries and tree as facets.

    Each conversation carries ``metadata["imported_facets"]`` (:class:`~kiku.records.ImportedFacets`)
    built by :func:`kura_facets`, so the describe stage keeps Kura's summary (then embedded and
    named), task, concern, frustration and assistant errors, and adds the facets ``kura_request``,
    ``kura_languages``, ``kura_cluster`` and ``kura_top_cluster`` (queryable in ``kiku sql``). What
    was imported is counted in ``report.imported``; conversations without a summary, and summaries
    without a conversation, are warned.
    """
    from kiku.loaders.json_formats import read_jsonl

    file = path / "conversations.jsonl"
    if not file.is_file():
        raise InputError(report.source, "no conversations.jsonl in this folder", "pass a Kura checkpoint folder (with conversations.jsonl and summaries.jsonl)")
    imported, clusters = kura_facets(path, report)
    used: set[str] = set()
    without = 0
    for draft in read_jsonl(file, mapping, report.for_source(os.fspath(file))):
        draft.source = os.fspath(file)
        facets = imported.get(draft.id) if draft.id is not None else None
        if facets is not None:
            draft.metadata[IMPORTED_FACETS] = facets.model_dump(exclude_defaults=True)
            used.add(draft.id)  # type: ignore[arg-type]
        if facets is None or facets.summary is None:
            without += 1
        yield draft
    base = sum(1 for c in clusters if c.level == 0)
    summarised = sum(1 for chat_id in used if imported[chat_id].summary is not None)
    report.imported.update({"kura_summaries": summarised, "kura_clusters": len(clusters), "kura_base_clusters": base})
    report.notes.append(
        f"{report.source}: imported from Kura {summarised} summaries (as summary, task, concern, frustration, assistant_errors, "
        f"kura_request, kura_languages) and its tree of {len(clusters)} clusters, {base} of them base clusters "
        "(as facets kura_cluster, kura_top_cluster)"
    )
    if without:
        report.warn(f"{report.source}: {without} conversations have no summary in summaries.jsonl; their facets were computed from the text")
    unused = sum(1 for chat_id, f in imported.items() if chat_id not in used and f.summary is not None)
    if unused:
        report.warn(f"{report.source}: {unused} summaries in summaries.jsonl name a chat_id that is not in conversations.jsonl; they were not used")


def kura_facets(folder: Path, report: LoadReport) -> tuple[dict[str, ImportedFacets], list[Cluster]]:
    """Kura's summaries and cluster tree per chat id, as :class:`~kiku.records.ImportedFacets`; and the clusters.

    From ``summaries.jsonl``: Kura's ``summary``, ``task``, ``concerning_score`` (concern),
    ``user_frustration`` (frustration) and ``assistant_errors``, with ``request`` as the facet
    ``kura_request`` (the verbatim opening request stays kiku's ``request``, as with an LLM) and
    ``languages``/``topic``/``metadata`` as ``kura_languages``/``kura_topic``/``kura_metadata``.
    From the cluster files: ``kura_cluster`` (the base cluster's name) and ``kura_top_cluster``
    (the name of its top-level ancestor). A chat id that is only in the tree gets those two.

    >>> imported, clusters = kura_facets(Path("tests/data/kura-checkpoint"), LoadReport())  # doctest: +SKIP
    >>> sorted(next(iter(imported.values())).facets)                                          # doctest: +SKIP
    ['kura_cluster', 'kura_languages', 'kura_metadata', 'kura_request', 'kura_top_cluster']
    """
    imported: dict[str, ImportedFacets] = {}
    if (folder / "summaries.jsonl").is_file():
        first_lines: dict[str, int] = {}
        view = report.for_source(os.fspath(folder / "summaries.jsonl"))
        for line, summary in _summaries(folder, report, {}):
            if summary.conversation_id in first_lines:
                view.skip(line, f"duplicate chat_id: a summary for it was first seen on line {first_lines[summary.conversation_id]}; the first was kept",
                          summary.conversation_id)
                continue
            first_lines[summary.conversation_id] = line
            facets = {"kura_request": summary.request or None, **summary.facets}
            imported[summary.conversation_id] = ImportedFacets(
                origin="kura", summary=summary.summary, task=summary.task, concern=summary.concern,
                frustration=summary.frustration, assistant_errors=summary.assistant_errors, facets=facets,
            )
    clusters = _clusters(folder, report)
    for chat_id, (base, top) in cluster_names(clusters).items():
        facets = imported.setdefault(chat_id, ImportedFacets(origin="kura")).facets
        facets["kura_cluster"], facets["kura_top_cluster"] = base, top
    return imported, clusters


def cluster_names(clusters: list[Cluster]) -> dict[str, tuple[str, str]]:
    """Member id -> (its base cluster's name, the name of that cluster's top-level ancestor).

    >>> tree = [Cluster(id="t", level=1, name="Training"), Cluster(id="b", level=0, parent_id="t", name="Sweeps", member_ids=["c1"])]
    >>> cluster_names(tree)
    {'c1': ('Sweeps', 'Training')}
    """
    by_id = {c.id: c for c in clusters}
    names: dict[str, tuple[str, str]] = {}
    for cluster in clusters:
        if cluster.level != 0:
            continue
        top, seen = cluster, {cluster.id}
        while top.parent_id in by_id and top.parent_id not in seen:
            top = by_id[top.parent_id]
            seen.add(top.id)
        for member in cluster.member_ids:
            names.setdefault(member, (cluster.name, top.name))
    return names


def read_kura_checkpoint(folder: str | os.PathLike[str]) -> KuraCheckpoint:
    """Read a Kura checkpoint folder's summaries and cluster tree (conversations stream separately).

    Raises InputError when the folder is not a Kura checkpoint. Bad lines are skipped and listed
    in ``checkpoint.report``.

    >>> ckpt = read_kura_checkpoint("tests/data/kura-checkpoint")  # doctest: +SKIP
    >>> ckpt.summaries[0].concern, ckpt.clusters[0].level            # doctest: +SKIP
    (1, 0)
    """
    path = Path(folder)
    source = os.fspath(folder)
    if not path.is_dir():
        raise InputError(source, "not a folder", "pass the Kura checkpoint folder (it holds summaries.jsonl, clusters.jsonl...)")
    if not (path / "summaries.jsonl").is_file() and not (path / "meta_clusters.jsonl").is_file():
        raise InputError(source, "not a Kura checkpoint: no summaries.jsonl or meta_clusters.jsonl", "pass the folder Kura wrote its checkpoints to")
    report = LoadReport(source=source, format="kura-checkpoint")
    turns = _conversation_sizes(path, report)
    summaries = [summary for _, summary in _summaries(path, report, turns)] if (path / "summaries.jsonl").is_file() else []
    clusters = _clusters(path, report)
    report.loaded = len(summaries)
    report.finish()
    return KuraCheckpoint(folder=source, summaries=summaries, clusters=clusters, report=report)


def _rows(file: Path, report: LoadReport) -> Iterator[tuple[int, dict[str, Any]]]:
    view = report.for_source(os.fspath(file))
    for line, row in iter_jsonl(file, view):
        if isinstance(row, dict):
            yield line, row
        else:
            view.skip(line, "wrong type: expected a JSON object per line; fix the line")


def _conversation_sizes(folder: Path, report: LoadReport) -> dict[str, tuple[int, int, int, int]]:
    """chat_id -> (user turns, messages, user chars, assistant chars), for Summary's counts."""
    file = folder / "conversations.jsonl"
    sizes: dict[str, tuple[int, int, int, int]] = {}
    if not file.is_file():
        return sizes
    for _, row in iter_jsonl(file, LoadReport(source=os.fspath(file))):  # problems are reported by the conversation loader
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            continue
        messages = [m for m in row["messages"] if isinstance(m, dict)]
        user = [str(m.get("content", "")) for m in messages if m.get("role") in ("user", "human")]
        assistant = [str(m.get("content", "")) for m in messages if m.get("role") in ("assistant", "gpt")]
        sizes[str(row.get("chat_id", row.get("id")))] = (len(user), len(messages), sum(map(len, user)), sum(map(len, assistant)))
    return sizes


def _summaries(folder: Path, report: LoadReport, sizes: dict[str, tuple[int, int, int, int]]) -> Iterator[tuple[int, Summary]]:
    """``(line, Summary)`` per usable line of ``summaries.jsonl``; bad lines are skipped into ``report``."""
    file = folder / "summaries.jsonl"
    view = report.for_source(os.fspath(file))
    for line, row in _rows(file, report):
        chat_id = row.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            view.skip(line, "missing field: 'chat_id'; the summary cannot be matched to a conversation")
            continue
        languages = [str(x) for x in row.get("languages") or [] if isinstance(x, str)]
        natural = [NATURAL_LANGUAGES[x.lower()] for x in languages if x.lower() in NATURAL_LANGUAGES]
        programming = [x for x in languages if x.lower() not in NATURAL_LANGUAGES]
        turns, messages, user_chars, assistant_chars = sizes.get(chat_id, (0, 0, 0, 0))
        facets = {"kura_languages": languages}
        for key in ("topic", "metadata"):
            if row.get(key) is not None:
                facets[f"kura_{key}"] = row[key]
        try:
            summary = Summary(
                conversation_id=chat_id,
                request=str(row.get("request") or ""),
                turns=turns,
                messages=messages,
                language=natural[0] if natural else None,
                programming_languages=programming,
                user_chars=user_chars,
                assistant_chars=assistant_chars,
                summary=row.get("summary"),
                task=row.get("task"),
                concern=row.get("concerning_score"),
                frustration=row.get("user_frustration"),
                assistant_errors=row.get("assistant_errors"),
                facets=facets,
            )
        except ValueError as exc:
            field = (str(exc).splitlines()[1:2] or [str(exc)])[0].strip()
            view.skip(line, f"wrong type: field '{field}' of the summary; fix the line", chat_id)
            continue
        yield line, summary


def _clusters(folder: Path, report: LoadReport) -> list[Cluster]:
    tree_file = folder / "meta_clusters.jsonl"
    if not tree_file.is_file():
        tree_file = folder / "clusters.jsonl"
    if not tree_file.is_file():
        return []
    rows: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    view = report.for_source(os.fspath(tree_file))
    for line, row in _rows(tree_file, report):
        cid = row.get("id")
        if not isinstance(cid, str) or not cid:
            view.skip(line, "missing field: 'id'; fix the line")
        elif cid in rows:
            view.skip(line, f"duplicate id {cid!r}, first seen on line {lines[cid]}", cid)
        else:
            rows[cid], lines[cid] = row, line
    for cid, row in rows.items():
        parent = row.get("parent_id")
        if parent is not None and parent not in rows:
            report.warn(f"{view.source}:{lines[cid]}: cluster {cid} names a parent {parent!r} that is not in the file; it is treated as a root")
            row["parent_id"] = None
    coordinates: dict[str, tuple[float, float]] = {}
    if (folder / "dimensionality.jsonl").is_file():
        for _, row in _rows(folder / "dimensionality.jsonl", report):
            if isinstance(row.get("id"), str) and isinstance(row.get("x_coord"), (int, float)) and isinstance(row.get("y_coord"), (int, float)):
                coordinates[row["id"]] = (float(row["x_coord"]), float(row["y_coord"]))
    levels = compute_levels({cid: row.get("parent_id") for cid, row in rows.items()})
    clusters = []
    for cid, row in rows.items():
        x, y = coordinates.get(cid, (None, None))
        clusters.append(
            Cluster(
                id=cid,
                level=levels[cid],
                parent_id=row.get("parent_id"),
                name=str(row.get("name") or ""),
                description=str(row.get("description") or ""),
                member_ids=[str(m) for m in row.get("chat_ids") or []],
                x=x,
                y=y,
            )
        )
    clusters.sort(key=lambda c: (c.level, -c.size, c.id))
    return clusters


def compute_levels(parents: dict[str, str | None]) -> dict[str, int]:
    """Level of each node from parent links: leaves are 0, a parent is 1 + its highest child.

    >>> compute_levels({"a": None, "b": "a", "c": "a", "d": "b"})
    {'a': 2, 'b': 1, 'c': 0, 'd': 0}
    """
    children: dict[str, list[str]] = {node: [] for node in parents}
    for node, parent in parents.items():
        if parent is not None and parent in children:
            children[parent].append(node)
    levels: dict[str, int] = {}
    visiting: set[str] = set()
    for root in parents:
        stack = [(root, False)]
        while stack:  # iterative post-order; a cycle's back edge is ignored
            node, expanded = stack.pop()
            if expanded:
                levels[node] = 1 + max((levels.get(c, 0) for c in children[node] if c in levels), default=-1)
                visiting.discard(node)
            elif node not in levels and node not in visiting:
                visiting.add(node)
                stack.append((node, True))
                stack.extend((c, False) for c in children[node] if c not in levels and c not in visiting)
    return {node: levels[node] for node in parents}
