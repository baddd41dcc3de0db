"""Privacy guards: redact personal data before text leaves the machine, fold small clusters.

* :func:`redact` replaces e-mail addresses, phone numbers, payment card numbers (Luhn-checked),
  IPv4/IPv6 addresses and API keys/secret tokens with placeholders such as ``[EMAIL]``.
  kiku's LLM client applies it to every message sent to a hosted provider by default.
* :func:`apply_min_cluster_size` folds every cluster below a minimum number of conversations
  (and of distinct users, when a user field is mapped) into an "Other (below privacy
  threshold)" bucket at its level, keeping the hierarchy a consistent tree.

Example:
    >>> redact("mail jane.doe@example.com or call +1 (415) 555-0132")
    'mail [EMAIL] or call [PHONE]'
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence

from kiku.records import Cluster, Conversation

OTHER_NAME = "Other (below privacy threshold)"
OTHER_DESCRIPTION = "Conversations from topics too small to show without risking identifying people."

_API_KEY_PATTERNS = [
    r"\bsk-(?:proj-|ant-(?:api\d\d-)?|live_|test_)?[A-Za-z0-9_\-]{16,}",  # OpenAI / Anthropic / Stripe-like
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{40,}\b",
    r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b",  # Slack
    r"\bAIza[0-9A-Za-z_\-]{35}\b",  # Google API key
    r"\bhf_[A-Za-z0-9]{30,}\b",  # Hugging Face
    r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",  # JWT
    r"(?<![A-Za-z0-9])[0-9a-fA-F]{32,}(?![A-Za-z0-9])",  # long hex secrets (also W&B API keys)
]
_API_KEY = re.compile("|".join(f"(?:{p})" for p in _API_KEY_PATTERNS))
# generic base64/url-safe tokens: long, no spaces, mixed case and several digits
_GENERIC_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{32,}={0,2}(?![A-Za-z0-9+/_\-])")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d\-])(?:\d[ \-]?){12,18}\d(?![\d\-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![0-9A-Za-z:])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,4}\)[\s.\-]?)?\d{2,4}(?:[\s.\-]?\d{2,4}){1,4}(?![\w])")


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn checksum used by payment cards.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return len(digits) >= 12 and total % 10 == 0


def _sub_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _sub_ipv4(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv4Address(match.group(0))
    except ValueError:
        return match.group(0)
    return "[IP]"


def _sub_ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text.split("%")[0])
    except ValueError:
        return text
    return "[IP]" if text.count(":") >= 2 and any(c.isalnum() for c in text) else text


def _sub_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    # 9-15 digits and written with separators or a leading + (plain long numbers are ids, years...)
    if not 9 <= len(digits) <= 15:
        return text
    if not (text.startswith("+") or re.search(r"[\s.\-()]", text)):
        return text
    if re.fullmatch(r"\d{4}[\-./]\d{1,2}[\-./]\d{1,2}", text) or re.fullmatch(r"\d+(\.\d+)+", text):
        return text  # a date or a version number
    return "[PHONE]"


def _sub_generic(match: re.Match[str]) -> str:
    token = match.group(0)
    digits = sum(c.isdigit() for c in token)
    upper = sum(c.isupper() for c in token)
    mixed = upper > 0 and any(c.islower() for c in token)
    secret_like = (digits >= 4 and mixed) or (len(token) >= 40 and mixed and digits >= 1 and upper >= 8)
    return "[API_KEY]" if secret_like else token


def redact(text: str) -> str:
    """Replace personal data and secrets in ``text`` with placeholders.

    Placeholders: ``[EMAIL]``, ``[PHONE]``, ``[CARD]`` (13-19 digits passing Luhn),
    ``[IP]`` (valid IPv4/IPv6), ``[API_KEY]`` (sk-..., AKIA..., ghp_..., JWTs, long hex or
    mixed base64 tokens). Everything else is left as it was.

    >>> redact("key sk-proj-abcdefghijklmnop1234 card 4111 1111 1111 1111 host 10.0.0.12")
    'key [API_KEY] card [CARD] host [IP]'
    """
    if not text:
        return text
    text = _API_KEY.sub("[API_KEY]", text)
    text = _EMAIL.sub("[EMAIL]", text)
    text = _GENERIC_TOKEN.sub(_sub_generic, text)
    text = _CARD.sub(_sub_card, text)
    text = _IPV4.sub(_sub_ipv4, text)
    text = _IPV6.sub(_sub_ipv6, text)
    text = _PHONE.sub(_sub_phone, text)
    return text


def users_by_conversation(conversations: Iterable[Conversation], user_field: str) -> dict[str, str]:
    """Map conversation id -> user id read from ``metadata[user_field]`` (conversations without it are left out)."""
    users: dict[str, str] = {}
    for conversation in conversations:
        value = conversation.metadata.get(user_field)
        if value is not None and str(value) != "":
            users[conversation.id] = str(value)
    return users


def _distinct_users(member_ids: Sequence[str], users: Mapping[str, str]) -> int:
    """Distinct users among members; a member with no known user counts as its own user."""
    return len({users.get(m, f"conversation:{m}") for m in member_ids})


def apply_min_cluster_size(
    clusters: Sequence[Cluster],
    min_conversations: int = 1,
    min_users: int = 0,
    users: Mapping[str, str] | None = None,
    withhold_ids: Iterable[str] = (),
) -> list[Cluster]:
    """Fold clusters that are too small (or explicitly withheld) into an "Other" bucket per level.

    ``clusters``: every level (0 = base, parents with ``parent_id`` links). A cluster is folded
    when it has fewer than ``min_conversations`` members, fewer than ``min_users`` distinct
    users (``users`` maps conversation id -> user id, see :func:`users_by_conversation`), is in
    ``withhold_ids``, or (for parents) keeps too few members once its folded children are taken
    out. Folded members go to one cluster per level named :data:`OTHER_NAME` (id ``other-L{level}``)
    with no description, keyphrases or representative request, chained upward so the
    result stays one tree and every conversation keeps exactly one cluster per level. The noise
    bucket is kept as it is. Returns a new list; the input is not modified.

    >>> from kiku.records import Cluster
    >>> out = apply_min_cluster_size([Cluster(id="a", level=0, name="A", member_ids=["1", "2"]),
    ...                               Cluster(id="b", level=0, name="B", member_ids=["3"])], 2)
    >>> [(c.name, c.member_ids) for c in out]
    [('A', ['1', '2']), ('Other (below privacy threshold)', ['3'])]
    """
    users = users or {}
    withhold = set(withhold_ids)
    copies = [c.model_copy(deep=True) for c in clusters]
    if min_conversations <= 1 and min_users <= 1 and not withhold:
        return copies
    by_level: dict[int, list[Cluster]] = {}
    for cluster in copies:
        by_level.setdefault(cluster.level, []).append(cluster)
    levels = sorted(by_level)

    def too_small(members: Sequence[str]) -> bool:
        if len(members) < min_conversations:
            return True
        return min_users > 0 and _distinct_users(members, users) < min_users

    result: list[Cluster] = []
    kept_members: dict[str, list[str]] = {}
    kept_below: list[Cluster] = []  # every kept cluster on lower levels (a parent may sit more than one level up)
    other_below: Cluster | None = None
    for level in levels:
        children: dict[str, list[Cluster]] = {}
        for child in kept_below:
            if child.parent_id is not None:
                children.setdefault(child.parent_id, []).append(child)
        kept: list[Cluster] = []
        other_members: list[str] = list(other_below.member_ids) if other_below else []
        orphans: list[Cluster] = []
        for cluster in by_level[level]:
            if cluster.is_noise:
                result.append(cluster)
                continue
            if level == levels[0]:
                members = list(cluster.member_ids)
            else:
                members = [m for child in children.get(cluster.id, []) for m in kept_members[child.id]]
            if cluster.id in withhold or not members or too_small(members):
                other_members.extend(members)
                orphans.extend(children.get(cluster.id, []))
                continue
            cluster.member_ids = members
            kept_members[cluster.id] = members
            kept.append(cluster)
        other: Cluster | None = None
        if other_members:
            other = Cluster(
                id=f"other-L{level}", level=level, name=OTHER_NAME,
                description=OTHER_DESCRIPTION, member_ids=other_members,
            )
        for child in orphans:
            child.parent_id = other.id if other else None
        if other_below is not None:
            other_below.parent_id = other.id if other else None
        result.extend(kept)
        if other is not None:
            result.append(other)
        kept_below, other_below = kept_below + kept, other
    order = {id(c): i for i, c in enumerate(copies)}
    return sorted(result, key=lambda c: (c.level, order.get(id(c), len(order))))
