"""Describe stage: offline facets of each conversation plus user-defined facet functions.

The offline describer computes, without any model call:

- ``request``: the opening user request,
- ``turns`` (user turns) and ``messages``,
- ``language``: the human language of the user's text (py3langid, a packaged detector),
- ``programming_languages``: languages of code blocks and explicit mentions,
- ``user_chars`` / ``assistant_chars``.

User facets are functions ``Conversation -> JSON value`` (sync or async) registered by name;
their outputs land in ``Summary.facets`` and in ``facets.parquet`` as ``facet_<name>`` columns,
so they can be filtered in SQL and in the web UI.

Example:
    >>> from kiku.records import Conversation, Message
    >>> conv = Conversation(id="1", messages=[Message(role="user", content="```python\\nprint(1)\\n```")])
    >>> OfflineDescriber().describe([conv])[0].programming_languages
    ['python']
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from kiku.errors import KikuError
from kiku.records import IMPORTED_FACETS, Conversation, ImportedFacets, Summary

FacetFunction = Callable[[Conversation], Any] | Callable[[Conversation], Awaitable[Any]]

RESERVED_FACET_NAMES = frozenset(Summary.model_fields) | {"conversation_id"}
#: The fields of :class:`~kiku.records.ImportedFacets` that are also fields of :class:`~kiku.records.Summary`.
IMPORTED_STANDARD_FIELDS = tuple(k for k in ImportedFacets.model_fields if k in Summary.model_fields and k != "facets")
_FACET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class FacetRegistry:
    """Named user facet functions.

    >>> registry = FacetRegistry()
    >>> @registry.register("mentions_api")
    ... def mentions_api(conversation):
    ...     return "api" in conversation.first_user_message.lower()
    >>> sorted(registry.functions)
    ['mentions_api']
    """

    def __init__(self, functions: Mapping[str, FacetFunction] | None = None) -> None:
        self.functions: dict[str, FacetFunction] = {}
        for name, function in (functions or {}).items():
            self.add(name, function)

    def add(self, name: str, function: FacetFunction) -> None:
        if not _FACET_NAME.match(name):
            raise KikuError(
                f"facet name {name!r} is not valid; use lowercase letters, digits and _ (e.g. 'has_code')"
            )
        if name in RESERVED_FACET_NAMES:
            raise KikuError(f"facet name {name!r} is a built-in field; choose another name")
        if not callable(function):
            raise KikuError(f"facet {name!r} is not a function")
        self.functions[name] = function

    def register(self, name: str | None = None) -> Callable[[FacetFunction], FacetFunction]:
        """Decorator that registers a facet under ``name`` (default: the function's name)."""

        def decorator(function: FacetFunction) -> FacetFunction:
            self.add(name or function.__name__, function)
            return function

        return decorator

    def fingerprint(self) -> str:
        """Hash of the facet names and their source code, so a changed facet re-runs the stage."""
        digest = hashlib.sha256()
        for name in sorted(self.functions):
            function = self.functions[name]
            try:
                source = inspect.getsource(function)
            except (OSError, TypeError):
                source = getattr(function, "__qualname__", repr(function))
            digest.update(name.encode() + b"\0" + source.encode() + b"\0")
        return digest.hexdigest()[:16]

    def __bool__(self) -> bool:
        return bool(self.functions)


#: The process-wide registry used by ``kiku.facet`` and the CLI's ``--facet module:function``.
default_registry = FacetRegistry()


def facet(name: str | None = None) -> Callable[[FacetFunction], FacetFunction]:
    """Register a user facet in the default registry.

    >>> @facet("long_request")
    ... def long_request(conversation):
    ...     return len(conversation.first_user_message) > 500
    >>> "long_request" in default_registry.functions
    True
    >>> _ = default_registry.functions.pop("long_request")  # (the example leaves the process-wide registry as it was)
    """
    return default_registry.register(name)


# --- offline facets -------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#.\-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)

_FENCE_ALIASES = {
    "py": "python", "python3": "python", "ipython": "python", "jupyter": "python",
    "js": "javascript", "jsx": "javascript", "node": "javascript", "mjs": "javascript",
    "ts": "typescript", "tsx": "typescript",
    "sh": "shell", "bash": "shell", "zsh": "shell", "console": "shell", "shell": "shell",
    "cpp": "c++", "cc": "c++", "c++": "c++", "hpp": "c++", "cxx": "c++",
    "cs": "c#", "csharp": "c#", "c#": "c#",
    "golang": "go", "go": "go", "rs": "rust", "rust": "rust", "rb": "ruby", "ruby": "ruby",
    "kt": "kotlin", "kotlin": "kotlin", "swift": "swift", "scala": "scala", "php": "php",
    "java": "java", "c": "c", "sql": "sql", "postgresql": "sql", "mysql": "sql",
    "html": "html", "css": "css", "scss": "css", "r": "r", "matlab": "matlab",
    "yaml": "yaml", "yml": "yaml", "json": "json", "dockerfile": "dockerfile",
    "lua": "lua", "perl": "perl", "haskell": "haskell", "julia": "julia", "dart": "dart",
    "solidity": "solidity", "vba": "vba", "powershell": "powershell", "ps1": "powershell",
    "javascript": "javascript", "typescript": "typescript",
}

# Content heuristics for untagged code blocks: (language, pattern), first match wins.
_CODE_HEURISTICS: list[tuple[str, re.Pattern[str]]] = [
    ("python", re.compile(r"^\s*(def \w+\(.*\):|import \w+|from [\w.]+ import |print\()", re.M)),
    ("c++", re.compile(r"#include\s*<\w+(\.h)?>.*\b(std::|cout|class\b)", re.S)),
    ("c", re.compile(r"#include\s*<\w+\.h>")),
    ("java", re.compile(r"\bpublic (static )?(class|void)\b")),
    ("javascript", re.compile(r"\b(const|let) \w+ = |function \w*\(|=> \{|console\.log\(")),
    ("sql", re.compile(r"\bSELECT\b[\s\S]+\bFROM\b", re.I)),
    ("shell", re.compile(r"^\s*(\$ |sudo |pip install |npm install |apt-get )", re.M)),
    ("html", re.compile(r"<(html|div|body|span)\b", re.I)),
]

# Explicit mentions in prose, one alternation scanned once. Ambiguous names (Go, R, C) are only
# taken from code fences.
_MENTION_NAMES = {
    "python": "python", "javascript": "javascript", "nodejs": "javascript", "node.js": "javascript", "node js": "javascript",
    "typescript": "typescript", "java": "java", "c++": "c++", "c#": "c#", "golang": "go", "rust": "rust",
    "sql": "sql", "kotlin": "kotlin", "swift": "swift", "ruby": "ruby", "php": "php", "scala": "scala",
    "matlab": "matlab",
}
_MENTIONS = re.compile(
    r"(?<![\w.])(python|javascript|node\.?js|typescript|java(?!script)|c\+\+|c#|golang|rust|sql|kotlin|swift|ruby|php|scala|matlab)(?![\w+#])",
    re.I,
)
#: Characters of each message scanned for code and mentions (long pastes add only time).
SCAN_CHARS = 20_000
#: Characters of user text the language detector reads (enough to tell; more only costs time).
LANGUAGE_SAMPLE_CHARS = 600


def programming_languages(texts: Iterable[str], mention_texts: Iterable[str] | None = None) -> list[str]:
    """Programming languages in code blocks (tagged or recognised) and explicit mentions.

    ``texts`` are scanned for code blocks; prose mentions count in ``mention_texts``
    (default: ``texts``), e.g. only the user's turns.

    >>> programming_languages(["Why does this fail?\\n```\\nimport numpy as np\\n```", "In Rust?"])
    ['python', 'rust']
    """
    texts = [t[:SCAN_CHARS] for t in texts]
    found: set[str] = set()
    for text in texts:
        if "```" not in text:
            continue
        for tag, body in _FENCE.findall(text):
            language = _FENCE_ALIASES.get(tag.lower()) if tag else None
            if language is None:
                language = next((lang for lang, pattern in _CODE_HEURISTICS if pattern.search(body)), None)
            if language:
                found.add(language)
    for text in texts if mention_texts is None else [t[:SCAN_CHARS] for t in mention_texts]:
        for match in _MENTIONS.finditer(text):
            found.add(_MENTION_NAMES[match.group(1).lower()])
    return sorted(found)


_WORD = re.compile(r"[^\W\d_]{2,}", re.U)


#: Below this probability (py3langid's normalised one) the language is reported as ``unknown``:
#: short keyword queries ("W&B artifacts", "hyperparameter tuning") are otherwise labelled
#: Latin, Welsh, Pidgin... On the 560 English W&B queries, 0.5 leaves 3 wrong labels instead of
#: 36 (benchmarks/RESULTS.md, "Explorer as an analysis tool (issue 16)").
LANGUAGE_MIN_CONFIDENCE = 0.5
UNKNOWN_LANGUAGE = "unknown"


@functools.lru_cache(maxsize=1)
def _language_identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def human_language(text: str, min_words: int = 3, min_confidence: float = LANGUAGE_MIN_CONFIDENCE) -> str | None:
    """ISO 639-1 code of the text's language; ``"unknown"`` when the detector is not confident
    (probability below ``min_confidence``); None when there is too little text to tell.

    >>> human_language("Wie kann ich einen Lauf mit der Registry verknüpfen?"), human_language("wandb confusion matrix chart")
    ('de', 'unknown')
    """
    sample = _FENCE.sub(" ", text[:SCAN_CHARS])[:LANGUAGE_SAMPLE_CHARS]
    if len(_WORD.findall(sample)) < min_words:
        return None
    language, probability = _language_identifier().classify(sample)
    return str(language) if probability >= min_confidence else UNKNOWN_LANGUAGE


def describe_conversation(conversation: Conversation) -> Summary:
    """Offline facets of one conversation (no model calls), plus the facets imported with it (see :func:`with_imported`)."""
    user_texts = [m.content for m in conversation.messages if m.role == "user"]
    assistant_texts = [m.content for m in conversation.messages if m.role == "assistant"]
    return with_imported(conversation, Summary(
        conversation_id=conversation.id,
        request=conversation.first_user_message.strip(),
        turns=len(user_texts),
        messages=len(conversation.messages),
        language=human_language("\n".join(user_texts) or "\n".join(assistant_texts)),
        programming_languages=programming_languages(user_texts + assistant_texts, mention_texts=user_texts),
        user_chars=sum(len(t) for t in user_texts),
        assistant_chars=sum(len(t) for t in assistant_texts),
    ))


def with_imported(conversation: Conversation, summary: Summary) -> Summary:
    """``summary`` with the facets the conversation was loaded with (``metadata["imported_facets"]``).

    The imported ``summary``, ``task``, ``concern``, ``frustration`` and ``assistant_errors``
    replace the offline values (which are empty); imported ``facets`` are added to
    ``summary.facets``. The request, turns, languages and lengths stay as computed from the text.

    >>> from kiku.records import Conversation, Message
    >>> c = Conversation(id="k1", messages=[Message(role="user", content="User Query: sweeps")],
    ...                  metadata={"imported_facets": {"origin": "kura", "summary": "Asks about sweeps", "facets": {"kura_cluster": "Sweeps"}}})
    >>> s = describe_conversation(c)
    >>> (s.request, s.summary, s.facets)
    ('User Query: sweeps', 'Asks about sweeps', {'kura_cluster': 'Sweeps'})
    """
    raw = conversation.metadata.get(IMPORTED_FACETS)
    if not raw:
        return summary
    imported = ImportedFacets.model_validate(raw)  # checked when loaded
    update: dict[str, Any] = {k: v for k in IMPORTED_STANDARD_FIELDS if (v := getattr(imported, k)) is not None}
    update["facets"] = {**summary.facets, **imported.facets}
    return summary.model_copy(update=update)


def _json_safe(value: Any) -> Any:
    """Facet outputs must be JSON values; anything else is stored as its string form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


async def _run_facets_async(
    registry: FacetRegistry, conversations: Sequence[Conversation], concurrency: int
) -> list[dict[str, Any]]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(function: FacetFunction, conversation: Conversation) -> Any:
        async with semaphore:
            result = function(conversation)
            if inspect.isawaitable(result):
                result = await result
            return result

    results: list[dict[str, Any]] = [{} for _ in conversations]
    for name, function in registry.functions.items():
        outputs = await asyncio.gather(*(one(function, c) for c in conversations), return_exceptions=True)
        for row, output in zip(results, outputs):
            if isinstance(output, BaseException):
                raise KikuError(f"facet {name!r} failed: {type(output).__name__}: {output}") from output
            row[name] = _json_safe(output)
    return results


def run_facets(
    registry: FacetRegistry, conversations: Sequence[Conversation], concurrency: int = 16
) -> list[dict[str, Any]]:
    """Apply every registered facet to every conversation; async facets run concurrently.

    Returns one ``{facet_name: value}`` dict per conversation, in order.
    """
    if not registry:
        return [{} for _ in conversations]
    from kiku.aio import run_sync

    return run_sync(_run_facets_async(registry, conversations, concurrency))


class OfflineDescriber:
    """The default describer: offline facets plus the user facets of ``registry``.

    >>> OfflineDescriber().name
    'offline'
    """

    name = "offline"

    def __init__(self, registry: FacetRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry

    def fingerprint(self) -> str:
        return f"offline-v3:{self.registry.fingerprint()}"  # v2: keeps imported facets; v3: "unknown" language below 0.5

    def describe(self, conversations: Sequence[Conversation]) -> list[Summary]:
        summaries = [describe_conversation(c) for c in conversations]
        for summary, values in zip(summaries, run_facets(self.registry, conversations)):
            summary.facets.update(values)
        return summaries


def describe(conversations: Sequence[Conversation], describer: Any = None) -> list[Summary]:
    """Facets of each conversation, with the given describer (default: offline).

    >>> from kiku.records import Conversation, Message
    >>> describe([Conversation(id="a", messages=[Message(role="user", content="hello there friend")])])[0].turns
    1
    """
    return (describer or OfflineDescriber()).describe(conversations)


def load_facet_functions(specs: Sequence[str]) -> FacetRegistry:
    """Build a registry from ``module:function`` or ``path/to/file.py:function`` specs (CLI ``--facet``)."""
    import importlib
    import importlib.util
    from pathlib import Path

    registry = FacetRegistry(default_registry.functions)
    for spec in specs:
        target, _, attribute = spec.rpartition(":")
        if not target or not attribute:
            raise KikuError(f"--facet {spec!r}: expected module:function or file.py:function")
        try:
            if target.endswith(".py"):
                path = Path(target)
                module_spec = importlib.util.spec_from_file_location(path.stem, path)
                if module_spec is None or module_spec.loader is None or not path.exists():
                    raise KikuError(f"--facet {spec!r}: file {target} not found")
                module = importlib.util.module_from_spec(module_spec)
                module_spec.loader.exec_module(module)
            else:
                module = importlib.import_module(target)
        except ImportError as exc:
            raise KikuError(f"--facet {spec!r}: cannot import {target}: {exc}") from exc
        function = getattr(module, attribute, None)
        if function is None:
            raise KikuError(f"--facet {spec!r}: {target} has no attribute {attribute!r}")
        if function not in registry.functions.values():
            registry.add(attribute, function)
    return registry


def summary_rows(summaries: Sequence[Summary]) -> list[dict[str, Any]]:
    """One row per summary; every row has every facet of the batch (``None`` where a summary lacks it).

    ``pa.Table.from_pylist`` takes its columns from the first row, so a facet missing there (an
    imported Kura cluster, a failed LLM call) would otherwise be dropped for the whole batch.

    >>> one = dict(request="hi", turns=1, messages=1)
    >>> [sorted(k for k in row if k.startswith("facet_")) for row in summary_rows(
    ...     [Summary(conversation_id="a", **one), Summary(conversation_id="b", facets={"x": [1]}, **one)])]
    [['facet_x'], ['facet_x']]
    """
    import json

    names = list(dict.fromkeys(name for s in summaries for name in s.facets))
    rows = []
    for s in summaries:
        row = s.model_dump(exclude={"facets"})
        for name in names:
            value = s.facets.get(name)
            row[f"facet_{name}"] = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value
        rows.append(row)
    return rows


#: Conversations handed to the describer at once inside a chunk (the progress bar moves per batch).
DESCRIBE_BATCH = 512


class DescribeChunk:
    """The describe stage's chunk function (``kiku.engine``): rows of ``conversations.parquet``
    -> rows of ``facets.parquet`` (types as inferred for the chunk; the stage unifies them).

    Picklable; the describer loads whatever it needs on first use.

    >>> import pyarrow as pa
    >>> from kiku.store import conversation_row
    >>> from kiku.records import Message
    >>> rows = [conversation_row(Conversation(id="c1", messages=[Message(role="user", content="hi there")]), "x.jsonl")]
    >>> DescribeChunk(OfflineDescriber())(pa.Table.from_pylist(rows)).column("request").to_pylist()
    ['hi there']
    """

    #: True on a copy made by unpickling (a Ray worker's): it then reports back (``kiku.engine``).
    shipped = False

    def __init__(self, describer: Any) -> None:
        self.describer = describer

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.shipped = True

    def fingerprint(self) -> str:
        from kiku.pipeline import component_fingerprint

        return component_fingerprint(self.describer)

    def absorb_worker_report(self, report: dict[str, Any]) -> None:
        """On the driver: a worker copy's report (usage, failures, answers) into the driver's describer."""
        absorb = getattr(self.describer, "absorb_worker_report", None)
        if callable(absorb):
            absorb(report)

    def __call__(self, table: Any, progress: Callable[[int], None] | None = None) -> Any:
        import pyarrow as pa

        from kiku.engine import with_notes
        from kiku.store import conversations_from_batch

        failed_before = len(getattr(self.describer, "failed_ids", None) or ())
        tables = []
        for batch in table.combine_chunks().to_batches(max_chunksize=DESCRIBE_BATCH):
            conversations = conversations_from_batch(batch)
            summaries = self.describer.describe(conversations)
            if len(summaries) != len(conversations):
                raise KikuError(f"describer {self.describer.name!r} returned {len(summaries)} summaries "
                                f"for {len(conversations)} conversations")
            tables.append(pa.Table.from_pylist(summary_rows(summaries)))
            if progress is not None:
                progress(len(conversations))
        if not tables:
            return pa.table({"conversation_id": pa.array([], pa.string())})
        # items whose LLM call failed kept their offline facets: the next run redoes this chunk
        incomplete = len(getattr(self.describer, "failed_ids", None) or ()) > failed_before
        take = getattr(self.describer, "take_worker_report", None)
        report = take() if self.shipped and callable(take) else None
        return with_notes(pa.concat_tables(tables, promote_options="permissive"), report, incomplete)
