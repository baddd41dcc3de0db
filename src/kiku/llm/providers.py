"""LLM providers behind one small interface, and the ``--llm PROVIDER/MODEL`` spec.

Spec forms (:func:`parse_llm_spec`):

=============================================  ==============================================
``openai/gpt-4o-mini``                          OpenAI (``OPENAI_API_KEY``), extra ``openai``
``anthropic/claude-3-5-haiku-latest``           Anthropic (``ANTHROPIC_API_KEY``), extra ``anthropic``
``gemini/gemini-2.0-flash``                     Google Gemini (``GEMINI_API_KEY``), extra ``gemini``
``ollama/llama3.1``                             Ollama's OpenAI-compatible API at localhost:11434
``openai-compatible/MODEL@http://host:8000/v1`` any OpenAI-compatible server (vLLM, llama.cpp, LM Studio)
``local``                                       in-process llama.cpp: Qwen2.5-Coder 1.5B when installed, else 0.5B
``local/qwen2.5-coder-0.5b`` / ``local/x.gguf`` a named packaged model or any GGUF file
=============================================  ==============================================

Every backend turns ``(messages, JSON schema, params)`` into raw text plus token counts; the
client (:mod:`kiku.llm.client`) adds caching, retries, concurrency and accounting.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from kiku.errors import KikuError, require

HOSTED = ("openai", "anthropic", "gemini")
PROVIDER_ALIASES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "claude": "anthropic",
    "gemini": "gemini",
    "google": "gemini",
    "ollama": "ollama",
    "openai-compatible": "openai-compatible",
    "openai_compatible": "openai-compatible",
    "vllm": "openai-compatible",
    "lmstudio": "openai-compatible",
    "local": "local",
    "llamacpp": "local",
}
OLLAMA_BASE_URL = "http://localhost:11434/v1"

#: USD per million (input, output) tokens, matched by longest model-name prefix.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
    "gemini-1.5-flash": (0.075, 0.30),
    "gemini-2.0-flash-lite": (0.075, 0.30),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-pro": (1.25, 10.00),
}


@dataclass(frozen=True)
class ProviderSpec:
    """A parsed ``--llm`` value.

    >>> parse_llm_spec("openai-compatible/qwen@http://127.0.0.1:8000/v1")
    ProviderSpec(provider='openai-compatible', model='qwen', base_url='http://127.0.0.1:8000/v1')
    """

    provider: str
    model: str
    base_url: str | None = None

    @property
    def hosted(self) -> bool:
        """True when text leaves this machine for a third-party API (redaction defaults on)."""
        return self.provider in HOSTED

    def __str__(self) -> str:
        text = f"{self.provider}/{self.model}"
        return f"{text}@{self.base_url}" if self.base_url else text


def parse_llm_spec(spec: str, base_url: str | None = None) -> ProviderSpec:
    """Parse ``PROVIDER/MODEL[@BASE_URL]`` (see the module docstring); raises KikuError when malformed.

    ``local`` alone resolves the default packaged model (:func:`kiku.llm.models.default_local_model`).
    """
    text = (spec or "").strip()
    if not text:
        raise KikuError("--llm is empty; use e.g. --llm local, --llm openai/gpt-4o-mini or --llm ollama/llama3.1")
    head, _, rest = text.partition("/")
    provider = PROVIDER_ALIASES.get(head.lower())
    if provider is None:
        raise KikuError(
            f"unknown LLM provider {head!r} in --llm {text!r}; use one of openai, anthropic, gemini, ollama, "
            "openai-compatible, local"
        )
    if provider == "local":
        from kiku.llm.models import default_local_model

        return ProviderSpec("local", rest or default_local_model())
    if "@" in rest and provider in ("openai-compatible", "ollama"):
        rest, _, url = rest.rpartition("@")
        base_url = base_url or url
    if not rest:
        raise KikuError(f"--llm {text!r} names no model; write {head}/MODEL, e.g. {head}/{_example_model(provider)}")
    if provider == "ollama":
        base_url = base_url or os.environ.get("OLLAMA_BASE_URL") or OLLAMA_BASE_URL
    if provider == "openai-compatible" and not base_url:
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise KikuError(
                f"--llm {text!r} needs a server address: write openai-compatible/{rest}@http://HOST:PORT/v1"
            )
    return ProviderSpec(provider, rest, base_url)


def _example_model(provider: str) -> str:
    return {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest", "gemini": "gemini-2.0-flash",
            "ollama": "llama3.1", "openai-compatible": "MODEL@http://127.0.0.1:8000/v1"}.get(provider, "MODEL")


def price_per_million(provider: str, model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens; 0 for local/self-hosted, None when unknown."""
    if provider in ("local", "ollama", "openai-compatible"):
        return (0.0, 0.0)
    name = model.lower().split("/")[-1]
    best = max((p for p in PRICES_PER_MILLION if name.startswith(p)), key=len, default=None)
    return PRICES_PER_MILLION[best] if best else None


