"""Clio facets by structured LLM output: one call per conversation.

:class:`LLMDescriber` first computes kiku's offline facets (request, turns, languages,
lengths), then asks the model for Clio's facets: summary, request, task, languages, concern
(1-5), user frustration (1-5) and assistant errors. The prompt tells the model to leave out
names and personal data; text sent to hosted providers is also redacted by the client.

Custom prompt and schema (a domain summary for W&B questions)::

    class WandbFacets(BaseModel):
        summary: str = Field(description="User needs help with [W&B feature] to [goal], specifically [detail]")
        feature: str = Field(description="the W&B feature, e.g. Artifacts, Sweeps, Tables")

    describer = LLMDescriber(client, prompt=WANDB_PROMPT, schema=WandbFacets)

``summary`` becomes ``Summary.summary``; ``feature`` becomes ``Summary.facets["feature"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from kiku.aio import run_sync
from kiku.llm.client import LLMCallError, LLMClient
from kiku.records import Conversation, Summary
from kiku.stages import StageReport


def failure_report(failed_ids: Sequence[str]) -> StageReport:
    """The stage report of an LLM component (``kiku.stages``): failed items keep their fallback
    output, and the stage stays incomplete so the next run retries them (finished answers come
    from the response cache)."""
    if not failed_ids:
        return StageReport()
    return StageReport(
        details={"failed_items": len(failed_ids)},
        warnings=[f"{len(failed_ids)} item(s) failed their LLM call and kept fallback output; run again to retry them"],
        incomplete=True,
    )


def _truncate(limit: int) -> Callable[[Any], Any]:
    def cut(value: Any) -> Any:
        return value[:limit] if isinstance(value, str) else value

    return cut


def _clamp(low: int, high: int) -> Callable[[Any], Any]:
    def clamp(value: Any) -> Any:
        try:
            return min(high, max(low, int(value)))
        except (TypeError, ValueError):
            return value

    return clamp


def ShortText(limit: int, description: str = "") -> Any:  # noqa: N802 - a type factory
    """A string field with ``maxLength`` in its JSON schema; longer answers are cut, not rejected."""
    return Annotated[str, BeforeValidator(_truncate(limit)), Field(max_length=limit, description=description)]


def Score(description: str = "") -> Any:  # noqa: N802 - a type factory
    """An integer 1-5 (out-of-range answers are clamped)."""
    return Annotated[int, BeforeValidator(_clamp(1, 5)), Field(ge=1, le=5, description=description)]


class ClioFacets(BaseModel):
    """The default LLM facets (Clio's), with length limits a grammar can enforce."""

    summary: ShortText(300, "one or two sentences, at most 30 words, no names or personal data")  # type: ignore[valid-type]
    request: ShortText(300, "the user's overall request, starting 'The user's overall request for the assistant is to'")  # type: ignore[valid-type]
    task: ShortText(200, "the task the assistant is asked to perform, starting 'The task is to'")  # type: ignore[valid-type]
    languages: Annotated[list[ShortText(40)], Field(max_length=6, description="human and programming languages, lowercase full names")]  # type: ignore[valid-type]
    concern: Score("1 = benign ... 5 = needs immediate safety review")  # type: ignore[valid-type]
    frustration: Score("1 = not frustrated ... 5 = extremely frustrated with the assistant")  # type: ignore[valid-type]
    assistant_errors: Annotated[list[ShortText(150)], Field(max_length=5, description="mistakes the assistant made; empty when none")]  # type: ignore[valid-type]


DEFAULT_PROMPT = """Read this conversation between a user and an AI assistant:

{conversation}

Fill in the fields below about what the user wanted. Be specific about technologies, libraries, products and error types. Describe sensitive or harmful requests plainly, assuming neither good nor bad faith. Leave out names of people and companies, places, contact details, keys and anything else that could identify someone.

- summary: one sentence (at most 30 words) saying what the user wanted help with; do not mention "the assistant" or "the conversation".
- request: "The user's overall request for the assistant is to ..."
- task: one short phrase starting "The task is to ..." (describe the task, do not answer it).
- languages: the human and programming languages used, lowercase (e.g. "english", "python").
- concern: 1 for ordinary, harmless requests (almost all technical questions); up to 5 for requests that need immediate review.
- frustration: 1 when the user shows no frustration with the assistant, up to 5 for extreme frustration.
- assistant_errors: mistakes the assistant made; [] when there are none or there is no assistant answer."""

class QueryFacets(BaseModel):
    """The default facets of a conversation without an assistant turn (a single query).

    Frustration with the assistant and assistant errors cannot exist there (kiku sets them to 1
    and []), and Clio's ``request`` restates the query, so the model is asked for less: about
    half the answer tokens of :class:`ClioFacets`.
    """

    summary: ShortText(200, "one sentence, at most 20 words, no names or personal data")  # type: ignore[valid-type]
    task: ShortText(150, "the task, starting 'The task is to'")  # type: ignore[valid-type]
    languages: Annotated[list[ShortText(40)], Field(max_length=4, description="human and programming languages, lowercase")]  # type: ignore[valid-type]
    concern: Score("1 = benign ... 5 = needs immediate safety review")  # type: ignore[valid-type]


QUERY_PROMPT = """A user asked an AI assistant:

{conversation}

Fill in the fields about what the user wanted. Be specific about technologies, libraries, products and error types; leave out names of people and companies and anything that could identify someone.

- summary: one sentence (at most 20 words) saying what the user wanted help with.
- task: "The task is to ..." (describe the task, do not answer it).
- languages: the human and programming languages used, lowercase (e.g. "english", "python").
- concern: 1 for ordinary, harmless requests; up to 5 for requests that need immediate review."""

STANDARD_FIELDS = ("summary", "task", "concern", "frustration", "assistant_errors")


def render_conversation(conversation: Conversation, max_chars: int = 6000, max_message_chars: int = 2500) -> str:
    """The conversation as tagged turns, without its id or metadata, cut to ``max_chars``.

    Long messages keep their start and end; when the whole is too long the middle turns go.

    >>> from kiku.records import Conversation, Message
    >>> render_conversation(Conversation(id="x", messages=[Message(role="user", content="hi")]))
    '<messages>\\n<message role="user">hi</message>\\n</messages>'
    """
    parts = []
    for message in conversation.messages:
        text = message.content.strip()
        if len(text) > max_message_chars:
            half = max_message_chars // 2
            text = text[:half] + " [...] " + text[-half:]
        parts.append(f'<message role="{message.role}">{text}</message>')
    while len(parts) > 2 and sum(len(p) for p in parts) > max_chars:
        parts.pop(len(parts) // 2)
        if "[... turns left out ...]" not in parts:
            parts.insert(len(parts) // 2, "[... turns left out ...]")
    body = "\n".join(parts)
    if len(body) > max_chars:
        body = body[: max_chars // 2] + " [...] " + body[-max_chars // 2 :]
    return f"<messages>\n{body}\n</messages>"


def _params_hash(*parts: Any) -> str:
    import hashlib
    import json

    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def merge_facets(base: Summary, answer: BaseModel, has_assistant_turn: bool = True) -> Summary:
    """Put an LLM answer onto offline facets: standard fields onto the Summary, the rest into ``facets``.

    Without an assistant turn (a single query) there can be no assistant errors and no frustration
    with the assistant: those are set to ``[]`` and 1 whatever the model said (small models invent them).

    The LLM's ``request`` and ``languages`` go to ``facets["llm_request"]``/``facets["llm_languages"]``
    so the verbatim opening request and the detected language stay as they were.
    """
    data = answer.model_dump(mode="json")
    update: dict[str, Any] = {}
    facets = dict(base.facets)
    for key, value in data.items():
        if key in STANDARD_FIELDS:
            update[key] = value
        elif key == "request":
            facets["llm_request"] = value
        elif key == "languages":
            facets["llm_languages"] = value
        else:
            facets[key] = value
    update["facets"] = facets
    if isinstance(answer, QueryFacets):  # asked for less: a single query has no assistant to err or frustrate
        update["assistant_errors"], update["frustration"] = [], 1
    if not has_assistant_turn:
        if "assistant_errors" in update:
            update["assistant_errors"] = []
        if "frustration" in update:
            update["frustration"] = 1
    return base.model_copy(update=update)


class LLMDescriber:
    """Describer (see :class:`kiku.protocols.Describer`) that adds Clio facets with an LLM.

    ``prompt`` is a template with one ``{conversation}`` placeholder (default :data:`DEFAULT_PROMPT`);
    ``schema`` a pydantic model (default :class:`ClioFacets`). Fields named summary, task, concern,
    frustration, assistant_errors fill the Summary; others land in ``Summary.facets``. A
    conversation whose call fails keeps its offline facets and is listed in ``client.usage.failures``
    (and in :attr:`failed_ids`), so the run goes on and a rerun retries only what failed.

    Example:
        >>> describer = LLMDescriber(LLMClient.from_spec("local"))        # doctest: +SKIP
        >>> describer.describe(conversations)[0].summary                   # doctest: +SKIP
        'The user wants to log a pandas DataFrame as a table ...'
    """

    stage = "describe"

    def __init__(self, client: LLMClient, prompt: str | None = None, schema: type[BaseModel] | None = None,
                 offline: Any = None, max_chars: int = 6000, lean_queries: bool = True) -> None:
        self.client = client
        self.lean_queries = lean_queries
        self.prompt = prompt or DEFAULT_PROMPT
        if "{conversation}" not in self.prompt:
            raise ValueError("the describe prompt needs a {conversation} placeholder")
        self.schema = schema or ClioFacets
        if offline is None:
            from kiku.describe import OfflineDescriber

            offline = OfflineDescriber()
        self.offline = offline
        self.max_chars = max_chars
        self.failed_ids: list[str] = []
        self.name = f"llm-describe:{client.backend.provider}/{client.backend.model}:{self.schema.__name__}"

    def fingerprint(self) -> str:
        """Identifies everything that shapes the output (not concurrency, retries or the cache location)."""
        offline = getattr(self.offline, "fingerprint", None)
        offline_fp = offline() if callable(offline) else getattr(self.offline, "name", repr(self.offline))
        lean = ((QUERY_PROMPT, QueryFacets.model_json_schema())
                if self.lean_queries and self.prompt == DEFAULT_PROMPT and self.schema is ClioFacets else ())
        return "llm-describe-v2:" + _params_hash(
            self.client.backend.provider, self.client.backend.model, self.client.params, self.client.redact,
            self.prompt, self.schema.model_json_schema(), self.max_chars, offline_fp, *lean,
        )

    def _offline(self, conversations: Sequence[Conversation]) -> list[Summary]:
        describe = getattr(self.offline, "describe", None)
        return list(describe(conversations) if callable(describe) else self.offline(conversations))

    def stage_report(self) -> StageReport:
        """The describe calls that failed since the last report (the ``kiku.stages`` hook, called
        once per stage: the describe stage calls :meth:`describe` once per batch, and the failures
        of every batch count); the list is emptied for the next stage."""
        failed, self.failed_ids = self.failed_ids, []
        return failure_report(failed)

    # -- a copy on a Ray worker (kiku.engine_ray) ----------------------------------------------
    def take_worker_report(self) -> dict[str, Any]:
        """What this copy did since the last report (JSON-able; see ``kiku.engine``): the items that
        failed and its client's usage and new answers; emptied."""
        failed, self.failed_ids = self.failed_ids, []
        return {"failed_ids": failed, **self.client.take_worker_report()}

    def absorb_worker_report(self, report: dict[str, Any]) -> None:
        """Take a worker's report in here, on the driver: its failures join :attr:`failed_ids` (so the
        stage reports them and the next run retries them), its usage and answers join the client's."""
        self.failed_ids.extend(str(i) for i in report.get("failed_ids") or ())
        self.client.absorb_worker_report(report)

    def _lean(self, conversation: Conversation) -> bool:
        """True when the default prompt and schema are in use and the conversation has no assistant turn."""
        return (self.lean_queries and self.prompt == DEFAULT_PROMPT and self.schema is ClioFacets
                and not any(m.role == "assistant" and m.content.strip() for m in conversation.messages))

    def schema_for(self, conversation: Conversation) -> type[BaseModel]:
        """The response model for one conversation: :class:`QueryFacets` for a single query with the defaults."""
        return QueryFacets if self._lean(conversation) else self.schema

    def messages_for(self, conversation: Conversation) -> list[dict[str, str]]:
        """The exact messages sent for one conversation (no id, no metadata)."""
        prompt = QUERY_PROMPT if self._lean(conversation) else self.prompt
        text = prompt.replace("{conversation}", render_conversation(conversation, self.max_chars))
        return [{"role": "user", "content": text}]

    def describe(self, conversations: Sequence[Conversation]) -> list[Summary]:
        """Offline facets plus LLM facets for every conversation, same order (``list[Summary]``)."""
        return run_sync(self.adescribe(conversations))

    async def adescribe(self, conversations: Sequence[Conversation]) -> list[Summary]:
        base = self._offline(conversations)

        async def one(conversation: Conversation) -> BaseModel:
            answer, _ = await self.client.complete(self.messages_for(conversation), self.schema_for(conversation), self.stage)
            return answer

        answers = await self.client.map(list(conversations), one)
        out: list[Summary] = []
        failed: list[str] = []
        for conversation, summary, answer in zip(conversations, base, answers):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                self.client.record_failure(self.stage, conversation.id, answer)
                failed.append(conversation.id)
                out.append(summary)
            else:
                has_assistant = any(m.role == "assistant" and m.content.strip() for m in conversation.messages)
                out.append(merge_facets(summary, answer, has_assistant))
        self.failed_ids.extend(failed)
        if conversations and len(failed) == len(conversations):
            first = next(a for a in answers if isinstance(a, BaseException))
            raise LLMCallError(f"every LLM describe call failed ({len(conversations)}); first error: {first}")
        return out

    def estimate(self, conversations: Sequence[Conversation], count_tokens: Callable[[str], int] | None = None,
                 completion_tokens_per_call: int = 120, completion_tokens_per_query: int = 55) -> tuple[int, int, int, int]:
        """(calls, already cached, prompt tokens, completion tokens) without calling the model.

        Prompt tokens are counted with ``count_tokens`` (default: the backend's counter) on the
        exact prompts, plus a small per-message chat-template overhead; answers are estimated per
        call (``completion_tokens_per_query`` for single queries with the default schema).
        """
        count = count_tokens or self.client.count_tokens
        calls = cached = prompt = completion = 0
        seen: set[str] = set()
        for conversation in conversations:
            messages = self.messages_for(conversation)
            schema = self.schema_for(conversation)
            key = self.client.key_for(messages, schema)
            if key in seen:
                continue
            seen.add(key)
            if self.client.is_cached(messages, schema):
                cached += 1
                continue
            calls += 1
            prompt += sum(count(m["content"]) + 8 for m in messages)
            completion += completion_tokens_per_query if self._lean(conversation) else completion_tokens_per_call
        return calls, cached, prompt, completion
