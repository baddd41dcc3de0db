"""On-disk cache of LLM responses, keyed by everything that shapes an answer.

The key is the sha256 of (provider, model, messages as sent, response schema JSON, generation
parameters, cache format version). Messages hold the rendered prompt template *and* the
conversation content but never a conversation id, so two identical conversations share one
entry and each caller maps the answer back to its own conversation (Kura's cache stores the
answer under the first chat id and hands it to the second).

Only validated, successful answers are stored: a failure is retried on the next run.

Example:
    >>> cache = ResponseCache(":memory:")
    >>> key = cache_key("local", "m", [{"role": "user", "content": "hi"}], {"type": "object"}, {})
    >>> cache.get(key) is None
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

CACHE_FORMAT = 1


def cache_key(
    provider: str,
    model: str,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    params: dict[str, Any],
) -> str:
    """Hex sha256 over everything that shapes a response (canonical JSON, sorted keys)."""
    payload = {
        "format": CACHE_FORMAT,
        "provider": provider,
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "schema": schema,
        "params": params,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CachedResponse(BaseModel):
    """A stored answer: the validated JSON object and the tokens it cost when it was made."""

    data: dict[str, Any]
    prompt_tokens: int = 0
    completion_tokens: int = 0


def default_cache_path() -> Path:
    """``$KIKU_CACHE_DIR/llm-cache.sqlite`` or ``~/.cache/kiku/llm-cache.sqlite``."""
    from kiku.paths import cache_root

    return cache_root() / "llm-cache.sqlite"


class ResponseCache:
    """A small SQLite table of responses, safe to share between threads and processes.

    ``path`` is a file (created with its folder) or ``":memory:"``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        target = str(path) if path is not None else str(default_cache_path())
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self.path = target
        self._lock = threading.Lock()
        self._db = sqlite3.connect(target, check_same_thread=False, timeout=30)
        with self._lock, self._db:
            self._db.execute("pragma journal_mode=wal") if target != ":memory:" else None
            self._db.execute(
                "create table if not exists responses ("
                " key text primary key, stage text, provider text, model text,"
                " data text not null, prompt_tokens int, completion_tokens int, created_at real)"
            )

    def get(self, key: str) -> CachedResponse | None:
        with self._lock:
            row = self._db.execute(
                "select data, prompt_tokens, completion_tokens from responses where key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return CachedResponse(data=json.loads(row[0]), prompt_tokens=row[1] or 0, completion_tokens=row[2] or 0)

    def contains(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("select 1 from responses where key = ?", (key,)).fetchone() is not None

    def put(self, key: str, response: CachedResponse, stage: str = "", provider: str = "", model: str = "") -> None:
        with self._lock, self._db:
            self._db.execute(
                "insert or replace into responses values (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, stage, provider, model, json.dumps(response.data, ensure_ascii=False),
                 response.prompt_tokens, response.completion_tokens, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("select count(*) from responses").fetchone()[0])

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as its path only (a copy sent to a Ray worker opens its own connection)."""
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Open the cache at the pickled path; where that folder cannot be made on this machine (a
        worker on another node, another user's home), this machine's default cache instead."""
        try:
            self.__init__(state["path"])  # type: ignore[misc]
        except (OSError, sqlite3.Error):
            self.__init__(None)  # type: ignore[misc]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class JournaledCache:
    """A :class:`ResponseCache` that also keeps every answer put into it since the last
    :meth:`take` (what a worker's client learned, to be handed back to the driver's cache).

    >>> cache = JournaledCache(ResponseCache(":memory:"))
    >>> cache.put("k", CachedResponse(data={"a": 1}), stage="describe")
    >>> cache.get("k").data, [entry["key"] for entry in cache.take()], cache.take()
    ({'a': 1}, ['k'], [])
    """

    def __init__(self, inner: ResponseCache) -> None:
        self.inner = inner
        self.path = inner.path
        self._journal: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedResponse | None:
        return self.inner.get(key)

    def contains(self, key: str) -> bool:
        return self.inner.contains(key)

    def put(self, key: str, response: CachedResponse, stage: str = "", provider: str = "", model: str = "") -> None:
        self.inner.put(key, response, stage=stage, provider=provider, model=model)
        with self._lock:
            self._journal.append({"key": key, "response": response.model_dump(mode="json"), "stage": stage,
                                  "provider": provider, "model": model})

    def take(self) -> list[dict[str, Any]]:
        """The journal (JSON-able dicts: key, response, stage, provider, model), emptied."""
        with self._lock:
            journal, self._journal = self._journal, []
        return journal

    def __len__(self) -> int:
        return len(self.inner)

    def close(self) -> None:
        self.inner.close()


def put_journal(cache: ResponseCache | JournaledCache, journal: list[dict[str, Any]]) -> int:
    """Put the entries of a :meth:`JournaledCache.take` into ``cache`` (those it lacks); returns how many.

    >>> worker = JournaledCache(ResponseCache(":memory:"))
    >>> worker.put("k", CachedResponse(data={"a": 1}))
    >>> driver = ResponseCache(":memory:")
    >>> put_journal(driver, worker.take()), driver.get("k").data
    (1, {'a': 1})
    """
    added = 0
    for entry in journal:
        if not cache.contains(entry["key"]):
            cache.put(entry["key"], CachedResponse.model_validate(entry["response"]), stage=entry.get("stage", ""),
                      provider=entry.get("provider", ""), model=entry.get("model", ""))
            added += 1
    return added
