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

    def close(self) -> None:
        with self._lock:
            self._db.close()