@dataclass
class RawResponse:
    """What a backend returns: the model's text and its token counts."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class RetryableError(Exception):
    """A transient failure (rate limit, 5xx, timeout, connection): worth another attempt.

    ``retry_after`` is the server's requested wait in seconds, when it gave one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Backend(Protocol):
    """One provider/model. ``generate`` is called at most ``default_concurrency`` times at once."""

    provider: str
    model: str
    default_concurrency: int

    async def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], params: dict[str, Any]) -> RawResponse: ...

    def count_tokens(self, text: str) -> int: ...


def approx_tokens(text: str) -> int:
    """Rough token count (characters / 4), used for dry-run estimates without a tokenizer."""
    return max(1, len(text) // 4) if text else 0


class _PerLoop:
    """Holds one SDK client per event loop (async HTTP clients cannot cross loops)."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self._clients: dict[int, Any] = {}

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        key = id(loop)
        if key not in self._clients:
            self._clients = {k: v for k, v in self._clients.items() if k == key}
            self._clients[key] = self._factory()
        return self._clients[key]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its SDK clients (they hold connections): a copy makes its own."""
        return {"_factory": self._factory, "_clients": {}}


def _with_key(state: dict[str, Any], *variables: str) -> dict[str, Any]:
    """A hosted backend's pickled state with its API key taken from the first of ``variables`` set
    here when none was given: a copy sent to a Ray worker calls the provider with the driver's
    key (the worker's environment may have none). The key travels inside the Ray cluster only."""
    if not state.get("api_key"):
        state = {**state, "api_key": next((os.environ[v] for v in variables if os.environ.get(v)), None)}
    return state


def _status_retryable(status: int | None) -> bool:
    return status is not None and (status == 429 or status == 408 or status >= 500)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass
class OpenAIBackend:
    """OpenAI, Ollama or any OpenAI-compatible server through the official ``openai`` SDK.

    ``response_format``: ``"json_schema"`` (OpenAI, Ollama, vLLM) or ``"json_object"`` with the
    schema attached (llama.cpp servers; the default for ``openai-compatible``).
    """

    provider: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    response_format: str = "json_schema"
    default_concurrency: int = 8
    check_sdk: bool = field(default=True, repr=False)  # False: estimation only (--dry-run), the SDK may be absent
    _clients: _PerLoop = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.check_sdk:
            require("openai", "openai")
        self._clients = _PerLoop(self._new_client)

    def _new_client(self) -> Any:
        """The SDK client, created on the first call (so --dry-run needs no key)."""
        openai = require("openai", "openai")
        key = self.api_key or os.environ.get("OPENAI_API_KEY") or ("sk-no-key" if self.provider != "openai" else None)
        if key is None:
            raise KikuError("OPENAI_API_KEY is not set; export it or pass api_key=")
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=None)

    async def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], params: dict[str, Any]) -> RawResponse:
        client = self._clients.get()
        import openai

        if self.response_format == "json_schema":
            fmt: dict[str, Any] = {"type": "json_schema", "json_schema": {"name": schema.get("title", "response"), "schema": schema}}
        else:
            fmt = {"type": "json_object", "schema": schema}
        try:
            response = await client.chat.completions.create(
                model=self.model, messages=messages, response_format=fmt,
                temperature=params.get("temperature", 0.0), max_tokens=params.get("max_tokens", 512),
                seed=params.get("seed"),
            )
        except openai.APIStatusError as exc:
            if _status_retryable(exc.status_code):
                raise RetryableError(f"HTTP {exc.status_code}: {str(exc)[:200]}", _retry_after(exc)) from exc
            raise KikuError(f"{self.provider} rejected the request (HTTP {exc.status_code}): {str(exc)[:300]}") from exc
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        choice = response.choices[0]
        usage = response.usage
        return RawResponse(choice.message.content or "", getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def __getstate__(self) -> dict[str, Any]:
        return _with_key(dict(self.__dict__), "OPENAI_API_KEY") if self.provider == "openai" else dict(self.__dict__)


@dataclass
class AnthropicBackend:
    """Anthropic Messages API via the official SDK; structured output through one forced tool call."""

    model: str
    api_key: str | None = None
    provider: str = "anthropic"
    default_concurrency: int = 8
    check_sdk: bool = field(default=True, repr=False)  # False: estimation only (--dry-run), the SDK may be absent
    _clients: _PerLoop = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.check_sdk:
            require("anthropic", "anthropic")
        self._clients = _PerLoop(self._new_client)

    def _new_client(self) -> Any:
        return require("anthropic", "anthropic").AsyncAnthropic(api_key=self.api_key, max_retries=0)

    async def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], params: dict[str, Any]) -> RawResponse:
        import json

        client = self._clients.get()
        import anthropic

        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        chat = [m for m in messages if m["role"] != "system"]
        tool = {"name": "answer", "description": "Record the answer.", "input_schema": schema}
        try:
            response = await client.messages.create(
                model=self.model, max_tokens=params.get("max_tokens", 512), temperature=params.get("temperature", 0.0),
                messages=chat, tools=[tool], tool_choice={"type": "tool", "name": "answer"},
                **({"system": system} if system else {}),
            )
        except anthropic.APIStatusError as exc:
            if _status_retryable(exc.status_code) or exc.status_code == 529:
                raise RetryableError(f"HTTP {exc.status_code}: {str(exc)[:200]}", _retry_after(exc)) from exc
            raise KikuError(f"anthropic rejected the request (HTTP {exc.status_code}): {str(exc)[:300]}") from exc
        except (anthropic.APIConnectionError, anthropic.APITimeoutError) as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        data = next((block.input for block in response.content if getattr(block, "type", "") == "tool_use"), None)
        text = json.dumps(data) if data is not None else "".join(getattr(b, "text", "") for b in response.content)
        return RawResponse(text, response.usage.input_tokens, response.usage.output_tokens)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def __getstate__(self) -> dict[str, Any]:
        return _with_key(dict(self.__dict__), "ANTHROPIC_API_KEY")


