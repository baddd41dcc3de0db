"""`kiku ui` and `kiku export RUN html` as a user runs them (real subprocess, real server)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import web_runs

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_runs.write_wandb_run(tmp_path_factory.mktemp("cli") / "run", llm=False)


def test_kiku_ui_serves_on_loopback_and_prints_the_url(run_dir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kiku", "ui", str(run_dir)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        url = match.group(0)
        deadline = time.monotonic() + 20
        while True:
            try:
                res = httpx.get(url + "api/run", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.1)
        assert res.json()["conversations"] == 560
        assert "script-src 'self'" in httpx.get(url).headers["content-security-policy"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_kiku_export_html_writes_one_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    res = subprocess.run([sys.executable, "-m", "kiku", "export", str(run_dir), "html", str(out)], env=ENV,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 100_000 and 'id="kiku-data"' in out.read_text(encoding="utf-8")


def test_kiku_export_html_clip_limits_are_options(run_dir: Path, tmp_path: Path) -> None:
    def export(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kiku", "export", str(run_dir), *args], env=ENV,
                              capture_output=True, text=True, timeout=120)

    default, clipped, whole = tmp_path / "default.html", tmp_path / "clipped.html", tmp_path / "whole.html"
    assert export("html", str(default)).returncode == 0
    res = export("html", str(clipped), "--max-message-chars", "12", "--max-conversation-chars", "12")
    assert res.returncode == 0, res.stderr
    assert export("html", str(whole), "--max-message-chars", "0", "--max-conversation-chars", "0",
                  "--max-reply-chars", "0").returncode == 0
    assert clipped.stat().st_size < default.stat().st_size <= whole.stat().st_size
    refused = export("clusters", str(tmp_path / "c.csv"), "--max-reply-chars", "5")
    assert refused.returncode != 0 and "--max-reply-chars" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_kiku_ui_on_a_folder_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "kiku", "ui", str(tmp_path)], env=ENV,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "not a kiku run" in res.stderr and "Traceback" not in res.stderr
