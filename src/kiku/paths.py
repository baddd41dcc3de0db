"""Where kiku keeps files that outlive a run: assembled models, the LLM cache, compiled code.

One folder, ``$KIKU_CACHE_DIR`` or ``~/.cache/kiku``; each user of it takes a subfolder.

Example:
    >>> import os
    >>> os.environ["KIKU_CACHE_DIR"] = "/tmp/kiku-cache"
    >>> str(cache_root())
    '/tmp/kiku-cache'
    >>> del os.environ["KIKU_CACHE_DIR"]
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The folder for kiku's caches: ``$KIKU_CACHE_DIR``, else ``~/.cache/kiku`` (not created here)."""
    root = os.environ.get("KIKU_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "kiku"
