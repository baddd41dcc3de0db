"""Redaction of personal data and the minimum-cluster-size fold (pure logic, real-looking samples)."""

from __future__ import annotations

import pytest

from kiku.privacy import OTHER_NAME, apply_min_cluster_size, luhn_valid, redact, users_by_conversation
from kiku.records import Cluster, Conversation, Message


@pytest.mark.parametrize(
    ("text", "placeholder", "secret"),
    [
        ("reach me at maria.gonzalez+wandb@protonmail.com please", "[EMAIL]", "maria.gonzalez+wandb@protonmail.com"),
        ("my cell is (415) 555-0132", "[PHONE]", "555-0132"),
        ("call +44 20 7946 0958 tomorrow", "[PHONE]", "7946 0958"),
        ("card 4111 1111 1111 1111 exp 09/27", "[CARD]", "4111 1111 1111 1111"),
        ("amex 3782-822463-10005", "[CARD]", "822463"),
        ("server at 192.168.10.42 refuses", "[IP]", "192.168.10.42"),
        ("ipv6 2001:db8:85a3::8a2e:370:7334 is down", "[IP]", "2001:db8:85a3::8a2e:370:7334"),
        ("OPENAI_API_KEY=sk-proj-Xa8fK2mQp9Lr4Tz7Vb1Nc3Hd", "[API_KEY]", "Xa8fK2mQp9Lr4Tz7Vb1Nc3Hd"),
        ("anthropic sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx-12345", "[API_KEY]", "AbCdEfGhIjKlMnOp"),
        ("aws AKIAIOSFODNN7EXAMPLE", "[API_KEY]", "AKIAIOSFODNN7EXAMPLE"),
        ("token ghp_16C7e42F292c6912E7710c838347Ae178B4a", "[API_KEY]", "16C7e42F292c6912E7710c838347Ae178B4a"),
        ("wandb login 8f3a1c9e2b7d4f6a0c5e9b1d3f7a2c4e6b8d0f1a", "[API_KEY]", "8f3a1c9e2b7d4f6a0c5e9b1d3f7a2c4e6b8d0f1a"),
        ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[API_KEY]", "bPxRfiCYEXAMPLEKEY"),
    ],
)
def test_redact_removes_personal_data(text: str, placeholder: str, secret: str) -> None:
    out = redact(text)
    assert placeholder in out
    assert secret not in out


@pytest.mark.parametrize(
    "text",
    [
        "train for 100000 steps with lr 0.0003 on 2024-01-15",
        "upgrade wandb from 0.16.3 to 0.17.0",
        "the run id is 3k9x2m1p and the project is my-project",
        "card-like 1234 5678 9012 3456 fails Luhn",
        "version 10.0.0.1.2 and time 12:30:45",
        "path /home/user/ProjectsFolder/MyLongProjectName/train.py",
        "wandb.log({'loss': loss, 'epoch': epoch})",
    ],
)
def test_redact_keeps_ordinary_text(text: str) -> None:
    assert redact(text) == text


def test_luhn() -> None:
    assert luhn_valid("4012888888881881")
    assert not luhn_valid("4012888888881882")


def _tree() -> list[Cluster]:
    return [
        Cluster(id="a", level=0, parent_id="P", name="A", member_ids=["1", "2", "3"]),
        Cluster(id="b", level=0, parent_id="P", name="B", member_ids=["4"]),
        Cluster(id="c", level=0, parent_id="Q", name="C", member_ids=["5"]),
        Cluster(id="d", level=0, parent_id="Q", name="D", member_ids=["6"]),
        Cluster(id="P", level=1, name="P", member_ids=["1", "2", "3", "4"]),
        Cluster(id="Q", level=1, name="Q", member_ids=["5", "6"]),
    ]


def _per_level(clusters: list[Cluster]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for c in clusters:
        out.setdefault(c.level, []).extend(c.member_ids)
    return out


def test_min_cluster_size_folds_into_other_on_every_level() -> None:
    out = apply_min_cluster_size(_tree(), min_conversations=2)
    by_id = {c.id: c for c in out}
    assert set(by_id) == {"a", "P", "other-L0", "other-L1"}
    assert by_id["other-L0"].name == OTHER_NAME and sorted(by_id["other-L0"].member_ids) == ["4", "5", "6"]
    assert by_id["P"].member_ids == ["1", "2", "3"]  # the folded child's member left the parent
    assert by_id["other-L0"].parent_id == "other-L1"
    assert sorted(by_id["other-L1"].member_ids) == ["4", "5", "6"]
    # every conversation sits in exactly one cluster per level, nothing lost
    for members in _per_level(out).values():
        assert sorted(members) == ["1", "2", "3", "4", "5", "6"]
    assert not by_id["other-L0"].keyphrases and by_id["other-L0"].representative_request is None


def test_min_users_uses_distinct_users() -> None:
    conversations = [Conversation(id=str(i), metadata={"user": "u1" if i <= 3 else f"u{i}"},
                                  messages=[Message(role="user", content="x")]) for i in range(1, 7)]
    users = users_by_conversation(conversations, "user")
    out = apply_min_cluster_size(_tree(), min_conversations=1, min_users=2, users=users)
    ids = {c.id for c in out}
    assert "a" not in ids  # three conversations, one user: identifying
    assert ids == {"other-L0", "other-L1"}  # every base cluster has one user, so everything folds
    assert {c.id for c in apply_min_cluster_size(_tree(), min_conversations=1, min_users=1, users=users)} == {
        "a", "b", "c", "d", "P", "Q"}
    for members in _per_level(out).values():
        assert sorted(members) == ["1", "2", "3", "4", "5", "6"]


def test_withhold_ids_and_noise_kept() -> None:
    tree = _tree() + [Cluster(id="noise", level=0, name="Unclustered", is_noise=True, member_ids=["7"])]
    out = apply_min_cluster_size(tree, min_conversations=1, withhold_ids={"Q"})
    by_id = {c.id: c for c in out}
    assert "Q" not in by_id and "noise" in by_id
    assert by_id["c"].parent_id == "other-L1" and by_id["d"].parent_id == "other-L1"
