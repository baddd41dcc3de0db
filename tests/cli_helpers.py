"""Running the real `kiku` command line in a subprocess, as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kiku_env(extra_path: Path | None = None) -> dict[str, str]:
    """The environment for a `kiku` subprocess: this checkout's sources first (then ``extra_path``)."""
    paths = ([str(extra_path)] if extra_path else []) + [str(ROOT / "src")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), COLUMNS="200")


def kiku_command(*args: object) -> list[str]:
    """The argv of ``kiku ARGS...``."""
    return [sys.executable, "-m", "kiku", *map(str, args)]


def kiku(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``kiku ARGS...`` to completion and capture its output."""
    return subprocess.run(kiku_command(*args), capture_output=True, text=True, env=env or kiku_env(), cwd=cwd,
                          timeout=timeout)
