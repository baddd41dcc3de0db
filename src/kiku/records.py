"""Typed records that cross stage boundaries.

Every stage of kiku is a plain function over these records::

    load  -> Iterator[Conversation]
    describe(conversations) -> list[Summary]
    embed -> np.ndarray (n, dim)
    cluster / name / hierarchy -> list[Cluster]
    project -> list[Point]

Example:
    >>> from kiku.records import Conversation, Message
    >>> c = Conversation(id="c1", messages=[Message(role="user", content="hi")])
    >>> c.first_user_message
    'hi'
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["user", "assistant", "system", "tool"]

ROLE_ALIASES: dict[str, Role] = {
    "user": "user",
    "human": "user",
    "customer": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}


def normalise_role(raw: str) -> Role:
    """Map a role spelling used by some export ("human", "gpt", "model") to a kiku role.

    Raises ValueError for an unknown role.

    >>> normalise_role("human")
    'user'
    """
    role = ROLE_ALIASES.get(str(raw).strip().lower())
    if role is None:
        raise ValueError(f"unknown role {raw!r} (expected one of user, assistant, system, tool)")
    return role


class Message(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str
    created_at: datetime | None = None

    @field_validator("role", mode="before")
    @classmethod
    def _alias_role(cls, value: Any) -> Any:
        return normalise_role(value) if isinstance(value, str) else value


class Conversation(BaseModel):
    """A conversation (or a single query) with its messages and free-form JSON metadata.

    ``metadata`` holds anything the source carried (user id, model, query weight...). It is
    stored and filterable, and it is never part of the text that is embedded or sent to an LLM.
    """

    id: str = Field(min_length=1)
    created_at: datetime | None = None
    messages: list[Message] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def first_user_message(self) -> str:
        """The opening user request ("" when the conversation has no user turn)."""
        for message in self.messages:
            if message.role == "user" and message.content.strip():
                return message.content
        return ""

    @property
    def user_turns(self) -> int:
        return sum(1 for m in self.messages if m.role == "user")


class Summary(BaseModel):
    """Facets of one conversation.

    The offline describe stage fills ``request``, ``turns``, ``language``,
    ``programming_languages`` and the lengths. The LLM stage (``--llm``) also fills
    ``summary``, ``task``, ``concern``, ``frustration`` and ``assistant_errors``. User-defined
    facet functions and extra fields of a custom LLM schema land in ``facets``.
    """

    conversation_id: str
    request: str
    turns: int
    messages: int
    language: str | None = None
    programming_languages: list[str] = Field(default_factory=list)
    user_chars: int = 0
    assistant_chars: int = 0
    summary: str | None = None
    task: str | None = None
    concern: int | None = None
    frustration: int | None = None
    assistant_errors: list[str] | None = None
    facets: dict[str, Any] = Field(default_factory=dict)


#: The ``Conversation.metadata`` key that carries :class:`ImportedFacets` from the loader to the describe stage.
IMPORTED_FACETS = "imported_facets"


class ImportedFacets(BaseModel):
    """Facets computed before kiku read the conversation (a Kura checkpoint's LLM summaries).

    A loader puts them in ``Conversation.metadata["imported_facets"]`` (any JSON Lines input may
    carry them too); the describe stage puts the standard fields onto the conversation's
    :class:`Summary` and ``facets`` into ``Summary.facets``, so an imported ``summary`` is what
    gets embedded and named, as an LLM summary would be. ``origin`` says where they came from.

    >>> ImportedFacets(origin="kura", summary="Asks how to resume a run", concern=1).model_dump(exclude_defaults=True)
    {'origin': 'kura', 'summary': 'Asks how to resume a run', 'concern': 1}
    """

    model_config = ConfigDict(extra="forbid")

    origin: str
    summary: str | None = None
    task: str | None = None
    concern: int | None = None
    frustration: int | None = None
    assistant_errors: list[str] | None = None
    facets: dict[str, Any] = Field(default_factory=dict)


class Cluster(BaseModel):
    """A topic at some level of the hierarchy.

    Level 0 holds the base clusters; level ``k + 1`` holds the parents of level ``k``.
    ``member_ids`` are conversation ids (for parents: all conversations below them).
    The HDBSCAN noise bucket is a cluster with ``is_noise=True``, named "Unclustered",
    which is reported but never treated as a topic.
    """

    id: str
    level: int = Field(ge=0)
    parent_id: str | None = None
    name: str
    description: str = ""
    member_ids: list[str] = Field(default_factory=list)
    keyphrases: list[str] = Field(default_factory=list)
    representative_request: str | None = None
    is_noise: bool = False
    x: float | None = None
    y: float | None = None

    @property
    def size(self) -> int:
        return len(self.member_ids)


class Point(BaseModel):
    """2-D map coordinates of one conversation."""

    conversation_id: str
    x: float
    y: float


class SkippedRecord(BaseModel):
    """An input record kiku could not use, with where it was and why."""

    source: str
    line: int | None = None
    record_id: str | None = None
    reason: str

    def one_line(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        rid = f" (id {self.record_id})" if self.record_id else ""
        return f"{where}{rid}: {self.reason}"


#: The name of the noise bucket (HDBSCAN's label -1) on every level.
NOISE_NAME = "Unclustered"
#: The id of the level-0 noise bucket.
NOISE_ID = "unclustered"


def noise_cluster(member_ids: list[str], level: int = 0, id: str = NOISE_ID, description: str | None = None,
                  parent_id: str | None = None) -> Cluster:
    """The *Unclustered* bucket: ``is_noise=True``, reported, never treated as a topic.

    >>> node = noise_cluster(["a", "b"])
    >>> node.id, node.level, node.name, node.is_noise, node.description
    ('unclustered', 0, 'Unclustered', True, '2 conversations the clusterer left out of every topic (HDBSCAN noise).')
    """
    if description is None:
        description = f"{len(member_ids)} conversations the clusterer left out of every topic (HDBSCAN noise)."
    return Cluster(id=id, level=level, parent_id=parent_id, name=NOISE_NAME, description=description,
                   member_ids=list(member_ids), is_noise=True)