@dataclass
class GeminiBackend:
    """Google Gemini via the official ``google-genai`` SDK with a JSON response schema."""

    model: str
    api_key: str | None = None
    provider: str = "gemini"
    default_concurrency: int = 8
    check_sdk: bool = field(default=True, repr=False)  # False: estimation only (--dry-run), the SDK may be absent
    _client: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.check_sdk:
            require("google.genai", "gemini")

    def _sdk(self) -> Any:
        if self._client is None:  # created on the first call, so --dry-run needs no key
            genai = require("google.genai", "gemini")

            try:
                self._client = genai.Client(api_key=self.api_key) if self.api_key else genai.Client()
            except ValueError as exc:
                raise KikuError(f"gemini: {exc}; export GEMINI_API_KEY or pass api_key=") from exc
        return self._client

    async def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], params: dict[str, Any]) -> RawResponse:
        self._sdk()
        from google.genai import errors, types

        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
        contents = [
            types.Content(role="model" if m["role"] == "assistant" else "user", parts=[types.Part(text=m["content"])])
            for m in messages if m["role"] != "system"
        ]
        config = types.GenerateContentConfig(
            system_instruction=system, temperature=params.get("temperature", 0.0),
            max_output_tokens=params.get("max_tokens", 512), response_mime_type="application/json",
            response_json_schema=schema, seed=params.get("seed"),
        )
        try:
            response = await self._sdk().aio.models.generate_content(model=self.model, contents=contents, config=config)
        except errors.APIError as exc:
            if _status_retryable(getattr(exc, "code", None)):
                raise RetryableError(f"HTTP {exc.code}: {str(exc)[:200]}") from exc
            raise KikuError(f"gemini rejected the request: {str(exc)[:300]}") from exc
        usage = response.usage_metadata
        return RawResponse(response.text or "", getattr(usage, "prompt_token_count", 0) or 0, getattr(usage, "candidates_token_count", 0) or 0)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def __getstate__(self) -> dict[str, Any]:
        return {**_with_key(dict(self.__dict__), "GEMINI_API_KEY", "GOOGLE_API_KEY"), "_client": None}


