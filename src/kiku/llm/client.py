"""One async client for every provider: cache, concurrency, retries, timeouts, accounting.

Example:
    >>> from pydantic import BaseModel
    >>> class Answer(BaseModel):
    ...     topic: str
    >>> client = LLMClient.from_spec("local/smollm2-135m")              # doctest: +SKIP
    >>> answer, usage = run_sync(client.complete(
    ...     [{"role": "user", "content": "Topic of: how do I log a table?"}], Answer, stage="demo"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from kiku.errors import KikuError
from kiku.llm.cache import CachedResponse, JournaledCache, ResponseCache, cache_key, put_journal
from kiku.llm.providers import (
    Backend,
    ProviderSpec,
    RawResponse,
    RetryableError,
    make_backend,
    parse_llm_spec,
    price_per_million,
)
from kiku.privacy import redact as redact_text

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")


class InvalidOutputError(Exception):
    """The model's answer was not valid JSON for the schema (retryable)."""


class LLMCallError(KikuError):
    """A call failed after all attempts; ``attempts`` and the last error are in the message."""


class StageUsage(BaseModel):
    """Calls and tokens of one pipeline stage (``calls`` counts requests sent, retries included)."""

    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0


class Failure(BaseModel):
    """One item (conversation, cluster) an LLM stage could not process."""

    stage: str
    item_id: str
    error: str


