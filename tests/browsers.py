"""The headless Chromium every browser test drives: Debian's, through Playwright (no download).

``KIKU_CHROMIUM`` points at another binary; without it ``/usr/bin/chromium``, else ``chromium``
on PATH. The ``browser`` fixture in ``conftest.py`` launches it once per test module.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = os.environ.get("KIKU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    """The Chromium binary to launch, or None when there is none."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
