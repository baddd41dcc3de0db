"""Offline facets and user facet functions (real py3langid detector)."""

from __future__ import annotations

import asyncio

import pytest

from kiku.describe import (
    FacetRegistry,
    OfflineDescriber,
    describe_conversation,
    human_language,
    load_facet_functions,
    programming_languages,
)
from kiku.errors import KikuError
from kiku.records import Conversation, Message


def conversation(*turns: tuple[str, str], cid: str = "c1") -> Conversation:
    return Conversation(id=cid, messages=[Message(role=r, content=t) for r, t in turns])


def test_offline_facets_of_a_multi_turn_conversation() -> None:
    conv = conversation(
        ("system", "You are helpful."),
        ("user", "How do I read a CSV file with pandas?"),
        ("assistant", "Use `pd.read_csv`:\n```python\nimport pandas as pd\ndf = pd.read_csv('x.csv')\n```"),
        ("user", "And in Rust?"),
    )
    summary = describe_conversation(conv)
    assert summary.request == "How do I read a CSV file with pandas?"
    assert summary.turns == 2
    assert summary.messages == 4
    assert summary.language == "en"
    assert summary.programming_languages == ["python", "rust"]
    assert summary.user_chars == len("How do I read a CSV file with pandas?") + len("And in Rust?")
    assert summary.assistant_chars > 0
    assert summary.summary is None  # only the LLM stage writes summaries


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Comment puis-je exporter mes graphiques en PDF depuis le tableau de bord ?", "fr"),
        ("¿Cómo puedo cambiar la contraseña de mi cuenta bancaria?", "es"),
        ("Wie kann ich einen Lauf mit der Modellregistrierung verknüpfen?", "de"),
        ("How can I link a run to the model registry?", "en"),
    ],
)
def test_human_language_detection(text: str, expected: str) -> None:
    assert human_language(text) == expected


def test_too_little_text_has_no_language() -> None:
    assert human_language("ok") is None
    assert human_language("```\nx = 1\n```") is None


def test_programming_languages_from_untagged_code_and_tags() -> None:
    assert programming_languages(["```\nSELECT name FROM users WHERE id = 1\n```"]) == ["sql"]
    assert programming_languages(["```ts\nconst x: number = 1\n```"]) == ["typescript"]
    assert programming_languages(["I like coffee and go for walks"]) == []  # "go" alone is ambiguous


def test_sync_and_async_user_facets_are_stored_by_name() -> None:
    registry = FacetRegistry()

    @registry.register("mentions_error")
    def mentions_error(c: Conversation) -> bool:
        return "error" in c.first_user_message.lower()

    @registry.register()
    async def word_count(c: Conversation) -> int:
        await asyncio.sleep(0)
        return len(c.first_user_message.split())

    convs = [conversation(("user", "I get an error when logging")), conversation(("user", "plot a chart"), cid="c2")]
    summaries = OfflineDescriber(registry).describe(convs)
    assert [s.facets for s in summaries] == [
        {"mentions_error": True, "word_count": 6},
        {"mentions_error": False, "word_count": 3},
    ]


def test_facet_names_are_validated() -> None:
    registry = FacetRegistry()
    with pytest.raises(KikuError, match="built-in field"):
        registry.add("language", lambda c: 1)
    with pytest.raises(KikuError, match="not valid"):
        registry.add("Bad Name", lambda c: 1)


def test_facet_fingerprint_changes_with_the_function() -> None:
    one = FacetRegistry({"n": lambda c: 1})
    two = FacetRegistry({"n": lambda c: 2})
    assert one.fingerprint() != two.fingerprint()


def test_failing_facet_gives_a_clear_error() -> None:
    registry = FacetRegistry({"boom": lambda c: 1 / 0})
    with pytest.raises(KikuError, match="facet 'boom' failed: ZeroDivisionError"):
        OfflineDescriber(registry).describe([conversation(("user", "hello there"))])


def test_facets_load_from_a_file(tmp_path) -> None:
    module = tmp_path / "my_facets.py"
    module.write_text("def shouting(conversation):\n    return conversation.first_user_message.isupper()\n")
    registry = load_facet_functions([f"{module}:shouting"])
    assert "shouting" in registry.functions
    with pytest.raises(KikuError, match="has no attribute"):
        load_facet_functions([f"{module}:missing"])