class Usage(BaseModel):
    """What the LLM layer did in a run; stored as ``manifest["llm"]``."""

    provider: str = ""
    model: str = ""
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    by_stage: dict[str, StageUsage] = Field(default_factory=dict)
    failures: list[Failure] = Field(default_factory=list)

    def add(self, other: Usage) -> None:
        """Add ``other``'s counts, costs and failures to this usage (a Ray worker's, on the driver).

        A cost that is unknown (None) on either side makes the sum unknown.

        >>> total = Usage(calls=2, by_stage={"describe": StageUsage(calls=2)})
        >>> total.add(Usage(calls=3, cost_usd=None, by_stage={"describe": StageUsage(calls=3, cost_usd=None)}))
        >>> total.calls, total.by_stage["describe"].calls, total.cost_usd
        (5, 5, None)
        """
        for name in ("calls", "cache_hits", "retries", "prompt_tokens", "completion_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_usd = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        for stage, part in other.by_stage.items():
            mine = self.by_stage.setdefault(stage, StageUsage())
            for name in ("calls", "cache_hits", "retries", "failures", "prompt_tokens", "completion_tokens", "seconds"):
                setattr(mine, name, getattr(mine, name) + getattr(part, name))
            mine.cost_usd = None if mine.cost_usd is None or part.cost_usd is None else mine.cost_usd + part.cost_usd
        self.failures.extend(other.failures)

    def one_line(self) -> str:
        cost = "unknown cost" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        return (
            f"LLM {self.provider}/{self.model}: {self.calls} calls ({self.cache_hits} cached, {self.retries} retries), "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens, {cost}"
            + (f", {len(self.failures)} failed items" if self.failures else "")
        )


@dataclass
class CallUsage:
    """Tokens of one ``complete`` call; ``cached`` when no request was sent."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    attempts: int = 0


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 30.0, rng: random.Random | None = None,
                  retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential with "equal jitter".

    The delay lies in ``[d/2, d]`` with ``d = min(cap, base * 2**(attempt-1))``; a server's
    ``retry_after`` is honoured when larger (up to ``cap``).

    >>> 0.5 <= backoff_delay(1, base=1.0, rng=random.Random(0)) <= 1.0
    True
    """
    rng = rng or random.Random()
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def parse_json_object(text: str) -> dict[str, Any]:
    """Leniently parse a model's JSON answer: strips code fences and text around the object.

    >>> parse_json_object('Sure! ```json\\n{"a": "line\\nbreak"}\\n```')
    {'a': 'line\\nbreak'}
    """
    cleaned = _FENCE.sub("", text.strip()).strip()
    try:
        value = json.loads(cleaned, strict=False)
    except json.JSONDecodeError:
        start, end = cleaned.find("{"), cleaned.rfind("}")
        if start < 0 or end <= start:
            raise InvalidOutputError(f"no JSON object in the answer: {text[:120]!r}") from None
        try:
            value = json.loads(cleaned[start : end + 1], strict=False)
        except json.JSONDecodeError as exc:
            raise InvalidOutputError(f"malformed JSON ({exc.msg}): {text[:120]!r}") from None
    if not isinstance(value, dict):
        raise InvalidOutputError(f"expected a JSON object, got {type(value).__name__}")
    return value


#: Temperature of a retry after an answer that did not parse or validate (seeded, so repeatable).
RETRY_TEMPERATURE = 0.7


def retry_params(params: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Generation parameters for the attempt after ``attempt`` produced an unusable answer.

    A model at temperature 0 answers the same prompt the same way, so a retry samples: at least
    :data:`RETRY_TEMPERATURE`, with the seed moved by the attempt number (repeatable runs).

    >>> retry_params({"temperature": 0.0, "max_tokens": 64, "seed": 3}, 1)
    {'temperature': 0.7, 'max_tokens': 64, 'seed': 4}
    """
    return {**params, "temperature": max(float(params.get("temperature") or 0.0), RETRY_TEMPERATURE),
            "seed": int(params.get("seed") or 0) + attempt}


@dataclass
class LLMClient:
    """Structured LLM calls with a response cache, a concurrency limit, retries and accounting.

    Parameters: ``backend`` (a provider), ``cache`` (None = no cache), ``concurrency`` (at most
    this many requests in flight; default the backend's: 1 for local), ``max_attempts`` per call,
    ``timeout_s`` per attempt, ``temperature``/``max_tokens``/``seed`` for generation, ``redact``
    (None = on for hosted providers), ``backoff_base_s``/``backoff_cap_s`` for retries.
    """

    backend: Backend
    cache: ResponseCache | JournaledCache | None = None
    concurrency: int | None = None
    max_attempts: int = 4
    timeout_s: float = 120.0
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int = 0
    redact: bool | None = None
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    hosted: bool = False
    usage: Usage = field(default_factory=Usage)
    _semaphores: dict[int, asyncio.Semaphore] = field(default_factory=dict, repr=False)
    _inflight: dict[tuple[int, str], asyncio.Future] = field(default_factory=dict, repr=False)
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.usage.provider = self.backend.provider
        self.usage.model = self.backend.model
        if self.concurrency is None:
            self.concurrency = self.backend.default_concurrency
        if self.redact is None:
            self.redact = self.hosted

    # -- a copy on a Ray worker (kiku.engine_ray) -------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its locks, event-loop state and usage: a copy sent to a Ray worker
        starts with empty usage and journals the answers it gets (:meth:`take_worker_report`)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_semaphores", "_inflight", "_rng", "_lock", "usage")}
        if isinstance(state.get("cache"), JournaledCache):
            state["cache"] = state["cache"].inner
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._semaphores, self._inflight, self._rng, self._lock = {}, {}, random.Random(0), threading.Lock()
        self.usage = Usage(provider=self.backend.provider, model=self.backend.model)
        if isinstance(self.cache, ResponseCache):
            self.cache = JournaledCache(self.cache)

    def take_worker_report(self) -> dict[str, Any]:
        """What this client did since the last report (JSON-able): its usage and the answers it
        put in its cache; both are emptied. Taken on a worker, absorbed by the driver's client
        (:meth:`absorb_worker_report`)."""
        with self._lock:
            usage, self.usage = self.usage, Usage(provider=self.backend.provider, model=self.backend.model)
        answers = self.cache.take() if isinstance(self.cache, JournaledCache) else []
        return {"usage": usage.model_dump(mode="json"), "answers": answers}

    def absorb_worker_report(self, report: dict[str, Any]) -> None:
        """Count a worker's usage here and put the answers it got into this client's cache, so the
        manifest counts every call and a later run finds every answer in this machine's cache."""
        with self._lock:
            self.usage.add(Usage.model_validate(report.get("usage") or {}))
        if self.cache is not None and report.get("answers"):
            put_journal(self.cache, report["answers"])

    @classmethod
    def from_spec(cls, spec: str | ProviderSpec, *, base_url: str | None = None,
                  backend_options: dict[str, Any] | None = None, **options: Any) -> LLMClient:
        """Build a client from ``--llm`` text, e.g. ``LLMClient.from_spec("ollama/llama3.1", concurrency=2)``."""
        parsed = spec if isinstance(spec, ProviderSpec) else parse_llm_spec(spec, base_url)
        backend = make_backend(parsed, **(backend_options or {}))
        if "cache" not in options:
            options["cache"] = ResponseCache()
        return cls(backend=backend, hosted=parsed.hosted, **options)

    @property
    def params(self) -> dict[str, Any]:
        """Generation parameters that shape an answer (part of the cache key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}

    def prepare(self, messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
        """Messages as they will be sent: redacted when redaction is on."""
        if not self.redact:
            return [dict(m) for m in messages]
        return [{"role": m["role"], "content": redact_text(m["content"])} for m in messages]

    def key_for(self, messages: Sequence[dict[str, str]], schema: type[BaseModel]) -> str:
        return cache_key(self.backend.provider, self.backend.model, self.prepare(messages), schema.model_json_schema(), self.params)

    def is_cached(self, messages: Sequence[dict[str, str]], schema: type[BaseModel]) -> bool:
        return self.cache is not None and self.cache.contains(self.key_for(messages, schema))

    def _stage(self, stage: str) -> StageUsage:
        return self.usage.by_stage.setdefault(stage, StageUsage())

    def _semaphore(self) -> asyncio.Semaphore:
        loop = id(asyncio.get_running_loop())
        if loop not in self._semaphores:
            self._semaphores = {loop: asyncio.Semaphore(self.concurrency or 1)}
        return self._semaphores[loop]

    def _account(self, stage: str, prompt: int, completion: int, *, sent: bool, cached: bool = False) -> None:
        with self._lock:
            part = self._stage(stage)
            price = price_per_million(self.backend.provider, self.backend.model)
            if sent:
                part.calls += 1
                self.usage.calls += 1
                part.prompt_tokens += prompt
                part.completion_tokens += completion
                self.usage.prompt_tokens += prompt
                self.usage.completion_tokens += completion
                if price is None:
                    part.cost_usd = self.usage.cost_usd = None
                elif part.cost_usd is not None and self.usage.cost_usd is not None:
                    cost = (prompt * price[0] + completion * price[1]) / 1e6
                    part.cost_usd += cost
                    self.usage.cost_usd += cost
            if cached:
                part.cache_hits += 1
                self.usage.cache_hits += 1

    def record_failure(self, stage: str, item_id: str, error: BaseException | str) -> None:
        """Note an item a stage could not process (reported at the end, retried on the next run)."""
        with self._lock:
            self._stage(stage).failures += 1
            self.usage.failures.append(Failure(stage=stage, item_id=str(item_id), error=str(error)[:500]))

    async def complete(self, messages: Sequence[dict[str, str]], schema: type[T], stage: str) -> tuple[T, CallUsage]:
        """Send ``messages`` and return the answer validated as ``schema`` plus its token usage.

        Answers come from the cache when the same request (provider, model, messages, schema,
        parameters) was answered before; identical requests in flight at once share one call.
        Raises :class:`LLMCallError` after ``max_attempts`` failed attempts; a provider error that
        is not transient (bad request, authentication) raises :class:`KikuError` at once.
        """
        sent = self.prepare(messages)
        schema_json = schema.model_json_schema()
        key = cache_key(self.backend.provider, self.backend.model, sent, schema_json, self.params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    value = schema.model_validate(hit.data)
                except ValidationError:
                    value = None
                if value is not None:
                    self._account(stage, 0, 0, sent=False, cached=True)
                    return value, CallUsage(hit.prompt_tokens, hit.completion_tokens, cached=True)
        flight_key = (id(asyncio.get_running_loop()), key)
        if flight_key in self._inflight:
            data, usage = await asyncio.shield(self._inflight[flight_key])
            self._account(stage, 0, 0, sent=False, cached=True)
            return schema.model_validate(data), CallUsage(usage.prompt_tokens, usage.completion_tokens, cached=True)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[flight_key] = future
        try:
            value, usage = await self._call_with_retries(sent, schema, schema_json, stage)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            self._inflight.pop(flight_key, None)
        future.set_result((value.model_dump(mode="json"), usage))
        if self.cache is not None:
            self.cache.put(key, CachedResponse(data=value.model_dump(mode="json"), prompt_tokens=usage.prompt_tokens,
                                               completion_tokens=usage.completion_tokens),
                           stage=stage, provider=self.backend.provider, model=self.backend.model)
        return value, usage

    async def _call_with_retries(self, messages: list[dict[str, str]], schema: type[T], schema_json: dict[str, Any],
                                 stage: str) -> tuple[T, CallUsage]:
        last: BaseException | None = None
        started = time.perf_counter()
        params = self.params
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                async with self._semaphore():
                    raw: RawResponse = await asyncio.wait_for(
                        self.backend.generate(messages, schema_json, params), timeout=self.timeout_s)
                self._account(stage, raw.prompt_tokens, raw.completion_tokens, sent=True)
                try:
                    value = schema.model_validate(parse_json_object(raw.text))
                except ValidationError as exc:
                    raise InvalidOutputError(f"answer does not fit {schema.__name__}: {exc.errors()[0].get('msg', exc)}") from None
                with self._lock:
                    self._stage(stage).seconds += time.perf_counter() - started
                return value, CallUsage(raw.prompt_tokens, raw.completion_tokens, attempts=attempt)
            except TimeoutError:
                self._account(stage, 0, 0, sent=True)
                last = TimeoutError(f"no answer within {self.timeout_s:g}s")
            except RetryableError as exc:
                self._account(stage, 0, 0, sent=True)
                last, retry_after = exc, exc.retry_after
            except InvalidOutputError as exc:
                last = exc
                # The same prompt at temperature 0 gives the same unusable answer: sample the retry.
                params = retry_params(self.params, attempt)
            if attempt < self.max_attempts:
                with self._lock:
                    self._stage(stage).retries += 1
                    self.usage.retries += 1
                await asyncio.sleep(backoff_delay(attempt, self.backoff_base_s, self.backoff_cap_s, self._rng, retry_after))
        with self._lock:
            self._stage(stage).seconds += time.perf_counter() - started
        raise LLMCallError(f"{self.backend.provider}/{self.backend.model} failed after {self.max_attempts} attempts: {last}")

    async def map(self, items: Sequence[R], call: Callable[[R], Awaitable[Any]]) -> list[Any]:
        """Run ``call`` on every item concurrently (bounded by the client); exceptions are returned, not raised."""
        return await asyncio.gather(*(call(item) for item in items), return_exceptions=True)

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)


@dataclass
class Estimate:
    """A dry-run estimate of one stage (or a whole run)."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    by_stage: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, stage: str, calls: int, cached: int, prompt_tokens: int, completion_tokens: int,
            price: tuple[float, float] | None) -> None:
        cost = None if price is None else (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6
        self.by_stage[stage] = {"calls": calls, "cached": cached, "prompt_tokens": prompt_tokens,
                                "completion_tokens": completion_tokens, "cost_usd": cost}
        self.calls += calls
        self.cached += cached
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost_usd = None if (cost is None or self.cost_usd is None) else self.cost_usd + cost

    def one_line(self) -> str:
        cost = "unknown cost (no price for this model)" if self.cost_usd is None else f"~${self.cost_usd:.4f}"
        return (f"dry run: ~{self.calls} LLM calls ({self.cached} already cached), ~{self.prompt_tokens:,} prompt + "
                f"~{self.completion_tokens:,} completion tokens, {cost}")
