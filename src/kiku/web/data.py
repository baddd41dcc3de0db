"""Read one run folder with DuckDB, in place, into what the explorer needs.

The explorer's front-end works on a *bundle*: one compact, column-oriented JSON object with
every conversation's coordinates, topic per level, timestamp and facet codes, plus the topic
table. Filtering, counting, search and drawing then happen in the browser over typed arrays,
the same way in the served UI and in the self-contained export. Conversation bodies are
fetched one at a time (``conversation``) or, in the export, embedded.

Example::

    run = RunData("runs/chats")
    bundle = run.bundle()            # dict, JSON-ready
    bundle["n"], len(bundle["clusters"])
    run.conversation(bundle["ids"][0])["messages"][0]["role"]
"""

from __future__ import annotations

import json
import math
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kiku.errors import InputError
from kiku.store import EXPLORER_TABLES, Manifest, missing_tables, open_views, table_file

REQUIRED_FILES = tuple(table_file(t) for t in EXPLORER_TABLES)  # what the explorer needs
MAX_PAGE = 500
BUNDLE_REQUEST_CHARS = 600
MAX_CATEGORIES = 40
OTHER = "(other)"
SNIPPET_CHARS = 180
SEARCH_BUILD_ROWS = 2000

# Facet columns drawn as distributions, in this order, with their labels. Columns missing or
# entirely null (runs made without --llm) are left out.
KNOWN_FACETS: dict[str, str] = {
    "language": "Language",
    "concern": "Concern (1-5)",
    "frustration": "Frustration (1-5)",
    "turns": "User turns",
    "messages": "Messages",
    "programming_languages": "Programming languages",
    "user_chars": "User characters",
    "assistant_chars": "Assistant characters",
}
TEXT_FACETS = ("request", "summary", "task", "assistant_errors")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _json_or(value: Any) -> Any:
    """Decode a JSON-encoded user facet value; plain strings stay as they are."""
    if isinstance(value, str) and value[:1] in "[{\"":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _log_bin(v: float) -> str:
    """Bin a non-negative count into readable log-spaced ranges: 0, 1, 2-3, 4-7, ... ."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    v = int(v)
    if v <= 1:
        return str(max(v, 0))
    lo = 1 << (v.bit_length() - 1)
    hi = (lo << 1) - 1
    return f"{_short(lo)}-{_short(hi)}"


def _short(v: int) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if v >= 10_000:
        return f"{v // 1000}k"
    return str(v)


def _bin_sort_key(label: str) -> float:
    head = label.split("-")[0]
    mult = 1_000_000 if head.endswith("M") else 1000 if head.endswith("k") else 1
    try:
        return float(head.rstrip("kM")) * mult
    except ValueError:
        return math.inf


def encode_facet(key: str, label: str, values: list[Any]) -> dict[str, Any] | None:
    """Dictionary-encode one facet column for the browser, or ``None`` when it has no values.

    Lists become ``kind="multi"`` (a list of codes per conversation); numbers with many
    distinct values are binned on a log scale; more than MAX_CATEGORIES distinct values keep
    the most frequent and fold the rest into ``"(other)"``. Missing values have code -1.

    >>> encode_facet("language", "Language", ["en", None, "de", "en"])["codes"]
    [0, -1, 1, 0]
    """
    present = [v for v in values if v is not None and v != "" and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return None
    if all(isinstance(v, (list, tuple)) for v in present):
        flat: dict[str, int] = {}
        for v in present:
            for item in v:
                flat[str(item)] = flat.get(str(item), 0) + 1
        if not flat:
            return None
        vocab = sorted(flat, key=lambda s: (-flat[s], s))[:MAX_CATEGORIES]
        index = {s: i for i, s in enumerate(vocab)}
        codes = [
            sorted({index.get(str(item), -1) for item in v} - {-1}) if isinstance(v, (list, tuple)) else []
            for v in values
        ]
        return {"key": key, "label": label, "kind": "multi", "values": vocab, "codes": codes}
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    ordered = False
    if numeric:
        distinct = {v for v in present}
        if len(distinct) > 12:
            values = [_log_bin(v) if v is not None else None for v in values]
            present = [v for v in values if v]
        else:
            values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:g}" for v in values]
            present = [v for v in values if v is not None]
        ordered = True
    values = [None if v is None or v == "" else (json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for v in values]
    counts: dict[str, int] = {}
    for v in values:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    vocab = sorted(counts, key=lambda s: (-counts[s], s))
    folded = len(vocab) > MAX_CATEGORIES
    if folded:
        vocab = vocab[: MAX_CATEGORIES - 1]
    if ordered:
        vocab = sorted(vocab, key=_bin_sort_key)
    if folded:
        vocab.append(OTHER)
    index = {s: i for i, s in enumerate(vocab)}
    other = index.get(OTHER, -1)
    codes = [-1 if v is None else index.get(v, other) for v in values]
    return {"key": key, "label": label, "kind": "category", "values": vocab, "codes": codes, "ordered": ordered}


class RunData:
    """One run folder opened read-only with DuckDB (each Parquet file is a view).

    Raises ``InputError`` when the folder is not a finished run (a required file is missing).
    Thread-safe: queries are serialised by a lock (one DuckDB connection per run).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir).resolve()
        if not self.run_dir.is_dir():
            raise InputError(str(run_dir), "is not a run folder", "pass the folder `kiku run` wrote")
        missing = missing_tables(self.run_dir, EXPLORER_TABLES)
        if missing:
            raise InputError(
                str(run_dir),
                f"run is incomplete, missing {', '.join(missing)}",
                "finish it with `kiku run` first",
            )
        self._lock = threading.Lock()
        self._con = open_views(self.run_dir)
        self._con.execute("set enable_progress_bar = false")  # a server's terminal is not a progress display
        self.has_facets = not missing_tables(self.run_dir, ("facets",))
        self._bundle: dict[str, Any] | None = None
        self._bundle_lock = threading.Lock()
        self._search_lock = threading.Lock()
        self._search_ready = False
        self._file_rows: list[int] | None = None

    # ---- small helpers -------------------------------------------------------------------
    def _rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            # via Arrow: DuckDB's own fetchall needs pytz for TIMESTAMPTZ columns
            return self._con.sql(sql, params=params or None).to_arrow_table().to_pylist()

    def _numbered(self, name: str) -> str:
        """SQL for one run file read with its row numbers (``file_row_number``), for stable order."""
        return f"read_parquet('{_sql_str(str(self.run_dir / table_file(name)))}', file_row_number=true)"

    def _columns(self, view: str) -> list[str]:
        return [r["column_name"] for r in self._rows(f"describe {_quote(view)}")]

    def manifest(self) -> Manifest:
        """The run's manifest, typed (empty when absent, unreadable or not a kiku manifest)."""
        try:
            return Manifest.read(self.run_dir)
        except ValidationError:
            return Manifest()

    def run_info(self) -> dict[str, Any]:
        """Name, counts and provenance shown in the header."""
        m = self.manifest()
        n = self._rows("select count(*) as n from conversations")[0]["n"]
        llm = False
        if self.has_facets and "summary" in self._columns("facets"):
            llm = self._rows("select count(summary) as k from facets")[0]["k"] > 0
        return {
            "name": self.run_dir.name,
            "conversations": int(n),
            "kiku_version": m.kiku_version,
            "created_at": m.created_at,
            "updated_at": m.updated_at,
            "input": m.input.path,
            "llm": llm,
            "skipped": m.counts.get("skipped", 0),
            "warnings": list(m.warnings),
        }

    # ---- the bundle ----------------------------------------------------------------------
    def clusters(self) -> list[dict[str, Any]]:
        """Every topic of every level, largest first within a level."""
        cols = set(self._columns("clusters"))
        want = ["cluster_id", "level", "parent_id", "name", "description", "size", "share",
                "keyphrases", "representative_request", "is_noise", "x", "y"]
        select = ", ".join(_quote(c) if c in cols else f"null as {_quote(c)}" for c in want)
        rows = self._rows(f"select {select} from clusters order by level desc, size desc, cluster_id")
        out = []
        for r in rows:
            out.append({
                "id": str(r["cluster_id"]),
                "level": int(r["level"]),
                "parent": None if r["parent_id"] is None else str(r["parent_id"]),
                "name": r["name"] or str(r["cluster_id"]),
                "description": r["description"] or "",
                "size": int(r["size"] or 0),
                "share": float(r["share"] or 0.0),
                "keyphrases": list(r["keyphrases"] or []),
                "representative_request": r["representative_request"] or "",
                "is_noise": bool(r["is_noise"]),
                "x": _num(r["x"]),
                "y": _num(r["y"]),
            })
        return out

    def bundle(self) -> dict[str, Any]:
        """Everything the front-end needs to draw the tree, the map, filters and trends.

        Shape: ``{"run", "n", "ids", "x", "y", "levels", "clusters", "assign": {level: [cluster
        index or -1]}, "time": [epoch ms or null] | null, "facets": [encoded facet], "text":
        {"request": [...], "summary": [...] | null}}``; arrays are aligned by conversation.
        """
        with self._bundle_lock:
            if self._bundle is None:
                self._bundle = self._build_bundle()
            return self._bundle

    def _build_bundle(self) -> dict[str, Any]:
        clusters = self.clusters()
        cindex = {c["id"]: i for i, c in enumerate(clusters)}
        levels = sorted({c["level"] for c in clusters})
        fcols = self._columns("facets") if self.has_facets else []
        facet_sel = ", ".join(f"f.{_quote(c)}" for c in fcols if c != "conversation_id")
        # assignments pivoted to one column per level, joined once
        pivot = ", ".join(
            f"max(case when level = {int(l)} then cluster_id end) as {_quote('lvl_' + str(l))}" for l in levels
        ) or "null as no_level"
        sql = (
            "with a as (select conversation_id, " + pivot + " from assignments group by conversation_id) "
            "select p.conversation_id as id, p.x, p.y, epoch_ms(c.created_at) as t, c.metadata"
            + (f", {facet_sel}" if facet_sel else "")
            + "".join(f", a.{_quote('lvl_' + str(l))}" for l in levels)
            + f" from {self._numbered('projection')} p left join conversations c using (conversation_id)"
            + (" left join facets f using (conversation_id)" if self.has_facets else "")
            + " left join a using (conversation_id) order by p.file_row_number"
        )
        with self._lock:
            table = self._con.sql(sql).to_arrow_table()
        cols = {name: table.column(name).to_pylist() for name in table.column_names}
        n = table.num_rows
        times = cols["t"]
        facets: list[dict[str, Any]] = []
        for key, label in KNOWN_FACETS.items():
            if key in cols:
                enc = encode_facet(key, label, cols[key])
                if enc:
                    facets.append(enc)
        for key in fcols:
            if key.startswith("facet_"):
                enc = encode_facet(key, key[len("facet_"):].replace("_", " ").capitalize(), [_json_or(v) for v in cols[key]])
                if enc:
                    facets.append(enc)
        facets += _metadata_facets(cols["metadata"])
        requests = cols.get("request") or [None] * n
        summaries = cols.get("summary")
        return {
            "version": 1,
            "run": self.run_info(),
            "n": n,
            "ids": [str(i) for i in cols["id"]],
            "x": [round(float(v), 4) if v is not None else 0.0 for v in cols["x"]],
            "y": [round(float(v), 4) if v is not None else 0.0 for v in cols["y"]],
            "levels": levels,
            "clusters": clusters,
            "assign": {
                str(l): [cindex.get(cid, -1) if cid is not None else -1 for cid in cols["lvl_" + str(l)]]
                for l in levels
            },
            "time": times if any(t is not None for t in times) else None,
            "facets": facets,
            "text": {
                "request": [(r or "")[:BUNDLE_REQUEST_CHARS] for r in requests],
                "summary": summaries if summaries and any(s for s in summaries) else None,
            },
        }

    # ---- one conversation, lists, search ---------------------------------------------------
    def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """One conversation with messages, facets, metadata and its topic at each level."""
        rows = self._rows("select * from conversations where conversation_id = ?", [conversation_id])
        if not rows:
            return None
        r = rows[0]
        facets: dict[str, Any] = {}
        if self.has_facets:
            frows = self._rows("select * from facets where conversation_id = ?", [conversation_id])
            if frows:
                facets = {k: _plain(_json_or(v) if k.startswith("facet_") else v)
                          for k, v in frows[0].items() if k != "conversation_id"}
        topics = self._rows(
            "select a.level, a.cluster_id, c.name from assignments a left join clusters c using (cluster_id)"
            " where a.conversation_id = ? order by a.level desc",
            [conversation_id],
        )
        try:
            messages = json.loads(r["messages"] or "[]")
        except ValueError:
            messages = [{"role": "unknown", "content": r["messages"], "created_at": None}]
        try:
            metadata = json.loads(r["metadata"] or "{}")
        except ValueError:
            metadata = {"metadata": r["metadata"]}
        return {
            "id": str(r["conversation_id"]),
            "created_at": _iso(r.get("created_at")),
            "source": r.get("source"),
            "source_line": r.get("source_line"),
            "messages": [
                {"role": str(m.get("role", "")), "content": str(m.get("content", "")), "created_at": m.get("created_at")}
                for m in messages if isinstance(m, dict)
            ],
            "metadata": metadata if isinstance(metadata, dict) else {"metadata": metadata},
            "facets": facets,
            "topics": [{"level": int(t["level"]), "cluster_id": str(t["cluster_id"]), "name": t["name"]} for t in topics],
        }

    def conversations_page(self, limit: int = 50, offset: int = 0, cluster_id: str | None = None) -> dict[str, Any]:
        """A page of conversations (id, created_at, request), optionally of one topic."""
        limit, offset = clamp_page(limit, offset)
        where, params = "", []
        if cluster_id is not None:
            where = " where c.conversation_id in (select conversation_id from assignments where cluster_id = ?)"
            params = [cluster_id]
        req = "f.request" if self.has_facets else "null"
        join = " left join facets f using (conversation_id)" if self.has_facets else ""
        total = self._rows(f"select count(*) as n from conversations c{where}", params)[0]["n"]
        rows = self._rows(
            f"select c.conversation_id as id, c.created_at, {req} as request from {self._numbered('conversations')} c{join}{where}"
            f" order by c.file_row_number limit {limit} offset {offset}",
            params,
        )
        items = [{"id": str(r["id"]), "created_at": _iso(r["created_at"]), "request": r["request"]} for r in rows]
        return {"total": int(total), "limit": limit, "offset": offset, "items": items}

    def clusters_page(self, limit: int = 100, offset: int = 0, level: int | None = None) -> dict[str, Any]:
        limit, offset = clamp_page(limit, offset)
        items = [c for c in self.clusters() if level is None or c["level"] == level]
        return {"total": len(items), "limit": limit, "offset": offset, "items": items[offset : offset + limit]}

    # ---- search --------------------------------------------------------------------------
    def _search_table(self) -> str:
        """Build (once) an in-memory table of every conversation's searchable text, lowercased.

        One row per bundle row: ``row`` (the conversation's index in ``bundle()["ids"]``) and
        ``text``: every message's content, then the request and the summary when the run has
        them, joined by newlines. The JSON keys of the stored messages are not part of it.
        """
        with self._search_lock:
            if not self._search_ready:
                cols = self._columns("facets") if self.has_facets else []
                extra = "".join(
                    f" || chr(10) || coalesce(f.{_quote(c)}, '')" for c in ("request", "summary") if c in cols
                )
                join = " left join facets f using (conversation_id)" if self.has_facets else ""
                select = (
                    "select p.file_row_number::integer as row, "
                    "lower(coalesce(array_to_string(json_extract_string(c.messages, '$[*].content'), chr(10)), '')"
                    f"{extra}) as text from {self._numbered('conversations')} c"
                    f" join {self._numbered('projection')} p using (conversation_id){join}"
                )
                n = self._rows("select count(*) as n from conversations")[0]["n"]
                with self._lock:
                    self._con.execute(f"create or replace temp table kiku_search as {select} limit 0")
                # in slices, so the JSON being unpacked never holds the whole run in memory at once
                for lo in range(0, n, SEARCH_BUILD_ROWS):
                    with self._lock:
                        self._con.execute(f"insert into kiku_search {select} where c.file_row_number >= {lo}"
                                          f" and c.file_row_number < {lo + SEARCH_BUILD_ROWS}")
                self._search_ready = True
        return "kiku_search"

    def search_rows(self, query: str) -> dict[str, Any]:
        """Every conversation that contains all the words of ``query``, anywhere in its text.

        Words are runs of letters and digits (:func:`search_tokens`), matched case-insensitively
        as substrings, in any order, over every message of the conversation and its request
        and summary. Returns ``{"query", "tokens", "total", "rows"}``; ``rows`` are indices into
        ``bundle()["ids"]``, ascending.

        >>> RunData("runs/chats").search_rows("python error")["total"]   # doctest: +SKIP
        919
        """
        tokens = search_tokens(query)
        if not tokens:
            return {"query": query, "tokens": [], "total": 0, "rows": []}
        table = self._search_table()
        cond = " and ".join("contains(text, ?)" for _ in tokens)
        rows = [int(r["row"]) for r in self._rows(f"select row from {table} where {cond} order by row", tokens)]
        return {"query": query, "tokens": tokens, "total": len(rows), "rows": rows}

    def snippets(self, query: str, rows: list[int], width: int = SNIPPET_CHARS) -> list[dict[str, Any]]:
        """Where each of ``rows`` (bundle indices) matches ``query``: one snippet per conversation.

        Each item is ``{"row", "id", "role", "snippet"}``: the text around the first place a
        word of the query occurs (the message's role, or ``"summary"``/``"request"``), at most
        about ``width`` characters, with ``…`` where it was cut. At most MAX_PAGE rows.
        """
        tokens = search_tokens(query)
        bundle = self.bundle()
        ids, requests, summaries = bundle["ids"], bundle["text"]["request"], bundle["text"]["summary"]
        rows = [int(r) for r in rows[:MAX_PAGE] if 0 <= int(r) < len(ids)]
        if not rows:
            return []
        file_rows = self._conversation_file_rows()
        wanted = {file_rows[r]: r for r in rows if file_rows[r] >= 0}
        found = self._rows(
            f"select file_row_number as fr, messages from {self._numbered('conversations')}"
            f" where file_row_number in ({', '.join(str(int(f)) for f in wanted)})"
        ) if wanted else []
        messages_of = {wanted[int(r["fr"])]: r["messages"] for r in found}
        out = []
        for r in rows:
            try:
                messages = json.loads(messages_of.get(r) or "[]")
            except ValueError:
                messages = []
            texts = [(str(m.get("role", "")), str(m.get("content", ""))) for m in messages if isinstance(m, dict)]
            texts += [(k, v) for k, v in (("summary", summaries[r] if summaries else None), ("request", requests[r])) if v]
            role, snippet = snippet_of(texts, tokens, width)
            out.append({"row": r, "id": ids[r], "role": role, "snippet": snippet})
        return out

    def _conversation_file_rows(self) -> list[int]:
        """For each bundle row, the conversation's row number in conversations.parquet (-1: none).

        Reading a few conversations by row number lets DuckDB skip the rest of the file.
        """
        with self._search_lock:
            if self._file_rows is None:
                ids = self.bundle()["ids"]
                at = {str(r["id"]): int(r["fr"]) for r in self._rows(
                    f"select conversation_id as id, file_row_number as fr from {self._numbered('conversations')}")}
                self._file_rows = [at.get(i, -1) for i in ids]
            return self._file_rows

    def warm_search(self) -> None:
        """Build the search table and the row map now (the server does it in the background)."""
        self._search_table()
        self._conversation_file_rows()

    def search(self, query: str, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """A page of the conversations matching all words of ``query``, with snippets.

        Shape: ``{"total", "limit", "offset", "tokens", "items": [{"id", "row", "request",
        "summary", "role", "snippet"}]}`` (see :meth:`search_rows` for what matches).
        """
        limit, offset = clamp_page(limit, offset)
        found = self.search_rows(query)
        page = found["rows"][offset : offset + limit]
        bundle = self.bundle()
        summaries = bundle["text"]["summary"]
        items = []
        for s in self.snippets(query, page):
            r = s["row"]
            items.append({**s, "request": bundle["text"]["request"][r], "summary": summaries[r] if summaries else None})
        return {"total": found["total"], "limit": limit, "offset": offset, "tokens": found["tokens"], "items": items}

    def all_conversations(self, max_message_chars: int | None = None,
                          max_conversation_chars: int | None = None,
                          max_reply_chars: int | None = None) -> list[dict[str, Any]]:
        """Every conversation's detail, aligned with ``bundle()["ids"]`` (for the export).

        Each user message is clipped to ``max_message_chars``, every other message (the
        assistant's replies) to ``max_reply_chars`` (``None``: ``max_message_chars`` too), and
        the messages of one conversation to ``max_conversation_chars`` in total (later messages
        dropped); ``clipped`` says so.
        """
        ids = self.bundle()["ids"]
        # one pass over each table rather than one query per conversation
        with self._lock:
            conv = self._con.sql("select * from conversations").to_arrow_table().to_pylist()
            fac = self._con.sql("select * from facets").to_arrow_table().to_pylist() if self.has_facets else []
            asg = self._con.sql(
                "select a.conversation_id, a.level, a.cluster_id, c.name from assignments a"
                " left join clusters c using (cluster_id) order by a.level desc"
            ).fetchall()
        facets_by = {str(r.pop("conversation_id")): r for r in fac}
        topics_by: dict[str, list[dict[str, Any]]] = {}
        for cid, level, cluster_id, name in asg:
            topics_by.setdefault(str(cid), []).append({"level": int(level), "cluster_id": str(cluster_id), "name": name})
        conv_by = {str(r["conversation_id"]): r for r in conv}
        out: list[dict[str, Any]] = []
        for cid in ids:
            r = conv_by.get(cid)
            if r is None:
                out.append({"id": cid, "messages": [], "metadata": {}, "facets": {}, "topics": topics_by.get(cid, [])})
                continue
            try:
                messages = json.loads(r["messages"] or "[]")
            except ValueError:
                messages = [{"role": "unknown", "content": r["messages"]}]
            try:
                metadata = json.loads(r["metadata"] or "{}")
            except ValueError:
                metadata = {"metadata": r["metadata"]}
            clipped, budget = False, max_conversation_chars
            msgs = []
            for m in messages if isinstance(messages, list) else []:
                if not isinstance(m, dict):
                    continue
                content = str(m.get("content", ""))
                own = max_message_chars if m.get("role") in ("user", "human") or max_reply_chars is None else max_reply_chars
                limit = min(x for x in (own, budget, len(content)) if x is not None)
                if limit < len(content):
                    content, clipped = content[:limit], True
                if budget is not None:
                    budget -= len(content)
                msgs.append({"role": str(m.get("role", "")), "content": content, "created_at": m.get("created_at")})
                if budget is not None and budget <= 0:
                    clipped = clipped or len(msgs) < len(messages)
                    break
            f = facets_by.get(cid, {})
            out.append({
                "id": cid,
                "created_at": _iso(r.get("created_at")),
                "source": r.get("source"),
                "source_line": r.get("source_line"),
                "messages": msgs,
                "clipped": clipped,
                "metadata": metadata if isinstance(metadata, dict) else {"metadata": metadata},
                "facets": {k: _plain(_json_or(v) if k.startswith("facet_") else v) for k, v in f.items()},
                "topics": topics_by.get(cid, []),
            })
        return out


def _metadata_facets(raw: list[str | None]) -> list[dict[str, Any]]:
    """Turn metadata keys with few distinct scalar values (or string lists) into facets."""
    parsed: list[dict[str, Any]] = []
    for m in raw:
        try:
            d = json.loads(m) if m else {}
        except ValueError:
            d = {}
        parsed.append(d if isinstance(d, dict) else {})
    keys: dict[str, None] = {}
    for d in parsed:
        for k in d:
            keys.setdefault(k, None)
    out = []
    n = len(parsed)
    for k in keys:
        vals = [d.get(k) for d in parsed]
        present = [v for v in vals if v is not None]
        if not present or any(isinstance(v, dict) for v in present):
            continue
        if any(isinstance(v, list) for v in present):
            if not all(isinstance(v, list) and all(isinstance(i, (str, int, float)) for i in v) for v in present):
                continue
        else:
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
            distinct = len({str(v) for v in present})
            # identifiers (nearly one value per conversation) say nothing as a distribution
            if not numeric and (distinct > MAX_CATEGORIES * 5 or (distinct > 0.5 * n and n > 20)):
                continue
        enc = encode_facet("meta." + k, k.replace("_", " ").capitalize(), vals)
        if enc:
            enc["group"] = "metadata"
            out.append(enc)
    return out


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def search_tokens(query: str, max_tokens: int = 12) -> list[str]:
    """The words of a search query, lowercased, each once, in order (at most ``max_tokens``).

    Single ASCII letters are dropped when the query has longer words (they match almost
    everything as a substring).

    >>> search_tokens("Python  error, python's 'ERROR'!"), search_tokens("C")
    (['python', 'error'], ['c'])
    """
    out: list[str] = []
    for t in _TOKEN.findall(query.lower()):
        if t not in out:
            out.append(t)
    longer = [t for t in out if not (len(t) == 1 and t.isascii() and t.isalpha())]
    return (longer or out)[:max_tokens]


def snippet_of(texts: list[tuple[str, str]], tokens: list[str], width: int = 160) -> tuple[str, str]:
    """The first ``(label, text)`` in which a token occurs, cut to about ``width`` characters around it.

    >>> snippet_of([("user", "hello"), ("assistant", "a" * 100 + " the error was here " + "b" * 100)], ["error"], 40)
    ('assistant', '…aaaaaaaa the error was here bbbbbbbbbbbb…')
    """
    for label, text in texts:
        lower = text.lower()
        hits = [i for i in (lower.find(t) for t in tokens) if i >= 0]
        if not hits:
            continue
        at = min(hits)
        lo = max(0, at - width // 3)
        hi = min(len(text), lo + width)
        lo = max(0, min(lo, hi - width))
        cut = " ".join(text[lo:hi].split())
        return label, ("…" if lo > 0 else "") + cut + ("…" if hi < len(text) else "")
    label, text = texts[0] if texts else ("", "")
    return label, " ".join(text[:width].split())


def clamp_page(limit: int, offset: int) -> tuple[int, int]:
    """Clamp paging to 1..MAX_PAGE rows from a non-negative offset.

    >>> clamp_page(10_000, -5)
    (500, 0)
    """
    return max(1, min(int(limit), MAX_PAGE)), max(0, int(offset))


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _iso(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v.isoformat()
    return str(v)


def _plain(v: Any) -> Any:
    """Make a DuckDB/Arrow value JSON-ready."""
    if isinstance(v, datetime):
        return _iso(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_plain(i) for i in v]
    return v