@dataclass
class LocalBackend:
    """An in-process llama.cpp model decoding up to ``n_parallel`` requests together, seeded, greedy.

    ``model`` is a packaged model name or a GGUF path (:func:`kiku.llm.models.local_model_path`).
    The model is loaded on first use into a :class:`kiku.llm.batched.BatchEngine` (continuous
    batching: the next token of every request in flight is decoded in one llama.cpp call);
    ``n_ctx`` is the context of each request. JSON output follows a grammar built from the schema,
    checked on the best token first (cheap) and applied to the whole vocabulary only when needed.
    The client keeps ``n_parallel`` requests in flight (``default_concurrency``).
    """

    model: str
    n_ctx: int = 4096
    n_threads: int = field(default_factory=lambda: default_threads())
    seed: int = 0
    n_parallel: int = field(default_factory=lambda: default_parallel())
    provider: str = "local"
    default_concurrency: int = 0
    _engine: Any = field(init=False, repr=False, default=None)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        require("llama_cpp", "local")
        from kiku.llm.models import local_model_path

        self.path = local_model_path(self.model)
        self.default_concurrency = self.default_concurrency or self.n_parallel

    @property
    def engine(self) -> Any:
        """The loaded :class:`kiku.llm.batched.BatchEngine` (loaded on first use)."""
        with self._lock:
            if self._engine is None:
                from kiku.llm.batched import BatchEngine

                self._engine = BatchEngine(self.path, n_parallel=self.n_parallel, n_threads=self.n_threads,
                                           n_ctx_per_seq=self.n_ctx, seed=self.seed)
            return self._engine

    async def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], params: dict[str, Any]) -> RawResponse:
        future = self.engine.submit(messages, schema, int(params.get("max_tokens", 512)),
                                    temperature=float(params.get("temperature") or 0.0), seed=int(params.get("seed") or 0))
        out = await asyncio.wrap_future(future)
        return RawResponse(out.text, out.prompt_tokens, out.completion_tokens)

    def count_tokens(self, text: str) -> int:
        """Exact token count with the model's own tokenizer (loads the vocabulary only)."""
        with self._lock:
            if self._engine is not None:
                return len(self._engine.tokenize(text, add_bos=False))
            vocab = getattr(self, "_vocab", None)
            if vocab is None:
                from llama_cpp import Llama

                vocab = self._vocab = Llama(model_path=str(self.path), vocab_only=True, verbose=False)
            return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as its settings: a copy sent to a Ray worker loads the model from that node's
        kiku install on its first call (and holds it for every later chunk)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_engine", "_lock", "_vocab", "path")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._engine, self._lock = None, threading.Lock()
        require("llama_cpp", "local")
        from kiku.llm.models import local_model_path

        self.path = local_model_path(self.model)

    def close(self) -> None:
        """Stop the decode thread and free the context."""
        with self._lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None


def default_parallel() -> int:
    """Requests the local model decodes together: ``$KIKU_LLM_PARALLEL`` or 1.

    1 by default because on the 2-core CPU measured (docs/llm.md) a step of 4 sequences cost as
    much as 4 steps of one: llama.cpp's CPU kernels for Q4_K weights do not reuse a weight read
    across sequences there. Set it higher where batching pays (GPU offload, CPUs where llama.cpp
    uses its tiled matrix kernels).
    """
    value = os.environ.get("KIKU_LLM_PARALLEL", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def default_threads() -> int:
    """llama.cpp threads: ``$KIKU_LLM_THREADS``, else min(2, cores), else 1 when the machine is busy.

    Busy = a 1-minute load average at or above the core count: llama.cpp's threads wait for each
    other at every layer, so on an oversubscribed machine one thread is several times faster
    than two (measured in docs/llm.md).
    """
    value = os.environ.get("KIKU_LLM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0] >= cores
    except OSError:  # not available on this platform
        busy = False
    return 1 if busy else max(1, min(2, cores))


def make_backend(spec: ProviderSpec, **options: Any) -> Backend:
    """Build the backend for a parsed spec. ``options`` go to the backend (api_key, n_ctx, seed...)."""
    if spec.provider == "local":
        return LocalBackend(spec.model, **options)
    if spec.provider == "openai":
        return OpenAIBackend("openai", spec.model, base_url=spec.base_url, **options)
    if spec.provider == "ollama":
        return OpenAIBackend("ollama", spec.model, base_url=spec.base_url, default_concurrency=2, **options)
    if spec.provider == "openai-compatible":
        options.setdefault("response_format", "json_object")
        return OpenAIBackend("openai-compatible", spec.model, base_url=spec.base_url, default_concurrency=4, **options)
    if spec.provider == "anthropic":
        return AnthropicBackend(spec.model, **options)
    if spec.provider == "gemini":
        return GeminiBackend(spec.model, **options)
    raise KikuError(f"unknown LLM provider {spec.provider!r}")
