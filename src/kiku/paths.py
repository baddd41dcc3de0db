"""Where kiku keeps files that outlive a run (assembled models, the LLM cache, compiled code),
and the one way kiku checks a file's contents (its sha256).

One folder, ``$KIKU_CACHE_DIR`` or ``~/.cache/kiku``; each user of it takes a subfolder.

Example:
    >>> import os
    >>> os.environ["KIKU_CACHE_DIR"] = "/tmp/kiku-cache"
    >>> str(cache_root())
    '/tmp/kiku-cache'
    >>> del os.environ["KIKU_CACHE_DIR"]
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    """The folder for kiku's caches: ``$KIKU_CACHE_DIR``, else ``~/.cache/kiku`` (not created here)."""
    root = os.environ.get("KIKU_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "kiku"


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 8 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (pinned model files, shipped assets)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
