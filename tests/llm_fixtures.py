"""Shared helpers for the LLM tests: a real llama.cpp OpenAI-compatible server, a fault proxy,
and a scripted backend for pure-logic unit tests."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from kiku.llm.providers import RawResponse, RetryableError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LlamaServer:
    """A ``python -m llama_cpp.server`` process serving one GGUF file on 127.0.0.1."""

    model_path: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> LlamaServer:
        threads = os.environ.get("KIKU_LLM_THREADS", "1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", self.model_path, "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", "2048", "--n_threads", threads, "--n_threads_batch", threads,
             "--model_alias", "smollm2", "--verbose", "False"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("llama_cpp.server did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of the real server that misbehaves on demand.

    ``plan`` is called with the request number (0-based) and returns one of ``"pass"``,
    ``"500"``, ``"429"``, ``"malformed"`` (a 200 answer whose content is broken JSON),
    ``"slow"`` (waits ``slow_s`` before passing on) or ``"drop"`` (closes the connection).
    """

    def __init__(self, upstream: str, plan: Callable[[int], str], slow_s: float = 5.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        self.slow_s = slow_s
        self.count = 0
        self.log: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with proxy._lock:
                    number = proxy.count
                    proxy.count += 1
                action = proxy.plan(number)
                proxy.log.append(action)
                if action == "500":
                    return self._send(500, {"error": {"message": "injected failure"}})
                if action == "429":
                    return self._send(429, {"error": {"message": "slow down"}}, {"retry-after": "0"})
                if action == "drop":
                    self.close_connection = True
                    return
                if action == "slow":
                    time.sleep(proxy.slow_s)
                try:
                    upstream = httpx.post(proxy.upstream + self.path.removeprefix("/v1"), content=body,
                                          headers={"content-type": "application/json"}, timeout=600)
                except httpx.HTTPError as exc:
                    return self._send(502, {"error": {"message": str(exc)}})
                data = upstream.json()
                if action == "malformed" and upstream.status_code == 200:
                    data["choices"][0]["message"]["content"] = '{"summary": "cut off'
                self._send(upstream.status_code, data)

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class ScriptedBackend:
    """A backend for pure-logic tests: answers from ``script(messages, schema, n)``; counts calls."""

    script: Callable[[list[dict[str, str]], dict[str, Any], int], Any]
    provider: str = "scripted"
    model: str = "test"
    default_concurrency: int = 4
    calls: int = 0
    max_in_flight: int = 0
    _in_flight: int = 0
    delay_s: float = 0.0

    async def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], params: dict[str, Any]) -> RawResponse:
        number = self.calls
        self.calls += 1
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            answer = self.script(messages, schema, number)
        finally:
            self._in_flight -= 1
        if isinstance(answer, Exception):
            raise answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return RawResponse(text, prompt_tokens=sum(len(m["content"]) for m in messages) // 4, completion_tokens=len(text) // 4)

    def count_tokens(self, text: str) -> int:
        return len(text) // 4


def retryable(message: str = "HTTP 503") -> RetryableError:
    return RetryableError(message)


def iter_lines(path: str) -> Iterator[str]:
    with open(path) as handle:
        yield from handle
